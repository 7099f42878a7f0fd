//! BOLT 7 §"Query Messages": answering `gossip_timestamp_filter`,
//! `query_channel_range` and `query_short_channel_ids`, and syncing our
//! graph from peers with the same queries.
//!
//! A node joining the network asks up to `sync_peers` peers for every short
//! channel id they know with the latest update timestamps
//! (`query_channel_range` with `query_option` bit 0), then asks, a chunk at
//! a time, for the announcements it lacks and the updates newer than its
//! own (`query_short_channel_ids` with `query_flags`). Live gossip comes
//! through the `gossip_timestamp_filter` sent to every peer that offers
//! `gossip_queries`, which asks for the last hour (a peer answers a filter
//! with what it has in the window, and LDK treats a window older than six
//! hours as a request for its whole graph).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use beongae_wire::msgs::{
    Checksums, EncodedShortIds, GossipTimestampFilter, Message, QueryChannelRange, QueryFlags,
    QueryOption, QueryShortChannelIds, ReplyChannelRange, ReplyShortChannelIdsEnd, Timestamps,
};
use beongae_wire::{ChannelId, NodeId, ShortChannelId, Warning};

use super::super::Channels;

/// Short channel ids per `query_short_channel_ids` we send.
const QUERY_CHUNK: usize = 1_000;

/// Short channel ids per `reply_channel_range` we send: with timestamps
/// and checksums each costs 24 bytes, within the 65,535-byte message.
const REPLY_CHUNK: usize = 2_500;

/// Our `gossip_timestamp_filter` asks for gossip stamped in the last hour
/// and after.
const LIVE_WINDOW_SECS: u32 = 3_600;

/// `query_flags` bits (BOLT 7): the announcement, the update of node 1 and
/// of node 2, the node announcement of node 1 and of node 2.
const FLAG_ANNOUNCEMENT: u64 = 1;
const FLAG_UPDATE_1: u64 = 2;
const FLAG_UPDATE_2: u64 = 4;
const FLAG_NODE_1: u64 = 8;
const FLAG_NODE_2: u64 = 16;
const FLAG_ALL: u64 = 31;

/// Short channel ids one sync may ask for at most (a few times the
/// network's size): a peer answering with more is not believed.
const MAX_WANTED: usize = 500_000;

/// Most peers remembered as having left our queries unanswered.
const MAX_UNANSWERED: usize = 1_000;

/// Our sync from one peer.
#[derive(Debug, Default)]
pub(in crate::core::channels) enum SyncState {
    /// Not syncing from it.
    #[default]
    Idle,
    /// We sent `query_channel_range` and collect what to ask for.
    Ranging {
        /// First block after the range asked for.
        end: u64,
        /// Where the replies reached.
        reached: u64,
        /// Short channel ids to ask for, with their `query_flags`.
        wanted: Vec<(ShortChannelId, u64)>,
        /// The ids already seen in the replies.
        seen: HashSet<ShortChannelId>,
        /// When the peer last answered.
        since: Duration,
    },
    /// We ask for what we lack, a chunk at a time.
    Querying {
        /// What is left to ask for.
        wanted: VecDeque<(ShortChannelId, u64)>,
        /// When the chunk in flight was sent.
        since: Duration,
    },
    /// Finished (or the peer stopped answering).
    Done,
}

/// What a peer's `gossip_timestamp_filter` asked for, still to send: the
/// channels (each announcement with its updates in the window) and then
/// the node announcements in the window. Only ids are kept; the messages
/// are the latest we have when their page goes.
#[derive(Debug, Default)]
pub(in crate::core::channels) struct Dump {
    first: u64,
    end: u64,
    channels: VecDeque<ShortChannelId>,
    nodes: VecDeque<NodeId>,
}

/// A peer's `query_short_channel_ids` being answered: the ids with their
/// `query_flags`, the nodes already sent in this answer, and the end.
#[derive(Debug)]
pub(in crate::core::channels) struct Answer {
    items: VecDeque<(ShortChannelId, u64)>,
    nodes_sent: HashSet<NodeId>,
    end: ReplyShortChannelIdsEnd,
}

