//! The deterministic node core (DESIGN.md "The core: events in, actions out").
//!
//! [`NodeCore::handle`] takes the current time and one [`Input`] and returns
//! the [`Output`]s to perform, in order. It does no I/O, reads no clock and
//! draws no randomness of its own: the runtime (or a test, or the simulator)
//! feeds it and carries out what it returns.

mod peers;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use beongae_wire::msgs::MAX_PONG_BYTES;
use beongae_wire::{ChainHash, Feature, Features, Message, NodeId};

use peers::Peer;
pub use peers::{Direction, PeerInfo};

/// Identifies one connection (not one node: a node may reconnect under a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

/// Identifies an API command so its reply can be routed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u64);

/// Settings of the core's peer layer.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The chain we operate on, sent in `init`'s `networks`.
    pub chain: ChainHash,
    /// The features we send in `init`.
    pub features: Features,
    /// How often we ping a peer.
    pub ping_interval: Duration,
    /// How long we wait for a `pong` before dropping the peer.
    pub ping_timeout: Duration,
    /// How long we wait for the peer's `init` after the handshake.
    pub init_timeout: Duration,
    /// Seed for the core's own choices that should look random on the wire
    /// (ping padding lengths). Not a secret.
    pub seed: u64,
    /// Pings answered per peer per `ping_interval`; more are ignored
    /// (BOLT 1 recommends "limited precautions against ping flooding": each
    /// ping can ask for a 65531-byte pong).
    pub max_pongs_per_interval: u32,
    /// Inbound connections accepted at once; more are closed right away.
    pub max_inbound_peers: usize,
}

impl CoreConfig {
    /// Defaults for `chain`.
    pub fn new(chain: ChainHash) -> Self {
        CoreConfig {
            chain,
            features: default_features(),
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(20),
            init_timeout: Duration::from_secs(30),
            seed: 0x6265_6f6e_6761_6521,
            max_pongs_per_interval: 32,
            max_inbound_peers: 512,
        }
    }
}

/// The features we advertise: the optional bits of the features BOLT 9 marks
/// ASSUMED, plus `payment_secret` and `option_channel_type`, which deployed
/// nodes (LDK's `ChannelManager` among them) require before they will open
/// channels. `gossip_queries` also tells peers not to push the whole gossip
/// stream at us unasked. See docs/adr/0002-advertised-features.md.
pub fn default_features() -> Features {
    Features::empty()
        .with_optional(Feature::DataLossProtect)
        .with_optional(Feature::GossipQueries)
        .with_optional(Feature::VarOnionOptin)
        .with_optional(Feature::StaticRemoteKey)
        .with_optional(Feature::PaymentSecret)
        .with_optional(Feature::ChannelType)
}

/// Something that happened, for the runtime and the node's API.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// A BOLT 8 handshake completed.
    PeerConnected {
        /// The connection.
        peer: PeerId,
        /// The authenticated node id.
        node_id: NodeId,
        /// Who dialled.
        direction: Direction,
        /// The remote socket address.
        remote_addr: Option<SocketAddr>,
    },
    /// A decrypted Lightning message from a peer.
    PeerMessage {
        /// The connection.
        peer: PeerId,
        /// The message bytes (`type` then payload).
        bytes: Vec<u8>,
    },
    /// The connection is gone (closed by either side, or failed).
    PeerDisconnected {
        /// The connection.
        peer: PeerId,
    },
    /// Time passed; the core runs its timers.
    Tick,
    /// An API command.
    Command {
        /// For the reply.
        id: CommandId,
        /// What to do.
        command: Command,
    },
    /// A dial requested with [`Output::Dial`] failed before the handshake completed.
    DialFailed {
        /// The command that asked for it.
        id: CommandId,
        /// Why, for the user.
        reason: String,
    },
}

/// An API command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Connect to a node at an address; the reply comes once `init`s were exchanged.
    Connect {
        /// Who we expect at the address.
        node_id: NodeId,
        /// Where.
        addr: SocketAddr,
    },
    /// List connected peers.
    ListPeers,
    /// Close the connection to a node.
    Disconnect {
        /// The node.
        node_id: NodeId,
    },
    /// Send a `ping` and reply when its `pong` arrives.
    Ping {
        /// The node.
        node_id: NodeId,
        /// `num_pong_bytes` to ask for.
        num_pong_bytes: u16,
    },
}

/// The result of a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// Connected and `init` exchanged.
    Connected(PeerInfo),
    /// The peers.
    Peers(Vec<PeerInfo>),
    /// Disconnected (or was not connected).
    Disconnected {
        /// Whether there was a connection to close.
        was_connected: bool,
    },
    /// The `pong` arrived.
    Pong {
        /// Its `byteslen`.
        byteslen: u16,
        /// Time from sending the ping to receiving the pong.
        round_trip: Duration,
    },
    /// The command failed; the text says why.
    Failed(String),
}

/// Why the core closes a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// We sent (or would send) this `warning`/`error` text.
    ProtocolViolation(String),
    /// No `pong` within the timeout.
    PingTimeout,
    /// No `init` within the timeout.
    InitTimeout,
    /// Another connection to the same node is kept instead (BOLT 1: one
    /// connection per peer).
    Replaced,
    /// Too many inbound connections.
    TooManyPeers,
    /// The user asked.
    Requested,
}

