//! BOLT 9 feature bits: the bit vector and the table of assigned features.

use std::fmt;

/// Where a feature bit vector is presented (BOLT 9 §"Context" column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// `I`: the `init` message.
    Init,
    /// `N`: `node_announcement`.
    NodeAnnouncement,
    /// `C`: `channel_announcement`.
    ChannelAnnouncement,
    /// `9`: BOLT 11 invoices.
    Invoice,
    /// `B`: a blinded path's `allowed_features`.
    BlindedPath,
}

/// A feature assigned in the BOLT 9 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Feature {
    /// 0/1 `option_data_loss_protect` (ASSUMED).
    DataLossProtect,
    /// 4/5 `option_upfront_shutdown_script`.
    UpfrontShutdownScript,
    /// 6/7 `gossip_queries` (ASSUMED).
    GossipQueries,
    /// 8/9 `var_onion_optin` (ASSUMED).
    VarOnionOptin,
    /// 10/11 `gossip_queries_ex`.
    GossipQueriesEx,
    /// 12/13 `option_static_remotekey` (ASSUMED).
    StaticRemoteKey,
    /// 14/15 `payment_secret`.
    PaymentSecret,
    /// 16/17 `basic_mpp` (depends on `payment_secret`).
    BasicMpp,
    /// 18/19 `option_support_large_channel`.
    SupportLargeChannel,
    /// 22/23 `option_anchors`.
    Anchors,
    /// 24/25 `option_route_blinding`.
    RouteBlinding,
    /// 26/27 `option_shutdown_anysegwit`.
    ShutdownAnySegwit,
    /// 44/45 `option_channel_type`.
    ChannelType,
    /// 46/47 `option_scid_alias`.
    ScidAlias,
    /// 48/49 `option_payment_metadata`.
    PaymentMetadata,
    /// 50/51 `option_zeroconf` (depends on `option_scid_alias`).
    ZeroConf,
    /// 60/61 `option_simple_close` (depends on `option_shutdown_anysegwit`).
    SimpleClose,
}

use Context::{Init as I, Invoice as V, NodeAnnouncement as N};

impl Feature {
    /// Every assigned feature, in bit order.
    pub const ALL: [Feature; 17] = [
        Feature::DataLossProtect,
        Feature::UpfrontShutdownScript,
        Feature::GossipQueries,
        Feature::VarOnionOptin,
        Feature::GossipQueriesEx,
        Feature::StaticRemoteKey,
        Feature::PaymentSecret,
        Feature::BasicMpp,
        Feature::SupportLargeChannel,
        Feature::Anchors,
        Feature::RouteBlinding,
        Feature::ShutdownAnySegwit,
        Feature::ChannelType,
        Feature::ScidAlias,
        Feature::PaymentMetadata,
        Feature::ZeroConf,
        Feature::SimpleClose,
    ];

    /// The even (compulsory) bit; the odd (optional) bit is one above it.
    pub fn even_bit(self) -> u32 {
        match self {
            Feature::DataLossProtect => 0,
            Feature::UpfrontShutdownScript => 4,
            Feature::GossipQueries => 6,
            Feature::VarOnionOptin => 8,
            Feature::GossipQueriesEx => 10,
            Feature::StaticRemoteKey => 12,
            Feature::PaymentSecret => 14,
            Feature::BasicMpp => 16,
            Feature::SupportLargeChannel => 18,
            Feature::Anchors => 22,
            Feature::RouteBlinding => 24,
            Feature::ShutdownAnySegwit => 26,
            Feature::ChannelType => 44,
            Feature::ScidAlias => 46,
            Feature::PaymentMetadata => 48,
            Feature::ZeroConf => 50,
            Feature::SimpleClose => 60,
        }
    }

    /// The optional bit.
    pub fn odd_bit(self) -> u32 {
        self.even_bit() + 1
    }

