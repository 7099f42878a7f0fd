//! A full in-process LDK 0.2.7 node for interop tests: a real `ChannelManager` with its
//! `ChainMonitor`, driven by the blocks of an in-process [`Devnet`] that the test feeds it.
//!
//! Components (all in this file, nothing persisted to disk):
//! - keys: [`KeysManager`] from a 32-byte seed (node key, channel keys, shutdown scripts);
//! - fees: [`FixedFeeEstimator`], one fixed feerate (2500 sat/kW, the devnet's) for every
//!   target except the "minimum we accept from the peer" targets (253 sat/kW, LDK's floor);
//! - broadcasts: [`NodeBroadcaster`] hands every transaction to a callback, by default
//!   `devnet.lock().accept(tx)`; refusals are logged, and every broadcast is recorded;
//! - persistence: [`MemoryPersister`] keeps the serialized `ChannelMonitor`s and the last
//!   serialized `ChannelManager` in memory (always `ChannelMonitorUpdateStatus::Completed`),
//!   and with [`LdkNode::start_durable`] also writes them to LDK's `FilesystemStore`;
//! - routing: `DefaultRouter` over the `NetworkGraph` that LDK's `P2PGossipSync` fills from
//!   gossip, funding outputs checked on the devnet ([`DevnetUtxo`]); unannounced channels
//!   are reached by first hops and invoice route hints;
//! - sockets: lightning-net-tokio (`setup_inbound` / `connect_outbound`) on 127.0.0.1;
//! - peer handlers: the `ChannelManager` for channel messages, the `P2PGossipSync` for
//!   gossip, `IgnoringMessageHandler` for onion and custom messages, the `ChainMonitor` as
//!   the send-only handler;
//! - wallet: one P2WPKH key derived from the seed ([`LdkNode::wallet_script`]); tests mine
//!   coinbases to it and the harness funds channels from them;
//! - logger: [`NodeLogger`], prints records at or above `LDK_LOG` (default `warn`) to stderr
//!   and keeps them all.
//!
//! A background tokio task calls [`LdkNode::process_events`] whenever the
//! `ChannelManager` or the `ChainMonitor` signals work and at least every 20 ms, the
//! `ChannelManager` timer tick every second and the `PeerManager` timer tick every 10 s.
//! Blocks reach LDK only through [`LdkNode::sync_to_tip`] (or every 20 ms once
//! [`LdkNode::set_auto_sync`] is on).
//!
//! Include it from an integration test with `#[path = "support/ldk_node.rs"] mod ldk_node;`.
//! See the "Full node harness" section of `LDK_NOTES.md` for what LDK 0.2.7 requires.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beongae_chain::devnet::{Devnet, COINBASE_MATURITY};
use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{
    Amount, Block, BlockHash, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction,
    TxIn, TxOut, Txid, Witness,
};
use lightning::bolt11_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::chainmonitor::{ChainMonitor, Persist};
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::{BestBlock, ChannelMonitorUpdateStatus, Filter, Listen};
use lightning::events::{ClosureReason, Event, EventsProvider, PaymentPurpose, ReplayEvent};
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::channelmanager::{
    Bolt11InvoiceParameters, ChainParameters, ChannelManager, PaymentId, Retry,
    SimpleArcChannelManager,
};
use lightning::ln::peer_handler::{IgnoringMessageHandler, MessageHandler, PeerManager};
use lightning::ln::types::ChannelId;
use lightning::onion_message::messenger::DefaultMessageRouter;
use lightning::routing::gossip::{NetworkGraph, P2PGossipSync};
use lightning::routing::router::{DefaultRouter, RouteParametersConfig};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::sign::{EntropySource, InMemorySigner, KeysManager, NodeSigner};
use lightning::types::payment::{PaymentHash, PaymentPreimage};
use lightning::util::config::UserConfig;
use lightning::util::logger::{Level, Logger, Record};
use lightning::util::persist::MonitorName;
use lightning::util::ser::Writeable;
use lightning_net_tokio::SocketDescriptor;
use tokio::task::JoinHandle;

/// The `ChainMonitor` of an [`LdkNode`] (no `chain::Filter`: we feed whole blocks).
pub type LdkChainMonitor = ChainMonitor<
    InMemorySigner,
    Arc<dyn Filter + Send + Sync>,
    Arc<NodeBroadcaster>,
    Arc<FixedFeeEstimator>,
    Arc<NodeLogger>,
    Arc<MemoryPersister>,
    Arc<KeysManager>,
>;

/// The `ChannelManager` of an [`LdkNode`] (LDK's own `SimpleArcChannelManager` alias:
/// `KeysManager` for keys, `DefaultRouter` + `ProbabilisticScorer`, `DefaultMessageRouter`).
pub type LdkChannelManager =
    SimpleArcChannelManager<LdkChainMonitor, NodeBroadcaster, FixedFeeEstimator, NodeLogger>;

/// LDK's gossip handler of an [`LdkNode`].
pub type LdkGossipSync = P2PGossipSync<Arc<LdkGraph>, Arc<DevnetUtxo>, Arc<NodeLogger>>;

/// The `PeerManager` of an [`LdkNode`].
pub type LdkPeerManager = PeerManager<
    SocketDescriptor,
    Arc<LdkChannelManager>,      // channel messages
    Arc<LdkGossipSync>,          // gossip
    Arc<IgnoringMessageHandler>, // onion messages
    Arc<NodeLogger>,
    Arc<IgnoringMessageHandler>, // custom messages
    Arc<KeysManager>,
    Arc<LdkChainMonitor>, // send-only (peer storage)
>;

/// The network graph of an [`LdkNode`].
pub type LdkGraph = NetworkGraph<Arc<NodeLogger>>;

/// Feerate (sat/kW) used for every target without an override: the devnet's default.
pub const DEFAULT_FEERATE_SAT_PER_KW: u32 = 2500;
/// LDK's lower bound on any feerate (`FEERATE_FLOOR_SATS_PER_KW`).
pub const FEERATE_FLOOR_SAT_PER_KW: u32 = 253;
/// Value of one anchor output (BOLT 3), which the funder pays twice on anchor channels.
const ANCHOR_OUTPUT_SAT: u64 = 330;
/// Default timeout of the `wait_*` helpers.
pub const WAIT: Duration = Duration::from_secs(30);

#[path = "ldk_node_parts.rs"]
mod parts;
pub use parts::*;

// ---------------------------------------------------------------------------------------------
// Records of events
// ---------------------------------------------------------------------------------------------

