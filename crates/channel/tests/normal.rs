//! Two `NormalChannel`s exchanging real BOLT 2 messages (encoded and decoded
//! through `beongae-wire`): many HTLCs in both directions, in flight at
//! once, fulfilled or failed, every `commitment_signed` verified and every
//! `revoke_and_ack` checked; balances exact to the msat at the end, and the
//! latest commitment either side holds is valid on chain. Then the inputs a
//! peer must not get away with.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use beongae_channel::commitments::{Update, UpdateError};
use beongae_channel::normal::OnionKey;
use beongae_channel::normal::{ChannelError, Event, FailReason, NormalChannel, ReestablishError};
use beongae_channel::revocation::{LocalSecrets, RevocationError};
use beongae_channel::sign::CommitSignError;
use beongae_script::commitment::CommitmentNumber;
use beongae_script::FeeratePerKw;
use beongae_wire::msgs::{Message, OnionPacketBytes, UpdateFailMalformedHtlc, ONION_PACKET_LEN};
use beongae_wire::{ChannelId, Msat, Preimage, TlvStream, WireMessage};
use common::pair::{onion, setup, Pair, A_SAT, B_SAT};
use std::collections::BTreeMap;

#[test]
fn many_htlcs_both_ways_balances_exact() {
    let mut p = setup();
    let mut seed = 12345u64;
    let mut rand = move |m: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % m
    };
    let mut moved_to_b: i64 = 0; // msat, net A -> B
    let (mut fulfilled, mut failed) = (0, 0);
    let mut preimages = std::collections::HashMap::new();
    let mut counter = 0u32;
    let (mut outcomes_a, mut outcomes_b) = (Vec::new(), Vec::new());
    for round in 0..25 {
        // 2-5 HTLCs each way, some below the dust limits.
        for from_a in [true, false] {
            for _ in 0..2 + rand(4) {
                counter += 1;
                let mut pre = [0u8; 32];
                pre[..4].copy_from_slice(&counter.to_be_bytes());
                let preimage = Preimage(pre);
                preimages.insert(preimage.payment_hash(), preimage);
                let amount = Msat::from_msat(100_000 + rand(20_000_000));
                let ch = if from_a { &mut p.a } else { &mut p.b };
                let add = ch
                    .send_add(
                        amount,
                        preimage.payment_hash(),
                        700_000 + round,
                        onion(counter as u8),
                    )
                    .unwrap();
                p.send(from_a, add);
            }
        }
        p.settle();
        // Each side settles what it received: two in three fulfilled.
        for side_a in [true, false] {
            let events = std::mem::take(if side_a {
                &mut p.events_a
            } else {
                &mut p.events_b
            });
            for e in events {
                let ch = if side_a { &mut p.a } else { &mut p.b };
                match e {
                    Event::IncomingCommitted {
                        id,
                        amount,
                        payment_hash,
                        onion: o,
                        ..
                    } => {
                        assert_eq!(o.0[1..], onion(o.0[1]).0[1..]);
                        if rand(3) > 0 {
                            let f = ch.send_fulfill(id, preimages[&payment_hash]).unwrap();
                            p.send(side_a, f);
                            let delta = amount.to_msat() as i64;
                            moved_to_b += if side_a { -delta } else { delta };
                            fulfilled += 1;
                        } else {
                            let f = ch.send_fail(id, vec![side_a as u8; 32]).unwrap();
                            p.send(side_a, f);
                            failed += 1;
                        }
                    }
                    outcome => {
                        if side_a {
                            outcomes_a.push(outcome)
                        } else {
                            outcomes_b.push(outcome)
                        }
                    }
                }
            }
        }
        p.settle();
        p.check_broadcastable(round % 2 == 0);
    }
    p.settle();
    // Nothing left in flight; balances moved by exactly the fulfilled HTLCs.
    for ch in [&p.a, &p.b] {
        assert!(ch.commitments.local.htlcs.is_empty());
        assert!(ch.commitments.remote.htlcs.is_empty());
    }
    let a_now = p.a.commitments.local.to_local.to_msat() as i64;
    assert_eq!(a_now, (A_SAT * 1000) as i64 - moved_to_b);
    assert_eq!(
        p.b.commitments.local.to_local.to_msat() as i64,
        (B_SAT * 1000) as i64 + moved_to_b
    );
    assert_eq!(p.a.commitments.remote, p.b.commitments.local);
    assert!(
        fulfilled > 40 && failed > 10,
        "{fulfilled} fulfilled, {failed} failed"
    );
    // Every outcome reached the offerer, each failure with its reason.
    let outcomes = |ev: &[Event]| {
        let ok = ev
            .iter()
            .filter(|e| matches!(e, Event::OutgoingFulfilled { .. }))
            .count();
        let ko: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                Event::OutgoingFailed { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect();
        (ok, ko)
    };
    outcomes_a.append(&mut p.events_a);
    outcomes_b.append(&mut p.events_b);
    let ((ok_a, ko_a), (ok_b, ko_b)) = (outcomes(&outcomes_a), outcomes(&outcomes_b));
    assert_eq!(ok_a + ok_b, fulfilled);
    assert_eq!(ko_a.len() + ko_b.len(), failed);
    assert!(ko_a.iter().all(|r| *r == FailReason::Reason(vec![0; 32])));
    assert!(ko_b.iter().all(|r| *r == FailReason::Reason(vec![1; 32])));
    // Every commitment the peer revoked is recoverable for a penalty.
    let revoked = p.a.remote.current.get();
    assert!(revoked > 40);
    for n in 0..revoked {
        let n = CommitmentNumber::new(n).unwrap();
        assert_eq!(
            p.a.remote.revoked_secret(n),
            Some(LocalSecrets::new(p.pb.seed).secret(n))
        );
    }
    p.check_broadcastable(true);
    p.check_broadcastable(false);
}

