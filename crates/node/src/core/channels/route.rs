//! Paying over a route (BOLT 4 §"Onion Route Construction", BOLT 7
//! §"Recommendations for Routing"), and trying again when a hop fails it:
//! the failure is read with the secrets shared with each hop (BOLT 4
//! §"Returning Errors", origin node), the `channel_update` it carries is
//! applied, or the failing channel or node is left out, and another route
//! is tried, up to [`MAX_ATTEMPTS`] times.

use std::collections::HashSet;

use beongae_channel::normal::FailReason;
use beongae_graph::{FirstHop, RouteParams};
use beongae_invoice::{Invoice, RouteHint};
use beongae_onion::failure::{NODE, PERM};
use beongae_onion::FailureMessage;
use beongae_wire::msgs::{ChannelUpdate, Message};
use beongae_wire::{ChannelId, Msat, NodeId, PaymentHash, ShortChannelId};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::SecretKey;

use super::record::{OutgoingRecord, OutgoingStatus, NS_PAYMENTS};
use super::{Channels, Phase};
use crate::core::{CommandId, Failure, FailureKind};
use crate::payments::{amount_to_pay, final_cltv_expiry, pay_route, read_failure, PathHop};

/// Most routes tried for one payment.
pub const MAX_ATTEMPTS: u32 = 5;

/// A payment over a route, between its attempts (in memory: a restart
/// lets the attempt in flight resolve, and does not try again).
#[derive(Debug, Clone)]
pub(in crate::core) struct Attempting {
    invoice: Invoice,
    amount: Msat,
    session: SecretKey,
    attempts: u32,
    excluded_channels: HashSet<ShortChannelId>,
    excluded_nodes: HashSet<NodeId>,
    /// The invoice's hints, with the policies failures taught us.
    hints: Vec<RouteHint>,
    /// Of `amount`, what no part in flight carries (to place again).
    remaining: Msat,
    /// The parts in flight.
    parts: Vec<Part>,
    /// Why each earlier attempt failed.
    reasons: Vec<String>,
    /// The payee refused a part: no new attempt.
    given_up: bool,
    /// No new attempt after this time (the payment timeout; parts in
    /// flight still resolve).
    deadline: std::time::Duration,
}

/// One part of a payment in flight (one HTLC).
#[derive(Debug, Clone)]
pub(in crate::core) struct Part {
    channel: ChannelId,
    htlc: u64,
    /// What we offered (fees included).
    sent: Msat,
    /// What the payee gets of it.
    delivered: Msat,
    path: Vec<PathHop>,
    secrets: Vec<beongae_onion::SharedSecret>,
}

impl Channels {
    /// Our open channels as first hops of a route (BOLT 7 routing from our
    /// own channels' real balances): each named by our alias for it, with
    /// what it can carry now.
    fn first_hops(&self) -> Vec<(ChannelId, FirstHop)> {
        self.entries
            .iter()
            .filter_map(|(id, e)| {
                let Phase::Normal { chan, scid, .. } = &e.phase else {
                    return None;
                };
                if !e.live || !self.funding_usable(*scid) {
                    return None;
                }
                Some((
                    *id,
                    FirstHop {
                        short_channel_id: self.local_alias(e.index)?,
                        node_id: e.peer,
                        outbound_msat: super::pay::outbound_estimate(chan).to_msat(),
                        htlc_minimum_msat: chan.commitments.params.remote.htlc_minimum.to_msat(),
                    },
                ))
            })
            .collect()
    }

