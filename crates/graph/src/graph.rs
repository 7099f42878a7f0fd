//! The graph and the BOLT 7 receiver rules.

use std::collections::HashMap;

use beongae_script::funding::funding_script_pubkey;
use beongae_wire::msgs::{ChannelAnnouncement, ChannelUpdate, NodeAnnouncement};
use beongae_wire::{ChainHash, Features, NetAddress, NodeId, ShortChannelId};
use bitcoin::secp256k1::{Secp256k1, Verification};
use bitcoin::{Amount, TxOut};

/// BOLT 7: a node "MAY prune the channel" when the latest `channel_update`
/// of either direction is older than two weeks (1,209,600 seconds).
pub const STALE_AFTER_SECS: u32 = 1_209_600;

/// Index of a node in [`Graph`].
pub type NodeIdx = u32;
/// Index of a channel in [`Graph`].
pub type ChannelIdx = u32;

/// One direction's forwarding policy (from its latest `channel_update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `fee_base_msat`
    pub fee_base_msat: u32,
    /// `fee_proportional_millionths`
    pub fee_proportional_millionths: u32,
    /// `cltv_expiry_delta`
    pub cltv_expiry_delta: u16,
    /// `htlc_minimum_msat`
    pub htlc_minimum_msat: u64,
    /// `htlc_maximum_msat`
    pub htlc_maximum_msat: u64,
    /// `timestamp` of the update (0 for loaded snapshots).
    pub timestamp: u32,
    /// The `disable` bit.
    pub disabled: bool,
}

/// A channel: its two nodes (`nodes[0]` is `node_id_1`, the lesser) and a
/// policy per direction (`policies[0]` is from `node_id_1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// `short_channel_id`
    pub scid: ShortChannelId,
    /// `node_id_1`, `node_id_2`.
    pub nodes: [NodeIdx; 2],
    /// Value of the funding output.
    pub capacity: Amount,
    /// Direction 0 (from `node_id_1`) and 1.
    pub policies: [Option<Policy>; 2],
    /// When we learned of it (for pruning channels that never get updates).
    pub added_at: u32,
}

/// What a `node_announcement` told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// `timestamp`
    pub timestamp: u32,
    /// `alias`, trailing zero bytes removed.
    pub alias: Vec<u8>,
    /// `rgb_color`
    pub rgb_color: [u8; 3],
    /// `features`
    pub features: Features,
    /// `addresses`
    pub addresses: Vec<NetAddress>,
}

#[derive(Debug, Clone)]
struct Node {
    id: NodeId,
    /// Channels touching it (indices into `channels`).
    channels: Vec<ChannelIdx>,
    info: Option<NodeInfo>,
}

/// Why a gossip message was not applied (BOLT 7: ignored; for invalid
/// signatures the peer also gets a `warning`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GossipError {
    /// For another chain.
    #[error("for chain {0}, not ours")]
    WrongChain(ChainHash),
    /// A signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// An even feature bit we do not know.
    #[error("requires unknown feature bits")]
    UnknownRequiredFeature,
    /// `node_id_1` is not the lesser node id.
    #[error("node_id_1 is not the lesser node id")]
    NodeOrder,
    /// The funding output is missing, spent, or not the announced 2-of-2.
    #[error("funding output of {0} is missing, spent or not the announced 2-of-2")]
    BadFunding(ShortChannelId),
    /// Already known.
    #[error("channel {0} is already known")]
    Duplicate(ShortChannelId),
    /// A `channel_update` for a channel we do not know.
    #[error("channel {0} is unknown")]
    UnknownChannel(ShortChannelId),
    /// Not newer than what we have.
    #[error("timestamp {got} is not newer than {have}")]
    Stale {
        /// Received.
        got: u32,
        /// Stored.
        have: u32,
    },
    /// `htlc_maximum_msat` above the capacity, or below `htlc_minimum_msat`.
    #[error(
        "htlc_maximum_msat {max} is above the capacity {capacity} or below htlc_minimum_msat {min}"
    )]
    BadHtlcMaximum {
        /// `htlc_maximum_msat`
        max: u64,
        /// `htlc_minimum_msat`
        min: u64,
        /// Capacity in msat.
        capacity: u64,
    },
    /// A `node_announcement` for a node without a known channel.
    #[error("node {0} has no known channel")]
    UnknownNode(NodeId),
}

