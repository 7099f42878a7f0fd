//! BOLT 5 HTLC outputs of unrevoked commitments, both channel types: on
//! our commitment the HTLC-timeout and HTLC-success transactions (the
//! peer's kept signature and ours) and the sweep of their delayed output;
//! on the peer's, our claims with the preimage and after expiry. Every
//! input passes Bitcoin Core's script interpreter, amounts are exact, and
//! each refusal (no preimage, a wrong one) is checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use beongae_channel::onchain::{
    claim_transaction, our_offered_htlc_outputs, our_to_local_claim, ours_by_outputs,
};
use beongae_channel::onchain_htlcs::{
    our_commitment_htlcs, preimage_in, signed_htlc_tx, their_commitment_htlcs, their_htlc_claim,
    HtlcClaimError, HtlcOutput,
};
use beongae_channel::revocation::LocalSecrets;
use beongae_script::fees::second_stage_fee;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::{Msat, Preimage};
use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, WPubkeyHash};
use common::pair::{onion, setup_with, Pair};
use common::sk;

const EXPIRY_A: u32 = 700_100;
const EXPIRY_B: u32 = 700_200;

fn wallet() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0xaa; 20]))
}

/// A channel where A offered 50,000 sat (preimage `[1; 32]`) and 400 sat
/// (dust, preimage `[2; 32]`), and B offered 30,000 sat (preimage
/// `[3; 32]`), all committed on both sides.
fn channel_with_htlcs(ct: ChannelType) -> Pair {
    let mut p = setup_with(ct, 600_000, 400_000);
    for (tag, sat) in [(1u8, 50_000), (2, 400)] {
        let add =
            p.a.send_add(
                Msat::from_msat(sat * 1000),
                Preimage([tag; 32]).payment_hash(),
                EXPIRY_A,
                onion(tag),
            )
            .unwrap();
        p.send(true, add);
    }
    let add =
        p.b.send_add(
            Msat::from_msat(30_000_000),
            Preimage([3; 32]).payment_hash(),
            EXPIRY_B,
            onion(3),
        )
        .unwrap();
    p.send(false, add);
    p.settle();
    assert_eq!(p.a.commitments.local.htlcs.len(), 3);
    p
}

/// Input `n` of `tx` spends `spent` under the interpreter.
fn verify(tx: &Transaction, n: usize, spent: &TxOut) {
    spent
        .script_pubkey
        .verify(n, spent.value, &serialize(tx))
        .unwrap_or_else(|e| panic!("input {n}: {e:?}"));
}

/// The output of the HTLC with preimage `[tag; 32]`, offered by us or not.
fn out_of(outputs: &[HtlcOutput], we_offered: bool, tag: u8) -> &HtlcOutput {
    let hash = Preimage([tag; 32]).payment_hash();
    outputs
        .iter()
        .find(|o| o.we_offered == we_offered && o.payment_hash == hash)
        .unwrap()
}

