//! Fees that get our transactions confirmed in time (BOLT 5: a node
//! "SHOULD" get its resolutions confirmed before their deadlines, and may
//! raise fees to do so), never paying more than what is at stake:
//! - CPFP: while our commitment of an anchor channel waits to confirm with
//!   HTLCs at stake and pays less than the target feerate, a child spending
//!   our anchor with a wallet input pays for both ([`Output::FundClaim`]);
//!   a higher target replaces that child (RBF);
//! - RBF: our HTLC transactions (wallet-funded, anchors) and our claims on
//!   the peer's HTLC outputs, pending below the target, are made again at
//!   it (the old one is kept, marked replaced, in case it confirms).
//!
//! The target is the node's fee estimate, raised as an HTLC's deadline
//! nears ([`Channels::target_feerate`]). Our delayed outputs and our
//! `to_remote` race nobody and are not bumped.

use std::collections::BTreeMap;

use beongae_channel::onchain::{anchor_child, claim_transaction, their_commitment_claims, Claim};
use beongae_channel::onchain_htlcs::{our_commitment_htlcs, their_htlc_claim};
use beongae_channel::revocation::LocalSecrets;
use beongae_script::sweep::SpendPath;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::ChannelId;
use bitcoin::hashes::Hash as _;
use bitcoin::{Amount, OutPoint, Transaction};

use super::record::{self, KeptState};
use super::resolve::{max_fee_for, Case, Confirmed, FundingAsk};
use super::{Channels, FundingKind, Phase};

/// A P2WPKH wallet input, signed: outpoint, sequence and script length
/// (41 bytes), and its witness (a 72-byte signature, a 33-byte key).
pub(super) const WALLET_INPUT_WEIGHT: u64 = 4 * 41 + 1 + 73 + 34;
/// A P2WPKH change output: value, script length, script.
pub(super) const CHANGE_WEIGHT: u64 = 4 * 31;

/// The fee a bump aims at for what is worth `value` at most: 98%, below
/// the 99% the wallet may pay ([`max_fee_for`]), weights being estimates.
pub(super) fn aim_fee(value: Amount) -> Amount {
    Amount::from_sat(value.to_sat() * 98 / 100)
}

/// What our HTLC transaction of an anchor channel may take from the wallet
/// for an HTLC of `value` (SAFETY.md: no claim spends "more in fees than
/// it recovers"): the transaction pays no fee of its own and its output is the
/// whole HTLC, which must still be swept after `to_self_delay` (at least at
/// `feerate`) to `destination` and leave the dust limit; and at most
/// [`aim_fee`]. Zero when the HTLC cannot pay for both: claiming it would
/// leave us poorer than leaving it.
pub(super) fn htlc_tx_budget(
    value: Amount,
    funded: &beongae_channel::sign::FundedChannel,
    destination: Option<&bitcoin::ScriptBuf>,
    feerate: FeeratePerKw,
) -> Amount {
    let key = funded.local_keys.delayed_payment_basepoint;
    let delay = funded.local_to_self_delay;
    let output = beongae_script::sweep::SweepInput {
        outpoint: OutPoint::null(),
        value,
        witness_script: Some(beongae_script::scripts::to_local_script(&key, delay, &key)),
        path: SpendPath::Delayed {
            to_self_delay: delay,
        },
    };
    // The wallet's P2WPKH when no address is set (sweeps then wait).
    let p2wpkh = bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0; 20]));
    let destination = destination.unwrap_or(&p2wpkh);
    let weight = beongae_script::sweep::sweep_weight(&[output], destination).to_wu();
    let sweep = feerate.max(FeeratePerKw::FLOOR).fee_for_weight(weight);
    let dust = beongae_channel::close::dust_limit_for(destination);
    value
        .checked_sub(sweep + dust)
        .unwrap_or(Amount::ZERO)
        .min(aim_fee(value))
}

/// What a claim taking `worth` to our wallet may pay: all but the dust
/// limit its output must keep, and at most [`aim_fee`].
pub(super) fn claim_budget(worth: Amount, destination: &bitcoin::ScriptBuf) -> Amount {
    worth
        .checked_sub(beongae_channel::close::dust_limit_for(destination))
        .unwrap_or(Amount::ZERO)
        .min(aim_fee(worth))
}

