//! BOLT 1 peer handling in the core: the `init` exchange, `ping`/`pong`,
//! `error`/`warning`, unknown messages, and connection liveness.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use beongae_wire::{
    ChainHash, ChannelId, DecodeError, ErrorMessage, Feature, Features, Init, Message, NetAddress,
    NodeId, Ping, Warning,
};

use super::{CommandId, DisconnectReason, Event, FailureKind, NodeCore, Output, PeerId, Reply};

/// Two connections to the same node within this time of each other, in
/// opposite directions, are a simultaneous connect rather than a reconnect.
const SIMULTANEOUS_CONNECT_WINDOW: Duration = Duration::from_secs(5);

/// BOLT 1 message groups: channel (32-127) and commitment (128-255) messages.
const CHANNEL_MESSAGES: std::ops::RangeInclusive<u16> = 32..=255;

/// BOLT 7 gossip messages: `channel_announcement` (256), `node_announcement`
/// (257), `channel_update` (258), `announcement_signatures` is 259 (a channel
/// message in effect, but without channels there is nothing to sign), the
/// `gossip_queries` messages (261-265).
const GOSSIP_MESSAGES: [u16; 9] = [256, 257, 258, 259, 261, 262, 263, 264, 265];

/// Who opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// They dialled us.
    Inbound,
    /// We dialled them.
    Outbound,
}

/// A peer that completed the `init` exchange, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's node id.
    pub node_id: NodeId,
    /// Who dialled.
    pub direction: Direction,
    /// Remote socket address.
    pub remote_addr: Option<SocketAddr>,
    /// The peer's features (`globalfeatures` OR `features`).
    pub features: Features,
    /// The chains the peer listed in `networks`, if it sent the TLV.
    pub networks: Option<Vec<ChainHash>>,
}

/// A `ping` we sent and whose `pong` we await.
#[derive(Debug)]
struct OutstandingPing {
    sent_at: Duration,
    num_pong_bytes: u16,
    command: Option<CommandId>,
}

/// One connection.
#[derive(Debug)]
pub(super) struct Peer {
    pub(super) node_id: NodeId,
    direction: Direction,
    remote_addr: Option<SocketAddr>,
    connected_at: Duration,
    /// The peer's `init`, once received.
    init: Option<Init>,
    pings: VecDeque<OutstandingPing>,
    next_ping_at: Duration,
    /// Start of the current ping-flood window and pongs sent in it.
    pong_window: (Duration, u32),
}

impl Peer {
    pub(super) fn is_ready(&self) -> bool {
        self.init.is_some()
    }

    pub(super) fn info(&self) -> Option<PeerInfo> {
        let init = self.init.as_ref()?;
        Some(PeerInfo {
            node_id: self.node_id,
            direction: self.direction,
            remote_addr: self.remote_addr,
            features: init.combined_features(),
            networks: init.networks.clone(),
        })
    }
}

impl NodeCore {
    /// A handshake completed: BOLT 1 "MUST send `init` as the first Lightning
    /// message for any connection". BOLT 1 also requires a single connection
    /// per peer, so an older connection to the same node is closed.
    pub(super) fn on_connected(
        &mut self,
        now: Duration,
        peer: PeerId,
        node_id: NodeId,
        direction: Direction,
        remote_addr: Option<SocketAddr>,
        out: &mut Vec<Output>,
    ) {
        if let Some(old) = self.peer_by_node(node_id) {
            let existing = &self.peers[&old];
            // Both nodes dialled each other at about the same time: both must
            // keep the same connection, so keep the one dialled by the node
            // with the greater id. A connection older than the window is taken
            // to be stale (the peer restarted) and the new one wins.
            let simultaneous = now.saturating_sub(existing.connected_at)
                < SIMULTANEOUS_CONNECT_WINDOW
                && existing.direction != direction;
            let dialled_by_greater = |d: Direction| match d {
                Direction::Outbound => self.local_id > node_id,
                Direction::Inbound => node_id > self.local_id,
            };
            if simultaneous && dialled_by_greater(existing.direction) {
                out.push(Output::Disconnect {
                    peer,
                    reason: DisconnectReason::Replaced,
                });
                return;
            }
            // The replacement serves any `Connect` waiting for this node.
            let waiting = std::mem::take(&mut self.pending_connects);
            out.push(Output::Disconnect {
                peer: old,
                reason: DisconnectReason::Replaced,
            });
            self.remove_peer(old, out);
            self.pending_connects = waiting;
        }
        if direction == Direction::Inbound {
            let inbound = self
                .peers
                .values()
                .filter(|p| p.direction == Direction::Inbound)
                .count();
            if inbound >= self.config.max_inbound_peers {
                out.push(Output::Disconnect {
                    peer,
                    reason: DisconnectReason::TooManyPeers,
                });
                return;
            }
        }
        // BOLT 1: SHOULD set `remote_addr` on an incoming connection made over
        // IP, and SHOULD NOT set a private address.
        let their_addr = remote_addr
            .filter(|_| direction == Direction::Inbound)
            .map(NetAddress::from)
            .filter(|a| !a.is_private_ip());
        let init = Init {
            global_features: Features::empty(),
            features: self.config.features.clone(),
            networks: Some(vec![self.config.chain]),
            remote_addr: their_addr,
            ..Init::default()
        };
        out.push(Output::Send {
            peer,
            msg: init.into(),
        });
        let jitter = Duration::from_millis(self.next_random() % 1000);
        self.peers.insert(
            peer,
            Peer {
                node_id,
                direction,
                remote_addr,
                connected_at: now,
                init: None,
                pings: VecDeque::new(),
                next_ping_at: now + self.config.ping_interval + jitter,
                pong_window: (now, 0),
            },
        );
    }

