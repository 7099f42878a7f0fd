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

#[cfg(test)]
mod tests {
    use super::*;

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
