//! Node info, peers, the graph, tokens and `stop`.

use axum::extract::{Path, State};

use super::views::*;
use super::{blocking, node_id, Admin, Authorized, Ctx, Read};
use crate::error::{ApiError, Json};

/// Node info: id, version, network, block height, peers and channels.
#[utoipa::path(get, path = "/v1/info", tag = "node",
    responses((status = 200, body = Info), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = ["read"])))]
pub async fn info(_: Authorized<Read>, State(ctx): Ctx) -> Result<Json<Info>, ApiError> {
    let onchain = ctx.onchain.clone();
    let block_height = blocking(move || {
        onchain
            .chain()
            .tip()
            .map(|(h, _)| h)
            .map_err(|e| ApiError::unavailable(e.to_string()))
    })
    .await?;
    let (synced_height, _) = ctx.node.chain_state().await?;
    let peers = ctx.node.peers().await?.len();
    let mut channels = ChannelCounts::default();
    for c in ctx.node.channels().await? {
        use beongae_node::core::ChannelState as S;
        match c.state {
            S::AwaitingConfirmation => channels.pending += 1,
            S::Normal if c.active => channels.active += 1,
            S::Normal => channels.inactive += 1,
            S::ShuttingDown | S::Closing => channels.closing += 1,
            S::Closed => channels.closed += 1,
        }
    }
    Ok(Json(Info {
        node_id: ctx.node.node_id().to_string(),
        listen: ctx.listen.map(|a| a.to_string()),
        network: ctx.network.clone(),
        version: ctx.version.clone(),
        build: ctx.build.clone(),
        block_height,
        synced_height,
        synced: synced_height >= block_height,
        peers,
        channels,
    }))
}

/// Stops the daemon (gracefully: channels' state is all stored already).
#[utoipa::path(post, path = "/v1/stop", tag = "node",
    responses((status = 200, body = Stopping)), security(("bearer" = ["admin"])))]
pub async fn stop(_: Authorized<Admin>, State(ctx): Ctx) -> Json<Stopping> {
    let _ = ctx.stop.send(true);
    Json(Stopping { stopping: true })
}

/// Connected peers.
#[utoipa::path(get, path = "/v1/peers", tag = "peers",
    responses((status = 200, body = Vec<Peer>)), security(("bearer" = ["read"])))]
pub async fn peers(_: Authorized<Read>, State(ctx): Ctx) -> Result<Json<Vec<Peer>>, ApiError> {
    Ok(Json(
        ctx.node
            .peers()
            .await?
            .into_iter()
            .map(Peer::from)
            .collect(),
    ))
}

/// Connects to a peer (`NODE_ID@HOST:PORT`); answers once `init` is
/// exchanged.
#[utoipa::path(post, path = "/v1/peers", tag = "peers", request_body = ConnectRequest,
    responses((status = 200, body = Peer), (status = 400, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn connect(
    _: Authorized<Admin>,
    State(ctx): Ctx,
    Json(req): Json<ConnectRequest>,
) -> Result<Json<Peer>, ApiError> {
    let addr: beongae_node::address::PeerAddress = req
        .address
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{e}")))?;
    Ok(Json(ctx.node.connect_to(&addr).await?.into()))
}

/// Disconnects a peer.
#[utoipa::path(delete, path = "/v1/peers/{node_id}", tag = "peers",
    params(("node_id" = String, Path, description = "The peer's node id")),
    responses((status = 200, body = Disconnected)), security(("bearer" = ["admin"])))]
pub async fn disconnect(
    _: Authorized<Admin>,
    State(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Json<Disconnected>, ApiError> {
    let was_connected = ctx.node.disconnect(node_id(&id)?).await?;
    Ok(Json(Disconnected { was_connected }))
}

/// Pings a peer and waits for its pong.
#[utoipa::path(post, path = "/v1/peers/{node_id}/ping", tag = "peers", request_body = PingRequest,
    params(("node_id" = String, Path, description = "The peer's node id")),
    responses((status = 200, body = Pong)), security(("bearer" = ["admin"])))]
