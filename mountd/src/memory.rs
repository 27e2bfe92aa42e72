//! An in-memory backend with the store's POSIX rules (files only inside buckets, drafts
//! invisible until published, a reader keeps the version it opened), for driving the core
//! without a kernel or a share. It takes no locks: nothing else shares its tree.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use crate::backend::{
    Attr, AttrChange, Backend, Creator, Draft, Errno, Kind, LockOwner, RangeLock, Reader, Result,
    StatFs, Time,
};

#[derive(Debug, Clone)]
enum Node {
    File { bytes: Arc<Vec<u8>>, meta: Meta },
    Dir { meta: Meta },
    Symlink { target: PathBuf, meta: Meta },
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    ino: u64,
    perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
}

impl Node {
    fn meta(&self) -> &Meta {
        match self {
            Node::File { meta, .. } | Node::Dir { meta } | Node::Symlink { meta, .. } => meta,
        }
    }

    fn meta_mut(&mut self) -> &mut Meta {
        match self {
            Node::File { meta, .. } | Node::Dir { meta } | Node::Symlink { meta, .. } => meta,
        }
    }

    fn attr(&self) -> Attr {
        let m = self.meta();
        let (kind, size) = match self {
            Node::File { bytes, .. } => (Kind::File, bytes.len() as u64),
            Node::Dir { .. } => (Kind::Dir, 0),
            Node::Symlink { target, .. } => (Kind::Symlink, target.as_os_str().len() as u64),
        };
        Attr {
            kind,
            size,
            blocks: size.div_ceil(512),
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.mtime,
            perm: m.perm,
            nlink: 1,
            uid: m.uid,
            gid: m.gid,
            share_ino: m.ino,
        }
    }
}

#[derive(Debug, Default)]
struct Tree {
    /// Every entry but the root, by path.
    nodes: BTreeMap<String, Node>,
    next_ino: u64,
}

impl Tree {
    fn meta(&mut self, mode: u32, uid: u32, gid: u32) -> Meta {
        self.next_ino += 1;
        Meta {
            ino: self.next_ino,
            perm: (mode & 0o7777) as u16,
            uid,
            gid,
            atime: SystemTime::now(),
            mtime: SystemTime::now(),
        }
    }

    fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || matches!(self.nodes.get(path), Some(Node::Dir { .. }))
    }

    fn children<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let start = prefix.clone();
        self.nodes
            .range(start..)
            .take_while({
                let prefix = prefix.clone();
                move |(k, _)| k.starts_with(&prefix)
            })
            .filter_map(move |(k, n)| {
                let rest = &k[prefix.len()..];
                (!rest.contains('/')).then_some((rest, n))
            })
    }

    /// The parent of `path` must be a directory; files only below a bucket.
    fn check_new(&self, path: &str, file: bool) -> Result<()> {
        let (parent, _) = split(path);
        if !self.is_dir(parent) {
            return Err(Errno::ENOENT);
        }
        if file && parent.is_empty() {
            return Err(Errno::EPERM);
        }
        Ok(())
    }
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

fn at(t: Time) -> SystemTime {
    match t {
        Time::At(t) => t,
        Time::Now => SystemTime::now(),
    }
}

/// The in-memory store.
#[derive(Debug)]
pub(crate) struct MemoryBackend {
    tree: Arc<Mutex<Tree>>,
    timeout: Duration,
}

impl MemoryBackend {
    /// An empty tree whose waits last at most `timeout`.
    pub(crate) fn new(timeout: Duration) -> MemoryBackend {
        MemoryBackend {
            tree: Arc::new(Mutex::new(Tree::default())),
            timeout,
        }
    }
}

struct MemoryReader {
    bytes: Arc<Vec<u8>>,
    attr: Attr,
}

impl Reader for MemoryReader {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let from = (offset as usize).min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - from);
        buf[..n].copy_from_slice(&self.bytes[from..from + n]);
        Ok(n)
    }

    fn attr(&self) -> Attr {
        self.attr
    }

    fn file(&self) -> Option<&File> {
        None
    }

    fn let_go(&self) {}

    fn hold_again(&self, _path: &str) {}
}

struct MemoryDraft {
    tree: Arc<Mutex<Tree>>,
    bytes: Vec<u8>,
    meta: Meta,
}

