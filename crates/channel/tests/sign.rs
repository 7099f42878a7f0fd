//! `commitment_signed` end to end between two parties: the commitments the
//! update protocol agrees on become BOLT 3 transactions, one side signs the
//! other's commitment and HTLC transactions, the other verifies them against
//! the commitment it computed itself, and the fully signed transactions pass
//! Bitcoin Core's script interpreter (libbitcoinconsensus).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use beongae_channel::commitments::{CommitSpec, Commitments};
use beongae_channel::sign::{BuiltCommitment, CommitSignError, CommitmentSignatures, Owner};
use beongae_script::commitment::CommitmentNumber;
use beongae_script::funding::{funding_script_pubkey, funding_witness};
use beongae_script::htlc_tx::{htlc_tx_witness, remote_htlc_sighash};
use beongae_script::keys::derive_privkey;
use beongae_script::scripts::funding_script;
use beongae_script::sign::sign_p2wsh;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::{Msat, Preimage};
use bitcoin::consensus::serialize;
use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::TxOut;
use common::{channel, params, Party, FUNDING};

/// A fully signed commitment passes the interpreter against the funding output.
fn check_commitment_on_chain(
    built: &BuiltCommitment,
    owner: &Party,
    owner_sig: &Signature,
    other: &Party,
    other_sig: &Signature,
) {
    let mut tx = built.commitment.tx.clone();
    tx.input[0].witness = funding_witness(
        &owner.keys.funding_pubkey,
        owner_sig,
        &other.keys.funding_pubkey,
        other_sig,
    );
    let spk = funding_script_pubkey(&owner.keys.funding_pubkey, &other.keys.funding_pubkey);
    spk.verify(0, FUNDING, &serialize(&tx)).unwrap();
}

