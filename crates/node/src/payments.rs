//! Paying an invoice over a route to its payee, receiving such a payment,
//! and reading an HTLC that is to be forwarded: the glue between BOLT 11
//! invoices and BOLT 4 onions. Pure: the session key and the block height
//! come in as arguments.

use beongae_invoice::Invoice;
use beongae_onion::{
    build_error_packet, check_final_htlc, construct_onion, decrypt_error_packet, peel, route_keys,
    DecryptedFailure, ExpectedPayment, FailureError, FailureMessage, FinalOutcome, FinalPayload,
    ForwardPayload, HopPayload, IncomingHtlc, OnionError, OnionPacket, PaymentData, Peeled,
    SharedSecret,
};
use beongae_wire::msgs::OnionPacketBytes;
use beongae_wire::{Msat, NodeId, PaymentHash, ShortChannelId};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::{Secp256k1, SecretKey, Signing, Verification};

/// Blocks added to the final `cltv_expiry` beyond the invoice's
/// `min_final_cltv_expiry_delta`.
pub const CLTV_SAFETY_BLOCKS: u32 = 3;

/// Why a payment could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayError {
    /// The invoice has no amount and none was given.
    #[error("the invoice has no amount: give one")]
    AmountNeeded,
    /// An amount below the invoice's.
    #[error("amount {given} is below the invoice's {asked}")]
    AmountBelowInvoice {
        /// Given.
        given: Msat,
        /// In the invoice.
        asked: Msat,
    },
    /// The invoice has expired (BOLT 11: the payer "SHOULD NOT attempt a
    /// payment" after `timestamp` plus `expiry`).
    #[error("the invoice expired at {0} (unix time)")]
    Expired(u64),
    /// The onion could not be built.
    #[error("onion: {0}")]
    Onion(#[from] OnionError),
}

/// An HTLC to offer the payee, and what is needed to read its failure.
#[derive(Debug, Clone)]
pub struct OutgoingPayment {
    /// `amount_msat`
    pub amount: Msat,
    /// `cltv_expiry`
    pub cltv_expiry: u32,
    /// `payment_hash`
    pub payment_hash: PaymentHash,
    /// `onion_routing_packet`
    pub onion: OnionPacketBytes,
    /// The secrets shared with each hop, to attribute a failure.
    pub shared_secrets: Vec<SharedSecret>,
}

/// One channel of a payment's route: the HTLC on it, and the node it
/// delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathHop {
    /// The node at the end of this channel.
    pub node_id: NodeId,
    /// The channel (its short channel id or the alias its source knows).
    pub short_channel_id: ShortChannelId,
    /// `amount_msat` of the HTLC on this channel.
    pub amount: Msat,
    /// `cltv_expiry` of the HTLC on this channel.
    pub cltv_expiry: u32,
}

/// The amount a payment of `invoice` delivers: the invoice's, or `amount`
/// (at least the invoice's), refused once the invoice expired (BOLT 11:
/// the payer "SHOULD NOT attempt a payment" after `timestamp` plus
/// `expiry`).
pub fn amount_to_pay(
    invoice: &Invoice,
    amount: Option<Msat>,
    now_secs: u64,
) -> Result<Msat, PayError> {
    if invoice.is_expired(now_secs) {
        return Err(PayError::Expired(invoice.expires_at()));
    }
    match (invoice.amount(), amount) {
        (None, None) => Err(PayError::AmountNeeded),
        (Some(asked), Some(given)) if given < asked => {
            Err(PayError::AmountBelowInvoice { given, asked })
        }
        (_, Some(given)) => Ok(given),
        (Some(asked), None) => Ok(asked),
    }
}

/// The `cltv_expiry` the payee must receive at `height`: the invoice's
/// `min_final_cltv_expiry_delta` and a few blocks more (the payee may
/// already have seen a block or two more than we have when the HTLC
/// reaches it; BOLT 4: it fails an HTLC whose `cltv_expiry` is below its
/// height plus `c`).
pub fn final_cltv_expiry(invoice: &Invoice, height: u32) -> u32 {
    let delta = u32::try_from(invoice.min_final_cltv_expiry_delta()).unwrap_or(u32::MAX);
    height
        .saturating_add(delta)
        .saturating_add(CLTV_SAFETY_BLOCKS)
}