fn our_commitment_second_stages(ct: ChannelType) {
    let p = channel_with_htlcs(ct);
    let commitment = p.a.signed_local_commitment(&p.secp).unwrap();
    let point = LocalSecrets::new(p.pa.seed).point(&p.secp, p.a.local_number);
    let outputs = our_commitment_htlcs(
        &p.secp,
        &p.a.funded,
        &commitment,
        &p.a.commitments.local,
        p.a.local_number,
        &point,
        &p.a.local_signatures.htlc_signatures,
    )
    .unwrap();
    // The 400 sat HTLC is trimmed: two outputs.
    assert_eq!(outputs.len(), 2);
    let feerate = p.a.commitments.local.feerate;
    let spent = |o: &HtlcOutput| commitment.output[o.outpoint.vout as usize].clone();

    // HTLC-timeout of A's 50,000 sat: locktime its expiry, both signatures.
    let offered = out_of(&outputs, true, 1);
    assert_eq!(offered.value, Amount::from_sat(50_000));
    assert_eq!(offered.cltv_expiry, EXPIRY_A);
    let timeout =
        signed_htlc_tx(&p.secp, &p.a.funded, offered, &p.pa.htlc_base, None, None).unwrap();
    assert_eq!(timeout.lock_time.to_consensus_u32(), EXPIRY_A);
    verify(&timeout, 0, &spent(offered));
    let fee = second_stage_fee(true, ct, feerate);
    assert_eq!(timeout.output[0].value, Amount::from_sat(50_000) - fee);

    // HTLC-success of B's 30,000 sat needs the preimage, and the right one.
    let received = out_of(&outputs, false, 3);
    assert_eq!(
        signed_htlc_tx(&p.secp, &p.a.funded, received, &p.pa.htlc_base, None, None).unwrap_err(),
        HtlcClaimError::NoPreimage
    );
    assert_eq!(
        signed_htlc_tx(
            &p.secp,
            &p.a.funded,
            received,
            &p.pa.htlc_base,
            Some(&Preimage([1; 32])),
            None
        )
        .unwrap_err(),
        HtlcClaimError::WrongPreimage
    );
    let success = signed_htlc_tx(
        &p.secp,
        &p.a.funded,
        received,
        &p.pa.htlc_base,
        Some(&Preimage([3; 32])),
        None,
    )
    .unwrap();
    assert_eq!(success.lock_time.to_consensus_u32(), 0);
    verify(&success, 0, &spent(received));
    let fee = second_stage_fee(false, ct, feerate);
    assert_eq!(success.output[0].value, Amount::from_sat(30_000) - fee);
    assert_eq!(
        preimage_in(&success.input[0].witness, &received.payment_hash),
        Some(Preimage([3; 32]))
    );

    // A wrong key does not verify (the negative twin).
    let mut forged = timeout.clone();
    let wrong = signed_htlc_tx(&p.secp, &p.a.funded, offered, &sk(99), None, None).unwrap();
    forged.input[0].witness = wrong.input[0].witness.clone();
    assert!(spent(offered)
        .script_pubkey
        .verify(0, offered.value, &serialize(&forged))
        .is_err());

    if ct == ChannelType::Anchors {
        // Zero fee: the peer signed SIGHASH_SINGLE|ANYONECANPAY, so a wallet
        // input and a change output can be added to pay the fee; we sign
        // SIGHASH_ALL over the result (BOLT 5), and our signature on the
        // bare transaction does not hold for it.
        assert_eq!(timeout.output[0].value, Amount::from_sat(50_000));
        let mut with_fee = timeout.clone();
        with_fee.input.push(TxIn {
            previous_output: OutPoint {
                txid: bitcoin::Txid::from_byte_array([9; 32]),
                vout: 0,
            },
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            ..TxIn::default()
        });
        with_fee.output.push(TxOut {
            value: Amount::from_sat(90_000),
            script_pubkey: wallet(),
        });
        assert!(spent(offered)
            .script_pubkey
            .verify(0, offered.value, &serialize(&with_fee))
            .is_err());
        let signed = signed_htlc_tx(
            &p.secp,
            &p.a.funded,
            offered,
            &p.pa.htlc_base,
            None,
            Some(with_fee.clone()),
        )
        .unwrap();
        assert_eq!(signed.input[1], with_fee.input[1]);
        verify(&signed, 0, &spent(offered));
        let sighash = signed.input[0].witness.nth(2).unwrap().last().copied();
        assert_eq!(sighash, Some(0x01), "our signature is SIGHASH_ALL");
        // Its first output changed: refused.
        let mut moved = with_fee.clone();
        moved.output[0].value = Amount::from_sat(40_000);
        assert_eq!(
            signed_htlc_tx(
                &p.secp,
                &p.a.funded,
                offered,
                &p.pa.htlc_base,
                None,
                Some(moved)
            )
            .unwrap_err(),
            HtlcClaimError::NotThisCommitment
        );
    }

    // The second stages' outputs are A's delayed output, swept after A's
    // 720 blocks with A's delayed key (secret 4).
    for htlc_tx in [&timeout, &success] {
        let claim = our_to_local_claim(&p.secp, &p.a.funded, htlc_tx, &point, &sk(4))
            .unwrap()
            .unwrap();
        assert_eq!(claim.input.value, htlc_tx.output[0].value);
        let sweep = claim_transaction(
            &p.secp,
            std::slice::from_ref(&claim),
            wallet(),
            FeeratePerKw(1_000),
        )
        .unwrap();
        assert_eq!(sweep.input[0].sequence, Sequence::from_height(720));
        verify(&sweep, 0, &htlc_tx.output[0]);
    }
}

#[test]
fn our_commitment_htlcs_time_out_and_succeed_anchors() {
    our_commitment_second_stages(ChannelType::Anchors);
}

#[test]
fn our_commitment_htlcs_time_out_and_succeed_static_remotekey() {
    our_commitment_second_stages(ChannelType::StaticRemoteKey);
}

