//! Gossip with LDK 0.2.7 as a live peer over TCP on one devnet (BOLT 7):
//! Beongae opens a public channel to LDK; six blocks later the two exchange
//! `announcement_signatures`, and LDK's `P2PGossipSync` (which checks the
//! funding output on the devnet) accepts our `channel_announcement`, our
//! `channel_update` and our `node_announcement`, and relays them to a
//! second LDK node. The other way, Beongae learns the public channel
//! between the two LDK nodes from LDK's gossip and pays the second LDK
//! node's invoice over it, routed by its graph.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/ldk_node.rs"]
mod ldk_node;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use beongae_chain::devnet::Devnet;
use beongae_chain::ChainSource;
use beongae_node::core::channels::gossip::NetworkGraph;
use beongae_node::core::{ChannelSettings, ChannelState};
use beongae_node::embedded::{self, Embedded, EmbeddedConfig};
use beongae_wallet::Seed;
use beongae_wire::{Msat, NodeId};
use bitcoin::ScriptBuf;
use ldk_node::LdkNode;
use lightning::routing::gossip::NodeId as LdkNodeId;

/// Blocks stamped with the real time: LDK stamps its `channel_update`s with
/// the newest block time, and its graph refuses updates more than two
/// weeks older than the clock.
fn mine(devnet: &Mutex<Devnet>, n: u32, script: &ScriptBuf) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    devnet.lock().unwrap().mine(n, script, now);
}

async fn beongae(devnet: &Arc<Mutex<Devnet>>, dir: &std::path::Path) -> Embedded {
    let mut cfg = EmbeddedConfig::new(dir, bitcoin::Network::Regtest);
    // The suite's backend (`.ci/run` runs it on SQLite and on PostgreSQL).
    cfg.store = beongae_store::testing::node_store(dir);
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.chain_poll = Duration::from_millis(20);
    let mut settings = ChannelSettings::default();
    settings.gossip.flush_interval = Duration::from_millis(500);
    settings.gossip.alias = "beongae".into();
    cfg.settings = settings;
    let chain: Arc<dyn ChainSource> = devnet.clone();
    embedded::start(&Seed::from_entropy([9; 32]), chain, cfg)
        .await
        .unwrap()
}

/// LDK with public channels (`announce_for_forwarding`).
async fn ldk(devnet: &Arc<Mutex<Devnet>>, seed: u8, label: &str) -> LdkNode {
    let mut config = ldk_node::default_config();
    config.channel_handshake_config.announce_for_forwarding = true;
    let l = LdkNode::start_with_config([seed; 32], devnet.clone(), config).await;
    l.set_label(label);
    l.set_auto_sync(true);
    l
}