#[test]
fn bad_messages_fail_the_channel_and_change_nothing() {
    let mut p = setup();
    let h = Preimage([5; 32]).payment_hash();
    let add =
        p.a.send_add(Msat::from_msat(5_000_000), h, 700_000, onion(1))
            .unwrap();
    p.send(true, add);
    assert!(p.deliver(false));
    let cs = p.a.sign(&p.secp).unwrap().unwrap();

    // A signature over something else.
    let mut bad = cs.clone();
    bad.signature = p.a.local_signatures.signature;
    let before = (p.b.commitments.clone(), p.b.local_number);
    assert_eq!(
        p.b.receive(&p.secp, &Message::CommitmentSigned(bad)),
        Err(ChannelError::Sign(CommitSignError::BadCommitmentSignature))
    );
    assert_eq!((p.b.commitments.clone(), p.b.local_number), before);
    // Missing HTLC signature.
    let mut fewer = cs.clone();
    fewer.htlc_signatures.clear();
    assert_eq!(
        p.b.receive(&p.secp, &Message::CommitmentSigned(fewer)),
        Err(ChannelError::Sign(CommitSignError::HtlcSignatureCount {
            got: 0,
            expected: 1
        }))
    );
    // Another channel.
    let mut other = cs.clone();
    other.channel_id = ChannelId([1; 32]);
    assert_eq!(
        p.b.receive(&p.secp, &Message::CommitmentSigned(other)),
        Err(ChannelError::WrongChannel(ChannelId([1; 32])))
    );
    // The real one: B revokes commitment 0.
    let got =
        p.b.receive(&p.secp, &Message::CommitmentSigned(cs))
            .unwrap();
    let Message::RevokeAndAck(raa) = &got.reply[0] else {
        panic!("{got:?}")
    };
    assert_eq!(
        raa.per_commitment_secret,
        LocalSecrets::new(p.pb.seed).secret(CommitmentNumber::ZERO)
    );
    // A wrong secret in revoke_and_ack.
    let mut wrong = raa.clone();
    wrong.per_commitment_secret[0] ^= 1;
    assert_eq!(
        p.a.receive(&p.secp, &Message::RevokeAndAck(wrong)),
        Err(ChannelError::Revocation(RevocationError::WrongSecret))
    );
    assert!(p.a.commitments.remote_next.is_some(), "still awaiting");
    p.a.receive(&p.secp, &Message::RevokeAndAck(raa.clone()))
        .unwrap();
    // A second revoke_and_ack with nothing outstanding.
    assert_eq!(
        p.a.receive(&p.secp, &Message::RevokeAndAck(raa.clone())),
        Err(ChannelError::Update(UpdateError::UnexpectedRevocation))
    );
    // commitment_signed with nothing new to sign.
    let empty = p.b.sign(&p.secp).unwrap().unwrap(); // B signs A's side of the add
    p.a.receive(&p.secp, &Message::CommitmentSigned(empty.clone()))
        .unwrap();
    assert_eq!(
        p.a.receive(&p.secp, &Message::CommitmentSigned(empty)),
        Err(ChannelError::Update(UpdateError::NothingToSign))
    );
    // update_fail_malformed_htlc without BADONION.
    let malformed = UpdateFailMalformedHtlc {
        channel_id: ChannelId([9; 32]),
        id: 0,
        sha256_of_onion: [0; 32],
        failure_code: 0x4000 | 5,
        extension: TlvStream::default(),
    };
    assert_eq!(
        p.a.receive(&p.secp, &Message::UpdateFailMalformedHtlc(malformed)),
        Err(ChannelError::NotBadOnion(0x4005))
    );
    assert_eq!(
        p.b.send_fail_malformed(0, [0; 32], 0x4005).unwrap_err(),
        ChannelError::NotBadOnion(0x4005)
    );
    // Unexpected in this phase.
    let ping = Message::decode(&[0, 18, 0, 0, 0, 0]).unwrap();
    assert_eq!(
        p.a.receive(&p.secp, &ping),
        Err(ChannelError::Unexpected("Ping"))
    );
}

