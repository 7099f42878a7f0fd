//! Two `NormalChannel`s wired to each other through encoded BOLT 2
//! messages, for the tests that drive a channel through many states.

use std::collections::VecDeque;

use beongae_channel::commitments::Commitments;
use beongae_channel::normal::{Event, NormalChannel};
use beongae_channel::revocation::{LocalSecrets, RemoteRevocations};
use beongae_channel::sign::Owner;
use beongae_script::commitment::CommitmentNumber;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::msgs::{Message, OnionPacketBytes, ONION_PACKET_LEN};
use beongae_wire::{ChannelId, Msat, WireMessage};
use bitcoin::secp256k1::{All, Secp256k1};

use super::{channel, params, Party};

/// The channel type of [`setup`].
pub const CT: ChannelType = ChannelType::Anchors;
/// A's balance in [`setup`] (the funder).
pub const A_SAT: u64 = 700_000;
/// B's balance in [`setup`].
pub const B_SAT: u64 = 300_000;

/// Two channels wired by queues of encoded messages.
pub struct Pair {
    pub secp: Secp256k1<All>,
    pub a: NormalChannel,
    pub b: NormalChannel,
    pub pa: Party,
    pub pb: Party,
    pub to_a: VecDeque<Vec<u8>>,
    pub to_b: VecDeque<Vec<u8>>,
    pub events_a: Vec<Event>,
    pub events_b: Vec<Event>,
}

pub fn onion(tag: u8) -> OnionPacketBytes {
    let mut o = [tag; ONION_PACKET_LEN];
    o[0] = 0;
    OnionPacketBytes(Box::new(o))
}

/// A 700_000 / 300_000 sat anchors channel, both commitment 0s signed.
pub fn setup() -> Pair {
    setup_with(CT, A_SAT, B_SAT)
}

/// A channel of type `ct` with these balances (A the funder), both
/// commitment 0s signed.
pub fn setup_with(ct: ChannelType, a_sat: u64, b_sat: u64) -> Pair {
    let secp = Secp256k1::new();
    let (pa, pb) = (Party::new(&secp, 1), Party::new(&secp, 20));
    let (fa, fb) = (channel(ct, &pa, &pb, true), channel(ct, &pa, &pb, false));
    let f = FeeratePerKw(2500);
    let (a_bal, b_bal) = (Msat::from_msat(a_sat * 1000), Msat::from_msat(b_sat * 1000));
    let ca = Commitments::new(a_bal, b_bal, f, params(ct, true));
    let cb = Commitments::new(b_bal, a_bal, f, params(ct, false));
    let zero = CommitmentNumber::ZERO;
    // funding_created / funding_signed: each signs the other's commitment 0.
    let b_local0 = fb
        .build(&secp, Owner::Local, &cb.local, zero, &pb.point(&secp, zero))
        .unwrap();
    let a_local0 = fa
        .build(&secp, Owner::Local, &ca.local, zero, &pa.point(&secp, zero))
        .unwrap();
    let sig_for_b = fa
        .sign_remote(
            &secp,
            &fa.build(
                &secp,
                Owner::Remote,
                &ca.remote,
                zero,
                &pb.point(&secp, zero),
            )
            .unwrap(),
            &pa.signing(),
        )
        .unwrap();
    let sig_for_a = fb
        .sign_remote(
            &secp,
            &fb.build(
                &secp,
                Owner::Remote,
                &cb.remote,
                zero,
                &pa.point(&secp, zero),
            )
            .unwrap(),
            &pb.signing(),
        )
        .unwrap();
    fb.verify_local(&secp, &b_local0, &sig_for_b).unwrap();
    fa.verify_local(&secp, &a_local0, &sig_for_a).unwrap();
    let id = ChannelId([9; 32]);
    let one = CommitmentNumber::new(1).unwrap();
    let a = NormalChannel::new(
        id,
        fa,
        pa.signing(),
        LocalSecrets::new(pa.seed),
        RemoteRevocations::new(pb.point(&secp, zero), pb.point(&secp, one)),
        ca,
        sig_for_a,
    );
    let b = NormalChannel::new(
        id,
        fb,
        pb.signing(),
        LocalSecrets::new(pb.seed),
        RemoteRevocations::new(pa.point(&secp, zero), pa.point(&secp, one)),
        cb,
        sig_for_b,
    );
    Pair {
        secp,
        a,
        b,
        pa,
        pb,
        to_a: VecDeque::new(),
        to_b: VecDeque::new(),
        events_a: Vec::new(),
        events_b: Vec::new(),
    }
}

impl Pair {
    pub fn send(&mut self, to_b: bool, m: impl WireMessage) {
        let bytes = m.encode().unwrap();
        if to_b {
            self.to_b.push_back(bytes);
        } else {
            self.to_a.push_back(bytes);
        }
    }

    /// Delivers one queued message to `to_a`'s side; replies are queued back.
    pub fn deliver(&mut self, to_a: bool) -> bool {
        let queue = if to_a { &mut self.to_a } else { &mut self.to_b };
        let Some(bytes) = queue.pop_front() else {
            return false;
        };
        let msg = Message::decode(&bytes).unwrap();
        let (ch, events) = if to_a {
            (&mut self.a, &mut self.events_a)
        } else {
            (&mut self.b, &mut self.events_b)
        };
        let got = ch.receive(&self.secp, &msg).unwrap();
        events.extend(got.events);
        for r in got.reply {
            let bytes = r.encode().unwrap();
            if to_a {
                self.to_b.push_back(bytes);
            } else {
                self.to_a.push_back(bytes);
            }
        }
        true
    }

    /// Signs and delivers until both sides are quiet.
    pub fn settle(&mut self) {
        loop {
            let mut moved = false;
            for side_a in [true, false] {
                let ch = if side_a { &mut self.a } else { &mut self.b };
                if let Some(cs) = ch.sign(&self.secp).unwrap() {
                    self.send(side_a, cs);
                    moved = true;
                }
            }
            while self.deliver(true) | self.deliver(false) {
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    pub fn check_broadcastable(&self, a_side: bool) {
        let (ch, me, other) = if a_side {
            (&self.a, &self.pa, &self.pb)
        } else {
            (&self.b, &self.pb, &self.pa)
        };
        super::check_broadcastable(&self.secp, ch, me, other);
    }
}
