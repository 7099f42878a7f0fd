//! Node throughput: payments per second between two Beongae nodes over one
//! channel, each with its durable store, over real loopback TCP with BOLT 8,
//! on an in-process devnet: first both on SQLite (`synchronous=FULL`), then
//! both on PostgreSQL (the tests' server on the same disk, `beongae_store::
//! testing`; ADR 0011). Each payment is an invoice of the payee's (created
//! beforehand) paid by the payer: the onion, the HTLC, four commitment
//! signatures and two revocations, the fulfill, every state change committed
//! before the messages that depend on it.
//!
//! With N payments in flight (N = 1, 10, 100), the nodes sign one
//! commitment for many updates and the runtime commits many inputs' writes
//! with one fsync (group commit).
//!
//! The baseline, run in the same process on the same disk: durable commits
//! per second of a one-row batch to a SQLite store. The printed ratio is
//! payments per second / commits per second: below 1.0 a payment costs more
//! than one fsync; above 1.0 group commit shares fsyncs between payments.
//! Then PostgreSQL's payments per second over SQLite's at each N (issue 15's
//! goal: at least 0.5 at 100 in flight).
//!
//! What the stores grow by per payment on each backend (SQLite's pages, its
//! write-ahead log folded in; PostgreSQL's tables, indexes and TOAST, dead
//! row versions not yet vacuumed included), next to issue 15's goal of 500
//! MB for a million payments.
//! And on SQLite, what the payer keeps for on-chain enforcement (BOLT 5)
//! per payment and per state of the channel: each HTLC of the peer's
//! commitments once, whatever the number of commitments it stays in
//! (`remote_htlcs`), and the channel record (constant: the peer's revealed
//! secrets in shachain form), next to what keeping each signed commitment
//! transaction would take.
//!
//! Run: `cargo bench -p beongae-node --bench payments`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;
use support::{pay_all, read_copy, scratch, two_nodes_with_a_channel};

use std::time::Instant;

use beongae_node::embedded::{self, Embedded};
use beongae_store::{testing, Batch, PostgresStore, SqliteStore, Store};
use beongae_wire::Msat;

/// `count` payments of 1_000 sat from `a` to `b`, `in_flight` at a time.
async fn run(a: &Embedded, b: &Embedded, count: usize, in_flight: usize) -> f64 {
    let mut invoices = Vec::with_capacity(count);
    for _ in 0..count {
        let (inv, _) = b
            .node
            .handle()
            .invoice(Some(Msat::from_msat(1_000_000)), "bench", 3600)
            .await
            .unwrap();
        invoices.push(inv);
    }
    pay_all(a, invoices, in_flight).await
}

/// The bytes the payer keeps on channel `id` for a penalty: its HTLC
/// records (each HTLC of the peer's commitments once), and the channel
/// record.
fn monitor_bytes(store: &std::path::Path, id: beongae_wire::ChannelId) -> (u64, u64) {
    use beongae_node::core::channels::record::{NS_CHANNELS, NS_REMOTE_HTLCS};
    read_copy(store, |store| {
        let htlcs: u64 = store
            .list(NS_REMOTE_HTLCS, &id.0)
            .unwrap()
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        let record = store
            .get(NS_CHANNELS, &id.0)
            .unwrap()
            .map_or(0, |v| v.len() as u64);
        (htlcs, record)
    })
}

/// The peer's commitments the payer signed so far on channel `id`.
async fn updates(e: &Embedded, id: beongae_wire::ChannelId) -> u64 {
    let c = e.node.handle().channels().await.unwrap();
    c.iter().find(|c| c.channel_id == id).unwrap().updates
}

