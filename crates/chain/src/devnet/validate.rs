//! Transaction validation for the devnet mempool: the consensus rules a
//! regtest Bitcoin Core node applies, as far as a Lightning node's
//! transactions need them.

use std::collections::HashSet;

use bitcoin::consensus::encode::serialize;
use bitcoin::secp256k1::{schnorr, Message, Secp256k1, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid};

/// A spendable output and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// The output.
    pub txout: TxOut,
    /// Height of the block that created it (the next block's height for an
    /// output of an unconfirmed transaction).
    pub height: u32,
    /// Whether it is a coinbase output.
    pub coinbase: bool,
}

/// Coinbase outputs spend only after 100 confirmations.
pub const COINBASE_MATURITY: u32 = 100;

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MempoolError {
    /// A coinbase outside a block.
    #[error("coinbase transactions are only valid in blocks")]
    Coinbase,
    /// No inputs or no outputs.
    #[error("transaction has no inputs or no outputs")]
    Empty,
    /// The same outpoint twice.
    #[error("input {0} is spent twice by the transaction")]
    DuplicateInput(OutPoint),
    /// Already in the mempool or the chain.
    #[error("transaction {0} is already known")]
    AlreadyKnown(Txid),
    /// An input that does not exist or is already spent in the chain.
    #[error("input {0} is missing or spent")]
    MissingInput(OutPoint),
    /// Spends a coinbase output with fewer than 100 confirmations.
    #[error(
        "input {outpoint} spends a coinbase with {confirmations} confirmations; 100 are needed"
    )]
    ImmatureCoinbase {
        /// The coinbase output.
        outpoint: OutPoint,
        /// Its confirmations at the next block.
        confirmations: u32,
    },
    /// Outputs exceed inputs, or an amount is out of range.
    #[error("outputs ({outputs}) exceed inputs ({inputs})")]
    OutputsExceedInputs {
        /// Sum of inputs.
        inputs: Amount,
        /// Sum of outputs.
        outputs: Amount,
    },
    /// `nLockTime` not reached at the next block.
    #[error("locktime {0} is not yet reached")]
    NonFinal(u32),
    /// A BIP 68 relative locktime not reached at the next block.
    #[error("input {0} is under a relative locktime (BIP 68) that is not yet reached")]
    RelativeLocktime(OutPoint),
    /// A script or signature check failed.
    #[error("input {input} fails script verification: {reason}")]
    Script {
        /// Input index.
        input: usize,
        /// What failed.
        reason: String,
    },
    /// Conflicts with mempool transactions and pays too little to replace them.
    #[error("conflicts with mempool transaction {conflict} and does not pay more ({fee} <= {conflict_fee})")]
    ReplacementTooCheap {
        /// A conflicting transaction.
        conflict: Txid,
        /// This transaction's fee.
        fee: Amount,
        /// Fee of what it would replace.
        conflict_fee: Amount,
    },
    /// Pays less than the minimum relay fee (1 sat/vB, Bitcoin Core's
    /// `minrelaytxfee` default): Core answers "min relay fee not met".
    #[error("fee {fee} is below the minimum relay fee {needed} (1 sat/vB)")]
    MinRelayFeeNotMet {
        /// This transaction's fee.
        fee: Amount,
        /// What its size requires.
        needed: Amount,
    },
    /// A replacement whose feerate is not above a transaction it replaces
    /// (BIP 125 as Bitcoin Core applies it).
    #[error("replacement feerate is not above that of mempool transaction {conflict}")]
    ReplacementFeerateTooLow {
        /// The conflicting transaction.
        conflict: Txid,
    },
    /// Too large.
    #[error("transaction weight {0} exceeds 400000")]
    TooLarge(u64),
}

/// What validation needs from the chain and mempool.
pub trait CoinView {
    /// The coin an input spends, if it exists and is unspent (in the chain or
    /// as an output of a mempool transaction).
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin>;
    /// Median time past of the block at `height`.
    fn median_time_past(&self, height: u32) -> u32;
}

/// Checks `tx` for inclusion in the block at `next_height` (tip + 1);
/// returns its fee.
pub fn check_transaction(
    tx: &Transaction,
    view: &impl CoinView,
    next_height: u32,
) -> Result<Amount, MempoolError> {
    if tx.is_coinbase() {
        return Err(MempoolError::Coinbase);
    }
    if tx.input.is_empty() || tx.output.is_empty() {
        return Err(MempoolError::Empty);
    }
    let weight = tx.weight().to_wu();
    if weight > 400_000 {
        return Err(MempoolError::TooLarge(weight));
    }
    let mut seen = HashSet::new();
    let mut spent = Vec::with_capacity(tx.input.len());
    for input in &tx.input {
        if !seen.insert(input.previous_output) {
            return Err(MempoolError::DuplicateInput(input.previous_output));
        }
        let coin = view
            .coin(&input.previous_output)
            .ok_or(MempoolError::MissingInput(input.previous_output))?;
        if coin.coinbase {
            let confirmations = next_height.saturating_sub(coin.height);
            if confirmations < COINBASE_MATURITY {
                return Err(MempoolError::ImmatureCoinbase {
                    outpoint: input.previous_output,
                    confirmations,
                });
            }
        }
        spent.push(coin);
    }
    let inputs = spent
        .iter()
        .try_fold(Amount::ZERO, |a, c| a.checked_add(c.txout.value));
    let outputs = tx
        .output
        .iter()
        .try_fold(Amount::ZERO, |a, o| a.checked_add(o.value));
    let (inputs, outputs) = match (inputs, outputs) {
        (Some(i), Some(o)) if o <= i && o <= Amount::MAX_MONEY => (i, o),
        (i, o) => {
            return Err(MempoolError::OutputsExceedInputs {
                inputs: i.unwrap_or(Amount::MAX),
                outputs: o.unwrap_or(Amount::MAX),
            })
        }
    };

    let tip_mtp = view.median_time_past(next_height - 1);
    check_final(tx, next_height, tip_mtp)?;
    check_sequence_locks(tx, &spent, view, next_height, tip_mtp)?;
    check_scripts(tx, &spent)?;
    Ok(inputs - outputs)
}

