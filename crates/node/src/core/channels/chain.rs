//! Blocks as the channels see them: funding confirmations (and the
//! fundee's check of the funding output), and the transactions that spend
//! a funding output.

use beongae_script::funding::funding_script_pubkey;
use beongae_wire::ChannelId;
use bitcoin::{Block, Txid};

use super::record::{KEY_HEIGHT, NS_NODE};
use super::{Channels, Phase};
use crate::core::Event;

impl Channels {
    /// A block joined the best chain at `height`.
    pub(in crate::core) fn on_block(&mut self, height: u32, block: &Block) {
        self.height = height;
        self.batch
            .put(NS_NODE, KEY_HEIGHT, u64::from(height).to_be_bytes());
        let txids: Vec<Txid> = block.txdata.iter().map(|tx| tx.compute_txid()).collect();
        let ids: Vec<ChannelId> = self.entries.keys().copied().collect();
        for id in ids {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            match &mut entry.phase {
                Phase::Funded {
                    funding, confirmed, ..
                } if confirmed.is_none() => {
                    let outpoint = funding.funded.funding_outpoint;
                    let Some(index) = txids.iter().position(|t| *t == outpoint.txid) else {
                        continue;
                    };
                    let tx = &block.txdata[index];
                    // BOLT 2: the fundee checks the funding output it
                    // signed for is really there.
                    let f = &funding.funded;
                    let script = funding_script_pubkey(
                        &f.local_keys.funding_pubkey,
                        &f.remote_keys.funding_pubkey,
                    );
                    let ok = tx
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
                Phase::Funded { .. } => self.check_ready(id),
                Phase::Normal { chan, .. } => {
                    let outpoint = chan.funded.funding_outpoint;
                    if let Some(tx) = block
                        .txdata
                        .iter()
                        .find(|tx| tx.input.iter().any(|i| i.previous_output == outpoint))
                    {
                        // Closed on chain without us: a commitment of the
                        // peer's (claiming its outputs is on-chain
                        // enforcement work) or a closing we did not see.
                        let txid = tx.compute_txid();
                        let local = chan.commitments.local.to_local;
                        entry.phase = Phase::Closed {
                            tx: Some(tx.clone()),
                            txid,
                            local,
                            confirmed: Some(height),
                            reason: "the funding output was spent on chain".into(),
                        };
                        self.touch(id);
                        self.fail_payments_of(id, "closed on chain");
                        self.event(Event::ChannelClosed {
                            channel_id: id,
                            txid: Some(txid),
                        });
                    }
                }
                Phase::Closed {
                    txid, confirmed, ..
                } if confirmed.is_none() => {
                    if txids.contains(txid) {
                        *confirmed = Some(height);
                        self.touch(id);
                    }
                }
                Phase::Closed { .. } => {}
            }
        }
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
                Phase::Closed { confirmed, .. } if confirmed.is_some_and(|h| h >= height) => {
                    *confirmed = None;
                    self.dirty.insert(*id);
                }
                _ => {}
            }
        }
    }
}
