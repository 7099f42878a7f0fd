//! Spending the outputs of commitment and HTLC transactions (BOLT 3 witness
//! layouts; BOLT 5 uses them on chain): delayed `to_local`, penalties with the
//! revocation key, HTLC outputs by preimage or timeout, `to_remote`, anchors.
//! One sweep transaction may spend many outputs at once (a penalty sweeping
//! every revoked output).

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Weight, Witness};

use beongae_wire::Preimage;

use crate::fees::FeeratePerKw;

/// How an output is spent; each variant fixes the witness layout and the
/// input's `nSequence` (and, for timeouts, the transaction's `nLockTime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpendPath {
    /// `to_local`, or a second-stage HTLC output, by its owner after
    /// `to_self_delay`: `<local_delayedsig> <>`, `nSequence = to_self_delay`.
    Delayed {
        /// `to_self_delay` in the script.
        to_self_delay: u16,
    },
    /// `to_local` or a second-stage HTLC output of a revoked commitment:
    /// `<revocation_sig> 1`.
    RevokedDelayed,
    /// Any HTLC output of a revoked commitment:
    /// `<revocation_sig> <revocationpubkey>`.
    RevokedHtlc {
        /// The `revocationpubkey`.
        revocation_key: PublicKey,
    },
    /// An HTLC the other side offered us, on its commitment, claimed with the
    /// preimage: `<remotehtlcsig> <payment_preimage>` (sequence 1 with anchors).
    OfferedHtlcPreimage {
        /// The preimage.
        preimage: Preimage,
        /// Anchor channel (script requires `1 OP_CSV`).
        anchors: bool,
    },
    /// An HTLC we offered, on the other side's commitment (a received HTLC in
    /// its script), reclaimed after `cltv_expiry`: `<remotehtlcsig> <>`.
    ReceivedHtlcTimeout {
        /// The HTLC's `cltv_expiry` (becomes the transaction's locktime).
        cltv_expiry: u32,
        /// Anchor channel.
        anchors: bool,
    },
    /// Our `to_remote` on an anchor channel: `<remote_sig>`, `nSequence = 1`.
    ToRemoteAnchors,
    /// Our `to_remote` P2WPKH (static remote key): `<sig> <pubkey>`.
    ToRemoteP2wpkh {
        /// The `remotepubkey` (our `payment_basepoint`).
        pubkey: PublicKey,
    },
    /// Our anchor: `<local_sig>`.
    Anchor,
    /// Anyone's anchor, 16 blocks after the commitment confirmed: `<>`.
    AnchorAfter16,
}

impl SpendPath {
    /// The input's `nSequence`.
    pub fn sequence(&self) -> Sequence {
        match self {
            SpendPath::Delayed { to_self_delay } => Sequence::from_height(*to_self_delay),
            SpendPath::OfferedHtlcPreimage { anchors: true, .. }
            | SpendPath::ReceivedHtlcTimeout { anchors: true, .. }
            | SpendPath::ToRemoteAnchors => Sequence(1),
            SpendPath::AnchorAfter16 => Sequence(16),
            // A timeout needs a non-final sequence for its locktime to count.
            SpendPath::ReceivedHtlcTimeout { anchors: false, .. } => {
                Sequence::ENABLE_RBF_NO_LOCKTIME
            }
            _ => Sequence::ENABLE_RBF_NO_LOCKTIME,
        }
    }

    /// The locktime this path needs, if any.
    pub fn locktime(&self) -> Option<u32> {
        match self {
            SpendPath::ReceivedHtlcTimeout { cltv_expiry, .. } => Some(*cltv_expiry),
            _ => None,
        }
    }

    /// Whether spending needs a signature.
    fn signs(&self) -> bool {
        !matches!(self, SpendPath::AnchorAfter16)
    }

