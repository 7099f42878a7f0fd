//! BOLT 4 §"`payload` format": the TLV `payload` of each hop, and the
//! reader requirements for intermediate and final hops outside a blinded
//! route.

use beongae_wire::{DecodeError, Msat, Reader, ShortChannelId, TlvStream, Writer};

/// TLV type of `amt_to_forward`.
pub const AMT_TO_FORWARD: u64 = 2;
/// TLV type of `outgoing_cltv_value`.
pub const OUTGOING_CLTV_VALUE: u64 = 4;
/// TLV type of `short_channel_id`.
pub const SHORT_CHANNEL_ID: u64 = 6;
/// TLV type of `payment_data`.
pub const PAYMENT_DATA: u64 = 8;
/// TLV type of `payment_metadata`.
pub const PAYMENT_METADATA: u64 = 16;
/// bLIP 3 `keysend_preimage`: the payee's preimage, chosen by the payer.
pub const KEYSEND_PREIMAGE: u64 = 5_482_373_484;

/// Why a hop payload was rejected. A node answers all of these with
/// `invalid_onion_payload`; [`PayloadError::tlv_type`] gives the type to
/// report when the error concerns one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Not a valid TLV stream, a known record malformed, or an unknown even
    /// type (BOLT 1 §"Type-Length-Value Format").
    #[error("invalid hop payload tlv stream: {0}")]
    Decode(#[from] DecodeError),
    /// BOLT 4 reader: "MUST return an error if `amt_to_forward` or
    /// `outgoing_cltv_value` are not present", and for a non-final node
    /// "`short_channel_id` is not present".
    #[error("hop payload is missing required tlv type {0}")]
    Missing(u64),
}

impl PayloadError {
    /// The TLV type the error is about, if it is about one.
    pub fn tlv_type(&self) -> Option<u64> {
        match self {
            PayloadError::Missing(t) => Some(*t),
            PayloadError::Decode(DecodeError::UnknownEvenTlv(t)) => Some(*t),
            PayloadError::Decode(DecodeError::TlvNotIncreasing { found, .. }) => Some(*found),
            PayloadError::Decode(DecodeError::TlvLengthExceeds { typ, .. }) => Some(*typ),
            PayloadError::Decode(_) => None,
        }
    }
}

/// BOLT 4 `payment_data` (type 8): the invoice's `payment_secret` and the
/// total amount of a (possibly multi-part) payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentData {
    /// `payment_secret`
    pub payment_secret: [u8; 32],
    /// `total_msat` (tu64)
    pub total_msat: Msat,
}

/// A hop `payload` as a TLV stream with every field optional: what the
/// wire allows. [`HopPayload::into_forward`] and [`HopPayload::into_final`]
/// apply the BOLT 4 reader requirements for each role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HopPayload {
    /// Type 2 `amt_to_forward` (tu64).
    pub amt_to_forward: Option<Msat>,
    /// Type 4 `outgoing_cltv_value` (tu32).
    pub outgoing_cltv_value: Option<u32>,
    /// Type 6 `short_channel_id`.
    pub short_channel_id: Option<ShortChannelId>,
    /// Type 8 `payment_data`.
    pub payment_data: Option<PaymentData>,
    /// Type 16 `payment_metadata`.
    pub payment_metadata: Option<Vec<u8>>,
    /// Type 5482373484 `keysend_preimage` (bLIP 3): a payment without an
    /// invoice carries its preimage to the payee.
    pub keysend_preimage: Option<[u8; 32]>,
    /// Unknown odd records, kept so the payload re-encodes byte for byte.
    pub extension: TlvStream,
}

