//! The node's channels (BOLT 2) inside the core: opening in both roles,
//! normal operation, reconnection, cooperative close, and the payments
//! that ride on them.
//!
//! Every change of a channel or payment is collected during one input and
//! written as one [`Output::Persist`] batch placed before every message,
//! broadcast and reply that depends on it (DESIGN.md "Persistence": the
//! runtime makes the batch durable before it performs what follows).

mod announce;
mod bump;
mod chain;
mod fee;
pub mod forward;
pub mod gossip;
pub mod keysend;
mod limbo;
mod mpp;
mod normal;
pub mod onions;
mod open;
mod pay;
pub mod policy;
pub mod record;
mod resolve;
mod route;
pub(crate) mod spends;
mod unfunded;
mod withheld;

use std::collections::{BTreeMap, BTreeSet};

use beongae_channel::close::ClosingNegotiation;
use beongae_channel::config::ChannelConfig;
use beongae_channel::funding::{Funding, LocalSetup};
use beongae_channel::normal::{NormalChannel, OnionKey};
use beongae_channel::propose::our_limits;
use beongae_channel::revocation::LocalSecrets;
use beongae_channel::sign::SigningKeys;
use beongae_script::FeeratePerKw;
use beongae_store::Batch;
use beongae_wallet::KeyManager;
use beongae_wire::msgs::{ChannelReady, Message};
use beongae_wire::{
    ChainHash, ChannelId, ErrorMessage, Features, Msat, NodeId, PaymentHash, ShortChannelId,
};
use bitcoin::secp256k1::{All, Secp256k1, SecretKey};
use bitcoin::{Amount, ScriptBuf, Transaction, Txid};

use super::{CommandId, FailureKind, Output, PeerId, Reply};
use open::Opening;
use record::{
    ChannelRecord, InvoiceRecord, OutgoingRecord, RecordError, StoredPhase, KEY_HEIGHT,
    KEY_NEXT_CHANNEL, KEY_NEXT_INVOICE, NS_CHANNELS, NS_NODE,
};

pub use pay::PaymentSummary;

/// What the channel layer needs besides the peer layer's settings.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// Our limits and what we accept of peers.
    pub config: ChannelConfig,
    /// Where our funds go on a cooperative close (a wallet address).
    pub close_script: Option<ScriptBuf>,
    /// Feerate for new channels and closes until the runtime reports one.
    pub feerate: FeeratePerKw,
    /// `min_final_cltv_expiry_delta` of our invoices.
    pub min_final_cltv_expiry_delta: u16,
    /// The policy we forward HTLCs with (ADR 0009).
    pub policy: policy::ForwardingPolicy,
    /// What we announce and how we gossip (BOLT 7).
    pub gossip: gossip::GossipSettings,
    /// A payment over a route is not tried again after this long (its
    /// parts in flight still resolve: only then does it fail).
    pub payment_timeout: std::time::Duration,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        ChannelSettings {
            config: ChannelConfig::default(),
            close_script: None,
            feerate: FeeratePerKw(2_500),
            min_final_cltv_expiry_delta: beongae_invoice::DEFAULT_MIN_FINAL_CLTV_EXPIRY_DELTA
                as u16,
            policy: policy::ForwardingPolicy::default(),
            gossip: gossip::GossipSettings::default(),
            payment_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Everything the store held for the core, read at start.
#[derive(Debug, Clone, Default)]
pub struct StoredState {
    /// `channels` namespace entries.
    pub channels: Vec<(Vec<u8>, Vec<u8>)>,
    /// `payments` namespace entries.
    pub payments: Vec<(Vec<u8>, Vec<u8>)>,
    /// `node` namespace entries.
    pub node: Vec<(Vec<u8>, Vec<u8>)>,
    /// `peers` namespace entries.
    pub peers: Vec<(Vec<u8>, Vec<u8>)>,
    /// `peer_updates` namespace entries.
    pub peer_updates: Vec<(Vec<u8>, Vec<u8>)>,
    /// `forwards` namespace entries.
    pub forwards: Vec<(Vec<u8>, Vec<u8>)>,
    /// `policies` namespace entries.
    pub policies: Vec<(Vec<u8>, Vec<u8>)>,
    /// `gossip` namespace entries.
    pub gossip: Vec<(Vec<u8>, Vec<u8>)>,
    /// `public` namespace entries.
    pub public: Vec<(Vec<u8>, Vec<u8>)>,
    /// `onions` namespace entries ([`onions::NS_ONIONS`]).
    pub onions: Vec<(Vec<u8>, Vec<u8>)>,
}

impl StoredState {
    /// Reads every namespace the core keeps with `list` (a namespace's
    /// entries, in key order): from a [`beongae_store::Store`], or from a
    /// store held in memory by tests and benches.
    pub fn read<E>(
        mut list: impl FnMut(&str) -> Result<Vec<(Vec<u8>, Vec<u8>)>, E>,
    ) -> Result<StoredState, E> {
        Ok(StoredState {
            channels: list(record::NS_CHANNELS)?,
            payments: list(record::NS_PAYMENTS)?,
            node: list(record::NS_NODE)?,
            peers: list(record::NS_PEERS)?,
            peer_updates: list(policy::NS_PEER_UPDATES)?,
            forwards: list(forward::NS_FORWARDS)?,
            policies: list(policy::NS_POLICIES)?,
            gossip: list(gossip::NS_GOSSIP)?,
            public: list(gossip::NS_PUBLIC)?,
            onions: list(onions::NS_ONIONS)?,
        })
    }

    /// [`StoredState::read`] from a store held in memory.
    pub fn from_map(map: &beongae_store::MemoryMap) -> StoredState {
        let read: Result<StoredState, std::convert::Infallible> =
            StoredState::read(|ns| Ok(beongae_store::list_memory(map, ns, b"")));
        match read {
            Ok(s) => s,
            Err(never) => match never {},
        }
    }
}

/// Where a channel stands, for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// Funding signed; waiting for confirmations and `channel_ready`.
    AwaitingConfirmation,
    /// Payments may flow.
    Normal,
    /// `shutdown` sent or received; closing once empty.
    ShuttingDown,
    /// A mutual closing transaction is signed and broadcast; the channel
    /// stays until one confirms.
    Closing,
    /// Closed: its funding output is spent on chain, or the channel failed
    /// (our commitment, if we could broadcast it, awaits confirmation).
    Closed,
}

