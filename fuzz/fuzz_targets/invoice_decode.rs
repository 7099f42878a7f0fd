//! Fuzzes BOLT 11 invoices (`beongae-invoice`).
//!
//! Properties checked:
//! - `Invoice::decode` never panics on any string; a decoded invoice
//!   encodes to a string that decodes to an equal invoice (in either
//!   case), and every accessor answers without panicking;
//! - an invoice signed from fuzz-chosen fields (amount, timestamp,
//!   description, expiry, CLTV delta, metadata) decodes to the same
//!   fields, and the same string with one character changed does not
//!   decode to it (the checksum or the signature catches it).

#![no_main]

use beongae_invoice::{Currency, Invoice, InvoiceBuilder, PaymentSecret};
use beongae_wire::{Msat, PaymentHash};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        decoded(s);
    }
    signed(data);
});

fn decoded(s: &str) {
    let Ok(inv) = Invoice::decode(s) else {
        return;
    };
    let _ = (
        inv.amount(),
        inv.timestamp(),
        inv.payee_node_id(),
        inv.payment_hash(),
        inv.payment_secret(),
        inv.description(),
        inv.description_hash(),
        inv.expiry(),
        inv.expires_at(),
        inv.min_final_cltv_expiry_delta(),
        inv.fallbacks(),
        inv.route_hints(),
        inv.features(),
        inv.payment_metadata(),
    );
    let again = Invoice::decode(&inv.encode()).expect("an encoded invoice decodes");
    assert_eq!(again, inv);
    assert_eq!(Invoice::decode(&inv.encode_upper()).expect("upper case decodes"), inv);
}

/// Input: 8 bytes amount (msat, 0 = none), 4 timestamp, 2 expiry, 2 CLTV
/// delta, 1 description length, then the description and metadata.
fn signed(data: &[u8]) {
    if data.len() < 17 {
        return;
    }
    let u = |b: &[u8]| b.iter().fold(0u64, |acc, x| acc << 8 | u64::from(*x));
    let amount = u(&data[..8]) % 2_100_000_000_000_000_000;
    let timestamp = u(&data[8..12]);
    let expiry = u(&data[12..14]);
    let cltv = u(&data[14..16]);
    let rest = &data[17..];
    let (desc, metadata) = rest.split_at(usize::from(data[16]).min(rest.len()));
    let description = String::from_utf8_lossy(desc).into_owned();
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[0x11; 32]).expect("a valid key");
    let mut b = InvoiceBuilder::new(Currency::Regtest)
        .timestamp(timestamp)
        .payment_hash(PaymentHash([0x22; 32]))
        .payment_secret(PaymentSecret([0x33; 32]))
        .description(description.clone())
        .expiry(expiry)
        .min_final_cltv_expiry_delta(cltv);
    if amount > 0 {
        b = b.amount(Msat::from_msat(amount));
    }
    if !metadata.is_empty() {
        b = b.payment_metadata(metadata.to_vec());
    }
    let Ok(inv) = b.sign(&secp, &key) else {
        return;
    };
    let s = inv.encode();
    let back = Invoice::decode(&s).expect("a signed invoice decodes");
    assert_eq!(back, inv);
    assert_eq!(back.description(), Some(description.as_str()));
    if amount > 0 {
        assert_eq!(back.amount(), Some(Msat::from_msat(amount)));
    }
    assert_eq!(back.timestamp(), timestamp);
    // One character changed (after the prefix), to another of the bech32
    // alphabet.
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let at = 4 + (usize::from(data[0]) << 8 | usize::from(data[1])) % (s.len() - 4);
    let mut bytes = s.into_bytes();
    let now = CHARSET.iter().position(|c| *c == bytes[at]);
    if let Some(i) = now {
        bytes[at] = CHARSET[(i + 1 + usize::from(data[2]) % 31) % 32];
        let changed = String::from_utf8(bytes).expect("ascii");
        if let Ok(other) = Invoice::decode(&changed) {
            assert_ne!(other, inv, "a changed character decoded to the same invoice");
        }
    }
}
