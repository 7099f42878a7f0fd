//! The node identity: a secret key stored in a file only its owner can read.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bitcoin::secp256k1::SecretKey;

/// Why the node key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the file failed.
    #[error("node key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not hold a valid key.
    #[error("node key file {path} is not a 32-byte secp256k1 secret key ({len} bytes); restore it from a backup or move it away to create a new identity")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// Others can read the file.
    #[error(
        "node key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
}

/// Loads the node secret key from `path`, or creates it there (mode 0600)
/// from `fresh` if the file does not exist. `fresh` is only called then.
pub fn load_or_create(
    path: &Path,
    fresh: impl FnOnce() -> SecretKey,
) -> Result<SecretKey, IdentityError> {
    let io = |source| IdentityError::Io {
        path: path.to_owned(),
        source,
    };
    match fs::read(path) {
        Ok(bytes) => {
            let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(IdentityError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
            SecretKey::from_slice(&bytes).map_err(|_| IdentityError::Invalid {
                path: path.to_owned(),
                len: bytes.len(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = fresh();
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            file.write_all(&key.secret_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("beongae-identity-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn creates_0600_then_loads_the_same_key() {
        let dir = temp_dir("create");
        let path = dir.join("node_key");
        let key = SecretKey::from_slice(&[5; 32]).unwrap();
        assert_eq!(load_or_create(&path, || key).unwrap(), key);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = load_or_create(&path, || panic!("must not create a second key")).unwrap();
        assert_eq!(again, key);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_bad_contents_and_open_permissions() {
        let dir = temp_dir("bad");
        let path = dir.join("node_key");
        fs::write(&path, [1u8; 31]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load_or_create(&path, || unreachable!()),
            Err(IdentityError::Invalid { len: 31, .. })
        ));
        fs::write(&path, [1u8; 32]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&path, || unreachable!()).unwrap_err();
        assert!(matches!(
            err,
            IdentityError::Permissions { mode: 0o644, .. }
        ));
        assert!(err.to_string().contains("chmod 600"));
        fs::remove_dir_all(dir).unwrap();
    }
}
