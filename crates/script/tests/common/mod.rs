//! Shared helpers for the BOLT 3 vector tests.

#![allow(dead_code, clippy::unwrap_used)]

use bitcoin::secp256k1::{PublicKey, SecretKey};

/// Loads a JSON vector file from `tests/vectors/`.
pub fn load(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Hex (with or without `0x`) to bytes.
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim().trim_start_matches("0x")).unwrap()
}

/// Hex to a 32-byte array.
pub fn h32(s: &str) -> [u8; 32] {
    unhex(s).try_into().unwrap()
}

/// Hex to a secret key (a trailing `01` compressed-key marker is dropped).
pub fn secret(s: &str) -> SecretKey {
    let b = unhex(s);
    SecretKey::from_slice(&b[..32]).unwrap()
}

/// Hex to a public key.
pub fn point(s: &str) -> PublicKey {
    PublicKey::from_slice(&unhex(s)).unwrap()
}

/// A string field of a JSON object.
pub fn s<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing {key} in {v}"))
}
