//! BOLT 5 on chain: once a transaction spending a channel's funding output
//! confirms, what of it is ours to claim, swept to our wallet and kept
//! (`Closed::sweeps`) until it confirms: our `to_local` after its delay, our
//! `to_remote` in the peer's commitment, and everything of a commitment the
//! peer revoked (§"Revoked Transaction Close Handling": the HTLCs that
//! commitment carried are read from the store, [`Output::LoadRemoteHtlcs`]).
//! HTLC outputs of unrevoked commitments come next (ADR 0008).

use beongae_channel::onchain::{
    claim_transaction, commitment_number, our_to_local_claim, their_commitment_claims, Claim,
};
use beongae_channel::penalty::{revoked_claims, second_stage_claim, PenaltySecrets};
use beongae_channel::revocation::LocalSecrets;
use beongae_script::commitment::CommitmentNumber;
use beongae_wire::ChannelId;
use bitcoin::{Amount, Block, Transaction};

use super::record::{self, KeptState, Sweep};
use super::{Channels, Phase};
use crate::core::Output;

impl Channels {
    /// The funding output of closed channel `id` is spent by a confirmed
    /// transaction (`Closed::tx`); called again at every block until what is
    /// ours of it is claimed (BOLT 5):
    /// - our own commitment: our `to_local` once `to_self_delay` has passed;
    /// - a commitment of the peer's it revoked: everything, once the
    ///   store gave that commitment's HTLCs ([`Output::LoadRemoteHtlcs`]);
    /// - its current commitment: our `to_remote`.
    pub(super) fn resolve(&mut self, id: ChannelId) {
        if self.unclaimable.contains(&id) || self.loading.contains(&id) {
            return;
        }
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let Phase::Closed(c) = &entry.phase else {
            return;
        };
        let Some(confirmed) = c.confirmed else {
            return;
        };
        if c.mutual() || !c.sweeps.is_empty() {
            return;
        }
        let (Some(kept), Some(spend)) = (&c.kept, &c.tx) else {
            return;
        };
        let keys = self.keys.channel(entry.index);
        let (signing, secrets) = self.secrets(entry.index);
        // What a resolution needs of the kept state, whichever phase it
        // closed in (before channel_ready: commitment 0 on both sides).
        let (funded, our_txid, remote_current) = match kept {
            KeptState::Normal(b) => match record::decode_normal(b, signing, secrets) {
                Ok(chan) => (
                    chan.funded,
                    chan.signed_local_commitment(&self.secp)
                        .ok()
                        .map(|t| t.compute_txid()),
                    chan.remote.current.get(),
                ),
                Err(_) => return,
            },
            KeptState::Funded(b) => match record::decode_funding(b, signing, secrets) {
                Ok(f) => (
                    f.funded,
                    f.signed_local_commitment(&self.secp)
                        .ok()
                        .map(|t| t.compute_txid()),
                    0,
                ),
                Err(_) => return,
            },
        };
        let Some(number) = commitment_number(&funded, spend) else {
            return; // not a commitment (a closing transaction)
        };
        let ours = our_txid == Some(spend.compute_txid());
        let claims = if ours {
            // Spendable in the block `to_self_delay` after the commitment's.
            let delay = u32::from(funded.local_to_self_delay);
            if self.height + 1 < confirmed + delay {
                return;
            }
            let Some(n) = CommitmentNumber::new(number) else {
                return;
            };
            let point = LocalSecrets::new(keys.commitment_seed).point(&self.secp, n);
            match our_to_local_claim(
                &self.secp,
                &funded,
                spend,
                &point,
                &keys.delayed_payment_base,
            ) {
                Ok(claim) => claim.into_iter().collect(),
                Err(e) => {
                    return tracing::error!(channel = %id, error = %e, "cannot derive our delayed key");
                }
            }
        } else if number < remote_current {
            tracing::warn!(channel = %id, number, "the peer broadcast a revoked commitment: punishing it");
            self.loading.insert(id);
            return self.deferred.push(Output::LoadRemoteHtlcs {
                channel_id: id,
                number,
            });
        } else {
            their_commitment_claims(&funded, spend, keys.payment_base)
        };
        self.sweep(id, vec![claims]);
    }

