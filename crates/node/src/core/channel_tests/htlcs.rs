//! BOLT 5 HTLC outputs of unrevoked commitments between two cores, every
//! transaction offered to the devnet's mempool (Bitcoin Core's
//! interpreter): HTLC-timeout and HTLC-success on our commitment (with a
//! wallet input paying the fee of an anchor channel's zero-fee HTLC
//! transaction), their delayed outputs swept after `to_self_delay`, claims
//! on the peer's commitment after expiry or with the preimage, preimages
//! learned from the peer's spends settling our payments, and payments
//! failed only once their timeout is buried.

use super::*;

/// A pays B 10_000 sat, B cannot read the onion (changed on the way) and
/// fails the HTLC, but its failure is lost: the HTLC stays in both
/// commitments and B never learns its preimage. Returns its `cltv_expiry`
/// and `payment_hash`.
fn stuck_htlc(p: &mut Pair) -> (u32, PaymentHash) {
    stuck_htlc_of(p, 10_000_000)
}

/// [`stuck_htlc`] of `msat`.
fn stuck_htlc_of(p: &mut Pair, msat: u64) -> (u32, PaymentHash) {
    p.tamper = Some(|side, m| {
        if let (Side::A, Message::UpdateAddHtlc(add)) = (side, m) {
            add.onion_routing_packet.0[10] ^= 1;
        }
    });
    p.mute_after = Some((Side::B, "UpdateFailMalformedHtlc"));
    p.start_pay(Side::A, msat);
    assert!(
        p.sent
            .iter()
            .any(|(s, m)| *s == Side::B && m.name() == "UpdateFailMalformedHtlc"),
        "B refused the HTLC"
    );
    p.tamper = None;
    added_by_a(p)
}

/// The `cltv_expiry` and `payment_hash` of A's (last) `update_add_htlc`.
fn added_by_a(p: &Pair) -> (u32, PaymentHash) {
    p.sent
        .iter()
        .rev()
        .find_map(|(s, m)| match m {
            Message::UpdateAddHtlc(a) if *s == Side::A => {
                Some((a.cltv_expiry, PaymentHash(a.payment_hash)))
            }
            _ => None,
        })
        .expect("A's update_add_htlc")
}

/// The status `payments` reports for A's payment `hash`.
fn a_payment(p: &mut Pair, hash: PaymentHash) -> String {
    let Reply::Payments(all) = p.command(Side::A, Command::ListPayments) else {
        panic!("payments")
    };
    all.into_iter()
        .find(|s| s.payment_hash == hash && !s.incoming)
        .expect("the payment")
        .status
}

/// The output of `tx` worth `sat`.
fn vout_of(tx: &Transaction, sat: u64) -> u32 {
    tx.output
        .iter()
        .position(|o| o.value == Amount::from_sat(sat))
        .expect("an output of that value") as u32
}

fn static_remotekey_pair() -> Pair {
    let mut b_config = CoreConfig::new(ChainHash::REGTEST);
    b_config
        .features
        .clear(beongae_wire::Feature::Anchors.odd_bit());
    Pair::with_b_config(b_config)
}

