//! The tokio runtime: sockets, timers and the API around a [`NodeCore`].
//! It owns no protocol rules: it feeds inputs to the core and performs the
//! outputs the core returns, in order.

mod admission;
mod connection;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beongae_wire::NodeId;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::address::PeerAddress;
use crate::core::{
    ChannelSettings, ChannelSummary, Command, CommandId, CoreConfig, Direction, Event, Failure,
    FailureKind, Input, NodeCore, Output, PaymentSummary, PeerId, PeerInfo, Reply, StoredState,
};
use crate::onchain::Onchain;
use beongae_store::{Batch, Store};
use beongae_wallet::KeyManager;
use beongae_wire::{ChannelId, Msat, PaymentHash, Preimage};
use bitcoin::{Amount, Txid};
use connection::PeerLink;

/// Inputs handled together before their writes are committed at once
/// (group commit: one fsync for many channels' changes).
const MAX_INPUTS_PER_COMMIT: usize = 256;

/// What a node needs for channels: keys, a durable store and the chain
/// with the wallet.
pub struct ChannelServices {
    /// Channel keys (from the seed).
    pub keys: KeyManager,
    /// Where channels and payments are kept.
    pub store: Arc<dyn Store>,
    /// Chain and wallet.
    pub onchain: Arc<Onchain>,
    /// Channel settings; `close_script` defaults to a new wallet address.
    pub settings: ChannelSettings,
    /// How often the chain is polled for new blocks.
    pub chain_poll: Duration,
}

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Address to listen on; `None` for no inbound connections. Port 0 picks a free port.
    pub listen: Option<SocketAddr>,
    /// The core's settings.
    pub core: CoreConfig,
    /// Limit for the TCP connect of a dial.
    pub connect_timeout: Duration,
    /// Limit for the three acts of the BOLT 8 handshake.
    pub handshake_timeout: Duration,
    /// How often the core's timers run.
    pub tick_interval: Duration,
}

impl NodeConfig {
    /// Defaults around a core configuration.
    pub fn new(core: CoreConfig) -> Self {
        NodeConfig {
            listen: None,
            core,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            tick_interval: Duration::from_secs(1),
        }
    }
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another node using the port? choose another with --listen)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The stored channels could not be read.
    #[error("cannot restore channels from the store: {0}")]
    Restore(String),
    /// The chain could not be reached at start.
    #[error("cannot reach the chain: {0}")]
    Chain(String),
}

/// Why a request to the node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node refused or could not do it: what kind of failure, and why.
    #[error("{0}")]
    Failed(Failure),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

impl NodeError {
    fn failed(kind: FailureKind, message: String) -> NodeError {
        NodeError::Failed(Failure { kind, message })
    }

    fn unexpected(reply: &Reply) -> NodeError {
        NodeError::failed(FailureKind::Refused, format!("unexpected reply {reply:?}"))
    }
}

/// Messages to the core task.
pub(crate) enum CoreMsg {
    /// A connection finished its handshake: register its link, then feed `input`.
    Connected {
        peer: PeerId,
        link: PeerLink,
        input: Input,
    },
    /// Any other input.
    Input(Input),
    /// An API command and where to send the reply.
    Command(Command, oneshot::Sender<Reply>),
}

/// A handle to a running node; cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    tx: mpsc::Sender<CoreMsg>,
    events: broadcast::Sender<Event>,
    node_id: NodeId,
    /// Why the core task stopped on its own (a store failure, or the lease
    /// taken by another instance).
    failure: Arc<std::sync::OnceLock<String>>,
    /// Peers' commitments refused since start ([`Event::CommitmentRefused`]).
    refused: Arc<AtomicU64>,
}

impl NodeHandle {
    /// How many of the peers' commitments this node refused since it
    /// started ([`Event::CommitmentRefused`]): a peer's `commitment_signed`
    /// whose signature is not for the commitment we compute, or a
    /// `channel_reestablish` with commitment numbers our state does not
    /// have. Zero on a healthy node.
    pub fn commitments_refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Returns once the node's core has stopped, with why when it stopped
    /// on its own (none: it was shut down).
    pub async fn stopped(&self) -> Option<String> {
        self.tx.closed().await;
        self.failure.get().cloned()
    }

    /// Our node id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    async fn command(&self, command: Command) -> Result<Reply, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(CoreMsg::Command(command, tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Connects to `node_id` at `addr`; returns once both `init`s were exchanged.
    pub async fn connect(&self, node_id: NodeId, addr: SocketAddr) -> Result<PeerInfo, NodeError> {
        match self.command(Command::Connect { node_id, addr }).await? {
            Reply::Connected(info) => Ok(info),
            Reply::Failed(why) => Err(NodeError::Failed(why)),
            other => Err(NodeError::unexpected(&other)),
        }
    }

