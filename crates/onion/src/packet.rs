//! BOLT 4 §"Packet Structure", §"Packet Construction" and §"Onion
//! Decryption": the 1366-byte Sphinx `onion_packet`.

use std::fmt;

use beongae_wire::codec::bigsize_len;
use beongae_wire::{Reader, Writer};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey, Signing, Verification};

use crate::crypto::{self, SharedSecret, MU, PAD, RHO};

/// Size of `hop_payloads` (BOLT 4 §"Packet Structure").
pub const HOP_PAYLOADS_LEN: usize = 1300;
/// Size of an encoded `onion_packet`: version, point, `hop_payloads`, HMAC.
pub const ONION_PACKET_LEN: usize = 1 + 33 + HOP_PAYLOADS_LEN + 32;
/// The only packet version this implementation speaks (BOLT 4 "_version 0_").
pub const ONION_VERSION: u8 = 0;
/// BOLT 4 §"Packet Structure": `length` values 0 and 1 are reserved, since
/// no `payload` can be shorter than 2 bytes.
pub const MIN_PAYLOAD_LEN: usize = 2;

/// Why an onion could not be built, decoded or peeled. The first three
/// peeling variants map to the BADONION failure codes (see
/// [`OnionError::failure`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OnionError {
    /// An encoded packet must be exactly 1366 bytes.
    #[error("onion packet is {0} bytes, expected 1366")]
    PacketLength(usize),
    /// BOLT 4 §"Onion Decryption": "if `version` is not 0: MUST abort"
    /// (`invalid_onion_version`).
    #[error("unknown onion version {0}")]
    InvalidVersion(u8),
    /// BOLT 4 §"Onion Decryption": "if `public_key` is not a valid pubkey:
    /// MUST abort" (`invalid_onion_key`).
    #[error("onion public key is not a valid point")]
    InvalidKey,
    /// BOLT 4 §"Onion Decryption": "If the computed HMAC and `hmac` differ:
    /// MUST abort" (`invalid_onion_hmac`).
    #[error("onion hmac does not match")]
    InvalidHmac,
    /// The hop payload's `bigsize` length prefix is malformed, below 2, or
    /// runs past the end of `hop_payloads` (BOLT 4 §"Onion Decryption").
    #[error("hop payload length is malformed or out of range")]
    InvalidPayloadLength,
    /// The route has no hops.
    #[error("route has no hops")]
    EmptyRoute,
    /// A payload to send is shorter than 2 bytes (lengths 0 and 1 are reserved).
    #[error("payload for hop {hop} is {len} bytes; payloads are at least 2 bytes")]
    PayloadTooShort {
        /// Index of the hop.
        hop: usize,
        /// Its payload length.
        len: usize,
    },
    /// The hop payloads with their length prefixes and HMACs exceed 1300 bytes.
    #[error("hop payloads need {needed} bytes, more than the 1300 available")]
    RouteTooLarge {
        /// Bytes needed.
        needed: usize,
    },
    /// A blinding factor or blinded key was not a valid scalar or point (a
    /// negligible-probability event).
    #[error("ephemeral key blinding failed")]
    Blinding,
}

/// BOLT 4 `onion_packet`. The `public_key` is kept as raw bytes so that an
/// invalid point decodes and is reported by [`peel`] as
/// [`OnionError::InvalidKey`], which the processing node must answer with
/// `invalid_onion_key`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OnionPacket {
    /// `version`
    pub version: u8,
    /// `public_key`: the compressed ephemeral key, possibly not a valid point.
    pub public_key: [u8; 33],
    /// `hop_payloads`
    pub hop_payloads: [u8; HOP_PAYLOADS_LEN],
    /// `hmac`
    pub hmac: [u8; 32],
}

