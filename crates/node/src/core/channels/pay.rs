//! Invoices and payments over the node's channels: our BOLT 11 invoices
//! (preimages and payment secrets derived from the node secret, so none is
//! stored), payments to a direct peer, and the settlement of HTLCs offered
//! to us.

use beongae_channel::normal::FailReason;
use beongae_invoice::{
    compact_to_string, Currency, Invoice, InvoiceBuilder, PaymentSecret, TaggedField,
};
use beongae_onion::{ExpectedPayment, FailureMessage, FinalOutcome, IncomingHtlc};
use beongae_wire::msgs::OnionPacketBytes;
use beongae_wire::{ChainHash, ChannelId, Feature, Features, Msat, NodeId, PaymentHash, Preimage};
use bitcoin::hashes::{hmac, sha256, Hash, HashEngine};
use bitcoin::secp256k1::SecretKey;

use super::record::{InvoiceRecord, OutgoingRecord, OutgoingStatus, StoredInvoice, NS_PAYMENTS};
use super::{Channels, Phase};
use crate::core::{CommandId, Event, Failure, FailureKind, Reply};
use crate::payments::{pay_direct, read_failure, receive_htlc_or_refuse, IncomingDecision};

/// Most route hints in one of our invoices.
const MAX_ROUTE_HINTS: usize = 3;

/// A payment, for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSummary {
    /// `payment_hash`
    pub payment_hash: PaymentHash,
    /// Whether we are the payee.
    pub incoming: bool,
    /// Amount (asked or sent).
    pub amount: Option<Msat>,
    /// `pending`, `succeeded`, `failed: ...`, `open` or `paid`.
    pub status: String,
    /// The invoice, for incoming payments.
    pub invoice: Option<String>,
    /// Routing fees paid (outgoing, succeeded): what we sent less what
    /// the payee got.
    pub fee: Option<Msat>,
    /// Routes tried (outgoing).
    pub attempts: u32,
    /// The nodes of the (last) route, the payee last (outgoing).
    pub route: Vec<NodeId>,
    /// What the payee gets, fees excluded (outgoing).
    pub delivered: Option<Msat>,
    /// When it was sent (outgoing) or received (a keysend); none for
    /// invoices, which carry their own time, and for records made before
    /// times were kept.
    pub created: Option<u64>,
}

/// A key for deriving one invoice's secrets.
fn derive(node_secret: &SecretKey, label: &[u8], index: u64) -> [u8; 32] {
    let mut e = hmac::HmacEngine::<sha256::Hash>::new(&node_secret.secret_bytes());
    e.input(label);
    e.input(&index.to_be_bytes());
    hmac::Hmac::<sha256::Hash>::from_engine(e).to_byte_array()
}

fn currency(chain: ChainHash) -> Currency {
    if chain == ChainHash::BITCOIN {
        Currency::Bitcoin
    } else if chain == ChainHash::TESTNET3 || chain == ChainHash::TESTNET4 {
        Currency::BitcoinTestnet
    } else if chain == ChainHash::SIGNET {
        Currency::Signet
    } else {
        Currency::Regtest
    }
}

impl Channels {
    pub(super) fn preimage(&self, index: u64) -> Preimage {
        Preimage(derive(&self.node_secret, b"beongae/preimage", index))
    }

    fn payment_secret(&self, index: u64) -> [u8; 32] {
        derive(&self.node_secret, b"beongae/payment_secret", index)
    }

    /// The fields every invoice of ours starts with, derived from its
    /// index: `payment_hash` (`hash`, the hash of the preimage of `index`,
    /// which its record is stored under) and `payment_secret`, left out of
    /// its compact form.
    fn derived_fields(&self, index: u64, hash: PaymentHash) -> [TaggedField; 2] {
        [
            TaggedField::PaymentHash(hash),
            TaggedField::PaymentSecret(PaymentSecret(self.payment_secret(index))),
        ]
    }

    /// The BOLT 11 string of our invoice for `hash`; `None` if its stored
    /// form does not read (logged).
    pub(super) fn invoice_text(&self, hash: PaymentHash, rec: &InvoiceRecord) -> Option<String> {
        match &rec.invoice {
            StoredInvoice::Text(s) => Some(s.clone()),
            StoredInvoice::Compact(c) => {
                let s = compact_to_string(c, &self.derived_fields(rec.index, hash));
                if s.is_none() {
                    tracing::warn!(index = rec.index, "an invoice's stored form does not read");
                }
                s
            }
        }
    }

