//! The workload: the channels of a run and their opening, the payments
//! and closes, what the replies and events mean, and when the network is
//! at rest.

use super::*;

impl World {
    /// A ring of channels (a line for two nodes) and a few chords, each
    /// opened by its first node after connecting.
    pub(super) fn plan_channels(&mut self) {
        let n = self.nodes.len();
        let mut links: Vec<(usize, usize)> = if n == 2 {
            vec![(0, 1)]
        } else {
            (0..n).map(|i| (i, (i + 1) % n)).collect()
        };
        let chords = self.rng.below(n as u64 / 2 + 1);
        for _ in 0..chords {
            let (a, b) = (
                self.rng.below(n as u64) as usize,
                self.rng.below(n as u64) as usize,
            );
            if a != b
                && !links
                    .iter()
                    .any(|&(x, y)| (x, y) == (a, b) || (y, x) == (a, b))
            {
                links.push((a, b));
            }
        }
        for (a, b) in links {
            let funding = Amount::from_sat(self.rng.range(200, 2_001) * 1_000);
            let push = Msat::from_msat(self.rng.below(funding.to_sat() / 2) * 1_000);
            let announce = self.rng.chance(0.5);
            self.chans.push(Chan {
                a,
                b,
                id: None,
                funding,
                push,
                announce,
                close: None,
                cheat: None,
            });
            let c = self.chans.len() - 1;
            let node_id = self.nodes[b].id;
            let t = self.ms(0, 5_000);
            self.command(
                t,
                a,
                Command::Connect {
                    node_id,
                    addr: addr(b, 9735),
                },
                Some(Pending::Connect(c)),
            );
        }
    }

    /// Payments at random times in the workload window: most small, some
    /// larger than one channel carries (paid in parts, or failing).
    pub(super) fn plan_payments(&mut self) {
        let n = self.nodes.len() as u64;
        let count = self.rng.range(
            self.config.payments.0 as u64,
            self.config.payments.1 as u64 + 1,
        );
        for i in 0..count as usize {
            let payer = self.rng.below(n) as usize;
            let payee = (payer + 1 + self.rng.below(n - 1) as usize) % n as usize;
            let sat = if self.rng.chance(0.7) {
                self.rng.range(1, 200) * 1_000
            } else {
                self.rng.range(200, 1_500) * 1_000
            };
            let msat = sat * 1_000 + self.rng.below(1_000);
            self.payments.push(Payment {
                payer,
                payee,
                msat,
                hash: None,
                reply: None,
            });
            let t = Duration::from_millis(self.rng.below(self.config.workload.as_millis() as u64));
            if !self.config.skip_payments.contains(&i) {
                self.after(t, Ev::Pay(i));
            }
        }
        // Up to two channels closed, mutually or by force, by either end.
        for _ in 0..self.rng.below(3) {
            let c = self.rng.below(self.chans.len() as u64) as usize;
            let end = self.rng.below(2) as usize;
            let force = self.rng.chance(0.5);
            let t = Duration::from_millis(self.rng.below(self.config.workload.as_millis() as u64));
            if self.next_fault() {
                self.after(t, Ev::Close(c, end, force));
            }
        }
        // Now and then a node stops answering for hours: past the HTLC
        // deadlines of its peers, which must go to chain.
        if self.rng.chance(self.config.long_stall) {
            let node = self.rng.below(n) as usize;
            let t = Duration::from_millis(self.rng.below(self.config.workload.as_millis() as u64));
            let d = Duration::from_secs(self.rng.range(3 * 3600, 8 * 3600));
            if self.next_fault() {
                self.after(t, Ev::LongStall(node, d));
            }
        }
        // Now and then a cheat: one end of a channel keeps its commitment,
        // and broadcasts it once it is revoked.
        if self.rng.chance(self.config.cheat) {
            let c = self.rng.below(self.chans.len() as u64) as usize;
            let end = self.rng.below(2) as usize;
            let half = self.config.workload.as_millis() as u64 / 2;
            let keep = Duration::from_millis(self.rng.below(half));
            let cheat = keep + Duration::from_millis(self.rng.range(60_000, 60_000 + half));
            if self.next_fault() {
                self.after(keep, Ev::Keep(c, end));
                self.after(cheat, Ev::Cheat(c));
            }
        }
    }

