//! Forwarding throughput and payment latency through one middle node, Beongae
//! against LDK 0.2.7 in the same run (issue 13).
//!
//! Each side is three nodes, Alice → Bob → Carol, with private channels of
//! 16,000,000 sat opened by Alice and by Bob, over real loopback TCP with
//! BOLT 8, each trio on its own in-process devnet:
//! - Beongae: three embedded nodes, each with its SQLite store
//!   (`synchronous=FULL`);
//! - LDK: three `ChannelManager`s (the harness in `tests/support/ldk_node.rs`)
//!   whose `ChannelMonitor` and `ChannelManager` writes go to LDK's own
//!   `FilesystemStore` (fsync before the write returns), with
//!   `our_max_accepted_htlcs = 483` (LDK's default of 50 would refuse the
//!   100-in-flight run); events and persistence handled as soon as LDK
//!   signals them, and HTLC forwards processed at least every 20 ms (LDK's
//!   own background processor waits 100 ms between forward batches).
//!
//! After a warm-up of 20 payments, Alice pays Carol's invoices of 1,000 sat
//! (each with a route hint through Bob), `n` at a time, and Bob forwards
//! every HTLC. Printed: payments per
//! second at 1, 10 and 100 in flight for both, and the ratio; then the time to
//! pay one invoice through Bob (route + send + settle: the payer's call until
//! it returns the preimage, over two channels and three nodes), one at a time,
//! at p50 and p99; and Bob's fees.
//!
//! Run: `cargo bench -p beongae-tests --bench forwarding`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/support/ldk_node.rs"]
mod ldk_node;
#[path = "../../crates/node/benches/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beongae_chain::devnet::Devnet;
use beongae_node::core::ChannelState;
use beongae_node::embedded::Embedded;
use beongae_wire::{Msat, NodeId};
use bitcoin::{Amount, ScriptBuf};
use ldk_node::{default_config, LdkNode};
use support::{mine, pay_all, scratch, start};

/// Payments per run: (in flight, count).
const RUNS: [(usize, usize); 3] = [(1, 200), (10, 600), (100, 1_500)];
/// Payments timed one at a time.
const LATENCY: usize = 200;
/// Payments made first and not measured (connections, caches, allocator).
const WARM_UP: usize = 20;
const CHANNEL_SAT: u64 = 16_000_000;
const PAYMENT_MSAT: u64 = 1_000_000;