    /// `invoice`: a signed BOLT 11 invoice of ours.
    pub(in crate::core) fn create_invoice(
        &mut self,
        amount: Option<Msat>,
        description: &str,
        expiry_secs: u64,
        now_secs: u64,
    ) -> Result<(String, PaymentHash), String> {
        let index = self.take_invoice_index();
        let preimage = self.preimage(index);
        let hash = preimage.payment_hash();
        // BOLT 11: var_onion_optin and payment_secret are required of payers;
        // basic_mpp: we take a payment in parts (BOLT 4).
        let features = Features::empty()
            .with_required(Feature::VarOnionOptin)
            .with_required(Feature::PaymentSecret)
            .with_optional(Feature::BasicMpp);
        let mut b = InvoiceBuilder::new(currency(self.chain))
            .timestamp(now_secs)
            .payment_hash(hash)
            .payment_secret(PaymentSecret(self.payment_secret(index)))
            .description(description)
            .expiry(expiry_secs)
            .min_final_cltv_expiry_delta(u64::from(self.settings.min_final_cltv_expiry_delta))
            .features(features);
        if let Some(a) = amount {
            b = b.amount(a);
        }
        // BOLT 11 `r`: our channels are private, so a payer reaches us
        // through a channel peer, named with its policy for its direction
        // (its own channel_update to us; ADR 0009).
        for hint in self.route_hints() {
            b = b.route_hint(hint);
        }
        let signed = b
            .sign(&self.secp, &self.node_secret)
            .map_err(|e| format!("cannot build the invoice: {e}"))?;
        let invoice = signed.encode();
        // Kept compact when that gives back this exact string (issue 15:
        // the payee's bytes per payment).
        let derived = self.derived_fields(index, hash);
        let stored = match signed.to_compact(&derived) {
            Some(c) if compact_to_string(&c, &derived).as_deref() == Some(invoice.as_str()) => {
                StoredInvoice::Compact(c)
            }
            _ => StoredInvoice::Text(invoice.clone()),
        };
        let rec = InvoiceRecord {
            index,
            invoice: stored,
            amount,
            received: None,
            settled_by: None,
        };
        self.batch.put(NS_PAYMENTS, key(b'i', &hash), rec.encode());
        self.invoices.insert(hash, rec);
        Ok((invoice, hash))
    }

    /// Route hints to us (BOLT 11 `r`): one per open unannounced channel
    /// whose peer sent its `channel_update`, at most [`MAX_ROUTE_HINTS`], those that
    /// can receive the most first.
    fn route_hints(&self) -> Vec<beongae_invoice::RouteHint> {
        let mut hints: Vec<(Msat, beongae_invoice::RouteHint)> = self
            .entries
            .iter()
            .filter_map(|(id, e)| {
                let Phase::Normal {
                    chan,
                    scid,
                    remote_alias,
                    ..
                } = &e.phase
                else {
                    return None;
                };
                // A channel announced an hour ago is in payers' graphs.
                if !self.funding_usable(*scid) || self.announced_long_ago(*id) {
                    return None;
                }
                let u = self.peer_updates.get(id)?;
                // The peer forwards by its own alias for the channel (or
                // the real id): the alias keeps the funding private.
                let hop = beongae_invoice::RouteHintHop {
                    src_node_id: e.peer,
                    short_channel_id: remote_alias.or(*scid)?,
                    fee_base_msat: u.fee_base_msat,
                    fee_proportional_millionths: u.fee_proportional_millionths,
                    cltv_expiry_delta: u.cltv_expiry_delta,
                };
                Some((
                    chan.commitments.local.to_remote,
                    beongae_invoice::RouteHint(vec![hop]),
                ))
            })
            .collect();
        hints.sort_by_key(|h| std::cmp::Reverse(h.0));
        hints
            .into_iter()
            .take(MAX_ROUTE_HINTS)
            .map(|(_, h)| h)
            .collect()
    }

