//! The search itself: a Dijkstra from the payee back to the payer over the
//! graph's channels plus the channels the caller knows of (its own first
//! hops with their balances, the payee's private route hints), so that each
//! hop's amount already contains the fees of the hops after it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use beongae_wire::{NodeId, ShortChannelId};

use super::{InFlight, Route, RouteError, RouteHop, RouteParams};
use crate::graph::{ChannelIdx, Graph, NodeIdx};
use crate::scorer::{dir_key, probability, DirKey, Scorer, HINT_CAPACITY_MSAT};

/// A channel direction the graph does not have.
#[derive(Debug, Clone)]
struct ExtraEdge {
    from: NodeIdx,
    to: NodeIdx,
    scid: ShortChannelId,
    fee_base_msat: u32,
    fee_proportional_millionths: u32,
    cltv_expiry_delta: u16,
    htlc_minimum_msat: u64,
    htlc_maximum_msat: u64,
    /// A first hop: what it can send now is known exactly.
    known_balance: bool,
    /// Where the scorer and the in-flight amounts know it.
    key: DirKey,
    capacity: u64,
}

/// How a label reaches the next node.
#[derive(Debug, Clone, Copy)]
enum Via {
    Graph(ChannelIdx, u8),
    Extra(u32),
}

/// Best known way from a node to the payee.
#[derive(Debug, Clone, Copy)]
struct Label {
    cost: u64,
    /// What this node must receive.
    amount: u64,
    /// Blocks from now its incoming HTLC must expire at least.
    cltv: u32,
    hops: u8,
    /// Fees plus the price of the locked time, from here on.
    spent: u64,
    /// Chance that every hop from here on carries its amount.
    probability: f64,
    /// The channel towards the payee, and the node after it.
    next: Option<(Via, NodeIdx)>,
}

/// One route found, with what the payment chooser needs.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub route: Route,
    /// Fees plus the price of the locked time.
    pub fee_and_lock: u64,
    pub probability: f64,
    /// The direction and amount of each hop, for in-flight accounting.
    pub keys: Vec<(DirKey, u64)>,
}

/// What is fixed for every search of one payment: the endpoints, the
/// exclusions and the extra channels.
pub(crate) struct Search<'a> {
    graph: &'a Graph,
    scorer: &'a Scorer,
    now: u64,
    params: &'a RouteParams,
    pub src: NodeIdx,
    pub dst: NodeIdx,
    /// Ids of the nodes only the extra channels know (indices from
    /// `graph.node_count()` on).
    extra_ids: Vec<NodeId>,
    extra: Vec<ExtraEdge>,
    /// Extra edges by the node they deliver to.
    extra_into: HashMap<NodeIdx, Vec<u32>>,
    excluded: Vec<bool>,
}

