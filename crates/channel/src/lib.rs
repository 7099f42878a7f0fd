//! The BOLT 2 channel, as a pure state machine (work in progress: channel
//! establishment parameters first).
//!
//! - [`config`]: the limits this node applies to itself and to its peers.
//! - [`channel_type`]: `channel_type` negotiation (BOLT 2 §"Defined Channel Types").
//! - [`open`]: the checks on `open_channel` and `accept_channel`.

pub mod channel_type;
pub mod close;
pub mod commitments;
pub mod config;
pub mod funding;
pub mod funding_spend;
pub mod limits;
pub mod normal;
pub mod onchain;
pub mod onchain_htlcs;
pub mod open;
pub mod penalty;
pub mod persist;
pub mod propose;
pub mod revocation;
pub mod sign;
pub mod simple_close;

pub use channel_type::ChannelTypeSpec;
pub use config::ChannelConfig;
pub use open::{OpenError, PeerParams};