    /// The name the BOLTs use.
    pub fn name(self) -> &'static str {
        match self {
            Feature::DataLossProtect => "option_data_loss_protect",
            Feature::UpfrontShutdownScript => "option_upfront_shutdown_script",
            Feature::GossipQueries => "gossip_queries",
            Feature::VarOnionOptin => "var_onion_optin",
            Feature::GossipQueriesEx => "gossip_queries_ex",
            Feature::StaticRemoteKey => "option_static_remotekey",
            Feature::PaymentSecret => "payment_secret",
            Feature::BasicMpp => "basic_mpp",
            Feature::SupportLargeChannel => "option_support_large_channel",
            Feature::Anchors => "option_anchors",
            Feature::RouteBlinding => "option_route_blinding",
            Feature::ShutdownAnySegwit => "option_shutdown_anysegwit",
            Feature::ChannelType => "option_channel_type",
            Feature::ScidAlias => "option_scid_alias",
            Feature::PaymentMetadata => "option_payment_metadata",
            Feature::ZeroConf => "option_zeroconf",
            Feature::SimpleClose => "option_simple_close",
        }
    }

    /// Features the BOLT 9 table marks ASSUMED: every node is taken to support
    /// them, whether or not it sets the bits.
    pub fn is_assumed(self) -> bool {
        matches!(
            self,
            Feature::DataLossProtect
                | Feature::GossipQueries
                | Feature::VarOnionOptin
                | Feature::StaticRemoteKey
        )
    }

    /// The contexts the BOLT 9 table allows. ASSUMED features have an empty
    /// context column today; deployed nodes still set them in `init` (and
    /// LDK insists on `option_data_loss_protect`), so `init` allows them.
    pub fn contexts(self) -> &'static [Context] {
        match self {
            Feature::DataLossProtect
            | Feature::GossipQueries
            | Feature::VarOnionOptin
            | Feature::StaticRemoteKey => &[I],
            Feature::UpfrontShutdownScript
            | Feature::GossipQueriesEx
            | Feature::SupportLargeChannel
            | Feature::Anchors
            | Feature::ShutdownAnySegwit
            | Feature::ChannelType
            | Feature::ScidAlias
            | Feature::ZeroConf
            | Feature::SimpleClose => &[I, N],
            Feature::PaymentSecret | Feature::BasicMpp | Feature::RouteBlinding => &[I, N, V],
            Feature::PaymentMetadata => &[V],
        }
    }

    /// Direct dependencies (BOLT 9 "Dependencies" column).
    pub fn dependencies(self) -> &'static [Feature] {
        match self {
            Feature::BasicMpp => &[Feature::PaymentSecret],
            Feature::ZeroConf => &[Feature::ScidAlias],
            Feature::SimpleClose => &[Feature::ShutdownAnySegwit],
            _ => &[],
        }
    }

    /// The feature owning `bit`, if assigned.
    pub fn from_bit(bit: u32) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.even_bit() == bit & !1)
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A feature bit vector: bit 0 is the least significant bit of the last byte
/// (BOLT 1 §"The `init` Message", BOLT 9).
///
/// Stored little-endian by byte internally, so equality ignores leading zero
/// bytes on the wire.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Features {
    /// `le[i]` holds bits `8*i .. 8*i+8`; no trailing zero bytes.
    le: Vec<u8>,
}

/// A feature bit vector that breaks a BOLT 9 rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
    /// An even (compulsory) bit we do not support is set (BOLT 1: "upon
    /// receiving unknown even feature bits that are non-zero: MUST close the
    /// connection").
    #[error("peer requires feature bit {bit} ({name}) which we do not support")]
    UnsupportedRequired {
        /// The bit.
        bit: u32,
        /// The feature's name, or "unknown".
        name: &'static str,
    },
    /// A feature is set without one it depends on (BOLT 1: "if the feature
    /// vector does not set all known, transitive dependencies: MUST close the
    /// connection").
    #[error("feature {feature} is set without its dependency {dependency}")]
    MissingDependency {
        /// The feature that is set.
        feature: Feature,
        /// What it needs.
        dependency: Feature,
    },
    /// A known feature is set in a context BOLT 9 does not list for it.
    #[error("feature {feature} is not allowed in {context:?}")]
    WrongContext {
        /// The feature.
        feature: Feature,
        /// The context.
        context: Context,
    },
}

impl Features {
    /// No bits set.
    pub fn empty() -> Self {
        Features::default()
    }

    /// From the wire's big-endian bytes.
    pub fn from_be_bytes(be: &[u8]) -> Self {
        let mut le: Vec<u8> = be.iter().rev().copied().collect();
        while le.last() == Some(&0) {
            le.pop();
        }
        Features { le }
    }

    /// Minimal big-endian bytes for the wire (BOLT 1: "SHOULD use the minimum
    /// length required to represent the `features` field").
    pub fn to_be_bytes(&self) -> Vec<u8> {
        self.le.iter().rev().copied().collect()
    }

    /// Whether `bit` is set.
    pub fn is_set(&self, bit: u32) -> bool {
        let (byte, mask) = ((bit / 8) as usize, 1u8 << (bit % 8));
        self.le.get(byte).is_some_and(|b| b & mask != 0)
    }

    /// Sets `bit`.
    pub fn set(&mut self, bit: u32) {
        let (byte, mask) = ((bit / 8) as usize, 1u8 << (bit % 8));
        if self.le.len() <= byte {
            self.le.resize(byte + 1, 0);
        }
        self.le[byte] |= mask;
    }

