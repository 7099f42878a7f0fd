//! Loads a graph snapshot, prints its size and the load time, then times
//! 1,000 seeded route queries (amounts log-uniform from 1k to 10M sat):
//! `cargo run --release -p beongae-graph --example load -- ../shared/data/mainnet-graph-2026-02-03.json.gz`.
//! (The benchmark against LDK's router comes with the rest of issue 6.)

#![allow(clippy::unwrap_used, missing_docs)]

use beongae_graph::route::{find_route, RouteParams};

fn main() {
    let path = std::env::args().nth(1).expect("usage: load FILE.json.gz");
    let start = std::time::Instant::now();
    let g = match beongae_graph::snapshot::load(std::path::Path::new(&path)) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "{} nodes, {} channels in {:.0} ms",
        g.node_count(),
        g.channel_count(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let params = RouteParams::default();
    let n = g.node_count() as u64;
    let (mut times, mut found) = (Vec::new(), 0);
    for _ in 0..1_000 {
        let a = g.node_id((rnd() % n) as u32);
        let b = g.node_id((rnd() % n) as u32);
        let sat = (1_000f64 * 10_000f64.powf((rnd() % 1_000_000) as f64 / 1_000_000.0)) as u64;
        let t = std::time::Instant::now();
        found += usize::from(find_route(&g, &a, &b, sat * 1000, &params).is_ok());
        times.push(t.elapsed());
    }
    times.sort();
    let q = |f: f64| times[((times.len() - 1) as f64 * f) as usize].as_secs_f64() * 1000.0;
    println!(
        "1000 queries: {found} routes found; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        q(0.5),
        q(0.9),
        q(0.99)
    );
}
