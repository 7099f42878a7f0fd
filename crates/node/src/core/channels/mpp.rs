//! Receiving multi-part payments (BOLT 4 `basic_mpp`): the HTLCs of one
//! payment (same `payment_hash`, `payment_secret` and `total_msat`) are
//! held until their sum reaches `total_msat`, then all are fulfilled; if
//! the set is not complete within [`MPP_TIMEOUT`], all fail with
//! `mpp_timeout`.
//!
//! Each held part is stored (`h` records in `record::NS_PAYMENTS`) with
//! the secret its failure needs, so that a restart neither forgets nor
//! leaves it hanging; each part of a completed set is stored as settled
//! (`p` records) before its fulfil goes out, so that it can be claimed on
//! chain with the invoice's preimage.

use std::time::Duration;

use beongae_onion::{build_error_packet, FailureMessage, SharedSecret};
use beongae_wire::{ChannelId, Msat, PaymentHash, Reader, Writer};

use super::record::{RecordError, NS_PAYMENTS};
use super::Channels;
use crate::core::Event;

/// BOLT 4: "SHOULD wait for at least 60 seconds after the initial HTLC"
/// before failing an incomplete set.
pub const MPP_TIMEOUT: Duration = Duration::from_secs(60);

/// One held part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::core) struct HeldPart {
    pub(super) channel: ChannelId,
    pub(super) htlc: u64,
    pub(super) amount: Msat,
    pub(super) total: Msat,
    pub(super) shared_secret: [u8; 32],
    /// The HTLC's `cltv_expiry` (`u32::MAX`: stored before it was kept).
    pub(super) cltv_expiry: u32,
    /// When the set's wait started in this process (set at the first tick
    /// after a restart).
    pub(super) since: Option<Duration>,
}

const HELD_VERSION: u8 = 2;

/// The key of a held (`h`) or settled (`p`) part.
pub(super) fn part_key(kind: u8, hash: &PaymentHash, channel: ChannelId, htlc: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(73);
    k.push(kind);
    k.extend_from_slice(&hash.0);
    k.extend_from_slice(&channel.0);
    k.extend_from_slice(&htlc.to_be_bytes());
    k
}

/// `(payment_hash, channel, htlc)` of a part key.
pub(super) fn read_part_key(k: &[u8]) -> Result<(PaymentHash, ChannelId, u64), RecordError> {
    let bad = || RecordError::Corrupt("payment part key".into());
    if k.len() != 73 {
        return Err(bad());
    }
    Ok((
        PaymentHash(k[1..33].try_into().map_err(|_| bad())?),
        ChannelId(k[33..65].try_into().map_err(|_| bad())?),
        u64::from_be_bytes(k[65..73].try_into().map_err(|_| bad())?),
    ))
}

impl HeldPart {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_u8(HELD_VERSION);
        w.write_u64(self.amount.to_msat());
        w.write_u64(self.total.to_msat());
        w.write_bytes(&self.shared_secret);
        w.write_u32(self.cltv_expiry);
        w.into_vec()
    }

    pub(super) fn decode(
        channel: ChannelId,
        htlc: u64,
        bytes: &[u8],
    ) -> Result<HeldPart, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.read_u8()?;
        if !(1..=HELD_VERSION).contains(&version) {
            return Err(RecordError::Corrupt("held part version".into()));
        }
        let p = HeldPart {
            channel,
            htlc,
            amount: Msat::from_msat(r.read_u64()?),
            total: Msat::from_msat(r.read_u64()?),
            shared_secret: r.read_array()?,
            cltv_expiry: if version >= 2 {
                r.read_u32()?
            } else {
                u32::MAX
            },
            since: None,
        };
        r.finish()?;
        Ok(p)
    }
}