/// BOLT 5 §"Unilateral Close Handling: Local Commitment Transaction": A's
/// commitment confirms with an HTLC A offered and B never settled. A
/// times it out with its HTLC-timeout transaction once the HTLC expired,
/// not before; the payment fails only once that is buried 6 blocks; and
/// the HTLC-timeout's output comes back to A's wallet `to_self_delay`
/// blocks after it confirmed.
fn htlc_timeout_on_our_commitment(mut p: Pair, anchors: bool) {
    let (id, _) = p.open();
    // The wallet keeps 10_000 sat for an anchor channel's force close.
    let reserve = if anchors { 10_000 } else { 0 };
    assert_eq!(p.fee_reserve(Side::A), reserve);
    let (expiry, hash) = stuck_htlc(&mut p);
    let commitment = p.force_close(Side::A, id);
    let htlc_vout = vout_of(&commitment, 10_000);
    let unresolved = vec![channels::UnresolvedHtlc {
        we_offered: true,
        amount: Msat::from_msat(10_000_000),
        cltv_expiry: expiry,
        claimable: true,
    }];
    assert_eq!(p.channel(Side::A).unresolved_htlcs, unresolved);
    p.block_both(vec![commitment.clone()]);
    let committed = p.height;
    // Still while the HTLC output is unresolved (its HTLC-timeout needs
    // the wallet's coins with anchors).
    assert_eq!(p.fee_reserve(Side::A), reserve);
    // On its way back: A's to_local (after 144 blocks) and the HTLC.
    let to_local = commitment.output.iter().map(|o| o.value).max().unwrap();
    let a = p.channel(Side::A);
    assert_eq!(
        (a.closing, a.spendable_at, a.unresolved_htlcs),
        (
            to_local + Amount::from_sat(10_000),
            Some(committed + 144),
            unresolved
        )
    );
    let since = p.broadcasts.len();
    while p.height < expiry {
        assert!(
            p.claims_on(Side::A, since, &commitment).is_empty(),
            "nothing of A's before the expiry (height {})",
            p.height
        );
        p.block_both(vec![]);
    }
    let timeout = p.claims_on(Side::A, since, &commitment);
    assert_eq!(timeout.len(), 1, "{timeout:?}");
    let timeout = timeout[0].clone();
    assert_eq!(timeout.input[0].previous_output.vout, htlc_vout);
    assert_eq!(timeout.lock_time.to_consensus_u32(), expiry);
    assert!(p.accepted(&timeout), "{:?}", p.mempool.last());
    let htlc_value = if anchors {
        // Zero fee: the whole HTLC, the fee paid by a wallet input (and
        // its change after) at the node's 2_500 sat/kW.
        assert_eq!(timeout.input.len(), 2);
        assert_eq!(timeout.output.len(), 2);
        10_000
    } else {
        // The fee from the HTLC: 663 weight at the commitment's 2_500
        // sat/kW, signed by both with SIGHASH_ALL.
        assert_eq!(timeout.input.len(), 1);
        10_000 - 1_657
    };
    assert_eq!(timeout.output[0].value, Amount::from_sat(htlc_value));
    assert_eq!(a_payment(&mut p, hash), "pending on chain");
    // The HTLC is resolved once its timeout is out; its output is on the way.
    let a = p.channel(Side::A);
    assert!(a.unresolved_htlcs.is_empty());
    assert_eq!(a.closing, to_local + Amount::from_sat(htlc_value));
    assert_eq!(p.fee_reserve(Side::A), 0);
    // Buried 6 blocks: the payment fails (not one block sooner).
    p.block_both(vec![timeout.clone()]);
    let confirmed = p.height;
    for _ in 0..4 {
        p.block_both(vec![]);
        assert_eq!(a_payment(&mut p, hash), "pending on chain");
    }
    p.block_both(vec![]);
    assert_eq!(
        a_payment(&mut p, hash),
        "failed: the htlc timed out on chain"
    );
    // Its output, A's delayed output, after 144 blocks.
    let since = p.broadcasts.len();
    while p.height + 2 < confirmed + 144 {
        assert!(p.claims_on(Side::A, since, &timeout).is_empty());
        p.block_both(vec![]);
    }
    // A's to_local, older, is swept by now (its sweep not mined here).
    let to_local_sweep = p
        .claims_on(Side::A, 0, &commitment)
        .into_iter()
        .find(|t| *t != timeout)
        .expect("A's to_local sweep");
    let a = p.channel(Side::A);
    assert_eq!(
        (a.spendable_at, a.closing),
        (
            Some(confirmed + 144),
            Amount::from_sat(htlc_value) + to_local_sweep.output[0].value
        )
    );
    assert!(p.claims_on(Side::A, since, &timeout).is_empty());
    p.block_both(vec![]);
    let sweep = p.claims_on(Side::A, since, &timeout);
    assert_eq!(sweep.len(), 1, "{sweep:?}");
    assert_eq!(sweep[0].input.len(), 1);
    assert!(p.accepted(&sweep[0]), "{:?}", p.mempool.last());
    let fee = htlc_value - sweep[0].output[0].value.to_sat();
    assert_fee_at(fee, &sweep[0], 2_500);
}

#[test]
fn an_htlc_timeout_on_our_anchors_commitment_pays_its_fee_from_the_wallet() {
    htlc_timeout_on_our_commitment(Pair::new(), true);
}

#[test]
fn an_htlc_timeout_on_our_static_remotekey_commitment() {
    htlc_timeout_on_our_commitment(static_remotekey_pair(), false);
}

