//! Reading and writing the BOLT 1 §"Fundamental Types" and `bigsize`.

use bitcoin::secp256k1::PublicKey;

use crate::types::ShortChannelId;

/// Why bytes could not be decoded. Every variant means the input is invalid;
/// for a peer message BOLT 1 says the connection MUST be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the field did ("unexpected EOF").
    #[error("unexpected end of input: needed {needed} more bytes")]
    ShortRead {
        /// Bytes missing.
        needed: usize,
    },
    /// A `bigsize` was not minimally encoded (BOLT 1 Appendix A).
    #[error("decoded bigsize is not canonical")]
    NonCanonicalBigSize,
    /// A truncated integer (`tu16`/`tu32`/`tu64`) had a leading zero byte.
    #[error("truncated integer is not minimally encoded")]
    NonMinimalTruncatedInt,
    /// A truncated integer was longer than its type.
    #[error("truncated integer of {len} bytes exceeds its {max}-byte type")]
    TruncatedIntTooLong {
        /// Bytes given.
        len: usize,
        /// Maximum for the type.
        max: usize,
    },
    /// Bytes were left over after a fixed-size field or TLV value.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// TLV types were not strictly increasing (BOLT 1 §"Type-Length-Value Format").
    #[error("tlv type {found} follows type {previous}: types must be strictly increasing")]
    TlvNotIncreasing {
        /// The type before.
        previous: u64,
        /// The offending type.
        found: u64,
    },
    /// A TLV record's length exceeds the bytes remaining.
    #[error("tlv record of type {typ} claims {length} bytes but only {remaining} remain")]
    TlvLengthExceeds {
        /// The record's type.
        typ: u64,
        /// The claimed length.
        length: u64,
        /// Bytes remaining.
        remaining: usize,
    },
    /// An unknown even TLV type (BOLT 1: "MUST fail to parse the tlv_stream").
    #[error("unknown even tlv type {0}")]
    UnknownEvenTlv(u64),
    /// An unknown even message type (BOLT 1: "MUST close the connection").
    #[error("unknown even message type {0}")]
    UnknownEvenMessage(u16),
    /// A `point` that is not a valid compressed secp256k1 public key.
    #[error("invalid point")]
    InvalidPoint,
    /// A `signature` that is not a valid compact ECDSA signature.
    #[error("invalid signature")]
    InvalidSignature,
    /// A field whose value breaks its definition (the message says which).
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why a value could not be encoded. Only our own code produces these (a
/// field too long for its length prefix, a message over 65535 bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field with a `u16` length prefix is longer than 65535 bytes.
    #[error("field {field} of {len} bytes does not fit its u16 length prefix")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The encoded message exceeds 65535 bytes (BOLT 1 §"Lightning Message Format").
    #[error("message of {0} bytes exceeds the 65535-byte limit")]
    MessageTooLong(usize),
}

/// A cursor over bytes being decoded. Every read checks bounds and returns a
/// [`DecodeError`] instead of panicking.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

