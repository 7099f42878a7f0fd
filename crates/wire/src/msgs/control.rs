//! BOLT 1 §"Control Messages": `ping` and `pong`.

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::msgs::{read_extension, WireMessage};
use crate::tlv::TlvStream;

/// BOLT 1: a `ping` with `num_pong_bytes` of 65532 or more MUST be ignored
/// (no `pong` could carry that many bytes).
pub const MAX_PONG_BYTES: u16 = 65531;

/// BOLT 1 §"The `ping` and `pong` Messages", type 18.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// How many bytes the `pong` must carry.
    pub num_pong_bytes: u16,
    /// Padding; senders SHOULD set it to zeros and MUST NOT put secrets in it.
    pub ignored: Vec<u8>,
    /// Unknown odd TLV records after the payload.
    pub extension: TlvStream,
}

impl Ping {
    /// A ping asking for `num_pong_bytes`, with `byteslen` zero bytes of padding.
    pub fn new(num_pong_bytes: u16, byteslen: u16) -> Self {
        Ping {
            num_pong_bytes,
            ignored: vec![0; usize::from(byteslen)],
            extension: TlvStream::new(),
        }
    }

    /// The `pong` BOLT 1 requires in reply, or `None` if the ping MUST be
    /// ignored (`num_pong_bytes` >= 65532).
    pub fn reply(&self) -> Option<Pong> {
        (self.num_pong_bytes <= MAX_PONG_BYTES).then(|| Pong::new(self.num_pong_bytes))
    }
}

impl WireMessage for Ping {
    const TYPE: u16 = 18;

    fn write_payload(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u16(self.num_pong_bytes);
        w.write_u16_prefixed("ignored", &self.ignored)?;
        self.extension.write(w);
        Ok(())
    }

    fn read_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let num_pong_bytes = r.read_u16()?;
        let ignored = r.read_u16_prefixed()?.to_vec();
        Ok(Ping {
            num_pong_bytes,
            ignored,
            extension: read_extension(r)?,
        })
    }
}

/// BOLT 1 §"The `ping` and `pong` Messages", type 19.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// Padding of the length the ping asked for.
    pub ignored: Vec<u8>,
    /// Unknown odd TLV records after the payload.
    pub extension: TlvStream,
}

impl Pong {
    /// A pong with `byteslen` zero bytes.
    pub fn new(byteslen: u16) -> Self {
        Pong {
            ignored: vec![0; usize::from(byteslen)],
            extension: TlvStream::new(),
        }
    }
}

impl WireMessage for Pong {
    const TYPE: u16 = 19;

    fn write_payload(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u16_prefixed("ignored", &self.ignored)?;
        self.extension.write(w);
        Ok(())
    }

    fn read_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ignored = r.read_u16_prefixed()?.to_vec();
        Ok(Pong {
            ignored,
            extension: read_extension(r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgs::Message;

    #[test]
    fn ping_bytes_and_reply() {
        let ping = Ping::new(4, 2);
        assert_eq!(
            ping.encode().unwrap(),
            vec![0x00, 0x12, 0x00, 0x04, 0x00, 0x02, 0, 0]
        );
        assert_eq!(ping.reply(), Some(Pong::new(4)));
        assert_eq!(
            Pong::new(4).encode().unwrap(),
            vec![0x00, 0x13, 0x00, 0x04, 0, 0, 0, 0]
        );
        // BOLT 1: num_pong_bytes not less than 65532 MUST be ignored.
        assert_eq!(Ping::new(65531, 0).reply(), Some(Pong::new(65531)));
        assert_eq!(Ping::new(65532, 0).reply(), None);
        assert_eq!(Ping::new(65535, 0).reply(), None);
    }

    #[test]
    fn largest_pong_fits_a_message() {
        let bytes = Pong::new(MAX_PONG_BYTES).encode().unwrap();
        assert_eq!(bytes.len(), 65535);
        assert!(
            matches!(Message::decode(&bytes), Ok(Message::Pong(p)) if p.ignored.len() == 65531)
        );
    }

    #[test]
    fn short_ping_is_rejected() {
        assert_eq!(
            Message::decode(&[0x00, 0x12, 0x00, 0x04, 0x00, 0x05, 0, 0]),
            Err(DecodeError::ShortRead { needed: 3 })
        );
    }
}
