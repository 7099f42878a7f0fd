//! Smoke test for the in-process LDK peer harness (`support/ldk.rs`): two LDK nodes connect,
//! see each other, exchange pings on timer ticks and stay connected.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::ldk::{LdkPeer, PingPong};
use tokio::io::AsyncReadExt;

const T: Duration = Duration::from_secs(10);

async fn connected_pair() -> (LdkPeer, LdkPeer) {
    let a = LdkPeer::start([1u8; 32]).await;
    let b = LdkPeer::start_random().await;
    a.set_label("ldk-A");
    b.set_label("ldk-B");
    assert_ne!(a.node_id(), b.node_id());
    a.connect(b.node_id(), b.listen_addr())
        .await
        .expect("A dials B");
    assert!(a.wait_connected(&b.node_id(), true, T).await, "A sees B");
    assert!(b.wait_connected(&a.node_id(), true, T).await, "B sees A");
    (a, b)
}

async fn smoke() {
    let (a, b) = connected_pair().await;

    // The seed determines the node key.
    let a2 = LdkPeer::start([1u8; 32]).await;
    assert_eq!(a.node_id(), a2.node_id());
    a2.stop();

    // Features: what each side saw is what the other sends.
    let ours = a.our_init_features();
    eprintln!("LDK init features (BE): {}", hex::encode(&ours));
    // Bits 1,5,9,13,15,17,19,25,27,29,45,47,51 (all optional) from ErroringMessageHandler.
    assert_eq!(hex::encode(&ours), "08a0002a0aa222");
    assert_eq!(b.peer_init_features(&a.node_id()), Some(ours.clone()));
    assert_eq!(
        a.peer_init_features(&b.node_id()),
        Some(b.our_init_features())
    );
    assert_eq!(a.connected_peers(), vec![b.node_id()]);

    // Timer ticks: A pings B, B answers, both stay connected.
    for round in 1..=3 {
        a.timer_tick();
        let want = round;
        assert!(
            a.wait_ping_pongs(&b.node_id(), T, |h| {
                h.iter()
                    .filter(|e| matches!(e, PingPong::PongReceived { .. }))
                    .count()
                    >= want
            })
            .await,
            "A got pong #{round}: {:?}",
            a.ping_pongs_with(&b.node_id())
        );
        assert!(a.is_connected(&b.node_id()) && b.is_connected(&a.node_id()));
    }
    let a_hist = a.ping_pongs_with(&b.node_id());
    assert!(a_hist.contains(&PingPong::PingSent {
        peer: Some(b.node_id()),
        ponglen: 0,
        byteslen: 64
    }));
    assert!(a_hist.contains(&PingPong::PongReceived {
        peer: Some(b.node_id()),
        byteslen: 0
    }));
    let b_hist = b.ping_pongs_with(&a.node_id());
    assert!(b_hist.contains(&PingPong::PingReceived {
        peer: Some(a.node_id()),
        ponglen: 0,
        byteslen: 64
    }));
    assert!(b_hist.contains(&PingPong::PongSent {
        peer: Some(a.node_id()),
        byteslen: 0
    }));

    // Both sides ticking keeps them connected too.
    for _ in 0..3 {
        a.timer_tick();
        b.timer_tick();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(a.is_connected(&b.node_id()) && b.is_connected(&a.node_id()));
    }

    // Explicit disconnect is seen by both sides.
    a.disconnect(&b.node_id());
    assert!(a.wait_connected(&b.node_id(), false, T).await);
    assert!(b.wait_connected(&a.node_id(), false, T).await);

    // Stop: B no longer accepts.
    b.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        a.connect(b.node_id(), b.listen_addr()).await.is_err(),
        "B still accepting"
    );
    assert!(
        !a.wait_connected(&b.node_id(), true, Duration::from_millis(300))
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldk_pair_multi_thread() {
    smoke().await;
}

#[tokio::test]
async fn ldk_pair_current_thread() {
    smoke().await;
}

/// A TCP client that never does the Noise handshake is dropped on the second timer tick.
#[tokio::test]
async fn ldk_drops_silent_connection_after_two_ticks() {
    let a = LdkPeer::start_random().await;
    let mut sock = tokio::net::TcpStream::connect(a.listen_addr())
        .await
        .expect("tcp connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.timer_tick(); // marks the unfinished handshake
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut buf = [0u8; 1];
    // Still open after one tick.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), sock.read(&mut buf))
            .await
            .is_err(),
        "connection closed after only one tick"
    );
    a.timer_tick(); // disconnects
    let n = tokio::time::timeout(T, sock.read(&mut buf))
        .await
        .expect("LDK closed the socket")
        .unwrap_or(0);
    assert_eq!(n, 0, "EOF expected");
    assert!(a.log_contains("ping/handshake timeout"));
}
