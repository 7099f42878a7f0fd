//! BOLT 1 Appendix A (BigSize), B (TLV), C (message extension) and D (signed
//! integers), transcribed from `01-messaging.md` in `lightning/bolts`.

#![allow(clippy::unwrap_used)]

use beongae_wire::{DecodeError, Init, Message, Reader, ShortChannelId, TlvStream, Writer};
use bitcoin::secp256k1::PublicKey;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test vector hex")
}

// ---------------------------------------------------------------- Appendix A

/// BOLT 1 Appendix A "BigSize Decoding Tests" and "BigSize Encoding Tests".
#[test]
fn appendix_a_bigsize() {
    let ok: &[(&str, u64, &str)] = &[
        ("zero", 0, "00"),
        ("one byte high", 252, "fc"),
        ("two byte low", 253, "fd00fd"),
        ("two byte high", 65535, "fdffff"),
        ("four byte low", 65536, "fe00010000"),
        ("four byte high", 4294967295, "feffffffff"),
        ("eight byte low", 4294967296, "ff0000000100000000"),
        (
            "eight byte high",
            18446744073709551615,
            "ffffffffffffffffff",
        ),
    ];
    for (name, value, bytes) in ok {
        let bytes = unhex(bytes);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_bigsize(), Ok(*value), "{name}");
        assert!(r.is_empty(), "{name}");
        let mut w = Writer::new();
        w.write_bigsize(*value);
        assert_eq!(w.as_slice(), &bytes[..], "{name}");
    }
    let non_canonical = DecodeError::NonCanonicalBigSize;
    let bad: &[(&str, &str, DecodeError)] = &[
        ("two byte not canonical", "fd00fc", non_canonical.clone()),
        (
            "four byte not canonical",
            "fe0000ffff",
            non_canonical.clone(),
        ),
        (
            "eight byte not canonical",
            "ff00000000ffffffff",
            non_canonical,
        ),
        (
            "two byte short read",
            "fd00",
            DecodeError::ShortRead { needed: 1 },
        ),
        (
            "four byte short read",
            "feffff",
            DecodeError::ShortRead { needed: 2 },
        ),
        (
            "eight byte short read",
            "ffffffffff",
            DecodeError::ShortRead { needed: 4 },
        ),
        ("one byte no read", "", DecodeError::ShortRead { needed: 1 }),
        (
            "two byte no read",
            "fd",
            DecodeError::ShortRead { needed: 2 },
        ),
        (
            "four byte no read",
            "fe",
            DecodeError::ShortRead { needed: 4 },
        ),
        (
            "eight byte no read",
            "ff",
            DecodeError::ShortRead { needed: 8 },
        ),
    ];
    for (name, bytes, err) in bad {
        assert_eq!(
            Reader::new(&unhex(bytes)).read_bigsize(),
            Err(err.clone()),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------- Appendix B

/// The `n1` namespace of Appendix B.
#[derive(Debug, Default, PartialEq)]
struct N1 {
    tlv1_amount_msat: Option<u64>,
    tlv2_scid: Option<ShortChannelId>,
    tlv3: Option<(PublicKey, u64, u64)>,
    tlv4_cltv_delta: Option<u16>,
}

fn decode_n1(bytes: &[u8]) -> Result<N1, DecodeError> {
    let mut s = TlvStream::decode(bytes)?;
    let n1 = N1 {
        tlv1_amount_msat: s.take_with(1, |r| r.read_tu64())?,
        tlv2_scid: s.take_with(2, |r| r.read_short_channel_id())?,
        tlv3: s.take_with(3, |r| Ok((r.read_point()?, r.read_u64()?, r.read_u64()?)))?,
        tlv4_cltv_delta: s.take_with(254, |r| r.read_u16())?,
    };
    s.into_extension()?;
    Ok(n1)
}

/// The `n2` namespace of Appendix B.
#[derive(Debug, Default, PartialEq)]
struct N2 {
    tlv1_amount_msat: Option<u64>,
    tlv2_cltv_expiry: Option<u32>,
}

fn decode_n2(bytes: &[u8]) -> Result<N2, DecodeError> {
    let mut s = TlvStream::decode(bytes)?;
    let n2 = N2 {
        tlv1_amount_msat: s.take_with(0, |r| r.read_tu64())?,
        tlv2_cltv_expiry: s.take_with(11, |r| r.read_tu32())?,
    };
    s.into_extension()?;
    Ok(n2)
}

/// "value truncated": `0x0f fd0201` then 512 zero bytes, one short of the 513
/// the length claims (built here rather than pasted as 1024 hex digits).
fn value_truncated() -> &'static str {
    Box::leak(format!("0f fd0201 {}", "00".repeat(512)).into_boxed_str())
}

/// Appendix B "TLV Decoding Failures": in any namespace, with the reason.
fn failures_any_namespace() -> Vec<(&'static str, DecodeError)> {
    vec![
        ("fd", DecodeError::ShortRead { needed: 2 }), // type truncated
        ("fd01", DecodeError::ShortRead { needed: 1 }), // type truncated
        ("fd0001 00", DecodeError::NonCanonicalBigSize), // not minimally encoded type
        ("fd0101", DecodeError::ShortRead { needed: 1 }), // missing length
        ("0f fd", DecodeError::ShortRead { needed: 2 }), // length truncated
        ("0f fd26", DecodeError::ShortRead { needed: 1 }), // length truncated
        (
            "0f fd2602",
            DecodeError::TlvLengthExceeds {
                typ: 15,
                length: 0x2602,
                remaining: 0,
            },
        ), // missing value
        ("0f fd0001 00", DecodeError::NonCanonicalBigSize), // not minimally encoded length
        (
            value_truncated(),
            DecodeError::TlvLengthExceeds {
                typ: 15,
                length: 0x0201,
                remaining: 0x0200,
            },
        ), // value truncated
    ]
}

/// Appendix B: "in either namespace": unknown even types.
fn failures_unknown_even() -> Vec<(&'static str, DecodeError)> {
    vec![
        ("12 00", DecodeError::UnknownEvenTlv(0x12)),
        ("fd0102 00", DecodeError::UnknownEvenTlv(0x102)),
        ("fe01000002 00", DecodeError::UnknownEvenTlv(0x0100_0002)),
        (
            "ff0100000000000002 00",
            DecodeError::UnknownEvenTlv(0x0100_0000_0000_0002),
        ),
    ]
}

#[test]
fn appendix_b_failures_in_any_namespace() {
    for (stream, err) in failures_any_namespace()
        .into_iter()
        .chain(failures_unknown_even())
    {
        let bytes = unhex(stream);
        assert_eq!(decode_n1(&bytes), Err(err.clone()), "n1 {stream:.40}");
        assert_eq!(decode_n2(&bytes), Err(err), "n2 {stream:.40}");
    }
}

/// Appendix B: failures only in `n1`.
#[test]
fn appendix_b_failures_in_n1() {
    let not_minimal = DecodeError::NonMinimalTruncatedInt;
    let cases: Vec<(&str, DecodeError)> = vec![
        ("01 09 ffffffffffffffffff", DecodeError::TruncatedIntTooLong { len: 9, max: 8 }),
        ("01 01 00", not_minimal.clone()),
        ("01 02 0001", not_minimal.clone()),
        ("01 03 000100", not_minimal.clone()),
        ("01 04 00010000", not_minimal.clone()),
        ("01 05 0001000000", not_minimal.clone()),
        ("01 06 000100000000", not_minimal.clone()),
        ("01 07 00010000000000", not_minimal.clone()),
        ("01 08 0001000000000000", not_minimal),
        ("02 07 01010101010101", DecodeError::ShortRead { needed: 1 }),
        ("02 09 010101010101010101", DecodeError::TrailingBytes(1)),
        (
            "03 21 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb",
            DecodeError::ShortRead { needed: 8 },
        ),
        (
            "03 29 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb0000000000000001",
            DecodeError::ShortRead { needed: 8 },
        ),
        (
            "03 30 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb000000000000000100000000000001",
            DecodeError::ShortRead { needed: 1 },
        ),
        (
            "03 31 043da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb00000000000000010000000000000002",
            DecodeError::InvalidPoint,
        ),
        (
            "03 32 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb0000000000000001000000000000000001",
            DecodeError::TrailingBytes(1),
        ),
        ("fd00fe 00", DecodeError::ShortRead { needed: 2 }),
        ("fd00fe 01 01", DecodeError::ShortRead { needed: 1 }),
        ("fd00fe 03 010101", DecodeError::TrailingBytes(1)),
        ("00 00", DecodeError::UnknownEvenTlv(0)),
    ];
    for (stream, err) in cases {
        assert_eq!(decode_n1(&unhex(stream)), Err(err), "{stream}");
    }
}

/// Appendix B "TLV Decoding Successes": ignored in either namespace.
const IGNORED_STREAMS: [&str; 7] = [
    "",
    "21 00",
    "fd0201 00",
    "fd00fd 00",
    "fd00ff 00",
    "fe02000001 00",
    "ff0200000000000001 00",
];

#[test]
fn appendix_b_successes_ignored() {
    for stream in IGNORED_STREAMS {
        let bytes = unhex(stream);
        assert_eq!(decode_n1(&bytes), Ok(N1::default()), "n1 {stream}");
        assert_eq!(decode_n2(&bytes), Ok(N2::default()), "n2 {stream}");
        // The unknown odd record is kept so the stream re-encodes to the same bytes.
        let s = TlvStream::decode(&bytes).unwrap().into_extension().unwrap();
        let mut w = Writer::new();
        s.write(&mut w);
        assert_eq!(w.as_slice(), &bytes[..]);
    }
}

fn n1_successes() -> Vec<(&'static str, N1)> {
    let amount = |a| N1 {
        tlv1_amount_msat: Some(a),
        ..N1::default()
    };
    let node_id: PublicKey = "023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb"
        .parse()
        .unwrap();
    vec![
        ("01 00", amount(0)),
        ("01 01 01", amount(1)),
        ("01 02 0100", amount(256)),
        ("01 03 010000", amount(65536)),
        ("01 04 01000000", amount(16777216)),
        ("01 05 0100000000", amount(4294967296)),
        ("01 06 010000000000", amount(1099511627776)),
        ("01 07 01000000000000", amount(281474976710656)),
        ("01 08 0100000000000000", amount(72057594037927936)),
        ("02 08 0000000000000226", N1 { tlv2_scid: Some(ShortChannelId::new(0, 0, 550).unwrap()), ..N1::default() }),
        (
            "03 31 023da092f6980e58d2c037173180e9a465476026ee50f96695963e8efe436f54eb00000000000000010000000000000002",
            N1 { tlv3: Some((node_id, 1, 2)), ..N1::default() },
        ),
        ("fd00fe 02 0226", N1 { tlv4_cltv_delta: Some(550), ..N1::default() }),
    ]
}

#[test]
fn appendix_b_successes_in_n1() {
    for (stream, expected) in n1_successes() {
        assert_eq!(decode_n1(&unhex(stream)), Ok(expected), "{stream}");
    }
}

/// Appendix B "TLV Stream Decoding Failure": appending an invalid stream to a
/// valid one fails; appending a higher-numbered valid stream to a
/// lower-numbered one does not.
#[test]
fn appendix_b_stream_appending() {
    let valid: Vec<(&str, u64)> = n1_successes()
        .into_iter()
        .map(|(s, _)| (s, TlvStream::decode(&unhex(s)).unwrap().records()[0].typ))
        .collect();
    for (v, _) in &valid {
        for (bad, _) in failures_any_namespace()
            .into_iter()
            .chain(failures_unknown_even())
        {
            let mut bytes = unhex(v);
            bytes.extend(unhex(bad));
            assert!(decode_n1(&bytes).is_err(), "{v} + {bad:.40}");
        }
    }
    for (lo, lo_typ) in &valid {
        for (hi, hi_typ) in &valid {
            let mut bytes = unhex(lo);
            bytes.extend(unhex(hi));
            let result = decode_n1(&bytes);
            if lo_typ < hi_typ {
                assert!(result.is_ok(), "{lo} + {hi}: {result:?}");
            } else {
                assert!(
                    matches!(result, Err(DecodeError::TlvNotIncreasing { .. })),
                    "{lo} + {hi}"
                );
            }
        }
    }
    let cases = [
        (
            "02 08 0000000000000226 01 01 2a",
            DecodeError::TlvNotIncreasing {
                previous: 2,
                found: 1,
            },
        ),
        (
            "02 08 0000000000000231 02 08 0000000000000451",
            DecodeError::TlvNotIncreasing {
                previous: 2,
                found: 2,
            },
        ),
        (
            "1f 00 0f 01 2a",
            DecodeError::TlvNotIncreasing {
                previous: 0x1f,
                found: 0x0f,
            },
        ),
        (
            "1f 00 1f 01 2a",
            DecodeError::TlvNotIncreasing {
                previous: 0x1f,
                found: 0x1f,
            },
        ),
    ];
    for (stream, err) in cases {
        assert_eq!(decode_n1(&unhex(stream)), Err(err), "{stream}");
    }
    assert_eq!(
        decode_n2(&unhex("ffffffffffffffffff 00 00 00")),
        Err(DecodeError::TlvNotIncreasing {
            previous: u64::MAX,
            found: 0
        })
    );
}

// ---------------------------------------------------------------- Appendix C

/// BOLT 1 Appendix C "Message Extension" on `init`.
#[test]
fn appendix_c_message_extension() {
    let plain = Message::decode(&unhex("001000000000")).unwrap();
    assert_eq!(plain, Message::Init(Init::default()));

    let bytes = unhex("001000000000c9012acb0104");
    let Message::Init(init) = Message::decode(&bytes).unwrap() else {
        panic!("not init")
    };
    assert_eq!(
        init.extension
            .records()
            .iter()
            .map(|r| r.typ)
            .collect::<Vec<_>>(),
        vec![0xc9, 0xcb]
    );
    // Kept verbatim, so the bytes (and any signature over them) survive.
    assert_eq!(Message::Init(init).encode().unwrap(), bytes);

    assert_eq!(
        Message::decode(&unhex("00100000000001")),
        Err(DecodeError::ShortRead { needed: 1 })
    );
    assert_eq!(
        Message::decode(&unhex("001000000000ca012a")),
        Err(DecodeError::UnknownEvenTlv(0xca))
    );
    assert_eq!(
        Message::decode(&unhex("001000000000c90101c90102")),
        Err(DecodeError::TlvNotIncreasing {
            previous: 0xc9,
            found: 0xc9
        })
    );
}

// ---------------------------------------------------------------- Appendix D

/// BOLT 1 Appendix D: signed integers in big-endian two's complement; each
/// vector uses the smallest of `s8`/`s16`/`s32`/`s64` that holds the value.
#[test]
fn appendix_d_signed_integers() {
    let vectors: &[(i64, &str)] = &[
        (0, "00"),
        (42, "2a"),
        (-42, "d6"),
        (127, "7f"),
        (-128, "80"),
        (128, "0080"),
        (-129, "ff7f"),
        (15000, "3a98"),
        (-15000, "c568"),
        (32767, "7fff"),
        (-32768, "8000"),
        (32768, "00008000"),
        (-32769, "ffff7fff"),
        (21000000, "01406f40"),
        (-21000000, "febf90c0"),
        (2147483647, "7fffffff"),
        (-2147483648, "80000000"),
        (2147483648, "0000000080000000"),
        (-2147483649, "ffffffff7fffffff"),
        (500000000000, "000000746a528800"),
        (-500000000000, "ffffff8b95ad7800"),
        (9223372036854775807, "7fffffffffffffff"),
        (-9223372036854775808, "8000000000000000"),
    ];
    for &(value, hex) in vectors {
        let bytes = unhex(hex);
        let mut w = Writer::new();
        let mut r = Reader::new(&bytes);
        let decoded = match bytes.len() {
            1 => {
                w.write_i8(i8::try_from(value).unwrap());
                i64::from(r.read_i8().unwrap())
            }
            2 => {
                w.write_i16(i16::try_from(value).unwrap());
                i64::from(r.read_i16().unwrap())
            }
            4 => {
                w.write_i32(i32::try_from(value).unwrap());
                i64::from(r.read_i32().unwrap())
            }
            8 => {
                w.write_i64(value);
                r.read_i64().unwrap()
            }
            n => panic!("unexpected width {n}"),
        };
        assert_eq!(w.as_slice(), &bytes[..], "encode {value}");
        assert_eq!(decoded, value, "decode {hex}");
        assert!(r.is_empty());
        // The width in the vector is the smallest type that holds the value.
        let smallest = if i8::try_from(value).is_ok() {
            1
        } else if i16::try_from(value).is_ok() {
            2
        } else if i32::try_from(value).is_ok() {
            4
        } else {
            8
        };
        assert_eq!(bytes.len(), smallest, "{value}");
    }
}
