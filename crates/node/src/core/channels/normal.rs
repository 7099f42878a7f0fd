//! Channels in normal operation inside the core: the peer's updates and
//! signatures, our signing, reconnection (`channel_reestablish`), and the
//! cooperative close (`shutdown`, legacy `closing_signed`).

use beongae_channel::normal::{ChannelError, Event as ChannelEvent, ReestablishError};
use beongae_script::FeeratePerKw;
use beongae_wire::msgs::{ChannelReestablish, ClosingSigned, Message, Shutdown, U16Bytes};
use beongae_wire::{ChannelId, ErrorMessage, Feature, Features, NodeId, TlvStream};
use bitcoin::{Amount, Transaction};

use super::{Channels, Phase};
use crate::core::{CommandId, FailureKind, PeerId, Reply};

/// Weight of a legacy closing transaction with two P2WPKH outputs, rounded
/// up (BOLT 3 §"Closing Transaction": one 2-of-2 input, two outputs).
const CLOSING_WEIGHT: u64 = 700;

/// Mutual closing transactions one channel may have broadcast (each
/// replacing the last at a higher fee).
const MAX_CLOSING_TXS: usize = 8;

/// How long a legacy closing fee negotiation may go without agreeing.
pub(in crate::core) const NEGOTIATION_TIMEOUT: std::time::Duration =
    std::time::Duration::from_secs(600);

/// How long the closee of a simple close waits for the peer's
/// `closing_complete` before it sends its own (BOLT 2
/// `option_simple_close`: both nodes SHOULD send one; the one that asked
/// pays for its own, and a peer that lost its request in a restart would
/// otherwise leave the channel shutting down for ever).
pub(in crate::core) const CLOSEE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// The lowest feerate relayed by default (1 sat/vbyte, rounded up).
const MIN_RELAY_FEERATE: FeeratePerKw = FeeratePerKw::FLOOR;

impl Channels {
    /// A peer finished `init`: BOLT 2 §"Message Retransmission", "upon
    /// reconnection ... MUST send `channel_reestablish`" for every channel
    /// past `funding_signed`.
    pub(in crate::core) fn on_peer_ready(
        &mut self,
        node: NodeId,
        peer: PeerId,
        features: Features,
    ) {
        let queries = features.offers(beongae_wire::Feature::GossipQueries);
        self.connected.insert(node, (peer, features));
        self.gossip_peer_ready(node, queries);
        let ids = self.channel_ids_with(node);
        for id in ids {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            entry.live = false;
            let msg = match &entry.phase {
                Phase::Funded { funding, .. } => funding.reestablish(&self.secp),
                Phase::Normal { chan, .. } => chan.reestablish(&self.secp),
                // A withheld commitment waits for a reestablish that shows
                // our state is current.
                Phase::Closed(_) => match self.withheld_reestablish(id) {
                    Some(m) => m,
                    None => continue,
                },
            };
            self.send(node, msg);
        }
    }

    /// A ready peer went away: updates not yet signed by both are undone
    /// (BOLT 2), openings in progress are abandoned.
    pub(in crate::core) fn on_peer_gone(&mut self, node: NodeId) {
        self.connected.remove(&node);
        self.gossip_peer_gone(node);
        let openings: Vec<_> = self
            .opening
            .keys()
            .filter(|(n, _)| *n == node)
            .copied()
            .collect();
        for key in openings {
            if let Some(o) = self.opening.remove(&key) {
                let why = format!("{node} disconnected during the channel open");
                let command = self.opening_dropped(&o);
                self.reply(command, Reply::failed(FailureKind::NotConnected, why));
            }
        }
        let ids = self.channel_ids_with(node);
        // Our HTLCs the disconnection dropped, handled once every channel
        // with the peer is down (a payment may place them again elsewhere).
        let mut our_dropped = Vec::new();
        for id in ids {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            entry.live = false;
            entry.sent_complete = false;
            // Only connected time counts towards the negotiation's limit.
            entry.negotiating_since = None;
            entry.closee_since = None;
            let dropped = match &mut entry.phase {
                Phase::Normal {
                    chan,
                    closing,
                    simple,
                    ..
                } => {
                    // BOLT 2: a closing negotiation restarts after reconnection.
                    *closing = None;
                    *simple = None;
                    entry.redo.extend(chan.unsigned_removals());
                    chan.on_disconnect()
                }
                Phase::Funded { ready_sent, .. } => {
                    // Sent again after the peer's channel_reestablish.
                    *ready_sent = false;
                    continue;
                }
                Phase::Closed(_) => continue,
            };
            self.touch(id);
            for update in dropped {
                if let beongae_channel::commitments::Update::Add { id: htlc, .. } = update {
                    our_dropped.push((id, htlc));
                }
            }
        }
        for (id, htlc) in our_dropped {
            self.outgoing_dropped(id, htlc);
        }
    }

