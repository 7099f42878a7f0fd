//! A PostgreSQL server for tests (ADR 0011), and a fresh database on it for
//! each test.
//!
//! `BEONGAE_TEST_POSTGRES` (a URL to an account that may create databases)
//! names a server to use. Without it, the tests run their own: Debian's
//! PostgreSQL binaries make a cluster in `/tmp/beongae-test-postgres`
//! (`BEONGAE_TEST_POSTGRES_DIR`) (as the
//! `postgres` user when the tests run as root, since PostgreSQL refuses
//! root), listening on 127.0.0.1:[`PORT`] with password authentication, and
//! `pg_ctl` starts it unless it already runs. It is left running for the next
//! test binary and the next run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The port of the tests' own server: below Linux's ephemeral range
/// (32768-60999), where the tests' daemons, which listen on port 0 (and
/// their APIs on that port plus 100), never land.
pub const PORT: u16 = 25432;

/// The superuser's password of the tests' own server (loopback only).
const PASSWORD: &str = "beongae-tests";

/// A URL with rights to create databases on the tests' server (started if
/// need be). Panics, saying what to install, when there is no server.
pub fn admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("BEONGAE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            start_own_server();
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:{PORT}/postgres")
        }
    })
    .clone()
}

/// The certificate of the authority that signed the tests' server's
/// certificate (for `sslrootcert=`); the server takes TLS connections.
pub fn ca_cert() -> PathBuf {
    admin_url();
    dir().join("ca.crt")
}

fn dir() -> PathBuf {
    // Outside the checkout, so that the server's user can reach it and
    // every checkout on the machine shares one server on one port.
    PathBuf::from(
        std::env::var("BEONGAE_TEST_POSTGRES_DIR")
            .unwrap_or_else(|_| "/tmp/beongae-test-postgres".into()),
    )
}

/// A certificate authority and a certificate for 127.0.0.1 signed by it,
/// made with `openssl` in `dir` (the key readable by the server only).
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=beongae test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("server.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "3650",
        "-extfile",
        "server.ext",
    ]);
    if is_root() {
        let _ = Command::new("chown")
            .arg("postgres:postgres")
            .args([dir.join("server.key"), dir.join("server.crt")])
            .status();
    }
    let _ = Command::new("chmod")
        .arg("600")
        .arg(dir.join("server.key"))
        .status();
}

/// A new, empty database for one test: its URL. `name` is made unique with
/// the process id and a counter.
pub fn fresh_database(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let db = format!(
        "t_{}_{}_{}",
        name.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(30)
            .collect::<String>()
            .to_lowercase(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let admin = admin_url();
    psql(&admin, &format!("DROP DATABASE IF EXISTS {db}"));
    psql(&admin, &format!("CREATE DATABASE {db}"));
    with_database(&admin, &db)
}

/// The store the tests give the node whose data directory is `datadir`:
/// `None` (SQLite in that directory), or, when
/// `BEONGAE_TEST_STORE=postgres`, a database on the tests' server, made
/// fresh the first time and the same one when the node starts again (its
/// URL is kept in `datadir/test-store`). `.ci/run` runs the whole suite
/// both ways; a test about one backend names it itself.
pub fn node_store(datadir: &Path) -> Option<String> {
    match std::env::var("BEONGAE_TEST_STORE").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => None,
        Ok("postgres") => {
            let file = datadir.join("test-store");
            if let Ok(url) = std::fs::read_to_string(&file) {
                return Some(url);
            }
            let name = datadir
                .file_name()
                .map_or("node".into(), |n| n.to_string_lossy().into_owned());
            let url = fresh_database(&name);
            std::fs::create_dir_all(datadir).expect("the node's data directory");
            std::fs::write(&file, &url).expect("writes the test store's URL");
            Some(url)
        }
        Ok(other) => panic!("BEONGAE_TEST_STORE={other}: use sqlite or postgres"),
    }
}

/// [`node_store`] as `daemon` arguments: `--store URL`, or none.
pub fn node_store_args(datadir: &Path) -> Vec<String> {
    node_store(datadir).map_or_else(Vec::new, |url| vec!["--store".to_owned(), url])
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{db}")
}

/// Runs one SQL statement with `psql` against `url`; panics on failure.
pub fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .expect("psql runs (apt-get install -y postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.sort();
    match versions.pop() {
        Some(v) if v.join("bin/initdb").exists() => v.join("bin"),
        _ => panic!(
            "the tests need PostgreSQL's server: apt-get install -y postgresql \
             (or set BEONGAE_TEST_POSTGRES=postgres://USER:PASSWORD@HOST:PORT/DB)"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs `program args` as the server's owner.
fn as_owner(program: &Path, args: &[&str]) -> std::process::Output {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    c.args(args).output().expect("runs")
}

fn start_own_server() {
    start_server(&dir(), PORT);
}

/// A server of one test's own, which it may stop and start (the shared one
/// must stay up for the others): in `dir()/private-NAME`, on `port`
/// (below 32768), stopped when dropped.
pub struct PrivateServer {
    dir: PathBuf,
    port: u16,
}

impl PrivateServer {
    /// Made (first time) and started.
    pub fn start(name: &str, port: u16) -> PrivateServer {
        let base = dir();
        std::fs::create_dir_all(&base).expect("the servers' directory");
        if is_root() {
            let _ = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&base)
                .status();
        }
        let dir = base.join(format!("private-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        start_server(&dir, port);
        PrivateServer { dir, port }
    }

    /// A URL of a new database on it.
    pub fn fresh_database(&self, name: &str) -> String {
        let admin = format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        );
        psql(&admin, &format!("CREATE DATABASE {name}"));
        with_database(&admin, name)
    }

    /// Stops it (fast: open connections are ended), then starts it again.
    pub fn restart(&self) {
        let data = self.dir.join("data");
        let out = as_owner(
            &bin_dir().join("pg_ctl"),
            &[
                "-D",
                data.to_str().expect("UTF-8"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        start_server(&self.dir, self.port);
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_owner(
            &bin_dir().join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes (first time) and starts the server in `dir` on `port`, unless it
/// runs.
fn start_server(dir: &Path, port: u16) {
    let bin = bin_dir();
    let dir = dir.to_owned();
    let data = dir.join("data");
    let data_s = data.to_str().expect("a UTF-8 path");
    // One test binary at a time sets the cluster up.
    std::fs::create_dir_all(&dir).expect("target/tmp/postgres");
    let lock = std::fs::File::create(dir.join("setup.lock")).expect("lock file");
    lock.lock().expect("lock");
    if is_root() {
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status();
    }
    if !dir.join("server.crt").exists() {
        make_certificates(&dir);
    }
    if !data.join("PG_VERSION").exists() {
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, PASSWORD).expect("pwfile");
        if is_root() {
            let _ = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&pwfile)
                .status();
        }
        let out = as_owner(
            &bin.join("initdb"),
            &[
                "-D",
                data_s,
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--pwfile",
                pwfile.to_str().expect("UTF-8"),
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let running = as_owner(&bin.join("pg_ctl"), &["-D", data_s, "status"]);
    if !running.status.success() {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {dir} -c max_connections=200 -c fsync=on \
             -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key",
            dir = dir.display()
        );
        let log = dir.join("server.log");
        let out = as_owner(
            &bin.join("pg_ctl"),
            &[
                "-D",
                data_s,
                "-o",
                &options,
                "-l",
                log.to_str().expect("UTF-8"),
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {} (see {})",
            String::from_utf8_lossy(&out.stderr),
            log.display()
        );
    }
}