/// One channel, for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSummary {
    /// `channel_id`
    pub channel_id: ChannelId,
    /// The peer.
    pub peer: NodeId,
    /// Where it stands.
    pub state: ChannelState,
    /// Capacity.
    pub capacity: Amount,
    /// Our balance (our current commitment's `to_local`, HTLCs excluded).
    pub local: Msat,
    /// The peer's balance.
    pub remote: Msat,
    /// HTLCs in our current commitment.
    pub pending_htlcs: usize,
    /// While open: the number of the peer's latest commitment we signed
    /// (one per batch of updates signed; 0 otherwise).
    pub updates: u64,
    /// The funding outpoint's txid.
    pub funding_txid: Txid,
    /// Short channel id once the funding is deep enough.
    pub short_channel_id: Option<ShortChannelId>,
    /// Whether we opened it.
    pub we_are_funder: bool,
    /// The transaction that closed it.
    pub closing_txid: Option<Txid>,
    /// Whether the peer is connected and the channel reestablished.
    pub active: bool,
    /// Our alias for the channel (sent in `channel_ready`).
    pub alias: Option<ShortChannelId>,
    /// The peer's alias for it (what route hints through the peer name).
    pub remote_alias: Option<ShortChannelId>,
    /// Why a closed channel closed (and whether our commitment is held
    /// back, ADR 0007).
    pub reason: Option<String>,
    /// Our funds of a force-closed channel still on their way back to the
    /// wallet: in a commitment not yet swept, or in a sweep not yet
    /// confirmed (the "limbo" balance).
    pub closing: Amount,
    /// The height from which our delayed output can be swept, while it
    /// waits for `to_self_delay` (the earliest, if several).
    pub spendable_at: Option<u32>,
    /// HTLCs of a force-closed channel not resolved on chain yet, with
    /// their deadlines.
    pub unresolved_htlcs: Vec<UnresolvedHtlc>,
    /// HTLCs of a force-closed channel offered to us, whose preimage we
    /// had, that the peer took back on chain: worth less than claiming
    /// them and sweeping the result, or a race lost (a forward whose
    /// payment we paid downstream).
    pub lost: Amount,
    /// The largest payment we could send over it now (open and active
    /// only): what BOLT 2's checks let us offer.
    pub spendable: Msat,
    /// The largest payment the peer could send us over it now that we
    /// would accept (open and active only).
    pub receivable: Msat,
    /// While the funding awaits confirmation: its confirmations so far (0
    /// in the mempool) and how many the channel waits for (the
    /// `minimum_depth` agreed, BOLT 2).
    pub funding_confirmations: Option<(u32, u32)>,
}

/// An HTLC of a force-closed channel not resolved on chain yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedHtlc {
    /// Whether we offered it: it comes back to us after `cltv_expiry`
    /// (unless the peer claims it with the preimage first). Otherwise it
    /// was offered to us: ours with its preimage before `cltv_expiry`.
    pub we_offered: bool,
    /// `amount_msat`
    pub amount: Msat,
    /// `cltv_expiry`: the block height of the deadline.
    pub cltv_expiry: u32,
    /// Whether we can claim it: we offered it, or we have its preimage.
    pub claimable: bool,
}

/// A stored channel's live state.
pub(super) enum Phase {
    Funded {
        funding: Box<Funding>,
        tx: Option<Transaction>,
        /// The height when both commitment 0s were signed (for the fundee's
        /// 2016-block wait for the funding, BOLT 2).
        since: u32,
        depth: u32,
        confirmed: Option<(u32, u32)>,
        their_ready: Option<ChannelReady>,
        ready_sent: bool,
        command: Option<CommandId>,
    },
    Normal {
        chan: Box<NormalChannel>,
        scid: Option<ShortChannelId>,
        closing: Option<Box<ClosingNegotiation>>,
        /// With `option_simple_close`: our closing_complete and the peer's.
        simple: Option<Box<beongae_channel::simple_close::SimpleClose>>,
        command: Option<CommandId>,
        /// The alias the peer gave us (`short_channel_id_alias`).
        remote_alias: Option<ShortChannelId>,
        /// Mutual closing transactions broadcast and not yet confirmed.
        closing_txs: Vec<Transaction>,
        /// Our funding transaction (as the funder): broadcast again at
        /// every block while it is not on chain (a reorg took it out, and
        /// mempools may drop it; the channel lives on it).
        funding_tx: Option<Transaction>,
    },
    Closed(record::Closed),
}

pub(super) struct Entry {
    pub(super) peer: NodeId,
    pub(super) index: u32,
    pub(super) funding: Amount,
    pub(super) phase: Phase,
    /// The peer's `channel_reestablish` arrived on the current connection.
    pub(super) live: bool,
    /// Our removals a disconnection forgot, offered again once reestablished.
    pub(super) redo: Vec<Message>,
    /// We sent `closing_complete` on this connection (one per connection;
    /// a fee bump is a later feature).
    pub(super) sent_complete: bool,
    /// When the legacy fee negotiation began and has not agreed since
    /// (BOLT 2: "MUST fail the channel if it doesn't receive a satisfying
    /// `fee_range` after a reasonable amount of time").
    pub(super) negotiating_since: Option<std::time::Duration>,
    /// Send a `closing_complete` of ours (paying our own fee) although the
    /// user did not ask to close: the peer's closing transaction we signed
    /// pays less than the relay minimum and would never confirm.
    pub(super) close_as_closer: bool,
    /// The peer's `channel_reestablish` showed our state is current since
    /// this process loaded the channel (or the channel was made in this
    /// process): until then our commitment may be an old copy's (a restored
    /// backup), and the HTLC deadlines do not broadcast it (ADR 0007).
    pub(super) verified: bool,
    /// The least fee a replacement of our pending mutual close must pay
    /// (BIP 125), while the user's request for one is being served.
    pub(super) min_close_fee: Option<Amount>,
    /// Since when (on this connection) a simple close waits for the peer's
    /// `closing_complete` with none of ours sent: after
    /// [`normal::CLOSEE_PATIENCE`] we send ours (BOLT 2: both nodes SHOULD
    /// send one). The peer that asked to close may have lost its request
    /// in a restart, and a channel must not stay shutting down for ever.
    pub(super) closee_since: Option<std::time::Duration>,
}

impl Entry {
    fn new(peer: NodeId, index: u32, funding: Amount, phase: Phase, live: bool) -> Entry {
        Entry {
            peer,
            index,
            funding,
            phase,
            live,
            redo: Vec::new(),
            sent_complete: false,
            negotiating_since: None,
            close_as_closer: false,
            verified: live,
            min_close_fee: None,
            closee_since: None,
        }
    }
}

/// The highest fee estimate believed, in sat/kW (4,000 sat/vB).
const MAX_SANE_FEERATE: u32 = 1_000_000;

/// How many of the last blocks processed are remembered by hash (stored),
/// so that after a restart a reorganisation that happened meanwhile, up to
/// this deep, is undone block by block. Deeper ones are handled like a
/// deep reorganisation while running (the runtime undoes 100 blocks and
/// follows the chain again). As deep as a resolution is kept
/// (`BURIED_DEPTH`).
pub(super) const RECENT_BLOCKS: usize = 100;

/// A transaction of ours the wallet is adding a fee input to.
#[derive(Debug, Clone)]
pub(super) struct FundingRequest {
    /// The feerate asked for.
    pub(super) feerate: FeeratePerKw,
    /// The pending transaction it replaces (a fee bump), if any.
    pub(super) replaces: Option<Txid>,
    /// What its input 0 is, to sign it once the wallet's inputs are in.
    pub(super) kind: FundingKind,
}

