//! The [`Invoice`] type: decoding with every BOLT 11 reader check, encoding,
//! and the accessors a payer needs.

use std::fmt;
use std::str::FromStr;

use beongae_wire::{Feature, Features, Msat, NodeId, PaymentHash};
use bitcoin::bech32::primitives::decode::{
    CharError, ChecksumError, UncheckedHrpstring, UncheckedHrpstringError,
};
use bitcoin::bech32::primitives::hrp;
use bitcoin::bech32::Fe32;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use bitcoin::secp256k1::{Message, Secp256k1, Verification};

use crate::error::InvoiceError;
use crate::fields::{
    tag, DescriptionHash, Fallback, PaymentSecret, RawTaggedField, RouteHint, TaggedField,
};
use crate::hrp::{format_hrp, parse_hrp, Currency, HrpAmount};
use crate::words::{
    to_bech32, u64_to_fixed_words, words_to_bytes_padded, words_to_u64, Bolt11Bech32,
};

/// Words in the timestamp: 35 bits (BOLT 11 §"Data Part").
pub(crate) const TIMESTAMP_WORDS: usize = 7;
/// Words in the signature: 520 bits = 64 bytes + recovery id (BOLT 11 §"Data Part").
pub(crate) const SIGNATURE_WORDS: usize = 104;
/// The largest `data_length`: 10 bits (BOLT 11 §"Tagged Fields").
pub(crate) const MAX_FIELD_WORDS: usize = 1023;

/// BOLT 11 `x` default: "Default is 3600 (1 hour) if not specified".
pub const DEFAULT_EXPIRY_SECS: u64 = 3600;
/// BOLT 11 `c` default: "if the `c` field is not provided: MUST use an expiry
/// delta of at least 18 when making the payment".
pub const DEFAULT_MIN_FINAL_CLTV_EXPIRY_DELTA: u64 = 18;

/// A BOLT 11 invoice whose signature has been checked.
///
/// It keeps every tagged field in its written order, including unknown and
/// skipped ones, so [`Invoice::encode`] gives back the string it was decoded
/// from (in lowercase) and the signature still covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub(crate) currency: Currency,
    pub(crate) amount: Option<HrpAmount>,
    pub(crate) timestamp: u64,
    pub(crate) fields: Vec<TaggedField>,
    pub(crate) signature: RecoverableSignature,
    pub(crate) payee: NodeId,
}

fn map_parse_error(e: UncheckedHrpstringError) -> InvoiceError {
    match e {
        UncheckedHrpstringError::Char(CharError::MixedCase)
        | UncheckedHrpstringError::Hrp(hrp::Error::MixedCase) => InvoiceError::MixedCase,
        UncheckedHrpstringError::Char(CharError::MissingSeparator) => {
            InvoiceError::MissingSeparator
        }
        UncheckedHrpstringError::Char(CharError::NothingAfterSeparator) => {
            InvoiceError::TooShort { words: 0 }
        }
        UncheckedHrpstringError::Char(CharError::InvalidChar(c)) => {
            InvoiceError::InvalidCharacter(c)
        }
        UncheckedHrpstringError::Hrp(e) => InvoiceError::InvalidHrp(e.to_string()),
        other => InvoiceError::InvalidHrp(other.to_string()),
    }
}

/// Serialises the data part before the signature: timestamp, then each field
/// as type, 10-bit `data_length`, data.
pub(crate) fn unsigned_words(timestamp: u64, fields: &[TaggedField]) -> Vec<u8> {
    let mut words = u64_to_fixed_words(timestamp, TIMESTAMP_WORDS);
    for field in fields {
        let data = field.data_words();
        words.push(field.tag());
        words.extend(u64_to_fixed_words(data.len() as u64, 2));
        words.extend(data);
    }
    words
}

