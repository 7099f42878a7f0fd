//! Resource exhaustion by a peer over real TCP (SAFETY.md "Peers that
//! attack"), each with a good peer served throughout: silent connections
//! holding handshakes open, floods of `open_channel`, and an `open_channel`
//! with an invalid key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use beongae_chain::devnet::Devnet;
use beongae_chain::ChainSource;
use beongae_channel::channel_type::ChannelTypeSpec;
use beongae_channel::config::ChannelConfig;
use beongae_channel::funding::LocalSetup;
use beongae_channel::propose::{open_channel, our_limits};
use beongae_channel::revocation::LocalSecrets;
use beongae_channel::sign::SigningKeys;
use beongae_node::core::CoreConfig;
use beongae_node::embedded::{self, Embedded, EmbeddedConfig};
use beongae_node::runtime::{Node, NodeConfig};
use beongae_script::FeeratePerKw;
use beongae_wallet::{KeyManager, Seed};
use beongae_wire::msgs::OpenChannel;
use beongae_wire::{ChainHash, ChannelId, Message, Msat, Ping};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::Amount;
use support::raw::{key, RawPeer};
use tokio::net::{TcpSocket, TcpStream};

/// `n` TCP connections from `ip` that never say a word.
async fn silent(to: SocketAddr, ip: [u8; 4], n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::from((ip, 0))).unwrap();
        held.push(s.connect(to).await.unwrap());
    }
    held
}

/// Issue 11 (10): an attacker holds 64 silent connections from one address
/// and 200 from another, and keeps opening more; a good peer (from a third
/// address, and from the attacker's own) completes its handshake and `init`
/// on every one of 40 tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_do_not_lock_a_good_peer_out() {
    let mut config = NodeConfig::new(CoreConfig::new(ChainHash::REGTEST));
    config.listen = Some("127.0.0.1:0".parse().unwrap());
    let node = Node::start(key(1), config).await.unwrap();
    let addr = node.listen_addr().unwrap();
    let mut held = silent(addr, [127, 0, 0, 2], 64).await;
    held.extend(silent(addr, [127, 0, 0, 3], 200).await);
    let mut served = 0;
    for i in 0..40u8 {
        // The attacker keeps going between the good peer's tries.
        held.extend(silent(addr, [127, 0, 0, 2 + i % 2], 8).await);
        let mut good = RawPeer::try_connect(addr, node.node_id(), 50 + i)
            .await
            .unwrap_or_else(|e| panic!("try {i}: handshake failed: {e}"));
        good.init().await;
        good.send(Ping::new(4, 0)).await;
        if matches!(good.recv().await, Some(Message::Pong(_))) {
            served += 1;
        }
    }
    assert_eq!(served, 40);
    drop(held);
}

/// A node with channels on its own devnet.
async fn channel_node(dir: &std::path::Path) -> Embedded {
    let devnet: Arc<dyn ChainSource> = Arc::new(Mutex::new(Devnet::new()));
    let mut cfg = EmbeddedConfig::new(dir, bitcoin::Network::Regtest);
    // The suite's backend (`.ci/run` runs it on SQLite and on PostgreSQL).
    cfg.store = beongae_store::testing::node_store(dir);
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    embedded::start(&Seed::from_entropy([3; 32]), devnet, cfg)
        .await
        .unwrap()
}

/// A valid `open_channel` of 100_000 sat with `temporary_channel_id`
/// all `temp`, from keys of seed `seed`.
fn open(seed: u8, temp: u8) -> OpenChannel {
    let secp = Secp256k1::new();
    let keys = KeyManager::new(
        Seed::from_entropy([seed; 32]).master_key(bitcoin::NetworkKind::Test),
        bitcoin::Network::Regtest,
    );
    let s = keys.channel(u32::from(temp));
    let cfg = ChannelConfig::default();
    let funding = Amount::from_sat(100_000);
    let setup = LocalSetup {
        keys: s.public(&secp),
        signing: SigningKeys {
            funding_key: s.funding,
            htlc_base_key: s.htlc_base,
        },
        secrets: LocalSecrets::new(s.commitment_seed),
        limits: our_limits(&cfg, funding, Amount::ZERO),
        to_self_delay: cfg.to_self_delay,
        max_dust_htlc_exposure: cfg.max_dust_htlc_exposure,
    };
    open_channel(
        &secp,
        ChainHash::REGTEST,
        ChannelId([temp; 32]),
        funding,
        Msat::ZERO,
        FeeratePerKw(2_500),
        ChannelTypeSpec::ANCHORS,
        &setup,
        &cfg,
        false,
    )
    .unwrap()
}

