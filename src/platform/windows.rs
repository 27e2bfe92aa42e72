//! Windows calls behind the same interface as `unix`: `LockFileEx` byte-range locks with
//! bounded waits, path resolution beneath the share root (drive path, mapped drive or UNC path,
//! long paths through `\\?\`), and rename-over that readers holding the old file cannot block.
//! Windows serves S3 only (no FUSE mount).
//!
//! # Where the lock bytes live
//! `LockFileEx` locks are mandatory: while a range is locked exclusively, reads of those bytes
//! through any other handle fail. The lock layer's ranges (INTENT at 0, DATA at 1, and the
//! whole-file lock on temp files) would then get in the way of plain reads of the lock files
//! and the staged data. So every range is moved up by `BASE`, far beyond the end of any real
//! file: the ranges keep their relative positions (the two-range discipline is unchanged), and
//! no data byte is ever locked. A whole-file lock from another program (MinIO locks its
//! `fs.json` files from byte 0 to the end) still overlaps them, so they exclude each other.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::{Component, Path, PathBuf, Prefix};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_LOCK_VIOLATION, ERROR_NOT_LOCKED, ERROR_SHARING_VIOLATION, HANDLE,
};
use windows_sys::Win32::Storage::FileSystem::{
    FileStandardInfo, GetFileInformationByHandle, GetFileInformationByHandleEx, LockFileEx,
    UnlockFileEx, BY_HANDLE_FILE_INFORMATION, FILE_ATTRIBUTE_DIRECTORY,
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_STANDARD_INFO,
    LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

use super::{DirEntry, FileId, FileKind, Holder, LockKind, LockStyle, OpenMode, Range, Stat};

/// Offset the lock layer's byte 0 maps to: far past the end of any file, below 2^63 so that
/// every layer between here and the disk (SMB, Wine's server) takes it as a plain offset.
const BASE: u64 = 1 << 62;
/// Length a whole-file lock maps to (from `BASE` on).
const WHOLE_LEN: u64 = 1 << 61;

/// How long a rename waits for a sharing conflict (another program holding the target open
/// without FILE_SHARE_DELETE) to clear before it gives up.
const RENAME_WAIT: Duration = Duration::from_secs(2);

/// The share root; paths are joined beneath it after checking each component.
#[derive(Debug)]
pub struct Root {
    /// The path as given (for messages).
    path: PathBuf,
    /// The path calls use: verbatim (`\\?\C:\...`, `\\?\UNC\server\share\...`) so that long
    /// paths and names Win32 would otherwise rewrite reach the filesystem unchanged.
    verbatim: PathBuf,
}

/// A directory beneath the root, for looking at many of its entries.
#[derive(Debug)]
pub struct Dir {
    full: PathBuf,
}

impl Dir {
    /// Size, times, identity and kind of entry `name` (one component; a reparse point is not
    /// followed).
    pub fn stat(&self, name: &OsStr) -> io::Result<Stat> {
        check_component(name)?;
        stat_path(&self.full.join(name))
    }
}

impl Root {
    /// Nothing to reconnect: Windows shares answer through SMB sessions the OS restores.
    pub fn reconnect(&self) -> io::Result<()> {
        Ok(())
    }

    /// Paths are resolved at each call: nothing to reopen.
    pub fn reopen_beneath(&self, _parent: &Root, _rel: &Path) -> io::Result<()> {
        Ok(())
    }

    /// Opens `path` as a share root (it must be an existing directory): a drive path
    /// (`D:\export`), a mapped drive (`M:\export`) or a UNC path (`\\server\share\export`).
    pub fn at(path: &Path) -> io::Result<Root> {
        let meta = std::fs::metadata(path)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", path.display()),
            ));
        }
        Ok(Root {
            path: path.to_path_buf(),
            verbatim: verbatim(path)?,
        })
    }

    /// Directory `rel` beneath this root as a root of its own (never through a reparse
    /// point).
    pub fn sub(&self, rel: &Path) -> io::Result<Root> {
        let full = self.beneath(rel)?;
        if !std::fs::metadata(&full)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", full.display()),
            ));
        }
        Ok(Root {
            path: self.path.join(rel),
            verbatim: full,
        })
    }

    /// Windows locks belong to the handle, as OFD locks do: handles never share or drop each
    /// other's locks, so the pool may treat them the same way.
    pub fn supports_ofd(&self) -> bool {
        true
    }

    /// The path the root was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens directory `rel` beneath the root.
    pub fn dir(&self, rel: &Path) -> io::Result<Dir> {
        let full = self.beneath(rel)?;
        if stat_path(&full)?.kind != FileKind::Dir {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(Dir { full })
    }

    /// Opens `rel` beneath the root; reparse points (symlinks, junctions) are refused.
    ///
    /// Every handle lets others read, write and delete (rename over) the file, so a publish
    /// never fails because a reader still has the old file open.
    pub fn open(&self, rel: &Path, mode: OpenMode) -> io::Result<File> {
        let full = self.beneath(rel)?;
        let mut o = OpenOptions::new();
        o.share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE);
        match mode {
            OpenMode::Read => o.read(true),
            OpenMode::ReadWrite => o.read(true).write(true),
            OpenMode::ReadWriteCreate => o.read(true).write(true).create(true),
            OpenMode::CreateNew => o.read(true).write(true).create_new(true),
            // No access rights: an identity handle only, which works on directories too.
            OpenMode::Path => o
                .access_mode(0)
                .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT),
            OpenMode::Directory => o.read(true).custom_flags(FILE_FLAG_BACKUP_SEMANTICS),
        };
        o.open(full)
    }

    /// Identity of the file now at `rel` (a reparse point is described, not followed).
    pub fn identity(&self, rel: &Path) -> io::Result<FileId> {
        let f = self.open(rel, OpenMode::Path)?;
        identity(&f)
    }

    /// Size, times, identity and kind of the entry at `rel` ("" is the root).
    pub fn stat(&self, rel: &Path) -> io::Result<Stat> {
        if rel.as_os_str().is_empty() {
            return stat_path(&self.verbatim);
        }
        stat_path(&self.beneath(rel)?)
    }

    /// The entries of directory `rel` ("" for the root), in no order.
    pub fn read_dir(&self, rel: &Path) -> io::Result<Vec<DirEntry>> {
        let full = if rel.as_os_str().is_empty() {
            self.verbatim.clone()
        } else {
            self.beneath(rel)?
        };
        let mut out = Vec::new();
        for e in std::fs::read_dir(full)? {
            let e = e?;
            let t = e.file_type()?;
            let kind = if t.is_symlink() {
                FileKind::Other
            } else if t.is_dir() {
                FileKind::Dir
            } else if t.is_file() {
                FileKind::File
            } else {
                FileKind::Other
            };
            out.push(DirEntry {
                name: e.file_name(),
                kind: Some(kind),
            });
        }
        Ok(out)
    }

    /// Creates directory `rel` and any missing parents; existing ones are fine.
    pub fn create_dir_all(&self, rel: &Path) -> io::Result<()> {
        check_relative(rel)?;
        let mut sofar = PathBuf::new();
        for part in rel.iter() {
            sofar.push(part);
            match self.create_dir(&sofar) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if self.stat(&sofar)?.kind != FileKind::Dir {
                        return Err(io::Error::new(
                            io::ErrorKind::NotADirectory,
                            format!("{} is not a directory", sofar.display()),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Creates one directory; its parent must exist.
    pub fn create_dir(&self, rel: &Path) -> io::Result<()> {
        std::fs::create_dir(self.beneath(rel)?)
    }

    /// Renames `from` to `to`, replacing a file at `to`.
    ///
    /// The standard library renames with POSIX semantics where the filesystem offers them
    /// (`FileRenameInfoEx`, NTFS on Windows 10 1809 and later): atomic, and handles still open
    /// on the old file stay valid. Elsewhere (older Windows, many SMB servers, Wine) a file
    /// that is open anywhere cannot be replaced, and lock files always are (waiters hold them
    /// open). There the content is copied over the target in place instead: the caller holds
    /// the share lock of what it replaces exclusively and every reader reads under that lock,
    /// so nobody sees the copy half done; unlike a rename it is not atomic against a crash of
    /// this process mid-copy (fsck reports such a record). A target another program keeps open
    /// without write sharing is retried for a bounded time, then reported as `ResourceBusy`.
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rename_from(self, from, to)
    }

    /// Renames `from` beneath `src` (a directory of the same share) to `to` beneath this
    /// root, as `rename` does.
    pub fn rename_from(&self, src: &Root, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (src.beneath(from)?, self.beneath(to)?);
        let deadline = Instant::now() + RENAME_WAIT;
        let mut pause = Duration::from_millis(2);
        loop {
            let e = match std::fs::rename(&from, &to) {
                Ok(()) => return Ok(()),
                Err(e) if sharing_conflict(&e) => e,
                Err(e) => return Err(e),
            };
            let target_is_file = std::fs::symlink_metadata(&to).is_ok_and(|m| m.is_file());
            if target_is_file {
                match replace_in_place(&from, &to) {
                    Ok(()) => return Ok(()),
                    Err(e) if sharing_conflict(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!("{} stays open elsewhere without sharing: {e}", to.display()),
                ));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Removes the file `rel`.
    pub fn remove_file(&self, rel: &Path) -> io::Result<()> {
        std::fs::remove_file(self.beneath(rel)?)
    }

    /// Removes the empty directory `rel`.
    pub fn remove_dir(&self, rel: &Path) -> io::Result<()> {
        std::fs::remove_dir(self.beneath(rel)?)
    }

    /// Directories cannot be flushed through Win32; NTFS journals renames and creations, and
    /// an SMB server commits them before it answers.
    pub fn sync_dir(&self, _rel: &Path) -> io::Result<()> {
        Ok(())
    }

    /// The full path of `rel`, refusing anything but plain components and any component
    /// that is a reparse point (so no path leads outside the share or into another bucket).
    fn beneath(&self, rel: &Path) -> io::Result<PathBuf> {
        check_relative(rel)?;
        let mut full = self.verbatim.clone();
        let n = rel.components().count();
        for (i, c) in rel.components().enumerate() {
            let Component::Normal(part) = c else {
                unreachable!("check_relative allows plain components only")
            };
            check_component(part)?;
            full.push(part);
            // The last component may not exist yet (create); a reparse point there is still
            // refused by the open (FILE_FLAG_OPEN_REPARSE_POINT is not set for I/O opens, so
            // check it here too).
            match std::fs::symlink_metadata(&full) {
                Ok(m) if is_reparse(&m) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "path runs through a reparse point, which nasgate does not follow",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && i + 1 == n => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(_) => {}
            }
        }
        Ok(full)
    }
}

/// `path` made absolute and verbatim (`\\?\`), so that paths beyond MAX_PATH work.
fn verbatim(path: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(path)?;
    let Some(Component::Prefix(prefix)) = abs.components().next() else {
        return Ok(abs);
    };
    let rest: PathBuf = abs.components().skip(1).collect();
    let rest = rest.strip_prefix("\\").unwrap_or(&rest).to_path_buf();
    let mut out = match prefix.kind() {
        Prefix::Verbatim(_) | Prefix::VerbatimUNC(..) | Prefix::VerbatimDisk(_) => return Ok(abs),
        Prefix::Disk(d) => PathBuf::from(format!("\\\\?\\{}:\\", d as char)),
        Prefix::UNC(server, share) => {
            let mut s = std::ffi::OsString::from("\\\\?\\UNC\\");
            s.push(server);
            s.push("\\");
            s.push(share);
            s.push("\\");
            PathBuf::from(s)
        }
        // Device paths (\\.\) are used as given.
        Prefix::DeviceNS(_) => return Ok(abs),
    };
    out.push(rest);
    Ok(out)
}

/// Copies `from` over the content of the existing file `to`, flushes it, and removes `from`.
fn replace_in_place(from: &Path, to: &Path) -> io::Result<()> {
    let share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
    let src = OpenOptions::new().read(true).share_mode(share).open(from)?;
    let dst = OpenOptions::new()
        .read(true)
        .write(true)
        .share_mode(share)
        .open(to)?;
    let len = src.metadata()?.len();
    dst.set_len(0)?;
    let copied = copy_range(&src, 0, &dst, len)?;
    if copied != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{} shrank while being copied", from.display()),
        ));
    }
    dst.sync_all()?;
    drop(src);
    std::fs::remove_file(from)
}

fn is_reparse(m: &std::fs::Metadata) -> bool {
    use std::os::windows::fs::MetadataExt;
    m.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0
}

fn sharing_conflict(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(ERROR_ACCESS_DENIED) | Some(ERROR_SHARING_VIOLATION)
    )
}

fn stat_path(full: &Path) -> io::Result<Stat> {
    let mut o = OpenOptions::new();
    o.access_mode(0)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT);
    let f = o.open(full)?;
    stat_file(&f)
}

fn check_relative(rel: &Path) -> io::Result<()> {
    let ok =
        !rel.as_os_str().is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a plain relative path: {}", rel.display()),
        ))
    }
}

