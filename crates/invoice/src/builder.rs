//! [`InvoiceBuilder`]: writes an invoice following the BOLT 11 writer rules
//! and signs it with a key the caller passes in.

use beongae_wire::{Features, Msat, NodeId, PaymentHash};
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey, Signing};

use crate::error::BuildError;
use crate::fields::{tag_char, DescriptionHash, Fallback, PaymentSecret, RouteHint, TaggedField};
use crate::hrp::{Currency, HrpAmount};
use crate::invoice::{check_fields, signing_hash, unsigned_words, Invoice, MAX_FIELD_WORDS};

/// The largest timestamp: 35 bits (BOLT 11 §"Data Part").
const MAX_TIMESTAMP: u64 = (1 << 35) - 1;

/// Builds an invoice. Fields are written in the order the setters are called
/// (BOLT 11: "if a writer offers more than one of any field type, it MUST
/// specify the most-preferred field first").
///
/// Time comes in as an argument ([`InvoiceBuilder::timestamp`]); signing
/// takes the secret key and context as arguments.
#[derive(Debug, Clone)]
pub struct InvoiceBuilder {
    currency: Currency,
    amount: Option<Msat>,
    timestamp: u64,
    fields: Vec<TaggedField>,
}

impl InvoiceBuilder {
    /// An invoice on `currency` with no amount, timestamp 0 and no fields.
    pub fn new(currency: Currency) -> Self {
        InvoiceBuilder {
            currency,
            amount: None,
            timestamp: 0,
            fields: Vec::new(),
        }
    }

    /// The amount required (BOLT 11: "if a specific minimum `amount` is
    /// required for successful payment: MUST include that `amount`"). Written
    /// with the largest exact multiplier.
    pub fn amount(mut self, amount: Msat) -> Self {
        self.amount = Some(amount);
        self
    }

    /// Seconds since 1970-01-01 UTC (BOLT 11 §"Data Part"). At most 2^35 - 1.
    pub fn timestamp(mut self, secs: u64) -> Self {
        self.timestamp = secs;
        self
    }

    /// Appends any field, as is.
    pub fn field(mut self, field: TaggedField) -> Self {
        self.fields.push(field);
        self
    }

    /// `p`: "MUST set `payment_hash` to the SHA2 256-bit hash of the
    /// `payment_preimage` that will be given in return for payment".
    pub fn payment_hash(self, hash: PaymentHash) -> Self {
        self.field(TaggedField::PaymentHash(hash))
    }

    /// `s`: "MUST include exactly one `s` field".
    pub fn payment_secret(self, secret: PaymentSecret) -> Self {
        self.field(TaggedField::PaymentSecret(secret))
    }

    /// `d`: an inline description (at most 639 bytes).
    pub fn description(self, description: impl Into<String>) -> Self {
        self.field(TaggedField::Description(description.into()))
    }

    /// `h`: the hash of a description carried elsewhere.
    pub fn description_hash(self, hash: DescriptionHash) -> Self {
        self.field(TaggedField::DescriptionHash(hash))
    }

    /// `n`: the payee node id; must be the signing key's public key.
    pub fn payee_node_id(self, node: NodeId) -> Self {
        self.field(TaggedField::PayeeNodeId(node))
    }

    /// `x`: expiry in seconds (written with the minimum `data_length`).
    pub fn expiry(self, secs: u64) -> Self {
        self.field(TaggedField::ExpirySecs(secs))
    }

    /// `c`: `min_final_cltv_expiry_delta` (BOLT 11: writer "SHOULD include
    /// one `c` field").
    pub fn min_final_cltv_expiry_delta(self, blocks: u64) -> Self {
        self.field(TaggedField::MinFinalCltvExpiryDelta(blocks))
    }

    /// `f`: an on-chain fallback address.
    pub fn fallback(self, fallback: Fallback) -> Self {
        self.field(TaggedField::Fallback(fallback))
    }

    /// `r`: a private route to the payee.
    pub fn route_hint(self, hint: RouteHint) -> Self {
        self.field(TaggedField::RouteHint(hint))
    }

    /// `9`: features. BOLT 11: if no bit is set the writer "MUST omit the `9`
    /// field altogether", so an empty vector adds nothing.
    pub fn features(self, features: Features) -> Self {
        if features.bits().next().is_none() {
            return self;
        }
        self.field(TaggedField::Features(features))
    }

    /// `m`: payment metadata.
    pub fn payment_metadata(self, metadata: Vec<u8>) -> Self {
        self.field(TaggedField::PaymentMetadata(metadata))
    }

    /// Signs the invoice: a recoverable ECDSA signature (RFC 6979 nonce) of
    /// [`Invoice::signing_hash`] (BOLT 11 §"Data Part"), after checking it
    /// against every rule a reader applies.
    pub fn sign<C: Signing>(
        self,
        secp: &Secp256k1<C>,
        secret_key: &SecretKey,
    ) -> Result<Invoice, BuildError> {
        let amount = match self.amount {
            None => None,
            Some(a) if a == Msat::ZERO => return Err(BuildError::ZeroAmount),
            Some(a) => Some(HrpAmount::shortest(a).ok_or(BuildError::AmountTooLarge)?),
        };
        if self.timestamp > MAX_TIMESTAMP {
            return Err(BuildError::TimestampTooLarge(self.timestamp));
        }
        for field in &self.fields {
            let words = field.data_words();
            let tag = tag_char(field.tag());
            if words.len() > MAX_FIELD_WORDS {
                return Err(BuildError::FieldTooLong {
                    tag,
                    words: words.len(),
                });
            }
            // Every field must read back as itself, or the invoice we sign is
            // not the one a payer sees.
            if field.tag() > 31 || TaggedField::parse(field.tag(), &words).as_ref() != Ok(field) {
                return Err(BuildError::NonCanonicalField { tag });
            }
        }
        check_fields(&self.fields)?;

        let payee = NodeId::from_pubkey(PublicKey::from_secret_key(secp, secret_key));
        let explicit = self.fields.iter().find_map(|f| match f {
            TaggedField::PayeeNodeId(n) => Some(*n),
            _ => None,
        });
        if explicit.is_some_and(|n| n != payee) {
            return Err(BuildError::PayeeNodeIdMismatch);
        }

        let hrp = crate::hrp::format_hrp(self.currency, amount);
        let hash = signing_hash(&hrp, &unsigned_words(self.timestamp, &self.fields));
        let signature = secp.sign_ecdsa_recoverable(&Message::from_digest(hash), secret_key);
        Ok(Invoice {
            currency: self.currency,
            amount,
            timestamp: self.timestamp,
            fields: self.fields,
            signature,
            payee,
        })
    }
}
