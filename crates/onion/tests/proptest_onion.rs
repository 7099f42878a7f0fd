//! Property tests: random routes survive construction and hop-by-hop
//! peeling; random bytes never panic any decoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use beongae_onion::{
    build_error_packet, construct_onion, decrypt_error_packet, obfuscate_error_packet, peel,
    route_keys, FailureError, FailureMessage, HopPayload, OnionError, OnionPacket, Peeled,
    HOP_PAYLOADS_LEN, ONION_PACKET_LEN,
};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use proptest::collection::vec;
use proptest::prelude::*;

fn secret_key() -> impl Strategy<Value = SecretKey> {
    any::<[u8; 32]>().prop_filter_map("valid secret key", |b| SecretKey::from_slice(&b).ok())
}

/// 1 to 20 hops, each a node key and a payload of 2 or more bytes, whose
/// framed sizes together fit the 1300-byte `hop_payloads`.
fn route() -> impl Strategy<Value = Vec<(SecretKey, Vec<u8>)>> {
    (1usize..=20).prop_flat_map(|n| {
        // Each hop may take 1300 / n bytes: 32 HMAC, up to 3 length bytes.
        let max = HOP_PAYLOADS_LEN / n - 32 - 3;
        vec((secret_key(), vec(any::<u8>(), 2..=max)), n)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn construct_then_peel_recovers_every_payload(
        session_key in secret_key(),
        hops in route(),
        associated_data in any::<[u8; 32]>(),
    ) {
        let secp = Secp256k1::new();
        let route: Vec<(PublicKey, Vec<u8>)> = hops
            .iter()
            .map(|(sk, p)| (sk.public_key(&secp), p.clone()))
            .collect();
        let onion = construct_onion(&secp, &session_key, &route, &associated_data).unwrap();
        let mut onion = OnionPacket::decode(&onion.encode()).unwrap();
        for (i, (sk, payload)) in hops.iter().enumerate() {
            let peeled = peel(&secp, sk, &onion, &associated_data).unwrap();
            prop_assert_eq!(peeled.payload(), &payload[..]);
            match peeled {
                Peeled::Forward { next, .. } => {
                    prop_assert!(i + 1 < hops.len(), "hop {} of {} forwards", i, hops.len());
                    onion = next;
                }
                Peeled::Final { .. } => prop_assert_eq!(i + 1, hops.len()),
            }
        }
    }

    #[test]
    fn error_from_any_hop_is_attributed_to_it(
        session_key in secret_key(),
        keys in vec(secret_key(), 1..=20),
        erring in any::<prop::sample::Index>(),
        htlc_msat in any::<u64>(),
        height in any::<u32>(),
    ) {
        let secp = Secp256k1::new();
        let secrets: Vec<_> =
            route_keys(&secp, &session_key, keys.iter().map(|k| k.public_key(&secp)))
                .unwrap()
                .into_iter()
                .map(|k| k.shared_secret)
                .collect();
        let erring = erring.index(secrets.len());
        let failure = FailureMessage::IncorrectOrUnknownPaymentDetails {
            htlc_msat: beongae_wire::Msat::from_msat(htlc_msat),
            height,
        };
        let mut packet = build_error_packet(&secrets[erring], &failure).unwrap();
        for ss in secrets[..erring].iter().rev() {
            obfuscate_error_packet(ss, &mut packet);
        }
        let decrypted = decrypt_error_packet(&secrets, &packet).unwrap();
        prop_assert_eq!(decrypted.hop, erring);
        prop_assert_eq!(decrypted.message, failure);
    }

    #[test]
    fn random_bytes_as_onion_never_panic(
        bytes in vec(any::<u8>(), 0..1500),
        node_secret in secret_key(),
        associated_data in vec(any::<u8>(), 0..64),
    ) {
        let secp = Secp256k1::new();
        match OnionPacket::decode(&bytes) {
            Ok(onion) => {
                prop_assert_eq!(bytes.len(), ONION_PACKET_LEN);
                prop_assert_eq!(onion.encode(), bytes);
                // A random HMAC never verifies: the peel must fail before
                // touching the payload.
                let err = peel(&secp, &node_secret, &onion, &associated_data).unwrap_err();
                prop_assert!(matches!(
                    err,
                    OnionError::InvalidVersion(_) | OnionError::InvalidKey | OnionError::InvalidHmac
                ));
            }
            Err(e) => prop_assert_eq!(e, OnionError::PacketLength(bytes.len())),
        }
    }

    #[test]
    fn random_full_size_onion_with_valid_header_never_panics(
        node_secret in secret_key(),
        ephemeral in secret_key(),
        hop_payloads in vec(any::<u8>(), HOP_PAYLOADS_LEN),
        hmac in any::<[u8; 32]>(),
    ) {
        let secp = Secp256k1::new();
        let mut onion = OnionPacket {
            version: 0,
            public_key: ephemeral.public_key(&secp).serialize(),
            hop_payloads: hop_payloads.try_into().unwrap(),
            hmac,
        };
        prop_assert_eq!(peel(&secp, &node_secret, &onion, &[]), Err(OnionError::InvalidHmac));
        // With a correct HMAC over random contents, peeling gets as far as
        // the payload framing and must still return, not panic.
        let ss = beongae_onion::SharedSecret::new(&ephemeral.public_key(&secp), &node_secret);
        onion.hmac = beongae_onion::crypto::hmac_sha256(
            &ss.key(beongae_onion::crypto::MU),
            &[&onion.hop_payloads],
        );
        match peel(&secp, &node_secret, &onion, &[]) {
            Ok(p) => prop_assert!(p.payload().len() >= 2),
            Err(e) => prop_assert_eq!(e, OnionError::InvalidPayloadLength),
        }
    }

    #[test]
    fn random_bytes_never_panic_payload_or_failure_decoders(
        bytes in vec(any::<u8>(), 0..400),
        secrets in vec(any::<[u8; 32]>(), 0..5),
    ) {
        if let Ok(p) = HopPayload::decode(&bytes) {
            // Whatever decodes re-encodes to the same bytes.
            prop_assert_eq!(p.encode(), bytes.clone());
        }
        if let Ok(m) = FailureMessage::decode(&bytes) {
            prop_assert_eq!(FailureMessage::decode(&m.encode()), Ok(m));
        }
        let secrets: Vec<_> = secrets.into_iter().map(beongae_onion::SharedSecret).collect();
        prop_assert_eq!(
            decrypt_error_packet(&secrets, &bytes),
            Err(FailureError::Unattributable)
        );
    }
}
