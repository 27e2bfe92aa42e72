//! POSIX byte-range locks that tools take through the FUSE mount, forwarded to the share.
//!
//! The kernel hands a FUSE filesystem every fcntl/lockf/flock lock with an owner id (the
//! process's file table for fcntl, the open file for flock). Each (file, owner) pair gets its
//! own open file description on the object's data file and locks it with OFD locks, so owners
//! exclude each other exactly as distinct processes would on the share itself, on this host
//! and on every other. Classic locks cannot tell two owners of one process apart, so without
//! OFD locks forwarding is refused (ENOLCK) rather than silently wrong.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::platform::{self, Holder, LockKind, LockStyle, Range};

/// Who holds forwarded locks: a file of the mount and the kernel's lock owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The mount's node id of the file.
    pub node: u64,
    /// The kernel's lock owner.
    pub owner: u64,
}

/// The open file descriptions carrying forwarded locks, one per owner and file.
pub struct RangeLocks {
    style: LockStyle,
    held: Mutex<HashMap<Owner, Arc<File>>>,
}

impl RangeLocks {
    /// Forwarding with the share's lock style.
    pub fn new(style: LockStyle) -> RangeLocks {
        RangeLocks {
            style,
            held: Mutex::new(HashMap::new()),
        }
    }

    fn usable(&self) -> io::Result<()> {
        match self.style {
            LockStyle::Ofd => Ok(()),
            LockStyle::Classic => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this share has no open-file-description locks to forward tool locks with",
            )),
        }
    }

    /// The handle `who` locks through, opened with `open` the first time.
    fn handle(&self, who: Owner, open: impl FnOnce() -> io::Result<File>) -> io::Result<Arc<File>> {
        if let Some(f) = self.held.lock().get(&who) {
            return Ok(f.clone());
        }
        let f = Arc::new(open()?);
        Ok(self.held.lock().entry(who).or_insert(f).clone())
    }

    /// Takes (`Some`) or releases (`None`) a lock on `range` for `who`; waits until `deadline`
    /// when given, else fails at once. `Ok(false)`: someone else holds a conflicting lock.
    pub fn set(
        &self,
        who: Owner,
        open: impl FnOnce() -> io::Result<File>,
        kind: Option<LockKind>,
        range: Range,
        deadline: Option<Instant>,
    ) -> io::Result<bool> {
        self.usable()?;
        let Some(kind) = kind else {
            let f = self.held.lock().get(&who).cloned();
            return match f {
                Some(f) => platform::unlock(&f, self.style, range).map(|()| true),
                None => Ok(true),
            };
        };
        let f = self.handle(who, open)?;
        match deadline {
            Some(d) => platform::lock_until(&f, self.style, kind, range, d),
            None => platform::try_lock(&f, self.style, kind, range),
        }
    }

    /// The lock that would keep `who` from taking `kind` on `range`, if any.
    pub fn test(
        &self,
        who: Owner,
        open: impl FnOnce() -> io::Result<File>,
        kind: LockKind,
        range: Range,
    ) -> io::Result<Option<Holder>> {
        self.usable()?;
        let f = self.handle(who, open)?;
        platform::holder(&f, self.style, kind, range)
    }

    /// Drops every lock `who` holds (POSIX close semantics: any close by the owner ends them).
    pub fn release(&self, who: Owner) {
        self.held.lock().remove(&who);
    }

    /// Drops every lock held on `node` by any owner (the file was released for good).
    pub fn release_node(&self, node: u64) {
        self.held.lock().retain(|k, _| k.node != node);
    }

    /// How many owners hold a handle.
    pub fn len(&self) -> usize {
        self.held.lock().len()
    }

    /// Whether no owner holds a handle.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
