//! BOLT 4 §"Returning Errors" and §"Failure Messages": the failure message
//! an erring node returns, the return packet that carries it, its
//! obfuscation at every hop, and its attribution at the origin.

use beongae_wire::{DecodeError, Msat, Reader, Writer};

use crate::crypto::{self, SharedSecret, AMMAG, UM};
use crate::packet::{OnionError, OnionPacket};

/// Failure code flag: unparsable onion encrypted by sending peer.
pub const BADONION: u16 = 0x8000;
/// Failure code flag: permanent failure (otherwise transient).
pub const PERM: u16 = 0x4000;
/// Failure code flag: node failure (otherwise channel).
pub const NODE: u16 = 0x2000;
/// Failure code flag: channel forwarding parameter was violated.
pub const UPDATE: u16 = 0x1000;

/// BOLT 4 §"Returning Errors", erring node: "MUST set `pad` such that the
/// `failure_len` plus `pad_len` is at least 256" and "SHOULD set" it equal.
pub const MIN_FAILURE_AND_PAD_LEN: usize = 256;

/// BOLT 4 §"Returning Errors", origin node: "SHOULD continue decrypting,
/// until the loop has been repeated 27 times".
pub const DECRYPT_ROUNDS: usize = 27;

/// A `failuremsg` (BOLT 4 §"Failure Messages"): a 2-byte `failure_code`
/// whose top bits are the [`BADONION`], [`PERM`], [`NODE`] and [`UPDATE`]
/// flags, then the data of that code. A `channel_update` is kept as raw
/// bytes (it is only ever used for a retry, never gossiped).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureMessage {
    /// NODE|2 `temporary_node_failure`.
    TemporaryNodeFailure,
    /// PERM|NODE|2 `permanent_node_failure`.
    PermanentNodeFailure,
    /// PERM|NODE|3 `required_node_feature_missing`.
    RequiredNodeFeatureMissing,
    /// BADONION|PERM|4 `invalid_onion_version`.
    InvalidOnionVersion {
        /// `sha256_of_onion`
        sha256_of_onion: [u8; 32],
    },
    /// BADONION|PERM|5 `invalid_onion_hmac`.
    InvalidOnionHmac {
        /// `sha256_of_onion`
        sha256_of_onion: [u8; 32],
    },
    /// BADONION|PERM|6 `invalid_onion_key`.
    InvalidOnionKey {
        /// `sha256_of_onion`
        sha256_of_onion: [u8; 32],
    },
    /// UPDATE|7 `temporary_channel_failure`.
    TemporaryChannelFailure {
        /// `channel_update` (possibly empty).
        channel_update: Vec<u8>,
    },
    /// PERM|8 `permanent_channel_failure`.
    PermanentChannelFailure,
    /// PERM|9 `required_channel_feature_missing`.
    RequiredChannelFeatureMissing,
    /// PERM|10 `unknown_next_peer`.
    UnknownNextPeer,
    /// UPDATE|11 `amount_below_minimum`.
    AmountBelowMinimum {
        /// `htlc_msat`
        htlc_msat: Msat,
        /// `channel_update`
        channel_update: Vec<u8>,
    },
    /// UPDATE|12 `fee_insufficient`.
    FeeInsufficient {
        /// `htlc_msat`
        htlc_msat: Msat,
        /// `channel_update`
        channel_update: Vec<u8>,
    },
    /// UPDATE|13 `incorrect_cltv_expiry`.
    IncorrectCltvExpiry {
        /// `cltv_expiry`
        cltv_expiry: u32,
        /// `channel_update`
        channel_update: Vec<u8>,
    },
    /// UPDATE|14 `expiry_too_soon`.
    ExpiryTooSoon {
        /// `channel_update`
        channel_update: Vec<u8>,
    },
    /// PERM|15 `incorrect_or_unknown_payment_details`.
    IncorrectOrUnknownPaymentDetails {
        /// `htlc_msat`
        htlc_msat: Msat,
        /// `height`: the final node's best block height.
        height: u32,
    },
    /// 18 `final_incorrect_cltv_expiry`.
    FinalIncorrectCltvExpiry {
        /// `cltv_expiry`
        cltv_expiry: u32,
    },
    /// 19 `final_incorrect_htlc_amount`.
    FinalIncorrectHtlcAmount {
        /// `incoming_htlc_amt`
        incoming_htlc_amt: Msat,
    },
    /// UPDATE|20 `channel_disabled`.
    ChannelDisabled {
        /// `disabled_flags` (none defined: zero).
        disabled_flags: u16,
        /// `channel_update`
        channel_update: Vec<u8>,
    },
    /// 21 `expiry_too_far`.
    ExpiryTooFar,
    /// PERM|22 `invalid_onion_payload`, with the offending TLV `type` and
    /// its byte `offset` when the node narrowed it down.
    InvalidOnionPayload {
        /// `type` and `offset`, if given.
        tlv: Option<(u64, u16)>,
    },
    /// 23 `mpp_timeout`.
    MppTimeout,
    /// BADONION|PERM|24 `invalid_onion_blinding`.
    InvalidOnionBlinding {
        /// `sha256_of_onion`
        sha256_of_onion: [u8; 32],
    },
    /// A code this implementation does not know, with its raw data.
    Unknown {
        /// `failure_code`
        code: u16,
        /// Everything after the code.
        data: Vec<u8>,
    },
}

