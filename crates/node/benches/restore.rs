//! Restart time with 10,000 channels, on SQLite and on PostgreSQL (issue
//! 15's goal: at most 2 s).
//!
//! The channels are real: node A opens 10,000 channels to node B, both
//! driven through their deterministic cores (`NodeCore::handle`, the same
//! inputs and outputs the runtime performs), with real keys, signatures and
//! funding transactions on an in-process devnet whose blocks both cores
//! see. B takes at most four unconfirmed channels from one peer, so A funds
//! four at a time, in one transaction per block. Every batch A's core asks
//! to persist is applied in order to a map, which is then written to a
//! fresh SQLite store and to a fresh PostgreSQL database (the tests'
//! server, `beongae_store::testing`): what A's store would hold had it run
//! as a daemon.
//!
//! Measured, on each backend: `embedded::start` of A from that store (the
//! on-chain wallet opened and synced, the store read, every channel decoded
//! and the core rebuilt, the chain followed from where the store left off)
//! until the node answers with its 10,000 channels open. The baseline, in
//! the same process: reading every key of the store once (`Store::list` of
//! each namespace), the least a restore can do.
//!
//! Run: `cargo bench -p beongae-node --bench restore`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;
use support::scratch;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beongae_chain::devnet::Devnet;
use beongae_chain::ChainSource;
use beongae_node::core::{
    ChannelSettings, ChannelState, Command, CommandId, CoreConfig, Direction, Input, NodeCore,
    Output, PeerId, Reply, StoredState,
};
use beongae_node::embedded::{self, EmbeddedConfig};
use beongae_store::{testing, Batch, PostgresStore, SqliteStore, Store};
use beongae_wallet::{KeyManager, Seed};
use beongae_wire::{ChainHash, Msat, NodeId};
use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

