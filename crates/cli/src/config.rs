//! The settings file, TOML: `DATADIR/beongae.toml`, or `--config FILE`.
//!
//! Precedence: a flag, then its environment variable, then the file, then
//! the default. The file is checked when it is read: an unknown key, a
//! value of the wrong type or out of range stops the program with the key
//! named.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;

use crate::Network;

/// The file's name in a data directory.
pub const FILE_NAME: &str = "beongae.toml";

/// Everything the file may set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `--network`.
    pub network: Option<Network>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--block-interval`.
    pub block_interval: Option<u64>,
    /// `--alias`.
    pub alias: Option<String>,
    /// `--color`.
    pub color: Option<String>,
    /// `--announce-addr`.
    pub announce_addr: Option<Vec<String>>,
    /// `sqlite` or a PostgreSQL URL.
    pub store: Option<String>,
    /// Bitcoin Core.
    #[serde(default)]
    pub bitcoind: BitcoindSection,
    /// The API.
    #[serde(default)]
    pub api: ApiSection,
    /// The shared devnet.
    #[serde(default)]
    pub devnet: DevnetSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
}

/// `[bitcoind]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitcoindSection {
    /// `--bitcoind-rpc`.
    pub rpc: Option<String>,
    /// `--bitcoind-cookie`.
    pub cookie: Option<PathBuf>,
    /// `--bitcoind-user`.
    pub user: Option<String>,
    /// `--bitcoind-password`.
    pub password: Option<String>,
}

/// `[api]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// `--api-listen`.
    pub listen: Option<SocketAddr>,
    /// `--api-http`.
    pub http: Option<bool>,
    /// `--api-tls-name`.
    pub tls_names: Option<Vec<String>>,
}

/// `[devnet]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevnetSection {
    /// `--devnet-dir`.
    pub dir: Option<PathBuf>,
    /// `--devnet-rpc`.
    pub rpc: Option<SocketAddr>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// What to log (as `BEONGAE_LOG`, which wins over it).
    pub level: Option<String>,
    /// The log file (relative to the data directory); `""` for none.
    /// Default `logs/beongae.log`.
    pub file: Option<String>,
    /// Rotate the file when it passes this many megabytes (default 10).
    pub max_size_mb: Option<u64>,
    /// Rotated files kept (default 5).
    pub keep: Option<u32>,
}

impl FileConfig {
    /// Reads `path`; none if it does not exist and was not asked for.
    pub fn load(path: &Path, asked: bool) -> anyhow::Result<FileConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !asked => {
                return Ok(FileConfig::default())
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let cfg: FileConfig = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "config file {}: {}",
                path.display(),
                e.to_string().trim_end()
            )
        })?;
        cfg.check()
            .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
        Ok(cfg)
    }

    /// Values a type cannot check, each with its key.
    fn check(&self) -> Result<(), String> {
        if let Some(c) = &self.color {
            if c.len() != 6 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "key `color`: `{c}` is not 6 hex digits (e.g. 3399ff)"
                ));
            }
        }
        if let Some(a) = &self.alias {
            if a.len() > 32 {
                return Err(format!(
                    "key `alias`: {} bytes long; BOLT 7 allows at most 32",
                    a.len()
                ));
            }
        }
        for a in self.announce_addr.iter().flatten() {
            beongae_node::address::announce_address(a)
                .map_err(|e| format!("key `announce_addr`: {e}"))?;
        }
        if self.log.max_size_mb == Some(0) {
            return Err("key `log.max_size_mb`: must be at least 1".into());
        }
        if let Some(level) = &self.log.level {
            crate::logging::check_filter(level).map_err(|e| format!("key `log.level`: {e}"))?;
        }
        if self.bitcoind.user.is_some() != self.bitcoind.password.is_some() {
            return Err("keys `bitcoind.user` and `bitcoind.password` go together".into());
        }
        Ok(())
    }
}

/// Whether the argument `id` was left at its default (neither a flag nor
/// its environment variable gave it), so the file may set it.
pub fn defaulted(m: &ArgMatches, id: &str) -> bool {
    !matches!(
        m.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// `flag` unless it was defaulted and the file has a value.
pub fn pick<T>(m: &ArgMatches, id: &str, flag: T, file: Option<T>) -> T {
    match file {
        Some(v) if defaulted(m, id) => v,
        _ => flag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, text).unwrap();
        FileConfig::load(&path, true)
            .map_err(|e| e.to_string().replace(&path.display().to_string(), "FILE"))
    }

    #[test]
    fn every_key_and_the_errors_name_the_key() {
        let cfg = parse(
            r#"
network = "regtest"
listen = "0.0.0.0:9735"
block_interval = 0
alias = "shop"
color = "ff0000"
announce_addr = ["203.0.113.7:9735"]
[bitcoind]
rpc = "http://127.0.0.1:18443"
cookie = "/var/lib/bitcoind/regtest/.cookie"
[api]
listen = "127.0.0.1:8080"
http = true
tls_names = ["node.example"]
[devnet]
dir = "/tmp/devnet"
rpc = "127.0.0.1:18600"
[log]
level = "info,beongae_node=debug"
file = "node.log"
max_size_mb = 5
keep = 3
"#,
        )
        .unwrap();
        assert_eq!(cfg.network, Some(Network::Regtest));
        assert_eq!(cfg.api.listen, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(cfg.log.keep, Some(3));

        let e = parse("listn = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(e.contains("unknown field `listn`"), "{e}");
        let e = parse("listen = \"nowhere\"\n").unwrap_err();
        assert!(
            e.contains("listen") && e.contains("invalid socket address"),
            "{e}"
        );
        let e = parse("network = \"moon\"\n").unwrap_err();
        assert!(
            e.contains("network") && e.contains("unknown variant `moon`"),
            "{e}"
        );
        let e = parse("block_interval = -1\n").unwrap_err();
        assert!(e.contains("block_interval"), "{e}");
        let e = parse("[api]\nhttp = \"yes\"\n").unwrap_err();
        assert!(e.contains("http") && e.contains("invalid type"), "{e}");
        let e = parse("color = \"red\"\n").unwrap_err();
        assert_eq!(
            e,
            "config file FILE: key `color`: `red` is not 6 hex digits (e.g. 3399ff)"
        );
        let e = parse("[log]\nlevel = \"loud\"\n").unwrap_err();
        assert!(
            e.contains("key `log.level`") && e.contains("is not a log level"),
            "{e}"
        );
        let e = parse("[bitcoind]\nuser = \"u\"\n").unwrap_err();
        assert!(
            e.contains("`bitcoind.user` and `bitcoind.password` go together"),
            "{e}"
        );
    }
}
