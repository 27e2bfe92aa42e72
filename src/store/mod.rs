//! The object layer over the share: the one place that knows how buckets, objects, metadata,
//! uploads and temp files live on disk (MinIO FS-mode layout, see `layout`). Both fronts call
//! it; it takes locks through `crate::lock` and touches the share only through
//! `crate::platform::Root`. All calls block: async callers run them on the blocking pool.

#[cfg(unix)]
mod behind;
pub mod checksum;
pub mod config;
#[cfg(unix)]
pub mod deferred;
pub mod fsck;
pub mod io;
pub mod layout;
#[cfg(unix)]
mod links;
pub mod list;
mod listed;
pub(crate) mod md5;
pub mod meta;
pub mod multipart;
pub mod object;
#[cfg(unix)]
pub mod posix;
mod temp;

/// The old path of `crate::debug::store`, kept so tests written against it on other
/// branches still build; new code uses `crate::debug::store`.
#[doc(hidden)]
pub use crate::debug::store as driver;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::lock::{Create, LockError, Locks, ShareLock};
use crate::platform::{self, FileKind, OpenMode, Root};

pub use checksum::{Checksum, ChecksumAlgorithm};
pub use layout::{KeyReason, NameError};
pub use object::{ObjectInfo, ObjectReader, PutOptions, ReadConditions, WriteCondition};

/// Errors of the store, each naming what a user needs to see.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket does not exist.
    #[error("bucket {0} does not exist")]
    NoSuchBucket(String),
    /// The bucket exists already.
    #[error("bucket {0} exists already")]
    BucketExists(String),
    /// The bucket still holds objects.
    #[error("bucket {0} is not empty")]
    BucketNotEmpty(String),
    /// A bucket name or key is not acceptable.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The object does not exist.
    #[error("object {bucket}/{key} does not exist")]
    NoSuchKey {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// The key collides with the directory tree (a file where a directory is needed, or the
    /// other way round).
    #[error("object {bucket}/{key} cannot be stored: {kind}")]
    KeyConflict {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What collides.
        kind: Conflict,
    },
    /// A precondition (If-Match, If-None-Match, If-Unmodified-Since) failed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The object was not modified (If-None-Match / If-Modified-Since on a read).
    #[error("not modified")]
    NotModified {
        /// The object's ETag, unquoted (a 304 still carries it).
        etag: String,
        /// The object's last modification.
        modified: std::time::SystemTime,
    },
    /// The body's MD5 differs from Content-MD5.
    #[error("the Content-MD5 you specified did not match what was received")]
    BadDigest,
    /// The body's flexible checksum differs from the one sent.
    #[error("the {0} checksum you specified did not match what was received")]
    ChecksumMismatch(&'static str),
    /// The body was shorter or longer than announced.
    #[error("body length {got} differs from the announced {expected}")]
    IncompleteBody {
        /// Announced length.
        expected: u64,
        /// Received length.
        got: u64,
    },
    /// The requested range is outside the object.
    #[error("the requested range is not satisfiable")]
    InvalidRange,
    /// The multipart upload does not exist.
    #[error("upload {0} does not exist")]
    NoSuchUpload(String),
    /// A part listed for completion is missing or its ETag differs.
    #[error("part {0} is missing or its ETag does not match")]
    InvalidPart(u32),
    /// Parts listed for completion are not in ascending order.
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is below 5 MiB.
    #[error("part {0} is smaller than the 5 MiB minimum")]
    EntityTooSmall(u32),
    /// The request is not allowed as made.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The POSIX view will not do this (the FUSE front maps the reason to an errno).
    #[cfg(unix)]
    #[error("{why}")]
    Refused {
        /// Which errno-like reason.
        reason: posix::Refusal,
        /// What a user needs to know.
        why: &'static str,
    },
    /// A lock wait passed its deadline.
    #[error("busy: {0}")]
    Busy(LockError),
    /// Metadata on the share cannot be understood.
    #[error("metadata {} is damaged: {why}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The share refused an operation.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// How a key collides with the directory tree; each front maps it to its own error once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A prefix of the key is an object, so the directory the key needs cannot exist.
    #[error("a prefix of the key is an object")]
    ParentIsObject,
    /// Other objects start with this key and '/': the key's place is a directory.
    #[error("other objects start with this key and '/'")]
    KeysBelow,
    /// An object exists where a directory object's directory would be.
    #[error("an object exists where the directory would be")]
    ObjectAtDirectory,
    /// A key ending in '/' names a directory, which holds no bytes.
    #[error("a key ending in '/' is a directory and cannot hold data")]
    DirectoryWithData,
    /// The object's metadata path runs into another object's record.
    #[error("its metadata path is blocked")]
    MetadataBlocked,
}

impl StoreError {
    /// Whether the share answered ESTALE and the retries bounded by the lock timeout did not
    /// get past it: the fronts answer "busy, try again", never an internal error.
    pub fn is_stale(&self) -> bool {
        match self {
            StoreError::Io { source, .. } => crate::platform::is_stale(source),
            _ => false,
        }
    }

    /// The same error, as `Busy` when it is a stale handle that outlived its retries or a
    /// share whose client connection is gone: "unavailable, try again", not a server fault.
    pub fn busy_if_unavailable(self) -> StoreError {
        match self {
            StoreError::Io { path, source, .. }
                if crate::platform::is_stale(&source)
                    || crate::platform::is_disconnected(&source) =>
            {
                StoreError::Busy(LockError::Io { path, source })
            }
            e => e,
        }
    }

    fn io<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> StoreError + 'p {
        move |source| StoreError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<LockError> for StoreError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Io { path, source } => StoreError::Io {
                op: "lock",
                path,
                source,
            },
            other => StoreError::Busy(other),
        }
    }
}

