//! The FUSE front's connection to the store: mountd speaks FUSE and asks a `Backend`; this
//! is that backend, the store's POSIX view, with store errors mapped to errnos here, once.

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mountd::{
    Attr, AttrChange, Backend, Creator, Draft, Errno, Kind, LockOwner, LockType, RangeLock, Reader,
    Result, StatFs, Time,
};

use crate::lock::ranges::Owner;
use crate::lock::ReadGuard;
use crate::platform::{self, LockKind, Range, SetTime};
use crate::store::deferred::EtagWorker;
use crate::store::posix::{self, EntryKind, Refusal};
use crate::store::{Conflict, KeyReason, NameError, ObjectReader, Store, StoreError};

/// Receives every FUSE operation: its name, the errno if it failed, how long it took.
pub type Observer = Box<dyn Fn(&'static str, Option<Errno>, Duration) + Send + Sync>;

/// The store, as the mount sees it.
pub struct StoreBackend {
    store: Arc<Store>,
    /// Stores the ETags of large files after their publish.
    etags: Arc<EtagWorker>,
    /// Large drafts are hashed as they are written, not after the publish.
    hash_while_writing: bool,
    observe: Option<Observer>,
}

impl StoreBackend {
    /// The backend over `store`.
    pub fn new(store: Arc<Store>) -> StoreBackend {
        StoreBackend {
            etags: Arc::new(EtagWorker::start(&store)),
            store,
            hash_while_writing: false,
            observe: None,
        }
    }

    /// Hashes large files as they are written (`true`, for a share on a network
    /// filesystem) instead of after their publish (the default, see `store::deferred`).
    pub fn hashing_while_writing(mut self, yes: bool) -> StoreBackend {
        self.hash_while_writing = yes;
        self
    }

    /// Reports every FUSE operation (name, errno if it failed, duration) to `f`.
    pub fn with_observer(
        mut self,
        f: impl Fn(&'static str, Option<Errno>, Duration) + Send + Sync + 'static,
    ) -> StoreBackend {
        self.observe = Some(Box::new(f));
        self
    }
}

/// Fails a new request at once with EIO while the share is stalled (its operations have
/// stopped completing), as a soft NFS mount would, instead of parking one of the mount's few
/// request threads on it.
fn refuse_if_stalled() -> Result<()> {
    match crate::ops::health::installed() {
        Some(h) if h.stalled() => Err(Errno::EIO),
        _ => Ok(()),
    }
}

/// The errno a POSIX tool should see for a store error.
pub fn errno(e: &StoreError) -> Errno {
    match e {
        StoreError::NoSuchBucket(_) | StoreError::NoSuchKey { .. } => Errno::ENOENT,
        StoreError::BucketExists(_) => Errno::EEXIST,
        StoreError::BucketNotEmpty(_) => Errno::ENOTEMPTY,
        StoreError::Name(NameError::KeyTooLong | NameError::NameTooLong(_)) => Errno::ENAMETOOLONG,
        StoreError::Name(NameError::Key(_, KeyReason::Reserved)) => Errno::EPERM,
        StoreError::Name(_) => Errno::EINVAL,
        StoreError::KeyConflict { kind, .. } => match kind {
            Conflict::ParentIsObject => Errno::ENOTDIR,
            Conflict::KeysBelow
            | Conflict::ObjectAtDirectory
            | Conflict::DirectoryWithData
            | Conflict::MetadataBlocked => Errno::EISDIR,
        },
        StoreError::Busy(_) => Errno::EAGAIN,
        e if e.is_stale() => Errno::EAGAIN,
        StoreError::Refused { reason, .. } => match reason {
            Refusal::Exists => Errno::EEXIST,
            Refusal::NotEmpty => Errno::ENOTEMPTY,
            Refusal::IsDir => Errno::EISDIR,
            Refusal::NotDir => Errno::ENOTDIR,
            Refusal::TooLarge => Errno::EXDEV,
            Refusal::NotPermitted => Errno::EPERM,
            Refusal::Invalid => Errno::EINVAL,
        },
        StoreError::Io { source, .. } => io_errno(source),
        _ => Errno::EIO,
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    if let Some(n) = e.raw_os_error() {
        return Errno(n);
    }
    match e.kind() {
        ErrorKind::NotFound => Errno::ENOENT,
        ErrorKind::AlreadyExists => Errno::EEXIST,
        ErrorKind::PermissionDenied => Errno::EACCES,
        ErrorKind::DirectoryNotEmpty => Errno::ENOTEMPTY,
        ErrorKind::IsADirectory => Errno::EISDIR,
        ErrorKind::NotADirectory => Errno::ENOTDIR,
        ErrorKind::StorageFull => Errno::ENOSPC,
        ErrorKind::Unsupported => Errno::ENOLCK,
        ErrorKind::InvalidInput => Errno::EINVAL,
        _ => Errno::EIO,
    }
}

fn fail(e: StoreError) -> Errno {
    let n = errno(&e);
    if n == Errno::EIO {
        tracing::warn!("mount: {e}");
    }
    n
}

fn system_time(ns: i128) -> SystemTime {
    // Times before 1970 are kept too (tar and rsync restore them).
    let d = Duration::from_nanos(ns.unsigned_abs().min(u64::MAX as u128) as u64);
    if ns >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

fn attr(kind: EntryKind, a: &platform::Attr) -> Attr {
    Attr {
        kind: match kind {
            EntryKind::File => Kind::File,
            EntryKind::Dir => Kind::Dir,
            EntryKind::Symlink => Kind::Symlink,
        },
        size: a.stat.size,
        blocks: a.blocks,
        atime: system_time(a.atime_ns),
        mtime: system_time(a.stat.mtime_ns),
        ctime: system_time(a.ctime_ns),
        perm: (a.mode & 0o7777) as u16,
        nlink: a.stat.id.nlink as u32,
        uid: a.uid,
        gid: a.gid,
        share_ino: a.stat.id.ino,
    }
}

fn set_time(t: Time) -> SetTime {
    match t {
        Time::Now => SetTime::Now,
        Time::At(t) => SetTime::At(match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        }),
    }
}

fn change(c: AttrChange) -> posix::AttrChange {
    posix::AttrChange {
        mode: c.mode,
        uid: c.uid,
        gid: c.gid,
        atime: c.atime.map(set_time),
        mtime: c.mtime.map(set_time),
    }
}

fn creator(c: Creator) -> posix::Creator {
    posix::Creator {
        mode: c.mode,
        uid: c.uid,
        gid: c.gid,
    }
}

fn range(l: &RangeLock) -> Range {
    // The kernel says "to the end" with OFFSET_MAX; fcntl says it with a zero length.
    let len = if l.end >= i64::MAX as u64 {
        0
    } else {
        l.end.saturating_sub(l.start) + 1
    };
    Range {
        start: l.start,
        len,
    }
}

fn owner(o: LockOwner) -> Owner {
    Owner {
        node: o.node,
        owner: o.owner,
    }
}

struct OpenObject {
    reader: ObjectReader,
    /// The object's shared lock, until `let_go`.
    lock: std::sync::Mutex<Option<ReadGuard>>,
    attr: Attr,
    store: Arc<Store>,
}

impl OpenObject {
    fn held(&self) -> std::sync::MutexGuard<'_, Option<ReadGuard>> {
        match self.lock.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl Reader for OpenObject {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.reader.read_at(buf, offset).map_err(|e| io_errno(&e))
    }

    fn attr(&self) -> Attr {
        self.attr
    }

    fn file(&self) -> Option<&File> {
        self.reader.file()
    }

    fn let_go(&self) {
        let held = self.held().take();
        drop(held);
    }

    fn hold_again(&self, path: &str) {
        if self.held().is_some() {
            return;
        }
        let mut again = match self.store.open_file(path) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(path, "mount reader cannot take its lock again: {e}");
                return;
            }
        };
        // Only the version this reader opened: a newer one is no business of its own.
        let same = again
            .file()
            .and_then(|f| platform::attr_file(f).ok())
            .is_some_and(|a| {
                let a = attr(EntryKind::File, &a);
                (a.share_ino, a.size, a.mtime)
                    == (self.attr.share_ino, self.attr.size, self.attr.mtime)
            });
        if same {
            let mut held = self.held();
            if held.is_none() {
                *held = again.take_lock();
            }
        }
    }
}

struct StoreDraft {
    draft: posix::Draft,
    store: Arc<Store>,
    etags: Arc<EtagWorker>,
}

impl Draft for StoreDraft {
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        self.draft.write_at(buf, offset).map_err(fail)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.draft.read_at(buf, offset).map_err(fail)
    }

    fn set_len(&mut self, len: u64) -> Result<()> {
        self.draft.set_len(len).map_err(fail)
    }

    fn len(&self) -> u64 {
        self.draft.len()
    }

    fn set_attr(&mut self, c: AttrChange) -> Result<()> {
        self.draft.set_attr(change(c)).map_err(fail)
    }

    fn attr(&self) -> Result<Attr> {
        self.draft
            .attr()
            .map(|a| attr(EntryKind::File, &a))
            .map_err(fail)
    }

    fn publish(self: Box<Self>, path: &str) -> Result<()> {
        let StoreDraft {
            draft,
            store,
            etags,
        } = *self;
        let info = draft.publish_at(&store, path).map_err(fail)?;
        if info.etag.is_empty() {
            etags.queue(&info.bucket, &info.key);
        }
        Ok(())
    }
}

