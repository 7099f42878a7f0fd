//! BOLT 5 §"Revoked Transaction Close Handling": when the peer publishes a
//! commitment it has revoked, we take every output of it — its `to_local`
//! and every HTLC with the revocation key, and our own `to_remote` — in
//! justice transactions (BOLT 3 witnesses from `beongae_script::sweep`).
//!
//! Pure: the caller gives the revoked commitment as seen on chain, the
//! per-commitment secret the peer revealed for it, the HTLCs that
//! commitment carried (stored when we signed it), and our basepoint
//! secrets.

use beongae_script::commitment::CommitmentNumber;
use beongae_script::keys::{derive_revocation_privkey, CommitmentKeys, KeyError};
use beongae_script::scripts::{
    offered_htlc_script, received_htlc_script, to_local_script, to_remote_anchors_script, HtlcKeys,
};
use beongae_script::sweep::{build_sweep, sign_sweep, SpendPath, SweepError, SweepInput};
use beongae_script::{ChannelType, FeeratePerKw};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction};

use crate::commitments::SpecHtlc;
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
    /// Building or signing the justice transaction failed.
    #[error(transparent)]
    Sweep(#[from] SweepError),
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

/// One output of a revoked commitment we take, with the key that signs it.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The output and how it is spent.
    pub input: SweepInput,
    /// The key that signs it.
    key: SecretKey,
}

impl Claim {
    /// Whether the cheater may also spend this output (its HTLC outputs,
    /// with a second-stage transaction): such claims race the cheater and
    /// are best kept apart from the rest.
    pub fn contested(&self) -> bool {
        matches!(self.input.path, SpendPath::RevokedHtlc { .. })
    }
}

/// The commitment number a commitment transaction of this channel carries
/// (BOLT 3 §"Commitment Transaction": the lower 24 bits in the locktime, the
/// upper 24 in the sequence, obscured), if it spends our funding output.
pub fn commitment_number(funded: &FundedChannel, tx: &Transaction) -> Option<u64> {
    let input = tx
        .input
        .iter()
        .find(|i| i.previous_output == funded.funding_outpoint)?;
    let lock = tx.lock_time.to_consensus_u32();
    let seq = input.sequence.0;
    if lock >> 24 != 0x20 || seq >> 24 != 0x80 {
        return None;
    }
    let obscured = (u64::from(seq & 0x00ff_ffff) << 24) | u64::from(lock & 0x00ff_ffff);
    Some(obscured ^ funded.obscuring_factor.get())
}

/// Every output of the peer's revoked commitment `tx` that is ours: its
/// `to_local` and HTLC outputs (revocation key), and our `to_remote`.
/// `htlcs` are the HTLCs of that commitment as the peer (its owner) sees
/// them; `secret` is the `per_commitment_secret` it revealed for `number`.
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
    let mut take = |script_pubkey: &ScriptBuf| -> Option<(OutPoint, Amount)> {
        let vout = tx
            .output
            .iter()
            .enumerate()
            .position(|(n, o)| !used[n] && o.script_pubkey == *script_pubkey)?;
        used[vout] = true;
        Some((
            OutPoint {
                txid,
                vout: vout as u32,
            },
            tx.output[vout].value,
        ))
    };
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
    for h in htlcs {
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
    let ours = funded.local_keys.payment_basepoint;
    let (script_pubkey, witness_script, path) = match funded.channel_type {
        ChannelType::Anchors => {
            let s = to_remote_anchors_script(&ours);
            (s.to_p2wsh(), Some(s), SpendPath::ToRemoteAnchors)
        }
        ChannelType::StaticRemoteKey => (
            ScriptBuf::new_p2wpkh(&bitcoin::CompressedPublicKey(ours).wpubkey_hash()),
            None,
            SpendPath::ToRemoteP2wpkh { pubkey: ours },
        ),
    };
    if let Some((outpoint, value)) = take(&script_pubkey) {
        claims.push(Claim {
            input: SweepInput {
                outpoint,
                value,
                witness_script,
                path,
            },
            key: secrets.payment_base,
        });
    }
    if claims.is_empty() {
        return Err(PenaltyError::NothingToTake);
    }
    Ok(claims)
}

/// A signed justice transaction taking `claims` to `destination` at
/// `feerate` (the outputs that must confirm before the cheater's
/// `to_self_delay` runs out).
pub fn justice_transaction<C: Signing>(
    secp: &Secp256k1<C>,
    claims: &[Claim],
    destination: ScriptBuf,
    feerate: FeeratePerKw,
) -> Result<Transaction, PenaltyError> {
    let inputs: Vec<SweepInput> = claims.iter().map(|c| c.input.clone()).collect();
    let dust = crate::close::dust_limit_for(&destination);
    let mut tx = build_sweep(&inputs, destination, feerate, dust)?;
    let keys: Vec<Option<SecretKey>> = claims.iter().map(|c| Some(c.key)).collect();
    sign_sweep(secp, &mut tx, &inputs, &keys)?;
    Ok(tx)
}