/// How many channels (`BEONGAE_BENCH_CHANNELS`, 10,000 unless set).
fn channels() -> usize {
    std::env::var("BEONGAE_BENCH_CHANNELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
/// B's limit of unconfirmed channels from one peer.
const PER_BLOCK: usize = 4;
const FUNDING: Amount = Amount::from_sat(100_000);

/// What a store holds: (namespace, key) -> value.
type Map = beongae_store::MemoryMap;

fn seed(b: u8) -> Seed {
    Seed::from_entropy([b; 32])
}

fn keys(b: u8) -> KeyManager {
    KeyManager::new(
        seed(b).master_key(bitcoin::NetworkKind::Test),
        bitcoin::Network::Regtest,
    )
}

fn node_id(k: &KeyManager) -> NodeId {
    NodeId::from_pubkey(bitcoin::secp256k1::PublicKey::from_secret_key(
        &Secp256k1::signing_only(),
        &k.node_secret(),
    ))
}

/// The key of the devnet coins that fund the channels (P2WPKH).
fn coin_key() -> SecretKey {
    SecretKey::from_slice(&[0x77; 32]).unwrap()
}

fn coin_script() -> ScriptBuf {
    let pk = bitcoin::CompressedPublicKey(bitcoin::secp256k1::PublicKey::from_secret_key(
        &Secp256k1::signing_only(),
        &coin_key(),
    ));
    ScriptBuf::new_p2wpkh(&pk.wpubkey_hash())
}

/// Spends `coin` (paying [`coin_script`]) to `outputs` and the change.
fn funding_tx(coin: (OutPoint, Amount), outputs: Vec<TxOut>) -> Transaction {
    use bitcoin::sighash::{EcdsaSighashType, SighashCache};
    let spent: Amount = outputs.iter().map(|o| o.value).sum();
    let mut output = outputs;
    output.push(TxOut {
        value: coin.1 - spent - Amount::from_sat(2_000),
        script_pubkey: coin_script(),
    });
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: coin.0,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output,
    };
    let secp = Secp256k1::new();
    let sighash = SighashCache::new(&tx)
        .p2wpkh_signature_hash(0, &coin_script(), coin.1, EcdsaSighashType::All)
        .unwrap();
    let signature = secp.sign_ecdsa(
        &bitcoin::secp256k1::Message::from_digest(sighash.to_byte_array()),
        &coin_key(),
    );
    let pk = bitcoin::secp256k1::PublicKey::from_secret_key(&secp, &coin_key());
    tx.input[0].witness = Witness::p2wpkh(
        &bitcoin::ecdsa::Signature {
            signature,
            sighash_type: EcdsaSighashType::All,
        },
        &pk,
    );
    tx
}

/// Two cores connected in memory, A's persisted batches applied to a map.
struct Pair {
    a: NodeCore,
    b: NodeCore,
    ids: (NodeId, NodeId),
    now: Duration,
    store_a: Map,
    /// `BuildFunding` requests of A not yet answered: (node, temporary id,
    /// script, amount).
    to_fund: Vec<(NodeId, beongae_wire::ChannelId, ScriptBuf, Amount)>,
    replies: Vec<Reply>,
}

const PA: PeerId = PeerId(1);
const PB: PeerId = PeerId(2);

impl Pair {
    fn new(height: u32) -> Pair {
        let (ka, kb) = (keys(1), keys(2));
        let ids = (node_id(&ka), node_id(&kb));
        let settings = ChannelSettings {
            close_script: Some(ScriptBuf::new_p2wpkh(
                &bitcoin::WPubkeyHash::from_byte_array([9; 20]),
            )),
            ..ChannelSettings::default()
        };
        let core = |id, k| {
            NodeCore::with_channels(
                id,
                CoreConfig::new(ChainHash::REGTEST),
                k,
                settings.clone(),
                height,
                StoredState::default(),
            )
            .unwrap()
        };
        let mut p = Pair {
            a: core(ids.0, ka),
            b: core(ids.1, kb),
            ids,
            now: Duration::from_secs(1_700_000_000),
            store_a: Map::new(),
            to_fund: Vec::new(),
            replies: Vec::new(),
        };
        let (ida, idb) = p.ids;
        p.run(vec![
            (
                true,
                Input::PeerConnected {
                    peer: PA,
                    node_id: idb,
                    direction: Direction::Outbound,
                    remote_addr: None,
                },
            ),
            (
                false,
                Input::PeerConnected {
                    peer: PB,
                    node_id: ida,
                    direction: Direction::Inbound,
                    remote_addr: None,
                },
            ),
        ]);
        p
    }

    /// Feeds `start` (true: to A) and everything it leads to.
    fn run(&mut self, start: Vec<(bool, Input)>) {
        let mut queue: VecDeque<(bool, Input)> = start.into();
        while let Some((to_a, input)) = queue.pop_front() {
            let core = if to_a { &mut self.a } else { &mut self.b };
            for o in core.handle(self.now, input) {
                match o {
                    Output::Send { msg, .. } => queue.push_back((
                        !to_a,
                        Input::PeerMessage {
                            peer: if to_a { PB } else { PA },
                            bytes: msg.encode().unwrap(),
                        },
                    )),
                    Output::Persist(batch) if to_a => batch.apply_to(&mut self.store_a),
                    Output::BuildFunding {
                        node_id,
                        temporary_channel_id,
                        script_pubkey,
                        amount,
                        ..
                    } if to_a => {
                        self.to_fund
                            .push((node_id, temporary_channel_id, script_pubkey, amount))
                    }
                    Output::Reply { reply, .. } if to_a => self.replies.push(reply),
                    _ => {}
                }
            }
        }
    }

    /// A block to both cores.
    fn block(&mut self, devnet: &Devnet, height: u32) {
        let block = Arc::new(devnet.block_at(height).unwrap().clone());
        self.now += Duration::from_secs(600);
        self.run(vec![
            (
                true,
                Input::BlockConnected {
                    height,
                    block: block.clone(),
                },
            ),
            (false, Input::BlockConnected { height, block }),
        ]);
    }
}

/// A's store after it opened [`channels`] channels to B, all open and
/// three blocks deep, and the devnet they are on.
fn build() -> (Map, Devnet) {
    let mut devnet = Devnet::new();
    let time = |d: &Devnet| 1_700_000_000 + d.height() * 600;
    let t = time(&devnet);
    devnet.mine(1, &coin_script(), t);
    let t = time(&devnet);
    devnet.mine(100, &ScriptBuf::new_op_return([0u8; 0]), t);
    let (outpoint, coin) = devnet.utxos_for(&coin_script())[0].clone();
    let mut coin = (outpoint, coin.txout.value);
    let mut pair = Pair::new(devnet.height());
    let mut opened = 0;
    while opened < channels() {
        let n = PER_BLOCK.min(channels() - opened);
        for i in 0..n {
            let id = CommandId((opened + i) as u64);
            pair.run(vec![(
                true,
                Input::Command {
                    id,
                    command: Command::OpenChannel {
                        node_id: pair.ids.1,
                        funding: FUNDING,
                        push: Msat::ZERO,
                        announce: false,
                    },
                },
            )]);
        }
        // One transaction funds the four.
        let asks = std::mem::take(&mut pair.to_fund);
        assert_eq!(asks.len(), n, "{:?}", pair.replies.last());
        let outputs = asks
            .iter()
            .map(|(_, _, script, amount)| TxOut {
                value: *amount,
                script_pubkey: script.clone(),
            })
            .collect();
        let tx = funding_tx(coin, outputs);
        coin = (
            OutPoint {
                txid: tx.compute_txid(),
                vout: n as u32,
            },
            tx.output[n].value,
        );
        let built = asks
            .into_iter()
            .map(|(node_id, temporary_channel_id, _, _)| {
                (
                    true,
                    Input::FundingBuilt {
                        node_id,
                        temporary_channel_id,
                        result: Ok(tx.clone()),
                    },
                )
            })
            .collect();
        pair.run(built);
        let replies = std::mem::take(&mut pair.replies);
        assert!(
            replies
                .iter()
                .filter(|r| matches!(r, Reply::ChannelOpened { .. }))
                .count()
                == n,
            "{replies:?}"
        );
        devnet.accept(tx).unwrap();
        let t = time(&devnet);
        devnet.mine(1, &ScriptBuf::new_op_return([0u8; 0]), t);
        let h = devnet.height();
        pair.block(&devnet, h);
        opened += n;
        if opened % 1_000 == 0 {
            eprintln!("{opened} channels funded");
        }
    }
    // Three deep: every channel is open.
    for _ in 0..3 {
        let t = time(&devnet);
        devnet.mine(1, &ScriptBuf::new_op_return([0u8; 0]), t);
        let h = devnet.height();
        pair.block(&devnet, h);
    }
    let normal = pair
        .a
        .channels()
        .iter()
        .filter(|c| c.state == ChannelState::Normal)
        .count();
    assert_eq!(normal, channels());
    (pair.store_a, devnet)
}

/// Writes `map` into `store`, a thousand keys per batch.
fn fill(store: &dyn Store, map: &Map) {
    let entries: Vec<_> = map.iter().collect();
    for chunk in entries.chunks(1_000) {
        let mut batch = Batch::new();
        for ((ns, k), v) in chunk {
            batch.put(ns, k.clone(), (*v).clone());
        }
        store.commit(batch).unwrap();
    }
}

/// Every key of `store`, read once; how long it took.
fn read_all(store: &dyn Store) -> Duration {
    let started = Instant::now();
    let mut n = 0;
    for ns in store.namespaces().unwrap() {
        n += store.list(&ns, b"").unwrap().len();
    }
    assert!(n > channels());
    started.elapsed()
}

/// `embedded::start` of A with `store` (none: SQLite in `dir`) until it
/// lists its channels, all open; how long it took.
async fn restart(
    devnet: &Arc<Mutex<Devnet>>,
    dir: &std::path::Path,
    store: Option<String>,
) -> Duration {
    let mut cfg = EmbeddedConfig::new(dir, bitcoin::Network::Regtest);
    cfg.store = store;
    let chain: Arc<dyn ChainSource> = devnet.clone();
    let started = Instant::now();
    let a = embedded::start(&seed(1), chain, cfg).await.unwrap();
    let listed = a.node.handle().channels().await.unwrap();
    let took = started.elapsed();
    assert_eq!(
        listed
            .iter()
            .filter(|c| c.state == ChannelState::Normal)
            .count(),
        channels()
    );
    a.node.shutdown().await;
    took
}

/// How long A's core takes to rebuild itself from `map` alone
/// (`NodeCore::with_channels`): the channel records decoded, their keys
/// derived.
fn rebuild(map: &Map, height: u32) -> Duration {
    let stored = StoredState::from_map(map);
    let k = keys(1);
    let id = node_id(&k);
    let started = Instant::now();
    let core = NodeCore::with_channels(
        id,
        CoreConfig::new(ChainHash::REGTEST),
        k,
        ChannelSettings::default(),
        height,
        stored,
    )
    .unwrap();
    let took = started.elapsed();
    assert_eq!(core.channels().len(), channels());
    took
}

fn main() {
    let started = Instant::now();
    let (map, devnet) = build();
    let core = rebuild(&map, devnet.height());
    println!(
        "A's core rebuilt from the records alone in {:.2} s",
        core.as_secs_f64()
    );
    let bytes: usize = map
        .iter()
        .map(|((ns, k), v)| ns.len() + k.len() + v.len())
        .sum();
    println!(
        "{} channels opened through both cores in {:.1} s: A's store holds {} keys, {bytes} bytes",
        channels(),
        started.elapsed().as_secs_f64(),
        map.len()
    );
    let devnet = Arc::new(Mutex::new(devnet));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = scratch("restore");
    // SQLite.
    let sqlite_dir = dir.0.join("sqlite");
    std::fs::create_dir_all(&sqlite_dir).unwrap();
    let sqlite = SqliteStore::open(&sqlite_dir.join(embedded::STORE_FILE)).unwrap();
    fill(&sqlite, &map);
    let sqlite_read = read_all(&sqlite);
    drop(sqlite);
    // PostgreSQL.
    let url = testing::fresh_database("bench_restore");
    let pg = PostgresStore::open(&url).unwrap();
    fill(&pg, &map);
    let pg_read = read_all(&pg);
    pg.release_lease().unwrap();
    drop(pg);
    rt.block_on(async {
        for (name, store, dir, read) in [
            ("SQLite", None, sqlite_dir.clone(), sqlite_read),
            ("PostgreSQL", Some(url.clone()), dir.0.join("postgres"), pg_read),
        ] {
            let first = restart(&devnet, &dir, store.clone()).await;
            let again = restart(&devnet, &dir, store).await;
            println!(
                "{name:>10}: restart with {} channels in {:.2} s (first) and {:.2} s (again) (goal <= 2 s); reading every key takes {:.3} s (ratio {:.1})",
                channels(),
                first.as_secs_f64(),
                again.as_secs_f64(),
                read.as_secs_f64(),
                again.as_secs_f64() / read.as_secs_f64()
            );
        }
    });
}