impl fmt::Debug for OnionPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnionPacket")
            .field("version", &self.version)
            .field("public_key", &Hex(&self.public_key))
            .field("hmac", &Hex(&self.hmac))
            .finish_non_exhaustive()
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl OnionPacket {
    /// The 1366-byte wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    /// Appends the wire encoding to `w`.
    pub fn write(&self, w: &mut Writer) {
        w.write_u8(self.version);
        w.write_bytes(&self.public_key);
        w.write_bytes(&self.hop_payloads);
        w.write_bytes(&self.hmac);
    }

    /// Decodes exactly 1366 bytes. Version and key are checked by [`peel`],
    /// not here, so that each gets its own failure code.
    pub fn decode(bytes: &[u8]) -> Result<Self, OnionError> {
        if bytes.len() != ONION_PACKET_LEN {
            return Err(OnionError::PacketLength(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        Self::read(&mut r).map_err(|_| OnionError::PacketLength(bytes.len()))
    }

    /// Reads a packet from `r` (1366 bytes).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, beongae_wire::DecodeError> {
        Ok(OnionPacket {
            version: r.read_u8()?,
            public_key: r.read_array()?,
            hop_payloads: r.read_array()?,
            hmac: r.read_array()?,
        })
    }

    /// The ephemeral public key, if it is a valid point.
    pub fn ephemeral_key(&self) -> Result<PublicKey, OnionError> {
        PublicKey::from_slice(&self.public_key).map_err(|_| OnionError::InvalidKey)
    }

    /// `SHA256` of the encoded packet: the `sha256_of_onion` of the BADONION
    /// failure messages.
    pub fn sha256(&self) -> [u8; 32] {
        sha256::Hash::hash(&self.encode()).to_byte_array()
    }
}

/// One hop's share of a route, as the origin node computes it (BOLT 4
/// §"Packet Construction"): the ephemeral public key the hop will see and
/// the secret it shares with the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopKeys {
    /// `epk_k`, the ephemeral public key in the hop's incoming onion.
    pub ephemeral_key: PublicKey,
    /// `ss_k`.
    pub shared_secret: SharedSecret,
}

/// BOLT 4 §"Packet Construction": for each hop, ECDH of the current
/// ephemeral private key with the hop's key gives `ss_k`; the next
/// ephemeral private key is the current one times
/// `SHA256(epk_k || ss_k)`.
pub fn route_keys<C: Signing>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    hop_pubkeys: impl IntoIterator<Item = PublicKey>,
) -> Result<Vec<HopKeys>, OnionError> {
    let mut ephemeral_secret = *session_key;
    let mut keys = Vec::new();
    for hop in hop_pubkeys {
        let ephemeral_key = ephemeral_secret.public_key(secp);
        let shared_secret = SharedSecret::new(&hop, &ephemeral_secret);
        let factor =
            crypto::blinding_factor(&ephemeral_key, &shared_secret).ok_or(OnionError::Blinding)?;
        ephemeral_secret = ephemeral_secret
            .mul_tweak(&factor)
            .map_err(|_| OnionError::Blinding)?;
        keys.push(HopKeys {
            ephemeral_key,
            shared_secret,
        });
    }
    Ok(keys)
}

/// Bytes a payload takes in `hop_payloads`: its `bigsize` length, the
/// payload and the 32-byte HMAC (BOLT 4 `shift_size`).
fn shift_size(payload_len: usize) -> usize {
    bigsize_len(payload_len as u64) + payload_len + 32
}

/// BOLT 4 §"Filler Generation": the bytes each hop appends when it shifts
/// its `hop_payloads` left, as obfuscated by every hop before the last,
/// which the origin must place at the tail of the last hop's `hop_payloads`
/// for the HMACs to verify. Hop `i` turns the previous filler `F` into
/// `(F || zeros(shift_i)) XOR rho_i[1300 - |F| .. 1300 + shift_i]`.
fn filler(keys: &[HopKeys], shifts: &[usize]) -> Vec<u8> {
    let mut filler: Vec<u8> = Vec::new();
    let last = keys.len().saturating_sub(1);
    for (k, &shift) in keys.iter().zip(shifts).take(last) {
        let start = HOP_PAYLOADS_LEN - filler.len();
        filler.resize(filler.len() + shift, 0);
        let stream = crypto::stream(&k.shared_secret.key(RHO), HOP_PAYLOADS_LEN + shift);
        for (f, s) in filler.iter_mut().zip(&stream[start..]) {
            *f ^= s;
        }
    }
    filler
}

