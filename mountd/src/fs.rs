//! The FUSE adapter: turns kernel requests into calls on the mount's core (`core.rs`) and
//! its answers into replies. The policy lives in the core; this file only translates.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use fuser::{
    BackingId, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner as KernelOwner, Notifier, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyLock, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::backend::{Attr, AttrChange, Backend, Errno, Kind, LockType, RangeLock, Result, Time};
use crate::core::{lock_type, Caller, Core, KernelCache, Opened, NAME_MAX};
use crate::offload::Offload;

/// Largest write request (and read-ahead) asked of the kernel.
pub(crate) const MAX_IO: u32 = 1 << 20;

/// The mounted filesystem.
pub struct Fs {
    core: Arc<Core<BackingId>>,
    ttl: Duration,
    /// Where requests that may wait for an object's lock run.
    waits: Offload,
}

/// Helper threads for requests that wait: enough for many closes waiting on readers at
/// once, few enough that a stuck share cannot make a thread per request.
const WAITING_REQUESTS: usize = 64;

/// The kernel's attribute cache, reached through the session's notifier once it runs.
struct Kernel(Arc<OnceLock<Notifier>>);

impl KernelCache for Kernel {
    /// An open of a version other than the one the kernel knows must read that version's
    /// size: reads stop at the cached size, which would cut a larger new version short. The
    /// kernel handles the notification before this returns, so before the open is answered.
    fn forget_attr(&self, ino: u64) {
        if let Some(n) = self.0.get() {
            // Offset -1: attributes only; the open itself drops cached pages.
            if let Err(e) = n.inval_inode(INodeNo(ino), -1, 0) {
                tracing::debug!(ino, "cannot invalidate cached attributes: {e}");
            }
        }
    }
}

fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.0)
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
    }
}

fn fuse_attr(ino: u64, a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        // Tools size their buffers by it (cp, tar): large buffers mean few, large requests.
        blksize: MAX_IO,
        flags: 0,
    }
}

fn name_of(name: &OsStr) -> Result<&str> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    name.to_str().ok_or(Errno::EINVAL)
}

fn time(t: TimeOrNow) -> Time {
    match t {
        TimeOrNow::SpecificTime(t) => Time::At(t),
        TimeOrNow::Now => Time::Now,
    }
}

fn lock_typ(t: LockType) -> i32 {
    match t {
        LockType::Read => libc::F_RDLCK,
        LockType::Write => libc::F_WRLCK,
        LockType::Unlock => libc::F_UNLCK,
    }
}

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

fn fopen_flags<B>(o: &Opened<B>) -> FopenFlags {
    let mut f = FopenFlags::empty();
    if o.direct {
        f |= FopenFlags::FOPEN_DIRECT_IO;
    }
    if o.keep_cache {
        f |= FopenFlags::FOPEN_KEEP_CACHE;
    }
    f
}

impl Fs {
    /// A filesystem over `backend`, caching attributes for `ttl`.
    pub fn new(backend: Arc<dyn Backend>, ttl: Duration, notifier: Arc<OnceLock<Notifier>>) -> Fs {
        Fs {
            core: Arc::new(Core::new(backend, Arc::new(Kernel(notifier)))),
            ttl,
            waits: Offload::new(WAITING_REQUESTS),
        }
    }

    /// Runs `op` on a helper thread with the core: for requests that may wait for an
    /// object's lock (up to `--lock-timeout`), which would otherwise hold one of the few
    /// request threads and stall the whole mount behind them.
    fn waiting(&self, op: impl FnOnce(&Core<BackingId>) + Send + 'static) {
        let core = self.core.clone();
        self.waits.run(move || op(&core));
    }

    /// `waiting` when `waits`, else on this request thread (no hand-off for requests that
    /// cannot wait).
    fn waiting_if(&self, waits: bool, op: impl FnOnce(&Core<BackingId>) + Send + 'static) {
        if waits {
            self.waiting(op);
        } else {
            op(&self.core);
        }
    }

