//! The deterministic node core (DESIGN.md "The core: events in, actions out").
//!
//! [`NodeCore::handle`] takes the current time and one [`Input`] and returns
//! the [`Output`]s to perform, in order. It does no I/O, reads no clock and
//! draws no randomness of its own: the runtime (or a test, or the simulator)
//! feeds it and carries out what it returns.

pub mod channels;
mod features;
mod peers;

pub use features::default_features;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use beongae_script::FeeratePerKw;
use beongae_store::Batch;
use beongae_wallet::KeyManager;
use beongae_wire::msgs::MAX_PONG_BYTES;
use beongae_wire::{
    ChainHash, ChannelId, Features, Message, Msat, NodeId, PaymentHash, Preimage, ShortChannelId,
};
use bitcoin::secp256k1::SecretKey;
use bitcoin::{Amount, Block, ScriptBuf, Transaction, Txid};

pub use channels::record::RecordError;
use channels::Channels;
pub use channels::{
    ChannelSettings, ChannelState, ChannelSummary, PaymentSummary, StoredState, UnresolvedHtlc,
};
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
    /// The answer to [`Output::LoadRemoteHtlcs`]: the channel's entries
    /// (key, value) in `record::NS_REMOTE_HTLCS`, or why they could not be
    /// read.
    RemoteHtlcs {
        /// The channel.
        channel_id: ChannelId,
        /// The peer's commitment number.
        number: u64,
        /// The entries whose key starts with `channel_id`.
        stored: Result<beongae_store::Entries, String>,
    },
    /// The wallet's answer to [`Output::FundClaim`].
    ClaimFunded {
        /// The channel.
        channel_id: ChannelId,
        /// The output the HTLC transaction spends (its input 0).
        outpoint: bitcoin::OutPoint,
        /// The transaction with the wallet's input and change, signed, not
        /// broadcast; or why not.
        result: Result<Transaction, String>,
    },
    /// The wallet's answer to [`Output::DoubleSpend`].
    DoubleSpent {
        /// The channel.
        channel_id: ChannelId,
        /// The signed transaction, not broadcast, or why not.
        result: Result<Transaction, String>,
    },
    /// A dial requested with [`Output::Dial`] failed before the handshake completed.
    DialFailed {
        /// The command that asked for it.
        id: CommandId,
        /// Why, for the user.
        reason: String,
    },
    /// The wallet's answer to [`Output::BuildFunding`].
    FundingBuilt {
        /// The peer.
        node_id: NodeId,
        /// The channel's `temporary_channel_id`.
        temporary_channel_id: ChannelId,
        /// The signed, not yet broadcast, funding transaction, or why not.
        result: Result<Transaction, Failure>,
    },
    /// A block joined the best chain.
    BlockConnected {
        /// Its height.
        height: u32,
        /// The block.
        block: Arc<Block>,
    },
    /// The block at `height` left the best chain (a reorganisation).
    BlockDisconnected {
        /// Its height.
        height: u32,
    },
    /// The chain's current fee estimate (for new channels and closes).
    FeerateEstimate(FeeratePerKw),
    /// The chain source's tip, sent before the blocks that lead to it.
    ChainTip {
        /// Its height.
        height: u32,
    },
    /// What was sent to a peer before [`Output::NotifyDrained`] is written
    /// to its connection.
    PeerDrained {
        /// The connection.
        peer: PeerId,
    },
    /// The answer to [`Output::LookupFunding`]: per short channel id, the
    /// unspent output it names (with its outpoint), `None` when there is
    /// none (no such block, transaction or output, or spent), or why the
    /// chain could not tell.
    FundingLookedUp {
        /// The answers, one per short channel id asked for.
        results: Vec<(ShortChannelId, FundingLookup)>,
    },
}