impl Backend for StoreBackend {
    fn attr(&self, path: &str) -> Result<Attr> {
        refuse_if_stalled()?;
        let (k, a) = self.store.attr(path).map_err(fail)?;
        Ok(attr(k, &a))
    }

    fn entries(&self, path: &str) -> Result<Vec<(String, Kind)>> {
        refuse_if_stalled()?;
        Ok(self
            .store
            .entries(path)
            .map_err(fail)?
            .into_iter()
            .map(|e| {
                let k = match e.kind {
                    EntryKind::File => Kind::File,
                    EntryKind::Dir => Kind::Dir,
                    EntryKind::Symlink => Kind::Symlink,
                };
                (e.name, k)
            })
            .collect())
    }

    fn open_read(&self, path: &str) -> Result<Box<dyn Reader>> {
        refuse_if_stalled()?;
        let mut reader = self.store.open_file(path).map_err(fail)?;
        let lock = std::sync::Mutex::new(reader.take_lock());
        let a = match reader.file() {
            Some(f) => platform::attr_file(f).map_err(|e| io_errno(&e))?,
            None => return Err(Errno::EISDIR),
        };
        Ok(Box::new(OpenObject {
            reader,
            lock,
            attr: attr(EntryKind::File, &a),
            store: self.store.clone(),
        }))
    }

