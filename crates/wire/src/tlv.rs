//! BOLT 1 §"Type-Length-Value Format".

use crate::codec::{bigsize_len, DecodeError, Reader, Writer};

/// One `tlv_record`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlvRecord {
    /// `type`
    pub typ: u64,
    /// `value`
    pub value: Vec<u8>,
}

/// A `tlv_stream`: records in strictly increasing `type` order.
///
/// Decoding checks the stream's structure (minimal `bigsize`s, strictly
/// increasing types, lengths within the input). Which types are known is the
/// business of the message or payload that owns the stream: it takes its
/// known records out with [`TlvStream::take`] and then calls
/// [`TlvStream::into_extension`], which rejects what is left if any of it is
/// even and keeps the unknown odd records so that re-encoding (and a signature
/// over it) gives back the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TlvStream {
    records: Vec<TlvRecord>,
}

impl TlvStream {
    /// An empty stream.
    pub fn new() -> Self {
        TlvStream::default()
    }

    /// Parses a whole stream from `bytes` (BOLT 1: the receiving node MUST
    /// fail to parse the stream on a non-minimal `type`/`length`, types not
    /// strictly increasing, or a `length` past the end).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let mut records: Vec<TlvRecord> = Vec::new();
        // "if zero bytes remain before parsing a type: MUST stop parsing"
        while !r.is_empty() {
            let typ = r.read_bigsize()?;
            if let Some(previous) = records.last().map(|rec| rec.typ) {
                if typ <= previous {
                    return Err(DecodeError::TlvNotIncreasing {
                        previous,
                        found: typ,
                    });
                }
            }
            let length = r.read_bigsize()?;
            let remaining = r.remaining();
            let len = usize::try_from(length)
                .ok()
                .filter(|l| *l <= remaining)
                .ok_or(DecodeError::TlvLengthExceeds {
                    typ,
                    length,
                    remaining,
                })?;
            records.push(TlvRecord {
                typ,
                value: r.read_bytes(len)?.to_vec(),
            });
        }
        Ok(TlvStream { records })
    }

    /// The records, in increasing type order.
    pub fn records(&self) -> &[TlvRecord] {
        &self.records
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The value of record `typ`, if present.
    pub fn get(&self, typ: u64) -> Option<&[u8]> {
        self.find(typ)
            .ok()
            .map(|i| self.records[i].value.as_slice())
    }

    fn find(&self, typ: u64) -> Result<usize, usize> {
        self.records.binary_search_by_key(&typ, |r| r.typ)
    }

    /// Removes and returns the value of record `typ`.
    pub fn take(&mut self, typ: u64) -> Option<Vec<u8>> {
        self.find(typ).ok().map(|i| self.records.remove(i).value)
    }

    /// Removes record `typ` and decodes its value with `f`, which must consume
    /// the whole value (BOLT 1: a known type whose `length` is not exactly what
    /// its encoding needs MUST fail the stream).
    pub fn take_with<T>(
        &mut self,
        typ: u64,
        f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        let Some(value) = self.take(typ) else {
            return Ok(None);
        };
        let mut r = Reader::new(&value);
        let v = f(&mut r)?;
        r.finish()?;
        Ok(Some(v))
    }

    /// Inserts or replaces record `typ`, keeping the order.
    pub fn insert(&mut self, typ: u64, value: Vec<u8>) {
        match self.find(typ) {
            Ok(i) => self.records[i].value = value,
            Err(i) => self.records.insert(i, TlvRecord { typ, value }),
        }
    }

    /// What is left after the known records were taken: fails on an unknown
    /// even type (BOLT 1: "if type is even: MUST fail to parse the tlv_stream")
    /// and keeps the unknown odd ones.
    pub fn into_extension(self) -> Result<TlvStream, DecodeError> {
        match self.records.iter().find(|r| r.typ % 2 == 0) {
            Some(r) => Err(DecodeError::UnknownEvenTlv(r.typ)),
            None => Ok(self),
        }
    }

    /// Appends the encoded stream to `w`.
    pub fn write(&self, w: &mut Writer) {
        for r in &self.records {
            w.write_bigsize(r.typ);
            w.write_bigsize(r.value.len() as u64);
            w.write_bytes(&r.value);
        }
    }

    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        self.records
            .iter()
            .map(|r| bigsize_len(r.typ) + bigsize_len(r.value.len() as u64) + r.value.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_keeps_order_and_round_trips() {
        let mut s = TlvStream::new();
        s.insert(5, vec![5]);
        s.insert(1, vec![1]);
        s.insert(300, vec![3; 300]);
        s.insert(5, vec![6]);
        let mut w = Writer::new();
        s.write(&mut w);
        assert_eq!(w.len(), s.encoded_len());
        let back = TlvStream::decode(w.as_slice()).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            back.records().iter().map(|r| r.typ).collect::<Vec<_>>(),
            vec![1, 5, 300]
        );
        assert_eq!(back.get(5), Some(&[6u8][..]));
    }

    #[test]
    fn take_with_rejects_trailing_bytes() {
        let mut s = TlvStream::decode(&[0x02, 0x03, 0x00, 0x01, 0x02]).unwrap();
        assert_eq!(
            s.take_with(2, |r| r.read_u16()),
            Err(DecodeError::TrailingBytes(1))
        );
    }
}
