//! A complete node from a seed, a data directory and a chain source: the
//! identity and channel keys from the seed, the on-chain wallet, a SQLite
//! store in the directory, and the runtime with channels. The daemon, the
//! demo and the integration tests all start nodes this way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use beongae_chain::ChainSource;
use beongae_store::{SqliteStore, Store};
use beongae_wallet::{KeyManager, OnchainWallet, Seed};
use beongae_wire::ChainHash;

use crate::core::{ChannelSettings, CoreConfig};
use crate::onchain::{AfterChange, Onchain};
use crate::runtime::{ChannelServices, Node, NodeConfig};

/// File name of the store inside the data directory.
pub const STORE_FILE: &str = "beongae.sqlite";

/// How to start an embedded node.
pub struct EmbeddedConfig {
    /// Where the store lives (created if missing).
    pub datadir: PathBuf,
    /// The network (the devnet is regtest).
    pub network: bitcoin::Network,
    /// Peer listen address (port 0: any free port).
    pub listen: Option<SocketAddr>,
    /// Channel settings.
    pub settings: ChannelSettings,
    /// How often the chain is polled.
    pub chain_poll: Duration,
    /// Runs after each transaction the node broadcasts.
    pub after_broadcast: Option<AfterChange>,
    /// Seed for the core's non-secret choices (ping padding).
    pub core_seed: u64,
    /// A PostgreSQL URL for the store (none: SQLite in `datadir`).
    pub store: Option<String>,
}

impl EmbeddedConfig {
    /// Defaults for `network` in `datadir`.
    pub fn new(datadir: impl Into<PathBuf>, network: bitcoin::Network) -> Self {
        EmbeddedConfig {
            datadir: datadir.into(),
            network,
            listen: None,
            settings: ChannelSettings::default(),
            chain_poll: Duration::from_secs(1),
            after_broadcast: None,
            core_seed: 0x6265_6f6e_6761_6521,
            store: None,
        }
    }
}