impl Draft for MemoryDraft {
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let end = offset as usize + buf.len();
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[offset as usize..end].copy_from_slice(buf);
        self.meta.mtime = SystemTime::now();
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let from = (offset as usize).min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - from);
        buf[..n].copy_from_slice(&self.bytes[from..from + n]);
        Ok(n)
    }

    fn set_len(&mut self, len: u64) -> Result<()> {
        self.bytes.resize(len as usize, 0);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn set_attr(&mut self, change: AttrChange) -> Result<()> {
        apply(&mut self.meta, change);
        Ok(())
    }

    fn attr(&self) -> Result<Attr> {
        Ok(Node::File {
            bytes: Arc::new(Vec::new()),
            meta: self.meta,
        }
        .attr())
        .map(|a| Attr {
            size: self.len(),
            blocks: self.len().div_ceil(512),
            ..a
        })
    }

    fn publish(self: Box<Self>, path: &str) -> Result<()> {
        let mut tree = self.tree.lock();
        tree.check_new(path, true)?;
        if tree.is_dir(path) {
            return Err(Errno::EISDIR);
        }
        let mut meta = self.meta;
        tree.next_ino += 1;
        meta.ino = tree.next_ino;
        let bytes = Arc::new(self.bytes);
        tree.nodes
            .insert(path.to_string(), Node::File { bytes, meta });
        Ok(())
    }
}

fn apply(m: &mut Meta, change: AttrChange) {
    if let Some(mode) = change.mode {
        m.perm = (mode & 0o7777) as u16;
    }
    if let Some(uid) = change.uid {
        m.uid = uid;
    }
    if let Some(gid) = change.gid {
        m.gid = gid;
    }
    if let Some(t) = change.atime {
        m.atime = at(t);
    }
    if let Some(t) = change.mtime {
        m.mtime = at(t);
    }
}

impl Backend for MemoryBackend {
    fn attr(&self, path: &str) -> Result<Attr> {
        let tree = self.tree.lock();
        if path.is_empty() {
            return Ok(Node::Dir {
                meta: Meta {
                    ino: 1,
                    perm: 0o755,
                    uid: 0,
                    gid: 0,
                    atime: SystemTime::UNIX_EPOCH,
                    mtime: SystemTime::UNIX_EPOCH,
                },
            }
            .attr());
        }
        tree.nodes.get(path).map(Node::attr).ok_or(Errno::ENOENT)
    }

    fn entries(&self, path: &str) -> Result<Vec<(String, Kind)>> {
        let tree = self.tree.lock();
        if !tree.is_dir(path) {
            return Err(if tree.nodes.contains_key(path) {
                Errno::ENOTDIR
            } else {
                Errno::ENOENT
            });
        }
        Ok(tree
            .children(path)
            .map(|(name, n)| (name.to_string(), n.attr().kind))
            .collect())
    }

