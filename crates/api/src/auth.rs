//! Bearer tokens with scopes, stored hashed.
//!
//! A token is `bg_<id>_<secret>` (8 and 32 random bytes, hex). The daemon
//! keeps, in `DATADIR/api/tokens.json` (mode 0600), each token's id, name,
//! scope and the SHA-256 of the whole token, never the token: a copy of the
//! file lets nobody in. At first start it makes an admin token and writes it
//! to `DATADIR/api/admin.token` (mode 0600) for the CLI on this machine, as
//! LND does with its admin macaroon.
//!
//! Scopes nest: `read` sees everything and changes nothing; `invoices` adds
//! creating invoices; `payments` adds paying; `admin` may do anything
//! (channels, the wallet, peers, tokens, stopping the node).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bitcoin::hashes::{sha256, Hash};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a token may do; each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read anything, change nothing.
    Read,
    /// And create invoices.
    Invoices,
    /// And pay.
    Payments,
    /// Anything.
    Admin,
}

impl Scope {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Invoices => "invoices",
            Scope::Payments => "payments",
            Scope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Scope::Read),
            "invoices" => Ok(Scope::Invoices),
            "payments" => Ok(Scope::Payments),
            "admin" => Ok(Scope::Admin),
            _ => Err(format!(
                "unknown scope `{s}`: use read, invoices, payments or admin"
            )),
        }
    }
}

/// A token as stored (and listed): no secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its id (16 hex characters; part of the token).
    pub id: String,
    /// A name to tell tokens apart.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// When it was made (seconds since 1970).
    pub created: u64,
    /// SHA-256 of the token, hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(ignore)]
    pub hash: String,
}

/// Why tokens could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("API tokens in {path}: {source}")]
pub struct TokenFileError {
    path: PathBuf,
    source: std::io::Error,
}

/// The tokens, kept in a file.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    tokens: Mutex<Vec<TokenInfo>>,
}

fn hash(token: &str) -> String {
    hex::encode(sha256::Hash::hash(token.as_bytes()).to_byte_array())
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Writes `bytes` to `path` (mode 0600) atomically.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl TokenStore {
    /// The tokens in `path` (none if it does not exist).
    pub fn open(path: &Path) -> Result<TokenStore, TokenFileError> {
        let err = |source| TokenFileError {
            path: path.to_owned(),
            source,
        };
        let tokens = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(err(e)),
        };
        Ok(TokenStore {
            path: path.to_owned(),
            tokens: Mutex::new(tokens),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TokenInfo>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, tokens: &[TokenInfo]) -> Result<(), TokenFileError> {
        let bytes = serde_json::to_vec_pretty(tokens).expect("tokens serialize");
        write_private(&self.path, &bytes).map_err(|source| TokenFileError {
            path: self.path.clone(),
            source,
        })
    }

    /// Makes a token; returns it (the only time it is seen) and its record.
    pub fn create(
        &self,
        name: &str,
        scope: Scope,
        now: u64,
        random: [u8; 40],
    ) -> Result<(String, TokenInfo), TokenFileError> {
        let id = hex::encode(&random[..8]);
        let token = format!("bg_{id}_{}", hex::encode(&random[8..]));
        let info = TokenInfo {
            id,
            name: name.to_owned(),
            scope,
            created: now,
            hash: hash(&token),
        };
        let mut tokens = self.lock();
        let mut next = tokens.clone();
        next.push(info.clone());
        self.save(&next)?;
        *tokens = next;
        Ok((token, info))
    }

    /// Revokes token `id`; whether there was one.
    pub fn revoke(&self, id: &str) -> Result<bool, TokenFileError> {
        let mut tokens = self.lock();
        let next: Vec<TokenInfo> = tokens.iter().filter(|t| t.id != id).cloned().collect();
        if next.len() == tokens.len() {
            return Ok(false);
        }
        self.save(&next)?;
        *tokens = next;
        Ok(true)
    }

    /// Every token, without hashes.
    pub fn list(&self) -> Vec<TokenInfo> {
        self.lock()
            .iter()
            .map(|t| TokenInfo {
                hash: String::new(),
                ..t.clone()
            })
            .collect()
    }

    /// The scope of `token`, if it is one of ours.
    pub fn check(&self, token: &str) -> Option<Scope> {
        let id = token.strip_prefix("bg_")?.split('_').next()?;
        let h = hash(token);
        self.lock()
            .iter()
            .find(|t| t.id == id && same(&t.hash, &h))
            .map(|t| t.scope)
    }

    /// Whether any token exists.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_hashed_and_checked_by_scope() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let store = TokenStore::open(&path).unwrap();
        let (admin, _) = store.create("cli", Scope::Admin, 1, [1; 40]).unwrap();
        let (read, info) = store.create("shop", Scope::Read, 2, [2; 40]).unwrap();
        assert_eq!(admin, format!("bg_{}_{}", "01".repeat(8), "01".repeat(32)));
        assert_eq!(store.check(&admin), Some(Scope::Admin));
        assert_eq!(store.check(&read), Some(Scope::Read));
        // One character changed: refused.
        let mut bad = read.clone();
        bad.pop();
        bad.push('f');
        assert_eq!(store.check(&bad), None);
        assert_eq!(store.check("nonsense"), None);
        // The file holds hashes, never a token, and only its owner reads it.
        let file = std::fs::read_to_string(&path).unwrap();
        assert!(!file.contains(&admin[20..]) && file.contains(&hash(&admin)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Reopened, the same; revoked, gone.
        let store = TokenStore::open(&path).unwrap();
        assert_eq!(store.check(&read), Some(Scope::Read));
        assert!(store.revoke(&info.id).unwrap());
        assert!(!store.revoke(&info.id).unwrap());
        assert_eq!(store.check(&read), None);
        assert_eq!(store.list().len(), 1);
        assert!(store.list()[0].hash.is_empty());
        assert!(Scope::Payments > Scope::Invoices && Scope::Admin > Scope::Payments);
    }
}
