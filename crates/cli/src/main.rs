//! `beongae`: the Lightning node daemon and its command-line client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use beongae_wire::ChainHash;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};

mod config;
mod daemon;
mod decode;
mod demo;
mod devnet;
mod human;
mod logging;

use beongae_api::client::ApiClient;
use serde_json::json;

/// Beongae (번개): a Lightning Network node.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Data directory (seed, store, wallet, API files).
    #[arg(long, global = true, env = "BEONGAE_DATADIR", default_value_os_t = default_datadir())]
    datadir: PathBuf,
    /// The settings file (TOML; default DATADIR/beongae.toml): flags and
    /// their environment variables win over it.
    #[arg(long, global = true, env = "BEONGAE_CONFIG")]
    config: Option<PathBuf>,
    /// The devnet every `--network devnet` daemon on this machine shares
    /// (its chain, and the lock, cookie and RPC URL of whoever serves it).
    #[arg(long, global = true, env = "BEONGAE_DEVNET_DIR", default_value_os_t = devnet::default_dir())]
    devnet_dir: PathBuf,
    /// Where the devnet's Bitcoin Core JSON-RPC is served, by whichever
    /// process serves it (the first daemon, or `devnet serve`).
    #[arg(long, global = true, env = "BEONGAE_DEVNET_RPC", default_value_t = devnet::default_rpc())]
    devnet_rpc: SocketAddr,
    /// Print the API's JSON (the default when the output is not a terminal).
    #[arg(long, global = true)]
    json: bool,
    /// human (tables, amounts in sat, dates; the default on a terminal) or json.
    #[arg(long, global = true, value_enum, env = "BEONGAE_OUTPUT")]
    output: Option<human::Output>,
    #[command(subcommand)]
    command: Cmd,
}

