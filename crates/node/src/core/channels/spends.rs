//! What others do on chain with the outputs of a closed channel's confirmed
//! commitment, and what it settles:
//! - a transaction not ours spending one of them is recorded
//!   (`Closed::spent`): that output is not claimed again (our claim on it
//!   can never confirm, and is dropped) unless a reorg undoes the spend;
//! - a spend that reveals the preimage of an HTLC we offered (the peer's
//!   HTLC-success transaction on its commitment, or its claim with the
//!   preimage on ours) settles our payment (BOLT 5: "MUST extract the
//!   payment preimage from the transaction input witness");
//! - the cheater's HTLC transaction on a revoked commitment: its output is
//!   taken with the revocation key;
//! - an HTLC we offered that the chain resolved back to us (our timeout
//!   buried, or no output of it in the confirmed commitment) fails our
//!   payment once [`ANTI_REORG_DEPTH`] blocks deep.

use beongae_channel::onchain::{commitment_number, our_offered_htlc_outputs};
use beongae_channel::onchain_htlcs::preimage_in;
use beongae_channel::penalty::{second_stage_claims, PenaltySecrets};
use beongae_script::commitment::CommitmentNumber;
use beongae_wire::{ChannelId, PaymentHash};
use bitcoin::{Block, Transaction, Txid};

use super::record::{self, KeptState, Spent};
use super::resolve::{Case, Confirmed};
use super::{Channels, Phase};

/// Blocks on top of a resolution before a payment is failed for it: a
/// reorg shallower than this cannot turn our timeout into the peer's claim
/// with the preimage after we reported the payment failed (paying again
/// then would pay twice). LDK waits the same 6 blocks (`ANTI_REORG_DELAY`).
pub(crate) const ANTI_REORG_DEPTH: u32 = 6;

