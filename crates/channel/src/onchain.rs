//! BOLT 5 on chain, the parts every case shares: reading a commitment
//! transaction's number, the outputs of a commitment that are ours to
//! claim and the signed transaction sweeping them to our wallet. The peer's
//! revoked commitments are in [`crate::penalty`].

use beongae_script::keys::{derive_privkey, CommitmentKeys, KeyError};
use beongae_script::scripts::{
    offered_htlc_script, to_local_script, to_remote_anchors_script, to_remote_script_pubkey,
    HtlcKeys,
};
use beongae_script::sweep::{build_sweep, sign_sweep, SpendPath, SweepError, SweepInput};
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::PaymentHash;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, Txid};

use crate::sign::FundedChannel;

/// One output we claim, with the key that signs it.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The output and how it is spent.
    pub input: SweepInput,
    /// The key that signs it.
    pub(crate) key: SecretKey,
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

/// A commitment of this channel read by its outputs alone, for one we no
/// longer hold the state of (an old commitment of ours, revoked, that a
/// copy of our store from before broadcast): it is ours, at our
/// `per_commitment_point` for its number, when one of its outputs is our
/// `to_local` (BOLT 3 §"`to_local` Output": our delayed key and the peer's
/// revocation key at that point, our delay), or pays the peer's
/// `to_remote` to its static `payment_basepoint` while that differs from
/// ours (a peer copying our basepoint would have every commitment of its
/// own pay "its" `to_remote`, and its revoked ones go unpunished).
/// `None` when neither is there: a commitment of the peer's pays our
/// `to_remote` and its own `to_local`, from its own delayed and our
/// revocation basepoints at its point, which can match ours only if it
/// repeats our basepoints: [`crate::open::check_keys_are_theirs`] refuses
/// such a peer when the channel opens.
pub fn ours_by_outputs<C: Verification>(
    secp: &Secp256k1<C>,
    funded: &FundedChannel,
    tx: &Transaction,
    per_commitment_point: &PublicKey,
) -> Option<CommitmentKeys> {
    let keys = CommitmentKeys::derive(
        secp,
        &funded.local_keys,
        &funded.remote_keys,
        per_commitment_point,
    )
    .ok()?;
    let to_local = to_local_script(
        &keys.revocation_key,
        funded.local_to_self_delay,
        &keys.local_delayed_key,
    )
    .to_p2wsh();
    let theirs = funded.remote_keys.payment_basepoint;
    let their_to_remote = (theirs != funded.local_keys.payment_basepoint)
        .then(|| to_remote_script_pubkey(funded.channel_type, &theirs));
    tx.output
        .iter()
        .any(|o| o.script_pubkey == to_local || Some(&o.script_pubkey) == their_to_remote.as_ref())
        .then_some(keys)
}

/// The outputs of our commitment `tx` (with its `keys`, from
/// [`ours_by_outputs`]) that hold an HTLC we offered with `payment_hash`
/// (BOLT 3 §"Offered HTLC Outputs"). Found by script, so without the
/// commitment's state; the script has no expiry nor amount in it, so every
/// HTLC of ours with that hash (the parts of one payment) has the same
/// one, and each of them may be in any of these outputs.
pub fn our_offered_htlc_outputs(
    funded: &FundedChannel,
    tx: &Transaction,
    keys: &CommitmentKeys,
    payment_hash: &PaymentHash,
) -> Vec<OutPoint> {
    let script = offered_htlc_script(
        HtlcKeys {
            revocation_key: &keys.revocation_key,
            local_htlc_key: &keys.local_htlc_key,
            remote_htlc_key: &keys.remote_htlc_key,
        },
        payment_hash,
        funded.channel_type,
    )
    .to_p2wsh();
    let txid = tx.compute_txid();
    tx.output
        .iter()
        .enumerate()
        .filter(|(_, o)| o.script_pubkey == script)
        .map(|(vout, _)| OutPoint {
            txid,
            vout: vout as u32,
        })
        .collect()
}

/// The first output of `tx` paying `script_pubkey` not `used` yet.
pub(crate) fn take_output(
    tx: &Transaction,
    txid: Txid,
    used: &mut [bool],
    script_pubkey: &ScriptBuf,
) -> Option<(OutPoint, Amount)> {
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
}

/// Our `to_remote` in a commitment of the peer's: P2WPKH to our
/// `payment_basepoint` (static_remotekey), or its P2WSH with a 1-block CSV
/// (anchors).
pub(crate) fn to_remote_claim(
    funded: &FundedChannel,
    tx: &Transaction,
    used: &mut [bool],
    payment_base: SecretKey,
) -> Option<Claim> {
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
    let (outpoint, value) = take_output(tx, tx.compute_txid(), used, &script_pubkey)?;
    Some(Claim {
        input: SweepInput {
            outpoint,
            value,
            witness_script,
            path,
        },
        key: payment_base,
    })
}

/// BOLT 5 §"Unilateral Close Handling: Remote Commitment Transaction": our
/// `to_remote` in the peer's (unrevoked) commitment `tx`, "resolved" to our
/// wallet (with anchors, spendable one block after `tx` confirms).
pub fn their_commitment_claims(
    funded: &FundedChannel,
    tx: &Transaction,
    payment_base: SecretKey,
) -> Vec<Claim> {
    let mut used = vec![false; tx.output.len()];
    to_remote_claim(funded, tx, &mut used, payment_base)
        .into_iter()
        .collect()
}

