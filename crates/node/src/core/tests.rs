//! Core tests, per phase: connection and `init`, messages once ready, timers, commands.

use super::*;
use beongae_wire::Feature;
use beongae_wire::{
    ChannelId, ErrorMessage, Init, Message, NetAddress, Ping, Pong, UnknownMessage, Warning,
};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};

fn node_id(b: u8) -> NodeId {
    let secp = Secp256k1::signing_only();
    NodeId::from_pubkey(PublicKey::from_secret_key(
        &secp,
        &SecretKey::from_slice(&[b; 32]).unwrap(),
    ))
}

const P: PeerId = PeerId(7);
const SEC: Duration = Duration::from_secs(1);

struct Harness {
    core: NodeCore,
    now: Duration,
}

impl Harness {
    fn new() -> Self {
        Harness {
            core: NodeCore::new(node_id(1), CoreConfig::new(ChainHash::REGTEST)),
            now: Duration::ZERO,
        }
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.core.handle(self.now, input)
    }

    fn connect(&mut self, peer: PeerId, who: NodeId, direction: Direction) -> Vec<Output> {
        let addr = Some("203.0.113.5:9735".parse().unwrap());
        self.input(Input::PeerConnected {
            peer,
            node_id: who,
            direction,
            remote_addr: addr,
        })
    }

    fn recv(&mut self, peer: PeerId, msg: impl Into<Message>) -> Vec<Output> {
        self.input(Input::PeerMessage {
            peer,
            bytes: msg.into().encode().unwrap(),
        })
    }

    fn recv_bytes(&mut self, peer: PeerId, bytes: &[u8]) -> Vec<Output> {
        self.input(Input::PeerMessage {
            peer,
            bytes: bytes.to_vec(),
        })
    }

    /// Connects peer `P` (node 2) and delivers its `init`.
    fn offer_init(&mut self, init: Init) -> Vec<Output> {
        self.connect(P, node_id(2), Direction::Outbound);
        self.recv(P, init)
    }

    /// Connected and `init` exchanged with a plain peer.
    fn ready(&mut self) {
        let out = self.offer_init(their_init());
        assert!(
            matches!(out.as_slice(), [Output::Event(Event::PeerReady(_))]),
            "{out:?}"
        );
    }

    fn advance(&mut self, d: Duration) -> Vec<Output> {
        self.now += d;
        self.input(Input::Tick)
    }
}

fn their_init() -> Init {
    Init {
        features: default_features(),
        networks: Some(vec![ChainHash::REGTEST]),
        ..Init::default()
    }
}

fn warning_then_disconnect(out: &[Output], text: &str) {
    let expected = [
        Output::Send {
            peer: P,
            msg: Warning::new(ChannelId::ALL, text).into(),
        },
        Output::Disconnect {
            peer: P,
            reason: DisconnectReason::ProtocolViolation(text.into()),
        },
    ];
    assert_eq!(out[..2], expected[..], "{out:?}");
}

// ------------------------------------------------------------ connection and init

#[test]
fn init_is_sent_first_with_features_networks_and_public_remote_addr() {
    let mut h = Harness::new();
    let out = h.connect(P, node_id(2), Direction::Inbound);
    let expected = Init {
        features: default_features(),
        networks: Some(vec![ChainHash::REGTEST]),
        remote_addr: Some(NetAddress::Ipv4 {
            addr: [203, 0, 113, 5].into(),
            port: 9735,
        }),
        ..Init::default()
    };
    assert_eq!(
        out,
        vec![Output::Send {
            peer: P,
            msg: expected.into()
        }]
    );
    // Exactly the bits 1, 7, 9, 13, 15, 23, 27, 45, 47, 61.
    assert_eq!(
        default_features().to_be_bytes(),
        hex::decode("2000a0000880a282").unwrap()
    );
}

#[test]
fn remote_addr_is_omitted_when_private_or_outbound() {
    let mut h = Harness::new();
    let out = h.input(Input::PeerConnected {
        peer: P,
        node_id: node_id(2),
        direction: Direction::Inbound,
        remote_addr: Some("127.0.0.1:5000".parse().unwrap()),
    });
    let Output::Send {
        msg: Message::Init(init),
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(init.remote_addr, None);
    let out = h.connect(PeerId(8), node_id(3), Direction::Outbound);
    let Output::Send {
        msg: Message::Init(init),
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(init.remote_addr, None);
}

#[test]
fn peer_ready_after_init_and_listed() {
    let mut h = Harness::new();
    h.ready();
    let peers = h.core.peers();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].node_id, node_id(2));
    assert_eq!(peers[0].features, default_features());
    assert_eq!(peers[0].networks, Some(vec![ChainHash::REGTEST]));
}