// Parsed once per process: the daemon's many settings cost nothing to keep inline.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the node.
    Daemon {
        /// Address to accept peer connections on.
        #[arg(long, env = "BEONGAE_LISTEN", default_value = "127.0.0.1:9735")]
        listen: SocketAddr,
        /// Bitcoin network: `devnet` is a regtest chain that every devnet
        /// daemon on this machine shares, served by the first (see
        /// `--devnet-dir`).
        #[arg(long, env = "BEONGAE_NETWORK", value_enum, default_value_t = Network::Devnet)]
        network: Network,
        /// Devnet: while this daemon serves the devnet, mine a block every
        /// this many seconds (0: only on request).
        #[arg(long, env = "BEONGAE_BLOCK_INTERVAL", default_value_t = 10)]
        block_interval: u64,
        /// Bitcoin Core JSON-RPC URL (not with devnet).
        #[arg(long, env = "BEONGAE_BITCOIND_RPC")]
        bitcoind_rpc: Option<String>,
        /// Bitcoin Core cookie file.
        #[arg(long, env = "BEONGAE_BITCOIND_COOKIE")]
        bitcoind_cookie: Option<PathBuf>,
        /// Bitcoin Core RPC user.
        #[arg(long, env = "BEONGAE_BITCOIND_USER", requires = "bitcoind_password")]
        bitcoind_user: Option<String>,
        /// Bitcoin Core RPC password.
        #[arg(long, env = "BEONGAE_BITCOIND_PASSWORD", requires = "bitcoind_user")]
        bitcoind_password: Option<String>,
        /// The name this node announces with its public channels (UTF-8, at most 32 bytes).
        #[arg(long, env = "BEONGAE_ALIAS", default_value = "")]
        alias: String,
        /// The colour it announces, as 6 hex digits (e.g. 3399ff).
        #[arg(long, env = "BEONGAE_COLOR", default_value = "3399ff")]
        color: String,
        /// An address where peers can reach this node, announced with its
        /// public channels: IP:PORT or HOST:PORT (repeat for several; one
        /// host name at most).
        #[arg(long = "announce-addr")]
        announce_addr: Vec<String>,
        /// Where the HTTP API listens (default: 127.0.0.1 at the peer port
        /// plus 100, e.g. 9835). The URL goes to DATADIR/api/url, the CLI's
        /// admin token to DATADIR/api/admin.token.
        #[arg(long, env = "BEONGAE_API_LISTEN")]
        api_listen: Option<SocketAddr>,
        /// Serve the API as plain HTTP, on a loopback address only
        /// (default: TLS with the self-signed DATADIR/api/tls.cert).
        #[arg(long, env = "BEONGAE_API_HTTP")]
        api_http: bool,
        /// A host name or address the API's certificate is made for besides
        /// localhost (repeat for several; only when the certificate is made).
        #[arg(long = "api-tls-name")]
        api_tls_names: Vec<String>,
        /// Where channels and payments are kept: `sqlite` (the file
        /// DATADIR/beongae.sqlite) or a PostgreSQL URL,
        /// postgres://USER:PASSWORD@HOST:PORT/DATABASE.
        #[arg(long, env = "BEONGAE_STORE", default_value = "sqlite")]
        store: String,
    },
    /// Create the node's seed and show its 24 words (once), or restore one.
    Init {
        /// Restore from words read from standard input.
        #[arg(long)]
        restore: bool,
    },
    /// A new on-chain receiving address.
    Newaddress {
        /// Address type: p2wpkh or p2tr.
        #[arg(long = "type")]
        kind: Option<String>,
    },
    /// On-chain balance.
    Balance,
    /// Pay to an on-chain address: AMOUNT in satoshi (50000), with a unit
    /// (0.0005btc), or `all` (everything but the fee and the reserve kept for
    /// anchor channels' force closes).
    Send {
        /// Destination address.
        address: String,
        /// Amount, or `all`.
        amount: String,
        /// Feerate in sat/vB (default: the chain's estimate).
        #[arg(long)]
        feerate: Option<u64>,
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
    /// The devnet: a regtest chain shared by every devnet daemon on this
    /// machine, with a faucet.
    Devnet {
        #[command(subcommand)]
        command: DevnetCmd,
    },
    /// The store: copy a stopped node's channels and payments to another.
    Store {
        #[command(subcommand)]
        command: StoreCmd,
    },
    /// Two nodes on an embedded devnet: open a channel, pay both ways, close.
    Demo,
    /// Decode and check a BOLT 11 invoice (offline; no daemon needed).
    Decode {
        /// The invoice (`lnbc…`, `lntb…`, `lntbs…`, `lnbcrt…`).
        invoice: String,
    },
    /// Open a channel to a connected peer: AMOUNT in satoshi, with a unit,
    /// or `all` (everything the wallet holds but the funding's fee and the
    /// reserve kept for anchor channels' force closes).
    Openchannel {
        /// The peer's node id.
        peer: String,
        /// Channel capacity (e.g. 1000000 or 0.01btc), or `all`.
        amount: String,
        /// Give the peer this much at opening: satoshi, or with a unit
        /// (1500msat, 0.001btc).
        #[arg(long = "push-sat")]
        push: Option<String>,
        /// Announce the channel to the network once six blocks deep, so
        /// that anyone can pay through it (default: private, known to the
        /// peer only and named in our invoices' route hints).
        #[arg(long)]
        public: bool,
        /// Wait until the channel is open (its funding confirmed), with
        /// progress, and show it.
        #[arg(long)]
        wait: bool,
    },
    /// List channels: balances, and what each can send and receive now.
    Channels,
    /// Close a channel cooperatively, or with --force by broadcasting our commitment.
    Closechannel {
        /// The channel id (64 hex characters, or enough of its start to
        /// name one channel, as `channels` shows).
        channel_id: String,
        /// Broadcast our latest commitment instead of closing with the peer
        /// (our funds wait for `to_self_delay` blocks); a channel we
        /// opened whose funding has not confirmed is abandoned instead,
        /// its coins spent back to the wallet.
        #[arg(long)]
        force: bool,
        /// Wait until the closing transaction confirms, with progress.
        #[arg(long)]
        wait: bool,
    },
    /// The HTLCs this node forwarded, with the fees earned.
    Forwards,
    /// Set the fees and CLTV delta this node forwards with, on one channel
    /// or (without --channel) on every open channel.
    Setpolicy {
        /// The channel id (64 hex characters); all open channels if absent.
        #[arg(long)]
        channel: Option<String>,
        /// Base fee per forwarded HTLC, in millisatoshi.
        #[arg(long, default_value_t = 1_000)]
        base_fee_msat: u32,
        /// Proportional fee, in millionths of the amount.
        #[arg(long, default_value_t = 1)]
        fee_ppm: u32,
        /// Blocks between the incoming and the outgoing HTLC's expiry (at least 40).
        #[arg(long, default_value_t = 80)]
        cltv_delta: u16,
        /// The least HTLC to forward (1500msat, 2sat, ...; default: the peer's minimum).
        #[arg(long)]
        htlc_min: Option<String>,
        /// The most one forwarded HTLC may carry (default: the channel's limit).
        #[arg(long)]
        htlc_max: Option<String>,
    },
    /// Create an invoice: AMOUNT in satoshi, or with a unit (1500msat, 0.0001btc), or `any`.
    Invoice {
        /// Amount.
        amount: String,
        /// What the payment is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 3600)]
        expiry: u64,
    },
    /// Pay a BOLT 11 invoice; waits for the outcome and shows the route,
    /// the fee and the time, or why it failed.
    Pay {
        /// The invoice (a `lightning:` prefix is fine).
        invoice: String,
        /// Amount for an invoice without one (same units as `invoice`).
        #[arg(long)]
        amount: Option<String>,
        /// Stop waiting after this many seconds (the payment goes on; see
        /// `payments`).
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Pay a channel peer without an invoice (keysend, bLIP 3): AMOUNT in
    /// satoshi or with a unit (1500msat, 0.0001btc).
    Keysend {
        /// The peer's node id.
        node_id: String,
        /// Amount.
        amount: String,
    },
    /// List invoices and payments.
    Payments,
    /// The network graph this node learned from gossip: channels with
    /// their fees, and the nodes' announcements.
    Graph,
    /// Ping a peer and wait for its pong.
    Ping {
        /// The peer's node id.
        node_id: String,
        /// Bytes to ask for in the pong (0 to 65531).
        #[arg(long, default_value_t = 0)]
        bytes: u16,
    },
    /// Stop the daemon.
    Stop,
    /// The daemon's events as they happen (payments, invoices, channels,
    /// peers), one JSON object per line, until interrupted.
    Events,
    /// API tokens: make one with a scope for an app, list them, revoke one.
    Token {
        #[command(subcommand)]
        command: TokenCmd,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// Make a token (shown once): read, invoices (and read), payments (and
    /// invoices), admin (anything).
    Create {
        /// A name to tell it apart.
        name: String,
        /// read, invoices, payments or admin.
        #[arg(long)]
        scope: String,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by id.
    Revoke {
        /// Its id (from `token list`).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum StoreCmd {
    /// Copy every key of a stopped node's store into an empty database,
    /// then read both back and compare them. Afterwards start the daemon
    /// with `--store` set to the target.
    Migrate {
        /// The store to copy: sqlite:PATH (e.g. sqlite:~/.beongae/beongae.sqlite).
        #[arg(long)]
        from: String,
        /// The empty database: postgres://USER:PASSWORD@HOST:PORT/DATABASE
        /// (or sqlite:PATH for a new file).
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand, Debug)]
enum DevnetCmd {
    /// Serve the devnet (without a node) over Bitcoin Core's JSON-RPC at
    /// --devnet-rpc, until interrupted; daemons then use it.
    Serve {
        /// Mine a block every this many seconds (0: only on request).
        #[arg(long, default_value_t = 0)]
        block_interval: u64,
    },
    /// Pay from the devnet's faucet, in a new block: AMOUNT in satoshi or
    /// with a unit (0.5btc), to --address or to the running daemon's wallet.
    Fund {
        /// Amount.
        amount: String,
        /// Regtest address (default: a new address of the daemon at --datadir).
        #[arg(long)]
        address: Option<String>,
    },
    /// Mine blocks (their rewards go to the faucet unless --address says).
    Mine {
        /// How many blocks.
        blocks: u32,
        /// Regtest address for the rewards.
        #[arg(long)]
        address: Option<String>,
    },
    /// A fee spike (or calm): the fee estimate the devnet reports, and the
    /// least feerate its blocks take (a transaction with its children as
    /// one package), both in sat/vB. 1 takes everything again.
    Feerate {
        /// sat/vB (at least 1).
        sat_per_vb: u32,
    },
    /// Where the devnet is served, its height, mempool and faucet.
    Info,
    /// Print each new block as it comes, until interrupted.
    Watch,
}

/// The network a daemon works on.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// An embedded regtest chain (no bitcoind needed).
    Devnet,
    /// Bitcoin mainnet.
    Bitcoin,
    /// testnet3.
    Testnet,
    /// signet.
    Signet,
    /// regtest with an external bitcoind.
    Regtest,
}

impl Network {
    /// The chain hash announced in `init`.
    pub fn chain_hash(self) -> ChainHash {
        ChainHash::using_genesis_block(self.bitcoin_network())
    }

    /// The rust-bitcoin network (the devnet is regtest).
    pub fn bitcoin_network(self) -> bitcoin::Network {
        match self {
            Network::Bitcoin => bitcoin::Network::Bitcoin,
            Network::Testnet => bitcoin::Network::Testnet,
            Network::Signet => bitcoin::Network::Signet,
            Network::Regtest | Network::Devnet => bitcoin::Network::Regtest,
        }
    }

    /// Its name on the command line.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned())
    }

    /// What bitcoind's `getblockchaininfo` calls this chain.
    pub fn bitcoind_chain_name(self) -> &'static str {
        match self {
            Network::Bitcoin => "main",
            Network::Testnet => "test",
            Network::Signet => "signet",
            Network::Regtest | Network::Devnet => "regtest",
        }
    }
}

/// An error of the command line itself, with the code the API would give
/// it (in the JSON error under `--json`).
#[derive(Debug)]
struct Coded {
    code: &'static str,
    message: String,
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

fn coded(code: &'static str, message: impl std::fmt::Display) -> anyhow::Error {
    Coded {
        code,
        message: message.to_string(),
    }
    .into()
}

/// A bad argument: `bad_request`, as the API says of a bad value.
fn bad_argument(e: anyhow::Error) -> anyhow::Error {
    coded("bad_request", format!("{e:#}"))
}

/// Parses `50000`, `50000sat` or `0.0005btc` (any case, optional space).
fn parse_amount(s: &str) -> anyhow::Result<u64> {
    parse_amount_of(s).map_err(bad_argument)
}

fn parse_amount_of(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_lowercase();
    let bad = || {
        anyhow::anyhow!(
            "amount `{s}`: write satoshis (e.g. 50000) or BTC with a unit (e.g. 0.0005btc)"
        )
    };
    let amount = if let Some(btc) = t.strip_suffix("btc") {
        bitcoin::Amount::from_str_in(btc.trim(), bitcoin::Denomination::Bitcoin)
            .map_err(|_| bad())?
    } else {
        let sat = t.strip_suffix("sat").unwrap_or(&t).trim();
        bitcoin::Amount::from_sat(sat.parse::<u64>().map_err(|_| bad())?)
    };
    if amount == bitcoin::Amount::ZERO {
        anyhow::bail!("amount `{s}` is zero");
    }
    Ok(amount.to_sat())
}

/// Parses a Lightning amount: `1500msat`, `2sat` or `2` (satoshi), or
/// `0.0001btc`, to millisatoshi.
fn parse_msat(s: &str) -> anyhow::Result<u64> {
    parse_msat_of(s).map_err(bad_argument)
}

fn parse_msat_of(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_lowercase();
    if let Some(m) = t.strip_suffix("msat") {
        let v: u64 = m.trim().parse().map_err(|_| {
            anyhow::anyhow!("amount `{s}`: write millisatoshis as a whole number (e.g. 1500msat)")
        })?;
        if v == 0 {
            anyhow::bail!("amount `{s}` is zero");
        }
        return Ok(v);
    }
    // Satoshi with up to three decimals: 1.5sat, 2.001sat.
    let plain = t.strip_suffix("sat").unwrap_or(&t).trim();
    if let Some((whole, frac)) = plain.split_once('.').filter(|_| !t.ends_with("btc")) {
        let bad = || {
            anyhow::anyhow!(
                "amount `{s}`: satoshis take at most three decimals (1.5sat), or write msat (1500msat)"
            )
        };
        if frac.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let frac: u64 = format!("{frac:0<3}").parse().map_err(|_| bad())?;
        let msat = whole
            .checked_mul(1000)
            .and_then(|m| m.checked_add(frac))
            .ok_or_else(|| anyhow::anyhow!("amount `{s}` is too large"))?;
        if msat == 0 {
            anyhow::bail!("amount `{s}` is zero");
        }
        return Ok(msat);
    }
    parse_amount(s)?
        .checked_mul(1000)
        .ok_or_else(|| anyhow::anyhow!("amount `{s}` is too large"))
}

fn default_datadir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".beongae"),
        |h| PathBuf::from(h).join(".beongae"),
    )
}