/// Refuses names Windows would read as something else: a stream (`name:stream`), a wildcard,
/// or a name whose trailing dot or space Win32 strips.
fn check_component(name: &OsStr) -> io::Result<()> {
    let s = name.to_string_lossy();
    let bad = s.is_empty()
        || s.chars()
            .any(|c| (c as u32) < 0x20 || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*'))
        || s.ends_with('.') && s != "." && s != ".."
        || s.ends_with(' ');
    if bad {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} cannot be a file name on Windows"),
        ))
    } else {
        Ok(())
    }
}

/// Volume serial, file index and link count of an open file; a file deleted while open
/// (delete pending: its name lingers until the last handle closes) counts as unlinked.
pub fn identity(file: &File) -> io::Result<FileId> {
    let i = info(file)?;
    // SAFETY: plain data filled by the call below.
    let mut std_info: FILE_STANDARD_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: valid handle; the buffer is a FILE_STANDARD_INFO of the size passed.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            file.as_raw_handle() as HANDLE,
            FileStandardInfo,
            &mut std_info as *mut FILE_STANDARD_INFO as *mut std::ffi::c_void,
            std::mem::size_of::<FILE_STANDARD_INFO>() as u32,
        )
    };
    let pending = ok != 0 && std_info.DeletePending != 0;
    Ok(FileId {
        dev: i.dwVolumeSerialNumber as u64,
        ino: ((i.nFileIndexHigh as u64) << 32) | i.nFileIndexLow as u64,
        nlink: if pending { 0 } else { i.nNumberOfLinks as u64 },
    })
}