fn run(ct: ChannelType) {
    let secp = Secp256k1::new();
    let (a, b) = (Party::new(&secp, 1), Party::new(&secp, 20));
    let (fa, fb) = (channel(ct, &a, &b, true), channel(ct, &a, &b, false));
    let f = FeeratePerKw(2500);
    let (ours, theirs) = (Msat::from_msat(700_000_000), Msat::from_msat(300_000_000));
    let mut ca = Commitments::new(ours, theirs, f, params(ct, true));
    let mut cb = Commitments::new(theirs, ours, f, params(ct, false));
    let preimage = |i: u8| Preimage([i; 32]);
    // Untrimmed both ways, and one below both dust limits.
    for (i, msat) in [(1u8, 5_000_000u64), (2, 20_000_000), (3, 200_000)] {
        let u = ca
            .send_add(Msat::from_msat(msat), preimage(i).payment_hash(), 600_000)
            .unwrap();
        cb.receive_add(u).unwrap();
    }
    let u = cb
        .send_add(
            Msat::from_msat(7_000_000),
            preimage(9).payment_hash(),
            600_010,
        )
        .unwrap();
    ca.receive_add(u).unwrap();

    // A signs B's commitment #1; B verifies against its own.
    let n = CommitmentNumber::new(1).unwrap();
    let spec_a: CommitSpec = ca.send_commit().unwrap();
    let remote = fa
        .build(&secp, Owner::Remote, &spec_a, n, &b.point(&secp, n))
        .unwrap();
    let sigs = fa.sign_remote(&secp, &remote, &a.signing()).unwrap();
    let spec_b = cb.receive_commit().unwrap();
    let local = fb
        .build(&secp, Owner::Local, &spec_b, n, &b.point(&secp, n))
        .unwrap();
    assert_eq!(
        local.commitment.tx, remote.commitment.tx,
        "both build the same transaction"
    );
    // B's commitment holds A's three HTLCs (B's own is not acked yet); the
    // 200-sat one is below B's 354-sat dust limit.
    assert_eq!(sigs.htlc_signatures.len(), 2, "two untrimmed HTLCs");
    assert_eq!(local.htlcs.len(), 3);
    fb.verify_local(&secp, &local, &sigs).unwrap();

    // B's own signature completes it: valid against the funding output.
    let funding = funding_script(&a.keys.funding_pubkey, &b.keys.funding_pubkey);
    let b_sig = sign_p2wsh(
        &secp,
        &local.commitment.tx,
        0,
        &funding,
        FUNDING,
        EcdsaSighashType::All,
        &b.funding,
    )
    .unwrap();
    let a_sig = Signature {
        signature: sigs.signature,
        sighash_type: EcdsaSighashType::All,
    };
    check_commitment_on_chain(&local, &b, &b_sig, &a, &a_sig);

    // Each HTLC transaction, with B's own signature (and the preimage for a
    // received HTLC), spends its output under the interpreter.
    let b_htlc_key = derive_privkey(&secp, &b.htlc_base, &local.keys.per_commitment_point).unwrap();
    for (n, ((vout, h), tx)) in local
        .commitment
        .htlcs_in_output_order()
        .zip(&local.htlc_txs)
        .enumerate()
    {
        let script = local.commitment.outputs[vout as usize].1.clone().unwrap();
        let value = local.commitment.tx.output[vout as usize].value;
        let ours = sign_p2wsh(
            &secp,
            tx,
            0,
            &script,
            value,
            EcdsaSighashType::All,
            &b_htlc_key,
        )
        .unwrap();
        let theirs = Signature {
            signature: sigs.htlc_signatures[n],
            sighash_type: remote_htlc_sighash(ct),
        };
        let htlc = local.htlcs[h];
        let p = (!htlc.offered).then(|| {
            (1..=9u8)
                .map(preimage)
                .find(|p| p.payment_hash() == htlc.payment_hash)
                .unwrap()
        });
        let mut signed = tx.clone();
        signed.input[0].witness = htlc_tx_witness(&theirs, &ours, p.as_ref(), &script);
        let spent = TxOut {
            value,
            script_pubkey: script.to_p2wsh(),
        };
        spent
            .script_pubkey
            .verify(0, spent.value, &serialize(&signed))
            .unwrap_or_else(|e| panic!("htlc tx {n}: {e:?}"));
    }

    // What B must refuse.
    let mut fewer = sigs.clone();
    fewer.htlc_signatures.pop();
    assert_eq!(
        fb.verify_local(&secp, &local, &fewer),
        Err(CommitSignError::HtlcSignatureCount {
            got: 1,
            expected: 2
        })
    );
    let mut swapped = sigs.clone();
    swapped.htlc_signatures.swap(0, 1);
    assert_eq!(
        fb.verify_local(&secp, &local, &swapped),
        Err(CommitSignError::BadHtlcSignature(0))
    );
    // A signature for another state (B's balance one satoshi off).
    let mut other = spec_b.clone();
    other.to_local = other.to_local.checked_sub(Msat::from_msat(1_000)).unwrap();
    other.to_remote = other.to_remote.checked_add(Msat::from_msat(1_000)).unwrap();
    let wrong = fb
        .build(&secp, Owner::Local, &other, n, &b.point(&secp, n))
        .unwrap();
    assert_eq!(
        fb.verify_local(&secp, &wrong, &sigs),
        Err(CommitSignError::BadCommitmentSignature)
    );
    let forged = CommitmentSignatures {
        signature: b_sig.signature,
        htlc_signatures: sigs.htlc_signatures.clone(),
    };
    assert_eq!(
        fb.verify_local(&secp, &local, &forged),
        Err(CommitSignError::BadCommitmentSignature)
    );

    // The other direction: B signs A's next commitment, A verifies.
    cb.receive_revoke().unwrap_err(); // B has nothing outstanding
    ca.receive_revoke().unwrap();
    let spec_b2 = cb.send_commit().unwrap();
    let remote_a = fb
        .build(&secp, Owner::Remote, &spec_b2, n, &a.point(&secp, n))
        .unwrap();
    let sigs_a = fb.sign_remote(&secp, &remote_a, &b.signing()).unwrap();
    let spec_a2 = ca.receive_commit().unwrap();
    let local_a = fa
        .build(&secp, Owner::Local, &spec_a2, n, &a.point(&secp, n))
        .unwrap();
    fa.verify_local(&secp, &local_a, &sigs_a).unwrap();
    // All four HTLCs; the 200-sat one is below A's 546-sat dust limit.
    assert_eq!(local_a.htlcs.len(), 4);
    assert_eq!(local_a.htlc_txs.len(), 3);
}

#[test]
fn commitment_signed_round_trip_static_remotekey() {
    run(ChannelType::StaticRemoteKey);
}

#[test]
fn commitment_signed_round_trip_anchors() {
    run(ChannelType::Anchors);
}
