//! The mount's policy, free of fuser: the node table, the open handles, which version each
//! handle sees, when a draft goes live, who waits for whom. Every operation takes plain
//! values and answers `Result<_, Errno>`; `fs.rs` only translates kernel requests into these
//! calls and the results into replies, so the whole policy can be driven without a kernel
//! (see the model test at the bottom, over `memory::MemoryBackend`).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::backend::{
    Attr, AttrChange, Backend, Creator, Draft, Errno, Kind, LockOwner, LockType, RangeLock, Reader,
    Result, StatFs,
};
use crate::interrupt;
use crate::io_rules::{IoRules, ReadPath, Role};
use crate::nodes::Nodes;

/// Write handles bypass the page cache (FOPEN_DIRECT_IO). Through the page cache the kernel
/// copies every byte written into the mount's own pages before sending it, and nasgate
/// copies it again into the share's: two fills of fresh page-cache pages against a direct
/// write's one, which held the mount to 0.59x of a direct write where direct handles reach
/// 0.88x (docs/performance.md). It also keeps a writer's pages from holding off readers
/// (see `io_rules`). Shared mappings still work (FUSE_DIRECT_IO_ALLOW_MMAP).
const WRITES_DIRECT: bool = true;

/// Longest name the mount accepts (the kernel passes up to 1024 bytes).
pub(crate) const NAME_MAX: usize = 255;

/// What the core asks of the kernel while it answers a request.
pub(crate) trait KernelCache: Send + Sync {
    /// Makes the kernel forget the attributes it caches for `ino` (size above all), before
    /// the request in progress is answered.
    fn forget_attr(&self, ino: u64);
}

/// Who asks: the requesting process and its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    /// User id.
    pub(crate) uid: u32,
    /// Group id.
    pub(crate) gid: u32,
    /// Process id (interrupted waits end with EINTR).
    pub(crate) pid: u32,
}

impl Caller {
    /// Mode and owner of something this caller creates with `mode` under `umask`.
    pub(crate) fn creator(self, mode: u32, umask: u32) -> Creator {
        Creator {
            mode: mode & !umask & 0o7777,
            uid: self.uid,
            gid: self.gid,
        }
    }
}

/// An open answered: the handle and how the kernel must treat it.
pub(crate) struct Opened<B> {
    /// The handle number.
    pub(crate) fh: u64,
    /// Reads and writes bypass the page cache (FOPEN_DIRECT_IO).
    pub(crate) direct: bool,
    /// Pages cached of this very version stay valid (FOPEN_KEEP_CACHE).
    pub(crate) keep_cache: bool,
    /// The kernel reads this backing file itself (FUSE passthrough).
    pub(crate) backing: Option<Arc<B>>,
}

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

enum Handle<B> {
    /// `role`: reads go through the kernel's page cache or, with `backing`, straight to
    /// the data file (FUSE passthrough); or direct (FOPEN_DIRECT_IO).
    Read {
        node: u64,
        reader: Box<dyn Reader>,
        role: Role,
        /// The kernel reads the data file itself; closed with the last handle holding it.
        _backing: Option<Arc<B>>,
    },
    /// The writing state, and its draft's attributes as last seen: getattr reads those
    /// without waiting for the state, which a publish holds while it waits for a lock.
    Write(Mutex<Writing>, Arc<Mutex<Option<Attr>>>),
    Dir {
        entries: Vec<(String, Kind)>,
    },
}

/// A tool's record lock request, ready to run on a thread of its own when it waits.
pub(crate) struct LockRequest {
    backend: Arc<dyn Backend>,
    path: String,
    owner: LockOwner,
    lock: RangeLock,
    /// F_SETLKW of a lock (not an unlock): waits up to the lock timeout.
    pub(crate) waits: bool,
    pid: u32,
}

