//! The HTTP API with a real HTTP client (reqwest, the daemon's certificate
//! pinned) against running daemons: every endpoint, each scope refused
//! where it must be, bad JSON and bad values answered 4xx with a code and a
//! message, the event stream delivering payments in order, `stop`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

use common::{devnet_env, BIN};

struct Daemon {
    node: common::Node,
    url: String,
    http: reqwest::Client,
    admin: String,
}

impl std::ops::Deref for Daemon {
    type Target = common::Node;
    fn deref(&self) -> &common::Node {
        &self.node
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut common::Node {
        &mut self.node
    }
}

impl Daemon {
    fn start(root: &Path, name: &str, extra: &[&str]) -> Daemon {
        let node = common::Node::start(root, name, extra);
        let (url, http, admin) = common::api_client(&node.datadir);
        Daemon {
            admin,
            node,
            url,
            http,
        }
    }

    /// `method path` with `token` and an optional JSON body: the status and
    /// the JSON answer.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let v = resp.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self
            .call(reqwest::Method::GET, path, Some(&self.admin), None)
            .await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (s, v) = self
            .call(reqwest::Method::POST, path, Some(&self.admin), Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "POST {path}: {v}");
        v
    }
}

/// Asserts an error answer: status, stable code, and words of the message.
fn refused((status, v): (StatusCode, Value), want: StatusCode, code: &str, words: &str) {
    assert_eq!(status, want, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(words), "{msg:?} lacks {words:?}");
}

