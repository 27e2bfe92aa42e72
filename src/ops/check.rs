//! The share self-test: can this host create, write, fsync, rename and lock on the share, and
//! do two handles exclude each other the way shared mode needs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lock::{Create, LockConfig, Locks};
use crate::platform::{LockStyle, OpenMode, Root};

/// What the self-test found.
#[derive(Debug, Clone)]
pub struct SelfTest {
    /// Lock flavour in use.
    pub style: LockStyle,
    /// Whether a second handle saw the first one's exclusive lock (only provable in-process
    /// with OFD locks; classic locks are per process).
    pub handles_exclude: Option<bool>,
    /// Median time of an uncontended exclusive acquire + release.
    pub lock_round_trip: Duration,
}

/// Why the self-test failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A step failed.
    #[error("{step}: {source}")]
    Step {
        /// Which step.
        step: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
    /// Locking failed.
    #[error("locking: {0}")]
    Lock(#[from] crate::lock::LockError),
    /// Two handles did not exclude each other.
    #[error("a second handle could take a lock the first one holds exclusively: locks do not work on this share")]
    NoExclusion,
}

fn step(step: &'static str) -> impl Fn(std::io::Error) -> CheckError {
    move |source| CheckError::Step { step, source }
}

/// Runs the self-test on the share at `root`; leaves nothing behind.
pub fn self_test(root: &Arc<Root>, config: &LockConfig) -> Result<SelfTest, CheckError> {
    let name = PathBuf::from(format!(
        ".nasgate-check-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let renamed = name.with_extension("renamed");
    let result = run(root, config, &name, &renamed);
    // Clean up whatever the test got to create.
    for p in [&name, &renamed] {
        let _ = std::fs::remove_file(root.path().join(p));
    }
    result
}

fn run(
    root: &Arc<Root>,
    config: &LockConfig,
    name: &Path,
    renamed: &Path,
) -> Result<SelfTest, CheckError> {
    let mut f = root
        .open(name, OpenMode::CreateNew)
        .map_err(step("create a file"))?;
    f.write_all(b"nasgate check\n").map_err(step("write"))?;
    f.sync_all().map_err(step("fsync"))?;
    drop(f);
    std::fs::rename(root.path().join(name), root.path().join(renamed)).map_err(step("rename"))?;
    let config = LockConfig {
        timeout: config.timeout.min(Duration::from_secs(5)),
        ..config.clone()
    };
    let locks = Locks::new(root.clone(), &config);
    let mut trips = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        drop(locks.write(renamed, Create::No)?);
        trips.push(t.elapsed());
    }
    trips.sort();
    let guard = locks.write(renamed, Create::No)?;
    let handles_exclude = match locks.style() {
        LockStyle::Ofd => {
            let seen = locks
                .held_elsewhere(renamed)
                .map_err(step("probe the lock from a second handle"))?;
            if !seen {
                return Err(CheckError::NoExclusion);
            }
            Some(true)
        }
        LockStyle::Classic => None,
    };
    drop(guard);
    Ok(SelfTest {
        style: locks.style(),
        handles_exclude,
        lock_round_trip: trips[trips.len() / 2],
    })
}