impl LockRequest {
    /// Takes or releases the lock, waiting when asked to.
    pub(crate) fn run(self) -> Result<()> {
        let started = Instant::now();
        let r = if self.waits {
            wait_for_lock(&*self.backend, &self.path, self.owner, self.lock, self.pid)
        } else {
            self.backend.lock(&self.path, self.owner, self.lock, None)
        };
        self.backend.observe("setlk", r.err(), started.elapsed());
        r
    }
}

/// The mount's state and policy; `B` is the kernel's backing-file registration.
pub(crate) struct Core<B> {
    backend: Arc<dyn Backend>,
    nodes: Mutex<Nodes>,
    handles: Mutex<HashMap<u64, Arc<Handle<B>>>>,
    /// Write handles per node, for sizes of drafts not yet published.
    writers: Mutex<HashMap<u64, Vec<u64>>>,
    next_fh: AtomicU64,
    /// Talks back to the kernel.
    kernel: Arc<dyn KernelCache>,
    /// Which way each file is opened, given the others open in this mount.
    rules: IoRules<B>,
}

fn name_ok(name: &str) -> Result<&str> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(name)
}

/// Maps a fcntl lock type.
pub(crate) fn lock_type(typ: i32) -> Result<LockType> {
    match typ {
        libc::F_RDLCK => Ok(LockType::Read),
        libc::F_WRLCK => Ok(LockType::Write),
        libc::F_UNLCK => Ok(LockType::Unlock),
        _ => Err(Errno::EINVAL),
    }
}

impl<B> Core<B> {
    /// A core over `backend` with no node looked up and nothing open.
    pub(crate) fn new(backend: Arc<dyn Backend>, kernel: Arc<dyn KernelCache>) -> Core<B> {
        Core {
            nodes: Mutex::new(Nodes::new()),
            handles: Mutex::new(HashMap::new()),
            writers: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            kernel,
            rules: IoRules::new(backend.lock_timeout()),
            backend,
        }
    }

    /// The longest a request waits for a lock.
    pub(crate) fn lock_timeout(&self) -> std::time::Duration {
        self.backend.lock_timeout()
    }

    /// The kernel offers passthrough.
    pub(crate) fn enable_passthrough(&self) {
        self.rules.enable_passthrough();
    }

    fn path(&self, ino: u64) -> Result<String> {
        self.nodes.lock().path(ino).ok_or(Errno::ENOENT)
    }

    fn child(&self, parent: u64, name: &str) -> Result<(String, String)> {
        let name = name_ok(name)?;
        let path = self
            .nodes
            .lock()
            .child_path(parent, name)
            .ok_or(Errno::ENOENT)?;
        Ok((path, name.to_string()))
    }

    fn handle(&self, fh: u64) -> Result<Arc<Handle<B>>> {
        self.handles.lock().get(&fh).cloned().ok_or(Errno::EBADF)
    }

