//! `devnet serve`: the devnet behind Bitcoin Core's JSON-RPC (the subset in
//! [`super`]), with HTTP Basic authentication.

use std::io::Read;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{Address, Amount, BlockHash, Network, OutPoint, Transaction, Txid};
use serde_json::{json, Value};

use super::{Auth, RpcFailure};
use crate::devnet::{faucet_script, Devnet, MempoolError};

/// The Bitcoin Core version `getnetworkinfo` reports (31.0): the devnet
/// answers the calls Electrum servers need from that version on.
const DEVNET_CORE_VERSION: u32 = 310_000;

/// 1 sat/vB in BTC per 1000 vbytes, as Core reports relay fees.
const RELAY_FEE_BTC_PER_KVB: f64 = 0.000_01;

/// Largest request body accepted.
const MAX_BODY: u64 = 8 << 20;

/// Called after each request that changed the devnet (to save it).
pub type OnChange = Box<dyn Fn(&Devnet) + Send + Sync>;

/// A running RPC server; stops when dropped.
pub struct RpcServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl RpcServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until the server stops (it runs until the process ends or it is dropped).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An RPC error as bitcoind reports it.
struct RpcError {
    code: i64,
    message: String,
}

fn err(code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
    }
}

/// Serves `devnet` on `addr`.
pub fn serve_devnet(
    devnet: Arc<Mutex<Devnet>>,
    addr: SocketAddr,
    auth: Auth,
    on_change: Option<OnChange>,
) -> std::io::Result<RpcServer> {
    let server =
        Arc::new(tiny_http::Server::http(addr).map_err(|e| std::io::Error::other(e.to_string()))?);
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("not an IP listener"))?;
    let expected = auth.header()?;
    let s = server.clone();
    let thread = std::thread::spawn(move || {
        for request in s.incoming_requests() {
            handle(request, &devnet, &expected, on_change.as_deref());
        }
    });
    Ok(RpcServer {
        addr: bound,
        server,
        thread: Some(thread),
    })
}

fn handle(
    mut request: tiny_http::Request,
    devnet: &Mutex<Devnet>,
    expected: &str,
    on_change: Option<&(dyn Fn(&Devnet) + Send + Sync)>,
) {
    let authorized = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Authorization") && h.value.as_str() == expected);
    if !authorized {
        let _ = request.respond(tiny_http::Response::empty(401));
        return;
    }
    if request.method() != &tiny_http::Method::Post {
        let _ = request.respond(
            tiny_http::Response::from_string("JSON-RPC server handles only POST requests")
                .with_status_code(405),
        );
        return;
    }
    let mut body = String::new();
    if request
        .as_reader()
        .take(MAX_BODY)
        .read_to_string(&mut body)
        .is_err()
    {
        let _ = request.respond(tiny_http::Response::empty(400));
        return;
    }
    let (status, reply) = match serde_json::from_str::<Value>(&body) {
        Ok(Value::Array(calls)) => (
            200,
            Value::Array(calls.iter().map(|c| call(c, devnet, on_change).1).collect()),
        ),
        Ok(c) => call(&c, devnet, on_change),
        Err(e) => (
            500,
            json!({"result": null, "error": {"code": -32700, "message": format!("parse error: {e}")}, "id": null}),
        ),
    };
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
        .expect("static header");
    let _ = request.respond(
        tiny_http::Response::from_string(reply.to_string())
            .with_status_code(status)
            .with_header(header),
    );
}

/// Runs one JSON-RPC call: HTTP status and the response object.
fn call(
    c: &Value,
    devnet: &Mutex<Devnet>,
    on_change: Option<&(dyn Fn(&Devnet) + Send + Sync)>,
) -> (u16, Value) {
    let id = c.get("id").cloned().unwrap_or(Value::Null);
    let method = c.get("method").and_then(Value::as_str).unwrap_or("");
    let params = c.get("params").cloned().unwrap_or(Value::Array(vec![]));
    let params = params.as_array().cloned().unwrap_or_default();
    match call_in_process(devnet, method, &params, on_change) {
        Ok(v) => (200, json!({"result": v, "error": null, "id": id})),
        Err(e) => {
            let status = if e.code == -32601 { 404 } else { 500 };
            (
                status,
                json!({"result": null, "error": {"code": e.code, "message": e.message}, "id": id}),
            )
        }
    }
}

