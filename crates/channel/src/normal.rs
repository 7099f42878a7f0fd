//! BOLT 2 §"Normal Operation" for one funded channel: update messages,
//! `commitment_signed` and `revoke_and_ack` in and out, on top of
//! [`Commitments`] (what each commitment holds), [`FundedChannel`] (its
//! transactions and signatures) and the revocation secrets.
//!
//! Pure: the caller persists the channel after every call that changed it
//! and *before* sending what the call returned (a `revoke_and_ack` must
//! never leave before the commitment it moves to is on disk).

use std::collections::BTreeMap;

mod force;
mod persist;
mod reestablish;
mod shutdown;
pub use persist::OnionKey;
pub use reestablish::ReestablishError;

use beongae_script::commitment::CommitmentNumber;
use beongae_script::FeeratePerKw;
use beongae_wire::msgs::{
    CommitmentSigned, Message, OnionPacketBytes, RevokeAndAck, U16Bytes, UpdateAddHtlc,
    UpdateFailHtlc, UpdateFailMalformedHtlc, UpdateFee, UpdateFulfillHtlc,
};
use beongae_wire::{ChannelId, Msat, PaymentHash, Preimage, TlvStream};
use bitcoin::secp256k1::{Secp256k1, Signing, Verification};

use crate::commitments::{Commitments, Update, UpdateError};
use crate::revocation::{LocalSecrets, RemoteRevocations, RevocationError};
use crate::sign::{CommitSignError, CommitmentSignatures, FundedChannel, Owner, SigningKeys};

/// BOLT 4 `BADONION`: set in every `update_fail_malformed_htlc` failure code.
pub const BADONION: u16 = 0x8000;

/// Why the channel must fail; the caller sends a BOLT 1 `error` (or
/// `warning`) with this text and closes the channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// An update broke a BOLT 2 rule.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// A signature did not verify, or a commitment could not be built.
    #[error(transparent)]
    Sign(#[from] CommitSignError),
    /// A bad `revoke_and_ack`.
    #[error(transparent)]
    Revocation(#[from] RevocationError),
    /// A message for another channel.
    #[error("message for channel {0}, not this one")]
    WrongChannel(ChannelId),
    /// BOLT 2: "if the BADONION bit in `failure_code` is not set for
    /// `update_fail_malformed_htlc`: MUST ... fail the channel".
    #[error("update_fail_malformed_htlc failure_code {0:#06x} lacks BADONION")]
    NotBadOnion(u16),
    /// `channel_reestablish` shows the two sides disagree on the state.
    #[error(transparent)]
    Reestablish(#[from] ReestablishError),
    /// No new HTLC once `shutdown` was sent or received (BOLT 2).
    #[error("the channel is shutting down: no new htlc")]
    ShuttingDown,
    /// A `shutdown` with a script BOLT 2 does not allow, or a second one.
    #[error("shutdown scriptpubkey {0} is not allowed")]
    BadShutdownScript(String),
    /// BOLT 2: an `update_fee` that "is unreasonably large".
    #[error("update_fee of {got} sat/kw is above our limit of {max} sat/kw")]
    FeerateTooHigh {
        /// Received.
        got: u32,
        /// Ours.
        max: u32,
    },
    /// A message this phase does not take.
    #[error("{0} is not expected in normal operation")]
    Unexpected(&'static str),
}

/// How an HTLC we offered failed: the peer's obfuscated BOLT 4 reason, or
/// `update_fail_malformed_htlc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReason {
    /// `update_fail_htlc` `reason`.
    Reason(Vec<u8>),
    /// `update_fail_malformed_htlc`.
    Malformed {
        /// `sha256_of_onion`
        sha256_of_onion: [u8; 32],
        /// `failure_code`
        failure_code: u16,
    },
}

/// What the owner of the channel learns from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An HTLC the peer offered is irrevocably committed: it may be
    /// forwarded or settled.
    IncomingCommitted {
        /// `id`
        id: u64,
        /// `amount_msat`
        amount: Msat,
        /// `payment_hash`
        payment_hash: PaymentHash,
        /// `cltv_expiry`
        cltv_expiry: u32,
        /// `onion_routing_packet`
        onion: OnionPacketBytes,
        /// It is trimmed and brought a commitment's dust balance above our
        /// `max_dust_htlc_exposure_msat`: fail it, never reveal its preimage.
        dust_exposure_exceeded: bool,
    },
    /// The peer fulfilled an HTLC we offered: the preimage is ours from now.
    OutgoingFulfilled {
        /// Our `id`.
        id: u64,
        /// `payment_preimage`
        preimage: Preimage,
    },
    /// The peer sent `shutdown`: reply with ours (BOLT 2: "MUST reply to a
    /// `shutdown` message with a `shutdown`") unless already sent.
    ShutdownReceived {
        /// Where the peer's funds go.
        script: bitcoin::ScriptBuf,
    },
    /// An HTLC we offered failed and is irrevocably removed.
    OutgoingFailed {
        /// Our `id`.
        id: u64,
        /// Why.
        reason: FailReason,
    },
}

/// What a received message produced: replies to send (after persisting)
/// and events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// Messages to send, in order.
    pub reply: Vec<Message>,
    /// Events, in order.
    pub events: Vec<Event>,
}

