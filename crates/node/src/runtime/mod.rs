//! The tokio runtime: sockets, timers and the API around a [`NodeCore`].
//! It owns no protocol rules: it feeds inputs to the core and performs the
//! outputs the core returns, in order.

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
    Command, CommandId, CoreConfig, Direction, Event, Input, NodeCore, Output, PeerId, PeerInfo,
    Reply,
};
use connection::PeerLink;

/// Inbound handshakes in progress at once; further connections are closed.
const MAX_PENDING_HANDSHAKES: usize = 64;

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
}

/// Why a request to the node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node refused or could not do it; the text says why.
    #[error("{0}")]
    Failed(String),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
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
}

impl NodeHandle {
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
            other => Err(NodeError::Failed(format!("unexpected reply {other:?}"))),
        }
    }

    /// Resolves the host of `addr` and connects to the first address that works.
    pub async fn connect_to(&self, addr: &PeerAddress) -> Result<PeerInfo, NodeError> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((addr.host.as_str(), addr.port))
            .await
            .map_err(|e| NodeError::Failed(format!("cannot resolve {}: {e}", addr.host)))?
            .collect();
        let mut last = NodeError::Failed(format!("{} resolved to no address", addr.host));
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
            other => Err(NodeError::Failed(format!("unexpected reply {other:?}"))),
        }
    }

    /// Closes the connection to `node_id`; `Ok(false)` if there was none.
    pub async fn disconnect(&self, node_id: NodeId) -> Result<bool, NodeError> {
        match self.command(Command::Disconnect { node_id }).await? {
            Reply::Disconnected { was_connected } => Ok(was_connected),
            other => Err(NodeError::Failed(format!("unexpected reply {other:?}"))),
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
            other => Err(NodeError::Failed(format!("unexpected reply {other:?}"))),
        }
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
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

        let core = NodeCore::new(node_id, config.core.clone());
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
            start: Instant::now(),
        };
        tasks.push(tokio::spawn(
            driver.run(rx).instrument(info_span!("node", %node_id)),
        ));
        info!(%node_id, ?listen_addr, "node started");
        Ok(Node {
            handle: NodeHandle {
                tx,
                events,
                node_id,
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
    // Handshakes cost an ECDH each and hold a socket: bound how many run at once.
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            debug!(%addr, "refusing connection: too many handshakes in progress");
            continue;
        };
        let peer = PeerId(ids.fetch_add(1, Ordering::Relaxed));
        let core = core.clone();
        let task = async move {
            let mut stream = stream;
            let _ = stream.set_nodelay(true);
            let result = connection::handshake(&mut stream, key, None, handshake_timeout).await;
            drop(permit);
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
    start: Instant,
}

impl CoreDriver {
    async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>) {
        let mut tick = tokio::time::interval(self.config.tick_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let input = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(CoreMsg::Input(input)) => input,
                    Some(CoreMsg::Connected { peer, link, input }) => {
                        self.links.insert(peer, link);
                        input
                    }
                    Some(CoreMsg::Command(command, reply)) => {
                        let id = CommandId(self.next_command);
                        self.next_command += 1;
                        self.pending.insert(id, reply);
                        Input::Command { id, command }
                    }
                    None => return,
                },
                _ = tick.tick() => Input::Tick,
            };
            if let Input::PeerDisconnected { peer } = &input {
                self.links.remove(peer);
            }
            let outputs = self.core.handle(self.start.elapsed(), input);
            for output in outputs {
                self.perform(output);
            }
        }
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
                    let outputs = self
                        .core
                        .handle(self.start.elapsed(), Input::PeerDisconnected { peer });
                    outputs.into_iter().for_each(|o| self.perform(o));
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
                if let Some(tx) = self.pending.remove(&id) {
                    let _ = tx.send(reply);
                }
            }
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
