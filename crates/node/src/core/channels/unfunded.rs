//! Channels whose funding never confirms (BOLT 2 §"Channel
//! Establishment"): the fundee "SHOULD forget the channel if it does not
//! see the correct funding transaction after a timeout of 2016 blocks";
//! the funder, whose coins the funding transaction spends, double-spends
//! them back to its wallet when the user forces such a channel closed, so
//! that they are not locked by a transaction that may never confirm.

use beongae_wire::{ChannelId, ErrorMessage};
use bitcoin::Transaction;

use super::{Channels, Phase};
use crate::core::{FailureKind, Output};

/// Blocks the fundee waits for the funding transaction (BOLT 2).
pub(crate) const FUNDEE_WAIT: u32 = 2016;

impl Channels {
    /// The fundee gives up on channel `id`: its funding did not confirm in
    /// [`FUNDEE_WAIT`] blocks. It has nothing of its own at stake (the
    /// funder's coins fund it); the channel is closed (still watched, should
    /// the funding confirm after all) and the peer told.
    pub(super) fn forget_unfunded(&mut self, id: ChannelId) {
        let Some(peer) = self.entries.get(&id).map(|e| e.peer) else {
            return;
        };
        let why = format!("the funding transaction did not confirm within {FUNDEE_WAIT} blocks");
        tracing::warn!(channel = %id, "forgetting the channel: {why}");
        let command = self.mark_closed(id, None, None, None, format!("forgotten: {why}"));
        self.send(peer, ErrorMessage::new(id, &why));
        self.reply(
            command,
            crate::core::Reply::failed(
                FailureKind::ChannelFailed,
                format!("channel {id} forgotten: {why}"),
            ),
        );
    }

    /// Our funding transaction `funding` of channel `id`, not confirmed,
    /// is to be abandoned: the wallet spends its inputs back to itself at
    /// a higher fee ([`Output::DoubleSpend`]), outbidding a commitment 0
    /// (fee `commitment_fee`) the peer may have sent out on top of it.
    pub(super) fn double_spend_funding(
        &mut self,
        id: ChannelId,
        funding: Transaction,
        commitment_fee: bitcoin::Amount,
    ) {
        tracing::warn!(channel = %id, txid = %funding.compute_txid(), "double-spending our unconfirmed funding transaction back to the wallet");
        self.deferred.push(Output::DoubleSpend {
            channel_id: id,
            tx: funding,
            feerate: self.feerate,
            descendants_fee: commitment_fee,
        });
    }

    /// The funding of closed channel `id`, double-spent while unconfirmed,
    /// confirmed first after all: our commitment 0 goes out to resolve it
    /// (the double spend can never confirm now).
    pub(super) fn funded_after_all(&mut self, id: ChannelId) {
        let Some(Phase::Closed(c)) = self.entries.get_mut(&id).map(|e| &mut e.phase) else {
            return;
        };
        if c.withheld != super::record::Withheld::UntilFunded {
            return;
        }
        c.withheld = super::record::Withheld::No;
        let tx = c.tx.clone();
        tracing::warn!(channel = %id, "our funding confirmed before its double spend: broadcasting our commitment");
        self.touch(id);
        if let Some(tx) = tx {
            self.deferred.push(Output::Broadcast { tx });
        }
    }

    /// The wallet's answer to [`Output::DoubleSpend`]: kept with the closed
    /// channel and broadcast until it (or the funding, after all) confirms.
    pub(in crate::core) fn on_double_spent(
        &mut self,
        id: ChannelId,
        result: Result<Transaction, String>,
    ) {
        match result {
            Ok(tx) => {
                if !matches!(
                    self.entries.get(&id).map(|e| &e.phase),
                    Some(Phase::Closed(_))
                ) {
                    return;
                }
                let feerate = Some(self.feerate);
                self.keep_and_broadcast(id, tx, feerate);
            }
            Err(e) => {
                tracing::error!(channel = %id, error = %e, "cannot double-spend our funding transaction")
            }
        }
    }
}
