//! BOLT 3 Appendix B: the funding transaction, rebuilt byte for byte and
//! checked by Bitcoin Core's script interpreter (libbitcoinconsensus).

#![allow(clippy::unwrap_used)]

mod common;

use beongae_script::funding::funding_script_pubkey;
use beongae_script::scripts::funding_script;
use bitcoin::absolute::LockTime;
use bitcoin::consensus::encode::{deserialize, serialize_hex};
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use common::{load, point, s, secret, unhex};

#[test]
fn appendix_b_funding_transaction() {
    let secp = Secp256k1::new();
    let v = &load("bolt03_appendix_b.json")["values"];
    let local = point(s(v, "local_funding_pubkey"));
    let remote = point(s(v, "remote_funding_pubkey"));
    assert_eq!(
        funding_script(&local, &remote).to_bytes(),
        unhex(s(v, "funding witness script"))
    );

    let coinbase: Transaction = deserialize(&unhex(s(v, "Block 1 coinbase transaction"))).unwrap();
    let coinbase_txid: Txid = s(v, "input txid").parse().unwrap();
    assert_eq!(coinbase.compute_txid(), coinbase_txid);
    let spent = coinbase.output[0].clone();
    assert_eq!(
        spent.value,
        Amount::from_sat(s(v, "input satoshis").parse().unwrap())
    );

    let key = secret(s(v, "Block 1 coinbase privkey"));
    let pubkey = bitcoin::PublicKey::new(PublicKey::from_secret_key(&secp, &key));
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: coinbase_txid,
                vout: 0,
            },
            script_sig: Default::default(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![
            TxOut {
                value: Amount::from_sat(s(v, "funding satoshis").parse().unwrap()),
                script_pubkey: funding_script_pubkey(&local, &remote),
            },
            TxOut {
                value: Amount::from_sat(s(v, "change satoshis").parse().unwrap()),
                // Change goes to a P2WPKH of the same key.
                script_pubkey: bitcoin::ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash().unwrap()),
            },
        ],
    };
    let sighash = SighashCache::new(&tx)
        .legacy_signature_hash(0, &spent.script_pubkey, EcdsaSighashType::All.to_u32())
        .unwrap();
    let sig = bitcoin::ecdsa::Signature {
        signature: secp.sign_ecdsa(&Message::from(sighash), &key),
        sighash_type: EcdsaSighashType::All,
    };
    tx.input[0].script_sig = Builder::new()
        .push_slice(PushBytesBuf::try_from(sig.serialize().to_vec()).unwrap())
        .push_key(&pubkey)
        .into_script();

    assert_eq!(serialize_hex(&tx), s(v, "funding tx"));
    assert_eq!(tx.compute_txid().to_string(), s(v, "txid"));
    assert_eq!(s(v, "funding output"), "0");

    // Bitcoin Core's interpreter accepts the spend of the coinbase output...
    spent
        .script_pubkey
        .verify(0, spent.value, &bitcoin::consensus::serialize(&tx))
        .unwrap();
    // ...and rejects it with another key's signature.
    let mut forged = tx.clone();
    let other = secret("0101010101010101010101010101010101010101010101010101010101010101");
    let bad = bitcoin::ecdsa::Signature {
        signature: secp.sign_ecdsa(&Message::from(sighash), &other),
        sighash_type: EcdsaSighashType::All,
    };
    forged.input[0].script_sig = Builder::new()
        .push_slice(PushBytesBuf::try_from(bad.serialize().to_vec()).unwrap())
        .push_key(&pubkey)
        .into_script();
    assert!(spent
        .script_pubkey
        .verify(0, spent.value, &bitcoin::consensus::serialize(&forged))
        .is_err());
}