pub async fn ping(
    _: Authorized<Admin>,
    State(ctx): Ctx,
    Path(id): Path<String>,
    Json(req): Json<PingRequest>,
) -> Result<Json<Pong>, ApiError> {
    let (len, rtt) = ctx.node.ping(node_id(&id)?, req.num_pong_bytes).await?;
    Ok(Json(Pong {
        pong_bytes: usize::from(len),
        round_trip_ms: rtt.as_secs_f64() * 1000.0,
    }))
}

/// The network graph gossip taught this node.
#[utoipa::path(get, path = "/v1/graph", tag = "node",
    responses((status = 200, body = Graph)), security(("bearer" = ["read"])))]
pub async fn graph(_: Authorized<Read>, State(ctx): Ctx) -> Result<Json<Graph>, ApiError> {
    let g = ctx.node.graph().await?;
    let policy = |p: &Option<beongae_graph::Policy>| {
        p.as_ref().map(|p| GraphPolicy {
            fee_base_msat: p.fee_base_msat,
            fee_ppm: p.fee_proportional_millionths,
            cltv_expiry_delta: p.cltv_expiry_delta,
            htlc_minimum_msat: p.htlc_minimum_msat,
            htlc_maximum_msat: p.htlc_maximum_msat,
            disabled: p.disabled,
            timestamp: p.timestamp,
        })
    };
    Ok(Json(Graph {
        channels: g
            .channels
            .iter()
            .map(|c| GraphChannel {
                short_channel_id: scid(c.short_channel_id),
                node_1: c.nodes[0].to_string(),
                node_2: c.nodes[1].to_string(),
                capacity_sat: c.capacity.to_sat(),
                policy_1: policy(&c.policies[0]),
                policy_2: policy(&c.policies[1]),
            })
            .collect(),
        nodes: g
            .nodes
            .iter()
            .map(|n| GraphNode {
                node_id: n.node_id.to_string(),
                alias: n.alias.clone(),
                color: hex::encode(n.color),
                addresses: n.addresses.iter().map(|a| a.to_string()).collect(),
                timestamp: n.timestamp,
            })
            .collect(),
    }))
}

/// The API's tokens (never the tokens themselves).
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<crate::auth::TokenInfo>)), security(("bearer" = ["admin"])))]
pub async fn tokens(_: Authorized<Admin>, State(ctx): Ctx) -> Json<Vec<crate::auth::TokenInfo>> {
    Json(ctx.tokens.list())
}

/// Makes a token with a scope; the answer is the only time it is shown.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = TokenRequest,
    responses((status = 200, body = NewToken)), security(("bearer" = ["admin"])))]
pub async fn create_token(
    _: Authorized<Admin>,
    State(ctx): Ctx,
    Json(req): Json<TokenRequest>,
) -> Result<Json<NewToken>, ApiError> {
    if req.name.trim().is_empty() || req.name.len() > 64 {
        return Err(ApiError::bad_request(
            "name the token (1 to 64 characters) to tell it apart later",
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let random: [u8; 40] = std::array::from_fn(|_| bitcoin::secp256k1::rand::random());
    let (token, info) = ctx
        .tokens
        .create(req.name.trim(), req.scope, now, random)
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(NewToken { token, info }))
}

/// Revokes a token.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "The token's id")),
    responses((status = 200, body = Revoked)), security(("bearer" = ["admin"])))]
pub async fn revoke_token(
    _: Authorized<Admin>,
    State(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let revoked = ctx
        .tokens
        .revoke(&id)
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    if !revoked {
        return Err(ApiError::not_found(format!(
            "no token `{id}` (GET /v1/tokens lists them)"
        )));
    }
    Ok(Json(Revoked { revoked }))
}
