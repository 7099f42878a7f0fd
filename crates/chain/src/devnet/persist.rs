//! Devnet state on disk: the main chain's blocks after genesis and the
//! mempool, each as a file of consensus-encoded items, rewritten atomically
//! (write to a temporary file, fsync, rename). Loading replays the blocks.

use std::fs;
use std::io::Write;
use std::path::Path;

use bitcoin::consensus::encode::{deserialize_partial, serialize};
use bitcoin::{Block, Transaction};

use super::Devnet;

/// Why devnet state could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// File system error.
    #[error("devnet state in {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file does not decode.
    #[error("devnet state file {0} is corrupt; move it away to start a new chain")]
    Corrupt(String),
    /// The saved blocks do not form a chain on the regtest genesis block.
    #[error("devnet block {height} in {path} does not extend the chain; move the file away to start a new chain")]
    NotAChain {
        /// The file.
        path: String,
        /// The offending height.
        height: u32,
    },
}

const BLOCKS: &str = "blocks.dat";
const MEMPOOL: &str = "mempool.dat";

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PersistError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let io = |source| PersistError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)?;
    // The rename itself is durable only once the directory is synced.
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

fn read_items<T: bitcoin::consensus::Decodable>(path: &Path) -> Result<Vec<T>, PersistError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PersistError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let mut items = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let (item, used) = deserialize_partial::<T>(rest)
            .map_err(|_| PersistError::Corrupt(path.display().to_string()))?;
        items.push(item);
        rest = &rest[used..];
    }
    Ok(items)
}

impl Devnet {
    /// Writes the chain and the mempool to `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), PersistError> {
        fs::create_dir_all(dir).map_err(|source| PersistError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let blocks: Vec<u8> = self.chain[1..]
            .iter()
            .flat_map(|b| serialize(&b.block))
            .collect();
        write_atomic(dir, BLOCKS, &blocks)?;
        let mempool: Vec<u8> = self
            .mempool
            .iter()
            .flat_map(|(_, e)| serialize(&e.tx))
            .collect();
        write_atomic(dir, MEMPOOL, &mempool)
    }

    /// Loads a chain saved with [`Devnet::save`] (an empty one if `dir` has none).
    pub fn load(dir: &Path) -> Result<Devnet, PersistError> {
        let mut devnet = Devnet::new();
        let path = dir.join(BLOCKS);
        for block in read_items::<Block>(&path)? {
            let height = devnet.height() + 1;
            let ok = block.header.prev_blockhash == devnet.tip_hash()
                && block.check_merkle_root()
                && block.header.validate_pow(block.header.target()).is_ok();
            if !ok {
                return Err(PersistError::NotAChain {
                    path: path.display().to_string(),
                    height,
                });
            }
            devnet.connect(block);
        }
        for tx in read_items::<Transaction>(&dir.join(MEMPOOL))? {
            let _ = devnet.accept(tx);
        }
        Ok(devnet)
    }
}