/// Input 0 of a transaction the wallet adds a fee input to.
#[derive(Debug, Clone)]
pub(super) enum FundingKind {
    /// Our HTLC transaction (with the preimage, for an HTLC-success).
    Htlc {
        out: Box<beongae_channel::onchain_htlcs::HtlcOutput>,
        preimage: Option<beongae_wire::Preimage>,
    },
    /// Our anchor, spent by a child paying for our commitment.
    Anchor { prevout: bitcoin::TxOut },
}

/// The channel layer of the core.
pub(super) struct Channels {
    pub(super) secp: Secp256k1<All>,
    keys: KeyManager,
    pub(super) node_secret: SecretKey,
    pub(super) chain: ChainHash,
    pub(super) settings: ChannelSettings,
    pub(super) feerate: FeeratePerKw,
    pub(super) height: u32,
    /// `(height, hash)` of the last [`RECENT_BLOCKS`] blocks processed, up
    /// to `height` (stored: `record::KEY_RECENT_BLOCKS`).
    pub(super) recent: std::collections::VecDeque<(u32, bitcoin::BlockHash)>,
    /// Whether `height` is one the node followed the chain to (stored, or
    /// reached by a block), not just the tip it was given at its start.
    pub(super) followed: bool,
    /// The peers' `channel_update`s for their direction of our channels
    /// (stored: `policy::NS_PEER_UPDATES`), for route hints.
    pub(super) peer_updates: BTreeMap<ChannelId, beongae_wire::msgs::ChannelUpdate>,
    /// Forwarded HTLCs (stored: `forward::NS_FORWARDS`).
    pub(super) forwards: forward::Forwards,
    /// Keysend payments we received (stored: `k` records in
    /// `record::NS_PAYMENTS`).
    pub(super) keysends: BTreeMap<PaymentHash, keysend::KeysendRecord>,
    /// Parts of multi-part payments to us, held until their set is complete
    /// (stored: `h` records in `record::NS_PAYMENTS`).
    pub(super) held: BTreeMap<PaymentHash, Vec<mpp::HeldPart>>,
    /// Parts of completed multi-part payments, by HTLC (stored: `p`
    /// records).
    pub(super) settled_parts: BTreeMap<(ChannelId, u64), PaymentHash>,
    /// Payments whose failure waits for their other parts in flight.
    pub(super) failing: BTreeMap<PaymentHash, String>,
    /// Payments over a route between their attempts.
    pub(super) attempting: BTreeMap<PaymentHash, route::Attempting>,
    /// Policies set per channel (stored: `policy::NS_POLICIES`).
    pub(super) policies: BTreeMap<ChannelId, policy::ForwardingPolicy>,
    /// The policy a channel had before its last change, accepted until the
    /// time given (`policy::PREVIOUS_POLICY_GRACE`).
    pub(super) previous_policies:
        BTreeMap<ChannelId, (policy::ForwardingPolicy, std::time::Duration)>,
    /// The network graph and the gossip (stored: `gossip::NS_GOSSIP`).
    pub(super) gossip: gossip::Gossip,
    /// The `timestamp` of the last `channel_update` we sent per channel.
    pub(super) update_timestamps: BTreeMap<ChannelId, u32>,
    /// The chain source's tip as last polled (blocks up to it may still be
    /// on their way to `height`).
    pub(super) tip: u32,
    next_index: u32,
    next_invoice: u64,
    /// Ready peers: connection and features.
    pub(super) connected: BTreeMap<NodeId, (PeerId, Features)>,
    /// Where we reached channel peers we dialled.
    addresses: BTreeMap<NodeId, std::net::SocketAddr>,
    opening: BTreeMap<(NodeId, ChannelId), Opening>,
    /// When each opening began.
    opening_started: BTreeMap<(NodeId, ChannelId), std::time::Duration>,
    /// The core's clock at the current input.
    pub(super) now: std::time::Duration,
    pub(super) entries: BTreeMap<ChannelId, Entry>,
    pub(super) invoices: BTreeMap<PaymentHash, InvoiceRecord>,
    pub(super) outgoing: BTreeMap<PaymentHash, OutgoingRecord>,
    pub(super) by_htlc: BTreeMap<(ChannelId, u64), PaymentHash>,
    pub(super) waiting: BTreeMap<PaymentHash, CommandId>,
    /// Changes of the current input.
    dirty: BTreeSet<ChannelId>,
    /// The onions each open channel has in the store, apart from its
    /// record ([`onions`]).
    onions: BTreeMap<ChannelId, onions::Kept>,
    /// Closed channels whose revoked commitment's HTLCs are being read.
    loading: BTreeSet<ChannelId>,
    /// Closed channels with nothing (economical) left to claim on chain,
    /// until a restart looks again.
    unclaimable: BTreeSet<ChannelId>,
    /// Outputs whose claim was worth less than its fee, until the feerate
    /// estimate changes.
    uneconomical: BTreeSet<bitcoin::OutPoint>,
    /// Outputs whose HTLC transaction the wallet is adding a fee input to
    /// ([`Output::FundClaim`]).
    funding_claims: BTreeMap<bitcoin::OutPoint, FundingRequest>,
    pub(super) batch: Batch,
    pub(super) deferred: Vec<Output>,
}