    /// Clears `bit`.
    pub fn clear(&mut self, bit: u32) {
        let (byte, mask) = ((bit / 8) as usize, 1u8 << (bit % 8));
        if let Some(b) = self.le.get_mut(byte) {
            *b &= !mask;
        }
        while self.le.last() == Some(&0) {
            self.le.pop();
        }
    }

    /// Every feature this crate knows, as optional: what a peer may
    /// require of us without being unknown (BOLT 9 "it's OK to be odd").
    pub fn known() -> Self {
        Feature::ALL
            .iter()
            .fold(Features::empty(), |f, x| f.with_optional(*x))
    }

    /// Sets a feature's optional bit (builder style).
    pub fn with_optional(mut self, f: Feature) -> Self {
        self.set(f.odd_bit());
        self
    }

    /// Sets a feature's compulsory bit (builder style).
    pub fn with_required(mut self, f: Feature) -> Self {
        self.set(f.even_bit());
        self
    }

    /// Whether the feature is offered (either bit set).
    pub fn offers(&self, f: Feature) -> bool {
        self.is_set(f.even_bit()) || self.is_set(f.odd_bit())
    }

    /// Whether the feature is required (even bit set).
    pub fn requires(&self, f: Feature) -> bool {
        self.is_set(f.even_bit())
    }

    /// Bitwise OR: BOLT 1 says `globalfeatures` and `features` combine this way.
    pub fn union(&self, other: &Features) -> Features {
        let mut le = self.le.clone();
        if le.len() < other.le.len() {
            le.resize(other.le.len(), 0);
        }
        for (a, b) in le.iter_mut().zip(&other.le) {
            *a |= b;
        }
        Features { le }
    }

