//! Forwarding throughput and latency: three Beongae nodes, Alice → Bob →
//! Carol, each with its durable SQLite store (`synchronous=FULL`), over
//! real loopback TCP with BOLT 8, on an in-process devnet. Alice pays
//! Carol's invoices (each with a route hint through Bob's private channel)
//! and Bob forwards every HTLC (BOLT 4 peel, policy checks, the link stored
//! before the outgoing add, the fulfil relayed back).
//!
//! Printed: forwarded payments per second at 1, 10 and 100 in flight, next
//! to a baseline run in the same process on the same machine: Alice's
//! direct payments to Bob (one channel, the same work minus the middle
//! hop), as a ratio; and the time to pay one invoice through Bob (route,
//! send, settle) at p50 and p99, one at a time.
//!
//! Run: `cargo bench -p beongae-node --bench forwarding`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;
use support::{mine, pay_all, scratch, start};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beongae_chain::devnet::Devnet;
use beongae_node::core::ChannelState;
use beongae_node::embedded::Embedded;
use beongae_wire::{Msat, NodeId};
use bitcoin::{Amount, ScriptBuf};

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
        .open_channel(to_id, Amount::from_sat(16_000_000), Msat::ZERO)
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

/// `count` invoices of 1,000 sat from `payee`, once they carry a route
/// hint through `via` (if given).
async fn invoices(payee: &Embedded, count: usize, via: Option<NodeId>) -> Vec<String> {
    let mut v = Vec::with_capacity(count);
    while v.len() < count {
        let (inv, _) = payee
            .node
            .handle()
            .invoice(Some(Msat::from_msat(1_000_000)), "bench", 3600)
            .await
            .unwrap();
        let hinted = beongae_invoice::Invoice::decode(&inv)
            .unwrap()
            .route_hints()
            .any(|h| Some(h.0[0].src_node_id) == via);
        if via.is_none() || hinted {
            v.push(inv);
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    v
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = scratch("forwarding");
    rt.block_on(async {
        let devnet = Arc::new(Mutex::new(Devnet::new()));
        let alice = start(&devnet, &dir.0.join("alice"), 1).await;
        let bob = start(&devnet, &dir.0.join("bob"), 2).await;
        let carol = start(&devnet, &dir.0.join("carol"), 3).await;
        mine(&devnet, 101, &alice.onchain.new_address().script_pubkey());
        mine(&devnet, 101, &bob.onchain.new_address().script_pubkey());
        mine(&devnet, 100, &ScriptBuf::new_op_return([0u8; 0]));
        open(&devnet, &alice, &bob).await;
        open(&devnet, &bob, &carol).await;
        let via = Some(bob.node.node_id());
        for (n, count) in [(1usize, 200usize), (10, 600), (100, 1_500)] {
            let direct = pay_all(&alice, invoices(&bob, count, None).await, n).await;
            let forwarded = pay_all(&alice, invoices(&carol, count, via).await, n).await;
            println!(
                "{n:>3} in flight: {forwarded:>6.0} payments/s forwarded through Bob, {direct:>6.0}/s direct to Bob (baseline, same run): ratio {:.2}",
                forwarded / direct
            );
        }
        // One at a time: route, send, settle.
        let invs = invoices(&carol, 200, via).await;
        let mut times = Vec::with_capacity(invs.len());
        for inv in invs {
            let t = Instant::now();
            alice.node.handle().pay(&inv, None).await.unwrap();
            times.push(t.elapsed());
        }
        times.sort_unstable();
        let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
        println!(
            "paying one invoice through Bob (route + send + settle): p50 {:.2} ms, p99 {:.2} ms",
            p(0.5),
            p(0.99)
        );
        let fees: u64 = bob
            .node
            .handle()
            .forwards()
            .await
            .unwrap()
            .iter()
            .map(|f| f.fee.to_msat())
            .sum();
        println!("Bob earned {fees} msat in fees");
    });
}
