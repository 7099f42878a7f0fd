//! BOLT 3 Appendix E: key derivation, from `tests/vectors/bolt03_appendix_e.json`.

#![allow(clippy::unwrap_used)]

mod common;

use beongae_script::keys::{
    derive_privkey, derive_pubkey, derive_revocation_privkey, derive_revocation_pubkey,
};
use bitcoin::secp256k1::{PublicKey, Secp256k1};
use common::{load, point, s, secret};

#[test]
fn appendix_e_key_derivation() {
    let secp = Secp256k1::new();
    let v = &load("bolt03_appendix_e.json")["values"];
    let base_secret = secret(s(v, "base_secret"));
    let per_commitment_secret = secret(s(v, "per_commitment_secret"));
    let base_point = point(s(v, "base_point"));
    let per_commitment_point = point(s(v, "per_commitment_point"));
    assert_eq!(PublicKey::from_secret_key(&secp, &base_secret), base_point);
    assert_eq!(
        PublicKey::from_secret_key(&secp, &per_commitment_secret),
        per_commitment_point
    );

    assert_eq!(
        derive_pubkey(&secp, &base_point, &per_commitment_point).unwrap(),
        point(s(v, "localpubkey"))
    );
    assert_eq!(
        derive_privkey(&secp, &base_secret, &per_commitment_point).unwrap(),
        secret(s(v, "localprivkey"))
    );
    assert_eq!(
        derive_revocation_pubkey(&secp, &base_point, &per_commitment_point).unwrap(),
        point(s(v, "revocationpubkey"))
    );
    let revocation_privkey =
        derive_revocation_privkey(&secp, &base_secret, &per_commitment_secret).unwrap();
    assert_eq!(revocation_privkey, secret(s(v, "revocationprivkey")));
    assert_eq!(
        PublicKey::from_secret_key(&secp, &revocation_privkey),
        point(s(v, "revocationpubkey"))
    );
}
