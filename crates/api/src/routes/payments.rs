//! Invoices and payments.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use beongae_node::core::channels::PaymentSummary;
use beongae_wire::{Msat, PaymentHash};

use super::views::*;
use super::{hex32, node_id, Authorized, Ctx, Invoices, Payments, Read};
use crate::error::{ApiError, Json, Query};

/// How long `POST /v1/payments` waits by default.
const PAY_TIMEOUT: Duration = Duration::from_secs(60);

/// An incoming payment as an invoice: one of ours, or a keysend received.
fn invoice_view(p: &PaymentSummary) -> Option<Invoice> {
    if !p.incoming {
        return None;
    }
    let Some(bolt11) = p.invoice.clone() else {
        return Some(Invoice {
            invoice: None,
            keysend: true,
            payment_hash: hex::encode(p.payment_hash.0),
            amount_msat: p.amount.map(Msat::to_msat),
            status: "paid".into(),
            description: None,
            created: p.created.unwrap_or(0),
            expires: None,
        });
    };
    let decoded = beongae_invoice::Invoice::decode(&bolt11).ok();
    let created = decoded.as_ref().map_or(0, |i| i.timestamp());
    Some(Invoice {
        payment_hash: hex::encode(p.payment_hash.0),
        amount_msat: p.amount.map(Msat::to_msat),
        status: p.status.clone(),
        description: decoded
            .as_ref()
            .and_then(|i| i.description().map(str::to_owned)),
        created,
        expires: Some(created + decoded.as_ref().map_or(0, |i| i.expiry())),
        invoice: Some(bolt11),
        keysend: false,
    })
}

fn payment_view(p: &PaymentSummary) -> Payment {
    let (status, failure) = match p.status.split_once(": ") {
        Some((s, why)) => (s.to_owned(), Some(why.to_owned())),
        None => (p.status.clone(), None),
    };
    Payment {
        payment_hash: hex::encode(p.payment_hash.0),
        status,
        failure,
        amount_msat: p.delivered.or(p.amount).map(Msat::to_msat),
        created: p.created,
        fee_msat: p.fee.map(Msat::to_msat),
        preimage: None,
        attempts: p.attempts,
        route: p.route.iter().map(|n| n.to_string()).collect(),
        duration_ms: None,
    }
}

/// Refuses a `status` filter that is not one of `allowed`.
fn check_status(q: &ListQuery, allowed: &[&str], what: &str) -> Result<(), ApiError> {
    match q.status.as_deref() {
        Some(s) if !allowed.contains(&s) => {
            let (last, rest) = allowed.split_last().unwrap_or((&"", &[]));
            Err(ApiError::bad_request(format!(
                "unknown {what} status `{s}`: use {} or {last}",
                rest.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// Newest first (then by payment hash), and the page `q` asks for, with
/// how many there are in all.
fn newest_first<T: Clone>(
    mut all: Vec<T>,
    key: impl for<'a> Fn(&'a T) -> (Option<u64>, &'a str),
    q: &ListQuery,
) -> Result<(Vec<T>, usize), ApiError> {
    all.sort_by(|a, b| {
        let ((ta, ha), (tb, hb)) = (key(a), key(b));
        tb.cmp(&ta).then(ha.cmp(hb))
    });
    Ok((page(&all, q)?, all.len()))
}

fn page<T: Clone>(items: &[T], q: &ListQuery) -> Result<Vec<T>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    Ok(items
        .iter()
        .skip(q.offset.unwrap_or(0))
        .take(limit)
        .cloned()
        .collect())
}

/// Our invoices, newest first, optionally of one status, a page at a time.
#[utoipa::path(get, path = "/v1/invoices", tag = "invoices", params(ListQuery),
    responses((status = 200, body = InvoicePage), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = ["read"])))]
pub async fn invoices(
    _: Authorized<Read>,
    State(ctx): Ctx,
    Query(q): Query<ListQuery>,
) -> Result<Json<InvoicePage>, ApiError> {
    check_status(&q, &["open", "paid", "expired"], "invoice")?;
    let all: Vec<Invoice> = ctx
        .node
        .payments()
        .await?
        .iter()
        .filter_map(invoice_view)
        .filter(|i| q.status.as_deref().is_none_or(|s| i.status == s))
        .collect();
    let (invoices, total) = newest_first(all, |i| (Some(i.created), &i.payment_hash), &q)?;
    Ok(Json(InvoicePage { invoices, total }))
}

/// One invoice of ours.
#[utoipa::path(get, path = "/v1/invoices/{payment_hash}", tag = "invoices",
    params(("payment_hash" = String, Path, description = "Payment hash, hex")),
    responses((status = 200, body = Invoice), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = ["read"])))]
