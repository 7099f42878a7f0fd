//! BOLT 7 gossip in the core: the network graph this node routes over,
//! fed by the `channel_announcement`s, `channel_update`s and
//! `node_announcement`s peers send, checked with the graph crate's rules and
//! against the funding output on chain, stored so that they are relayed and
//! survive a restart, relayed to peers in a staggered broadcast, and pruned
//! when their funding is spent or they go stale. Queries and the initial
//! sync are in [`sync`]; our own announcements in `channels::announce`.

mod receive;
pub(super) mod sync;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use beongae_graph::{Graph, Scorer, ScorerParams, STALE_AFTER_SECS};
use beongae_wire::msgs::{
    AnnouncementSignatures, ChannelAnnouncement, ChannelUpdate, Message, NodeAnnouncement,
};
use beongae_wire::{ChainHash, ChannelId, NetAddress, NodeId, ShortChannelId};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, Block, OutPoint, TxOut, Txid};

use super::Channels;
use crate::core::Output;

/// Store namespace of the gossip we accepted: `c` + short channel id →
/// the funding outpoint, its value and the `channel_announcement`; `u` +
/// short channel id + direction → the latest `channel_update`; `n` + node
/// id → the latest `node_announcement`.
pub const NS_GOSSIP: &str = "gossip";

/// Store namespace of our channels opened with `announce_channel` (key: the
/// channel id; empty value).
pub const NS_PUBLIC: &str = "public";

/// BOLT 7 §"The `channel_announcement` Message": "once its funding output
/// has been spent OR reorganized out: SHOULD forget a channel after a
/// 12-block delay" (a splice's new announcement has time to arrive).
pub(super) const FORGET_AFTER_SPEND: u32 = 12;

/// Announcements waiting for their funding lookup at most; more are
/// ignored until lookups return (a peer cannot make us hold unbounded
/// state).
const MAX_PENDING: usize = 150_000;

/// Announcements of one peer waiting for their funding lookup at most
/// (the lookups cost the chain source work; a peer cannot take them all).
/// A sync receives the network's announcements (about 50,000 on mainnet)
/// faster than the lookups' answers come back through the core's queue:
/// an announcement refused here is lost to that sync.
const MAX_PENDING_PER_PEER: usize = 100_000;

/// A lookup not answered in this time is dropped (the announcement comes
/// again from a sync).
const PENDING_TIMEOUT: Duration = Duration::from_secs(120);

/// `query_channel_range`s of one peer answered in full per
/// [`RANGE_QUERY_WINDOW`]; more get one empty final reply (no channels in
/// the range, as far as that peer learns from us), which costs us nothing. A full
/// answer for the mainnet graph is about a megabyte and a checksum of every
/// update.
const RANGE_QUERIES_PER_WINDOW: u32 = 4;
const RANGE_QUERY_WINDOW: Duration = Duration::from_secs(600);

/// Messages held per pending announcement (its updates and its nodes'
/// announcements, which arrive right after it).
const MAX_HELD: usize = 6;

/// Relayed messages queued for one peer at most (behind what it asked
/// for); more are dropped for it.
const MAX_RELAY_QUEUE: usize = 20_000;

/// A `channel_update` stamped more than this far in the future is dropped
/// (BOLT 7: "if the `timestamp` is unreasonably far in the future: MAY
/// discard the `channel_update`").
const MAX_FUTURE_SECS: u32 = 24 * 3600;

/// How often stale channels are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What the node announces and how it gossips.
#[derive(Debug, Clone)]
pub struct GossipSettings {
    /// BOLT 7 §"Rebroadcasting": "SHOULD flush outgoing gossip messages
    /// once every 60 seconds, independently of the arrival times of the
    /// messages".
    pub flush_interval: Duration,
    /// Our `node_announcement` `alias` (UTF-8, at most 32 bytes).
    pub alias: String,
    /// Our `rgb_color`.
    pub color: [u8; 3],
    /// The addresses we announce (where we accept connections).
    pub addresses: Vec<NetAddress>,
    /// Peers we sync the graph from by queries at once.
    pub sync_peers: usize,
    /// Messages sent to one peer per tick when answering a query or a
    /// timestamp filter (the rest follow at the next ticks, so that a large
    /// answer never fills the connection's write queue).
    pub page_messages: usize,
    /// A query a peer leaves unanswered this long ends the sync with it.
    pub query_timeout: Duration,
    /// A public channel whose peer is away this long is announced disabled.
    pub disable_after: Duration,
    /// Our `channel_update`s and `node_announcement` are sent again when
    /// older than this (peers prune a channel whose updates are two weeks
    /// old).
    pub refresh_after: Duration,
    /// Junk (stale, duplicate-timestamp, unknown-channel or unfunded
    /// gossip) accepted from one peer per minute; beyond it the peer's
    /// gossip is ignored until the minute ends.
    pub max_junk_per_minute: u32,
}

