//! Windows calls behind the same interface as `unix`: `LockFileEx` byte-range locks and path
//! resolution beneath the share root. Windows serves S3 only (no FUSE mount).
//!
//! Built for, not yet tested on, Windows: see the README's platform table.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::io::AsRawHandle;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{ERROR_LOCK_VIOLATION, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{
    GetFileInformationByHandle, LockFileEx, UnlockFileEx, BY_HANDLE_FILE_INFORMATION,
    LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

use super::{DirEntry, FileId, FileKind, LockKind, LockStyle, OpenMode, Range, Stat};

/// The share root; paths are joined beneath it after checking each component.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
}

/// A directory beneath the root, for looking at many of its entries.
#[derive(Debug)]
pub struct Dir {
    root: PathBuf,
    rel: PathBuf,
}

impl Dir {
    /// Size, times, identity and kind of entry `name` (one component).
    pub fn stat(&self, name: &std::ffi::OsStr) -> io::Result<Stat> {
        let root = Root {
            path: self.root.clone(),
        };
        root.stat(&self.rel.join(name))
    }
}

impl Root {
    /// Nothing to reconnect: Windows shares answer through SMB sessions the OS restores.
    pub fn reconnect(&self) -> io::Result<()> {
        Ok(())
    }

    /// Opens directory `rel` beneath the root.
    pub fn dir(&self, rel: &Path) -> io::Result<Dir> {
        if !self.stat(rel)?.kind.eq(&FileKind::Dir) {
            return Err(io::Error::new(io::ErrorKind::Other, "not a directory"));
        }
        Ok(Dir {
            root: self.path.clone(),
            rel: rel.to_path_buf(),
        })
    }

    /// Opens `path` as a share root (it must be an existing directory).
    pub fn at(path: &Path) -> io::Result<Root> {
        if !std::fs::metadata(path)?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::Other, "not a directory"));
        }
        Ok(Root {
            path: path.to_path_buf(),
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

    /// Opens `rel` beneath the root; reparse points on the way are refused.
    pub fn open(&self, rel: &Path, mode: OpenMode) -> io::Result<File> {
        let full = self.beneath(rel)?;
        let mut o = OpenOptions::new();
        match mode {
            OpenMode::Read | OpenMode::Path | OpenMode::Directory => o.read(true),
            OpenMode::ReadWrite => o.read(true).write(true),
            OpenMode::ReadWriteCreate => o.read(true).write(true).create(true),
            OpenMode::CreateNew => o.read(true).write(true).create_new(true),
        };
        o.open(full)
    }

    /// Identity of the file now at `rel`.
    pub fn identity(&self, rel: &Path) -> io::Result<FileId> {
        let f = self.open(rel, OpenMode::Read)?;
        identity(&f)
    }

    /// Size, times, identity and kind of the entry at `rel` ("" is the root).
    pub fn stat(&self, rel: &Path) -> io::Result<Stat> {
        let full = if rel.as_os_str().is_empty() {
            self.path.clone()
        } else {
            self.beneath(rel)?
        };
        let m = std::fs::symlink_metadata(&full)?;
        let kind = if m.is_dir() {
            FileKind::Dir
        } else if m.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        let id = if m.is_file() {
            identity(&File::open(&full)?)?
        } else {
            FileId {
                dev: 0,
                ino: 0,
                nlink: 1,
            }
        };
        Ok(Stat {
            size: m.len(),
            mtime_ns: mtime_ns(&m),
            id,
            kind,
        })
    }

    /// The entries of directory `rel` ("" for the root).
    pub fn read_dir(&self, rel: &Path) -> io::Result<Vec<DirEntry>> {
        let full = if rel.as_os_str().is_empty() {
            self.path.clone()
        } else {
            self.beneath(rel)?
        };
        let mut out = Vec::new();
        for e in std::fs::read_dir(full)? {
            let e = e?;
            let t = e.file_type()?;
            let kind = if t.is_dir() {
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

    /// Creates directory `rel` and any missing parents.
    pub fn create_dir_all(&self, rel: &Path) -> io::Result<()> {
        std::fs::create_dir_all(self.beneath(rel)?)
    }

    /// Creates one directory.
    pub fn create_dir(&self, rel: &Path) -> io::Result<()> {
        std::fs::create_dir(self.beneath(rel)?)
    }

    /// Renames `from` to `to`, replacing a file at `to`.
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(self.beneath(from)?, self.beneath(to)?)
    }

    /// Removes the file `rel`.
    pub fn remove_file(&self, rel: &Path) -> io::Result<()> {
        std::fs::remove_file(self.beneath(rel)?)
    }

    /// Removes the empty directory `rel`.
    pub fn remove_dir(&self, rel: &Path) -> io::Result<()> {
        std::fs::remove_dir(self.beneath(rel)?)
    }

    /// Directories cannot be flushed on Windows; renames are journaled by NTFS.
    pub fn sync_dir(&self, _rel: &Path) -> io::Result<()> {
        Ok(())
    }

    fn beneath(&self, rel: &Path) -> io::Result<PathBuf> {
        let mut full = self.path.clone();
        for c in rel.components() {
            match c {
                Component::Normal(part) => {
                    full.push(part);
                    if let Ok(m) = std::fs::symlink_metadata(&full) {
                        if m.file_type().is_symlink() {
                            return Err(io::Error::new(
                                io::ErrorKind::PermissionDenied,
                                "symlink on the share",
                            ));
                        }
                    }
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "not a plain relative path",
                    ))
                }
            }
        }
        Ok(full)
    }
}

/// Volume serial and file index of an open file.
pub fn identity(file: &File) -> io::Result<FileId> {
    // SAFETY: plain data filled by the call below.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: valid handle and a properly sized out struct.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle() as HANDLE, &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FileId {
        dev: info.dwVolumeSerialNumber as u64,
        ino: ((info.nFileIndexHigh as u64) << 32) | info.nFileIndexLow as u64,
        nlink: info.nNumberOfLinks as u64,
    })
}

