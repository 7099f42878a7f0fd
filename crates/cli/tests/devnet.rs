//! `beongae devnet serve` and `beongae devnet mine` as separate processes.

#![allow(clippy::unwrap_used)]

mod common;

use common::{mine, serve};
/// A regtest P2WPKH address (hash160 of nothing in particular).
const ADDRESS: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

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

/// `devnet feerate` on a served devnet: a spike of 40 sat/vB reaches the
/// fee estimate (`estimatesmartfee` answers it); 0 is refused with what to
/// choose.
#[test]
fn a_fee_spike_from_the_command_line() {
    use beongae_chain::rpc::{Auth, Bitcoind};
    use beongae_chain::ChainSource;
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path());
    let feerate = |n: &str| {
        std::process::Command::new(common::BIN)
            .args([
                "--datadir",
                dir.path().to_str().unwrap(),
                "devnet",
                "feerate",
                n,
            ])
            .args(["--rpc", &served.url])
            .output()
            .unwrap()
    };
    let out = feerate("40");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "40 sat/vB (10000 sat/kW)"
    );
    let rpc = Bitcoind::new(&served.url, Auth::Cookie(dir.path().join("devnet/.cookie")));
    assert_eq!(rpc.fee_estimate(6).unwrap().0, 10_000);
    let out = feerate("0");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 1 and 100000 sat/vB"));
}
