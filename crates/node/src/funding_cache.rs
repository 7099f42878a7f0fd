//! Funding outputs of announced channels, looked up on the chain for gossip
//! (BOLT 7 §"The `channel_announcement` Message": the receiver checks that
//! the short channel id names an unspent P2WSH output of the two bitcoin
//! keys).
//!
//! A short channel id names a block height, a transaction index and an
//! output index. The lookup takes the block's transaction ids (kept for the
//! last [`BLOCKS_KEPT`] blocks asked about: announcements come in block
//! order during a sync, many from one block) and asks the chain source for
//! the unspent output.

use std::collections::{HashMap, VecDeque};

use beongae_chain::ChainSource;
use beongae_wire::ShortChannelId;
use bitcoin::{BlockHash, OutPoint, Txid};

use crate::core::FundingLookup;

/// How many blocks' transaction ids are kept.
const BLOCKS_KEPT: usize = 256;

/// Transaction ids of recently asked blocks.
#[derive(Debug, Default)]
pub(crate) struct FundingCache {
    blocks: HashMap<u32, (BlockHash, Vec<Txid>)>,
    order: VecDeque<u32>,
}

impl FundingCache {
    /// The unspent output `scid` names, if any.
    pub(crate) fn lookup(
        &mut self,
        chain: &dyn ChainSource,
        scid: ShortChannelId,
    ) -> FundingLookup {
        let height = scid.block();
        let hash = match chain.block_hash(height) {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        // A cached block replaced by a reorganisation is read again.
        let cached = self
            .blocks
            .get(&height)
            .filter(|(h, _)| *h == hash)
            .map(|(_, txids)| txids.get(scid.tx_index() as usize).copied());
        let txid = match cached {
            Some(t) => t,
            None => {
                let block = match chain.block(&hash) {
                    Ok(Some(b)) => b,
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(e.to_string()),
                };
                let txids: Vec<Txid> = block.txdata.iter().map(|t| t.compute_txid()).collect();
                let t = txids.get(scid.tx_index() as usize).copied();
                if self.blocks.insert(height, (hash, txids)).is_none() {
                    self.order.push_back(height);
                }
                while self.order.len() > BLOCKS_KEPT {
                    if let Some(old) = self.order.pop_front() {
                        self.blocks.remove(&old);
                    }
                }
                t
            }
        };
        let Some(txid) = txid else {
            return Ok(None);
        };
        let outpoint = OutPoint::new(txid, u32::from(scid.output()));
        chain
            .utxo(&outpoint)
            .map(|o| o.map(|out| (outpoint, out)))
            .map_err(|e| e.to_string())
    }
}
