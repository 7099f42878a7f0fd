//! The same checks on both backends: SQLite and PostgreSQL (ADR 0011). The
//! PostgreSQL server is the tests' own (`beongae_store::testing`).

#![allow(clippy::unwrap_used)]

use beongae_store::testing;
use beongae_store::{Batch, PostgresStore, SqliteStore, Store, StoreError, PG_SCHEMA_VERSION};

/// A fresh store of each kind.
fn both(name: &str) -> Vec<(&'static str, Box<dyn Store>)> {
    vec![
        ("sqlite", Box::new(SqliteStore::in_memory().unwrap())),
        (
            "postgres",
            Box::new(PostgresStore::open(&testing::fresh_database(name)).unwrap()),
        ),
    ]
}

#[test]
fn put_get_list_delete_on_both() {
    for (kind, s) in both("put_get") {
        let mut b = Batch::new();
        b.put("chan", b"a/1".to_vec(), b"x".to_vec())
            .put("chan", b"a/2".to_vec(), b"y".to_vec())
            .put("chan", b"b/1".to_vec(), b"z".to_vec())
            .put("chan", vec![0xff, 0xff], b"top".to_vec())
            .put("other", b"a/1".to_vec(), b"o".to_vec());
        s.commit(b).unwrap();
        assert_eq!(
            s.get("chan", b"a/2").unwrap(),
            Some(b"y".to_vec()),
            "{kind}"
        );
        assert_eq!(s.get("chan", b"a/3").unwrap(), None, "{kind}");
        assert_eq!(
            s.list("chan", b"a/").unwrap(),
            vec![
                (b"a/1".to_vec(), b"x".to_vec()),
                (b"a/2".to_vec(), b"y".to_vec())
            ],
            "{kind}"
        );
        // Keys order as unsigned bytes; an all-0xff prefix lists to the end.
        assert_eq!(s.list("chan", b"").unwrap().len(), 4, "{kind}");
        assert_eq!(
            s.list("chan", &[0xff]).unwrap(),
            vec![(vec![0xff, 0xff], b"top".to_vec())],
            "{kind}"
        );
        // In order within a batch: put, delete, put again; a prefix delete.
        let mut b = Batch::new();
        b.delete("chan", b"a/1".to_vec())
            .put("chan", b"a/2".to_vec(), b"y2".to_vec())
            .put("chan", b"a/9".to_vec(), b"gone".to_vec())
            .delete("chan", b"a/9".to_vec())
            .put("chan", b"a/9".to_vec(), b"back".to_vec())
            .delete_prefix("chan", b"b/".to_vec());
        s.commit(b).unwrap();
        assert_eq!(
            s.list("chan", b"").unwrap(),
            vec![
                (b"a/2".to_vec(), b"y2".to_vec()),
                (b"a/9".to_vec(), b"back".to_vec()),
                (vec![0xff, 0xff], b"top".to_vec())
            ],
            "{kind}"
        );
        assert_eq!(
            s.get("other", b"a/1").unwrap(),
            Some(b"o".to_vec()),
            "{kind}"
        );
        // Namespaces in byte order on both (PostgreSQL's collation aside).
        let mut b = Batch::new();
        b.put("peers", b"k".to_vec(), b"v".to_vec())
            .put("peer_updates", b"k".to_vec(), b"v".to_vec())
            .put("Z", b"k".to_vec(), b"v".to_vec());
        s.commit(b).unwrap();
        assert_eq!(
            s.namespaces().unwrap(),
            ["Z", "chan", "other", "peer_updates", "peers"],
            "{kind}"
        );
        // A batch with a bad namespace writes nothing.
        let mut b = Batch::new();
        b.put("ok", b"k".to_vec(), b"v".to_vec())
            .put("", b"k".to_vec(), b"v".to_vec());
        assert!(
            matches!(s.commit(b), Err(StoreError::InvalidNamespace(_))),
            "{kind}"
        );
        assert_eq!(s.get("ok", b"k").unwrap(), None, "{kind}");
    }
}

