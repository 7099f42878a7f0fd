//! The store's size after a million payments (issue 15's goal: at most 500
//! MB), measured, not extrapolated: two Beongae nodes over real loopback
//! TCP on an in-process devnet, one channel of 16,000,000 sat, payments of
//! 1,000 sat (an invoice each), 100 in flight, in rounds of 5,000: A pays
//! the first two, then B and A take turns (so the channel never runs dry
//! and each node is payer and payee of about half of them).
//!
//! Every 100,000 payments it prints each node's store size (SQLite's pages,
//! its write-ahead log folded in; PostgreSQL's tables with indexes and
//! TOAST, the node's own vacuum having made dead copies reusable) and the
//! payments per second of the last stretch. At the end, how long each node
//! takes to start again on its store (every payment and invoice record is
//! read back at start), and on PostgreSQL the size compacted (`VACUUM
//! FULL`).
//!
//! Run: `cargo bench -p beongae-node --bench growth` (SQLite), or with
//! `BEONGAE_BENCH_STORE=postgres` on the tests' PostgreSQL server
//! (`beongae_store::testing`); `BEONGAE_BENCH_PAYMENTS` sets the count
//! (1,000,000 unless set).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;
use support::{pay_all, read_copy, scratch, two_nodes_with_a_channel};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beongae_chain::devnet::Devnet;
use beongae_chain::ChainSource;
use beongae_node::embedded::{self, Embedded, EmbeddedConfig};
use beongae_store::{testing, PostgresStore, Store};
use beongae_wallet::Seed;
use beongae_wire::Msat;

const ROUND: usize = 5_000;
const REPORT_EVERY: usize = 100_000;
const IN_FLIGHT: usize = 100;

fn payments() -> usize {
    std::env::var("BEONGAE_BENCH_PAYMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Each node's store: its PostgreSQL URL, or none (SQLite in its directory).
fn stores() -> (Option<String>, Option<String>) {
    match std::env::var("BEONGAE_BENCH_STORE").as_deref() {
        Ok("postgres") => (
            Some(testing::fresh_database("growth_a")),
            Some(testing::fresh_database("growth_b")),
        ),
        Err(_) | Ok("") | Ok("sqlite") => (None, None),
        Ok(other) => panic!("BEONGAE_BENCH_STORE={other}: use sqlite or postgres"),
    }
}

/// The bytes of the store of the node in `dir` (URL `url`, or SQLite),
/// read beside the running node.
fn size(dir: &std::path::Path, url: &Option<String>) -> u64 {
    match url {
        Some(url) => PostgresStore::connect(url).unwrap().size_bytes().unwrap(),
        None => read_copy(&dir.join(embedded::STORE_FILE), |s| s.size_bytes().unwrap()),
    }
}

/// `count` invoices of `payee`'s, paid by `payer`, [`IN_FLIGHT`] at a time.
async fn pay(payer: &Embedded, payee: &Embedded, count: usize) {
    let mut invoices = Vec::with_capacity(count);
    for _ in 0..count {
        let (inv, _) = payee
            .node
            .handle()
            .invoice(Some(Msat::from_msat(1_000_000)), "growth", 3600)
            .await
            .unwrap();
        invoices.push(inv);
    }
    pay_all(payer, invoices, IN_FLIGHT).await;
}

async fn start_again(
    devnet: &Arc<Mutex<Devnet>>,
    dir: &std::path::Path,
    seed: u8,
    url: Option<String>,
) -> Duration {
    let mut cfg = EmbeddedConfig::new(dir, bitcoin::Network::Regtest);
    cfg.store = url;
    let chain: Arc<dyn ChainSource> = devnet.clone();
    let started = Instant::now();
    let e = embedded::start(&Seed::from_entropy([seed; 32]), chain, cfg)
        .await
        .unwrap();
    let n = e.node.handle().payments().await.unwrap().len();
    let took = started.elapsed();
    assert!(n >= payments() / 2, "{n} payment records");
    e.node.shutdown().await;
    took
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = scratch("growth");
    let (ua, ub) = stores();
    let backend = if ua.is_some() { "PostgreSQL" } else { "SQLite" };
    let (da, db) = (dir.0.join("a"), dir.0.join("b"));
    rt.block_on(async {
        let (devnet, a, b, _) = two_nodes_with_a_channel(&dir.0, (ua.clone(), ub.clone())).await;
        let base = (size(&da, &ua), size(&db, &ub));
        println!("{backend}: stores of {} and {} bytes with the channel open", base.0, base.1);
        let (mut done, mut last, mut stretch) = (0usize, 0usize, Instant::now());
        while done < payments() {
            let n = ROUND.min(payments() - done);
            // A pays the first two rounds, then B and A take turns: B
            // holds 5,000,000 sat or 10,000,000, never below its reserve.
            let round = done / ROUND;
            if round == 0 || round % 2 == 1 {
                pay(&a, &b, n).await;
            } else {
                pay(&b, &a, n).await;
            }
            done += n;
            if done % REPORT_EVERY == 0 || done == payments() {
                let (sa, sb) = (size(&da, &ua), size(&db, &ub));
                let per = |s: u64, base: u64| s.saturating_sub(base) as f64 / done as f64;
                println!(
                    "{backend}: {done:>8} payments: stores {:.1} MB and {:.1} MB ({:.0} and {:.0} bytes per payment), {:.0} payments/s (invoices made, then paid) over the last {}",
                    sa as f64 / 1e6,
                    sb as f64 / 1e6,
                    per(sa, base.0),
                    per(sb, base.1),
                    (done - last) as f64 / stretch.elapsed().as_secs_f64(),
                    done - last,
                );
                (last, stretch) = (done, Instant::now());
            }
        }
        a.node.shutdown().await;
        b.node.shutdown().await;
        let ta = start_again(&devnet, &da, 1, ua.clone()).await;
        let tb = start_again(&devnet, &db, 2, ub.clone()).await;
        println!(
            "{backend}: after {done} payments, the nodes start again in {:.2} s and {:.2} s",
            ta.as_secs_f64(),
            tb.as_secs_f64()
        );
        if let (Some(ua), Some(ub)) = (&ua, &ub) {
            testing::psql(ua, "VACUUM FULL beongae_kv");
            testing::psql(ub, "VACUUM FULL beongae_kv");
            let (sa, sb) = (size(&da, &Some(ua.clone())), size(&db, &Some(ub.clone())));
            println!(
                "{backend}: compacted (VACUUM FULL): {:.1} MB and {:.1} MB ({:.0} and {:.0} bytes per payment; goal <= 500 MB for a million)",
                sa as f64 / 1e6,
                sb as f64 / 1e6,
                sa.saturating_sub(base.0) as f64 / done as f64,
                sb.saturating_sub(base.1) as f64 / done as f64,
            );
        }
    });
}
