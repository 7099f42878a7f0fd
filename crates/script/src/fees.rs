//! BOLT 3 §"Fee Calculation", §"Appendix A: Expected Weights".

use bitcoin::Amount;

use crate::ChannelType;

/// A feerate in satoshi per 1000 weight units (BOLT 2 `feerate_per_kw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeeratePerKw(pub u32);

impl FeeratePerKw {
    /// BOLT 3's floor, 253 sat/kW (1 sat/vB rounded up): the lowest
    /// feerate a transaction may pay and still relay.
    pub const FLOOR: FeeratePerKw = FeeratePerKw(253);

    /// `feerate_per_kw * weight / 1000`, rounded down (BOLT 3 "Fee Calculation").
    pub fn fee_for_weight(self, weight: u64) -> Amount {
        Amount::from_sat(u64::from(self.0) * weight / 1000)
    }
}

/// BOLT 3: the fixed value of each anchor output, 330 satoshi.
pub const ANCHOR_OUTPUT_VALUE: Amount = Amount::from_sat(330);

/// Weight one untrimmed HTLC output adds to a commitment (Appendix A).
pub const HTLC_OUTPUT_WEIGHT: u64 = 172;

/// Expected weight of a commitment transaction without HTLC outputs:
/// 724, or 1124 with `option_anchors` (Appendix A).
pub fn commitment_base_weight(channel_type: ChannelType) -> u64 {
    match channel_type {
        ChannelType::StaticRemoteKey => 724,
        ChannelType::Anchors => 1124,
    }
}

/// Expected commitment weight with `untrimmed_htlcs` HTLC outputs.
pub fn commitment_weight(channel_type: ChannelType, untrimmed_htlcs: usize) -> u64 {
    commitment_base_weight(channel_type) + HTLC_OUTPUT_WEIGHT * untrimmed_htlcs as u64
}

/// Expected HTLC-timeout weight: 663, or 666 with `option_anchors`.
pub fn htlc_timeout_weight(channel_type: ChannelType) -> u64 {
    match channel_type {
        ChannelType::StaticRemoteKey => 663,
        ChannelType::Anchors => 666,
    }
}

/// Expected HTLC-success weight: 703, or 706 with `option_anchors`.
pub fn htlc_success_weight(channel_type: ChannelType) -> u64 {
    match channel_type {
        ChannelType::StaticRemoteKey => 703,
        ChannelType::Anchors => 706,
    }
}

/// BOLT 3: the HTLC-timeout fee; 0 with `option_anchors`.
pub fn htlc_timeout_fee(channel_type: ChannelType, feerate: FeeratePerKw) -> Amount {
    match channel_type {
        ChannelType::StaticRemoteKey => feerate.fee_for_weight(htlc_timeout_weight(channel_type)),
        ChannelType::Anchors => Amount::ZERO,
    }
}

/// BOLT 3: the HTLC-success fee; 0 with `option_anchors`.
pub fn htlc_success_fee(channel_type: ChannelType, feerate: FeeratePerKw) -> Amount {
    match channel_type {
        ChannelType::StaticRemoteKey => feerate.fee_for_weight(htlc_success_weight(channel_type)),
        ChannelType::Anchors => Amount::ZERO,
    }
}

/// The fee of the second-stage transaction of an HTLC: HTLC-timeout for an
/// HTLC the commitment's owner offered, HTLC-success for one it received.
pub fn second_stage_fee(offered: bool, channel_type: ChannelType, feerate: FeeratePerKw) -> Amount {
    if offered {
        htlc_timeout_fee(channel_type, feerate)
    } else {
        htlc_success_fee(channel_type, feerate)
    }
}

/// BOLT 3: the base fee of a commitment with `untrimmed_htlcs` HTLC outputs.
pub fn commitment_fee(
    channel_type: ChannelType,
    feerate: FeeratePerKw,
    untrimmed_htlcs: usize,
) -> Amount {
    feerate.fee_for_weight(commitment_weight(channel_type, untrimmed_htlcs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BOLT 3 §"Fee Calculation" example: feerate 5000, dust 546, offered
    /// 5000/1000 sat and received 7000/800 sat HTLCs.
    #[test]
    fn fee_calculation_example() {
        let ct = ChannelType::StaticRemoteKey;
        let f = FeeratePerKw(5000);
        assert_eq!(htlc_timeout_fee(ct, f), Amount::from_sat(3315));
        assert_eq!(htlc_success_fee(ct, f), Amount::from_sat(3515));
        assert_eq!(commitment_weight(ct, 2), 1068);
        assert_eq!(commitment_fee(ct, f, 2), Amount::from_sat(5340));
        assert_eq!(htlc_timeout_fee(ChannelType::Anchors, f), Amount::ZERO);
        assert_eq!(commitment_weight(ChannelType::Anchors, 0), 1124);
    }
}
