//! BOLT 8 §"Encrypting and Sending Messages", §"Receiving and Decrypting
//! Messages" and §"Lightning Message Key Rotation".

use crate::crypto::{hkdf, Aead, TAG_LEN};
use crate::NoiseError;

/// Largest Lightning message a frame can carry (the length is a `u16`).
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;
/// Poly1305 tag length that follows the encrypted length and the encrypted body.
pub const MAC_LEN: usize = TAG_LEN;
/// Encrypted length prefix: 2 bytes plus its MAC.
pub const LENGTH_HEADER_LEN: usize = 2 + MAC_LEN;

/// BOLT 8: a key is rotated after it has been used for 1000 encryptions or decryptions.
const ROTATE_AFTER: u64 = 1000;

/// The keys a transport holds right now, for checking against test vectors.
/// Never log these.
#[derive(Clone, PartialEq, Eq)]
pub struct TransportKeys {
    /// Sending key `sk`.
    pub sk: [u8; 32],
    /// Receiving key `rk`.
    pub rk: [u8; 32],
    /// Sending chaining key `sck`.
    pub sck: [u8; 32],
    /// Receiving chaining key `rck`.
    pub rck: [u8; 32],
}

impl std::fmt::Debug for TransportKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransportKeys(..)")
    }
}

/// One direction's cipher: key, nonce and chaining key.
struct CipherState {
    k: [u8; 32],
    n: u64,
    ck: [u8; 32],
    aead: Aead,
}

impl CipherState {
    fn new(k: [u8; 32], ck: [u8; 32]) -> Self {
        CipherState {
            aead: Aead::new(&k),
            k,
            n: 0,
            ck,
        }
    }

    /// Advances the nonce after one use, rotating the key after 1000 uses
    /// (BOLT 8 §"Lightning Message Key Rotation": `ck', k' = HKDF(ck, k)`).
    fn advance(&mut self) {
        self.n += 1;
        if self.n == ROTATE_AFTER {
            let (ck, k) = hkdf(&self.ck, &self.k);
            *self = CipherState::new(k, ck);
        }
    }

    fn seal_in_place(&mut self, buf: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = self.aead.seal_in_place(self.n, &[], buf);
        self.advance();
        tag
    }

    fn open_in_place(&mut self, buf: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), NoiseError> {
        self.aead.open_in_place(self.n, &[], buf, tag)?;
        self.advance();
        Ok(())
    }
}

/// The sending half of a transport.
pub struct Encryptor {
    cipher: CipherState,
}

impl Encryptor {
    /// Appends the frame for `msg` to `out`: the encrypted 2-byte length and its
    /// MAC, then the encrypted message and its MAC (BOLT 8 §"Encrypting and
    /// Sending Messages"). A message over 65535 bytes is refused and nothing is
    /// written.
    pub fn encrypt_message_into(
        &mut self,
        msg: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let len = u16::try_from(msg.len()).map_err(|_| NoiseError::MessageTooLong(msg.len()))?;
        out.reserve(LENGTH_HEADER_LEN + msg.len() + MAC_LEN);

        let start = out.len();
        out.extend_from_slice(&len.to_be_bytes());
        let tag = self.cipher.seal_in_place(&mut out[start..]);
        out.extend_from_slice(&tag);

        let start = out.len();
        out.extend_from_slice(msg);
        let tag = self.cipher.seal_in_place(&mut out[start..]);
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Returns the frame for `msg` as a new buffer.
    pub fn encrypt_message(&mut self, msg: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let mut out = Vec::new();
        self.encrypt_message_into(msg, &mut out)?;
        Ok(out)
    }
}

/// The receiving half of a transport.
pub struct Decryptor {
    cipher: CipherState,
}

impl Decryptor {
    /// Decrypts and authenticates a frame's 18-byte length header.
    pub fn decrypt_length(&mut self, header: &[u8; LENGTH_HEADER_LEN]) -> Result<u16, NoiseError> {
        let mut len = [header[0], header[1]];
        let tag: &[u8; TAG_LEN] = header[2..].try_into().expect("header is 2 + 16 bytes");
        self.cipher.open_in_place(&mut len, tag)?;
        Ok(u16::from_be_bytes(len))
    }