impl Channels {
    /// The channel layer, restored from `stored`.
    pub(super) fn new(
        keys: KeyManager,
        chain: ChainHash,
        settings: ChannelSettings,
        height: u32,
        stored: StoredState,
    ) -> Result<Channels, RecordError> {
        let node_secret = keys.node_secret();
        let mut c = Channels {
            secp: Secp256k1::new(),
            keys,
            node_secret,
            chain,
            feerate: settings.feerate,
            settings,
            height,
            recent: std::collections::VecDeque::new(),
            followed: false,
            peer_updates: BTreeMap::new(),
            forwards: forward::Forwards::default(),
            policies: BTreeMap::new(),
            previous_policies: BTreeMap::new(),
            gossip: gossip::Gossip::load(chain, &stored.gossip, &stored.public),
            attempting: BTreeMap::new(),
            keysends: BTreeMap::new(),
            held: BTreeMap::new(),
            failing: BTreeMap::new(),
            settled_parts: BTreeMap::new(),
            update_timestamps: BTreeMap::new(),
            tip: 0,
            next_index: 0,
            next_invoice: 0,
            connected: BTreeMap::new(),
            addresses: BTreeMap::new(),
            opening: BTreeMap::new(),
            opening_started: BTreeMap::new(),
            now: std::time::Duration::ZERO,
            entries: BTreeMap::new(),
            invoices: BTreeMap::new(),
            outgoing: BTreeMap::new(),
            by_htlc: BTreeMap::new(),
            waiting: BTreeMap::new(),
            dirty: BTreeSet::new(),
            onions: BTreeMap::new(),
            loading: BTreeSet::new(),
            unclaimable: BTreeSet::new(),
            uneconomical: BTreeSet::new(),
            funding_claims: BTreeMap::new(),
            batch: Batch::new(),
            deferred: Vec::new(),
        };
        let u = |v: &[u8]| -> Result<u64, RecordError> {
            Ok(u64::from_be_bytes(v.try_into().map_err(|_| {
                RecordError::Corrupt("node counter".into())
            })?))
        };
        for (k, v) in &stored.node {
            match k.as_slice() {
                KEY_NEXT_CHANNEL => {
                    c.next_index = u32::try_from(u(v)?)
                        .map_err(|_| RecordError::Corrupt("channel index".into()))?
                }
                KEY_NEXT_INVOICE => c.next_invoice = u(v)?,
                KEY_HEIGHT => {
                    c.height = c.height.min(u32::try_from(u(v)?).unwrap_or(0));
                    c.followed = true;
                }
                record::KEY_RECENT_BLOCKS => match record::decode_recent_blocks(v) {
                    Ok(b) => c.recent = b,
                    // Only where following the chain resumes: from the
                    // stored height instead.
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the last blocks processed")
                    }
                },
                _ => {}
            }
        }
        for (k, v) in &stored.peers {
            let node = bitcoin::secp256k1::PublicKey::from_slice(k)
                .map(NodeId::from_pubkey)
                .map_err(|_| RecordError::Corrupt("peer key".into()))?;
            let addr = std::str::from_utf8(v)
                .ok()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| RecordError::Corrupt("peer address".into()))?;
            c.addresses.insert(node, addr);
        }
        c.forwards = forward::Forwards::load(&stored.forwards)?;
        for (k, v) in &stored.policies {
            let id = <[u8; 32]>::try_from(k.as_slice())
                .map_err(|_| RecordError::Corrupt("policy key".into()))?;
            let p = policy::ForwardingPolicy::decode(v)
                .ok_or_else(|| RecordError::Corrupt("policy".into()))?;
            c.policies.insert(ChannelId(id), p);
        }
        for (k, v) in &stored.peer_updates {
            // A hint's policy only: one that does not read is dropped.
            if let (Ok(id), Ok(Message::ChannelUpdate(u))) =
                (<[u8; 32]>::try_from(k.as_slice()), Message::decode(v))
            {
                c.peer_updates.insert(ChannelId(id), u);
            }
        }
        let mut stored_redo: BTreeMap<ChannelId, Vec<Message>> = BTreeMap::new();
        let mut stored_onions = onions::load(&stored.onions)?;
        for (k, v) in &stored.channels {
            let id = ChannelId(
                k.as_slice()
                    .try_into()
                    .map_err(|_| RecordError::Corrupt("channel key".into()))?,
            );
            let rec = ChannelRecord::decode(v)?;
            let (signing, secrets) = c.secrets(rec.index);
            let phase = match rec.phase {
                StoredPhase::Funded {
                    state,
                    tx,
                    depth,
                    confirmed,
                    since,
                } => Phase::Funded {
                    funding: Box::new(record::decode_funding(&state, signing, secrets)?),
                    tx,
                    // Unknown before record version 4: counted from now.
                    since: since.unwrap_or(height),
                    depth,
                    confirmed,
                    their_ready: None,
                    ready_sent: false,
                    command: None,
                },
                StoredPhase::Normal {
                    state,
                    scid,
                    redo,
                    remote_alias,
                    closing_txs,
                    funding_tx,
                } => {
                    stored_redo.insert(id, redo);
                    let kept = stored_onions.remove(&id).unwrap_or_default();
                    let chan = record::decode_normal_apart(&state, &kept, signing, secrets)?;
                    c.onions.insert(id, kept);
                    Phase::Normal {
                        chan: Box::new(chan),
                        scid,
                        closing: None,
                        simple: None,
                        command: None,
                        remote_alias,
                        closing_txs,
                        funding_tx,
                    }
                }
                StoredPhase::Closed(c) => Phase::Closed(c),
            };
            c.entries.insert(
                id,
                Entry::new(rec.peer, rec.index, rec.funding, phase, false),
            );
        }
        // Onions no open channel names (none are left so; kept tidy).
        for id in stored_onions.into_keys() {
            c.batch.delete_prefix(onions::NS_ONIONS, id.0);
        }
        let mut parts = Vec::new();
        let mut single = Vec::new();
        for (k, v) in &stored.payments {
            match k.first() {
                Some(b'h') => {
                    let (hash, channel, htlc) = mpp::read_part_key(k)?;
                    c.held
                        .entry(hash)
                        .or_default()
                        .push(mpp::HeldPart::decode(channel, htlc, v)?);
                    continue;
                }
                Some(b'p') => {
                    let (hash, channel, htlc) = mpp::read_part_key(k)?;
                    c.settled_parts.insert((channel, htlc), hash);
                    continue;
                }
                Some(b'q') => {
                    let (hash, channel, htlc) = mpp::read_part_key(k)?;
                    parts.push((hash, channel, htlc));
                    continue;
                }
                _ => {}
            }
            let hash = k
                .get(1..)
                .and_then(|h| <[u8; 32]>::try_from(h).ok())
                .map(PaymentHash)
                .ok_or_else(|| RecordError::Corrupt("payment key".into()))?;
            match k.first() {
                Some(b'i') => {
                    c.invoices.insert(hash, InvoiceRecord::decode(v)?);
                }
                Some(b'k') => {
                    c.keysends.insert(hash, keysend::KeysendRecord::decode(v)?);
                }
                Some(b'o') => {
                    let rec = OutgoingRecord::decode(v)?;
                    // Only pending payments own their HTLC id: a failed
                    // one's id may be reused after a disconnection.
                    if rec.status == record::OutgoingStatus::Pending {
                        single.push((hash, rec.channel_id, rec.htlc_id));
                    }
                    c.outgoing.insert(hash, rec);
                }
                _ => return Err(RecordError::Corrupt("payment key".into())),
            }
        }
        // A pending payment's HTLCs: its parts' records for a payment over
        // a route (the record names only its first part, which may be
        // resolved already), else the one its record names.
        let routed: BTreeSet<PaymentHash> = parts.iter().map(|(h, _, _)| *h).collect();
        for (hash, channel, htlc) in single {
            if !routed.contains(&hash) {
                c.by_htlc.insert((channel, htlc), hash);
            }
        }
        for (hash, channel, htlc) in parts {
            if c.outgoing
                .get(&hash)
                .is_some_and(|r| r.status == record::OutgoingStatus::Pending)
            {
                c.by_htlc.insert((channel, htlc), hash);
            }
        }
        // A claim on chain interrupted by the restart goes on.
        c.resolve_all();
        // A restart is a disconnection: updates not covered by a
        // commitment_signed are forgotten (BOLT 2); our removals among them
        // are offered again after channel_reestablish, our dropped HTLCs
        // fail their payments.
        let ids: Vec<ChannelId> = c.entries.keys().copied().collect();
        for id in ids {
            let Some(entry) = c.entries.get_mut(&id) else {
                continue;
            };
            let Phase::Normal { chan, .. } = &mut entry.phase else {
                continue;
            };
            entry.redo = stored_redo.remove(&id).unwrap_or_default();
            entry.redo.extend(chan.unsigned_removals());
            let dropped = chan.on_disconnect();
            if dropped.is_empty() && entry.redo.is_empty() {
                continue;
            }
            c.touch(id);
            for update in dropped {
                if let beongae_channel::commitments::Update::Add { id: htlc, .. } = update {
                    c.outgoing_dropped(id, htlc);
                }
            }
        }
        Ok(c)
    }

    /// The signing keys and per-commitment secrets of channel `index`.
    fn secrets(&self, index: u32) -> (SigningKeys, LocalSecrets) {
        let s = self.keys.channel(index);
        (
            SigningKeys {
                funding_key: s.funding,
                htlc_base_key: s.htlc_base,
            },
            LocalSecrets::new(s.commitment_seed),
        )
    }

    /// What we announce for a new channel of `funding` with key `index`.
    fn local_setup(&self, index: u32, funding: Amount, peer_dust: Amount) -> LocalSetup {
        let cfg = &self.settings.config;
        let (signing, secrets) = self.secrets(index);
        LocalSetup {
            keys: self.keys.channel(index).public(&self.secp),
            signing,
            secrets,
            limits: our_limits(cfg, funding, peer_dust),
            to_self_delay: cfg.to_self_delay,
            max_dust_htlc_exposure: cfg.max_dust_htlc_exposure,
        }
    }

    /// Our alias for channel `index` (BOLT 2 `short_channel_id_alias`):
    /// derived from the node secret, with a block height above 16,000,000
    /// so it never looks like a real short channel id.
    pub(super) fn local_alias(&self, index: u32) -> Option<ShortChannelId> {
        use bitcoin::hashes::{sha256, Hash, HashEngine};
        let mut e = sha256::Hash::engine();
        e.input(b"beongae/scid_alias");
        e.input(&self.node_secret.secret_bytes());
        e.input(&index.to_be_bytes());
        let h = sha256::Hash::from_engine(e).to_byte_array();
        let block = 16_000_000 + u32::from_be_bytes([0, h[0], h[1], h[2]]) % 777_000;
        let tx = u32::from_be_bytes([0, h[3], h[4], h[5]]);
        ShortChannelId::new(block, tx, u16::from_be_bytes([h[6], h[7]]))
    }

    /// Takes the next channel key index (stored with this input's batch).
    fn take_index(&mut self) -> u32 {
        let i = self.next_index;
        self.next_index += 1;
        self.batch.put(
            NS_NODE,
            KEY_NEXT_CHANNEL,
            u64::from(self.next_index).to_be_bytes(),
        );
        i
    }

    /// Takes the next invoice index.
    fn take_invoice_index(&mut self) -> u64 {
        let i = self.next_invoice;
        self.next_invoice += 1;
        self.batch
            .put(NS_NODE, KEY_NEXT_INVOICE, self.next_invoice.to_be_bytes());
        i
    }

    /// Sends `msg` to `node` (after this input's batch is durable).
    pub(super) fn send(&mut self, node: NodeId, msg: impl Into<Message>) {
        if let Some((peer, _)) = self.connected.get(&node) {
            self.deferred.push(Output::Send {
                peer: *peer,
                msg: msg.into(),
            });
        }
    }

    /// Replies to a command (after this input's batch is durable).
    pub(super) fn reply(&mut self, id: Option<CommandId>, reply: Reply) {
        if let Some(id) = id {
            self.deferred.push(Output::Reply { id, reply });
        }
    }

    pub(super) fn event(&mut self, event: super::Event) {
        self.deferred.push(Output::Event(event));
    }

    /// The ids of our channels with `node`.
    pub(super) fn channel_ids_with(&self, node: NodeId) -> Vec<ChannelId> {
        self.entries
            .iter()
            .filter(|(_, e)| e.peer == node)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Marks a channel for storing at the end of the input.
    pub(super) fn touch(&mut self, id: ChannelId) {
        self.dirty.insert(id);
    }

    /// Ends an input: signs what can be signed, then emits the batch and
    /// everything that waited for it.
    pub(super) fn flush(&mut self, out: &mut Vec<Output>) {
        let dirty: Vec<ChannelId> = std::mem::take(&mut self.dirty).into_iter().collect();
        for id in &dirty {
            self.sign_if_needed(*id);
            self.maybe_start_closing(*id);
        }
        // Signing or closing may have touched more channels' records.
        let dirty: BTreeSet<ChannelId> = dirty
            .into_iter()
            .chain(std::mem::take(&mut self.dirty))
            .collect();
        for id in dirty {
            let Some(entry) = self.entries.get(&id) else {
                continue;
            };
            match entry_record(entry) {
                Ok((rec, now)) => {
                    // The onions first named by this record go in its
                    // batch, and those it no longer names (all of them
                    // once the channel is not open).
                    match now {
                        Some(now) => {
                            let kept = self.onions.entry(id).or_default();
                            onions::write(&mut self.batch, id, kept, &now);
                        }
                        None => {
                            if let Some(mut kept) = self.onions.remove(&id) {
                                onions::write(&mut self.batch, id, &mut kept, &[]);
                            }
                        }
                    }
                    self.batch.put(NS_CHANNELS, id.0, rec.encode());
                }
                Err(e) => {
                    // Cannot happen for a valid state; refuse to send what
                    // depends on a state we could not store.
                    tracing::error!(channel = %id, error = %e, "cannot encode channel; holding its messages");
                    self.deferred.retain(|o| !depends_on(o, id));
                }
            }
        }
        if !self.followed && !self.batch.is_empty() {
            // The first thing stored also stores the height the node
            // started at and its block (`starts_following_at`): a restart
            // before the next block must resume there, not at a later tip
            // (a funding broadcast meanwhile could confirm in a block it
            // would never see).
            self.batch
                .put(NS_NODE, KEY_HEIGHT, u64::from(self.height).to_be_bytes());
            if !self.recent.is_empty() {
                self.batch.put(
                    NS_NODE,
                    record::KEY_RECENT_BLOCKS,
                    record::encode_recent_blocks(&self.recent),
                );
            }
            self.followed = true;
        }
        let batch = std::mem::take(&mut self.batch);
        if !batch.is_empty() {
            out.push(Output::Persist(batch));
        }
        out.append(&mut self.deferred);
        out.extend(self.take_lookups());
    }

    /// Fails a channel (BOLT 2/5): sends `error`, broadcasts our latest
    /// commitment if it may hold funds, and answers pending commands. A
    /// channel whose mutual close is broadcast (`Closing`) only gets the
    /// `error`: its closing transaction is what should confirm (a peer that
    /// forgot the channel after the close answers our reestablish with
    /// nonsense), and only the user forces our commitment then
    /// ([`Channels::force`]).
    ///
    /// A channel loaded from the store that no `channel_reestablish` has
    /// shown current since fails without its commitment
    /// ([`Channels::fail_withheld`]): the store may be an old copy, whose
    /// commitment the peer would punish (ADR 0007). This includes the
    /// failures of that reestablish itself (a wrong secret, numbers out of
    /// sync, BOLT 2's `next_commitment_number` 0, which otherwise "MUST ...
    /// broadcast").
    pub(super) fn fail(&mut self, id: ChannelId, why: &str) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        if let Phase::Normal { closing_txs, .. } = &entry.phase {
            if !closing_txs.is_empty() {
                let peer = entry.peer;
                tracing::warn!(channel = %id, %why, "not failing a channel whose closing transaction awaits confirmation");
                return self.send(peer, ErrorMessage::new(id, why));
            }
        }
        if !entry.verified && !matches!(entry.phase, Phase::Closed(_)) {
            let why = format!("{why}; our commitment is held back until a channel_reestablish shows our state is current");
            return self.fail_withheld(id, &why, record::Withheld::Unverified);
        }
        self.force(id, why);
    }

    /// Fails a channel with our latest commitment, whatever its phase.
    pub(super) fn force(&mut self, id: ChannelId, why: &str) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let peer = entry.peer;
        let tx = match &entry.phase {
            Phase::Funded { funding, .. } => funding.signed_local_commitment(&self.secp).ok(),
            Phase::Normal { chan, .. } => chan.signed_local_commitment(&self.secp).ok(),
            Phase::Closed(_) => return,
        };
        // Our funding, not confirmed: its coins come back to the wallet
        // unless it confirms first (then our commitment 0 resolves it).
        let abandon = match &entry.phase {
            Phase::Funded {
                tx: Some(funding),
                confirmed: None,
                ..
            } => Some(funding.clone()),
            _ => None,
        };
        tracing::warn!(channel = %id, %why, "failing channel");
        // Not while our funding is double-spent: as its descendant our
        // commitment would make the double spend pay for it too.
        if let (Some(tx), None) = (&tx, &abandon) {
            self.broadcast_funding_off_chain(id);
            self.deferred.push(Output::Broadcast { tx: tx.clone() });
        }
        let txid = tx.as_ref().map(Transaction::compute_txid);
        let commitment_fee = tx.as_ref().and_then(|t| {
            let out: Amount = t.output.iter().map(|o| o.value).sum();
            entry_funding_amount(self.entries.get(&id)).and_then(|f| f.checked_sub(out))
        });
        let command = self.mark_closed(id, tx, txid, None, format!("failed: {why}"));
        if let Some(funding) = abandon {
            if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
                c.withheld = record::Withheld::UntilFunded;
            }
            self.double_spend_funding(id, funding, commitment_fee.unwrap_or(Amount::ZERO));
        }
        self.send(peer, ErrorMessage::new(id, why));
        self.reply(
            command,
            Reply::failed(
                FailureKind::ChannelFailed,
                format!("channel {id} failed: {why}"),
            ),
        );
    }

    /// Fails a channel without broadcasting our commitment, which may be
    /// revoked (ADR 0007): the peer is asked to close with its own, and
    /// `withheld` says whether a later `channel_reestablish` may release
    /// ours.
    pub(super) fn fail_withheld(&mut self, id: ChannelId, why: &str, withheld: record::Withheld) {
        let Some(peer) = self.entries.get(&id).map(|e| e.peer) else {
            return;
        };
        tracing::error!(channel = %id, %why, "failing channel without broadcasting our commitment");
        let command = self.mark_closed(id, None, None, None, format!("failed: {why}"));
        if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
            c.withheld = withheld;
        }
        self.send(peer, ErrorMessage::new(id, why));
        self.reply(
            command,
            Reply::failed(
                FailureKind::ChannelFailed,
                format!("channel {id} failed: {why}"),
            ),
        );
    }

    /// Moves a channel to [`Phase::Closed`]: stored, its payments let go,
    /// the event emitted. Returns the command that waited on it.
    pub(super) fn mark_closed(
        &mut self,
        id: ChannelId,
        tx: Option<Transaction>,
        txid: Option<Txid>,
        confirmed: Option<u32>,
        reason: String,
    ) -> Option<CommandId> {
        let entry = self.entries.get_mut(&id)?;
        // Everything a resolution on chain needs stays with the closed
        // channel (SAFETY.md "Closing"): the channel crate's whole record.
        let (funding_outpoint, local, command, kept, we_are_funder, remote) = match &mut entry.phase
        {
            Phase::Funded {
                funding, command, ..
            } => (
                funding.funded.funding_outpoint,
                funding.commitments.local.to_local,
                command.take(),
                funding.encode_state().map(record::KeptState::Funded),
                funding.funded.we_are_funder,
                funding.commitments.local.to_remote,
            ),
            Phase::Normal { chan, command, .. } => (
                chan.funded.funding_outpoint,
                chan.commitments.local.to_local,
                command.take(),
                chan.encode_state().map(record::KeptState::Normal),
                chan.funded.we_are_funder,
                chan.commitments.local.to_remote,
            ),
            Phase::Closed(_) => return None,
        };
        // Our funding (as its funder), and where it is on chain. Not one
        // never confirmed: that one is double-spent instead.
        let funding_tx = match &entry.phase {
            Phase::Normal {
                scid, funding_tx, ..
            } => funding_tx.clone().map(|t| (t, scid.map(|s| s.block()))),
            Phase::Funded {
                tx: Some(tx),
                confirmed: Some((h, _)),
                ..
            } => Some((tx.clone(), Some(*h))),
            _ => None,
        };
        // Our HTLCs in a commitment either side may broadcast.
        let on_chain: BTreeSet<u64> = match &entry.phase {
            Phase::Normal { chan, .. } => {
                let c = &chan.commitments;
                c.local
                    .htlcs
                    .iter()
                    .filter(|h| h.offered)
                    .chain(
                        c.remote
                            .htlcs
                            .iter()
                            .chain(c.remote_next.iter().flat_map(|n| n.htlcs.iter()))
                            .filter(|h| !h.offered),
                    )
                    .map(|h| h.id)
                    .collect()
            }
            _ => BTreeSet::new(),
        };
        let kept = match kept {
            Ok(k) => Some(k),
            Err(e) => {
                // A state that encoded before cannot fail now; never close
                // silently without it.
                tracing::error!(channel = %id, error = %e, "cannot keep the closed channel's state");
                None
            }
        };
        entry.phase = Phase::Closed(record::Closed {
            funding_outpoint,
            tx,
            txid,
            local,
            confirmed,
            reason: reason.clone(),
            kept,
            withheld: record::Withheld::No,
            sweeps: Vec::new(),
            spent: Vec::new(),
            theirs: Vec::new(),
            we_are_funder: Some(we_are_funder),
            remote: Some(remote),
            funding_tx,
        });
        entry.redo.clear();
        self.touch(id);
        self.fail_payments_of(id, &reason, &on_chain);
        self.event(super::Event::ChannelClosed {
            channel_id: id,
            txid,
        });
        command
    }

    /// A new feerate estimate: claims left as worth less than their fee are
    /// looked at again, fee bumps made at once. An absurd estimate (above
    /// 1,000,000 sat/kW, 4,000 sat/vB: a broken fee source) is refused with
    /// a log line and the last one kept; one below BOLT 3's 253 sat/kW
    /// floor counts as 253.
    pub(super) fn set_feerate(&mut self, feerate: FeeratePerKw) {
        if feerate.0 > MAX_SANE_FEERATE {
            return tracing::error!(
                estimate = feerate.0,
                kept = self.feerate.0,
                "ignoring an absurd fee estimate (sat/kW); check the chain source"
            );
        }
        let feerate = feerate.max(FeeratePerKw::FLOOR);
        let changed = feerate != self.feerate;
        if changed {
            self.unclaimable.clear();
            self.uneconomical.clear();
        }
        self.feerate = feerate;
        if changed {
            self.update_fees();
            // A spike is answered now, not at the next block.
            self.resolve_all();
            self.bump_all();
        }
    }

    /// Whether a normal channel's funding is buried deep enough to carry
    /// new HTLCs: confirmed (not reorged out) `minimum_depth` blocks deep.
    pub(super) fn funding_usable(&self, scid: Option<ShortChannelId>) -> bool {
        let depth = self.settings.config.minimum_depth.max(1);
        scid.is_some_and(|s| self.height + 1 >= s.block().saturating_add(depth))
    }

    /// Transactions of ours not yet seen in a block.
    pub(super) fn pending_broadcasts(&self) -> Vec<Transaction> {
        self.entries
            .values()
            .flat_map(|e| match &e.phase {
                Phase::Funded {
                    tx: Some(tx),
                    confirmed: None,
                    ..
                } => vec![tx.clone()],
                // Our funding if a reorg keeps it off the chain (also while
                // we withhold our commitment: the peer's needs it too),
                // then our close.
                Phase::Closed(c) if c.confirmed.is_none() => c
                    .funding_tx
                    .iter()
                    .filter(|(_, height)| height.is_none())
                    .map(|(t, _)| t)
                    .chain(c.tx.iter().filter(|_| c.withheld == record::Withheld::No))
                    .cloned()
                    .collect(),
                // Our funding, reorged out after channel_ready.
                Phase::Normal {
                    scid: None,
                    funding_tx: Some(tx),
                    ..
                } => vec![tx.clone()],
                _ => Vec::new(),
            })
            .chain(self.entries.values().flat_map(|e| {
                match &e.phase {
                    Phase::Normal { closing_txs, .. } => closing_txs.clone(),
                    Phase::Closed(c) => c
                        .sweeps
                        .iter()
                        .filter(|s| s.pending() && !anchor_child_of(c, s))
                        .map(|s| s.tx.clone())
                        .collect(),
                    _ => Vec::new(),
                }
            }))
            .collect()
    }

    /// Our funding transaction of channel `id`, as its funder, while a reorg
    /// keeps it off the chain.
    pub(super) fn funding_off_chain(&self, id: ChannelId) -> Option<Transaction> {
        match &self.entries.get(&id)?.phase {
            Phase::Normal {
                scid: None,
                funding_tx,
                ..
            } => funding_tx.clone(),
            Phase::Closed(record::Closed {
                funding_tx: Some((tx, None)),
                ..
            }) => Some(tx.clone()),
            _ => None,
        }
    }

    /// Broadcasts [`Channels::funding_off_chain`], ahead of a close that
    /// spends it (the close alone would be refused for its missing input).
    pub(super) fn broadcast_funding_off_chain(&mut self, id: ChannelId) {
        if let Some(tx) = self.funding_off_chain(id) {
            self.deferred.push(Output::Broadcast { tx });
        }
    }

    /// Our pending anchor children with their unconfirmed commitments, to
    /// broadcast as packages (child pays for parent).
    pub(super) fn pending_packages(&self) -> Vec<(Transaction, Transaction)> {
        self.entries
            .values()
            .filter_map(|e| match &e.phase {
                Phase::Closed(c) => Some(c),
                _ => None,
            })
            .flat_map(|c| {
                c.sweeps
                    .iter()
                    .filter(|s| s.pending() && anchor_child_of(c, s))
                    .filter_map(|s| c.tx.clone().map(|p| (p, s.tx.clone())))
            })
            .collect()
    }

    /// Remembers where we reached `node` (stored with this input's batch).
    pub(in crate::core) fn remember_address(&mut self, node: NodeId, addr: std::net::SocketAddr) {
        if self.addresses.get(&node) != Some(&addr) {
            self.addresses.insert(node, addr);
            self.batch
                .put(record::NS_PEERS, node.serialize(), addr.to_string());
        }
    }

    /// Peers with an open (or opening) channel that are not connected, and
    /// where we reached them before.
    pub(in crate::core) fn reconnect_targets(&self) -> Vec<(NodeId, std::net::SocketAddr)> {
        let mut v: Vec<(NodeId, std::net::SocketAddr)> = self
            .entries
            .values()
            .filter(|e| match &e.phase {
                Phase::Closed(c) => c.awaits_reestablish(),
                _ => true,
            })
            .filter(|e| !self.connected.contains_key(&e.peer))
            .filter_map(|e| self.addresses.get(&e.peer).map(|a| (e.peer, *a)))
            .collect();
        v.dedup();
        v
    }

    /// Summaries of every channel.
    pub(super) fn summaries(&self) -> Vec<ChannelSummary> {
        self.entries
            .iter()
            .map(|(id, e)| {
                let mut s = summary(*id, e, self.connected.contains_key(&e.peer), self.height);
                s.alias = self.local_alias(e.index);
                let limbo = self.limbo(*id);
                (s.closing, s.spendable_at, s.unresolved_htlcs, s.lost) =
                    (limbo.closing, limbo.spendable_at, limbo.htlcs, limbo.lost);
                s
            })
            .collect()
    }
}

