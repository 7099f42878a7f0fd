//! BOLT 1 §"Setup Messages": `init`, `error` and `warning`.

use std::fmt::Write as _;

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::features::Features;
use crate::msgs::{read_extension, WireMessage};
use crate::tlv::TlvStream;
use crate::types::{ChainHash, ChannelId, NetAddress};

/// `init_tlvs` type 1: `networks`.
const TLV_NETWORKS: u64 = 1;
/// `init_tlvs` type 3: `remote_addr`.
const TLV_REMOTE_ADDR: u64 = 3;

/// BOLT 1 §"The `init` Message", type 16.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Init {
    /// `globalfeatures`: legacy, combined with `features` by the receiver.
    pub global_features: Features,
    /// `features`.
    pub features: Features,
    /// `networks`: the chains the node gossips or opens channels for.
    pub networks: Option<Vec<ChainHash>>,
    /// `remote_addr`: the address the sender sees us connecting from.
    pub remote_addr: Option<NetAddress>,
    /// Unknown odd TLV records (e.g. `option_will_fund`, type 5), kept verbatim.
    pub extension: TlvStream,
}

impl Init {
    /// BOLT 1: the receiver "MUST combine (logical OR) the two feature bitmaps
    /// into one logical `features` map".
    pub fn combined_features(&self) -> Features {
        self.global_features.union(&self.features)
    }
}

impl WireMessage for Init {
    const TYPE: u16 = 16;

    fn write_payload(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u16_prefixed("globalfeatures", &self.global_features.to_be_bytes())?;
        w.write_u16_prefixed("features", &self.features.to_be_bytes())?;
        let mut tlvs = self.extension.clone();
        if let Some(networks) = &self.networks {
            let value = networks.iter().flat_map(|c| c.to_bytes()).collect();
            tlvs.insert(TLV_NETWORKS, value);
        }
        if let Some(addr) = &self.remote_addr {
            let mut v = Writer::new();
            addr.write(&mut v);
            tlvs.insert(TLV_REMOTE_ADDR, v.into_vec());
        }
        tlvs.write(w);
        Ok(())
    }

    fn read_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let global_features = Features::from_be_bytes(r.read_u16_prefixed()?);
        let features = Features::from_be_bytes(r.read_u16_prefixed()?);
        let mut tlvs = TlvStream::decode(r.read_rest())?;
        let networks = tlvs.take_with(TLV_NETWORKS, |v| {
            if v.remaining() % 32 != 0 {
                return Err(DecodeError::InvalidValue {
                    field: "networks",
                    reason: "length is not a multiple of 32",
                });
            }
            let mut chains = Vec::with_capacity(v.remaining() / 32);
            while !v.is_empty() {
                chains.push(ChainHash::from(v.read_array::<32>()?));
            }
            Ok(chains)
        })?;
        let remote_addr = tlvs.take_with(TLV_REMOTE_ADDR, NetAddress::read)?;
        Ok(Init {
            global_features,
            features,
            networks,
            remote_addr,
            extension: tlvs.into_extension()?,
        })
    }
}

/// The `data` of an `error` or `warning` made safe to print: verbatim if it
/// is printable ASCII, else escaped (BOLT 1: "if data is not composed solely
/// of printable ASCII characters ... SHOULD NOT print out data verbatim").
pub(crate) fn printable(data: &[u8]) -> String {
    if data.iter().all(|b| (32..=126).contains(b)) {
        return String::from_utf8_lossy(data).into_owned();
    }
    let mut s = String::with_capacity(data.len() * 2 + 4);
    s.push_str("hex:");
    data.iter().for_each(|b| {
        let _ = write!(s, "{b:02x}");
    });
    s
}

