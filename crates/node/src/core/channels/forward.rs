//! Forwarding (BOLT 4, BOLT 2 §"Forwarding HTLCs"): an HTLC offered to us
//! whose onion names a next channel becomes an HTLC we offer on that
//! channel, if our policy for it is met; its fulfil travels back with the
//! preimage, its failure wrapped with the secret we share with the payer.
//!
//! The link between the two HTLCs (a [`ForwardRecord`]) is stored in the
//! batch that carries the outgoing channel's new state with the add, before
//! the add is sent; the outcome from downstream is stored in it before it
//! is relayed upstream, so that a restart between any two steps relays it
//! then (after `channel_reestablish`), and an upstream HTLC can be claimed
//! on chain with a preimage learned downstream.

use std::collections::BTreeMap;

use beongae_onion::{
    build_error_packet, obfuscate_error_packet, FailureMessage, ForwardPayload, SharedSecret,
};
use beongae_wire::msgs::{Message, OnionPacketBytes};
use beongae_wire::{ChannelId, Msat, PaymentHash, Preimage, ShortChannelId};

use beongae_wire::{Reader, Writer};

use super::record::RecordError;
use super::{Channels, Phase};

/// Namespace of forwards (`in channel_id` || `in htlc id` →
/// [`ForwardRecord`]).
pub const NS_FORWARDS: &str = "forwards";

/// BOLT 4 `expiry_too_soon`: an outgoing HTLC must leave at least this
/// many blocks before its expiry, to get it resolved on chain in time.
pub(super) const MIN_OUTGOING_BLOCKS: u32 = 3;
/// BOLT 4 `expiry_too_far`: the most blocks from now an incoming HTLC may
/// expire at (as a payer's total CLTV limit).
pub(super) const MAX_OUTGOING_BLOCKS: u32 = 2016;

/// Where a forward stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardStatus {
    /// The outgoing HTLC is offered and not resolved.
    Pending,
    /// Fulfilled downstream: the upstream HTLC is fulfilled with it.
    Fulfilled(Preimage),
    /// Failed downstream: the upstream HTLC fails with this `reason`
    /// (already wrapped with our shared secret).
    Failed(Vec<u8>),
}

/// One forward: the HTLC offered to us and the one we offered for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRecord {
    /// The channel the HTLC came in on.
    pub in_channel: ChannelId,
    /// Its id there.
    pub in_htlc: u64,
    /// The channel we forwarded it on.
    pub out_channel: ChannelId,
    /// Our HTLC's id there.
    pub out_htlc: u64,
    /// Incoming `amount_msat`.
    pub in_amount: Msat,
    /// Outgoing `amount_msat` (the difference is our fee).
    pub out_amount: Msat,
    /// Incoming `cltv_expiry`.
    pub in_cltv: u32,
    /// Outgoing `cltv_expiry`.
    pub out_cltv: u32,
    /// `payment_hash`
    pub payment_hash: PaymentHash,
    /// The secret shared with the payer (wraps failures going back).
    pub shared_secret: [u8; 32],
    /// When it was forwarded (seconds).
    pub created: u64,
    /// Where it stands.
    pub status: ForwardStatus,
}

const FORWARD_VERSION: u8 = 1;

impl ForwardRecord {
    /// The store key.
    pub fn key(&self) -> Vec<u8> {
        forward_key(self.in_channel, self.in_htlc)
    }

