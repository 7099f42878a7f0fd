//! BOLT 2 §"Channel Establishment v1": the receiving node's checks on
//! `open_channel` and the opener's checks on `accept_channel`. Each refusal
//! is an [`OpenError`] whose text goes into the BOLT 1 `error` that fails the
//! channel.

use beongae_script::fees::{commitment_fee, ANCHOR_OUTPUT_VALUE};
use beongae_script::keys::ChannelPublicKeys;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::msgs::{AcceptChannel, OpenChannel};
use beongae_wire::{ChainHash, ChannelId, Msat};
use bitcoin::secp256k1::PublicKey;
use bitcoin::Amount;

use crate::channel_type::ChannelTypeSpec;
use crate::config::ChannelConfig;

/// BOLT 2: `max_accepted_htlcs` may not exceed 483 (without `zero_fee_commitments`).
pub const MAX_ACCEPTED_HTLCS: u16 = 483;
/// BOLT 2 / BOLT 3 §"Dust Limits": the smallest `dust_limit_satoshis` allowed.
pub const MIN_DUST_LIMIT: Amount = Amount::from_sat(354);
/// Channels of 2^24 sat or more need `option_support_large_channel`.
pub const LARGE_CHANNEL: Amount = Amount::from_sat(1 << 24);

/// Why a channel proposal or acceptance is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another chain.
    #[error("unknown chain {0}")]
    UnknownChain(ChainHash),
    /// `push_msat` larger than the channel.
    #[error("push_msat {push} exceeds funding_satoshis {funding}")]
    PushTooLarge {
        /// `push_msat`
        push: Msat,
        /// `funding_satoshis`
        funding: Amount,
    },
    /// `to_self_delay` above our limit.
    #[error("to_self_delay {got} is larger than our limit {max}")]
    ToSelfDelayTooLarge {
        /// Asked.
        got: u16,
        /// Our limit.
        max: u16,
    },
    /// `max_accepted_htlcs` above 483.
    #[error("max_accepted_htlcs {0} is above 483")]
    TooManyAcceptedHtlcs(u16),
    /// `max_accepted_htlcs` below what we accept.
    #[error("max_accepted_htlcs {got} is below our minimum {min}")]
    TooFewAcceptedHtlcs {
        /// Asked.
        got: u16,
        /// Our minimum.
        min: u16,
    },
    /// Feerate outside what we accept.
    #[error("feerate_per_kw {got} is outside {min}..={max}")]
    Feerate {
        /// Offered.
        got: u32,
        /// Our minimum.
        min: u32,
        /// Our maximum.
        max: u32,
    },
    /// `dust_limit_satoshis` greater than `channel_reserve_satoshis`.
    #[error("dust_limit_satoshis {dust} is greater than channel_reserve_satoshis {reserve}")]
    DustAboveReserve {
        /// Dust limit.
        dust: Amount,
        /// Reserve.
        reserve: Amount,
    },
    /// `dust_limit_satoshis` below 354.
    #[error("dust_limit_satoshis {0} is below 354")]
    DustTooSmall(Amount),
    /// `dust_limit_satoshis` above what we accept.
    #[error("dust_limit_satoshis {got} is above our limit {max}")]
    DustTooLarge {
        /// Asked.
        got: Amount,
        /// Our limit.
        max: Amount,
    },
    /// The funder cannot pay the initial commitment's fee (and anchors).
    #[error("the funder's {balance} cannot pay the initial commitment fee and anchors {needed}")]
    FunderCannotPayFee {
        /// The funder's balance.
        balance: Msat,
        /// Fee plus anchors.
        needed: Amount,
    },
    /// Neither side would have more than the reserve.
    #[error("both initial balances are at or below the channel reserve {0}")]
    BothBelowReserve(Amount),
    /// A large channel we do not accept.
    #[error("funding_satoshis {0} needs option_support_large_channel")]
    LargeChannel(Amount),
    /// A channel smaller than we accept.
    #[error("funding_satoshis {got} is below our minimum {min}")]
    FundingTooSmall {
        /// Offered.
        got: Amount,
        /// Our minimum.
        min: Amount,
    },
    /// No `channel_type`.
    #[error("channel_type is missing")]
    NoChannelType,
    /// A `channel_type` we do not support.
    #[error("channel_type is not acceptable: {0}")]
    ChannelType(String),
    /// `accept_channel` with another `channel_type` than proposed.
    #[error("channel_type differs from the one proposed")]
    ChannelTypeMismatch,
    /// Zero-conf from a peer we do not trust with it.
    #[error("option_zeroconf is only accepted from trusted peers")]
    ZeroconfNotTrusted,
    /// `htlc_minimum_msat` larger than we accept.
    #[error("htlc_minimum_msat {got} is above our limit {max}")]
    HtlcMinimumTooLarge {
        /// Asked.
        got: Msat,
        /// Our limit.
        max: Msat,
    },
    /// The reserve asked of us is too large.
    #[error("channel_reserve_satoshis {got} is above our limit {max}")]
    ReserveTooLarge {
        /// Asked.
        got: Amount,
        /// Our limit.
        max: Amount,
    },
    /// `minimum_depth` larger than we accept.
    #[error("minimum_depth {got} is above our limit {max}")]
    MinimumDepthTooLarge {
        /// Asked.
        got: u32,
        /// Our limit.
        max: u32,
    },
    /// `accept_channel` for another `temporary_channel_id`.
    #[error("accept_channel is for temporary channel {0}, not ours")]
    WrongTemporaryChannelId(ChannelId),
    /// One of the peer's keys is one of ours.
    #[error("your {0} is one of our keys: every key must be your own")]
    KeyIsOurs(&'static str),
}

