//! Forwarding with LDK 0.2.7 as a live peer over TCP on one devnet, both
//! ways: LDK as the middle hop between two Beongae nodes, and Beongae as
//! the middle hop between two LDK nodes. Each payee's invoice reaches it
//! over the middle hop's private channel by a route hint (BOLT 11 `r`)
//! built from the middle hop's `channel_update` to it (BOLT 7); the onion
//! is peeled and forwarded (BOLT 4) and the balances move by exactly the
//! amount and the middle hop's fee.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/ldk_node.rs"]
mod ldk_node;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use beongae_chain::devnet::Devnet;
use beongae_chain::ChainSource;
use beongae_node::core::{ChannelState, ChannelSummary};
use beongae_node::embedded::{self, Embedded, EmbeddedConfig};
use beongae_wallet::Seed;
use beongae_wire::{ChannelId, Msat, NodeId};
use bitcoin::ScriptBuf;
use ldk_node::LdkNode;

fn mine(devnet: &Mutex<Devnet>, n: u32, script: &ScriptBuf) {
    let mut d = devnet.lock().unwrap();
    let time = 1_700_000_000 + d.height() * 600;
    d.mine(n, script, time);
}

async fn beongae(devnet: &Arc<Mutex<Devnet>>, dir: &std::path::Path, seed: u8) -> Embedded {
    let mut cfg = EmbeddedConfig::new(dir, bitcoin::Network::Regtest);
    // The suite's backend (`.ci/run` runs it on SQLite and on PostgreSQL).
    cfg.store = beongae_store::testing::node_store(dir);
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.chain_poll = Duration::from_millis(20);
    let chain: Arc<dyn ChainSource> = devnet.clone();
    embedded::start(&Seed::from_entropy([seed; 32]), chain, cfg)
        .await
        .unwrap()
}

