//! The ways a channel could lose funds (issue 11), each as a two-node
//! scenario: what a closed channel keeps, a node restored from an old copy
//! of its store, closers that cannot pay, a close that waits for its
//! confirmation, the two HTLC deadlines, a funding transaction reorged out
//! after `channel_ready`, and closing messages that fail their checks.

use beongae_channel::revocation::LocalSecrets;
use beongae_script::commitment::{obscuring_factor, CommitmentNumber};
use beongae_script::FeeratePerKw;
use beongae_wire::msgs::UpdateFee;

use super::*;
use channels::record::KeptState;

impl Pair {
    /// `side` restarts from `store` (a copy of its store from earlier: a
    /// backup) and reconnects if `connect`.
    fn restart_from(&mut self, side: Side, store: MemStore, connect: bool) {
        self.disconnect();
        self.stores[side as usize] = store.clone();
        *self.core(side) = self.restored(side, &store);
        if connect {
            self.connect();
        }
    }

    /// `side` asks to close; no reply is awaited.
    fn start_close(&mut self, side: Side, id: ChannelId) {
        let cmd = CommandId(2_000 + self.replies.len() as u64);
        self.run(vec![(
            side,
            Input::Command {
                id: cmd,
                command: Command::CloseChannel { channel_id: id },
            },
        )]);
    }

    pub(super) fn payment_status(&mut self, side: Side) -> Vec<String> {
        let Reply::Payments(list) = self.command(side, Command::ListPayments) else {
            panic!()
        };
        list.into_iter()
            .filter(|p| !p.incoming)
            .map(|p| p.status)
            .collect()
    }
}

fn errors_sent_by(p: &Pair, side: Side, since: usize) -> Vec<String> {
    p.sent[since..]
        .iter()
        .filter_map(|(s, m)| match m {
            Message::Error(e) if *s == side => Some(e.printable_data()),
            _ => None,
        })
        .collect()
}

fn spends(tx: &Transaction, funding: &Transaction) -> bool {
    tx.input
        .iter()
        .any(|i| i.previous_output.txid == funding.compute_txid())
}

fn values(tx: &Transaction) -> Vec<u64> {
    let mut v: Vec<u64> = tx.output.iter().map(|o| o.value.to_sat()).collect();
    v.sort_unstable();
    v
}

/// Issue 11 (1): a failed channel keeps, across a restart, what a
/// resolution on chain needs: the peer's basepoints, both delays, the
/// obscuring factor, every per-commitment secret the peer revealed, our
/// last commitment's signatures and the commitment numbers.
#[test]
fn a_failed_channel_keeps_what_enforcement_needs() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    for _ in 0..3 {
        p.pay(Side::A, 1_000_000);
        p.pay(Side::B, 500_000);
    }
    // B breaks a rule (update_fee from the non-funder): A fails the channel.
    p.deliver_from_b(Message::UpdateFee(UpdateFee {
        channel_id: id,
        feerate_per_kw: 3_000,
        extension: TlvStream::default(),
    }));
    assert_eq!(p.channel(Side::A).state, ChannelState::Closed);
    p.restart(Side::A);
    assert_eq!(p.channel(Side::A).state, ChannelState::Closed);

    let Some(KeptState::Normal(bytes)) = p.kept_state(Side::A, id) else {
        panic!("the closed channel's state is kept")
    };
    let (ours, theirs) = (keys(1).channel(0), keys(2).channel(0));
    let chan = decode_channel(Side::A, &bytes, &Default::default());
    let secp = bitcoin::secp256k1::Secp256k1::new();
    assert_eq!(chan.funded.remote_keys, theirs.public(&secp));
    assert_eq!(chan.funded.local_keys, ours.public(&secp));
    assert_eq!(
        chan.funded.obscuring_factor,
        obscuring_factor(
            &ours.public(&secp).payment_basepoint,
            &theirs.public(&secp).payment_basepoint
        )
    );
    let delay = ChannelSettings::default().config.to_self_delay;
    assert_eq!(chan.funded.remote_to_self_delay, delay);
    assert_eq!(chan.funded.local_to_self_delay, delay);
    // Six payments, each signed into two commitments of B's: B revoked 12.
    assert_eq!(chan.remote.current.get(), 12);
    let b_secrets = LocalSecrets::new(theirs.commitment_seed);
    for n in 0..12 {
        let n = CommitmentNumber::new(n).unwrap();
        assert_eq!(
            chan.remote.revoked_secret(n),
            Some(b_secrets.secret(n)),
            "secret {}",
            n.get()
        );
    }
    assert_eq!(chan.local_number.get(), 12);
    assert_eq!(
        chan.commitments.local.to_local,
        Msat::from_msat(900_000_000 - 1_500_000)
    );
    // Our last commitment, fully signed from what is kept, is the one that
    // went out.
    let tx = chan.signed_local_commitment(&secp).unwrap();
    assert_eq!(
        p.a_broadcasts(0).last().map(Transaction::compute_txid),
        Some(tx.compute_txid())
    );
}

