//! Unix system calls behind the narrow interface the lock layer and store use: opening
//! beneath the share root, fcntl byte-range locks (OFD or classic) with bounded waits, and
//! file identity.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use super::{
    Attr, DirEntry, FileId, FileKind, FsStats, Holder, LockKind, LockStyle, OpenMode, Range,
    SetTime, Stat,
};

/// An open handle on the share's root directory; every path the store opens is resolved beneath it.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `path` as a share root (it must be an existing directory).
    pub fn at(path: &Path) -> io::Result<Root> {
        let c = cstr(path.as_os_str().as_bytes())?;
        // SAFETY: plain open(2) on a NUL-terminated path; the fd is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Root {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// Whether the kernel takes open-file-description locks here (Linux 3.15 and later).
    pub fn supports_ofd(&self) -> bool {
        let mut fl = flock_for(
            LockStyle::Ofd,
            Some(LockKind::Shared),
            Range { start: 0, len: 1 },
        );
        // SAFETY: F_OFD_GETLK only reads the flock struct and fills it in.
        let r = unsafe {
            libc::fcntl(
                self.dir.as_raw_fd(),
                libc::F_OFD_GETLK,
                &mut fl as *mut libc::flock,
            )
        };
        r == 0
    }

    /// Opens the root path again and puts the fresh directory in place of the old handle
    /// (same descriptor number, swapped atomically by dup3): a share whose NAS client died
    /// (ENOTCONN) and was mounted again is served again. Calls in flight finish on whichever
    /// handle they started with.
    pub fn reconnect(&self) -> io::Result<()> {
        self.replace_with(Root::at(&self.path)?)
    }

    /// Puts directory `rel` beneath `parent`, opened afresh, in place of this handle (a
    /// sub-root whose directory was made again, or whose NAS connection died).
    pub fn reopen_beneath(&self, parent: &Root, rel: &Path) -> io::Result<()> {
        self.replace_with(parent.sub(rel)?)
    }

    fn replace_with(&self, fresh: Root) -> io::Result<()> {
        fstat(fresh.dir.as_raw_fd())?;
        // SAFETY: both descriptors are open and owned; dup3 closes our old description and
        // makes our number refer to the fresh one.
        let r = unsafe { libc::dup3(fresh.dir.as_raw_fd(), self.dir.as_raw_fd(), libc::O_CLOEXEC) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The path the root was opened at (for messages and for tools that need a path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `rel` (relative, no `..`) beneath the root. Symlinks on the share are never
    /// followed, so no path can resolve outside the share or across into another bucket or
    /// the internal tree.
    pub fn open(&self, rel: &Path, mode: OpenMode) -> io::Result<File> {
        let flags = match mode {
            OpenMode::Read => libc::O_RDONLY,
            OpenMode::ReadWrite => libc::O_RDWR,
            OpenMode::ReadWriteCreate => libc::O_RDWR | libc::O_CREAT,
            OpenMode::CreateNew => libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            OpenMode::Path => libc::O_PATH,
            OpenMode::Directory => libc::O_RDONLY | libc::O_DIRECTORY,
        };
        let fd = self.openat_beneath(rel, flags | libc::O_CLOEXEC, 0o644)?;
        // SAFETY: fd is a fresh descriptor we own.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Identity of the file now at `rel`, without following a final symlink and without
    /// opening it for I/O (an O_PATH handle never drops classic fcntl locks when closed).
    pub fn identity(&self, rel: &Path) -> io::Result<FileId> {
        let fd = self.openat_beneath(rel, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0)?;
        // SAFETY: fd is a fresh descriptor we own.
        let f = unsafe { File::from_raw_fd(fd) };
        identity(&f)
    }

    fn openat_beneath(&self, rel: &Path, flags: libc::c_int, mode: u32) -> io::Result<RawFd> {
        check_relative(rel)?;
        let c = cstr(rel.as_os_str().as_bytes())?;
        // SAFETY: open_how is plain data; unused fields must be zero.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = flags as u64;
        if flags & libc::O_CREAT != 0 {
            how.mode = mode as u64;
        }
        // No symlinks at all, not even ones that stay beneath the root: a link inside a
        // bucket could otherwise lead into another bucket or into `.minio.sys`.
        how.resolve =
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: openat2 with a valid dirfd, NUL-terminated path and a correctly sized open_how.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            return Ok(fd as RawFd);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOSYS) {
            // Kernels before 5.6: walk the path ourselves, refusing every symlink.
            return self
                .openat_walk(rel, flags, mode)
                .map_err(symlink_is_absent);
        }
        Err(symlink_is_absent(err))
    }

    /// Fallback for kernels without openat2: opens each directory component with O_NOFOLLOW,
    /// which refuses symlinks altogether (stricter than RESOLVE_BENEATH, never looser).
    fn openat_walk(&self, rel: &Path, flags: libc::c_int, mode: u32) -> io::Result<RawFd> {
        let parts: Vec<&std::ffi::OsStr> = rel.iter().collect();
        let mut dir: Option<OwnedFd> = None;
        for (i, part) in parts.iter().enumerate() {
            let base = dir.as_ref().map_or(self.dir.as_raw_fd(), |d| d.as_raw_fd());
            let c = cstr(part.as_bytes())?;
            let last = i + 1 == parts.len();
            let f = if last {
                flags | libc::O_NOFOLLOW
            } else {
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC
            };
            // SAFETY: openat on a valid dirfd with a NUL-terminated single component.
            let fd = unsafe { libc::openat(base, c.as_ptr(), f, mode as libc::c_uint) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            if last {
                return Ok(fd);
            }
            // SAFETY: fresh descriptor we own.
            dir = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"))
    }
}

impl Root {
    /// Size, times, identity and kind of the entry at `rel` (a final symlink is not followed);
    /// an empty `rel` is the root itself.
    pub fn stat(&self, rel: &Path) -> io::Result<Stat> {
        if rel.as_os_str().is_empty() {
            return fstat(self.dir.as_raw_fd());
        }
        let fd = self.openat_beneath(rel, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0)?;
        // SAFETY: fresh descriptor we own.
        let f = unsafe { OwnedFd::from_raw_fd(fd) };
        fstat(f.as_raw_fd())
    }

    /// The entries of directory `rel` ("" for the root), without `.` and `..`, in no order.
    pub fn read_dir(&self, rel: &Path) -> io::Result<Vec<DirEntry>> {
        let fd = if rel.as_os_str().is_empty() {
            // SAFETY: openat(".") on our own directory fd gives an independent handle whose
            // read position we may consume.
            let c = cstr(b".")?;
            let fd = unsafe {
                libc::openat(
                    self.dir.as_raw_fd(),
                    c.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            fd
        } else {
            self.openat_beneath(rel, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)?
        };
        // SAFETY: fdopendir takes ownership of a valid directory fd; closedir below frees both.
        let dir = unsafe { libc::fdopendir(fd) };
        if dir.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so we still own fd.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        let mut out = Vec::new();
        let result = loop {
            // SAFETY: readdir on an open DIR*; errno is reset to tell end from error.
            unsafe { *libc::__errno_location() = 0 };
            let ent = unsafe { libc::readdir(dir) };
            if ent.is_null() {
                let e = io::Error::last_os_error();
                break if e.raw_os_error().unwrap_or(0) == 0 {
                    Ok(())
                } else {
                    Err(e)
                };
            }
            // SAFETY: d_name is NUL-terminated within the dirent readdir returned.
            let (name, dtype) = unsafe {
                (
                    std::ffi::CStr::from_ptr((*ent).d_name.as_ptr())
                        .to_bytes()
                        .to_vec(),
                    (*ent).d_type,
                )
            };
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match dtype {
                libc::DT_REG => Some(FileKind::File),
                libc::DT_DIR => Some(FileKind::Dir),
                libc::DT_UNKNOWN => None,
                _ => Some(FileKind::Other),
            };
            out.push(DirEntry {
                name: std::ffi::OsStr::from_bytes(&name).to_os_string(),
                kind,
            });
        };
        // SAFETY: closes the DIR* and its fd exactly once.
        unsafe { libc::closedir(dir) };
        result.map(|()| out)
    }

    /// Creates directory `rel` and any missing parents; existing ones are fine.
    ///
    /// Every call on a NAS is a round trip, and the directory is there in the common case:
    /// one lookup settles that; otherwise only the missing components are made, from the
    /// deepest existing one down.
    pub fn create_dir_all(&self, rel: &Path) -> io::Result<()> {
        check_relative(rel)?;
        match self.stat(rel) {
            Ok(st) if st.kind == FileKind::Dir => Ok(()),
            Ok(_) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.create_missing(rel),
            Err(e) => Err(e),
        }
    }

    /// Makes `rel`, first its parents when they are missing too.
    fn create_missing(&self, rel: &Path) -> io::Result<()> {
        let made = |r: io::Result<()>| match r {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if self.stat(rel)?.kind != FileKind::Dir {
                    return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
                }
                Ok(())
            }
            r => r,
        };
        match self.create_dir(rel) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                    Some(parent) => {
                        self.create_missing(parent)?;
                        made(self.create_dir(rel))
                    }
                    None => Err(e),
                }
            }
            r => made(r),
        }
    }

    /// Creates one directory; its parent must exist.
    pub fn create_dir(&self, rel: &Path) -> io::Result<()> {
        self.at_parent(rel, |dir, name| {
            // SAFETY: mkdirat on a valid dirfd with a single NUL-terminated component.
            cvt(unsafe { libc::mkdirat(dir, name.as_ptr(), 0o755) })
        })
    }

    /// Renames `from` to `to` atomically, replacing a file at `to`.
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.rename_from(self, from, to)
    }

    /// Renames `from` beneath `src` (a directory of the same share) to `to` beneath this
    /// root, atomically, replacing a file at `to`.
    pub fn rename_from(&self, src: &Root, from: &Path, to: &Path) -> io::Result<()> {
        src.at_parent(from, |fdir, fname| {
            self.at_parent(to, |tdir, tname| {
                // SAFETY: renameat with valid dirfds and single NUL-terminated components.
                cvt(unsafe { libc::renameat(fdir, fname.as_ptr(), tdir, tname.as_ptr()) })
            })
        })
    }

    /// Directory `rel` beneath this root as a root of its own: names in it resolve from its
    /// handle, without walking the path again (on a NAS, one lookup instead of one per
    /// component). Never through a symlink.
    pub fn sub(&self, rel: &Path) -> io::Result<Root> {
        let flags = libc::O_DIRECTORY | libc::O_CLOEXEC;
        let fd = match self.openat_beneath(rel, libc::O_RDONLY | flags, 0) {
            // A directory we may write but not list (mode -wx) still takes names by handle;
            // only an fsync through this handle then fails, as opening it for one would.
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                self.openat_beneath(rel, libc::O_PATH | flags, 0)?
            }
            r => r?,
        };
        Ok(Root {
            // SAFETY: fresh descriptor we own.
            dir: unsafe { OwnedFd::from_raw_fd(fd) },
            path: self.path.join(rel),
        })
    }

    /// Removes the file `rel`.
    pub fn remove_file(&self, rel: &Path) -> io::Result<()> {
        self.at_parent(rel, |dir, name| {
            // SAFETY: unlinkat with a valid dirfd and a single component.
            cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), 0) })
        })
    }

    /// Removes the empty directory `rel`.
    pub fn remove_dir(&self, rel: &Path) -> io::Result<()> {
        self.at_parent(rel, |dir, name| {
            // SAFETY: unlinkat(AT_REMOVEDIR) with a valid dirfd and a single component.
            cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) })
        })
    }

    /// Flushes directory `rel` ("" for the root) to stable storage, making renames and
    /// creations in it durable.
    pub fn sync_dir(&self, rel: &Path) -> io::Result<()> {
        let fd = if rel.as_os_str().is_empty() {
            // SAFETY: dup of our own valid fd.
            let fd = unsafe { libc::fcntl(self.dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            fd
        } else {
            self.openat_beneath(rel, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)?
        };
        // SAFETY: fresh descriptor we own.
        let f = unsafe { File::from_raw_fd(fd) };
        f.sync_all()
    }

    /// Runs `op` with the parent directory of `rel` (opened beneath the root, never through a
    /// symlink that leaves it) and the final component.
    fn at_parent<T>(
        &self,
        rel: &Path,
        op: impl FnOnce(RawFd, &CString) -> io::Result<T>,
    ) -> io::Result<T> {
        check_relative(rel)?;
        let name = rel
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let name = cstr(name.as_bytes())?;
        match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            None => op(self.dir.as_raw_fd(), &name),
            Some(parent) => {
                let fd = self.openat_beneath(
                    parent,
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                    0,
                )?;
                // SAFETY: fresh descriptor we own.
                let dir = unsafe { OwnedFd::from_raw_fd(fd) };
                op(dir.as_raw_fd(), &name)
            }
        }
    }
}

