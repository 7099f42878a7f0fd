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
        self.followed = true;
        self.batch
            .put(NS_NODE, KEY_HEIGHT, u64::from(height).to_be_bytes());
        self.recent.retain(|(h, _)| *h < height);
        if self.recent.back().is_some_and(|(h, _)| h + 1 != height) {
            self.recent.clear(); // not the next block: start over from it
        }
        self.recent.push_back((height, block.block_hash()));
        while self.recent.len() > super::RECENT_BLOCKS {
            self.recent.pop_front();
        }
        self.batch.put(
            NS_NODE,
            super::record::KEY_RECENT_BLOCKS,
            super::record::encode_recent_blocks(&self.recent),
        );
        self.gossip_block(height, block);
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
                // Our funding, in this block too.
                if let Phase::Closed(super::record::Closed {
                    funding_tx: Some((_, at @ None)),
                    ..
                }) = &mut entry.phase
                {
                    if txids.contains(&outpoint.txid) {
                        *at = Some(height);
                    }
                }
                self.funding_spent(id, &block.txdata[i], txids[i], height);
                continue;
            }
            if let Phase::Normal {
                chan,
                scid: scid @ None,
                ..
            } = &mut entry.phase
            {
                // A funding transaction reorged out after channel_ready
                // confirms again (possibly at another position).
                if let Some(index) = txids.iter().position(|t| *t == outpoint.txid) {
                    let f = &chan.funded;
                    let script = funding_script_pubkey(
                        &f.local_keys.funding_pubkey,
                        &f.remote_keys.funding_pubkey,
                    );
                    let ok = block.txdata[index]
                        .output
                        .get(outpoint.vout as usize)
                        .is_some_and(|o| o.script_pubkey == script && o.value == f.funding_amount);
                    if ok {
                        let vout = u16::try_from(outpoint.vout).unwrap_or(u16::MAX);
                        *scid = beongae_wire::ShortChannelId::new(height, index as u32, vout);
                        tracing::info!(channel = %id, ?scid, "funding transaction confirmed again");
                        self.touch(id);
                    }
                }
                continue;
            }
            if let Phase::Closed(c) = &mut entry.phase {
                // Our funding back on chain after a reorg.
                if let Some((_, at @ None)) = &mut c.funding_tx {
                    if txids.contains(&outpoint.txid) {
                        *at = Some(height);
                        self.dirty.insert(id);
                    }
                }
                let funded = c.withheld == super::record::Withheld::UntilFunded
                    && txids.contains(&outpoint.txid);
                // Compact a buried mutual close: nothing on chain needs its
                // state any more.
                if c.kept.is_some() && c.resolved(height) {
                    self.compact(id);
                }
                if funded {
                    self.funded_after_all(id);
                }
                continue;
            }
            let Phase::Funded {
                funding,
                confirmed,
                since,
                ..
            } = &mut entry.phase
            else {
                continue;
            };
            if confirmed.is_some() {
                self.check_ready(id);
                continue;
            }
            let Some(index) = txids.iter().position(|t| *t == outpoint.txid) else {
                if !funding.funded.we_are_funder && height >= *since + super::unfunded::FUNDEE_WAIT
                {
                    self.forget_unfunded(id);
                }
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
        self.sweeps_in_block(height, block);
        self.foreign_spends(height, block);
        // Force closes resolved and buried: their state goes too.
        let done: Vec<ChannelId> = self
            .entries
            .keys()
            .copied()
            .filter(|id| self.force_close_resolved(*id))
            .collect();
        for id in done {
            tracing::info!(channel = %id, "force close resolved and buried: dropping its state");
            self.compact(id);
        }
        // Claims that matured at this block (our to_local after its delay).
        self.resolve_all();
        self.bump_all();
        self.check_htlc_deadlines();
        // Ours not yet mined go out again (a refusal, e.g. a commitment
        // that reached the mempool before its funding, is retried), once
        // we are at the tip: blocks we catch up with (after a restart, or
        // a deep reorg followed from below) may still hold them. (Those
        // this block made go out once.)
        if height < self.tip {
            return;
        }
        let already: std::collections::BTreeSet<Txid> = self
            .deferred
            .iter()
            .filter_map(|o| match o {
                Output::Broadcast { tx } => Some(tx.compute_txid()),
                _ => None,
            })
            .collect();
        for tx in self.pending_broadcasts() {
            if !already.contains(&tx.compute_txid()) {
                self.deferred.push(Output::Broadcast { tx });
            }
        }
        let packaged: std::collections::BTreeSet<Txid> = self
            .deferred
            .iter()
            .filter_map(|o| match o {
                Output::BroadcastPackage { child, .. } => Some(child.compute_txid()),
                _ => None,
            })
            .collect();
        for (parent, child) in self.pending_packages() {
            if !packaged.contains(&child.compute_txid()) {
                self.deferred
                    .push(Output::BroadcastPackage { parent, child });
            }
        }
    }

    /// `tx` spends the channel's funding output in a block at `height`.
    fn funding_spent(&mut self, id: ChannelId, tx: &Transaction, txid: Txid, height: u32) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if let Phase::Closed(c) = &mut entry.phase {
            if c.confirmed.is_none() {
                // Ours, or another one (the peer's commitment, a closing
                // we signed): either way the channel is settled on chain.
                c.txid = Some(txid);
                c.confirmed = Some(height);
                if c.tx.as_ref().map(Transaction::compute_txid) != Some(txid)
                    && c.reason != super::record::COOPERATIVE_CLOSE
                {
                    // Not ours: what confirmed is what we resolve. Claims on
                    // another spend (reorged out) can never confirm now.
                    c.tx = Some(tx.clone());
                    for s in c.sweeps.drain(..) {
                        self.deferred.push(Output::Forget {
                            txid: s.tx.compute_txid(),
                        });
                    }
                    c.spent.clear();
                    self.unclaimable.remove(&id);
                    self.loading.remove(&id);
                }
                if c.tx.as_ref().map(Transaction::compute_txid) != Some(txid)
                    && c.reason == super::record::COOPERATIVE_CLOSE
                {
                    // Our closing transaction was reorged out and another
                    // spend confirmed: not a mutual close any more.
                    c.reason = "the funding output was spent on chain".into();
                    c.tx = Some(tx.clone());
                    for s in c.sweeps.drain(..) {
                        self.deferred.push(Output::Forget {
                            txid: s.tx.compute_txid(),
                        });
                    }
                    c.spent.clear();
                    self.unclaimable.remove(&id);
                    self.loading.remove(&id);
                }
                self.touch(id);
                self.resolve(id);
            }
            return;
        }
        // One of our mutual closing transactions, or else a commitment
        // (claiming its outputs is on-chain enforcement work) or a closing
        // we did not see complete.
        let mutual = matches!(&entry.phase, Phase::Normal { closing_txs, .. } if closing_txs.iter().any(|t| t.compute_txid() == txid));
        let reason = if mutual {
            super::record::COOPERATIVE_CLOSE.to_string()
        } else {
            "the funding output was spent on chain".to_string()
        };
        let command = self.mark_closed(id, Some(tx.clone()), Some(txid), Some(height), reason);
        self.resolve(id);
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
        self.gossip_block_disconnected(height);
        self.sweeps_disconnected(height);
        self.spends_disconnected(height);
        self.height = height.saturating_sub(1);
        self.followed = true;
        self.batch
            .put(NS_NODE, KEY_HEIGHT, u64::from(self.height).to_be_bytes());
        self.recent.retain(|(h, _)| *h < height);
        self.batch.put(
            NS_NODE,
            super::record::KEY_RECENT_BLOCKS,
            super::record::encode_recent_blocks(&self.recent),
        );
        for (id, entry) in self.entries.iter_mut() {
            match &mut entry.phase {
                Phase::Funded { confirmed, .. } if confirmed.is_some_and(|(h, _)| h >= height) => {
                    *confirmed = None;
                    self.dirty.insert(*id);
                }
                Phase::Normal { scid, .. } if scid.is_some_and(|s| s.block() >= height) => {
                    // The funding left the chain after channel_ready: no
                    // new HTLCs until it confirms again (SAFETY.md "Funding
                    // reorged out ... after channel_ready").
                    tracing::warn!(channel = %id, "funding transaction reorged out; the channel takes no new htlcs until it confirms again");
                    *scid = None;
                    self.dirty.insert(*id);
                }
                Phase::Closed(c) => {
                    // Our funding left the chain: it goes out again ahead
                    // of our close.
                    if let Some((_, at)) = &mut c.funding_tx {
                        if at.is_some_and(|h| h >= height) {
                            *at = None;
                            self.dirty.insert(*id);
                        }
                    }
                    if c.confirmed.is_none_or(|h| h < height) {
                        continue;
                    }
                    if c.kept.is_none() {
                        // Deeper than we follow: the close was buried
                        // BURIED_DEPTH blocks and its state dropped. Nothing
                        // of ours is lost (a mutual close paid our wallet),
                        // but say so: the funding output is unspent again.
                        tracing::error!(channel = %id, height, "a reorg deeper than {} blocks undid the confirmed close of this channel; its state was dropped, so nothing more is done for it on chain", super::record::BURIED_DEPTH);
                    }
                    c.confirmed = None;
                    // The spend left the chain: unless it was our own
                    // transaction, nothing spends the funding now.
                    if c.tx.as_ref().map(Transaction::compute_txid) != c.txid {
                        c.txid = None;
                    }
                    self.dirty.insert(*id);
                }
                _ => {}
            }
        }
    }
}