/// `failure_code` of each known message.
mod code {
    use super::{BADONION, NODE, PERM, UPDATE};
    pub const TEMPORARY_NODE_FAILURE: u16 = NODE | 2;
    pub const PERMANENT_NODE_FAILURE: u16 = PERM | NODE | 2;
    pub const REQUIRED_NODE_FEATURE_MISSING: u16 = PERM | NODE | 3;
    pub const INVALID_ONION_VERSION: u16 = BADONION | PERM | 4;
    pub const INVALID_ONION_HMAC: u16 = BADONION | PERM | 5;
    pub const INVALID_ONION_KEY: u16 = BADONION | PERM | 6;
    pub const TEMPORARY_CHANNEL_FAILURE: u16 = UPDATE | 7;
    pub const PERMANENT_CHANNEL_FAILURE: u16 = PERM | 8;
    pub const REQUIRED_CHANNEL_FEATURE_MISSING: u16 = PERM | 9;
    pub const UNKNOWN_NEXT_PEER: u16 = PERM | 10;
    pub const AMOUNT_BELOW_MINIMUM: u16 = UPDATE | 11;
    pub const FEE_INSUFFICIENT: u16 = UPDATE | 12;
    pub const INCORRECT_CLTV_EXPIRY: u16 = UPDATE | 13;
    pub const EXPIRY_TOO_SOON: u16 = UPDATE | 14;
    pub const INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS: u16 = PERM | 15;
    pub const FINAL_INCORRECT_CLTV_EXPIRY: u16 = 18;
    pub const FINAL_INCORRECT_HTLC_AMOUNT: u16 = 19;
    pub const CHANNEL_DISABLED: u16 = UPDATE | 20;
    pub const EXPIRY_TOO_FAR: u16 = 21;
    pub const INVALID_ONION_PAYLOAD: u16 = PERM | 22;
    pub const MPP_TIMEOUT: u16 = 23;
    pub const INVALID_ONION_BLINDING: u16 = BADONION | PERM | 24;
}