    /// Witness size in weight units (bytes) before the witness script, with
    /// 73-byte signatures as BOLT 3 assumes.
    fn witness_items_weight(&self) -> u64 {
        // Each item: 1 length byte + its bytes.
        let sig = 1 + 73;
        match self {
            SpendPath::Delayed { .. } => sig + 1,
            SpendPath::RevokedDelayed => sig + 2,
            SpendPath::RevokedHtlc { .. } => sig + 1 + 33,
            SpendPath::OfferedHtlcPreimage { .. } => sig + 1 + 32,
            SpendPath::ReceivedHtlcTimeout { .. } => sig + 1,
            SpendPath::ToRemoteAnchors | SpendPath::Anchor => sig,
            SpendPath::ToRemoteP2wpkh { .. } => sig + 1 + 33,
            SpendPath::AnchorAfter16 => 1,
        }
    }
}

/// An output to spend.
#[derive(Debug, Clone)]
pub struct SweepInput {
    /// The output.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: Amount,
    /// Its witness script (`None` for a P2WPKH `to_remote`).
    pub witness_script: Option<ScriptBuf>,
    /// How to spend it.
    pub path: SpendPath,
}

/// Why a sweep could not be built or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SweepError {
    /// Nothing to spend.
    #[error("no inputs to sweep")]
    NoInputs,
    /// After the fee the output would be below the dust limit.
    #[error("sweeping {total} at this feerate costs {fee}, leaving less than the dust limit {dust_limit}")]
    Uneconomical {
        /// Sum of the inputs.
        total: Amount,
        /// The fee.
        fee: Amount,
        /// The dust limit.
        dust_limit: Amount,
    },
    /// A P2WSH input without its witness script.
    #[error("input {0} needs its witness script")]
    MissingScript(usize),
    /// A spending path that needs a signature given no key.
    #[error("input {0} needs a signature but no key was given")]
    MissingKey(usize),
    /// A P2WPKH input given a witness script.
    #[error("input {0} is P2WPKH and takes no witness script")]
    UnexpectedScript(usize),
    /// A revoked output batched with an input locked until a block height:
    /// the penalty would wait for the lock, possibly past the cheater's
    /// `to_self_delay` (BOLT 5 asks for penalties that confirm in time).
    #[error("input {timelocked} is locked until height {height}; sweep it apart from the revoked outputs")]
    PenaltyBehindLocktime {
        /// The time-locked input.
        timelocked: usize,
        /// Its `cltv_expiry`.
        height: u32,
    },
    /// Inputs and keys do not line up.
    #[error("{inputs} inputs but {keys} keys")]
    KeyCount {
        /// Inputs.
        inputs: usize,
        /// Keys.
        keys: usize,
    },
}

/// Expected weight of a sweep of `inputs` to one `destination` output.
pub fn sweep_weight(inputs: &[SweepInput], destination: &ScriptBuf) -> Weight {
    // version 4, marker+flag 2/4, counts 1+1, locktime 4: non-witness 10 bytes.
    let base = 4 * (10 + 8 + 1 + destination.len() as u64);
    let per_input: u64 = inputs
        .iter()
        .map(|i| {
            let script = i.witness_script.as_ref().map_or(0, |s| s.len() as u64);
            let script_item = if i.witness_script.is_some() {
                1 + script
            } else {
                0
            };
            // outpoint 36 + script_sig len 1 + sequence 4, then the witness.
            4 * 41 + 1 + i.path.witness_items_weight() + script_item
        })
        .sum();
    Weight::from_wu(base + 2 + per_input)
}

/// Inputs a sweep refuses: a P2WPKH input with a script, or revoked outputs
/// mixed with a time-locked one.
fn check_inputs(inputs: &[SweepInput]) -> Result<(), SweepError> {
    if let Some(n) = inputs.iter().position(|i| {
        matches!(i.path, SpendPath::ToRemoteP2wpkh { .. }) && i.witness_script.is_some()
    }) {
        return Err(SweepError::UnexpectedScript(n));
    }
    let revoked = inputs.iter().any(|i| {
        matches!(
            i.path,
            SpendPath::RevokedDelayed | SpendPath::RevokedHtlc { .. }
        )
    });
    if revoked {
        if let Some((n, height)) = inputs
            .iter()
            .enumerate()
            .find_map(|(n, i)| i.path.locktime().map(|h| (n, h)))
        {
            return Err(SweepError::PenaltyBehindLocktime {
                timelocked: n,
                height,
            });
        }
    }
    Ok(())
}

