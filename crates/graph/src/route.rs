//! Finding a route for a payment (BOLT 7 §"Recommendations for Routing",
//! BOLT 4 for what each hop must receive): a Dijkstra search from the payee
//! back to the payer, so that every hop's amount already contains the fees
//! of the hops after it. Each channel direction must be enabled, carry the
//! amount between its `htlc_minimum_msat` and `htlc_maximum_msat` and
//! within the capacity; the total CLTV and the hop count are capped.
//!
//! The cost of a hop is its fee plus a price for the time the amount is
//! locked (`cltv_expiry_delta`) and for how unlikely a channel of that
//! capacity is to carry the amount (a uniform prior on the balance).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use beongae_wire::{NodeId, ShortChannelId};

use crate::graph::{ChannelIdx, Graph, NodeIdx};

/// Limits and preferences of one search.
#[derive(Debug, Clone)]
pub struct RouteParams {
    /// The payee's `min_final_cltv_expiry_delta`.
    pub final_cltv_expiry_delta: u32,
    /// Most blocks the whole route may lock the payer's funds.
    pub max_total_cltv_expiry_delta: u32,
    /// Most channels in the route.
    pub max_hops: usize,
    /// Channels not to use.
    pub excluded_channels: HashSet<ShortChannelId>,
    /// Nodes not to route through.
    pub excluded_nodes: HashSet<NodeId>,
    /// Price of locking 1 msat for one block, in millionths of a msat.
    pub lock_cost_ppm_per_block: u64,
    /// Price, in msat, of a hop whose success probability is 1/e.
    pub failure_cost_msat: u64,
}

impl Default for RouteParams {
    fn default() -> Self {
        RouteParams {
            final_cltv_expiry_delta: 18,
            max_total_cltv_expiry_delta: 2016,
            max_hops: 20,
            excluded_channels: HashSet::new(),
            excluded_nodes: HashSet::new(),
            lock_cost_ppm_per_block: 1,
            failure_cost_msat: 1_000,
        }
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
}

impl Route {
    /// What the payer sends (the amount plus every fee).
    pub fn total_amount_msat(&self) -> u64 {
        self.hops.first().map_or(0, |h| h.amount_msat)
    }

    /// The fees paid to the forwarding nodes.
    pub fn fee_msat(&self) -> u64 {
        self.total_amount_msat() - self.hops.last().map_or(0, |h| h.amount_msat)
    }
}

/// Why no route was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The payer or the payee is not in the graph.
    #[error("{0} is not in the graph")]
    UnknownNode(NodeId),
    /// Paying oneself.
    #[error("the payer is the payee")]
    SelfPayment,
    /// Nothing satisfies the limits.
    #[error("no route for {0} msat within the limits")]
    NoRoute(u64),
}

/// Best known way from a node to the payee.
#[derive(Debug, Clone, Copy)]
struct Label {
    cost: u64,
    /// What this node must receive.
    amount: u64,
    /// Blocks from now its incoming HTLC must expire at least.
    cltv: u32,
    hops: usize,
    /// The channel towards the payee, and the node after it.
    next: Option<(ChannelIdx, NodeIdx)>,
}

/// `ln(1/P)` scaled to `failure_cost_msat`, with `P` the chance that a
/// channel of `capacity` can carry `amount` under a uniform prior.
fn failure_cost(amount: u64, capacity_msat: u64, unit: u64) -> u64 {
    let p = (capacity_msat + 1 - amount.min(capacity_msat)) as f64 / (capacity_msat + 1) as f64;
    (-(p.max(1e-9)).ln() * unit as f64) as u64
}