    /// Node `end` of channel `c` keeps its current commitment, fully
    /// signed, to cheat with later.
    pub(super) fn keep_commitment(&mut self, c: usize, end: usize) {
        let node = if end == 0 {
            self.chans[c].a
        } else {
            self.chans[c].b
        };
        let Some(id) = self.chans[c].id else { return };
        let Some((number, tx)) = self.nodes[node]
            .core
            .as_ref()
            .and_then(|core| core.signed_commitment(id))
        else {
            return;
        };
        self.log(format!(
            "node {node} keeps its commitment {number} of channel {id}: {}",
            tx.compute_txid()
        ));
        self.chans[c].cheat = Some(Cheat {
            by: node,
            number,
            tx,
            sent: false,
        });
    }

    /// The node that kept a commitment of channel `c` broadcasts it if it
    /// is revoked: its channel has moved two commitments on since (so the
    /// peer has the revocation for it; one on, the revocation may not
    /// have reached it yet). Else it tries again later in the workload.
    pub(super) fn cheat(&mut self, c: usize) {
        let Some(cheat) = &self.chans[c].cheat else {
            return;
        };
        let (by, number) = (cheat.by, cheat.number);
        let Some(id) = self.chans[c].id else { return };
        let Some(core) = self.nodes[by].core.as_ref() else {
            return self.after(Duration::from_secs(30), Ev::Cheat(c));
        };
        match core.signed_commitment(id) {
            // Closed meanwhile: nothing to cheat on.
            None => {}
            Some((now, _)) if now >= number + 2 => {
                let tx = cheat.tx.clone();
                let asked = self.chans[c].close;
                self.chans[c].close = Some((by, true));
                let accepted = self.devnet().accept(tx.clone());
                match accepted {
                    Ok(_) => {
                        self.counts.cheats += 1;
                        self.log(format!(
                            "node {by} cheats: it broadcasts its revoked commitment {number} of channel {id} ({})",
                            tx.compute_txid()
                        ));
                        if let Some(cheat) = self.chans[c].cheat.as_mut() {
                            cheat.sent = true;
                        }
                    }
                    Err(e) => {
                        self.log(format!("node {by}'s revoked commitment was refused: {e}"));
                        self.chans[c].close = asked;
                    }
                }
            }
            Some(_) if self.phase == Phase::Workload => {
                self.after(Duration::from_secs(60), Ev::Cheat(c));
            }
            Some(_) => {}
        }
    }

    pub(super) fn command(
        &mut self,
        d: Duration,
        node: usize,
        command: Command,
        pending: Option<Pending>,
    ) {
        let id = self.next_command;
        self.next_command += 1;
        if let Some(p) = pending {
            self.commands.insert((node, id), p);
        }
        self.input(
            d,
            node,
            Input::Command {
                id: CommandId(id),
                command,
            },
        );
    }

