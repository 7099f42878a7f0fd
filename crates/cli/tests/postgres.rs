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
    // On SQLite whichever backend the suite runs on.
    let a = Node::start(root, "a", &["--store", "sqlite"]);
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

/// An invoice of B's the driver pays: its hash and amount.
struct Bill {
    hash: String,
    bolt11: String,
    msat: u64,
}

/// `GET` or `POST` on a daemon's API: the status and the JSON, or the
/// transport's error (the daemon is gone).
async fn api(
    (url, http, token): &(String, reqwest::Client, String),
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value), reqwest::Error> {
    let req = match body {
        Some(b) => http.post(format!("{url}{path}")).json(&b),
        None => http.get(format!("{url}{path}")),
    };
    let resp = req.bearer_auth(token).send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(serde_json::Value::Null)))
}

/// Issue 15's failover test under load. Two daemons of one seed on one
/// database, the leader paying B (on SQLite) with 100 payments in flight
/// through the HTTP API, is killed with SIGKILL. The standby takes over
/// within 10 s. Every payment the leader recorded then ends, succeeded or
/// failed, on the standby; what succeeded is exactly what B was paid, to
/// the msat; both sides' balances agree; and B refused no commitment of
/// A's (`beongae_commitments_refused_total` 0: it never saw two different
/// commitments for one number).
#[test]
fn a_standby_takes_over_a_killed_leader_under_load() {
    const CAPACITY_MSAT: u64 = 2_000_000_000;
    const BILLS: u64 = 600;
    const IN_FLIGHT: usize = 100;
    let url = testing::fresh_database("failover");
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let b = Node::start(root, "b", &[]);
    let a1 = root.join("a1");
    let mut leader = spawn_daemon(root, &a1, &url);
    common::read_banner(&mut leader);
    open_channel(root, &a1, &b, &["2000000"]);
    let a2 = root.join("a2");
    std::fs::create_dir_all(&a2).unwrap();
    std::fs::copy(a1.join("seed"), a2.join("seed")).unwrap();
    let mut standby = spawn_daemon(root, &a2, &url);
    // The standby prints its banner once it is the node.
    let took_over = std::thread::spawn(move || {
        common::read_banner(&mut standby);
        (standby, Instant::now())
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b_api = common::api_client(&b.datadir);
        let mut bills = Vec::new();
        for i in 0..BILLS {
            let msat = 1_000_000 + i;
            let (s, inv) = api(
                &b_api,
                "/v1/invoices",
                Some(serde_json::json!({ "amount_msat": msat })),
            )
            .await
            .unwrap();
            assert_eq!(s, 200, "{inv}");
            bills.push(Bill {
                hash: inv["payment_hash"].as_str().unwrap().to_owned(),
                bolt11: inv["invoice"].as_str().unwrap().to_owned(),
                msat,
            });
        }
        let amounts: std::collections::HashMap<String, u64> =
            bills.iter().map(|b| (b.hash.clone(), b.msat)).collect();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(bills));
        let attempted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let paid = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let leader_api = std::sync::Arc::new(common::api_client(&a1));
        let mut workers = Vec::new();
        for _ in 0..IN_FLIGHT {
            let (queue, attempted, paid, leader_api) = (
                queue.clone(),
                attempted.clone(),
                paid.clone(),
                leader_api.clone(),
            );
            workers.push(tokio::spawn(async move {
                loop {
                    let Some(bill) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    attempted.lock().unwrap().push(bill.hash.clone());
                    let body = serde_json::json!({ "invoice": bill.bolt11, "timeout_secs": 120 });
                    match api(&leader_api, "/v1/payments", Some(body)).await {
                        Ok((200, _)) => {
                            paid.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Ok((status, v)) => panic!("the leader refused a payment: {status} {v}"),
                        // The leader is gone.
                        Err(_) => return,
                    }
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while paid.load(std::sync::atomic::Ordering::SeqCst) < 150 {
            assert!(Instant::now() < deadline, "150 payments never settled");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        signal(&leader, "-KILL");
        let killed = Instant::now();
        let paid_before = paid.load(std::sync::atomic::Ordering::SeqCst);
        let _ = leader.wait();
        let (mut standby, at) = tokio::task::spawn_blocking(move || took_over.join().unwrap())
            .await
            .unwrap();
        let took = at - killed;
        for w in workers {
            w.await.unwrap();
        }
        let attempted = attempted.lock().unwrap().clone();
        println!(
            "the standby took over {:.1} s after the leader was killed, with {} payments in flight ({paid_before} paid before)",
            took.as_secs_f64(),
            attempted.len() - paid_before
        );
        assert!(took < Duration::from_secs(10), "{took:?}");

        // Every payment the leader recorded ends on the standby.
        let standby_api = common::api_client(&a2);
        let (mut succeeded, mut failed, mut unknown) = (
            std::collections::HashMap::new(),
            Vec::new(),
            Vec::new(),
        );
        let deadline = Instant::now() + Duration::from_secs(90);
        for hash in &attempted {
            loop {
                let (s, p) = api(&standby_api, &format!("/v1/payments/{hash}"), None)
                    .await
                    .unwrap();
                match (s, p["status"].as_str()) {
                    (404, _) => unknown.push(hash.clone()),
                    (200, Some("succeeded")) => {
                        assert_eq!(p["amount_msat"], amounts[hash], "{p}");
                        succeeded.insert(hash.clone(), amounts[hash]);
                    }
                    (200, Some("failed")) => failed.push(format!("{hash}: {}", p["failure"])),
                    (200, Some("pending")) => {
                        assert!(Instant::now() < deadline, "still pending: {p}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    other => panic!("{other:?}: {p}"),
                }
                break;
            }
        }
        println!(
            "{} payments attempted: {} succeeded, {} failed, {} never recorded by the leader (their requests died with it)",
            attempted.len(),
            succeeded.len(),
            failed.len(),
            unknown.len()
        );
        println!("failed: {failed:#?}");
        assert!(succeeded.len() >= paid_before);

        // What succeeded is what B was paid, invoice by invoice, to the msat.
        let (s, page) = api(&b_api, "/v1/invoices?status=paid&limit=1000", None)
            .await
            .unwrap();
        assert_eq!(s, 200);
        let received: std::collections::HashMap<String, u64> = page["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["payment_hash"].as_str().unwrap().to_owned(),
                    i["amount_msat"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(received, succeeded);
        let sum: u64 = succeeded.values().sum();

        // Both sides' channels agree, with nothing left in flight.
        let channels = |api_: &(String, reqwest::Client, String)| {
            let api_ = api_.clone();
            async move { api(&api_, "/v1/channels", None).await.unwrap().1 }
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let (ca, cb) = loop {
            let (ca, cb) = (channels(&standby_api).await, channels(&b_api).await);
            let c = |v: &serde_json::Value| v[0].clone();
            if c(&ca)["pending_htlcs"] == 0 && c(&cb)["pending_htlcs"] == 0 {
                break (c(&ca), c(&cb));
            }
            assert!(Instant::now() < deadline, "HTLCs left: {ca} {cb}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(ca["local_msat"], CAPACITY_MSAT - sum, "{ca}");
        assert_eq!(ca["remote_msat"], sum, "{ca}");
        assert_eq!(cb["local_msat"], sum, "{cb}");
        assert_eq!(cb["remote_msat"], CAPACITY_MSAT - sum, "{cb}");
        assert_eq!(cb["state"], "normal", "{cb}");

        // B never saw two different commitments for one number.
        let (url, http, token) = &b_api;
        let metrics = http
            .get(format!("{url}/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("\nbeongae_commitments_refused_total 0\n"),
            "{metrics}"
        );
        let _ = standby.kill();
        let _ = standby.wait();
    });
}
