//! Fuzzes BOLT 4 failure messages and return packets (`beongae-onion`).
//!
//! Properties checked:
//! - `FailureMessage::decode` never panics; a decoded failure encodes to
//!   bytes that decode to an equal failure, and encoding that again gives
//!   the same bytes; its flags (`BADONION`, `PERM`, `NODE`, `UPDATE`)
//!   are the bits of its code;
//! - a return packet built by hop `k` of a route of 1 to 5 hops, for the
//!   input as `failuremsg`, and wrapped by every hop before it, is
//!   attributed by the origin to hop `k` with exactly that `failuremsg`;
//! - `decrypt_error_packet` never panics on arbitrary bytes.

#![no_main]

use beongae_onion::failure::{
    build_error_packet, decrypt_error_packet, error_packet_plain, obfuscate_error_packet,
    FailureMessage,
};
use beongae_onion::SharedSecret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = FailureMessage::decode(data) {
        let _ = format!("{f:?}");
        let code = f.code();
        assert_eq!(f.is_bad_onion(), code & 0x8000 != 0);
        assert_eq!(f.is_permanent(), code & 0x4000 != 0);
        assert_eq!(f.is_node(), code & 0x2000 != 0);
        assert_eq!(f.is_update(), code & 0x1000 != 0);
        let encoded = f.encode();
        let again = FailureMessage::decode(&encoded).expect("an encoded failure decodes");
        assert_eq!(again, f);
        assert_eq!(again.encode(), encoded);
        let secrets = route(data);
        let k = usize::from(data.first().copied().unwrap_or(0)) % secrets.len();
        let Ok(mut packet) = build_error_packet(&secrets[k], &f) else {
            assert!(encoded.len() > 65_535, "a failure of {} bytes was refused", encoded.len());
            return;
        };
        for ss in secrets[..k].iter().rev() {
            obfuscate_error_packet(ss, &mut packet);
        }
        let got = decrypt_error_packet(&secrets, &packet).expect("attributed");
        assert_eq!((got.hop, got.message), (k, f));
    }
    // Any bytes as the failuremsg of hop 0's packet: attributed to hop 0
    // with those bytes, decoded or not.
    let secrets = route(data);
    if let Ok(mut packet) = error_packet_plain(&secrets[0], data) {
        obfuscate_error_packet(&secrets[0], &mut packet);
        match decrypt_error_packet(&secrets, &packet) {
            Ok(got) => assert_eq!((got.hop, &got.failuremsg[..]), (0, data)),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    let _ = decrypt_error_packet(&secrets, data);
});

/// The shared secrets of a route of 1 to 5 hops, from the input's length.
fn route(data: &[u8]) -> Vec<SharedSecret> {
    let hops = data.len() % 5 + 1;
    (0..hops).map(|i| SharedSecret([i as u8 + 1; 32])).collect()
}
