//! The daemon's local control socket: one JSON request per line, one JSON
//! response per line, over a Unix socket in the data directory (mode 0600,
//! so only the node's user can drive it). The full HTTP API comes later.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use beongae_node::address::PeerAddress;
use beongae_node::core::{ChannelState, ChannelSummary, Direction, PeerInfo};
use beongae_node::onchain::Onchain;
use beongae_node::runtime::NodeHandle;
use beongae_script::FeeratePerKw;
use beongae_wallet::AddressKind;
use beongae_wire::{ChannelId, Msat, NodeId};
use bitcoin::Amount;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// File name of the socket inside the data directory.
pub const SOCKET_NAME: &str = "beongae.sock";

/// A request from the CLI.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Request {
    /// Node id and listen address.
    GetInfo,
    /// Connect to `NODE_ID@HOST:PORT`.
    Connect {
        /// The peer address as the user typed it.
        address: String,
    },
    /// List peers.
    Peers,
    /// Disconnect a peer.
    Disconnect {
        /// The node id.
        node_id: String,
    },
    /// Ping a peer.
    Ping {
        /// The node id.
        node_id: String,
        /// `num_pong_bytes`.
        num_pong_bytes: u16,
    },
    /// A new on-chain receiving address.
    NewAddress {
        /// `p2wpkh` (default) or `p2tr`.
        kind: Option<String>,
    },
    /// On-chain balances.
    Balance,
    /// Pay `amount_sat` to `address` from the on-chain wallet.
    Send {
        /// Destination.
        address: String,
        /// Amount in satoshi.
        amount_sat: u64,
        /// Feerate in sat/vB (default: the chain's estimate).
        feerate_sat_per_vb: Option<u64>,
    },
    /// Open a channel.
    OpenChannel {
        /// The peer.
        node_id: String,
        /// Capacity.
        amount_sat: u64,
        /// Given to the peer at opening.
        push_msat: u64,
        /// Announce the channel (BOLT 7).
        #[serde(default)]
        public: bool,
    },
    /// List channels.
    Channels,
    /// Close a channel cooperatively, or with `force` unilaterally.
    CloseChannel {
        /// Hex channel id.
        channel_id: String,
        /// Broadcast our commitment instead of negotiating.
        #[serde(default)]
        force: bool,
    },
    /// The HTLCs this node forwarded.
    Forwards,
    /// Set the forwarding policy of one channel, or of all.
    SetPolicy {
        /// Hex channel id (none: every open channel).
        channel_id: Option<String>,
        /// `fee_base_msat`
        fee_base_msat: u32,
        /// `fee_proportional_millionths`
        fee_ppm: u32,
        /// `cltv_expiry_delta`
        cltv_expiry_delta: u16,
        /// The least HTLC to forward, in msat.
        #[serde(default)]
        htlc_minimum_msat: Option<u64>,
        /// The most one forwarded HTLC may carry, in msat.
        #[serde(default)]
        htlc_maximum_msat: Option<u64>,
    },
    /// Create an invoice.
    Invoice {
        /// Amount (none: any).
        amount_msat: Option<u64>,
        /// Description.
        description: String,
        /// Expiry in seconds.
        expiry_secs: u64,
    },
    /// Pay an invoice.
    Pay {
        /// BOLT 11.
        invoice: String,
        /// Amount for an invoice without one.
        amount_msat: Option<u64>,
    },
    /// Pay a channel peer without an invoice (keysend).
    Keysend {
        /// The peer.
        node_id: String,
        /// Amount.
        amount_msat: u64,
    },
    /// List invoices and payments.
    Payments,
    /// The network graph.
    Graph,
}

/// What the control handlers reach.
pub struct Ctx {
    /// The peer node.
    pub node: NodeHandle,
    /// Its listen address.
    pub listen: Option<std::net::SocketAddr>,
    /// Chain and wallet, if a chain is configured.
    pub onchain: Arc<Onchain>,
}

/// A peer as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerView {
    /// Node id, hex.
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

impl From<PeerInfo> for PeerView {
    fn from(p: PeerInfo) -> Self {
        PeerView {
            node_id: p.node_id.to_string(),
            direction: match p.direction {
                Direction::Inbound => "inbound".into(),
                Direction::Outbound => "outbound".into(),
            },
            address: p.remote_addr.map(|a| a.to_string()),
            features: p
                .features
                .to_be_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            feature_names: p.features.to_string(),
        }
    }
}

/// The daemon's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Success, with a JSON result.
    Ok(serde_json::Value),
    /// Failure, with a message for the user.
    Error(String),
}

/// Path of the control socket for `datadir`.
pub fn socket_path(datadir: &Path) -> PathBuf {
    datadir.join(SOCKET_NAME)
}

