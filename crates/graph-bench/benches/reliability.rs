//! The payment-reliability simulator: our router and scorer against LDK
//! 0.2.7's `find_route` with its `ProbabilisticScorer`, on the mainnet
//! snapshot with a seeded random balance in every channel.
//!
//! Each payer knows the balances of its own channels (both routers get them
//! as first hops, as a node's channel manager would give them).
//! Each router gets its own copy of the same network and pays the same
//! seeded payments, one after another (a minute apart). A part of a payment
//! fails at the first hop whose sender's balance is short; the router's
//! scorer is told (BOLT 4 `temporary_channel_failure` at that channel) and
//! the rest of the amount is routed again, up to 10 rounds. Parts that got
//! through are held (their liquidity stays taken and is counted as in
//! flight) until the whole amount has arrived; then every part settles and
//! its amounts move across their channels, else they are all released.
//! Multi-part payments are allowed for both, with LDK's fee cap (1% +
//! 50 sat) for both.
//!
//! `cargo bench -p beongae-graph-bench --bench reliability`; `BEONGAE_GRAPH`
//! overrides the snapshot path, `BEONGAE_PAYMENTS` the payments per amount
//! range (1,000) and `BEONGAE_RANGE=0..3` runs one range only.
#![allow(clippy::unwrap_used, missing_docs)]

#[allow(dead_code)] // the memory helpers are for the other benches
mod common;

use std::time::{Duration, Instant};

use beongae_graph::route::{FirstHop, RouteParams, Router};
use beongae_graph::{Graph, InFlight, Route, Scorer, ScorerParams};
use beongae_wire::NodeId;
use common::{build_ldk, ms, NoLogger, XorShift};
use lightning::ln::channel_state::{ChannelCounterparty, ChannelDetails};
use lightning::ln::types::ChannelId;
use lightning::routing::gossip::NetworkGraph;
use lightning::routing::router::{
    self as ldk_router, InFlightHtlcs, Path, PaymentParameters, RouteParameters,
    ScorerAccountingForInFlightHtlcs,
};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
    ScoreUpdate,
};
use lightning::types::features::InitFeatures;

const SEED: u64 = 0x005E_ED0F_BA1A_4CE5;
const MAX_ROUNDS: usize = 10;
/// Simulated seconds between payments.
const STEP_SECS: u64 = 60;
/// The simulation's clock starts here (seconds since the epoch, for LDK).
const EPOCH: u64 = 1_770_000_000;

/// Liquidity of each channel direction, in msat (`2 * index + direction`).
#[derive(Clone)]
struct Balances(Vec<u64>);

impl Balances {
    /// A uniform random split of every channel's capacity.
    fn seeded(graph: &Graph, seed: u64) -> Self {
        let mut rng = XorShift(seed);
        let mut v = vec![0u64; 2 * graph.channel_count()];
        for idx in 0..graph.channel_count() as u32 {
            if let Some(ch) = graph.channel(idx) {
                let cap = ch.capacity.to_sat() * 1_000;
                let a = (rng.unit() * cap as f64) as u64;
                v[2 * idx as usize] = a;
                v[2 * idx as usize + 1] = cap - a;
            }
        }
        Balances(v)
    }
}

/// Each hop of a path as (channel index, direction, amount).
type Hops = Vec<(u32, usize, u64)>;

/// Sends a path: takes each hop's amount from its sender's side, or stops
/// at the first hop that is short (nothing taken) and returns its index.
fn send(b: &mut Balances, hops: &Hops) -> Result<(), usize> {
    if let Some(i) = hops
        .iter()
        .position(|&(c, d, a)| b.0[2 * c as usize + d] < a)
    {
        return Err(i);
    }
    for &(c, d, a) in hops {
        b.0[2 * c as usize + d] -= a;
    }
    Ok(())
}

/// Releases a held path (its amounts go back) or settles it (they move to
/// the other side).
fn finish(b: &mut Balances, hops: &Hops, settle: bool) {
    for &(c, d, a) in hops {
        let side = if settle { 1 - d } else { d };
        b.0[2 * c as usize + side] += a;
    }
}

/// 0: the payer's own channel, 2: the payee's, 1: in between.
fn position(at: usize, len: usize) -> usize {
    if at == 0 {
        0
    } else if at + 1 == len {
        2
    } else {
        1
    }
}

