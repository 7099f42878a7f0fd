//! `beongae daemon`: identity from the seed, the peer node, the chain and
//! the wallet, and the control socket.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use beongae_chain::devnet::Devnet;
use beongae_chain::rpc::{Auth, Bitcoind};
use beongae_chain::ChainSource;
use beongae_node::embedded::{self, EmbeddedConfig};
use beongae_wallet::{OnchainWallet, Seed};
use bitcoin::secp256k1::rand;
use bitcoin::ScriptBuf;

use crate::control::{self, Ctx};
use crate::devnet::devnet_dir;
use crate::Network;

/// How the daemon reaches Bitcoin Core, if it does.
#[derive(Debug, Clone, Default)]
pub struct BitcoindOpts {
    /// RPC URL.
    pub url: Option<String>,
    /// Cookie file.
    pub cookie: Option<std::path::PathBuf>,
    /// User and password.
    pub user_pass: Option<(String, String)>,
}

/// Daemon settings from the command line.
#[derive(Debug, Clone)]
pub struct DaemonOpts {
    /// Peer listen address.
    pub listen: SocketAddr,
    /// Network.
    pub network: Network,
    /// Devnet block interval in seconds (0: none).
    pub block_interval: u64,
    /// Bitcoin Core access.
    pub bitcoind: BitcoindOpts,
    /// What the node announces (alias, colour, addresses).
    pub gossip: beongae_node::core::channels::gossip::GossipSettings,
}

