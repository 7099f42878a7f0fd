//! `option_simple_close` between two sides over encoded messages: each
//! closer pays its own fee, the closee picks the variant BOLT 2 tells it to,
//! and the complete transaction spends the 2-of-2 under
//! libbitcoinconsensus paying each side its balance to the satoshi; then
//! the dust rules and every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use beongae_channel::simple_close::{is_valid_simple_close_script, SimpleClose, SimpleCloseError};
use beongae_script::funding::funding_script_pubkey;
use beongae_script::ChannelType;
use beongae_wire::msgs::{ClosingComplete, ClosingSig, Message};
use beongae_wire::{ChannelId, Msat, WireMessage};
use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{Amount, ScriptBuf, Sequence, Transaction, WPubkeyHash};
use common::{channel, Party, FUNDING};

fn script(b: u8) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([b; 20]))
}

fn pair(
    secp: &Secp256k1<All>,
    a_msat: u64,
    b_msat: u64,
) -> (SimpleClose, SimpleClose, Party, Party) {
    let (pa, pb) = (Party::new(secp, 1), Party::new(secp, 20));
    let id = ChannelId([4; 32]);
    let a = SimpleClose::new(
        id,
        channel(ChannelType::Anchors, &pa, &pb, true),
        pa.funding,
        Msat::from_msat(a_msat),
        Msat::from_msat(b_msat),
        script(0xaa),
        script(0xbb),
        true,
    );
    let b = SimpleClose::new(
        id,
        channel(ChannelType::Anchors, &pa, &pb, false),
        pb.funding,
        Msat::from_msat(b_msat),
        Msat::from_msat(a_msat),
        script(0xbb),
        script(0xaa),
        true,
    );
    (a, b, pa, pb)
}

fn wire_complete(m: &ClosingComplete) -> ClosingComplete {
    let Message::ClosingComplete(m) = Message::decode(&m.encode().unwrap()).unwrap() else {
        panic!()
    };
    m
}

fn wire_sig(m: &ClosingSig) -> ClosingSig {
    let Message::ClosingSig(m) = Message::decode(&m.encode().unwrap()).unwrap() else {
        panic!()
    };
    m
}

fn values(tx: &Transaction) -> Vec<u64> {
    tx.output.iter().map(|o| o.value.to_sat()).collect()
}

fn spends(tx: &Transaction, pa: &Party, pb: &Party) {
    funding_script_pubkey(&pa.keys.funding_pubkey, &pb.keys.funding_pubkey)
        .verify(0, FUNDING, &serialize(tx))
        .unwrap();
}

#[test]
fn each_side_closes_paying_its_own_fee() {
    let secp = Secp256k1::new();
    let (mut a, mut b, pa, pb) = pair(&secp, 600_000_500, 399_999_500);
    // A closes at 1_000 sat with locktime 800_000: it is not the lesser
    // side, so it signs closer_output_only and closer_and_closee_outputs.
    let complete = wire_complete(&a.complete(&secp, Amount::from_sat(1_000), 800_000).unwrap());
    assert!(complete.closer_output_only.is_some());
    assert!(complete.closer_and_closee_outputs.is_some());
    assert!(complete.closee_output_only.is_none());
    assert!(a.awaiting_sig());
    // B (closee) signs the two-output variant and can broadcast it.
    let (sig, tx_b) = b.receive_complete(&secp, &complete).unwrap();
    let sig = wire_sig(&sig);
    assert!(sig.closer_and_closee_outputs.is_some() && sig.closer_output_only.is_none());
    let tx_a = a.receive_sig(&secp, &sig).unwrap();
    assert_eq!(tx_a, tx_b);
    spends(&tx_a, &pa, &pb);
    // BOLT 3: version 2, the given locktime, sequence 0xFFFFFFFD, outputs by
    // value; A pays the fee, half satoshis are rounded down.
    assert_eq!(tx_a.lock_time.to_consensus_u32(), 800_000);
    assert_eq!(tx_a.input[0].sequence, Sequence(0xFFFF_FFFD));
    assert_eq!(values(&tx_a), vec![399_999, 599_000]);
    assert!(!a.awaiting_sig());

    // B closes too (its own transaction, its own fee): the lesser side
    // signs only closer_and_closee_outputs.
    let complete = wire_complete(&b.complete(&secp, Amount::from_sat(700), 0).unwrap());
    assert!(complete.closer_output_only.is_none() && complete.closee_output_only.is_none());
    let (sig, tx) = a.receive_complete(&secp, &complete).unwrap();
    assert_eq!(b.receive_sig(&secp, &wire_sig(&sig)).unwrap(), tx);
    spends(&tx, &pa, &pb);
    assert_eq!(values(&tx), vec![399_299, 600_000]);
}

