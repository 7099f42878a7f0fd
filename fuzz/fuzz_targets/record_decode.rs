//! Fuzzes the stored channel record (`beongae-channel`): what a node reads
//! back from its store after a restart, where a storage fault or an old
//! format may leave anything. Records of the current formats carry a
//! checksum, which arbitrary bytes rarely pass; the first format (version
//! 1) has none, so its decoder meets arbitrary bytes; and a real channel's
//! record with fuzz-chosen bytes changed, sealed again, reaches every
//! field of the current format.
//!
//! Properties checked:
//! - `NormalChannel::decode_state` never panics;
//! - a decoded record encodes to a record that decodes to a channel that
//!   encodes the same (nothing is lost or invented across a restart).

#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../crates/channel/tests/common/mod.rs"]
mod common;

use beongae_channel::normal::NormalChannel;
use beongae_channel::revocation::LocalSecrets;
use bitcoin::hashes::Hash as _;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = common::pair::setup();
    let keys = || (p.pa.signing(), LocalSecrets::new(p.pa.seed));
    check(data, &keys);
    // A real record with bytes changed: `data` is (position u16 BE, xor)
    // triples applied to the body of a fresh channel's record (its version
    // byte kept), sealed again with the format's checksum (the first 8
    // bytes of the body's SHA-256), as a bug writing the record would.
    let sealed = p.a.encode_state().expect("a channel encodes");
    let mut body = sealed[..sealed.len() - 8].to_vec();
    for w in data.chunks_exact(3) {
        let at = 1 + usize::from(u16::from_be_bytes([w[0], w[1]])) % (body.len() - 1);
        body[at] ^= w[2];
    }
    let sum = bitcoin::hashes::sha256::Hash::hash(&body).to_byte_array();
    body.extend_from_slice(&sum[..8]);
    check(&body, &keys);
});

fn check(
    bytes: &[u8],
    keys: &dyn Fn() -> (beongae_channel::sign::SigningKeys, LocalSecrets),
) {
    let (signing, secrets) = keys();
    let Ok(ch) = NormalChannel::decode_state(bytes, signing, secrets) else {
        return;
    };
    let Ok(encoded) = ch.encode_state() else {
        return;
    };
    let (signing, secrets) = keys();
    let back = NormalChannel::decode_state(&encoded, signing, secrets)
        .expect("a record we encoded decodes");
    assert_eq!(back.encode_state().expect("encodes"), encoded, "a restart changed the channel");
}
