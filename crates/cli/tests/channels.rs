//! Channels from the command line: `beongae demo`, and two daemons on one
//! served devnet (`devnet serve`, daemons with `--network regtest
//! --bitcoind-rpc`): `openchannel`, `channels`, `invoice`, `pay`,
//! `payments`, `closechannel`, with the errors a user sees.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod common;

use common::BIN;

#[test]
fn demo_runs_and_balances_add_up() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("channel balances: Alice 750,000,000 msat (750,000.000 sat), Bob 250,000,000 msat (250,000.000 sat)"), "{text}");
    assert!(text.contains("Alice 788,765,433 msat"), "{text}");
    // 100 micro-payments of 10_000..10_099 msat: 1_004_950 msat more to Bob.
    assert!(text.contains("Bob 212,239,517 msat"), "{text}");
    // Alice pays Carol 50,000 sat through Bob: she sends 50,001,050 msat,
    // Bob keeps 1,050 msat (1,000 + 1 ppm) and hands Carol 50,000,000.
    assert!(text.contains("she sent 50,001,050 msat"), "{text}");
    assert!(
        text.contains("Bob forwarded it and earned 1,050 msat"),
        "{text}"
    );
    assert!(
        text.contains("Carol 350,000,000 msat, Bob 150,000,000 msat on their channel"),
        "{text}"
    );
    assert!(text.contains("Bob 262,240,567 msat"), "{text}");
    assert!(text.contains("Bob's wallet holds 262,240 sat"), "{text}");
    // The cheat: Bob's revoked commitment gave him 300,000 sat; Alice's
    // justice takes everything but the anchors (996,530 sat) and Bob's
    // wallet gets nothing.
    assert!(text.contains("takes 996,530 sat"), "{text}");
    assert!(
        text.contains("Bob's wallet gained 0 sat: cheating cost him his 50,000,000 msat"),
        "{text}"
    );
    // The vanished peer: Alice's 400,000 sat less the commitment fee and
    // anchors, back after Bob's 144-block delay.
    assert!(
        text.contains("396,530 sat of hers wait in it until block"),
        "{text}"
    );
    assert!(
        text.contains("(the 144-block to_self_delay Bob asked of her)"),
        "{text}"
    );
    assert!(text.contains("her wallet gained 395,"), "{text}");
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// The daemon's log, kept next to its data directory (appended across restarts).
fn log_file(datadir: &Path) -> Stdio {
    std::fs::create_dir_all(datadir).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(datadir.with_extension("log"))
        .unwrap();
    Stdio::from(f)
}

struct Daemon {
    _proc: Proc,
    node_id: String,
    listen: String,
    datadir: PathBuf,
}

impl Daemon {
    fn start(datadir: &Path, url: &str, cookie: &Path) -> Daemon {
        Daemon::start_with(datadir, url, cookie, &[])
    }