fn cvt(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn fstat(fd: RawFd) -> io::Result<Stat> {
    fstat_attr(fd).map(|a| a.stat)
}

fn ns(s: i64, n: i64) -> i128 {
    s as i128 * 1_000_000_000 + n as i128
}

// The stat field types differ between targets; the casts are not redundant everywhere.
#[allow(clippy::unnecessary_cast)]
fn stat_of(st: &libc::stat) -> Stat {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::File,
        libc::S_IFDIR => FileKind::Dir,
        _ => FileKind::Other,
    };
    Stat {
        size: st.st_size as u64,
        mtime_ns: ns(st.st_mtime, st.st_mtime_nsec),
        id: FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            nlink: st.st_nlink as u64,
        },
        kind,
    }
}

fn fstat_attr(fd: RawFd) -> io::Result<Attr> {
    // SAFETY: fstat fills a zeroed stat struct for a valid fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let stat = stat_of(&st);
    Ok(Attr {
        stat,
        symlink: st.st_mode & libc::S_IFMT == libc::S_IFLNK,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        blocks: st.st_blocks as u64,
        atime_ns: ns(st.st_atime, st.st_atime_nsec),
        ctime_ns: ns(st.st_ctime, st.st_ctime_nsec),
    })
}

/// All attributes of an open file.
pub fn attr_file(file: &File) -> io::Result<Attr> {
    fstat_attr(file.as_raw_fd())
}

