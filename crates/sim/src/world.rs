//! The simulated world: nodes, connections, the chain, virtual time, and
//! one queue of events ordered by (time, sequence number), drawn from one
//! seed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Mutex;
use std::time::Duration;

use beongae_chain::devnet::{Devnet, COINBASE_MATURITY};
use beongae_node::core::channels::record::NS_REMOTE_HTLCS;
use beongae_node::core::{
    misordered_output, ChannelSettings, Command, CommandId, CoreConfig, Direction, Event, Input,
    NodeCore, Output, PeerId, RecordError, Reply, StoredState,
};
use beongae_node::follow::ChainFollower;
use beongae_store::MemoryMap;
use beongae_wallet::{KeyManager, Seed};
use beongae_wire::{ChainHash, ChannelId, Message, Msat, NodeId, PaymentHash};
use bitcoin::hashes::{sha256, Hash as _};
use bitcoin::{Amount, ScriptBuf, Transaction};

use crate::rng::Rng;
use crate::wallet::Wallet;

mod net;
mod workload;

/// Virtual time starts here (seconds since the Unix epoch).
const EPOCH: u64 = 1_700_000_000;

/// A deliberately broken node, to show that the invariants catch what
/// they are meant to catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// Node 0 drops (never writes) the store batch of any step that also
    /// sends a `commitment_signed` or a `revoke_and_ack`: a node that
    /// skips the persist before the send.
    SkipPersist,
}

/// What a run simulates.
#[derive(Debug, Clone)]
pub struct Config {
    /// Fewest and most nodes (drawn per seed).
    pub nodes: (usize, usize),
    /// Fewest and most payments (drawn per seed).
    pub payments: (usize, usize),
    /// The window over which payments start, after the channels are open.
    pub workload: Duration,
    /// Whether faults are injected at all.
    pub faults: bool,
    /// The chance that a node crashes during any one step.
    pub crash: f64,
    /// The chance that one end of a channel keeps its commitment and
    /// broadcasts it once revoked (per seed).
    pub cheat: f64,
    /// The chance that a node stops answering for hours, past its peers'
    /// HTLC deadlines (per seed): they must go to chain.
    pub long_stall: f64,
    /// Seconds between network faults (drawn uniformly in this range).
    pub fault_every: (u64, u64),
    /// The chance, at each block while payments run, that one transaction
    /// of the mempool is dropped from it for good (from every node's
    /// mempool, as an eviction or a restarted bitcoind does): it confirms
    /// only if its owner broadcasts it again.
    pub drop_tx: f64,
    /// A broken node, to check the checks.
    pub broken: Option<Broken>,
    /// Faults not injected, by their number in the run (to shrink a
    /// failing seed: the draws stay the same, so the rest of the schedule
    /// does too).
    pub skip_faults: BTreeSet<u64>,
    /// Payments left out, by number.
    pub skip_payments: BTreeSet<usize>,
    /// Keep a digest of every step's outputs (for the determinism check).
    pub digest: bool,
    /// Print every step (replaying one seed).
    pub verbose: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nodes: (3, 5),
            payments: (4, 12),
            workload: Duration::from_secs(300),
            faults: true,
            crash: 0.002,
            cheat: 0.3,
            long_stall: 0.15,
            fault_every: (10, 60),
            drop_tx: 0.5,
            broken: None,
            skip_faults: BTreeSet::new(),
            skip_payments: BTreeSet::new(),
            digest: false,
            verbose: false,
        }
    }
}

/// What happened in a run, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Inputs handled by a core.
    pub steps: u64,
    /// Crashes between two outputs of a step (elsewhere than below).
    pub crashes: u64,
    /// Crashes after a `Persist` and before the `Send`s that follow it.
    pub crashes_after_persist: u64,
    /// Crashes at a `Persist`: the commit failed, and the node stopped.
    pub failed_commits: u64,
    /// Nodes crashed between steps.
    pub kills: u64,
    /// Connections dropped.
    pub drops: u64,
    /// Nodes cut off from the network for a while.
    pub partitions: u64,
    /// Nodes that stopped answering for a while.
    pub stalls: u64,
    /// Nodes that stopped answering for hours.
    pub long_stalls: u64,
    /// Dials that failed (the node down or cut off).
    pub failed_dials: u64,
    /// Blocks mined.
    pub blocks: u64,
    /// Payments that succeeded.
    pub paid: u64,
    /// Payments that failed (the payer knows).
    pub failed: u64,
    /// Payments never made (the payee was down, or the payer crashed
    /// before the payment was stored).
    pub unmade: u64,
    /// Payments that went through more than one hop.
    pub multi_hop: u64,
    /// Transactions the devnet refused (duplicates of ours included).
    pub refused_broadcasts: u64,
    /// Reorganisations of the chain (1 to 6 blocks deep).
    pub reorgs: u64,
    /// Transactions a reorganisation left out of the new branch (back in
    /// the mempool after it).
    pub late_transactions: u64,
    /// Transactions dropped from the mempool for good (with what spends
    /// them): they confirm only if broadcast again.
    pub dropped_transactions: u64,
    /// Channels closed mutually, and by force, by the end.
    pub mutual_closes: u64,
    /// Channels closed by force.
    pub force_closes: u64,
    /// Revoked commitments broadcast by a cheating node.
    pub cheats: u64,
    /// Revoked commitments that confirmed, and were punished.
    pub punished: u64,
}

