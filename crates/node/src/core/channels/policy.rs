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
/// Namespace of our policies set per channel (`channel_id` →
/// [`ForwardingPolicy::encode`]); other channels use the node's default.
pub const NS_POLICIES: &str = "policies";

/// The least `cltv_expiry_delta` we forward with: our fulfilment deadline
/// (18 blocks before an incoming HTLC expires), our timeout deadline (1
/// block after an outgoing one), the least an outgoing HTLC may leave (3),
/// 12 blocks to get our commitment and HTLC transactions confirmed, and 6
/// for the timeout to be buried before the incoming HTLC is failed.
pub const MIN_CLTV_EXPIRY_DELTA: u16 = 40;

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
    /// The least HTLC we forward out (`htlc_minimum_msat`; never below the
    /// peer's own minimum).
    pub htlc_minimum: Option<Msat>,
    /// The most one HTLC we forward out may carry (`htlc_maximum_msat`;
    /// never above the peer's `max_htlc_value_in_flight_msat` or the
    /// capacity).
    pub htlc_maximum: Option<Msat>,
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
            htlc_minimum: None,
            htlc_maximum: None,
        }
    }
}

impl ForwardingPolicy {
    /// Bytes for the store: fees and delta (10 bytes), then the HTLC
    /// limits (0 for none; 26 bytes in all).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(26);
        v.extend_from_slice(&self.fee_base_msat.to_be_bytes());
        v.extend_from_slice(&self.fee_proportional_millionths.to_be_bytes());
        v.extend_from_slice(&self.cltv_expiry_delta.to_be_bytes());
        v.extend_from_slice(&self.htlc_minimum.map_or(0, Msat::to_msat).to_be_bytes());
        v.extend_from_slice(&self.htlc_maximum.map_or(0, Msat::to_msat).to_be_bytes());
        v
    }

    /// Reads [`ForwardingPolicy::encode`] (10 bytes: written before the
    /// HTLC limits).
    pub fn decode(bytes: &[u8]) -> Option<ForwardingPolicy> {
        let head: [u8; 10] = bytes.get(..10)?.try_into().ok()?;
        let limit = |at: usize| -> Option<Option<Msat>> {
            match bytes.get(at..at + 8) {
                None if bytes.len() == 10 => Some(None),
                None => None,
                Some(b) => {
                    let v = u64::from_be_bytes(b.try_into().ok()?);
                    Some((v > 0).then_some(Msat::from_msat(v)))
                }
            }
        };
        if bytes.len() != 10 && bytes.len() != 26 {
            return None;
        }
        Some(ForwardingPolicy {
            fee_base_msat: u32::from_be_bytes([head[0], head[1], head[2], head[3]]),
            fee_proportional_millionths: u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
            cltv_expiry_delta: u16::from_be_bytes([head[8], head[9]]),
            htlc_minimum: limit(10)?,
            htlc_maximum: limit(18)?,
        })
    }

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

