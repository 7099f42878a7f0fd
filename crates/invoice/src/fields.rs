//! BOLT 11 §"Tagged Fields": each field is `type` (5 bits), `data_length`
//! (10 bits) and `data_length` 5-bit words of data.

use std::fmt;

use beongae_wire::{Features, NodeId, PaymentHash, ShortChannelId};
use bitcoin::hashes::{hash160, sha256, Hash};
use bitcoin::secp256k1::PublicKey;
use bitcoin::{PubkeyHash, ScriptBuf, ScriptHash, WitnessProgram, WitnessVersion};

use crate::error::InvoiceError;
use crate::words::{bytes_to_words, u64_to_words, words_to_bytes_strict, words_to_u64};

/// Tag values: the 5-bit `type` of each field BOLT 11 defines.
pub(crate) mod tag {
    /// `p`: payment hash.
    pub const PAYMENT_HASH: u8 = 1;
    /// `r`: route hint.
    pub const ROUTE: u8 = 3;
    /// `9`: features.
    pub const FEATURES: u8 = 5;
    /// `x`: expiry.
    pub const EXPIRY: u8 = 6;
    /// `f`: fallback address.
    pub const FALLBACK: u8 = 9;
    /// `d`: description.
    pub const DESCRIPTION: u8 = 13;
    /// `s`: payment secret.
    pub const PAYMENT_SECRET: u8 = 16;
    /// `n`: payee node id.
    pub const PAYEE: u8 = 19;
    /// `h`: description hash.
    pub const DESCRIPTION_HASH: u8 = 23;
    /// `c`: min_final_cltv_expiry_delta.
    pub const MIN_FINAL_CLTV: u8 = 24;
    /// `m`: payment metadata.
    pub const METADATA: u8 = 27;
}

/// The bech32 letter of a 5-bit tag, as BOLT 11 names fields.
pub(crate) fn tag_char(tag: u8) -> char {
    char::from(b"qpzry9x8gf2tvdw0s3jn54khce6mua7l"[usize::from(tag & 31)])
}

/// BOLT 11 `s` (16): the 256-bit secret that "prevents forwarding nodes from
/// probing the payment recipient"; it goes into the onion as `payment_secret`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentSecret(pub [u8; 32]);

impl fmt::Debug for PaymentSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentSecret(")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, ")")
    }
}

/// BOLT 11 `h` (23): SHA256 of a description that is carried elsewhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DescriptionHash(pub [u8; 32]);

impl DescriptionHash {
    /// The hash of `description`.
    pub fn of(description: &str) -> DescriptionHash {
        DescriptionHash(sha256::Hash::hash(description.as_bytes()).to_byte_array())
    }
}

impl fmt::Debug for DescriptionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DescriptionHash(")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, ")")
    }
}

/// BOLT 11 `f` (9): an on-chain fallback address, by its 5-bit `version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Fallback {
    /// Versions 0-16: a witness program (BIP-0141; version 1 with 32 bytes is
    /// BIP-0341 Taproot).
    SegWit(WitnessProgram),
    /// Version 17: a P2PKH public key hash.
    PubkeyHash(PubkeyHash),
    /// Version 18: a P2SH script hash.
    ScriptHash(ScriptHash),
}

impl Fallback {
    /// The 5-bit version this address is written with.
    pub fn version(&self) -> u8 {
        match self {
            Fallback::SegWit(p) => p.version().to_num(),
            Fallback::PubkeyHash(_) => 17,
            Fallback::ScriptHash(_) => 18,
        }
    }

    /// The output script the address pays to.
    pub fn script_pubkey(&self) -> ScriptBuf {
        match self {
            Fallback::SegWit(p) => ScriptBuf::new_witness_program(p),
            Fallback::PubkeyHash(h) => ScriptBuf::new_p2pkh(h),
            Fallback::ScriptHash(h) => ScriptBuf::new_p2sh(h),
        }
    }

    fn program_bytes(&self) -> Vec<u8> {
        match self {
            Fallback::SegWit(p) => p.program().as_bytes().to_vec(),
            Fallback::PubkeyHash(h) => h.to_byte_array().to_vec(),
            Fallback::ScriptHash(h) => h.to_byte_array().to_vec(),
        }
    }

