//! The lock discipline: in-process namespace locks, then cross-process locks on the share.
//!
//! Every object has one lock file on the share (its `fs.json`). A reader takes the namespace
//! read lock of that path, then joins or takes the pooled shared lock on the file, and holds
//! both until it has sent the last byte. A writer takes the namespace write lock, then an
//! exclusive lock on its own handle of the file, only for the moment of publishing. Every wait
//! ends by a deadline with `LockError::Timeout`; a crashed process's locks go with it, since
//! the kernel (or the NFS server) drops them.

pub mod namespace;
pub mod pool;
pub mod ranges;
pub mod share;

/// The old path of `crate::debug::locks`, kept so tests written against it on other
/// branches still build; new code uses `crate::debug::locks`.
#[doc(hidden)]
pub use crate::debug::locks as driver;

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::platform::{LockKind, LockStyle, OpenMode, Root};

pub use share::{Create, ShareLock};

use namespace::{Namespace, NamespaceReadGuard, NamespaceWriteGuard};
use pool::{Generation, ReadPool};

/// Errors of the lock layer.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// A wait passed its deadline.
    #[error("timed out waiting for the {what} {kind} lock on {}", path.display())]
    Timeout {
        /// The lock file.
        path: PathBuf,
        /// "namespace" or "share".
        what: &'static str,
        /// What was asked for.
        kind: LockKind,
    },
    /// The lock file does not exist (and was not to be created).
    #[error("{} does not exist", path.display())]
    NotFound {
        /// The lock file.
        path: PathBuf,
    },
    /// The share refused an operation.
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// Settings of the lock layer.
#[derive(Debug, Clone)]
pub struct LockConfig {
    /// Longest any acquisition may wait.
    pub timeout: Duration,
    /// How long a pooled shared lock may be joined before asking the share for waiting writers.
    pub lease: Duration,
    /// Force a lock style; `None` picks OFD locks where the kernel has them.
    pub style: Option<LockStyle>,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            timeout: Duration::from_secs(30),
            lease: Duration::from_millis(200),
            style: None,
        }
    }
}

fn mode(kind: LockKind) -> &'static str {
    match kind {
        LockKind::Shared => "shared",
        LockKind::Exclusive => "exclusive",
    }
}

fn record(what: &'static str, kind: LockKind, started: Instant, timed_out: bool) {
    crate::metrics::get().lock_wait(what, mode(kind), started.elapsed(), timed_out);
}

fn record_share<T>(kind: LockKind, started: Instant, r: &Result<T, LockError>) {
    let timed_out = matches!(r, Err(LockError::Timeout { .. }));
    record("share", kind, started, timed_out);
}

/// The locks of one process on one share.
pub struct Locks {
    root: Arc<Root>,
    style: LockStyle,
    timeout: Duration,
    namespace: Namespace,
    pool: ReadPool,
    ranges: ranges::RangeLocks,
}

/// A held read lock: namespace read lock plus the pooled shared lock on the lock file.
pub struct ReadGuard {
    // Field order is drop order: the pooled handle must close before the namespace lets a
    // writer of this process in, or a classic-lock close could drop the writer's new lock.
    generation: Arc<Generation>,
    _namespace: NamespaceReadGuard,
}

impl ReadGuard {
    /// The locked lock file; read it through this handle only.
    pub fn file(&self) -> &File {
        self.generation.file()
    }
}

/// A held write lock: namespace write lock plus an exclusive lock on the lock file.
pub struct WriteGuard {
    lock: ShareLock,
    _namespace: NamespaceWriteGuard,
}

impl WriteGuard {
    /// The locked lock file; read and write it through this handle only.
    pub fn file(&self) -> &File {
        self.lock.file()
    }
}

impl Locks {
    /// Locks on the share at `root`.
    pub fn new(root: Arc<Root>, config: &LockConfig) -> Locks {
        let style = config.style.unwrap_or(if root.supports_ofd() {
            LockStyle::Ofd
        } else {
            LockStyle::Classic
        });
        Locks {
            root,
            style,
            timeout: config.timeout,
            namespace: Namespace::new(),
            pool: ReadPool::new(style, config.lease),
            ranges: ranges::RangeLocks::new(style),
        }
    }

