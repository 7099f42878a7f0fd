//! Gossip initial sync between two whole Beongae nodes over TCP (issue 13):
//! node A starts with the mainnet snapshot's topology as signed gossip in its
//! store; node B, empty, connects and syncs it — A answers B's
//! `gossip_timestamp_filter` and `query_channel_range`, B checks every
//! signature and every funding output through its chain source, stores and
//! indexes each message — timed from the connect until B's graph holds
//! every channel, update and node announcement A has.
//!
//! Both nodes are the real runtime (SQLite store, wallet, chain polling).
//! Their chain is an in-memory one serving the regtest genesis and blocks
//! whose single transaction holds 1,000 channels' funding outputs (the
//! snapshot's short channel ids renumbered to them: block 1 + i / 1,000,
//! transaction 0, output i % 1,000), so that B's lookups go through the
//! same path as on a real chain (the block's transaction ids, then the
//! unspent output).
//!
//! Then LDK 0.2.7, the baseline, in the same run: two LDK nodes
//! (`PeerManager` over lightning-net-tokio, `P2PGossipSync` with the same
//! funding outputs), A with the same messages applied to its graph, B
//! syncing them from A after its `gossip_timestamp_filter` (LDK's full sync).
//!
//! `cargo bench -p beongae-graph-bench --bench sync`. Goal: at most 15 s,
//! memory printed.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beongae_chain::{ChainError, ChainSource, FeeratePerKw};
use beongae_node::core::channels::gossip::import_records;
use beongae_node::embedded::{self, Embedded, EmbeddedConfig, STORE_FILE};
use beongae_store::{Batch, SqliteStore, Store};
use beongae_wallet::Seed;
use beongae_wire::{ChainHash, ShortChannelId};
use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::{
    absolute, transaction, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness,
};
use common::signed::build_gossip;
use common::{live_bytes, mib, peak_rss};

/// The genesis block and one block holding the funding outputs.
struct BenchChain {
    blocks: Vec<Block>,
    utxos: HashMap<OutPoint, TxOut>,
}

impl ChainSource for BenchChain {
    fn tip(&self) -> Result<(u32, BlockHash), ChainError> {
        let h = self.blocks.len() as u32 - 1;
        Ok((h, self.blocks[h as usize].block_hash()))
    }
    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        Ok(self.blocks.get(height as usize).map(Block::block_hash))
    }
    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        Ok(self
            .blocks
            .iter()
            .find(|b| b.block_hash() == *hash)
            .cloned())
    }
    fn broadcast(&self, _tx: &Transaction) -> Result<Txid, ChainError> {
        Err(ChainError::Rejected(
            "the bench chain takes no transactions".into(),
        ))
    }
    fn fee_estimate(&self, _target_blocks: u16) -> Result<FeeratePerKw, ChainError> {
        Ok(FeeratePerKw(253))
    }
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, ChainError> {
        Ok(self.utxos.get(outpoint).cloned())
    }
}

fn config(dir: &std::path::Path) -> EmbeddedConfig {
    let mut cfg = EmbeddedConfig::new(dir, bitcoin::Network::Regtest);
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg
}

