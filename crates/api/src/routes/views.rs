//! What the API answers and takes: the JSON shapes, with their schemas.
//!
//! Lightning amounts are in millisatoshi (`_msat`), on-chain amounts in
//! satoshi (`_sat`); ids are hex; times are seconds since 1970.

use beongae_node::core::{ChannelState, ChannelSummary, Direction, PeerInfo};
use beongae_wire::ShortChannelId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/info`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Info {
    /// Our node id.
    pub node_id: String,
    /// Where peers reach us (`NODE_ID@HOST:PORT` uses it).
    pub listen: Option<String>,
    /// `devnet`, `bitcoin`, `testnet`, `signet` or `regtest`.
    pub network: String,
    /// The daemon's version.
    pub version: String,
    /// The commit it was built from, if known.
    pub build: Option<String>,
    /// The best block of the chain source.
    pub block_height: u32,
    /// The block the node has processed the chain to.
    pub synced_height: u32,
    /// Whether the node has processed every block of the chain source.
    pub synced: bool,
    /// Connected peers.
    pub peers: usize,
    /// Channels by state.
    pub channels: ChannelCounts,
}

/// Channels by state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ChannelCounts {
    /// Funding not yet confirmed.
    pub pending: usize,
    /// Open, peer connected.
    pub active: usize,
    /// Open, peer away.
    pub inactive: usize,
    /// Closing (cooperatively or on chain).
    pub closing: usize,
    /// Closed.
    pub closed: usize,
}

/// A connected peer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Peer {
    /// Node id.
    pub node_id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Remote socket address.
    pub address: Option<String>,
    /// Feature bits, hex (big-endian, as on the wire).
    pub features: String,
    /// Feature bits with names.
    pub feature_names: String,
}

impl From<PeerInfo> for Peer {
    fn from(p: PeerInfo) -> Self {
        Peer {
            node_id: p.node_id.to_string(),
            direction: match p.direction {
                Direction::Inbound => "inbound".into(),
                Direction::Outbound => "outbound".into(),
            },
            address: p.remote_addr.map(|a| a.to_string()),
            features: hex::encode(p.features.to_be_bytes()),
            feature_names: p.features.to_string(),
        }
    }
}

/// `POST /v1/peers`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectRequest {
    /// `NODE_ID@HOST:PORT`.
    pub address: String,
}

/// `DELETE /v1/peers/{node_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Disconnected {
    /// Whether the peer was connected.
    pub was_connected: bool,
}

/// `POST /v1/peers/{node_id}/ping`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PingRequest {
    /// Bytes to ask for in the pong (0 to 65531).
    #[serde(default)]
    pub num_pong_bytes: u16,
}

/// The pong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Pong {
    /// Bytes in the pong.
    pub pong_bytes: usize,
    /// Round trip.
    pub round_trip_ms: f64,
}

/// `GET /v1/wallet/balance`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Balance {
    /// Confirmed and spendable.
    pub confirmed_sat: u64,
    /// Unconfirmed (ours: change, or received).
    pub unconfirmed_sat: u64,
    /// Coinbase outputs not yet mature.
    pub immature_sat: u64,
    /// Funds of force-closed channels on their way back.
    pub closing_channels_sat: u64,
    /// Kept for the fees of anchor channels' force closes.
    pub fee_reserve_sat: u64,
    /// Our balance in open channels.
    pub channels_local_msat: u64,
    /// What we could send now, over all active channels (each payment part
    /// is limited by its channel's `spendable_msat`).
    pub channels_spendable_msat: u64,
    /// What we could receive now, over all active channels.
    pub channels_receivable_msat: u64,
    /// The best block the wallet has seen.
    pub height: u32,
    /// A warning, if the wallet holds less than the fee reserve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// `POST /v1/wallet/address`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AddressRequest {
    /// `p2wpkh` (default) or `p2tr`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// A new address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewAddress {
    /// The address.
    pub address: String,
}