fn overlapped(range: Range) -> OVERLAPPED {
    // SAFETY: OVERLAPPED is plain data; zero is its documented initial state.
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.Anonymous.Anonymous.Offset = range.start as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (range.start >> 32) as u32;
    ov
}

fn len_parts(range: Range) -> (u32, u32) {
    let len = if range.len == 0 {
        u64::MAX - range.start
    } else {
        range.len
    };
    (len as u32, (len >> 32) as u32)
}

/// "Not connected" (WSAENOTCONN); FUSE mounts, where it matters on Linux, do not exist here.
pub const ENOTCONN: i32 = 10057;

static SHARE_LOCKS_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Benchmarks only: every share lock succeeds at once without a system call.
pub fn disable_share_locks() {
    SHARE_LOCKS_OFF.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Tries to take a lock without waiting; `Ok(false)` when another owner holds a conflicting one.
pub fn try_lock(file: &File, _style: LockStyle, kind: LockKind, range: Range) -> io::Result<bool> {
    if SHARE_LOCKS_OFF.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(true);
    }
    let mut flags = LOCKFILE_FAIL_IMMEDIATELY;
    if kind == LockKind::Exclusive {
        flags |= LOCKFILE_EXCLUSIVE_LOCK;
    }
    let mut ov = overlapped(range);
    let (lo, hi) = len_parts(range);
    // SAFETY: valid handle, zeroed OVERLAPPED that outlives the synchronous call.
    let ok = unsafe { LockFileEx(file.as_raw_handle() as HANDLE, flags, 0, lo, hi, &mut ov) };
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

/// Waits for a lock until `deadline`, retrying with a short backoff (LockFileEx has no
/// timeout of its own).
pub fn lock_until(
    file: &File,
    style: LockStyle,
    kind: LockKind,
    range: Range,
    deadline: Instant,
) -> io::Result<bool> {
    let mut pause = Duration::from_millis(1);
    loop {
        if try_lock(file, style, kind, range)? {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Releases a range held by this handle.
pub fn unlock(file: &File, _style: LockStyle, range: Range) -> io::Result<()> {
    if SHARE_LOCKS_OFF.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let mut ov = overlapped(range);
    let (lo, hi) = len_parts(range);
    // SAFETY: valid handle and OVERLAPPED.
    let ok = unsafe { UnlockFileEx(file.as_raw_handle() as HANDLE, 0, lo, hi, &mut ov) };
    if ok != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether another holder has a conflicting lock (probed by taking and dropping it).
pub fn conflicting(
    file: &File,
    style: LockStyle,
    kind: LockKind,
    range: Range,
) -> io::Result<bool> {
    if try_lock(file, style, kind, range)? {
        unlock(file, style, range)?;
        Ok(false)
    } else {
        Ok(true)
    }
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Size, modification time, identity and kind of an open file.
pub fn stat_file(file: &File) -> io::Result<Stat> {
    let m = file.metadata()?;
    Ok(Stat {
        size: m.len(),
        mtime_ns: mtime_ns(&m),
        id: identity(file)?,
        kind: if m.is_dir() {
            FileKind::Dir
        } else {
            FileKind::File
        },
    })
}

/// Copies `len` bytes from `from` at `from_offset` to the current end of `to`.
pub fn copy_range(from: &File, from_offset: u64, to: &File, len: u64) -> io::Result<u64> {
    use std::io::Write;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    while done < len {
        let want = ((len - done) as usize).min(buf.len());
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

/// Reads at `offset`.
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Whether the directory at `path` is writable (not read-only).
pub fn writable(path: &Path) -> io::Result<()> {
    if std::fs::metadata(path)?.permissions().readonly() {
        Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only"))
    } else {
        Ok(())
    }
}

/// Windows has no per-process descriptor limit to raise; reports "unlimited".
pub fn raise_open_file_limit() -> io::Result<(u64, u64)> {
    Ok((u64::MAX, u64::MAX))
}
