//! Failed channels whose commitment we held back because our state may be
//! an old copy (ADR 0007): they are reestablished on every connection, and
//! a `channel_reestablish` that shows our state is current releases our
//! commitment; one that proves it old marks it never to go out.

use beongae_channel::normal::{ChannelError, ReestablishError};
use beongae_wire::msgs::ChannelReestablish;
use beongae_wire::{ChannelId, NodeId};
use bitcoin::Transaction;

use super::record::{self, KeptState, Withheld};
use super::{Channels, Phase};
use crate::core::Output;

/// What a kept state says of the peer's `channel_reestablish`.
enum Verdict {
    /// Our state is current: this is our latest commitment, fully signed.
    Current(Box<Transaction>),
    /// The peer proved our state old.
    Behind,
    /// Nothing proven either way.
    Unknown(String),
}

impl Channels {
    /// Our `channel_reestablish` for a withheld channel, from its kept state.
    pub(super) fn withheld_reestablish(&self, id: ChannelId) -> Option<ChannelReestablish> {
        let entry = self.entries.get(&id)?;
        let Phase::Closed(c) = &entry.phase else {
            return None;
        };
        if !c.awaits_reestablish() {
            return None;
        }
        let (signing, secrets) = self.secrets(entry.index);
        match c.kept.as_ref()? {
            KeptState::Funded(b) => record::decode_funding(b, signing, secrets)
                .ok()
                .map(|f| f.reestablish(&self.secp)),
            KeptState::Normal(b) => record::decode_normal(b, signing, secrets)
                .ok()
                .map(|n| n.reestablish(&self.secp)),
        }
    }

    /// Our latest commitment from a closed channel's kept state, signed.
    fn kept_commitment(&self, id: ChannelId) -> Option<Transaction> {
        let entry = self.entries.get(&id)?;
        let Phase::Closed(c) = &entry.phase else {
            return None;
        };
        let (signing, secrets) = self.secrets(entry.index);
        match c.kept.as_ref()? {
            KeptState::Funded(b) => record::decode_funding(b, signing, secrets)
                .ok()?
                .signed_local_commitment(&self.secp)
                .ok(),
            KeptState::Normal(b) => record::decode_normal(b, signing, secrets)
                .ok()?
                .signed_local_commitment(&self.secp)
                .ok(),
        }
    }

    fn verdict(&self, id: ChannelId, msg: &ChannelReestablish) -> Option<Verdict> {
        let entry = self.entries.get(&id)?;
        let Phase::Closed(c) = &entry.phase else {
            return None;
        };
        let (signing, secrets) = self.secrets(entry.index);
        let checked = match c.kept.as_ref()? {
            KeptState::Funded(b) => {
                let f = record::decode_funding(b, signing, secrets).ok()?;
                f.check_reestablish(msg).map_err(ChannelError::Reestablish)
            }
            KeptState::Normal(b) => {
                let mut n = record::decode_normal(b, signing, secrets).ok()?;
                n.receive_reestablish(&self.secp, msg).map(|_| ())
            }
        };
        Some(match checked {
            Ok(()) => Verdict::Current(Box::new(self.kept_commitment(id)?)),
            Err(ChannelError::Reestablish(ReestablishError::WeFellBehind(_))) => Verdict::Behind,
            // Including BOLT 2's `next_commitment_number` 0 (the peer says it
            // lost its state): nothing shows ours is current.
            Err(e) => Verdict::Unknown(e.to_string()),
        })
    }

    /// The peer's `channel_reestablish` for a withheld channel.
    pub(super) fn on_withheld_reestablish(&mut self, node: NodeId, msg: &ChannelReestablish) {
        let id = msg.channel_id;
        match self.verdict(id, msg) {
            Some(Verdict::Current(tx)) => {
                tracing::warn!(channel = %id, "our state is current: broadcasting our commitment");
                self.release(id, *tx, "our state proved current");
                let why = "the channel failed earlier: closing with our commitment";
                self.send(node, beongae_wire::ErrorMessage::new(id, why));
            }
            Some(Verdict::Behind) => {
                if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
                    c.withheld = Withheld::Behind;
                }
                self.touch(id);
                let why = "our channel state is behind; please close the channel";
                self.send(node, beongae_wire::ErrorMessage::new(id, why));
            }
            Some(Verdict::Unknown(why)) => {
                tracing::warn!(channel = %id, %why, "still cannot tell whether our state is current");
                self.send(node, beongae_wire::ErrorMessage::new(id, &why));
            }
            None => {}
        }
    }

    /// Broadcasts the withheld commitment `tx` of closed channel `id`.
    fn release(&mut self, id: ChannelId, tx: Transaction, why: &str) {
        let txid = tx.compute_txid();
        if let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) {
            c.withheld = Withheld::No;
            c.tx = Some(tx.clone());
            c.txid = Some(txid);
            c.reason = format!("{} ({why})", c.reason);
        }
        self.touch(id);
        self.broadcast_funding_off_chain(id);
        self.deferred.push(Output::Broadcast { tx });
    }

    /// `closechannel --force` of a withheld channel: only one whose state
    /// was never proven old, and whose funding is not spent yet; the user
    /// takes the risk the log names.
    pub(super) fn force_withheld(&mut self, id: ChannelId) -> Result<bitcoin::Txid, String> {
        let withheld = match self.entries.get(&id).map(|e| &e.phase) {
            Some(Phase::Closed(c)) if c.txid.is_some() => {
                return Err(format!(
                    "channel {id}: its funding output is already spent (by {})",
                    c.txid.map(|t| t.to_string()).unwrap_or_default()
                ))
            }
            Some(Phase::Closed(c)) => c.withheld,
            _ => return Err(format!("channel {id} is not withheld")),
        };
        match withheld {
            Withheld::Behind => Err(format!(
                "channel {id}: the peer proved our state old, so our commitment is revoked and is never broadcast (the peer's commitment returns our funds)"
            )),
            Withheld::No => Err(format!("channel {id} is closed")),
            Withheld::UntilFunded => Err(format!(
                "channel {id}: its unconfirmed funding is being double-spent back to the wallet"
            )),
            Withheld::Unverified => {
                let tx = self
                    .kept_commitment(id)
                    .ok_or_else(|| format!("channel {id}: no commitment kept"))?;
                let txid = tx.compute_txid();
                tracing::warn!(channel = %id, %txid, "broadcasting a commitment never shown current, as the user asked: if our state was an old copy, the peer may take the channel's funds");
                self.release(id, tx, "forced by the user");
                Ok(txid)
            }
        }
    }
}
