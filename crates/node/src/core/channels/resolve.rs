//! BOLT 5 on chain: once a transaction spending a channel's funding output
//! confirms, what of it is ours to claim, swept to our wallet and kept
//! (`Closed::sweeps`) until it confirms: our `to_local` after its delay,
//! our HTLC-timeout and HTLC-success transactions and their outputs after
//! the delay, our `to_remote` and HTLCs in the peer's commitment, and
//! everything of a commitment the peer revoked (§"Revoked Transaction Close
//! Handling": the HTLCs that commitment carried are read from the store,
//! [`Output::LoadRemoteHtlcs`]). What others spend is in `htlcs_onchain`.

use std::collections::BTreeSet;

use beongae_channel::commitments::CommitSpec;
use beongae_channel::onchain::{
    claim_transaction, commitment_number, our_to_local_claim, ours_by_outputs,
    their_commitment_claims, Claim,
};
use beongae_channel::onchain_htlcs::{
    our_commitment_htlcs, signed_htlc_tx, their_commitment_htlcs, their_htlc_claim, HtlcOutput,
};
use beongae_channel::penalty::{revoked_claims, PenaltySecrets};
use beongae_channel::revocation::LocalSecrets;
use beongae_channel::sign::FundedChannel;
use beongae_script::commitment::CommitmentNumber;
use beongae_script::keys::CommitmentKeys;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::ChannelId;
use bitcoin::secp256k1::{ecdsa, PublicKey};
use bitcoin::{Block, OutPoint, Transaction, Txid};

use super::record::{self, KeptState, Sweep};
use super::{Channels, Phase};
use crate::core::Output;

/// What a resolution needs of a closed channel's kept state, whichever
/// phase it closed in (before `channel_ready`: commitment 0 on both sides,
/// no HTLCs).
pub(super) struct KeptView {
    pub(super) funded: FundedChannel,
    /// The txid of our latest signed commitment.
    our_txid: Option<Txid>,
    /// The peer's current commitment number (below it: revoked).
    remote_current: u64,
    /// Our latest commitment: its state, number and the peer's HTLC
    /// signatures for it.
    local: Option<(CommitSpec, CommitmentNumber, Vec<ecdsa::Signature>)>,
    /// The peer's commitments it may broadcast: current, and the next one
    /// we signed.
    remote: Vec<(CommitmentNumber, CommitSpec, PublicKey)>,
}

impl KeptView {
    /// The txid of our latest signed commitment.
    pub(super) fn our_txid(&self) -> Option<Txid> {
        self.our_txid
    }

    /// Our latest commitment: its state, number and the peer's HTLC
    /// signatures.
    pub(super) fn local(&self) -> Option<(&CommitSpec, CommitmentNumber, &[ecdsa::Signature])> {
        self.local
            .as_ref()
            .map(|(spec, n, sigs)| (spec, *n, sigs.as_slice()))
    }

    /// The HTLCs of our latest commitment (as we see them).
    pub(super) fn local_htlcs(
        &self,
    ) -> impl Iterator<Item = &beongae_channel::commitments::SpecHtlc> {
        self.local.iter().flat_map(|(spec, _, _)| spec.htlcs.iter())
    }
}

/// A transaction of ours for the wallet to add a fee input to: input 0
/// spends `prevout` and pays no fee; the whole pays `feerate` (with an
/// unconfirmed `parent`'s weight and fee, child pays for parent), never
/// more than `max_fee`; `replaces` is the pending one it bumps.
pub(super) struct FundingAsk {
    pub(super) tx: Transaction,
    pub(super) prevout: bitcoin::TxOut,
    pub(super) feerate: FeeratePerKw,
    pub(super) parent: Option<(u64, bitcoin::Amount)>,
    pub(super) replaces: Option<Txid>,
    pub(super) max_fee: bitcoin::Amount,
    pub(super) kind: super::FundingKind,
}

/// What an output is worth spending on its own fee at most: 99% of it.
pub(super) fn max_fee_for(value: bitcoin::Amount) -> bitcoin::Amount {
    bitcoin::Amount::from_sat(value.to_sat() * 99 / 100)
}

