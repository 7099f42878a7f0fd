//! `beongae daemon`: identity from the seed, the peer node, the chain and
//! the wallet, and the HTTP API.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use beongae_chain::rpc::{Auth, Bitcoind};
use beongae_chain::ChainSource;
use beongae_node::embedded::{self, EmbeddedConfig};
use beongae_wallet::Seed;
use bitcoin::secp256k1::rand;

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
    /// The shared devnet (with `--network devnet`).
    pub devnet: crate::devnet::Location,
    /// Bitcoin Core access.
    pub bitcoind: BitcoindOpts,
    /// The API's address (none: loopback, at the peer port plus 100).
    pub api_listen: Option<SocketAddr>,
    /// Serve the API as plain HTTP (loopback only) instead of TLS.
    pub api_http: bool,
    /// Host names and addresses the API's certificate is made for, besides
    /// localhost.
    pub api_tls_names: Vec<String>,
    /// What the node announces (alias, colour, addresses).
    pub gossip: beongae_node::core::channels::gossip::GossipSettings,
    /// A PostgreSQL URL (none: SQLite in the data directory).
    pub store: Option<String>,
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

/// What a new node's wallet is given from the devnet's faucet.
const DEVNET_FIRST_FUNDS: bitcoin::Amount = bitcoin::Amount::from_sat(1_000_000_000);

/// The file that says a data directory's wallet had its first funds from
/// the devnet faucet.
const FUNDED_MARK: &str = "devnet-funded";

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

