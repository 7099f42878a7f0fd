//! BOLT 5 on chain: the HTLC outputs of a commitment that was not revoked,
//! ours or the peer's, and how each is resolved.
//!
//! - §"Unilateral Close Handling: Local Commitment Transaction", HTLC
//!   output handling: an HTLC we offered is spent by its HTLC-timeout
//!   transaction once `cltv_expiry` is reached; one offered to us whose
//!   preimage we have by its HTLC-success transaction. Both carry the
//!   peer's `htlc_signature` from its `commitment_signed` and ours; their
//!   output is our delayed output again (swept after `to_self_delay` like
//!   `to_local`, [`crate::onchain::our_to_local_claim`]).
//! - §"Unilateral Close Handling: Remote Commitment Transaction", HTLC
//!   output handling: an HTLC we offered is spent straight to our wallet
//!   after `cltv_expiry`; one the peer offered us, with the preimage.
//! - §"Unilateral Close Handling: Local Commitment Transaction": the peer
//!   spending an HTLC we offered with its preimage tells us the preimage
//!   ([`preimage_in`]), which settles our payment.
//!
//! Pure: the caller gives the confirmed commitment, the state it was built
//! from (its [`CommitSpec`], number and per-commitment point), and keys.

use beongae_script::commitment::CommitmentNumber;
use beongae_script::htlc_tx::{htlc_tx_witness, remote_htlc_sighash};
use beongae_script::keys::derive_privkey;
use beongae_script::sign::sign_p2wsh;
use beongae_script::sweep::{SpendPath, SweepInput};
use beongae_script::ChannelType;
use beongae_wire::{Msat, PaymentHash, Preimage};
use bitcoin::ecdsa::Signature;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{ecdsa, PublicKey, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, Witness};

use crate::commitments::CommitSpec;
use crate::onchain::Claim;
use crate::sign::{CommitSignError, FundedChannel, Owner};

/// Why the HTLC outputs of a commitment could not be read or spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HtlcClaimError {
    /// The commitment could not be rebuilt from the state given.
    #[error(transparent)]
    Build(#[from] CommitSignError),
    /// The state given does not build the confirmed transaction.
    #[error("the confirmed transaction is not the commitment this state builds")]
    NotThisCommitment,
    /// We hold fewer of the peer's HTLC signatures than our commitment has
    /// HTLC outputs.
    #[error("{got} htlc signatures kept for {expected} htlc outputs")]
    SignatureCount {
        /// Kept.
        got: usize,
        /// HTLC outputs.
        expected: usize,
    },
    /// An HTLC offered to us cannot be claimed without its preimage.
    #[error("the htlc needs its preimage")]
    NoPreimage,
    /// The preimage given is not the HTLC's.
    #[error("the preimage does not hash to the htlc's payment_hash")]
    WrongPreimage,
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(String),
}

/// One HTLC output of a confirmed, unrevoked commitment, from our side.
#[derive(Debug, Clone)]
pub struct HtlcOutput {
    /// The HTLC's id (in the direction it was offered).
    pub id: u64,
    /// Whether we offered it.
    pub we_offered: bool,
    /// `payment_hash`
    pub payment_hash: PaymentHash,
    /// `cltv_expiry`
    pub cltv_expiry: u32,
    /// `amount_msat`
    pub amount: Msat,
    /// The output.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: Amount,
    /// Its HTLC script (offered or received, in the commitment owner's view).
    pub script: ScriptBuf,
    /// The commitment's `per_commitment_point` (our key in either script is
    /// our `htlc_basepoint` tweaked by it).
    pub per_commitment_point: PublicKey,
    /// Our commitment only: the unsigned HTLC-timeout (we offered) or
    /// HTLC-success transaction and the peer's signature for it.
    pub second_stage: Option<(Transaction, ecdsa::Signature)>,
}

impl HtlcOutput {
    /// Whether the path that needs no preimage (an HTLC we offered, after
    /// `cltv_expiry`) is open with the chain tip at `tip`: the spend has
    /// `nLockTime = cltv_expiry`, final in the next block (`tip + 1 >
    /// cltv_expiry`), so mempools take it once the tip reaches the expiry.
    pub fn timeout_ready(&self, tip: u32) -> bool {
        tip >= self.cltv_expiry
    }
}

