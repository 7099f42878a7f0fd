//! The features this node advertises in `init` (BOLT 9). A file of its
//! own, with no dependency beyond beongae-wire, so that the fuzz targets
//! (`fuzz/fuzz_targets/init_features.rs`) check against this very list.

use beongae_wire::{Feature, Features};

/// The features we advertise: the optional bits of the features BOLT 9 marks
/// ASSUMED, plus `payment_secret` and `option_channel_type`, which deployed
/// nodes (LDK's `ChannelManager` among them) require before they will open
/// channels, `option_anchors` (zero-fee HTLC transactions), the channel
/// type we prefer, `option_scid_alias` (we send an alias in every
/// `channel_ready`), and `option_simple_close` with the
/// `option_shutdown_anysegwit` it depends on. `gossip_queries` also tells peers not to push the
/// whole gossip stream at us unasked. See docs/adr/0002-advertised-features.md.
pub fn default_features() -> Features {
    Features::empty()
        .with_optional(Feature::DataLossProtect)
        .with_optional(Feature::GossipQueries)
        .with_optional(Feature::VarOnionOptin)
        .with_optional(Feature::StaticRemoteKey)
        .with_optional(Feature::PaymentSecret)
        .with_optional(Feature::Anchors)
        .with_optional(Feature::ShutdownAnySegwit)
        .with_optional(Feature::ChannelType)
        .with_optional(Feature::ScidAlias)
        .with_optional(Feature::SimpleClose)
}
