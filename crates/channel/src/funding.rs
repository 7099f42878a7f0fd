//! BOLT 2 §"Channel Establishment v1" after `accept_channel`:
//! `funding_created`, `funding_signed` and `channel_ready`, ending in a
//! [`NormalChannel`].
//!
//! Both sides sign the other's commitment 0 before the funding transaction
//! is broadcast: the funder sends `funding_created` (its signature on the
//! fundee's commitment), the fundee checks it and answers `funding_signed`
//! (its signature on the funder's). Only then may the funder broadcast. The
//! caller persists the [`Funding`] before sending `funding_signed` and
//! before broadcasting.

use beongae_script::commitment::{obscuring_factor, CommitmentNumber};
use beongae_script::keys::ChannelPublicKeys;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::msgs::{ChannelReady, ChannelReestablish, FundingCreated, FundingSigned};
use beongae_wire::{ChannelId, Msat, ShortChannelId, TlvStream};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{Secp256k1, Signing, Verification};
use bitcoin::{Amount, OutPoint, Txid};

use crate::commitments::Commitments;
use crate::limits::{ChannelParams, CommitLimits};
use crate::normal::{ChannelError, NormalChannel, ReestablishError};
use crate::open::PeerParams;
use crate::revocation::{LocalSecrets, RemoteRevocations};
use crate::sign::{CommitmentSignatures, FundedChannel, Owner, SigningKeys};

mod persist;

/// What we announced in our `open_channel` or `accept_channel`, and the
/// secrets behind it.
#[derive(Debug, Clone)]
pub struct LocalSetup {
    /// Our basepoints and funding key.
    pub keys: ChannelPublicKeys,
    /// Their secrets.
    pub signing: SigningKeys,
    /// Our per-commitment secrets.
    pub secrets: LocalSecrets,
    /// Our limits (`dust_limit_satoshis`, `channel_reserve_satoshis` we
    /// require of the peer, `htlc_minimum_msat`, ...).
    pub limits: CommitLimits,
    /// The `to_self_delay` we impose on the peer's outputs.
    pub to_self_delay: u16,
    /// Our `max_dust_htlc_exposure_msat`.
    pub max_dust_htlc_exposure: Msat,
}

/// The terms of the channel both messages agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelTerms {
    /// Commitment format (from `channel_type`).
    pub channel_type: ChannelType,
    /// `funding_satoshis`
    pub funding: Amount,
    /// `push_msat`
    pub push: Msat,
    /// `feerate_per_kw` of the first commitments.
    pub feerate: FeeratePerKw,
    /// Whether we sent `open_channel`.
    pub we_are_funder: bool,
}

/// A channel between `funding_created` and `channel_ready`.
#[derive(Debug, Clone)]
pub struct Funding {
    /// `channel_id` (from the funding outpoint).
    pub channel_id: ChannelId,
    /// The channel's transactions and keys.
    pub funded: FundedChannel,
    local: LocalSetup,
    peer: PeerParams,
    /// Both commitment 0s.
    pub commitments: Commitments,
    /// The peer's signatures on our commitment 0, once received.
    pub local_signatures: Option<CommitmentSignatures>,
}

/// Why funding failed (the channel is forgotten; nothing was broadcast).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FundingError {
    /// A signature or commitment problem.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The funder's balance does not cover the push.
    #[error("push_msat {push} exceeds the funding {funding}")]
    PushTooLarge {
        /// `push_msat`
        push: Msat,
        /// `funding_satoshis`
        funding: Amount,
    },
    /// `funding_signed` or `channel_ready` for another channel.
    #[error("message for channel {got}, expected {expected}")]
    WrongChannel {
        /// Received.
        got: ChannelId,
        /// Ours.
        expected: ChannelId,
    },
    /// `channel_ready` before we have the peer's signature on our commitment.
    #[error("channel_ready before funding_signed")]
    NotSigned,
}