/// The hash the signature commits to: BOLT 11 §"Data Part", "SHA2 256-bit
/// hash of the human-readable part, represented as UTF-8 bytes, concatenated
/// with the data part (excluding the signature) with 0 bits appended to pad
/// the data to the next byte boundary".
pub(crate) fn signing_hash(hrp: &str, unsigned_words: &[u8]) -> [u8; 32] {
    let mut preimage = hrp.as_bytes().to_vec();
    preimage.extend(words_to_bytes_padded(unsigned_words));
    sha256::Hash::hash(&preimage).to_byte_array()
}

/// `payment_secret` is ASSUMED in today's BOLT 9 table, so a dependency on it
/// is met even when its bit is not set.
fn dependency_met(features: &Features, dependency: Feature) -> bool {
    features.offers(dependency) || dependency.is_assumed() || dependency == Feature::PaymentSecret
}

/// The reader rules on the set of fields, shared by decoding and building.
pub(crate) fn check_fields(fields: &[TaggedField]) -> Result<(), InvoiceError> {
    let has = |t: u8| {
        fields
            .iter()
            .any(|f| f.tag() == t && !matches!(f, TaggedField::Raw(_)))
    };
    if !has(tag::PAYMENT_HASH) {
        return Err(InvoiceError::MissingPaymentHash);
    }
    // BOLT 11: "if a valid `s` field is not provided: MUST fail the payment".
    if !has(tag::PAYMENT_SECRET) {
        return Err(InvoiceError::MissingPaymentSecret);
    }
    // BOLT 11: "MUST fail the payment if neither a `d` field nor a `h` field
    // is present, or if both are present".
    match (has(tag::DESCRIPTION), has(tag::DESCRIPTION_HASH)) {
        (false, false) => return Err(InvoiceError::MissingDescription),
        (true, true) => return Err(InvoiceError::DescriptionAndHash),
        _ => {}
    }
    for field in fields {
        if let TaggedField::Features(features) = field {
            // BOLT 11 §"Tagged Fields": unknown odd bits are ignored; unknown
            // even bits: "MUST fail the payment".
            if let Some(bit) = features
                .bits()
                .find(|b| b % 2 == 0 && Feature::from_bit(*b).is_none())
            {
                return Err(InvoiceError::UnknownRequiredFeature { bit });
            }
            // BOLT 11 §"Feature Bits": "if the feature vector does not set all
            // known, transitive feature dependencies: MUST NOT attempt the
            // payment".
            for feature in Feature::ALL.into_iter().filter(|f| features.offers(*f)) {
                if let Some(&dependency) = feature
                    .dependencies()
                    .iter()
                    .find(|d| !dependency_met(features, **d))
                {
                    return Err(InvoiceError::MissingFeatureDependency {
                        feature,
                        dependency,
                    });
                }
            }
        }
    }
    Ok(())
}

impl Invoice {
    /// Decodes and checks an invoice string (any case), with a fresh
    /// verification context. See [`Invoice::decode_with`].
    pub fn decode(s: &str) -> Result<Invoice, InvoiceError> {
        Self::decode_with(&Secp256k1::verification_only(), s)
    }

