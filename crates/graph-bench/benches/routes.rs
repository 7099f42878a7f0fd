//! Our router against LDK 0.2.7's on the real mainnet graph snapshot.
//!
//! `cargo bench -p beongae-graph-bench --bench routes`; `BEONGAE_GRAPH` overrides the snapshot path.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beongae_graph::route::{find_route, RouteParams};
use beongae_graph::Graph;
use bitcoin::constants::ChainHash;
use bitcoin::Network;
use lightning::ln::msgs::UnsignedChannelUpdate;
use lightning::routing::gossip::{NetworkGraph, NodeId as LdkNodeId};
use lightning::routing::router::{self as ldk_router, PaymentParameters, RouteParameters};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::types::features::ChannelFeatures;
use lightning::util::logger::{Logger, Record};

const QUERIES: usize = 1_000;
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

struct NoLogger;
impl Logger for NoLogger {
    fn log(&self, _record: Record) {}
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// LDK's graph from ours: same channels, same policies, capacity passed along.
fn build_ldk<'a>(
    graph: &Graph,
    logger: &'a NoLogger,
) -> (NetworkGraph<&'a NoLogger>, usize, usize) {
    let ng = NetworkGraph::new(Network::Bitcoin, logger);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (mut chan_err, mut upd_err) = (0, 0);
    for idx in 0..graph.channel_count() as u32 {
        let Some(ch) = graph.channel(idx) else {
            continue;
        };
        let a = LdkNodeId::from_slice(&graph.node_id(ch.nodes[0]).serialize()).unwrap();
        let b = LdkNodeId::from_slice(&graph.node_id(ch.nodes[1]).serialize()).unwrap();
        let scid = ch.scid.to_u64();
        if ng
            .add_channel_from_partial_announcement(
                scid,
                Some(ch.capacity.to_sat()),
                now,
                ChannelFeatures::empty(),
                a,
                b,
            )
            .is_err()
        {
            chan_err += 1;
            continue;
        }
        for (dir, pol) in ch.policies.iter().enumerate() {
            let Some(p) = pol else { continue };
            let msg = UnsignedChannelUpdate {
                chain_hash: ChainHash::BITCOIN,
                short_channel_id: scid,
                timestamp: now as u32,
                message_flags: 1,
                channel_flags: dir as u8 | (u8::from(p.disabled) << 1),
                cltv_expiry_delta: p.cltv_expiry_delta,
                htlc_minimum_msat: p.htlc_minimum_msat,
                htlc_maximum_msat: p.htlc_maximum_msat,
                fee_base_msat: p.fee_base_msat,
                fee_proportional_millionths: p.fee_proportional_millionths,
                excess_data: vec![],
            };
            if ng.update_channel_unsigned(&msg).is_err() {
                upd_err += 1;
            }
        }
    }
    (ng, chan_err, upd_err)
}

fn main() {
    let path = std::env::var("BEONGAE_GRAPH")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/data/mainnet-graph-2026-02-03.json.gz"
            ))
        });
    if !path.exists() {
        println!(
            "graph snapshot {} not found (set BEONGAE_GRAPH); skipping route benchmark",
            path.display()
        );
        return;
    }
    println!("snapshot: {}", path.display());

    let t = Instant::now();
    let graph = beongae_graph::snapshot::load(&path).unwrap();
    let ours_load = t.elapsed();
    println!(
        "ours: loaded {} nodes, {} channels in {:.1} ms",
        graph.node_count(),
        graph.channel_count(),
        ms(ours_load)
    );

    let (mut policies, mut disabled) = (0usize, 0usize);
    for idx in 0..graph.channel_count() as u32 {
        if let Some(ch) = graph.channel(idx) {
            for p in ch.policies.iter().flatten() {
                policies += 1;
                disabled += usize::from(p.disabled);
            }
        }
    }
    println!("ours: {policies} directed policies, {disabled} of them disabled");

    let logger = NoLogger;
    let t = Instant::now();
    let (ng, chan_err, upd_err) = build_ldk(&graph, &logger);
    let ldk_load = t.elapsed();
    {
        let ro = ng.read_only();
        println!(
            "ldk:  built {} nodes, {} channels in {:.1} ms from our graph (rejected: {} channels, {} updates)",
            ro.nodes().len(),
            ro.channels().len(),
            ms(ldk_load),
            chan_err,
            upd_err
        );
    }
    let scorer =
        ProbabilisticScorer::new(ProbabilisticScoringDecayParameters::default(), &ng, &logger);
    let ldk = Ldk {
        graph: &ng,
        logger: &logger,
        scorer: &scorer,
    };

    // Set 1: payer and payee among all nodes with a channel.
    let any: Vec<u32> = (0..graph.node_count() as u32)
        .filter(|&i| !graph.node_channels(i).is_empty())
        .collect();
    run("any nodes with a channel", &graph, &ldk, &any, &any);

    // Set 2: payer with an enabled outgoing direction, payee with an enabled
    // incoming one (most snapshot nodes have neither: ~35% of directions are null).
    let (mut out, mut inc) = (
        vec![false; graph.node_count()],
        vec![false; graph.node_count()],
    );
    for idx in 0..graph.channel_count() as u32 {
        let Some(ch) = graph.channel(idx) else {
            continue;
        };
        for (dir, p) in ch.policies.iter().enumerate() {
            if p.as_ref().is_some_and(|p| !p.disabled) {
                out[ch.nodes[dir] as usize] = true;
                inc[ch.nodes[1 - dir] as usize] = true;
            }
        }
    }
    let payers: Vec<u32> = any.iter().copied().filter(|&i| out[i as usize]).collect();
    let payees: Vec<u32> = any.iter().copied().filter(|&i| inc[i as usize]).collect();
    run(
        &format!(
            "payer has an enabled outgoing policy ({}), payee an incoming one ({})",
            payers.len(),
            payees.len()
        ),
        &graph,
        &ldk,
        &payers,
        &payees,
    );
}

