//! A daemon whose store is PostgreSQL (`--store postgres://...`, ADR 0011):
//! it opens and pays over a channel, is killed, and finds its channel again
//! in the database; a node of another seed is refused that database.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use beongae_store::{testing, PostgresStore, Store};
use common::{Node, BIN};

fn cli(root: &Path, datadir: &Path, args: &[&str]) -> serde_json::Value {
    common::cli_json(root, datadir, args)
}

/// Whether the first channel of the node at `d` is open and active.
fn normal(root: &Path, d: &Path) -> bool {
    let c = cli(root, d, &["channels"]);
    c[0]["state"] == "normal" && c[0]["active"] == true
}

/// The node at `a` connects to `b` and opens a channel (`args`: the amount
/// and options), which three blocks bury; its id once both have it open.
fn open_channel(root: &Path, a: &Path, b: &Node, args: &[&str]) -> String {
    cli(
        root,
        a,
        &["connect", &format!("{}@{}", b.node_id, b.listen)],
    );
    let open: Vec<&str> = ["openchannel", b.node_id.as_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let id = cli(root, a, &open)["channel_id"]
        .as_str()
        .unwrap()
        .to_owned();
    cli(root, a, &["devnet", "mine", "3"]);
    wait_for("the channel is open", || {
        normal(root, a) && normal(root, &b.datadir)
    });
    id
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_daemon_keeps_its_channels_in_postgres() {
    let url = testing::fresh_database("daemon");
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let b = Node::start(root, "b", &[]);
    let a = Node::start(root, "a", &["--store", &url]);
    let (a_dir, b_dir) = (a.datadir.clone(), b.datadir.clone());
    let id = open_channel(root, &a_dir, &b, &["100000", "--push-sat", "1000"]);
    let inv = cli(root, &b_dir, &["invoice", "5000sat"]);
    cli(root, &a_dir, &["pay", inv["invoice"].as_str().unwrap()]);
    wait_for("the payment settles", || {
        cli(root, &a_dir, &["channels"])[0]["pending_htlcs"] == 0
    });

    // Nothing in the data directory: the channel is in the database.
    assert!(!a_dir.join("beongae.sqlite").exists());
    // Read beside the running daemon (its lease stays with it).
    let db = PostgresStore::connect(&url).unwrap();
    let channels = db.list("channels", b"").unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(hex(&channels[0].0), id);
    drop(db);

    // Killed (SIGKILL) and started again: the channel is back, to the msat.
    drop(a);
    let a = Node::start(root, "a", &["--store", &url]);
    wait_for("the channel is back", || normal(root, &a.datadir));
    let c = cli(root, &a.datadir, &["channels"]);
    assert_eq!(c[0]["channel_id"], id.as_str());
    assert_eq!(c[0]["local_msat"], 94_000_000u64);
    assert_eq!(c[0]["remote_msat"], 6_000_000u64);

    // Another seed's node is refused the database, and writes nothing.
    let before = PostgresStore::connect(&url)
        .unwrap()
        .list("meta", b"")
        .unwrap();
    let out = common::devnet_env(&mut Command::new(BIN), root)
        .arg("--datadir")
        .arg(root.join("c"))
        .args(["daemon", "--listen", "127.0.0.1:0", "--store", &url])
        .env("BEONGAE_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the store holds the channels of node {}, not of this seed's node",
            a.node_id
        )),
        "{err}"
    );
    assert_eq!(
        PostgresStore::connect(&url)
            .unwrap()
            .list("meta", b"")
            .unwrap(),
        before
    );
}

