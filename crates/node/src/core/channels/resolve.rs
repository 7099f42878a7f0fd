//! BOLT 5 on chain: once a transaction spending a channel's funding output
//! confirms, what of it is ours to claim. This part handles a revoked
//! commitment of the peer's (§"Revoked Transaction Close Handling"): the
//! HTLCs that commitment carried are read from the store
//! ([`Output::LoadRemoteHtlcs`]), and the justice transaction taking every
//! output but the anchors goes to our wallet (ADR 0008).

use beongae_channel::penalty::{
    commitment_number, justice_transaction, revoked_claims, PenaltySecrets,
};
use beongae_script::commitment::CommitmentNumber;
use beongae_wire::ChannelId;
use bitcoin::{Block, Transaction};

use super::record::{self, KeptState, Sweep};
use super::{Channels, Phase};
use crate::core::Output;

impl Channels {
    /// The funding output of closed channel `id` is spent by a confirmed
    /// transaction (`Closed::tx`): if it is a commitment of the peer's that
    /// it revoked, ask for that commitment's HTLCs to punish it.
    pub(super) fn resolve(&mut self, id: ChannelId) {
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let Phase::Closed(c) = &entry.phase else {
            return;
        };
        if c.confirmed.is_none() || c.mutual() || !c.sweeps.is_empty() {
            return;
        }
        let (Some(KeptState::Normal(bytes)), Some(spend)) = (&c.kept, &c.tx) else {
            return;
        };
        let (signing, secrets) = self.secrets(entry.index);
        let Ok(chan) = record::decode_normal(bytes, signing, secrets) else {
            return;
        };
        let Some(number) = commitment_number(&chan.funded, spend) else {
            return; // not a commitment (a closing transaction)
        };
        let ours = chan
            .signed_local_commitment(&self.secp)
            .is_ok_and(|t| t.compute_txid() == spend.compute_txid());
        if !ours && number < chan.remote.current.get() {
            tracing::warn!(channel = %id, number, "the peer broadcast a revoked commitment: punishing it");
            self.deferred.push(Output::LoadRemoteHtlcs {
                channel_id: id,
                number,
            });
        }
    }

    /// The HTLCs of the peer's revoked commitment `number`: the justice
    /// transaction goes out (BOLT 5: "MUST resolve" every output of it).
    pub(in crate::core) fn on_remote_htlcs(
        &mut self,
        id: ChannelId,
        number: u64,
        stored: Result<Option<Vec<u8>>, String>,
    ) {
        let htlcs = match stored {
            Ok(None) => Vec::new(),
            Ok(Some(bytes)) => match record::decode_remote_htlcs(&bytes) {
                Ok(h) => h,
                Err(e) => {
                    return tracing::error!(channel = %id, number, error = %e, "cannot read the revoked commitment's htlcs; punishing without them");
                }
            },
            Err(e) => {
                return tracing::error!(channel = %id, number, error = %e, "cannot load the revoked commitment's htlcs");
            }
        };
        let Some(entry) = self.entries.get(&id) else {
            return;
        };
        let keys = self.keys.channel(entry.index);
        let (signing, secrets) = self.secrets(entry.index);
        let Phase::Closed(c) = &entry.phase else {
            return;
        };
        if !c.sweeps.is_empty() {
            return; // already punished (a repeated answer)
        }
        let (Some(KeptState::Normal(bytes)), Some(spend)) = (&c.kept, &c.tx) else {
            return;
        };
        let Some(destination) = self.settings.close_script.clone() else {
            return tracing::error!(channel = %id, "no wallet address to take the revoked commitment's outputs to");
        };
        let justice = record::decode_normal(bytes, signing, secrets)
            .map_err(|e| e.to_string())
            .and_then(|chan| {
                let n = CommitmentNumber::new(number).ok_or("commitment number")?;
                let secret = chan
                    .remote
                    .revoked_secret(n)
                    .ok_or("no secret kept for it")?;
                let claims = revoked_claims(
                    &self.secp,
                    &chan.funded,
                    spend,
                    n,
                    secret,
                    &htlcs,
                    &PenaltySecrets {
                        revocation_base: keys.revocation_base,
                        payment_base: keys.payment_base,
                    },
                )
                .map_err(|e| e.to_string())?;
                justice_transaction(&self.secp, &claims, destination, self.feerate)
                    .map_err(|e| e.to_string())
            });
        let tx = match justice {
            Ok(tx) => tx,
            Err(e) => {
                return tracing::error!(channel = %id, number, error = %e, "cannot build the justice transaction");
            }
        };
        tracing::warn!(channel = %id, number, txid = %tx.compute_txid(), "broadcasting the justice transaction");
        if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
            c.sweeps.push(Sweep {
                tx: tx.clone(),
                confirmed: None,
            });
        }
        self.touch(id);
        self.deferred.push(Output::Broadcast { tx });
    }

    /// Our sweeps in `block` (at `height`) are confirmed.
    pub(super) fn sweeps_in_block(&mut self, height: u32, block: &Block) {
        let txids: std::collections::BTreeSet<bitcoin::Txid> =
            block.txdata.iter().map(Transaction::compute_txid).collect();
        let mut touched = Vec::new();
        for (id, entry) in self.entries.iter_mut() {
            if let Phase::Closed(c) = &mut entry.phase {
                for s in &mut c.sweeps {
                    if s.confirmed.is_none() && txids.contains(&s.tx.compute_txid()) {
                        s.confirmed = Some(height);
                        touched.push(*id);
                    }
                }
            }
        }
        for id in touched {
            self.touch(id);
        }
    }

    /// The block at `height` left the chain: our sweeps in it are not
    /// confirmed any more (they go out again).
    pub(super) fn sweeps_disconnected(&mut self, height: u32) {
        let mut touched = Vec::new();
        for (id, entry) in self.entries.iter_mut() {
            if let Phase::Closed(c) = &mut entry.phase {
                for s in &mut c.sweeps {
                    if s.confirmed.is_some_and(|h| h >= height) {
                        s.confirmed = None;
                        touched.push(*id);
                    }
                }
            }
        }
        for id in touched {
            self.touch(id);
        }
    }
}