    pub(super) fn on_message(
        &mut self,
        now: Duration,
        peer: PeerId,
        bytes: &[u8],
        out: &mut Vec<Output>,
    ) {
        let Some(state) = self.peers.get(&peer) else {
            return;
        };
        let ready = state.is_ready();
        let typ = bytes.get(..2).map(|t| u16::from_be_bytes([t[0], t[1]]));
        if let (true, Some(typ)) = (ready, typ) {
            if CHANNEL_MESSAGES.contains(&typ) {
                return self.on_channel_message(peer, typ, bytes, out);
            }
            if GOSSIP_MESSAGES.contains(&typ) {
                let node = state.node_id;
                if self.channels.is_none() {
                    return; // no graph without channels: gossip is dropped
                }
                let msg = match Message::decode(bytes) {
                    Ok(m) => m,
                    // BOLT 1: a malformed message closes the connection.
                    Err(e) => {
                        return self.protocol_violation(peer, &describe_decode_error(&e), true, out)
                    }
                };
                let Some(c) = &mut self.channels else {
                    return;
                };
                // A channel peer's update for its direction of our channel
                // is kept for route hints; a private one (`dont_forward`)
                // goes no further.
                if let Message::ChannelUpdate(u) = &msg {
                    c.on_peer_update(node, u);
                    if u.message_flags & 2 != 0 {
                        return;
                    }
                }
                return c.on_gossip(node, msg);
            }
        }
        let msg = match Message::decode(bytes) {
            Ok(msg) => msg,
            // BOLT 1: unknown even type, or a known message with insufficient
            // length or an invalid extension: MUST close the connection.
            Err(e) => return self.protocol_violation(peer, &describe_decode_error(&e), ready, out),
        };
        if !ready {
            return match msg {
                Message::Init(init) => self.on_init(peer, init, out),
                // BOLT 1: `init` MUST be the first message. A peer that starts
                // with `warning`/`error` is telling us why; report it first.
                other => {
                    self.report_warning_or_error(peer, &other, out);
                    let text = format!("expected init as the first message, got {}", other.name());
                    self.protocol_violation(peer, &text, false, out)
                }
            };
        }
        match msg {
            Message::Init(_) => self.protocol_violation(peer, "received a second init", true, out),
            Message::Ping(ping) => {
                // BOLT 1: respond with `byteslen` = `num_pong_bytes` if it is
                // below 65532, otherwise ignore the ping; and answer at most
                // `max_pongs_per_interval` pings per interval (flood precaution).
                let interval = self.config.ping_interval;
                let limit = self.config.max_pongs_per_interval;
                let state = self.peers.get_mut(&peer).expect("checked above");
                if now.saturating_sub(state.pong_window.0) >= interval {
                    state.pong_window = (now, 0);
                }
                if let Some(pong) = ping.reply().filter(|_| state.pong_window.1 < limit) {
                    state.pong_window.1 += 1;
                    out.push(Output::Send {
                        peer,
                        msg: pong.into(),
                    });
                }
            }
            Message::Pong(pong) => self.on_pong(now, peer, pong.ignored.len(), out),
            // BOLT 1: a `warning` SHOULD be logged; an `error` fails the named
            // channel(s), and there are none yet, so reporting it is all.
            m @ (Message::Warning(_) | Message::Error(_)) => {
                self.report_warning_or_error(peer, &m, out);
                if let (Message::Error(e), Some(c)) = (&m, &mut self.channels) {
                    c.on_error(self.peers[&peer].node_id, e.channel_id, &e.printable_data());
                }
            }
            // BOLT 1: "upon receiving a message of odd, unknown type: MUST ignore".
            Message::Unknown(_) => {}
            _ => {}
        }
    }