impl SyncState {
    fn active(&self) -> bool {
        matches!(self, SyncState::Ranging { .. } | SyncState::Querying { .. })
    }
}

/// BOLT 7 `checksums_tlv`: "the CRC32C checksum as specified in
/// [RFC3720] ... of this `channel_update` without its `signature` and
/// `timestamp` fields" (0 without an update).
pub(super) fn update_checksum(u: Option<&beongae_wire::msgs::ChannelUpdate>) -> u32 {
    let Some(u) = u else {
        return 0;
    };
    let Ok(bytes) = Message::ChannelUpdate(u.clone()).encode() else {
        return 0;
    };
    // type (2), signature (64), chain_hash (32), short_channel_id (8),
    // timestamp (4), then the rest.
    let mut covered = Vec::with_capacity(bytes.len());
    covered.extend_from_slice(&bytes[66..106]);
    covered.extend_from_slice(&bytes[110..]);
    crc32c(&covered)
}

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), bitwise.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

impl Channels {
    /// Right after `init` with a peer that offers `gossip_queries`: our
    /// `gossip_timestamp_filter` (BOLT 7: "A node which wants any gossip
    /// messages has to send this") and, while the graph is not synced and
    /// fewer than `sync_peers` syncs are under way, a sync from it.
    ///
    /// A sync peer's filter asks for everything stamped since an hour
    /// before the newest gossip we have (two weeks, for an empty graph):
    /// peers answer a filter with what they have in its window (LDK, which
    /// answers no `query_short_channel_ids`, sends its whole graph for a
    /// window starting more than six hours ago). What the window misses
    /// (older gossip we never got) the range query finds. Other peers'
    /// filters ask for the last hour and what comes next.
    ///
    /// A peer that left our queries unanswered before (LDK) is asked for two
    /// weeks once more on its next connection: its queries could not fill
    /// the gaps, and it sends everything only for such a first filter.
    pub(super) fn start_gossip_with(&mut self, node: NodeId) {
        if !self.gossip.peers.get(&node).is_some_and(|p| p.queries) {
            return;
        }
        let now = self.now_secs();
        let syncing = self.sync_wanted();
        let first = if self.gossip.unanswered.remove(&node) {
            tracing::info!(peer = %node, "asking for two weeks of gossip: it left our queries unanswered");
            now.saturating_sub(beongae_graph::STALE_AFTER_SECS)
        } else if syncing {
            match self.newest_gossip() {
                Some(t) => t.min(now).saturating_sub(LIVE_WINDOW_SECS),
                None => now.saturating_sub(beongae_graph::STALE_AFTER_SECS),
            }
        } else {
            now.saturating_sub(LIVE_WINDOW_SECS)
        };
        let filter = GossipTimestampFilter {
            chain_hash: self.chain,
            first_timestamp: first,
            timestamp_range: u32::MAX,
            extension: Default::default(),
        };
        self.send(node, Message::GossipTimestampFilter(filter));
        if syncing {
            self.maybe_sync_from(node);
        }
    }

    /// The newest `channel_update` timestamp of others' channels we have.
    fn newest_gossip(&self) -> Option<u32> {
        let ours = self.node_id();
        self.gossip
            .channels
            .values()
            .filter(|c| c.ann.node_id_1 != ours && c.ann.node_id_2 != ours)
            .filter_map(|c| c.timestamp())
            .max()
    }

    /// Whether one more sync would start now.
    fn sync_wanted(&self) -> bool {
        !self.gossip.synced
            && self
                .gossip
                .peers
                .values()
                .filter(|p| p.sync.active())
                .count()
                < self.settings.gossip.sync_peers
    }

