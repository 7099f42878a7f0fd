//! The simulated network: connections with latency that keep each
//! stream's order, closes that flush, drops that lose what is in flight,
//! crashes, and the faults drawn between steps.

use super::*;

impl World {
    /// Node `n` sends `msg` on its connection `peer`.
    pub(super) fn send(&mut self, n: usize, peer: PeerId, msg: Message) -> Result<(), Violation> {
        let Some(&(c, end)) = self.by_peer.get(&(n, peer)) else {
            return Ok(());
        };
        if !self.conns[c].live || !self.conns[c].open[end] {
            return Ok(());
        }
        let bytes = msg.encode().map_err(|e| {
            self.violation(format!("node {n} sent a message it cannot encode: {e:?}"))
        })?;
        if let Message::CommitmentSigned(m) = &msg {
            self.note_signed(n, m.channel_id, &bytes)?;
        }
        let to = 1 - end;
        let latency = self.conns[c].latency;
        let jitter = Duration::from_micros(self.rng.below(latency.as_micros() as u64 / 2 + 1));
        let t =
            (self.now + latency + jitter).max(self.conns[c].last[to] + Duration::from_micros(1));
        self.conns[c].last[to] = t;
        self.at(t, Ev::Msg { conn: c, to, bytes });
        Ok(())
    }

    /// No node signs two different commitments for one number: every
    /// `commitment_signed` sent is kept by (node, channel, the number of
    /// the peer's commitment it signs, which the node reports as the
    /// channel's `updates`).
    pub(super) fn note_signed(
        &mut self,
        n: usize,
        channel: ChannelId,
        bytes: &[u8],
    ) -> Result<(), Violation> {
        let Some(number) = self.nodes[n]
            .core
            .as_ref()
            .and_then(|c| c.channels().into_iter().find(|s| s.channel_id == channel))
            .map(|s| s.updates)
        else {
            return Err(self.violation(format!(
                "node {n} signed a commitment of a channel it does not have"
            )));
        };
        let h = sha256::Hash::hash(bytes);
        match self.signed.insert((n, channel, number), h) {
            Some(old) if old != h => Err(self.violation(format!(
                "node {n} signed two different commitments number {number} of channel {channel}"
            ))),
            _ => Ok(()),
        }
    }

    /// Node `n` closes its connection `peer` after what it sent so far.
    pub(super) fn close(&mut self, n: usize, peer: PeerId) {
        let Some(&(c, end)) = self.by_peer.get(&(n, peer)) else {
            return;
        };
        self.conns[c].open[end] = false;
        self.at(self.now, Ev::Closed { conn: c, end });
        let t = self.conns[c].last[1 - end] + Duration::from_micros(1);
        self.at(
            t,
            Ev::Closed {
                conn: c,
                end: 1 - end,
            },
        );
    }

    /// The connection drops: what is in flight is lost, and each end
    /// learns of it after a while.
    pub(super) fn drop_conn(&mut self, c: usize) {
        self.log(format!("connection {c} drops"));
        self.conns[c].live = false;
        self.conns[c].open = [false, false];
        for end in 0..2 {
            let d = self.ms(1, 2_000);
            self.after(d, Ev::Closed { conn: c, end });
        }
    }

    /// A new connection from `a` (dialling) to `b`.
    pub(super) fn connect(&mut self, a: usize, b: usize) {
        let (pa, pb) = (
            PeerId(self.nodes[a].next_peer),
            PeerId(self.nodes[b].next_peer),
        );
        self.nodes[a].next_peer += 1;
        self.nodes[b].next_peer += 1;
        let latency = self.ms(5, 150);
        let c = self.conns.len();
        self.conns.push(Conn {
            ends: [(a, pa), (b, pb)],
            open: [true, true],
            told: [false, false],
            live: true,
            last: [self.now, self.now],
            latency,
        });
        self.by_peer.insert((a, pa), (c, 0));
        self.by_peer.insert((b, pb), (c, 1));
        self.log(format!(
            "connection {c}: {a} (peer {}) dialled {b} (peer {})",
            pa.0, pb.0
        ));
        let (ida, idb) = (self.nodes[a].id, self.nodes[b].id);
        self.input(
            Duration::ZERO,
            a,
            Input::PeerConnected {
                peer: pa,
                node_id: idb,
                direction: Direction::Outbound,
                remote_addr: Some(addr(b, 9735)),
            },
        );
        self.input(
            Duration::ZERO,
            b,
            Input::PeerConnected {
                peer: pb,
                node_id: ida,
                direction: Direction::Inbound,
                remote_addr: Some(addr(a, 40_000 + (c % 20_000) as u16)),
            },
        );
    }

