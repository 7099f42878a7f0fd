//! BOLT 8 §"Authenticated Key Exchange Handshake Specification" ("Handshake
//! Exchange"): acts one, two and three
//! for both roles. Each role is a chain of types, so a step cannot be taken
//! twice or out of order.

use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing};

use crate::crypto::{decrypt_with_ad, ecdh, encrypt_with_ad, hkdf, mix_hash, TAG_LEN};
use crate::transport::Transport;
use crate::{NoiseError, ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN};

/// BOLT 8 §"Handshake State Initialization": `protocolName`.
const PROTOCOL_NAME: &[u8] = b"Noise_XK_secp256k1_ChaChaPoly_SHA256";
/// BOLT 8: `prologue` is the ASCII string `lightning`.
const PROLOGUE: &[u8] = b"lightning";
/// BOLT 8: the only handshake version defined.
const VERSION: u8 = 0;

/// The handshake state shared by both roles: chaining key `ck` and handshake hash `h`.
#[derive(Clone)]
struct State {
    ck: [u8; 32],
    h: [u8; 32],
}

impl State {
    /// BOLT 8 §"Handshake State Initialization", with `responder_static` mixed
    /// into `h` as both sides do (the initiator knows it, the responder owns it).
    fn new(responder_static: &PublicKey) -> Self {
        let h = bitcoin::hashes::sha256::Hash::hash(PROTOCOL_NAME).to_byte_array();
        let ck = h;
        let h = mix_hash(&h, PROLOGUE);
        let h = mix_hash(&h, &responder_static.serialize());
        State { ck, h }
    }

    /// `ck, temp_k = HKDF(ck, ikm)`.
    fn mix_key(&mut self, ikm: &[u8; 32]) -> [u8; 32] {
        let (ck, temp_k) = hkdf(&self.ck, ikm);
        self.ck = ck;
        temp_k
    }

    /// `h = SHA-256(h || data)`.
    fn mix_hash(&mut self, data: &[u8]) {
        self.h = mix_hash(&self.h, data);
    }
}

/// Builds act one or two: `0 || e.pub || encryptWithAD(temp_k, 0, h, "")`,
/// mixing `e.pub` before the ECDH and the MAC after it. Returns the act and `temp_k`.
fn write_ephemeral_act(state: &mut State, e_pub: &PublicKey, dh: [u8; 32]) -> ([u8; 50], [u8; 32]) {
    let e_pub = e_pub.serialize();
    state.mix_hash(&e_pub);
    let temp_k = state.mix_key(&dh);
    let c = encrypt_with_ad(&temp_k, 0, &state.h, &[]);
    state.mix_hash(&c);
    let mut act = [0u8; ACT_ONE_LEN];
    act[0] = VERSION;
    act[1..34].copy_from_slice(&e_pub);
    act[34..].copy_from_slice(&c);
    (act, temp_k)
}

/// Reads act one or two: checks the version, parses the remote ephemeral key,
/// and verifies the MAC. `dh` computes the ECDH with the parsed key.
/// Returns the remote ephemeral key and `temp_k`.
fn read_ephemeral_act(
    state: &mut State,
    act: &[u8; 50],
    dh: impl FnOnce(&PublicKey) -> [u8; 32],
) -> Result<(PublicKey, [u8; 32]), NoiseError> {
    if act[0] != VERSION {
        return Err(NoiseError::UnknownVersion(act[0]));
    }
    let re = PublicKey::from_slice(&act[1..34]).map_err(|_| NoiseError::InvalidEphemeralKey)?;
    state.mix_hash(&act[1..34]);
    let temp_k = state.mix_key(&dh(&re));
    decrypt_with_ad(&temp_k, 0, &state.h, &act[34..])?;
    state.mix_hash(&act[34..]);
    Ok((re, temp_k))
}

/// The initiator after sending act one, waiting for act two.
pub struct Initiator {
    state: State,
    ls: SecretKey,
    e: SecretKey,
}

impl Initiator {
    /// Starts a handshake to the node `rs` (BOLT 8 §"Act One", sender side) and
    /// returns act one to send. `e` is a fresh ephemeral key from the caller's
    /// randomness source; it must never be reused.
    pub fn new<C: Signing>(
        secp: &Secp256k1<C>,
        ls: SecretKey,
        rs: PublicKey,
        e: SecretKey,
    ) -> (Self, [u8; ACT_ONE_LEN]) {
        let mut state = State::new(&rs);
        let e_pub = PublicKey::from_secret_key(secp, &e);
        // es = ECDH(e.priv, rs)
        let (act, _) = write_ephemeral_act(&mut state, &e_pub, ecdh(&e, &rs));
        (Initiator { state, ls, e }, act)
    }

