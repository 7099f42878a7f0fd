//! One devnet for every process on a machine (ADR 0010).
//!
//! A devnet lives in a directory. The process that holds the directory's
//! lock file serves it: it keeps the chain in memory, saves it after every
//! change, and answers Bitcoin Core's JSON-RPC on a loopback address that
//! it writes to `rpc-url`, with the cookie in `.cookie`. Every other process
//! that opens the directory is a client of that server. When the server
//! goes away, the first client whose request fails takes the lock, loads
//! the chain from disk and serves it on the same address; the others
//! follow it there.
//!
//! So any number of daemons (and the `devnet` commands) share one chain,
//! and whoever runs first serves it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use bitcoin::{Address, Amount, Block, BlockHash, Network, OutPoint, Transaction, TxOut, Txid};
use serde_json::{json, Value};

use crate::devnet::{faucet_script, Devnet, PersistError};
use crate::rpc::{serve_devnet, write_cookie, Auth, Bitcoind, DevnetError, RpcServer};
use crate::{ChainError, ChainSource, FeeratePerKw};

/// The devnet's RPC port unless told otherwise: not bitcoind's regtest
/// port (18443), so a Bitcoin Core regtest node can run beside it.
pub const DEFAULT_RPC_PORT: u16 = 18543;

/// Blocks a new devnet starts with, all paying the faucet: 51 of their
/// coinbases (2,550 BTC) are spendable at once.
pub const INITIAL_BLOCKS: u32 = 150;

const LOCK_FILE: &str = "serve.lock";
const URL_FILE: &str = "rpc-url";
const COOKIE_FILE: &str = ".cookie";

/// How long to wait for a server that holds the lock to answer (it may be
/// starting).
const SERVER_WAIT: Duration = Duration::from_secs(10);

/// Why a shared devnet could not be opened or served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedDevnetError {
    /// A file in the devnet directory.
    #[error("devnet directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The chain on disk.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// The RPC address is taken.
    #[error("cannot serve the devnet's RPC on {addr}: {source} (does another program use the port? choose another address with --devnet-rpc)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Another process holds the lock but does not answer.
    #[error("the devnet in {dir} is served by another process that does not answer ({why}); stop that process or choose another --devnet-dir")]
    Unreachable {
        /// The devnet directory.
        dir: PathBuf,
        /// What failed.
        why: String,
    },
    /// `serve` was asked for, but another process serves the devnet.
    #[error("the devnet in {dir} is already served by another process, at {url}")]
    AlreadyServed {
        /// The devnet directory.
        dir: PathBuf,
        /// Where it serves.
        url: String,
    },
}

/// This process serves the devnet.
struct Serving {
    devnet: Arc<Mutex<Devnet>>,
    /// Stops serving when dropped.
    _server: RpcServer,
    url: String,
    url_file: PathBuf,
    /// Held while serving (released when the file closes).
    _lock: File,
}

impl Drop for Serving {
    fn drop(&mut self) {
        // Before the lock goes: nobody is sent to an address that is gone.
        let _ = std::fs::remove_file(&self.url_file);
    }
}

enum Role {
    Serving(Serving),
    Client { rpc: Bitcoind, url: String },
}

impl Role {
    fn source(&self) -> &dyn ChainSource {
        match self {
            Role::Serving(s) => &*s.devnet,
            Role::Client { rpc, .. } => rpc,
        }
    }

    fn url(&self) -> &str {
        match self {
            Role::Serving(s) => &s.url,
            Role::Client { url, .. } => url,
        }
    }
}

/// A devnet shared by every process that opens its directory; see the
/// module documentation. A [`ChainSource`] whichever process serves it.
pub struct SharedDevnet {
    dir: PathBuf,
    rpc: SocketAddr,
    role: RwLock<Role>,
    /// Counts role changes, so that several requests failing at once take
    /// over (or find the new server) only once.
    generation: AtomicU64,
}

impl std::fmt::Debug for SharedDevnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDevnet")
            .field("dir", &self.dir)
            .field("url", &self.url())
            .field("serving", &self.is_serving())
            .finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SharedDevnetError + '_ {
    move |source| SharedDevnetError::Io {
        path: path.to_owned(),
        source,
    }
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// The regtest address of the faucet (blocks mined for nobody pay it).
pub fn faucet_address() -> Address {
    Address::from_script(&faucet_script(), Network::Regtest).expect("a P2WSH script has an address")
}

