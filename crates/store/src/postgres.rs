//! The PostgreSQL backend (ADR 0011): one table of `(namespace, key,
//! value)`, a schema version with forward migrations, batches applied in one
//! transaction with every statement pipelined, and a connection that is made
//! again (and the commit repeated) when it breaks.
//!
//! The connection lives on a thread of its own that runs a current-thread
//! tokio runtime. The [`Store`] methods send that thread a job and wait for
//! its answer on a standard channel, so they may be called from any thread
//! without touching the caller's runtime.

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls, Statement};

use crate::{check_namespace, prefix_end, Batch, Entries, Op, Store, StoreError};

/// The schema version this build writes (kept apart from SQLite's: the two
/// backends migrate on their own).
pub const PG_SCHEMA_VERSION: u32 = 1;

/// Migrations: `PG_MIGRATIONS[v]` takes the schema from version `v` to `v + 1`.
const PG_MIGRATIONS: [&str; 1] = ["CREATE TABLE beongae_kv (
        ns TEXT NOT NULL,
        key BYTEA NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (ns, key)
    );"];

/// Serializes migrations of concurrent `open`s (an arbitrary 64-bit key for
/// `pg_advisory_xact_lock`, "beongae" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_656f_6e67_6165;

/// How long a broken connection is tried again before the operation fails
/// (and the node stops).
const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// How long one attempt to connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`Store`] in a PostgreSQL database.
pub struct PostgresStore {
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Where, without the password (for messages).
    place: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresStore({})", self.place)
    }
}

type Reply<T> = std_mpsc::SyncSender<Result<T, StoreError>>;

enum Job {
    Get(String, Vec<u8>, Reply<Option<Vec<u8>>>),
    List(String, Vec<u8>, Reply<Entries>),
    Commit(Batch, Reply<()>),
    SchemaVersion(Reply<u32>),
}

/// The connection and its prepared statements.
struct Conn {
    client: Client,
    get: Statement,
    list_range: Statement,
    list_from: Statement,
    put: Statement,
    delete: Statement,
    delete_range: Statement,
    delete_from: Statement,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// or the key=value form) and migrates it to [`PG_SCHEMA_VERSION`].
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Config(format!(
                "the database URL does not parse ({e}): write postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let place = place(&config);
        let (jobs, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let thread_place = place.clone();
        let thread = std::thread::Builder::new()
            .name("beongae-postgres".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreError::Database(e.to_string())));
                        return;
                    }
                };
                rt.block_on(serve(config, thread_place, rx, ready_tx));
            })
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let store = PostgresStore {
            jobs: Some(jobs),
            thread: Some(thread),
            place,
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(store),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Database(
                "the database thread ended while connecting".into(),
            )),
        }
    }

    /// Host, port and database, without the password.
    pub fn place(&self) -> &str {
        &self.place
    }

    fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, StoreError> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        let gone = || StoreError::Database("the database thread has stopped".into());
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job(tx))
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }

    /// The schema version in the database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.ask(Job::SchemaVersion)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Store for PostgresStore {
    fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        check_namespace(namespace)?;
        self.ask(|r| Job::Get(namespace.to_owned(), key.to_vec(), r))
    }

    fn list(&self, namespace: &str, prefix: &[u8]) -> Result<Entries, StoreError> {
        check_namespace(namespace)?;
        self.ask(|r| Job::List(namespace.to_owned(), prefix.to_vec(), r))
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        for op in batch.ops() {
            check_namespace(op.namespace())?;
        }
        let started = Instant::now();
        let result = self.ask(|r| Job::Commit(batch, r));
        crate::metrics::record(started.elapsed());
        result
    }
}