/// BOLT 5 §"Unilateral Close Handling: Remote Commitment Transaction": B's
/// commitment confirms with an HTLC A offered and B never settled. A
/// claims it straight to its wallet once it expired (not before), and the
/// payment fails once that is buried.
#[test]
fn our_htlc_on_the_peers_commitment_comes_back_after_expiry() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    let (expiry, hash) = stuck_htlc(&mut p);
    let commitment = p.force_close(Side::B, id);
    let htlc_vout = vout_of(&commitment, 10_000);
    let since = p.broadcasts.len();
    p.block_both(vec![commitment.clone()]);
    // A's to_remote at once; the HTLC not before its expiry.
    let first = p.claims_on(Side::A, since, &commitment);
    assert_eq!(first.len(), 1);
    assert!(first[0]
        .input
        .iter()
        .all(|i| i.previous_output.vout != htlc_vout));
    while p.height < expiry {
        assert_eq!(p.claims_on(Side::A, since, &commitment).len(), 1);
        p.block_both(vec![]);
    }
    let claims = p.claims_on(Side::A, since, &commitment);
    assert_eq!(claims.len(), 2, "{claims:?}");
    let back = &claims[1];
    assert_eq!(back.input.len(), 1);
    assert_eq!(back.input[0].previous_output.vout, htlc_vout);
    assert_eq!(back.lock_time.to_consensus_u32(), expiry);
    assert!(p.accepted(back), "{:?}", p.mempool.last());
    let fee = 10_000 - back.output[0].value.to_sat();
    assert_fee_at(fee, back, 2_500);
    p.block_both(vec![first[0].clone(), back.clone()]);
    for _ in 0..4 {
        p.block_both(vec![]);
    }
    assert_eq!(a_payment(&mut p, hash), "pending on chain");
    p.block_both(vec![]);
    assert_eq!(
        a_payment(&mut p, hash),
        "failed: the htlc timed out on chain"
    );
}

/// B fulfilled A's HTLC but the fulfil was lost, and A forces the channel
/// closed: B claims the HTLC on A's commitment with the preimage (at once,
/// to its wallet), A reads the preimage from B's spend and its payment
/// succeeds, and A never tries to time that output out.
#[test]
fn the_peers_preimage_claim_on_our_commitment_settles_our_payment() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    let expiry = p.pay_then_silence(Side::A);
    let (_, hash) = added_by_a(&p);
    let commitment = p.force_close(Side::A, id);
    let htlc_vout = vout_of(&commitment, 10_000);
    let since = p.broadcasts.len();
    p.block_both(vec![commitment.clone()]);
    let b = p.claims_on(Side::B, since, &commitment);
    assert_eq!(b.len(), 2, "B's to_remote and the HTLC: {b:?}");
    let claim = b
        .iter()
        .find(|t| t.input[0].previous_output.vout == htlc_vout)
        .expect("B's claim on the HTLC")
        .clone();
    assert!(p.accepted(&claim), "{:?}", p.mempool.last());
    assert_eq!(claim.lock_time.to_consensus_u32(), 0);
    assert_eq!(a_payment(&mut p, hash), "pending on chain");
    p.block_both(vec![claim]);
    assert_eq!(a_payment(&mut p, hash), "succeeded");
    let since = p.broadcasts.len();
    while p.height <= expiry + 1 {
        p.block_both(vec![]);
    }
    assert!(
        !p.broadcasts[since..].iter().any(|(s, t)| *s == Side::A
            && t.input.iter().any(|i| i.previous_output.vout == htlc_vout
                && i.previous_output.txid == commitment.compute_txid())),
        "A does not claim an output B took"
    );
}

/// B fulfilled A's HTLC but the fulfil was lost, and B forces the channel
/// closed: B's HTLC-success transaction (its fee from B's wallet) takes the
/// HTLC on its own commitment, A learns the preimage from it, and B sweeps
/// its output after the delay A asked of it.
#[test]
fn our_htlc_success_on_our_commitment_tells_the_payer() {
    let mut p = Pair::new();
    let forced = b_forced_with_a_fulfilled_htlc(&mut p, 10_000, None);
    let (hash, success) = (forced.hash, b_htlc_success(&mut p, &forced));
    assert_eq!(success.lock_time.to_consensus_u32(), 0);
    p.block_both(vec![success.clone()]);
    let confirmed = p.height;
    assert_eq!(a_payment(&mut p, hash), "succeeded");
    let since = p.broadcasts.len();
    while p.height + 1 < confirmed + 144 {
        assert!(p.claims_on(Side::B, since, &success).is_empty());
        p.block_both(vec![]);
    }
    let sweep = p.claims_on(Side::B, since, &success);
    assert_eq!(sweep.len(), 1, "{sweep:?}");
    assert!(p.accepted(&sweep[0]), "{:?}", p.mempool.last());
}

