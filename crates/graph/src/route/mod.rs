//! Finding routes for a payment (BOLT 7 §"Recommendations for Routing",
//! BOLT 4 for what each hop must receive).
//!
//! A Dijkstra search from the payee back to the payer (see [`search`]), so
//! that every hop's amount already contains the fees of the hops after it.
//! Each channel direction must be enabled, carry the amount between its
//! `htlc_minimum_msat` and `htlc_maximum_msat` and within the capacity (or,
//! for the payer's own channels, within their known balance); the total
//! CLTV and the hop count are capped. The payee's private channels come
//! from the invoice's route hints (BOLT 11 `r`).
//!
//! The cost of a hop is its fee, a price for the time the amount is locked
//! (`cltv_expiry_delta`), and a price for the chance it fails: `-ln P`
//! times a price per unit, with `P` from the [`Scorer`]'s bounds on the
//! direction's liquidity. When no single route is likely enough and the
//! payee takes multi-part payments (BOLT 4 `basic_mpp`), the amount is
//! split into 2, 4, 8… equal parts routed one after the other, each
//! counting what the earlier ones already put on a channel.
//!
//! BOLT 7 recommends hiding the payee's position behind a shadow route:
//! the final CLTV gets the sum of the deltas of a short random walk from
//! the payee, seeded by [`RouteParams::random_seed`] so that a search is
//! deterministic given its seed.

mod search;

use std::collections::{HashMap, HashSet};

use beongae_invoice::RouteHint;
use beongae_wire::{NodeId, ShortChannelId};

use crate::graph::Graph;
use crate::scorer::{DirKey, Scorer};
use search::{Found, Search};

/// A channel of the payer's own, as its channel state knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstHop {
    /// The channel's short channel id (or the alias the peer knows it by).
    pub short_channel_id: ShortChannelId,
    /// The peer.
    pub node_id: NodeId,
    /// The most one new HTLC can carry now: HTLCs already pending on the
    /// channel are taken off here, so [`InFlight`] is not counted against
    /// first hops again.
    pub outbound_msat: u64,
    /// The peer's `htlc_minimum_msat`.
    pub htlc_minimum_msat: u64,
}

/// Limits and preferences of one search.
#[derive(Debug, Clone)]
pub struct RouteParams {
    /// The payee's `min_final_cltv_expiry_delta`.
    pub final_cltv_expiry_delta: u32,
    /// Most blocks the whole route may lock the payer's funds.
    pub max_total_cltv_expiry_delta: u32,
    /// Most channels in the route.
    pub max_hops: usize,
    /// Most fees the payment may cost, over all its parts (`None`: no cap).
    pub max_fee_msat: Option<u64>,
    /// Channels not to use.
    pub excluded_channels: HashSet<ShortChannelId>,
    /// Nodes not to route through.
    pub excluded_nodes: HashSet<NodeId>,
    /// The payer's channels with their balances; when given, the graph's
    /// view of the payer's channels is not used.
    pub first_hops: Option<Vec<FirstHop>>,
    /// The invoice's private route hints (BOLT 11 `r`).
    pub route_hints: Vec<RouteHint>,
    /// Price of locking 1 msat for one block, in millionths of a msat.
    pub lock_cost_ppm_per_block: u64,
    /// Price, in msat, of a hop whose success probability is `1/e`.
    pub failure_cost_msat: u64,
    /// Added to it per msat of the amount, in millionths.
    pub failure_cost_ppm: u64,
    /// Whether the payee takes multi-part payments (`basic_mpp`).
    pub allow_mpp: bool,
    /// Most parts of a multi-part payment.
    pub max_parts: usize,
    /// Smallest part of a multi-part payment, in msat.
    pub min_part_msat: u64,
    /// A payment whose success probability reaches this is not split.
    pub min_success_probability: f64,
    /// Most hops of the shadow route's random walk (0: none).
    pub shadow_max_hops: usize,
    /// Seed of the random choices (the shadow route).
    pub random_seed: u64,
}

