//! The FUSE filesystem: turns kernel requests into backend calls, keeps the node table and
//! the open handles, and maps every failure to an errno.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    BackingId, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner as KernelOwner, Notifier, OpenAccMode, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyLock, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

use crate::backend::{
    Attr, AttrChange, Backend, Creator, Draft, Errno, Kind, LockOwner, LockType, RangeLock, Reader,
    Result, Time,
};
use crate::interrupt;
use crate::io_rules::{IoRules, ReadPath};
use crate::nodes::Nodes;

/// Longest name the mount accepts (the kernel passes up to 1024 bytes).
const NAME_MAX: usize = 255;
/// Largest write request (and read-ahead) asked of the kernel.
pub(crate) const MAX_IO: u32 = 1 << 20;

/// A file opened for writing: its draft appears once something changed the file.
struct Writing {
    node: u64,
    draft: Option<Box<dyn Draft>>,
    /// Opened with O_TRUNC: the draft starts empty.
    truncated: bool,
    append: bool,
    who: Creator,
    /// Opened while page-cache readers of the file were open in this mount: nothing may
    /// change the file (nor its size in the kernel) until they are gone.
    wait_readers: bool,
    /// The draft's attributes as last seen, shared with the handle (see `Handle::Write`).
    seen: Arc<Mutex<Option<Attr>>>,
}

enum Handle {
    /// `cached`: reads go through the kernel's page cache or, with `backing`, straight to
    /// the data file (FUSE passthrough); else FOPEN_DIRECT_IO.
    Read {
        node: u64,
        reader: Box<dyn Reader>,
        cached: bool,
        /// The kernel reads the data file itself; closed with the last handle holding it.
        _backing: Option<Arc<BackingId>>,
    },
    /// The writing state, and its draft's attributes as last seen: getattr reads those
    /// without waiting for the state, which a publish holds while it waits for a lock.
    Write(Mutex<Writing>, Arc<Mutex<Option<Attr>>>),
    Dir {
        entries: Vec<(String, Kind)>,
    },
}

/// The mounted filesystem.
pub struct Fs {
    backend: Arc<dyn Backend>,
    nodes: Mutex<Nodes>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    /// Write handles per node, for sizes of drafts not yet published.
    writers: Mutex<HashMap<u64, Vec<u64>>>,
    next_fh: AtomicU64,
    ttl: Duration,
    /// Talks back to the kernel (set once the session runs).
    notifier: Arc<OnceLock<Notifier>>,
    /// Which way each file is opened, given the others open in this mount.
    rules: IoRules<BackingId>,
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

fn lock_type(typ: i32) -> Result<LockType> {
    match typ {
        libc::F_RDLCK => Ok(LockType::Read),
        libc::F_WRLCK => Ok(LockType::Write),
        libc::F_UNLCK => Ok(LockType::Unlock),
        _ => Err(Errno::EINVAL),
    }
}

fn lock_typ(t: LockType) -> i32 {
    match t {
        LockType::Read => libc::F_RDLCK,
        LockType::Write => libc::F_WRLCK,
        LockType::Unlock => libc::F_UNLCK,
    }
}

impl Fs {
    /// A filesystem over `backend`, caching attributes for `ttl`.
    pub fn new(backend: Arc<dyn Backend>, ttl: Duration, notifier: Arc<OnceLock<Notifier>>) -> Fs {
        Fs {
            nodes: Mutex::new(Nodes::new()),
            handles: Mutex::new(HashMap::new()),
            writers: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            ttl,
            notifier,
            rules: IoRules::new(backend.lock_timeout()),
            backend,
        }
    }

    /// Makes the kernel forget the attributes it caches for `ino` (size above all), so that
    /// an open of a version other than the one it knows reads that version's size: reads
    /// stop at the cached size, which would cut a larger new version short. The kernel
    /// handles the notification before this returns, so before the open is answered.
    fn forget_cached_attr(&self, ino: u64) {
        if let Some(n) = self.notifier.get() {
            // Offset -1: attributes only; the open itself drops cached pages.
            if let Err(e) = n.inval_inode(INodeNo(ino), -1, 0) {
                tracing::debug!(ino, "cannot invalidate cached attributes: {e}");
            }
        }
    }

