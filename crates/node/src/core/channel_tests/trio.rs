//! Three cores, A — B — C, for forwarding: A pays C's invoice through B,
//! and B is killed (its outputs after a store commit never performed,
//! messages to it lost) after each of its store commits during the
//! payment, then restarted from its store and reconnected. Every time the
//! payment ends settled or failed on all three, with every channel's
//! balances consistent to the msat (SAFETY.md "Killed after `Persist` and
//! before the `Send`s that follow it"; issue 13: "B killed with HTLCs in
//! flight at each step of a forward").

use super::*;

/// An input on its way to a node, and the connection (link, number) a
/// message was sent on.
type Queued = (usize, Input, Option<(usize, u64)>);

const AB: usize = 0;
const BC: usize = 1;

/// A — B — C, each core with its store, two links.
struct Trio {
    cores: Vec<NodeCore>,
    ids: [NodeId; 3],
    stores: [MemStore; 3],
    now: Duration,
    height: u32,
    devnet: Devnet,
    fundings: usize,
    replies: Vec<(usize, Reply)>,
    /// Connections a node closed, and why.
    disconnects: Vec<(usize, String)>,
    /// Each link's connection number (messages of an older one are lost).
    epochs: [u64; 2],
    /// Transactions each node broadcast.
    broadcasts: Vec<(usize, Transaction)>,
    /// Messages of this name C sends are lost.
    c_loses: Option<&'static str>,
    /// B's store commits since the payment started, and the one after
    /// which it is killed.
    b_persists: usize,
    kill_b_after: Option<usize>,
    killed: bool,
}

/// The link a node's peer id belongs to: (link, the other node, its peer
/// id for us).
fn route(node: usize, peer: PeerId) -> Option<(usize, usize, PeerId)> {
    match (node, peer.0) {
        (0, 1) => Some((AB, 1, PeerId(1))),
        (1, 1) => Some((AB, 0, PeerId(1))),
        (1, 2) => Some((BC, 2, PeerId(1))),
        (2, 1) => Some((BC, 1, PeerId(2))),
        _ => None,
    }
}

impl Trio {
    fn new() -> Trio {
        let ks = [keys(1), keys(2), keys(3)];
        let ids = [node_id_of(&ks[0]), node_id_of(&ks[1]), node_id_of(&ks[2])];
        let cores = ks
            .into_iter()
            .zip(ids)
            .map(|(k, id)| restore_core(k, id, &MemStore::new(), 100))
            .collect();
        let mut t = Trio {
            cores,
            ids,
            stores: [MemStore::new(), MemStore::new(), MemStore::new()],
            now: Duration::ZERO,
            height: 100,
            devnet: funded_devnet(),
            fundings: 0,
            replies: Vec::new(),
            disconnects: Vec::new(),
            epochs: [0, 0],
            broadcasts: Vec::new(),
            c_loses: None,
            b_persists: 0,
            kill_b_after: None,
            killed: false,
        };
        t.connect(AB);
        t.connect(BC);
        t
    }

    /// Both ends of `link` connect.
    fn connect(&mut self, link: usize) {
        let (x, px, y, py) = if link == AB {
            (0, PeerId(1), 1, PeerId(1))
        } else {
            (1, PeerId(2), 2, PeerId(1))
        };
        let (ix, iy) = (self.ids[x], self.ids[y]);
        self.run(vec![
            (
                x,
                Input::PeerConnected {
                    peer: px,
                    node_id: iy,
                    direction: Direction::Outbound,
                    remote_addr: None,
                },
            ),
            (
                y,
                Input::PeerConnected {
                    peer: py,
                    node_id: ix,
                    direction: Direction::Inbound,
                    remote_addr: None,
                },
            ),
        ]);
    }