    /// The share root the locks live on.
    pub fn root(&self) -> &Arc<Root> {
        &self.root
    }

    /// Tool locks forwarded from the FUSE mount.
    pub fn ranges(&self) -> &ranges::RangeLocks {
        &self.ranges
    }

    /// OFD or classic.
    pub fn style(&self) -> LockStyle {
        self.style
    }

    /// The longest any acquisition waits.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Takes the read lock of lock file `rel`.
    pub fn read(&self, rel: &Path, create: Create) -> Result<ReadGuard, LockError> {
        let deadline = self.deadline();
        let started = Instant::now();
        let ns = self.namespace.read(rel, deadline);
        record("namespace", LockKind::Shared, started, ns.is_none());
        let ns = ns.ok_or_else(|| LockError::Timeout {
            path: rel.to_path_buf(),
            what: "namespace",
            kind: LockKind::Shared,
        })?;
        let started = Instant::now();
        let generation = self.pool.acquire(&self.root, rel, create, deadline);
        record_share(LockKind::Shared, started, &generation);
        let generation = generation?;
        Ok(ReadGuard {
            generation,
            _namespace: ns,
        })
    }

    /// Takes the write lock of lock file `rel`.
    pub fn write(&self, rel: &Path, create: Create) -> Result<WriteGuard, LockError> {
        let deadline = self.deadline();
        let started = Instant::now();
        let ns = self.namespace.write(rel, deadline);
        record("namespace", LockKind::Exclusive, started, ns.is_none());
        let ns = ns.ok_or_else(|| LockError::Timeout {
            path: rel.to_path_buf(),
            what: "namespace",
            kind: LockKind::Exclusive,
        })?;
        let started = Instant::now();
        let lock = share::acquire(
            &self.root,
            rel,
            self.style,
            LockKind::Exclusive,
            create,
            deadline,
        );
        record_share(LockKind::Exclusive, started, &lock);
        let lock = lock?;
        Ok(WriteGuard {
            lock,
            _namespace: ns,
        })
    }

    /// Reads the whole lock file `rel` without holding its lock afterwards.
    ///
    /// With OFD locks this is a plain read (publishers replace lock files by rename, so a read
    /// sees one whole version). With classic locks a stray open and close would drop this
    /// process's own locks on the file, so the read goes through the pooled handle.
    pub fn peek(&self, rel: &Path) -> Result<Vec<u8>, LockError> {
        let io_err = |source| LockError::Io {
            path: rel.to_path_buf(),
            source,
        };
        let mut buf = Vec::new();
        match self.style {
            LockStyle::Ofd => {
                let mut f = match self.root.open(rel, OpenMode::Read) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(LockError::NotFound {
                            path: rel.to_path_buf(),
                        })
                    }
                    Err(e) => return Err(io_err(e)),
                };
                f.read_to_end(&mut buf).map_err(io_err)?;
            }
            LockStyle::Classic => {
                let guard = self.read(rel, Create::No)?;
                let mut f = guard.file();
                f.rewind().map_err(io_err)?;
                f.read_to_end(&mut buf).map_err(io_err)?;
            }
        }
        Ok(buf)
    }

    /// Locks a fresh temp file of this process so that sweeps elsewhere see it as live.
    pub fn hold_temp(&self, file: File) -> io::Result<ShareLock> {
        ShareLock::exclusive_now(file, self.style)
    }

    /// Whether a live process elsewhere holds a lock on `rel` (for sweeping temp files).
    ///
    /// Never ask this about this process's own files: classic locks do not report the calling
    /// process's locks, and the probe's close would drop them.
    pub fn held_elsewhere(&self, rel: &Path) -> io::Result<bool> {
        let f = self.root.open(rel, OpenMode::Read)?;
        share::held_elsewhere(&f, self.style)
    }

    /// Paths with namespace locks held or awaited (for tests and metrics).
    pub fn namespace_len(&self) -> usize {
        self.namespace.len()
    }

    /// Paths with a pooled read handle (for tests and metrics).
    pub fn pooled_len(&self) -> usize {
        self.pool.len()
    }
}
