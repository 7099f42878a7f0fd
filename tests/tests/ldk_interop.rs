//! Interop with LDK 0.2 as a live peer over loopback TCP: the BOLT 8
//! handshake in both directions, the `init` exchange and `ping`/`pong`.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use beongae_node::core::{default_features, CoreConfig, Direction, Event};
use beongae_node::runtime::{Node, NodeConfig};
use beongae_wire::{ChainHash, Features, NodeId};
use bitcoin::secp256k1::SecretKey;
use support::ldk::{LdkPeer, PingPong};

const T: Duration = Duration::from_secs(10);

/// The features LDK 0.2.7 sends with our test handlers (see support/LDK_NOTES.md).
const LDK_FEATURES: &str = "08a0002a0aa222";
/// Ours: optional bits 1, 7, 9, 13, 15, 45.
const OUR_FEATURES: &str = "2000a0000880a282";

async fn beongae(seed: u8) -> Node {
    let mut config = NodeConfig::new(CoreConfig::new(ChainHash::REGTEST));
    config.listen = Some("127.0.0.1:0".parse().unwrap());
    Node::start(SecretKey::from_slice(&[seed; 32]).unwrap(), config)
        .await
        .unwrap()
}

/// LDK pings us on its timer tick; we must answer with a pong of the asked
/// length. LDK drops a peer whose pong has not arrived by its next tick, so
/// three rounds of tick-then-pong keep us connected only if we answer each.
async fn ldk_pings_us_and_gets_its_pong(ldk: &LdkPeer, us: NodeId) {
    for round in 1..=3 {
        ldk.timer_tick();
        let answered = ldk
            .wait_ping_pongs(&us.pubkey(), T, |events| {
                let pings: Vec<u16> = events
                    .iter()
                    .filter_map(|e| match e {
                        PingPong::PingSent { ponglen, .. } => Some(*ponglen),
                        _ => None,
                    })
                    .collect();
                let pongs: Vec<u16> = events
                    .iter()
                    .filter_map(|e| match e {
                        PingPong::PongReceived { byteslen, .. } => Some(*byteslen),
                        _ => None,
                    })
                    .collect();
                pongs.len() >= round && pings.len() >= round && pongs[..round] == pings[..round]
            })
            .await;
        assert!(
            answered,
            "round {round}: LDK saw no pong from us: {:?}",
            ldk.ping_pongs_with(&us.pubkey())
        );
    }
    ldk.timer_tick();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(ldk.is_connected(&us.pubkey()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beongae_dials_ldk() {
    let ldk = LdkPeer::start([7; 32]).await;
    let node = beongae(1).await;
    let handle = node.handle();
    let ldk_id = NodeId::from_pubkey(ldk.node_id());

    let info = handle
        .connect(ldk_id, ldk.listen_addr())
        .await
        .expect("handshake and init with LDK");
    assert_eq!(info.node_id, ldk_id);
    assert_eq!(info.direction, Direction::Outbound);
    assert_eq!(hex::encode(info.features.to_be_bytes()), LDK_FEATURES);
    assert_eq!(
        info.networks, None,
        "LDK sends no networks TLV with these handlers"
    );

    assert!(ldk.wait_connected(&node.node_id().pubkey(), true, T).await);
    assert_eq!(
        ldk.peer_init_features(&node.node_id().pubkey())
            .map(hex::encode),
        Some(OUR_FEATURES.to_owned())
    );
    assert_eq!(hex::encode(default_features().to_be_bytes()), OUR_FEATURES);

    // Our ping gets LDK's pong, with the length we asked for.
    let (len, _rtt) = handle.ping(ldk_id, 300).await.expect("pong from LDK");
    assert_eq!(len, 300);
    let (len, _) = handle.ping(ldk_id, 0).await.expect("pong from LDK");
    assert_eq!(len, 0);

    ldk_pings_us_and_gets_its_pong(&ldk, node.node_id()).await;
    assert_eq!(handle.peers().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldk_dials_beongae() {
    let ldk = LdkPeer::start([8; 32]).await;
    let node = beongae(2).await;
    let handle = node.handle();
    let mut events = handle.subscribe();

    ldk.connect(node.node_id().pubkey(), node.listen_addr().unwrap())
        .await
        .expect("LDK dials us");
    let info = tokio::time::timeout(T, async {
        loop {
            if let Ok(Event::PeerReady(info)) = events.recv().await {
                return info;
            }
        }
    })
    .await
    .expect("LDK completed init with us");
    assert_eq!(info.node_id.pubkey(), ldk.node_id());
    assert_eq!(info.direction, Direction::Inbound);
    assert_eq!(
        info.features,
        Features::from_be_bytes(&hex::decode(LDK_FEATURES).unwrap())
    );

    assert!(ldk.wait_connected(&node.node_id().pubkey(), true, T).await);
    assert_eq!(
        ldk.peer_init_features(&node.node_id().pubkey())
            .map(hex::encode),
        Some(OUR_FEATURES.to_owned())
    );

    let (len, _) = handle
        .ping(info.node_id, 65531)
        .await
        .expect("largest pong from LDK");
    assert_eq!(len, 65531);
    ldk_pings_us_and_gets_its_pong(&ldk, node.node_id()).await;

    // A clean disconnect from our side is seen by LDK.
    assert!(handle.disconnect(info.node_id).await.unwrap());
    assert!(ldk.wait_connected(&node.node_id().pubkey(), false, T).await);
}