    /// Decrypts a frame body (`length` bytes of ciphertext followed by the MAC)
    /// in place and returns the plaintext part of `sealed`.
    pub fn decrypt_body_in_place<'a>(
        &mut self,
        sealed: &'a mut [u8],
    ) -> Result<&'a [u8], NoiseError> {
        let split = sealed
            .len()
            .checked_sub(MAC_LEN)
            .ok_or(NoiseError::BadMac)?;
        let (body, tag) = sealed.split_at_mut(split);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().expect("split leaves exactly the tag");
        self.cipher.open_in_place(body, tag)?;
        Ok(body)
    }

    /// Decrypts a frame body into a new buffer.
    pub fn decrypt_body(&mut self, sealed: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let mut buf = sealed.to_vec();
        let len = self.decrypt_body_in_place(&mut buf)?.len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Both directions of an established BOLT 8 session.
pub struct Transport {
    encryptor: Encryptor,
    decryptor: Decryptor,
}

impl Transport {
    /// A transport from the keys the handshake produced; both chaining keys
    /// start as the handshake's final `ck`.
    pub(crate) fn new(sk: [u8; 32], rk: [u8; 32], ck: [u8; 32]) -> Self {
        Transport {
            encryptor: Encryptor {
                cipher: CipherState::new(sk, ck),
            },
            decryptor: Decryptor {
                cipher: CipherState::new(rk, ck),
            },
        }
    }

    /// The current keys (test-vector checks only; never log them).
    pub fn keys(&self) -> TransportKeys {
        TransportKeys {
            sk: self.encryptor.cipher.k,
            rk: self.decryptor.cipher.k,
            sck: self.encryptor.cipher.ck,
            rck: self.decryptor.cipher.ck,
        }
    }

    /// See [`Encryptor::encrypt_message`].
    pub fn encrypt_message(&mut self, msg: &[u8]) -> Result<Vec<u8>, NoiseError> {
        self.encryptor.encrypt_message(msg)
    }

    /// See [`Decryptor::decrypt_length`].
    pub fn decrypt_length(&mut self, header: &[u8; LENGTH_HEADER_LEN]) -> Result<u16, NoiseError> {
        self.decryptor.decrypt_length(header)
    }

    /// See [`Decryptor::decrypt_body`].
    pub fn decrypt_body(&mut self, sealed: &[u8]) -> Result<Vec<u8>, NoiseError> {
        self.decryptor.decrypt_body(sealed)
    }

    /// Splits into halves that a writer and a reader can own separately.
    pub fn split(self) -> (Encryptor, Decryptor) {
        (self.encryptor, self.decryptor)
    }
}

/// Turns a byte stream from the network into whole decrypted messages.
///
/// Feed it whatever the socket returned; it keeps partial frames until the
/// rest arrives. After an error the decoder is poisoned: BOLT 8 gives no way to
/// resynchronise, so the connection must be closed.
pub struct MessageDecoder {
    decryptor: Decryptor,
    buf: Vec<u8>,
    /// Read position in `buf`.
    pos: usize,
    /// Body length of the frame whose header was already decrypted.
    pending_len: Option<usize>,
    poisoned: bool,
}

impl MessageDecoder {
    /// A decoder over the receiving half of a transport.
    pub fn new(decryptor: Decryptor) -> Self {
        MessageDecoder {
            decryptor,
            buf: Vec::new(),
            pos: 0,
            pending_len: None,
            poisoned: false,
        }
    }

    /// Appends bytes read from the network.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, NoiseError> {
        if self.poisoned {
            return Err(NoiseError::BadMac);
        }
        let result = self.next_inner();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn next_inner(&mut self) -> Result<Option<Vec<u8>>, NoiseError> {
        let available = &mut self.buf[self.pos..];
        let len = match self.pending_len {
            Some(len) => len,
            None => {
                let Some(header) = available.get(..LENGTH_HEADER_LEN) else {
                    return Ok(None);
                };
                let header: &[u8; LENGTH_HEADER_LEN] = header.try_into().expect("sliced to length");
                let len = usize::from(self.decryptor.decrypt_length(header)?);
                self.pos += LENGTH_HEADER_LEN;
                self.pending_len = Some(len);
                len
            }
        };
        let available = &mut self.buf[self.pos..];
        let Some(sealed) = available.get_mut(..len + MAC_LEN) else {
            return Ok(None);
        };
        let msg = self.decryptor.decrypt_body_in_place(sealed)?.to_vec();
        self.pos += len + MAC_LEN;
        self.pending_len = None;
        Ok(Some(msg))
    }

    /// Bytes buffered but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Transport, Transport) {
        let a = Transport::new([1; 32], [2; 32], [3; 32]);
        let b = Transport::new([2; 32], [1; 32], [3; 32]);
        (a, b)
    }

    #[test]
    fn oversize_message_is_refused_and_writes_nothing() {
        let (mut enc, _) = pair().0.split();
        let mut out = vec![9];
        assert_eq!(
            enc.encrypt_message_into(&vec![0; MAX_MESSAGE_LEN + 1], &mut out),
            Err(NoiseError::MessageTooLong(65536))
        );
        assert_eq!(out, vec![9]);
        enc.encrypt_message_into(&vec![0; MAX_MESSAGE_LEN], &mut out)
            .unwrap();
        assert_eq!(out.len(), 1 + LENGTH_HEADER_LEN + MAX_MESSAGE_LEN + MAC_LEN);
    }

    #[test]
    fn decoder_reassembles_byte_by_byte_across_rotation() {
        let (a, b) = pair();
        let (mut enc, _) = a.split();
        let (_, dec) = b.split();
        let mut decoder = MessageDecoder::new(dec);
        let mut wire = Vec::new();
        for i in 0..1200u32 {
            enc.encrypt_message_into(&i.to_be_bytes()[..(i % 4) as usize], &mut wire)
                .unwrap();
        }
        let mut got = Vec::new();
        for chunk in wire.chunks(7) {
            decoder.push(chunk);
            while let Some(m) = decoder.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 1200);
        assert_eq!(got[1199], 1199u32.to_be_bytes()[..3].to_vec());
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn decoder_poisons_on_bad_mac() {
        let (a, b) = pair();
        let (mut enc, _) = a.split();
        let (_, dec) = b.split();
        let mut decoder = MessageDecoder::new(dec);
        let mut frame = enc.encrypt_message(b"hello").unwrap();
        frame[LENGTH_HEADER_LEN + 1] ^= 1;
        decoder.push(&frame);
        assert_eq!(decoder.next_message(), Err(NoiseError::BadMac));
        assert_eq!(decoder.next_message(), Err(NoiseError::BadMac));
    }
}
