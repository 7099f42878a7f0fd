//! Cores linked in any shape (a [`Mesh`]), for forwarding. Three of them,
//! A — B — C: A pays C's invoice through B, and B is killed (its outputs
//! after a store commit never performed, messages to it lost) after each
//! of its store commits during the payment, then restarted from its store
//! and reconnected; every time the payment ends alike on all three, every
//! balance to the msat (SAFETY.md "Killed after `Persist` and before the
//! `Send`s that follow it"; issue 13: "B killed with HTLCs in flight at
//! each step of a forward"). And a random network of ten, where every msat
//! is accounted for.

use super::*;

/// An input on its way to a node, and the connection (link, number) a
/// message was sent on.
type Queued = (usize, Input, Option<(usize, u64)>);

/// Changes a message node `usize` sends.
type Tamper = Box<dyn FnMut(usize, &mut Message)>;

/// A connection between two nodes: each end's node and peer id.
#[derive(Clone, Copy)]
struct Link {
    a: usize,
    pa: PeerId,
    b: usize,
    pb: PeerId,
}

/// Cores linked in any shape, each with its store; node `i` has the keys
/// of `keys(i + 1)`.
pub(super) struct Mesh {
    cores: Vec<NodeCore>,
    ids: Vec<NodeId>,
    stores: Vec<MemStore>,
    links: Vec<Link>,
    now: Duration,
    height: u32,
    devnet: Devnet,
    fundings: usize,
    replies: Vec<(usize, Reply)>,
    /// Connections a node closed, and why.
    disconnects: Vec<(usize, String)>,
    /// Each link's connection number (messages of an older one are lost).
    epochs: Vec<u64>,
    /// Transactions each node broadcast.
    broadcasts: Vec<(usize, Transaction)>,
    /// Messages of this name (`*`: all) this node sends are lost.
    loses: Option<(usize, &'static str)>,
    /// Changes a message a node sends on its way (a broken or hostile
    /// sender).
    tamper: Option<Tamper>,
    /// The node killed after its `.1` th store commit (counted from when
    /// this is set), and the commits counted.
    kill_after: Option<(usize, usize)>,
    persists: usize,
    killed: bool,
    /// Blocks mined, by height (what funding lookups read).
    blocks: BTreeMap<u32, Arc<Block>>,
    /// The next peer id of each node's connections.
    next_peer: Vec<u64>,
    /// Funding lookups answered.
    lookups: usize,
    /// Each node's settings (what a restart uses).
    settings: Vec<ChannelSettings>,
    /// When kept: every step's node and outputs, as `Debug` prints them.
    trace: Option<Vec<String>>,
}

impl Mesh {
    /// `n` nodes, linked (connected) by `links`.
    fn new(n: usize, links: &[(usize, usize)]) -> Mesh {
        let ids: Vec<NodeId> = (0..n).map(|i| node_id_of(&keys(i as u8 + 1))).collect();
        let cores = (0..n)
            .map(|i| restore_core(keys(i as u8 + 1), ids[i], &MemStore::new(), 100))
            .collect();
        let mut next = vec![1u64; n];
        let links: Vec<Link> = links
            .iter()
            .map(|&(a, b)| {
                let l = Link {
                    a,
                    pa: PeerId(next[a]),
                    b,
                    pb: PeerId(next[b]),
                };
                next[a] += 1;
                next[b] += 1;
                l
            })
            .collect();
        let mut m = Mesh {
            cores,
            ids,
            stores: vec![MemStore::new(); n],
            epochs: vec![0; links.len()],
            links,
            now: Duration::ZERO,
            height: 100,
            devnet: funded_devnet(),
            fundings: 0,
            replies: Vec::new(),
            disconnects: Vec::new(),
            broadcasts: Vec::new(),
            loses: None,
            tamper: None,
            kill_after: None,
            persists: 0,
            killed: false,
            blocks: BTreeMap::new(),
            next_peer: next,
            lookups: 0,
            settings: vec![settings(); n],
            trace: None,
        };
        let start: Vec<(usize, Input)> = (0..m.links.len())
            .flat_map(|l| m.connect_inputs(l))
            .collect();
        m.run(start);
        m
    }

    /// The inputs of both ends of `link` connecting.
    fn connect_inputs(&self, link: usize) -> [(usize, Input); 2] {
        let l = self.links[link];
        [
            (
                l.a,
                Input::PeerConnected {
                    peer: l.pa,
                    node_id: self.ids[l.b],
                    direction: Direction::Outbound,
                    remote_addr: None,
                },
            ),
            (
                l.b,
                Input::PeerConnected {
                    peer: l.pb,
                    node_id: self.ids[l.a],
                    direction: Direction::Inbound,
                    remote_addr: None,
                },
            ),
        ]
    }