    pub(super) fn on_reply(
        &mut self,
        n: usize,
        id: CommandId,
        reply: Reply,
    ) -> Result<(), Violation> {
        let Some(pending) = self.commands.remove(&(n, id.0)) else {
            return Ok(());
        };
        match (pending, reply) {
            (Pending::Connect(c), Reply::Connected(_)) => {
                let ch = &self.chans[c];
                let command = Command::OpenChannel {
                    node_id: self.nodes[ch.b].id,
                    funding: ch.funding,
                    push: ch.push,
                    announce: ch.announce,
                };
                self.command(Duration::from_millis(1), n, command, Some(Pending::Open(c)));
            }
            (Pending::Connect(c), other) => {
                return Err(self.violation(format!("channel {c}'s connect failed: {other:?}")));
            }
            (Pending::Open(c), Reply::ChannelOpened { channel_id, .. }) => {
                self.chans[c].id = Some(channel_id);
            }
            (Pending::Open(c), other) => {
                return Err(self.violation(format!("channel {c} did not open: {other:?}")));
            }
            (
                Pending::Invoice(i),
                Reply::Invoice {
                    invoice,
                    payment_hash,
                },
            ) => {
                self.payments[i].hash = Some(payment_hash);
                let payer = self.payments[i].payer;
                let session_key = loop {
                    if let Ok(k) = bitcoin::secp256k1::SecretKey::from_slice(&self.rng.bytes32()) {
                        break k;
                    }
                };
                let command = Command::Pay {
                    invoice,
                    amount: None,
                    now_secs: self.now.as_secs(),
                    session_key,
                };
                let d = self.ms(1, 2_000);
                self.command(d, payer, command, Some(Pending::Pay(i)));
            }
            (Pending::Invoice(i), other) => {
                return Err(self.violation(format!("payment {i}'s invoice was refused: {other:?}")));
            }
            (Pending::Pay(i), reply) => self.payments[i].reply = Some(reply),
        }
        Ok(())
    }

    pub(super) fn on_event(&mut self, n: usize, e: Event) -> Result<(), Violation> {
        match e {
            Event::CommitmentRefused {
                channel_id, reason, ..
            } => Err(self.violation(format!(
                "node {n} refused its peer's commitment of channel {channel_id}: {reason}"
            ))),
            Event::ErrorReceived { node_id, text } => {
                // A channel forced closed fails with an `error` to the peer.
                let from = self.nodes.iter().position(|x| x.id == node_id);
                let stalled = self.long_stalled.contains(&n)
                    || from.is_some_and(|f| self.long_stalled.contains(&f));
                let forced = stalled
                    || self.chans.iter().any(|c| {
                        matches!(c.close, Some((_, true)))
                            && ((Some(c.a), c.b) == (from, n) || (Some(c.b), c.a) == (from, n))
                    });
                if forced {
                    Ok(())
                } else {
                    Err(self.violation(format!(
                        "node {n} received an error from {}: {text}",
                        self.index_of(node_id)
                    )))
                }
            }
            Event::ChannelClosed { channel_id, txid } => {
                if self.chans.iter().any(|c| {
                    c.id == Some(channel_id)
                        && (c.close.is_some()
                            || self.long_stalled.contains(&c.a)
                            || self.long_stalled.contains(&c.b))
                }) {
                    Ok(())
                } else {
                    Err(self.violation(format!(
                        "node {n}'s channel {channel_id} closed unasked ({txid:?})"
                    )))
                }
            }
            _ => Ok(()),
        }
    }

    pub(super) fn index_of(&self, id: NodeId) -> String {
        self.nodes
            .iter()
            .position(|x| x.id == id)
            .map_or_else(|| id.to_string(), |i| format!("node {i}"))
    }

    /// Whether every channel of the plan is open and normal at both ends.
    pub(super) fn channels_normal(&self) -> bool {
        self.chans.iter().all(|c| {
            c.id.is_some_and(|id| {
                [c.a, c.b].iter().all(|&n| {
                    self.nodes[n].core.as_ref().is_some_and(|core| {
                        core.channels().iter().any(|s| {
                            s.channel_id == id
                                && s.state == beongae_node::core::ChannelState::Normal
                                && s.active
                        })
                    })
                })
            })
        })
    }

    /// At rest: every node up, every open channel reestablished at both
    /// ends with no HTLC left, every closed one resolved on chain, every
    /// payment ended at its payer, nothing left to confirm.
    pub(super) fn quiet(&self) -> bool {
        let (net, chain) = self.unsettled_parts();
        net.is_empty() && chain.is_empty()
    }

