//! The binary form of a channel's state for the store (one versioned
//! record per channel, written before anything that depends on it is sent).
//!
//! Secrets are not in it: the signing keys and the commitment seed are
//! derived again from the node's seed when the channel is loaded. What the
//! peer revealed (its per-commitment secrets) and the preimages of HTLCs we
//! fulfilled are kept: penalties and on-chain claims need them.

use beongae_script::commitment::ObscuringFactor;
use beongae_script::keys::ChannelPublicKeys;
use beongae_script::{ChannelType, FeeratePerKw};
use beongae_wire::{DecodeError, EncodeError, Msat, PaymentHash, Preimage, Reader, Writer};
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::{Amount, OutPoint, ScriptBuf, Txid};

use crate::commitments::{CommitSpec, SpecHtlc, Update};
use crate::limits::{ChannelParams, CommitLimits};
use crate::sign::FundedChannel;

/// The format version written first in every record. Version 2 ends with
/// a checksum; version 1 (no checksum) is still read.
pub const FORMAT_VERSION: u8 = 2;

/// The format of an open channel's record whose HTLC onions are kept apart
/// ([`crate::normal::NormalChannel::encode_state_apart`]): version 2 with
/// the onions left out, each named by its [`crate::normal::OnionKey`].
pub const ONIONS_APART_VERSION: u8 = 3;

/// Bytes of SHA-256 of the rest of a record kept at its end.
const CHECKSUM_LEN: usize = 8;

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    use bitcoin::hashes::{sha256, Hash};
    let h = sha256::Hash::hash(body).to_byte_array();
    let mut c = [0; CHECKSUM_LEN];
    c.copy_from_slice(&h[..CHECKSUM_LEN]);
    c
}

/// Ends a record (version byte first) with its checksum, so that damage on
/// disk is refused on reading rather than read as another channel state.
pub(crate) fn seal(mut record: Vec<u8>) -> Vec<u8> {
    let c = checksum(&record);
    record.extend_from_slice(&c);
    record
}

/// The body of a sealed record (version byte first), once its version is
/// one this build reads and its checksum matches.
pub(crate) fn unseal(bytes: &[u8]) -> Result<&[u8], PersistError> {
    match bytes.first() {
        None => Err(PersistError::Decode(DecodeError::ShortRead { needed: 1 })),
        Some(1) => Ok(bytes),
        Some(&FORMAT_VERSION | &ONIONS_APART_VERSION) => {
            let split = bytes
                .len()
                .checked_sub(CHECKSUM_LEN)
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    PersistError::Decode(DecodeError::ShortRead {
                        needed: (CHECKSUM_LEN + 1).saturating_sub(bytes.len()),
                    })
                })?;
            let (body, sum) = bytes.split_at(split);
            if checksum(body) != sum {
                return Err(PersistError::Checksum);
            }
            Ok(body)
        }
        Some(v) => Err(PersistError::Version(*v)),
    }
}