    /// Our funds of closed channel `id` still on their way back to the
    /// wallet, and when our delayed output becomes spendable: our balance
    /// while our commitment awaits confirmation, then what of the confirmed
    /// spend is ours until it is swept, then the sweeps until they confirm.
    pub(super) fn on_the_way(&self, id: ChannelId) -> (Amount, Option<u32>) {
        let nothing = (Amount::ZERO, None);
        let Some(entry) = self.entries.get(&id) else {
            return nothing;
        };
        let Phase::Closed(c) = &entry.phase else {
            return nothing;
        };
        if c.mutual() || c.withheld != record::Withheld::No {
            return nothing;
        }
        let Some(confirmed) = c.confirmed else {
            // Our commitment, broadcast and not confirmed yet.
            return match c.tx {
                Some(_) if c.reason != record::COOPERATIVE_CLOSE => {
                    (Amount::from_sat(c.local.to_msat() / 1000), None)
                }
                _ => nothing,
            };
        };
        if !c.sweeps.is_empty() {
            let pending = c
                .sweeps
                .iter()
                .filter(|s| s.confirmed.is_none())
                .flat_map(|s| s.tx.output.iter().map(|o| o.value))
                .sum();
            return (pending, None);
        }
        let (Some(KeptState::Normal(bytes)), Some(spend)) = (&c.kept, &c.tx) else {
            return nothing;
        };
        let keys = self.keys.channel(entry.index);
        let (signing, secrets) = self.secrets(entry.index);
        let Ok(chan) = record::decode_normal(bytes, signing, secrets) else {
            return nothing;
        };
        let ours = chan
            .signed_local_commitment(&self.secp)
            .is_ok_and(|t| t.compute_txid() == spend.compute_txid());
        if ours {
            let point = commitment_number(&chan.funded, spend)
                .and_then(CommitmentNumber::new)
                .map(|n| LocalSecrets::new(keys.commitment_seed).point(&self.secp, n));
            let claim = point.and_then(|p| {
                our_to_local_claim(
                    &self.secp,
                    &chan.funded,
                    spend,
                    &p,
                    &keys.delayed_payment_base,
                )
                .ok()
                .flatten()
            });
            let delay = u32::from(chan.funded.local_to_self_delay);
            return match claim {
                Some(c) => (c.input.value, Some(confirmed + delay)),
                None => nothing,
            };
        }
        let value = their_commitment_claims(&chan.funded, spend, keys.payment_base)
            .iter()
            .map(|c| c.input.value)
            .sum();
        (value, None)
    }

