//! Both stores (SQLite, PostgreSQL) against a `BTreeMap` model: random
//! batches of puts, deletes and prefix deletes, then every prefix listing
//! and lookup must agree; again with each batch squashed (`Batch::squash`,
//! as the node's group commit does).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use beongae_store::{testing, Batch, PostgresStore, SqliteStore, Store};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Write {
    Put(u8, Vec<u8>, Vec<u8>),
    Delete(u8, Vec<u8>),
    DeletePrefix(u8, Vec<u8>),
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![Just(0u8), Just(1), Just(0xfe), Just(0xff), any::<u8>()],
        0..4,
    )
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        (0u8..3, key(), proptest::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(n, k, v)| Write::Put(n, k, v)),
        (0u8..3, key()).prop_map(|(n, k)| Write::Delete(n, k)),
        (0u8..3, key()).prop_map(|(n, k)| Write::DeletePrefix(n, k)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn store_agrees_with_a_map(batches in proptest::collection::vec(proptest::collection::vec(write(), 0..12), 1..8), prefixes in proptest::collection::vec(key(), 1..6)) {
        // PostgreSQL: one database for every case, each case in namespaces
        // of its own.
        static PG: OnceLock<PostgresStore> = OnceLock::new();
        static CASE: AtomicU32 = AtomicU32::new(0);
        let pg = PG.get_or_init(|| PostgresStore::open(&testing::fresh_database("model")).unwrap());
        let case = CASE.fetch_add(1, Ordering::Relaxed);
        let (sqlite, squashed) = (SqliteStore::in_memory().unwrap(), SqliteStore::in_memory().unwrap());
        // Each store with the namespaces its batches write: the whole
        // batches, or squashed ones ('q').
        let stores: [(&dyn Store, char); 4] = [(&sqlite, 'c'), (pg, 'c'), (&squashed, 'q'), (pg, 'q')];
        let mut model: BTreeMap<(String, Vec<u8>), Vec<u8>> = BTreeMap::new();
        let ns = |n: u8| format!("c{case}ns{n}");
        let named = |form: char, n: u8| format!("{form}{case}ns{n}");
        for writes in batches {
            let (mut batch, mut short) = (Batch::new(), Batch::new());
            for w in writes {
                match w {
                    Write::Put(n, k, v) => {
                        batch.put(&ns(n), k.clone(), v.clone());
                        short.put(&named('q', n), k.clone(), v.clone());
                        model.insert((ns(n), k), v);
                    }
                    Write::Delete(n, k) => {
                        batch.delete(&ns(n), k.clone());
                        short.delete(&named('q', n), k.clone());
                        model.remove(&(ns(n), k));
                    }
                    Write::DeletePrefix(n, p) => {
                        batch.delete_prefix(&ns(n), p.clone());
                        short.delete_prefix(&named('q', n), p.clone());
                        model.retain(|(m, k), _| *m != ns(n) || !k.starts_with(&p));
                    }
                }
            }
            short.squash();
            for (store, form) in stores {
                store.commit(if form == 'q' { short.clone() } else { batch.clone() }).unwrap();
            }
        }
        for n in 0..3u8 {
            for prefix in &prefixes {
                let expected: Vec<(Vec<u8>, Vec<u8>)> = model
                    .iter()
                    .filter(|((m, k), _)| *m == ns(n) && k.starts_with(prefix))
                    .map(|((_, k), v)| (k.clone(), v.clone()))
                    .collect();
                for (store, form) in stores {
                    let at = named(form, n);
                    prop_assert_eq!(store.list(&at, prefix).unwrap(), expected.clone());
                    prop_assert_eq!(store.get(&at, prefix).unwrap(), model.get(&(ns(n), prefix.clone())).cloned());
                }
            }
        }
    }
}