impl Default for GossipSettings {
    fn default() -> Self {
        GossipSettings {
            flush_interval: Duration::from_secs(60),
            alias: String::new(),
            color: [0x33, 0x99, 0xff],
            addresses: Vec::new(),
            sync_peers: 2,
            page_messages: 1_000,
            query_timeout: Duration::from_secs(60),
            disable_after: Duration::from_secs(300),
            refresh_after: Duration::from_secs(7 * 24 * 3600),
            max_junk_per_minute: 2_000,
        }
    }
}

/// One channel of the network graph, for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphChannel {
    /// `short_channel_id`
    pub short_channel_id: ShortChannelId,
    /// `node_id_1` and `node_id_2`.
    pub nodes: [NodeId; 2],
    /// The funding output's value.
    pub capacity: Amount,
    /// The latest policy of each direction (from `node_id_1`, then 2).
    pub policies: [Option<beongae_graph::Policy>; 2],
}

/// One announced node of the network graph, for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    /// The node.
    pub node_id: NodeId,
    /// Its `alias`, as it announced it (self-chosen: not an identity).
    pub alias: String,
    /// Its `rgb_color`.
    pub color: [u8; 3],
    /// Where it accepts connections.
    pub addresses: Vec<NetAddress>,
    /// The `timestamp` of its announcement.
    pub timestamp: u32,
}

/// How much of the network the graph holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GraphCounts {
    /// Announced channels.
    pub channels: usize,
    /// Their directions with a `channel_update`.
    pub updates: usize,
    /// Nodes with a `node_announcement`.
    pub nodes: usize,
}

/// The network graph as gossip taught it, for the API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkGraph {
    /// Every announced channel, by short channel id.
    pub channels: Vec<GraphChannel>,
    /// Every node that announced itself, by node id.
    pub nodes: Vec<GraphNode>,
}

/// An announced channel as we keep it: the messages we relay and answer
/// queries with.
#[derive(Debug, Clone)]
pub(super) struct KnownChannel {
    pub(super) ann: ChannelAnnouncement,
    pub(super) outpoint: OutPoint,
    pub(super) capacity: Amount,
    /// The latest `channel_update` of each direction.
    pub(super) updates: [Option<ChannelUpdate>; 2],
    /// The height its funding output was seen spent at (stored: `s` +
    /// short channel id).
    pub(super) spent_at: Option<u32>,
    /// When we learned it (0 for one loaded from the store, until the
    /// first prune sets the load time).
    pub(super) added_at: u32,
}

impl KnownChannel {
    /// The timestamp a `channel_announcement` is relayed under: its latest
    /// update's (BOLT 7 `gossip_timestamp_filter`: "MUST consider the
    /// `timestamp` of the `channel_announcement` to be the `timestamp` of a
    /// corresponding `channel_update`"); `None` without one.
    pub(super) fn timestamp(&self) -> Option<u32> {
        self.updates.iter().flatten().map(|u| u.timestamp).max()
    }
}

/// An announcement whose funding output is being looked up, and what
/// arrived for it meanwhile.
#[derive(Debug)]
struct Pending {
    ann: ChannelAnnouncement,
    from: Option<NodeId>,
    held: Vec<(Message, Option<NodeId>)>,
    since: Duration,
}

/// A message queued for the next flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Queued {
    Announcement(ShortChannelId),
    Update(ShortChannelId, u8),
    Node(NodeId),
}

