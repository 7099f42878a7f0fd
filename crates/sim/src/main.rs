//! `beongae-sim`: the long simulation run, and the replay of one seed.
//!
//! ```text
//! cargo run -p beongae-sim --release -- --seeds 10000 [--from 0] [--threads 2]
//! cargo run -p beongae-sim --release -- --seed 42 [--verbose] [--broken]
//!     [--skip-faults 0,3,7] [--skip-payments 1,2] [--shrink]
//! ```
//!
//! `--shrink` leaves out every fault and payment a failing seed does not
//! need to fail, and prints the short schedule's replay command.
//!
//! The long run prints seeds per second, what was injected of each kind of
//! fault, and every violation with its replay command; it exits non-zero
//! if there was one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use beongae_sim::{run, Broken, Config, Counts};

struct Args {
    seeds: u64,
    from: u64,
    threads: u64,
    seed: Option<u64>,
    shrink: bool,
    config: Config,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        seeds: 100,
        from: 0,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
        seed: None,
        shrink: false,
        config: Config::default(),
    };
    let mut it = std::env::args().skip(1);
    let num = |v: Option<String>, what: &str| -> Result<u64, String> {
        v.ok_or_else(|| format!("{what} needs a number"))?
            .parse()
            .map_err(|_| format!("{what} needs a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seeds" => a.seeds = num(it.next(), "--seeds")?,
            "--from" => a.from = num(it.next(), "--from")?,
            "--threads" => a.threads = num(it.next(), "--threads")?.max(1),
            "--seed" => a.seed = Some(num(it.next(), "--seed")?),
            "--verbose" => a.config.verbose = true,
            "--broken" => a.config.broken = Some(Broken::SkipPersist),
            "--no-faults" => a.config.faults = false,
            "--shrink" => a.shrink = true,
            "--skip-faults" => {
                let v = it.next().ok_or("--skip-faults needs a list")?;
                for x in v.split(',').filter(|x| !x.is_empty()) {
                    a.config
                        .skip_faults
                        .insert(num(Some(x.to_owned()), "--skip-faults")?);
                }
            }
            "--skip-payments" => {
                let v = it.next().ok_or("--skip-payments needs a list")?;
                for x in v.split(',').filter(|x| !x.is_empty()) {
                    let n = num(Some(x.to_owned()), "--skip-payments")?;
                    a.config.skip_payments.insert(n as usize);
                }
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; see the top of crates/sim/src/main.rs"
                ))
            }
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("beongae-sim: {e}");
            std::process::exit(2);
        }
    };
    if let (Some(seed), true) = (args.seed, args.shrink) {
        match beongae_sim::shrink(seed, &args.config) {
            None => println!("seed {seed}: ok, nothing to shrink"),
            Some(v) => {
                println!(
                    "seed {seed} shrunk: {} of {} faults and {} of {} payments left",
                    v.faults - v.skipped.0.len() as u64,
                    v.faults,
                    v.payments - v.skipped.1.len(),
                    v.payments
                );
                println!("{v}");
                std::process::exit(1);
            }
        }
        return;
    }
    if let Some(seed) = args.seed {
        if args.config.verbose {
            // The nodes' own logs, between the inputs and outputs they
            // belong to (RUST_LOG filters; info by default).
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .without_time()
                .with_ansi(false)
                .init();
        }
        match run(seed, &args.config) {
            Ok(r) => println!(
                "seed {seed}: ok, {} nodes, {} channels, {:?}",
                r.nodes, r.channels, r.counts
            ),
            Err(v) => {
                println!("{v}");
                std::process::exit(1);
            }
        }
        return;
    }
    let next = AtomicU64::new(args.from);
    let end = args.from + args.seeds;
    let totals = Mutex::new((Counts::default(), 0u64, Vec::new()));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..args.threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let result = run(seed, &args.config);
                let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                match result {
                    Ok(r) => {
                        t.0 += &r.counts;
                        t.1 += 1;
                    }
                    Err(v) => {
                        println!("VIOLATION {v}");
                        t.2.push(v.seed);
                    }
                }
                let done = t.1 + t.2.len() as u64;
                if done.is_multiple_of(100) {
                    let secs = start.elapsed().as_secs_f64();
                    eprintln!(
                        "{done} seeds, {:.2} seeds/s, {} violations",
                        done as f64 / secs,
                        t.2.len()
                    );
                }
                if done.is_multiple_of(1000) {
                    eprintln!("totals after {done} seeds: {:?}", t.0);
                }
            });
        }
    });
    let (counts, ok, bad) = totals.into_inner().unwrap_or_else(|p| p.into_inner());
    let secs = start.elapsed().as_secs_f64();
    println!(
        "seeds {}..{}: {} kept every invariant, {} violations, in {:.0} s ({:.2} seeds/s, {} threads)",
        args.from,
        end,
        ok,
        bad.len(),
        secs,
        (ok + bad.len() as u64) as f64 / secs,
        args.threads
    );
    println!("{counts:#?}");
    if !bad.is_empty() {
        println!("violating seeds: {bad:?}");
        std::process::exit(1);
    }
}