/// Which commitment confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Case {
    /// Our own, with its number.
    Ours(CommitmentNumber),
    /// One the peer revoked, with its number.
    Revoked(u64),
    /// An old one of ours, revoked (a copy of our store from before went
    /// out), with its number: the peer takes all of it; what is left to us
    /// is failing the HTLCs it cannot pay.
    OursRevoked(CommitmentNumber),
    /// The peer's current or next one.
    Theirs(CommitmentNumber),
}

/// A closed channel's confirmed commitment, read with the kept state.
pub(super) struct Confirmed {
    /// The commitment.
    pub(super) spend: Transaction,
    /// The height of its block.
    pub(super) height: u32,
    pub(super) view: KeptView,
    pub(super) case: Case,
    /// Our `per_commitment_point` of it (our commitment only).
    pub(super) our_point: Option<PublicKey>,
    /// The keys of an old commitment of ours (revoked), read by its
    /// outputs: its HTLCs are found by script.
    pub(super) old_keys: Option<CommitmentKeys>,
    /// Its HTLC outputs (not for a revoked commitment, nor one we cannot
    /// rebuild).
    pub(super) htlcs: Option<Vec<HtlcOutput>>,
}

impl Channels {
    /// The kept state of closed channel `id`, decoded.
    pub(super) fn kept_view(&self, id: ChannelId) -> Option<KeptView> {
        let entry = self.entries.get(&id)?;
        let Phase::Closed(c) = &entry.phase else {
            return None;
        };
        let (signing, secrets) = self.secrets(entry.index);
        match c.kept.as_ref()? {
            KeptState::Normal(b) => {
                let chan = record::decode_normal(b, signing, secrets).ok()?;
                let mut remote = vec![(
                    chan.remote.current,
                    chan.commitments.remote.clone(),
                    chan.remote.current_point,
                )];
                if let (Some(next), Some(n)) =
                    (&chan.commitments.remote_next, chan.remote.current.next())
                {
                    remote.push((n, next.clone(), chan.remote.next_point));
                }
                Some(KeptView {
                    our_txid: chan
                        .signed_local_commitment(&self.secp)
                        .ok()
                        .map(|t| t.compute_txid()),
                    remote_current: chan.remote.current.get(),
                    local: Some((
                        chan.commitments.local.clone(),
                        chan.local_number,
                        chan.local_signatures.htlc_signatures.clone(),
                    )),
                    remote,
                    funded: chan.funded,
                })
            }
            KeptState::Funded(b) => {
                let f = record::decode_funding(b, signing, secrets).ok()?;
                Some(KeptView {
                    our_txid: f
                        .signed_local_commitment(&self.secp)
                        .ok()
                        .map(|t| t.compute_txid()),
                    remote_current: 0,
                    local: None,
                    remote: Vec::new(),
                    funded: f.funded,
                })
            }
        }
    }

    /// The funding output of closed channel `id` is spent by a confirmed
    /// transaction (`Closed::tx`); called again at every block until what is
    /// ours of it is claimed (BOLT 5):
    /// - our own commitment: our `to_local` once `to_self_delay` has passed;
    ///   each HTLC we offered by HTLC-timeout once it expired, each offered
    ///   to us whose preimage we have by HTLC-success; their outputs once
    ///   `to_self_delay` has passed after they confirm;
    /// - a commitment of the peer's it revoked: everything, once the
    ///   store gave that commitment's HTLCs ([`Output::LoadRemoteHtlcs`]);
    /// - an old commitment of ours, revoked: nothing (the peer may take
    ///   every output of it);
    /// - its current (or next) commitment: our `to_remote`, each HTLC we
    ///   offered once it expired, each offered to us with its preimage.
    ///
    /// An output is claimed once: not while one of our claims or a
    /// transaction of the peer's spends it (`Closed::sweeps`, `spent`).
    pub(super) fn resolve(&mut self, id: ChannelId) {
        if self.unclaimable.contains(&id) || self.loading.contains(&id) {
            return;
        }
        let Some(k) = self.confirmed_commitment(id) else {
            return;
        };
        match k.case {
            Case::Revoked(number) => {
                if !self.punished(id) {
                    tracing::warn!(channel = %id, number, "the peer broadcast a revoked commitment: punishing it");
                    self.loading.insert(id);
                    self.deferred.push(Output::LoadRemoteHtlcs {
                        channel_id: id,
                        number,
                    });
                }
            }
            Case::Ours(_) => self.resolve_ours(id, &k),
            Case::Theirs(_) => self.resolve_theirs(id, &k),
            // Every output is the peer's with the revocation key (and its
            // own `to_remote`): nothing is ours to claim.
            Case::OursRevoked(_) => {}
        }
        self.outgoing_on_chain(id, &k);
    }