/// Issue 11 (2): A's store is copied before `channel_ready`; two payments
/// follow; A restarts from the copy. Its commitment 0 pays it 1_000_000 sat
/// it no longer owns and is revoked: it must never go out, whether B's
/// `channel_reestablish` proves A is behind or B's `error` comes first.
#[test]
fn a_node_restored_from_a_copy_taken_before_channel_ready_never_broadcasts() {
    for error_first in [false, true] {
        let mut p = Pair::new();
        let (id, funding) = p.start_open(Msat::ZERO);
        let backup = p.stores[Side::A as usize].clone();
        p.confirm(&funding);
        p.pay(Side::A, 100_000_000);
        p.pay(Side::A, 50_000_000);
        let since = p.broadcasts.len();
        let sent = p.sent.len();
        if error_first {
            // B's error reaches A before B's channel_reestablish.
            p.restart_from(Side::A, backup, false);
            p.reconnect_a_alone();
            p.deliver_from_b(Message::Error(ErrorMessage::new(id, "you are behind")));
            assert!(p.a_broadcasts(since).is_empty());
            assert_eq!(p.channel(Side::A).state, ChannelState::Closed);
            // The next connection: A reestablishes from the kept state, B's
            // reestablish proves A behind, and B closes with its own.
            p.disconnect();
            p.connect();
            assert!(p.broadcasts[since..]
                .iter()
                .any(|(s, t)| *s == Side::B && spends(t, &funding)));
        } else {
            p.restart_from(Side::A, backup, true);
            // A asked B to close: B's own commitment pays A its 850_000 sat
            // less the fee and anchors A owes as funder.
            let (_, btx) = p.broadcasts[since..]
                .iter()
                .rfind(|(s, _)| *s == Side::B)
                .expect("B closes");
            assert!(spends(btx, &funding));
            assert_eq!(values(btx), vec![330, 330, 150_000, 850_000 - 2_810 - 660]);
            assert!(errors_sent(&p, sent)
                .iter()
                .any(|e| e.starts_with("our channel state is behind (you hold our secret 3)")));
            // A standby restored from an old copy is what "two
            // commitments for one number" looks like from B: B counts
            // A's reestablish as refused, and A counts B's.
            let refused: Vec<(Side, String)> = p
                .events
                .iter()
                .filter_map(|(s, e)| match e {
                    crate::core::Event::CommitmentRefused {
                        channel_id, reason, ..
                    } if *channel_id == id => Some((*s, reason.clone())),
                    _ => None,
                })
                .collect();
            assert_eq!(
                refused,
                vec![
                    (
                        Side::A,
                        "channel_reestablish: our channel state is behind (you hold our secret 3); please close the channel".to_owned()
                    ),
                    (
                        Side::B,
                        "channel_reestablish: peer expects commitment_signed 1 and revoke_and_ack 0, we are at commitment 4 and have signed its commitment 4".to_owned()
                    ),
                ]
            );
        }
        assert!(
            p.a_broadcasts(since).is_empty(),
            "A broadcast {:?}",
            p.a_broadcasts(since)
        );
        assert_eq!(p.channel(Side::A).state, ChannelState::Closed);
        assert!(p.core(Side::A).pending_broadcasts().is_empty());
        // Proven old: not even when the user insists.
        let Reply::Failed(Failure { kind, message: why }) =
            p.command(Side::A, Command::ForceCloseChannel { channel_id: id })
        else {
            panic!("forced out a revoked commitment")
        };
        assert_eq!(kind, FailureKind::Refused);
        assert!(
            why.ends_with("the peer proved our state old, so our commitment is revoked and is never broadcast (the peer's commitment returns our funds)"),
            "{why}"
        );
        assert!(p.a_broadcasts(since).is_empty());
    }
}

