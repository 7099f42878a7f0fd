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
    unseal, PersistError, FORMAT_VERSION,
};
use crate::revocation::{LocalSecrets, RemoteRevocations};
use crate::sign::{CommitmentSignatures, SigningKeys};

fn put_messages(w: &mut Writer, ms: &[Message]) -> Result<(), PersistError> {
    w.write_u32(u32::try_from(ms.len()).map_err(|_| PersistError::Invalid("message count"))?);
    for m in ms {
        let bytes = m.encode()?;
        w.write_u32(u32::try_from(bytes.len()).map_err(|_| PersistError::Invalid("message"))?);
        w.write_bytes(&bytes);
    }
    Ok(())
}

fn get_messages(r: &mut Reader<'_>) -> Result<Vec<Message>, PersistError> {
    let n = r.read_u32()?;
    (0..n)
        .map(|_| {
            let len = r.read_u32()? as usize;
            Ok(Message::decode(r.read_bytes(len)?)?)
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
        let mut w = Writer::new();
        w.write_u8(FORMAT_VERSION);
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
            w.write_bytes(&onion.0[..]);
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
        put_messages(&mut w, &t.proposed_updates)?;
        put_messages(&mut w, &t.signed_updates)?;
        let cs: Vec<Message> = t
            .commitment_signed
            .clone()
            .map(Message::CommitmentSigned)
            .into_iter()
            .collect();
        put_messages(&mut w, &cs)?;
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
        let mut r = Reader::new(unseal(bytes)?);
        r.read_u8()?; // the version, checked by `unseal`
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
            incoming.insert(
                id,
                OnionPacketBytes(Box::new(r.read_array::<ONION_PACKET_LEN>()?)),
            );
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
        let proposed_updates = get_messages(&mut r)?;
        let signed_updates = get_messages(&mut r)?;
        let commitment_signed = match get_messages(&mut r)?.pop() {
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