impl SharedDevnet {
    /// Opens the devnet in `dir` (created if missing): serves it on `rpc`
    /// if no process does, or becomes a client of the one that does.
    pub fn open(dir: &Path, rpc: SocketAddr) -> Result<Arc<SharedDevnet>, SharedDevnetError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let role = take_role(dir, rpc)?;
        Ok(Arc::new(SharedDevnet {
            dir: dir.to_owned(),
            rpc,
            role: RwLock::new(role),
            generation: AtomicU64::new(0),
        }))
    }

    /// Serves the devnet in `dir` on `rpc`; an error if another process
    /// serves it already.
    pub fn serve(dir: &Path, rpc: SocketAddr) -> Result<Arc<SharedDevnet>, SharedDevnetError> {
        let shared = Self::open(dir, rpc)?;
        if !shared.is_serving() {
            return Err(SharedDevnetError::AlreadyServed {
                dir: dir.to_owned(),
                url: shared.url(),
            });
        }
        Ok(shared)
    }

    /// Whether this process serves the devnet (rather than asking the one
    /// that does).
    pub fn is_serving(&self) -> bool {
        matches!(*self.read(), Role::Serving(_))
    }

    /// The RPC URL the devnet is served at.
    pub fn url(&self) -> String {
        self.read().url().to_owned()
    }

    /// The cookie file that authenticates RPC requests.
    pub fn cookie(&self) -> PathBuf {
        self.dir.join(COOKIE_FILE)
    }

    /// The devnet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Role> {
        self.role.read().unwrap_or_else(|p| p.into_inner())
    }

    /// After a failed request: serve the devnet if its server is gone, or
    /// follow it to where it serves now.
    fn recover(&self, generation: u64) -> Result<(), SharedDevnetError> {
        let mut role = self.role.write().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::SeqCst) != generation {
            return Ok(()); // another request did it meanwhile
        }
        if matches!(*role, Role::Serving(_)) {
            return Ok(());
        }
        *role = take_role(&self.dir, self.rpc)?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Runs `f` on the chain, recovering once from a server that went
    /// away; saves the chain after a `change` when serving.
    fn chain<T>(
        &self,
        change: bool,
        f: impl Fn(&dyn ChainSource) -> Result<T, ChainError>,
    ) -> Result<T, ChainError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let first = {
            let role = self.read();
            let r = f(role.source());
            if let (Role::Serving(s), Ok(_), true) = (&*role, &r, change) {
                save(&s.devnet, &self.dir);
            }
            r
        };
        match first {
            Err(ChainError::Unavailable(why)) if !self.is_serving() => {
                self.recover(generation)
                    .map_err(|e| ChainError::Unavailable(format!("{why}; and then: {e}")))?;
                let role = self.read();
                let r = f(role.source());
                if let (Role::Serving(s), Ok(_), true) = (&*role, &r, change) {
                    save(&s.devnet, &self.dir);
                }
                r
            }
            r => r,
        }
    }

    /// One JSON-RPC call, answered in this process when it serves the
    /// devnet (by the same code as over HTTP), recovering once from a
    /// server that went away.
    pub fn request(&self, method: &str, params: Value) -> Result<Value, DevnetError> {
        let params = params.as_array().cloned().unwrap_or_default();
        let call = |role: &Role| match role {
            Role::Serving(s) => {
                let dir = self.dir.clone();
                let on_change = move |d: &Devnet| save_unlocked(d, &dir);
                crate::rpc::call_in_process(&s.devnet, method, &params, Some(&on_change))
                    .map_err(|f| DevnetError::Refused(f.message))
            }
            Role::Client { rpc, .. } => rpc
                .call(method, Value::Array(params.clone()))
                .map_err(DevnetError::from),
        };
        let generation = self.generation.load(Ordering::SeqCst);
        let first = call(&self.read());
        match first {
            Err(DevnetError::Chain(ChainError::Unavailable(why))) if !self.is_serving() => {
                self.recover(generation).map_err(|e| {
                    DevnetError::Chain(ChainError::Unavailable(format!("{why}; and then: {e}")))
                })?;
                call(&self.read())
            }
            r => r,
        }
    }

    /// Mines `n` blocks paying `address` (the faucet when `None`).
    pub fn mine(&self, n: u32, address: Option<&Address>) -> Result<Vec<BlockHash>, DevnetError> {
        let to = address.cloned().unwrap_or_else(faucet_address);
        let v = self.request("generatetoaddress", json!([n, to.to_string()]))?;
        let hashes = v.as_array().map(|a| {
            a.iter()
                .filter_map(|h| h.as_str().and_then(|s| BlockHash::from_str(s).ok()))
                .collect::<Vec<_>>()
        });
        hashes.ok_or_else(|| DevnetError::Refused("generatetoaddress: unexpected reply".into()))
    }

    /// Pays `amount` from the faucet to `address`, in a new block.
    pub fn fund(&self, address: &Address, amount: Amount) -> Result<Txid, DevnetError> {
        let v = self.request("devnetfund", json!([address.to_string(), amount.to_sat()]))?;
        v.get("txid")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| DevnetError::Refused("devnetfund: unexpected reply".into()))
    }

    /// A fee spike (or calm) at `feerate`: see [`Devnet::spike`].
    pub fn spike(&self, feerate: FeeratePerKw) -> Result<(), DevnetError> {
        self.request("devnetsetfeerate", json!([feerate.0]))
            .map(|_| ())
    }

    /// Height, best block, mempool size, what the faucet can pay and the
    /// fee estimate.
    pub fn info(&self) -> Result<Value, DevnetError> {
        self.request("devnetinfo", json!([]))
    }

    /// While this process serves the devnet, mines a block to the faucet
    /// every `every` (a thread that ends with the last handle).
    pub fn mine_every(self: &Arc<Self>, every: Duration) {
        let weak: Weak<SharedDevnet> = Arc::downgrade(self);
        std::thread::spawn(move || loop {
            std::thread::sleep(every);
            let Some(shared) = weak.upgrade() else { return };
            let role = shared.read();
            if let Role::Serving(s) = &*role {
                s.devnet
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .mine(1, &faucet_script(), now());
                save(&s.devnet, &shared.dir);
            }
        });
    }
}