impl Channels {
    /// The transactions of `block` (at `height`) that are not ours and
    /// spend outputs of a closed channel's confirmed commitment.
    pub(super) fn foreign_spends(&mut self, height: u32, block: &Block) {
        let ids: Vec<ChannelId> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                matches!(&e.phase, Phase::Closed(c) if c.confirmed.is_some() && c.tx.is_some() && !c.mutual())
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(Phase::Closed(c)) = self.entries.get(&id).map(|e| &e.phase) else {
                continue;
            };
            let Some(commitment) = c.tx.as_ref().map(Transaction::compute_txid) else {
                continue;
            };
            let ours: std::collections::BTreeSet<Txid> =
                c.sweeps.iter().map(|s| s.tx.compute_txid()).collect();
            let theirs: Vec<&Transaction> = block
                .txdata
                .iter()
                .filter(|t| {
                    !ours.contains(&t.compute_txid())
                        && t.input.iter().any(|i| i.previous_output.txid == commitment)
                })
                .collect();
            if theirs.is_empty() {
                continue;
            }
            let spent: Vec<Spent> = theirs
                .iter()
                .flat_map(|t| {
                    let txid = t.compute_txid();
                    t.input
                        .iter()
                        .filter(|i| i.previous_output.txid == commitment)
                        .map(move |i| Spent {
                            outpoint: i.previous_output,
                            txid,
                            height,
                        })
                })
                .collect();
            // Preimages of the HTLCs we offered on this channel: our
            // payments' and our forwards' (which go upstream then).
            let pending: Vec<(u64, PaymentHash)> = self
                .by_htlc
                .range((id, 0)..=(id, u64::MAX))
                .map(|((_, htlc), hash)| (*htlc, *hash))
                .chain(self.forwarded_out(id))
                .collect();
            let learned: Vec<(u64, beongae_wire::Preimage)> = pending
                .iter()
                .filter_map(|(htlc, hash)| {
                    theirs
                        .iter()
                        .flat_map(|t| t.input.iter())
                        .find_map(|i| preimage_in(&i.witness, hash))
                        .map(|p| (*htlc, p))
                })
                .collect();
            tracing::warn!(channel = %id, count = spent.len(), "the peer spent outputs of the confirmed commitment");
            // Our claims on those outputs can never confirm.
            let lost: Vec<Txid> = match self.entries.get(&id).map(|e| &e.phase) {
                Some(Phase::Closed(c)) => c
                    .sweeps
                    .iter()
                    .filter(|s| {
                        s.confirmed.is_none()
                            && s.tx
                                .input
                                .iter()
                                .any(|i| spent.iter().any(|x| x.outpoint == i.previous_output))
                    })
                    .map(|s| s.tx.compute_txid())
                    .collect(),
                _ => Vec::new(),
            };
            self.drop_sweeps(height, |s| lost.contains(&s.tx.compute_txid()));
            if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
                for x in &spent {
                    if !c.spent.iter().any(|y| y.outpoint == x.outpoint) {
                        c.spent.push(*x);
                    }
                }
            }
            self.touch(id);
            for (htlc, preimage) in learned {
                tracing::info!(channel = %id, htlc, "the peer's spend on chain revealed the preimage of our htlc");
                self.outgoing_fulfilled(id, htlc, preimage);
            }
            self.revoked_second_stages(id, &theirs);
        }
    }

    /// The cheater spent outputs of its revoked commitment with its HTLC
    /// transactions `theirs`: each one's output has the `to_local` script of
    /// that commitment, and is taken with the revocation key before the
    /// cheater's delay (BOLT 5 §"Revoked Transaction Close Handling").
    fn revoked_second_stages(&mut self, id: ChannelId, theirs: &[&Transaction]) {
        if !self
            .confirmed_commitment(id)
            .is_some_and(|k| matches!(k.case, Case::Revoked(_)))
        {
            return;
        }
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let Phase::Closed(c) = &entry.phase else {
            return;
        };
        let (Some(KeptState::Normal(bytes)), Some(spend)) = (&c.kept, &c.tx) else {
            return;
        };
        let keys = self.keys.channel(entry.index);
        let (signing, secrets) = self.secrets(entry.index);
        let Ok(chan) = record::decode_normal(bytes, signing, secrets) else {
            return;
        };
        let secret = commitment_number(&chan.funded, spend)
            .filter(|n| *n < chan.remote.current.get())
            .and_then(CommitmentNumber::new)
            .and_then(|n| chan.remote.revoked_secret(n));
        let Some(secret) = secret else {
            return; // not a revoked commitment
        };
        let penalty_secrets = PenaltySecrets {
            revocation_base: keys.revocation_base,
            payment_base: keys.payment_base,
        };
        let mut groups = Vec::new();
        let mut parents = Vec::new();
        for t in theirs {
            match second_stage_claims(&self.secp, &chan.funded, t, secret, &penalty_secrets) {
                Ok(claims) => {
                    if !claims.is_empty() {
                        parents.push((*t).clone());
                    }
                    groups.extend(claims.into_iter().map(|c| vec![c]));
                }
                Err(e) => {
                    tracing::error!(channel = %id, error = %e, "cannot claim the cheater's htlc transaction")
                }
            }
        }
        if !groups.is_empty() {
            tracing::warn!(channel = %id, count = groups.len(), "the cheater spent revoked htlc outputs: taking their second stage");
        }
        // Kept with the claims (stored together): a fee bump of them reads
        // the values they spend from these.
        if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
            for t in parents {
                let txid = t.compute_txid();
                if !c.theirs.iter().any(|x| x.compute_txid() == txid) {
                    c.theirs.push(t);
                }
            }
        }
        self.sweep(id, groups);
    }

    /// The block at `height` left the chain: the peer's spends in it are
    /// undone (the outputs are ours to claim again).
    pub(super) fn spends_disconnected(&mut self, height: u32) {
        let mut touched = Vec::new();
        for (id, entry) in self.entries.iter_mut() {
            if let Phase::Closed(c) = &mut entry.phase {
                let before = c.spent.len();
                c.spent.retain(|s| s.height < height);
                if c.spent.len() != before {
                    touched.push(*id);
                }
            }
        }
        for id in touched {
            self.touch(id);
        }
    }

    /// Our payments over closed channel `id` that the chain resolved back
    /// to us fail, [`ANTI_REORG_DEPTH`] blocks after: an HTLC with no
    /// output in the confirmed commitment `k` (below the dust limit, or not
    /// in it), or whose output our timeout (or justice) transaction took.
    /// When `k` is ours or the peer's current one its HTLC outputs are
    /// known; for a revoked commitment of the peer's, the HTLCs fail once
    /// every claim of ours on it is buried; for an old commitment of ours
    /// (revoked), an HTLC fails when the commitment has no output for it,
    /// or once the peer's spends of every output that may hold it are
    /// buried without its preimage (a spend with the preimage settles it
    /// instead, in [`Channels::foreign_spends`]). BOLT 5: "MUST fail the
    /// corresponding incoming HTLC (if any)" once the commitment without it
    /// is deep enough. Our own payment fails then too: the peer may have
    /// fulfilled it off-chain, but no coin of ours went to it through the
    /// HTLC (what the peer takes, it takes as the penalty of the whole
    /// channel).
    pub(super) fn outgoing_on_chain(&mut self, id: ChannelId, k: &Confirmed) {
        let pending: Vec<(u64, PaymentHash)> = self
            .by_htlc
            .range((id, 0)..=(id, u64::MAX))
            .map(|((_, htlc), hash)| (*htlc, *hash))
            .chain(self.forwarded_out(id))
            .collect();
        if pending.is_empty() {
            return;
        }
        let Some(Phase::Closed(c)) = self.entries.get(&id).map(|e| &e.phase) else {
            return;
        };
        let height = self.height;
        let commitment = c.tx.as_ref().map(Transaction::compute_txid);
        let deep = |h: Option<u32>| h.is_some_and(|h| height + 1 >= h + ANTI_REORG_DEPTH);
        if !deep(c.confirmed) {
            return;
        }
        let mut failed = Vec::new();
        let outputs = k.htlcs.as_deref();
        for (htlc, hash) in pending {
            let why = match outputs {
                Some(list) => match list.iter().find(|o| o.we_offered && o.id == htlc) {
                    None => Some("the channel closed on chain with no output for the htlc (below the dust limit, or not in the confirmed commitment)"),
                    Some(o) => c
                        .sweeps
                        .iter()
                        .any(|s| {
                            deep(s.confirmed)
                                && s.tx.input.iter().any(|i| i.previous_output == o.outpoint)
                        })
                        .then_some("the htlc timed out on chain"),
                },
                None => match k.case {
                    // A revoked commitment: every output we took, buried,
                    // and none left as worth less than its fee (the cheater
                    // could still claim that one with the preimage).
                    Case::Revoked(_) => (!c.sweeps.is_empty()
                        && c.sweeps.iter().all(|s| deep(s.confirmed) || !s.live())
                        && !self.uneconomical.iter().any(|o| Some(o.txid) == commitment))
                    .then_some("the channel was resolved on chain"),
                    // Every output that may hold it (HTLCs sharing its
                    // hash share its script) taken by the peer, buried,
                    // none with the preimage (which settles it instead).
                    Case::OursRevoked(_) => k.old_keys.as_ref().and_then(|keys| {
                        let outputs = our_offered_htlc_outputs(&k.view.funded, &k.spend, keys, &hash);
                        if outputs.is_empty() {
                            Some("our old commitment went on chain without the htlc")
                        } else {
                            outputs
                                .iter()
                                .all(|o| c.spent.iter().any(|s| s.outpoint == *o && deep(Some(s.height))))
                                .then_some("the peer took the htlc's outputs of our old commitment without its preimage")
                        }
                    }),
                    // A commitment we could not read: its HTLCs may still be
                    // claimed with the preimage; failing them could pay twice.
                    _ => None,
                },
            };
            if let Some(why) = why {
                failed.push((htlc, why));
            }
        }
        for (htlc, why) in failed {
            self.outgoing_failed_on_chain(id, htlc, why);
        }
    }
}