/// The payer's channels with what it can send on each now (its node knows
/// its own balances; held parts are already taken from them).
fn our_first_hops(graph: &Graph, b: &Balances, payer: NodeId) -> Vec<FirstHop> {
    let me = graph.node(&payer).unwrap();
    graph
        .node_channels(me)
        .iter()
        .filter_map(|&ci| {
            let ch = graph.channel(ci)?;
            let d = usize::from(ch.nodes[1] == me);
            Some(FirstHop {
                short_channel_id: ch.scid,
                node_id: graph.node_id(ch.nodes[1 - d]),
                outbound_msat: b.0[2 * ci as usize + d],
                htlc_minimum_msat: 1,
            })
        })
        .collect()
}

/// The same for LDK, as its `ChannelManager::list_usable_channels` would
/// give them.
fn ldk_first_hops(graph: &Graph, b: &Balances, payer: NodeId) -> Vec<ChannelDetails> {
    our_first_hops(graph, b, payer)
        .into_iter()
        .map(|h| {
            let idx = graph.channel_index(h.short_channel_id).unwrap();
            let cap = graph.channel(idx).unwrap().capacity.to_sat();
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&h.short_channel_id.to_u64().to_be_bytes());
            ChannelDetails {
                channel_id: ChannelId(id),
                counterparty: ChannelCounterparty {
                    node_id: h.node_id.pubkey(),
                    features: InitFeatures::empty(),
                    unspendable_punishment_reserve: 0,
                    forwarding_info: None,
                    outbound_htlc_minimum_msat: None,
                    outbound_htlc_maximum_msat: None,
                },
                funding_txo: None,
                channel_type: None,
                short_channel_id: Some(h.short_channel_id.to_u64()),
                outbound_scid_alias: None,
                inbound_scid_alias: None,
                channel_value_satoshis: cap,
                unspendable_punishment_reserve: None,
                user_channel_id: 0,
                outbound_capacity_msat: h.outbound_msat,
                next_outbound_htlc_limit_msat: h.outbound_msat,
                next_outbound_htlc_minimum_msat: h.htlc_minimum_msat,
                inbound_capacity_msat: cap * 1_000 - h.outbound_msat,
                confirmations_required: None,
                confirmations: Some(6),
                force_close_spend_delay: None,
                is_outbound: true,
                is_channel_ready: true,
                channel_shutdown_state: None,
                is_usable: true,
                is_announced: true,
                inbound_htlc_minimum_msat: None,
                inbound_htlc_maximum_msat: None,
                config: None,
                pending_inbound_htlcs: Vec::new(),
                pending_outbound_htlcs: Vec::new(),
                funding_redeem_script: None,
                feerate_sat_per_1000_weight: None,
            }
        })
        .collect()
}

fn our_hops(graph: &Graph, payer: NodeId, r: &Route) -> Hops {
    let mut from = graph.node(&payer).unwrap();
    r.hops
        .iter()
        .map(|h| {
            let idx = graph.channel_index(h.short_channel_id).unwrap();
            let ch = graph.channel(idx).unwrap();
            let d = usize::from(ch.nodes[1] == from);
            from = ch.nodes[1 - d];
            (idx, d, h.amount_msat)
        })
        .collect()
}