fn mine(root: &Path, n: &str) {
    let out = devnet_env(&mut Command::new(BIN), root)
        .args(["devnet", "mine", n])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads a daemon's event stream in the background: every event's JSON.
fn events(d: &Daemon, token: &str) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    use futures_util::StreamExt as _;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let req = d
        .http
        .get(format!("{}/v1/events", d.url))
        .bearer_auth(token);
    tokio::spawn(async move {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let mut name = None;
                for line in event.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = Some(n.to_owned());
                    }
                    if let Some(data) = line.strip_prefix("data: ") {
                        let v: Value = serde_json::from_str(data).unwrap();
                        // The SSE event name is the JSON's type.
                        assert_eq!(Some(v["type"].as_str().unwrap().to_owned()), name);
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    rx
}

/// The next event of `kind`, skipping others.
async fn next_of(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let e = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event"))
            .unwrap();
        if e["type"] == kind {
            return e;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_with_scopes_errors_and_events() {
    use reqwest::Method as M;
    let root = tempfile::tempdir().unwrap();
    let a = Daemon::start(root.path(), "a", &[]);
    let b = Daemon::start(root.path(), "b", &[]);
    assert!(a.url.starts_with("https://127.0.0.1:"));

    // A client that does not trust the daemon's certificate is refused.
    let stranger = reqwest::Client::new()
        .get(format!("{}/v1/info", a.url))
        .send()
        .await;
    assert!(stranger.is_err());

    // The OpenAPI document needs no token and names every route.
    let (s, doc) = a.call(M::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/info",
        "/v1/stop",
        "/v1/peers",
        "/v1/peers/{node_id}",
        "/v1/peers/{node_id}/ping",
        "/v1/graph",
        "/v1/tokens",
        "/v1/tokens/{id}",
        "/v1/wallet/balance",
        "/v1/wallet/address",
        "/v1/wallet/send",
        "/v1/channels",
        "/v1/channels/{channel_id}/close",
        "/v1/channels/policy",
        "/v1/forwards",
        "/v1/invoices",
        "/v1/invoices/{payment_hash}",
        "/v1/payments",
        "/v1/payments/keysend",
        "/v1/payments/{payment_hash}",
        "/v1/events",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }

    // No token, a bad one: 401.
    refused(
        a.call(M::GET, "/v1/info", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authorization: Bearer",
    );
    refused(
        a.call(M::GET, "/v1/info", Some("bg_00_11"), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "unknown or revoked",
    );

    // Tokens of each scope, made with the admin token.
    let mut tokens = std::collections::HashMap::new();
    for scope in ["read", "invoices", "payments"] {
        let t = a
            .post(
                "/v1/tokens",
                json!({"name": format!("app {scope}"), "scope": scope}),
            )
            .await;
        assert_eq!(t["info"]["scope"], scope);
        assert!(t["token"].as_str().unwrap().starts_with("bg_"));
        tokens.insert(
            scope,
            (
                t["token"].as_str().unwrap().to_owned(),
                t["info"]["id"].as_str().unwrap().to_owned(),
            ),
        );
    }
    let list = a.get("/v1/tokens").await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t.get("hash").is_none()));
    refused(
        a.post_raw("/v1/tokens", json!({"name": "x", "scope": "root"}))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "unknown variant `root`",
    );
    refused(
        a.post_raw("/v1/tokens", json!({"name": " ", "scope": "read"}))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "name the token",
    );
    let (read, invoices, payments) = (
        &tokens["read"].0,
        &tokens["invoices"].0,
        &tokens["payments"].0,
    );

    // Each scope refused where it must be.
    let (s, _) = a.call(M::GET, "/v1/info", Some(read), None).await;
    assert_eq!(s, StatusCode::OK);
    let invoice_body = json!({"amount_msat": 1000, "description": "x"});
    refused(
        a.call(
            M::POST,
            "/v1/invoices",
            Some(read),
            Some(invoice_body.clone()),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "scope `invoices` or above; this one has `read`",
    );
    let (s, _) = a
        .call(
            M::POST,
            "/v1/invoices",
            Some(invoices),
            Some(invoice_body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    refused(
        a.call(
            M::POST,
            "/v1/payments",
            Some(invoices),
            Some(json!({"invoice": "x"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
        "scope `payments`",
    );
    for (m, path) in [
        (M::POST, "/v1/channels"),
        (M::POST, "/v1/stop"),
        (M::POST, "/v1/wallet/send"),
        (M::POST, "/v1/wallet/address"),
        (M::POST, "/v1/peers"),
        (M::GET, "/v1/tokens"),
        (M::POST, "/v1/channels/policy"),
    ] {
        refused(
            a.call(m, path, Some(payments), Some(json!({}))).await,
            StatusCode::FORBIDDEN,
            "forbidden",
            "scope `admin`",
        );
    }

    // Bad JSON, missing fields, bad values: 4xx with a code and a message.
    let resp = a
        .http
        .post(format!("{}/v1/invoices", a.url))
        .bearer_auth(&a.admin)
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    refused(
        (status, resp.json().await.unwrap()),
        StatusCode::BAD_REQUEST,
        "bad_request",
        "JSON",
    );
    refused(
        a.post_raw("/v1/channels", json!({})).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "missing field `node_id`",
    );
    refused(
        a.post_raw("/v1/channels", json!({"node_id": b.node_id}))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "give amount_sat, or fund_all: true",
    );
    refused(
        a.post_raw("/v1/invoices", json!({"amount_msat": 0})).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "amount_msat must be at least 1",
    );
    refused(
        a.post_raw("/v1/invoices", json!({"amount_msat": "ten"}))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "invalid type",
    );
    refused(
        a.post_raw("/v1/invoices", json!({"expiry_secs": 0})).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "expiry_secs must be between",
    );
    refused(
        a.call(M::GET, "/v1/invoices?limit=0", Some(read), None)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "limit must be between 1 and 1000",
    );
    refused(
        a.call(M::GET, "/v1/invoices?status=weird", Some(read), None)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "use open, paid or expired",
    );
    refused(
        a.call(M::GET, "/v1/payments?status=weird", Some(read), None)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "use pending, succeeded or failed",
    );
    refused(
        a.call(M::GET, "/v1/invoices?limit=x", Some(read), None)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "limit",
    );
    refused(
        a.call(M::GET, "/v1/invoices/zz", Some(read), None).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "64 hex characters",
    );
    refused(
        a.call(
            M::GET,
            &format!("/v1/invoices/{}", "00".repeat(32)),
            Some(read),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        "no invoice of ours",
    );
    refused(
        a.call(
            M::GET,
            &format!("/v1/payments/{}", "00".repeat(32)),
            Some(read),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        "no payment of ours",
    );
    refused(
        a.call(M::GET, "/v1/nothing", Some(read), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "openapi.json",
    );
    refused(
        a.call(M::DELETE, "/v1/info", Some(read), None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "does not take that method",
    );
    refused(
        a.post_raw("/v1/payments", json!({"invoice": "lnbc1garbage"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_invoice",
        "invalid invoice",
    );
    refused(
        a.post_raw("/v1/peers", json!({"address": "nonsense"}))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "NODE_ID@HOST:PORT",
    );
    refused(
        a.post_raw("/v1/wallet/address", json!({"type": "p2sh"}))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "use p2wpkh or p2tr",
    );
    refused(
        a.post_raw(
            "/v1/wallet/send",
            json!({"address": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "amount_sat": 0}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "at least 1",
    );
    refused(
        a.post_raw(
            "/v1/wallet/send",
            json!({"address": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "give amount_sat, or send_all: true",
    );
    refused(
        a.post_raw(
            "/v1/wallet/send",
            json!({"address": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "amount_sat": 5, "send_all": true}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "not both",
    );
    refused(
        a.post_raw(
            "/v1/wallet/send",
            json!({"address": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "amount_sat": u64::MAX}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
        "more than 21 million bitcoin",
    );
    refused(a.post_raw("/v1/wallet/send", json!({"address": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "amount_sat": 10_000_000_000_000u64})).await, StatusCode::UNPROCESSABLE_ENTITY, "wallet", "insufficient funds");
    refused(
        a.post_raw(
            &format!("/v1/channels/{}/close", "00".repeat(32)),
            json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "unknown_channel",
        "no channel",
    );
    // The node's refusals, each with its own code.
    refused(
        a.post_raw(
            "/v1/channels",
            json!({"node_id": b.node_id, "amount_sat": 100_000}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not_connected",
        "connect first",
    );
    let unpayable = b.post("/v1/invoices", json!({"amount_msat": 5_000})).await;
    refused(
        a.post_raw("/v1/payments", json!({"invoice": unpayable["invoice"]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_route",
        "no active channel to pay from",
    );
    refused(
        a.post_raw(
            "/v1/payments/keysend",
            json!({"node_id": b.node_id, "amount_msat": 5_000}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_route",
        "keysend goes to a channel peer",
    );

    // Node, peers, wallet.
    let info = a.get("/v1/info").await;
    assert_eq!(info["node_id"], a.node_id.as_str());
    assert_eq!(info["network"], "devnet");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["block_height"], 152);
    assert_eq!(info["peers"], 0);
    let peer = a
        .post(
            "/v1/peers",
            json!({"address": format!("{}@{}", b.node_id, b.listen)}),
        )
        .await;
    assert_eq!(peer["node_id"], b.node_id.as_str());
    assert_eq!(a.get("/v1/peers").await.as_array().unwrap().len(), 1);
    let pong = a
        .post(
            &format!("/v1/peers/{}/ping", b.node_id),
            json!({"num_pong_bytes": 10}),
        )
        .await;
    assert_eq!(pong["pong_bytes"], 10);
    let balance = a.get("/v1/wallet/balance").await;
    assert_eq!(balance["confirmed_sat"], 1_000_000_000u64);
    let addr = a.post("/v1/wallet/address", json!({"type": "p2tr"})).await;
    assert!(addr["address"].as_str().unwrap().starts_with("bcrt1p"));
    let sent = a
        .post(
            "/v1/wallet/send",
            json!({"address": addr["address"], "amount_sat": 100_000, "feerate_sat_per_vb": 2}),
        )
        .await;
    assert_eq!(sent["txid"].as_str().unwrap().len(), 64);

    // A channel, opened and watched through the events.
    let mut a_events = events(&a, read);
    let mut b_events = events(&b, &b.admin);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let opened = a
        .post(
            "/v1/channels",
            json!({"node_id": b.node_id, "amount_sat": 1_000_000}),
        )
        .await;
    let id = opened["channel_id"].as_str().unwrap().to_owned();
    let pending = next_of(&mut a_events, "channel_pending").await;
    assert_eq!(pending["channel_id"], id.as_str());
    assert_eq!(pending["funding_txid"], opened["funding_txid"]);
    mine(root.path(), "3");
    let ready = next_of(&mut a_events, "channel_ready").await;
    assert_eq!(ready["channel_id"], id.as_str());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = a.get("/v1/channels").await;
        if c[0]["state"] == "normal" && c[0]["active"] == true {
            assert_eq!(c[0]["local_msat"], 1_000_000_000u64);
            break;
        }
        assert!(Instant::now() < deadline, "{c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let set = a
        .post(
            "/v1/channels/policy",
            json!({"fee_base_msat": 1000, "fee_ppm": 10, "cltv_expiry_delta": 80}),
        )
        .await;
    assert_eq!(set["channels"], json!([id]));

    // Payments: B's invoices paid by A, the event streams in order.
    let mut hashes = Vec::new();
    for (sat, what) in [(2_000u64, "first"), (3_000, "second")] {
        let inv = b
            .post(
                "/v1/invoices",
                json!({"amount_msat": sat * 1000, "description": what}),
            )
            .await;
        assert_eq!(inv["status"], "open");
        assert_eq!(inv["description"], what);
        assert_eq!(
            inv["expires"].as_u64().unwrap() - inv["created"].as_u64().unwrap(),
            3600
        );
        let paid = a
            .post(
                "/v1/payments",
                json!({"invoice": format!("lightning:{}", inv["invoice"].as_str().unwrap())}),
            )
            .await;
        assert_eq!(paid["status"], "succeeded");
        assert_eq!(paid["payment_hash"], inv["payment_hash"]);
        assert_eq!(paid["amount_msat"], sat * 1000);
        assert_eq!(paid["fee_msat"], 0);
        assert_eq!(paid["route"], json!([b.node_id]));
        assert_eq!(paid["preimage"].as_str().unwrap().len(), 64);
        assert!(paid["duration_ms"].as_u64().is_some());
        // Sent just now.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            now.abs_diff(paid["created"].as_u64().unwrap()) < 60,
            "{paid}"
        );
        hashes.push(inv["payment_hash"].as_str().unwrap().to_owned());
    }
    for (hash, sat) in hashes.iter().zip([2_000u64, 3_000]) {
        let e = next_of(&mut a_events, "payment_succeeded").await;
        assert_eq!(e["payment_hash"], hash.as_str());
        assert_eq!(e["amount_msat"], sat * 1000);
        let e = next_of(&mut b_events, "invoice_paid").await;
        assert_eq!(e["payment_hash"], hash.as_str());
        assert_eq!(e["amount_msat"], sat * 1000);
    }
    refused(
        a.post_raw(
            "/v1/payments",
            json!({"invoice": b.get(&format!("/v1/invoices/{}", hashes[0])).await["invoice"]}),
        )
        .await,
        StatusCode::CONFLICT,
        "duplicate_payment",
        "already paid",
    );
    let page = b.get("/v1/invoices?status=paid").await;
    assert_eq!(page["total"], 2);
    // Two paid and the one A could not pay (no channel then).
    let page = b.get("/v1/invoices?limit=1&offset=1").await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["invoices"].as_array().unwrap().len(), 1);
    assert_eq!(
        b.get(&format!("/v1/invoices/{}", hashes[1])).await["status"],
        "paid"
    );
    let page = a.get("/v1/payments?status=succeeded").await;
    assert_eq!(page["total"], 2);
    assert_eq!(a.get("/v1/payments?status=failed").await["total"], 0);
    assert_eq!(
        a.get(&format!("/v1/payments/{}", hashes[0])).await["amount_msat"],
        2_000_000
    );
    let keysend = a
        .post(
            "/v1/payments/keysend",
            json!({"node_id": b.node_id, "amount_msat": 5_000}),
        )
        .await;
    assert_eq!(keysend["status"], "succeeded");
    // Bob lists the keysend he received with his invoices, paid.
    let page = b.get("/v1/invoices?status=paid").await;
    assert_eq!(page["total"], 3);
    let received: Vec<&Value> = page["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["keysend"] == true)
        .collect();
    assert_eq!(received.len(), 1, "{page}");
    assert_eq!(received[0]["payment_hash"], keysend["payment_hash"]);
    assert_eq!(received[0]["amount_msat"], 5_000);
    assert_eq!(received[0]["invoice"], Value::Null);
    assert_eq!(received[0]["expires"], Value::Null);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let when = received[0]["created"].as_u64().unwrap();
    assert!(now - 60 <= when && when <= now, "{when} vs {now}");
    assert_eq!(
        a.get("/v1/forwards").await,
        json!({"forwards": [], "fees_earned_msat": 0})
    );
    assert_eq!(
        a.get("/v1/graph").await,
        json!({"channels": [], "nodes": []})
    );
    let info = a.get("/v1/info").await;
    assert_eq!(info["channels"]["active"], 1);
    assert_eq!(info["peers"], 1);
    // Every block of the chain processed (the channel is open on them).
    assert_eq!(info["block_height"], 155);
    assert_eq!(info["synced_height"], 155);
    assert_eq!(info["synced"], true);

    // Prometheus metrics, with a read-scope token.
    let resp = a
        .http
        .get(format!("{}/metrics", a.url))
        .bearer_auth(read)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    for line in [
        "beongae_peers 1",
        "beongae_channels{state=\"active\"} 1",
        "beongae_channels{state=\"pending\"} 0",
        "beongae_payments_sent_total{status=\"succeeded\"} 3",
        "beongae_payments_sent_total{status=\"failed\"} 0",
        // 2,000 + 3,000 sat by invoice and 5 sat by keysend.
        "beongae_payments_sent_msat_total 5005000",
        "beongae_payments_received_total 0",
        "beongae_forwards_total{status=\"settled\"} 0",
        "beongae_channel_balance_msat{side=\"local\"} 994995000",
        "beongae_channel_balance_msat{side=\"remote\"} 5005000",
        "# TYPE beongae_store_commit_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    let commits: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("beongae_store_commit_seconds_count "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(commits > 10, "{commits}");
    // Every commit writes at least a key.
    let bytes: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("beongae_store_commit_bytes_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes > commits, "{bytes} bytes in {commits} commits");
    let b_text = b
        .http
        .get(format!("{}/metrics", b.url))
        .bearer_auth(&b.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        b_text
            .lines()
            .any(|l| l == "beongae_payments_received_total 3"),
        "{b_text}"
    );
    refused(
        a.call(M::GET, "/metrics", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Bearer",
    );

    // A frozen payee: the call gives up after its timeout with a 504 that
    // says the payment goes on, and it does once the payee wakes.
    let inv = b
        .post(
            "/v1/invoices",
            json!({"amount_msat": 1_000, "description": "frozen"}),
        )
        .await;
    let hash = inv["payment_hash"].as_str().unwrap().to_owned();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &b.child.id().to_string()])
            .status()
            .unwrap()
            .success())
    };
    signal("-STOP");
    let frozen = a
        .post_raw(
            "/v1/payments",
            json!({"invoice": inv["invoice"], "timeout_secs": 2}),
        )
        .await;
    signal("-CONT");
    refused(
        frozen,
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        &format!("no outcome after 2 s; the payment goes on: GET /v1/payments/{hash}"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = a.get(&format!("/v1/payments/{hash}")).await;
        if p["status"] == "succeeded" {
            break;
        }
        assert_eq!(p["status"], "pending", "{p}");
        assert!(Instant::now() < deadline, "{p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Revoked: refused from then on.
    let (_, read_id) = &tokens["read"];
    assert_eq!(
        a.call(
            M::DELETE,
            &format!("/v1/tokens/{read_id}"),
            Some(&a.admin),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    refused(
        a.call(M::GET, "/v1/info", Some(read), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "revoked",
    );
    refused(
        a.call(
            M::DELETE,
            &format!("/v1/tokens/{read_id}"),
            Some(&a.admin),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
        "no token",
    );

    // Close, then stop: the daemon exits.
    let closing = a.post(&format!("/v1/channels/{id}/close"), json!({})).await;
    assert_eq!(closing["closing_txid"].as_str().unwrap().len(), 64);
    let stopping = a.post("/v1/stop", json!({})).await;
    assert_eq!(stopping["stopping"], true);
    let mut a = a;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = a.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success());
    assert!(!a.datadir.join("api/url").exists());
}

impl Daemon {
    async fn post_raw(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(&self.admin), Some(body))
            .await
    }
}

/// The OpenAPI document the daemon serves passes a standard validator
/// (`openapi-spec-validator`, from PyPI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::start(root.path(), "o", &[]);
    let (s, doc) = d
        .call(reqwest::Method::GET, "/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let file = root.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = Command::new(common::python_tool("openapi-spec-validator"))
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("OK"), "{text}");
    // Every operation says which scope it needs.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let scopes = &op["security"][0]["bearer"];
            assert!(
                scopes.as_array().is_some_and(|s| s.len() == 1),
                "{method} {path}: {op}"
            );
        }
    }
}

/// Plain HTTP: on loopback it serves; on any other address the daemon
/// refuses to start and says what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_on_loopback() {
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        root.path(),
        "p",
        &["--api-http", "--api-listen", "127.0.0.1:0"],
    );
    assert!(d.url.starts_with("http://127.0.0.1:"));
    assert!(!d.datadir.join("api/tls.cert").exists());
    assert_eq!(d.get("/v1/info").await["network"], "devnet");
    let out = devnet_env(&mut Command::new(BIN), root.path())
        .arg("--datadir")
        .arg(root.path().join("q"))
        .args([
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--api-http",
            "--api-listen",
            "0.0.0.0:0",
        ])
        .env("BEONGAE_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plain HTTP is only for loopback addresses")
            && err.contains("drop --api-http"),
        "{err}"
    );
}