macro_rules! read_be {
    ($($(#[$doc:meta])* $name:ident -> $t:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $name(&mut self) -> Result<$t, DecodeError> {
            Ok(<$t>::from_be_bytes(self.read_array()?))
        }
    )*};
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Reads `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::ShortRead {
                needed: n - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads exactly `N` bytes into an array.
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.read_bytes(N)?;
        Ok(bytes.try_into().expect("read_bytes returned N bytes"))
    }

    /// Reads everything left.
    pub fn read_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    read_be! {
        /// `byte`
        read_u8 -> u8,
        /// `u16`
        read_u16 -> u16,
        /// `u32`
        read_u32 -> u32,
        /// `u64`
        read_u64 -> u64,
        /// `s8`: two's complement (BOLT 1 Appendix D)
        read_i8 -> i8,
        /// `s16`
        read_i16 -> i16,
        /// `s32`
        read_i32 -> i32,
        /// `s64`
        read_i64 -> i64,
    }

    /// `bigsize`, rejecting non-minimal encodings (BOLT 1 Appendix A).
    pub fn read_bigsize(&mut self) -> Result<u64, DecodeError> {
        let (value, min) = match self.read_u8()? {
            0xff => (self.read_u64()?, 0x1_0000_0000),
            0xfe => (u64::from(self.read_u32()?), 0x1_0000),
            0xfd => (u64::from(self.read_u16()?), 0xfd),
            small => return Ok(u64::from(small)),
        };
        if value < min {
            return Err(DecodeError::NonCanonicalBigSize);
        }
        Ok(value)
    }

    /// A truncated integer of at most `max` bytes taking all remaining input
    /// (it is only ever the last field of a TLV value). Leading zeros MUST be
    /// omitted (BOLT 1 §"Fundamental Types").
    fn read_truncated(&mut self, max: usize) -> Result<u64, DecodeError> {
        let bytes = self.read_rest();
        if bytes.len() > max {
            return Err(DecodeError::TruncatedIntTooLong {
                len: bytes.len(),
                max,
            });
        }
        if bytes.first() == Some(&0) {
            return Err(DecodeError::NonMinimalTruncatedInt);
        }
        Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// `tu16`, consuming the rest of the input.
    pub fn read_tu16(&mut self) -> Result<u16, DecodeError> {
        Ok(self.read_truncated(2)? as u16)
    }

    /// `tu32`, consuming the rest of the input.
    pub fn read_tu32(&mut self) -> Result<u32, DecodeError> {
        Ok(self.read_truncated(4)? as u32)
    }

    /// `tu64`, consuming the rest of the input.
    pub fn read_tu64(&mut self) -> Result<u64, DecodeError> {
        self.read_truncated(8)
    }

    /// `point`: a 33-byte compressed public key.
    pub fn read_point(&mut self) -> Result<PublicKey, DecodeError> {
        PublicKey::from_slice(&self.read_array::<33>()?).map_err(|_| DecodeError::InvalidPoint)
    }

    /// `short_channel_id`.
    pub fn read_short_channel_id(&mut self) -> Result<ShortChannelId, DecodeError> {
        Ok(ShortChannelId::from_u64(self.read_u64()?))
    }

    /// `u16` length followed by that many bytes.
    pub fn read_u16_prefixed(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.read_u16()?;
        self.read_bytes(usize::from(len))
    }

    /// Fails if any input is left: for fixed-size values such as known TLV records.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// A growable buffer for encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Writer {
    buf: Vec<u8>,
}

macro_rules! write_be {
    ($($(#[$doc:meta])* $name:ident($t:ty)),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $name(&mut self, v: $t) {
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
    )*};
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// The bytes written.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Raw bytes.
    pub fn write_bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    write_be! {
        /// `byte`
        write_u8(u8),
        /// `u16`
        write_u16(u16),
        /// `u32`
        write_u32(u32),
        /// `u64`
        write_u64(u64),
        /// `s8`
        write_i8(i8),
        /// `s16`
        write_i16(i16),
        /// `s32`
        write_i32(i32),
        /// `s64`
        write_i64(i64),
    }

    /// `bigsize`, minimally encoded (BOLT 1 Appendix A).
    pub fn write_bigsize(&mut self, v: u64) {
        match v {
            0..=0xfc => self.write_u8(v as u8),
            0xfd..=0xffff => {
                self.write_u8(0xfd);
                self.write_u16(v as u16);
            }
            0x1_0000..=0xffff_ffff => {
                self.write_u8(0xfe);
                self.write_u32(v as u32);
            }
            _ => {
                self.write_u8(0xff);
                self.write_u64(v);
            }
        }
    }

    /// `tu64`: big-endian without leading zero bytes (zero is empty).
    pub fn write_tu64(&mut self, v: u64) {
        let skip = (v.leading_zeros() / 8) as usize;
        self.buf.extend_from_slice(&v.to_be_bytes()[skip..]);
    }

    /// `tu32`.
    pub fn write_tu32(&mut self, v: u32) {
        self.write_tu64(u64::from(v));
    }

    /// `tu16`.
    pub fn write_tu16(&mut self, v: u16) {
        self.write_tu64(u64::from(v));
    }

    /// `point`.
    pub fn write_point(&mut self, p: &PublicKey) {
        self.buf.extend_from_slice(&p.serialize());
    }

    /// `short_channel_id`.
    pub fn write_short_channel_id(&mut self, scid: ShortChannelId) {
        self.write_u64(scid.to_u64());
    }

    /// `u16` length then the bytes; `field` names the field in the error.
    pub fn write_u16_prefixed(&mut self, field: &'static str, b: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(b.len()).map_err(|_| EncodeError::FieldTooLong {
            field,
            len: b.len(),
        })?;
        self.write_u16(len);
        self.write_bytes(b);
        Ok(())
    }
}

/// Size in bytes of `v` encoded as a `bigsize`.
pub fn bigsize_len(v: u64) -> usize {
    match v {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_ints_round_trip_minimally() {
        for v in [0u64, 1, 0xff, 0x100, 0xffff_ffff, u64::MAX] {
            let mut w = Writer::new();
            w.write_tu64(v);
            assert_eq!(w.len(), 8 - (v.leading_zeros() / 8) as usize);
            assert_eq!(Reader::new(w.as_slice()).read_tu64(), Ok(v));
        }
        assert_eq!(
            Reader::new(&[1, 0, 0]).read_tu16(),
            Err(DecodeError::TruncatedIntTooLong { len: 3, max: 2 })
        );
    }

    #[test]
    fn bigsize_len_matches_encoding() {
        for v in [
            0,
            0xfc,
            0xfd,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ] {
            let mut w = Writer::new();
            w.write_bigsize(v);
            assert_eq!(w.len(), bigsize_len(v), "{v}");
        }
    }

    #[test]
    fn short_read_reports_missing_bytes() {
        let mut r = Reader::new(&[1, 2]);
        assert_eq!(r.read_u32(), Err(DecodeError::ShortRead { needed: 2 }));
    }
}