/// A funded channel in normal operation.
#[derive(Debug, Clone)]
pub struct NormalChannel {
    /// `channel_id`
    pub channel_id: ChannelId,
    /// Transactions and keys.
    pub funded: FundedChannel,
    signing: SigningKeys,
    local_secrets: LocalSecrets,
    /// The peer's points and revealed secrets.
    pub remote: RemoteRevocations,
    /// Both commitments and the updates in flight.
    pub commitments: Commitments,
    /// The number of our current commitment.
    pub local_number: CommitmentNumber,
    /// The peer's signatures on our current commitment (what lets us
    /// broadcast it).
    pub local_signatures: CommitmentSignatures,
    /// Onions of HTLCs the peer offered, until reported committed.
    incoming: BTreeMap<u64, OnionPacketBytes>,
    /// Failure reasons of HTLCs we offered, until reported.
    failures: BTreeMap<u64, FailReason>,
    /// Incoming HTLCs over the dust exposure limit, to fail once committed.
    over_dust: std::collections::BTreeSet<u64>,
    /// What a reconnection may need to send again.
    pub(crate) retransmit: Retransmit,
    /// The `shutdown` scripts sent and received.
    pub shutdown: ShutdownScripts,
    /// Whether `option_shutdown_anysegwit` was negotiated with the peer.
    pub anysegwit: bool,
    /// The highest `update_fee` we accept from a funding peer (BOLT 2: an
    /// "unreasonably large" one fails the channel); from `ChannelConfig`.
    pub max_feerate: FeeratePerKw,
}

/// The `scriptpubkey`s of the `shutdown` messages exchanged so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownScripts {
    /// Ours, once sent.
    pub local: Option<bitcoin::ScriptBuf>,
    /// The peer's, once received.
    pub remote: Option<bitcoin::ScriptBuf>,
}

/// Our messages a peer may have missed (BOLT 2 §"Message Retransmission").
#[derive(Debug, Clone, Default)]
pub(crate) struct Retransmit {
    /// Updates sent since our last `commitment_signed`.
    pub(crate) proposed_updates: Vec<Message>,
    /// Updates our outstanding `commitment_signed` covers, in order.
    pub(crate) signed_updates: Vec<Message>,
    /// Our `commitment_signed` the peer has not revoked for yet.
    pub(crate) commitment_signed: Option<CommitmentSigned>,
    /// Whether that `commitment_signed` went out before our last `revoke_and_ack`.
    pub(crate) commit_before_revoke: bool,
}