    fn run(&mut self, start: Vec<(usize, Input)>) {
        let mut queue: VecDeque<Queued> = start.into_iter().map(|(n, i)| (n, i, None)).collect();
        let mut steps = 0;
        while let Some((node, input, sent_on)) = queue.pop_front() {
            // A message sent on a connection that closed since is lost.
            if sent_on.is_some_and(|(link, epoch)| self.epochs[link] != epoch) {
                continue;
            }
            steps += 1;
            assert!(steps < 20_000, "no quiescence");
            let outs = self.cores[node].handle(self.now, input);
            check_order(&outs);
            for o in outs {
                match o {
                    Output::Persist(batch) => {
                        apply_batch(&mut self.stores[node], &batch);
                        if node == 1 && self.kill_b_after.is_some() && !self.killed {
                            self.b_persists += 1;
                            if Some(self.b_persists) == self.kill_b_after {
                                self.kill_b(&mut queue);
                                break;
                            }
                        }
                    }
                    Output::Send { msg, .. } if node == 2 && self.c_loses == Some(msg.name()) => {}
                    Output::Broadcast { tx } => self.broadcasts.push((node, tx)),
                    Output::BroadcastPackage { parent, child } => {
                        self.broadcasts.push((node, parent));
                        self.broadcasts.push((node, child));
                    }
                    Output::Send { peer, msg } => {
                        if let Some((link, other, their_peer)) = route(node, peer) {
                            queue.push_back((
                                other,
                                Input::PeerMessage {
                                    peer: their_peer,
                                    bytes: msg.encode().unwrap(),
                                },
                                Some((link, self.epochs[link])),
                            ));
                        }
                    }
                    Output::BuildFunding {
                        node_id,
                        temporary_channel_id,
                        script_pubkey,
                        amount,
                        ..
                    } => {
                        let tx = real_funding(&self.devnet, script_pubkey, amount, self.fundings);
                        self.fundings += 1;
                        queue.push_back((
                            node,
                            Input::FundingBuilt {
                                node_id,
                                temporary_channel_id,
                                result: Ok(tx),
                            },
                            None,
                        ));
                    }
                    Output::Reply { reply, .. } => self.replies.push((node, reply)),
                    Output::Disconnect { peer, reason } => {
                        self.disconnects.push((node, format!("{reason:?}")));
                        if let Some((link, other, their_peer)) = route(node, peer) {
                            self.epochs[link] += 1;
                            queue.push_back((node, Input::PeerDisconnected { peer }, None));
                            queue.push_back((
                                other,
                                Input::PeerDisconnected { peer: their_peer },
                                None,
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// B dies: nothing more of its outputs is performed, messages on their
    /// way to it are lost, its peers see it disconnect; it starts again from
    /// its store, and both links come back.
    fn kill_b(&mut self, queue: &mut VecDeque<Queued>) {
        self.killed = true;
        self.epochs[AB] += 1;
        self.epochs[BC] += 1;
        queue.retain(|(n, _, _)| *n != 1);
        queue.push_back((0, Input::PeerDisconnected { peer: PeerId(1) }, None));
        queue.push_back((2, Input::PeerDisconnected { peer: PeerId(1) }, None));
        self.cores[1] = restore_core(keys(2), self.ids[1], &self.stores[1], self.height);
        let (ia, ib, ic) = (self.ids[0], self.ids[1], self.ids[2]);
        for (node, peer, id, direction) in [
            (0, PeerId(1), ib, Direction::Outbound),
            (1, PeerId(1), ia, Direction::Inbound),
            (1, PeerId(2), ic, Direction::Outbound),
            (2, PeerId(1), ib, Direction::Inbound),
        ] {
            queue.push_back((
                node,
                Input::PeerConnected {
                    peer,
                    node_id: id,
                    direction,
                    remote_addr: None,
                },
                None,
            ));
        }
    }

    fn command(&mut self, node: usize, command: Command) -> Reply {
        let before = self.replies.len();
        let id = CommandId(1 + before as u64);
        self.run(vec![(node, Input::Command { id, command })]);
        self.replies[before..]
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, r)| r.clone())
            .expect("a reply")
    }

    fn block(&mut self, txs: Vec<Transaction>) {
        self.height += 1;
        let mut header = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
        header.time = self.height;
        let block = Arc::new(Block {
            header,
            txdata: txs,
        });
        let h = self.height;
        self.run(
            (0..3)
                .map(|n| {
                    (
                        n,
                        Input::BlockConnected {
                            height: h,
                            block: block.clone(),
                        },
                    )
                })
                .collect(),
        );
    }

    /// `from` opens 1,000,000 sat to `to`; returns the channel id and its
    /// funding transaction (not mined).
    fn open(&mut self, from: usize, to: usize) -> (ChannelId, Transaction) {
        let reply = self.command(
            from,
            Command::OpenChannel {
                node_id: self.ids[to],
                funding: Amount::from_sat(1_000_000),
                push: Msat::ZERO,
            },
        );
        let Reply::ChannelOpened { channel_id, .. } = reply else {
            panic!("{reply:?}")
        };
        let tx = self.cores[from]
            .pending_broadcasts()
            .into_iter()
            .last()
            .expect("the funding");
        (channel_id, tx)
    }

    fn channel(&self, node: usize, id: ChannelId) -> ChannelSummary {
        self.cores[node]
            .channels()
            .into_iter()
            .find(|c| c.channel_id == id)
            .expect("the channel")
    }
}

/// A opens to B, B to C, both mined 3 deep and normal.
fn trio() -> (Trio, ChannelId, ChannelId) {
    let mut t = Trio::new();
    let (ab, fa) = t.open(0, 1);
    let (bc, fb) = t.open(1, 2);
    t.block(vec![fa, fb]);
    t.block(vec![]);
    t.block(vec![]);
    for (n, id) in [(0, ab), (1, ab), (1, bc), (2, bc)] {
        assert_eq!(t.channel(n, id).state, ChannelState::Normal, "{n}");
    }
    (t, ab, bc)
}

/// A pays C's 100,000 sat invoice through B, with B killed after its
/// `kill` th store commit of the payment (`None`: never). Returns how many
/// commits B made, and the outcome.
fn pay_through_b(kill: Option<usize>) -> (usize, bool) {
    let (mut t, ab, bc) = trio();
    let before = [
        t.channel(0, ab).local,
        t.channel(1, ab).local,
        t.channel(1, bc).local,
        t.channel(2, bc).local,
    ];
    let Reply::Invoice { invoice, .. } = t.command(
        2,
        Command::CreateInvoice {
            amount: Some(Msat::from_msat(100_000_000)),
            description: "t".into(),
            expiry_secs: 3600,
            now_secs: 1_700_000_000,
        },
    ) else {
        panic!()
    };
    assert!(
        beongae_invoice::Invoice::decode(&invoice)
            .unwrap()
            .route_hints()
            .count()
            == 1,
        "C's invoice has a route hint through B"
    );
    t.kill_b_after = kill;
    let reply = t.command(
        0,
        Command::Pay {
            invoice,
            amount: None,
            now_secs: 1_700_000_000,
            session_key: SecretKey::from_slice(&[0x44; 32]).unwrap(),
        },
    );
    if let Some(k) = kill.filter(|k| *k != usize::MAX) {
        assert!(t.killed, "B made fewer than {k} commits");
    }
    let settled = matches!(reply, Reply::Paid { .. });
    assert!(
        settled || matches!(reply, Reply::Failed(_)),
        "kill {kill:?}: {reply:?}"
    );
    for (n, id) in [(0, ab), (1, ab), (1, bc), (2, bc)] {
        let c = t.channel(n, id);
        assert_eq!(c.pending_htlcs, 0, "kill {kill:?}: node {n} {c:?}");
        assert!(
            c.active,
            "kill {kill:?}: node {n}: disconnects {:?}",
            t.disconnects
        );
    }
    let after = [
        t.channel(0, ab).local,
        t.channel(1, ab).local,
        t.channel(1, bc).local,
        t.channel(2, bc).local,
    ];
    let moved: Vec<i64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.to_msat() as i64 - b.to_msat() as i64)
        .collect();
    let expected = if settled {
        // 100,000,000 msat to C; B keeps his 1,100 msat.
        vec![-100_001_100, 100_001_100, -100_000_000, 100_000_000]
    } else {
        vec![0, 0, 0, 0]
    };
    assert_eq!(moved, expected, "kill {kill:?}: settled {settled}");
    // Each channel's two sides agree.
    assert_eq!(t.channel(0, ab).remote, after[1], "kill {kill:?}");
    assert_eq!(t.channel(2, bc).remote, after[2], "kill {kill:?}");
    // B's forward says the same (none if it never forwarded).
    let forwards = t.cores[1].forwards();
    match forwards.first() {
        Some(f) => assert_eq!(
            f.status,
            if settled { "settled" } else { "failed" },
            "kill {kill:?}"
        ),
        None => assert!(!settled, "kill {kill:?}"),
    }
    (t.b_persists, settled)
}

/// Without a kill the payment settles (B makes 10 store commits for it);
/// killed after each of them, B is restarted from its store and the
/// payment still settles on A, B and C, every balance to the msat.
#[test]
fn b_killed_at_each_step_of_a_forward_loses_nothing() {
    let (commits, settled) = pay_through_b(Some(usize::MAX));
    assert!(settled);
    assert_eq!(commits, 10);
    let mut outcomes = Vec::new();
    for k in 1..=commits {
        outcomes.push(pay_through_b(Some(k)).1);
    }
    // Killed before it forwarded, the payment fails; after, it settles.
    // Each kill is recovered from: the link and the outgoing HTLC were
    // committed together, so the forward goes on after the restart (the
    // retransmissions of BOLT 2's reestablish) and settles.
    assert!(outcomes.iter().all(|s| *s), "{outcomes:?}");
}

/// SAFETY.md: "A preimage learned anywhere ... reaches every place that
/// needs it, including the upstream HTLC of a forward". C fulfils the
/// forwarded HTLC but its `update_fulfill_htlc` is lost; B forces the
/// channel closed; C claims the HTLC from B's commitment with the preimage
/// on chain; B reads it in C's witness and fulfils A's HTLC at once: A's
/// payment succeeds and B keeps his fee, to the msat.
#[test]
fn a_preimage_revealed_on_chain_downstream_settles_the_upstream_htlc() {
    let (mut t, ab, bc) = trio();
    let before = (t.channel(0, ab).local, t.channel(1, ab).local);
    let Reply::Invoice { invoice, .. } = t.command(
        2,
        Command::CreateInvoice {
            amount: Some(Msat::from_msat(100_000_000)),
            description: "t".into(),
            expiry_secs: 3600,
            now_secs: 1_700_000_000,
        },
    ) else {
        panic!()
    };
    t.c_loses = Some("UpdateFulfillHtlc");
    let pay = CommandId(900);
    t.run(vec![(
        0,
        Input::Command {
            id: pay,
            command: Command::Pay {
                invoice,
                amount: None,
                now_secs: 1_700_000_000,
                session_key: SecretKey::from_slice(&[0x45; 32]).unwrap(),
            },
        },
    )]);
    assert!(!t
        .replies
        .iter()
        .any(|(n, r)| *n == 0 && matches!(r, Reply::Paid { .. })));
    assert_eq!(t.cores[1].forwards()[0].status, "pending");
    // B forces the channel to C closed; its commitment confirms.
    let Reply::ChannelClosed { txid, .. } =
        t.command(1, Command::ForceCloseChannel { channel_id: bc })
    else {
        panic!()
    };
    let commitment = t
        .broadcasts
        .iter()
        .find(|(n, tx)| *n == 1 && tx.compute_txid() == txid)
        .map(|(_, tx)| tx.clone())
        .expect("B's commitment");
    let since = t.broadcasts.len();
    t.block(vec![commitment.clone()]);
    // C claims the HTLC with the preimage, straight from B's commitment.
    let claim = t.broadcasts[since..]
        .iter()
        .find(|(n, tx)| {
            *n == 2
                && tx.input.iter().any(|i| {
                    i.previous_output.txid == commitment.compute_txid()
                        && commitment.output[i.previous_output.vout as usize].value
                            == Amount::from_sat(100_000)
                })
        })
        .map(|(_, tx)| tx.clone())
        .unwrap_or_else(|| panic!("C's claim with the preimage: {:?}", &t.broadcasts[since..]));
    t.block(vec![claim]);
    // B learned the preimage on chain and fulfilled A at once.
    let paid = t
        .replies
        .iter()
        .any(|(n, r)| *n == 0 && matches!(r, Reply::Paid { .. }));
    assert!(paid, "{:?}", t.replies);
    assert_eq!(t.cores[1].forwards()[0].status, "settled");
    let after = (t.channel(0, ab).local, t.channel(1, ab).local);
    assert_eq!(before.0.to_msat() - after.0.to_msat(), 100_001_100);
    assert_eq!(after.1.to_msat() - before.1.to_msat(), 100_001_100);
    assert_eq!(t.channel(0, ab).pending_htlcs, 0);
}