    /// Starts a sync from `node` if the graph needs one and fewer than
    /// `sync_peers` are under way.
    fn maybe_sync_from(&mut self, node: NodeId) {
        if !self.sync_wanted() {
            return;
        }
        let Some(p) = self.gossip.peers.get_mut(&node) else {
            return;
        };
        if !p.queries || !matches!(p.sync, SyncState::Idle) {
            return;
        }
        p.sync = SyncState::Ranging {
            end: u64::from(u32::MAX),
            reached: 0,
            wanted: Vec::new(),
            seen: HashSet::new(),
            since: self.now,
        };
        let q = QueryChannelRange {
            chain_hash: self.chain,
            first_blocknum: 0,
            number_of_blocks: u32::MAX,
            query_option: Some(QueryOption(1)),
            extension: Default::default(),
        };
        tracing::debug!(peer = %node, "syncing the graph by queries");
        self.send(node, Message::QueryChannelRange(q));
    }

    /// A `reply_channel_range` to our query: what we lack or have older
    /// updates of is noted; after the last reply (BOLT 7: its
    /// `first_blocknum` plus `number_of_blocks` reaches the end of our
    /// range) we start asking for it. Ids outside the range, repeated, or
    /// more than [`MAX_WANTED`] end the sync with the peer.
    pub(super) fn on_reply_channel_range(&mut self, node: NodeId, r: &ReplyChannelRange) {
        if r.chain_hash != self.chain {
            return;
        }
        let ids = &r.encoded_short_ids.0;
        let stamps = r
            .timestamps
            .as_ref()
            .filter(|t| t.0.len() == ids.len())
            .map(|t| t.0.clone());
        let mut found = Vec::new();
        for (i, scid) in ids.iter().enumerate() {
            let flags = match self.gossip.channels.get(scid) {
                None if self.knows_channel(*scid) => 0,
                None => FLAG_ALL,
                Some(c) => match &stamps {
                    Some(s) => {
                        let ours = |d: usize| c.updates[d].as_ref().map_or(0, |u| u.timestamp);
                        let mut f = 0;
                        if s[i].0 > ours(0) {
                            f |= FLAG_UPDATE_1;
                        }
                        if s[i].1 > ours(1) {
                            f |= FLAG_UPDATE_2;
                        }
                        f
                    }
                    None => 0,
                },
            };
            found.push((*scid, flags));
        }
        let now = self.now;
        let Some(p) = self.gossip.peers.get_mut(&node) else {
            return;
        };
        let SyncState::Ranging {
            end,
            reached,
            wanted,
            seen,
            since,
        } = &mut p.sync
        else {
            return; // not asked for
        };
        let mut bad = false;
        for (scid, flags) in found {
            if u64::from(scid.block()) >= *end || !seen.insert(scid) {
                bad = true;
                break;
            }
            if flags != 0 {
                wanted.push((scid, flags));
            }
        }
        if bad || wanted.len() > MAX_WANTED {
            tracing::info!(peer = %node, "reply_channel_range with ids out of range, repeated or too many: sync ended");
            p.sync = SyncState::Done;
            return;
        }
        *since = now;
        *reached = (*reached).max(u64::from(r.first_blocknum) + u64::from(r.number_of_blocks));
        if *reached >= *end {
            let wanted: VecDeque<_> = std::mem::take(wanted).into();
            tracing::debug!(peer = %node, wanted = wanted.len(), "channel range received");
            p.sync = SyncState::Querying { wanted, since: now };
            self.send_next_query(node);
        }
    }

    /// Asks `node` for the next chunk of what we lack; once none is left,
    /// the sync is done.
    fn send_next_query(&mut self, node: NodeId) {
        let now = self.now;
        let chain = self.chain;
        let Some(mut p) = self.gossip.peers.remove(&node) else {
            return;
        };
        // What is still missing now: the peer's answer to our timestamp
        // filter (or other peers) may have brought it meanwhile.
        let mut chunk: Vec<(ShortChannelId, u64)> = Vec::new();
        if let SyncState::Querying { wanted, .. } = &mut p.sync {
            while chunk.len() < QUERY_CHUNK {
                let Some((scid, flags)) = wanted.pop_front() else {
                    break;
                };
                let flags = self.still_wanted(scid, flags);
                if flags != 0 {
                    chunk.push((scid, flags));
                }
            }
        }
        self.gossip.peers.insert(node, p);
        let Some(p) = self.gossip.peers.get_mut(&node) else {
            return;
        };
        let SyncState::Querying { since, .. } = &mut p.sync else {
            return;
        };
        if chunk.is_empty() {
            p.sync = SyncState::Done;
            self.gossip.synced = true;
            let (channels, nodes) = self.graph_size();
            tracing::info!(peer = %node, channels, nodes, "graph synced");
            return;
        }
        *since = now;
        let q = QueryShortChannelIds {
            chain_hash: chain,
            encoded_short_ids: EncodedShortIds(chunk.iter().map(|(s, _)| *s).collect()),
            query_flags: Some(QueryFlags(chunk.iter().map(|(_, f)| *f).collect())),
            extension: Default::default(),
        };
        self.send(node, Message::QueryShortChannelIds(q));
    }

