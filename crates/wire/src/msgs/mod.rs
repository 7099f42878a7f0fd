//! Lightning messages (BOLT 1 §"Lightning Message Format") and the registry
//! that maps a `type` to its decoder.
//!
//! Each message is a struct implementing [`WireMessage`]; the [`Message`]
//! enum is generated from one table in this file, so adding a message later
//! (BOLT 2, BOLT 7) is one line here plus its module.

mod channel;
mod control;
pub mod fields;
pub mod gossip;
pub mod gossip_queries;
mod setup;

pub use channel::{
    AcceptChannel, ChannelReady, ChannelReestablish, ClosingComplete, ClosingSig, ClosingSigned,
    CommitmentSigned, FeeRange, FundingCreated, FundingSigned, OpenChannel, RevokeAndAck, Shutdown,
    UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc, UpdateFee, UpdateFulfillHtlc,
};
pub use control::{Ping, Pong, MAX_PONG_BYTES};
pub use fields::{OnionPacketBytes, U16Bytes, ONION_PACKET_LEN};
pub use gossip::{
    Addresses, AnnouncementSignatures, ChannelAnnouncement, ChannelUpdate, NodeAnnouncement,
};
pub use gossip_queries::{
    Checksums, EncodedShortIds, GossipTimestampFilter, QueryChannelRange, QueryFlags, QueryOption,
    QueryShortChannelIds, ReplyChannelRange, ReplyShortChannelIdsEnd, Timestamps,
};
pub use setup::{ErrorMessage, Init, Warning};

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::tlv::TlvStream;

/// Largest message the transport can carry (BOLT 1, BOLT 8).
pub const MAX_MESSAGE_LEN: usize = 65535;

/// A message with a fixed `type` and a payload codec.
pub trait WireMessage: Sized {
    /// The message `type`.
    const TYPE: u16;
    /// Writes the payload and extension (everything after `type`).
    fn write_payload(&self, w: &mut Writer) -> Result<(), EncodeError>;
    /// Reads the payload and extension from everything after `type`.
    fn read_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The whole message: `type` then payload, at most 65535 bytes.
    fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        w.write_u16(Self::TYPE);
        self.write_payload(&mut w)?;
        if w.len() > MAX_MESSAGE_LEN {
            return Err(EncodeError::MessageTooLong(w.len()));
        }
        Ok(w.into_vec())
    }
}

/// Reads a message's trailing `extension` TLV stream (BOLT 1: unknown even
/// records fail the message, unknown odd records are kept so that the bytes
/// can be reproduced).
pub fn read_extension(r: &mut Reader<'_>) -> Result<TlvStream, DecodeError> {
    TlvStream::decode(r.read_rest())?.into_extension()
}

/// A message whose type we do not know. Only odd types decode to this
/// (BOLT 1: "upon receiving a message of odd, unknown type: MUST ignore").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMessage {
    /// The message `type` (always odd when decoded).
    pub typ: u16,
    /// Everything after the type.
    pub payload: Vec<u8>,
}

macro_rules! messages {
    ($($(#[$doc:meta])* $variant:ident($ty:ty)),* $(,)?) => {
        /// Every message this node understands, plus [`Message::Unknown`] for
        /// odd types it may ignore.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Message {
            $($(#[$doc])* $variant($ty),)*
            /// An unknown odd message.
            Unknown(UnknownMessage),
        }

        impl Message {
            /// The message `type`.
            pub fn typ(&self) -> u16 {
                match self {
                    $(Message::$variant(_) => <$ty as WireMessage>::TYPE,)*
                    Message::Unknown(m) => m.typ,
                }
            }

            /// Decodes a whole message (`type` then payload). Unknown odd
            /// types give [`Message::Unknown`]; unknown even types are an
            /// error, after which BOLT 1 says the connection MUST be closed.
            pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
                let mut r = Reader::new(bytes);
                let typ = r.read_u16()?;
                match typ {
                    $(<$ty as WireMessage>::TYPE => Ok(Message::$variant(<$ty>::read_payload(&mut r)?)),)*
                    odd if odd % 2 == 1 => Ok(Message::Unknown(UnknownMessage { typ, payload: r.read_rest().to_vec() })),
                    even => Err(DecodeError::UnknownEvenMessage(even)),
                }
            }

            /// Encodes the whole message.
            pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
                match self {
                    $(Message::$variant(m) => m.encode(),)*
                    Message::Unknown(m) => {
                        let mut w = Writer::new();
                        w.write_u16(m.typ);
                        w.write_bytes(&m.payload);
                        if w.len() > MAX_MESSAGE_LEN {
                            return Err(EncodeError::MessageTooLong(w.len()));
                        }
                        Ok(w.into_vec())
                    }
                }
            }

            /// The BOLT name of the message, for logs.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Message::$variant(_) => stringify!($variant),)*
                    Message::Unknown(_) => "Unknown",
                }
            }
        }

        $(impl From<$ty> for Message {
            fn from(m: $ty) -> Message {
                Message::$variant(m)
            }
        })*
    };
}

