//! `beongae devnet ...`: the devnet every `--network devnet` daemon on this
//! machine shares ([`SharedDevnet`]): serve it, mine, fund a wallet from its
//! faucet, set its feerate, show it, watch its blocks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use beongae_chain::shared::{SharedDevnet, DEFAULT_RPC_PORT};
use beongae_chain::ChainSource;
use bitcoin::{Address, Amount, Network};

/// Where the shared devnet lives and where it is served.
#[derive(Debug, Clone)]
pub struct Location {
    /// Its directory (chain, lock, cookie, RPC URL).
    pub dir: PathBuf,
    /// The RPC address a process that serves it listens on.
    pub rpc: SocketAddr,
}

impl Location {
    /// Opens the devnet: serves it if no process does.
    pub fn open(&self) -> anyhow::Result<Arc<SharedDevnet>> {
        SharedDevnet::open(&self.dir, self.rpc)
            .with_context(|| format!("opening the devnet in {}", self.dir.display()))
    }
}

/// `~/.beongae-devnet`: one devnet for every data directory.
pub fn default_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".beongae-devnet"),
        |h| PathBuf::from(h).join(".beongae-devnet"),
    )
}

/// `127.0.0.1:18543`.
pub fn default_rpc() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], DEFAULT_RPC_PORT))
}

/// Where a data directory kept its own chain before the devnet was
/// shared.
pub fn private_chain_dir(datadir: &Path) -> PathBuf {
    datadir.join("devnet")
}

/// Parses a regtest address, with an error that says what to change.
pub fn regtest_address(s: &str) -> anyhow::Result<Address> {
    let a = Address::from_str(s).with_context(|| format!("`{s}` is not a bitcoin address"))?;
    a.require_network(Network::Regtest).map_err(|_| {
        anyhow::anyhow!("`{s}` is not a regtest address (regtest addresses start with bcrt1)")
    })
}

/// Serves the devnet until SIGINT/SIGTERM.
pub async fn serve(loc: &Location, block_interval: u64) -> anyhow::Result<()> {
    let l = loc.clone();
    let shared = tokio::task::spawn_blocking(move || {
        SharedDevnet::serve(&l.dir, l.rpc)
            .with_context(|| format!("serving the devnet in {}", l.dir.display()))
    })
    .await??;
    if block_interval > 0 {
        shared.mine_every(Duration::from_secs(block_interval));
    }
    let s = shared.clone();
    let (height, _) = tokio::task::spawn_blocking(move || s.tip()).await??;
    let banner = format!(
        "devnet RPC on {} (regtest, height {height})\ncookie file: {}\n",
        shared.url(),
        shared.cookie().display()
    );
    // One write, and the server keeps running if whoever started it stops
    // reading (println! would panic on a closed pipe).
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    wait_for_signal().await?;
    drop(shared);
    Ok(())
}

/// Until SIGINT or SIGTERM.
pub async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// sat/vB as sat per 1000 weight units, refusing 0 and absurd rates.
pub fn feerate_from_sat_per_vb(sat_per_vb: u32) -> anyhow::Result<beongae_script::FeeratePerKw> {
    if sat_per_vb == 0 || sat_per_vb > 100_000 {
        bail!("choose a feerate between 1 and 100000 sat/vB");
    }
    Ok(beongae_script::FeeratePerKw(sat_per_vb * 250))
}

/// A fee spike (or calm) on the devnet.
pub fn feerate(loc: &Location, sat_per_vb: u32) -> anyhow::Result<serde_json::Value> {
    let per_kw = feerate_from_sat_per_vb(sat_per_vb)?;
    loc.open()?.spike(per_kw)?;
    Ok(serde_json::json!({"sat_per_vb": sat_per_vb, "sat_per_kw": per_kw.0}))
}

/// Mines `n` blocks, to `address` or the faucet.
pub fn mine(loc: &Location, n: u32, address: Option<&str>) -> anyhow::Result<serde_json::Value> {
    if n == 0 || n > 10_000 {
        bail!("choose between 1 and 10000 blocks");
    }
    let address = address.map(regtest_address).transpose()?;
    let devnet = loc.open()?;
    let hashes = devnet.mine(n, address.as_ref())?;
    let (height, _) = devnet.tip()?;
    Ok(serde_json::json!({
        "height": height,
        "blocks": hashes.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    }))
}

/// Pays `sat` from the faucet to `address`, in a new block.
pub fn fund(loc: &Location, address: &str, sat: u64) -> anyhow::Result<serde_json::Value> {
    let address = regtest_address(address)?;
    let devnet = loc.open()?;
    let txid = devnet.fund(&address, Amount::from_sat(sat))?;
    let (height, _) = devnet.tip()?;
    Ok(serde_json::json!({
        "address": address.to_string(),
        "amount_sat": sat,
        "txid": txid.to_string(),
        "height": height,
    }))
}

/// Where the devnet is served, its height, mempool and faucet.
pub fn info(loc: &Location) -> anyhow::Result<serde_json::Value> {
    let devnet = loc.open()?;
    let mut v = devnet.info()?;
    v["rpc_url"] = devnet.url().into();
    v["cookie_file"] = devnet.cookie().display().to_string().into();
    v["directory"] = loc.dir.display().to_string().into();
    Ok(v)
}

/// Prints each new block (height, hash, transactions, time) as it comes,
/// and says so when a reorganisation replaces blocks it printed, until
/// interrupted.
pub async fn watch(loc: &Location) -> anyhow::Result<()> {
    let l = loc.clone();
    let devnet = tokio::task::spawn_blocking(move || l.open()).await??;
    let d = devnet.clone();
    let tip = tokio::task::spawn_blocking(move || d.tip()).await??;
    println!("height {} (tip {}); waiting for blocks", tip.0, tip.1);
    // The blocks printed (or seen at start), by height: the last 100.
    let mut printed = std::collections::BTreeMap::from([tip]);
    loop {
        tokio::select! {
            r = wait_for_signal() => return r,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let d = devnet.clone();
        let known = printed.clone();
        let (fork, blocks) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let tip = d.tip()?;
            // The highest block printed that is still on the chain.
            let mut fork = None;
            for (&h, hash) in known.iter().rev() {
                if h <= tip.0 && d.block_hash(h)? == Some(*hash) {
                    fork = Some(h);
                    break;
                }
            }
            let from = fork.map_or(tip.0, |h| h + 1);
            let mut blocks = Vec::new();
            for height in from..=tip.0 {
                let Some(hash) = d.block_hash(height)? else {
                    break;
                };
                let Some(b) = d.block(&hash)? else { break };
                blocks.push((height, hash, b.txdata.len(), b.header.time));
            }
            Ok((fork, blocks))
        })
        .await??;
        let last = printed.keys().next_back().copied().unwrap_or(0);
        if let Some(fork) = fork.filter(|f| *f < last) {
            println!("reorganisation: blocks above {fork} were replaced");
        }
        if let Some(fork) = fork {
            printed.retain(|h, _| *h <= fork);
        }
        for (height, hash, txs, time) in blocks {
            println!(
                "block {height} {hash} {txs} tx{} {}",
                if txs == 1 { "" } else { "s" },
                format_time(time)
            );
            printed.insert(height, hash);
        }
        while printed.len() > 100 {
            printed.pop_first();
        }
    }
}

/// Seconds since 1970 as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_time(secs: u32) -> String {
    let days = i64::from(secs / 86_400);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
