//! BOLT 11 invoices: decode, check, build, sign and encode.
//!
//! Pure: no I/O, no clock. The current time comes in as an argument
//! ([`Invoice::is_expired`]), and the signing key and secp256k1 context are
//! passed to [`InvoiceBuilder::sign`].
//!
//! ```
//! use beongae_invoice::{Currency, Invoice, InvoiceBuilder, PaymentSecret};
//! use beongae_wire::{Msat, PaymentHash};
//! use bitcoin::secp256k1::{Secp256k1, SecretKey};
//!
//! let secp = Secp256k1::new();
//! let key = SecretKey::from_slice(&[0x11; 32]).unwrap();
//! let invoice = InvoiceBuilder::new(Currency::Regtest)
//!     .amount(Msat::from_msat(250_000_000))
//!     .timestamp(1_700_000_000)
//!     .payment_hash(PaymentHash([1; 32]))
//!     .payment_secret(PaymentSecret([2; 32]))
//!     .description("coffee")
//!     .sign(&secp, &key)
//!     .unwrap();
//! let text = invoice.encode();
//! assert!(text.starts_with("lnbcrt2500u1"));
//! assert_eq!(Invoice::decode(&text).unwrap(), invoice);
//! ```

mod builder;
mod compact;
mod error;
mod fields;
mod hrp;
mod invoice;
mod words;

pub use builder::InvoiceBuilder;
pub use compact::compact_to_string;
pub use error::{BuildError, InvoiceError};
pub use fields::{
    DescriptionHash, Fallback, PaymentSecret, RawTaggedField, RouteHint, RouteHintHop, TaggedField,
};
pub use hrp::{Currency, HrpAmount, Multiplier};
pub use invoice::{Invoice, DEFAULT_EXPIRY_SECS, DEFAULT_MIN_FINAL_CLTV_EXPIRY_DELTA};