impl std::ops::AddAssign<&Counts> for Counts {
    fn add_assign(&mut self, o: &Counts) {
        self.steps += o.steps;
        self.crashes += o.crashes;
        self.crashes_after_persist += o.crashes_after_persist;
        self.failed_commits += o.failed_commits;
        self.kills += o.kills;
        self.drops += o.drops;
        self.partitions += o.partitions;
        self.stalls += o.stalls;
        self.long_stalls += o.long_stalls;
        self.failed_dials += o.failed_dials;
        self.blocks += o.blocks;
        self.paid += o.paid;
        self.failed += o.failed;
        self.unmade += o.unmade;
        self.multi_hop += o.multi_hop;
        self.refused_broadcasts += o.refused_broadcasts;
        self.reorgs += o.reorgs;
        self.late_transactions += o.late_transactions;
        self.dropped_transactions += o.dropped_transactions;
        self.mutual_closes += o.mutual_closes;
        self.force_closes += o.force_closes;
        self.cheats += o.cheats;
        self.punished += o.punished;
    }
}

/// A run that kept every invariant.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: usize,
    /// Channels.
    pub channels: usize,
    /// Virtual time the run took.
    pub time: Duration,
    /// What happened.
    pub counts: Counts,
    /// Faults injected, by number (what shrinking may leave out).
    pub faults: u64,
    /// A digest of every step's outputs (when asked for).
    pub digest: Option<[u8; 32]>,
}

/// An invariant broken: where, and how to replay it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The seed.
    pub seed: u64,
    /// The step (inputs handled so far).
    pub step: u64,
    /// Virtual time since the start.
    pub time: Duration,
    /// What went wrong.
    pub what: String,
    /// The run's broken node, if any (part of the replay command).
    pub broken: Option<Broken>,
    /// Faults drawn until then (each has a number, from 0).
    pub faults: u64,
    /// Payments planned.
    pub payments: usize,
    /// Faults and payments left out (part of the replay command).
    pub skipped: Box<(BTreeSet<u64>, BTreeSet<usize>)>,
}

impl Violation {
    /// The command that replays it.
    pub fn replay(&self) -> String {
        let list = |v: Vec<String>| v.join(",");
        let mut c = format!(
            "cargo run -p beongae-sim --release -- --seed {} --verbose",
            self.seed
        );
        if self.broken.is_some() {
            c.push_str(" --broken");
        }
        if !self.skipped.0.is_empty() {
            c.push_str(" --skip-faults ");
            c.push_str(&list(self.skipped.0.iter().map(u64::to_string).collect()));
        }
        if !self.skipped.1.is_empty() {
            c.push_str(" --skip-payments ");
            c.push_str(&list(self.skipped.1.iter().map(usize::to_string).collect()));
        }
        c
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} step {} at {:.3} s: {}\nreplay: {}",
            self.seed,
            self.step,
            self.time.as_secs_f64(),
            self.what,
            self.replay()
        )
    }
}

