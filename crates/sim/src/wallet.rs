//! Each simulated node's on-chain wallet: coins paying one P2WPKH key on
//! the devnet, spent by real signed transactions that the devnet checks
//! with Bitcoin Core's script interpreter.
//!
//! The node's real wallet (`beongae_wallet::OnchainWallet`, BDK) cannot
//! serve here: BDK's coin selection and output order draw from the
//! thread's random generator, so a seed would not name one run. This one
//! picks coins in a fixed order and answers the core's wallet requests
//! ([`beongae_node::core::Output::BuildFunding`], `FundClaim`,
//! `DoubleSpend`, `Forget`) as the runtime's wallet does.

use std::collections::{BTreeMap, BTreeSet};

use beongae_chain::devnet::{Devnet, COINBASE_MATURITY};
use beongae_node::core::Failure;
use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash as _;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Weight, Witness,
};

/// Weight a P2WPKH input adds once signed: outpoint, sequence and empty
/// script (41 bytes, ×4), and its witness (item count, a 73-byte
/// signature, a 34-byte key).
const INPUT_WEIGHT: u64 = 41 * 4 + 1 + 73 + 34;

/// A node's coins and the transactions it built from them.
#[derive(Debug, Clone)]
pub struct Wallet {
    key: SecretKey,
    /// Where its coins, change and closes pay.
    pub script: ScriptBuf,
    /// Coins each transaction it built spends (until it is forgotten or
    /// its inputs are spent on chain).
    used: BTreeMap<Txid, Vec<OutPoint>>,
}

impl Wallet {
    /// A wallet whose key is `secret`.
    pub fn new(secret: [u8; 32]) -> Wallet {
        let key = SecretKey::from_slice(&secret).unwrap_or_else(|_| {
            SecretKey::from_slice(&[1; 32]).unwrap_or_else(|_| unreachable!("1 is a valid key"))
        });
        let pk = bitcoin::CompressedPublicKey(PublicKey::from_secret_key(
            &Secp256k1::signing_only(),
            &key,
        ));
        Wallet {
            key,
            script: ScriptBuf::new_p2wpkh(&pk.wpubkey_hash()),
            used: BTreeMap::new(),
        }
    }

    /// Confirmed, mature coins no transaction of ours spends yet, oldest
    /// first.
    fn coins(&self, devnet: &Devnet) -> Vec<(OutPoint, Amount)> {
        let used: BTreeSet<OutPoint> = self.used.values().flatten().copied().collect();
        let next = devnet.height() + 1;
        devnet
            .utxos_for(&self.script)
            .into_iter()
            .filter(|(o, c)| {
                !used.contains(o) && (!c.coinbase || next - c.height > COINBASE_MATURITY)
            })
            .map(|(o, c)| (o, c.txout.value))
            .collect()
    }

    /// What the wallet holds on chain (confirmed coins, mature or not).
    pub fn confirmed(&self, devnet: &Devnet) -> Amount {
        devnet
            .utxos_for(&self.script)
            .into_iter()
            .map(|(_, c)| c.txout.value)
            .sum()
    }

    /// A crash: what was built and never broadcast is forgotten (the
    /// runtime's wallet keeps reservations in memory only).
    pub fn crashed(&mut self, devnet: &Devnet) {
        self.used.retain(|txid, _| {
            devnet.confirmations(txid).is_some() || devnet.mempool().contains(txid)
        });
    }

    /// A transaction of ours can never confirm: its coins may pay again.
    pub fn forget(&mut self, txid: Txid) {
        self.used.remove(&txid);
    }

    /// Signs input `n` of `tx`, which spends our coin of `value`.
    fn sign(&self, tx: &mut Transaction, n: usize, value: Amount) -> Result<(), String> {
        let secp = Secp256k1::signing_only();
        let sighash = SighashCache::new(&*tx)
            .p2wpkh_signature_hash(n, &self.script, value, EcdsaSighashType::All)
            .map_err(|e| e.to_string())?;
        let signature = secp.sign_ecdsa(
            &bitcoin::secp256k1::Message::from_digest(sighash.to_byte_array()),
            &self.key,
        );
        tx.input[n].witness = Witness::p2wpkh(
            &bitcoin::ecdsa::Signature {
                signature,
                sighash_type: EcdsaSighashType::All,
            },
            &PublicKey::from_secret_key(&Secp256k1::signing_only(), &self.key),
        );
        Ok(())
    }

