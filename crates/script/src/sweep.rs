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
                _ => None,
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