/// BOLT 2: on disconnection each side reverses the updates not yet covered
/// by a `commitment_signed`; HTLC ids start again where they were, and the
/// updates proposed anew go through.
#[test]
fn disconnection_reverses_uncommitted_updates() {
    let mut p = setup();
    let h = |b: u8| Preimage([b; 32]).payment_hash();
    for b in [1, 2] {
        let add =
            p.a.send_add(Msat::from_msat(3_000_000), h(b), 700_000, onion(b))
                .unwrap();
        p.send(true, add);
    }
    let add =
        p.b.send_add(Msat::from_msat(4_000_000), h(3), 700_000, onion(3))
            .unwrap();
    p.send(false, add);
    while p.deliver(true) | p.deliver(false) {}
    let before_a = p.a.commitments.local.clone();

    let dropped_a = p.a.on_disconnect();
    let dropped_b = p.b.on_disconnect();
    assert_eq!(dropped_a.len(), 2);
    assert_eq!(dropped_b.len(), 1);
    assert!(!p.a.commitments.can_send_commit(), "nothing left to sign");
    assert_eq!(p.a.commitments.local, before_a);

    // Proposed again after reconnecting: ids restart at 0 on both sides.
    let again =
        p.a.send_add(Msat::from_msat(3_000_000), h(1), 700_000, onion(1))
            .unwrap();
    assert_eq!(again.id, 0);
    p.send(true, again);
    p.settle();
    let events = std::mem::take(&mut p.events_b);
    assert!(matches!(
        events.as_slice(),
        [Event::IncomingCommitted { id: 0, payment_hash, .. }] if *payment_hash == h(1)
    ));
    let f = p.b.send_fulfill(0, Preimage([1; 32])).unwrap();
    p.send(false, f);
    p.settle();
    assert_eq!(
        p.a.commitments.local.to_local,
        Msat::from_msat(A_SAT * 1000 - 3_000_000)
    );
    assert_eq!(p.a.commitments.remote, p.b.commitments.local);
}

impl Pair {
    /// The connection drops with everything in flight lost; both sides
    /// reverse uncommitted updates and exchange `channel_reestablish`
    /// (through the codec). Returns what each resends, already queued.
    fn reconnect(&mut self) -> (Vec<Message>, Vec<Message>) {
        self.to_a.clear();
        self.to_b.clear();
        let dropped_a = self.a.on_disconnect();
        let dropped_b = self.b.on_disconnect();
        let ra = Message::decode(&self.a.reestablish(&self.secp).encode().unwrap()).unwrap();
        let rb = Message::decode(&self.b.reestablish(&self.secp).encode().unwrap()).unwrap();
        let (Message::ChannelReestablish(ra), Message::ChannelReestablish(rb)) = (ra, rb) else {
            panic!()
        };
        let resend_a = self.a.receive_reestablish(&self.secp, &rb).unwrap();
        let resend_b = self.b.receive_reestablish(&self.secp, &ra).unwrap();
        for m in &resend_a {
            self.to_b.push_back(m.encode().unwrap());
        }
        for m in &resend_b {
            self.to_a.push_back(m.encode().unwrap());
        }
        // Fulfills the peer never got are sent again (the preimage is known);
        // dropped adds are simply not sent.
        for (side_a, dropped) in [(true, dropped_a), (false, dropped_b)] {
            for u in dropped {
                if let Update::Fulfill { id, preimage } = u {
                    let ch = if side_a { &mut self.a } else { &mut self.b };
                    let f = ch.send_fulfill(id, preimage).unwrap();
                    self.send(side_a, f);
                }
            }
        }
        (resend_a, resend_b)
    }

    /// Settles everything, fulfils every incoming HTLC, settles again; both
    /// views agree and nothing is left in flight.
    fn finish(&mut self) {
        self.finish_soft();
        assert_eq!(self.a.commitments.remote, self.b.commitments.local);
        assert_eq!(self.b.commitments.remote, self.a.commitments.local);
        assert!(self.a.commitments.local.htlcs.is_empty());
        self.check_broadcastable(true);
        self.check_broadcastable(false);
    }
}

fn names(ms: &[Message]) -> Vec<&'static str> {
    ms.iter().map(Message::name).collect()
}

/// A's `commitment_signed` (and the add before it) never arrived: A sends
/// both again with the same commitment number, and the payment completes.
#[test]
fn reestablish_resends_a_lost_commitment_signed() {
    let mut p = setup();
    p.offer(true, 2_000_000, 1);
    assert!(p.deliver(false), "B got the add");
    let cs = p.a.sign(&p.secp).unwrap().unwrap();
    p.send(true, cs); // lost
    let (resend_a, resend_b) = p.reconnect();
    // Neither has received a commitment_signed yet: channel_ready again too.
    assert_eq!(
        names(&resend_a),
        ["ChannelReady", "UpdateAddHtlc", "CommitmentSigned"]
    );
    assert_eq!(names(&resend_b), ["ChannelReady"]);
    p.finish();
    assert_eq!(
        p.b.commitments.local.to_local,
        Msat::from_msat(B_SAT * 1000 + 2_000_000)
    );
}

