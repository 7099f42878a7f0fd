//! An in-process LDK (`lightning` 0.2.7 + `lightning-net-tokio` 0.2.0) node used as a live
//! peer on 127.0.0.1 for interop tests.
//!
//! The LDK side runs a bare `PeerManager` with the simplest honest handlers:
//! - channel messages: [`ErroringMessageHandler`] (answers every channel message with an
//!   `error`, advertises a set of *optional* channel features, never rejects a peer),
//! - routing / onion / custom / send-only: [`IgnoringMessageHandler`],
//! - node key: [`KeysManager`] built from the 32-byte seed,
//! - logger: [`LdkLogger`], which prints to stderr and keeps every record so tests can
//!   inspect what LDK did (including the pings/pongs it saw, see [`PingPong`]).
//!
//! See `LDK_NOTES.md` next to this file for the protocol behaviour of this configuration.
//!
//! Include it from an integration test with either
//! `#[path = "support/ldk.rs"] mod ldk;` or `mod support;` (then `support::ldk::LdkPeer`).
//!
//! Environment: `LDK_LOG=off|error|warn|info|debug|trace|gossip` sets the minimum level that
//! is printed to stderr (default `debug`). Every record is stored regardless.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::PublicKey;
use lightning::ln::msgs::BaseMessageHandler;
use lightning::ln::peer_handler::{
    ErroringMessageHandler, IgnoringMessageHandler, MessageHandler, PeerManager,
};
use lightning::sign::{KeysManager, NodeSigner, Recipient};
use lightning::types::features::InitFeatures;
use lightning::util::logger::{Level, Logger, Record};
use lightning_net_tokio::SocketDescriptor;
use tokio::task::JoinHandle;

/// The concrete `PeerManager` type used by [`LdkPeer`].
pub type LdkPeerManager = PeerManager<
    SocketDescriptor,
    Arc<ErroringMessageHandler>, // chan_handler
    Arc<IgnoringMessageHandler>, // route_handler
    Arc<IgnoringMessageHandler>, // onion_message_handler
    Arc<LdkLogger>,              // logger
    Arc<IgnoringMessageHandler>, // custom_message_handler
    Arc<KeysManager>,            // node_signer
    Arc<IgnoringMessageHandler>, // send_only_message_handler
>;

// ---------------------------------------------------------------------------------------------
// Logger
// ---------------------------------------------------------------------------------------------

/// One record LDK logged.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// LDK's level for the record.
    pub level: Level,
    /// The peer the record is about, when LDK attached one (`WithContext`).
    pub peer: Option<PublicKey>,
    /// The formatted message.
    pub msg: String,
    /// LDK source location (`file:line`).
    pub location: String,
}

/// A ping or pong LDK handled, reconstructed from LDK's own trace-level log records
/// (`"Received message Ping(..) from .."` in `do_handle_message_without_peer_lock` and
/// `"Enqueueing message Pong { .. } to .."` in `enqueue_message`). LDK has no other hook for
/// this. "Sent" means LDK queued (and encrypted) the message for the peer; LDK then flushes it
/// to the socket right away (timer tick / `process_events`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PingPong {
    /// LDK received a ping.
    PingReceived {
        /// Sender.
        peer: Option<PublicKey>,
        /// Requested pong length.
        ponglen: u16,
        /// Number of ignored bytes the ping carried.
        byteslen: u16,
    },
    /// LDK received a pong.
    PongReceived {
        /// Sender.
        peer: Option<PublicKey>,
        /// Number of ignored bytes the pong carried.
        byteslen: u16,
    },
    /// LDK queued a ping (its own, from a timer tick or after 32 messages without a pong).
    PingSent {
        /// Recipient.
        peer: Option<PublicKey>,
        /// Requested pong length (LDK always uses 0).
        ponglen: u16,
        /// Ignored bytes (LDK always uses 64).
        byteslen: u16,
    },
    /// LDK queued a pong in answer to a ping.
    PongSent {
        /// Recipient.
        peer: Option<PublicKey>,
        /// Ignored bytes (equal to the ping's `ponglen`).
        byteslen: u16,
    },
}

impl PingPong {
    /// The peer this event is about.
    pub fn peer(&self) -> Option<PublicKey> {
        match self {
            PingPong::PingReceived { peer, .. }
            | PingPong::PongReceived { peer, .. }
            | PingPong::PingSent { peer, .. }
            | PingPong::PongSent { peer, .. } => *peer,
        }
    }
}