    /// Bytes for the store.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_u8(FORWARD_VERSION);
        w.write_bytes(&self.out_channel.0);
        w.write_u64(self.out_htlc);
        w.write_u64(self.in_amount.to_msat());
        w.write_u64(self.out_amount.to_msat());
        w.write_u32(self.in_cltv);
        w.write_u32(self.out_cltv);
        w.write_bytes(&self.payment_hash.0);
        w.write_bytes(&self.shared_secret);
        w.write_u64(self.created);
        match &self.status {
            ForwardStatus::Pending => w.write_u8(0),
            ForwardStatus::Fulfilled(p) => {
                w.write_u8(1);
                w.write_bytes(&p.0);
            }
            ForwardStatus::Failed(reason) => {
                w.write_u8(2);
                w.write_u16(reason.len() as u16);
                w.write_bytes(reason);
            }
        }
        w.into_vec()
    }

    /// A record from the store.
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<ForwardRecord, RecordError> {
        let bad = || RecordError::Corrupt("forward key".into());
        let in_channel = ChannelId(
            key.get(..32)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        let in_htlc = u64::from_be_bytes(
            key.get(32..40)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        let mut r = Reader::new(bytes);
        if r.read_u8()? != FORWARD_VERSION {
            return Err(RecordError::Corrupt("forward version".into()));
        }
        let rec = ForwardRecord {
            in_channel,
            in_htlc,
            out_channel: ChannelId(r.read_array()?),
            out_htlc: r.read_u64()?,
            in_amount: Msat::from_msat(r.read_u64()?),
            out_amount: Msat::from_msat(r.read_u64()?),
            in_cltv: r.read_u32()?,
            out_cltv: r.read_u32()?,
            payment_hash: PaymentHash(r.read_array()?),
            shared_secret: r.read_array()?,
            created: r.read_u64()?,
            status: match r.read_u8()? {
                0 => ForwardStatus::Pending,
                1 => ForwardStatus::Fulfilled(Preimage(r.read_array()?)),
                2 => {
                    let n = r.read_u16()?;
                    ForwardStatus::Failed(r.read_bytes(usize::from(n))?.to_vec())
                }
                _ => return Err(RecordError::Corrupt("forward status".into())),
            },
        };
        r.finish()?;
        Ok(rec)
    }

    /// Our fee.
    pub fn fee(&self) -> Msat {
        Msat::from_msat(
            self.in_amount
                .to_msat()
                .saturating_sub(self.out_amount.to_msat()),
        )
    }
}

/// The key of the forward of HTLC `htlc` that came in on `channel`.
pub fn forward_key(channel: ChannelId, htlc: u64) -> Vec<u8> {
    let mut k = channel.0.to_vec();
    k.extend_from_slice(&htlc.to_be_bytes());
    k
}

/// How an HTLC offered to us is removed.
pub(super) enum Removal {
    /// `update_fulfill_htlc` with the preimage.
    Fulfil(Preimage),
    /// `update_fail_htlc` with the (obfuscated) reason.
    Fail(Vec<u8>),
}

/// A forward, for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSummary {
    /// The channel it came in on.
    pub in_channel: ChannelId,
    /// The channel it went out on.
    pub out_channel: ChannelId,
    /// Incoming amount.
    pub in_amount: Msat,
    /// Outgoing amount.
    pub out_amount: Msat,
    /// Our fee (earned once settled).
    pub fee: Msat,
    /// `payment_hash`
    pub payment_hash: PaymentHash,
    /// `pending`, `settled` or `failed`.
    pub status: &'static str,
    /// When (seconds).
    pub created: u64,
}

/// The forwards, in memory: every record by incoming HTLC, and the pending
/// ones by outgoing HTLC.
#[derive(Debug, Default)]
pub(in crate::core) struct Forwards {
    pub(super) by_in: BTreeMap<(ChannelId, u64), ForwardRecord>,
    pub(super) by_out: BTreeMap<(ChannelId, u64), (ChannelId, u64)>,
}

impl Forwards {
    pub(super) fn load(entries: &[(Vec<u8>, Vec<u8>)]) -> Result<Forwards, RecordError> {
        let mut f = Forwards::default();
        for (k, v) in entries {
            let rec = ForwardRecord::decode(k, v)?;
            if rec.status == ForwardStatus::Pending {
                f.by_out.insert(
                    (rec.out_channel, rec.out_htlc),
                    (rec.in_channel, rec.in_htlc),
                );
            }
            f.by_in.insert((rec.in_channel, rec.in_htlc), rec);
        }
        Ok(f)
    }
}