impl Default for RouteParams {
    fn default() -> Self {
        RouteParams {
            final_cltv_expiry_delta: 18,
            max_total_cltv_expiry_delta: 2016,
            max_hops: 20,
            max_fee_msat: None,
            excluded_channels: HashSet::new(),
            excluded_nodes: HashSet::new(),
            first_hops: None,
            route_hints: Vec::new(),
            lock_cost_ppm_per_block: 1,
            // Chosen on the routes and reliability benches (ADR 0006): single
            // routes cheaper than LDK's at a better success chance, and as
            // few payment rounds as LDK's in every amount range.
            failure_cost_msat: 60_000,
            failure_cost_ppm: 600,
            allow_mpp: false,
            max_parts: 16,
            min_part_msat: 10_000_000,
            min_success_probability: 0.5,
            shadow_max_hops: 0,
            random_seed: 0,
        }
    }
}

impl RouteParams {
    /// The price of sending `amount` over a hop with success chance `p`.
    fn failure_price(&self, amount: u64, p: f64) -> u64 {
        let unit = self.failure_cost_msat as f64
            + amount as f64 * self.failure_cost_ppm as f64 / 1_000_000.0;
        (-p.max(1e-12).ln() * unit) as u64
    }
}

/// One channel of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHop {
    /// The channel.
    pub short_channel_id: ShortChannelId,
    /// The node it delivers to.
    pub node_id: NodeId,
    /// `amount_msat` of the HTLC on this channel.
    pub amount_msat: u64,
    /// Blocks from now the HTLC on this channel expires (`cltv_expiry`
    /// minus the current height).
    pub cltv_expiry_delta: u32,
}

/// A route: hops from the payer's first channel to the payee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The hops, payer side first.
    pub hops: Vec<RouteHop>,
    /// Blocks of shadow route added to every hop's CLTV (BOLT 7), so the
    /// last hop's is `final_cltv_expiry_delta` plus this.
    pub shadow_cltv_delta: u32,
}

impl Route {
    /// What the payer sends (the amount plus every fee).
    pub fn total_amount_msat(&self) -> u64 {
        self.hops.first().map_or(0, |h| h.amount_msat)
    }

    /// What the payee receives.
    pub fn final_amount_msat(&self) -> u64 {
        self.hops.last().map_or(0, |h| h.amount_msat)
    }

    /// The fees paid to the forwarding nodes.
    pub fn fee_msat(&self) -> u64 {
        self.total_amount_msat()
            .saturating_sub(self.final_amount_msat())
    }
}

/// The routes of a payment: one, or the parts of a multi-part payment.
#[derive(Debug, Clone)]
pub struct Payment {
    /// Each part's route; their final amounts add up to the payment.
    pub parts: Vec<Route>,
    /// The scorer's chance that every part arrives.
    pub success_probability: f64,
}

impl Payment {
    /// The fees of every part.
    pub fn fee_msat(&self) -> u64 {
        self.parts.iter().map(Route::fee_msat).sum()
    }
}

/// Why no route was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The payer or the payee is not in the graph (nor in the first hops
    /// or the route hints).
    #[error("{0} is not in the graph")]
    UnknownNode(NodeId),
    /// Paying oneself.
    #[error("the payer is the payee")]
    SelfPayment,
    /// Nothing satisfies the limits.
    #[error("no route for {0} msat within the limits")]
    NoRoute(u64),
}

/// Amounts already on their way over channel directions (the parts of a
/// payment still pending), which the scorer counts against their liquidity.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    used: HashMap<DirKey, u64>,
}

