//! BOLT 3 §"Key Derivation": per-commitment keys from basepoints.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{PublicKey, Scalar, Secp256k1, SecretKey, Signing, Verification};

/// Why a key could not be derived. Only a peer that found a SHA-256 output
/// above the curve order, or a point that cancels the basepoint, could cause
/// these: both need about 2^128 work, but the answer is an error, not a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A tweak is not a valid scalar.
    #[error("derived tweak is not a valid scalar")]
    InvalidTweak,
    /// The derived key is the point at infinity or zero.
    #[error("derived key is invalid")]
    InvalidKey,
}

/// `SHA256(a || b)` as a scalar.
fn tweak(a: &PublicKey, b: &PublicKey) -> Result<Scalar, KeyError> {
    let mut engine = sha256::Hash::engine();
    engine.input(&a.serialize());
    engine.input(&b.serialize());
    Scalar::from_be_bytes(sha256::Hash::from_engine(engine).to_byte_array())
        .map_err(|_| KeyError::InvalidTweak)
}

/// A channel party's basepoints and funding key (BOLT 2 `open_channel`/`accept_channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelPublicKeys {
    /// `funding_pubkey`
    pub funding_pubkey: PublicKey,
    /// `revocation_basepoint`
    pub revocation_basepoint: PublicKey,
    /// `payment_basepoint`
    pub payment_basepoint: PublicKey,
    /// `delayed_payment_basepoint`
    pub delayed_payment_basepoint: PublicKey,
    /// `htlc_basepoint`
    pub htlc_basepoint: PublicKey,
}

/// BOLT 3: `pubkey = basepoint + SHA256(per_commitment_point || basepoint) * G`
/// (`localpubkey`, `local_htlcpubkey`, `remote_htlcpubkey`, `local_delayedpubkey`, ...).
pub fn derive_pubkey<C: Verification>(
    secp: &Secp256k1<C>,
    basepoint: &PublicKey,
    per_commitment_point: &PublicKey,
) -> Result<PublicKey, KeyError> {
    basepoint
        .add_exp_tweak(secp, &tweak(per_commitment_point, basepoint)?)
        .map_err(|_| KeyError::InvalidKey)
}

/// BOLT 3: `privkey = basepoint_secret + SHA256(per_commitment_point || basepoint)`.
pub fn derive_privkey<C: Signing>(
    secp: &Secp256k1<C>,
    basepoint_secret: &SecretKey,
    per_commitment_point: &PublicKey,
) -> Result<SecretKey, KeyError> {
    let basepoint = PublicKey::from_secret_key(secp, basepoint_secret);
    basepoint_secret
        .add_tweak(&tweak(per_commitment_point, &basepoint)?)
        .map_err(|_| KeyError::InvalidKey)
}

/// BOLT 3 §"`revocationpubkey` Derivation":
/// `revocation_basepoint * SHA256(revocation_basepoint || per_commitment_point)
///  + per_commitment_point * SHA256(per_commitment_point || revocation_basepoint)`.
pub fn derive_revocation_pubkey<C: Verification>(
    secp: &Secp256k1<C>,
    revocation_basepoint: &PublicKey,
    per_commitment_point: &PublicKey,
) -> Result<PublicKey, KeyError> {
    let a = revocation_basepoint
        .mul_tweak(secp, &tweak(revocation_basepoint, per_commitment_point)?)
        .map_err(|_| KeyError::InvalidKey)?;
    let b = per_commitment_point
        .mul_tweak(secp, &tweak(per_commitment_point, revocation_basepoint)?)
        .map_err(|_| KeyError::InvalidKey)?;
    a.combine(&b).map_err(|_| KeyError::InvalidKey)
}

/// BOLT 3: `revocationprivkey = revocation_basepoint_secret * SHA256(revocation_basepoint || per_commitment_point)
/// + per_commitment_secret * SHA256(per_commitment_point || revocation_basepoint)`.
pub fn derive_revocation_privkey<C: Signing>(
    secp: &Secp256k1<C>,
    revocation_basepoint_secret: &SecretKey,
    per_commitment_secret: &SecretKey,
) -> Result<SecretKey, KeyError> {
    let rb = PublicKey::from_secret_key(secp, revocation_basepoint_secret);
    let pcp = PublicKey::from_secret_key(secp, per_commitment_secret);
    let a = revocation_basepoint_secret
        .mul_tweak(&tweak(&rb, &pcp)?)
        .map_err(|_| KeyError::InvalidKey)?;
    let b = per_commitment_secret
        .mul_tweak(&tweak(&pcp, &rb)?)
        .map_err(|_| KeyError::InvalidKey)?;
    a.add_tweak(&Scalar::from(b))
        .map_err(|_| KeyError::InvalidKey)
}

/// The keys of one commitment transaction, from the point of view of its
/// owner ("local"; BOLT 3 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitmentKeys {
    /// `per_commitment_point` of this commitment (the owner's).
    pub per_commitment_point: PublicKey,
    /// `revocationpubkey`: from the *counterparty's* revocation basepoint.
    pub revocation_key: PublicKey,
    /// `local_delayedpubkey`
    pub local_delayed_key: PublicKey,
    /// `local_htlcpubkey`
    pub local_htlc_key: PublicKey,
    /// `remote_htlcpubkey`
    pub remote_htlc_key: PublicKey,
    /// `remotepubkey`: the counterparty's `payment_basepoint` (static remote key).
    pub remote_payment_key: PublicKey,
    /// The owner's `funding_pubkey`.
    pub local_funding_key: PublicKey,
    /// The counterparty's `funding_pubkey`.
    pub remote_funding_key: PublicKey,
}

impl CommitmentKeys {
    /// Derives the keys of the commitment owned by `owner` at `per_commitment_point`.
    pub fn derive<C: Verification>(
        secp: &Secp256k1<C>,
        owner: &ChannelPublicKeys,
        counterparty: &ChannelPublicKeys,
        per_commitment_point: &PublicKey,
    ) -> Result<Self, KeyError> {
        Ok(CommitmentKeys {
            per_commitment_point: *per_commitment_point,
            revocation_key: derive_revocation_pubkey(
                secp,
                &counterparty.revocation_basepoint,
                per_commitment_point,
            )?,
            local_delayed_key: derive_pubkey(
                secp,
                &owner.delayed_payment_basepoint,
                per_commitment_point,
            )?,
            local_htlc_key: derive_pubkey(secp, &owner.htlc_basepoint, per_commitment_point)?,
            remote_htlc_key: derive_pubkey(
                secp,
                &counterparty.htlc_basepoint,
                per_commitment_point,
            )?,
            remote_payment_key: counterparty.payment_basepoint,
            local_funding_key: owner.funding_pubkey,
            remote_funding_key: counterparty.funding_pubkey,
        })
    }
}
