//! The limits each side announced in `open_channel`/`accept_channel` and the
//! checks BOLT 2 §"Adding an HTLC: `update_add_htlc`" and §"Updating Fees:
//! `update_fee`" make with them.
//!
//! Every check is made on one commitment, the one that receives the update:
//! the offerer checks the peer's next commitment before sending, the peer
//! checks its own next commitment on receipt. Both compute the same
//! commitment (see [`crate::commitments`]), so what a sender lets through a
//! conforming receiver accepts; the sender additionally keeps the fee spike
//! buffer BOLT 2 recommends.

use beongae_script::commitment::{is_trimmed, Htlc};
use beongae_script::fees::{commitment_fee, ANCHOR_OUTPUT_VALUE};
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::Msat;
use bitcoin::Amount;

use crate::commitments::{CommitSpec, UpdateError};
use crate::open::PeerParams;

/// BOLT 2: `cltv_expiry` MUST be below 500000000 (a block height, not a time).
pub const MAX_CLTV_EXPIRY: u32 = 500_000_000;

/// BOLT 3 §"Fee Calculation": the lowest feerate a commitment may use.
pub const MIN_FEERATE: FeeratePerKw = FeeratePerKw(253);

/// What one node announced for its own commitment: they bound what the
/// other node may add to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitLimits {
    /// `dust_limit_satoshis`: outputs below it are trimmed from this node's commitment.
    pub dust_limit: Amount,
    /// `channel_reserve_satoshis`: what the *other* node must keep.
    pub channel_reserve: Amount,
    /// `htlc_minimum_msat`: the smallest HTLC this node accepts.
    pub htlc_minimum: Msat,
    /// `max_htlc_value_in_flight_msat`: the most the other node may have offered at once.
    pub max_htlc_value_in_flight: Msat,
    /// `max_accepted_htlcs`: how many HTLCs the other node may have offered at once.
    pub max_accepted_htlcs: u16,
}

impl From<&PeerParams> for CommitLimits {
    fn from(p: &PeerParams) -> Self {
        CommitLimits {
            dust_limit: p.dust_limit,
            channel_reserve: p.channel_reserve,
            htlc_minimum: p.htlc_minimum,
            max_htlc_value_in_flight: p.max_htlc_value_in_flight,
            max_accepted_htlcs: p.max_accepted_htlcs,
        }
    }
}

/// The fixed parameters of a channel that the update checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelParams {
    /// Commitment format.
    pub channel_type: ChannelType,
    /// Whether we opened the channel (and pay the commitment fee and anchors).
    pub we_are_funder: bool,
    /// Our limits (they govern our commitment).
    pub local: CommitLimits,
    /// The peer's limits (they govern its commitment).
    pub remote: CommitLimits,
    /// Our `max_dust_htlc_exposure_msat` (BOLT 2 §"Bounding exposure to
    /// trimmed in-flight HTLCs"): the most trimmed HTLCs may hold on either
    /// commitment, which a force-close would give to miners.
    pub max_dust_htlc_exposure: Msat,
}

impl CommitSpec {
    /// The "dust balance": trimmed HTLCs on this commitment, for an owner
    /// whose dust limit is `dust_limit`.
    pub fn dust_exposure(&self, channel_type: ChannelType, dust_limit: Amount) -> Msat {
        let trimmed = self.htlcs.iter().filter(|h| {
            let htlc = Htlc {
                offered: h.offered,
                amount: h.amount,
                cltv_expiry: h.cltv_expiry,
                payment_hash: h.payment_hash,
            };
            is_trimmed(&htlc, channel_type, self.feerate, dust_limit)
        });
        Msat::checked_sum(trimmed.map(|h| h.amount)).unwrap_or(Msat::from_msat(u64::MAX))
    }

    /// HTLCs that get an output on this commitment, for an owner whose
    /// dust limit is `dust_limit` (BOLT 3 §"Trimmed Outputs").
    pub fn untrimmed_htlcs(&self, channel_type: ChannelType, dust_limit: Amount) -> usize {
        self.htlcs
            .iter()
            .filter(|h| {
                let htlc = Htlc {
                    offered: h.offered,
                    amount: h.amount,
                    cltv_expiry: h.cltv_expiry,
                    payment_hash: h.payment_hash,
                };
                !is_trimmed(&htlc, channel_type, self.feerate, dust_limit)
            })
            .count()
    }

    /// What the funder pays out of its balance on this commitment: the fee
    /// for the untrimmed HTLCs plus `extra_htlcs` more, and both anchors with
    /// `option_anchors` (BOLT 3 §"Fee Payment").
    pub fn funder_cost(
        &self,
        channel_type: ChannelType,
        dust_limit: Amount,
        feerate: FeeratePerKw,
        extra_htlcs: usize,
    ) -> Msat {
        let htlcs = self.untrimmed_htlcs(channel_type, dust_limit) + extra_htlcs;
        let anchors = match channel_type {
            ChannelType::Anchors => ANCHOR_OUTPUT_VALUE * 2,
            ChannelType::StaticRemoteKey => Amount::ZERO,
        };
        let sat = commitment_fee(channel_type, feerate, htlcs) + anchors;
        Msat::from_msat(sat.to_sat() * 1000)
    }
}

/// Who is checking: the sender applies its stricter SHOULD rules on top of
/// what the receiver MUST refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checker {
    Sender,
    Receiver,
}

