//! Gossip between whole nodes (runtime, SQLite store, chain polling,
//! wallet) over real TCP on an in-process devnet (BOLT 7): six nodes in a
//! line open public channels; six blocks later each channel is announced
//! and every node learns the whole graph from its neighbours, funding
//! outputs checked on the chain; the first pays the last over five hops
//! of that graph; a seventh node that joins learns the graph from one
//! peer, keeps it across a restart, and a fee changed in the middle of the
//! line reaches every node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use beongae_node::core::channels::gossip::NetworkGraph;
use beongae_node::core::{ChannelSettings, ChannelState};
use beongae_node::embedded::Embedded;
use beongae_wire::{ChannelId, Msat};
use bitcoin::Amount;

#[path = "support/net.rs"]
mod net;
use net::{channel, id_of, wait_for, Net};

/// Gossip flushed twice a second, aliases "node0"….
fn settings(who: usize) -> ChannelSettings {
    let mut s = ChannelSettings::default();
    s.gossip.flush_interval = Duration::from_millis(500);
    s.gossip.alias = format!("node{who}");
    s
}

async fn graph(e: &Embedded) -> NetworkGraph {
    e.node.handle().graph().await.unwrap()
}

/// Waits (30 s) until node `e`'s graph satisfies `what`.
async fn wait_graph(e: &Embedded, what: impl Fn(&NetworkGraph) -> bool) -> NetworkGraph {
    for _ in 0..1500 {
        let g = graph(e).await;
        if what(&g) {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{}: graph never settled: {:?}", id_of(e), graph(e).await);
}

/// The whole line: `channels` announced channels with both directions'
/// updates, `nodes` announced nodes.
fn complete(g: &NetworkGraph, channels: usize, nodes: usize) -> bool {
    g.channels.len() == channels
        && g.channels
            .iter()
            .all(|c| c.policies.iter().all(|p| p.is_some()))
        && g.nodes.len() == nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_nodes_learn_the_graph_and_pay_over_five_hops() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let net = Net::with_nodes(7);
    let mut nodes = Vec::new();
    for who in 0..6 {
        nodes.push(net.start_with(who, settings(who)).await);
    }
    for e in &nodes[..5] {
        net.mine_to(1, &e.onchain.new_address().script_pubkey());
    }
    net.mine(100);
    let mut ids: Vec<ChannelId> = Vec::new();
    for i in 0..5 {
        let (from, to) = (&nodes[i], &nodes[i + 1]);
        from.node
            .handle()
            .connect(id_of(to), to.node.listen_addr().unwrap())
            .await
            .unwrap();
        let (id, funding) = from
            .node
            .handle()
            .open_channel_with(id_of(to), Amount::from_sat(1_000_000), Msat::ZERO, true)
            .await
            .unwrap();
        for _ in 0..500 {
            if net.devnet.lock().unwrap().transaction(&funding).is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ids.push(id);
    }
    // Six confirmations: announcement_signatures, then the gossip.
    net.mine(6);
    for (i, id) in ids.iter().enumerate() {
        for e in [&nodes[i], &nodes[i + 1]] {
            wait_for(e, *id, |c| c.state == ChannelState::Normal && c.active).await;
        }
    }
    for e in &nodes {
        let g = wait_graph(e, |g| complete(g, 5, 6)).await;
        let aliases: Vec<&str> = g.nodes.iter().map(|n| n.alias.as_str()).collect();
        for who in 0..6 {
            assert!(
                aliases.contains(&format!("node{who}").as_str()),
                "{aliases:?}"
            );
        }
        assert!(g
            .channels
            .iter()
            .all(|c| c.capacity == Amount::from_sat(1_000_000)));
    }
    // Node 0 pays node 5 over five hops: every middle node keeps 1,000
    // msat + 1 ppm of what it forwards.
    let before: Vec<Msat> = {
        let mut v = Vec::new();
        for i in 0..5 {
            v.push(channel(&nodes[i], ids[i]).await.local);
        }
        v
    };
    let (inv, _) = nodes[5]
        .node
        .handle()
        .invoice(Some(Msat::from_msat(50_000_000)), "five hops", 3600)
        .await
        .unwrap();
    nodes[0].node.handle().pay(&inv, None).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..5 {
        wait_for(&nodes[i], ids[i], |c| c.pending_htlcs == 0).await;
        let after = channel(&nodes[i], ids[i]).await.local;
        sent.push(before[i].to_msat() - after.to_msat());
    }
    assert_eq!(sent[4], 50_000_000);
    for i in 0..4 {
        assert_eq!(
            sent[i] - sent[i + 1],
            1_000 + sent[i + 1] / 1_000_000,
            "hop {}",
            i + 1
        );
    }
    let payments = nodes[0].node.handle().payments().await.unwrap();
    let p = payments.iter().find(|p| !p.incoming).unwrap();
    assert_eq!(p.route.len(), 5, "{p:?}");

    // A seventh node joins next to node 3 and learns the graph from it.
    let joiner = net.start_with(6, settings(6)).await;
    joiner
        .node
        .handle()
        .connect(id_of(&nodes[3]), nodes[3].node.listen_addr().unwrap())
        .await
        .unwrap();
    wait_graph(&joiner, |g| complete(g, 5, 6)).await;
    // Kept across a restart (the store), before any peer is connected.
    let Embedded { node, onchain } = joiner;
    node.shutdown().await;
    drop(onchain);
    let joiner = net.start_with(6, settings(6)).await;
    assert!(complete(&graph(&joiner).await, 5, 6));
    joiner
        .node
        .handle()
        .connect(id_of(&nodes[3]), nodes[3].node.listen_addr().unwrap())
        .await
        .unwrap();

    // Node 2 raises its base fee towards node 3: every node sees it.
    let set = nodes[2]
        .node
        .handle()
        .set_policy(
            Some(ids[2]),
            beongae_node::core::channels::policy::ForwardingPolicy {
                fee_base_msat: 7_777,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(set, vec![ids[2]]);
    let scid = channel(&nodes[2], ids[2]).await.short_channel_id.unwrap();
    let from_1 = id_of(&nodes[2]).serialize() < id_of(&nodes[3]).serialize();
    let dir = usize::from(!from_1);
    for e in nodes.iter().chain([&joiner]) {
        wait_graph(e, |g| {
            g.channels.iter().any(|c| {
                c.short_channel_id == scid
                    && c.policies[dir].is_some_and(|p| p.fee_base_msat == 7_777)
            })
        })
        .await;
    }
}
