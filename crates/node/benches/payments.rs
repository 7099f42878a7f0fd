//! Node throughput: payments per second between two Beongae nodes over one
//! channel, each with its durable SQLite store (`synchronous=FULL`), over
//! real loopback TCP with BOLT 8, on an in-process devnet. Each payment is
//! an invoice of the payee's (created beforehand) paid by the payer: the
//! onion, the HTLC, four commitment signatures and two revocations, the
//! fulfill, every state change committed before the messages that depend on
//! it.
//!
//! With N payments in flight (N = 1, 10, 100), the nodes sign one
//! commitment for many updates and the runtime commits many inputs' writes
//! with one fsync (group commit).
//!
//! The baseline, run in the same process on the same disk: durable commits
//! per second of a one-row batch to the same kind of store. The printed
//! ratio is payments per second / commits per second: below 1.0 a payment
//! costs more than one fsync; above 1.0 group commit shares fsyncs between
//! payments.
//!
//! Then what the payer keeps on disk for on-chain enforcement (BOLT 5) per
//! payment and per state of the channel: each HTLC of the peer's
//! commitments once, whatever the number of commitments it stays in
//! (`remote_htlcs`), and the channel record (constant: the peer's revealed
//! secrets in shachain form), next to the goal of 500 bytes per state and
//! to what keeping each signed commitment transaction would take.
//!
//! Run: `cargo bench -p beongae-node --bench payments`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;
use support::{mine, pay_all, scratch, start};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beongae_chain::devnet::Devnet;
use beongae_node::core::ChannelState;
use beongae_node::embedded::{self, Embedded};
use beongae_store::{Batch, SqliteStore, Store};
use beongae_wire::Msat;
use bitcoin::{Amount, ScriptBuf};

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
    // The node holds its store locked: read a copy (with its write-ahead
    // log).
    let copy = store.with_extension("copy");
    std::fs::copy(store, &copy).unwrap();
    let wal = |p: &std::path::Path| {
        let mut s = p.as_os_str().to_owned();
        s.push("-wal");
        std::path::PathBuf::from(s)
    };
    if wal(store).exists() {
        std::fs::copy(wal(store), wal(&copy)).unwrap();
    }
    let store = SqliteStore::open(&copy).unwrap();
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
    drop(store);
    let _ = std::fs::remove_file(wal(&copy));
    let _ = std::fs::remove_file(&copy);
    (htlcs, record)
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

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = scratch("payments");
    let commits = baseline(&dir.0, 300);
    println!("baseline: {commits:.0} durable store commits/s");
    rt.block_on(async {
        let devnet = Arc::new(Mutex::new(Devnet::new()));
        let a = start(&devnet, &dir.0.join("a"), 1).await;
        let b = start(&devnet, &dir.0.join("b"), 2).await;
        mine(&devnet, 101, &a.onchain.new_address().script_pubkey());
        a.node
            .handle()
            .connect(b.node.node_id(), b.node.listen_addr().unwrap())
            .await
            .unwrap();
        let (id, _) = a
            .node
            .handle()
            .open_channel(b.node.node_id(), Amount::from_sat(16_000_000), Msat::ZERO)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        mine(&devnet, 3, &ScriptBuf::new_op_return([0u8; 0]));
        loop {
            let c = a.node.handle().channels().await.unwrap();
            if c.iter().any(|c| c.channel_id == id && c.state == ChannelState::Normal && c.active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let store = dir.0.join("a").join(embedded::STORE_FILE);
        let mut kept = Vec::new();
        for (n, count) in [(1usize, 300usize), (10, 1_000), (100, 2_000)] {
            let before = (monitor_bytes(&store, id), updates(&a, id).await);
            let per_sec = run(&a, &b, count, n).await;
            println!(
                "{n:>3} in flight: {per_sec:>7.0} payments/s over TCP with SQLite (ratio to store commits/s {:.3})",
                per_sec / commits
            );
            let after = (monitor_bytes(&store, id), updates(&a, id).await);
            kept.push((n, count, after.1 - before.1, after.0 .0 - before.0 .0, after.0 .1));
        }
        // A signed commitment with one HTLC: what keeping each would cost.
        let one_htlc_commitment = 4 + 2 + 1 + 41 + 1 + 5 * 43 + 4 + 1 + 2 * 73 + 72;
        for (n, payments, states, bytes, record) in kept {
            let per_state = bytes as f64 / states.max(1) as f64;
            let per_payment = bytes as f64 / payments as f64;
            println!(
                "{n:>3} in flight: {payments} payments, {states} peer commitments signed, {bytes} bytes of their HTLCs kept: {per_payment:.0} bytes per payment (goal <= 500: a million payments' states in 500 MB), {per_state:.0} per state of {:.1} new payments (a commitment transaction per state would be >= {one_htlc_commitment}); channel record {record} bytes in all",
                payments as f64 / states.max(1) as f64
            );
        }
    });
}
