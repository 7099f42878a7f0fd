//! The API's client, as the CLI uses it: the daemon of a data directory is
//! found by the files it writes (`api/url`, `api/tls.cert`,
//! `api/admin.token`), its certificate pinned.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ErrorBody;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No daemon answers for the data directory.
    #[error("{0}")]
    NoDaemon(String),
    /// The API answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable code.
        code: String,
        /// What went wrong.
        message: String,
    },
    /// The connection failed or the answer was not what the API sends.
    #[error("{0}")]
    Transport(String),
}

impl ClientError {
    /// The stable code: the API's, or `no_daemon` / `transport`.
    pub fn code(&self) -> &str {
        match self {
            ClientError::NoDaemon(_) => "no_daemon",
            ClientError::Api { code, .. } => code,
            ClientError::Transport(_) => "transport",
        }
    }
}

/// A client for one daemon's API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ApiClient {
    /// The client of the daemon running with `datadir`, with its admin
    /// token.
    pub fn for_datadir(datadir: &Path) -> Result<ApiClient, ClientError> {
        let no_daemon = |what: &str| {
            ClientError::NoDaemon(format!(
                "cannot reach a running daemon for {} ({what}); start one with `beongae --datadir {} daemon`",
                datadir.display(),
                datadir.display()
            ))
        };
        let url = std::fs::read_to_string(crate::url_path(datadir))
            .map_err(|_| no_daemon("no api/url"))?;
        let token = std::fs::read_to_string(crate::admin_token_path(datadir))
            .map_err(|_| no_daemon("no api/admin.token"))?;
        let cert = crate::tls::cert_path(&crate::api_dir(datadir));
        let url = url.trim();
        Self::new(
            url,
            url.starts_with("https:").then_some(cert.as_path()),
            token.trim(),
        )
    }

    /// A client for `url`, trusting only the certificate in `cert` (for
    /// `https`), sending `token`.
    pub fn new(url: &str, cert: Option<&Path>, token: &str) -> Result<ApiClient, ClientError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if let Some(cert) = cert {
            let der =
                crate::tls::read_cert(cert).map_err(|e| ClientError::Transport(e.to_string()))?;
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(der)
                .map_err(|e| ClientError::Transport(format!("{}: {e}", cert.display())))?;
            let tls =
                rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::ring_provider()))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| ClientError::Transport(e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            builder = builder.use_preconfigured_tls(tls);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(ApiClient {
            http,
            base: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    /// The API's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = req.bearer_auth(&self.token).send().await.map_err(|e| {
            if e.is_connect() {
                ClientError::NoDaemon(format!(
                    "cannot reach the daemon's API at {} ({e}); is the daemon running?",
                    self.base
                ))
            } else {
                ClientError::Transport(format!("{}: {e}", self.base))
            }
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::Transport(format!("the daemon's answer does not parse: {e}"))
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(ClientError::Api {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
            }),
            Err(_) => Err(ClientError::Transport(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ))),
        }
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST path` with a JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// `DELETE path`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    /// `GET /v1/events`: each event's JSON as it comes, until the stream
    /// ends or `f` returns false.
    pub async fn events(
        &self,
        mut f: impl FnMut(serde_json::Value) -> bool,
    ) -> Result<(), ClientError> {
        use futures_util::StreamExt as _;
        let resp = self
            .http
            .get(format!("{}/v1/events", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let b: ErrorBody = resp
                .json()
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            return Err(ClientError::Api {
                status,
                code: b.error.code,
                message: b.error.message,
            });
        }
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ClientError::Transport(e.to_string()))?;
            buf.push_str(&String::from_utf8_lossy(&chunk));
            // Events end with a blank line; `data:` lines carry the JSON.
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for line in event.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        if let Ok(v) = serde_json::from_str(data.trim()) {
                            if !f(v) {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