impl FailureMessage {
    /// The `failure_code`.
    pub fn code(&self) -> u16 {
        use FailureMessage as F;
        match self {
            F::TemporaryNodeFailure => code::TEMPORARY_NODE_FAILURE,
            F::PermanentNodeFailure => code::PERMANENT_NODE_FAILURE,
            F::RequiredNodeFeatureMissing => code::REQUIRED_NODE_FEATURE_MISSING,
            F::InvalidOnionVersion { .. } => code::INVALID_ONION_VERSION,
            F::InvalidOnionHmac { .. } => code::INVALID_ONION_HMAC,
            F::InvalidOnionKey { .. } => code::INVALID_ONION_KEY,
            F::TemporaryChannelFailure { .. } => code::TEMPORARY_CHANNEL_FAILURE,
            F::PermanentChannelFailure => code::PERMANENT_CHANNEL_FAILURE,
            F::RequiredChannelFeatureMissing => code::REQUIRED_CHANNEL_FEATURE_MISSING,
            F::UnknownNextPeer => code::UNKNOWN_NEXT_PEER,
            F::AmountBelowMinimum { .. } => code::AMOUNT_BELOW_MINIMUM,
            F::FeeInsufficient { .. } => code::FEE_INSUFFICIENT,
            F::IncorrectCltvExpiry { .. } => code::INCORRECT_CLTV_EXPIRY,
            F::ExpiryTooSoon { .. } => code::EXPIRY_TOO_SOON,
            F::IncorrectOrUnknownPaymentDetails { .. } => {
                code::INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS
            }
            F::FinalIncorrectCltvExpiry { .. } => code::FINAL_INCORRECT_CLTV_EXPIRY,
            F::FinalIncorrectHtlcAmount { .. } => code::FINAL_INCORRECT_HTLC_AMOUNT,
            F::ChannelDisabled { .. } => code::CHANNEL_DISABLED,
            F::ExpiryTooFar => code::EXPIRY_TOO_FAR,
            F::InvalidOnionPayload { .. } => code::INVALID_ONION_PAYLOAD,
            F::MppTimeout => code::MPP_TIMEOUT,
            F::InvalidOnionBlinding { .. } => code::INVALID_ONION_BLINDING,
            F::Unknown { code, .. } => *code,
        }
    }

    /// BADONION: the onion was unparsable (sent in `update_fail_malformed_htlc`).
    pub fn is_bad_onion(&self) -> bool {
        self.code() & BADONION != 0
    }

    /// PERM: permanent failure, otherwise transient.
    pub fn is_permanent(&self) -> bool {
        self.code() & PERM != 0
    }

    /// NODE: the node failed, otherwise the channel.
    pub fn is_node(&self) -> bool {
        self.code() & NODE != 0
    }

    /// UPDATE: a channel forwarding parameter was violated.
    pub fn is_update(&self) -> bool {
        self.code() & UPDATE != 0
    }

    /// Encodes `failure_code` and data (no TLV extension).
    pub fn encode(&self) -> Vec<u8> {
        use FailureMessage as F;
        let mut w = Writer::new();
        w.write_u16(self.code());
        // A channel_update is a gossip message, at most 65535 bytes; a longer
        // one (only our own code could build it) is cut to fit its prefix.
        let update = |w: &mut Writer, u: &[u8]| {
            let u = &u[..u.len().min(usize::from(u16::MAX))];
            w.write_u16(u.len() as u16);
            w.write_bytes(u);
        };
        match self {
            F::TemporaryNodeFailure
            | F::PermanentNodeFailure
            | F::RequiredNodeFeatureMissing
            | F::PermanentChannelFailure
            | F::RequiredChannelFeatureMissing
            | F::UnknownNextPeer
            | F::ExpiryTooFar
            | F::MppTimeout => {}
            F::InvalidOnionVersion { sha256_of_onion }
            | F::InvalidOnionHmac { sha256_of_onion }
            | F::InvalidOnionKey { sha256_of_onion }
            | F::InvalidOnionBlinding { sha256_of_onion } => w.write_bytes(sha256_of_onion),
            F::TemporaryChannelFailure { channel_update } | F::ExpiryTooSoon { channel_update } => {
                update(&mut w, channel_update)
            }
            F::AmountBelowMinimum {
                htlc_msat,
                channel_update,
            }
            | F::FeeInsufficient {
                htlc_msat,
                channel_update,
            } => {
                w.write_u64(htlc_msat.to_msat());
                update(&mut w, channel_update);
            }
            F::IncorrectCltvExpiry {
                cltv_expiry,
                channel_update,
            } => {
                w.write_u32(*cltv_expiry);
                update(&mut w, channel_update);
            }
            F::IncorrectOrUnknownPaymentDetails { htlc_msat, height } => {
                w.write_u64(htlc_msat.to_msat());
                w.write_u32(*height);
            }
            F::FinalIncorrectCltvExpiry { cltv_expiry } => w.write_u32(*cltv_expiry),
            F::FinalIncorrectHtlcAmount { incoming_htlc_amt } => {
                w.write_u64(incoming_htlc_amt.to_msat())
            }
            F::ChannelDisabled {
                disabled_flags,
                channel_update,
            } => {
                w.write_u16(*disabled_flags);
                update(&mut w, channel_update);
            }
            F::InvalidOnionPayload { tlv } => {
                if let Some((typ, offset)) = tlv {
                    w.write_bigsize(*typ);
                    w.write_u16(*offset);
                }
            }
            F::Unknown { data, .. } => w.write_bytes(data),
        }
        w.into_vec()
    }