    /// The set bits, ascending.
    pub fn bits(&self) -> impl Iterator<Item = u32> + '_ {
        self.le.iter().enumerate().flat_map(|(i, byte)| {
            (0..8usize)
                .filter(move |j| byte & (1 << j) != 0)
                .map(move |j| (i * 8 + j) as u32)
        })
    }

    /// Checks a remote peer's vector against ours (BOLT 1 §"The `init`
    /// Message", receiving node): every even bit must be a feature we support
    /// (offer ourselves) or one the spec ASSUMED; odd unknown bits are ignored.
    pub fn check_required_supported(&self, ours: &Features) -> Result<(), FeatureError> {
        for bit in self.bits().filter(|b| b % 2 == 0) {
            let feature = Feature::from_bit(bit);
            let supported = match feature {
                Some(f) => f.is_assumed() || ours.offers(f),
                None => false,
            };
            if !supported {
                let name = feature.map_or("unknown", Feature::name);
                return Err(FeatureError::UnsupportedRequired { bit, name });
            }
        }
        Ok(())
    }

    /// Checks that every set feature has its dependencies set, transitively
    /// (BOLT 1 §"The `init` Message", receiving node: "if the feature vector
    /// does not set all known, transitive dependencies: MUST close the
    /// connection"; BOLT 9 puts the same duty on the sender).
    pub fn check_dependencies(&self) -> Result<(), FeatureError> {
        for feature in Feature::ALL.into_iter().filter(|f| self.offers(*f)) {
            for &dependency in feature.dependencies() {
                if !self.offers(dependency) {
                    return Err(FeatureError::MissingDependency {
                        feature,
                        dependency,
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks that no known feature is set outside the contexts BOLT 9 lists
    /// for it ("MUST NOT set feature bits in fields not specified by the table").
    pub fn check_context(&self, context: Context) -> Result<(), FeatureError> {
        for feature in Feature::ALL.into_iter().filter(|f| self.offers(*f)) {
            if !feature.contexts().contains(&context) {
                return Err(FeatureError::WrongContext { feature, context });
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Features({self})")
    }
}

impl fmt::Display for Features {
    /// Lists set bits with their names, e.g. `1:option_data_loss_protect?,14:payment_secret!`
    /// (`!` compulsory, `?` optional).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A peer controls this vector (up to 524280 bits): print a bounded prefix.
        const SHOWN: usize = 48;
        for (i, bit) in self.bits().enumerate() {
            if i == SHOWN {
                let rest = self.bits().count() - SHOWN;
                return write!(f, ",…(+{rest} more)");
            }
            if i > 0 {
                f.write_str(",")?;
            }
            let kind = if bit % 2 == 0 { '!' } else { '?' };
            match Feature::from_bit(bit) {
                Some(feat) => write!(f, "{bit}:{feat}{kind}")?,
                None => write!(f, "{bit}:unknown{kind}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_bytes_are_big_endian_and_minimal() {
        let f = Features::empty()
            .with_optional(Feature::DataLossProtect)
            .with_required(Feature::PaymentSecret);
        // bit 1 and bit 14: 0x4002
        assert_eq!(f.to_be_bytes(), vec![0x40, 0x02]);
        assert_eq!(Features::from_be_bytes(&[0, 0, 0x40, 0x02]), f);
        assert!(f.is_set(1) && f.is_set(14) && !f.is_set(0));
        assert_eq!(f.bits().collect::<Vec<_>>(), vec![1, 14]);
        let mut g = f.clone();
        g.clear(14);
        g.clear(1);
        assert_eq!(g.to_be_bytes(), Vec::<u8>::new());
    }

    #[test]
    fn unknown_even_bit_is_refused_and_odd_ignored() {
        let ours = Features::empty().with_optional(Feature::PaymentSecret);
        let mut theirs = Features::empty();
        theirs.set(101);
        assert_eq!(theirs.check_required_supported(&ours), Ok(()));
        theirs.set(100);
        assert_eq!(
            theirs.check_required_supported(&ours),
            Err(FeatureError::UnsupportedRequired {
                bit: 100,
                name: "unknown"
            })
        );
        // Known but unsupported compulsory feature.
        let theirs = Features::empty().with_required(Feature::Anchors);
        assert_eq!(
            theirs.check_required_supported(&ours),
            Err(FeatureError::UnsupportedRequired {
                bit: 22,
                name: "option_anchors"
            })
        );
        // Required and supported, and ASSUMED ones.
        let theirs = Features::empty()
            .with_required(Feature::PaymentSecret)
            .with_required(Feature::StaticRemoteKey);
        assert_eq!(theirs.check_required_supported(&ours), Ok(()));
    }

    #[test]
    fn dependencies_are_checked() {
        let f = Features::empty().with_optional(Feature::BasicMpp);
        assert_eq!(
            f.check_dependencies(),
            Err(FeatureError::MissingDependency {
                feature: Feature::BasicMpp,
                dependency: Feature::PaymentSecret
            })
        );
        assert_eq!(
            f.with_required(Feature::PaymentSecret).check_dependencies(),
            Ok(())
        );
        let z = Features::empty().with_optional(Feature::ZeroConf);
        assert!(z.check_dependencies().is_err());
    }

    #[test]
    fn contexts_follow_the_table() {
        let f = Features::empty().with_optional(Feature::PaymentMetadata);
        assert_eq!(
            f.check_context(Context::Init),
            Err(FeatureError::WrongContext {
                feature: Feature::PaymentMetadata,
                context: Context::Init
            })
        );
        assert_eq!(f.check_context(Context::Invoice), Ok(()));
        assert_eq!(Feature::from_bit(23), Some(Feature::Anchors));
        assert_eq!(Feature::from_bit(20), None);
    }

    /// A feature vector can be up to 65535 bytes (`init`'s u16 length), so
    /// bit numbers go past u16: bit 65536 must not wrap to bit 0.
    #[test]
    fn bits_beyond_u16_do_not_wrap() {
        let mut be = vec![0u8; 8193];
        be[0] = 1; // bit 65536
        let f = Features::from_be_bytes(&be);
        assert_eq!(f.bits().collect::<Vec<_>>(), vec![65536]);
        assert!(!f.is_set(0));
        let ours = Features::empty().with_optional(Feature::DataLossProtect);
        assert_eq!(
            f.check_required_supported(&ours),
            Err(FeatureError::UnsupportedRequired {
                bit: 65536,
                name: "unknown"
            })
        );
        let mut top = vec![0u8; 65535];
        top[0] = 0x80;
        assert_eq!(
            Features::from_be_bytes(&top).bits().last(),
            Some(65535 * 8 - 1)
        );
    }

    #[test]
    fn display_is_bounded() {
        let f = Features::from_be_bytes(&[0xff; 1000]);
        let shown = f.to_string();
        assert!(
            shown.ends_with(",…(+7952 more)"),
            "{}",
            &shown[shown.len() - 40..]
        );
        assert!(shown.len() < 2000);
        let small = Features::empty()
            .with_optional(Feature::DataLossProtect)
            .with_required(Feature::PaymentSecret);
        assert_eq!(
            small.to_string(),
            "1:option_data_loss_protect?,14:payment_secret!"
        );
    }

    #[test]
    fn union_combines_global_and_local() {
        let a = Features::from_be_bytes(&[0x02]);
        let b = Features::from_be_bytes(&[0x80, 0x00]);
        assert_eq!(a.union(&b).to_be_bytes(), vec![0x80, 0x02]);
        assert_eq!(b.union(&a), a.union(&b));
    }
}
