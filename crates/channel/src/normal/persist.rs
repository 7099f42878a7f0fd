//! [`NormalChannel`] to and from its stored record (see [`crate::persist`]).

use std::collections::BTreeMap;

use beongae_script::commitment::CommitmentNumber;
use beongae_script::shachain::SecretStore;
use beongae_wire::msgs::{Message, OnionPacketBytes, ONION_PACKET_LEN};
use beongae_wire::{ChannelId, Reader, Writer};

use super::{FailReason, NormalChannel, Retransmit, ShutdownScripts};
use crate::commitments::Commitments;
use crate::persist::{
    get_bool, get_funded, get_script, get_sig, put_bool, put_funded, put_script, put_sig, seal,
    unseal, PersistError, FORMAT_VERSION, ONIONS_APART_VERSION,
};
use crate::revocation::{LocalSecrets, RemoteRevocations};
use crate::sign::{CommitmentSignatures, SigningKeys};

/// Where the onion of an `update_add_htlc` starts in its encoding (BOLT 2:
/// type 2, `channel_id` 32, `id` 8, `amount_msat` 8, `payment_hash` 32,
/// `cltv_expiry` 4 bytes).
const ADD_ONION_AT: usize = 2 + 32 + 8 + 8 + 32 + 4;
/// Where its `id` is.
const ADD_ID_AT: usize = 2 + 32;
/// The message type of `update_add_htlc`.
const UPDATE_ADD_HTLC: [u8; 2] = 128u16.to_be_bytes();

/// The onion of one HTLC, kept apart from its channel's record (format
/// [`ONIONS_APART_VERSION`]): each is written once, when first stored, and
/// not again with every commitment while its HTLC is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OnionKey {
    /// Ours (an `update_add_htlc` we may send again) or the peer's (an
    /// HTLC not yet committed on both sides).
    pub offered: bool,
    /// The HTLC's `id`.
    pub id: u64,
}

/// Writes `ms`; with `apart`, the onion of each `update_add_htlc` is cut out
/// of its bytes and given to `onions` instead.
fn put_messages<'a>(
    w: &mut Writer,
    ms: &'a [Message],
    apart: Option<&mut Vec<(OnionKey, &'a OnionPacketBytes)>>,
) -> Result<(), PersistError> {
    w.write_u32(u32::try_from(ms.len()).map_err(|_| PersistError::Invalid("message count"))?);
    let mut apart = apart;
    for m in ms {
        let mut bytes = m.encode()?;
        if let (Some(onions), Message::UpdateAddHtlc(add)) = (apart.as_deref_mut(), m) {
            bytes.drain(ADD_ONION_AT..ADD_ONION_AT + ONION_PACKET_LEN);
            onions.push((
                OnionKey {
                    offered: true,
                    id: add.id,
                },
                &add.onion_routing_packet,
            ));
        }
        w.write_u32(u32::try_from(bytes.len()).map_err(|_| PersistError::Invalid("message"))?);
        w.write_bytes(&bytes);
    }
    Ok(())
}

/// Reads what [`put_messages`] wrote; with `apart`, each `update_add_htlc`
/// gets its onion back from it.
fn get_messages(
    r: &mut Reader<'_>,
    apart: Option<&BTreeMap<OnionKey, OnionPacketBytes>>,
) -> Result<Vec<Message>, PersistError> {
    let n = r.read_u32()?;
    (0..n)
        .map(|_| {
            let len = r.read_u32()? as usize;
            let bytes = r.read_bytes(len)?;
            match apart {
                Some(onions) if bytes.starts_with(&UPDATE_ADD_HTLC) => {
                    let id = bytes
                        .get(ADD_ID_AT..ADD_ID_AT + 8)
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map(u64::from_be_bytes)
                        .ok_or(PersistError::Invalid("update_add_htlc"))?;
                    let onion = onions
                        .get(&OnionKey { offered: true, id })
                        .ok_or(PersistError::Invalid("onion kept apart (missing)"))?;
                    let (head, tail) = bytes
                        .split_at_checked(ADD_ONION_AT)
                        .ok_or(PersistError::Invalid("update_add_htlc"))?;
                    let whole = [head, &onion.0[..], tail].concat();
                    Ok(Message::decode(&whole)?)
                }
                _ => Ok(Message::decode(bytes)?),
            }
        })
        .collect()
}

