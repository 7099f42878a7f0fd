//! The Lightning network graph (BOLT 7 §"Routing Gossip"): channels and
//! nodes learned from `channel_announcement`, `channel_update` and
//! `node_announcement`, each applied with the receiver's rules, stored in
//! dense vectors indexed by `u32` (node and channel indices) so that path
//! finding walks arrays, not maps of boxed structs.
//!
//! Pure: the funding-output check is delegated to a caller-supplied lookup,
//! and time comes in as an argument.

mod batch;
mod graph;
pub mod route;
pub mod scorer;
pub mod snapshot;

pub use batch::Gossip;
pub use graph::{
    Channel, ChannelIdx, GossipError, Graph, NodeIdx, NodeInfo, Policy, STALE_AFTER_SECS,
};
pub use route::{
    find_route, FirstHop, InFlight, Payment, Route, RouteError, RouteHop, RouteParams, Router,
};
pub use scorer::{Scorer, ScorerParams};