/// Something to happen at a time.
#[derive(Debug)]
enum Ev {
    /// An input for a node (dropped if the node restarted since).
    Input {
        node: usize,
        life: u32,
        input: Input,
    },
    /// Bytes arriving over a connection at end `to`.
    Msg {
        conn: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    /// End `end` of a connection learns that it closed.
    Closed {
        conn: usize,
        end: usize,
    },
    /// A dial by `from` reaches `to`, or fails.
    Dial {
        from: usize,
        life: u32,
        to: usize,
        id: CommandId,
    },
    Tick(usize),
    Poll(usize),
    Mine,
    Fault,
    Restart(usize),
    /// Payment `usize` begins: its payee makes the invoice.
    Pay(usize),
    /// Channel `usize` is closed by one end, mutually or by force.
    Close(usize, usize, bool),
    /// One end (0 or 1) of channel `usize` keeps its current commitment.
    Keep(usize, usize),
    /// The end that kept a commitment of channel `usize` broadcasts it, if
    /// it is revoked by now.
    Cheat(usize),
    /// Node `usize` stops answering for hours.
    LongStall(usize, Duration),
}

/// A simulated node.
struct Node {
    core: Option<NodeCore>,
    store: MemoryMap,
    entropy: [u8; 32],
    id: NodeId,
    config: CoreConfig,
    settings: ChannelSettings,
    watcher: Option<ChainFollower>,
    wallet: Wallet,
    /// Incremented at each crash; events for an earlier life are lost.
    life: u32,
    stalled_until: Duration,
    cut_until: Duration,
    next_peer: u64,
}

/// A connection between two nodes.
struct Conn {
    ends: [(usize, PeerId); 2],
    /// Whether each end still sends and receives on it.
    open: [bool; 2],
    /// Whether each end was told it closed.
    told: [bool; 2],
    /// False once dropped: what is in flight is lost.
    live: bool,
    /// When the last message towards each end arrives.
    last: [Duration; 2],
    latency: Duration,
}

/// A channel of the workload.
pub(crate) struct Chan {
    pub(crate) a: usize,
    pub(crate) b: usize,
    pub(crate) id: Option<ChannelId>,
    funding: Amount,
    push: Msat,
    announce: bool,
    /// Asked to close: by which end, and whether forced.
    pub(crate) close: Option<(usize, bool)>,
    /// A commitment one end keeps to cheat with.
    pub(crate) cheat: Option<Cheat>,
}

/// A commitment kept by a cheating node, broadcast once revoked.
pub(crate) struct Cheat {
    /// The cheating node.
    pub(crate) by: usize,
    /// Its commitment number then.
    number: u64,
    pub(crate) tx: bitcoin::Transaction,
    /// Broadcast (the devnet took it).
    pub(crate) sent: bool,
}

/// A payment of the workload.
pub(crate) struct Payment {
    pub(crate) payer: usize,
    pub(crate) payee: usize,
    pub(crate) msat: u64,
    pub(crate) hash: Option<PaymentHash>,
    pub(crate) reply: Option<Reply>,
}

/// What a command's reply means to the workload.
enum Pending {
    Connect(usize),
    Open(usize),
    Invoice(usize),
    Pay(usize),
}

/// Phases of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    Workload,
    Settle,
}

pub(crate) struct World {
    pub(crate) seed: u64,
    config: Config,
    rng: Rng,
    /// Draws for dropped transactions, apart from `rng` so that adding
    /// them left every other draw of a seed where it was.
    drop_rng: Rng,
    nodes: Vec<Node>,
    conns: Vec<Conn>,
    /// (node, peer id) -> (connection, end), while open at that end.
    by_peer: BTreeMap<(usize, PeerId), (usize, usize)>,
    chain: Mutex<Devnet>,
    miner: ScriptBuf,
    now: Duration,
    queue: BTreeMap<(Duration, u64), Ev>,
    seq: u64,
    phase: Phase,
    pub(crate) counts: Counts,
    faults: u64,
    commands: BTreeMap<(usize, u64), Pending>,
    next_command: u64,
    pub(crate) chans: Vec<Chan>,
    pub(crate) payments: Vec<Payment>,
    /// Nodes that stopped answering for hours: their peers may force
    /// their channels closed (and fail them with an `error`).
    pub(crate) long_stalled: BTreeSet<usize>,
    /// (node, channel, the peer's commitment number) -> what the node's
    /// `commitment_signed` for it held.
    signed: BTreeMap<(usize, ChannelId, u64), sha256::Hash>,
    digest: Option<sha256::HashEngine>,
}

fn keys(entropy: [u8; 32]) -> KeyManager {
    KeyManager::new(
        Seed::from_entropy(entropy).master_key(bitcoin::NetworkKind::Test),
        bitcoin::Network::Regtest,
    )
}

fn addr(n: usize, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8),
        port,
    ))
}

