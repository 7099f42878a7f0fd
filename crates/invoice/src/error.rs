//! Why an invoice string was rejected, or why an invoice could not be built.

use beongae_wire::Feature;

/// Why [`Invoice::decode`](crate::Invoice::decode) rejected a string. Each
/// variant names the BOLT 11 reader rule it enforces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvoiceError {
    /// BIP-0173: upper and lower case letters mixed.
    #[error("invoice mixes upper and lower case letters")]
    MixedCase,
    /// BIP-0173: no `1` separating the human-readable part from the data.
    #[error("invoice has no '1' separator between prefix and data")]
    MissingSeparator,
    /// BIP-0173: a character outside the bech32 alphabet in the data part.
    #[error("invoice contains {0:?}, which is not a bech32 character")]
    InvalidCharacter(char),
    /// BIP-0173: the human-readable part is empty, too long or not ASCII.
    #[error("invoice has an invalid human-readable part: {0}")]
    InvalidHrp(String),
    /// BOLT 11: "if the checksum is incorrect: MUST fail the payment".
    #[error("invoice bech32 checksum is incorrect")]
    InvalidChecksum,
    /// The data part cannot hold a timestamp and a signature.
    #[error("invoice data part is {words} characters, too short for timestamp and signature (at least 111)")]
    TooShort {
        /// Data words present (without checksum).
        words: usize,
    },
    /// The human-readable part does not start with `ln`.
    #[error("invoice prefix {0:?} does not start with \"ln\"")]
    InvalidPrefix(String),
    /// BOLT 11: "if it does NOT understand the `prefix`: MUST fail the payment".
    #[error("unknown currency prefix {0:?}")]
    UnknownCurrency(String),
    /// BOLT 11: "if `amount` contains a non-digit OR is followed by anything
    /// except a `multiplier`: MUST fail"; we also refuse leading zeros.
    #[error("invalid amount {0:?}: expected a positive decimal number without leading zeros, then an optional multiplier")]
    InvalidAmount(String),
    /// BOLT 11: an amount followed by a letter that is not a multiplier.
    #[error("unknown amount multiplier {0:?} (expected m, u, n or p)")]
    UnknownMultiplier(char),
    /// BOLT 11: "if multiplier is `p` and the last decimal of `amount` is not
    /// 0: MUST fail the payment".
    #[error(
        "amount with multiplier p does not end in 0, so it is not a whole number of millisatoshi"
    )]
    SubMillisatoshiAmount,
    /// The amount does not fit 64 bits of millisatoshi.
    #[error("amount overflows 64-bit millisatoshi")]
    AmountOverflow,
    /// A tagged field header or data runs past the signature.
    #[error("tagged field at word {offset} runs past the end of the data part")]
    TruncatedField {
        /// Index of the field's first word in the data part.
        offset: usize,
    },
    /// A known field whose data has non-zero or over-long padding bits
    /// (BOLT 11 writer: "MUST pad field data to a multiple of 5 bits, using 0s").
    #[error("field '{tag}' has padding that is not up to 4 zero bits")]
    InvalidPadding {
        /// The field's letter.
        tag: char,
    },
    /// BOLT 11: "if a `c`, `x`, or `9` field is provided which has a
    /// non-minimal `data_length` (i.e. begins with 0 field elements): SHOULD
    /// treat the invoice as invalid".
    #[error("field '{tag}' is not minimally encoded (starts with a zero word)")]
    NonMinimalField {
        /// The field's letter.
        tag: char,
    },
    /// An `x` or `c` value that does not fit 64 bits.
    #[error("field '{tag}' value overflows 64 bits")]
    FieldValueOverflow {
        /// The field's letter.
        tag: char,
    },
    /// The `d` field is not UTF-8 (BOLT 11: "MUST set `d` to a valid UTF-8 string").
    #[error("description is not valid UTF-8")]
    InvalidDescription,
    /// BOLT 11: "MUST fail the payment if any known-version `f` field
    /// violates its respective BIP specification".
    #[error("fallback address with version {version} is invalid: {reason}")]
    InvalidFallback {
        /// The 5-bit version.
        version: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// An `f` field with no data (not even a version).
    #[error("fallback address field is empty")]
    EmptyFallback,
    /// An `r` field whose length is not a positive multiple of the 51-byte hop.
    #[error("route hint is {bytes} bytes, not a positive multiple of 51")]
    InvalidRouteHint {
        /// Bytes in the field.
        bytes: usize,
    },
    /// BOLT 11: a writer "MUST include exactly one `p` field"; wrong-length
    /// `p` fields are skipped, so none may be left.
    #[error("invoice has no valid payment hash ('p' field)")]
    MissingPaymentHash,
    /// BOLT 11: "if a valid `s` field is not provided: MUST fail the payment".
    #[error("invoice has no valid payment secret ('s' field)")]
    MissingPaymentSecret,
    /// BOLT 11: "MUST fail the payment if neither a `d` field nor a `h` field
    /// is present".
    #[error("invoice has neither a description ('d') nor a description hash ('h')")]
    MissingDescription,
    /// BOLT 11: "... or if both are present".
    #[error("invoice has both a description ('d') and a description hash ('h')")]
    DescriptionAndHash,
    /// BOLT 11 §"Tagged Fields": "if the `9` field contains unknown _even_
    /// bits that are non-zero: MUST fail the payment" and "SHOULD indicate the
    /// unknown bit to the user".
    #[error("invoice requires unknown feature bit {bit}")]
    UnknownRequiredFeature {
        /// The bit.
        bit: u32,
    },
    /// BOLT 11 §"Feature Bits": "if the feature vector does not set all
    /// known, transitive feature dependencies: MUST NOT attempt the payment".
    #[error("invoice feature {feature} is set without its dependency {dependency}")]
    MissingFeatureDependency {
        /// The feature that is set.
        feature: Feature,
        /// What it needs.
        dependency: Feature,
    },
    /// The signature's last byte is not a recovery id 0..=3 (BOLT 11 §"Data Part").
    #[error("signature recovery id {0} is not 0, 1, 2 or 3")]
    InvalidRecoveryId(u8),
    /// The 64 signature bytes are not a valid (r, s) pair.
    #[error("signature is malformed")]
    MalformedSignature,
    /// No public key can be recovered from the signature.
    #[error("signature is not recoverable: no public key matches it")]
    UnrecoverableSignature,
    /// BOLT 11: with a valid `n` field, "If the signature is not compliant
    /// with the low-S standard rule: MUST fail the payment".
    #[error("signature has a high S value, which is not allowed when the 'n' field is present")]
    HighSSignature,
    /// BOLT 11: "MUST use the `n` field to validate the signature"; it does not.
    #[error("signature does not verify against the payee node id in the 'n' field")]
    SignatureMismatch,
}

