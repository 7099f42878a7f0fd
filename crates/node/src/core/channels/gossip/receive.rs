//! Receiving gossip (BOLT 7, receiving node): each message checked with
//! the graph crate's rules, a `channel_announcement` against its funding
//! output on chain (looked up by the runtime, the messages for it held
//! meanwhile), then stored and queued for the next flush.

use beongae_graph::GossipError;
use beongae_wire::msgs::{ChannelAnnouncement, ChannelUpdate, Message, NodeAnnouncement};
use beongae_wire::{ChannelId, NetAddress, NodeId, ShortChannelId, Warning};
use bitcoin::{OutPoint, TxOut};

use super::{
    encode_channel, key_channel, key_node, key_update, KnownChannel, Pending, Queued,
    MAX_FUTURE_SECS, MAX_HELD, MAX_PENDING, MAX_PENDING_PER_PEER, NS_GOSSIP,
};
use crate::core::channels::{Channels, Phase};
use crate::core::{DisconnectReason, FundingLookup, Output};

impl Channels {
    /// A gossip message (BOLT 7 types 256-265) from peer `node`.
    pub(in crate::core) fn on_gossip(&mut self, node: NodeId, msg: Message) {
        match msg {
            Message::ChannelAnnouncement(a) => self.on_channel_announcement(a, Some(node)),
            Message::ChannelUpdate(u) => self.on_channel_update(u, Some(node)),
            Message::NodeAnnouncement(n) => self.on_node_announcement(n, Some(node)),
            Message::AnnouncementSignatures(s) => self.on_announcement_signatures(node, &s),
            Message::GossipTimestampFilter(f) => self.on_timestamp_filter(node, &f),
            Message::QueryChannelRange(q) => self.on_query_channel_range(node, &q),
            Message::ReplyChannelRange(r) => self.on_reply_channel_range(node, &r),
            Message::QueryShortChannelIds(q) => self.on_query_short_channel_ids(node, &q),
            Message::ReplyShortChannelIdsEnd(e) => self.on_reply_short_channel_ids_end(node, &e),
            _ => {}
        }
    }

    /// Gossip from `from` ignored: logged, and counted as junk when it is
    /// invalid rather than merely old or early (a stale update costs a
    /// comparison, and several peers send the same gossip).
    pub(super) fn gossip_junk(&mut self, from: Option<NodeId>, what: &str, e: &GossipError) {
        let Some(node) = from else {
            return;
        };
        tracing::debug!(peer = %node, error = %e, "ignored {what}");
        let harmless = matches!(
            e,
            GossipError::Stale { .. }
                | GossipError::Duplicate(_)
                | GossipError::UnknownChannel(_)
                | GossipError::UnknownNode(_)
        );
        if !harmless {
            let max = self.settings.gossip.max_junk_per_minute;
            self.gossip.junk(node, self.now, max);
        }
    }

    /// BOLT 7: a gossip message whose signature does not verify: "SHOULD
    /// send a `warning` and close the connection".
    fn bad_gossip_signature(&mut self, from: Option<NodeId>, what: &str) {
        if let Some(node) = from {
            self.gossip_violation(node, format!("{what} with an invalid signature"));
        }
    }

    /// A `warning` to `node`, and the connection closed.
    pub(in crate::core::channels) fn gossip_violation(&mut self, node: NodeId, text: String) {
        tracing::warn!(peer = %node, "{text}: closing the connection");
        if let Some(peer) = self.connected.get(&node).map(|(p, _)| *p) {
            self.send(node, Warning::new(ChannelId::ALL, &text));
            self.deferred.push(Output::Disconnect {
                peer,
                reason: DisconnectReason::ProtocolViolation(text),
            });
        }
    }

