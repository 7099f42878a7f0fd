//! Channel throughput: payments settled per second between two
//! `NormalChannel`s in one process (every message encoded and decoded, every
//! commitment built, signed, verified and revoked), next to the bare
//! signature work those payments need.
//!
//! One payment is add → commitment_signed → revoke_and_ack →
//! commitment_signed → revoke_and_ack, then the fulfill and the same dance
//! back: four `commitment_signed` (one commitment signature and, while the
//! HTLC is on it, one HTLC signature each: six signatures), each signed and
//! verified. The baseline does exactly those six ECDSA signs and verifies on
//! 32-byte digests; the rest of the channel's time is key derivation
//! (per-commitment keys and points), transaction building and the codec.
//! The printed ratio is `baseline_time / channel_time` (1.0 = the state
//! machine, transactions and codec cost nothing beyond the signatures).
//!
//! With N payments in flight (N = 1, 10, 100) one signature round covers N
//! HTLCs: fewer commitment signatures, more HTLC signatures.
//!
//! Run: `cargo bench -p beongae-channel --bench payments`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use beongae_channel::commitments::Commitments;
use beongae_channel::normal::{Event, NormalChannel};
use beongae_channel::revocation::{LocalSecrets, RemoteRevocations};
use beongae_channel::sign::Owner;
use beongae_script::commitment::CommitmentNumber;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::msgs::{Message, OnionPacketBytes, ONION_PACKET_LEN};
use beongae_wire::{ChannelId, Msat, Preimage, WireMessage};
use bitcoin::secp256k1::{All, Message as Digest, Secp256k1, SecretKey};
use common::{channel, params, Party};

fn pair(secp: &Secp256k1<All>) -> (NormalChannel, NormalChannel) {
    let ct = ChannelType::Anchors;
    let (pa, pb) = (Party::new(secp, 1), Party::new(secp, 20));
    let (fa, fb) = (channel(ct, &pa, &pb, true), channel(ct, &pa, &pb, false));
    let (x, y) = (Msat::from_msat(700_000_000), Msat::from_msat(300_000_000));
    let f = FeeratePerKw(2500);
    let ca = Commitments::new(x, y, f, params(ct, true));
    let cb = Commitments::new(y, x, f, params(ct, false));
    let zero = CommitmentNumber::ZERO;
    let one = CommitmentNumber::new(1).unwrap();
    let sig_for_a = fb
        .sign_remote(
            secp,
            &fb.build(secp, Owner::Remote, &cb.remote, zero, &pa.point(secp, zero))
                .unwrap(),
            &pb.signing(),
        )
        .unwrap();
    let sig_for_b = fa
        .sign_remote(
            secp,
            &fa.build(secp, Owner::Remote, &ca.remote, zero, &pb.point(secp, zero))
                .unwrap(),
            &pa.signing(),
        )
        .unwrap();
    let id = ChannelId([9; 32]);
    let a = NormalChannel::new(
        id,
        fa,
        pa.signing(),
        LocalSecrets::new(pa.seed),
        RemoteRevocations::new(pb.point(secp, zero), pb.point(secp, one)),
        ca,
        sig_for_a,
    );
    let b = NormalChannel::new(
        id,
        fb,
        pb.signing(),
        LocalSecrets::new(pb.seed),
        RemoteRevocations::new(pa.point(secp, zero), pa.point(secp, one)),
        cb,
        sig_for_b,
    );
    (a, b)
}

/// Exchanges messages until quiet; fulfils incoming HTLCs.
fn pump(secp: &Secp256k1<All>, a: &mut NormalChannel, b: &mut NormalChannel, first: Vec<Message>) {
    let mut queues: [Vec<Vec<u8>>; 2] = [
        Vec::new(),
        first.iter().map(|m| m.encode().unwrap()).collect(),
    ];
    loop {
        let mut moved = false;
        for side in [0usize, 1] {
            let me: &mut NormalChannel = if side == 0 { &mut *a } else { &mut *b };
            let mut out = Vec::new();
            for bytes in std::mem::take(&mut queues[side]) {
                moved = true;
                let got = me.receive(secp, &Message::decode(&bytes).unwrap()).unwrap();
                out.extend(got.reply.iter().map(|m| m.encode().unwrap()));
                for e in got.events {
                    if let Event::IncomingCommitted { id, .. } = e {
                        out.push(
                            me.send_fulfill(id, Preimage([7; 32]))
                                .unwrap()
                                .encode()
                                .unwrap(),
                        );
                    }
                }
            }
            if let Some(cs) = me.sign(secp).unwrap() {
                moved = true;
                out.push(cs.encode().unwrap());
            }
            queues[1 - side].extend(out);
        }
        if !moved {
            return;
        }
    }
}

/// `n` payments, `in_flight` at a time: that many adds go out before the
/// first `commitment_signed`, so one signature round covers them all.
fn channel_payments(n: u32, in_flight: u32) -> f64 {
    let secp = Secp256k1::new();
    let (mut a, mut b) = pair(&secp);
    let onion = OnionPacketBytes(Box::new([0; ONION_PACKET_LEN]));
    let hash = Preimage([7; 32]).payment_hash();
    let start = Instant::now();
    for _ in 0..n / in_flight {
        let adds: Vec<Message> = (0..in_flight)
            .map(|_| {
                a.send_add(Msat::from_msat(1_000_000), hash, 800_000, onion.clone())
                    .unwrap()
                    .into()
            })
            .collect();
        pump(&secp, &mut a, &mut b, adds);
    }
    let t = start.elapsed().as_secs_f64();
    assert_eq!(
        a.commitments.local.to_local,
        Msat::from_msat(700_000_000 - u64::from(n / in_flight * in_flight) * 1_000_000)
    );
    t
}

/// Per payment: 4 commitment signatures and 2 HTLC signatures (the HTLC is
/// on the two commitments signed while it is pending, not on the two
/// signed after its removal), each signed once and verified once.
fn baseline(n: u32) -> f64 {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[3; 32]).unwrap();
    let public = key.public_key(&secp);
    let start = Instant::now();
    for i in 0..n * 6 {
        let mut d = [0u8; 32];
        d[..4].copy_from_slice(&i.to_be_bytes());
        let msg = Digest::from_digest(d);
        let sig = secp.sign_ecdsa(&msg, &key);
        secp.verify_ecdsa(&msg, &sig, &public).unwrap();
        black_box(sig);
    }
    start.elapsed().as_secs_f64()
}

fn main() {
    let n = 300;
    channel_payments(20, 1); // warm up
    let t_base = baseline(n);
    for in_flight in [1, 10, 100] {
        let t_channel = channel_payments(n, in_flight);
        println!(
            "{n} payments, {in_flight} in flight: {:.0} payments/s ({:.2} ms each); bare signatures of one-at-a-time payments {:.2} ms each; ratio baseline/channel {:.3}",
            f64::from(n) / t_channel,
            t_channel * 1000.0 / f64::from(n),
            t_base * 1000.0 / f64::from(n),
            t_base / t_channel
        );
    }
}