/// BOLT 5 §"Unilateral Close Handling: Local Commitment Transaction": our
/// `to_local` in our own commitment `tx` (number `number`), spendable
/// `to_self_delay` blocks after `tx` confirms ("MUST spend the output ...
/// once the delay has passed", with our delayed key for this commitment).
pub fn our_to_local_claim<C: Signing + Verification>(
    secp: &Secp256k1<C>,
    funded: &FundedChannel,
    tx: &Transaction,
    per_commitment_point: &PublicKey,
    delayed_payment_base: &SecretKey,
) -> Result<Option<Claim>, KeyError> {
    let keys = CommitmentKeys::derive(
        secp,
        &funded.local_keys,
        &funded.remote_keys,
        per_commitment_point,
    )?;
    let script = to_local_script(
        &keys.revocation_key,
        funded.local_to_self_delay,
        &keys.local_delayed_key,
    );
    let path = SpendPath::Delayed {
        to_self_delay: funded.local_to_self_delay,
    };
    let key = derive_privkey(secp, delayed_payment_base, per_commitment_point)?;
    Ok(p2wsh_claim(tx, script, path, key))
}

/// The claim on the (first) output of `tx` paying P2WSH `script`.
pub(crate) fn p2wsh_claim(
    tx: &Transaction,
    script: ScriptBuf,
    path: SpendPath,
    key: SecretKey,
) -> Option<Claim> {
    let mut used = vec![false; tx.output.len()];
    let (outpoint, value) = take_output(tx, tx.compute_txid(), &mut used, &script.to_p2wsh())?;
    Some(Claim {
        input: SweepInput {
            outpoint,
            value,
            witness_script: Some(script),
            path,
        },
        key,
    })
}

/// A signed transaction taking `claims` to `destination` at `feerate`.
pub fn claim_transaction<C: Signing>(
    secp: &Secp256k1<C>,
    claims: &[Claim],
    destination: ScriptBuf,
    feerate: FeeratePerKw,
) -> Result<Transaction, SweepError> {
    let inputs: Vec<SweepInput> = claims.iter().map(|c| c.input.clone()).collect();
    let dust = crate::close::dust_limit_for(&destination);
    let mut tx = build_sweep(&inputs, destination, feerate, dust)?;
    let keys: Vec<Option<SecretKey>> = claims.iter().map(|c| Some(c.key)).collect();
    sign_sweep(secp, &mut tx, &inputs, &keys)?;
    Ok(tx)
}

/// BOLT 5 / BOLT 3 `option_anchors`: the start of a child transaction that
/// spends our anchor of our commitment `tx` so that a wallet input can pay
/// for the commitment (CPFP): input 0 our anchor (330 sat), output 0 the
/// same 330 sat to `destination`. It pays no fee itself: the wallet adds
/// inputs and change, and then [`sign_anchor_child`] signs the anchor
/// (`SIGHASH_ALL`, so that nobody can reuse our signature in another
/// transaction). Returns it, signed as is (a placeholder of the final
/// size), with the anchor output it spends; `None` if `tx` has no anchor
/// of ours.
pub fn anchor_child<C: Signing>(
    secp: &Secp256k1<C>,
    funded: &FundedChannel,
    tx: &Transaction,
    funding_key: &SecretKey,
    destination: ScriptBuf,
) -> Option<(Transaction, bitcoin::TxOut)> {
    use beongae_script::scripts::anchor_script;
    let script = anchor_script(&funded.local_keys.funding_pubkey);
    let mut used = vec![false; tx.output.len()];
    let (outpoint, value) = take_output(tx, tx.compute_txid(), &mut used, &script.to_p2wsh())?;
    let child = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: bitcoin::Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: bitcoin::Witness::new(),
        }],
        output: vec![bitcoin::TxOut {
            value,
            script_pubkey: destination,
        }],
    };
    let prevout = bitcoin::TxOut {
        value,
        script_pubkey: script.to_p2wsh(),
    };
    let child = sign_anchor_child(secp, funded, child, &prevout, funding_key)?;
    Some((child, prevout))
}

/// Signs input 0 of `child` (our anchor, `prevout`) with our funding key,
/// `SIGHASH_ALL` over `child` as it is (with the wallet's inputs and
/// change).
pub fn sign_anchor_child<C: Signing>(
    secp: &Secp256k1<C>,
    funded: &FundedChannel,
    mut child: Transaction,
    prevout: &bitcoin::TxOut,
    funding_key: &SecretKey,
) -> Option<Transaction> {
    use beongae_script::scripts::anchor_script;
    use beongae_script::sign::sign_p2wsh;
    use bitcoin::sighash::EcdsaSighashType;
    let script = anchor_script(&funded.local_keys.funding_pubkey);
    if prevout.script_pubkey != script.to_p2wsh() {
        return None;
    }
    let outpoint = child.input.first()?.previous_output;
    let sig = sign_p2wsh(
        secp,
        &child,
        0,
        &script,
        prevout.value,
        EcdsaSighashType::All,
        funding_key,
    )
    .ok()?;
    let input = SweepInput {
        outpoint,
        value: prevout.value,
        witness_script: Some(script),
        path: SpendPath::Anchor,
    };
    child.input[0].witness = beongae_script::sweep::witness_for(&input, Some(&sig));
    Some(child)
}