/// Result of store calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How hard the store makes writes durable before reporting success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync data, metadata and the directories they were renamed into (the default).
    Fsync,
    /// Leave flushing to the filesystem (faster; a crash may lose recent objects whole).
    None,
}

/// Settings of the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// fsync policy.
    pub durability: Durability,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            durability: Durability::Fsync,
        }
    }
}

/// A bucket as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Name.
    pub name: String,
    /// Creation time (the directory's modification time, as MinIO reported it).
    pub created: SystemTime,
}

/// The object store on one share.
pub struct Store {
    root: Arc<Root>,
    locks: Arc<Locks>,
    instance: String,
    config: StoreConfig,
    /// ETags of recently listed objects, so a listing skips reading every fs.json.
    listed: parking_lot::Mutex<listed::Listed>,
    /// Symlinks already checked to stay inside the tree (the POSIX view only).
    #[cfg(unix)]
    links: parking_lot::Mutex<links::Links>,
    /// This instance's staging directory, open: staging files are made, renamed and removed
    /// by name from its handle, not by a path walked from the share's root.
    staging: Arc<Root>,
    /// The lock on this instance's staging `owner` file (re-taken after a reconnect, taken
    /// away only in drop).
    owner: parking_lot::Mutex<Option<ShareLock>>,
}

/// Creates (or re-creates) the staging directory of `instance` and locks its `owner` file.
fn lock_owner(root: &Root, locks: &Locks, instance: &str) -> Result<ShareLock> {
    let tmp = layout::tmp(instance);
    root.create_dir_all(&tmp)
        .map_err(StoreError::io("create", &tmp))?;
    // Lock the owner file under a name no sweep looks at, then move it into place, so a
    // sweeper never sees an unlocked owner of a live instance.
    let staging = tmp.join("owner.new");
    let owner = tmp.join("owner");
    // Left behind when a reconnect was cut short.
    let _ = root.remove_file(&staging);
    let f = root
        .open(&staging, OpenMode::CreateNew)
        .map_err(StoreError::io("create", &staging))?;
    let lock = locks
        .hold_temp(f)
        .map_err(StoreError::io("lock", &staging))?;
    root.rename(&staging, &owner)
        .map_err(StoreError::io("rename", &owner))?;
    Ok(lock)
}

impl Store {
    /// Opens the store on the share behind `locks`: checks or creates format.json and this
    /// instance's staging directory, whose `owner` file stays locked while the store lives.
    pub fn open(locks: Arc<Locks>, config: StoreConfig) -> Result<Store> {
        let root = locks.root().clone();
        format_json(&root)?;
        let instance = uuid::Uuid::new_v4().to_string();
        let lock = lock_owner(&root, &locks, &instance)?;
        let tmp = layout::tmp(&instance);
        let staging = Arc::new(root.sub(&tmp).map_err(StoreError::io("open", &tmp))?);
        Ok(Store {
            root,
            staging,
            locks,
            instance,
            config,
            listed: parking_lot::Mutex::new(listed::Listed::default()),
            #[cfg(unix)]
            links: parking_lot::Mutex::new(links::Links::default()),
            owner: parking_lot::Mutex::new(Some(lock)),
        })
    }

