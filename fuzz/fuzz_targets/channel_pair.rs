//! A stateful target in the manner of LDK's `chanmon_consistency`: two
//! BOLT 2 channel state machines (`beongae-channel`), wired by queues of
//! encoded messages, driven by fuzz-chosen operations: HTLCs added,
//! fulfilled and failed by either side, fee updates, commitments signed,
//! messages delivered one at a time and in any interleaving of the two
//! directions, disconnections (with `channel_reestablish`) and restarts
//! from the stored state.
//!
//! Properties checked:
//! - an honest peer's message is never refused (`receive` and
//!   `receive_reestablish` never fail): both sides stay consistent through
//!   every schedule;
//! - a channel's state survives its encoding (a restart);
//! - once both sides sign and deliver until quiet, each side's commitment
//!   is the mirror of the other's (balances, HTLCs, feerate), the
//!   balances and HTLCs add up to the capacity less the funder's fee, and
//!   each side's latest commitment, signed by both, spends the funding
//!   output under libbitcoinconsensus.

#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../crates/channel/tests/common/mod.rs"]
mod common;

use beongae_channel::normal::NormalChannel;
use beongae_channel::revocation::LocalSecrets;
use beongae_script::FeeratePerKw;
use beongae_wire::msgs::Message;
use beongae_wire::{Msat, Preimage};
use common::pair::{onion, setup, Pair};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut p = setup();
    let mut it = data.iter().copied();
    let mut added = 0u8;
    while let Some(op) = it.next() {
        let a = op & 1 == 0;
        match op >> 1 {
            0 => {
                let sat = u64::from(it.next().unwrap_or(1)) << 8 | u64::from(it.next().unwrap_or(0));
                added = added.wrapping_add(1);
                let hash = Preimage([added; 32]).payment_hash();
                let ch = side(&mut p, a);
                // Refused locally (limits, reserve, shutting down) is fine.
                if let Ok(m) = ch.send_add(Msat::from_msat(sat * 1_000 + 1), hash, 500_000, onion(added)) {
                    p.send(a, m);
                }
            }
            1 => sign(&mut p, a),
            2 => {
                deliver(&mut p, a);
            }
            3 => {
                let ch = side(&mut p, a);
                if let Some((id, hash, _)) = ch.unresolved_incoming().first().copied() {
                    let preimage = common::preimage_of(hash);
                    if let Ok(m) = ch.send_fulfill(id, preimage) {
                        p.send(a, m);
                    }
                }
            }
            4 => {
                let ch = side(&mut p, a);
                if let Some((id, _, _)) = ch.unresolved_incoming().last().copied() {
                    if let Ok(m) = ch.send_fail(id, vec![op; 300]) {
                        p.send(a, m);
                    }
                }
            }
            5 => {
                // Only the funder (A) sends update_fee.
                let rate = 253 + u32::from(it.next().unwrap_or(0)) * 40;
                if let Ok(m) = p.a.send_fee(FeeratePerKw(rate)) {
                    p.send(true, m);
                }
            }
            6 => reconnect(&mut p),
            7 => {
                restart(&mut p, a);
                reconnect(&mut p);
            }
            _ => while deliver(&mut p, true) | deliver(&mut p, false) {},
        }
    }
    // Quiet: everything signed and delivered (a lost message is sent
    // again after a reconnection).
    reconnect(&mut p);
    for _ in 0..20 {
        sign(&mut p, true);
        sign(&mut p, false);
        let mut moved = false;
        while deliver(&mut p, true) | deliver(&mut p, false) {
            moved = true;
        }
        if !moved && p.to_a.is_empty() && p.to_b.is_empty() {
            break;
        }
    }
    // A spec describes its owner's commitment (`to_local` the owner's): A's
    // own and the one B holds of A's are the same transaction, and the
    // other way round.
    let (ca, cb) = (&p.a.commitments, &p.b.commitments);
    assert_eq!(ca.local, cb.remote, "A's commitment, as both see it");
    assert_eq!(ca.remote, cb.local, "B's commitment, as both see it");
    assert_eq!(ca.local.to_local, ca.remote.to_remote, "A's balance in both commitments");
    assert_eq!(ca.local.to_remote, ca.remote.to_local, "B's balance in both commitments");
    let htlcs: u64 = ca.local.htlcs.iter().map(|h| h.amount.to_msat()).sum();
    assert!(
        ca.local.to_local.to_msat() + ca.local.to_remote.to_msat() + htlcs
            <= common::FUNDING.to_sat() * 1_000,
        "more than the capacity"
    );
    p.check_broadcastable(true);
    p.check_broadcastable(false);
});

fn side(p: &mut Pair, a: bool) -> &mut NormalChannel {
    if a {
        &mut p.a
    } else {
        &mut p.b
    }
}

fn sign(p: &mut Pair, a: bool) {
    let secp = p.secp.clone();
    match side(p, a).sign(&secp) {
        Ok(Some(cs)) => p.send(a, cs),
        Ok(None) => {}
        // Nothing to sign, or waiting for a revocation, are `None`; an
        // error is a commitment it cannot build.
        Err(e) => panic!("{} cannot sign: {e}", if a { "A" } else { "B" }),
    }
}

/// Delivers one message to A (`to_a`) or B; a refusal is a bug: both
/// sides are honest.
fn deliver(p: &mut Pair, to_a: bool) -> bool {
    let queue = if to_a { &mut p.to_a } else { &mut p.to_b };
    let Some(bytes) = queue.pop_front() else {
        return false;
    };
    let msg = Message::decode(&bytes).expect("our own message decodes");
    let secp = p.secp.clone();
    let got = side(p, to_a)
        .receive(&secp, &msg)
        .unwrap_or_else(|e| panic!("{} refused {}: {e}", if to_a { "A" } else { "B" }, msg.name()));
    for r in got.reply {
        let bytes = r.encode().expect("a reply encodes");
        if to_a {
            p.to_b.push_back(bytes);
        } else {
            p.to_a.push_back(bytes);
        }
    }
    true
}

/// The connection drops (what is in flight is lost) and comes back: both
/// send `channel_reestablish`, and each sends again what the other missed.
fn reconnect(p: &mut Pair) {
    p.to_a.clear();
    p.to_b.clear();
    p.a.on_disconnect();
    p.b.on_disconnect();
    let secp = p.secp.clone();
    let (ra, rb) = (p.a.reestablish(&secp), p.b.reestablish(&secp));
    let again_a = p
        .a
        .receive_reestablish(&secp, &rb)
        .unwrap_or_else(|e| panic!("A refused B's channel_reestablish: {e}"));
    let again_b = p
        .b
        .receive_reestablish(&secp, &ra)
        .unwrap_or_else(|e| panic!("B refused A's channel_reestablish: {e}"));
    for m in again_a {
        p.to_b.push_back(m.encode().expect("encodes"));
    }
    for m in again_b {
        p.to_a.push_back(m.encode().expect("encodes"));
    }
}

/// A side restarts from its stored state (secrets derived again).
fn restart(p: &mut Pair, a: bool) {
    let party = if a { &p.pa } else { &p.pb };
    let (signing, seed) = (party.signing(), party.seed);
    let ch = side(p, a);
    let stored = ch.encode_state().expect("a channel encodes");
    let back = NormalChannel::decode_state(&stored, signing, LocalSecrets::new(seed))
        .expect("a stored channel decodes");
    assert_eq!(back.encode_state().expect("encodes"), stored, "state lost in a restart");
    *ch = back;
}
