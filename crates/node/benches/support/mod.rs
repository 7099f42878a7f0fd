//! What the node benches share: scratch directories on the build disk,
//! embedded nodes on a devnet, mining, and paying invoices N at a time.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beongae_chain::devnet::Devnet;
use beongae_chain::ChainSource;
use beongae_node::core::ChannelSettings;
use beongae_node::embedded::{self, Embedded, EmbeddedConfig};
use beongae_wallet::Seed;
use bitcoin::ScriptBuf;

/// A scratch directory removed when dropped.
pub struct Scratch(pub std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh scratch directory next to the build output: the same disk as a
/// node's data directory usually is (not a tmpfs).
pub fn scratch(name: &str) -> Scratch {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/bench-scratch")
        .join(format!("{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// A node with seed `[seed; 32]` in `dir` on `devnet`, listening on
/// loopback, its store SQLite in `dir`.
pub async fn start(devnet: &Arc<Mutex<Devnet>>, dir: &std::path::Path, seed: u8) -> Embedded {
    start_with(devnet, dir, seed, ChannelSettings::default(), None).await
}

/// [`start`] with `settings`, and the store at the PostgreSQL URL `store`
/// when there is one.
pub async fn start_with(
    devnet: &Arc<Mutex<Devnet>>,
    dir: &std::path::Path,
    seed: u8,
    settings: ChannelSettings,
    store: Option<String>,
) -> Embedded {
    let mut cfg = EmbeddedConfig::new(dir, bitcoin::Network::Regtest);
    cfg.settings = settings;
    cfg.store = store;
    cfg.listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.chain_poll = Duration::from_millis(20);
    let chain: Arc<dyn ChainSource> = devnet.clone();
    embedded::start(&Seed::from_entropy([seed; 32]), chain, cfg)
        .await
        .unwrap()
}

/// `n` blocks paying `script`.
pub fn mine(devnet: &Mutex<Devnet>, n: u32, script: &ScriptBuf) {
    let mut d = devnet.lock().unwrap();
    let time = 1_700_000_000 + d.height() * 600;
    d.mine(n, script, time);
}

/// Pays `invoices` from `payer`, `in_flight` at a time; payments per second.
pub async fn pay_all(payer: &Embedded, invoices: Vec<String>, in_flight: usize) -> f64 {
    let count = invoices.len();
    let start = Instant::now();
    let queue = Arc::new(Mutex::new(invoices));
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let (h, q) = (payer.node.handle(), queue.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some(inv) = q.lock().unwrap().pop() else {
                    return;
                };
                h.pay(&inv, None).await.unwrap();
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// Nodes `[1; 32]` and `[2; 32]` in `dir/a` and `dir/b` on a new devnet
/// (their stores at the PostgreSQL URLs `stores`, or SQLite), A's wallet
/// funded and a channel of 16,000,000 sat from A to B open and active.
pub async fn two_nodes_with_a_channel(
    dir: &std::path::Path,
    stores: (Option<String>, Option<String>),
) -> (
    Arc<Mutex<Devnet>>,
    Embedded,
    Embedded,
    beongae_wire::ChannelId,
) {
    use beongae_node::core::ChannelState;
    let devnet = Arc::new(Mutex::new(Devnet::new()));
    let settings = ChannelSettings::default();
    let a = start_with(&devnet, &dir.join("a"), 1, settings.clone(), stores.0).await;
    let b = start_with(&devnet, &dir.join("b"), 2, settings, stores.1).await;
    mine(&devnet, 101, &a.onchain.new_address().script_pubkey());
    a.node
        .handle()
        .connect(b.node.node_id(), b.node.listen_addr().unwrap())
        .await
        .unwrap();
    let (id, _) = a
        .node
        .handle()
        .open_channel(
            b.node.node_id(),
            bitcoin::Amount::from_sat(16_000_000),
            beongae_wire::Msat::ZERO,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    mine(&devnet, 3, &ScriptBuf::new_op_return([0u8; 0]));
    loop {
        let c = a.node.handle().channels().await.unwrap();
        if c.iter()
            .any(|c| c.channel_id == id && c.state == ChannelState::Normal && c.active)
        {
            return (devnet, a, b, id);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads a copy of the SQLite store at `store`, which its node holds
/// locked, with its write-ahead log.
pub fn read_copy<T>(
    store: &std::path::Path,
    read: impl FnOnce(&beongae_store::SqliteStore) -> T,
) -> T {
    let copy = store.with_extension("copy");
    std::fs::copy(store, &copy).unwrap();
    let wal = |p: &std::path::Path| {
        let mut s = p.as_os_str().to_owned();
        s.push("-wal");
        std::path::PathBuf::from(s)
    };
    if wal(store).exists() {
        std::fs::copy(wal(store), wal(&copy)).unwrap();
    }
    let opened = beongae_store::SqliteStore::open(&copy).unwrap();
    let out = read(&opened);
    drop(opened);
    let _ = std::fs::remove_file(wal(&copy));
    let _ = std::fs::remove_file(&copy);
    out
}