/// The HTLC outputs of our own commitment `tx`, number `number`, built from
/// `spec` (our view) at our `point`, with `remote_sigs` (the peer's
/// `htlc_signature`s of the `commitment_signed` that gave us this
/// commitment, in output order). Trimmed HTLCs have no output.
pub fn our_commitment_htlcs<C: Verification>(
    secp: &Secp256k1<C>,
    funded: &FundedChannel,
    tx: &Transaction,
    spec: &CommitSpec,
    number: CommitmentNumber,
    point: &PublicKey,
    remote_sigs: &[ecdsa::Signature],
) -> Result<Vec<HtlcOutput>, HtlcClaimError> {
    let built = funded.build(secp, Owner::Local, spec, number, point)?;
    let txid = tx.compute_txid();
    if built.commitment.tx.compute_txid() != txid {
        return Err(HtlcClaimError::NotThisCommitment);
    }
    if remote_sigs.len() != built.htlc_txs.len() {
        return Err(HtlcClaimError::SignatureCount {
            got: remote_sigs.len(),
            expected: built.htlc_txs.len(),
        });
    }
    let second_stages = built
        .htlc_txs
        .iter()
        .cloned()
        .zip(remote_sigs.iter().copied());
    Ok(htlc_outputs(
        &built,
        tx,
        spec,
        point,
        true,
        second_stages.map(Some),
    ))
}

/// The outputs of commitment `tx` (as `built`) for the untrimmed HTLCs of
/// `spec`, from our side: `ours` when it is our commitment (an HTLC the
/// owner offered is one we offered), with each one's second stage.
fn htlc_outputs(
    built: &crate::sign::BuiltCommitment,
    tx: &Transaction,
    spec: &CommitSpec,
    point: &PublicKey,
    ours: bool,
    second_stages: impl Iterator<Item = Option<(Transaction, ecdsa::Signature)>>,
) -> Vec<HtlcOutput> {
    let txid = tx.compute_txid();
    built
        .commitment
        .htlcs_in_output_order()
        .zip(second_stages)
        .map(|((vout, h), second_stage)| {
            let spec_htlc = &spec.htlcs[h];
            HtlcOutput {
                id: spec_htlc.id,
                we_offered: spec_htlc.offered == ours,
                payment_hash: spec_htlc.payment_hash,
                cltv_expiry: spec_htlc.cltv_expiry,
                amount: spec_htlc.amount,
                outpoint: OutPoint { txid, vout },
                value: tx.output[vout as usize].value,
                script: built.commitment.outputs[vout as usize]
                    .1
                    .clone()
                    .unwrap_or_default(),
                per_commitment_point: *point,
                second_stage,
            }
        })
        .collect()
}

/// The HTLC outputs of the peer's (unrevoked) commitment `tx`, number
/// `number`, built from `spec` (the peer's view) at its `point`.
pub fn their_commitment_htlcs<C: Verification>(
    secp: &Secp256k1<C>,
    funded: &FundedChannel,
    tx: &Transaction,
    spec: &CommitSpec,
    number: CommitmentNumber,
    point: &PublicKey,
) -> Result<Vec<HtlcOutput>, HtlcClaimError> {
    let built = funded.build(secp, Owner::Remote, spec, number, point)?;
    let txid = tx.compute_txid();
    if built.commitment.tx.compute_txid() != txid {
        return Err(HtlcClaimError::NotThisCommitment);
    }
    Ok(htlc_outputs(
        &built,
        tx,
        spec,
        point,
        false,
        std::iter::repeat(None),
    ))
}

