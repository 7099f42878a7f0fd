//! BOLT 3 §"Per-commitment Secret Requirements" and §"Efficient
//! Per-commitment Secret Storage" (the "shachain").

use bitcoin::hashes::{sha256, Hash};

/// The first per-commitment secret index: `2^48 - 1`; indexes count down.
pub const FIRST_INDEX: u64 = (1 << 48) - 1;

/// Why a received secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShachainError {
    /// The index is beyond 48 bits.
    #[error("per-commitment index {0} exceeds 2^48 - 1")]
    IndexOutOfRange(u64),
    /// BOLT 3 `insert_secret`: "The secret for I is incorrect": it does not
    /// derive the secrets already received, so it was not generated from the
    /// same seed.
    #[error(
        "secret for index {index} does not derive the secret already stored for index {known}"
    )]
    Inconsistent {
        /// Index of the new secret.
        index: u64,
        /// Index of the stored secret it fails to derive.
        known: u64,
    },
    /// Secrets arrive one commitment at a time, counting down ("secrets are
    /// always received in descending order"); a gap or a repeat would
    /// overwrite a bucket still needed to derive an older secret.
    #[error("per-commitment index {index} out of order, expected {expected}")]
    OutOfOrder {
        /// Index of the new secret.
        index: u64,
        /// The only index acceptable next.
        expected: u64,
    },
}

/// "flip(B)": toggles bit `B mod 8` of byte `B div 8`.
fn flip(p: &mut [u8; 32], b: u32) {
    p[(b / 8) as usize] ^= 1 << (b % 8);
}

/// BOLT 3 `derive_secret(base, bits, I)`.
fn derive_secret(base: &[u8; 32], bits: u32, index: u64) -> [u8; 32] {
    let mut p = *base;
    for b in (0..bits).rev() {
        if index >> b & 1 == 1 {
            flip(&mut p, b);
            p = sha256::Hash::hash(&p).to_byte_array();
        }
    }
    p
}

/// BOLT 3 `generate_from_seed(seed, I)`: the `I`th per-commitment secret.
pub fn generate_from_seed(seed: &[u8; 32], index: u64) -> Result<[u8; 32], ShachainError> {
    if index > FIRST_INDEX {
        return Err(ShachainError::IndexOutOfRange(index));
    }
    Ok(derive_secret(seed, 48, index))
}

/// BOLT 3 `where_to_put_secret(I)`: the number of trailing zeros (48 for 0).
fn bucket(index: u64) -> u32 {
    index.trailing_zeros().min(48)
}

/// Compact O(log n) storage of received per-commitment secrets: at most 49
/// (index, secret) pairs, from which every received secret can be derived.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretStore {
    known: [Option<(u64, [u8; 32])>; 49],
}

impl Default for SecretStore {
    fn default() -> Self {
        SecretStore { known: [None; 49] }
    }
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.known.iter().flatten().count();
        write!(f, "SecretStore({n} buckets)")
    }
}

impl SecretStore {
    /// An empty store.
    pub fn new() -> Self {
        SecretStore::default()
    }

    /// BOLT 3 `insert_secret(secret, I)`: stores the secret after checking it
    /// derives every secret already stored in lower buckets and comes right
    /// after the last one received. On error the store is unchanged.
    pub fn insert(&mut self, index: u64, secret: [u8; 32]) -> Result<(), ShachainError> {
        if index > FIRST_INDEX {
            return Err(ShachainError::IndexOutOfRange(index));
        }
        if let Some(min) = self.min_index() {
            let expected = min.wrapping_sub(1);
            if index != expected || min == 0 {
                return Err(ShachainError::OutOfOrder { index, expected });
            }
        }
        let b = bucket(index);
        for (known, known_secret) in self.known[..b as usize].iter().flatten() {
            if derive_secret(&secret, b, *known) != *known_secret {
                return Err(ShachainError::Inconsistent {
                    index,
                    known: *known,
                });
            }
        }
        self.known[b as usize] = Some((index, secret));
        Ok(())
    }

    /// Rebuilds a store from its [`SecretStore::entries`] (persistence):
    /// each secret goes to its bucket and must derive the lower-bucket
    /// secrets under its prefix.
    pub fn from_entries(
        entries: impl IntoIterator<Item = (u64, [u8; 32])>,
    ) -> Result<Self, ShachainError> {
        let mut store = SecretStore::new();
        for (index, secret) in entries {
            if index > FIRST_INDEX {
                return Err(ShachainError::IndexOutOfRange(index));
            }
            let b = bucket(index) as usize;
            if store.known[b].is_some() {
                return Err(ShachainError::Inconsistent {
                    index,
                    known: index,
                });
            }
            store.known[b] = Some((index, secret));
        }
        for (b, entry) in store.known.iter().enumerate() {
            let Some((index, secret)) = entry else {
                continue;
            };
            let mask = !((1u64 << b) - 1);
            // Lower buckets it covers (indexes under its prefix) must match.
            for (known, known_secret) in store.known[..b].iter().flatten() {
                if *known & mask == *index
                    && derive_secret(secret, b as u32, *known) != *known_secret
                {
                    return Err(ShachainError::Inconsistent {
                        index: *index,
                        known: *known,
                    });
                }
            }
        }
        Ok(store)
    }

