//! On-chain enforcement (BOLT 5) between two cores: a revoked commitment
//! confirmed on chain is punished with a justice transaction that the
//! devnet's mempool (Bitcoin Core's interpreter) accepts, also when the node
//! restarts between seeing the commitment and punishing it.

use beongae_channel::revocation::LocalSecrets;

use super::channels::spends::ANTI_REORG_DEPTH;

use super::*;

/// B's commitment as B's store held it in `snapshot`, fully signed: what
/// a cheating B broadcasts.
fn b_commitment_in(snapshot: &MemStore, id: ChannelId) -> Transaction {
    stored_channel(snapshot, Side::B, id)
        .signed_local_commitment(&bitcoin::secp256k1::Secp256k1::new())
        .unwrap()
}

/// Sets up a channel where B's store was copied while an HTLC of A's was
/// in B's commitment; the channel then moved on (that state is revoked).
/// Returns the channel, its funding, B's revoked commitment and the copy
/// of B's store it came from.
fn revoked_state() -> (Pair, ChannelId, Transaction, Transaction, MemStore) {
    let mut p = Pair::new();
    let (id, funding) = p.open();
    p.pay(Side::A, 100_000_000);
    // A offers 10_000 sat; B fulfils and goes silent: the HTLC is in both
    // commitments. B's store now is what a cheating B keeps.
    p.pay_then_silence(Side::A);
    let snapshot = p.stores[Side::B as usize].clone();
    p.mute_after = None;
    p.disconnect();
    p.connect();
    assert!(matches!(p.pay(Side::B, 50_000_000), Reply::Paid { .. }));
    let revoked = b_commitment_in(&snapshot, id);
    (p, id, funding, revoked, snapshot)
}

/// BOLT 5 §"Revoked Transaction Close Handling": B broadcasts a commitment
/// it revoked, holding a 10_000 sat HTLC of A's; once it confirms, A takes every
/// output of it but the anchors: B's `to_local`, the HTLC and A's own
/// balance, in one justice transaction the mempool accepts.
#[test]
fn a_revoked_commitment_on_chain_is_punished() {
    let (mut p, _, funding, revoked, _) = revoked_state();
    // The revoked commitment: anchors, the HTLC, B's 200_000 sat (100_000
    // pushed, 100_000 paid) and A's 790_000 sat less the fee (1_124 + 172
    // weight units at 2_500 sat/kw) and anchors it pays as funder.
    let mut values: Vec<u64> = revoked.output.iter().map(|o| o.value.to_sat()).collect();
    values.sort_unstable();
    assert_eq!(
        values,
        vec![330, 330, 10_000, 200_000, 790_000 - 3_240 - 660]
    );
    // It confirms (on the devnet too, where its 1-block CSV outputs then
    // become spendable), and the nodes see the block.
    assert_eq!(p.devnet.accept(revoked.clone()).map(|_| ()), Ok(()));
    p.devnet.mine(1, &coin_script(), 1_700_000_000);
    let since = p.broadcasts.len();
    p.block(vec![revoked.clone()]);
    // Two justice transactions: B's to_local with A's to_remote, and the
    // HTLC (which B could also spend, with its HTLC-success) alone.
    let justice = p.claims_on(Side::A, since, &revoked);
    let inputs: Vec<usize> = justice.iter().map(|t| t.input.len()).collect();
    assert_eq!(inputs, vec![2, 1]);
    let value_of = |tx: &Transaction| -> u64 {
        tx.input
            .iter()
            .map(|i| {
                revoked.output[i.previous_output.vout as usize]
                    .value
                    .to_sat()
            })
            .sum()
    };
    assert_eq!(value_of(&justice[1]), 10_000);
    let mut taken = 0;
    for tx in &justice {
        let fee = value_of(tx) - tx.output[0].value.to_sat();
        assert_fee_at(fee, tx, 2_500);
        assert_eq!(tx.output[0].script_pubkey, settings().close_script.unwrap());
        assert!(p.accepted(tx), "the devnet mempool accepts {tx:?}");
        taken += value_of(tx);
    }
    assert_eq!(taken, 10_000 + 200_000 + 790_000 - 3_240 - 660);
    assert_eq!(p.channel(Side::A).state, ChannelState::Closed);
    // Broadcast again at every block until they confirm.
    assert_eq!(p.core(Side::A).pending_broadcasts(), justice);
    p.block(justice);
    assert!(p.core(Side::A).pending_broadcasts().is_empty());
    assert!(!p.broadcasts[since..]
        .iter()
        .any(|(s, t)| *s == Side::A && spends_output(t, &funding)));
}

