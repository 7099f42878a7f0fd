//! Loads a graph snapshot and prints its size and the load time:
//! `cargo run --release -p beongae-graph --example load -- ../shared/data/mainnet-graph-2026-02-03.json.gz`.

#![allow(clippy::unwrap_used, missing_docs)]

fn main() {
    let path = std::env::args().nth(1).expect("usage: load FILE.json.gz");
    let start = std::time::Instant::now();
    match beongae_graph::snapshot::load(std::path::Path::new(&path)) {
        Ok(g) => println!(
            "{} nodes, {} channels in {:.0} ms",
            g.node_count(),
            g.channel_count(),
            start.elapsed().as_secs_f64() * 1000.0
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