    /// Pays `inv` to a payee that is not our peer: a route from our
    /// channels over the graph gossip taught us and the invoice's route
    /// hints, each hop's payload in the onion (BOLT 4).
    pub(super) fn pay_routed(
        &mut self,
        inv: &Invoice,
        amount: Option<Msat>,
        now_secs: u64,
        session_key: SecretKey,
        command: CommandId,
    ) -> Result<(), Failure> {
        let amount = amount_to_pay(inv, amount, now_secs).map_err(|e| Failure {
            kind: FailureKind::InvalidInvoice,
            message: e.to_string(),
        })?;
        let hash = inv.payment_hash();
        self.attempting.insert(
            hash,
            Attempting {
                invoice: inv.clone(),
                amount,
                session: session_key,
                attempts: 0,
                excluded_channels: HashSet::new(),
                excluded_nodes: HashSet::new(),
                hints: inv.route_hints().cloned().collect(),
                remaining: amount,
                parts: Vec::new(),
                reasons: Vec::new(),
                given_up: false,
                deadline: self.now + self.settings.payment_timeout,
            },
        );
        match self.attempt(hash) {
            Ok(()) => {
                self.waiting.insert(hash, command);
                Ok(())
            }
            Err(why) => {
                self.attempting.remove(&hash);
                Err(Failure {
                    kind: FailureKind::NoRoute,
                    message: why,
                })
            }
        }
    }

    /// One attempt of payment `hash`: what no part carries yet goes out on
    /// the best route found with what failures taught so far — in parts,
    /// when the payee takes them (BOLT 4 `basic_mpp`) and one route cannot
    /// carry it all.
    fn attempt(&mut self, hash: PaymentHash) -> Result<(), String> {
        let first = self.first_hops();
        let us = self.node_id();
        let height = self.height;
        // The scorer's clock is the core's (what it learned at).
        let scorer_now = u64::from(self.now_secs());
        let Some(a) = self.attempting.get_mut(&hash) else {
            return Err("no such payment".into());
        };
        if a.given_up {
            return Err("the payee refused it".into());
        }
        a.attempts += 1;
        if first.is_empty() {
            return Err("no active channel to pay from".into());
        }
        let payee = a.invoice.payee_node_id();
        let mpp = a.invoice.features().offers(beongae_wire::Feature::BasicMpp);
        let params = RouteParams {
            final_cltv_expiry_delta: final_cltv_expiry(&a.invoice, 0),
            first_hops: Some(
                first
                    .iter()
                    .filter(|(_, h)| !a.excluded_channels.contains(&h.short_channel_id))
                    .map(|(_, h)| h.clone())
                    .collect(),
            ),
            route_hints: a.hints.clone(),
            excluded_channels: a.excluded_channels.clone(),
            // BOLT 7: a node requiring features we do not know is not
            // routed through.
            excluded_nodes: a
                .excluded_nodes
                .iter()
                .chain(self.gossip.unroutable.iter().filter(|n| **n != payee))
                .copied()
                .collect(),
            allow_mpp: mpp,
            min_part_msat: 1_000_000,
            ..RouteParams::default()
        };
        let routes =
            beongae_graph::Router::new(&self.gossip.graph, &self.gossip.scorer, scorer_now)
                .pay(&us, &payee, a.remaining.to_msat(), &params)
                .map_err(|e| format!("no route to the payee {payee}: {e}"))?
                .parts;
        let (invoice, total, session, attempts) =
            (a.invoice.clone(), a.amount, a.session, a.attempts);
        let mut placed = Vec::new();
        for (n, route) in routes.iter().enumerate() {
            let payment = (&invoice, total, session, attempts);
            match self.place_part(hash, &first, route, n, height, payment) {
                Ok(part) => placed.push(part),
                Err(e) if placed.is_empty() => return Err(e),
                // Parts already out stay out (and are waited for); the rest
                // is placed again after them.
                Err(e) => {
                    tracing::info!(%hash, error = %e, "a part could not be offered");
                    break;
                }
            }
        }
        // Kept from the first attempt.
        let created = self
            .outgoing
            .get(&hash)
            .map_or(u64::from(self.now_secs()), |r| r.created);
        let Some(a) = self.attempting.get_mut(&hash) else {
            return Ok(());
        };
        for part in placed {
            a.remaining = Msat::from_msat(
                a.remaining
                    .to_msat()
                    .saturating_sub(part.delivered.to_msat()),
            );
            a.parts.push(part);
        }
        // The payment's record: its first part (what a restart reads a
        // failure with), what is out, the route of the first part.
        let (sent, delivered) = a.parts.iter().fold((0, 0), |(s, d), p| {
            (s + p.sent.to_msat(), d + p.delivered.to_msat())
        });
        let Some(first) = a.parts.first() else {
            return Err("no part could be offered".into());
        };
        let rec = OutgoingRecord {
            payment_hash: hash,
            amount: Msat::from_msat(sent),
            channel_id: first.channel,
            htlc_id: first.htlc,
            shared_secrets: first.secrets.clone(),
            status: OutgoingStatus::Pending,
            delivered: Msat::from_msat(delivered),
            attempts: a.attempts,
            route: first.path.iter().map(|h| h.node_id).collect(),
            created,
        };
        self.batch
            .put(NS_PAYMENTS, super::pay::key(b'o', &hash), rec.encode());
        self.outgoing.insert(hash, rec);
        if a.remaining != Msat::ZERO && a.attempts < MAX_ATTEMPTS {
            // What could not be offered goes out again; if it cannot, the
            // parts out are waited for (the payment fails once none is).
            if let Err(e) = self.attempt(hash) {
                if let Some(a) = self.attempting.get_mut(&hash) {
                    a.reasons.push(e);
                }
            }
        }
        Ok(())
    }