/// What the chain says about the output a short channel id names.
pub type FundingLookup = Result<Option<(bitcoin::OutPoint, bitcoin::TxOut)>, String>;

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
    /// Open a channel to a connected peer; the reply comes once the funding
    /// transaction is broadcast.
    OpenChannel {
        /// The peer.
        node_id: NodeId,
        /// `funding_satoshis`
        funding: Amount,
        /// `push_msat`
        push: Msat,
        /// `announce_channel`: a public channel, announced to the network
        /// once six blocks deep (BOLT 7).
        announce: bool,
    },
    /// List channels.
    ListChannels,
    /// What the wallet keeps for the fees of anchor channels' force closes
    /// (`Reply::FeeReserve`).
    FeeReserve,
    /// What funding one more channel asks of the wallet
    /// (`Reply::FundingTerms`), to open a channel with everything it holds.
    FundingTerms,
    /// How far the node has followed the chain (`Reply::ChainState`).
    ChainState,
    /// Every HTLC we forwarded (`Reply::Forwards`).
    ListForwards,
    /// Sets the forwarding policy of a channel (every open channel's for
    /// `None`); `Reply::PolicySet` names the channels.
    SetPolicy {
        /// The channel, or all.
        channel_id: Option<ChannelId>,
        /// The policy.
        policy: channels::policy::ForwardingPolicy,
    },
    /// Close a channel cooperatively; the reply comes once the closing
    /// transaction is broadcast.
    CloseChannel {
        /// The channel.
        channel_id: ChannelId,
    },
    /// Close a channel unilaterally: broadcast our latest commitment (also
    /// while a mutual close awaits confirmation); the reply carries its txid.
    ForceCloseChannel {
        /// The channel.
        channel_id: ChannelId,
    },
    /// Create an invoice.
    CreateInvoice {
        /// Amount (none: the payer chooses).
        amount: Option<Msat>,
        /// Description (`d`).
        description: String,
        /// Expiry in seconds.
        expiry_secs: u64,
        /// Current unix time.
        now_secs: u64,
    },
    /// Pay an invoice whose payee is a channel peer; the reply comes once
    /// the payment succeeded or failed.
    Pay {
        /// The BOLT 11 invoice.
        invoice: String,
        /// Amount, if the invoice has none (or to pay more).
        amount: Option<Msat>,
        /// Current unix time.
        now_secs: u64,
        /// A fresh random key for the onion.
        session_key: SecretKey,
    },
    /// List invoices and payments.
    ListPayments,
    /// The network graph gossip taught us (`Reply::Graph`).
    ListGraph,
    /// How much of it there is (`Reply::GraphCounts`).
    GraphCounts,
    /// Pay a channel peer without an invoice (bLIP 3 keysend).
    Keysend {
        /// The payee, a channel peer.
        node_id: NodeId,
        /// Amount.
        amount: Msat,
        /// A fresh random preimage (the payee learns it from the onion).
        preimage: Preimage,
        /// A fresh random key for the onion.
        session_key: SecretKey,
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
    /// The funding transaction is broadcast.
    ChannelOpened {
        /// `channel_id`
        channel_id: ChannelId,
        /// Funding txid.
        funding_txid: Txid,
    },
    /// The channels.
    Channels(Vec<ChannelSummary>),
    /// The wallet's fee reserve for anchor channels' force closes.
    FeeReserve(Amount),
    /// What funding one more channel asks of the wallet.
    FundingTerms {
        /// The feerate its funding transaction pays.
        feerate: beongae_script::FeeratePerKw,
        /// What the wallet must keep once it is funded (the fee reserve
        /// with this channel counted as an anchor channel).
        reserve: Amount,
        /// The largest funding we open (under 2^24 sat without
        /// `option_support_large_channel`, BOLT 2).
        max_funding: Amount,
    },
    /// The height blocks were processed to, and the best tip known (the
    /// node is behind while it is higher).
    ChainState {
        /// Processed to.
        height: u32,
        /// The best tip the chain source reported.
        tip: u32,
    },
    /// The HTLCs we forwarded, newest first.
    Forwards(Vec<channels::forward::ForwardSummary>),
    /// The channels whose policy was set.
    PolicySet(Vec<ChannelId>),
    /// The closing transaction is broadcast.
    ChannelClosed {
        /// `channel_id`
        channel_id: ChannelId,
        /// Closing txid.
        txid: Txid,
    },
    /// A new invoice.
    Invoice {
        /// BOLT 11 string.
        invoice: String,
        /// Its payment hash.
        payment_hash: PaymentHash,
    },
    /// The payment succeeded.
    Paid {
        /// `payment_hash`
        payment_hash: PaymentHash,
        /// The payee's preimage: proof of payment.
        preimage: Preimage,
        /// Amount delivered.
        amount: Msat,
    },
    /// Invoices and payments.
    Payments(Vec<PaymentSummary>),
    /// The network graph.
    Graph(channels::gossip::NetworkGraph),
    /// The network graph's size.
    GraphCounts(channels::gossip::GraphCounts),
    /// The command failed: what kind of failure, and why in words.
    Failed(Failure),
}

