//! Property tests: decode(encode(m)) == m for every message type, and decoding
//! arbitrary bytes never panics.

#![allow(clippy::unwrap_used)]

use beongae_wire::msgs::{
    AcceptChannel, ChannelReady, ChannelReestablish, ClosingComplete, ClosingSig, ClosingSigned,
    CommitmentSigned, FeeRange, FundingCreated, FundingSigned, OnionPacketBytes, OpenChannel,
    RevokeAndAck, Shutdown, U16Bytes, UpdateAddHtlc, UpdateFailHtlc, UpdateFailMalformedHtlc,
    UpdateFee, UpdateFulfillHtlc, ONION_PACKET_LEN,
};
use beongae_wire::{
    ChainHash, ChannelId, ErrorMessage, Features, Init, Message, NetAddress, Ping, Pong, Reader,
    ShortChannelId, TlvStream, UnknownMessage, Warning, Writer,
};
use bitcoin::secp256k1::ecdsa::Signature;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use proptest::collection::vec;
use proptest::prelude::*;

/// Unknown odd TLV records of types above the ones the messages define.
fn extension() -> impl Strategy<Value = TlvStream> {
    proptest::collection::btree_map(
        (1000u64..u64::MAX / 2).prop_map(|t| t * 2 + 1),
        vec(any::<u8>(), 0..40),
        0..4,
    )
    .prop_map(|m| {
        let mut s = TlvStream::new();
        m.into_iter().for_each(|(t, v)| s.insert(t, v));
        s
    })
}

fn features() -> impl Strategy<Value = Features> {
    vec(any::<u8>(), 0..12).prop_map(|b| Features::from_be_bytes(&b))
}

fn net_address() -> impl Strategy<Value = NetAddress> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, port)| NetAddress::Ipv4 {
            addr: a.into(),
            port
        }),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, port)| NetAddress::Ipv6 {
            addr: a.into(),
            port
        }),
        (vec(any::<u8>(), 35), any::<u16>()).prop_map(|(o, port)| NetAddress::TorV3 {
            onion: o.try_into().unwrap(),
            port
        }),
        ("[a-z0-9.-]{0,60}", any::<u16>())
            .prop_map(|(host, port)| NetAddress::Hostname { host, port }),
        (prop_oneof![Just(3u8), 6u8..=255], vec(any::<u8>(), 0..20))
            .prop_map(|(typ, data)| NetAddress::Unknown { typ, data }),
    ]
}

fn init() -> impl Strategy<Value = Init> {
    (
        features(),
        features(),
        proptest::option::of(vec(any::<[u8; 32]>().prop_map(ChainHash::from), 0..4)),
        proptest::option::of(net_address()),
        extension(),
    )
        .prop_map(
            |(global_features, features, networks, remote_addr, extension)| Init {
                global_features,
                features,
                networks,
                remote_addr,
                extension,
            },
        )
}

fn point() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_filter_map("valid secret", |b| {
        SecretKey::from_slice(&b)
            .ok()
            .map(|k| PublicKey::from_secret_key(&Secp256k1::signing_only(), &k))
    })
}

fn signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_filter_map("valid secret", |(k, m)| {
        let k = SecretKey::from_slice(&k).ok()?;
        Some(Secp256k1::signing_only().sign_ecdsa(&bitcoin::secp256k1::Message::from_digest(m), &k))
    })
}

