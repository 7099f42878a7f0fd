//! Fuzzes BOLT 4 hop payloads (`beongae-onion`): the TLV stream a hop
//! finds in its layer of the onion.
//!
//! Properties checked:
//! - `HopPayload::decode` never panics; a decoded payload encodes to bytes
//!   that decode to an equal payload, and encoding that again gives the
//!   same bytes;
//! - `into_forward` and `into_final` (the BOLT 4 reader requirements of
//!   each role) never panic.

#![no_main]

use beongae_onion::payload::HopPayload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = HopPayload::decode(data) else {
        return;
    };
    let _ = format!("{payload:?}");
    let encoded = payload.encode();
    let again = HopPayload::decode(&encoded).expect("an encoded payload decodes");
    assert_eq!(again, payload, "a payload survives its encoding");
    assert_eq!(again.encode(), encoded, "encoding is stable");
    if let Ok(forward) = payload.clone().into_forward() {
        let _ = format!("{forward:?}");
    }
    if let Ok(last) = payload.into_final() {
        let _ = last.total_msat();
    }
});