    /// The peer's `channel_reestablish`.
    pub(super) fn on_reestablish(&mut self, node: NodeId, msg: &ChannelReestablish) {
        let id = msg.channel_id;
        let Some(entry) = self.entries.get_mut(&id).filter(|e| e.peer == node) else {
            return self.unknown(node, id);
        };
        entry.live = true;
        let index = entry.index;
        let alias = self.local_alias(index);
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let result = match &mut entry.phase {
            Phase::Funded { funding, .. } => match funding.check_reestablish(msg) {
                Ok(()) => {
                    entry.verified = true;
                    // Both at commitment 0: our channel_ready goes again if due.
                    self.check_ready(id);
                    return;
                }
                Err(e) => Err(ChannelError::Reestablish(e)),
            },
            Phase::Normal { chan, .. } => {
                chan.receive_reestablish(&self.secp, msg).map(|mut out| {
                    // A channel_ready sent again carries our alias, as the
                    // first did.
                    for m in &mut out {
                        if let Message::ChannelReady(r) = m {
                            r.short_channel_id_alias = alias;
                        }
                    }
                    // BOLT 2: "if it has sent `shutdown` previously, MUST
                    // retransmit `shutdown`".
                    if let Some(script) = &chan.shutdown.local {
                        out.push(Message::Shutdown(Shutdown {
                            channel_id: id,
                            scriptpubkey: U16Bytes(script.to_bytes()),
                            extension: TlvStream::default(),
                        }));
                    }
                    out
                })
            }
            Phase::Closed(c) if c.awaits_reestablish() => {
                return self.on_withheld_reestablish(node, msg);
            }
            Phase::Closed(super::record::Closed { reason, .. }) => {
                // BOLT 2: "if a channel is in an error state: SHOULD
                // retransmit the error packet".
                if let Some(why) = reason.strip_prefix("failed: ") {
                    let e = ErrorMessage::new(id, why);
                    self.send(node, e);
                }
                return;
            }
        };
        match result {
            Ok(msgs) => {
                if let Some(e) = self.entries.get_mut(&id) {
                    e.verified = true;
                }
                for m in msgs {
                    self.send(node, m);
                }
                self.redo_removals(id);
                self.fulfill_paid(id);
                self.relay_resolved_forwards(id);
                self.update_fee(id);
                self.touch(id);
                if matches!(
                    self.entries.get(&id).map(|e| &e.phase),
                    Some(Phase::Normal { .. })
                ) {
                    self.send_channel_update(id);
                    // BOLT 7: "if it has NOT received an
                    // `announcement_signatures` message: SHOULD retransmit".
                    if self.announced(id).is_none() {
                        self.send_announcement_signatures(id);
                    }
                }
                // Deadlines held back until our state was shown current.
                self.check_htlc_deadlines();
            }
            Err(ChannelError::Reestablish(e)) if peer_claims_ahead(&e) => {
                // BOLT 2: our state is old; we "MUST NOT broadcast" our
                // commitment. Ask the peer to close; our funds come back in
                // its commitment's to_remote output. A peer that claims a
                // later state without proving it gets the same answer for
                // now: if our state were old, our commitment would be
                // revoked; a later reestablish (or the user) may release it.
                let (why, withheld) = match e {
                    ReestablishError::WeFellBehind(n) => (
                        format!("our channel state is behind (you hold our secret {n}); please close the channel"),
                        super::record::Withheld::Behind,
                    ),
                    other => (
                        format!("{other}; you claim a later state than ours, so we do not broadcast our commitment: please close the channel"),
                        super::record::Withheld::Unverified,
                    ),
                };
                self.refused(node, id, &format!("channel_reestablish: {why}"));
                self.fail_withheld(id, &why, withheld);
            }
            Err(e) => {
                let why = e.to_string();
                if matches!(e, ChannelError::Reestablish(_)) {
                    self.refused(node, id, &format!("channel_reestablish: {why}"));
                }
                self.fail(id, &why)
            }
        }
    }

    /// [`crate::core::Event::CommitmentRefused`].
    fn refused(&mut self, peer: NodeId, channel_id: ChannelId, reason: &str) {
        tracing::warn!(channel = %channel_id, %peer, %reason, "the peer's commitment refused");
        self.event(crate::core::Event::CommitmentRefused {
            channel_id,
            peer,
            reason: reason.to_owned(),
        });
    }