    /// Decodes a `failuremsg`. BOLT 4 §"Receiving Failure Codes": the origin
    /// "MUST ignore any extra bytes in `failuremsg`", so bytes after the
    /// known data (such as a TLV stream) are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        use FailureMessage as F;
        let mut r = Reader::new(bytes);
        let c = r.read_u16()?;
        let r = &mut r;
        let update = |r: &mut Reader<'_>| Ok::<_, DecodeError>(r.read_u16_prefixed()?.to_vec());
        let msat = |r: &mut Reader<'_>| Ok::<_, DecodeError>(Msat::from_msat(r.read_u64()?));
        Ok(match c {
            code::TEMPORARY_NODE_FAILURE => F::TemporaryNodeFailure,
            code::PERMANENT_NODE_FAILURE => F::PermanentNodeFailure,
            code::REQUIRED_NODE_FEATURE_MISSING => F::RequiredNodeFeatureMissing,
            code::INVALID_ONION_VERSION => F::InvalidOnionVersion {
                sha256_of_onion: r.read_array()?,
            },
            code::INVALID_ONION_HMAC => F::InvalidOnionHmac {
                sha256_of_onion: r.read_array()?,
            },
            code::INVALID_ONION_KEY => F::InvalidOnionKey {
                sha256_of_onion: r.read_array()?,
            },
            code::TEMPORARY_CHANNEL_FAILURE => F::TemporaryChannelFailure {
                channel_update: update(r)?,
            },
            code::PERMANENT_CHANNEL_FAILURE => F::PermanentChannelFailure,
            code::REQUIRED_CHANNEL_FEATURE_MISSING => F::RequiredChannelFeatureMissing,
            code::UNKNOWN_NEXT_PEER => F::UnknownNextPeer,
            code::AMOUNT_BELOW_MINIMUM => F::AmountBelowMinimum {
                htlc_msat: msat(r)?,
                channel_update: update(r)?,
            },
            code::FEE_INSUFFICIENT => F::FeeInsufficient {
                htlc_msat: msat(r)?,
                channel_update: update(r)?,
            },
            code::INCORRECT_CLTV_EXPIRY => F::IncorrectCltvExpiry {
                cltv_expiry: r.read_u32()?,
                channel_update: update(r)?,
            },
            code::EXPIRY_TOO_SOON => F::ExpiryTooSoon {
                channel_update: update(r)?,
            },
            code::INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS => F::IncorrectOrUnknownPaymentDetails {
                htlc_msat: msat(r)?,
                height: r.read_u32()?,
            },
            code::FINAL_INCORRECT_CLTV_EXPIRY => F::FinalIncorrectCltvExpiry {
                cltv_expiry: r.read_u32()?,
            },
            code::FINAL_INCORRECT_HTLC_AMOUNT => F::FinalIncorrectHtlcAmount {
                incoming_htlc_amt: msat(r)?,
            },
            code::CHANNEL_DISABLED => F::ChannelDisabled {
                disabled_flags: r.read_u16()?,
                channel_update: update(r)?,
            },
            code::EXPIRY_TOO_FAR => F::ExpiryTooFar,
            code::INVALID_ONION_PAYLOAD => F::InvalidOnionPayload {
                tlv: if r.is_empty() {
                    None
                } else {
                    Some((r.read_bigsize()?, r.read_u16()?))
                },
            },
            code::MPP_TIMEOUT => F::MppTimeout,
            code::INVALID_ONION_BLINDING => F::InvalidOnionBlinding {
                sha256_of_onion: r.read_array()?,
            },
            code => F::Unknown {
                code,
                data: r.read_rest().to_vec(),
            },
        })
    }
}

