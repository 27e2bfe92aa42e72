//! The store seen as a POSIX tree, for the FUSE front: buckets are the top-level
//! directories, keys the paths below them. Files keep the object discipline (shared lock for
//! reads, staged drafts published atomically under the exclusive lock, renames under both
//! objects' locks); directories and symlinks are plain entries of the share.
//!
//! Paths are `bucket/dir/name` strings ("" is the share root). What S3 hides stays hidden
//! here: `.minio.sys`, `.nfs*` files, names no key can have, and symlinks that would lead out
//! of the tree.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use crate::lock::ranges::Owner;
use crate::lock::{Create, LockError, WriteGuard};
use crate::platform::{self, Attr, FileKind, FsStats, Holder, LockKind, OpenMode, Range, SetTime};

use super::behind::{Staging, WriteBehind};
use super::links::LinkKey;
use super::meta::user_and_standard;
use super::meta::{self, Stamp};
use super::object::{is_not_found, read_record, Prune, RETRIES};
use super::temp::Hashing;
use super::temp::TempFile;
use super::{io, layout, ObjectInfo, ReadConditions, Result, Store, StoreError};

/// Most entries a directory rename moves under locks; beyond it the rename is refused with
/// `Refusal::TooLarge` (EXDEV), which makes `mv` copy and delete instead.
pub const RENAME_LIMIT: usize = 10_000;

/// What kind of entry a path names in the POSIX view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// An object.
    File,
    /// A bucket or a directory of keys.
    Dir,
    /// A symbolic link that stays inside the tree.
    Symlink,
}

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirItem {
    /// The name.
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
}

/// Why the POSIX view refuses an operation S3 never asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The target exists.
    Exists,
    /// The directory is not empty.
    NotEmpty,
    /// A directory where a file is needed.
    IsDir,
    /// A file where a directory is needed.
    NotDir,
    /// Too much to do atomically (a directory rename beyond `RENAME_LIMIT`, a bucket rename).
    TooLarge,
    /// Not allowed here (a symlink leading out of the tree, a file at the top level).
    NotPermitted,
    /// Not meaningful (moving a directory into itself).
    Invalid,
}

/// Attribute changes asked for by `chmod`, `chown` and `touch`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttrChange {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

/// Who creates an entry: permission bits (umask applied) and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creator {
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

enum Place<'p> {
    Root,
    Bucket(&'p str),
    Key(&'p str, &'p str),
}

fn place(path: &str) -> Place<'_> {
    if path.is_empty() {
        return Place::Root;
    }
    match path.split_once('/') {
        None => Place::Bucket(path),
        Some((b, k)) => Place::Key(b, k),
    }
}

fn refused(reason: Refusal, why: &'static str) -> StoreError {
    StoreError::Refused { reason, why }
}

/// Whether symlink `target`, stored at `bucket/key`, resolves (lexically) to a place inside
/// the tree: another key of some bucket, never above the share or into the internal area.
fn link_stays_inside(bucket: &str, key: &str, target: &Path) -> bool {
    if target.as_os_str().is_empty() || target.is_absolute() {
        return false;
    }
    let mut at: Vec<String> = std::iter::once(bucket.to_string())
        .chain(key.split('/').map(str::to_string))
        .collect();
    at.pop();
    for c in target.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if at.pop().is_none() {
                    return false;
                }
            }
            Component::Normal(n) => match n.to_str() {
                Some(n) if !layout::is_hidden(n) => at.push(n.to_string()),
                _ => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    match at.first() {
        Some(b) => layout::check_bucket(b).is_ok(),
        None => true,
    }
}

