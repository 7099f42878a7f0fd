//! The `/v1` routes. Each handler takes an [`Authorized`] naming the least
//! scope it needs.

pub(crate) mod channels;
pub(crate) mod events;
pub(crate) mod metrics;
pub(crate) mod node;
pub(crate) mod payments;
pub mod views;
pub(crate) mod wallet;

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;

use crate::auth::Scope;
use crate::error::ApiError;
use crate::ApiContext;

pub(crate) type Ctx = axum::extract::State<Arc<ApiContext>>;

/// A scope a handler needs.
pub trait Need {
    /// The scope.
    const SCOPE: Scope;
}

/// `read`
pub struct Read;
/// `invoices`
pub struct Invoices;
/// `payments`
pub struct Payments;
/// `admin`
pub struct Admin;

impl Need for Read {
    const SCOPE: Scope = Scope::Read;
}
impl Need for Invoices {
    const SCOPE: Scope = Scope::Invoices;
}
impl Need for Payments {
    const SCOPE: Scope = Scope::Payments;
}
impl Need for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// A request whose bearer token has at least scope `N`.
pub struct Authorized<N>(PhantomData<N>);

impl<N: Need> FromRequestParts<Arc<ApiContext>> for Authorized<N> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<ApiContext>,
    ) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "no token: send `Authorization: Bearer TOKEN` (the CLI's admin token is in DATADIR/api/admin.token; make others with `beongae token create`)",
                )
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`")
        })?;
        let scope = ctx
            .tokens
            .check(token.trim())
            .ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))?;
        if scope < N::SCOPE {
            return Err(ApiError::forbidden(format!(
                "this needs a token with scope `{}` or above; this one has `{}`",
                N::SCOPE.name(),
                scope.name()
            )));
        }
        Ok(Authorized(PhantomData))
    }
}

/// Every route.
pub(crate) fn router() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/v1/info", get(node::info))
        .route("/v1/stop", post(node::stop))
        .route("/v1/peers", get(node::peers).post(node::connect))
        .route(
            "/v1/peers/{node_id}",
            axum::routing::delete(node::disconnect),
        )
        .route("/v1/peers/{node_id}/ping", post(node::ping))
        .route("/v1/graph", get(node::graph))
        .route("/v1/tokens", get(node::tokens).post(node::create_token))
        .route("/v1/tokens/{id}", axum::routing::delete(node::revoke_token))
        .route("/v1/wallet/balance", get(wallet::balance))
        .route("/v1/wallet/address", post(wallet::new_address))
        .route("/v1/wallet/send", post(wallet::send))
        .route("/v1/channels", get(channels::list).post(channels::open))
        .route("/v1/channels/{channel_id}/close", post(channels::close))
        .route("/v1/channels/policy", post(channels::set_policy))
        .route("/v1/forwards", get(channels::forwards))
        .route(
            "/v1/invoices",
            get(payments::invoices).post(payments::create_invoice),
        )
        .route("/v1/invoices/{payment_hash}", get(payments::invoice))
        .route("/v1/payments", get(payments::payments).post(payments::pay))
        .route("/v1/payments/keysend", post(payments::keysend))
        .route("/v1/payments/{payment_hash}", get(payments::payment))
        .route("/v1/events", get(events::stream))
        .route("/v1/openapi.json", get(crate::openapi::document))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async {
            ApiError::not_found("no such endpoint: GET /v1/openapi.json lists them")
        })
        .method_not_allowed_fallback(|| async { ApiError::new_method_not_allowed() })
}

impl ApiError {
    fn new_method_not_allowed() -> ApiError {
        ApiError {
            status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: "this endpoint does not take that method: GET /v1/openapi.json lists them"
                .into(),
        }
    }
}

/// Runs blocking wallet or chain work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
}

/// Parses a hex id of 32 bytes.
pub(crate) fn hex32(s: &str, what: &str) -> Result<[u8; 32], ApiError> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| ApiError::bad_request(format!("bad {what} `{s}`: 64 hex characters")))
}

/// Parses a node id.
pub(crate) fn node_id(s: &str) -> Result<beongae_wire::NodeId, ApiError> {
    s.trim()
        .parse()
        .map_err(|e| ApiError::bad_request(format!("bad node id `{s}`: {e}")))
}