/// Killed after the revoked commitment was seen and before the justice
/// transaction: the restart punishes it, once.
#[test]
fn a_restart_between_seeing_a_revoked_commitment_and_punishing_it() {
    let (mut p, _, _, revoked, _) = revoked_state();
    p.devnet.accept(revoked.clone()).unwrap();
    p.devnet.mine(1, &coin_script(), 1_700_000_000);
    p.drop_loads = true;
    let since = p.broadcasts.len();
    p.block(vec![revoked.clone()]);
    assert!(p.a_broadcasts(since).is_empty(), "no justice yet");
    p.drop_loads = false;
    p.restart(Side::A);
    let justice = p.claims_on(Side::A, since, &revoked);
    assert_eq!(justice.len(), 2);
    assert!(justice.iter().all(|t| p.accepted(t)));
    // A second restart does not punish twice (the same ones go out again).
    p.restart(Side::A);
    let all = p.claims_on(Side::A, since, &revoked);
    assert!(all.iter().all(|t| justice.contains(t)), "{all:?}");
}

/// B, restored from an old copy of its store, broadcast a commitment it
/// had revoked, while a payment of its own was in flight over the channel
/// and not in that commitment (sim seed 11328: there a forward, whose
/// upstream waited until its own channel went to chain). B reads the
/// commitment as its own (not as a revoked one of A's, which it cannot
/// punish) and fails the payment once the commitment is
/// `ANTI_REORG_DEPTH` blocks deep (BOLT 5: "MUST fail the corresponding
/// incoming HTLC (if any)"); A punishes it.
#[test]
fn a_payment_not_in_our_old_commitment_fails_once_it_is_buried() {
    let (mut p, _, _, revoked, _) = revoked_state();
    // B pays A 20_000 sat; A fulfils but its update_fulfill_htlc is lost.
    p.pay_then_silence_of(Side::B, 20_000_000);
    assert_eq!(p.payment_status(Side::B), vec!["pending", "succeeded"]);
    let since = p.revoked_confirms(&revoked);
    let justice = p.claims_on(Side::A, since, &revoked);
    assert_eq!(justice.len(), 2);
    // B claims nothing of it.
    assert!(p.claims_on(Side::B, since, &revoked).is_empty());
    for _ in 0..ANTI_REORG_DEPTH - 2 {
        p.block(vec![]);
    }
    assert_eq!(
        p.payment_status(Side::B),
        vec!["pending on chain", "succeeded"]
    );
    p.block(vec![]);
    assert_eq!(
        p.payment_status(Side::B),
        vec![
            "failed: our old commitment went on chain without the htlc",
            "succeeded"
        ]
    );
}

fn spends_output(tx: &Transaction, funding: &Transaction) -> bool {
    tx.input
        .iter()
        .any(|i| i.previous_output.txid == funding.compute_txid())
}

impl Pair {
    /// B's revoked commitment confirms (on the devnet too, so that its
    /// relative locktimes count there); returns the broadcast count before.
    fn revoked_confirms(&mut self, revoked: &Transaction) -> usize {
        self.devnet.accept(revoked.clone()).unwrap();
        self.devnet.mine(1, &coin_script(), 1_700_000_000);
        let since = self.broadcasts.len();
        self.block(vec![revoked.clone()]);
        since
    }

    /// A block on the devnet too (so relative locktimes count there), with
    /// `txs`, to both nodes.
    pub(super) fn block_both(&mut self, txs: Vec<Transaction>) {
        for tx in &txs {
            let _ = self.devnet.accept(tx.clone());
        }
        self.devnet.mine(1, &coin_script(), 1_700_000_000);
        self.block(txs);
    }

    /// `side`'s broadcasts from `since` on that spend an output of `tx`,
    /// each once (in the order first broadcast).
    pub(super) fn claims_on(&self, side: Side, since: usize, tx: &Transaction) -> Vec<Transaction> {
        let mut v: Vec<Transaction> = Vec::new();
        for (s, t) in &self.broadcasts[since..] {
            if *s == side
                && t.input
                    .iter()
                    .any(|i| i.previous_output.txid == tx.compute_txid())
                && !v.contains(t)
            {
                v.push(t.clone());
            }
        }
        v
    }