    /// The confirmed commitment of closed channel `id`, if a commitment
    /// (not a mutual close) confirmed and the kept state reads.
    pub(super) fn confirmed_commitment(&self, id: ChannelId) -> Option<Confirmed> {
        let entry = self.entries.get(&id)?;
        let Phase::Closed(c) = &entry.phase else {
            return None;
        };
        let height = c.confirmed?;
        if c.mutual() || c.kept.is_none() {
            return None;
        }
        let spend = c.tx.clone()?;
        let view = self.kept_view(id)?;
        // Not a commitment: a closing transaction.
        let number = commitment_number(&view.funded, &spend)?;
        let keys = self.keys.channel(entry.index);
        let mut old_keys = None;
        let case = if view.our_txid == Some(spend.compute_txid()) {
            Case::Ours(CommitmentNumber::new(number)?)
        } else if let Some((n, keys)) = CommitmentNumber::new(number).and_then(|n| {
            let point = LocalSecrets::new(keys.commitment_seed).point(&self.secp, n);
            ours_by_outputs(&self.secp, &view.funded, &spend, &point).map(|k| (n, k))
        }) {
            old_keys = Some(keys);
            Case::OursRevoked(n)
        } else if number < view.remote_current {
            Case::Revoked(number)
        } else {
            Case::Theirs(CommitmentNumber::new(number)?)
        };
        let (our_point, htlcs) = match case {
            Case::Revoked(_) => (None, None),
            Case::OursRevoked(_) => (None, None),
            Case::Ours(n) => {
                let point = LocalSecrets::new(keys.commitment_seed).point(&self.secp, n);
                let htlcs = view
                    .local
                    .as_ref()
                    .filter(|(_, number, _)| *number == n)
                    .and_then(|(spec, _, sigs)| {
                        our_commitment_htlcs(&self.secp, &view.funded, &spend, spec, n, &point, sigs)
                            .map_err(|e| tracing::error!(channel = %id, error = %e, "cannot read the htlc outputs of our commitment"))
                            .ok()
                    });
                (Some(point), htlcs)
            }
            Case::Theirs(n) => {
                // Beyond the next one we lost state: only our to_remote is
                // ours to know.
                let htlcs = view
                    .remote
                    .iter()
                    .find(|(m, _, _)| *m == n)
                    .and_then(|(_, spec, point)| {
                        their_commitment_htlcs(&self.secp, &view.funded, &spend, spec, n, point)
                            .map_err(|e| tracing::error!(channel = %id, error = %e, "cannot read the htlc outputs of the peer's commitment"))
                            .ok()
                    });
                (None, htlcs)
            }
        };
        Some(Confirmed {
            spend,
            height,
            view,
            case,
            our_point,
            htlcs,
            old_keys,
        })
    }

    /// Outputs of closed channel `id` already being claimed, or spent by a
    /// transaction not ours.
    pub(super) fn covered(&self, id: ChannelId) -> BTreeSet<OutPoint> {
        match self.entries.get(&id).map(|e| &e.phase) {
            Some(Phase::Closed(c)) => c
                .sweeps
                .iter()
                .filter(|s| s.live())
                .flat_map(|s| s.tx.input.iter().map(|i| i.previous_output))
                .chain(c.spent.iter().map(|s| s.outpoint))
                .chain(self.funding_claims.keys().copied())
                .chain(self.uneconomical.iter().copied())
                .collect(),
            _ => BTreeSet::new(),
        }
    }