    /// `pay`: offers the HTLC for `invoice` to its payee, a direct peer.
    pub(in crate::core) fn pay(
        &mut self,
        invoice: &str,
        amount: Option<Msat>,
        now_secs: u64,
        session_key: SecretKey,
        command: CommandId,
    ) {
        if let Err(why) = self.try_pay(invoice, amount, now_secs, session_key, command) {
            self.reply(Some(command), Reply::Failed(why));
        }
    }

    /// Why a payment cannot start while the node is behind the chain.
    pub(super) fn not_synced(&self) -> Failure {
        Failure {
            kind: FailureKind::NotSynced,
            message: format!(
                "the node is catching up with the chain (block {} of {}): try again in a moment",
                self.height, self.tip
            ),
        }
    }

    fn try_pay(
        &mut self,
        invoice: &str,
        amount: Option<Msat>,
        now_secs: u64,
        session_key: SecretKey,
        command: CommandId,
    ) -> Result<(), Failure> {
        let invalid = |why: String| Failure {
            kind: FailureKind::InvalidInvoice,
            message: why,
        };
        let inv = Invoice::decode(invoice).map_err(|e| invalid(format!("invalid invoice: {e}")))?;
        if inv.currency() != currency(self.chain) {
            return Err(invalid(format!(
                "the invoice is for {:?}, this node runs on another network",
                inv.currency()
            )));
        }
        let hash = inv.payment_hash();
        let duplicate = |why: &str| Failure {
            kind: FailureKind::DuplicatePayment,
            message: why.to_owned(),
        };
        match self.outgoing.get(&hash).map(|p| &p.status) {
            Some(OutgoingStatus::Pending) => return Err(duplicate("this invoice is being paid")),
            Some(OutgoingStatus::Succeeded(_)) => {
                return Err(duplicate("this invoice is already paid"))
            }
            _ => {}
        }
        // An HTLC's cltv_expiry counts from our tip: behind the chain it
        // would expire early (and our own deadline check would then take
        // the channel to chain).
        if self.tip > self.height {
            return Err(self.not_synced());
        }
        let payee = inv.payee_node_id();
        // A payee we have an open channel with is paid over it (or told
        // why it cannot be); any other over a route.
        let direct = self
            .entries
            .values()
            .any(|e| e.peer == payee && matches!(e.phase, Phase::Normal { .. }));
        if !direct {
            return self.pay_routed(&inv, amount, now_secs, session_key, command);
        }
        let p = pay_direct(
            &self.secp,
            &session_key,
            &inv,
            amount,
            self.height,
            now_secs,
        )
        .map_err(|e| invalid(e.to_string()))?;
        let candidates: Vec<ChannelId> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                // A channel whose funding left the chain takes no new HTLC
                // until it is buried again.
                e.peer == payee
                    && e.live
                    && matches!(e.phase, Phase::Normal { scid, .. } if self.funding_usable(scid))
            })
            .map(|(id, _)| *id)
            .collect();
        let no_route = |why: String| Failure {
            kind: FailureKind::NoRoute,
            message: why,
        };
        if candidates.is_empty() {
            return Err(no_route(format!(
                "no active channel with the payee {payee}: it is not connected or its funding is not confirmed"
            )));
        }
        let mut last = String::new();
        for id in candidates {
            let Some(Phase::Normal { chan, .. }) = self.entries.get_mut(&id).map(|e| &mut e.phase)
            else {
                continue;
            };
            match chan.send_add(p.amount, hash, p.cltv_expiry, p.onion.clone()) {
                Ok(add) => {
                    let rec = OutgoingRecord {
                        payment_hash: hash,
                        amount: p.amount,
                        channel_id: id,
                        htlc_id: add.id,
                        shared_secrets: p.shared_secrets,
                        status: OutgoingStatus::Pending,
                        delivered: p.amount,
                        attempts: 1,
                        route: vec![payee],
                        created: u64::from(self.now_secs()),
                    };
                    self.batch.put(NS_PAYMENTS, key(b'o', &hash), rec.encode());
                    self.by_htlc.insert((id, add.id), hash);
                    self.outgoing.insert(hash, rec);
                    self.waiting.insert(hash, command);
                    self.send(payee, add);
                    self.touch(id);
                    return Ok(());
                }
                Err(e) => last = e.to_string(),
            }
        }
        if inv.features().offers(Feature::BasicMpp) {
            // No one channel can carry it all: in parts, over several.
            return self
                .pay_routed(&inv, amount, now_secs, session_key, command)
                .map_err(|e| Failure {
                    kind: e.kind,
                    message: format!("no channel can carry the payment: {last}; {e}"),
                });
        }
        Err(no_route(format!(
            "no channel can carry the payment: {last}"
        )))
    }

    /// An HTLC offered to us is irrevocably committed: settle or fail it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_incoming(
        &mut self,
        channel: ChannelId,
        htlc: u64,
        amount: Msat,
        payment_hash: PaymentHash,
        cltv_expiry: u32,
        onion: &OnionPacketBytes,
        dust_exposure_exceeded: bool,
    ) {
        let incoming = IncomingHtlc {
            amount,
            cltv_expiry,
            payment_hash,
        };
        let expected = |h: &PaymentHash| {
            let rec = self.invoices.get(h).filter(|r| r.received.is_none())?;
            Some(ExpectedPayment {
                payment_secret: self.payment_secret(rec.index),
                amount: rec.amount,
                min_final_cltv_expiry_delta: u32::from(self.settings.min_final_cltv_expiry_delta),
            })
        };
        // BOLT 2: a fulfilling node "MUST fail (and not forward) an HTLC
        // whose fulfillment deadline is already past".
        let deadline_past = self.height + super::chain::FULFILL_DEADLINE_BLOCKS > cltv_expiry;
        // No new HTLC settles over a channel whose funding left the chain.
        let unconfirmed = !matches!(
            self.entries.get(&channel).map(|e| &e.phase),
            Some(Phase::Normal { scid, .. }) if self.funding_usable(*scid)
        );
        let temporary =
            (dust_exposure_exceeded || unconfirmed).then_some(FailureMessage::TemporaryNodeFailure);
        // A keysend paid already: a second HTLC for it is not ours.
        let repeated = self.keysends.contains_key(&payment_hash);
        let refuse = if deadline_past || repeated {
            Some(FailureMessage::IncorrectOrUnknownPaymentDetails {
                htlc_msat: amount,
                height: self.height,
            })
        } else {
            temporary.clone()
        };
        let decision = receive_htlc_or_refuse(
            &self.secp,
            &self.node_secret,
            &incoming,
            onion,
            expected,
            self.height,
            refuse,
        );
        let Some(Phase::Normal { chan, .. }) = self.entries.get_mut(&channel).map(|e| &mut e.phase)
        else {
            return;
        };
        let msg: Result<beongae_wire::msgs::Message, String> = match decision {
            Ok(IncomingDecision::Forward {
                payload,
                next,
                shared_secret,
            }) => {
                // The deadline and the final node's checks are the forward's
                // own (BOLT 4 `expiry_too_soon`).
                return self.forward(
                    channel,
                    htlc,
                    amount,
                    payment_hash,
                    cltv_expiry,
                    payload,
                    next,
                    shared_secret,
                    temporary,
                );
            }
            // A part of a multi-part payment (BOLT 4 `basic_mpp`): held
            // until its set is complete.
            Ok(IncomingDecision::Accept {
                outcome: FinalOutcome::Part { total },
                shared_secret,
                ..
            }) => {
                return self.hold_part(
                    payment_hash,
                    channel,
                    htlc,
                    amount,
                    total,
                    cltv_expiry,
                    shared_secret,
                );
            }
            // BOLT 4: an HTLC of a hash whose set is held joins the set.
            Ok(IncomingDecision::Accept {
                payload,
                shared_secret,
                ..
            }) if self.held.contains_key(&payment_hash) => {
                let total = payload.total_msat();
                return self.hold_part(
                    payment_hash,
                    channel,
                    htlc,
                    amount,
                    total,
                    cltv_expiry,
                    shared_secret,
                );
            }
            Ok(IncomingDecision::Accept { .. }) => {
                return self.settle(payment_hash, channel, htlc, amount);
            }
            Ok(IncomingDecision::Keysend { preimage }) => {
                return self.settle_keysend(payment_hash, preimage, channel, htlc, amount);
            }
            Ok(IncomingDecision::Fail { reason, failure }) => {
                tracing::info!(%payment_hash, ?failure, "failing an incoming htlc");
                chan.send_fail(htlc, reason)
                    .map(Into::into)
                    .map_err(|e| e.to_string())
            }
            Ok(IncomingDecision::Malformed {
                sha256_of_onion,
                failure_code,
            }) => chan
                .send_fail_malformed(htlc, sha256_of_onion, failure_code)
                .map(Into::into)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let peer = self.entries[&channel].peer;
        match msg {
            Ok(m) => {
                self.send(peer, m);
                self.touch(channel);
            }
            Err(why) => self.fail(channel, &why),
        }
    }

    /// The HTLC pays one of our invoices: mark it paid (stored in this
    /// input's batch) and fulfil it. Not live (cannot happen for an HTLC
    /// that just arrived, but kept safe): `fulfill_paid` does it after the
    /// next `channel_reestablish`.
    fn settle(&mut self, hash: PaymentHash, channel: ChannelId, htlc: u64, total: Msat) {
        let Some(rec) = self.invoices.get_mut(&hash) else {
            return;
        };
        let index = rec.index;
        rec.received = Some(total);
        rec.settled_by = Some((channel, htlc));
        let encoded = rec.encode();
        self.batch.put(NS_PAYMENTS, key(b'i', &hash), encoded);
        let preimage = self.preimage(index);
        self.fulfil_incoming(channel, htlc, preimage);
        self.event(Event::PaymentReceived {
            payment_hash: hash,
            amount: total,
        });
    }

    /// After `channel_reestablish` (and at every restart): HTLCs paying an
    /// invoice of ours that is already settled are fulfilled (again): the
    /// fulfill may have been forgotten by a disconnection or a restart.
    pub(super) fn fulfill_paid(&mut self, channel: ChannelId) {
        let Some(entry) = self.entries.get_mut(&channel) else {
            return;
        };
        let peer = entry.peer;
        let Phase::Normal { chan, .. } = &mut entry.phase else {
            return;
        };
        let mut out = Vec::new();
        for (id, hash, _) in chan.unresolved_incoming() {
            // Only the HTLC that settled the invoice (every check of BOLT 4
            // passed for it); another one for the same hash was failed.
            let preimage = match self
                .invoices
                .get(&hash)
                .filter(|r| r.settled_by == Some((channel, id)))
                .map(|r| r.index)
            {
                Some(index) => Preimage(derive(&self.node_secret, b"beongae/preimage", index)),
                None => match self
                    .keysends
                    .get(&hash)
                    .filter(|r| r.settled_by == (channel, id))
                {
                    Some(r) => r.preimage,
                    None => match self
                        .settled_parts
                        .get(&(channel, id))
                        .and_then(|h| self.invoices.get(h))
                    {
                        Some(r) => {
                            Preimage(derive(&self.node_secret, b"beongae/preimage", r.index))
                        }
                        None => continue,
                    },
                },
            };
            match chan.send_fulfill(id, preimage) {
                Ok(m) => out.push(m),
                Err(e) => tracing::warn!(%channel, htlc = id, error = %e, "cannot fulfil again"),
            }
        }
        if !out.is_empty() {
            self.touch(channel);
        }
        for m in out {
            self.send(peer, m);
        }
    }

    pub(super) fn outgoing_fulfilled(&mut self, channel: ChannelId, htlc: u64, preimage: Preimage) {
        if let Some(key) = self.forward_of(channel, htlc) {
            return self.forward_fulfilled(key, preimage);
        }
        if let Some(hash) = self.by_htlc.get(&(channel, htlc)).copied() {
            self.part_succeeded(hash, channel, htlc);
        }
        let Some(hash) = self.take_part(channel, htlc) else {
            return;
        };
        self.attempting.remove(&hash);
        self.failing.remove(&hash);
        let Some(rec) = self.outgoing.get_mut(&hash) else {
            return;
        };
        if matches!(rec.status, OutgoingStatus::Succeeded(_)) {
            return; // another part of it, fulfilled already
        }
        rec.status = OutgoingStatus::Succeeded(preimage);
        // BOLT 4: the secrets shared with the hops only serve to read a
        // failure returned for this payment's HTLCs; its outcome is final.
        rec.shared_secrets.clear();
        let amount = rec.amount;
        let encoded = rec.encode();
        self.batch.put(NS_PAYMENTS, key(b'o', &hash), encoded);
        let command = self.waiting.remove(&hash);
        self.reply(
            command,
            Reply::Paid {
                payment_hash: hash,
                preimage,
                amount,
            },
        );
        self.event(Event::PaymentSent {
            payment_hash: hash,
            amount,
        });
    }

    pub(super) fn outgoing_failed(&mut self, channel: ChannelId, htlc: u64, reason: &FailReason) {
        if let Some(key) = self.forward_of(channel, htlc) {
            return match reason {
                FailReason::Reason(bytes) => self.forward_failed(key, bytes),
                FailReason::Malformed {
                    failure_code,
                    sha256_of_onion,
                } => {
                    // BOLT 4: reported upstream as an update_fail_htlc
                    // with that code and sha256_of_onion.
                    let mut raw = failure_code.to_be_bytes().to_vec();
                    raw.extend_from_slice(sha256_of_onion);
                    let failure =
                        FailureMessage::decode(&raw).unwrap_or(FailureMessage::InvalidOnionHmac {
                            sha256_of_onion: *sha256_of_onion,
                        });
                    self.forward_failed_here(key, failure)
                }
            };
        }
        let Some(hash) = self.by_htlc.get(&(channel, htlc)).copied() else {
            return;
        };
        if self.attempting.contains_key(&hash) {
            // Over a route: another may work.
            let part = self.part_resolved(hash, channel, htlc);
            self.take_part(channel, htlc);
            if let Some(why) = self.route_failed(hash, part, reason) {
                self.finish_failed(hash, why);
            }
            return;
        }
        self.take_part(channel, htlc);
        let Some(rec) = self.outgoing.get_mut(&hash) else {
            return;
        };
        let why = match reason {
            FailReason::Reason(bytes) => match read_failure_of(rec, bytes) {
                Some(text) => text,
                None => "the payee's failure could not be read".into(),
            },
            FailReason::Malformed { failure_code, .. } => {
                format!("the payee could not read the onion (failure code {failure_code:#06x})")
            }
        };
        self.finish_failed(hash, why);
    }

    /// The preimage of HTLC `htlc` offered to us on `channel`, if it
    /// settled one of our invoices (every check of BOLT 4 passed for it and
    /// we gave the preimage): what we claim it with on chain.
    pub(super) fn incoming_preimage(&self, channel: ChannelId, htlc: u64) -> Option<Preimage> {
        if let Some(p) = self
            .forwarded_preimage(channel, htlc)
            .or_else(|| self.keysend_preimage(channel, htlc))
            .or_else(|| self.settled_part_preimage(channel, htlc))
        {
            return Some(p);
        }
        self.invoices
            .values()
            .find(|r| r.settled_by == Some((channel, htlc)))
            .map(|r| self.preimage(r.index))
    }

    /// Our HTLC `htlc` on closed `channel` was resolved back to us on chain.
    pub(super) fn outgoing_failed_on_chain(&mut self, channel: ChannelId, htlc: u64, why: &str) {
        if let Some(key) = self.forward_of(channel, htlc) {
            tracing::info!(%channel, htlc, why, "forwarded htlc failed on chain");
            return self.forward_failed_here(key, FailureMessage::PermanentChannelFailure);
        }
        if let Some(hash) = self.take_part(channel, htlc) {
            tracing::info!(%channel, htlc, why, "payment failed on chain");
            self.finish_failed(hash, why.to_owned());
        }
    }

    /// Our HTLC was dropped before being signed (a disconnection).
    pub(super) fn outgoing_dropped(&mut self, channel: ChannelId, htlc: u64) {
        if let Some(key) = self.forward_of(channel, htlc) {
            let channel_update = self.update_for_failure(channel, None);
            return self.forward_failed_here(
                key,
                FailureMessage::TemporaryChannelFailure { channel_update },
            );
        }
        let Some(hash) = self.by_htlc.get(&(channel, htlc)).copied() else {
            return;
        };
        if self.attempting.contains_key(&hash) {
            // Over a route, in this process: placed again elsewhere.
            let part = self.part_resolved(hash, channel, htlc);
            self.take_part(channel, htlc);
            if let Some(why) = self.part_dropped(hash, part) {
                self.finish_failed(hash, why);
            }
            return;
        }
        if let Some(hash) = self.take_part(channel, htlc) {
            self.finish_failed(
                hash,
                "the peer disconnected before the payment was committed".into(),
            );
        }
    }

    /// HTLC `htlc` of ours on `channel` is resolved: the payment it was
    /// (a part of), no longer waiting for it.
    pub(super) fn take_part(&mut self, channel: ChannelId, htlc: u64) -> Option<PaymentHash> {
        let hash = self.by_htlc.remove(&(channel, htlc))?;
        // Out of its payment's parts in flight (placed again only after a
        // failure read from the route or a disconnection that dropped it).
        self.part_resolved(hash, channel, htlc);
        self.batch.delete(
            NS_PAYMENTS,
            super::mpp::part_key(b'q', &hash, channel, htlc),
        );
        Some(hash)
    }

    /// Payment `hash` failed for `why` — once no part of it is in flight
    /// any more (one could still be fulfilled: reporting a failure then
    /// could make the user pay twice); never after it succeeded.
    fn finish_failed(&mut self, hash: PaymentHash, why: String) {
        if self.by_htlc.values().any(|h| *h == hash) {
            self.failing.insert(hash, why);
            return;
        }
        let why = match self.failing.remove(&hash) {
            Some(earlier) if earlier != why => format!("{earlier}; {why}"),
            _ => why,
        };
        self.attempting.remove(&hash);
        let Some(rec) = self.outgoing.get_mut(&hash) else {
            return;
        };
        if matches!(rec.status, OutgoingStatus::Succeeded(_)) {
            return;
        }
        rec.status = OutgoingStatus::Failed(why.clone());
        // No part is in flight any more: no failure is left to read.
        rec.shared_secrets.clear();
        let encoded = rec.encode();
        self.batch.put(NS_PAYMENTS, key(b'o', &hash), encoded);
        let command = self.waiting.remove(&hash);
        self.reply(
            command,
            Reply::failed(FailureKind::PaymentFailed, format!("payment failed: {why}")),
        );
        self.event(Event::PaymentFailed {
            payment_hash: hash,
            reason: why,
        });
    }

    /// A channel failed: payments waiting on it are settled on chain now;
    /// their commands learn so.
    /// The channel carrying our payments closed. A payment whose HTLC is in
    /// no commitment either side can broadcast (`on_chain` lists those that
    /// are) failed for good; the others resolve on chain and stay
    /// `pending on chain` until then.
    pub(super) fn fail_payments_of(
        &mut self,
        channel: ChannelId,
        why: &str,
        on_chain: &std::collections::BTreeSet<u64>,
    ) {
        // Forwards over it: failed upstream now unless their HTLC can still
        // be claimed on chain (then resolved with it).
        let forwards: Vec<(u64, (ChannelId, u64))> = self
            .forwards
            .by_out
            .range((channel, 0)..=(channel, u64::MAX))
            .map(|((_, id), k)| (*id, *k))
            .collect();
        for (htlc, key) in forwards {
            if !on_chain.contains(&htlc) {
                self.forward_failed_here(key, FailureMessage::PermanentChannelFailure);
            }
        }
        let htlcs: Vec<(u64, PaymentHash)> = self
            .by_htlc
            .iter()
            .filter(|((c, _), _)| *c == channel)
            .map(|((_, id), h)| (*id, *h))
            .collect();
        for (htlc, h) in htlcs {
            if !on_chain.contains(&htlc) {
                self.take_part(channel, htlc);
                self.finish_failed(
                    h,
                    format!("the channel closed ({why}) before the htlc was committed"),
                );
                continue;
            }
            let command = self.waiting.remove(&h);
            self.reply(
                command,
                Reply::failed(
                    FailureKind::PaymentPending,
                    format!("the channel failed ({why}); the payment is pending on chain"),
                ),
            );
        }
    }

    /// Whether an invoice of ours was settled by HTLC `htlc` of `channel`
    /// (its preimage was given).
    pub(super) fn settled_htlc(&self, channel: ChannelId, htlc: u64) -> bool {
        self.forwarded_preimage(channel, htlc).is_some()
            || self.keysend_preimage(channel, htlc).is_some()
            || self.settled_parts.contains_key(&(channel, htlc))
            || self
                .invoices
                .values()
                .any(|r| r.settled_by == Some((channel, htlc)))
    }

    /// Every invoice and payment.
    pub(in crate::core) fn payments(&self) -> Vec<PaymentSummary> {
        let now = u64::from(self.now_secs());
        // An unpaid invoice past its expiry (BOLT 11 `x`): payers refuse
        // to pay it.
        let expired = |text: &Option<String>| {
            text.as_deref()
                .and_then(|t| Invoice::decode(t).ok())
                .is_some_and(|inv| inv.is_expired(now))
        };
        let mut v: Vec<PaymentSummary> = self
            .invoices
            .iter()
            .map(|(h, r)| {
                let text = self.invoice_text(*h, r);
                (h, r, text)
            })
            .map(|(h, r, text)| PaymentSummary {
                payment_hash: *h,
                incoming: true,
                amount: r.received.or(r.amount),
                status: match r.received {
                    Some(_) => "paid",
                    None if expired(&text) => "expired",
                    None => "open",
                }
                .into(),
                invoice: text,
                fee: None,
                attempts: 0,
                route: Vec::new(),
                delivered: None,
                created: None,
            })
            .collect();
        v.extend(self.keysends.iter().map(|(h, r)| PaymentSummary {
            payment_hash: *h,
            incoming: true,
            amount: Some(r.amount),
            status: "paid (keysend)".into(),
            invoice: None,
            fee: None,
            attempts: 0,
            route: Vec::new(),
            delivered: None,
            created: r.received,
        }));
        v.extend(self.outgoing.iter().map(|(h, r)| PaymentSummary {
            payment_hash: *h,
            incoming: false,
            amount: Some(r.amount),
            status: match &r.status {
                OutgoingStatus::Pending
                    if matches!(
                        self.entries.get(&r.channel_id).map(|e| &e.phase),
                        Some(Phase::Closed(_))
                    ) =>
                {
                    "pending on chain".into()
                }
                OutgoingStatus::Pending => "pending".into(),
                OutgoingStatus::Succeeded(_) => "succeeded".into(),
                OutgoingStatus::Failed(why) => format!("failed: {why}"),
            },
            invoice: None,
            fee:
                matches!(r.status, OutgoingStatus::Succeeded(_)).then(|| {
                    Msat::from_msat(r.amount.to_msat().saturating_sub(r.delivered.to_msat()))
                }),
            attempts: r.attempts,
            route: r.route.clone(),
            delivered: Some(r.delivered),
            created: (r.created > 0).then_some(r.created),
        }));
        v
    }
}