    pub(super) fn accepted(&self, tx: &Transaction) -> bool {
        self.mempool
            .iter()
            .any(|(t, r)| *t == tx.compute_txid() && r.is_ok())
    }
}

/// BOLT 5 §"Unilateral Close Handling": A forces the channel closed. Once
/// its commitment confirms, B sweeps its `to_remote` to its wallet at once
/// (one block of CSV with anchors), and A sweeps its `to_local` exactly
/// `to_self_delay` blocks later, not one block earlier; each sweep is
/// accepted by the devnet's mempool and pays the whole output less its fee.
#[test]
fn a_force_close_sweeps_both_sides_to_their_wallets() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    p.pay(Side::A, 100_000_000);
    let commitment = p.force_close(Side::A, id);
    // Until it confirms, A's balance is on its way back.
    assert_eq!(p.channel(Side::A).closing, Amount::from_sat(800_000));
    let since = p.broadcasts.len();
    p.block_both(vec![commitment.clone()]);
    let confirmed = p.height;
    // Then: its to_local, spendable 144 blocks later; B's sweep, pending.
    assert_eq!(
        (p.channel(Side::A).closing, p.channel(Side::A).spendable_at),
        (
            Amount::from_sat(800_000 - 2_810 - 660),
            Some(confirmed + 144)
        )
    );
    let out = |tx: &Transaction, script: &ScriptBuf| {
        let o = tx
            .output
            .iter()
            .find(|o| o.script_pubkey == *script)
            .unwrap();
        o.value.to_sat()
    };
    // B: its 200_000 sat, swept at once.
    let b = p.claims_on(Side::B, since, &commitment);
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(p.accepted(&b[0]), "B's sweep in the mempool");
    let b_fee = 200_000 - out(&b[0], &settings().close_script.unwrap());
    assert_fee_at(b_fee, &b[0], 2_500);
    // A: its 800_000 sat less the commitment fee and anchors, after 144
    // blocks.
    let delay = ChannelSettings::default().config.to_self_delay;
    while p.height + 1 < confirmed + u32::from(delay) {
        assert!(
            p.claims_on(Side::A, since, &commitment).is_empty(),
            "too early at {}",
            p.height
        );
        p.block_both(vec![]);
    }
    let a = p.claims_on(Side::A, since, &commitment);
    assert_eq!(a.len(), 1, "A sweeps at {}", p.height);
    assert_eq!(p.height + 1, confirmed + u32::from(delay));
    assert!(
        p.accepted(&a[0]),
        "A's sweep in the mempool: {:?}",
        p.mempool.last()
    );
    let a_value = commitment
        .output
        .iter()
        .find(|o| o.value.to_sat() == 800_000 - 2_810 - 660)
        .map(|o| o.value.to_sat());
    assert_eq!(a_value, Some(796_530));
    let a_fee = 796_530 - out(&a[0], &settings().close_script.unwrap());
    assert_fee_at(a_fee, &a[0], 2_500);
    assert_eq!(p.channel(Side::A).closing, a[0].output[0].value);
    assert_eq!(p.channel(Side::B).closing, b[0].output[0].value);
    // Both confirm: nothing left to broadcast, nothing on the way.
    p.block_both(vec![a[0].clone(), b[0].clone()]);
    let swept = p.height;
    for side in [Side::A, Side::B] {
        assert!(p.core(side).pending_broadcasts().is_empty(), "{side:?}");
        assert_eq!(p.channel(side).closing, Amount::ZERO, "{side:?}");
    }
    // The state the resolution needed is kept until the last sweep is
    // buried 100 blocks (beyond any reorg followed), then dropped.
    while p.height < swept + 99 {
        p.block(vec![]);
    }
    assert!(p.kept_state(Side::A, id).is_some());
    assert!(p.kept_state(Side::B, id).is_some());
    p.block(vec![]);
    assert!(p.kept_state(Side::A, id).is_none());
    assert!(p.kept_state(Side::B, id).is_none());
    // A reorganisation deeper than that (to before the commitment's
    // block) finds no state to claim with (an error is logged), but loses
    // nothing: the commitment and both sweeps, kept (only the state and the
    // HTLC records were dropped), go out again, and A shows its balance on
    // its way back until they confirm again.
    while p.height >= confirmed {
        p.unblock();
    }
    assert_eq!(p.channel(Side::A).closing, Amount::from_sat(800_000));
    assert_eq!(
        p.core(Side::A).pending_broadcasts(),
        vec![commitment.clone(), a[0].clone()]
    );
    // B sends A's commitment again too, its sweep's parent.
    assert_eq!(
        p.core(Side::B).pending_broadcasts(),
        vec![commitment.clone(), b[0].clone()]
    );
    p.block_both(vec![commitment, a[0].clone(), b[0].clone()]);
    for side in [Side::A, Side::B] {
        assert!(p.core(side).pending_broadcasts().is_empty(), "{side:?}");
        assert_eq!(p.channel(side).closing, Amount::ZERO, "{side:?}");
        assert_eq!(p.channel(side).state, ChannelState::Closed, "{side:?}");
    }
}