fn main() {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let output = human::Output::choose(cli.json, cli.output);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(cli, &matches, output)) {
        if output == human::Output::Json {
            // For scripts: the error as JSON on stdout, with the API's code
            // when the API answered.
            let code = e
                .downcast_ref::<beongae_api::client::ClientError>()
                .map(|c| c.code())
                .or_else(|| e.downcast_ref::<Coded>().map(|c| c.code))
                .unwrap_or("error");
            // Written, not printed: a reader that has gone (a closed pipe)
            // must not turn the error into a panic.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stdout(),
                "{}",
                json!({"error": {"code": code, "message": format!("{e:#}")}})
            );
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The command's name as the renderers know it.
fn kind(cmd: &Cmd) -> &'static str {
    match cmd {
        Cmd::Newaddress { .. } => "newaddress",
        Cmd::Balance => "balance",
        Cmd::Send { .. } => "send",
        Cmd::Info => "info",
        Cmd::Connect { .. } => "connect",
        Cmd::Peers => "peers",
        Cmd::Disconnect { .. } => "disconnect",
        Cmd::Openchannel { .. } => "openchannel",
        Cmd::Channels => "channels",
        Cmd::Closechannel { .. } => "closechannel",
        Cmd::Forwards => "forwards",
        Cmd::Setpolicy { .. } => "setpolicy",
        Cmd::Invoice { .. } => "invoice",
        Cmd::Pay { .. } => "pay",
        Cmd::Keysend { .. } => "keysend",
        Cmd::Payments => "payments",
        Cmd::Graph => "graph",
        Cmd::Ping { .. } => "ping",
        Cmd::Stop => "stop",
        Cmd::Token {
            command: TokenCmd::Create { .. },
        } => "token create",
        Cmd::Token {
            command: TokenCmd::List,
        } => "token list",
        Cmd::Token {
            command: TokenCmd::Revoke { .. },
        } => "token revoke",
        _ => "other",
    }
}