    /// Offers part `n` of payment `hash` over `route`: its onion, its HTLC
    /// on our first channel of the route, its stored part record.
    fn place_part(
        &mut self,
        hash: PaymentHash,
        first: &[(ChannelId, FirstHop)],
        route: &beongae_graph::Route,
        n: usize,
        height: u32,
        (invoice, total, session, attempts): (&Invoice, Msat, SecretKey, u32),
    ) -> Result<Part, String> {
        let path: Vec<PathHop> = route
            .hops
            .iter()
            .map(|h| PathHop {
                node_id: h.node_id,
                short_channel_id: h.short_channel_id,
                amount: Msat::from_msat(h.amount_msat),
                cltv_expiry: height + h.cltv_expiry_delta,
            })
            .collect();
        let channel = path
            .first()
            .and_then(|h| {
                first
                    .iter()
                    .find(|(_, f)| f.short_channel_id == h.short_channel_id)
            })
            .map(|(id, _)| *id)
            .ok_or("the route does not start on one of our channels")?;
        // A new onion key per part of each attempt (BOLT 4: a session key
        // is never reused), derived from the payment's.
        let mut e = sha256::Hash::engine();
        e.input(&session.secret_bytes());
        e.input(&attempts.to_be_bytes());
        e.input(&(n as u32).to_be_bytes());
        let key = SecretKey::from_slice(&sha256::Hash::from_engine(e).to_byte_array())
            .map_err(|_| "session key")?;
        let p = pay_route(&self.secp, &key, invoice, &path, total).map_err(|e| e.to_string())?;
        let Some(entry) = self.entries.get_mut(&channel) else {
            return Err("the route's first channel is gone".into());
        };
        let peer = entry.peer;
        let Phase::Normal { chan, .. } = &mut entry.phase else {
            return Err("the route's first channel is not open".into());
        };
        let add = chan
            .send_add(p.amount, hash, p.cltv_expiry, p.onion.clone())
            .map_err(|e| format!("the first channel cannot carry the payment: {e}"))?;
        let delivered = path.last().map_or(Msat::ZERO, |h| h.amount);
        tracing::info!(%hash, hops = path.len(), part = n, fee_msat = route.fee_msat(), "paying over a route");
        self.batch.put(
            NS_PAYMENTS,
            super::mpp::part_key(b'q', &hash, channel, add.id),
            Vec::new(),
        );
        self.by_htlc.insert((channel, add.id), hash);
        self.send(peer, add.clone());
        self.touch(channel);
        Ok(Part {
            channel,
            htlc: add.id,
            sent: p.amount,
            delivered,
            path,
            secrets: p.shared_secrets,
        })
    }

