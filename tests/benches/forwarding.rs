//! Forwarding throughput and payment latency, Beongae against LDK 0.2.7 in
//! the same run (issue 13).
//!
//! Each side is four nodes in a line, Alice → Bob → Carol → Dave, over real
//! loopback TCP with BOLT 8, on its own in-process devnet. Alice → Bob and
//! Carol → Dave are private channels, Bob → Carol is announced (Alice learns
//! it by gossip); every channel has 16,000,000 sat.
//! - Beongae: embedded nodes, each with its SQLite store
//!   (`synchronous=FULL`), gossip flushed every 500 ms;
//! - LDK: `ChannelManager`s (the harness in `tests/support/ldk_node.rs`)
//!   whose `ChannelMonitor` and `ChannelManager` writes go to LDK's own
//!   `FilesystemStore` (fsync before the write returns), with
//!   `our_max_accepted_htlcs = 483` (LDK's default of 50 would refuse the
//!   100-in-flight run); events and persistence handled as soon as LDK
//!   signals them, and HTLC forwards processed at least every 20 ms (LDK's
//!   own background processor waits 100 ms between forward batches).
//!
//! After a warm-up of 20 payments, Alice pays Carol's invoices of 1,000 sat,
//! `n` at a time, and Bob forwards every HTLC: payments per second at 1, 10
//! and 100 in flight for both, and the ratio. Then the time to pay one
//! invoice (route + send + settle: the payer's call until it has the
//! preimage), one at a time, at p50 and p99: Carol's (two hops, through Bob)
//! and Dave's (three hops, through Bob and Carol, the last by Dave's route
//! hint). And the fees Alice paid.
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
use beongae_node::core::ChannelSettings;
use beongae_node::core::ChannelState;
use beongae_node::embedded::Embedded;
use beongae_wire::{Msat, NodeId};
use bitcoin::{Amount, ScriptBuf};
use ldk_node::{default_config, LdkNode};
use support::{mine, pay_all, scratch, start_with};

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

/// Whether `invoice` carries a route hint whose first hop is `via` (any
/// invoice will do for `None`).
fn hinted(invoice: &str, via: Option<NodeId>) -> bool {
    via.is_none_or(|via| {
        beongae_invoice::Invoice::decode(invoice)
            .unwrap()
            .route_hints()
            .any(|h| h.0[0].src_node_id == via)
    })
}

/// What each side measured.
struct Measured {
    /// Payments per second for each of [`RUNS`].
    rates: Vec<f64>,
    /// Sorted one-at-a-time times, two hops and three hops.
    two_hops: Vec<Duration>,
    three_hops: Vec<Duration>,
    /// Fees Alice paid in all.
    fees: u64,
}

// ----- Beongae ---------------------------------------------------------------------------