/// `closechannel --force` while a mutual close awaits confirmation: our
/// latest commitment goes out (anchors, B's balance, ours less fee and
/// anchors), and the reply names it.
#[test]
fn a_closing_channel_can_be_forced() {
    let mut p = Pair::new();
    let (id, funding) = p.open();
    let Reply::ChannelClosed { txid: closing, .. } =
        p.command(Side::B, Command::CloseChannel { channel_id: id })
    else {
        panic!()
    };
    assert_eq!(p.channel(Side::A).state, ChannelState::Closing);
    let Reply::ChannelClosed { txid, .. } =
        p.command(Side::A, Command::ForceCloseChannel { channel_id: id })
    else {
        panic!()
    };
    assert_ne!(txid, closing);
    let tx = p.a_broadcasts(0).into_iter().last().unwrap();
    assert_eq!(tx.compute_txid(), txid);
    assert!(spends(&tx, &funding));
    assert_eq!(values(&tx), vec![330, 330, 100_000, 900_000 - 2_810 - 660]);
    assert_eq!(p.channel(Side::A).state, ChannelState::Closed);
}

/// Issue 11 (3): a closer whose balance cannot pay a relayable fee is
/// refused with what to do instead; the peer closes; the channel stays
/// (`Closing`) until the closing transaction confirms, across a restart
/// and an `error` from the peer, which no longer forces our commitment out.
#[test]
fn a_closer_that_cannot_pay_is_refused_and_a_close_waits_for_its_confirmation() {
    let mut p = Pair::new();
    let (id, funding) = p.open_with(Msat::ZERO);
    let sent = p.sent.len();
    let reply = p.command(Side::B, Command::CloseChannel { channel_id: id });
    assert_eq!(
        reply,
        Reply::failed(
            FailureKind::Refused,
            "our balance of 0 sat cannot pay the lowest relayable closing fee of 177 sat: ask the peer to close the channel"
        )
    );
    assert!(
        p.sent[sent..].is_empty(),
        "no shutdown: {:?}",
        &p.sent[sent..]
    );
    assert_eq!(p.channel(Side::B).state, ChannelState::Normal);

    let Reply::ChannelClosed { txid, .. } =
        p.command(Side::A, Command::CloseChannel { channel_id: id })
    else {
        panic!()
    };
    let tx = p.broadcast(txid);
    // A pays the fee for 700 weight units at 2_500 sat/kw; B has nothing.
    assert_eq!(values(&tx), vec![1_000_000 - 1_750]);
    assert_eq!(
        p.mempool
            .iter()
            .rfind(|(t, _)| *t == txid)
            .map(|(_, r)| r.clone()),
        Some(Ok(()))
    );
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).state, ChannelState::Closing);
    }
    // A restart keeps the close pending and broadcasts it again.
    p.restart(Side::A);
    assert_eq!(p.channel(Side::A).state, ChannelState::Closing);
    assert_eq!(p.core(Side::A).pending_broadcasts(), vec![tx.clone()]);
    // The peer (which may have forgotten the channel) sends an error: our
    // closing transaction is what must confirm, not our commitment.
    let since = p.broadcasts.len();
    p.deliver_from_b(Message::Error(ErrorMessage::new(id, "unknown channel")));
    assert!(p.a_broadcasts(since).is_empty());
    assert_eq!(p.channel(Side::A).state, ChannelState::Closing);
    // Nor does a peer's broken rule (a dummy reestablish of a peer that
    // forgot the channel, an update): an error, the close stays.
    let sent = p.sent.len();
    p.deliver_from_b(Message::UpdateFee(UpdateFee {
        channel_id: id,
        feerate_per_kw: 3_000,
        extension: TlvStream::default(),
    }));
    assert_eq!(errors_sent_by(&p, Side::A, sent).len(), 1);
    assert!(p.a_broadcasts(since).is_empty());
    assert_eq!(p.channel(Side::A).state, ChannelState::Closing);
    // Asking to close again answers with the pending closing transaction.
    assert_eq!(
        p.command(Side::A, Command::CloseChannel { channel_id: id }),
        Reply::ChannelClosed {
            channel_id: id,
            txid
        }
    );
    p.block(vec![tx]);
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).state, ChannelState::Closed);
        assert_eq!(p.channel(side).closing_txid, Some(txid));
    }
    assert!(!p.broadcasts[since..]
        .iter()
        .any(|(_, t)| spends(t, &funding) && t.compute_txid() != txid));
}