/// Runs one call on `devnet` in this process, exactly as the server would
/// answer it over HTTP (and `on_change` after a change).
pub(crate) fn call_in_process(
    devnet: &Mutex<Devnet>,
    method: &str,
    params: &[Value],
    on_change: Option<&(dyn Fn(&Devnet) + Send + Sync)>,
) -> Result<Value, RpcFailure> {
    let mut d = devnet.lock().unwrap_or_else(|p| p.into_inner());
    let (result, changed) = dispatch(method, params, &mut d);
    if changed && result.is_ok() {
        if let Some(f) = on_change {
            f(&d);
        }
    }
    result.map_err(|e| RpcFailure {
        code: e.code,
        message: e.message,
    })
}

fn param<'a>(params: &'a [Value], i: usize, name: &str) -> Result<&'a Value, RpcError> {
    params
        .get(i)
        .ok_or_else(|| err(-1, format!("missing parameter {name}")))
}

fn param_str<'a>(params: &'a [Value], i: usize, name: &str) -> Result<&'a str, RpcError> {
    param(params, i, name)?
        .as_str()
        .ok_or_else(|| err(-8, format!("{name} must be a string")))
}

fn param_u64(params: &[Value], i: usize, name: &str) -> Result<u64, RpcError> {
    param(params, i, name)?
        .as_u64()
        .ok_or_else(|| err(-8, format!("{name} must be a non-negative integer")))
}