/// Builds the onion for `hops` (each a node key and its `payload`, the TLV
/// bytes without the length prefix), committing to `associated_data` (the
/// `payment_hash` for payments).
///
/// The initial `hop_payloads` are the ChaCha20 stream of the `pad` key of
/// `session_key` (BOLT 4 §"Packet Construction"), so the result is a pure
/// function of the arguments; `session_key` must be fresh randomness.
pub fn construct_onion<C: Signing, P: AsRef<[u8]>>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    hops: &[(PublicKey, P)],
    associated_data: &[u8],
) -> Result<OnionPacket, OnionError> {
    let pad_key = crypto::hmac_sha256(PAD, &[&session_key.secret_bytes()]);
    let mut padding = [0u8; HOP_PAYLOADS_LEN];
    crypto::xor_stream(&pad_key, &mut padding);
    construct_onion_with_padding(secp, session_key, hops, associated_data, padding)
}

/// [`construct_onion`] with the initial 1300 `hop_payloads` bytes given by
/// the caller instead of derived from the `pad` key.
pub fn construct_onion_with_padding<C: Signing, P: AsRef<[u8]>>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    hops: &[(PublicKey, P)],
    associated_data: &[u8],
    padding: [u8; HOP_PAYLOADS_LEN],
) -> Result<OnionPacket, OnionError> {
    if hops.is_empty() {
        return Err(OnionError::EmptyRoute);
    }
    let mut shifts = Vec::with_capacity(hops.len());
    for (hop, (_, payload)) in hops.iter().enumerate() {
        let len = payload.as_ref().len();
        if len < MIN_PAYLOAD_LEN {
            return Err(OnionError::PayloadTooShort { hop, len });
        }
        shifts.push(shift_size(len));
    }
    let needed = shifts
        .iter()
        .try_fold(0usize, |acc, s| acc.checked_add(*s))
        .unwrap_or(usize::MAX);
    if needed > HOP_PAYLOADS_LEN {
        return Err(OnionError::RouteTooLarge { needed });
    }

    let keys = route_keys(secp, session_key, hops.iter().map(|(pk, _)| *pk))?;
    let filler = filler(&keys, &shifts);

    // Built in reverse route order: the last hop's operations first.
    let mut mix = padding;
    let mut next_hmac = [0u8; 32];
    for (i, ((_, payload), (k, &shift))) in
        hops.iter().zip(keys.iter().zip(&shifts)).enumerate().rev()
    {
        let payload = payload.as_ref();
        // Right-shift by `shift_size`, dropping what falls off the end.
        mix.copy_within(..HOP_PAYLOADS_LEN - shift, shift);
        let mut w = Writer::new();
        w.write_bigsize(payload.len() as u64);
        w.write_bytes(payload);
        w.write_bytes(&next_hmac);
        mix[..shift].copy_from_slice(w.as_slice());
        crypto::xor_stream(&k.shared_secret.key(RHO), &mut mix);
        if i == hops.len() - 1 {
            mix[HOP_PAYLOADS_LEN - filler.len()..].copy_from_slice(&filler);
        }
        next_hmac = crypto::hmac_sha256(&k.shared_secret.key(MU), &[&mix, associated_data]);
    }

    Ok(OnionPacket {
        version: ONION_VERSION,
        public_key: keys[0].ephemeral_key.serialize(),
        hop_payloads: mix,
        hmac: next_hmac,
    })
}

