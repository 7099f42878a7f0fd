//! BOLT 5 §"Revoked Transaction Close Handling": when the peer publishes a
//! commitment it has revoked, we take every output of it — its `to_local`
//! and every HTLC with the revocation key, and our own `to_remote` — in
//! justice transactions (BOLT 3 witnesses from `beongae_script::sweep`).
//!
//! Pure: the caller gives the revoked commitment as seen on chain, the
//! per-commitment secret the peer revealed for it, the HTLCs that
//! commitment may have carried (each stored once, when we first signed a
//! commitment with it), and our basepoint secrets.

use beongae_script::commitment::CommitmentNumber;
use beongae_script::keys::{derive_revocation_privkey, CommitmentKeys, KeyError};
use beongae_script::scripts::{
    offered_htlc_script, received_htlc_script, to_local_script, HtlcKeys,
};
use beongae_script::sweep::{SpendPath, SweepInput};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::{ScriptBuf, Transaction};

use crate::commitments::SpecHtlc;
pub use crate::onchain::{claim_transaction as justice_transaction, commitment_number, Claim};
use crate::onchain::{take_output, to_remote_claim};
use crate::sign::FundedChannel;

/// Why a penalty could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PenaltyError {
    /// The secret is not a valid private key.
    #[error("the per-commitment secret is not a valid key")]
    BadSecret,
    /// A key could not be derived.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The transaction does not spend this channel's funding output.
    #[error("the transaction does not spend the funding output")]
    NotOurFunding,
    /// Its obscured commitment number is not the revoked one we were given.
    #[error("the transaction is commitment {got}, not the revoked {expected}")]
    WrongNumber {
        /// Read from its locktime and sequence.
        got: u64,
        /// Given.
        expected: u64,
    },
    /// Nothing in it is ours to take.
    #[error("no output of the revoked commitment is ours to take")]
    NothingToTake,
}

/// Our basepoint secrets a penalty signs with.
#[derive(Clone, Copy)]
pub struct PenaltySecrets {
    /// Our `revocation_basepoint` secret.
    pub revocation_base: SecretKey,
    /// Our `payment_basepoint` secret (`to_remote` is paid to it).
    pub payment_base: SecretKey,
}

impl std::fmt::Debug for PenaltySecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PenaltySecrets(..)")
    }
}

/// Every output of the peer's revoked commitment `tx` that is ours: its
/// `to_local` and HTLC outputs (revocation key), and our `to_remote`.
/// `htlcs` are HTLCs as the peer (the commitment's owner) sees them: at
/// least every HTLC of that commitment, and any others (HTLCs of earlier or
/// later commitments), which match no output and are skipped; `secret` is
/// the `per_commitment_secret` it revealed for `number`.
pub fn revoked_claims<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    funded: &FundedChannel,
    tx: &Transaction,
    number: CommitmentNumber,
    secret: [u8; 32],
    htlcs: &[SpecHtlc],
    secrets: &PenaltySecrets,
) -> Result<Vec<Claim>, PenaltyError> {
    if !tx
        .input
        .iter()
        .any(|i| i.previous_output == funded.funding_outpoint)
    {
        return Err(PenaltyError::NotOurFunding);
    }
    match commitment_number(funded, tx) {
        Some(n) if n == number.get() => {}
        got => {
            return Err(PenaltyError::WrongNumber {
                got: got.unwrap_or(u64::MAX),
                expected: number.get(),
            })
        }
    }
    let per_commitment_secret =
        SecretKey::from_slice(&secret).map_err(|_| PenaltyError::BadSecret)?;
    let point = PublicKey::from_secret_key(secp, &per_commitment_secret);
    // The peer owns this commitment: its keys, our revocation basepoint.
    let keys = CommitmentKeys::derive(secp, &funded.remote_keys, &funded.local_keys, &point)?;
    let revocation_key =
        derive_revocation_privkey(secp, &secrets.revocation_base, &per_commitment_secret)?;
    let txid = tx.compute_txid();
    let mut used = vec![false; tx.output.len()];
    let mut take = |script_pubkey: &ScriptBuf| take_output(tx, txid, &mut used, script_pubkey);
    let mut claims = Vec::new();
    // BOLT 5: "MUST resolve the _remote node's main output_ ... by spending it
    // using the revocation private key".
    let to_local = to_local_script(
        &keys.revocation_key,
        funded.remote_to_self_delay,
        &keys.local_delayed_key,
    );
    if let Some((outpoint, value)) = take(&to_local.to_p2wsh()) {
        claims.push(Claim {
            input: SweepInput {
                outpoint,
                value,
                witness_script: Some(to_local),
                path: SpendPath::RevokedDelayed,
            },
            key: revocation_key,
        });
    }
    // "MUST resolve the _remote node's offered HTLCs_ / _local node's offered
    // HTLCs_ ... using the revocation private key" (trimmed ones have no
    // output and are skipped).
    let htlc_keys = HtlcKeys {
        revocation_key: &keys.revocation_key,
        local_htlc_key: &keys.local_htlc_key,
        remote_htlc_key: &keys.remote_htlc_key,
    };
    // An HTLC output pays `amount_msat / 1000` rounded down (BOLT 3):
    // candidates whose value no output has need no script.
    let values: std::collections::HashSet<u64> =
        tx.output.iter().map(|o| o.value.to_sat()).collect();
    for h in htlcs
        .iter()
        .filter(|h| values.contains(&(h.amount.to_msat() / 1000)))
    {
        let script = if h.offered {
            offered_htlc_script(htlc_keys, &h.payment_hash, funded.channel_type)
        } else {
            received_htlc_script(
                htlc_keys,
                &h.payment_hash,
                h.cltv_expiry,
                funded.channel_type,
            )
        };
        if let Some((outpoint, value)) = take(&script.to_p2wsh()) {
            claims.push(Claim {
                input: SweepInput {
                    outpoint,
                    value,
                    witness_script: Some(script),
                    path: SpendPath::RevokedHtlc {
                        revocation_key: keys.revocation_key,
                    },
                },
                key: revocation_key,
            });
        }
    }
    // "MUST resolve the _local node's main output_" (our to_remote; BOLT 5
    // lets it go to the wallet as is, we sweep it with the rest).
    claims.extend(to_remote_claim(funded, tx, &mut used, secrets.payment_base));
    if claims.is_empty() {
        return Err(PenaltyError::NothingToTake);
    }
    Ok(claims)
}

