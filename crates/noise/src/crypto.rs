//! The primitives BOLT 8 names: `HKDF`, `encryptWithAD`, `decryptWithAD`, `ECDH`.

use bitcoin::hashes::{sha256, Hash, HashEngine, Hmac, HmacEngine};
use bitcoin::secp256k1::{ecdh::SharedSecret, PublicKey, SecretKey};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};

use crate::NoiseError;

/// Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;

/// BOLT 8 `HKDF(salt, ikm)`: RFC 5869 with SHA-256, zero-length `info`, 64 bytes
/// of output split into two 32-byte keys.
pub(crate) fn hkdf(salt: &[u8], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut extract = HmacEngine::<sha256::Hash>::new(salt);
    extract.input(ikm);
    let prk = Hmac::<sha256::Hash>::from_engine(extract);

    let mut t1 = HmacEngine::<sha256::Hash>::new(prk.as_byte_array());
    t1.input(&[1]);
    let t1 = Hmac::<sha256::Hash>::from_engine(t1);

    let mut t2 = HmacEngine::<sha256::Hash>::new(prk.as_byte_array());
    t2.input(t1.as_byte_array());
    t2.input(&[2]);
    let t2 = Hmac::<sha256::Hash>::from_engine(t2);
    (t1.to_byte_array(), t2.to_byte_array())
}

/// BOLT 8 `ECDH(rk, k)` (remote public key `rk`, local secret `k`): SHA-256
/// of the compressed shared point, which is libsecp256k1's default ECDH hash.
pub(crate) fn ecdh(key: &SecretKey, point: &PublicKey) -> [u8; 32] {
    SharedSecret::new(point, key).secret_bytes()
}

/// `SHA256(a || b)`, the handshake-hash update `h = SHA-256(h || data)`.
pub(crate) fn mix_hash(h: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(h);
    engine.input(data);
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// The 96-bit nonce: 32 zero bits followed by the 64-bit little-endian counter.
pub(crate) fn nonce(n: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_le_bytes());
    Nonce::from(bytes)
}

/// A ChaCha20-Poly1305 key ready to use.
pub(crate) struct Aead(ChaCha20Poly1305);

impl Aead {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Aead(ChaCha20Poly1305::new(key.into()))
    }

    /// `encryptWithAD` in place: encrypts `buf` and returns the tag.
    pub(crate) fn seal_in_place(&self, n: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        self.0
            .encrypt_in_place_detached(&nonce(n), ad, buf)
            .expect("chacha20poly1305 only fails for buffers over 256 GiB")
            .into()
    }

    /// `decryptWithAD` in place; `Err(BadMac)` if the tag does not verify.
    pub(crate) fn open_in_place(
        &self,
        n: u64,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), NoiseError> {
        self.0
            .decrypt_in_place_detached(&nonce(n), ad, buf, Tag::from_slice(tag))
            .map_err(|_| NoiseError::BadMac)
    }
}

/// One-shot `encryptWithAD(k, n, ad, plaintext)` returning ciphertext || tag.
pub(crate) fn encrypt_with_ad(key: &[u8; 32], n: u64, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    let tag = Aead::new(key).seal_in_place(n, ad, &mut out);
    out.extend_from_slice(&tag);
    out
}

/// One-shot `decryptWithAD(k, n, ad, ciphertext || tag)`.
pub(crate) fn decrypt_with_ad(
    key: &[u8; 32],
    n: u64,
    ad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, NoiseError> {
    let split = sealed
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(NoiseError::BadMac)?;
    let (ct, tag) = sealed.split_at(split);
    let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| NoiseError::BadMac)?;
    let mut out = ct.to_vec();
    Aead::new(key).open_in_place(n, ad, &mut out, tag)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 Appendix A.3 (SHA-256, empty salt and info, as BOLT 8 uses an
    /// empty info): our two 32-byte halves are T(1) and T(2), so the first 42
    /// bytes must equal the RFC's OKM.
    #[test]
    fn hkdf_rfc5869_case_3() {
        let (t1, t2) = hkdf(&[], &[0x0b; 22]);
        let okm = hex_lit(
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        );
        assert_eq!(&t1[..], &okm[..32]);
        assert_eq!(&t2[..10], &okm[32..]);
    }

    fn hex_lit(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        let key = [7u8; 32];
        let sealed = encrypt_with_ad(&key, 5, b"ad", b"payload");
        assert_eq!(sealed.len(), 7 + TAG_LEN);
        assert_eq!(
            decrypt_with_ad(&key, 5, b"ad", &sealed).unwrap(),
            b"payload"
        );
        assert_eq!(
            decrypt_with_ad(&key, 6, b"ad", &sealed),
            Err(NoiseError::BadMac)
        );
        assert_eq!(
            decrypt_with_ad(&key, 5, b"xx", &sealed),
            Err(NoiseError::BadMac)
        );
        assert_eq!(
            decrypt_with_ad(&key, 5, b"ad", &sealed[..10]),
            Err(NoiseError::BadMac)
        );
    }
}