    /// Decodes and checks an invoice string following every BOLT 11 reader
    /// requirement: bech32 without length limit, checksum, prefix and amount,
    /// tagged fields, required `p`, `s` and `d`/`h`, features, and the
    /// signature (against `n` if present, else by public-key recovery).
    pub fn decode_with<C: Verification>(
        secp: &Secp256k1<C>,
        s: &str,
    ) -> Result<Invoice, InvoiceError> {
        // BOLT 11 §"Encoding Overview": "If a URI scheme is desired, the
        // current recommendation is to [...] use 'lightning:' as a prefix
        // before the BOLT-11 encoding": what a QR code or a link carries,
        // in either case.
        let s = match s.get(..10) {
            Some(scheme) if scheme.eq_ignore_ascii_case("lightning:") => &s[10..],
            _ => s,
        };
        // BOLT 11 §"Encoding Overview": "MUST parse the address as Bech32, as
        // specified in BIP-0173 (also without the character limit)", which
        // includes handling upper case and refusing mixed case.
        let unchecked = UncheckedHrpstring::new(s).map_err(map_parse_error)?;
        // "if the checksum is incorrect: MUST fail the payment".
        unchecked
            .validate_checksum::<Bolt11Bech32>()
            .map_err(|e| match e {
                ChecksumError::InvalidLength => InvoiceError::TooShort {
                    words: unchecked.data_part_ascii().len(),
                },
                _ => InvoiceError::InvalidChecksum,
            })?;
        let hrp = unchecked.hrp().to_lowercase();
        let ascii = unchecked.data_part_ascii();
        let ascii = &ascii[..ascii.len().saturating_sub(6)];
        let words = ascii
            .iter()
            .map(|&c| {
                Fe32::from_char(char::from(c))
                    .map(Fe32::to_u8)
                    .map_err(|_| InvoiceError::InvalidCharacter(char::from(c)))
            })
            .collect::<Result<Vec<u8>, _>>()?;

        // BOLT 11 §"Human-Readable Part".
        let (currency, amount) = parse_hrp(&hrp)?;

        // BOLT 11 §"Data Part": timestamp, tagged fields, signature.
        if words.len() < TIMESTAMP_WORDS + SIGNATURE_WORDS {
            return Err(InvoiceError::TooShort { words: words.len() });
        }
        let (unsigned, sig_words) = words.split_at(words.len() - SIGNATURE_WORDS);
        let timestamp = words_to_u64(&unsigned[..TIMESTAMP_WORDS]).unwrap_or(0);
        let fields = parse_fields(unsigned)?;
        check_fields(&fields)?;

        let sig_bytes = words_to_bytes_padded(sig_words);
        let (compact, recid) = sig_bytes.split_at(64);
        let recid = recid.first().copied().unwrap_or(u8::MAX);
        if recid > 3 {
            return Err(InvoiceError::InvalidRecoveryId(recid));
        }
        let recovery_id = RecoveryId::from_i32(i32::from(recid))
            .map_err(|_| InvoiceError::InvalidRecoveryId(recid))?;
        let signature = RecoverableSignature::from_compact(compact, recovery_id)
            .map_err(|_| InvoiceError::MalformedSignature)?;

        let msg = Message::from_digest(signing_hash(&hrp, unsigned));
        let explicit = fields.iter().find_map(|f| match f {
            TaggedField::PayeeNodeId(n) => Some(*n),
            _ => None,
        });
        let payee = match explicit {
            // BOLT 11: "if a valid `n` field is provided: MUST use the `n`
            // field to validate the signature instead of performing
            // public-key recovery. If the signature is not compliant with the
            // low-S standard rule: MUST fail the payment".
            Some(node) => {
                let standard = signature.to_standard();
                let mut normalized = standard;
                normalized.normalize_s();
                if normalized != standard {
                    return Err(InvoiceError::HighSSignature);
                }
                secp.verify_ecdsa(&msg, &standard, &node.pubkey())
                    .map_err(|_| InvoiceError::SignatureMismatch)?;
                node
            }
            // "otherwise: MUST perform ECDSA public-key recovery and accept
            // both high-S and low-S signatures." The spec's high-S example
            // keeps the recovery id of its low-S twin, so recovery runs on
            // the low-S form of the signature with the id as written.
            None => {
                let mut low_s = signature.to_standard();
                low_s.normalize_s();
                let low_s =
                    RecoverableSignature::from_compact(&low_s.serialize_compact(), recovery_id)
                        .map_err(|_| InvoiceError::MalformedSignature)?;
                NodeId::from_pubkey(
                    secp.recover_ecdsa(&msg, &low_s)
                        .map_err(|_| InvoiceError::UnrecoverableSignature)?,
                )
            }
        };

        Ok(Invoice {
            currency,
            amount,
            timestamp,
            fields,
            signature,
            payee,
        })
    }

