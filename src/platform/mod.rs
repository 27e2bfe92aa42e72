//! Platform calls behind one narrow interface: the rest of nasgate never says `libc::`.
//!
//! Unix (Linux first) gets fcntl byte-range locks, OFD where the kernel and filesystem offer
//! them; Windows gets `LockFileEx`. Only this module knows which.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

/// Which flavour of byte-range lock a share is locked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockStyle {
    /// Linux open-file-description locks: owned by the open file, independent per handle.
    Ofd,
    /// Classic POSIX (or Windows) locks: owned by the process, dropped when it closes any
    /// handle of the file, so every handle of a locked file must be shared and counted.
    Classic,
}

/// Shared (read) or exclusive (write) lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Many holders at once.
    Shared,
    /// One holder, nobody else.
    Exclusive,
}

impl std::fmt::Display for LockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LockKind::Shared => "shared",
            LockKind::Exclusive => "exclusive",
        })
    }
}

/// A byte range of a lock file; `len == 0` means "to the end of the file and beyond".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// Number of bytes, 0 for all bytes from `start` on.
    pub len: u64,
}

impl Range {
    /// The whole file, as `flock` emulation on NFS locks it.
    pub const WHOLE: Range = Range { start: 0, len: 0 };
}

/// How to open a file beneath the share root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only.
    Read,
    /// Read and write an existing file.
    ReadWrite,
    /// Read and write, creating the file if missing.
    ReadWriteCreate,
    /// Create a file that must not exist yet.
    CreateNew,
    /// A handle for identity checks only (no I/O, never disturbs locks).
    Path,
    /// A directory, for listing.
    Directory,
}

/// What makes a file the same file: device and inode, plus its link count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Hard links; 0 once the file has been unlinked.
    pub nlink: u64,
}

impl FileId {
    /// Whether two identities name the same file (ignoring link counts).
    pub fn same_file(&self, other: &FileId) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// Whether an error means the file was removed or replaced behind a handle or a cached name
/// (ESTALE from NFS and GlusterFS when another host renamed over or deleted it): the caller
/// treats the file as changed under it, resolves the path again and retries.
pub fn is_stale(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ESTALE)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Whether an error means the share's client connection is gone (a killed FUSE client
/// answers ENOTCONN; Gluster's strict locks answer EBADFD on a handle whose locks were lost):
/// nothing on the share can be trusted to be locked until the root is opened again.
pub fn is_disconnected(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOTCONN | libc::ECONNABORTED | libc::EBADFD)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Paces the retries after a stale handle.
///
/// A NAS client may go on resolving a name to the replaced file until its entry cache expires
/// (one second on GlusterFS's defaults, `acdirmin` on NFS), so immediate retries would spin:
/// they start at once and back off to 50 ms, never past the caller's deadline.
#[derive(Debug, Default)]
pub struct StaleRetry {
    attempts: u32,
}

impl StaleRetry {
    /// No retry yet.
    pub fn new() -> StaleRetry {
        StaleRetry::default()
    }

    /// Waits before the next attempt; false once `deadline` has passed (give up).
    pub fn pause(&mut self, deadline: std::time::Instant) -> bool {
        let now = std::time::Instant::now();
        if now >= deadline {
            return false;
        }
        let wait = match self.attempts {
            0 => std::time::Duration::ZERO,
            n => std::time::Duration::from_millis((1u64 << n.min(6)).min(50)),
        };
        self.attempts += 1;
        std::thread::sleep(wait.min(deadline - now));
        true
    }

    /// How many retries were paced so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// What kind of entry a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (symlink, device, socket...).
    Other,
}

/// What a stat tells the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Device, inode, link count.
    pub id: FileId,
    /// File, directory or other.
    pub kind: FileKind,
}

impl Stat {
    /// Modification time as a `SystemTime`.
    pub fn modified(&self) -> std::time::SystemTime {
        let epoch = std::time::UNIX_EPOCH;
        if self.mtime_ns >= 0 {
            epoch + std::time::Duration::from_nanos(self.mtime_ns as u64)
        } else {
            epoch
        }
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (one path component).
    pub name: std::ffi::OsString,
    /// Its kind when the filesystem told us without a stat (`None`: ask `Root::stat`).
    pub kind: Option<FileKind>,
}

/// Everything a POSIX view needs to know about an entry (the FUSE front's `stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// The short form the store works with.
    pub stat: Stat,
    /// True for a symbolic link (its `stat.kind` is `Other`).
    pub symlink: bool,
    /// Permission bits (the low 12 bits of st_mode).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Last access, nanoseconds since the epoch.
    pub atime_ns: i128,
    /// Last status change, nanoseconds since the epoch.
    pub ctime_ns: i128,
}

/// A time to set on a file: a given instant or "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTime {
    /// Nanoseconds since the epoch.
    At(i128),
    /// The current time.
    Now,
}

/// Capacity figures of the filesystem holding the share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    /// Total blocks (of `block_size`).
    pub blocks: u64,
    /// Free blocks.
    pub free: u64,
    /// Blocks free to unprivileged users.
    pub available: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
    /// Block size.
    pub block_size: u32,
    /// Longest file name.
    pub name_max: u32,
}

/// A lock held by someone else, as F_GETLK reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// The range it covers.
    pub range: Range,
    /// The holding process for classic locks (0 when unknown, as with OFD locks).
    pub pid: u32,
}