/// The node's answer to a channel message: `accept_channel`, or an
/// `error`'s text (pings skipped).
async fn answer(peer: &mut RawPeer) -> Result<ChannelId, (ChannelId, String)> {
    loop {
        match peer.recv().await {
            Some(Message::AcceptChannel(a)) => return Ok(a.temporary_channel_id),
            Some(Message::Error(e)) => return Err((e.channel_id, e.printable_data())),
            Some(Message::Ping(_)) => {}
            // Gossip: the node's timestamp filter and sync query.
            Some(Message::GossipTimestampFilter(_) | Message::QueryChannelRange(_)) => {}
            other => panic!("expected accept_channel or error, got {other:?}"),
        }
    }
}

async fn peer(node: &Embedded, seed: u8) -> RawPeer {
    let addr = node.node.listen_addr().unwrap();
    let mut p = RawPeer::try_connect(addr, node.node.node_id(), seed)
        .await
        .unwrap();
    p.init().await;
    p
}

/// Issue 11 (10): one peer's unfunded channels are bounded (4, as LDK), the
/// opens in progress overall too (64); refused ones get an `error` for their
/// temporary_channel_id and nothing is kept; another peer is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfunded_channels_are_bounded_per_peer_and_overall() {
    let dir = tempfile::tempdir().unwrap();
    let node = channel_node(dir.path()).await;
    let mut flood = peer(&node, 60).await;
    for temp in 1..=30u8 {
        flood.send(open(60, temp)).await;
    }
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for _ in 1..=30 {
        match answer(&mut flood).await {
            Ok(t) => accepted.push(t),
            Err((t, why)) => refused.push((t, why)),
        }
    }
    assert_eq!(
        accepted,
        (1..=4).map(|t| ChannelId([t; 32])).collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 26);
    assert_eq!(refused[0].0, ChannelId([5; 32]));
    assert!(refused.iter().all(|(_, why)| why
        == "too many unfunded channels from you (4): open another once one's funding confirms"));
    // The connection stays up.
    flood.send(Ping::new(4, 0)).await;
    assert!(matches!(flood.recv().await, Some(Message::Pong(_))));

    // 16 more peers with 4 opens each: the 65th open in progress overall is
    // refused, whoever sends it.
    let mut peers = Vec::new();
    for seed in 61..=76u8 {
        let mut p = peer(&node, seed).await;
        for temp in 1..=4u8 {
            p.send(open(seed, temp)).await;
        }
        peers.push(p);
    }
    let mut answers = Vec::new();
    for p in &mut peers {
        for _ in 0..4 {
            answers.push(answer(p).await.map_err(|(_, why)| why));
        }
    }
    let ok = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(ok, 60, "4 of the first peer's and 60 more make 64");
    assert!(answers
        .iter()
        .filter_map(|a| a.as_ref().err())
        .all(|why| why == "too many unfunded channels in all (64): try again later"));
    assert_eq!(node.node.handle().channels().await.unwrap().len(), 0);
}

/// Issue 11 (10): an `open_channel` whose `funding_pubkey` is not a valid
/// point gets an `error` for its temporary_channel_id (BOLT 2: "MUST fail
/// the channel"), not a warning and a disconnection; the same peer's valid
/// open then goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_channel_with_an_invalid_key_fails_that_channel_only() {
    let dir = tempfile::tempdir().unwrap();
    let node = channel_node(dir.path()).await;
    let mut p = peer(&node, 90).await;
    let mut bytes = Message::OpenChannel(open(90, 7)).encode().unwrap();
    // type, chain_hash, temporary_channel_id, six u64, feerate_per_kw,
    // to_self_delay, max_accepted_htlcs: then funding_pubkey.
    let at = 2 + 32 + 32 + 6 * 8 + 4 + 2 + 2;
    assert!(matches!(bytes[at], 2 | 3), "a compressed point starts here");
    bytes[at] = 0x05;
    p.send_raw_message(&bytes).await;
    assert_eq!(
        answer(&mut p).await,
        Err((
            ChannelId([7; 32]),
            "open_channel has a key that is not a valid compressed secp256k1 point".into()
        ))
    );
    p.send(open(90, 8)).await;
    assert_eq!(answer(&mut p).await, Ok(ChannelId([8; 32])));
}