/// BOLT 7 §"HTLC Fees": a node "SHOULD accept HTLCs that pay an older
/// fee, for some reasonable time after sending `channel_update`" — and the
/// `channel_update` rules: "SHOULD keep accepting the previous channel
/// parameters for 10 minutes".
pub(super) const PREVIOUS_POLICY_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

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

    /// The policy we forward over channel `id` with: its own, or the
    /// node's default.
    pub(super) fn policy(&self, id: ChannelId) -> ForwardingPolicy {
        self.policies
            .get(&id)
            .copied()
            .unwrap_or(self.settings.policy)
    }

    /// `setpolicy`: channel `id`'s policy (every open channel's, for
    /// `None`), stored, and announced to the peer at once (a new
    /// `channel_update`). A `cltv_expiry_delta` below
    /// [`MIN_CLTV_EXPIRY_DELTA`] is refused, saying why.
    pub(in crate::core) fn set_policy(
        &mut self,
        id: Option<ChannelId>,
        policy: ForwardingPolicy,
    ) -> Result<Vec<ChannelId>, String> {
        if policy.cltv_expiry_delta < MIN_CLTV_EXPIRY_DELTA {
            return Err(format!(
                "cltv_expiry_delta {} is too small: at least {MIN_CLTV_EXPIRY_DELTA} blocks are needed to resolve a forwarded htlc on chain in time",
                policy.cltv_expiry_delta
            ));
        }
        let ids: Vec<ChannelId> = match id {
            Some(id) => match self.entries.get(&id).map(|e| &e.phase) {
                Some(Phase::Normal { .. }) => vec![id],
                Some(_) => return Err(format!("channel {id} is not open")),
                None => return Err(format!("no channel {id}")),
            },
            None => self
                .entries
                .iter()
                .filter(|(_, e)| matches!(e.phase, Phase::Normal { .. }))
                .map(|(id, _)| *id)
                .collect(),
        };
        if let (Some(min), Some(max)) = (policy.htlc_minimum, policy.htlc_maximum) {
            if min > max {
                return Err(format!(
                    "htlc minimum {} msat is above the htlc maximum {} msat",
                    min.to_msat(),
                    max.to_msat()
                ));
            }
        }
        for id in &ids {
            let old = self.policy(*id);
            if old != policy {
                let until = self.now + PREVIOUS_POLICY_GRACE;
                self.previous_policies.insert(*id, (old, until));
            }
            self.policies.insert(*id, policy);
            self.batch.put(NS_POLICIES, id.0.to_vec(), policy.encode());
            let live = self
                .entries
                .get(id)
                .is_some_and(|e| e.live && self.connected.contains_key(&e.peer));
            if live {
                self.send_channel_update(*id);
            }
        }
        Ok(ids)
    }

    /// The short channel id our `channel_update` to the peer names channel
    /// `id` by: its real one once the funding is confirmed, else the alias
    /// the peer gave us — ids the peer knows its channel by (LDK looks an
    /// update up by its own alias or the real id only; its own updates name
    /// the real id, as BOLT 7 lets a private channel's update do).
    pub(super) fn update_scid(&self, id: ChannelId) -> Option<ShortChannelId> {
        let e = self.entries.get(&id)?;
        match &e.phase {
            Phase::Normal {
                scid, remote_alias, ..
            } => scid.or(*remote_alias).or_else(|| self.local_alias(e.index)),
            _ => None,
        }
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
        let (min, max) = self.htlc_limits(id)?;
        let shutting = chan.shutdown.local.is_some() || chan.shutdown.remote.is_some();
        let disabled = !(entry.live && self.connected.contains_key(&entry.peer)) || shutting;
        // BOLT 7: "MUST set `htlc_minimum_msat` to less than or equal to
        // `htlc_maximum_msat`" — a policy whose minimum the channel cannot
        // carry makes no update.
        if min > max {
            tracing::warn!(channel = %id, min = min.to_msat(), max = max.to_msat(), "htlc minimum above what the channel can carry: no channel_update");
            return None;
        }
        let mut update = ChannelUpdate {
            signature: bitcoin::secp256k1::ecdsa::Signature::from_compact(&[1; 64]).ok()?,
            chain_hash: self.chain,
            short_channel_id: self.update_scid(id)?,
            timestamp,
            message_flags: 1,
            channel_flags: direction(&self.node_id(), &entry.peer) | (u8::from(disabled) << 1),
            cltv_expiry_delta: policy.cltv_expiry_delta,
            htlc_minimum_msat: min.to_msat(),
            fee_base_msat: policy.fee_base_msat,
            fee_proportional_millionths: policy.fee_proportional_millionths,
            htlc_maximum_msat: max.to_msat(),
            excess_data: Vec::new(),
        };
        let digest = Digest::from_digest(update.signed_hash().ok()?);
        update.signature = self.secp.sign_ecdsa(&digest, &self.node_secret);
        Some(update)
    }

    /// The least and most one HTLC we forward out over open channel `id`
    /// may carry: our policy's limits within the peer's minimum, its
    /// `max_htlc_value_in_flight_msat` and the capacity.
    pub(super) fn htlc_limits(&self, id: ChannelId) -> Option<(Msat, Msat)> {
        let Phase::Normal { chan, .. } = &self.entries.get(&id)?.phase else {
            return None;
        };
        let policy = self.policy(id);
        let peer = &chan.commitments.params.remote;
        let capacity = Msat::from_sat(chan.funded.funding_amount.to_sat()).unwrap_or(Msat::ZERO);
        let min = policy
            .htlc_minimum
            .map_or(peer.htlc_minimum, |m| m.max(peer.htlc_minimum));
        let max = policy
            .htlc_maximum
            .unwrap_or(capacity)
            .min(peer.max_htlc_value_in_flight)
            .min(capacity);
        Some((min, max))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_and_older_ones_read() {
        let p = ForwardingPolicy {
            fee_base_msat: 5_000,
            fee_proportional_millionths: 10,
            cltv_expiry_delta: 144,
            htlc_minimum: Some(Msat::from_msat(1_000)),
            htlc_maximum: None,
        };
        let bytes = p.encode();
        assert_eq!(bytes.len(), 26);
        assert_eq!(ForwardingPolicy::decode(&bytes), Some(p));
        // Written before the HTLC limits: 10 bytes.
        let old = ForwardingPolicy::decode(&bytes[..10]).unwrap();
        assert_eq!((old.htlc_minimum, old.htlc_maximum), (None, None));
        assert_eq!(old.cltv_expiry_delta, 144);
        assert_eq!(ForwardingPolicy::decode(&bytes[..11]), None);
        assert_eq!(p.fee(Msat::from_msat(30_000_000)), Msat::from_msat(5_300));
    }
}
