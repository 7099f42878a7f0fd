//! BOLT 4 §"Test Vector": `onion-test.json` (variable-length hop payloads)
//! and `onion-error-test.json` (returning errors), byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use beongae_onion::crypto::{AMMAG, UM};
use beongae_onion::failure::{error_packet_plain, failure_payload};
use beongae_onion::{
    construct_onion, decrypt_error_packet, obfuscate_error_packet, peel, route_keys,
    FailureMessage, HopPayload, OnionPacket, Peeled,
};
use beongae_wire::{Msat, Reader, ShortChannelId};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use serde_json::Value;

const ONION_TEST: &str = include_str!("vectors/onion-test.json");
const ONION_ERROR_TEST: &str = include_str!("vectors/onion-error-test.json");

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn array32(v: &Value) -> [u8; 32] {
    bytes(v).try_into().expect("32 bytes")
}

fn pubkey(v: &Value) -> PublicKey {
    PublicKey::from_slice(&bytes(v)).expect("valid pubkey")
}

/// The vector's payloads carry their `bigsize` length; our API takes the
/// bare `payload`.
fn strip_length(prefixed: &[u8]) -> Vec<u8> {
    let mut r = Reader::new(prefixed);
    let len = r.read_bigsize().unwrap() as usize;
    let payload = r.read_rest().to_vec();
    assert_eq!(payload.len(), len);
    payload
}

struct OnionVector {
    session_key: SecretKey,
    associated_data: Vec<u8>,
    hops: Vec<(PublicKey, Vec<u8>)>,
    onion: Vec<u8>,
    node_secrets: Vec<SecretKey>,
}