    /// BOLT 8 §"Act Two" (receiver side) then §"Act Three" (sender side):
    /// verifies act two and returns act three and the transport.
    pub fn process_act_two<C: Signing>(
        mut self,
        secp: &Secp256k1<C>,
        act_two: &[u8; ACT_TWO_LEN],
    ) -> Result<([u8; ACT_THREE_LEN], Transport), NoiseError> {
        let e = self.e;
        // ee = ECDH(e.priv, re)
        let (re, temp_k2) = read_ephemeral_act(&mut self.state, act_two, |re| ecdh(&e, re))?;

        // c = encryptWithAD(temp_k2, 1, h, s.pub)
        let s_pub = PublicKey::from_secret_key(secp, &self.ls).serialize();
        let c = encrypt_with_ad(&temp_k2, 1, &self.state.h, &s_pub);
        self.state.mix_hash(&c);
        // se = ECDH(s.priv, re)
        let temp_k3 = self.state.mix_key(&ecdh(&self.ls, &re));
        let t = encrypt_with_ad(&temp_k3, 0, &self.state.h, &[]);
        // sk, rk = HKDF(ck, zero)
        let (sk, rk) = hkdf(&self.state.ck, &[]);

        let mut act = [0u8; ACT_THREE_LEN];
        act[0] = VERSION;
        act[1..50].copy_from_slice(&c);
        act[50..].copy_from_slice(&t);
        Ok((act, Transport::new(sk, rk, self.state.ck)))
    }
}

/// The responder before act one.
pub struct Responder {
    state: State,
    ls: SecretKey,
    e: SecretKey,
    e_pub: PublicKey,
}

impl Responder {
    /// Prepares to accept a handshake with our static key `ls` and a fresh
    /// ephemeral key `e` from the caller's randomness source.
    pub fn new<C: Signing>(secp: &Secp256k1<C>, ls: SecretKey, e: SecretKey) -> Self {
        let state = State::new(&PublicKey::from_secret_key(secp, &ls));
        let e_pub = PublicKey::from_secret_key(secp, &e);
        Responder {
            state,
            ls,
            e,
            e_pub,
        }
    }

    /// BOLT 8 §"Act One" (receiver side) then §"Act Two" (sender side):
    /// verifies act one and returns act two to send.
    pub fn process_act_one<C: Signing>(
        mut self,
        _secp: &Secp256k1<C>,
        act_one: &[u8; ACT_ONE_LEN],
    ) -> Result<(ResponderActTwoSent, [u8; ACT_TWO_LEN]), NoiseError> {
        let ls = self.ls;
        // es = ECDH(s.priv, re)
        let (re, _) = read_ephemeral_act(&mut self.state, act_one, |re| ecdh(&ls, re))?;
        // ee = ECDH(e.priv, re)
        let (act, temp_k2) = write_ephemeral_act(&mut self.state, &self.e_pub, ecdh(&self.e, &re));
        Ok((
            ResponderActTwoSent {
                state: self.state,
                e: self.e,
                temp_k2,
            },
            act,
        ))
    }
}

/// The responder after sending act two, waiting for act three.
pub struct ResponderActTwoSent {
    state: State,
    e: SecretKey,
    temp_k2: [u8; 32],
}

impl ResponderActTwoSent {
    /// BOLT 8 §"Act Three" (receiver side): decrypts and checks the initiator's
    /// static key, verifies the final MAC, and returns the initiator's node id
    /// and the transport.
    pub fn process_act_three<C: Signing>(
        mut self,
        _secp: &Secp256k1<C>,
        act_three: &[u8; ACT_THREE_LEN],
    ) -> Result<(PublicKey, Transport), NoiseError> {
        if act_three[0] != VERSION {
            return Err(NoiseError::UnknownVersion(act_three[0]));
        }
        let c = &act_three[1..50];
        let t = &act_three[50..];
        debug_assert_eq!(t.len(), TAG_LEN);
        // rs = decryptWithAD(temp_k2, 1, h, c)
        let rs = decrypt_with_ad(&self.temp_k2, 1, &self.state.h, c)?;
        let rs = PublicKey::from_slice(&rs).map_err(|_| NoiseError::InvalidStaticKey)?;
        self.state.mix_hash(c);
        // se = ECDH(e.priv, rs)
        let temp_k3 = self.state.mix_key(&ecdh(&self.e, &rs));
        decrypt_with_ad(&temp_k3, 0, &self.state.h, t)?;
        // rk, sk = HKDF(ck, zero)
        let (rk, sk) = hkdf(&self.state.ck, &[]);
        Ok((rs, Transport::new(sk, rk, self.state.ck)))
    }
}
