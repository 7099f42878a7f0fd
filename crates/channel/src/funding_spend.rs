//! Signing and checking transactions that spend the channel's 2-of-2
//! funding output (BOLT 3 §"Funding Transaction Output"): commitments,
//! legacy and simple closing transactions. One place for the funding
//! script, the `SIGHASH_ALL` signatures and the witness.

use beongae_script::funding::funding_witness;
use beongae_script::scripts::funding_script;
use beongae_script::sign::{sign_p2wsh, verify_p2wsh, SignError};
use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::{ecdsa, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{ScriptBuf, Transaction};

use crate::sign::FundedChannel;

fn all(signature: ecdsa::Signature) -> Signature {
    Signature {
        signature,
        sighash_type: EcdsaSighashType::All,
    }
}

impl FundedChannel {
    /// The 2-of-2 witness script.
    pub fn funding_script(&self) -> ScriptBuf {
        funding_script(
            &self.local_keys.funding_pubkey,
            &self.remote_keys.funding_pubkey,
        )
    }

    /// Our `SIGHASH_ALL` signature on input 0 of `tx`, which spends the
    /// funding output.
    pub fn sign_funding_spend<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        tx: &Transaction,
        funding_key: &SecretKey,
    ) -> Result<ecdsa::Signature, SignError> {
        sign_p2wsh(
            secp,
            tx,
            0,
            &self.funding_script(),
            self.funding_amount,
            EcdsaSighashType::All,
            funding_key,
        )
        .map(|s| s.signature)
    }

    /// Whether `sig` is the peer's valid signature on input 0 of `tx`.
    pub fn verify_funding_spend<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        tx: &Transaction,
        sig: ecdsa::Signature,
    ) -> bool {
        verify_p2wsh(
            secp,
            tx,
            0,
            &self.funding_script(),
            self.funding_amount,
            &all(sig),
            &self.remote_keys.funding_pubkey,
        )
        .is_ok()
    }

    /// `tx` with both signatures in its funding input's witness.
    pub fn with_funding_witness(
        &self,
        mut tx: Transaction,
        ours: ecdsa::Signature,
        theirs: ecdsa::Signature,
    ) -> Transaction {
        tx.input[0].witness = funding_witness(
            &self.local_keys.funding_pubkey,
            &all(ours),
            &self.remote_keys.funding_pubkey,
            &all(theirs),
        );
        tx
    }
}
