//! BOLT 7 §"Query Messages" (`gossip_queries`): `query_short_channel_ids`,
//! `reply_short_channel_ids_end`, `query_channel_range`,
//! `reply_channel_range`, `gossip_timestamp_filter`, with their TLVs.
//!
//! Encoded lists start with an `encoding_type`: 0 is uncompressed; 1 (zlib)
//! is what older nodes sent. BOLT 7 now says a sender "MUST NOT" use zlib;
//! we read it (bounded) and always write 0.

use bitcoin::constants::ChainHash;

use super::fields::{wire_message, TlvValue, WireField};
use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::types::ShortChannelId;

/// `encoding_type` 0.
pub const ENCODING_UNCOMPRESSED: u8 = 0;
/// `encoding_type` 1 (deprecated; read only).
pub const ENCODING_ZLIB: u8 = 1;

/// The most bytes a zlib list may inflate to: a message is at most 65535
/// bytes, so a list of more than that cannot be meant.
const MAX_INFLATED: usize = 65_535 * 4;

/// The list bytes after the `encoding_type`, inflated if needed.
fn decoded_list(bytes: &[u8], field: &'static str) -> Result<Vec<u8>, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::InvalidValue {
            field,
            reason: "empty: the encoding_type byte is missing",
        }),
        Some((&ENCODING_UNCOMPRESSED, rest)) => Ok(rest.to_vec()),
        Some((&ENCODING_ZLIB, rest)) => {
            miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(rest, MAX_INFLATED).map_err(
                |_| DecodeError::InvalidValue {
                    field,
                    reason: "zlib data does not inflate",
                },
            )
        }
        Some(_) => Err(DecodeError::InvalidValue {
            field,
            reason: "unknown encoding_type",
        }),
    }
}

/// `encoded_short_ids`: a `u16`-length list of short channel ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedShortIds(pub Vec<ShortChannelId>);

fn read_ids(raw: &[u8], field: &'static str) -> Result<Vec<ShortChannelId>, DecodeError> {
    if !raw.len().is_multiple_of(8) {
        return Err(DecodeError::InvalidValue {
            field,
            reason: "not a whole number of short channel ids",
        });
    }
    Ok(raw
        .chunks_exact(8)
        .map(|c| ShortChannelId::from_u64(u64::from_be_bytes(c.try_into().expect("8 bytes"))))
        .collect())
}

impl WireField for EncodedShortIds {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        let mut v = Vec::with_capacity(1 + 8 * self.0.len());
        v.push(ENCODING_UNCOMPRESSED);
        for id in &self.0 {
            v.extend_from_slice(&id.to_u64().to_be_bytes());
        }
        w.write_u16_prefixed("encoded_short_ids", &v)
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bytes = r.read_u16_prefixed()?;
        let raw = decoded_list(bytes, "encoded_short_ids")?;
        Ok(EncodedShortIds(read_ids(&raw, "encoded_short_ids")?))
    }
}

/// `query_flags` (type 1 of `query_short_channel_ids`): one bigsize per id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryFlags(pub Vec<u64>);

impl TlvValue for QueryFlags {
    fn to_value(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_u8(ENCODING_UNCOMPRESSED);
        for f in &self.0 {
            w.write_bigsize(*f);
        }
        w.into_vec()
    }
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let raw = decoded_list(r.read_rest(), "encoded_query_flags")?;
        let mut inner = Reader::new(&raw);
        let mut flags = Vec::new();
        while !inner.is_empty() {
            flags.push(inner.read_bigsize()?);
        }
        Ok(QueryFlags(flags))
    }
}

/// `query_option` (type 1 of `query_channel_range`): a bigsize of flags
/// (bit 0: want timestamps, bit 1: want checksums).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryOption(pub u64);

impl TlvValue for QueryOption {
    fn to_value(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_bigsize(self.0);
        w.into_vec()
    }
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(QueryOption(r.read_bigsize()?))
    }
}