impl Channels {
    /// The open channel named `scid` in an onion: by our alias for it or
    /// its real short channel id.
    fn channel_by_scid(&self, scid: ShortChannelId) -> Option<ChannelId> {
        self.entries.iter().find_map(|(id, e)| match &e.phase {
            Phase::Normal { scid: real, .. }
                if *real == Some(scid) || self.local_alias(e.index) == Some(scid) =>
            {
                Some(*id)
            }
            _ => None,
        })
    }

    /// Our `channel_update` for channel `id` as a failure carries it: with
    /// its message type (BOLT 4), naming the channel by `scid`, the short
    /// channel id the onion used ("MUST set `short_channel_id` to the one
    /// used by the incoming onion"), and not older than the last we sent;
    /// empty if we have none.
    pub(super) fn update_for_failure(
        &self,
        id: ChannelId,
        scid: Option<ShortChannelId>,
    ) -> Vec<u8> {
        let now = u32::try_from(self.now.as_secs()).unwrap_or(u32::MAX);
        let timestamp = self.update_timestamps.get(&id).map_or(now, |t| now.max(*t));
        let Some(mut u) = self.our_update(id, timestamp) else {
            return Vec::new();
        };
        // An unannounced channel's update "MUST set `dont_forward`" (BOLT 7).
        let private = self.announced(id).is_none();
        if private {
            u.message_flags |= 2;
        }
        if let Some(scid) = scid.filter(|s| *s != u.short_channel_id || private) {
            u.short_channel_id = scid;
            let Ok(h) = u.signed_hash() else {
                return Vec::new();
            };
            u.signature = self.secp.sign_ecdsa(
                &bitcoin::secp256k1::Message::from_digest(h),
                &self.node_secret,
            );
        }
        Message::ChannelUpdate(u).encode().unwrap_or_default()
    }