/// `host:port/database` of `config`.
fn place(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

/// The database thread: connects (answering `ready` with the outcome), then
/// serves jobs until the store is dropped.
async fn serve(
    config: tokio_postgres::Config,
    place: String,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    ready: std_mpsc::SyncSender<Result<(), StoreError>>,
) {
    let first = async {
        let mut client = connect_raw(&config, &place).await?;
        migrate(&mut client).await?;
        prepared(client).await
    };
    let mut conn = match first.await {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Get(ns, key, reply) => {
                let r = retrying(&mut conn, &config, &place, |c| {
                    let (ns, key) = (ns.clone(), key.clone());
                    Box::pin(async move {
                        let row = c.client.query_opt(&c.get, &[&ns, &key]).await?;
                        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
                    })
                })
                .await;
                let _ = reply.send(r);
            }
            Job::List(ns, prefix, reply) => {
                let r = retrying(&mut conn, &config, &place, |c| {
                    let (ns, prefix) = (ns.clone(), prefix.clone());
                    Box::pin(async move {
                        let rows = match prefix_end(&prefix) {
                            Some(end) => {
                                c.client.query(&c.list_range, &[&ns, &prefix, &end]).await?
                            }
                            None => c.client.query(&c.list_from, &[&ns, &prefix]).await?,
                        };
                        Ok(rows
                            .into_iter()
                            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                            .collect())
                    })
                })
                .await;
                let _ = reply.send(r);
            }
            Job::Commit(batch, reply) => {
                let batch = std::sync::Arc::new(batch);
                let r = retrying(&mut conn, &config, &place, |c| {
                    let batch = batch.clone();
                    Box::pin(async move { apply(c, &batch).await })
                })
                .await;
                let _ = reply.send(r);
            }
            Job::SchemaVersion(reply) => {
                let r = retrying(&mut conn, &config, &place, |c| {
                    Box::pin(async move { Ok(read_version(&c.client).await?.unwrap_or(0)) })
                })
                .await;
                let _ = reply.send(r);
            }
        }
    }
}

type Param = dyn tokio_postgres::types::ToSql + Sync;

type Attempt<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + 'a>>;

/// Runs `op`; when the connection broke, connects again and repeats it (every
/// operation is a read, or a batch of whole puts and deletes that gives the
/// same state applied twice), for up to [`RECONNECT_FOR`].
async fn retrying<T>(
    conn: &mut Conn,
    config: &tokio_postgres::Config,
    place: &str,
    mut op: impl for<'a> FnMut(&'a mut Conn) -> Attempt<'a, T>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let e = match op(conn).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if !conn.client.is_closed() {
            return Err(StoreError::Database(e.to_string()));
        }
        // The connection is gone: make another, as long as we may.
        loop {
            if started.elapsed() > RECONNECT_FOR {
                return Err(StoreError::Unreachable(format!(
                    "lost the connection to {place} and could not connect again for {} s: {e}",
                    RECONNECT_FOR.as_secs()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
            match connect(config, place).await {
                Ok(c) => {
                    *conn = c;
                    break;
                }
                Err(StoreError::Unreachable(_)) => continue,
                Err(other) => return Err(other),
            }
        }
    }
}

/// Applies `batch` in one transaction, every statement sent at once.
async fn apply(c: &mut Conn, batch: &Batch) -> Result<(), tokio_postgres::Error> {
    let Conn {
        client,
        put,
        delete,
        delete_range,
        delete_from,
        ..
    } = c;
    let tx = client.transaction().await?;
    // Statements are sent in the order their futures are first polled,
    // which `try_join_all` does in order; the server runs them in order.
    let statements = batch.ops().iter().map(|op| {
        let tx = &tx;
        let (put, delete, delete_range, delete_from) =
            (&*put, &*delete, &*delete_range, &*delete_from);
        async move {
            match op {
                Op::Put {
                    namespace,
                    key,
                    value,
                } => tx.execute(put, &[namespace as &Param, key, value]).await,
                Op::Delete { namespace, key } => {
                    tx.execute(delete, &[namespace as &Param, key]).await
                }
                Op::DeletePrefix { namespace, prefix } => match prefix_end(prefix) {
                    Some(end) => {
                        tx.execute(delete_range, &[namespace as &Param, prefix, &end])
                            .await
                    }
                    None => {
                        tx.execute(delete_from, &[namespace as &Param, prefix])
                            .await
                    }
                },
            }
        }
    });
    futures_util::future::try_join_all(statements).await?;
    tx.commit().await
}

/// Connects and prepares the statements (on a migrated database).
async fn connect(config: &tokio_postgres::Config, place: &str) -> Result<Conn, StoreError> {
    prepared(connect_raw(config, place).await?).await
}

/// A connection, its driving task spawned.
async fn connect_raw(config: &tokio_postgres::Config, place: &str) -> Result<Client, StoreError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| connect_error(&e, config, place))?;
    tokio::spawn(async move {
        // Ends when the connection closes; the next use of the client sees
        // it closed.
        let _ = connection.await;
    });
    Ok(client)
}

