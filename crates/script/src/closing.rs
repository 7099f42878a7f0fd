//! BOLT 3 §"Legacy Closing Transaction" (`closing_signed`) and §"Closing
//! Transaction" (`option_simple_close`: `closing_complete`/`closing_sig`).

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use beongae_wire::Msat;

/// Why a closing transaction could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClosingError {
    /// The fee is more than the paying side has.
    #[error("fee {fee} exceeds the payer's balance {balance}")]
    FeeTooHigh {
        /// The fee.
        fee: Amount,
        /// The payer's balance (rounded down).
        balance: Amount,
    },
    /// No output would remain.
    #[error("closing transaction would have no output")]
    NoOutput,
}

/// Sorts outputs by BOLT 3 §"Transaction Output Ordering" (value, then script).
fn sort_outputs(outputs: &mut [TxOut]) {
    outputs.sort_by(|a, b| {
        (a.value, a.script_pubkey.as_bytes()).cmp(&(b.value, b.script_pubkey.as_bytes()))
    });
}

fn closing_tx(
    funding_outpoint: OutPoint,
    sequence: Sequence,
    lock_time: LockTime,
    mut output: Vec<TxOut>,
) -> Transaction {
    sort_outputs(&mut output);
    Transaction {
        version: Version::TWO,
        lock_time,
        input: vec![TxIn {
            previous_output: funding_outpoint,
            script_sig: ScriptBuf::new(),
            sequence,
            witness: Witness::new(),
        }],
        output,
    }
}

/// One side of a closing transaction.
#[derive(Debug, Clone)]
pub struct ClosingOutput {
    /// Final balance.
    pub balance: Msat,
    /// `scriptpubkey` from its `shutdown` (or `closing_complete`).
    pub script_pubkey: ScriptBuf,
}

/// BOLT 3 §"Legacy Closing Transaction": version 2, locktime 0, sequence
/// 0xFFFFFFFF; each output rounded down, the funder's minus `fee`, and any
/// output below `dust_limit` (the signer's own) removed.
pub fn build_legacy_closing(
    funding_outpoint: OutPoint,
    funder: &ClosingOutput,
    fundee: &ClosingOutput,
    fee: Amount,
    dust_limit: Amount,
) -> Result<Transaction, ClosingError> {
    let funder_balance = funder.balance.to_amount_floor();
    let funder_amount = funder_balance
        .checked_sub(fee)
        .ok_or(ClosingError::FeeTooHigh {
            fee,
            balance: funder_balance,
        })?;
    let outputs: Vec<TxOut> = [
        TxOut {
            value: funder_amount,
            script_pubkey: funder.script_pubkey.clone(),
        },
        TxOut {
            value: fundee.balance.to_amount_floor(),
            script_pubkey: fundee.script_pubkey.clone(),
        },
    ]
    .into_iter()
    .filter(|o| o.value >= dust_limit)
    .collect();
    if outputs.is_empty() {
        return Err(ClosingError::NoOutput);
    }
    Ok(closing_tx(
        funding_outpoint,
        Sequence::MAX,
        LockTime::ZERO,
        outputs,
    ))
}

/// BOLT 3 §"Closing Transaction" (`option_simple_close`): locktime from
/// `closing_complete`, sequence 0xFFFFFFFD; the closer pays `fee`; an
/// `OP_RETURN` output carries 0; `closee` is `None` when the closee's output
/// is omitted (and `closer` when the closer omits its own).
pub fn build_simple_closing(
    funding_outpoint: OutPoint,
    locktime: LockTime,
    closer: Option<&ClosingOutput>,
    closee: Option<&ClosingOutput>,
    fee: Amount,
) -> Result<Transaction, ClosingError> {
    let mut outputs = Vec::new();
    if let Some(c) = closer {
        let balance = c.balance.to_amount_floor();
        let value = if c.script_pubkey.is_op_return() {
            Amount::ZERO
        } else {
            balance
                .checked_sub(fee)
                .ok_or(ClosingError::FeeTooHigh { fee, balance })?
        };
        outputs.push(TxOut {
            value,
            script_pubkey: c.script_pubkey.clone(),
        });
    }
    if let Some(c) = closee {
        let value = if c.script_pubkey.is_op_return() {
            Amount::ZERO
        } else {
            c.balance.to_amount_floor()
        };
        outputs.push(TxOut {
            value,
            script_pubkey: c.script_pubkey.clone(),
        });
    }
    if outputs.is_empty() {
        return Err(ClosingError::NoOutput);
    }
    Ok(closing_tx(
        funding_outpoint,
        Sequence::ENABLE_RBF_NO_LOCKTIME,
        locktime,
        outputs,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn out(msat: u64, tag: u8) -> ClosingOutput {
        ClosingOutput {
            balance: Msat::from_msat(msat),
            script_pubkey: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([tag; 20])),
        }
    }

    #[test]
    fn legacy_closing_rounds_pays_fee_and_trims_dust() {
        let op = OutPoint::null();
        let tx = build_legacy_closing(
            op,
            &out(700_000_999, 1),
            &out(300_000_500, 2),
            Amount::from_sat(1000),
            Amount::from_sat(546),
        )
        .unwrap();
        assert_eq!(tx.input[0].sequence, Sequence::MAX);
        assert_eq!(tx.lock_time, LockTime::ZERO);
        let values: Vec<u64> = tx.output.iter().map(|o| o.value.to_sat()).collect();
        assert_eq!(values, vec![300_000, 699_000]);
        // The fundee's 545 sat is dust and goes to fees.
        let tx = build_legacy_closing(
            op,
            &out(700_000_000, 1),
            &out(545_999, 2),
            Amount::from_sat(1000),
            Amount::from_sat(546),
        )
        .unwrap();
        assert_eq!(tx.output.len(), 1);
        assert_eq!(
            build_legacy_closing(
                op,
                &out(999_999, 1),
                &out(1, 2),
                Amount::from_sat(1000),
                Amount::from_sat(546)
            ),
            Err(ClosingError::FeeTooHigh {
                fee: Amount::from_sat(1000),
                balance: Amount::from_sat(999)
            })
        );
    }

    #[test]
    fn simple_closing_closer_pays_and_op_return_is_zero() {
        let op = OutPoint::null();
        let burn = ClosingOutput {
            balance: Msat::from_msat(400_000),
            script_pubkey: ScriptBuf::new_op_return([0u8; 4]),
        };
        let tx = build_simple_closing(
            op,
            LockTime::from_consensus(800_000),
            Some(&out(600_000_000, 1)),
            Some(&burn),
            Amount::from_sat(700),
        )
        .unwrap();
        assert_eq!(tx.input[0].sequence, Sequence(0xffff_fffd));
        assert_eq!(tx.lock_time, LockTime::from_consensus(800_000));
        assert_eq!(tx.output[0].value, Amount::ZERO);
        assert!(tx.output[0].script_pubkey.is_op_return());
        assert_eq!(tx.output[1].value, Amount::from_sat(599_300));
        let only_closee = build_simple_closing(
            op,
            LockTime::ZERO,
            None,
            Some(&out(5_000_000, 2)),
            Amount::from_sat(700),
        )
        .unwrap();
        assert_eq!(only_closee.output[0].value, Amount::from_sat(5_000));
        assert_eq!(
            build_simple_closing(op, LockTime::ZERO, None, None, Amount::ZERO),
            Err(ClosingError::NoOutput)
        );
    }
}