    /// One round trip on the share, as the health probe runs it: the root and this
    /// instance's staging directory are there (a NAS that went away fails both), a small file
    /// is written, flushed, renamed, read back and renamed back, and a lock is taken and
    /// released.
    ///
    /// A root that answers "not connected" (the host's NAS client died; the server dropped
    /// every lock this process held) is opened again by path: once the NAS is mounted again
    /// the instance re-takes its staging lock and serves again. Until then the probe fails
    /// (not ready), and every request fails on the dead handles, so nothing is served or
    /// published under a lock the server no longer knows.
    pub fn probe(&self) -> std::io::Result<()> {
        let dir = layout::tmp(&self.instance);
        if let Err(e) = self.root.stat(Path::new("")) {
            if !platform::is_disconnected(&e) {
                return Err(e);
            }
            self.root.reconnect()?;
            let lock = lock_owner(&self.root, &self.locks, &self.instance)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            *self.owner.lock() = Some(lock);
            tracing::warn!(share = %self.root.path().display(), "share reconnected");
        }
        // Staging files are made through the directory's own handle: it must still be the
        // directory at its path (made again after a reconnect or a sweep) and answer.
        let by_path = self.root.stat(&dir)?;
        let fresh = match self.staging.stat(Path::new("")) {
            Ok(held) => held.id.same_file(&by_path.id),
            Err(e) if platform::is_disconnected(&e) || platform::is_stale(&e) => false,
            Err(e) => return Err(e),
        };
        if !fresh {
            self.staging.reopen_beneath(&self.root, &dir)?;
            tracing::warn!(dir = %dir.display(), "staging directory opened again");
        }
        self.root.stat(&dir.join("owner"))?;
        // The same file each round, moved and moved back: a write, a flush, a rename and a
        // read, with no inode made or freed every second on the NAS.
        let here = dir.join("probe");
        let moved = dir.join("probe.moved");
        if self.root.stat(&here).is_err() && self.root.stat(&moved).is_ok() {
            self.root.rename(&moved, &here)?;
        }
        let nonce = uuid::Uuid::new_v4();
        {
            let f = self.root.open(&here, OpenMode::ReadWriteCreate)?;
            crate::platform::write_at(&f, nonce.as_bytes(), 0)?;
            f.sync_all()?;
        }
        self.root.rename(&here, &moved)?;
        let f = self.root.open(&moved, OpenMode::Read)?;
        let mut back = [0u8; 16];
        let n = crate::platform::read_at(&f, &mut back, 0)?;
        drop(f);
        self.root.rename(&moved, &here)?;
        if back[..n] != nonce.as_bytes()[..] {
            return Err(std::io::Error::other(
                "the probe file read back other bytes than were written",
            ));
        }
        // A full lock round trip: namespace, then fcntl on the share, then release.
        self.locks
            .write(&dir.join("ready"), Create::Yes)
            .map(drop)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// This instance's id (its staging directory's name).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The locks the store takes.
    pub fn locks(&self) -> &Locks {
        &self.locks
    }

    pub(super) fn durable(&self) -> bool {
        self.config.durability == Durability::Fsync
    }

    /// All buckets, by name.
    pub fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        let here = Path::new("");
        let mut out = Vec::new();
        for e in self
            .root
            .read_dir(here)
            .map_err(StoreError::io("list", here))?
        {
            let Some(name) = e.name.to_str() else {
                continue;
            };
            if layout::check_bucket(name).is_err() {
                continue;
            }
            if let Ok(st) = self.root.stat(Path::new(name)) {
                if st.kind == FileKind::Dir {
                    out.push(BucketInfo {
                        name: name.to_string(),
                        created: st.modified(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        layout::check_bucket(bucket)?;
        let p = Path::new(bucket);
        match self.root.create_dir(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::BucketExists(bucket.into()))
            }
            Err(e) => return Err(StoreError::io("create bucket", p)(e)),
        }
        let m = layout::bucket_meta(bucket);
        self.root
            .create_dir_all(&m)
            .map_err(StoreError::io("create", &m))?;
        if self.durable() {
            self.root
                .sync_dir(Path::new(""))
                .map_err(StoreError::io("sync", p))?;
        }
        Ok(())
    }

    /// The bucket's details, or `NoSuchBucket`.
    pub fn head_bucket(&self, bucket: &str) -> Result<BucketInfo> {
        layout::check_bucket(bucket)?;
        match self.root.stat(Path::new(bucket)) {
            Ok(st) if st.kind == FileKind::Dir => Ok(BucketInfo {
                name: bucket.into(),
                created: st.modified(),
            }),
            Ok(_) => Err(StoreError::NoSuchBucket(bucket.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NoSuchBucket(bucket.into()))
            }
            Err(e) => Err(StoreError::io("stat", Path::new(bucket))(e)),
        }
    }

    /// Deletes an empty bucket, its metadata directory and its unfinished uploads.
    pub fn delete_bucket(&self, bucket: &str) -> Result<()> {
        self.head_bucket(bucket)?;
        let p = Path::new(bucket);
        let entries = self.root.read_dir(p).map_err(StoreError::io("list", p))?;
        if entries
            .iter()
            .any(|e| !e.name.to_str().is_some_and(layout::is_hidden))
        {
            return Err(StoreError::BucketNotEmpty(bucket.into()));
        }
        match self.root.remove_dir(p) {
            Ok(()) => {}
            // NFS silly-rename files of deleted-but-open objects keep it busy for a while.
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                return Err(StoreError::BucketNotEmpty(bucket.into()))
            }
            Err(e) => return Err(StoreError::io("delete bucket", p)(e)),
        }
        self.remove_bucket_uploads(bucket)?;
        self.remove_tree(&layout::bucket_meta(bucket))
    }

    /// Removes a directory tree of the internal area (metadata, uploads, temp debris).
    pub(super) fn remove_tree(&self, rel: &Path) -> Result<()> {
        let entries = match self.root.read_dir(rel) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io("list", rel)(e)),
        };
        for e in entries {
            let child = rel.join(&e.name);
            let kind = match e.kind {
                Some(k) => k,
                None => match self.root.stat(&child) {
                    Ok(st) => st.kind,
                    Err(_) => continue,
                },
            };
            if kind == FileKind::Dir {
                self.remove_tree(&child)?;
            } else {
                match self.root.remove_file(&child) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io("remove", &child)(e)),
                }
            }
        }
        match self.root.remove_dir(rel) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", rel)(e)),
        }
    }

    /// Creates directory `rel` and its parents, starting over when a concurrent prune (a
    /// delete here or on another host) removes a parent it just made before the next step.
    fn make_dirs(&self, rel: &Path) -> std::io::Result<()> {
        let mut tries = 0;
        loop {
            match self.root.create_dir_all(rel) {
                // A parent another host removed, or one this client still caches under its old
                // handle: make it again.
                Err(e)
                    if (e.kind() == std::io::ErrorKind::NotFound
                        || crate::platform::is_stale(&e))
                        && tries < 16 =>
                {
                    tries += 1
                }
                done => return done,
            }
        }
    }

    /// Removes empty directories from `from` upwards, stopping below `stop` or at the first
    /// directory that is not empty (other objects, or NFS `.nfs*` files).
    fn prune(&self, from: &Path, stop: &Path) {
        let mut dir = from.to_path_buf();
        while dir.starts_with(stop) && dir != stop {
            if self.root.remove_dir(&dir).is_err() {
                break;
            }
            if !dir.pop() {
                break;
            }
        }
    }

    /// Staging files of instances that are gone: removes every `tmp/<id>/` whose owner lock
    /// no live process holds. Returns how many directories were removed.
    pub fn sweep_tmp(&self) -> Result<usize> {
        let dead = self.dead_tmp_dirs()?;
        for dir in &dead {
            self.remove_tree(dir)?;
        }
        Ok(dead.len())
    }

    /// Staging directories of other instances whose owner lock no live process holds (or,
    /// without an owner file, that are older than a day).
    pub(crate) fn dead_tmp_dirs(&self) -> Result<Vec<PathBuf>> {
        let tmp = layout::tmp_root();
        let entries = match self.root.read_dir(&tmp) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", &tmp)(e)),
        };
        let mut dead = Vec::new();
        for e in entries {
            if e.name.to_str() == Some(self.instance.as_str()) {
                continue;
            }
            let dir = tmp.join(&e.name);
            let owner = dir.join("owner");
            let is_dead = match self.locks.held_elsewhere(&owner) {
                Ok(held) => !held,
                // No owner file: a directory of an old MinIO or a start that never finished;
                // only remove it once it is clearly abandoned.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => self
                    .root
                    .stat(&dir)
                    .map(|st| {
                        SystemTime::now()
                            .duration_since(st.modified())
                            .is_ok_and(|age| age.as_secs() > 24 * 3600)
                    })
                    .unwrap_or(false),
                Err(_) => false,
            };
            if is_dead {
                dead.push(dir);
            }
        }
        Ok(dead)
    }
}