pub async fn invoice(
    _: Authorized<Read>,
    State(ctx): Ctx,
    Path(hash): Path<String>,
) -> Result<Json<Invoice>, ApiError> {
    let hash = PaymentHash(hex32(&hash, "payment hash")?);
    ctx.node
        .payments()
        .await?
        .iter()
        .find(|p| p.incoming && p.payment_hash == hash)
        .and_then(invoice_view)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no invoice of ours has that payment hash"))
}

/// Creates an invoice (with route hints through the peers of our private
/// channels).
#[utoipa::path(post, path = "/v1/invoices", tag = "invoices", request_body = InvoiceRequest,
    responses((status = 200, body = Invoice), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = ["invoices"])))]
pub async fn create_invoice(
    _: Authorized<Invoices>,
    State(ctx): Ctx,
    Json(req): Json<InvoiceRequest>,
) -> Result<Json<Invoice>, ApiError> {
    if req.amount_msat == Some(0) {
        return Err(ApiError::bad_request(
            "amount_msat must be at least 1 (leave it out for an invoice of any amount)",
        ));
    }
    let expiry = req.expiry_secs.unwrap_or(3600);
    if expiry == 0 || expiry > 365 * 24 * 3600 {
        return Err(ApiError::bad_request(
            "expiry_secs must be between 1 and 31536000 (a year)",
        ));
    }
    let (bolt11, hash) = ctx
        .node
        .invoice(
            req.amount_msat.map(Msat::from_msat),
            &req.description,
            expiry,
        )
        .await?;
    let summary = PaymentSummary {
        payment_hash: hash,
        incoming: true,
        amount: req.amount_msat.map(Msat::from_msat),
        status: "open".into(),
        invoice: Some(bolt11),
        fee: None,
        attempts: 0,
        route: Vec::new(),
        delivered: None,
        created: None,
    };
    invoice_view(&summary)
        .map(Json)
        .ok_or_else(|| ApiError::unavailable("the node made no invoice"))
}

/// Our outgoing payments, optionally of one status, a page at a time.
#[utoipa::path(get, path = "/v1/payments", tag = "payments", params(ListQuery),
    responses((status = 200, body = PaymentPage), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = ["read"])))]
pub async fn payments(
    _: Authorized<Read>,
    State(ctx): Ctx,
    Query(q): Query<ListQuery>,
) -> Result<Json<PaymentPage>, ApiError> {
    check_status(&q, &["pending", "succeeded", "failed"], "payment")?;
    let all: Vec<Payment> = ctx
        .node
        .payments()
        .await?
        .iter()
        .filter(|p| !p.incoming)
        .map(payment_view)
        .filter(|p| q.status.as_deref().is_none_or(|s| p.status == s))
        .collect();
    // Payments from before times were kept come last.
    let (payments, total) = newest_first(all, |p| (p.created, &p.payment_hash), &q)?;
    Ok(Json(PaymentPage { payments, total }))
}

/// One outgoing payment.
#[utoipa::path(get, path = "/v1/payments/{payment_hash}", tag = "payments",
    params(("payment_hash" = String, Path, description = "Payment hash, hex")),
    responses((status = 200, body = Payment), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = ["read"])))]
pub async fn payment(
    _: Authorized<Read>,
    State(ctx): Ctx,
    Path(hash): Path<String>,
) -> Result<Json<Payment>, ApiError> {
    let hash = PaymentHash(hex32(&hash, "payment hash")?);
    find_payment(&ctx, hash)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no payment of ours has that payment hash"))
}