    fn input(outpoint: OutPoint) -> TxIn {
        TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }
    }

    /// [`beongae_node::core::Output::BuildFunding`]: a signed transaction
    /// paying `amount` to `script_pubkey` at `feerate` (sat per 1000
    /// weight) from one coin, change back, leaving at least `reserve`.
    pub fn build_funding(
        &mut self,
        devnet: &Devnet,
        script_pubkey: ScriptBuf,
        amount: Amount,
        feerate: u64,
        reserve: Amount,
    ) -> Result<Transaction, Failure> {
        let coins = self.coins(devnet);
        let total: Amount = coins.iter().map(|(_, v)| *v).sum();
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: Vec::new(),
            output: vec![
                TxOut {
                    value: amount,
                    script_pubkey,
                },
                TxOut {
                    value: Amount::ZERO,
                    script_pubkey: self.script.clone(),
                },
            ],
        };
        let weight = tx.weight().to_wu() + 2 + INPUT_WEIGHT;
        let fee = Amount::from_sat(feerate * weight / 1000 + 1);
        let refuse = |message: String| Failure {
            kind: beongae_node::core::FailureKind::Refused,
            message,
        };
        let Some(&(outpoint, value)) = coins.iter().find(|(_, v)| *v >= amount + fee) else {
            return Err(refuse(format!("no coin pays {amount} and {fee} fee")));
        };
        if total - amount - fee < reserve {
            return Err(refuse(format!("{reserve} must stay in the wallet")));
        }
        tx.input.push(Self::input(outpoint));
        tx.output[1].value = value - amount - fee;
        self.sign(&mut tx, 0, value).map_err(refuse)?;
        self.used.insert(tx.compute_txid(), vec![outpoint]);
        Ok(tx)
    }

    /// [`beongae_node::core::Output::FundClaim`]: adds one coin and a
    /// change output to `tx` so that the whole (with an unconfirmed
    /// `parent`'s weight and fee) pays `feerate`, and signs the coin.
    pub fn fund_claim(
        &mut self,
        devnet: &Devnet,
        mut tx: Transaction,
        feerate: u64,
        parent: Option<(u64, Amount)>,
        max_fee: Amount,
        replaces: Option<Txid>,
    ) -> Result<Transaction, String> {
        if let Some(old) = replaces {
            self.used.remove(&old);
        }
        let (pw, pfee) = parent.unwrap_or((0, Amount::ZERO));
        tx.output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: self.script.clone(),
        });
        let weight = Weight::from_wu(tx.weight().to_wu() + INPUT_WEIGHT).to_wu();
        let fee_for = |w: u64| Amount::from_sat(feerate * w / 1000 + 1);
        let fee = fee_for(weight + pw)
            .checked_sub(pfee)
            .unwrap_or(Amount::ZERO)
            .max(fee_for(weight));
        if fee > max_fee {
            return Err(format!("a fee of {fee} is above the {max_fee} at stake"));
        }
        let Some(&(outpoint, value)) = self
            .coins(devnet)
            .iter()
            .find(|(_, v)| *v > fee + Amount::from_sat(1_000))
        else {
            return Err(format!("no coin pays a fee of {fee}"));
        };
        tx.input.push(Self::input(outpoint));
        let last = tx.output.len() - 1;
        tx.output[last].value = value - fee;
        let n = tx.input.len() - 1;
        self.sign(&mut tx, n, value)?;
        self.used.insert(tx.compute_txid(), vec![outpoint]);
        Ok(tx)
    }

    /// [`beongae_node::core::Output::DoubleSpend`]: spends the coins of our
    /// funding transaction `tx` back to us, paying at least `feerate` and
    /// more than `tx` and its descendants (BIP 125).
    pub fn double_spend(
        &mut self,
        devnet: &Devnet,
        tx: &Transaction,
        feerate: u64,
        descendants_fee: Amount,
    ) -> Result<Transaction, String> {
        let mut values = Vec::new();
        for i in &tx.input {
            let coin = devnet
                .utxo(&i.previous_output)
                .filter(|c| c.txout.script_pubkey == self.script)
                .ok_or_else(|| format!("{} is not an unspent coin of ours", i.previous_output))?;
            values.push(coin.txout.value);
        }
        let total: Amount = values.iter().copied().sum();
        let paid = total - tx.output.iter().map(|o| o.value).sum();
        let mut spend = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: tx
                .input
                .iter()
                .map(|i| Self::input(i.previous_output))
                .collect(),
            output: vec![TxOut {
                value: Amount::ZERO,
                script_pubkey: self.script.clone(),
            }],
        };
        let weight = spend.weight().to_wu() + 2 + INPUT_WEIGHT * values.len() as u64;
        let fee = Amount::from_sat(feerate * weight / 1000 + 1)
            .max(paid + descendants_fee + Amount::from_sat(weight.div_ceil(4)));
        spend.output[0].value = total
            .checked_sub(fee)
            .ok_or_else(|| format!("the coins do not pay a fee of {fee}"))?;
        for (n, v) in values.iter().enumerate() {
            self.sign(&mut spend, n, *v)?;
        }
        self.used.remove(&tx.compute_txid());
        self.used.insert(
            spend.compute_txid(),
            spend.input.iter().map(|i| i.previous_output).collect(),
        );
        Ok(spend)
    }
}