/// What a node learns from its layer of the onion.
// `Forward` carries the 1366-byte next packet inline: a `Peeled` is built
// once per HTLC and moved straight to the caller, so a box buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peeled {
    /// A non-zero next HMAC: forward `next` to the peer named in `payload`.
    Forward {
        /// This hop's `payload` (TLV bytes, without the length prefix).
        payload: Vec<u8>,
        /// The onion for the next hop.
        next: OnionPacket,
        /// The secret shared with the origin, kept to wrap a returned error.
        shared_secret: SharedSecret,
    },
    /// An all-zero next HMAC: this node is the final destination.
    Final {
        /// This hop's `payload` (TLV bytes, without the length prefix).
        payload: Vec<u8>,
        /// The secret shared with the origin, kept to wrap a returned error.
        shared_secret: SharedSecret,
    },
}

impl Peeled {
    /// This hop's payload.
    pub fn payload(&self) -> &[u8] {
        match self {
            Peeled::Forward { payload, .. } | Peeled::Final { payload, .. } => payload,
        }
    }

    /// The secret shared with the origin.
    pub fn shared_secret(&self) -> &SharedSecret {
        match self {
            Peeled::Forward { shared_secret, .. } | Peeled::Final { shared_secret, .. } => {
                shared_secret
            }
        }
    }
}

