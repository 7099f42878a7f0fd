//! Legacy `closing_signed` negotiation between a funder and a fundee over
//! encoded messages: agreement in two or three messages with `fee_range`,
//! the fully signed closing transaction valid under libbitcoinconsensus
//! and paying each side its balance (the funder minus the fee); and the
//! refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use beongae_channel::close::{
    dust_limit_for, is_valid_shutdown_script, CloseError, CloseStep, ClosingNegotiation,
};
use beongae_script::funding::funding_script_pubkey;
use beongae_script::ChannelType;
use beongae_wire::msgs::{ClosingSigned, Message};
use beongae_wire::{ChannelId, Msat, WireMessage};
use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{Amount, ScriptBuf, Transaction, WPubkeyHash, WScriptHash};
use common::{channel, Party, FUNDING};

const A_MSAT: u64 = 600_000_500; // half a satoshi rounds down
const B_MSAT: u64 = 399_999_500;

fn script(b: u8) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([b; 20]))
}

fn pair(
    secp: &Secp256k1<All>,
    a_range: (u64, u64),
    b_range: (u64, u64),
) -> (ClosingNegotiation, ClosingNegotiation, Party, Party) {
    pair_with(secp, a_range, b_range, (A_MSAT, B_MSAT))
}

/// A (funder, dust limit 546 sat) and B (354 sat) with these balances.
fn pair_with(
    secp: &Secp256k1<All>,
    a_range: (u64, u64),
    b_range: (u64, u64),
    (a_msat, b_msat): (u64, u64),
) -> (ClosingNegotiation, ClosingNegotiation, Party, Party) {
    let (pa, pb) = (Party::new(secp, 1), Party::new(secp, 20));
    let id = ChannelId([4; 32]);
    let a = ClosingNegotiation::new(
        id,
        channel(ChannelType::Anchors, &pa, &pb, true),
        pa.funding,
        Msat::from_msat(a_msat),
        Msat::from_msat(b_msat),
        script(0xaa),
        script(0xbb),
        (Amount::from_sat(a_range.0), Amount::from_sat(a_range.1)),
    );
    let b = ClosingNegotiation::new(
        id,
        channel(ChannelType::Anchors, &pa, &pb, false),
        pb.funding,
        Msat::from_msat(b_msat),
        Msat::from_msat(a_msat),
        script(0xbb),
        script(0xaa),
        (Amount::from_sat(b_range.0), Amount::from_sat(b_range.1)),
    );
    (a, b, pa, pb)
}

fn wire(m: &ClosingSigned) -> ClosingSigned {
    let Message::ClosingSigned(m) = Message::decode(&m.encode().unwrap()).unwrap() else {
        panic!()
    };
    m
}

fn check_final(tx: &Transaction, pa: &Party, pb: &Party, fee: u64) {
    funding_script_pubkey(&pa.keys.funding_pubkey, &pb.keys.funding_pubkey)
        .verify(0, FUNDING, &serialize(tx))
        .unwrap();
    let paid = |s: &ScriptBuf| {
        tx.output
            .iter()
            .find(|o| o.script_pubkey == *s)
            .unwrap()
            .value
    };
    assert_eq!(paid(&script(0xaa)), Amount::from_sat(600_000 - fee));
    assert_eq!(paid(&script(0xbb)), Amount::from_sat(399_999));
    let out: Amount = tx.output.iter().map(|o| o.value).sum();
    assert_eq!(
        FUNDING - out,
        Amount::from_sat(fee + 1),
        "fee plus the rounded-down satoshi"
    );
}

#[test]
fn the_fundee_accepts_a_fee_in_its_range() {
    let secp = Secp256k1::new();
    let (mut a, mut b, pa, pb) = pair(&secp, (1_000, 10_000), (2_000, 20_000));
    let first = wire(&a.propose(&secp, Amount::from_sat(5_000)).unwrap());
    let CloseStep::SendAndDone(reply, tx_b) = b.receive(&secp, &first).unwrap() else {
        panic!("B agrees at once")
    };
    assert_eq!(reply.fee_satoshis, 5_000);
    let CloseStep::Done(tx_a) = a.receive(&secp, &wire(&reply)).unwrap() else {
        panic!("A is done")
    };
    assert_eq!(tx_a, tx_b);
    check_final(&tx_a, &pa, &pb, 5_000);
}

