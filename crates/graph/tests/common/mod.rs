//! Helpers shared by the route tests: node ids from one byte, policies,
//! channels, and a check of every hop of a route.

#![allow(dead_code)]

use beongae_graph::route::{Route, RouteParams};
use beongae_graph::{Graph, Policy};
use beongae_wire::{NodeId, ShortChannelId};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::Amount;

pub fn node(b: u8) -> NodeId {
    NodeId::from_pubkey(PublicKey::from_secret_key(
        &Secp256k1::signing_only(),
        &SecretKey::from_slice(&[b; 32]).unwrap(),
    ))
}

pub fn policy(base: u32, ppm: u32, delta: u16, max: u64) -> Policy {
    Policy {
        fee_base_msat: base,
        fee_proportional_millionths: ppm,
        cltv_expiry_delta: delta,
        htlc_minimum_msat: 1,
        htlc_maximum_msat: max,
        timestamp: 1,
        disabled: false,
    }
}

/// A channel `a`-`b` with the same policy both ways.
pub fn link(g: &mut Graph, n: u32, a: u8, b: u8, sat: u64, p: Policy) {
    let (x, y) = if node(a).serialize() < node(b).serialize() {
        (a, b)
    } else {
        (b, a)
    };
    let idx = g
        .add_channel_unchecked(
            ShortChannelId::new(n, 0, 0).unwrap(),
            node(x),
            node(y),
            Amount::from_sat(sat),
            0,
        )
        .unwrap();
    g.set_policy_unchecked(idx, 0, Some(p));
    g.set_policy_unchecked(idx, 1, Some(p));
}

/// Every hop: amounts and CLTVs exactly as each node needs them.
pub fn check(g: &Graph, payer: u8, r: &Route, amount: u64, params: &RouteParams) {
    assert!(!r.hops.is_empty() && r.hops.len() <= params.max_hops);
    let last = r.hops.last().unwrap();
    assert_eq!(last.amount_msat, amount);
    assert_eq!(
        last.cltv_expiry_delta,
        params.final_cltv_expiry_delta + r.shadow_cltv_delta
    );
    let mut from = node(payer);
    for (i, h) in r.hops.iter().enumerate() {
        let c = g.channel_by_scid(h.short_channel_id).unwrap();
        let ends = [g.node_id(c.nodes[0]), g.node_id(c.nodes[1])];
        assert!(
            ends.contains(&from) && ends.contains(&h.node_id),
            "hop {i} joins its nodes"
        );
        // The payer's own direction may lack a policy (it needs none).
        match c.policies[usize::from(ends[1] == from)].filter(|p| !p.disabled) {
            Some(p) => {
                assert!(
                    h.amount_msat >= p.htlc_minimum_msat && h.amount_msat <= p.htlc_maximum_msat
                )
            }
            None => assert_eq!(i, 0, "hop {i} needs its sender's policy"),
        }
        assert!(h.amount_msat <= c.capacity.to_sat() * 1000);
        if let Some(next) = r.hops.get(i + 1) {
            // The node after this hop forwards `next` under its own policy.
            let nc = g.channel_by_scid(next.short_channel_id).unwrap();
            let nends = [g.node_id(nc.nodes[0]), g.node_id(nc.nodes[1])];
            let np = nc.policies[usize::from(nends[1] == h.node_id)].unwrap();
            let fee = u64::from(np.fee_base_msat)
                + next.amount_msat * u64::from(np.fee_proportional_millionths) / 1_000_000;
            assert_eq!(h.amount_msat, next.amount_msat + fee, "hop {i} amount");
            assert_eq!(
                h.cltv_expiry_delta,
                next.cltv_expiry_delta + u32::from(np.cltv_expiry_delta),
                "hop {i} cltv"
            );
        }
        from = h.node_id;
    }
    assert!(r.hops[0].cltv_expiry_delta <= params.max_total_cltv_expiry_delta);
}

/// A xorshift generator, for reproducible random graphs and queries.
pub struct Rng(pub u64);

impl Rng {
    /// A number below `m`.
    pub fn below(&mut self, m: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % m
    }
}

/// 60 nodes (`node(1)`..`node(60)`), up to 240 channels with random
/// capacities and policies; a fifth of the second directions have none.
pub fn random_graph(rng: &mut Rng) -> Graph {
    let mut rnd = |m: u64| rng.below(m);
    let mut g = Graph::new(beongae_wire::ChainHash::BITCOIN);
    for n in 0..240u32 {
        let a = 1 + rnd(60) as u8;
        let b = 1 + rnd(60) as u8;
        if a == b {
            continue;
        }
        let p = policy(
            rnd(2_000) as u32,
            rnd(3_000) as u32,
            6 + rnd(140) as u16,
            1_000 + rnd(2_000_000_000),
        );
        let (lo, hi) = if node(a).serialize() < node(b).serialize() {
            (a, b)
        } else {
            (b, a)
        };
        let idx = g
            .add_channel_unchecked(
                ShortChannelId::new(n + 1, 0, 0).unwrap(),
                node(lo),
                node(hi),
                Amount::from_sat(10_000 + rnd(5_000_000)),
                0,
            )
            .unwrap();
        g.set_policy_unchecked(idx, 0, Some(p));
        let q = policy(
            rnd(2_000) as u32,
            rnd(3_000) as u32,
            6 + rnd(140) as u16,
            1_000 + rnd(2_000_000_000),
        );
        g.set_policy_unchecked(idx, 1, (rnd(5) > 0).then_some(q));
    }
    g
}