/// Issue 11 (5): B fulfils A's HTLC and goes silent. B's fulfillment
/// deadline (18 blocks before `cltv_expiry`) and A's timeout deadline (1
/// block after it) each take their channel to chain at that very block, and
/// not one block earlier; A's payment is then pending on chain.
#[test]
fn both_htlc_deadlines_take_the_channel_to_chain_in_time() {
    let mut p = Pair::new();
    let (_, funding) = p.open();
    let cltv = p.pay_then_silence(Side::A);
    let first_broadcast = |p: &Pair, side: Side| {
        p.broadcasts
            .iter()
            .find(|(s, t)| *s == side && spends(t, &funding))
            .map(|(_, t)| t.clone())
    };
    let (mut b_at, mut a_at) = (None, None);
    while a_at.is_none() {
        p.block(vec![]);
        assert!(p.height < cltv + 10, "no deadline hit");
        if b_at.is_none() && first_broadcast(&p, Side::B).is_some() {
            b_at = Some(p.height);
        }
        if first_broadcast(&p, Side::A).is_some() {
            a_at = Some(p.height);
        }
    }
    assert_eq!(
        b_at,
        Some(cltv - 17),
        "B: first block past cltv_expiry - 18"
    );
    assert_eq!(a_at, Some(cltv + 2), "A: first block past cltv_expiry + 1");
    // Each went out with the HTLC's 10_000 sat output in it.
    for side in [Side::A, Side::B] {
        let tx = first_broadcast(&p, side).unwrap();
        assert!(values(&tx).contains(&10_000), "{side:?}: {tx:?}");
    }
    assert_eq!(p.payment_status(Side::A), vec!["pending on chain"]);
}

/// Issue 11 (6): the funding transaction leaves the chain after
/// `channel_ready`: no new HTLC either way until it confirms again, and
/// its funder broadcasts it again until it does.
#[test]
fn a_funding_reorged_out_after_channel_ready_stops_new_htlcs() {
    let mut p = Pair::new();
    let (_, funding) = p.open();
    assert!(matches!(p.pay(Side::A, 1_000_000), Reply::Paid { .. }));
    // Blocks 103, 102 and 101 (the funding's) leave the chain.
    for _ in 0..3 {
        p.unblock();
    }
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).short_channel_id, None, "{side:?}");
    }
    let Reply::Failed(Failure { kind, message: why }) = p.pay(Side::A, 1_000_000) else {
        panic!("paid over an unconfirmed channel")
    };
    assert_eq!(kind, FailureKind::NoRoute);
    assert!(why.starts_with("no active channel with the payee"), "{why}");
    assert!(matches!(p.pay(Side::B, 1_000_000), Reply::Failed(_)));
    // Mempools may have dropped it (sim: a dropped transaction): its
    // funder, A, broadcasts it again at every block until it confirms,
    // also after a restart; B has no copy of it to send.
    let since = p.broadcasts.len();
    p.block(vec![]);
    let again = |p: &Pair, since: usize| -> Vec<Side> {
        p.broadcasts[since..]
            .iter()
            .filter(|(_, t)| t.compute_txid() == funding.compute_txid())
            .map(|(s, _)| *s)
            .collect()
    };
    assert_eq!(again(&p, since), vec![Side::A]);
    p.restart(Side::A);
    assert_eq!(p.core(Side::A).pending_broadcasts(), vec![funding.clone()]);
    // The funding confirms again, in another block; the channel carries
    // HTLCs again once it is buried minimum_depth (3) blocks.
    p.block(vec![funding.clone()]);
    assert!(p.core(Side::A).pending_broadcasts().is_empty());
    assert_eq!(
        p.channel(Side::A).short_channel_id.map(|s| s.block()),
        Some(102)
    );
    p.block(vec![]);
    assert!(matches!(p.pay(Side::A, 1_000_000), Reply::Failed(_)));
    p.block(vec![]);
    assert!(matches!(p.pay(Side::A, 1_000_000), Reply::Paid { .. }));
    assert_eq!(
        p.channel(Side::A).local,
        Msat::from_msat(900_000_000 - 2_000_000)
    );
}