    /// What keeps the network from rest, for the report.
    pub(crate) fn unsettled(&self) -> String {
        let (mut net, chain) = self.unsettled_parts();
        net.extend(chain);
        net.join("; ")
    }

    /// What keeps the network from rest: what waits for the nodes and the
    /// network, and what waits only for blocks.
    pub(super) fn unsettled_parts(&self) -> (Vec<String>, Vec<String>) {
        use beongae_node::core::ChannelState as S;
        let (mut net, mut chain) = (Vec::new(), Vec::new());
        let waiting = self.devnet().mempool().len();
        if waiting > 0 {
            chain.push(format!("{waiting} transactions in the mempool"));
        }
        let tip = self.devnet().height();
        // Answers and messages on their way to a node (a lookup it asked
        // for, a wallet's answer) may still set it to work.
        let in_flight = self
            .queue
            .values()
            .filter(|e| matches!(e, Ev::Input { .. } | Ev::Msg { .. }))
            .count();
        if in_flight > 0 {
            net.push(format!("{in_flight} inputs on their way"));
        }
        // A revoked commitment that confirmed: until its punishment does.
        for c in &self.chans {
            if let Some(cheat) = c.cheat.as_ref().filter(|x| x.sent) {
                if let Err(e) = crate::check::punished(self, cheat) {
                    chain.push(e);
                }
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            match &node.core {
                None => net.push(format!("node {i} down")),
                Some(core) => {
                    // A block it has not seen may hold what it must answer.
                    if core.height() != Some(tip) {
                        chain.push(format!("node {i} has not seen block {tip}"));
                    }
                    let pending = core.pending_broadcasts().len();
                    if pending > 0 {
                        chain.push(format!("node {i} has {pending} transactions to confirm"));
                    }
                }
            }
        }
        // Each node's summaries, once (a closed channel's derive keys).
        let summaries: Vec<Vec<beongae_node::core::ChannelSummary>> = self
            .nodes
            .iter()
            .map(|x| x.core.as_ref().map(|c| c.channels()).unwrap_or_default())
            .collect();
        let payments: Vec<Vec<beongae_node::core::PaymentSummary>> = self
            .nodes
            .iter()
            .map(|x| x.core.as_ref().map(|c| c.payments()).unwrap_or_default())
            .collect();
        for c in &self.chans {
            let Some(id) = c.id else {
                net.push(format!("channel {}-{} not opened", c.a, c.b));
                continue;
            };
            for n in [c.a, c.b] {
                if self.nodes[n].core.is_none() {
                    continue;
                }
                let Some(s) = summaries[n].iter().find(|s| s.channel_id == id) else {
                    net.push(format!("node {n} lost channel {id}"));
                    continue;
                };
                let what = format!(
                    "node {n}'s channel {}-{}: {:?}, active {}, {} HTLCs, {} closing, {} unresolved",
                    c.a,
                    c.b,
                    s.state,
                    s.active,
                    s.pending_htlcs,
                    s.closing,
                    s.unresolved_htlcs.len()
                );
                match s.state {
                    S::Normal if !s.active || s.pending_htlcs > 0 => net.push(what),
                    S::ShuttingDown => net.push(what),
                    S::AwaitingConfirmation | S::Closing => chain.push(what),
                    S::Closed if s.closing > Amount::ZERO || !s.unresolved_htlcs.is_empty() => {
                        chain.push(what)
                    }
                    _ => {}
                }
            }
        }
        for (i, p) in self.payments.iter().enumerate() {
            let Some(hash) = p.hash else {
                continue;
            };
            // A cheater's too: its HTLCs that its old commitment cannot pay
            // fail once that commitment is buried.
            if payments[p.payer]
                .iter()
                .any(|s| s.payment_hash == hash && !s.incoming && s.status.starts_with("pending"))
            {
                chain.push(format!("payment {i} pending at node {}", p.payer));
            }
        }
        (net, chain)
    }
}