fn put_opt_script(w: &mut Writer, s: &Option<bitcoin::ScriptBuf>) -> Result<(), PersistError> {
    put_bool(w, s.is_some());
    if let Some(s) = s {
        put_script(w, s)?;
    }
    Ok(())
}

fn get_opt_script(r: &mut Reader<'_>) -> Result<Option<bitcoin::ScriptBuf>, PersistError> {
    Ok(if get_bool(r)? {
        Some(get_script(r)?)
    } else {
        None
    })
}

impl NormalChannel {
    /// The record to store: everything but our secrets.
    pub fn encode_state(&self) -> Result<Vec<u8>, PersistError> {
        self.encode(None)
    }

    /// The channel's record without the onions of its HTLCs in flight
    /// (format [`ONIONS_APART_VERSION`]), and those onions, for the owner to
    /// keep beside it in the same atomic write. An onion is 1,366 bytes
    /// and stays for as long as its HTLC is being added: with a hundred
    /// HTLCs in flight, the onions were most of every commit's bytes.
    /// [`NormalChannel::decode_state_apart`] reads it back.
    #[allow(clippy::type_complexity)]
    pub fn encode_state_apart(
        &self,
    ) -> Result<(Vec<u8>, Vec<(OnionKey, &OnionPacketBytes)>), PersistError> {
        let mut onions = Vec::new();
        let record = self.encode(Some(&mut onions))?;
        Ok((record, onions))
    }

    fn encode<'a>(
        &'a self,
        mut apart: Option<&mut Vec<(OnionKey, &'a OnionPacketBytes)>>,
    ) -> Result<Vec<u8>, PersistError> {
        let mut w = Writer::new();
        w.write_u8(if apart.is_some() {
            ONIONS_APART_VERSION
        } else {
            FORMAT_VERSION
        });
        w.write_bytes(&self.channel_id.0);
        put_funded(&mut w, &self.funded);
        // The peer's points and revealed secrets.
        let rem = &self.remote;
        w.write_u64(rem.current.get());
        w.write_point(&rem.current_point);
        w.write_point(&rem.next_point);
        let entries: Vec<_> = rem.secrets.entries().collect();
        w.write_u8(entries.len() as u8); // at most 49
        for (index, secret) in entries {
            w.write_u64(index);
            w.write_bytes(&secret);
        }
        self.commitments.write(&mut w)?;
        w.write_u64(self.local_number.get());
        put_sig(&mut w, &self.local_signatures.signature);
        w.write_u16(self.local_signatures.htlc_signatures.len() as u16); // at most 966
        for s in &self.local_signatures.htlc_signatures {
            put_sig(&mut w, s);
        }
        w.write_u32(self.incoming.len() as u32);
        for (id, onion) in &self.incoming {
            w.write_u64(*id);
            match apart.as_deref_mut() {
                Some(onions) => onions.push((
                    OnionKey {
                        offered: false,
                        id: *id,
                    },
                    onion,
                )),
                None => w.write_bytes(&onion.0[..]),
            }
        }
        w.write_u32(self.failures.len() as u32);
        for (id, reason) in &self.failures {
            w.write_u64(*id);
            match reason {
                FailReason::Reason(bytes) => {
                    w.write_u8(0);
                    w.write_u16_prefixed("reason", bytes)?;
                }
                FailReason::Malformed {
                    sha256_of_onion,
                    failure_code,
                } => {
                    w.write_u8(1);
                    w.write_bytes(sha256_of_onion);
                    w.write_u16(*failure_code);
                }
            }
        }
        w.write_u32(self.over_dust.len() as u32);
        for id in &self.over_dust {
            w.write_u64(*id);
        }
        let t = &self.retransmit;
        put_messages(&mut w, &t.proposed_updates, apart.as_deref_mut())?;
        put_messages(&mut w, &t.signed_updates, apart)?;
        let cs: Vec<Message> = t
            .commitment_signed
            .clone()
            .map(Message::CommitmentSigned)
            .into_iter()
            .collect();
        put_messages(&mut w, &cs, None)?;
        put_bool(&mut w, t.commit_before_revoke);
        put_opt_script(&mut w, &self.shutdown.local)?;
        put_opt_script(&mut w, &self.shutdown.remote)?;
        put_bool(&mut w, self.anysegwit);
        w.write_u32(self.max_feerate.0);
        Ok(seal(w.into_vec()))
    }