/// Checks format.json, creating it if missing; refuses shares of another backend.
fn format_json(root: &Root) -> Result<()> {
    let path = layout::format();
    let sys = Path::new(layout::SYS);
    root.create_dir_all(sys)
        .map_err(StoreError::io("create", sys))?;
    let body = serde_json::json!({
        "version": "1",
        "format": "fs",
        "id": uuid::Uuid::new_v4().to_string(),
        "fs": { "version": "2" },
    });
    // O_EXCL creation: of several instances starting at once on an empty share, exactly one
    // writes format.json; the others read what it wrote.
    let staging = layout::SYS.to_string() + &format!("/format.json.{}", uuid::Uuid::new_v4());
    let staging = PathBuf::from(staging);
    {
        use std::io::Write;
        let mut f = root
            .open(&staging, OpenMode::CreateNew)
            .map_err(StoreError::io("create", &staging))?;
        f.write_all(&serde_json::to_vec(&body).unwrap_or_default())
            .and_then(|()| f.sync_all())
            .map_err(StoreError::io("write", &staging))?;
    }
    // link() would be the exclusive publish, but not every NAS supports hard links; a
    // create-new of the final name decides the race instead.
    let created = match root.open(&path, OpenMode::CreateNew) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => {
            let _ = root.remove_file(&staging);
            return Err(StoreError::io("create", &path)(e));
        }
    };
    if created {
        root.rename(&staging, &path)
            .map_err(StoreError::io("rename", &path))?;
        return Ok(());
    }
    let text = read_small(root, &path);
    if matches!(&text, Ok(t) if t.is_empty()) && format_abandoned(root, &path) {
        // The winner of an earlier race died between creating the file and renaming its
        // content over it; left empty, the share would never get an id (and MinIO would not
        // read it), so this instance completes it.
        return root
            .rename(&staging, &path)
            .map_err(StoreError::io("rename", &path));
    }
    let _ = root.remove_file(&staging);
    let text = text?;
    if text.is_empty() {
        // Another instance won the race and is about to rename its content in.
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| StoreError::Corrupt {
        path: path.clone(),
        why: e.to_string(),
    })?;
    match v.get("format").and_then(|f| f.as_str()) {
        Some("fs") => Ok(()),
        other => Err(StoreError::Corrupt {
            path,
            why: format!(
                "the share is formatted for backend {:?}, not \"fs\"; nasgate serves FS-mode shares only",
                other.unwrap_or("?")
            ),
        }),
    }
}