/// B's signed HTLC-success for the one HTLC of its commitment in
/// `snapshot`, with the preimage it revealed: the second stage a cheater
/// races the justice transaction with.
fn b_htlc_success(p: &Pair, snapshot: &MemStore, id: ChannelId) -> Transaction {
    use beongae_channel::sign::Owner;
    use beongae_script::htlc_tx::{htlc_tx_witness, remote_htlc_sighash};
    use beongae_script::scripts::{received_htlc_script, HtlcKeys};
    use bitcoin::sighash::{EcdsaSighashType, SighashCache};
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let k = keys(2).channel(0);
    let chan = stored_channel(snapshot, Side::B, id);
    let n = chan.local_number;
    let point = LocalSecrets::new(k.commitment_seed).point(&secp, n);
    let built = chan
        .funded
        .build(&secp, Owner::Local, &chan.commitments.local, n, &point)
        .unwrap();
    let (vout, h) = built.commitment.htlcs_in_output_order().next().unwrap();
    let htlc = &built.htlcs[h];
    assert!(!htlc.offered, "A's HTLC, received by B");
    let preimage = p
        .sent
        .iter()
        .find_map(|(s, m)| match m {
            Message::UpdateFulfillHtlc(f)
                if *s == Side::B
                    && beongae_wire::Preimage(f.payment_preimage).payment_hash()
                        == htlc.payment_hash =>
            {
                Some(beongae_wire::Preimage(f.payment_preimage))
            }
            _ => None,
        })
        .unwrap();
    let script = received_htlc_script(
        HtlcKeys {
            revocation_key: &built.keys.revocation_key,
            local_htlc_key: &built.keys.local_htlc_key,
            remote_htlc_key: &built.keys.remote_htlc_key,
        },
        &htlc.payment_hash,
        htlc.cltv_expiry,
        chan.funded.channel_type,
    );
    let value = built.commitment.tx.output[vout as usize].value;
    let mut tx = built.htlc_txs[0].clone();
    let sighash = SighashCache::new(&tx)
        .p2wsh_signature_hash(0, &script, value, EcdsaSighashType::All)
        .unwrap();
    let key = beongae_script::keys::derive_privkey(&secp, &k.htlc_base, &point).unwrap();
    let local = bitcoin::ecdsa::Signature {
        signature: secp.sign_ecdsa(&bitcoin::secp256k1::Message::from(sighash), &key),
        sighash_type: EcdsaSighashType::All,
    };
    let remote = bitcoin::ecdsa::Signature {
        signature: chan.local_signatures.htlc_signatures[0],
        sighash_type: remote_htlc_sighash(chan.funded.channel_type),
    };
    tx.input[0].witness = htlc_tx_witness(&remote, &local, Some(&preimage), &script);
    tx
}

