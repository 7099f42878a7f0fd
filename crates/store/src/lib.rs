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

pub use batch::{list_memory, Batch, MemoryMap, Op};
pub use postgres::{lease_holder_name, LeaseAttempt, PostgresStore, LEASE_TTL, PG_SCHEMA_VERSION};
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
    /// Another instance of this node took the database's lease: this one
    /// may neither write nor send anything any more.
    #[error("another instance of this node took over the database (its lease is no longer ours): this one stops, sending and writing nothing more")]
    Fenced,
    /// A write to a store whose lease was not taken (or was given up).
    #[error("the store does not hold the database's lease: take it first")]
    NoLease,
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

    /// Every namespace that holds a key, in order.
    fn namespaces(&self) -> Result<Vec<String>, StoreError>;

    /// The bytes the store takes on disk: SQLite's file (its pages, without
    /// the write-ahead log not yet checkpointed); PostgreSQL's tables with
    /// their indexes and TOAST (dead row versions included until vacuumed).
    fn size_bytes(&self) -> Result<u64, StoreError>;

    /// Whether this process may still act for the node: always for a store
    /// only it can open (SQLite's file lock); for a shared database, while
    /// it holds the lease ([`StoreError::Fenced`] once another took it).
    /// Cheap while the last renewal is recent; asks the database otherwise.
    fn check_lease(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether [`Store::check_lease`] would answer at once, without asking
    /// the database (the last renewal is recent, or there is no lease).
    fn lease_is_fresh(&self) -> bool {
        true
    }
}

/// What [`copy_store`] copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Copied {
    /// Namespaces.
    pub namespaces: usize,
    /// Keys.
    pub keys: usize,
    /// Bytes of keys and values.
    pub bytes: usize,
}

/// Copies every key of `from` into `to`, which must hold none, in batches,
/// then reads both back and compares them (`beongae store migrate`).
/// `from` must not change meanwhile (its node stopped).
pub fn copy_store(from: &dyn Store, to: &dyn Store) -> Result<Copied, StoreError> {
    let there = to.namespaces()?;
    if !there.is_empty() {
        return Err(StoreError::Config(format!(
            "the target already holds data (namespaces {}): migrate into an empty database",
            there.join(", ")
        )));
    }
    let mut copied = Copied::default();
    let namespaces = from.namespaces()?;
    for ns in &namespaces {
        let entries = from.list(ns, b"")?;
        for chunk in entries.chunks(1000) {
            let mut batch = Batch::new();
            for (k, v) in chunk {
                copied.bytes += k.len() + v.len();
                batch.put(ns, k.clone(), v.clone());
            }
            to.commit(batch)?;
        }
        copied.keys += entries.len();
    }
    copied.namespaces = namespaces.len();
    // Read back, every namespace, every key and value.
    if to.namespaces()? != namespaces {
        return Err(StoreError::Database(
            "the copy's namespaces differ from the original's".into(),
        ));
    }
    for ns in &namespaces {
        if to.list(ns, b"")? != from.list(ns, b"")? {
            return Err(StoreError::Database(format!(
                "the copy of namespace {ns} differs from the original"
            )));
        }
    }
    Ok(copied)
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