#[test]
fn global_and_local_features_are_combined() {
    let mut h = Harness::new();
    h.connect(P, node_id(2), Direction::Outbound);
    let init = Init {
        global_features: Features::empty().with_optional(Feature::DataLossProtect),
        features: Features::empty().with_optional(Feature::PaymentSecret),
        ..Init::default()
    };
    h.recv(P, init);
    let expected = Features::empty()
        .with_optional(Feature::DataLossProtect)
        .with_optional(Feature::PaymentSecret);
    assert_eq!(h.core.peers()[0].features, expected);
}

#[test]
fn unknown_required_feature_closes_the_connection() {
    let mut h = Harness::new();
    h.connect(P, node_id(2), Direction::Outbound);
    let mut features = default_features();
    features.set(200);
    let out = h.recv(
        P,
        Init {
            features,
            ..their_init()
        },
    );
    warning_then_disconnect(
        &out,
        "peer requires feature bit 200 (unknown) which we do not support",
    );
    assert!(h.core.peers().is_empty());
}

#[test]
fn known_but_unsupported_required_feature_closes_the_connection() {
    let mut h = Harness::new();
    let out = h.offer_init(Init {
        features: default_features().with_required(Feature::ZeroConf),
        ..their_init()
    });
    warning_then_disconnect(
        &out,
        "peer requires feature bit 50 (option_zeroconf) which we do not support",
    );
}

#[test]
fn unknown_odd_feature_is_ignored() {
    let mut h = Harness::new();
    h.connect(P, node_id(2), Direction::Outbound);
    let mut features = default_features();
    features.set(201);
    let out = h.recv(
        P,
        Init {
            features,
            ..their_init()
        },
    );
    assert!(matches!(
        out.as_slice(),
        [Output::Event(Event::PeerReady(_))]
    ));
}

#[test]
fn missing_feature_dependency_closes_the_connection() {
    let mut h = Harness::new();
    let out = h.offer_init(Init {
        features: Features::empty().with_optional(Feature::BasicMpp),
        ..their_init()
    });
    warning_then_disconnect(
        &out,
        "feature basic_mpp is set without its dependency payment_secret",
    );
}

#[test]
fn no_common_chain_closes_and_absent_networks_is_fine() {
    let mut h = Harness::new();
    let out = h.offer_init(Init {
        networks: Some(vec![ChainHash::BITCOIN]),
        ..their_init()
    });
    let text = format!("no common chain: we are on {}", ChainHash::REGTEST);
    warning_then_disconnect(&out, &text);

    let out = h.offer_init(Init {
        networks: None,
        ..their_init()
    });
    assert!(matches!(
        out.as_slice(),
        [Output::Event(Event::PeerReady(_))]
    ));
}

#[test]
fn first_message_must_be_init_and_nothing_is_sent_before_it() {
    let mut h = Harness::new();
    h.connect(P, node_id(2), Direction::Outbound);
    let out = h.recv(P, Ping::new(1, 0));
    assert_eq!(
        out,
        vec![Output::Disconnect {
            peer: P,
            reason: DisconnectReason::ProtocolViolation(
                "expected init as the first message, got Ping".into()
            )
        }]
    );
}

#[test]
fn later_connection_replaces_a_stale_one() {
    let mut h = Harness::new();
    h.ready();
    // Long after the first connection: the peer restarted and dialled again.
    h.now += Duration::from_secs(6);
    let out = h.connect(PeerId(9), node_id(2), Direction::Inbound);
    assert_eq!(
        out[0],
        Output::Disconnect {
            peer: P,
            reason: DisconnectReason::Replaced
        }
    );
    assert_eq!(
        out[1],
        Output::Event(Event::PeerDisconnected {
            node_id: node_id(2)
        })
    );
    assert!(matches!(
        out[2],
        Output::Send {
            peer: PeerId(9),
            msg: Message::Init(_)
        }
    ));
}

