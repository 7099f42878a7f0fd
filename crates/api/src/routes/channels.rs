//! Channels and forwarding.

use axum::extract::{Path, State};
use beongae_wire::{ChannelId, Msat};
use bitcoin::Amount;

use super::views::*;
use super::{blocking, hex32, node_id, Admin, Authorized, Ctx, Read};
use crate::error::{ApiError, Json};

/// Every channel, closed ones too, with balances.
#[utoipa::path(get, path = "/v1/channels", tag = "channels",
    responses((status = 200, body = Vec<Channel>)), security(("bearer" = ["read"])))]
pub async fn list(_: Authorized<Read>, State(ctx): Ctx) -> Result<Json<Vec<Channel>>, ApiError> {
    Ok(Json(
        ctx.node
            .channels()
            .await?
            .iter()
            .map(Channel::from)
            .collect(),
    ))
}

/// Opens a channel to a connected peer, funded from the wallet.
#[utoipa::path(post, path = "/v1/channels", tag = "channels", request_body = OpenRequest,
    responses((status = 200, body = Opened), (status = 400, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn open(
    _: Authorized<Admin>,
    State(ctx): Ctx,
    Json(req): Json<OpenRequest>,
) -> Result<Json<Opened>, ApiError> {
    let peer = node_id(&req.node_id)?;
    let amount = match (req.amount_sat, req.fund_all) {
        (Some(0), false) => return Err(ApiError::bad_request("amount_sat must be at least 1")),
        (Some(sat), false) if sat > Amount::MAX_MONEY.to_sat() => {
            return Err(ApiError::bad_request(
                "amount_sat is more than 21 million bitcoin",
            ))
        }
        (Some(sat), false) => Amount::from_sat(sat),
        (None, true) => {
            // What the wallet can fund at the node's funding feerate,
            // keeping the reserve this channel adds to: the funding output
            // is a P2WSH, as wide as any.
            let (feerate, reserve, max) = ctx.node.funding_terms().await?;
            let onchain = ctx.onchain.clone();
            let p2wsh = bitcoin::ScriptBuf::new_p2wsh(&bitcoin::ScriptBuf::new().wscript_hash());
            let most = blocking(move || Ok(onchain.max_payable(p2wsh, feerate, reserve)?)).await?;
            most.min(max)
        }
        (None, false) => {
            return Err(ApiError::bad_request(
                "give amount_sat, or fund_all: true to fund the channel with everything but the fee reserve",
            ))
        }
        (Some(_), true) => {
            return Err(ApiError::bad_request("give amount_sat or fund_all, not both"))
        }
    };
    let (id, txid) = ctx
        .node
        .open_channel_with(peer, amount, Msat::from_msat(req.push_msat), req.public)
        .await?;
    Ok(Json(Opened {
        channel_id: hex::encode(id.0),
        funding_txid: txid.to_string(),
        capacity_sat: amount.to_sat(),
    }))
}

/// Closes a channel with the peer, or (`force`) by broadcasting our
/// commitment.
#[utoipa::path(post, path = "/v1/channels/{channel_id}/close", tag = "channels",
    request_body = CloseRequest,
    params(("channel_id" = String, Path, description = "The channel id, hex")),
    responses((status = 200, body = Closing), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn close(
    _: Authorized<Admin>,
    State(ctx): Ctx,
    Path(id): Path<String>,
    Json(req): Json<CloseRequest>,
) -> Result<Json<Closing>, ApiError> {
    let id = ChannelId(hex32(&id, "channel id")?);
    let txid = if req.force {
        ctx.node.force_close_channel(id).await?
    } else {
        ctx.node.close_channel(id).await?
    };
    Ok(Json(Closing {
        closing_txid: txid.to_string(),
    }))
}

/// Sets the forwarding policy of one channel, or of every open channel.
#[utoipa::path(post, path = "/v1/channels/policy", tag = "channels", request_body = PolicyRequest,
    responses((status = 200, body = PolicySet), (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn set_policy(
    _: Authorized<Admin>,
    State(ctx): Ctx,
    Json(req): Json<PolicyRequest>,
) -> Result<Json<PolicySet>, ApiError> {
    let id = req
        .channel_id
        .as_deref()
        .map(|s| hex32(s, "channel id").map(ChannelId))
        .transpose()?;
    let policy = beongae_node::core::channels::policy::ForwardingPolicy {
        fee_base_msat: req.fee_base_msat,
        fee_proportional_millionths: req.fee_ppm,
        cltv_expiry_delta: req.cltv_expiry_delta,
        htlc_minimum: req.htlc_minimum_msat.map(Msat::from_msat),
        htlc_maximum: req.htlc_maximum_msat.map(Msat::from_msat),
    };
    let ids = ctx.node.set_policy(id, policy).await?;
    Ok(Json(PolicySet {
        channels: ids.iter().map(|i| hex::encode(i.0)).collect(),
    }))
}

/// The HTLCs this node forwarded, with the fees earned.
#[utoipa::path(get, path = "/v1/forwards", tag = "channels",
    responses((status = 200, body = Forwards)), security(("bearer" = ["read"])))]
pub async fn forwards(_: Authorized<Read>, State(ctx): Ctx) -> Result<Json<Forwards>, ApiError> {
    let forwards = ctx.node.forwards().await?;
    let fees_earned_msat = forwards
        .iter()
        .filter(|f| f.status == "settled")
        .map(|f| f.fee.to_msat())
        .sum();
    Ok(Json(Forwards {
        forwards: forwards
            .iter()
            .map(|f| Forward {
                in_channel: hex::encode(f.in_channel.0),
                out_channel: hex::encode(f.out_channel.0),
                in_msat: f.in_amount.to_msat(),
                out_msat: f.out_amount.to_msat(),
                fee_msat: f.fee.to_msat(),
                payment_hash: hex::encode(f.payment_hash.0),
                status: f.status.to_string(),
                created: f.created,
            })
            .collect(),
        fees_earned_msat,
    }))
}
