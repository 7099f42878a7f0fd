//! A compact stored form of an invoice, for the node that made it.
//!
//! A payee keeps every invoice it issues, and shows each one again on
//! request. The string spends one character (8 bits) on every 5-bit word of
//! the data part and six more on the checksum, and it carries fields the
//! payee can derive again (the payment hash and secret, from the invoice's
//! index). The compact form keeps the human-readable part and the data
//! part's words packed 8 bits to a byte, without the checksum (computed
//! again) and without the leading fields its maker derives again. It is
//! lossless: [`compact_to_string`] gives back the exact string, signature
//! included, so nothing is signed again.
//!
//! Layout: `hrp` length (1 byte), `hrp` (ASCII), the number of words kept
//! (2 bytes, big-endian), then the words (timestamp, the fields after the
//! derived ones, signature) packed most significant bit first, the last byte
//! padded with zero bits.

use crate::fields::TaggedField;
use crate::invoice::{unsigned_words, Invoice, SIGNATURE_WORDS, TIMESTAMP_WORDS};
use crate::words::{bytes_to_words, to_bech32, words_to_bytes_padded};

impl Invoice {
    /// The compact form of this invoice without `derived`, which must be
    /// its first fields, in order: `None` if they are not (the caller then
    /// keeps the string).
    pub fn to_compact(&self, derived: &[TaggedField]) -> Option<Vec<u8>> {
        if self.fields.get(..derived.len())? != derived {
            return None;
        }
        let mut words = unsigned_words(self.timestamp, &self.fields[derived.len()..]);
        let (recid, compact) = self.signature.serialize_compact();
        let mut sig = compact.to_vec();
        sig.push(recid.to_i32() as u8);
        words.extend(bytes_to_words(&sig));
        let hrp = self.hrp();
        let count = u16::try_from(words.len()).ok()?;
        let mut out = Vec::with_capacity(3 + hrp.len() + words.len() * 5 / 8 + 1);
        out.push(u8::try_from(hrp.len()).ok()?);
        out.extend_from_slice(hrp.as_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend(words_to_bytes_padded(&words));
        Some(out)
    }
}

/// The invoice string whose compact form ([`Invoice::to_compact`]) is
/// `bytes`, with `derived` put back as its first fields. `None` if the bytes
/// are not a compact form. The signature is not checked: the bytes come
/// from the maker's own store, and it compared the string when it kept them.
pub fn compact_to_string(bytes: &[u8], derived: &[TaggedField]) -> Option<String> {
    let (&hrp_len, rest) = bytes.split_first()?;
    let hrp = rest.get(..usize::from(hrp_len))?;
    if !hrp
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return None;
    }
    let hrp = std::str::from_utf8(hrp).ok()?;
    let rest = &rest[usize::from(hrp_len)..];
    let count = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
    let packed = rest.get(2..)?;
    if count < TIMESTAMP_WORDS + SIGNATURE_WORDS || packed.len() != (count * 5).div_ceil(8) {
        return None;
    }
    let kept = &bytes_to_words(packed)[..count];
    let mut words = kept[..TIMESTAMP_WORDS].to_vec();
    words.extend_from_slice(&unsigned_words(0, derived)[TIMESTAMP_WORDS..]);
    words.extend_from_slice(&kept[TIMESTAMP_WORDS..]);
    Some(to_bech32(hrp, &words))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, InvoiceBuilder, PaymentSecret, RouteHint, RouteHintHop};
    use beongae_wire::{Feature, Features, Msat, NodeId, PaymentHash, ShortChannelId};
    use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};

    fn made(amount: Option<Msat>, description: &str) -> (Invoice, Vec<TaggedField>) {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[7; 32]).unwrap();
        let peer = NodeId::from_pubkey(PublicKey::from_secret_key(
            &secp,
            &SecretKey::from_slice(&[9; 32]).unwrap(),
        ));
        let derived = vec![
            TaggedField::PaymentHash(PaymentHash([3; 32])),
            TaggedField::PaymentSecret(PaymentSecret([4; 32])),
        ];
        let mut b = InvoiceBuilder::new(Currency::Regtest)
            .timestamp(1_765_000_000)
            .payment_hash(PaymentHash([3; 32]))
            .payment_secret(PaymentSecret([4; 32]))
            .description(description)
            .expiry(600)
            .min_final_cltv_expiry_delta(80)
            .features(
                Features::empty()
                    .with_required(Feature::VarOnionOptin)
                    .with_required(Feature::PaymentSecret)
                    .with_optional(Feature::BasicMpp),
            )
            .route_hint(RouteHint(vec![RouteHintHop {
                src_node_id: peer,
                short_channel_id: ShortChannelId::new(700_000, 12, 1).unwrap(),
                fee_base_msat: 1_000,
                fee_proportional_millionths: 100,
                cltv_expiry_delta: 144,
            }]));
        if let Some(a) = amount {
            b = b.amount(a);
        }
        (b.sign(&secp, &key).unwrap(), derived)
    }

    #[test]
    fn the_compact_form_gives_back_the_exact_string() {
        for (amount, description) in [
            (Some(Msat::from_msat(1_000_000)), "growth"),
            (Some(Msat::from_msat(1)), ""),
            (None, "any amount"),
            (Some(Msat::from_msat(2_100_000_000_000_000)), "café ☕ x"),
        ] {
            let (inv, derived) = made(amount, description);
            let s = inv.encode();
            let c = inv.to_compact(&derived).unwrap();
            assert_eq!(compact_to_string(&c, &derived).as_deref(), Some(s.as_str()));
            assert_eq!(Invoice::decode(&s).unwrap(), inv);
            // The derived fields are left out: 110 words (two 3-word
            // headers and 52 words each).
            let all = inv.to_compact(&[]).unwrap();
            let words = |c: &[u8]| {
                let at = 1 + usize::from(c[0]);
                u16::from_be_bytes([c[at], c[at + 1]])
            };
            assert_eq!(words(&all) - words(&c), 110, "{description}");
            assert_eq!(compact_to_string(&all, &[]).as_deref(), Some(s.as_str()));
        }
        let (inv, derived) = made(Some(Msat::from_msat(1_000_000)), "growth");
        let (s, c) = (inv.encode(), inv.to_compact(&derived).unwrap());
        // The saving on a typical invoice of ours (one route hint): the
        // string is 352 characters, the compact form 154 bytes.
        assert_eq!((s.len(), c.len()), (352, 154));
    }

    #[test]
    fn fields_that_do_not_lead_are_not_left_out() {
        let (inv, derived) = made(None, "x");
        let swapped = [derived[1].clone(), derived[0].clone()];
        assert_eq!(inv.to_compact(&swapped), None);
        assert_eq!(inv.to_compact(&derived[1..]), None);
        // Other derived values give another string, whose checksum is
        // valid but whose signature is not the payee's: it recovers another
        // key.
        let other = [
            TaggedField::PaymentHash(PaymentHash([5; 32])),
            derived[1].clone(),
        ];
        let c = inv.to_compact(&derived).unwrap();
        let s = compact_to_string(&c, &other).unwrap();
        assert_ne!(s, inv.encode());
        assert_ne!(
            Invoice::decode(&s).unwrap().payee_node_id(),
            inv.payee_node_id()
        );
    }

    #[test]
    fn bytes_that_are_not_a_compact_form_are_refused() {
        let (inv, derived) = made(None, "x");
        let c = inv.to_compact(&derived).unwrap();
        assert_eq!(compact_to_string(&[], &derived), None);
        assert_eq!(compact_to_string(&c[..c.len() - 1], &derived), None);
        let mut longer = c.clone();
        longer.push(0);
        assert_eq!(compact_to_string(&longer, &derived), None);
        let mut upper = c.clone();
        upper[1] = b'L';
        assert_eq!(compact_to_string(&upper, &derived), None);
        let mut too_few = c.clone();
        let at = 1 + usize::from(c[0]);
        too_few[at..at + 2].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(compact_to_string(&too_few, &derived), None);
        let mut hrp_too_long = c;
        hrp_too_long[0] = 255;
        assert_eq!(compact_to_string(&hrp_too_long, &derived), None);
    }
}