    /// Offers again the fulfills and fails a disconnection forgot.
    fn redo_removals(&mut self, id: ChannelId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let peer = entry.peer;
        let redo = std::mem::take(&mut entry.redo);
        let Phase::Normal { chan, .. } = &mut entry.phase else {
            return;
        };
        let mut out = Vec::new();
        for m in &redo {
            match chan.redo_removal(m) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {}
                Err(e) => tracing::warn!(channel = %id, error = %e, "cannot offer a removal again"),
            }
        }
        for m in out {
            self.send(peer, m);
        }
    }

    /// An update, `commitment_signed`, `revoke_and_ack`, `update_fee` or
    /// `shutdown` from the peer.
    pub(super) fn on_normal_message(&mut self, node: NodeId, id: ChannelId, msg: &Message) {
        let Some(entry) = self.entries.get_mut(&id).filter(|e| e.peer == node) else {
            return self.unknown(node, id);
        };
        let live = entry.live;
        let result = match &mut entry.phase {
            Phase::Normal { .. } | Phase::Funded { .. } if !live => {
                // BOLT 2: nothing but channel_reestablish until it arrived.
                // Not worth a force close: the update is ignored.
                let text = format!("{} before channel_reestablish; ignored", msg.name());
                return self.send(node, beongae_wire::Warning::new(id, &text));
            }
            Phase::Normal { chan, .. } => chan.receive(&self.secp, msg),
            Phase::Funded { .. } if matches!(msg, Message::Shutdown(_)) => {
                // Allowed after funding_signed (BOLT 2), but not handled
                // before channel_ready yet: say so, close nothing.
                let text = "shutdown before channel_ready is not supported yet; send it once the channel is ready";
                return self.send(node, beongae_wire::Warning::new(id, text));
            }
            Phase::Funded { .. } => {
                return self.fail(id, &format!("{} before channel_ready", msg.name()));
            }
            Phase::Closed(_) => return,
        };
        match result {
            Ok(received) => {
                for m in received.reply {
                    self.send(node, m);
                }
                for e in received.events {
                    self.on_channel_event(id, e);
                }
                self.touch(id);
            }
            Err(e) => {
                let why = e.to_string();
                if matches!(msg, Message::CommitmentSigned(_)) {
                    self.refused(node, id, &format!("commitment_signed: {why}"));
                }
                self.fail(id, &why)
            }
        }
    }

    fn on_channel_event(&mut self, id: ChannelId, e: ChannelEvent) {
        match e {
            ChannelEvent::IncomingCommitted {
                id: htlc,
                amount,
                payment_hash,
                cltv_expiry,
                onion,
                dust_exposure_exceeded,
            } => self.on_incoming(
                id,
                htlc,
                amount,
                payment_hash,
                cltv_expiry,
                &onion,
                dust_exposure_exceeded,
            ),
            ChannelEvent::OutgoingFulfilled { id: htlc, preimage } => {
                self.outgoing_fulfilled(id, htlc, preimage)
            }
            ChannelEvent::OutgoingFailed { id: htlc, reason } => {
                self.outgoing_failed(id, htlc, &reason)
            }
            // Answered in `maybe_start_closing` once our updates are signed.
            ChannelEvent::ShutdownReceived { .. } => {}
        }
    }

    /// Signs the peer's next commitment when there is something to sign.
    pub(super) fn sign_if_needed(&mut self, id: ChannelId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if !entry.live || !self.connected.contains_key(&entry.peer) {
            return;
        }
        let peer = entry.peer;
        let Phase::Normal { chan, .. } = &mut entry.phase else {
            return;
        };
        match chan.sign(&self.secp) {
            Ok(Some(cs)) => {
                // Kept for the penalty should this commitment ever be
                // revoked and broadcast: each HTLC once, with the first
                // commitment it is in (the secret comes later).
                let number = chan.remote.current.get() + 1;
                if let Some(next) = &chan.commitments.remote_next {
                    let before = &chan.commitments.remote.htlcs;
                    let new: Vec<_> = next
                        .htlcs
                        .iter()
                        .filter(|h| {
                            !before
                                .iter()
                                .any(|b| b.offered == h.offered && b.id == h.id)
                        })
                        .cloned()
                        .collect();
                    if !new.is_empty() {
                        self.batch.put(
                            super::record::NS_REMOTE_HTLCS,
                            super::record::remote_htlcs_key(id, number),
                            super::record::encode_remote_htlcs(&new),
                        );
                    }
                }
                self.send(peer, cs);
                self.touch(id);
            }
            Ok(None) => {}
            Err(e) => self.fail(id, &e.to_string()),
        }
    }

    /// `closechannel`: our `shutdown` as soon as our updates are signed.
    pub(in crate::core) fn close(&mut self, id: ChannelId, command: CommandId) {
        if self.settings.close_script.is_none() {
            return self.reply(
                Some(command),
                Reply::failed(
                    FailureKind::Refused,
                    "no close address: the node runs without a wallet",
                ),
            );
        }
        let simple_close = self.entries.get(&id).is_some_and(|e| {
            self.connected
                .get(&e.peer)
                .is_some_and(|(_, f)| f.offers(Feature::SimpleClose))
        });
        let feerate = self.feerate;
        let Some(entry) = self.entries.get_mut(&id) else {
            return self.reply(
                Some(command),
                Reply::failed(FailureKind::UnknownChannel, format!("no channel {id}")),
            );
        };
        let funding = entry.funding;
        let live = entry.live;
        match &mut entry.phase {
            Phase::Normal {
                closing_txs,
                chan,
                simple,
                ..
            } if !closing_txs.is_empty() => {
                // Already agreed. With option_simple_close we may replace it
                // (BIP 125) by a closing_complete of ours at the current
                // feerate, if that pays at least the highest fee so far plus
                // the relay fee of the new transaction and we can pay it.
                let fee_of = |t: &Transaction| {
                    let out: Amount = t.output.iter().map(|o| o.value).sum();
                    funding.checked_sub(out).unwrap_or(Amount::ZERO)
                };
                let best = closing_txs.iter().map(fee_of).max().unwrap_or(Amount::ZERO);
                let last = closing_txs.last().map(Transaction::compute_txid);
                let ours = Amount::from_sat(chan.commitments.local.to_local.to_msat() / 1000);
                let target = feerate.fee_for_weight(CLOSING_WEIGHT);
                let floor = best + MIN_RELAY_FEERATE.fee_for_weight(CLOSING_WEIGHT);
                let bump = simple_close
                    && live
                    && !simple.as_ref().is_some_and(|s| s.awaiting_sig())
                    && closing_txs.len() < MAX_CLOSING_TXS
                    && target >= floor
                    && target <= ours;
                if bump {
                    entry.sent_complete = false;
                    entry.min_close_fee = Some(floor);
                    return self.set_close_command(id, command);
                }
                if let Some(txid) = last {
                    self.reply(
                        Some(command),
                        Reply::ChannelClosed {
                            channel_id: id,
                            txid,
                        },
                    );
                }
            }
            Phase::Normal { chan, .. } if simple_close || chan.funded.we_are_funder => {
                // We would pay the closing fee (as the funder, or as the
                // closer with option_simple_close): refuse to close at a fee
                // that is never relayed (SAFETY.md: "a closer ... with
                // zero, dust or below-fee balance").
                let min = MIN_RELAY_FEERATE.fee_for_weight(CLOSING_WEIGHT);
                let ours = Amount::from_sat(chan.commitments.local.to_local.to_msat() / 1000);
                if ours < min {
                    return self.reply(
                        Some(command),
                        Reply::failed(FailureKind::Refused, format!(
                            "our balance of {} sat cannot pay the lowest relayable closing fee of {} sat: ask the peer to close the channel",
                            ours.to_sat(),
                            min.to_sat()
                        )),
                    );
                }
                self.set_close_command(id, command);
            }
            Phase::Normal { .. } => self.set_close_command(id, command),
            Phase::Funded { .. } => self.reply(
                Some(command),
                Reply::failed(FailureKind::ChannelUnusable, format!(
                    "channel {id} is not open yet: close it with --force (our commitment goes to chain)"
                )),
            ),
            Phase::Closed(super::record::Closed {
                txid: Some(txid), ..
            }) => {
                let txid = *txid;
                self.reply(
                    Some(command),
                    Reply::ChannelClosed {
                        channel_id: id,
                        txid,
                    },
                )
            }
            Phase::Closed(super::record::Closed { reason, .. }) => {
                let why = format!("channel {id} is closed ({reason})");
                self.reply(Some(command), Reply::failed(FailureKind::ChannelUnusable, why))
            }
        }
    }

    /// `closechannel --force`: our latest commitment goes out (BOLT 5
    /// "unilateral close"), unless the channel closed without it because
    /// our state may be old (ADR 0007): then forcing it could hand the peer
    /// a revoked commitment to punish, and the user is told so.
    pub(in crate::core) fn force_close(&mut self, id: ChannelId, command: CommandId) {
        let reply = match self.entries.get(&id).map(|e| &e.phase) {
            None => Reply::failed(FailureKind::UnknownChannel, format!("no channel {id}")),
            Some(Phase::Closed(c))
                if c.tx.is_none() && c.withheld != super::record::Withheld::No =>
            {
                match self.force_withheld(id) {
                    Ok(txid) => Reply::ChannelClosed {
                        channel_id: id,
                        txid,
                    },
                    Err(why) => Reply::failed(FailureKind::Refused, why),
                }
            }
            Some(Phase::Closed(super::record::Closed {
                txid: Some(txid), ..
            })) => Reply::ChannelClosed {
                channel_id: id,
                txid: *txid,
            },
            Some(Phase::Closed(super::record::Closed { reason, .. })) => Reply::failed(
                FailureKind::ChannelUnusable,
                format!("channel {id} is closed ({reason})"),
            ),
            Some(_) => {
                self.force(id, "force-closed by the user");
                match self.entries.get(&id).map(|e| &e.phase) {
                    Some(Phase::Closed(super::record::Closed {
                        txid: Some(txid), ..
                    })) => Reply::ChannelClosed {
                        channel_id: id,
                        txid: *txid,
                    },
                    _ => Reply::failed(
                        FailureKind::ChannelUnusable,
                        format!("channel {id}: no commitment to broadcast"),
                    ),
                }
            }
        };
        self.reply(Some(command), reply);
    }

    /// Records the user's close command (a newer one supersedes it).
    fn set_close_command(&mut self, id: ChannelId, command: CommandId) {
        let Some(Phase::Normal { command: c, .. }) =
            self.entries.get_mut(&id).map(|e| &mut e.phase)
        else {
            return;
        };
        if let Some(old) = c.replace(command) {
            self.reply(
                Some(old),
                Reply::failed(FailureKind::Refused, "superseded by a newer close"),
            );
        }
        self.touch(id);
    }

    /// Sends `shutdown` when asked to (by the user or the peer's own) and
    /// starts the fee negotiation once the channel is empty (BOLT 2
    /// §"Closing Negotiation": the funder sends the first `closing_signed`).
    pub(super) fn maybe_start_closing(&mut self, id: ChannelId) {
        let feerate = self.feerate;
        let height = self.height;
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if !entry.live || !self.connected.contains_key(&entry.peer) {
            return;
        }
        let peer = entry.peer;
        let Phase::Normal {
            chan,
            closing,
            simple,
            command,
            closing_txs,
            ..
        } = &mut entry.phase
        else {
            return;
        };
        // A mutual close is broadcast: no new negotiation (it would only add
        // closing transactions), except our own simple close when the one we
        // signed pays too little to relay.
        let agreed = !closing_txs.is_empty();
        let sent_complete = &mut entry.sent_complete;
        let close_as_closer = &mut entry.close_as_closer;
        let closee_since = &mut entry.closee_since;
        let min_close_fee = entry.min_close_fee;
        let mut refused: Option<(CommandId, String)> = None;
        let mut out: Vec<Message> = Vec::new();
        let wants = command.is_some() || chan.shutdown.remote.is_some();
        if wants && chan.shutdown.local.is_none() {
            let Some(script) = self.settings.close_script.clone() else {
                return;
            };
            match chan.send_shutdown(script) {
                Ok(m) => out.push(m.into()),
                // Updates of ours still unsigned: after the next signature.
                Err(ChannelError::Unexpected(_)) => return,
                Err(e) => return self.fail(id, &e.to_string()),
            }
        }
        let mut failed = None;
        let simple_close = self
            .connected
            .get(&peer)
            .is_some_and(|(_, f)| f.offers(Feature::SimpleClose));
        if simple_close && chan.ready_to_close() {
            // BOLT 2 `option_simple_close`: each side may close paying its
            // own fee; we send closing_complete when we asked to close (the
            // peer that asked pays for its own transaction) and answer the
            // peer's.
            if simple.is_none() {
                match chan.start_simple_close() {
                    Ok(c) => *simple = Some(Box::new(c)),
                    Err(e) => failed = Some(e.to_string()),
                }
            }
            // After a close agreed, a command is the user's request to
            // replace it at a higher fee (`close`).
            let closer = command.is_some() || *close_as_closer;
            // Only while no close is agreed: once one is, the closee has
            // nothing to add (and would pay a fee it never asked to pay).
            if !closer && !*sent_complete && !agreed && closee_since.is_none() {
                *closee_since = Some(self.now);
            }
            if let (Some(s), true) = (simple.as_mut(), closer) {
                if !s.awaiting_sig() && !*sent_complete {
                    // We pay our own fee: at our feerate, or all we have if
                    // that is less, but never below the relay minimum.
                    let min = MIN_RELAY_FEERATE.fee_for_weight(CLOSING_WEIGHT);
                    let ours = Amount::from_sat(chan.commitments.local.to_local.to_msat() / 1000);
                    let fee = feerate.fee_for_weight(CLOSING_WEIGHT).max(min).min(ours);
                    let floor = min_close_fee.unwrap_or(min);
                    let sent = if fee < floor && agreed {
                        Err(format!(
                            "the feerate estimate fell: {} sat would not replace the pending close (at least {} sat needed)",
                            fee.to_sat(),
                            floor.to_sat()
                        ))
                    } else if fee < min {
                        Err(format!(
                            "our balance of {} sat cannot pay the lowest relayable closing fee of {} sat: ask the peer to close the channel",
                            ours.to_sat(),
                            min.to_sat()
                        ))
                    } else {
                        s.complete(&self.secp, fee, height)
                            .map_err(|e| e.to_string())
                    };
                    match sent {
                        Ok(m) => {
                            *sent_complete = true;
                            out.push(m.into());
                        }
                        // Not a reason to fail the channel: the peer may
                        // still close, or the user force-close.
                        Err(why) => {
                            *close_as_closer = false;
                            refused = command.take().map(|c| (c, why));
                        }
                    }
                }
            }
        } else if closing.is_none() && chan.ready_to_close() && !agreed {
            if entry.negotiating_since.is_none() {
                entry.negotiating_since = Some(self.now);
            }
            let min = MIN_RELAY_FEERATE.fee_for_weight(CLOSING_WEIGHT);
            // The funder pays: never more than its balance above the dust
            // limit (BOLT 3 trims an output below it).
            let cap = if chan.funded.we_are_funder {
                let ours = Amount::from_sat(chan.commitments.local.to_local.to_msat() / 1000);
                ours.checked_sub(chan.funded.local_dust_limit)
                    .unwrap_or(Amount::ZERO)
                    .max(min)
            } else {
                Amount::MAX_MONEY
            };
            let fee = feerate.fee_for_weight(CLOSING_WEIGHT).max(min).min(cap);
            let range = (min.min(fee), (fee * 3).min(cap).max(fee));
            match chan.start_closing(range) {
                Ok(mut c) => {
                    if chan.funded.we_are_funder {
                        match c.propose(&self.secp, fee) {
                            Ok(m) => out.push(m.into()),
                            Err(e) => failed = Some(e.to_string()),
                        }
                    }
                    *closing = Some(Box::new(c));
                }
                Err(e) => failed = Some(e.to_string()),
            }
        }
        if !out.is_empty() {
            self.touch(id);
        }
        for m in out {
            self.send(peer, m);
        }
        if let Some((command, why)) = refused {
            if let Some(e) = self.entries.get_mut(&id) {
                e.min_close_fee = None;
            }
            self.reply(Some(command), Reply::failed(FailureKind::Refused, why));
        }
        if let Some(why) = failed {
            self.fail(id, &why);
        }
    }

    /// Whether `id` is a channel with `node`; if not, the peer gets the
    /// BOLT 1 `error` for an unknown channel.
    fn is_channel_of(&mut self, node: NodeId, id: ChannelId) -> bool {
        let ours = self.entries.get(&id).is_some_and(|e| e.peer == node);
        if !ours {
            self.unknown(node, id);
        }
        ours
    }

    /// The peer's `closing_signed`.
    pub(super) fn on_closing_signed(&mut self, node: NodeId, msg: &ClosingSigned) {
        let id = msg.channel_id;
        if !self.is_channel_of(node, id) {
            return;
        }
        // The fundee starts its side of the negotiation on the first one.
        self.maybe_start_closing(id);
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let Phase::Normal { closing, .. } = &mut entry.phase else {
            return;
        };
        let Some(c) = closing.as_mut() else {
            return self.fail(id, "closing_signed before the channel is empty");
        };
        use beongae_channel::close::CloseStep;
        match c.receive(&self.secp, msg) {
            Ok(CloseStep::Send(m)) => self.send(node, m),
            Ok(CloseStep::SendAndDone(m, tx)) => {
                self.send(node, m);
                self.closed(id, tx);
            }
            Ok(CloseStep::Done(tx)) => self.closed(id, tx),
            // BOLT 2: "if there is no overlap between that and its own
            // `fee_range`: SHOULD send a warning, MUST fail the channel if
            // it doesn't receive a satisfying `fee_range` after a reasonable
            // amount of time" (`expire_negotiations`).
            Err(e @ beongae_channel::close::CloseError::NoOverlap { .. }) => {
                self.send(node, beongae_wire::Warning::new(id, &e.to_string()));
            }
            Err(e) => self.fail(id, &e.to_string()),
        }
    }

    /// Legacy fee negotiations that did not agree within
    /// [`NEGOTIATION_TIMEOUT`] fail their channel (BOLT 2: "MUST fail the
    /// channel if it doesn't receive a satisfying `fee_range` after a
    /// reasonable amount of time"; a sender that "doesn't receive a
    /// `closing_signed` response after a reasonable amount of time: MUST
    /// fail the channel").
    pub(in crate::core) fn expire_negotiations(&mut self, now: std::time::Duration) {
        // A simple close the peer has not completed in time: we close too,
        // paying our own fee.
        let waited: Vec<ChannelId> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.closee_since
                    .is_some_and(|t| now.saturating_sub(t) >= CLOSEE_PATIENCE)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in waited {
            let Some(e) = self.entries.get_mut(&id) else {
                continue;
            };
            e.closee_since = None;
            // Still nothing agreed (a close agreed since stops the wait).
            if matches!(&e.phase, Phase::Normal { closing_txs, .. } if closing_txs.is_empty()) {
                e.close_as_closer = true;
                self.maybe_start_closing(id);
            }
        }
        let stale: Vec<ChannelId> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.negotiating_since
                    .is_some_and(|t| now.saturating_sub(t) >= NEGOTIATION_TIMEOUT)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(e) = self.entries.get_mut(&id) {
                e.negotiating_since = None;
            }
            self.fail(
                id,
                "the closing fee negotiation found no satisfying fee in time",
            );
        }
    }

    /// The peer's `closing_complete` (`option_simple_close`): we sign its
    /// transaction, answer `closing_sig` and broadcast it (BOLT 2: the
    /// closee "MUST sign and broadcast the corresponding closing
    /// transaction").
    pub(super) fn on_closing_complete(
        &mut self,
        node: NodeId,
        msg: &beongae_wire::msgs::ClosingComplete,
    ) {
        use beongae_channel::simple_close::SimpleCloseError as E;
        let id = msg.channel_id;
        if !self.is_channel_of(node, id) {
            return;
        }
        self.maybe_start_closing(id);
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let Phase::Normal {
            simple,
            closing_txs,
            ..
        } = &mut entry.phase
        else {
            return;
        };
        if closing_txs.len() >= MAX_CLOSING_TXS {
            // Each one is stored and broadcast again at every block.
            let why = format!("no more than {MAX_CLOSING_TXS} closing transactions per channel");
            return self.warn_and_disconnect(node, id, &why);
        }
        let Some(s) = simple.as_mut() else {
            return self.fail(id, "closing_complete before the channel is empty");
        };
        match s.receive_complete(&self.secp, msg) {
            Ok((sig, tx)) => {
                // A closing transaction below the relay minimum never
                // confirms: we close too, paying our own fee (BOLT 2: both
                // nodes "SHOULD send a `closing_complete`").
                let weight = tx.weight().to_wu();
                let min = MIN_RELAY_FEERATE.fee_for_weight(weight);
                if Amount::from_sat(msg.fee_satoshis) < min {
                    tracing::warn!(channel = %id, fee = msg.fee_satoshis, min = %min, "the peer's closing transaction pays less than the relay minimum; closing with our own");
                    entry.close_as_closer = true;
                }
                self.send(node, sig);
                self.closed(id, tx);
            }
            // BOLT 2, each refusal of closing_complete: "SHOULD ignore
            // `closing_complete`, SHOULD send a `warning`, SHOULD close the
            // connection" (bad scripts), or "MUST either send a `warning`
            // and close the connection, or send an `error` and fail the
            // channel" (fee, missing or invalid signature). We warn and
            // disconnect: the channel stays, and the close starts again on
            // reconnection.
            Err(
                e @ (E::WrongCloseeScript(_)
                | E::BadCloserScript(_)
                | E::FeeAboveBalance { .. }
                | E::MissingSignature(_)
                | E::BadSignature(_)),
            ) => self.warn_and_disconnect(node, id, &e.to_string()),
            Err(e) => self.fail(id, &e.to_string()),
        }
    }

    /// BOLT 1 `warning` for `id`, then the connection closes; the channel
    /// stays as it is.
    pub(super) fn warn_and_disconnect(&mut self, node: NodeId, id: ChannelId, why: &str) {
        tracing::warn!(channel = %id, %why, "warning the peer and disconnecting");
        self.send(node, beongae_wire::Warning::new(id, why));
        if let Some((peer, _)) = self.connected.get(&node) {
            self.deferred.push(crate::core::Output::Disconnect {
                peer: *peer,
                reason: crate::core::DisconnectReason::ProtocolViolation(why.to_string()),
            });
        }
    }

    /// The peer's `closing_sig` for our `closing_complete`: broadcast ours.
    pub(super) fn on_closing_sig(&mut self, node: NodeId, msg: &beongae_wire::msgs::ClosingSig) {
        let id = msg.channel_id;
        if !self.is_channel_of(node, id) {
            return;
        }
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let Phase::Normal { simple, .. } = &mut entry.phase else {
            // Closed by the peer's transaction already: nothing to do.
            return;
        };
        let Some(s) = simple.as_mut() else {
            return self.fail(id, "closing_sig without our closing_complete");
        };
        match s.receive_sig(&self.secp, msg) {
            Ok(tx) => self.closed(id, tx),
            // BOLT 2, every refusal of closing_sig: "MUST either send a
            // `warning` and close the connection, or send an `error` and
            // fail the channel": warn; the close starts again on
            // reconnection.
            Err(e) => self.warn_and_disconnect(node, id, &e.to_string()),
        }
    }

    /// The negotiation agreed: store, then broadcast the closing
    /// transaction. The channel stays (state `Closing`) until a closing
    /// transaction confirms: until then it can be closed again at another
    /// fee, or forced (SAFETY.md: "a closing transaction that never
    /// confirms").
    fn closed(&mut self, id: ChannelId, tx: Transaction) {
        let txid = tx.compute_txid();
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.negotiating_since = None;
        entry.closee_since = None;
        entry.close_as_closer = false;
        entry.min_close_fee = None;
        let Phase::Normal {
            closing_txs,
            command,
            ..
        } = &mut entry.phase
        else {
            return;
        };
        if !closing_txs.contains(&tx) {
            if closing_txs.len() >= MAX_CLOSING_TXS {
                // Cannot happen: refused before signing (`on_closing_complete`,
                // `close`).
                tracing::error!(channel = %id, "closing transaction over the limit not kept");
                return;
            }
            closing_txs.push(tx.clone());
        }
        let command = command.take();
        self.touch(id);
        self.broadcast_funding_off_chain(id);
        self.deferred.push(crate::core::Output::Broadcast { tx });
        self.reply(
            command,
            Reply::ChannelClosed {
                channel_id: id,
                txid,
            },
        );
    }

    /// The peer's `error` for one channel (BOLT 1: "MUST fail the channel
    /// referred to by `channel_id`"), or for all of them (all-zero id);
    /// `text` is its printable data, kept as the reason.
    pub(in crate::core) fn on_error(&mut self, node: NodeId, id: ChannelId, text: &str) {
        let said = if text.is_empty() {
            String::new()
        } else {
            format!(": \"{text}\"")
        };
        let ids: Vec<ChannelId> = if id.is_all() {
            self.entries
                .iter()
                .filter(|(_, e)| e.peer == node)
                .map(|(i, _)| *i)
                .collect()
        } else {
            vec![id]
        };
        for id in ids {
            let Some(entry) = self.entries.get(&id).filter(|e| e.peer == node) else {
                continue;
            };
            match &entry.phase {
                Phase::Normal { closing_txs, .. } if !closing_txs.is_empty() => {
                    // A mutual close is broadcast: it is what should
                    // confirm, not our commitment (a peer that already
                    // forgot the channel answers our reestablish so).
                    tracing::info!(channel = %id, "the peer sent an error; our closing transaction awaits confirmation");
                }
                Phase::Closed(_) => {}
                _ if !entry.live => {
                    // BOLT 2: a node that fell behind "MUST NOT broadcast
                    // its commitment transaction"; before the peer's
                    // channel_reestablish on this connection we cannot know
                    // our state is not an old copy (restored from a backup):
                    // held back until a reestablish shows it is current.
                    let why = "the peer sent an error before channel_reestablish; our commitment is held back until our state is shown current (the peer's commitment returns our funds)";
                    self.fail_withheld(id, why, super::record::Withheld::Unverified);
                }
                _ => self.fail(id, &format!("the peer sent an error{said}")),
            }
        }
        // Openings in progress with that temporary id.
        let keys: Vec<_> = self
            .opening
            .keys()
            .filter(|(n, t)| *n == node && (id.is_all() || *t == id))
            .copied()
            .collect();
        for key in keys {
            if let Some(o) = self.opening.remove(&key) {
                let command = self.opening_dropped(&o);
                self.reply(
                    command,
                    Reply::failed(
                        FailureKind::PeerRefused,
                        format!("the peer refused the channel{said}"),
                    ),
                );
            }
        }
    }
}

/// Whether the peer's `channel_reestablish` says it holds a later state
/// than ours (our secret for a commitment we never revoked, or a commitment
/// or revocation number beyond what we sent): then our own commitment may be
/// revoked and must not be broadcast.
fn peer_claims_ahead(e: &ReestablishError) -> bool {
    match e {
        ReestablishError::WeFellBehind(_) => true,
        ReestablishError::OutOfSync {
            next_commitment,
            next_revocation,
            local,
            remote,
        } => next_revocation > local || *next_commitment > remote + 1,
        _ => false,
    }
}