/// The funding leaves the chain after `channel_ready` and its funder forces
/// the channel closed before it confirms again: the funder broadcasts the
/// funding again ahead of its commitment at every block (mempools may have
/// dropped it; sim seed 5568 kept 282,730 sat "closing" for ever), also
/// after a restart, until the commitment confirms.
#[test]
fn a_funding_reorged_out_goes_out_again_with_the_close() {
    let mut p = Pair::new();
    let (id, funding) = p.open();
    for _ in 0..3 {
        p.unblock();
    }
    let before = p.broadcasts.len();
    let commitment = p.force_close(Side::A, id);
    // The funding goes out right ahead of the close that spends it.
    assert_eq!(
        p.a_broadcasts(before),
        vec![funding.clone(), commitment.clone()]
    );
    assert_eq!(
        p.core(Side::A).pending_broadcasts(),
        vec![funding.clone(), commitment.clone()]
    );
    let since = p.broadcasts.len();
    p.block(vec![]);
    assert_eq!(
        p.a_broadcasts(since),
        vec![funding.clone(), commitment.clone()]
    );
    p.restart(Side::A);
    assert_eq!(
        p.core(Side::A).pending_broadcasts(),
        vec![funding.clone(), commitment.clone()]
    );
    p.block(vec![funding.clone(), commitment.clone()]);
    assert!(!p
        .core(Side::A)
        .pending_broadcasts()
        .iter()
        .any(|t| *t == funding || *t == commitment));
}

/// The other order (sim seed 5568): the funder forces the channel closed,
/// then a reorg takes the funding out before the commitment confirms; the
/// funding goes out again ahead of the commitment until it is back on
/// chain, and not while it is on chain.
#[test]
fn a_funding_reorged_out_after_the_close_goes_out_again() {
    let mut p = Pair::new();
    let (id, funding) = p.open();
    let commitment = p.force_close(Side::A, id);
    assert_eq!(
        p.core(Side::A).pending_broadcasts(),
        vec![commitment.clone()]
    );
    for _ in 0..3 {
        p.unblock();
    }
    assert_eq!(
        p.core(Side::A).pending_broadcasts(),
        vec![funding.clone(), commitment.clone()]
    );
    p.restart(Side::A);
    assert_eq!(
        p.core(Side::A).pending_broadcasts(),
        vec![funding.clone(), commitment.clone()]
    );
    p.block(vec![funding.clone()]);
    assert_eq!(
        p.core(Side::A).pending_broadcasts(),
        vec![commitment.clone()]
    );
}

/// Issue 11 (7): a `closing_complete` whose signature does not verify gets
/// a warning and the connection closes (BOLT 2: "send a `warning` and close
/// the connection, or send an `error` and fail the channel"); the channel is
/// not failed, and the close succeeds after the reconnection.
#[test]
fn a_bad_closing_complete_is_refused_without_failing_the_channel() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    p.tamper = Some(|side, m| {
        if let (Side::B, Message::ClosingComplete(c)) = (side, m) {
            c.fee_satoshis += 1;
        }
    });
    let since = p.broadcasts.len();
    let sent = p.sent.len();
    p.start_close(Side::B, id);
    let warnings: Vec<String> = p.sent[sent..]
        .iter()
        .filter_map(|(s, m)| match (s, m) {
            (Side::A, Message::Warning(w)) => Some(w.printable_data()),
            _ => None,
        })
        .collect();
    assert_eq!(
        warnings,
        vec!["the closer_and_closee_outputs signature does not verify".to_string()]
    );
    assert!(errors_sent(&p, sent).is_empty());
    assert!(p.broadcasts[since..].is_empty());
    assert_eq!(p.channel(Side::A).state, ChannelState::ShuttingDown);
    // The connection closed; after the reconnection B closes again.
    p.tamper = None;
    p.disconnect();
    p.connect();
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).state, ChannelState::Closing, "{side:?}");
    }
    assert!(p
        .replies
        .iter()
        .any(|(s, r)| *s == Side::B && matches!(r, Reply::ChannelClosed { .. })));
}