    /// A channel from its record and our secrets for it (derived again
    /// from the node's seed).
    pub fn decode_state(
        bytes: &[u8],
        signing: SigningKeys,
        local_secrets: LocalSecrets,
    ) -> Result<NormalChannel, PersistError> {
        Self::decode_state_apart(bytes, &BTreeMap::new(), signing, local_secrets)
    }

    /// A channel from its record, of either format, and the onions kept
    /// apart from it ([`NormalChannel::encode_state_apart`]). One the
    /// record names and `onions` lacks is an error: a store that lost it
    /// cannot settle that HTLC.
    pub fn decode_state_apart(
        bytes: &[u8],
        onions: &BTreeMap<OnionKey, OnionPacketBytes>,
        signing: SigningKeys,
        local_secrets: LocalSecrets,
    ) -> Result<NormalChannel, PersistError> {
        let mut r = Reader::new(unseal(bytes)?);
        // The version, checked by `unseal`.
        let apart = (r.read_u8()? == ONIONS_APART_VERSION).then_some(onions);
        let channel_id = ChannelId(r.read_array()?);
        let funded = get_funded(&mut r)?;
        let current = CommitmentNumber::new(r.read_u64()?)
            .ok_or(PersistError::Invalid("commitment number"))?;
        let current_point = r.read_point()?;
        let next_point = r.read_point()?;
        let n = r.read_u8()?;
        let entries = (0..n)
            .map(|_| Ok((r.read_u64()?, r.read_array::<32>()?)))
            .collect::<Result<Vec<_>, PersistError>>()?;
        let secrets = SecretStore::from_entries(entries)
            .map_err(|_| PersistError::Invalid("revocation secrets"))?;
        let commitments = Commitments::read(&mut r)?;
        let local_number = CommitmentNumber::new(r.read_u64()?)
            .ok_or(PersistError::Invalid("commitment number"))?;
        let signature = get_sig(&mut r)?;
        let n = r.read_u16()?;
        let htlc_signatures = (0..n).map(|_| get_sig(&mut r)).collect::<Result<_, _>>()?;
        let n = r.read_u32()?;
        let mut incoming = BTreeMap::new();
        for _ in 0..n {
            let id = r.read_u64()?;
            let onion = match apart {
                Some(onions) => onions
                    .get(&OnionKey { offered: false, id })
                    .cloned()
                    .ok_or(PersistError::Invalid("onion kept apart (missing)"))?,
                None => OnionPacketBytes(Box::new(r.read_array::<ONION_PACKET_LEN>()?)),
            };
            incoming.insert(id, onion);
        }
        let n = r.read_u32()?;
        let mut failures = BTreeMap::new();
        for _ in 0..n {
            let id = r.read_u64()?;
            let reason = match r.read_u8()? {
                0 => FailReason::Reason(r.read_u16_prefixed()?.to_vec()),
                1 => FailReason::Malformed {
                    sha256_of_onion: r.read_array()?,
                    failure_code: r.read_u16()?,
                },
                _ => return Err(PersistError::Invalid("failure kind")),
            };
            failures.insert(id, reason);
        }
        let n = r.read_u32()?;
        let over_dust = (0..n).map(|_| r.read_u64()).collect::<Result<_, _>>()?;
        let proposed_updates = get_messages(&mut r, apart)?;
        let signed_updates = get_messages(&mut r, apart)?;
        let commitment_signed = match get_messages(&mut r, None)?.pop() {
            None => None,
            Some(Message::CommitmentSigned(cs)) => Some(cs),
            Some(_) => return Err(PersistError::Invalid("retransmitted commitment_signed")),
        };
        let commit_before_revoke = get_bool(&mut r)?;
        let shutdown = ShutdownScripts {
            local: get_opt_script(&mut r)?,
            remote: get_opt_script(&mut r)?,
        };
        let anysegwit = get_bool(&mut r)?;
        let max_feerate = beongae_script::FeeratePerKw(r.read_u32()?);
        r.finish()?;
        Ok(NormalChannel {
            channel_id,
            funded,
            signing,
            local_secrets,
            remote: RemoteRevocations {
                current,
                current_point,
                next_point,
                secrets,
            },
            commitments,
            local_number,
            local_signatures: CommitmentSignatures {
                signature,
                htlc_signatures,
            },
            incoming,
            failures,
            over_dust,
            retransmit: Retransmit {
                proposed_updates,
                signed_updates,
                commitment_signed,
                commit_before_revoke,
            },
            shutdown,
            anysegwit,
            max_feerate,
        })
    }
}