impl Reply {
    /// A failure of `kind`, explained by `message`.
    pub fn failed(kind: FailureKind, message: impl Into<String>) -> Reply {
        Reply::Failed(Failure {
            kind,
            message: message.into(),
        })
    }
}

/// Why a command failed: a kind that programs can act on (the API's error
/// code) and a sentence for people that says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// Why, in words.
    pub message: String,
}

/// The kinds of [`Failure`]; each has a stable [`FailureKind::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The node is not connected to that peer: connect first.
    NotConnected,
    /// The connection could not be made (dial, handshake or `init`).
    ConnectFailed,
    /// No channel of ours has that id.
    UnknownChannel,
    /// The channel exists but cannot do this now (not open yet, closing,
    /// closed, or its peer is offline).
    ChannelUnusable,
    /// The channel failed while the command waited (the message says why).
    ChannelFailed,
    /// The peer refused (its `error` message says why).
    PeerRefused,
    /// The on-chain wallet cannot pay for it.
    InsufficientFunds,
    /// The invoice cannot be paid by this node (malformed, expired, for
    /// another network, or missing an amount).
    InvalidInvoice,
    /// That payment was made already, or is under way.
    DuplicatePayment,
    /// No channel or route can carry the payment.
    NoRoute,
    /// The payment was tried and failed (the message says where and why).
    PaymentFailed,
    /// The payment's outcome is not known yet (its HTLC is being resolved
    /// on chain): it may still succeed; ask again later.
    PaymentPending,
    /// The node is still processing blocks; try again in a moment.
    NotSynced,
    /// Something else the node will not do (the message says why).
    Refused,
}