/// Durable one-row commits per second on a fresh store.
fn baseline(dir: &std::path::Path, n: usize) -> f64 {
    let store = SqliteStore::open(&dir.join("baseline.sqlite")).unwrap();
    let start = Instant::now();
    for i in 0..n {
        let mut b = Batch::new();
        b.put("bench", (i as u64).to_be_bytes(), vec![0u8; 200]);
        store.commit(b).unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Where a node's store is: SQLite in its data directory, or a PostgreSQL
/// database.
#[derive(Clone)]
enum Backend {
    Sqlite,
    Postgres { a: String, b: String },
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }

    /// What each store takes on disk now: (payer, payee).
    fn bytes(&self, dir: &std::path::Path) -> (u64, u64) {
        match self {
            Backend::Sqlite => {
                // The database's pages (its write-ahead log, bounded by
                // checkpoints, folded in).
                let size = |n: &str| {
                    read_copy(&dir.join(n).join(embedded::STORE_FILE), |s| {
                        s.size_bytes().unwrap()
                    })
                };
                (size("a"), size("b"))
            }
            Backend::Postgres { a, b } => {
                let size = |url: &str| PostgresStore::connect(url).unwrap().size_bytes().unwrap();
                (size(a), size(b))
            }
        }
    }
}

/// Payments per second at 1, 10 and 100 in flight on `backend`, with what
/// the stores keep per payment.
async fn measure(backend: Backend, dir: &std::path::Path, commits: f64) -> Vec<(usize, f64)> {
    let stores = match &backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres { a, b } => (Some(a.clone()), Some(b.clone())),
    };
    let (_devnet, a, b, id) = two_nodes_with_a_channel(dir, stores).await;
    let name = backend.name();
    let sqlite_store = dir.join("a").join(embedded::STORE_FILE);
    let mut rates = Vec::new();
    let mut kept = Vec::new();
    let (mut total, start_bytes) = (0usize, backend.bytes(dir));
    for (n, count) in [(1usize, 300usize), (10, 1_000), (100, 2_000)] {
        let before = match backend {
            Backend::Sqlite => Some((monitor_bytes(&sqlite_store, id), updates(&a, id).await)),
            Backend::Postgres { .. } => None,
        };
        let h0 = beongae_store::metrics::commit_latency();
        let per_sec = run(&a, &b, count, n).await;
        let h1 = beongae_store::metrics::commit_latency();
        total += count;
        let stores = h1.count - h0.count;
        println!(
            "{name:>10}, {n:>3} in flight: {per_sec:>7.0} payments/s over TCP (ratio to SQLite's durable commits/s {:.3}); {:.1} store commits per payment (both nodes), {:.2} ms and {:.1} kB each, {:.1} kB written per payment",
            per_sec / commits,
            stores as f64 / count as f64,
            (h1.sum_secs - h0.sum_secs) * 1e3 / stores.max(1) as f64,
            (h1.bytes - h0.bytes) as f64 / 1e3 / stores.max(1) as f64,
            (h1.bytes - h0.bytes) as f64 / 1e3 / count as f64,
        );
        rates.push((n, per_sec));
        if let Some(before) = before {
            let after = (monitor_bytes(&sqlite_store, id), updates(&a, id).await);
            kept.push((
                n,
                count,
                after.1 - before.1,
                after.0 .0 - before.0 .0,
                after.0 .1,
            ));
        }
    }
    let end_bytes = backend.bytes(dir);
    a.node.shutdown().await;
    b.node.shutdown().await;
    let per = |end: u64, start: u64| end.saturating_sub(start) as f64 / total as f64;
    let (pa, pb) = (
        per(end_bytes.0, start_bytes.0),
        per(end_bytes.1, start_bytes.1),
    );
    println!(
        "{name:>10}: the stores grew by {pa:.0} bytes per payment on the payer and {pb:.0} on the payee over {total} payments ({} and {} bytes in all)",
        end_bytes.0,
        end_bytes.1,
    );
    if let Backend::Postgres { a: ua, b: ub } = &backend {
        // What stays once the dead copies of rewritten records are gone:
        // the tables compacted (the node's own vacuum only makes their
        // space reusable).
        testing::psql(ua, "VACUUM FULL beongae_kv");
        testing::psql(ub, "VACUUM FULL beongae_kv");
        let live = backend.bytes(dir);
        let (la, lb) = (per(live.0, start_bytes.0), per(live.1, start_bytes.1));
        println!(
            "{name:>10}: compacted (VACUUM FULL), {la:.0} bytes per payment on the payer and {lb:.0} on the payee ({} and {} bytes in all): a million payments would take {la:.0} MB and {lb:.0} MB (goal <= 500 MB)",
            live.0, live.1
        );
    }
    // A signed commitment with one HTLC: what keeping each would cost.
    let one_htlc_commitment = 4 + 2 + 1 + 41 + 1 + 5 * 43 + 4 + 1 + 2 * 73 + 72;
    for (n, payments, states, bytes, record) in kept {
        let per_state = bytes as f64 / states.max(1) as f64;
        let per_payment = bytes as f64 / payments as f64;
        println!(
            "{n:>3} in flight: {payments} payments, {states} peer commitments signed, {bytes} bytes of their HTLCs kept: {per_payment:.0} bytes per payment, {per_state:.0} per state of {:.1} new payments (a commitment transaction per state would be >= {one_htlc_commitment}); channel record {record} bytes in all",
            payments as f64 / states.max(1) as f64
        );
    }
    rates
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = scratch("payments");
    let commits = baseline(&dir.0, 300);
    println!("baseline: {commits:.0} durable SQLite store commits/s");
    // The tests' PostgreSQL server (started if need be), on the same disk.
    let postgres = Backend::Postgres {
        a: testing::fresh_database("bench_payer"),
        b: testing::fresh_database("bench_payee"),
    };
    rt.block_on(async {
        let only_pg = std::env::var("BEONGAE_BENCH_ONLY_POSTGRES").is_ok();
        let sqlite = if only_pg {
            vec![(1, 1.0), (10, 1.0), (100, 1.0)]
        } else {
            measure(Backend::Sqlite, &dir.0.join("sqlite"), commits).await
        };
        let pg = measure(postgres, &dir.0.join("postgres"), commits).await;
        for ((n, s), (_, p)) in sqlite.iter().zip(&pg) {
            println!(
                "{n:>3} in flight: PostgreSQL {p:.0} payments/s, SQLite {s:.0}: ratio {:.2} (goal at 100 in flight >= 0.5)",
                p / s
            );
        }
    });
}