impl OnionError {
    /// The failure a processing node returns for this peeling error: the
    /// three BADONION checks of BOLT 4 §"Onion Decryption" map to
    /// `invalid_onion_version`, `invalid_onion_key` and `invalid_onion_hmac`
    /// with the `SHA256` of the onion; any other error after the HMAC
    /// checked is an `invalid_onion_payload`. `None` for errors that only
    /// construction or decoding produce.
    pub fn failure(&self, onion: &OnionPacket) -> Option<FailureMessage> {
        let sha256_of_onion = onion.sha256();
        Some(match self {
            OnionError::InvalidVersion(_) => {
                FailureMessage::InvalidOnionVersion { sha256_of_onion }
            }
            OnionError::InvalidKey => FailureMessage::InvalidOnionKey { sha256_of_onion },
            OnionError::InvalidHmac => FailureMessage::InvalidOnionHmac { sha256_of_onion },
            OnionError::InvalidPayloadLength => FailureMessage::InvalidOnionPayload { tlv: None },
            _ => return None,
        })
    }
}

/// Why a return packet could not be built or attributed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailureError {
    /// A `failuremsg` longer than its `u16` length prefix allows.
    #[error("failure message of {0} bytes exceeds 65535")]
    MessageTooLong(usize),
    /// No hop's `um` HMAC matched: the packet was corrupted on the way
    /// back, or came from a node not on the route.
    #[error("return packet hmac matches no hop of the route")]
    Unattributable,
    /// Hop `hop` authenticated the packet, but its contents do not parse.
    #[error("return packet from hop {hop} is malformed: {error}")]
    Malformed {
        /// Index of the erring hop in the route.
        hop: usize,
        /// What was wrong.
        error: DecodeError,
    },
}

/// BOLT 4 §"Erring node": `failure_len`, `failuremsg`, `pad_len` and `pad`
/// (zeros) with `failure_len + pad_len` at least 256 — the part of the
/// return packet the HMAC covers.
pub fn failure_payload(failuremsg: &[u8]) -> Result<Vec<u8>, FailureError> {
    let failure_len = u16::try_from(failuremsg.len())
        .map_err(|_| FailureError::MessageTooLong(failuremsg.len()))?;
    let pad_len = MIN_FAILURE_AND_PAD_LEN.saturating_sub(failuremsg.len());
    let mut w = Writer::new();
    w.write_u16(failure_len);
    w.write_bytes(failuremsg);
    // pad_len < 256 here, so it fits.
    w.write_u16(pad_len as u16);
    w.write_bytes(&vec![0u8; pad_len]);
    Ok(w.into_vec())
}

/// BOLT 4 §"Erring node": the return packet before obfuscation, `hmac`
/// (with the `um` key) followed by [`failure_payload`].
pub fn error_packet_plain(ss: &SharedSecret, failuremsg: &[u8]) -> Result<Vec<u8>, FailureError> {
    let payload = failure_payload(failuremsg)?;
    let hmac = crypto::hmac_sha256(&ss.key(UM), &[&payload]);
    Ok([&hmac[..], &payload].concat())
}

