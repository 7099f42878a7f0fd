//! Test helpers: a one-key P2WPKH wallet that signs its own spends.

#![allow(dead_code, clippy::unwrap_used)]

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

pub const T0: u32 = 1_700_000_000;

pub struct Wallet {
    pub secp: Secp256k1<bitcoin::secp256k1::All>,
    pub key: SecretKey,
    pub pubkey: PublicKey,
    pub spk: ScriptBuf,
}

impl Wallet {
    pub fn new(b: u8) -> Wallet {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[b; 32]).unwrap();
        let pubkey = PublicKey::from_secret_key(&secp, &key);
        let spk = ScriptBuf::new_p2wpkh(&bitcoin::CompressedPublicKey(pubkey).wpubkey_hash());
        Wallet {
            secp,
            key,
            pubkey,
            spk,
        }
    }

    /// Spends `inputs` (ours, P2WPKH) to `outputs`, with per-input sequences and a locktime.
    pub fn spend(
        &self,
        inputs: &[(OutPoint, Amount, Sequence)],
        outputs: Vec<TxOut>,
        lock: u32,
    ) -> Transaction {
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::from_consensus(lock),
            input: inputs
                .iter()
                .map(|(o, _, s)| TxIn {
                    previous_output: *o,
                    script_sig: ScriptBuf::new(),
                    sequence: *s,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs,
        };
        let sigs: Vec<_> = inputs
            .iter()
            .enumerate()
            .map(|(n, (_, value, _))| {
                let h = SighashCache::new(&tx)
                    .p2wpkh_signature_hash(n, &self.spk, *value, EcdsaSighashType::All)
                    .unwrap();
                bitcoin::ecdsa::Signature {
                    signature: self.secp.sign_ecdsa(&Message::from(h), &self.key),
                    sighash_type: EcdsaSighashType::All,
                }
            })
            .collect();
        for (input, sig) in tx.input.iter_mut().zip(sigs) {
            input.witness = Witness::p2wpkh(&sig, &self.pubkey);
        }
        tx
    }

    pub fn pay(
        &self,
        from: (OutPoint, Amount),
        to: &ScriptBuf,
        amount: Amount,
        fee: Amount,
    ) -> Transaction {
        let change = from.1 - amount - fee;
        self.spend(
            &[(from.0, from.1, Sequence::ENABLE_RBF_NO_LOCKTIME)],
            vec![
                TxOut {
                    value: amount,
                    script_pubkey: to.clone(),
                },
                TxOut {
                    value: change,
                    script_pubkey: self.spk.clone(),
                },
            ],
            0,
        )
    }
}