/// B revoked and then signed; both were lost: B sends them again in that order.
#[test]
fn reestablish_resends_revoke_then_commit() {
    let mut p = setup();
    p.offer(true, 2_000_000, 1);
    let cs = p.a.sign(&p.secp).unwrap().unwrap();
    p.send(true, cs);
    assert!(
        p.deliver(false) && p.deliver(false),
        "B got the add and the signature"
    );
    let cs_b = p.b.sign(&p.secp).unwrap().unwrap();
    p.send(false, cs_b);
    assert_eq!(
        p.to_a.len(),
        2,
        "B's revoke_and_ack and commitment_signed, both to be lost"
    );
    let (resend_a, resend_b) = p.reconnect();
    assert!(resend_a.is_empty());
    assert_eq!(names(&resend_b), ["RevokeAndAck", "CommitmentSigned"]);
    p.finish();
}

/// B signed first, then revoked on A's signature; all lost: B resends its
/// update, `commitment_signed` and then `revoke_and_ack`, as first sent.
#[test]
fn reestablish_resends_commit_then_revoke() {
    let mut p = setup();
    p.offer(true, 2_000_000, 1);
    p.offer(false, 3_000_000, 2);
    assert!(p.deliver(true) && p.deliver(false), "adds crossed");
    let cs_a = p.a.sign(&p.secp).unwrap().unwrap();
    p.send(true, cs_a);
    let cs_b = p.b.sign(&p.secp).unwrap().unwrap();
    p.send(false, cs_b); // lost
    assert!(
        p.deliver(false),
        "B receives A's signature and revokes (lost)"
    );
    let (resend_a, resend_b) = p.reconnect();
    assert!(resend_a.is_empty(), "{:?}", names(&resend_a));
    assert_eq!(
        names(&resend_b),
        ["UpdateAddHtlc", "CommitmentSigned", "RevokeAndAck"]
    );
    p.finish();
    assert_eq!(
        p.a.commitments.local.to_local,
        Msat::from_msat(A_SAT * 1000 - 2_000_000 + 3_000_000)
    );
}

/// A restarts from an old backup: B's `channel_reestablish` proves A has
/// revoked more than it remembers, so A must not broadcast; B sees A's
/// numbers are stale and refuses too.
#[test]
fn reestablish_detects_a_node_that_fell_behind() {
    let mut p = setup();
    let old_a = p.a.clone();
    for b in 1..=3u8 {
        p.offer(true, 1_000_000, b);
        p.finish();
    }
    p.a = old_a;
    p.a.on_disconnect();
    p.b.on_disconnect();
    let ra = p.a.reestablish(&p.secp);
    let rb = p.b.reestablish(&p.secp);
    assert!(matches!(
        p.a.receive_reestablish(&p.secp, &rb),
        Err(ChannelError::Reestablish(ReestablishError::WeFellBehind(_)))
    ));
    assert!(matches!(
        p.b.receive_reestablish(&p.secp, &ra),
        Err(ChannelError::Reestablish(
            ReestablishError::OutOfSync { .. }
        ))
    ));
    // A wrong secret for the right number.
    let mut bad = p.b.reestablish(&p.secp);
    bad.your_last_per_commitment_secret[5] ^= 1;
    assert!(p.a.clone().receive_reestablish(&p.secp, &bad).is_err());
}

/// Random interleavings of adds, signatures, deliveries, fulfills,
/// disconnections (everything in flight lost, then `channel_reestablish`)
/// and restarts (both channels stored, read back with their secrets
/// derived again, then reconnected):
/// no message is ever refused, and after a last reconnection both sides
/// converge with every HTLC settled and money conserved.
#[test]
fn random_disconnections_always_recover() {
    for seed in 1..=120u64 {
        let mut p = setup();
        let mut x = seed;
        let mut next = move |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let mut counter = 10u8;
        for _ in 0..60 {
            match next(9) {
                0 | 1 => {
                    let from_a = next(2) == 0;
                    counter = counter.wrapping_add(1).max(10);
                    let h = Preimage([counter; 32]).payment_hash();
                    let ch = if from_a { &mut p.a } else { &mut p.b };
                    if let Ok(add) = ch.send_add(
                        Msat::from_msat(1_000_000 + next(5_000_000)),
                        h,
                        700_000,
                        onion(counter),
                    ) {
                        p.send(from_a, add);
                    }
                }
                2 => {
                    let a_side = next(2) == 0;
                    let ch = if a_side { &mut p.a } else { &mut p.b };
                    if let Some(cs) = ch.sign(&p.secp).unwrap() {
                        p.send(a_side, cs);
                    }
                }
                3..=6 => {
                    p.deliver(next(2) == 0);
                }
                7 => p.fulfill_committed(),
                8 if next(2) == 0 => {
                    p.restart();
                    p.reconnect();
                }
                _ => {
                    p.reconnect();
                }
            }
        }
        p.restart();
        p.reconnect();
        // Settle repeatedly: incoming HTLCs reported only now get fulfilled.
        for _ in 0..4 {
            p.finish_soft();
        }
        assert_eq!(p.a.commitments.remote, p.b.commitments.local, "seed {seed}");
        assert_eq!(p.b.commitments.remote, p.a.commitments.local, "seed {seed}");
        assert!(
            p.a.commitments.local.htlcs.is_empty(),
            "seed {seed}: {:?}",
            p.a.commitments.local.htlcs
        );
        let total = p.a.commitments.local.total().unwrap();
        assert_eq!(
            total,
            Msat::from_msat((A_SAT + B_SAT) * 1000),
            "seed {seed}"
        );
    }
}