/// `timestamps_tlv` (type 1 of `reply_channel_range`): for each id, the
/// `channel_update` timestamps of `node_id_1` and `node_id_2`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timestamps(pub Vec<(u32, u32)>);

impl TlvValue for Timestamps {
    fn to_value(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_u8(ENCODING_UNCOMPRESSED);
        for (a, b) in &self.0 {
            w.write_u32(*a);
            w.write_u32(*b);
        }
        w.into_vec()
    }
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let raw = decoded_list(r.read_rest(), "encoded_timestamps")?;
        if raw.len() % 8 != 0 {
            return Err(DecodeError::InvalidValue {
                field: "encoded_timestamps",
                reason: "not a whole number of timestamp pairs",
            });
        }
        Ok(Timestamps(
            raw.chunks_exact(8)
                .map(|c| {
                    (
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                        u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                    )
                })
                .collect(),
        ))
    }
}

/// `checksums_tlv` (type 3 of `reply_channel_range`): for each id, the
/// CRC32C checksums of both `channel_update`s (never compressed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checksums(pub Vec<(u32, u32)>);

impl TlvValue for Checksums {
    fn to_value(&self) -> Vec<u8> {
        let mut w = Writer::new();
        for (a, b) in &self.0 {
            w.write_u32(*a);
            w.write_u32(*b);
        }
        w.into_vec()
    }
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let raw = r.read_rest();
        if !raw.len().is_multiple_of(8) {
            return Err(DecodeError::InvalidValue {
                field: "checksums_tlv",
                reason: "not a whole number of checksum pairs",
            });
        }
        Ok(Checksums(
            raw.chunks_exact(8)
                .map(|c| {
                    (
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                        u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                    )
                })
                .collect(),
        ))
    }
}

wire_message! {
    /// BOLT 7 `query_short_channel_ids` (type 261).
    QueryShortChannelIds = 261 {
        /// `chain_hash`
        chain_hash: ChainHash,
        /// `encoded_short_ids`
        encoded_short_ids: EncodedShortIds,
    }
    tlvs {
        /// type 1 `query_flags`
        query_flags: 1 => QueryFlags,
    }
}

wire_message! {
    /// BOLT 7 `reply_short_channel_ids_end` (type 262).
    ReplyShortChannelIdsEnd = 262 {
        /// `chain_hash`
        chain_hash: ChainHash,
        /// `full_information`
        full_information: u8,
    }
    tlvs {}
}

wire_message! {
    /// BOLT 7 `query_channel_range` (type 263).
    QueryChannelRange = 263 {
        /// `chain_hash`
        chain_hash: ChainHash,
        /// `first_blocknum`
        first_blocknum: u32,
        /// `number_of_blocks`
        number_of_blocks: u32,
    }
    tlvs {
        /// type 1 `query_option`
        query_option: 1 => QueryOption,
    }
}

wire_message! {
    /// BOLT 7 `reply_channel_range` (type 264).
    ReplyChannelRange = 264 {
        /// `chain_hash`
        chain_hash: ChainHash,
        /// `first_blocknum`
        first_blocknum: u32,
        /// `number_of_blocks`
        number_of_blocks: u32,
        /// `sync_complete`
        sync_complete: u8,
        /// `encoded_short_ids`
        encoded_short_ids: EncodedShortIds,
    }
    tlvs {
        /// type 1 `timestamps_tlv`
        timestamps: 1 => Timestamps,
        /// type 3 `checksums_tlv`
        checksums: 3 => Checksums,
    }
}

wire_message! {
    /// BOLT 7 `gossip_timestamp_filter` (type 265).
    GossipTimestampFilter = 265 {
        /// `chain_hash`
        chain_hash: ChainHash,
        /// `first_timestamp`
        first_timestamp: u32,
        /// `timestamp_range`
        timestamp_range: u32,
    }
    tlvs {}
}
