//! Our channels and our node in the gossip (BOLT 7): the
//! `announcement_signatures` exchange of a public channel, its
//! `channel_announcement`, the `channel_update`s of our direction (public
//! once announced, to the peer only before), and our `node_announcement`.

use std::collections::BTreeSet;

use beongae_wire::msgs::{
    Addresses, AnnouncementSignatures, ChannelAnnouncement, ChannelUpdate, Message,
    NodeAnnouncement,
};
use beongae_wire::{ChannelId, Features, NodeId, ShortChannelId};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::Message as Digest;

use super::gossip::NS_PUBLIC;
use super::{Channels, Phase};

/// BOLT 7 §"The `announcement_signatures` Message": "MUST NOT send
/// `announcement_signatures` messages until `channel_ready` has been sent
/// and received AND the funding transaction has at least six
/// confirmations."
pub(super) const ANNOUNCE_DEPTH: u32 = 6;

/// A signature that stands in for one not known yet (never sent).
fn placeholder() -> Signature {
    Signature::from_compact(&[1; 64]).expect("a valid compact encoding")
}

/// Whether two of our `channel_update`s say the same (all but the
/// signature and the timestamp).
fn same_update(a: &ChannelUpdate, b: &ChannelUpdate) -> bool {
    let mut b = b.clone();
    b.signature = a.signature;
    b.timestamp = a.timestamp;
    *a == b
}

impl Channels {
    /// Records that channel `id` was opened with `announce_channel` set.
    pub(super) fn mark_public(&mut self, id: ChannelId) {
        self.gossip.public.insert(id);
        self.batch.put(NS_PUBLIC, id.0.to_vec(), Vec::new());
    }

    /// The short channel id of public channel `id` once it may be
    /// announced: open, `channel_ready` both ways, the funding six blocks
    /// deep, and (BOLT 7) "a `shutdown` message has not been sent".
    fn announceable(&self, id: ChannelId) -> Option<ShortChannelId> {
        if !self.gossip.public.contains(&id) {
            return None;
        }
        let Phase::Normal {
            chan,
            scid: Some(scid),
            ..
        } = &self.entries.get(&id)?.phase
        else {
            return None;
        };
        let deep = self.height + 1 >= scid.block() + ANNOUNCE_DEPTH;
        (deep && chan.shutdown.local.is_none()).then_some(*scid)
    }

    /// The short channel id of our channel `id` if it is announced (in the
    /// graph).
    pub(super) fn announced(&self, id: ChannelId) -> Option<ShortChannelId> {
        let Phase::Normal {
            scid: Some(scid), ..
        } = &self.entries.get(&id)?.phase
        else {
            return None;
        };
        (self.gossip.public.contains(&id) && self.gossip.channels.contains_key(scid))
            .then_some(*scid)
    }

    /// Whether our channel `id` was announced an hour ago or more (time for
    /// the gossip to reach payers; until then invoices name it in a route
    /// hint).
    pub(super) fn announced_long_ago(&self, id: ChannelId) -> bool {
        self.announced(id)
            .and_then(|scid| self.gossip.channels.get(&scid))
            .is_some_and(|c| c.added_at != 0 && self.now_secs().saturating_sub(c.added_at) >= 3600)
    }

    /// Channel `id`'s `channel_announcement` for `scid` (BOLT 7: `node_id_1`
    /// the lesser key, the bitcoin keys the funding keys in the same order,
    /// no features), with our two signatures and placeholders for the
    /// peer's; and whether we are node 1.
    fn announcement_template(
        &self,
        id: ChannelId,
        scid: ShortChannelId,
    ) -> Option<(ChannelAnnouncement, bool)> {
        let e = self.entries.get(&id)?;
        let Phase::Normal { chan, .. } = &e.phase else {
            return None;
        };
        let ours = self.node_id();
        let (our_key, their_key) = (
            chan.funded.local_keys.funding_pubkey,
            chan.funded.remote_keys.funding_pubkey,
        );
        let first = ours.serialize() < e.peer.serialize();
        let (n1, n2, k1, k2) = if first {
            (ours, e.peer, our_key, their_key)
        } else {
            (e.peer, ours, their_key, our_key)
        };
        let mut ann = ChannelAnnouncement {
            node_signature_1: placeholder(),
            node_signature_2: placeholder(),
            bitcoin_signature_1: placeholder(),
            bitcoin_signature_2: placeholder(),
            features: Features::empty(),
            chain_hash: self.chain,
            short_channel_id: scid,
            node_id_1: n1,
            node_id_2: n2,
            bitcoin_key_1: k1,
            bitcoin_key_2: k2,
            excess_data: Vec::new(),
        };
        let digest = Digest::from_digest(ann.signed_hash().ok()?);
        let node_sig = self.secp.sign_ecdsa(&digest, &self.node_secret);
        let funding_key = self.secrets(e.index).0.funding_key;
        let bitcoin_sig = self.secp.sign_ecdsa(&digest, &funding_key);
        if first {
            ann.node_signature_1 = node_sig;
            ann.bitcoin_signature_1 = bitcoin_sig;
        } else {
            ann.node_signature_2 = node_sig;
            ann.bitcoin_signature_2 = bitcoin_sig;
        }
        Some((ann, first))
    }