fn ldk_hops(graph: &Graph, payer: NodeId, p: &Path) -> Hops {
    let mut from = graph.node(&payer).unwrap();
    // LDK's `fee_msat` is what each hop's node charges (the last hop's is
    // the amount delivered): a channel carries the sum from its hop on.
    let mut carried: u64 = p.hops.iter().map(|h| h.fee_msat).sum();
    p.hops
        .iter()
        .map(|h| {
            let scid = beongae_wire::ShortChannelId::from_u64(h.short_channel_id);
            let idx = graph.channel_index(scid).unwrap();
            let ch = graph.channel(idx).unwrap();
            let d = usize::from(ch.nodes[1] == from);
            from = ch.nodes[1 - d];
            let amount = carried;
            carried -= h.fee_msat;
            (idx, d, amount)
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    payments: usize,
    succeeded: usize,
    rounds: usize,
    parts_sent: usize,
    fees_msat: u128,
    paid_msat: u128,
    no_route: usize,
    /// Of which at the first round.
    no_route_first: usize,
    /// Rounds of the payments that succeeded.
    success_rounds: usize,
    route_time: Duration,
    /// Parts that failed at the payer's channel, in between, at the payee's.
    failed_at: [usize; 3],
    /// Per payment: the rounds it took if it succeeded.
    outcome: Vec<Option<usize>>,
}

impl Tally {
    fn row(&self, name: &str) {
        println!(
            "  {name}: success {:>5.1}% ({}/{})  rounds/payment {:.2} (successful ones {:.2})  parts sent/payment {:.2}  fees {:.0} ppm of the amount paid  no route {} (at once {})  routing {:.1} ms/payment",
            100.0 * self.succeeded as f64 / self.payments as f64,
            self.succeeded,
            self.payments,
            self.rounds as f64 / self.payments as f64,
            self.success_rounds as f64 / self.succeeded.max(1) as f64,
            self.parts_sent as f64 / self.payments as f64,
            self.fees_msat as f64 * 1e6 / self.paid_msat.max(1) as f64,
            self.no_route,
            self.no_route_first,
            ms(self.route_time) / self.payments as f64,
        );
        println!(
            "        parts failed at the payer's channel {}, in between {}, at the payee's {}",
            self.failed_at[0], self.failed_at[1], self.failed_at[2]
        );
    }
}

fn main() {
    let Some(path) = common::snapshot_or_skip("reliability") else {
        return;
    };
    let per_range: usize = std::env::var("BEONGAE_PAYMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let graph = beongae_graph::snapshot::load(&path).unwrap();
    let logger = NoLogger;
    let (ng, _, _) = build_ldk(&graph, &logger);
    println!(
        "snapshot {}: {} nodes, {} channels; balances uniform in [0, capacity], seed {SEED:#x}",
        path.display(),
        graph.node_count(),
        graph.channel_count()
    );

    // Payers with an enabled outgoing direction, payees with an incoming one.
    let (payers, payees) = common::senders_and_receivers(&graph);

    let ranges: [(u64, u64); 4] = [
        (1_000, 10_000),
        (10_000, 100_000),
        (100_000, 1_000_000),
        (1_000_000, 10_000_000),
    ];
    let only: Option<usize> = std::env::var("BEONGAE_RANGE")
        .ok()
        .and_then(|v| v.parse().ok());
    for (i, (lo, hi)) in ranges.into_iter().enumerate() {
        if only.is_some_and(|k| k != i) {
            continue;
        }
        let mut rng = XorShift(SEED ^ (i as u64 + 1));
        let payments: Vec<(NodeId, NodeId, u64)> = std::iter::repeat(())
            .map(|_| {
                let a = payers[rng.below(payers.len())];
                let mut b = payees[rng.below(payees.len())];
                while b == a {
                    b = payees[rng.below(payees.len())];
                }
                let (l, h) = ((lo as f64).ln(), (hi as f64).ln());
                let sat = (l + rng.unit() * (h - l)).exp().round() as u64;
                (a, b, sat * 1_000)
            })
            .filter(|&(a, b, amount)| feasible(&graph, a, b, amount))
            .map(|(a, b, amount)| (graph.node_id(a), graph.node_id(b), amount))
            .take(per_range)
            .collect();
        println!();
        println!(
            "== {} payments of {lo}..{hi} sat (log-uniform) between nodes with a path that could carry them",
            payments.len()
        );
        let ours = simulate(
            &graph,
            &payments,
            &mut Ours {
                graph: &graph,
                scorer: Scorer::new(ScorerParams::default()),
                in_flight: InFlight::new(),
                now: 0,
            },
        );
        ours.row("ours");
        let ldk = simulate(
            &graph,
            &payments,
            &mut Ldk {
                graph: &graph,
                ng: &ng,
                logger: &logger,
                scorer: ProbabilisticScorer::new(
                    ProbabilisticScoringDecayParameters::default(),
                    &ng,
                    &logger,
                ),
                fee_params: ProbabilisticScoringFeeParameters::default(),
                in_flight: InFlightHtlcs::new(),
                failed_channels: Vec::new(),
                now: Duration::ZERO,
            },
        );
        ldk.row("ldk ");
        let both: Vec<(usize, usize)> = ours
            .outcome
            .iter()
            .zip(&ldk.outcome)
            .filter_map(|(o, l)| Some(((*o)?, (*l)?)))
            .collect();
        let (o, l) = both.iter().fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
        println!(
            "  success ours/ldk {:.3}; over the {} payments both made: rounds ours {:.3}, ldk {:.3}",
            ours.succeeded as f64 / ldk.succeeded.max(1) as f64,
            both.len(),
            o as f64 / both.len().max(1) as f64,
            l as f64 / both.len().max(1) as f64,
        );
    }
}

/// Whether some path from `a` to `b` has every direction enabled and able
/// to carry `amount` (under its `htlc_maximum_msat` and capacity): payments
/// without one are not drawn, since no router could pay them.
fn feasible(graph: &Graph, a: u32, b: u32, amount: u64) -> bool {
    let mut seen = vec![false; graph.node_count()];
    let mut queue = std::collections::VecDeque::from([a]);
    seen[a as usize] = true;
    while let Some(u) = queue.pop_front() {
        if u == b {
            return true;
        }
        for &ci in graph.node_channels(u) {
            let Some(ch) = graph.channel(ci) else {
                continue;
            };
            let d = usize::from(ch.nodes[1] == u);
            let ok = ch.policies[d].is_some_and(|p| {
                !p.disabled && amount >= p.htlc_minimum_msat && amount <= p.htlc_maximum_msat
            }) && amount <= ch.capacity.to_sat() * 1_000;
            let v = ch.nodes[1 - d];
            if ok && !seen[v as usize] {
                seen[v as usize] = true;
                queue.push_back(v);
            }
        }
    }
    false
}

fn fee_cap(amount_msat: u64) -> u64 {
    amount_msat / 100 + 50_000
}

/// One payment attempt's parameters.
struct Query {
    payer: NodeId,
    payee: NodeId,
    /// What is still to be paid.
    amount: u64,
    /// Fees the remaining parts may still cost.
    fee_max: u64,
    /// The payment's and the round's numbers (for seeds).
    n: usize,
    round: usize,
}

/// What the simulator needs of a router and its scorer.
trait Sim {
    /// A path as the router returns it.
    type Part;
    /// A new payment starts at `now` (seconds): nothing is in flight.
    fn start(&mut self, now: u64);
    /// The parts for `q`, or `None` if no route.
    fn find(&mut self, b: &Balances, q: &Query) -> Option<Vec<Self::Part>>;
    /// The part's hops, and what it delivers and costs in fees.
    fn hops(&self, payer: NodeId, part: &Self::Part) -> (Hops, u64, u64);
    /// The part got through and is held until the payment completes.
    fn held(&mut self, payer: NodeId, part: &Self::Part);
    /// The part failed at hop `at`.
    fn failed(&mut self, payer: NodeId, part: &Self::Part, at: usize);
    /// The payment completed: the part settled.
    fn succeeded(&mut self, payer: NodeId, part: &Self::Part);
}

fn simulate<S: Sim>(graph: &Graph, payments: &[(NodeId, NodeId, u64)], sim: &mut S) -> Tally {
    let mut balances = Balances::seeded(graph, SEED);
    let mut t = Tally::default();
    for (n, &(payer, payee, amount)) in payments.iter().enumerate() {
        sim.start(EPOCH + n as u64 * STEP_SECS);
        t.payments += 1;
        let mut held: Vec<(S::Part, Hops)> = Vec::new();
        let mut remaining = amount;
        let mut fees = 0u64;
        let mut rounds = 0;
        for round in 0..MAX_ROUNDS {
            rounds += 1;
            t.rounds += 1;
            let q = Query {
                payer,
                payee,
                amount: remaining,
                fee_max: fee_cap(amount).saturating_sub(fees),
                n,
                round,
            };
            let start = Instant::now();
            let found = sim.find(&balances, &q);
            t.route_time += start.elapsed();
            let Some(parts) = found else {
                t.no_route += 1;
                t.no_route_first += usize::from(round == 0);
                break;
            };
            for part in parts {
                t.parts_sent += 1;
                let (hops, delivered, fee) = sim.hops(payer, &part);
                match send(&mut balances, &hops) {
                    Ok(()) => {
                        remaining -= delivered;
                        fees += fee;
                        sim.held(payer, &part);
                        held.push((part, hops));
                    }
                    Err(at) => {
                        t.failed_at[position(at, hops.len())] += 1;
                        sim.failed(payer, &part, at);
                    }
                }
            }
            if remaining == 0 {
                break;
            }
        }
        let ok = remaining == 0;
        for (part, hops) in &held {
            finish(&mut balances, hops, ok);
            if ok {
                sim.succeeded(payer, part);
            }
        }
        t.outcome.push(ok.then_some(rounds));
        if ok {
            t.succeeded += 1;
            t.success_rounds += rounds;
            t.fees_msat += u128::from(fees);
            t.paid_msat += u128::from(amount);
        }
    }
    t
}

/// Our router with our scorer.
struct Ours<'a> {
    graph: &'a Graph,
    scorer: Scorer,
    in_flight: InFlight,
    now: u64,
}

impl Sim for Ours<'_> {
    type Part = Route;

    fn start(&mut self, now: u64) {
        self.now = now;
        self.in_flight = InFlight::new();
    }

    fn find(&mut self, b: &Balances, q: &Query) -> Option<Vec<Route>> {
        let params = RouteParams {
            first_hops: Some(our_first_hops(self.graph, b, q.payer)),
            allow_mpp: true,
            max_fee_msat: Some(q.fee_max),
            random_seed: q.n as u64,
            ..RouteParams::default()
        };
        Router::new(self.graph, &self.scorer, self.now)
            .with_in_flight(&self.in_flight)
            .pay(&q.payer, &q.payee, q.amount, &params)
            .ok()
            .map(|p| p.parts)
    }

    fn hops(&self, payer: NodeId, r: &Route) -> (Hops, u64, u64) {
        (
            our_hops(self.graph, payer, r),
            r.final_amount_msat(),
            r.fee_msat(),
        )
    }

    fn held(&mut self, payer: NodeId, r: &Route) {
        self.in_flight.add_route(self.graph, &payer, r);
    }

    fn failed(&mut self, payer: NodeId, r: &Route, at: usize) {
        self.scorer.path_failed(self.graph, &payer, r, at, self.now);
    }

    fn succeeded(&mut self, payer: NodeId, r: &Route) {
        self.scorer.path_succeeded(self.graph, &payer, r, self.now);
    }
}

/// LDK's router with its `ProbabilisticScorer`, retrying as its
/// `ChannelManager` does (failed channels excluded, in-flight HTLCs counted).
struct Ldk<'a> {
    graph: &'a Graph,
    ng: &'a NetworkGraph<&'a NoLogger>,
    logger: &'a NoLogger,
    scorer: ProbabilisticScorer<&'a NetworkGraph<&'a NoLogger>, &'a NoLogger>,
    fee_params: ProbabilisticScoringFeeParameters,
    in_flight: InFlightHtlcs,
    failed_channels: Vec<u64>,
    now: Duration,
}

