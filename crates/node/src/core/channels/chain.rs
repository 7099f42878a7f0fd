//! Blocks as the channels see them: funding confirmations (and the
//! fundee's check of the funding output), and the transactions that spend
//! a funding output.

use std::collections::BTreeMap;

use beongae_script::funding::funding_script_pubkey;
use beongae_wire::ChannelId;
use bitcoin::{Block, OutPoint, Transaction, Txid};

use super::record::{KEY_HEIGHT, NS_NODE};
use super::{Channels, Phase};
use crate::core::{Output, Reply};

impl Channels {
    /// A block joined the best chain at `height`.
    pub(in crate::core) fn on_block(&mut self, height: u32, block: &Block) {
        self.height = height;
        self.batch
            .put(NS_NODE, KEY_HEIGHT, u64::from(height).to_be_bytes());
        let txids: Vec<Txid> = block.txdata.iter().map(|tx| tx.compute_txid()).collect();
        // Whatever spends a funding output, by outpoint.
        let spends: BTreeMap<OutPoint, usize> = block
            .txdata
            .iter()
            .enumerate()
            .flat_map(|(i, tx)| tx.input.iter().map(move |input| (input.previous_output, i)))
            .collect();
        let ids: Vec<ChannelId> = self.entries.keys().copied().collect();
        for id in ids {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            let outpoint = match &entry.phase {
                Phase::Funded { funding, .. } => funding.funded.funding_outpoint,
                Phase::Normal { chan, .. } => chan.funded.funding_outpoint,
                Phase::Closed(super::record::Closed {
                    funding_outpoint, ..
                }) => *funding_outpoint,
            };
            if let Some(&i) = spends.get(&outpoint) {
                self.funding_spent(id, &block.txdata[i], txids[i], height);
                continue;
            }
            let Phase::Funded {
                funding, confirmed, ..
            } = &mut entry.phase
            else {
                continue;
            };
            if confirmed.is_some() {
                self.check_ready(id);
                continue;
            }
            let Some(index) = txids.iter().position(|t| *t == outpoint.txid) else {
                continue;
            };
            // BOLT 2: the fundee checks that the funding output it signed
            // for is really there.
            let f = &funding.funded;
            let script =
                funding_script_pubkey(&f.local_keys.funding_pubkey, &f.remote_keys.funding_pubkey);
            let ok = block.txdata[index]
                .output
                .get(outpoint.vout as usize)
                .is_some_and(|o| o.script_pubkey == script && o.value == f.funding_amount);
            if !ok {
                self.fail(
                    id,
                    "the funding transaction does not pay the agreed 2-of-2 output",
                );
                continue;
            }
            *confirmed = Some((height, index as u32));
            self.touch(id);
            self.check_ready(id);
        }
        // Ours not yet mined go out again (a refusal, e.g. a commitment
        // that reached the mempool before its funding, is retried).
        for tx in self.pending_broadcasts() {
            self.deferred.push(Output::Broadcast { tx });
        }
    }

    /// `tx` spends the channel's funding output in a block at `height`.
    fn funding_spent(&mut self, id: ChannelId, tx: &Transaction, txid: Txid, height: u32) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if let Phase::Closed(super::record::Closed {
            txid: t, confirmed, ..
        }) = &mut entry.phase
        {
            if confirmed.is_none() {
                // Ours, or another one (the peer's commitment, a closing
                // we signed): either way the channel is settled on chain.
                *t = Some(txid);
                *confirmed = Some(height);
                self.touch(id);
            }
            return;
        }
        // Closed on chain without us: a commitment of the peer's (claiming
        // its outputs is on-chain enforcement work) or a closing we did not
        // see complete.
        let command = self.mark_closed(
            id,
            Some(tx.clone()),
            Some(txid),
            Some(height),
            "the funding output was spent on chain".into(),
        );
        self.reply(
            command,
            Reply::ChannelClosed {
                channel_id: id,
                txid,
            },
        );
    }

    /// The block at `height` left the best chain.
    pub(in crate::core) fn on_block_disconnected(&mut self, height: u32) {
        self.height = height.saturating_sub(1);
        self.batch
            .put(NS_NODE, KEY_HEIGHT, u64::from(self.height).to_be_bytes());
        for (id, entry) in self.entries.iter_mut() {
            match &mut entry.phase {
                Phase::Funded { confirmed, .. } if confirmed.is_some_and(|(h, _)| h >= height) => {
                    *confirmed = None;
                    self.dirty.insert(*id);
                }
                Phase::Closed(super::record::Closed { confirmed, .. })
                    if confirmed.is_some_and(|h| h >= height) =>
                {
                    *confirmed = None;
                    self.dirty.insert(*id);
                }
                _ => {}
            }
        }
    }
}