/// Binds the control socket, refusing if another daemon already serves it.
pub async fn bind(datadir: &Path) -> anyhow::Result<UnixListener> {
    let path = socket_path(datadir);
    if path.as_os_str().len() > 100 {
        bail!(
            "control socket path {} is too long for a Unix socket; use a shorter --datadir",
            path.display()
        );
    }
    if path.exists() {
        if UnixStream::connect(&path).await.is_ok() {
            bail!(
                "another beongae daemon is already running with data directory {}",
                datadir.display()
            );
        }
        std::fs::remove_file(&path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("binding control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves requests until the task is dropped.
pub async fn serve(listener: UnixListener, ctx: Arc<Ctx>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let response = match serde_json::from_str::<Request>(&line) {
                    Ok(req) => handle(&ctx, req).await,
                    Err(e) => Response::Error(format!("bad request: {e}")),
                };
                let mut out = serde_json::to_string(&response).expect("responses serialize");
                out.push('\n');
                if write.write_all(out.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

fn parse_channel_id(s: &str) -> Result<ChannelId, String> {
    let bytes = hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            format!("bad channel id `{s}`: 64 hex characters, as `beongae channels` shows")
        })?;
    Ok(ChannelId(bytes))
}

fn scid(s: beongae_wire::ShortChannelId) -> String {
    format!("{}x{}x{}", s.block(), s.tx_index(), s.output())
}

fn channel_json(c: &ChannelSummary) -> serde_json::Value {
    serde_json::json!({
        "channel_id": hex::encode(c.channel_id.0),
        "peer": c.peer.to_string(),
        "state": match c.state {
            ChannelState::AwaitingConfirmation => "awaiting_confirmation",
            ChannelState::Normal => "normal",
            ChannelState::ShuttingDown => "shutting_down",
            ChannelState::Closing => "closing",
            ChannelState::Closed => "closed",
        },
        "active": c.active,
        "capacity_sat": c.capacity.to_sat(),
        "local_msat": c.local.to_msat(),
        "remote_msat": c.remote.to_msat(),
        "pending_htlcs": c.pending_htlcs,
        "updates": c.updates,
        "funding_txid": c.funding_txid.to_string(),
        "short_channel_id": c.short_channel_id.map(scid),
        "alias": c.alias.map(scid),
        "remote_alias": c.remote_alias.map(scid),
        "we_opened": c.we_are_funder,
        "closing_txid": c.closing_txid.map(|t| t.to_string()),
        "reason": c.reason,
        "closing_sat": c.closing.to_sat(),
        "spendable_at": c.spendable_at,
        "unresolved_htlcs": c.unresolved_htlcs.iter().map(|h| serde_json::json!({
            "direction": if h.we_offered { "offered" } else { "received" },
            "amount_msat": h.amount.to_msat(),
            "cltv_expiry": h.cltv_expiry,
            "claimable": h.claimable,
        })).collect::<Vec<_>>(),
    })
}

fn parse_node_id(s: &str) -> Result<NodeId, String> {
    s.parse::<NodeId>()
        .map_err(|e| format!("bad node id `{s}`: {e}"))
}

async fn handle(ctx: &Arc<Ctx>, req: Request) -> Response {
    let node = &ctx.node;
    let result: Result<serde_json::Value, String> = async {
        match req {
            Request::GetInfo => Ok(serde_json::json!({
                "node_id": node.node_id().to_string(),
                "listen": ctx.listen.map(|a| a.to_string()),
            })),
            Request::Connect { address } => {
                let addr: PeerAddress = address.parse().map_err(|e| format!("{e}"))?;
                let info = node.connect_to(&addr).await.map_err(|e| e.to_string())?;
                Ok(serde_json::to_value(PeerView::from(info)).expect("serializes"))
            }
            Request::Peers => {
                let peers: Vec<PeerView> = node.peers().await.map_err(|e| e.to_string())?.into_iter().map(Into::into).collect();
                Ok(serde_json::to_value(peers).expect("serializes"))
            }
            Request::Disconnect { node_id } => {
                let was = node.disconnect(parse_node_id(&node_id)?).await.map_err(|e| e.to_string())?;
                Ok(serde_json::json!({ "was_connected": was }))
            }
            Request::Ping { node_id, num_pong_bytes } => {
                let (len, rtt) = node.ping(parse_node_id(&node_id)?, num_pong_bytes).await.map_err(|e| e.to_string())?;
                Ok(serde_json::json!({ "pong_bytes": len, "round_trip_ms": rtt.as_secs_f64() * 1000.0 }))
            }
            Request::NewAddress { kind } => {
                let onchain = ctx.onchain.clone();
                let kind = match kind.as_deref() {
                    None | Some("p2wpkh") => AddressKind::P2wpkh,
                    Some("p2tr") => AddressKind::P2tr,
                    Some(other) => return Err(format!("unknown address type `{other}`: use p2wpkh or p2tr")),
                };
                Ok(serde_json::json!({ "address": onchain.new_address_of(kind).to_string() }))
            }
            Request::Balance => {
                let onchain = ctx.onchain.clone();
                let (b, height) = blocking(move || Ok((onchain.balance()?, onchain.sync()?))).await?;
                // Funds of force-closed channels still on their way back.
                let closing: u64 = node
                    .channels()
                    .await
                    .map_err(|e| e.to_string())?
                    .iter()
                    .map(|c| c.closing.to_sat())
                    .sum();
                let reserve = node.fee_reserve().await.map_err(|e| e.to_string())?;
                let mut v = serde_json::json!({
                    "confirmed_sat": b.confirmed.to_sat(),
                    "unconfirmed_sat": b.unconfirmed.to_sat(),
                    "immature_sat": b.immature.to_sat(),
                    "closing_channels_sat": closing,
                    "fee_reserve_sat": reserve.to_sat(),
                    "height": height,
                });
                if let Some(w) = reserve_warning(b.confirmed + b.unconfirmed, reserve) {
                    v["warning"] = serde_json::json!(w);
                }
                Ok(v)
            }
            Request::Send { address, amount_sat, feerate_sat_per_vb } => {
                let onchain = ctx.onchain.clone();
                // sat/vB -> sat per 1000 weight units.
                let feerate = feerate_sat_per_vb.map(|r| FeeratePerKw(u32::try_from(r.saturating_mul(250)).unwrap_or(u32::MAX)));
                let txid = blocking(move || onchain.send(&address, Amount::from_sat(amount_sat), feerate)).await?;
                Ok(serde_json::json!({ "txid": txid.to_string() }))
            }
            Request::OpenChannel { node_id, amount_sat, push_msat, public } => {
                let (id, txid) = node
                    .open_channel_with(parse_node_id(&node_id)?, Amount::from_sat(amount_sat), Msat::from_msat(push_msat), public)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(serde_json::json!({ "channel_id": hex::encode(id.0), "funding_txid": txid.to_string() }))
            }
            Request::Channels => {
                let channels = node.channels().await.map_err(|e| e.to_string())?;
                Ok(serde_json::Value::Array(channels.iter().map(channel_json).collect()))
            }
            Request::CloseChannel { channel_id, force } => {
                let id = parse_channel_id(&channel_id)?;
                let txid = if force {
                    node.force_close_channel(id).await
                } else {
                    node.close_channel(id).await
                }
                .map_err(|e| e.to_string())?;
                Ok(serde_json::json!({ "closing_txid": txid.to_string() }))
            }
            Request::Forwards => {
                let forwards = node.forwards().await.map_err(|e| e.to_string())?;
                let earned: u64 = forwards
                    .iter()
                    .filter(|f| f.status == "settled")
                    .map(|f| f.fee.to_msat())
                    .sum();
                let list: Vec<serde_json::Value> = forwards
                    .iter()
                    .map(|f| {
                        serde_json::json!({
                            "in_channel": hex::encode(f.in_channel.0),
                            "out_channel": hex::encode(f.out_channel.0),
                            "in_msat": f.in_amount.to_msat(),
                            "out_msat": f.out_amount.to_msat(),
                            "fee_msat": f.fee.to_msat(),
                            "payment_hash": hex::encode(f.payment_hash.0),
                            "status": f.status,
                            "created": f.created,
                        })
                    })
                    .collect();
                Ok(serde_json::json!({ "forwards": list, "fees_earned_msat": earned }))
            }
            Request::SetPolicy {
                channel_id,
                fee_base_msat,
                fee_ppm,
                cltv_expiry_delta,
                htlc_minimum_msat,
                htlc_maximum_msat,
            } => {
                let id = channel_id.as_deref().map(parse_channel_id).transpose()?;
                let policy = beongae_node::core::channels::policy::ForwardingPolicy {
                    fee_base_msat,
                    fee_proportional_millionths: fee_ppm,
                    cltv_expiry_delta,
                    htlc_minimum: htlc_minimum_msat.map(Msat::from_msat),
                    htlc_maximum: htlc_maximum_msat.map(Msat::from_msat),
                };
                let ids = node.set_policy(id, policy).await.map_err(|e| e.to_string())?;
                let ids: Vec<String> = ids.iter().map(|i| hex::encode(i.0)).collect();
                Ok(serde_json::json!({ "channels": ids }))
            }
            Request::Invoice { amount_msat, description, expiry_secs } => {
                let (invoice, hash) = node
                    .invoice(amount_msat.map(Msat::from_msat), &description, expiry_secs)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(serde_json::json!({ "invoice": invoice, "payment_hash": hex::encode(hash.0) }))
            }
            Request::Pay { invoice, amount_msat } => {
                let preimage = node.pay(&invoice, amount_msat.map(Msat::from_msat)).await.map_err(|e| e.to_string())?;
                Ok(serde_json::json!({
                    "payment_hash": hex::encode(preimage.payment_hash().0),
                    "preimage": hex::encode(preimage.0),
                }))
            }
            Request::Keysend { node_id, amount_msat } => {
                let preimage = node
                    .keysend(parse_node_id(&node_id)?, Msat::from_msat(amount_msat))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(serde_json::json!({
                    "payment_hash": hex::encode(preimage.payment_hash().0),
                    "preimage": hex::encode(preimage.0),
                }))
            }
            Request::Graph => {
                let g = node.graph().await.map_err(|e| e.to_string())?;
                let policy = |p: &Option<beongae_graph::Policy>| match p {
                    None => serde_json::Value::Null,
                    Some(p) => serde_json::json!({
                        "fee_base_msat": p.fee_base_msat,
                        "fee_ppm": p.fee_proportional_millionths,
                        "cltv_expiry_delta": p.cltv_expiry_delta,
                        "htlc_minimum_msat": p.htlc_minimum_msat,
                        "htlc_maximum_msat": p.htlc_maximum_msat,
                        "disabled": p.disabled,
                        "timestamp": p.timestamp,
                    }),
                };
                let channels: Vec<serde_json::Value> = g
                    .channels
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "short_channel_id": scid(c.short_channel_id),
                            "node_1": c.nodes[0].to_string(),
                            "node_2": c.nodes[1].to_string(),
                            "capacity_sat": c.capacity.to_sat(),
                            "policy_1": policy(&c.policies[0]),
                            "policy_2": policy(&c.policies[1]),
                        })
                    })
                    .collect();
                let nodes: Vec<serde_json::Value> = g
                    .nodes
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "node_id": n.node_id.to_string(),
                            "alias": n.alias,
                            "color": hex::encode(n.color),
                            "addresses": n.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                            "timestamp": n.timestamp,
                        })
                    })
                    .collect();
                Ok(serde_json::json!({ "channels": channels, "nodes": nodes }))
            }
            Request::Payments => {
                let payments = node.payments().await.map_err(|e| e.to_string())?;
                Ok(serde_json::Value::Array(payments.iter().map(|p| serde_json::json!({
                    "payment_hash": hex::encode(p.payment_hash.0),
                    "direction": if p.incoming { "incoming" } else { "outgoing" },
                    "amount_msat": p.amount.map(Msat::to_msat),
                    "fee_msat": p.fee.map(Msat::to_msat),
                    "attempts": p.attempts,
                    "route": p.route.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                    "status": p.status,
                    "invoice": p.invoice,
                })).collect()))
            }
        }
    }
    .await;
    match result {
        Ok(v) => Response::Ok(v),
        Err(e) => Response::Error(e),
    }
}