fn their_commitment_claims(ct: ChannelType) {
    let p = channel_with_htlcs(ct);
    let commitment = p.b.signed_local_commitment(&p.secp).unwrap();
    assert_eq!(p.a.remote.current, p.b.local_number);
    let outputs = their_commitment_htlcs(
        &p.secp,
        &p.a.funded,
        &commitment,
        &p.a.commitments.remote,
        p.a.remote.current,
        &p.a.remote.current_point,
    )
    .unwrap();
    // B's dust limit is 354 sat: with anchors (no second-stage fee to
    // count) the 400 sat HTLC has an output on B's commitment.
    let untrimmed = match ct {
        ChannelType::Anchors => 3,
        ChannelType::StaticRemoteKey => 2,
    };
    assert_eq!(outputs.len(), untrimmed);
    let spent = |o: &HtlcOutput| commitment.output[o.outpoint.vout as usize].clone();
    let feerate = FeeratePerKw(1_000);

    // A's offered 50,000 sat, back to A after its expiry.
    let offered = out_of(&outputs, true, 1);
    assert_eq!(offered.value, Amount::from_sat(50_000));
    let claim = their_htlc_claim(&p.secp, &p.a.funded, offered, &p.pa.htlc_base, None).unwrap();
    let tx = claim_transaction(&p.secp, &[claim], wallet(), feerate).unwrap();
    assert_eq!(tx.lock_time.to_consensus_u32(), EXPIRY_A);
    verify(&tx, 0, &spent(offered));
    let fee = (Amount::from_sat(50_000) - tx.output[0].value).to_sat();
    let weight = tx.weight().to_wu();
    assert!(fee >= feerate.fee_for_weight(weight).to_sat(), "fee {fee}");
    assert!(
        fee <= feerate.fee_for_weight(weight + 50).to_sat(),
        "fee {fee}"
    );
    // The same claim a block before the expiry (validly signed, locktime
    // one less) fails the script's OP_CHECKLOCKTIMEVERIFY.
    let mut early_out = offered.clone();
    early_out.cltv_expiry = EXPIRY_A - 1;
    let early = their_htlc_claim(&p.secp, &p.a.funded, &early_out, &p.pa.htlc_base, None).unwrap();
    let early = claim_transaction(&p.secp, &[early], wallet(), feerate).unwrap();
    assert_eq!(early.lock_time.to_consensus_u32(), EXPIRY_A - 1);
    assert!(spent(offered)
        .script_pubkey
        .verify(0, offered.value, &serialize(&early))
        .is_err());

    // B's offered 30,000 sat, to A with the preimage only.
    let received = out_of(&outputs, false, 3);
    assert_eq!(received.value, Amount::from_sat(30_000));
    assert_eq!(
        their_htlc_claim(&p.secp, &p.a.funded, received, &p.pa.htlc_base, None).unwrap_err(),
        HtlcClaimError::NoPreimage
    );
    let claim = their_htlc_claim(
        &p.secp,
        &p.a.funded,
        received,
        &p.pa.htlc_base,
        Some(&Preimage([3; 32])),
    )
    .unwrap();
    let tx = claim_transaction(&p.secp, &[claim], wallet(), feerate).unwrap();
    assert_eq!(tx.lock_time.to_consensus_u32(), 0);
    let expected_sequence = match ct {
        ChannelType::Anchors => Sequence(1),
        ChannelType::StaticRemoteKey => Sequence::ENABLE_RBF_NO_LOCKTIME,
    };
    assert_eq!(tx.input[0].sequence, expected_sequence);
    verify(&tx, 0, &spent(received));
    assert_eq!(
        preimage_in(&tx.input[0].witness, &received.payment_hash),
        Some(Preimage([3; 32]))
    );

    // B's HTLC-success of A's offered HTLC on B's commitment tells A the
    // preimage.
    let b_point = LocalSecrets::new(p.pb.seed).point(&p.secp, p.b.local_number);
    let b_outputs = our_commitment_htlcs(
        &p.secp,
        &p.b.funded,
        &commitment,
        &p.b.commitments.local,
        p.b.local_number,
        &b_point,
        &p.b.local_signatures.htlc_signatures,
    )
    .unwrap();
    let b_received = out_of(&b_outputs, false, 1);
    let b_success = signed_htlc_tx(
        &p.secp,
        &p.b.funded,
        b_received,
        &p.pb.htlc_base,
        Some(&Preimage([1; 32])),
        None,
    )
    .unwrap();
    verify(&b_success, 0, &spent(offered));
    assert_eq!(
        preimage_in(&b_success.input[0].witness, &offered.payment_hash),
        Some(Preimage([1; 32]))
    );
    assert_eq!(
        preimage_in(&b_success.input[0].witness, &received.payment_hash),
        None
    );
}

#[test]
fn their_commitment_htlcs_claimed_anchors() {
    their_commitment_claims(ChannelType::Anchors);
}

#[test]
fn their_commitment_htlcs_claimed_static_remotekey() {
    their_commitment_claims(ChannelType::StaticRemoteKey);
}