    /// BOLT 11 reader: "MUST skip over `f` fields that use an unknown
    /// `version`" (`Ok(None)`), and for known versions MUST validate per the
    /// address BIPs and fail on violation (`Err`).
    fn parse(data: &[u8]) -> Result<Option<Fallback>, InvoiceError> {
        let (&version, program) = data.split_first().ok_or(InvoiceError::EmptyFallback)?;
        if version > 18 {
            return Ok(None);
        }
        let bytes = words_to_bytes_strict(program).ok_or(InvoiceError::InvalidPadding {
            tag: tag_char(tag::FALLBACK),
        })?;
        let invalid = |reason| InvoiceError::InvalidFallback { version, reason };
        let hash20 = || -> Result<[u8; 20], InvoiceError> {
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| invalid("a P2PKH or P2SH hash is 20 bytes"))
        };
        Ok(Some(match version {
            17 => Fallback::PubkeyHash(PubkeyHash::from_raw_hash(hash160::Hash::from_byte_array(
                hash20()?,
            ))),
            18 => Fallback::ScriptHash(ScriptHash::from_raw_hash(hash160::Hash::from_byte_array(
                hash20()?,
            ))),
            _ => {
                let v = WitnessVersion::try_from(version)
                    .map_err(|_| invalid("not a witness version"))?;
                Fallback::SegWit(WitnessProgram::new(v, &bytes).map_err(|_| {
                    invalid(
                        "witness program length breaks BIP-0141 (v0: 20 or 32 bytes, else 2-40)",
                    )
                })?)
            }
        }))
    }

    fn to_words(&self) -> Vec<u8> {
        let mut words = vec![self.version()];
        words.extend(bytes_to_words(&self.program_bytes()));
        words
    }
}

/// One hop of a BOLT 11 `r` field: a private channel from `src_node_id`
/// towards the payee, with the channel's BOLT 7 `channel_update` policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteHintHop {
    /// `pubkey`: the node at the start of the channel.
    pub src_node_id: NodeId,
    /// `short_channel_id`.
    pub short_channel_id: ShortChannelId,
    /// `fee_base_msat` (32 bits, as in BOLT 7 `channel_update`); see
    /// [`RouteHintHop::fee_base`] for the [`Msat`](beongae_wire::Msat) value.
    pub fee_base_msat: u32,
    /// `fee_proportional_millionths`.
    pub fee_proportional_millionths: u32,
    /// `cltv_expiry_delta`.
    pub cltv_expiry_delta: u16,
}

impl RouteHintHop {
    /// Bytes per hop: 33 + 8 + 4 + 4 + 2.
    pub const LEN: usize = 51;

    /// The base fee as an amount.
    pub fn fee_base(&self) -> beongae_wire::Msat {
        beongae_wire::Msat::from_msat(u64::from(self.fee_base_msat))
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.src_node_id.serialize());
        out.extend_from_slice(&self.short_channel_id.to_u64().to_be_bytes());
        out.extend_from_slice(&self.fee_base_msat.to_be_bytes());
        out.extend_from_slice(&self.fee_proportional_millionths.to_be_bytes());
        out.extend_from_slice(&self.cltv_expiry_delta.to_be_bytes());
    }

    fn read(b: &[u8; Self::LEN]) -> Option<RouteHintHop> {
        let pk = PublicKey::from_slice(&b[..33]).ok()?;
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut scid = [0u8; 8];
        scid.copy_from_slice(&b[33..41]);
        Some(RouteHintHop {
            src_node_id: NodeId::from_pubkey(pk),
            short_channel_id: ShortChannelId::from_u64(u64::from_be_bytes(scid)),
            fee_base_msat: u32_at(41),
            fee_proportional_millionths: u32_at(45),
            cltv_expiry_delta: u16::from_be_bytes([b[49], b[50]]),
        })
    }
}

/// BOLT 11 `r` (3): "one or more ordered entries, indicating the forward
/// route from a public node to the final destination".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteHint(pub Vec<RouteHintHop>);