    /// BOLT 4 §"Failure Messages", a forwarding node: why HTLC (`amount`,
    /// `cltv_expiry`) that came in on `in_channel` cannot go out as
    /// `payload` asks, if it cannot; else the outgoing channel.
    fn forward_check(
        &self,
        in_channel: ChannelId,
        amount: Msat,
        cltv_expiry: u32,
        payload: &ForwardPayload,
    ) -> Result<ChannelId, FailureMessage> {
        // "if an otherwise unspecified permanent error occurs during
        // forwarding to its receiving peer (e.g. channel recently closed)":
        // unknown_next_peer for a channel we do not have.
        let Some(out) = self.channel_by_scid(payload.short_channel_id) else {
            return Err(FailureMessage::UnknownNextPeer);
        };
        let entry = &self.entries[&out];
        let Phase::Normal { chan, scid, .. } = &entry.phase else {
            return Err(FailureMessage::UnknownNextPeer);
        };
        let update = || self.update_for_failure(out, Some(payload.short_channel_id));
        // An onion asking us to send the HTLC back over the channel it came
        // in on (a loop through us: no route needs it, and a loop ties up
        // our channel's HTLC slots for nothing) is refused, as LND does.
        if out == in_channel {
            return Err(FailureMessage::TemporaryChannelFailure {
                channel_update: update(),
            });
        }
        // In the order of BOLT 4's list ("SHOULD select the first error it
        // encounters"): 7, 11, 12, 13, 14, 20, 21.
        if !self.funding_usable(*scid) {
            return Err(FailureMessage::TemporaryChannelFailure {
                channel_update: update(),
            });
        }
        let policy = self.policy(out);
        // BOLT 7 §"HTLC Fees": after a change, "SHOULD keep accepting the
        // previous channel parameters for 10 minutes" (payers may not have
        // our new update yet): the lesser fee and delta of the two.
        let previous = self
            .previous_policies
            .get(&out)
            .filter(|(_, until)| self.now < *until)
            .map(|(p, _)| *p);
        let (min, max) = self
            .htlc_limits(out)
            .unwrap_or((chan.commitments.params.remote.htlc_minimum, Msat::ZERO));
        // "if the HTLC amount is below the minimum": our policy's, never
        // below the peer's htlc_minimum_msat for what we offer.
        if payload.amt_to_forward < min {
            return Err(FailureMessage::AmountBelowMinimum {
                htlc_msat: payload.amt_to_forward,
                channel_update: update(),
            });
        }
        // Above our htlc_maximum_msat: the channel cannot carry it (BOLT 4
        // has no code of its own for it; LDK and LND answer so too).
        if payload.amt_to_forward > max {
            return Err(FailureMessage::TemporaryChannelFailure {
                channel_update: update(),
            });
        }
        // "if the HTLC does not pay a sufficient fee".
        let fee = previous.map_or(policy.fee(payload.amt_to_forward), |p| {
            p.fee(payload.amt_to_forward)
                .min(policy.fee(payload.amt_to_forward))
        });
        if amount.to_msat()
            < payload
                .amt_to_forward
                .to_msat()
                .saturating_add(fee.to_msat())
        {
            return Err(FailureMessage::FeeInsufficient {
                htlc_msat: amount,
                channel_update: update(),
            });
        }
        // "if the cltv_expiry minus the outgoing_cltv_value is below the
        // cltv_expiry_delta for the outgoing channel".
        let delta = previous.map_or(policy.cltv_expiry_delta, |p| {
            p.cltv_expiry_delta.min(policy.cltv_expiry_delta)
        });
        if u64::from(cltv_expiry) < u64::from(payload.outgoing_cltv_value) + u64::from(delta) {
            return Err(FailureMessage::IncorrectCltvExpiry {
                cltv_expiry,
                channel_update: update(),
            });
        }
        // "if the cltv_expiry is unreasonably near the present": the
        // outgoing HTLC must leave time to time it out on chain, and the
        // incoming one time to claim it (our fulfilment deadline, BOLT 2).
        if payload.outgoing_cltv_value <= self.height + MIN_OUTGOING_BLOCKS
            || self.height + super::chain::FULFILL_DEADLINE_BLOCKS > cltv_expiry
        {
            return Err(FailureMessage::ExpiryTooSoon {
                channel_update: update(),
            });
        }
        // "if the outgoing channel has been disabled": not connected, not
        // reestablished, or shutting down.
        let shutting = chan.shutdown.local.is_some() || chan.shutdown.remote.is_some();
        if !entry.live || !self.connected.contains_key(&entry.peer) || shutting {
            return Err(FailureMessage::ChannelDisabled {
                disabled_flags: 0,
                channel_update: update(),
            });
        }
        // "if the cltv_expiry is more than max_htlc_cltv in the future".
        if cltv_expiry > self.height + MAX_OUTGOING_BLOCKS {
            return Err(FailureMessage::ExpiryTooFar);
        }
        Ok(out)
    }