fn parse<T: FromStr>(s: &str, what: &str) -> Result<T, RpcError> {
    s.parse()
        .map_err(|_| err(-8, format!("{what} must be hexadecimal (64 characters)")))
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// The methods. Returns the result and whether the devnet changed.
fn dispatch(method: &str, params: &[Value], d: &mut Devnet) -> (Result<Value, RpcError>, bool) {
    let changes = matches!(
        method,
        "sendrawtransaction"
            | "generatetoaddress"
            | "devnetsetfeerate"
            | "submitpackage"
            | "devnetfund"
    );
    let result = (|| -> Result<Value, RpcError> {
        match method {
            "getblockchaininfo" => Ok(json!({
                "chain": "regtest",
                "blocks": d.height(),
                "headers": d.height(),
                "bestblockhash": d.tip_hash().to_string(),
                "mediantime": d.median_time_past(d.height()),
            })),
            "getblockcount" => Ok(json!(d.height())),
            "getbestblockhash" => Ok(json!(d.tip_hash().to_string())),
            // What Electrum servers check before they index: a Core version
            // with the calls below (31.0: `gettxspendingprevout` over the
            // whole chain), and the relay fee (1 sat/vB).
            "getnetworkinfo" => Ok(json!({
                "version": DEVNET_CORE_VERSION,
                "subversion": format!("/Beongae-devnet:{}/", env!("CARGO_PKG_VERSION")),
                "protocolversion": 70016,
                "localservices": "0000000000000409",
                "localrelay": true,
                "networkactive": true,
                "connections": 0,
                "relayfee": RELAY_FEE_BTC_PER_KVB,
                "incrementalfee": RELAY_FEE_BTC_PER_KVB,
                "warnings": "",
            })),
            // Every transaction is found by txid and every spend by its
            // outpoint: the devnet keeps whole blocks and searches them.
            "getindexinfo" => {
                let index = json!({"synced": true, "best_block_height": d.height()});
                Ok(json!({"txindex": index.clone(), "txospenderindex": index}))
            }
            "getrawmempool" => {
                if params.first().and_then(Value::as_bool) == Some(true) {
                    return Err(err(
                        -8,
                        "the devnet serves getrawmempool with verbose=false only",
                    ));
                }
                Ok(json!(d
                    .mempool()
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()))
            }
            "getmempoolinfo" => {
                let (size, vsize, fees) = d.mempool_totals();
                Ok(json!({
                    "loaded": true,
                    "size": size,
                    "bytes": vsize,
                    "usage": vsize,
                    "total_fee": fees.to_btc(),
                    "maxmempool": 300_000_000,
                    "mempoolminfee": RELAY_FEE_BTC_PER_KVB,
                    "minrelaytxfee": RELAY_FEE_BTC_PER_KVB,
                    "incrementalrelayfee": RELAY_FEE_BTC_PER_KVB,
                    "unbroadcastcount": 0,
                    "fullrbf": true,
                }))
            }
            "gettxspendingprevout" => {
                let outpoints = params
                    .first()
                    .and_then(Value::as_array)
                    .ok_or_else(|| err(-8, "outputs must be an array of {txid, vout}"))?;
                let mempool_only = params
                    .get(1)
                    .and_then(|o| o.get("mempool_only"))
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                outpoints
                    .iter()
                    .map(|o| {
                        let txid: Txid =
                            parse(o.get("txid").and_then(Value::as_str).unwrap_or(""), "txid")?;
                        let vout = o
                            .get("vout")
                            .and_then(Value::as_u64)
                            .and_then(|v| u32::try_from(v).ok())
                            .ok_or_else(|| err(-8, "vout must be a non-negative integer"))?;
                        let mut entry = json!({"txid": txid.to_string(), "vout": vout});
                        match d.spender(&OutPoint { txid, vout }) {
                            Some((spender, None)) => {
                                entry["spendingtxid"] = json!(spender.to_string());
                            }
                            Some((spender, Some(block))) if !mempool_only => {
                                entry["spendingtxid"] = json!(spender.to_string());
                                entry["blockhash"] = json!(block.to_string());
                            }
                            _ => {}
                        }
                        Ok(entry)
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::from)
            }
            "getblockhash" => {
                let h = param_u64(params, 0, "height")?;
                let block = u32::try_from(h)
                    .ok()
                    .and_then(|h| d.block_at(h))
                    .ok_or_else(|| err(-8, "Block height out of range"))?;
                Ok(json!(block.block_hash().to_string()))
            }
            "getblock" => {
                let hash: BlockHash = parse(param_str(params, 0, "blockhash")?, "blockhash")?;
                // Core takes 0/1/2 or, as ElectrumX sends, false/true.
                let verbosity = match params.get(1) {
                    None | Some(Value::Null) => 1,
                    Some(Value::Bool(b)) => u64::from(*b),
                    Some(v) => v.as_u64().unwrap_or(1),
                };
                if verbosity != 0 {
                    return Err(err(
                        -8,
                        "the devnet serves getblock with verbosity 0 (hex) only",
                    ));
                }
                let block = d
                    .block_by_hash(&hash)
                    .ok_or_else(|| err(-5, "Block not found"))?;
                Ok(json!(serialize_hex(block)))
            }
            "getrawtransaction" => {
                let txid: Txid = parse(param_str(params, 0, "txid")?, "txid")?;
                let verbose = match params.get(1) {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(v) => v.as_u64() != Some(0),
                };
                if verbose {
                    return Err(err(
                        -8,
                        "the devnet serves getrawtransaction with verbose=false (hex) only",
                    ));
                }
                let tx = d
                    .transaction(&txid)
                    .ok_or_else(|| err(-5, "No such mempool or blockchain transaction"))?;
                Ok(json!(serialize_hex(tx)))
            }
            "sendrawtransaction" => {
                let tx: Transaction = deserialize_hex(param_str(params, 0, "hexstring")?)
                    .map_err(|e| err(-22, format!("TX decode failed: {e}")))?;
                match d.accept(tx) {
                    Ok(txid) => Ok(json!(txid.to_string())),
                    Err(MempoolError::MissingInput(o)) => {
                        Err(err(-25, format!("bad-txns-inputs-missingorspent ({o})")))
                    }
                    Err(MempoolError::AlreadyKnown(t)) => Err(err(
                        -27,
                        format!("Transaction {t} already in block chain or mempool"),
                    )),
                    Err(e) => Err(err(-26, e.to_string())),
                }
            }
            "estimatesmartfee" => {
                let target = param_u64(params, 0, "conf_target")?;
                let per_kw = d.fee_estimate_per_kw();
                // sat per 1000 weight units -> BTC per 1000 vbytes.
                let btc_per_kvb = f64::from(per_kw.0) * 4.0 / 100_000_000.0;
                Ok(json!({"feerate": btc_per_kvb, "blocks": target}))
            }
            "gettxout" => {
                let txid: Txid = parse(param_str(params, 0, "txid")?, "txid")?;
                let vout = u32::try_from(param_u64(params, 1, "n")?)
                    .map_err(|_| err(-8, "n out of range"))?;
                let outpoint = OutPoint { txid, vout };
                Ok(match d.utxo(&outpoint) {
                    Some(coin) => json!({
                        "bestblock": d.tip_hash().to_string(),
                        "confirmations": d.height() - coin.height + 1,
                        "value": coin.txout.value.to_btc(),
                        "scriptPubKey": {"hex": coin.txout.script_pubkey.to_hex_string()},
                        "coinbase": coin.coinbase,
                    }),
                    None => Value::Null,
                })
            }
            "generatetoaddress" => {
                let n = param_u64(params, 0, "nblocks")?;
                if n > 10_000 {
                    return Err(err(-8, "nblocks must be at most 10000"));
                }
                let address = Address::from_str(param_str(params, 1, "address")?)
                    .map_err(|e| err(-5, format!("Invalid address: {e}")))?
                    .require_network(Network::Regtest)
                    .map_err(|_| err(-5, "Invalid address: not a regtest address"))?;
                let hashes = d.mine(n as u32, &address.script_pubkey(), now());
                Ok(json!(hashes
                    .iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()))
            }
            // Bitcoin Core 28's package relay, as far as the devnet needs it:
            // each transaction in order, children after their parents (the
            // devnet's mempool takes any parent paying 1 sat/vB), the answer
            // in Core's shape.
            "submitpackage" => {
                let txs = params
                    .first()
                    .and_then(Value::as_array)
                    .ok_or_else(|| err(-8, "package must be an array of hex transactions"))?;
                let mut results = serde_json::Map::new();
                for hex in txs {
                    let tx: Transaction = deserialize_hex(hex.as_str().unwrap_or_default())
                        .map_err(|e| err(-22, format!("TX decode failed: {e}")))?;
                    let wtxid = tx.compute_wtxid().to_string();
                    let txid = tx.compute_txid();
                    let entry = match d.accept(tx) {
                        Ok(_) | Err(MempoolError::AlreadyKnown(_)) => {
                            json!({"txid": txid.to_string()})
                        }
                        Err(e) => json!({"txid": txid.to_string(), "error": e.to_string()}),
                    };
                    results.insert(wtxid, entry);
                }
                let failed = results.values().any(|r| r.get("error").is_some());
                Ok(json!({
                    "package_msg": if failed { "transaction failed" } else { "success" },
                    "tx-results": results,
                }))
            }
            // The devnet's own: a fee spike (see `Devnet::spike`), in sat
            // per 1000 weight units.
            "devnetsetfeerate" => {
                let per_kw = u32::try_from(param_u64(params, 0, "sat_per_kw")?)
                    .map_err(|_| err(-8, "sat_per_kw out of range"))?;
                d.spike(beongae_script::FeeratePerKw(per_kw));
                Ok(json!(per_kw))
            }
            // The devnet's faucet (see `Devnet::faucet_pay`): pays `sat` to
            // `address` and mines a block (to the faucet) that confirms it.
            "devnetfund" => {
                let address = Address::from_str(param_str(params, 0, "address")?)
                    .map_err(|e| err(-5, format!("Invalid address: {e}")))?
                    .require_network(Network::Regtest)
                    .map_err(|_| err(-5, "Invalid address: not a regtest address"))?;
                let sat = param_u64(params, 1, "sat")?;
                let txid = d
                    .faucet_pay(&address.script_pubkey(), Amount::from_sat(sat))
                    .map_err(|e| err(-6, e.to_string()))?;
                let block = d.mine(1, &faucet_script(), now());
                Ok(json!({"txid": txid.to_string(), "blockhash": block[0].to_string()}))
            }
            "devnetinfo" => {
                let (size, ..) = d.mempool_totals();
                Ok(json!({
                    "height": d.height(),
                    "bestblockhash": d.tip_hash().to_string(),
                    "mempool": size,
                    "faucet_sat": d.faucet_balance().to_sat(),
                    "feerate_sat_per_kw": d.fee_estimate_per_kw().0,
                }))
            }
            other => Err(err(-32601, format!("Method not found: {other}"))),
        }
    })();
    (result, changes)
}