/// BOLT 2 `update_add_htlc` rules on the commitment `spec` that will hold the
/// new HTLC (owner's view: the offerer is the other side, its HTLCs are those
/// with `offered == false`, its balance is `to_remote`). `owner_limits` are
/// what the owner announced, `owner_reserve` the reserve the offerer asked
/// the owner to keep; `offerer_is_funder` says who pays the fee.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_add(
    spec: &CommitSpec,
    amount: Msat,
    cltv_expiry: u32,
    channel_type: ChannelType,
    owner_limits: &CommitLimits,
    owner_reserve: Amount,
    offerer_is_funder: bool,
    checker: Checker,
) -> Result<(), UpdateError> {
    if amount == Msat::ZERO {
        return Err(UpdateError::ZeroAmount);
    }
    if amount < owner_limits.htlc_minimum {
        return Err(UpdateError::BelowHtlcMinimum {
            amount,
            minimum: owner_limits.htlc_minimum,
        });
    }
    if cltv_expiry >= MAX_CLTV_EXPIRY {
        return Err(UpdateError::CltvExpiryTooFar(cltv_expiry));
    }
    let offered = spec.htlcs.iter().filter(|h| !h.offered);
    let count = offered.clone().count();
    if count > usize::from(owner_limits.max_accepted_htlcs) {
        return Err(UpdateError::TooManyHtlcs {
            max: owner_limits.max_accepted_htlcs,
        });
    }
    let in_flight =
        Msat::checked_sum(offered.map(|h| h.amount)).unwrap_or(Msat::from_msat(u64::MAX));
    if in_flight > owner_limits.max_htlc_value_in_flight {
        return Err(UpdateError::InFlightExceeded {
            in_flight,
            max: owner_limits.max_htlc_value_in_flight,
        });
    }
    let dust = owner_limits.dust_limit;
    let reserve = Msat::from_msat(owner_limits.channel_reserve.to_sat() * 1000);
    let cost = spec.funder_cost(channel_type, dust, spec.feerate, 0);
    // The offerer keeps its reserve after paying, if it is the funder, the fee.
    let offerer_needs = if offerer_is_funder {
        cost.checked_add(reserve)
    } else {
        Some(reserve)
    };
    if offerer_needs.is_none_or(|need| spec.to_remote < need) {
        return Err(UpdateError::ReserveBreached {
            balance: spec.to_remote,
            needed: offerer_needs.unwrap_or(Msat::from_msat(u64::MAX)),
        });
    }
    match (checker, offerer_is_funder) {
        // BOLT 2 SHOULD: the funder keeps a buffer for a fee spike (twice
        // the feerate) with one more HTLC, so the other side can still add.
        (Checker::Sender, true) => {
            let spike = FeeratePerKw(spec.feerate.0.saturating_mul(2));
            let need = spec
                .funder_cost(channel_type, dust, spike, 1)
                .checked_add(reserve);
            if need.is_none_or(|need| spec.to_remote < need) {
                return Err(UpdateError::FeeSpikeBuffer);
            }
        }
        // The fundee's HTLC raises the funder's fee: the sender does not push
        // the funder below its reserve (LDK fails the channel if it does);
        // the receiving funder only refuses a commitment it cannot pay for.
        (checker, false) => {
            let owner_reserve = match checker {
                Checker::Sender => Msat::from_msat(owner_reserve.to_sat() * 1000),
                Checker::Receiver => Msat::ZERO,
            };
            if cost
                .checked_add(owner_reserve)
                .is_none_or(|need| spec.to_local < need)
            {
                return Err(UpdateError::FunderCannotPayFee {
                    balance: spec.to_local,
                    fee: cost,
                });
            }
        }
        (Checker::Receiver, true) => {}
    }
    Ok(())
}

/// BOLT 2 §"Bounding exposure to trimmed in-flight HTLCs": whether the
/// HTLC `(offered, id)` (owner's view) is trimmed on `after` and brings its
/// dust balance above `max`.
pub(crate) fn exceeds_dust_exposure(
    after: &CommitSpec,
    new: (bool, u64),
    channel_type: ChannelType,
    dust_limit: Amount,
    max: Msat,
) -> Option<Msat> {
    let exposure = after.dust_exposure(channel_type, dust_limit);
    if exposure <= max {
        return None;
    }
    let mut before = after.clone();
    before.htlcs.retain(|h| (h.offered, h.id) != new);
    (before.dust_exposure(channel_type, dust_limit) < exposure).then_some(exposure)
}

/// BOLT 2 `update_fee` rules on the commitment `spec` (already at the new
/// feerate) of an owner whose limits are `owner_limits`; the funder is the
/// other side (`to_remote`). The sender also keeps its reserve.
pub(crate) fn check_fee(
    spec: &CommitSpec,
    channel_type: ChannelType,
    owner_limits: &CommitLimits,
    checker: Checker,
) -> Result<(), UpdateError> {
    if spec.feerate < MIN_FEERATE {
        return Err(UpdateError::FeerateTooLow(spec.feerate));
    }
    let cost = spec.funder_cost(channel_type, owner_limits.dust_limit, spec.feerate, 0);
    let need = match checker {
        Checker::Sender => cost.checked_add(Msat::from_msat(
            owner_limits.channel_reserve.to_sat() * 1000,
        )),
        Checker::Receiver => Some(cost),
    };
    if need.is_none_or(|need| spec.to_remote < need) {
        return Err(UpdateError::FunderCannotPayFee {
            balance: spec.to_remote,
            fee: cost,
        });
    }
    Ok(())
}