/// The peer's funding key and basepoints must not repeat any of ours. BOLT
/// 2 does not ask it, but keys are the peer's own random choice: an honest
/// peer never repeats ours, and one that does could make its commitments
/// read as ours by their scripts (a copied `payment_basepoint` turns its
/// `to_remote` into what ours pays it; copied revocation and delayed
/// basepoints do the same for `to_local`), so that a revoked one of its
/// own might not be punished.
pub fn check_keys_are_theirs(
    ours: &ChannelPublicKeys,
    theirs: &ChannelPublicKeys,
) -> Result<(), OpenError> {
    let list = |k: &ChannelPublicKeys| {
        [
            ("funding_pubkey", k.funding_pubkey),
            ("revocation_basepoint", k.revocation_basepoint),
            ("payment_basepoint", k.payment_basepoint),
            ("delayed_payment_basepoint", k.delayed_payment_basepoint),
            ("htlc_basepoint", k.htlc_basepoint),
        ]
    };
    let mine = list(ours);
    match list(theirs)
        .into_iter()
        .find(|(_, key)| mine.iter().any(|(_, m)| m == key))
    {
        Some((name, _)) => Err(OpenError::KeyIsOurs(name)),
        None => Ok(()),
    }
}

/// One side's parameters, as the other side announced them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerParams {
    /// Its `dust_limit_satoshis` (for its commitment).
    pub dust_limit: Amount,
    /// Its `max_htlc_value_in_flight_msat` (a cap on what we offer it).
    pub max_htlc_value_in_flight: Msat,
    /// The reserve it asks us to keep.
    pub channel_reserve: Amount,
    /// Its `htlc_minimum_msat`.
    pub htlc_minimum: Msat,
    /// The delay it imposes on our outputs.
    pub to_self_delay: u16,
    /// Its `max_accepted_htlcs`.
    pub max_accepted_htlcs: u16,
    /// Its keys.
    pub keys: ChannelPublicKeys,
    /// Its first per-commitment point.
    pub first_per_commitment_point: PublicKey,
    /// Its `upfront_shutdown_script`, if any (empty = none committed).
    pub upfront_shutdown_script: Option<Vec<u8>>,
}

/// An `open_channel` we may accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    /// `temporary_channel_id`
    pub temporary_channel_id: ChannelId,
    /// The opener's parameters.
    pub params: PeerParams,
    /// `funding_satoshis`
    pub funding: Amount,
    /// `push_msat`
    pub push: Msat,
    /// `feerate_per_kw`
    pub feerate: FeeratePerKw,
    /// The negotiated type.
    pub channel_type: ChannelTypeSpec,
    /// `announce_channel` (bit 0 of `channel_flags`; other bits ignored).
    pub announce: bool,
}

/// The announcing side's [`PeerParams`] from an `open_channel` or
/// `accept_channel` (the two share these field names).
macro_rules! peer_params {
    ($msg:expr, $dust:expr, $reserve:expr) => {
        PeerParams {
            dust_limit: $dust,
            max_htlc_value_in_flight: Msat::from_msat($msg.max_htlc_value_in_flight_msat),
            channel_reserve: $reserve,
            htlc_minimum: Msat::from_msat($msg.htlc_minimum_msat),
            to_self_delay: $msg.to_self_delay,
            max_accepted_htlcs: $msg.max_accepted_htlcs,
            keys: ChannelPublicKeys {
                funding_pubkey: $msg.funding_pubkey,
                revocation_basepoint: $msg.revocation_basepoint,
                payment_basepoint: $msg.payment_basepoint,
                delayed_payment_basepoint: $msg.delayed_payment_basepoint,
                htlc_basepoint: $msg.htlc_basepoint,
            },
            first_per_commitment_point: $msg.first_per_commitment_point,
            upfront_shutdown_script: $msg.upfront_shutdown_script.clone(),
        }
    };
}

