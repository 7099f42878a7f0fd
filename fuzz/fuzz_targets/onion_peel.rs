//! Fuzzes BOLT 4 onion processing (`beongae-onion`): arbitrary packets
//! peeled by a fixed node, and onions built from fuzz-chosen hop payloads
//! peeled hop by hop.
//!
//! Properties checked:
//! - `OnionPacket::decode` and `peel` never panic on any bytes; a decoded
//!   packet encodes back to exactly its 1,366 bytes;
//! - a peeling error maps to the BADONION failure BOLT 4 names (or none);
//! - an onion built for 1 to 5 hops (payloads from the input) peels, hop by
//!   hop, to exactly the payloads it was built with: forwards at every hop
//!   but the last, final at the last; and a packet with one byte flipped
//!   fails the HMAC check at the first hop.

#![no_main]

use beongae_onion::packet::{construct_onion, peel, OnionPacket, Peeled, ONION_PACKET_LEN};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use libfuzzer_sys::fuzz_target;

fn key(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b.max(1); 32]).expect("a valid key")
}

fuzz_target!(|data: &[u8]| {
    let secp = Secp256k1::new();
    arbitrary_packet(&secp, data);
    built_route(&secp, data);
});

fn arbitrary_packet(secp: &Secp256k1<bitcoin::secp256k1::All>, data: &[u8]) {
    let (packet, associated) = data.split_at(data.len().min(ONION_PACKET_LEN));
    let Ok(onion) = OnionPacket::decode(packet) else {
        return;
    };
    assert_eq!(onion.encode(), packet, "a decoded onion re-encodes to its bytes");
    match peel(secp, &key(7), &onion, associated) {
        Ok(p) => {
            let _ = (p.payload(), p.shared_secret());
        }
        Err(e) => {
            let _ = e.failure(&onion);
        }
    }
}

/// Input: `[hops, flip position (u16 BE), payload lengths..., payload
/// bytes...]`.
fn built_route(secp: &Secp256k1<bitcoin::secp256k1::All>, data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let hops = usize::from(n % 5) + 1;
    if rest.len() < 2 + hops {
        return;
    }
    let flip = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    let lens = &rest[2..2 + hops];
    let mut bytes = rest[2 + hops..].iter().copied().cycle();
    let keys: Vec<SecretKey> = (0..hops).map(|i| key(10 + i as u8)).collect();
    let payloads: Vec<Vec<u8>> = lens
        .iter()
        .map(|&l| (0..usize::from(l).max(2)).map(|_| bytes.next().unwrap_or(0)).collect())
        .collect();
    let route: Vec<(PublicKey, Vec<u8>)> = keys
        .iter()
        .zip(&payloads)
        .map(|(k, p)| (k.public_key(secp), p.clone()))
        .collect();
    let associated = [0x42u8; 32];
    // Too large a route is refused, never built wrong.
    let Ok(onion) = construct_onion(secp, &key(99), &route, &associated) else {
        // BOLT 4 `shift_size`: the bigsize length, the payload, the HMAC.
        let needed: usize = payloads
            .iter()
            .map(|p| if p.len() < 0xfd { 1 } else { 3 } + p.len() + 32)
            .sum();
        assert!(needed > 1300, "a route of {needed} bytes was refused");
        return;
    };
    let mut at = onion.clone();
    for (i, k) in keys.iter().enumerate() {
        match peel(secp, k, &at, &associated).expect("our own onion peels") {
            Peeled::Forward { payload, next, .. } => {
                assert!(i + 1 < hops, "hop {i} of {hops} was told to forward");
                assert_eq!(payload, payloads[i]);
                at = next;
            }
            Peeled::Final { payload, .. } => {
                assert_eq!(i + 1, hops, "hop {i} of {hops} was told it is the last");
                assert_eq!(payload, payloads[i]);
            }
        }
    }
    // One byte flipped: the first hop refuses it (version, key or HMAC).
    let mut bytes = onion.encode();
    let at = flip % bytes.len();
    bytes[at] ^= 1;
    if let Ok(bad) = OnionPacket::decode(&bytes) {
        assert!(peel(secp, &keys[0], &bad, &associated).is_err(), "a flipped byte at {at} peeled");
    }
}
