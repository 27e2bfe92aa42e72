//! Cross-process locks on files of the share: fcntl byte-range locks (OFD or classic), or
//! `LockFileEx` on Windows, through `crate::platform`.
//!
//! # The two ranges
//! Every lock file carries two one-byte ranges:
//!
//! - `INTENT` (byte 0): a writer takes it exclusively first and keeps it; a reader takes it
//!   shared only for the moment of its own acquisition and then lets go.
//! - `DATA` (byte 1): readers hold it shared for as long as they read; a writer takes it
//!   exclusively once it holds `INTENT`.
//!
//! A writer that holds `INTENT` therefore closes the door: readers that arrive later wait at
//! `INTENT` instead of piling onto `DATA`, the readers already inside drain, and the writer gets
//! `DATA` after at most the longest read in flight. Readers hold `INTENT` for microseconds, so
//! a writer waiting for it gets it at the first gap. Without `INTENT`, overlapping readers
//! from other hosts could keep `DATA` shared forever. (The read pool adds a lease so that one
//! process's pooled shared lock also yields to a waiting writer; see `pool`.)
//!
//! Old MinIO servers lock `fs.json` with `flock`, which NFS clients turn into whole-file
//! byte-range locks: both ranges overlap those, so old and new servers exclude each other.
//!
//! # Lock, then verify
//! A lock is taken on an open file, but the file at the path may have been unlinked or replaced
//! while we waited. After every acquisition we compare the locked handle with the file now at
//! the path (device, inode, link count) and start over if they differ. ENOENT and ESTALE there,
//! and ESTALE from the open or the lock calls themselves, mean "replaced", not failure.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Instant;

use crate::platform::{self, LockKind, LockStyle, OpenMode, Range, Root};

use super::LockError;

/// Byte taken exclusively by a writer for its whole hold, and briefly shared by arriving readers.
pub const INTENT: Range = Range { start: 0, len: 1 };
/// Byte held shared by readers while they read, exclusively by a writer while it publishes.
pub const DATA: Range = Range { start: 1, len: 1 };

/// Whether acquiring may create a missing lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Create the lock file if it is missing (its directory must exist).
    Yes,
    /// A missing lock file is `LockError::NotFound`.
    No,
}

/// An open lock file with a lock held on it; dropping it releases the lock.
#[derive(Debug)]
pub struct ShareLock {
    file: File,
    style: LockStyle,
    kind: LockKind,
}

impl ShareLock {
    /// The locked file (read or write it through this handle, never a second one: closing any
    /// other handle of the file would drop a classic lock).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Shared or exclusive.
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// Takes an exclusive whole-file lock on a file nobody else can know yet (a fresh temp
    /// file), without waiting: a sweep of another process then sees it as live.
    pub fn exclusive_now(file: File, style: LockStyle) -> io::Result<ShareLock> {
        if platform::try_lock(&file, style, LockKind::Exclusive, Range::WHOLE)? {
            Ok(ShareLock {
                file,
                style,
                kind: LockKind::Exclusive,
            })
        } else {
            Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "a fresh file is already locked by someone else",
            ))
        }
    }
}

impl Drop for ShareLock {
    fn drop(&mut self) {
        // Closing releases the lock anyway; unlocking first makes the hand-off independent of
        // when the last reference to the open file goes away.
        let _ = platform::unlock(&self.file, self.style, Range::WHOLE);
    }
}