impl Store {
    /// Attributes of the entry at `path`, without following a final symlink.
    pub fn attr(&self, path: &str) -> Result<(EntryKind, Attr)> {
        let (rel, bucket, key) = match place(path) {
            Place::Root => {
                let a = self
                    .root
                    .attr(Path::new(""))
                    .map_err(StoreError::io("stat", Path::new("")))?;
                return Ok((EntryKind::Dir, a));
            }
            Place::Bucket(b) => {
                layout::check_bucket(b).map_err(|_| StoreError::NoSuchBucket(b.into()))?;
                (PathBuf::from(b), b, None)
            }
            Place::Key(b, k) => {
                layout::check_bucket(b).map_err(|_| StoreError::NoSuchBucket(b.into()))?;
                if k.split('/').any(layout::is_hidden) {
                    // Hidden names are absent here, as in a listing; creating one is refused.
                    return Err(StoreError::NoSuchKey {
                        bucket: b.into(),
                        key: k.into(),
                    });
                }
                layout::check_key(k)?;
                (layout::data(b, k), b, Some(k))
            }
        };
        let missing = || match key {
            None => StoreError::NoSuchBucket(bucket.into()),
            Some(k) => StoreError::NoSuchKey {
                bucket: bucket.into(),
                key: k.into(),
            },
        };
        let a = match self.root.attr(&rel) {
            Ok(a) => a,
            Err(e) if is_not_found(&e) || e.kind() == ErrorKind::NotADirectory => {
                return Err(missing())
            }
            Err(e) => return Err(StoreError::io("stat", &rel)(e)),
        };
        let kind = match (a.stat.kind, a.symlink, key) {
            (FileKind::Dir, _, _) => EntryKind::Dir,
            (FileKind::File, _, Some(_)) => EntryKind::File,
            (_, true, Some(k)) => {
                let known = LinkKey::of(path, &a);
                if !self.links.lock().known_inside(&known) {
                    let target = self
                        .root
                        .read_link(&rel)
                        .map_err(StoreError::io("readlink", &rel))?;
                    if !link_stays_inside(bucket, k, &target) {
                        return Err(missing());
                    }
                    self.links.lock().remember(known);
                }
                EntryKind::Symlink
            }
            _ => return Err(missing()),
        };
        Ok((kind, a))
    }