/// Builds the unsigned sweep of `inputs` to `destination`, paying
/// `feerate` on the expected weight; the locktime is the highest any input
/// needs.
pub fn build_sweep(
    inputs: &[SweepInput],
    destination: ScriptBuf,
    feerate: FeeratePerKw,
    dust_limit: Amount,
) -> Result<Transaction, SweepError> {
    if inputs.is_empty() {
        return Err(SweepError::NoInputs);
    }
    check_inputs(inputs)?;
    let total: Amount = inputs.iter().map(|i| i.value).sum();
    let fee = feerate.fee_for_weight(sweep_weight(inputs, &destination).to_wu());
    let value =
        total
            .checked_sub(fee)
            .filter(|v| *v >= dust_limit)
            .ok_or(SweepError::Uneconomical {
                total,
                fee,
                dust_limit,
            })?;
    let lock_time = inputs
        .iter()
        .filter_map(|i| i.path.locktime())
        .max()
        .unwrap_or(0);
    Ok(Transaction {
        version: Version::TWO,
        lock_time: LockTime::from_consensus(lock_time),
        input: inputs
            .iter()
            .map(|i| TxIn {
                previous_output: i.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: i.path.sequence(),
                witness: Witness::new(),
            })
            .collect(),
        output: vec![TxOut {
            value,
            script_pubkey: destination,
        }],
    })
}

/// Signs every input of a sweep (SIGHASH_ALL) with its key (`None` for an
/// input that needs no signature) and fills the witnesses.
pub fn sign_sweep<C: Signing>(
    secp: &Secp256k1<C>,
    tx: &mut Transaction,
    inputs: &[SweepInput],
    keys: &[Option<SecretKey>],
) -> Result<(), SweepError> {
    if inputs.len() != keys.len() || inputs.len() != tx.input.len() {
        return Err(SweepError::KeyCount {
            inputs: inputs.len(),
            keys: keys.len(),
        });
    }
    check_inputs(inputs)?;
    let mut witnesses = Vec::with_capacity(inputs.len());
    {
        let mut cache = SighashCache::new(&*tx);
        for (n, (input, key)) in inputs.iter().zip(keys).enumerate() {
            let sig = match (input.path.signs(), key) {
                (true, Some(key)) => {
                    let sighash = match (&input.witness_script, &input.path) {
                        (_, SpendPath::ToRemoteP2wpkh { pubkey }) => {
                            let spk = ScriptBuf::new_p2wpkh(
                                &bitcoin::CompressedPublicKey(*pubkey).wpubkey_hash(),
                            );
                            cache
                                .p2wpkh_signature_hash(n, &spk, input.value, EcdsaSighashType::All)
                                .map_err(|_| SweepError::MissingScript(n))?
                        }
                        (Some(script), _) => cache
                            .p2wsh_signature_hash(n, script, input.value, EcdsaSighashType::All)
                            .map_err(|_| SweepError::MissingScript(n))?,
                        (None, _) => return Err(SweepError::MissingScript(n)),
                    };
                    let signature =
                        secp.sign_ecdsa(&bitcoin::secp256k1::Message::from(sighash), key);
                    Some(Signature {
                        signature,
                        sighash_type: EcdsaSighashType::All,
                    })
                }
                (true, None) => return Err(SweepError::MissingKey(n)),
                (false, _) => None,
            };
            witnesses.push(witness_for(input, sig.as_ref()));
        }
    }
    for (txin, w) in tx.input.iter_mut().zip(witnesses) {
        txin.witness = w;
    }
    Ok(())
}

