//! The on-chain wallet.

use axum::extract::State;
use beongae_script::FeeratePerKw;
use beongae_wallet::AddressKind;
use bitcoin::Amount;

use super::views::*;
use super::{blocking, Admin, Authorized, Ctx, Read};
use crate::error::{ApiError, Json};

/// The wallet's balances, the funds of force-closed channels on their way
/// back, and the reserve kept for anchor channels' fees.
#[utoipa::path(get, path = "/v1/wallet/balance", tag = "wallet",
    responses((status = 200, body = Balance)), security(("bearer" = ["read"])))]
pub async fn balance(_: Authorized<Read>, State(ctx): Ctx) -> Result<Json<Balance>, ApiError> {
    let onchain = ctx.onchain.clone();
    let (b, height) = blocking(move || Ok((onchain.balance()?, onchain.sync()?))).await?;
    let channels = ctx.node.channels().await?;
    let closing: u64 = channels.iter().map(|c| c.closing.to_sat()).sum();
    let open = channels
        .iter()
        .filter(|c| c.state == beongae_node::core::ChannelState::Normal);
    let sum = |f: fn(&beongae_node::core::ChannelSummary) -> beongae_wire::Msat| {
        open.clone().map(|c| f(c).to_msat()).sum::<u64>()
    };
    let reserve = ctx.node.fee_reserve().await?;
    Ok(Json(Balance {
        confirmed_sat: b.confirmed.to_sat(),
        unconfirmed_sat: b.unconfirmed.to_sat(),
        immature_sat: b.immature.to_sat(),
        closing_channels_sat: closing,
        fee_reserve_sat: reserve.to_sat(),
        channels_local_msat: sum(|c| c.local),
        channels_spendable_msat: sum(|c| c.spendable),
        channels_receivable_msat: sum(|c| c.receivable),
        height,
        warning: reserve_warning(b.confirmed + b.unconfirmed, reserve),
    }))
}

/// A warning when the wallet holds less than the fee reserve.
pub fn reserve_warning(wallet: Amount, reserve: Amount) -> Option<String> {
    (wallet < reserve).then(|| {
        format!(
            "the wallet holds less than the {} sat kept for the fees of anchor channels' force closes: a force close in a fee spike may not confirm in time; add funds",
            reserve.to_sat()
        )
    })
}

/// A new receiving address.
#[utoipa::path(post, path = "/v1/wallet/address", tag = "wallet", request_body = AddressRequest,
    responses((status = 200, body = NewAddress), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn new_address(
    _: Authorized<Admin>,
    State(ctx): Ctx,
    Json(req): Json<AddressRequest>,
) -> Result<Json<NewAddress>, ApiError> {
    let kind = match req.kind.as_deref() {
        None | Some("p2wpkh") => AddressKind::P2wpkh,
        Some("p2tr") => AddressKind::P2tr,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown address type `{other}`: use p2wpkh or p2tr"
            )))
        }
    };
    Ok(Json(NewAddress {
        address: ctx.onchain.new_address_of(kind).to_string(),
    }))
}

/// Pays an address from the wallet.
#[utoipa::path(post, path = "/v1/wallet/send", tag = "wallet", request_body = SendRequest,
    responses((status = 200, body = Sent), (status = 422, body = crate::error::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn send(
    _: Authorized<Admin>,
    State(ctx): Ctx,
    Json(req): Json<SendRequest>,
) -> Result<Json<Sent>, ApiError> {
    let amount = match (req.amount_sat, req.send_all) {
        (Some(0), false) => return Err(ApiError::bad_request("amount_sat must be at least 1")),
        (Some(sat), false) if sat > Amount::MAX_MONEY.to_sat() => {
            return Err(ApiError::bad_request(
                "amount_sat is more than 21 million bitcoin",
            ))
        }
        (Some(sat), false) => Some(Amount::from_sat(sat)),
        (None, true) => None,
        (None, false) => {
            return Err(ApiError::bad_request(
                "give amount_sat, or send_all: true to send everything but the fee reserve",
            ))
        }
        (Some(_), true) => {
            return Err(ApiError::bad_request(
                "give amount_sat or send_all, not both",
            ))
        }
    };
    if req.feerate_sat_per_vb == Some(0) {
        return Err(ApiError::bad_request(
            "feerate_sat_per_vb must be at least 1",
        ));
    }
    // sat/vB -> sat per 1000 weight units.
    let feerate = req
        .feerate_sat_per_vb
        .map(|r| FeeratePerKw(u32::try_from(r.saturating_mul(250)).unwrap_or(u32::MAX)));
    // The fee reserve is decided by the node's channels, then kept by the
    // wallet (a channel opened meanwhile checks its own funding again).
    let reserve = ctx.node.fee_reserve().await?;
    let onchain = ctx.onchain.clone();
    let sent = blocking(move || Ok(onchain.send(&req.address, amount, feerate, reserve)?)).await?;
    Ok(Json(Sent {
        txid: sent.txid.to_string(),
        amount_sat: sent.amount.to_sat(),
        fee_sat: sent.fee.to_sat(),
    }))
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