    /// Node `n` dies: its outputs not yet performed never are, messages to
    /// it are lost, its peers see the connections drop; it starts again
    /// from its store a little later.
    pub(super) fn crash(&mut self, n: usize) {
        self.log(format!("node {n} crashes"));
        self.nodes[n].core = None;
        self.nodes[n].watcher = None;
        self.nodes[n].life += 1;
        for c in 0..self.conns.len() {
            for end in 0..2 {
                if self.conns[c].ends[end].0 == n && !self.conns[c].told[end] {
                    self.conns[c].told[end] = true;
                    self.by_peer.remove(&self.conns[c].ends[end]);
                    self.conns[c].live = false;
                    self.conns[c].open = [false, false];
                    let d = self.ms(1, 2_000);
                    self.after(
                        d,
                        Ev::Closed {
                            conn: c,
                            end: 1 - end,
                        },
                    );
                }
            }
        }
        let devnet = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        self.nodes[n].wallet.crashed(&devnet);
        drop(devnet);
        let d = if self.phase == Phase::Workload {
            self.ms(1_000, 30_000)
        } else {
            Duration::ZERO
        };
        self.after(d, Ev::Restart(n));
    }

    /// A network or process fault between steps.
    pub(super) fn fault(&mut self) {
        let n = self.nodes.len() as u64;
        let kind = self.rng.below(100);
        let node = self.rng.below(n) as usize;
        let live: Vec<usize> = (0..self.conns.len())
            .filter(|&c| self.conns[c].live && self.conns[c].open == [true, true])
            .collect();
        let pick = if live.is_empty() {
            None
        } else {
            Some(live[self.rng.below(live.len() as u64) as usize])
        };
        let d = Duration::from_secs(self.rng.range(1, 120));
        let depth = self.rng.range(1, 7) as u32;
        if !self.next_fault() {
            return;
        }
        match kind {
            0..35 => {
                if let Some(c) = pick {
                    self.counts.drops += 1;
                    self.drop_conn(c);
                }
            }
            35..50 => {
                self.counts.partitions += 1;
                self.log(format!("node {node} is cut off for {d:?}"));
                self.nodes[node].cut_until = self.now + d;
                for c in 0..self.conns.len() {
                    if self.conns[c].live && self.conns[c].ends.iter().any(|e| e.0 == node) {
                        self.drop_conn(c);
                    }
                }
            }
            50..70 => {
                if self.nodes[node].core.is_some() {
                    self.counts.stalls += 1;
                    self.log(format!("node {node} stalls for {d:?}"));
                    // Never shortened: what waits for the end of a stall
                    // must not run after what comes later.
                    let until = self.nodes[node].stalled_until.max(self.now + d);
                    self.nodes[node].stalled_until = until;
                }
            }
            70..85 => {
                if self.nodes[node].core.is_some() {
                    self.counts.kills += 1;
                    self.crash(node);
                }
            }
            _ => self.reorg(depth),
        }
    }

    /// With chance `Config::drop_tx`, one transaction of the mempool (and
    /// what spends it) leaves it for good, before the next block: only its
    /// owner broadcasting it again brings it back. A fault like the others
    /// (numbered, so that a shrink may leave it out).
    pub(super) fn drop_a_transaction(&mut self) {
        if !self.drop_rng.chance(self.config.drop_tx) {
            return;
        }
        let pool = self.devnet().mempool();
        if pool.is_empty() {
            return;
        }
        let txid = pool[self.drop_rng.below(pool.len() as u64) as usize];
        if !self.next_fault() {
            return;
        }
        let dropped = self.devnet().evict(txid);
        self.counts.dropped_transactions += dropped.len() as u64;
        self.log(format!(
            "{txid} leaves the mempool for good, with {} spending it",
            dropped.len().saturating_sub(1)
        ));
    }

    /// The chain reorganises: the top `depth` blocks are replaced by a
    /// longer branch (mined by another miner, so that every block differs).
    /// The replaced blocks' transactions return to the mempool; each, with
    /// what spends it, is left out of the new branch with chance 3 in 10
    /// and comes back to the mempool after it (confirmed late).
    pub(super) fn reorg(&mut self, depth: u32) {
        self.counts.reorgs += 1;
        let time = self.now.as_secs() as u32;
        let branch = ScriptBuf::new_op_return(self.counts.reorgs.to_be_bytes());
        let mut devnet = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        self.log(format!(
            "the chain reorganises {depth} deep: blocks {} to {} replaced",
            devnet.height() + 1 - depth,
            devnet.height()
        ));
        devnet.disconnect(depth);
        let mut late = Vec::new();
        for txid in devnet.mempool() {
            if devnet.mempool().contains(&txid) && self.rng.chance(0.3) {
                late.extend(devnet.evict(txid));
            }
        }
        devnet.mine(depth + 1, &branch, time);
        self.counts.late_transactions += late.len() as u64;
        for tx in late {
            let _ = devnet.accept(tx);
        }
    }
}