macro_rules! error_like {
    ($(#[$doc:meta])* $name:ident = $typ:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// The channel concerned; all zeros means all channels.
            pub channel_id: ChannelId,
            /// Human-readable explanation (may be empty).
            pub data: Vec<u8>,
            /// Unknown odd TLV records after the payload.
            pub extension: TlvStream,
        }

        impl $name {
            /// A message about `channel_id` with `text` as `data`.
            pub fn new(channel_id: ChannelId, text: &str) -> Self {
                $name { channel_id, data: text.as_bytes().to_vec(), extension: TlvStream::new() }
            }

            /// `data` in a form that is safe to log or show.
            pub fn printable_data(&self) -> String {
                printable(&self.data)
            }
        }

        impl WireMessage for $name {
            const TYPE: u16 = $typ;

            fn write_payload(&self, w: &mut Writer) -> Result<(), EncodeError> {
                w.write_bytes(&self.channel_id.0);
                w.write_u16_prefixed("data", &self.data)?;
                self.extension.write(w);
                Ok(())
            }

            fn read_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let channel_id = ChannelId(r.read_array()?);
                let data = r.read_u16_prefixed()?.to_vec();
                Ok($name { channel_id, data, extension: read_extension(r)? })
            }
        }
    };
}

error_like! {
    /// BOLT 1 §"The `error` and `warning` Messages": `error`, type 17. The
    /// sender fails the channel(s) it names.
    ErrorMessage = 17
}

error_like! {
    /// BOLT 1 §"The `error` and `warning` Messages": `warning`, type 1. The
    /// receiver logs it; nothing is failed.
    Warning = 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Feature;
    use crate::msgs::Message;
    use std::net::Ipv4Addr;

    #[test]
    fn init_with_tlvs_exact_bytes() {
        let init = Init {
            global_features: Features::empty(),
            features: Features::empty().with_optional(Feature::DataLossProtect),
            networks: Some(vec![ChainHash::REGTEST]),
            remote_addr: Some(NetAddress::Ipv4 {
                addr: Ipv4Addr::new(203, 0, 113, 9),
                port: 9735,
            }),
            extension: TlvStream::new(),
        };
        let bytes = init.encode().unwrap();
        let mut expected = hex::decode(
            "0010" /* type */
                .to_owned()
                + "0000"
                + "000102"
                + "0120",
        )
        .unwrap();
        expected.extend_from_slice(&ChainHash::REGTEST.to_bytes());
        expected.extend_from_slice(&hex::decode("030701cb00710926 07".replace(' ', "")).unwrap());
        assert_eq!(bytes, expected);
        assert_eq!(Message::decode(&bytes), Ok(Message::Init(init)));
    }

    #[test]
    fn networks_must_be_whole_chain_hashes() {
        let bytes = hex::decode("00100000000001021111").unwrap();
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::InvalidValue {
                field: "networks",
                reason: "length is not a multiple of 32"
            })
        );
    }

    #[test]
    fn oversize_messages_are_not_encoded() {
        use crate::codec::EncodeError;
        let fits = Warning {
            data: vec![b'x'; 65535 - 36],
            ..Warning::new(ChannelId::ALL, "")
        };
        assert_eq!(fits.encode().unwrap().len(), 65535);
        let over = Warning {
            data: vec![b'x'; 65535 - 35],
            ..fits.clone()
        };
        assert_eq!(over.encode(), Err(EncodeError::MessageTooLong(65536)));
        let field = Warning {
            data: vec![b'x'; 70_000],
            ..fits
        };
        assert_eq!(
            field.encode(),
            Err(EncodeError::FieldTooLong {
                field: "data",
                len: 70_000
            })
        );
    }

    #[test]
    fn error_data_printing() {
        let e = ErrorMessage::new(ChannelId::ALL, "bad thing");
        assert_eq!(e.printable_data(), "bad thing");
        let e = ErrorMessage {
            data: vec![0x41, 0x0a, 0x00],
            ..e
        };
        assert_eq!(e.printable_data(), "hex:410a00");
        let bytes = e.encode().unwrap();
        assert_eq!(&bytes[..2], &[0x00, 0x11]);
        assert_eq!(bytes.len(), 2 + 32 + 2 + 3);
        let w = Warning::new(ChannelId([1; 32]), "w");
        assert_eq!(&w.encode().unwrap()[..3], &[0x00, 0x01, 0x01]);
    }
}
