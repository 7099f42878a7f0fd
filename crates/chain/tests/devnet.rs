//! The devnet's mempool and chain: what it refuses, when the same
//! transaction becomes acceptable, reorgs, persistence, and BOLT 3
//! transactions from `beongae-script` confirming only when they should.

#![allow(clippy::unwrap_used)]

mod common;

use beongae_chain::devnet::{Devnet, MempoolError};
use beongae_script::commitment::{
    build_commitment, CommitmentNumber, CommitmentSpec, ObscuringFactor, OutputKind,
};
use beongae_script::funding::{funding_script_pubkey, funding_witness};
use beongae_script::keys::{derive_privkey, ChannelPublicKeys, CommitmentKeys};
use beongae_script::scripts::funding_script;
use beongae_script::sign::sign_p2wsh;
use beongae_script::sweep::{build_sweep, sign_sweep, SpendPath, SweepInput};
use beongae_script::{ChannelType, FeeratePerKw, Msat};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, Sequence, TxOut};
use common::{Wallet, T0};

/// A devnet with 101 blocks mined to `w`: the coinbases of blocks 1 and 2 are spendable.
fn funded(w: &Wallet) -> Devnet {
    let mut d = Devnet::new();
    d.mine(101, &w.spk, T0);
    d
}

fn coinbase_of(d: &Devnet, height: u32) -> (OutPoint, Amount) {
    let tx = &d.block_at(height).unwrap().txdata[0];
    (
        OutPoint {
            txid: tx.compute_txid(),
            vout: 0,
        },
        tx.output[0].value,
    )
}

#[test]
fn blocks_are_real_regtest_blocks() {
    let w = Wallet::new(1);
    let d = funded(&w);
    assert_eq!(d.height(), 101);
    for h in 1..=101 {
        let b = d.block_at(h).unwrap();
        if h > 16 {
            assert_eq!(b.bip34_block_height(), Ok(u64::from(h)));
        } else {
            // `CScript() << h` is OP_1..OP_16 for small heights.
            assert_eq!(
                b.txdata[0].input[0].script_sig.as_bytes()[0],
                0x50 + h as u8
            );
        }
        assert!(b.check_merkle_root() && b.check_witness_commitment());
        assert!(b.header.validate_pow(b.header.target()).is_ok());
        assert_eq!(
            b.header.prev_blockhash,
            d.block_at(h - 1).unwrap().block_hash()
        );
    }
    assert_eq!(
        d.block_at(0).unwrap().block_hash(),
        bitcoin::constants::genesis_block(bitcoin::Network::Regtest).block_hash()
    );
}

#[test]
fn bad_signature_is_rejected() {
    let w = Wallet::new(1);
    let mut d = funded(&w);
    let mut tx = w.pay(
        coinbase_of(&d, 1),
        &Wallet::new(2).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(1000),
    );
    tx.output[0].value = Amount::from_sat(1_000_001); // invalidates the signature
    assert!(matches!(
        d.accept(tx),
        Err(MempoolError::Script { input: 0, .. })
    ));
    let other = Wallet::new(9);
    let tx = other.spend(
        &[(coinbase_of(&d, 1).0, coinbase_of(&d, 1).1, Sequence::MAX)],
        vec![TxOut {
            value: Amount::from_sat(1000),
            script_pubkey: other.spk.clone(),
        }],
        0,
    );
    assert!(matches!(
        d.accept(tx),
        Err(MempoolError::Script { input: 0, .. })
    ));
    let good = w.pay(
        coinbase_of(&d, 1),
        &Wallet::new(2).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(1000),
    );
    d.accept(good).unwrap();
}