impl NormalChannel {
    /// A channel whose first commitments (number 0 on both sides) are
    /// signed: `local_signatures` are the peer's on our commitment 0.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        channel_id: ChannelId,
        funded: FundedChannel,
        signing: SigningKeys,
        local_secrets: LocalSecrets,
        remote: RemoteRevocations,
        commitments: Commitments,
        local_signatures: CommitmentSignatures,
    ) -> Self {
        NormalChannel {
            channel_id,
            funded,
            signing,
            local_secrets,
            remote,
            commitments,
            local_number: CommitmentNumber::ZERO,
            local_signatures,
            incoming: BTreeMap::new(),
            failures: BTreeMap::new(),
            over_dust: std::collections::BTreeSet::new(),
            retransmit: Retransmit::default(),
            shutdown: ShutdownScripts::default(),
            anysegwit: false,
            max_feerate: FeeratePerKw(250_000),
        }
    }

    /// Offers an HTLC (BOLT 2 `update_add_htlc`).
    pub fn send_add(
        &mut self,
        amount: Msat,
        payment_hash: PaymentHash,
        cltv_expiry: u32,
        onion: OnionPacketBytes,
    ) -> Result<UpdateAddHtlc, ChannelError> {
        if self.shutdown.local.is_some() || self.shutdown.remote.is_some() {
            return Err(ChannelError::ShuttingDown);
        }
        let Update::Add { id, .. } =
            self.commitments
                .send_add(amount, payment_hash, cltv_expiry)?
        else {
            unreachable!("send_add returns an add")
        };
        Ok(self.record(UpdateAddHtlc {
            channel_id: self.channel_id,
            id,
            amount_msat: amount.to_msat(),
            payment_hash: payment_hash.0,
            cltv_expiry,
            onion_routing_packet: onion,
            path_key: None,
            extension: TlvStream::default(),
        }))
    }

    /// Fulfills an HTLC the peer offered (`update_fulfill_htlc`).
    pub fn send_fulfill(
        &mut self,
        id: u64,
        preimage: Preimage,
    ) -> Result<UpdateFulfillHtlc, ChannelError> {
        self.commitments.send_fulfill(id, preimage)?;
        Ok(self.record(UpdateFulfillHtlc {
            channel_id: self.channel_id,
            id,
            payment_preimage: preimage.0,
            extension: TlvStream::default(),
        }))
    }

    /// Fails an HTLC the peer offered with an obfuscated BOLT 4 `reason`.
    pub fn send_fail(&mut self, id: u64, reason: Vec<u8>) -> Result<UpdateFailHtlc, ChannelError> {
        self.commitments.send_fail(id)?;
        Ok(self.record(UpdateFailHtlc {
            channel_id: self.channel_id,
            id,
            reason: U16Bytes(reason),
            extension: TlvStream::default(),
        }))
    }

    /// Fails an HTLC whose onion we could not parse.
    pub fn send_fail_malformed(
        &mut self,
        id: u64,
        sha256_of_onion: [u8; 32],
        failure_code: u16,
    ) -> Result<UpdateFailMalformedHtlc, ChannelError> {
        if failure_code & BADONION == 0 {
            return Err(ChannelError::NotBadOnion(failure_code));
        }
        self.commitments.send_fail(id)?;
        Ok(self.record(UpdateFailMalformedHtlc {
            channel_id: self.channel_id,
            id,
            sha256_of_onion,
            failure_code,
            extension: TlvStream::default(),
        }))
    }

    /// Changes the feerate (`update_fee`; funder only).
    pub fn send_fee(&mut self, feerate: FeeratePerKw) -> Result<UpdateFee, ChannelError> {
        self.commitments.send_fee(feerate)?;
        Ok(self.record(UpdateFee {
            channel_id: self.channel_id,
            feerate_per_kw: feerate.0,
            extension: TlvStream::default(),
        }))
    }

    /// Signs the peer's next commitment if there is anything to sign and no
    /// signature awaits its revocation (BOLT 2: a node "MUST NOT send a
    /// `commitment_signed` message that does not include any updates").
    pub fn sign<C: Signing + Verification>(
        &mut self,
        secp: &Secp256k1<C>,
    ) -> Result<Option<CommitmentSigned>, ChannelError> {
        if !self.commitments.can_send_commit() {
            return Ok(None);
        }
        let number = self
            .remote
            .current
            .next()
            .ok_or(RevocationError::Exhausted)?;
        let mut next = self.commitments.clone();
        let spec = next.send_commit()?;
        let built =
            self.funded
                .build(secp, Owner::Remote, &spec, number, &self.remote.next_point)?;
        let sigs = self.funded.sign_remote(secp, &built, &self.signing)?;
        self.commitments = next;
        let cs = CommitmentSigned {
            channel_id: self.channel_id,
            signature: sigs.signature,
            htlc_signatures: sigs.htlc_signatures,
            extension: TlvStream::default(),
        };
        // Kept for retransmission until the peer revokes.
        self.retransmit.signed_updates = std::mem::take(&mut self.retransmit.proposed_updates);
        self.retransmit.commitment_signed = Some(cs.clone());
        self.retransmit.commit_before_revoke = false;
        Ok(Some(cs))
    }

    /// Records an update we send, for retransmission after a reconnection.
    fn record<M: Clone + Into<Message>>(&mut self, m: M) -> M {
        self.retransmit.proposed_updates.push(m.clone().into());
        m
    }

    /// Handles one message from the peer. On error nothing changed and the
    /// channel must fail.
    pub fn receive<C: Signing + Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        msg: &Message,
    ) -> Result<Received, ChannelError> {
        let mut out = Received::default();
        match msg {
            Message::UpdateAddHtlc(m) => {
                self.check_channel(m.channel_id)?;
                if self.shutdown.remote.is_some() {
                    return Err(ChannelError::ShuttingDown);
                }
                let over_dust = self.commitments.receive_add(Update::Add {
                    id: m.id,
                    amount: Msat::from_msat(m.amount_msat),
                    payment_hash: PaymentHash(m.payment_hash),
                    cltv_expiry: m.cltv_expiry,
                })?;
                if over_dust {
                    self.over_dust.insert(m.id);
                }
                self.incoming.insert(m.id, m.onion_routing_packet.clone());
            }
            Message::UpdateFulfillHtlc(m) => {
                self.check_channel(m.channel_id)?;
                let preimage = Preimage(m.payment_preimage);
                self.commitments
                    .receive_remove(Update::Fulfill { id: m.id, preimage })?;
                out.events
                    .push(Event::OutgoingFulfilled { id: m.id, preimage });
            }
            Message::UpdateFailHtlc(m) => {
                self.check_channel(m.channel_id)?;
                self.commitments.receive_remove(Update::Fail { id: m.id })?;
                self.failures
                    .insert(m.id, FailReason::Reason(m.reason.0.clone()));
            }
            Message::UpdateFailMalformedHtlc(m) => {
                self.check_channel(m.channel_id)?;
                if m.failure_code & BADONION == 0 {
                    return Err(ChannelError::NotBadOnion(m.failure_code));
                }
                self.commitments.receive_remove(Update::Fail { id: m.id })?;
                self.failures.insert(
                    m.id,
                    FailReason::Malformed {
                        sha256_of_onion: m.sha256_of_onion,
                        failure_code: m.failure_code,
                    },
                );
            }
            Message::UpdateFee(m) => {
                self.check_channel(m.channel_id)?;
                if m.feerate_per_kw > self.max_feerate.0 {
                    return Err(ChannelError::FeerateTooHigh {
                        got: m.feerate_per_kw,
                        max: self.max_feerate.0,
                    });
                }
                self.commitments
                    .receive_fee(FeeratePerKw(m.feerate_per_kw))?;
            }
            Message::CommitmentSigned(m) => {
                self.check_channel(m.channel_id)?;
                out.reply
                    .push(self.receive_commitment_signed(secp, m)?.into());
            }
            Message::RevokeAndAck(m) => {
                self.check_channel(m.channel_id)?;
                if self.commitments.remote_next.is_none() {
                    return Err(UpdateError::UnexpectedRevocation.into());
                }
                self.remote
                    .receive(secp, m.per_commitment_secret, m.next_per_commitment_point)?;
                self.commitments.receive_revoke()?;
                self.retransmit.signed_updates.clear();
                self.retransmit.commitment_signed = None;
                self.settled_events(&mut out.events);
            }
            Message::Shutdown(m) => {
                self.check_channel(m.channel_id)?;
                out.events.extend(self.receive_shutdown(m)?);
            }
            // BOLT 2: "upon reconnection: MUST ignore any redundant `channel_ready`".
            Message::ChannelReady(m) => self.check_channel(m.channel_id)?,
            other => return Err(ChannelError::Unexpected(other.name())),
        }
        Ok(out)
    }

    /// BOLT 2 `commitment_signed` receiver: the signatures must match our
    /// next commitment as we compute it; then we revoke the previous one.
    fn receive_commitment_signed<C: Signing + Verification>(
        &mut self,
        secp: &Secp256k1<C>,
        m: &CommitmentSigned,
    ) -> Result<RevokeAndAck, ChannelError> {
        let number = self.local_number.next().ok_or(RevocationError::Exhausted)?;
        let mut next = self.commitments.clone();
        let spec = next.receive_commit()?;
        let point = self.local_secrets.point(secp, number);
        let built = self
            .funded
            .build(secp, Owner::Local, &spec, number, &point)?;
        let sigs = CommitmentSignatures {
            signature: m.signature,
            htlc_signatures: m.htlc_signatures.clone(),
        };
        self.funded.verify_local(secp, &built, &sigs)?;
        let (secret, next_point) = self.local_secrets.revoke(secp, self.local_number)?;
        // Whether our outstanding commitment_signed went out before this revocation.
        self.retransmit.commit_before_revoke = self.commitments.remote_next.is_some();
        self.commitments = next;
        self.local_number = number;
        self.local_signatures = sigs;
        Ok(RevokeAndAck {
            channel_id: self.channel_id,
            per_commitment_secret: secret,
            next_per_commitment_point: next_point,
            extension: TlvStream::default(),
        })
    }

    /// After the peer revoked: HTLCs it offered that are now in both
    /// commitments, and HTLCs we offered whose failure left both.
    fn settled_events(&mut self, events: &mut Vec<Event>) {
        let c = &self.commitments;
        let committed: Vec<u64> = self
            .incoming
            .keys()
            .copied()
            .filter(|id| {
                let in_local = c.local.htlcs.iter().any(|h| !h.offered && h.id == *id);
                let in_remote = c.remote.htlcs.iter().any(|h| h.offered && h.id == *id);
                in_local && in_remote
            })
            .collect();
        for id in committed {
            let Some(h) = c.local.htlcs.iter().find(|h| !h.offered && h.id == id) else {
                continue;
            };
            let (amount, payment_hash, cltv_expiry) = (h.amount, h.payment_hash, h.cltv_expiry);
            if let Some(onion) = self.incoming.remove(&id) {
                events.push(Event::IncomingCommitted {
                    id,
                    amount,
                    payment_hash,
                    cltv_expiry,
                    onion,
                    dust_exposure_exceeded: self.over_dust.remove(&id),
                });
            }
        }
        let failed: Vec<u64> = self
            .failures
            .keys()
            .copied()
            .filter(|id| {
                !c.local.htlcs.iter().any(|h| h.offered && h.id == *id)
                    && !c.remote.htlcs.iter().any(|h| !h.offered && h.id == *id)
            })
            .collect();
        for id in failed {
            if let Some(reason) = self.failures.remove(&id) {
                events.push(Event::OutgoingFailed { id, reason });
            }
        }
    }

    /// Our removals (`update_fulfill_htlc`, `update_fail_htlc`,
    /// `update_fail_malformed_htlc`) not yet covered by a
    /// `commitment_signed`: a disconnection forgets them (BOLT 2), so the
    /// owner takes them first and offers them again once the channel is
    /// reestablished (see [`NormalChannel::redo_removal`]).
    pub fn unsigned_removals(&self) -> Vec<Message> {
        self.retransmit
            .proposed_updates
            .iter()
            .filter(|m| {
                matches!(
                    m,
                    Message::UpdateFulfillHtlc(_)
                        | Message::UpdateFailHtlc(_)
                        | Message::UpdateFailMalformedHtlc(_)
                )
            })
            .cloned()
            .collect()
    }

    /// Offers again a removal [`NormalChannel::unsigned_removals`] returned
    /// before a disconnection; `Ok(None)` if the HTLC is gone meanwhile.
    pub fn redo_removal(&mut self, m: &Message) -> Result<Option<Message>, ChannelError> {
        let id = match m {
            Message::UpdateFulfillHtlc(u) => u.id,
            Message::UpdateFailHtlc(u) => u.id,
            Message::UpdateFailMalformedHtlc(u) => u.id,
            _ => return Err(ChannelError::Unexpected("not a removal")),
        };
        if !self.offered_by_peer(id) {
            return Ok(None);
        }
        Ok(Some(match m {
            Message::UpdateFulfillHtlc(u) => {
                self.send_fulfill(id, Preimage(u.payment_preimage))?.into()
            }
            Message::UpdateFailHtlc(u) => self.send_fail(id, u.reason.0.clone())?.into(),
            Message::UpdateFailMalformedHtlc(u) => self
                .send_fail_malformed(id, u.sha256_of_onion, u.failure_code)?
                .into(),
            _ => return Err(ChannelError::Unexpected("not a removal")),
        }))
    }

    /// HTLCs the peer offered that are in our current commitment and that
    /// we have not begun to fulfil or fail: `(id, payment_hash, amount)`.
    pub fn unresolved_incoming(&self) -> Vec<(u64, PaymentHash, Msat)> {
        self.commitments
            .local
            .htlcs
            .iter()
            .filter(|h| !h.offered && !self.commitments.removal_pending(h.id))
            .map(|h| (h.id, h.payment_hash, h.amount))
            .collect()
    }

    /// Whether the peer's HTLC `id` is in our current commitment.
    fn offered_by_peer(&self, id: u64) -> bool {
        self.commitments
            .local
            .htlcs
            .iter()
            .any(|h| !h.offered && h.id == id)
    }

    /// The connection dropped: the peer's uncommitted updates are reversed
    /// and ours forgotten (see [`Commitments::drop_uncommitted`]). Returns
    /// our dropped updates.
    pub fn on_disconnect(&mut self) -> Vec<Update> {
        let dropped = self.commitments.drop_uncommitted();
        self.retransmit.proposed_updates.clear();
        // Onions and failure reasons of reversed peer updates go too.
        let c = &self.commitments;
        self.incoming.retain(|id, _| *id < c.next_remote_id());
        self.over_dust.retain(|id| *id < c.next_remote_id());
        self.failures.retain(|id, _| c.peer_removes(*id));
        dropped
    }

    fn check_channel(&self, id: ChannelId) -> Result<(), ChannelError> {
        if id == self.channel_id {
            Ok(())
        } else {
            Err(ChannelError::WrongChannel(id))
        }
    }
}