/// Runs the daemon until SIGINT/SIGTERM.
pub async fn run(datadir: &Path, opts: DaemonOpts) -> anyhow::Result<()> {
    // The chain: an embedded devnet or Bitcoin Core. A node without one
    // could not open, watch or close a channel: it does not start (checked
    // before anything is written, a seed included).
    let devnet = matches!(opts.network, Network::Devnet);
    match (devnet, &opts.bitcoind.url) {
        (true, Some(_)) => {
            bail!("--bitcoind-rpc does not go with --network devnet (beongae serves the devnet itself); for a Bitcoin Core regtest node use --network regtest")
        }
        (false, None) => bail!(
            "--network {} needs a chain: add --bitcoind-rpc URL with --bitcoind-cookie FILE (or --bitcoind-user and --bitcoind-password), or use --network devnet",
            opts.network.name()
        ),
        _ => {}
    }
    // A data directory from before the devnet was shared keeps a chain of
    // its own, which its channels and coins are on: say how to go on
    // rather than start on a chain where none of them exist.
    let private = crate::devnet::private_chain_dir(datadir);
    if devnet && private.join("blocks.dat").exists() {
        bail!(
            "{} holds a private devnet chain from an older version (its channels and coins are on that chain). Every devnet daemon now shares one chain, in {}. To keep this node's chain, make it the shared one (when that directory does not exist yet): mv {} {}; or start this node afresh: remove {} (or choose a new --datadir)",
            private.display(),
            opts.devnet.dir.display(),
            private.display(),
            opts.devnet.dir.display(),
            datadir.display(),
        );
    }
    std::fs::create_dir_all(datadir)
        .with_context(|| format!("creating data directory {}", datadir.display()))?;
    let seed = load_or_create_seed(datadir)?;
    // One daemon per data directory: checked before the chain is touched.
    // The lock goes when the process does, however it ends.
    let lock_path = datadir.join("daemon.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "another beongae daemon is already running with data directory {}",
            datadir.display()
        );
    }
    let api_listen = api_address(&opts)?;
    let btc_network = opts.network.bitcoin_network();

    let mut shared = None;
    let chain: Arc<dyn ChainSource> = match &opts.bitcoind.url {
        None => {
            // Serve the devnet if no process does, or use the one that does.
            let loc = opts.devnet.clone();
            let devnet = tokio::task::spawn_blocking(move || loc.open()).await??;
            if opts.block_interval > 0 {
                devnet.mine_every(Duration::from_secs(opts.block_interval));
            }
            shared = Some(devnet.clone());
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
    // The node: its store in the data directory, its wallet from the seed.
    let mut cfg = EmbeddedConfig::new(datadir, btc_network);
    cfg.listen = Some(opts.listen);
    cfg.core_seed = rand::random();
    cfg.store = opts.store.clone();
    cfg.settings.gossip = opts.gossip.clone();
    cfg.chain_poll = match opts.network {
        Network::Devnet => Duration::from_millis(200),
        Network::Regtest => Duration::from_millis(500),
        _ => Duration::from_secs(5),
    };
    let embedded::Embedded { node, onchain } = embedded::start(&seed, chain, cfg).await?;
    // A new node on the devnet starts with coins from the faucet, once.
    let mut funded = None;
    if let Some(devnet) = shared
        .clone()
        .filter(|_| !datadir.join(FUNDED_MARK).exists())
    {
        let address = onchain.new_address();
        let r =
            tokio::task::spawn_blocking(move || devnet.fund(&address, DEVNET_FIRST_FUNDS)).await?;
        match r {
            Ok(txid) => {
                std::fs::write(datadir.join(FUNDED_MARK), txid.to_string())?;
                funded = Some(txid);
            }
            Err(e) => eprintln!(
                "warning: the devnet faucet did not fund the wallet ({e}); try `beongae devnet fund 1btc`"
            ),
        }
    }
    let listen_addr = node.listen_addr();
    let (tokens, tls) = api_setup(datadir, &opts)?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let ctx = Arc::new(beongae_api::ApiContext {
        node: node.handle(),
        onchain,
        devnet: shared.clone(),
        network: opts.network.name(),
        listen: listen_addr,
        tokens,
        stop: stop_tx,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        build: option_env!("BEONGAE_BUILD").map(str::to_owned),
    });
    let api = beongae_api::serve(beongae_api::router(ctx), api_listen, tls).await?;
    // The node's events in the log, as sentences.
    let mut events = node.handle().subscribe();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(e) => {
                    let v =
                        serde_json::to_value(beongae_api::EventView::from(e)).unwrap_or_default();
                    tracing::info!(target: "beongae::events", "{}", crate::human::event(&v));
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(target: "beongae::events", "{n} events not logged (the log fell behind)")
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    // Signals are caught from here on: a stop asked for after the banner
    // is always a graceful one.
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
    );
    let url_file = beongae_api::url_path(datadir);
    write_private(&url_file, api.url.as_bytes())?;
    // The daemon keeps running if whoever started it stops reading stdout.
    let mut banner = format!("node id: {}\n", node.node_id());
    if let Some(addr) = listen_addr {
        banner += &format!(
            "listening on: {addr}\nconnect with: {}@{addr}\n",
            node.node_id()
        );
    }
    if let Some(devnet) = &shared {
        banner += &format!(
            "devnet: {} at {}{}\n",
            devnet.dir().display(),
            devnet.url(),
            if devnet.is_serving() {
                " (served by this daemon)"
            } else {
                ""
            }
        );
    }
    banner += &format!("API: {}\n", api.url);
    if let Some(txid) = funded {
        banner += &format!(
            "wallet funded with {} from the devnet faucet ({txid})\n",
            crate::human::sat(DEVNET_FIRST_FUNDS.to_sat())
        );
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());
    drop(stdout);

    let handle = node.handle();
    let failed = tokio::select! {
        _ = int.recv() => None,
        _ = term.recv() => None,
        _ = stop_rx.wait_for(|s| *s) => None,
        // The node stopped on its own: its store failed, or another
        // instance took over the database.
        why = handle.stopped() => Some(why.unwrap_or_else(|| "the node stopped".into())),
    };
    if let Some(why) = failed {
        let _ = std::fs::remove_file(&url_file);
        drop(api);
        node.shutdown().await;
        drop(shared);
        drop(lock);
        bail!("{why}");
    }
    eprintln!("shutting down");
    // No new requests, then the node's tasks end (every state change was
    // committed before anything that depended on it went out; a commit
    // under way completes in its thread), then the devnet and the lock.
    let _ = std::fs::remove_file(&url_file);
    drop(api);
    node.shutdown().await;
    drop(shared);
    drop(lock);
    eprintln!("stopped");
    Ok(())
}

/// Where the API listens: `--api-listen`, or loopback at the peer port
/// plus 100 (so that several nodes on one machine need no flags).
fn api_address(opts: &DaemonOpts) -> anyhow::Result<SocketAddr> {
    if let Some(a) = opts.api_listen {
        if opts.api_http && !a.ip().is_loopback() {
            // Checked before anything starts.
            return Err(beongae_api::ServeError::PlainNotLoopback(a).into());
        }
        return Ok(a);
    }
    let port = match opts.listen.port() {
        0 => 0,
        p => p.checked_add(100).ok_or_else(|| {
            anyhow::anyhow!(
                "the peer port {p} leaves no room for the API at port+100: give --api-listen"
            )
        })?,
    };
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The API's files (`DATADIR/api`, mode 0700), its tokens with the admin
/// token the CLI uses (made at first start), and its TLS configuration.
fn api_setup(
    datadir: &Path,
    opts: &DaemonOpts,
) -> anyhow::Result<(
    beongae_api::TokenStore,
    Option<Arc<beongae_api::tls::ServerConfig>>,
)> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = beongae_api::api_dir(datadir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let tokens = beongae_api::TokenStore::open(&dir.join("tokens.json"))?;
    let admin = beongae_api::admin_token_path(datadir);
    if !admin.exists() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let random: [u8; 40] = std::array::from_fn(|_| rand::random());
        let (token, _) = tokens.create(
            "admin (api/admin.token)",
            beongae_api::Scope::Admin,
            now,
            random,
        )?;
        write_private(&admin, token.as_bytes())?;
    }
    let tls = if opts.api_http {
        None
    } else {
        Some(beongae_api::tls::load_or_create(&dir, &opts.api_tls_names)?)
    };
    Ok((tokens, tls))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
