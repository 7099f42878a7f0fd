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

/// The Python tools the tests run (ElectrumX, an OpenAPI validator), in a
/// virtual environment in the target directory: made with pip from PyPI
/// when it is missing (`.ci/run` makes it first, with the same command).
pub fn python_tool(bin: &str) -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-venv");
    let path = venv.join("bin").join(bin);
    if !path.exists() {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs (ElectrumX needs Python 3.10 or later)");
        assert!(status.success(), "python3 -m venv {}", venv.display());
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .args(PYTHON_PACKAGES)
            .status()
            .unwrap();
        assert!(status.success(), "pip install {PYTHON_PACKAGES:?}");
    }
    path
}

/// What [`python_tool`] installs (and `.ci/run`).
pub const PYTHON_PACKAGES: [&str; 2] = ["e-x[leveldb]==2.0.0", "openapi-spec-validator==0.9.0"];

/// The devnet the daemons of one test share: `root/devnet`, served on any
/// free port.
pub fn devnet_env<'a>(cmd: &'a mut Command, root: &std::path::Path) -> &'a mut Command {
    cmd.env("BEONGAE_DEVNET_DIR", root.join("devnet"))
        .env("BEONGAE_DEVNET_RPC", "127.0.0.1:0")
}

/// A daemon's banner, up to its `API:` line (printed once the API
/// serves).
pub fn read_banner(child: &mut Child) -> Vec<String> {
    BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .take_while(|l| !l.starts_with("API: "))
        .collect()
}

/// The text after `prefix` on a banner line.
pub fn banner_field(lines: &[String], prefix: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in {lines:?}"))
        .to_owned()
}

/// A `beongae daemon` on the devnet of `root` (no interval blocks, any free
/// peer port), killed when dropped.
pub struct Node {
    /// The process.
    pub child: Child,
    /// Its node id.
    pub node_id: String,
    /// Where it takes peers.
    pub listen: String,
    /// Its data directory, `root/name`.
    pub datadir: std::path::PathBuf,
    /// The directory of the test's daemons and devnet.
    pub root: std::path::PathBuf,
}

impl Node {
    /// Starts `root/name` with more `daemon` arguments; returns once its
    /// API serves.
    pub fn start(root: &std::path::Path, name: &str, extra: &[&str]) -> Node {
        let datadir = root.join(name);
        let mut child = devnet_env(&mut Command::new(BIN), root)
            .arg("--datadir")
            .arg(&datadir)
            .args(["daemon", "--listen", "127.0.0.1:0", "--block-interval", "0"])
            .args(store_args(&datadir, extra))
            .args(extra)
            .env("BEONGAE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = read_banner(&mut child);
        Node {
            node_id: banner_field(&lines, "node id: "),
            listen: banner_field(&lines, "listening on: "),
            child,
            datadir,
            root: root.to_owned(),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `beongae --datadir DATADIR --json ARGS` on the devnet of `root`: its JSON.
/// Panics, with the error, if the command fails.
pub fn cli_json(
    root: &std::path::Path,
    datadir: &std::path::Path,
    args: &[&str],
) -> serde_json::Value {
    let out = devnet_env(&mut Command::new(BIN), root)
        .arg("--datadir")
        .arg(datadir)
        .arg("--json")
        .args(args)
        .env("BEONGAE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A client of a daemon's HTTP API: its URL (`api/url`), its admin token,
/// and an HTTP client that trusts only the daemon's own certificate.
pub fn api_client(datadir: &std::path::Path) -> (String, reqwest::Client, String) {
    let url = std::fs::read_to_string(datadir.join("api/url")).unwrap();
    let http = if url.starts_with("https") {
        let pem = std::fs::read(datadir.join("api/tls.cert")).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    } else {
        reqwest::Client::new()
    };
    let admin = std::fs::read_to_string(datadir.join("api/admin.token")).unwrap();
    (url, http, admin)
}

/// The store the suite gives the daemon of `datadir`
/// ([`beongae_store::testing::node_store`]), unless `extra` names one.
pub fn store_args(datadir: &std::path::Path, extra: &[&str]) -> Vec<String> {
    if extra.contains(&"--store") {
        return Vec::new();
    }
    beongae_store::testing::node_store_args(datadir)
}