    /// [`Daemon::start`] with more `daemon` arguments.
    fn start_with(datadir: &Path, url: &str, cookie: &Path, extra: &[&str]) -> Daemon {
        let mut child = Command::new(BIN)
            .args([
                "--datadir",
                datadir.to_str().unwrap(),
                "daemon",
                "--listen",
                "127.0.0.1:0",
                "--network",
                "regtest",
                "--bitcoind-rpc",
                url,
                "--bitcoind-cookie",
                cookie.to_str().unwrap(),
            ])
            .args(common::store_args(datadir, extra))
            .args(extra)
            .env("BEONGAE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log_file(datadir))
            .spawn()
            .unwrap();
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
            _proc: Proc(child),
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

    /// The first channel, once `ok` holds for it.
    fn wait_channel(&self, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        for _ in 0..300 {
            let list = self.ok(&["channels"]);
            if let Some(c) = list.as_array().unwrap().first() {
                if ok(c) {
                    return c.clone();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.datadir.with_extension("log")).unwrap_or_default();
        panic!(
            "channel never got there: {}\nlog:\n{log}",
            self.ok(&["channels"])
        );
    }
}

fn mine(dir: &Path, n: &str, address: &str) {
    let out = common::mine(dir, n, address);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_daemons_open_pay_and_close_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = dir.path().join("chain");
    let served = common::serve(&chain_dir);
    let url = served.url.clone();
    let cookie = chain_dir.join("devnet/.cookie");
    let a = Daemon::start(&dir.path().join("a"), &url, &cookie);
    let b = Daemon::start(&dir.path().join("b"), &url, &cookie);
    let a_addr = a.ok(&["newaddress"])["address"]
        .as_str()
        .unwrap()
        .to_owned();
    mine(&chain_dir, "101", &a_addr);
    let burn = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

    // Errors first: no peer, bad amounts, bad ids.
    assert!(a
        .err(&["openchannel", &b.node_id, "1000000"])
        .contains("not connected to"));
    assert!(a
        .err(&["openchannel", &b.node_id, "lots"])
        .contains("write satoshis"));
    assert!(a
        .err(&["closechannel", "abcd"])
        .contains("no channel abcd: `beongae channels` lists them"));
    assert!(a
        .err(&["closechannel", "xyz"])
        .contains("bad channel id `xyz`: hex digits only"));
    assert!(a.err(&["pay", "lnbc1garbage"]).contains("invalid invoice"));

    a.ok(&["connect", &format!("{}@{}", b.node_id, b.listen)]);
    let opened = a.ok(&["openchannel", &b.node_id, "500000", "--push-sat", "10000"]);
    let id = opened["channel_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);
    let c = a.ok(&["channels"]);
    assert_eq!(c[0]["state"], "awaiting_confirmation");
    assert_eq!(c[0]["capacity_sat"], 500_000);
    assert_eq!(c[0]["confirmations"], 0);
    assert_eq!(c[0]["confirmations_required"], 3);
    mine(&chain_dir, "3", burn);
    let normal = |c: &serde_json::Value| c["state"] == "normal" && c["active"] == true;
    let c = a.wait_channel(normal);
    assert_eq!(c["local_msat"], 490_000_000u64);
    assert_eq!(c["remote_msat"], 10_000_000u64);
    assert_eq!(c["we_opened"], true);
    b.wait_channel(normal);

    let inv = b.ok(&["invoice", "2500sat", "--description", "coffee"]);
    let invoice = inv["invoice"].as_str().unwrap();
    assert!(invoice.starts_with("lnbcrt25u1"), "{invoice}");
    let paid = a.ok(&["pay", invoice]);
    assert_eq!(paid["payment_hash"], inv["payment_hash"]);
    // Paying again is refused.
    assert!(a.err(&["pay", invoice]).contains("already paid"));
    let any = a.ok(&["invoice", "any", "--description", "tip"]);
    b.ok(&[
        "pay",
        any["invoice"].as_str().unwrap(),
        "--amount",
        "1500msat",
    ]);
    let settled =
        |c: &serde_json::Value| c["pending_htlcs"] == 0 && c["local_msat"] == 487_501_500u64;
    a.wait_channel(settled);
    let c = b.wait_channel(|c| c["pending_htlcs"] == 0 && c["local_msat"] == 12_498_500u64);
    assert_eq!(c["remote_msat"], 487_501_500u64);

    // Bob must keep his 5_000 sat reserve: 9_000 sat is more than he may send.
    let big = a.ok(&["invoice", "9000sat"]);
    let why = b.err(&["pay", big["invoice"].as_str().unwrap()]);
    assert!(why.contains("below the 5000000 msat it must keep"), "{why}");
    assert_eq!(b.ok(&["channels"])[0]["local_msat"], 12_498_500u64);

    // `send ADDRESS all` empties Alice's wallet but for the anchor
    // channel's fee reserve, kept back in an output of its own; then a
    // payment that would dip into the reserve is refused.
    let before = a.ok(&["balance"]);
    assert_eq!(before["fee_reserve_sat"], 10_000);
    let total =
        before["confirmed_sat"].as_u64().unwrap() + before["unconfirmed_sat"].as_u64().unwrap();
    let swept = a.ok(&["send", burn, "all", "--feerate", "2"]);
    assert_eq!(
        swept["amount_sat"].as_u64().unwrap() + swept["fee_sat"].as_u64().unwrap() + 10_000,
        total,
        "{swept} from {before}"
    );
    let after = a.ok(&["balance"]);
    assert_eq!(after["confirmed_sat"], 0, "{after}");
    assert_eq!(after["unconfirmed_sat"], 10_000, "{after}");
    assert!(after.get("warning").is_none(), "{after}");
    let e = a.err(&["send", burn, "1000"]);
    assert!(
        e.contains("below the 10000 sat kept to pay the fees of anchor channels' force closes"),
        "{e}"
    );

    let payments = a.ok(&["payments"]);
    let (sent, invoices) = (
        payments["payments"].as_array().unwrap(),
        payments["invoices"].as_array().unwrap(),
    );
    assert_eq!(sent.len() + invoices.len(), 3);
    assert!(sent
        .iter()
        .any(|p| p["status"] == "succeeded" && p["amount_msat"] == 2_500_000));
    assert!(invoices
        .iter()
        .any(|p| p["status"] == "paid" && p["amount_msat"] == 1_500 && p["description"] == "tip"));

    assert!(a
        .err(&["closechannel", &"00".repeat(32), "--force"])
        .contains(&format!("no channel {}", "00".repeat(32))));
    // The forwarding policy, from the CLI: set on the one channel, stored
    // and refused below the least CLTV delta; nothing forwarded yet.
    let set = a.ok(&[
        "setpolicy",
        "--base-fee-msat",
        "2000",
        "--fee-ppm",
        "5",
        "--cltv-delta",
        "100",
        "--htlc-min",
        "2sat",
    ]);
    assert_eq!(set["channels"], serde_json::json!([id]));
    assert!(a
        .err(&["setpolicy", "--cltv-delta", "10"])
        .contains("cltv_expiry_delta 10 is too small"));
    let forwards = a.ok(&["forwards"]);
    assert_eq!(forwards["forwards"], serde_json::json!([]));
    assert_eq!(forwards["fees_earned_msat"], 0);
    let closed = a.ok(&["closechannel", &id]);
    assert_eq!(closed["closing_txid"].as_str().unwrap().len(), 64);
    // Until the closing transaction confirms the channel is "closing", and
    // asking again answers with the same transaction. A mutual close puts
    // nothing "on its way back" (that is for force closes).
    let closing = b.wait_channel(|c| c["state"] == "closing");
    assert_eq!(closing["closing_sat"], 0);
    let balance = b.ok(&["balance"]);
    assert_eq!(balance["closing_channels_sat"], 0);
    // Until the close confirms, the anchor channel may still need the
    // wallet for a force close's fees: 10_000 sat kept, which the close's
    // 12_498 sat on their way to Bob's wallet cover (no warning).
    assert_eq!(balance["fee_reserve_sat"], 10_000);
    assert_eq!(balance["unconfirmed_sat"], 12_498);
    assert!(balance.get("warning").is_none(), "{balance}");
    assert_eq!(a.ok(&["closechannel", &id]), closed);
    mine(&chain_dir, "1", burn);
    b.wait_channel(|c| c["state"] == "closed");
    // Bob's wallet receives his 12_498 sat (12_498_500 msat rounded down);
    // nothing is kept in reserve any more.
    let confirmed = |d: &Daemon, sat: u64| {
        for _ in 0..100 {
            let balance = d.ok(&["balance"]);
            if balance["confirmed_sat"] == sat {
                return balance;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("balance: {}", d.ok(&["balance"]));
    };
    let balance = confirmed(&b, 12_498);
    assert_eq!(balance["fee_reserve_sat"], 0);
    assert!(balance.get("warning").is_none(), "{balance}");

    // `openchannel PEER all`: Bob funds a channel with all he has (100,000
    // sat from the faucet and the close's 12,498), less the funding's fee,
    // keeping the 10,000 sat reserve the new anchor channel asks for (and
    // the 10 sat left for the fee's rounding).
    let b_addr = b.ok(&["newaddress"])["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = common::devnet(&chain_dir, &["fund", "100000sat", "--address", &b_addr]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    confirmed(&b, 112_498);
    let opened = b.ok(&["openchannel", &a.node_id, "all"]);
    let capacity = opened["capacity_sat"].as_u64().unwrap();
    let after = b.ok(&["balance"]);
    let left =
        after["confirmed_sat"].as_u64().unwrap() + after["unconfirmed_sat"].as_u64().unwrap();
    assert!((10_010..=10_012).contains(&left), "{after}");
    assert_eq!(after["fee_reserve_sat"], 10_000);
    // Two P2WPKH inputs, the funding output and the change, about 221 vB,
    // at 2,500 sat/kW (10 sat/vB).
    let fee = 112_498 - capacity - left;
    assert!((2_150..2_260).contains(&fee), "fee {fee}");
    let channels = b.ok(&["channels"]);
    let channel = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_id"] == opened["channel_id"])
        .unwrap();
    assert_eq!(channel["capacity_sat"], capacity);
    assert_eq!(channel["we_opened"], true);
}

/// Sums of a node's succeeded outgoing payments and paid invoices, in msat;
/// no payment may be left pending.
fn ledger(d: &Daemon) -> (u64, u64) {
    let (mut out, mut inc) = (0, 0);
    let all = d.ok(&["payments"]);
    for p in all["payments"].as_array().unwrap() {
        // What left the payer: the amount delivered and the fees.
        let a = p["amount_msat"].as_u64().unwrap_or(0) + p["fee_msat"].as_u64().unwrap_or(0);
        match p["status"].as_str().unwrap() {
            "succeeded" => out += a,
            s => assert_eq!(s, "failed", "{p}"),
        }
    }
    for p in all["invoices"].as_array().unwrap() {
        if p["status"] == "paid" {
            inc += p["amount_msat"].as_u64().unwrap();
        }
    }
    (out, inc)
}

/// An unspendable regtest address for blocks nobody needs to spend.
const BURN: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

/// A served devnet, Alice (funded with 101 blocks) and Bob, and Alice's
/// 1,000,000 sat channel to Bob, normal on both sides.
struct TwoDaemons {
    _served: common::Served,
    chain_dir: PathBuf,
    url: String,
    cookie: PathBuf,
    a: Daemon,
    b: Daemon,
    id: String,
}

fn two_daemons_with_a_channel(dir: &Path) -> TwoDaemons {
    let chain_dir = dir.join("chain");
    let served = common::serve(&chain_dir);
    let url = served.url.clone();
    let cookie = chain_dir.join("devnet/.cookie");
    let a = Daemon::start(&dir.join("a"), &url, &cookie);
    let b = Daemon::start(&dir.join("b"), &url, &cookie);
    let a_addr = a.ok(&["newaddress"])["address"]
        .as_str()
        .unwrap()
        .to_owned();
    mine(&chain_dir, "101", &a_addr);
    a.ok(&["connect", &format!("{}@{}", b.node_id, b.listen)]);
    let opened = a.ok(&["openchannel", &b.node_id, "1000000"]);
    let id = opened["channel_id"].as_str().unwrap().to_owned();
    mine(&chain_dir, "3", BURN);
    let normal = |c: &serde_json::Value| c["state"] == "normal" && c["active"] == true;
    a.wait_channel(normal);
    b.wait_channel(normal);
    TwoDaemons {
        _served: served,
        chain_dir,
        url,
        cookie,
        a,
        b,
        id,
    }
}

/// The paying daemon is SIGKILLed with payments in flight, restarts from
/// its store, reconnects to its channel peer by itself, and both ledgers
/// match the channel to the msat.
#[test]
fn payer_killed_mid_flight_recovers_without_losing_a_msat() {
    let dir = tempfile::tempdir().unwrap();
    let net = two_daemons_with_a_channel(dir.path());
    let (url, cookie) = (net.url.clone(), net.cookie.clone());
    let (a, b) = (net.a, net.b);
    let normal = |c: &serde_json::Value| c["state"] == "normal" && c["active"] == true;

    let invoices: Vec<String> = (0..60)
        .map(|i| {
            let amount = format!("{}msat", 1_000_000 + i);
            b.ok(&["invoice", &amount])["invoice"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let payers = a.pay_all(&invoices);
    std::thread::sleep(Duration::from_millis(150));
    let status = Command::new("kill")
        .args(["-9", &a._proc.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for mut p in payers {
        let _ = p.wait();
    }
    let datadir = a.datadir.clone();
    drop(a);
    let a = Daemon::start(&datadir, &url, &cookie);
    // Alice dialled Bob before: she reconnects by herself.
    a.wait_channel(normal);
    b.wait_channel(normal);
    let settled = |c: &serde_json::Value| c["pending_htlcs"] == 0;
    let mut ok = false;
    for _ in 0..100 {
        let (ca, cb) = (a.wait_channel(settled), b.wait_channel(settled));
        let ((a_out, a_in), (b_out, b_in)) = (ledger(&a), ledger(&b));
        if ca["local_msat"] == 1_000_000_000 - a_out && cb["local_msat"] == a_out {
            assert_eq!((a_in, b_out), (0, 0));
            assert_eq!(
                a_out, b_in,
                "Alice's succeeded payments are Bob's paid invoices"
            );
            assert_eq!(ca["remote_msat"], cb["local_msat"]);
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        ok,
        "ledgers never matched: {} / {}",
        a.ok(&["channels"]),
        b.ok(&["channels"])
    );
    // And the channel still works.
    let inv = b.ok(&["invoice", "777sat"]);
    a.ok(&["pay", inv["invoice"].as_str().unwrap()]);
}

impl Daemon {
    /// SIGKILL, then a fresh daemon on the same data directory.
    fn killed_and_restarted(self, url: &str, cookie: &Path) -> Daemon {
        let status = Command::new("kill")
            .args(["-9", &self._proc.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let datadir = self.datadir.clone();
        drop(self);
        Daemon::start(&datadir, url, cookie)
    }
}

/// BOLT 5 across crashes: Bob's node vanishes, Alice forces the channel
/// closed and is SIGKILLed at each step of the resolution — right after
/// her commitment went out, once it confirmed, and once her sweep went out
/// but before it confirmed — restarting from her store each time. Her
/// funds come back to her wallet exactly once, to the satoshi.
#[test]
fn a_force_close_survives_kill_9_at_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let net = two_daemons_with_a_channel(dir.path());
    let (chain_dir, url, cookie) = (net.chain_dir.clone(), net.url.clone(), net.cookie.clone());
    let (a, b, id) = (net.a, net.b, net.id);
    let burn = BURN;
    let inv = b.ok(&["invoice", "100000sat"]);
    a.ok(&["pay", inv["invoice"].as_str().unwrap()]);
    a.wait_channel(|c| c["pending_htlcs"] == 0 && c["local_msat"] == 900_000_000u64);
    // Bob goes away for good.
    let status = Command::new("kill")
        .args(["-9", &b._proc.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    drop(b);

    let forced = a.ok(&["closechannel", &id, "--force"]);
    let commitment = forced["closing_txid"].as_str().unwrap().to_owned();
    // Killed right after the commitment went out.
    let a = a.killed_and_restarted(&url, &cookie);
    mine(&chain_dir, "1", burn);
    let c = a.wait_channel(|c| c["spendable_at"].is_u64());
    assert_eq!(c["closing_txid"], commitment.as_str());
    let at = c["spendable_at"].as_u64().unwrap();
    // 900,000 sat less the commitment's fee and the anchors Alice pays.
    let to_local = c["closing_sat"].as_u64().unwrap();
    assert_eq!(to_local, 900_000 - 2_810 - 660);
    // Killed once the commitment confirmed.
    let a = a.killed_and_restarted(&url, &cookie);
    let height = a.ok(&["balance"])["height"].as_u64().unwrap();
    let wait = (at - height - 1).to_string();
    mine(&chain_dir, &wait, burn);
    // Not a block early.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(a.ok(&["channels"])[0]["closing_sat"], to_local);
    mine(&chain_dir, "1", burn);
    // The sweep goes out: its value is on the way now.
    let c = a.wait_channel(|c| c["closing_sat"].as_u64().unwrap() < to_local);
    let swept = c["closing_sat"].as_u64().unwrap();
    assert!(swept > to_local - 2_000, "a fee of {}", to_local - swept);
    // Killed with the sweep out and not confirmed.
    let a = a.killed_and_restarted(&url, &cookie);
    let before = a.ok(&["balance"]);
    let confirmed = before["confirmed_sat"].as_u64().unwrap();
    assert_eq!(before["closing_channels_sat"], swept);
    mine(&chain_dir, "1", burn);
    a.wait_channel(|c| c["closing_sat"] == 0);
    for _ in 0..100 {
        if a.ok(&["balance"])["confirmed_sat"] == confirmed + swept {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(a.ok(&["balance"])["confirmed_sat"], confirmed + swept);
    // Nothing is swept twice.
    mine(&chain_dir, "2", burn);
    std::thread::sleep(Duration::from_millis(500));
    let after = a.ok(&["balance"]);
    assert_eq!(after["confirmed_sat"], confirmed + swept);
    assert_eq!(after["closing_channels_sat"], 0);
}

/// A public channel from the CLI (`openchannel --public`) is announced six
/// blocks deep: both daemons' `graph` shows it with both directions' fees,
/// and both nodes with the alias, colour and address they announce
/// (`--alias`, `--color`, `--announce-addr`). Bad announcement settings
/// stop the daemon with a message that says what to change.
#[test]
fn a_public_channel_is_announced_with_the_nodes_names() {
    for (args, why) in [
        (vec!["--alias", &"x".repeat(33)], "at most 32 bytes"),
        (vec!["--color", "blue"], "expected 6 hex digits"),
        (vec!["--announce-addr", "1.2.3.4:0"], "port from 1 to 65535"),
        (
            vec![
                "--announce-addr",
                "a.example:9735",
                "--announce-addr",
                "b.example:9735",
            ],
            "at most one host name",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .args([
                "--datadir",
                dir.path().to_str().unwrap(),
                "daemon",
                "--network",
                "regtest",
            ])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(why),
            "{args:?}: {err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = dir.path().join("chain");
    let served = common::serve(&chain_dir);
    let url = served.url.clone();
    let cookie = chain_dir.join("devnet/.cookie");
    let a = Daemon::start_with(
        &dir.path().join("a"),
        &url,
        &cookie,
        &[
            "--alias",
            "알리스",
            "--color",
            "ff0000",
            "--announce-addr",
            "203.0.113.7:9735",
        ],
    );
    let b = Daemon::start_with(
        &dir.path().join("b"),
        &url,
        &cookie,
        &["--alias", "bob", "--announce-addr", "bob.example.com:9735"],
    );
    let a_addr = a.ok(&["newaddress"])["address"]
        .as_str()
        .unwrap()
        .to_owned();
    mine(&chain_dir, "101", &a_addr);
    a.ok(&["connect", &format!("{}@{}", b.node_id, b.listen)]);
    a.ok(&["openchannel", &b.node_id, "500000", "--public"]);
    let burn = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    mine(&chain_dir, "6", burn);
    for d in [&a, &b] {
        let mut g = serde_json::Value::Null;
        for _ in 0..300 {
            g = d.ok(&["graph"]);
            let ready = g["channels"].as_array().is_some_and(|c| {
                c.len() == 1 && !c[0]["policy_1"].is_null() && !c[0]["policy_2"].is_null()
            }) && g["nodes"].as_array().is_some_and(|n| n.len() == 2);
            if ready {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let c = &g["channels"][0];
        assert_eq!(c["capacity_sat"], 500_000, "{g}");
        assert_eq!(c["policy_1"]["fee_base_msat"], 1_000, "{g}");
        assert_eq!(c["policy_2"]["cltv_expiry_delta"], 80, "{g}");
        let node = |id: &str| {
            g["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["node_id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("{id} not in {g}"))
        };
        let na = node(&a.node_id);
        assert_eq!(na["alias"], "알리스");
        assert_eq!(na["color"], "ff0000");
        assert_eq!(na["addresses"], serde_json::json!(["203.0.113.7:9735"]));
        let nb = node(&b.node_id);
        assert_eq!(nb["alias"], "bob");
        assert_eq!(nb["color"], "3399ff");
        assert_eq!(nb["addresses"], serde_json::json!(["bob.example.com:9735"]));
    }
}

impl Daemon {
    /// Waits (30 s) until channel `id` satisfies `ok`.
    fn wait_channel_id(
        &self,
        id: &str,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        for _ in 0..300 {
            let list = self.ok(&["channels"]);
            if let Some(c) = list
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["channel_id"] == id)
            {
                if ok(c) {
                    return c.clone();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("channel {id}: {}", self.ok(&["channels"]));
    }
}

/// Three times, Alice pays Carol through Bob 60 times at once (Carol's
/// invoices reach her by the route hint through Bob's private channel) and
/// Bob's daemon is killed (`kill -9`) 60, 30 and 10 ms after the payers
/// start, then restarted from its store. Every
/// payment ends succeeded or failed, none pending; what Alice paid is what
/// left her channel, what Carol was paid is what reached hers, and Bob
/// kept exactly the fees of the forwards he lists settled — every msat
/// accounted for (SAFETY.md: killed between `Persist` and the sends that
/// follow; issue 13: B killed with HTLCs in flight).
#[test]
fn a_forwarder_killed_mid_flight_loses_no_msat() {
    let dir = tempfile::tempdir().unwrap();
    let chain_dir = dir.path().join("chain");
    let served = common::serve(&chain_dir);
    let (url, cookie) = (served.url.clone(), chain_dir.join("devnet/.cookie"));
    let a = Daemon::start(&dir.path().join("a"), &url, &cookie);
    let b = Daemon::start(&dir.path().join("b"), &url, &cookie);
    let c = Daemon::start(&dir.path().join("c"), &url, &cookie);
    for d in [&a, &b] {
        let addr = d.ok(&["newaddress"])["address"]
            .as_str()
            .unwrap()
            .to_owned();
        mine(&chain_dir, "101", &addr);
    }
    a.ok(&["connect", &format!("{}@{}", b.node_id, b.listen)]);
    let ab = a.ok(&["openchannel", &b.node_id, "1000000"])["channel_id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.ok(&["connect", &format!("{}@{}", c.node_id, c.listen)]);
    let bc = b.ok(&["openchannel", &c.node_id, "1000000"])["channel_id"]
        .as_str()
        .unwrap()
        .to_owned();
    mine(&chain_dir, "3", BURN);
    let normal = |c: &serde_json::Value| c["state"] == "normal" && c["active"] == true;
    for (d, id) in [(&a, &ab), (&b, &ab), (&b, &bc), (&c, &bc)] {
        d.wait_channel_id(id, normal);
    }
    // Carol's invoices carry the hint through Bob once his update reached her.
    for _ in 0..300 {
        let text = c.ok(&["invoice", "1sat"])["invoice"]
            .as_str()
            .unwrap()
            .to_owned();
        if c.ok(&["decode", &text])["route_hints"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut b = b;
    let mut interrupted = 0;
    for (round, kill_after) in [60u64, 30, 10].into_iter().enumerate() {
        let before = ledger(&c).1;
        let invoices: Vec<String> = (0..60)
            .map(|i| {
                let amount = format!("{}msat", 100_000 + round * 100_000 + i * 1_000);
                c.ok(&["invoice", &amount])["invoice"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let total: u64 = (0..60u64)
            .map(|i| 100_000 + round as u64 * 100_000 + i * 1_000)
            .sum();
        let payers = a.pay_all(&invoices);
        std::thread::sleep(Duration::from_millis(kill_after));
        let status = Command::new("kill")
            .args(["-9", &b._proc.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        if ledger(&c).1 - before < total {
            interrupted += 1;
        }
        let datadir = b.datadir.clone();
        drop(b);
        b = Daemon::start(&datadir, &url, &cookie);
        // Bob listens on a new port now: Alice reconnects to it (Bob redials
        // Carol by himself).
        let addr = format!("{}@{}", b.node_id, b.listen);
        for attempt in 0.. {
            // Alice may be dialling Bob's old address at that moment.
            let out = a.cli(&["connect", &addr]);
            if out.status.success() {
                break;
            }
            assert!(attempt < 20, "{}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(250));
        }
        for mut p in payers {
            let _ = p.wait();
        }
        for (d, id) in [(&a, &ab), (&b, &ab), (&b, &bc), (&c, &bc)] {
            d.wait_channel_id(id, normal);
        }
        balanced(&a, &b, &c, &ab, &bc);
    }
    assert!(
        interrupted > 0,
        "Bob was never killed with payments in flight"
    );
    // The channels still carry payments (once Alice's connection to the
    // restarted Bob has settled: seen once under load, a payment right
    // after found no route).
    let inv = c.ok(&["invoice", "7sat"])["invoice"]
        .as_str()
        .unwrap()
        .to_owned();
    for attempt in 0.. {
        let out = a.cli(&["pay", &inv]);
        if out.status.success() {
            break;
        }
        assert!(attempt < 20, "{}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(served);
}

/// Waits until nothing is pending on A — B — C and every msat is
/// accounted for: what Alice paid left her channel, what Carol was paid
/// reached hers, Bob kept exactly the fees of the forwards he lists settled.
fn balanced(a: &Daemon, b: &Daemon, c: &Daemon, ab: &str, bc: &str) {
    let settled = |c: &serde_json::Value| c["pending_htlcs"] == 0;
    let mut last = String::new();
    for _ in 0..100 {
        let a_ab = a.wait_channel_id(ab, settled);
        let b_ab = b.wait_channel_id(ab, settled);
        let b_bc = b.wait_channel_id(bc, settled);
        let c_bc = c.wait_channel_id(bc, settled);
        let ((a_out, _), (_, c_in)) = (ledger(a), ledger(c));
        let forwards = b.ok(&["forwards"]);
        let fees = forwards["fees_earned_msat"].as_u64().unwrap();
        let pending = forwards["forwards"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["status"] == "pending")
            .count();
        last = format!(
            "alice {} bob {} / {} carol {}; out {a_out} in {c_in} fees {fees} pending {pending}",
            a_ab["local_msat"], b_ab["local_msat"], b_bc["local_msat"], c_bc["local_msat"]
        );
        if a_ab["local_msat"] == 1_000_000_000 - a_out
            && b_ab["local_msat"] == a_out
            && c_bc["local_msat"] == c_in
            && b_bc["local_msat"] == 1_000_000_000 - c_in
            && a_out == c_in + fees
            && pending == 0
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the ledgers never matched: {last}");
}

impl Daemon {
    /// One `pay` process per invoice, all running at once.
    fn pay_all(&self, invoices: &[String]) -> Vec<Child> {
        invoices
            .iter()
            .map(|inv| {
                Command::new(BIN)
                    .arg("--datadir")
                    .arg(&self.datadir)
                    .args(["pay", inv])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect()
    }
}
