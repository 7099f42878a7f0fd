//! BOLT 2 channel messages: establishment v1, close, normal operation and
//! reestablishment. Each is declared from the spec's field list.

use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;

use super::fields::{wire_message, OnionPacketBytes, TlvValue, U16Bytes};
use crate::codec::{DecodeError, Reader};
use crate::features::Features;
use crate::types::{ChainHash, ChannelId, ShortChannelId};

wire_message! {
    /// BOLT 2 §"The `open_channel` Message" (type 32).
    OpenChannel = 32 {
        /// `chain_hash`
        chain_hash: ChainHash,
        /// `temporary_channel_id`
        temporary_channel_id: ChannelId,
        /// `funding_satoshis`
        funding_satoshis: u64,
        /// `push_msat`
        push_msat: u64,
        /// `dust_limit_satoshis`
        dust_limit_satoshis: u64,
        /// `max_htlc_value_in_flight_msat`
        max_htlc_value_in_flight_msat: u64,
        /// `channel_reserve_satoshis`
        channel_reserve_satoshis: u64,
        /// `htlc_minimum_msat`
        htlc_minimum_msat: u64,
        /// `feerate_per_kw`
        feerate_per_kw: u32,
        /// `to_self_delay`
        to_self_delay: u16,
        /// `max_accepted_htlcs`
        max_accepted_htlcs: u16,
        /// `funding_pubkey`
        funding_pubkey: PublicKey,
        /// `revocation_basepoint`
        revocation_basepoint: PublicKey,
        /// `payment_basepoint`
        payment_basepoint: PublicKey,
        /// `delayed_payment_basepoint`
        delayed_payment_basepoint: PublicKey,
        /// `htlc_basepoint`
        htlc_basepoint: PublicKey,
        /// `first_per_commitment_point`
        first_per_commitment_point: PublicKey,
        /// `channel_flags` (bit 0: `announce_channel`)
        channel_flags: u8,
    }
    tlvs {
        /// type 0 `upfront_shutdown_script`
        upfront_shutdown_script: 0 => Vec<u8>,
        /// type 1 `channel_type`
        channel_type: 1 => Features,
    }
}

wire_message! {
    /// BOLT 2 §"The `accept_channel` Message" (type 33).
    AcceptChannel = 33 {
        /// `temporary_channel_id`
        temporary_channel_id: ChannelId,
        /// `dust_limit_satoshis`
        dust_limit_satoshis: u64,
        /// `max_htlc_value_in_flight_msat`
        max_htlc_value_in_flight_msat: u64,
        /// `channel_reserve_satoshis`
        channel_reserve_satoshis: u64,
        /// `htlc_minimum_msat`
        htlc_minimum_msat: u64,
        /// `minimum_depth`
        minimum_depth: u32,
        /// `to_self_delay`
        to_self_delay: u16,
        /// `max_accepted_htlcs`
        max_accepted_htlcs: u16,
        /// `funding_pubkey`
        funding_pubkey: PublicKey,
        /// `revocation_basepoint`
        revocation_basepoint: PublicKey,
        /// `payment_basepoint`
        payment_basepoint: PublicKey,
        /// `delayed_payment_basepoint`
        delayed_payment_basepoint: PublicKey,
        /// `htlc_basepoint`
        htlc_basepoint: PublicKey,
        /// `first_per_commitment_point`
        first_per_commitment_point: PublicKey,
    }
    tlvs {
        /// type 0 `upfront_shutdown_script`
        upfront_shutdown_script: 0 => Vec<u8>,
        /// type 1 `channel_type`
        channel_type: 1 => Features,
    }
}

wire_message! {
    /// BOLT 2 §"The `funding_created` Message" (type 34).
    FundingCreated = 34 {
        /// `temporary_channel_id`
        temporary_channel_id: ChannelId,
        /// `funding_txid` (as in the transaction, internal byte order)
        funding_txid: [u8; 32],
        /// `funding_output_index`
        funding_output_index: u16,
        /// `signature`
        signature: Signature,
    }
    tlvs {}
}

wire_message! {
    /// BOLT 2 §"The `funding_signed` Message" (type 35).
    FundingSigned = 35 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `signature`
        signature: Signature,
    }
    tlvs {}
}

wire_message! {
    /// BOLT 2 §"The `channel_ready` Message" (type 36).
    ChannelReady = 36 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `second_per_commitment_point`
        second_per_commitment_point: PublicKey,
    }
    tlvs {
        /// type 1 `short_channel_id` alias
        short_channel_id_alias: 1 => ShortChannelId,
    }
}

wire_message! {
    /// BOLT 2 §"Closing Initiation: `shutdown`" (type 38).
    Shutdown = 38 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `scriptpubkey` (u16-length-prefixed)
        scriptpubkey: U16Bytes,
    }
    tlvs {}
}

/// `closing_signed` TLV 1 `fee_range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRange {
    /// `min_fee_satoshis`
    pub min_fee_satoshis: u64,
    /// `max_fee_satoshis`
    pub max_fee_satoshis: u64,
}