/// The network graph.
#[derive(Debug, Clone)]
pub struct Graph {
    chain: ChainHash,
    nodes: Vec<Node>,
    node_index: HashMap<NodeId, NodeIdx>,
    /// `None` once removed (indices stay stable).
    channels: Vec<Option<Channel>>,
    scid_index: HashMap<ShortChannelId, ChannelIdx>,
}

impl Graph {
    /// An empty graph for `chain`.
    pub fn new(chain: ChainHash) -> Self {
        Graph {
            chain,
            nodes: Vec::new(),
            node_index: HashMap::new(),
            channels: Vec::new(),
            scid_index: HashMap::new(),
        }
    }

    /// Number of nodes with at least one channel ever.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of channels (removed ones excluded).
    pub fn channel_count(&self) -> usize {
        self.scid_index.len()
    }

    /// The index of `id`, if known.
    pub fn node(&self, id: &NodeId) -> Option<NodeIdx> {
        self.node_index.get(id).copied()
    }

    /// The node id at `idx`.
    pub fn node_id(&self, idx: NodeIdx) -> NodeId {
        self.nodes[idx as usize].id
    }

    /// What the node announced, if anything.
    pub fn node_info(&self, idx: NodeIdx) -> Option<&NodeInfo> {
        self.nodes[idx as usize].info.as_ref()
    }

    /// Channels touching a node.
    pub fn node_channels(&self, idx: NodeIdx) -> &[ChannelIdx] {
        &self.nodes[idx as usize].channels
    }

    /// A channel by index (`None` if removed).
    pub fn channel(&self, idx: ChannelIdx) -> Option<&Channel> {
        self.channels.get(idx as usize).and_then(Option::as_ref)
    }

    /// The index of a channel, if known.
    pub fn channel_index(&self, scid: ShortChannelId) -> Option<ChannelIdx> {
        self.scid_index.get(&scid).copied()
    }

    /// A channel by short channel id.
    pub fn channel_by_scid(&self, scid: ShortChannelId) -> Option<&Channel> {
        self.scid_index.get(&scid).and_then(|i| self.channel(*i))
    }

    fn intern(&mut self, id: NodeId) -> NodeIdx {
        if let Some(i) = self.node_index.get(&id) {
            return *i;
        }
        let i = self.nodes.len() as NodeIdx;
        self.nodes.push(Node {
            id,
            channels: Vec::new(),
            info: None,
        });
        self.node_index.insert(id, i);
        i
    }

    /// Adds a channel without any check (snapshots, our own channels).
    pub fn add_channel_unchecked(
        &mut self,
        scid: ShortChannelId,
        node_1: NodeId,
        node_2: NodeId,
        capacity: Amount,
        now: u32,
    ) -> Result<ChannelIdx, GossipError> {
        if self.scid_index.contains_key(&scid) {
            return Err(GossipError::Duplicate(scid));
        }
        let (a, b) = (self.intern(node_1), self.intern(node_2));
        let idx = self.channels.len() as ChannelIdx;
        self.channels.push(Some(Channel {
            scid,
            nodes: [a, b],
            capacity,
            policies: [None, None],
            added_at: now,
        }));
        self.scid_index.insert(scid, idx);
        self.nodes[a as usize].channels.push(idx);
        self.nodes[b as usize].channels.push(idx);
        Ok(idx)
    }

    /// Sets a direction's policy without any check (snapshots).
    pub fn set_policy_unchecked(
        &mut self,
        idx: ChannelIdx,
        direction: usize,
        policy: Option<Policy>,
    ) {
        if let Some(Some(c)) = self.channels.get_mut(idx as usize) {
            c.policies[direction & 1] = policy;
        }
    }

