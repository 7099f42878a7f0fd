//! Property tests: decode(encode(m)) == m for every message type, and decoding
//! arbitrary bytes never panics.

#![allow(clippy::unwrap_used)]

use beongae_wire::{
    ChainHash, ChannelId, ErrorMessage, Features, Init, Message, NetAddress, Ping, Pong, Reader,
    TlvStream, UnknownMessage, Warning, Writer,
};
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
                .prop_filter("known", |t| ![1, 17, 19].contains(t)),
            data()
        )
            .prop_map(|(typ, payload)| Message::Unknown(UnknownMessage { typ, payload })),
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
    fn known_type_with_random_payload_never_panics(typ in prop::sample::select(vec![1u16, 16, 17, 18, 19]), payload in vec(any::<u8>(), 0..200)) {
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
        Message::decode(&[0x00, 0x20]),
        Err(beongae_wire::DecodeError::UnknownEvenMessage(32))
    );
    assert_eq!(
        Message::decode(&[0x80, 0x01, 0xaa]),
        Ok(Message::Unknown(UnknownMessage {
            typ: 0x8001,
            payload: vec![0xaa]
        }))
    );
}
