//! Beongae's persistence: a key-value store with namespaces, prefix listing
//! and atomic write batches (DESIGN.md "Persistence").
//!
//! Callers group the updates of many channels into one [`Batch`] and
//! [`Store::commit`] it: the batch is durable as a whole or not at all, and
//! `commit` returns only once it is on disk. The node performs outputs that
//! depend on a batch (e.g. sending `revoke_and_ack`) only after that.
//!
//! [`SqliteStore`] is the embedded implementation; [`PostgresStore`] keeps
//! the same data in a PostgreSQL database (ADR 0011). The [`Store`] trait is
//! all callers see.

mod batch;
pub mod metrics;
mod postgres;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use batch::{Batch, Op};
pub use postgres::{PostgresStore, PG_SCHEMA_VERSION};
pub use sqlite::{SqliteStore, SCHEMA_VERSION};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(String),
    /// The database was written by a newer Beongae.
    #[error("database schema version {found} is newer than this build supports ({supported}); upgrade beongae")]
    SchemaTooNew {
        /// Version on disk.
        found: u32,
        /// Highest version this build knows.
        supported: u32,
    },
    /// Another process (or another handle in this one) has the database open.
    #[error("database {0} is in use by another process; stop the other beongae first")]
    Locked(String),
    /// The store's settings are wrong (a URL that does not parse, a login
    /// refused, a database that does not exist): the text says what to change.
    #[error("{0}")]
    Config(String),
    /// The database server cannot be reached.
    #[error("{0}")]
    Unreachable(String),
    /// A namespace name is empty or too long.
    #[error("invalid namespace {0:?}: use 1 to 64 characters")]
    InvalidNamespace(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// `(key, value)` pairs in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A key-value store with namespaces and atomic batches.
pub trait Store: Send + Sync {
    /// The value of `key` in `namespace`.
    fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every `(key, value)` in `namespace` whose key starts with `prefix`,
    /// in key order.
    fn list(&self, namespace: &str, prefix: &[u8]) -> Result<Entries, StoreError>;

    /// Applies every operation of `batch` atomically and durably, in order.
    fn commit(&self, batch: Batch) -> Result<(), StoreError>;
}

/// The smallest byte string greater than every string with `prefix`, or
/// `None` if there is none (the prefix is empty or all 0xff).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Checks a namespace name.
pub(crate) fn check_namespace(ns: &str) -> Result<(), StoreError> {
    if ns.is_empty() || ns.len() > 64 {
        return Err(StoreError::InvalidNamespace(ns.to_owned()));
    }
    Ok(())
}
