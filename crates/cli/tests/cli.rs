//! The `beongae` binary end to end: two daemons, `connect`, `peers`, `ping`,
//! and the errors a user sees for a bad address, a wrong pubkey and a refused
//! connection.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_beongae");

mod common;

/// The devnet the daemons of one test share: beside their data
/// directories.
fn devnet_env<'a>(cmd: &'a mut Command, datadir: &Path) -> &'a mut Command {
    common::devnet_env(cmd, datadir.parent().unwrap())
}

/// `beongae daemon` on a free port with its banner on a pipe.
fn spawn_daemon(datadir: &Path) -> Child {
    devnet_env(&mut Command::new(BIN), datadir)
        .args([
            "--datadir",
            datadir.to_str().unwrap(),
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--block-interval",
            "0",
        ])
        .args(common::store_args(datadir, &[]))
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
        devnet_env(&mut Command::new(BIN), &self.datadir)
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

    /// The error a script sees (piped output is JSON): its code and message.
    fn err_json(&self, args: &[&str]) -> (String, String) {
        let out = self.cli(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["error"]["code"].as_str().unwrap().to_owned(),
            v["error"]["message"].as_str().unwrap().to_owned(),
        )
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
    let mode = std::fs::metadata(dir.path().join("a/seed"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let peer = a.ok(&["connect", &format!("{}@{}", b.node_id, b.listen)]);
    assert_eq!(peer["node_id"], b.node_id.as_str());
    assert_eq!(peer["direction"], "outbound");
    assert_eq!(peer["features"], "2000a0000880a282");

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

    let out = devnet_env(&mut Command::new(BIN), &dir.path().join("n"))
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

const OTHER: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

/// Until the daemon's wallet has seen block `height` (its chain is polled).
fn wait_for_height(d: &Daemon, height: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while d.ok(&["balance"])["height"].as_u64().unwrap() < height {
        assert!(
            std::time::Instant::now() < deadline,
            "never saw block {height}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn wallet_on_the_shared_devnet() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&dir.path().join("w"));
    // First start on a new devnet (150 blocks to the faucet): the wallet
    // is paid 10 BTC from the faucet in block 151.
    let bal = d.ok(&["balance"]);
    assert_eq!(bal["height"], 151);
    assert_eq!(bal["confirmed_sat"], 1_000_000_000u64);
    assert!(d.ok(&["newaddress"])["address"]
        .as_str()
        .unwrap()
        .starts_with("bcrt1q"));
    assert!(d.ok(&["newaddress", "--type", "p2tr"])["address"]
        .as_str()
        .unwrap()
        .starts_with("bcrt1p"));
    let e = d.err(&["newaddress", "--type", "p2sh"]);
    assert!(e.contains("use p2wpkh or p2tr"), "{e}");

    let sent = d.ok(&["send", OTHER, "0.5btc", "--feerate", "10"]);
    assert_eq!(sent["txid"].as_str().unwrap().len(), 64);
    assert_eq!(sent["amount_sat"], 50_000_000);
    let bal = d.ok(&["balance"]);
    assert_eq!(bal["confirmed_sat"], 0, "the one coin is being spent");
    let change = bal["unconfirmed_sat"].as_u64().unwrap();
    assert!(
        change < 950_000_000 && change > 949_990_000,
        "change {change}"
    );
    assert_eq!(
        sent["fee_sat"].as_u64().unwrap(),
        1_000_000_000 - 50_000_000 - change
    );

    let mined = d.ok(&["devnet", "mine", "1"]);
    assert_eq!(mined["blocks"].as_array().unwrap().len(), 1);
    assert_eq!(mined["height"], 152);
    wait_for_height(&d, 152);
    let bal = d.ok(&["balance"]);
    assert_eq!(bal["unconfirmed_sat"], 0);
    assert_eq!(bal["confirmed_sat"].as_u64().unwrap(), change);

    // More from the faucet, to the daemon's wallet, in one command.
    let funded = d.ok(&["devnet", "fund", "1.5btc"]);
    assert_eq!(funded["height"], 153);
    wait_for_height(&d, 153);
    let bal = d.ok(&["balance"]);
    assert_eq!(bal["confirmed_sat"].as_u64().unwrap(), change + 150_000_000);

    let e = d.err(&["send", OTHER, "100000btc"]);
    assert!(e.contains("insufficient funds"), "{e}");
    let e = d.err(&["send", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "1000"]);
    assert!(e.contains("another network"), "{e}");
    let e = d.err(&["send", "notanaddress", "1000"]);
    assert!(e.contains("is not a bitcoin address"), "{e}");
    let e = d.err(&["send", OTHER, "12x"]);
    assert!(e.contains("write satoshis"), "{e}");
    // Scripts get a code: the API's, or the command line's own.
    let (code, message) = d.err_json(&["send", OTHER, "12x"]);
    assert_eq!(code, "bad_request");
    assert!(message.contains("write satoshis"), "{message}");
    let (code, message) = d.err_json(&["send", OTHER, "100000btc"]);
    assert_eq!(code, "wallet");
    assert!(message.contains("insufficient funds"), "{message}");
    assert_eq!(
        d.err_json(&["closechannel", "ab"]),
        (
            "unknown_channel".to_owned(),
            "no channel ab: `beongae channels` lists them".to_owned()
        )
    );

    // Everything (no channel, so no reserve): the wallet is empty after.
    let all = d.ok(&["send", OTHER, "all", "--feerate", "3"]);
    assert_eq!(
        all["amount_sat"].as_u64().unwrap() + all["fee_sat"].as_u64().unwrap(),
        change + 150_000_000
    );
    let bal = d.ok(&["balance"]);
    assert_eq!(
        (
            bal["confirmed_sat"].as_u64(),
            bal["unconfirmed_sat"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let e = d.err(&["send", OTHER, "all"]);
    assert!(e.contains("nothing to send"), "{e}");
}

#[test]
fn init_shows_the_words_and_restore_gives_the_same_node() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let out = Command::new(BIN)
        .arg("--datadir")
        .arg(&a)
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let words = text
        .lines()
        .find(|l| l.split_whitespace().count() == 24)
        .expect("24 words shown")
        .to_owned();
    let node_id = text
        .lines()
        .find_map(|l| l.strip_prefix("node id on test networks: "))
        .unwrap()
        .to_owned();
    let again = Command::new(BIN)
        .arg("--datadir")
        .arg(&a)
        .arg("init")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has a seed"));

    let restore = |dir: &Path, input: &str| {
        let mut child = Command::new(BIN)
            .arg("--datadir")
            .arg(dir)
            .args(["init", "--restore"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{input}").unwrap();
        child.wait_with_output().unwrap()
    };
    let bad = restore(&dir.path().join("bad"), "abandon abandon abandon");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid BIP39 mnemonic"));
    let b = dir.path().join("b");
    let out = restore(&b, &words);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&node_id));
    // The daemon on the restored directory is the same node.
    let d = Daemon::start(&b);
    assert_eq!(d.node_id, node_id);
}

/// `beongae decode` works offline: the BOLT 11 "$3 for a cup of coffee"
/// example as JSON, and a clear error for a corrupted checksum.
#[test]
fn decode_shows_an_invoice_and_rejects_a_bad_one() {
    const COFFEE: &str = "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu9qrsgquk0rl77nj30yxdy8j9vdx85fkpmdla2087ne0xh8nhedh8w27kyke0lp53ut353s06fv3qfegext0eh0ymjpf39tuven09sam30g4vgpfna3rh";
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["--datadir", dir.path().to_str().unwrap(), "decode", COFFEE])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["currency"], "lnbc");
    assert_eq!(v["amount_msat"], 250_000_000);
    assert_eq!(v["description"], "1 cup coffee");
    assert_eq!(v["expiry"], 60);
    assert_eq!(v["timestamp"], 1_496_314_658);
    assert_eq!(
        v["payee"],
        "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad"
    );
    assert_eq!(
        v["payment_hash"],
        "0001020304050607080900010203040506070809000102030405060708090102"
    );
    assert_eq!(
        v["payment_secret"],
        "1111111111111111111111111111111111111111111111111111111111111111"
    );

    let mut bad = COFFEE.to_string();
    bad.pop();
    bad.push('x');
    let out = Command::new(BIN)
        .args(["--datadir", dir.path().to_str().unwrap(), "decode", &bad])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: not a valid BOLT 11 invoice: invoice bech32 checksum is incorrect"
    );
}

/// Issue 14: a `BEONGAE_LOG` that is not a log filter stops the daemon
/// before it starts, with a message that says what to write instead.
#[test]
fn a_bad_log_level_is_refused_with_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["xyz", "info,beongae_node=loud", "degub"] {
        let out = Command::new(BIN)
            .args(["--datadir", dir.path().to_str().unwrap(), "daemon"])
            .args(["--listen", "127.0.0.1:0", "--block-interval", "0"])
            .env("BEONGAE_LOG", bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: {err}");
        assert!(
            err.contains("BEONGAE_LOG")
                && err.contains("is not a log level")
                && err.contains("target=level"),
            "{bad}: {err}"
        );
    }
}

/// Issue 14: a daemon on a network without a chain to watch (here regtest
/// with no Bitcoin Core) does not start: it says what to add.
#[test]
fn a_daemon_without_a_chain_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    for network in ["regtest", "bitcoin"] {
        let out = Command::new(BIN)
            .args(["--datadir", dir.path().to_str().unwrap(), "daemon"])
            .args(["--listen", "127.0.0.1:0", "--network", network])
            .env("BEONGAE_LOG", "warn")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{network}: {err}");
        assert!(
            err.contains(&format!("--network {network} needs a chain"))
                && err.contains("--bitcoind-rpc URL")
                && err.contains("--network devnet"),
            "{network}: {err}"
        );
        // Refused before anything was written: no seed was made.
        assert!(!dir.path().join("seed").exists(), "{network}");
    }
}

/// The settings file: it sets what no flag or environment variable does;
/// an environment variable wins over it; a bad key stops the daemon with
/// the key named. The daemon logs to a file in the data directory.
#[test]
fn the_config_file_with_its_precedence_and_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("c");
    std::fs::create_dir_all(&datadir).unwrap();
    std::fs::write(
        datadir.join("beongae.toml"),
        "block_interval = 0\nlisten = \"127.0.0.1:0\"\n[api]\nhttp = true\nlisten = \"127.0.0.1:0\"\n[log]\nfile = \"node.log\"\n",
    )
    .unwrap();
    let start = |env: &[(&str, &str)]| {
        let mut c = devnet_env(&mut Command::new(BIN), &datadir)
            .args(["--datadir", datadir.to_str().unwrap(), "daemon"])
            .env("BEONGAE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = common::read_banner(&mut c);
        (c, lines)
    };
    // From the file: plain HTTP for the API, any free peer port.
    let (mut child, lines) = start(&[]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("listening on: 127.0.0.1:")),
        "{lines:?}"
    );
    let url = std::fs::read_to_string(datadir.join("api/url")).unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let log = std::fs::read_to_string(datadir.join("node.log")).unwrap();
    assert!(log.contains("node started"), "{log}");
    // The environment wins over the file.
    let (mut child, _) = start(&[("BEONGAE_API_HTTP", "false")]);
    let url = std::fs::read_to_string(datadir.join("api/url")).unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();

    // Errors name the key and the file.
    for (text, words) in [
        ("listn = \"127.0.0.1:1\"\n", "unknown field `listn`"),
        (
            "color = \"red\"\n",
            "key `color`: `red` is not 6 hex digits",
        ),
        ("[api]\nlisten = \"everywhere\"\n", "invalid socket address"),
    ] {
        std::fs::write(datadir.join("beongae.toml"), text).unwrap();
        let out = devnet_env(&mut Command::new(BIN), &datadir)
            .args(["--datadir", datadir.to_str().unwrap(), "daemon"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("config file") && err.contains("beongae.toml") && err.contains(words),
            "{err}"
        );
    }
    // --config names a file that must exist.
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/beongae.toml", "info"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent/beongae.toml"));
}
