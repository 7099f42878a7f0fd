//! Property tests: random invoices survive sign → encode → decode unchanged,
//! and decoding arbitrary input never panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use beongae_invoice::{
    Currency, DescriptionHash, Fallback, Invoice, InvoiceBuilder, PaymentSecret, RawTaggedField,
    RouteHint, RouteHintHop, TaggedField,
};
use beongae_wire::{Features, Msat, NodeId, PaymentHash, ShortChannelId};
use bitcoin::bech32::primitives::iter::Checksummed;
use bitcoin::bech32::{Bech32, Fe32, Hrp};
use bitcoin::hashes::{hash160, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{PubkeyHash, ScriptHash, WitnessProgram, WitnessVersion};
use proptest::prelude::*;

fn secret_key() -> impl Strategy<Value = SecretKey> {
    any::<[u8; 32]>().prop_filter_map("valid key", |b| SecretKey::from_slice(&b).ok())
}

fn node_id() -> impl Strategy<Value = NodeId> {
    secret_key()
        .prop_map(|sk| NodeId::from_pubkey(PublicKey::from_secret_key(&Secp256k1::new(), &sk)))
}

fn fallback() -> impl Strategy<Value = Fallback> {
    prop_oneof![
        any::<[u8; 20]>().prop_map(|h| Fallback::PubkeyHash(PubkeyHash::from_raw_hash(
            hash160::Hash::from_byte_array(h)
        ))),
        any::<[u8; 20]>().prop_map(|h| Fallback::ScriptHash(ScriptHash::from_raw_hash(
            hash160::Hash::from_byte_array(h)
        ))),
        (prop_oneof![Just(20usize), Just(32)], any::<[u8; 32]>()).prop_map(|(n, b)| {
            Fallback::SegWit(WitnessProgram::new(WitnessVersion::V0, &b[..n]).unwrap())
        }),
        (1u8..=16, proptest::collection::vec(any::<u8>(), 2..=40)).prop_map(|(v, b)| {
            let v = WitnessVersion::try_from(v).unwrap();
            Fallback::SegWit(WitnessProgram::new(v, &b).unwrap())
        }),
    ]
}

fn route_hint() -> impl Strategy<Value = RouteHint> {
    proptest::collection::vec(
        (
            node_id(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
        )
            .prop_map(|(n, scid, base, prop, cltv)| RouteHintHop {
                src_node_id: n,
                short_channel_id: ShortChannelId::from_u64(scid),
                fee_base_msat: base,
                fee_proportional_millionths: prop,
                cltv_expiry_delta: cltv,
            }),
        1..4,
    )
    .prop_map(RouteHint)
}

/// Bits the invoice may carry: known features (whose dependencies are met or
/// ASSUMED) and unknown odd bits.
fn features() -> impl Strategy<Value = Features> {
    proptest::sample::subsequence(
        vec![8u32, 9, 14, 15, 17, 24, 25, 48, 49, 99, 101, 1001],
        1..6,
    )
    .prop_map(|bits| {
        let mut f = Features::empty();
        for b in bits {
            f.set(b);
        }
        f
    })
}

const UNKNOWN_TAGS: [u8; 12] = [0, 2, 4, 7, 8, 10, 11, 12, 14, 20, 28, 31];

fn optional_field() -> impl Strategy<Value = TaggedField> {
    prop_oneof![
        any::<u64>().prop_map(TaggedField::ExpirySecs),
        (0u64..1000).prop_map(TaggedField::MinFinalCltvExpiryDelta),
        fallback().prop_map(TaggedField::Fallback),
        route_hint().prop_map(TaggedField::RouteHint),
        features().prop_map(TaggedField::Features),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(TaggedField::PaymentMetadata),
        (
            proptest::sample::select(UNKNOWN_TAGS.to_vec()),
            proptest::collection::vec(0u8..32, 0..80)
        )
            .prop_map(|(tag, data)| TaggedField::Raw(RawTaggedField { tag, data })),
        // A `p` of the wrong length: must be kept as a raw, skipped field.
        proptest::collection::vec(0u8..32, 53..54)
            .prop_map(|data| TaggedField::Raw(RawTaggedField { tag: 1, data })),
    ]
}

#[derive(Debug, Clone)]
struct Plan {
    key: SecretKey,
    currency: Currency,
    amount: Option<Msat>,
    timestamp: u64,
    fields: Vec<TaggedField>,
    with_n: bool,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        secret_key(),
        proptest::sample::select(Currency::ALL.to_vec()),
        proptest::option::of(1u64..=u64::MAX / 10),
        0u64..(1 << 35),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        prop_oneof![
            "\\PC{0,80}".prop_map(TaggedField::Description),
            any::<[u8; 32]>().prop_map(|h| TaggedField::DescriptionHash(DescriptionHash(h))),
        ],
        proptest::collection::vec(optional_field(), 0..6),
        any::<bool>(),
    )
        .prop_flat_map(
            |(key, currency, amount, timestamp, hash, secret, desc, extra, with_n)| {
                let mut fields = vec![
                    TaggedField::PaymentHash(PaymentHash(hash)),
                    TaggedField::PaymentSecret(PaymentSecret(secret)),
                    desc,
                ];
                fields.extend(extra);
                Just(fields).prop_shuffle().prop_map(move |fields| Plan {
                    key,
                    currency,
                    amount: amount.map(Msat::from_msat),
                    timestamp,
                    fields,
                    with_n,
                })
            },
        )
}

fn build(plan: &Plan) -> Invoice {
    let secp = Secp256k1::new();
    let mut b = InvoiceBuilder::new(plan.currency).timestamp(plan.timestamp);
    if let Some(a) = plan.amount {
        b = b.amount(a);
    }
    for f in &plan.fields {
        b = b.field(f.clone());
    }
    if plan.with_n {
        b = b.payee_node_id(NodeId::from_pubkey(PublicKey::from_secret_key(
            &secp, &plan.key,
        )));
    }
    b.sign(&secp, &plan.key).unwrap()
}

/// A bech32 string with a valid checksum and arbitrary data words.
fn checksummed(hrp: &str, words: &[u8]) -> Option<String> {
    let hrp = Hrp::parse(hrp).ok()?;
    let fes = words.iter().filter_map(|w| Fe32::try_from(*w).ok());
    let data: String = Checksummed::<_, Bech32>::new_hrp(hrp, fes)
        .map(Fe32::to_char)
        .collect();
    Some(format!("{hrp}1{data}"))
}

proptest! {
    #[test]
    fn sign_encode_decode_round_trips(plan in plan()) {
        let invoice = build(&plan);
        let text = invoice.encode();
        let decoded = Invoice::decode(&text).unwrap();
        prop_assert_eq!(&decoded, &invoice);
        prop_assert_eq!(decoded.encode(), text.clone());
        prop_assert_eq!(Invoice::decode(&text.to_uppercase()).unwrap(), invoice.clone());
        prop_assert_eq!(decoded.amount(), plan.amount);
        prop_assert_eq!(decoded.timestamp(), plan.timestamp);
        prop_assert_eq!(decoded.currency(), plan.currency);
        prop_assert_eq!(
            decoded.payee_node_id(),
            NodeId::from_pubkey(PublicKey::from_secret_key(&Secp256k1::new(), &plan.key))
        );
        prop_assert_eq!(decoded.has_explicit_payee(), plan.with_n);
        let prefix = plan.currency.to_string();
        prop_assert!(text.starts_with(&prefix));
    }

    #[test]
    fn decoding_arbitrary_strings_never_panics(s in "\\PC{0,300}") {
        let _ = Invoice::decode(&s);
    }

    #[test]
    fn decoding_bech32_looking_strings_never_panics(
        hrp in "ln(bc|tb|tbs|bcrt|sb|xx)[0-9]{0,22}[munpx]?",
        data in "[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{0,400}",
    ) {
        let _ = Invoice::decode(&format!("{hrp}1{data}"));
    }

    #[test]
    fn decoding_checksummed_random_data_never_panics(
        hrp in "ln(bc|tb|tbs|bcrt|sb)[0-9]{0,21}[munp]?",
        words in proptest::collection::vec(0u8..32, 0..1200),
    ) {
        if let Some(s) = checksummed(&hrp, &words) {
            if let Ok(inv) = Invoice::decode(&s) {
                // Anything accepted re-encodes to the same string.
                prop_assert_eq!(inv.encode(), s);
            }
        }
    }

    #[test]
    fn mutated_valid_invoices_never_panic(
        plan in plan(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..32), 1..4),
    ) {
        let text = build(&plan).encode();
        let sep = text.rfind('1').unwrap();
        let mut words: Vec<u8> = text[sep + 1..text.len() - 6]
            .chars()
            .map(|c| Fe32::from_char(c).unwrap().to_u8())
            .collect();
        for (i, w) in edits {
            let i = i.index(words.len());
            words[i] = w;
        }
        // Re-checksum so the decoder goes past the checksum.
        if let Some(s) = checksummed(&text[..sep], &words) {
            if let Ok(inv) = Invoice::decode(&s) {
                prop_assert_eq!(inv.encode(), s);
            }
        }
    }
}