    /// HTLC `in_htlc` on `in_channel` is irrevocably committed and its
    /// onion asks us to forward it: offer it on the next channel (the link
    /// stored first), or fail it back with the reason.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward(
        &mut self,
        in_channel: ChannelId,
        in_htlc: u64,
        amount: Msat,
        payment_hash: PaymentHash,
        cltv_expiry: u32,
        payload: ForwardPayload,
        next: OnionPacketBytes,
        shared_secret: SharedSecret,
        refuse: Option<FailureMessage>,
    ) {
        if self.forwards.by_in.contains_key(&(in_channel, in_htlc)) {
            return; // forwarded already: never twice
        }
        let out = match refuse.map_or_else(
            || self.forward_check(in_channel, amount, cltv_expiry, &payload),
            Err,
        ) {
            Ok(out) => out,
            Err(failure) => {
                tracing::info!(%payment_hash, ?failure, "not forwarding an htlc");
                return self.fail_incoming(in_channel, in_htlc, &shared_secret, &failure);
            }
        };
        let Some(entry) = self.entries.get_mut(&out) else {
            return;
        };
        let peer = entry.peer;
        let Phase::Normal { chan, .. } = &mut entry.phase else {
            return;
        };
        match chan.send_add(
            payload.amt_to_forward,
            payment_hash,
            payload.outgoing_cltv_value,
            next,
        ) {
            Ok(add) => {
                let rec = ForwardRecord {
                    in_channel,
                    in_htlc,
                    out_channel: out,
                    out_htlc: add.id,
                    in_amount: amount,
                    out_amount: payload.amt_to_forward,
                    in_cltv: cltv_expiry,
                    out_cltv: payload.outgoing_cltv_value,
                    payment_hash,
                    shared_secret: shared_secret.0,
                    created: self.now.as_secs(),
                    status: ForwardStatus::Pending,
                };
                // With the outgoing channel's state (touched), before the add.
                self.batch.put(NS_FORWARDS, rec.key(), rec.encode());
                self.forwards
                    .by_out
                    .insert((out, add.id), (in_channel, in_htlc));
                self.forwards.by_in.insert((in_channel, in_htlc), rec);
                self.touch(out);
                self.send(peer, add);
            }
            Err(e) => {
                // "if during forwarding to its receiving peer, an otherwise
                // unspecified, transient error occurs in the outgoing
                // channel (e.g. channel capacity reached, too many in-flight
                // HTLCs)".
                tracing::info!(%payment_hash, error = %e, "cannot offer the forwarded htlc");
                let failure = FailureMessage::TemporaryChannelFailure {
                    channel_update: self.update_for_failure(out, Some(payload.short_channel_id)),
                };
                self.fail_incoming(in_channel, in_htlc, &shared_secret, &failure);
            }
        }
    }

    /// Fails HTLC `htlc` offered to us on `channel` with our own `failure`.
    fn fail_incoming(
        &mut self,
        channel: ChannelId,
        htlc: u64,
        shared_secret: &SharedSecret,
        failure: &FailureMessage,
    ) {
        match build_error_packet(shared_secret, failure) {
            Ok(reason) => self.send_fail_upstream(channel, htlc, reason),
            Err(e) => tracing::error!(%channel, htlc, error = %e, "cannot build a failure"),
        }
    }

    /// `update_fail_htlc` for HTLC `htlc` offered to us on `channel`, if the
    /// channel is live (else after its next `channel_reestablish`).
    fn send_fail_upstream(&mut self, channel: ChannelId, htlc: u64, reason: Vec<u8>) {
        self.remove_incoming(channel, htlc, Removal::Fail(reason));
    }

    /// `update_fulfill_htlc` for HTLC `htlc` offered to us on `channel`, if
    /// the channel is live (else after its next `channel_reestablish`,
    /// from what is stored: the invoice, keysend, part or forward record).
    pub(super) fn fulfil_incoming(&mut self, channel: ChannelId, htlc: u64, preimage: Preimage) {
        self.remove_incoming(channel, htlc, Removal::Fulfil(preimage));
    }

    /// Sends `removal` of HTLC `htlc` offered to us on `channel` if the
    /// channel is open and live. Whether it is done with: sent (or refused
    /// by the channel, logged), or the channel is no longer open (the HTLC
    /// resolves on chain); not while the channel is not live.
    pub(super) fn remove_incoming(
        &mut self,
        channel: ChannelId,
        htlc: u64,
        removal: Removal,
    ) -> bool {
        let Some(entry) = self.entries.get_mut(&channel) else {
            return true;
        };
        let peer = entry.peer;
        let live = entry.live && self.connected.contains_key(&peer);
        let Phase::Normal { chan, .. } = &mut entry.phase else {
            return true;
        };
        if !live {
            return false;
        }
        let sent = match removal {
            Removal::Fulfil(p) => chan.send_fulfill(htlc, p).map(Message::from),
            Removal::Fail(reason) => chan.send_fail(htlc, reason).map(Message::from),
        };
        match sent {
            Ok(m) => {
                self.send(peer, m);
                self.touch(channel);
            }
            Err(e) => tracing::warn!(%channel, htlc, error = %e, "cannot remove the incoming htlc"),
        }
        true
    }

    /// Our pending forwarded HTLCs on `channel`: (our HTLC id, its
    /// payment hash).
    pub(super) fn forwarded_out(&self, channel: ChannelId) -> Vec<(u64, PaymentHash)> {
        self.forwards
            .by_out
            .range((channel, 0)..=(channel, u64::MAX))
            .filter_map(|((_, htlc), key)| {
                Some((*htlc, self.forwards.by_in.get(key)?.payment_hash))
            })
            .collect()
    }

    /// Our HTLC `htlc` on `channel`, if it is a forward: the incoming HTLC.
    pub(super) fn forward_of(&self, channel: ChannelId, htlc: u64) -> Option<(ChannelId, u64)> {
        self.forwards.by_out.get(&(channel, htlc)).copied()
    }

    /// Stores the outcome of forward `key` and relays it upstream.
    fn forward_resolved(&mut self, key: (ChannelId, u64), status: ForwardStatus) {
        let Some(rec) = self.forwards.by_in.get_mut(&key) else {
            return;
        };
        if rec.status != ForwardStatus::Pending {
            return;
        }
        rec.status = status.clone();
        self.forwards
            .by_out
            .remove(&(rec.out_channel, rec.out_htlc));
        let encoded = rec.encode();
        let k = rec.key();
        self.batch.put(NS_FORWARDS, k, encoded);
        match status {
            ForwardStatus::Fulfilled(p) => {
                self.fulfil_incoming(key.0, key.1, p);
                // An upstream channel already closed: claim its HTLC on
                // chain with the preimage now (BOLT 5).
                if matches!(
                    self.entries.get(&key.0).map(|e| &e.phase),
                    Some(Phase::Closed(_))
                ) {
                    self.resolve(key.0);
                }
            }
            ForwardStatus::Failed(reason) => self.send_fail_upstream(key.0, key.1, reason),
            ForwardStatus::Pending => {}
        }
    }

    /// Our forwarded HTLC was fulfilled (off chain, or its preimage seen on
    /// chain): the preimage goes upstream at once (BOLT 2: "MUST fulfil
    /// ... as soon as possible").
    pub(super) fn forward_fulfilled(&mut self, key: (ChannelId, u64), preimage: Preimage) {
        tracing::info!(in_channel = %key.0, htlc = key.1, "forward fulfilled");
        self.forward_resolved(key, ForwardStatus::Fulfilled(preimage));
    }

    /// Our forwarded HTLC failed with the downstream `reason`: wrapped with
    /// our shared secret (BOLT 4 §"Returning Errors": "MUST ... obfuscate
    /// ... using the shared_secret") and sent upstream.
    pub(super) fn forward_failed(&mut self, key: (ChannelId, u64), reason: &[u8]) {
        let Some(rec) = self.forwards.by_in.get(&key) else {
            return;
        };
        let mut wrapped = reason.to_vec();
        obfuscate_error_packet(&SharedSecret(rec.shared_secret), &mut wrapped);
        self.forward_resolved(key, ForwardStatus::Failed(wrapped));
    }

    /// Our forwarded HTLC failed without a downstream reason to relay
    /// (malformed downstream, dropped by a disconnection before it was
    /// signed, the channel closed, timed out on chain): we fail upstream
    /// with our own `failure` (BOLT 4: a malformed downstream HTLC is
    /// reported with `update_fail_htlc` built from its failure code and
    /// `sha256_of_onion`).
    pub(super) fn forward_failed_here(&mut self, key: (ChannelId, u64), failure: FailureMessage) {
        let Some(rec) = self.forwards.by_in.get(&key) else {
            return;
        };
        let ss = SharedSecret(rec.shared_secret);
        let reason = build_error_packet(&ss, &failure).or_else(|e| {
            tracing::error!(error = %e, ?failure, "cannot build a failure; sending temporary_node_failure");
            build_error_packet(&ss, &FailureMessage::TemporaryNodeFailure)
        });
        match reason {
            Ok(reason) => self.forward_resolved(key, ForwardStatus::Failed(reason)),
            Err(e) => tracing::error!(error = %e, "cannot build a failure"),
        }
    }

    /// After `channel_reestablish` of `channel` (and at every restart):
    /// forwards resolved downstream whose incoming HTLC on it is still
    /// unresolved are relayed (again).
    pub(super) fn relay_resolved_forwards(&mut self, channel: ChannelId) {
        let Some(Phase::Normal { chan, .. }) = self.entries.get(&channel).map(|e| &e.phase) else {
            return;
        };
        let open: Vec<u64> = chan
            .unresolved_incoming()
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        let todo: Vec<(u64, ForwardStatus)> = open
            .into_iter()
            .filter_map(|id| {
                let rec = self.forwards.by_in.get(&(channel, id))?;
                (rec.status != ForwardStatus::Pending).then(|| (id, rec.status.clone()))
            })
            .collect();
        for (id, status) in todo {
            match status {
                ForwardStatus::Fulfilled(p) => self.fulfil_incoming(channel, id, p),
                ForwardStatus::Failed(reason) => self.send_fail_upstream(channel, id, reason),
                ForwardStatus::Pending => {}
            }
        }
    }

    /// The preimage of HTLC `htlc` offered to us on `channel`, if it was
    /// forwarded and fulfilled downstream.
    pub(super) fn forwarded_preimage(&self, channel: ChannelId, htlc: u64) -> Option<Preimage> {
        match &self.forwards.by_in.get(&(channel, htlc))?.status {
            ForwardStatus::Fulfilled(p) => Some(*p),
            _ => None,
        }
    }

    /// Every forward, newest first.
    pub(in crate::core) fn forward_summaries(&self) -> Vec<ForwardSummary> {
        let mut v: Vec<ForwardSummary> = self
            .forwards
            .by_in
            .values()
            .map(|r| ForwardSummary {
                in_channel: r.in_channel,
                out_channel: r.out_channel,
                in_amount: r.in_amount,
                out_amount: r.out_amount,
                fee: r.fee(),
                payment_hash: r.payment_hash,
                status: match r.status {
                    ForwardStatus::Pending => "pending",
                    ForwardStatus::Fulfilled(_) => "settled",
                    ForwardStatus::Failed(_) => "failed",
                },
                created: r.created,
            })
            .collect();
        v.sort_by_key(|f| std::cmp::Reverse(f.created));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_records_round_trip() {
        for status in [
            ForwardStatus::Pending,
            ForwardStatus::Fulfilled(Preimage([7; 32])),
            ForwardStatus::Failed(vec![9; 292]),
        ] {
            let rec = ForwardRecord {
                in_channel: ChannelId([1; 32]),
                in_htlc: 5,
                out_channel: ChannelId([2; 32]),
                out_htlc: 9,
                in_amount: Msat::from_msat(1_001_001),
                out_amount: Msat::from_msat(1_000_000),
                in_cltv: 900,
                out_cltv: 820,
                payment_hash: PaymentHash([3; 32]),
                shared_secret: [4; 32],
                created: 1_700_000_000,
                status,
            };
            let bytes = rec.encode();
            assert_eq!(ForwardRecord::decode(&rec.key(), &bytes).unwrap(), rec);
            assert!(ForwardRecord::decode(&rec.key(), &bytes[..bytes.len() - 1]).is_err());
            assert_eq!(rec.fee(), Msat::from_msat(1_001));
        }
    }
}
