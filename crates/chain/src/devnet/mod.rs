//! The devnet: an embedded regtest chain.
//!
//! Real regtest blocks (proof of work at the regtest target, BIP 34 heights,
//! witness commitments), a UTXO set with undo data so blocks can be
//! disconnected, and a mempool that admits a transaction only if it would be
//! valid in the next block ([`validate::check_transaction`]).

mod block;
mod faucet;
mod persist;
pub mod validate;

use std::collections::HashMap;

use bitcoin::{Amount, Block, BlockHash, OutPoint, ScriptBuf, Transaction, TxOut, Txid};

pub use block::{subsidy, HALVING_INTERVAL, REGTEST_BITS};
pub use faucet::{faucet_script, FaucetError};
pub use persist::PersistError;
pub use validate::{Coin, CoinView, MempoolError, COINBASE_MATURITY};

use crate::{ChainError, ChainSource, FeeratePerKw};

/// A block on the main chain and the coins it spent (to undo it).
#[derive(Debug, Clone)]
struct ChainBlock {
    block: Block,
    undo: Vec<(OutPoint, Coin)>,
}

/// A transaction waiting in the mempool.
#[derive(Debug, Clone)]
struct MempoolEntry {
    tx: Transaction,
    fee: Amount,
}

/// An embedded regtest chain and its mempool.
#[derive(Debug)]
pub struct Devnet {
    /// Main chain; index = height; 0 is the regtest genesis block.
    chain: Vec<ChainBlock>,
    heights: HashMap<BlockHash, u32>,
    /// Confirmed transactions: txid -> height.
    confirmed: HashMap<Txid, u32>,
    utxos: HashMap<OutPoint, Coin>,
    /// Mempool in acceptance order (parents before children).
    mempool: Vec<(Txid, MempoolEntry)>,
    /// Outpoint -> the mempool transaction spending it.
    mempool_spends: HashMap<OutPoint, Txid>,
    feerate: FeeratePerKw,
    /// The least feerate a block takes (a fee spike); none: everything.
    floor: Option<FeeratePerKw>,
}

impl Default for Devnet {
    fn default() -> Self {
        Devnet::new()
    }
}

/// Coins as seen by the next block: the UTXO set plus mempool outputs.
struct NextBlockView<'a>(&'a Devnet);

impl CoinView for NextBlockView<'_> {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        let d = self.0;
        if let Some(c) = d.utxos.get(outpoint) {
            return Some(c.clone());
        }
        let (_, entry) = d.mempool.iter().find(|(txid, _)| *txid == outpoint.txid)?;
        let txout = entry.tx.output.get(outpoint.vout as usize)?.clone();
        Some(Coin {
            txout,
            height: d.height() + 1,
            coinbase: false,
        })
    }

    fn median_time_past(&self, height: u32) -> u32 {
        self.0.median_time_past(height)
    }
}

impl Devnet {
    /// A chain holding only the regtest genesis block.
    pub fn new() -> Self {
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
        let mut heights = HashMap::new();
        heights.insert(genesis.block_hash(), 0);
        Devnet {
            chain: vec![ChainBlock {
                block: genesis,
                undo: Vec::new(),
            }],
            heights,
            confirmed: HashMap::new(),
            utxos: HashMap::new(), // the genesis coinbase is unspendable
            mempool: Vec::new(),
            mempool_spends: HashMap::new(),
            feerate: FeeratePerKw(2500),
            floor: None,
        }
    }

    /// Height of the tip.
    pub fn height(&self) -> u32 {
        (self.chain.len() - 1) as u32
    }

    /// Hash of the tip.
    pub fn tip_hash(&self) -> BlockHash {
        self.chain
            .last()
            .expect("genesis is always there")
            .block
            .block_hash()
    }

    /// The main-chain block at `height`.
    pub fn block_at(&self, height: u32) -> Option<&Block> {
        self.chain.get(height as usize).map(|b| &b.block)
    }

    /// A main-chain block by hash.
    pub fn block_by_hash(&self, hash: &BlockHash) -> Option<&Block> {
        self.heights.get(hash).and_then(|h| self.block_at(*h))
    }