/// Waits (60 s) until our graph satisfies `what`. LDK paces what it sends
/// a peer (its graph backfill, and broadcasts while one is under way) by
/// pongs since its last ping; its `PeerManager` ticks every second here to
/// ping more often than the harness's 10 s.
async fn wait_graph(
    e: &Embedded,
    ldk: &LdkNode,
    what: impl Fn(&NetworkGraph) -> bool,
) -> NetworkGraph {
    for i in 0..3000 {
        let g = e.node.handle().graph().await.unwrap();
        if what(&g) {
            return g;
        }
        if i % 50 == 0 {
            ldk.peer_manager().timer_tick_occurred();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("graph never settled: {:?}", e.node.handle().graph().await);
}

/// Waits until LDK `l`'s graph has channel `scid` with both directions'
/// updates and node `node`'s announcement with `alias`.
async fn wait_ldk_graph(l: &LdkNode, scid: u64, node: NodeId, alias: &str) {
    let id = LdkNodeId::from_pubkey(&node.pubkey());
    for _ in 0..1500 {
        let done = {
            let g = l.network_graph().read_only();
            let channel = g
                .channel(scid)
                .is_some_and(|c| c.one_to_two.is_some() && c.two_to_one.is_some());
            let named = g
                .node(&id)
                .and_then(|n| n.announcement_info.as_ref())
                .is_some_and(|a| a.alias().0.starts_with(alias.as_bytes()));
            channel && named
        };
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gossip: Vec<String> = l
        .logs()
        .iter()
        .filter(|l| {
            let m = l.msg.to_lowercase();
            !m.contains("ping")
                && !m.contains("pong")
                && (m.contains("announce")
                    || m.contains("update")
                    || m.contains("gossip")
                    || m.contains("error")
                    || m.contains("ignor"))
        })
        .map(|l| format!("{:?} {} @{}", l.level, l.msg, l.location))
        .collect();
    panic!(
        "LDK never accepted channel {scid} and {alias}:\n{}",
        gossip.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldk_accepts_our_announcements_and_we_route_over_its_gossip() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let dir = tempfile::tempdir().unwrap();
    let us = beongae(&devnet, dir.path()).await;
    let l1 = ldk(&devnet, 21, "LDK1").await;
    let l2 = ldk(&devnet, 22, "LDK2").await;
    let (l1_id, l2_id) = (
        NodeId::from_pubkey(l1.node_id()),
        NodeId::from_pubkey(l2.node_id()),
    );
    mine(&devnet, 1, &us.onchain.new_address().script_pubkey());
    mine(&devnet, 1, &l1.wallet_script());
    mine(&devnet, 100, &ScriptBuf::new_op_return([]));

    // LDK1 —public→ LDK2 first, six deep, both directions in LDK1's graph
    // (so that what LDK1 sends us does not race LDK2's update to it).
    l1.connect(l2.node_id(), l2.listen_addr()).await.unwrap();
    l1.open_channel(l2.node_id(), 1_000_000, 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    mine(&devnet, 6, &ScriptBuf::new_op_return([]));
    let l12 = loop {
        let c = l1
            .channels()
            .into_iter()
            .find(|c| c.counterparty == l2.node_id());
        if let Some(scid) = c.and_then(|c| c.short_channel_id) {
            break scid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for i in 0..1500 {
        let both = l1
            .network_graph()
            .read_only()
            .channel(l12)
            .is_some_and(|c| c.one_to_two.is_some() && c.two_to_one.is_some());
        if both {
            break;
        }
        // LDK disconnects a peer whose pong has not come by its next timer
        // tick: every 20 ms was too tight under load (LDK1 and LDK2 parted).
        if i % 25 == 0 {
            l1.peer_manager().timer_tick_occurred();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Then Beongae —public→ LDK1: LDK1 sends us its graph (our empty
    // graph's filter asks for two weeks) and the new channel's gossip.
    us.node
        .handle()
        .connect(l1_id, l1.listen_addr())
        .await
        .unwrap();
    us.node
        .handle()
        .open_channel_with(
            l1_id,
            bitcoin::Amount::from_sat(1_000_000),
            Msat::ZERO,
            true,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    mine(&devnet, 6, &ScriptBuf::new_op_return([]));
    let ours = loop {
        let list = us.node.handle().channels().await.unwrap();
        if let Some(c) = list
            .iter()
            .find(|c| c.state == ChannelState::Normal && c.active)
        {
            break c.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let our_scid = ours.short_channel_id.unwrap();

    // LDK accepted ours: the channel (both directions) and our node, at
    // LDK1 first hand and at LDK2 through LDK1's relay.
    wait_ldk_graph(&l1, our_scid.to_u64(), us.node.node_id(), "beongae").await;
    wait_ldk_graph(&l2, our_scid.to_u64(), us.node.node_id(), "beongae").await;

    // We learned LDK's channel from its gossip; LDK's nodes announce
    // themselves (LDK sends its node_announcement when asked; a node is
    // taken once a channel of it is known, BOLT 7).
    let learned = |g: &NetworkGraph| {
        g.channels
            .iter()
            .any(|c| c.short_channel_id.to_u64() == l12 && c.policies.iter().all(|p| p.is_some()))
    };
    wait_graph(&us, &l1, learned).await;
    let mut g = None;
    for _ in 0..100 {
        l1.announce_node("ldk-one", [1, 2, 3]);
        l2.announce_node("ldk-two", [4, 5, 6]);
        l1.peer_manager().timer_tick_occurred();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = us.node.handle().graph().await.unwrap();
        if now
            .nodes
            .iter()
            .any(|n| n.node_id == l2_id && n.alias == "ldk-two")
        {
            g = Some(now);
            break;
        }
    }
    let g = g.expect("LDK2's node_announcement never reached us through LDK1");
    let l1_node = g.nodes.iter().find(|n| n.node_id == l1_id).unwrap();
    assert_eq!(
        (l1_node.alias.as_str(), l1_node.color),
        ("ldk-one", [1, 2, 3])
    );
    assert_eq!(g.channels.len(), 2, "{g:?}");
    let l1_policy = g
        .channels
        .iter()
        .find(|c| c.short_channel_id.to_u64() == l12)
        .and_then(|c| c.policies[usize::from(c.nodes[0] != l1_id)])
        .unwrap();
    // LDK's default forwarding policy.
    assert_eq!(
        (
            l1_policy.fee_base_msat,
            l1_policy.fee_proportional_millionths
        ),
        (1_000, 0)
    );

    // We pay LDK2 over LDK1, routed by what LDK's gossip taught us.
    let before = ours.local;
    let invoice = l2.create_invoice(30_000_000, "over gossip");
    let preimage = us.node.handle().pay(&invoice, None).await.unwrap();
    let received = l2.received_payments();
    assert!(received.iter().any(|r| r.amount_msat == 30_000_000
        && r.preimage == Some(lightning::types::payment::PaymentPreimage(preimage.0))));
    let after = loop {
        let list = us.node.handle().channels().await.unwrap();
        let c = list
            .iter()
            .find(|c| c.channel_id == ours.channel_id)
            .unwrap();
        if c.pending_htlcs == 0 {
            break c.local;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // 30,000,000 msat and LDK1's 1,000 msat fee.
    assert_eq!(before.to_msat() - after.to_msat(), 30_001_000);
    let payments = us.node.handle().payments().await.unwrap();
    let p = payments.iter().find(|p| !p.incoming).unwrap();
    assert_eq!(p.route, vec![l1_id, l2_id]);
}