impl FailureKind {
    /// The stable code programs match on (the API's `error.code`).
    pub fn code(self) -> &'static str {
        match self {
            FailureKind::NotConnected => "not_connected",
            FailureKind::ConnectFailed => "connect_failed",
            FailureKind::UnknownChannel => "unknown_channel",
            FailureKind::ChannelUnusable => "channel_unusable",
            FailureKind::ChannelFailed => "channel_failed",
            FailureKind::PeerRefused => "peer_refused",
            FailureKind::InsufficientFunds => "insufficient_funds",
            FailureKind::InvalidInvoice => "invalid_invoice",
            FailureKind::DuplicatePayment => "duplicate_payment",
            FailureKind::NoRoute => "no_route",
            FailureKind::PaymentFailed => "payment_failed",
            FailureKind::PaymentPending => "payment_pending",
            FailureKind::NotSynced => "not_synced",
            FailureKind::Refused => "refused",
        }
    }
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
    /// Make these writes durable before performing any later output.
    Persist(Batch),
    /// Build and sign (not broadcast) a transaction paying `amount` to
    /// `script_pubkey`; answer with [`Input::FundingBuilt`].
    BuildFunding {
        /// The peer.
        node_id: NodeId,
        /// The channel's `temporary_channel_id`.
        temporary_channel_id: ChannelId,
        /// The 2-of-2 P2WSH output script.
        script_pubkey: ScriptBuf,
        /// Channel capacity.
        amount: Amount,
        /// Feerate for the funding transaction.
        feerate: FeeratePerKw,
        /// What the wallet must still hold afterwards: the fee reserve for
        /// anchor channels' force closes, this one included
        /// (`Channels::fee_reserve`); refuse the funding otherwise.
        reserve: Amount,
    },
    /// Read the channel's entries in `record::NS_REMOTE_HTLCS` (every
    /// entry whose key starts with `channel_id`); answer with
    /// [`Input::RemoteHtlcs`]. What a penalty on the peer's revoked
    /// commitment `number` needs, kept on disk only.
    LoadRemoteHtlcs {
        /// The channel.
        channel_id: ChannelId,
        /// The peer's commitment number.
        number: u64,
    },
    /// Add wallet inputs (and a change output after the existing outputs)
    /// to our transaction `tx` of an anchor channel (an HTLC transaction or
    /// the child of our commitment's anchor), whose input 0 pays no fee,
    /// so that the whole pays `feerate`; sign them and answer with
    /// [`Input::ClaimFunded`] (not broadcast: the core signs input 0 over
    /// the result and keeps it first).
    FundClaim {
        /// The channel.
        channel_id: ChannelId,
        /// The HTLC transaction, input 0 signed.
        tx: Transaction,
        /// The outputs its inputs spend.
        prevouts: Vec<bitcoin::TxOut>,
        /// Feerate for the whole transaction (with `parent`, for both).
        feerate: FeeratePerKw,
        /// An unconfirmed parent the fee pays for too (CPFP): its weight
        /// and the fee it pays.
        parent: Option<(u64, Amount)>,
        /// The most the added inputs may pay (what is at stake); more is
        /// an error.
        max_fee: Amount,
        /// A transaction of ours it replaces (a fee bump): its wallet
        /// inputs may be spent again.
        replaces: Option<Txid>,
    },
    /// Spend the inputs of our unconfirmed funding transaction `tx` back
    /// to the wallet, paying more than it did (and at least `feerate`),
    /// so that it can never confirm; answer with [`Input::DoubleSpent`]
    /// (not broadcast: the core keeps it first).
    DoubleSpend {
        /// The channel.
        channel_id: ChannelId,
        /// Our funding transaction.
        tx: Transaction,
        /// The least feerate to pay.
        feerate: FeeratePerKw,
        /// The fees of transactions spending `tx` that may be in mempools
        /// (a commitment 0), which the double spend must outbid too
        /// (BIP 125).
        descendants_fee: Amount,
    },
    /// The wallet should forget a transaction of ours it was told of
    /// (funded or broadcast) that can never confirm now (replaced, or
    /// conflicting with one that confirmed), so that its inputs are
    /// spendable again and its outputs not counted.
    Forget {
        /// The transaction.
        txid: Txid,
    },
    /// Broadcast `child` with its unconfirmed `parent` as one package
    /// (our commitment and the child spending its anchor: child pays for
    /// parent, even when the parent alone is below the mempool minimum).
    BroadcastPackage {
        /// Our commitment.
        parent: Transaction,
        /// The child spending its anchor.
        child: Transaction,
    },
    /// Broadcast a transaction (funding, closing, or our commitment).
    Broadcast {
        /// The transaction.
        tx: Transaction,
    },
    /// Report [`Input::PeerDrained`] once what was sent to `peer` so far
    /// is written (the next page of a large answer goes then).
    NotifyDrained {
        /// The connection.
        peer: PeerId,
    },
    /// Look up the outputs these short channel ids name (BOLT 7: a
    /// `channel_announcement` is checked against its unspent funding
    /// output); answer with [`Input::FundingLookedUp`].
    LookupFunding {
        /// The short channel ids.
        scids: Vec<ShortChannelId>,
    },
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
    /// Both commitment 0s are signed; the funding transaction awaits
    /// confirmation.
    ChannelPending {
        /// `channel_id`
        channel_id: ChannelId,
        /// The peer.
        peer: NodeId,
        /// Funding txid.
        funding_txid: Txid,
    },
    /// The channel entered normal operation.
    ChannelReady {
        /// `channel_id`
        channel_id: ChannelId,
        /// The peer.
        peer: NodeId,
        /// Its short channel id.
        short_channel_id: Option<ShortChannelId>,
    },
    /// The channel closed (cooperatively, failed, or spent on chain).
    ChannelClosed {
        /// `channel_id`
        channel_id: ChannelId,
        /// The transaction spending the funding output, if known.
        txid: Option<Txid>,
    },
    /// One of our invoices was paid.
    PaymentReceived {
        /// `payment_hash`
        payment_hash: PaymentHash,
        /// Amount received.
        amount: Msat,
    },
    /// A payment we made succeeded.
    PaymentSent {
        /// `payment_hash`
        payment_hash: PaymentHash,
        /// Amount delivered.
        amount: Msat,
    },
    /// A payment we made failed.
    PaymentFailed {
        /// `payment_hash`
        payment_hash: PaymentHash,
        /// Why.
        reason: String,
    },
    /// The peer's `commitment_signed` did not sign the commitment we
    /// compute for its number, or its `channel_reestablish` named
    /// commitment numbers our state does not have: the channel fails.
    ///
    /// This is how a node sees its peer sign two different commitments for
    /// one number. The number a `commitment_signed` signs is not in the
    /// message (BOLT 2): it is the receiver's next, and the receiver builds
    /// that transaction from the updates both sides have. A second,
    /// different commitment for a number already signed therefore arrives
    /// as a signature that does not verify for the next number, and a peer
    /// whose state went back (a standby restored from an old copy) shows
    /// it in `channel_reestablish`. Both are counted
    /// ([`crate::runtime::NodeHandle::commitments_refused`]).
    CommitmentRefused {
        /// `channel_id`
        channel_id: ChannelId,
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: String,
    },
}

