//! Our forwarding policy per channel, and the `channel_update`s that carry
//! policies between us and a channel peer (BOLT 7).
//!
//! A private channel's update of ours goes only to the peer (BOLT 7 §"The
//! `channel_update` Message": a node "MAY create a `channel_update` to
//! communicate the channel parameters to the channel peer, even though the
//! channel has not yet been announced"); the peer's update for its
//! direction is what our invoices' route hints name (BOLT 11 `r`).

use beongae_wire::msgs::{ChannelUpdate, Message};
use beongae_wire::{ChannelId, Msat, NodeId, ShortChannelId};
use bitcoin::secp256k1::{Message as Digest, PublicKey};

use super::{Channels, Phase};

/// Namespace of the peers' `channel_update`s for their direction of our
/// channels (`channel_id` → the message), kept for route hints.
pub const NS_PEER_UPDATES: &str = "peer_updates";

/// What we charge and require to forward an HTLC out over a channel
/// (BOLT 7 `channel_update` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardingPolicy {
    /// `fee_base_msat`
    pub fee_base_msat: u32,
    /// `fee_proportional_millionths`
    pub fee_proportional_millionths: u32,
    /// `cltv_expiry_delta`
    pub cltv_expiry_delta: u16,
}

impl Default for ForwardingPolicy {
    /// LND's defaults: 1 sat plus 1 ppm, 80 blocks. BOLT 2
    /// §"`cltv_expiry_delta` Selection": the delta must cover going to
    /// chain for the outgoing HTLC and claiming the incoming one (our
    /// deadlines: 1 block after an offered HTLC's expiry, 18 before a
    /// fulfilled one's), with room for a reorg and fee spikes.
    fn default() -> Self {
        ForwardingPolicy {
            fee_base_msat: 1_000,
            fee_proportional_millionths: 1,
            cltv_expiry_delta: 80,
        }
    }
}

impl ForwardingPolicy {
    /// BOLT 7: the fee to forward `amount`: `fee_base_msat + amount *
    /// fee_proportional_millionths / 1000000` (rounded down).
    pub fn fee(&self, amount: Msat) -> Msat {
        let prop =
            u128::from(amount.to_msat()) * u128::from(self.fee_proportional_millionths) / 1_000_000;
        Msat::from_msat(
            u64::from(self.fee_base_msat).saturating_add(u64::try_from(prop).unwrap_or(u64::MAX)),
        )
    }
}

/// BOLT 7: `direction` is 0 for the update of `node_id_1`, the node whose
/// compressed key is lesser.
pub(super) fn direction(ours: &NodeId, theirs: &NodeId) -> u8 {
    u8::from(ours.serialize() > theirs.serialize())
}

impl Channels {
    /// Our node id.
    pub(super) fn node_id(&self) -> NodeId {
        NodeId::from_pubkey(PublicKey::from_secret_key(&self.secp, &self.node_secret))
    }

    /// The policy we forward over channel `id` with.
    pub(super) fn policy(&self, _id: ChannelId) -> ForwardingPolicy {
        self.settings.policy
    }

    /// The short channel id our updates and route hints name channel `id`
    /// by: our alias for it (the channel is not announced).
    pub(super) fn update_scid(&self, id: ChannelId) -> Option<ShortChannelId> {
        self.local_alias(self.entries.get(&id)?.index)
    }

    /// Our signed `channel_update` for our direction of open channel `id`
    /// (BOLT 7): our policy, the peer's `htlc_minimum_msat` for HTLCs we
    /// offer, at most the peer's `max_htlc_value_in_flight_msat` (and the
    /// capacity) per HTLC; `disable` while the peer is not connected.
    pub(super) fn our_update(&self, id: ChannelId, timestamp: u32) -> Option<ChannelUpdate> {
        let entry = self.entries.get(&id)?;
        let Phase::Normal { chan, .. } = &entry.phase else {
            return None;
        };
        let policy = self.policy(id);
        let peer_limits = &chan.commitments.params.remote;
        let capacity = Msat::from_sat(chan.funded.funding_amount.to_sat()).unwrap_or(Msat::ZERO);
        let max = peer_limits.max_htlc_value_in_flight.min(capacity);
        let disabled = !(entry.live && self.connected.contains_key(&entry.peer));
        let mut update = ChannelUpdate {
            signature: bitcoin::secp256k1::ecdsa::Signature::from_compact(&[1; 64]).ok()?,
            chain_hash: self.chain,
            short_channel_id: self.update_scid(id)?,
            timestamp,
            message_flags: 1,
            channel_flags: direction(&self.node_id(), &entry.peer) | (u8::from(disabled) << 1),
            cltv_expiry_delta: policy.cltv_expiry_delta,
            htlc_minimum_msat: peer_limits.htlc_minimum.to_msat(),
            fee_base_msat: policy.fee_base_msat,
            fee_proportional_millionths: policy.fee_proportional_millionths,
            htlc_maximum_msat: max.to_msat(),
            excess_data: Vec::new(),
        };
        let digest = Digest::from_digest(update.signed_hash().ok()?);
        update.signature = self.secp.sign_ecdsa(&digest, &self.node_secret);
        Some(update)
    }

    /// Sends the peer our `channel_update` for channel `id` (private: to
    /// the peer only), once the channel is reestablished.
    pub(super) fn send_private_update(&mut self, id: ChannelId) {
        let timestamp = u32::try_from(self.now.as_secs()).unwrap_or(u32::MAX);
        let Some(update) = self.our_update(id, timestamp) else {
            return;
        };
        let peer = self.entries[&id].peer;
        self.send(peer, Message::ChannelUpdate(update));
    }

    /// A `channel_update` from peer `node`: kept if it is the peer's, for
    /// its direction of one of our channels with it (named by the alias we
    /// gave it, the one it gave us, or the real short channel id), and newer
    /// than the one we have. Anything else is gossip this node does not
    /// process yet.
    pub(in crate::core) fn on_peer_update(&mut self, node: NodeId, msg: &ChannelUpdate) {
        if msg.chain_hash != self.chain {
            return;
        }
        let ours = self.node_id();
        let id = self.entries.iter().find_map(|(id, e)| match &e.phase {
            Phase::Normal {
                scid, remote_alias, ..
            } if e.peer == node
                && [*scid, *remote_alias, self.local_alias(e.index)]
                    .contains(&Some(msg.short_channel_id)) =>
            {
                Some(*id)
            }
            _ => None,
        });
        let Some(id) = id else {
            return;
        };
        if msg.direction() != direction(&node, &ours) {
            return; // our own direction, as the peer saw it
        }
        let valid = msg.signed_hash().is_ok_and(|h| {
            self.secp
                .verify_ecdsa(&Digest::from_digest(h), &msg.signature, &node.pubkey())
                .is_ok()
        });
        if !valid {
            tracing::warn!(channel = %id, peer = %node, "channel_update with a bad signature: ignored");
            return;
        }
        if self
            .peer_updates
            .get(&id)
            .is_some_and(|u| u.timestamp >= msg.timestamp)
        {
            return;
        }
        if let Ok(bytes) = Message::ChannelUpdate(msg.clone()).encode() {
            self.batch.put(NS_PEER_UPDATES, id.0.to_vec(), bytes);
        }
        self.peer_updates.insert(id, msg.clone());
    }
}