messages! {
    /// BOLT 1 `warning` (type 1).
    Warning(Warning),
    /// BOLT 1 `init` (type 16).
    Init(Init),
    /// BOLT 1 `error` (type 17).
    Error(ErrorMessage),
    /// BOLT 1 `ping` (type 18).
    Ping(Ping),
    /// BOLT 1 `pong` (type 19).
    Pong(Pong),
    /// BOLT 2 `open_channel` (type 32).
    OpenChannel(OpenChannel),
    /// BOLT 2 `accept_channel` (type 33).
    AcceptChannel(AcceptChannel),
    /// BOLT 2 `funding_created` (type 34).
    FundingCreated(FundingCreated),
    /// BOLT 2 `funding_signed` (type 35).
    FundingSigned(FundingSigned),
    /// BOLT 2 `channel_ready` (type 36).
    ChannelReady(ChannelReady),
    /// BOLT 2 `shutdown` (type 38).
    Shutdown(Shutdown),
    /// BOLT 2 `closing_signed` (type 39).
    ClosingSigned(ClosingSigned),
    /// BOLT 2 `closing_complete` (type 40).
    ClosingComplete(ClosingComplete),
    /// BOLT 2 `closing_sig` (type 41).
    ClosingSig(ClosingSig),
    /// BOLT 2 `update_add_htlc` (type 128).
    UpdateAddHtlc(UpdateAddHtlc),
    /// BOLT 2 `update_fulfill_htlc` (type 130).
    UpdateFulfillHtlc(UpdateFulfillHtlc),
    /// BOLT 2 `update_fail_htlc` (type 131).
    UpdateFailHtlc(UpdateFailHtlc),
    /// BOLT 2 `commitment_signed` (type 132).
    CommitmentSigned(CommitmentSigned),
    /// BOLT 2 `revoke_and_ack` (type 133).
    RevokeAndAck(RevokeAndAck),
    /// BOLT 2 `update_fee` (type 134).
    UpdateFee(UpdateFee),
    /// BOLT 2 `update_fail_malformed_htlc` (type 135).
    UpdateFailMalformedHtlc(UpdateFailMalformedHtlc),
    /// BOLT 2 `channel_reestablish` (type 136).
    ChannelReestablish(ChannelReestablish),
    /// BOLT 7 `channel_announcement` (type 256).
    ChannelAnnouncement(ChannelAnnouncement),
    /// BOLT 7 `node_announcement` (type 257).
    NodeAnnouncement(NodeAnnouncement),
    /// BOLT 7 `channel_update` (type 258).
    ChannelUpdate(ChannelUpdate),
    /// BOLT 7 `announcement_signatures` (type 259).
    AnnouncementSignatures(AnnouncementSignatures),
    /// BOLT 7 `query_short_channel_ids` (type 261).
    QueryShortChannelIds(QueryShortChannelIds),
    /// BOLT 7 `reply_short_channel_ids_end` (type 262).
    ReplyShortChannelIdsEnd(ReplyShortChannelIdsEnd),
    /// BOLT 7 `query_channel_range` (type 263).
    QueryChannelRange(QueryChannelRange),
    /// BOLT 7 `reply_channel_range` (type 264).
    ReplyChannelRange(ReplyChannelRange),
    /// BOLT 7 `gossip_timestamp_filter` (type 265).
    GossipTimestampFilter(GossipTimestampFilter),
}
