//! What the graph benches share: a deterministic PRNG, LDK's logger and
//! graph built from ours, timing helpers, the snapshot path, and a counting
//! global allocator so that a bench can report the heap bytes of a structure
//! (live bytes after building it minus live bytes before).
//!
//! Each bench that declares `mod common;` gets the allocator: it is the
//! `#[global_allocator]` of that bench binary.

pub mod signed;

use std::alloc::System;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use beongae_graph::Graph;
use bitcoin::constants::ChainHash;
use bitcoin::Network;
use lightning::ln::msgs::UnsignedChannelUpdate;
use lightning::routing::gossip::{NetworkGraph, NodeId as LdkNodeId};
use lightning::types::features::ChannelFeatures;
use lightning::util::logger::{Logger, Record};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

/// The system allocator, counting what it hands out and takes back (the
/// `stats_alloc` crate, so that no unsafe code is ours).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes allocated now (as requested: the allocator's own overhead per
/// block is not included).
pub fn live_bytes() -> usize {
    // A reallocation's growth or shrinkage is already in these two.
    let s = GLOBAL.stats();
    s.bytes_allocated - s.bytes_deallocated
}

/// `bytes` as "12.3 MiB (12,898,304 B)".
pub fn mib(bytes: usize) -> String {
    let digits = bytes.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{:.1} MiB ({grouped} B)", bytes as f64 / (1024.0 * 1024.0))
}

/// The process's peak resident set size (`VmHWM` of `/proc/self/status`),
/// in bytes; `None` off Linux. Includes code, stacks and allocator slack.
pub fn peak_rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The mainnet snapshot: `BEONGAE_GRAPH`, else `../shared/data/` beside the
/// workspace. Callers print a skip line and return if it does not exist.
pub fn snapshot_path() -> PathBuf {
    std::env::var("BEONGAE_GRAPH")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/data/mainnet-graph-2026-02-03.json.gz"
            ))
        })
}

/// The snapshot's path, printed; `None` (with a line saying the `bench`
/// is skipped) if it does not exist.
pub fn snapshot_or_skip(bench: &str) -> Option<PathBuf> {
    let path = snapshot_path();
    if !path.exists() {
        println!(
            "graph snapshot {} not found (set BEONGAE_GRAPH); skipping the {bench} benchmark",
            path.display()
        );
        return None;
    }
    println!("snapshot: {}", path.display());
    Some(path)
}

/// LDK's logger, silent.
pub struct NoLogger;
impl Logger for NoLogger {
    fn log(&self, _record: Record) {}
}

/// xorshift64: reproducible choices without a dependency.
pub struct XorShift(pub u64);
#[allow(dead_code)] // `below` and `unit` are used by `routes` only.
impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A duration in milliseconds.
#[allow(dead_code)] // not used by `sync`
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p` quantile of sorted durations (nearest rank).
#[allow(dead_code)] // used by `routes` only
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Heap bytes of an empty LDK `NetworkGraph`: it reserves its channel and
/// node maps for 60,000 channels and 20,000 nodes at construction, and its
/// `ChannelInfo` holds the signed announcement and both signed updates inline
/// (`Option`s), so most of its heap is reserved before any gossip arrives.
#[allow(dead_code)] // used by `gossip` only
pub fn ldk_empty_graph_heap() -> usize {
    let logger = NoLogger;
    let live = live_bytes();
    let ng = NetworkGraph::new(Network::Bitcoin, &logger);
    let heap = live_bytes() - live;
    drop(ng);
    heap
}

/// `size_of` LDK's per-channel and per-node records, for the reports.
#[allow(dead_code)] // used by `gossip` only
pub fn ldk_record_sizes() -> String {
    format!(
        "ChannelInfo {} B, NodeInfo {} B",
        std::mem::size_of::<lightning::routing::gossip::ChannelInfo>(),
        std::mem::size_of::<lightning::routing::gossip::NodeInfo>()
    )
}

/// LDK's graph from ours: same channels, same policies, capacity passed along.
/// Returns the graph and how many channels and updates LDK rejected.
#[allow(dead_code)] // used by `routes` only
pub fn build_ldk<'a>(
    graph: &Graph,
    logger: &'a NoLogger,
) -> (NetworkGraph<&'a NoLogger>, usize, usize) {
    let ng = NetworkGraph::new(Network::Bitcoin, logger);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (mut chan_err, mut upd_err) = (0, 0);
    for idx in 0..graph.channel_count() as u32 {
        let Some(ch) = graph.channel(idx) else {
            continue;
        };
        let a = LdkNodeId::from_slice(&graph.node_id(ch.nodes[0]).serialize()).unwrap();
        let b = LdkNodeId::from_slice(&graph.node_id(ch.nodes[1]).serialize()).unwrap();
        let scid = ch.scid.to_u64();
        if ng
            .add_channel_from_partial_announcement(
                scid,
                Some(ch.capacity.to_sat()),
                now,
                ChannelFeatures::empty(),
                a,
                b,
            )
            .is_err()
        {
            chan_err += 1;
            continue;
        }
        for (dir, pol) in ch.policies.iter().enumerate() {
            let Some(p) = pol else { continue };
            let msg = UnsignedChannelUpdate {
                chain_hash: ChainHash::BITCOIN,
                short_channel_id: scid,
                timestamp: now as u32,
                message_flags: 1,
                channel_flags: dir as u8 | (u8::from(p.disabled) << 1),
                cltv_expiry_delta: p.cltv_expiry_delta,
                htlc_minimum_msat: p.htlc_minimum_msat,
                htlc_maximum_msat: p.htlc_maximum_msat,
                fee_base_msat: p.fee_base_msat,
                fee_proportional_millionths: p.fee_proportional_millionths,
                excess_data: vec![],
            };
            if ng.update_channel_unsigned(&msg).is_err() {
                upd_err += 1;
            }
        }
    }
    (ng, chan_err, upd_err)
}

/// The nodes with an enabled outgoing direction (they can pay) and those
/// with an enabled incoming one (they can be paid); ~35% of the snapshot's
/// directions have no policy at all.
#[allow(dead_code)] // used by `routes` and `reliability` only
pub fn senders_and_receivers(graph: &Graph) -> (Vec<u32>, Vec<u32>) {
    let (mut out, mut inc) = (
        vec![false; graph.node_count()],
        vec![false; graph.node_count()],
    );
    for idx in 0..graph.channel_count() as u32 {
        let Some(ch) = graph.channel(idx) else {
            continue;
        };
        for (dir, p) in ch.policies.iter().enumerate() {
            if p.as_ref().is_some_and(|p| !p.disabled) {
                out[ch.nodes[dir] as usize] = true;
                inc[ch.nodes[1 - dir] as usize] = true;
            }
        }
    }
    let pick = |set: &[bool]| {
        (0..graph.node_count() as u32)
            .filter(|&i| set[i as usize])
            .collect()
    };
    (pick(&out), pick(&inc))
}
