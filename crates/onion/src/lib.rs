//! BOLT 4 onion routing: the Sphinx `onion_packet` (construction and
//! peeling), the TLV hop `payload`, and failure messages with their
//! obfuscated return packets.
//!
//! The crate is pure: session keys come in as arguments, nothing here does
//! I/O or draws randomness, and decoding any bytes returns an error rather
//! than panicking.

pub mod crypto;
pub mod failure;
pub mod packet;
pub mod payload;
pub mod receive;

pub use crypto::SharedSecret;
pub use failure::{
    build_error_packet, decrypt_error_packet, obfuscate_error_packet, DecryptedFailure,
    FailureError, FailureMessage,
};
pub use packet::{
    construct_onion, construct_onion_with_padding, peel, route_keys, HopKeys, OnionError,
    OnionPacket, Peeled, HOP_PAYLOADS_LEN, ONION_PACKET_LEN,
};
pub use payload::{FinalPayload, ForwardPayload, HopPayload, PayloadError, PaymentData};
pub use receive::{
    check_final_htlc, check_keysend_htlc, ExpectedPayment, FinalOutcome, IncomingHtlc,
};