    /// [`Channels::resolve`] for every closed channel.
    pub(super) fn resolve_all(&mut self) {
        let closed: Vec<ChannelId> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.phase, Phase::Closed(_)))
            .map(|(id, _)| *id)
            .collect();
        for id in closed {
            self.resolve(id);
        }
    }

    /// Broadcasts (and keeps) one transaction per group of `claims`, each
    /// taking its outputs to our wallet; a group worth less than its fee is
    /// left.
    fn sweep(&mut self, id: ChannelId, groups: Vec<Vec<Claim>>) {
        let Some(destination) = self.settings.close_script.clone() else {
            self.unclaimable.insert(id);
            return tracing::error!(channel = %id, "no wallet address to sweep the channel's outputs to");
        };
        let mut made = Vec::new();
        for claims in groups.iter().filter(|g| !g.is_empty()) {
            match claim_transaction(&self.secp, claims, destination.clone(), self.feerate) {
                Ok(tx) => made.push(tx),
                // Worth less than its fee now; looked at again on restart.
                Err(e) => tracing::warn!(channel = %id, error = %e, "not claiming an output"),
            }
        }
        if made.is_empty() {
            self.unclaimable.insert(id);
            return;
        }
        for tx in made {
            tracing::info!(channel = %id, txid = %tx.compute_txid(), value = %tx.output[0].value, "claiming the channel's outputs");
            if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
                c.sweeps.push(Sweep {
                    tx: tx.clone(),
                    confirmed: None,
                });
            }
            self.deferred.push(Output::Broadcast { tx });
        }
        self.touch(id);
    }

    /// In `block`, a transaction not ours spends an output of the revoked
    /// commitment a closed channel was closed with: the cheater's HTLC
    /// transaction won that output. Our claim on it can never confirm (it
    /// is dropped), and the HTLC transaction's own output is taken with the
    /// revocation key (BOLT 5).
    pub(super) fn second_stages(&mut self, block: &Block) {
        let ids: Vec<ChannelId> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                matches!(&e.phase, Phase::Closed(c) if c.confirmed.is_some() && !c.sweeps.is_empty() && !c.mutual())
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(entry) = self.entries.get(&id) else {
                continue;
            };
            let Phase::Closed(c) = &entry.phase else {
                continue;
            };
            let (Some(KeptState::Normal(bytes)), Some(spend)) = (&c.kept, &c.tx) else {
                continue;
            };
            let commitment = spend.compute_txid();
            let ours: std::collections::BTreeSet<bitcoin::Txid> =
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
            let keys = self.keys.channel(entry.index);
            let (signing, secrets) = self.secrets(entry.index);
            let Ok(chan) = record::decode_normal(bytes, signing, secrets) else {
                continue;
            };
            let secret = commitment_number(&chan.funded, spend)
                .filter(|n| *n < chan.remote.current.get())
                .and_then(CommitmentNumber::new)
                .and_then(|n| chan.remote.revoked_secret(n));
            let Some(secret) = secret else {
                continue; // not a revoked commitment
            };
            let penalty_secrets = PenaltySecrets {
                revocation_base: keys.revocation_base,
                payment_base: keys.payment_base,
            };
            let mut groups = Vec::new();
            let spent: Vec<bitcoin::OutPoint> = theirs
                .iter()
                .flat_map(|t| t.input.iter().map(|i| i.previous_output))
                .collect();
            for t in &theirs {
                match second_stage_claim(&self.secp, &chan.funded, t, secret, &penalty_secrets) {
                    Ok(Some(claim)) => groups.push(vec![claim]),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(channel = %id, error = %e, "cannot claim the cheater's htlc transaction")
                    }
                }
            }
            tracing::warn!(channel = %id, count = theirs.len(), "the cheater spent revoked htlc outputs: taking their second stage");
            if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
                c.sweeps.retain(|s| {
                    s.confirmed.is_some()
                        || !s
                            .tx
                            .input
                            .iter()
                            .any(|i| spent.contains(&i.previous_output))
                });
            }
            self.touch(id);
            self.sweep(id, groups);
        }
    }

    /// The HTLCs of the peer's revoked commitment `number`: the justice
    /// transaction goes out (BOLT 5: "MUST resolve" every output of it).
    pub(in crate::core) fn on_remote_htlcs(
        &mut self,
        id: ChannelId,
        number: u64,
        stored: Result<Option<Vec<u8>>, String>,
    ) {
        self.loading.remove(&id);
        let htlcs = match stored {
            Ok(None) => Vec::new(),
            Ok(Some(bytes)) => match record::decode_remote_htlcs(&bytes) {
                Ok(h) => h,
                Err(e) => {
                    // Its to_local and our to_remote cannot wait.
                    tracing::error!(channel = %id, number, error = %e, "cannot read the revoked commitment's htlcs; punishing without them");
                    Vec::new()
                }
            },
            Err(e) => {
                // Asked again at the next block.
                return tracing::error!(channel = %id, number, error = %e, "cannot load the revoked commitment's htlcs");
            }
        };
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let keys = self.keys.channel(entry.index);
        let (signing, secrets) = self.secrets(entry.index);
        let Phase::Closed(c) = &entry.phase else {
            return;
        };
        if !c.sweeps.is_empty() {
            return; // already punished (a repeated answer)
        }
        let (Some(KeptState::Normal(bytes)), Some(spend)) = (&c.kept, &c.tx) else {
            return;
        };
        let claims = record::decode_normal(bytes, signing, secrets)
            .map_err(|e| e.to_string())
            .and_then(|chan| {
                let n = CommitmentNumber::new(number).ok_or("commitment number")?;
                let secret = chan
                    .remote
                    .revoked_secret(n)
                    .ok_or("no secret kept for it")?;
                revoked_claims(
                    &self.secp,
                    &chan.funded,
                    spend,
                    n,
                    secret,
                    &htlcs,
                    &PenaltySecrets {
                        revocation_base: keys.revocation_base,
                        payment_base: keys.payment_base,
                    },
                )
                .map_err(|e| e.to_string())
            });
        match claims {
            Ok(claims) => {
                // Outputs the cheater may spend too (its HTLCs, with its
                // second-stage transactions) each go alone, so that losing
                // one race never holds back the others.
                tracing::warn!(channel = %id, number, "broadcasting the justice transactions");
                let (contested, rest): (Vec<Claim>, Vec<Claim>) =
                    claims.into_iter().partition(Claim::contested);
                let mut groups = vec![rest];
                groups.extend(contested.into_iter().map(|c| vec![c]));
                self.sweep(id, groups);
            }
            Err(e) => {
                // Not asked again every block; a restart looks again.
                self.unclaimable.insert(id);
                tracing::error!(channel = %id, number, error = %e, "cannot build the justice transaction");
            }
        }
    }

    /// Our sweeps in `block` (at `height`) are confirmed.
    pub(super) fn sweeps_in_block(&mut self, height: u32, block: &Block) {
        let txids: std::collections::BTreeSet<bitcoin::Txid> =
            block.txdata.iter().map(Transaction::compute_txid).collect();
        let mut touched = Vec::new();
        for (id, entry) in self.entries.iter_mut() {
            if let Phase::Closed(c) = &mut entry.phase {
                for s in &mut c.sweeps {
                    if s.confirmed.is_none() && txids.contains(&s.tx.compute_txid()) {
                        s.confirmed = Some(height);
                        touched.push(*id);
                    }
                }
            }
        }
        for id in touched {
            self.touch(id);
        }
    }

    /// The block at `height` left the chain: our sweeps in it are not
    /// confirmed any more (they go out again).
    pub(super) fn sweeps_disconnected(&mut self, height: u32) {
        let mut touched = Vec::new();
        for (id, entry) in self.entries.iter_mut() {
            if let Phase::Closed(c) = &mut entry.phase {
                for s in &mut c.sweeps {
                    if s.confirmed.is_some_and(|h| h >= height) {
                        s.confirmed = None;
                        touched.push(*id);
                    }
                }
            }
        }
        for id in touched {
            self.touch(id);
        }
    }
}
