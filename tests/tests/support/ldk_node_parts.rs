//! Pieces of the LDK test node (`ldk_node.rs`): logger, fee estimator,
//! broadcaster, in-memory persister and the harness's own wallet.

use super::*;

// ---------------------------------------------------------------------------------------------
// Logger
// ---------------------------------------------------------------------------------------------

/// One record LDK (or the harness) logged.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// Level.
    pub level: Level,
    /// The peer the record is about, if LDK attached one.
    pub peer: Option<PublicKey>,
    /// The formatted message.
    pub msg: String,
    /// Source location (`src/...:line`), or `harness`.
    pub location: String,
}

/// LDK logger: prints records at or above `LDK_LOG` (`off|error|warn|info|debug|trace|gossip`,
/// default `warn`) to stderr with a per-node label, and keeps every record.
pub struct NodeLogger {
    pub(super) label: Mutex<String>,
    pub(super) print_min: Option<Level>,
    pub(super) lines: Mutex<Vec<LogLine>>,
}

fn level_from_env() -> Option<Level> {
    match std::env::var("LDK_LOG")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Ok("off") | Ok("none") => None,
        Ok("error") => Some(Level::Error),
        Ok("info") => Some(Level::Info),
        Ok("debug") => Some(Level::Debug),
        Ok("trace") => Some(Level::Trace),
        Ok("gossip") => Some(Level::Gossip),
        _ => Some(Level::Warn),
    }
}

