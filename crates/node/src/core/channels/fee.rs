//! BOLT 2 §"Updating Fees: `update_fee`", as the funder of a channel
//! without anchors: "SHOULD send `update_fee` to ensure the current fee
//! rate is sufficient (by a significant margin) for timely processing of
//! the commitment transaction". Our commitments follow the estimate up at
//! once (our commitment may have to confirm in time when we go on chain,
//! and its HTLC transactions' fees are fixed by it), and down when it
//! falls below half of theirs (so that a lower fee does not sit in every
//! commitment). With anchors the commitment's fee is raised on chain by
//! child-pays-for-parent instead (ADR 0008), so it is left as negotiated.

use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::ChannelId;

use super::{Channels, Phase};

impl Channels {
    /// Sends `update_fee` on every live channel we fund without anchors
    /// whose commitment feerate is off the estimate.
    pub(super) fn update_fees(&mut self) {
        let ids: Vec<ChannelId> = self
            .entries
            .iter()
            .filter(|(_, e)| e.live && self.connected.contains_key(&e.peer))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.update_fee(id);
        }
    }

    /// [`Channels::update_fees`] for one channel.
    pub(super) fn update_fee(&mut self, id: ChannelId) {
        let estimate = self.feerate.0.max(FeeratePerKw::FLOOR.0);
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if !entry.live || !self.connected.contains_key(&entry.peer) {
            return;
        }
        let peer = entry.peer;
        let Phase::Normal { chan, closing, .. } = &mut entry.phase else {
            return;
        };
        if !chan.funded.we_are_funder
            || chan.funded.channel_type != ChannelType::StaticRemoteKey
            || closing.is_some()
            || chan.shutdown.local.is_some()
            || chan.shutdown.remote.is_some()
        {
            return;
        }
        let current = chan.commitments.local.feerate.0;
        let target = estimate.min(chan.max_feerate.0);
        if !(target > current || target.saturating_mul(2) < current) {
            return;
        }
        match chan.send_fee(FeeratePerKw(target)) {
            Ok(m) => {
                tracing::info!(channel = %id, from = current, to = target, "update_fee");
                self.send(peer, m);
                self.touch(id);
                self.sign_if_needed(id);
            }
            // Not affordable by our balance now: the next estimate tries
            // again.
            Err(e) => {
                tracing::warn!(channel = %id, to = target, error = %e, "cannot update the commitment feerate")
            }
        }
    }
}