/// `target`, lowered so that the fee on `weight` stays within `budget`
/// (what the transaction takes back is worth); `None` if even BOLT 3's
/// floor would cost more: then the output is worth less than any claim
/// of it. An output worth claiming is claimed at the feerate it can bear
/// when that is below the target, rather than not at all: a forwarded
/// HTLC whose preimage we gave downstream is lost if it is not claimed.
pub(super) fn within(target: FeeratePerKw, budget: Amount, weight: u64) -> Option<FeeratePerKw> {
    let cap = budget.to_sat().saturating_mul(1000) / weight.max(1);
    let feerate = u64::from(target.0.max(FeeratePerKw::FLOOR.0)).min(cap);
    (feerate >= u64::from(FeeratePerKw::FLOOR.0))
        .then(|| FeeratePerKw(u32::try_from(feerate).unwrap_or(u32::MAX)))
}

/// Whether `target` beats `paid` by enough for a replacement: 25% more, and
/// at least 1 sat/vB more (Bitcoin Core's incremental relay fee).
/// Wallet funds kept for the fees of one anchor channel's force close (the
/// child paying for our commitment, the inputs of our HTLC transactions),
/// and at most for all: what LND keeps too.
pub(super) const FEE_RESERVE_PER_CHANNEL: Amount = Amount::from_sat(10_000);
/// The cap on the fee reserve.
pub(super) const FEE_RESERVE_MAX: Amount = Amount::from_sat(100_000);

fn worth_bumping(paid: FeeratePerKw, target: FeeratePerKw) -> bool {
    u64::from(target.0) * 4 >= u64::from(paid.0) * 5 && target.0 >= paid.0 + 250
}

impl Channels {
    /// The feerate to aim for with a deadline at block `deadline`: the
    /// estimate, doubled within 12 blocks of it and quadrupled within 3.
    /// What the wallet keeps for the fees of force closes
    /// ([`FEE_RESERVE_PER_CHANNEL`] per anchor channel that may still need
    /// the wallet: opening (funding built), open, or closed with our
    /// commitment not confirmed yet or HTLC outputs unresolved; plus `more`
    /// about to open; at most [`FEE_RESERVE_MAX`]): an anchor commitment
    /// pays only the fee agreed when it was signed, and our HTLC
    /// transactions none, so without wallet coins a fee spike could keep
    /// them from confirming before their deadlines. Opening a channel may
    /// not spend it.
    pub(in crate::core) fn fee_reserve(&self, more: usize) -> Amount {
        let anchors = beongae_script::ChannelType::Anchors;
        let open = self
            .entries
            .iter()
            .filter(|(id, e)| match &e.phase {
                Phase::Funded { funding, .. } => funding.funded.channel_type == anchors,
                Phase::Normal { chan, .. } => chan.funded.channel_type == anchors,
                Phase::Closed(c) => {
                    let waiting = (c.confirmed.is_none() && c.tx.is_some())
                        || !self.limbo(**id).htlcs.is_empty();
                    waiting
                        && self
                            .kept_view(**id)
                            .is_some_and(|v| v.funded.channel_type == anchors)
                }
            })
            .count();
        let opening = self
            .opening
            .values()
            .filter(|o| match o {
                super::open::Opening::Created { funding, .. } => {
                    funding.funded.channel_type == anchors
                }
                super::open::Opening::Building { open, .. } => super::open::is_anchors(open),
                _ => false,
            })
            .count();
        let count = open + opening + more;
        (FEE_RESERVE_PER_CHANNEL * count as u64).min(FEE_RESERVE_MAX)
    }

    pub(super) fn target_feerate(&self, deadline: Option<u32>) -> FeeratePerKw {
        let f = self.feerate.0.max(FeeratePerKw::FLOOR.0);
        FeeratePerKw(match deadline.map(|d| d.saturating_sub(self.height)) {
            Some(0..=3) => f.saturating_mul(4),
            Some(4..=12) => f.saturating_mul(2),
            _ => f,
        })
    }

