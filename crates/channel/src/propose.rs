//! The sending side of BOLT 2 §"Channel Establishment v1": our
//! `open_channel` and `accept_channel`, from our [`ChannelConfig`] and the
//! channel's keys, with the sender's MUST rules.

use beongae_script::FeeratePerKw;
use beongae_wire::msgs::{AcceptChannel, OpenChannel};
use beongae_wire::{ChainHash, ChannelId, Msat, TlvStream};
use bitcoin::secp256k1::{Secp256k1, Signing};
use bitcoin::Amount;

use beongae_script::commitment::CommitmentNumber;

use crate::channel_type::ChannelTypeSpec;
use crate::config::ChannelConfig;
use crate::funding::LocalSetup;
use crate::limits::CommitLimits;
use crate::open::{check_keys_are_theirs, OpenError, OpenRequest, LARGE_CHANNEL};

/// The limits we announce for a channel of `funding`: our dust limit, the
/// reserve we ask of the peer (`reserve_ppm` of the channel, and never below
/// either side's dust limit, as BOLT 2 requires), our HTLC minimum, and
/// the value in flight and HTLC count we accept.
pub fn our_limits(cfg: &ChannelConfig, funding: Amount, peer_dust: Amount) -> CommitLimits {
    let share = funding.to_sat().saturating_mul(u64::from(cfg.reserve_ppm)) / 1_000_000;
    let reserve = Amount::from_sat(share).max(cfg.dust_limit).max(peer_dust);
    let in_flight = funding
        .to_sat()
        .saturating_mul(1000)
        .saturating_mul(u64::from(cfg.max_htlc_value_in_flight_percent))
        / 100;
    CommitLimits {
        dust_limit: cfg.dust_limit,
        channel_reserve: reserve,
        htlc_minimum: cfg.htlc_minimum,
        max_htlc_value_in_flight: Msat::from_msat(in_flight),
        max_accepted_htlcs: cfg.max_accepted_htlcs,
    }
}

/// Our `open_channel` (BOLT 2 sender rules: `push_msat` at most the
/// funding, under 2^24 sat without `option_support_large_channel`, reserve
/// at least our dust limit).
#[allow(clippy::too_many_arguments)]
pub fn open_channel<C: Signing>(
    secp: &Secp256k1<C>,
    chain_hash: ChainHash,
    temporary_channel_id: ChannelId,
    funding: Amount,
    push: Msat,
    feerate: FeeratePerKw,
    channel_type: ChannelTypeSpec,
    local: &LocalSetup,
    cfg: &ChannelConfig,
    announce: bool,
) -> Result<OpenChannel, OpenError> {
    let funding_msat = Msat::from_sat(funding.to_sat()).ok_or(OpenError::LargeChannel(funding))?;
    if push > funding_msat {
        return Err(OpenError::PushTooLarge { push, funding });
    }
    if funding >= LARGE_CHANNEL && !cfg.large_channels {
        return Err(OpenError::LargeChannel(funding));
    }
    let l = &local.limits;
    if l.channel_reserve < l.dust_limit {
        return Err(OpenError::DustAboveReserve {
            dust: l.dust_limit,
            reserve: l.channel_reserve,
        });
    }
    let k = &local.keys;
    Ok(OpenChannel {
        chain_hash,
        temporary_channel_id,
        funding_satoshis: funding.to_sat(),
        push_msat: push.to_msat(),
        dust_limit_satoshis: l.dust_limit.to_sat(),
        max_htlc_value_in_flight_msat: l.max_htlc_value_in_flight.to_msat(),
        channel_reserve_satoshis: l.channel_reserve.to_sat(),
        htlc_minimum_msat: l.htlc_minimum.to_msat(),
        feerate_per_kw: feerate.0,
        to_self_delay: local.to_self_delay,
        max_accepted_htlcs: l.max_accepted_htlcs,
        funding_pubkey: k.funding_pubkey,
        revocation_basepoint: k.revocation_basepoint,
        payment_basepoint: k.payment_basepoint,
        delayed_payment_basepoint: k.delayed_payment_basepoint,
        htlc_basepoint: k.htlc_basepoint,
        first_per_commitment_point: local.secrets.point(secp, CommitmentNumber::ZERO),
        channel_flags: u8::from(announce),
        upfront_shutdown_script: None,
        channel_type: Some(channel_type.to_features()),
        extension: TlvStream::default(),
    })
}

/// Our `accept_channel` for a checked `open_channel` (BOLT 2 sender rules:
/// our reserve at least the opener's dust limit, our dust limit at most the
/// opener's reserve).
pub fn accept_channel<C: Signing>(
    secp: &Secp256k1<C>,
    request: &OpenRequest,
    local: &LocalSetup,
    minimum_depth: u32,
) -> Result<AcceptChannel, OpenError> {
    let l = &local.limits;
    if l.channel_reserve < request.params.dust_limit {
        return Err(OpenError::DustAboveReserve {
            dust: request.params.dust_limit,
            reserve: l.channel_reserve,
        });
    }
    if l.dust_limit > request.params.channel_reserve {
        return Err(OpenError::DustAboveReserve {
            dust: l.dust_limit,
            reserve: request.params.channel_reserve,
        });
    }
    check_keys_are_theirs(&local.keys, &request.params.keys)?;
    let k = &local.keys;
    Ok(AcceptChannel {
        temporary_channel_id: request.temporary_channel_id,
        dust_limit_satoshis: l.dust_limit.to_sat(),
        max_htlc_value_in_flight_msat: l.max_htlc_value_in_flight.to_msat(),
        channel_reserve_satoshis: l.channel_reserve.to_sat(),
        htlc_minimum_msat: l.htlc_minimum.to_msat(),
        minimum_depth,
        to_self_delay: local.to_self_delay,
        max_accepted_htlcs: l.max_accepted_htlcs,
        funding_pubkey: k.funding_pubkey,
        revocation_basepoint: k.revocation_basepoint,
        payment_basepoint: k.payment_basepoint,
        delayed_payment_basepoint: k.delayed_payment_basepoint,
        htlc_basepoint: k.htlc_basepoint,
        first_per_commitment_point: local.secrets.point(secp, CommitmentNumber::ZERO),
        upfront_shutdown_script: None,
        channel_type: Some(request.channel_type.to_features()),
        extension: TlvStream::default(),
    })
}
