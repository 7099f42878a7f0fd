//! The devnet's faucet: coins anyone may spend, paid out on request.
//!
//! Blocks that nobody in particular mines (the chain's first blocks, the
//! interval blocks of a served devnet) pay their coinbase to
//! [`faucet_script`], a P2WSH output whose witness script is `OP_TRUE`:
//! spending it needs no signature, only the script in the witness, and the
//! transaction is checked by the same consensus rules as any other. A
//! payment from the faucet ([`Devnet::faucet_pay`]) spends mature faucet
//! coins to the given script, with change back to the faucet.

use bitcoin::blockdata::opcodes::OP_TRUE;
use bitcoin::blockdata::script::Builder;
use bitcoin::{
    absolute, transaction, Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid,
    Witness,
};

use super::{Devnet, MempoolError, COINBASE_MATURITY};

/// Feerate of faucet payments, in sat per virtual byte.
const FAUCET_SAT_PER_VB: u64 = 2;

/// Change below this goes to the fee instead (Bitcoin Core's dust limit
/// for a P2WSH output is 330 sat).
const DUST: Amount = Amount::from_sat(1_000);

/// The faucet's witness script: `OP_TRUE`.
fn witness_script() -> ScriptBuf {
    Builder::new().push_opcode(OP_TRUE).into_script()
}

/// The output script of faucet coins: P2WSH of `OP_TRUE`.
pub fn faucet_script() -> ScriptBuf {
    ScriptBuf::new_p2wsh(&witness_script().wscript_hash())
}

/// Why the faucet could not pay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaucetError {
    /// Zero, or more than the faucet's spendable coins.
    #[error("the faucet can pay between 1 sat and {available} now (asked for {asked}); mined blocks add to it after 100 confirmations")]
    Amount {
        /// What was asked for.
        asked: Amount,
        /// What it can pay (its spendable coins less the fee).
        available: Amount,
    },
    /// The mempool refused the payment (a bug if it ever happens).
    #[error("the faucet's transaction was refused: {0}")]
    Refused(#[from] MempoolError),
}

impl Devnet {
    /// Faucet coins the next block may spend: confirmed, mature if
    /// coinbase, not spent by a mempool transaction; largest first.
    fn faucet_coins(&self) -> Vec<(OutPoint, Amount)> {
        let next = self.height() + 1;
        let mut coins: Vec<(OutPoint, Amount)> = self
            .utxos_for(&faucet_script())
            .into_iter()
            .filter(|(o, c)| {
                (!c.coinbase || next - c.height >= COINBASE_MATURITY)
                    && !self.mempool_spends.contains_key(o)
            })
            .map(|(o, c)| (o, c.txout.value))
            .collect();
        coins.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        coins
    }

    /// What the faucet can pay now.
    pub fn faucet_balance(&self) -> Amount {
        self.faucet_coins().iter().map(|(_, v)| *v).sum()
    }

    /// Pays `amount` from the faucet to `script_pubkey`: a transaction in
    /// the mempool (mine a block to confirm it).
    pub fn faucet_pay(
        &mut self,
        script_pubkey: &ScriptBuf,
        amount: Amount,
    ) -> Result<Txid, FaucetError> {
        let coins = self.faucet_coins();
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: Vec::new(),
            output: vec![
                TxOut {
                    value: amount,
                    script_pubkey: script_pubkey.clone(),
                },
                TxOut {
                    value: Amount::ZERO,
                    script_pubkey: faucet_script(),
                },
            ],
        };
        let mut total = Amount::ZERO;
        let fee =
            |tx: &Transaction| Amount::from_sat(tx.weight().to_vbytes_ceil() * FAUCET_SAT_PER_VB);
        let too_much = |total: Amount, tx: &Transaction| FaucetError::Amount {
            asked: amount,
            available: total.checked_sub(fee(tx)).unwrap_or(Amount::ZERO),
        };
        if amount == Amount::ZERO {
            return Err(too_much(self.faucet_balance(), &tx));
        }
        for (outpoint, value) in coins {
            if total >= amount + fee(&tx) {
                break;
            }
            let mut witness = Witness::new();
            witness.push(witness_script().as_bytes());
            tx.input.push(TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness,
            });
            total += value;
        }
        let needed = amount + fee(&tx);
        if total < needed {
            // Everything in one output, no change: the most it could pay.
            let mut all = tx.clone();
            all.output.truncate(1);
            return Err(too_much(total, &all));
        }
        let change = total - needed;
        if change < DUST {
            tx.output.truncate(1);
        } else {
            tx.output[1].value = change;
        }
        Ok(self.accept(tx)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p2wpkh() -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_raw_hash(
            bitcoin::hashes::Hash::all_zeros(),
        ))
    }

    /// Only mature coinbases pay; a payment splits one coin into the
    /// payee's output, change back to the faucet and a 2 sat/vB fee, and
    /// the change pays the next request once confirmed.
    #[test]
    fn the_faucet_pays_from_mature_coins_with_change() {
        let mut d = Devnet::new();
        d.mine(100, &faucet_script(), 1_700_000_000);
        // Height 100: the block-1 coinbase is spendable in block 101.
        assert_eq!(d.faucet_balance(), Amount::from_btc(50.0).unwrap());
        let ten = Amount::from_btc(10.0).unwrap();
        let txid = d.faucet_pay(&p2wpkh(), ten).unwrap();
        let tx = d.transaction(&txid).unwrap().clone();
        assert_eq!(tx.input.len(), 1);
        assert_eq!(tx.output[0].value, ten);
        let fee = tx.weight().to_vbytes_ceil() * 2;
        assert_eq!(tx.output[1].value.to_sat(), 40 * 100_000_000 - fee);
        assert_eq!(tx.output[1].script_pubkey, faucet_script());
        // Spent in the mempool: nothing left until it confirms.
        assert_eq!(d.faucet_balance(), Amount::ZERO);
        let err = d.faucet_pay(&p2wpkh(), ten).unwrap_err();
        assert_eq!(
            err,
            FaucetError::Amount {
                asked: ten,
                available: Amount::ZERO
            }
        );
        // One block later: the change and the block-2 coinbase.
        d.mine(1, &p2wpkh(), 1_700_000_000);
        assert_eq!(d.confirmations(&txid), Some(1));
        assert_eq!(d.faucet_balance().to_sat(), 90 * 100_000_000 - fee);
        let big = Amount::from_btc(80.0).unwrap();
        let txid = d.faucet_pay(&p2wpkh(), big).unwrap();
        assert_eq!(d.transaction(&txid).unwrap().input.len(), 2);
        assert!(matches!(
            d.faucet_pay(&p2wpkh(), Amount::ZERO),
            Err(FaucetError::Amount { .. })
        ));
    }
}