/// The child spending our anchor (CPFP): our funding key signs it
/// `SIGHASH_ALL` once the wallet's input and change output are added; a
/// commitment without anchors has none.
#[test]
fn the_anchor_child_takes_a_wallet_input() {
    use beongae_channel::onchain::{anchor_child, sign_anchor_child};
    let p = channel_with_htlcs(ChannelType::Anchors);
    let commitment = p.a.signed_local_commitment(&p.secp).unwrap();
    let (mut child, prevout) =
        anchor_child(&p.secp, &p.a.funded, &commitment, &p.pa.funding, wallet()).unwrap();
    assert_eq!(prevout.value, Amount::from_sat(330));
    assert_eq!(child.output[0].value, Amount::from_sat(330));
    assert_eq!(
        commitment.output[child.input[0].previous_output.vout as usize],
        prevout
    );
    verify(&child, 0, &prevout);
    child.input.push(TxIn {
        previous_output: OutPoint {
            txid: bitcoin::Txid::from_byte_array([9; 32]),
            vout: 3,
        },
        ..TxIn::default()
    });
    child.output.push(TxOut {
        value: Amount::from_sat(50_000),
        script_pubkey: wallet(),
    });
    // Signed SIGHASH_ALL: the wallet's additions need a new signature.
    assert!(prevout
        .script_pubkey
        .verify(0, prevout.value, &serialize(&child))
        .is_err());
    let child = sign_anchor_child(&p.secp, &p.a.funded, child, &prevout, &p.pa.funding).unwrap();
    verify(&child, 0, &prevout);
    // Signed with another key, it does not hold.
    let (forged, _) = anchor_child(&p.secp, &p.a.funded, &commitment, &sk(99), wallet()).unwrap();
    assert!(prevout
        .script_pubkey
        .verify(0, prevout.value, &serialize(&forged))
        .is_err());
    let p = channel_with_htlcs(ChannelType::StaticRemoteKey);
    let commitment = p.a.signed_local_commitment(&p.secp).unwrap();
    assert!(anchor_child(&p.secp, &p.a.funded, &commitment, &p.pa.funding, wallet()).is_none());
}

/// A commitment of ours read without its state (an old one, revoked, that
/// a copy of our store from before broadcast): told from the peer's by its
/// outputs, and the HTLC we offered found by its script, at the output
/// where the state puts it; the trimmed one and one the peer offered are
/// not found as ours.
fn ours_read_by_outputs(ct: ChannelType) {
    let p = channel_with_htlcs(ct);
    let ours = p.a.signed_local_commitment(&p.secp).unwrap();
    let theirs = p.b.signed_local_commitment(&p.secp).unwrap();
    let point = LocalSecrets::new(p.pa.seed).point(&p.secp, p.a.local_number);
    let keys = ours_by_outputs(&p.secp, &p.a.funded, &ours, &point).expect("ours");
    assert!(ours_by_outputs(&p.secp, &p.a.funded, &theirs, &point).is_none());
    // At another commitment's point our to_local does not match, but the
    // peer's static to_remote still tells the commitment ours...
    let other = LocalSecrets::new(p.pa.seed).point(&p.secp, p.a.local_number.next().unwrap());
    assert!(ours_by_outputs(&p.secp, &p.a.funded, &ours, &other).is_some());
    // ...unless the peer's payment_basepoint is ours: then its own
    // commitments would pay "its" to_remote too, and only our to_local
    // tells.
    let mut copied = p.a.funded;
    copied.remote_keys.payment_basepoint = copied.local_keys.payment_basepoint;
    assert!(ours_by_outputs(&p.secp, &copied, &ours, &other).is_none());
    assert!(ours_by_outputs(&p.secp, &copied, &ours, &point).is_some());
    let outputs = our_commitment_htlcs(
        &p.secp,
        &p.a.funded,
        &ours,
        &p.a.commitments.local,
        p.a.local_number,
        &point,
        &p.a.local_signatures.htlc_signatures,
    )
    .unwrap();
    let hash = |tag: u8| Preimage([tag; 32]).payment_hash();
    assert_eq!(
        our_offered_htlc_outputs(&p.a.funded, &ours, &keys, &hash(1)),
        vec![out_of(&outputs, true, 1).outpoint]
    );
    // 400 sat: trimmed, no output.
    assert_eq!(
        our_offered_htlc_outputs(&p.a.funded, &ours, &keys, &hash(2)),
        vec![]
    );
    // B's: received by us, not offered.
    assert_eq!(
        our_offered_htlc_outputs(&p.a.funded, &ours, &keys, &hash(3)),
        vec![]
    );
}

#[test]
fn our_commitment_read_by_its_outputs_anchors() {
    ours_read_by_outputs(ChannelType::Anchors);
}

#[test]
fn our_commitment_read_by_its_outputs_static_remotekey() {
    ours_read_by_outputs(ChannelType::StaticRemoteKey);
}