/// The HTLC paying `invoice` to its payee over a direct channel (see
/// [`pay_route`]).
pub fn pay_direct<C: Signing>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    invoice: &Invoice,
    amount: Option<Msat>,
    height: u32,
    now_secs: u64,
) -> Result<OutgoingPayment, PayError> {
    let amount = amount_to_pay(invoice, amount, now_secs)?;
    let hop = PathHop {
        node_id: invoice.payee_node_id(),
        // Not used: a direct payment names no channel in the onion.
        short_channel_id: ShortChannelId::from_u64(0),
        amount,
        cltv_expiry: final_cltv_expiry(invoice, height),
    };
    pay_route(secp, session_key, invoice, &[hop], amount)
}

/// The first HTLC of a payment of `invoice` over `path` (the payee last):
/// each intermediate hop's payload names the next channel, the amount and
/// the expiry of the HTLC it is to offer on it (BOLT 4 "Payload Format":
/// `short_channel_id`, `amt_to_forward`, `outgoing_cltv_value`); the final
/// hop's carries the amount, the expiry, the `payment_secret` with
/// `total_msat` (the whole payment's: more than this part's amount for one
/// part of a multi-part payment, BOLT 4 `basic_mpp`) and the invoice's
/// `payment_metadata` (BOLT 11 "Requirements" for the payer).
pub fn pay_route<C: Signing>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    invoice: &Invoice,
    path: &[PathHop],
    total: Msat,
) -> Result<OutgoingPayment, PayError> {
    let (Some(first), Some(last)) = (path.first(), path.last()) else {
        return Err(PayError::Onion(OnionError::InvalidPayloadLength));
    };
    let mut hops = Vec::with_capacity(path.len());
    for (i, hop) in path.iter().enumerate() {
        let payload = match path.get(i + 1) {
            Some(next) => HopPayload {
                amt_to_forward: Some(next.amount),
                outgoing_cltv_value: Some(next.cltv_expiry),
                short_channel_id: Some(next.short_channel_id),
                ..HopPayload::default()
            },
            None => HopPayload {
                amt_to_forward: Some(last.amount),
                outgoing_cltv_value: Some(last.cltv_expiry),
                payment_data: Some(PaymentData {
                    payment_secret: invoice.payment_secret().0,
                    total_msat: total,
                }),
                payment_metadata: invoice.payment_metadata().map(<[u8]>::to_vec),
                ..HopPayload::default()
            },
        };
        hops.push((hop.node_id.pubkey(), payload.encode()));
    }
    onion_payment(
        secp,
        session_key,
        &hops,
        invoice.payment_hash(),
        first.amount,
        first.cltv_expiry,
    )
}

/// The HTLC paying `amount` to channel peer `payee` without an invoice
/// (bLIP 3 keysend): the final payload carries `preimage`, and no
/// `payment_secret`.
pub fn keysend_direct<C: Signing>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    payee: NodeId,
    amount: Msat,
    preimage: beongae_wire::Preimage,
    cltv_expiry: u32,
) -> Result<OutgoingPayment, PayError> {
    let payload = HopPayload {
        amt_to_forward: Some(amount),
        outgoing_cltv_value: Some(cltv_expiry),
        keysend_preimage: Some(preimage.0),
        ..HopPayload::default()
    };
    let hops = vec![(payee.pubkey(), payload.encode())];
    onion_payment(
        secp,
        session_key,
        &hops,
        preimage.payment_hash(),
        amount,
        cltv_expiry,
    )
}

/// The first HTLC of a payment with these `hops`' payloads.
fn onion_payment<C: Signing>(
    secp: &Secp256k1<C>,
    session_key: &SecretKey,
    hops: &[(bitcoin::secp256k1::PublicKey, Vec<u8>)],
    payment_hash: PaymentHash,
    amount: Msat,
    cltv_expiry: u32,
) -> Result<OutgoingPayment, PayError> {
    let onion = construct_onion(secp, session_key, hops, &payment_hash.0)?;
    let shared_secrets = route_keys(secp, session_key, hops.iter().map(|(k, _)| *k))?
        .into_iter()
        .map(|k| k.shared_secret)
        .collect();
    Ok(OutgoingPayment {
        amount,
        cltv_expiry,
        payment_hash,
        onion: OnionPacketBytes(Box::new(
            onion
                .encode()
                .try_into()
                .map_err(|_| PayError::Onion(OnionError::InvalidPayloadLength))?,
        )),
        shared_secrets,
    })
}

