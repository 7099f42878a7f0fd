//! From a [`CommitSpec`] to the transactions and signatures of
//! `commitment_signed` (BOLT 2 §"Committing Updates So Far:
//! `commitment_signed`"): the sender signs the receiver's commitment
//! transaction and, in output order, every HTLC transaction of its untrimmed
//! HTLCs; the receiver rebuilds its own commitment from its own state and
//! MUST fail the channel if any signature does not verify.
//!
//! The transactions themselves come from `beongae-script` (BOLT 3); this
//! module only decides, for each commitment owner, whose keys, delay and dust
//! limit apply.

use beongae_script::commitment::{
    build_commitment, CommitmentError, CommitmentNumber, CommitmentSpec, CommitmentTx, Htlc,
    ObscuringFactor,
};
use beongae_script::htlc_tx::{build_htlc_tx, remote_htlc_sighash};
use beongae_script::keys::{derive_privkey, ChannelPublicKeys, CommitmentKeys, KeyError};
use beongae_script::scripts::funding_script;
use beongae_script::sign::{sign_p2wsh, verify_p2wsh, SignError};
use beongae_script::ChannelType;
use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::{ecdsa, PublicKey, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, Transaction};

use crate::commitments::CommitSpec;

/// The facts of a funded channel that every commitment depends on, from our
/// side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundedChannel {
    /// Commitment format.
    pub channel_type: ChannelType,
    /// The funding output.
    pub funding_outpoint: OutPoint,
    /// Its value.
    pub funding_amount: Amount,
    /// From both `payment_basepoint`s (BOLT 3 "Commitment Transaction").
    pub obscuring_factor: ObscuringFactor,
    /// Whether we opened the channel (and pay fee and anchors).
    pub we_are_funder: bool,
    /// Our basepoints and funding key.
    pub local_keys: ChannelPublicKeys,
    /// The peer's.
    pub remote_keys: ChannelPublicKeys,
    /// The delay on our outputs in our commitment (the peer's `to_self_delay`).
    pub local_to_self_delay: u16,
    /// The delay on the peer's outputs in its commitment (our `to_self_delay`).
    pub remote_to_self_delay: u16,
    /// Our `dust_limit_satoshis` (our commitment).
    pub local_dust_limit: Amount,
    /// The peer's (its commitment).
    pub remote_dust_limit: Amount,
}

/// The secrets we sign with.
#[derive(Clone, Copy)]
pub struct SigningKeys {
    /// The secret of our `funding_pubkey`.
    pub funding_key: SecretKey,
    /// The secret of our `htlc_basepoint`.
    pub htlc_base_key: SecretKey,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys(..)")
    }
}

/// Whose commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Ours.
    Local,
    /// The peer's.
    Remote,
}

/// The signatures of `commitment_signed`: `signature` over the commitment
/// transaction and `htlc_signature`s in the order of the HTLC outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentSignatures {
    /// `signature`
    pub signature: ecdsa::Signature,
    /// `htlc_signature`, one per untrimmed HTLC, in output order.
    pub htlc_signatures: Vec<ecdsa::Signature>,
}

/// One commitment transaction with what is needed to sign its HTLC
/// transactions.
#[derive(Debug, Clone)]
pub struct BuiltCommitment {
    /// The transaction and its outputs.
    pub commitment: CommitmentTx,
    /// Its keys.
    pub keys: CommitmentKeys,
    /// The HTLCs as the owner sees them (indexes of
    /// [`CommitmentTx::outputs`] refer to this list).
    pub htlcs: Vec<Htlc>,
    /// The HTLC transactions of the untrimmed HTLCs, in output order.
    pub htlc_txs: Vec<Transaction>,
}