impl World {
    pub(crate) fn new(seed: u64, config: Config) -> World {
        let mut rng = Rng::new(seed);
        let n = rng.range(config.nodes.0 as u64, config.nodes.1 as u64 + 1) as usize;
        let mut devnet = Devnet::new();
        let miner = ScriptBuf::new_op_return([0x51; 4]);
        let mut nodes = Vec::new();
        for i in 0..n {
            let entropy = rng.bytes32();
            let k = keys(entropy);
            let secp = bitcoin::secp256k1::Secp256k1::signing_only();
            let id = NodeId::from_pubkey(bitcoin::secp256k1::PublicKey::from_secret_key(
                &secp,
                &k.node_secret(),
            ));
            let wallet = Wallet::new(rng.bytes32());
            devnet.mine(4, &wallet.script, (EPOCH + i as u64) as u32);
            let mut config = CoreConfig::new(ChainHash::REGTEST);
            config.seed = rng.next_u64();
            let mut settings = ChannelSettings {
                close_script: Some(wallet.script.clone()),
                ..ChannelSettings::default()
            };
            // The delay each node asks of its peers on their own outputs
            // after a force close: 18 to 144 blocks.
            settings.config.to_self_delay = rng.range(18, 145) as u16;
            nodes.push(Node {
                core: None,
                store: MemoryMap::new(),
                entropy,
                id,
                config,
                settings,
                watcher: None,
                wallet,
                life: 0,
                stalled_until: Duration::ZERO,
                cut_until: Duration::ZERO,
                next_peer: 1,
            });
        }
        devnet.mine(COINBASE_MATURITY, &miner, EPOCH as u32);
        let mut w = World {
            seed,
            config,
            rng,
            drop_rng: Rng::new(seed ^ 0x6d65_6d70_6f6f_6c73),
            nodes,
            conns: Vec::new(),
            by_peer: BTreeMap::new(),
            chain: Mutex::new(devnet),
            miner,
            now: Duration::from_secs(EPOCH),
            queue: BTreeMap::new(),
            seq: 0,
            phase: Phase::Setup,
            counts: Counts::default(),
            faults: 0,
            commands: BTreeMap::new(),
            next_command: 1,
            chans: Vec::new(),
            payments: Vec::new(),
            long_stalled: BTreeSet::new(),
            signed: BTreeMap::new(),
            digest: None,
        };
        if w.config.digest {
            w.digest = Some(sha256::Hash::engine());
        }
        w
    }

    pub(crate) fn devnet(&self) -> std::sync::MutexGuard<'_, Devnet> {
        self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn violation(&self, what: impl Into<String>) -> Violation {
        Violation {
            seed: self.seed,
            step: self.counts.steps,
            time: self.now - Duration::from_secs(EPOCH),
            what: what.into(),
            broken: self.config.broken,
            faults: self.faults,
            payments: self.payments.len(),
            skipped: Box::new((
                self.config.skip_faults.clone(),
                self.config.skip_payments.clone(),
            )),
        }
    }

