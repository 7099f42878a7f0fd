//! The onions of an open channel's HTLCs in flight, kept beside its record
//! (ADR 0012).
//!
//! An onion is 1,366 bytes and stays in the channel's state while its HTLC
//! is being added: ours until the peer revoked the commitment without our
//! `update_add_htlc` (we may have to send it again), the peer's until the
//! HTLC is committed on both sides. Kept inside the record, each was
//! rewritten with every commit meanwhile: with a hundred HTLCs in flight,
//! 90 % of the bytes a payment cost to store. Apart, each is written once,
//! in the same batch as the first record that names it, and deleted in the
//! batch of the first record that no longer does.
//!
//! Namespace [`NS_ONIONS`], key `channel_id` || 1 if ours (0: the peer's)
//! || HTLC `id` (8 bytes, big-endian), value the onion and 8 bytes of the
//! SHA-256 of key and onion: damage on disk, or an onion under another
//! key, is refused at start as a damaged channel record is, never read as
//! another onion. (The first build that kept onions apart wrote them
//! without the checksum; read.)
//!
//! [`Channels::onions`](super::Channels) changes when a batch is made, not
//! when it is committed: right because a node whose commit fails stops
//! (the runtime's `store_failed`) and starts again from the store.

use std::collections::BTreeMap;

use beongae_channel::normal::OnionKey;
use beongae_store::Batch;
use beongae_wire::msgs::{OnionPacketBytes, ONION_PACKET_LEN};
use beongae_wire::ChannelId;
use bitcoin::hashes::{sha256, Hash, HashEngine};

use super::record::RecordError;

/// Namespace of the onions kept apart from open channels' records.
pub const NS_ONIONS: &str = "onions";

/// The onions one channel has in the store.
pub type Kept = BTreeMap<OnionKey, OnionPacketBytes>;

/// The key of `k` of channel `channel` in [`NS_ONIONS`].
pub fn key(channel: ChannelId, k: OnionKey) -> Vec<u8> {
    let mut v = Vec::with_capacity(41);
    v.extend_from_slice(&channel.0);
    v.push(u8::from(k.offered));
    v.extend_from_slice(&k.id.to_be_bytes());
    v
}

/// Bytes of the checksum after an onion.
const CHECKSUM_LEN: usize = 8;

fn checksum(key: &[u8], onion: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut e = sha256::Hash::engine();
    e.input(key);
    e.input(onion);
    let h = sha256::Hash::from_engine(e).to_byte_array();
    let mut c = [0; CHECKSUM_LEN];
    c.copy_from_slice(&h[..CHECKSUM_LEN]);
    c
}

/// The value of `onion` under `key`: the onion, then its checksum.
fn value(key: &[u8], onion: &OnionPacketBytes) -> Vec<u8> {
    let mut v = Vec::with_capacity(ONION_PACKET_LEN + CHECKSUM_LEN);
    v.extend_from_slice(&onion.0[..]);
    v.extend_from_slice(&checksum(key, &onion.0[..]));
    v
}

/// The entries of [`NS_ONIONS`], by channel.
pub fn load(entries: &[(Vec<u8>, Vec<u8>)]) -> Result<BTreeMap<ChannelId, Kept>, RecordError> {
    let mut out: BTreeMap<ChannelId, Kept> = BTreeMap::new();
    for (k, v) in entries {
        let corrupt = || RecordError::Corrupt("onion key".into());
        if k.len() != 41 {
            return Err(corrupt());
        }
        let channel = ChannelId(k[..32].try_into().map_err(|_| corrupt())?);
        let offered = match k[32] {
            0 => false,
            1 => true,
            _ => return Err(corrupt()),
        };
        let id = u64::from_be_bytes(k[33..].try_into().map_err(|_| corrupt())?);
        let damaged = || {
            RecordError::Corrupt(format!(
                "the onion of HTLC {id} ({}) of channel {channel} is damaged",
                if offered { "ours" } else { "the peer's" }
            ))
        };
        // The first build that kept onions apart wrote them without a
        // checksum: still read.
        let onion = match v.len() {
            ONION_PACKET_LEN => v.as_slice(),
            n if n == ONION_PACKET_LEN + CHECKSUM_LEN => {
                let (onion, sum) = v.split_at(ONION_PACKET_LEN);
                if checksum(k, onion) != sum {
                    return Err(damaged());
                }
                onion
            }
            _ => return Err(damaged()),
        };
        let onion: [u8; ONION_PACKET_LEN] = onion.try_into().map_err(|_| damaged())?;
        out.entry(channel)
            .or_default()
            .insert(OnionKey { offered, id }, OnionPacketBytes(Box::new(onion)));
    }
    Ok(out)
}