/// A small HTLC with its preimage known, at a fee estimate (2,500 sat/kW)
/// at which its HTLC-success with a wallet input (about 2,750 sat) would
/// cost more than it is worth (found by the simulator, seed 4061: a
/// forwarder gave the preimage downstream and left the HTLC upstream to
/// time out): B's HTLC-success is still made, at the feerate the HTLC can
/// bear once the sweep of its output after the delay (about 1,200 sat at
/// the estimate) and the dust that sweep leaves are set aside; the
/// payment succeeds for A.
#[test]
fn a_small_htlc_is_claimed_at_the_feerate_it_can_bear() {
    let mut p = Pair::new();
    let forced = b_forced_with_a_fulfilled_htlc(&mut p, 2_000, None);
    let (hash, success) = (forced.hash, b_htlc_success(&mut p, &forced));
    // The wallet's coin less its change: the fee, within what the HTLC
    // leaves once its sweep and the dust are set aside.
    let coin = p
        .devnet
        .utxos_for(&coin_script())
        .into_iter()
        .find(|(o, _)| *o == success.input[1].previous_output)
        .unwrap()
        .1;
    let fee = coin.txout.value.to_sat() - success.output[1].value.to_sat();
    assert!((300..=500).contains(&fee), "fee {fee}");
    p.block_both(vec![success]);
    assert_eq!(a_payment(&mut p, hash), "succeeded");
    assert_eq!(p.channel(Side::B).lost, Amount::ZERO);
}

/// The same HTLC at 10,000 sat/kW: claiming it and sweeping the result
/// would cost more than its 2,000 sat, so B leaves it (SAFETY.md: no claim
/// spends more in fees than it recovers); A takes it back after its expiry,
/// and B reports those 2,000 sat as lost.
#[test]
fn an_htlc_worth_less_than_its_claim_is_left_and_reported_lost() {
    let mut p = Pair::new();
    let forced = b_forced_with_a_fulfilled_htlc(&mut p, 2_000, Some(10_000));
    let Forced {
        expiry,
        commitment,
        htlc_vout,
        since,
        ..
    } = forced;
    while p.height < expiry {
        p.block_both(vec![]);
    }
    assert!(
        !p.claims_on(Side::B, since, &commitment)
            .iter()
            .any(|t| t.input[0].previous_output.vout == htlc_vout),
        "B claimed an HTLC worth less than its claim"
    );
    let back = p
        .claims_on(Side::A, since, &commitment)
        .into_iter()
        .find(|t| t.input[0].previous_output.vout == htlc_vout)
        .expect("A takes its HTLC back after expiry");
    assert!(p.accepted(&back), "{:?}", p.mempool.last());
    assert_eq!(p.channel(Side::B).lost, Amount::ZERO);
    p.block_both(vec![back]);
    assert_eq!(p.channel(Side::B).lost, Amount::from_sat(2_000));
}

/// B's force close with an HTLC of A's in it that B fulfilled (the fulfil
/// lost), its commitment confirmed.
struct Forced {
    hash: PaymentHash,
    expiry: u32,
    commitment: Transaction,
    htlc_vout: u32,
    /// Broadcasts before the commitment confirmed.
    since: usize,
    sat: u64,
}

/// Opens a channel, A pays B `sat` (B fulfils, the fulfil is lost), B
/// learns the fee `estimate` (if any) and forces the channel closed, and
/// its commitment confirms.
fn b_forced_with_a_fulfilled_htlc(p: &mut Pair, sat: u64, estimate: Option<u32>) -> Forced {
    let (id, _) = p.open();
    let expiry = p.pay_then_silence_of(Side::A, sat * 1_000);
    let (_, hash) = added_by_a(p);
    if let Some(e) = estimate {
        p.estimate(Side::B, e);
    }
    let commitment = p.force_close(Side::B, id);
    let htlc_vout = vout_of(&commitment, sat);
    let since = p.broadcasts.len();
    p.block_both(vec![commitment.clone()]);
    Forced {
        hash,
        expiry,
        commitment,
        htlc_vout,
        since,
        sat,
    }
}

