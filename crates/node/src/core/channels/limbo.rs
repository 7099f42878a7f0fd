//! Funds of a force-closed channel on their way back to the wallet (the
//! "limbo" balance, as LND calls it), for `channels` and `balance`: our
//! balance while our commitment waits to confirm; then every output of the
//! confirmed commitment that is ours and not swept yet (with the height our
//! delayed outputs mature at), each HTLC still unresolved and its deadline,
//! and our claims until they confirm.

use beongae_wire::ChannelId;
use bitcoin::{Amount, OutPoint};

use super::record::{self, KeptState};
use super::resolve::Case;
use super::{Channels, Phase, UnresolvedHtlc};

/// What of a closed channel is on its way back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Limbo {
    pub(super) closing: Amount,
    pub(super) spendable_at: Option<u32>,
    pub(super) htlcs: Vec<UnresolvedHtlc>,
    /// HTLCs offered to us whose preimage we had and that the peer took
    /// back on chain (worth less than claiming them, or a race lost).
    pub(super) lost: Amount,
}

impl Channels {
    /// Whether closed channel `id`, closed by a commitment, needs nothing
    /// more on chain, so its kept state may go: the commitment and every
    /// transaction of ours on it confirmed [`record::BURIED_DEPTH`] blocks
    /// deep (beyond any reorg we follow), nothing of ours still on its way
    /// back, no HTLC output unresolved (the peer's spends of its own are
    /// recorded), no payment of ours still pending over it. A revoked
    /// commitment: punished, and no output of it left as worth less than
    /// its fee (a feerate change could still make it worth claiming). An
    /// old commitment of ours: nothing of it is ours to wait for.
    pub(super) fn force_close_resolved(&self, id: ChannelId) -> bool {
        let Some(Phase::Closed(c)) = self.entries.get(&id).map(|e| &e.phase) else {
            return false;
        };
        let height = self.height;
        let buried = |h: Option<u32>| h.is_some_and(|h| height >= h + record::BURIED_DEPTH);
        if c.kept.is_none() || c.mutual() || !buried(c.confirmed) {
            return false;
        }
        // Ours (confirmed, or still able to): every one buried. Those
        // replaced or in conflict can never confirm once these are buried.
        if !c
            .sweeps
            .iter()
            .filter(|s| s.live())
            .all(|s| buried(s.confirmed))
        {
            return false;
        }
        if self
            .by_htlc
            .range((id, 0)..=(id, u64::MAX))
            .next()
            .is_some()
            || self
                .forwards
                .by_out
                .range((id, 0)..=(id, u64::MAX))
                .next()
                .is_some()
        {
            return false;
        }
        let Some(k) = self.confirmed_commitment(id) else {
            return false;
        };
        match k.case {
            // Nothing of it is ours to claim.
            Case::OursRevoked(_) => true,
            Case::Revoked(_) => {
                let commitment = k.spend.compute_txid();
                self.punished(id) && !self.uneconomical.iter().any(|o| o.txid == commitment)
            }
            Case::Ours(_) | Case::Theirs(_) => {
                let limbo = self.limbo(id);
                limbo.closing == Amount::ZERO && limbo.htlcs.is_empty()
            }
        }
    }

    /// Closed channel `id`'s funds on their way back.
    pub(super) fn limbo(&self, id: ChannelId) -> Limbo {
        let Some(Phase::Closed(c)) = self.entries.get(&id).map(|e| &e.phase) else {
            return Limbo::default();
        };
        if c.withheld == record::Withheld::UntilFunded {
            // The funding's coins, on their way back by the double spend.
            let closing = c
                .sweeps
                .iter()
                .filter(|s| s.pending())
                .flat_map(|s| s.tx.output.iter().map(|o| o.value))
                .sum();
            return Limbo {
                closing,
                ..Limbo::default()
            };
        }
        if c.mutual() || c.withheld != record::Withheld::No {
            return Limbo::default();
        }
        if c.confirmed.is_none() {
            // Our commitment, broadcast and not confirmed yet: our balance
            // and the HTLCs in it.
            if c.tx.is_none() || c.reason == record::COOPERATIVE_CLOSE {
                return Limbo::default();
            }
            let htlcs = match (&c.kept, self.kept_view(id)) {
                (Some(KeptState::Normal(_)), Some(view)) => view
                    .local_htlcs()
                    .map(|h| UnresolvedHtlc {
                        we_offered: h.offered,
                        amount: h.amount,
                        cltv_expiry: h.cltv_expiry,
                        claimable: h.offered || self.incoming_preimage(id, h.id).is_some(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            return Limbo {
                closing: Amount::from_sat(c.local.to_msat() / 1000),
                spendable_at: None,
                htlcs,
                lost: Amount::ZERO,
            };
        }
        let Some(k) = self.confirmed_commitment(id) else {
            return Limbo::default();
        };
        // Spent by our claims (pending or confirmed) or by the peer. (An
        // output worth less than any claim of it stays counted: it is still
        // ours on chain, and what is shown must not depend on what was
        // worked out since the last restart.)
        let taken: std::collections::BTreeSet<OutPoint> = c
            .sweeps
            .iter()
            .filter(|s| s.live())
            .flat_map(|s| s.tx.input.iter().map(|i| i.previous_output))
            .chain(c.spent.iter().map(|s| s.outpoint))
            .collect();
        let mut limbo = Limbo::default();
        // Our claims not confirmed yet: what goes to the wallet, and the
        // output of an HTLC transaction (a change output is the wallet's).
        for s in c.sweeps.iter().filter(|s| s.pending()) {
            let to_wallet: Amount =
                s.tx.output
                    .iter()
                    .filter(|o| Some(&o.script_pubkey) == self.settings.close_script.as_ref())
                    .map(|o| o.value)
                    .sum();
            limbo.closing += if to_wallet > Amount::ZERO {
                to_wallet
            } else {
                s.tx.output.first().map_or(Amount::ZERO, |o| o.value)
            };
        }
        match k.case {
            Case::Revoked(_) | Case::OursRevoked(_) => return limbo,
            Case::Ours(_) => {
                for (claim, at) in self.delayed_outputs(id, &k) {
                    if !taken.contains(&claim.input.outpoint) {
                        limbo.closing += claim.input.value;
                        limbo.spendable_at = Some(limbo.spendable_at.map_or(at, |s| s.min(at)));
                    }
                }
            }
            Case::Theirs(_) => {
                let keys = self
                    .keys
                    .channel(self.entries.get(&id).map_or(0, |e| e.index));
                for claim in beongae_channel::onchain::their_commitment_claims(
                    &k.view.funded,
                    &k.spend,
                    keys.payment_base,
                ) {
                    if !taken.contains(&claim.input.outpoint) {
                        limbo.closing += claim.input.value;
                    }
                }
            }
        }
        for out in k.htlcs.iter().flatten() {
            if taken.contains(&out.outpoint) {
                // The peer's spend of an HTLC offered to us is its timeout.
                if !out.we_offered
                    && c.spent.iter().any(|s| s.outpoint == out.outpoint)
                    && self.incoming_preimage(id, out.id).is_some()
                {
                    limbo.lost += out.value;
                }
                continue;
            }
            let claimable = out.we_offered || self.incoming_preimage(id, out.id).is_some();
            if claimable {
                limbo.closing += out.value;
            }
            limbo.htlcs.push(UnresolvedHtlc {
                we_offered: out.we_offered,
                amount: out.amount,
                cltv_expiry: out.cltv_expiry,
                claimable,
            });
        }
        limbo
    }
}