    /// Attempt of payment `hash` failed with `reason`: read it (BOLT 4
    /// origin node), learn from it, and try again if another route may
    /// work. `None` if a new attempt is on its way; else why the payment
    /// failed for good.
    pub(super) fn route_failed(
        &mut self,
        hash: PaymentHash,
        part: Option<Part>,
        reason: &FailReason,
    ) -> Option<String> {
        let Some(part) = part else {
            return Some("a part of the payment failed".into());
        };
        let a = self.attempting.get_mut(&hash)?;
        let why = match reason {
            FailReason::Reason(bytes) => match read_failure(&part.secrets, bytes) {
                Ok(f) => {
                    let node = part
                        .path
                        .get(f.hop)
                        .map_or_else(String::new, |h| format!(", {}", h.node_id));
                    let text = format!(
                        "{} (from hop {}{node})",
                        crate::payments::failure_in_words(&f.message),
                        f.hop
                    );
                    let last = f.hop + 1 >= part.path.len();
                    if last {
                        // The payee refused it: no other route changes that.
                        a.reasons.push(text);
                        a.given_up = true;
                        return Some(summary(&a.reasons));
                    }
                    let graph_update = self.learn_from_failure(&part, f.hop, &f.message);
                    let a = self.attempting.get_mut(&hash)?;
                    if !graph_update {
                        learn(a, &part.path, f.hop, &f.message);
                    }
                    text
                }
                Err(_) => {
                    // Unreadable: leave out our first channel's peer's next
                    // hop (BOLT 4: the origin "MAY" use the source).
                    if let Some(h) = part.path.get(1) {
                        a.excluded_channels.insert(h.short_channel_id);
                    }
                    "a failure no hop's key reads".into()
                }
            },
            FailReason::Malformed { failure_code, .. } => {
                // Our peer could not read the onion (BOLT 4: from the
                // first hop): leave its channel out.
                if let Some(h) = part.path.first() {
                    a.excluded_channels.insert(h.short_channel_id);
                }
                format!("the first hop could not read the onion (failure code {failure_code:#06x})")
            }
        };
        let a = self.attempting.get_mut(&hash)?;
        a.reasons.push(why);
        self.try_again(hash)
    }

    /// A part of payment `hash` never reached a commitment: its channel's
    /// peer disconnected first, and BOLT 2 forgets updates no
    /// `commitment_signed` covered. No one can fulfil it, so its amount is
    /// placed again (over channels still connected) while the payment may
    /// try. `None` if a new attempt is on its way; else why the payment
    /// failed for good.
    pub(super) fn part_dropped(&mut self, hash: PaymentHash, part: Option<Part>) -> Option<String> {
        // Not one of this attempt's parts: nothing known to place again.
        let Some(part) = part else {
            return Some("a part of the payment failed".into());
        };
        let first = part
            .path
            .first()
            .map_or_else(String::new, |h| format!(" {}", h.node_id));
        let a = self.attempting.get_mut(&hash)?;
        a.reasons.push(format!(
            "the first hop{first} disconnected before the part was committed"
        ));
        self.try_again(hash)
    }

    /// A new attempt of payment `hash` for what no part carries, unless
    /// its attempts or its time are used up. `None` if it is on its way.
    fn try_again(&mut self, hash: PaymentHash) -> Option<String> {
        let a = self.attempting.get_mut(&hash)?;
        if a.attempts >= MAX_ATTEMPTS {
            return Some(summary(&a.reasons));
        }
        if self.now >= a.deadline {
            let secs = self.settings.payment_timeout.as_secs();
            return Some(format!(
                "{}; no new attempt: the payment timed out after {secs} s",
                summary(&a.reasons)
            ));
        }
        match self.attempt(hash) {
            Ok(()) => None,
            Err(e) => {
                let a = self.attempting.get_mut(&hash)?;
                a.reasons.push(e);
                Some(summary(&a.reasons))
            }
        }
    }
}