/// B's one claim on its confirmed commitment: its HTLC-success, which the
/// devnet accepts, its output the whole HTLC (anchors: zero-fee).
fn b_htlc_success(p: &mut Pair, f: &Forced) -> Transaction {
    let success = p.claims_on(Side::B, f.since, &f.commitment);
    assert_eq!(success.len(), 1, "{success:?}");
    let success = success[0].clone();
    assert_eq!(success.input[0].previous_output.vout, f.htlc_vout);
    assert_eq!(success.output[0].value, Amount::from_sat(f.sat));
    assert!(p.accepted(&success), "{:?}", p.mempool.last());
    success
}

/// Killed at each step of an HTLC's resolution on chain — our commitment
/// broadcast, confirmed, the HTLC-timeout being funded by the wallet (the
/// answer lost), broadcast, confirmed, its output swept — and restarted
/// from the store each time: the resolution completes, each output is
/// claimed by one transaction, and the payment's failure stays recorded.
#[test]
fn restarts_at_each_step_of_an_htlc_timeout_resolve_it_once() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    let (expiry, hash) = stuck_htlc(&mut p);
    let commitment = p.force_close(Side::A, id);
    p.restart(Side::A);
    p.block_both(vec![commitment.clone()]);
    p.restart(Side::A);
    while p.height + 1 < expiry {
        p.block_both(vec![]);
    }
    let since = p.broadcasts.len();
    p.drop_funding = true;
    p.block_both(vec![]);
    assert_eq!(p.height, expiry);
    assert!(p.claims_on(Side::A, since, &commitment).is_empty());
    p.drop_funding = false;
    p.restart(Side::A);
    let timeout = p.claims_on(Side::A, since, &commitment);
    assert_eq!(timeout.len(), 1, "funded again after the restart");
    let timeout = timeout[0].clone();
    assert!(p.accepted(&timeout), "{:?}", p.mempool.last());
    p.restart(Side::A);
    p.block_both(vec![]);
    assert_eq!(
        p.claims_on(Side::A, since, &commitment),
        vec![timeout.clone()],
        "the same HTLC-timeout goes out again, no second one"
    );
    p.block_both(vec![timeout.clone()]);
    let confirmed = p.height;
    for _ in 0..5 {
        p.block_both(vec![]);
    }
    assert_eq!(
        a_payment(&mut p, hash),
        "failed: the htlc timed out on chain"
    );
    p.restart(Side::A);
    assert_eq!(
        a_payment(&mut p, hash),
        "failed: the htlc timed out on chain"
    );
    let since = p.broadcasts.len();
    while p.height + 1 < confirmed + 144 {
        p.block_both(vec![]);
    }
    let sweep = p.claims_on(Side::A, since, &timeout);
    assert_eq!(sweep.len(), 1);
    p.restart(Side::A);
    p.block_both(vec![]);
    assert_eq!(p.claims_on(Side::A, since, &timeout), sweep);
    p.block_both(sweep.clone());
    p.restart(Side::A);
    p.block_both(vec![]);
    let pending = p.core(Side::A).pending_broadcasts();
    assert!(!pending.contains(&sweep[0]) && !pending.contains(&timeout));
    assert_eq!(p.claims_on(Side::A, since, &timeout), sweep);
}

/// The peer's claim with the preimage on our commitment is reorged out:
/// the output is ours to resolve again (our HTLC-timeout once expired),
/// and the preimage we learned stays learned.
#[test]
fn a_reorg_that_undoes_the_peers_preimage_claim_reopens_the_output() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    let expiry = p.pay_then_silence(Side::A);
    let (_, hash) = added_by_a(&p);
    let commitment = p.force_close(Side::A, id);
    let htlc_vout = vout_of(&commitment, 10_000);
    let since = p.broadcasts.len();
    p.block(vec![commitment.clone()]);
    let claim = p
        .claims_on(Side::B, since, &commitment)
        .into_iter()
        .find(|t| t.input[0].previous_output.vout == htlc_vout)
        .expect("B's claim with the preimage");
    p.block(vec![claim]);
    assert_eq!(a_payment(&mut p, hash), "succeeded");
    p.unblock();
    assert_eq!(a_payment(&mut p, hash), "succeeded");
    // Without B's claim on chain, A times the HTLC out once it expires.
    let since = p.broadcasts.len();
    while p.height < expiry {
        p.block(vec![]);
    }
    let mine = p.claims_on(Side::A, since, &commitment);
    assert!(
        mine.iter()
            .any(|t| t.input[0].previous_output.vout == htlc_vout),
        "A claims the output back: {mine:?}"
    );
}