/// A payment this node received and claimed (`Event::PaymentClaimed`).
#[derive(Clone, Debug)]
pub struct ReceivedPayment {
    /// Payment hash.
    pub payment_hash: PaymentHash,
    /// Amount claimed.
    pub amount_msat: u64,
    /// The preimage, as the payment purpose carries it.
    pub preimage: Option<PaymentPreimage>,
}

/// The outcome of a payment this node sent (`Event::PaymentSent` / `Event::PaymentFailed`).
#[derive(Clone, Debug)]
pub struct SentPayment {
    /// The preimage, or why the payment failed.
    pub result: Result<PaymentPreimage, String>,
    /// Amount delivered to the payee (LDK's `amount_msat`), on success.
    pub amount_msat: Option<u64>,
    /// Routing fees paid, on success.
    pub fee_paid_msat: Option<u64>,
}

/// A channel LDK reported closed (`Event::ChannelClosed`).
#[derive(Clone, Debug)]
pub struct ClosedChannel {
    /// Channel id.
    pub channel_id: ChannelId,
    /// Why.
    pub reason: ClosureReason,
    /// Counterparty.
    pub counterparty: Option<PublicKey>,
    /// Funding outpoint, if the channel was funded.
    pub funding_txo: Option<OutPoint>,
    /// Our balance when it closed.
    pub last_local_balance_msat: Option<u64>,
    /// Channel value.
    pub capacity_sat: Option<u64>,
}

#[derive(Default)]
struct Records {
    /// Outbound opens by user_channel_id: the real channel id and funding outpoint
    /// (`ChannelPending`), or why it failed.
    opens: HashMap<u128, Result<(ChannelId, OutPoint), String>>,
    ready: HashSet<ChannelId>,
    closed: HashMap<ChannelId, ClosedChannel>,
    sent: HashMap<PaymentHash, SentPayment>,
    received: Vec<ReceivedPayment>,
    /// `Debug` of every event handled, in order.
    events: Vec<String>,
    /// Values of the outputs LDK reported spendable (`SpendableOutputs`).
    spendable: Vec<u64>,
}

/// A summary of one channel from `ChannelManager::list_channels`.
#[derive(Clone, Debug)]
pub struct ChannelSummary {
    /// Channel id (the temporary one until the funding is known).
    pub channel_id: ChannelId,
    /// Counterparty.
    pub counterparty: PublicKey,
    /// Funding outpoint, once known.
    pub funding_txo: Option<OutPoint>,
    /// Real short channel id, once confirmed.
    pub short_channel_id: Option<u64>,
    /// The SCID alias we gave the peer (`channel_ready` `short_channel_id` TLV).
    pub outbound_scid_alias: Option<u64>,
    /// The SCID alias the peer gave us: what LDK puts in invoice route hints.
    pub inbound_scid_alias: Option<u64>,
    /// Channel value.
    pub channel_value_sat: u64,
    /// Whether we opened it.
    pub is_outbound: bool,
    /// Both sides sent `channel_ready`.
    pub is_channel_ready: bool,
    /// Ready, peer connected, not shutting down.
    pub is_usable: bool,
    /// Whether the channel type has `option_anchors_zero_fee_htlc_tx`.
    pub anchors: bool,
    /// Funding confirmations LDK has seen.
    pub confirmations: Option<u32>,
    /// Confirmations the acceptor required.
    pub confirmations_required: Option<u32>,
    /// LDK: our balance minus pending outbound HTLCs, minus the anchors if we are the funder,
    /// minus the reserve the peer requires of us (no commitment fee subtracted).
    pub outbound_capacity_msat: u64,
    /// LDK: same for the peer's side, minus the reserve we require of them.
    pub inbound_capacity_msat: u64,
    /// LDK: the largest HTLC we could add now (also subtracts the commitment fee).
    pub next_outbound_htlc_limit_msat: u64,
    /// Reserve the peer requires of us.
    pub our_reserve_sat: Option<u64>,
    /// Reserve we require of the peer.
    pub their_reserve_sat: u64,
    /// Our `value_to_self` minus pending outbound HTLCs, reconstructed from the capacities
    /// above (LDK's `ChannelDetails` has no balance field). Exact whenever no HTLC is pending;
    /// `None` while both sides are within their reserves.
    pub balance_msat: Option<u64>,
    /// Pending HTLCs offered by the peer.
    pub pending_inbound_htlcs: usize,
    /// Pending HTLCs we offered.
    pub pending_outbound_htlcs: usize,
    /// Shutdown state, if not `NotShuttingDown`.
    pub shutdown: Option<String>,
    /// Whether the peer's `channel_update` (its fees and CLTV delta toward
    /// us) has arrived: LDK's invoices leave a private channel out of
    /// their route hints until it has.
    pub peer_forwarding_info: bool,
}