/// A part's path as the graph crate's route (what its scorer learns from).
fn route_of(path: &[PathHop]) -> beongae_graph::Route {
    beongae_graph::Route {
        hops: path
            .iter()
            .map(|h| beongae_graph::RouteHop {
                short_channel_id: h.short_channel_id,
                node_id: h.node_id,
                amount_msat: h.amount.to_msat(),
                cltv_expiry_delta: 0,
            })
            .collect(),
        shadow_cltv_delta: 0,
    }
}

impl Channels {
    /// What a failure from hop `hop` of `part` teaches beyond this payment:
    /// the scorer learns that the channel out of that node could not carry
    /// the amount (a `temporary_channel_failure`: liquidity) and that the
    /// channels before it could; a newer `channel_update` the failure
    /// carries for a channel of the graph is applied to it (BOLT 4, origin
    /// node: "SHOULD ... update its routing table"). True if it was (the
    /// channel may be tried again with it).
    fn learn_from_failure(&mut self, part: &Part, hop: usize, failure: &FailureMessage) -> bool {
        let Some(node) = part.path.get(hop).map(|h| h.node_id) else {
            return false;
        };
        let us = self.node_id();
        let now = u64::from(self.now_secs());
        if matches!(failure, FailureMessage::TemporaryChannelFailure { .. }) {
            let route = route_of(&part.path);
            self.gossip
                .scorer
                .path_failed(&self.gossip.graph, &us, &route, hop + 1, now);
        }
        if failure.code() & PERM != 0 {
            return false;
        }
        let Some(update) = update_in(failure).and_then(|b| signed_update(&b, &node)) else {
            return false;
        };
        let scid = update.short_channel_id;
        let Some(c) = self.gossip.graph.channel_by_scid(scid) else {
            return false;
        };
        let dir = usize::from(update.direction());
        // Only the erring node's own direction (another is not its to sign:
        // the graph would refuse it as a bad signature).
        if self.gossip.graph.node_id(c.nodes[dir]) != node {
            return false;
        }
        let had = c.policies[dir];
        self.on_channel_update(update, Some(node));
        let now_has = self
            .gossip
            .graph
            .channel_by_scid(scid)
            .and_then(|c| c.policies[dir]);
        now_has != had
            && !matches!(
                failure,
                FailureMessage::TemporaryChannelFailure { .. }
                    | FailureMessage::ChannelDisabled { .. }
            )
    }

    /// Part `(channel, htlc)` of payment `hash` was fulfilled: the scorer
    /// learns that each channel of its path carried its amount.
    pub(super) fn part_succeeded(&mut self, hash: PaymentHash, channel: ChannelId, htlc: u64) {
        let Some(route) = self.attempting.get(&hash).and_then(|a| {
            a.parts
                .iter()
                .find(|p| (p.channel, p.htlc) == (channel, htlc))
                .map(|p| route_of(&p.path))
        }) else {
            return;
        };
        let (us, now) = (self.node_id(), u64::from(self.now_secs()));
        self.gossip
            .scorer
            .path_succeeded(&self.gossip.graph, &us, &route, now);
    }

    /// Part `(channel, htlc)` of payment `hash` is resolved: out of the
    /// parts in flight, its amount to place again.
    pub(super) fn part_resolved(
        &mut self,
        hash: PaymentHash,
        channel: ChannelId,
        htlc: u64,
    ) -> Option<Part> {
        let a = self.attempting.get_mut(&hash)?;
        let at = a
            .parts
            .iter()
            .position(|p| (p.channel, p.htlc) == (channel, htlc))?;
        let part = a.parts.remove(at);
        a.remaining = Msat::from_msat(a.remaining.to_msat() + part.delivered.to_msat());
        Some(part)
    }
}

