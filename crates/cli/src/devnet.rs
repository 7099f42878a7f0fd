//! `beongae devnet serve` and `beongae devnet mine`: a devnet shared by
//! several processes over Bitcoin Core's JSON-RPC.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use beongae_chain::devnet::Devnet;
use beongae_chain::rpc::{serve_devnet, write_cookie, Auth, Bitcoind};
use bitcoin::{Address, Network, ScriptBuf};

/// Where a data directory keeps its devnet.
pub fn devnet_dir(datadir: &Path) -> PathBuf {
    datadir.join("devnet")
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Parses a regtest address, with an error that says what to change.
pub fn regtest_address(s: &str) -> anyhow::Result<Address> {
    let a = Address::from_str(s).with_context(|| format!("`{s}` is not a bitcoin address"))?;
    a.require_network(Network::Regtest).map_err(|_| {
        anyhow::anyhow!("`{s}` is not a regtest address (regtest addresses start with bcrt1)")
    })
}

/// Runs the RPC server until interrupted.
pub fn serve(
    datadir: &Path,
    rpc: std::net::SocketAddr,
    user_pass: Option<(String, String)>,
    block_interval: Option<u64>,
    mine_to: Option<String>,
) -> anyhow::Result<()> {
    let dir = devnet_dir(datadir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let devnet = Devnet::load(&dir)?;
    let auth = match user_pass {
        Some((u, p)) => Auth::UserPass(u, p),
        None => write_cookie(&dir.join(".cookie")).with_context(|| "writing the RPC cookie")?,
    };
    let mine_to = match mine_to {
        Some(a) => regtest_address(&a)?.script_pubkey(),
        // Interval blocks pay to an unspendable output unless told otherwise.
        None => ScriptBuf::new_op_return([0u8; 0]),
    };
    let height = devnet.height();
    let devnet = Arc::new(Mutex::new(devnet));
    let save_dir = dir.clone();
    let on_change = Box::new(move |d: &Devnet| {
        if let Err(e) = d.save(&save_dir) {
            eprintln!("error: saving the devnet: {e}");
        }
    });
    let server = serve_devnet(devnet.clone(), rpc, auth.clone(), Some(on_change))
        .with_context(|| format!("cannot serve RPC on {rpc} (is a bitcoind or another devnet using it? choose another with --rpc)"))?;
    let mut banner = format!(
        "devnet RPC on http://{} (regtest, height {height})\n",
        server.addr()
    );
    match &auth {
        Auth::Cookie(p) => banner += &format!("cookie file: {}\n", p.display()),
        Auth::UserPass(u, _) => banner += &format!("rpc user: {u}\n"),
    }
    // One write, and the server keeps running if whoever started it stops
    // reading (println! would panic on a closed pipe).
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    if let Some(secs) = block_interval.filter(|s| *s > 0) {
        let dir = dir.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(secs));
            let mut d = devnet.lock().unwrap_or_else(|p| p.into_inner());
            d.mine(1, &mine_to, now());
            if let Err(e) = d.save(&dir) {
                eprintln!("error: saving the devnet: {e}");
            }
        });
    }
    server.join();
    Ok(())
}

/// sat/vB as sat per 1000 weight units, refusing 0 and absurd rates.
pub fn feerate_from_sat_per_vb(sat_per_vb: u32) -> anyhow::Result<beongae_script::FeeratePerKw> {
    if sat_per_vb == 0 || sat_per_vb > 100_000 {
        bail!("choose a feerate between 1 and 100000 sat/vB");
    }
    Ok(beongae_script::FeeratePerKw(sat_per_vb * 250))
}

/// Sets a served devnet's fee estimate and block floor.
pub fn feerate(datadir: &Path, url: &str, sat_per_vb: u32) -> anyhow::Result<()> {
    let per_kw = feerate_from_sat_per_vb(sat_per_vb)?;
    let cookie = devnet_dir(datadir).join(".cookie");
    let rpc = Bitcoind::new(url, Auth::Cookie(cookie));
    rpc.devnet_set_feerate(per_kw)?;
    println!("{sat_per_vb} sat/vB ({} sat/kW)", per_kw.0);
    Ok(())
}

/// Mines `n` blocks on a served devnet.
pub fn mine(datadir: &Path, url: &str, n: u32, address: &str) -> anyhow::Result<()> {
    if n == 0 || n > 10_000 {
        bail!("choose between 1 and 10000 blocks");
    }
    let address = regtest_address(address)?;
    let cookie = devnet_dir(datadir).join(".cookie");
    let rpc = Bitcoind::new(url, Auth::Cookie(cookie));
    let hashes = rpc.generate_to_address(n, &address)?;
    for h in hashes {
        println!("{h}");
    }
    Ok(())
}
