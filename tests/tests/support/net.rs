//! Embedded nodes' data directories (three, or more) on one in-process devnet.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use beongae_chain::devnet::Devnet;
use beongae_chain::ChainSource;
use beongae_node::core::ChannelSettings;
use beongae_node::embedded::{self, Embedded, EmbeddedConfig};
use beongae_wallet::Seed;
use bitcoin::ScriptBuf;

/// The devnet and one data directory per node.
pub struct Net {
    /// The chain.
    pub devnet: Arc<Mutex<Devnet>>,
    /// Each node's data directory.
    pub dirs: Vec<tempfile::TempDir>,
}

impl Net {
    /// A fresh devnet and three empty data directories.
    pub fn new() -> Net {
        Net::with_nodes(3)
    }

    /// A fresh devnet and `n` empty data directories.
    pub fn with_nodes(n: usize) -> Net {
        Net {
            devnet: Arc::new(Mutex::new(Devnet::new())),
            dirs: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
        }
    }

    /// `n` blocks whose coinbases nobody can spend.
    pub fn mine(&self, n: u32) {
        self.mine_to(n, &ScriptBuf::new_op_return([0u8; 0]));
    }

    /// `n` blocks paying their coinbases to `script`.
    pub fn mine_to(&self, n: u32, script: &ScriptBuf) {
        let mut d = self.devnet.lock().unwrap();
        let time = 1_700_000_000 + d.height() * 600;
        d.mine(n, script, time);
    }

    /// Node `who`'s seed.
    pub fn seed(who: usize) -> Seed {
        Seed::from_entropy([who as u8 + 1; 32])
    }

    /// Starts node `who` from its data directory.
    pub async fn start(&self, who: usize) -> Embedded {
        self.start_with(who, ChannelSettings::default()).await
    }

    /// Starts node `who` from its data directory with `settings`.
    pub async fn start_with(&self, who: usize, settings: ChannelSettings) -> Embedded {
        let mut cfg = EmbeddedConfig::new(self.dirs[who].path(), bitcoin::Network::Regtest);
        // The suite's backend (`.ci/run` runs it on SQLite and on PostgreSQL).
        cfg.store = beongae_store::testing::node_store(self.dirs[who].path());
        cfg.settings = settings;
        cfg.listen = Some("127.0.0.1:0".parse().unwrap());
        cfg.chain_poll = Duration::from_millis(20);
        let chain: Arc<dyn ChainSource> = self.devnet.clone();
        embedded::start(&Net::seed(who), chain, cfg).await.unwrap()
    }
}

/// The store of the stopped node whose data directory is `datadir`, as the
/// suite gave it ([`beongae_store::testing::node_store`]).
pub fn open_store(datadir: &std::path::Path) -> Box<dyn beongae_store::Store> {
    match beongae_store::testing::node_store(datadir) {
        None => {
            Box::new(beongae_store::SqliteStore::open(&datadir.join(embedded::STORE_FILE)).unwrap())
        }
        Some(url) => Box::new(beongae_store::PostgresStore::connect(&url).unwrap()),
    }
}

/// A copy of the stopped node's store at `datadir`, taken now (a backup):
/// SQLite's file copied into the returned directory, or a fresh PostgreSQL
/// database with every key.
pub fn backup(datadir: &std::path::Path) -> (tempfile::TempDir, Box<dyn beongae_store::Store>) {
    let dir = tempfile::tempdir().unwrap();
    let copy: Box<dyn beongae_store::Store> = match beongae_store::testing::node_store(datadir) {
        None => {
            let file = dir.path().join(embedded::STORE_FILE);
            std::fs::copy(datadir.join(embedded::STORE_FILE), &file).unwrap();
            Box::new(beongae_store::SqliteStore::open(&file).unwrap())
        }
        Some(_) => {
            let url = beongae_store::testing::fresh_database("backup");
            let to = beongae_store::PostgresStore::connect(&url).unwrap();
            to.take_lease("backup", beongae_store::LEASE_TTL, &mut |_| {})
                .unwrap();
            beongae_store::copy_store(open_store(datadir).as_ref(), &to).unwrap();
            Box::new(to)
        }
    };
    (dir, copy)
}

/// Waits until the devnet's mempool holds a transaction spending an output
/// of `parent`, and returns it.
pub async fn spender_of(devnet: &Mutex<Devnet>, parent: bitcoin::Txid) -> bitcoin::Transaction {
    for _ in 0..1000 {
        if let Some(tx) = devnet.lock().unwrap().mempool_spender_of(parent) {
            return tx;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing spends {parent}");
}

/// A node's id.
pub fn id_of(e: &Embedded) -> beongae_wire::NodeId {
    e.node.node_id()
}

/// Channel `id` as node `e` sees it now.
pub async fn channel(
    e: &Embedded,
    id: beongae_wire::ChannelId,
) -> beongae_node::core::ChannelSummary {
    e.node
        .handle()
        .channels()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.channel_id == id)
        .unwrap()
}

/// Waits (10 s) until node `e` sees channel `id` as `what` says.
pub async fn wait_for(
    e: &Embedded,
    id: beongae_wire::ChannelId,
    what: impl Fn(&beongae_node::core::ChannelSummary) -> bool,
) {
    for _ in 0..500 {
        if what(&channel(e, id).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("channel {id}: {:?}", channel(e, id).await);
}
