//! Segwit v0 signatures over the transactions of this crate.

use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, Script, Transaction};

/// Why a signature could not be made or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The input index is not in the transaction.
    #[error("input {0} does not exist")]
    NoSuchInput(usize),
    /// The signature does not verify.
    #[error("signature does not verify")]
    Invalid,
}

/// The BIP 143 sighash of input `input` spending a P2WSH output with
/// `witness_script` holding `value`.
pub fn p2wsh_sighash(
    tx: &Transaction,
    input: usize,
    witness_script: &Script,
    value: Amount,
    sighash_type: EcdsaSighashType,
) -> Result<Message, SignError> {
    let hash = SighashCache::new(tx)
        .p2wsh_signature_hash(input, witness_script, value, sighash_type)
        .map_err(|_| SignError::NoSuchInput(input))?;
    Ok(Message::from(hash))
}

/// Signs input `input` (P2WSH) with `key` (RFC 6979, as the BOLT 3 vectors do).
pub fn sign_p2wsh<C: Signing>(
    secp: &Secp256k1<C>,
    tx: &Transaction,
    input: usize,
    witness_script: &Script,
    value: Amount,
    sighash_type: EcdsaSighashType,
    key: &SecretKey,
) -> Result<Signature, SignError> {
    let msg = p2wsh_sighash(tx, input, witness_script, value, sighash_type)?;
    Ok(Signature {
        signature: secp.sign_ecdsa(&msg, key),
        sighash_type,
    })
}

/// Checks a counterparty's signature on input `input` (P2WSH).
pub fn verify_p2wsh<C: Verification>(
    secp: &Secp256k1<C>,
    tx: &Transaction,
    input: usize,
    witness_script: &Script,
    value: Amount,
    sig: &Signature,
    key: &PublicKey,
) -> Result<(), SignError> {
    let msg = p2wsh_sighash(tx, input, witness_script, value, sig.sighash_type)?;
    secp.verify_ecdsa(&msg, &sig.signature, key)
        .map_err(|_| SignError::Invalid)
}
