//! BOLT 3 §"HTLC-Timeout and HTLC-Success Transactions".

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa::Signature;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::transaction::Version;
use bitcoin::{OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};

use beongae_wire::Preimage;

use crate::commitment::Htlc;
use crate::fees::{self, FeeratePerKw};
use crate::keys::CommitmentKeys;
use crate::scripts;
use crate::ChannelType;

/// The second-stage transaction for an untrimmed HTLC of a commitment:
/// HTLC-timeout for an offered HTLC (locktime `cltv_expiry`), HTLC-success
/// for a received one (locktime 0). Input sequence is 1 with `option_anchors`,
/// else 0; the output pays the `to_local`-shaped script with the HTLC amount
/// minus the fee (zero with anchors). `None` for an HTLC whose amount does
/// not exceed that fee: it is trimmed and has no second stage.
pub fn build_htlc_tx(
    commitment_txid: Txid,
    output_index: u32,
    htlc: &Htlc,
    keys: &CommitmentKeys,
    to_self_delay: u16,
    feerate: FeeratePerKw,
    channel_type: ChannelType,
) -> Option<Transaction> {
    let fee = fees::second_stage_fee(htlc.offered, channel_type, feerate);
    let value = htlc
        .amount
        .to_amount_floor()
        .checked_sub(fee)
        .filter(|v| *v > bitcoin::Amount::ZERO)?;
    let script =
        scripts::to_local_script(&keys.revocation_key, to_self_delay, &keys.local_delayed_key);
    Some(Transaction {
        version: Version::TWO,
        lock_time: LockTime::from_consensus(if htlc.offered { htlc.cltv_expiry } else { 0 }),
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: commitment_txid,
                vout: output_index,
            },
            script_sig: ScriptBuf::new(),
            sequence: match channel_type {
                ChannelType::StaticRemoteKey => Sequence::ZERO,
                ChannelType::Anchors => Sequence(1),
            },
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value,
            script_pubkey: script.to_p2wsh(),
        }],
    })
}

/// The sighash type the counterparty uses for its signature on our HTLC
/// transactions: `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` with `option_anchors`
/// (so we can add fee inputs, BOLT 3 / BOLT 5), else `SIGHASH_ALL`.
pub fn remote_htlc_sighash(channel_type: ChannelType) -> EcdsaSighashType {
    match channel_type {
        ChannelType::StaticRemoteKey => EcdsaSighashType::All,
        ChannelType::Anchors => EcdsaSighashType::SinglePlusAnyoneCanPay,
    }
}

/// The witness of an HTLC transaction's input:
/// `0 <remotehtlcsig> <localhtlcsig> <payment_preimage>` (success) or
/// `0 <remotehtlcsig> <localhtlcsig> <>` (timeout), then the HTLC script.
pub fn htlc_tx_witness(
    remote_sig: &Signature,
    local_sig: &Signature,
    preimage: Option<&Preimage>,
    htlc_script: &ScriptBuf,
) -> Witness {
    let mut w = Witness::new();
    w.push([]);
    w.push(remote_sig.serialize());
    w.push(local_sig.serialize());
    match preimage {
        Some(p) => w.push(p.0),
        None => w.push([]),
    }
    w.push(htlc_script.as_bytes());
    w
}
