//! Chain access for the node.
//!
//! [`ChainSource`] is what the node needs from a chain: the tip, blocks by
//! height and hash, broadcasting, a fee estimate and UTXO lookups.
//! [`devnet::Devnet`] implements it in-process: a real regtest chain (blocks
//! with proof of work, coinbase maturity, subsidy halving every 150 blocks)
//! with a mempool that validates every transaction with Bitcoin Core's
//! consensus script interpreter, absolute and relative locktimes, and reorgs
//! on demand.

pub mod devnet;
pub mod rpc;
pub mod shared;
pub mod watch;

use bitcoin::{Block, BlockHash, OutPoint, Transaction, TxOut, Txid};

pub use beongae_script::FeeratePerKw;
pub use watch::{BlockEvent, ChainWatcher};

/// Why a chain request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The transaction was refused; the text says why.
    #[error("transaction rejected: {0}")]
    Rejected(String),
    /// The chain source could not be reached or answered badly.
    #[error("chain source unavailable: {0}")]
    Unavailable(String),
}

/// What the node needs from a chain.
pub trait ChainSource: Send + Sync {
    /// Height and hash of the best block.
    fn tip(&self) -> Result<(u32, BlockHash), ChainError>;
    /// Hash of the main-chain block at `height`.
    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError>;
    /// A block by hash.
    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError>;
    /// Submits a transaction for relay and mining.
    fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError>;
    /// Submits `child` with its unconfirmed `parent` as one package (child
    /// pays for parent), for a parent that pays too little to enter a
    /// mempool alone (a commitment in a fee spike). By default the parent
    /// (whatever the answer: it may be known already, or too cheap alone),
    /// then the child.
    fn broadcast_package(
        &self,
        parent: &Transaction,
        child: &Transaction,
    ) -> Result<Txid, ChainError> {
        match self.broadcast(parent) {
            Ok(_) | Err(ChainError::Rejected(_)) => {}
            Err(e) => return Err(e),
        }
        self.broadcast(child)
    }
    /// A feerate expected to confirm within `target_blocks`.
    fn fee_estimate(&self, target_blocks: u16) -> Result<FeeratePerKw, ChainError>;
    /// An unspent confirmed output (gossip validation, funding checks).
    fn utxo(&self, outpoint: &OutPoint) -> Result<Option<TxOut>, ChainError>;
}