/// What one connected peer is owed and has asked for.
#[derive(Debug, Default)]
pub(super) struct GossipPeer {
    /// The peer offers `gossip_queries`.
    pub(super) queries: bool,
    /// Its `gossip_timestamp_filter`: `[first, first + range)`.
    pub(super) filter: Option<(u64, u64)>,
    /// What its filter asked for, still to send (a page per tick).
    pub(super) dump: Option<sync::Dump>,
    /// Its `query_short_channel_ids` being answered.
    pub(super) answer: Option<sync::Answer>,
    /// Gossip relayed to it, sent once the dump is through.
    pub(super) relay: VecDeque<Message>,
    /// A page is out and the next goes when the connection wrote it
    /// ([`Output::NotifyDrained`]), not at the tick.
    pub(super) awaiting_drain: bool,
    /// Our sync from it.
    pub(super) sync: sync::SyncState,
    /// Start of the current junk window and the junk counted in it.
    junk: (Duration, u32),
    /// Start of the current window of `query_channel_range`s answered in
    /// full, and their count.
    range_queries: (Duration, u32),
}

/// The gossip layer's state.
pub(in crate::core) struct Gossip {
    pub(in crate::core) graph: Graph,
    /// What payments taught about channels' liquidity.
    pub(super) scorer: Scorer,
    pub(super) channels: HashMap<ShortChannelId, KnownChannel>,
    pub(super) nodes: HashMap<NodeId, NodeAnnouncement>,
    by_outpoint: HashMap<OutPoint, ShortChannelId>,
    pending: HashMap<ShortChannelId, Pending>,
    /// Pending announcements per peer.
    pending_by_peer: HashMap<NodeId, usize>,
    /// A pending announcement of each node in one (its node announcement
    /// waits with it).
    pending_nodes: HashMap<NodeId, ShortChannelId>,
    /// Nodes whose announcement requires features we do not know (BOLT 7:
    /// not routed through).
    pub(super) unroutable: HashSet<NodeId>,
    /// The first tick ran (channel peers away since the start are noted).
    started: bool,
    /// Short channel ids to look up at the end of the input.
    to_look_up: Vec<ShortChannelId>,
    /// Messages for the next flush, with where they came from (`None`: ours).
    queue: BTreeMap<Queued, Option<NodeId>>,
    next_flush: Duration,
    next_prune: Duration,
    /// Ordered: what is sent to each peer goes out in the same order at
    /// every run (ADR 0013).
    pub(super) peers: BTreeMap<NodeId, GossipPeer>,
    /// A sync with a peer completed in this process.
    pub(super) synced: bool,
    /// Peers that left our gossip queries unanswered in this process: their
    /// next filter asks for two weeks (see `start_gossip_with`).
    pub(in crate::core) unanswered: BTreeSet<NodeId>,
    /// Our public channels: the peer's `announcement_signatures`, kept until
    /// ours are due too.
    pub(super) their_signatures: BTreeMap<ChannelId, AnnouncementSignatures>,
    /// Our public channels whose `announcement_signatures` we sent on the
    /// current connection.
    pub(super) signatures_sent: BTreeSet<ChannelId>,
    /// Our channels opened with `announce_channel`.
    pub(super) public: BTreeSet<ChannelId>,
    /// When each channel peer went away (for the disable bit).
    pub(super) away_since: BTreeMap<NodeId, Duration>,
    /// When our own announcements were last checked for a refresh.
    pub(super) next_refresh: Duration,
}