/// Acquires `kind` on the lock file `rel` beneath `root`, verifying after every wait that the
/// locked file is still the one at the path.
///
/// Expects the caller to hold the matching namespace lock for `rel` (classic locks cannot keep
/// two threads of one process apart).
pub fn acquire(
    root: &Root,
    rel: &Path,
    style: LockStyle,
    kind: LockKind,
    create: Create,
    deadline: Instant,
) -> Result<ShareLock, LockError> {
    let mode = match (kind, create) {
        (_, Create::Yes) => OpenMode::ReadWriteCreate,
        (LockKind::Shared, Create::No) => OpenMode::Read,
        (LockKind::Exclusive, Create::No) => OpenMode::ReadWrite,
    };
    let io_err = |source: io::Error| LockError::Io {
        path: rel.to_path_buf(),
        source,
    };
    let timeout = || LockError::Timeout {
        path: rel.to_path_buf(),
        what: "share",
        kind,
    };
    let mut stale = platform::StaleRetry::new();
    loop {
        if Instant::now() >= deadline {
            return Err(timeout());
        }
        let file = match root.open(rel, mode) {
            Ok(f) => f,
            Err(e) if platform::is_stale(&e) => {
                stale.pause(deadline);
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LockError::NotFound {
                    path: rel.to_path_buf(),
                })
            }
            Err(e) => return Err(io_err(e)),
        };
        let held = ShareLock { file, style, kind };
        // ESTALE from fcntl: another host replaced the file after our client resolved the
        // name (Gluster's open-behind opens lazily, at the first lock call). Same as a failed
        // verify: open the path again.
        let got = match take_ranges(&held.file, style, kind, deadline) {
            Ok(got) => got,
            Err(e) if platform::is_stale(&e) => {
                stale.pause(deadline);
                continue;
            }
            Err(e) => return Err(io_err(e)),
        };
        if !got {
            return Err(timeout());
        }
        match still_at_path(root, rel, &held.file) {
            Ok(true) => return Ok(held),
            Ok(false) => continue,
            Err(e) => return Err(io_err(e)),
        }
    }
}

/// Takes the ranges of `kind` on `file` (see the module doc); false when `deadline` passed.
fn take_ranges(
    file: &File,
    style: LockStyle,
    kind: LockKind,
    deadline: Instant,
) -> io::Result<bool> {
    match kind {
        LockKind::Shared => {
            // No writer announced: straight to the data byte (one fcntl instead of lock, lock,
            // unlock). A writer that announces itself right after this look waits for this
            // reader on DATA, exactly as if it had come a moment later.
            if platform::conflicting(file, style, LockKind::Shared, INTENT)? {
                let passed = wait(file, style, LockKind::Shared, INTENT, deadline)?;
                let got = passed && wait(file, style, LockKind::Shared, DATA, deadline)?;
                if passed {
                    platform::unlock(file, style, INTENT)?;
                }
                Ok(got)
            } else {
                wait(file, style, LockKind::Shared, DATA, deadline)
            }
        }
        LockKind::Exclusive => Ok(wait(file, style, LockKind::Exclusive, INTENT, deadline)?
            && wait(file, style, LockKind::Exclusive, DATA, deadline)?),
    }
}

fn wait(
    file: &File,
    style: LockStyle,
    kind: LockKind,
    range: Range,
    deadline: Instant,
) -> io::Result<bool> {
    platform::lock_until(file, style, kind, range, deadline)
}

/// Whether `file` is still the file at `rel` and still linked.
pub fn still_at_path(root: &Root, rel: &Path, file: &File) -> io::Result<bool> {
    let held = match platform::identity(file) {
        Ok(id) => id,
        Err(e) if platform::is_stale(&e) => return Ok(false),
        Err(e) => return Err(e),
    };
    if held.nlink == 0 {
        return Ok(false);
    }
    match root.identity(rel) {
        Ok(now) => Ok(now.same_file(&held)),
        Err(e) if platform::is_stale(&e) || e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether another process (or, with OFD locks, another open file) holds any lock on `file`.
pub fn held_elsewhere(file: &File, style: LockStyle) -> io::Result<bool> {
    platform::conflicting(file, style, LockKind::Exclusive, Range::WHOLE)
}

/// Whether a writer elsewhere has announced itself on `file`'s INTENT range.
pub fn writer_waiting(file: &File, style: LockStyle) -> io::Result<bool> {
    platform::conflicting(file, style, LockKind::Shared, INTENT)
}
