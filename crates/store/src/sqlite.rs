//! The SQLite backend: WAL journal, `synchronous=FULL` (a commit is on disk
//! when it returns), a schema version and forward migrations.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::{check_namespace, prefix_end, Batch, Entries, Op, Store, StoreError};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Migrations: `MIGRATIONS[v]` takes the schema from version `v` to `v + 1`.
const MIGRATIONS: [&str; 1] = ["CREATE TABLE kv (
        ns TEXT NOT NULL,
        key BLOB NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (ns, key)
    ) WITHOUT ROWID;"];

/// A [`Store`] in one SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and migrates it to
    /// [`SCHEMA_VERSION`].
    ///
    /// The file is locked for this connection until it is dropped: a second
    /// process (or a second `open`) gets [`StoreError::Locked`], so two nodes
    /// can never both write channel state to one database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let locked = |e: rusqlite::Error| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                StoreError::Locked(path.display().to_string())
            }
            e => e.into(),
        };
        let conn = Connection::open(path)?;
        // Fail at once if another process holds the lock (no retrying).
        conn.busy_timeout(std::time::Duration::ZERO)?;
        // Exclusive: the write lock, once taken, is kept for the connection's life.
        conn.query_row("PRAGMA locking_mode=EXCLUSIVE", [], |_| Ok(()))
            .map_err(locked)?;
        // WAL: readers do not block the writer; FULL: fsync on every commit.
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(locked)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!(
                "could not enable WAL (journal_mode is {mode})"
            )));
        }
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(locked)?;
        Self::setup(conn)
    }

    /// A store in memory (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self, StoreError> {
        // fullfsync: on macOS a plain fsync does not reach the platter (no-op elsewhere).
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA fullfsync=ON; PRAGMA foreign_keys=ON;",
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied batch
        // (SQLite rolls back the open transaction), so the poison is moot.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The schema version on disk.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

impl Store for SqliteStore {
    fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_namespace(namespace)?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT value FROM kv WHERE ns = ?1 AND key = ?2")?;
        Ok(stmt
            .query_row(params![namespace, key], |r| r.get(0))
            .optional()?)
    }

    fn list(&self, namespace: &str, prefix: &[u8]) -> Result<Entries, StoreError> {
        check_namespace(namespace)?;
        let conn = self.conn();
        let rows = match prefix_end(prefix) {
            Some(end) => {
                let mut stmt = conn.prepare_cached(
                    "SELECT key, value FROM kv WHERE ns = ?1 AND key >= ?2 AND key < ?3 ORDER BY key",
                )?;
                let rows = stmt.query_map(params![namespace, prefix, end], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                rows.collect::<Result<Vec<_>, _>>()?
            }
            None => {
                let mut stmt = conn.prepare_cached(
                    "SELECT key, value FROM kv WHERE ns = ?1 AND key >= ?2 ORDER BY key",
                )?;
                let rows =
                    stmt.query_map(params![namespace, prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(rows)
    }

    fn namespaces(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT DISTINCT ns FROM kv ORDER BY ns")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<String>, _>>()?)
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((pages * size) as u64)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let bytes = batch.bytes();
        let result = self.commit_timed(batch);
        crate::metrics::record(started.elapsed(), bytes);
        result
    }
}

impl SqliteStore {
    fn commit_timed(&self, batch: Batch) -> Result<(), StoreError> {
        for op in batch.ops() {
            check_namespace(op.namespace())?;
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut put = tx
                .prepare_cached("INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?1, ?2, ?3)")?;
            let mut delete = tx.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")?;
            let mut delete_range =
                tx.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key >= ?2 AND key < ?3")?;
            let mut delete_from =
                tx.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key >= ?2")?;
            for op in batch.ops() {
                match op {
                    Op::Put {
                        namespace,
                        key,
                        value,
                    } => put.execute(params![namespace, key, value])?,
                    Op::Delete { namespace, key } => delete.execute(params![namespace, key])?,
                    Op::DeletePrefix { namespace, prefix } => match prefix_end(prefix) {
                        Some(end) => delete_range.execute(params![namespace, prefix, end])?,
                        None => delete_from.execute(params![namespace, prefix])?,
                    },
                };
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_cases() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn put_get_list_delete() {
        let s = SqliteStore::in_memory().unwrap();
        let mut b = Batch::new();
        b.put("chan", b"a/1".to_vec(), b"x".to_vec())
            .put("chan", b"a/2".to_vec(), b"y".to_vec())
            .put("chan", b"b/1".to_vec(), b"z".to_vec());
        b.put("other", b"a/1".to_vec(), b"o".to_vec());
        s.commit(b).unwrap();
        assert_eq!(s.get("chan", b"a/2").unwrap(), Some(b"y".to_vec()));
        assert_eq!(s.get("chan", b"a/3").unwrap(), None);
        let listed = s.list("chan", b"a/").unwrap();
        assert_eq!(
            listed,
            vec![
                (b"a/1".to_vec(), b"x".to_vec()),
                (b"a/2".to_vec(), b"y".to_vec())
            ]
        );
        assert_eq!(s.list("chan", b"").unwrap().len(), 3);
        let mut b = Batch::new();
        b.delete("chan", b"a/1".to_vec())
            .put("chan", b"a/2".to_vec(), b"y2".to_vec());
        s.commit(b).unwrap();
        assert_eq!(
            s.list("chan", b"a/").unwrap(),
            vec![(b"a/2".to_vec(), b"y2".to_vec())]
        );
        assert_eq!(s.get("other", b"a/1").unwrap(), Some(b"o".to_vec()));
    }

    #[test]
    fn a_failing_batch_writes_nothing() {
        let s = SqliteStore::in_memory().unwrap();
        let mut b = Batch::new();
        b.put("ok", b"k".to_vec(), b"v".to_vec())
            .put("", b"k".to_vec(), b"v".to_vec());
        assert!(matches!(s.commit(b), Err(StoreError::InvalidNamespace(_))));
        assert_eq!(s.get("ok", b"k").unwrap(), None);
    }

    #[test]
    fn schema_version_and_newer_database_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        drop(s);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION)
        );
        assert!(err.to_string().contains("upgrade beongae"));
    }

    #[test]
    fn one_handle_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let first = SqliteStore::open(&path).unwrap();
        let mut b = Batch::new();
        b.put("ns", b"k".to_vec(), b"v".to_vec());
        first.commit(b).unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert_eq!(err, StoreError::Locked(path.display().to_string()));
        assert!(err.to_string().contains("in use by another process"));
        drop(first);
        let second = SqliteStore::open(&path).unwrap();
        assert_eq!(second.get("ns", b"k").unwrap(), Some(b"v".to_vec()));
    }
}
