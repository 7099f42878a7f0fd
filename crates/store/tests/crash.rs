//! Crash safety, on both backends: a child process commits batches in a loop
//! and is killed with SIGKILL mid-stream; reopening the store finds every
//! batch whole or absent, and every batch the child acknowledged present.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use beongae_store::{testing, Batch, PostgresStore, SqliteStore, Store};

const CHILD_ENV: &str = "BEONGAE_STORE_CRASH_CHILD";
const KEYS_PER_BATCH: u32 = 20;

/// `sqlite:PATH` or a PostgreSQL URL (with the lease, to write).
fn open(spec: &str) -> Box<dyn Store> {
    match spec.strip_prefix("sqlite:") {
        Some(path) => Box::new(SqliteStore::open(path.as_ref()).unwrap()),
        None => Box::new(PostgresStore::open(spec).unwrap()),
    }
}

/// The same, to read: the killed child's lease needs not run out.
fn open_to_read(spec: &str) -> Box<dyn Store> {
    match spec.strip_prefix("sqlite:") {
        Some(_) => open(spec),
        None => Box::new(PostgresStore::connect(spec).unwrap()),
    }
}

/// The child's side of `sigkill_mid_commit_keeps_batches_whole`: when started
/// by that test (the environment names the database), commits numbered
/// batches forever, printing `ack N` after each commit returns. Run on its
/// own, without the variable, it has nothing to do.
#[test]
fn crash_child_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = open(&spec);
    let mut out = std::io::stdout().lock();
    for n in 0u32.. {
        let mut batch = Batch::new();
        for i in 0..KEYS_PER_BATCH {
            batch.put(
                "batches",
                format!("{n:08}/{i:02}").into_bytes(),
                vec![(n % 251) as u8; 200],
            );
        }
        batch.put("meta", b"last".to_vec(), n.to_be_bytes().to_vec());
        store.commit(batch).unwrap();
        writeln!(out, "ack {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_mid_commit_keeps_batches_whole() {
    let dir = tempfile::tempdir().unwrap();
    let rounds = [5u32, 40, 120]
        .into_iter()
        .enumerate()
        .flat_map(|(round, kill_after)| {
            let sqlite = format!(
                "sqlite:{}",
                dir.path().join(format!("store{round}.sqlite")).display()
            );
            let postgres = testing::fresh_database(&format!("crash{round}"));
            [(round, kill_after, sqlite), (round, kill_after, postgres)]
        });
    for (round, kill_after, spec) in rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut last_ack = None;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            if let Some(n) = line.unwrap().strip_prefix("ack ") {
                let n: u32 = n.parse().unwrap();
                last_ack = Some(n);
                if n >= kill_after {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL, most likely in the middle of the next commit
        child.wait().unwrap();
        let last_ack = last_ack.expect("child acknowledged batches");

        let store = open_to_read(&spec);
        let mut batches: BTreeMap<u32, u32> = BTreeMap::new();
        for (key, value) in store.list("batches", b"").unwrap() {
            let n: u32 = std::str::from_utf8(&key[..8]).unwrap().parse().unwrap();
            assert_eq!(
                value,
                vec![(n % 251) as u8; 200],
                "round {round} ({spec}): batch {n} value"
            );
            *batches.entry(n).or_default() += 1;
        }
        // Whole or absent.
        for (n, count) in &batches {
            assert_eq!(
                *count, KEYS_PER_BATCH,
                "round {round} ({spec}): batch {n} is torn"
            );
        }
        // Every acknowledged batch is there, and nothing else but at most the
        // one whose acknowledgement the kill cut off.
        let present: Vec<u32> = batches.keys().copied().collect();
        let highest = *present.last().unwrap();
        assert!(
            highest == last_ack || highest == last_ack + 1,
            "round {round} ({spec}): acked {last_ack}, found up to {highest}"
        );
        assert_eq!(
            present,
            (0..=highest).collect::<Vec<_>>(),
            "round {round} ({spec}): gap"
        );
        let meta = store.get("meta", b"last").unwrap().unwrap();
        assert_eq!(u32::from_be_bytes(meta.try_into().unwrap()), highest);
    }
}