    fn path(&self, ino: INodeNo) -> Result<String> {
        self.nodes.lock().path(ino.0).ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<(String, String)> {
        let name = name_of(name)?;
        let path = self
            .nodes
            .lock()
            .child_path(parent.0, name)
            .ok_or(Errno::ENOENT)?;
        Ok((path, name.to_string()))
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<Handle>> {
        self.handles.lock().get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn add_handle(&self, node: u64, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        if matches!(h, Handle::Write(..)) {
            self.writers.lock().entry(node).or_default().push(fh);
        }
        self.handles.lock().insert(fh, Arc::new(h));
        self.nodes.lock().opened(node, 1);
        fh
    }

    fn remove_handle(&self, node: u64, fh: FileHandle) -> Option<Arc<Handle>> {
        let h = self.handles.lock().remove(&fh.0);
        match h.as_deref() {
            Some(Handle::Write(..)) => self.rules.end_io(node, true, false),
            Some(Handle::Read { cached: true, .. }) => self.rules.end_io(node, false, true),
            _ => {}
        }
        if h.is_some() {
            {
                let mut w = self.writers.lock();
                if let Some(list) = w.get_mut(&node) {
                    list.retain(|&x| x != fh.0);
                    if list.is_empty() {
                        w.remove(&node);
                    }
                }
            }
            self.nodes.lock().opened(node, -1);
        }
        h
    }

    /// The attributes of a draft open on `node`, which win over the share's until published.
    fn draft_attr(&self, node: u64) -> Option<Attr> {
        let fhs = self.writers.lock().get(&node).cloned()?;
        for fh in fhs.iter().rev() {
            // Not holding the table while waiting for a handle busy writing or publishing.
            let h = self.handles.lock().get(fh).cloned();
            let Some(h) = h else {
                continue;
            };
            let Handle::Write(w, seen) = &*h else {
                continue;
            };
            // A handle busy publishing (or writing) answers with what it last showed.
            let attr = match w.try_lock() {
                Some(w) => {
                    let a = w.draft.as_ref().and_then(|d| d.attr().ok());
                    *seen.lock() = a;
                    a
                }
                None => *seen.lock(),
            };
            if attr.is_some() {
                return attr;
            }
        }
        None
    }

    /// Some read handle open on `node`.
    fn read_handle_of(&self, node: u64) -> Option<Arc<Handle>> {
        self.handles
            .lock()
            .values()
            .find(|h| matches!(&***h, Handle::Read { node: n, .. } if *n == node))
            .cloned()
    }

    /// Lets the read handles in this mount of the file at `path`, or of any file below the
    /// directory at `path`, stop holding off writers, before this mount unlinks, moves or
    /// replaces it: their open descriptors keep the bytes they opened (as on a local
    /// filesystem, and on NFS by silly-rename), so only readers in other processes and on
    /// other hosts need the wait. Returns them with the paths they had, for `hold_again`.
    fn let_go_readers(&self, path: &str) -> Vec<(Arc<Handle>, String)> {
        let below = format!("{path}/");
        // One pass over the open handles: unlink and rename are rare next to reads.
        let readers: Vec<(u64, Arc<Handle>)> = self
            .handles
            .lock()
            .values()
            .filter_map(|h| match &**h {
                Handle::Read { node, .. } => Some((*node, h.clone())),
                _ => None,
            })
            .collect();
        let mut let_go = Vec::new();
        for (node, h) in readers {
            let Some(p) = self.nodes.lock().path(node) else {
                continue;
            };
            if p != path && !p.starts_with(&below) {
                continue;
            }
            if let Handle::Read { reader, .. } = &*h {
                reader.let_go();
            }
            let_go.push((h, p));
        }
        let_go
    }

    /// Readers let go for an unlink or rename that failed (`to` None: each at its own
    /// path), or that moved them from `from` to `to`, hold off writers again.
    fn hold_again(&self, readers: &[(Arc<Handle>, String)], moved: Option<(&str, &str)>) {
        for (h, p) in readers {
            let Handle::Read { reader, .. } = &**h else {
                continue;
            };
            match moved {
                None => reader.hold_again(p),
                Some((from, to)) => {
                    if let Some(rest) = p.strip_prefix(from) {
                        if rest.is_empty() || rest.starts_with('/') {
                            reader.hold_again(&format!("{to}{rest}"));
                        }
                    }
                }
            }
        }
    }

    fn attr_of(&self, node: u64, path: &str) -> Result<Attr> {
        if let Some(a) = self.draft_attr(node) {
            return Ok(a);
        }
        self.backend.attr(path)
    }

    fn entry(&self, parent: INodeNo, name: &str, attr: &Attr, reply: ReplyEntry) {
        let id = self.nodes.lock().lookup(parent.0, name);
        reply.entry(&self.ttl, &fuse_attr(id, attr), Generation(0));
    }

    /// Answers a request that names a new or found entry of `parent`.
    fn reply_entry(&self, parent: INodeNo, r: Result<(String, Attr)>, reply: ReplyEntry) {
        match r {
            Ok((name, a)) => self.entry(parent, &name, &a, reply),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn creator(req: &Request, mode: u32, umask: u32) -> Creator {
        Creator {
            mode: mode & !umask & 0o7777,
            uid: req.uid(),
            gid: req.gid(),
        }
    }

    /// Makes sure the write handle has a draft (copying the current bytes unless truncated).
    fn ensure_draft(&self, w: &mut Writing, pid: u32) -> Result<()> {
        if w.wait_readers {
            self.rules.wait_for_cached_readers(w.node, pid)?;
            w.wait_readers = false;
        }
        if w.draft.is_none() {
            let path = self.nodes.lock().path(w.node).ok_or(Errno::ENOENT)?;
            w.draft = Some(self.backend.draft(&path, !w.truncated, w.who)?);
        }
        Ok(())
    }

    /// Publishes the handle's draft, if any, at the node's current path. A file removed
    /// while open for writing publishes nothing, as its writes went to an unlinked file.
    fn publish(&self, w: &mut Writing) -> Result<()> {
        let Some(d) = w.draft.take() else {
            return Ok(());
        };
        // Shown while the publish waits; the published file's own attributes after it.
        *w.seen.lock() = d.attr().ok();
        let _shown = ClearOnDrop(&w.seen);
        // Later writes through this handle start a new draft from the published bytes.
        w.truncated = false;
        // The node table must not stay locked while the publish waits for the object's
        // exclusive lock: the releases that end other handles' shared locks need it.
        let path = self.nodes.lock().path(w.node);
        match path {
            Some(path) => d.publish(&path),
            None => Ok(()),
        }
    }

    /// Publishes every draft open on `node`; whether there was one.
    fn publish_node(&self, node: u64) -> Result<bool> {
        let fhs = self.writers.lock().get(&node).cloned().unwrap_or_default();
        let mut any = false;
        for fh in fhs {
            let Some(h) = self.handles.lock().get(&fh).cloned() else {
                continue;
            };
            if let Handle::Write(w, _) = &*h {
                let mut w = w.lock();
                any |= w.draft.is_some();
                self.publish(&mut w)?;
            }
        }
        Ok(any)
    }

    /// Opens `node` for writing: the handle and how the kernel must treat it.
    fn open_write(
        &self,
        node: u64,
        flags: i32,
        who: Creator,
        pid: u32,
    ) -> Result<(u64, FopenFlags)> {
        let readers = self.rules.start_writing(node, pid)?;
        let seen = Arc::new(Mutex::new(None));
        let mut w = Writing {
            node,
            draft: None,
            truncated: flags & libc::O_TRUNC != 0,
            append: flags & libc::O_APPEND != 0,
            who,
            wait_readers: readers,
            seen: seen.clone(),
        };
        if w.truncated {
            // O_TRUNC empties the file for this opener now (the kernel, too, once the open
            // is answered); others see it at close.
            if let Err(e) = self.ensure_draft(&mut w, pid) {
                self.rules.end_io(node, true, false);
                return Err(e);
            }
        }
        let fh = self.add_handle(node, Handle::Write(Mutex::new(w), seen));
        // Writes that wait for page-cache readers must not hold the pages they would fill.
        let flags = if readers {
            FopenFlags::FOPEN_DIRECT_IO
        } else {
            FopenFlags::empty()
        };
        Ok((fh, flags))
    }

    fn timed<T>(&self, op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let r = f();
        self.backend
            .observe(op, r.as_ref().err().copied(), started.elapsed());
        r
    }
}

impl Fs {
    fn read_into(
        &self,
        buf: &mut Vec<u8>,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        reply: ReplyData,
    ) {
        if buf.len() < size as usize {
            buf.resize(size as usize, 0);
        }
        let buf = &mut buf[..size as usize];
        let r = self.timed("read", || {
            let h = self.handle(fh)?;
            let mut filled = 0;
            // The kernel expects a full buffer except at the end of the file.
            while filled < buf.len() {
                let at = offset + filled as u64;
                let n = match &*h {
                    Handle::Read { reader, .. } => reader.read_at(&mut buf[filled..], at)?,
                    Handle::Write(w, _) => {
                        let w = w.lock();
                        match &w.draft {
                            Some(d) => d.read_at(&mut buf[filled..], at)?,
                            None => {
                                let r = self.backend.open_read(&self.path(ino)?)?;
                                r.read_at(&mut buf[filled..], at)?
                            }
                        }
                    }
                    Handle::Dir { .. } => return Err(Errno::EISDIR),
                };
                if n == 0 {
                    break;
                }
                filled += n;
            }
            Ok(filled)
        });
        match r {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(errno(e)),
        }
    }
}

impl Filesystem for Fs {
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
            self.rules.enable_passthrough();
        }
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_readahead(MAX_IO);
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.timed("lookup", || {
            let (path, name) = self.child(parent, name)?;
            match self.backend.attr(&path) {
                Ok(a) => Ok((name, a)),
                Err(e) if e == Errno::ENOENT => {
                    // A file created here and not yet published exists for this mount only.
                    let node = self.nodes.lock().find(parent.0, &name).ok_or(e)?;
                    Ok((name, self.draft_attr(node).ok_or(e)?))
                }
                Err(e) => Err(e),
            }
        });
        self.reply_entry(parent, r, reply);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.nodes.lock().forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = self.timed("getattr", || {
            if let Some(a) = self.draft_attr(ino.0) {
                return Ok(a);
            }
            match self.path(ino) {
                Ok(path) => self.backend.attr(&path),
                // fstat of a file this mount unlinked while it was open: what was opened,
                // with no links left.
                // The kernel sends fstat without the handle, so any read handle of the node
                // will do.
                Err(e) => {
                    let reader = fh
                        .and_then(|f| self.handle(f).ok())
                        .filter(|h| matches!(&**h, Handle::Read { .. }))
                        .or_else(|| self.read_handle_of(ino.0));
                    match reader.as_deref() {
                        Some(Handle::Read { reader, .. }) => Ok(Attr {
                            nlink: 0,
                            ..reader.attr()
                        }),
                        _ => Err(e),
                    }
                }
            }
        });
        match r {
            Ok(a) => reply.attr(&self.ttl, &fuse_attr(ino.0, &a)),
            Err(e) => reply.error(errno(e)),
        }
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
        let r = self.timed("setattr", || {
            let path = self.path(ino)?;
            // A handle of this node with a draft (this one, or another writer's) takes the
            // change: the draft replaces the file at close, so that is where it must land.
            let mut fhs: Vec<u64> = fh.map(|f| f.0).into_iter().collect();
            fhs.extend(self.writers.lock().get(&ino.0).cloned().unwrap_or_default());
            for f in fhs {
                let Ok(h) = self.handle(FileHandle(f)) else {
                    continue;
                };
                let Handle::Write(w, _) = &*h else {
                    continue;
                };
                let mut w = w.lock();
                if size.is_some() {
                    w.truncated |= size == Some(0);
                    self.ensure_draft(&mut w, req.pid())?;
                }
                let Some(d) = w.draft.as_mut() else {
                    continue;
                };
                if let Some(s) = size {
                    d.set_len(s)?;
                }
                d.set_attr(change)?;
                return d.attr();
            }
            if let Some(s) = size {
                // truncate(2) on a path: a new version, published at once.
                let who = Creator {
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                };
                let mut d = self.backend.draft(&path, s > 0, who)?;
                d.set_len(s)?;
                d.set_attr(change)?;
                d.publish(&path)?;
            } else {
                self.backend.set_attr(&path, change)?;
            }
            self.backend.attr(&path)
        });
        match r {
            Ok(a) => reply.attr(&self.ttl, &fuse_attr(ino.0, &a)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.timed("readlink", || self.backend.read_link(&self.path(ino)?)) {
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
        let r = self.timed("mkdir", || {
            let (path, name) = self.child(parent, name)?;
            self.backend
                .make_dir(&path, Self::creator(req, mode, umask))?;
            Ok((name, self.backend.attr(&path)?))
        });
        self.reply_entry(parent, r, reply);
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
        let r = self.timed("mknod", || {
            // Objects are regular files; fifos, sockets and devices have no place here.
            if mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Errno::EPERM);
            }
            let (path, name) = self.child(parent, name)?;
            match self.backend.attr(&path) {
                Ok(_) => return Err(Errno::EEXIST),
                Err(e) if e == Errno::ENOENT => {}
                Err(e) => return Err(e),
            }
            let d = self
                .backend
                .draft(&path, false, Self::creator(req, mode, umask))?;
            d.publish(&path)?;
            Ok((name, self.backend.attr(&path)?))
        });
        self.reply_entry(parent, r, reply);
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
        let r = self.timed("unlink", || {
            let (path, name) = self.child(parent, name)?;
            let readers = self.let_go_readers(&path);
            let r = match self.backend.unlink(&path) {
                Ok(()) => Ok(()),
                // A created file not yet published: dropping the name is all there is to do.
                Err(e) if e == Errno::ENOENT => self
                    .nodes
                    .lock()
                    .find(parent.0, &name)
                    .and_then(|node| self.draft_attr(node))
                    .map(|_| ())
                    .ok_or(e),
                Err(e) => Err(e),
            };
            if r.is_err() {
                self.hold_again(&readers, None);
            }
            r?;
            self.nodes.lock().detach(parent.0, &name);
            Ok(())
        });
        reply_empty(r, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.timed("rmdir", || {
            let (path, name) = self.child(parent, name)?;
            self.backend.remove_dir(&path)?;
            self.nodes.lock().detach(parent.0, &name);
            Ok(())
        });
        reply_empty(r, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = self.timed("symlink", || {
            let (path, name) = self.child(parent, link_name)?;
            self.backend
                .symlink(&path, target, Self::creator(req, 0o777, 0))?;
            Ok((name, self.backend.attr(&path)?))
        });
        self.reply_entry(parent, r, reply);
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
        let r = self.timed("rename", || {
            if flags.contains(RenameFlags::RENAME_EXCHANGE)
                || flags.contains(RenameFlags::RENAME_WHITEOUT)
            {
                return Err(Errno::EINVAL);
            }
            let (from, name) = self.child(parent, name)?;
            let (to, newname) = self.child(newparent, newname)?;
            let replace = !flags.contains(RenameFlags::RENAME_NOREPLACE);
            // The file, or every file below the directory, that moves; and the one replaced.
            let moving = self.let_go_readers(&from);
            let mut replaced = Vec::new();
            if replace {
                replaced = self.let_go_readers(&to);
            }
            let r = match self.backend.rename(&from, &to, replace) {
                // A file created here and still open for writing exists for this mount only:
                // it goes live now (as fsync would) so that it can move like any other.
                Err(e) if e == Errno::ENOENT => {
                    let node = self.nodes.lock().find(parent.0, &name).ok_or(e);
                    match node.and_then(|n| self.publish_node(n)) {
                        Ok(true) => self.backend.rename(&from, &to, replace),
                        Ok(false) => Err(e),
                        Err(e) => Err(e),
                    }
                }
                r => r,
            };
            if let Err(e) = r {
                self.hold_again(&moving, None);
                self.hold_again(&replaced, None);
                return Err(e);
            }
            // Moved, not replaced: the same version, now at its new path.
            self.hold_again(&moving, Some((&from, &to)));
            self.nodes
                .lock()
                .rename(parent.0, &name, newparent.0, &newname);
            Ok(())
        });
        reply_empty(r, reply);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let r = self.timed("open", || {
            let path = self.path(ino)?;
            if flags.acc_mode() == OpenAccMode::O_RDONLY && flags.0 & libc::O_TRUNC == 0 {
                let reader = self.backend.open_read(&path)?;
                let a = reader.attr();
                let version = (a.share_ino, a.mtime, a.size);
                let (how, cached) = self.rules.read_path(
                    ino.0,
                    version,
                    || reader.file().map(|f| reply.open_backing(f)),
                    req.pid(),
                )?;
                // Pages cached from an earlier open of this very version stay valid: the
                // shared lock now held keeps it from changing until release.
                let keep =
                    !matches!(how, ReadPath::Direct) && self.nodes.lock().cache(ino.0, version);
                if !keep {
                    self.forget_cached_attr(ino.0);
                }
                let (backing, f) = match how {
                    ReadPath::Passthrough(id) => (Some(id), FopenFlags::empty()),
                    ReadPath::Cached if keep => (None, FopenFlags::FOPEN_KEEP_CACHE),
                    ReadPath::Cached => (None, FopenFlags::empty()),
                    ReadPath::Direct => (None, FopenFlags::FOPEN_DIRECT_IO),
                };
                let fh = self.add_handle(
                    ino.0,
                    Handle::Read {
                        node: ino.0,
                        reader,
                        cached,
                        _backing: backing.clone(),
                    },
                );
                return Ok((fh, f, backing));
            }
            let a = self.attr_of(ino.0, &path)?;
            if a.kind == Kind::Dir {
                return Err(Errno::EISDIR);
            }
            let who = Creator {
                mode: u32::from(a.perm),
                uid: req.uid(),
                gid: req.gid(),
            };
            let (fh, f) = self.open_write(ino.0, flags.0, who, req.pid())?;
            // Reads and writes through this handle must see the current size, and pages
            // cached of this version may now change: the next read open drops them.
            self.nodes.lock().uncache(ino.0);
            self.forget_cached_attr(ino.0);
            Ok((fh, f, None))
        });
        match r {
            Ok((fh, f, Some(id))) => reply.opened_passthrough(FileHandle(fh), f, &id),
            Ok((fh, f, None)) => reply.opened(FileHandle(fh), f),
            Err(e) => reply.error(errno(e)),
        }
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
        let r = self.timed("create", || {
            let (path, name) = self.child(parent, name)?;
            let exists = match self.backend.attr(&path) {
                Ok(a) if a.kind == Kind::Dir => return Err(Errno::EISDIR),
                Ok(_) => true,
                Err(e) if e == Errno::ENOENT => false,
                Err(e) => return Err(e),
            };
            if exists && flags & libc::O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let who = Self::creator(req, mode, umask);
            let node = self.nodes.lock().lookup(parent.0, &name);
            // A new file has nothing to copy: its draft starts empty.
            let trunc = if exists {
                flags & libc::O_TRUNC
            } else {
                libc::O_TRUNC
            };
            let (fh, open_flags) =
                match self.open_write(node, (flags & !libc::O_TRUNC) | trunc, who, req.pid()) {
                    Ok(r) => r,
                    Err(e) => {
                        self.nodes.lock().forget(node, 1);
                        return Err(e);
                    }
                };
            if exists {
                self.nodes.lock().uncache(node);
                self.forget_cached_attr(node);
            }
            let a = self.attr_of(node, &path)?;
            Ok((node, fh, a, open_flags))
        });
        match r {
            Ok((node, fh, a, open_flags)) => reply.created(
                &self.ttl,
                &fuse_attr(node, &a),
                Generation(0),
                FileHandle(fh),
                open_flags,
            ),
            Err(e) => reply.error(errno(e)),
        }
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
        BUF.with_borrow_mut(|buf| self.read_into(buf, ino, fh, offset, size, reply));
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
        let r = self.timed("write", || {
            let h = self.handle(fh)?;
            let Handle::Write(w, _) = &*h else {
                return Err(Errno::EBADF);
            };
            let mut w = w.lock();
            self.ensure_draft(&mut w, req.pid())?;
            let append = w.append;
            let Some(d) = w.draft.as_mut() else {
                return Err(Errno::EIO);
            };
            let at = if append { d.len() } else { offset };
            d.write_at(data, at)?;
            Ok(data.len() as u32)
        });
        match r {
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
        // close(): POSIX drops the process's record locks on the file, and what was written
        // goes live before close returns.
        self.backend.release_locks(LockOwner {
            node: ino.0,
            owner: lock_owner.0,
        });
        let r = self.timed("flush", || match &*self.handle(fh)? {
            Handle::Write(w, _) => self.publish(&mut w.lock()),
            _ => Ok(()),
        });
        reply_empty(r, reply);
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _ds: bool, reply: ReplyEmpty) {
        let r = self.timed("fsync", || match &*self.handle(fh)? {
            Handle::Write(w, _) => self.publish(&mut w.lock()),
            _ => Ok(()),
        });
        reply_empty(r, reply);
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
        if let Some(o) = lock_owner {
            // flock locks belong to the open file and end with its last close.
            self.backend.release_locks(LockOwner {
                node: ino.0,
                owner: o.0,
            });
        }
        let r = self.timed("release", || {
            if let Some(h) = self.remove_handle(ino.0, fh) {
                if let Handle::Write(w, _) = &*h {
                    // Written through a mapping after the last close: publish it now.
                    self.publish(&mut w.lock())?;
                }
            }
            Ok(())
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => {
                tracing::warn!(errno = e.0, "publishing at release failed");
                reply.error(errno(e))
            }
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // Permission bits are the kernel's business (default_permissions); access() only
        // needs the entry to exist.
        match self.timed("access", || self.attr_of(ino.0, &self.path(ino)?)) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
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
        let r = self.timed("opendir", || {
            let entries = self.backend.entries(&self.path(ino)?)?;
            Ok(self.add_handle(ino.0, Handle::Dir { entries }))
        });
        match r {
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
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(errno(e)),
        };
        let Handle::Dir { entries } = &*h else {
            return reply.error(errno(Errno::EBADF));
        };
        let parent = self.nodes.lock().parent(ino.0);
        let dots = [
            (ino.0, FileType::Directory, "."),
            (parent, FileType::Directory, ".."),
        ];
        let all = dots.into_iter().chain(entries.iter().map(|(name, kind)| {
            // Any stable, non-zero number will do: the kernel asks lookup for the real one.
            let known = self.nodes.lock().find(ino.0, name);
            let id = known.unwrap_or_else(|| pseudo_ino(ino.0, name));
            (id, file_type(*kind), name.as_str())
        }));
        for (i, (id, kind, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(id), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.remove_handle(ino.0, fh);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.timed("statfs", || self.backend.statfs()) {
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
        let r = self.timed("getlk", || {
            let lock = RangeLock {
                kind: lock_type(typ)?,
                start,
                end,
                pid,
            };
            let owner = LockOwner {
                node: ino.0,
                owner: lock_owner.0,
            };
            self.backend.test_lock(&self.path(ino)?, owner, lock)
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
        let prepared = (|| {
            let lock = RangeLock {
                kind: lock_type(typ)?,
                start,
                end,
                pid,
            };
            Ok((self.path(ino)?, lock))
        })();
        let (path, lock) = match prepared {
            Ok(p) => p,
            Err(e) => return reply.error(errno(e)),
        };
        let owner = LockOwner {
            node: ino.0,
            owner: lock_owner.0,
        };
        let backend = self.backend.clone();
        let waits = sleep && lock.kind != LockType::Unlock;
        let pid = req.pid();
        let run = move || {
            let started = Instant::now();
            let r = if waits {
                wait_for_lock(&*backend, &path, owner, lock, pid)
            } else {
                backend.lock(&path, owner, lock, None)
            };
            backend.observe("setlk", r.err(), started.elapsed());
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        };
        if waits {
            // A waiting F_SETLKW must not hold up one of the few request threads for as long
            // as the lock timeout.
            if let Err(e) = std::thread::Builder::new()
                .name("mount-lock-wait".into())
                .spawn(run)
            {
                tracing::warn!("cannot start a lock waiter: {e}");
            }
        } else {
            run();
        }
    }
}

/// Waits for a tool lock up to the lock timeout, in slices, giving up with EINTR once the
/// requester `pid` is interrupted by a signal: an abandoned wait is never granted later.
fn wait_for_lock(
    backend: &dyn Backend,
    path: &str,
    owner: LockOwner,
    lock: RangeLock,
    pid: u32,
) -> Result<()> {
    let deadline = Instant::now() + backend.lock_timeout();
    loop {
        let now = Instant::now();
        let slice = (now + interrupt::SLICE).min(deadline);
        match backend.lock(path, owner, lock, Some(slice)) {
            Err(e) if e == Errno::EAGAIN && slice < deadline => {
                if interrupt::interrupted(pid) {
                    return Err(Errno::EINTR);
                }
            }
            r => return r,
        }
    }
}

/// Forgets the attributes a handle showed once its publish is over, however it ended.
struct ClearOnDrop<'a>(&'a Mutex<Option<Attr>>);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        *self.0.lock() = None;
    }
}

/// Answers a request whose success carries nothing.
fn reply_empty(r: Result<()>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

/// A stable number for a directory entry the kernel has not looked up yet.
fn pseudo_ino(parent: u64, name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (parent, name).hash(&mut h);
    // The top bit keeps them apart from the table's sequential ids.
    h.finish() | (1 << 63)
}
