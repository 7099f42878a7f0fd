//! Paying a BOLT 11 invoice to a direct peer and receiving it: the payer
//! builds the onion from the invoice, the payee peels it with its node key
//! and checks it against the invoice it issued; a refusal travels back as
//! an obfuscated failure the payer attributes and reads.

#![allow(clippy::unwrap_used)]

use beongae_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use beongae_node::payments::{pay_direct, read_failure, receive_htlc, IncomingDecision, PayError};
use beongae_onion::{ExpectedPayment, FailureMessage, FinalOutcome, IncomingHtlc};
use beongae_wire::{Msat, NodeId, PaymentHash, Preimage};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};

const NOW: u64 = 1_700_000_000;
const HEIGHT: u32 = 800_000;

struct Payee {
    key: SecretKey,
    preimage: Preimage,
    secret: [u8; 32],
}

impl Payee {
    fn invoice(&self, amount: Option<u64>) -> beongae_invoice::Invoice {
        let secp = Secp256k1::new();
        let mut b = InvoiceBuilder::new(Currency::Regtest)
            .timestamp(NOW)
            .payment_hash(self.preimage.payment_hash())
            .payment_secret(PaymentSecret(self.secret))
            .description("coffee")
            .payment_metadata(vec![1, 2, 3]);
        if let Some(a) = amount {
            b = b.amount(Msat::from_msat(a));
        }
        b.sign(&secp, &self.key).unwrap()
    }

    fn expected(
        &self,
        amount: Option<u64>,
    ) -> impl Fn(&PaymentHash) -> Option<ExpectedPayment> + '_ {
        move |h| {
            (*h == self.preimage.payment_hash()).then(|| ExpectedPayment {
                payment_secret: self.secret,
                amount: amount.map(Msat::from_msat),
                min_final_cltv_expiry_delta: 18,
            })
        }
    }
}

fn payee() -> Payee {
    Payee {
        key: SecretKey::from_slice(&[0x42; 32]).unwrap(),
        preimage: Preimage([9; 32]),
        secret: [0x55; 32],
    }
}

fn session() -> SecretKey {
    SecretKey::from_slice(&[0x17; 32]).unwrap()
}

#[test]
fn a_direct_payment_is_accepted_with_its_metadata() {
    let secp = Secp256k1::new();
    let p = payee();
    // Decoded from its string, as a payer gets it.
    let invoice: beongae_invoice::Invoice = p.invoice(Some(25_000_000)).encode().parse().unwrap();
    assert_eq!(
        invoice.payee_node_id(),
        NodeId::from_pubkey(PublicKey::from_secret_key(&secp, &p.key))
    );
    let pay = pay_direct(&secp, &session(), &invoice, None, HEIGHT, NOW + 10).unwrap();
    assert_eq!(pay.amount, Msat::from_msat(25_000_000));
    assert_eq!(pay.cltv_expiry, HEIGHT + 18 + 3);
    let htlc = IncomingHtlc {
        amount: pay.amount,
        cltv_expiry: pay.cltv_expiry,
        payment_hash: pay.payment_hash,
    };
    let got = receive_htlc(
        &secp,
        &p.key,
        &htlc,
        &pay.onion,
        p.expected(Some(25_000_000)),
        HEIGHT,
    )
    .unwrap();
    let IncomingDecision::Accept {
        outcome, payload, ..
    } = got
    else {
        panic!("{got:?}")
    };
    assert_eq!(outcome, FinalOutcome::Complete);
    assert_eq!(payload.payment_metadata, Some(vec![1, 2, 3]));
    assert_eq!(payload.payment_data.unwrap().payment_secret, p.secret);
}

#[test]
fn refusals_travel_back_to_the_payer() {
    let secp = Secp256k1::new();
    let p = payee();
    let invoice = p.invoice(Some(25_000_000));
    let pay = pay_direct(&secp, &session(), &invoice, None, HEIGHT, NOW).unwrap();
    // The payee asked for more than this invoice says (its records differ).
    let htlc = IncomingHtlc {
        amount: pay.amount,
        cltv_expiry: pay.cltv_expiry,
        payment_hash: pay.payment_hash,
    };
    let got = receive_htlc(
        &secp,
        &p.key,
        &htlc,
        &pay.onion,
        p.expected(Some(30_000_000)),
        HEIGHT,
    )
    .unwrap();
    let IncomingDecision::Fail { reason, failure } = got else {
        panic!("{got:?}")
    };
    let details = FailureMessage::IncorrectOrUnknownPaymentDetails {
        htlc_msat: Msat::from_msat(25_000_000),
        height: HEIGHT,
    };
    assert_eq!(failure, details);
    let read = read_failure(&pay.shared_secrets, &reason).unwrap();
    assert_eq!((read.hop, read.message), (0, details));

    // An HTLC carrying less than the onion says.
    let short = IncomingHtlc {
        amount: Msat::from_msat(24_999_999),
        ..htlc
    };
    let got = receive_htlc(
        &secp,
        &p.key,
        &short,
        &pay.onion,
        p.expected(Some(25_000_000)),
        HEIGHT,
    )
    .unwrap();
    let IncomingDecision::Fail { reason, .. } = got else {
        panic!()
    };
    assert_eq!(
        read_failure(&pay.shared_secrets, &reason).unwrap().message,
        FailureMessage::FinalIncorrectHtlcAmount {
            incoming_htlc_amt: Msat::from_msat(24_999_999)
        }
    );

    // A corrupted onion: update_fail_malformed_htlc with invalid_onion_hmac.
    let mut bad = pay.onion.clone();
    bad.0[100] ^= 1;
    let got = receive_htlc(
        &secp,
        &p.key,
        &htlc,
        &bad,
        p.expected(Some(25_000_000)),
        HEIGHT,
    )
    .unwrap();
    let IncomingDecision::Malformed { failure_code, .. } = got else {
        panic!("{got:?}")
    };
    assert_eq!(failure_code, 0x8000 | 0x4000 | 5);

    // Another node's onion (not for us): the HMAC does not verify either.
    let other = SecretKey::from_slice(&[0x43; 32]).unwrap();
    let got = receive_htlc(
        &secp,
        &other,
        &htlc,
        &pay.onion,
        p.expected(Some(25_000_000)),
        HEIGHT,
    )
    .unwrap();
    assert!(matches!(got, IncomingDecision::Malformed { .. }));
}

#[test]
fn payer_side_errors() {
    let secp = Secp256k1::new();
    let p = payee();
    assert_eq!(
        pay_direct(&secp, &session(), &p.invoice(None), None, HEIGHT, NOW).unwrap_err(),
        PayError::AmountNeeded
    );
    let pay = pay_direct(
        &secp,
        &session(),
        &p.invoice(None),
        Some(Msat::from_msat(777)),
        HEIGHT,
        NOW,
    )
    .unwrap();
    assert_eq!(pay.amount, Msat::from_msat(777));
    assert_eq!(
        pay_direct(
            &secp,
            &session(),
            &p.invoice(Some(1_000)),
            Some(Msat::from_msat(999)),
            HEIGHT,
            NOW
        )
        .unwrap_err(),
        PayError::AmountBelowInvoice {
            given: Msat::from_msat(999),
            asked: Msat::from_msat(1_000)
        }
    );
    // Default expiry: one hour.
    assert_eq!(
        pay_direct(
            &secp,
            &session(),
            &p.invoice(Some(1_000)),
            None,
            HEIGHT,
            NOW + 3_601
        )
        .unwrap_err(),
        PayError::Expired(NOW + 3_600)
    );
}