    /// Sends our `announcement_signatures` for channel `id` once it is
    /// announceable, once per connection; announces the channel if the
    /// peer's are here.
    pub(super) fn send_announcement_signatures(&mut self, id: ChannelId) {
        if self.gossip.signatures_sent.contains(&id) {
            return self.complete_announcement(id);
        }
        let Some(e) = self.entries.get(&id) else {
            return;
        };
        if !e.live || !self.connected.contains_key(&e.peer) {
            return;
        }
        let peer = e.peer;
        let Some(scid) = self.announceable(id) else {
            return;
        };
        let Some((ann, first)) = self.announcement_template(id, scid) else {
            return;
        };
        let (node_signature, bitcoin_signature) = if first {
            (ann.node_signature_1, ann.bitcoin_signature_1)
        } else {
            (ann.node_signature_2, ann.bitcoin_signature_2)
        };
        self.send(
            peer,
            Message::AnnouncementSignatures(AnnouncementSignatures {
                channel_id: id,
                short_channel_id: scid,
                node_signature,
                bitcoin_signature,
                excess_data: Vec::new(),
            }),
        );
        self.gossip.signatures_sent.insert(id);
        self.complete_announcement(id);
    }

    /// Public channels that became announceable (a block, a reconnection):
    /// our signatures go out.
    pub(super) fn announce_due(&mut self) {
        let due: Vec<ChannelId> = self
            .gossip
            .public
            .iter()
            .filter(|id| !self.gossip.signatures_sent.contains(id))
            .filter(|id| self.announced(**id).is_none())
            .copied()
            .collect();
        for id in due {
            self.send_announcement_signatures(id);
        }
    }

    /// BOLT 7 `announcement_signatures`, recipient: the signatures must be
    /// the peer's over our channel's announcement (a wrong short channel
    /// id: "SHOULD send a `warning` and close the connection"; a bad
    /// signature: "MAY send a `warning` and close the connection"); kept
    /// until ours are due; "MUST respond to the first
    /// `announcement_signatures` message with its own".
    pub(in crate::core) fn on_announcement_signatures(
        &mut self,
        node: NodeId,
        msg: &AnnouncementSignatures,
    ) {
        let id = msg.channel_id;
        let Some(e) = self.entries.get(&id).filter(|e| e.peer == node) else {
            tracing::debug!(peer = %node, channel = %id, "announcement_signatures for a channel we do not have with this peer: ignored");
            return;
        };
        if !self.gossip.public.contains(&id) {
            tracing::info!(peer = %node, channel = %id, "announcement_signatures for a channel opened unannounced: ignored");
            return;
        }
        let scid = match &e.phase {
            Phase::Normal { scid: Some(s), .. } => *s,
            // Before our channel_ready: BOLT 7 "MAY defer handling".
            Phase::Funded { .. } | Phase::Normal { scid: None, .. } => {
                self.gossip.their_signatures.insert(id, msg.clone());
                return;
            }
            Phase::Closed(_) => return,
        };
        if msg.short_channel_id != scid {
            let text = format!(
                "announcement_signatures for channel {id} names {} but its funding is {scid}",
                msg.short_channel_id
            );
            return self.gossip_violation(node, text);
        }
        let Some((ann, first)) = self.announcement_template(id, scid) else {
            return;
        };
        let valid = ann.signed_hash().is_ok_and(|h| {
            let d = Digest::from_digest(h);
            let their_key = if first {
                ann.bitcoin_key_2
            } else {
                ann.bitcoin_key_1
            };
            self.secp
                .verify_ecdsa(&d, &msg.node_signature, &node.pubkey())
                .is_ok()
                && self
                    .secp
                    .verify_ecdsa(&d, &msg.bitcoin_signature, &their_key)
                    .is_ok()
        });
        if !valid {
            let text =
                format!("announcement_signatures for channel {id} with an invalid signature");
            return self.gossip_violation(node, text);
        }
        self.gossip.their_signatures.insert(id, msg.clone());
        self.send_announcement_signatures(id);
    }