    /// Of what `flags` asked for channel `scid`, what we still lack: the
    /// announcement and its nodes' if we neither have nor check it, an
    /// update of a direction we have none of.
    fn still_wanted(&self, scid: ShortChannelId, flags: u64) -> u64 {
        if self.gossip.pending.contains_key(&scid) {
            return 0; // arriving (its updates wait with it)
        }
        let Some(c) = self.gossip.channels.get(&scid) else {
            return flags;
        };
        let mut f = flags & !FLAG_ANNOUNCEMENT;
        for (bit, d) in [(FLAG_UPDATE_1, 0), (FLAG_UPDATE_2, 1)] {
            // Asked for because the peer's was newer: kept; asked for
            // because we had no channel: only if still without one.
            if flags & FLAG_ANNOUNCEMENT != 0 && c.updates[d].is_some() {
                f &= !bit;
            }
        }
        for (bit, n) in [
            (FLAG_NODE_1, c.ann.node_id_1),
            (FLAG_NODE_2, c.ann.node_id_2),
        ] {
            if self.gossip.nodes.contains_key(&n) {
                f &= !bit;
            }
        }
        f
    }

    /// The end of the answer to our `query_short_channel_ids`.
    pub(super) fn on_reply_short_channel_ids_end(
        &mut self,
        node: NodeId,
        e: &ReplyShortChannelIdsEnd,
    ) {
        if e.chain_hash != self.chain {
            return;
        }
        if e.full_information == 0 {
            tracing::info!(peer = %node, "peer does not have full gossip for our chain");
        }
        self.send_next_query(node);
    }

    /// A sync whose peer stopped answering ends (LDK, for one, answers
    /// `query_channel_range` but not `query_short_channel_ids`); another
    /// peer is asked instead.
    pub(super) fn sync_timeouts(&mut self) {
        let timeout = self.settings.gossip.query_timeout;
        let now = self.now;
        let mut stalled = Vec::new();
        for (node, p) in &mut self.gossip.peers {
            let since = match &p.sync {
                SyncState::Ranging { since, .. } | SyncState::Querying { since, .. } => *since,
                _ => continue,
            };
            if now.saturating_sub(since) >= timeout {
                tracing::info!(peer = %node, "peer stopped answering our gossip queries");
                p.sync = SyncState::Done;
                stalled.push(*node);
            }
        }
        for node in &stalled {
            // Bounded: a peer with ever new node ids cannot grow it forever.
            if self.gossip.unanswered.len() < MAX_UNANSWERED {
                self.gossip.unanswered.insert(*node);
            }
        }
        if !stalled.is_empty() {
            let idle: Vec<NodeId> = self
                .gossip
                .peers
                .iter()
                .filter(|(_, p)| matches!(p.sync, SyncState::Idle))
                .map(|(n, _)| *n)
                .collect();
            for node in idle {
                self.maybe_sync_from(node);
            }
        }
    }

