//! BOLT 7 `gossip_queries` messages against `bolt07/extended-queries.json`
//! (copied unchanged from lightning/bolts a3772650d8ebc06acf457fcadf97968ebfc4dfff,
//! as `../shared/vectors/bolt07/`): every message decodes to exactly the
//! fields of the vector; uncompressed ones encode back to the same bytes,
//! zlib ones (which we read but never send) encode to the uncompressed form,
//! which decodes to the same message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use beongae_wire::msgs::gossip_queries::{Checksums, QueryOption, Timestamps};
use beongae_wire::msgs::Message;
use beongae_wire::ShortChannelId;
use serde_json::Value;

const VECTORS: &str = include_str!("vectors/extended-queries.json");

/// "BLOCKxTXxOUT" as in the vectors.
fn scid(s: &str) -> ShortChannelId {
    let p: Vec<u32> = s.split('x').map(|n| n.parse().unwrap()).collect();
    ShortChannelId::new(p[0], p[1], u16::try_from(p[2]).unwrap()).unwrap()
}

fn scids(v: &Value) -> Vec<ShortChannelId> {
    v["array"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| scid(s.as_str().unwrap()))
        .collect()
}

fn chain(v: &Value) -> [u8; 32] {
    hex::decode(v["chainHash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn pairs(v: &Value, a: &str, b: &str) -> Vec<(u32, u32)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[a].as_u64().unwrap() as u32, p[b].as_u64().unwrap() as u32))
        .collect()
}

#[test]
fn extended_queries_vectors() {
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(vectors.len(), 10);
    for (i, v) in vectors.iter().enumerate() {
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let m = &v["msg"];
        let decoded = Message::decode(&bytes).unwrap();
        let compressed = m["shortChannelIds"]["encoding"] == "COMPRESSED_ZLIB"
            || m["timestamps"]["encoding"] == "COMPRESSED_ZLIB"
            || m["tlvStream"]["records"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["encoding"] == "COMPRESSED_ZLIB"));
        match (&decoded, m["type"].as_str().unwrap()) {
            (Message::QueryChannelRange(q), "QueryChannelRange") => {
                assert_eq!(q.chain_hash.to_bytes(), chain(m));
                assert_eq!(
                    q.first_blocknum as u64,
                    m["firstBlockNum"].as_u64().unwrap()
                );
                assert_eq!(
                    q.number_of_blocks as u64,
                    m["numberOfBlocks"].as_u64().unwrap()
                );
                // "WANT_TIMESTAMPS | WANT_CHECKSUMS": bits 0 and 1.
                let want = m["tlvStream"]["records"]
                    .as_array()
                    .unwrap()
                    .first()
                    .map(|_| QueryOption(3));
                assert_eq!(q.query_option, want, "vector {i}");
            }
            (Message::ReplyChannelRange(r), "ReplyChannelRange") => {
                assert_eq!(r.chain_hash.to_bytes(), chain(m));
                assert_eq!(
                    r.first_blocknum as u64,
                    m["firstBlockNum"].as_u64().unwrap()
                );
                assert_eq!(
                    r.number_of_blocks as u64,
                    m["numberOfBlocks"].as_u64().unwrap()
                );
                assert_eq!(r.sync_complete as u64, m["complete"].as_u64().unwrap());
                assert_eq!(
                    r.encoded_short_ids.0,
                    scids(&m["shortChannelIds"]),
                    "vector {i}"
                );
                let ts = m
                    .get("timestamps")
                    .map(|t| Timestamps(pairs(&t["timestamps"], "timestamp1", "timestamp2")));
                assert_eq!(r.timestamps, ts, "vector {i}");
                let cs = m
                    .get("checksums")
                    .map(|c| Checksums(pairs(&c["checksums"], "checksum1", "checksum2")));
                assert_eq!(r.checksums, cs, "vector {i}");
            }
            (Message::QueryShortChannelIds(q), "QueryShortChannelIds") => {
                assert_eq!(q.chain_hash.to_bytes(), chain(m));
                assert_eq!(
                    q.encoded_short_ids.0,
                    scids(&m["shortChannelIds"]),
                    "vector {i}"
                );
                let flags = m["tlvStream"]["records"]
                    .as_array()
                    .unwrap()
                    .first()
                    .map(|r| {
                        r["array"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|f| f.as_u64().unwrap())
                            .collect()
                    });
                assert_eq!(
                    q.query_flags.as_ref().map(|f| f.0.clone()),
                    flags,
                    "vector {i}"
                );
            }
            (other, typ) => panic!("vector {i}: {typ} decoded as {other:?}"),
        }
        let encoded = decoded.encode().unwrap();
        if compressed {
            assert_ne!(encoded, bytes, "vector {i}: we never send zlib");
            assert_eq!(Message::decode(&encoded).unwrap(), decoded, "vector {i}");
        } else {
            assert_eq!(encoded, bytes, "vector {i}");
        }
    }
}

#[test]
fn bad_encodings_are_errors_not_panics() {
    // query_short_channel_ids with encoding_type 2, with a list that is not
    // whole ids, and with zlib data that does not inflate.
    let chain = [0x0f; 32];
    for list in [vec![2u8], vec![0, 1, 2, 3], vec![1, 0x78, 0x9c, 0xff, 0xff]] {
        let mut b = vec![0x01, 0x05];
        b.extend_from_slice(&chain);
        b.extend_from_slice(&(list.len() as u16).to_be_bytes());
        b.extend_from_slice(&list);
        assert!(Message::decode(&b).is_err(), "{list:?}");
    }
}

/// Announcements keep data after their known fields (BOLT 7 allows newer
/// fields there; the signature covers them) and re-encode it unchanged;
/// a message cut short is an error.
#[test]
fn announcements_keep_excess_data() {
    use beongae_wire::msgs::ChannelUpdate;
    use beongae_wire::WireMessage;
    let key = bitcoin::secp256k1::SecretKey::from_slice(&[5; 32]).unwrap();
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let sig = secp.sign_ecdsa(&bitcoin::secp256k1::Message::from_digest([1; 32]), &key);
    let u = ChannelUpdate {
        signature: sig,
        chain_hash: bitcoin::constants::ChainHash::REGTEST,
        short_channel_id: ShortChannelId::new(1, 2, 3).unwrap(),
        timestamp: 7,
        message_flags: 1,
        channel_flags: 2,
        cltv_expiry_delta: 40,
        htlc_minimum_msat: 1,
        fee_base_msat: 2,
        fee_proportional_millionths: 3,
        htlc_maximum_msat: 4,
        excess_data: vec![0xde, 0xad],
    };
    let bytes = u.encode().unwrap();
    assert_eq!(
        bytes.len(),
        2 + 64 + 32 + 8 + 4 + 1 + 1 + 2 + 8 + 4 + 4 + 8 + 2
    );
    let Message::ChannelUpdate(back) = Message::decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(back, u);
    assert!(back.is_disabled());
    let without = ChannelUpdate {
        excess_data: vec![],
        ..u.clone()
    };
    assert_ne!(without.signed_hash().unwrap(), u.signed_hash().unwrap());
    for cut in [3, 66, bytes.len() - 3] {
        assert!(Message::decode(&bytes[..cut]).is_err(), "{cut}");
    }
}