async fn find_payment(
    ctx: &crate::ApiContext,
    hash: PaymentHash,
) -> Result<Option<Payment>, ApiError> {
    Ok(ctx
        .node
        .payments()
        .await?
        .iter()
        .find(|p| !p.incoming && p.payment_hash == hash)
        .map(payment_view))
}

/// Pays an invoice and waits for the outcome (at most `timeout_secs`: a
/// `timeout` error then, while the payment goes on; look it up by its
/// hash). A failure is a `refused` error saying why.
#[utoipa::path(post, path = "/v1/payments", tag = "payments", request_body = PayRequest,
    responses((status = 200, body = Payment), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)),
    security(("bearer" = ["payments"])))]
pub async fn pay(
    _: Authorized<Payments>,
    State(ctx): Ctx,
    Json(req): Json<PayRequest>,
) -> Result<Json<Payment>, ApiError> {
    let decoded = beongae_invoice::Invoice::decode(req.invoice.trim())
        .map_err(|e| ApiError::invalid_invoice(format!("invalid invoice: {e}")))?;
    let hash = decoded.payment_hash();
    let timeout = Duration::from_secs(req.timeout_secs.unwrap_or(PAY_TIMEOUT.as_secs()).max(1));
    let started = Instant::now();
    let paid = tokio::time::timeout(
        timeout,
        ctx.node
            .pay(req.invoice.trim(), req.amount_msat.map(Msat::from_msat)),
    )
    .await
    .map_err(|_| {
        ApiError::timeout(format!(
            "no outcome after {} s; the payment goes on: GET /v1/payments/{}",
            timeout.as_secs(),
            hex::encode(hash.0)
        ))
    })??;
    let mut view = find_payment(&ctx, hash).await?.unwrap_or(Payment {
        payment_hash: hex::encode(hash.0),
        status: "succeeded".into(),
        failure: None,
        amount_msat: None,
        fee_msat: None,
        preimage: None,
        attempts: 1,
        route: Vec::new(),
        duration_ms: None,
        created: None,
    });
    view.preimage = Some(hex::encode(paid.0));
    view.duration_ms = Some(started.elapsed().as_millis() as u64);
    Ok(Json(view))
}

/// Pays a channel peer without an invoice (keysend, bLIP 3) and waits for
/// the outcome (at most `timeout_secs`: a `timeout` error then, while the
/// payment goes on).
#[utoipa::path(post, path = "/v1/payments/keysend", tag = "payments", request_body = KeysendRequest,
    responses((status = 200, body = Payment), (status = 422, body = crate::error::ErrorBody),
        (status = 504, body = crate::error::ErrorBody)),
    security(("bearer" = ["payments"])))]
pub async fn keysend(
    _: Authorized<Payments>,
    State(ctx): Ctx,
    Json(req): Json<KeysendRequest>,
) -> Result<Json<Payment>, ApiError> {
    if req.amount_msat == 0 {
        return Err(ApiError::bad_request("amount_msat must be at least 1"));
    }
    let timeout = Duration::from_secs(req.timeout_secs.unwrap_or(PAY_TIMEOUT.as_secs()).max(1));
    let started = Instant::now();
    let preimage = tokio::time::timeout(
        timeout,
        ctx.node
            .keysend(node_id(&req.node_id)?, Msat::from_msat(req.amount_msat)),
    )
    .await
    .map_err(|_| {
        ApiError::timeout(format!(
            "no outcome after {} s; the payment goes on: GET /v1/payments lists it",
            timeout.as_secs()
        ))
    })??;
    let hash = preimage.payment_hash();
    let mut view = find_payment(&ctx, hash).await?.unwrap_or(Payment {
        payment_hash: hex::encode(hash.0),
        status: "succeeded".into(),
        failure: None,
        amount_msat: Some(req.amount_msat),
        fee_msat: None,
        preimage: None,
        attempts: 1,
        route: Vec::new(),
        duration_ms: None,
        created: None,
    });
    view.preimage = Some(hex::encode(preimage.0));
    view.duration_ms = Some(started.elapsed().as_millis() as u64);
    Ok(Json(view))
}
