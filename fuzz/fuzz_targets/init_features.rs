//! Fuzzes the BOLT 9 feature vector as it arrives in `init`.
//!
//! The whole input is a big-endian feature vector (as in `init`'s `features`
//! field, which may be up to 65535 bytes long). Checked:
//! - `from_be_bytes(to_be_bytes(f)) == f`, and `to_be_bytes` is the input
//!   without its leading zero bytes;
//! - `bits()` / `is_set` agree with the input bytes;
//! - `check_dependencies` and `check_required_supported` agree with a simple
//!   reference model that numbers bits with `usize` (so it is right for every
//!   length the wire allows), against the features beongae-node advertises
//!   and against a second vector taken from the input itself;
//! - `check_context` and `Display` never panic.

#![no_main]

use beongae_wire::{Context, Feature, FeatureError, Features};
use libfuzzer_sys::fuzz_target;

/// The features beongae-node advertises, from its own source file (no
/// copy to fall behind).
#[path = "../../crates/node/src/core/features.rs"]
mod node_features;

fn ours() -> Features {
    node_features::default_features()
}

/// Set bits of a big-endian vector, ascending, as `usize`.
fn reference_bits(be: &[u8]) -> Vec<usize> {
    let mut bits = Vec::new();
    for (i, byte) in be.iter().rev().enumerate() {
        for j in 0..8 {
            if byte & (1 << j) != 0 {
                bits.push(i * 8 + j);
            }
        }
    }
    bits
}

fn reference_feature(bit: usize) -> Option<Feature> {
    u32::try_from(bit).ok().and_then(Feature::from_bit)
}

fn reference_offers(bits: &[usize], f: Feature) -> bool {
    let even = f.even_bit() as usize;
    bits.contains(&even) || bits.contains(&(even + 1))
}

fuzz_target!(|data: &[u8]| {
    let f = Features::from_be_bytes(data);
    let bits = reference_bits(data);

    // Round trip and minimal encoding.
    let be = f.to_be_bytes();
    let first_nonzero = data.iter().position(|b| *b != 0).unwrap_or(data.len());
    assert_eq!(
        be.as_slice(),
        &data[first_nonzero..],
        "to_be_bytes is not the minimal input"
    );
    assert_eq!(
        Features::from_be_bytes(&be),
        f,
        "from_be_bytes(to_be_bytes(f)) != f"
    );

    // Bit enumeration.
    let got_bits: Vec<usize> = f.bits().map(|b| b as usize).collect();
    assert_eq!(got_bits, bits, "bits() disagrees with the input");
    for &bit in bits.iter().take(64) {
        if let Ok(b) = u32::try_from(bit) {
            assert!(f.is_set(b), "bit {bit} set but is_set says no");
        }
    }

    // Dependencies.
    let expected_dep = Feature::ALL.into_iter().find_map(|feature| {
        if !reference_offers(&bits, feature) {
            return None;
        }
        feature
            .dependencies()
            .iter()
            .find(|d| !reference_offers(&bits, **d))
            .map(|&dependency| FeatureError::MissingDependency {
                feature,
                dependency,
            })
    });
    assert_eq!(
        f.check_dependencies().err(),
        expected_dep,
        "check_dependencies for {data:02x?}"
    );

    // Required bits against what the node supports, and against a second
    // vector from the input (the first half, so the two differ in length).
    let other = Features::from_be_bytes(&data[..data.len() / 2]);
    let other_bits = reference_bits(&data[..data.len() / 2]);
    for (ours, our_bits) in [
        (ours(), reference_bits(&ours().to_be_bytes())),
        (other, other_bits),
    ] {
        let first_unsupported =
            bits.iter()
                .copied()
                .filter(|b| b % 2 == 0)
                .find(|&b| match reference_feature(b) {
                    Some(feat) => !(feat.is_assumed() || reference_offers(&our_bits, feat)),
                    None => true,
                });
        let result = f.check_required_supported(&ours);
        match first_unsupported {
            None => assert_eq!(result, Ok(()), "accepted bits refused"),
            Some(bit) => {
                let name = reference_feature(bit).map_or("unknown", Feature::name);
                let expected_bit = u32::try_from(bit).expect("at most 65535 * 8 bits");
                assert_eq!(
                    result,
                    Err(FeatureError::UnsupportedRequired { bit: expected_bit, name }),
                    "unsupported required bit"
                );
            }
        }
    }

    for context in [
        Context::Init,
        Context::NodeAnnouncement,
        Context::ChannelAnnouncement,
        Context::Invoice,
        Context::BlindedPath,
    ] {
        let _ = f.check_context(context);
    }
    let _ = format!("{f} {f:?}");
});
