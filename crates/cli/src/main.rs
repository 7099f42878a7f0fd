//! `beongae`: the Lightning node daemon and its command-line client.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use beongae_node::core::CoreConfig;
use beongae_node::runtime::{Node, NodeConfig};
use beongae_wire::ChainHash;
use bitcoin::secp256k1::{rand, SecretKey};
use clap::{Parser, Subcommand, ValueEnum};

mod control;
mod devnet;

use control::Request;

/// Beongae (번개): a Lightning Network node.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Data directory (node key, control socket).
    #[arg(long, global = true, env = "BEONGAE_DATADIR", default_value_os_t = default_datadir())]
    datadir: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the node.
    Daemon {
        /// Address to accept peer connections on.
        #[arg(long, default_value = "127.0.0.1:9735")]
        listen: SocketAddr,
        /// Bitcoin network the node works on.
        #[arg(long, value_enum, default_value_t = Network::Regtest)]
        network: Network,
    },
    /// Node id and listen address of the running daemon.
    Info,
    /// Connect to a peer: NODE_ID@HOST:PORT.
    Connect {
        /// NODE_ID@HOST:PORT
        address: String,
    },
    /// List connected peers.
    Peers,
    /// Disconnect a peer.
    Disconnect {
        /// The peer's node id.
        node_id: String,
    },
    /// The devnet: an embedded regtest chain shared over JSON-RPC.
    Devnet {
        #[command(subcommand)]
        command: DevnetCmd,
    },
    /// Ping a peer and wait for its pong.
    Ping {
        /// The peer's node id.
        node_id: String,
        /// Bytes to ask for in the pong (0 to 65531).
        #[arg(long, default_value_t = 0)]
        bytes: u16,
    },
}

#[derive(Subcommand, Debug)]
enum DevnetCmd {
    /// Serve a devnet (kept in DATADIR/devnet) over Bitcoin Core's JSON-RPC.
    Serve {
        /// Address for the RPC server.
        #[arg(long, default_value = "127.0.0.1:18443")]
        rpc: SocketAddr,
        /// RPC user (default: a cookie file in DATADIR/devnet/.cookie).
        #[arg(long, requires = "rpcpassword")]
        rpcuser: Option<String>,
        /// RPC password.
        #[arg(long, requires = "rpcuser")]
        rpcpassword: Option<String>,
        /// Mine a block every this many seconds (0: only on request).
        #[arg(long, default_value_t = 0)]
        block_interval: u64,
        /// Address the interval blocks pay to (default: unspendable).
        #[arg(long)]
        mine_to: Option<String>,
    },
    /// Mine blocks on a served devnet.
    Mine {
        /// How many blocks.
        blocks: u32,
        /// Regtest address for the coinbase rewards.
        #[arg(long)]
        address: String,
        /// RPC URL of the devnet.
        #[arg(long, default_value = "http://127.0.0.1:18443")]
        rpc: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Network {
    Bitcoin,
    Testnet,
    Signet,
    Regtest,
}

impl Network {
    fn chain_hash(self) -> ChainHash {
        match self {
            Network::Bitcoin => ChainHash::BITCOIN,
            Network::Testnet => ChainHash::TESTNET3,
            Network::Signet => ChainHash::SIGNET,
            Network::Regtest => ChainHash::REGTEST,
        }
    }
}

fn default_datadir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".beongae"),
        |h| PathBuf::from(h).join(".beongae"),
    )
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let datadir = cli.datadir;
    let request = match cli.command {
        Cmd::Daemon { listen, network } => return daemon(&datadir, listen, network).await,
        Cmd::Devnet { command } => {
            return tokio::task::spawn_blocking(move || match command {
                DevnetCmd::Serve {
                    rpc,
                    rpcuser,
                    rpcpassword,
                    block_interval,
                    mine_to,
                } => devnet::serve(
                    &datadir,
                    rpc,
                    rpcuser.zip(rpcpassword),
                    Some(block_interval),
                    mine_to,
                ),
                DevnetCmd::Mine {
                    blocks,
                    address,
                    rpc,
                } => devnet::mine(&datadir, &rpc, blocks, &address),
            })
            .await?;
        }
        Cmd::Info => Request::GetInfo,
        Cmd::Connect { address } => {
            // Check the syntax here so a typo never needs a running daemon to be reported.
            address.parse::<beongae_node::address::PeerAddress>()?;
            Request::Connect { address }
        }
        Cmd::Peers => Request::Peers,
        Cmd::Disconnect { node_id } => Request::Disconnect { node_id },
        Cmd::Ping { node_id, bytes } => Request::Ping {
            node_id,
            num_pong_bytes: bytes,
        },
    };
    let result = control::call(&datadir, &request).await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

async fn daemon(datadir: &Path, listen: SocketAddr, network: Network) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BEONGAE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    std::fs::create_dir_all(datadir)
        .with_context(|| format!("creating data directory {}", datadir.display()))?;
    let key = beongae_node::identity::load_or_create(&datadir.join("node_key"), || {
        SecretKey::new(&mut rand::thread_rng())
    })?;
    let control = control::bind(datadir).await?;
    let mut config = NodeConfig::new(CoreConfig::new(network.chain_hash()));
    config.listen = Some(listen);
    config.core.seed = rand::random();
    let node = Node::start(key, config).await?;
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
    let server = tokio::spawn(control::serve(control, node.handle(), listen_addr));

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
