//! How long durable commits take, as a histogram for `/metrics`
//! (Prometheus buckets, cumulative when read). Process-wide: one node per
//! process in the daemon.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

static COUNTS: [AtomicU64; 13] = [const { AtomicU64::new(0) }; 13];
static SUM_NANOS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// Records one commit of `bytes` ([`crate::Batch::bytes`]).
pub fn record(elapsed: Duration, bytes: usize) {
    BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    let secs = elapsed.as_secs_f64();
    let i = BUCKETS
        .iter()
        .position(|b| secs <= *b)
        .unwrap_or(BUCKETS.len());
    COUNTS[i].fetch_add(1, Ordering::Relaxed);
    SUM_NANOS.fetch_add(
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The commit latency histogram so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Commits at or under each bound of [`BUCKETS`] (cumulative).
    pub cumulative: Vec<(f64, u64)>,
    /// All commits.
    pub count: u64,
    /// Their total time, in seconds.
    pub sum_secs: f64,
    /// The keys and values they wrote, in bytes: with the count, how much
    /// each commit rewrites.
    pub bytes: u64,
}

/// Reads the histogram.
pub fn commit_latency() -> Histogram {
    let mut running = 0;
    let mut cumulative = Vec::with_capacity(BUCKETS.len());
    for (i, b) in BUCKETS.iter().enumerate() {
        running += COUNTS[i].load(Ordering::Relaxed);
        cumulative.push((*b, running));
    }
    let count = running + COUNTS[BUCKETS.len()].load(Ordering::Relaxed);
    Histogram {
        cumulative,
        count,
        sum_secs: SUM_NANOS.load(Ordering::Relaxed) as f64 / 1e9,
        bytes: BYTES.load(Ordering::Relaxed),
    }
}