async fn prepared(client: Client) -> Result<Conn, StoreError> {
    let db = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    let get = client
        .prepare("SELECT value FROM beongae_kv WHERE ns = $1 AND key = $2")
        .await
        .map_err(db)?;
    let list_range = client
        .prepare("SELECT key, value FROM beongae_kv WHERE ns = $1 AND key >= $2 AND key < $3 ORDER BY key")
        .await
        .map_err(db)?;
    let list_from = client
        .prepare("SELECT key, value FROM beongae_kv WHERE ns = $1 AND key >= $2 ORDER BY key")
        .await
        .map_err(db)?;
    let put = client
        .prepare(
            "INSERT INTO beongae_kv (ns, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value",
        )
        .await
        .map_err(db)?;
    let delete = client
        .prepare("DELETE FROM beongae_kv WHERE ns = $1 AND key = $2")
        .await
        .map_err(db)?;
    let delete_range = client
        .prepare("DELETE FROM beongae_kv WHERE ns = $1 AND key >= $2 AND key < $3")
        .await
        .map_err(db)?;
    let delete_from = client
        .prepare("DELETE FROM beongae_kv WHERE ns = $1 AND key >= $2")
        .await
        .map_err(db)?;
    Ok(Conn {
        client,
        get,
        list_range,
        list_from,
        put,
        delete,
        delete_range,
        delete_from,
    })
}

/// Says what to change when a connection cannot be made.
fn connect_error(
    e: &tokio_postgres::Error,
    config: &tokio_postgres::Config,
    place: &str,
) -> StoreError {
    use tokio_postgres::error::SqlState;
    let user = config.get_user().unwrap_or("(none)");
    match e.code() {
        Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            StoreError::Config(format!(
                "the database at {place} refused the login of user {user}: check the user and password in the store URL"
            ))
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => StoreError::Config(format!(
            "the database {place} does not exist: create it (createdb) or fix the name in the store URL"
        )),
        Some(_) => StoreError::Database(format!("{place}: {e}")),
        None => StoreError::Unreachable(format!(
            "cannot reach the database at {place}: {e}; is PostgreSQL running there? check the host and port in the store URL"
        )),
    }
}

async fn read_version(client: &Client) -> Result<Option<u32>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT value FROM beongae_meta WHERE name = 'schema_version'",
            &[],
        )
        .await?;
    Ok(row.and_then(|r| {
        let v: Vec<u8> = r.get(0);
        <[u8; 4]>::try_from(v.as_slice())
            .ok()
            .map(u32::from_be_bytes)
    }))
}

/// Takes the schema to [`PG_SCHEMA_VERSION`], one transaction, serialized
/// with other processes by an advisory lock.
async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let db = |e: tokio_postgres::Error| StoreError::Database(e.to_string());
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS beongae_meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL);",
    )
    .await
    .map_err(db)?;
    let found = read_version(tx.client()).await.map_err(db)?.unwrap_or(0);
    if found > PG_SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: PG_SCHEMA_VERSION,
        });
    }
    for sql in &PG_MIGRATIONS[found as usize..] {
        tx.batch_execute(sql).await.map_err(db)?;
    }
    if found < PG_SCHEMA_VERSION {
        tx.execute(
            "INSERT INTO beongae_meta (name, value) VALUES ('schema_version', $1) \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[&PG_SCHEMA_VERSION.to_be_bytes().to_vec()],
        )
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}