/// Why an embedded node did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// The data directory.
    #[error("data directory {0}: {1}")]
    Datadir(PathBuf, std::io::Error),
    /// The store.
    #[error(transparent)]
    Store(#[from] beongae_store::StoreError),
    /// The store holds another node's channels.
    #[error("the store holds the channels of node {found}, not of this seed's node {ours}: point the store at this node's own database")]
    WrongNode {
        /// The node whose store it is.
        found: String,
        /// This node.
        ours: String,
    },
    /// The wallet.
    #[error(transparent)]
    Wallet(#[from] beongae_wallet::WalletError),
    /// The node.
    #[error(transparent)]
    Start(#[from] crate::runtime::StartError),
}

/// A running embedded node and its wallet.
pub struct Embedded {
    /// The node.
    pub node: Node,
    /// Its chain and wallet.
    pub onchain: Arc<Onchain>,
}

/// Starts a node for `seed` on `chain`.
pub async fn start(
    seed: &Seed,
    chain: Arc<dyn ChainSource>,
    cfg: EmbeddedConfig,
) -> Result<Embedded, EmbeddedError> {
    std::fs::create_dir_all(&cfg.datadir)
        .map_err(|e| EmbeddedError::Datadir(cfg.datadir.clone(), e))?;
    let master = seed.master_key(cfg.network.into());
    let keys = KeyManager::new(master, cfg.network);
    let node_secret = keys.node_secret();
    // Persisted next to the store (BDK's own SQLite tables).
    let wallet = OnchainWallet::open(&master, cfg.network, &cfg.datadir)?;
    let onchain = Arc::new(Onchain::new(chain, wallet, cfg.after_broadcast));
    let o = onchain.clone();
    let path = cfg.datadir.join(STORE_FILE);
    let url = cfg.store.clone();
    let ours = bitcoin::secp256k1::PublicKey::from_secret_key(
        &bitcoin::secp256k1::Secp256k1::signing_only(),
        &node_secret,
    );
    let store = tokio::task::spawn_blocking(move || {
        o.sync()?;
        let store: Arc<dyn Store> = match url {
            None => Arc::new(SqliteStore::open(&path)?),
            Some(url) => {
                let store = beongae_store::PostgresStore::connect(&url)?;
                // Another node's database is refused before waiting for
                // its lease.
                check_owner(&store, &ours)?;
                take_lease(&store)?;
                Arc::new(store)
            }
        };
        claim(store.as_ref(), &ours)?;
        Ok::<_, EmbeddedError>(store)
    })
    .await
    .map_err(|e| EmbeddedError::Datadir(cfg.datadir.clone(), std::io::Error::other(e)))??;
    let mut core = CoreConfig::new(ChainHash::using_genesis_block(cfg.network));
    core.seed = cfg.core_seed;
    let mut config = NodeConfig::new(core);
    config.listen = cfg.listen;
    let services = ChannelServices {
        keys,
        store,
        onchain: onchain.clone(),
        settings: cfg.settings,
        chain_poll: cfg.chain_poll,
    };
    let node = Node::start_with_channels(node_secret, config, services).await?;
    Ok(Embedded { node, onchain })
}

/// Namespace of the store's owner.
const NS_META: &str = "meta";
/// Key of the owner's node id.
const KEY_OWNER: &[u8] = b"node_id";

/// Refuses a store that holds another node's channels; true if it holds
/// no owner yet.
fn check_owner(
    store: &dyn Store,
    ours: &bitcoin::secp256k1::PublicKey,
) -> Result<bool, EmbeddedError> {
    match store.get(NS_META, KEY_OWNER)? {
        Some(found) if found == ours.serialize() => Ok(false),
        Some(found) => Err(EmbeddedError::WrongNode {
            found: bitcoin::hex::DisplayHex::to_lower_hex_string(found.as_slice()),
            ours: ours.to_string(),
        }),
        None => Ok(true),
    }
}

/// Refuses a store that holds another node's channels; marks a new one (or
/// one from before owners were recorded) as `ours`.
fn claim(store: &dyn Store, ours: &bitcoin::secp256k1::PublicKey) -> Result<(), EmbeddedError> {
    if check_owner(store, ours)? {
        let mut b = beongae_store::Batch::new();
        b.put(NS_META, KEY_OWNER.to_vec(), ours.serialize().to_vec());
        store.commit(b)?;
    }
    Ok(())
}

/// Takes the database's lease, waiting as a standby while another instance
/// of this node holds it (ADR 0011), and saying so every 30 seconds.
fn take_lease(store: &beongae_store::PostgresStore) -> Result<(), EmbeddedError> {
    let mut said: Option<std::time::Instant> = None;
    let mut waiting = |held: &beongae_store::LeaseAttempt| {
        if let beongae_store::LeaseAttempt::Held { holder, expires_in } = held {
            if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                said = Some(std::time::Instant::now());
                tracing::warn!(
                    "standby: another instance of this node ({holder}) holds the database's lease for {:.1} s more; this one takes over if it stops renewing it",
                    expires_in.as_secs_f64()
                );
            }
        }
    };
    let epoch = store.take_lease(
        &beongae_store::lease_holder_name(),
        beongae_store::LEASE_TTL,
        &mut waiting,
    )?;
    if said.is_some() {
        tracing::warn!(
            "took over the database's lease (epoch {epoch}): this instance is now the node"
        );
    }
    Ok(())
}

/// The signed commitment transaction of channel `id` in `backup`, a copy of
/// a node's store (the node's seed `seed`): what a node restored from an
/// old backup would broadcast to close the channel.
///
/// Once the channel has moved on, that commitment is revoked: broadcasting
/// it hands the peer the whole channel (BOLT 5 "Revoked Transaction Close
/// Handling"). For demonstrations and tests of exactly that.
pub fn commitment_in_backup(
    seed: &Seed,
    network: bitcoin::Network,
    backup: &dyn Store,
    id: beongae_wire::ChannelId,
) -> Result<bitcoin::Transaction, String> {
    use crate::core::channels::record::{self, ChannelRecord, StoredPhase, NS_CHANNELS};
    let bytes = backup
        .get(NS_CHANNELS, &id.0)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no channel {id} in the backup"))?;
    let rec = ChannelRecord::decode(&bytes).map_err(|e| e.to_string())?;
    let StoredPhase::Normal { state, .. } = rec.phase else {
        return Err(format!("channel {id} is not open in the backup"));
    };
    let keys = KeyManager::new(seed.master_key(network.into()), network);
    let k = keys.channel(rec.index);
    let signing = beongae_channel::sign::SigningKeys {
        funding_key: k.funding,
        htlc_base_key: k.htlc_base,
    };
    // The onions kept apart from an open channel's record.
    let kept = crate::core::channels::onions::load(
        &backup
            .list(crate::core::channels::onions::NS_ONIONS, &id.0)
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?
    .remove(&id)
    .unwrap_or_default();
    let chan = record::decode_normal_apart(
        &state,
        &kept,
        signing,
        beongae_channel::revocation::LocalSecrets::new(k.commitment_seed),
    )
    .map_err(|e| e.to_string())?;
    chan.signed_local_commitment(&bitcoin::secp256k1::Secp256k1::new())
        .map_err(|e| e.to_string())
}