/// `POST /v1/wallet/send`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendRequest {
    /// Destination.
    pub address: String,
    /// Amount (or `send_all`).
    #[serde(default)]
    pub amount_sat: Option<u64>,
    /// Send everything the wallet can spend, less the fee, keeping back the
    /// reserve for anchor channels' force closes (instead of `amount_sat`).
    #[serde(default)]
    pub send_all: bool,
    /// Feerate in sat/vB (default: the chain's estimate).
    #[serde(default)]
    pub feerate_sat_per_vb: Option<u64>,
}

/// A transaction broadcast.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sent {
    /// Its txid.
    pub txid: String,
    /// What the address receives.
    pub amount_sat: u64,
    /// The fee it pays.
    pub fee_sat: u64,
}

/// An HTLC of a force-closed channel not resolved on chain yet.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct UnresolvedHtlc {
    /// `offered` (ours after `cltv_expiry`) or `received` (ours with the
    /// preimage before it).
    pub direction: String,
    /// Amount.
    pub amount_msat: u64,
    /// The deadline's block height.
    pub cltv_expiry: u32,
    /// Whether we can claim it.
    pub claimable: bool,
}

/// A channel.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Channel {
    /// Channel id.
    pub channel_id: String,
    /// The peer.
    pub peer: String,
    /// `awaiting_confirmation`, `normal`, `shutting_down`, `closing` or `closed`.
    pub state: String,
    /// Whether the peer is connected and the channel usable.
    pub active: bool,
    /// Capacity.
    pub capacity_sat: u64,
    /// Our balance (HTLCs in flight excluded).
    pub local_msat: u64,
    /// The peer's balance.
    pub remote_msat: u64,
    /// The largest payment we could send over it now (0 unless open and
    /// active): our balance less the reserve, fees and limits.
    pub spendable_msat: u64,
    /// The largest payment we could receive over it now (0 unless open
    /// and active).
    pub receivable_msat: u64,
    /// HTLCs in flight.
    pub pending_htlcs: usize,
    /// Commitments signed so far.
    pub updates: u64,
    /// Funding transaction.
    pub funding_txid: String,
    /// `BLOCKxTXxOUTPUT` once confirmed.
    pub short_channel_id: Option<String>,
    /// Our alias for it.
    pub alias: Option<String>,
    /// The peer's alias for it.
    pub remote_alias: Option<String>,
    /// Whether we opened it.
    pub we_opened: bool,
    /// The transaction that closed it.
    pub closing_txid: Option<String>,
    /// Why it closed.
    pub reason: Option<String>,
    /// Our funds of a force close on their way back.
    pub closing_sat: u64,
    /// When our delayed output can be swept.
    pub spendable_at: Option<u32>,
    /// HTLCs of a force close not yet resolved.
    pub unresolved_htlcs: Vec<UnresolvedHtlc>,
    /// While the funding awaits confirmation: its confirmations so far.
    pub confirmations: Option<u32>,
    /// While the funding awaits confirmation: how many the channel waits
    /// for (`minimum_depth`).
    pub confirmations_required: Option<u32>,
}

/// `BLOCKxTXxOUTPUT`.
pub fn scid(s: ShortChannelId) -> String {
    format!("{}x{}x{}", s.block(), s.tx_index(), s.output())
}

impl From<&ChannelSummary> for Channel {
    fn from(c: &ChannelSummary) -> Self {
        Channel {
            channel_id: hex::encode(c.channel_id.0),
            peer: c.peer.to_string(),
            state: state_name(c.state).into(),
            active: c.active,
            capacity_sat: c.capacity.to_sat(),
            local_msat: c.local.to_msat(),
            remote_msat: c.remote.to_msat(),
            spendable_msat: c.spendable.to_msat(),
            receivable_msat: c.receivable.to_msat(),
            pending_htlcs: c.pending_htlcs,
            updates: c.updates,
            funding_txid: c.funding_txid.to_string(),
            short_channel_id: c.short_channel_id.map(scid),
            alias: c.alias.map(scid),
            remote_alias: c.remote_alias.map(scid),
            we_opened: c.we_are_funder,
            closing_txid: c.closing_txid.map(|t| t.to_string()),
            reason: c.reason.clone(),
            closing_sat: c.closing.to_sat(),
            spendable_at: c.spendable_at,
            unresolved_htlcs: c
                .unresolved_htlcs
                .iter()
                .map(|h| UnresolvedHtlc {
                    direction: if h.we_offered { "offered" } else { "received" }.into(),
                    amount_msat: h.amount.to_msat(),
                    cltv_expiry: h.cltv_expiry,
                    claimable: h.claimable,
                })
                .collect(),
            confirmations: c.funding_confirmations.map(|(got, _)| got),
            confirmations_required: c.funding_confirmations.map(|(_, need)| need),
        }
    }
}