/// BOLT 4 §"Erring node": builds the return packet for `failure` and
/// obfuscates it with this node's `ammag` stream: the `reason` of
/// `update_fail_htlc`.
pub fn build_error_packet(
    ss: &SharedSecret,
    failure: &FailureMessage,
) -> Result<Vec<u8>, FailureError> {
    let mut packet = error_packet_plain(ss, &failure.encode())?;
    obfuscate_error_packet(ss, &mut packet);
    Ok(packet)
}

/// BOLT 4 §"Intermediate nodes": XOR the return packet with the `ammag`
/// stream of the hop's shared secret. The erring node does the same once.
pub fn obfuscate_error_packet(ss: &SharedSecret, packet: &mut [u8]) {
    crypto::xor_stream(&ss.key(AMMAG), packet);
}

/// A return packet attributed to a hop by the origin node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptedFailure {
    /// Index in the route of the node that created the packet.
    pub hop: usize,
    /// The raw `failuremsg`.
    pub failuremsg: Vec<u8>,
    /// `failuremsg` decoded.
    pub message: FailureMessage,
}

/// BOLT 4 §"Origin node": peels the `ammag` layers hop by hop with the
/// route's `shared_secrets` (in route order) until one hop's `um` HMAC
/// matches; that hop created the packet. The loop runs
/// [`DECRYPT_ROUNDS`] times whatever the route length, with dummy keys
/// past its end, so timing does not reveal the erring hop's position.
pub fn decrypt_error_packet(
    shared_secrets: &[SharedSecret],
    packet: &[u8],
) -> Result<DecryptedFailure, FailureError> {
    let mut packet = packet.to_vec();
    let mut found: Option<(usize, Vec<u8>)> = None;
    let dummy = SharedSecret([0; 32]);
    let rounds = DECRYPT_ROUNDS.max(shared_secrets.len());
    for i in 0..rounds {
        let ss = shared_secrets.get(i).unwrap_or(&dummy);
        obfuscate_error_packet(ss, &mut packet);
        let matched = match packet.split_first_chunk::<32>() {
            Some((hmac, rest)) => {
                let expected = crypto::hmac_sha256(&ss.key(UM), &[rest]);
                crypto::constant_time_eq(hmac, &expected)
            }
            None => false,
        };
        if matched && found.is_none() && i < shared_secrets.len() {
            found = Some((i, packet.clone()));
        }
    }
    let (hop, packet) = found.ok_or(FailureError::Unattributable)?;
    let malformed = |error| FailureError::Malformed { hop, error };
    let mut r = Reader::new(&packet[32..]);
    let failuremsg = r.read_u16_prefixed().map_err(malformed)?.to_vec();
    let pad_len = r.read_u16().map_err(malformed)?;
    r.read_bytes(usize::from(pad_len)).map_err(malformed)?;
    let message = FailureMessage::decode(&failuremsg).map_err(malformed)?;
    Ok(DecryptedFailure {
        hop,
        failuremsg,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_message_round_trips() {
        let upd = vec![1, 2, 3];
        let h = [7u8; 32];
        let m = Msat::from_msat(1_000);
        let all = [
            FailureMessage::TemporaryNodeFailure,
            FailureMessage::PermanentNodeFailure,
            FailureMessage::RequiredNodeFeatureMissing,
            FailureMessage::InvalidOnionVersion { sha256_of_onion: h },
            FailureMessage::InvalidOnionHmac { sha256_of_onion: h },
            FailureMessage::InvalidOnionKey { sha256_of_onion: h },
            FailureMessage::TemporaryChannelFailure {
                channel_update: upd.clone(),
            },
            FailureMessage::PermanentChannelFailure,
            FailureMessage::RequiredChannelFeatureMissing,
            FailureMessage::UnknownNextPeer,
            FailureMessage::AmountBelowMinimum {
                htlc_msat: m,
                channel_update: upd.clone(),
            },
            FailureMessage::FeeInsufficient {
                htlc_msat: m,
                channel_update: vec![],
            },
            FailureMessage::IncorrectCltvExpiry {
                cltv_expiry: 500,
                channel_update: upd.clone(),
            },
            FailureMessage::ExpiryTooSoon {
                channel_update: upd.clone(),
            },
            FailureMessage::IncorrectOrUnknownPaymentDetails {
                htlc_msat: m,
                height: 800_000,
            },
            FailureMessage::FinalIncorrectCltvExpiry { cltv_expiry: 9 },
            FailureMessage::FinalIncorrectHtlcAmount {
                incoming_htlc_amt: m,
            },
            FailureMessage::ChannelDisabled {
                disabled_flags: 0,
                channel_update: upd,
            },
            FailureMessage::ExpiryTooFar,
            FailureMessage::InvalidOnionPayload { tlv: None },
            FailureMessage::InvalidOnionPayload {
                tlv: Some((2, 0x10)),
            },
            FailureMessage::MppTimeout,
            FailureMessage::InvalidOnionBlinding { sha256_of_onion: h },
            FailureMessage::Unknown {
                code: 0x1234,
                data: vec![9],
            },
        ];
        for f in all {
            let bytes = f.encode();
            assert_eq!(u16::from_be_bytes([bytes[0], bytes[1]]), f.code());
            assert_eq!(FailureMessage::decode(&bytes), Ok(f.clone()), "{f:?}");
        }
    }

    #[test]
    fn codes_and_flags_follow_bolt4() {
        let f = FailureMessage::IncorrectOrUnknownPaymentDetails {
            htlc_msat: Msat::from_msat(0x0102),
            height: 0x0a0b0c0d,
        };
        assert_eq!(f.code(), 0x400f);
        assert_eq!(
            f.encode(),
            [0x40, 0x0f, 0, 0, 0, 0, 0, 0, 1, 2, 0x0a, 0x0b, 0x0c, 0x0d]
        );
        assert!(f.is_permanent() && !f.is_node() && !f.is_bad_onion());
        let v = FailureMessage::InvalidOnionVersion {
            sha256_of_onion: [0; 32],
        };
        assert_eq!(v.code(), 0xc004);
        assert!(v.is_bad_onion() && v.is_permanent());
        assert_eq!(
            FailureMessage::ChannelDisabled {
                disabled_flags: 0,
                channel_update: vec![]
            }
            .code(),
            0x1014
        );
        assert_eq!(
            FailureMessage::FinalIncorrectCltvExpiry { cltv_expiry: 0 }.code(),
            18
        );
        assert_eq!(
            FailureMessage::FinalIncorrectHtlcAmount {
                incoming_htlc_amt: Msat::ZERO
            }
            .code(),
            19
        );
        // Extra bytes after the data (e.g. a TLV stream) are ignored.
        assert_eq!(
            FailureMessage::decode(&[0x20, 0x02, 0x01, 0x00]),
            Ok(FailureMessage::TemporaryNodeFailure)
        );
        // Missing data is an error, not a panic.
        assert!(FailureMessage::decode(&[0x40, 0x0f, 0, 0]).is_err());
        assert!(FailureMessage::decode(&[0x40]).is_err());
    }

    #[test]
    fn failure_payload_pads_to_256() {
        let p = failure_payload(&[0x20, 0x02]).unwrap();
        assert_eq!(p.len(), 2 + 2 + 2 + 254);
        assert_eq!(p[..6], [0, 2, 0x20, 0x02, 0, 254]);
        let long = failure_payload(&[1; 300]).unwrap();
        assert_eq!(long.len(), 2 + 300 + 2);
        assert_eq!(
            failure_payload(&vec![0; 70_000]),
            Err(FailureError::MessageTooLong(70_000))
        );
    }
}
