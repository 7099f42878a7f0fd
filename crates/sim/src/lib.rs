//! Deterministic simulation of whole Lightning networks (issue 16, ADR
//! 0013), in the manner of FoundationDB's and TigerBeetle's simulators.
//!
//! A [`run`] builds a network of real [`beongae_node::core::NodeCore`]s —
//! real channel, onion and script code, each with a store in memory that
//! takes the same batches as a real one — on a real regtest chain (the
//! devnet, which checks every transaction with Bitcoin Core's script
//! interpreter), and drives it from one seed:
//! - a network with latency, reordering across connections, connections
//!   that drop, nodes cut off for a while, and dials served so that
//!   reconnection is the nodes' own;
//! - virtual time, blocks at random intervals, each node following the
//!   chain with the runtime's own [`beongae_chain::ChainWatcher`];
//! - a workload of channel opens and payments (direct, multi-hop, and in
//!   parts);
//! - faults: a node crashed between any two outputs of a step (after a
//!   `Persist` and before the `Send`s that follow it, or in the middle of
//!   them; a crash at the `Persist` itself is a commit that failed) and
//!   restored from its store; stalls; dropped connections; partitions.
//!
//! Invariants are checked after every step, and once the network is quiet
//! at the end (see [`check`]). A violation names the seed, the step, and
//! the command that replays it.

pub mod check;
pub mod rng;
pub mod wallet;
mod world;

pub use world::{Broken, Config, Counts, Report, Violation};

/// Runs the simulation of `seed` under `config`.
pub fn run(seed: u64, config: &Config) -> Result<Report, Violation> {
    world::World::new(seed, config.clone()).run()
}