    fn at(&mut self, t: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t.max(self.now), self.seq), ev);
    }

    fn after(&mut self, d: Duration, ev: Ev) {
        self.at(self.now + d, ev);
    }

    fn input(&mut self, d: Duration, node: usize, input: Input) {
        let life = self.nodes[node].life;
        self.after(d, Ev::Input { node, life, input });
    }

    fn log(&self, what: String) {
        if self.config.verbose {
            eprintln!(
                "[{:.3}] {what}",
                (self.now - Duration::from_secs(EPOCH)).as_secs_f64()
            );
        }
    }

    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.rng.range(lo, hi))
    }

    /// Whether the next fault is injected (each fault drawn has a number;
    /// shrinking leaves some out).
    fn next_fault(&mut self) -> bool {
        self.faults += 1;
        !self.config.skip_faults.contains(&(self.faults - 1))
    }

    pub(crate) fn core(&self, n: usize) -> Option<&NodeCore> {
        self.nodes[n].core.as_ref()
    }

    /// Node `n`'s wallet script (where its coins, closes and sweeps pay).
    pub(crate) fn wallet_script(&self, n: usize) -> &ScriptBuf {
        &self.nodes[n].wallet.script
    }

    /// For a replay: where each pending transaction's inputs stand.
    fn explain_pending(&self) {
        let devnet = self.devnet();
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(core) = &node.core else { continue };
            for tx in core.pending_broadcasts() {
                for input in &tx.input {
                    let o = input.previous_output;
                    eprintln!(
                        "node {i} pending {} spends {o}: its transaction has {:?} confirmations, spent by {:?}",
                        tx.compute_txid(),
                        devnet.confirmations(&o.txid),
                        devnet.spender(&o)
                    );
                }
            }
        }
    }

    /// Whether the run prints what it does.
    pub(crate) fn verbose(&self) -> bool {
        self.config.verbose
    }

    pub(crate) fn node_id(&self, n: usize) -> NodeId {
        self.nodes[n].id
    }

    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A core for node `n` built from its store alone, as a restart
    /// builds it.
    pub(crate) fn restore(&self, n: usize) -> Result<NodeCore, RecordError> {
        let tip = self.devnet().height();
        let node = &self.nodes[n];
        NodeCore::with_channels(
            node.id,
            node.config.clone(),
            keys(node.entropy),
            node.settings.clone(),
            tip,
            StoredState::from_map(&node.store),
        )
    }

    /// Starts node `n` from its store (at the start, and after a crash).
    fn start(&mut self, n: usize) -> Result<(), Violation> {
        let mut core = self
            .restore(n)
            .map_err(|e| self.violation(format!("node {n}'s store does not restore: {e}")))?;
        let tip = self.devnet().height();
        let watcher = ChainFollower::start_for(&mut core, &self.chain, tip)
            .map_err(|e| self.violation(format!("node {n} cannot follow the chain: {e}")))?;
        self.log(format!(
            "node {n} follows the chain from block {}",
            watcher.tip()
        ));
        let rebroadcast = core.pending_broadcasts();
        let node = &mut self.nodes[n];
        node.core = Some(core);
        node.watcher = Some(watcher);
        if self.config.verbose {
            for c in self.nodes[n]
                .core
                .as_ref()
                .map(|c| c.channels())
                .unwrap_or_default()
            {
                eprintln!(
                    "    {n} restored {} {:?} {:?}",
                    c.channel_id, c.state, c.reason
                );
            }
        }
        for tx in rebroadcast {
            if self.config.verbose {
                eprintln!("    {n} rebroadcasts {tx:?}");
            }
            self.broadcast(tx);
        }
        Ok(())
    }

    /// The whole run: the network is built and its channels opened
    /// without faults, then payments are made under faults, then the
    /// faults stop and the network must come to rest with every
    /// invariant kept.
    pub(crate) fn run(mut self) -> Result<Report, Violation> {
        let n = self.nodes.len();
        for i in 0..n {
            self.start(i)?;
            let (t, p) = (self.ms(0, 2000), self.ms(0, 4000));
            self.after(t, Ev::Tick(i));
            self.after(p, Ev::Poll(i));
        }
        let m = self.ms(30_000, 120_000);
        self.after(m, Ev::Mine);
        self.plan_channels();
        // Setup: every channel normal on both sides.
        let deadline = self.now + Duration::from_secs(4 * 3600);
        while !self.channels_normal() {
            if self.now > deadline {
                return Err(
                    self.violation(format!("the channels did not open: {}", self.unsettled()))
                );
            }
            self.step()?;
        }
        // Workload, under faults.
        self.phase = Phase::Workload;
        self.plan_payments();
        if self.config.faults {
            let f = Duration::from_secs(
                self.rng
                    .range(self.config.fault_every.0, self.config.fault_every.1),
            );
            self.after(f, Ev::Fault);
        }
        let before = crate::check::Baseline::now(&self);
        let end = self.now + self.config.workload + Duration::from_secs(60);
        while self.now < end {
            self.step()?;
        }
        // Settle: no more faults; every node up and reachable.
        self.phase = Phase::Settle;
        for i in 0..n {
            self.nodes[i].cut_until = self.now;
            if self.nodes[i].core.is_none() {
                self.at(self.now, Ev::Restart(i));
            }
        }
        let deadline = self.now + Duration::from_secs(12 * 3600);
        let mut next_check = self.now;
        loop {
            if self.now >= next_check {
                if self.quiet() {
                    break;
                }
                next_check = self.now + Duration::from_secs(60);
            }
            if self.now > deadline {
                if self.config.verbose {
                    self.explain_pending();
                }
                return Err(self.violation(format!(
                    "not at rest twelve hours after the faults stopped: {}",
                    self.unsettled()
                )));
            }
            self.step()?;
        }
        crate::check::at_rest(&mut self, &before)?;
        Ok(Report {
            seed: self.seed,
            nodes: n,
            channels: self.chans.len(),
            time: self.now - Duration::from_secs(EPOCH),
            counts: self.counts.clone(),
            faults: self.faults,
            digest: self
                .digest
                .take()
                .map(|e| sha256::Hash::from_engine(e).to_byte_array()),
        })
    }

    /// Runs the next event.
    fn step(&mut self) -> Result<(), Violation> {
        let Some(((t, _), ev)) = self.queue.pop_first() else {
            return Err(self.violation("nothing left to happen"));
        };
        self.now = t;
        match ev {
            Ev::Input { node, life, input } => {
                if self.nodes[node].life == life {
                    self.feed(node, input)?;
                }
            }
            Ev::Msg { conn, to, bytes } => {
                let c = &self.conns[conn];
                if c.live && c.open[to] {
                    let (node, peer) = c.ends[to];
                    self.feed(node, Input::PeerMessage { peer, bytes })?;
                }
            }
            Ev::Closed { conn, end } => {
                let c = &mut self.conns[conn];
                if !c.told[end] {
                    c.told[end] = true;
                    c.open[end] = false;
                    let (node, peer) = c.ends[end];
                    self.by_peer.remove(&(node, peer));
                    self.feed(node, Input::PeerDisconnected { peer })?;
                }
            }
            Ev::Dial { from, life, to, id } => {
                if self.nodes[from].life == life && self.nodes[from].core.is_some() {
                    let cut = self.now < self.nodes[from].cut_until
                        || self.now < self.nodes[to].cut_until;
                    if self.nodes[to].core.is_none() || cut {
                        self.counts.failed_dials += 1;
                        let reason = "connection timed out".to_owned();
                        self.feed(from, Input::DialFailed { id, reason })?;
                    } else {
                        self.connect(from, to);
                    }
                }
            }
            Ev::Tick(n) => {
                self.feed(n, Input::Tick)?;
                let d = self.ms(1_000, 3_000);
                self.after(d, Ev::Tick(n));
            }
            Ev::Poll(n) => {
                self.poll(n)?;
                let d = self.ms(1_000, 5_000);
                self.after(d, Ev::Poll(n));
            }
            Ev::Mine => {
                if self.phase == Phase::Workload && self.config.faults {
                    self.drop_a_transaction();
                }
                let time = self.now.as_secs() as u32;
                let miner = self.miner.clone();
                self.devnet().mine(1, &miner, time);
                self.counts.blocks += 1;
                // Quick while the channels open (they wait for depth);
                // then about every ten minutes, as on mainnet, so that the
                // faults (two minutes at most) stay shorter than an HTLC's
                // deadline: a channel that must go to chain to keep its
                // funds is a check of its own (ADR 0013).
                // Once faults stop and only blocks are awaited (closes to
                // resolve, delays to run out), they come quickly.
                let d = if self.phase == Phase::Setup {
                    self.ms(30_000, 120_000)
                } else if self.phase == Phase::Settle && self.unsettled_parts().0.is_empty() {
                    self.ms(5_000, 20_000)
                } else {
                    self.ms(300_000, 900_000)
                };
                self.after(d, Ev::Mine);
            }
            Ev::Fault => {
                if self.phase == Phase::Workload {
                    self.fault();
                    let f = Duration::from_secs(
                        self.rng
                            .range(self.config.fault_every.0, self.config.fault_every.1),
                    );
                    self.after(f, Ev::Fault);
                }
            }
            Ev::Restart(n) => {
                if self.nodes[n].core.is_none() {
                    self.start(n)?;
                }
            }
            Ev::Close(c, end, force) => {
                let node = if end == 0 {
                    self.chans[c].a
                } else {
                    self.chans[c].b
                };
                if let (Some(channel_id), true) =
                    (self.chans[c].id, self.nodes[node].core.is_some())
                {
                    // A channel forced once stays counted as forced.
                    let forced = matches!(self.chans[c].close, Some((_, true)));
                    self.chans[c].close = Some((node, force || forced));
                    let command = if force {
                        Command::ForceCloseChannel { channel_id }
                    } else {
                        Command::CloseChannel { channel_id }
                    };
                    self.command(Duration::ZERO, node, command, None);
                }
            }
            Ev::Keep(c, end) => self.keep_commitment(c, end),
            Ev::Cheat(c) => self.cheat(c),
            Ev::LongStall(n, d) => {
                if self.nodes[n].core.is_some() {
                    self.counts.long_stalls += 1;
                    self.long_stalled.insert(n);
                    self.log(format!("node {n} stalls for {d:?}"));
                    let until = self.nodes[n].stalled_until.max(self.now + d);
                    self.nodes[n].stalled_until = until;
                }
            }
            Ev::Pay(i) => {
                let p = &self.payments[i];
                let (payee, msat) = (p.payee, p.msat);
                if self.nodes[payee].core.is_some() {
                    let command = Command::CreateInvoice {
                        amount: Some(Msat::from_msat(msat)),
                        description: format!("payment {i}"),
                        expiry_secs: 3600,
                        now_secs: self.now.as_secs(),
                    };
                    self.command(Duration::ZERO, payee, command, Some(Pending::Invoice(i)));
                }
            }
        }
        Ok(())
    }

    /// Node `n` follows the chain: blocks disconnected and connected since
    /// its last poll, one input each.
    fn poll(&mut self, n: usize) -> Result<(), Violation> {
        if self.nodes[n].core.is_none() || self.now < self.nodes[n].stalled_until {
            return Ok(());
        }
        let Some(mut follower) = self.nodes[n].watcher.take() else {
            return Ok(());
        };
        let inputs = follower.poll(&self.chain);
        self.nodes[n].watcher = Some(follower);
        // A reorganisation deeper than the blocks watched fails two polls
        // before the follower starts again further down.
        let Ok(inputs) = inputs else {
            return Ok(());
        };
        let life = self.nodes[n].life;
        for input in inputs {
            if self.nodes[n].life != life {
                break;
            }
            self.feed(n, input)?;
        }
        Ok(())
    }

    /// Node `n` handles one input; its outputs are performed in order,
    /// unless it crashes between two of them.
    fn feed(&mut self, n: usize, input: Input) -> Result<(), Violation> {
        if self.now < self.nodes[n].stalled_until {
            if matches!(input, Input::Tick) {
                // A frozen process's timer: one tick on waking is enough.
                return Ok(());
            }
            // Frozen: what arrives waits, in order.
            let (t, life) = (self.nodes[n].stalled_until, self.nodes[n].life);
            self.at(
                t,
                Ev::Input {
                    node: n,
                    life,
                    input,
                },
            );
            return Ok(());
        }
        let now = self.now;
        let Some(core) = self.nodes[n].core.as_mut() else {
            return Ok(());
        };
        self.counts.steps += 1;
        if self.config.verbose {
            eprintln!(
                "[{:.3}] {n} <- {}",
                (now - Duration::from_secs(EPOCH)).as_secs_f64(),
                brief_input(&input)
            );
        }
        let outs = core.handle(now, input);
        if let Some((i, o)) = misordered_output(&outs) {
            return Err(self.violation(format!(
                "node {n}'s output {i} comes before the persist of its step: {o:?}"
            )));
        }
        if let Some(e) = &mut self.digest {
            use bitcoin::hashes::HashEngine as _;
            e.input(format!("{n}: {outs:?}").as_bytes());
        }
        let crash_at = if self.phase == Phase::Workload
            && self.config.faults
            && self.rng.chance(self.config.crash)
            && self.next_fault()
        {
            Some(self.rng.below(outs.len() as u64 + 1) as usize)
        } else {
            None
        };
        let skip_persist = self.config.broken == Some(Broken::SkipPersist)
            && n == 0
            && outs.iter().any(|o| {
                matches!(
                    o,
                    Output::Send {
                        msg: Message::CommitmentSigned(_) | Message::RevokeAndAck(_),
                        ..
                    }
                )
            });
        let len = outs.len();
        for (i, o) in outs.into_iter().enumerate() {
            if crash_at == Some(i) {
                self.count_crash(i, len, &o);
                self.crash(n);
                return Ok(());
            }
            if self.config.verbose {
                eprintln!("    {n} -> {}", brief_output(&o));
            }
            match o {
                Output::Persist(_) if skip_persist => {}
                o => self.perform(n, o)?,
            }
        }
        if crash_at == Some(len) {
            self.counts.crashes += 1;
            self.crash(n);
        }
        Ok(())
    }

    fn count_crash(&mut self, i: usize, _len: usize, at: &Output) {
        if matches!(at, Output::Persist(_)) {
            self.counts.failed_commits += 1;
        } else if i > 0 && matches!(at, Output::Send { .. }) {
            self.counts.crashes_after_persist += 1;
        } else {
            self.counts.crashes += 1;
        }
    }

    fn perform(&mut self, n: usize, o: Output) -> Result<(), Violation> {
        match o {
            Output::Persist(batch) => batch.apply_to(&mut self.nodes[n].store),
            Output::Send { peer, msg } => self.send(n, peer, msg)?,
            Output::Disconnect { peer, .. } => self.close(n, peer),
            Output::Dial { id, node_id, .. } => {
                if let Some(to) = self.nodes.iter().position(|x| x.id == node_id) {
                    let life = self.nodes[n].life;
                    let d = self.ms(20, 400);
                    self.after(
                        d,
                        Ev::Dial {
                            from: n,
                            life,
                            to,
                            id,
                        },
                    );
                }
            }
            Output::Reply { id, reply } => self.on_reply(n, id, reply)?,
            Output::Event(e) => self.on_event(n, e)?,
            Output::BuildFunding {
                node_id,
                temporary_channel_id,
                script_pubkey,
                amount,
                feerate,
                reserve,
            } => {
                let devnet = self.chain.lock().unwrap_or_else(|p| p.into_inner());
                let result = self.nodes[n].wallet.build_funding(
                    &devnet,
                    script_pubkey,
                    amount,
                    u64::from(feerate.0),
                    reserve,
                );
                drop(devnet);
                let d = self.ms(1, 50);
                self.input(
                    d,
                    n,
                    Input::FundingBuilt {
                        node_id,
                        temporary_channel_id,
                        result,
                    },
                );
            }
            Output::LoadRemoteHtlcs { channel_id, number } => {
                let stored = beongae_store::list_memory(
                    &self.nodes[n].store,
                    NS_REMOTE_HTLCS,
                    &channel_id.0,
                );
                let d = self.ms(1, 20);
                self.input(
                    d,
                    n,
                    Input::RemoteHtlcs {
                        channel_id,
                        number,
                        stored: Ok(stored),
                    },
                );
            }
            Output::FundClaim {
                channel_id,
                tx,
                feerate,
                parent,
                max_fee,
                replaces,
                ..
            } => {
                let outpoint = tx
                    .input
                    .first()
                    .map(|i| i.previous_output)
                    .unwrap_or_default();
                let devnet = self.chain.lock().unwrap_or_else(|p| p.into_inner());
                let result = self.nodes[n].wallet.fund_claim(
                    &devnet,
                    tx,
                    u64::from(feerate.0),
                    parent,
                    max_fee,
                    replaces,
                );
                drop(devnet);
                let d = self.ms(1, 50);
                self.input(
                    d,
                    n,
                    Input::ClaimFunded {
                        channel_id,
                        outpoint,
                        result,
                    },
                );
            }
            Output::DoubleSpend {
                channel_id,
                tx,
                feerate,
                descendants_fee,
            } => {
                let devnet = self.chain.lock().unwrap_or_else(|p| p.into_inner());
                let result = self.nodes[n].wallet.double_spend(
                    &devnet,
                    &tx,
                    u64::from(feerate.0),
                    descendants_fee,
                );
                drop(devnet);
                let d = self.ms(1, 50);
                self.input(d, n, Input::DoubleSpent { channel_id, result });
            }
            Output::Forget { txid } => self.nodes[n].wallet.forget(txid),
            Output::Broadcast { tx } => self.broadcast(tx),
            Output::BroadcastPackage { parent, child } => {
                self.broadcast(parent);
                self.broadcast(child);
            }
            Output::NotifyDrained { peer } => {
                if let Some(&(c, end)) = self.by_peer.get(&(n, peer)) {
                    let t = self.conns[c].last[1 - end] + Duration::from_micros(1);
                    let life = self.nodes[n].life;
                    self.at(
                        t,
                        Ev::Input {
                            node: n,
                            life,
                            input: Input::PeerDrained { peer },
                        },
                    );
                }
            }
            Output::LookupFunding { scids } => {
                let devnet = self.devnet();
                let results = scids
                    .into_iter()
                    .map(|s| {
                        let found = devnet
                            .block_at(s.block())
                            .and_then(|b| b.txdata.get(s.tx_index() as usize))
                            .and_then(|tx| {
                                let outpoint = bitcoin::OutPoint::new(
                                    tx.compute_txid(),
                                    u32::from(s.output()),
                                );
                                devnet.utxo(&outpoint).map(|c| (outpoint, c.txout.clone()))
                            });
                        (s, Ok(found))
                    })
                    .collect();
                drop(devnet);
                let d = self.ms(1, 50);
                self.input(d, n, Input::FundingLookedUp { results });
            }
            _ => {}
        }
        Ok(())
    }

    fn broadcast(&mut self, tx: Transaction) {
        let txid = tx.compute_txid();
        let result = self.devnet().accept(tx);
        if let Err(e) = result {
            self.counts.refused_broadcasts += 1;
            self.log(format!("the devnet refused {txid}: {e}"));
        }
    }
}