#[test]
fn double_spend_needs_a_higher_fee() {
    let w = Wallet::new(1);
    let mut d = funded(&w);
    let coin = coinbase_of(&d, 1);
    let first = w.pay(
        coin,
        &Wallet::new(2).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(1000),
    );
    let first_id = d.accept(first.clone()).unwrap();
    // A child of the first.
    let child = w.pay(
        (
            OutPoint {
                txid: first_id,
                vout: 1,
            },
            first.output[1].value,
        ),
        &Wallet::new(3).spk,
        Amount::from_sat(5000),
        Amount::from_sat(500),
    );
    let child_id = d.accept(child).unwrap();
    let same_fee = w.pay(
        coin,
        &Wallet::new(4).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(1500),
    );
    assert!(matches!(
        d.accept(same_fee),
        Err(MempoolError::ReplacementTooCheap { .. })
    ));
    assert_eq!(d.mempool(), vec![first_id, child_id]);
    // More than the 1500 replaced, but not by 1 sat/vB of its own size
    // (BIP 125 rule 4 as Core applies it: "insufficient fee").
    let plus_one = w.pay(
        coin,
        &Wallet::new(4).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(1501),
    );
    assert_eq!(
        d.accept(plus_one),
        Err(MempoolError::ReplacementTooCheap {
            conflict: first_id,
            fee: Amount::from_sat(1501),
            conflict_fee: Amount::from_sat(1500)
        })
    );
    let higher = w.pay(
        coin,
        &Wallet::new(4).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(2000),
    );
    let higher_id = d.accept(higher).unwrap();
    assert_eq!(d.mempool(), vec![higher_id]);
    d.mine(1, &w.spk, T0);
    assert_eq!(d.confirmations(&higher_id), Some(1));
    assert_eq!(d.confirmations(&first_id), None);
    // Spent in the chain: gone for good.
    let again = w.pay(
        coin,
        &Wallet::new(5).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(9000),
    );
    assert_eq!(d.accept(again), Err(MempoolError::MissingInput(coin.0)));
}

#[test]
fn immature_coinbase_until_100_confirmations() {
    let w = Wallet::new(1);
    let mut d = funded(&w);
    let coin = coinbase_of(&d, 3); // 99 confirmations at the next block
    let tx = w.pay(
        coin,
        &Wallet::new(2).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(1000),
    );
    assert_eq!(
        d.accept(tx.clone()),
        Err(MempoolError::ImmatureCoinbase {
            outpoint: coin.0,
            confirmations: 99
        })
    );
    d.mine(1, &w.spk, T0);
    d.accept(tx).unwrap();
}

#[test]
fn locktime_not_yet_reached_then_accepted() {
    let w = Wallet::new(1);
    let mut d = funded(&w);
    let coin = coinbase_of(&d, 1);
    let out = vec![TxOut {
        value: coin.1 - Amount::from_sat(1000),
        script_pubkey: w.spk.clone(),
    }];
    // Height lock: valid in a block of height > 103; the next block is 102.
    let tx = w.spend(
        &[(coin.0, coin.1, Sequence::ENABLE_LOCKTIME_NO_RBF)],
        out.clone(),
        103,
    );
    assert_eq!(d.accept(tx.clone()), Err(MempoolError::NonFinal(103)));
    d.mine(1, &w.spk, T0);
    assert_eq!(d.accept(tx.clone()), Err(MempoolError::NonFinal(103)));
    d.mine(1, &w.spk, T0);
    d.accept(tx).unwrap();
    // Time lock against the median time past (BIP 113).
    let coin = coinbase_of(&d, 2);
    let mtp = d.median_time_past(d.height());
    let tx = w.spend(
        &[(coin.0, coin.1, Sequence::ENABLE_LOCKTIME_NO_RBF)],
        out,
        mtp + 3,
    );
    assert_eq!(d.accept(tx.clone()), Err(MempoolError::NonFinal(mtp + 3)));
    d.mine(11, &w.spk, mtp + 100);
    d.accept(tx).unwrap();
}

#[test]
fn bip68_relative_locktime() {
    let w = Wallet::new(1);
    let mut d = funded(&w);
    let first = w.pay(
        coinbase_of(&d, 1),
        &w.spk,
        Amount::from_sat(10_000_000),
        Amount::from_sat(1000),
    );
    let first_id = d.accept(first).unwrap();
    d.mine(1, &w.spk, T0); // confirmed at 102
    let coin = (
        OutPoint {
            txid: first_id,
            vout: 0,
        },
        Amount::from_sat(10_000_000),
    );
    let out = vec![TxOut {
        value: Amount::from_sat(9_999_000),
        script_pubkey: w.spk.clone(),
    }];
    // 5 blocks relative: needs the next block to be at least 102 + 5.
    let tx = w.spend(&[(coin.0, coin.1, Sequence::from_height(5))], out, 0);
    assert_eq!(
        d.accept(tx.clone()),
        Err(MempoolError::RelativeLocktime(coin.0))
    );
    d.mine(3, &w.spk, T0);
    assert_eq!(
        d.accept(tx.clone()),
        Err(MempoolError::RelativeLocktime(coin.0))
    );
    d.mine(1, &w.spk, T0);
    d.accept(tx).unwrap();
}