fn depends_on(o: &Output, id: ChannelId) -> bool {
    match o {
        Output::Send { msg, .. } => message_channel(msg) == Some(id),
        Output::Broadcast { .. } | Output::BroadcastPackage { .. } => true,
        _ => false,
    }
}

/// The `channel_id` a channel message is about.
pub(crate) fn message_channel(msg: &Message) -> Option<ChannelId> {
    Some(match msg {
        Message::OpenChannel(m) => m.temporary_channel_id,
        Message::AcceptChannel(m) => m.temporary_channel_id,
        Message::FundingCreated(m) => m.temporary_channel_id,
        Message::FundingSigned(m) => m.channel_id,
        Message::ChannelReady(m) => m.channel_id,
        Message::Shutdown(m) => m.channel_id,
        Message::ClosingSigned(m) => m.channel_id,
        Message::ClosingComplete(m) => m.channel_id,
        Message::ClosingSig(m) => m.channel_id,
        Message::UpdateAddHtlc(m) => m.channel_id,
        Message::UpdateFulfillHtlc(m) => m.channel_id,
        Message::UpdateFailHtlc(m) => m.channel_id,
        Message::UpdateFailMalformedHtlc(m) => m.channel_id,
        Message::CommitmentSigned(m) => m.channel_id,
        Message::RevokeAndAck(m) => m.channel_id,
        Message::UpdateFee(m) => m.channel_id,
        Message::ChannelReestablish(m) => m.channel_id,
        Message::Error(m) => m.channel_id,
        Message::Warning(m) => m.channel_id,
        _ => return None,
    })
}