    /// BOLT 7 `gossip_timestamp_filter`, receiving node: relayed gossip is
    /// restricted to the window from now on ("this filter replaces any
    /// previous one"), and what we have in it "SHOULD send" — each
    /// announcement before its updates (an announcement goes with an update
    /// in the window), node announcements after; a page per tick.
    pub(super) fn on_timestamp_filter(&mut self, node: NodeId, f: &GossipTimestampFilter) {
        if f.chain_hash != self.chain {
            return;
        }
        let first = u64::from(f.first_timestamp);
        let end = first + u64::from(f.timestamp_range);
        let inside = |t: u32| (first..end).contains(&u64::from(t));
        let channels: VecDeque<ShortChannelId> = self
            .known_scids()
            .into_iter()
            .filter(|s| {
                self.gossip.channels[s]
                    .updates
                    .iter()
                    .flatten()
                    .any(|u| inside(u.timestamp))
            })
            .collect();
        let mut nodes: Vec<(NodeId, [u8; 33])> = self
            .gossip
            .nodes
            .values()
            .filter(|n| inside(n.timestamp))
            .map(|n| (n.node_id, n.node_id.serialize()))
            .collect();
        nodes.sort_by_key(|(_, k)| *k);
        let Some(p) = self.gossip.peers.get_mut(&node) else {
            return;
        };
        p.filter = Some((first, end));
        p.dump = Some(Dump {
            first,
            end,
            channels,
            nodes: nodes.into_iter().map(|(n, _)| n).collect(),
        });
        self.page_if_idle(node);
    }

    /// BOLT 7 `query_channel_range`, receiving node: "MUST respond with one
    /// or more `reply_channel_range`", each within a message: the first
    /// starting at the query's `first_blocknum`, each next one where the
    /// previous ended (a block's channels are never split), the last
    /// reaching the query's end with `sync_complete` set; timestamps and
    /// checksums when `query_option` asks.
    pub(super) fn on_query_channel_range(&mut self, node: NodeId, q: &QueryChannelRange) {
        let first = u64::from(q.first_blocknum);
        let end = (first + u64::from(q.number_of_blocks)).max(first + 1);
        let option = q.query_option.map_or(0, |o| o.0);
        let reply =
            |from: u64, until: u64, complete: bool, ids: Vec<ShortChannelId>| ReplyChannelRange {
                chain_hash: q.chain_hash,
                first_blocknum: from as u32,
                number_of_blocks: (until - from).min(u64::from(u32::MAX)) as u32,
                sync_complete: u8::from(complete),
                encoded_short_ids: EncodedShortIds(ids),
                timestamps: None,
                checksums: None,
                extension: Default::default(),
            };
        // Nothing we know of, or a peer over its limit of full answers: one
        // empty reply, the final one (BOLT 7: "MUST respond with one or more
        // reply_channel_range", the final with `sync_complete` set).
        let nothing = q.chain_hash != self.chain || q.number_of_blocks == 0;
        if nothing || !self.gossip.range_query_allowed(node, self.now) {
            if !nothing {
                tracing::debug!(peer = %node, "query_channel_range over the limit: an empty reply");
            }
            let r = reply(first, end, true, Vec::new());
            return self.send(node, Message::ReplyChannelRange(r));
        }
        let ids: Vec<ShortChannelId> = self
            .known_scids()
            .into_iter()
            .filter(|s| (first..end).contains(&u64::from(s.block())))
            .collect();
        // Parts of whole blocks, each at most REPLY_CHUNK ids (a block with
        // more than that, which no real block has, is cut at the limit).
        let mut parts: Vec<Vec<ShortChannelId>> = vec![Vec::new()];
        let mut i = 0;
        while i < ids.len() {
            let block = ids[i].block();
            let j = ids[i..]
                .iter()
                .position(|s| s.block() != block)
                .map_or(ids.len(), |k| i + k);
            let whole = &ids[i..j.min(i + REPLY_CHUNK)];
            let last = parts.last_mut().expect("never empty");
            if !last.is_empty() && last.len() + whole.len() > REPLY_CHUNK {
                parts.push(Vec::new());
            }
            parts
                .last_mut()
                .expect("never empty")
                .extend_from_slice(whole);
            i = j;
        }
        let count = parts.len();
        let mut from = first;
        for (k, part) in parts.into_iter().enumerate() {
            let until = if k + 1 == count {
                end
            } else {
                part.last().map_or(from + 1, |s| u64::from(s.block()) + 1)
            };
            let mut r = reply(from, until, k + 1 == count, part.clone());
            let updates = |s: &ShortChannelId| self.gossip.channels.get(s).map(|c| &c.updates);
            if option & 1 != 0 {
                r.timestamps = Some(Timestamps(
                    part.iter()
                        .map(|s| {
                            let t = |d: usize| {
                                updates(s)
                                    .and_then(|u| u[d].as_ref())
                                    .map_or(0, |u| u.timestamp)
                            };
                            (t(0), t(1))
                        })
                        .collect(),
                ));
            }
            if option & 2 != 0 {
                r.checksums = Some(Checksums(
                    part.iter()
                        .map(|s| {
                            let c =
                                |d: usize| update_checksum(updates(s).and_then(|u| u[d].as_ref()));
                            (c(0), c(1))
                        })
                        .collect(),
                ));
            }
            self.send(node, Message::ReplyChannelRange(r));
            from = until;
        }
    }

