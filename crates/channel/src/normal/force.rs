//! Our latest commitment, fully signed, for when the channel fails (BOLT 5
//! "Failing a Channel": "MUST broadcast its latest commitment transaction"
//! when it cannot close cooperatively). Sweeping its outputs is the
//! on-chain enforcement work that follows.

use beongae_script::commitment::CommitmentNumber;
use beongae_script::funding::funding_witness;
use beongae_script::scripts::funding_script;
use beongae_script::sign::sign_p2wsh;
use bitcoin::secp256k1::{PublicKey, Secp256k1, Signing, Verification};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::Transaction;

use super::{ChannelError, NormalChannel};
use crate::commitments::CommitSpec;
use crate::sign::{CommitSignError, FundedChannel, Owner, SigningKeys};

impl FundedChannel {
    /// Our commitment `n` for `spec` with our funding signature added to
    /// the peer's `theirs`.
    pub fn signed_local_commitment<C: Signing + Verification>(
        &self,
        secp: &Secp256k1<C>,
        spec: &CommitSpec,
        n: CommitmentNumber,
        point: &PublicKey,
        signing: &SigningKeys,
        theirs: bitcoin::secp256k1::ecdsa::Signature,
    ) -> Result<Transaction, ChannelError> {
        let built = self.build(secp, Owner::Local, spec, n, point)?;
        let script = funding_script(
            &self.local_keys.funding_pubkey,
            &self.remote_keys.funding_pubkey,
        );
        let mut tx = built.commitment.tx;
        let ours = sign_p2wsh(
            secp,
            &tx,
            0,
            &script,
            self.funding_amount,
            EcdsaSighashType::All,
            &signing.funding_key,
        )
        .map_err(CommitSignError::from)?;
        let theirs = bitcoin::ecdsa::Signature {
            signature: theirs,
            sighash_type: EcdsaSighashType::All,
        };
        tx.input[0].witness = funding_witness(
            &self.local_keys.funding_pubkey,
            &ours,
            &self.remote_keys.funding_pubkey,
            &theirs,
        );
        Ok(tx)
    }
}

impl NormalChannel {
    /// Our current commitment transaction with both funding signatures.
    pub fn signed_local_commitment<C: Signing + Verification>(
        &self,
        secp: &Secp256k1<C>,
    ) -> Result<Transaction, ChannelError> {
        let n = self.local_number;
        let point = self.local_secrets.point(secp, n);
        self.funded.signed_local_commitment(
            secp,
            &self.commitments.local,
            n,
            &point,
            &self.signing,
            self.local_signatures.signature,
        )
    }
}