impl Pair {
    /// Like `finish` without the final assertions.
    fn finish_soft(&mut self) {
        self.settle();
        self.fulfill_committed();
        self.settle();
    }

    /// Fulfils every incoming HTLC reported committed so far (one whose
    /// fulfill was already sent and lost is fulfilled again after a
    /// reconnection instead).
    fn fulfill_committed(&mut self) {
        for side_a in [true, false] {
            let events = std::mem::take(if side_a {
                &mut self.events_a
            } else {
                &mut self.events_b
            });
            for e in events {
                if let Event::IncomingCommitted {
                    id, payment_hash, ..
                } = e
                {
                    let ch = if side_a { &mut self.a } else { &mut self.b };
                    if let Ok(f) = ch.send_fulfill(id, common::preimage_of(payment_hash)) {
                        self.send(side_a, f);
                    }
                }
            }
        }
    }

    /// Offers an HTLC of `msat` paying `Preimage([tag; 32])` and queues it.
    fn offer(&mut self, from_a: bool, msat: u64, tag: u8) {
        let ch = if from_a { &mut self.a } else { &mut self.b };
        let add = ch
            .send_add(
                Msat::from_msat(msat),
                Preimage([tag; 32]).payment_hash(),
                700_000,
                onion(tag),
            )
            .unwrap();
        self.send(from_a, add);
    }
}

/// A payment, then `shutdown` both ways (no HTLC may be added any more),
/// then the fee negotiation: the closing transaction pays each side its
/// final balance (the funder minus the fee) and spends the funding output
/// under libbitcoinconsensus.
#[test]
fn shutdown_then_close() {
    use beongae_channel::close::CloseStep;
    use bitcoin::hashes::Hash;
    let mut p = setup();
    p.offer(true, 12_345_678, 1);
    p.finish();
    let (script_a, script_b) = (
        bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0xaa; 20])),
        bitcoin::ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::from_byte_array([0xbb; 32])),
    );
    assert!(matches!(
        p.a.send_shutdown(bitcoin::ScriptBuf::from_bytes(vec![0x51, 0x02, 1, 2])),
        Err(ChannelError::BadShutdownScript(_))
    ));
    // Not while an update we sent awaits its commitment_signed.
    let mut busy = setup();
    busy.offer(true, 1_000_000, 9);
    assert_eq!(
        busy.a.send_shutdown(script_a.clone()).unwrap_err(),
        ChannelError::Unexpected(
            "shutdown with updates not yet signed; send commitment_signed first"
        )
    );
    let s = p.a.send_shutdown(script_a.clone()).unwrap();
    p.send(true, s);
    assert!(p.deliver(false));
    assert_eq!(
        p.events_b.pop(),
        Some(Event::ShutdownReceived {
            script: script_a.clone()
        })
    );
    assert_eq!(
        p.b.send_add(
            Msat::from_msat(1_000_000),
            Preimage([2; 32]).payment_hash(),
            700_000,
            onion(2)
        )
        .unwrap_err(),
        ChannelError::ShuttingDown
    );
    let s = p.b.send_shutdown(script_b.clone()).unwrap();
    p.send(false, s.clone());
    assert!(p.deliver(true));
    // BOLT 2: "MUST NOT send multiple `shutdown` messages".
    assert_eq!(
        p.a.send_shutdown(script_a.clone()).unwrap_err(),
        ChannelError::Unexpected("a second shutdown")
    );
    // BOLT 2: `shutdown` is retransmitted after a reconnection; the same
    // one again changes nothing, one with another script is refused.
    let before = p.a.encode_state().unwrap();
    assert_eq!(
        p.a.receive(&p.secp, &Message::Shutdown(s.clone())).unwrap(),
        beongae_channel::normal::Received::default()
    );
    assert_eq!(p.a.encode_state().unwrap(), before);
    // After a reconnection the peer may send its latest script: kept.
    let mut other = s.clone();
    other.scriptpubkey = beongae_wire::msgs::U16Bytes(script_a.to_bytes());
    assert_eq!(
        p.a.receive(&p.secp, &Message::Shutdown(other)).unwrap(),
        beongae_channel::normal::Received::default()
    );
    assert_eq!(p.a.shutdown.remote.as_ref(), Some(&script_a));
    let mut bad = s.clone();
    bad.scriptpubkey = beongae_wire::msgs::U16Bytes(vec![0x51, 0x02, 1, 2]);
    assert!(matches!(
        p.a.receive(&p.secp, &Message::Shutdown(bad)).unwrap_err(),
        ChannelError::BadShutdownScript(_)
    ));
    p.a.receive(&p.secp, &Message::Shutdown(s)).unwrap();
    assert_eq!(p.a.shutdown.remote.as_ref(), Some(&script_b));
    assert!(p.a.ready_to_close() && p.b.ready_to_close());

    let range = (
        bitcoin::Amount::from_sat(500),
        bitcoin::Amount::from_sat(5_000),
    );
    let mut ca = p.a.start_closing(range).unwrap();
    let mut cb = p.b.start_closing(range).unwrap();
    let first = ca
        .propose(&p.secp, bitcoin::Amount::from_sat(1_500))
        .unwrap();
    let CloseStep::SendAndDone(reply, tx_b) = cb.receive(&p.secp, &first).unwrap() else {
        panic!()
    };
    let CloseStep::Done(tx_a) = ca.receive(&p.secp, &reply).unwrap() else {
        panic!()
    };
    assert_eq!(tx_a, tx_b);
    let paid = |s: &bitcoin::ScriptBuf| {
        tx_a.output
            .iter()
            .find(|o| o.script_pubkey == *s)
            .unwrap()
            .value
            .to_sat()
    };
    // A: 700_000 sat - 12_345.678 sat paid (rounded down) - 1_500 fee.
    assert_eq!(paid(&script_a), 700_000 - 12_346 - 1_500);
    assert_eq!(paid(&script_b), 300_000 + 12_345);
    common::check_closing(&tx_a, &p.pa, &p.pb);
}