/// Issue 11 (7): legacy `closing_signed` whose `fee_range` does not overlap
/// ours gets a warning, not a failure (BOLT 2: "SHOULD send a warning");
/// without a satisfying range in ten minutes the channel fails ("MUST fail
/// the channel if it doesn't receive a satisfying `fee_range` after a
/// reasonable amount of time").
#[test]
fn a_legacy_fee_negotiation_without_overlap_waits_then_fails() {
    let mut b_config = CoreConfig::new(ChainHash::REGTEST);
    b_config
        .features
        .clear(beongae_wire::Feature::SimpleClose.odd_bit());
    let mut p = Pair::with_b_config(b_config);
    let (id, funding) = p.open();
    // A's range is cut to 1..=2 sat on the way (fee_range is not signed).
    p.tamper = Some(|side, m| {
        if let (Side::A, Message::ClosingSigned(c)) = (side, m) {
            c.fee_range = Some(beongae_wire::msgs::FeeRange {
                min_fee_satoshis: 1,
                max_fee_satoshis: 2,
            });
        }
    });
    let sent = p.sent.len();
    p.start_close(Side::A, id);
    let b_warnings: Vec<String> = p.sent[sent..]
        .iter()
        .filter_map(|(s, m)| match (s, m) {
            (Side::B, Message::Warning(w)) => Some(w.printable_data()),
            _ => None,
        })
        .collect();
    assert_eq!(b_warnings.len(), 1, "{:?}", &p.sent[sent..]);
    assert!(
        b_warnings[0].starts_with("fee ranges do not overlap: ours 177..="),
        "{}",
        b_warnings[0]
    );
    assert!(
        b_warnings[0].ends_with("theirs 1..=2 sat"),
        "{}",
        b_warnings[0]
    );
    assert_eq!(p.channel(Side::B).state, ChannelState::ShuttingDown);
    // Nine minutes on: still waiting.
    let since = p.broadcasts.len();
    p.now += Duration::from_secs(540);
    p.run(vec![(Side::B, Input::Tick)]);
    assert_eq!(p.channel(Side::B).state, ChannelState::ShuttingDown);
    // Ten: B fails the channel with its commitment.
    p.now += Duration::from_secs(60);
    p.run(vec![(Side::B, Input::Tick)]);
    assert_eq!(p.channel(Side::B).state, ChannelState::Closed);
    let (_, tx) = p.broadcasts[since..]
        .iter()
        .find(|(s, _)| *s == Side::B)
        .expect("B's commitment");
    assert!(spends(tx, &funding));
    assert!(errors_sent_by(&p, Side::B, sent)
        .contains(&"the closing fee negotiation found no satisfying fee in time".to_string()));
}

/// A failed channel whose commitment was held back because the peer's
/// `error` came before its `channel_reestablish` (our state might have been
/// an old copy): the next connection's reestablish shows it is current, and
/// our commitment goes out then.
#[test]
fn a_withheld_commitment_goes_out_once_our_state_is_shown_current() {
    let mut p = Pair::new();
    let (id, funding) = p.open();
    p.pay(Side::A, 10_000_000);
    p.disconnect();
    // A reconnects; B's error arrives before B's channel_reestablish.
    p.reconnect_a_alone();
    let since = p.broadcasts.len();
    p.deliver_from_b(Message::Error(ErrorMessage::new(id, "something broke")));
    assert!(p.a_broadcasts(since).is_empty());
    assert_eq!(p.channel(Side::A).state, ChannelState::Closed);
    // Restarts keep it waiting.
    p.restart(Side::A);
    // (restart reconnected both: B's reestablish showed A current)
    let out = p.a_broadcasts(since);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(spends(&out[0], &funding));
    assert_eq!(
        values(&out[0]),
        vec![330, 330, 110_000, 890_000 - 2_810 - 660]
    );
    assert_eq!(p.channel(Side::A).closing_txid, Some(out[0].compute_txid()));
}