/// Why [`InvoiceBuilder::sign`](crate::InvoiceBuilder::sign) refused to build
/// an invoice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The amount is zero (BOLT 11: "MUST encode `amount` as a positive
    /// decimal integer").
    #[error("invoice amount must be positive")]
    ZeroAmount,
    /// The amount times ten (pico-bitcoin) does not fit 64 bits.
    #[error("invoice amount is too large to encode")]
    AmountTooLarge,
    /// BOLT 11 §"Data Part": the timestamp has 35 bits.
    #[error("timestamp {0} does not fit in 35 bits")]
    TimestampTooLarge(u64),
    /// A field's data is more than the 1023 words `data_length` can count
    /// (BOLT 11: "1023 x 5 bits, or 639 bytes").
    #[error("field '{tag}' is {words} words, more than the 1023 allowed")]
    FieldTooLong {
        /// The field's letter.
        tag: char,
        /// Its length in 5-bit words.
        words: usize,
    },
    /// A field that would not read back as itself (for example a raw field
    /// whose tag and length make it a known field, a tag above 31, or a route
    /// hint with no hops).
    #[error("field '{tag}' would not decode back to the same value")]
    NonCanonicalField {
        /// The field's letter.
        tag: char,
    },
    /// BOLT 11 writer: "MUST set `n` to the public key used to create the
    /// `signature`".
    #[error("the 'n' field is not the public key of the signing secret key")]
    PayeeNodeIdMismatch,
    /// The invoice breaks a reader rule (missing `p`, `s`, `d`/`h`, bad features...).
    #[error("invoice would be rejected by readers: {0}")]
    Invalid(#[from] InvoiceError),
}
