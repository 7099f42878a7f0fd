//! BOLT 2 §"Defined Channel Types": `option_static_remotekey` (bit 12) and
//! `option_anchors` with `option_static_remotekey` (bits 22 and 12), each
//! optionally with `option_scid_alias` (46) and `option_zeroconf` (50).

use beongae_script::ChannelType;
use beongae_wire::{Feature, Features};

/// A channel type we know, with its variations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelTypeSpec {
    /// The commitment format.
    pub base: ChannelType,
    /// `option_scid_alias`
    pub scid_alias: bool,
    /// `option_zeroconf`
    pub zeroconf: bool,
}

/// Why a `channel_type` is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelTypeError {
    /// Bits that do not form a defined type.
    #[error("channel_type {0} is not a defined channel type")]
    Undefined(String),
}

impl ChannelTypeSpec {
    /// Anchors, the type we propose by default.
    pub const ANCHORS: ChannelTypeSpec = ChannelTypeSpec {
        base: ChannelType::Anchors,
        scid_alias: false,
        zeroconf: false,
    };
    /// Static remote key.
    pub const STATIC_REMOTE_KEY: ChannelTypeSpec = ChannelTypeSpec {
        base: ChannelType::StaticRemoteKey,
        scid_alias: false,
        zeroconf: false,
    };

    /// The bits, using the smallest bitmap (BOLT 2: "MUST use the smallest
    /// bitmap possible to represent the channel type"), all even.
    pub fn to_features(self) -> Features {
        let mut f = Features::empty().with_required(Feature::StaticRemoteKey);
        if self.base == ChannelType::Anchors {
            f = f.with_required(Feature::Anchors);
        }
        if self.scid_alias {
            f = f.with_required(Feature::ScidAlias);
        }
        if self.zeroconf {
            f = f.with_required(Feature::ZeroConf);
        }
        f
    }

    /// Parses a received `channel_type`: exactly a defined type, even bits only.
    pub fn from_features(f: &Features) -> Result<Self, ChannelTypeError> {
        let undefined = || ChannelTypeError::Undefined(f.to_string());
        let allowed = [
            Feature::StaticRemoteKey,
            Feature::Anchors,
            Feature::ScidAlias,
            Feature::ZeroConf,
        ];
        for bit in f.bits() {
            let ok = bit % 2 == 0 && allowed.iter().any(|a| a.even_bit() == bit);
            if !ok {
                return Err(undefined());
            }
        }
        if !f.requires(Feature::StaticRemoteKey) {
            return Err(undefined());
        }
        let base = if f.requires(Feature::Anchors) {
            ChannelType::Anchors
        } else {
            ChannelType::StaticRemoteKey
        };
        Ok(ChannelTypeSpec {
            base,
            scid_alias: f.requires(Feature::ScidAlias),
            zeroconf: f.requires(Feature::ZeroConf),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defined_types_round_trip_and_others_are_refused() {
        for spec in [
            ChannelTypeSpec::ANCHORS,
            ChannelTypeSpec::STATIC_REMOTE_KEY,
            ChannelTypeSpec {
                scid_alias: true,
                zeroconf: true,
                ..ChannelTypeSpec::ANCHORS
            },
        ] {
            assert_eq!(
                ChannelTypeSpec::from_features(&spec.to_features()),
                Ok(spec)
            );
        }
        // Anchors is bits 22 and 12: 0x401000.
        assert_eq!(
            ChannelTypeSpec::ANCHORS.to_features().to_be_bytes(),
            vec![0x40, 0x10, 0x00]
        );
        let odd = Features::empty()
            .with_required(Feature::StaticRemoteKey)
            .with_optional(Feature::Anchors);
        assert!(ChannelTypeSpec::from_features(&odd).is_err());
        assert!(
            ChannelTypeSpec::from_features(&Features::empty().with_required(Feature::Anchors))
                .is_err()
        );
        assert!(ChannelTypeSpec::from_features(&Features::empty()).is_err());
        let mut unknown = ChannelTypeSpec::ANCHORS.to_features();
        unknown.set(40); // zero_fee_commitments: not supported here
        assert!(ChannelTypeSpec::from_features(&unknown).is_err());
    }
}
