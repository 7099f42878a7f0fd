//! The `beongae` binary end to end: two daemons, `connect`, `peers`, `ping`,
//! and the errors a user sees for a bad address, a wrong pubkey and a refused
//! connection.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_beongae");

/// `beongae daemon` on a free port with its banner on a pipe.
fn spawn_daemon(datadir: &Path) -> Child {
    Command::new(BIN)
        .args([
            "--datadir",
            datadir.to_str().unwrap(),
            "daemon",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("BEONGAE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon starts")
}

struct Daemon {
    child: Child,
    node_id: String,
    listen: String,
    datadir: PathBuf,
}

impl Daemon {
    fn start(datadir: &Path) -> Daemon {
        let mut child = spawn_daemon(datadir);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let node_id = lines
            .next()
            .unwrap()
            .unwrap()
            .strip_prefix("node id: ")
            .unwrap()
            .to_owned();
        let listen = lines
            .next()
            .unwrap()
            .unwrap()
            .strip_prefix("listening on: ")
            .unwrap()
            .to_owned();
        Daemon {
            child,
            node_id,
            listen,
            datadir: datadir.to_owned(),
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--datadir")
            .arg(&self.datadir)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn err(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn two_daemons_connect_and_list_peers() {
    let dir = tempfile::tempdir().unwrap();
    let a = Daemon::start(&dir.path().join("a"));
    let b = Daemon::start(&dir.path().join("b"));

    // Key file is private.
    let mode = std::fs::metadata(dir.path().join("a/node_key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let peer = a.ok(&["connect", &format!("{}@{}", b.node_id, b.listen)]);
    assert_eq!(peer["node_id"], b.node_id.as_str());
    assert_eq!(peer["direction"], "outbound");
    assert_eq!(peer["features"], "20000000a282");

    let peers = b.ok(&["peers"]);
    assert_eq!(peers.as_array().unwrap().len(), 1);
    assert_eq!(peers[0]["node_id"], a.node_id.as_str());
    assert_eq!(peers[0]["direction"], "inbound");

    let pong = a.ok(&["ping", &b.node_id, "--bytes", "1234"]);
    assert_eq!(pong["pong_bytes"], 1234);

    let info = a.ok(&["info"]);
    assert_eq!(info["node_id"], a.node_id.as_str());

    // Errors a user can act on.
    let e = a.err(&["connect", "not-an-address"]);
    assert!(e.contains("expected NODE_ID@HOST:PORT"), "{e}");
    let e = a.err(&["connect", &format!("{}@127.0.0.1", b.node_id)]);
    assert!(e.contains("expected HOST:PORT"), "{e}");
    let e = a.err(&["connect", &format!("02ab@{}", b.listen)]);
    assert!(e.contains("bad node id `02ab`"), "{e}");
    let wrong = "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619";
    let e = a.err(&["connect", &format!("{wrong}@{}", b.listen)]);
    assert!(
        e.contains(&format!("is {wrong} the node listening there?")),
        "{e}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = a.err(&["connect", &format!("{wrong}@{closed}")]);
    assert!(
        e.contains(&format!("cannot connect to {closed}")) && e.contains("refused"),
        "{e}"
    );

    let disc = a.ok(&["disconnect", &b.node_id]);
    assert_eq!(disc["was_connected"], true);
}

#[test]
fn identity_survives_restart_and_one_daemon_per_datadir() {
    let dir = tempfile::tempdir().unwrap();
    let first = Daemon::start(&dir.path().join("n")).node_id.clone();
    let again = Daemon::start(&dir.path().join("n"));
    assert_eq!(again.node_id, first);

    let out = Command::new(BIN)
        .args([
            "--datadir",
            dir.path().join("n").to_str().unwrap(),
            "daemon",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another beongae daemon is already running")
    );

    let out = Command::new(BIN)
        .args([
            "--datadir",
            dir.path().join("none").to_str().unwrap(),
            "peers",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach a running daemon"));
}

#[test]
fn daemon_survives_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("q");
    let mut child = spawn_daemon(&datadir);
    drop(child.stdout.take()); // nobody reads the banner
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let info = loop {
        let out = Command::new(BIN)
            .arg("--datadir")
            .arg(&datadir)
            .arg("info")
            .output()
            .unwrap();
        if out.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "daemon never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(info["node_id"].as_str().unwrap().len(), 66);
    assert_eq!(child.try_wait().unwrap(), None, "daemon exited");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}
