//! What the mount needs from the store, in POSIX terms. nasgate implements it over its store
//! (every call takes the store's locks); mountd only speaks FUSE.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// An errno value, the one currency of errors at this front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// No such file or directory.
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    /// I/O error (only for what is truly unexpected).
    pub const EIO: Errno = Errno(libc::EIO);
    /// A lock wait timed out, or a lock is held elsewhere.
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    /// A wait ended by a signal to the waiting process.
    pub const EINTR: Errno = Errno(libc::EINTR);
    /// Not allowed.
    pub const EPERM: Errno = Errno(libc::EPERM);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// A name is longer than 255 bytes.
    pub const ENAMETOOLONG: Errno = Errno(libc::ENAMETOOLONG);
    /// Exists.
    pub const EEXIST: Errno = Errno(libc::EEXIST);
    /// Is a directory.
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    /// Bad file handle.
    pub const EBADF: Errno = Errno(libc::EBADF);
    /// Directory not empty.
    pub const ENOTEMPTY: Errno = Errno(libc::ENOTEMPTY);
    /// Not a directory.
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    /// Across devices (a rename too large to do atomically).
    pub const EXDEV: Errno = Errno(libc::EXDEV);
    /// No space left.
    pub const ENOSPC: Errno = Errno(libc::ENOSPC);
    /// Permission denied.
    pub const EACCES: Errno = Errno(libc::EACCES);
    /// No locks available (the share cannot carry forwarded locks).
    pub const ENOLCK: Errno = Errno(libc::ENOLCK);

    /// The errno's symbolic name, for logs and metrics.
    pub fn name(self) -> String {
        let known = [
            (Errno::ENOENT, "ENOENT"),
            (Errno::EIO, "EIO"),
            (Errno::EAGAIN, "EAGAIN"),
            (Errno::EINTR, "EINTR"),
            (Errno::EPERM, "EPERM"),
            (Errno::EINVAL, "EINVAL"),
            (Errno::ENAMETOOLONG, "ENAMETOOLONG"),
            (Errno::EEXIST, "EEXIST"),
            (Errno::EISDIR, "EISDIR"),
            (Errno::EBADF, "EBADF"),
            (Errno::ENOTEMPTY, "ENOTEMPTY"),
            (Errno::ENOTDIR, "ENOTDIR"),
            (Errno::EXDEV, "EXDEV"),
            (Errno::ENOSPC, "ENOSPC"),
            (Errno::EACCES, "EACCES"),
            (Errno::ENOLCK, "ENOLCK"),
        ];
        match known.iter().find(|(e, _)| *e == self) {
            Some((_, n)) => n.to_string(),
            None => format!("errno{}", self.0),
        }
    }
}

/// Results of backend calls.
pub type Result<T> = std::result::Result<T, Errno>;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file (an object).
    File,
    /// Directory (a bucket or a key prefix).
    Dir,
    /// Symbolic link.
    Symlink,
}

/// Attributes of an entry, as the share has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// What it is.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Last access.
    pub atime: SystemTime,
    /// Last modification.
    pub mtime: SystemTime,
    /// Last status change.
    pub ctime: SystemTime,
    /// Permission bits.
    pub perm: u16,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// The share's inode number, which changes when an object is replaced.
    pub share_ino: u64,
}

/// Mode and owner for something being created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creator {
    /// Permission bits (umask applied).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// A time to set: an instant or the current time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// This instant.
    At(SystemTime),
    /// Now.
    Now,
}

/// chmod/chown/utimens in one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttrChange {
    /// Permission bits.
    pub mode: Option<u32>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// Access time.
    pub atime: Option<Time>,
    /// Modification time.
    pub mtime: Option<Time>,
}

/// Filesystem capacity, for `df`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub free: u64,
    /// Blocks available to unprivileged users.
    pub available: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
    /// Block size.
    pub block_size: u32,
    /// Longest name.
    pub name_max: u32,
}

/// Kinds of POSIX record locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockType {
    /// F_RDLCK.
    Read,
    /// F_WRLCK.
    Write,
    /// F_UNLCK.
    Unlock,
}