/// What an attempt's failure from hop `hop` (not the payee) teaches:
/// BOLT 4 §"Returning Errors", origin node: a node failure leaves the
/// node out; an update-carrying one applies the node's `channel_update`
/// (signed by it) to the route hint of that channel, or leaves the channel
/// out if nothing changes; any other leaves the channel out.
fn learn(a: &mut Attempting, path: &[PathHop], hop: usize, failure: &FailureMessage) {
    let Some(node) = path.get(hop).map(|h| h.node_id) else {
        return;
    };
    let Some(next) = path.get(hop + 1).map(|h| h.short_channel_id) else {
        return;
    };
    let code = failure.code();
    if code & NODE != 0 {
        a.excluded_nodes.insert(node);
        return;
    }
    if code & PERM == 0 {
        if let Some(update) = update_in(failure).and_then(|b| signed_update(&b, &node)) {
            if apply(&mut a.hints, &node, next, &update) {
                return;
            }
        }
    }
    a.excluded_channels.insert(next);
}

/// The `channel_update` bytes an update-carrying failure holds.
fn update_in(failure: &FailureMessage) -> Option<Vec<u8>> {
    use FailureMessage as F;
    match failure {
        F::TemporaryChannelFailure { channel_update }
        | F::AmountBelowMinimum { channel_update, .. }
        | F::FeeInsufficient { channel_update, .. }
        | F::IncorrectCltvExpiry { channel_update, .. }
        | F::ExpiryTooSoon { channel_update }
        | F::ChannelDisabled { channel_update, .. } => Some(channel_update.clone()),
        _ => None,
    }
}

/// `bytes` as a `channel_update` signed by `node` (with the message type,
/// as BOLT 4 asks, or without, as some nodes send it).
fn signed_update(bytes: &[u8], node: &NodeId) -> Option<ChannelUpdate> {
    let typed: Vec<u8> = if bytes.starts_with(&[0x01, 0x02]) {
        bytes.to_vec()
    } else {
        [&[0x01, 0x02][..], bytes].concat()
    };
    let Ok(Message::ChannelUpdate(u)) = Message::decode(&typed) else {
        return None;
    };
    let secp = bitcoin::secp256k1::Secp256k1::verification_only();
    let h = u.signed_hash().ok()?;
    secp.verify_ecdsa(
        &bitcoin::secp256k1::Message::from_digest(h),
        &u.signature,
        &node.pubkey(),
    )
    .ok()?;
    Some(u)
}

/// Applies `update` of `node` to the hint of its channel `scid` (the
/// failing hop's next channel); whether the hint changed.
fn apply(
    hints: &mut [RouteHint],
    node: &NodeId,
    scid: ShortChannelId,
    update: &ChannelUpdate,
) -> bool {
    let mut changed = false;
    for hop in hints.iter_mut().flat_map(|h| h.0.iter_mut()) {
        if hop.src_node_id == *node && hop.short_channel_id == scid {
            let new = (
                update.fee_base_msat,
                update.fee_proportional_millionths,
                update.cltv_expiry_delta,
            );
            if (
                hop.fee_base_msat,
                hop.fee_proportional_millionths,
                hop.cltv_expiry_delta,
            ) != new
            {
                (
                    hop.fee_base_msat,
                    hop.fee_proportional_millionths,
                    hop.cltv_expiry_delta,
                ) = new;
                changed = true;
            }
        }
    }
    changed
}

/// The reasons of every attempt, for the payer.
fn summary(reasons: &[String]) -> String {
    match reasons {
        [one] => one.clone(),
        many => format!("{} attempts failed: {}", many.len(), many.join("; ")),
    }
}