    /// Answers a request that names a new or found entry.
    fn reply_entry(&self, r: Result<(u64, Attr)>, reply: ReplyEntry) {
        match r {
            Ok((id, a)) => reply.entry(&self.ttl, &fuse_attr(id, &a), Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn reply_attr(&self, ino: INodeNo, r: Result<Attr>, reply: ReplyAttr) {
        reply_attr(&self.ttl, ino, r, reply);
    }
}

fn reply_attr(ttl: &Duration, ino: INodeNo, r: Result<Attr>, reply: ReplyAttr) {
    match r {
        Ok(a) => reply.attr(ttl, &fuse_attr(ino.0, &a)),
        Err(e) => reply.error(errno(e)),
    }
}

impl Filesystem for Fs {
    fn destroy(&mut self) {
        // Closes still publishing on helper threads finish (each wait is bounded by the lock
        // timeout) before the process goes on to exit; cut short, they would be a crash.
        if !self
            .waits
            .drain(self.core.lock_timeout() + Duration::from_secs(5))
        {
            tracing::warn!("mount requests were still waiting when the mount ended");
        }
    }

    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Tool locks come to us (and go on to the share) instead of staying in this kernel;
        // O_TRUNC comes with open instead of as a separate truncate that would publish an
        // empty file before the new bytes.
        let wanted = InitFlags::FUSE_POSIX_LOCKS
            | InitFlags::FUSE_FLOCK_LOCKS
            | InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_BIG_WRITES
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_MAX_PAGES
            // Shared mappings of files opened with FOPEN_DIRECT_IO (kernel 6.6+).
            | InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP;
        let _ = config.add_capabilities(wanted & config.capabilities());
        // Readers of unchanged files read the share's data file in the kernel (6.9+). Depth
        // 2: the share itself may be on a stacked filesystem (overlayfs in a container).
        if config.capabilities().contains(InitFlags::FUSE_PASSTHROUGH)
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(2).is_ok()
        {
            self.core.enable_passthrough();
        }
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_readahead(MAX_IO);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = name_of(name).and_then(|n| self.core.lookup(parent.0, n));
        self.reply_entry(r, reply);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.core.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.reply_attr(ino, self.core.getattr(ino.0, fh.map(|f| f.0)), reply);
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = AttrChange {
            mode,
            uid,
            gid,
            atime: atime.map(time),
            mtime: mtime.map(time),
        };
        // A truncate publishes and new times go into the record: both wait for the file's
        // readers.
        let waits = size.is_some() || change.atime.is_some() || change.mtime.is_some();
        let (fh, pid, ttl) = (fh.map(|f| f.0), req.pid(), self.ttl);
        let run = move |core: &Core<BackingId>| {
            reply_attr(&ttl, ino, core.setattr(ino.0, fh, size, change, pid), reply)
        };
        self.waiting_if(waits, run);
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.core.readlink(ino.0) {
            Ok(t) => reply.data(t.as_os_str().as_encoded_bytes()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let who = caller(req).creator(mode, umask);
        let r = name_of(name).and_then(|n| self.core.mkdir(parent.0, n, who));
        self.reply_entry(r, reply);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let who = caller(req).creator(mode, umask);
        let r = name_of(name).and_then(|n| self.core.mknod(parent.0, n, mode, who));
        self.reply_entry(r, reply);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        // An object has one name; EPERM is what link(2) says for "not supported here".
        reply.error(errno(Errno::EPERM));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = match name_of(name) {
            Ok(n) => n.to_string(),
            Err(e) => return reply.error(errno(e)),
        };
        self.waiting(move |core| reply_empty(core.unlink(parent.0, &name), reply));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(
            name_of(name).and_then(|n| self.core.rmdir(parent.0, n)),
            reply,
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let who = caller(req).creator(0o777, 0);
        let r = name_of(link_name).and_then(|n| self.core.symlink(parent.0, n, target, who));
        self.reply_entry(r, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return reply.error(errno(Errno::EINVAL));
        }
        let replace = !flags.contains(RenameFlags::RENAME_NOREPLACE);
        let (from, to) = match (name_of(name), name_of(newname)) {
            (Ok(f), Ok(t)) => (f.to_string(), t.to_string()),
            (Err(e), _) | (_, Err(e)) => return reply.error(errno(e)),
        };
        self.waiting(move |core| {
            reply_empty(
                core.rename(parent.0, &from, newparent.0, &to, replace),
                reply,
            )
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let who = caller(req);
        // A reader waits while a writer on another host publishes; a writer may wait for
        // readers (O_TRUNC publishes).
        self.waiting(move |core| {
            let r = core.open(ino.0, flags.0, who, |f| reply.open_backing(f));
            match r {
                Ok(o) => {
                    let f = fopen_flags(&o);
                    match &o.backing {
                        Some(id) => reply.opened_passthrough(FileHandle(o.fh), f, id),
                        None => reply.opened(FileHandle(o.fh), f),
                    }
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let who = caller(req).creator(mode, umask);
        let name = match name_of(name) {
            Ok(n) => n.to_string(),
            Err(e) => return reply.error(errno(e)),
        };
        let (pid, ttl) = (req.pid(), self.ttl);
        // An existing name opens the file for writing, which waits for its readers.
        self.waiting(
            move |core| match core.create(parent.0, &name, flags, who, pid) {
                Ok((node, a, o)) => reply.created(
                    &ttl,
                    &fuse_attr(node, &a),
                    Generation(0),
                    FileHandle(o.fh),
                    fopen_flags(&o),
                ),
                Err(e) => reply.error(errno(e)),
            },
        );
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<KernelOwner>,
        reply: ReplyData,
    ) {
        thread_local! {
            // One buffer per request thread, reused: a fresh, zeroed megabyte per read costs
            // as much as the copy itself.
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            if buf.len() < size as usize {
                buf.resize(size as usize, 0);
            }
            let buf = &mut buf[..size as usize];
            match self.core.read(ino.0, fh.0, offset, buf) {
                Ok(n) => reply.data(&buf[..n]),
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<KernelOwner>,
        reply: ReplyWrite,
    ) {
        match self.core.write(fh.0, offset, data, req.pid()) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: KernelOwner,
        reply: ReplyEmpty,
    ) {
        let run =
            move |core: &Core<BackingId>| reply_empty(core.flush(ino.0, fh.0, lock_owner.0), reply);
        // Only what was written publishes, and only a publish waits (for readers).
        self.waiting_if(self.core.writes(fh.0), run);
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _ds: bool, reply: ReplyEmpty) {
        let run = move |core: &Core<BackingId>| reply_empty(core.fsync(fh.0), reply);
        self.waiting_if(self.core.writes(fh.0), run);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        lock_owner: Option<KernelOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let run = move |core: &Core<BackingId>| match core.release(
            ino.0,
            fh.0,
            lock_owner.map(|o| o.0),
        ) {
            Ok(()) => reply.ok(),
            Err(e) => {
                tracing::warn!(errno = e.0, "publishing at release failed");
                reply.error(errno(e))
            }
        };
        self.waiting_if(self.core.writes(fh.0), run);
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply_empty(self.core.access(ino.0), reply);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _n: &OsStr,
        _s: u32,
        reply: fuser::ReplyXattr,
    ) {
        // Objects carry no extended attributes; ENOSYS tells the kernel to stop asking.
        reply.error(fuser::Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: fuser::ReplyXattr) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(fuser::Errno::ENOSYS);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.core.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let r = self
            .core
            .readdir(ino.0, fh.0, offset, |id, kind, name, next| {
                reply.add(INodeNo(id), next, file_type(kind), name)
            });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.core.releasedir(ino.0, fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.core.statfs() {
            Ok(s) => reply.statfs(
                s.blocks,
                s.free,
                s.available,
                s.files,
                s.files_free,
                s.block_size,
                s.name_max.min(NAME_MAX as u32),
                s.block_size,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn getlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: KernelOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        let r = lock_type(typ).and_then(|kind| {
            let lock = RangeLock {
                kind,
                start,
                end,
                pid,
            };
            self.core.getlk(ino.0, lock_owner.0, lock)
        });
        match r {
            Ok(Some(l)) => reply.locked(l.start, l.end, lock_typ(l.kind), l.pid),
            Ok(None) => reply.locked(start, end, libc::F_UNLCK, 0),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setlk(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: KernelOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let prepared = lock_type(typ).and_then(|kind| {
            let lock = RangeLock {
                kind,
                start,
                end,
                pid,
            };
            self.core.setlk(ino.0, lock_owner.0, lock, sleep, req.pid())
        });
        let request = match prepared {
            Ok(r) => r,
            Err(e) => return reply.error(errno(e)),
        };
        if request.waits {
            // A waiting F_SETLKW must not hold up one of the few request threads for as long
            // as the lock timeout.
            let run = move || reply_empty(request.run(), reply);
            if let Err(e) = std::thread::Builder::new()
                .name("mount-lock-wait".into())
                .spawn(run)
            {
                tracing::warn!("cannot start a lock waiter: {e}");
            }
        } else {
            reply_empty(request.run(), reply);
        }
    }
}

/// Answers a request whose success carries nothing.
fn reply_empty(r: Result<()>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}