/// Our HTLC-timeout (`preimage` none, an HTLC we offered) or HTLC-success
/// transaction for an HTLC output of our commitment, signed by both
/// (BOLT 3 witness `0 <remotehtlcsig> <localhtlcsig> <preimage or empty>`).
///
/// Our signature is `SIGHASH_ALL` (BOLT 5: the local signature "MUST use
/// SIGHASH_ALL", or anyone could attach inputs and outputs and pin it).
/// With `option_anchors` the transaction pays no fee and the peer signed it
/// `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`: the wallet first adds inputs and
/// a change output (after output 0), and that transaction, `funded`, is
/// what we sign. Without `funded` it is the bare second stage (its fee paid
/// from the HTLC without anchors; with anchors, the placeholder the wallet
/// starts from, its witness the final size).
pub fn signed_htlc_tx<C: Signing>(
    secp: &Secp256k1<C>,
    funded_channel: &FundedChannel,
    out: &HtlcOutput,
    htlc_base_key: &SecretKey,
    preimage: Option<&Preimage>,
    funded: Option<Transaction>,
) -> Result<Transaction, HtlcClaimError> {
    let Some((bare, remote_sig)) = &out.second_stage else {
        return Err(HtlcClaimError::NotThisCommitment);
    };
    if !out.we_offered {
        check_preimage(out, preimage)?;
    }
    let mut tx = match funded {
        None => bare.clone(),
        Some(tx) => {
            // What the peer's signature covers must be as it signed it.
            let same = tx.version == bare.version
                && tx.lock_time == bare.lock_time
                && tx.input.first().map(|i| (i.previous_output, i.sequence))
                    == Some((bare.input[0].previous_output, bare.input[0].sequence))
                && tx.output.first() == bare.output.first();
            if !same {
                return Err(HtlcClaimError::NotThisCommitment);
            }
            tx
        }
    };
    let key = derive_privkey(secp, htlc_base_key, &out.per_commitment_point)
        .map_err(|e| HtlcClaimError::Sign(e.to_string()))?;
    let ours = sign_p2wsh(
        secp,
        &tx,
        0,
        &out.script,
        out.value,
        bitcoin::sighash::EcdsaSighashType::All,
        &key,
    )
    .map_err(|e| HtlcClaimError::Sign(e.to_string()))?;
    let theirs = Signature {
        signature: *remote_sig,
        sighash_type: remote_htlc_sighash(funded_channel.channel_type),
    };
    tx.input[0].witness = htlc_tx_witness(
        &theirs,
        &ours,
        if out.we_offered { None } else { preimage },
        &out.script,
    );
    Ok(tx)
}

/// Our claim on an HTLC output of the peer's commitment, to the wallet: an
/// HTLC we offered after `cltv_expiry` (`<remotehtlcsig> <>`), one offered
/// to us with its `preimage` (`<remotehtlcsig> <payment_preimage>`).
pub fn their_htlc_claim<C: Signing>(
    secp: &Secp256k1<C>,
    funded: &FundedChannel,
    out: &HtlcOutput,
    htlc_base_key: &SecretKey,
    preimage: Option<&Preimage>,
) -> Result<Claim, HtlcClaimError> {
    let anchors = funded.channel_type == ChannelType::Anchors;
    let path = if out.we_offered {
        SpendPath::ReceivedHtlcTimeout {
            cltv_expiry: out.cltv_expiry,
            anchors,
        }
    } else {
        check_preimage(out, preimage)?;
        SpendPath::OfferedHtlcPreimage {
            preimage: *preimage.ok_or(HtlcClaimError::NoPreimage)?,
            anchors,
        }
    };
    let key = derive_privkey(secp, htlc_base_key, &out.per_commitment_point)
        .map_err(|e| HtlcClaimError::Sign(e.to_string()))?;
    Ok(Claim {
        input: SweepInput {
            outpoint: out.outpoint,
            value: out.value,
            witness_script: Some(out.script.clone()),
            path,
        },
        key,
    })
}

fn check_preimage(out: &HtlcOutput, preimage: Option<&Preimage>) -> Result<(), HtlcClaimError> {
    match preimage {
        None => Err(HtlcClaimError::NoPreimage),
        Some(p) if p.payment_hash() != out.payment_hash => Err(HtlcClaimError::WrongPreimage),
        Some(_) => Ok(()),
    }
}

/// The preimage of `payment_hash` if `witness` (of an input spending an
/// HTLC output) reveals it: the peer's HTLC-success transaction on its
/// commitment, or its claim with the preimage on ours, carries it as a
/// 32-byte witness item (BOLT 5: "MUST extract the payment preimage from
/// the ... input witness").
pub fn preimage_in(witness: &Witness, payment_hash: &PaymentHash) -> Option<Preimage> {
    witness.iter().find_map(|item| {
        let bytes: [u8; 32] = item.try_into().ok()?;
        (sha256::Hash::hash(&bytes).to_byte_array() == payment_hash.0).then_some(Preimage(bytes))
    })
}
