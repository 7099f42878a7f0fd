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
pub const PG_SCHEMA_VERSION: u32 = 3;

/// Migrations: `PG_MIGRATIONS[v]` takes the schema from version `v` to `v + 1`.
const PG_MIGRATIONS: [&str; 3] = [
    "CREATE TABLE beongae_kv (
        ns TEXT NOT NULL,
        key BYTEA NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (ns, key)
    );",
    // The leader lease (one row): who may write, until when (the server's
    // clock), and an epoch that grows with every new holder.
    "CREATE TABLE beongae_lease (
        id INT PRIMARY KEY CHECK (id = 1),
        holder TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        expires TIMESTAMPTZ NOT NULL
    );
    INSERT INTO beongae_lease VALUES (1, '', 0, 'epoch');",
    // Values are keys, signatures and hashes, which do not compress: a
    // large one (a channel with many HTLCs) goes out of line as it is,
    // without the server first trying to compress it on every update.
    "ALTER TABLE beongae_kv ALTER COLUMN value SET STORAGE EXTERNAL;",
];

/// Serializes migrations of concurrent `open`s (an arbitrary 64-bit key for
/// `pg_advisory_xact_lock`, "beongae" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_656f_6e67_6165;

/// How long a broken connection is tried again before the operation fails
/// (and the node stops).
const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// How long one attempt to connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The lease's time to live: a holder that stops renewing it (killed,
/// frozen, cut off) is replaced this long after its last renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(6);

/// A [`Store`] in a PostgreSQL database.
///
/// Writes need the database's lease ([`PostgresStore::take_lease`]): every
/// commit checks in its own transaction that our epoch still holds it (and
/// renews it), so a former holder that wakes up after another took over
/// cannot write ([`StoreError::Fenced`]). The lease is renewed in the
/// background every third of its time to live.
pub struct PostgresStore {
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Where, without the password (for messages).
    place: String,
    lease: std::sync::Arc<LeaseShared>,
}

/// What the callers know of the lease without asking the database.
#[derive(Debug, Default)]
struct LeaseShared {
    /// Until when the lease is surely ours (our clock, with a margin), as
    /// the last renewal that went through says.
    valid_until: std::sync::Mutex<Option<Instant>>,
    /// Another holder took it: nothing may be written or sent any more.
    fenced: std::sync::atomic::AtomicBool,
}

impl LeaseShared {
    fn valid_until(&self) -> Option<Instant> {
        *self.valid_until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_valid_until(&self, t: Option<Instant>) {
        *self.valid_until.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }
}

/// The outcome of one attempt to take the lease.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseAttempt {
    /// Ours, with this epoch.
    Taken(i64),
    /// Another holds it, for at least this long yet.
    Held {
        /// Who (as it named itself).
        holder: String,
        /// Until its lease runs out, unless it renews it.
        expires_in: Duration,
    },
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
    Namespaces(Reply<Vec<String>>),
    SizeBytes(Reply<u64>),
    SchemaVersion(Reply<u32>),
    TakeLease(String, Duration, Reply<LeaseAttempt>),
    Renew(Reply<()>),
    Release(Reply<()>),
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
    renew: Statement,
}