    /// Fee bumps due at this block, for every closed channel.
    pub(super) fn bump_all(&mut self) {
        let ids: Vec<ChannelId> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.phase, Phase::Closed(_)))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.bump_commitment(id);
            if let Some(k) = self.confirmed_commitment(id) {
                self.bump_claims(id, &k);
                self.bump_justice(id, &k);
            }
        }
    }

    /// CPFP of our unconfirmed commitment of an anchor channel that has
    /// HTLCs at stake and pays less than the target.
    fn bump_commitment(&mut self, id: ChannelId) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let Phase::Closed(c) = &entry.phase else {
            return;
        };
        if c.confirmed.is_some()
            || c.withheld != record::Withheld::No
            || c.reason == record::COOPERATIVE_CLOSE
            || !matches!(c.kept, Some(KeptState::Normal(_)))
        {
            return;
        }
        let Some(commitment) = c.tx.clone() else {
            return;
        };
        let Some(view) = self.kept_view(id) else {
            return;
        };
        if view.funded.channel_type != ChannelType::Anchors
            || view.our_txid() != Some(commitment.compute_txid())
        {
            return;
        }
        let Some((spec, n, sigs)) = view.local() else {
            return;
        };
        let index = entry.index;
        let keys = self.keys.channel(index);
        let point = LocalSecrets::new(keys.commitment_seed).point(&self.secp, n);
        let Ok(htlcs) =
            our_commitment_htlcs(&self.secp, &view.funded, &commitment, spec, n, &point, sigs)
        else {
            return;
        };
        // What confirming it in time is worth: the HTLCs we can claim.
        let ours: Vec<_> = htlcs
            .iter()
            .filter(|h| h.we_offered || self.incoming_preimage(id, h.id).is_some())
            .collect();
        let at_stake: Amount = ours.iter().map(|h| h.value).sum();
        let Some(deadline) = ours.iter().map(|h| h.cltv_expiry).min() else {
            return;
        };
        let parent_weight = commitment.weight().to_wu();
        let out: Amount = commitment.output.iter().map(|o| o.value).sum();
        let Some(parent_fee) = view.funded.funding_amount.checked_sub(out) else {
            return;
        };
        let (signing, _) = self.secrets(index);
        let Some(destination) = self.settings.close_script.clone() else {
            return;
        };
        let Some((child, prevout)) = anchor_child(
            &self.secp,
            &view.funded,
            &commitment,
            &signing.funding_key,
            destination,
        ) else {
            return;
        };
        // The child once funded: a P2WPKH wallet input and the change.
        let child_weight = child.weight().to_wu() + WALLET_INPUT_WEIGHT + CHANGE_WEIGHT;
        // Never more from the wallet than the HTLCs are worth (aiming a
        // little lower, for the wallet's own weight estimate).
        let Some(target) = within(
            self.target_feerate(Some(deadline)),
            aim_fee(at_stake) + parent_fee,
            parent_weight + child_weight,
        ) else {
            return;
        };
        let paid = FeeratePerKw(
            u32::try_from(parent_fee.to_sat() * 1000 / parent_weight).unwrap_or(u32::MAX),
        );
        if !worth_bumping(paid, target) {
            return;
        }
        let anchor = child.input[0].previous_output;
        // A child already out at this target (or near it) is enough.
        let pending = c.sweeps.iter().find(|s| {
            s.pending()
                && s.confirmed.is_none()
                && !s.replaced
                && s.tx.input[0].previous_output == anchor
        });
        let replaces = match pending {
            Some(s) if s.feerate.is_some_and(|f| !worth_bumping(f, target)) => return,
            Some(s) => Some(s.tx.compute_txid()),
            None => None,
        };
        tracing::warn!(channel = %id, paid = paid.0, target = target.0, %at_stake, "our commitment pays too little for its htlcs: child pays for parent");
        let kind = FundingKind::Anchor {
            prevout: prevout.clone(),
        };
        self.request_funding(
            id,
            FundingAsk {
                tx: child,
                prevout,
                feerate: target,
                parent: Some((parent_weight, parent_fee)),
                replaces,
                max_fee: max_fee_for(at_stake),
                kind,
            },
        );
    }

    /// RBF of our pending HTLC transactions and claims on HTLC outputs
    /// whose feerate fell below the target.
    fn bump_claims(&mut self, id: ChannelId, k: &Confirmed) {
        if matches!(k.case, Case::Revoked(_)) {
            return;
        }
        let Some(Phase::Closed(c)) = self.entries.get(&id).map(|e| &e.phase) else {
            return;
        };
        let commitment = k.spend.compute_txid();
        let htlcs: BTreeMap<OutPoint, &beongae_channel::onchain_htlcs::HtlcOutput> =
            k.htlcs.iter().flatten().map(|h| (h.outpoint, h)).collect();
        let pending: Vec<(Transaction, FeeratePerKw)> = c
            .sweeps
            .iter()
            .filter(|s| s.confirmed.is_none() && !s.replaced)
            .filter_map(|s| s.feerate.map(|f| (s.tx.clone(), f)))
            .filter(|(tx, _)| {
                tx.input
                    .iter()
                    .any(|i| htlcs.contains_key(&i.previous_output))
            })
            .collect();
        if pending.is_empty() {
            return;
        }
        let claims = self.htlc_claims(id, k);
        for (tx, paid) in pending {
            let first = tx.input[0].previous_output;
            let Some(htlc) = htlcs.get(&first) else {
                continue;
            };
            // Offered to us: the peer takes it back after expiry.
            let deadline = (!htlc.we_offered).then_some(htlc.cltv_expiry);
            let target = self.target_feerate(deadline);
            if !worth_bumping(paid, target) {
                continue;
            }
            let old = tx.compute_txid();
            if matches!(k.case, Case::Ours(_)) && first.txid == commitment {
                // Our HTLC transaction: its first input and output as
                // signed, a new wallet input at the target.
                let base = Transaction {
                    input: vec![tx.input[0].clone()],
                    output: vec![tx.output[0].clone()],
                    ..tx.clone()
                };
                let prevout = k.spend.output[first.vout as usize].clone();
                let preimage = if htlc.we_offered {
                    None
                } else {
                    self.incoming_preimage(id, htlc.id)
                };
                let kind = FundingKind::Htlc {
                    out: Box::new((*htlc).clone()),
                    preimage,
                };
                // Never more from the wallet than the HTLC is worth.
                let weight = base.weight().to_wu() + WALLET_INPUT_WEIGHT + CHANGE_WEIGHT;
                let max_fee = max_fee_for(htlc.value);
                let budget = htlc_tx_budget(
                    htlc.value,
                    &k.view.funded,
                    self.settings.close_script.as_ref(),
                    self.feerate,
                );
                let Some(target) = within(target, budget, weight) else {
                    continue;
                };
                if !worth_bumping(paid, target) {
                    continue;
                }
                self.request_funding(
                    id,
                    FundingAsk {
                        tx: base,
                        prevout,
                        feerate: target,
                        parent: None,
                        replaces: Some(old),
                        max_fee,
                        kind,
                    },
                );
                continue;
            }
            let Some(group) = tx
                .input
                .iter()
                .map(|i| claims.get(&i.previous_output).cloned())
                .collect::<Option<Vec<Claim>>>()
            else {
                continue;
            };
            let Some(destination) = self.settings.close_script.clone() else {
                continue;
            };
            // Never more than the outputs are worth: short of the target,
            // the most they can pay, if that is still a bump.
            let worth: bitcoin::Amount = group.iter().map(|c| c.input.value).sum();
            let inputs: Vec<_> = group.iter().map(|c| c.input.clone()).collect();
            let weight = beongae_script::sweep::sweep_weight(&inputs, &destination).to_wu();
            let Some(target) = within(target, claim_budget(worth, &destination), weight) else {
                continue;
            };
            if !worth_bumping(paid, target) {
                continue;
            }
            match claim_transaction(&self.secp, &group, destination, target) {
                Ok(new) => {
                    if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase)
                    {
                        if let Some(s) = c.sweeps.iter_mut().find(|s| s.tx.compute_txid() == old) {
                            s.replaced = true;
                        }
                    }
                    tracing::info!(channel = %id, %old, new = %new.compute_txid(), feerate = target.0, "fee bump");
                    self.keep_and_broadcast(id, new, Some(target));
                }
                Err(e) => {
                    tracing::warn!(channel = %id, error = %e, "cannot bump the fee of a claim any further");
                }
            }
        }
    }

    /// RBF of our pending justice transactions on a revoked commitment and
    /// on the cheater's HTLC transactions spending it (BOLT 5: the penalty
    /// must confirm before the cheater's `to_self_delay` lets it take its
    /// `to_local`, or a second-stage output, counted from the block of the
    /// transaction with the output; its HTLC outputs it can take at any
    /// time). Each is read back from its witnesses and signed again at the
    /// target of its deadline, capped by what it takes.
    fn bump_justice(&mut self, id: ChannelId, k: &Confirmed) {
        if !matches!(k.case, Case::Revoked(_)) {
            return;
        }
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let Phase::Closed(c) = &entry.phase else {
            return;
        };
        let delay = u32::from(k.view.funded.remote_to_self_delay);
        // Each transaction we may spend from, and the height its outputs'
        // delay counts from.
        let mut parents: Vec<(bitcoin::Txid, &Transaction, u32)> =
            vec![(k.spend.compute_txid(), &k.spend, k.height)];
        for t in &c.theirs {
            let txid = t.compute_txid();
            if let Some(s) = c.spent.iter().find(|s| s.txid == txid) {
                parents.push((txid, t, s.height));
            }
        }
        let pending: Vec<(Transaction, FeeratePerKw, u32)> = c
            .sweeps
            .iter()
            .filter(|s| s.pending())
            .filter_map(|s| {
                let deadline =
                    s.tx.input
                        .iter()
                        .map(|i| {
                            parents
                                .iter()
                                .find(|(txid, _, _)| *txid == i.previous_output.txid)
                                // BIP 68: the cheater's spend is valid in
                                // block h + delay; ours must be in one before.
                                .map(|(_, _, h)| h + delay - 1)
                        })
                        .collect::<Option<Vec<u32>>>()?
                        .into_iter()
                        .min()?;
                s.feerate.map(|f| (s.tx.clone(), f, deadline))
            })
            .collect();
        let parent_txs: Vec<&Transaction> = parents.iter().map(|(_, t, _)| *t).collect();
        if pending.is_empty() {
            return;
        }
        let Some(KeptState::Normal(bytes)) = &c.kept else {
            return;
        };
        let keys = self.keys.channel(entry.index);
        let (signing, secrets) = self.secrets(entry.index);
        let Ok(chan) = record::decode_normal(bytes, signing, secrets) else {
            return;
        };
        let Some(secret) = beongae_script::commitment::CommitmentNumber::new(match k.case {
            Case::Revoked(n) => n,
            _ => return,
        })
        .and_then(|n| chan.remote.revoked_secret(n)) else {
            return;
        };
        let penalty = beongae_channel::penalty::PenaltySecrets {
            revocation_base: keys.revocation_base,
            payment_base: keys.payment_base,
        };
        let Some(destination) = self.settings.close_script.clone() else {
            return;
        };
        let mut bumps = Vec::new();
        for (tx, paid, deadline) in pending {
            let Some(claims) = beongae_channel::penalty::justice_claims_of(
                &self.secp,
                &k.view.funded,
                &parent_txs,
                &tx,
                secret,
                &penalty,
            ) else {
                continue;
            };
            let worth: Amount = claims.iter().map(|c| c.input.value).sum();
            let inputs: Vec<_> = claims.iter().map(|c| c.input.clone()).collect();
            let weight = beongae_script::sweep::sweep_weight(&inputs, &destination).to_wu();
            let Some(target) = within(
                self.target_feerate(Some(deadline)),
                claim_budget(worth, &destination),
                weight,
            ) else {
                continue;
            };
            if !worth_bumping(paid, target) {
                continue;
            }
            match claim_transaction(&self.secp, &claims, destination.clone(), target) {
                Ok(new) => bumps.push((tx.compute_txid(), new, target)),
                Err(e) => {
                    tracing::warn!(channel = %id, error = %e, "cannot bump a justice transaction any further");
                }
            }
        }
        for (old, new, target) in bumps {
            if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
                if let Some(s) = c.sweeps.iter_mut().find(|s| s.tx.compute_txid() == old) {
                    s.replaced = true;
                }
            }
            tracing::warn!(channel = %id, %old, new = %new.compute_txid(), feerate = target.0, "fee bump of a justice transaction");
            self.keep_and_broadcast(id, new, Some(target));
        }
    }

    /// Our claims on the HTLC outputs of the peer's confirmed commitment
    /// (after expiry, or with the preimage), by output.
    fn htlc_claims(&self, id: ChannelId, k: &Confirmed) -> BTreeMap<OutPoint, Claim> {
        let mut m = BTreeMap::new();
        if !matches!(k.case, Case::Theirs(_)) {
            return m;
        }
        let Some(index) = self.entries.get(&id).map(|e| e.index) else {
            return m;
        };
        let keys = self.keys.channel(index);
        for c in their_commitment_claims(&k.view.funded, &k.spend, keys.payment_base) {
            m.insert(c.input.outpoint, c);
        }
        for out in k.htlcs.iter().flatten() {
            let preimage = if out.we_offered {
                None
            } else {
                match self.incoming_preimage(id, out.id) {
                    Some(p) => Some(p),
                    None => continue,
                }
            };
            if let Ok(c) = their_htlc_claim(
                &self.secp,
                &k.view.funded,
                out,
                &keys.htlc_base,
                preimage.as_ref(),
            ) {
                debug_assert!(!matches!(c.input.path, SpendPath::Anchor));
                m.insert(c.input.outpoint, c);
            }
        }
        m
    }
}