fn channel_id() -> impl Strategy<Value = ChannelId> {
    any::<[u8; 32]>().prop_map(ChannelId)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

/// BOLT 2 messages with random fields, TLVs present or not, and unknown odd records.
fn channel_message() -> impl Strategy<Value = Message> {
    let open = (
        (
            any::<[u8; 32]>(),
            channel_id(),
            any::<[u64; 6]>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
        ),
        (point(), point(), point(), point(), point(), point()),
        (
            any::<u8>(),
            proptest::option::of(bytes(40)),
            proptest::option::of(features()),
            extension(),
        ),
    )
        .prop_map(
            |(
                (chain, tmp, n, feerate, delay, max),
                (f, r, p, d, h, first),
                (flags, script, ct, ext),
            )| {
                Message::OpenChannel(OpenChannel {
                    chain_hash: ChainHash::from(chain),
                    temporary_channel_id: tmp,
                    funding_satoshis: n[0],
                    push_msat: n[1],
                    dust_limit_satoshis: n[2],
                    max_htlc_value_in_flight_msat: n[3],
                    channel_reserve_satoshis: n[4],
                    htlc_minimum_msat: n[5],
                    feerate_per_kw: feerate,
                    to_self_delay: delay,
                    max_accepted_htlcs: max,
                    funding_pubkey: f,
                    revocation_basepoint: r,
                    payment_basepoint: p,
                    delayed_payment_basepoint: d,
                    htlc_basepoint: h,
                    first_per_commitment_point: first,
                    channel_flags: flags,
                    upfront_shutdown_script: script,
                    channel_type: ct,
                    extension: ext,
                })
            },
        );
    let accept = (
        (
            channel_id(),
            any::<[u64; 4]>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
        ),
        (point(), point(), point(), point(), point(), point()),
        (
            proptest::option::of(bytes(40)),
            proptest::option::of(features()),
            extension(),
        ),
    )
        .prop_map(
            |((tmp, n, depth, delay, max), (f, r, p, d, h, first), (script, ct, ext))| {
                Message::AcceptChannel(AcceptChannel {
                    temporary_channel_id: tmp,
                    dust_limit_satoshis: n[0],
                    max_htlc_value_in_flight_msat: n[1],
                    channel_reserve_satoshis: n[2],
                    htlc_minimum_msat: n[3],
                    minimum_depth: depth,
                    to_self_delay: delay,
                    max_accepted_htlcs: max,
                    funding_pubkey: f,
                    revocation_basepoint: r,
                    payment_basepoint: p,
                    delayed_payment_basepoint: d,
                    htlc_basepoint: h,
                    first_per_commitment_point: first,
                    upfront_shutdown_script: script,
                    channel_type: ct,
                    extension: ext,
                })
            },
        );
    let closing = (
        channel_id(),
        bytes(40),
        bytes(40),
        any::<u64>(),
        any::<u32>(),
        proptest::option::of(signature()),
        proptest::option::of(signature()),
        proptest::option::of(signature()),
        extension(),
        any::<bool>(),
    )
        .prop_map(|(c, closer, closee, fee, locktime, s1, s2, s3, ext, sig)| {
            if sig {
                Message::ClosingSig(ClosingSig {
                    channel_id: c,
                    closer_scriptpubkey: U16Bytes(closer),
                    closee_scriptpubkey: U16Bytes(closee),
                    fee_satoshis: fee,
                    locktime,
                    closer_output_only: s1,
                    closee_output_only: s2,
                    closer_and_closee_outputs: s3,
                    extension: ext,
                })
            } else {
                Message::ClosingComplete(ClosingComplete {
                    channel_id: c,
                    closer_scriptpubkey: U16Bytes(closer),
                    closee_scriptpubkey: U16Bytes(closee),
                    fee_satoshis: fee,
                    locktime,
                    closer_output_only: s1,
                    closee_output_only: s2,
                    closer_and_closee_outputs: s3,
                    extension: ext,
                })
            }
        });
    let small = prop_oneof![
        (
            channel_id(),
            any::<[u8; 32]>(),
            any::<u16>(),
            signature(),
            extension()
        )
            .prop_map(
                |(c, txid, idx, s, ext)| Message::FundingCreated(FundingCreated {
                    temporary_channel_id: c,
                    funding_txid: txid,
                    funding_output_index: idx,
                    signature: s,
                    extension: ext
                })
            ),
        (channel_id(), signature(), extension()).prop_map(|(c, s, ext)| Message::FundingSigned(
            FundingSigned {
                channel_id: c,
                signature: s,
                extension: ext
            }
        )),
        (
            channel_id(),
            point(),
            proptest::option::of(any::<u64>()),
            extension()
        )
            .prop_map(|(c, p, alias, ext)| Message::ChannelReady(ChannelReady {
                channel_id: c,
                second_per_commitment_point: p,
                short_channel_id_alias: alias.map(ShortChannelId::from_u64),
                extension: ext
            })),
        (channel_id(), bytes(60), extension()).prop_map(|(c, s, ext)| Message::Shutdown(
            Shutdown {
                channel_id: c,
                scriptpubkey: U16Bytes(s),
                extension: ext
            }
        )),
        (
            channel_id(),
            any::<u64>(),
            signature(),
            proptest::option::of(any::<(u64, u64)>()),
            extension()
        )
            .prop_map(
                |(c, fee, s, range, ext)| Message::ClosingSigned(ClosingSigned {
                    channel_id: c,
                    fee_satoshis: fee,
                    signature: s,
                    fee_range: range.map(|(a, b)| FeeRange {
                        min_fee_satoshis: a,
                        max_fee_satoshis: b
                    }),
                    extension: ext
                })
            ),
        (
            channel_id(),
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            any::<u32>(),
            vec(any::<u8>(), ONION_PACKET_LEN),
            proptest::option::of(point()),
            extension()
        )
            .prop_map(
                |(c, id, amt, hash, cltv, onion, key, ext)| Message::UpdateAddHtlc(UpdateAddHtlc {
                    channel_id: c,
                    id,
                    amount_msat: amt,
                    payment_hash: hash,
                    cltv_expiry: cltv,
                    onion_routing_packet: OnionPacketBytes(Box::new(onion.try_into().unwrap())),
                    path_key: key,
                    extension: ext
                })
            ),
        (channel_id(), any::<u64>(), any::<[u8; 32]>(), extension()).prop_map(|(c, id, p, ext)| {
            Message::UpdateFulfillHtlc(UpdateFulfillHtlc {
                channel_id: c,
                id,
                payment_preimage: p,
                extension: ext,
            })
        }),
        (channel_id(), any::<u64>(), bytes(300), extension()).prop_map(|(c, id, r, ext)| {
            Message::UpdateFailHtlc(UpdateFailHtlc {
                channel_id: c,
                id,
                reason: U16Bytes(r),
                extension: ext,
            })
        }),
        (
            channel_id(),
            signature(),
            vec(signature(), 0..30),
            extension()
        )
            .prop_map(
                |(c, s, h, ext)| Message::CommitmentSigned(CommitmentSigned {
                    channel_id: c,
                    signature: s,
                    htlc_signatures: h,
                    extension: ext
                })
            ),
        (channel_id(), any::<[u8; 32]>(), point(), extension()).prop_map(|(c, s, p, ext)| {
            Message::RevokeAndAck(RevokeAndAck {
                channel_id: c,
                per_commitment_secret: s,
                next_per_commitment_point: p,
                extension: ext,
            })
        }),
        (channel_id(), any::<u32>(), extension()).prop_map(|(c, f, ext)| Message::UpdateFee(
            UpdateFee {
                channel_id: c,
                feerate_per_kw: f,
                extension: ext
            }
        )),
        (
            channel_id(),
            any::<u64>(),
            any::<[u8; 32]>(),
            any::<u16>(),
            extension()
        )
            .prop_map(|(c, id, h, code, ext)| Message::UpdateFailMalformedHtlc(
                UpdateFailMalformedHtlc {
                    channel_id: c,
                    id,
                    sha256_of_onion: h,
                    failure_code: code,
                    extension: ext
                }
            )),
        (
            channel_id(),
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            point(),
            extension()
        )
            .prop_map(|(c, n, r, s, p, ext)| Message::ChannelReestablish(
                ChannelReestablish {
                    channel_id: c,
                    next_commitment_number: n,
                    next_revocation_number: r,
                    your_last_per_commitment_secret: s,
                    my_current_per_commitment_point: p,
                    extension: ext
                }
            )),
    ];
    prop_oneof![open, accept, closing, small]
}

fn message() -> impl Strategy<Value = Message> {
    let data = || vec(any::<u8>(), 0..300);
    prop_oneof![
        init().prop_map(Message::Init),
        (any::<[u8; 32]>(), data(), extension()).prop_map(|(c, data, extension)| Message::Error(
            ErrorMessage {
                channel_id: ChannelId(c),
                data,
                extension
            }
        )),
        (any::<[u8; 32]>(), data(), extension()).prop_map(|(c, data, extension)| Message::Warning(
            Warning {
                channel_id: ChannelId(c),
                data,
                extension
            }
        )),
        (any::<u16>(), data(), extension()).prop_map(|(num_pong_bytes, ignored, extension)| {
            Message::Ping(Ping {
                num_pong_bytes,
                ignored,
                extension,
            })
        }),
        (data(), extension())
            .prop_map(|(ignored, extension)| Message::Pong(Pong { ignored, extension })),
        (
            (0u16..32767)
                .prop_map(|t| t * 2 + 1)
                // Odd types the registry knows (every BOLT 1/2/7 one)
                // are not "unknown": a known type never decodes as such.
                .prop_filter("known", |t| matches!(
                    Message::decode(&t.to_be_bytes()),
                    Ok(Message::Unknown(_))
                )),
            data()
        )
            .prop_map(|(typ, payload)| Message::Unknown(UnknownMessage { typ, payload })),
        channel_message(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_message_round_trips(m in message()) {
        let bytes = m.encode().unwrap();
        prop_assert_eq!(u16::from_be_bytes([bytes[0], bytes[1]]), m.typ());
        prop_assert_eq!(Message::decode(&bytes), Ok(m));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        if let Ok(m) = Message::decode(&bytes) {
            // Whatever decodes re-encodes and decodes to the same value.
            let again = m.encode().unwrap();
            prop_assert_eq!(Message::decode(&again), Ok(m));
        }
        let _ = TlvStream::decode(&bytes);
        let mut r = Reader::new(&bytes);
        while r.read_bigsize().is_ok() {}
    }

    #[test]
    fn known_type_with_random_payload_never_panics(typ in prop::sample::select(vec![1u16, 16, 17, 18, 19, 32, 33, 34, 35, 36, 38, 39, 40, 41, 128, 130, 131, 132, 133, 134, 135, 136]), payload in vec(any::<u8>(), 0..1500)) {
        let mut w = Writer::new();
        w.write_u16(typ);
        w.write_bytes(&payload);
        let _ = Message::decode(w.as_slice());
    }

    #[test]
    fn bigsize_round_trips(v in any::<u64>()) {
        let mut w = Writer::new();
        w.write_bigsize(v);
        prop_assert_eq!(Reader::new(w.as_slice()).read_bigsize(), Ok(v));
    }
}

#[test]
fn unknown_even_message_is_an_error_and_odd_is_kept() {
    assert_eq!(
        Message::decode(&[0x02, 0x00]),
        Err(beongae_wire::DecodeError::UnknownEvenMessage(512))
    );
    assert_eq!(
        Message::decode(&[0x80, 0x01, 0xaa]),
        Ok(Message::Unknown(UnknownMessage {
            typ: 0x8001,
            payload: vec![0xaa]
        }))
    );
}