    /// With both sides' signatures: the `channel_announcement` joins the
    /// graph and the broadcast (BOLT 7: "if it has sent AND received a valid
    /// `announcement_signatures` message: SHOULD queue the
    /// `channel_announcement` message for its peers"), then our
    /// `channel_update` and `node_announcement`.
    fn complete_announcement(&mut self, id: ChannelId) {
        if self.announced(id).is_some() || !self.gossip.signatures_sent.contains(&id) {
            return;
        }
        let Some(scid) = self.announceable(id) else {
            return;
        };
        let Some(theirs) = self
            .gossip
            .their_signatures
            .get(&id)
            .filter(|s| s.short_channel_id == scid)
            .cloned()
        else {
            return;
        };
        let Some((mut ann, first)) = self.announcement_template(id, scid) else {
            return;
        };
        if first {
            ann.node_signature_2 = theirs.node_signature;
            ann.bitcoin_signature_2 = theirs.bitcoin_signature;
        } else {
            ann.node_signature_1 = theirs.node_signature;
            ann.bitcoin_signature_1 = theirs.bitcoin_signature;
        }
        let Some((outpoint, out)) = self.own_funding(id) else {
            return;
        };
        if !ann.verify(&self.secp) {
            // Signatures kept from before our channel_ready (not checked
            // then): BOLT 7 "MAY send a `warning` and close the connection";
            // the peer sends them again on the next connection.
            self.gossip.their_signatures.remove(&id);
            let peer = self.entries[&id].peer;
            let text =
                format!("announcement_signatures for channel {id} with an invalid signature");
            return self.gossip_violation(peer, text);
        }
        if !self.accept_announcement(ann, outpoint, out, None) {
            return;
        }
        self.gossip.their_signatures.remove(&id);
        tracing::info!(channel = %id, %scid, "channel announced");
        self.send_channel_update(id);
        self.publish_node_announcement(false);
    }

    /// Our `channel_update` for channel `id` after a change (channel ready,
    /// reestablished, a new policy): broadcast once the channel is
    /// announced, else to the peer only (BOLT 7: a private channel's update
    /// "MUST set `dont_forward` to 1 in `message_flags`"). Each is newer
    /// than the last (BOLT 7: "greater than any previously-sent
    /// `channel_update` for this `short_channel_id`").
    pub(super) fn send_channel_update(&mut self, id: ChannelId) {
        if let Some(scid) = self.announced(id) {
            return self.publish_update(id, scid, false);
        }
        let timestamp = self.next_update_timestamp(id, None);
        let Some(mut update) = self.our_update(id, timestamp) else {
            return;
        };
        update.message_flags |= 2;
        let Some(update) = self.sign_update(update) else {
            return;
        };
        let peer = self.entries[&id].peer;
        self.send(peer, Message::ChannelUpdate(update));
    }

    /// The next timestamp of our updates of channel `id`: now, and above
    /// the last we made (in this process, or stored: `last`).
    fn next_update_timestamp(&mut self, id: ChannelId, last: Option<u32>) -> u32 {
        let now = self.now_secs().max(1);
        let floor = self
            .update_timestamps
            .get(&id)
            .copied()
            .max(last)
            .map_or(0, |t| t.saturating_add(1));
        let t = now.max(floor);
        self.update_timestamps.insert(id, t);
        t
    }

    /// Signs an update of ours after a change of its fields.
    fn sign_update(&self, mut u: ChannelUpdate) -> Option<ChannelUpdate> {
        let digest = Digest::from_digest(u.signed_hash().ok()?);
        u.signature = self.secp.sign_ecdsa(&digest, &self.node_secret);
        Some(u)
    }

    /// Our public update of announced channel `id`, unless it would say
    /// what the current one says and that one is fresh ("SHOULD NOT create
    /// redundant `channel_update`s"). Sent to the peer at once, and to
    /// everyone at the next flush.
    fn publish_update(&mut self, id: ChannelId, scid: ShortChannelId, refresh: bool) {
        let dir = super::policy::direction(&self.node_id(), &self.entries[&id].peer);
        let current = self
            .gossip
            .channels
            .get(&scid)
            .and_then(|c| c.updates[usize::from(dir)].clone());
        let probe = self.our_update(id, current.as_ref().map_or(1, |u| u.timestamp));
        let (Some(probe), Some(cur)) = (&probe, &current) else {
            return self.publish_update_now(id, current.map(|u| u.timestamp));
        };
        if same_update(probe, cur) && !refresh {
            return;
        }
        self.publish_update_now(id, Some(cur.timestamp));
    }