/// Lowers the calling thread's scheduling priority (nice 10), for work that may wait for
/// idle time. Best effort: left as it is where refused.
pub fn lower_thread_priority() {
    // On Linux the nice value is per thread, and `who` 0 names the calling thread.
    // SAFETY: plain syscall with no pointers.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
}

/// Sets the permission bits of an open file.
pub fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
}

/// Sets the owner and/or group of an open file.
pub fn set_file_owner(file: &File, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    std::os::unix::fs::fchown(file, uid, gid)
}

/// The lock of another owner that keeps `kind` on `range` from being taken, if any.
pub fn holder(
    file: &File,
    style: LockStyle,
    kind: LockKind,
    range: Range,
) -> io::Result<Option<Holder>> {
    if share_locks_off() {
        return Ok(None);
    }
    let mut fl = flock_for(style, Some(kind), range);
    fcntl_lock(file, commands(style).2, &mut fl)?;
    let kind = match fl.l_type as libc::c_int {
        libc::F_RDLCK => LockKind::Shared,
        libc::F_WRLCK => LockKind::Exclusive,
        _ => return Ok(None),
    };
    Ok(Some(Holder {
        kind,
        range: Range {
            start: fl.l_start as u64,
            len: fl.l_len as u64,
        },
        pid: if fl.l_pid > 0 { fl.l_pid as u32 } else { 0 },
    }))
}

