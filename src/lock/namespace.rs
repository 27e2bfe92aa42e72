//! In-process read/write locks per lock path.
//!
//! They order the threads of one process before any of them touches the share's fcntl locks:
//! classic POSIX locks cannot tell two threads of one process apart, and even OFD locks would
//! cost an NFS round trip per waiter. Entries exist only while someone holds or waits for them,
//! so the map never grows with the number of keys ever touched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::lock_api::{ArcRwLockReadGuard, ArcRwLockWriteGuard};
use parking_lot::{Mutex, RawRwLock, RwLock};

/// The per-path read/write locks of one process.
#[derive(Default)]
pub struct Namespace {
    slots: Arc<Mutex<HashMap<PathBuf, Slot>>>,
}

struct Slot {
    lock: Arc<RwLock<()>>,
    users: usize,
}

/// A held namespace read lock.
pub struct NamespaceReadGuard {
    guard: Option<ArcRwLockReadGuard<RawRwLock, ()>>,
    _user: User,
}

/// A held namespace write lock.
pub struct NamespaceWriteGuard {
    guard: Option<ArcRwLockWriteGuard<RawRwLock, ()>>,
    _user: User,
}

/// One registered user of a slot; unregisters (and frees an unused slot) when dropped.
struct User {
    slots: Arc<Mutex<HashMap<PathBuf, Slot>>>,
    key: PathBuf,
}

impl Drop for User {
    fn drop(&mut self) {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get_mut(&self.key) {
            slot.users -= 1;
            if slot.users == 0 {
                slots.remove(&self.key);
            }
        }
    }
}

impl Drop for NamespaceReadGuard {
    fn drop(&mut self) {
        // Unlock before `_user` unregisters, so a freed slot is never still locked.
        self.guard.take();
    }
}

impl Drop for NamespaceWriteGuard {
    fn drop(&mut self) {
        self.guard.take();
    }
}

impl Namespace {
    /// A new, empty namespace.
    pub fn new() -> Namespace {
        Namespace::default()
    }

    fn enter(&self, key: &Path) -> (Arc<RwLock<()>>, User) {
        let mut slots = self.slots.lock();
        let slot = slots.entry(key.to_path_buf()).or_insert_with(|| Slot {
            lock: Arc::new(RwLock::new(())),
            users: 0,
        });
        slot.users += 1;
        let user = User {
            slots: self.slots.clone(),
            key: key.to_path_buf(),
        };
        (slot.lock.clone(), user)
    }

    /// Takes the read lock on `key`, waiting until `deadline`; `None` when it passed.
    ///
    /// Fair: a waiting writer blocks new readers, so in-process readers cannot starve it.
    pub fn read(&self, key: &Path, deadline: Instant) -> Option<NamespaceReadGuard> {
        let (lock, user) = self.enter(key);
        let guard = lock.try_read_arc_until(deadline)?;
        Some(NamespaceReadGuard {
            guard: Some(guard),
            _user: user,
        })
    }

    /// Takes the write lock on `key`, waiting until `deadline`; `None` when it passed.
    pub fn write(&self, key: &Path, deadline: Instant) -> Option<NamespaceWriteGuard> {
        let (lock, user) = self.enter(key);
        let guard = lock.try_write_arc_until(deadline)?;
        Some(NamespaceWriteGuard {
            guard: Some(guard),
            _user: user,
        })
    }

    /// Number of paths currently held or waited for.
    pub fn len(&self) -> usize {
        self.slots.lock().len()
    }

    /// Whether no path is held or waited for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn map_returns_to_empty_after_a_burst_of_distinct_keys() {
        let ns = Namespace::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut held = Vec::new();
        for i in 0..1000 {
            let key = PathBuf::from(format!("bucket/key-{i}"));
            if i % 2 == 0 {
                held.push(ns.read(&key, deadline).map(|_| ()));
            } else {
                held.push(ns.write(&key, deadline).map(|_| ()));
            }
        }
        assert!(held.iter().all(Option::is_some));
        assert!(ns.is_empty(), "{} slots left", ns.len());
        let a = ns.read(Path::new("x"), deadline);
        let b = ns.read(Path::new("x"), deadline);
        assert_eq!(ns.len(), 1);
        drop(a);
        assert_eq!(ns.len(), 1);
        drop(b);
        assert!(ns.is_empty());
    }

    #[test]
    fn writer_excludes_readers_until_deadline() {
        let ns = Namespace::new();
        let key = Path::new("k");
        let w = ns.write(key, Instant::now() + Duration::from_secs(1));
        assert!(w.is_some());
        let start = Instant::now();
        assert!(ns.read(key, start + Duration::from_millis(50)).is_none());
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(ns.len(), 1);
        drop(w);
        assert!(ns
            .read(key, Instant::now() + Duration::from_secs(1))
            .is_some());
        assert!(ns.is_empty());
    }
}