#[test]
fn reorg_returns_transactions_and_a_conflict_can_confirm() {
    let w = Wallet::new(1);
    let mut d = funded(&w);
    let coin = coinbase_of(&d, 1);
    let original = w.pay(
        coin,
        &Wallet::new(2).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(1000),
    );
    let original_id = d.accept(original).unwrap();
    d.mine(2, &w.spk, T0);
    assert_eq!(d.confirmations(&original_id), Some(2));
    let old_tip = d.tip_hash();

    let disconnected = d.disconnect(2);
    assert_eq!(disconnected.len(), 2);
    assert_eq!(d.height(), 101);
    assert_eq!(
        d.confirmations(&original_id),
        Some(0),
        "back in the mempool"
    );
    // A conflicting spend replaces it and confirms on the competing branch.
    let conflict = w.pay(
        coin,
        &Wallet::new(3).spk,
        Amount::from_sat(2_000_000),
        Amount::from_sat(5000),
    );
    let conflict_id = d.accept(conflict).unwrap();
    d.mine(3, &Wallet::new(7).spk, T0 + 50);
    assert_ne!(d.tip_hash(), old_tip);
    assert_eq!(d.confirmations(&conflict_id), Some(3));
    assert_eq!(d.confirmations(&original_id), None);
    assert!(d
        .utxo(&OutPoint {
            txid: original_id,
            vout: 0
        })
        .is_none());
    assert!(d
        .utxo(&OutPoint {
            txid: conflict_id,
            vout: 0
        })
        .is_some());
}

#[test]
fn state_survives_save_and_load() {
    let w = Wallet::new(1);
    let mut d = funded(&w);
    let tx = w.pay(
        coinbase_of(&d, 1),
        &Wallet::new(2).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(1000),
    );
    let txid = d.accept(tx).unwrap();
    let dir = tempfile::tempdir().unwrap();
    d.save(dir.path()).unwrap();
    let loaded = Devnet::load(dir.path()).unwrap();
    assert_eq!(loaded.tip_hash(), d.tip_hash());
    assert_eq!(loaded.mempool(), vec![txid]);
    assert_eq!(loaded.utxos_for(&w.spk).len(), d.utxos_for(&w.spk).len());
    // A corrupt file is an error that says what to do, not a panic.
    std::fs::write(dir.path().join("blocks.dat"), [1, 2, 3]).unwrap();
    let err = Devnet::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("move it away"), "{err}");
}

