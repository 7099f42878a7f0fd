//! Snapshots of the CLI's output for people (`--output human`): tables,
//! amounts in sat, dates, outcomes in words. Ids, hashes and dates are
//! masked; every amount is compared.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::BIN;

type Daemon = common::Node;

fn cmd(root: &Path) -> Command {
    let mut c = Command::new(BIN);
    common::devnet_env(&mut c, root).env("BEONGAE_LOG", "warn");
    c
}

impl Daemon {
    /// The command's output for people; stdout and stderr, and whether it
    /// succeeded.
    fn human(&self, args: &[&str]) -> (bool, String, String) {
        let out = cmd(&self.root)
            .arg("--datadir")
            .arg(&self.datadir)
            .args(["--output", "human"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.human(args);
        assert!(ok, "{args:?}: {err}");
        out
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        common::cli_json(&self.root, &self.datadir, args)
    }
}

/// Replaces each `(text, name)` by `<name>`, and every `YYYY-MM-DD HH:MM
/// UTC` by `<date>`.
fn mask(s: &str, ids: &[(&str, &str)]) -> String {
    let mut s = s.to_owned();
    for (text, name) in ids {
        if !text.is_empty() {
            s = s.replace(text, &format!("<{name}>"));
        }
    }
    while let Some(i) = s.find(" UTC") {
        let start = s[..i].char_indices().rev().nth(15).map_or(0, |(j, _)| j);
        s.replace_range(start..i + 4, "<date>");
    }
    s
}

/// `node…id` as the tables shorten it.
fn short(id: &str) -> String {
    format!("{}…{}", &id[..10], &id[id.len() - 6..])
}

#[test]
fn the_human_output_of_a_channel_and_a_payment() {
    let root = tempfile::tempdir().unwrap();
    let a = Daemon::start(root.path(), "a", &[]);
    let b = Daemon::start(root.path(), "b", &[]);
    let (sa, sb) = (short(&a.node_id), short(&b.node_id));
    let ids = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v = vec![
            (a.node_id.clone(), "A".to_owned()),
            (b.node_id.clone(), "B".to_owned()),
            (sa.clone(), "a".to_owned()),
            (sb.clone(), "b".to_owned()),
            (a.listen.clone(), "a-addr".to_owned()),
            (b.listen.clone(), "b-addr".to_owned()),
        ];
        v.extend(
            extra
                .iter()
                .map(|(t, n)| ((*t).to_owned(), (*n).to_owned())),
        );
        v
    };
    let m = |s: &str, extra: &[(&str, &str)]| {
        let owned = ids(extra);
        let refs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(t, n)| (t.as_str(), n.as_str()))
            .collect();
        mask(s, &refs)
    };