/// Opens `spec` (`sqlite:PATH` or a PostgreSQL URL); a PostgreSQL target
/// takes the database's lease, so no node writes while the copy is made.
fn open_store(spec: &str) -> anyhow::Result<Box<dyn beongae_store::Store>> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return Ok(Box::new(beongae_store::SqliteStore::open(Path::new(path))?));
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let store = beongae_store::PostgresStore::connect(spec)?;
        store.take_lease(
            &beongae_store::lease_holder_name(),
            beongae_store::LEASE_TTL,
            &mut |_| {},
        )?;
        return Ok(Box::new(store));
    }
    Err(coded(
        "bad_request",
        format!("store `{spec}`: write sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"),
    ))
}

/// `store migrate`: a verified copy.
fn migrate(from: &str, to: &str) -> anyhow::Result<serde_json::Value> {
    if from.starts_with("sqlite:") && !Path::new(&from["sqlite:".len()..]).exists() {
        return Err(coded(
            "bad_request",
            format!("{from}: no such file (a node's store is DATADIR/beongae.sqlite)"),
        ));
    }
    let source = open_store(from)?;
    let target = open_store(to)?;
    let copied = beongae_store::copy_store(source.as_ref(), target.as_ref())?;
    Ok(json!({
        "namespaces": copied.namespaces,
        "keys": copied.keys,
        "bytes": copied.bytes,
        "verified": true,
    }))
}

