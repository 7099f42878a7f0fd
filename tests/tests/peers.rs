//! The peer layer over real TCP: misbehaving peers are dropped without a
//! panic and without disturbing others; silent peers time out; many peers at once.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use beongae_node::core::CoreConfig;
use beongae_node::runtime::{Node, NodeConfig};
use beongae_wire::{ChainHash, ChannelId, Message, NodeId, Ping, Warning};
use support::ldk::LdkPeer;
use support::raw::{key, RawPeer, T};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn beongae(seed: u8, tune: impl FnOnce(&mut NodeConfig)) -> Node {
    let mut config = NodeConfig::new(CoreConfig::new(ChainHash::REGTEST));
    config.listen = Some("127.0.0.1:0".parse().unwrap());
    tune(&mut config);
    Node::start(key(seed), config).await.unwrap()
}

async fn wait_peers(node: &Node, n: usize) {
    let deadline = tokio::time::Instant::now() + T;
    while node.handle().peers().await.unwrap().len() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} peers, have {:?}",
            node.handle().peers().await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_handshake_drops_only_that_peer() {
    let node = beongae(1, |_| {}).await;
    let handle = node.handle();
    let ldk = LdkPeer::start([9; 32]).await;
    let ldk_id = NodeId::from_pubkey(ldk.node_id());
    handle.connect(ldk_id, ldk.listen_addr()).await.unwrap();

    // 1. Bytes that are not a valid BOLT 8 frame (bad MAC): closed, nothing sent.
    let mut raw = RawPeer::connect(&node, 20).await;
    raw.init().await;
    wait_peers(&node, 2).await;
    raw.stream.write_all(&[0x42; 200]).await.unwrap();
    assert!(raw.expect_closed().await.is_empty());
    wait_peers(&node, 1).await;

    // 2. A valid frame with an unknown even message type: warning, then closed.
    let mut raw = RawPeer::connect(&node, 21).await;
    raw.init().await;
    raw.send_raw_message(&[0x7f, 0xfe, 1, 2, 3]).await;
    let seen = raw.expect_closed().await;
    assert_eq!(
        seen,
        vec![Message::Warning(Warning::new(
            ChannelId::ALL,
            "unknown even message type 32766"
        ))]
    );

    // 3. A truncated ping: warning, then closed.
    let mut raw = RawPeer::connect(&node, 22).await;
    raw.init().await;
    raw.send_raw_message(&[0x00, 0x12, 0x00, 0x01, 0x00, 0x09])
        .await;
    let seen = raw.expect_closed().await;
    let text = "malformed message: unexpected end of input: needed 9 more bytes";
    assert_eq!(
        seen,
        vec![Message::Warning(Warning::new(ChannelId::ALL, text))]
    );

    // 4. An unknown odd message is ignored and a ping still answered.
    let mut raw = RawPeer::connect(&node, 23).await;
    raw.init().await;
    raw.send_raw_message(&[0x7f, 0xff, 9, 9]).await;
    raw.send(Ping::new(17, 3)).await;
    match raw.recv().await {
        Some(Message::Pong(p)) => assert_eq!(p.ignored.len(), 17),
        other => panic!("expected pong, got {other:?}"),
    }

    // 5. Garbage before any handshake: dropped by the handshake.
    let mut s = TcpStream::connect(node.listen_addr().unwrap())
        .await
        .unwrap();
    s.write_all(&[1u8; 50]).await.unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        tokio::time::timeout(T, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0),
        0
    );

    // The LDK peer never noticed.
    assert!(ldk.is_connected(&node.node_id().pubkey()));
    assert_eq!(handle.ping(ldk_id, 8).await.unwrap().0, 8);
    let peers = handle.peers().await.unwrap();
    assert_eq!(peers.iter().map(|p| p.node_id).collect::<Vec<_>>().len(), 2);
    assert!(peers.iter().any(|p| p.node_id == RawPeer::node_id(23)));
    assert!(peers.iter().any(|p| p.node_id == ldk_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_dropped_after_ping_timeout() {
    let node = beongae(2, |c| {
        c.core.ping_interval = Duration::from_millis(200);
        c.core.ping_timeout = Duration::from_millis(300);
        c.tick_interval = Duration::from_millis(50);
    })
    .await;
    let mut raw = RawPeer::connect(&node, 30).await;
    raw.init().await;
    wait_peers(&node, 1).await;
    // We never answer: the node pings, then gives up on us.
    let seen = raw.expect_closed().await;
    assert!(matches!(seen.first(), Some(Message::Ping(_))), "{seen:?}");
    wait_peers(&node, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_without_init_is_dropped() {
    let node = beongae(3, |c| {
        c.core.init_timeout = Duration::from_millis(200);
        c.tick_interval = Duration::from_millis(50);
    })
    .await;
    let mut raw = RawPeer::connect(&node, 31).await;
    let seen = raw.expect_closed().await;
    assert!(matches!(seen.as_slice(), [Message::Init(_)]), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_peers_at_once() {
    let hub = beongae(4, |_| {}).await;
    let hub_id = hub.node_id();
    let addr = hub.listen_addr().unwrap();
    let mut spokes = Vec::new();
    for i in 0..24u8 {
        spokes.push(beongae(50 + i, |c| c.listen = None).await);
    }
    let connects = spokes.iter().map(|s| {
        let h = s.handle();
        async move { h.connect(hub_id, addr).await }
    });
    for r in futures_join_all(connects).await {
        assert_eq!(r.unwrap().node_id, hub_id);
    }
    wait_peers(&hub, 24).await;
    for s in &spokes {
        assert_eq!(s.handle().ping(hub_id, 5).await.unwrap().0, 5);
    }
    // Wrong node id at the address: the handshake fails with a clear message.
    let err = spokes[0]
        .handle()
        .connect(RawPeer::node_id(99), addr)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("is 03") || err.to_string().contains("is 02"),
        "{err}"
    );
    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = spokes[1]
        .handle()
        .connect(RawPeer::node_id(98), closed)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to {closed}")),
        "{err}"
    );
}

/// Runs futures concurrently on the current task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<_> = futs.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().map(|r| r.expect("all done")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_stops_reading_is_cut_off() {
    let node = beongae(5, |c| c.core.max_pongs_per_interval = 100_000).await;
    let mut raw = RawPeer::connect(&node, 40).await;
    raw.init().await;
    wait_peers(&node, 1).await;
    // Ask for ~26 MB of pongs and never read them: more than the socket
    // buffers and the 4 MiB queue limit hold.
    let ping = Message::from(Ping::new(65531, 0)).encode().unwrap();
    let mut frames = Vec::new();
    for _ in 0..400 {
        frames.extend(raw.transport.encrypt_message(&ping).unwrap());
    }
    raw.stream.write_all(&frames).await.unwrap();
    wait_peers(&node, 0).await;
    // What was queued is dropped and the socket closed: reading now gets
    // fewer pongs than asked for, then the end of the stream.
    let seen = raw.expect_closed().await;
    assert!(seen.len() < 400, "{} messages", seen.len());
    assert!(seen.iter().all(|m| matches!(m, Message::Pong(_))));
    // The node is fine and still takes new peers.
    let mut again = RawPeer::connect(&node, 41).await;
    again.init().await;
    wait_peers(&node, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_messages_are_refused_without_closing() {
    let node = beongae(6, |_| {}).await;
    let mut raw = RawPeer::connect(&node, 42).await;
    raw.init().await;
    // channel_reestablish (136) for a channel the node does not have.
    let mut msg = vec![0x00, 0x88];
    msg.extend_from_slice(&[0x11; 32]);
    msg.extend_from_slice(&[0; 16]);
    raw.send_raw_message(&msg).await;
    match raw.recv().await {
        Some(Message::Error(e)) => assert_eq!(e.channel_id, ChannelId([0x11; 32])),
        other => panic!("expected error, got {other:?}"),
    }
    raw.send(Ping::new(3, 0)).await;
    assert!(matches!(raw.recv().await, Some(Message::Pong(_))));
}