/// The cheater races: after its revoked commitment confirms, its own
/// HTLC-success (with the preimage) takes the HTLC output before A's
/// justice does. A drops its claim on that output and takes the
/// HTLC-success transaction's output with the revocation key instead (BOLT
/// 5), before the cheater's delay; its other justice transaction was never
/// held back by the race.
#[test]
fn the_cheaters_second_stage_is_taken_too() {
    let (mut p, id, _, revoked, snapshot) = revoked_state();
    let since = p.revoked_confirms(&revoked);
    let justice = p.claims_on(Side::A, since, &revoked);
    assert_eq!(justice.len(), 2);
    // B's HTLC-success wins the HTLC output (valid under the interpreter).
    let success = b_htlc_success(&p, &snapshot, id);
    let spent = &revoked.output[success.input[0].previous_output.vout as usize];
    spent
        .script_pubkey
        .verify(0, spent.value, &bitcoin::consensus::serialize(&success))
        .unwrap();
    assert_eq!(
        justice[1].input[0].previous_output,
        success.input[0].previous_output
    );
    let since = p.broadcasts.len();
    p.block(vec![success.clone()]);
    // A's claim on the lost output is dropped; the rest stays; the second
    // stage is claimed.
    let second = p.claims_on(Side::A, since, &success);
    assert_eq!(second.len(), 1, "{second:?}");
    let out = &success.output[0];
    out.script_pubkey
        .verify(0, out.value, &bitcoin::consensus::serialize(&second[0]))
        .unwrap();
    // Zero-fee HTLC transaction (anchors): the whole 10_000 sat, less A's fee.
    assert_eq!(out.value, Amount::from_sat(10_000));
    let fee = 10_000 - second[0].output[0].value.to_sat();
    assert_fee_at(fee, &second[0], 2_500);
    let pending = p.core(Side::A).pending_broadcasts();
    assert!(pending.contains(&justice[0]));
    assert!(
        !pending.contains(&justice[1]),
        "the lost claim is not sent again"
    );
    assert!(pending.contains(&second[0]));
    // After a restart (the cheater's transaction is kept with the claim), a
    // fee spike: the second-stage claim is signed again at the new
    // feerate, the same output, under the interpreter; the old one is not
    // sent again.
    p.restart(Side::A);
    p.run(vec![(
        Side::A,
        Input::FeerateEstimate(FeeratePerKw(10_000)),
    )]);
    let all = p.claims_on(Side::A, since, &success);
    let bumped = all.last().unwrap();
    assert_ne!(bumped, &second[0]);
    assert_eq!(
        bumped.input[0].previous_output,
        second[0].input[0].previous_output
    );
    out.script_pubkey
        .verify(0, out.value, &bitcoin::consensus::serialize(bumped))
        .unwrap();
    assert_fee_at(10_000 - bumped.output[0].value.to_sat(), bumped, 10_000);
    let pending = p.core(Side::A).pending_broadcasts();
    assert!(pending.contains(bumped) && !pending.contains(&second[0]));
}

/// A channel forced closed before `channel_ready` (commitment 0): B's
/// pushed 100_000 sat are swept to its wallet at once and A's balance after
/// its delay, like any commitment.
#[test]
fn a_channel_forced_before_channel_ready_is_swept_too() {
    let mut p = Pair::new();
    let (id, funding) = p.start_open(Msat::from_msat(100_000_000));
    p.block_both(vec![funding]);
    assert_eq!(p.channel(Side::A).state, ChannelState::AwaitingConfirmation);
    let commitment = p.force_close(Side::A, id);
    let since = p.broadcasts.len();
    p.block_both(vec![commitment.clone()]);
    let b = p.claims_on(Side::B, since, &commitment);
    assert_eq!(b.len(), 1);
    assert!(p.accepted(&b[0]));
    assert_eq!(
        commitment.output[b[0].input[0].previous_output.vout as usize].value,
        Amount::from_sat(100_000)
    );
    for _ in 0..143 {
        p.block_both(vec![]);
    }
    let a = p.claims_on(Side::A, since, &commitment);
    assert_eq!(a.len(), 1);
    assert!(p.accepted(&a[0]));
    assert_eq!(
        commitment.output[a[0].input[0].previous_output.vout as usize].value,
        Amount::from_sat(900_000 - 2_810 - 660)
    );
}