/// LDK logger: prints to stderr with level and a per-node label, and records everything.
pub struct LdkLogger {
    label: Mutex<String>,
    print_min: Option<Level>,
    lines: Mutex<Vec<LogLine>>,
    ping_pongs: Mutex<Vec<PingPong>>,
}

fn level_from_env() -> Option<Level> {
    match std::env::var("LDK_LOG")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Ok("off") | Ok("none") => None,
        Ok("error") => Some(Level::Error),
        Ok("warn") => Some(Level::Warn),
        Ok("info") => Some(Level::Info),
        Ok("trace") => Some(Level::Trace),
        Ok("gossip") => Some(Level::Gossip),
        _ => Some(Level::Debug),
    }
}

/// Extracts the decimal number following `key` in `s`.
fn number_after(s: &str, key: &str) -> Option<u16> {
    let start = s.find(key)? + key.len();
    let digits: String = s[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Extracts a 33-byte hex public key following `key` in `s`.
fn pubkey_after(s: &str, key: &str) -> Option<PublicKey> {
    let start = s.rfind(key)? + key.len();
    let hex: String = s[start..].chars().take(66).collect();
    hex.parse().ok()
}

fn parse_ping_pong(msg: &str, peer: Option<PublicKey>) -> Option<PingPong> {
    // peer_handler.rs: log_trace!(logger, "Received message {:?} from {}", message, their_node_id)
    // where `message` is a `wire::Message`, i.e. `Ping(Ping { .. })` / `Pong(Pong { .. })`.
    if let Some(rest) = msg.strip_prefix("Received message ") {
        let peer = peer.or_else(|| pubkey_after(rest, " from "));
        if rest.starts_with("Ping(Ping {") {
            return Some(PingPong::PingReceived {
                peer,
                ponglen: number_after(rest, "ponglen: ")?,
                byteslen: number_after(rest, "byteslen: ")?,
            });
        }
        if rest.starts_with("Pong(Pong {") {
            return Some(PingPong::PongReceived {
                peer,
                byteslen: number_after(rest, "byteslen: ")?,
            });
        }
        return None;
    }
    // peer_handler.rs `enqueue_message`: log_trace!(logger, "Enqueueing message {:?} to {}", ..)
    // where the message is the bare struct.
    if let Some(rest) = msg.strip_prefix("Enqueueing message ") {
        let peer = peer.or_else(|| pubkey_after(rest, " to "));
        if rest.starts_with("Ping {") {
            return Some(PingPong::PingSent {
                peer,
                ponglen: number_after(rest, "ponglen: ")?,
                byteslen: number_after(rest, "byteslen: ")?,
            });
        }
        if rest.starts_with("Pong {") {
            return Some(PingPong::PongSent {
                peer,
                byteslen: number_after(rest, "byteslen: ")?,
            });
        }
    }
    None
}

impl LdkLogger {
    fn new(label: String) -> Self {
        LdkLogger {
            label: Mutex::new(label),
            print_min: level_from_env(),
            lines: Mutex::new(Vec::new()),
            ping_pongs: Mutex::new(Vec::new()),
        }
    }

    /// All records logged so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.lock().expect("log lock").clone()
    }

    /// All pings/pongs seen so far.
    pub fn ping_pongs(&self) -> Vec<PingPong> {
        self.ping_pongs.lock().expect("log lock").clone()
    }
}

impl Logger for LdkLogger {
    fn log(&self, record: Record) {
        let msg = record.args.to_string();
        // `file!()` is absolute for registry crates; keep it from `src/` on.
        let file = record
            .file
            .rfind("/src/")
            .map_or(record.file, |i| &record.file[i + 1..]);
        let location = format!("{file}:{}", record.line);
        if let Some(min) = self.print_min {
            if record.level >= min {
                let label = self.label.lock().expect("label lock").clone();
                let mut out = String::new();
                let _ = write!(out, "[{label} {:<6}] {msg}", record.level);
                if let Some(p) = record.peer_id {
                    let _ = write!(out, " (peer {})", short_id(&p));
                }
                let _ = write!(out, "  @{location}");
                eprintln!("{out}");
            }
        }
        if let Some(ev) = parse_ping_pong(&msg, record.peer_id) {
            self.ping_pongs.lock().expect("log lock").push(ev);
        }
        self.lines.lock().expect("log lock").push(LogLine {
            level: record.level,
            peer: record.peer_id,
            msg,
            location,
        });
    }
}

fn short_id(pk: &PublicKey) -> String {
    pk.to_string()[..10].to_owned()
}

/// Big-endian (wire order, BOLT 9) bytes of an LDK feature set, exactly as LDK writes the
/// `features` field (`lightning/src/ln/features.rs` `write_be`): no trimming.
fn features_be(f: &InitFeatures) -> Vec<u8> {
    f.le_flags().iter().rev().copied().collect()
}

// ---------------------------------------------------------------------------------------------
// LdkPeer
// ---------------------------------------------------------------------------------------------

/// A live LDK node listening on 127.0.0.1.
pub struct LdkPeer {
    pm: Arc<LdkPeerManager>,
    logger: Arc<LdkLogger>,
    chan_handler: Arc<ErroringMessageHandler>,
    ignoring: Arc<IgnoringMessageHandler>,
    keys: Arc<KeysManager>,
    node_id: PublicKey,
    listen_addr: SocketAddr,
    accept_task: Mutex<Option<JoinHandle<()>>>,
}

impl LdkPeer {
    /// Start an LDK PeerManager whose node key is derived (by `KeysManager`) from `seed`,
    /// listening on 127.0.0.1:0 with an accept loop (`lightning_net_tokio::setup_inbound`)
    /// spawned on the current tokio runtime.
    pub async fn start(seed: [u8; 32]) -> LdkPeer {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970");
        let keys = Arc::new(KeysManager::new(
            &seed,
            now.as_secs(),
            now.subsec_nanos(),
            true,
        ));
        let node_id = keys
            .get_node_id(Recipient::Node)
            .expect("KeysManager node id");
        let logger = Arc::new(LdkLogger::new(format!("ldk {}", short_id(&node_id))));
        let chan_handler = Arc::new(ErroringMessageHandler::new());
        let ignoring = Arc::new(IgnoringMessageHandler {});
        let message_handler = MessageHandler {
            chan_handler: Arc::clone(&chan_handler),
            route_handler: Arc::clone(&ignoring),
            onion_message_handler: Arc::clone(&ignoring),
            custom_message_handler: Arc::clone(&ignoring),
            send_only_message_handler: Arc::clone(&ignoring),
        };
        // Per-connection ephemeral keys are derived from this; must be random.
        let ephemeral_random_data: [u8; 32] = bitcoin::secp256k1::rand::random();
        let pm: Arc<LdkPeerManager> = Arc::new(PeerManager::new(
            message_handler,
            now.as_secs() as u32,
            &ephemeral_random_data,
            Arc::clone(&logger),
            Arc::clone(&keys),
        ));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let listen_addr = listener.local_addr().expect("listener local_addr");

        let accept_pm = Arc::clone(&pm);
        let accept_logger = Arc::clone(&logger);
        let accept_task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, remote)) => match stream.into_std() {
                        Ok(std_stream) => {
                            // setup_inbound registers the connection with the PeerManager and
                            // spawns the read/write driver itself; the returned future only
                            // resolves when the connection ends.
                            tokio::spawn(lightning_net_tokio::setup_inbound(
                                Arc::clone(&accept_pm),
                                std_stream,
                            ));
                        }
                        Err(e) => eprintln!(
                            "[{}] into_std failed for {remote}: {e}",
                            accept_logger.label.lock().expect("label lock")
                        ),
                    },
                    Err(e) => {
                        eprintln!(
                            "[{}] accept failed: {e}",
                            accept_logger.label.lock().expect("label lock")
                        );
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });

        LdkPeer {
            pm,
            logger,
            chan_handler,
            ignoring,
            keys,
            node_id,
            listen_addr,
            accept_task: Mutex::new(Some(accept_task)),
        }
    }

    /// Like [`LdkPeer::start`] with a fresh random seed (so a fresh random node key).
    pub async fn start_random() -> LdkPeer {
        LdkPeer::start(bitcoin::secp256k1::rand::random()).await
    }

    /// Set the label printed in front of this node's stderr log lines.
    pub fn set_label(&self, label: &str) {
        *self.logger.label.lock().expect("label lock") = label.to_owned();
    }

    /// LDK's node id (the static Noise key).
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    /// LDK's node secret key (to let a test act as this node, e.g. for Noise vectors).
    pub fn node_secret_key(&self) -> bitcoin::secp256k1::SecretKey {
        self.keys.get_node_secret_key()
    }

    /// The 127.0.0.1 address LDK accepts connections on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Dial a peer (`lightning_net_tokio::connect_outbound`, 10 s TCP connect timeout).
    /// Returns `Ok` once the TCP connection is set up and handed to LDK (the Noise handshake
    /// and init exchange then run in the background: use [`LdkPeer::wait_connected`]).
    pub async fn connect(&self, node_id: PublicKey, addr: SocketAddr) -> Result<(), String> {
        match lightning_net_tokio::connect_outbound(Arc::clone(&self.pm), node_id, addr).await {
            Some(conn_closed) => {
                // Resolves when the connection is gone; nothing needs to poll it.
                tokio::spawn(conn_closed);
                Ok(())
            }
            None => Err(format!("LDK could not connect to {node_id}@{addr}")),
        }
    }

    /// Whether the handshake and init exchange with this peer completed (LDK's
    /// `peer_by_node_id` lists only peers whose `init` it processed and accepted).
    pub fn is_connected(&self, node_id: &PublicKey) -> bool {
        self.pm.peer_by_node_id(node_id).is_some()
    }

    /// Node ids of all peers that completed the init exchange.
    pub fn connected_peers(&self) -> Vec<PublicKey> {
        self.pm
            .list_peers()
            .into_iter()
            .map(|p| p.counterparty_node_id)
            .collect()
    }

    /// The feature bits (BOLT 9 big-endian bit vector) the peer sent in its `init`, as LDK
    /// stored them: `features | globalfeatures` (LDK merges the two fields, msgs.rs `Init`
    /// reader), with the byte length of the longer field (leading zero bytes are kept).
    pub fn peer_init_features(&self, node_id: &PublicKey) -> Option<Vec<u8>> {
        self.pm
            .peer_by_node_id(node_id)
            .map(|p| features_be(&p.init_features))
    }

    /// The `features` field LDK sends in its `init` (the OR of all handlers'
    /// `provided_init_features`, exactly like `PeerManager::init_features`). LDK also sends
    /// the low 13 bits of this as `globalfeatures`.
    pub fn our_init_features(&self) -> Vec<u8> {
        features_be(&self.our_init_features_ldk())
    }

    /// Same as [`LdkPeer::our_init_features`], as LDK's type.
    pub fn our_init_features_ldk(&self) -> InitFeatures {
        let them = self.node_id; // handlers used here ignore the peer id
                                 // (UFCS: both handler types `Deref` to themselves, so method syntax recurses.)
        BaseMessageHandler::provided_init_features(&*self.chan_handler, them)
            | BaseMessageHandler::provided_init_features(&*self.ignoring, them)
    }

    /// Calls `PeerManager::timer_tick_occurred`: LDK pings every connected peer that is not
    /// still awaiting a pong, and disconnects peers that did not answer (see LDK_NOTES.md).
    pub fn timer_tick(&self) {
        self.pm.timer_tick_occurred();
    }

    /// Ask LDK to disconnect a peer (`disconnect_by_node_id`; LDK sends nothing first).
    pub fn disconnect(&self, node_id: &PublicKey) {
        self.pm.disconnect_by_node_id(*node_id);
    }

    /// Wait (polling every 10 ms) until `is_connected(node_id) == want`, at most `timeout`.
    /// Returns whether the wanted state was reached.
    pub async fn wait_connected(&self, node_id: &PublicKey, want: bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_connected(node_id) == want {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Pings/pongs LDK saw or sent so far (all peers).
    pub fn ping_pongs(&self) -> Vec<PingPong> {
        self.logger.ping_pongs()
    }

    /// Pings/pongs LDK saw or sent with one peer.
    pub fn ping_pongs_with(&self, node_id: &PublicKey) -> Vec<PingPong> {
        self.logger
            .ping_pongs()
            .into_iter()
            .filter(|e| e.peer() == Some(*node_id))
            .collect()
    }

    /// Wait (polling) until `pred` holds for the ping/pong history with `node_id`.
    pub async fn wait_ping_pongs(
        &self,
        node_id: &PublicKey,
        timeout: Duration,
        pred: impl Fn(&[PingPong]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.ping_pongs_with(node_id)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every record LDK logged so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.logger.lines()
    }

    /// Whether LDK logged a record containing `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        self.logger.lines().iter().any(|l| l.msg.contains(needle))
    }

    /// Wait (polling) until LDK logs a record containing `needle`.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log_contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The underlying `PeerManager`, for anything not wrapped here.
    pub fn peer_manager(&self) -> &Arc<LdkPeerManager> {
        &self.pm
    }

    /// Disconnect everyone and stop the accept loop (idempotent; also done on drop).
    pub fn stop(&self) {
        if let Some(task) = self.accept_task.lock().expect("accept lock").take() {
            task.abort();
        }
        self.pm.disconnect_all_peers();
    }
}

impl Drop for LdkPeer {
    fn drop(&mut self) {
        self.stop();
    }
}