/// The API's name of a channel state.
pub fn state_name(s: ChannelState) -> &'static str {
    match s {
        ChannelState::AwaitingConfirmation => "awaiting_confirmation",
        ChannelState::Normal => "normal",
        ChannelState::ShuttingDown => "shutting_down",
        ChannelState::Closing => "closing",
        ChannelState::Closed => "closed",
    }
}

/// `POST /v1/channels`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenRequest {
    /// The peer (connected).
    pub node_id: String,
    /// Capacity (or `fund_all`).
    #[serde(default)]
    pub amount_sat: Option<u64>,
    /// Fund the channel with everything the wallet can spend, less the
    /// funding's fee, keeping back the reserve for anchor channels' force
    /// closes (with this channel counted); at most 16,777,215 sat unless
    /// large channels are enabled (instead of `amount_sat`).
    #[serde(default)]
    pub fund_all: bool,
    /// Given to the peer at opening.
    #[serde(default)]
    pub push_msat: u64,
    /// Announce the channel (BOLT 7) once six blocks deep.
    #[serde(default)]
    pub public: bool,
}

/// A channel opened.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Opened {
    /// Channel id.
    pub channel_id: String,
    /// Funding transaction.
    pub funding_txid: String,
    /// The channel's capacity (what `fund_all` came to).
    pub capacity_sat: u64,
}

/// `POST /v1/channels/{channel_id}/close`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CloseRequest {
    /// Broadcast our commitment instead of closing with the peer.
    #[serde(default)]
    pub force: bool,
}

/// A close under way.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Closing {
    /// The closing (or commitment) transaction.
    pub closing_txid: String,
}

/// `POST /v1/channels/policy`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyRequest {
    /// One channel; every open channel if absent.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// Base fee per forwarded HTLC.
    pub fee_base_msat: u32,
    /// Proportional fee, in millionths.
    pub fee_ppm: u32,
    /// Blocks between incoming and outgoing expiry (at least 40).
    pub cltv_expiry_delta: u16,
    /// The least HTLC to forward.
    #[serde(default)]
    pub htlc_minimum_msat: Option<u64>,
    /// The most one forwarded HTLC may carry.
    #[serde(default)]
    pub htlc_maximum_msat: Option<u64>,
}

/// Channels whose policy changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicySet {
    /// Their ids.
    pub channels: Vec<String>,
}

/// A forwarded HTLC.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Forward {
    /// Incoming channel.
    pub in_channel: String,
    /// Outgoing channel.
    pub out_channel: String,
    /// Amount in.
    pub in_msat: u64,
    /// Amount out.
    pub out_msat: u64,
    /// Our fee.
    pub fee_msat: u64,
    /// Payment hash.
    pub payment_hash: String,
    /// `pending`, `settled` or `failed`.
    pub status: String,
    /// When.
    pub created: u64,
}

/// `GET /v1/forwards`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Forwards {
    /// Every forward.
    pub forwards: Vec<Forward>,
    /// Fees of the settled ones.
    pub fees_earned_msat: u64,
}

/// `POST /v1/invoices`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvoiceRequest {
    /// Amount; none: the payer chooses.
    #[serde(default)]
    pub amount_msat: Option<u64>,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Seconds until it expires (default 3600).
    #[serde(default)]
    pub expiry_secs: Option<u64>,
}

/// An invoice of ours.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Invoice {
    /// BOLT 11 (none for a keysend received).
    pub invoice: Option<String>,
    /// A payment received without an invoice (bLIP 3 keysend): the payer
    /// chose the preimage; `created` is when it arrived.
    pub keysend: bool,
    /// Payment hash.
    pub payment_hash: String,
    /// Amount received once paid, else the amount asked (none: any).
    pub amount_msat: Option<u64>,
    /// `open`, `paid` or `expired`.
    pub status: String,
    /// Description.
    pub description: Option<String>,
    /// When it was made (a keysend: when it was received; 0 if that was
    /// not recorded).
    pub created: u64,
    /// When it expires (none for a keysend).
    pub expires: Option<u64>,
}