fn timespec(t: Option<SetTime>) -> libc::timespec {
    match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(SetTime::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(SetTime::At(ns)) => libc::timespec {
            tv_sec: ns.div_euclid(1_000_000_000) as libc::time_t,
            tv_nsec: ns.rem_euclid(1_000_000_000) as libc::c_long,
        },
    }
}

/// An open directory beneath the root, for looking at many entries of one directory with a
/// system call each.
#[derive(Debug)]
pub struct Dir(OwnedFd);

impl Dir {
    /// Size, times, identity and kind of entry `name` (one component; a symlink is not
    /// followed).
    pub fn stat(&self, name: &std::ffi::OsStr) -> io::Result<Stat> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.contains(&b'/') || bytes == b"." || bytes == b".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a single path component",
            ));
        }
        let c = cstr(bytes)?;
        // SAFETY: fstatat fills a zeroed stat struct; the name is one NUL-terminated component.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::fstatat(
                self.0.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stat_of(&st))
    }
}

impl Root {
    /// Opens directory `rel` beneath the root (never through a symlink).
    pub fn dir(&self, rel: &Path) -> io::Result<Dir> {
        let fd = self.openat_beneath(rel, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)?;
        // SAFETY: fresh descriptor we own.
        Ok(Dir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// All attributes of the entry at `rel` ("" for the root); a final symlink is described,
    /// not followed.
    pub fn attr(&self, rel: &Path) -> io::Result<Attr> {
        if rel.as_os_str().is_empty() {
            return fstat_attr(self.dir.as_raw_fd());
        }
        let f = self.open_path(rel)?;
        fstat_attr(f.as_raw_fd())
    }

    fn open_path(&self, rel: &Path) -> io::Result<OwnedFd> {
        let fd = self.openat_beneath(rel, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0)?;
        // SAFETY: fresh descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// An O_PATH handle on a file or directory (never a symlink) at `rel`, and its
    /// /proc/self/fd name, through which calls without an fd form reach exactly that entry.
    fn proc_path(&self, rel: &Path) -> io::Result<(OwnedFd, CString)> {
        let f = self.open_path(rel)?;
        if fstat_attr(f.as_raw_fd())?.symlink {
            return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        let name = cstr(format!("/proc/self/fd/{}", f.as_raw_fd()).as_bytes())?;
        Ok((f, name))
    }

    /// Creates a symbolic link `rel` pointing at `target` (not checked here).
    pub fn symlink(&self, target: &Path, rel: &Path) -> io::Result<()> {
        let t = cstr(target.as_os_str().as_bytes())?;
        self.at_parent(rel, |dir, name| {
            // SAFETY: symlinkat with NUL-terminated strings and a valid dirfd.
            cvt(unsafe { libc::symlinkat(t.as_ptr(), dir, name.as_ptr()) })
        })
    }

    /// The target of the symbolic link at `rel`.
    pub fn read_link(&self, rel: &Path) -> io::Result<PathBuf> {
        let f = self.open_path(rel)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        let empty = cstr(b"")?;
        // SAFETY: readlinkat on an O_PATH symlink fd with an empty path reads that link.
        let n = unsafe {
            libc::readlinkat(
                f.as_raw_fd(),
                empty.as_ptr(),
                buf.as_mut_ptr() as *mut libc::c_char,
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
    }

    /// Sets the permission bits of the file or directory at `rel`.
    pub fn set_mode(&self, rel: &Path, mode: u32) -> io::Result<()> {
        let (_f, name) = self.proc_path(rel)?;
        // SAFETY: chmod on a NUL-terminated magic link naming our own descriptor.
        cvt(unsafe { libc::chmod(name.as_ptr(), (mode & 0o7777) as libc::mode_t) })
    }

    /// Sets the owner and/or group of the entry at `rel` (a symlink itself, not its target).
    pub fn set_owner(&self, rel: &Path, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        let f = self.open_path(rel)?;
        let empty = cstr(b"")?;
        // SAFETY: fchownat(AT_EMPTY_PATH) on our own descriptor; -1 leaves an id unchanged.
        cvt(unsafe {
            libc::fchownat(
                f.as_raw_fd(),
                empty.as_ptr(),
                uid.map_or(u32::MAX, |u| u),
                gid.map_or(u32::MAX, |g| g),
                libc::AT_EMPTY_PATH,
            )
        })
    }

    /// Sets access and/or modification time of the file or directory at `rel`.
    pub fn set_times(
        &self,
        rel: &Path,
        atime: Option<SetTime>,
        mtime: Option<SetTime>,
    ) -> io::Result<()> {
        let (_f, name) = self.proc_path(rel)?;
        let ts = [timespec(atime), timespec(mtime)];
        // SAFETY: utimensat with a NUL-terminated magic link and two valid timespecs.
        cvt(unsafe { libc::utimensat(libc::AT_FDCWD, name.as_ptr(), ts.as_ptr(), 0) })
    }

    /// Sets access and/or modification time of the symbolic link at `rel` itself.
    pub fn set_link_times(
        &self,
        rel: &Path,
        atime: Option<SetTime>,
        mtime: Option<SetTime>,
    ) -> io::Result<()> {
        let ts = [timespec(atime), timespec(mtime)];
        // A symlink has no /proc/self/fd name of its own (the magic link would be followed),
        // so it is named in its parent, and AT_SYMLINK_NOFOLLOW keeps its target untouched.
        self.at_parent(rel, |dir, name| {
            // SAFETY: utimensat with a valid dirfd, a NUL-terminated name and two timespecs.
            cvt(unsafe {
                libc::utimensat(dir, name.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW)
            })
        })
    }

    /// Capacity of the filesystem holding the share.
    pub fn fs_stats(&self) -> io::Result<FsStats> {
        // SAFETY: fstatvfs fills a zeroed struct for a valid fd.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatvfs(self.dir.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let scale = |n: u64| n.saturating_mul(st.f_frsize.max(1)) / st.f_bsize.max(1);
        Ok(FsStats {
            blocks: scale(st.f_blocks),
            free: scale(st.f_bfree),
            available: scale(st.f_bavail),
            files: st.f_files,
            files_free: st.f_ffree,
            block_size: st.f_bsize as u32,
            name_max: st.f_namemax as u32,
        })
    }
}

/// Size, modification time, identity and kind of an open file.
pub fn stat_file(file: &File) -> io::Result<Stat> {
    fstat(file.as_raw_fd())
}

/// Copies `len` bytes from `from` at `from_offset` to the end position of `to`, in the kernel
/// where it can (`copy_file_range`: on NFS 4.2 a server-side copy), by reading and writing
/// otherwise. Returns the bytes copied (less than `len` only at the end of `from`).
pub fn copy_range(from: &File, from_offset: u64, to: &File, len: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut done = 0u64;
    let mut off_in = from_offset as libc::loff_t;
    let mut kernel = true;
    let mut buf = Vec::new();
    while done < len {
        let want = (len - done).min(1 << 30) as usize;
        if kernel {
            // SAFETY: valid fds; off_in is ours; the output uses and advances its file position.
            let n = unsafe {
                libc::copy_file_range(
                    from.as_raw_fd(),
                    &mut off_in,
                    to.as_raw_fd(),
                    std::ptr::null_mut(),
                    want,
                    0,
                )
            };
            if n > 0 {
                done += n as u64;
                continue;
            }
            if n == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EXDEV)
                | Some(libc::EINVAL)
                | Some(libc::ENOSYS)
                | Some(libc::EOPNOTSUPP) => kernel = false,
                Some(libc::EINTR) => {}
                _ => return Err(e),
            }
            continue;
        }
        if buf.is_empty() {
            buf = vec![0u8; 1 << 20];
        }
        let chunk = want.min(buf.len());
        let n = from.read_at(&mut buf[..chunk], off_in as u64)?;
        if n == 0 {
            break;
        }
        let mut w = to;
        io::Write::write_all(&mut w, &buf[..n])?;
        off_in += n as libc::loff_t;
        done += n as u64;
    }
    Ok(done)
}

/// Starts writing `len` bytes of `file` from `offset` back to the disk without waiting for
/// it, so a later fsync only waits for what was written since: the upload and the disk then
/// work at the same time. Only a hint: where the kernel has no such call it does nothing.
pub fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a valid fd; the call only schedules I/O on the given range.
        let r = unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            // Filesystems without it (FUSE, some NAS clients) say so: then it is a no-op.
            return match e.raw_os_error() {
                Some(libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL | libc::ESPIPE) => Ok(()),
                _ => Err(e),
            };
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, offset, len);
        Ok(())
    }
}

/// Reads at `offset` without moving the file position (several readers share one handle).
pub fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

/// "Transport endpoint is not connected": what a dead FUSE mount answers.
pub const ENOTCONN: i32 = libc::ENOTCONN;

/// Writes all of `buf` at `offset` without moving the file position.
pub fn write_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// A path that runs through a symlink names nothing nasgate serves: callers see it as absent
/// (NotFound), never as an I/O failure.
fn symlink_is_absent(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        io::Error::new(
            io::ErrorKind::NotFound,
            "path runs through a symlink, which nasgate does not follow",
        )
    } else {
        e
    }
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

fn cstr(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Device, inode and link count of an open file.
pub fn identity(file: &File) -> io::Result<FileId> {
    // SAFETY: fstat fills a zeroed stat struct for a valid fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FileId {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        nlink: st.st_nlink as u64,
    })
}