fn main() {
    let Some(path) = common::snapshot_or_skip("sync") else {
        return;
    };
    let snapshot = beongae_graph::snapshot::load(&path).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    const PER_BLOCK: u64 = 1_000;
    let scid = |i: u64| {
        ShortChannelId::new(1 + (i / PER_BLOCK) as u32, 0, (i % PER_BLOCK) as u16).unwrap()
    };
    let t = Instant::now();
    let gossip = build_gossip(&snapshot, now, ChainHash::REGTEST, |i, _| scid(i));
    drop(snapshot);
    println!(
        "signed {} channel_announcement, {} channel_update, {} node_announcement in {:.1} s (not counted)",
        gossip.announcements.len(),
        gossip.updates.len(),
        gossip.nodes.len(),
        t.elapsed().as_secs_f64()
    );

    // The chain: genesis, then the blocks with the funding transactions.
    let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
    let n = gossip.announcements.len() as u64;
    let mut blocks = vec![genesis];
    let mut utxos = HashMap::new();
    let mut outpoints = Vec::new();
    for first in (0..n).step_by(PER_BLOCK as usize) {
        let height = blocks.len() as u32;
        let funding = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::from_bytes(height.to_le_bytes().to_vec()),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: (first..n.min(first + PER_BLOCK))
                .map(|i| gossip.utxos[&scid(i).to_u64()].clone())
                .collect(),
        };
        let txid = funding.compute_txid();
        for (k, o) in funding.output.iter().enumerate() {
            utxos.insert(OutPoint::new(txid, k as u32), o.clone());
            outpoints.push(OutPoint::new(txid, k as u32));
        }
        let prev = blocks.last().unwrap().block_hash();
        blocks.push(Block {
            header: Header {
                version: BlockVersion::TWO,
                prev_blockhash: prev,
                merkle_root: TxMerkleNode::from_raw_hash(txid.to_raw_hash()),
                time: now,
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: height,
            },
            txdata: vec![funding],
        });
    }
    let chain: Arc<dyn ChainSource> = Arc::new(BenchChain { blocks, utxos });

    // Node A's store: the whole graph, as if it had learned it.
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let channels: Vec<_> = gossip
        .announcements
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let out = &gossip.utxos[&scid(i as u64).to_u64()];
            (a.clone(), outpoints[i], out.value)
        })
        .collect();
    let mut batch = Batch::new();
    for (k, v) in import_records(&channels, &gossip.updates, &gossip.nodes) {
        batch.put(beongae_node::core::channels::gossip::NS_GOSSIP, k, v);
    }
    let store = SqliteStore::open(&dir_a.path().join(STORE_FILE)).unwrap();
    store.commit(batch).unwrap();
    drop(store);
    drop(channels);
    let wire_bytes: usize = gossip
        .announcements
        .iter()
        .map(|m| beongae_wire::WireMessage::encode(m).unwrap().len())
        .chain(
            gossip
                .updates
                .iter()
                .map(|m| beongae_wire::WireMessage::encode(m).unwrap().len()),
        )
        .chain(
            gossip
                .nodes
                .iter()
                .map(|m| beongae_wire::WireMessage::encode(m).unwrap().len()),
        )
        .sum();
    let messages = gossip.announcements.len() + gossip.updates.len() + gossip.nodes.len();
    let ldk_input = ldk::Input::from(&gossip);
    drop(gossip);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let t = Instant::now();
        let a: Embedded = embedded::start(&Seed::from_entropy([1; 32]), chain.clone(), config(dir_a.path()))
            .await
            .unwrap();
        let target = a.node.handle().graph_counts().await.unwrap();
        println!(
            "node A started with {} channels, {} updates, {} node announcements in its store ({:.1} s, not counted)",
            target.channels,
            target.updates,
            target.nodes,
            t.elapsed().as_secs_f64()
        );
        let b: Embedded = embedded::start(&Seed::from_entropy([2; 32]), chain, config(dir_b.path()))
            .await
            .unwrap();
        let live = live_bytes();
        let t = Instant::now();
        b.node
            .handle()
            .connect(a.node.node_id(), a.node.listen_addr().unwrap())
            .await
            .unwrap();
        let mut last = Default::default();
        let (mut last_change, mut last_print) = (Instant::now(), Instant::now());
        loop {
            let c = b.node.handle().graph_counts().await.unwrap();
            if c == target {
                break;
            }
            if t.elapsed() > Duration::from_secs(600) {
                panic!("B's graph stopped at {c:?} of {target:?}");
            }
            if c != last {
                last = c;
                last_change = Instant::now();
            }
            if last_print.elapsed() >= Duration::from_secs(2) {
                last_print = Instant::now();
                println!("  {:>5.1} s: B holds {c:?}", t.elapsed().as_secs_f64());
            }
            if last_change.elapsed() > Duration::from_secs(60) {
                panic!("B's graph stopped at {c:?} of {target:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = t.elapsed();
        let heap = live_bytes().saturating_sub(live);
        println!();
        println!("== initial sync over TCP, node A -> node B (both in this process)");
        println!(
            "  {messages} messages ({}) synced in {:.2} s: {:.0} messages/s",
            mib(wire_bytes),
            took.as_secs_f64(),
            messages as f64 / took.as_secs_f64()
        );
        println!(
            "  B holds {} channels, {} updates, {} node announcements (all of A's)",
            last.channels.max(target.channels),
            target.updates,
            target.nodes
        );
        println!("  heap grown during the sync (both nodes): {}", mib(heap));
        if let Some(rss) = peak_rss() {
            println!("  process peak RSS (VmHWM, both nodes and the signed gossip): {}", mib(rss));
        }
        println!(
            "  goal: at most 15 s: {}",
            if took <= Duration::from_secs(15) {
                "met"
            } else {
                "NOT met"
            }
        );
        drop(a);
        drop(b);
        println!();
        println!("== LDK 0.2.7, the same gossip, two nodes in this process over TCP");
        let ldk = ldk::sync(ldk_input).await;
        println!(
            "  {} channels, {} updates, {} node announcements synced in {:.2} s: {:.0} messages/s",
            ldk.channels,
            ldk.updates,
            ldk.nodes,
            ldk.took.as_secs_f64(),
            messages as f64 / ldk.took.as_secs_f64()
        );
        println!(
            "  ours {:.2} s, ldk {:.2} s: ldk/ours {:.2}x",
            took.as_secs_f64(),
            ldk.took.as_secs_f64(),
            ldk.took.as_secs_f64() / took.as_secs_f64()
        );
    });
}