impl PostgresStore {
    /// [`PostgresStore::connect`], then [`PostgresStore::take_lease`] with
    /// [`LEASE_TTL`], waiting for another holder's lease to run out.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url)?;
        store.take_lease(&lease_holder_name(), LEASE_TTL, &mut |_| {})?;
        Ok(store)
    }

    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// or the key=value form) and migrates it to [`PG_SCHEMA_VERSION`]. It
    /// reads; it writes once it holds the lease.
    ///
    /// TLS: `sslmode=require` with `sslrootcert=PATH` (the PEM certificate
    /// of the authority that signed the server's) encrypts the connection
    /// and checks the server's certificate and name; `sslmode=require`
    /// without it is refused, since a certificate nobody checks protects
    /// nothing. Without `sslmode`, `sslrootcert` makes TLS preferred.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let (url, rootcert) = split_rootcert(url);
        let url = url.as_str();
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Config(format!(
                "the database URL does not parse ({e}): write postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let place = place(&config);
        use tokio_postgres::config::SslMode;
        let tls = match (config.get_ssl_mode(), rootcert) {
            (SslMode::Disable, _) => None,
            (SslMode::Require, None) => {
                return Err(StoreError::Config(
                    "sslmode=require needs sslrootcert=PATH, the certificate of the authority that signed the database server's certificate".into(),
                ))
            }
            // `prefer` (the default): plain unless a certificate to check
            // the server against is given.
            (_, None) => None,
            (_, Some(path)) => Some(tls_connector(&path)?),
        };
        let (jobs, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let thread_place = place.clone();
        let lease_shared = std::sync::Arc::new(LeaseShared::default());
        let thread_lease = lease_shared.clone();
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
                rt.block_on(serve(
                    Connector { config, tls },
                    thread_place,
                    rx,
                    ready_tx,
                    thread_lease,
                ));
            })
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let store = PostgresStore {
            jobs: Some(jobs),
            thread: Some(thread),
            place,
            lease: lease_shared,
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

    /// Takes the lease as `holder` (a name for others' messages) for `ttl`,
    /// renewed from then on; while another holds it, calls `waiting` and
    /// tries again (every second, or sooner when it runs out).
    pub fn take_lease(
        &self,
        holder: &str,
        ttl: Duration,
        waiting: &mut dyn FnMut(&LeaseAttempt),
    ) -> Result<i64, StoreError> {
        loop {
            match self.ask(|r| Job::TakeLease(holder.to_owned(), ttl, r))? {
                LeaseAttempt::Taken(epoch) => return Ok(epoch),
                held @ LeaseAttempt::Held { expires_in, .. } => {
                    waiting(&held);
                    std::thread::sleep(
                        (expires_in + Duration::from_millis(20)).min(Duration::from_secs(1)),
                    );
                }
            }
        }
    }

    /// Gives the lease up (a standby may take it at once); writes are
    /// refused from then on.
    pub fn release_lease(&self) -> Result<(), StoreError> {
        self.ask(Job::Release)
    }
}

/// This process's name as a lease holder: the host and the process id.
pub fn lease_holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host} pid {}", std::process::id())
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // A store closed in good order lets a standby in at once.
        if self.lease.valid_until().is_some() {
            let _ = self.release_lease();
        }
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
        let bytes = batch.bytes();
        let result = self.ask(|r| Job::Commit(batch, r));
        crate::metrics::record(started.elapsed(), bytes);
        result
    }

    fn namespaces(&self) -> Result<Vec<String>, StoreError> {
        self.ask(Job::Namespaces)
    }

    fn size_bytes(&self) -> Result<u64, StoreError> {
        self.ask(Job::SizeBytes)
    }

    fn lease_is_fresh(&self) -> bool {
        !self.lease.fenced.load(std::sync::atomic::Ordering::SeqCst)
            && self.lease.valid_until().is_some_and(|t| Instant::now() < t)
    }

    fn check_lease(&self) -> Result<(), StoreError> {
        if self.lease.fenced.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Fenced);
        }
        match self.lease.valid_until() {
            Some(t) if Instant::now() < t => Ok(()),
            _ => self.ask(Job::Renew),
        }
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