    /// Resolves the host of `addr` and connects to the first address that works.
    pub async fn connect_to(&self, addr: &PeerAddress) -> Result<PeerInfo, NodeError> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((addr.host.as_str(), addr.port))
            .await
            .map_err(|e| {
                NodeError::failed(
                    FailureKind::ConnectFailed,
                    format!("cannot resolve {}: {e}", addr.host),
                )
            })?
            .collect();
        let mut last = NodeError::failed(
            FailureKind::ConnectFailed,
            format!("{} resolved to no address", addr.host),
        );
        for sa in resolved {
            match self.connect(addr.node_id, sa).await {
                Ok(info) => return Ok(info),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Peers that completed the `init` exchange.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        match self.command(Command::ListPeers).await? {
            Reply::Peers(p) => Ok(p),
            other => Err(NodeError::unexpected(&other)),
        }
    }

    /// Closes the connection to `node_id`; `Ok(false)` if there was none.
    pub async fn disconnect(&self, node_id: NodeId) -> Result<bool, NodeError> {
        match self.command(Command::Disconnect { node_id }).await? {
            Reply::Disconnected { was_connected } => Ok(was_connected),
            other => Err(NodeError::unexpected(&other)),
        }
    }

    /// Pings `node_id` and waits for the pong: returns its length and the round trip.
    pub async fn ping(
        &self,
        node_id: NodeId,
        num_pong_bytes: u16,
    ) -> Result<(u16, Duration), NodeError> {
        match self
            .command(Command::Ping {
                node_id,
                num_pong_bytes,
            })
            .await?
        {
            Reply::Pong {
                byteslen,
                round_trip,
            } => Ok((byteslen, round_trip)),
            Reply::Failed(why) => Err(NodeError::Failed(why)),
            other => Err(NodeError::unexpected(&other)),
        }
    }

    /// The network graph gossip taught the node.
    pub async fn graph(&self) -> Result<crate::core::channels::gossip::NetworkGraph, NodeError> {
        match self.command(Command::ListGraph).await? {
            Reply::Graph(g) => Ok(g),
            other => Err(unexpected(other)),
        }
    }

    /// How much of the network graph the node holds.
    pub async fn graph_counts(
        &self,
    ) -> Result<crate::core::channels::gossip::GraphCounts, NodeError> {
        match self.command(Command::GraphCounts).await? {
            Reply::GraphCounts(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Opens a channel of `funding` to a connected peer, pushing `push` to
    /// it; returns once the funding transaction is broadcast.
    pub async fn open_channel(
        &self,
        node_id: NodeId,
        funding: Amount,
        push: Msat,
    ) -> Result<(ChannelId, Txid), NodeError> {
        self.open_channel_with(node_id, funding, push, false).await
    }

    /// Opens a channel, public (`announce`: announced to the network once
    /// six blocks deep, BOLT 7) or not.
    pub async fn open_channel_with(
        &self,
        node_id: NodeId,
        funding: Amount,
        push: Msat,
        announce: bool,
    ) -> Result<(ChannelId, Txid), NodeError> {
        match self
            .command(Command::OpenChannel {
                node_id,
                funding,
                push,
                announce,
            })
            .await?
        {
            Reply::ChannelOpened {
                channel_id,
                funding_txid,
            } => Ok((channel_id, funding_txid)),
            other => Err(unexpected(other)),
        }
    }

    /// Every channel.
    pub async fn channels(&self) -> Result<Vec<ChannelSummary>, NodeError> {
        match self.command(Command::ListChannels).await? {
            Reply::Channels(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// Sets the forwarding policy of channel `channel_id` (of every open
    /// channel for `None`); returns the channels set.
    pub async fn set_policy(
        &self,
        channel_id: Option<ChannelId>,
        policy: crate::core::channels::policy::ForwardingPolicy,
    ) -> Result<Vec<ChannelId>, NodeError> {
        match self
            .command(Command::SetPolicy { channel_id, policy })
            .await?
        {
            Reply::PolicySet(ids) => Ok(ids),
            other => Err(unexpected(other)),
        }
    }

    /// Every HTLC this node forwarded, newest first, with the fee of each.
    pub async fn forwards(
        &self,
    ) -> Result<Vec<crate::core::channels::forward::ForwardSummary>, NodeError> {
        match self.command(Command::ListForwards).await? {
            Reply::Forwards(f) => Ok(f),
            other => Err(unexpected(other)),
        }
    }

    /// What the wallet keeps for the fees of anchor channels' force closes
    /// (10,000 sat per channel that may need it, at most 100,000): opening
    /// a channel may not spend it.
    pub async fn fee_reserve(&self) -> Result<Amount, NodeError> {
        match self.command(Command::FeeReserve).await? {
            Reply::FeeReserve(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    /// What funding one more channel asks of the wallet: its feerate, the
    /// reserve to keep, and the largest funding we open.
    pub async fn funding_terms(
        &self,
    ) -> Result<(beongae_script::FeeratePerKw, Amount, Amount), NodeError> {
        match self.command(Command::FundingTerms).await? {
            Reply::FundingTerms {
                feerate,
                reserve,
                max_funding,
            } => Ok((feerate, reserve, max_funding)),
            other => Err(unexpected(other)),
        }
    }

    /// The height the node has processed blocks to, and the best tip it
    /// knows of: it is synced when they are equal.
    pub async fn chain_state(&self) -> Result<(u32, u32), NodeError> {
        match self.command(Command::ChainState).await? {
            Reply::ChainState { height, tip } => Ok((height, tip)),
            other => Err(unexpected(other)),
        }
    }

    /// Closes a channel cooperatively; returns the closing txid once broadcast.
    pub async fn close_channel(&self, channel_id: ChannelId) -> Result<Txid, NodeError> {
        match self.command(Command::CloseChannel { channel_id }).await? {
            Reply::ChannelClosed { txid, .. } => Ok(txid),
            other => Err(unexpected(other)),
        }
    }

    /// Closes a channel unilaterally; returns the txid of our commitment.
    pub async fn force_close_channel(&self, channel_id: ChannelId) -> Result<Txid, NodeError> {
        match self
            .command(Command::ForceCloseChannel { channel_id })
            .await?
        {
            Reply::ChannelClosed { txid, .. } => Ok(txid),
            other => Err(unexpected(other)),
        }
    }

    /// A new invoice.
    pub async fn invoice(
        &self,
        amount: Option<Msat>,
        description: &str,
        expiry_secs: u64,
    ) -> Result<(String, PaymentHash), NodeError> {
        let command = Command::CreateInvoice {
            amount,
            description: description.to_owned(),
            expiry_secs,
            now_secs: unix_now(),
        };
        match self.command(command).await? {
            Reply::Invoice {
                invoice,
                payment_hash,
            } => Ok((invoice, payment_hash)),
            other => Err(unexpected(other)),
        }
    }

    /// Pays an invoice whose payee is a channel peer; returns the preimage.
    pub async fn pay(&self, invoice: &str, amount: Option<Msat>) -> Result<Preimage, NodeError> {
        let command = Command::Pay {
            invoice: invoice.to_owned(),
            amount,
            now_secs: unix_now(),
            session_key: SecretKey::new(&mut bitcoin::secp256k1::rand::thread_rng()),
        };
        match self.command(command).await? {
            Reply::Paid { preimage, .. } => Ok(preimage),
            other => Err(unexpected(other)),
        }
    }

    /// Pays `amount` to channel peer `node_id` without an invoice (bLIP 3
    /// keysend, a random preimage); returns the preimage.
    pub async fn keysend(&self, node_id: NodeId, amount: Msat) -> Result<Preimage, NodeError> {
        let command = {
            let mut rng = bitcoin::secp256k1::rand::thread_rng();
            Command::Keysend {
                node_id,
                amount,
                preimage: Preimage(bitcoin::secp256k1::rand::Rng::gen(&mut rng)),
                session_key: SecretKey::new(&mut rng),
            }
        };
        match self.command(command).await? {
            Reply::Paid { preimage, .. } => Ok(preimage),
            other => Err(unexpected(other)),
        }
    }

    /// Invoices and payments.
    pub async fn payments(&self) -> Result<Vec<PaymentSummary>, NodeError> {
        match self.command(Command::ListPayments).await? {
            Reply::Payments(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(reply: Reply) -> NodeError {
    match reply {
        Reply::Failed(why) => NodeError::Failed(why),
        other => NodeError::unexpected(&other),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A running node.
pub struct Node {
    handle: NodeHandle,
    listen_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Starts the node with identity `key`: binds the listener (if any) and
    /// spawns the core task on the current tokio runtime.
    pub async fn start(key: SecretKey, config: NodeConfig) -> Result<Node, StartError> {
        Node::start_inner(key, config, None).await
    }

    /// Starts a node with channels: restores every channel and payment from
    /// the store, follows the chain from where the store left off, and
    /// reestablishes channels as their peers connect.
    pub async fn start_with_channels(
        key: SecretKey,
        config: NodeConfig,
        services: ChannelServices,
    ) -> Result<Node, StartError> {
        Node::start_inner(key, config, Some(services)).await
    }

    async fn start_inner(
        key: SecretKey,
        config: NodeConfig,
        services: Option<ChannelServices>,
    ) -> Result<Node, StartError> {
        let node_id =
            NodeId::from_pubkey(PublicKey::from_secret_key(&Secp256k1::signing_only(), &key));
        let (tx, rx) = mpsc::channel(4096);
        let (events, _) = broadcast::channel(1024);
        let ids = Arc::new(AtomicU64::new(1));
        let mut tasks = Vec::new();

        let listen_addr = match config.listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?;
                let local = listener
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr, source })?;
                let accept = accept_loop(
                    listener,
                    key,
                    config.handshake_timeout,
                    ids.clone(),
                    tx.clone(),
                );
                tasks.push(tokio::spawn(
                    accept.instrument(info_span!("listener", %local)),
                ));
                Some(local)
            }
            None => None,
        };

        let (core, io) = match services {
            None => (NodeCore::new(node_id, config.core.clone()), None),
            Some(services) => {
                let every = services.chain_poll;
                let (core, follower, store, onchain) =
                    restore(node_id, config.core.clone(), services).await?;
                let poll = chain_poll_loop(follower, onchain.clone(), tx.clone(), every);
                tasks.push(tokio::spawn(poll.instrument(info_span!("chain"))));
                let (btx, brx) = mpsc::unbounded_channel();
                tasks.push(tokio::spawn(
                    broadcaster(onchain.clone(), brx).instrument(info_span!("broadcast")),
                ));
                (
                    core,
                    Some(ChannelIo {
                        store,
                        onchain,
                        broadcaster: btx,
                    }),
                )
            }
        };
        let rebroadcast = core.pending_broadcasts();
        let failure: Arc<std::sync::OnceLock<String>> = Arc::default();
        let refused: Arc<AtomicU64> = Arc::default();
        let driver = CoreDriver {
            core,
            key,
            config,
            ids,
            tx: tx.clone(),
            events: events.clone(),
            links: HashMap::new(),
            pending: HashMap::new(),
            next_command: 1,
            clock: Duration::ZERO,
            io,
            fundings: Default::default(),
            requeue: Vec::new(),
            broadcast_in_batch: false,
            failure: failure.clone(),
            refused: refused.clone(),
        };
        if let Some(io) = &driver.io {
            for tx in rebroadcast {
                let _ = io.broadcaster.send(BroadcastJob::Tx(tx));
            }
        }
        tasks.push(tokio::spawn(
            driver.run(rx).instrument(info_span!("node", %node_id)),
        ));
        info!(%node_id, ?listen_addr, "node started");
        Ok(Node {
            handle: NodeHandle {
                tx,
                events,
                node_id,
                failure,
                refused,
            },
            listen_addr,
            tasks,
        })
    }

    /// A handle for API calls.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Our node id.
    pub fn node_id(&self) -> NodeId {
        self.handle.node_id
    }

    /// The bound listen address.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// Stops accepting and drops every connection.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Stops, and returns once every task has ended (so the store is
    /// closed and may be opened again).
    pub async fn shutdown(mut self) {
        self.stop();
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(
    listener: TcpListener,
    key: SecretKey,
    handshake_timeout: Duration,
    ids: Arc<AtomicU64>,
    core: mpsc::Sender<CoreMsg>,
) {
    // Handshakes cost an ECDH each and hold a socket: bound how many run at
    // once, per source address and in all, dropping the oldest for a new one
    // (`admission`).
    let gate: Arc<std::sync::Mutex<Gate>> = Arc::default();
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let dropped = Arc::new(tokio::sync::Notify::new());
        let ticket = gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .admit(addr.ip(), dropped.clone());
        let peer = PeerId(ids.fetch_add(1, Ordering::Relaxed));
        let core = core.clone();
        let gate = gate.clone();
        let task = async move {
            let mut stream = stream;
            let _ = stream.set_nodelay(true);
            let result = tokio::select! {
                r = connection::handshake(&mut stream, key, None, handshake_timeout) => Some(r),
                () = dropped.notified() => None,
            };
            gate.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .done(ticket);
            let Some(result) = result else {
                debug!("handshake dropped: newer connections needed its place");
                return;
            };
            match result {
                Ok((node_id, transport)) => {
                    debug!(%node_id, "inbound handshake complete");
                    connection::run(
                        stream,
                        transport,
                        peer,
                        node_id,
                        Direction::Inbound,
                        Some(addr),
                        core,
                    )
                    .await
                }
                Err(e) => debug!(error = %e, "inbound handshake failed"),
            }
        };
        tokio::spawn(task.instrument(info_span!("peer", ?peer, %addr)));
    }
}

/// Pending inbound handshakes and how to drop each.
#[derive(Default)]
struct Gate {
    admission: admission::Admission,
    drop: HashMap<admission::Ticket, Arc<tokio::sync::Notify>>,
}

impl Gate {
    /// Admits a connection from `ip`, dropping the handshakes that must
    /// make room for it.
    fn admit(
        &mut self,
        ip: std::net::IpAddr,
        dropped: Arc<tokio::sync::Notify>,
    ) -> admission::Ticket {
        let (ticket, evicted) = self.admission.admit(ip, Instant::now());
        for t in evicted {
            if let Some(n) = self.drop.remove(&t) {
                // Stored if the task is not waiting yet.
                n.notify_one();
            }
        }
        self.drop.insert(ticket, dropped);
        ticket
    }

    fn done(&mut self, ticket: admission::Ticket) {
        self.admission.done(ticket);
        self.drop.remove(&ticket);
    }
}

/// The task that owns the core and performs its outputs.
struct CoreDriver {
    core: NodeCore,
    key: SecretKey,
    config: NodeConfig,
    ids: Arc<AtomicU64>,
    tx: mpsc::Sender<CoreMsg>,
    events: broadcast::Sender<Event>,
    links: HashMap<PeerId, PeerLink>,
    pending: HashMap<CommandId, oneshot::Sender<Reply>>,
    next_command: u64,
    /// The core's clock: Unix time, monotonic.
    clock: Duration,
    io: Option<ChannelIo>,
    /// Funding outputs looked up for gossip (shared by the lookups).
    fundings: Arc<std::sync::Mutex<crate::funding_cache::FundingCache>>,
    /// Inputs raised while performing outputs, fed before the next message.
    requeue: Vec<Input>,
    /// A broadcast was queued in the outputs being performed: later
    /// replies wait for it.
    broadcast_in_batch: bool,
    /// Why the core stopped on its own ([`NodeHandle::stopped`]).
    failure: Arc<std::sync::OnceLock<String>>,
    /// [`NodeHandle::commitments_refused`].
    refused: Arc<AtomicU64>,
}

/// Whether this process still holds the store's lease: at once while the
/// last renewal is recent, otherwise from the database (on a blocking
/// thread).
async fn lease_held(store: &Arc<dyn Store>) -> Result<(), beongae_store::StoreError> {
    if store.lease_is_fresh() {
        return Ok(());
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.check_lease())
        .await
        .unwrap_or_else(|e| {
            Err(beongae_store::StoreError::Database(format!(
                "the lease check's thread failed: {e}"
            )))
        })
}

/// The store and the wallet, for a node with channels.
struct ChannelIo {
    store: Arc<dyn Store>,
    onchain: Arc<Onchain>,
    /// Broadcasts in order, and the replies that must wait for them.
    broadcaster: mpsc::UnboundedSender<BroadcastJob>,
}

/// Work for the broadcaster task.
enum BroadcastJob {
    /// Hand a transaction to the chain.
    Tx(bitcoin::Transaction),
    /// The wallet forgets a transaction of ours (in order with the
    /// broadcasts before it).
    Forget(bitcoin::Txid),
    /// Hand a child with its unconfirmed parent to the chain, as a package.
    Package(bitcoin::Transaction, bitcoin::Transaction),
    /// A reply that followed a broadcast in the core's outputs (e.g. "the
    /// funding transaction is broadcast"): delivered once it is done.
    Reply(oneshot::Sender<Reply>, Reply),
}

/// Performs broadcasts one after the other, off the core's task.
async fn broadcaster(onchain: Arc<Onchain>, mut jobs: mpsc::UnboundedReceiver<BroadcastJob>) {
    while let Some(job) = jobs.recv().await {
        match job {
            BroadcastJob::Tx(tx) => {
                let o = onchain.clone();
                let txid = tx.compute_txid();
                match tokio::task::spawn_blocking(move || o.broadcast(&tx)).await {
                    Ok(Ok(_)) => info!(%txid, "broadcast"),
                    Ok(Err(e)) => warn!(%txid, error = %e, "broadcast refused"),
                    Err(e) => warn!(%txid, error = %e, "broadcast task failed"),
                }
            }
            BroadcastJob::Reply(to, reply) => {
                let _ = to.send(reply);
            }
            BroadcastJob::Package(parent, child) => {
                let o = onchain.clone();
                let txid = child.compute_txid();
                match tokio::task::spawn_blocking(move || o.broadcast_package(&parent, &child))
                    .await
                {
                    Ok(Ok(_)) => info!(%txid, "package broadcast"),
                    Ok(Err(e)) => warn!(%txid, error = %e, "package refused"),
                    Err(e) => warn!(%txid, error = %e, "broadcast task failed"),
                }
            }
            BroadcastJob::Forget(txid) => {
                let o = onchain.clone();
                let _ = tokio::task::spawn_blocking(move || o.forget(txid)).await;
            }
        }
    }
}

impl CoreDriver {
    /// Runs `job` on the wallet off the async threads and feeds its result
    /// back to the core as `answer` ("no wallet" without one).
    fn wallet_job<T: Send + 'static>(
        &self,
        job: impl FnOnce(Arc<Onchain>) -> Result<T, String> + Send + 'static,
        answer: impl FnOnce(Result<T, String>) -> Input + Send + 'static,
    ) {
        let core = self.tx.clone();
        let onchain = self.io.as_ref().map(|io| io.onchain.clone());
        tokio::spawn(async move {
            let result = match onchain {
                None => Err("no wallet".to_owned()),
                Some(o) => tokio::task::spawn_blocking(move || job(o))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string())),
            };
            let _ = core.send(CoreMsg::Input(answer(result))).await;
        });
    }

    async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>) {
        let mut tick = tokio::time::interval(self.config.tick_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !self.requeue.is_empty() {
                let inputs = std::mem::take(&mut self.requeue);
                let outputs: Vec<Output> = inputs
                    .into_iter()
                    .flat_map(|i| self.feed(CoreMsg::Input(i)))
                    .collect();
                if !self.commit_and_perform(outputs).await {
                    return;
                }
                continue;
            }
            let first = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => m,
                    None => return,
                },
                _ = tick.tick() => CoreMsg::Input(Input::Tick),
            };
            // Group commit: handle what is already queued, then make all
            // their writes durable with one commit before performing any
            // output (every output follows the writes it depends on).
            let mut outputs = self.feed(first);
            for _ in 1..MAX_INPUTS_PER_COMMIT {
                match rx.try_recv() {
                    Ok(m) => outputs.extend(self.feed(m)),
                    Err(_) => break,
                }
            }
            if !self.commit_and_perform(outputs).await {
                return;
            }
        }
    }

    /// Commits every write among `outputs` at once, then performs the rest
    /// in order. False if the store failed (the node must stop).
    ///
    /// The commit runs on a blocking thread (it waits for the disk, or for
    /// a database server), so no worker of the runtime waits with it; the
    /// core task waits for it before anything that depends on it goes out.
    async fn commit_and_perform(&mut self, outputs: Vec<Output>) -> bool {
        // Every step (a tick at least every second) finds out when another
        // instance took the database's lease, and stops this one.
        if let Some(store) = self.io.as_ref().map(|io| io.store.clone()) {
            if let Err(e) = lease_held(&store).await {
                self.store_failed(&e);
                return false;
            }
        }
        let mut batch = Batch::new();
        let mut rest = Vec::with_capacity(outputs.len());
        for o in outputs {
            match o {
                Output::Persist(b) => {
                    batch.extend(b);
                }
                other => rest.push(other),
            }
        }
        // The inputs of one commit rewrite the same records (an open
        // channel's at each of its updates): each is written once.
        batch.squash();
        if !batch.is_empty() {
            let Some(io) = &self.io else {
                tracing::error!("the core asked to persist without a store; stopping");
                return false;
            };
            let store = io.store.clone();
            let committed = tokio::task::spawn_blocking(move || store.commit(batch))
                .await
                .unwrap_or_else(|e| {
                    Err(beongae_store::StoreError::Database(format!(
                        "the commit's thread failed: {e}"
                    )))
                });
            if let Err(e) = committed {
                // Nothing that depends on the writes may go out.
                self.store_failed(&e);
                return false;
            }
        }
        self.broadcast_in_batch = false;
        let store = self.io.as_ref().map(|io| io.store.clone());
        for output in rest {
            // With a shared database, only while this process holds its
            // lease (a frozen process that wakes after another took over
            // sends nothing); cheap while the last renewal is recent.
            if let Some(store) = &store {
                if let Err(e) = lease_held(store).await {
                    self.store_failed(&e);
                    return false;
                }
            }
            self.perform(output);
        }
        true
    }

    /// The store failed, or another instance took the lease: every
    /// connection is dropped at once and the core stops.
    fn store_failed(&mut self, e: &beongae_store::StoreError) {
        tracing::error!(error = %e, "the store refused; stopping the node");
        let _ = self.failure.set(e.to_string());
        for (_, link) in self.links.drain() {
            link.kill();
        }
    }

    /// Feeds one message to the core; returns its outputs.
    fn feed(&mut self, msg: CoreMsg) -> Vec<Output> {
        let input = match msg {
            CoreMsg::Input(input) => input,
            CoreMsg::Connected { peer, link, input } => {
                self.links.insert(peer, link);
                input
            }
            CoreMsg::Command(command, reply) => {
                let id = CommandId(self.next_command);
                self.next_command += 1;
                self.pending.insert(id, reply);
                Input::Command { id, command }
            }
        };
        if let Input::PeerDisconnected { peer } = &input {
            self.links.remove(peer);
        }
        // The wall clock, never going back (a clock stepped back holds the
        // core's time still until it catches up).
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.clock = self.clock.max(wall);
        self.core.handle(self.clock, input)
    }

    fn perform(&mut self, output: Output) {
        match output {
            Output::Send { peer, msg } => {
                let Some(link) = self.links.get(&peer) else {
                    return;
                };
                let bytes = match msg.encode() {
                    Ok(b) => b,
                    Err(e) => {
                        return warn!(?peer, error = %e, "not sending {}: cannot encode", msg.name())
                    }
                };
                debug!(?peer, "sending {}", msg.name());
                if link.send(bytes).is_err() {
                    // The peer does not read what we send: cut it off (nothing
                    // is lost, a connection holds no state of its own).
                    warn!(?peer, "peer is not reading; disconnecting");
                    if let Some(link) = self.links.remove(&peer) {
                        link.kill();
                    }
                    // Through the main loop, so its writes are committed
                    // before what depends on them.
                    self.requeue.push(Input::PeerDisconnected { peer });
                }
            }
            Output::Disconnect { peer, reason } => {
                info!(?peer, ?reason, "disconnecting");
                if let Some(link) = self.links.remove(&peer) {
                    link.close();
                }
            }
            Output::Dial { id, node_id, addr } => {
                let peer = PeerId(self.ids.fetch_add(1, Ordering::Relaxed));
                let (core, key) = (self.tx.clone(), self.key);
                let (connect_timeout, handshake_timeout) =
                    (self.config.connect_timeout, self.config.handshake_timeout);
                let task = async move {
                    let stream =
                        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                return dial_failed(
                                    &core,
                                    id,
                                    format!("cannot connect to {addr}: {e}"),
                                )
                                .await
                            }
                            Err(_) => {
                                return dial_failed(
                                    &core,
                                    id,
                                    format!("connecting to {addr} timed out"),
                                )
                                .await
                            }
                        };
                    let _ = stream.set_nodelay(true);
                    let mut stream = stream;
                    match connection::handshake(&mut stream, key, Some(node_id), handshake_timeout)
                        .await
                    {
                        Ok((_, transport)) => {
                            connection::run(
                                stream,
                                transport,
                                peer,
                                node_id,
                                Direction::Outbound,
                                Some(addr),
                                core,
                            )
                            .await
                        }
                        Err(e) => {
                            let why =
                                format!("{e} with {addr} (is {node_id} the node listening there?)");
                            dial_failed(&core, id, why).await
                        }
                    }
                };
                tokio::spawn(task.instrument(info_span!("peer", ?peer, %addr)));
            }
            Output::Reply { id, reply } => {
                if let Some(to) = self.pending.remove(&id) {
                    match &self.io {
                        // After a broadcast of this batch: once it is done.
                        Some(io) if self.broadcast_in_batch => {
                            let _ = io.broadcaster.send(BroadcastJob::Reply(to, reply));
                        }
                        _ => {
                            let _ = to.send(reply);
                        }
                    }
                }
            }
            // Committed by `run` before any output is performed.
            Output::Persist(_) => {}
            Output::BuildFunding {
                node_id,
                temporary_channel_id,
                script_pubkey,
                amount,
                feerate,
                reserve,
            } => self.wallet_job(
                move |o| {
                    // The wallet's refusal, typed, inside the job's result.
                    Ok(o.build_funding(script_pubkey, amount, feerate, reserve)
                        .map_err(|e| {
                            use beongae_wallet::WalletError as W;
                            let kind = match e {
                                W::InsufficientFunds { .. }
                                | W::BelowFeeReserve { .. }
                                | W::NothingToSend
                                | W::Dust(_) => FailureKind::InsufficientFunds,
                                _ => FailureKind::Refused,
                            };
                            Failure {
                                kind,
                                message: e.to_string(),
                            }
                        }))
                },
                move |result| Input::FundingBuilt {
                    node_id,
                    temporary_channel_id,
                    result: result.unwrap_or_else(|why| {
                        Err(Failure {
                            kind: FailureKind::Refused,
                            message: why,
                        })
                    }),
                },
            ),
            Output::FundClaim {
                channel_id,
                tx,
                prevouts,
                feerate,
                parent,
                max_fee,
                replaces,
            } => {
                let outpoint = tx
                    .input
                    .first()
                    .map(|i| i.previous_output)
                    .unwrap_or_default();
                self.wallet_job(
                    move |o| {
                        o.fund_claim(tx, &prevouts, feerate, parent, max_fee, replaces)
                            .map_err(|e| e.to_string())
                    },
                    move |result| Input::ClaimFunded {
                        channel_id,
                        outpoint,
                        result,
                    },
                )
            }
            Output::DoubleSpend {
                channel_id,
                tx,
                feerate,
                descendants_fee,
            } => self.wallet_job(
                move |o| {
                    o.double_spend(&tx, feerate, descendants_fee)
                        .map_err(|e| e.to_string())
                },
                move |result| Input::DoubleSpent { channel_id, result },
            ),
            Output::Forget { txid } => {
                if let Some(io) = &self.io {
                    let _ = io.broadcaster.send(BroadcastJob::Forget(txid));
                }
            }
            Output::LoadRemoteHtlcs { channel_id, number } => {
                let core = self.tx.clone();
                let store = self.io.as_ref().map(|io| io.store.clone());
                tokio::spawn(async move {
                    let stored = match store {
                        None => Err("no store".to_owned()),
                        Some(store) => tokio::task::spawn_blocking(move || {
                            store
                                .list(
                                    crate::core::channels::record::NS_REMOTE_HTLCS,
                                    &channel_id.0,
                                )
                                .map_err(|e| e.to_string())
                        })
                        .await
                        .unwrap_or_else(|e| Err(e.to_string())),
                    };
                    let _ = core
                        .send(CoreMsg::Input(Input::RemoteHtlcs {
                            channel_id,
                            number,
                            stored,
                        }))
                        .await;
                });
            }
            Output::NotifyDrained { peer } => {
                if let Some(link) = self.links.get(&peer) {
                    let (done, written) = oneshot::channel();
                    link.notify_written(done);
                    let core = self.tx.clone();
                    tokio::spawn(async move {
                        if written.await.is_ok() {
                            let _ = core.send(CoreMsg::Input(Input::PeerDrained { peer })).await;
                        }
                    });
                }
            }
            Output::LookupFunding { scids } => {
                let core = self.tx.clone();
                let chain = self.io.as_ref().map(|io| io.onchain.chain().clone());
                let cache = self.fundings.clone();
                tokio::spawn(async move {
                    let results = match chain {
                        None => scids
                            .into_iter()
                            .map(|s| (s, Err("no chain source".to_owned())))
                            .collect(),
                        Some(chain) => tokio::task::spawn_blocking(move || {
                            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
                            scids
                                .into_iter()
                                .map(|s| (s, cache.lookup(chain.as_ref(), s)))
                                .collect()
                        })
                        .await
                        .unwrap_or_default(),
                    };
                    let _ = core
                        .send(CoreMsg::Input(Input::FundingLookedUp { results }))
                        .await;
                });
            }
            Output::BroadcastPackage { parent, child } => match &self.io {
                Some(io) => {
                    self.broadcast_in_batch = true;
                    let _ = io.broadcaster.send(BroadcastJob::Package(parent, child));
                }
                None => warn!(txid = %child.compute_txid(), "no chain to broadcast to"),
            },
            Output::Broadcast { tx } => match &self.io {
                Some(io) => {
                    self.broadcast_in_batch = true;
                    let _ = io.broadcaster.send(BroadcastJob::Tx(tx));
                }
                None => warn!(txid = %tx.compute_txid(), "no chain to broadcast to"),
            },
            Output::Event(event) => {
                match &event {
                    Event::PeerReady(p) => {
                        info!(node_id = %p.node_id, direction = ?p.direction, "peer ready")
                    }
                    Event::WarningReceived { node_id, text } => {
                        warn!(%node_id, text = %truncate(text), "peer sent a warning")
                    }
                    Event::ErrorReceived { node_id, text } => {
                        warn!(%node_id, text = %truncate(text), "peer sent an error")
                    }
                    Event::CommitmentRefused { .. } => {
                        self.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    other => info!(event = ?other, "event"),
                }
                let _ = self.events.send(event);
            }
        }
    }
}

/// A peer's text, cut to a length fit for a log line.
fn truncate(text: &str) -> &str {
    match text.char_indices().nth(300) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

async fn dial_failed(core: &mpsc::Sender<CoreMsg>, id: CommandId, reason: String) {
    debug!(%reason, "dial failed");
    let _ = core
        .send(CoreMsg::Input(Input::DialFailed { id, reason }))
        .await;
}

/// Reads the store and the chain tip, and builds the core.
async fn restore(
    node_id: NodeId,
    core: CoreConfig,
    services: ChannelServices,
) -> Result<
    (
        NodeCore,
        crate::follow::ChainFollower,
        Arc<dyn Store>,
        Arc<Onchain>,
    ),
    StartError,
> {
    let ChannelServices {
        keys,
        store,
        onchain,
        mut settings,
        chain_poll: _,
    } = services;
    let (s, o) = (store.clone(), onchain.clone());
    let blocking = tokio::task::spawn_blocking(move || {
        let stored = StoredState::read(|ns| {
            s.list(ns, b"")
                .map_err(|e| StartError::Restore(e.to_string()))
        })?;
        let chain = o.chain().clone();
        let (tip, _) = chain.tip().map_err(|e| StartError::Chain(e.to_string()))?;
        let feerate = chain.fee_estimate(6).ok();
        let close = o.new_address().script_pubkey();
        Ok::<_, StartError>((stored, tip, feerate, close))
    });
    let (stored, tip, feerate, close) = blocking
        .await
        .map_err(|e| StartError::Restore(e.to_string()))??;
    if settings.close_script.is_none() {
        settings.close_script = Some(close);
    }
    if let Some(f) = feerate {
        settings.feerate = f;
    }
    let mut core = NodeCore::with_channels(node_id, core, keys, settings, tip, stored)
        .map_err(|e| StartError::Restore(e.to_string()))?;
    let o = onchain.clone();
    let (core, follower) = tokio::task::spawn_blocking(move || {
        let follower = crate::follow::ChainFollower::start_for(&mut core, o.chain().as_ref(), tip);
        (core, follower)
    })
    .await
    .map_err(|e| StartError::Chain(e.to_string()))?;
    let follower = follower.map_err(|e| StartError::Chain(e.to_string()))?;
    Ok((core, follower, store, onchain))
}

/// Follows the chain: new and disconnected blocks and the fee estimate go
/// to the core ([`crate::follow::ChainFollower`]).
async fn chain_poll_loop(
    mut follower: crate::follow::ChainFollower,
    onchain: Arc<Onchain>,
    core: mpsc::Sender<CoreMsg>,
    every: Duration,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut polls: u64 = 0;
    loop {
        interval.tick().await;
        let o = onchain.clone();
        // The fee estimate now and then (every 50 polls).
        let estimate = polls.is_multiple_of(50);
        polls += 1;
        let mut copy = follower.clone();
        let result = tokio::task::spawn_blocking(move || {
            let inputs = copy.poll(o.chain().as_ref());
            let fee = estimate.then(|| o.chain().fee_estimate(6).ok()).flatten();
            (copy, inputs, fee)
        })
        .await;
        let (polled, inputs, fee) = match result {
            Ok(x) => x,
            Err(e) => {
                // The blocking task panicked: say so and keep following.
                warn!(error = %e, "chain poll task failed");
                continue;
            }
        };
        follower = polled;
        if let Some(f) = fee {
            if core
                .send(CoreMsg::Input(Input::FeerateEstimate(f)))
                .await
                .is_err()
            {
                return;
            }
        }
        let inputs = match inputs {
            Ok(i) => i,
            Err(e) => {
                warn!(error = %e, "chain poll failed");
                continue;
            }
        };
        // Blocks disconnected above the tip reported: the follower started
        // again below a reorganisation deeper than what it watched.
        let deep = match inputs.first() {
            Some(Input::ChainTip { height }) => inputs
                .iter()
                .any(|i| matches!(i, Input::BlockDisconnected { height: h } if h > height)),
            _ => false,
        };
        if deep {
            warn!(
                from = follower.tip(),
                "following the chain again after a deep reorganisation"
            );
        }
        for input in inputs {
            if core.send(CoreMsg::Input(input)).await.is_err() {
                return;
            }
        }
    }
}