impl Pair {
    /// Both processes restart: each channel is written to its record and
    /// read back (secrets supplied again); the record reads back to itself.
    fn restart(&mut self) {
        for side_a in [true, false] {
            let (ch, party) = if side_a {
                (&mut self.a, &self.pa)
            } else {
                (&mut self.b, &self.pb)
            };
            let bytes = ch.encode_state().unwrap();
            let back =
                NormalChannel::decode_state(&bytes, party.signing(), LocalSecrets::new(party.seed))
                    .unwrap();
            assert_eq!(back.encode_state().unwrap(), bytes);
            // With the onions kept apart: the same channel, the record
            // shorter by each onion, and refused without one of them.
            let (apart, onions) = ch.encode_state_apart().unwrap();
            let onions: BTreeMap<OnionKey, OnionPacketBytes> =
                onions.into_iter().map(|(k, o)| (k, o.clone())).collect();
            assert_eq!(apart.len() + onions.len() * ONION_PACKET_LEN, bytes.len());
            let load = |onions: &BTreeMap<OnionKey, OnionPacketBytes>| {
                NormalChannel::decode_state_apart(
                    &apart,
                    onions,
                    party.signing(),
                    LocalSecrets::new(party.seed),
                )
            };
            assert_eq!(load(&onions).unwrap().encode_state().unwrap(), bytes);
            if let Some(k) = onions.keys().next() {
                let mut short = onions.clone();
                short.remove(k);
                assert_eq!(
                    load(&short).unwrap_err(),
                    beongae_channel::persist::PersistError::Invalid("onion kept apart (missing)")
                );
            }
            *ch = back;
        }
    }
}