/// B's `to_remote` of 1_500 sat at a fee estimate under which its claim
/// would cost more than that (found by the simulator, seeds 333, 987,
/// 3124 and 6388: such an output stayed "closing" for ever): it is swept
/// at the feerate it can bear, its output at least the dust limit.
#[test]
fn a_small_output_is_swept_at_the_feerate_it_can_bear() {
    let mut p = Pair::new();
    let (_, funding) = p.start_open(Msat::from_msat(1_500_000));
    p.block_both(vec![funding]);
    let id = p.channel(Side::A).channel_id;
    p.run(vec![(
        Side::B,
        Input::FeerateEstimate(FeeratePerKw(10_000)),
    )]);
    let commitment = p.force_close(Side::A, id);
    let since = p.broadcasts.len();
    p.block_both(vec![commitment.clone()]);
    let b = p.claims_on(Side::B, since, &commitment);
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(p.accepted(&b[0]), "{:?}", p.mempool.last());
    let input = b[0].input[0].previous_output;
    assert_eq!(
        commitment.output[input.vout as usize].value,
        Amount::from_sat(1_500)
    );
    let fee = 1_500 - b[0].output[0].value.to_sat();
    // All but the dust limit (294 sat for P2WPKH), the feerate rounded down.
    assert!(
        (294..=300).contains(&b[0].output[0].value.to_sat()),
        "fee {fee}"
    );
    assert!(
        fee < FeeratePerKw(10_000)
            .fee_for_weight(b[0].weight().to_wu())
            .to_sat()
    );
}

/// A new node that stores something before its first block (here an
/// invoice) stores the block it started at with its height, and a restart
/// resumes from that block: nothing is disconnected. (Found by the gossip
/// test: a new node that had learnt the graph and restarted before the
/// next block went a hundred blocks down, as after a deep reorganisation,
/// and forgot every channel announced in them.)
#[test]
fn a_new_node_restarted_before_its_first_block_resumes_from_its_start_block() {
    use crate::follow::ChainFollower;
    use beongae_chain::ChainSource;
    use std::sync::Mutex;
    let chain = Mutex::new(Devnet::new());
    let coinbase = bitcoin::ScriptBuf::new_op_return([1u8; 1]);
    chain.lock().unwrap().mine(150, &coinbase, 1_700_000_000);
    let start = chain.tip().unwrap();
    assert_eq!(start.0, 150);
    let id = node_id_of(&keys(1));
    let mut store = MemStore::default();
    let mut core = restore_core(keys(1), id, &store, 150);
    let mut follower = ChainFollower::start_for(&mut core, &chain, 150).unwrap();
    assert_eq!((follower.tip(), core.recent_blocks()), (150, vec![start]));
    assert_eq!(core.followed_height(), None);
    let out = core.handle(
        Duration::from_secs(1_700_000_000),
        Input::Command {
            id: CommandId(1),
            command: Command::CreateInvoice {
                amount: Some(Msat::from_msat(1_000)),
                description: "t".into(),
                expiry_secs: 3600,
                now_secs: 1_700_000_000,
            },
        },
    );
    for o in out {
        if let Output::Persist(batch) = o {
            batch.apply_to(&mut store);
        }
    }
    assert!(follower.poll(&chain).unwrap().is_empty());
    // The restart, before any block.
    let mut core = restore_core(keys(1), id, &store, 150);
    assert_eq!(
        (core.followed_height(), core.recent_blocks()),
        (Some(150), vec![start])
    );
    let mut follower = ChainFollower::start_for(&mut core, &chain, 150).unwrap();
    assert_eq!(follower.tip(), 150);
    assert!(follower.poll(&chain).unwrap().is_empty());
    chain.lock().unwrap().mine(1, &coinbase, 1_700_000_600);
    let inputs = follower.poll(&chain).unwrap();
    assert!(
        matches!(
            inputs[..],
            [
                Input::ChainTip { height: 151 },
                Input::BlockConnected { height: 151, .. }
            ]
        ),
        "{inputs:?}"
    );
    // Restarted again after a reorganisation replaced its start block (it
    // never took block 151; SAFETY.md: restarted during a reorg): three
    // polls fail, then it goes a hundred blocks down and takes the new
    // blocks from there, the new 150 too.
    chain.lock().unwrap().disconnect(2);
    let other = bitcoin::ScriptBuf::new_op_return([2u8; 1]);
    chain.lock().unwrap().mine(3, &other, 1_700_000_000);
    let mut core = restore_core(keys(1), id, &store, 152);
    let mut follower = ChainFollower::start_for(&mut core, &chain, 152).unwrap();
    assert!(follower.poll(&chain).is_err());
    assert!(follower.poll(&chain).is_err());
    let heights = |inputs: &[Input], disconnected: bool| -> Vec<u32> {
        inputs
            .iter()
            .filter_map(|i| match i {
                Input::BlockDisconnected { height } if disconnected => Some(*height),
                Input::BlockConnected { height, .. } if !disconnected => Some(*height),
                _ => None,
            })
            .collect()
    };
    let undo = follower.poll(&chain).unwrap();
    assert_eq!(heights(&undo, true), (51..=150).rev().collect::<Vec<u32>>());
    let redo = follower.poll(&chain).unwrap();
    assert_eq!(heights(&redo, false), (51..=152).collect::<Vec<u32>>());
}