/// The API client of the daemon at `datadir`.
fn api(datadir: &Path) -> anyhow::Result<ApiClient> {
    Ok(ApiClient::for_datadir(datadir)?)
}

/// Polls the channel until its state is one of `states`; returns it.
/// `label` says how many confirmations the funding has meanwhile.
async fn wait_for_channel(
    c: &ApiClient,
    id: &str,
    states: &[&str],
    label: &human::Label,
) -> anyhow::Result<serde_json::Value> {
    loop {
        let channels: serde_json::Value = c.get("/v1/channels").await?;
        let channel = channels
            .as_array()
            .into_iter()
            .flatten()
            .find(|ch| ch["channel_id"] == id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("channel {id} is gone"))?;
        let state = channel["state"].as_str().unwrap_or_default();
        if states.contains(&state) && (state != "normal" || channel["active"] == true) {
            return Ok(channel);
        }
        if let (Some(got), Some(need)) = (
            channel["confirmations"].as_u64(),
            channel["confirmations_required"].as_u64(),
        ) {
            label.set(format!(
                "waiting for the funding transaction to confirm: {got} of {need} confirmations"
            ));
        } else if state == "normal" && channel["active"] != true {
            label.set("waiting for the peer to reconnect".into());
        }
        if state == "closed" {
            anyhow::bail!(
                "channel {id} closed: {}",
                channel["reason"].as_str().unwrap_or("no reason given")
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// The full id of the one channel whose id starts with `prefix`.
async fn channel_by_prefix(c: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    if prefix.len() == 64 {
        return Ok(prefix.to_owned());
    }
    let channels: serde_json::Value = c.get("/v1/channels").await?;
    let prefix = prefix.to_lowercase();
    let matching: Vec<&str> = channels
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ch| ch["channel_id"].as_str())
        .filter(|id| id.starts_with(&prefix))
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(coded(
            "unknown_channel",
            format!("no channel {prefix}: `beongae channels` lists them"),
        )),
        _ => Err(coded(
            "bad_request",
            format!(
                "{} channels start with {prefix}: give more of the id",
                matching.len()
            ),
        )),
    }
}

/// A hex argument that goes into a URL path: only hex digits.
fn hex_arg<'a>(s: &'a str, what: &str) -> anyhow::Result<&'a str> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(coded(
            "bad_request",
            format!("bad {what} `{s}`: hex digits only"),
        ));
    }
    Ok(s)
}