/// What the runtime must do, in order.
// `Send` is by far the most common output and carries the message inline;
// boxing it would cost an allocation per message for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send a message on a connection.
    Send {
        /// The connection.
        peer: PeerId,
        /// The message.
        msg: Message,
    },
    /// Close a connection after flushing what was sent before.
    Disconnect {
        /// The connection.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// Dial a node; report [`Input::PeerConnected`] or [`Input::DialFailed`].
    Dial {
        /// The command this serves.
        id: CommandId,
        /// Who.
        node_id: NodeId,
        /// Where.
        addr: SocketAddr,
    },
    /// Tell the API a command's result.
    Reply {
        /// The command.
        id: CommandId,
        /// The result.
        reply: Reply,
    },
    /// Something the application may want to know.
    Event(Event),
}

/// Observable events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer completed the `init` exchange.
    PeerReady(PeerInfo),
    /// A ready peer went away.
    PeerDisconnected {
        /// The node.
        node_id: NodeId,
    },
    /// The peer sent a `warning` (BOLT 1: SHOULD log it).
    WarningReceived {
        /// From whom.
        node_id: NodeId,
        /// Printable text.
        text: String,
    },
    /// The peer sent an `error`.
    ErrorReceived {
        /// From whom.
        node_id: NodeId,
        /// Printable text.
        text: String,
    },
}

/// The deterministic node state machine.
pub struct NodeCore {
    config: CoreConfig,
    local_id: NodeId,
    peers: BTreeMap<PeerId, Peer>,
    /// `Connect` commands waiting for the node to become ready.
    pending_connects: Vec<(CommandId, NodeId)>,
    rng: u64,
}

impl NodeCore {
    /// A core for the node `local_id`.
    pub fn new(local_id: NodeId, config: CoreConfig) -> Self {
        let rng = config.seed | 1;
        NodeCore {
            config,
            local_id,
            peers: BTreeMap::new(),
            pending_connects: Vec::new(),
            rng,
        }
    }

    /// Our node id.
    pub fn local_id(&self) -> NodeId {
        self.local_id
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Peers that completed the `init` exchange.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.peers.values().filter_map(Peer::info).collect()
    }

    /// Processes one input at time `now` (monotonic, from any fixed origin).
    pub fn handle(&mut self, now: Duration, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::PeerConnected {
                peer,
                node_id,
                direction,
                remote_addr,
            } => self.on_connected(now, peer, node_id, direction, remote_addr, &mut out),
            Input::PeerMessage { peer, bytes } => self.on_message(now, peer, &bytes, &mut out),
            Input::PeerDisconnected { peer } => self.remove_peer(peer, &mut out),
            Input::Tick => self.on_tick(now, &mut out),
            Input::Command { id, command } => self.on_command(now, id, command, &mut out),
            Input::DialFailed { id, reason } => {
                self.pending_connects.retain(|(c, _)| *c != id);
                out.push(Output::Reply {
                    id,
                    reply: Reply::Failed(reason),
                });
            }
        }
        out
    }

    /// xorshift64: cheap, deterministic, good enough for padding lengths.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn peer_by_node(&self, node_id: NodeId) -> Option<PeerId> {
        self.peers
            .iter()
            .find(|(_, p)| p.node_id == node_id)
            .map(|(id, _)| *id)
    }

    fn on_command(
        &mut self,
        now: Duration,
        id: CommandId,
        command: Command,
        out: &mut Vec<Output>,
    ) {
        match command {
            Command::Connect { node_id, addr } => {
                if node_id == self.local_id {
                    out.push(Output::Reply {
                        id,
                        reply: Reply::Failed("cannot connect to ourselves".into()),
                    });
                    return;
                }
                let ready = self
                    .peer_by_node(node_id)
                    .and_then(|p| self.peers[&p].info());
                match ready {
                    Some(info) => out.push(Output::Reply {
                        id,
                        reply: Reply::Connected(info),
                    }),
                    None => {
                        self.pending_connects.push((id, node_id));
                        out.push(Output::Dial { id, node_id, addr });
                    }
                }
            }
            Command::ListPeers => out.push(Output::Reply {
                id,
                reply: Reply::Peers(self.peers()),
            }),
            Command::Disconnect { node_id } => {
                let peer = self.peer_by_node(node_id);
                if let Some(peer) = peer {
                    out.push(Output::Disconnect {
                        peer,
                        reason: DisconnectReason::Requested,
                    });
                    self.remove_peer(peer, out);
                }
                out.push(Output::Reply {
                    id,
                    reply: Reply::Disconnected {
                        was_connected: peer.is_some(),
                    },
                });
            }
            Command::Ping {
                node_id,
                num_pong_bytes,
            } => {
                if num_pong_bytes > MAX_PONG_BYTES {
                    let why = format!(
                        "num_pong_bytes must be at most {MAX_PONG_BYTES}: BOLT 1 says a peer ignores a ping asking for more"
                    );
                    out.push(Output::Reply {
                        id,
                        reply: Reply::Failed(why),
                    });
                    return;
                }
                let ready = self
                    .peer_by_node(node_id)
                    .filter(|p| self.peers[p].is_ready());
                let Some(peer) = ready else {
                    out.push(Output::Reply {
                        id,
                        reply: Reply::Failed(format!("not connected to {node_id}")),
                    });
                    return;
                };
                self.send_ping(now, peer, num_pong_bytes, Some(id), out);
            }
        }
    }
}

#[cfg(test)]
mod tests;
