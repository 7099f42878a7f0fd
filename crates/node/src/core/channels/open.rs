//! Opening channels, both roles (BOLT 2 §"Channel Establishment v1"), up
//! to normal operation once the funding is deep enough and both
//! `channel_ready`s were exchanged.

use beongae_channel::channel_type::ChannelTypeSpec;
use beongae_channel::funding::{ChannelTerms, Funding, LocalSetup};
use beongae_channel::open::{check_accept_channel, check_open_channel, OpenRequest, PeerParams};
use beongae_channel::propose::{accept_channel, open_channel};
use beongae_script::funding::funding_script_pubkey;
use beongae_wire::msgs::{AcceptChannel, ChannelReady, FundingCreated, FundingSigned, OpenChannel};
use beongae_wire::{ChannelId, ErrorMessage, Feature, Msat, NodeId, ShortChannelId};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::{Amount, OutPoint, Transaction};

use super::{Channels, Entry, Phase};
use crate::core::{CommandId, Event, Failure, FailureKind, Output, Reply};

/// Unfunded channels one peer may have with us at once (opens we accepted
/// and channels whose funding has not confirmed), as LDK allows.
pub(super) const MAX_UNFUNDED_PER_PEER: usize = 4;
/// Unfunded channels from all peers: opens we accepted that wait for
/// `funding_created`, and channels whose funding has not confirmed.
pub(super) const MAX_UNFUNDED_TOTAL: usize = 64;

/// How long an opening may wait for the peer's next message.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A channel before both commitment 0 signatures exist (kept in memory
/// only: nothing can be lost yet).
pub(super) enum Opening {
    /// We sent `open_channel`.
    Offered {
        open: Box<OpenChannel>,
        setup: Box<LocalSetup>,
        index: u32,
        command: Option<CommandId>,
    },
    /// The wallet builds the funding transaction.
    Building {
        open: Box<OpenChannel>,
        setup: Box<LocalSetup>,
        index: u32,
        params: Box<PeerParams>,
        depth: u32,
        command: Option<CommandId>,
    },
    /// We sent `funding_created`.
    Created {
        funding: Box<Funding>,
        tx: Transaction,
        depth: u32,
        index: u32,
        command: Option<CommandId>,
        /// Our `open_channel` set `announce_channel`.
        announce: bool,
    },
    /// We sent `accept_channel`.
    Accepted {
        request: Box<OpenRequest>,
        setup: Box<LocalSetup>,
        index: u32,
    },
}

/// Whether our `open_channel` asks for an anchor channel.
pub(super) fn is_anchors(open: &OpenChannel) -> bool {
    open.channel_type
        .as_ref()
        .and_then(|f| ChannelTypeSpec::from_features(f).ok())
        .is_some_and(|s| s.base == beongae_script::ChannelType::Anchors)
}

impl Opening {
    pub(super) fn command(&self) -> Option<CommandId> {
        match self {
            Opening::Offered { command, .. }
            | Opening::Building { command, .. }
            | Opening::Created { command, .. } => *command,
            Opening::Accepted { .. } => None,
        }
    }
}

impl Channels {
    /// An opening ends before its funding transaction went out: the
    /// wallet's coins reserved for it ([`Output::BuildFunding`]) are freed
    /// (`Output::Forget` of a transaction never broadcast). Returns the
    /// command to answer.
    pub(super) fn opening_dropped(&mut self, o: &Opening) -> Option<CommandId> {
        if let Opening::Created { tx, .. } = o {
            self.forget_unsent(tx);
        }
        o.command()
    }

    /// A funding transaction the wallet built that will never be sent:
    /// its coins are freed.
    fn forget_unsent(&mut self, tx: &Transaction) {
        self.deferred.push(Output::Forget {
            txid: tx.compute_txid(),
        });
    }

    /// `openchannel`: sends `open_channel` to a connected peer.
    pub(in crate::core) fn open(
        &mut self,
        node: NodeId,
        funding: Amount,
        push: Msat,
        announce: bool,
        command: CommandId,
    ) {
        let Some((_, features)) = self.connected.get(&node) else {
            return self.reply(
                Some(command),
                Reply::failed(
                    FailureKind::NotConnected,
                    format!("not connected to {node}: connect first"),
                ),
            );
        };
        // Anchors when the peer supports them (BOLT 9 `option_anchors`),
        // else static_remotekey, which every peer we accept supports.
        let channel_type = if features.offers(Feature::Anchors) {
            ChannelTypeSpec::ANCHORS
        } else {
            ChannelTypeSpec::STATIC_REMOTE_KEY
        };
        let index = self.take_index();
        let setup = self.local_setup(index, funding, Amount::ZERO);
        let temp = temporary_id(&self.node_secret, index);
        let msg = match open_channel(
            &self.secp,
            self.chain,
            temp,
            funding,
            push,
            self.feerate,
            channel_type,
            &setup,
            &self.settings.config,
            announce,
        ) {
            Ok(m) => m,
            Err(e) => {
                return self.reply(
                    Some(command),
                    Reply::failed(FailureKind::Refused, e.to_string()),
                )
            }
        };
        self.send(node, msg.clone());
        self.opening_started.insert((node, temp), self.now);
        self.opening.insert(
            (node, temp),
            Opening::Offered {
                open: Box::new(msg),
                setup: Box::new(setup),
                index,
                command: Some(command),
            },
        );
    }