/// Both sides forced the channel closed; B's commitment confirms first (A
/// claims its to_remote in it), then a reorg puts A's own commitment in its
/// place: the claim on B's is dropped and A's to_local is swept after its
/// delay.
#[test]
fn a_reorg_that_swaps_the_commitment_swaps_the_claims() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    // The blocks seen are stored by hash (where following the chain
    // resumes after a restart), and a disconnected one is forgotten.
    let seen = p.core(Side::A).recent_blocks();
    assert_eq!(seen.last().map(|(h, _)| *h), Some(p.height));
    assert!(seen.windows(2).all(|w| w[0].0 + 1 == w[1].0));
    p.restart(Side::A);
    assert_eq!(p.core(Side::A).recent_blocks(), seen);
    let ca = p.force_close(Side::A, id);
    let cb = p.force_close(Side::B, id);
    let since = p.broadcasts.len();
    p.block(vec![cb.clone()]);
    let on_b = p.claims_on(Side::A, since, &cb);
    assert_eq!(on_b.len(), 1, "A's to_remote in B's commitment");
    assert_eq!(p.core(Side::A).pending_broadcasts(), on_b);
    p.unblock();
    let after = p.core(Side::A).recent_blocks();
    assert_eq!(after.last().map(|(h, _)| *h), Some(p.height));
    let since = p.broadcasts.len();
    p.block(vec![ca.clone()]);
    let confirmed = p.height;
    assert!(
        !p.core(Side::A).pending_broadcasts().contains(&on_b[0]),
        "the claim on the reorged commitment is dropped"
    );
    while p.height + 1 < confirmed + 144 {
        assert!(p.claims_on(Side::A, since, &ca).is_empty());
        p.block(vec![]);
    }
    let a = p.claims_on(Side::A, since, &ca);
    assert_eq!(a.len(), 1, "A's to_local after its delay");
    assert_eq!(
        ca.output[a[0].input[0].previous_output.vout as usize].value,
        Amount::from_sat(900_000 - 2_810 - 660)
    );
}

/// A fee spike while the justice transactions wait to confirm: each is
/// made again at the new target, spending the same outputs (read back from
/// its own witnesses, without the store), and the devnet's mempool takes
/// the replacements; the first ones are not sent again.
#[test]
fn justice_is_fee_bumped_in_a_spike() {
    let (mut p, _, _, revoked, _) = revoked_state();
    let since = p.revoked_confirms(&revoked);
    let justice = p.claims_on(Side::A, since, &revoked);
    assert_eq!(justice.len(), 2);
    assert!(justice.iter().all(|t| p.accepted(t)));
    p.run(vec![(
        Side::A,
        Input::FeerateEstimate(FeeratePerKw(10_000)),
    )]);
    let all = p.claims_on(Side::A, since, &revoked);
    assert_eq!(all.len(), 4, "{all:?}");
    for (old, new) in justice.iter().zip(&all[2..]) {
        let ins = |t: &Transaction| {
            t.input
                .iter()
                .map(|i| i.previous_output)
                .collect::<Vec<_>>()
        };
        assert_eq!(ins(old), ins(new));
        assert!(new.output[0].value < old.output[0].value);
        let value: u64 = new
            .input
            .iter()
            .map(|i| {
                revoked.output[i.previous_output.vout as usize]
                    .value
                    .to_sat()
            })
            .sum();
        let fee = value - new.output[0].value.to_sat();
        assert_fee_at(fee, new, 10_000);
        assert!(p.accepted(new), "{:?}", p.mempool.last());
    }
    let pending = p.core(Side::A).pending_broadcasts();
    assert!(pending.contains(&all[2]) && pending.contains(&all[3]));
    assert!(!pending.contains(&justice[0]) && !pending.contains(&justice[1]));
}