/// The gossip settings from `--alias`, `--color` and `--announce-addr`,
/// each checked with a message that says what to change.
pub fn gossip_settings(
    alias: &str,
    color: &str,
    addresses: &[String],
) -> anyhow::Result<beongae_node::core::channels::gossip::GossipSettings> {
    if alias.len() > 32 {
        bail!(
            "--alias is {} bytes long: BOLT 7 allows at most 32 bytes",
            alias.len()
        );
    }
    let rgb = hex::decode(color)
        .ok()
        .and_then(|b| <[u8; 3]>::try_from(b).ok())
        .ok_or_else(|| anyhow::anyhow!("--color `{color}`: expected 6 hex digits, e.g. 3399ff"))?;
    let addresses = addresses
        .iter()
        .map(|a| {
            beongae_node::address::announce_address(a)
                .map_err(|e| anyhow::anyhow!("--announce-addr: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let hostnames = addresses
        .iter()
        .filter(|a| matches!(a, beongae_wire::NetAddress::Hostname { .. }))
        .count();
    if hostnames > 1 {
        bail!("--announce-addr: at most one host name may be announced (BOLT 7), got {hostnames}");
    }
    Ok(beongae_node::core::channels::gossip::GossipSettings {
        alias: alias.to_owned(),
        color: rgb,
        addresses,
        ..Default::default()
    })
}

/// The seed in `datadir`, created (mode 0600) if there is none.
pub fn load_or_create_seed(datadir: &Path) -> anyhow::Result<Seed> {
    let path = datadir.join("seed");
    if path.exists() {
        return Ok(Seed::load(&path)?);
    }
    let seed = Seed::from_entropy(rand::random());
    seed.save(&path)?;
    eprintln!(
        "created a new seed in {} (mode 0600): its words restore this node and its funds; back the file up",
        path.display()
    );
    Ok(seed)
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

fn save_devnet(devnet: &Mutex<Devnet>, dir: &Path) {
    let d = devnet.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = d.save(dir) {
        tracing::error!(error = %e, "saving the devnet");
    }
}

/// Runs the daemon until SIGINT/SIGTERM.
pub async fn run(datadir: &Path, opts: DaemonOpts) -> anyhow::Result<()> {
    // The chain: an embedded devnet or Bitcoin Core. A node without one
    // could not open, watch or close a channel: it does not start (checked
    // before anything is written, a seed included).
    let devnet = matches!(opts.network, Network::Devnet);
    match (devnet, &opts.bitcoind.url) {
        (true, Some(_)) => {
            bail!("--bitcoind-rpc does not go with --network devnet (the devnet is embedded)")
        }
        (false, None) => bail!(
            "--network {} needs a chain: add --bitcoind-rpc URL with --bitcoind-cookie FILE (or --bitcoind-user and --bitcoind-password), or use --network devnet",
            opts.network.name()
        ),
        _ => {}
    }
    std::fs::create_dir_all(datadir)
        .with_context(|| format!("creating data directory {}", datadir.display()))?;
    let seed = load_or_create_seed(datadir)?;
    let btc_network = opts.network.bitcoin_network();
    let master = seed.master_key(btc_network.into());

    let mut devnet_handle = None;
    let chain: Arc<dyn ChainSource> = match &opts.bitcoind.url {
        None => {
            let dir = devnet_dir(datadir);
            let mut devnet = Devnet::load(&dir)?;
            if devnet.height() == 0 {
                // First start: 101 blocks to our wallet, so 50 BTC are spendable.
                let address = OnchainWallet::new(&master, btc_network)?.new_address();
                devnet.mine(101, &address.script_pubkey(), now());
                devnet.save(&dir)?;
            }
            let devnet = Arc::new(Mutex::new(devnet));
            devnet_handle = Some((devnet.clone(), dir));
            devnet
        }
        Some(url) => {
            let auth = match (&opts.bitcoind.cookie, &opts.bitcoind.user_pass) {
                (Some(c), _) => Auth::Cookie(c.clone()),
                (None, Some((u, p))) => Auth::UserPass(u.clone(), p.clone()),
                (None, None) => bail!(
                    "--bitcoind-rpc needs --bitcoind-cookie or --bitcoind-user/--bitcoind-password"
                ),
            };
            let rpc = Arc::new(Bitcoind::new(url, auth));
            let r = rpc.clone();
            let name = tokio::task::spawn_blocking(move || r.chain()).await??;
            let expected = opts.network.bitcoind_chain_name();
            if name != expected {
                bail!("bitcoind at {url} is on `{name}`, but --network asks for `{expected}`");
            }
            rpc
        }
    };
    if let (Some((devnet, dir)), true) = (&devnet_handle, opts.block_interval > 0) {
        let (devnet, dir, secs) = (devnet.clone(), dir.clone(), opts.block_interval);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(secs));
            devnet.lock().unwrap_or_else(|p| p.into_inner()).mine(
                1,
                &ScriptBuf::new_op_return([0u8; 0]),
                now(),
            );
            save_devnet(&devnet, &dir);
        });
    }

    let control_listener = control::bind(datadir).await?;
    // The node: its store in the data directory, its wallet from the seed.
    let mut cfg = EmbeddedConfig::new(datadir, btc_network);
    cfg.listen = Some(opts.listen);
    cfg.core_seed = rand::random();
    cfg.settings.gossip = opts.gossip.clone();
    cfg.chain_poll = match opts.network {
        Network::Devnet => Duration::from_millis(200),
        Network::Regtest => Duration::from_millis(500),
        _ => Duration::from_secs(5),
    };
    cfg.after_broadcast = devnet_handle.clone().map(|(d, dir)| {
        Box::new(move || save_devnet(&d, &dir)) as beongae_node::onchain::AfterChange
    });
    let embedded::Embedded { node, onchain } = embedded::start(&seed, chain, cfg).await?;
    let listen_addr = node.listen_addr();
    // The daemon keeps running if whoever started it stops reading stdout.
    let mut banner = format!("node id: {}\n", node.node_id());
    if let Some(addr) = listen_addr {
        banner += &format!(
            "listening on: {addr}\nconnect with: {}@{addr}\n",
            node.node_id()
        );
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());
    drop(stdout);
    let ctx = Ctx {
        node: node.handle(),
        listen: listen_addr,
        onchain,
        devnet: devnet_handle,
    };
    let server = tokio::spawn(control::serve(control_listener, Arc::new(ctx)));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("shutting down");
    server.abort();
    node.stop();
    let _ = std::fs::remove_file(control::socket_path(datadir));
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
