//! Multi-hop payments through the whole node (runtime, SQLite store, chain
//! polling, wallet) over real TCP on an in-process devnet: Alice pays
//! Carol through Bob, who forwards for his fee (BOLT 4); Carol's invoice
//! reaches her over Bob's private channel by its route hint (BOLT 11 `r`,
//! Bob's policy from his `channel_update` to Carol).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use beongae_node::core::{ChannelState, ChannelSummary};
use beongae_node::embedded::Embedded;
use beongae_wire::{ChannelId, Msat, NodeId};
use bitcoin::Amount;

#[path = "support/net.rs"]
mod net;
use net::Net;

fn id_of(e: &Embedded) -> NodeId {
    e.node.node_id()
}

async fn channel(e: &Embedded, id: ChannelId) -> ChannelSummary {
    e.node
        .handle()
        .channels()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.channel_id == id)
        .unwrap()
}

async fn wait_for(e: &Embedded, id: ChannelId, what: impl Fn(&ChannelSummary) -> bool) {
    for _ in 0..500 {
        if what(&channel(e, id).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("channel {id}: {:?}", channel(e, id).await);
}

/// Opens `sat` from `from` to `to` (connected first) and waits until both
/// see it normal and active.
async fn open(net: &Net, from: &Embedded, to: &Embedded, sat: u64) -> ChannelId {
    from.node
        .handle()
        .connect(id_of(to), to.node.listen_addr().unwrap())
        .await
        .unwrap();
    let (id, funding) = from
        .node
        .handle()
        .open_channel(id_of(to), Amount::from_sat(sat), Msat::ZERO)
        .await
        .unwrap();
    for _ in 0..500 {
        if net.devnet.lock().unwrap().transaction(&funding).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    net.mine(3);
    for e in [from, to] {
        wait_for(e, id, |c| c.state == ChannelState::Normal && c.active).await;
    }
    id
}

/// Alice —(2,000,000 sat)→ Bob —(500,000 sat)→ Carol, both channels
/// private; Carol's invoices carry a route hint through Bob once his
/// channel_update reached her.
async fn three_nodes(net: &Net) -> ([Embedded; 3], ChannelId, ChannelId) {
    let alice = net.start(0).await;
    let bob = net.start(1).await;
    let carol = net.start(2).await;
    net.mine_to(101, &alice.onchain.new_address().script_pubkey());
    net.mine_to(101, &bob.onchain.new_address().script_pubkey());
    net.mine(100);
    let ab = open(net, &alice, &bob, 2_000_000).await;
    let bc = open(net, &bob, &carol, 500_000).await;
    ([alice, bob, carol], ab, bc)
}

/// Carol's invoice for `msat`, once it has a route hint through Bob.
async fn invoice_via_bob(carol: &Embedded, bob: &Embedded, msat: u64) -> String {
    for _ in 0..200 {
        let (inv, _) = carol
            .node
            .handle()
            .invoice(Some(Msat::from_msat(msat)), "coffee", 3600)
            .await
            .unwrap();
        let decoded = beongae_invoice::Invoice::decode(&inv).unwrap();
        let hints: Vec<_> = decoded.route_hints().collect();
        if let Some(h) = hints.first() {
            assert_eq!(hints.len(), 1);
            assert_eq!(h.0.len(), 1);
            // Bob's policy for his direction: 1 sat + 1 ppm, 80 blocks.
            let hop = &h.0[0];
            assert_eq!(hop.src_node_id, id_of(bob));
            assert_eq!(
                (
                    hop.fee_base_msat,
                    hop.fee_proportional_millionths,
                    hop.cltv_expiry_delta
                ),
                (1_000, 1, 80)
            );
            return inv;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("Carol's invoices never got a route hint through Bob");
}

/// Alice pays Carol 100,000 sat through Bob: Carol gets exactly 100,000
/// sat, Bob exactly his fee (1,000 msat + 1 ppm of 100,000,000 msat =
/// 1,100 msat), Alice pays both; every channel's balance moves by exactly
/// that, on both of its sides. Bob's `forwards` lists it settled with its
/// fee.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alice_pays_carol_through_bob_who_earns_his_fee() {
    let net = Net::new();
    let ([alice, bob, carol], ab, bc) = three_nodes(&net).await;
    let before = [
        channel(&alice, ab).await.local,
        channel(&bob, ab).await.local,
        channel(&bob, bc).await.local,
        channel(&carol, bc).await.local,
    ];
    let inv = invoice_via_bob(&carol, &bob, 100_000_000).await;
    alice.node.handle().pay(&inv, None).await.unwrap();
    for (e, id) in [(&alice, ab), (&bob, ab), (&bob, bc), (&carol, bc)] {
        wait_for(e, id, |c| c.pending_htlcs == 0).await;
    }
    let after = [
        channel(&alice, ab).await.local,
        channel(&bob, ab).await.local,
        channel(&bob, bc).await.local,
        channel(&carol, bc).await.local,
    ];
    let msat = |m: Msat| m.to_msat() as i64;
    let moved: Vec<i64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| msat(*a) - msat(*b))
        .collect();
    assert_eq!(
        moved,
        vec![-100_001_100, 100_001_100, -100_000_000, 100_000_000]
    );
    // The peers' views of each channel agree.
    assert_eq!(channel(&alice, ab).await.remote, after[1]);
    assert_eq!(channel(&carol, bc).await.remote, after[2]);
    let forwards = bob.node.handle().forwards().await.unwrap();
    assert_eq!(forwards.len(), 1);
    let f = &forwards[0];
    assert_eq!((f.in_channel, f.out_channel, f.status), (ab, bc, "settled"));
    assert_eq!(
        (f.in_amount, f.out_amount, f.fee),
        (
            Msat::from_msat(100_001_100),
            Msat::from_msat(100_000_000),
            Msat::from_msat(1_100)
        )
    );
    let payments = alice.node.handle().payments().await.unwrap();
    // What Alice sent: the amount and Bob's fee.
    assert!(
        payments.iter().any(|p| !p.incoming
            && p.status == "succeeded"
            && p.amount == Some(Msat::from_msat(100_001_100))),
        "{payments:?}"
    );
}

/// A payment bigger than Bob's channel to Carol can carry: Bob cannot offer
/// it and fails it back with `temporary_channel_failure` (BOLT 4), which
/// Alice decrypts as coming from Bob (hop 0); no balance moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_the_next_channel_cannot_carry_fails_back_from_bob() {
    let net = Net::new();
    let ([alice, bob, carol], ab, bc) = three_nodes(&net).await;
    let before = channel(&alice, ab).await.local;
    let inv = invoice_via_bob(&carol, &bob, 600_000_000).await;
    let err = alice
        .node
        .handle()
        .pay(&inv, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("TemporaryChannelFailure") && err.contains("(from hop 0)"),
        "{err}"
    );
    for (e, id) in [(&alice, ab), (&bob, ab), (&bob, bc)] {
        wait_for(e, id, |c| c.pending_htlcs == 0).await;
    }
    assert_eq!(channel(&alice, ab).await.local, before);
    let forwards = bob.node.handle().forwards().await.unwrap();
    assert!(forwards.is_empty(), "{forwards:?}");
}