async fn run(cli: Cli, matches: &clap::ArgMatches, output: human::Output) -> anyhow::Result<()> {
    let datadir = cli.datadir;
    let kind = kind(&cli.command);
    // The settings file: flags and environment first, then it, then the
    // defaults. Relative paths in it are relative to the data directory.
    let file = config::FileConfig::load(
        &cli.config
            .clone()
            .unwrap_or_else(|| datadir.join(config::FILE_NAME)),
        cli.config.is_some(),
    )?;
    let in_datadir = |p: PathBuf| if p.is_relative() { datadir.join(p) } else { p };
    let devnet_loc = devnet::Location {
        dir: config::pick(
            matches,
            "devnet_dir",
            cli.devnet_dir,
            file.devnet.dir.clone().map(in_datadir),
        ),
        rpc: config::pick(matches, "devnet_rpc", cli.devnet_rpc, file.devnet.rpc),
    };
    let result: serde_json::Value = match cli.command {
        Cmd::Daemon {
            listen,
            network,
            block_interval,
            bitcoind_rpc,
            bitcoind_cookie,
            bitcoind_user,
            bitcoind_password,
            alias,
            color,
            announce_addr,
            api_listen,
            api_http,
            api_tls_names,
            store,
        } => {
            let m = matches
                .subcommand_matches("daemon")
                .ok_or_else(|| anyhow::anyhow!("no daemon arguments"))?;
            let listen = config::pick(m, "listen", listen, file.listen);
            let network = config::pick(m, "network", network, file.network);
            let block_interval =
                config::pick(m, "block_interval", block_interval, file.block_interval);
            let bitcoind_rpc = config::pick(
                m,
                "bitcoind_rpc",
                bitcoind_rpc,
                file.bitcoind.rpc.clone().map(Some),
            );
            let bitcoind_cookie = config::pick(
                m,
                "bitcoind_cookie",
                bitcoind_cookie,
                file.bitcoind.cookie.clone().map(|c| Some(in_datadir(c))),
            );
            let bitcoind_user = config::pick(
                m,
                "bitcoind_user",
                bitcoind_user,
                file.bitcoind.user.clone().map(Some),
            );
            let bitcoind_password = config::pick(
                m,
                "bitcoind_password",
                bitcoind_password,
                file.bitcoind.password.clone().map(Some),
            );
            let alias = config::pick(m, "alias", alias, file.alias.clone());
            let color = config::pick(m, "color", color, file.color.clone());
            let announce_addr = config::pick(
                m,
                "announce_addr",
                announce_addr,
                file.announce_addr.clone(),
            );
            let api_listen = config::pick(m, "api_listen", api_listen, file.api.listen.map(Some));
            let api_http = config::pick(m, "api_http", api_http, file.api.http);
            let api_tls_names = config::pick(
                m,
                "api_tls_names",
                api_tls_names,
                file.api.tls_names.clone(),
            );
            let store = config::pick(m, "store", store, file.store.clone());
            let store = match store.as_str() {
                "sqlite" => None,
                url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                    Some(url.to_owned())
                }
                other => {
                    return Err(coded(
                        "bad_request",
                        format!(
                            "store `{other}`: use sqlite, or a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE)"
                        ),
                    ))
                }
            };
            let log_file = match file.log.file.as_deref() {
                Some("") => None,
                f => Some(logging::FileLog {
                    path: in_datadir(PathBuf::from(f.unwrap_or("logs/beongae.log"))),
                    max_bytes: file.log.max_size_mb.unwrap_or(10) * 1024 * 1024,
                    keep: file.log.keep.unwrap_or(5),
                }),
            };
            logging::init(file.log.level.as_deref(), log_file)?;
            let gossip = daemon::gossip_settings(&alias, &color, &announce_addr)?;
            let bitcoind = daemon::BitcoindOpts {
                url: bitcoind_rpc,
                cookie: bitcoind_cookie,
                user_pass: bitcoind_user.zip(bitcoind_password),
            };
            return daemon::run(
                &datadir,
                daemon::DaemonOpts {
                    listen,
                    network,
                    block_interval,
                    devnet: devnet_loc,
                    bitcoind,
                    api_listen,
                    api_http,
                    api_tls_names,
                    gossip,
                    store,
                },
            )
            .await;
        }
        Cmd::Init { restore } => return init(&datadir, restore),
        Cmd::Store {
            command: StoreCmd::Migrate { from, to },
        } => {
            let v = tokio::task::spawn_blocking(move || migrate(&from, &to)).await??;
            match output {
                human::Output::Json => println!("{}", serde_json::to_string_pretty(&v)?),
                human::Output::Human => print!("{}", human::render("store migrate", &v, false)),
            }
            return Ok(());
        }
        Cmd::Decode { invoice } => return decode::run(&invoice),
        Cmd::Demo => return demo::run().await,
        Cmd::Devnet { command } => {
            let loc = devnet_loc;
            let blocking = |f: Box<dyn FnOnce() -> anyhow::Result<serde_json::Value> + Send>| async move {
                tokio::task::spawn_blocking(f).await?
            };
            let (kind, v) = match command {
                DevnetCmd::Serve { block_interval } => {
                    return devnet::serve(&loc, block_interval).await
                }
                DevnetCmd::Watch => return devnet::watch(&loc).await,
                DevnetCmd::Info => (
                    "devnet info",
                    blocking(Box::new(move || devnet::info(&loc))).await?,
                ),
                DevnetCmd::Feerate { sat_per_vb } => (
                    "devnet feerate",
                    blocking(Box::new(move || devnet::feerate(&loc, sat_per_vb))).await?,
                ),
                DevnetCmd::Mine { blocks, address } => (
                    "devnet mine",
                    blocking(Box::new(move || {
                        devnet::mine(&loc, blocks, address.as_deref())
                    }))
                    .await?,
                ),
                DevnetCmd::Fund { amount, address } => {
                    let sat = parse_amount(&amount)?;
                    let address = match address {
                        Some(a) => a,
                        None => {
                            let v: serde_json::Value = api(&datadir)?
                                .post("/v1/wallet/address", &json!({}))
                                .await
                                .context(
                                    "asking the daemon for an address to fund (or give --address)",
                                )?;
                            v["address"]
                                .as_str()
                                .ok_or_else(|| anyhow::anyhow!("the daemon gave no address"))?
                                .to_owned()
                        }
                    };
                    (
                        "devnet fund",
                        blocking(Box::new(move || devnet::fund(&loc, &address, sat))).await?,
                    )
                }
            };
            match output {
                human::Output::Json => println!("{}", serde_json::to_string_pretty(&v)?),
                human::Output::Human => print!("{}", human::render(kind, &v, false)),
            }
            return Ok(());
        }
        Cmd::Newaddress { kind } => {
            api(&datadir)?
                .post("/v1/wallet/address", &json!({ "type": kind }))
                .await?
        }
        Cmd::Balance => api(&datadir)?.get("/v1/wallet/balance").await?,
        Cmd::Send {
            address,
            amount,
            feerate,
        } => {
            if feerate == Some(0) {
                return Err(coded("bad_request", "--feerate must be at least 1 sat/vB"));
            }
            let body = if amount.eq_ignore_ascii_case("all") {
                json!({
                    "address": address,
                    "send_all": true,
                    "feerate_sat_per_vb": feerate,
                })
            } else {
                json!({
                    "address": address,
                    "amount_sat": parse_amount(&amount)?,
                    "feerate_sat_per_vb": feerate,
                })
            };
            api(&datadir)?.post("/v1/wallet/send", &body).await?
        }
        Cmd::Info => api(&datadir)?.get("/v1/info").await?,
        Cmd::Connect { address } => {
            // Check the syntax here so a typo never needs a running daemon to be reported.
            address.parse::<beongae_node::address::PeerAddress>()?;
            let c = api(&datadir)?;
            human::spinner(
                "connecting",
                c.post("/v1/peers", &json!({ "address": address })),
            )
            .await?
        }
        Cmd::Peers => api(&datadir)?.get("/v1/peers").await?,
        Cmd::Disconnect { node_id } => {
            let id = hex_arg(&node_id, "node id")?;
            api(&datadir)?.delete(&format!("/v1/peers/{id}")).await?
        }
        Cmd::Openchannel {
            peer,
            amount,
            push,
            public,
            wait,
        } => {
            let mut body = json!({
                "node_id": peer,
                "push_msat": push.as_deref().map(parse_msat).transpose()?.unwrap_or(0),
                "public": public,
            });
            if amount.eq_ignore_ascii_case("all") {
                body["fund_all"] = json!(true);
            } else {
                body["amount_sat"] = json!(parse_amount(&amount)?);
            }
            let c = api(&datadir)?;
            let opened: serde_json::Value = c.post("/v1/channels", &body).await?;
            if !wait {
                opened
            } else {
                let id = opened["channel_id"].as_str().unwrap_or_default().to_owned();
                if output == human::Output::Human {
                    print!("{}", human::render(kind, &opened, false));
                }
                let label = human::Label::new("waiting for the funding transaction to confirm");
                let channel =
                    human::spinner_with(&label, wait_for_channel(&c, &id, &["normal"], &label))
                        .await?;
                match output {
                    human::Output::Json => channel,
                    human::Output::Human => {
                        print!("{}", human::channels(&json!([channel])));
                        return Ok(());
                    }
                }
            }
        }
        Cmd::Channels => api(&datadir)?.get("/v1/channels").await?,
        Cmd::Forwards => api(&datadir)?.get("/v1/forwards").await?,
        Cmd::Setpolicy {
            channel,
            base_fee_msat,
            fee_ppm,
            cltv_delta,
            htlc_min,
            htlc_max,
        } => {
            let body = json!({
                "channel_id": channel,
                "fee_base_msat": base_fee_msat,
                "fee_ppm": fee_ppm,
                "cltv_expiry_delta": cltv_delta,
                "htlc_minimum_msat": htlc_min.as_deref().map(parse_msat).transpose()?,
                "htlc_maximum_msat": htlc_max.as_deref().map(parse_msat).transpose()?,
            });
            api(&datadir)?.post("/v1/channels/policy", &body).await?
        }
        Cmd::Closechannel {
            channel_id,
            force,
            wait,
        } => {
            let c = api(&datadir)?;
            let id = channel_by_prefix(&c, hex_arg(&channel_id, "channel id")?).await?;
            let (path, body) = (
                format!("/v1/channels/{id}/close"),
                json!({ "force": force }),
            );
            let closing: serde_json::Value =
                human::spinner("closing", c.post(&path, &body)).await?;
            if wait {
                if output == human::Output::Human {
                    print!("{}", human::render(kind, &closing, false));
                }
                let label = human::Label::new("waiting for the closing transaction to confirm");
                let channel =
                    human::spinner_with(&label, wait_for_channel(&c, &id, &["closed"], &label))
                        .await?;
                match output {
                    human::Output::Json => channel,
                    human::Output::Human => {
                        println!(
                            "closed{}",
                            channel["reason"]
                                .as_str()
                                .map_or_else(String::new, |r| format!(": {r}"))
                        );
                        return Ok(());
                    }
                }
            } else {
                closing
            }
        }
        Cmd::Invoice {
            amount,
            description,
            expiry,
        } => {
            let amount_msat = if amount.trim().eq_ignore_ascii_case("any") {
                None
            } else {
                Some(parse_msat(&amount)?)
            };
            let body = json!({
                "amount_msat": amount_msat,
                "description": description,
                "expiry_secs": expiry,
            });
            api(&datadir)?.post("/v1/invoices", &body).await?
        }
        Cmd::Pay {
            invoice,
            amount,
            timeout,
        } => {
            if timeout == 0 {
                return Err(coded("bad_request", "--timeout must be at least 1 second"));
            }
            let body = json!({
                "invoice": invoice,
                "amount_msat": amount.as_deref().map(parse_msat).transpose()?,
                "timeout_secs": timeout,
            });
            let c = api(&datadir)?;
            human::spinner("paying", c.post("/v1/payments", &body))
                .await
                .context("payment failed")?
        }
        Cmd::Payments => {
            let c = api(&datadir)?;
            let invoices: serde_json::Value = c.get("/v1/invoices?limit=1000").await?;
            let payments: serde_json::Value = c.get("/v1/payments?limit=1000").await?;
            json!({ "invoices": invoices["invoices"], "payments": payments["payments"] })
        }
        Cmd::Graph => api(&datadir)?.get("/v1/graph").await?,
        Cmd::Keysend { node_id, amount } => {
            let body = json!({ "node_id": node_id, "amount_msat": parse_msat(&amount)? });
            let c = api(&datadir)?;
            human::spinner("paying", c.post("/v1/payments/keysend", &body))
                .await
                .context("payment failed")?
        }
        Cmd::Ping { node_id, bytes } => {
            let id = hex_arg(&node_id, "node id")?;
            api(&datadir)?
                .post(
                    &format!("/v1/peers/{id}/ping"),
                    &json!({ "num_pong_bytes": bytes }),
                )
                .await?
        }
        Cmd::Stop => api(&datadir)?.post("/v1/stop", &json!({})).await?,
        Cmd::Events => {
            api(&datadir)?
                .events(|e| {
                    use std::io::Write as _;
                    let line = match output {
                        human::Output::Json => e.to_string(),
                        human::Output::Human => {
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_secs());
                            format!("{}  {}", &human::date(now)[11..16], human::event(&e))
                        }
                    };
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
                })
                .await?;
            return Ok(());
        }
        Cmd::Token { command } => {
            let c = api(&datadir)?;
            match command {
                TokenCmd::Create { name, scope } => {
                    let scope: beongae_api::Scope =
                        scope.parse().map_err(|e: String| anyhow::anyhow!(e))?;
                    c.post("/v1/tokens", &json!({ "name": name, "scope": scope }))
                        .await?
                }
                TokenCmd::List => c.get("/v1/tokens").await?,
                TokenCmd::Revoke { id } => {
                    let id = hex_arg(&id, "token id")?;
                    c.delete(&format!("/v1/tokens/{id}")).await?
                }
            }
        }
    };
    match output {
        human::Output::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        human::Output::Human => {
            let qr = std::io::IsTerminal::is_terminal(&std::io::stdout());
            print!("{}", human::render(kind, &result, qr));
        }
    }
    Ok(())
}

