//! The daemon's HTTP/JSON API, version 1 (`/v1/...`): everything the CLI
//! does and what apps need, over a running node.
//!
//! - Routes ([`router`]) over an [`ApiContext`]: node info, peers, the
//!   on-chain wallet, channels, invoices, payments, forwards, the graph,
//!   tokens, `stop`, and events as server-sent events.
//! - Every request but the OpenAPI document carries `Authorization: Bearer
//!   TOKEN`; each handler names the least [`auth::Scope`] it needs.
//! - Errors are JSON with a stable code ([`error::ApiError`]).
//! - [`serve`] listens with TLS on a self-signed certificate ([`tls`]), or
//!   plain HTTP on a loopback address only.
//! - [`client::ApiClient`] is the client the CLI uses.

pub mod auth;
pub mod client;
pub mod error;
pub mod openapi;
mod routes;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use beongae_chain::shared::SharedDevnet;
use beongae_node::onchain::Onchain;
use beongae_node::runtime::NodeHandle;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;

pub use auth::{Scope, TokenStore};
pub use routes::events::EventView;
pub use routes::views;

/// What the handlers reach.
pub struct ApiContext {
    /// The node.
    pub node: NodeHandle,
    /// Its chain and wallet.
    pub onchain: Arc<Onchain>,
    /// The shared devnet, on `--network devnet`.
    pub devnet: Option<Arc<SharedDevnet>>,
    /// The network's name (`devnet`, `bitcoin`, `testnet`, `signet`, `regtest`).
    pub network: String,
    /// Where the node accepts peers.
    pub listen: Option<SocketAddr>,
    /// The API's tokens.
    pub tokens: TokenStore,
    /// Set to ask the daemon to stop (`POST /v1/stop`).
    pub stop: watch::Sender<bool>,
    /// The daemon's version.
    pub version: String,
    /// The commit it was built from, if known.
    pub build: Option<String>,
}

/// The API's files in a data directory: tokens, the admin token, the TLS
/// certificate and key, and the URL it listens at.
pub fn api_dir(datadir: &Path) -> PathBuf {
    datadir.join("api")
}

/// The file with the URL the API listens at.
pub fn url_path(datadir: &Path) -> PathBuf {
    api_dir(datadir).join("url")
}

/// The file with the admin token the CLI uses.
pub fn admin_token_path(datadir: &Path) -> PathBuf {
    api_dir(datadir).join("admin.token")
}

/// The routes, with their state.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    routes::router().with_state(ctx)
}

/// A running API server; stops when dropped.
pub struct ApiServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// `https://ADDR` or `http://ADDR`.
    pub url: String,
    shutdown: watch::Sender<bool>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Why the API did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Plain HTTP was asked for on an address other hosts can reach.
    #[error("plain HTTP is only for loopback addresses (127.0.0.1, ::1), not {0}: drop --api-http to use TLS")]
    PlainNotLoopback(SocketAddr),
    /// The address is taken.
    #[error("cannot listen for the API on {addr}: {source} (choose another with --api-listen)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// Serves `router` on `listen`, with TLS when `tls` is given (plain HTTP
/// only on loopback), until the [`ApiServer`] is dropped.
pub async fn serve(
    router: Router,
    listen: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<ApiServer, ServeError> {
    if tls.is_none() && !listen.ip().is_loopback() {
        return Err(ServeError::PlainNotLoopback(listen));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen,
        source,
    })?;
    let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    let (shutdown, mut stopped) = watch::channel(false);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(_) => continue,
                },
                _ = stopped.changed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            let acceptor = acceptor.clone();
            let mut stop = stopped.clone();
            tokio::spawn(async move {
                let builder = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(acceptor) => {
                        let Ok(Ok(tls)) = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            acceptor.accept(tcp),
                        )
                        .await
                        else {
                            return;
                        };
                        let conn = builder.serve_connection(TokioIo::new(tls), service);
                        tokio::select! {
                            _ = conn => {}
                            _ = stop.changed() => {}
                        }
                    }
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(tcp), service);
                        tokio::select! {
                            _ = conn => {}
                            _ = stop.changed() => {}
                        }
                    }
                }
            });
        }
    });
    Ok(ApiServer {
        addr,
        url,
        shutdown,
    })
}
