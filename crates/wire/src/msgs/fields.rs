//! Field codecs and the `wire_message!` macro that declares a message from
//! its BOLT field list, so each message is written once, as the spec lists it.

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::features::Features;
use crate::types::{ChainHash, ChannelId, ShortChannelId};

/// A fixed-position message field.
pub trait WireField: Sized {
    /// Writes the field.
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError>;
    /// Reads the field.
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A TLV record's value (it takes the whole record).
pub trait TlvValue: Sized {
    /// The value bytes.
    fn to_value(&self) -> Vec<u8>;
    /// Parses the value; must consume it exactly.
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

macro_rules! be_field {
    ($($t:ty => $read:ident, $write:ident);* $(;)?) => {$(
        impl WireField for $t {
            fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
                w.$write(*self);
                Ok(())
            }
            fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.$read()
            }
        }
    )*};
}

be_field! {
    u8 => read_u8, write_u8;
    u16 => read_u16, write_u16;
    u32 => read_u32, write_u32;
    u64 => read_u64, write_u64;
}

impl WireField for [u8; 32] {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(self);
        Ok(())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_array()
    }
}

impl WireField for ChannelId {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(&self.0);
        Ok(())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChannelId(r.read_array()?))
    }
}

impl WireField for ChainHash {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(&self.to_bytes());
        Ok(())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChainHash::from(r.read_array::<32>()?))
    }
}

impl WireField for PublicKey {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_point(self);
        Ok(())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_point()
    }
}

/// BOLT 1 `signature`: 64-byte compact ECDSA.
impl WireField for Signature {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(&self.serialize_compact());
        Ok(())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Signature::from_compact(&r.read_array::<64>()?).map_err(|_| DecodeError::InvalidSignature)
    }
}

/// `u16` length followed by that many bytes (`scriptpubkey`, `reason`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct U16Bytes(pub Vec<u8>);

impl WireField for U16Bytes {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u16_prefixed("bytes", &self.0)
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(U16Bytes(r.read_u16_prefixed()?.to_vec()))
    }
}

/// `u16` count followed by that many signatures (`htlc_signature`s).
impl WireField for Vec<Signature> {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        let n = u16::try_from(self.len()).map_err(|_| EncodeError::FieldTooLong {
            field: "signatures",
            len: self.len(),
        })?;
        w.write_u16(n);
        for s in self {
            s.write_field(w)?;
        }
        Ok(())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.read_u16()?;
        (0..n).map(|_| Signature::read_field(r)).collect()
    }
}

/// BOLT 4 `onion_routing_packet`: 1366 bytes, carried opaquely here.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OnionPacketBytes(pub Box<[u8; ONION_PACKET_LEN]>);

/// Size of a BOLT 4 payment onion.
pub const ONION_PACKET_LEN: usize = 1366;

impl std::fmt::Debug for OnionPacketBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OnionPacketBytes(version {}, ..)", self.0[0])
    }
}

impl WireField for OnionPacketBytes {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(&self.0[..]);
        Ok(())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(OnionPacketBytes(Box::new(r.read_array()?)))
    }
}

impl TlvValue for Vec<u8> {
    fn to_value(&self) -> Vec<u8> {
        self.clone()
    }
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_rest().to_vec())
    }
}

/// `channel_type`: a feature bit vector (BOLT 2 §"Defined Channel Types").
impl TlvValue for Features {
    fn to_value(&self) -> Vec<u8> {
        self.to_be_bytes()
    }
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Features::from_be_bytes(r.read_rest()))
    }
}

impl TlvValue for ShortChannelId {
    fn to_value(&self) -> Vec<u8> {
        self.to_u64().to_be_bytes().to_vec()
    }
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_short_channel_id()
    }
}

impl TlvValue for PublicKey {
    fn to_value(&self) -> Vec<u8> {
        self.serialize().to_vec()
    }
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_point()
    }
}

impl TlvValue for Signature {
    fn to_value(&self) -> Vec<u8> {
        self.serialize_compact().to_vec()
    }
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Signature::read_field(r)
    }
}

/// Declares a message: its fixed fields in spec order, then its known TLV
/// records (each an `Option`), with unknown odd records kept in `extension`.
macro_rules! wire_message {
    (
        $(#[$doc:meta])*
        $name:ident = $typ:literal {
            $( $(#[$fdoc:meta])* $field:ident : $fty:ty ),* $(,)?
        }
        tlvs {
            $( $(#[$tdoc:meta])* $tlv:ident : $tnum:literal => $tty:ty ),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fdoc])* pub $field: $fty, )*
            $( $(#[$tdoc])* pub $tlv: Option<$tty>, )*
            /// Unknown odd TLV records, kept verbatim.
            pub extension: $crate::tlv::TlvStream,
        }

        impl $crate::msgs::WireMessage for $name {
            const TYPE: u16 = $typ;

            fn write_payload(&self, w: &mut $crate::codec::Writer) -> Result<(), $crate::codec::EncodeError> {
                #[allow(unused_imports)]
                use $crate::msgs::fields::{TlvValue as _, WireField as _};
                $( self.$field.write_field(w)?; )*
                #[allow(unused_mut)]
                let mut tlvs = self.extension.clone();
                $( if let Some(v) = &self.$tlv { tlvs.insert($tnum, v.to_value()); } )*
                tlvs.write(w);
                Ok(())
            }

            fn read_payload(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::DecodeError> {
                #[allow(unused_imports)]
                use $crate::msgs::fields::{TlvValue, WireField};
                $( let $field = <$fty as WireField>::read_field(r)?; )*
                #[allow(unused_mut)]
                let mut tlvs = $crate::tlv::TlvStream::decode(r.read_rest())?;
                $( let $tlv = tlvs.take_with($tnum, |v| <$tty as TlvValue>::from_value(v))?; )*
                Ok($name { $( $field, )* $( $tlv, )* extension: tlvs.into_extension()? })
            }
        }
    };
}

pub(crate) use wire_message;