/// LDK's side of the benchmark.
mod ldk {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use beongae_wire::WireMessage;
    use bitcoin::TxOut;
    use lightning::ln::msgs::{self, RoutingMessageHandler};
    use lightning::ln::peer_handler::{
        ErroringMessageHandler, IgnoringMessageHandler, PeerManager,
    };
    use lightning::routing::gossip::{NetworkGraph, P2PGossipSync};
    use lightning::sign::{KeysManager, NodeSigner, Recipient};
    use lightning::util::ser::LengthReadable;
    use lightning_net_tokio::SocketDescriptor;

    use super::common::signed::{Gossip, Utxos};
    use super::common::NoLogger;

    type Graph = NetworkGraph<Arc<NoLogger>>;
    type Sync = P2PGossipSync<Arc<Graph>, Arc<Utxos<'static>>, Arc<NoLogger>>;
    type Pm = PeerManager<
        SocketDescriptor,
        ErroringMessageHandler,
        Arc<Sync>,
        IgnoringMessageHandler,
        Arc<NoLogger>,
        IgnoringMessageHandler,
        Arc<KeysManager>,
        IgnoringMessageHandler,
    >;

    /// The messages as LDK reads them (our encoding decoded by LDK).
    pub struct Input {
        announcements: Vec<msgs::ChannelAnnouncement>,
        updates: Vec<msgs::ChannelUpdate>,
        nodes: Vec<msgs::NodeAnnouncement>,
        utxos: HashMap<u64, TxOut>,
    }

    fn decode<T: LengthReadable, M: WireMessage>(msgs: &[M]) -> Vec<T> {
        msgs.iter()
            .map(|m| {
                let b = m.encode().unwrap();
                T::read_from_fixed_length_buffer(&mut &b[2..]).unwrap()
            })
            .collect()
    }

    impl From<&Gossip> for Input {
        fn from(g: &Gossip) -> Input {
            Input {
                announcements: decode(&g.announcements),
                updates: decode(&g.updates),
                nodes: decode(&g.nodes),
                utxos: g.utxos.clone(),
            }
        }
    }