impl<'a> Search<'a> {
    pub fn new(
        graph: &'a Graph,
        scorer: &'a Scorer,
        now: u64,
        params: &'a RouteParams,
        payer: &NodeId,
        payee: &NodeId,
    ) -> Result<Self, RouteError> {
        if payer == payee {
            return Err(RouteError::SelfPayment);
        }
        let mut s = Search {
            graph,
            scorer,
            now,
            params,
            src: 0,
            dst: 0,
            extra_ids: Vec::new(),
            extra: Vec::new(),
            extra_into: HashMap::new(),
            excluded: Vec::new(),
        };
        let mut ext_index: HashMap<NodeId, NodeIdx> = HashMap::new();
        let mut intern = |s: &mut Search<'_>, id: NodeId| -> NodeIdx {
            if let Some(i) = graph.node(&id) {
                return i;
            }
            *ext_index.entry(id).or_insert_with(|| {
                s.extra_ids.push(id);
                (graph.node_count() + s.extra_ids.len() - 1) as NodeIdx
            })
        };
        let known = |id: &NodeId| {
            graph.node(id).is_some()
                || params.first_hops.iter().flatten().any(|h| h.node_id == *id)
                || params
                    .route_hints
                    .iter()
                    .any(|r| r.0.iter().any(|h| h.src_node_id == *id))
        };
        if params.first_hops.is_none() && graph.node(payer).is_none() {
            return Err(RouteError::UnknownNode(*payer));
        }
        if !known(payee) && params.route_hints.iter().all(|r| r.0.is_empty()) {
            return Err(RouteError::UnknownNode(*payee));
        }
        s.src = intern(&mut s, *payer);
        s.dst = intern(&mut s, *payee);
        for h in params.first_hops.iter().flatten() {
            let to = intern(&mut s, h.node_id);
            s.extra.push(ExtraEdge {
                from: s.src,
                to,
                scid: h.short_channel_id,
                fee_base_msat: 0,
                fee_proportional_millionths: 0,
                cltv_expiry_delta: 0,
                htlc_minimum_msat: h.htlc_minimum_msat,
                htlc_maximum_msat: h.outbound_msat,
                known_balance: true,
                // Its own key: the caller's balance already excludes what
                // is pending, so only this payment's earlier parts count.
                key: DirKey::FirstHop(h.short_channel_id),
                capacity: h.outbound_msat,
            });
        }
        // BOLT 11 `r`: each hop's channel runs from its `pubkey` to the next
        // hop's (the last to the payee), under the hop's fees and delta.
        for hint in &params.route_hints {
            for (i, h) in hint.0.iter().enumerate() {
                let from = intern(&mut s, h.src_node_id);
                let to = match hint.0.get(i + 1) {
                    Some(n) => intern(&mut s, n.src_node_id),
                    None => s.dst,
                };
                // A hint from the payer is its own channel: with first hops
                // given, their balances say what it can send.
                if from == to || (from == s.src && params.first_hops.is_some()) {
                    continue;
                }
                // A hint over a public channel shares its scorer key (and
                // capacity) with the graph's direction.
                let (key, capacity) = graph
                    .channel_index(h.short_channel_id)
                    .and_then(|idx| {
                        let c = graph.channel(idx)?;
                        let dir = [c.nodes[0], c.nodes[1]].iter().position(|n| *n == from)?;
                        (c.nodes[1 - dir] == to).then(|| {
                            (
                                dir_key(idx, dir as u32),
                                c.capacity.to_sat().saturating_mul(1_000),
                            )
                        })
                    })
                    .unwrap_or((DirKey::Hint(h.short_channel_id), HINT_CAPACITY_MSAT));
                s.extra.push(ExtraEdge {
                    from,
                    to,
                    scid: h.short_channel_id,
                    fee_base_msat: h.fee_base_msat,
                    fee_proportional_millionths: h.fee_proportional_millionths,
                    cltv_expiry_delta: h.cltv_expiry_delta,
                    htlc_minimum_msat: 0,
                    htlc_maximum_msat: u64::MAX,
                    known_balance: false,
                    key,
                    capacity,
                });
            }
        }
        for (i, e) in s.extra.iter().enumerate() {
            s.extra_into.entry(e.to).or_default().push(i as u32);
        }
        let total = graph.node_count() + s.extra_ids.len();
        if !params.excluded_nodes.is_empty() {
            s.excluded = vec![false; total];
            for id in &params.excluded_nodes {
                if let Some(i) = graph.node(id).or_else(|| ext_index.get(id).copied()) {
                    s.excluded[i as usize] = true;
                }
            }
        }
        Ok(s)
    }

    fn node_id(&self, idx: NodeIdx) -> NodeId {
        match (idx as usize).checked_sub(self.graph.node_count()) {
            Some(i) => self.extra_ids[i],
            None => self.graph.node_id(idx),
        }
    }

    /// The cheapest route for `amount_msat` given what is already in flight.
    pub fn run(&self, amount_msat: u64, in_flight: &InFlight) -> Option<Found> {
        let p = self.params;
        let n = self.graph.node_count() + self.extra_ids.len();
        let mut best: Vec<Option<Label>> = vec![None; n];
        // The best labels' costs apart, dense: most relaxations only compare.
        let mut cost = vec![u64::MAX; n];
        let mut done = vec![false; n];
        let (src, dst) = (self.src, self.dst);
        cost[dst as usize] = 0;
        best[dst as usize] = Some(Label {
            cost: 0,
            amount: amount_msat,
            cltv: p.final_cltv_expiry_delta,
            hops: 0,
            spent: 0,
            probability: 1.0,
            next: None,
        });
        let max_hops = p.max_hops.min(u8::MAX as usize) as u8;
        let first_hops_given = p.first_hops.is_some();
        let mut heap = BinaryHeap::new();
        heap.push(Reverse((0u64, dst)));
        while let Some(Reverse((_, v))) = heap.pop() {
            if done[v as usize] {
                continue;
            }
            done[v as usize] = true;
            if v == src {
                break;
            }
            let here = best[v as usize].expect("labelled before queued");
            if here.hops >= max_hops {
                continue;
            }
            let mut offer = |u: NodeIdx, edge: Edge, via: Via| {
                if done[u as usize] || self.excluded.get(u as usize).copied().unwrap_or(false) {
                    return;
                }
                let to_beat = cost[u as usize];
                if let Some(label) =
                    self.relax(&here, u, v, &edge, via, amount_msat, in_flight, to_beat)
                {
                    if label.cost < to_beat {
                        cost[u as usize] = label.cost;
                        best[u as usize] = Some(label);
                        heap.push(Reverse((label.cost, u)));
                    }
                }
            };
            if (v as usize) < self.graph.node_count() {
                for &ci in self.graph.node_channels(v) {
                    let Some(ch) = self.graph.channel(ci) else {
                        continue;
                    };
                    if !p.excluded_channels.is_empty() && p.excluded_channels.contains(&ch.scid) {
                        continue;
                    }
                    // u forwards to v over this channel, under u's policy.
                    let dir = u8::from(ch.nodes[0] == v);
                    let u = ch.nodes[usize::from(dir)];
                    let from_payer = u == src;
                    if from_payer && first_hops_given {
                        // The caller's own channels, with their balances,
                        // replace what the graph says of them.
                        continue;
                    }
                    let capacity = ch.capacity.to_sat().saturating_mul(1_000);
                    // The payer's own channels need no channel_update of its
                    // own; every other hop needs its sender's.
                    let edge = match ch.policies[usize::from(dir)] {
                        // Disabled by its sender, the payer included.
                        Some(pol) if pol.disabled => continue,
                        Some(pol) => Edge {
                            fee_base_msat: pol.fee_base_msat,
                            fee_proportional_millionths: pol.fee_proportional_millionths,
                            cltv_expiry_delta: pol.cltv_expiry_delta,
                            htlc_minimum_msat: pol.htlc_minimum_msat,
                            htlc_maximum_msat: pol.htlc_maximum_msat,
                            capacity,
                            key: dir_key(ci, u32::from(dir)),
                            known_balance: false,
                        },
                        None if from_payer => Edge {
                            fee_base_msat: 0,
                            fee_proportional_millionths: 0,
                            cltv_expiry_delta: 0,
                            htlc_minimum_msat: 0,
                            htlc_maximum_msat: capacity,
                            capacity,
                            key: dir_key(ci, u32::from(dir)),
                            known_balance: false,
                        },
                        None => continue,
                    };
                    offer(u, edge, Via::Graph(ci, dir));
                }
            }
            if let Some(list) = (!self.extra.is_empty())
                .then(|| self.extra_into.get(&v))
                .flatten()
            {
                for &i in list {
                    let e = &self.extra[i as usize];
                    if !p.excluded_channels.is_empty() && p.excluded_channels.contains(&e.scid) {
                        continue;
                    }
                    let edge = Edge {
                        fee_base_msat: e.fee_base_msat,
                        fee_proportional_millionths: e.fee_proportional_millionths,
                        cltv_expiry_delta: e.cltv_expiry_delta,
                        htlc_minimum_msat: e.htlc_minimum_msat,
                        htlc_maximum_msat: e.htlc_maximum_msat,
                        capacity: e.capacity,
                        key: e.key,
                        known_balance: e.known_balance,
                    };
                    offer(e.from, edge, Via::Extra(i));
                }
            }
        }
        let start = best[src as usize].filter(|_| done[src as usize])?;
        // Walk forward: each hop carries what the next node must receive.
        let mut hops = Vec::with_capacity(usize::from(start.hops));
        let mut keys = Vec::with_capacity(usize::from(start.hops));
        let mut at = start;
        while let Some((via, v)) = at.next {
            let next = best[v as usize].expect("on the path");
            let (scid, key) = match via {
                Via::Graph(ci, dir) => {
                    let ch = self.graph.channel(ci).expect("on the path");
                    (ch.scid, dir_key(ci, u32::from(dir)))
                }
                Via::Extra(i) => {
                    let e = &self.extra[i as usize];
                    (e.scid, e.key)
                }
            };
            hops.push(RouteHop {
                short_channel_id: scid,
                node_id: self.node_id(v),
                amount_msat: next.amount,
                cltv_expiry_delta: next.cltv,
            });
            keys.push((key, next.amount));
            at = next;
        }
        let fee_and_lock = start.spent;
        Some(Found {
            route: Route {
                hops,
                shadow_cltv_delta: 0,
            },
            fee_and_lock,
            probability: start.probability,
            keys,
        })
    }

    /// The label `u` gets by forwarding to `v` (labelled `here`) over `edge`,
    /// or `None` if the edge cannot carry the amount or cannot cost less than
    /// `to_beat` (u's best label so far): the fee and lock price are known
    /// before the scorer is asked, and the failure price only adds to them.
    #[allow(clippy::too_many_arguments)]
    fn relax(
        &self,
        here: &Label,
        u: NodeIdx,
        v: NodeIdx,
        edge: &Edge,
        via: Via,
        total_msat: u64,
        in_flight: &InFlight,
        to_beat: u64,
    ) -> Option<Label> {
        let p = self.params;
        let amount = here.amount;
        if amount < edge.htlc_minimum_msat || amount > edge.htlc_maximum_msat {
            return None;
        }
        let used = in_flight.get(edge.key);
        if used.saturating_add(amount) > edge.capacity {
            return None;
        }
        // The payer charges itself nothing and adds no delay.
        let (fee, delta) = if u == self.src {
            (0, 0)
        } else {
            let prop =
                u128::from(amount) * u128::from(edge.fee_proportional_millionths) / 1_000_000;
            (
                u64::from(edge.fee_base_msat).saturating_add(u64::try_from(prop).ok()?),
                u32::from(edge.cltv_expiry_delta),
            )
        };
        let cltv = here.cltv.saturating_add(delta);
        if cltv > p.max_total_cltv_expiry_delta {
            return None;
        }
        let amount_in = amount.checked_add(fee)?;
        if p.max_fee_msat
            .is_some_and(|max| amount_in - total_msat > max)
        {
            return None;
        }
        let lock = u128::from(amount) * u128::from(delta) * u128::from(p.lock_cost_ppm_per_block)
            / 1_000_000;
        let spent = fee.saturating_add(u64::try_from(lock).unwrap_or(u64::MAX));
        if here.cost.saturating_add(spent) >= to_beat {
            return None;
        }
        let probability = if edge.known_balance {
            1.0
        } else {
            let (lower, upper) = self.scorer.bounds(edge.key, edge.capacity, self.now);
            probability(lower, upper, used, amount)
        };
        if probability <= 0.0 {
            return None;
        }
        let step = spent.saturating_add(p.failure_price(amount, probability));
        Some(Label {
            cost: here.cost.saturating_add(step),
            spent: here.spent.saturating_add(spent),
            amount: amount_in,
            cltv,
            hops: here.hops + 1,
            probability: here.probability * probability,
            next: Some((via, v)),
        })
    }
}

/// One direction as the search sees it.
#[derive(Debug, Clone, Copy)]
struct Edge {
    fee_base_msat: u32,
    fee_proportional_millionths: u32,
    cltv_expiry_delta: u16,
    htlc_minimum_msat: u64,
    htlc_maximum_msat: u64,
    capacity: u64,
    key: DirKey,
    known_balance: bool,
}