/// An input, briefly (a replay's log).
fn brief_input(i: &Input) -> String {
    match i {
        Input::PeerMessage { peer, bytes } => match Message::decode(bytes) {
            Ok(m) => format!("{} from {}", m.name(), peer.0),
            Err(_) => format!("{} undecodable bytes from {}", bytes.len(), peer.0),
        },
        Input::BlockConnected { height, .. } => format!("block {height}"),
        other => {
            let s = format!("{other:?}");
            s.chars().take(160).collect()
        }
    }
}

/// An output, briefly.
/// A transaction in one line: txid, lock time, each input (outpoint and
/// sequence) and each output's value.
fn brief_tx(tx: &bitcoin::Transaction) -> String {
    let ins: Vec<String> = tx
        .input
        .iter()
        .map(|i| format!("{} seq {:x}", i.previous_output, i.sequence.0))
        .collect();
    let outs: Vec<String> = tx
        .output
        .iter()
        .map(|o| o.value.to_sat().to_string())
        .collect();
    format!(
        "{} lock {} in [{}] out [{}]",
        tx.compute_txid(),
        tx.lock_time,
        ins.join(", "),
        outs.join(", ")
    )
}

fn brief_output(o: &Output) -> String {
    match o {
        Output::Send { peer, msg } => format!("send {} to {}", msg.name(), peer.0),
        Output::Persist(b) => format!("persist {} bytes", b.bytes()),
        Output::Broadcast { tx } => format!("broadcast {}", brief_tx(tx)),
        Output::BroadcastPackage { parent, child } => format!(
            "broadcast package {} + {}",
            brief_tx(parent),
            brief_tx(child)
        ),
        other => {
            let s = format!("{other:?}");
            s.chars().take(160).collect()
        }
    }
}
