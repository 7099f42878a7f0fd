//! The PostgreSQL store's lease (ADR 0011): one writer at a time, and a
//! former holder that wakes up after another took over can write nothing.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use beongae_store::{testing, Batch, LeaseAttempt, PostgresStore, Store, StoreError, LEASE_TTL};

const CHILD_ENV: &str = "BEONGAE_LEASE_CHILD";

fn put(key: &str) -> Batch {
    let mut b = Batch::new();
    b.put("ns", key.as_bytes().to_vec(), b"v".to_vec());
    b
}

#[test]
fn a_lease_taken_over_fences_the_former_holder() {
    let url = testing::fresh_database("lease");
    // A long time to live: A renews only every 10 s, long after the
    // takeover below.
    let a = PostgresStore::connect(&url).unwrap();
    assert_eq!(
        a.take_lease("a", Duration::from_secs(30), &mut |_| {}),
        Ok(1)
    );
    a.commit(put("a1")).unwrap();
    assert!(a.lease_is_fresh());

    // A second instance waits while the first renews its lease.
    let b = PostgresStore::connect(&url).unwrap();
    assert_eq!(b.commit(put("b0")), Err(StoreError::NoLease));
    assert_eq!(b.get("ns", b"a1").unwrap(), Some(b"v".to_vec()), "it reads");
    let mut seen = Vec::new();
    let started = Instant::now();
    let taken = std::thread::scope(|s| {
        let waiter =
            s.spawn(|| b.take_lease("standby", LEASE_TTL, &mut |held| seen.push(held.clone())));
        // A freezes (as if stopped): its lease runs out on the server's
        // clock without a renewal. Simulated by ending it there.
        std::thread::sleep(Duration::from_millis(1500));
        testing::psql(&url, "UPDATE beongae_lease SET expires = now()");
        waiter.join().unwrap()
    });
    assert_eq!(taken, Ok(2), "the epoch grows");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        matches!(&seen[0], LeaseAttempt::Held { holder, expires_in } if holder == "a" && *expires_in <= Duration::from_secs(30)),
        "{seen:?}"
    );
    b.commit(put("b1")).unwrap();

    // A wakes: its next commit (which renews the lease in its own
    // transaction) is refused and writes nothing, and so is every later use.
    assert_eq!(a.commit(put("a2")), Err(StoreError::Fenced));
    assert!(!a.lease_is_fresh());
    assert_eq!(a.check_lease(), Err(StoreError::Fenced));
    assert_eq!(a.commit(put("a3")), Err(StoreError::Fenced));
    assert_eq!(
        b.list("ns", b"").unwrap(),
        vec![
            (b"a1".to_vec(), b"v".to_vec()),
            (b"b1".to_vec(), b"v".to_vec())
        ]
    );
    assert!(StoreError::Fenced
        .to_string()
        .contains("another instance of this node took over the database"));

    // A store dropped in good order gives the lease up at once.
    drop(b);
    let c = PostgresStore::connect(&url).unwrap();
    assert_eq!(
        c.take_lease("c", LEASE_TTL, &mut |h| panic!("waited: {h:?}")),
        Ok(3)
    );
}

/// The child of `a_frozen_process_wakes_fenced`: takes the lease and commits
/// numbered batches, printing `ack N` after each; a refused commit prints
/// `refused: ERROR` and exits with status 3.
#[test]
fn lease_child_writer() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = PostgresStore::open(&url).unwrap();
    let mut out = std::io::stdout().lock();
    for n in 0u32.. {
        if let Err(e) = store.commit(put(&format!("child/{n:08}"))) {
            writeln!(out, "refused: {e}").unwrap();
            out.flush().unwrap();
            std::process::exit(3);
        }
        writeln!(out, "ack {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn a_frozen_process_wakes_fenced() {
    let url = testing::fresh_database("frozen");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lease_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = 0;
    for line in lines.by_ref() {
        if let Some(n) = line.unwrap().strip_prefix("ack ") {
            acked = n.parse::<u32>().unwrap();
            if acked >= 20 {
                break;
            }
        }
    }
    // SIGSTOP: the child holds the lease and stops renewing it.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let standby = PostgresStore::connect(&url).unwrap();
    let started = Instant::now();
    let epoch = standby
        .take_lease("standby", LEASE_TTL, &mut |_| {})
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(epoch, 2);
    assert!(waited <= LEASE_TTL + Duration::from_secs(2), "{waited:?}");
    standby.commit(put("standby/1")).unwrap();
    let before = standby.list("ns", b"child/").unwrap();
    // Every batch acknowledged (and those it made until it was stopped).
    assert!(
        before.len() > acked as usize,
        "{} batches, {acked} acked",
        before.len()
    );

    // SIGCONT: its next commit is refused; it writes nothing more.
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    let refused = lines
        .map(Result::unwrap)
        .find(|l| l.starts_with("refused: "))
        .expect("the child says it was refused");
    assert!(
        refused.contains("another instance of this node took over the database"),
        "{refused}"
    );
    assert_eq!(child.wait().unwrap().code(), Some(3));
    assert_eq!(standby.list("ns", b"child/").unwrap(), before);
    standby.commit(put("standby/2")).unwrap();
}

/// A holder frozen inside a commit keeps the lease row locked: the standby
/// is not stuck behind the lock (it counts the lease as held and tries
/// again), and takes the lease once the server ends the frozen session
/// (after `idle_in_transaction_session_timeout`, which every connection of
/// ours sets to half the time to live).
#[test]
fn a_holder_frozen_inside_a_commit_does_not_lock_the_standby_out() {
    let url = testing::fresh_database("locked");
    drop(PostgresStore::open(&url).unwrap());
    testing::psql(
        &url,
        "UPDATE beongae_lease SET expires = now() - interval '1 second'",
    );
    // A session that locks the row and then says nothing more, as a frozen
    // holder would (with our connections' timeout).
    let mut frozen = Command::new("psql")
        .args(["-X", "-q", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = frozen.stdin.take().unwrap();
    writeln!(
        stdin,
        "SET idle_in_transaction_session_timeout = 3000; BEGIN; SELECT 1 FROM beongae_lease FOR UPDATE;"
    )
    .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let standby = PostgresStore::connect(&url).unwrap();
    let started = Instant::now();
    let mut tries = 0;
    let epoch = standby
        .take_lease("standby", LEASE_TTL, &mut |_| tries += 1)
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(epoch, 2);
    assert!(tries >= 1, "it waited for the lock");
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    drop(stdin);
    let _ = frozen.wait();
}