/// The witness for `input` with signature `sig`.
pub fn witness_for(input: &SweepInput, sig: Option<&Signature>) -> Witness {
    let mut w = Witness::new();
    let sig = sig.map(Signature::serialize);
    let push_sig = |w: &mut Witness| {
        if let Some(s) = &sig {
            let bytes: &[u8] = s.as_ref();
            w.push(bytes);
        }
    };
    match &input.path {
        SpendPath::Delayed { .. } | SpendPath::ReceivedHtlcTimeout { .. } => {
            push_sig(&mut w);
            w.push([0u8; 0]);
        }
        SpendPath::RevokedDelayed => {
            push_sig(&mut w);
            w.push([1]);
        }
        SpendPath::RevokedHtlc { revocation_key } => {
            push_sig(&mut w);
            w.push(revocation_key.serialize());
        }
        SpendPath::OfferedHtlcPreimage { preimage, .. } => {
            push_sig(&mut w);
            w.push(preimage.0);
        }
        SpendPath::ToRemoteAnchors | SpendPath::Anchor => push_sig(&mut w),
        SpendPath::ToRemoteP2wpkh { pubkey } => {
            push_sig(&mut w);
            w.push(pubkey.serialize());
        }
        SpendPath::AnchorAfter16 => w.push([0u8; 0]),
    }
    if let Some(script) = &input.witness_script {
        w.push(script.as_bytes());
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(vout: u32, path: SpendPath, script: Option<ScriptBuf>) -> SweepInput {
        SweepInput {
            outpoint: OutPoint {
                txid: bitcoin::Txid::from_byte_array([1; 32]),
                vout,
            },
            value: Amount::from_sat(100_000),
            witness_script: script,
            path,
        }
    }

    use bitcoin::hashes::Hash;

    fn key() -> (Secp256k1<bitcoin::secp256k1::All>, SecretKey, PublicKey) {
        let secp = Secp256k1::new();
        let sk = SecretKey::from_slice(&[3; 32]).unwrap_or_else(|_| unreachable!());
        let pk = PublicKey::from_secret_key(&secp, &sk);
        (secp, sk, pk)
    }

    /// A path that needs a signature is never left unsigned.
    #[test]
    fn a_missing_key_is_an_error_not_an_unsigned_witness() {
        let (secp, _, _) = key();
        let script = ScriptBuf::from_bytes(vec![0x51]);
        let inputs = [input(
            0,
            SpendPath::Delayed { to_self_delay: 144 },
            Some(script),
        )];
        let dest = ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::all_zeros());
        let mut tx = build_sweep(&inputs, dest, FeeratePerKw(253), Amount::from_sat(354))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            sign_sweep(&secp, &mut tx, &inputs, &[None]),
            Err(SweepError::MissingKey(0))
        );
        assert!(tx.input[0].witness.is_empty());
    }

    /// P2WPKH takes no script; penalties do not wait behind a CLTV input.
    #[test]
    fn inputs_that_cannot_make_a_valid_or_timely_sweep_are_refused() {
        let (_, _, pk) = key();
        let dest = ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::all_zeros());
        let script = ScriptBuf::from_bytes(vec![0x51]);
        let p2wpkh = input(
            0,
            SpendPath::ToRemoteP2wpkh { pubkey: pk },
            Some(script.clone()),
        );
        assert_eq!(
            build_sweep(
                &[p2wpkh],
                dest.clone(),
                FeeratePerKw(253),
                Amount::from_sat(354)
            ),
            Err(SweepError::UnexpectedScript(0))
        );
        let revoked = input(0, SpendPath::RevokedDelayed, Some(script.clone()));
        let timeout = input(
            1,
            SpendPath::ReceivedHtlcTimeout {
                cltv_expiry: 800_000,
                anchors: true,
            },
            Some(script),
        );
        assert_eq!(
            build_sweep(
                &[revoked, timeout],
                dest,
                FeeratePerKw(253),
                Amount::from_sat(354)
            ),
            Err(SweepError::PenaltyBehindLocktime {
                timelocked: 1,
                height: 800_000
            })
        );
    }
}