/// Why a commitment could not be built or a signature did not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommitSignError {
    /// A key derivation failed (a point at infinity; practically impossible).
    #[error("key derivation: {0}")]
    Key(#[from] KeyError),
    /// The commitment could not be built.
    #[error("commitment: {0}")]
    Commitment(#[from] CommitmentError),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(#[from] SignError),
    /// BOLT 2: "if `signature` is not valid for its local commitment
    /// transaction ... MUST send a warning and close the connection, or send
    /// an error and fail the channel."
    #[error("commitment signature does not verify")]
    BadCommitmentSignature,
    /// BOLT 2: "if `num_htlcs` is not equal to the number of HTLC outputs in
    /// the local commitment transaction: MUST fail the channel".
    #[error("{got} htlc signatures for {expected} htlc outputs")]
    HtlcSignatureCount {
        /// Received.
        got: usize,
        /// HTLC outputs.
        expected: usize,
    },
    /// BOLT 2: "if any `htlc_signature` is not valid for the corresponding
    /// HTLC transaction ... MUST fail the channel".
    #[error("htlc signature {0} does not verify")]
    BadHtlcSignature(usize),
    /// An untrimmed HTLC with nothing left after its second-stage fee.
    #[error("htlc output {0} cannot pay its second-stage fee")]
    HtlcBelowFee(u32),
}

impl FundedChannel {
    /// Builds `owner`'s commitment number `number` holding `spec` (in the
    /// owner's view) at the owner's `per_commitment_point`, with its HTLC
    /// transactions.
    pub fn build<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        owner: Owner,
        spec: &CommitSpec,
        number: CommitmentNumber,
        per_commitment_point: &PublicKey,
    ) -> Result<BuiltCommitment, CommitSignError> {
        let (owner_keys, other_keys, delay, dust, owner_is_funder) = match owner {
            Owner::Local => (
                &self.local_keys,
                &self.remote_keys,
                self.local_to_self_delay,
                self.local_dust_limit,
                self.we_are_funder,
            ),
            Owner::Remote => (
                &self.remote_keys,
                &self.local_keys,
                self.remote_to_self_delay,
                self.remote_dust_limit,
                !self.we_are_funder,
            ),
        };
        let keys = CommitmentKeys::derive(secp, owner_keys, other_keys, per_commitment_point)?;
        let htlcs: Vec<Htlc> = spec
            .htlcs
            .iter()
            .map(|h| Htlc {
                offered: h.offered,
                amount: h.amount,
                cltv_expiry: h.cltv_expiry,
                payment_hash: h.payment_hash,
            })
            .collect();
        let commitment = build_commitment(&CommitmentSpec {
            channel_type: self.channel_type,
            funding_outpoint: self.funding_outpoint,
            funding_amount: self.funding_amount,
            commitment_number: number,
            obscuring_factor: self.obscuring_factor,
            to_self_delay: delay,
            dust_limit: dust,
            feerate: spec.feerate,
            to_local: spec.to_local,
            to_remote: spec.to_remote,
            owner_is_funder,
            keys: &keys,
            htlcs: &htlcs,
        })?;
        let txid = commitment.tx.compute_txid();
        let htlc_txs = commitment
            .htlcs_in_output_order()
            .map(|(vout, h)| {
                build_htlc_tx(
                    txid,
                    vout,
                    &htlcs[h],
                    &keys,
                    delay,
                    spec.feerate,
                    self.channel_type,
                )
                .ok_or(CommitSignError::HtlcBelowFee(vout))
            })
            .collect::<Result<_, _>>()?;
        Ok(BuiltCommitment {
            commitment,
            keys,
            htlcs,
            htlc_txs,
        })
    }

    /// The signatures of our `commitment_signed` for the peer's commitment
    /// `built` (from [`FundedChannel::build`] with [`Owner::Remote`]).
    pub fn sign_remote<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        built: &BuiltCommitment,
        secrets: &SigningKeys,
    ) -> Result<CommitmentSignatures, CommitSignError> {
        let funding = funding_script(
            &self.local_keys.funding_pubkey,
            &self.remote_keys.funding_pubkey,
        );
        let signature = sign_p2wsh(
            secp,
            &built.commitment.tx,
            0,
            &funding,
            self.funding_amount,
            EcdsaSighashType::All,
            &secrets.funding_key,
        )?
        .signature;
        // Our key in the peer's HTLC scripts: its `remote_htlcpubkey`.
        let htlc_key = derive_privkey(
            secp,
            &secrets.htlc_base_key,
            &built.keys.per_commitment_point,
        )?;
        let sighash = remote_htlc_sighash(self.channel_type);
        let htlc_signatures = self
            .htlc_inputs(built)
            .map(|(tx, script, value)| {
                Ok(sign_p2wsh(secp, tx, 0, &script, value, sighash, &htlc_key)?.signature)
            })
            .collect::<Result<_, CommitSignError>>()?;
        Ok(CommitmentSignatures {
            signature,
            htlc_signatures,
        })
    }

    /// Checks a received `commitment_signed` against our commitment `built`
    /// (from [`FundedChannel::build`] with [`Owner::Local`]).
    pub fn verify_local<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        built: &BuiltCommitment,
        sigs: &CommitmentSignatures,
    ) -> Result<(), CommitSignError> {
        let funding = funding_script(
            &self.local_keys.funding_pubkey,
            &self.remote_keys.funding_pubkey,
        );
        let commitment_sig = Signature {
            signature: sigs.signature,
            sighash_type: EcdsaSighashType::All,
        };
        verify_p2wsh(
            secp,
            &built.commitment.tx,
            0,
            &funding,
            self.funding_amount,
            &commitment_sig,
            &self.remote_keys.funding_pubkey,
        )
        .map_err(|_| CommitSignError::BadCommitmentSignature)?;
        if sigs.htlc_signatures.len() != built.htlc_txs.len() {
            return Err(CommitSignError::HtlcSignatureCount {
                got: sigs.htlc_signatures.len(),
                expected: built.htlc_txs.len(),
            });
        }
        let sighash_type = remote_htlc_sighash(self.channel_type);
        for (n, ((tx, script, value), sig)) in self
            .htlc_inputs(built)
            .zip(&sigs.htlc_signatures)
            .enumerate()
        {
            let sig = Signature {
                signature: *sig,
                sighash_type,
            };
            verify_p2wsh(
                secp,
                tx,
                0,
                &script,
                value,
                &sig,
                &built.keys.remote_htlc_key,
            )
            .map_err(|_| CommitSignError::BadHtlcSignature(n))?;
        }
        Ok(())
    }

    /// Each HTLC transaction with the script and value of the output it spends.
    fn htlc_inputs<'a>(
        &self,
        built: &'a BuiltCommitment,
    ) -> impl Iterator<Item = (&'a Transaction, bitcoin::ScriptBuf, Amount)> + 'a {
        built
            .commitment
            .htlcs_in_output_order()
            .zip(&built.htlc_txs)
            .map(|((vout, _), tx)| {
                let (_, script) = &built.commitment.outputs[vout as usize];
                let value = built.commitment.tx.output[vout as usize].value;
                (tx, script.clone().unwrap_or_default(), value)
            })
    }
}