/// The persistence rule (DESIGN.md "Persistence", SAFETY.md "Killed after
/// `Persist` and before the `Send`s that follow it"): among one input's
/// outputs, a channel message, a broadcast or a reply never comes before
/// that input's [`Output::Persist`], since it may depend on what the batch
/// writes. Returns the first output that breaks the rule, with its index.
pub fn misordered_output(outs: &[Output]) -> Option<(usize, &Output)> {
    let persist = outs.iter().position(|o| matches!(o, Output::Persist(_)))?;
    outs[..persist].iter().enumerate().find(|(_, o)| match o {
        Output::Send { msg, .. } => channels::message_channel(msg).is_some(),
        Output::Broadcast { .. } | Output::BroadcastPackage { .. } | Output::Reply { .. } => true,
        _ => false,
    })
}

/// The deterministic node state machine.
pub struct NodeCore {
    config: CoreConfig,
    local_id: NodeId,
    peers: BTreeMap<PeerId, Peer>,
    /// `Connect` commands waiting for the node to become ready.
    pending_connects: Vec<(CommandId, NodeId)>,
    rng: u64,
    /// The channel layer, when the node has keys for channels.
    channels: Option<Channels>,
    /// Channel peers we redial: when next, and the current back-off.
    redial: BTreeMap<NodeId, (Duration, Duration)>,
}

/// The command id of the core's own dials (reconnecting channel peers);
/// their replies go nowhere.
pub const RECONNECT_COMMAND: CommandId = CommandId(u64::MAX);