/// The cheapest route paying `amount_msat` from `payer` to `payee`.
pub fn find_route(
    graph: &Graph,
    payer: &NodeId,
    payee: &NodeId,
    amount_msat: u64,
    params: &RouteParams,
) -> Result<Route, RouteError> {
    let src = graph.node(payer).ok_or(RouteError::UnknownNode(*payer))?;
    let dst = graph.node(payee).ok_or(RouteError::UnknownNode(*payee))?;
    if src == dst {
        return Err(RouteError::SelfPayment);
    }
    let n = graph.node_count();
    let mut best: Vec<Option<Label>> = vec![None; n];
    let mut done = vec![false; n];
    let excluded: HashSet<NodeIdx> = params
        .excluded_nodes
        .iter()
        .filter_map(|id| graph.node(id))
        .collect();
    best[dst as usize] = Some(Label {
        cost: 0,
        amount: amount_msat,
        cltv: params.final_cltv_expiry_delta,
        hops: 0,
        next: None,
    });
    let mut heap = BinaryHeap::new();
    heap.push(Reverse((0u64, dst)));
    while let Some(Reverse((cost, v))) = heap.pop() {
        if done[v as usize] {
            continue;
        }
        done[v as usize] = true;
        if v == src {
            break;
        }
        let here = best[v as usize].expect("labelled before queued");
        if here.hops >= params.max_hops {
            continue;
        }
        for &ci in graph.node_channels(v) {
            let Some(ch) = graph.channel(ci) else {
                continue;
            };
            if params.excluded_channels.contains(&ch.scid) {
                continue;
            }
            // u forwards to v over this channel, under u's policy.
            let dir = usize::from(ch.nodes[0] == v);
            let u = ch.nodes[dir];
            if done[u as usize] || excluded.contains(&u) {
                continue;
            }
            let amount = here.amount;
            let capacity = ch.capacity.to_sat().saturating_mul(1000);
            // The payer's own channels need no channel_update of its own (it
            // charges itself nothing, and its real balance is the caller's
            // first-hop knowledge); every other hop needs its sender's.
            let policy = ch.policies[dir].filter(|p| !p.disabled);
            let usable = match &policy {
                Some(p) => amount >= p.htlc_minimum_msat && amount <= p.htlc_maximum_msat,
                None => u == src,
            };
            if !usable || amount > capacity {
                continue;
            }
            // The payer charges itself nothing and adds no delay.
            let (fee, delta) = match policy.filter(|_| u != src) {
                None => (0, 0),
                Some(p) => {
                    let prop =
                        u128::from(amount) * u128::from(p.fee_proportional_millionths) / 1_000_000;
                    (
                        u64::from(p.fee_base_msat)
                            .saturating_add(u64::try_from(prop).unwrap_or(u64::MAX)),
                        u32::from(p.cltv_expiry_delta),
                    )
                }
            };
            let cltv = here.cltv.saturating_add(delta);
            if cltv > params.max_total_cltv_expiry_delta {
                continue;
            }
            let lock = u64::try_from(
                u128::from(amount) * u128::from(delta) * u128::from(params.lock_cost_ppm_per_block)
                    / 1_000_000,
            )
            .unwrap_or(u64::MAX);
            let step = fee.saturating_add(lock).saturating_add(failure_cost(
                amount,
                capacity,
                params.failure_cost_msat,
            ));
            let label = Label {
                cost: cost.saturating_add(step),
                amount: amount.saturating_add(fee),
                cltv,
                hops: here.hops + 1,
                next: Some((ci, v)),
            };
            if best[u as usize].is_none_or(|b| label.cost < b.cost) {
                best[u as usize] = Some(label);
                heap.push(Reverse((label.cost, u)));
            }
        }
    }
    let Some(start) = best[src as usize].filter(|_| done[src as usize]) else {
        return Err(RouteError::NoRoute(amount_msat));
    };
    // Walk forward: each hop carries what the next node must receive.
    let mut hops = Vec::with_capacity(start.hops);
    let mut at = start;
    while let Some((ci, v)) = at.next {
        let ch = graph.channel(ci).expect("on the path");
        let next = best[v as usize].expect("on the path");
        hops.push(RouteHop {
            short_channel_id: ch.scid,
            node_id: graph.node_id(v),
            amount_msat: next.amount,
            cltv_expiry_delta: next.cltv,
        });
        at = next;
    }
    Ok(Route { hops })
}