/// How to connect: the settings, and TLS when asked for.
#[derive(Clone)]
struct Connector {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

/// `url` without the `sslrootcert=` parameter (which tokio-postgres does
/// not know), and that parameter's path.
fn split_rootcert(url: &str) -> (String, Option<std::path::PathBuf>) {
    let is_param = |p: &str| p.starts_with("sslrootcert=");
    let path = |p: &str| std::path::PathBuf::from(&p["sslrootcert=".len()..]);
    if let Some((base, query)) = url.split_once('?') {
        let (ours, rest): (Vec<&str>, Vec<&str>) = query.split('&').partition(|p| is_param(p));
        let url = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        (url, ours.last().map(|p| path(p)))
    } else if url.contains("://") {
        (url.to_owned(), None)
    } else {
        // key=value form.
        let (ours, rest): (Vec<&str>, Vec<&str>) =
            url.split_whitespace().partition(|p| is_param(p));
        (rest.join(" "), ours.last().map(|p| path(p)))
    }
}

/// A TLS connector that trusts the certificates in the PEM file at `path`
/// (and checks the server's name against its certificate).
fn tls_connector(
    path: &std::path::Path,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let bad = |why: String| {
        StoreError::Config(format!(
            "sslrootcert {}: {why}: give the PEM certificate of the authority that signed the database server's certificate",
            path.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    // ring, not aws-lc (no C++ build); rustls deprecates it for lacking a
    // post-quantum key exchange, as the API's TLS notes.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The lease as the database thread holds it.
#[derive(Debug, Clone, Copy)]
struct Held {
    epoch: i64,
    ttl: Duration,
}

impl Held {
    fn ttl_secs(&self) -> f64 {
        self.ttl.as_secs_f64()
    }

    /// How long after a renewal was sent the lease is surely still ours:
    /// the server counts its time to live from when it ran the renewal,
    /// which is later; a quarter is left for the two clocks' rates.
    fn sure_for(&self) -> Duration {
        self.ttl - self.ttl / 4
    }
}

/// The database thread: connects (answering `ready` with the outcome), then
/// serves jobs until the store is dropped, renewing the lease while it
/// holds it.
async fn serve(
    config: Connector,
    place: String,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    ready: std_mpsc::SyncSender<Result<(), StoreError>>,
    lease: std::sync::Arc<LeaseShared>,
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
    let mut held: Option<Held> = None;
    let commits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    tokio::spawn(vacuum_loop(config.clone(), place.clone(), commits.clone()));
    loop {
        let renew_at = match (held, lease.valid_until()) {
            (Some(h), Some(_)) => Some(tokio::time::Instant::now() + h.ttl / 3),
            _ => None,
        };
        let job = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
            () = sleep_until(renew_at) => {
                // In the background: a failure shows in `valid_until` and
                // `fenced`, which every later use checks.
                let _ = renew(&mut conn, &config, &place, &mut held, &lease).await;
                continue;
            }
        };
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
                let r = commit(&mut conn, &config, &place, &mut held, &lease, batch).await;
                if r.is_ok() {
                    commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let _ = reply.send(r);
            }
            Job::Namespaces(reply) => {
                let r = retrying(&mut conn, &config, &place, |c| {
                    Box::pin(async move {
                        let rows = c
                            .client
                            .query(
                                "SELECT DISTINCT ns COLLATE \"C\" AS ns FROM beongae_kv ORDER BY 1",
                                &[],
                            )
                            .await?;
                        Ok(rows.into_iter().map(|r| r.get::<_, String>(0)).collect())
                    })
                })
                .await;
                let _ = reply.send(r);
            }
            Job::SizeBytes(reply) => {
                let r = retrying(&mut conn, &config, &place, |c| {
                    Box::pin(async move {
                        let row = c
                            .client
                            .query_one(
                                "SELECT (pg_total_relation_size('beongae_kv') \
                                 + pg_total_relation_size('beongae_meta') \
                                 + pg_total_relation_size('beongae_lease'))::bigint",
                                &[],
                            )
                            .await?;
                        Ok(row.get::<_, i64>(0) as u64)
                    })
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
            Job::TakeLease(holder, ttl, reply) => {
                let sent = Instant::now();
                let r = retrying(&mut conn, &config, &place, |c| {
                    let holder = holder.clone();
                    Box::pin(async move { take(&mut c.client, &holder, ttl).await })
                })
                .await;
                if let Ok(LeaseAttempt::Taken(epoch)) = r {
                    let h = Held { epoch, ttl };
                    held = Some(h);
                    lease
                        .fenced
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                    lease.set_valid_until(Some(sent + h.sure_for()));
                }
                let _ = reply.send(r);
            }
            Job::Renew(reply) => {
                let r = renew(&mut conn, &config, &place, &mut held, &lease).await;
                let _ = reply.send(r);
            }
            Job::Release(reply) => {
                let r = match held.take() {
                    None => Ok(()),
                    Some(h) => {
                        lease.set_valid_until(None);
                        retrying(&mut conn, &config, &place, |c| {
                            Box::pin(async move {
                                c.client
                                    .execute(
                                        "UPDATE beongae_lease SET expires = now() WHERE id = 1 AND epoch = $1",
                                        &[&h.epoch],
                                    )
                                    .await
                                    .map(|_| ())
                            })
                        })
                        .await
                    }
                };
                let _ = reply.send(r);
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One attempt to take the lease: it is free (never held, given up, or
/// run out by the server's clock), so the epoch grows and it is ours; or
/// another holds it.
async fn take(
    client: &mut Client,
    holder: &str,
    ttl: Duration,
) -> Result<LeaseAttempt, tokio_postgres::Error> {
    // The holder's commit locks the lease row for a moment; a holder frozen
    // in the middle of one holds it until the server ends its session
    // (`idle_in_transaction_session_timeout`): meanwhile the lease counts
    // as held.
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL lock_timeout = '1s'").await?;
    let taken = tx
        .query_opt(
            "UPDATE beongae_lease SET holder = $1, epoch = epoch + 1, \
             expires = now() + make_interval(secs => $2) \
             WHERE id = 1 AND expires <= now() RETURNING epoch",
            &[&holder, &ttl.as_secs_f64()],
        )
        .await;
    let taken = match taken {
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            tx.rollback().await?;
            None
        }
        Err(e) => return Err(e),
        Ok(row) => {
            tx.commit().await?;
            row
        }
    };
    if let Some(row) = taken {
        return Ok(LeaseAttempt::Taken(row.get(0)));
    }
    let row = client
        .query_one(
            "SELECT holder, GREATEST(EXTRACT(EPOCH FROM expires - now()), 0)::float8 \
             FROM beongae_lease WHERE id = 1",
            &[],
        )
        .await?;
    Ok(LeaseAttempt::Held {
        holder: row.get(0),
        expires_in: Duration::from_secs_f64(row.get::<_, f64>(1)),
    })
}

/// Renews the lease; a lease taken by another since is [`StoreError::Fenced`]
/// from now on.
async fn renew(
    conn: &mut Conn,
    config: &Connector,
    place: &str,
    held: &mut Option<Held>,
    lease: &LeaseShared,
) -> Result<(), StoreError> {
    if lease.fenced.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(StoreError::Fenced);
    }
    let Some(h) = *held else {
        return Err(StoreError::NoLease);
    };
    let sent = Instant::now();
    let rows = retrying(conn, config, place, |c| {
        Box::pin(async move { c.client.execute(&c.renew, &[&h.epoch, &h.ttl_secs()]).await })
    })
    .await?;
    settle(rows == 1, sent, h, held, lease)
}

/// After a statement that renewed the lease (or found it taken).
fn settle(
    ours: bool,
    sent: Instant,
    h: Held,
    held: &mut Option<Held>,
    lease: &LeaseShared,
) -> Result<(), StoreError> {
    if ours {
        lease.set_valid_until(Some(sent + h.sure_for()));
        Ok(())
    } else {
        *held = None;
        lease.set_valid_until(None);
        lease
            .fenced
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Err(StoreError::Fenced)
    }
}

/// Commits `batch` in a transaction that first renews our lease: if another
/// took it, the transaction is rolled back and the store is fenced.
async fn commit(
    conn: &mut Conn,
    config: &Connector,
    place: &str,
    held: &mut Option<Held>,
    lease: &LeaseShared,
    batch: Batch,
) -> Result<(), StoreError> {
    if lease.fenced.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(StoreError::Fenced);
    }
    let Some(h) = *held else {
        return Err(StoreError::NoLease);
    };
    let batch = std::sync::Arc::new(batch);
    let sent = Instant::now();
    let ours = retrying(conn, config, place, |c| {
        let batch = batch.clone();
        Box::pin(async move { apply(c, &batch, h).await })
    })
    .await?;
    settle(ours, sent, h, held, lease)
}

type Param = dyn tokio_postgres::types::ToSql + Sync;

type Attempt<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + 'a>>;

/// Runs `op`; when the connection broke, connects again and repeats it (every
/// operation is a read, or a batch of whole puts and deletes that gives the
/// same state applied twice), for up to [`RECONNECT_FOR`].
async fn retrying<T>(
    conn: &mut Conn,
    config: &Connector,
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
        if !connection_gone(&conn.client, &e) {
            return Err(StoreError::Database(db_text(&e)));
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

/// Whether the connection is gone after error `e`: closed, or ended by the
/// server with a `FATAL` (or `PANIC`) error, after which it closes the
/// connection (PostgreSQL's protocol: "FATAL ... the session is
/// terminated"), e.g. "terminating connection due to administrator
/// command" (57P01) when a backend is terminated or the server shuts down.
/// The client may read that error before it sees the socket close: CI met
/// it, and a commit failed that a new connection would have taken.
fn connection_gone(client: &Client, e: &tokio_postgres::Error) -> bool {
    client.is_closed()
        || e.is_closed()
        || e.as_db_error().is_some_and(|db| {
            matches!(
                db.parsed_severity(),
                Some(
                    tokio_postgres::error::Severity::Fatal | tokio_postgres::error::Severity::Panic
                )
            )
        })
}

/// Applies `batch` in one transaction, every statement sent at once, the
/// first renewing lease `h`: false (and nothing written) if the lease is no
/// longer ours.
async fn apply(c: &mut Conn, batch: &Batch, h: Held) -> Result<bool, tokio_postgres::Error> {
    let Conn {
        client,
        put,
        delete,
        delete_range,
        delete_from,
        renew,
        ..
    } = c;
    let tx = client.transaction().await?;
    // Statements are sent in the order their futures are first polled,
    // which `try_join_all` does in order; the server runs them in order.
    // The lease row stays locked until the end of the transaction, so a
    // standby's takeover waits for it, and our next commit sees the new
    // epoch.
    let ttl = h.ttl_secs();
    let lease_params: [&Param; 2] = [&h.epoch, &ttl];
    let lease = tx.execute(&*renew, &lease_params);
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
    let (ours, _) =
        futures_util::future::try_join(lease, futures_util::future::try_join_all(statements))
            .await?;
    if ours != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Connects and prepares the statements (on a migrated database).
/// How often [`vacuum_loop`] looks for commits to clean up after.
const VACUUM_EVERY: Duration = Duration::from_secs(5);

/// Every [`VACUUM_EVERY`], when this store committed since the last time,
/// `VACUUM beongae_kv` on a connection of its own (it takes no lock that
/// waits for or holds up commits).
///
/// Every commit rewrites the records it changes whole, and a channel's
/// record with many HTLCs in flight is tens of kilobytes, stored out of
/// line: each rewrite leaves a dead copy that only a vacuum makes reusable.
/// The server's autovacuum wakes once a minute by default; a node making
/// hundreds of payments a second would leave hundreds of megabytes of dead
/// copies by then (measured: 86 kB per payment at 100 in flight, before
/// any vacuum). A store that only reads never commits, so never vacuums.
async fn vacuum_loop(
    config: Connector,
    place: String,
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let mut done = 0;
    let mut client: Option<Client> = None;
    loop {
        tokio::time::sleep(VACUUM_EVERY).await;
        let now = commits.load(std::sync::atomic::Ordering::Relaxed);
        if now == done {
            continue;
        }
        if client.as_ref().is_none_or(Client::is_closed) {
            client = connect_raw(&config, &place).await.ok();
        }
        let Some(c) = &client else {
            continue;
        };
        // A user that does not own the table gets a warning from the
        // server and nothing done: the autovacuum alone reclaims space.
        match c.batch_execute("VACUUM beongae_kv").await {
            Ok(()) => done = now,
            // Tried again on a new connection next time.
            Err(_) => client = None,
        }
    }
}

async fn connect(config: &Connector, place: &str) -> Result<Conn, StoreError> {
    prepared(connect_raw(config, place).await?).await
}

/// A connection, its driving task spawned.
async fn connect_raw(connector: &Connector, place: &str) -> Result<Client, StoreError> {
    let config = &connector.config;
    // The connection task ends when the connection closes; the next use of
    // the client sees it closed, or first reads the server's last error
    // (`connection_gone`).
    let client = match &connector.tls {
        None => {
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| connect_error(&e, config, place))?;
            tokio::spawn(connection);
            client
        }
        Some(tls) => {
            let (client, connection) = config
                .connect(tls.clone())
                .await
                .map_err(|e| connect_error(&e, config, place))?;
            tokio::spawn(connection);
            client
        }
    };
    // A process frozen in the middle of a transaction (SIGSTOP, a paused
    // VM) would keep the lease row locked and a standby out: the server
    // ends such a session after half the lease's time to live. Ours never
    // wait on the client inside a transaction (every statement is sent at
    // once), so this only ends frozen ones.
    client
        .batch_execute(&format!(
            "SET idle_in_transaction_session_timeout = {}",
            (LEASE_TTL / 2).as_millis()
        ))
        .await
        .map_err(|e| StoreError::Database(db_text(&e)))?;
    Ok(client)
}

async fn prepared(client: Client) -> Result<Conn, StoreError> {
    let db = |e: tokio_postgres::Error| StoreError::Database(db_text(&e));
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
    let renew = client
        .prepare(
            "UPDATE beongae_lease SET expires = now() + make_interval(secs => $2) \
             WHERE id = 1 AND epoch = $1",
        )
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
        renew,
    })
}

/// A database error in full: tokio-postgres shows a server's error as just
/// "db error", its text being in the source.
fn db_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
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
        // Up, but not taking connections for now: starting, shutting down
        // or recovering (57P03), or at a connection limit (53300). A lost
        // connection is made again while this lasts (`retrying`): the
        // server that ended it with 57P01 is often still shutting down.
        Some(c) if *c == SqlState::CANNOT_CONNECT_NOW || *c == SqlState::TOO_MANY_CONNECTIONS => {
            StoreError::Unreachable(format!(
                "the database at {place} does not take connections now ({}): it may be starting, shutting down or recovering; or raise its connection limit (max_connections, or the user's or database's CONNECTION LIMIT)",
                db_text(e)
            ))
        }
        Some(_) => StoreError::Database(format!("{place}: {}", db_text(e))),
        // tokio-postgres names a failed handshake only in its message.
        None if e.to_string().starts_with("error performing TLS handshake") => {
            StoreError::Config(format!(
                "the TLS handshake with the database at {place} failed ({}): check that sslrootcert is the authority that signed its certificate, and that the certificate names the host in the store URL",
                std::error::Error::source(e).map_or_else(|| e.to_string(), |s| s.to_string())
            ))
        }
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
    let db = |e: tokio_postgres::Error| StoreError::Database(db_text(&e));
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