#[test]
fn a_bad_store_setting_says_what_to_write() {
    let root = tempfile::tempdir().unwrap();
    let out = common::devnet_env(&mut Command::new(BIN), root.path())
        .arg("--datadir")
        .arg(root.path().join("x"))
        .args(["daemon", "--listen", "127.0.0.1:0", "--store", "mysql://x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("store `mysql://x`: use sqlite, or a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE)"),
        "{err}"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A daemon, without reading its banner (a standby prints it once it is
/// the node).
fn spawn_daemon(root: &Path, datadir: &Path, url: &str) -> std::process::Child {
    common::devnet_env(&mut Command::new(BIN), root)
        .arg("--datadir")
        .arg(datadir)
        .args([
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--block-interval",
            "0",
            "--store",
            url,
        ])
        .env("BEONGAE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &std::process::Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

/// Issue 15's fencing test: two daemons of one seed on one database. The
/// leader is frozen (SIGSTOP); the standby takes the lease, restores, and
/// pays over the channel; the leader, woken (SIGCONT), writes nothing and
/// exits saying another instance took over. The peer's channel agrees
/// with the new leader's to the msat.
#[test]
fn a_standby_takes_over_a_frozen_leader_which_wakes_fenced() {
    let url = testing::fresh_database("standby");
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let b = Node::start(root, "b", &[]);
    let a1 = root.join("a1");
    let mut leader = spawn_daemon(root, &a1, &url);
    let leader_id = common::banner_field(&common::read_banner(&mut leader), "node id: ");
    open_channel(root, &a1, &b, &["100000"]);
    let inv = cli(root, &b.datadir, &["invoice", "1000sat"]);
    cli(root, &a1, &["pay", inv["invoice"].as_str().unwrap()]);

    // The standby: the same seed in another data directory.
    let a2 = root.join("a2");
    std::fs::create_dir_all(&a2).unwrap();
    std::fs::copy(a1.join("seed"), a2.join("seed")).unwrap();
    let mut standby = spawn_daemon(root, &a2, &url);
    std::thread::sleep(Duration::from_secs(2));
    assert!(standby.try_wait().unwrap().is_none(), "the standby waits");

    // Freeze the leader: within the lease's time to live the standby is
    // the node.
    signal(&leader, "-STOP");
    let frozen = Instant::now();
    let lines = common::read_banner(&mut standby);
    let took = frozen.elapsed();
    println!(
        "the standby took over {:.1} s after the leader froze",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(common::banner_field(&lines, "node id: "), leader_id);
    // It reconnects to the peer, and pays over the channel.
    wait_for("the standby's channel is active", || normal(root, &a2));
    let inv = cli(root, &b.datadir, &["invoice", "2000sat"]);
    cli(root, &a2, &["pay", inv["invoice"].as_str().unwrap()]);
    let snapshot = || {
        PostgresStore::connect(&url)
            .unwrap()
            .list("channels", b"")
            .unwrap()
    };
    wait_for("the payment settles", || {
        cli(root, &a2, &["channels"])[0]["pending_htlcs"] == 0
            && cli(root, &b.datadir, &["channels"])[0]["pending_htlcs"] == 0
    });
    let before = snapshot();

    // Wake the leader: it exits, saying why, having written nothing.
    signal(&leader, "-CONT");
    let woke = Instant::now();
    let status = loop {
        if let Some(s) = leader.try_wait().unwrap() {
            break s;
        }
        assert!(
            woke.elapsed() < Duration::from_secs(15),
            "the old leader still runs"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut leader.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("error: another instance of this node took over the database (its lease is no longer ours): this one stops, sending and writing nothing more"),
        "{err}"
    );
    assert_eq!(snapshot(), before);
    // Both sides of the channel agree: 100,000 sat, 3,000 sat paid.
    let (a, bb) = (
        cli(root, &a2, &["channels"]),
        cli(root, &b.datadir, &["channels"]),
    );
    assert_eq!(a[0]["local_msat"], 97_000_000u64);
    assert_eq!(a[0]["remote_msat"], 3_000_000u64);
    assert_eq!(bb[0]["local_msat"], 3_000_000u64);
    assert_eq!(bb[0]["remote_msat"], 97_000_000u64);
    let _ = standby.kill();
    let _ = standby.wait();
}

/// `beongae store migrate`: a node on SQLite, stopped, copied into an empty
/// PostgreSQL database and started on it, has its channel back to the msat.
/// A running node's store, and a target that is not empty, are refused.
#[test]
fn a_node_migrates_from_sqlite_to_postgres() {
    let url = testing::fresh_database("migrate");
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let b = Node::start(root, "b", &[]);
    let a = Node::start(root, "a", &[]);
    let a_dir = a.datadir.clone();
    open_channel(root, &a_dir, &b, &["200000"]);
    let inv = cli(root, &b.datadir, &["invoice", "7000sat"]);
    cli(root, &a_dir, &["pay", inv["invoice"].as_str().unwrap()]);
    wait_for("the payment settles", || {
        cli(root, &a_dir, &["channels"])[0]["pending_htlcs"] == 0
    });
    let sqlite = format!("sqlite:{}", a_dir.join("beongae.sqlite").display());
    let migrate = |from: &str, to: &str| {
        Command::new(BIN)
            .args(["--json", "store", "migrate", "--from", from, "--to", to])
            .output()
            .unwrap()
    };
    // Not while the node runs.
    let out = migrate(&sqlite, &url);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("in use by another process; stop the other beongae first"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(a);
    let out = migrate(&sqlite, &url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(copied["verified"], true);
    assert!(copied["keys"].as_u64().unwrap() >= 5, "{copied}");
    // The same keys, key for key.
    let source = beongae_store::SqliteStore::open(&a_dir.join("beongae.sqlite")).unwrap();
    let target = PostgresStore::connect(&url).unwrap();
    assert_eq!(source.namespaces().unwrap(), target.namespaces().unwrap());
    for ns in source.namespaces().unwrap() {
        assert_eq!(
            source.list(&ns, b"").unwrap(),
            target.list(&ns, b"").unwrap(),
            "{ns}"
        );
    }
    drop((source, target));
    // Again: the target holds data now.
    let out = migrate(&sqlite, &url);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the target already holds data"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Started on the database: the channel, to the msat.
    std::fs::rename(a_dir.join("beongae.sqlite"), a_dir.join("old.sqlite")).unwrap();
    let a = Node::start(root, "a", &["--store", &url]);
    wait_for("the channel is back", || normal(root, &a.datadir));
    let c = cli(root, &a.datadir, &["channels"]);
    assert_eq!(c[0]["local_msat"], 193_000_000u64);
    assert_eq!(c[0]["remote_msat"], 7_000_000u64);
}

/// The database server restarted while payments flow: the node waits
/// (its commits retry on a new connection), then goes on; every payment
/// settles and both sides agree to the msat. The server is this test's own.
#[test]
fn the_database_restarted_mid_stream_loses_nothing() {
    let server = testing::PrivateServer::start("restart", 25433);
    let url = server.fresh_database("restarted");
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let b = Node::start(root, "b", &[]);
    let mut a = Node::start(root, "a", &["--store", &url]);
    let a_dir = a.datadir.clone();
    open_channel(root, &a_dir, &b, &["500000"]);
    let invoices: Vec<String> = (0..12)
        .map(|_| {
            cli(root, &b.datadir, &["invoice", "1000sat"])["invoice"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let outcomes = std::thread::scope(|s| {
        let payer = s.spawn(|| {
            invoices
                .iter()
                .map(|inv| {
                    common::devnet_env(&mut Command::new(BIN), root)
                        .arg("--datadir")
                        .arg(&a_dir)
                        .args(["--json", "pay", inv])
                        .output()
                        .unwrap()
                        .status
                        .success()
                })
                .collect::<Vec<bool>>()
        });
        std::thread::sleep(Duration::from_millis(300));
        let stopped = Instant::now();
        server.restart();
        println!(
            "the database was away {:.2} s",
            stopped.elapsed().as_secs_f64()
        );
        payer.join().unwrap()
    });
    assert_eq!(outcomes, vec![true; 12]);
    assert!(a.child.try_wait().unwrap().is_none(), "the node goes on");
    wait_for("the payments settle", || {
        cli(root, &a_dir, &["channels"])[0]["pending_htlcs"] == 0
            && cli(root, &b.datadir, &["channels"])[0]["pending_htlcs"] == 0
    });
    let (ca, cb) = (
        cli(root, &a_dir, &["channels"]),
        cli(root, &b.datadir, &["channels"]),
    );
    assert_eq!(ca[0]["local_msat"], 488_000_000u64);
    assert_eq!(cb[0]["local_msat"], 12_000_000u64);
    // And what the database holds is what the node says.
    drop(a);
    let a = Node::start(root, "a", &["--store", &url]);
    wait_for("the channel is back", || normal(root, &a.datadir));
    assert_eq!(
        cli(root, &a.datadir, &["channels"])[0]["local_msat"],
        488_000_000u64
    );
}
