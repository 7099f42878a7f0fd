//! API throughput and latency: requests/s and p50/p99 for a read (`GET
//! /v1/info`) and for creating invoices (`POST /v1/invoices`), over TLS and
//! plain HTTP on loopback, one request at a time and 16 at once, next to
//! the raw calls on the node handle that the handlers make, in the same
//! run. `cargo bench -p beongae-api --bench api`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beongae_api::{ApiContext, Scope, TokenStore};
use beongae_chain::devnet::Devnet;
use beongae_chain::ChainSource;
use beongae_node::embedded::{self, EmbeddedConfig};
use beongae_wallet::Seed;
use beongae_wire::Msat;

const N: usize = 2_000;

struct Figures {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn figures(mut lat: Vec<Duration>, wall: Duration) -> Figures {
    lat.sort();
    Figures {
        per_sec: lat.len() as f64 / wall.as_secs_f64(),
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
    }
}

/// Runs `n` calls of `f`, `conc` at a time.
async fn measure<F, Fut>(n: usize, conc: usize, f: F) -> Figures
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n / conc);
            for _ in 0..n / conc {
                let t = Instant::now();
                f().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    figures(lat, started.elapsed())
}

fn row(what: &str, f: &Figures, raw: &Figures) {
    println!(
        "{what:<44} {:>9.0}/s  p50 {:>8.3} ms  p99 {:>8.3} ms  ({:.2}x the raw calls' time per request)",
        f.per_sec,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        raw.per_sec / f.per_sec
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let chain: Arc<dyn ChainSource> = Arc::new(Mutex::new(Devnet::new()));
    let cfg = EmbeddedConfig::new(dir.path(), bitcoin::Network::Regtest);
    let embedded::Embedded { node, onchain } =
        embedded::start(&Seed::from_entropy([9; 32]), chain, cfg)
            .await
            .unwrap();
    let tokens = TokenStore::open(&dir.path().join("tokens.json")).unwrap();
    let (token, _) = tokens.create("bench", Scope::Admin, 0, [5; 40]).unwrap();
    let (stop, _) = tokio::sync::watch::channel(false);
    let ctx = Arc::new(ApiContext {
        node: node.handle(),
        onchain: onchain.clone(),
        devnet: None,
        network: "regtest".into(),
        listen: None,
        tokens,
        stop,
        version: "bench".into(),
        build: None,
    });
    let tls = beongae_api::tls::load_or_create(dir.path(), &[]).unwrap();
    let https = beongae_api::serve(
        beongae_api::router(ctx.clone()),
        "127.0.0.1:0".parse().unwrap(),
        Some(tls),
    )
    .await
    .unwrap();
    let http = beongae_api::serve(
        beongae_api::router(ctx.clone()),
        "127.0.0.1:0".parse().unwrap(),
        None,
    )
    .await
    .unwrap();
    let cert = dir.path().join("tls.cert");
    let clients = [
        (
            "TLS",
            beongae_api::client::ApiClient::new(&https.url, Some(&cert), &token).unwrap(),
        ),
        (
            "HTTP",
            beongae_api::client::ApiClient::new(&http.url, None, &token).unwrap(),
        ),
    ];

    println!("{N} requests each; raw: the node-handle calls the handler makes, in-process");
    for conc in [1usize, 16] {
        // GET /v1/info does: the chain tip, peers, channels.
        let h = node.handle();
        let o = onchain.clone();
        let raw = measure(N, conc, move || {
            let (h, o) = (h.clone(), o.clone());
            async move {
                tokio::task::spawn_blocking(move || o.chain().tip().unwrap())
                    .await
                    .unwrap();
                h.peers().await.unwrap();
                h.channels().await.unwrap();
            }
        })
        .await;
        println!("\n{conc} at a time:");
        row("GET /v1/info, raw calls", &raw, &raw);
        for (name, c) in &clients {
            let c = c.clone();
            let f = measure(N, conc, move || {
                let c = c.clone();
                async move {
                    let _: serde_json::Value = c.get("/v1/info").await.unwrap();
                }
            })
            .await;
            row(&format!("GET /v1/info over {name}"), &f, &raw);
        }
        let h = node.handle();
        let raw = measure(N, conc, move || {
            let h = h.clone();
            async move {
                h.invoice(Some(Msat::from_msat(1_000)), "bench", 3600)
                    .await
                    .unwrap();
            }
        })
        .await;
        row("create an invoice, raw call", &raw, &raw);
        for (name, c) in &clients {
            let c = c.clone();
            let f = measure(N, conc, move || {
                let c = c.clone();
                async move {
                    let _: serde_json::Value = c
                        .post(
                            "/v1/invoices",
                            &serde_json::json!({"amount_msat": 1000, "description": "bench"}),
                        )
                        .await
                        .unwrap();
                }
            })
            .await;
            row(&format!("POST /v1/invoices over {name}"), &f, &raw);
        }
    }
    drop((https, http));
    node.stop();
}
