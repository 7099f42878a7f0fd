//! BOLT 7 announcements: `announcement_signatures`, `channel_announcement`,
//! `node_announcement` and `channel_update`, with the hashes their
//! signatures cover and the checks of those signatures.
//!
//! BOLT 7 lets these messages carry data after their known fields (newer
//! fields we do not know yet): it is kept verbatim in `excess_data`, because
//! the signatures cover it.

use bitcoin::constants::ChainHash;
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{Message as Digest, PublicKey, Secp256k1, Verification};

use super::fields::WireField;
use super::WireMessage;
use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::features::Features;
use crate::types::{ChannelId, NetAddress, NodeId, ShortChannelId};

/// `u16`-length feature bits.
impl WireField for Features {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u16_prefixed("features", &self.to_be_bytes())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Features::from_be_bytes(r.read_u16_prefixed()?))
    }
}

impl WireField for ShortChannelId {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_short_channel_id(*self);
        Ok(())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_short_channel_id()
    }
}

impl WireField for NodeId {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_point(&self.pubkey());
        Ok(())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeId::from_pubkey(r.read_point()?))
    }
}

impl WireField for [u8; 3] {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(self);
        Ok(())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_array()
    }
}

/// `node_announcement` `addresses`: a `u16` length, then address
/// descriptors. BOLT 7: a reader "SHOULD ignore the first address descriptor
/// that does NOT match the types defined above" and stops there (its
/// length is unknown); we keep it as [`NetAddress::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addresses(pub Vec<NetAddress>);

impl WireField for Addresses {
    fn write_field(&self, w: &mut Writer) -> Result<(), EncodeError> {
        let mut inner = Writer::new();
        for a in &self.0 {
            a.write(&mut inner);
        }
        w.write_u16_prefixed("addresses", &inner.into_vec())
    }
    fn read_field(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bytes = r.read_u16_prefixed()?;
        let mut inner = Reader::new(bytes);
        let mut v = Vec::new();
        while !inner.is_empty() {
            v.push(NetAddress::read(&mut inner)?);
        }
        Ok(Addresses(v))
    }
}