/// How long an empty format.json may stay empty before it counts as left by a crash (the
/// instance that created it renames the content in right after).
const FORMAT_ABANDONED: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether the empty format.json at `path` is older than any live creator could leave it.
fn format_abandoned(root: &Root, path: &Path) -> bool {
    root.stat(path).is_ok_and(|st| {
        SystemTime::now()
            .duration_since(st.modified())
            .is_ok_and(|age| age > FORMAT_ABANDONED)
    })
}

fn read_small(root: &Root, rel: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    root.open(rel, OpenMode::Read)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(StoreError::io("read", rel))?;
    Ok(buf)
}

impl Drop for Store {
    fn drop(&mut self) {
        // A clean stop leaves no staging directory behind; open uploads' files are already
        // gone, since every staging file removes itself when dropped.
        let dir = layout::tmp(&self.instance);
        let _ = self.root.remove_file(&dir.join("owner"));
        // Windows keeps a deleted file's name (and so the directory) until its last handle
        // closes: let go of the owner file before removing the directory.
        drop(self.owner.lock().take());
        let _ = self.remove_tree(&dir);
    }
}

/// A crash point for tests: `NASGATE_CRASH_AT=<name>` aborts the process right there, as a
/// power cut or SIGKILL would, so tests can check what a crash at each step leaves behind.
pub(crate) fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT
        .get_or_init(|| std::env::var("NASGATE_CRASH_AT").ok())
        .as_deref()
        == Some(name)
    {
        std::process::abort();
    }
}
