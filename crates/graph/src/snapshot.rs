//! Loads the mainnet graph snapshots of `../shared/data/` (gzip JSON, no
//! signatures: for path finding tests and benchmarks only). Format:
//! `channels` with `scid` (`BLOCKxTXxOUT`), `node1` < `node2` (hex node
//! ids), `capacity_sat`, and `policy1`/`policy2` (from `node1`/`node2`, or
//! `null`); other fields are ignored.
//!
//! The files carry no timestamps: every policy gets `timestamp` 0 and every
//! channel `added_at` 0, so [`Graph::prune_stale`](crate::Graph::prune_stale)
//! would drop the whole graph; do not prune a loaded snapshot.

use std::path::Path;

use beongae_wire::{ChainHash, NodeId, ShortChannelId};
use bitcoin::Amount;
use serde::Deserialize;

use crate::graph::{Graph, Policy};

/// Why a snapshot could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file.
    #[error("reading {0}: {1}")]
    Io(String, std::io::Error),
    /// Not gzip, or corrupt.
    #[error("not a gzip file: {0}")]
    Gzip(&'static str),
    /// Not the expected JSON.
    #[error("snapshot JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A value out of range.
    #[error("snapshot: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
struct SnapshotPolicy {
    fee_base_msat: u32,
    fee_proportional_millionths: u32,
    cltv_expiry_delta: u16,
    htlc_minimum_msat: u64,
    htlc_maximum_msat: u64,
}

#[derive(Deserialize)]
struct SnapshotChannel {
    scid: String,
    node1: String,
    node2: String,
    capacity_sat: u64,
    policy1: Option<SnapshotPolicy>,
    policy2: Option<SnapshotPolicy>,
}

#[derive(Deserialize)]
struct Snapshot {
    channels: Vec<SnapshotChannel>,
}

/// The body of a gzip member (RFC 1952), inflated.
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    const FHCRC: u8 = 2;
    if bytes.len() < 18 || bytes[0] != 0x1f || bytes[1] != 0x8b || bytes[2] != 8 {
        return Err(LoadError::Gzip("bad header"));
    }
    let flags = bytes[3];
    let mut at = 10;
    let skip_zero_terminated = |at: usize| {
        bytes[at..]
            .iter()
            .position(|b| *b == 0)
            .map(|p| at + p + 1)
            .ok_or(LoadError::Gzip("unterminated header field"))
    };
    if flags & FEXTRA != 0 {
        let len = usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
        at += 2 + len;
    }
    if flags & FNAME != 0 {
        at = skip_zero_terminated(at)?;
    }
    if flags & FCOMMENT != 0 {
        at = skip_zero_terminated(at)?;
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    let body = bytes
        .get(at..bytes.len() - 8)
        .ok_or(LoadError::Gzip("truncated"))?;
    miniz_oxide::inflate::decompress_to_vec(body)
        .map_err(|_| LoadError::Gzip("corrupt deflate data"))
}

fn scid(s: &str) -> Result<ShortChannelId, LoadError> {
    let bad = || LoadError::Invalid(format!("short channel id {s:?}"));
    let p: Vec<u32> = s
        .split('x')
        .map(|n| n.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [b, t, o] = p[..] else { return Err(bad()) };
    ShortChannelId::new(b, t, u16::try_from(o).map_err(|_| bad())?).ok_or_else(bad)
}

/// A graph from snapshot JSON.
pub fn from_json(json: &[u8]) -> Result<Graph, LoadError> {
    let s: Snapshot = serde_json::from_slice(json)?;
    let mut g = Graph::new(ChainHash::BITCOIN);
    let node = |h: &str| -> Result<NodeId, LoadError> {
        h.parse()
            .map_err(|e| LoadError::Invalid(format!("node id {h}: {e}")))
    };
    for c in &s.channels {
        let idx = g
            .add_channel_unchecked(
                scid(&c.scid)?,
                node(&c.node1)?,
                node(&c.node2)?,
                Amount::from_sat(c.capacity_sat),
                0,
            )
            .map_err(|e| LoadError::Invalid(e.to_string()))?;
        for (dir, p) in [&c.policy1, &c.policy2].into_iter().enumerate() {
            let policy = p.as_ref().map(|p| Policy {
                fee_base_msat: p.fee_base_msat,
                fee_proportional_millionths: p.fee_proportional_millionths,
                cltv_expiry_delta: p.cltv_expiry_delta,
                htlc_minimum_msat: p.htlc_minimum_msat,
                htlc_maximum_msat: p.htlc_maximum_msat,
                timestamp: 0,
                disabled: false,
            });
            g.set_policy_unchecked(idx, dir, policy);
        }
    }
    Ok(g)
}

/// A graph from a `mainnet-graph-*.json.gz` file.
pub fn load(path: &Path) -> Result<Graph, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io(path.display().to_string(), e))?;
    from_json(&gunzip(&bytes)?)
}