    /// BOLT 1 §"The `init` Message", receiving node.
    fn on_init(&mut self, peer: PeerId, init: Init, out: &mut Vec<Output>) {
        let features = init.combined_features();
        let problem = features
            .check_required_supported(&self.config.features)
            .and_then(|()| features.check_dependencies())
            .err()
            .map(|e| e.to_string())
            .or_else(|| match &init.networks {
                Some(chains) if !chains.contains(&self.config.chain) => {
                    Some(format!("no common chain: we are on {}", self.config.chain))
                }
                _ => None,
            });
        if let Some(text) = problem {
            // We have their init, so a warning may be sent before closing.
            return self.protocol_violation(peer, &text, true, out);
        }
        let state = self
            .peers
            .get_mut(&peer)
            .expect("caller checked the peer exists");
        state.init = Some(init);
        let info = state.info().expect("init was just set");
        let node_id = info.node_id;
        let features = info.features.clone();
        self.answer_pending_connects(node_id, &Reply::Connected(info.clone()), out);
        out.push(Output::Event(Event::PeerReady(info)));
        let dialled = self.peers[&peer].direction == Direction::Outbound;
        let addr = self.peers[&peer].remote_addr;
        self.redial.remove(&node_id);
        if let Some(c) = &mut self.channels {
            if let (true, Some(addr)) = (dialled, addr) {
                c.remember_address(node_id, addr);
            }
            // A feature is in use only when both sides offer it (BOLT 9),
            // e.g. option_simple_close: both must speak it to close with it.
            let mut both = Features::empty();
            for bit in features.bits() {
                let ours = Feature::from_bit(bit).is_some_and(|f| self.config.features.offers(f));
                if ours {
                    both.set(bit);
                }
            }
            c.on_peer_ready(node_id, peer, both);
        }
    }

    fn on_pong(&mut self, now: Duration, peer: PeerId, byteslen: usize, out: &mut Vec<Output>) {
        let state = self
            .peers
            .get_mut(&peer)
            .expect("caller checked the peer exists");
        // Pongs answer pings in order. BOLT 1 allows closing on a pong that
        // matches no ping; we ignore it instead (it costs nothing, and some
        // peers send keepalive pongs).
        let Some(ping) = state.pings.front() else {
            return;
        };
        if usize::from(ping.num_pong_bytes) != byteslen {
            return;
        }
        let ping = state.pings.pop_front().expect("front exists");
        if let Some(id) = ping.command {
            let reply = Reply::Pong {
                byteslen: ping.num_pong_bytes,
                round_trip: now.saturating_sub(ping.sent_at),
            };
            out.push(Output::Reply { id, reply });
        }
    }

    pub(super) fn send_ping(
        &mut self,
        now: Duration,
        peer: PeerId,
        num_pong_bytes: u16,
        command: Option<CommandId>,
        out: &mut Vec<Output>,
    ) {
        // BOLT 1: `ignored` SHOULD be zeros and never secrets; its length varies
        // so pings do not all look alike.
        let byteslen = (self.next_random() % 64) as u16;
        let state = self
            .peers
            .get_mut(&peer)
            .expect("caller checked the peer exists");
        state.pings.push_back(OutstandingPing {
            sent_at: now,
            num_pong_bytes,
            command,
        });
        state.next_ping_at = now + self.config.ping_interval;
        out.push(Output::Send {
            peer,
            msg: Ping::new(num_pong_bytes, byteslen).into(),
        });
    }

    /// Timers: `init` timeout, `pong` timeout, periodic pings.
    pub(super) fn on_tick(&mut self, now: Duration, out: &mut Vec<Output>) {
        let mut expired = Vec::new();
        let mut due = Vec::new();
        for (&id, p) in &self.peers {
            if !p.is_ready() {
                if now.saturating_sub(p.connected_at) >= self.config.init_timeout {
                    expired.push((id, DisconnectReason::InitTimeout));
                }
            } else if p
                .pings
                .front()
                .is_some_and(|ping| now.saturating_sub(ping.sent_at) >= self.config.ping_timeout)
            {
                // BOLT 1: MAY close the connection without a pong, and MUST
                // NOT fail the channels for it.
                expired.push((id, DisconnectReason::PingTimeout));
            } else if p.pings.is_empty() && now >= p.next_ping_at {
                due.push(id);
            }
        }
        for (peer, reason) in expired {
            out.push(Output::Disconnect { peer, reason });
            self.remove_peer(peer, out);
        }
        for peer in due {
            let num_pong_bytes = (self.next_random() % 64) as u16;
            self.send_ping(now, peer, num_pong_bytes, None, out);
        }
    }

    /// Sends a `warning` (only once the peer's `init` arrived: BOLT 1 says a
    /// node MUST wait for `init` before sending anything else) and closes.
    pub(super) fn protocol_violation(
        &mut self,
        peer: PeerId,
        text: &str,
        may_send: bool,
        out: &mut Vec<Output>,
    ) {
        if may_send {
            out.push(Output::Send {
                peer,
                msg: Warning::new(ChannelId::ALL, text).into(),
            });
        }
        out.push(Output::Disconnect {
            peer,
            reason: DisconnectReason::ProtocolViolation(text.to_owned()),
        });
        self.remove_peer(peer, out);
    }