/// `GET /v1/invoices` and `GET /v1/payments` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only this status.
    #[serde(default)]
    pub status: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Skip this many first (newest first).
    #[serde(default)]
    pub offset: Option<usize>,
}

/// A page of invoices.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvoicePage {
    /// Newest first.
    pub invoices: Vec<Invoice>,
    /// How many match in all.
    pub total: usize,
}

/// `POST /v1/payments`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PayRequest {
    /// BOLT 11 (a `lightning:` prefix is fine).
    pub invoice: String,
    /// Amount, for an invoice without one.
    #[serde(default)]
    pub amount_msat: Option<u64>,
    /// Give up waiting after this many seconds (default 60); the payment
    /// itself goes on.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// `POST /v1/payments/keysend`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeysendRequest {
    /// The payee (a channel peer).
    pub node_id: String,
    /// Amount.
    pub amount_msat: u64,
    /// Give up waiting after this many seconds (default 60); the payment
    /// itself goes on.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// An outgoing payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Payment {
    /// Payment hash.
    pub payment_hash: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Why it failed.
    pub failure: Option<String>,
    /// Amount delivered to the payee, fees excluded.
    pub amount_msat: Option<u64>,
    /// When it was sent (none for payments recorded before times were
    /// kept).
    pub created: Option<u64>,
    /// Routing fees paid.
    pub fee_msat: Option<u64>,
    /// The preimage, once it succeeded.
    pub preimage: Option<String>,
    /// Routes tried.
    pub attempts: u32,
    /// The (last) route's nodes, the payee last.
    pub route: Vec<String>,
    /// How long the call waited, when this answers a payment just made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// A page of payments.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentPage {
    /// Newest first.
    pub payments: Vec<Payment>,
    /// How many match in all.
    pub total: usize,
}

/// A routing policy in the graph.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GraphPolicy {
    /// Base fee.
    pub fee_base_msat: u32,
    /// Proportional fee.
    pub fee_ppm: u32,
    /// CLTV delta.
    pub cltv_expiry_delta: u16,
    /// Least HTLC.
    pub htlc_minimum_msat: u64,
    /// Most per HTLC.
    pub htlc_maximum_msat: u64,
    /// Disabled.
    pub disabled: bool,
    /// Of the `channel_update`.
    pub timestamp: u32,
}

/// A channel in the graph.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GraphChannel {
    /// `BLOCKxTXxOUTPUT`.
    pub short_channel_id: String,
    /// The lesser node id.
    pub node_1: String,
    /// The other.
    pub node_2: String,
    /// Capacity.
    pub capacity_sat: u64,
    /// `node_1`'s policy.
    pub policy_1: Option<GraphPolicy>,
    /// `node_2`'s policy.
    pub policy_2: Option<GraphPolicy>,
}

/// A node in the graph.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GraphNode {
    /// Node id.
    pub node_id: String,
    /// Alias.
    pub alias: String,
    /// Colour, hex.
    pub color: String,
    /// Addresses.
    pub addresses: Vec<String>,
    /// Of the `node_announcement`.
    pub timestamp: u32,
}

/// `GET /v1/graph`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Graph {
    /// Channels.
    pub channels: Vec<GraphChannel>,
    /// Nodes.
    pub nodes: Vec<GraphNode>,
}

/// `POST /v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// A name to tell it apart.
    pub name: String,
    /// `read`, `invoices`, `payments` or `admin`.
    pub scope: crate::auth::Scope,
}

/// A new token: the only time it is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewToken {
    /// The token, for `Authorization: Bearer`.
    pub token: String,
    /// Its record.
    pub info: crate::auth::TokenInfo,
}

/// `DELETE /v1/tokens/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    /// Whether there was such a token.
    pub revoked: bool,
}

/// `POST /v1/stop`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Stopping {
    /// Always true.
    pub stopping: bool,
}