    /// Openings the peer left unanswered for [`OPEN_TIMEOUT`] are abandoned.
    pub(in crate::core) fn expire_openings(&mut self, now: std::time::Duration) {
        let stale: Vec<(NodeId, ChannelId)> = self
            .opening_started
            .iter()
            .filter(|(_, t)| now.saturating_sub(**t) >= OPEN_TIMEOUT)
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.opening_started.remove(&key);
            if self.opening.contains_key(&key) {
                self.abandon(key.0, key.1, "the channel open timed out".into());
            }
        }
        self.opening_started
            .retain(|k, _| self.opening.contains_key(k));
    }

    /// Ends an opening with an `error` to the peer and a failed reply.
    fn abandon(&mut self, node: NodeId, temp: ChannelId, why: String) {
        let command = self
            .opening
            .remove(&(node, temp))
            .and_then(|o| self.opening_dropped(&o));
        self.send(node, ErrorMessage::new(temp, &why));
        self.reply(
            command,
            Reply::failed(
                FailureKind::PeerRefused,
                format!("channel open failed: {why}"),
            ),
        );
    }

    /// The peer's `accept_channel`: checked, then the wallet builds the
    /// funding transaction.
    pub(super) fn on_accept_channel(&mut self, node: NodeId, msg: &AcceptChannel) {
        let key = (node, msg.temporary_channel_id);
        let Some(Opening::Offered { .. }) = self.opening.get(&key) else {
            return self.unknown(node, msg.temporary_channel_id);
        };
        let Some(Opening::Offered {
            open,
            setup,
            index,
            command,
        }) = self.opening.remove(&key)
        else {
            return;
        };
        let (params, depth) = match check_accept_channel(msg, &open, &self.settings.config) {
            Ok(x) => x,
            Err(e) => {
                self.opening.insert(
                    key,
                    Opening::Offered {
                        open,
                        setup,
                        index,
                        command,
                    },
                );
                return self.abandon(node, key.1, e.to_string());
            }
        };
        let script_pubkey =
            funding_script_pubkey(&setup.keys.funding_pubkey, &params.keys.funding_pubkey);
        let amount = Amount::from_sat(open.funding_satoshis);
        let anchors = is_anchors(&open);
        self.deferred.push(Output::BuildFunding {
            node_id: node,
            temporary_channel_id: key.1,
            script_pubkey,
            amount,
            feerate: self.feerate,
            reserve: self.fee_reserve(usize::from(anchors)),
        });
        self.opening.insert(
            key,
            Opening::Building {
                open,
                setup,
                index,
                params: Box::new(params),
                // BOLT 2: zero means the accepter trusts us; we still wait
                // for one confirmation (no zero-conf yet).
                depth: depth.max(1),
                command,
            },
        );
    }

    /// The wallet built (or could not build) the funding transaction:
    /// `funding_created`.
    pub(in crate::core) fn on_funding_built(
        &mut self,
        node: NodeId,
        temp: ChannelId,
        result: Result<Transaction, Failure>,
    ) {
        let key = (node, temp);
        let Some(Opening::Building { .. }) = self.opening.get(&key) else {
            // The opening ended while the wallet built it.
            if let Ok(tx) = &result {
                self.forget_unsent(tx);
            }
            return;
        };
        let Some(Opening::Building {
            open,
            setup,
            index,
            params,
            depth,
            command,
        }) = self.opening.remove(&key)
        else {
            return;
        };
        let tx = match result {
            Ok(tx) => tx,
            Err(why) => {
                self.send(
                    node,
                    ErrorMessage::new(temp, "funding transaction could not be built"),
                );
                return self.reply(
                    command,
                    Reply::failed(why.kind, format!("cannot fund the channel: {why}")),
                );
            }
        };
        let amount = Amount::from_sat(open.funding_satoshis);
        let script = funding_script_pubkey(&setup.keys.funding_pubkey, &params.keys.funding_pubkey);
        let Some(vout) = tx
            .output
            .iter()
            .position(|o| o.script_pubkey == script && o.value == amount)
        else {
            self.forget_unsent(&tx);
            self.send(
                node,
                ErrorMessage::new(temp, "funding transaction could not be built"),
            );
            return self.reply(
                command,
                Reply::failed(
                    FailureKind::Refused,
                    "the wallet's funding transaction lacks the funding output",
                ),
            );
        };
        let outpoint = OutPoint {
            txid: tx.compute_txid(),
            vout: vout as u32,
        };
        let channel_type = open
            .channel_type
            .as_ref()
            .and_then(|f| ChannelTypeSpec::from_features(f).ok())
            .map_or(beongae_script::ChannelType::StaticRemoteKey, |s| s.base);
        let terms = ChannelTerms {
            channel_type,
            funding: amount,
            push: Msat::from_msat(open.push_msat),
            feerate: beongae_script::FeeratePerKw(open.feerate_per_kw),
            we_are_funder: true,
        };
        let created = Funding::new(*setup, *params, terms, outpoint)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                let m = f
                    .funding_created(&self.secp, temp)
                    .map_err(|e| e.to_string())?;
                Ok((f, m))
            });
        match created {
            Ok((funding, msg)) => {
                if self.entries.contains_key(&funding.channel_id) {
                    self.forget_unsent(&tx);
                    self.send(node, ErrorMessage::new(temp, "channel id collision"));
                    return self.reply(
                        command,
                        Reply::failed(FailureKind::Refused, "channel id collision"),
                    );
                }
                self.send(node, msg);
                self.opening.insert(
                    key,
                    Opening::Created {
                        funding: Box::new(funding),
                        tx,
                        depth,
                        index,
                        command,
                        announce: open.channel_flags & 1 == 1,
                    },
                );
            }
            Err(why) => {
                self.forget_unsent(&tx);
                self.send(node, ErrorMessage::new(temp, &why));
                self.reply(command, Reply::failed(FailureKind::Refused, why));
            }
        }
    }

    /// The fundee's `funding_signed`: store the channel, then broadcast.
    pub(super) fn on_funding_signed(&mut self, node: NodeId, msg: &FundingSigned) {
        let key = self.opening.iter().find_map(|(k, o)| match o {
            Opening::Created { funding, .. }
                if k.0 == node && funding.channel_id == msg.channel_id =>
            {
                Some(*k)
            }
            _ => None,
        });
        let Some(key) = key else {
            return self.unknown(node, msg.channel_id);
        };
        let Some(Opening::Created {
            mut funding,
            tx,
            depth,
            index,
            command,
            announce,
        }) = self.opening.remove(&key)
        else {
            return;
        };
        if let Err(e) = funding.receive_funding_signed(&self.secp, msg) {
            // Nothing was broadcast: forget the channel, free the coins.
            self.forget_unsent(&tx);
            self.send(node, ErrorMessage::new(msg.channel_id, &e.to_string()));
            return self.reply(
                command,
                Reply::failed(
                    FailureKind::PeerRefused,
                    format!("channel open failed: {e}"),
                ),
            );
        }
        let id = funding.channel_id;
        let txid = tx.compute_txid();
        let amount = funding.funded.funding_amount;
        let phase = Phase::Funded {
            funding,
            tx: Some(tx.clone()),
            since: self.height,
            depth,
            confirmed: None,
            their_ready: None,
            ready_sent: false,
            command: None,
        };
        self.entries
            .insert(id, Entry::new(node, index, amount, phase, true));
        if announce {
            self.mark_public(id);
        }
        self.touch(id);
        self.deferred.push(Output::Broadcast { tx });
        self.reply(
            command,
            Reply::ChannelOpened {
                channel_id: id,
                funding_txid: txid,
            },
        );
        self.event(Event::ChannelPending {
            channel_id: id,
            peer: node,
            funding_txid: txid,
        });
    }

    /// The peer's `open_channel`: checked against our config, answered
    /// with `accept_channel`.
    pub(super) fn on_open_channel(&mut self, node: NodeId, msg: &OpenChannel) {
        let temp = msg.temporary_channel_id;
        if self.opening.contains_key(&(node, temp)) {
            // BOLT 2: a duplicate temporary_channel_id from the same peer.
            return self.abandon(node, temp, "temporary_channel_id already in use".into());
        }
        if let Some(why) = self.too_many_unfunded(node) {
            // Nothing is kept for a refused open.
            return self.send(node, ErrorMessage::new(temp, &why));
        }
        let request = match check_open_channel(msg, self.chain, &self.settings.config, false) {
            Ok(r) => r,
            Err(e) => return self.send(node, ErrorMessage::new(temp, &e.to_string())),
        };
        let index = self.take_index();
        let setup = self.local_setup(index, request.funding, request.params.dust_limit);
        match accept_channel(
            &self.secp,
            &request,
            &setup,
            self.settings.config.minimum_depth,
        ) {
            Ok(accept) => {
                self.send(node, accept);
                self.opening_started.insert((node, temp), self.now);
                self.opening.insert(
                    (node, temp),
                    Opening::Accepted {
                        request: Box::new(request),
                        setup: Box::new(setup),
                        index,
                    },
                );
            }
            Err(e) => self.send(node, ErrorMessage::new(temp, &e.to_string())),
        }
    }

    /// Whether a peer's new `open_channel` must be refused to bound what
    /// unfunded channels cost us (SAFETY.md "Peers that attack": unfunded
    /// channels bounded per peer and overall): per peer, its opens we
    /// accepted and its channels whose funding has not confirmed; overall,
    /// the opens in progress.
    fn too_many_unfunded(&self, node: NodeId) -> Option<String> {
        let accepted = |n: Option<NodeId>| {
            self.opening
                .iter()
                .filter(|((p, _), o)| {
                    matches!(o, Opening::Accepted { .. }) && n.is_none_or(|n| *p == n)
                })
                .count()
        };
        let unconfirmed = |n: Option<NodeId>| {
            self.entries
                .values()
                .filter(|e| {
                    n.is_none_or(|n| e.peer == n)
                        && matches!(
                            &e.phase,
                            Phase::Funded { confirmed: None, funding, .. } if !funding.funded.we_are_funder
                        )
                })
                .count()
        };
        if accepted(Some(node)) + unconfirmed(Some(node)) >= MAX_UNFUNDED_PER_PEER {
            return Some(format!(
                "too many unfunded channels from you ({MAX_UNFUNDED_PER_PEER}): open another once one's funding confirms"
            ));
        }
        if accepted(None) + unconfirmed(None) >= MAX_UNFUNDED_TOTAL {
            return Some(format!(
                "too many unfunded channels in all ({MAX_UNFUNDED_TOTAL}): try again later"
            ));
        }
        None
    }

    /// The funder's `funding_created`: check its signature, store the
    /// channel, answer `funding_signed`.
    pub(super) fn on_funding_created(&mut self, node: NodeId, msg: &FundingCreated) {
        let key = (node, msg.temporary_channel_id);
        let Some(Opening::Accepted { .. }) = self.opening.get(&key) else {
            return self.unknown(node, msg.temporary_channel_id);
        };
        let Some(Opening::Accepted {
            request,
            setup,
            index,
        }) = self.opening.remove(&key)
        else {
            return;
        };
        let terms = ChannelTerms {
            channel_type: request.channel_type.base,
            funding: request.funding,
            push: request.push,
            feerate: request.feerate,
            we_are_funder: false,
        };
        let (funding, signed) = match Funding::receive_funding_created(
            &self.secp,
            *setup,
            request.params,
            terms,
            msg,
        ) {
            Ok(x) => x,
            Err(e) => {
                return self.send(node, ErrorMessage::new(key.1, &e.to_string()));
            }
        };
        let id = funding.channel_id;
        if self.entries.contains_key(&id) {
            return self.send(node, ErrorMessage::new(key.1, "channel id already in use"));
        }
        let phase = Phase::Funded {
            funding: Box::new(funding),
            tx: None,
            since: self.height,
            depth: self.settings.config.minimum_depth.max(1),
            confirmed: None,
            their_ready: None,
            ready_sent: false,
            command: None,
        };
        self.entries
            .insert(id, Entry::new(node, index, request.funding, phase, true));
        // The opener asked for a public channel (BOLT 2 `announce_channel`).
        if request.announce {
            self.mark_public(id);
        }
        self.touch(id);
        self.send(node, signed);
        self.event(Event::ChannelPending {
            channel_id: id,
            peer: node,
            funding_txid: bitcoin::Txid::from_byte_array(msg.funding_txid),
        });
    }

    /// The peer's `channel_ready`.
    pub(super) fn on_channel_ready(&mut self, node: NodeId, msg: &ChannelReady) {
        let Some(entry) = self
            .entries
            .get_mut(&msg.channel_id)
            .filter(|e| e.peer == node)
        else {
            return self.unknown(node, msg.channel_id);
        };
        match &mut entry.phase {
            Phase::Funded { their_ready, .. } => {
                *their_ready = Some(msg.clone());
                self.check_ready(msg.channel_id);
            }
            // A retransmission after a reconnection (BOLT 2 allows it).
            Phase::Normal { .. } | Phase::Closed(_) => {}
        }
    }

    /// Sends our `channel_ready` once the funding is deep enough, and
    /// enters normal operation once both were sent (BOLT 2: a node "MUST
    /// wait until the funding transaction has reached `minimum_depth`
    /// before sending this message").
    pub(super) fn check_ready(&mut self, id: ChannelId) {
        let height = self.height;
        let Some(alias) = self.entries.get(&id).map(|e| self.local_alias(e.index)) else {
            return;
        };
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        let connected = self.connected.contains_key(&entry.peer) && entry.live;
        let peer = entry.peer;
        let Phase::Funded {
            funding,
            tx,
            depth,
            confirmed,
            their_ready,
            ready_sent,
            ..
        } = &mut entry.phase
        else {
            return;
        };
        let funding_tx = tx.clone();
        let Some((h, index)) = *confirmed else {
            return;
        };
        if height + 1 < h + *depth {
            return;
        }
        let mut ours = None;
        if !*ready_sent && connected {
            *ready_sent = true;
            ours = Some(funding.channel_ready(&self.secp, alias));
        }
        let next = match their_ready.take() {
            Some(ready) if *ready_sent => Some(((**funding).clone(), ready)),
            other => {
                *their_ready = other;
                None
            }
        };
        let vout = u16::try_from(funding.funded.funding_outpoint.vout).unwrap_or(u16::MAX);
        let scid = ShortChannelId::new(h, index, vout);
        if let Some(m) = ours {
            self.send(peer, m);
        }
        let Some((funding, ready)) = next else {
            return;
        };
        let remote_alias = ready.short_channel_id_alias;
        match funding.receive_channel_ready(&ready) {
            Ok(chan) => {
                // BOLT 2: anysegwit shutdown scripts once both offer it (we do).
                let anysegwit = self
                    .connected
                    .get(&peer)
                    .is_some_and(|(_, f)| f.offers(Feature::ShutdownAnySegwit));
                if let Some(entry) = self.entries.get_mut(&id) {
                    let mut chan = chan;
                    chan.max_feerate = self.settings.config.max_feerate;
                    chan.anysegwit = anysegwit;
                    entry.phase = Phase::Normal {
                        chan: Box::new(chan),
                        scid,
                        closing: None,
                        simple: None,
                        command: None,
                        remote_alias,
                        closing_txs: Vec::new(),
                        funding_tx,
                    };
                }
                self.touch(id);
                self.event(Event::ChannelReady {
                    channel_id: id,
                    peer,
                    short_channel_id: scid,
                });
                // Our policy for routing through us to the peer (ADR 0009).
                self.send_channel_update(id);
            }
            Err(e) => self.fail(id, &e.to_string()),
        }
    }

    /// An `open_channel` (`typ` 32) or `accept_channel` (33) with a key that
    /// is not a valid point: BOLT 2 "MUST fail the channel", which for an
    /// opening is an `error` for its `temporary_channel_id` (and the end of
    /// our open, for `accept_channel`).
    pub(in crate::core) fn on_invalid_open(&mut self, node: NodeId, typ: u16, temp: ChannelId) {
        let name = if typ == 32 {
            "open_channel"
        } else {
            "accept_channel"
        };
        let why = format!("{name} has a key that is not a valid compressed secp256k1 point");
        if typ == 33
            && matches!(
                self.opening.get(&(node, temp)),
                Some(Opening::Offered { .. })
            )
        {
            return self.abandon(node, temp, why);
        }
        if temp.is_all() {
            // An `error` for the all-zero id would fail every channel.
            return self.send(node, beongae_wire::Warning::new(temp, &why));
        }
        self.send(node, ErrorMessage::new(temp, &why));
    }

    /// BOLT 1: "SHOULD send `error` with the unknown `channel_id`".
    pub(super) fn unknown(&mut self, node: NodeId, id: ChannelId) {
        let text = format!("unknown channel {id}");
        self.send(node, ErrorMessage::new(id, &text));
    }
}

/// A temporary channel id no one else can guess or repeat: a hash of our
/// node secret and the channel's key index.
fn temporary_id(node_secret: &bitcoin::secp256k1::SecretKey, index: u32) -> ChannelId {
    let mut e = sha256::Hash::engine();
    e.input(b"beongae/temporary_channel_id");
    e.input(&node_secret.secret_bytes());
    e.input(&index.to_be_bytes());
    ChannelId(sha256::Hash::from_engine(e).to_byte_array())
}