impl InFlight {
    /// Nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&self, key: DirKey) -> u64 {
        if self.used.is_empty() {
            return 0;
        }
        self.used.get(&key).copied().unwrap_or(0)
    }

    fn add_keys(&mut self, keys: &[(DirKey, u64)]) {
        for (k, a) in keys {
            *self.used.entry(*k).or_default() += a;
        }
    }

    /// Counts a route paid by `payer` as in flight.
    pub fn add_route(&mut self, graph: &Graph, payer: &NodeId, route: &Route) {
        for (_, key, _, amount) in crate::scorer::hop_keys(graph, payer, route) {
            *self.used.entry(key).or_default() += amount;
        }
    }

    /// No longer counts a route (it was settled or failed).
    pub fn remove_route(&mut self, graph: &Graph, payer: &NodeId, route: &Route) {
        for (_, key, _, amount) in crate::scorer::hop_keys(graph, payer, route) {
            if let Some(v) = self.used.get_mut(&key) {
                *v = v.saturating_sub(amount);
                if *v == 0 {
                    self.used.remove(&key);
                }
            }
        }
    }
}

/// A graph, what a payer learned of it, the time, and what is in flight.
#[derive(Debug, Clone, Copy)]
pub struct Router<'a> {
    graph: &'a Graph,
    scorer: &'a Scorer,
    now: u64,
    in_flight: Option<&'a InFlight>,
}

impl<'a> Router<'a> {
    /// A router over `graph` with what `scorer` learned, at `now` (seconds,
    /// the scorer's clock).
    pub fn new(graph: &'a Graph, scorer: &'a Scorer, now: u64) -> Self {
        Router {
            graph,
            scorer,
            now,
            in_flight: None,
        }
    }

    /// Counts `in_flight` against the liquidity of the channels it uses.
    pub fn with_in_flight(mut self, in_flight: &'a InFlight) -> Self {
        self.in_flight = Some(in_flight);
        self
    }

    /// The best single route.
    pub fn route(
        &self,
        payer: &NodeId,
        payee: &NodeId,
        amount_msat: u64,
        params: &RouteParams,
    ) -> Result<Route, RouteError> {
        let s = Search::new(self.graph, self.scorer, self.now, params, payer, payee)?;
        let empty = InFlight::default();
        let found = s
            .run(amount_msat, self.in_flight.unwrap_or(&empty))
            .ok_or(RouteError::NoRoute(amount_msat))?;
        let mut parts = [found.route];
        self.add_shadow(&mut parts, &s, params);
        let [route] = parts;
        Ok(route)
    }

    /// The routes of a payment: one route if it is likely enough (or the
    /// payee takes no multi-part payment), else the best split found.
    pub fn pay(
        &self,
        payer: &NodeId,
        payee: &NodeId,
        amount_msat: u64,
        params: &RouteParams,
    ) -> Result<Payment, RouteError> {
        let s = Search::new(self.graph, self.scorer, self.now, params, payer, payee)?;
        let empty = InFlight::default();
        let base = self.in_flight.unwrap_or(&empty);
        let score = |parts: &[Found]| {
            let spent: u64 = parts.iter().map(|f| f.fee_and_lock).sum();
            let p: f64 = parts.iter().map(|f| f.probability).product();
            (
                spent.saturating_add(params.failure_price(amount_msat, p)),
                p,
            )
        };
        let mut best: Option<(Vec<Found>, u64, f64)> = None;
        if let Some(f) = s.run(amount_msat, base) {
            let parts = vec![f];
            let (cost, p) = score(&parts);
            best = Some((parts, cost, p));
        }
        let likely = |b: &Option<(Vec<Found>, u64, f64)>| {
            b.as_ref()
                .is_some_and(|b| b.2 >= params.min_success_probability)
        };
        let mut k = 2u64;
        while params.allow_mpp
            && !likely(&best)
            && k as usize <= params.max_parts.min(MAX_PARTS)
            && amount_msat / k >= params.min_part_msat.max(1)
        {
            if let Some(parts) = split(&s, amount_msat, k, base, params) {
                let (cost, p) = score(&parts);
                if best.as_ref().is_none_or(|b| cost < b.1) {
                    best = Some((parts, cost, p));
                }
            }
            k *= 2;
        }
        let (parts, _, p) = best.ok_or(RouteError::NoRoute(amount_msat))?;
        let mut parts: Vec<Route> = parts.into_iter().map(|f| f.route).collect();
        self.add_shadow(&mut parts, &s, params);
        Ok(Payment {
            parts,
            success_probability: p,
        })
    }