    /// The invoice as a lowercase bech32 string.
    pub fn encode(&self) -> String {
        let mut words = unsigned_words(self.timestamp, &self.fields);
        let (recid, compact) = self.signature.serialize_compact();
        let mut sig = compact.to_vec();
        sig.push(recid.to_i32() as u8);
        words.extend(crate::words::bytes_to_words(&sig));
        to_bech32(&self.hrp(), &words)
    }

    /// The invoice in upper case, for QR codes (BOLT 11: "SHOULD use upper
    /// case for QR codes").
    pub fn encode_upper(&self) -> String {
        self.encode().to_ascii_uppercase()
    }

    /// The human-readable part: `ln`, currency prefix, amount.
    pub fn hrp(&self) -> String {
        format_hrp(self.currency, self.amount)
    }

    /// The SHA256 the signature commits to.
    pub fn signing_hash(&self) -> [u8; 32] {
        signing_hash(&self.hrp(), &unsigned_words(self.timestamp, &self.fields))
    }

    /// The currency (chain) to pay on.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount requested, or `None` if the payer chooses (BOLT 11: "if
    /// the `amount` is empty: SHOULD indicate to the payer that amount is
    /// unspecified").
    pub fn amount(&self) -> Option<Msat> {
        self.amount.map(HrpAmount::msat)
    }

    /// The amount as written in the human-readable part.
    pub fn hrp_amount(&self) -> Option<HrpAmount> {
        self.amount
    }

    /// Seconds since 1970-01-01 UTC when the invoice was created.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// Every tagged field, in order.
    pub fn fields(&self) -> &[TaggedField] {
        &self.fields
    }

    /// The recoverable signature.
    pub fn signature(&self) -> &RecoverableSignature {
        &self.signature
    }