type Scorer<'a> = ProbabilisticScorer<&'a NetworkGraph<&'a NoLogger>, &'a NoLogger>;

struct Ldk<'a> {
    graph: &'a NetworkGraph<&'a NoLogger>,
    logger: &'a NoLogger,
    scorer: &'a Scorer<'a>,
}

fn run(label: &str, graph: &Graph, ldk_ctx: &Ldk<'_>, payers: &[u32], payees: &[u32]) {
    let score_params = ProbabilisticScoringFeeParameters::default();
    let random_seed_bytes = [7u8; 32];
    let params = RouteParams::default();
    let mut rng = XorShift(SEED);
    let (lo, hi) = ((1_000f64).ln(), (10_000_000f64).ln());

    let (mut ours_t, mut ldk_t) = (Vec::with_capacity(QUERIES), Vec::with_capacity(QUERIES));
    let (mut ours_found, mut ldk_found, mut both) = (0usize, 0usize, 0usize);
    let (mut ours_fees, mut ldk_fees) = (0u128, 0u128);
    // Per amount decade (1k, 10k, 100k, 1M sat): queries, ours found, LDK found.
    let mut decades = [[0usize; 3]; 4];
    let mut ldk_errors: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for _ in 0..QUERIES {
        let payer = payers[rng.below(payers.len())];
        let mut payee = payees[rng.below(payees.len())];
        while payee == payer {
            payee = payees[rng.below(payees.len())];
        }
        let amount_sat = (lo + rng.unit() * (hi - lo)).exp().round() as u64;
        let amount_msat = amount_sat * 1000;
        let (payer_id, payee_id) = (graph.node_id(payer), graph.node_id(payee));

        let t = Instant::now();
        let ours = find_route(graph, &payer_id, &payee_id, amount_msat, &params);
        ours_t.push(t.elapsed());

        let route_params = RouteParameters::from_payment_params_and_value(
            PaymentParameters::from_node_id(payee_id.pubkey(), 18),
            amount_msat,
        );
        let t = Instant::now();
        let ldk = ldk_router::find_route(
            &payer_id.pubkey(),
            &route_params,
            ldk_ctx.graph,
            None,
            ldk_ctx.logger,
            ldk_ctx.scorer,
            &score_params,
            &random_seed_bytes,
        );
        ldk_t.push(t.elapsed());

        let d = ((amount_sat as f64).log10().floor() as usize).clamp(3, 6) - 3;
        decades[d][0] += 1;
        if ours.is_ok() {
            ours_found += 1;
            decades[d][1] += 1;
        }
        match &ldk {
            Ok(_) => {
                ldk_found += 1;
                decades[d][2] += 1;
            }
            Err(e) => *ldk_errors.entry(e).or_default() += 1,
        }
        if let (Ok(o), Ok(l)) = (&ours, &ldk) {
            both += 1;
            ours_fees += u128::from(o.fee_msat());
            ldk_fees += u128::from(l.get_total_fees());
        }
    }

    ours_t.sort();
    ldk_t.sort();
    let row = |name: &str, v: &[Duration], found: usize| {
        println!(
            "  {name}: p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  found {found}/{QUERIES}",
            ms(pct(v, 0.5)),
            ms(pct(v, 0.9)),
            ms(pct(v, 0.99)),
            ms(pct(v, 1.0)),
        );
    };
    println!();
    println!("== {label}");
    println!("  {QUERIES} queries, seed {SEED:#x}, amounts log-uniform 1,000..10,000,000 sat");
    row("ours", &ours_t, ours_found);
    row("ldk ", &ldk_t, ldk_found);
    println!(
        "  ratio ldk/ours: p50 {:.2}x  p99 {:.2}x",
        ms(pct(&ldk_t, 0.5)) / ms(pct(&ours_t, 0.5)),
        ms(pct(&ldk_t, 0.99)) / ms(pct(&ours_t, 0.99)),
    );
    println!(
        "  fees over the {both} routes both found: ours {ours_fees} msat, ldk {ldk_fees} msat (ldk/ours {:.3})",
        ldk_fees as f64 / ours_fees.max(1) as f64
    );
    for (d, [q, o, l]) in decades.iter().enumerate() {
        println!(
            "  amounts 10^{}..10^{} sat: {q} queries, ours found {o}, ldk found {l}",
            d + 3,
            d + 4
        );
    }
    for (e, n) in &ldk_errors {
        println!("  ldk error x{n}: {e}");
    }
}