/// The onions of HTLCs in flight are kept apart from the record: ours
/// while our `update_add_htlc` may be sent again, the peer's until its HTLC
/// is committed on both sides; then the record names none.
#[test]
fn onions_in_flight_are_kept_apart() {
    let mut p = setup();
    let keys = |ch: &NormalChannel| -> Vec<OnionKey> {
        ch.encode_state_apart()
            .unwrap()
            .1
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    for n in 0..2u8 {
        let h = Preimage([n + 1; 32]).payment_hash();
        let add =
            p.a.send_add(Msat::from_msat(2_000_000), h, 700_000, onion(n + 1))
                .unwrap();
        p.send(true, add);
    }
    let ours = |id| OnionKey { offered: true, id };
    let theirs = |id| OnionKey { offered: false, id };
    assert_eq!(keys(&p.a), [ours(0), ours(1)]);
    let (_, onions) = p.a.encode_state_apart().unwrap();
    assert_eq!(onions[1].1, &onion(2));
    p.restart();
    while p.deliver(false) {}
    assert_eq!(keys(&p.b), [theirs(0), theirs(1)]);
    p.restart();
    p.settle();
    assert_eq!(keys(&p.a), []);
    assert_eq!(keys(&p.b), []);
    let (apart, onions) = p.b.encode_state_apart().unwrap();
    assert!(onions.is_empty());
    assert_eq!(apart.len(), p.b.encode_state().unwrap().len());
}

/// A damaged or newer record is refused with a clear error, never a panic.
#[test]
fn stored_state_refuses_damage() {
    use beongae_channel::persist::PersistError;
    let mut p = setup();
    p.offer(true, 2_000_000, 1);
    p.settle();
    let bytes = p.a.encode_state().unwrap();
    let load =
        |b: &[u8]| NormalChannel::decode_state(b, p.pa.signing(), LocalSecrets::new(p.pa.seed));
    assert!(load(&bytes).is_ok());
    assert!(matches!(load(&[]), Err(PersistError::Decode(_))));
    for cut in [1, 33, bytes.len() / 2, bytes.len() - 1] {
        assert_eq!(
            load(&bytes[..cut]).unwrap_err(),
            if cut == 1 {
                PersistError::Decode(beongae_wire::DecodeError::ShortRead { needed: 8 })
            } else {
                PersistError::Checksum
            },
            "cut at {cut}"
        );
    }
    let mut newer = bytes.clone();
    newer[0] = 4;
    assert_eq!(load(&newer).unwrap_err(), PersistError::Version(4));
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(load(&longer).unwrap_err(), PersistError::Checksum);
    // Every single-byte change is refused: the version byte as an unknown
    // version, any other by the checksum.
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        let expected = if i == 0 {
            PersistError::Version(bytes[0] ^ 0x5a)
        } else {
            PersistError::Checksum
        };
        assert_eq!(load(&b).unwrap_err(), expected, "byte {i}");
    }
}

/// BOLT 2: an "unreasonably large" `update_fee` fails the channel; one within
/// our limit goes through and both sides sign at the new rate.
#[test]
fn update_fee_bounds() {
    let mut p = setup();
    p.b.max_feerate = FeeratePerKw(10_000);
    let high = p.a.send_fee(FeeratePerKw(10_001)).unwrap();
    let high = Message::decode(&high.encode().unwrap()).unwrap();
    assert_eq!(
        p.b.receive(&p.secp, &high),
        Err(ChannelError::FeerateTooHigh {
            got: 10_001,
            max: 10_000
        })
    );
    let mut p = setup();
    let fee = p.a.send_fee(FeeratePerKw(5_000)).unwrap();
    p.send(true, fee);
    p.settle();
    assert_eq!(p.b.commitments.local.feerate, FeeratePerKw(5_000));
    assert_eq!(p.a.commitments.local.feerate, FeeratePerKw(5_000));
    p.check_broadcastable(true);
    p.check_broadcastable(false);
}

mod arbitrary_messages {
    use super::*;
    use beongae_wire::msgs::{
        ChannelReestablish, CommitmentSigned, RevokeAndAck, Shutdown, U16Bytes, UpdateAddHtlc,
        UpdateFailHtlc, UpdateFee, UpdateFulfillHtlc,
    };
    use beongae_wire::TlvStream;
    use proptest::prelude::*;

    /// One message from a peer that may be lying about anything.
    fn message(p: &Pair, kind: u8, x: u64, y: u64, bytes: Vec<u8>) -> Message {
        let id = p.b.channel_id;
        let t = TlvStream::default;
        let point = p.pa.point(&p.secp, CommitmentNumber::new(x % 4).unwrap());
        match kind % 9 {
            0 => Message::UpdateAddHtlc(UpdateAddHtlc {
                channel_id: id,
                id: x % 4,
                amount_msat: y,
                payment_hash: [bytes.first().copied().unwrap_or(0); 32],
                cltv_expiry: (y % 600_000_000) as u32,
                onion_routing_packet: onion(1),
                path_key: None,
                extension: t(),
            }),
            1 => Message::UpdateFulfillHtlc(UpdateFulfillHtlc {
                channel_id: id,
                id: x % 4,
                payment_preimage: [y as u8; 32],
                extension: t(),
            }),
            2 => Message::UpdateFailHtlc(UpdateFailHtlc {
                channel_id: id,
                id: x % 4,
                reason: U16Bytes(bytes),
                extension: t(),
            }),
            3 => Message::UpdateFee(UpdateFee {
                channel_id: id,
                feerate_per_kw: y as u32,
                extension: t(),
            }),
            4 => Message::CommitmentSigned(CommitmentSigned {
                channel_id: id,
                signature: p.b.local_signatures.signature,
                htlc_signatures: vec![p.b.local_signatures.signature; (x % 3) as usize],
                extension: t(),
            }),
            5 => Message::RevokeAndAck(RevokeAndAck {
                channel_id: id,
                per_commitment_secret: [y as u8; 32],
                next_per_commitment_point: point,
                extension: t(),
            }),
            6 => Message::Shutdown(Shutdown {
                channel_id: id,
                scriptpubkey: U16Bytes(bytes),
                extension: t(),
            }),
            7 => Message::ChannelReestablish(ChannelReestablish {
                channel_id: id,
                next_commitment_number: x % 5,
                next_revocation_number: y % 5,
                your_last_per_commitment_secret: [0; 32],
                my_current_per_commitment_point: point,
                extension: t(),
            }),
            _ => Message::UpdateFee(UpdateFee {
                channel_id: ChannelId([x as u8; 32]),
                feerate_per_kw: 253,
                extension: t(),
            }),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever a peer sends, the channel never panics, and a refused
        /// message leaves its stored state byte for byte as it was.
        #[test]
        fn refused_messages_change_nothing(
            msgs in proptest::collection::vec(
                (any::<u8>(), any::<u64>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..40)),
                1..40,
            )
        ) {
            let mut p = setup();
            p.offer(true, 3_000_000, 1);
            p.settle();
            for (kind, x, y, bytes) in msgs {
                let m = message(&p, kind, x, y, bytes);
                let before = p.b.encode_state().unwrap();
                let result = match &m {
                    Message::ChannelReestablish(r) => p.b.receive_reestablish(&p.secp, r).map(|_| ()),
                    other => p.b.receive(&p.secp, other).map(|_| ()),
                };
                if result.is_err() {
                    prop_assert_eq!(p.b.encode_state().unwrap(), before);
                }
            }
        }
    }
}

