//! A JSON-RPC client for Bitcoin Core (regtest, signet, testnet, mainnet) and
//! for `beongae devnet serve`.

use std::sync::atomic::{AtomicU64, Ordering};

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{Address, Amount, Block, BlockHash, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use serde_json::{json, Value};

use super::Auth;
use crate::{ChainError, ChainSource, FeeratePerKw};

/// The lowest feerate Bitcoin Core relays: 1 sat/vB = 250 sat/kw (253 with
/// the usual rounding margin).
const FEERATE_FLOOR: FeeratePerKw = FeeratePerKw(253);

/// A Bitcoin Core JSON-RPC endpoint.
#[derive(Debug)]
pub struct Bitcoind {
    url: String,
    auth: Auth,
    next_id: AtomicU64,
    timeout_secs: u64,
}

/// An error the server returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcFailure {
    /// bitcoind's error code.
    pub code: i64,
    /// Its message.
    pub message: String,
}

impl Bitcoind {
    /// A client for `url` (e.g. `http://127.0.0.1:18443`).
    pub fn new(url: &str, auth: Auth) -> Self {
        Bitcoind {
            url: url.trim_end_matches('/').to_owned(),
            auth,
            next_id: AtomicU64::new(1),
            timeout_secs: 30,
        }
    }

    /// Calls `method`; `Err(Ok(failure))` is an RPC error, `Err(Err(..))` a transport error.
    pub fn call(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Value, Result<RpcFailure, ChainError>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body =
            json!({"jsonrpc": "1.0", "id": id, "method": method, "params": params}).to_string();
        let unavailable = |why: String| Err(Err(ChainError::Unavailable(why)));
        let header = match self.auth.header() {
            Ok(h) => h,
            Err(e) => {
                return unavailable(format!(
                    "cannot read RPC credentials ({:?}): {e}",
                    self.auth
                ))
            }
        };
        // Bitcoin Core answers 503 when its RPC work queue is full ("Work
        // queue depth exceeded"); so does a busy devnet server. Try again a
        // few times before giving up.
        let mut attempt = 0u64;
        let response = loop {
            let sent = minreq::post(&self.url)
                .with_header("Authorization", header.clone())
                .with_header("Content-Type", "application/json")
                .with_body(body.clone())
                .with_timeout(self.timeout_secs)
                .send();
            match sent {
                Ok(r) if r.status_code == 503 && attempt < 8 => {}
                Ok(r) => break r,
                Err(e) => return unavailable(format!("{}: {e}", self.url)),
            }
            attempt += 1;
            std::thread::sleep(std::time::Duration::from_millis(25 * attempt));
        };
        if response.status_code == 401 {
            return unavailable(format!(
                "{}: authentication failed (check the RPC user/password or cookie file)",
                self.url
            ));
        }
        let text = match response.as_str() {
            Ok(t) => t,
            Err(e) => return unavailable(format!("{}: {e}", self.url)),
        };
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return unavailable(format!(
                    "{}: HTTP {} with a body that is not JSON-RPC: {e}",
                    self.url, response.status_code
                ))
            }
        };
        match v.get("error") {
            Some(e) if !e.is_null() => Err(Ok(RpcFailure {
                code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            })),
            _ => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    /// Calls `method`, turning RPC errors into [`ChainError::Unavailable`].
    fn query(&self, method: &str, params: Value) -> Result<Value, ChainError> {
        self.call(method, params).map_err(|e| match e {
            Ok(f) => ChainError::Unavailable(format!("{method}: {} (code {})", f.message, f.code)),
            Err(e) => e,
        })
    }

    /// A served devnet's fee spike (`devnetsetfeerate`, not a Bitcoin Core
    /// method).
    pub fn devnet_set_feerate(&self, feerate: FeeratePerKw) -> Result<(), ChainError> {
        self.query("devnetsetfeerate", json!([feerate.0]))?;
        Ok(())
    }

    /// A served devnet's faucet (`devnetfund`, not a Bitcoin Core method):
    /// pays `amount` to `address` in a new block. Returns the payment's
    /// txid.
    pub fn devnet_fund(&self, address: &Address, amount: Amount) -> Result<Txid, DevnetError> {
        let v = self
            .call("devnetfund", json!([address.to_string(), amount.to_sat()]))
            .map_err(DevnetError::from)?;
        v.get("txid")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| DevnetError::Chain(bad("devnetfund")))
    }

    /// A served devnet's state (`devnetinfo`): height, best block hash,
    /// mempool size, what the faucet can pay, the fee estimate.
    pub fn devnet_info(&self) -> Result<Value, DevnetError> {
        self.call("devnetinfo", json!([]))
            .map_err(DevnetError::from)
    }

    /// Regtest only: mines `n` blocks to `address`.
    pub fn generate_to_address(
        &self,
        n: u32,
        address: &Address,
    ) -> Result<Vec<BlockHash>, ChainError> {
        let v = self.query("generatetoaddress", json!([n, address.to_string()]))?;
        v.as_array()
            .ok_or_else(|| bad("generatetoaddress"))?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("generatetoaddress"))
            })
            .collect()
    }

    /// A transaction from the mempool or (with `-txindex`) the chain.
    pub fn raw_transaction(&self, txid: &Txid) -> Result<Option<Transaction>, ChainError> {
        match self.call("getrawtransaction", json!([txid.to_string()])) {
            Ok(v) => v
                .as_str()
                .and_then(|s| deserialize_hex(s).ok())
                .map(Some)
                .ok_or_else(|| bad("getrawtransaction")),
            Err(Ok(f)) if f.code == -5 => Ok(None),
            Err(Ok(f)) => Err(ChainError::Unavailable(f.message)),
            Err(Err(e)) => Err(e),
        }
    }

    /// The chain name bitcoind reports (`main`, `test`, `signet`, `regtest`).
    pub fn chain(&self) -> Result<String, ChainError> {
        let v = self.query("getblockchaininfo", json!([]))?;
        v.get("chain")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad("getblockchaininfo"))
    }
}

