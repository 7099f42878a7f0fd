//! The shared devnet from the command line: `devnet serve`, `mine`,
//! `fund`, `feerate`, `info`, and ElectrumX (the Electrum-protocol server,
//! Python package `e-x`) indexing a served devnet.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{devnet, serve};
use serde_json::Value;

/// A regtest P2WPKH address (hash160 of nothing in particular).
const ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
/// Its output script.
const SCRIPT: &str = "0014751e76e8199196d454941c45d1b3a323f1433bd6";

fn ok(out: std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn err(out: std::process::Output) -> String {
    assert!(!out.status.success());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_served_devnet_mines_funds_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path());
    // A new devnet starts 150 blocks high, every reward to the faucet.
    assert_eq!(served.height, 150);
    let mined = ok(devnet(dir.path(), &["mine", "3", "--address", ADDRESS]));
    assert_eq!(mined["height"], 153);
    let hashes = mined["blocks"].as_array().unwrap();
    assert_eq!(hashes.len(), 3);
    assert!(hashes.iter().all(|h| h.as_str().unwrap().len() == 64));

    let funded = ok(devnet(
        dir.path(),
        &["fund", "0.25btc", "--address", ADDRESS],
    ));
    assert_eq!(funded["amount_sat"], 25_000_000);
    assert_eq!(funded["height"], 154);
    let info = ok(devnet(dir.path(), &["info"]));
    assert_eq!(info["height"], 154);
    assert_eq!(info["mempool"], 0);
    assert_eq!(info["rpc_url"], served.url.as_str());

    // Errors that say what to change.
    let e = err(devnet(
        dir.path(),
        &[
            "mine",
            "1",
            "--address",
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        ],
    ));
    assert!(e.contains("not a regtest address"), "{e}");
    let e = err(devnet(dir.path(), &["mine", "1", "--address", "nonsense"]));
    assert!(e.contains("is not a bitcoin address"), "{e}");
    let e = err(devnet(dir.path(), &["mine", "0"]));
    assert!(e.contains("between 1 and 10000"), "{e}");
    let e = err(devnet(
        dir.path(),
        &["fund", "100000btc", "--address", ADDRESS],
    ));
    assert!(e.contains("the faucet can pay between 1 sat and "), "{e}");
    // Only one process serves a devnet.
    let e = err(Command::new(common::BIN)
        .arg("--devnet-dir")
        .arg(dir.path().join("devnet"))
        .args(["devnet", "serve"])
        .output()
        .unwrap());
    assert!(
        e.contains("is already served by another process, at http://127.0.0.1:"),
        "{e}"
    );
    drop(served);

    // Served again, the chain is still there.
    let again = serve(dir.path());
    assert_eq!(again.height, 154);
}

/// `devnet feerate`: a spike of 40 sat/vB reaches the fee estimate
/// (`estimatesmartfee` answers it); 0 is refused with what to choose.
#[test]
fn a_fee_spike_from_the_command_line() {
    use beongae_chain::rpc::{Auth, Bitcoind};
    use beongae_chain::ChainSource;
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path());
    let v = ok(devnet(dir.path(), &["feerate", "40"]));
    assert_eq!(v["sat_per_kw"], 10_000);
    let rpc = Bitcoind::new(&served.url, Auth::Cookie(dir.path().join("devnet/.cookie")));
    assert_eq!(rpc.fee_estimate(6).unwrap().0, 10_000);
    let e = err(devnet(dir.path(), &["feerate", "0"]));
    assert!(e.contains("between 1 and 100000 sat/vB"), "{e}");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One Electrum-protocol session (JSON-RPC over newline-delimited TCP).
struct Electrum {
    reader: BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
    id: u64,
}

impl Electrum {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let req = serde_json::json!({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params});
        writeln!(self.writer, "{req}").unwrap();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            // Skip notifications (no id).
            if v["id"] == self.id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }
}

fn scripthash(script_hex: &str) -> String {
    use bitcoin::hashes::{sha256, Hash};
    let mut h = sha256::Hash::hash(&hex::decode(script_hex).unwrap()).to_byte_array();
    h.reverse();
    hex::encode(h)
}

/// ElectrumX indexes a served devnet over its JSON-RPC (batch requests,
/// `getnetworkinfo`, `getindexinfo`, raw `getblock`, the mempool calls) and
/// reports its height and a funded address's balance, and follows new
/// blocks.
#[test]
fn electrumx_indexes_a_served_devnet() {
    let bin = common::python_tool("electrumx_server");
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path());
    ok(devnet(
        dir.path(),
        &["fund", "0.5btc", "--address", ADDRESS],
    ));
    let cookie = std::fs::read_to_string(dir.path().join("devnet/.cookie")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = dir.path().join("electrumx");
    std::fs::create_dir(&db).unwrap();
    let log = std::fs::File::create(dir.path().join("electrumx.log")).unwrap();
    let _ex = Killed(
        Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("COIN", "Bitcoin")
            .env("NET", "regtest")
            .env(
                "DAEMON_URL",
                format!(
                    "http://{}@{}/",
                    cookie.trim(),
                    served.url.trim_start_matches("http://")
                ),
            )
            .env("DB_DIRECTORY", &db)
            .env("DB_ENGINE", "leveldb")
            .env("SERVICES", format!("tcp://127.0.0.1:{port}"))
            .env("PEER_DISCOVERY", "off")
            .env("ALLOW_ROOT", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(dir.path().join("electrumx.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!("ElectrumX did not start ({e}):\n{}", log()),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut ex = Electrum {
        reader: BufReader::new(stream.try_clone().unwrap()),
        writer: stream,
        id: 0,
    };
    let version = ex.call("server.version", serde_json::json!(["beongae-test", "1.4"]));
    assert_eq!(version[0], "ElectrumX 2.0.0");
    let tip = ex.call("blockchain.headers.subscribe", serde_json::json!([]));
    assert_eq!(tip["height"], 151, "{}", log());
    let balance = ex.call(
        "blockchain.scripthash.get_balance",
        serde_json::json!([scripthash(SCRIPT)]),
    );
    assert_eq!(balance["confirmed"], 50_000_000);
    assert_eq!(balance["unconfirmed"], 0);
    let relayfee = ex.call("blockchain.relayfee", serde_json::json!([]));
    assert_eq!(relayfee, 0.00001);

    // A new block: ElectrumX follows (it polls the daemon).
    ok(devnet(dir.path(), &["mine", "2"]));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tip = ex.call("blockchain.headers.subscribe", serde_json::json!([]));
        if tip["height"] == 153 {
            break;
        }
        assert!(Instant::now() < deadline, "still at {tip}:\n{}", log());
        std::thread::sleep(Duration::from_millis(200));
    }
}