/// What to do with an HTLC offered to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncomingDecision {
    /// It is to be forwarded: `payload` names the next channel, the amount
    /// and the expiry; `next` is the onion for the next hop.
    Forward {
        /// This hop's payload.
        payload: ForwardPayload,
        /// The onion for the next hop.
        next: OnionPacketBytes,
        /// The secret shared with the payer (to wrap failures).
        shared_secret: SharedSecret,
    },
    /// A payment without an invoice (bLIP 3 keysend) that passed every
    /// check: fulfil it with `preimage`.
    Keysend {
        /// The preimage the payer sent.
        preimage: beongae_wire::Preimage,
    },
    /// It pays an invoice of ours: fulfil it (or hold it, for a part).
    Accept {
        /// Whole payment or one part.
        outcome: FinalOutcome,
        /// Its payload.
        payload: FinalPayload,
        /// The secret shared with the payer (to fail a held part).
        shared_secret: SharedSecret,
    },
    /// Fail it with this `reason` (`update_fail_htlc`).
    Fail {
        /// The obfuscated return packet.
        reason: Vec<u8>,
        /// The failure inside, for logs.
        failure: FailureMessage,
    },
    /// The onion could not be read: `update_fail_malformed_htlc`.
    Malformed {
        /// `sha256_of_onion`
        sha256_of_onion: [u8; 32],
        /// `failure_code` (BADONION set).
        failure_code: u16,
    },
}

/// Peels the onion of an HTLC offered to us and checks it against the
/// invoice `expected` returns for its payment hash.
pub fn receive_htlc<C: Verification>(
    secp: &Secp256k1<C>,
    node_secret: &SecretKey,
    htlc: &IncomingHtlc,
    onion: &OnionPacketBytes,
    expected: impl Fn(&PaymentHash) -> Option<ExpectedPayment>,
    height: u32,
) -> Result<IncomingDecision, FailureError> {
    receive_htlc_or_refuse(secp, node_secret, htlc, onion, expected, height, None)
}

/// As [`receive_htlc`], but an HTLC that would be accepted fails with
/// `refuse` instead (e.g. one that exceeds our dust exposure: BOLT 2 says
/// to fail it and never reveal its preimage).
pub fn receive_htlc_or_refuse<C: Verification>(
    secp: &Secp256k1<C>,
    node_secret: &SecretKey,
    htlc: &IncomingHtlc,
    onion: &OnionPacketBytes,
    expected: impl Fn(&PaymentHash) -> Option<ExpectedPayment>,
    height: u32,
    refuse: Option<FailureMessage>,
) -> Result<IncomingDecision, FailureError> {
    let packet = match OnionPacket::decode(&onion.0[..]) {
        Ok(p) => p,
        // A 1366-byte field always decodes; answer clearly all the same.
        Err(_) => {
            let sha256_of_onion = sha256::Hash::hash(&onion.0[..]).to_byte_array();
            let failure = FailureMessage::InvalidOnionVersion { sha256_of_onion };
            return Ok(IncomingDecision::Malformed {
                sha256_of_onion,
                failure_code: failure.code(),
            });
        }
    };
    let peeled = match peel(secp, node_secret, &packet, &htlc.payment_hash.0) {
        Ok(p) => p,
        Err(e) => {
            let failure = e
                .failure(&packet)
                .unwrap_or(FailureMessage::InvalidOnionHmac {
                    sha256_of_onion: packet.sha256(),
                });
            return Ok(IncomingDecision::Malformed {
                sha256_of_onion: packet.sha256(),
                failure_code: failure.code(),
            });
        }
    };
    let fail = |ss: &SharedSecret, failure: FailureMessage| {
        Ok(IncomingDecision::Fail {
            reason: build_error_packet(ss, &failure)?,
            failure,
        })
    };
    let (payload, ss) = match &peeled {
        Peeled::Forward {
            payload,
            next,
            shared_secret,
        } => {
            // BOLT 4: an intermediate hop's payload must carry
            // `short_channel_id`, `amt_to_forward`, `outgoing_cltv_value`
            // (and nothing of a final hop's).
            return match HopPayload::decode(payload).and_then(HopPayload::into_forward) {
                Ok(payload) => match next.encode().try_into() {
                    Ok(bytes) => Ok(IncomingDecision::Forward {
                        payload,
                        next: OnionPacketBytes(Box::new(bytes)),
                        shared_secret: *shared_secret,
                    }),
                    Err(_) => fail(
                        shared_secret,
                        FailureMessage::InvalidOnionPayload { tlv: None },
                    ),
                },
                Err(e) => {
                    let tlv = e.tlv_type().map(|t| (t, 0));
                    fail(shared_secret, FailureMessage::InvalidOnionPayload { tlv })
                }
            };
        }
        Peeled::Final {
            payload,
            shared_secret,
        } => (payload, shared_secret),
    };
    let payload = match HopPayload::decode(payload).and_then(HopPayload::into_final) {
        Ok(p) => p,
        Err(e) => {
            let tlv = e.tlv_type().map(|t| (t, 0));
            return fail(ss, FailureMessage::InvalidOnionPayload { tlv });
        }
    };
    let invoice = expected(&htlc.payment_hash);
    if invoice.is_none() && payload.keysend_preimage.is_some() {
        return match (
            beongae_onion::check_keysend_htlc(
                htlc,
                &payload,
                crate::core::channels::keysend::KEYSEND_FINAL_CLTV_DELTA,
                height,
            ),
            refuse,
        ) {
            (Ok(_), Some(failure)) | (Err(failure), _) => fail(ss, failure),
            (Ok(preimage), None) => Ok(IncomingDecision::Keysend { preimage }),
        };
    }
    match (
        check_final_htlc(htlc, &payload, invoice.as_ref(), height),
        refuse,
    ) {
        (Ok(_), Some(failure)) => fail(ss, failure),
        (Ok(outcome), None) => Ok(IncomingDecision::Accept {
            outcome,
            payload,
            shared_secret: *ss,
        }),
        (Err(failure), _) => fail(ss, failure),
    }
}

