//! BOLT 8: encrypted and authenticated transport.
//!
//! The handshake is `Noise_XK_secp256k1_ChaChaPoly_SHA256` with the prologue
//! `lightning` (BOLT 8 §"Authenticated Key Exchange Handshake Specification"), followed by
//! length-prefixed message framing with key rotation every 1000 nonces
//! (BOLT 8 §"Encrypting and Sending Messages", §"Lightning Message Key Rotation").
//!
//! This crate is pure: it does no I/O and draws no randomness. Ephemeral keys
//! are passed in by the caller, which is what makes the Appendix A vectors
//! reproducible.
//!
//! ```
//! use beongae_noise::{Initiator, Responder};
//! use bitcoin::secp256k1::{Secp256k1, SecretKey, PublicKey};
//! let secp = Secp256k1::new();
//! let (alice, bob) = (SecretKey::from_slice(&[1; 32]).unwrap(), SecretKey::from_slice(&[2; 32]).unwrap());
//! let (init, act_one) = Initiator::new(&secp, alice, PublicKey::from_secret_key(&secp, &bob), SecretKey::from_slice(&[3; 32]).unwrap());
//! let (resp, act_two) = Responder::new(&secp, bob, SecretKey::from_slice(&[4; 32]).unwrap()).process_act_one(&secp, &act_one).unwrap();
//! let (act_three, mut a) = init.process_act_two(&secp, &act_two).unwrap();
//! let (remote, mut b) = resp.process_act_three(&secp, &act_three).unwrap();
//! assert_eq!(remote, PublicKey::from_secret_key(&secp, &alice));
//! let frame = a.encrypt_message(b"hello").unwrap();
//! let len = b.decrypt_length(frame[..18].try_into().unwrap()).unwrap();
//! assert_eq!(b.decrypt_body(&frame[18..18 + len as usize + 16]).unwrap(), b"hello");
//! ```

mod crypto;
mod handshake;
mod transport;

pub use handshake::{Initiator, Responder, ResponderActTwoSent};
pub use transport::{
    Decryptor, Encryptor, MessageDecoder, Transport, TransportKeys, LENGTH_HEADER_LEN, MAC_LEN,
    MAX_MESSAGE_LEN,
};

/// Length of act one on the wire: version, ephemeral key, MAC (BOLT 8 §"Act One").
pub const ACT_ONE_LEN: usize = 50;
/// Length of act two on the wire (BOLT 8 §"Act Two").
pub const ACT_TWO_LEN: usize = 50;
/// Length of act three on the wire: version, encrypted static key, MAC (BOLT 8 §"Act Three").
pub const ACT_THREE_LEN: usize = 66;

/// Why a handshake step or a transport operation failed.
///
/// Every error is fatal for the connection: BOLT 8 says the connection MUST be
/// terminated on any handshake failure, and after a bad MAC the cipher state
/// can no longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoiseError {
    /// The act's version byte was not 0 (BOLT 8: "MUST abort the connection attempt").
    #[error("unknown handshake version {0}")]
    UnknownVersion(u8),
    /// The ephemeral key in act one or act two is not a valid secp256k1 point.
    #[error("ephemeral key in handshake act is not a valid point")]
    InvalidEphemeralKey,
    /// The static key decrypted from act three is not a valid secp256k1 point.
    #[error("static key in act three is not a valid point")]
    InvalidStaticKey,
    /// A ChaCha20-Poly1305 tag did not verify.
    #[error("message authentication failed (bad mac)")]
    BadMac,
    /// A message to be sent exceeds 65535 bytes (BOLT 8 §"Lightning Message Specification").
    #[error("message of {0} bytes exceeds the 65535-byte limit")]
    MessageTooLong(usize),
}