/// Declares an announcement: fixed fields, then `excess_data`.
macro_rules! gossip_message {
    (
        $(#[$doc:meta])*
        $name:ident = $typ:literal {
            $( $(#[$fdoc:meta])* $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fdoc])* pub $field: $fty, )*
            /// Bytes after the known fields (covered by the signatures).
            pub excess_data: Vec<u8>,
        }

        impl WireMessage for $name {
            const TYPE: u16 = $typ;

            fn write_payload(&self, w: &mut Writer) -> Result<(), EncodeError> {
                $( self.$field.write_field(w)?; )*
                w.write_bytes(&self.excess_data);
                Ok(())
            }

            fn read_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                $( let $field = <$fty as WireField>::read_field(r)?; )*
                Ok($name { $( $field, )* excess_data: r.read_rest().to_vec() })
            }
        }
    };
}

gossip_message! {
    /// BOLT 7 `announcement_signatures` (type 259).
    AnnouncementSignatures = 259 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `short_channel_id`
        short_channel_id: ShortChannelId,
        /// `node_signature`
        node_signature: Signature,
        /// `bitcoin_signature`
        bitcoin_signature: Signature,
    }
}

gossip_message! {
    /// BOLT 7 `channel_announcement` (type 256).
    ChannelAnnouncement = 256 {
        /// `node_signature_1`
        node_signature_1: Signature,
        /// `node_signature_2`
        node_signature_2: Signature,
        /// `bitcoin_signature_1`
        bitcoin_signature_1: Signature,
        /// `bitcoin_signature_2`
        bitcoin_signature_2: Signature,
        /// `features`
        features: Features,
        /// `chain_hash`
        chain_hash: ChainHash,
        /// `short_channel_id`
        short_channel_id: ShortChannelId,
        /// `node_id_1` (the lesser of the two node ids)
        node_id_1: NodeId,
        /// `node_id_2`
        node_id_2: NodeId,
        /// `bitcoin_key_1`
        bitcoin_key_1: PublicKey,
        /// `bitcoin_key_2`
        bitcoin_key_2: PublicKey,
    }
}

gossip_message! {
    /// BOLT 7 `node_announcement` (type 257).
    NodeAnnouncement = 257 {
        /// `signature`
        signature: Signature,
        /// `features`
        features: Features,
        /// `timestamp`
        timestamp: u32,
        /// `node_id`
        node_id: NodeId,
        /// `rgb_color`
        rgb_color: [u8; 3],
        /// `alias` (UTF-8, zero-padded)
        alias: [u8; 32],
        /// `addresses`
        addresses: Addresses,
    }
}

gossip_message! {
    /// BOLT 7 `channel_update` (type 258).
    ChannelUpdate = 258 {
        /// `signature`
        signature: Signature,
        /// `chain_hash`
        chain_hash: ChainHash,
        /// `short_channel_id`
        short_channel_id: ShortChannelId,
        /// `timestamp`
        timestamp: u32,
        /// `message_flags` (bit 0 `must_be_one`: `htlc_maximum_msat` present)
        message_flags: u8,
        /// `channel_flags` (bit 0 `direction`, bit 1 `disable`)
        channel_flags: u8,
        /// `cltv_expiry_delta`
        cltv_expiry_delta: u16,
        /// `htlc_minimum_msat`
        htlc_minimum_msat: u64,
        /// `fee_base_msat`
        fee_base_msat: u32,
        /// `fee_proportional_millionths`
        fee_proportional_millionths: u32,
        /// `htlc_maximum_msat`
        htlc_maximum_msat: u64,
    }
}

/// Double-SHA256 of `msg`'s encoding after `skip` bytes (the type and the
/// signatures), the digest its signatures cover.
fn hash_after<M: WireMessage>(msg: &M, skip: usize) -> Result<[u8; 32], EncodeError> {
    let bytes = msg.encode()?;
    Ok(sha256d::Hash::hash(&bytes[skip.min(bytes.len())..]).to_byte_array())
}

fn verify<C: Verification>(
    secp: &Secp256k1<C>,
    digest: [u8; 32],
    sig: &Signature,
    key: &PublicKey,
) -> bool {
    secp.verify_ecdsa(&Digest::from_digest(digest), sig, key)
        .is_ok()
}

impl ChannelAnnouncement {
    /// BOLT 7: the double-SHA256 of the message "starting at offset 256"
    /// of the payload (after the four signatures), which all four sign.
    pub fn signed_hash(&self) -> Result<[u8; 32], EncodeError> {
        hash_after(self, 2 + 4 * 64)
    }

    /// Whether all four signatures are valid: `node_signature_1/2` by
    /// `node_id_1/2`, `bitcoin_signature_1/2` by `bitcoin_key_1/2`.
    pub fn verify<C: Verification>(&self, secp: &Secp256k1<C>) -> bool {
        let Ok(h) = self.signed_hash() else {
            return false;
        };
        verify(secp, h, &self.node_signature_1, &self.node_id_1.pubkey())
            && verify(secp, h, &self.node_signature_2, &self.node_id_2.pubkey())
            && verify(secp, h, &self.bitcoin_signature_1, &self.bitcoin_key_1)
            && verify(secp, h, &self.bitcoin_signature_2, &self.bitcoin_key_2)
    }
}

impl NodeAnnouncement {
    /// BOLT 7: the double-SHA256 of the message after `signature`.
    pub fn signed_hash(&self) -> Result<[u8; 32], EncodeError> {
        hash_after(self, 2 + 64)
    }

    /// Whether `signature` is `node_id`'s over [`NodeAnnouncement::signed_hash`].
    pub fn verify<C: Verification>(&self, secp: &Secp256k1<C>) -> bool {
        self.signed_hash()
            .is_ok_and(|h| verify(secp, h, &self.signature, &self.node_id.pubkey()))
    }
}

impl ChannelUpdate {
    /// BOLT 7: the double-SHA256 of the message after `signature`.
    pub fn signed_hash(&self) -> Result<[u8; 32], EncodeError> {
        hash_after(self, 2 + 64)
    }

    /// `direction` (bit 0 of `channel_flags`): 0 if from `node_id_1`.
    pub fn direction(&self) -> u8 {
        self.channel_flags & 1
    }

    /// `disable` (bit 1 of `channel_flags`).
    pub fn is_disabled(&self) -> bool {
        self.channel_flags & 2 != 0
    }

    /// Whether `signature` is `origin`'s (the channel's `node_id_1` for
    /// direction 0, else `node_id_2`).
    pub fn verify<C: Verification>(&self, secp: &Secp256k1<C>, origin: &NodeId) -> bool {
        self.signed_hash()
            .is_ok_and(|h| verify(secp, h, &self.signature, &origin.pubkey()))
    }
}
