//! The daemon's logs: to stderr, and to a file that is rotated when it
//! passes a size (`beongae.log`, then `beongae.log.1` ... `.N`, oldest
//! last).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Levels a filter directive may name.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a filter (`info`, `info,beongae_node=debug`): each
/// comma-separated directive must be a level or `target=level`. A misspelt
/// level would otherwise read as a target name and log nothing useful.
pub fn check_filter(spec: &str) -> Result<(), String> {
    for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = d.rsplit_once('=').map_or(d, |(_, l)| l);
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "`{d}` is not a log level; use one of {} or `target=level` (for example `info,beongae_node=debug`)",
                LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(spec)
        .map(|_| ())
        .map_err(|e| format!("`{spec}` is not a log filter: {e}"))
}

/// A log file rotated by size.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    state: Mutex<(File, u64)>,
}

impl RotatingFile {
    /// Opens (appends to) `path`, creating its directory.
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<RotatingFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_owned(),
            max_bytes,
            keep,
            state: Mutex::new((file, size)),
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&self, state: &mut (File, u64)) -> std::io::Result<()> {
        state.0.flush()?;
        let _ = std::fs::remove_file(self.rotated(self.keep));
        for n in (1..self.keep).rev() {
            let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
        }
        if self.keep > 0 {
            std::fs::rename(&self.path, self.rotated(1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        state.0 = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        state.1 = 0;
        Ok(())
    }

    /// Appends `buf`, rotating first if it would pass the size.
    pub fn write_record(&self, buf: &[u8]) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.1 > 0 && state.1 + buf.len() as u64 > self.max_bytes {
            self.rotate(&mut state)?;
        }
        state.0.write_all(buf)?;
        state.1 += buf.len() as u64;
        Ok(())
    }
}

/// A writer for one log record.
pub struct FileWriter(Arc<RotatingFile>);

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_record(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where the file goes and how it rotates.
pub struct FileLog {
    /// The file.
    pub path: PathBuf,
    /// Rotate past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: u32,
}

/// Logs to stderr, and to `file` if given, with `filter` (`BEONGAE_LOG`
/// wins over it; default `info`).
pub fn init(filter: Option<&str>, file: Option<FileLog>) -> anyhow::Result<()> {
    let spec = match std::env::var("BEONGAE_LOG") {
        Ok(spec) => {
            check_filter(&spec).map_err(|e| anyhow::anyhow!("BEONGAE_LOG={spec:?}: {e}"))?;
            spec
        }
        Err(_) => filter.unwrap_or("info").to_owned(),
    };
    let env_filter = tracing_subscriber::EnvFilter::try_new(&spec)
        .with_context(|| format!("log filter {spec:?}"))?;
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let file_layer = match file {
        Some(f) => {
            let rotating = Arc::new(
                RotatingFile::open(&f.path, f.max_bytes, f.keep)
                    .with_context(|| format!("opening the log file {}", f.path.display()))?,
            );
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || FileWriter(rotating.clone())),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(env_filter)
        .with(stderr)
        .with(file_layer)
        .init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_rotates_by_size_and_keeps_n() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/beongae.log");
        let f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..5 {
            f.write_record(format!("{i}{}\n", "x".repeat(58)).as_bytes())
                .unwrap();
        }
        // 60-byte records, at most 100 bytes a file: one record each; the
        // two newest rotated files are kept.
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert!(read(&path).starts_with('4'));
        assert!(read(&dir.path().join("logs/beongae.log.1")).starts_with('3'));
        assert!(read(&dir.path().join("logs/beongae.log.2")).starts_with('2'));
        assert!(!dir.path().join("logs/beongae.log.3").exists());
    }

    #[test]
    fn filters_are_checked() {
        assert!(check_filter("info").is_ok());
        assert!(check_filter("info,beongae_node=debug").is_ok());
        assert!(check_filter("degub")
            .unwrap_err()
            .contains("`degub` is not a log level"));
    }
}