    /// BOLT 7: adds a shadow route's CLTV to every hop of every part, the
    /// deltas of a seeded random walk from the payee of at most
    /// `shadow_max_hops`, within the total CLTV cap.
    fn add_shadow(&self, parts: &mut [Route], s: &Search<'_>, params: &RouteParams) {
        if params.shadow_max_hops == 0 || parts.is_empty() {
            return;
        }
        let highest = parts
            .iter()
            .filter_map(|r| r.hops.first())
            .map(|h| h.cltv_expiry_delta)
            .max()
            .unwrap_or(0);
        let room = params.max_total_cltv_expiry_delta.saturating_sub(highest);
        let walk = shadow_walk(
            self.graph,
            s.dst,
            params.shadow_max_hops,
            params.random_seed,
        );
        let extra = walk.min(room);
        for r in parts {
            r.shadow_cltv_delta = extra;
            for h in &mut r.hops {
                h.cltv_expiry_delta += extra;
            }
        }
    }
}

/// Most parts of a multi-part payment whatever the parameters say.
const MAX_PARTS: usize = 128;

/// `amount_msat` in `k` equal parts (the remainder on the first), each
/// routed counting the parts before it as in flight.
fn split(
    s: &Search<'_>,
    amount_msat: u64,
    k: u64,
    base: &InFlight,
    params: &RouteParams,
) -> Option<Vec<Found>> {
    let mut in_flight = base.clone();
    let mut parts = Vec::with_capacity(k as usize);
    let part = amount_msat / k;
    for j in 0..k {
        let amount = if j == 0 { part + amount_msat % k } else { part };
        let f = s.run(amount, &in_flight)?;
        in_flight.add_keys(&f.keys);
        parts.push(f);
    }
    let fees: u64 = parts.iter().map(|f| f.route.fee_msat()).sum();
    if params.max_fee_msat.is_some_and(|max| fees > max) {
        return None;
    }
    Some(parts)
}

/// The sum of the `cltv_expiry_delta`s of a random walk of up to `hops`
/// channels from `start`, each step leaving over an enabled direction.
fn shadow_walk(graph: &Graph, start: u32, hops: usize, seed: u64) -> u32 {
    let mut x = seed ^ 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut at, mut sum) = (start, 0u32);
    for _ in 0..hops {
        if at as usize >= graph.node_count() {
            break;
        }
        let out: Vec<(u32, u16)> = graph
            .node_channels(at)
            .iter()
            .filter_map(|&ci| {
                let ch = graph.channel(ci)?;
                let dir = usize::from(ch.nodes[1] == at);
                let p = ch.policies[dir].filter(|p| !p.disabled)?;
                Some((ch.nodes[1 - dir], p.cltv_expiry_delta))
            })
            .collect();
        if out.is_empty() {
            break;
        }
        let (to, delta) = out[(next() % out.len() as u64) as usize];
        sum = sum.saturating_add(u32::from(delta));
        at = to;
    }
    sum
}

/// The cheapest single route paying `amount_msat` from `payer` to `payee`,
/// knowing nothing learned about liquidity (capacity priors only).
pub fn find_route(
    graph: &Graph,
    payer: &NodeId,
    payee: &NodeId,
    amount_msat: u64,
    params: &RouteParams,
) -> Result<Route, RouteError> {
    let scorer = Scorer::default();
    Router::new(graph, &scorer, 0).route(payer, payee, amount_msat, params)
}