impl Sim for Ldk<'_> {
    type Part = Path;

    fn start(&mut self, now: u64) {
        self.now = Duration::from_secs(now);
        self.scorer.time_passed(self.now);
        self.in_flight = InFlightHtlcs::new();
        self.failed_channels.clear();
    }

    fn find(&mut self, b: &Balances, q: &Query) -> Option<Vec<Path>> {
        let mut pay_params = PaymentParameters::for_keysend(q.payee.pubkey(), 18, true);
        pay_params.previously_failed_channels = self.failed_channels.clone();
        let mut route_params = RouteParameters::from_payment_params_and_value(pay_params, q.amount);
        route_params.max_total_routing_fee_msat = Some(q.fee_max);
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(q.n as u64).to_le_bytes());
        seed[8] = q.round as u8;
        let first_hops = ldk_first_hops(self.graph, b, q.payer);
        let first_hop_refs: Vec<&ChannelDetails> = first_hops.iter().collect();
        let accounting = ScorerAccountingForInFlightHtlcs::new(&self.scorer, &self.in_flight);
        ldk_router::find_route(
            &q.payer.pubkey(),
            &route_params,
            self.ng,
            Some(&first_hop_refs),
            self.logger,
            &accounting,
            &self.fee_params,
            &seed,
        )
        .ok()
        .map(|r| r.paths)
    }

    fn hops(&self, payer: NodeId, p: &Path) -> (Hops, u64, u64) {
        (
            ldk_hops(self.graph, payer, p),
            p.final_value_msat(),
            p.fee_msat(),
        )
    }

    fn held(&mut self, payer: NodeId, p: &Path) {
        self.in_flight.process_path(p, payer.pubkey());
    }

    fn failed(&mut self, _payer: NodeId, p: &Path, at: usize) {
        let scid = p.hops[at].short_channel_id;
        self.scorer.payment_path_failed(p, scid, self.now);
        self.failed_channels.push(scid);
    }

    fn succeeded(&mut self, _payer: NodeId, p: &Path) {
        self.scorer.payment_path_successful(p, self.now);
    }
}