impl RouteHint {
    fn parse(data: &[u8]) -> Result<RouteHint, InvoiceError> {
        let bytes = words_to_bytes_strict(data).ok_or(InvoiceError::InvalidPadding {
            tag: tag_char(tag::ROUTE),
        })?;
        let bad = InvoiceError::InvalidRouteHint { bytes: bytes.len() };
        if bytes.is_empty() || bytes.len() % RouteHintHop::LEN != 0 {
            return Err(bad);
        }
        let mut hops = Vec::with_capacity(bytes.len() / RouteHintHop::LEN);
        for chunk in bytes.chunks_exact(RouteHintHop::LEN) {
            let arr: &[u8; RouteHintHop::LEN] = chunk.try_into().map_err(|_| bad.clone())?;
            hops.push(RouteHintHop::read(arr).ok_or_else(|| bad.clone())?);
        }
        Ok(RouteHint(hops))
    }

    fn to_words(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.0.len() * RouteHintHop::LEN);
        for hop in &self.0 {
            hop.write(&mut bytes);
        }
        bytes_to_words(&bytes)
    }
}

/// A field kept as its raw words: a `type` we do not know, or a known type
/// the reader "MUST skip" (BOLT 11): an `f` with unknown version, or `p`,
/// `h`, `s`, `n` without `data_length` 52, 52, 52, 53 (or an `n` that is not
/// a public key). Kept so re-encoding and the signature stay exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawTaggedField {
    /// The 5-bit type.
    pub tag: u8,
    /// The data, one 5-bit word (0..=31) per element.
    pub data: Vec<u8>,
}

/// One BOLT 11 tagged field, in the order it appears in the invoice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaggedField {
    /// `p` (1): `payment_hash`.
    PaymentHash(PaymentHash),
    /// `s` (16): `payment_secret`.
    PaymentSecret(PaymentSecret),
    /// `d` (13): short UTF-8 description of the purpose of payment.
    Description(String),
    /// `h` (23): SHA256 of the description.
    DescriptionHash(DescriptionHash),
    /// `n` (19): the payee's node id.
    PayeeNodeId(NodeId),
    /// `x` (6): `expiry` in seconds after the timestamp.
    ExpirySecs(u64),
    /// `c` (24): `min_final_cltv_expiry_delta` in blocks.
    MinFinalCltvExpiryDelta(u64),
    /// `f` (9): fallback on-chain address.
    Fallback(Fallback),
    /// `r` (3): a private route to the payee.
    RouteHint(RouteHint),
    /// `9` (5): features "supported or required for receiving this payment".
    Features(Features),
    /// `m` (27): `payment_metadata` for the onion.
    PaymentMetadata(Vec<u8>),
    /// Unknown or skipped field, kept as written.
    Raw(RawTaggedField),
}

/// Features as words: big-endian, bit 0 the least significant bit of the last
/// word, no leading zero word (BOLT 11: "MUST use the minimum `data_length`
/// possible to encode the non-zero bits with no 0 field-elements at the start").
fn features_to_words(f: &Features) -> Vec<u8> {
    let Some(max) = f.bits().last() else {
        return Vec::new();
    };
    let n = (max / 5 + 1) as usize;
    let mut words = vec![0u8; n];
    for bit in f.bits() {
        let idx = n - 1 - (bit / 5) as usize;
        words[idx] |= 1 << (bit % 5);
    }
    words
}

fn features_from_words(words: &[u8]) -> Features {
    let mut f = Features::empty();
    for (i, w) in words.iter().rev().enumerate() {
        for k in 0..5u32 {
            if w & (1 << k) != 0 {
                f.set(i as u32 * 5 + k);
            }
        }
    }
    f
}

fn bytes32(tag_value: u8, data: &[u8]) -> Result<[u8; 32], InvoiceError> {
    let bytes = words_to_bytes_strict(data).ok_or(InvoiceError::InvalidPadding {
        tag: tag_char(tag_value),
    })?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| InvoiceError::InvalidPadding {
            tag: tag_char(tag_value),
        })
}