    /// Median time of the 11 blocks ending at `height` (BIP 113).
    pub fn median_time_past(&self, height: u32) -> u32 {
        let end = (height as usize).min(self.chain.len() - 1);
        let start = end.saturating_sub(10);
        let mut times: Vec<u32> = self.chain[start..=end]
            .iter()
            .map(|b| b.block.header.time)
            .collect();
        times.sort_unstable();
        times[times.len() / 2]
    }

    /// A confirmed unspent output.
    pub fn utxo(&self, outpoint: &OutPoint) -> Option<&Coin> {
        self.utxos.get(outpoint)
    }

    /// Confirmations of a transaction (0 if in the mempool, `None` if unknown).
    pub fn confirmations(&self, txid: &Txid) -> Option<u32> {
        if let Some(h) = self.confirmed.get(txid) {
            return Some(self.height() - h + 1);
        }
        self.mempool.iter().any(|(t, _)| t == txid).then_some(0)
    }

    /// A transaction from the mempool or the chain.
    pub fn transaction(&self, txid: &Txid) -> Option<&Transaction> {
        if let Some((_, e)) = self.mempool.iter().find(|(t, _)| t == txid) {
            return Some(&e.tx);
        }
        let h = self.confirmed.get(txid)?;
        self.chain[*h as usize]
            .block
            .txdata
            .iter()
            .find(|t| t.compute_txid() == *txid)
    }

    /// Txids in the mempool, in acceptance order.
    pub fn mempool(&self) -> Vec<Txid> {
        self.mempool.iter().map(|(t, _)| *t).collect()
    }

    /// The mempool transaction spending an output of `parent`, if any.
    pub fn mempool_spender_of(&self, parent: Txid) -> Option<Transaction> {
        self.mempool
            .iter()
            .find(|(_, e)| e.tx.input.iter().any(|i| i.previous_output.txid == parent))
            .map(|(_, e)| e.tx.clone())
    }