impl Channels {
    /// A part of a multi-part payment of ours passed every check: held
    /// (stored) until the set is complete, then every part is fulfilled.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn hold_part(
        &mut self,
        hash: PaymentHash,
        channel: ChannelId,
        htlc: u64,
        amount: Msat,
        total: Msat,
        cltv_expiry: u32,
        shared_secret: SharedSecret,
    ) {
        // BOLT 4: "if the total_msat is not the same for all HTLCs in the
        // set": fail it.
        if self
            .held
            .get(&hash)
            .and_then(|s| s.first())
            .is_some_and(|p| p.total != total)
        {
            let failure = FailureMessage::IncorrectOrUnknownPaymentDetails {
                htlc_msat: amount,
                height: self.height,
            };
            if let Ok(reason) = build_error_packet(&shared_secret, &failure) {
                self.fail_held_htlc(channel, htlc, reason);
            }
            return;
        }
        let part = HeldPart {
            channel,
            htlc,
            amount,
            total,
            shared_secret: shared_secret.0,
            cltv_expiry,
            since: Some(self.now),
        };
        self.batch.put(
            NS_PAYMENTS,
            part_key(b'h', &hash, channel, htlc),
            part.encode(),
        );
        let set = self.held.entry(hash).or_default();
        set.push(part);
        // Only parts we can still claim in time count (a part held across
        // a long downtime may be past its deadline).
        let deadline = self.height + super::chain::FULFILL_DEADLINE_BLOCKS;
        let sum: u64 = set
            .iter()
            .filter(|p| p.cltv_expiry > deadline)
            .map(|p| p.amount.to_msat())
            .sum();
        tracing::info!(%hash, parts = set.len(), sum, total = total.to_msat(), "holding a part of a payment");
        if sum >= total.to_msat() {
            self.settle_parts(hash);
        }
    }

    /// The set of payment `hash` is complete: the invoice is paid, each
    /// part stored as settled and fulfilled (BOLT 4: "MUST fulfill all
    /// HTLCs in the payment set").
    fn settle_parts(&mut self, hash: PaymentHash) {
        let Some(set) = self.held.remove(&hash) else {
            return;
        };
        let Some(rec) = self.invoices.get_mut(&hash) else {
            return;
        };
        let sum = Msat::from_msat(set.iter().map(|p| p.amount.to_msat()).sum());
        rec.received = Some(sum);
        rec.settled_by = set.first().map(|p| (p.channel, p.htlc));
        let index = rec.index;
        let encoded = rec.encode();
        self.batch
            .put(NS_PAYMENTS, super::pay::key(b'i', &hash), encoded);
        let preimage = self.preimage(index);
        for p in &set {
            self.batch
                .delete(NS_PAYMENTS, part_key(b'h', &hash, p.channel, p.htlc));
            self.batch.put(
                NS_PAYMENTS,
                part_key(b'p', &hash, p.channel, p.htlc),
                Vec::new(),
            );
            self.settled_parts.insert((p.channel, p.htlc), hash);
        }
        for p in &set {
            self.fulfil_incoming(p.channel, p.htlc, preimage);
        }
        self.event(Event::PaymentReceived {
            payment_hash: hash,
            amount: sum,
        });
    }

    /// Sets not complete [`MPP_TIMEOUT`] after their first part arrived
    /// (in this process) fail, every part with `mpp_timeout` (BOLT 4); a
    /// part whose channel is not live now is failed at a later tick.
    pub(in crate::core) fn expire_held(&mut self, now: Duration) {
        let mut due = Vec::new();
        for (hash, set) in self.held.iter_mut() {
            for p in set.iter_mut() {
                p.since.get_or_insert(now);
            }
            let start = set.iter().filter_map(|p| p.since).min().unwrap_or(now);
            // A part near its fulfilment deadline ends the wait too: the
            // set could no longer be claimed whole.
            let deadline = self.height + super::chain::FULFILL_DEADLINE_BLOCKS;
            if now.saturating_sub(start) >= MPP_TIMEOUT
                || set.iter().any(|p| p.cltv_expiry <= deadline)
            {
                due.push(*hash);
            }
        }
        for hash in due {
            let Some(set) = self.held.remove(&hash) else {
                continue;
            };
            tracing::info!(%hash, parts = set.len(), "a multi-part payment did not complete in time");
            let mut kept = Vec::new();
            for p in set {
                let reason =
                    build_error_packet(&SharedSecret(p.shared_secret), &FailureMessage::MppTimeout);
                let failed = reason
                    .map(|r| self.fail_held_htlc(p.channel, p.htlc, r))
                    .unwrap_or(false);
                if failed {
                    self.batch
                        .delete(NS_PAYMENTS, part_key(b'h', &hash, p.channel, p.htlc));
                } else {
                    kept.push(p);
                }
            }
            if !kept.is_empty() {
                self.held.insert(hash, kept);
            }
        }
    }

    /// `update_fail_htlc` for held HTLC `htlc` on `channel`, if the
    /// channel is live: whether it is done with.
    fn fail_held_htlc(&mut self, channel: ChannelId, htlc: u64, reason: Vec<u8>) -> bool {
        self.remove_incoming(channel, htlc, super::forward::Removal::Fail(reason))
    }

    /// The invoice preimage of part `htlc` on `channel` of a completed
    /// multi-part payment.
    pub(super) fn settled_part_preimage(
        &self,
        channel: ChannelId,
        htlc: u64,
    ) -> Option<beongae_wire::Preimage> {
        let hash = self.settled_parts.get(&(channel, htlc))?;
        self.invoices.get(hash).map(|r| self.preimage(r.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_parts_round_trip_and_older_ones_read() {
        let p = HeldPart {
            channel: ChannelId([1; 32]),
            htlc: 3,
            amount: Msat::from_msat(300_000),
            total: Msat::from_msat(1_000_000),
            shared_secret: [7; 32],
            cltv_expiry: 800_100,
            since: None,
        };
        let bytes = p.encode();
        assert_eq!(HeldPart::decode(p.channel, p.htlc, &bytes).unwrap(), p);
        assert!(HeldPart::decode(p.channel, p.htlc, &bytes[..bytes.len() - 1]).is_err());
        // Version 1: no expiry kept (never taken as past its deadline).
        let mut v1 = bytes[..bytes.len() - 4].to_vec();
        v1[0] = 1;
        let old = HeldPart::decode(p.channel, p.htlc, &v1).unwrap();
        assert_eq!(old.cltv_expiry, u32::MAX);
        let hash = PaymentHash([9; 32]);
        let k = part_key(b'h', &hash, p.channel, p.htlc);
        assert_eq!(read_part_key(&k).unwrap(), (hash, p.channel, p.htlc));
        assert!(read_part_key(&k[..72]).is_err());
    }
}