    fn add_handle(&self, node: u64, h: Handle<B>) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        if matches!(h, Handle::Write(..)) {
            self.writers.lock().entry(node).or_default().push(fh);
        }
        self.handles.lock().insert(fh, Arc::new(h));
        self.nodes.lock().opened(node, 1);
        fh
    }

    fn remove_handle(&self, node: u64, fh: u64) -> Option<Arc<Handle<B>>> {
        let h = self.handles.lock().remove(&fh);
        match h.as_deref() {
            Some(Handle::Write(..)) => self.rules.end_io(node, Role::Writer),
            Some(Handle::Read { role, .. }) => self.rules.end_io(node, *role),
            _ => {}
        }
        if h.is_some() {
            {
                let mut w = self.writers.lock();
                if let Some(list) = w.get_mut(&node) {
                    list.retain(|&x| x != fh);
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
    fn read_handle_of(&self, node: u64) -> Option<Arc<Handle<B>>> {
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
    fn let_go_readers(&self, path: &str) -> Vec<(Arc<Handle<B>>, String)> {
        let below = format!("{path}/");
        // One pass over the open handles: unlink and rename are rare next to reads.
        let readers: Vec<(u64, Arc<Handle<B>>)> = self
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
    fn hold_again(&self, readers: &[(Arc<Handle<B>>, String)], moved: Option<(&str, &str)>) {
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

    /// Whether `name` in `parent` has a draft open here: a file created in this mount and
    /// not yet published exists for this mount, and its name is taken.
    fn drafted(&self, parent: u64, name: &str) -> bool {
        let node = self.nodes.lock().find(parent, name);
        node.is_some_and(|n| self.draft_attr(n).is_some())
    }

    /// Files created in directory `dir` by this mount and not yet published.
    fn unpublished_in(&self, dir: u64) -> Vec<String> {
        let open: Vec<u64> = self.writers.lock().keys().copied().collect();
        let mut names = Vec::new();
        for node in open {
            let (path, name) = {
                let t = self.nodes.lock();
                if t.parent(node) != dir {
                    continue;
                }
                (t.path(node), t.name(node).map(str::to_string))
            };
            let (Some(path), Some(name)) = (path, name) else {
                continue;
            };
            if self.draft_attr(node).is_some() && self.backend.attr(&path) == Err(Errno::ENOENT) {
                names.push(name);
            }
        }
        names
    }

    /// Looks up (and counts) the entry `name` of `parent`: its node and attributes.
    fn entry(&self, parent: u64, name: &str, attr: Attr) -> (u64, Attr) {
        (self.nodes.lock().lookup(parent, name), attr)
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

    /// Opens `node` for writing: the handle. Write handles always bypass the page cache
    /// (see `WRITES_DIRECT`).
    fn open_write(&self, node: u64, flags: i32, who: Creator, pid: u32) -> Result<u64> {
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
                self.rules.end_io(node, Role::Writer);
                return Err(e);
            }
        }
        Ok(self.add_handle(node, Handle::Write(Mutex::new(w), seen)))
    }

    /// Runs one operation, counting it for metrics.
    pub(crate) fn timed<T>(&self, op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let r = f();
        self.backend
            .observe(op, r.as_ref().err().copied(), started.elapsed());
        r
    }

    /// lookup: the node and attributes of `name` in `parent`.
    pub(crate) fn lookup(&self, parent: u64, name: &str) -> Result<(u64, Attr)> {
        self.timed("lookup", || {
            let (path, name) = self.child(parent, name)?;
            match self.backend.attr(&path) {
                Ok(a) => Ok(self.entry(parent, &name, a)),
                Err(e) if e == Errno::ENOENT => {
                    // A file created here and not yet published exists for this mount only.
                    let node = self.nodes.lock().find(parent, &name).ok_or(e)?;
                    let a = self.draft_attr(node).ok_or(e)?;
                    Ok(self.entry(parent, &name, a))
                }
                Err(e) => Err(e),
            }
        })
    }

    /// forget: the kernel dropped `nlookup` references to `ino`.
    pub(crate) fn forget(&self, ino: u64, nlookup: u64) {
        self.nodes.lock().forget(ino, nlookup);
    }

    /// getattr, through the handle `fh` when the kernel names one.
    pub(crate) fn getattr(&self, ino: u64, fh: Option<u64>) -> Result<Attr> {
        self.timed("getattr", || {
            if let Some(a) = self.draft_attr(ino) {
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
                        .or_else(|| self.read_handle_of(ino));
                    match reader.as_deref() {
                        Some(Handle::Read { reader, .. }) => Ok(Attr {
                            nlink: 0,
                            ..reader.attr()
                        }),
                        _ => Err(e),
                    }
                }
            }
        })
    }

    /// setattr: chmod, chown, utimens and truncate (`size`), through `fh` when given.
    pub(crate) fn setattr(
        &self,
        ino: u64,
        fh: Option<u64>,
        size: Option<u64>,
        change: AttrChange,
        pid: u32,
    ) -> Result<Attr> {
        self.timed("setattr", || {
            let path = self.path(ino)?;
            // A handle of this node with a draft (this one, or another writer's) takes the
            // change: the draft replaces the file at close, so that is where it must land.
            let mut fhs: Vec<u64> = fh.into_iter().collect();
            fhs.extend(self.writers.lock().get(&ino).cloned().unwrap_or_default());
            for f in fhs {
                let Ok(h) = self.handle(f) else {
                    continue;
                };
                let Handle::Write(w, _) = &*h else {
                    continue;
                };
                let mut w = w.lock();
                if size.is_some() {
                    w.truncated |= size == Some(0);
                    self.ensure_draft(&mut w, pid)?;
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
        })
    }

    /// readlink.
    pub(crate) fn readlink(&self, ino: u64) -> Result<PathBuf> {
        self.timed("readlink", || self.backend.read_link(&self.path(ino)?))
    }

    /// mkdir.
    pub(crate) fn mkdir(&self, parent: u64, name: &str, who: Creator) -> Result<(u64, Attr)> {
        self.timed("mkdir", || {
            let (path, name) = self.child(parent, name)?;
            if self.drafted(parent, &name) {
                return Err(Errno::EEXIST);
            }
            self.backend.make_dir(&path, who)?;
            Ok(self.entry(parent, &name, self.backend.attr(&path)?))
        })
    }

    /// mknod of `mode` (type bits included): only regular files have a place here.
    pub(crate) fn mknod(
        &self,
        parent: u64,
        name: &str,
        mode: u32,
        who: Creator,
    ) -> Result<(u64, Attr)> {
        self.timed("mknod", || {
            // Objects are regular files; fifos, sockets and devices have no place here.
            if mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Errno::EPERM);
            }
            let (path, name) = self.child(parent, name)?;
            if self.drafted(parent, &name) {
                return Err(Errno::EEXIST);
            }
            match self.backend.attr(&path) {
                Ok(_) => return Err(Errno::EEXIST),
                Err(e) if e == Errno::ENOENT => {}
                Err(e) => return Err(e),
            }
            let d = self.backend.draft(&path, false, who)?;
            d.publish(&path)?;
            Ok(self.entry(parent, &name, self.backend.attr(&path)?))
        })
    }

    /// unlink.
    pub(crate) fn unlink(&self, parent: u64, name: &str) -> Result<()> {
        self.timed("unlink", || {
            let (path, name) = self.child(parent, name)?;
            let readers = self.let_go_readers(&path);
            let r = match self.backend.unlink(&path) {
                Ok(()) => Ok(()),
                // A created file not yet published: dropping the name is all there is to do.
                Err(e) if e == Errno::ENOENT => self
                    .nodes
                    .lock()
                    .find(parent, &name)
                    .and_then(|node| self.draft_attr(node))
                    .map(|_| ())
                    .ok_or(e),
                Err(e) => Err(e),
            };
            if r.is_err() {
                self.hold_again(&readers, None);
            }
            r?;
            self.nodes.lock().detach(parent, &name);
            Ok(())
        })
    }

    /// rmdir.
    pub(crate) fn rmdir(&self, parent: u64, name: &str) -> Result<()> {
        self.timed("rmdir", || {
            let (path, name) = self.child(parent, name)?;
            if self.drafted(parent, &name) {
                return Err(Errno::ENOTDIR);
            }
            let dir = self.nodes.lock().find(parent, &name);
            if dir.is_some_and(|d| !self.unpublished_in(d).is_empty()) {
                return Err(Errno::ENOTEMPTY);
            }
            self.backend.remove_dir(&path)?;
            self.nodes.lock().detach(parent, &name);
            Ok(())
        })
    }

    /// symlink.
    pub(crate) fn symlink(
        &self,
        parent: u64,
        name: &str,
        target: &Path,
        who: Creator,
    ) -> Result<(u64, Attr)> {
        self.timed("symlink", || {
            let (path, name) = self.child(parent, name)?;
            if self.drafted(parent, &name) {
                return Err(Errno::EEXIST);
            }
            self.backend.symlink(&path, target, who)?;
            Ok(self.entry(parent, &name, self.backend.attr(&path)?))
        })
    }

    /// rename; `replace` false is RENAME_NOREPLACE.
    pub(crate) fn rename(
        &self,
        parent: u64,
        name: &str,
        newparent: u64,
        newname: &str,
        replace: bool,
    ) -> Result<()> {
        self.timed("rename", || {
            let (from, name) = self.child(parent, name)?;
            let (to, newname) = self.child(newparent, newname)?;
            if (parent, name.as_str()) != (newparent, newname.as_str()) {
                self.check_rename_target(parent, &name, &from, newparent, &newname, &to, replace)?;
            }
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
                    let node = self.nodes.lock().find(parent, &name).ok_or(e);
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
            self.nodes.lock().rename(parent, &name, newparent, &newname);
            Ok(())
        })
    }

    /// What the store cannot see of a rename's target: a file this mount is creating there
    /// (taken, as any file: EEXIST without replace, ENOTDIR for a directory moving over it),
    /// or one inside the directory a directory would replace (ENOTEMPTY).
    #[allow(clippy::too_many_arguments)]
    fn check_rename_target(
        &self,
        parent: u64,
        name: &str,
        from: &str,
        newparent: u64,
        newname: &str,
        to: &str,
        replace: bool,
    ) -> Result<()> {
        let source = match self.backend.attr(from) {
            Ok(a) => Some(a.kind),
            Err(e) if e == Errno::ENOENT => self.drafted(parent, name).then_some(Kind::File),
            Err(e) => return Err(e),
        };
        let Some(source) = source else {
            return Ok(());
        };
        match self.backend.attr(to) {
            Err(e) if e == Errno::ENOENT && self.drafted(newparent, newname) => {
                if !replace {
                    return Err(Errno::EEXIST);
                }
                if source == Kind::Dir {
                    return Err(Errno::ENOTDIR);
                }
            }
            Ok(a) if a.kind == Kind::Dir && source == Kind::Dir && replace => {
                let dir = self.nodes.lock().find(newparent, newname);
                if dir.is_some_and(|d| !self.unpublished_in(d).is_empty()) {
                    return Err(Errno::ENOTEMPTY);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// open with `flags`; `backing` registers a reader's data file for passthrough.
    pub(crate) fn open(
        &self,
        ino: u64,
        flags: i32,
        caller: Caller,
        backing: impl FnOnce(&File) -> std::io::Result<B>,
    ) -> Result<Opened<B>> {
        self.timed("open", || {
            let path = self.path(ino)?;
            if flags & libc::O_ACCMODE == libc::O_RDONLY && flags & libc::O_TRUNC == 0 {
                let reader = self.backend.open_read(&path)?;
                let a = reader.attr();
                let version = (a.share_ino, a.mtime, a.size);
                let how = self.rules.read_path(
                    ino,
                    version,
                    || reader.file().map(backing),
                    caller.pid,
                )?;
                // Pages cached from an earlier open of this very version stay valid: the
                // shared lock now held keeps it from changing until release.
                let role = Role::of(&how);
                let keep = role != Role::DirectReader && self.nodes.lock().cache(ino, version);
                if !keep {
                    self.kernel.forget_attr(ino);
                }
                let (backing, direct) = match how {
                    ReadPath::Passthrough(id) => (Some(id), false),
                    ReadPath::Cached => (None, false),
                    ReadPath::Direct => (None, true),
                };
                let fh = self.add_handle(
                    ino,
                    Handle::Read {
                        node: ino,
                        reader,
                        role,
                        _backing: backing.clone(),
                    },
                );
                return Ok(Opened {
                    fh,
                    direct,
                    keep_cache: keep && backing.is_none(),
                    backing,
                });
            }
            let a = self.attr_of(ino, &path)?;
            if a.kind == Kind::Dir {
                return Err(Errno::EISDIR);
            }
            let who = Creator {
                mode: u32::from(a.perm),
                uid: caller.uid,
                gid: caller.gid,
            };
            let fh = self.open_write(ino, flags, who, caller.pid)?;
            // Reads and writes through this handle must see the current size, and pages
            // cached of this version may now change: the next read open drops them.
            self.nodes.lock().uncache(ino);
            self.kernel.forget_attr(ino);
            Ok(Opened {
                fh,
                direct: WRITES_DIRECT,
                keep_cache: false,
                backing: None,
            })
        })
    }

    /// create (open with O_CREAT): the node, its attributes and the write handle.
    pub(crate) fn create(
        &self,
        parent: u64,
        name: &str,
        flags: i32,
        who: Creator,
        pid: u32,
    ) -> Result<(u64, Attr, Opened<B>)> {
        self.timed("create", || {
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
            let node = self.nodes.lock().lookup(parent, &name);
            // A new file has nothing to copy: its draft starts empty.
            let trunc = if exists {
                flags & libc::O_TRUNC
            } else {
                libc::O_TRUNC
            };
            let fh = match self.open_write(node, (flags & !libc::O_TRUNC) | trunc, who, pid) {
                Ok(r) => r,
                Err(e) => {
                    self.nodes.lock().forget(node, 1);
                    return Err(e);
                }
            };
            if exists {
                self.nodes.lock().uncache(node);
                self.kernel.forget_attr(node);
            }
            let a = match self.attr_of(node, &path) {
                Ok(a) => a,
                Err(e) => {
                    // The kernel never hears of this handle, so it would never release it.
                    self.remove_handle(node, fh);
                    self.nodes.lock().forget(node, 1);
                    return Err(e);
                }
            };
            let opened = Opened {
                fh,
                direct: WRITES_DIRECT,
                keep_cache: false,
                backing: None,
            };
            Ok((node, a, opened))
        })
    }

    /// read into `buf` at `offset`: full unless the file ends first.
    pub(crate) fn read(&self, ino: u64, fh: u64, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.timed("read", || {
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
        })
    }

    /// write `data` at `offset` (at the end for O_APPEND handles).
    pub(crate) fn write(&self, fh: u64, offset: u64, data: &[u8], pid: u32) -> Result<u32> {
        self.timed("write", || {
            let h = self.handle(fh)?;
            let Handle::Write(w, _) = &*h else {
                return Err(Errno::EBADF);
            };
            let mut w = w.lock();
            self.ensure_draft(&mut w, pid)?;
            let append = w.append;
            let Some(d) = w.draft.as_mut() else {
                return Err(Errno::EIO);
            };
            let at = if append { d.len() } else { offset };
            d.write_at(data, at)?;
            Ok(data.len() as u32)
        })
    }

    /// flush (each close of a descriptor): the process's record locks end, and what was
    /// written goes live before close returns.
    pub(crate) fn flush(&self, ino: u64, fh: u64, lock_owner: u64) -> Result<()> {
        self.backend.release_locks(LockOwner {
            node: ino,
            owner: lock_owner,
        });
        self.timed("flush", || match &*self.handle(fh)? {
            Handle::Write(w, _) => self.publish(&mut w.lock()),
            _ => Ok(()),
        })
    }

    /// Whether `fh` is open for writing (its flush, fsync and release publish).
    pub(crate) fn writes(&self, fh: u64) -> bool {
        matches!(self.handle(fh).as_deref(), Ok(Handle::Write(..)))
    }

    /// fsync: what was written goes live.
    pub(crate) fn fsync(&self, fh: u64) -> Result<()> {
        self.timed("fsync", || match &*self.handle(fh)? {
            Handle::Write(w, _) => self.publish(&mut w.lock()),
            _ => Ok(()),
        })
    }

    /// release (the last close of an open file).
    pub(crate) fn release(&self, ino: u64, fh: u64, lock_owner: Option<u64>) -> Result<()> {
        if let Some(o) = lock_owner {
            // flock locks belong to the open file and end with its last close.
            self.backend.release_locks(LockOwner {
                node: ino,
                owner: o,
            });
        }
        self.timed("release", || {
            if let Some(h) = self.remove_handle(ino, fh) {
                if let Handle::Write(w, _) = &*h {
                    // Written through a mapping after the last close: publish it now.
                    self.publish(&mut w.lock())?;
                }
            }
            Ok(())
        })
    }

    /// access: permission bits are the kernel's business (default_permissions); the entry
    /// only needs to exist.
    pub(crate) fn access(&self, ino: u64) -> Result<()> {
        self.timed("access", || self.attr_of(ino, &self.path(ino)?).map(|_| ()))
    }

    /// opendir: the directory's entries as they are now, kept with the handle.
    pub(crate) fn opendir(&self, ino: u64) -> Result<u64> {
        self.timed("opendir", || {
            let mut entries = self.backend.entries(&self.path(ino)?)?;
            // Files this mount is creating are listed here as on any filesystem.
            for name in self.unpublished_in(ino) {
                if !entries.iter().any(|(n, _)| *n == name) {
                    entries.push((name, Kind::File));
                }
            }
            Ok(self.add_handle(ino, Handle::Dir { entries }))
        })
    }

    /// readdir from `offset`: hands `add` each entry (node, kind, name, next offset) until
    /// it answers that the reply is full.
    pub(crate) fn readdir(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, Kind, &str, u64) -> bool,
    ) -> Result<()> {
        let h = self.handle(fh)?;
        let Handle::Dir { entries } = &*h else {
            return Err(Errno::EBADF);
        };
        let parent = self.nodes.lock().parent(ino);
        let dots = [(ino, Kind::Dir, "."), (parent, Kind::Dir, "..")];
        let all = dots.into_iter().chain(entries.iter().map(|(name, kind)| {
            // Any stable, non-zero number will do: the kernel asks lookup for the real one.
            let known = self.nodes.lock().find(ino, name);
            let id = known.unwrap_or_else(|| pseudo_ino(ino, name));
            (id, *kind, name.as_str())
        }));
        for (i, (id, kind, name)) in all.enumerate().skip(offset as usize) {
            if add(id, kind, name, i as u64 + 1) {
                break;
            }
        }
        Ok(())
    }

    /// releasedir.
    pub(crate) fn releasedir(&self, ino: u64, fh: u64) {
        self.remove_handle(ino, fh);
    }

    /// statfs.
    pub(crate) fn statfs(&self) -> Result<StatFs> {
        self.timed("statfs", || self.backend.statfs())
    }

    /// getlk: the lock that conflicts with `lock`, if any.
    pub(crate) fn getlk(
        &self,
        ino: u64,
        lock_owner: u64,
        lock: RangeLock,
    ) -> Result<Option<RangeLock>> {
        self.timed("getlk", || {
            let owner = LockOwner {
                node: ino,
                owner: lock_owner,
            };
            self.backend.test_lock(&self.path(ino)?, owner, lock)
        })
    }

    /// setlk/setlkw: the request, to run where waiting does not hold up a request thread.
    pub(crate) fn setlk(
        &self,
        ino: u64,
        lock_owner: u64,
        lock: RangeLock,
        sleep: bool,
        pid: u32,
    ) -> Result<LockRequest> {
        Ok(LockRequest {
            backend: self.backend.clone(),
            path: self.path(ino)?,
            owner: LockOwner {
                node: ino,
                owner: lock_owner,
            },
            lock,
            waits: sleep && lock.kind != LockType::Unlock,
            pid,
        })
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

/// A stable number for a directory entry the kernel has not looked up yet.
fn pseudo_ino(parent: u64, name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (parent, name).hash(&mut h);
    // The top bit keeps them apart from the table's sequential ids.
    h.finish() | (1 << 63)
}