impl HopPayload {
    /// Encodes the TLV stream (the bytes given to
    /// [`construct_onion`](crate::construct_onion), without length prefix).
    pub fn encode(&self) -> Vec<u8> {
        let mut stream = self.extension.clone();
        let mut put = |typ: u64, f: &dyn Fn(&mut Writer)| {
            let mut w = Writer::new();
            f(&mut w);
            stream.insert(typ, w.into_vec());
        };
        if let Some(amt) = self.amt_to_forward {
            put(AMT_TO_FORWARD, &|w| w.write_tu64(amt.to_msat()));
        }
        if let Some(cltv) = self.outgoing_cltv_value {
            put(OUTGOING_CLTV_VALUE, &|w| w.write_tu32(cltv));
        }
        if let Some(scid) = self.short_channel_id {
            put(SHORT_CHANNEL_ID, &|w| w.write_short_channel_id(scid));
        }
        if let Some(pd) = &self.payment_data {
            put(PAYMENT_DATA, &|w| {
                w.write_bytes(&pd.payment_secret);
                w.write_tu64(pd.total_msat.to_msat());
            });
        }
        if let Some(meta) = &self.payment_metadata {
            put(PAYMENT_METADATA, &|w| w.write_bytes(meta));
        }
        if let Some(p) = &self.keysend_preimage {
            put(KEYSEND_PREIMAGE, &|w| w.write_bytes(p));
        }
        let mut w = Writer::new();
        stream.write(&mut w);
        w.into_vec()
    }

    /// Decodes a `payload` TLV stream with the BOLT 1 rules: known records
    /// must have exactly their encoding's length, an unknown even type
    /// fails, unknown odd types are kept in `extension`.
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        let mut s = TlvStream::decode(bytes)?;
        let amt_to_forward = s
            .take_with(AMT_TO_FORWARD, |r| r.read_tu64())?
            .map(Msat::from_msat);
        let outgoing_cltv_value = s.take_with(OUTGOING_CLTV_VALUE, |r| r.read_tu32())?;
        let short_channel_id = s.take_with(SHORT_CHANNEL_ID, |r| r.read_short_channel_id())?;
        let payment_data = s.take_with(PAYMENT_DATA, |r: &mut Reader<'_>| {
            Ok(PaymentData {
                payment_secret: r.read_array()?,
                total_msat: Msat::from_msat(r.read_tu64()?),
            })
        })?;
        let payment_metadata = s.take(PAYMENT_METADATA);
        let keysend_preimage = s.take_with(KEYSEND_PREIMAGE, |r| r.read_array())?;
        let extension = s.into_extension()?;
        Ok(HopPayload {
            amt_to_forward,
            outgoing_cltv_value,
            short_channel_id,
            payment_data,
            payment_metadata,
            keysend_preimage,
            extension,
        })
    }

    /// BOLT 4 reader, not in a blinded route, not the final node: "MUST
    /// return an error if `amt_to_forward` or `outgoing_cltv_value` are not
    /// present" and if "`short_channel_id` is not present".
    pub fn into_forward(self) -> Result<ForwardPayload, PayloadError> {
        Ok(ForwardPayload {
            amt_to_forward: self
                .amt_to_forward
                .ok_or(PayloadError::Missing(AMT_TO_FORWARD))?,
            outgoing_cltv_value: self
                .outgoing_cltv_value
                .ok_or(PayloadError::Missing(OUTGOING_CLTV_VALUE))?,
            short_channel_id: self
                .short_channel_id
                .ok_or(PayloadError::Missing(SHORT_CHANNEL_ID))?,
        })
    }

    /// BOLT 4 reader, final node outside a blinded route: `amt_to_forward`
    /// and `outgoing_cltv_value` are required.
    pub fn into_final(self) -> Result<FinalPayload, PayloadError> {
        Ok(FinalPayload {
            amt_to_forward: self
                .amt_to_forward
                .ok_or(PayloadError::Missing(AMT_TO_FORWARD))?,
            outgoing_cltv_value: self
                .outgoing_cltv_value
                .ok_or(PayloadError::Missing(OUTGOING_CLTV_VALUE))?,
            payment_data: self.payment_data,
            payment_metadata: self.payment_metadata,
            keysend_preimage: self.keysend_preimage,
        })
    }
}

impl From<ForwardPayload> for HopPayload {
    /// BOLT 4 writer, non-final node: `amt_to_forward`,
    /// `outgoing_cltv_value` and `short_channel_id`; no `payment_data`.
    fn from(p: ForwardPayload) -> Self {
        HopPayload {
            amt_to_forward: Some(p.amt_to_forward),
            outgoing_cltv_value: Some(p.outgoing_cltv_value),
            short_channel_id: Some(p.short_channel_id),
            ..HopPayload::default()
        }
    }
}

