//! 5-bit word ("field element") helpers: the bech32 checksum without the
//! BIP-0173 length limit, and the bit conversions BOLT 11 uses.

use bitcoin::bech32::primitives::checksum::Checksum;

/// BIP-0173 generator coefficients.
const GEN: [u32; 5] = [
    0x3b6a_57b2,
    0x2650_8e6d,
    0x1ea1_19fa,
    0x3d42_33dd,
    0x2a14_62b3,
];

/// The bech32 alphabet, indexed by word value.
const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Bech32 exactly as BIP-0173 defines it, but with no length limit.
///
/// BOLT 11 §"Encoding Overview": a reader "MUST parse the address as Bech32,
/// as specified in BIP-0173 (also without the character limit)".
pub(crate) enum Bolt11Bech32 {}

impl Checksum for Bolt11Bech32 {
    type MidstateRepr = u32;
    const CODE_LENGTH: usize = usize::MAX;
    const CHECKSUM_LENGTH: usize = 6;
    const GENERATOR_SH: [u32; 5] = GEN;
    const TARGET_RESIDUE: u32 = 1;
}

fn polymod(values: impl Iterator<Item = u8>) -> u32 {
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// Encodes `hrp` (lowercase ASCII) and `words` (each < 32) as a lowercase
/// bech32 string with its 6-word checksum (BIP-0173), with no length limit.
pub(crate) fn to_bech32(hrp: &str, words: &[u8]) -> String {
    let hrp = hrp.as_bytes();
    let expanded = hrp
        .iter()
        .map(|c| c >> 5)
        .chain(std::iter::once(0))
        .chain(hrp.iter().map(|c| c & 31));
    let pm = polymod(
        expanded
            .chain(words.iter().copied())
            .chain(std::iter::repeat_n(0, 6)),
    ) ^ 1;
    let mut out = String::with_capacity(hrp.len() + 1 + words.len() + 6);
    out.extend(hrp.iter().map(|&c| char::from(c)));
    out.push('1');
    let checksum = (0..6).map(|i| ((pm >> (5 * (5 - i))) & 31) as u8);
    for w in words.iter().copied().chain(checksum) {
        out.push(char::from(CHARSET[usize::from(w & 31)]));
    }
    out
}

/// Regroups `from`-bit values into `to`-bit values, most significant bit
/// first. Returns the full groups and the leftover `(value, bit count)`.
fn regroup(input: &[u8], from: u32, to: u32) -> (Vec<u8>, u32, u32) {
    let mut out = Vec::with_capacity((input.len() * from as usize).div_ceil(to as usize));
    let (mut acc, mut bits) = (0u32, 0u32);
    let (in_mask, out_mask) = ((1u32 << from) - 1, (1u32 << to) - 1);
    for &v in input {
        acc = (acc << from) | (u32::from(v) & in_mask);
        bits += from;
        while bits >= to {
            bits -= to;
            out.push(((acc >> bits) & out_mask) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    (out, acc, bits)
}

/// Regroups, then pads the leftover bits with zeros into one last value.
fn regroup_padded(input: &[u8], from: u32, to: u32) -> Vec<u8> {
    let (mut out, acc, bits) = regroup(input, from, to);
    if bits > 0 {
        out.push(((acc << (to - bits)) & ((1 << to) - 1)) as u8);
    }
    out
}

/// Bytes to 5-bit words, padding the last word with 0 bits (BOLT 11: "MUST
/// pad field data to a multiple of 5 bits, using 0s").
pub(crate) fn bytes_to_words(bytes: &[u8]) -> Vec<u8> {
    regroup_padded(bytes, 8, 5)
}

/// Words to bytes, appending 0 bits up to the next byte boundary: the form
/// the signature covers (BOLT 11 §"Data Part").
pub(crate) fn words_to_bytes_padded(words: &[u8]) -> Vec<u8> {
    regroup_padded(words, 5, 8)
}

/// Words to bytes, dropping the padding; `None` unless the padding is what a
/// writer must produce: fewer than 5 bits, all zero. This keeps every parsed
/// field in the one form we re-encode, so signatures stay valid.
pub(crate) fn words_to_bytes_strict(words: &[u8]) -> Option<Vec<u8>> {
    let (out, acc, bits) = regroup(words, 5, 8);
    (bits < 5 && acc == 0).then_some(out)
}

/// A big-endian base-32 number; `None` if it does not fit a `u64`.
pub(crate) fn words_to_u64(words: &[u8]) -> Option<u64> {
    words.iter().try_fold(0u64, |acc, &w| {
        acc.checked_mul(32)?.checked_add(u64::from(w & 31))
    })
}

/// The minimal big-endian base-32 form of `v` (no leading zero words; zero
/// is the empty sequence).
pub(crate) fn u64_to_words(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v > 0 {
        out.push((v & 31) as u8);
        v >>= 5;
    }
    out.reverse();
    out
}

/// `v` as exactly `n` words, big-endian (upper bits beyond `5 * n` dropped).
pub(crate) fn u64_to_fixed_words(v: u64, n: usize) -> Vec<u8> {
    (0..n)
        .rev()
        .map(|i| {
            let shift = 5 * i;
            if shift >= 64 {
                0
            } else {
                ((v >> shift) & 31) as u8
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_constants_are_consistent() {
        Bolt11Bech32::sanity_check();
    }

    #[test]
    fn conversions_round_trip() {
        let bytes = [0xff, 0x00, 0x12, 0x34, 0x56];
        let words = bytes_to_words(&bytes);
        assert_eq!(words.len(), 8);
        assert_eq!(words_to_bytes_strict(&words), Some(bytes.to_vec()));
        let odd = bytes_to_words(&[0xff; 32]);
        assert_eq!(odd.len(), 52);
        assert_eq!(words_to_bytes_strict(&odd), Some(vec![0xff; 32]));
        // Non-zero padding bits and over-long padding are refused.
        let mut bad = odd.clone();
        bad[51] |= 1;
        assert_eq!(words_to_bytes_strict(&bad), None);
        assert_eq!(words_to_bytes_strict(&[0]), None);
        assert_eq!(u64_to_words(60), vec![1, 28]);
        assert_eq!(words_to_u64(&[1, 28]), Some(60));
        assert_eq!(u64_to_words(0), Vec::<u8>::new());
        assert_eq!(words_to_u64(&[31; 13]), None);
        assert_eq!(words_to_u64(&u64_to_words(u64::MAX)), Some(u64::MAX));
        assert_eq!(u64_to_fixed_words(1_496_314_658, 7).len(), 7);
        assert_eq!(words_to_bytes_padded(&[31]), vec![0xf8]);
    }

    #[test]
    fn bech32_matches_bip173_vector() {
        // BIP-0173 valid test vector "a12uel5l".
        assert_eq!(to_bech32("a", &[]), "a12uel5l");
    }
}
