//! What a payer has learned about the liquidity of each channel direction
//! (BOLT 7 §"Recommendations for Routing" leaves route choice to the
//! sender; this is ours): a lower and an upper bound on the amount that
//! can pass, starting at `[0, capacity]`, narrowed by every success and
//! failure, and relaxing back towards `[0, capacity]` with a half-life,
//! since balances move while we are not looking.
//!
//! Between its bounds a direction's liquidity is taken as uniform, so the
//! chance that `amount` passes when `used` is already on its way over the
//! same direction is `(upper + 1 - used - amount) / (upper + 1 - max(lower,
//! used))`, 1 below the lower bound and 0 above the upper one.
//!
//! Times are seconds (any epoch, as long as it is the same for every call).

use std::collections::HashMap;

use beongae_wire::{NodeId, ShortChannelId};

use crate::graph::{ChannelIdx, Graph};
use crate::route::Route;

/// How fast what we learned fades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScorerParams {
    /// Seconds after which a learned bound has relaxed halfway back to the
    /// channel's capacity (upper) or to zero (lower).
    pub half_life_secs: u64,
}

impl Default for ScorerParams {
    fn default() -> Self {
        ScorerParams {
            half_life_secs: 6 * 3_600,
        }
    }
}

/// Bounds on one direction's liquidity, in msat, as of `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Estimate {
    lower: u64,
    /// `u64::MAX` while nothing bounds it from above.
    upper: u64,
    at: u64,
}

const UNKNOWN: Estimate = Estimate {
    lower: 0,
    upper: u64::MAX,
    at: 0,
};

/// Capacity assumed for channels outside the graph (route hints): large
/// enough that, unobserved, they always look able to carry the amount.
pub(crate) const HINT_CAPACITY_MSAT: u64 = 21_000_000 * 100_000_000 * 1_000;

/// Learned liquidity bounds for the directions of one [`Graph`] (by channel
/// index and direction) and of private channels from route hints (by short
/// channel id).
#[derive(Debug, Clone, Default)]
pub struct Scorer {
    params: ScorerParams,
    /// `2 * channel index + direction`; grown on demand.
    dirs: Vec<Estimate>,
    hints: HashMap<ShortChannelId, Estimate>,
}

/// Where a hop of a route runs, for the scorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DirKey {
    /// A graph channel's direction (`2 * index + direction`).
    Graph(u32),
    /// A channel outside the graph.
    Hint(ShortChannelId),
    /// One of the payer's first hops (in-flight amounts of the current
    /// payment only; nothing is learned about it).
    FirstHop(ShortChannelId),
}