    /// The visible names in directory `path` (the buckets for "").
    pub fn entries(&self, path: &str) -> Result<Vec<DirItem>> {
        if let Place::Root = place(path) {
            return Ok(self
                .list_buckets()?
                .into_iter()
                .map(|b| DirItem {
                    name: b.name,
                    kind: EntryKind::Dir,
                })
                .collect());
        }
        let (_, a) = self.attr(path)?;
        if a.stat.kind != FileKind::Dir {
            return Err(refused(Refusal::NotDir, "not a directory"));
        }
        let rel = PathBuf::from(path);
        let listed = self
            .root
            .read_dir(&rel)
            .map_err(StoreError::io("list", &rel))?;
        let mut out = Vec::with_capacity(listed.len());
        for e in listed {
            let Some(name) = e.name.to_str() else {
                continue;
            };
            if layout::is_hidden(name) || name.len() > layout::MAX_NAME_LEN {
                continue;
            }
            let kind = match e.kind {
                Some(FileKind::File) => EntryKind::File,
                Some(FileKind::Dir) => EntryKind::Dir,
                // Symlinks (and unknown types) need a closer look: only links that stay
                // inside are shown.
                _ => match self.attr(&format!("{path}/{name}")) {
                    Ok((k, _)) => k,
                    Err(_) => continue,
                },
            };
            out.push(DirItem {
                name: name.to_string(),
                kind,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates directory `path`: a bucket at the top level, a plain directory below.
    pub fn make_dir(&self, path: &str, who: Creator) -> Result<()> {
        let rel = match place(path) {
            Place::Root => return Err(refused(Refusal::Exists, "the root exists")),
            Place::Bucket(b) => {
                self.create_bucket(b)?;
                PathBuf::from(b)
            }
            Place::Key(b, k) => {
                layout::check_key(k)?;
                self.head_bucket(b)?;
                let rel = layout::data(b, k);
                self.root
                    .create_dir(&rel)
                    .map_err(StoreError::io("mkdir", &rel))?;
                rel
            }
        };
        self.apply_creator(&rel, who);
        Ok(())
    }

    fn apply_creator(&self, rel: &Path, who: Creator) {
        // Best effort: an unprivileged nasgate cannot give files away, and the entry exists.
        let _ = self.root.set_mode(rel, who.mode);
        let _ = self.root.set_owner(rel, Some(who.uid), Some(who.gid));
    }

    /// Removes the empty directory `path` (a bucket at the top level).
    pub fn remove_dir(&self, path: &str) -> Result<()> {
        match place(path) {
            Place::Root => Err(refused(Refusal::NotPermitted, "the root cannot be removed")),
            Place::Bucket(b) => self.delete_bucket(b),
            Place::Key(b, k) => {
                layout::check_key(k)?;
                let rel = layout::data(b, k);
                self.root
                    .remove_dir(&rel)
                    .map_err(StoreError::io("rmdir", &rel))?;
                // Metadata of objects once below it, if any was orphaned there.
                self.prune(&layout::bucket_meta(b).join(k), &layout::bucket_meta(b));
                Ok(())
            }
        }
    }

    /// Removes the file or symlink at `path`; its directory stays.
    pub fn unlink(&self, path: &str) -> Result<()> {
        let Place::Key(b, k) = place(path) else {
            return Err(refused(Refusal::IsDir, "buckets are directories"));
        };
        match self.attr(path)? {
            (EntryKind::Dir, _) => Err(refused(Refusal::IsDir, "a directory")),
            (EntryKind::Symlink, _) => {
                let rel = layout::data(b, k);
                self.root
                    .remove_file(&rel)
                    .map_err(StoreError::io("unlink", &rel))
            }
            (EntryKind::File, _) => self.remove_object(b, k, Prune::No),
        }
    }

    /// Creates a symlink at `path` pointing at `target`, which must stay inside the tree.
    pub fn symlink(&self, path: &str, target: &Path, who: Creator) -> Result<()> {
        let Place::Key(b, k) = place(path) else {
            return Err(refused(
                Refusal::NotPermitted,
                "symlinks live inside buckets",
            ));
        };
        layout::check_key(k)?;
        self.head_bucket(b)?;
        if !link_stays_inside(b, k, target) {
            return Err(refused(
                Refusal::NotPermitted,
                "a symlink must point at a relative path inside the mount",
            ));
        }
        let rel = layout::data(b, k);
        self.root
            .symlink(target, &rel)
            .map_err(StoreError::io("symlink", &rel))?;
        let _ = self.root.set_owner(&rel, Some(who.uid), Some(who.gid));
        Ok(())
    }

    /// The target of the symlink at `path`.
    pub fn read_link(&self, path: &str) -> Result<PathBuf> {
        match (self.attr(path)?, place(path)) {
            ((EntryKind::Symlink, _), Place::Key(b, k)) => {
                let rel = layout::data(b, k);
                let target = self
                    .root
                    .read_link(&rel)
                    .map_err(StoreError::io("readlink", &rel))?;
                // The lookup may have trusted a remembered verdict; what leaves here is checked.
                if !link_stays_inside(b, k, &target) {
                    return Err(StoreError::NoSuchKey {
                        bucket: b.into(),
                        key: k.into(),
                    });
                }
                Ok(target)
            }
            _ => Err(refused(Refusal::Invalid, "not a symlink")),
        }
    }

    /// Changes mode, owner or times of `path`. For an object this happens under its
    /// exclusive lock, and a metadata record that described the data keeps describing it
    /// (the bytes did not change, so the ETag stays).
    pub fn set_attr(&self, path: &str, change: AttrChange) -> Result<()> {
        let rel = match place(path) {
            Place::Root => PathBuf::new(),
            Place::Bucket(b) => PathBuf::from(b),
            Place::Key(b, k) => layout::data(b, k),
        };
        let (kind, was) = self.attr(path)?;
        let apply = || -> Result<()> {
            let err = |e| StoreError::io("setattr", &rel)(e);
            let times = change.atime.is_some() || change.mtime.is_some();
            if kind != EntryKind::Symlink {
                if let Some(m) = change.mode {
                    self.root.set_mode(&rel, m).map_err(&err)?;
                }
                if times {
                    self.root
                        .set_times(&rel, change.atime, change.mtime)
                        .map_err(&err)?;
                }
            } else if times {
                // utimensat(AT_SYMLINK_NOFOLLOW) through the mount reaches us for the link.
                self.root
                    .set_link_times(&rel, change.atime, change.mtime)
                    .map_err(&err)?;
            }
            if change.uid.is_some() || change.gid.is_some() {
                self.root
                    .set_owner(&rel, change.uid, change.gid)
                    .map_err(&err)?;
            }
            if kind == EntryKind::Symlink {
                // The change moved the link's ctime; carry the verdict over to the same inode
                // so the lookup that follows does not read the link and undo its access time.
                if let Ok(now) = self.root.attr(&rel) {
                    if now.symlink && now.stat.id.same_file(&was.stat.id) {
                        self.links.lock().remember(LinkKey::of(path, &now));
                    }
                }
            }
            Ok(())
        };
        let Place::Key(b, k) = place(path) else {
            return apply();
        };
        // Mode and owner are no part of the record's stamp (inode, size, mtime): they need no
        // lock, so a tool may fchmod a file it holds open for reading (rsync does).
        if kind != EntryKind::File || (change.atime.is_none() && change.mtime.is_none()) {
            return apply();
        }
        let guard = self.lock_object(b, k)?;
        let meta_rel = layout::meta(b, k);
        let before = self.root.stat(&rel).map_err(StoreError::io("stat", &rel))?;
        let record = read_record(guard.file(), &meta_rel);
        apply()?;
        let after = self.root.stat(&rel).map_err(StoreError::io("stat", &rel))?;
        if let Some(mut record) = record {
            if after != before && record.matches_data(&before) {
                if let Some(old) = record.nasgate.take() {
                    let mut stamp = Stamp::of(&after);
                    stamp.checksums = old.checksums;
                    record.nasgate = Some(stamp);
                    self.replace_record(&guard, &meta_rel, &record)?;
                }
            }
        }
        Ok(())
    }

    /// The object's exclusive lock, creating its lock file if needed.
    fn lock_object(&self, bucket: &str, key: &str) -> Result<WriteGuard> {
        let meta_rel = layout::meta(bucket, key);
        let meta_dir = layout::meta_dir(bucket, key);
        for _ in 0..RETRIES {
            self.make_dirs(&meta_dir)
                .map_err(StoreError::io("create", &meta_dir))?;
            match self.locks.write(&meta_rel, Create::Yes) {
                Ok(g) => return Ok(g),
                Err(LockError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Busy(LockError::Timeout {
            path: meta_rel,
            what: "lock file",
            kind: LockKind::Exclusive,
        }))
    }

    /// Renames `from` to `to`. A file moves with its metadata under both objects' exclusive
    /// locks and atomically replaces an existing file (unless `replace` is false); a
    /// directory moves with everything below it, under the locks of all its objects.
    pub fn rename(&self, from: &str, to: &str, replace: bool) -> Result<()> {
        let (Place::Key(sb, sk), Place::Key(db, dk)) = (place(from), place(to)) else {
            return Err(refused(
                Refusal::TooLarge,
                "buckets are renamed by copying (mv does this by itself)",
            ));
        };
        layout::check_key(dk)?;
        self.head_bucket(db)?;
        if from == to {
            return Ok(());
        }
        let (kind, _) = self.attr(from)?;
        let target = match self.attr(to) {
            Ok((k, _)) => Some(k),
            Err(StoreError::NoSuchKey { .. }) => None,
            Err(e) => return Err(e),
        };
        if target.is_some() && !replace {
            return Err(refused(Refusal::Exists, "the target exists"));
        }
        match (kind, target) {
            (EntryKind::Dir, Some(EntryKind::File | EntryKind::Symlink)) => {
                return Err(refused(Refusal::NotDir, "the target is not a directory"))
            }
            (EntryKind::File | EntryKind::Symlink, Some(EntryKind::Dir)) => {
                return Err(refused(Refusal::IsDir, "the target is a directory"))
            }
            _ => {}
        }
        let (src, dst) = (layout::data(sb, sk), layout::data(db, dk));
        match kind {
            EntryKind::Symlink => self
                .root
                .rename(&src, &dst)
                .map_err(StoreError::io("rename", &src)),
            EntryKind::File => self.rename_object(sb, sk, db, dk),
            EntryKind::Dir => {
                if to.starts_with(&format!("{from}/")) {
                    return Err(refused(
                        Refusal::Invalid,
                        "a directory cannot move into itself",
                    ));
                }
                self.rename_tree(sb, sk, db, dk)
            }
        }
    }

    fn rename_object(&self, sb: &str, sk: &str, db: &str, dk: &str) -> Result<()> {
        let (src, dst) = (layout::data(sb, sk), layout::data(db, dk));
        let (src_meta, dst_meta) = (layout::meta(sb, sk), layout::meta(db, dk));
        // One order for every pair, so two opposite renames cannot each hold one lock.
        let (first, second) = if src_meta <= dst_meta {
            ((sb, sk), (db, dk))
        } else {
            ((db, dk), (sb, sk))
        };
        let g1 = self.lock_object(first.0, first.1)?;
        let g2 = self.lock_object(second.0, second.1)?;
        match self.root.stat(&src) {
            Ok(st) if st.kind == FileKind::File => {}
            Ok(_) => return Err(refused(Refusal::IsDir, "the source is no longer a file")),
            Err(e) if is_not_found(&e) => {
                return Err(StoreError::NoSuchKey {
                    bucket: sb.into(),
                    key: sk.into(),
                })
            }
            Err(e) => return Err(StoreError::io("stat", &src)(e)),
        }
        if let Some(parent) = dst.parent() {
            self.make_dirs(parent)
                .map_err(StoreError::io("create", parent))?;
        }
        self.root
            .rename(&src, &dst)
            .map_err(StoreError::io("rename", &src))?;
        super::crash_point("rename.data-moved");
        // The source's record goes with its data (rename keeps the inode, so its stamp still
        // matches); it replaces the target's lock file, so anyone waiting there looks again.
        self.follow_data(&src, &dst, &src_meta, &dst_meta)?;
        drop((g1, g2));
        self.prune(&layout::meta_dir(sb, sk), &layout::bucket_meta(sb));
        Ok(())
    }

    /// After data moved from `src` to `dst`: moves its metadata (a record or a tree of them)
    /// from `src_meta` to `dst_meta`, then makes both moves durable.
    fn follow_data(&self, src: &Path, dst: &Path, src_meta: &Path, dst_meta: &Path) -> Result<()> {
        match self.root.rename(src_meta, dst_meta) {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(StoreError::io("rename", src_meta)(e)),
        }
        if self.durable() {
            for rel in [src.parent(), dst.parent(), dst_meta.parent()]
                .into_iter()
                .flatten()
            {
                self.root
                    .sync_dir(rel)
                    .map_err(StoreError::io("fsync", rel))?;
            }
        }
        Ok(())
    }

    /// The object keys below directory `dir` of `bucket`, at most `limit` entries in all.
    fn keys_below(&self, bucket: &str, dir: &str, limit: usize) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut todo = vec![dir.to_string()];
        let mut seen = 0usize;
        while let Some(d) = todo.pop() {
            let rel = layout::data(bucket, &d);
            for e in self
                .root
                .read_dir(&rel)
                .map_err(StoreError::io("list", &rel))?
            {
                seen += 1;
                if seen > limit {
                    return Err(refused(
                        Refusal::TooLarge,
                        "too many entries to rename under locks",
                    ));
                }
                let Some(name) = e.name.to_str() else {
                    continue;
                };
                let child = format!("{d}/{name}");
                let kind = match e.kind {
                    Some(k) => k,
                    None => match self.root.stat(&layout::data(bucket, &child)) {
                        Ok(st) => st.kind,
                        Err(_) => continue,
                    },
                };
                match kind {
                    FileKind::Dir => todo.push(child),
                    FileKind::File if !layout::is_hidden(name) => keys.push(child),
                    _ => {}
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn rename_tree(&self, sb: &str, sk: &str, db: &str, dk: &str) -> Result<()> {
        let keys = self.keys_below(sb, sk, RENAME_LIMIT)?;
        let mut guards = Vec::with_capacity(keys.len());
        for k in &keys {
            guards.push(self.lock_object(sb, k)?);
        }
        let (src, dst) = (layout::data(sb, sk), layout::data(db, dk));
        self.root.rename(&src, &dst).map_err(|e| match e.kind() {
            ErrorKind::DirectoryNotEmpty => refused(Refusal::NotEmpty, "the target is not empty"),
            _ => StoreError::io("rename", &src)(e),
        })?;
        super::crash_point("rename.tree-moved");
        let (src_meta, dst_meta) = (
            layout::bucket_meta(sb).join(sk),
            layout::bucket_meta(db).join(dk),
        );
        if let Some(parent) = dst_meta.parent() {
            self.make_dirs(parent)
                .map_err(StoreError::io("create", parent))?;
        }
        // Whatever sits at the target's metadata path describes nothing (the target was
        // absent or an empty directory), so it gives way.
        self.remove_tree(&dst_meta)?;
        self.follow_data(&src, &dst, &src_meta, &dst_meta)?;
        drop(guards);
        Ok(())
    }

    /// Capacity of the filesystem holding the share.
    pub fn fs_stats(&self) -> Result<FsStats> {
        self.root
            .fs_stats()
            .map_err(StoreError::io("statfs", Path::new("")))
    }

    /// Starts a draft of the object at `path`: a staging file holding its current bytes
    /// (`keep`) or none, published only by `Draft::publish`. A new object gets `who`'s mode
    /// and owner; an existing one keeps its own, and its metadata.
    pub fn draft(&self, path: &str, keep: bool, who: Creator) -> Result<Draft> {
        let Place::Key(b, k) = place(path) else {
            return Err(refused(
                Refusal::NotPermitted,
                "files live inside buckets, not at the top level",
            ));
        };
        self.check_names(b, k)?;
        let temp = TempFile::create(self)?;
        let mut len = 0;
        let meta = match self.open_object(b, k, &ReadConditions::default(), false) {
            Ok(reader) => {
                let data = reader
                    .file()
                    .ok_or_else(|| refused(Refusal::IsDir, "a directory"))?;
                if keep {
                    len = io::copy(data, 0, reader.info().size, temp.file())
                        .map_err(StoreError::io("copy", temp.path()))?;
                }
                if let Ok(a) = platform::attr_file(data) {
                    let _ = platform::set_file_mode(temp.file(), a.mode);
                    let _ = platform::set_file_owner(temp.file(), Some(a.uid), Some(a.gid));
                }
                user_and_standard(&reader.info().meta)
            }
            Err(StoreError::NoSuchKey { .. }) => {
                let _ = platform::set_file_mode(temp.file(), who.mode);
                let _ = platform::set_file_owner(temp.file(), Some(who.uid), Some(who.gid));
                BTreeMap::from([(
                    "content-type".to_string(),
                    meta::content_type_for(k).to_string(),
                )])
            }
            Err(e) => return Err(e),
        };
        Ok(Draft {
            file: WriteBehind::new(Staging {
                temp,
                hashing: Hashing::new(&[]),
                unhashed: false,
                hash_behind: false,
            }),
            meta,
            len,
        })
    }

    /// Opens the file at `path` for reading under the object's shared lock.
    pub fn open_file(&self, path: &str) -> Result<super::ObjectReader> {
        match place(path) {
            Place::Key(b, k) => self.open_object(b, k, &ReadConditions::default(), false),
            _ => Err(refused(Refusal::IsDir, "a directory")),
        }
    }

    /// Takes (`Some`), or releases (`None`), a forwarded tool lock on the data file at `path`
    /// for `who`; waits until `until` when given, never beyond the lock timeout (the mount
    /// waits in slices to notice interrupted callers). `Ok(false)`: held by someone else.
    pub fn lock_range(
        &self,
        path: &str,
        who: Owner,
        kind: Option<LockKind>,
        range: Range,
        until: Option<Instant>,
    ) -> Result<bool> {
        let deadline = until.map(|u| u.min(Instant::now() + self.locks.timeout()));
        let rel = PathBuf::from(path);
        self.locks
            .ranges()
            .set(who, || self.range_handle(path), kind, range, deadline)
            .map_err(StoreError::io("lock", &rel))
    }

    /// The lock another owner holds that keeps `who` from taking `kind` on `range`.
    pub fn test_range(
        &self,
        path: &str,
        who: Owner,
        kind: LockKind,
        range: Range,
    ) -> Result<Option<Holder>> {
        let rel = PathBuf::from(path);
        self.locks
            .ranges()
            .test(who, || self.range_handle(path), kind, range)
            .map_err(StoreError::io("lock", &rel))
    }

    /// The longest a lock wait lasts.
    pub fn lock_timeout(&self) -> std::time::Duration {
        self.locks.timeout()
    }

    /// Ends every forwarded lock of `who`.
    pub fn release_ranges(&self, who: Owner) {
        self.locks.ranges().release(who);
    }

    fn range_handle(&self, path: &str) -> std::io::Result<File> {
        let rel = match place(path) {
            Place::Key(b, k) => layout::data(b, k),
            Place::Bucket(b) => PathBuf::from(b),
            Place::Root => PathBuf::from("."),
        };
        match self.root.open(&rel, OpenMode::ReadWrite) {
            Err(e) if e.kind() == ErrorKind::IsADirectory => self.root.open(&rel, OpenMode::Read),
            other => other,
        }
    }
}

/// Bytes of a draft still unhashed at its publish that are hashed then; beyond this, the ETag
/// is computed after the publish. A small file's ETag is cheaper written with it than in a
/// second record update (a NAS round trip or two).
pub const HASH_AT_PUBLISH: u64 = 1 << 20;

/// A new version of an object being written through the mount: a staging file nobody else
/// sees, with MD5 computed on the fly while writes arrive in order (for a large draft on a
/// local share, after the publish instead).
pub struct Draft {
    file: WriteBehind,
    meta: BTreeMap<String, String>,
    len: u64,
}

impl Draft {
    /// Hashes the draft as it is written even once it is large, and gives it its ETag at
    /// the publish: for a share on a network filesystem, where the writer waits for the
    /// network anyway and hashing after the publish would read the file back over it.
    pub fn hash_while_writing(&mut self) {
        let _ = self.file.with(|s| {
            s.hash_behind = true;
            Ok(())
        });
    }

    /// Writes `buf` at `offset` (large drafts: queued, and written behind the caller).
    pub fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        self.file.write_at(buf, offset, self.len)?;
        self.len = self.len.max(offset + buf.len() as u64);
        Ok(())
    }

    /// Reads into `buf` at `offset`; 0 at the end.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.file.with(|s| {
            platform::read_at(s.temp.file(), buf, offset)
                .map_err(StoreError::io("read", s.temp.path()))
        })
    }

    /// Cuts or extends the draft to `len` bytes.
    pub fn set_len(&mut self, len: u64) -> Result<()> {
        self.file.with(|s| {
            s.temp
                .file()
                .set_len(len)
                .map_err(StoreError::io("truncate", s.temp.path()))?;
            if len < s.hashing.len() {
                s.hashing = Hashing::new(&[]);
            }
            Ok(())
        })?;
        self.len = len;
        Ok(())
    }

    /// Its length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its attributes now (those it will go live with).
    pub fn attr(&self) -> Result<Attr> {
        self.file.with(|s| {
            platform::attr_file(s.temp.file()).map_err(StoreError::io("stat", s.temp.path()))
        })
    }

    /// Applies mode, owner and times to the draft; they go live with it.
    pub fn set_attr(&mut self, change: AttrChange) -> Result<()> {
        self.file.with(|s| {
            let f = s.temp.file();
            let err = |e| StoreError::io("setattr", s.temp.path())(e);
            if let Some(m) = change.mode {
                platform::set_file_mode(f, m).map_err(err)?;
            }
            if change.uid.is_some() || change.gid.is_some() {
                platform::set_file_owner(f, change.uid, change.gid).map_err(err)?;
            }
            let at = |t: SetTime| match t {
                SetTime::Now => std::time::SystemTime::now(),
                SetTime::At(ns) => {
                    let d = std::time::Duration::from_nanos(
                        ns.unsigned_abs().min(u64::MAX as u128) as u64,
                    );
                    if ns >= 0 {
                        std::time::UNIX_EPOCH + d
                    } else {
                        std::time::UNIX_EPOCH - d
                    }
                }
            };
            let mut times = std::fs::FileTimes::new();
            if let Some(t) = change.atime {
                times = times.set_accessed(at(t));
            }
            if let Some(t) = change.mtime {
                times = times.set_modified(at(t));
            }
            if change.atime.is_some() || change.mtime.is_some() {
                f.set_times(times).map_err(err)?;
            }
            Ok(())
        })
    }

    /// Publishes the draft as the object at `path` (where the file is now, which a rename
    /// may have changed since the draft began), atomically, under the exclusive lock. The
    /// ETag is the MD5 of its bytes; where more than [`HASH_AT_PUBLISH`] of them are not
    /// hashed yet, it is left to be computed after the publish (the info carries none, and
    /// [`Store::fill_etag`] stores it).
    pub fn publish_at(self, store: &Store, path: &str) -> Result<ObjectInfo> {
        let Place::Key(bucket, key) = place(path) else {
            return Err(refused(Refusal::NotPermitted, "files live inside buckets"));
        };
        let Draft {
            file,
            mut meta,
            len,
        } = self;
        let Staging {
            temp,
            mut hashing,
            hash_behind,
            ..
        } = file.into_staging()?;
        // What was not written in order is hashed from the file now, if little (or always
        // where the draft is hashed on the way).
        let mut buf = vec![0u8; io::CHUNK];
        let hash_now = hash_behind || len - hashing.len().min(len) <= HASH_AT_PUBLISH;
        while hash_now && hashing.len() < len {
            let at = hashing.len();
            let want = ((len - at) as usize).min(buf.len());
            let n = platform::read_at(temp.file(), &mut buf[..want], at)
                .map_err(StoreError::io("read", temp.path()))?;
            if n == 0 {
                break;
            }
            hashing.update(&buf[..n]);
        }
        if hash_now {
            meta.insert("etag".into(), hashing.finish()?.md5_hex());
        }
        store.publish(
            bucket,
            key,
            temp,
            meta,
            Vec::new(),
            BTreeMap::new(),
            &super::WriteCondition::Always,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::link_stays_inside;
    use std::path::Path;

    #[test]
    fn links_must_stay_inside_the_tree() {
        let ok = |t: &str| link_stays_inside("bkt", "dir/link", Path::new(t));
        assert!(ok("file"));
        assert!(ok("../top"));
        assert!(ok("../../other-bucket/x"));
        assert!(ok("./sub/../file"));
        assert!(!ok("../../../etc/passwd"));
        assert!(!ok("/etc/passwd"));
        assert!(!ok("../../.minio.sys/format.json"));
        assert!(!ok("../.nfs0001"));
        assert!(!ok("../../UPPER/x"));
        assert!(!ok(""));
    }
}