impl std::fmt::Debug for Gossip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gossip")
            .field("channels", &self.channels.len())
            .field("nodes", &self.nodes.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

fn key_channel(scid: ShortChannelId) -> Vec<u8> {
    let mut k = vec![b'c'];
    k.extend_from_slice(&scid.to_u64().to_be_bytes());
    k
}

fn key_update(scid: ShortChannelId, direction: u8) -> Vec<u8> {
    let mut k = vec![b'u'];
    k.extend_from_slice(&scid.to_u64().to_be_bytes());
    k.push(direction);
    k
}

fn key_spent(scid: ShortChannelId) -> Vec<u8> {
    let mut k = vec![b's'];
    k.extend_from_slice(&scid.to_u64().to_be_bytes());
    k
}

fn key_node(node: &NodeId) -> Vec<u8> {
    let mut k = vec![b'n'];
    k.extend_from_slice(&node.serialize());
    k
}

/// A stored channel: funding txid, output index, value, then the
/// `channel_announcement` message.
fn encode_channel(c: &KnownChannel) -> Option<Vec<u8>> {
    let mut v = Vec::with_capacity(44 + 432);
    v.extend_from_slice(c.outpoint.txid.as_byte_array());
    v.extend_from_slice(&c.outpoint.vout.to_be_bytes());
    v.extend_from_slice(&c.capacity.to_sat().to_be_bytes());
    v.extend(Message::ChannelAnnouncement(c.ann.clone()).encode().ok()?);
    Some(v)
}

fn decode_channel(v: &[u8]) -> Option<KnownChannel> {
    let txid = Txid::from_byte_array(v.get(..32)?.try_into().ok()?);
    let vout = u32::from_be_bytes(v.get(32..36)?.try_into().ok()?);
    let sat = u64::from_be_bytes(v.get(36..44)?.try_into().ok()?);
    let Ok(Message::ChannelAnnouncement(ann)) = Message::decode(v.get(44..)?) else {
        return None;
    };
    Some(KnownChannel {
        ann,
        outpoint: OutPoint::new(txid, vout),
        capacity: Amount::from_sat(sat),
        updates: [None, None],
        spent_at: None,
        added_at: 0,
    })
}

/// The store records (namespace [`NS_GOSSIP`]) of gossip checked
/// elsewhere: a node started on a store holding them has that graph, trusted
/// as its own store is (benchmarks; a graph restored from a copy).
pub fn import_records(
    channels: &[(ChannelAnnouncement, OutPoint, Amount)],
    updates: &[ChannelUpdate],
    nodes: &[NodeAnnouncement],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::with_capacity(channels.len() + updates.len() + nodes.len());
    for (ann, outpoint, capacity) in channels {
        let c = KnownChannel {
            ann: ann.clone(),
            outpoint: *outpoint,
            capacity: *capacity,
            updates: [None, None],
            spent_at: None,
            added_at: 0,
        };
        if let Some(v) = encode_channel(&c) {
            out.push((key_channel(ann.short_channel_id), v));
        }
    }
    for u in updates {
        if let Ok(v) = Message::ChannelUpdate(u.clone()).encode() {
            out.push((key_update(u.short_channel_id, u.direction()), v));
        }
    }
    for n in nodes {
        if let Ok(v) = Message::NodeAnnouncement(n.clone()).encode() {
            out.push((key_node(&n.node_id), v));
        }
    }
    out
}

impl Gossip {
    /// The gossip layer for `chain`, restored from the `gossip` and
    /// `public` namespaces. Stored messages were checked when they came;
    /// one that does not read is skipped (and logged).
    pub(super) fn load(
        chain: ChainHash,
        stored: &[(Vec<u8>, Vec<u8>)],
        public: &[(Vec<u8>, Vec<u8>)],
    ) -> Gossip {
        let mut g = Gossip {
            graph: Graph::new(chain),
            scorer: Scorer::new(ScorerParams::default()),
            channels: HashMap::new(),
            nodes: HashMap::new(),
            by_outpoint: HashMap::new(),
            pending: HashMap::new(),
            pending_by_peer: HashMap::new(),
            pending_nodes: HashMap::new(),
            unroutable: HashSet::new(),
            started: false,
            to_look_up: Vec::new(),
            queue: BTreeMap::new(),
            next_flush: Duration::ZERO,
            next_prune: Duration::ZERO,
            peers: BTreeMap::new(),
            synced: false,
            unanswered: BTreeSet::new(),
            their_signatures: BTreeMap::new(),
            signatures_sent: BTreeSet::new(),
            public: BTreeSet::new(),
            away_since: BTreeMap::new(),
            next_refresh: Duration::ZERO,
        };
        for (k, _) in public {
            if let Ok(id) = <[u8; 32]>::try_from(k.as_slice()) {
                g.public.insert(ChannelId(id));
            }
        }
        let mut bad = 0usize;
        for (k, v) in stored.iter().filter(|(k, _)| k.first() == Some(&b'c')) {
            match decode_channel(v) {
                Some(c)
                    if g.graph
                        .add_channel_unchecked(
                            c.ann.short_channel_id,
                            c.ann.node_id_1,
                            c.ann.node_id_2,
                            c.capacity,
                            0,
                        )
                        .is_ok() =>
                {
                    g.by_outpoint.insert(c.outpoint, c.ann.short_channel_id);
                    g.channels.insert(c.ann.short_channel_id, c);
                }
                _ => {
                    bad += 1;
                    tracing::warn!(key = ?k, "a stored channel_announcement does not read: skipped");
                }
            }
        }
        for (_, v) in stored.iter().filter(|(k, _)| k.first() == Some(&b'u')) {
            let Ok(Message::ChannelUpdate(u)) = Message::decode(v) else {
                bad += 1;
                continue;
            };
            if let Ok(dir) = g.graph.apply_channel_update_with(&u, |_| true) {
                if let Some(c) = g.channels.get_mut(&u.short_channel_id) {
                    c.updates[dir] = Some(u);
                }
            }
        }
        for (_, v) in stored.iter().filter(|(k, _)| k.first() == Some(&b'n')) {
            let Ok(Message::NodeAnnouncement(n)) = Message::decode(v) else {
                bad += 1;
                continue;
            };
            if let Ok(idx) = g.graph.apply_node_announcement_with(&n, || true) {
                if !g.graph.node_routable(idx) {
                    g.unroutable.insert(n.node_id);
                }
                g.nodes.insert(n.node_id, n);
            }
        }
        for (k, v) in stored.iter().filter(|(k, _)| k.first() == Some(&b's')) {
            let scid = k
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map(|b| ShortChannelId::from_u64(u64::from_be_bytes(b)));
            let height = v.as_slice().try_into().ok().map(u32::from_be_bytes);
            if let (Some(c), Some(h)) = (scid.and_then(|s| g.channels.get_mut(&s)), height) {
                c.spent_at = Some(h);
            }
        }
        if bad > 0 {
            tracing::warn!(bad, "stored gossip records that do not read were skipped");
        }
        g
    }

    /// Queues a message for the next flush.
    fn enqueue(&mut self, item: Queued, origin: Option<NodeId>) {
        self.queue.insert(item, origin);
    }

    /// A peer's gossip counted as junk (invalid, or an announcement
    /// without its funding output: what costs us work for nothing).
    fn junk(&mut self, node: NodeId, now: Duration, max: u32) {
        let Some(p) = self.peers.get_mut(&node) else {
            return;
        };
        if now.saturating_sub(p.junk.0) >= Duration::from_secs(60) {
            p.junk = (now, 0);
        }
        p.junk.1 = p.junk.1.saturating_add(1);
        if p.junk.1 == max.saturating_add(1) {
            tracing::warn!(peer = %node, max, "too much invalid gossip: ignoring this peer's channel announcements for a minute");
        }
    }

    /// Whether the peer's `query_channel_range` is answered in full: at most
    /// [`RANGE_QUERIES_PER_WINDOW`] per [`RANGE_QUERY_WINDOW`] (one sync
    /// asks once; a few more cover retries).
    pub(super) fn range_query_allowed(&mut self, node: NodeId, now: Duration) -> bool {
        let Some(p) = self.peers.get_mut(&node) else {
            return false;
        };
        if p.range_queries.1 == 0 || now.saturating_sub(p.range_queries.0) >= RANGE_QUERY_WINDOW {
            p.range_queries = (now, 0);
        }
        if p.range_queries.1 >= RANGE_QUERIES_PER_WINDOW {
            return false;
        }
        p.range_queries.1 += 1;
        true
    }

    /// Whether the peer's channel announcements are ignored for now.
    fn muted(&self, node: &NodeId, now: Duration, max: u32) -> bool {
        self.peers.get(node).is_some_and(|p| {
            now.saturating_sub(p.junk.0) < Duration::from_secs(60) && p.junk.1 > max
        })
    }
}

impl Channels {
    /// The time as a gossip `timestamp`.
    pub(super) fn now_secs(&self) -> u32 {
        u32::try_from(self.now.as_secs()).unwrap_or(u32::MAX)
    }

    /// Forgets an announced channel (its funding is spent and buried, or
    /// it went stale), and the announcements of nodes left without one.
    fn forget_channel(&mut self, scid: ShortChannelId) {
        let Some(c) = self.gossip.channels.remove(&scid) else {
            return;
        };
        self.gossip.graph.remove_channel(scid);
        self.gossip.by_outpoint.remove(&c.outpoint);
        self.batch.delete(NS_GOSSIP, key_channel(scid));
        self.batch.delete(NS_GOSSIP, key_update(scid, 0));
        self.batch.delete(NS_GOSSIP, key_update(scid, 1));
        self.batch.delete(NS_GOSSIP, key_spent(scid));
        for node in [c.ann.node_id_1, c.ann.node_id_2] {
            let alone = self
                .gossip
                .graph
                .node(&node)
                .is_none_or(|i| self.gossip.graph.node_channels(i).is_empty());
            if alone {
                self.gossip.unroutable.remove(&node);
                if self.gossip.nodes.remove(&node).is_some() {
                    self.batch.delete(NS_GOSSIP, key_node(&node));
                }
            }
        }
    }

    /// A block: announced channels whose funding it spends are forgotten
    /// [`FORGET_AFTER_SPEND`] blocks later (BOLT 7 §"Pruning the Network
    /// View"); the height of the spend is stored, so that a restart in
    /// between still forgets them.
    pub(super) fn gossip_block(&mut self, height: u32, block: &Block) {
        let mut spent = Vec::new();
        for tx in &block.txdata {
            for input in &tx.input {
                if let Some(scid) = self.gossip.by_outpoint.get(&input.previous_output) {
                    if let Some(c) = self.gossip.channels.get_mut(scid) {
                        if c.spent_at.is_none() {
                            c.spent_at = Some(height);
                            spent.push(*scid);
                        }
                    }
                }
            }
        }
        for scid in spent {
            self.batch
                .put(NS_GOSSIP, key_spent(scid), height.to_be_bytes().to_vec());
        }
        // (Sorted, as below: the channels are a `HashMap`, and what is
        // written and sent must not follow its order; ADR 0013.)
        let mut buried: Vec<ShortChannelId> = self
            .gossip
            .channels
            .iter()
            .filter(|(_, c)| c.spent_at.is_some_and(|h| height >= h + FORGET_AFTER_SPEND))
            .map(|(s, _)| *s)
            .collect();
        buried.sort_unstable();
        for scid in buried {
            tracing::debug!(%scid, "channel closed on chain: removed from the graph");
            self.forget_channel(scid);
        }
    }

    /// The block at `height` left the best chain: spends seen in it are
    /// undone, and announced channels whose `short_channel_id` names a
    /// position in it are forgotten: that position now holds another
    /// transaction, or none (found by the simulator, seed 9831: after a
    /// reorganisation another channel confirmed at the position of one
    /// still in the graph, and its honest `channel_update`s, checked
    /// against the old channel's nodes, failed as invalid signatures and
    /// closed every connection that relayed them). A channel whose funding
    /// confirms again is announced again with its new position.
    pub(super) fn gossip_block_disconnected(&mut self, height: u32) {
        let mut gone: Vec<ShortChannelId> = self
            .gossip
            .channels
            .keys()
            .filter(|scid| scid.block() >= height)
            .copied()
            .collect();
        gone.sort_unstable();
        for scid in gone {
            tracing::info!(%scid, "the block of an announced channel left the chain: removed from the graph");
            self.forget_channel(scid);
        }
        let mut unspent = Vec::new();
        for (scid, c) in self.gossip.channels.iter_mut() {
            if c.spent_at.is_some_and(|h| h >= height) {
                c.spent_at = None;
                unspent.push(*scid);
            }
        }
        unspent.sort_unstable();
        for scid in unspent {
            self.batch.delete(NS_GOSSIP, key_spent(scid));
        }
    }

    /// BOLT 7 §"Recommendation on Pruning Stale Entries": "if the
    /// `timestamp` of the latest `channel_update` in either direction is
    /// older than two weeks ... MAY prune the channel" — the older of the
    /// updates it has; one without any counts from when we learned it (one
    /// loaded from the store, from the first prune after). Our own channels
    /// stay.
    fn prune_stale_gossip(&mut self) {
        let now = self.now_secs();
        let ours = self.node_id();
        for c in self.gossip.channels.values_mut() {
            if c.added_at == 0 {
                c.added_at = now;
            }
        }
        let mut stale: Vec<ShortChannelId> = self
            .gossip
            .channels
            .iter()
            .filter(|(_, c)| {
                if c.ann.node_id_1 == ours || c.ann.node_id_2 == ours {
                    return false;
                }
                let oldest = c
                    .updates
                    .iter()
                    .flatten()
                    .map(|u| u.timestamp)
                    .min()
                    .unwrap_or(c.added_at);
                now.saturating_sub(oldest) > STALE_AFTER_SECS
            })
            .map(|(s, _)| *s)
            .collect();
        stale.sort_unstable();
        if !stale.is_empty() {
            tracing::info!(count = stale.len(), "pruning stale channels from the graph");
        }
        for scid in stale {
            self.forget_channel(scid);
        }
    }

    /// The gossip timers: the staggered flush, pages of answers, lookups
    /// and query timeouts, our own announcements' refresh and the disable
    /// bit, and pruning.
    pub(in crate::core) fn gossip_tick(&mut self) {
        if !self.gossip.started {
            // Channel peers not back since the start: the disable bit
            // follows after `disable_after`, as if they had just left.
            self.gossip.started = true;
            let away: BTreeSet<NodeId> = self
                .entries
                .values()
                .map(|e| e.peer)
                .filter(|p| !self.connected.contains_key(p))
                .collect();
            for p in away {
                self.gossip.away_since.entry(p).or_insert(self.now);
            }
        }
        let mut expired: Vec<ShortChannelId> = self
            .gossip
            .pending
            .iter()
            .filter(|(_, p)| self.now.saturating_sub(p.since) >= PENDING_TIMEOUT)
            .map(|(s, _)| *s)
            .collect();
        expired.sort_unstable();
        for scid in expired {
            tracing::info!(%scid, "no answer from the chain for a channel's funding: announcement dropped");
            self.take_pending(scid);
        }
        if self.now >= self.gossip.next_flush {
            self.gossip.next_flush = self.now + self.settings.gossip.flush_interval;
            self.flush_gossip();
        }
        self.send_gossip_pages();
        self.sync_timeouts();
        self.refresh_announcements();
        if self.now >= self.gossip.next_prune {
            self.gossip.next_prune = self.now + PRUNE_EVERY;
            self.prune_stale_gossip();
        }
    }

    /// Lookups asked for during this input (emitted at its end).
    pub(super) fn take_lookups(&mut self) -> Option<Output> {
        if self.gossip.to_look_up.is_empty() {
            return None;
        }
        Some(Output::LookupFunding {
            scids: std::mem::take(&mut self.gossip.to_look_up),
        })
    }

    /// The message a queued item stands for now (the latest we have), with
    /// its timestamp; `None` if it is gone or (an announcement) has no
    /// update yet.
    fn queued_message(&self, item: Queued) -> Option<(Message, u32)> {
        match item {
            Queued::Announcement(scid) => {
                let c = self.gossip.channels.get(&scid)?;
                Some((Message::ChannelAnnouncement(c.ann.clone()), c.timestamp()?))
            }
            Queued::Update(scid, dir) => {
                let u = self.gossip.channels.get(&scid)?.updates[usize::from(dir & 1)].clone()?;
                let t = u.timestamp;
                Some((Message::ChannelUpdate(u), t))
            }
            Queued::Node(id) => {
                let n = self.gossip.nodes.get(&id)?.clone();
                let t = n.timestamp;
                Some((Message::NodeAnnouncement(n), t))
            }
        }
    }

    /// BOLT 7 §"Rebroadcasting": the queued gossip goes to every peer but
    /// the one it came from — ours to everyone, others' only to peers that
    /// sent a `gossip_timestamp_filter` it passes ("MUST not send gossip it
    /// did not generate itself, until it receives `gossip_timestamp_filter`").
    /// Announcements go before their updates, node announcements last; an
    /// announcement without an update waits for one. Each peer's share joins
    /// its relay queue, sent a page per tick after what it asked for (so
    /// that its dump's announcements precede these updates).
    pub(super) fn flush_gossip(&mut self) {
        let queue = std::mem::take(&mut self.gossip.queue);
        let mut messages: Vec<(Message, u32, Option<NodeId>)> = Vec::new();
        for (item, origin) in &queue {
            match self.queued_message(*item) {
                Some((m, t)) => messages.push((m, t, *origin)),
                None => {
                    if let Queued::Announcement(scid) = item {
                        if self.gossip.channels.contains_key(scid) {
                            self.gossip.queue.insert(*item, *origin);
                        }
                    }
                }
            }
        }
        if messages.is_empty() {
            return;
        }
        let targets: Vec<(NodeId, Option<(u64, u64)>)> = self
            .gossip
            .peers
            .iter()
            .map(|(n, p)| (*n, p.filter))
            .collect();
        for (node, filter) in targets {
            let Some(p) = self.gossip.peers.get_mut(&node) else {
                continue;
            };
            for (m, t, origin) in &messages {
                if *origin == Some(node) {
                    continue;
                }
                let pass = match (origin, filter) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(_), Some((first, end))) => (first..end).contains(&u64::from(*t)),
                };
                if pass && p.relay.len() < MAX_RELAY_QUEUE {
                    p.relay.push_back(m.clone());
                }
            }
            self.page_if_idle(node);
        }
    }

    /// A ready peer: its gossip state, our filter and (while the graph is
    /// not synced) a sync by queries.
    pub(in crate::core) fn gossip_peer_ready(&mut self, node: NodeId, queries: bool) {
        self.gossip.peers.insert(
            node,
            GossipPeer {
                queries,
                ..GossipPeer::default()
            },
        );
        self.gossip
            .signatures_sent
            .retain(|id| self.entries.get(id).is_none_or(|e| e.peer != node));
        self.gossip.away_since.remove(&node);
        self.start_gossip_with(node);
    }

    /// A peer went away.
    pub(in crate::core) fn gossip_peer_gone(&mut self, node: NodeId) {
        self.gossip.peers.remove(&node);
        self.gossip
            .signatures_sent
            .retain(|id| self.entries.get(id).is_none_or(|e| e.peer != node));
        if self.entries.values().any(|e| e.peer == node) {
            self.gossip.away_since.insert(node, self.now);
        }
    }

    /// The graph's size: `(channels, nodes with an announcement)`.
    pub(in crate::core) fn graph_size(&self) -> (usize, usize) {
        (self.gossip.channels.len(), self.gossip.nodes.len())
    }

    /// The graph's size for the API.
    pub(in crate::core) fn graph_counts(&self) -> GraphCounts {
        GraphCounts {
            channels: self.gossip.channels.len(),
            updates: self
                .gossip
                .channels
                .values()
                .map(|c| c.updates.iter().flatten().count())
                .sum(),
            nodes: self.gossip.nodes.len(),
        }
    }

    /// The graph for the API.
    pub(in crate::core) fn network_graph(&self) -> NetworkGraph {
        let g = &self.gossip.graph;
        let channels = self
            .known_scids()
            .into_iter()
            .filter_map(|scid| {
                let c = g.channel_by_scid(scid)?;
                Some(GraphChannel {
                    short_channel_id: scid,
                    nodes: [g.node_id(c.nodes[0]), g.node_id(c.nodes[1])],
                    capacity: c.capacity,
                    policies: c.policies,
                })
            })
            .collect();
        let mut nodes: Vec<GraphNode> = self
            .gossip
            .nodes
            .values()
            .map(|n| {
                let end = n.alias.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                GraphNode {
                    node_id: n.node_id,
                    alias: String::from_utf8_lossy(&n.alias[..end]).into_owned(),
                    color: n.rgb_color,
                    addresses: n.addresses.0.clone(),
                    timestamp: n.timestamp,
                }
            })
            .collect();
        nodes.sort_by_key(|n| n.node_id.serialize());
        NetworkGraph { channels, nodes }
    }

    /// Short channel ids of the announced channels, ascending.
    pub(super) fn known_scids(&self) -> Vec<ShortChannelId> {
        let mut v: Vec<ShortChannelId> = self.gossip.channels.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Whether we have an announcement for `scid` or are checking one.
    pub(super) fn knows_channel(&self, scid: ShortChannelId) -> bool {
        self.gossip.channels.contains_key(&scid) || self.gossip.pending.contains_key(&scid)
    }

    /// Our own channel's funding, as the announcement needs it.
    pub(super) fn own_funding(&self, id: ChannelId) -> Option<(OutPoint, TxOut)> {
        let super::Phase::Normal { chan, .. } = &self.entries.get(&id)?.phase else {
            return None;
        };
        let f = &chan.funded;
        let script = beongae_script::funding::funding_script_pubkey(
            &f.local_keys.funding_pubkey,
            &f.remote_keys.funding_pubkey,
        );
        Some((
            f.funding_outpoint,
            TxOut {
                value: f.funding_amount,
                script_pubkey: script,
            },
        ))
    }
}