impl Pair {
    /// `side`'s fee reserve for anchor channels' force closes, in sat.
    fn fee_reserve(&mut self, side: Side) -> u64 {
        match self.command(side, Command::FeeReserve) {
            Reply::FeeReserve(a) => a.to_sat(),
            other => panic!("{other:?}"),
        }
    }

    /// `side`'s node learns a new fee estimate.
    fn estimate(&mut self, side: Side, sat_per_kw: u32) {
        self.run(vec![(
            side,
            Input::FeerateEstimate(FeeratePerKw(sat_per_kw)),
        )]);
    }
}

/// The feerate of `tx` with an unconfirmed `parent` (fee `parent_fee`)
/// counted in, in sat/kW: what a miner sees of the package.
fn package_feerate(tx: &Transaction, own_fee: u64, parent: &Transaction, parent_fee: u64) -> u64 {
    (own_fee + parent_fee) * 1000 / (tx.weight().to_wu() + parent.weight().to_wu())
}

/// The fee A's anchor child pays: its inputs (the 330 sat anchor and a
/// devnet coin) less its outputs.
fn child_fee(p: &Pair, child: &Transaction) -> u64 {
    let coin = p
        .devnet
        .utxos_for(&coin_script())
        .into_iter()
        .find(|(o, _)| *o == child.input[1].previous_output)
        .unwrap()
        .1;
    330 + coin.txout.value.to_sat() - child.output.iter().map(|o| o.value.to_sat()).sum::<u64>()
}

/// A feerate spike while A's commitment (anchors, 2_500 sat/kW) waits to
/// confirm with a 200_000 sat HTLC at stake: A's anchor child, with a
/// wallet input, brings the package to the new target; a second spike
/// replaces that child (the devnet's mempool takes the replacement under
/// BIP 125, and the first is not sent again); the HTLC-timeout later pays
/// the spiked rate too.
#[test]
fn a_feerate_spike_bumps_our_commitment_with_its_anchor_then_replaces_the_bump() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    let (expiry, _) = stuck_htlc_of(&mut p, 200_000_000);
    let commitment = p.force_close(Side::A, id);
    assert!(p.accepted(&commitment));
    let commitment_fee = 1_000_000
        - commitment
            .output
            .iter()
            .map(|o| o.value.to_sat())
            .sum::<u64>();
    // At the estimate it was signed at, no child.
    let since = p.broadcasts.len();
    p.block(vec![]);
    assert!(p.claims_on(Side::A, since, &commitment).is_empty());
    // 10_000 sat/kW: a child.
    p.estimate(Side::A, 10_000);
    p.block(vec![]);
    let children = p.claims_on(Side::A, since, &commitment);
    assert_eq!(children.len(), 1, "{children:?}");
    let child = children[0].clone();
    assert!(p.accepted(&child), "{:?}", p.mempool.last());
    let anchor = &commitment.output[child.input[0].previous_output.vout as usize];
    assert_eq!(anchor.value, Amount::from_sat(330));
    assert_eq!(child.output[0].value, Amount::from_sat(330));
    let rate = package_feerate(&child, child_fee(&p, &child), &commitment, commitment_fee);
    assert!((10_000..10_100).contains(&rate), "package at {rate} sat/kW");
    // The same estimate again: the child stands.
    p.block(vec![]);
    assert_eq!(p.claims_on(Side::A, since, &commitment).len(), 1);
    // 30_000 sat/kW: a replacement, accepted in place of the first.
    p.estimate(Side::A, 30_000);
    p.block(vec![]);
    let children = p.claims_on(Side::A, since, &commitment);
    assert_eq!(children.len(), 2, "{children:?}");
    let second = children[1].clone();
    assert_eq!(
        second.input[0].previous_output,
        child.input[0].previous_output
    );
    assert!(p.accepted(&second), "{:?}", p.mempool.last());
    let rate = package_feerate(&second, child_fee(&p, &second), &commitment, commitment_fee);
    assert!((30_000..30_100).contains(&rate), "package at {rate} sat/kW");
    let pending = p.core(Side::A).pending_broadcasts();
    assert!(pending.contains(&second) && !pending.contains(&child));
    // Mined with its child (the first child is forgotten); the
    // HTLC-timeout at expiry pays 30_000 sat/kW.
    p.block_both(vec![commitment.clone(), second.clone()]);
    let since = p.broadcasts.len();
    while p.height < expiry {
        p.block_both(vec![]);
    }
    let timeout = p
        .claims_on(Side::A, since, &commitment)
        .into_iter()
        .find(|t| t.input.len() == 2 && t.output[0].value == Amount::from_sat(200_000))
        .expect("the HTLC-timeout");
    assert!(p.accepted(&timeout), "{:?}", p.mempool.last());
}