/// `p` of sorted times, in milliseconds.
fn pct(times: &[Duration], p: f64) -> f64 {
    times[((times.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0
}

/// Whether `invoice` carries a route hint whose first hop is `via`.
fn hinted(invoice: &str, via: NodeId) -> bool {
    beongae_invoice::Invoice::decode(invoice)
        .unwrap()
        .route_hints()
        .any(|h| h.0[0].src_node_id == via)
}

// ----- Beongae ---------------------------------------------------------------------------

async fn open(devnet: &Mutex<Devnet>, from: &Embedded, to: &Embedded) {
    let to_id = to.node.node_id();
    from.node
        .handle()
        .connect(to_id, to.node.listen_addr().unwrap())
        .await
        .unwrap();
    let (id, _) = from
        .node
        .handle()
        .open_channel(to_id, Amount::from_sat(CHANNEL_SAT), Msat::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    mine(devnet, 3, &ScriptBuf::new_op_return([0u8; 0]));
    loop {
        let c = from.node.handle().channels().await.unwrap();
        if c.iter()
            .any(|c| c.channel_id == id && c.state == ChannelState::Normal && c.active)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `count` invoices from Carol, each with a route hint through Bob.
async fn beongae_invoices(carol: &Embedded, count: usize, via: NodeId) -> Vec<String> {
    let mut v = Vec::with_capacity(count);
    while v.len() < count {
        let (inv, _) = carol
            .node
            .handle()
            .invoice(Some(Msat::from_msat(PAYMENT_MSAT)), "bench", 3600)
            .await
            .unwrap();
        if hinted(&inv, via) {
            v.push(inv);
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    v
}

/// Our three nodes: payments per second for each of [`RUNS`], the sorted
/// one-at-a-time times, Bob's fees.
async fn beongae(dir: &std::path::Path) -> (Vec<f64>, Vec<Duration>, u64) {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let alice = start(&devnet, &dir.join("alice"), 1).await;
    let bob = start(&devnet, &dir.join("bob"), 2).await;
    let carol = start(&devnet, &dir.join("carol"), 3).await;
    mine(&devnet, 101, &alice.onchain.new_address().script_pubkey());
    mine(&devnet, 101, &bob.onchain.new_address().script_pubkey());
    mine(&devnet, 100, &ScriptBuf::new_op_return([0u8; 0]));
    open(&devnet, &alice, &bob).await;
    open(&devnet, &bob, &carol).await;
    let via = bob.node.node_id();
    pay_all(&alice, beongae_invoices(&carol, WARM_UP, via).await, 1).await;
    let mut rates = Vec::new();
    for (n, count) in RUNS {
        rates.push(pay_all(&alice, beongae_invoices(&carol, count, via).await, n).await);
    }
    let mut times = Vec::with_capacity(LATENCY);
    for inv in beongae_invoices(&carol, LATENCY, via).await {
        let t = Instant::now();
        alice.node.handle().pay(&inv, None).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort_unstable();
    let fees = bob
        .node
        .handle()
        .forwards()
        .await
        .unwrap()
        .iter()
        .map(|f| f.fee.to_msat())
        .sum();
    (rates, times, fees)
}

// ----- LDK -------------------------------------------------------------------------------

async fn ldk_open(devnet: &Mutex<Devnet>, from: &LdkNode, to: &LdkNode) {
    from.connect(to.node_id(), to.listen_addr()).await.unwrap();
    let id = from
        .open_channel(to.node_id(), CHANNEL_SAT, 0)
        .await
        .unwrap();
    mine(devnet, 3, &ScriptBuf::new_op_return([0u8; 0]));
    from.wait_channel(&id, Duration::from_secs(60), |c| c.is_usable)
        .await
        .unwrap();
}

/// `count` invoices from Carol, once LDK puts a route hint through Bob in them
/// (after Bob's `channel_update` for the private channel reached her).
async fn ldk_invoices(carol: &LdkNode, count: usize, via: NodeId) -> Vec<String> {
    let mut v = Vec::with_capacity(count);
    while v.len() < count {
        let inv = carol.create_invoice(PAYMENT_MSAT, "bench");
        if hinted(&inv, via) {
            v.push(inv);
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    v
}

/// Pays one LDK invoice from `alice` and waits for `PaymentSent`.
async fn ldk_pay(alice: &LdkNode, invoice: &str) {
    let hash = alice.pay_invoice(invoice).unwrap();
    let sent = alice.wait_sent(&hash).await.unwrap();
    assert!(sent.result.is_ok(), "LDK payment failed: {:?}", sent.result);
}

/// Like [`support::pay_all`] for LDK's Alice.
async fn ldk_pay_all(alice: &Arc<LdkNode>, invoices: Vec<String>, in_flight: usize) -> f64 {
    let count = invoices.len();
    let start = Instant::now();
    let queue = Arc::new(Mutex::new(invoices));
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let (a, q) = (alice.clone(), queue.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(inv) = q.lock().unwrap().pop() else {
                    return;
                };
                ldk_pay(&a, &inv).await;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// LDK's three nodes, as [`beongae`].
async fn ldk(dir: &std::path::Path) -> (Vec<f64>, Vec<Duration>, u64) {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let mut config = default_config();
    config.channel_handshake_config.our_max_accepted_htlcs = 483;
    let node = |seed: u8, name: &str| {
        LdkNode::start_durable([seed; 32], devnet.clone(), config.clone(), dir.join(name))
    };
    let alice = Arc::new(node(11, "ldk-alice").await);
    let bob = node(12, "ldk-bob").await;
    let carol = node(13, "ldk-carol").await;
    for n in [&*alice, &bob, &carol] {
        n.set_auto_sync(true);
    }
    mine(&devnet, 101, &alice.wallet_script());
    mine(&devnet, 101, &bob.wallet_script());
    mine(&devnet, 100, &ScriptBuf::new_op_return([0u8; 0]));
    ldk_open(&devnet, &alice, &bob).await;
    ldk_open(&devnet, &bob, &carol).await;
    let via = NodeId::from_pubkey(bob.node_id());
    ldk_pay_all(&alice, ldk_invoices(&carol, WARM_UP, via).await, 1).await;
    let mut rates = Vec::new();
    for (n, count) in RUNS {
        rates.push(ldk_pay_all(&alice, ldk_invoices(&carol, count, via).await, n).await);
    }
    let mut times = Vec::with_capacity(LATENCY);
    for inv in ldk_invoices(&carol, LATENCY, via).await {
        let t = Instant::now();
        ldk_pay(&alice, &inv).await;
        times.push(t.elapsed());
    }
    times.sort_unstable();
    // LDK's own account of what Alice paid above the amounts.
    let received: u64 = carol
        .received_payments()
        .iter()
        .map(|p| p.amount_msat)
        .sum();
    let paid = RUNS.iter().map(|r| r.1).sum::<usize>() + LATENCY + WARM_UP;
    let fees = alice.spent_fees_msat();
    assert_eq!(received, paid as u64 * PAYMENT_MSAT);
    for n in [&*alice, &bob, &carol] {
        n.stop();
    }
    (rates, times, fees)
}

fn main() {
    // Declared first so that it is removed after the runtime stopped.
    let dir = scratch("forwarding");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (ours, ours_t, ours_fees) = beongae(&dir.0).await;
        let (theirs, theirs_t, ldk_fees) = ldk(&dir.0).await;
        println!("forwarded payments of 1,000 sat, Alice -> Bob -> Carol, durable stores, loopback TCP:");
        for (i, (n, count)) in RUNS.iter().enumerate() {
            println!(
                "{n:>3} in flight ({count:>5} payments): Beongae {:>6.0}/s, LDK {:>6.0}/s: Beongae/LDK {:.2}",
                ours[i],
                theirs[i],
                ours[i] / theirs[i]
            );
        }
        println!("paying one invoice through Bob, one at a time ({LATENCY}; route + send + settle):");
        println!(
            "  Beongae p50 {:.2} ms, p99 {:.2} ms; LDK p50 {:.2} ms, p99 {:.2} ms; LDK/Beongae p50 {:.2}",
            pct(&ours_t, 0.5),
            pct(&ours_t, 0.99),
            pct(&theirs_t, 0.5),
            pct(&theirs_t, 0.99),
            pct(&theirs_t, 0.5) / pct(&ours_t, 0.5)
        );
        println!("Bob's fees: Beongae {ours_fees} msat, LDK {ldk_fees} msat");
    });
}
