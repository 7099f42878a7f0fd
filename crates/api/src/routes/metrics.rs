//! `GET /metrics`: Prometheus's text format (0.0.4).

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::IntoResponse;
use beongae_node::core::ChannelState;

use super::{blocking, Authorized, Ctx, Read};
use crate::error::ApiError;

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// The node's metrics for Prometheus: peers, channels by state, balances,
/// payments and forwards, the chain height, and how long store commits
/// take.
#[utoipa::path(get, path = "/metrics", tag = "node",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain")),
    security(("bearer" = ["read"])))]
pub async fn metrics(_: Authorized<Read>, State(ctx): Ctx) -> Result<impl IntoResponse, ApiError> {
    let onchain = ctx.onchain.clone();
    let (wallet, height) = blocking(move || {
        let b = onchain.balance()?;
        let h = onchain
            .chain()
            .tip()
            .map(|(h, _)| h)
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        Ok((b, h))
    })
    .await?;
    let peers = ctx.node.peers().await?.len() as u64;
    let channels = ctx.node.channels().await?;
    let payments = ctx.node.payments().await?;
    let forwards = ctx.node.forwards().await?;

    let mut out = String::new();
    metric(
        &mut out,
        "beongae_block_height",
        "gauge",
        "The best block the node has seen.",
        &[("", u64::from(height))],
    );
    metric(
        &mut out,
        "beongae_peers",
        "gauge",
        "Connected peers.",
        &[("", peers)],
    );
    metric(
        &mut out,
        "beongae_commitments_refused_total",
        "counter",
        "Peers' commitment_signed or channel_reestablish refused since start: a signature not for the commitment we compute, or commitment numbers our state does not have (a peer that signed two commitments for one number).",
        &[("", ctx.node.commitments_refused())],
    );
    let count = |f: &dyn Fn(&beongae_node::core::ChannelSummary) -> bool| {
        channels.iter().filter(|c| f(c)).count() as u64
    };
    metric(
        &mut out,
        "beongae_channels",
        "gauge",
        "Channels by state.",
        &[
            (
                "{state=\"pending\"}",
                count(&|c| c.state == ChannelState::AwaitingConfirmation),
            ),
            (
                "{state=\"active\"}",
                count(&|c| c.state == ChannelState::Normal && c.active),
            ),
            (
                "{state=\"inactive\"}",
                count(&|c| c.state == ChannelState::Normal && !c.active),
            ),
            (
                "{state=\"closing\"}",
                count(&|c| matches!(c.state, ChannelState::ShuttingDown | ChannelState::Closing)),
            ),
            (
                "{state=\"closed\"}",
                count(&|c| c.state == ChannelState::Closed),
            ),
        ],
    );
    let open = channels.iter().filter(|c| c.state == ChannelState::Normal);
    metric(
        &mut out,
        "beongae_channel_balance_msat",
        "gauge",
        "Balances of open channels: ours, theirs, what we could send and receive now.",
        &[
            (
                "{side=\"local\"}",
                open.clone().map(|c| c.local.to_msat()).sum(),
            ),
            (
                "{side=\"remote\"}",
                open.clone().map(|c| c.remote.to_msat()).sum(),
            ),
            (
                "{side=\"spendable\"}",
                open.clone().map(|c| c.spendable.to_msat()).sum(),
            ),
            (
                "{side=\"receivable\"}",
                open.map(|c| c.receivable.to_msat()).sum(),
            ),
        ],
    );
    metric(
        &mut out,
        "beongae_wallet_balance_sat",
        "gauge",
        "The on-chain wallet, and force-closed channels' funds on their way back.",
        &[
            ("{kind=\"confirmed\"}", wallet.confirmed.to_sat()),
            ("{kind=\"unconfirmed\"}", wallet.unconfirmed.to_sat()),
            ("{kind=\"immature\"}", wallet.immature.to_sat()),
            (
                "{kind=\"closing\"}",
                channels.iter().map(|c| c.closing.to_sat()).sum(),
            ),
        ],
    );
    let outgoing = |status: &'static str| {
        payments
            .iter()
            .filter(move |p| !p.incoming && p.status.split(':').next() == Some(status))
    };
    metric(
        &mut out,
        "beongae_payments_sent_total",
        "counter",
        "Payments we made that succeeded or failed.",
        &[
            (
                "{status=\"succeeded\"}",
                outgoing("succeeded").count() as u64,
            ),
            ("{status=\"failed\"}", outgoing("failed").count() as u64),
        ],
    );
    metric(
        &mut out,
        "beongae_payments_pending",
        "gauge",
        "Payments we made still under way.",
        &[("", outgoing("pending").count() as u64)],
    );
    metric(
        &mut out,
        "beongae_payments_sent_msat_total",
        "counter",
        "Amounts delivered by our succeeded payments.",
        &[(
            "",
            outgoing("succeeded")
                .filter_map(|p| p.delivered.or(p.amount))
                .map(|a| a.to_msat())
                .sum(),
        )],
    );
    let received = payments
        .iter()
        .filter(|p| p.incoming && p.status.starts_with("paid"));
    metric(
        &mut out,
        "beongae_payments_received_total",
        "counter",
        "Payments we received (invoices and keysend).",
        &[("", received.clone().count() as u64)],
    );
    metric(
        &mut out,
        "beongae_payments_received_msat_total",
        "counter",
        "Amounts we received.",
        &[(
            "",
            received.filter_map(|p| p.amount).map(|a| a.to_msat()).sum(),
        )],
    );
    let fwd = |status: &'static str| forwards.iter().filter(move |f| f.status == status);
    metric(
        &mut out,
        "beongae_forwards_total",
        "counter",
        "HTLCs we forwarded, by outcome.",
        &[
            ("{status=\"settled\"}", fwd("settled").count() as u64),
            ("{status=\"failed\"}", fwd("failed").count() as u64),
            ("{status=\"pending\"}", fwd("pending").count() as u64),
        ],
    );
    metric(
        &mut out,
        "beongae_forward_fees_msat_total",
        "counter",
        "Fees earned by settled forwards.",
        &[("", fwd("settled").map(|f| f.fee.to_msat()).sum())],
    );
    let h = beongae_store::metrics::commit_latency();
    let _ = writeln!(
        out,
        "# HELP beongae_store_commit_seconds How long durable store commits take.\n# TYPE beongae_store_commit_seconds histogram"
    );
    for (le, n) in &h.cumulative {
        let _ = writeln!(
            out,
            "beongae_store_commit_seconds_bucket{{le=\"{le}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "beongae_store_commit_seconds_bucket{{le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(out, "beongae_store_commit_seconds_sum {}", h.sum_secs);
    let _ = writeln!(out, "beongae_store_commit_seconds_count {}", h.count);
    metric(
        &mut out,
        "beongae_store_commit_bytes_total",
        "counter",
        "Bytes of keys and values written by durable store commits.",
        &[("", h.bytes)],
    );
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    ))
}