#[test]
fn dust_outputs_are_left_out() {
    let secp = Secp256k1::new();
    // B holds 200 sat: dust for P2WPKH (294). A, the closer, signs only
    // closer_output_only, and B must use it.
    let (mut a, mut b, pa, pb) = pair(&secp, 999_800_000, 200_000);
    let complete = a.complete(&secp, Amount::from_sat(500), 0).unwrap();
    assert!(complete.closer_output_only.is_some());
    assert!(complete.closer_and_closee_outputs.is_none());
    let (sig, tx) = b.receive_complete(&secp, &complete).unwrap();
    assert!(sig.closer_output_only.is_some());
    assert_eq!(a.receive_sig(&secp, &sig).unwrap(), tx);
    spends(&tx, &pa, &pb);
    assert_eq!(values(&tx), vec![999_300]);
    // B as closer, its own output dust: closee_output_only (everything it
    // has goes to fees).
    let complete = b.complete(&secp, Amount::from_sat(100), 0).unwrap();
    assert!(complete.closee_output_only.is_some() && complete.closer_output_only.is_none());
    let (sig, tx) = a.receive_complete(&secp, &complete).unwrap();
    assert!(sig.closee_output_only.is_some());
    spends(&tx, &pa, &pb);
    assert_eq!(values(&tx), vec![999_800]);
    // The closee is paid its whole balance; the closer's 200 sat all go to
    // the fee (its 100 sat fee plus its dust output), which still relays.
    let fee = 1_000_000 - values(&tx).iter().sum::<u64>();
    assert_eq!(fee, 200);
    assert!(fee * 4 >= tx.weight().to_wu(), "at least 1 sat/vbyte");
    // It can never pay more than its balance.
    assert_eq!(
        b.complete(&secp, Amount::from_sat(201), 0).unwrap_err(),
        SimpleCloseError::FeeAboveBalance {
            fee: 201,
            balance: 200
        }
    );
}

#[test]
fn refusals() {
    let secp = Secp256k1::new();
    let (mut a, mut b, _, _) = pair(&secp, 600_000_000, 400_000_000);
    // The closer cannot pay more than it has.
    assert_eq!(
        a.complete(&secp, Amount::from_sat(600_001), 0).unwrap_err(),
        SimpleCloseError::FeeAboveBalance {
            fee: 600_001,
            balance: 600_000
        }
    );
    let good = a.complete(&secp, Amount::from_sat(1_000), 0).unwrap();
    // A fee above the closer's balance, seen by the closee.
    let mut m = good.clone();
    m.fee_satoshis = 600_001;
    assert_eq!(
        b.clone().receive_complete(&secp, &m).unwrap_err(),
        SimpleCloseError::FeeAboveBalance {
            fee: 600_001,
            balance: 600_000
        }
    );
    // closee_scriptpubkey other than the one B sent.
    let mut m = good.clone();
    m.closee_scriptpubkey.0 = script(0xcc).to_bytes();
    assert!(matches!(
        b.clone().receive_complete(&secp, &m).unwrap_err(),
        SimpleCloseError::WrongCloseeScript(_)
    ));
    // A closer script that is not allowed (bare OP_TRUE).
    let mut m = good.clone();
    m.closer_scriptpubkey.0 = vec![0x51];
    assert_eq!(
        b.clone().receive_complete(&secp, &m).unwrap_err(),
        SimpleCloseError::BadCloserScript("51".into())
    );
    // The signature B must check is missing, or made for another fee.
    let mut m = good.clone();
    m.closer_and_closee_outputs = None;
    m.closer_output_only = None;
    assert_eq!(
        b.clone().receive_complete(&secp, &m).unwrap_err(),
        SimpleCloseError::MissingSignature("closee_output_only")
    );
    let mut m = good.clone();
    m.fee_satoshis = 999;
    assert_eq!(
        b.clone().receive_complete(&secp, &m).unwrap_err(),
        SimpleCloseError::BadSignature("closer_and_closee_outputs")
    );
    // closing_sig that does not answer what A sent.
    let (sig, _) = b.receive_complete(&secp, &good).unwrap();
    let mut s = sig.clone();
    s.fee_satoshis = 2_000;
    assert_eq!(
        a.clone().receive_sig(&secp, &s).unwrap_err(),
        SimpleCloseError::Mismatch("fee_satoshis or locktime")
    );
    let mut s = sig.clone();
    s.closer_output_only = s.closer_and_closee_outputs;
    assert_eq!(
        a.clone().receive_sig(&secp, &s).unwrap_err(),
        SimpleCloseError::Mismatch("not exactly one signature")
    );
    // The real one completes.
    a.receive_sig(&secp, &sig).unwrap();
    // A second closing_sig with nothing outstanding.
    assert_eq!(
        a.receive_sig(&secp, &sig).unwrap_err(),
        SimpleCloseError::Mismatch("no closing_complete was sent")
    );
}

#[test]
fn op_return_scripts() {
    let op_return = |n: usize| {
        let mut v = vec![0x6a];
        if n > 75 {
            v.push(76);
        }
        v.push(n as u8);
        v.extend(std::iter::repeat_n(0u8, n));
        ScriptBuf::from_bytes(v)
    };
    for n in [6, 75, 76, 80] {
        assert!(is_valid_simple_close_script(&op_return(n), false), "{n}");
    }
    for n in [5, 81] {
        assert!(!is_valid_simple_close_script(&op_return(n), false), "{n}");
    }
    assert!(is_valid_simple_close_script(&script(1), false));
}