impl Channels {
    /// Drops what a closed channel kept for its resolution: its state and
    /// the HTLC lists of the peer's commitments we signed.
    fn compact(&mut self, id: ChannelId) {
        if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
            c.kept = None;
        }
        self.batch
            .delete_prefix(super::record::NS_REMOTE_HTLCS, id.0.to_vec());
        self.touch(id);
    }
}

/// BOLT 2 §"`cltv_expiry_delta` Selection": the timeout deadline of an HTLC
/// we offered is `G` blocks after its `cltv_expiry` ("1 or 2 blocks is
/// reasonable").
pub(super) const OFFERED_DEADLINE_BLOCKS: u32 = 1;
/// The fulfillment deadline of an HTLC we fulfilled: `2R+G+S` blocks before
/// its `cltv_expiry` ("18 blocks is reasonable").
pub(super) const FULFILL_DEADLINE_BLOCKS: u32 = 18;

impl Channels {
    /// BOLT 2: "if an HTLC which it offered is in either node's current
    /// commitment transaction, AND is past this timeout deadline: SHOULD
    /// send an `error` to the receiving peer (if connected). MUST fail the
    /// channel", and "if an HTLC it has fulfilled is in either node's
    /// current commitment transaction, AND is past this fulfillment
    /// deadline: SHOULD send an `error` to the offering peer (if
    /// connected). MUST fail the channel": past the deadline the peer could
    /// take the HTLC's amount back on chain (its timeout) after we gave
    /// the preimage, or keep ours for ever.
    pub(super) fn check_htlc_deadlines(&mut self) {
        let height = self.height;
        let mut due = Vec::new();
        for (id, entry) in &self.entries {
            let Phase::Normal { chan, .. } = &entry.phase else {
                continue;
            };
            let c = &chan.commitments;
            let unverified = !entry.verified;
            let redone = |htlc: u64| {
                entry.redo.iter().any(|m| {
                    matches!(m, beongae_wire::msgs::Message::UpdateFulfillHtlc(f) if f.id == htlc)
                })
            };
            let htlcs = c
                .local
                .htlcs
                .iter()
                .cloned()
                .chain(
                    c.remote
                        .htlcs
                        .iter()
                        .map(|h| beongae_channel::commitments::SpecHtlc {
                            offered: !h.offered,
                            ..h.clone()
                        }),
                )
                .chain(c.remote_next.iter().flat_map(|n| {
                    n.htlcs
                        .iter()
                        .map(|h| beongae_channel::commitments::SpecHtlc {
                            offered: !h.offered,
                            ..h.clone()
                        })
                }));
            for h in htlcs {
                // `offered` is from our side here.
                let why = if h.offered
                    && height > h.cltv_expiry.saturating_add(OFFERED_DEADLINE_BLOCKS)
                {
                    format!(
                        "htlc {} we offered expired at block {} and is still unresolved at {height}",
                        h.id, h.cltv_expiry
                    )
                } else if !h.offered
                    && height + FULFILL_DEADLINE_BLOCKS > h.cltv_expiry
                    && (c.we_fulfill(h.id) || redone(h.id) || self.settled_htlc(*id, h.id))
                {
                    format!(
                        "htlc {} we fulfilled expires at block {} and is still unresolved at {height}",
                        h.id, h.cltv_expiry
                    )
                } else {
                    continue;
                };
                if unverified {
                    // Since this process loaded the channel, no
                    // channel_reestablish showed our state is current: it
                    // may be an old copy (a restored backup), whose
                    // commitment the peer would punish with the whole
                    // channel (ADR 0007). It goes out once the peer
                    // reestablishes, or when the user forces it.
                    tracing::error!(channel = %id, %why, "deadline passed before the peer confirmed our state; waiting for its channel_reestablish (closechannel --force to go to chain now)");
                    break;
                }
                due.push((*id, why));
                break;
            }
        }
        for (id, why) in due {
            self.fail(id, &why);
        }
    }
}