/// Runs wallet work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, beongae_wallet::WalletError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Sends one request to the daemon of `datadir` and returns its result.
pub async fn call(datadir: &Path, req: &Request) -> anyhow::Result<serde_json::Value> {
    let path = socket_path(datadir);
    let stream = UnixStream::connect(&path).await.with_context(|| {
        format!(
            "cannot reach a running daemon at {} (start one with `beongae daemon --datadir {}`)",
            path.display(),
            datadir.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    let mut lines = BufReader::new(read).lines();
    let reply = lines
        .next_line()
        .await?
        .context("the daemon closed the connection without answering")?;
    match serde_json::from_str::<Response>(&reply)? {
        Response::Ok(v) => Ok(v),
        Response::Error(e) => bail!(e),
    }
}

/// What `balance` says when the wallet holds less than the fee reserve
/// for anchor channels' force closes.
fn reserve_warning(held: Amount, reserve: Amount) -> Option<String> {
    (held < reserve).then(|| {
        format!(
            "the wallet holds less than the {} sat kept for the fees of anchor channels' force closes: a force close in a fee spike may not confirm in time; add funds",
            reserve.to_sat()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wallet_below_the_fee_reserve_is_warned_about() {
        let sat = Amount::from_sat;
        assert_eq!(
            reserve_warning(sat(9_999), sat(10_000)).as_deref(),
            Some("the wallet holds less than the 10000 sat kept for the fees of anchor channels' force closes: a force close in a fee spike may not confirm in time; add funds")
        );
        assert_eq!(reserve_warning(sat(10_000), sat(10_000)), None);
        assert_eq!(reserve_warning(Amount::ZERO, Amount::ZERO), None);
    }
}