/// Whether sweep `s` of closed channel `c` is the child of its unconfirmed
/// commitment (spending our anchor of it, to pay for it).
fn anchor_child_of(c: &record::Closed, s: &record::Sweep) -> bool {
    c.confirmed.is_none()
        && c.tx.as_ref().is_some_and(|t| {
            s.tx.input
                .iter()
                .any(|i| i.previous_output.txid == t.compute_txid())
        })
}

/// The capacity of a channel being funded or open.
fn entry_funding_amount(e: Option<&Entry>) -> Option<Amount> {
    match &e?.phase {
        Phase::Funded { funding, .. } => Some(funding.funded.funding_amount),
        Phase::Normal { chan, .. } => Some(chan.funded.funding_amount),
        Phase::Closed(_) => None,
    }
}

/// An entry's record and, for an open channel, the onions kept apart from
/// it ([`onions`]).
#[allow(clippy::type_complexity)]
fn entry_record(
    e: &Entry,
) -> Result<
    (
        ChannelRecord,
        Option<Vec<(OnionKey, &beongae_wire::msgs::OnionPacketBytes)>>,
    ),
    RecordError,
> {
    let mut apart = None;
    let phase = match &e.phase {
        Phase::Funded {
            funding,
            tx,
            depth,
            confirmed,
            since,
            ..
        } => StoredPhase::Funded {
            state: funding.encode_state()?,
            tx: tx.clone(),
            depth: *depth,
            confirmed: *confirmed,
            since: Some(*since),
        },
        Phase::Normal {
            chan,
            scid,
            remote_alias,
            closing_txs,
            funding_tx,
            ..
        } => StoredPhase::Normal {
            state: {
                let (state, onions) = chan.encode_state_apart()?;
                apart = Some(onions);
                state
            },
            scid: *scid,
            redo: e.redo.clone(),
            remote_alias: *remote_alias,
            closing_txs: closing_txs.clone(),
            funding_tx: funding_tx.clone(),
        },
        Phase::Closed(c) => StoredPhase::Closed(c.clone()),
    };
    Ok((
        ChannelRecord {
            peer: e.peer,
            index: e.index,
            funding: e.funding,
            phase,
        },
        apart,
    ))
}

