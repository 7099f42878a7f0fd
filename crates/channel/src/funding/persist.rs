//! [`Funding`] to and from its stored record (see [`crate::persist`]).
//!
//! The fundee stores the channel before it sends `funding_signed` and the
//! funder before it broadcasts the funding transaction (BOLT 2: from then on
//! the funds can be locked in the 2-of-2 at any moment).

use beongae_wire::{ChannelId, Reader, Writer};

use super::{Funding, LocalSetup};
use crate::commitments::Commitments;
use crate::open::PeerParams;
use crate::persist::{
    get_bool, get_funded, get_sig, put_bool, put_funded, put_sig, seal, unseal, PersistError,
    FORMAT_VERSION,
};
use crate::revocation::LocalSecrets;
use crate::sign::{CommitmentSignatures, SigningKeys};

impl Funding {
    /// The record to store: everything but our secrets.
    pub fn encode_state(&self) -> Result<Vec<u8>, PersistError> {
        let mut w = Writer::new();
        w.write_u8(FORMAT_VERSION);
        w.write_bytes(&self.channel_id.0);
        put_funded(&mut w, &self.funded);
        self.commitments.write(&mut w)?;
        put_bool(&mut w, self.local_signatures.is_some());
        if let Some(s) = &self.local_signatures {
            // Commitment 0 carries no HTLC, so no HTLC signatures.
            put_sig(&mut w, &s.signature);
        }
        w.write_point(&self.peer.first_per_commitment_point);
        put_bool(&mut w, self.peer.upfront_shutdown_script.is_some());
        if let Some(s) = &self.peer.upfront_shutdown_script {
            w.write_u16_prefixed("upfront_shutdown_script", s)?;
        }
        Ok(seal(w.into_vec()))
    }

    /// A funding channel from its record and our secrets for it (derived
    /// again from the node's seed).
    pub fn decode_state(
        bytes: &[u8],
        signing: SigningKeys,
        secrets: LocalSecrets,
    ) -> Result<Funding, PersistError> {
        let mut r = Reader::new(unseal(bytes)?);
        // The version, checked by `unseal`; an open channel's alone keeps
        // its onions apart.
        if r.read_u8()? == crate::persist::ONIONS_APART_VERSION {
            return Err(PersistError::Invalid("funding record format"));
        }
        let channel_id = ChannelId(r.read_array()?);
        let funded = get_funded(&mut r)?;
        let commitments = Commitments::read(&mut r)?;
        let local_signatures = if get_bool(&mut r)? {
            Some(CommitmentSignatures {
                signature: get_sig(&mut r)?,
                htlc_signatures: Vec::new(),
            })
        } else {
            None
        };
        let first_per_commitment_point = r.read_point()?;
        let upfront_shutdown_script = if get_bool(&mut r)? {
            Some(r.read_u16_prefixed()?.to_vec())
        } else {
            None
        };
        r.finish()?;
        let params = commitments.params;
        let local = LocalSetup {
            keys: funded.local_keys,
            signing,
            secrets,
            limits: params.local,
            to_self_delay: funded.remote_to_self_delay,
            max_dust_htlc_exposure: params.max_dust_htlc_exposure,
        };
        let remote = params.remote;
        let peer = PeerParams {
            dust_limit: remote.dust_limit,
            max_htlc_value_in_flight: remote.max_htlc_value_in_flight,
            channel_reserve: remote.channel_reserve,
            htlc_minimum: remote.htlc_minimum,
            to_self_delay: funded.local_to_self_delay,
            max_accepted_htlcs: remote.max_accepted_htlcs,
            keys: funded.remote_keys,
            first_per_commitment_point,
            upfront_shutdown_script,
        };
        Ok(Funding {
            channel_id,
            funded,
            local,
            peer,
            commitments,
            local_signatures,
        })
    }
}