/// Both nodes dial each other at once: each sees two connections, in opposite
/// directions, and both must keep the same one (the one dialled by the node
/// with the greater id), whatever order the handshakes complete in.
#[test]
fn simultaneous_connect_keeps_the_same_connection_on_both_sides() {
    let (a_id, b_id) = (node_id(1), node_id(2));
    let greater = a_id.max(b_id);
    // Connection X is dialled by A, connection Y by B.
    for a_sees_x_first in [true, false] {
        for b_sees_x_first in [true, false] {
            let mut a = NodeCore::new(a_id, CoreConfig::new(ChainHash::REGTEST));
            let mut b = NodeCore::new(b_id, CoreConfig::new(ChainHash::REGTEST));
            let (x, y) = (PeerId(1), PeerId(2));
            let conn = |peer, node_id, direction| Input::PeerConnected {
                peer,
                node_id,
                direction,
                remote_addr: None,
            };
            let dropped_by = |core: &mut NodeCore, inputs: [Input; 2]| {
                let mut dropped = Vec::new();
                for i in inputs {
                    for o in core.handle(Duration::ZERO, i) {
                        if let Output::Disconnect {
                            peer,
                            reason: DisconnectReason::Replaced,
                        } = o
                        {
                            dropped.push(peer);
                        }
                    }
                }
                dropped
            };
            let a_inputs = [
                conn(x, b_id, Direction::Outbound),
                conn(y, b_id, Direction::Inbound),
            ];
            let a_inputs = if a_sees_x_first {
                a_inputs
            } else {
                [a_inputs[1].clone(), a_inputs[0].clone()]
            };
            let b_inputs = [
                conn(x, a_id, Direction::Inbound),
                conn(y, a_id, Direction::Outbound),
            ];
            let b_inputs = if b_sees_x_first {
                b_inputs
            } else {
                [b_inputs[1].clone(), b_inputs[0].clone()]
            };
            let a_dropped = dropped_by(&mut a, a_inputs);
            let b_dropped = dropped_by(&mut b, b_inputs);
            let expected_drop = if greater == a_id { y } else { x };
            assert_eq!(
                a_dropped,
                vec![expected_drop],
                "A, x first: {a_sees_x_first}"
            );
            assert_eq!(
                b_dropped,
                vec![expected_drop],
                "B, x first: {b_sees_x_first}"
            );
        }
    }
}

#[test]
fn inbound_connections_are_capped() {
    let mut h = Harness::new();
    h.core = NodeCore::new(
        node_id(1),
        CoreConfig {
            max_inbound_peers: 2,
            ..CoreConfig::new(ChainHash::REGTEST)
        },
    );
    h.connect(PeerId(1), node_id(2), Direction::Inbound);
    h.connect(PeerId(2), node_id(3), Direction::Inbound);
    let out = h.connect(PeerId(3), node_id(4), Direction::Inbound);
    assert_eq!(
        out,
        vec![Output::Disconnect {
            peer: PeerId(3),
            reason: DisconnectReason::TooManyPeers
        }]
    );
    // Outbound connections are ours to make and not capped.
    let out = h.connect(PeerId(4), node_id(5), Direction::Outbound);
    assert!(matches!(
        out.as_slice(),
        [Output::Send {
            msg: Message::Init(_),
            ..
        }]
    ));
}

// ------------------------------------------------------------ messages once ready