fn save(devnet: &Mutex<Devnet>, dir: &Path) {
    save_unlocked(&devnet.lock().unwrap_or_else(|p| p.into_inner()), dir);
}

fn save_unlocked(d: &Devnet, dir: &Path) {
    if let Err(e) = d.save(dir) {
        // Not fatal: the chain is in memory and the next change saves it
        // again.
        eprintln!("error: saving the devnet: {e}");
    }
}

/// Serves the devnet if nobody holds its lock, or finds the server.
fn take_role(dir: &Path, rpc: SocketAddr) -> Result<Role, SharedDevnetError> {
    let deadline = Instant::now() + SERVER_WAIT;
    let lock_path = dir.join(LOCK_FILE);
    loop {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => return serve_locked(dir, rpc, lock),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let url_path = dir.join(URL_FILE);
        let why = match std::fs::read_to_string(&url_path) {
            Ok(url) => {
                let url = url.trim().to_owned();
                let rpc = Bitcoind::new(&url, Auth::Cookie(dir.join(COOKIE_FILE)));
                match rpc.tip() {
                    Ok(_) => return Ok(Role::Client { rpc, url }),
                    Err(e) => e.to_string(),
                }
            }
            Err(e) => format!("{}: {e}", url_path.display()),
        };
        if Instant::now() >= deadline {
            return Err(SharedDevnetError::Unreachable {
                dir: dir.to_owned(),
                why,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn serve_locked(dir: &Path, rpc: SocketAddr, lock: File) -> Result<Role, SharedDevnetError> {
    let mut devnet = Devnet::load(dir)?;
    if devnet.height() == 0 {
        devnet.mine(INITIAL_BLOCKS, &faucet_script(), now());
        devnet.save(dir)?;
    }
    // The cookie stays across servers, so that whoever was given it (an
    // Electrum server, a wallet) keeps working when another process takes
    // over.
    let cookie = dir.join(COOKIE_FILE);
    let auth = match Auth::Cookie(cookie.clone()).credentials() {
        Ok(c) if c.starts_with("__cookie__:") => Auth::Cookie(cookie.clone()),
        _ => write_cookie(&cookie).map_err(io(&cookie))?,
    };
    let devnet = Arc::new(Mutex::new(devnet));
    let save_dir = dir.to_owned();
    let on_change = Box::new(move |d: &Devnet| save_unlocked(d, &save_dir));
    let server = serve_devnet(devnet.clone(), rpc, auth, Some(on_change))
        .map_err(|source| SharedDevnetError::Bind { addr: rpc, source })?;
    let url = format!("http://{}", server.addr());
    let url_file = dir.join(URL_FILE);
    let tmp = dir.join(format!("{URL_FILE}.tmp"));
    (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(url.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &url_file)
    })()
    .map_err(io(&url_file))?;
    Ok(Role::Serving(Serving {
        devnet,
        _server: server,
        url,
        url_file,
        _lock: lock,
    }))
}

impl ChainSource for SharedDevnet {
    fn tip(&self) -> Result<(u32, BlockHash), ChainError> {
        self.chain(false, |c| c.tip())
    }

    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        self.chain(false, |c| c.block_hash(height))
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        self.chain(false, |c| c.block(hash))
    }

    fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        self.chain(true, |c| c.broadcast(tx))
    }

    fn broadcast_package(
        &self,
        parent: &Transaction,
        child: &Transaction,
    ) -> Result<Txid, ChainError> {
        self.chain(true, |c| c.broadcast_package(parent, child))
    }

    fn fee_estimate(&self, target_blocks: u16) -> Result<FeeratePerKw, ChainError> {
        self.chain(false, |c| c.fee_estimate(target_blocks))
    }

    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, ChainError> {
        self.chain(false, |c| c.utxo(outpoint))
    }
}
