//! Benchmarks comparing the `beongae-graph` router with LDK's on the mainnet graph (see `benches/routes.rs`).
