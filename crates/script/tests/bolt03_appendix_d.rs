//! BOLT 3 Appendix D: per-commitment secret generation and storage,
//! from `tests/vectors/bolt03_appendix_d.json` (transcribed from `03-transactions.md`).

#![allow(clippy::unwrap_used)]

mod common;

use beongae_script::shachain::{generate_from_seed, SecretStore, ShachainError};
use common::{h32, load, s};

#[test]
fn appendix_d_generation() {
    let v = load("bolt03_appendix_d.json");
    let tests = v["generation"].as_array().unwrap();
    assert_eq!(tests.len(), 5);
    for t in tests {
        let index = t["I"].as_u64().unwrap();
        let got = generate_from_seed(&h32(s(t, "seed")), index).unwrap();
        assert_eq!(got, h32(s(t, "output")), "{}", s(t, "name"));
    }
}

#[test]
fn appendix_d_storage() {
    let v = load("bolt03_appendix_d.json");
    let tests = v["storage"].as_array().unwrap();
    assert_eq!(tests.len(), 9);
    let mut failures = 0;
    for t in tests {
        let name = s(t, "name");
        let mut store = SecretStore::new();
        for step in t["inserts"].as_array().unwrap() {
            let index = step["I"].as_u64().unwrap();
            let secret = h32(s(step, "secret"));
            let result = store.insert(index, secret);
            match s(step, "expected") {
                "ok" => {
                    assert_eq!(result, Ok(()), "{name}: insert {index}");
                    // Everything inserted so far stays derivable.
                    assert_eq!(store.get(index), Some(secret), "{name}: get {index}");
                }
                "error" => {
                    assert!(
                        matches!(result, Err(ShachainError::Inconsistent { index: i, .. }) if i == index),
                        "{name}: {result:?}"
                    );
                    failures += 1;
                    break;
                }
                other => panic!("unexpected expectation {other}"),
            }
        }
    }
    // One correct sequence and eight that each fail at a marked insert.
    assert_eq!(failures, 8);
}