    /// What LDK's node B ended with, and when.
    pub struct Synced {
        pub channels: usize,
        pub updates: usize,
        pub nodes: usize,
        pub took: Duration,
    }

    fn node(
        seed: u8,
        utxos: &Arc<Utxos<'static>>,
    ) -> (Arc<Graph>, Arc<Pm>, bitcoin::secp256k1::PublicKey) {
        let logger = Arc::new(NoLogger);
        let graph = Arc::new(NetworkGraph::new(bitcoin::Network::Regtest, logger.clone()));
        let sync = Arc::new(P2PGossipSync::new(
            graph.clone(),
            Some(utxos.clone()),
            logger.clone(),
        ));
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let keys = Arc::new(KeysManager::new(
            &[seed; 32],
            t.as_secs(),
            t.subsec_nanos(),
            true,
        ));
        let id = keys.get_node_id(Recipient::Node).unwrap();
        let pm = Arc::new(PeerManager::new_routing_only(
            sync,
            t.as_secs() as u32,
            &[seed.wrapping_add(100); 32],
            logger,
            keys,
        ));
        (graph, pm, id)
    }

    fn counts(g: &Graph) -> (usize, usize, usize) {
        let ro = g.read_only();
        let channels = ro.channels().len();
        let updates = ro
            .channels()
            .unordered_iter()
            .map(|(_, c)| usize::from(c.one_to_two.is_some()) + usize::from(c.two_to_one.is_some()))
            .sum();
        let nodes = ro
            .nodes()
            .unordered_iter()
            .filter(|(_, n)| n.announcement_info.is_some())
            .count();
        (channels, updates, nodes)
    }

    /// A holds the gossip; B connects and syncs it; timed from the connect
    /// until B holds all of A's.
    pub async fn sync(input: Input) -> Synced {
        // Kept for the process's life: LDK's handlers hold the lookup.
        let utxos = Arc::new(Utxos(Box::leak(Box::new(input.utxos))));
        let (graph_a, pm_a, a_id) = node(1, &utxos);
        let handler = P2PGossipSync::new(graph_a.clone(), Some(utxos.clone()), Arc::new(NoLogger));
        for m in &input.announcements {
            handler.handle_channel_announcement(None, m).unwrap();
        }
        for m in &input.updates {
            handler.handle_channel_update(None, m).unwrap();
        }
        for m in &input.nodes {
            handler.handle_node_announcement(None, m).unwrap();
        }
        let target = counts(&graph_a);
        let (graph_b, pm_b, _) = node(2, &utxos);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = pm_a.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let pm = accept.clone();
                tokio::spawn(lightning_net_tokio::setup_inbound(
                    pm,
                    stream.into_std().unwrap(),
                ));
            }
        });
        let (a, b) = (pm_a.clone(), pm_b.clone());
        let ticker = tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                a.process_events();
                b.process_events();
                n += 1;
                if n.is_multiple_of(100) {
                    a.timer_tick_occurred();
                    b.timer_tick_occurred();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let t = Instant::now();
        let conn = lightning_net_tokio::connect_outbound(pm_b.clone(), a_id, addr)
            .await
            .expect("LDK B connects to A");
        tokio::spawn(conn);
        let mut last = (0, 0, 0);
        let mut last_change = Instant::now();
        loop {
            let c = counts(&graph_b);
            if c == target {
                break;
            }
            if c != last {
                last = c;
                last_change = Instant::now();
            }
            if last_change.elapsed() > Duration::from_secs(60) {
                println!("  LDK's B stopped at {c:?} of {target:?}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let took = t.elapsed();
        ticker.abort();
        let (channels, updates, nodes) = counts(&graph_b);
        Synced {
            channels,
            updates,
            nodes,
            took,
        }
    }
}
