//! Fuzzes the BOLT 1 message codec with arbitrary bytes.
//!
//! Properties checked:
//! - `Message::decode` and `TlvStream::decode` never panic;
//! - a decoded message re-encodes (always, when the input fits a Lightning
//!   message, since encoding never grows it), the encoding decodes to an
//!   equal value, and encoding that value again gives the same bytes;
//! - a decoded TLV stream re-encodes to exactly the input (the decoder only
//!   accepts the canonical form: minimal bigsizes, strictly increasing types);
//! - a decoded `bigsize` re-encodes to exactly the bytes it was read from.

#![no_main]

use beongae_wire::msgs::MAX_MESSAGE_LEN;
use beongae_wire::{EncodeError, Message, Reader, TlvStream, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    message_round_trip(data);
    tlv_round_trip(data);
    bigsize_round_trip(data);
});

fn message_round_trip(data: &[u8]) {
    let Ok(msg) = Message::decode(data) else {
        return;
    };
    // Exercise the accessors and the Debug/Display code (feature names etc.).
    let _ = (msg.typ(), msg.name());
    let _ = format!("{msg:?}");
    match &msg {
        Message::Init(init) => {
            let _ = init.combined_features();
        }
        Message::Error(e) => {
            let _ = e.printable_data();
        }
        Message::Warning(w) => {
            let _ = w.printable_data();
        }
        Message::Ping(p) => {
            let _ = p.reply();
        }
        _ => {}
    }

    // BOLT 7 lists may come zlib-compressed (`encoding_type` 1, read
    // only); they go back out uncompressed, so they may grow.
    let inflated = matches!(
        msg,
        Message::QueryShortChannelIds(_) | Message::ReplyChannelRange(_)
    );
    let encoded = match msg.encode() {
        Ok(bytes) => bytes,
        // `decode` takes any length; only an input longer than a Lightning
        // message (or one that inflated) may be refused on the way back out.
        Err(EncodeError::MessageTooLong(_)) if data.len() > MAX_MESSAGE_LEN || inflated => return,
        Err(e) => panic!("decoded message does not re-encode: {e} ({msg:?})"),
    };
    assert!(
        encoded.len() <= data.len() || inflated,
        "encoding ({} bytes) is longer than the input ({} bytes)",
        encoded.len(),
        data.len()
    );
    let again = Message::decode(&encoded).expect("re-encoded message must decode");
    assert_eq!(again, msg, "decode(encode(m)) != m");
    let encoded_again = again.encode().expect("second encode");
    assert_eq!(encoded_again, encoded, "encoding is not stable");
}

fn tlv_round_trip(data: &[u8]) {
    let Ok(stream) = TlvStream::decode(data) else {
        return;
    };
    let mut w = Writer::new();
    stream.write(&mut w);
    assert_eq!(
        stream.encoded_len(),
        w.len(),
        "encoded_len disagrees with write"
    );
    assert_eq!(w.as_slice(), data, "accepted TLV stream is not canonical");
    // Exercise lookups and the extension check on what was decoded.
    for rec in stream.records() {
        assert_eq!(stream.get(rec.typ), Some(rec.value.as_slice()));
    }
    let _ = stream.into_extension();
}

fn bigsize_round_trip(data: &[u8]) {
    let mut r = Reader::new(data);
    let Ok(v) = r.read_bigsize() else {
        return;
    };
    let consumed = data.len() - r.remaining();
    let mut w = Writer::new();
    w.write_bigsize(v);
    assert_eq!(w.as_slice(), &data[..consumed], "bigsize {v} not canonical");
}