/// BOLT 2: a fulfil or fail is refused when it arrives if its HTLC is not
/// irrevocably committed in our current commitment, or if the peer already
/// removes it (at any stage), not only at the next `commitment_signed`.
#[test]
fn removals_are_checked_when_they_arrive() {
    use beongae_wire::msgs::{U16Bytes, UpdateFailHtlc, UpdateFulfillHtlc};
    let fulfill = |id: u64, tag: u8| {
        Message::UpdateFulfillHtlc(UpdateFulfillHtlc {
            channel_id: ChannelId([9; 32]),
            id,
            payment_preimage: [tag; 32],
            extension: TlvStream::default(),
        })
    };
    let fail = |id: u64| {
        Message::UpdateFailHtlc(UpdateFailHtlc {
            channel_id: ChannelId([9; 32]),
            id,
            reason: U16Bytes(vec![0; 292]),
            extension: TlvStream::default(),
        })
    };
    let mut p = setup();
    p.offer(true, 3_000_000, 7);
    assert!(p.deliver(false));
    let cs = p.a.sign(&p.secp).unwrap().unwrap();
    p.send(true, cs);
    assert!(p.deliver(false)); // B revokes commitment 0, holds the HTLC
    assert!(p.deliver(true)); // A gets the revocation: in B's commitment only
    assert!(p.a.commitments.remote.htlcs.iter().any(|h| h.id == 0));
    assert!(p.a.commitments.local.htlcs.is_empty());
    // Not yet in A's own commitment: refused at once.
    let before = p.a.encode_state().unwrap();
    for m in [fulfill(0, 7), fail(0)] {
        assert_eq!(
            p.a.receive(&p.secp, &m).unwrap_err(),
            ChannelError::Update(UpdateError::UnknownHtlc(0))
        );
    }
    assert_eq!(p.a.encode_state().unwrap(), before);
    p.settle();
    assert_eq!(p.a.commitments.local.htlcs.len(), 1);

    // Irrevocably committed: the first fulfil is taken, a second (or a
    // fail) of the same HTLC is refused while the first is proposed ...
    p.a.receive(&p.secp, &fulfill(0, 7)).unwrap();
    for m in [fulfill(0, 7), fail(0)] {
        assert_eq!(
            p.a.receive(&p.secp, &m).unwrap_err(),
            ChannelError::Update(UpdateError::AlreadyRemoved(0))
        );
    }
    // ... and once B signed it and A signed back (the signed stage).
    // (B's own fulfil, the one A took above, so that B's signature covers it.)
    p.b.send_fulfill(0, Preimage([7; 32])).unwrap();
    let cs = p.b.sign(&p.secp).unwrap().unwrap();
    let got =
        p.a.receive(&p.secp, &Message::CommitmentSigned(cs))
            .unwrap();
    assert_eq!(names(&got.reply), ["RevokeAndAck"]);
    assert!(p.a.sign(&p.secp).unwrap().is_some());
    assert!(
        p.a.commitments.remote_next.is_some(),
        "A's signature awaits B's revocation"
    );
    assert!(p.a.commitments.remote.htlcs.iter().any(|h| h.id == 0));
    for m in [fulfill(0, 7), fail(0)] {
        assert_eq!(
            p.a.receive(&p.secp, &m).unwrap_err(),
            ChannelError::Update(UpdateError::UnknownHtlc(0))
        );
    }
}