    /// The transaction that spends `outpoint`: a mempool transaction
    /// (no block hash), or a confirmed one with its block's hash.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<(Txid, Option<BlockHash>)> {
        if let Some(txid) = self.mempool_spends.get(outpoint) {
            return Some((*txid, None));
        }
        let from = *self.confirmed.get(&outpoint.txid)? as usize;
        self.chain[from..].iter().find_map(|b| {
            b.block
                .txdata
                .iter()
                .find(|t| t.input.iter().any(|i| i.previous_output == *outpoint))
                .map(|t| (t.compute_txid(), Some(b.block.block_hash())))
        })
    }

    /// The mempool's transaction count, virtual size and fees.
    pub fn mempool_totals(&self) -> (usize, u64, Amount) {
        let vsize = self
            .mempool
            .iter()
            .map(|(_, e)| e.tx.weight().to_vbytes_ceil())
            .sum();
        (self.mempool.len(), vsize, self.mempool_fees())
    }

    /// Every unspent confirmed output paying `script_pubkey`.
    pub fn utxos_for(&self, script_pubkey: &ScriptBuf) -> Vec<(OutPoint, Coin)> {
        let mut v: Vec<_> = self
            .utxos
            .iter()
            .filter(|(_, c)| &c.txout.script_pubkey == script_pubkey)
            .map(|(o, c)| (*o, c.clone()))
            .collect();
        v.sort_by_key(|(o, c)| (c.height, o.txid, o.vout));
        v
    }

    /// The feerate [`ChainSource::fee_estimate`] reports.
    pub fn set_feerate(&mut self, feerate: FeeratePerKw) {
        self.feerate = feerate;
    }

    /// A fee spike (or calm) at `feerate`: the estimate reports it and
    /// blocks take only what pays it (none at BOLT 3's floor of 253 sat/kW
    /// or less: everything).
    pub fn spike(&mut self, feerate: FeeratePerKw) {
        self.feerate = feerate;
        self.floor = (feerate.0 > 253).then_some(feerate);
    }

    /// A fee spike: blocks take only transactions paying at least `floor`
    /// (a transaction with its descendants in the mempool counting as one
    /// package, so a child can pay for its parent, as miners select); the
    /// others wait in the mempool. `None`: blocks take everything.
    pub fn set_block_floor(&mut self, floor: Option<FeeratePerKw>) {
        self.floor = floor;
    }

    /// The devnet's fee estimate (fixed; see [`Devnet::set_feerate`]).
    pub fn fee_estimate_per_kw(&self) -> FeeratePerKw {
        self.feerate
    }

    /// Admits `tx` to the mempool if it would be valid in the next block and
    /// pays at least the minimum relay fee (1 sat/vB). A transaction spending
    /// an output a mempool transaction already spends replaces it (and its
    /// descendants) as Bitcoin Core's BIP 125 rules allow: a higher feerate
    /// than each direct conflict, and a fee covering everything replaced
    /// plus 1 sat/vB of its own size. Sending a transaction already in the
    /// mempool again returns its txid, as `sendrawtransaction` does.
    pub fn accept(&mut self, tx: Transaction) -> Result<Txid, MempoolError> {
        let txid = tx.compute_txid();
        match self.confirmations(&txid) {
            Some(0) => return Ok(txid),
            Some(_) => return Err(MempoolError::AlreadyKnown(txid)),
            None => {}
        }
        let next = self.height() + 1;
        let vsize = tx.weight().to_vbytes_ceil();
        let conflicts: Vec<Txid> = tx
            .input
            .iter()
            .filter_map(|i| self.mempool_spends.get(&i.previous_output).copied())
            .collect();
        // Direct conflicts' feerates, before they leave the mempool.
        let conflict_rates: Vec<(Txid, Amount, u64)> = self
            .mempool
            .iter()
            .filter(|(t, _)| conflicts.contains(t))
            .map(|(t, e)| (*t, e.fee, e.tx.weight().to_vbytes_ceil()))
            .collect();
        // Validate against the mempool without the transactions it replaces.
        let evicted = self.without_mempool_descendants(&conflicts);
        let result = check_transaction(&tx, &NextBlockView(self), next).and_then(|fee| {
            let min_relay = Amount::from_sat(vsize);
            if fee < min_relay {
                return Err(MempoolError::MinRelayFeeNotMet {
                    fee,
                    needed: min_relay,
                });
            }
            // fee / vsize > conflict_fee / conflict_vsize, without division.
            if let Some((conflict, ..)) = conflict_rates.iter().find(|(_, cfee, cvsize)| {
                u128::from(fee.to_sat()) * u128::from(*cvsize)
                    <= u128::from(cfee.to_sat()) * u128::from(vsize)
            }) {
                return Err(MempoolError::ReplacementFeerateTooLow {
                    conflict: *conflict,
                });
            }
            let replaced_fee: Amount = evicted.iter().map(|(_, e)| e.fee).sum();
            match conflicts.first() {
                Some(conflict) if fee < replaced_fee + min_relay => {
                    Err(MempoolError::ReplacementTooCheap {
                        conflict: *conflict,
                        fee,
                        conflict_fee: replaced_fee,
                    })
                }
                _ => Ok(fee),
            }
        });
        match result {
            Ok(fee) => {
                self.add_to_mempool(txid, MempoolEntry { tx, fee });
                Ok(txid)
            }
            Err(e) => {
                // Put back what we took out to validate.
                for (t, e) in evicted {
                    self.add_to_mempool(t, e);
                }
                Err(e)
            }
        }
    }

    fn add_to_mempool(&mut self, txid: Txid, entry: MempoolEntry) {
        for input in &entry.tx.input {
            self.mempool_spends.insert(input.previous_output, txid);
        }
        self.mempool.push((txid, entry));
    }

    /// Removes `roots` and everything in the mempool that spends them,
    /// returning the removed entries in their original order.
    fn without_mempool_descendants(&mut self, roots: &[Txid]) -> Vec<(Txid, MempoolEntry)> {
        let mut doomed: Vec<Txid> = roots.to_vec();
        let mut changed = !doomed.is_empty();
        while changed {
            changed = false;
            for (txid, e) in &self.mempool {
                if !doomed.contains(txid)
                    && e.tx
                        .input
                        .iter()
                        .any(|i| doomed.contains(&i.previous_output.txid))
                {
                    doomed.push(*txid);
                    changed = true;
                }
            }
        }
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.mempool)
            .into_iter()
            .partition(|(t, _)| doomed.contains(t));
        self.mempool = kept;
        self.mempool_spends.retain(|_, t| !doomed.contains(t));
        gone
    }

    /// Mines `n` blocks paying the coinbase to `script_pubkey`, the first
    /// including the whole mempool. Block times are `time`, raised where
    /// needed to exceed the median time past. Returns the new hashes.
    pub fn mine(&mut self, n: u32, script_pubkey: &ScriptBuf, time: u32) -> Vec<BlockHash> {
        (0..n).map(|_| self.mine_one(script_pubkey, time)).collect()
    }

    fn mine_one(&mut self, script_pubkey: &ScriptBuf, time: u32) -> BlockHash {
        let height = self.height() + 1;
        let time = time
            .max(self.median_time_past(self.height()) + 1)
            .max(self.chain[self.height() as usize].block.header.time);
        let entries = std::mem::take(&mut self.mempool);
        self.mempool_spends.clear();
        let (entries, waiting) = self.select(entries);
        for (txid, e) in waiting {
            self.add_to_mempool(txid, e);
        }
        let fees = entries.iter().map(|(_, e)| e.fee).sum();
        let txs = entries.into_iter().map(|(_, e)| e.tx).collect();
        let block = block::assemble(
            self.tip_hash(),
            height,
            time,
            txs,
            fees,
            script_pubkey.clone(),
        );
        let hash = block.block_hash();
        self.connect(block);
        hash
    }

    /// Splits the mempool into what the next block takes and what waits:
    /// without a floor, everything goes; with one, each transaction whose
    /// own feerate, or whose package with its mempool descendants, reaches
    /// it, with every ancestor it needs. Order (parents first) is kept.
    #[allow(clippy::type_complexity)]
    fn select(
        &self,
        entries: Vec<(Txid, MempoolEntry)>,
    ) -> (Vec<(Txid, MempoolEntry)>, Vec<(Txid, MempoolEntry)>) {
        let Some(floor) = self.floor else {
            return (entries, Vec::new());
        };
        let n = entries.len();
        let index: HashMap<Txid, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, (t, _))| (*t, i))
            .collect();
        let parents: Vec<Vec<usize>> = entries
            .iter()
            .map(|(_, e)| {
                e.tx.input
                    .iter()
                    .filter_map(|i| index.get(&i.previous_output.txid).copied())
                    .collect()
            })
            .collect();
        // Descendants' fees and sizes, children after parents: backwards.
        let mut fee: Vec<u64> = entries.iter().map(|(_, e)| e.fee.to_sat()).collect();
        let mut weight: Vec<u64> = entries.iter().map(|(_, e)| e.tx.weight().to_wu()).collect();
        let own: Vec<(u64, u64)> = fee.iter().copied().zip(weight.iter().copied()).collect();
        for i in (0..n).rev() {
            for &p in &parents[i] {
                fee[p] += fee[i];
                weight[p] += weight[i];
            }
        }
        let pays = |f: u64, w: u64| f * 1000 >= u64::from(floor.0) * w;
        let mut take = vec![false; n];
        for i in (0..n).rev() {
            if pays(own[i].0, own[i].1) || pays(fee[i], weight[i]) {
                take[i] = true;
            }
        }
        // Ancestors of what is taken.
        for i in (0..n).rev() {
            if take[i] {
                for &p in &parents[i] {
                    take[p] = true;
                }
            }
        }
        let (mut taken, mut waiting) = (Vec::new(), Vec::new());
        for (i, e) in entries.into_iter().enumerate() {
            if take[i] {
                taken.push(e);
            } else {
                waiting.push(e);
            }
        }
        (taken, waiting)
    }

    /// Appends a block whose transactions were validated, updating the UTXO set.
    fn connect(&mut self, block: Block) {
        let height = self.chain.len() as u32;
        let mut undo = Vec::new();
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            if !tx.is_coinbase() {
                for input in &tx.input {
                    if let Some(coin) = self.utxos.remove(&input.previous_output) {
                        undo.push((input.previous_output, coin));
                    }
                }
            }
            for (vout, txout) in tx.output.iter().enumerate() {
                if txout.script_pubkey.is_op_return() {
                    continue;
                }
                let coin = Coin {
                    txout: txout.clone(),
                    height,
                    coinbase: tx.is_coinbase(),
                };
                self.utxos.insert(
                    OutPoint {
                        txid,
                        vout: vout as u32,
                    },
                    coin,
                );
            }
            self.confirmed.insert(txid, height);
        }
        self.heights.insert(block.block_hash(), height);
        self.chain.push(ChainBlock { block, undo });
    }

    /// Disconnects the top `n` blocks (never the genesis block). Their
    /// transactions return to the mempool where still valid; the mempool's
    /// own transactions follow them. Returns the disconnected blocks, tip first.
    pub fn disconnect(&mut self, n: u32) -> Vec<Block> {
        let mut blocks = Vec::new();
        for _ in 0..n.min(self.height()) {
            let ChainBlock { block, undo } = self.chain.pop().expect("above genesis");
            for tx in block.txdata.iter().rev() {
                let txid = tx.compute_txid();
                for vout in 0..tx.output.len() as u32 {
                    self.utxos.remove(&OutPoint { txid, vout });
                }
                self.confirmed.remove(&txid);
            }
            // A coin both created and spent in this block is gone with it:
            // restore only coins that predate the block.
            let created: std::collections::HashSet<_> =
                block.txdata.iter().map(|t| t.compute_txid()).collect();
            for (outpoint, coin) in undo {
                if !created.contains(&outpoint.txid) {
                    self.utxos.insert(outpoint, coin);
                }
            }
            self.heights.remove(&block.block_hash());
            blocks.push(block);
        }
        let old_mempool = std::mem::take(&mut self.mempool);
        self.mempool_spends.clear();
        for block in blocks.iter().rev() {
            for tx in block.txdata.iter().filter(|t| !t.is_coinbase()) {
                let _ = self.accept(tx.clone());
            }
        }
        for (_, e) in old_mempool {
            let _ = self.accept(e.tx);
        }
        blocks
    }

    /// Drops `txid` and whatever spends it from the mempool, as a miner
    /// that never saw it would (to build another branch of a reorg).
    /// Returns the dropped transactions.
    pub fn evict(&mut self, txid: Txid) -> Vec<Transaction> {
        self.without_mempool_descendants(&[txid])
            .into_iter()
            .map(|(_, e)| e.tx)
            .collect()
    }

    /// Total value of the mempool's fees (what the next block's coinbase adds).
    pub fn mempool_fees(&self) -> Amount {
        self.mempool.iter().map(|(_, e)| e.fee).sum()
    }

    /// The output `outpoint` as the next block sees it (chain or mempool).
    pub fn spendable(&self, outpoint: &OutPoint) -> Option<TxOut> {
        NextBlockView(self).coin(outpoint).map(|c| c.txout)
    }
}

impl ChainSource for std::sync::Mutex<Devnet> {
    fn tip(&self) -> Result<(u32, BlockHash), ChainError> {
        let d = lock(self);
        Ok((d.height(), d.tip_hash()))
    }

    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        Ok(lock(self).block_at(height).map(Block::block_hash))
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        Ok(lock(self).block_by_hash(hash).cloned())
    }

    fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        lock(self)
            .accept(tx.clone())
            .map_err(|e| ChainError::Rejected(e.to_string()))
    }

    fn fee_estimate(&self, _target_blocks: u16) -> Result<FeeratePerKw, ChainError> {
        Ok(lock(self).feerate)
    }

    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, ChainError> {
        Ok(lock(self).utxo(outpoint).map(|c| c.txout.clone()))
    }
}

fn lock(m: &std::sync::Mutex<Devnet>) -> std::sync::MutexGuard<'_, Devnet> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

use validate::check_transaction;