/// Checks shared by `open_channel` and `accept_channel` ("Other fields have
/// the same requirements as their counterparts in `open_channel`").
fn check_common(
    cfg: &ChannelConfig,
    dust: Amount,
    to_self_delay: u16,
    max_accepted_htlcs: u16,
    htlc_minimum: Msat,
) -> Result<(), OpenError> {
    if to_self_delay > cfg.max_to_self_delay {
        return Err(OpenError::ToSelfDelayTooLarge {
            got: to_self_delay,
            max: cfg.max_to_self_delay,
        });
    }
    if max_accepted_htlcs > MAX_ACCEPTED_HTLCS {
        return Err(OpenError::TooManyAcceptedHtlcs(max_accepted_htlcs));
    }
    if max_accepted_htlcs < cfg.min_peer_max_accepted_htlcs {
        return Err(OpenError::TooFewAcceptedHtlcs {
            got: max_accepted_htlcs,
            min: cfg.min_peer_max_accepted_htlcs,
        });
    }
    if dust < MIN_DUST_LIMIT {
        return Err(OpenError::DustTooSmall(dust));
    }
    if dust > cfg.max_peer_dust_limit {
        return Err(OpenError::DustTooLarge {
            got: dust,
            max: cfg.max_peer_dust_limit,
        });
    }
    if htlc_minimum > cfg.max_peer_htlc_minimum {
        return Err(OpenError::HtlcMinimumTooLarge {
            got: htlc_minimum,
            max: cfg.max_peer_htlc_minimum,
        });
    }
    Ok(())
}

fn check_reserve_limit(
    cfg: &ChannelConfig,
    reserve: Amount,
    funding: Amount,
) -> Result<(), OpenError> {
    let max = Amount::from_sat(
        funding
            .to_sat()
            .saturating_mul(u64::from(cfg.max_peer_reserve_ppm))
            / 1_000_000,
    );
    if reserve > max {
        return Err(OpenError::ReserveTooLarge { got: reserve, max });
    }
    Ok(())
}

/// The fee and anchors the funder pays on the initial (HTLC-free) commitment.
pub fn initial_funder_cost(channel_type: ChannelType, feerate: FeeratePerKw) -> Amount {
    let anchors = match channel_type {
        ChannelType::StaticRemoteKey => Amount::ZERO,
        ChannelType::Anchors => ANCHOR_OUTPUT_VALUE * 2,
    };
    commitment_fee(channel_type, feerate, 0) + anchors
}