impl Funding {
    /// The channel once the funding outpoint is known.
    pub fn new(
        local: LocalSetup,
        peer: PeerParams,
        terms: ChannelTerms,
        funding_outpoint: OutPoint,
    ) -> Result<Self, FundingError> {
        let funding_msat =
            Msat::from_sat(terms.funding.to_sat()).ok_or(FundingError::PushTooLarge {
                push: terms.push,
                funding: terms.funding,
            })?;
        let funder_balance =
            funding_msat
                .checked_sub(terms.push)
                .ok_or(FundingError::PushTooLarge {
                    push: terms.push,
                    funding: terms.funding,
                })?;
        let (ours, theirs) = if terms.we_are_funder {
            (funder_balance, terms.push)
        } else {
            (terms.push, funder_balance)
        };
        let (opener, accepter) = if terms.we_are_funder {
            (&local.keys, &peer.keys)
        } else {
            (&peer.keys, &local.keys)
        };
        let funded = FundedChannel {
            channel_type: terms.channel_type,
            funding_outpoint,
            funding_amount: terms.funding,
            obscuring_factor: obscuring_factor(
                &opener.payment_basepoint,
                &accepter.payment_basepoint,
            ),
            we_are_funder: terms.we_are_funder,
            local_keys: local.keys,
            remote_keys: peer.keys,
            // Our outputs wait for the delay the peer asked for, and theirs ours.
            local_to_self_delay: peer.to_self_delay,
            remote_to_self_delay: local.to_self_delay,
            local_dust_limit: local.limits.dust_limit,
            remote_dust_limit: peer.dust_limit,
        };
        let params = ChannelParams {
            channel_type: terms.channel_type,
            we_are_funder: terms.we_are_funder,
            local: local.limits,
            remote: CommitLimits::from(&peer),
            max_dust_htlc_exposure: local.max_dust_htlc_exposure,
        };
        let index = u16::try_from(funding_outpoint.vout).map_err(|_| {
            FundingError::Channel(ChannelError::Unexpected("funding output index above 65535"))
        })?;
        Ok(Funding {
            channel_id: ChannelId::from_funding(funding_outpoint.txid.to_byte_array(), index),
            funded,
            commitments: Commitments::new(ours, theirs, terms.feerate, params),
            local,
            peer,
            local_signatures: None,
        })
    }

    /// Our signatures on the peer's commitment 0.
    fn sign_remote_zero<C: Signing + Verification>(
        &self,
        secp: &Secp256k1<C>,
    ) -> Result<CommitmentSignatures, ChannelError> {
        let built = self.funded.build(
            secp,
            Owner::Remote,
            &self.commitments.remote,
            CommitmentNumber::ZERO,
            &self.peer.first_per_commitment_point,
        )?;
        Ok(self.funded.sign_remote(secp, &built, &self.local.signing)?)
    }