    /// BOLT 7 `query_short_channel_ids`, receiving node: for each channel we
    /// know, what the flags ask (without flags: the announcement, both
    /// updates and the nodes' announcements, each node once per answer),
    /// then `reply_short_channel_ids_end`; a page per tick. A query while
    /// the previous one is being answered ("MUST NOT send ... until it has
    /// received the `reply_short_channel_ids_end`"), or with a flag count
    /// that does not match, gets a `warning` ("MAY send a `warning`").
    pub(super) fn on_query_short_channel_ids(&mut self, node: NodeId, q: &QueryShortChannelIds) {
        let busy = self
            .gossip
            .peers
            .get(&node)
            .is_some_and(|p| p.answer.is_some());
        let ids = &q.encoded_short_ids.0;
        let flags_bad = q
            .query_flags
            .as_ref()
            .is_some_and(|f| f.0.len() != ids.len());
        if busy || flags_bad {
            let text = if busy {
                "query_short_channel_ids before the previous one was answered"
            } else {
                "query_short_channel_ids with a query_flags count that does not match its ids"
            };
            return self.send(node, Warning::new(ChannelId::ALL, text));
        }
        let ours = q.chain_hash == self.chain;
        let items: VecDeque<(ShortChannelId, u64)> = if ours {
            ids.iter()
                .enumerate()
                .map(|(i, s)| (*s, q.query_flags.as_ref().map_or(FLAG_ALL, |f| f.0[i])))
                .collect()
        } else {
            VecDeque::new()
        };
        let Some(p) = self.gossip.peers.get_mut(&node) else {
            return;
        };
        p.answer = Some(Answer {
            items,
            nodes_sent: HashSet::new(),
            end: ReplyShortChannelIdsEnd {
                chain_hash: q.chain_hash,
                full_information: u8::from(ours),
                extension: Default::default(),
            },
        });
        self.page_if_idle(node);
    }

    /// The messages answering one queried channel, as `flags` ask.
    fn answer_channel(
        &self,
        scid: ShortChannelId,
        flags: u64,
        nodes_sent: &mut HashSet<NodeId>,
    ) -> Vec<Message> {
        let mut out = Vec::new();
        let Some(c) = self.gossip.channels.get(&scid) else {
            return out;
        };
        if flags & FLAG_ANNOUNCEMENT != 0 {
            out.push(Message::ChannelAnnouncement(c.ann.clone()));
        }
        for (bit, d) in [(FLAG_UPDATE_1, 0), (FLAG_UPDATE_2, 1)] {
            if let Some(u) = c.updates[d].as_ref().filter(|_| flags & bit != 0) {
                out.push(Message::ChannelUpdate(u.clone()));
            }
        }
        for (bit, n) in [
            (FLAG_NODE_1, c.ann.node_id_1),
            (FLAG_NODE_2, c.ann.node_id_2),
        ] {
            if flags & bit != 0 && nodes_sent.insert(n) {
                if let Some(a) = self.gossip.nodes.get(&n) {
                    out.push(Message::NodeAnnouncement(a.clone()));
                }
            }
        }
        out
    }