async fn channel_with(b: &Embedded, peer: NodeId) -> ChannelSummary {
    for _ in 0..1500 {
        let list = b.node.handle().channels().await.unwrap();
        if let Some(c) = list
            .iter()
            .find(|c| c.peer == peer && c.state == ChannelState::Normal && c.active)
        {
            return c.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "no active channel with {peer}: {:?}",
        b.node.handle().channels().await.unwrap()
    );
}

async fn local(b: &Embedded, id: ChannelId) -> Msat {
    let list = b.node.handle().channels().await.unwrap();
    list.iter().find(|c| c.channel_id == id).unwrap().local
}

/// The first route hint of `invoice`, if any: (source node, fee base,
/// fee ppm, cltv delta).
fn hint(invoice: &str) -> Option<(NodeId, u32, u32, u16)> {
    let inv = beongae_invoice::Invoice::decode(invoice).unwrap();
    let h = inv.route_hints().next()?;
    let hop = h.0.first()?;
    Some((
        hop.src_node_id,
        hop.fee_base_msat,
        hop.fee_proportional_millionths,
        hop.cltv_expiry_delta,
    ))
}

/// Beongae Alice → LDK → Beongae Carol: Carol's invoice names LDK's policy
/// (from LDK's channel_update to her); Alice's onion goes through LDK,
/// which forwards it; Carol gets the amount, Alice pays it plus LDK's fee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldk_forwards_between_two_beongae_nodes() {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let (da, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = beongae(&devnet, da.path(), 7).await;
    let carol = beongae(&devnet, dc.path(), 8).await;
    let ldk = LdkNode::start([3; 32], devnet.clone()).await;
    ldk.set_label("LDK");
    ldk.set_auto_sync(true);
    let ldk_id = NodeId::from_pubkey(ldk.node_id());
    mine(&devnet, 101, &alice.onchain.new_address().script_pubkey());
    mine(&devnet, 101, &ldk.wallet_script());
    mine(&devnet, 100, &ScriptBuf::new_op_return([]));

    alice
        .node
        .handle()
        .connect(ldk_id, ldk.listen_addr())
        .await
        .unwrap();
    alice
        .node
        .handle()
        .open_channel(ldk_id, bitcoin::Amount::from_sat(1_000_000), Msat::ZERO)
        .await
        .unwrap();
    ldk.connect(
        carol.node.node_id().pubkey(),
        carol.node.listen_addr().unwrap(),
    )
    .await
    .unwrap();
    ldk.open_channel(carol.node.node_id().pubkey(), 1_000_000, 0)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    mine(&devnet, 3, &ScriptBuf::new_op_return([]));
    let a = channel_with(&alice, ldk_id).await;
    let c = channel_with(&carol, ldk_id).await;

    // Carol's invoice, once LDK's channel_update reached her.
    let mut invoice = None;
    for _ in 0..500 {
        let (inv, _) = carol
            .node
            .handle()
            .invoice(Some(Msat::from_msat(50_000_000)), "via LDK", 3600)
            .await
            .unwrap();
        if hint(&inv).is_some() {
            invoice = Some(inv);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let invoice = invoice.expect("Carol's invoice never got a route hint through LDK");
    let (src, base, ppm, delta) = hint(&invoice).unwrap();
    assert_eq!(src, ldk_id);
    // LDK's default forwarding policy.
    assert_eq!((base, ppm, delta), (1_000, 0, 72));
    let (a0, c0) = (
        local(&alice, a.channel_id).await,
        local(&carol, c.channel_id).await,
    );
    alice.node.handle().pay(&invoice, None).await.unwrap();
    for _ in 0..500 {
        if local(&carol, c.channel_id).await != c0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (a1, c1) = (
        local(&alice, a.channel_id).await,
        local(&carol, c.channel_id).await,
    );
    assert_eq!(
        a0.to_msat() - a1.to_msat(),
        50_001_000,
        "the amount and LDK's 1,000 msat"
    );
    assert_eq!(c1.to_msat() - c0.to_msat(), 50_000_000);
    // Keysend (bLIP 3) both ways between Alice and LDK: no invoice, the
    // preimage in the onion.
    let preimage = alice
        .node
        .handle()
        .keysend(ldk_id, Msat::from_msat(7_000_000))
        .await
        .unwrap();
    let got = ldk
        .wait_received(&lightning::types::payment::PaymentHash(
            preimage.payment_hash().0,
        ))
        .await
        .unwrap();
    assert_eq!(got.amount_msat, 7_000_000);
    let hash = ldk
        .send_keysend(alice.node.node_id().pubkey(), 3_000_000)
        .unwrap();
    let sent = ldk.wait_sent(&hash).await.unwrap();
    assert!(sent.result.is_ok(), "{:?}", ldk.logs());
    let mut received = None;
    for _ in 0..500 {
        received = alice
            .node
            .handle()
            .payments()
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.incoming && p.payment_hash.0 == hash.0);
        if received.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let received = received.expect("Alice received LDK's keysend");
    assert_eq!(
        (received.amount, received.status.as_str()),
        (Some(Msat::from_msat(3_000_000)), "paid (keysend)")
    );
    ldk.stop();
}

/// LDK → Beongae Bob → LDK: the payee LDK's invoice names Bob's policy
/// (from Bob's channel_update to it: 1,000 msat + 1 ppm, 80 blocks); the
/// payer LDK routes over it; Bob forwards and keeps exactly his fee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beongae_forwards_between_two_ldk_nodes() {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let db = tempfile::tempdir().unwrap();
    let bob = beongae(&devnet, db.path(), 9).await;
    let payer = LdkNode::start([4; 32], devnet.clone()).await;
    let payee = LdkNode::start([5; 32], devnet.clone()).await;
    payer.set_label("LDK payer");
    payee.set_label("LDK payee");
    payer.set_auto_sync(true);
    payee.set_auto_sync(true);
    let bob_id = bob.node.node_id();
    mine(&devnet, 101, &payer.wallet_script());
    mine(&devnet, 101, &bob.onchain.new_address().script_pubkey());
    mine(&devnet, 100, &ScriptBuf::new_op_return([]));

    payer
        .connect(bob_id.pubkey(), bob.node.listen_addr().unwrap())
        .await
        .unwrap();
    payer
        .open_channel(bob_id.pubkey(), 1_000_000, 0)
        .await
        .unwrap();
    let payee_id = NodeId::from_pubkey(payee.node_id());
    bob.node
        .handle()
        .connect(payee_id, payee.listen_addr())
        .await
        .unwrap();
    bob.node
        .handle()
        .open_channel(payee_id, bitcoin::Amount::from_sat(1_000_000), Msat::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    mine(&devnet, 3, &ScriptBuf::new_op_return([]));
    let inbound = channel_with(&bob, NodeId::from_pubkey(payer.node_id())).await;
    let outbound = channel_with(&bob, payee_id).await;

    // The payee's invoice, once Bob's channel_update reached it (LDK
    // includes a private channel's hint once it knows the peer's policy).
    let mut invoice = None;
    for _ in 0..500 {
        let inv = payee.create_invoice(70_000_000, "via Beongae");
        if hint(&inv).is_some() {
            invoice = Some(inv);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let invoice = invoice.expect("LDK's invoice never got a route hint through Bob");
    assert_eq!(hint(&invoice).unwrap(), (bob_id, 1_000, 1, 80));
    let (in0, out0) = (
        local(&bob, inbound.channel_id).await,
        local(&bob, outbound.channel_id).await,
    );
    let hash = payer.pay_invoice(&invoice).unwrap();
    let sent = payer.wait_sent(&hash).await.unwrap();
    assert!(sent.result.is_ok(), "{:?}", payer.logs());
    // LDK's own account: 70,000,000 msat delivered, Bob's 1,070 msat fee.
    assert_eq!(
        (sent.amount_msat, sent.fee_paid_msat),
        (Some(70_000_000), Some(1_070))
    );
    payee.wait_received(&hash).await.unwrap();
    let mut forwards = Vec::new();
    for _ in 0..500 {
        forwards = bob.node.handle().forwards().await.unwrap();
        if forwards.first().is_some_and(|f| f.status == "settled") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(forwards.len(), 1);
    // 1,000 msat + 1 ppm of 70,000,000 msat.
    assert_eq!(forwards[0].fee, Msat::from_msat(1_070));
    assert_eq!(forwards[0].out_amount, Msat::from_msat(70_000_000));
    // Both channels settle (the upstream fulfil committed too).
    for _ in 0..500 {
        let both = local(&bob, inbound.channel_id).await != in0
            && local(&bob, outbound.channel_id).await != out0;
        if both {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (in1, out1) = (
        local(&bob, inbound.channel_id).await,
        local(&bob, outbound.channel_id).await,
    );
    assert_eq!(in1.to_msat() - in0.to_msat(), 70_001_070);
    assert_eq!(out0.to_msat() - out1.to_msat(), 70_000_000);
    payer.stop();
    payee.stop();
}

/// BOLT 4 `basic_mpp` with LDK as the payer: LDK has two channels of
/// 600,000 sat to Carol, neither able to carry her 900,000 sat invoice
/// alone; LDK's router splits it, Carol holds the parts until their sum
/// reaches the total, then fulfils them all: LDK's payment succeeds and
/// Carol's two channels together received exactly 900,000 sat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldk_pays_us_in_parts() {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let dc = tempfile::tempdir().unwrap();
    let carol = beongae(&devnet, dc.path(), 10).await;
    let ldk = LdkNode::start([6; 32], devnet.clone()).await;
    ldk.set_label("LDK");
    ldk.set_auto_sync(true);
    mine(&devnet, 101, &ldk.wallet_script());
    mine(&devnet, 100, &ScriptBuf::new_op_return([]));
    let carol_id = carol.node.node_id();
    ldk.connect(carol_id.pubkey(), carol.node.listen_addr().unwrap())
        .await
        .unwrap();
    let first = ldk
        .open_channel(carol_id.pubkey(), 600_000, 0)
        .await
        .unwrap();
    let second = ldk
        .open_channel(carol_id.pubkey(), 600_000, 0)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    mine(&devnet, 3, &ScriptBuf::new_op_return([]));
    for id in [&first, &second] {
        ldk.wait_channel(id, Duration::from_secs(10), |c| c.is_usable)
            .await
            .unwrap();
    }
    let ours = |id: &lightning::ln::types::ChannelId| ChannelId(id.0);
    let (invoice, hash) = carol
        .node
        .handle()
        .invoice(Some(Msat::from_msat(900_000_000)), "in parts", 3600)
        .await
        .unwrap();
    let h = ldk.pay_invoice(&invoice).unwrap();
    assert_eq!(h.0, hash.0);
    let sent = ldk.wait_sent(&h).await.unwrap();
    assert!(sent.result.is_ok(), "{:?}", ldk.logs());
    let mut got = (Msat::ZERO, Msat::ZERO);
    for _ in 0..500 {
        got = (
            local(&carol, ours(&first)).await,
            local(&carol, ours(&second)).await,
        );
        if got.0.to_msat() + got.1.to_msat() == 900_000_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(got.0.to_msat() + got.1.to_msat(), 900_000_000, "{got:?}");
    assert!(
        got.0 > Msat::ZERO && got.1 > Msat::ZERO,
        "both channels carried a part: {got:?}"
    );
    let paid = carol
        .node
        .handle()
        .payments()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.payment_hash == hash)
        .unwrap();
    assert_eq!(
        (paid.status.as_str(), paid.amount),
        ("paid", Some(Msat::from_msat(900_000_000)))
    );
    ldk.stop();
}

/// BOLT 4 `basic_mpp` with LDK as the payee: Carol has two channels of
/// 600,000 sat to LDK; LDK's 900,000 sat invoice is more than either can
/// carry, so Carol pays it in parts over both (each part's `total_msat`
/// the whole); LDK takes the set, and Carol's payment succeeds with both
/// channels together 900,000 sat lighter, no fee paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_pay_ldk_in_parts() {
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let dc = tempfile::tempdir().unwrap();
    let carol = beongae(&devnet, dc.path(), 11).await;
    // LDK takes at most 10% of a channel in flight by default (interop
    // notes): all of it here, so that 900,000 sat fit in two channels.
    let mut config = ldk_node::default_config();
    config
        .channel_handshake_config
        .max_inbound_htlc_value_in_flight_percent_of_channel = 100;
    let ldk = LdkNode::start_with_config([7; 32], devnet.clone(), config).await;
    ldk.set_label("LDK");
    ldk.set_auto_sync(true);
    mine(&devnet, 101, &carol.onchain.new_address().script_pubkey());
    mine(&devnet, 100, &ScriptBuf::new_op_return([]));
    let ldk_id = NodeId::from_pubkey(ldk.node_id());
    carol
        .node
        .handle()
        .connect(ldk_id, ldk.listen_addr())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (id, _) = carol
            .node
            .handle()
            .open_channel(ldk_id, bitcoin::Amount::from_sat(600_000), Msat::ZERO)
            .await
            .unwrap();
        ids.push(id);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    mine(&devnet, 3, &ScriptBuf::new_op_return([]));
    for id in &ids {
        for _ in 0..1500 {
            let c = carol.node.handle().channels().await.unwrap();
            if c.iter()
                .any(|c| c.channel_id == *id && c.state == ChannelState::Normal && c.active)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let before = [local(&carol, ids[0]).await, local(&carol, ids[1]).await];
    let invoice = ldk.create_invoice(900_000_000, "in parts");
    let preimage = carol.node.handle().pay(&invoice, None).await.unwrap();
    let got = ldk
        .wait_received(&lightning::types::payment::PaymentHash(
            preimage.payment_hash().0,
        ))
        .await
        .unwrap();
    assert_eq!(got.amount_msat, 900_000_000);
    let mut after = before;
    for _ in 0..500 {
        after = [local(&carol, ids[0]).await, local(&carol, ids[1]).await];
        let spent =
            before[0].to_msat() + before[1].to_msat() - after[0].to_msat() - after[1].to_msat();
        if spent == 900_000_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let spent = |i: usize| before[i].to_msat() - after[i].to_msat();
    assert_eq!(spent(0) + spent(1), 900_000_000);
    assert!(spent(0) > 0 && spent(1) > 0, "both channels carried a part");
    let paid = carol
        .node
        .handle()
        .payments()
        .await
        .unwrap()
        .into_iter()
        .find(|p| !p.incoming && p.payment_hash == preimage.payment_hash())
        .unwrap();
    assert_eq!(paid.status, "succeeded");
    assert_eq!(paid.fee, Some(Msat::ZERO));
    ldk.stop();
}
