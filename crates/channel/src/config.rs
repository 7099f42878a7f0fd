//! The limits this node applies: what it asks of its peers for its own
//! protection, and what it accepts from them.

use beongae_script::FeeratePerKw;
use beongae_wire::Msat;
use bitcoin::Amount;

/// Channel settings; every field has a default a node operator can change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Our `dust_limit_satoshis`.
    pub dust_limit: Amount,
    /// The `to_self_delay` we ask the peer to wait on its own outputs.
    pub to_self_delay: u16,
    /// The largest `to_self_delay` we accept for our own outputs.
    pub max_to_self_delay: u16,
    /// Our `htlc_minimum_msat`.
    pub htlc_minimum: Msat,
    /// Our `max_accepted_htlcs` (at most 483).
    pub max_accepted_htlcs: u16,
    /// The share of the channel we let the peer have in flight towards us, in percent.
    pub max_htlc_value_in_flight_percent: u8,
    /// The reserve we ask the peer to keep, in millionths of the channel (1% = 10_000).
    pub reserve_ppm: u32,
    /// Confirmations we wait for before `channel_ready`.
    pub minimum_depth: u32,
    /// The most confirmations a peer may ask us to wait for.
    pub max_minimum_depth: u32,
    /// Smallest channel we accept.
    pub min_funding: Amount,
    /// Whether we accept channels of 2^24 sat or more (`option_support_large_channel`).
    pub large_channels: bool,
    /// Feerates we accept from a funder.
    pub min_feerate: FeeratePerKw,
    /// Feerates we accept from a funder.
    pub max_feerate: FeeratePerKw,
    /// Largest dust limit we accept from a peer.
    pub max_peer_dust_limit: Amount,
    /// Largest `htlc_minimum_msat` we accept from a peer.
    pub max_peer_htlc_minimum: Msat,
    /// Smallest `max_accepted_htlcs` we accept from a peer.
    pub min_peer_max_accepted_htlcs: u16,
    /// Largest reserve we keep for a peer, in millionths of the channel.
    pub max_peer_reserve_ppm: u32,
    /// `max_dust_htlc_exposure_msat`: the most trimmed HTLCs may hold on
    /// either commitment.
    pub max_dust_htlc_exposure: Msat,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            dust_limit: Amount::from_sat(546),
            to_self_delay: 144,
            max_to_self_delay: 2016,
            htlc_minimum: Msat::from_msat(1),
            max_accepted_htlcs: 483,
            max_htlc_value_in_flight_percent: 100,
            reserve_ppm: 10_000,
            minimum_depth: 3,
            max_minimum_depth: 144,
            min_funding: Amount::from_sat(20_000),
            large_channels: false,
            min_feerate: FeeratePerKw(253),
            max_feerate: FeeratePerKw(250_000),
            max_peer_dust_limit: Amount::from_sat(10_000),
            max_peer_htlc_minimum: Msat::from_msat(1_000_000),
            min_peer_max_accepted_htlcs: 5,
            max_peer_reserve_ppm: 100_000,
            max_dust_htlc_exposure: Msat::from_msat(50_000_000),
        }
    }
}