#[test]
fn a_postgres_store_outlives_its_handle_and_a_lost_connection() {
    let url = testing::fresh_database("reopen");
    let s = PostgresStore::open(&url).unwrap();
    assert_eq!(s.schema_version().unwrap(), PG_SCHEMA_VERSION);
    let mut b = Batch::new();
    b.put("ns", b"k".to_vec(), b"v".to_vec());
    s.commit(b).unwrap();
    // The server closes our connection (as a restart would): the next
    // commit connects again and goes through, whether the client has seen
    // the socket close yet or only the server's "terminating connection"
    // error (57P01) sent before it (CI met the second: the commit failed).
    // Ten times, to meet both.
    let db = url.rsplit('/').next().unwrap();
    let mut expected = vec![(b"k".to_vec(), b"v".to_vec())];
    for i in 0..10u8 {
        testing::psql(
            &testing::admin_url(),
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
            ),
        );
        let mut b = Batch::new();
        b.put("ns", vec![b'k', b'0' + i], b"v2".to_vec());
        s.commit(b).unwrap();
        expected.push((vec![b'k', b'0' + i], b"v2".to_vec()));
    }
    drop(s);
    let again = PostgresStore::open(&url).unwrap();
    assert_eq!(again.list("ns", b"").unwrap(), expected);
}

#[test]
fn a_postgres_schema_newer_than_the_binary_is_refused() {
    let url = testing::fresh_database("newer");
    drop(PostgresStore::open(&url).unwrap());
    let newer = (PG_SCHEMA_VERSION + 1).to_be_bytes();
    testing::psql(
        &url,
        &format!(
            "UPDATE beongae_meta SET value = '\\x{}' WHERE name = 'schema_version'",
            newer.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    );
    let err = PostgresStore::open(&url).unwrap_err();
    assert_eq!(
        err,
        StoreError::SchemaTooNew {
            found: PG_SCHEMA_VERSION + 1,
            supported: PG_SCHEMA_VERSION
        }
    );
    assert!(err.to_string().contains("upgrade beongae"));
}

#[test]
fn bad_postgres_settings_say_what_to_change() {
    let url = testing::fresh_database("settings");
    let (base, db) = url.rsplit_once('/').unwrap();
    // Wrong password.
    let (scheme_user, host) = base.rsplit_once('@').unwrap();
    let (user_part, _) = scheme_user.rsplit_once(':').unwrap();
    let wrong = format!("{user_part}:not-the-password@{host}/{db}");
    let err = PostgresStore::open(&wrong).unwrap_err();
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("refused the login of user postgres: check the user and password")),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    // No such database.
    let err = PostgresStore::open(&format!("{base}/no_such_db")).unwrap_err();
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("does not exist")),
        "{err}"
    );
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = PostgresStore::open(&format!("postgres://u:p@127.0.0.1:{port}/db")).unwrap_err();
    assert!(
        matches!(&err, StoreError::Unreachable(m) if m.contains(&format!("cannot reach the database at 127.0.0.1:{port}/db")) && m.contains("is PostgreSQL running there?")),
        "{err}"
    );
    // A user at its connection limit: the server answers, but takes no
    // connection for now (53300), as while it starts or shuts down (57P03):
    // unreachable, which a lost connection waits out.
    testing::psql(
        &url,
        "DROP ROLE IF EXISTS beongae_limited; CREATE ROLE beongae_limited LOGIN PASSWORD 'limited' CONNECTION LIMIT 0",
    );
    let (_, host) = base.rsplit_once('@').unwrap();
    let err = PostgresStore::open(&format!("postgres://beongae_limited:limited@{host}/{db}"))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unreachable(m) if m.contains("does not take connections now (too many connections for role \"beongae_limited\" (53300))") && m.contains("raise its connection limit")),
        "{err}"
    );
    // Not a URL.
    let err = PostgresStore::open("postgres://[broken").unwrap_err();
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("does not parse")),
        "{err}"
    );
}