#[test]
fn channel_messages_get_an_error_for_the_unknown_channel() {
    let mut h = Harness::new();
    h.ready();
    let mut msg = vec![0x00, 0x88]; // channel_reestablish (136)
    msg.extend_from_slice(&[0xab; 32]);
    msg.extend_from_slice(&[0; 16]);
    let out = h.recv_bytes(P, &msg);
    let text = format!(
        "unknown channel {}: this node does not accept channels yet",
        ChannelId([0xab; 32])
    );
    assert_eq!(
        out,
        vec![Output::Send {
            peer: P,
            msg: ErrorMessage::new(ChannelId([0xab; 32]), &text).into()
        }]
    );
    // Odd channel messages too (closing_signed, 39).
    let mut msg = vec![0x00, 0x27];
    msg.extend_from_slice(&[0x01; 40]);
    let out = h.recv_bytes(P, &msg);
    assert!(
        matches!(
            out.as_slice(),
            [Output::Send {
                msg: Message::Error(_),
                ..
            }]
        ),
        "{out:?}"
    );
    // All-zero channel id: a warning, not an error for "all channels".
    let mut msg = vec![0x00, 0x84];
    msg.extend_from_slice(&[0; 40]);
    let out = h.recv_bytes(P, &msg);
    assert!(
        matches!(
            out.as_slice(),
            [Output::Send {
                msg: Message::Warning(_),
                ..
            }]
        ),
        "{out:?}"
    );
    // open_channel (32) carries chain_hash first, then temporary_channel_id.
    let mut msg = vec![0x00, 0x20];
    msg.extend_from_slice(&[0x06; 32]);
    msg.extend_from_slice(&[0xcd; 32]);
    msg.extend_from_slice(&[0; 200]);
    let out = h.recv_bytes(P, &msg);
    let Output::Send {
        msg: Message::Error(e),
        ..
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(e.channel_id, ChannelId([0xcd; 32]));
    // Too short to carry a channel id: malformed, closed.
    let out = h.recv_bytes(P, &[0x00, 0x20, 1, 2, 3]);
    warning_then_disconnect(
        &out,
        "malformed message: channel message type 32 without a channel_id",
    );
}

#[test]
fn gossip_is_dropped_without_closing() {
    let mut h = Harness::new();
    h.ready();
    for typ in [256u16, 257, 258, 264] {
        let mut msg = typ.to_be_bytes().to_vec();
        msg.extend_from_slice(&[7; 100]);
        assert_eq!(h.recv_bytes(P, &msg), vec![], "type {typ}");
    }
    assert_eq!(h.core.peers().len(), 1);
    // An unassigned even type in the gossip range still closes.
    let out = h.recv_bytes(P, &[0x01, 0xfe]);
    warning_then_disconnect(&out, "unknown even message type 510");
}

#[test]
fn ping_flood_is_limited() {
    let mut h = Harness::new();
    h.ready();
    let answered = (0..40)
        .filter(|_| !h.recv(P, Ping::new(65531, 0)).is_empty())
        .count();
    assert_eq!(answered, 32);
    // A new window answers again.
    h.now += Duration::from_secs(30);
    assert_eq!(
        h.recv(P, Ping::new(1, 0)),
        vec![Output::Send {
            peer: P,
            msg: Pong::new(1).into()
        }]
    );
}

#[test]
fn warning_before_init_is_reported_then_closed() {
    let mut h = Harness::new();
    h.connect(P, node_id(2), Direction::Outbound);
    let out = h.recv(P, Warning::new(ChannelId::ALL, "go away"));
    assert_eq!(
        out[0],
        Output::Event(Event::WarningReceived {
            node_id: node_id(2),
            text: "go away".into()
        })
    );
    assert!(matches!(out[1], Output::Disconnect { .. }));
}

#[test]
fn ping_gets_pong_of_requested_length() {
    let mut h = Harness::new();
    h.ready();
    let out = h.recv(P, Ping::new(300, 12));
    assert_eq!(
        out,
        vec![Output::Send {
            peer: P,
            msg: Pong::new(300).into()
        }]
    );
    let out = h.recv(P, Ping::new(65531, 0));
    assert_eq!(
        out,
        vec![Output::Send {
            peer: P,
            msg: Pong::new(65531).into()
        }]
    );
    // BOLT 1: num_pong_bytes >= 65532 MUST be ignored.
    assert_eq!(h.recv(P, Ping::new(65532, 0)), vec![]);
}

#[test]
fn unknown_odd_message_is_ignored_and_even_closes() {
    let mut h = Harness::new();
    h.ready();
    let odd = UnknownMessage {
        typ: 32769,
        payload: vec![1, 2, 3],
    };
    assert_eq!(h.recv(P, Message::Unknown(odd)), vec![]);
    let out = h.recv_bytes(P, &[0x80, 0x00, 1, 2]);
    warning_then_disconnect(&out, "unknown even message type 32768");
    assert_eq!(
        out[2],
        Output::Event(Event::PeerDisconnected {
            node_id: node_id(2)
        })
    );
}

#[test]
fn malformed_message_closes_with_a_warning() {
    let mut h = Harness::new();
    h.ready();
    // A ping claiming 5 ignored bytes but carrying 1.
    let out = h.recv_bytes(P, &[0x00, 0x12, 0x00, 0x01, 0x00, 0x05, 0x00]);
    warning_then_disconnect(
        &out,
        "malformed message: unexpected end of input: needed 4 more bytes",
    );
}

#[test]
fn second_init_closes() {
    let mut h = Harness::new();
    h.ready();
    warning_then_disconnect(&h.recv(P, their_init()), "received a second init");
}

#[test]
fn warning_and_error_are_reported_safely() {
    let mut h = Harness::new();
    h.ready();
    let out = h.recv(P, Warning::new(ChannelId::ALL, "careful"));
    assert_eq!(
        out,
        vec![Output::Event(Event::WarningReceived {
            node_id: node_id(2),
            text: "careful".into()
        })]
    );
    let e = ErrorMessage {
        channel_id: ChannelId::ALL,
        data: vec![0x1b, b'x'],
        extension: Default::default(),
    };
    let out = h.recv(P, e);
    assert_eq!(
        out,
        vec![Output::Event(Event::ErrorReceived {
            node_id: node_id(2),
            text: "hex:1b78".into()
        })]
    );
}

// ------------------------------------------------------------ timers

#[test]
fn periodic_ping_and_timeout() {
    let mut h = Harness::new();
    h.ready();
    assert_eq!(h.advance(29 * SEC), vec![]);
    let out = h.advance(2 * SEC);
    let [Output::Send {
        peer: P,
        msg: Message::Ping(ping),
    }] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    assert!(
        ping.num_pong_bytes < 64 && ping.ignored.len() < 64 && ping.ignored.iter().all(|b| *b == 0)
    );
    let asked = ping.num_pong_bytes;

    // Answered: no disconnect, next ping after another interval.
    assert_eq!(h.recv(P, Pong::new(asked)), vec![]);
    assert_eq!(h.advance(25 * SEC), vec![]);
    let out = h.advance(6 * SEC);
    assert!(
        matches!(
            out.as_slice(),
            [Output::Send {
                msg: Message::Ping(_),
                ..
            }]
        ),
        "{out:?}"
    );

    // Not answered: dropped after the timeout, and the channels (none yet) kept.
    assert_eq!(h.advance(19 * SEC), vec![]);
    let out = h.advance(SEC);
    assert_eq!(
        out[0],
        Output::Disconnect {
            peer: P,
            reason: DisconnectReason::PingTimeout
        }
    );
    assert_eq!(
        out[1],
        Output::Event(Event::PeerDisconnected {
            node_id: node_id(2)
        })
    );
}

#[test]
fn pong_of_wrong_length_does_not_count() {
    let mut h = Harness::new();
    h.ready();
    let out = h.advance(31 * SEC);
    let [Output::Send {
        msg: Message::Ping(ping),
        ..
    }] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    let wrong = ping.num_pong_bytes + 1;
    assert_eq!(h.recv(P, Pong::new(wrong)), vec![]);
    let out = h.advance(20 * SEC);
    assert_eq!(
        out[0],
        Output::Disconnect {
            peer: P,
            reason: DisconnectReason::PingTimeout
        }
    );
}

#[test]
fn init_timeout() {
    let mut h = Harness::new();
    h.connect(P, node_id(2), Direction::Outbound);
    assert_eq!(h.advance(29 * SEC), vec![]);
    assert_eq!(
        h.advance(SEC),
        vec![Output::Disconnect {
            peer: P,
            reason: DisconnectReason::InitTimeout
        }]
    );
}

// ------------------------------------------------------------ commands

#[test]
fn connect_command_dials_and_replies_once_ready() {
    let mut h = Harness::new();
    let addr: SocketAddr = "127.0.0.1:9735".parse().unwrap();
    let id = CommandId(1);
    let out = h.input(Input::Command {
        id,
        command: Command::Connect {
            node_id: node_id(2),
            addr,
        },
    });
    assert_eq!(
        out,
        vec![Output::Dial {
            id,
            node_id: node_id(2),
            addr
        }]
    );
    let out = h.offer_init(their_init());
    let Output::Reply {
        id: CommandId(1),
        reply: Reply::Connected(info),
    } = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(info.node_id, node_id(2));
    // Already connected: immediate reply, no dial.
    let out = h.input(Input::Command {
        id: CommandId(2),
        command: Command::Connect {
            node_id: node_id(2),
            addr,
        },
    });
    assert!(matches!(
        out.as_slice(),
        [Output::Reply {
            reply: Reply::Connected(_),
            ..
        }]
    ));
}

#[test]
fn connect_failures_are_replied() {
    let mut h = Harness::new();
    let addr: SocketAddr = "127.0.0.1:9735".parse().unwrap();
    h.input(Input::Command {
        id: CommandId(1),
        command: Command::Connect {
            node_id: node_id(2),
            addr,
        },
    });
    let out = h.input(Input::DialFailed {
        id: CommandId(1),
        reason: "connection refused".into(),
    });
    assert_eq!(
        out,
        vec![Output::Reply {
            id: CommandId(1),
            reply: Reply::failed(FailureKind::ConnectFailed, "connection refused")
        }]
    );

    h.input(Input::Command {
        id: CommandId(2),
        command: Command::Connect {
            node_id: node_id(2),
            addr,
        },
    });
    h.connect(P, node_id(2), Direction::Outbound);
    let out = h.input(Input::PeerDisconnected { peer: P });
    let text = format!("{} disconnected before completing init", node_id(2));
    assert_eq!(
        out,
        vec![Output::Reply {
            id: CommandId(2),
            reply: Reply::failed(FailureKind::ConnectFailed, text)
        }]
    );

    let out = h.input(Input::Command {
        id: CommandId(3),
        command: Command::Connect {
            node_id: node_id(1),
            addr,
        },
    });
    assert_eq!(
        out,
        vec![Output::Reply {
            id: CommandId(3),
            reply: Reply::failed(FailureKind::Refused, "cannot connect to ourselves")
        }]
    );
}

#[test]
fn ping_command_refuses_lengths_a_peer_must_ignore() {
    let mut h = Harness::new();
    h.ready();
    let out = h.input(Input::Command {
        id: CommandId(1),
        command: Command::Ping {
            node_id: node_id(2),
            num_pong_bytes: 65532,
        },
    });
    let why =
        "num_pong_bytes must be at most 65531: BOLT 1 says a peer ignores a ping asking for more";
    assert_eq!(
        out,
        vec![Output::Reply {
            id: CommandId(1),
            reply: Reply::failed(FailureKind::Refused, why)
        }]
    );
}

#[test]
fn ping_command_replies_with_round_trip() {
    let mut h = Harness::new();
    h.ready();
    let out = h.input(Input::Command {
        id: CommandId(5),
        command: Command::Ping {
            node_id: node_id(2),
            num_pong_bytes: 100,
        },
    });
    let [Output::Send {
        msg: Message::Ping(ping),
        ..
    }] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    assert_eq!(ping.num_pong_bytes, 100);
    h.now += Duration::from_millis(42);
    let out = h.recv(P, Pong::new(100));
    assert_eq!(
        out,
        vec![Output::Reply {
            id: CommandId(5),
            reply: Reply::Pong {
                byteslen: 100,
                round_trip: Duration::from_millis(42)
            }
        }]
    );
    let out = h.input(Input::Command {
        id: CommandId(6),
        command: Command::Ping {
            node_id: node_id(3),
            num_pong_bytes: 1,
        },
    });
    let text = format!("not connected to {}", node_id(3));
    assert_eq!(
        out,
        vec![Output::Reply {
            id: CommandId(6),
            reply: Reply::failed(FailureKind::NotConnected, text)
        }]
    );
}

#[test]
fn disconnect_command() {
    let mut h = Harness::new();
    h.ready();
    let out = h.input(Input::Command {
        id: CommandId(1),
        command: Command::Disconnect {
            node_id: node_id(2),
        },
    });
    assert_eq!(
        out,
        vec![
            Output::Disconnect {
                peer: P,
                reason: DisconnectReason::Requested
            },
            Output::Event(Event::PeerDisconnected {
                node_id: node_id(2)
            }),
            Output::Reply {
                id: CommandId(1),
                reply: Reply::Disconnected {
                    was_connected: true
                }
            },
        ]
    );
    // Late input from the closed connection is ignored.
    assert_eq!(h.recv(P, Ping::new(1, 0)), vec![]);
    assert_eq!(h.input(Input::PeerDisconnected { peer: P }), vec![]);
}

#[test]
fn random_bytes_from_a_peer_never_panic() {
    let mut h = Harness::new();
    h.ready();
    let mut x: u64 = 0x1234_5678;
    for _ in 0..5000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 40) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|j| (x >> (j % 8 * 8)) as u8 ^ j as u8)
            .collect();
        let out = h.recv_bytes(P, &bytes);
        // Either the input was acceptable and the peer stays, or the peer is
        // closed with a reason; never both, never a panic.
        let closed = out
            .iter()
            .any(|o| matches!(o, Output::Disconnect { peer: P, .. }));
        assert_eq!(h.core.peers().is_empty(), closed, "{bytes:02x?} -> {out:?}");
        if h.core.peers().is_empty() {
            h.ready();
        }
    }
}