fn info(file: &File) -> io::Result<BY_HANDLE_FILE_INFORMATION> {
    // SAFETY: plain data filled by the call below.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: valid handle and a properly sized out struct.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

/// The range actually locked for the lock layer's `range` (see the module comment).
fn placed(range: Range) -> (u64, u64) {
    let len = if range.len == 0 {
        WHOLE_LEN - range.start.min(WHOLE_LEN - 1)
    } else {
        range.len
    };
    (BASE + range.start, len)
}

fn overlapped(start: u64) -> OVERLAPPED {
    // SAFETY: OVERLAPPED is plain data; zero is its documented initial state.
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.Anonymous.Anonymous.Offset = start as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (start >> 32) as u32;
    ov
}

/// "Not connected" (WSAENOTCONN); FUSE mounts, where it matters on Linux, do not exist here.
pub const ENOTCONN: i32 = 10057;

static SHARE_LOCKS_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Benchmarks only: every share lock succeeds at once without a system call.
pub fn disable_share_locks() {
    SHARE_LOCKS_OFF.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn share_locks_off() -> bool {
    SHARE_LOCKS_OFF.load(std::sync::atomic::Ordering::Relaxed)
}

fn lock_placed(file: &File, kind: LockKind, start: u64, len: u64) -> io::Result<bool> {
    let mut flags = LOCKFILE_FAIL_IMMEDIATELY;
    if kind == LockKind::Exclusive {
        flags |= LOCKFILE_EXCLUSIVE_LOCK;
    }
    let mut ov = overlapped(start);
    // SAFETY: valid handle; the OVERLAPPED outlives the call, which with
    // LOCKFILE_FAIL_IMMEDIATELY on a synchronous handle completes before returning.
    let ok = unsafe {
        LockFileEx(
            file.as_raw_handle() as HANDLE,
            flags,
            0,
            len as u32,
            (len >> 32) as u32,
            &mut ov,
        )
    };
    if ok != 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Unlocks exactly one locked region; `Ok(false)` when this handle held none there.
fn unlock_placed(file: &File, start: u64, len: u64) -> io::Result<bool> {
    let mut ov = overlapped(start);
    // SAFETY: valid handle and OVERLAPPED.
    let ok = unsafe {
        UnlockFileEx(
            file.as_raw_handle() as HANDLE,
            0,
            len as u32,
            (len >> 32) as u32,
            &mut ov,
        )
    };
    if ok != 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(ERROR_NOT_LOCKED as i32) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Tries to take a lock without waiting; `Ok(false)` when another holder has a conflicting one.
pub fn try_lock(file: &File, _style: LockStyle, kind: LockKind, range: Range) -> io::Result<bool> {
    if share_locks_off() {
        return Ok(true);
    }
    let (start, len) = placed(range);
    lock_placed(file, kind, start, len)
}

/// Waits for a lock until `deadline`; `Ok(false)` when the deadline passed first.
///
/// A blocking `LockFileEx` cannot be given a deadline on a synchronous handle (and cancelling
/// it from another thread is not reliable over SMB), so the wait polls with a short backoff:
/// at most 10 ms between tries, which bounds how late a freed lock is noticed.
pub fn lock_until(
    file: &File,
    style: LockStyle,
    kind: LockKind,
    range: Range,
    deadline: Instant,
) -> io::Result<bool> {
    let mut pause = Duration::from_micros(200);
    loop {
        if try_lock(file, style, kind, range)? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Releases a range held by this handle (a no-op if nothing is held there).
///
/// Windows unlocks only exactly the regions that were locked, so releasing the whole file
/// releases each range the lock layer ever takes (INTENT, DATA, whole file).
pub fn unlock(file: &File, _style: LockStyle, range: Range) -> io::Result<()> {
    if share_locks_off() {
        return Ok(());
    }
    if range == Range::WHOLE {
        for r in [
            Range { start: 0, len: 1 },
            Range { start: 1, len: 1 },
            Range::WHOLE,
        ] {
            let (start, len) = placed(r);
            // Shared locks stack on Windows: keep unlocking until none is left.
            while unlock_placed(file, start, len)? {}
        }
        return Ok(());
    }
    let (start, len) = placed(range);
    unlock_placed(file, start, len).map(|_| ())
}

/// Whether another holder has a lock that conflicts with `kind` on `range`.
///
/// Windows has no F_GETLK: this takes the lock without waiting and drops it again. Callers
/// ask on a handle that holds nothing overlapping `range` (a handle's own exclusive lock would
/// count as a conflict here, unlike with OFD locks).
pub fn conflicting(
    file: &File,
    style: LockStyle,
    kind: LockKind,
    range: Range,
) -> io::Result<bool> {
    Ok(holder(file, style, kind, range)?.is_some())
}

/// The lock of another holder that keeps `kind` on `range` from being taken, if any (its
/// kind found by probing; the holding process is unknown on Windows).
pub fn holder(
    file: &File,
    _style: LockStyle,
    kind: LockKind,
    range: Range,
) -> io::Result<Option<Holder>> {
    if share_locks_off() {
        return Ok(None);
    }
    let (start, len) = placed(range);
    if lock_placed(file, kind, start, len)? {
        unlock_placed(file, start, len)?;
        return Ok(None);
    }
    let held = if kind == LockKind::Exclusive && lock_placed(file, LockKind::Shared, start, len)? {
        unlock_placed(file, start, len)?;
        LockKind::Shared
    } else {
        LockKind::Exclusive
    };
    Ok(Some(Holder {
        kind: held,
        range,
        pid: 0,
    }))
}

/// Size, modification time, identity and kind of an open file.
pub fn stat_file(file: &File) -> io::Result<Stat> {
    let i = info(file)?;
    let kind = if i.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        FileKind::Other
    } else if i.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
        FileKind::Dir
    } else {
        FileKind::File
    };
    let ft =
        ((i.ftLastWriteTime.dwHighDateTime as u64) << 32) | i.ftLastWriteTime.dwLowDateTime as u64;
    // FILETIME counts 100 ns intervals since 1601-01-01.
    const EPOCH_DIFF_100NS: i128 = 116_444_736_000_000_000;
    Ok(Stat {
        size: ((i.nFileSizeHigh as u64) << 32) | i.nFileSizeLow as u64,
        mtime_ns: (ft as i128 - EPOCH_DIFF_100NS) * 100,
        id: FileId {
            dev: i.dwVolumeSerialNumber as u64,
            ino: ((i.nFileIndexHigh as u64) << 32) | i.nFileIndexLow as u64,
            nlink: i.nNumberOfLinks as u64,
        },
        kind,
    })
}

/// Copies `len` bytes from `from` at `from_offset` to the current end of `to`; returns the
/// bytes copied (less than `len` only at the end of `from`).
pub fn copy_range(from: &File, from_offset: u64, to: &File, len: u64) -> io::Result<u64> {
    use std::io::Write;
    let mut buf = vec![0u8; (len.min(1 << 20) as usize).max(1)];
    let mut done = 0u64;
    while done < len {
        let want = ((len - done).min(buf.len() as u64)) as usize;
        let n = read_at(from, &mut buf[..want], from_offset + done)?;
        if n == 0 {
            break;
        }
        let mut w = to;
        w.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(done)
}

/// Reads at `offset`. (On Windows this moves the handle's file position; every caller reads
/// by offset, so nobody depends on it.)
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Starting writeback early is a Linux hint; Windows flushes at the final sync only.
pub fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let _ = (file, offset, len);
    Ok(())
}

/// Writes all of `buf` at `offset`.
pub fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Whether this process may create entries in directory `path`: the only sure answer on
/// Windows (ACLs, SMB share permissions) is to try.
pub fn writable(path: &Path) -> io::Result<()> {
    let probe = path.join(format!(".nasgate-writable-{}", std::process::id()));
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(0x0400_0000) // FILE_FLAG_DELETE_ON_CLOSE
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
        .access_mode(0x0001_0000 | 0x0002) // DELETE | FILE_WRITE_DATA
        .open(&probe)?;
    drop(f);
    Ok(())
}

/// Windows has no per-process descriptor limit to raise; reports "unlimited".
pub fn raise_open_file_limit() -> io::Result<(u64, u64)> {
    Ok((u64::MAX, u64::MAX))
}
