//! BOLT 2 §"Message Retransmission": `channel_reestablish` after a
//! reconnection, and resending exactly what the peer missed.

use beongae_script::commitment::CommitmentNumber;
use beongae_wire::msgs::{ChannelReady, ChannelReestablish, Message, RevokeAndAck};
use beongae_wire::TlvStream;
use bitcoin::secp256k1::{PublicKey, Secp256k1, Signing, Verification};

use super::{ChannelError, NormalChannel};

/// Why a `channel_reestablish` ends the channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReestablishError {
    /// The peer proved it holds a revocation of a commitment we do not
    /// know: our state is old. We MUST NOT broadcast our commitment and ask
    /// the peer to close (BOLT 2).
    #[error("our channel state is behind the peer's (it holds our secret for commitment {0}); do not broadcast, ask the peer to close")]
    WeFellBehind(u64),
    /// The peer expects a commitment or revocation we cannot produce.
    #[error("peer expects commitment_signed {next_commitment} and revoke_and_ack {next_revocation}, we are at commitment {local} and have signed its commitment {remote}")]
    OutOfSync {
        /// Its `next_commitment_number`.
        next_commitment: u64,
        /// Its `next_revocation_number`.
        next_revocation: u64,
        /// Our current commitment.
        local: u64,
        /// Its latest commitment we signed.
        remote: u64,
    },
    /// `your_last_per_commitment_secret` is not our secret.
    #[error("your_last_per_commitment_secret is not the last secret we revealed")]
    WrongSecret,
}

impl NormalChannel {
    /// Our `channel_reestablish` (sent first on every reconnection).
    pub fn reestablish<C: Signing>(&self, secp: &Secp256k1<C>) -> ChannelReestablish {
        let revoked = self.remote.current.get();
        let your_last_per_commitment_secret = revoked
            .checked_sub(1)
            .and_then(CommitmentNumber::new)
            .and_then(|n| self.remote.revoked_secret(n))
            .unwrap_or([0; 32]);
        ChannelReestablish {
            channel_id: self.channel_id,
            next_commitment_number: self.local_number.get() + 1,
            next_revocation_number: revoked,
            your_last_per_commitment_secret,
            my_current_per_commitment_point: self.local_secrets.point(secp, self.local_number),
            extension: TlvStream::default(),
        }
    }

    /// The peer's `channel_reestablish`: what to send again, in order.
    pub fn receive_reestablish<C: Signing + Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        msg: &ChannelReestablish,
    ) -> Result<Vec<Message>, ChannelError> {
        if msg.channel_id != self.channel_id {
            return Err(ChannelError::WrongChannel(msg.channel_id));
        }
        let local = self.local_number.get();
        let out_of_sync = || ReestablishError::OutOfSync {
            next_commitment: msg.next_commitment_number,
            next_revocation: msg.next_revocation_number,
            local,
            remote: self.remote.current.get(),
        };
        // Revocations: we revoked commitments 0..local; the peer expects
        // `local` next, or `local - 1` if our last revoke_and_ack was lost.
        let next_rev = msg.next_revocation_number;
        if next_rev > local {
            // It claims revocations we never made: if it holds our real
            // secret for `next_rev - 1`, we are the one who lost data.
            let claimed = CommitmentNumber::new(next_rev - 1).ok_or_else(out_of_sync)?;
            if msg.your_last_per_commitment_secret == self.local_secrets.secret(claimed) {
                return Err(ReestablishError::WeFellBehind(next_rev - 1).into());
            }
            return Err(out_of_sync().into());
        }
        let expected_secret = match next_rev.checked_sub(1) {
            None => [0; 32],
            Some(n) => self
                .local_secrets
                .secret(CommitmentNumber::new(n).ok_or_else(out_of_sync)?),
        };
        if msg.your_last_per_commitment_secret != expected_secret {
            return Err(ReestablishError::WrongSecret.into());
        }
        let resend_revoke = match local - next_rev {
            0 => false,
            1 => true,
            _ => return Err(out_of_sync().into()),
        };
        // Commitments: the last we signed is the peer's `remote_next` (not
        // yet revoked) or its current one.
        let outstanding = self.commitments.remote_next.is_some();
        let last_signed = self.remote.current.get() + u64::from(outstanding);
        let resend_commit = if msg.next_commitment_number == last_signed && outstanding {
            true
        } else if msg.next_commitment_number == last_signed + 1 {
            false
        } else {
            return Err(out_of_sync().into());
        };
        let mut out = Vec::new();
        // Both at 1: channel_ready may not have arrived.
        if msg.next_commitment_number == 1 && local == 0 {
            out.push(Message::ChannelReady(ChannelReady {
                channel_id: self.channel_id,
                second_per_commitment_point: self.point(secp, 1)?,
                short_channel_id_alias: None,
                extension: TlvStream::default(),
            }));
        }
        let revoke = resend_revoke
            .then(|| self.last_revoke(secp))
            .transpose()?
            .map(Message::RevokeAndAck);
        let commit: Vec<Message> = if resend_commit {
            let r = &self.retransmit;
            r.signed_updates
                .iter()
                .cloned()
                .chain(r.commitment_signed.clone().map(Message::CommitmentSigned))
                .collect()
        } else {
            Vec::new()
        };
        // The same relative order as first sent.
        if self.retransmit.commit_before_revoke {
            out.extend(commit);
            out.extend(revoke);
        } else {
            out.extend(revoke);
            out.extend(commit);
        }
        Ok(out)
    }

    /// Our `revoke_and_ack` of commitment `local_number - 1`, as first sent.
    fn last_revoke<C: Signing>(&self, secp: &Secp256k1<C>) -> Result<RevokeAndAck, ChannelError> {
        let revoked = self
            .local_number
            .get()
            .checked_sub(1)
            .and_then(CommitmentNumber::new)
            .ok_or(ChannelError::Unexpected(
                "revoke_and_ack before any revocation",
            ))?;
        let (secret, next_point) = self.local_secrets.revoke(secp, revoked)?;
        Ok(RevokeAndAck {
            channel_id: self.channel_id,
            per_commitment_secret: secret,
            next_per_commitment_point: next_point,
            extension: TlvStream::default(),
        })
    }

    fn point<C: Signing>(&self, secp: &Secp256k1<C>, n: u64) -> Result<PublicKey, ChannelError> {
        let n = CommitmentNumber::new(n).ok_or(ChannelError::Unexpected("commitment number"))?;
        Ok(self.local_secrets.point(secp, n))
    }
}