#[test]
fn tls_to_the_database_with_the_server_checked() {
    let url = testing::fresh_database("tls");
    let ca = testing::ca_cert();
    let tls = format!("{url}?sslmode=require&sslrootcert={}", ca.display());
    let s = PostgresStore::open(&tls).unwrap();
    let mut b = Batch::new();
    b.put("ns", b"k".to_vec(), b"v".to_vec());
    s.commit(b).unwrap();
    assert_eq!(s.get("ns", b"k").unwrap(), Some(b"v".to_vec()));
    // The server sees our connection encrypted (asked over a plain one).
    let db = url.rsplit('/').next().unwrap();
    let out = std::process::Command::new("psql")
        .args(["-X", "-At", &format!("{url}?sslmode=disable"), "-c"])
        .arg(format!(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE datname = '{db}' AND ssl"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    drop(s);

    // Required without a certificate to check the server against: refused.
    let err = PostgresStore::open(&format!("{url}?sslmode=require")).unwrap_err();
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("sslmode=require needs sslrootcert=PATH")),
        "{err}"
    );
    // Another authority: the server's certificate is not trusted.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.crt");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(dir.path().join("other.key"))
        .arg("-out")
        .arg(&other)
        .args(["-days", "1", "-subj", "/CN=someone else"])
        .output()
        .unwrap();
    assert!(made.status.success());
    let err = PostgresStore::open(&format!(
        "{url}?sslmode=require&sslrootcert={}",
        other.display()
    ))
    .unwrap_err();
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("the TLS handshake with the database at 127.0.0.1") && m.contains("check that sslrootcert is the authority")),
        "{err}"
    );
    // No such file.
    let err = PostgresStore::open(&format!(
        "{url}?sslmode=require&sslrootcert=/nonexistent.crt"
    ))
    .unwrap_err();
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("sslrootcert /nonexistent.crt")),
        "{err}"
    );
}

/// `size_bytes` counts what the store holds: 200 values of 1,000 bytes
/// make it at least 200,000 bytes larger, on both backends.
#[test]
fn size_bytes_grows_with_the_data_on_both() {
    for (kind, s) in both("size") {
        let before = s.size_bytes().unwrap();
        let mut b = Batch::new();
        for i in 0..200u32 {
            // Incompressible: a hash chain.
            let v: Vec<u8> = (0..1000u32)
                .map(|j| {
                    (i.wrapping_mul(2654435761)
                        .wrapping_add(j.wrapping_mul(40503))
                        >> 7) as u8
                })
                .collect();
            b.put("sized", i.to_be_bytes().to_vec(), v);
        }
        s.commit(b).unwrap();
        let after = s.size_bytes().unwrap();
        assert!(after >= before + 200_000, "{kind}: {before} -> {after}");
    }
}

/// A PostgreSQL store that commits vacuums its table itself within a few
/// seconds (rewritten large records leave dead copies that the server's
/// autovacuum would only reclaim a minute later); a store that only reads
/// does not.
#[test]
fn a_committing_postgres_store_vacuums_its_table() {
    let url = testing::fresh_database("vacuum");
    let s = PostgresStore::open(&url).unwrap();
    let reader = PostgresStore::connect(&url).unwrap();
    let vacuums = || {
        let out = std::process::Command::new("psql")
            .args(["-X", "-t", "-A", &url, "-c"])
            .arg("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'beongae_kv'")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    for round in 0..20u8 {
        let mut b = Batch::new();
        b.put("chan", b"record".to_vec(), vec![round; 20_000]);
        s.commit(b).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while vacuums() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no vacuum 15 s after the commits"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        reader.get("chan", b"record").unwrap(),
        Some(vec![19; 20_000])
    );
}