#[test]
fn the_fundee_counters_inside_the_overlap_and_the_funder_agrees() {
    let secp = Secp256k1::new();
    let (mut a, mut b, pa, pb) = pair(&secp, (300, 3_000), (1_000, 5_000));
    let first = wire(&a.propose(&secp, Amount::from_sat(500)).unwrap());
    let CloseStep::Send(counter) = b.receive(&secp, &first).unwrap() else {
        panic!("B counters")
    };
    assert_eq!(counter.fee_satoshis, 1_000);
    let CloseStep::SendAndDone(same, tx_a) = a.receive(&secp, &wire(&counter)).unwrap() else {
        panic!("A agrees")
    };
    assert_eq!(same.fee_satoshis, 1_000);
    let CloseStep::Done(tx_b) = b.receive(&secp, &wire(&same)).unwrap() else {
        panic!("B is done")
    };
    assert_eq!(tx_a, tx_b);
    check_final(&tx_a, &pa, &pb, 1_000);
}

#[test]
fn refusals() {
    let secp = Secp256k1::new();
    // No overlap.
    let (mut a, mut b, _, _) = pair(&secp, (300, 800), (1_000, 5_000));
    let first = a.propose(&secp, Amount::from_sat(500)).unwrap();
    assert_eq!(
        b.receive(&secp, &first).unwrap_err(),
        CloseError::NoOverlap {
            ours_min: 1_000,
            ours_max: 5_000,
            theirs_min: 300,
            theirs_max: 800
        }
    );
    // BOLT 2: no overlap changes nothing (the node warns and waits): a
    // later proposal with a satisfying range is agreed.
    let (mut a2, _, _, _) = pair(&secp, (300, 2_000), (1_000, 5_000));
    let later = a2.propose(&secp, Amount::from_sat(1_500)).unwrap();
    let CloseStep::SendAndDone(reply, _) = b.receive(&secp, &later).unwrap() else {
        panic!("B agrees to the later range")
    };
    assert_eq!(reply.fee_satoshis, 1_500);
    // A signature over another fee.
    let (mut a, mut b, _, _) = pair(&secp, (1_000, 10_000), (2_000, 20_000));
    let mut forged = a.propose(&secp, Amount::from_sat(5_000)).unwrap();
    forged.fee_satoshis = 4_000;
    assert_eq!(
        b.receive(&secp, &forged).unwrap_err(),
        CloseError::BadSignature
    );
    // The funder gets a fee outside the overlap.
    let (mut a, mut b, _, _) = pair(&secp, (1_000, 3_000), (2_000, 20_000));
    a.propose(&secp, Amount::from_sat(3_000)).unwrap();
    let high = b.propose(&secp, Amount::from_sat(9_000)).unwrap();
    assert_eq!(
        a.receive(&secp, &high).unwrap_err(),
        CloseError::FeeOutOfRules(9_000)
    );
}

#[test]
fn shutdown_scripts_and_dust_limits() {
    let p2wsh = ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array([1; 32]));
    assert!(is_valid_shutdown_script(&script(1), false));
    assert!(is_valid_shutdown_script(&p2wsh, false));
    let p2tr = ScriptBuf::from_bytes([&[0x51, 32][..], &[7; 32]].concat());
    assert!(!is_valid_shutdown_script(&p2tr, false));
    assert!(is_valid_shutdown_script(&p2tr, true));
    assert!(!is_valid_shutdown_script(
        &ScriptBuf::from_bytes(vec![0x6a]),
        true
    ));
    assert_eq!(dust_limit_for(&script(1)), Amount::from_sat(294));
    assert_eq!(dust_limit_for(&p2wsh), Amount::from_sat(330));
    assert_eq!(dust_limit_for(&p2tr), Amount::from_sat(354));
}

/// BOLT 3 §"Legacy Closing Transaction": each signer trims the outputs below
/// its own dust limit. B's 450 sat balance is above B's dust limit (354)
/// and below A's (546): A's signature is for the transaction without B's
/// output, and B accepts it (it used to check with its own limit only and
/// fail the channel).
#[test]
fn each_signer_trims_by_its_own_dust_limit() {
    let secp = Secp256k1::new();
    let (mut a, mut b, pa, pb) = pair_with(
        &secp,
        (1_000, 10_000),
        (1_000, 10_000),
        (999_550_000, 450_000),
    );
    let first = wire(&a.propose(&secp, Amount::from_sat(2_000)).unwrap());
    let CloseStep::SendAndDone(reply, tx_b) = b.receive(&secp, &first).unwrap() else {
        panic!("B agrees")
    };
    let CloseStep::Done(tx_a) = a.receive(&secp, &wire(&reply)).unwrap() else {
        panic!("A is done")
    };
    assert_eq!(tx_a, tx_b);
    // One output: A's balance minus the fee; B's 450 sat went to fees.
    assert_eq!(tx_a.output.len(), 1);
    assert_eq!(tx_a.output[0].script_pubkey, script(0xaa));
    assert_eq!(tx_a.output[0].value, Amount::from_sat(999_550 - 2_000));
    funding_script_pubkey(&pa.keys.funding_pubkey, &pb.keys.funding_pubkey)
        .verify(0, FUNDING, &serialize(&tx_a))
        .unwrap();
}