/// The HTLC deadlines after a restart: until the peer's
/// `channel_reestablish` shows our state is current (it could be a restored
/// backup), a passed deadline does not broadcast; the reestablish does. B
/// pays A; A fulfils, goes silent and restarts; blocks pass A's fulfillment
/// deadline (but not B's timeout deadline) while B is away.
#[test]
fn deadlines_after_a_restart_wait_for_the_peers_reestablish() {
    let mut p = Pair::new();
    let (_, funding) = p.open();
    let cltv = p.pay_then_silence(Side::B);
    let store = p.stores[Side::A as usize].clone();
    p.restart_from(Side::A, store, false);
    p.mute_after = None;
    let since = p.broadcasts.len();
    while p.height < cltv - 10 {
        p.block(vec![]);
    }
    assert!(
        p.a_broadcasts(since).is_empty(),
        "no broadcast before the reestablish"
    );
    assert!(p.broadcasts[since..].is_empty());
    // B comes back: its reestablish shows A's state current; A's deadline
    // has passed, so A goes to chain at once.
    p.connect();
    let out = p.a_broadcasts(since);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(spends(&out[0], &funding));
    assert!(
        values(&out[0]).contains(&10_000),
        "the HTLC's output: {out:?}"
    );
}

/// A mutual close that pays too little to confirm is replaced: with
/// option_simple_close, `closechannel` again at a higher feerate estimate
/// sends a new `closing_complete`; the peer signs it, the devnet's mempool
/// takes it as a BIP 125 replacement, and it is the one that confirms. With
/// no higher fee to offer, `closechannel` answers with the pending one.
#[test]
fn a_pending_mutual_close_can_be_replaced_at_a_higher_fee() {
    let mut p = Pair::new();
    let (id, _) = p.open();
    let Reply::ChannelClosed { txid: first, .. } =
        p.command(Side::A, Command::CloseChannel { channel_id: id })
    else {
        panic!()
    };
    assert_eq!(
        p.command(Side::A, Command::CloseChannel { channel_id: id }),
        Reply::ChannelClosed {
            channel_id: id,
            txid: first
        },
        "nothing higher to offer"
    );
    p.run(vec![(
        Side::A,
        Input::FeerateEstimate(FeeratePerKw(10_000)),
    )]);
    let Reply::ChannelClosed { txid: second, .. } =
        p.command(Side::A, Command::CloseChannel { channel_id: id })
    else {
        panic!()
    };
    assert_ne!(second, first);
    let tx = p
        .broadcasts
        .iter()
        .find(|(_, t)| t.compute_txid() == second)
        .unwrap()
        .1
        .clone();
    // A, the closer, pays 700 weight units at 10_000 sat/kw; B gets its
    // balance exactly.
    assert_eq!(values(&tx), vec![100_000, 900_000 - 7_000]);
    assert_eq!(
        p.mempool
            .iter()
            .rfind(|(t, _)| *t == second)
            .map(|(_, r)| r.clone()),
        Some(Ok(()))
    );
    assert_eq!(
        p.devnet.mempool().iter().filter(|t| **t == first).count(),
        0
    );
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).closing_txid, Some(second));
    }
    p.block(vec![tx]);
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).state, ChannelState::Closed);
        assert_eq!(p.channel(side).closing_txid, Some(second));
    }
}

/// A channel loaded from the store fails without its commitment until a
/// `channel_reestablish` shows its state current: here the peer's
/// reestablish carries a wrong secret (BOLT 2: "SHOULD send an `error` and
/// fail the channel"), which an old copy of our store could not tell from a
/// trap; the peer's own commitment closes the channel.
#[test]
fn a_loaded_channel_fails_without_its_commitment_until_shown_current() {
    let mut p = Pair::new();
    let (_, funding) = p.open();
    p.pay(Side::A, 10_000_000);
    p.pay(Side::B, 5_000_000);
    p.tamper = Some(|side, m| {
        if let (Side::B, Message::ChannelReestablish(r)) = (side, m) {
            r.your_last_per_commitment_secret[0] ^= 1;
        }
    });
    let since = p.broadcasts.len();
    p.restart(Side::A);
    assert!(
        p.a_broadcasts(since).is_empty(),
        "{:?}",
        p.a_broadcasts(since)
    );
    let a = p.channel(Side::A);
    assert_eq!(a.state, ChannelState::Closed);
    let reason = a.reason.unwrap();
    assert!(
        reason.starts_with("failed: your_last_per_commitment_secret is not the last secret we revealed; our commitment is held back"),
        "{reason}"
    );
    // B got A's error and closed with its commitment, paying A its 895_000
    // sat less the fee and anchors A owes as funder.
    let (_, btx) = p.broadcasts[since..]
        .iter()
        .find(|(s, t)| *s == Side::B && spends(t, &funding))
        .expect("B's commitment");
    assert_eq!(values(btx), vec![330, 330, 105_000, 895_000 - 2_810 - 660]);
}