#[test]
fn builder_rejects_what_readers_reject() {
    use beongae_invoice::{BuildError, InvoiceError};
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[7; 32]).unwrap();
    let base = || {
        InvoiceBuilder::new(Currency::Bitcoin)
            .payment_hash(PaymentHash([1; 32]))
            .payment_secret(PaymentSecret([2; 32]))
    };
    assert_eq!(
        base().sign(&secp, &key).unwrap_err(),
        BuildError::Invalid(InvoiceError::MissingDescription)
    );
    assert_eq!(
        base()
            .description("a")
            .description_hash(DescriptionHash::of("a"))
            .sign(&secp, &key)
            .unwrap_err(),
        BuildError::Invalid(InvoiceError::DescriptionAndHash)
    );
    assert_eq!(
        base()
            .description("a")
            .amount(Msat::ZERO)
            .sign(&secp, &key)
            .unwrap_err(),
        BuildError::ZeroAmount
    );
    assert_eq!(
        base()
            .description("a")
            .timestamp(1 << 35)
            .sign(&secp, &key)
            .unwrap_err(),
        BuildError::TimestampTooLarge(1 << 35)
    );
    assert_eq!(
        base()
            .description("x".repeat(640))
            .sign(&secp, &key)
            .unwrap_err(),
        BuildError::FieldTooLong {
            tag: 'd',
            words: 1024
        }
    );
    let other = NodeId::from_pubkey(PublicKey::from_secret_key(
        &secp,
        &SecretKey::from_slice(&[8; 32]).unwrap(),
    ));
    assert_eq!(
        base()
            .description("a")
            .payee_node_id(other)
            .sign(&secp, &key)
            .unwrap_err(),
        BuildError::PayeeNodeIdMismatch
    );
    assert_eq!(
        base()
            .description("a")
            .field(TaggedField::RouteHint(RouteHint(vec![])))
            .sign(&secp, &key)
            .unwrap_err(),
        BuildError::NonCanonicalField { tag: 'r' }
    );
    assert_eq!(
        base()
            .description("a")
            .field(TaggedField::Raw(RawTaggedField {
                tag: 1,
                data: vec![0; 52]
            }))
            .sign(&secp, &key)
            .unwrap_err(),
        BuildError::NonCanonicalField { tag: 'p' }
    );
    let mut unknown_even = Features::empty();
    unknown_even.set(100);
    assert_eq!(
        base()
            .description("a")
            .features(unknown_even)
            .sign(&secp, &key)
            .unwrap_err(),
        BuildError::Invalid(InvoiceError::UnknownRequiredFeature { bit: 100 })
    );
    // Without a multiplier-free form, the largest exact multiplier is used.
    let inv = base()
        .description("a")
        .amount(Msat::from_msat(100_000_000_000))
        .sign(&secp, &key)
        .unwrap();
    assert!(inv.encode().starts_with("lnbc11"));
    assert_eq!(inv.expiry(), 3600);
    assert_eq!(inv.min_final_cltv_expiry_delta(), 18);
    assert!(!inv.is_expired(3600));
    assert!(inv.is_expired(3601));
}
