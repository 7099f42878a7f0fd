//! The Beongae node: a deterministic protocol core ([`core::NodeCore`]) and
//! the tokio runtime that drives it ([`runtime::Node`]).
//!
//! Embed it by starting a [`runtime::Node`] with a secret key and a
//! [`runtime::NodeConfig`], then use its [`runtime::NodeHandle`].

pub mod address;
pub mod core;
pub mod embedded;
pub mod follow;
mod funding_cache;
pub mod onchain;
pub mod payments;
pub mod runtime;