fn onion_vector() -> OnionVector {
    let v: Value = serde_json::from_str(ONION_TEST).unwrap();
    let g = &v["generate"];
    OnionVector {
        session_key: SecretKey::from_slice(&bytes(&g["session_key"])).unwrap(),
        associated_data: bytes(&g["associated_data"]),
        hops: g["hops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (pubkey(&h["pubkey"]), strip_length(&bytes(&h["payload"]))))
            .collect(),
        onion: bytes(&v["onion"]),
        node_secrets: v["decode"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| SecretKey::from_slice(&bytes(s)).unwrap())
            .collect(),
    }
}

#[test]
fn onion_test_json_construct_matches_byte_for_byte() {
    let secp = Secp256k1::new();
    let v = onion_vector();
    assert_eq!(v.hops.len(), 5);
    let onion = construct_onion(&secp, &v.session_key, &v.hops, &v.associated_data).unwrap();
    let encoded = onion.encode();
    assert_eq!(encoded.len(), 1366);
    assert_eq!(hex::encode(&encoded), hex::encode(&v.onion));
    assert_eq!(OnionPacket::decode(&v.onion).unwrap(), onion);
}

#[test]
fn onion_test_json_peels_at_every_hop() {
    let secp = Secp256k1::new();
    let v = onion_vector();
    let keys = route_keys(&secp, &v.session_key, v.hops.iter().map(|h| h.0)).unwrap();
    let mut onion = OnionPacket::decode(&v.onion).unwrap();
    for (i, secret) in v.node_secrets.iter().enumerate() {
        assert_eq!(secret.public_key(&secp), v.hops[i].0, "decode key {i}");
        // The ephemeral key each hop sees is the one the origin computed.
        assert_eq!(
            onion.public_key,
            keys[i].ephemeral_key.serialize(),
            "hop {i}"
        );
        let peeled = peel(&secp, secret, &onion, &v.associated_data).unwrap();
        assert_eq!(peeled.payload(), &v.hops[i].1[..], "payload of hop {i}");
        assert_eq!(peeled.shared_secret(), &keys[i].shared_secret, "hop {i}");
        match peeled {
            Peeled::Forward { next, .. } => {
                assert!(i < 4, "hop {i} must be final");
                // Re-encoding the next onion round-trips.
                assert_eq!(OnionPacket::decode(&next.encode()).unwrap(), next);
                onion = next;
            }
            Peeled::Final { .. } => assert_eq!(i, 4, "only the last hop is final"),
        }
    }
}

#[test]
fn onion_test_json_payloads_decode() {
    let v = onion_vector();
    for (i, (_, payload)) in v.hops.iter().enumerate() {
        let p = HopPayload::decode(payload).unwrap();
        // Byte-for-byte re-encoding, including unknown odd records.
        assert_eq!(&p.encode(), payload, "hop {i}");
        if i < 4 {
            let f = p.into_forward().unwrap();
            assert_eq!(f.short_channel_id, ShortChannelId::from_u64(i as u64 + 1));
        } else {
            let f = p.into_final().unwrap();
            assert_eq!(f.amt_to_forward, Msat::from_msat(10_000));
            assert_eq!(f.outgoing_cltv_value, 1_000);
            let pd = f.payment_data.unwrap();
            assert_eq!(pd.total_msat, Msat::from_msat(10_000));
            assert_eq!(pd.payment_secret[..4], [0x24, 0xa3, 0x35, 0x62]);
        }
    }
    let first = HopPayload::decode(&v.hops[0].1).unwrap();
    assert_eq!(first.amt_to_forward, Some(Msat::from_msat(15_000)));
    assert_eq!(first.outgoing_cltv_value, Some(1_500));
    // Hop 1 carries an unknown odd record (type 513), which is kept.
    let second = HopPayload::decode(&v.hops[1].1).unwrap();
    assert_eq!(second.extension.get(513).map(<[u8]>::len), Some(60));
}

#[test]
fn onion_test_json_tampering_is_detected() {
    let secp = Secp256k1::new();
    let v = onion_vector();
    let onion = OnionPacket::decode(&v.onion).unwrap();
    let secret = &v.node_secrets[0];

    let mut bad = onion.clone();
    bad.hop_payloads[700] ^= 1;
    assert_eq!(
        peel(&secp, secret, &bad, &v.associated_data),
        Err(beongae_onion::OnionError::InvalidHmac)
    );
    assert_eq!(
        peel(&secp, secret, &onion, &[0u8; 32]),
        Err(beongae_onion::OnionError::InvalidHmac)
    );
    let mut bad = onion.clone();
    bad.version = 1;
    let err = peel(&secp, secret, &bad, &v.associated_data).unwrap_err();
    assert_eq!(err, beongae_onion::OnionError::InvalidVersion(1));
    assert_eq!(
        err.failure(&bad).map(|f| f.code()),
        Some(0x8000 | 0x4000 | 4)
    );
    let mut bad = onion.clone();
    bad.public_key[0] = 0x04;
    let err = peel(&secp, secret, &bad, &v.associated_data).unwrap_err();
    assert_eq!(err, beongae_onion::OnionError::InvalidKey);
    assert_eq!(
        err.failure(&bad),
        Some(FailureMessage::InvalidOnionKey {
            sha256_of_onion: bad.sha256()
        })
    );
}

#[test]
fn onion_error_test_json_every_value() {
    let secp = Secp256k1::new();
    let v: Value = serde_json::from_str(ONION_ERROR_TEST).unwrap();
    let g = &v["generate"];
    let session_key = SecretKey::from_slice(&bytes(&g["session_key"])).unwrap();
    let hops = g["hops"].as_array().unwrap();
    let keys = route_keys(
        &secp,
        &session_key,
        hops.iter().map(|h| pubkey(&h["pubkey"])),
    )
    .unwrap();
    let secrets: Vec<_> = keys.iter().map(|k| k.shared_secret).collect();

    for (i, h) in hops.iter().enumerate() {
        assert_eq!(h["version"].as_u64(), Some(0));
        assert_eq!(secrets[i].0, array32(&h["hop_shared_secret"]), "ss {i}");
        assert_eq!(secrets[i].key(AMMAG), array32(&h["ammag_key"]), "ammag {i}");
        if !h["um_key"].is_null() {
            assert_eq!(secrets[i].key(UM), array32(&h["um_key"]), "um {i}");
        }
    }

    // The erring node, hops[4], builds the packet.
    let failuremsg = bytes(&g["failure_message"]);
    assert_eq!(
        FailureMessage::decode(&failuremsg),
        Ok(FailureMessage::TemporaryNodeFailure)
    );
    assert_eq!(FailureMessage::TemporaryNodeFailure.encode(), failuremsg);
    let erring = &hops[4];
    assert_eq!(
        hex::encode(failure_payload(&failuremsg).unwrap()),
        hex::encode(bytes(&erring["payload"]))
    );
    let mut packet = error_packet_plain(&secrets[4], &failuremsg).unwrap();
    assert_eq!(packet.len(), 32 + 260);

    // It and every hop back to the origin obfuscate it with their ammag key.
    for ss in secrets.iter().rev() {
        obfuscate_error_packet(ss, &mut packet);
    }
    assert_eq!(hex::encode(&packet), hex::encode(bytes(&v["errorpacket"])));

    // The origin attributes it to hops[4].
    let decrypted = decrypt_error_packet(&secrets, &packet).unwrap();
    assert_eq!(decrypted.hop, 4);
    assert_eq!(decrypted.failuremsg, failuremsg);
    assert_eq!(decrypted.message, FailureMessage::TemporaryNodeFailure);
    assert!(decrypted.message.is_node() && !decrypted.message.is_permanent());
}

#[test]
fn onion_error_test_json_build_error_packet_from_the_erring_node() {
    let secp = Secp256k1::new();
    let v: Value = serde_json::from_str(ONION_ERROR_TEST).unwrap();
    let g = &v["generate"];
    let session_key = SecretKey::from_slice(&bytes(&g["session_key"])).unwrap();
    let hops = g["hops"].as_array().unwrap();
    let keys = route_keys(
        &secp,
        &session_key,
        hops.iter().map(|h| pubkey(&h["pubkey"])),
    )
    .unwrap();
    let secrets: Vec<_> = keys.iter().map(|k| k.shared_secret).collect();
    let mut packet =
        beongae_onion::build_error_packet(&secrets[4], &FailureMessage::TemporaryNodeFailure)
            .unwrap();
    for ss in secrets[..4].iter().rev() {
        obfuscate_error_packet(ss, &mut packet);
    }
    assert_eq!(packet, bytes(&v["errorpacket"]));
    // An origin with the wrong route cannot attribute it.
    assert_eq!(
        decrypt_error_packet(&secrets[..4], &packet),
        Err(beongae_onion::FailureError::Unattributable)
    );
}