    /// The link a node's peer id belongs to: (link, the other node, its
    /// peer id there).
    fn route(&self, node: usize, peer: PeerId) -> Option<(usize, usize, PeerId)> {
        self.links.iter().enumerate().find_map(|(i, l)| {
            if l.a == node && l.pa == peer {
                Some((i, l.b, l.pb))
            } else if l.b == node && l.pb == peer {
                Some((i, l.a, l.pa))
            } else {
                None
            }
        })
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
            assert!(steps < 200_000, "no quiescence");
            let outs = self.cores[node].handle(self.now, input);
            check_order(&outs);
            if let Some(t) = &mut self.trace {
                t.push(format!("{node}: {outs:?}"));
            }
            for o in outs {
                match o {
                    Output::Persist(batch) => {
                        batch.apply_to(&mut self.stores[node]);
                        if let Some((victim, k)) = self.kill_after.filter(|_| !self.killed) {
                            if node == victim {
                                self.persists += 1;
                                if self.persists == k {
                                    self.kill(node, &mut queue);
                                    break;
                                }
                            }
                        }
                    }
                    Output::Send { msg, .. }
                        if self.loses.is_some_and(|(n, name)| {
                            n == node && (name == "*" || name == msg.name())
                        }) => {}
                    Output::Broadcast { tx } => self.broadcasts.push((node, tx)),
                    Output::BroadcastPackage { parent, child } => {
                        self.broadcasts.push((node, parent));
                        self.broadcasts.push((node, child));
                    }
                    Output::Send { peer, mut msg } => {
                        if let Some(t) = &mut self.tamper {
                            t(node, &mut msg);
                        }
                        if let Some((link, other, their_peer)) = self.route(node, peer) {
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
                    // The connection "wrote" what was sent before: it is
                    // queued ahead of this.
                    Output::NotifyDrained { peer } => {
                        queue.push_back((node, Input::PeerDrained { peer }, None));
                    }
                    Output::LookupFunding { scids } => {
                        self.lookups += scids.len();
                        let results = scids.iter().map(|s| (*s, Ok(self.utxo(*s)))).collect();
                        queue.push_back((node, Input::FundingLookedUp { results }, None));
                    }
                    Output::Disconnect { peer, reason } => {
                        self.disconnects.push((node, format!("{reason:?}")));
                        if let Some((link, other, their_peer)) = self.route(node, peer) {
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

    /// `node` dies: nothing more of its outputs is performed, messages on
    /// their way to it are lost, its peers see it disconnect; it starts
    /// again from its store, and its links come back.
    fn kill(&mut self, node: usize, queue: &mut VecDeque<Queued>) {
        self.killed = true;
        queue.retain(|(n, _, _)| *n != node);
        let mine: Vec<usize> = (0..self.links.len())
            .filter(|&i| self.links[i].a == node || self.links[i].b == node)
            .collect();
        for &i in &mine {
            self.epochs[i] += 1;
            let l = self.links[i];
            let (other, peer) = if l.a == node {
                (l.b, l.pb)
            } else {
                (l.a, l.pa)
            };
            queue.push_back((other, Input::PeerDisconnected { peer }, None));
        }
        self.cores[node] = restore_core_with(
            keys(node as u8 + 1),
            self.ids[node],
            &self.stores[node],
            self.height,
            self.settings[node].clone(),
        );
        for i in mine {
            for (n, input) in self.connect_inputs(i) {
                queue.push_back((n, input, None));
            }
        }
    }

    /// `node`'s invoice for `msat`.
    fn invoice(&mut self, node: usize, msat: u64, description: impl Into<String>) -> String {
        let Reply::Invoice { invoice, .. } = self.command(
            node,
            Command::CreateInvoice {
                amount: Some(Msat::from_msat(msat)),
                description: description.into(),
                expiry_secs: 3600,
                now_secs: 1_700_000_000,
            },
        ) else {
            panic!("no invoice")
        };
        invoice
    }

    /// `node` starts paying `invoice` (command `id`, session key of bytes
    /// `session`); the reply comes when it comes.
    fn start_pay(&mut self, node: usize, invoice: String, id: u64, session: u8) {
        self.run(vec![(
            node,
            Input::Command {
                id: CommandId(id),
                command: Command::Pay {
                    invoice,
                    amount: None,
                    now_secs: 1_700_000_000,
                    session_key: SecretKey::from_slice(&[session; 32]).unwrap(),
                },
            },
        )]);
    }

    /// The statuses of `node`'s outgoing payments.
    fn outgoing_statuses(&self, node: usize) -> Vec<String> {
        self.cores[node]
            .payments()
            .into_iter()
            .filter(|p| !p.incoming)
            .map(|p| p.status)
            .collect()
    }

    /// `node` restarts from its store (its links drop and come back).
    fn restart(&mut self, node: usize) {
        let mut queue = VecDeque::new();
        self.kill(node, &mut queue);
        self.killed = false;
        self.run(queue.into_iter().map(|(n, i, _)| (n, i)).collect());
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
        self.blocks.insert(h, block.clone());
        self.run(
            (0..self.cores.len())
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

    /// A new empty block that only `nodes` see (the others' chain lags).
    fn block_for(&mut self, nodes: &[usize]) {
        self.height += 1;
        let mut header = bitcoin::constants::genesis_block(bitcoin::Network::Regtest).header;
        header.time = self.height;
        let block = Arc::new(Block {
            header,
            txdata: Vec::new(),
        });
        let h = self.height;
        self.blocks.insert(h, block.clone());
        self.run(
            nodes
                .iter()
                .map(|&n| {
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

    /// The unspent output `scid` names in the blocks mined, as a chain
    /// source would tell.
    fn utxo(&self, scid: ShortChannelId) -> Option<(bitcoin::OutPoint, bitcoin::TxOut)> {
        let tx = self
            .blocks
            .get(&scid.block())?
            .txdata
            .get(scid.tx_index() as usize)?;
        let outpoint = bitcoin::OutPoint::new(tx.compute_txid(), u32::from(scid.output()));
        let out = tx.output.get(scid.output() as usize)?.clone();
        let spent = self.blocks.values().any(|b| {
            b.txdata
                .iter()
                .any(|t| t.input.iter().any(|i| i.previous_output == outpoint))
        });
        (!spent).then_some((outpoint, out))
    }

    /// Connects `a` and `b` (a new link); returns its index.
    fn link(&mut self, a: usize, b: usize) -> usize {
        let l = Link {
            a,
            pa: PeerId(self.next_peer[a]),
            b,
            pb: PeerId(self.next_peer[b]),
        };
        self.next_peer[a] += 1;
        self.next_peer[b] += 1;
        self.links.push(l);
        self.epochs.push(0);
        let i = self.links.len() - 1;
        let inputs = self.connect_inputs(i).to_vec();
        self.run(inputs);
        i
    }

    /// The connection of link `i` drops: both ends see it, messages on
    /// their way over it are lost; it is not made again.
    fn drop_link(&mut self, i: usize) {
        self.epochs[i] += 1;
        let l = self.links[i];
        self.run(vec![
            (l.a, Input::PeerDisconnected { peer: l.pa }),
            (l.b, Input::PeerDisconnected { peer: l.pb }),
        ]);
    }

    /// The connection of link `i` is made again.
    fn reconnect(&mut self, i: usize) {
        let inputs = self.connect_inputs(i).to_vec();
        self.run(inputs);
    }

    /// Time passes by `d` and every node ticks.
    fn tick(&mut self, d: Duration) {
        self.now += d;
        self.run((0..self.cores.len()).map(|n| (n, Input::Tick)).collect());
    }

    /// `from` opens 1,000,000 sat to `to`; returns the channel id and its
    /// funding transaction (not mined).
    fn open(&mut self, from: usize, to: usize) -> (ChannelId, Transaction) {
        self.open_with(from, to, false)
    }

    /// [`Mesh::open`], public (`announce`) or not.
    fn open_with(&mut self, from: usize, to: usize, announce: bool) -> (ChannelId, Transaction) {
        let reply = self.command(
            from,
            Command::OpenChannel {
                node_id: self.ids[to],
                funding: Amount::from_sat(1_000_000),
                push: Msat::from_msat(400_000_000),
                announce,
            },
        );
        let Reply::ChannelOpened {
            channel_id,
            funding_txid,
        } = reply
        else {
            panic!("{reply:?}")
        };
        let tx = self.cores[from]
            .pending_broadcasts()
            .into_iter()
            .find(|t| t.compute_txid() == funding_txid)
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

type Trio = Mesh;

/// A opens to B, B to C, both mined 3 deep and normal.
fn trio() -> (Trio, ChannelId, ChannelId) {
    let mut t = Mesh::new(3, &[(0, 1), (1, 2)]);
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
    let invoice = t.invoice(2, 100_000_000, "t");
    assert!(
        beongae_invoice::Invoice::decode(&invoice)
            .unwrap()
            .route_hints()
            .count()
            == 1,
        "C's invoice has a route hint through B"
    );
    t.kill_after = kill.map(|k| (1, k));
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
    (t.persists, settled)
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
    let invoice = t.invoice(2, 100_000_000, "t");
    t.loses = Some((2, "UpdateFulfillHtlc"));
    let pay = CommandId(900);
    t.start_pay(0, invoice, pay.0, 0x45);
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

/// Issue 13: a random network of 10 nodes (a ring and random chords, one
/// channel per link, each opener pushing 400,000 sat to its peer) and 40
/// random payments between random nodes, each over whatever route the
/// payee's hints allow (direct, or through one of its peers). Every
/// payment ends (succeeded, or failed for want of a route or liquidity),
/// no HTLC is left, each channel's two sides agree on every msat, and each
/// node's balance moved by exactly what it received, less what it sent
/// (with fees), plus the fees it earned forwarding: the sum over the
/// network is zero.
#[test]
fn a_random_network_conserves_every_msat() {
    let mut seed: u64 = 0x5eed_0013;
    let mut rand = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let n = 10;
    let mut links: Vec<(usize, usize)> = (0..n).map(|i| (i, (i + 1) % n)).collect();
    while links.len() < n + 5 {
        let (a, b) = (rand(n as u64) as usize, rand(n as u64) as usize);
        let known = links
            .iter()
            .any(|&(x, y)| (x, y) == (a, b) || (y, x) == (a, b));
        if a != b && !known {
            links.push((a, b));
        }
    }
    let mut m = Mesh::new(n, &links);
    let mut chans = Vec::new();
    let mut fundings = Vec::new();
    for &(a, b) in &links {
        let (id, tx) = m.open(a, b);
        chans.push((id, a, b));
        fundings.push(tx);
    }
    m.block(fundings);
    m.block(vec![]);
    m.block(vec![]);
    let balance = |m: &Mesh, node: usize| -> i64 {
        chans
            .iter()
            .filter(|(_, a, b)| *a == node || *b == node)
            .map(|(id, _, _)| m.channel(node, *id).local.to_msat() as i64)
            .sum()
    };
    let before: Vec<i64> = (0..n).map(|i| balance(&m, i)).collect();
    let mut received = vec![0i64; n];
    let mut sent = vec![0i64; n];
    let mut succeeded = 0;
    for p in 0..40u64 {
        let payer = rand(n as u64) as usize;
        let payee = (payer + 1 + rand(n as u64 - 1) as usize) % n;
        let msat = (rand(200) + 1) * 1_000_000;
        let invoice = m.invoice(payee, msat, format!("{p}"));
        let mut key = [0x50; 32];
        key[..8].copy_from_slice(&(p + 1).to_be_bytes());
        let reply = m.command(
            payer,
            Command::Pay {
                invoice,
                amount: None,
                now_secs: 1_700_000_000,
                session_key: SecretKey::from_slice(&key).unwrap(),
            },
        );
        match reply {
            Reply::Paid { .. } => {
                succeeded += 1;
                received[payee] += msat as i64;
            }
            Reply::Failed(why) => assert!(
                matches!(why.kind, FailureKind::NoRoute | FailureKind::PaymentFailed),
                "{why:?}"
            ),
            other => panic!("{other:?}"),
        }
    }
    // What each payer sent, fees included.
    for (i, core) in m.cores.iter().enumerate() {
        sent[i] = core
            .payments()
            .iter()
            .filter(|p| !p.incoming && p.status == "succeeded")
            .map(|p| p.amount.unwrap().to_msat() as i64)
            .sum();
    }
    assert!(succeeded >= 15, "{succeeded} of 40 succeeded");
    let mut total = 0;
    for i in 0..n {
        let fees: i64 = m.cores[i]
            .forwards()
            .iter()
            .filter(|f| f.status == "settled")
            .map(|f| f.fee.to_msat() as i64)
            .sum();
        let delta = balance(&m, i) - before[i];
        assert_eq!(delta, received[i] - sent[i] + fees, "node {i}");
        total += delta;
    }
    assert_eq!(total, 0);
    let forwarded: usize = m
        .cores
        .iter()
        .map(|c| {
            c.forwards()
                .iter()
                .filter(|f| f.status == "settled")
                .count()
        })
        .sum();
    eprintln!("{succeeded} of 40 payments succeeded, {forwarded} through a forward");
    assert!(forwarded >= 5, "{forwarded} forwards");
    for (id, a, b) in &chans {
        let (x, y) = (m.channel(*a, *id), m.channel(*b, *id));
        assert_eq!((x.pending_htlcs, y.pending_htlcs), (0, 0));
        assert_eq!(x.local.to_msat() + y.local.to_msat(), 1_000_000_000);
        assert_eq!((x.local, x.remote), (y.remote, y.local));
    }
}

/// C's 100,000 sat invoice, and A's command to pay it (session key
/// `[0x46; 32]`).
fn c_invoice_and_pay(t: &mut Mesh) -> Command {
    let invoice = t.invoice(2, 100_000_000, "t");
    Command::Pay {
        invoice,
        amount: None,
        now_secs: 1_700_000_000,
        session_key: SecretKey::from_slice(&[0x46; 32]).unwrap(),
    }
}

/// A pays C's invoice, which fails; why.
fn pay_fails(t: &mut Trio) -> String {
    let pay = c_invoice_and_pay(t);
    let Reply::Failed(why) = t.command(0, pay) else {
        panic!("{:?}", t.replies)
    };
    assert_eq!(why.kind, FailureKind::PaymentFailed, "{why}");
    why.message
}

/// The same, with Alice killed after each of her store commits from the
/// disconnection on (SAFETY.md: killed after `Persist` and before the
/// `Send`s that follow; the kill lands while Y is placed again through
/// Dave, or later), then restarted from her store with her links back:
/// both payments end, settled or failed, no HTLC is left anywhere, and
/// every msat is accounted for: Alice paid what her settled payments say
/// (fees included), Carol got their amounts, Bob and Dave their fees.
#[test]
fn a_payer_killed_while_placing_a_dropped_part_again_loses_nothing() {
    let run = |kill: Option<usize>| -> usize {
        let (mut t, all, before, _) = two_paths_stuck_behind_bob();
        let at = |t: &Mesh, n: usize, id: ChannelId| t.channel(n, id).local.to_msat() as i64;
        t.loses = None;
        t.kill_after = kill.map(|k| (0, k));
        t.drop_link(0);
        if !t.killed {
            t.reconnect(0);
        }
        // Whatever waits on a timer (a held part, a payment's timeout).
        t.tick(Duration::from_secs(61));
        t.tick(Duration::from_secs(61));
        let statuses: Vec<String> = outgoing(&t).into_iter().map(|p| p.0).collect();
        for s in &statuses {
            assert!(
                s == "succeeded" || s.starts_with("failed"),
                "kill {kill:?}: {statuses:?}"
            );
        }
        for &(n, id) in &all {
            assert_eq!(t.channel(n, id).pending_htlcs, 0, "kill {kill:?}: node {n}");
        }
        let delta = |n: usize| -> i64 {
            all.iter()
                .zip(&before)
                .filter(|((m, _), _)| *m == n)
                .map(|(&(m, id), b)| at(&t, m, id) - *b as i64)
                .sum()
        };
        let settled: Vec<(i64, i64)> = t.cores[0]
            .payments()
            .into_iter()
            .filter(|p| !p.incoming && p.status == "succeeded")
            .map(|p| {
                let fee = p.fee.map_or(0, |f| f.to_msat() as i64);
                (p.amount.unwrap().to_msat() as i64, fee)
            })
            .collect();
        let fees_of = |n: usize| -> i64 {
            t.cores[n]
                .forwards()
                .iter()
                .filter(|f| f.status == "settled")
                .map(|f| f.fee.to_msat() as i64)
                .sum()
        };
        assert_eq!(
            delta(0),
            -settled.iter().map(|p| p.0).sum::<i64>(),
            "kill {kill:?}"
        );
        assert_eq!(
            delta(2),
            settled.iter().map(|p| p.0 - p.1).sum::<i64>(),
            "kill {kill:?}"
        );
        assert_eq!(
            (delta(1), delta(3)),
            (fees_of(1), fees_of(3)),
            "kill {kill:?}"
        );
        assert_eq!((0..4).map(delta).sum::<i64>(), 0);
        for pair in all.chunks(2) {
            let (x, y) = (
                t.channel(pair[0].0, pair[0].1),
                t.channel(pair[1].0, pair[1].1),
            );
            assert_eq!((x.local, x.remote), (y.remote, y.local), "kill {kill:?}");
        }
        t.persists
    };
    let commits = run(Some(usize::MAX));
    assert!(commits >= 3, "{commits}");
    for k in 1..=commits {
        run(Some(k));
    }
}

/// BOLT 4 `expiry_too_soon`: A's chain lags 30 blocks behind B's, so the
/// expiry A asks B to give the outgoing HTLC is already near B's tip. B
/// refuses the forward with `expiry_too_soon` (his `channel_update`
/// inside), A reads it as B's (hop 0), and with no other route the payment
/// fails saying so; every msat is back on both sides.
#[test]
fn an_expiry_too_near_the_forwarders_tip_is_refused() {
    let (mut t, ab, bc) = trio();
    let before = (t.channel(0, ab).local, t.channel(1, bc).local);
    for _ in 0..30 {
        t.block_for(&[1, 2]);
    }
    let why = pay_fails(&mut t);
    assert!(
        why.contains("expiry_too_soon") && why.contains("(from hop 0, "),
        "{why}"
    );
    assert_eq!((t.channel(0, ab).local, t.channel(1, bc).local), before);
    for (n, id) in [(0, ab), (1, ab), (1, bc), (2, bc)] {
        assert_eq!(t.channel(n, id).pending_htlcs, 0, "node {n}");
    }
    let forwards = t.cores[1].forwards();
    assert_eq!(
        forwards.len(),
        0,
        "refused before any outgoing HTLC: {forwards:?}"
    );
}

/// Replaces the onion of A's first `update_add_htlc` with one, under A's own
/// session key for attempt 1, part 0 (so that A reads the answer), that
/// asks B (`b`) to forward 100,000,000 msat over `next` to `last`.
fn onion_through_b(
    b: bitcoin::secp256k1::PublicKey,
    next: Option<ShortChannelId>,
    last_node: bitcoin::secp256k1::PublicKey,
) -> Tamper {
    let mut first = true;
    Box::new(move |node, msg| {
        let (0, Message::UpdateAddHtlc(add)) = (node, msg) else {
            return;
        };
        if !std::mem::take(&mut first) {
            return;
        }
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let mut e = bitcoin::hashes::sha256::Hash::engine();
        bitcoin::hashes::HashEngine::input(&mut e, &[0x46; 32]);
        bitcoin::hashes::HashEngine::input(&mut e, &1u32.to_be_bytes());
        bitcoin::hashes::HashEngine::input(&mut e, &0u32.to_be_bytes());
        let session =
            SecretKey::from_slice(&bitcoin::hashes::sha256::Hash::from_engine(e).to_byte_array())
                .unwrap();
        let forward = beongae_onion::HopPayload {
            amt_to_forward: Some(Msat::from_msat(100_000_000)),
            outgoing_cltv_value: Some(add.cltv_expiry - 80),
            short_channel_id: next,
            ..Default::default()
        };
        let last = beongae_onion::HopPayload {
            amt_to_forward: Some(Msat::from_msat(100_000_000)),
            outgoing_cltv_value: Some(add.cltv_expiry - 80),
            ..Default::default()
        };
        let onion = beongae_onion::construct_onion(
            &secp,
            &session,
            &[(b, forward.encode()), (last_node, last.encode())],
            &add.payment_hash,
        )
        .unwrap();
        add.onion_routing_packet.0.copy_from_slice(&onion.encode());
    })
}

/// Bad onions (BOLT 4), refused by B with the payer told why, nothing
/// moving: an onion B cannot read (a byte changed on the way) gets
/// `update_fail_malformed_htlc` (`invalid_onion_hmac`); an onion that asks
/// B to forward over a channel B does not have gets `unknown_next_peer`,
/// which A reads from B's layer; one that asks B to send it back over the
/// channel it came in on gets `temporary_channel_failure`.
#[test]
fn bad_onions_are_refused_and_the_payer_learns_why() {
    let (mut t, ab, _) = trio();
    let before = t.channel(0, ab).local;
    // A byte of the first add's onion changed.
    let mut first = true;
    t.tamper = Some(Box::new(move |node, msg| {
        if let (0, Message::UpdateAddHtlc(add)) = (node, msg) {
            if std::mem::take(&mut first) {
                add.onion_routing_packet.0[100] ^= 1;
            }
        }
    }));
    let why = pay_fails(&mut t);
    assert!(
        why.contains("the first hop could not read the onion (failure code 0xc005)"),
        "{why}"
    );
    assert_eq!(t.channel(0, ab).local, before);
    // An onion naming a channel B does not have, with A's own session key
    // (attempt 1, part 0) and hops (so that A reads B's answer).
    let (b, c) = (t.ids[1].pubkey(), t.ids[2].pubkey());
    t.tamper = Some(onion_through_b(b, ShortChannelId::new(1, 1, 1), c));
    let why = pay_fails(&mut t);
    assert!(
        why.contains("unknown_next_peer: the node has no such next channel (from hop 0"),
        "{why}"
    );
    assert_eq!(t.channel(0, ab).local, before);
    assert_eq!(t.channel(0, ab).pending_htlcs, 0);
    // An onion asking B to send the HTLC back to A over the channel it came
    // in on: refused (temporary_channel_failure), nothing moves.
    let back = t.channel(0, ab).short_channel_id.unwrap();
    t.tamper = Some(onion_through_b(b, Some(back), t.ids[0].pubkey()));
    let why = pay_fails(&mut t);
    assert!(
        why.contains("temporary_channel_failure") && why.contains("(from hop 0"),
        "{why}"
    );
    assert_eq!(t.channel(0, ab).local, before);
    assert_eq!(t.channel(0, ab).pending_htlcs, 0);
}

/// BOLT 4 `basic_mpp`, receiving: B's invoice offers it; A's HTLC (its
/// onion changed on the way to say it is one part of twice its amount) is
/// held, and stays held across B's restart; no second part comes, and 60
/// seconds after B (re)started waiting, B fails it with `mpp_timeout`,
/// which A reads. Nothing moves.
#[test]
fn an_incomplete_multi_part_payment_fails_after_sixty_seconds() {
    let (mut t, ab, _) = trio();
    let before = t.channel(0, ab).local;
    let invoice = t.invoice(1, 100_000_000, "t");
    let decoded = beongae_invoice::Invoice::decode(&invoice).unwrap();
    assert!(decoded.features().offers(Feature::BasicMpp));
    let secret = decoded.payment_secret().0;
    let b = t.ids[1].pubkey();
    let key = SecretKey::from_slice(&[0x47; 32]).unwrap();
    t.tamper = Some(Box::new(move |node, msg| {
        let (0, Message::UpdateAddHtlc(add)) = (node, msg) else {
            return;
        };
        let part = beongae_onion::HopPayload {
            amt_to_forward: Some(Msat::from_msat(add.amount_msat)),
            outgoing_cltv_value: Some(add.cltv_expiry),
            payment_data: Some(beongae_onion::PaymentData {
                payment_secret: secret,
                total_msat: Msat::from_msat(2 * add.amount_msat),
            }),
            ..Default::default()
        };
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let onion =
            beongae_onion::construct_onion(&secp, &key, &[(b, part.encode())], &add.payment_hash)
                .unwrap();
        add.onion_routing_packet.0.copy_from_slice(&onion.encode());
    }));
    let pay = CommandId(950);
    let since = t.replies.len();
    t.run(vec![(
        0,
        Input::Command {
            id: pay,
            command: Command::Pay {
                invoice,
                amount: None,
                now_secs: 1_700_000_000,
                session_key: key,
            },
        },
    )]);
    t.tamper = None;
    // Held: committed on both sides, not settled, stored.
    assert_eq!(t.channel(1, ab).pending_htlcs, 1);
    assert!(t.stores[1]
        .keys()
        .any(|(ns, k)| ns == channels::record::NS_PAYMENTS && k[0] == b'h'));
    // B restarts: the part is still held; its wait starts again.
    t.restart(1);
    t.now += Duration::from_secs(30);
    t.run(vec![(1, Input::Tick)]);
    t.now += Duration::from_secs(59);
    t.run(vec![(1, Input::Tick)]);
    assert!(
        !t.replies[since..].iter().any(|(n, _)| *n == 0),
        "{:?}",
        &t.replies[since..]
    );
    assert_eq!(t.channel(1, ab).pending_htlcs, 1);
    t.now += Duration::from_secs(2);
    t.run(vec![(1, Input::Tick)]);
    let why = t.replies[since..]
        .iter()
        .find_map(|(n, r)| match r {
            Reply::Failed(why) if *n == 0 => Some(why.message.clone()),
            _ => None,
        })
        .expect("A's payment failed");
    assert!(why.contains("mpp_timeout"), "{why}");
    assert_eq!(t.channel(0, ab).pending_htlcs, 0);
    assert_eq!(t.channel(0, ab).local, before);
    assert!(!t.stores[1]
        .keys()
        .any(|(ns, k)| ns == channels::record::NS_PAYMENTS && k[0] == b'h'));
}

/// A forward whose next hop goes silent: C takes B's HTLC and then sends
/// nothing. After the HTLC's expiry B goes to chain (BOLT 2 deadline) with
/// its commitment, which has no output for it (C never signed it in); 6
/// blocks later B fails A's HTLC back (`permanent_channel_failure`) — long
/// before A's own expiry — and A's payment fails with nothing lost.
#[test]
fn a_forward_timed_out_downstream_on_chain_fails_upstream() {
    let (mut t, ab, bc) = trio();
    let before = t.channel(0, ab).local;
    let pay = c_invoice_and_pay(&mut t);
    t.loses = Some((2, "*"));
    let since = t.replies.len();
    t.run(vec![(
        0,
        Input::Command {
            id: CommandId(960),
            command: pay,
        },
    )]);
    let f = &t.cores[1].forwards()[0];
    assert_eq!(f.status, "pending");
    let (start, broadcasts) = (t.height, t.broadcasts.len());
    // Blocks until B forces its channel to C closed.
    let commitment = loop {
        t.block(vec![]);
        assert!(t.height < start + 200, "B never went to chain");
        if let Some((_, tx)) = t.broadcasts[broadcasts..]
            .iter()
            .find(|(n, tx)| *n == 1 && tx.input.len() == 1 && tx.output.len() > 2)
        {
            break tx.clone();
        }
    };
    assert_eq!(t.channel(1, bc).state, ChannelState::Closed);
    t.block(vec![commitment]);
    for _ in 0..4 {
        t.block(vec![]);
        assert!(!t.replies[since..].iter().any(|(n, _)| *n == 0));
    }
    t.block(vec![]);
    let why = t.replies[since..]
        .iter()
        .find_map(|(n, r)| match r {
            Reply::Failed(why) if *n == 0 => Some(why.message.clone()),
            _ => None,
        })
        .expect("A's payment failed");
    assert!(why.contains("permanent_channel_failure"), "{why}");
    assert_eq!(t.cores[1].forwards()[0].status, "failed");
    assert_eq!(t.channel(0, ab).pending_htlcs, 0);
    assert_eq!(t.channel(0, ab).local, before);
    assert_eq!(t.channel(0, ab).state, ChannelState::Normal);
}

/// A pays B 900,000 sat over two channels (neither can carry it alone):
/// in parts. A is killed after each of its store commits of the payment
/// and restarted from its store; B times out an incomplete set after 60 s.
/// Every time the payment ends with nothing in flight and nothing lost:
/// succeeded with exactly 900,000 sat moved, or failed with nothing moved
/// (a restart forgets the parts not yet offered; those out are waited for,
/// never reported failed while one may still be fulfilled).
#[test]
fn a_payer_killed_while_paying_in_parts_loses_nothing() {
    let run = |kill: Option<usize>| -> (usize, bool) {
        let mut t = Mesh::new(2, &[(0, 1)]);
        let (c1, f1) = t.open(0, 1);
        let (c2, f2) = t.open(0, 1);
        t.block(vec![f1, f2]);
        t.block(vec![]);
        t.block(vec![]);
        let local = |t: &Mesh| t.channel(0, c1).local.to_msat() + t.channel(0, c2).local.to_msat();
        let before = local(&t);
        let invoice = t.invoice(1, 900_000_000, "parts");
        t.kill_after = kill.map(|k| (0, k));
        let since = t.replies.len();
        t.start_pay(0, invoice, 970, 0x48);
        // B's wait for a set that will not complete ends.
        t.now += Duration::from_secs(61);
        t.run(vec![(1, Input::Tick)]);
        let status = t.outgoing_statuses(0);
        for id in [c1, c2] {
            assert_eq!(t.channel(0, id).pending_htlcs, 0, "kill {kill:?}");
            assert_eq!(t.channel(1, id).pending_htlcs, 0, "kill {kill:?}");
        }
        let moved = before - local(&t);
        assert!(
            !status.is_empty(),
            "kill {kill:?}: {:?}",
            &t.replies[since..]
        );
        let succeeded = status == vec!["succeeded".to_string()];
        if succeeded {
            assert_eq!(moved, 900_000_000, "kill {kill:?}");
        } else {
            assert!(status[0].starts_with("failed"), "kill {kill:?}: {status:?}");
            assert_eq!(moved, 0, "kill {kill:?}");
        }
        // An answer came only if A was not killed (a restart has no one
        // waiting), and it says what the status says.
        if kill.is_none_or(|k| k == usize::MAX) {
            let paid = t.replies[since..]
                .iter()
                .any(|(n, r)| *n == 0 && matches!(r, Reply::Paid { .. }));
            assert_eq!(paid, succeeded);
        }
        (t.persists, succeeded)
    };
    let (commits, settled) = run(Some(usize::MAX));
    assert!(settled, "without a kill the parts settle");
    assert!(commits >= 4, "{commits}");
    for k in 1..=commits {
        run(Some(k));
    }
}

/// Alice's payments, by amount: status, attempts, route.
fn outgoing(t: &Mesh) -> Vec<(String, u32, Vec<NodeId>)> {
    let mut v: Vec<_> = t.cores[0]
        .payments()
        .into_iter()
        .filter(|p| !p.incoming)
        .map(|p| (p.amount, p.status, p.attempts, p.route))
        .collect();
    v.sort_by_key(|p| p.0);
    v.into_iter().map(|p| (p.1, p.2, p.3)).collect()
}

/// Alice — Bob — Carol and Alice — Dave — Carol (Dave dearer: 5,000 msat
/// base), with two payments of Alice's to Carol stuck behind Bob: X (50,000
/// sat) signed and waiting for Bob's `revoke_and_ack`, Y (100,000 sat)
/// offered but not signed, as nothing Bob sends arrives (`loses` is still
/// set). Returns the mesh, every (node, channel) side, each side's balance
/// before, and the index of the first reply after.
fn two_paths_stuck_behind_bob() -> (Mesh, [(usize, ChannelId); 8], Vec<u64>, usize) {
    // 0 Alice, 1 Bob, 2 Carol, 3 Dave; links 0 A-B, 1 B-C, 2 A-D, 3 D-C.
    let mut t = Mesh::new(4, &[(0, 1), (1, 2), (0, 3), (3, 2)]);
    let (ab, f1) = t.open(0, 1);
    let (bc, f2) = t.open(1, 2);
    let (ad, f3) = t.open(0, 3);
    let (dc, f4) = t.open(3, 2);
    t.block(vec![f1, f2, f3, f4]);
    t.block(vec![]);
    t.block(vec![]);
    let Reply::PolicySet(_) = t.command(
        3,
        Command::SetPolicy {
            channel_id: Some(dc),
            policy: channels::policy::ForwardingPolicy {
                fee_base_msat: 5_000,
                ..Default::default()
            },
        },
    ) else {
        panic!("policy")
    };
    let at = |t: &Mesh, n: usize, id: ChannelId| t.channel(n, id).local.to_msat();
    let all = [
        (0, ab),
        (1, ab),
        (1, bc),
        (2, bc),
        (0, ad),
        (3, ad),
        (3, dc),
        (2, dc),
    ];
    let before: Vec<u64> = all.iter().map(|&(n, id)| at(&t, n, id)).collect();
    let x = t.invoice(2, 50_000_000, "x");
    let y = t.invoice(2, 100_000_000, "y");
    t.loses = Some((1, "*"));
    let since = t.replies.len();
    t.start_pay(0, x, 980, 0x49);
    t.start_pay(0, y, 981, 0x4a);
    (t, all, before, since)
}

/// Issue 13 ("retries on failure"): Alice pays Carol, who is reached
/// through Bob and, dearer, through Dave. Nothing Bob sends arrives any
/// more, so a first payment X waits for his `revoke_and_ack` and Alice
/// cannot sign a second one, Y: Y's HTLC is offered to Bob but no
/// `commitment_signed` covers it when the connection drops. BOLT 2 forgets
/// it, no one can fulfil it, and Y is placed again through Dave at once and
/// settles; X, committed, is taken up again on reconnection and settles
/// too. Every balance moves by exactly the
/// amounts and the fees.
#[test]
fn a_part_dropped_by_a_disconnection_is_placed_again() {
    let (mut t, all, before, since) = two_paths_stuck_behind_bob();
    let at = |t: &Mesh, n: usize, id: ChannelId| t.channel(n, id).local.to_msat();
    let [(_, ab), _, _, (_, bc), (_, ad), _, (_, dc), _] = all;
    let _ = (ab, bc, ad, dc);
    let (bob, carol, dave) = (t.ids[1], t.ids[2], t.ids[3]);
    assert_eq!(
        outgoing(&t),
        vec![
            ("pending".to_string(), 1, vec![bob, carol]),
            ("pending".to_string(), 1, vec![bob, carol]),
        ]
    );
    t.loses = None;
    t.drop_link(0);
    // Y went again, through Dave, and settled; X waits for Bob.
    assert_eq!(
        outgoing(&t),
        vec![
            ("pending".to_string(), 1, vec![bob, carol]),
            ("succeeded".to_string(), 2, vec![dave, carol]),
        ]
    );
    let paid = |t: &Mesh| {
        t.replies[since..]
            .iter()
            .filter(|(n, r)| *n == 0 && matches!(r, Reply::Paid { .. }))
            .count()
    };
    assert_eq!(paid(&t), 1);
    // Reestablished, Bob's revocation comes again: X settles.
    t.reconnect(0);
    assert_eq!(
        outgoing(&t),
        vec![
            ("succeeded".to_string(), 1, vec![bob, carol]),
            ("succeeded".to_string(), 2, vec![dave, carol]),
        ]
    );
    assert_eq!(paid(&t), 2);
    let moved: Vec<i64> = all
        .iter()
        .zip(&before)
        .map(|(&(n, id), b)| at(&t, n, id) as i64 - *b as i64)
        .collect();
    // X: 50,000,000 + Bob's 1,000 + 50 msat; Y: 100,000,000 + Dave's
    // 5,000 + 100 msat. Nothing else moved.
    assert_eq!(
        moved,
        vec![
            -50_001_050,
            50_001_050,
            -50_000_000,
            50_000_000,
            -100_005_100,
            100_005_100,
            -100_000_000,
            100_000_000
        ]
    );
    for &(n, id) in &all {
        assert_eq!(t.channel(n, id).pending_htlcs, 0, "node {n}");
    }
}

/// Issue 14: an invoice nobody paid says `expired` once its expiry (BOLT 11
/// `x`) has passed, not `open`; a paid one stays `paid`.
#[test]
fn an_unpaid_invoice_past_its_expiry_says_expired() {
    let (mut t, _, _) = trio();
    let invoice = |t: &mut Trio, description: &str| {
        let Reply::Invoice { invoice, .. } = t.command(
            2,
            Command::CreateInvoice {
                amount: Some(Msat::from_msat(1_000_000)),
                description: description.into(),
                expiry_secs: 60,
                now_secs: t.now.as_secs(),
            },
        ) else {
            panic!("no invoice")
        };
        invoice
    };
    let paid = invoice(&mut t, "paid");
    invoice(&mut t, "left");
    let Reply::Paid { .. } = t.command(
        0,
        Command::Pay {
            invoice: paid,
            amount: None,
            now_secs: t.now.as_secs(),
            session_key: SecretKey::from_slice(&[0x4b; 32]).unwrap(),
        },
    ) else {
        panic!("{:?}", t.replies)
    };
    let statuses = |t: &Trio| -> Vec<String> {
        let mut v: Vec<String> = t.cores[2]
            .payments()
            .into_iter()
            .filter(|p| p.incoming)
            .map(|p| p.status)
            .collect();
        v.sort();
        v
    };
    assert_eq!(statuses(&t), vec!["open", "paid"]);
    t.tick(Duration::from_secs(61));
    assert_eq!(statuses(&t), vec!["expired", "paid"]);
}

mod gossip;
mod stored;
