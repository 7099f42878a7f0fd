//! Fuzzes the BOLT 8 responder and the post-handshake message decoder.
//!
//! Every input runs two paths:
//!
//! 1. **Raw responder.** A `Responder` with fixed static and ephemeral keys
//!    takes `data[0..50]` as act one; if that is accepted, `data[50..116]` as
//!    act three; if that is accepted too, the rest is pushed in chunks into a
//!    `MessageDecoder` over the transport's decryptor. A fuzzer practically
//!    never forges the MACs, so this path checks the act parsers (version
//!    byte, point parsing, MAC checks) against arbitrary bytes.
//!
//! 2. **Framed stream.** A real initiator/responder handshake with fixed keys,
//!    then the input is turned into messages which the initiator's encryptor
//!    frames; the wire bytes are optionally corrupted at one position and fed
//!    in chunks to the responder's `MessageDecoder`. This reaches the framing,
//!    reassembly and key-rotation code with valid frames:
//!
//!    ```text
//!    data[0]    flags: bit 0 = flip one byte; 0x52 or 0x53 = also first
//!               send 495 empty messages (990 nonces) so the fuzzed frames
//!               cross the key rotation at nonce 1000 (a whole magic byte
//!               rather than a bit: the prelude costs ~1000 AEAD operations,
//!               so it should not be on for half of all inputs)
//!    data[1..3] flip position (u16 BE, modulo the wire length)
//!    data[3]    flip mask (0 is taken as 0x01)
//!    data[4]    chunk size for pushing into the decoder (0 = all at once)
//!    data[5..]  messages: a length byte L then L bytes (L = 255: a u16 BE
//!               length follows); the last message takes what is left
//!    ```
//!
//!    Unmodified, the decoder must return exactly the messages sent and keep
//!    nothing buffered. With one byte flipped, it must return exactly the
//!    messages framed before the corrupted frame, then fail (and stay failed).

#![no_main]

use std::sync::OnceLock;

use beongae_noise::{
    Encryptor, Initiator, MessageDecoder, NoiseError, Responder, ACT_ONE_LEN, ACT_THREE_LEN,
};
use bitcoin::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use libfuzzer_sys::fuzz_target;

/// Empty messages sent first when the flags byte is 0x52/0x53: 2 nonces
/// each, leaving the fuzzed messages to cross the 1000-nonce key rotation.
const PRELUDE_MESSAGES: usize = 495;
/// Flags byte (with bit 0 cleared) that turns the prelude on.
const PRELUDE_FLAGS: u8 = 0x52;

fn secp() -> &'static Secp256k1<All> {
    static SECP: OnceLock<Secp256k1<All>> = OnceLock::new();
    SECP.get_or_init(Secp256k1::new)
}

fn key(byte: u8) -> SecretKey {
    SecretKey::from_slice(&[byte; 32]).expect("fixed key is valid")
}

const INITIATOR_STATIC: u8 = 0x11;
const INITIATOR_EPHEMERAL: u8 = 0x12;
const RESPONDER_STATIC: u8 = 0x21;
const RESPONDER_EPHEMERAL: u8 = 0x22;