/// Wait before redialling a channel peer after a dial (the first dial is
/// immediate); longer than a dial can take (connect and handshake timeouts,
/// 10 s each by default), so two dials to a node never overlap. Doubles up
/// to [`MAX_REDIAL`].
const FIRST_REDIAL: Duration = Duration::from_secs(25);
const MAX_REDIAL: Duration = Duration::from_secs(300);

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
            channels: None,
            redial: BTreeMap::new(),
        }
    }

    /// Dials channel peers that are away, with exponential back-off.
    fn redial_channel_peers(&mut self, now: Duration, out: &mut Vec<Output>) {
        let Some(c) = &self.channels else {
            return;
        };
        for (node_id, addr) in c.reconnect_targets() {
            if self.peer_by_node(node_id).is_some() {
                continue;
            }
            let (next, backoff) = self.redial.entry(node_id).or_insert((now, FIRST_REDIAL));
            if now < *next {
                continue;
            }
            *next = now + *backoff;
            *backoff = (*backoff * 2).min(MAX_REDIAL);
            out.push(Output::Dial {
                id: RECONNECT_COMMAND,
                node_id,
                addr,
            });
        }
    }

    /// A core with channels: keys derive from `keys`, the state comes from
    /// `stored` (what the store held), and blocks up to `height` are known.
    pub fn with_channels(
        local_id: NodeId,
        config: CoreConfig,
        keys: KeyManager,
        settings: ChannelSettings,
        height: u32,
        stored: StoredState,
    ) -> Result<Self, RecordError> {
        let channels = Channels::new(keys, config.chain, settings, height, stored)?;
        let mut core = NodeCore::new(local_id, config);
        core.channels = Some(channels);
        Ok(core)
    }

    /// The height the channel layer has processed blocks to.
    pub fn height(&self) -> Option<u32> {
        self.channels.as_ref().map(|c| c.height)
    }

    /// The height the node followed the chain to (stored, or reached by a
    /// block since), `None` if it never followed it: where following
    /// resumes when [`NodeCore::recent_blocks`] are not known
    /// ([`crate::follow::ChainFollower::start`]).
    pub fn followed_height(&self) -> Option<u32> {
        self.channels
            .as_ref()
            .filter(|c| c.followed)
            .map(|c| c.height)
    }

    /// The block where a core that never followed the chain starts
    /// following it (the tip it was made at,
    /// [`crate::follow::ChainFollower::start_for`]): the first of
    /// [`NodeCore::recent_blocks`], stored with the height at the first
    /// write, so that a restart before the next block resumes from it. (A
    /// stored height without it resumes a hundred blocks below, as after a
    /// deep reorganisation, and the graph forgot every channel announced
    /// in those blocks: found by the gossip test, a new node that learnt
    /// the graph and restarted before the next block.) Nothing for a core
    /// that followed the chain, or at another height.
    pub fn starts_following_at(&mut self, height: u32, hash: bitcoin::BlockHash) {
        if let Some(c) = self.channels.as_mut() {
            if !c.followed && c.recent.is_empty() && height == c.height {
                c.recent.push_back((height, hash));
            }
        }
    }

    /// `(height, hash)` of the last blocks processed (up to 100, lowest
    /// first, consecutive), as stored: where following the chain resumes
    /// after a restart, so that blocks reorganised away meanwhile are
    /// disconnected first. Empty for a store that has none yet.
    pub fn recent_blocks(&self) -> Vec<(u32, bitcoin::BlockHash)> {
        self.channels
            .as_ref()
            .map(|c| c.recent.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every invoice and payment.
    pub fn payments(&self) -> Vec<PaymentSummary> {
        self.channels
            .as_ref()
            .map(|c| c.payments())
            .unwrap_or_default()
    }

    /// The network graph gossip taught us (`None` without channels).
    pub fn graph(&self) -> Option<&beongae_graph::Graph> {
        self.channels.as_ref().map(|c| &c.gossip.graph)
    }

    /// Peers whose next gossip filter asks for two weeks.
    #[cfg(test)]
    pub(crate) fn gossip_unanswered(&self) -> Vec<NodeId> {
        self.channels
            .as_ref()
            .map(|c| c.gossip.unanswered.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every HTLC this node forwarded, newest first.
    pub fn forwards(&self) -> Vec<channels::forward::ForwardSummary> {
        self.channels
            .as_ref()
            .map(|c| c.forward_summaries())
            .unwrap_or_default()
    }

    /// Our current commitment of open channel `channel`, fully signed, with
    /// its number: what a cheating node keeps to broadcast once it is
    /// revoked. For the simulator only (feature `sim`).
    #[cfg(feature = "sim")]
    pub fn signed_commitment(&self, channel: ChannelId) -> Option<(u64, Transaction)> {
        let c = self.channels.as_ref()?;
        match &c.entries.get(&channel)?.phase {
            channels::Phase::Normal { chan, .. } => Some((
                chan.local_number.get(),
                chan.signed_local_commitment(&c.secp).ok()?,
            )),
            _ => None,
        }
    }

    /// Our transactions not yet seen confirmed (funding we built, closing
    /// or commitment transactions, claims, and the children paying for our
    /// commitments after them): to broadcast again after a restart.
    pub fn pending_broadcasts(&self) -> Vec<Transaction> {
        let Some(c) = self.channels.as_ref() else {
            return Vec::new();
        };
        let mut txs = c.pending_broadcasts();
        txs.extend(c.pending_packages().into_iter().map(|(_, child)| child));
        txs
    }

    /// Every channel.
    pub fn channels(&self) -> Vec<ChannelSummary> {
        self.channels
            .as_ref()
            .map(Channels::summaries)
            .unwrap_or_default()
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

    /// Processes one input at time `now`: the time since the Unix epoch
    /// (it stamps our gossip and forward records; timers compare it), which
    /// the caller never lets go back.
    pub fn handle(&mut self, now: Duration, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(c) = &mut self.channels {
            c.now = now;
        }
        match input {
            Input::PeerConnected {
                peer,
                node_id,
                direction,
                remote_addr,
            } => self.on_connected(now, peer, node_id, direction, remote_addr, &mut out),
            Input::PeerMessage { peer, bytes } => self.on_message(now, peer, &bytes, &mut out),
            Input::PeerDisconnected { peer } => self.remove_peer(peer, &mut out),
            Input::Tick => {
                self.on_tick(now, &mut out);
                self.redial_channel_peers(now, &mut out);
                if let Some(c) = &mut self.channels {
                    c.expire_openings(now);
                    c.expire_negotiations(now);
                    c.expire_held(now);
                    c.gossip_tick();
                }
            }
            Input::Command { id, command } => self.on_command(now, id, command, &mut out),
            Input::DialFailed { id, reason } => {
                self.pending_connects.retain(|(c, _)| *c != id);
                out.push(Output::Reply {
                    id,
                    reply: Reply::failed(FailureKind::ConnectFailed, reason),
                });
            }
            Input::FundingBuilt {
                node_id,
                temporary_channel_id,
                result,
            } => {
                if let Some(c) = &mut self.channels {
                    c.on_funding_built(node_id, temporary_channel_id, result);
                }
            }
            Input::RemoteHtlcs {
                channel_id,
                number,
                stored,
            } => {
                if let Some(c) = &mut self.channels {
                    c.on_remote_htlcs(channel_id, number, stored);
                }
            }
            Input::ClaimFunded {
                channel_id,
                outpoint,
                result,
            } => {
                if let Some(c) = &mut self.channels {
                    c.on_claim_funded(channel_id, outpoint, result);
                }
            }
            Input::DoubleSpent { channel_id, result } => {
                if let Some(c) = &mut self.channels {
                    c.on_double_spent(channel_id, result);
                }
            }
            Input::BlockConnected { height, block } => {
                if let Some(c) = &mut self.channels {
                    c.on_block(height, &block);
                }
            }
            Input::BlockDisconnected { height } => {
                if let Some(c) = &mut self.channels {
                    c.on_block_disconnected(height);
                }
            }
            Input::FeerateEstimate(f) => {
                if let Some(c) = &mut self.channels {
                    c.set_feerate(f);
                }
            }
            Input::ChainTip { height } => {
                if let Some(c) = &mut self.channels {
                    c.tip = height;
                }
            }
            Input::PeerDrained { peer } => {
                let node = self.peers.get(&peer).map(|p| p.node_id);
                if let (Some(c), Some(node)) = (&mut self.channels, node) {
                    c.gossip_drained(node);
                }
            }
            Input::FundingLookedUp { results } => {
                if let Some(c) = &mut self.channels {
                    c.on_funding_looked_up(results);
                }
            }
        }
        if let Some(c) = &mut self.channels {
            let mut flushed = Vec::new();
            c.flush(&mut flushed);
            // The batch also holds what the peer layer's outputs of this
            // input may depend on (`Connected` answers a command whose
            // dialled address the batch remembers): it goes first.
            if let Some(Output::Persist(_)) = flushed.first() {
                out.insert(0, flushed.remove(0));
            }
            out.append(&mut flushed);
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
                        reply: Reply::failed(FailureKind::Refused, "cannot connect to ourselves"),
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
                        reply: Reply::failed(FailureKind::Refused, why),
                    });
                    return;
                }
                let ready = self
                    .peer_by_node(node_id)
                    .filter(|p| self.peers[p].is_ready());
                let Some(peer) = ready else {
                    out.push(Output::Reply {
                        id,
                        reply: Reply::failed(
                            FailureKind::NotConnected,
                            format!("not connected to {node_id}"),
                        ),
                    });
                    return;
                };
                self.send_ping(now, peer, num_pong_bytes, Some(id), out);
            }
            other => self.on_channel_command(id, other, out),
        }
    }

    fn on_channel_command(&mut self, id: CommandId, command: Command, out: &mut Vec<Output>) {
        let Some(c) = &mut self.channels else {
            out.push(Output::Reply {
                id,
                reply: Reply::failed(
                    FailureKind::Refused,
                    "this node runs without channels (no wallet)",
                ),
            });
            return;
        };
        match command {
            Command::OpenChannel {
                node_id,
                funding,
                push,
                announce,
            } => c.open(node_id, funding, push, announce, id),
            Command::ListChannels => out.push(Output::Reply {
                id,
                reply: Reply::Channels(c.summaries()),
            }),
            Command::FeeReserve => out.push(Output::Reply {
                id,
                reply: Reply::FeeReserve(c.fee_reserve(0)),
            }),
            Command::FundingTerms => out.push(Output::Reply {
                id,
                reply: Reply::FundingTerms {
                    feerate: c.feerate,
                    reserve: c.fee_reserve(1),
                    max_funding: if c.settings.config.large_channels {
                        Amount::MAX_MONEY
                    } else {
                        beongae_channel::open::LARGE_CHANNEL - Amount::ONE_SAT
                    },
                },
            }),
            Command::ChainState => out.push(Output::Reply {
                id,
                reply: Reply::ChainState {
                    height: c.height,
                    tip: c.tip.max(c.height),
                },
            }),
            Command::ListForwards => out.push(Output::Reply {
                id,
                reply: Reply::Forwards(c.forward_summaries()),
            }),
            Command::SetPolicy { channel_id, policy } => {
                let reply = match c.set_policy(channel_id, policy) {
                    Ok(ids) => Reply::PolicySet(ids),
                    Err(why) => Reply::failed(FailureKind::Refused, why),
                };
                // After the policy is stored.
                c.reply(Some(id), reply);
            }
            Command::CloseChannel { channel_id } => c.close(channel_id, id),
            Command::ForceCloseChannel { channel_id } => c.force_close(channel_id, id),
            Command::CreateInvoice {
                amount,
                description,
                expiry_secs,
                now_secs,
            } => {
                let reply = match c.create_invoice(amount, &description, expiry_secs, now_secs) {
                    Ok((invoice, payment_hash)) => Reply::Invoice {
                        invoice,
                        payment_hash,
                    },
                    Err(why) => Reply::failed(FailureKind::Refused, why),
                };
                // After the invoice record is stored.
                c.reply(Some(id), reply);
            }
            Command::Pay {
                invoice,
                amount,
                now_secs,
                session_key,
            } => c.pay(&invoice, amount, now_secs, session_key, id),
            Command::Keysend {
                node_id,
                amount,
                preimage,
                session_key,
            } => c.keysend(node_id, amount, preimage, session_key, id),
            Command::ListPayments => out.push(Output::Reply {
                id,
                reply: Reply::Payments(c.payments()),
            }),
            Command::ListGraph => out.push(Output::Reply {
                id,
                reply: Reply::Graph(c.network_graph()),
            }),
            Command::GraphCounts => out.push(Output::Reply {
                id,
                reply: Reply::GraphCounts(c.graph_counts()),
            }),
            Command::Connect { .. }
            | Command::ListPeers
            | Command::Disconnect { .. }
            | Command::Ping { .. } => {}
        }
    }
}

#[cfg(test)]
mod channel_tests;
#[cfg(test)]
mod tests;