impl TlvValue for FeeRange {
    fn to_value(&self) -> Vec<u8> {
        let mut v = self.min_fee_satoshis.to_be_bytes().to_vec();
        v.extend_from_slice(&self.max_fee_satoshis.to_be_bytes());
        v
    }
    fn from_value(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(FeeRange {
            min_fee_satoshis: r.read_u64()?,
            max_fee_satoshis: r.read_u64()?,
        })
    }
}

wire_message! {
    /// BOLT 2 §"Legacy Closing Negotiation: `closing_signed`" (type 39).
    ClosingSigned = 39 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `fee_satoshis`
        fee_satoshis: u64,
        /// `signature`
        signature: Signature,
    }
    tlvs {
        /// type 1 `fee_range`
        fee_range: 1 => FeeRange,
    }
}

wire_message! {
    /// BOLT 2 §"Closing Negotiation: `closing_complete` and `closing_sig`" (type 40).
    ClosingComplete = 40 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `closer_scriptpubkey`
        closer_scriptpubkey: U16Bytes,
        /// `closee_scriptpubkey`
        closee_scriptpubkey: U16Bytes,
        /// `fee_satoshis`
        fee_satoshis: u64,
        /// `locktime`
        locktime: u32,
    }
    tlvs {
        /// type 1 `closer_output_only`
        closer_output_only: 1 => Signature,
        /// type 2 `closee_output_only`
        closee_output_only: 2 => Signature,
        /// type 3 `closer_and_closee_outputs`
        closer_and_closee_outputs: 3 => Signature,
    }
}

wire_message! {
    /// BOLT 2 §"Closing Negotiation: `closing_complete` and `closing_sig`" (type 41).
    ClosingSig = 41 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `closer_scriptpubkey`
        closer_scriptpubkey: U16Bytes,
        /// `closee_scriptpubkey`
        closee_scriptpubkey: U16Bytes,
        /// `fee_satoshis`
        fee_satoshis: u64,
        /// `locktime`
        locktime: u32,
    }
    tlvs {
        /// type 1 `closer_output_only`
        closer_output_only: 1 => Signature,
        /// type 2 `closee_output_only`
        closee_output_only: 2 => Signature,
        /// type 3 `closer_and_closee_outputs`
        closer_and_closee_outputs: 3 => Signature,
    }
}

wire_message! {
    /// BOLT 2 §"Adding an HTLC: `update_add_htlc`" (type 128).
    UpdateAddHtlc = 128 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `id`
        id: u64,
        /// `amount_msat`
        amount_msat: u64,
        /// `payment_hash`
        payment_hash: [u8; 32],
        /// `cltv_expiry`
        cltv_expiry: u32,
        /// `onion_routing_packet`
        onion_routing_packet: OnionPacketBytes,
    }
    tlvs {
        /// type 0 `blinded_path`: `path_key`
        path_key: 0 => PublicKey,
    }
}

wire_message! {
    /// BOLT 2 §"Removing an HTLC" `update_fulfill_htlc` (type 130).
    UpdateFulfillHtlc = 130 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `id`
        id: u64,
        /// `payment_preimage`
        payment_preimage: [u8; 32],
    }
    tlvs {}
}

wire_message! {
    /// BOLT 2 §"Removing an HTLC" `update_fail_htlc` (type 131).
    UpdateFailHtlc = 131 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `id`
        id: u64,
        /// `reason` (the obfuscated BOLT 4 failure)
        reason: U16Bytes,
    }
    tlvs {}
}

wire_message! {
    /// BOLT 2 §"Committing Updates So Far: `commitment_signed`" (type 132).
    CommitmentSigned = 132 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `signature`
        signature: Signature,
        /// `num_htlcs` then the `htlc_signature`s, in commitment output order
        htlc_signatures: Vec<Signature>,
    }
    tlvs {}
}

wire_message! {
    /// BOLT 2 §"Completing the Transition to the Updated State: `revoke_and_ack`" (type 133).
    RevokeAndAck = 133 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `per_commitment_secret`
        per_commitment_secret: [u8; 32],
        /// `next_per_commitment_point`
        next_per_commitment_point: PublicKey,
    }
    tlvs {}
}

wire_message! {
    /// BOLT 2 §"Updating Fees: `update_fee`" (type 134).
    UpdateFee = 134 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `feerate_per_kw`
        feerate_per_kw: u32,
    }
    tlvs {}
}

wire_message! {
    /// BOLT 2 §"Removing an HTLC" `update_fail_malformed_htlc` (type 135).
    UpdateFailMalformedHtlc = 135 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `id`
        id: u64,
        /// `sha256_of_onion`
        sha256_of_onion: [u8; 32],
        /// `failure_code`
        failure_code: u16,
    }
    tlvs {}
}

wire_message! {
    /// BOLT 2 §"Message Retransmission" `channel_reestablish` (type 136).
    ChannelReestablish = 136 {
        /// `channel_id`
        channel_id: ChannelId,
        /// `next_commitment_number`
        next_commitment_number: u64,
        /// `next_revocation_number`
        next_revocation_number: u64,
        /// `your_last_per_commitment_secret`
        your_last_per_commitment_secret: [u8; 32],
        /// `my_current_per_commitment_point`
        my_current_per_commitment_point: PublicKey,
    }
    tlvs {}
}