/// `beongae init`: a new seed, shown once; `--restore`: words from stdin.
fn init(datadir: &Path, restore: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(datadir)
        .with_context(|| format!("creating data directory {}", datadir.display()))?;
    let path = datadir.join("seed");
    if path.exists() {
        anyhow::bail!(
            "{} already has a seed; refusing to replace it",
            datadir.display()
        );
    }
    let seed = if restore {
        eprintln!("enter the 24 words of the seed to restore, then press Enter:");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        beongae_wallet::Seed::from_phrase(&line)?
    } else {
        beongae_wallet::Seed::from_entropy(bitcoin::secp256k1::rand::random())
    };
    seed.save(&path)?;
    let keys = beongae_wallet::KeyManager::new(
        seed.master_key(bitcoin::NetworkKind::Test),
        bitcoin::Network::Regtest,
    );
    let node_id = bitcoin::secp256k1::PublicKey::from_secret_key(
        &bitcoin::secp256k1::Secp256k1::new(),
        &keys.node_secret(),
    );
    if restore {
        println!("seed restored to {}", path.display());
    } else {
        println!(
            "Write these 24 words down and keep them safe; they restore this node and its funds."
        );
        println!(
            "They are shown this once (and kept in {}, readable only by you):\n",
            path.display()
        );
        println!("{}\n", seed.phrase());
    }
    println!("node id on test networks: {node_id}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lightning_amounts_in_sat_msat_and_btc() {
        assert_eq!(parse_msat("2500").unwrap(), 2_500_000);
        assert_eq!(parse_msat("2500sat").unwrap(), 2_500_000);
        assert_eq!(parse_msat("1.5sat").unwrap(), 1_500);
        assert_eq!(parse_msat("0.001sat").unwrap(), 1);
        assert_eq!(parse_msat("1500msat").unwrap(), 1_500);
        assert_eq!(parse_msat("0.0001btc").unwrap(), 10_000_000);
        assert!(parse_msat("1.2345sat")
            .unwrap_err()
            .to_string()
            .contains("at most three decimals"));
        assert!(parse_msat("0.000sat")
            .unwrap_err()
            .to_string()
            .contains("is zero"));
        assert!(parse_msat("1.x").is_err());
        assert!(parse_msat("12x")
            .unwrap_err()
            .to_string()
            .contains("write satoshis"));
    }
}
