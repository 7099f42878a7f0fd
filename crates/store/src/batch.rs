//! Write batches.

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value` in `namespace`.
    Put {
        /// Namespace.
        namespace: String,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove `key` from `namespace` (no error if absent).
    Delete {
        /// Namespace.
        namespace: String,
        /// Key.
        key: Vec<u8>,
    },
    /// Remove every key of `namespace` that starts with `prefix`.
    DeletePrefix {
        /// Namespace.
        namespace: String,
        /// The keys' common start.
        prefix: Vec<u8>,
    },
}

impl Op {
    /// The namespace it writes to.
    pub fn namespace(&self) -> &str {
        match self {
            Op::Put { namespace, .. }
            | Op::Delete { namespace, .. }
            | Op::DeletePrefix { namespace, .. } => namespace,
        }
    }
}

/// Writes applied together, atomically, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a put.
    pub fn put(
        &mut self,
        namespace: &str,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> &mut Self {
        self.ops.push(Op::Put {
            namespace: namespace.to_owned(),
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, namespace: &str, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::Delete {
            namespace: namespace.to_owned(),
            key: key.into(),
        });
        self
    }

    /// Adds a delete of every key starting with `prefix`.
    pub fn delete_prefix(&mut self, namespace: &str, prefix: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(Op::DeletePrefix {
            namespace: namespace.to_owned(),
            prefix: prefix.into(),
        });
        self
    }

    /// Appends another batch's writes (e.g. those of many channels), so
    /// they cost one durable write.
    pub fn extend(&mut self, other: Batch) -> &mut Self {
        self.ops.extend(other.ops);
        self
    }

    /// The writes, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Drops every put or delete that a later put or delete of the same
    /// key overrides: the batch leaves the store exactly as before, and
    /// writes less. A group commit joins the batches of several inputs,
    /// and each input rewrites the records it changed (an open channel's
    /// with every update), so most of a busy node's commit was records
    /// written again in the same transaction.
    pub fn squash(&mut self) {
        let mut later: std::collections::HashSet<(&str, &[u8])> = std::collections::HashSet::new();
        let mut keep = vec![true; self.ops.len()];
        for (i, op) in self.ops.iter().enumerate().rev() {
            match op {
                Op::Put { namespace, key, .. } | Op::Delete { namespace, key } => {
                    keep[i] = later.insert((namespace.as_str(), key.as_slice()));
                }
                Op::DeletePrefix { .. } => {}
            }
        }
        let mut keep = keep.into_iter();
        self.ops.retain(|_| keep.next().unwrap_or(true));
    }

    /// The bytes of the keys and values it writes (what a commit costs
    /// beyond its fixed price).
    pub fn bytes(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put { key, value, .. } => key.len() + value.len(),
                Op::Delete { key, .. } => key.len(),
                Op::DeletePrefix { prefix, .. } => prefix.len(),
            })
            .sum()
    }

    /// Applies the writes in order to `map`, a store held in memory
    /// ((namespace, key) -> value): for the deterministic core's tests and
    /// benches, which play the store's part themselves.
    pub fn apply_to(&self, map: &mut MemoryMap) {
        for op in &self.ops {
            match op {
                Op::Put {
                    namespace,
                    key,
                    value,
                } => {
                    map.insert((namespace.clone(), key.clone()), value.clone());
                }
                Op::Delete { namespace, key } => {
                    map.remove(&(namespace.clone(), key.clone()));
                }
                Op::DeletePrefix { namespace, prefix } => {
                    map.retain(|(ns, k), _| ns != namespace || !k.starts_with(prefix));
                }
            }
        }
    }
}

/// A store's contents in memory: (namespace, key) -> value
/// ([`Batch::apply_to`]).
pub type MemoryMap = std::collections::BTreeMap<(String, Vec<u8>), Vec<u8>>;

/// What [`crate::Store::list`] answers, from a store held in memory: the
/// entries of `namespace` whose key starts with `prefix`, in key order.
pub fn list_memory(map: &MemoryMap, namespace: &str, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    map.range((namespace.to_owned(), prefix.to_vec())..)
        .take_while(|((ns, k), _)| ns == namespace && k.starts_with(prefix))
        .map(|((_, k), v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Squashed, a batch of random writes over a few keys leaves every
    /// store it is applied to as it was, and writes each key once.
    #[test]
    fn a_squashed_batch_leaves_the_store_as_the_whole_batch() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..500 {
            let mut start = MemoryMap::new();
            for k in 0..4u8 {
                if next(2) == 0 {
                    start.insert(("a".into(), vec![k, 1]), vec![9]);
                }
            }
            let mut b = Batch::new();
            for _ in 0..next(12) {
                let ns = if next(4) == 0 { "b" } else { "a" };
                let key = vec![next(4) as u8, next(2) as u8];
                match next(6) {
                    0 => b.delete(ns, key),
                    1 => b.delete_prefix(ns, vec![key[0]]),
                    v => b.put(ns, key, vec![v as u8]),
                };
            }
            let (mut whole, mut squashed) = (start.clone(), start);
            b.apply_to(&mut whole);
            let before = b.len();
            b.squash();
            b.apply_to(&mut squashed);
            assert_eq!(whole, squashed, "{b:?}");
            assert!(b.len() <= before);
            let mut keys: Vec<_> = b
                .ops()
                .iter()
                .filter_map(|op| match op {
                    Op::Put { namespace, key, .. } | Op::Delete { namespace, key } => {
                        Some((namespace.clone(), key.clone()))
                    }
                    Op::DeletePrefix { .. } => None,
                })
                .collect();
            let n = keys.len();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), n, "{b:?}");
        }
        let mut b = Batch::new();
        b.put("channels", vec![1], vec![1])
            .put("onions", vec![2], vec![2])
            .put("channels", vec![1], vec![3]);
        b.squash();
        assert_eq!(
            b.ops(),
            [
                Op::Put {
                    namespace: "onions".into(),
                    key: vec![2],
                    value: vec![2]
                },
                Op::Put {
                    namespace: "channels".into(),
                    key: vec![1],
                    value: vec![3]
                }
            ]
        );
    }

    #[test]
    fn a_batch_counts_the_bytes_of_its_keys_and_values() {
        let mut b = Batch::new();
        assert_eq!(b.bytes(), 0);
        b.put("payments", vec![1; 33], vec![2; 185])
            .delete("channels", vec![3; 32])
            .delete_prefix("remote_htlcs", vec![4; 32]);
        assert_eq!(b.bytes(), 33 + 185 + 32 + 32);
    }
}