fn read_failure_of(rec: &OutgoingRecord, reason: &[u8]) -> Option<String> {
    read_failure(&rec.shared_secrets, reason).ok().map(|f| {
        format!(
            "{} (from hop {})",
            crate::payments::failure_in_words(&f.message),
            f.hop
        )
    })
}

/// What channel `chan` can offer in one more HTLC, roughly: our balance
/// less the reserve the peer asks us to keep and, as funder, the
/// commitment fee with two more HTLCs at twice the feerate and the anchors
/// (BOLT 2's fee spike buffer), within the peer's in-flight limit. The
/// channel's own check has the last word.
pub(super) fn outbound_estimate(chan: &beongae_channel::normal::NormalChannel) -> Msat {
    let spec = &chan.commitments.local;
    let params = &chan.commitments.params;
    let reserve = params.remote.channel_reserve.to_sat() * 1000;
    let fee = if params.we_are_funder {
        let weight = 1_124 + 172 * (spec.htlcs.len() as u64 + 2);
        let anchors = if params.channel_type == beongae_script::ChannelType::Anchors {
            660_000
        } else {
            0
        };
        2 * u64::from(spec.feerate.0) * weight + anchors
    } else {
        0
    };
    // And within the peer's max_htlc_value_in_flight_msat, less what we
    // have offered already.
    let offered: u64 = spec
        .htlcs
        .iter()
        .filter(|h| h.offered)
        .map(|h| h.amount.to_msat())
        .sum();
    let in_flight_room = params
        .remote
        .max_htlc_value_in_flight
        .to_msat()
        .saturating_sub(offered);
    Msat::from_msat(
        spec.to_local
            .to_msat()
            .saturating_sub(reserve)
            .saturating_sub(fee)
            .min(in_flight_room),
    )
}

pub(super) fn key(kind: u8, hash: &PaymentHash) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(kind);
    k.extend_from_slice(&hash.0);
    k
}
