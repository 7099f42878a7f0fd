//! Events as server-sent events (`GET /v1/events`): each is an SSE event
//! whose name is the JSON's `type` and whose data is the JSON.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event as Sse, KeepAlive};
use beongae_node::core::Event;
use futures_util::StreamExt as _;
use serde::Serialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use utoipa::ToSchema;

use super::{Authorized, Ctx, Read};

/// One event.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventView {
    /// A peer connected (after `init`).
    PeerConnected {
        /// Node id.
        node_id: String,
    },
    /// A peer went away.
    PeerDisconnected {
        /// Node id.
        node_id: String,
    },
    /// A peer sent a `warning` or an `error`.
    PeerMessage {
        /// Node id.
        node_id: String,
        /// `warning` or `error`.
        kind: String,
        /// Its text.
        text: String,
    },
    /// A channel's funding awaits confirmation.
    ChannelPending {
        /// Channel id.
        channel_id: String,
        /// Peer.
        peer: String,
        /// Funding txid.
        funding_txid: String,
    },
    /// A channel is open.
    ChannelReady {
        /// Channel id.
        channel_id: String,
        /// Peer.
        peer: String,
    },
    /// A channel closed.
    ChannelClosed {
        /// Channel id.
        channel_id: String,
        /// The transaction that spent its funding, if known.
        txid: Option<String>,
    },
    /// One of our invoices was paid.
    InvoicePaid {
        /// Payment hash.
        payment_hash: String,
        /// Amount received.
        amount_msat: u64,
    },
    /// A payment of ours succeeded.
    PaymentSucceeded {
        /// Payment hash.
        payment_hash: String,
        /// Amount delivered.
        amount_msat: u64,
    },
    /// A payment of ours failed.
    PaymentFailed {
        /// Payment hash.
        payment_hash: String,
        /// Why.
        reason: String,
    },
    /// A peer's `commitment_signed` or `channel_reestablish` was refused:
    /// its signature was not for the commitment we compute, or it named
    /// commitment numbers our state does not have. The channel fails.
    CommitmentRefused {
        /// Channel id.
        channel_id: String,
        /// Peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// Something else happened (a kind of event this API version does
    /// not name yet).
    Other {
        /// What.
        description: String,
    },
    /// This stream fell behind and missed events (read them again from the
    /// lists).
    Lagged {
        /// How many.
        missed: u64,
    },
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        match e {
            Event::PeerReady(p) => EventView::PeerConnected {
                node_id: p.node_id.to_string(),
            },
            Event::PeerDisconnected { node_id } => EventView::PeerDisconnected {
                node_id: node_id.to_string(),
            },
            Event::WarningReceived { node_id, text } => EventView::PeerMessage {
                node_id: node_id.to_string(),
                kind: "warning".into(),
                text,
            },
            Event::ErrorReceived { node_id, text } => EventView::PeerMessage {
                node_id: node_id.to_string(),
                kind: "error".into(),
                text,
            },
            Event::ChannelPending {
                channel_id,
                peer,
                funding_txid,
            } => EventView::ChannelPending {
                channel_id: hex::encode(channel_id.0),
                peer: peer.to_string(),
                funding_txid: funding_txid.to_string(),
            },
            Event::ChannelReady {
                channel_id, peer, ..
            } => EventView::ChannelReady {
                channel_id: hex::encode(channel_id.0),
                peer: peer.to_string(),
            },
            Event::ChannelClosed { channel_id, txid } => EventView::ChannelClosed {
                channel_id: hex::encode(channel_id.0),
                txid: txid.map(|t| t.to_string()),
            },
            Event::PaymentReceived {
                payment_hash,
                amount,
            } => EventView::InvoicePaid {
                payment_hash: hex::encode(payment_hash.0),
                amount_msat: amount.to_msat(),
            },
            Event::PaymentSent {
                payment_hash,
                amount,
            } => EventView::PaymentSucceeded {
                payment_hash: hex::encode(payment_hash.0),
                amount_msat: amount.to_msat(),
            },
            Event::PaymentFailed {
                payment_hash,
                reason,
            } => EventView::PaymentFailed {
                payment_hash: hex::encode(payment_hash.0),
                reason,
            },
            Event::CommitmentRefused {
                channel_id,
                peer,
                reason,
            } => EventView::CommitmentRefused {
                channel_id: hex::encode(channel_id.0),
                peer: peer.to_string(),
                reason,
            },
            other => EventView::Other {
                description: format!("{other:?}"),
            },
        }
    }
}

impl EventView {
    fn name(&self) -> &'static str {
        match self {
            EventView::PeerConnected { .. } => "peer_connected",
            EventView::PeerDisconnected { .. } => "peer_disconnected",
            EventView::PeerMessage { .. } => "peer_message",
            EventView::ChannelPending { .. } => "channel_pending",
            EventView::ChannelReady { .. } => "channel_ready",
            EventView::ChannelClosed { .. } => "channel_closed",
            EventView::InvoicePaid { .. } => "invoice_paid",
            EventView::PaymentSucceeded { .. } => "payment_succeeded",
            EventView::PaymentFailed { .. } => "payment_failed",
            EventView::CommitmentRefused { .. } => "commitment_refused",
            EventView::Other { .. } => "other",
            EventView::Lagged { .. } => "lagged",
        }
    }
}

/// The node's events as they happen, as server-sent events
/// (`text/event-stream`), in order.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    responses((status = 200, description = "text/event-stream of EventView", body = EventView)),
    security(("bearer" = ["read"])))]
pub async fn stream(
    _: Authorized<Read>,
    State(ctx): Ctx,
) -> axum::response::sse::Sse<impl futures_util::Stream<Item = Result<Sse, Infallible>>> {
    let events = BroadcastStream::new(ctx.node.subscribe()).map(|e| {
        let view = match e {
            Ok(e) => EventView::from(e),
            Err(BroadcastStreamRecvError::Lagged(missed)) => EventView::Lagged { missed },
        };
        let data = serde_json::to_string(&view).expect("events serialize");
        Ok(Sse::default().event(view.name()).data(data))
    });
    axum::response::sse::Sse::new(events).keep_alive(KeepAlive::default())
}