    /// The signature as 65 bytes: 64-byte compact (r, s) and the recovery id.
    pub fn signature_bytes(&self) -> [u8; 65] {
        let (recid, compact) = self.signature.serialize_compact();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&compact);
        out[64] = recid.to_i32() as u8;
        out
    }

    /// The payee: the `n` field if present, else the key recovered from the
    /// signature.
    pub fn payee_node_id(&self) -> NodeId {
        self.payee
    }

    /// Whether the payee was given by an `n` field (rather than recovered).
    pub fn has_explicit_payee(&self) -> bool {
        self.fields
            .iter()
            .any(|f| matches!(f, TaggedField::PayeeNodeId(_)))
    }

    /// The payment hash: BOLT 11 payer "SHOULD use the first `p` field".
    pub fn payment_hash(&self) -> PaymentHash {
        self.fields
            .iter()
            .find_map(|f| match f {
                TaggedField::PaymentHash(h) => Some(*h),
                _ => None,
            })
            .unwrap_or(PaymentHash([0; 32]))
    }

    /// The payment secret (BOLT 11: "MUST use the `s` field as
    /// `payment_secret`"); the first one if several.
    pub fn payment_secret(&self) -> PaymentSecret {
        self.fields
            .iter()
            .find_map(|f| match f {
                TaggedField::PaymentSecret(s) => Some(*s),
                _ => None,
            })
            .unwrap_or(PaymentSecret([0; 32]))
    }

    /// The `d` description, if the invoice has one.
    pub fn description(&self) -> Option<&str> {
        self.fields.iter().find_map(|f| match f {
            TaggedField::Description(d) => Some(d.as_str()),
            _ => None,
        })
    }

    /// The `h` description hash, if the invoice has one.
    pub fn description_hash(&self) -> Option<DescriptionHash> {
        self.fields.iter().find_map(|f| match f {
            TaggedField::DescriptionHash(h) => Some(*h),
            _ => None,
        })
    }

    /// BOLT 11: "MUST check that the SHA2 256-bit hash in the `h` field
    /// exactly matches the hashed description". True if the invoice carries
    /// `description` inline, or commits to it with `h`.
    pub fn matches_description(&self, description: &str) -> bool {
        match self.description_hash() {
            Some(h) => h == DescriptionHash::of(description),
            None => self.description() == Some(description),
        }
    }

    /// Seconds after [`Invoice::timestamp`] the invoice expires: the `x`
    /// field, default 3600.
    pub fn expiry(&self) -> u64 {
        self.fields
            .iter()
            .find_map(|f| match f {
                TaggedField::ExpirySecs(x) => Some(*x),
                _ => None,
            })
            .unwrap_or(DEFAULT_EXPIRY_SECS)
    }

    /// When the invoice expires, in seconds since 1970 (saturating).
    pub fn expires_at(&self) -> u64 {
        self.timestamp.saturating_add(self.expiry())
    }

    /// BOLT 11 payer: "after the `timestamp` plus `expiry` has passed: SHOULD
    /// NOT attempt a payment". True once `now_secs` is past that instant.
    pub fn is_expired(&self, now_secs: u64) -> bool {
        now_secs > self.expires_at()
    }

    /// The `c` field, default 18 (BOLT 11: "MUST use an expiry delta of at
    /// least 18" without it).
    pub fn min_final_cltv_expiry_delta(&self) -> u64 {
        self.fields
            .iter()
            .find_map(|f| match f {
                TaggedField::MinFinalCltvExpiryDelta(c) => Some(*c),
                _ => None,
            })
            .unwrap_or(DEFAULT_MIN_FINAL_CLTV_EXPIRY_DELTA)
    }

    /// The fallback addresses we understand, most preferred first.
    pub fn fallbacks(&self) -> impl Iterator<Item = &Fallback> + '_ {
        self.fields.iter().filter_map(|f| match f {
            TaggedField::Fallback(a) => Some(a),
            _ => None,
        })
    }

    /// The route hints, most preferred first.
    pub fn route_hints(&self) -> impl Iterator<Item = &RouteHint> + '_ {
        self.fields.iter().filter_map(|f| match f {
            TaggedField::RouteHint(r) => Some(r),
            _ => None,
        })
    }

    /// The `9` features (empty if absent).
    pub fn features(&self) -> Features {
        self.fields
            .iter()
            .find_map(|f| match f {
                TaggedField::Features(x) => Some(x.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The `m` metadata (BOLT 11: "if an `m` field is provided: MUST use that
    /// as `payment_metadata`").
    pub fn payment_metadata(&self) -> Option<&[u8]> {
        self.fields.iter().find_map(|f| match f {
            TaggedField::PaymentMetadata(m) => Some(m.as_slice()),
            _ => None,
        })
    }

    /// Fields kept raw: unknown types and known types that were skipped.
    pub fn raw_fields(&self) -> impl Iterator<Item = &RawTaggedField> + '_ {
        self.fields.iter().filter_map(|f| match f {
            TaggedField::Raw(r) => Some(r),
            _ => None,
        })
    }
}

/// Splits the words between timestamp and signature into tagged fields.
fn parse_fields(unsigned: &[u8]) -> Result<Vec<TaggedField>, InvoiceError> {
    let mut fields = Vec::new();
    let mut i = TIMESTAMP_WORDS;
    while i < unsigned.len() {
        let truncated = InvoiceError::TruncatedField { offset: i };
        let header = unsigned.get(i..i + 3).ok_or(truncated.clone())?;
        let len = usize::from(header[1]) * 32 + usize::from(header[2]);
        let data = unsigned.get(i + 3..i + 3 + len).ok_or(truncated)?;
        fields.push(TaggedField::parse(header[0], data)?);
        i += 3 + len;
    }
    Ok(fields)
}

impl fmt::Display for Invoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for Invoice {
    type Err = InvoiceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Invoice::decode(s)
    }
}