    /// The messages of one dumped channel: its announcement and its updates
    /// in the window (nothing if none is in it any more).
    fn dump_channel(&self, scid: ShortChannelId, first: u64, end: u64) -> Vec<Message> {
        let Some(c) = self.gossip.channels.get(&scid) else {
            return Vec::new();
        };
        let updates: Vec<Message> = c
            .updates
            .iter()
            .flatten()
            .filter(|u| (first..end).contains(&u64::from(u.timestamp)))
            .map(|u| Message::ChannelUpdate(u.clone()))
            .collect();
        if updates.is_empty() {
            return updates;
        }
        let mut out = vec![Message::ChannelAnnouncement(c.ann.clone())];
        out.extend(updates);
        out
    }

    /// Sends the next page of what a peer is owed: what its filter asked
    /// for first (a syncing peer asks for both, and what the dump brings it
    /// need not be queried), then the answer to its query, then the gossip
    /// relayed to it.
    pub(super) fn send_page(&mut self, node: NodeId) {
        let budget = self.settings.gossip.page_messages.max(1);
        let mut page: Vec<Message> = Vec::new();
        let Some(mut p) = self.gossip.peers.remove(&node) else {
            return;
        };
        if let Some(mut d) = p.dump.take() {
            while page.len() < budget {
                if let Some(scid) = d.channels.pop_front() {
                    page.extend(self.dump_channel(scid, d.first, d.end));
                } else if let Some(n) = d.nodes.pop_front() {
                    let inside = |t: u32| (d.first..d.end).contains(&u64::from(t));
                    if let Some(a) = self.gossip.nodes.get(&n).filter(|a| inside(a.timestamp)) {
                        page.push(Message::NodeAnnouncement(a.clone()));
                    }
                } else {
                    break;
                }
            }
            if !d.channels.is_empty() || !d.nodes.is_empty() {
                p.dump = Some(d);
            }
        }
        if let Some(mut a) = p.answer.take() {
            while page.len() < budget {
                let Some((scid, flags)) = a.items.pop_front() else {
                    break;
                };
                page.extend(self.answer_channel(scid, flags, &mut a.nodes_sent));
            }
            if a.items.is_empty() && page.len() < budget {
                page.push(Message::ReplyShortChannelIdsEnd(a.end.clone()));
            } else {
                p.answer = Some(a);
            }
        }
        if p.dump.is_none() {
            while page.len() < budget {
                let Some(m) = p.relay.pop_front() else {
                    break;
                };
                page.push(m);
            }
        }
        let more = p.answer.is_some() || p.dump.is_some() || !p.relay.is_empty();
        p.awaiting_drain = more;
        self.gossip.peers.insert(node, p);
        for m in page {
            self.send(node, m);
        }
        // The next page once the connection wrote this one: as fast as the
        // peer reads, never more than a page queued.
        if more {
            if let Some(peer) = self.connected.get(&node).map(|(p, _)| *p) {
                self.deferred
                    .push(crate::core::Output::NotifyDrained { peer });
            }
        }
    }

    /// Sends a page to `node` unless one is out (the next goes when it is
    /// written).
    pub(super) fn page_if_idle(&mut self, node: NodeId) {
        if !self
            .gossip
            .peers
            .get(&node)
            .is_some_and(|p| p.awaiting_drain)
        {
            self.send_page(node);
        }
    }

    /// The connection to `node` wrote our last page: the next one.
    pub(in crate::core) fn gossip_drained(&mut self, node: NodeId) {
        let waiting = self
            .gossip
            .peers
            .get(&node)
            .is_some_and(|p| p.awaiting_drain);
        if waiting {
            self.send_page(node);
        }
    }

    /// A page for every peer owed one.
    pub(super) fn send_gossip_pages(&mut self) {
        let owed: Vec<NodeId> = self
            .gossip
            .peers
            .iter()
            .filter(|(_, p)| {
                !p.awaiting_drain && (p.answer.is_some() || p.dump.is_some() || !p.relay.is_empty())
            })
            .map(|(n, _)| *n)
            .collect();
        for node in owed {
            self.send_page(node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    #[test]
    fn crc32c_matches_rfc3720_vectors() {
        // RFC 3720 B.4: 32 bytes of zeros, of 0xff, and ascending.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46dd_794e);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }
}