/// A byte-range lock as the kernel describes it (`end` inclusive, `u64::MAX`-ish for EOF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeLock {
    /// Type.
    pub kind: LockType,
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
    /// Holder's pid when known, else 0.
    pub pid: u32,
}

/// Who holds forwarded locks: the mount's node and the kernel's lock owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockOwner {
    /// Node id of the file in this mount.
    pub node: u64,
    /// The kernel's owner id.
    pub owner: u64,
}

/// A file opened for reading: it holds the object's shared lock until dropped.
pub trait Reader: Send + Sync {
    /// Reads at `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize>;
    /// The object's attributes as opened.
    fn attr(&self) -> Attr;
    /// The data file, for kernel passthrough.
    fn file(&self) -> Option<&File>;
    /// Stops holding off writers (drops the shared lock) while staying readable: for a file
    /// this mount itself unlinks or replaces, whose open descriptor keeps the bytes.
    fn let_go(&self);
    /// Takes the shared lock again after `let_go`, when the unlink or rename it was let go
    /// for failed (or moved the file to `path`), as long as `path` still holds the version
    /// opened; a reader whose version is gone from `path` stays let go.
    fn hold_again(&self, path: &str);
}

/// A new version of a file being written: invisible until published.
pub trait Draft: Send {
    /// Writes at `offset`.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()>;
    /// Reads at `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize>;
    /// Cuts or extends it.
    fn set_len(&mut self, len: u64) -> Result<()>;
    /// Its length.
    fn len(&self) -> u64;
    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Applies mode, owner or times to the draft itself (they go live with it).
    fn set_attr(&mut self, change: AttrChange) -> Result<()>;
    /// Its attributes now.
    fn attr(&self) -> Result<Attr>;
    /// Publishes it as the object at `path`, atomically, under the object's exclusive lock.
    fn publish(self: Box<Self>, path: &str) -> Result<()>;
}

/// The store in POSIX terms; paths are `bucket/dir/name` ("" is the root).
pub trait Backend: Send + Sync + 'static {
    /// Attributes of `path` (a final symlink is not followed).
    fn attr(&self, path: &str) -> Result<Attr>;
    /// Names and kinds in directory `path`.
    fn entries(&self, path: &str) -> Result<Vec<(String, Kind)>>;
    /// Opens `path` for reading under its shared lock.
    fn open_read(&self, path: &str) -> Result<Box<dyn Reader>>;
    /// Starts a draft of `path`, with its current bytes (`keep`) or empty.
    fn draft(&self, path: &str, keep: bool, who: Creator) -> Result<Box<dyn Draft>>;
    /// mkdir.
    fn make_dir(&self, path: &str, who: Creator) -> Result<()>;
    /// rmdir.
    fn remove_dir(&self, path: &str) -> Result<()>;
    /// unlink.
    fn unlink(&self, path: &str) -> Result<()>;
    /// rename; `replace` false refuses an existing target.
    fn rename(&self, from: &str, to: &str, replace: bool) -> Result<()>;
    /// symlink.
    fn symlink(&self, path: &str, target: &Path, who: Creator) -> Result<()>;
    /// readlink.
    fn read_link(&self, path: &str) -> Result<PathBuf>;
    /// chmod, chown, utimens.
    fn set_attr(&self, path: &str, change: AttrChange) -> Result<()>;
    /// statfs.
    fn statfs(&self) -> Result<StatFs>;
    /// Takes or releases a forwarded record lock, waiting `until` that instant when given.
    /// EAGAIN when someone else holds a conflicting lock (at the end of the wait).
    fn lock(
        &self,
        path: &str,
        owner: LockOwner,
        lock: RangeLock,
        until: Option<Instant>,
    ) -> Result<()>;
    /// The lock that conflicts with `lock`, if any.
    fn test_lock(&self, path: &str, owner: LockOwner, lock: RangeLock)
        -> Result<Option<RangeLock>>;
    /// Drops every forwarded lock of `owner`.
    fn release_locks(&self, owner: LockOwner);
    /// The longest the store waits for a lock; waits in the mount use the same bound.
    fn lock_timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    /// Counts one FUSE operation for metrics.
    fn observe(&self, _op: &'static str, _errno: Option<Errno>, _took: Duration) {}
}