    /// BOLT 7 §"The `channel_announcement` Message", receiving node: the
    /// chain, the node order, no unknown even feature bit (no feature is
    /// defined for channels: "MUST NOT attempt to route messages through the
    /// channel") and the four signatures are checked here; the funding
    /// output once the chain answered ([`Channels::on_funding_looked_up`]).
    /// Each announcement costs the chain source a lookup, so a peer's are
    /// bounded, and ignored for a minute once it sent too many invalid ones.
    pub(super) fn on_channel_announcement(&mut self, a: ChannelAnnouncement, from: Option<NodeId>) {
        let scid = a.short_channel_id;
        if a.chain_hash != self.chain {
            let e = GossipError::WrongChain(a.chain_hash);
            return self.gossip_junk(from, "channel_announcement", &e);
        }
        // Several peers send the same announcement: not junk.
        if self.knows_channel(scid) {
            return;
        }
        if a.node_id_1.serialize() >= a.node_id_2.serialize() {
            return self.gossip_junk(from, "channel_announcement", &GossipError::NodeOrder);
        }
        let unknown_bits = a
            .features
            .check_required_supported(&beongae_wire::Features::empty())
            .is_err();
        if unknown_bits {
            let e = GossipError::UnknownRequiredFeature;
            return self.gossip_junk(from, "channel_announcement", &e);
        }
        if let Some(node) = from {
            let max = self.settings.gossip.max_junk_per_minute;
            if self.gossip.muted(&node, self.now, max) {
                return;
            }
            let of_peer = self.gossip.pending_by_peer.get(&node).copied();
            if of_peer.unwrap_or(0) >= MAX_PENDING_PER_PEER {
                tracing::debug!(peer = %node, %scid, "too many of this peer's announcements wait for the chain: ignored");
                return;
            }
        }
        if self.gossip.pending.len() >= MAX_PENDING {
            tracing::debug!(%scid, "too many announcements wait for the chain: ignored");
            return;
        }
        if !a.verify(&self.secp) {
            return self.bad_gossip_signature(from, "channel_announcement");
        }
        if let Some(node) = from {
            *self.gossip.pending_by_peer.entry(node).or_insert(0) += 1;
        }
        for n in [a.node_id_1, a.node_id_2] {
            self.gossip.pending_nodes.entry(n).or_insert(scid);
        }
        self.gossip.pending.insert(
            scid,
            Pending {
                ann: a,
                from,
                held: Vec::new(),
                since: self.now,
            },
        );
        self.gossip.to_look_up.push(scid);
    }