fn summary(id: ChannelId, e: &Entry, connected: bool, height: u32) -> ChannelSummary {
    let mut s = ChannelSummary {
        channel_id: id,
        peer: e.peer,
        state: ChannelState::Closed,
        capacity: e.funding,
        local: Msat::ZERO,
        remote: Msat::ZERO,
        pending_htlcs: 0,
        updates: 0,
        funding_txid: Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
        short_channel_id: None,
        we_are_funder: false,
        closing_txid: None,
        active: false,
        alias: None,
        remote_alias: None,
        reason: None,
        closing: Amount::ZERO,
        spendable_at: None,
        unresolved_htlcs: Vec::new(),
        lost: Amount::ZERO,
        spendable: Msat::ZERO,
        receivable: Msat::ZERO,
        funding_confirmations: None,
    };
    match &e.phase {
        Phase::Funded {
            funding,
            depth,
            confirmed,
            ..
        } => {
            s.state = ChannelState::AwaitingConfirmation;
            let got = confirmed.map_or(0, |(h, _)| (height + 1).saturating_sub(h));
            s.funding_confirmations = Some((got.min(*depth), *depth));
            s.local = funding.commitments.local.to_local;
            s.remote = funding.commitments.local.to_remote;
            s.funding_txid = funding.funded.funding_outpoint.txid;
            s.we_are_funder = funding.funded.we_are_funder;
        }
        Phase::Normal {
            chan,
            scid,
            remote_alias,
            closing_txs,
            ..
        } => {
            s.remote_alias = *remote_alias;
            s.closing_txid = closing_txs.last().map(Transaction::compute_txid);
            let shutting = chan.shutdown.local.is_some() || chan.shutdown.remote.is_some();
            s.state = if !closing_txs.is_empty() {
                ChannelState::Closing
            } else if shutting {
                ChannelState::ShuttingDown
            } else {
                ChannelState::Normal
            };
            s.local = chan.commitments.local.to_local;
            s.remote = chan.commitments.local.to_remote;
            s.pending_htlcs = chan.commitments.local.htlcs.len();
            s.updates =
                chan.remote.current.get() + u64::from(chan.commitments.remote_next.is_some());
            s.funding_txid = chan.funded.funding_outpoint.txid;
            s.short_channel_id = *scid;
            s.we_are_funder = chan.funded.we_are_funder;
            s.active = connected && e.live;
            if s.active && s.state == ChannelState::Normal {
                s.spendable = chan.commitments.max_sendable();
                s.receivable = chan.commitments.max_receivable();
            }
        }
        Phase::Closed(c) => {
            s.local = c.local;
            s.remote = c.remote.unwrap_or(Msat::ZERO);
            s.we_are_funder = c.we_are_funder.unwrap_or(false);
            s.closing_txid = c.txid;
            s.funding_txid = c.funding_outpoint.txid;
            s.reason = Some(match c.withheld {
                record::Withheld::No => c.reason.clone(),
                record::Withheld::Unverified => format!(
                    "{}; our commitment is held back until the peer's channel_reestablish shows our state current (closechannel --force broadcasts it)",
                    c.reason
                ),
                record::Withheld::Behind => format!(
                    "{}; our state is old, our commitment revoked: the peer's commitment returns our funds",
                    c.reason
                ),
                record::Withheld::UntilFunded => format!(
                    "{}; the unconfirmed funding transaction is double-spent back to the wallet (our commitment goes out only if the funding confirms first)",
                    c.reason
                ),
            });
        }
    }
    s
}