    /// BOLT 7 §"The `channel_announcement` Message", receiving node: the
    /// chain, the required features, the node order, the four signatures
    /// and the funding output (`funding` returns the unspent output at the
    /// short channel id, or `None`).
    pub fn apply_channel_announcement<C: Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        msg: &ChannelAnnouncement,
        funding: impl Fn(ShortChannelId) -> Option<TxOut>,
        now: u32,
    ) -> Result<ChannelIdx, GossipError> {
        self.apply_channel_announcement_with(msg, || msg.verify(secp), funding, now)
    }

    /// [`Graph::apply_channel_announcement`] with the signature check
    /// given (done beforehand, see [`Graph::apply_batch`]).
    pub fn apply_channel_announcement_with(
        &mut self,
        msg: &ChannelAnnouncement,
        signatures_ok: impl FnOnce() -> bool,
        funding: impl Fn(ShortChannelId) -> Option<TxOut>,
        now: u32,
    ) -> Result<ChannelIdx, GossipError> {
        if msg.chain_hash != self.chain {
            return Err(GossipError::WrongChain(msg.chain_hash));
        }
        if self.scid_index.contains_key(&msg.short_channel_id) {
            return Err(GossipError::Duplicate(msg.short_channel_id));
        }
        if msg
            .features
            .check_required_supported(&Features::empty())
            .is_err()
        {
            return Err(GossipError::UnknownRequiredFeature);
        }
        if msg.node_id_1.serialize() >= msg.node_id_2.serialize() {
            return Err(GossipError::NodeOrder);
        }
        if !signatures_ok() {
            return Err(GossipError::BadSignature);
        }
        let expected = funding_script_pubkey(&msg.bitcoin_key_1, &msg.bitcoin_key_2);
        let out = funding(msg.short_channel_id)
            .filter(|o| o.script_pubkey == expected)
            .ok_or(GossipError::BadFunding(msg.short_channel_id))?;
        self.add_channel_unchecked(
            msg.short_channel_id,
            msg.node_id_1,
            msg.node_id_2,
            out.value,
            now,
        )
    }

    /// BOLT 7 §"The `channel_update` Message", receiving node: a known
    /// channel, the origin's signature, a newer timestamp,
    /// and `htlc_maximum_msat` within the capacity. Returns the direction.
    pub fn apply_channel_update<C: Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        msg: &ChannelUpdate,
    ) -> Result<usize, GossipError> {
        self.apply_channel_update_with(msg, |origin| msg.verify(secp, origin))
    }

    /// [`Graph::apply_channel_update`] with the signature check given.
    pub fn apply_channel_update_with(
        &mut self,
        msg: &ChannelUpdate,
        signature_ok: impl FnOnce(&NodeId) -> bool,
    ) -> Result<usize, GossipError> {
        if msg.chain_hash != self.chain {
            return Err(GossipError::WrongChain(msg.chain_hash));
        }
        let idx = *self
            .scid_index
            .get(&msg.short_channel_id)
            .ok_or(GossipError::UnknownChannel(msg.short_channel_id))?;
        let Some(Some(ch)) = self.channels.get(idx as usize) else {
            return Err(GossipError::UnknownChannel(msg.short_channel_id));
        };
        let dir = usize::from(msg.direction());
        let origin = self.nodes[ch.nodes[dir] as usize].id;
        // `must_be_one` is not checked: BOLT 7 §"Rationale", "a constant
        // value, and ignored by receivers".
        if let Some(p) = &ch.policies[dir] {
            if msg.timestamp <= p.timestamp {
                return Err(GossipError::Stale {
                    got: msg.timestamp,
                    have: p.timestamp,
                });
            }
        }
        let capacity = ch.capacity.to_sat().saturating_mul(1000);
        if msg.htlc_maximum_msat > capacity || msg.htlc_maximum_msat < msg.htlc_minimum_msat {
            return Err(GossipError::BadHtlcMaximum {
                max: msg.htlc_maximum_msat,
                min: msg.htlc_minimum_msat,
                capacity,
            });
        }
        if !signature_ok(&origin) {
            return Err(GossipError::BadSignature);
        }
        let policy = Policy {
            fee_base_msat: msg.fee_base_msat,
            fee_proportional_millionths: msg.fee_proportional_millionths,
            cltv_expiry_delta: msg.cltv_expiry_delta,
            htlc_minimum_msat: msg.htlc_minimum_msat,
            htlc_maximum_msat: msg.htlc_maximum_msat,
            timestamp: msg.timestamp,
            disabled: msg.is_disabled(),
        };
        self.set_policy_unchecked(idx, dir, Some(policy));
        Ok(dir)
    }

    /// BOLT 7 §"The `node_announcement` Message", receiving node: a node
    /// with a known channel, its signature, a newer timestamp. Unknown
    /// even feature bits do not refuse it (BOLT 7: the node is not to be
    /// routed through or connected to, see [`Graph::node_routable`]).
    pub fn apply_node_announcement<C: Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        msg: &NodeAnnouncement,
    ) -> Result<NodeIdx, GossipError> {
        self.apply_node_announcement_with(msg, || msg.verify(secp))
    }

    /// [`Graph::apply_node_announcement`] with the signature check given.
    pub fn apply_node_announcement_with(
        &mut self,
        msg: &NodeAnnouncement,
        signature_ok: impl FnOnce() -> bool,
    ) -> Result<NodeIdx, GossipError> {
        let idx = self
            .node(&msg.node_id)
            .filter(|i| !self.nodes[*i as usize].channels.is_empty())
            .ok_or(GossipError::UnknownNode(msg.node_id))?;
        if let Some(info) = &self.nodes[idx as usize].info {
            if msg.timestamp <= info.timestamp {
                return Err(GossipError::Stale {
                    got: msg.timestamp,
                    have: info.timestamp,
                });
            }
        }
        if !signature_ok() {
            return Err(GossipError::BadSignature);
        }
        let end = msg.alias.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        self.nodes[idx as usize].info = Some(NodeInfo {
            timestamp: msg.timestamp,
            alias: msg.alias[..end].to_vec(),
            rgb_color: msg.rgb_color,
            features: msg.features.clone(),
            addresses: msg.addresses.0.clone(),
        });
        Ok(idx)
    }

    /// Whether payments may go through node `idx`: BOLT 7, a node whose
    /// announced `features` have "unknown even bits: ... MUST NOT route a
    /// payment through the node".
    pub fn node_routable(&self, idx: NodeIdx) -> bool {
        self.node_info(idx).is_none_or(|i| {
            i.features
                .check_required_supported(&Features::known())
                .is_ok()
        })
    }

    /// Removes a channel (its funding output was spent).
    pub fn remove_channel(&mut self, scid: ShortChannelId) -> bool {
        let Some(idx) = self.scid_index.remove(&scid) else {
            return false;
        };
        if let Some(c) = self.channels[idx as usize].take() {
            for n in c.nodes {
                self.nodes[n as usize].channels.retain(|i| *i != idx);
            }
        }
        true
    }

    /// BOLT 7 §"Recommendation on Pruning Stale Entries": "if the
    /// `timestamp` of the latest `channel_update` in either direction is
    /// older than two weeks", the channel may be pruned — the *older* of the
    /// two directions counts, "since both sides need to be active". A
    /// direction that never had an update counts from when we learned of
    /// the channel. Returns how many went.
    pub fn prune_stale(&mut self, now: u32) -> usize {
        let stale: Vec<ShortChannelId> = self
            .channels
            .iter()
            .flatten()
            .filter(|c| {
                let oldest = c
                    .policies
                    .iter()
                    .map(|p| p.map_or(c.added_at, |p| p.timestamp))
                    .min()
                    .unwrap_or(c.added_at);
                now.saturating_sub(oldest) > STALE_AFTER_SECS
            })
            .map(|c| c.scid)
            .collect();
        stale.iter().filter(|s| self.remove_channel(**s)).count()
    }
}