/// What a spike may cost is capped by what is at stake: with a 10_000
/// sat HTLC, A's child at 50_000 sat/kW pays at most the HTLC's value (the
/// package ends below the target).
#[test]
fn a_bump_never_pays_more_than_the_htlcs_at_stake() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    stuck_htlc(&mut p);
    let commitment = p.force_close(Side::A, id);
    let since = p.broadcasts.len();
    p.estimate(Side::A, 50_000);
    p.block(vec![]);
    let children = p.claims_on(Side::A, since, &commitment);
    assert_eq!(children.len(), 1);
    assert!(p.accepted(&children[0]), "{:?}", p.mempool.last());
    let fee = child_fee(&p, &children[0]);
    assert!(fee <= 10_000, "the child pays {fee} sat");
    assert!(fee > 9_000, "the child pays {fee} sat");
}

/// A spike while B's claim with the preimage on A's commitment (its
/// deadline the HTLC's expiry) is pending: B makes it again at the new
/// target, paying more; the devnet takes the replacement; the first is not
/// sent again. B's to_remote sweep (nobody races it) is left as it is.
#[test]
fn a_feerate_spike_replaces_a_pending_htlc_claim() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    p.pay_then_silence(Side::A);
    let commitment = p.force_close(Side::A, id);
    let htlc_vout = vout_of(&commitment, 10_000);
    let since = p.broadcasts.len();
    p.block_both(vec![commitment.clone()]);
    let first = p
        .claims_on(Side::B, since, &commitment)
        .into_iter()
        .find(|t| t.input[0].previous_output.vout == htlc_vout)
        .expect("B's claim");
    assert!(p.accepted(&first));
    let count = p.claims_on(Side::B, since, &commitment).len();
    p.estimate(Side::B, 10_000);
    p.block(vec![]);
    let claims = p.claims_on(Side::B, since, &commitment);
    assert_eq!(claims.len(), count + 1, "{claims:?}");
    let second = claims.last().unwrap().clone();
    assert_eq!(
        second.input[0].previous_output,
        first.input[0].previous_output
    );
    assert!(second.output[0].value < first.output[0].value);
    let fee = 10_000 - second.output[0].value.to_sat();
    assert_fee_at(fee, &second, 10_000);
    assert!(p.accepted(&second), "{:?}", p.mempool.last());
    let pending = p.core(Side::B).pending_broadcasts();
    assert!(pending.contains(&second) && !pending.contains(&first));
    // The first confirms after all (a miner had it): the replacement is
    // dropped, the HTLC is resolved.
    p.block(vec![first.clone()]);
    let pending = p.core(Side::B).pending_broadcasts();
    assert!(!pending.contains(&second) && !pending.contains(&first));
    // A reorg undoes that: the replacement is the one to send again.
    p.unblock();
    let pending = p.core(Side::B).pending_broadcasts();
    assert!(pending.contains(&second) && !pending.contains(&first));
    // And if the replacement confirms instead, the first stays dropped.
    p.block(vec![second.clone()]);
    let pending = p.core(Side::B).pending_broadcasts();
    assert!(!pending.contains(&second) && !pending.contains(&first));
}

/// The wallet answers with A's anchor child only after B's commitment
/// confirmed in place of A's: the child can never confirm and is not kept
/// (nor sent); the wallet is told to forget it.
#[test]
fn an_anchor_child_funded_after_another_commitment_confirmed_is_not_kept() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    stuck_htlc_of(&mut p, 200_000_000);
    let _ = p.force_close(Side::A, id);
    let theirs = p.force_close(Side::B, id);
    p.drop_funding = true;
    p.estimate(Side::A, 10_000);
    p.block(vec![]);
    let asked = p.unanswered.pop();
    let Some((
        Side::A,
        Output::FundClaim {
            channel_id,
            tx,
            feerate,
            parent,
            max_fee,
            ..
        },
    )) = asked
    else {
        panic!("A asks the wallet for its anchor child: {asked:?}")
    };
    p.drop_funding = false;
    p.block(vec![theirs]);
    let outpoint = tx.input[0].previous_output;
    let funded = p.add_fee_input(tx, feerate, parent, max_fee);
    let outs = p.core(Side::A).handle(
        Duration::ZERO,
        Input::ClaimFunded {
            channel_id,
            outpoint,
            result: Ok(funded.clone()),
        },
    );
    assert!(outs.contains(&Output::Forget {
        txid: funded.compute_txid()
    }));
    assert!(!outs.iter().any(
        |o| matches!(o, Output::Broadcast { tx } if tx.compute_txid() == funded.compute_txid())
    ));
    assert!(p
        .core(Side::A)
        .pending_broadcasts()
        .iter()
        .all(|t| t.input[0].previous_output != outpoint));
}

