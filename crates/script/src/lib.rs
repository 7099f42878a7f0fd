//! BOLT 3: the money part of a channel, pure and deterministic.
//!
//! - [`keys`]: per-commitment key derivation (§"Key Derivation").
//! - [`shachain`]: per-commitment secrets and their compact storage.
//! - [`scripts`]: every witness script.
//! - [`commitment`]: commitment transactions, trimming, fees and ordering.
//! - [`htlc_tx`]: HTLC-timeout and HTLC-success transactions.
//! - [`fees`]: expected weights and fee rules (Appendix A).
//! - [`sign`]: BIP 143 signatures over these transactions.
//! - [`funding`]: the funding output and the 2-of-2 witness.

pub mod closing;
pub mod commitment;
pub mod fees;
pub mod funding;
pub mod htlc_tx;
pub mod keys;
pub mod scripts;
pub mod shachain;
pub mod sign;
pub mod sweep;

pub use beongae_wire::{Msat, PaymentHash, Preimage};
pub use fees::FeeratePerKw;

/// The commitment formats this crate builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelType {
    /// `option_static_remotekey`: P2WPKH `to_remote`, HTLC transactions pay fees.
    StaticRemoteKey,
    /// `option_anchors` (zero-fee HTLC transactions): CSV-locked `to_remote`,
    /// two 330-sat anchors, HTLC transactions signed SINGLE|ANYONECANPAY.
    Anchors,
}
