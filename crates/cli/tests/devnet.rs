//! `beongae devnet serve` and `beongae devnet mine` as separate processes.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_beongae");
/// A regtest P2WPKH address (hash160 of nothing in particular).
const ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

struct Served {
    child: Child,
    url: String,
    height: u32,
}

fn serve(datadir: &std::path::Path) -> Served {
    let mut child = Command::new(BIN)
        .args([
            "--datadir",
            datadir.to_str().unwrap(),
            "devnet",
            "serve",
            "--rpc",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    // "devnet RPC on http://127.0.0.1:PORT (regtest, height N)"
    let url = first.split_whitespace().nth(3).unwrap().to_owned();
    let height = first
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    Served { child, url, height }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mine(datadir: &std::path::Path, url: &str, n: &str, address: &str) -> std::process::Output {
    Command::new(BIN)
        .args([
            "--datadir",
            datadir.to_str().unwrap(),
            "devnet",
            "mine",
            n,
            "--address",
            address,
            "--rpc",
            url,
        ])
        .output()
        .unwrap()
}

#[test]
fn two_processes_share_a_devnet_that_persists() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path());
    assert_eq!(served.height, 0);
    let out = mine(dir.path(), &served.url, "3", ADDRESS);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hashes: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(hashes.len(), 3);
    assert!(hashes.iter().all(|h| h.len() == 64));

    // Errors that say what to change.
    let out = mine(
        dir.path(),
        &served.url,
        "1",
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regtest address"));
    let out = mine(dir.path(), &served.url, "1", "nonsense");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a bitcoin address"));
    let out = mine(dir.path(), &served.url, "0", ADDRESS);
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 1 and 10000"));
    drop(served);

    // Restarted, the chain is still there.
    let again = serve(dir.path());
    assert_eq!(again.height, 3);
}