/// BOLT 2 §"The `open_channel` Message", receiving node: every MUST and
/// the MAYs we apply through `cfg`.
pub fn check_open_channel(
    msg: &OpenChannel,
    our_chain: ChainHash,
    cfg: &ChannelConfig,
    trust_zeroconf: bool,
) -> Result<OpenRequest, OpenError> {
    if msg.chain_hash != our_chain {
        return Err(OpenError::UnknownChain(msg.chain_hash));
    }
    let funding = Amount::from_sat(msg.funding_satoshis);
    let funding_msat =
        Msat::from_sat(msg.funding_satoshis).ok_or(OpenError::LargeChannel(funding))?;
    let push = Msat::from_msat(msg.push_msat);
    if push > funding_msat {
        return Err(OpenError::PushTooLarge { push, funding });
    }
    if funding >= LARGE_CHANNEL && !cfg.large_channels {
        return Err(OpenError::LargeChannel(funding));
    }
    if funding < cfg.min_funding {
        return Err(OpenError::FundingTooSmall {
            got: funding,
            min: cfg.min_funding,
        });
    }
    let dust = Amount::from_sat(msg.dust_limit_satoshis);
    let reserve = Amount::from_sat(msg.channel_reserve_satoshis);
    check_common(
        cfg,
        dust,
        msg.to_self_delay,
        msg.max_accepted_htlcs,
        Msat::from_msat(msg.htlc_minimum_msat),
    )?;
    if dust > reserve {
        return Err(OpenError::DustAboveReserve { dust, reserve });
    }
    check_reserve_limit(cfg, reserve, funding)?;
    let feerate = FeeratePerKw(msg.feerate_per_kw);
    if feerate < cfg.min_feerate || feerate > cfg.max_feerate {
        return Err(OpenError::Feerate {
            got: feerate.0,
            min: cfg.min_feerate.0,
            max: cfg.max_feerate.0,
        });
    }
    let channel_type = msg.channel_type.as_ref().ok_or(OpenError::NoChannelType)?;
    let channel_type = ChannelTypeSpec::from_features(channel_type)
        .map_err(|e| OpenError::ChannelType(e.to_string()))?;
    if channel_type.zeroconf && !trust_zeroconf {
        return Err(OpenError::ZeroconfNotTrusted);
    }
    // BOLT 2: the funder's amount must cover the initial commitment's fee.
    let needed = initial_funder_cost(channel_type.base, feerate);
    let funder = funding_msat.saturating_sub(push);
    let funder_after = funder
        .checked_sub(Msat::from_sat(needed.to_sat()).unwrap_or(Msat::MAX_MONEY))
        .ok_or(OpenError::FunderCannotPayFee {
            balance: funder,
            needed,
        })?;
    // BOLT 2: both balances at or below the reserve MUST fail.
    if funder_after.to_sat_floor() <= reserve.to_sat() && push.to_sat_floor() <= reserve.to_sat() {
        return Err(OpenError::BothBelowReserve(reserve));
    }
    Ok(OpenRequest {
        temporary_channel_id: msg.temporary_channel_id,
        params: peer_params!(msg, dust, reserve),
        funding,
        push,
        feerate,
        channel_type,
        announce: msg.channel_flags & 1 == 1,
    })
}

/// BOLT 2 §"The `accept_channel` Message", receiver (the opener): checks
/// against the `open_channel` we sent. Returns the accepter's parameters and
/// its `minimum_depth`.
pub fn check_accept_channel(
    msg: &AcceptChannel,
    ours: &OpenChannel,
    cfg: &ChannelConfig,
) -> Result<(PeerParams, u32), OpenError> {
    if msg.temporary_channel_id != ours.temporary_channel_id {
        return Err(OpenError::WrongTemporaryChannelId(msg.temporary_channel_id));
    }
    let dust = Amount::from_sat(msg.dust_limit_satoshis);
    let reserve = Amount::from_sat(msg.channel_reserve_satoshis);
    check_common(
        cfg,
        dust,
        msg.to_self_delay,
        msg.max_accepted_htlcs,
        Msat::from_msat(msg.htlc_minimum_msat),
    )?;
    // "if channel_reserve_satoshis is less than dust_limit_satoshis within the open_channel message: MUST fail"
    let our_dust = Amount::from_sat(ours.dust_limit_satoshis);
    if reserve < our_dust {
        return Err(OpenError::DustAboveReserve {
            dust: our_dust,
            reserve,
        });
    }
    // "if channel_reserve_satoshis from the open_channel message is less than dust_limit_satoshis: MUST fail"
    let our_reserve = Amount::from_sat(ours.channel_reserve_satoshis);
    if our_reserve < dust {
        return Err(OpenError::DustAboveReserve {
            dust,
            reserve: our_reserve,
        });
    }
    check_reserve_limit(cfg, reserve, Amount::from_sat(ours.funding_satoshis))?;
    check_keys_are_theirs(
        &ChannelPublicKeys {
            funding_pubkey: ours.funding_pubkey,
            revocation_basepoint: ours.revocation_basepoint,
            payment_basepoint: ours.payment_basepoint,
            delayed_payment_basepoint: ours.delayed_payment_basepoint,
            htlc_basepoint: ours.htlc_basepoint,
        },
        &ChannelPublicKeys {
            funding_pubkey: msg.funding_pubkey,
            revocation_basepoint: msg.revocation_basepoint,
            payment_basepoint: msg.payment_basepoint,
            delayed_payment_basepoint: msg.delayed_payment_basepoint,
            htlc_basepoint: msg.htlc_basepoint,
        },
    )?;
    let theirs = msg.channel_type.as_ref().ok_or(OpenError::NoChannelType)?;
    if Some(theirs) != ours.channel_type.as_ref() {
        return Err(OpenError::ChannelTypeMismatch);
    }
    if msg.minimum_depth > cfg.max_minimum_depth {
        return Err(OpenError::MinimumDepthTooLarge {
            got: msg.minimum_depth,
            max: cfg.max_minimum_depth,
        });
    }
    Ok((peer_params!(msg, dust, reserve), msg.minimum_depth))
}
