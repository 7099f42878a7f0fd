//! Beongae's Lightning wire codec: BOLT 1 fundamental types, `bigsize` and
//! TLV streams, BOLT 9 feature bits, and the messages the node speaks.
//!
//! This crate is pure: bytes in, values out, and never a panic on any input
//! (decoding returns [`DecodeError`]).

pub mod amount;
pub mod codec;
pub mod features;
pub mod msgs;
pub mod tlv;
pub mod types;

pub use amount::{Msat, PaymentHash, Preimage};
pub use codec::{DecodeError, EncodeError, Reader, Writer};
pub use features::{Context, Feature, FeatureError, Features};
pub use msgs::{ErrorMessage, Init, Message, Ping, Pong, UnknownMessage, Warning, WireMessage};
pub use tlv::{TlvRecord, TlvStream};
pub use types::{ChainHash, ChannelId, NetAddress, NodeId, ShortChannelId};