impl Scorer {
    /// A scorer that knows nothing yet.
    pub fn new(params: ScorerParams) -> Self {
        Scorer {
            params,
            dirs: Vec::new(),
            hints: HashMap::new(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> ScorerParams {
        self.params
    }

    fn get(&self, key: DirKey) -> Estimate {
        match key {
            DirKey::Graph(k) => self.dirs.get(k as usize).copied().unwrap_or(UNKNOWN),
            DirKey::Hint(scid) => self.hints.get(&scid).copied().unwrap_or(UNKNOWN),
            DirKey::FirstHop(_) => UNKNOWN,
        }
    }

    fn set(&mut self, key: DirKey, e: Estimate) {
        match key {
            DirKey::Graph(k) => {
                let k = k as usize;
                if self.dirs.len() <= k {
                    self.dirs.resize(k + 1, UNKNOWN);
                }
                self.dirs[k] = e;
            }
            DirKey::Hint(scid) => {
                self.hints.insert(scid, e);
            }
            DirKey::FirstHop(_) => {}
        }
    }

    /// The bounds `[lower, upper]` on a direction's liquidity at `now`,
    /// relaxed towards `[0, capacity]` by the time since they were learned.
    pub(crate) fn bounds(&self, key: DirKey, capacity_msat: u64, now: u64) -> (u64, u64) {
        let e = self.get(key);
        if e == UNKNOWN {
            return (0, capacity_msat);
        }
        let upper = e.upper.min(capacity_msat);
        let elapsed = now.saturating_sub(e.at);
        if elapsed == 0 || self.params.half_life_secs == 0 {
            return (e.lower.min(upper), upper);
        }
        let keep = (-(elapsed as f64) / self.params.half_life_secs as f64).exp2();
        let lower = (e.lower as f64 * keep) as u64;
        let upper = capacity_msat - ((capacity_msat - upper) as f64 * keep) as u64;
        (lower.min(upper), upper)
    }

    /// What is known of the liquidity of direction `direction` (0: from
    /// `node_id_1`) of a graph channel at `now`: `[lower, upper]` in msat.
    pub fn liquidity_bounds(
        &self,
        graph: &Graph,
        scid: ShortChannelId,
        direction: usize,
        now: u64,
    ) -> Option<(u64, u64)> {
        let idx = graph.channel_index(scid)?;
        let capacity = graph.channel(idx)?.capacity.to_sat().saturating_mul(1_000);
        Some(self.bounds(dir_key(idx, (direction & 1) as u32), capacity, now))
    }

    /// The same for a channel outside the graph (a route hint's).
    pub fn hint_liquidity_bounds(&self, scid: ShortChannelId, now: u64) -> (u64, u64) {
        self.bounds(DirKey::Hint(scid), HINT_CAPACITY_MSAT, now)
    }

    fn learn(
        &mut self,
        key: DirKey,
        capacity_msat: u64,
        now: u64,
        f: impl Fn(u64, u64) -> (u64, u64),
    ) {
        let (lower, upper) = self.bounds(key, capacity_msat, now);
        let (lower, upper) = f(lower, upper);
        self.set(
            key,
            Estimate {
                lower: lower.min(upper),
                upper,
                at: now,
            },
        );
    }

    /// A path of a payment failed at hop `failed_hop` for lack of liquidity
    /// (a `temporary_channel_failure` from that hop's sender): every hop
    /// before it carried its amount, that one could not.
    pub fn path_failed(
        &mut self,
        graph: &Graph,
        payer: &NodeId,
        route: &Route,
        failed_hop: usize,
        now: u64,
    ) {
        for (i, key, capacity, amount) in hop_keys(graph, payer, route) {
            if i < failed_hop {
                self.learn(key, capacity, now, |lo, hi| {
                    (lo.max(amount), hi.max(amount))
                });
            } else if i == failed_hop {
                let below = amount.saturating_sub(1);
                self.learn(key, capacity, now, |lo, hi| (lo.min(below), hi.min(below)));
            }
        }
    }

    /// A path of a payment was paid: each hop carried its amount, and that
    /// amount has moved to the other side of the channel.
    pub fn path_succeeded(&mut self, graph: &Graph, payer: &NodeId, route: &Route, now: u64) {
        for (_, key, capacity, amount) in hop_keys(graph, payer, route) {
            self.learn(key, capacity, now, |lo, hi| {
                (lo.max(amount) - amount, hi.max(amount) - amount)
            });
        }
    }
}

/// `P(liquidity >= used + amount | liquidity >= used)` for liquidity
/// uniform on `[lower, upper]`.
pub(crate) fn probability(lower: u64, upper: u64, used: u64, amount: u64) -> f64 {
    let total = used.saturating_add(amount);
    if total <= lower {
        return 1.0;
    }
    if total > upper {
        return 0.0;
    }
    let from = lower.max(used);
    // In f64: `upper + 1` overflows for a capacity of u64::MAX msat.
    ((upper - total) as f64 + 1.0) / ((upper - from) as f64 + 1.0)
}

/// Each hop's index, scorer key, capacity and amount. Hops over channels
/// the graph does not have (route hints, private first hops) are keyed by
/// short channel id.
pub(crate) fn hop_keys<'a>(
    graph: &'a Graph,
    payer: &NodeId,
    route: &'a Route,
) -> impl Iterator<Item = (usize, DirKey, u64, u64)> + 'a {
    let mut from = *payer;
    route.hops.iter().enumerate().map(move |(i, h)| {
        let sender = std::mem::replace(&mut from, h.node_id);
        let graph_dir = graph.channel_index(h.short_channel_id).and_then(|idx| {
            let c = graph.channel(idx)?;
            let ends = [graph.node_id(c.nodes[0]), graph.node_id(c.nodes[1])];
            (ends.contains(&sender) && ends.contains(&h.node_id)).then(|| {
                let dir = u32::from(ends[1] == sender);
                (dir_key(idx, dir), c.capacity.to_sat().saturating_mul(1_000))
            })
        });
        let (key, capacity) =
            graph_dir.unwrap_or((DirKey::Hint(h.short_channel_id), HINT_CAPACITY_MSAT));
        (i, key, capacity, h.amount_msat)
    })
}

/// The scorer key of a graph channel's direction.
pub(crate) fn dir_key(idx: ChannelIdx, dir: u32) -> DirKey {
    DirKey::Graph(idx * 2 + dir)
}