/// BOLT 4 §"Onion Decryption": checks version, key and HMAC (over
/// `hop_payloads || associated_data`, compared in constant time), then
/// removes this node's layer with `node_secret`.
pub fn peel<C: Verification>(
    secp: &Secp256k1<C>,
    node_secret: &SecretKey,
    onion: &OnionPacket,
    associated_data: &[u8],
) -> Result<Peeled, OnionError> {
    // "if `version` is not 0: MUST abort processing the packet and fail."
    if onion.version != ONION_VERSION {
        return Err(OnionError::InvalidVersion(onion.version));
    }
    // "if `public_key` is not a valid pubkey: MUST abort ... and fail."
    let public_key = onion.ephemeral_key()?;
    let ss = SharedSecret::new(&public_key, node_secret);

    // "Derive the HMAC as HMAC256(mu, hop_payloads || associated_data)."
    let hmac = crypto::hmac_sha256(&ss.key(MU), &[&onion.hop_payloads, associated_data]);
    if !crypto::constant_time_eq(&hmac, &onion.hmac) {
        return Err(OnionError::InvalidHmac);
    }

    // "Derive bytestream of twice the length of hop_payloads using rho";
    // XOR it with hop_payloads followed by 1300 zero bytes.
    let mut unwrapped = vec![0u8; 2 * HOP_PAYLOADS_LEN];
    unwrapped[..HOP_PAYLOADS_LEN].copy_from_slice(&onion.hop_payloads);
    crypto::xor_stream(&ss.key(RHO), &mut unwrapped);

    let mut r = Reader::new(&unwrapped);
    let length = r
        .read_bigsize()
        .map_err(|_| OnionError::InvalidPayloadLength)?;
    // "If the payload_length is less than two: MUST abort"; "If there are
    // fewer than payload_length bytes remaining: MUST abort".
    let length = usize::try_from(length)
        .ok()
        .filter(|l| *l >= MIN_PAYLOAD_LEN)
        .ok_or(OnionError::InvalidPayloadLength)?;
    let payload = r
        .read_bytes(length)
        .map_err(|_| OnionError::InvalidPayloadLength)?
        .to_vec();
    let next_hmac: [u8; 32] = r
        .read_array()
        .map_err(|_| OnionError::InvalidPayloadLength)?;
    // "If unwrapped_payloads is smaller than hop_payloads: MUST abort".
    if r.remaining() < HOP_PAYLOADS_LEN {
        return Err(OnionError::InvalidPayloadLength);
    }

    if next_hmac == [0u8; 32] {
        return Ok(Peeled::Final {
            payload,
            shared_secret: ss,
        });
    }

    // "public_key set to the incoming public_key multiplied by
    // blinding_tweak" where blinding_tweak = SHA256(public_key || ss).
    let factor = crypto::blinding_factor(&public_key, &ss).ok_or(OnionError::Blinding)?;
    let next_key = public_key
        .mul_tweak(secp, &factor)
        .map_err(|_| OnionError::Blinding)?;
    // "hop_payloads set to the unwrapped_payloads, truncated to the
    // incoming hop_payloads size."
    let hop_payloads: [u8; HOP_PAYLOADS_LEN] = r
        .read_array()
        .map_err(|_| OnionError::InvalidPayloadLength)?;
    Ok(Peeled::Forward {
        payload,
        next: OnionPacket {
            version: ONION_VERSION,
            public_key: next_key.serialize(),
            hop_payloads,
            hmac: next_hmac,
        },
        shared_secret: ss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(
        n: usize,
    ) -> (
        Secp256k1<bitcoin::secp256k1::All>,
        SecretKey,
        Vec<PublicKey>,
    ) {
        let secp = Secp256k1::new();
        let session = SecretKey::from_slice(&[0x41; 32]).unwrap();
        let hops = (1..=n)
            .map(|i| {
                SecretKey::from_slice(&[i as u8; 32])
                    .unwrap()
                    .public_key(&secp)
            })
            .collect();
        (secp, session, hops)
    }

    /// The filler exactly as BOLT 4 §"Filler Generation" writes it (fixed
    /// 65-byte hops, a 21-hop buffer, shifted and XORed at every hop).
    fn naive_filler(shared: &[SharedSecret]) -> Vec<u8> {
        const HOP: usize = 65;
        let size = 21 * HOP;
        let mut filler = vec![0u8; size];
        for ss in &shared[..shared.len() - 1] {
            filler.copy_within(HOP.., 0);
            filler[size - HOP..].fill(0);
            let stream = crypto::stream(&ss.key(RHO), size);
            filler.iter_mut().zip(&stream).for_each(|(f, s)| *f ^= s);
        }
        filler[(20 - shared.len() + 2) * HOP..].to_vec()
    }

    #[test]
    fn filler_matches_the_spec_algorithm() {
        for n in 1..=20 {
            let (secp, session, hops) = keys(n);
            let k = route_keys(&secp, &session, hops).unwrap();
            let shared: Vec<_> = k.iter().map(|k| k.shared_secret).collect();
            assert_eq!(filler(&k, &vec![65; n]), naive_filler(&shared), "{n} hops");
        }
    }

    #[test]
    fn construction_rejects_bad_routes() {
        let (secp, session, hops) = keys(2);
        let none: &[(PublicKey, Vec<u8>)] = &[];
        assert_eq!(
            construct_onion(&secp, &session, none, &[]),
            Err(OnionError::EmptyRoute)
        );
        assert_eq!(
            construct_onion(&secp, &session, &[(hops[0], vec![1])], &[]),
            Err(OnionError::PayloadTooShort { hop: 0, len: 1 })
        );
        // 1265 bytes fill the packet exactly (3 + 1265 + 32); one more does not fit.
        assert!(construct_onion(&secp, &session, &[(hops[0], vec![1; 1265])], &[]).is_ok());
        assert_eq!(
            construct_onion(&secp, &session, &[(hops[0], vec![1; 1266])], &[]),
            Err(OnionError::RouteTooLarge { needed: 1301 })
        );
        assert_eq!(
            construct_onion(
                &secp,
                &session,
                &[(hops[0], vec![1; 620]), (hops[1], vec![1; 620])],
                &[]
            ),
            Err(OnionError::RouteTooLarge { needed: 1310 })
        );
        assert_eq!(
            OnionPacket::decode(&[0; 1365]),
            Err(OnionError::PacketLength(1365))
        );
    }
}