/// BOLT 3 transactions from `beongae-script` on the devnet: the funding
/// transaction, a commitment spending it, and the CSV-delayed `to_local`
/// sweep, which confirms only after `to_self_delay` blocks.
#[test]
fn bolt3_transactions_confirm_only_when_they_should() {
    let w = Wallet::new(1);
    let mut d = funded(&w);
    let secp = Secp256k1::new();
    let sk = |b: u8| SecretKey::from_slice(&[b; 32]).unwrap();
    let pk = |k: &SecretKey| PublicKey::from_secret_key(&secp, k);
    let party = |s: u8| ChannelPublicKeys {
        funding_pubkey: pk(&sk(s)),
        revocation_basepoint: pk(&sk(s + 1)),
        payment_basepoint: pk(&sk(s + 2)),
        delayed_payment_basepoint: pk(&sk(s + 3)),
        htlc_basepoint: pk(&sk(s + 4)),
    };
    let (a, b) = (party(10), party(40));

    // Funding transaction.
    let funding_amount = Amount::from_sat(2_000_000);
    let funding_spk = funding_script_pubkey(&a.funding_pubkey, &b.funding_pubkey);
    let funding_tx = w.pay(
        coinbase_of(&d, 1),
        &funding_spk,
        funding_amount,
        Amount::from_sat(1000),
    );
    let funding_txid = d.accept(funding_tx).unwrap();
    d.mine(1, &w.spk, T0);

    // A's commitment, signed by both.
    let to_self_delay = 6;
    let pcp = pk(&sk(99));
    let keys = CommitmentKeys::derive(&secp, &a, &b, &pcp).unwrap();
    let spec = CommitmentSpec {
        channel_type: ChannelType::Anchors,
        funding_outpoint: OutPoint {
            txid: funding_txid,
            vout: 0,
        },
        funding_amount,
        commitment_number: CommitmentNumber::new(3).unwrap(),
        obscuring_factor: ObscuringFactor::from_u64(0x42),
        to_self_delay,
        dust_limit: Amount::from_sat(546),
        feerate: FeeratePerKw(2500),
        to_local: Msat::from_msat(1_500_000_000),
        to_remote: Msat::from_msat(500_000_000),
        owner_is_funder: true,
        keys: &keys,
        htlcs: &[],
    };
    let built = build_commitment(&spec).unwrap();
    let mut commitment = built.tx.clone();
    let script = funding_script(&a.funding_pubkey, &b.funding_pubkey);
    let sa = sign_p2wsh(
        &secp,
        &commitment,
        0,
        &script,
        funding_amount,
        EcdsaSighashType::All,
        &sk(10),
    )
    .unwrap();
    let sb = sign_p2wsh(
        &secp,
        &commitment,
        0,
        &script,
        funding_amount,
        EcdsaSighashType::All,
        &sk(40),
    )
    .unwrap();
    // With only one party's signature it is refused.
    commitment.input[0].witness = funding_witness(&a.funding_pubkey, &sa, &b.funding_pubkey, &sa);
    assert!(matches!(
        d.accept(commitment.clone()),
        Err(MempoolError::Script { .. })
    ));
    commitment.input[0].witness = funding_witness(&a.funding_pubkey, &sa, &b.funding_pubkey, &sb);
    let commitment_txid = d.accept(commitment.clone()).unwrap();
    d.mine(1, &w.spk, T0);
    assert_eq!(d.confirmations(&commitment_txid), Some(1));

    // The delayed to_local sweep: refused until to_self_delay confirmations.
    let vout = built.output_of(OutputKind::ToLocal).unwrap();
    let input = SweepInput {
        outpoint: OutPoint {
            txid: commitment_txid,
            vout,
        },
        value: commitment.output[vout as usize].value,
        witness_script: built.outputs[vout as usize].1.clone(),
        path: SpendPath::Delayed { to_self_delay },
    };
    let mut sweep = build_sweep(
        std::slice::from_ref(&input),
        w.spk.clone(),
        FeeratePerKw(2500),
        Amount::from_sat(294),
    )
    .unwrap();
    let delayed_key = derive_privkey(&secp, &sk(13), &pcp).unwrap();
    sign_sweep(&secp, &mut sweep, &[input], &[Some(delayed_key)]).unwrap();
    for _ in 1..to_self_delay {
        assert_eq!(
            d.accept(sweep.clone()),
            Err(MempoolError::RelativeLocktime(
                sweep.input[0].previous_output
            ))
        );
        d.mine(1, &w.spk, T0);
    }
    let sweep_txid = d.accept(sweep).unwrap();
    d.mine(1, &w.spk, T0);
    assert_eq!(d.confirmations(&sweep_txid), Some(1));
}

/// A coin created and spent in the same block does not come back when the
/// block is disconnected (it existed only with the block): after a reorg and
/// a replacement of its parent, nothing can spend it.
#[test]
fn reorg_does_not_resurrect_a_coin_created_and_spent_in_one_block() {
    let w = Wallet::new(1);
    let w2 = Wallet::new(2);
    let mut d = funded(&w);
    let coin = coinbase_of(&d, 1);
    let parent = w.pay(
        coin,
        &w2.spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(1000),
    );
    let parent_id = d.accept(parent).unwrap();
    let out = OutPoint {
        txid: parent_id,
        vout: 0,
    };
    let child = w2.pay(
        (out, Amount::from_sat(1_000_000)),
        &Wallet::new(3).spk,
        Amount::from_sat(500_000),
        Amount::from_sat(1000),
    );
    d.accept(child.clone()).unwrap();
    d.mine(1, &w.spk, T0);
    assert!(d.utxo(&out).is_none(), "spent in the block");

    d.disconnect(1);
    assert!(d.utxo(&out).is_none(), "its parent is unconfirmed again");
    // Replace the parent: its outputs are gone for good.
    let conflict = w.pay(
        coin,
        &Wallet::new(4).spk,
        Amount::from_sat(2_000_000),
        Amount::from_sat(50_000),
    );
    d.accept(conflict).unwrap();
    assert!(d.utxo(&out).is_none());
    assert!(d.spendable(&out).is_none());
    assert!(
        d.accept(child).is_err(),
        "spends a coin that no longer exists"
    );
    d.mine(1, &w.spk, T0 + 10);
    assert_eq!(d.confirmations(&parent_id), None);
}

