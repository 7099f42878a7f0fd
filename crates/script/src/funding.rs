//! BOLT 3 §"Funding Transaction Output" and spending it (commitment and
//! closing transactions carry `0 <signature_for_pubkey1> <signature_for_pubkey2>`).

use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{ScriptBuf, Witness};

use crate::scripts::funding_script;

/// The funding output's script pubkey (P2WSH of the 2-of-2).
pub fn funding_script_pubkey(a: &PublicKey, b: &PublicKey) -> ScriptBuf {
    funding_script(a, b).to_p2wsh()
}

/// The witness spending the funding output, with the signatures in the
/// order of their keys in the script (lesser key first).
pub fn funding_witness(
    key_a: &PublicKey,
    sig_a: &Signature,
    key_b: &PublicKey,
    sig_b: &Signature,
) -> Witness {
    let ((_, first), (_, second)) = if key_a.serialize() <= key_b.serialize() {
        ((key_a, sig_a), (key_b, sig_b))
    } else {
        ((key_b, sig_b), (key_a, sig_a))
    };
    let mut w = Witness::new();
    w.push([]);
    w.push(first.serialize());
    w.push(second.serialize());
    w.push(funding_script(key_a, key_b).as_bytes());
    w
}