impl Channels {
    /// A channel message (BOLT 2, types 32-255) from a ready peer.
    pub(in crate::core) fn on_message(&mut self, node: NodeId, id: ChannelId, msg: &Message) {
        match msg {
            Message::OpenChannel(m) => self.on_open_channel(node, m),
            Message::AcceptChannel(m) => self.on_accept_channel(node, m),
            Message::FundingCreated(m) => self.on_funding_created(node, m),
            Message::FundingSigned(m) => self.on_funding_signed(node, m),
            Message::ChannelReady(m) => self.on_channel_ready(node, m),
            Message::ChannelReestablish(m) => self.on_reestablish(node, m),
            Message::ClosingSigned(m) => self.on_closing_signed(node, m),
            Message::ClosingComplete(m) => self.on_closing_complete(node, m),
            Message::ClosingSig(m) => self.on_closing_sig(node, m),
            Message::Shutdown(_)
            | Message::UpdateAddHtlc(_)
            | Message::UpdateFulfillHtlc(_)
            | Message::UpdateFailHtlc(_)
            | Message::UpdateFailMalformedHtlc(_)
            | Message::CommitmentSigned(_)
            | Message::RevokeAndAck(_)
            | Message::UpdateFee(_) => self.on_normal_message(node, id, msg),
            // BOLT 1: an unknown odd message is ignored.
            Message::Unknown(_) => {}
            // A channel message we know but do not implement (simple close,
            // splicing, ...): a warning, the channel stays.
            other => {
                let text = format!("{} is not supported by this node", other.name());
                self.send(node, beongae_wire::Warning::new(id, &text));
            }
        }
    }
}
