//! Our router against LDK 0.2.7's on the real mainnet graph snapshot.
//!
//! `cargo bench -p beongae-graph-bench --bench routes`; `BEONGAE_GRAPH` overrides the snapshot path.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use beongae_graph::route::{find_route, RouteParams};
use beongae_graph::Graph;
use common::{build_ldk, live_bytes, mib, ms, pct, peak_rss, NoLogger, XorShift};
use lightning::routing::gossip::NetworkGraph;
use lightning::routing::router::{self as ldk_router, PaymentParameters, RouteParameters};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};

const QUERIES: usize = 1_000;
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

fn main() {
    let Some(path) = common::snapshot_or_skip("route") else {
        return;
    };

    let live = live_bytes();
    let t = Instant::now();
    let graph = beongae_graph::snapshot::load(&path).unwrap();
    let ours_load = t.elapsed();
    println!(
        "ours: loaded {} nodes, {} channels in {:.1} ms",
        graph.node_count(),
        graph.channel_count(),
        ms(ours_load)
    );
    println!(
        "ours: graph heap {} (live bytes after load minus before; the file and the decompressed JSON are freed)",
        mib(live_bytes() - live)
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
    let live = live_bytes();
    let t = Instant::now();
    let (ng, chan_err, upd_err) = build_ldk(&graph, &logger);
    let ldk_load = t.elapsed();
    let ldk_heap = live_bytes() - live;
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
    println!(
        "ldk:  NetworkGraph heap {} (of which {} reserved when empty; {})",
        mib(ldk_heap),
        mib(common::ldk_empty_graph_heap()),
        common::ldk_record_sizes()
    );
    let live = live_bytes();
    let scorer =
        ProbabilisticScorer::new(ProbabilisticScoringDecayParameters::default(), &ng, &logger);
    println!(
        "ldk:  ProbabilisticScorer heap {} (fresh: it grows with payment results, none here)",
        mib(live_bytes() - live)
    );
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
    let (payers, payees) = common::senders_and_receivers(&graph);
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
    if let Some(rss) = peak_rss() {
        println!();
        println!("process peak RSS (VmHWM): {}", mib(rss));
    }
}

type Scorer<'a> = ProbabilisticScorer<&'a NetworkGraph<&'a NoLogger>, &'a NoLogger>;

struct Ldk<'a> {
    graph: &'a NetworkGraph<&'a NoLogger>,
    logger: &'a NoLogger,
    scorer: &'a Scorer<'a>,
}

/// The chance a path gets through when every channel's balance is uniform
/// in `[0, capacity]` (the reliability simulator's network): the product
/// over hops of `(capacity + 1 - amount) / (capacity + 1)`.
fn prior_probability(graph: &Graph, hops: &[(u64, u64)]) -> f64 {
    hops.iter()
        .map(|&(scid, amount)| {
            let ch = graph
                .channel_by_scid(beongae_wire::ShortChannelId::from_u64(scid))
                .unwrap();
            let cap = ch.capacity.to_sat() as f64 * 1_000.0;
            ((cap + 1.0 - amount as f64) / (cap + 1.0)).max(0.0)
        })
        .product()
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
    let (mut ours_p, mut ldk_p) = (0f64, 0f64);
    // Routes where one router's is no dearer and no less likely, and better in one.
    let (mut ours_better, mut ldk_better) = (0usize, 0usize);
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
        // LDK's default fee cap, for both.
        let capped = RouteParams {
            max_fee_msat: Some(amount_msat / 100 + 50_000),
            ..params.clone()
        };
        let ours = find_route(graph, &payer_id, &payee_id, amount_msat, &capped);
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
            let ours_amounts: Vec<(u64, u64)> = o
                .hops
                .iter()
                .map(|h| (h.short_channel_id.to_u64(), h.amount_msat))
                .collect();
            let path = &l.paths[0];
            let mut carried: u64 = path.hops.iter().map(|h| h.fee_msat).sum();
            let ldk_amounts: Vec<(u64, u64)> = path
                .hops
                .iter()
                .map(|h| {
                    let a = carried;
                    carried -= h.fee_msat;
                    (h.short_channel_id, a)
                })
                .collect();
            let (op, lp) = (
                prior_probability(graph, &ours_amounts),
                prior_probability(graph, &ldk_amounts),
            );
            ours_p += op;
            ldk_p += lp;
            let (of, lf) = (o.fee_msat(), l.get_total_fees());
            if of <= lf && op >= lp && (of < lf || op > lp) {
                ours_better += 1;
            } else if lf <= of && lp >= op && (lf < of || lp > op) {
                ldk_better += 1;
            }
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
    println!(
        "  mean success probability of those routes with balances uniform in [0, capacity]: ours {:.3}, ldk {:.3}",
        ours_p / both.max(1) as f64,
        ldk_p / both.max(1) as f64
    );
    println!(
        "  routes no dearer and no less likely than the other's (and better in one): ours {ours_better}, ldk {ldk_better}"
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
