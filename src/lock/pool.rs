//! One shared, reference-counted read handle per locked path.
//!
//! Readers of one object in one process share one open lock file and one shared lock (a
//! *generation*): one lock round trip per object instead of one per request, which matters on
//! NFS. With classic POSIX locks it is also required for correctness: closing any handle of a
//! file drops every lock the process holds on it, so only the last reader may close.
//!
//! A generation may be joined for `lease` after it was taken. After that, a new reader asks the
//! share whether a writer elsewhere has announced itself on the INTENT range: if not, the lease
//! is renewed; if so, the generation is closed to newcomers, which then take a fresh shared lock
//! (queuing behind the writer), and the closed generation drains. So one busy process cannot
//! starve a writer on another host for longer than the lease plus its longest read in flight.
//! With classic locks a fresh generation must wait until the old one has closed its handle,
//! since the process can hold only one.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::platform::{LockKind, LockStyle, Root};

use super::share::{self, Create, ShareLock};
use super::LockError;

type Entries = Arc<Mutex<HashMap<PathBuf, Weak<Entry>>>>;

/// The pool of shared read handles of one process.
pub struct ReadPool {
    entries: Entries,
    style: LockStyle,
    lease: Duration,
}

/// Bookkeeping for one path; lives while anyone acquires or holds a generation of it.
struct Entry {
    key: PathBuf,
    entries: Entries,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    current: Weak<Generation>,
    /// Generations whose handle is not yet closed.
    live: usize,
    /// A thread is taking a new shared lock for this path.
    acquiring: bool,
}

/// One shared lock on one open lock file, held for as long as any reader uses it.
pub struct Generation {
    lock: Option<ShareLock>,
    renewed: Mutex<Instant>,
    open: AtomicBool,
    entry: Arc<Entry>,
}

impl Generation {
    /// The locked lock file (read it through this handle only).
    pub fn file(&self) -> &File {
        match &self.lock {
            Some(l) => l.file(),
            None => unreachable!("a generation's lock is only taken in drop"),
        }
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        // Close the handle first: only then may a classic-lock process open the file again.
        drop(self.lock.take());
        let mut st = self.entry.state.lock();
        st.live -= 1;
        self.entry.changed.notify_all();
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut entries = self.entries.lock();
        if entries
            .get(&self.key)
            .is_some_and(|w| w.strong_count() == 0)
        {
            entries.remove(&self.key);
        }
    }
}

impl ReadPool {
    /// An empty pool for locks of `style`, joinable for `lease` without asking the share.
    pub fn new(style: LockStyle, lease: Duration) -> ReadPool {
        ReadPool {
            entries: Arc::default(),
            style,
            lease,
        }
    }

    fn entry(&self, rel: &Path) -> Arc<Entry> {
        let mut entries = self.entries.lock();
        if let Some(e) = entries.get(rel).and_then(Weak::upgrade) {
            return e;
        }
        let e = Arc::new(Entry {
            key: rel.to_path_buf(),
            entries: self.entries.clone(),
            state: Mutex::new(State {
                current: Weak::new(),
                live: 0,
                acquiring: false,
            }),
            changed: Condvar::new(),
        });
        entries.insert(rel.to_path_buf(), Arc::downgrade(&e));
        e
    }

    /// Joins or takes a shared lock on the lock file `rel`, waiting until `deadline`.
    ///
    /// Expects the caller to hold the namespace read lock of `rel`.
    pub fn acquire(
        &self,
        root: &Root,
        rel: &Path,
        create: Create,
        deadline: Instant,
    ) -> Result<Arc<Generation>, LockError> {
        let entry = self.entry(rel);
        let mut st = entry.state.lock();
        loop {
            if let Some(gen) = st.current.upgrade() {
                if gen.open.load(Ordering::Acquire) && self.renew(&gen, rel)? {
                    return Ok(gen);
                }
            }
            let must_wait = st.acquiring || (self.style == LockStyle::Classic && st.live > 0);
            if must_wait {
                if entry.changed.wait_until(&mut st, deadline).timed_out() {
                    return Err(LockError::Timeout {
                        path: rel.to_path_buf(),
                        what: "share",
                        kind: LockKind::Shared,
                    });
                }
                continue;
            }
            st.acquiring = true;
            let taken = MutexGuard::unlocked(&mut st, || {
                share::acquire(root, rel, self.style, LockKind::Shared, create, deadline)
            });
            st.acquiring = false;
            entry.changed.notify_all();
            let lock = taken?;
            st.live += 1;
            let gen = Arc::new(Generation {
                lock: Some(lock),
                renewed: Mutex::new(Instant::now()),
                open: AtomicBool::new(true),
                entry: entry.clone(),
            });
            st.current = Arc::downgrade(&gen);
            return Ok(gen);
        }
    }

    /// Whether `gen` may still be joined; closes it when a writer elsewhere is waiting.
    fn renew(&self, gen: &Generation, rel: &Path) -> Result<bool, LockError> {
        let mut renewed = gen.renewed.lock();
        if renewed.elapsed() < self.lease {
            return Ok(true);
        }
        let waiting = match share::writer_waiting(gen.file(), self.style) {
            Ok(w) => w,
            // The file was replaced behind the handle: never join it again.
            Err(e) if crate::platform::is_stale(&e) => true,
            Err(source) => {
                return Err(LockError::Io {
                    path: rel.to_path_buf(),
                    source,
                })
            }
        };
        if waiting {
            gen.open.store(false, Ordering::Release);
            Ok(false)
        } else {
            *renewed = Instant::now();
            Ok(true)
        }
    }

    /// Number of paths with a live generation or an acquisition under way.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Whether no path is pooled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