/// A devnet request that failed: the devnet's own refusal (what to
/// change), or no devnet to ask.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// The devnet refused; the message says why.
    #[error("{0}")]
    Refused(String),
    /// It could not be reached or answered badly.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

impl From<Result<RpcFailure, ChainError>> for DevnetError {
    fn from(e: Result<RpcFailure, ChainError>) -> Self {
        match e {
            Ok(f) => DevnetError::Refused(f.message),
            Err(e) => DevnetError::Chain(e),
        }
    }
}

fn bad(method: &str) -> ChainError {
    ChainError::Unavailable(format!("{method}: unexpected reply"))
}

impl ChainSource for Bitcoind {
    fn tip(&self) -> Result<(u32, BlockHash), ChainError> {
        let v = self.query("getblockchaininfo", json!([]))?;
        let height = v
            .get("blocks")
            .and_then(Value::as_u64)
            .and_then(|h| u32::try_from(h).ok())
            .ok_or_else(|| bad("getblockchaininfo"))?;
        let hash = v
            .get("bestblockhash")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("getblockchaininfo"))?;
        Ok((height, hash))
    }

    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        match self.call("getblockhash", json!([height])) {
            Ok(v) => v
                .as_str()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| bad("getblockhash")),
            Err(Ok(f)) if f.code == -8 => Ok(None),
            Err(Ok(f)) => Err(ChainError::Unavailable(f.message)),
            Err(Err(e)) => Err(e),
        }
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        match self.call("getblock", json!([hash.to_string(), 0])) {
            Ok(v) => v
                .as_str()
                .and_then(|s| deserialize_hex(s).ok())
                .map(Some)
                .ok_or_else(|| bad("getblock")),
            Err(Ok(f)) if f.code == -5 => Ok(None),
            Err(Ok(f)) => Err(ChainError::Unavailable(f.message)),
            Err(Err(e)) => Err(e),
        }
    }

    fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        match self.call("sendrawtransaction", json!([serialize_hex(tx)])) {
            Ok(v) => v
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("sendrawtransaction")),
            Err(Ok(f)) => Err(ChainError::Rejected(f.message)),
            Err(Err(e)) => Err(e),
        }
    }

    /// Bitcoin Core's `submitpackage` (one parent, one child: the package
    /// relay Core 28 and later accept), or, where a node lacks it, the
    /// two one after the other.
    fn broadcast_package(
        &self,
        parent: &Transaction,
        child: &Transaction,
    ) -> Result<Txid, ChainError> {
        let hex = json!([[serialize_hex(parent), serialize_hex(child)]]);
        match self.call("submitpackage", hex) {
            Ok(v) => {
                let msg = v.get("package_msg").and_then(Value::as_str).unwrap_or("");
                if msg == "success" {
                    Ok(child.compute_txid())
                } else {
                    Err(ChainError::Rejected(format!("package: {v}")))
                }
            }
            Err(Ok(f)) if f.code == -32601 => {
                self.broadcast(parent).ok();
                self.broadcast(child)
            }
            Err(Ok(f)) => Err(ChainError::Rejected(f.message)),
            Err(Err(e)) => Err(e),
        }
    }

    fn fee_estimate(&self, target_blocks: u16) -> Result<FeeratePerKw, ChainError> {
        let v = self.query("estimatesmartfee", json!([target_blocks]))?;
        // BTC per 1000 vbytes -> sat per 1000 weight units; no estimate
        // (a fresh node) falls back to the relay floor.
        let per_kw = v
            .get("feerate")
            .and_then(Value::as_f64)
            .map(|btc| (btc * 100_000_000.0 / 4.0).round() as u32)
            .unwrap_or(FEERATE_FLOOR.0);
        Ok(FeeratePerKw(per_kw.max(FEERATE_FLOOR.0)))
    }

    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, ChainError> {
        let v = self.query(
            "gettxout",
            json!([outpoint.txid.to_string(), outpoint.vout, false]),
        )?;
        if v.is_null() {
            return Ok(None);
        }
        let value = v
            .get("value")
            .and_then(Value::as_f64)
            .and_then(|b| Amount::from_btc(b).ok())
            .ok_or_else(|| bad("gettxout"))?;
        let spk = v
            .get("scriptPubKey")
            .and_then(|s| s.get("hex"))
            .and_then(Value::as_str)
            .and_then(|h| ScriptBuf::from_hex(h).ok())
            .ok_or_else(|| bad("gettxout"))?;
        Ok(Some(TxOut {
            value,
            script_pubkey: spk,
        }))
    }
}