async fn open(devnet: &Mutex<Devnet>, from: &Embedded, to: &Embedded, announce: bool) {
    let to_id = to.node.node_id();
    from.node
        .handle()
        .connect(to_id, to.node.listen_addr().unwrap())
        .await
        .unwrap();
    let (id, _) = from
        .node
        .handle()
        .open_channel_with(to_id, Amount::from_sat(CHANNEL_SAT), Msat::ZERO, announce)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Six blocks: deep enough to announce.
    mine(devnet, 6, &ScriptBuf::new_op_return([0u8; 0]));
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

/// `count` invoices from `payee`, each with a route hint through `via`
/// if given.
async fn beongae_invoices(payee: &Embedded, count: usize, via: Option<NodeId>) -> Vec<String> {
    let mut v = Vec::with_capacity(count);
    while v.len() < count {
        let (inv, _) = payee
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

/// One at a time: the sorted times to pay each of `invoices`.
async fn beongae_times(alice: &Embedded, invoices: Vec<String>) -> Vec<Duration> {
    let mut times = Vec::with_capacity(invoices.len());
    for inv in invoices {
        let t = Instant::now();
        alice.node.handle().pay(&inv, None).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort_unstable();
    times
}

/// Our four nodes.
async fn beongae(dir: &std::path::Path) -> Measured {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let mut settings = ChannelSettings::default();
    settings.gossip.flush_interval = Duration::from_millis(500);
    let mut nodes = Vec::new();
    for (seed, name) in [(1, "alice"), (2, "bob"), (3, "carol"), (4, "dave")] {
        nodes.push(start_with(&devnet, &dir.join(name), seed, settings.clone(), None).await);
    }
    let [alice, bob, carol, dave]: [Embedded; 4] = nodes.try_into().ok().unwrap();
    for e in [&alice, &bob, &carol] {
        mine(&devnet, 1, &e.onchain.new_address().script_pubkey());
    }
    mine(&devnet, 100, &ScriptBuf::new_op_return([0u8; 0]));
    open(&devnet, &alice, &bob, false).await;
    open(&devnet, &bob, &carol, true).await;
    open(&devnet, &carol, &dave, false).await;
    // Alice has learned Bob's policy towards Carol.
    loop {
        let g = alice.node.handle().graph().await.unwrap();
        if g.channels.len() == 1 && g.channels[0].policies.iter().all(|p| p.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pay_all(&alice, beongae_invoices(&carol, WARM_UP, None).await, 1).await;
    let mut rates = Vec::new();
    for (n, count) in RUNS {
        rates.push(pay_all(&alice, beongae_invoices(&carol, count, None).await, n).await);
    }
    let two_hops = beongae_times(&alice, beongae_invoices(&carol, LATENCY, None).await).await;
    let via = Some(carol.node.node_id());
    let three_hops = beongae_times(&alice, beongae_invoices(&dave, LATENCY, via).await).await;
    let fees = alice
        .node
        .handle()
        .payments()
        .await
        .unwrap()
        .iter()
        .filter(|p| !p.incoming && p.status == "succeeded")
        .filter_map(|p| p.fee)
        .map(|f| f.to_msat())
        .sum();
    Measured {
        rates,
        two_hops,
        three_hops,
        fees,
    }
}

// ----- LDK -------------------------------------------------------------------------------

/// `n` blocks stamped with the real time: LDK stamps its `channel_update`s
/// with the newest block's time, and its graph refuses updates more than two
/// weeks older than its clock.
fn mine_now(devnet: &Mutex<Devnet>, n: u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    devnet
        .lock()
        .unwrap()
        .mine(n, &ScriptBuf::new_op_return([0u8; 0]), now);
}

async fn ldk_open(devnet: &Mutex<Devnet>, from: &LdkNode, to: &LdkNode) {
    from.connect(to.node_id(), to.listen_addr()).await.unwrap();
    let id = from
        .open_channel(to.node_id(), CHANNEL_SAT, 0)
        .await
        .unwrap();
    // Six blocks: deep enough to announce.
    mine_now(devnet, 6);
    from.wait_channel(&id, Duration::from_secs(60), |c| c.is_usable)
        .await
        .unwrap();
}

/// `count` invoices from `payee`, with a route hint through `via` if given
/// (LDK puts one in once the peer's `channel_update` for the private channel
/// reached the payee).
async fn ldk_invoices(payee: &LdkNode, count: usize, via: Option<NodeId>) -> Vec<String> {
    let mut v = Vec::with_capacity(count);
    while v.len() < count {
        let inv = payee.create_invoice(PAYMENT_MSAT, "bench");
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

/// One at a time: the sorted times to pay each of `invoices`.
async fn ldk_times(alice: &LdkNode, invoices: Vec<String>) -> Vec<Duration> {
    let mut times = Vec::with_capacity(invoices.len());
    for inv in invoices {
        let t = Instant::now();
        ldk_pay(alice, &inv).await;
        times.push(t.elapsed());
    }
    times.sort_unstable();
    times
}

/// LDK's four nodes, as [`beongae`].
async fn ldk(dir: &std::path::Path) -> Measured {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let mut config = default_config();
    config.channel_handshake_config.our_max_accepted_htlcs = 483;
    let node = |seed: u8, name: &str, announce: bool| {
        let mut config = config.clone();
        config.channel_handshake_config.announce_for_forwarding = announce;
        LdkNode::start_durable([seed; 32], devnet.clone(), config, dir.join(name))
    };
    let alice = Arc::new(node(11, "ldk-alice", false).await);
    // Bob's channel to Carol is announced.
    let bob = node(12, "ldk-bob", true).await;
    let carol = node(13, "ldk-carol", false).await;
    let dave = node(14, "ldk-dave", false).await;
    for n in [&*alice, &bob, &carol, &dave] {
        n.set_auto_sync(true);
    }
    for n in [&*alice, &bob, &carol] {
        mine(&devnet, 1, &n.wallet_script());
    }
    mine_now(&devnet, 100);
    ldk_open(&devnet, &alice, &bob).await;
    ldk_open(&devnet, &bob, &carol).await;
    ldk_open(&devnet, &carol, &dave).await;
    // Alice has learned Bob's channel to Carol, both directions (LDK paces
    // its gossip by pings: its peer managers tick more often here).
    for i in 0.. {
        let known = {
            let g = alice.network_graph().read_only();
            g.channels().len() == 1
                && g.channels()
                    .unordered_iter()
                    .all(|(_, c)| c.one_to_two.is_some() && c.two_to_one.is_some())
        };
        if known {
            break;
        }
        assert!(i < 3000, "LDK's Alice never learned Bob's public channel");
        if i % 50 == 0 {
            for n in [&*alice, &bob, &carol] {
                n.peer_manager().timer_tick_occurred();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ldk_pay_all(&alice, ldk_invoices(&carol, WARM_UP, None).await, 1).await;
    let mut rates = Vec::new();
    for (n, count) in RUNS {
        rates.push(ldk_pay_all(&alice, ldk_invoices(&carol, count, None).await, n).await);
    }
    let two_hops = ldk_times(&alice, ldk_invoices(&carol, LATENCY, None).await).await;
    let via = Some(NodeId::from_pubkey(carol.node_id()));
    let three_hops = ldk_times(&alice, ldk_invoices(&dave, LATENCY, via).await).await;
    // Every payment arrived, as LDK's payees account for it.
    let received: u64 = [&carol, &dave]
        .iter()
        .flat_map(|n| n.received_payments())
        .map(|p| p.amount_msat)
        .sum();
    let paid = RUNS.iter().map(|r| r.1).sum::<usize>() + 2 * LATENCY + WARM_UP;
    assert_eq!(received, paid as u64 * PAYMENT_MSAT);
    let fees = alice.spent_fees_msat();
    for n in [&*alice, &bob, &carol, &dave] {
        n.stop();
    }
    Measured {
        rates,
        two_hops,
        three_hops,
        fees,
    }
}

fn main() {
    // Declared first so that it is removed after the runtime stopped.
    let dir = scratch("forwarding");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ours = beongae(&dir.0).await;
        let theirs = ldk(&dir.0).await;
        println!("payments of 1,000 sat forwarded by Bob, Alice -> Bob -> Carol, durable stores, loopback TCP:");
        for (i, (n, count)) in RUNS.iter().enumerate() {
            println!(
                "{n:>3} in flight ({count:>5} payments): Beongae {:>6.0}/s, LDK {:>6.0}/s: Beongae/LDK {:.2}",
                ours.rates[i],
                theirs.rates[i],
                ours.rates[i] / theirs.rates[i]
            );
        }
        println!("paying one invoice at a time ({LATENCY} each; route + send + settle):");
        for (label, o, l) in [
            ("2 hops, to Carol", &ours.two_hops, &theirs.two_hops),
            ("3 hops, to Dave ", &ours.three_hops, &theirs.three_hops),
        ] {
            println!(
                "  {label}: Beongae p50 {:.2} ms, p99 {:.2} ms; LDK p50 {:.2} ms, p99 {:.2} ms; LDK/Beongae p50 {:.2}",
                pct(o, 0.5),
                pct(o, 0.99),
                pct(l, 0.5),
                pct(l, 0.99),
                pct(l, 0.5) / pct(o, 0.5)
            );
        }
        println!("fees Alice paid: Beongae {} msat, LDK {} msat", ours.fees, theirs.fees);
    });
}