/// Why a stored channel could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Truncated or malformed bytes.
    #[error("stored channel is corrupt: {0}")]
    Decode(#[from] DecodeError),
    /// Written by a newer Beongae.
    #[error("stored channel format {0} is newer than this build reads ({ONIONS_APART_VERSION}); upgrade beongae")]
    Version(u8),
    /// The checksum does not match: the record was damaged.
    #[error("stored channel is corrupt: checksum mismatch")]
    Checksum,
    /// A value out of its range.
    #[error("stored channel is corrupt: invalid {0}")]
    Invalid(&'static str),
    /// A message too large to store.
    #[error("cannot store channel: {0}")]
    Encode(#[from] EncodeError),
}

pub(crate) fn put_bool(w: &mut Writer, v: bool) {
    w.write_u8(u8::from(v));
}

pub(crate) fn get_bool(r: &mut Reader<'_>) -> Result<bool, PersistError> {
    match r.read_u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(PersistError::Invalid("boolean")),
    }
}

pub(crate) fn put_sig(w: &mut Writer, s: &Signature) {
    w.write_bytes(&s.serialize_compact());
}

pub(crate) fn get_sig(r: &mut Reader<'_>) -> Result<Signature, PersistError> {
    Signature::from_compact(&r.read_array::<64>()?).map_err(|_| PersistError::Invalid("signature"))
}

pub(crate) fn put_script(w: &mut Writer, s: &ScriptBuf) -> Result<(), PersistError> {
    Ok(w.write_u16_prefixed("script", s.as_bytes())?)
}

pub(crate) fn get_script(r: &mut Reader<'_>) -> Result<ScriptBuf, PersistError> {
    Ok(ScriptBuf::from_bytes(r.read_u16_prefixed()?.to_vec()))
}

fn put_keys(w: &mut Writer, k: &ChannelPublicKeys) {
    for p in [
        &k.funding_pubkey,
        &k.revocation_basepoint,
        &k.payment_basepoint,
        &k.delayed_payment_basepoint,
        &k.htlc_basepoint,
    ] {
        w.write_point(p);
    }
}

fn get_keys(r: &mut Reader<'_>) -> Result<ChannelPublicKeys, PersistError> {
    Ok(ChannelPublicKeys {
        funding_pubkey: r.read_point()?,
        revocation_basepoint: r.read_point()?,
        payment_basepoint: r.read_point()?,
        delayed_payment_basepoint: r.read_point()?,
        htlc_basepoint: r.read_point()?,
    })
}

fn put_channel_type(w: &mut Writer, t: ChannelType) {
    w.write_u8(match t {
        ChannelType::StaticRemoteKey => 0,
        ChannelType::Anchors => 1,
    });
}

fn get_channel_type(r: &mut Reader<'_>) -> Result<ChannelType, PersistError> {
    match r.read_u8()? {
        0 => Ok(ChannelType::StaticRemoteKey),
        1 => Ok(ChannelType::Anchors),
        _ => Err(PersistError::Invalid("channel type")),
    }
}

pub(crate) fn put_funded(w: &mut Writer, f: &FundedChannel) {
    put_channel_type(w, f.channel_type);
    w.write_bytes(&f.funding_outpoint.txid.to_byte_array());
    w.write_u32(f.funding_outpoint.vout);
    w.write_u64(f.funding_amount.to_sat());
    w.write_u64(f.obscuring_factor.get());
    put_bool(w, f.we_are_funder);
    put_keys(w, &f.local_keys);
    put_keys(w, &f.remote_keys);
    w.write_u16(f.local_to_self_delay);
    w.write_u16(f.remote_to_self_delay);
    w.write_u64(f.local_dust_limit.to_sat());
    w.write_u64(f.remote_dust_limit.to_sat());
}

pub(crate) fn get_funded(r: &mut Reader<'_>) -> Result<FundedChannel, PersistError> {
    Ok(FundedChannel {
        channel_type: get_channel_type(r)?,
        funding_outpoint: OutPoint {
            txid: Txid::from_byte_array(r.read_array()?),
            vout: r.read_u32()?,
        },
        funding_amount: Amount::from_sat(r.read_u64()?),
        obscuring_factor: ObscuringFactor::from_u64(r.read_u64()?),
        we_are_funder: get_bool(r)?,
        local_keys: get_keys(r)?,
        remote_keys: get_keys(r)?,
        local_to_self_delay: r.read_u16()?,
        remote_to_self_delay: r.read_u16()?,
        local_dust_limit: Amount::from_sat(r.read_u64()?),
        remote_dust_limit: Amount::from_sat(r.read_u64()?),
    })
}

fn put_limits(w: &mut Writer, l: &CommitLimits) {
    w.write_u64(l.dust_limit.to_sat());
    w.write_u64(l.channel_reserve.to_sat());
    w.write_u64(l.htlc_minimum.to_msat());
    w.write_u64(l.max_htlc_value_in_flight.to_msat());
    w.write_u16(l.max_accepted_htlcs);
}

fn get_limits(r: &mut Reader<'_>) -> Result<CommitLimits, PersistError> {
    Ok(CommitLimits {
        dust_limit: Amount::from_sat(r.read_u64()?),
        channel_reserve: Amount::from_sat(r.read_u64()?),
        htlc_minimum: Msat::from_msat(r.read_u64()?),
        max_htlc_value_in_flight: Msat::from_msat(r.read_u64()?),
        max_accepted_htlcs: r.read_u16()?,
    })
}

pub(crate) fn put_params(w: &mut Writer, p: &ChannelParams) {
    put_channel_type(w, p.channel_type);
    put_bool(w, p.we_are_funder);
    put_limits(w, &p.local);
    put_limits(w, &p.remote);
    w.write_u64(p.max_dust_htlc_exposure.to_msat());
}

pub(crate) fn get_params(r: &mut Reader<'_>) -> Result<ChannelParams, PersistError> {
    Ok(ChannelParams {
        channel_type: get_channel_type(r)?,
        we_are_funder: get_bool(r)?,
        local: get_limits(r)?,
        remote: get_limits(r)?,
        max_dust_htlc_exposure: Msat::from_msat(r.read_u64()?),
    })
}

pub(crate) fn put_spec(w: &mut Writer, s: &CommitSpec) -> Result<(), PersistError> {
    w.write_u64(s.to_local.to_msat());
    w.write_u64(s.to_remote.to_msat());
    w.write_u32(s.feerate.0);
    let n = u16::try_from(s.htlcs.len()).map_err(|_| PersistError::Invalid("htlc count"))?;
    w.write_u16(n);
    for h in &s.htlcs {
        put_bool(w, h.offered);
        w.write_u64(h.id);
        w.write_u64(h.amount.to_msat());
        w.write_bytes(&h.payment_hash.0);
        w.write_u32(h.cltv_expiry);
    }
    Ok(())
}

pub(crate) fn get_spec(r: &mut Reader<'_>) -> Result<CommitSpec, PersistError> {
    let to_local = Msat::from_msat(r.read_u64()?);
    let to_remote = Msat::from_msat(r.read_u64()?);
    let feerate = FeeratePerKw(r.read_u32()?);
    let n = r.read_u16()?;
    let htlcs = (0..n)
        .map(|_| {
            Ok(SpecHtlc {
                offered: get_bool(r)?,
                id: r.read_u64()?,
                amount: Msat::from_msat(r.read_u64()?),
                payment_hash: PaymentHash(r.read_array()?),
                cltv_expiry: r.read_u32()?,
            })
        })
        .collect::<Result<_, PersistError>>()?;
    Ok(CommitSpec {
        htlcs,
        to_local,
        to_remote,
        feerate,
    })
}

pub(crate) fn put_updates(w: &mut Writer, updates: &[Update]) -> Result<(), PersistError> {
    let n = u32::try_from(updates.len()).map_err(|_| PersistError::Invalid("update count"))?;
    w.write_u32(n);
    for u in updates {
        match u {
            Update::Add {
                id,
                amount,
                payment_hash,
                cltv_expiry,
            } => {
                w.write_u8(0);
                w.write_u64(*id);
                w.write_u64(amount.to_msat());
                w.write_bytes(&payment_hash.0);
                w.write_u32(*cltv_expiry);
            }
            Update::Fulfill { id, preimage } => {
                w.write_u8(1);
                w.write_u64(*id);
                w.write_bytes(&preimage.0);
            }
            Update::Fail { id } => {
                w.write_u8(2);
                w.write_u64(*id);
            }
            Update::Fee { feerate } => {
                w.write_u8(3);
                w.write_u32(feerate.0);
            }
        }
    }
    Ok(())
}

pub(crate) fn get_updates(r: &mut Reader<'_>) -> Result<Vec<Update>, PersistError> {
    let n = r.read_u32()?;
    (0..n)
        .map(|_| {
            Ok(match r.read_u8()? {
                0 => Update::Add {
                    id: r.read_u64()?,
                    amount: Msat::from_msat(r.read_u64()?),
                    payment_hash: PaymentHash(r.read_array()?),
                    cltv_expiry: r.read_u32()?,
                },
                1 => Update::Fulfill {
                    id: r.read_u64()?,
                    preimage: Preimage(r.read_array()?),
                },
                2 => Update::Fail { id: r.read_u64()? },
                3 => Update::Fee {
                    feerate: FeeratePerKw(r.read_u32()?),
                },
                _ => return Err(PersistError::Invalid("update kind")),
            })
        })
        .collect()
}