/// Public keys of the two static keys, derived once.
fn static_pubs() -> &'static (PublicKey, PublicKey) {
    static PUBS: OnceLock<(PublicKey, PublicKey)> = OnceLock::new();
    PUBS.get_or_init(|| {
        (
            PublicKey::from_secret_key(secp(), &key(INITIATOR_STATIC)),
            PublicKey::from_secret_key(secp(), &key(RESPONDER_STATIC)),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    raw_responder(data);
    framed_stream(data);
});

fn raw_responder(data: &[u8]) {
    let secp = secp();
    let Some((act_one, rest)) = data.split_first_chunk::<ACT_ONE_LEN>() else {
        return;
    };
    let responder = Responder::new(secp, key(RESPONDER_STATIC), key(RESPONDER_EPHEMERAL));
    let Ok((responder, _act_two)) = responder.process_act_one(secp, act_one) else {
        return;
    };
    let Some((act_three, rest)) = rest.split_first_chunk::<ACT_THREE_LEN>() else {
        return;
    };
    let Ok((_remote, transport)) = responder.process_act_three(secp, act_three) else {
        return;
    };
    let (_, decryptor) = transport.split();
    let mut decoder = MessageDecoder::new(decryptor);
    let (chunk, rest) = match rest.split_first() {
        Some((c, rest)) => (usize::from(*c).max(1), rest),
        None => return,
    };
    for piece in rest.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// Runs the BOLT 8 handshake between fixed keys and returns the initiator's
/// encryptor and a decoder over the responder's decryptor.
fn handshake() -> (Encryptor, MessageDecoder) {
    let secp = secp();
    let (initiator_pub, responder_pub) = *static_pubs();
    let (initiator, act_one) = Initiator::new(
        secp,
        key(INITIATOR_STATIC),
        responder_pub,
        key(INITIATOR_EPHEMERAL),
    );
    let (responder, act_two) =
        Responder::new(secp, key(RESPONDER_STATIC), key(RESPONDER_EPHEMERAL))
            .process_act_one(secp, &act_one)
            .expect("act one");
    let (act_three, initiator_transport) =
        initiator.process_act_two(secp, &act_two).expect("act two");
    let (remote, responder_transport) = responder
        .process_act_three(secp, &act_three)
        .expect("act three");
    assert_eq!(remote, initiator_pub);
    let (encryptor, _) = initiator_transport.split();
    let (_, decryptor) = responder_transport.split();
    (encryptor, MessageDecoder::new(decryptor))
}

/// Splits `data` into messages: a length byte, 255 meaning a u16 length follows.
fn split_messages(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&l, rest)) = data.split_first() {
        let (len, rest) = if l == 255 {
            match rest.split_first_chunk::<2>() {
                Some((l2, rest)) => (usize::from(u16::from_be_bytes(*l2)), rest),
                // Fewer than two length bytes: the last message is what is left.
                None => (rest.len(), rest),
            }
        } else {
            (usize::from(l), rest)
        };
        let (msg, rest) = rest.split_at(len.min(rest.len()));
        out.push(msg);
        data = rest;
    }
    out
}

fn framed_stream(data: &[u8]) {
    let Some((header, body)) = data.split_first_chunk::<5>() else {
        return;
    };
    let [flags, pos_hi, pos_lo, mask, chunk] = *header;
    let flip = flags & 1 != 0;
    let prelude = flags & !1 == PRELUDE_FLAGS;
    let chunk = usize::from(chunk);

    let mut sent: Vec<&[u8]> = Vec::new();
    if prelude {
        sent.extend(std::iter::repeat(&[][..]).take(PRELUDE_MESSAGES));
    }
    sent.extend(split_messages(body));

    let (mut encryptor, mut decoder) = handshake();
    let mut wire = Vec::new();
    // frame_ends[i]: end offset in `wire` of message i's frame.
    let mut frame_ends = Vec::with_capacity(sent.len());
    for msg in &sent {
        encryptor
            .encrypt_message_into(msg, &mut wire)
            .expect("messages are at most 65535 bytes");
        frame_ends.push(wire.len());
    }

    // Index of the frame whose bytes are corrupted, if any.
    let corrupted = if flip && !wire.is_empty() {
        let pos = usize::from(u16::from_be_bytes([pos_hi, pos_lo])) % wire.len();
        wire[pos] ^= if mask == 0 { 1 } else { mask };
        Some(frame_ends.partition_point(|&end| end <= pos))
    } else {
        None
    };

    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut failure: Option<NoiseError> = None;
    let pieces: Box<dyn Iterator<Item = &[u8]>> = if chunk == 0 {
        Box::new(std::iter::once(&wire[..]))
    } else {
        Box::new(wire.chunks(chunk))
    };
    'feed: for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(m)) => got.push(m),
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break 'feed;
                }
            }
        }
    }

    match corrupted {
        None => {
            assert_eq!(failure, None, "unmodified stream failed to decrypt");
            assert_eq!(got.len(), sent.len(), "message count differs");
            for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
                assert_eq!(g.as_slice(), *s, "message {i} differs");
            }
            assert_eq!(
                decoder.buffered(),
                0,
                "bytes left over after the last frame"
            );
        }
        Some(k) => {
            assert_eq!(
                failure,
                Some(NoiseError::BadMac),
                "corrupted frame {k} was not rejected"
            );
            assert_eq!(got.len(), k, "messages returned past the corrupted frame");
            for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
                assert_eq!(g.as_slice(), *s, "message {i} differs");
            }
            // Poisoned: no resynchronisation after a bad MAC.
            assert_eq!(decoder.next_message(), Err(NoiseError::BadMac));
        }
    }
}