    /// Takes the pending announcement of `scid` out of the indexes.
    pub(super) fn take_pending(&mut self, scid: ShortChannelId) -> Option<Pending> {
        let p = self.gossip.pending.remove(&scid)?;
        if let Some(node) = p.from {
            if let Some(n) = self.gossip.pending_by_peer.get_mut(&node) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.gossip.pending_by_peer.remove(&node);
                }
            }
        }
        for n in [p.ann.node_id_1, p.ann.node_id_2] {
            if self.gossip.pending_nodes.get(&n) == Some(&scid) {
                self.gossip.pending_nodes.remove(&n);
            }
        }
        Some(p)
    }

    /// Applies what waited with a pending announcement.
    fn replay_held(&mut self, held: Vec<(Message, Option<NodeId>)>) {
        for (msg, from) in held {
            match msg {
                Message::ChannelUpdate(u) => self.on_channel_update(u, from),
                Message::NodeAnnouncement(n) => self.on_node_announcement(n, from),
                _ => {}
            }
        }
    }

    /// The chain's answer for announcements waiting on their funding.
    pub(in crate::core) fn on_funding_looked_up(
        &mut self,
        results: Vec<(ShortChannelId, FundingLookup)>,
    ) {
        for (scid, result) in results {
            let Some(p) = self.take_pending(scid) else {
                continue;
            };
            match result {
                Ok(Some((outpoint, out))) => {
                    if self.accept_announcement(p.ann, outpoint, out, p.from) {
                        self.replay_held(p.held);
                    }
                }
                Ok(None) => {
                    let e = GossipError::BadFunding(scid);
                    self.gossip_junk(p.from, "channel_announcement", &e)
                }
                Err(e) => {
                    tracing::info!(%scid, error = %e, "cannot look up a channel's funding output: announcement dropped")
                }
            }
        }
    }

    /// Adds an announcement whose funding output is `out` at `outpoint`
    /// (BOLT 7: "if the `short_channel_id`'s output does NOT correspond to a
    /// P2WSH using `bitcoin_key_1` and `bitcoin_key_2` ... MUST ignore the
    /// message"); stores and queues it. True if added.
    pub(in crate::core::channels) fn accept_announcement(
        &mut self,
        ann: ChannelAnnouncement,
        outpoint: OutPoint,
        out: TxOut,
        from: Option<NodeId>,
    ) -> bool {
        let now = self.now_secs();
        let scid = ann.short_channel_id;
        let capacity = out.value;
        match self.gossip.graph.apply_channel_announcement_with(
            &ann,
            || true,
            |_| Some(out.clone()),
            now,
        ) {
            Ok(_) => {}
            Err(GossipError::Duplicate(_)) => return false,
            Err(e) => {
                self.gossip_junk(from, "channel_announcement", &e);
                return false;
            }
        }
        let ours = self.node_id();
        let involves_us = ann.node_id_1 == ours || ann.node_id_2 == ours;
        let known = KnownChannel {
            ann,
            outpoint,
            capacity,
            updates: [None, None],
            spent_at: None,
            added_at: now,
        };
        if let Some(v) = encode_channel(&known) {
            self.batch.put(NS_GOSSIP, key_channel(scid), v);
        }
        self.gossip.by_outpoint.insert(outpoint, scid);
        self.gossip.channels.insert(scid, known);
        self.gossip.enqueue(Queued::Announcement(scid), from);
        // The same announcement waiting for the chain from a peer: what
        // waited with it applies now.
        if let Some(p) = self.take_pending(scid) {
            self.replay_held(p.held);
        }
        // Our own channel, announced to us by the peer before our side
        // completed: our update and node announcement follow.
        if involves_us && from.is_some() {
            let id = self.entries.iter().find_map(|(id, e)| match &e.phase {
                Phase::Normal { scid: Some(s), .. } if *s == scid => Some(*id),
                _ => None,
            });
            if let Some(id) = id {
                self.send_channel_update(id);
                self.publish_node_announcement(false);
            }
        }
        true
    }

    /// BOLT 7 §"The `channel_update` Message", receiving node.
    pub(in crate::core::channels) fn on_channel_update(
        &mut self,
        u: ChannelUpdate,
        from: Option<NodeId>,
    ) {
        let scid = u.short_channel_id;
        if u.chain_hash != self.chain {
            let e = GossipError::WrongChain(u.chain_hash);
            return self.gossip_junk(from, "channel_update", &e);
        }
        if !self.gossip.channels.contains_key(&scid) {
            if let Some(p) = self.gossip.pending.get_mut(&scid) {
                if p.held.len() < MAX_HELD {
                    p.held.push((Message::ChannelUpdate(u), from));
                }
                return;
            }
        }
        if u.timestamp > self.now_secs().saturating_add(MAX_FUTURE_SECS) {
            let e = GossipError::Stale {
                got: u.timestamp,
                have: self.now_secs(),
            };
            self.gossip_junk(from, "channel_update from the future", &e);
            let max = self.settings.gossip.max_junk_per_minute;
            if let Some(node) = from {
                self.gossip.junk(node, self.now, max);
            }
            return;
        }
        let dir = u.direction();
        // BOLT 7: the same timestamp with the same fields "SHOULD ignore";
        // with different fields "MAY blacklist this node_id" (we ignore it).
        match self.gossip.graph.apply_channel_update(&self.secp, &u) {
            Ok(_) => {}
            Err(GossipError::BadSignature) => {
                return self.bad_gossip_signature(from, "channel_update")
            }
            Err(e) => return self.gossip_junk(from, "channel_update", &e),
        }
        if let Ok(bytes) = Message::ChannelUpdate(u.clone()).encode() {
            self.batch.put(NS_GOSSIP, key_update(scid, dir), bytes);
        }
        if let Some(c) = self.gossip.channels.get_mut(&scid) {
            c.updates[usize::from(dir)] = Some(u);
        }
        self.gossip.enqueue(Queued::Update(scid, dir), from);
    }

    /// BOLT 7 §"The `node_announcement` Message", receiving node. One that
    /// arrives while its channel's announcement waits for the chain waits
    /// with it.
    pub(in crate::core::channels) fn on_node_announcement(
        &mut self,
        n: NodeAnnouncement,
        from: Option<NodeId>,
    ) {
        let known = self
            .gossip
            .graph
            .node(&n.node_id)
            .is_some_and(|i| !self.gossip.graph.node_channels(i).is_empty());
        if !known {
            if let Some(scid) = self.gossip.pending_nodes.get(&n.node_id) {
                if let Some(p) = self.gossip.pending.get_mut(scid) {
                    if p.held.len() < MAX_HELD {
                        p.held.push((Message::NodeAnnouncement(n), from));
                    }
                }
                return;
            }
        }
        let idx = match self.gossip.graph.apply_node_announcement(&self.secp, &n) {
            Ok(idx) => idx,
            Err(GossipError::BadSignature) => {
                return self.bad_gossip_signature(from, "node_announcement")
            }
            Err(e) => return self.gossip_junk(from, "node_announcement", &e),
        };
        let id = n.node_id;
        if self.gossip.graph.node_routable(idx) {
            self.gossip.unroutable.remove(&id);
        } else {
            self.gossip.unroutable.insert(id);
        }
        // BOLT 7: more than one DNS hostname: "SHOULD ignore the additional
        // data. MUST not forward the `node_announcement`" — the graph has
        // it; it is neither stored for relay nor answered with.
        let hostnames = n
            .addresses
            .0
            .iter()
            .filter(|a| matches!(a, NetAddress::Hostname { .. }))
            .count();
        if hostnames > 1 {
            return;
        }
        if let Ok(bytes) = Message::NodeAnnouncement(n.clone()).encode() {
            self.batch.put(NS_GOSSIP, key_node(&id), bytes);
        }
        self.gossip.nodes.insert(id, n);
        self.gossip.enqueue(Queued::Node(id), from);
    }
}