/// Bitcoin Core's relay floor: 1 sat/vB; and a replacement must beat each
/// transaction it conflicts with on feerate, not only on total fee.
#[test]
fn min_relay_fee_and_replacement_feerate() {
    let w = Wallet::new(1);
    let mut d = funded(&w);
    let coin = coinbase_of(&d, 1);
    let cheap = w.pay(
        coin,
        &Wallet::new(2).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(100),
    );
    let vsize = cheap.weight().to_vbytes_ceil();
    assert!((140..=141).contains(&vsize), "{vsize}");
    assert_eq!(
        d.accept(cheap),
        Err(MempoolError::MinRelayFeeNotMet {
            fee: Amount::from_sat(100),
            needed: Amount::from_sat(vsize)
        })
    );
    assert!(d.mempool().is_empty());
    // 10_000 sat on ~141 vB (~71 sat/vB).
    let small = w.pay(
        coin,
        &Wallet::new(2).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(10_000),
    );
    let small_id = d.accept(small).unwrap();
    // Two inputs, 12_000 sat on ~209 vB (~57 sat/vB): more fee, lower rate.
    let coin2 = coinbase_of(&d, 2);
    let total = coin.1 + coin2.1;
    let big = w.spend(
        &[
            (coin.0, coin.1, bitcoin::Sequence::ENABLE_RBF_NO_LOCKTIME),
            (coin2.0, coin2.1, bitcoin::Sequence::ENABLE_RBF_NO_LOCKTIME),
        ],
        vec![TxOut {
            value: total - Amount::from_sat(12_000),
            script_pubkey: Wallet::new(3).spk,
        }],
        0,
    );
    assert_eq!(
        d.accept(big),
        Err(MempoolError::ReplacementFeerateTooLow { conflict: small_id })
    );
    assert_eq!(d.mempool(), vec![small_id]);
}

/// A fee spike: with a block floor of 10 sat/vB (2,500 sat/kW) a
/// transaction paying ~2 sat/vB waits in the mempool block after block,
/// until a child spending it pays enough for both (child pays for parent):
/// then both are mined. One paying more than the floor on its own goes at
/// once; without a floor everything goes.
#[test]
fn a_block_floor_holds_cheap_transactions_until_a_child_pays_for_them() {
    let w = Wallet::new(1);
    let mut d = funded(&w);
    d.set_block_floor(Some(FeeratePerKw(2_500)));
    let coin = coinbase_of(&d, 1);
    // ~141 vB at 300 sat: ~2 sat/vB.
    let parent = w.pay(
        coin,
        &w.spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(300),
    );
    let parent_id = d.accept(parent.clone()).unwrap();
    // Another coin at ~71 sat/vB: above the floor alone.
    let rich = w.pay(
        coinbase_of(&d, 2),
        &Wallet::new(2).spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(10_000),
    );
    let rich_id = d.accept(rich).unwrap();
    d.mine(1, &Wallet::new(9).spk, T0);
    assert_eq!(d.confirmations(&rich_id), Some(1));
    assert_eq!(d.confirmations(&parent_id), Some(0), "still in the mempool");
    d.mine(2, &Wallet::new(9).spk, T0);
    assert_eq!(d.mempool(), vec![parent_id]);
    // The child spends the parent's 1,000,000 sat output paying 3,000 sat:
    // (300 + 3,000) sat on ~251 vB, ~13 sat/vB for the two.
    let child = w.spend(
        &[(
            OutPoint {
                txid: parent_id,
                vout: 0,
            },
            Amount::from_sat(1_000_000),
            Sequence::ENABLE_RBF_NO_LOCKTIME,
        )],
        vec![TxOut {
            value: Amount::from_sat(997_000),
            script_pubkey: Wallet::new(3).spk,
        }],
        0,
    );
    let child_id = d.accept(child).unwrap();
    d.mine(1, &Wallet::new(9).spk, T0);
    assert_eq!(d.confirmations(&parent_id), Some(1));
    assert_eq!(d.confirmations(&child_id), Some(1));
    assert!(d.mempool().is_empty());
    // Without a floor, a cheap one goes at once.
    d.set_block_floor(None);
    let cheap = w.pay(
        coinbase_of(&d, 3),
        &w.spk,
        Amount::from_sat(1_000_000),
        Amount::from_sat(300),
    );
    let cheap_id = d.accept(cheap).unwrap();
    d.mine(1, &Wallet::new(9).spk, T0);
    assert_eq!(d.confirmations(&cheap_id), Some(1));
}
