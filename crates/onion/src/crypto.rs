//! The BOLT 4 primitives every other module builds on: shared secrets,
//! key generation, the ChaCha20 pseudo-random stream, HMAC-SHA256 and the
//! blinding of ephemeral keys.

use std::fmt;

use bitcoin::hashes::{sha256, Hash, HashEngine, Hmac, HmacEngine};
use bitcoin::secp256k1::{ecdh, PublicKey, Scalar, SecretKey};
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;

/// Key type `rho` (BOLT 4 §"Key Generation"): obfuscates `hop_payloads`.
pub const RHO: &[u8] = b"rho";
/// Key type `mu`: key of the packet HMAC.
pub const MU: &[u8] = b"mu";
/// Key type `um`: key of the return-packet HMAC.
pub const UM: &[u8] = b"um";
/// Key type `pad`: seeds the initial 1300 filler bytes of a new packet.
pub const PAD: &[u8] = b"pad";
/// Key type `ammag` (BOLT 4 §"Returning Errors"): obfuscates the return packet.
pub const AMMAG: &[u8] = b"ammag";

/// The 32-byte secret a hop shares with the origin node (BOLT 4 §"Shared
/// Secret": `SHA256` of the compressed ECDH point). Its `Debug` hides the
/// bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SharedSecret(pub [u8; 32]);

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

impl SharedSecret {
    /// BOLT 4 §"Shared Secret": ECDH of `secret` and `point`, the resulting
    /// point serialized compressed and hashed with `SHA256` (which is what
    /// libsecp256k1's default ECDH computes).
    pub fn new(point: &PublicKey, secret: &SecretKey) -> Self {
        SharedSecret(ecdh::SharedSecret::new(point, secret).secret_bytes())
    }

    /// BOLT 4 §"Key Generation": `HMAC256(key_type, shared_secret)`.
    pub fn key(&self, key_type: &[u8]) -> [u8; 32] {
        hmac_sha256(key_type, &[&self.0])
    }
}

/// `HMAC-SHA256(key, parts[0] || parts[1] || ...)`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut engine = HmacEngine::<sha256::Hash>::new(key);
    for p in parts {
        engine.input(p);
    }
    Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

/// BOLT 4 §"Pseudo Random Byte Stream": XORs `buf` with the ChaCha20 stream
/// of `key` and the 96-bit zero nonce, starting at stream offset 0.
pub fn xor_stream(key: &[u8; 32], buf: &mut [u8]) {
    let mut cipher = ChaCha20::new(key.into(), &[0u8; 12].into());
    cipher.apply_keystream(buf);
}

/// `len` bytes of the pseudo-random stream of `key`.
pub fn stream(key: &[u8; 32], len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    xor_stream(key, &mut buf);
    buf
}

/// BOLT 4 §"Blinding Ephemeral Onion Keys": the blinding factor is
/// `SHA256(ephemeral_public_key || shared_secret)`. `None` in the
/// (negligible) case the hash is not a valid scalar.
pub fn blinding_factor(ephemeral: &PublicKey, ss: &SharedSecret) -> Option<Scalar> {
    let mut engine = sha256::Hash::engine();
    engine.input(&ephemeral.serialize());
    engine.input(&ss.0);
    Scalar::from_be_bytes(sha256::Hash::from_engine(engine).to_byte_array()).ok()
}

/// Compares two MACs in time independent of where they differ (BOLT 4
/// §"Onion Decryption": "MUST use a constant time comparison").
pub fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