    fn open_read(&self, path: &str) -> Result<Box<dyn Reader>> {
        let tree = self.tree.lock();
        match tree.nodes.get(path) {
            Some(n @ Node::File { bytes, .. }) => Ok(Box::new(MemoryReader {
                bytes: bytes.clone(),
                attr: n.attr(),
            })),
            Some(Node::Dir { .. }) => Err(Errno::EISDIR),
            Some(Node::Symlink { .. }) => Err(Errno::EINVAL),
            None if path.is_empty() => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn draft(&self, path: &str, keep: bool, who: Creator) -> Result<Box<dyn Draft>> {
        let mut tree = self.tree.lock();
        tree.check_new(path, true)?;
        let (bytes, meta) = match tree.nodes.get(path) {
            Some(Node::File { bytes, meta }) => {
                let b = if keep { bytes.to_vec() } else { Vec::new() };
                (b, *meta)
            }
            Some(Node::Dir { .. }) => return Err(Errno::EISDIR),
            Some(Node::Symlink { .. }) => return Err(Errno::EINVAL),
            None => (Vec::new(), tree.meta(who.mode, who.uid, who.gid)),
        };
        Ok(Box::new(MemoryDraft {
            tree: self.tree.clone(),
            bytes,
            meta,
        }))
    }

    fn make_dir(&self, path: &str, who: Creator) -> Result<()> {
        let mut tree = self.tree.lock();
        tree.check_new(path, false)?;
        if tree.nodes.contains_key(path) {
            return Err(Errno::EEXIST);
        }
        let meta = tree.meta(who.mode, who.uid, who.gid);
        tree.nodes.insert(path.to_string(), Node::Dir { meta });
        Ok(())
    }

    fn remove_dir(&self, path: &str) -> Result<()> {
        let mut tree = self.tree.lock();
        match tree.nodes.get(path) {
            Some(Node::Dir { .. }) => {}
            Some(_) => return Err(Errno::ENOTDIR),
            None => return Err(Errno::ENOENT),
        }
        if tree.children(path).next().is_some() {
            return Err(Errno::ENOTEMPTY);
        }
        tree.nodes.remove(path);
        Ok(())
    }

    fn unlink(&self, path: &str) -> Result<()> {
        let mut tree = self.tree.lock();
        match tree.nodes.get(path) {
            Some(Node::Dir { .. }) => Err(Errno::EISDIR),
            Some(_) => {
                tree.nodes.remove(path);
                Ok(())
            }
            None => Err(Errno::ENOENT),
        }
    }

    fn rename(&self, from: &str, to: &str, replace: bool) -> Result<()> {
        let mut tree = self.tree.lock();
        let Some(source) = tree.nodes.get(from).cloned() else {
            return Err(Errno::ENOENT);
        };
        let dir = matches!(source, Node::Dir { .. });
        tree.check_new(to, !dir)?;
        if to.starts_with(&format!("{from}/")) {
            return Err(Errno::EINVAL);
        }
        if from == to {
            return Ok(());
        }
        match tree.nodes.get(to) {
            None => {}
            Some(_) if !replace => return Err(Errno::EEXIST),
            Some(Node::Dir { .. }) if !dir => return Err(Errno::EISDIR),
            Some(Node::Dir { .. }) if tree.children(to).next().is_some() => {
                return Err(Errno::ENOTEMPTY)
            }
            Some(Node::Dir { .. }) => {}
            Some(_) if dir => return Err(Errno::ENOTDIR),
            Some(_) => {}
        }
        let below = format!("{from}/");
        let moving: Vec<String> = tree
            .nodes
            .keys()
            .filter(|k| *k == from || k.starts_with(&below))
            .cloned()
            .collect();
        tree.nodes.remove(to);
        for k in moving {
            if let Some(n) = tree.nodes.remove(&k) {
                tree.nodes.insert(format!("{to}{}", &k[from.len()..]), n);
            }
        }
        Ok(())
    }

    fn symlink(&self, path: &str, target: &Path, who: Creator) -> Result<()> {
        let mut tree = self.tree.lock();
        tree.check_new(path, true)?;
        if tree.nodes.contains_key(path) {
            return Err(Errno::EEXIST);
        }
        let meta = tree.meta(0o777, who.uid, who.gid);
        let target = target.to_path_buf();
        tree.nodes
            .insert(path.to_string(), Node::Symlink { target, meta });
        Ok(())
    }

    fn read_link(&self, path: &str) -> Result<PathBuf> {
        match self.tree.lock().nodes.get(path) {
            Some(Node::Symlink { target, .. }) => Ok(target.clone()),
            Some(_) => Err(Errno::EINVAL),
            None => Err(Errno::ENOENT),
        }
    }

    fn set_attr(&self, path: &str, change: AttrChange) -> Result<()> {
        let mut tree = self.tree.lock();
        let n = tree.nodes.get_mut(path).ok_or(Errno::ENOENT)?;
        apply(n.meta_mut(), change);
        Ok(())
    }

    fn statfs(&self) -> Result<StatFs> {
        let files = self.tree.lock().nodes.len() as u64;
        Ok(StatFs {
            blocks: 1 << 20,
            free: 1 << 19,
            available: 1 << 19,
            files: files + 1000,
            files_free: 1000,
            block_size: 4096,
            name_max: 255,
        })
    }

    fn lock(
        &self,
        _path: &str,
        _owner: LockOwner,
        _lock: RangeLock,
        _until: Option<Instant>,
    ) -> Result<()> {
        // Tool locks go to the share; a tree nobody else sees has none to offer, and answers
        // as a share that cannot carry them does.
        Err(Errno::ENOLCK)
    }

    fn test_lock(
        &self,
        _path: &str,
        _owner: LockOwner,
        _lock: RangeLock,
    ) -> Result<Option<RangeLock>> {
        Err(Errno::ENOLCK)
    }

    fn release_locks(&self, _owner: LockOwner) {}

    fn lock_timeout(&self) -> Duration {
        self.timeout
    }
}
