//! API errors: an HTTP status, a stable code for programs, and a message
//! for people that says what to change.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error answer: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ErrorDetail {
    /// Stable, for programs. About the request: `bad_request` (400),
    /// `unauthorized` (401), `forbidden` (403), `not_found` (404),
    /// `method_not_allowed` (405). From the node: `not_connected` (422,
    /// connect to the peer first), `connect_failed` (502), `unknown_channel`
    /// (404), `channel_unusable` (409: not open yet, closing or closed),
    /// `channel_failed` (422), `peer_refused` (422: the peer's reason is in
    /// the message), `insufficient_funds` (422), `invalid_invoice` (400:
    /// malformed, expired, another network, no amount), `duplicate_payment`
    /// (409), `no_route` (422), `payment_failed` (422: where and why in the
    /// message), `payment_pending` (504: its HTLC is being resolved on chain;
    /// ask again later), `not_synced` (503: try again shortly), `refused` (422:
    /// anything else the node will not do). From the wallet: `wallet`
    /// (422). Waiting: `timeout` (504, the work goes on), `unavailable`
    /// (503: the node is stopping or its chain cannot be reached).
    pub code: String,
    /// For people: what went wrong and what to change.
    pub message: String,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Message.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is malformed or a value is out of range.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: no token, or not a valid one.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the token's scope does not cover the request.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such route or object.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 400 `invalid_invoice`: the invoice cannot be read.
    pub fn invalid_invoice(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_invoice", message)
    }

    /// 422: the node refused (no route, no such peer, channel not open...).
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", message)
    }

    /// 422: the on-chain wallet refused (insufficient funds, bad address).
    pub fn wallet(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "wallet", message)
    }

    /// 504: the outcome did not come in time (the work goes on).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
    }

    /// 503: the node is stopping, or the chain cannot be reached.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl From<beongae_node::runtime::NodeError> for ApiError {
    fn from(e: beongae_node::runtime::NodeError) -> Self {
        use beongae_node::core::FailureKind as K;
        match e {
            beongae_node::runtime::NodeError::Stopped => ApiError::unavailable(e.to_string()),
            beongae_node::runtime::NodeError::Failed(f) => {
                let status = match f.kind {
                    K::UnknownChannel => StatusCode::NOT_FOUND,
                    K::InvalidInvoice => StatusCode::BAD_REQUEST,
                    K::DuplicatePayment | K::ChannelUnusable => StatusCode::CONFLICT,
                    K::ConnectFailed => StatusCode::BAD_GATEWAY,
                    // As a timeout: the outcome is not known yet.
                    K::PaymentPending => StatusCode::GATEWAY_TIMEOUT,
                    K::NotSynced => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, f.kind.code(), f.message)
            }
            other => ApiError::unavailable(other.to_string()),
        }
    }
}

impl From<beongae_wallet::WalletError> for ApiError {
    fn from(e: beongae_wallet::WalletError) -> Self {
        match e {
            beongae_wallet::WalletError::Chain(_) => ApiError::unavailable(e.to_string()),
            _ => ApiError::wallet(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// JSON bodies whose rejection (bad JSON, a missing or mistyped field) is
/// an [`ApiError`] in the API's shape rather than axum's plain text.
pub struct Json<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(e) => Err(ApiError::bad_request(format!(
                "{}: send a JSON object as this endpoint's schema describes (GET /v1/openapi.json)",
                e.body_text()
            ))),
        }
    }
}

/// Query strings, rejected in the API's shape.
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
