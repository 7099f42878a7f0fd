//! Payments without an invoice (bLIP 3 "keysend"): the payer picks the
//! preimage and sends it to the payee in its onion payload (TLV
//! 5482373484). We send them to a channel peer and receive them: the
//! preimage is stored (with the HTLC it settles) before the fulfil goes
//! out, so that the HTLC can be claimed on chain with it.

use beongae_wire::{ChannelId, Msat, NodeId, PaymentHash, Preimage, Reader, Writer};
use bitcoin::secp256k1::SecretKey;

use super::record::{OutgoingRecord, OutgoingStatus, RecordError, NS_PAYMENTS};
use super::{Channels, Phase};
use crate::core::{CommandId, Event, Failure, FailureKind, Reply};

/// Blocks a keysend HTLC must leave before its expiry at the payee (what
/// an invoice's `min_final_cltv_expiry_delta` would say; LND's keysend
/// uses 40).
pub const KEYSEND_FINAL_CLTV_DELTA: u32 = 40;

/// A keysend payment we received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysendRecord {
    /// The preimage the payer sent.
    pub preimage: Preimage,
    /// The amount received.
    pub amount: Msat,
    /// The HTLC it settled.
    pub settled_by: (ChannelId, u64),
    /// When it was received (UNIX seconds; none for records of version 1,
    /// which did not keep it).
    pub received: Option<u64>,
}

/// Version 2 appends the time received.
const KEYSEND_VERSION: u8 = 2;

impl KeysendRecord {
    /// Bytes for the store.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.write_u8(KEYSEND_VERSION);
        w.write_bytes(&self.preimage.0);
        w.write_u64(self.amount.to_msat());
        w.write_bytes(&self.settled_by.0 .0);
        w.write_u64(self.settled_by.1);
        w.write_u64(self.received.unwrap_or(0));
        w.into_vec()
    }

    /// A record from the store.
    pub fn decode(bytes: &[u8]) -> Result<KeysendRecord, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.read_u8()?;
        if version != 1 && version != KEYSEND_VERSION {
            return Err(RecordError::Corrupt("keysend version".into()));
        }
        let rec = KeysendRecord {
            preimage: Preimage(r.read_array()?),
            amount: Msat::from_msat(r.read_u64()?),
            settled_by: (ChannelId(r.read_array()?), r.read_u64()?),
            received: if version >= 2 {
                Some(r.read_u64()?).filter(|t| *t != 0)
            } else {
                None
            },
        };
        r.finish()?;
        Ok(rec)
    }
}

impl Channels {
    /// `keysend`: pays `amount` to channel peer `node` without an invoice,
    /// with `preimage` (chosen by the caller, at random) in its onion.
    pub(in crate::core) fn keysend(
        &mut self,
        node: NodeId,
        amount: Msat,
        preimage: Preimage,
        session_key: SecretKey,
        command: CommandId,
    ) {
        if let Err(why) = self.try_keysend(node, amount, preimage, session_key, command) {
            self.reply(Some(command), Reply::Failed(why));
        }
    }

    fn try_keysend(
        &mut self,
        node: NodeId,
        amount: Msat,
        preimage: Preimage,
        session_key: SecretKey,
        command: CommandId,
    ) -> Result<(), Failure> {
        let hash = preimage.payment_hash();
        if self.outgoing.contains_key(&hash) {
            return Err(Failure {
                kind: FailureKind::DuplicatePayment,
                message: "a payment with this preimage exists".into(),
            });
        }
        if self.tip > self.height {
            return Err(self.not_synced());
        }
        let no_route = |why: String| Failure {
            kind: FailureKind::NoRoute,
            message: why,
        };
        let channel = self
            .entries
            .iter()
            .find(|(_, e)| {
                e.peer == node
                    && e.live
                    && matches!(e.phase, Phase::Normal { scid, .. } if self.funding_usable(scid))
            })
            .map(|(id, _)| *id)
            .ok_or_else(|| {
                no_route(format!(
                    "no active channel with {node} (keysend goes to a channel peer)"
                ))
            })?;
        let p = crate::payments::keysend_direct(
            &self.secp,
            &session_key,
            node,
            amount,
            preimage,
            self.height + KEYSEND_FINAL_CLTV_DELTA + crate::payments::CLTV_SAFETY_BLOCKS,
        )
        .map_err(|e| Failure {
            kind: FailureKind::Refused,
            message: e.to_string(),
        })?;
        let Some(entry) = self.entries.get_mut(&channel) else {
            return Err(no_route("the channel is gone".into()));
        };
        let Phase::Normal { chan, .. } = &mut entry.phase else {
            return Err(no_route("the channel is not open".into()));
        };
        let add = chan
            .send_add(p.amount, hash, p.cltv_expiry, p.onion.clone())
            .map_err(|e| no_route(format!("the channel cannot carry the payment: {e}")))?;
        let rec = OutgoingRecord {
            payment_hash: hash,
            amount: p.amount,
            channel_id: channel,
            htlc_id: add.id,
            shared_secrets: p.shared_secrets,
            status: OutgoingStatus::Pending,
            delivered: p.amount,
            attempts: 1,
            route: vec![node],
            created: u64::from(self.now_secs()),
        };
        self.batch
            .put(NS_PAYMENTS, super::pay::key(b'o', &hash), rec.encode());
        self.by_htlc.insert((channel, add.id), hash);
        self.outgoing.insert(hash, rec);
        self.waiting.insert(hash, command);
        self.send(node, add);
        self.touch(channel);
        Ok(())
    }

    /// A keysend HTLC passed every check: its preimage is stored with it,
    /// then it is fulfilled (not live: after the next reestablish, by
    /// `fulfill_paid`).
    pub(super) fn settle_keysend(
        &mut self,
        hash: PaymentHash,
        preimage: Preimage,
        channel: ChannelId,
        htlc: u64,
        amount: Msat,
    ) {
        if self.keysends.contains_key(&hash) {
            return; // refused before (`on_incoming`): paid already
        }
        let rec = KeysendRecord {
            preimage,
            amount,
            settled_by: (channel, htlc),
            received: Some(u64::from(self.now_secs())),
        };
        self.batch
            .put(NS_PAYMENTS, super::pay::key(b'k', &hash), rec.encode());
        self.keysends.insert(hash, rec);
        self.fulfil_incoming(channel, htlc, preimage);
        self.event(Event::PaymentReceived {
            payment_hash: hash,
            amount,
        });
    }

    /// The preimage of keysend HTLC `htlc` on `channel`, if one settled.
    pub(super) fn keysend_preimage(&self, channel: ChannelId, htlc: u64) -> Option<Preimage> {
        self.keysends
            .values()
            .find(|r| r.settled_by == (channel, htlc))
            .map(|r| r.preimage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keysend_records_round_trip() {
        let rec = KeysendRecord {
            preimage: Preimage([3; 32]),
            amount: Msat::from_msat(12_345),
            settled_by: (ChannelId([4; 32]), 7),
            received: Some(1_700_000_000),
        };
        let bytes = rec.encode();
        assert_eq!(bytes.len(), 1 + 32 + 8 + 32 + 8 + 8);
        assert_eq!(KeysendRecord::decode(&bytes).unwrap(), rec);
        assert!(KeysendRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        // Version 1 (no time) still reads, with the time unknown.
        let mut v1 = bytes[..bytes.len() - 8].to_vec();
        v1[0] = 1;
        assert_eq!(
            KeysendRecord::decode(&v1).unwrap(),
            KeysendRecord {
                received: None,
                ..rec
            }
        );
    }
}