fn flock_for(style: LockStyle, kind: Option<LockKind>, range: Range) -> libc::flock {
    // SAFETY: flock is plain old data; zero is a valid starting value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = match kind {
        Some(LockKind::Shared) => libc::F_RDLCK as libc::c_short,
        Some(LockKind::Exclusive) => libc::F_WRLCK as libc::c_short,
        None => libc::F_UNLCK as libc::c_short,
    };
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = range.start as libc::off_t;
    fl.l_len = range.len as libc::off_t;
    // OFD locks require l_pid == 0; classic ones ignore it on set.
    let _ = style;
    fl.l_pid = 0;
    fl
}

fn commands(style: LockStyle) -> (libc::c_int, libc::c_int, libc::c_int) {
    match style {
        LockStyle::Ofd => (libc::F_OFD_SETLK, libc::F_OFD_SETLKW, libc::F_OFD_GETLK),
        LockStyle::Classic => (libc::F_SETLK, libc::F_SETLKW, libc::F_GETLK),
    }
}

fn fcntl_lock(file: &File, cmd: libc::c_int, fl: &mut libc::flock) -> io::Result<()> {
    // SAFETY: fcntl lock commands take a pointer to a valid flock struct.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), cmd, fl as *mut libc::flock) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

static SHARE_LOCKS_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Benchmarks only: every share lock succeeds at once without a system call, to measure
/// what the fcntl locks cost. Nothing keeps processes apart afterwards.
pub fn disable_share_locks() {
    SHARE_LOCKS_OFF.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn share_locks_off() -> bool {
    SHARE_LOCKS_OFF.load(std::sync::atomic::Ordering::Relaxed)
}

/// Tries to take a lock without waiting; `Ok(false)` when another owner holds a conflicting one.
pub fn try_lock(file: &File, style: LockStyle, kind: LockKind, range: Range) -> io::Result<bool> {
    if share_locks_off() {
        return Ok(true);
    }
    let mut fl = flock_for(style, Some(kind), range);
    match fcntl_lock(file, commands(style).0, &mut fl) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits for a lock until `deadline`; `Ok(false)` when the deadline passed first.
///
/// The wait is a real blocking F_SETLKW, so the kernel (or the NFS lock manager) hands the
/// lock over as soon as it is free; the deadline is enforced by a timer thread that
/// interrupts this thread with a signal (see `interrupt`).
pub fn lock_until(
    file: &File,
    style: LockStyle,
    kind: LockKind,
    range: Range,
    deadline: Instant,
) -> io::Result<bool> {
    if try_lock(file, style, kind, range)? {
        return Ok(true);
    }
    let wait = interrupt::arm(deadline);
    let result = loop {
        let mut fl = flock_for(style, Some(kind), range);
        match fcntl_lock(file, commands(style).1, &mut fl) {
            Ok(()) => break Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                if Instant::now() >= deadline {
                    break Ok(false);
                }
            }
            Err(e) => break Err(e),
        }
    };
    wait.disarm();
    result
}

/// Releases a range held by this handle (a no-op if nothing is held there).
pub fn unlock(file: &File, style: LockStyle, range: Range) -> io::Result<()> {
    if share_locks_off() {
        return Ok(());
    }
    let mut fl = flock_for(style, None, range);
    fcntl_lock(file, commands(style).0, &mut fl)
}

/// Whether another owner holds a lock that would conflict with taking `kind` on `range`.
///
/// Classic locks never report the calling process's own locks, so this answers "another
/// process", while OFD locks answer "another open file description".
pub fn conflicting(
    file: &File,
    style: LockStyle,
    kind: LockKind,
    range: Range,
) -> io::Result<bool> {
    if share_locks_off() {
        return Ok(false);
    }
    let mut fl = flock_for(style, Some(kind), range);
    fcntl_lock(file, commands(style).2, &mut fl)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Interrupting a thread blocked in F_SETLKW once its deadline has passed.
///
/// One timer thread keeps the armed deadlines. When one passes while its thread is still
/// waiting, the timer sends that thread a real-time signal whose handler does nothing and is
/// installed without SA_RESTART, so the blocked fcntl returns EINTR. Arming and disarming are
/// serialised with the sending under one mutex, so a signal is only ever sent to a thread that
/// is still inside the wait; and a thread that was signalled waits until the handler has run
/// before it goes on, so the signal can never interrupt some later, unrelated system call.
mod interrupt {
    use std::cell::Cell;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, Instant};

    use parking_lot::{Condvar, Mutex};

    thread_local! {
        static DELIVERED: Cell<u64> = const { Cell::new(0) };
    }

    extern "C" fn on_signal(_: libc::c_int) {
        // Only a thread-local counter: async-signal-safe, no allocation, no locks.
        DELIVERED.with(|d| d.set(d.get().wrapping_add(1)));
    }

    struct Armed {
        thread: libc::pthread_t,
        waiting: bool,
        signalled: bool,
    }

    type Deadlines = BTreeMap<(Instant, u64), Arc<Mutex<Armed>>>;

    struct Timer {
        armed: Mutex<Deadlines>,
        wake: Condvar,
    }

    fn signal() -> libc::c_int {
        libc::SIGRTMIN() + 3
    }

    fn timer() -> &'static Timer {
        static TIMER: OnceLock<&'static Timer> = OnceLock::new();
        TIMER.get_or_init(|| {
            // SAFETY: installs a handler that only touches a thread-local counter.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = 0;
                libc::sigaction(signal(), &sa, std::ptr::null_mut());
            }
            let t: &'static Timer = Box::leak(Box::new(Timer {
                armed: Mutex::new(BTreeMap::new()),
                wake: Condvar::new(),
            }));
            let spawned = std::thread::Builder::new()
                .name("lock-deadlines".into())
                .spawn(move || run(t));
            if let Err(e) = spawned {
                // Without the timer no wait could be bounded; nothing sensible can go on.
                panic!("cannot start the lock deadline thread: {e}");
            }
            t
        })
    }

    fn run(t: &'static Timer) {
        let mut armed = t.armed.lock();
        loop {
            let next = armed.keys().next().copied();
            match next {
                None => {
                    t.wake.wait(&mut armed);
                }
                Some((when, id)) => {
                    if Instant::now() >= when {
                        if let Some(a) = armed.remove(&(when, id)) {
                            let mut a = a.lock();
                            if a.waiting {
                                a.signalled = true;
                                // SAFETY: the thread is alive: it is blocked in the wait and
                                // cannot disarm while we hold its mutex.
                                unsafe { libc::pthread_kill(a.thread, signal()) };
                            }
                        }
                    } else {
                        t.wake.wait_until(&mut armed, when);
                    }
                }
            }
        }
    }

    /// One armed deadline for the calling thread.
    pub struct Wait {
        key: (Instant, u64),
        armed: Arc<Mutex<Armed>>,
        delivered_before: u64,
    }

    /// Arms `deadline` for the calling thread.
    pub fn arm(deadline: Instant) -> Wait {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let t = timer();
        // SAFETY: unblock our signal on this thread in case the thread inherited a mask
        // that blocks it; a blocked signal would leave the wait unbounded.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal());
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        let armed = Arc::new(Mutex::new(Armed {
            // SAFETY: pthread_self never fails.
            thread: unsafe { libc::pthread_self() },
            waiting: true,
            signalled: false,
        }));
        let key = (deadline, NEXT.fetch_add(1, Ordering::Relaxed));
        t.armed.lock().insert(key, armed.clone());
        t.wake.notify_one();
        Wait {
            key,
            armed,
            delivered_before: DELIVERED.with(|d| d.get()),
        }
    }

    impl Wait {
        /// Ends the wait; returns once no signal for it can still arrive.
        pub fn disarm(self) {
            let signalled = {
                let mut a = self.armed.lock();
                a.waiting = false;
                a.signalled
            };
            timer().armed.lock().remove(&self.key);
            if signalled {
                // The signal was sent while we were still waiting; it is delivered at the
                // latest on our next return to user space, which is imminent.
                let give_up = Instant::now() + Duration::from_secs(1);
                while DELIVERED.with(|d| d.get()) == self.delivered_before
                    && Instant::now() < give_up
                {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// Whether this process may create entries in directory `path` (access(2) W_OK|X_OK).
pub fn writable(path: &Path) -> io::Result<()> {
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: access(2) on a NUL-terminated path.
    cvt(unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) })
}

/// Raises this process's soft open-file limit to its hard limit (every connection and every
/// open object holds a descriptor); returns the (soft, hard) limits now in force.
pub fn raise_open_file_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) })?;
        lim.rlim_cur = lim.rlim_max;
    }
    // rlim_t is u64 on Linux but not on every Unix.
    #[allow(clippy::unnecessary_cast)]
    Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dir_all_makes_what_is_missing_and_refuses_a_file_in_the_way() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Root::at(tmp.path()).expect("root");
        root.create_dir_all(Path::new("a/b/c")).expect("fresh");
        assert!(tmp.path().join("a/b/c").is_dir());
        root.create_dir_all(Path::new("a/b/c"))
            .expect("already there");
        root.create_dir_all(Path::new("a/b/d/e"))
            .expect("partly there");
        assert!(tmp.path().join("a/b/d/e").is_dir());

        std::fs::write(tmp.path().join("a/f"), b"x").expect("file");
        for rel in ["a/f", "a/f/g", "a/f/g/h"] {
            let e = root.create_dir_all(Path::new(rel)).expect_err(rel);
            assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR), "{rel}: {e}");
        }
        assert!(tmp.path().join("a/f").is_file(), "the file stays");

        std::os::unix::fs::symlink(tmp.path().join("a"), tmp.path().join("link")).expect("link");
        assert!(root.create_dir_all(Path::new("link/x")).is_err());
        assert!(
            !tmp.path().join("a/x").exists(),
            "nothing made through a symlink"
        );
        assert!(root.create_dir_all(Path::new("../escape")).is_err());
    }
}