    fn draft(&self, path: &str, keep: bool, who: Creator) -> Result<Box<dyn Draft>> {
        refuse_if_stalled()?;
        let mut draft = self.store.draft(path, keep, creator(who)).map_err(fail)?;
        if self.hash_while_writing {
            draft.hash_while_writing();
        }
        Ok(Box::new(StoreDraft {
            draft,
            store: self.store.clone(),
            etags: self.etags.clone(),
        }))
    }

    fn make_dir(&self, path: &str, who: Creator) -> Result<()> {
        refuse_if_stalled()?;
        self.store.make_dir(path, creator(who)).map_err(fail)
    }

    fn remove_dir(&self, path: &str) -> Result<()> {
        refuse_if_stalled()?;
        self.store.remove_dir(path).map_err(fail)
    }

    fn unlink(&self, path: &str) -> Result<()> {
        refuse_if_stalled()?;
        self.store.unlink(path).map_err(fail)
    }

    fn rename(&self, from: &str, to: &str, replace: bool) -> Result<()> {
        refuse_if_stalled()?;
        self.store.rename(from, to, replace).map_err(fail)
    }

    fn symlink(&self, path: &str, target: &Path, who: Creator) -> Result<()> {
        refuse_if_stalled()?;
        self.store.symlink(path, target, creator(who)).map_err(fail)
    }

    fn read_link(&self, path: &str) -> Result<PathBuf> {
        refuse_if_stalled()?;
        self.store.read_link(path).map_err(fail)
    }

    fn set_attr(&self, path: &str, c: AttrChange) -> Result<()> {
        refuse_if_stalled()?;
        self.store.set_attr(path, change(c)).map_err(fail)
    }

    fn statfs(&self) -> Result<StatFs> {
        refuse_if_stalled()?;
        let s = self.store.fs_stats().map_err(fail)?;
        Ok(StatFs {
            blocks: s.blocks,
            free: s.free,
            available: s.available,
            files: s.files,
            files_free: s.files_free,
            block_size: s.block_size,
            name_max: s.name_max,
        })
    }

    fn lock(&self, path: &str, o: LockOwner, l: RangeLock, until: Option<Instant>) -> Result<()> {
        refuse_if_stalled()?;
        let kind = match l.kind {
            LockType::Read => Some(LockKind::Shared),
            LockType::Write => Some(LockKind::Exclusive),
            LockType::Unlock => None,
        };
        match self
            .store
            .lock_range(path, owner(o), kind, range(&l), until)
            .map_err(fail)?
        {
            true => Ok(()),
            false => Err(Errno::EAGAIN),
        }
    }

    fn test_lock(&self, path: &str, o: LockOwner, l: RangeLock) -> Result<Option<RangeLock>> {
        refuse_if_stalled()?;
        let kind = match l.kind {
            LockType::Read => LockKind::Shared,
            LockType::Write => LockKind::Exclusive,
            LockType::Unlock => return Ok(None),
        };
        let held = self
            .store
            .test_range(path, owner(o), kind, range(&l))
            .map_err(fail)?;
        Ok(held.map(|h| RangeLock {
            kind: match h.kind {
                LockKind::Shared => LockType::Read,
                LockKind::Exclusive => LockType::Write,
            },
            start: h.range.start,
            end: if h.range.len == 0 {
                i64::MAX as u64
            } else {
                h.range.start + h.range.len - 1
            },
            pid: h.pid,
        }))
    }

    fn release_locks(&self, o: LockOwner) {
        self.store.release_ranges(owner(o));
    }

    fn lock_timeout(&self) -> Duration {
        self.store.lock_timeout()
    }

    fn observe(&self, op: &'static str, errno: Option<Errno>, took: Duration) {
        if let Some(f) = &self.observe {
            f(op, errno, took);
        }
    }
}