/// A minimal big-endian integer field (`x`, `c`).
fn minimal_u64(tag_value: u8, data: &[u8]) -> Result<u64, InvoiceError> {
    if data.first() == Some(&0) {
        return Err(InvoiceError::NonMinimalField {
            tag: tag_char(tag_value),
        });
    }
    words_to_u64(data).ok_or(InvoiceError::FieldValueOverflow {
        tag: tag_char(tag_value),
    })
}

impl TaggedField {
    /// The 5-bit type.
    pub fn tag(&self) -> u8 {
        match self {
            TaggedField::PaymentHash(_) => tag::PAYMENT_HASH,
            TaggedField::PaymentSecret(_) => tag::PAYMENT_SECRET,
            TaggedField::Description(_) => tag::DESCRIPTION,
            TaggedField::DescriptionHash(_) => tag::DESCRIPTION_HASH,
            TaggedField::PayeeNodeId(_) => tag::PAYEE,
            TaggedField::ExpirySecs(_) => tag::EXPIRY,
            TaggedField::MinFinalCltvExpiryDelta(_) => tag::MIN_FINAL_CLTV,
            TaggedField::Fallback(_) => tag::FALLBACK,
            TaggedField::RouteHint(_) => tag::ROUTE,
            TaggedField::Features(_) => tag::FEATURES,
            TaggedField::PaymentMetadata(_) => tag::METADATA,
            TaggedField::Raw(r) => r.tag,
        }
    }

    /// The data words (without the type and `data_length`).
    pub fn data_words(&self) -> Vec<u8> {
        match self {
            TaggedField::PaymentHash(h) => bytes_to_words(&h.0),
            TaggedField::PaymentSecret(s) => bytes_to_words(&s.0),
            TaggedField::Description(d) => bytes_to_words(d.as_bytes()),
            TaggedField::DescriptionHash(h) => bytes_to_words(&h.0),
            TaggedField::PayeeNodeId(n) => bytes_to_words(&n.serialize()),
            TaggedField::ExpirySecs(v) | TaggedField::MinFinalCltvExpiryDelta(v) => {
                u64_to_words(*v)
            }
            TaggedField::Fallback(f) => f.to_words(),
            TaggedField::RouteHint(r) => r.to_words(),
            TaggedField::Features(f) => features_to_words(f),
            TaggedField::PaymentMetadata(m) => bytes_to_words(m),
            TaggedField::Raw(r) => r.data.clone(),
        }
    }

