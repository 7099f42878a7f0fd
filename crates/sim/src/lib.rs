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
//!   restored from its store; stalls, short and for hours; dropped
//!   connections; partitions; reorganisations; cheating (a revoked
//!   commitment broadcast).
//!
//! Invariants are checked after every step, and once the network is quiet
//! at the end (see [`check`]). A violation names the seed, the step, and
//! the command that replays it; [`shrink`] leaves out every fault and
//! payment the violation does not need.

pub mod check;
pub mod rng;
pub mod wallet;
mod world;

pub use world::{Broken, Config, Counts, Report, Violation};

/// Runs the simulation of `seed` under `config`.
pub fn run(seed: u64, config: &Config) -> Result<Report, Violation> {
    world::World::new(seed, config.clone()).run()
}

/// Shrinks a failing seed to a shorter schedule: each fault, then each
/// payment, is left out in turn and stays out if the run still breaks an
/// invariant (every draw stays the same, so the rest of the schedule does
/// too). Returns the last violation, with what it left out (its replay
/// command runs the short schedule); `None` if the seed passes.
pub fn shrink(seed: u64, config: &Config) -> Option<Violation> {
    let mut config = config.clone();
    let mut last = run(seed, &config).err()?;
    for i in 0..last.faults {
        config.skip_faults.insert(i);
        match run(seed, &config) {
            Err(v) => last = v,
            Ok(_) => {
                config.skip_faults.remove(&i);
            }
        }
    }
    for i in 0..last.payments {
        config.skip_payments.insert(i);
        match run(seed, &config) {
            Err(v) => last = v,
            Ok(_) => {
                config.skip_payments.remove(&i);
            }
        }
    }
    Some(last)
}