    /// BOLT 3 `derive_old_secret(I)`: the secret at `index`, if it was received
    /// (directly or derivably).
    pub fn get(&self, index: u64) -> Option<[u8; 32]> {
        self.known.iter().enumerate().find_map(|(b, entry)| {
            let (known, secret) = entry.as_ref()?;
            let mask = !((1u64 << b) - 1);
            (index & mask == *known).then(|| derive_secret(secret, b as u32, index))
        })
    }

    /// The lowest index received so far (the most recent secret), if any.
    pub fn min_index(&self) -> Option<u64> {
        self.known.iter().flatten().map(|(i, _)| *i).min()
    }

    /// The stored pairs, for persistence.
    pub fn entries(&self) -> impl Iterator<Item = (u64, [u8; 32])> + '_ {
        self.known.iter().flatten().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repeat or a gap is refused and the store keeps every secret
    /// derivable (a repeat of 2^48-1 after 2^48-3 would otherwise overwrite
    /// the bucket that 2^48-3 is derived from).
    #[test]
    fn entries_round_trip() {
        let seed = [4u8; 32];
        let mut store = SecretStore::new();
        for i in 0..77 {
            let idx = FIRST_INDEX - i;
            store
                .insert(idx, generate_from_seed(&seed, idx).unwrap())
                .unwrap();
        }
        let back = SecretStore::from_entries(store.entries()).unwrap();
        assert_eq!(back, store);
        let mut wrong: Vec<_> = store.entries().collect();
        wrong[1].1[0] ^= 1;
        assert!(SecretStore::from_entries(wrong).is_err());
    }

    #[test]
    fn out_of_order_secrets_are_refused() {
        let seed = [9u8; 32];
        let mut store = SecretStore::new();
        for i in 0..3 {
            let idx = FIRST_INDEX - i;
            store
                .insert(idx, generate_from_seed(&seed, idx).unwrap())
                .unwrap();
        }
        let again = generate_from_seed(&seed, FIRST_INDEX).unwrap();
        assert_eq!(
            store.insert(FIRST_INDEX, again),
            Err(ShachainError::OutOfOrder {
                index: FIRST_INDEX,
                expected: FIRST_INDEX - 3
            })
        );
        let gap = FIRST_INDEX - 4;
        assert_eq!(
            store.insert(gap, generate_from_seed(&seed, gap).unwrap()),
            Err(ShachainError::OutOfOrder {
                index: gap,
                expected: FIRST_INDEX - 3
            })
        );
        for i in 0..3 {
            let idx = FIRST_INDEX - i;
            assert_eq!(
                store.get(idx),
                Some(generate_from_seed(&seed, idx).unwrap())
            );
        }
    }

    #[test]
    fn every_received_secret_is_derivable() {
        let seed = [0x5a; 32];
        let mut store = SecretStore::new();
        for i in 0..1000u64 {
            let index = FIRST_INDEX - i;
            store
                .insert(index, generate_from_seed(&seed, index).unwrap())
                .unwrap();
        }
        assert!(store.entries().count() <= 49);
        for i in 0..1000u64 {
            let index = FIRST_INDEX - i;
            assert_eq!(
                store.get(index),
                Some(generate_from_seed(&seed, index).unwrap()),
                "{index}"
            );
        }
        assert_eq!(store.get(FIRST_INDEX - 1000), None);
        assert_eq!(store.min_index(), Some(FIRST_INDEX - 999));
    }

    #[test]
    fn wrong_seed_is_refused_and_store_unchanged() {
        let mut store = SecretStore::new();
        store
            .insert(
                FIRST_INDEX,
                generate_from_seed(&[1; 32], FIRST_INDEX).unwrap(),
            )
            .unwrap();
        let before = store.clone();
        let bad = generate_from_seed(&[2; 32], FIRST_INDEX - 1).unwrap();
        assert_eq!(
            store.insert(FIRST_INDEX - 1, bad),
            Err(ShachainError::Inconsistent {
                index: FIRST_INDEX - 1,
                known: FIRST_INDEX
            })
        );
        assert_eq!(store, before);
        assert_eq!(
            store.insert(1 << 48, [0; 32]),
            Err(ShachainError::IndexOutOfRange(1 << 48))
        );
    }
}