/// The failure the payee returned for an HTLC we sent (`update_fail_htlc`
/// `reason`), read with the secrets shared with each hop of its route.
pub fn read_failure(
    shared_secrets: &[SharedSecret],
    reason: &[u8],
) -> Result<DecryptedFailure, FailureError> {
    decrypt_error_packet(shared_secrets, reason)
}

/// A failure a hop returned, in words for the payer: BOLT 4's name and
/// what it means.
pub fn failure_in_words(f: &FailureMessage) -> String {
    use FailureMessage as F;
    let (name, meaning) = match f {
        F::TemporaryNodeFailure => (
            "temporary_node_failure",
            "the node could not handle it for now",
        ),
        F::PermanentNodeFailure => ("permanent_node_failure", "the node will not handle it"),
        F::RequiredNodeFeatureMissing => (
            "required_node_feature_missing",
            "the node requires a feature the payment lacks",
        ),
        F::InvalidOnionVersion { .. } => {
            ("invalid_onion_version", "the node could not read the onion")
        }
        F::InvalidOnionHmac { .. } => ("invalid_onion_hmac", "the onion was altered on the way"),
        F::InvalidOnionKey { .. } => ("invalid_onion_key", "the onion's key was invalid"),
        F::TemporaryChannelFailure { .. } => (
            "temporary_channel_failure",
            "the next channel could not carry it now (liquidity or slots)",
        ),
        F::PermanentChannelFailure => ("permanent_channel_failure", "the next channel is gone"),
        F::RequiredChannelFeatureMissing => (
            "required_channel_feature_missing",
            "the next channel requires a feature the payment lacks",
        ),
        F::UnknownNextPeer => ("unknown_next_peer", "the node has no such next channel"),
        F::AmountBelowMinimum { .. } => (
            "amount_below_minimum",
            "the amount is below the next channel's minimum",
        ),
        F::FeeInsufficient { .. } => (
            "fee_insufficient",
            "the fee paid is below the node's policy",
        ),
        F::IncorrectCltvExpiry { .. } => (
            "incorrect_cltv_expiry",
            "the expiry does not leave the node's CLTV delta",
        ),
        F::ExpiryTooSoon { .. } => (
            "expiry_too_soon",
            "the expiry is too close to the chain's tip",
        ),
        F::IncorrectOrUnknownPaymentDetails { .. } => (
            "incorrect_or_unknown_payment_details",
            "the payee does not know this payment, or its amount or secret is wrong",
        ),
        F::FinalIncorrectCltvExpiry { .. } => (
            "final_incorrect_cltv_expiry",
            "the payee's HTLC expiry differs from the onion's",
        ),
        F::FinalIncorrectHtlcAmount { .. } => (
            "final_incorrect_htlc_amount",
            "the payee's HTLC amount differs from the onion's",
        ),
        F::ChannelDisabled { .. } => (
            "channel_disabled",
            "the next channel is disabled (its peer is offline)",
        ),
        F::ExpiryTooFar => ("expiry_too_far", "the expiry is too far in the future"),
        F::InvalidOnionPayload { .. } => (
            "invalid_onion_payload",
            "the node could not read its payload",
        ),
        F::MppTimeout => ("mpp_timeout", "the payee did not get every part in time"),
        F::InvalidOnionBlinding { .. } => (
            "invalid_onion_blinding",
            "a blinded route's onion was invalid",
        ),
        _ => return format!("failure code {:#06x}", f.code()),
    };
    format!("{name}: {meaning}")
}