    /// Parses one field's data, applying the BOLT 11 §"Tagged Fields" reader
    /// rules: fields to skip come back as [`TaggedField::Raw`], fields to fail
    /// on as `Err`.
    pub(crate) fn parse(tag_value: u8, data: &[u8]) -> Result<TaggedField, InvoiceError> {
        let raw = || {
            TaggedField::Raw(RawTaggedField {
                tag: tag_value,
                data: data.to_vec(),
            })
        };
        Ok(match tag_value {
            // BOLT 11: a reader skips `p`, `h`, `s` or `n` fields that do not
            // have `data_length` 52, 52, 52 or 53 (the "fields which must be
            // ignored" example); a missing valid `p`/`s` then fails the invoice.
            tag::PAYMENT_HASH | tag::PAYMENT_SECRET | tag::DESCRIPTION_HASH if data.len() != 52 => {
                raw()
            }
            tag::PAYEE if data.len() != 53 => raw(),
            tag::PAYMENT_HASH => TaggedField::PaymentHash(PaymentHash(bytes32(tag_value, data)?)),
            tag::PAYMENT_SECRET => {
                TaggedField::PaymentSecret(PaymentSecret(bytes32(tag_value, data)?))
            }
            tag::DESCRIPTION_HASH => {
                TaggedField::DescriptionHash(DescriptionHash(bytes32(tag_value, data)?))
            }
            tag::PAYEE => {
                let bytes = words_to_bytes_strict(data).ok_or(InvoiceError::InvalidPadding {
                    tag: tag_char(tag_value),
                })?;
                // BOLT 11 speaks of "a valid `n` field": one that is not a
                // public key is not valid, so signature recovery is used.
                match PublicKey::from_slice(&bytes) {
                    Ok(pk) => TaggedField::PayeeNodeId(NodeId::from_pubkey(pk)),
                    Err(_) => raw(),
                }
            }
            tag::DESCRIPTION => {
                let bytes = words_to_bytes_strict(data).ok_or(InvoiceError::InvalidPadding {
                    tag: tag_char(tag_value),
                })?;
                TaggedField::Description(
                    String::from_utf8(bytes).map_err(|_| InvoiceError::InvalidDescription)?,
                )
            }
            tag::EXPIRY => TaggedField::ExpirySecs(minimal_u64(tag_value, data)?),
            tag::MIN_FINAL_CLTV => {
                TaggedField::MinFinalCltvExpiryDelta(minimal_u64(tag_value, data)?)
            }
            tag::FALLBACK => match Fallback::parse(data)? {
                Some(f) => TaggedField::Fallback(f),
                None => raw(),
            },
            tag::ROUTE => TaggedField::RouteHint(RouteHint::parse(data)?),
            tag::FEATURES => {
                // BOLT 11: a `9` field with a leading zero word "SHOULD" make
                // the invoice invalid.
                if data.first() == Some(&0) {
                    return Err(InvoiceError::NonMinimalField {
                        tag: tag_char(tag_value),
                    });
                }
                TaggedField::Features(features_from_words(data))
            }
            tag::METADATA => TaggedField::PaymentMetadata(words_to_bytes_strict(data).ok_or(
                InvoiceError::InvalidPadding {
                    tag: tag_char(tag_value),
                },
            )?),
            _ => raw(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_words_round_trip() {
        // BOLT 11 example: `sgq` is bits 8 and 14.
        let f = features_from_words(&[16, 8, 0]);
        assert_eq!(f.bits().collect::<Vec<_>>(), vec![8, 14]);
        assert_eq!(features_to_words(&f), vec![16, 8, 0]);
        assert_eq!(features_to_words(&Features::empty()), Vec::<u8>::new());
    }

    #[test]
    fn wrong_lengths_are_skipped_and_bad_data_fails() {
        assert!(matches!(
            TaggedField::parse(tag::PAYMENT_HASH, &[0; 51]),
            Ok(TaggedField::Raw(_))
        ));
        assert!(matches!(
            TaggedField::parse(tag::PAYEE, &[0; 53]),
            Ok(TaggedField::Raw(_))
        ));
        assert!(matches!(
            TaggedField::parse(tag::FALLBACK, &[19, 0, 0]),
            Ok(TaggedField::Raw(_))
        ));
        assert_eq!(
            TaggedField::parse(tag::FALLBACK, &[17, 0, 1]),
            Err(InvoiceError::InvalidPadding { tag: 'f' })
        );
        assert_eq!(
            TaggedField::parse(tag::FALLBACK, &[17; 1]),
            Err(InvoiceError::InvalidFallback {
                version: 17,
                reason: "a P2PKH or P2SH hash is 20 bytes"
            })
        );
        assert_eq!(
            TaggedField::parse(tag::FALLBACK, &[]),
            Err(InvoiceError::EmptyFallback)
        );
        assert_eq!(
            TaggedField::parse(tag::EXPIRY, &[0, 1]),
            Err(InvoiceError::NonMinimalField { tag: 'x' })
        );
        assert_eq!(
            TaggedField::parse(tag::MIN_FINAL_CLTV, &[31; 13]),
            Err(InvoiceError::FieldValueOverflow { tag: 'c' })
        );
        assert_eq!(
            TaggedField::parse(tag::ROUTE, &bytes_to_words(&[2; 50])),
            Err(InvoiceError::InvalidRouteHint { bytes: 50 })
        );
        assert_eq!(
            TaggedField::parse(tag::DESCRIPTION, &bytes_to_words(&[0xff])),
            Err(InvoiceError::InvalidDescription)
        );
        assert_eq!(
            TaggedField::parse(tag::EXPIRY, &[]),
            Ok(TaggedField::ExpirySecs(0))
        );
    }
}
