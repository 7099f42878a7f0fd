//! The BIP39 seed. The mnemonic is shown to the user once (`beongae init`)
//! and stored in the data directory readable by the owner only.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use bitcoin::bip32::Xpriv;
use bitcoin::NetworkKind;

/// Why a seed could not be made, parsed, stored or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// The phrase is not a valid BIP39 mnemonic.
    #[error("not a valid BIP39 mnemonic ({0}); check the words and their order")]
    InvalidMnemonic(String),
    /// A seed file already exists where a new one would go.
    #[error("a seed already exists at {0}; refusing to overwrite it (move it away first if you really mean to)")]
    Exists(String),
    /// File system error.
    #[error("seed file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The seed file is readable by others.
    #[error("seed file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
}

/// A BIP39 mnemonic (24 words when generated here). Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed {
    mnemonic: bip39::Mnemonic,
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl Seed {
    /// A new 24-word seed from 32 bytes of entropy (from the caller's CSPRNG).
    pub fn from_entropy(entropy: [u8; 32]) -> Seed {
        Seed {
            mnemonic: bip39::Mnemonic::from_entropy(&entropy)
                .expect("32 bytes is a valid BIP39 entropy length"),
        }
    }

    /// Parses a phrase typed by a user (English word list, any spacing or case).
    pub fn from_phrase(phrase: &str) -> Result<Seed, SeedError> {
        let normalized = phrase
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ");
        bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalized)
            .map(|mnemonic| Seed { mnemonic })
            .map_err(|e| SeedError::InvalidMnemonic(e.to_string()))
    }

    /// The words, to show the user once.
    pub fn phrase(&self) -> String {
        self.mnemonic.to_string()
    }

    /// The BIP32 master key (BIP39 seed with an empty passphrase).
    pub fn master_key(&self, network: NetworkKind) -> Xpriv {
        let seed = self.mnemonic.to_seed("");
        Xpriv::new_master(network, &seed).expect("a 64-byte BIP39 seed is a valid BIP32 seed")
    }

    /// Writes the seed to `path` (mode 0600), refusing to overwrite one.
    pub fn save(&self, path: &Path) -> Result<(), SeedError> {
        let io = |source| SeedError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    SeedError::Exists(path.display().to_string())
                } else {
                    io(e)
                }
            })?;
        f.write_all(self.phrase().as_bytes()).map_err(io)?;
        f.write_all(b"\n").map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Reads the seed stored at `path`; refuses a file others can read.
    pub fn load(path: &Path) -> Result<Seed, SeedError> {
        let io = |source| SeedError::Io {
            path: path.display().to_string(),
            source,
        };
        let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SeedError::Permissions {
                path: path.display().to_string(),
                mode,
            });
        }
        Seed::from_phrase(&fs::read_to_string(path).map_err(io)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BIP39 test vector (Trezor's list): all-zero entropy, 24 words,
    /// passphrase "TREZOR" would give another seed; here we check the words.
    #[test]
    fn bip39_words_for_zero_entropy() {
        let s = Seed::from_entropy([0; 32]);
        assert_eq!(s.phrase(), "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art");
        assert_eq!(Seed::from_phrase("  Abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon ART ").unwrap(), s);
        assert!(matches!(
            Seed::from_phrase("abandon abandon"),
            Err(SeedError::InvalidMnemonic(_))
        ));
        assert_eq!(format!("{s:?}"), "Seed(..)");
    }

    #[test]
    fn saved_0600_loaded_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        let s = Seed::from_entropy([7; 32]);
        s.save(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(Seed::load(&path).unwrap(), s);
        assert!(matches!(
            Seed::from_entropy([8; 32]).save(&path),
            Err(SeedError::Exists(_))
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Seed::load(&path),
            Err(SeedError::Permissions { mode: 0o644, .. })
        ));
    }
}