    /// Our commitment confirmed: our delayed outputs once mature, our
    /// HTLC transactions once they can confirm.
    fn resolve_ours(&mut self, id: ChannelId, k: &Confirmed) {
        let Some(index) = self.entries.get(&id).map(|e| e.index) else {
            return;
        };
        let keys = self.keys.channel(index);
        let covered = self.covered(id);
        let delayed: Vec<Claim> = self
            .delayed_outputs(id, k)
            .into_iter()
            .filter(|(c, at)| self.height + 1 >= *at && !covered.contains(&c.input.outpoint))
            .map(|(c, _)| c)
            .collect();
        // Only we can spend them: one sweep.
        self.sweep(id, vec![delayed]);
        for (out, preimage) in self.claimable_htlcs(id, k, &covered) {
            match signed_htlc_tx(
                &self.secp,
                &k.view.funded,
                out,
                &keys.htlc_base,
                preimage.as_ref(),
                None,
            ) {
                Ok(tx) => self.second_stage(id, &k.view.funded, out, tx, preimage),
                Err(e) => {
                    tracing::error!(channel = %id, htlc = out.id, error = %e, "cannot sign our htlc transaction");
                }
            }
        }
    }

    /// The HTLC outputs of the confirmed commitment `k` we can claim now,
    /// not `covered` already (BOLT 5): one we offered once it expired, one
    /// offered to us as soon as we have its preimage (given with it).
    fn claimable_htlcs<'a>(
        &self,
        id: ChannelId,
        k: &'a Confirmed,
        covered: &BTreeSet<OutPoint>,
    ) -> Vec<(&'a HtlcOutput, Option<beongae_wire::Preimage>)> {
        k.htlcs
            .iter()
            .flatten()
            .filter(|out| !covered.contains(&out.outpoint))
            .filter_map(|out| {
                if out.we_offered {
                    out.timeout_ready(self.height).then_some((out, None))
                } else {
                    self.incoming_preimage(id, out.id).map(|p| (out, Some(p)))
                }
            })
            .collect()
    }

    /// Our delayed outputs of our confirmed commitment, each with the
    /// height of the first block it can be spent in: `to_local`, and the
    /// output of each of our confirmed HTLC transactions, `to_self_delay`
    /// blocks after the one that confirmed it.
    pub(super) fn delayed_outputs(&self, id: ChannelId, k: &Confirmed) -> Vec<(Claim, u32)> {
        let (Some(entry), Some(point)) = (self.entries.get(&id), k.our_point) else {
            return Vec::new();
        };
        let Phase::Closed(c) = &entry.phase else {
            return Vec::new();
        };
        let keys = self.keys.channel(entry.index);
        let delay = u32::from(k.view.funded.local_to_self_delay);
        std::iter::once((&k.spend, Some(k.height)))
            .chain(c.sweeps.iter().map(|s| (&s.tx, s.confirmed)))
            .filter_map(|(tx, at)| {
                let at = at?;
                match our_to_local_claim(
                    &self.secp,
                    &k.view.funded,
                    tx,
                    &point,
                    &keys.delayed_payment_base,
                ) {
                    Ok(claim) => claim.map(|c| (c, at + delay)),
                    Err(e) => {
                        tracing::error!(channel = %id, error = %e, "cannot derive our delayed key");
                        None
                    }
                }
            })
            .collect()
    }

    /// Our HTLC transaction `tx` for `out`: without anchors it paid its fee
    /// from the HTLC and goes out as is; with anchors it pays none and the
    /// wallet adds an input (and change) at the current feerate first
    /// ([`Output::FundClaim`]), unless the HTLC is worth less than that.
    fn second_stage(
        &mut self,
        id: ChannelId,
        funded: &FundedChannel,
        out: &HtlcOutput,
        tx: Transaction,
        preimage: Option<beongae_wire::Preimage>,
    ) {
        match funded.channel_type {
            ChannelType::StaticRemoteKey => self.keep_and_broadcast(id, tx, None),
            ChannelType::Anchors => {
                // With the wallet's P2WPKH input and change output.
                let weight = tx.weight().to_wu()
                    + super::bump::WALLET_INPUT_WEIGHT
                    + super::bump::CHANGE_WEIGHT;
                let deadline = (!out.we_offered).then_some(out.cltv_expiry);
                let target = self.target_feerate(deadline);
                let budget = super::bump::htlc_tx_budget(
                    out.value,
                    funded,
                    self.settings.close_script.as_ref(),
                    self.feerate,
                );
                let Some(feerate) = super::bump::within(target, budget, weight) else {
                    self.uneconomical.insert(out.outpoint);
                    return tracing::warn!(channel = %id, htlc = out.id, value = %out.value, %budget, "not claiming an htlc worth less than its claim and the sweep of its output");
                };
                let prevout = bitcoin::TxOut {
                    value: out.value,
                    script_pubkey: out.script.to_p2wsh(),
                };
                let kind = super::FundingKind::Htlc {
                    out: Box::new(out.clone()),
                    preimage,
                };
                self.request_funding(
                    id,
                    FundingAsk {
                        tx,
                        prevout,
                        feerate,
                        parent: None,
                        replaces: None,
                        max_fee: max_fee_for(out.value),
                        kind,
                    },
                );
            }
        }
    }

    /// The wallet's answer to [`Output::FundClaim`]: our transaction with
    /// a fee input, input 0 signed over it, kept and broadcast (replacing
    /// the one it bumps, if any); on failure it is asked again at the next
    /// block.
    pub(in crate::core) fn on_claim_funded(
        &mut self,
        id: ChannelId,
        outpoint: OutPoint,
        result: Result<Transaction, String>,
    ) {
        let Some(request) = self.funding_claims.remove(&outpoint) else {
            return; // not asked (any more)
        };
        let tx = match result {
            Ok(tx) if tx.input.first().map(|i| i.previous_output) == Some(outpoint) => tx,
            Ok(tx) => {
                self.deferred.push(Output::Forget {
                    txid: tx.compute_txid(),
                });
                return tracing::error!(channel = %id, %outpoint, "the wallet returned another transaction");
            }
            Err(e) => {
                return tracing::error!(channel = %id, %outpoint, error = %e, "the wallet cannot pay the fee of our transaction; trying again at the next block");
            }
        };
        let unsigned = tx.compute_txid();
        let signed = match (self.kept_view(id), self.entries.get(&id).map(|e| e.index)) {
            (Some(view), Some(index)) => {
                let keys = self.keys.channel(index);
                match &request.kind {
                    super::FundingKind::Htlc { out, preimage } => signed_htlc_tx(
                        &self.secp,
                        &view.funded,
                        out,
                        &keys.htlc_base,
                        preimage.as_ref(),
                        Some(tx),
                    )
                    .ok(),
                    super::FundingKind::Anchor { prevout } => {
                        let (signing, _) = self.secrets(index);
                        beongae_channel::onchain::sign_anchor_child(
                            &self.secp,
                            &view.funded,
                            tx,
                            prevout,
                            &signing.funding_key,
                        )
                    }
                }
            }
            _ => None,
        };
        let keep = signed.filter(|_| {
            let Some(Phase::Closed(c)) = self.entries.get(&id).map(|e| &e.phase) else {
                return false;
            };
            // Still on the commitment in question, in the state asked for:
            // an anchor child while it waits to confirm, an HTLC
            // transaction once it confirmed (another commitment may have
            // confirmed meanwhile).
            let on_it = c.tx.as_ref().map(Transaction::compute_txid) == Some(outpoint.txid);
            let in_time = match request.kind {
                super::FundingKind::Anchor { .. } => c.confirmed.is_none(),
                super::FundingKind::Htlc { .. } => c.confirmed.is_some(),
            };
            if !on_it || !in_time {
                return false;
            }
            match request.replaces {
                // Still the one to beat (not confirmed, not dropped)?
                Some(old) => c
                    .sweeps
                    .iter()
                    .any(|s| s.tx.compute_txid() == old && s.pending()),
                // Not spent meanwhile (by the peer, or after a reorg).
                None => !self.covered(id).contains(&outpoint),
            }
        });
        let Some(tx) = keep else {
            // The wallet counts its inputs spent: they are not.
            self.deferred.push(Output::Forget { txid: unsigned });
            return;
        };
        if let Some(old) = request.replaces {
            if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
                if let Some(s) = c.sweeps.iter_mut().find(|s| s.tx.compute_txid() == old) {
                    s.replaced = true;
                }
            }
            tracing::info!(channel = %id, %old, new = %tx.compute_txid(), feerate = request.feerate.0, "fee bump");
        }
        if let super::FundingKind::Anchor { .. } = request.kind {
            // With its parent, as a package.
            let parent = match self.entries.get(&id).map(|e| &e.phase) {
                Some(Phase::Closed(c)) => c.tx.clone(),
                _ => None,
            };
            if let Some(parent) = parent {
                if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
                    c.sweeps.push(Sweep {
                        tx: tx.clone(),
                        confirmed: None,
                        feerate: Some(request.feerate),
                        replaced: false,
                        dropped_at: None,
                    });
                }
                self.touch(id);
                self.deferred
                    .push(Output::BroadcastPackage { parent, child: tx });
                return;
            }
        }
        self.keep_and_broadcast(id, tx, Some(request.feerate));
    }

    /// Asks the wallet to add a fee input to `ask.tx` ([`Output::FundClaim`]),
    /// unless it is already asked for that output.
    pub(super) fn request_funding(&mut self, id: ChannelId, ask: FundingAsk) {
        let Some(outpoint) = ask.tx.input.first().map(|i| i.previous_output) else {
            return;
        };
        if self.funding_claims.contains_key(&outpoint) {
            return;
        }
        self.funding_claims.insert(
            outpoint,
            super::FundingRequest {
                feerate: ask.feerate,
                replaces: ask.replaces,
                kind: ask.kind,
            },
        );
        self.deferred.push(Output::FundClaim {
            channel_id: id,
            tx: ask.tx,
            prevouts: vec![ask.prevout],
            feerate: ask.feerate,
            parent: ask.parent,
            max_fee: ask.max_fee,
            replaces: ask.replaces,
        });
    }

    /// The peer's commitment (not revoked) confirmed: our `to_remote` at
    /// once, each HTLC of ours after expiry, each of its with the preimage.
    fn resolve_theirs(&mut self, id: ChannelId, k: &Confirmed) {
        let Some(index) = self.entries.get(&id).map(|e| e.index) else {
            return;
        };
        let keys = self.keys.channel(index);
        let covered = self.covered(id);
        let groups: Vec<Vec<Claim>> =
            vec![
                their_commitment_claims(&k.view.funded, &k.spend, keys.payment_base)
                    .into_iter()
                    .filter(|c| !covered.contains(&c.input.outpoint))
                    .collect(),
            ];
        for (out, preimage) in self.claimable_htlcs(id, k, &covered) {
            // Each alone: the peer may spend it too (with the preimage, or
            // after expiry), and losing that race holds back nothing else.
            // One offered to us must confirm before its expiry.
            match their_htlc_claim(
                &self.secp,
                &k.view.funded,
                out,
                &keys.htlc_base,
                preimage.as_ref(),
            ) {
                Ok(claim) => {
                    let deadline = (!out.we_offered).then_some(out.cltv_expiry);
                    let feerate = self.target_feerate(deadline);
                    self.sweep_at(id, vec![vec![claim]], feerate);
                }
                Err(e) => {
                    tracing::error!(channel = %id, htlc = out.id, error = %e, "cannot claim an htlc of the peer's commitment");
                }
            }
        }
        self.sweep(id, groups);
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
    /// left until the feerate estimate changes. Returns how many went out.
    pub(super) fn sweep(&mut self, id: ChannelId, groups: Vec<Vec<Claim>>) -> usize {
        let feerate = self.feerate;
        self.sweep_at(id, groups, feerate)
    }

    /// [`Channels::sweep`] at `feerate`.
    pub(super) fn sweep_at(
        &mut self,
        id: ChannelId,
        groups: Vec<Vec<Claim>>,
        feerate: FeeratePerKw,
    ) -> usize {
        if groups.iter().all(Vec::is_empty) {
            return 0;
        }
        let Some(destination) = self.settings.close_script.clone() else {
            self.unclaimable.insert(id);
            tracing::error!(channel = %id, "no wallet address to sweep the channel's outputs to");
            return 0;
        };
        let mut made = 0;
        for claims in groups.iter().filter(|g| !g.is_empty()) {
            // At the feerate the outputs can bear, if lower: the claim
            // must leave at least a dust output.
            let inputs: Vec<_> = claims.iter().map(|c| c.input.clone()).collect();
            let weight = beongae_script::sweep::sweep_weight(&inputs, &destination).to_wu();
            let worth: bitcoin::Amount = inputs.iter().map(|i| i.value).sum();
            let budget = super::bump::claim_budget(worth, &destination);
            let Some(feerate) = super::bump::within(feerate, budget, weight) else {
                tracing::warn!(channel = %id, %worth, "not claiming outputs worth less than any claim of them");
                self.uneconomical
                    .extend(claims.iter().map(|c| c.input.outpoint));
                continue;
            };
            match claim_transaction(&self.secp, claims, destination.clone(), feerate) {
                Ok(tx) => {
                    tracing::info!(channel = %id, txid = %tx.compute_txid(), value = %tx.output[0].value, "claiming the channel's outputs");
                    self.keep_and_broadcast(id, tx, Some(feerate));
                    made += 1;
                }
                Err(beongae_script::sweep::SweepError::Uneconomical { .. }) => {
                    tracing::warn!(channel = %id, "not claiming an output worth less than its fee");
                    self.uneconomical
                        .extend(claims.iter().map(|c| c.input.outpoint));
                }
                // Not a matter of fees: tried again at the next block.
                Err(e) => {
                    tracing::error!(channel = %id, error = %e, "cannot claim the channel's outputs");
                }
            }
        }
        made
    }

    /// Keeps `tx` with closed channel `id` (stored before it goes out) and
    /// broadcasts it.
    pub(super) fn keep_and_broadcast(
        &mut self,
        id: ChannelId,
        tx: Transaction,
        feerate: Option<FeeratePerKw>,
    ) {
        if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
            c.sweeps.push(Sweep {
                tx: tx.clone(),
                confirmed: None,
                feerate,
                replaced: false,
                dropped_at: None,
            });
        }
        self.deferred.push(Output::Broadcast { tx });
        self.touch(id);
    }

    /// The HTLCs of the peer's revoked commitment `number`: the justice
    /// transaction goes out (BOLT 5: "MUST resolve" every output of it).
    pub(in crate::core) fn on_remote_htlcs(
        &mut self,
        id: ChannelId,
        number: u64,
        stored: Result<beongae_store::Entries, String>,
    ) {
        self.loading.remove(&id);
        let htlcs = match stored {
            Ok(entries) => {
                let (htlcs, unreadable) = record::remote_htlcs_in(&entries, number);
                if unreadable > 0 {
                    // The others' outputs and to_local cannot wait.
                    tracing::error!(channel = %id, number, unreadable, "some stored htlcs of the peer's commitments do not read; punishing with the others");
                }
                htlcs
            }
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
        if self.punished(id) {
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
                if self.sweep(id, groups) == 0 {
                    self.unclaimable.insert(id);
                }
            }
            Err(e) => {
                // Not asked again every block; a restart looks again.
                self.unclaimable.insert(id);
                tracing::error!(channel = %id, number, error = %e, "cannot build the justice transaction");
            }
        }
    }

    /// Our sweeps in `block` (at `height`) are confirmed (a dropped or
    /// replaced one too: ours all the same); our pending ones that
    /// something in it conflicts with (a replacement, the one it replaced,
    /// the peer's spend, a wallet input spent elsewhere) can never confirm
    /// and are dropped.
    pub(super) fn sweeps_in_block(&mut self, height: u32, block: &Block) {
        let txids: BTreeSet<Txid> = block.txdata.iter().map(Transaction::compute_txid).collect();
        let spent: BTreeSet<OutPoint> = block
            .txdata
            .iter()
            .filter(|t| !t.is_coinbase())
            .flat_map(|t| t.input.iter().map(|i| i.previous_output))
            .collect();
        let mut touched = Vec::new();
        for (id, entry) in self.entries.iter_mut() {
            if let Phase::Closed(c) = &mut entry.phase {
                for s in &mut c.sweeps {
                    if s.confirmed.is_none() && txids.contains(&s.tx.compute_txid()) {
                        s.confirmed = Some(height);
                        s.dropped_at = None;
                        touched.push(*id);
                    }
                }
                // Conflicts buried beyond any reorg we follow: forgotten.
                let before = c.sweeps.len();
                c.sweeps.retain(|s| {
                    s.dropped_at
                        .is_none_or(|h| height < h + super::record::BURIED_DEPTH)
                });
                if c.sweeps.len() != before {
                    touched.push(*id);
                }
            }
        }
        for id in touched {
            self.touch(id);
        }
        self.drop_sweeps(height, |s| {
            s.tx.input
                .iter()
                .any(|i| spent.contains(&i.previous_output))
        });
    }

    /// Marks the unconfirmed sweeps of closed channels that `dead` says
    /// conflict with a transaction in the block at `height` (they can never
    /// confirm unless a reorg undoes it); the wallet forgets them.
    pub(super) fn drop_sweeps(&mut self, height: u32, dead: impl Fn(&Sweep) -> bool) {
        let mut forget = Vec::new();
        let mut touched = Vec::new();
        for (id, entry) in self.entries.iter_mut() {
            if let Phase::Closed(c) = &mut entry.phase {
                for s in &mut c.sweeps {
                    if s.confirmed.is_none() && s.dropped_at.is_none() && dead(s) {
                        s.dropped_at = Some(height);
                        forget.push(s.tx.compute_txid());
                        touched.push(*id);
                    }
                }
            }
        }
        for id in touched {
            self.touch(id);
        }
        for txid in forget {
            self.deferred.push(Output::Forget { txid });
        }
    }

    /// Whether justice is under way on closed channel `id`: one of our
    /// live transactions spends its confirmed (revoked) commitment.
    pub(super) fn punished(&self, id: ChannelId) -> bool {
        let Some(Phase::Closed(c)) = self.entries.get(&id).map(|e| &e.phase) else {
            return false;
        };
        let Some(commitment) = c.tx.as_ref().map(Transaction::compute_txid) else {
            return false;
        };
        c.sweeps.iter().any(|s| {
            s.live()
                && s.tx
                    .input
                    .iter()
                    .any(|i| i.previous_output.txid == commitment)
        })
    }

    /// The block at `height` left the chain: our sweeps in it are not
    /// confirmed any more (they go out again), and those it conflicted with
    /// may confirm again.
    pub(super) fn sweeps_disconnected(&mut self, height: u32) {
        let mut touched = Vec::new();
        for (id, entry) in self.entries.iter_mut() {
            if let Phase::Closed(c) = &mut entry.phase {
                for s in &mut c.sweeps {
                    if s.confirmed.is_some_and(|h| h >= height) {
                        s.confirmed = None;
                        touched.push(*id);
                    }
                    if s.dropped_at.is_some_and(|h| h >= height) {
                        s.dropped_at = None;
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