/// The feerate of `side`'s current commitment, as stored.
fn commitment_feerate(p: &Pair, side: Side, id: ChannelId) -> u32 {
    stored_channel(&p.stores[side as usize], side, id)
        .commitments
        .local
        .feerate
        .0
}

/// `update_fee` sent by `side` since `since`.
fn fee_updates(p: &Pair, side: Side, since: usize) -> Vec<u32> {
    p.sent[since..]
        .iter()
        .filter_map(|(s, m)| match m {
            Message::UpdateFee(u) if *s == side => Some(u.feerate_per_kw),
            _ => None,
        })
        .collect()
}

/// BOLT 2 §"Updating Fees": A funds a channel without anchors and follows
/// the estimate with `update_fee` (up at once, down below half); both
/// commitments move to it. B, the fundee, never sends one; with anchors
/// nobody does (CPFP raises the fee on chain instead).
#[test]
fn the_funder_follows_the_estimate_with_update_fee() {
    let mut p = static_remotekey_pair();
    let (id, _) = p.open();
    let start = commitment_feerate(&p, Side::A, id);
    assert_eq!(start, 2_500);
    // An absurd estimate (a broken fee source) is ignored.
    let since = p.sent.len();
    p.estimate(Side::A, 5_000_000);
    assert!(fee_updates(&p, Side::A, since).is_empty());
    assert_eq!(commitment_feerate(&p, Side::A, id), 2_500);
    p.estimate(Side::A, 10_000);
    assert_eq!(fee_updates(&p, Side::A, since), vec![10_000]);
    assert_eq!(commitment_feerate(&p, Side::A, id), 10_000);
    assert_eq!(commitment_feerate(&p, Side::B, id), 10_000);
    // Not below half: no change.
    let since = p.sent.len();
    p.estimate(Side::A, 6_000);
    assert!(fee_updates(&p, Side::A, since).is_empty());
    p.estimate(Side::A, 4_000);
    assert_eq!(fee_updates(&p, Side::A, since), vec![4_000]);
    assert_eq!(commitment_feerate(&p, Side::B, id), 4_000);
    // The fundee does not.
    let since = p.sent.len();
    p.estimate(Side::B, 20_000);
    assert!(fee_updates(&p, Side::B, since).is_empty());
    // A payment still goes through at the new feerate.
    assert!(matches!(p.pay(Side::A, 50_000_000), Reply::Paid { .. }));
    // Anchors: no update_fee.
    let mut q = Pair::new();
    let (id, _) = q.open();
    let since = q.sent.len();
    q.estimate(Side::A, 10_000);
    assert!(fee_updates(&q, Side::A, since).is_empty());
    assert_eq!(commitment_feerate(&q, Side::A, id), 2_500);
}

/// A payer behind the chain (blocks still on their way to it) would offer
/// an HTLC whose `cltv_expiry` counts from a stale tip — already expired,
/// for all it knows, and its own deadline check would then take the
/// channel to chain. It refuses until it has caught up.
#[test]
fn payments_wait_while_the_node_catches_up_with_the_chain() {
    let mut p = Pair::new();
    p.open();
    let tip = p.height + 3;
    p.run(vec![(Side::A, Input::ChainTip { height: tip })]);
    let Reply::Failed(Failure { kind, message: why }) = p.pay(Side::A, 10_000_000) else {
        panic!("paid while behind")
    };
    assert_eq!(kind, FailureKind::NotSynced);
    assert!(
        why.contains(&format!(
            "catching up with the chain (block {} of {tip})",
            p.height
        )),
        "{why}"
    );
    for _ in 0..3 {
        p.block(vec![]);
    }
    assert!(matches!(p.pay(Side::A, 10_000_000), Reply::Paid { .. }));
}