    /// Forgets a connection, failing what waited on it.
    pub(super) fn remove_peer(&mut self, peer: PeerId, out: &mut Vec<Output>) {
        let Some(state) = self.peers.remove(&peer) else {
            return;
        };
        let ready = state.is_ready();
        for ping in state.pings {
            if let Some(id) = ping.command {
                out.push(Output::Reply {
                    id,
                    reply: Reply::failed(
                        FailureKind::NotConnected,
                        "peer disconnected before the pong",
                    ),
                });
            }
        }
        if ready {
            out.push(Output::Event(Event::PeerDisconnected {
                node_id: state.node_id,
            }));
            if let Some(c) = &mut self.channels {
                c.on_peer_gone(state.node_id);
            }
        } else {
            let node_id = state.node_id;
            let reply = Reply::failed(
                FailureKind::ConnectFailed,
                format!("{node_id} disconnected before completing init"),
            );
            self.answer_pending_connects(node_id, &reply, out);
        }
    }
}

impl NodeCore {
    /// Emits the event for a received `warning` or `error`.
    fn report_warning_or_error(&self, peer: PeerId, msg: &Message, out: &mut Vec<Output>) {
        let node_id = self.peers[&peer].node_id;
        match msg {
            Message::Warning(w) => out.push(Output::Event(Event::WarningReceived {
                node_id,
                text: w.printable_data(),
            })),
            Message::Error(e) => out.push(Output::Event(Event::ErrorReceived {
                node_id,
                text: e.printable_data(),
            })),
            _ => {}
        }
    }

    /// A BOLT 2 channel message (types 32-255). We have no channels yet, so
    /// every one refers to an unknown channel: BOLT 1 "SHOULD send `error`
    /// with the unknown `channel_id` in reply to messages of type 32-255
    /// related to unknown channels". Every such message starts with its
    /// `channel_id`, except `open_channel` (32) and `open_channel2` (64), which
    /// start with `chain_hash` and then `temporary_channel_id` (BOLT 2);
    /// without one the message is malformed.
    fn on_channel_message(&mut self, peer: PeerId, typ: u16, bytes: &[u8], out: &mut Vec<Output>) {
        let at = if matches!(typ, 32 | 64) { 34 } else { 2 };
        let Some(id) = bytes.get(at..at + 32) else {
            let text =
                format!("malformed message: channel message type {typ} without a channel_id");
            return self.protocol_violation(peer, &text, true, out);
        };
        let channel_id = ChannelId(id.try_into().expect("sliced to 32 bytes"));
        if self.channels.is_some() {
            let node = self.peers[&peer].node_id;
            let msg = match Message::decode(bytes) {
                Ok(m) => m,
                // BOLT 2: an `open_channel` or `accept_channel` whose keys
                // "are not valid secp256k1 pubkeys in compressed format"
                // fails that channel: an `error` for its
                // temporary_channel_id; the connection stays.
                Err(DecodeError::InvalidPoint) if matches!(typ, 32 | 33) => {
                    if let Some(c) = &mut self.channels {
                        c.on_invalid_open(node, typ, channel_id);
                    }
                    return;
                }
                // BOLT 1: a malformed message closes the connection.
                Err(e) => {
                    return self.protocol_violation(peer, &describe_decode_error(&e), true, out)
                }
            };
            if let Some(c) = &mut self.channels {
                c.on_message(node, channel_id, &msg);
            }
            return;
        }
        let text = format!("unknown channel {channel_id}: this node does not accept channels yet");
        // An all-zero id would mean "all channels"; a warning says the same
        // without asking the peer to fail anything else.
        let msg: Message = if channel_id.is_all() {
            Warning::new(channel_id, &text).into()
        } else {
            ErrorMessage::new(channel_id, &text).into()
        };
        out.push(Output::Send { peer, msg });
    }

    /// Replies to every `Connect` command waiting for `node_id`.
    fn answer_pending_connects(&mut self, node_id: NodeId, reply: &Reply, out: &mut Vec<Output>) {
        let (answered, waiting): (Vec<_>, Vec<_>) = self
            .pending_connects
            .drain(..)
            .partition(|(_, n)| *n == node_id);
        self.pending_connects = waiting;
        for (id, _) in answered {
            out.push(Output::Reply {
                id,
                reply: reply.clone(),
            });
        }
    }
}

fn describe_decode_error(e: &DecodeError) -> String {
    match e {
        DecodeError::UnknownEvenMessage(t) => format!("unknown even message type {t}"),
        other => format!("malformed message: {other}"),
    }
}
