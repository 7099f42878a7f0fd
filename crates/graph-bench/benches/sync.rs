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
    absolute, transaction, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf,
    Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness,
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
        Ok(self.blocks.iter().find(|b| b.block_hash() == *hash).cloned())
    }
    fn broadcast(&self, _tx: &Transaction) -> Result<Txid, ChainError> {
        Err(ChainError::Rejected("the bench chain takes no transactions".into()))
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
    let path = common::snapshot_path();
    if !path.exists() {
        println!(
            "graph snapshot {} not found (set BEONGAE_GRAPH); skipping the sync benchmark",
            path.display()
        );
        return;
    }
    println!("snapshot: {}", path.display());
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
    });
}