    fn publish_update_now(&mut self, id: ChannelId, last: Option<u32>) {
        let timestamp = self.next_update_timestamp(id, last);
        let Some(update) = self.our_update(id, timestamp) else {
            return;
        };
        let peer = self.entries[&id].peer;
        self.on_channel_update(update.clone(), None);
        self.send(peer, Message::ChannelUpdate(update));
    }

    /// Our `node_announcement` (BOLT 7): the node features we offer, our
    /// alias (UTF-8, cut at 32 bytes on a character boundary, zero-padded),
    /// colour and addresses in ascending type order, signed.
    fn our_node_announcement(&self, timestamp: u32) -> Option<NodeAnnouncement> {
        let mut alias = [0u8; 32];
        let text = &self.settings.gossip.alias;
        let mut end = text.len().min(32);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        alias[..end].copy_from_slice(&text.as_bytes()[..end]);
        let mut addresses = self.settings.gossip.addresses.clone();
        addresses.sort_by_key(|a| a.typ());
        let mut n = NodeAnnouncement {
            signature: placeholder(),
            features: crate::core::default_features(),
            timestamp,
            node_id: self.node_id(),
            rgb_color: self.settings.gossip.color,
            alias,
            addresses: Addresses(addresses),
            excess_data: Vec::new(),
        };
        let digest = Digest::from_digest(n.signed_hash().ok()?);
        n.signature = self.secp.sign_ecdsa(&digest, &self.node_secret);
        Some(n)
    }

    /// Announces our node once one of our channels is announced (BOLT 7: a
    /// node announcement without a known channel is ignored), when what it
    /// says changed or (`refresh`) it is old.
    pub(super) fn publish_node_announcement(&mut self, refresh: bool) {
        let ours = self.node_id();
        let has_channel = self
            .gossip
            .graph
            .node(&ours)
            .is_some_and(|i| !self.gossip.graph.node_channels(i).is_empty());
        if !has_channel {
            return;
        }
        let current = self.gossip.nodes.get(&ours).cloned();
        let Some(probe) = self.our_node_announcement(current.as_ref().map_or(0, |n| n.timestamp))
        else {
            return;
        };
        if let Some(cur) = &current {
            let mut p = probe.clone();
            p.signature = cur.signature;
            if p == *cur && !refresh {
                return;
            }
        }
        let timestamp = self
            .now_secs()
            .max(current.map_or(1, |n| n.timestamp.saturating_add(1)));
        let Some(n) = self.our_node_announcement(timestamp) else {
            return;
        };
        self.on_node_announcement(n.clone(), None);
        // The peers of our announced channels get it at once (the flush
        // brings it to everyone else).
        let peers: BTreeSet<NodeId> = self
            .gossip
            .public
            .iter()
            .filter(|id| self.announced(**id).is_some())
            .filter_map(|id| self.entries.get(id).map(|e| e.peer))
            .filter(|p| self.connected.contains_key(p))
            .collect();
        for p in peers {
            self.send(p, Message::NodeAnnouncement(n.clone()));
        }
    }

    /// Our announcements kept current (each tick): public channels that
    /// became announceable are, a channel whose peer has been away
    /// `disable_after` is announced disabled, and updates and the node
    /// announcement older than `refresh_after` are made again.
    pub(super) fn refresh_announcements(&mut self) {
        self.announce_due();
        let disable_after = self.settings.gossip.disable_after;
        let away: Vec<NodeId> = self
            .gossip
            .away_since
            .iter()
            .filter(|(_, t)| self.now.saturating_sub(**t) >= disable_after)
            .map(|(n, _)| *n)
            .collect();
        for node in away {
            self.gossip.away_since.remove(&node);
            let ids = self.channel_ids_with(node);
            for id in ids {
                if let Some(scid) = self.announced(id) {
                    self.publish_update(id, scid, false);
                }
            }
        }
        if self.now < self.gossip.next_refresh {
            return;
        }
        self.gossip.next_refresh = self.now + std::time::Duration::from_secs(3600);
        let old = self.now_secs().saturating_sub(
            u32::try_from(self.settings.gossip.refresh_after.as_secs()).unwrap_or(u32::MAX),
        );
        let ids: Vec<ChannelId> = self.gossip.public.iter().copied().collect();
        let ours = self.node_id();
        for id in ids {
            let Some(scid) = self.announced(id) else {
                continue;
            };
            let dir = super::policy::direction(&ours, &self.entries[&id].peer);
            let stale = self.gossip.channels[&scid].updates[usize::from(dir)]
                .as_ref()
                .is_none_or(|u| u.timestamp < old);
            if stale {
                self.publish_update(id, scid, true);
            }
        }
        let stale_node = self
            .gossip
            .nodes
            .get(&ours)
            .is_some_and(|n| n.timestamp < old);
        self.publish_node_announcement(stale_node);
    }
}