    /// Checks the peer's signature on our commitment 0 (BOLT 2: the
    /// recipient "MUST fail the channel" if it is not valid).
    fn verify_local_zero<C: Signing + Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        signature: bitcoin::secp256k1::ecdsa::Signature,
    ) -> Result<(), ChannelError> {
        let point = self.local.secrets.point(secp, CommitmentNumber::ZERO);
        let built = self.funded.build(
            secp,
            Owner::Local,
            &self.commitments.local,
            CommitmentNumber::ZERO,
            &point,
        )?;
        // Commitment 0 holds no HTLCs: no HTLC signatures.
        let sigs = CommitmentSignatures {
            signature,
            htlc_signatures: Vec::new(),
        };
        self.funded.verify_local(secp, &built, &sigs)?;
        self.local_signatures = Some(sigs);
        Ok(())
    }

    /// Funder: `funding_created` for the funding transaction built at
    /// `funding_outpoint` (not yet broadcast).
    pub fn funding_created<C: Signing + Verification>(
        &self,
        secp: &Secp256k1<C>,
        temporary_channel_id: ChannelId,
    ) -> Result<FundingCreated, FundingError> {
        let sigs = self.sign_remote_zero(secp)?;
        let outpoint = self.funded.funding_outpoint;
        Ok(FundingCreated {
            temporary_channel_id,
            funding_txid: outpoint.txid.to_byte_array(),
            funding_output_index: u16::try_from(outpoint.vout).unwrap_or(u16::MAX),
            signature: sigs.signature,
            extension: TlvStream::default(),
        })
    }

    /// Fundee: checks `funding_created` and answers `funding_signed`.
    pub fn receive_funding_created<C: Signing + Verification>(
        secp: &Secp256k1<C>,
        local: LocalSetup,
        peer: PeerParams,
        terms: ChannelTerms,
        msg: &FundingCreated,
    ) -> Result<(Funding, FundingSigned), FundingError> {
        let outpoint = OutPoint {
            txid: Txid::from_byte_array(msg.funding_txid),
            vout: u32::from(msg.funding_output_index),
        };
        let mut funding = Funding::new(local, peer, terms, outpoint)?;
        funding.verify_local_zero(secp, msg.signature)?;
        let sigs = funding.sign_remote_zero(secp)?;
        let signed = FundingSigned {
            channel_id: funding.channel_id,
            signature: sigs.signature,
            extension: TlvStream::default(),
        };
        Ok((funding, signed))
    }

    /// Funder: checks `funding_signed`; afterwards the funding transaction
    /// may be broadcast.
    pub fn receive_funding_signed<C: Signing + Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        msg: &FundingSigned,
    ) -> Result<(), FundingError> {
        self.check_channel(msg.channel_id)?;
        self.verify_local_zero(secp, msg.signature)?;
        Ok(())
    }

    /// Our `channel_ready` once the funding transaction has `minimum_depth`
    /// confirmations: the point of our commitment 1, and our alias for it.
    pub fn channel_ready<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        alias: Option<ShortChannelId>,
    ) -> ChannelReady {
        let one = CommitmentNumber::ZERO
            .next()
            .unwrap_or(CommitmentNumber::ZERO);
        ChannelReady {
            channel_id: self.channel_id,
            second_per_commitment_point: self.local.secrets.point(secp, one),
            short_channel_id_alias: alias,
            extension: TlvStream::default(),
        }
    }

    /// Our `channel_reestablish` before `channel_ready` was exchanged
    /// (BOLT 2: `next_commitment_number` 1, `next_revocation_number` 0, no
    /// secret revealed yet).
    pub fn reestablish<C: Signing>(&self, secp: &Secp256k1<C>) -> ChannelReestablish {
        ChannelReestablish {
            channel_id: self.channel_id,
            next_commitment_number: 1,
            next_revocation_number: 0,
            your_last_per_commitment_secret: [0; 32],
            my_current_per_commitment_point: self.local.secrets.point(secp, CommitmentNumber::ZERO),
            extension: TlvStream::default(),
        }
    }

    /// The peer's `channel_reestablish` before `channel_ready` was
    /// exchanged: we are at commitment 0 and revoked nothing, so the peer
    /// must expect commitment 1 and revocation 0 (or 1 and 1 if it already
    /// moved to normal operation; BOLT 2 allows `channel_ready` to be lost).
    /// BOLT 2 §"Message Retransmission": "if `next_revocation_number` is
    /// greater than expected above, AND `your_last_per_commitment_secret`
    /// is correct for that `next_revocation_number` minus 1: MUST NOT
    /// broadcast its commitment transaction" — this copy of the channel is
    /// an old one (restored from a backup); "otherwise: if
    /// `your_last_per_commitment_secret` does not match the expected
    /// values: SHOULD send an `error` and fail the channel".
    pub fn check_reestablish(&self, msg: &ChannelReestablish) -> Result<(), ReestablishError> {
        let next_rev = msg.next_revocation_number;
        if next_rev > 0 {
            let proves = CommitmentNumber::new(next_rev - 1).is_some_and(|n| {
                msg.your_last_per_commitment_secret == self.local.secrets.secret(n)
            });
            if proves {
                return Err(ReestablishError::WeFellBehind(next_rev - 1));
            }
            return Err(ReestablishError::OutOfSync {
                next_commitment: msg.next_commitment_number,
                next_revocation: next_rev,
                local: 0,
                remote: 0,
            });
        }
        if msg.your_last_per_commitment_secret != [0; 32] {
            return Err(ReestablishError::WrongSecret);
        }
        if msg.next_commitment_number != 1 {
            return Err(ReestablishError::OutOfSync {
                next_commitment: msg.next_commitment_number,
                next_revocation: next_rev,
                local: 0,
                remote: 0,
            });
        }
        Ok(())
    }

    /// Our commitment 0 with both signatures, once `funding_signed` (funder)
    /// or `funding_created` (fundee) brought the peer's: what a channel that
    /// fails before `channel_ready` broadcasts.
    pub fn signed_local_commitment<C: Signing + Verification>(
        &self,
        secp: &Secp256k1<C>,
    ) -> Result<bitcoin::Transaction, FundingError> {
        let sigs = self
            .local_signatures
            .as_ref()
            .ok_or(FundingError::NotSigned)?;
        let point = self.local.secrets.point(secp, CommitmentNumber::ZERO);
        Ok(self.funded.signed_local_commitment(
            secp,
            &self.commitments.local,
            CommitmentNumber::ZERO,
            &point,
            &self.local.signing,
            sigs.signature,
        )?)
    }

    /// The peer's `channel_ready`: the channel enters normal operation.
    pub fn receive_channel_ready(self, msg: &ChannelReady) -> Result<NormalChannel, FundingError> {
        self.check_channel(msg.channel_id)?;
        let local_signatures = self.local_signatures.ok_or(FundingError::NotSigned)?;
        Ok(NormalChannel::new(
            self.channel_id,
            self.funded,
            self.local.signing,
            self.local.secrets,
            RemoteRevocations::new(
                self.peer.first_per_commitment_point,
                msg.second_per_commitment_point,
            ),
            self.commitments,
            local_signatures,
        ))
    }

    fn check_channel(&self, got: ChannelId) -> Result<(), FundingError> {
        if got == self.channel_id {
            Ok(())
        } else {
            Err(FundingError::WrongChannel {
                got,
                expected: self.channel_id,
            })
        }
    }
}