/// `IsFinalTx` with BIP 113: a height locktime must be below the next
/// block's height, a time locktime below the tip's median time past, unless
/// every input's sequence is final.
fn check_final(tx: &Transaction, next_height: u32, tip_mtp: u32) -> Result<(), MempoolError> {
    let lock = tx.lock_time.to_consensus_u32();
    if lock == 0 || tx.input.iter().all(|i| i.sequence.0 == u32::MAX) {
        return Ok(());
    }
    let reached = if lock < 500_000_000 {
        lock < next_height
    } else {
        lock < tip_mtp
    };
    if reached {
        Ok(())
    } else {
        Err(MempoolError::NonFinal(lock))
    }
}

/// BIP 68 relative locktimes (version 2 transactions).
fn check_sequence_locks(
    tx: &Transaction,
    spent: &[Coin],
    view: &impl CoinView,
    next_height: u32,
    tip_mtp: u32,
) -> Result<(), MempoolError> {
    if tx.version.0 < 2 {
        return Ok(());
    }
    for (input, coin) in tx.input.iter().zip(spent) {
        let seq = input.sequence.0;
        if seq & (1 << 31) != 0 {
            continue; // disable flag
        }
        let value = seq & 0xffff;
        let satisfied = if seq & (1 << 22) != 0 {
            // Time-based: 512-second units from the MTP of the block before the coin's.
            let coin_time = view.median_time_past(coin.height.saturating_sub(1));
            i64::from(coin_time) + (i64::from(value) << 9) - 1 < i64::from(tip_mtp)
        } else {
            i64::from(coin.height) + i64::from(value) - 1 < i64::from(next_height)
        };
        if !satisfied {
            return Err(MempoolError::RelativeLocktime(input.previous_output));
        }
    }
    Ok(())
}

/// Script checks: libbitcoinconsensus (Bitcoin Core 25.1) with the
/// consensus flags (P2SH, DERSIG, CHECKLOCKTIMEVERIFY, CHECKSEQUENCEVERIFY,
/// WITNESS, NULLDUMMY) for every non-taproot input; Core's policy flags
/// (MINIMALIF, NULLFAIL, LOW_S, ...) are not applied (docs/devnet.md); taproot key-path spends are
/// checked with BIP 341 sighashes and BIP 340 signatures (the library has no
/// taproot entry point). Taproot script-path spends are refused.
fn check_scripts(tx: &Transaction, spent: &[Coin]) -> Result<(), MempoolError> {
    let bytes = serialize(tx);
    let prevouts: Vec<TxOut> = spent.iter().map(|c| c.txout.clone()).collect();
    let secp = Secp256k1::verification_only();
    for (n, coin) in spent.iter().enumerate() {
        let spk = &coin.txout.script_pubkey;
        let fail = |reason: String| MempoolError::Script { input: n, reason };
        if spk.is_p2tr() {
            let witness = &tx.input[n].witness;
            if witness.len() != 1 {
                return Err(fail(
                    "taproot script-path spends are not supported by the devnet".into(),
                ));
            }
            let sig_bytes = witness.nth(0).expect("one element");
            let (sig, sighash_type) = match sig_bytes.len() {
                64 => (sig_bytes, TapSighashType::Default),
                65 => (
                    &sig_bytes[..64],
                    TapSighashType::from_consensus_u8(sig_bytes[64])
                        .map_err(|e| fail(e.to_string()))?,
                ),
                len => return Err(fail(format!("taproot signature of {len} bytes"))),
            };
            let sig = schnorr::Signature::from_slice(sig).map_err(|e| fail(e.to_string()))?;
            let key = XOnlyPublicKey::from_slice(&spk.as_bytes()[2..34])
                .map_err(|e| fail(e.to_string()))?;
            let sighash = SighashCache::new(tx)
                .taproot_key_spend_signature_hash(n, &Prevouts::All(&prevouts), sighash_type)
                .map_err(|e| fail(e.to_string()))?;
            // The output key is already tweaked (BIP 341): verify against it directly.
            secp.verify_schnorr(&sig, &Message::from(sighash), &key)
                .map_err(|e| fail(e.to_string()))?;
        } else {
            bitcoin::consensus::verify_script_with_flags(
                spk,
                n,
                coin.txout.value,
                &bytes,
                bitcoinconsensus_flags(),
            )
            .map_err(|e| fail(format!("{e:?}")))?;
        }
    }
    Ok(())
}

/// P2SH, DERSIG, NULLDUMMY, CHECKLOCKTIMEVERIFY, CHECKSEQUENCEVERIFY, WITNESS.
fn bitcoinconsensus_flags() -> u32 {
    (1 << 0) | (1 << 2) | (1 << 4) | (1 << 9) | (1 << 10) | (1 << 11)
}
