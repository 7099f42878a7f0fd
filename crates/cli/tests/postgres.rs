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
    let out = common::devnet_env(&mut Command::new(BIN), root)
        .arg("--datadir")
        .arg(datadir)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
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
    cli(
        root,
        &a_dir,
        &["connect", &format!("{}@{}", b.node_id, b.listen)],
    );
    let opened = cli(
        root,
        &a_dir,
        &["openchannel", &b.node_id, "100000", "--push-sat", "1000"],
    );
    let id = opened["channel_id"].as_str().unwrap().to_owned();
    cli(root, &a_dir, &["devnet", "mine", "3"]);
    let normal = |d: &Path| {
        let c = cli(root, d, &["channels"]);
        c[0]["state"] == "normal" && c[0]["active"] == true
    };
    wait_for("the channel is open", || normal(&a_dir) && normal(&b_dir));
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
    wait_for("the channel is back", || normal(&a.datadir));
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