impl From<FinalPayload> for HopPayload {
    /// BOLT 4 writer, final node: no `short_channel_id`.
    fn from(p: FinalPayload) -> Self {
        HopPayload {
            amt_to_forward: Some(p.amt_to_forward),
            outgoing_cltv_value: Some(p.outgoing_cltv_value),
            payment_data: p.payment_data,
            payment_metadata: p.payment_metadata,
            keysend_preimage: p.keysend_preimage,
            ..HopPayload::default()
        }
    }
}

/// The payload of an intermediate hop, with its required fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardPayload {
    /// Amount to put in the outgoing HTLC.
    pub amt_to_forward: Msat,
    /// `cltv_expiry` of the outgoing HTLC.
    pub outgoing_cltv_value: u32,
    /// The outgoing channel.
    pub short_channel_id: ShortChannelId,
}

/// The payload of the final hop, with its required fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalPayload {
    /// Amount this HTLC must carry at least.
    pub amt_to_forward: Msat,
    /// Expiry the HTLC must have at least.
    pub outgoing_cltv_value: u32,
    /// `payment_secret` and `total_msat`, if the invoice had a secret.
    pub payment_data: Option<PaymentData>,
    /// `payment_metadata` from the invoice, if any.
    pub payment_metadata: Option<Vec<u8>>,
    /// The preimage of a payment without an invoice (bLIP 3 keysend).
    pub keysend_preimage: Option<[u8; 32]>,
}

impl FinalPayload {
    /// BOLT 4 reader, final node: "MUST treat `total_msat` as if it were
    /// equal to `amt_to_forward` if it is not present."
    pub fn total_msat(&self) -> Msat {
        self.payment_data
            .map_or(self.amt_to_forward, |pd| pd.total_msat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_unknown_odd() {
        let mut extension = TlvStream::new();
        extension.insert(513, vec![1, 2, 3]);
        let p = HopPayload {
            amt_to_forward: Some(Msat::from_msat(15_000)),
            outgoing_cltv_value: Some(1_500),
            short_channel_id: Some(ShortChannelId::from_u64(2)),
            extension,
            ..HopPayload::default()
        };
        let bytes = p.encode();
        assert_eq!(
            bytes,
            [
                &[0x02, 0x02, 0x3a, 0x98, 0x04, 0x02, 0x05, 0xdc, 0x06, 0x08][..],
                &[0, 0, 0, 0, 0, 0, 0, 2],
                &[0xfd, 0x02, 0x01, 0x03, 1, 2, 3]
            ]
            .concat()
        );
        assert_eq!(HopPayload::decode(&bytes), Ok(p));
    }

    #[test]
    fn rejects_unknown_even_and_bad_lengths() {
        assert_eq!(
            HopPayload::decode(&[0x0a, 0x01, 0x00]),
            Err(PayloadError::Decode(DecodeError::UnknownEvenTlv(10)))
        );
        // A tu64 with a leading zero byte is not minimal.
        assert_eq!(
            HopPayload::decode(&[0x02, 0x02, 0x00, 0x01]),
            Err(PayloadError::Decode(DecodeError::NonMinimalTruncatedInt))
        );
        // short_channel_id must be exactly 8 bytes.
        assert!(HopPayload::decode(&[0x06, 0x07, 0, 0, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn role_requirements() {
        let p = HopPayload::decode(&[0x02, 0x01, 0x05, 0x04, 0x01, 0x07]).unwrap();
        assert_eq!(
            p.clone().into_forward(),
            Err(PayloadError::Missing(SHORT_CHANNEL_ID))
        );
        let f = p.into_final().unwrap();
        assert_eq!(f.total_msat(), Msat::from_msat(5));
        assert_eq!(f.outgoing_cltv_value, 7);
        assert_eq!(
            HopPayload::decode(&[0x04, 0x01, 0x07])
                .unwrap()
                .into_final()
                .map_err(|e| e.tlv_type()),
            Err(Some(AMT_TO_FORWARD))
        );
    }
}