/// Found by the simulator (issue 16): A asked for a simple close and
/// restarted after sending `shutdown` and before its `closing_complete`;
/// its request was in memory only. On reconnection both sides sent
/// `shutdown` again and then each waited for the other's
/// `closing_complete`, for ever. Now a side that waits for the peer's
/// `closing_complete` sends its own after a minute (BOLT 2
/// `option_simple_close`: both nodes SHOULD send one), paying its own fee.
#[test]
fn a_simple_close_whose_asker_restarted_completes_after_a_minute() {
    let mut p = Pair::new();
    let (id, funding) = p.open();
    p.pay(Side::A, 30_000_000);
    // A's shutdown is stored, and lost on the wire; A restarts.
    p.linked = false;
    p.start_close(Side::A, id);
    p.linked = true;
    p.restart(Side::A);
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).state, ChannelState::ShuttingDown);
    }
    let (sent, since) = (p.sent.len(), p.broadcasts.len());
    p.now += Duration::from_secs(59);
    p.run(vec![(Side::A, Input::Tick), (Side::B, Input::Tick)]);
    assert!(
        !p.sent[sent..]
            .iter()
            .any(|(_, m)| matches!(m, Message::ClosingComplete(_))),
        "{:?}",
        &p.sent[sent..]
    );
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).state, ChannelState::ShuttingDown);
    }
    // A minute: each sends its closing_complete, and signs the other's.
    p.now += Duration::from_secs(1);
    p.run(vec![(Side::A, Input::Tick), (Side::B, Input::Tick)]);
    let completes: Vec<Side> = p.sent[sent..]
        .iter()
        .filter(|(_, m)| matches!(m, Message::ClosingComplete(_)))
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(completes, vec![Side::A, Side::B]);
    for side in [Side::A, Side::B] {
        assert_eq!(p.channel(side).state, ChannelState::Closing);
    }
    // Two closing transactions, each paying its closer's fee (700 weight
    // units at 2,500 sat/kW) from the closer's balance alone.
    let fee = 2_500 * 700 / 1000;
    let mut closes: Vec<Vec<u64>> = p.broadcasts[since..]
        .iter()
        .filter(|(_, t)| spends(t, &funding))
        .map(|(_, t)| values(t))
        .collect();
    closes.sort();
    closes.dedup();
    assert_eq!(
        closes,
        vec![vec![130_000 - fee, 870_000], vec![130_000, 870_000 - fee]]
    );
}

/// The closee's patience (above) is for a close nobody completes: once
/// the peer's `closing_complete` is signed and its transaction broadcast,
/// the closee sends none of its own, however long the close waits to
/// confirm (it would pay a fee it never asked to pay).
#[test]
fn an_agreed_simple_close_is_not_followed_by_the_closees_own() {
    let mut p = Pair::new();
    let (id, funding) = p.open();
    p.pay(Side::A, 30_000_000);
    let (sent, since) = (p.sent.len(), p.broadcasts.len());
    let Reply::ChannelClosed { .. } = p.command(Side::A, Command::CloseChannel { channel_id: id })
    else {
        panic!("no close")
    };
    for _ in 0..5 {
        p.now += Duration::from_secs(60);
        p.run(vec![(Side::A, Input::Tick), (Side::B, Input::Tick)]);
    }
    let completes: Vec<Side> = p.sent[sent..]
        .iter()
        .filter(|(_, m)| matches!(m, Message::ClosingComplete(_)))
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(completes, vec![Side::A]);
    let mut closes: Vec<Vec<u64>> = p.broadcasts[since..]
        .iter()
        .filter(|(_, t)| spends(t, &funding))
        .map(|(_, t)| values(t))
        .collect();
    closes.dedup();
    let fee = 2_500 * 700 / 1000;
    assert_eq!(closes, vec![vec![130_000, 870_000 - fee]]);
}
