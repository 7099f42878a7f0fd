//! Shared by the CLI tests: a served devnet (`beongae devnet serve`) and
//! the `beongae devnet` commands against it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_beongae");

/// A running `devnet serve`, killed when dropped.
pub struct Served {
    child: Child,
    /// Its RPC URL.
    pub url: String,
    /// Its height at start.
    pub height: u32,
}

/// Starts `devnet serve` on a free port with the devnet in `datadir/devnet`.
pub fn serve(datadir: &std::path::Path) -> Served {
    let mut child = Command::new(BIN)
        .args([
            "--devnet-dir",
            datadir.join("devnet").to_str().unwrap(),
            "--devnet-rpc",
            "127.0.0.1:0",
            "devnet",
            "serve",
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

/// `beongae --devnet-dir DATADIR/devnet devnet ARGS...`.
pub fn devnet(datadir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--devnet-dir")
        .arg(datadir.join("devnet"))
        .arg("devnet")
        .args(args)
        .output()
        .unwrap()
}

/// `devnet mine N --address A` on the devnet served from `datadir`.
pub fn mine(datadir: &std::path::Path, n: &str, address: &str) -> std::process::Output {
    devnet(datadir, &["mine", n, "--address", address])
}