/// Adds to `batch` what makes channel `channel`'s onions in the store
/// `now` (those its record being written names), from `kept` (what the
/// store holds), which it updates: puts for the new or changed (an HTLC id
/// reused after a disconnection carries another onion), deletes for those
/// gone.
pub(super) fn write(
    batch: &mut Batch,
    channel: ChannelId,
    kept: &mut Kept,
    now: &[(OnionKey, &OnionPacketBytes)],
) {
    let named: BTreeMap<OnionKey, &OnionPacketBytes> = now.iter().copied().collect();
    kept.retain(|k, _| {
        let stays = named.contains_key(k);
        if !stays {
            batch.delete(NS_ONIONS, key(channel, *k));
        }
        stays
    });
    for (k, onion) in named {
        if kept.get(&k) != Some(onion) {
            let key = key(channel, k);
            let value = value(&key, onion);
            batch.put(NS_ONIONS, key, value);
            kept.insert(k, onion.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beongae_store::{MemoryMap, Op};

    fn onion(tag: u8) -> OnionPacketBytes {
        OnionPacketBytes(Box::new([tag; ONION_PACKET_LEN]))
    }

    #[test]
    fn each_onion_is_written_once_and_deleted_when_gone() {
        let ch = ChannelId([7; 32]);
        let (a, b) = (
            OnionKey {
                offered: true,
                id: 4,
            },
            OnionKey {
                offered: false,
                id: 4,
            },
        );
        let (o1, o2, o3) = (onion(1), onion(2), onion(3));
        let mut kept = Kept::new();
        let mut store = MemoryMap::new();
        let mut step = |kept: &mut Kept, now: &[(OnionKey, &OnionPacketBytes)]| {
            let mut batch = Batch::new();
            write(&mut batch, ch, kept, now);
            batch.apply_to(&mut store);
            let on_disk: Vec<(Vec<u8>, Vec<u8>)> = store
                .iter()
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(
                &load(&on_disk).unwrap().remove(&ch).unwrap_or_default(),
                kept
            );
            batch.ops().to_vec()
        };
        let ops = step(&mut kept, &[(a, &o1), (b, &o2)]);
        assert_eq!(ops.len(), 2);
        assert_eq!(kept.len(), 2);
        // Unchanged: nothing written.
        assert_eq!(step(&mut kept, &[(a, &o1), (b, &o2)]), []);
        // Ours is gone; theirs stays.
        let ops = step(&mut kept, &[(b, &o2)]);
        assert_eq!(
            ops,
            [Op::Delete {
                namespace: NS_ONIONS.into(),
                key: key(ch, a)
            }]
        );
        // An id used again with another onion is written again.
        let ops = step(&mut kept, &[(b, &o3)]);
        assert_eq!(
            ops,
            [Op::Put {
                namespace: NS_ONIONS.into(),
                key: key(ch, b),
                value: value(&key(ch, b), &o3)
            }]
        );
        assert_eq!(key(ch, b).len(), 41);
        assert_eq!(key(ch, a)[32..], [1, 0, 0, 0, 0, 0, 0, 0, 4]);
    }

    /// An entry that does not read, a damaged onion, or an onion under
    /// another key than its own is refused, never read as another onion.
    #[test]
    fn entries_that_do_not_read_are_refused() {
        let id = |id| OnionKey { offered: true, id };
        let k = key(ChannelId([1; 32]), id(1));
        let v = value(&k, &onion(5));
        assert_eq!(v.len(), ONION_PACKET_LEN + 8);
        assert_eq!(
            load(&[(k.clone(), v.clone())]).unwrap()[&ChannelId([1; 32])][&id(1)],
            onion(5)
        );
        assert!(load(&[(k.clone(), vec![0; 10])]).is_err());
        assert!(load(&[(k.clone(), v[..ONION_PACKET_LEN + 7].to_vec())]).is_err());
        // Without a checksum, as the first build that kept onions apart
        // wrote them: read.
        assert_eq!(
            load(&[(k.clone(), v[..ONION_PACKET_LEN].to_vec())]).unwrap()[&ChannelId([1; 32])]
                [&id(1)],
            onion(5)
        );
        assert!(load(&[(k[..40].to_vec(), v.clone())]).is_err());
        for at in [0, 700, ONION_PACKET_LEN - 1, ONION_PACKET_LEN + 7] {
            let mut damaged = v.clone();
            damaged[at] ^= 1;
            assert_eq!(
                load(&[(k.clone(), damaged)]).unwrap_err(),
                RecordError::Corrupt(format!(
                    "the onion of HTLC 1 (ours) of channel {} is damaged",
                    ChannelId([1; 32])
                )),
                "{at}"
            );
        }
        // Another HTLC's slot.
        let other = key(ChannelId([1; 32]), id(2));
        assert!(load(&[(other, v.clone())]).is_err());
        let mut bad = k;
        bad[32] = 2;
        assert!(load(&[(bad, v)]).is_err());
    }
}