impl NodeLogger {
    pub(super) fn new(label: String) -> Self {
        NodeLogger {
            label: Mutex::new(label),
            print_min: level_from_env(),
            lines: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn push(
        &self,
        level: Level,
        peer: Option<PublicKey>,
        msg: String,
        location: String,
    ) {
        if let Some(min) = self.print_min {
            if level >= min {
                let label = self.label.lock().unwrap().clone();
                let mut out = String::new();
                let _ = write!(out, "[{label} {level:<5}] {msg}");
                if let Some(p) = peer {
                    let _ = write!(out, " (peer {})", &p.to_string()[..10]);
                }
                let _ = write!(out, "  @{location}");
                eprintln!("{out}");
            }
        }
        self.lines.lock().unwrap().push(LogLine {
            level,
            peer,
            msg,
            location,
        });
    }

    /// A record from the harness itself (shown like LDK's, location `harness`).
    pub fn harness(&self, level: Level, msg: impl Into<String>) {
        self.push(level, None, msg.into(), "harness".to_owned());
    }

    /// Every record so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.lock().unwrap().clone()
    }
}

impl Logger for NodeLogger {
    fn log(&self, record: Record) {
        let file = record
            .file
            .rfind("/src/")
            .map_or(record.file, |i| &record.file[i + 1..]);
        self.push(
            record.level,
            record.peer_id,
            record.args.to_string(),
            format!("{file}:{}", record.line),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Fee estimator, broadcaster, persister
// ---------------------------------------------------------------------------------------------

/// Fixed feerates: [`DEFAULT_FEERATE_SAT_PER_KW`] (changeable) for every target, except
/// `MinAllowedAnchorChannelRemoteFee`, `MinAllowedNonAnchorChannelRemoteFee` and
/// `ChannelCloseMinimum`, which default to the 253 sat/kW floor so LDK accepts any feerate
/// the peer proposes. Any target can be overridden.
pub struct FixedFeeEstimator {
    pub(super) default: AtomicU32,
    pub(super) overrides: Mutex<HashMap<ConfirmationTarget, u32>>,
}

impl FixedFeeEstimator {
    pub(super) fn new() -> Self {
        FixedFeeEstimator {
            default: AtomicU32::new(DEFAULT_FEERATE_SAT_PER_KW),
            overrides: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the feerate of every target that has no override and is not a "minimum" target.
    pub fn set_default(&self, sat_per_kw: u32) {
        self.default.store(sat_per_kw, Ordering::SeqCst);
    }

    /// Overrides one target.
    pub fn set(&self, target: ConfirmationTarget, sat_per_kw: u32) {
        self.overrides.lock().unwrap().insert(target, sat_per_kw);
    }
}

impl FeeEstimator for FixedFeeEstimator {
    fn get_est_sat_per_1000_weight(&self, target: ConfirmationTarget) -> u32 {
        if let Some(rate) = self.overrides.lock().unwrap().get(&target) {
            return *rate;
        }
        match target {
            ConfirmationTarget::MinAllowedAnchorChannelRemoteFee
            | ConfirmationTarget::MinAllowedNonAnchorChannelRemoteFee
            | ConfirmationTarget::ChannelCloseMinimum => FEERATE_FLOOR_SAT_PER_KW,
            _ => self.default.load(Ordering::SeqCst),
        }
    }
}

/// What happens to a broadcast transaction: `Ok(txid)` if accepted, `Err(reason)` if not.
pub type BroadcastCallback = Box<dyn Fn(&Transaction) -> Result<Txid, String> + Send + Sync>;

/// One transaction LDK broadcast, and what the callback said.
#[derive(Clone, Debug)]
pub struct BroadcastRecord {
    /// The transaction.
    pub tx: Transaction,
    /// The callback's answer.
    pub result: Result<Txid, String>,
}

/// `BroadcasterInterface` handing each transaction (in LDK's order: parents first) to a
/// callback; by default `devnet.lock().accept(tx)`. Refusals are logged at warn (a transaction
/// the chain already has, at debug).
pub struct NodeBroadcaster {
    pub(super) callback: Mutex<BroadcastCallback>,
    pub(super) records: Mutex<Vec<BroadcastRecord>>,
    pub(super) logger: Arc<NodeLogger>,
}

impl BroadcasterInterface for NodeBroadcaster {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        for tx in txs {
            let result = (self.callback.lock().unwrap())(tx);
            let txid = tx.compute_txid();
            match &result {
                Ok(_) => self
                    .logger
                    .harness(Level::Debug, format!("broadcast {txid}: accepted")),
                Err(e) if e.contains("already known") => self
                    .logger
                    .harness(Level::Debug, format!("broadcast {txid}: {e}")),
                Err(e) => self
                    .logger
                    .harness(Level::Warn, format!("broadcast {txid} refused: {e}")),
            }
            self.records.lock().unwrap().push(BroadcastRecord {
                tx: (*tx).clone(),
                result,
            });
        }
    }
}

/// In-memory persistence: serialized `ChannelMonitor`s by `MonitorName`, and the last
/// serialized `ChannelManager`. Always completes synchronously.
///
/// With a `disk` store (`LdkNode::start_durable`) every write also goes to LDK's own
/// `FilesystemStore` (write to a temporary file, fsync, rename, fsync the directory)
/// under LDK's namespaces, before the write returns: what a node that survives a crash
/// pays, and what the benchmarks compare us against.
#[derive(Default)]
pub struct MemoryPersister {
    pub(super) monitors: Mutex<HashMap<String, Vec<u8>>>,
    pub(super) archived: Mutex<HashMap<String, Vec<u8>>>,
    pub(super) manager: Mutex<Option<Vec<u8>>>,
    pub(super) monitor_writes: AtomicU32,
    pub(super) disk: Option<lightning_persister::fs_store::FilesystemStore>,
}

impl MemoryPersister {
    /// Names of the stored (not archived) monitors.
    pub fn monitor_names(&self) -> Vec<String> {
        self.monitors.lock().unwrap().keys().cloned().collect()
    }

    /// Number of monitor writes so far.
    pub fn monitor_writes(&self) -> u32 {
        self.monitor_writes.load(Ordering::SeqCst)
    }

    /// The last serialized `ChannelManager`, if any.
    pub fn manager(&self) -> Option<Vec<u8>> {
        self.manager.lock().unwrap().clone()
    }

    /// Stores the serialized `ChannelManager` (on disk too with a `disk` store).
    pub(super) fn persist_manager(&self, bytes: Vec<u8>) {
        if let Some(disk) = &self.disk {
            use lightning::util::persist::{
                KVStoreSync, CHANNEL_MANAGER_PERSISTENCE_KEY as KEY,
                CHANNEL_MANAGER_PERSISTENCE_PRIMARY_NAMESPACE as NS,
                CHANNEL_MANAGER_PERSISTENCE_SECONDARY_NAMESPACE as NS2,
            };
            // Only a harness whose directory was removed under it fails here.
            if let Err(e) = disk.write(NS, NS2, KEY, bytes.clone()) {
                eprintln!("ldk harness: writing the ChannelManager failed: {e}");
            }
        }
        *self.manager.lock().unwrap() = Some(bytes);
    }
}

impl Persist<InMemorySigner> for MemoryPersister {
    fn persist_new_channel(
        &self,
        monitor_name: MonitorName,
        monitor: &ChannelMonitor<InMemorySigner>,
    ) -> ChannelMonitorUpdateStatus {
        self.monitor_writes.fetch_add(1, Ordering::SeqCst);
        let bytes = monitor.encode();
        if let Some(disk) = &self.disk {
            use lightning::util::persist::{
                KVStoreSync, CHANNEL_MONITOR_PERSISTENCE_PRIMARY_NAMESPACE as NS,
                CHANNEL_MONITOR_PERSISTENCE_SECONDARY_NAMESPACE as NS2,
            };
            if disk
                .write(NS, NS2, &monitor_name.to_string(), bytes.clone())
                .is_err()
            {
                return ChannelMonitorUpdateStatus::UnrecoverableError;
            }
        }
        self.monitors
            .lock()
            .unwrap()
            .insert(monitor_name.to_string(), bytes);
        ChannelMonitorUpdateStatus::Completed
    }

    fn update_persisted_channel(
        &self,
        monitor_name: MonitorName,
        _update: Option<&ChannelMonitorUpdate>,
        monitor: &ChannelMonitor<InMemorySigner>,
    ) -> ChannelMonitorUpdateStatus {
        self.persist_new_channel(monitor_name, monitor)
    }

    fn archive_persisted_channel(&self, monitor_name: MonitorName) {
        let name = monitor_name.to_string();
        if let Some(m) = self.monitors.lock().unwrap().remove(&name) {
            self.archived.lock().unwrap().insert(name, m);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wallet
// ---------------------------------------------------------------------------------------------

/// A one-key P2WPKH wallet over the devnet's UTXO set.
pub struct Wallet {
    pub(super) sk: SecretKey,
    pub(super) pk: CompressedPublicKey,
    pub(super) script: ScriptBuf,
    /// Outpoints we already spent in a transaction handed to LDK.
    pub(super) reserved: Mutex<HashSet<OutPoint>>,
}

impl Wallet {
    pub(super) fn from_seed(seed: &[u8; 32]) -> Wallet {
        let mut data = b"beongae-tests ldk_node wallet".to_vec();
        data.extend_from_slice(seed);
        let digest = sha256::Hash::hash(&data);
        let sk = SecretKey::from_slice(digest.as_ref()).expect("sha256 is a valid key");
        let pk = CompressedPublicKey(sk.public_key(&Secp256k1::new()));
        let script = ScriptBuf::new_p2wpkh(&pk.wpubkey_hash());
        Wallet {
            sk,
            pk,
            script,
            reserved: Mutex::new(HashSet::new()),
        }
    }

    /// Confirmed, spendable (mature if coinbase) and not yet reserved coins, oldest first.
    pub(super) fn coins(&self, devnet: &Devnet) -> Vec<(OutPoint, TxOut)> {
        let next = devnet.height() + 1;
        let reserved = self.reserved.lock().unwrap();
        devnet
            .utxos_for(&self.script)
            .into_iter()
            .filter(|(op, c)| {
                !reserved.contains(op)
                    && (!c.coinbase || next.saturating_sub(c.height) >= COINBASE_MATURITY)
            })
            .map(|(op, c)| (op, c.txout))
            .collect()
    }

    /// A signed transaction paying `value` to `script` from one coin, change back to us
    /// (dropped if below 1000 sat), at `feerate` sat/kW. Reserves the coin it spends.
    pub(super) fn fund(
        &self,
        devnet: &Mutex<Devnet>,
        script: &ScriptBuf,
        value: Amount,
        feerate_sat_per_kw: u32,
    ) -> Result<Transaction, String> {
        let coins = self.coins(&devnet.lock().unwrap());
        let margin = Amount::from_sat(20_000);
        let (outpoint, coin) = coins
            .into_iter()
            .find(|(_, c)| c.value >= value + margin)
            .ok_or_else(|| {
                format!(
                    "wallet has no spendable coin of at least {}",
                    value + margin
                )
            })?;
        let mut tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                // Placeholder of the final size (72-byte DER signature + sighash, 33-byte key).
                witness: Witness::from_slice(&[vec![0u8; 73], vec![0u8; 33]]),
            }],
            output: vec![
                TxOut {
                    value,
                    script_pubkey: script.clone(),
                },
                TxOut {
                    value: Amount::ZERO,
                    script_pubkey: self.script.clone(),
                },
            ],
        };
        let fee =
            Amount::from_sat((tx.weight().to_wu() * u64::from(feerate_sat_per_kw)).div_ceil(1000));
        let change = coin.value - value - fee;
        if change < Amount::from_sat(1000) {
            tx.output.pop();
        } else {
            tx.output[1].value = change;
        }
        let sighash = SighashCache::new(&tx)
            .p2wpkh_signature_hash(0, &self.script, coin.value, EcdsaSighashType::All)
            .map_err(|e| format!("sighash: {e}"))?;
        let signature =
            Secp256k1::new().sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &self.sk);
        let sig = bitcoin::ecdsa::Signature {
            signature,
            sighash_type: EcdsaSighashType::All,
        };
        tx.input[0].witness = Witness::p2wpkh(&sig, &self.pk.0);
        self.reserved.lock().unwrap().insert(outpoint);
        Ok(tx)
    }
}

// ---------------------------------------------------------------------------------------------
// UTXO lookups for LDK's gossip
// ---------------------------------------------------------------------------------------------

/// LDK's `UtxoLookup` over the devnet: the unspent output a short channel id names (block
/// height, transaction index, output index), answered at once.
pub struct DevnetUtxo {
    pub(super) devnet: Arc<Mutex<Devnet>>,
}

impl lightning::routing::utxo::UtxoLookup for DevnetUtxo {
    fn get_utxo(
        &self,
        _chain_hash: &bitcoin::constants::ChainHash,
        short_channel_id: u64,
    ) -> lightning::routing::utxo::UtxoResult {
        use beongae_chain::ChainSource as _;
        use lightning::routing::utxo::{UtxoLookupError, UtxoResult};
        let height = (short_channel_id >> 40) as u32;
        let index = ((short_channel_id >> 16) & 0xff_ffff) as usize;
        let vout = (short_channel_id & 0xffff) as u32;
        let chain: &Mutex<Devnet> = &self.devnet;
        let out = chain
            .block_hash(height)
            .ok()
            .flatten()
            .and_then(|h| chain.block(&h).ok().flatten())
            .and_then(|b| b.txdata.get(index).map(|t| t.compute_txid()))
            .and_then(|txid| chain.utxo(&OutPoint::new(txid, vout)).ok().flatten());
        UtxoResult::Sync(out.ok_or(UtxoLookupError::UnknownTx))
    }
}