    assert_eq!(
        m(&a.ok(&["channels"]), &[]),
        "no channels: open one with `beongae openchannel NODE_ID AMOUNT`\n"
    );
    assert_eq!(
        m(
            &a.ok(&["connect", &format!("{}@{}", b.node_id, b.listen)]),
            &[]
        ),
        "connected to <B> at <b-addr> (outbound)\n"
    );
    // `openchannel --wait` answers once the channel is open.
    let waiting = cmd(root.path())
        .arg("--datadir")
        .arg(&a.datadir)
        .args([
            "--json",
            "openchannel",
            &b.node_id,
            "1000000",
            "--push-sat",
            "10000",
            "--wait",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.json(&["channels"]).as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    // One block: the table counts the funding's confirmations.
    let out = cmd(root.path())
        .args(["--output", "human", "devnet", "mine", "1"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "mined 1 block(s); height 153\n"
    );
    while a.json(&["channels"])[0]["confirmations"] != 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let table = a.ok(&["channels"]);
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap()
        .split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        row[2..],
        [
            "confirming 1/3",
            "1,000,000 sat",
            "990,000 sat",
            "10,000 sat",
            "0 sat",
            "0 sat"
        ],
        "{table}"
    );
    let out = cmd(root.path())
        .args(["--output", "human", "devnet", "mine", "2"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "mined 2 block(s); height 155\n"
    );
    let done = waiting.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let opened: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(opened["state"], "normal");
    assert_eq!(opened["active"], true);
    assert_eq!(opened["local_msat"], 990_000_000u64);
    let id = opened["channel_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.json(&["channels"])[0]["active"] != true || b.json(&["channels"])[0]["active"] != true {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let cid = &id[..16];
    // Alice funds 1,000,000 sat and gives Bob 10,000. She keeps Bob's
    // 10,000 sat reserve, the anchors (660 sat) and the fee of a commitment
    // with one more HTLC at twice the feerate (2,500 sat/kW here: 2 x 2,500
    // x (1,124 + 2 x 172) / 1,000 = 7,340 sat): 972,000 sat to send.
    assert_eq!(
        m(&a.ok(&["channels"]), &[(cid, "channel")]),
        // (The columns are as wide as the unmasked ids.)
        "CHANNEL           PEER               STATE   CAPACITY       OURS         THEIRS      CAN SEND     CAN RECEIVE\n\
         <channel>  <b>  normal  1,000,000 sat  990,000 sat  10,000 sat  972,000 sat        0 sat\n"
    );
    let inv = b.json(&["invoice", "2500sat", "--description", "coffee"]);
    let (bolt11, hash) = (
        inv["invoice"].as_str().unwrap(),
        inv["payment_hash"].as_str().unwrap(),
    );
    assert_eq!(
        m(
            &b.ok(&["invoice", "1.5sat", "--description", "tea"])
                .lines()
                .skip(1)
                .collect::<Vec<_>>()
                .join("\n"),
            &[]
        )
        .split("payment hash")
        .next()
        .unwrap(),
        "1.500 sat for \"tea\", open; expires <date>\n"
    );
    let paid = a.ok(&["pay", bolt11]);
    let preimage = paid.rsplit(' ').next().unwrap().trim().to_owned();
    let paid = m(&paid, &[(&preimage, "preimage")]);
    let ms: String = paid
        .split(" in ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        paid,
        format!("paid 2,500 sat to <b> directly in {ms} ms, fee 0 sat\npreimage <preimage>\n")
    );
    let (ok, out, err) = a.human(&["pay", bolt11]);
    assert!(!ok && out.is_empty());
    assert_eq!(err, "error: payment failed: this invoice is already paid\n");
    let (ok, _, err) = a.human(&["closechannel", "ff"]);
    assert!(!ok);
    assert_eq!(err, "error: no channel ff: `beongae channels` lists them\n");

    let deadline = Instant::now() + Duration::from_secs(20);
    while b.json(&["channels"])[0]["pending_htlcs"] != 0
        || a.json(&["channels"])[0]["pending_htlcs"] != 0
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        m(&b.ok(&["payments"]), &[(&short(hash), "hash")])
            .lines()
            .filter(|l| !l.contains("tea"))
            .collect::<Vec<_>>()
            .join("\n"),
        "Invoices\n\
         CREATED               AMOUNT     STATUS  DESCRIPTION  HASH\n\
         <date>  2,500 sat  paid    coffee       <hash>\n\
         \n\
         no payments"
    );
    assert_eq!(
        m(&a.ok(&["payments"]), &[(&short(hash), "hash")]),
        "no invoices\n\n\
         Payments\n\
         SENT                  HASH               AMOUNT     FEE    HOPS  STATUS\n\
         <date>  <hash>  2,500 sat  0 sat  1     succeeded\n"
    );
    // The commit it was built from, when built in a checkout.
    let build = option_env!("BEONGAE_BUILD").map_or_else(String::new, |b| format!(" (build {b})"));
    assert_eq!(
        m(&a.ok(&["info"]), &[(&build, "build")]).replace("<build>", ""),
        "node      <A>\npeers at  <A>@<a-addr>\nnetwork   devnet, block 155 (synced)\nversion   0.1.0\npeers     1\nchannels  1 active, 0 inactive, 0 pending, 0 closing, 0 closed\n"
    );
    // Bob now holds 12,500 sat, 10,000 of them his reserve. He can receive
    // Alice's 987,500 sat less her 10,000 sat reserve, the anchors (660)
    // and the fee of his commitment with the HTLC (2,500 sat/kW x (1,124 +
    // 172) / 1,000 = 3,240).
    let bal = b.ok(&["balance"]);
    let channels_line = bal.lines().find(|l| l.starts_with("channels")).unwrap();
    assert_eq!(
        channels_line,
        "channels  12,500 sat ours; can send 2,500 sat, can receive 973,600 sat now"
    );
    assert_eq!(m(&b.ok(&["forwards"]), &[]), "0 forwarded, 0 sat earned\n");
    assert_eq!(
        m(&b.ok(&["graph"]), &[]),
        "0 public channels, 0 nodes announced\n"
    );
}
