//! Our latest commitment, fully signed, for when the channel fails (BOLT 5
//! "Failing a Channel": "MUST broadcast its latest commitment transaction"
//! when it cannot close cooperatively). Sweeping its outputs is the
//! on-chain enforcement work that follows.

use beongae_script::commitment::CommitmentNumber;
use bitcoin::secp256k1::{PublicKey, Secp256k1, Signing, Verification};
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
        let tx = built.commitment.tx;
        let ours = self
            .sign_funding_spend(secp, &tx, &signing.funding_key)
            .map_err(CommitSignError::from)?;
        let tx = self.with_funding_witness(tx, ours, theirs);
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