/// BOLT 5 §"Revoked Transaction Close Handling": the cheater spent HTLC
/// outputs of its revoked commitment with its own HTLC-timeout or
/// HTLC-success transaction `htlc_tx` first; each such output has the
/// `to_local` script of that commitment ("MUST resolve ... by spending it
/// using the revocation private key"), and we take it before the cheater's
/// `to_self_delay` runs out. With anchors one transaction of the cheater's
/// may carry several HTLC transactions (`SIGHASH_SINGLE|ANYONECANPAY`
/// lets it join them): every output with that script is claimed.
pub fn second_stage_claims<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    funded: &FundedChannel,
    htlc_tx: &Transaction,
    secret: [u8; 32],
    secrets: &PenaltySecrets,
) -> Result<Vec<Claim>, PenaltyError> {
    let per_commitment_secret =
        SecretKey::from_slice(&secret).map_err(|_| PenaltyError::BadSecret)?;
    let point = PublicKey::from_secret_key(secp, &per_commitment_secret);
    let keys = CommitmentKeys::derive(secp, &funded.remote_keys, &funded.local_keys, &point)?;
    let script = to_local_script(
        &keys.revocation_key,
        funded.remote_to_self_delay,
        &keys.local_delayed_key,
    );
    let key = derive_revocation_privkey(secp, &secrets.revocation_base, &per_commitment_secret)?;
    let txid = htlc_tx.compute_txid();
    let script_pubkey = script.to_p2wsh();
    let mut used = vec![false; htlc_tx.output.len()];
    let mut claims = Vec::new();
    while let Some((outpoint, value)) = take_output(htlc_tx, txid, &mut used, &script_pubkey) {
        claims.push(Claim {
            input: SweepInput {
                outpoint,
                value,
                witness_script: Some(script.clone()),
                path: SpendPath::RevokedDelayed,
            },
            key,
        });
    }
    Ok(claims)
}

/// The claims a justice transaction of ours makes on the peer's revoked
/// commitment or on the cheater's HTLC transactions spending it (`parents`:
/// each input's transaction), read back from its inputs' witnesses (each
/// input's script and spending path) so that it can be signed again at
/// another feerate (a fee bump) without the HTLC list it was made from:
/// `to_local`, HTLC outputs and second-stage outputs with the revocation
/// key for `secret`, our `to_remote` with our payment key. `None` if an
/// input spends something not in `parents` or does not read as one of
/// ours.
pub fn justice_claims_of<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    funded: &FundedChannel,
    parents: &[&Transaction],
    justice: &Transaction,
    secret: [u8; 32],
    secrets: &PenaltySecrets,
) -> Option<Vec<Claim>> {
    let per_commitment_secret = SecretKey::from_slice(&secret).ok()?;
    let revocation_key =
        derive_revocation_privkey(secp, &secrets.revocation_base, &per_commitment_secret).ok()?;
    let parents: Vec<(bitcoin::Txid, &Transaction)> =
        parents.iter().map(|t| (t.compute_txid(), *t)).collect();
    let ours = funded.local_keys.payment_basepoint;
    justice
        .input
        .iter()
        .map(|input| {
            let (_, parent) = parents
                .iter()
                .find(|(txid, _)| *txid == input.previous_output.txid)?;
            let value = parent
                .output
                .get(input.previous_output.vout as usize)?
                .value;
            let items: Vec<&[u8]> = input.witness.iter().collect();
            let (path, script, key) = match items.as_slice() {
                [_, [1], script] => (
                    SpendPath::RevokedDelayed,
                    Some(ScriptBuf::from_bytes(script.to_vec())),
                    revocation_key,
                ),
                [_, pubkey, script] if pubkey.len() == 33 => (
                    SpendPath::RevokedHtlc {
                        revocation_key: PublicKey::from_slice(pubkey).ok()?,
                    },
                    Some(ScriptBuf::from_bytes(script.to_vec())),
                    revocation_key,
                ),
                [_, pubkey] if *pubkey == ours.serialize().as_slice() => (
                    SpendPath::ToRemoteP2wpkh { pubkey: ours },
                    None,
                    secrets.payment_base,
                ),
                [_, script] => (
                    SpendPath::ToRemoteAnchors,
                    Some(ScriptBuf::from_bytes(script.to_vec())),
                    secrets.payment_base,
                ),
                _ => return None,
            };
            Some(Claim {
                input: SweepInput {
                    outpoint: input.previous_output,
                    value,
                    witness_script: script,
                    path,
                },
                key,
            })
        })
        .collect()
}