impl ChannelSummary {
    fn from_details(d: &ChannelDetails) -> ChannelSummary {
        let anchors = d
            .channel_type
            .as_ref()
            .is_some_and(|t| t.supports_anchors_zero_fee_htlc_tx());
        let anchors_msat = if anchors {
            2 * ANCHOR_OUTPUT_SAT * 1000
        } else {
            0
        };
        let pending_out: u64 = d.pending_outbound_htlcs.iter().map(|h| h.amount_msat).sum();
        let pending_in: u64 = d.pending_inbound_htlcs.iter().map(|h| h.amount_msat).sum();
        let our_reserve = d.unspendable_punishment_reserve.unwrap_or(0);
        let their_reserve = d.counterparty.unspendable_punishment_reserve;
        let balance_msat = if d.outbound_capacity_msat > 0 {
            Some(
                d.outbound_capacity_msat
                    + our_reserve * 1000
                    + if d.is_outbound { anchors_msat } else { 0 },
            )
        } else if d.inbound_capacity_msat > 0 {
            let remote = d.inbound_capacity_msat
                + their_reserve * 1000
                + if d.is_outbound { 0 } else { anchors_msat };
            (d.channel_value_satoshis * 1000).checked_sub(remote + pending_in + pending_out)
        } else {
            None
        };
        let shutdown = d.channel_shutdown_state.and_then(|s| {
            let s = format!("{s:?}");
            (s != "NotShuttingDown").then_some(s)
        });
        ChannelSummary {
            channel_id: d.channel_id,
            counterparty: d.counterparty.node_id,
            funding_txo: d.funding_txo.map(|o| o.into_bitcoin_outpoint()),
            short_channel_id: d.short_channel_id,
            outbound_scid_alias: d.outbound_scid_alias,
            inbound_scid_alias: d.inbound_scid_alias,
            channel_value_sat: d.channel_value_satoshis,
            is_outbound: d.is_outbound,
            is_channel_ready: d.is_channel_ready,
            is_usable: d.is_usable,
            anchors,
            confirmations: d.confirmations,
            confirmations_required: d.confirmations_required,
            outbound_capacity_msat: d.outbound_capacity_msat,
            inbound_capacity_msat: d.inbound_capacity_msat,
            next_outbound_htlc_limit_msat: d.next_outbound_htlc_limit_msat,
            our_reserve_sat: d.unspendable_punishment_reserve,
            their_reserve_sat: their_reserve,
            balance_msat,
            pending_inbound_htlcs: d.pending_inbound_htlcs.len(),
            pending_outbound_htlcs: d.pending_outbound_htlcs.len(),
            shutdown,
            peer_forwarding_info: d.counterparty.forwarding_info.is_some(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The node
// ---------------------------------------------------------------------------------------------

struct Inner {
    node_id: PublicKey,
    logger: Arc<NodeLogger>,
    keys: Arc<KeysManager>,
    fees: Arc<FixedFeeEstimator>,
    broadcaster: Arc<NodeBroadcaster>,
    persister: Arc<MemoryPersister>,
    chain_monitor: Arc<LdkChainMonitor>,
    cm: Arc<LdkChannelManager>,
    pm: Arc<LdkPeerManager>,
    graph: Arc<LdkGraph>,
    devnet: Arc<Mutex<Devnet>>,
    wallet: Wallet,
    /// Hashes of the blocks LDK has been given, index = height (from genesis).
    synced: Mutex<Vec<BlockHash>>,
    records: Mutex<Records>,
    auto_sync: AtomicBool,
    accept_inbound: AtomicBool,
    /// Payments to us left unclaimed (the HTLC stays pending).
    hold_claims: AtomicBool,
    /// Woken when an outcome of a payment we sent is recorded.
    sent_notify: tokio::sync::Notify,
}

/// A running LDK node (see the module docs). Dropping it stops its tasks and disconnects.
pub struct LdkNode {
    inner: Arc<Inner>,
    listen_addr: SocketAddr,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The `UserConfig` [`LdkNode::start`] uses:
/// - `negotiate_anchors_zero_fee_htlc_tx = true`;
/// - `manually_accept_inbound_channels = true`: LDK 0.2.7 refuses inbound anchor channels
///   unless they are accepted manually; the harness accepts every `OpenChannelRequest` (from
///   any peer) in its event handler, see [`LdkNode::set_accept_inbound`];
/// - `announce_for_forwarding = false` (unannounced channels) and
///   `force_announced_channel_preference = false` (also accept announced ones);
/// - `minimum_depth = 3` (what we require as acceptor);
/// - `accept_forwards_to_priv_channels = true`.
pub fn default_config() -> UserConfig {
    let mut config = UserConfig::default();
    config
        .channel_handshake_config
        .negotiate_anchors_zero_fee_htlc_tx = true;
    config.channel_handshake_config.announce_for_forwarding = false;
    config.channel_handshake_config.minimum_depth = 3;
    config
        .channel_handshake_limits
        .force_announced_channel_preference = false;
    config.manually_accept_inbound_channels = true;
    config.accept_inbound_channels = true;
    config.accept_forwards_to_priv_channels = true;
    config
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
}

fn short(pk: &PublicKey) -> String {
    pk.to_string()[..10].to_owned()
}

impl LdkNode {
    /// Starts a node whose keys come from `seed`, with [`default_config`], synced to the
    /// devnet's current tip, listening on 127.0.0.1:0.
    pub async fn start(seed: [u8; 32], devnet: Arc<Mutex<Devnet>>) -> LdkNode {
        LdkNode::start_with_config(seed, devnet, default_config()).await
    }

    /// Like [`LdkNode::start`] with a custom `UserConfig` (start from [`default_config`]).
    pub async fn start_with_config(
        seed: [u8; 32],
        devnet: Arc<Mutex<Devnet>>,
        config: UserConfig,
    ) -> LdkNode {
        LdkNode::start_inner(seed, devnet, config, None).await
    }

    /// Like [`LdkNode::start_with_config`], with every `ChannelMonitor` and
    /// `ChannelManager` write also made durable in LDK's `FilesystemStore` under `dir`
    /// (see [`MemoryPersister`]). For the benchmarks: a node that keeps its state only in
    /// memory is not what anyone runs.
    pub async fn start_durable(
        seed: [u8; 32],
        devnet: Arc<Mutex<Devnet>>,
        config: UserConfig,
        dir: std::path::PathBuf,
    ) -> LdkNode {
        LdkNode::start_inner(seed, devnet, config, Some(dir)).await
    }

    async fn start_inner(
        seed: [u8; 32],
        devnet: Arc<Mutex<Devnet>>,
        config: UserConfig,
        disk: Option<std::path::PathBuf>,
    ) -> LdkNode {
        let t = now();
        let keys = Arc::new(KeysManager::new(&seed, t.as_secs(), t.subsec_nanos(), true));
        let node_id = keys
            .get_node_id(lightning::sign::Recipient::Node)
            .expect("node id");
        let logger = Arc::new(NodeLogger::new(format!("ldk {}", short(&node_id))));
        let fees = Arc::new(FixedFeeEstimator::new());
        let broadcast_devnet = Arc::clone(&devnet);
        let broadcaster = Arc::new(NodeBroadcaster {
            callback: Mutex::new(Box::new(move |tx: &Transaction| {
                broadcast_devnet
                    .lock()
                    .unwrap()
                    .accept(tx.clone())
                    .map_err(|e| e.to_string())
            })),
            records: Mutex::new(Vec::new()),
            logger: Arc::clone(&logger),
        });
        let persister = Arc::new(MemoryPersister {
            disk: disk.map(lightning_persister::fs_store::FilesystemStore::new),
            ..MemoryPersister::default()
        });
        let chain_monitor: Arc<LdkChainMonitor> = Arc::new(ChainMonitor::new(
            None,
            Arc::clone(&broadcaster),
            Arc::clone(&logger),
            Arc::clone(&fees),
            Arc::clone(&persister),
            Arc::clone(&keys),
            keys.get_peer_storage_key(),
        ));

        let graph = Arc::new(LdkGraph::new(
            bitcoin::Network::Regtest,
            Arc::clone(&logger),
        ));
        let scorer = Arc::new(std::sync::RwLock::new(ProbabilisticScorer::new(
            ProbabilisticScoringDecayParameters::default(),
            Arc::clone(&graph),
            Arc::clone(&logger),
        )));
        let router = Arc::new(DefaultRouter::new(
            Arc::clone(&graph),
            Arc::clone(&logger),
            Arc::clone(&keys),
            scorer,
            ProbabilisticScoringFeeParameters::default(),
        ));
        let message_router = Arc::new(DefaultMessageRouter::new(
            Arc::clone(&graph),
            Arc::clone(&keys),
        ));

        let (tip_height, synced) = {
            let d = devnet.lock().unwrap();
            let hashes: Vec<BlockHash> = (0..=d.height())
                .map(|h| d.block_at(h).expect("main chain block").block_hash())
                .collect();
            (d.height(), hashes)
        };
        let params = ChainParameters {
            network: bitcoin::Network::Regtest,
            best_block: BestBlock::new(synced[tip_height as usize], tip_height),
        };
        let cm: Arc<LdkChannelManager> = Arc::new(ChannelManager::new(
            Arc::clone(&fees),
            Arc::clone(&chain_monitor),
            Arc::clone(&broadcaster),
            router,
            message_router,
            Arc::clone(&logger),
            Arc::clone(&keys),
            Arc::clone(&keys),
            Arc::clone(&keys),
            config,
            params,
            t.as_secs() as u32,
        ));

        let ignoring = Arc::new(IgnoringMessageHandler {});
        let gossip = Arc::new(P2PGossipSync::new(
            Arc::clone(&graph),
            Some(Arc::new(DevnetUtxo {
                devnet: Arc::clone(&devnet),
            })),
            Arc::clone(&logger),
        ));
        let message_handler = MessageHandler {
            chan_handler: Arc::clone(&cm),
            route_handler: Arc::clone(&gossip),
            onion_message_handler: Arc::clone(&ignoring),
            custom_message_handler: Arc::clone(&ignoring),
            send_only_message_handler: Arc::clone(&chain_monitor),
        };
        let pm: Arc<LdkPeerManager> = Arc::new(PeerManager::new(
            message_handler,
            t.as_secs() as u32,
            &keys.get_secure_random_bytes(),
            Arc::clone(&logger),
            Arc::clone(&keys),
        ));

        let inner = Arc::new(Inner {
            node_id,
            logger,
            keys,
            fees,
            broadcaster,
            persister,
            chain_monitor,
            cm,
            pm,
            graph,
            devnet,
            wallet: Wallet::from_seed(&seed),
            synced: Mutex::new(synced),
            records: Mutex::new(Records::default()),
            auto_sync: AtomicBool::new(false),
            accept_inbound: AtomicBool::new(true),
            hold_claims: AtomicBool::new(false),
            sent_notify: tokio::sync::Notify::new(),
        });

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let listen_addr = listener.local_addr().expect("local addr");
        let accept_pm = Arc::clone(&inner.pm);
        let accept_logger = Arc::clone(&inner.logger);
        let accept_task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    // TCP_NODELAY as on our own sockets: lightning-net-tokio leaves
                    // Nagle on, and its small writes then wait for delayed ACKs.
                    Ok((stream, _)) => match stream.set_nodelay(true).and(stream.into_std()) {
                        Ok(std_stream) => {
                            tokio::spawn(lightning_net_tokio::setup_inbound(
                                Arc::clone(&accept_pm),
                                std_stream,
                            ));
                        }
                        Err(e) => accept_logger.harness(Level::Error, format!("into_std: {e}")),
                    },
                    Err(e) => {
                        accept_logger.harness(Level::Error, format!("accept: {e}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });

        let bg = Arc::clone(&inner);
        let background = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_cm_tick = Instant::now();
            let mut last_pm_tick = Instant::now();
            loop {
                // As LDK's background processor does: woken by the ChannelManager or
                // the ChainMonitor as soon as there is something to do (events,
                // forwards, persistence), else by the tick.
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = bg.cm.get_event_or_persistence_needed_future() => {}
                    _ = bg.chain_monitor.get_update_future() => {}
                }
                if bg.auto_sync.load(Ordering::SeqCst) {
                    bg.sync_to_tip();
                }
                bg.process_events();
                if last_cm_tick.elapsed() >= Duration::from_secs(1) {
                    bg.cm.timer_tick_occurred();
                    last_cm_tick = Instant::now();
                }
                if last_pm_tick.elapsed() >= Duration::from_secs(10) {
                    bg.pm.timer_tick_occurred();
                    bg.chain_monitor.rebroadcast_pending_claims();
                    last_pm_tick = Instant::now();
                }
            }
        });

        LdkNode {
            inner,
            listen_addr,
            tasks: Mutex::new(vec![accept_task, background]),
        }
    }

    // ----- identity ----------------------------------------------------------------------

    /// The node id.
    pub fn node_id(&self) -> PublicKey {
        self.inner.node_id
    }

    /// The 127.0.0.1 address the node accepts connections on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Sets the label printed in front of this node's log lines.
    pub fn set_label(&self, label: &str) {
        *self.inner.logger.label.lock().unwrap() = label.to_owned();
    }

    // ----- peers -------------------------------------------------------------------------

    /// Dials `node_id` at `addr` and waits (10 s) until the init exchange completed, i.e. the
    /// peer shows in `PeerManager::list_peers`. Returns at once if already connected.
    pub async fn connect(&self, node_id: PublicKey, addr: SocketAddr) -> Result<(), String> {
        if self.is_connected(&node_id) {
            return Ok(());
        }
        // lightning-net-tokio's `connect_outbound`, with TCP_NODELAY (see the listener).
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .and_then(|s| s.set_nodelay(true).and(s.into_std()))
            .map_err(|e| format!("TCP connect to {node_id}@{addr} failed: {e}"))?;
        tokio::spawn(lightning_net_tokio::setup_outbound(
            Arc::clone(&self.inner.pm),
            node_id,
            stream,
        ));
        if wait_for(Duration::from_secs(10), || self.is_connected(&node_id)).await {
            Ok(())
        } else {
            Err(format!("{node_id}@{addr}: no init exchange within 10 s"))
        }
    }

    /// Whether the init exchange with `node_id` completed and the connection is up.
    pub fn is_connected(&self, node_id: &PublicKey) -> bool {
        self.inner.pm.peer_by_node_id(node_id).is_some()
    }

    /// Node ids of the connected peers.
    pub fn peers(&self) -> Vec<PublicKey> {
        self.inner
            .pm
            .list_peers()
            .into_iter()
            .map(|p| p.counterparty_node_id)
            .collect()
    }

    /// Drops the connection to `node_id` (nothing is sent first).
    pub fn disconnect(&self, node_id: &PublicKey) {
        self.inner.pm.disconnect_by_node_id(*node_id);
    }

    // ----- chain -------------------------------------------------------------------------

    /// Feeds LDK every devnet block it has not seen: `Listen::block_connected` on the
    /// `ChainMonitor`, then on the `ChannelManager` (which updates its best block itself). If
    /// the devnet reorganized, first calls `Listen::blocks_disconnected` with the fork point.
    /// Returns the new height. The devnet lock is not held while LDK runs (LDK may broadcast).
    pub fn sync_to_tip(&self) -> u32 {
        self.inner.sync_to_tip()
    }

    /// When on, the background task also calls [`LdkNode::sync_to_tip`] every 20 ms.
    pub fn set_auto_sync(&self, on: bool) {
        self.inner.auto_sync.store(on, Ordering::SeqCst);
    }

    /// Height of the last block given to LDK.
    pub fn synced_height(&self) -> u32 {
        (self.inner.synced.lock().unwrap().len() - 1) as u32
    }

    // ----- wallet ------------------------------------------------------------------------

    /// The wallet's P2WPKH script: mine coinbases to it to fund channels.
    pub fn wallet_script(&self) -> ScriptBuf {
        self.inner.wallet.script.clone()
    }

    /// Total of the wallet's spendable coins (mature, confirmed, not used yet).
    pub fn wallet_balance(&self) -> Amount {
        let d = self.inner.devnet.lock().unwrap();
        self.inner
            .wallet
            .coins(&d)
            .iter()
            .map(|(_, o)| o.value)
            .sum()
    }

    // ----- channels ----------------------------------------------------------------------

    /// Opens a channel of `sat` to a connected peer, pushing `push_msat`. The funding
    /// transaction is built from the wallet when LDK asks (`FundingGenerationReady`: one
    /// mature coin, change back, BIP 143 signed, feerate of the fee estimator's
    /// `NonAnchorChannelFee` target) and LDK broadcasts it after `funding_signed`. Waits (30 s)
    /// for `Event::ChannelPending` and returns the real channel id, or the reason LDK closed
    /// the channel before that.
    pub async fn open_channel(
        &self,
        their_node_id: PublicKey,
        sat: u64,
        push_msat: u64,
    ) -> Result<ChannelId, String> {
        let user_channel_id = u128::from_be_bytes(
            self.inner.keys.get_secure_random_bytes()[..16]
                .try_into()
                .unwrap(),
        );
        self.inner
            .cm
            .create_channel(their_node_id, sat, push_msat, user_channel_id, None, None)
            .map_err(|e| format!("create_channel: {e:?}"))?;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(r) = self
                .inner
                .records
                .lock()
                .unwrap()
                .opens
                .get(&user_channel_id)
            {
                return r.clone().map(|(id, _)| id);
            }
            if Instant::now() >= deadline {
                return Err("no ChannelPending within 30 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether inbound `OpenChannelRequest`s are accepted (default: yes, from anyone). When
    /// off they are rejected with `force_close_broadcasting_latest_txn` (which for an
    /// unfunded channel only sends an `error`).
    pub fn set_accept_inbound(&self, accept: bool) {
        self.inner.accept_inbound.store(accept, Ordering::SeqCst);
    }

    /// Whether payments to this node are left unclaimed (their HTLCs stay
    /// pending, as with a node that never learns the preimage in time).
    pub fn set_hold_claims(&self, hold: bool) {
        self.inner.hold_claims.store(hold, Ordering::SeqCst);
    }

    /// All channels (`ChannelManager::list_channels`), summarized.
    pub fn channels(&self) -> Vec<ChannelSummary> {
        self.inner
            .cm
            .list_channels()
            .iter()
            .map(ChannelSummary::from_details)
            .collect()
    }

    /// One channel by id.
    pub fn channel(&self, channel_id: &ChannelId) -> Option<ChannelSummary> {
        self.channels()
            .into_iter()
            .find(|c| c.channel_id == *channel_id)
    }

    /// The raw `ChannelDetails` (everything `list_channels` reports).
    pub fn channel_details(&self) -> Vec<ChannelDetails> {
        self.inner.cm.list_channels()
    }

    /// Waits (polling every 10 ms, at most `timeout`) until channel `channel_id` exists and
    /// satisfies `pred`; returns its summary, or the last one seen as an error message.
    pub async fn wait_channel(
        &self,
        channel_id: &ChannelId,
        timeout: Duration,
        pred: impl Fn(&ChannelSummary) -> bool,
    ) -> Result<ChannelSummary, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.channel(channel_id);
            if let Some(c) = c.as_ref().filter(|c| pred(c)) {
                return Ok(c.clone());
            }
            if Instant::now() >= deadline {
                return Err(format!("channel {channel_id} not as expected: {c:?}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts a cooperative close (`ChannelManager::close_channel`: LDK sends `shutdown`,
    /// then negotiates `closing_signed` once no HTLC is pending). Use
    /// [`LdkNode::wait_closed`] for the end.
    pub fn close_channel(
        &self,
        channel_id: &ChannelId,
        counterparty: &PublicKey,
    ) -> Result<(), String> {
        self.inner
            .cm
            .close_channel(channel_id, counterparty)
            .map_err(|e| format!("close_channel: {e:?}"))
    }

    /// Force-closes: LDK broadcasts its latest commitment transaction. With anchors its fee
    /// may need a CPFP (`Event::BumpTransaction`), which this harness only logs.
    pub fn force_close(
        &self,
        channel_id: &ChannelId,
        counterparty: &PublicKey,
        message: &str,
    ) -> Result<(), String> {
        self.inner
            .cm
            .force_close_broadcasting_latest_txn(channel_id, counterparty, message.to_owned())
            .map_err(|e| format!("force_close: {e:?}"))
    }

    /// Channels LDK reported closed so far.
    /// Values of the outputs LDK reported spendable so far.
    pub fn spendable(&self) -> Vec<u64> {
        self.inner.records.lock().unwrap().spendable.clone()
    }

    /// Channels LDK reported closed so far.
    pub fn closed_channels(&self) -> Vec<ClosedChannel> {
        self.inner
            .records
            .lock()
            .unwrap()
            .closed
            .values()
            .cloned()
            .collect()
    }

    /// Waits (30 s) for `Event::ChannelClosed` of `channel_id`.
    pub async fn wait_closed(&self, channel_id: &ChannelId) -> Result<ClosedChannel, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(c) = self.inner.records.lock().unwrap().closed.get(channel_id) {
                return Ok(c.clone());
            }
            if Instant::now() >= deadline {
                return Err(format!("channel {channel_id} not closed within 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether `Event::ChannelReady` was seen for `channel_id`.
    pub fn channel_ready_seen(&self, channel_id: &ChannelId) -> bool {
        self.inner
            .records
            .lock()
            .unwrap()
            .ready
            .contains(channel_id)
    }

    /// Waits (30 s) for `Event::ChannelReady` of `channel_id`.
    pub async fn wait_channel_ready(&self, channel_id: &ChannelId) -> Result<(), String> {
        if wait_for(WAIT, || self.channel_ready_seen(channel_id)).await {
            Ok(())
        } else {
            Err(format!("no ChannelReady for {channel_id} within 30 s"))
        }
    }

    // ----- payments ----------------------------------------------------------------------

    /// A BOLT 11 invoice (`lnbcrt`) for `amount_msat` with a direct `description`, from
    /// `ChannelManager::create_bolt11_invoice` (LDK derives the preimage; route hints for our
    /// unannounced channels are included).
    pub fn create_invoice(&self, amount_msat: u64, description: &str) -> String {
        self.create_invoice_with(Some(amount_msat), description, None)
            .expect("create_bolt11_invoice")
    }

    /// [`LdkNode::create_invoice`] with an optional amount and expiry (seconds).
    pub fn create_invoice_with(
        &self,
        amount_msat: Option<u64>,
        description: &str,
        expiry_secs: Option<u32>,
    ) -> Result<String, String> {
        let description =
            Description::new(description.to_owned()).map_err(|e| format!("description: {e}"))?;
        let params = Bolt11InvoiceParameters {
            amount_msats: amount_msat,
            description: Bolt11InvoiceDescription::Direct(description),
            invoice_expiry_delta_secs: expiry_secs,
            ..Default::default()
        };
        self.inner
            .cm
            .create_bolt11_invoice(params)
            .map(|i| i.to_string())
            .map_err(|e| format!("create_bolt11_invoice: {e:?}"))
    }

    /// Pays a BOLT 11 invoice that carries an amount (`ChannelManager::pay_for_bolt11_invoice`,
    /// payment id = payment hash, default route parameters, no retries). Returns the payment
    /// hash; the outcome comes from [`LdkNode::wait_payment`].
    pub fn pay_invoice(&self, invoice: &str) -> Result<PaymentHash, String> {
        self.pay_invoice_with_amount(invoice, None)
    }

    /// [`LdkNode::pay_invoice`] with an amount (required if the invoice has none).
    pub fn pay_invoice_with_amount(
        &self,
        invoice: &str,
        amount_msat: Option<u64>,
    ) -> Result<PaymentHash, String> {
        let invoice: Bolt11Invoice = invoice
            .parse()
            .map_err(|e| format!("invoice does not parse: {e:?}"))?;
        let hash = PaymentHash(invoice.payment_hash().to_byte_array());
        self.inner
            .cm
            .pay_for_bolt11_invoice(
                &invoice,
                PaymentId(hash.0),
                amount_msat,
                RouteParametersConfig::default(),
                Retry::Attempts(0),
            )
            .map_err(|e| format!("pay_for_bolt11_invoice: {e:?}"))?;
        Ok(hash)
    }

    /// Pays `amount_msat` to `payee` without an invoice (keysend, a random preimage, LDK's
    /// router over its channels, no retries). Returns the payment hash.
    pub fn send_keysend(&self, payee: PublicKey, amount_msat: u64) -> Result<PaymentHash, String> {
        use lightning::ln::channelmanager::RecipientOnionFields;
        use lightning::routing::router::{PaymentParameters, RouteParameters};
        let preimage = PaymentPreimage(self.inner.keys.get_secure_random_bytes());
        let hash = PaymentHash(sha256::Hash::hash(&preimage.0).to_byte_array());
        let params = RouteParameters::from_payment_params_and_value(
            PaymentParameters::for_keysend(payee, 40, false),
            amount_msat,
        );
        self.inner
            .cm
            .send_spontaneous_payment(
                Some(preimage),
                RecipientOnionFields::spontaneous_empty(),
                PaymentId(hash.0),
                params,
                Retry::Attempts(0),
            )
            .map_err(|e| format!("send_spontaneous_payment: {e:?}"))?;
        Ok(hash)
    }

    /// Waits (30 s) for the outcome of a payment we sent: the preimage
    /// (`Event::PaymentSent`) or why it failed (`Event::PaymentFailed`, with the reasons of
    /// the failed paths logged before it).
    pub async fn wait_payment(&self, hash: &PaymentHash) -> Result<PaymentPreimage, String> {
        self.wait_sent(hash).await?.result
    }

    /// Like [`LdkNode::wait_payment`], with the amount and fee LDK reported.
    pub async fn wait_sent(&self, hash: &PaymentHash) -> Result<SentPayment, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            // Registered before the check, so an outcome recorded in between wakes it.
            let notified = self.inner.sent_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(s) = self.inner.records.lock().unwrap().sent.get(hash) {
                return Ok(s.clone());
            }
            if Instant::now() >= deadline {
                return Err(format!("payment {hash} unresolved after 30 s"));
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// The fees LDK reported for the payments we sent that succeeded (`PaymentSent`).
    pub fn spent_fees_msat(&self) -> u64 {
        self.inner
            .records
            .lock()
            .unwrap()
            .sent
            .values()
            .filter_map(|s| s.fee_paid_msat)
            .sum()
    }

    /// Payments received and claimed so far (incoming payments are claimed automatically on
    /// `Event::PaymentClaimable`; they show here on `Event::PaymentClaimed`).
    pub fn received_payments(&self) -> Vec<ReceivedPayment> {
        self.inner.records.lock().unwrap().received.clone()
    }

    /// Waits (30 s) until the payment `hash` was received and claimed.
    pub async fn wait_received(&self, hash: &PaymentHash) -> Result<ReceivedPayment, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(r) = self
                .received_payments()
                .into_iter()
                .find(|r| r.payment_hash == *hash)
            {
                return Ok(r);
            }
            if Instant::now() >= deadline {
                return Err(format!("payment {hash} not claimed within 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // ----- driving -----------------------------------------------------------------------

    /// One round of what LDK's background processor does: forward/receive pending HTLCs
    /// (LDK 0.2 has no `PendingHTLCsForwardable` event), handle `ChannelManager` and
    /// `ChainMonitor` events, persist the `ChannelManager` if it asks, and flush
    /// `PeerManager` messages. Also run every 20 ms by the background task.
    pub fn process_events(&self) {
        self.inner.process_events();
    }

    /// The timer ticks (`ChannelManager` and `PeerManager`), now.
    pub fn timer_tick(&self) {
        self.inner.cm.timer_tick_occurred();
        self.inner.pm.timer_tick_occurred();
    }

    // ----- inspection --------------------------------------------------------------------

    /// Every transaction LDK broadcast, with the callback's answer.
    pub fn broadcasts(&self) -> Vec<BroadcastRecord> {
        self.inner.broadcaster.records.lock().unwrap().clone()
    }

    /// Replaces the broadcast callback (default: the devnet mempool).
    pub fn set_broadcast_callback(&self, cb: BroadcastCallback) {
        *self.inner.broadcaster.callback.lock().unwrap() = cb;
    }

    /// The fee estimator, to change feerates.
    pub fn fees(&self) -> &FixedFeeEstimator {
        &self.inner.fees
    }

    /// The in-memory persister.
    pub fn persister(&self) -> &MemoryPersister {
        &self.inner.persister
    }

    /// `Debug` of every event handled so far.
    pub fn events(&self) -> Vec<String> {
        self.inner.records.lock().unwrap().events.clone()
    }

    /// Every log record so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.inner.logger.lines()
    }

    /// Whether a log record contains `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        self.logs().iter().any(|l| l.msg.contains(needle))
    }

    /// The `ChannelManager`.
    pub fn channel_manager(&self) -> &Arc<LdkChannelManager> {
        &self.inner.cm
    }

    /// The `ChainMonitor`.
    pub fn chain_monitor(&self) -> &Arc<LdkChainMonitor> {
        &self.inner.chain_monitor
    }

    /// LDK's network graph (what its `P2PGossipSync` accepted).
    pub fn network_graph(&self) -> &Arc<LdkGraph> {
        &self.inner.graph
    }

    /// Signs and sends LDK's `node_announcement` (alias, colour, no address) to every peer
    /// (`PeerManager::broadcast_node_announcement`; peers keep it once a public channel of
    /// ours is announced).
    pub fn announce_node(&self, alias: &str, rgb: [u8; 3]) {
        let mut a = [0u8; 32];
        a[..alias.len()].copy_from_slice(alias.as_bytes());
        self.inner
            .pm
            .broadcast_node_announcement(rgb, a, Vec::new());
    }

    /// The `PeerManager`.
    pub fn peer_manager(&self) -> &Arc<LdkPeerManager> {
        &self.inner.pm
    }

    /// The `KeysManager`.
    /// Every `ChannelMonitor` as persisted now: a copy to cheat with later.
    pub fn monitor_snapshot(&self) -> Vec<Vec<u8>> {
        self.inner
            .persister
            .monitors
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect()
    }

    /// The latest commitment a `ChannelMonitor` snapshot holds, signed by
    /// this node (LDK's `unsafe_revoked_tx_signing`): once the channel
    /// moved on, a revoked commitment — what a node restored from a stale
    /// backup broadcasts. Its HTLC transactions follow it, if any.
    pub fn stale_commitment(&self, snapshot: &[u8]) -> Vec<bitcoin::Transaction> {
        use lightning::util::ser::ReadableArgs;
        let keys = &self.inner.keys;
        let (_, monitor) = <(bitcoin::BlockHash, ChannelMonitor<InMemorySigner>)>::read(
            &mut &snapshot[..],
            (&**keys, &**keys),
        )
        .expect("a monitor");
        monitor.unsafe_get_latest_holder_commitment_txn(&self.inner.logger)
    }

    pub fn keys(&self) -> &Arc<KeysManager> {
        &self.inner.keys
    }

    /// Stops the background tasks and disconnects every peer (idempotent; also on drop).
    pub fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
        self.inner.pm.disconnect_all_peers();
    }
}

impl Drop for LdkNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `cond` every 10 ms for at most `timeout`.
async fn wait_for(timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Inner {
    fn sync_to_tip(&self) -> u32 {
        // Held throughout so two syncs never interleave their blocks.
        let mut synced = self.synced.lock().unwrap();
        let (fork, blocks): (u32, Vec<Block>) = {
            let d = self.devnet.lock().unwrap();
            let mut h = (synced.len() as u32 - 1).min(d.height());
            while h > 0 && d.block_at(h).map(Block::block_hash) != Some(synced[h as usize]) {
                h -= 1;
            }
            let blocks = (h + 1..=d.height())
                .map(|i| d.block_at(i).expect("main chain").clone())
                .collect();
            (h, blocks)
        };
        if (fork as usize) < synced.len() - 1 {
            self.logger.harness(
                Level::Info,
                format!("reorg: disconnecting to height {fork}"),
            );
            synced.truncate(fork as usize + 1);
            let best = BestBlock::new(synced[fork as usize], fork);
            self.chain_monitor.blocks_disconnected(best);
            self.cm.blocks_disconnected(best);
        }
        for block in blocks {
            let height = synced.len() as u32;
            self.chain_monitor.block_connected(&block, height);
            self.cm.block_connected(&block, height);
            synced.push(block.block_hash());
        }
        (synced.len() - 1) as u32
    }

    fn process_events(&self) {
        if self.cm.needs_pending_htlc_processing() {
            self.cm.process_pending_htlc_forwards();
        }
        let handler = |event: Event| -> Result<(), ReplayEvent> {
            self.handle_event(event);
            Ok(())
        };
        self.cm.process_pending_events(&handler);
        self.chain_monitor.process_pending_events(&handler);
        if self.cm.get_and_clear_needs_persistence() {
            self.persister.persist_manager(self.cm.encode());
        }
        self.pm.process_events();
    }

    fn handle_event(&self, event: Event) {
        self.logger
            .harness(Level::Debug, format!("event: {event:?}"));
        self.records
            .lock()
            .unwrap()
            .events
            .push(format!("{event:?}"));
        match event {
            Event::OpenChannelRequest {
                temporary_channel_id,
                counterparty_node_id,
                ..
            } => {
                if self.accept_inbound.load(Ordering::SeqCst) {
                    let user_channel_id = u128::from_be_bytes(
                        self.keys.get_secure_random_bytes()[..16]
                            .try_into()
                            .unwrap(),
                    );
                    if let Err(e) = self.cm.accept_inbound_channel(
                        &temporary_channel_id,
                        &counterparty_node_id,
                        user_channel_id,
                        None,
                    ) {
                        self.logger
                            .harness(Level::Error, format!("accept_inbound_channel: {e:?}"));
                    }
                } else {
                    let _ = self.cm.force_close_broadcasting_latest_txn(
                        &temporary_channel_id,
                        &counterparty_node_id,
                        "not accepting channels".to_owned(),
                    );
                }
            }
            Event::FundingGenerationReady {
                temporary_channel_id,
                counterparty_node_id,
                channel_value_satoshis,
                output_script,
                user_channel_id,
            } => {
                let rate = self
                    .fees
                    .get_est_sat_per_1000_weight(ConfirmationTarget::NonAnchorChannelFee);
                let result = self
                    .wallet
                    .fund(
                        &self.devnet,
                        &output_script,
                        Amount::from_sat(channel_value_satoshis),
                        rate,
                    )
                    .and_then(|tx| {
                        self.cm
                            .funding_transaction_generated(
                                temporary_channel_id,
                                counterparty_node_id,
                                tx,
                            )
                            .map_err(|e| format!("funding_transaction_generated: {e:?}"))
                    });
                if let Err(e) = result {
                    self.logger.harness(Level::Error, format!("funding: {e}"));
                    self.records
                        .lock()
                        .unwrap()
                        .opens
                        .insert(user_channel_id, Err(e.clone()));
                    let _ = self.cm.force_close_broadcasting_latest_txn(
                        &temporary_channel_id,
                        &counterparty_node_id,
                        e,
                    );
                }
            }
            Event::ChannelPending {
                channel_id,
                user_channel_id,
                funding_txo,
                ..
            } => {
                self.records
                    .lock()
                    .unwrap()
                    .opens
                    .insert(user_channel_id, Ok((channel_id, funding_txo)));
            }
            Event::ChannelReady { channel_id, .. } => {
                self.records.lock().unwrap().ready.insert(channel_id);
            }
            Event::ChannelClosed {
                channel_id,
                user_channel_id,
                reason,
                counterparty_node_id,
                channel_capacity_sats,
                channel_funding_txo,
                last_local_balance_msat,
            } => {
                let mut r = self.records.lock().unwrap();
                r.opens
                    .entry(user_channel_id)
                    .or_insert_with(|| Err(format!("closed before ChannelPending: {reason}")));
                r.closed.insert(
                    channel_id,
                    ClosedChannel {
                        channel_id,
                        reason,
                        counterparty: counterparty_node_id,
                        funding_txo: channel_funding_txo.map(|o| o.into_bitcoin_outpoint()),
                        last_local_balance_msat,
                        capacity_sat: channel_capacity_sats,
                    },
                );
            }
            Event::PaymentClaimable {
                payment_hash,
                purpose,
                amount_msat,
                ..
            } => match purpose.preimage() {
                Some(_) if self.hold_claims.load(Ordering::SeqCst) => {
                    self.logger.harness(
                        Level::Info,
                        format!("holding {payment_hash} ({amount_msat} msat) unclaimed"),
                    );
                }
                Some(preimage) => self.cm.claim_funds(preimage),
                None => {
                    self.logger.harness(
                        Level::Error,
                        format!("claimable {payment_hash} ({amount_msat} msat) without preimage"),
                    );
                    self.cm.fail_htlc_backwards(&payment_hash);
                }
            },
            Event::PaymentClaimed {
                payment_hash,
                amount_msat,
                purpose,
                ..
            } => {
                self.records.lock().unwrap().received.push(ReceivedPayment {
                    payment_hash,
                    amount_msat,
                    preimage: preimage_of(&purpose),
                });
            }
            Event::PaymentSent {
                payment_preimage,
                payment_hash,
                amount_msat,
                fee_paid_msat,
                ..
            } => {
                self.records.lock().unwrap().sent.insert(
                    payment_hash,
                    SentPayment {
                        result: Ok(payment_preimage),
                        amount_msat,
                        fee_paid_msat,
                    },
                );
                self.sent_notify.notify_waiters();
            }
            Event::PaymentFailed {
                payment_id,
                payment_hash,
                reason,
            } => {
                let hash = payment_hash.unwrap_or(PaymentHash(payment_id.0));
                self.records.lock().unwrap().sent.insert(
                    hash,
                    SentPayment {
                        result: Err(format!("payment failed: {reason:?}")),
                        amount_msat: None,
                        fee_paid_msat: None,
                    },
                );
                self.sent_notify.notify_waiters();
            }
            Event::PaymentPathFailed {
                payment_hash,
                payment_failed_permanently,
                failure,
                short_channel_id,
                ..
            } => self.logger.harness(
                Level::Warn,
                format!(
                    "payment {payment_hash} path failed (permanently: \
                     {payment_failed_permanently}, scid {short_channel_id:?}): {failure:?}"
                ),
            ),
            Event::HTLCHandlingFailed {
                prev_channel_id,
                failure_type,
                failure_reason,
            } => self.logger.harness(
                Level::Warn,
                format!("HTLC from {prev_channel_id} failed: {failure_type:?} {failure_reason:?}"),
            ),
            // A force close with anchors: LDK hands us its commitment to
            // bump. At the harness's feerate (2,500 sat/kw) it relays as it
            // is, so it is broadcast without a CPFP child.
            Event::BumpTransaction(
                lightning::events::bump_transaction::BumpTransactionEvent::ChannelClose {
                    commitment_tx,
                    ..
                },
            ) => {
                use lightning::chain::chaininterface::BroadcasterInterface;
                self.broadcaster.broadcast_transactions(&[&commitment_tx]);
            }
            Event::BumpTransaction(e) => self.logger.harness(
                Level::Warn,
                format!("BumpTransaction not handled by this harness: {e:?}"),
            ),
            Event::SpendableOutputs { outputs, .. } => {
                use lightning::sign::SpendableOutputDescriptor as D;
                let values = outputs.iter().map(|o| match o {
                    D::StaticOutput { output, .. } => output.value.to_sat(),
                    D::DelayedPaymentOutput(d) => d.output.value.to_sat(),
                    D::StaticPaymentOutput(d) => d.output.value.to_sat(),
                });
                self.records.lock().unwrap().spendable.extend(values);
                self.logger.harness(
                    Level::Info,
                    format!("{} spendable outputs (not swept)", outputs.len()),
                )
            }
            _ => {}
        }
    }
}

fn preimage_of(purpose: &PaymentPurpose) -> Option<PaymentPreimage> {
    purpose.preimage()
}
