//! Objects: put (staged, then published atomically under the exclusive lock), get and head
//! (under the shared lock for the whole read), delete, copy, tags, and listing with details.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::lock::{Create, LockError, ReadGuard, WriteGuard};
use crate::platform::{self, FileKind, OpenMode, Root, Stat};

use super::checksum::{Checksum, ChecksumAlgorithm};
use super::layout;
use super::list::{self, ListQuery, Tree};
use super::meta::{self, user_and_standard, FsJson, FsPart, Stamp};
use super::temp::{algorithms, Expect, Staged, TempFile};
use super::{crash_point, io, Conflict, Result, Store, StoreError};

/// How often a publish or read starts over after losing a race with a concurrent delete,
/// prune or replacement before it reports the share as too busy.
pub(super) const RETRIES: usize = 16;

/// What rebuilding an object's metadata found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refreshed {
    /// A new record was written from the data: look again.
    Rebuilt,
    /// The record already describes the data, or a writer is at work: look again.
    Described,
    /// There is no data file to describe: the object is gone.
    NoData,
}

/// Runs `a` and `b` at the same time (b on this thread) and returns the first error.
///
/// `a` goes to the runtime's blocking pool, whose idle threads are reused: a thread of its
/// own per call cost some thirty system calls and its start-up time on every publish. If no
/// pool thread has picked `a` up by the time `b` is done, this thread runs it itself, so a
/// saturated pool delays nothing and can never deadlock. Outside a runtime, a scoped thread.
fn both(
    a: impl FnOnce() -> Result<()> + Send + 'static,
    b: impl FnOnce() -> Result<()>,
) -> Result<()> {
    type Job = Box<dyn FnOnce() -> Result<()> + Send>;
    let failed = || StoreError::Io {
        op: "fsync",
        path: PathBuf::new(),
        source: std::io::Error::other("the syncing thread failed"),
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return std::thread::scope(|s| {
            let other = std::thread::Builder::new().spawn_scoped(s, a);
            match other {
                Ok(h) => {
                    let mine = b();
                    mine.and(h.join().unwrap_or_else(|_| Err(failed())))
                }
                Err(_) => Err(failed()),
            }
        });
    };
    let slot: Arc<parking_lot::Mutex<Option<Job>>> =
        Arc::new(parking_lot::Mutex::new(Some(Box::new(a))));
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let helper_slot = slot.clone();
    drop(runtime.spawn_blocking(move || {
        let job = helper_slot.lock().take();
        if let Some(job) = job {
            let _ = tx.send(job());
        }
    }));
    let mine = b();
    let job = slot.lock().take();
    let theirs = match job {
        Some(job) => job(),
        None => rx.recv().unwrap_or_else(|_| Err(failed())),
    };
    mine.and(theirs)
}

/// Whether removing an object also removes the directories it leaves empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prune {
    /// S3 semantics: directories exist only to hold keys.
    Yes,
    /// POSIX semantics: directories stay until removed themselves.
    #[cfg_attr(not(unix), allow(dead_code))]
    No,
}

/// What must hold about the current object for a write to go ahead (checked under the
/// exclusive lock, so it is atomic across hosts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WriteCondition {
    /// Always write.
    #[default]
    Always,
    /// `If-None-Match: *`: only if no object exists.
    IfAbsent,
    /// `If-Match: <etag>`: only if the object exists with this ETag.
    IfMatch(String),
}

/// Options of a put.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Standard headers (lowercase), `X-Amz-Meta-*` (canonical) and `X-Amz-Tagging`.
    pub meta: BTreeMap<String, String>,
    /// Condition on the current object.
    pub condition: WriteCondition,
    /// Content-MD5 the body must have.
    pub content_md5: Option<[u8; 16]>,
    /// Flexible checksums to compute and store.
    pub checksums: Vec<ChecksumAlgorithm>,
    /// Flexible checksums the body must have (computed too, no need to repeat them above).
    pub expected: Vec<Checksum>,
    /// Exact body length, when announced.
    pub size: Option<u64>,
}

/// Conditional-read headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadConditions {
    /// If-Match.
    pub if_match: Option<String>,
    /// If-None-Match.
    pub if_none_match: Option<String>,
    /// If-Modified-Since.
    pub if_modified_since: Option<SystemTime>,
    /// If-Unmodified-Since.
    pub if_unmodified_since: Option<SystemTime>,
}

/// What a read or listing tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Size in bytes (from the data file).
    pub size: u64,
    /// Last modification (from the data file).
    pub modified: SystemTime,
    /// ETag, unquoted.
    pub etag: String,
    /// Standard headers, user metadata and tags as stored (no ETag).
    pub meta: BTreeMap<String, String>,
    /// Parts of a multipart object.
    pub parts: Vec<FsPart>,
    /// Stored flexible checksums.
    pub checksums: Vec<Checksum>,
}

impl ObjectInfo {
    /// The content type.
    pub fn content_type(&self) -> &str {
        self.meta
            .get("content-type")
            .map(String::as_str)
            .unwrap_or("application/octet-stream")
    }

    /// The URL-encoded tag set, if any.
    pub fn tags(&self) -> Option<&str> {
        self.meta.get(meta::TAGGING).map(String::as_str)
    }

    /// Whether this is a directory object (`dir/`).
    pub fn is_dir(&self) -> bool {
        layout::is_dir_key(&self.key)
    }

    /// Checks conditional-read headers (RFC 7232 order, as S3 applies them).
    pub fn check(&self, c: &ReadConditions) -> Result<()> {
        let secs = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        let modified = secs(self.modified);
        if let Some(m) = &c.if_match {
            if !etag_matches(m, &self.etag) {
                return Err(StoreError::PreconditionFailed);
            }
        } else if let Some(t) = c.if_unmodified_since {
            if modified > secs(t) {
                return Err(StoreError::PreconditionFailed);
            }
        }
        if let Some(m) = &c.if_none_match {
            if etag_matches(m, &self.etag) {
                return Err(self.not_modified());
            }
        } else if let Some(t) = c.if_modified_since {
            if modified <= secs(t) {
                return Err(self.not_modified());
            }
        }
        Ok(())
    }

    fn not_modified(&self) -> StoreError {
        StoreError::NotModified {
            etag: self.etag.clone(),
            modified: self.modified,
        }
    }

    fn from_record(bucket: &str, key: &str, st: &Stat, record: &FsJson) -> ObjectInfo {
        let mut m = record.meta.clone();
        let etag = m.remove("etag").unwrap_or_default();
        let checksums = record
            .nasgate
            .iter()
            .flat_map(|s| s.checksums.iter())
            .filter_map(|(alg, value)| {
                Some(Checksum {
                    algorithm: ChecksumAlgorithm::parse(alg)?,
                    value: value.clone(),
                })
            })
            .collect();
        ObjectInfo {
            bucket: bucket.into(),
            key: key.into(),
            size: st.size,
            modified: st.modified(),
            etag,
            meta: m,
            parts: record.parts.clone(),
            checksums,
        }
    }

    fn directory(bucket: &str, key: &str, st: &Stat) -> ObjectInfo {
        ObjectInfo {
            bucket: bucket.into(),
            key: key.into(),
            size: 0,
            modified: st.modified(),
            etag: meta::EMPTY_ETAG.into(),
            meta: BTreeMap::new(),
            parts: Vec::new(),
            checksums: Vec::new(),
        }
    }

    /// A directory object with the headers and user metadata its record keeps.
    fn directory_with(bucket: &str, key: &str, st: &Stat, record: Option<FsJson>) -> ObjectInfo {
        let mut info = ObjectInfo::directory(bucket, key, st);
        if let Some(record) = record {
            info.meta = record.meta;
            info.meta.remove("etag");
        }
        info
    }
}

/// Whether an If-Match / If-None-Match value (a list, possibly quoted, possibly `*`)
/// matches `etag`.
pub fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.trim_start_matches("W/").trim_matches('"') == etag
    })
}

/// An object opened for reading: its details, its data file, and the shared lock that keeps
/// any publish out until this is dropped.
pub struct ObjectReader {
    info: ObjectInfo,
    data: Option<File>,
    _guard: Option<ReadGuard>,
}

impl ObjectReader {
    /// The object's details.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    /// Takes the details, releasing the lock.
    pub fn into_info(self) -> ObjectInfo {
        self.info
    }

    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        match &self.data {
            Some(f) => platform::read_at(f, buf, offset),
            None => Ok(0),
        }
    }

    /// The data file (absent for directory objects).
    pub fn file(&self) -> Option<&File> {
        self.data.as_ref()
    }

    /// Takes the object's shared lock out of the reader, which stays readable through its
    /// open data file; dropping the guard lets writers in.
    pub fn take_lock(&mut self) -> Option<ReadGuard> {
        self._guard.take()
    }
}

/// A put in progress: the body streams into a locked staging file while MD5 and checksums are
/// computed; nothing is visible until `finish` publishes it.
pub struct Upload {
    bucket: String,
    key: String,
    staged: Staged,
    options: PutOptions,
}

impl Upload {
    /// Appends body bytes.
    pub fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.staged.write(buf)
    }

    /// Appends body bytes without copying them for the hasher.
    pub fn write_bytes(&mut self, buf: bytes::Bytes) -> Result<()> {
        self.staged.write_bytes(buf)
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.staged.len()
    }

    /// Adds a checksum the body must have, known only after the body (an HTTP trailer); its
    /// algorithm must have been requested when the put began.
    pub fn expect_checksum(&mut self, c: Checksum) {
        self.options.expected.push(c);
    }

    /// Whether nothing was received yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies the body against what was announced and publishes it.
    pub fn finish(self, store: &Store) -> Result<ObjectInfo> {
        let Upload {
            bucket,
            key,
            staged,
            mut options,
        } = self;
        let (temp, digests) = staged.finish(&Expect {
            size: options.size,
            content_md5: options.content_md5,
            checksums: &options.expected,
        })?;
        if layout::is_dir_key(&key) {
            if digests.len != 0 {
                return Err(StoreError::KeyConflict {
                    bucket,
                    key,
                    kind: Conflict::DirectoryWithData,
                });
            }
            return store.put_directory(&bucket, &key, &options.condition, options.meta);
        }
        options.meta.insert("etag".into(), digests.md5_hex());
        let checksums = digests
            .checksums
            .iter()
            .map(|c| (c.algorithm.name().to_string(), c.value.clone()))
            .collect();
        store.publish(
            &bucket,
            &key,
            temp,
            options.meta,
            Vec::new(),
            checksums,
            &options.condition,
        )
    }
}

/// Options of a copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `Some` replaces the metadata (REPLACE directive); `None` copies the source's.
    pub metadata: Option<BTreeMap<String, String>>,
    /// `Some` replaces the tags (`Some(None)` removes them); `None` keeps the source's.
    pub tags: Option<Option<String>>,
    /// x-amz-copy-source-if-* conditions on the source.
    pub source: ReadConditions,
    /// Condition on the destination.
    pub condition: WriteCondition,
}

/// One page of a listing with each object's details: key, size, modification time and
/// ETag (what a listing shows; metadata, parts and checksums are left empty).
#[derive(Debug, Clone, Default)]
pub struct ObjectPage {
    /// Objects, in S3 order.
    pub objects: Vec<ObjectInfo>,
    /// Common prefixes, in S3 order.
    pub common_prefixes: Vec<String>,
    /// Whether more items follow.
    pub is_truncated: bool,
    /// Where the next page starts after (last key or common prefix of this page).
    pub next: Option<String>,
}

/// Sets the tag entry of a copy's metadata: replaced when asked, else the source's.
fn apply_tags(
    m: &mut BTreeMap<String, String>,
    replace: Option<&Option<String>>,
    source: Option<&str>,
) {
    let tags = match replace {
        Some(t) => t.clone(),
        None => source.map(str::to_string),
    };
    match tags.filter(|t| !t.is_empty()) {
        Some(t) => m.insert(meta::TAGGING.into(), t),
        None => m.remove(meta::TAGGING),
    };
}

pub(super) fn read_record(file: &File, rel: &Path) -> Option<FsJson> {
    read_record_checked(file, rel).ok().flatten()
}

/// Like `read_record`, but a failed read is an error (ESTALE: the file changed under us).
pub(super) fn read_record_checked(file: &File, rel: &Path) -> std::io::Result<Option<FsJson>> {
    let mut buf = Vec::new();
    let mut off = 0u64;
    let mut chunk = [0u8; 4096];
    loop {
        match platform::read_at(file, &mut chunk, off)? {
            0 => break,
            n => {
                buf.extend_from_slice(&chunk[..n]);
                off += n as u64;
            }
        }
    }
    match FsJson::parse(&buf) {
        Ok(r) => Ok(r),
        Err(e) => {
            // Damaged metadata is rebuilt from the data, which is the authority.
            tracing::warn!(path = %rel.display(), error = %e, "ignoring damaged fs.json");
            Ok(None)
        }
    }
}

pub(super) fn is_not_found(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory
}

/// Whether a lock attempt failed because the lock file is not there. Besides ENOENT this is
/// ENOTDIR: the metadata path of a key below an object (`a/fs.json` or `a/b` when `a` is an
/// object) runs into that object's own fs.json file.
fn lock_file_missing(e: &LockError) -> bool {
    match e {
        LockError::NotFound { .. } => true,
        LockError::Io { source, .. } => source.kind() == ErrorKind::NotADirectory,
        _ => false,
    }
}

impl Store {
    /// The key is valid and the bucket exists.
    pub(crate) fn check_names(&self, bucket: &str, key: &str) -> Result<()> {
        layout::check_key(key)?;
        self.head_bucket(bucket).map(|_| ())
    }

    /// Starts a put of `bucket/key`: the body goes to a staging file, no lock held.
    pub fn begin_put(&self, bucket: &str, key: &str, options: PutOptions) -> Result<Upload> {
        self.check_names(bucket, key)?;
        let extra = algorithms(&options.checksums, &options.expected);
        Ok(Upload {
            bucket: bucket.into(),
            key: key.into(),
            staged: Staged::new(self, &extra)?,
            options,
        })
    }

    /// Puts a whole object from a reader (see `begin_put` for streaming callers).
    pub fn put(
        &self,
        bucket: &str,
        key: &str,
        body: &mut dyn Read,
        options: PutOptions,
    ) -> Result<ObjectInfo> {
        let mut up = self.begin_put(bucket, key, options)?;
        let mut buf = vec![0u8; io::CHUNK];
        loop {
            let n = body
                .read(&mut buf)
                .map_err(StoreError::io("read body for", Path::new(key)))?;
            if n == 0 {
                break;
            }
            up.write(&buf[..n])?;
        }
        up.finish(self)
    }

    /// The directory behind directory object `key` (`dir/`), if that object exists: a
    /// directory with nothing visible in it. A directory that carries keys is no object, as
    /// listings show it, even when a PUT of `dir/` made it: its record waits (for its content
    /// type and metadata) until the keys below are gone again.
    fn directory_object(&self, bucket: &str, key: &str) -> Result<Option<Stat>> {
        let rel = layout::data(bucket, key);
        let st = match self.root.stat(&rel) {
            Ok(st) if st.kind == FileKind::Dir => st,
            Ok(_) => return Ok(None),
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(StoreError::io("stat", &rel)(e)),
        };
        let tree = BucketTree {
            store: self,
            bucket,
        };
        match tree.entries(key.trim_end_matches('/')) {
            Ok(entries) if entries.is_empty() => Ok(Some(st)),
            Ok(_) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(StoreError::io("list", &rel)(e)),
        }
    }

    /// The metadata record of directory object `key`, if it was written for the directory
    /// that is there now (a directory removed and made again by a POSIX tool has none).
    fn directory_record(&self, bucket: &str, key: &str, st: &Stat) -> Option<FsJson> {
        let bytes = self.locks.peek(&layout::dir_meta(bucket, key)).ok()?;
        FsJson::parse(&bytes)
            .ok()
            .flatten()
            .filter(|r| r.nasgate.as_ref().is_some_and(|s| s.ino == st.id.ino))
    }

    /// Makes directory object `key` (`dir/`) and writes its record (content type, user
    /// metadata) under the record's exclusive lock.
    fn put_directory(
        &self,
        bucket: &str,
        key: &str,
        cond: &WriteCondition,
        mut meta: BTreeMap<String, String>,
    ) -> Result<ObjectInfo> {
        let rel = layout::data(bucket, key);
        let exists = self.directory_object(bucket, key)?.is_some();
        match cond {
            WriteCondition::IfAbsent if exists => return Err(StoreError::PreconditionFailed),
            WriteCondition::IfMatch(_) if !exists => {
                return Err(StoreError::NoSuchKey {
                    bucket: bucket.into(),
                    key: key.into(),
                })
            }
            WriteCondition::IfMatch(e) if !etag_matches(e, meta::EMPTY_ETAG) => {
                return Err(StoreError::PreconditionFailed)
            }
            _ => {}
        }
        let conflict = |kind| StoreError::KeyConflict {
            bucket: bucket.into(),
            key: key.into(),
            kind,
        };
        self.make_dirs(&rel).map_err(|e| {
            if e.kind() == ErrorKind::AlreadyExists || e.kind() == ErrorKind::NotADirectory {
                conflict(Conflict::ObjectAtDirectory)
            } else {
                StoreError::io("create", &rel)(e)
            }
        })?;
        let st = self.root.stat(&rel).map_err(StoreError::io("stat", &rel))?;
        let record_rel = layout::dir_meta(bucket, key);
        if let Some(record_dir) = record_rel.parent() {
            match self.make_dirs(record_dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotADirectory => {
                    return Err(conflict(Conflict::MetadataBlocked))
                }
                Err(e) => return Err(StoreError::io("create", record_dir)(e)),
            }
        }
        meta.insert("etag".into(), meta::EMPTY_ETAG.into());
        let record = FsJson::new(meta, Stamp::of(&st));
        let guard = self.locks.write(&record_rel, Create::Yes)?;
        self.replace_record(&guard, &record_rel, &record)?;
        drop(guard);
        Ok(ObjectInfo::directory_with(bucket, key, &st, Some(record)))
    }

    /// Removes the data directories from `from` up that a delete left empty, stopping below
    /// the bucket and at a directory object made by a PUT (it has a record), which S3 keeps
    /// when the last key below it goes.
    fn prune_data(&self, bucket: &str, from: &Path) {
        let stop = Path::new(bucket);
        let mut dir = from.to_path_buf();
        while dir != stop {
            let Ok(inner) = dir.strip_prefix(stop) else {
                break;
            };
            let key = format!("{}/", inner.to_string_lossy());
            if self.root.stat(&layout::dir_meta(bucket, &key)).is_ok() {
                break;
            }
            if self.root.remove_dir(&dir).is_err() || !dir.pop() {
                break;
            }
        }
    }

    /// Removes a directory object's record and the metadata directories it leaves empty.
    pub(super) fn remove_directory_record(&self, bucket: &str, key: &str) {
        let record_rel = layout::dir_meta(bucket, key);
        if self.root.remove_file(&record_rel).is_ok() {
            if let Some(record_dir) = record_rel.parent() {
                self.prune(record_dir, &layout::bucket_meta(bucket));
            }
        }
    }

    /// Publishes a staged data file as `bucket/key` with metadata `meta` (ETag included):
    /// under the object's exclusive lock, checks `cond`, renames data into place, then
    /// renames the metadata over fs.json. A crash between the two renames leaves new data
    /// with a stamp mismatch in fs.json, which readers detect and rebuild from the data.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn publish(
        &self,
        bucket: &str,
        key: &str,
        mut data: TempFile,
        meta: BTreeMap<String, String>,
        parts: Vec<FsPart>,
        checksums: BTreeMap<String, String>,
        cond: &WriteCondition,
    ) -> Result<ObjectInfo> {
        let data_rel = layout::data(bucket, key);
        let meta_rel = layout::meta(bucket, key);
        let meta_dir = layout::meta_dir(bucket, key);
        let st = platform::stat_file(data.file()).map_err(StoreError::io("stat", data.path()))?;
        let mut stamp = Stamp::of(&st);
        stamp.checksums = checksums;
        let mut record = FsJson::new(meta, stamp);
        record.parts = parts;
        let mut record_file = self.unsynced_record(&record)?;
        // Data and record reach the disk together: two fsyncs issued at once share one
        // journal commit on most filesystems, where one after the other pay for two.
        if self.durable() {
            let file = data
                .file()
                .try_clone()
                .map_err(StoreError::io("fsync", data.path()))?;
            let path = data.path().to_path_buf();
            both(
                move || file.sync_all().map_err(StoreError::io("fsync", &path)),
                || record_file.sync(),
            )?;
        }
        let conflict = |kind| StoreError::KeyConflict {
            bucket: bucket.into(),
            key: key.into(),
            kind,
        };
        for _ in 0..RETRIES {
            self.head_bucket(bucket)?;
            // The metadata directory is there for every object written before: it is made
            // only when the lock file cannot be created without it, which saves a lookup
            // (a NAS round trip) per overwrite.
            let guard = match self.locks.write(&meta_rel, Create::Yes) {
                Ok(g) => g,
                Err(LockError::NotFound { .. }) => {
                    match self.make_dirs(&meta_dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::NotADirectory => {
                            return Err(conflict(Conflict::MetadataBlocked))
                        }
                        Err(e) => return Err(StoreError::io("create", &meta_dir)(e)),
                    }
                    continue;
                }
                Err(LockError::Io { source, .. }) if source.kind() == ErrorKind::NotADirectory => {
                    return Err(conflict(Conflict::MetadataBlocked))
                }
                Err(e) => return Err(e.into()),
            };
            let data_dir = match self.place_data(&guard, bucket, key, cond, &mut data) {
                Ok(dir) => dir,
                Err(e) => {
                    if matches!(e, StoreError::Io { ref source, .. } if source.kind() == ErrorKind::NotFound)
                    {
                        // A concurrent delete pruned a directory on the way: start over.
                        continue;
                    }
                    self.discard_lock_file(&guard, bucket, key);
                    return Err(e);
                }
            };
            crash_point("publish.data-placed");
            // Opened once for the rename and the fsync after it (the lock file keeps it from
            // being pruned meanwhile): one path walk, a round trip per component on a NAS.
            let meta_root = self
                .root
                .sub(&meta_dir)
                .map_err(StoreError::io("open", &meta_dir))?;
            record_file
                .place_in(
                    &meta_root,
                    Path::new(meta_rel.file_name().unwrap_or_default()),
                )
                .map_err(StoreError::io("rename", &meta_rel))?;
            crash_point("publish.meta-placed");
            if self.durable() {
                let parent = data_rel.parent().unwrap_or(Path::new("")).to_path_buf();
                both(
                    move || {
                        data_dir
                            .sync_dir(Path::new(""))
                            .map_err(StoreError::io("fsync", &parent))
                    },
                    || {
                        meta_root
                            .sync_dir(Path::new(""))
                            .map_err(StoreError::io("fsync", &meta_dir))
                    },
                )?;
            }
            drop(guard);
            return Ok(ObjectInfo::from_record(bucket, key, &st, &record));
        }
        Err(StoreError::Busy(LockError::Timeout {
            path: meta_rel,
            what: "publish",
            kind: crate::platform::LockKind::Exclusive,
        }))
    }

    /// Under the object's exclusive lock: checks the condition and renames the staged data
    /// into place, making the directories on the way. Returns the directory it went into,
    /// open, for the fsync that makes the rename durable.
    fn place_data(
        &self,
        guard: &WriteGuard,
        bucket: &str,
        key: &str,
        cond: &WriteCondition,
        data: &mut TempFile,
    ) -> Result<Root> {
        let data_rel = layout::data(bucket, key);
        let conflict = |kind| StoreError::KeyConflict {
            bucket: bucket.into(),
            key: key.into(),
            kind,
        };
        self.check_write(guard, bucket, key, cond)?;
        crash_point("publish.locked");
        let parent = data_rel.parent().unwrap_or(Path::new(""));
        let name = Path::new(data_rel.file_name().unwrap_or_default());
        // Directories on the way are made only when opening the parent says they are
        // missing: a key in an existing directory then costs no lookup of them.
        let dir = match self.root.sub(parent) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                match self.make_dirs(parent) {
                    Ok(()) => {}
                    Err(e)
                        if e.kind() == ErrorKind::NotADirectory
                            || e.kind() == ErrorKind::AlreadyExists =>
                    {
                        return Err(conflict(Conflict::ParentIsObject))
                    }
                    Err(e) => return Err(StoreError::io("create", parent)(e)),
                }
                self.root.sub(parent)
            }
            opened => opened,
        };
        let dir = match dir {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotADirectory => {
                return Err(conflict(Conflict::ParentIsObject))
            }
            // Still missing: a concurrent delete pruned it again; the caller starts over.
            Err(e) => return Err(StoreError::io("open", parent)(e)),
        };
        match data.place_in(&dir, name) {
            Ok(()) => Ok(dir),
            Err(e)
                if e.kind() == ErrorKind::IsADirectory
                    || e.kind() == ErrorKind::DirectoryNotEmpty
                    || e.kind() == ErrorKind::AlreadyExists =>
            {
                Err(conflict(Conflict::KeysBelow))
            }
            Err(e) if e.kind() == ErrorKind::NotADirectory => {
                Err(conflict(Conflict::ParentIsObject))
            }
            Err(e) => Err(StoreError::io("rename", &data_rel)(e)),
        }
    }

    /// After a publish that did not happen: removes the lock file it created if it holds no
    /// metadata and there is no object, so refused writes leave nothing behind.
    fn discard_lock_file(&self, guard: &WriteGuard, bucket: &str, key: &str) {
        let meta_rel = layout::meta(bucket, key);
        let empty = platform::stat_file(guard.file()).is_ok_and(|st| st.size == 0);
        let no_data = !matches!(self.root.stat(&layout::data(bucket, key)), Ok(st) if st.kind == FileKind::File);
        if empty && no_data && self.root.remove_file(&meta_rel).is_ok() {
            self.prune(&layout::meta_dir(bucket, key), &layout::bucket_meta(bucket));
        }
    }

    /// Writes `record` to a synced staging file, ready to be renamed over an fs.json.
    fn staged_record(&self, record: &FsJson) -> Result<TempFile> {
        let t = self.unsynced_record(record)?;
        t.sync()?;
        Ok(t)
    }

    /// `record` in a staging file, not yet synced.
    fn unsynced_record(&self, record: &FsJson) -> Result<TempFile> {
        let t = TempFile::create(self)?;
        let mut f = t.file();
        f.write_all(&record.to_bytes())
            .map_err(StoreError::io("write", t.path()))?;
        Ok(t)
    }

    /// The current object's ETag as seen under `guard` (None if there is no object).
    fn current_etag(&self, guard: &WriteGuard, bucket: &str, key: &str) -> Result<Option<String>> {
        let data_rel = layout::data(bucket, key);
        let data = match self.root.open(&data_rel, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(StoreError::io("open", &data_rel)(e)),
        };
        let st = platform::stat_file(&data).map_err(StoreError::io("stat", &data_rel))?;
        if st.kind != FileKind::File {
            return Ok(None);
        }
        let meta_rel = layout::meta(bucket, key);
        if let Some(r) = read_record(guard.file(), &meta_rel) {
            if r.describes(&st) {
                return Ok(r.etag().map(str::to_string));
            }
        }
        let d =
            io::hash_range(&data, 0, st.size, &[]).map_err(StoreError::io("read", &data_rel))?;
        Ok(Some(d.md5_hex()))
    }

    fn check_write(
        &self,
        guard: &WriteGuard,
        bucket: &str,
        key: &str,
        cond: &WriteCondition,
    ) -> Result<()> {
        match cond {
            WriteCondition::Always => Ok(()),
            WriteCondition::IfAbsent => match self.current_etag(guard, bucket, key)? {
                Some(_) => Err(StoreError::PreconditionFailed),
                None => Ok(()),
            },
            WriteCondition::IfMatch(want) => match self.current_etag(guard, bucket, key)? {
                None => Err(StoreError::NoSuchKey {
                    bucket: bucket.into(),
                    key: key.into(),
                }),
                Some(e) if etag_matches(want, &e) => Ok(()),
                Some(_) => Err(StoreError::PreconditionFailed),
            },
        }
    }

    /// Opens `bucket/key` for reading under its shared lock, which the reader holds until
    /// dropped; checks `cond` first.
    pub fn get(&self, bucket: &str, key: &str, cond: &ReadConditions) -> Result<ObjectReader> {
        self.open_object(bucket, key, cond, true)
    }

    /// As [`Store::get`]; with `need_etag` false (a reader through the mount, which has no use
    /// for it), an ETag still to be computed is left so, and its info carries none.
    pub(super) fn open_object(
        &self,
        bucket: &str,
        key: &str,
        cond: &ReadConditions,
        need_etag: bool,
    ) -> Result<ObjectReader> {
        layout::check_key(key)?;
        if layout::is_dir_key(key) {
            self.head_bucket(bucket)?;
        } else {
            layout::check_bucket(bucket)?;
        }
        // An object that is there proves its bucket is: only a missing one pays for the
        // bucket lookup (a NAS round trip), to tell NoSuchBucket from NoSuchKey.
        let no_such_key = || match self.head_bucket(bucket) {
            Ok(_) => StoreError::NoSuchKey {
                bucket: bucket.into(),
                key: key.into(),
            },
            Err(e) => e,
        };
        let data_rel = layout::data(bucket, key);
        if layout::is_dir_key(key) {
            let Some(st) = self.directory_object(bucket, key)? else {
                return Err(no_such_key());
            };
            let record = self.directory_record(bucket, key, &st);
            let info = ObjectInfo::directory_with(bucket, key, &st, record);
            info.check(cond)?;
            return Ok(ObjectReader {
                info,
                data: None,
                _guard: None,
            });
        }
        let meta_rel = layout::meta(bucket, key);
        let deadline = std::time::Instant::now() + self.locks.timeout();
        let mut stale = platform::StaleRetry::new();
        let mut rounds = 0;
        while rounds < RETRIES {
            rounds += 1;
            let guard = match self.locks.read(&meta_rel, Create::No) {
                Ok(g) => g,
                Err(e) if lock_file_missing(&e) => match self.root.stat(&data_rel) {
                    Ok(st) if st.kind == FileKind::File => match self.refresh(bucket, key) {
                        Ok(Refreshed::Rebuilt | Refreshed::Described) => continue,
                        Ok(Refreshed::NoData) => return Err(no_such_key()),
                        Err(e) if e.is_stale() && stale.pause(deadline) => {
                            rounds -= 1;
                            continue;
                        }
                        Err(e) => return Err(e),
                    },
                    Ok(_) => return Err(no_such_key()),
                    Err(e) if is_not_found(&e) => return Err(no_such_key()),
                    // A name cached for a file another host just deleted: look again.
                    Err(e) if platform::is_stale(&e) && stale.pause(deadline) => {
                        rounds -= 1;
                        continue;
                    }
                    Err(e) => return Err(StoreError::io("stat", &data_rel)(e)),
                },
                Err(e) => return Err(e.into()),
            };
            // Under the shared lock nobody may replace the data, but this client's cached
            // name (or open-behind's lazy open) may still point at the file a writer on
            // another host replaced just before: ESTALE means look again, not failure.
            let opened = self.root.open(&data_rel, OpenMode::Read).and_then(|f| {
                let st = platform::stat_file(&f)?;
                // Unreadable metadata other than stale is rebuilt, as `read_record` does.
                let record = match read_record_checked(guard.file(), &meta_rel) {
                    Err(e) if !platform::is_stale(&e) => None,
                    r => r?,
                };
                Ok((f, st, record))
            });
            let (data, st, record) = match opened {
                Ok(o) => o,
                Err(e) if is_not_found(&e) => return Err(no_such_key()),
                Err(e) if platform::is_stale(&e) => {
                    drop(guard);
                    rounds -= 1;
                    if stale.pause(deadline) {
                        continue;
                    }
                    return Err(StoreError::io("open", &data_rel)(e));
                }
                Err(e) => return Err(StoreError::io("open", &data_rel)(e)),
            };
            if st.kind != FileKind::File {
                return Err(no_such_key());
            }
            match record {
                Some(record) if record.matches_data(&st) => {
                    let mut info = ObjectInfo::from_record(bucket, key, &st, &record);
                    if need_etag && record.pending_for(&st) {
                        // Computed for this answer under the shared lock, which keeps the
                        // data as it is; the mount's worker stores it (`Store::fill_etag`).
                        let d = io::hash_range(&data, 0, st.size, &[])
                            .map_err(StoreError::io("read", &data_rel))?;
                        info.etag = d.md5_hex();
                    }
                    info.check(cond)?;
                    return Ok(ObjectReader {
                        info,
                        data: Some(data),
                        _guard: Some(guard),
                    });
                }
                _ => {
                    drop(data);
                    drop(guard);
                    match self.refresh(bucket, key) {
                        Ok(Refreshed::Rebuilt | Refreshed::Described) => {}
                        Ok(Refreshed::NoData) => return Err(no_such_key()),
                        // Another host replaced or deleted the data since it was opened.
                        Err(e) if e.is_stale() && stale.pause(deadline) => rounds -= 1,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(StoreError::Busy(LockError::Timeout {
            path: meta_rel,
            what: "read",
            kind: crate::platform::LockKind::Shared,
        }))
    }

    /// The details of `bucket/key` (its lock is taken and released).
    pub fn head(&self, bucket: &str, key: &str, cond: &ReadConditions) -> Result<ObjectInfo> {
        self.get(bucket, key, cond).map(ObjectReader::into_info)
    }

    /// Rebuilds missing, damaged or stale metadata from the data file (real MD5, content type
    /// from the extension, other stored headers kept), under the exclusive lock.
    fn refresh(&self, bucket: &str, key: &str) -> Result<Refreshed> {
        self.rebuild_metadata(bucket, key, false)
    }

    /// Rebuilds the metadata of `bucket/key` from its data under the exclusive lock: only
    /// when it does not describe the data, or always with `force` (fsck found an ETag that
    /// does not match the bytes).
    pub(crate) fn rebuild_metadata(
        &self,
        bucket: &str,
        key: &str,
        force: bool,
    ) -> Result<Refreshed> {
        let meta_dir = layout::meta_dir(bucket, key);
        let meta_rel = layout::meta(bucket, key);
        let data_rel = layout::data(bucket, key);
        // A name this client still caches for data another host deleted must not leave a
        // record (and its directories) behind: the data is opened before anything is made,
        // and again under the lock, since it may be replaced until then.
        match self.root.open(&data_rel, OpenMode::Read) {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(Refreshed::NoData),
            Err(e) => return Err(StoreError::io("open", &data_rel)(e)),
        }
        match self.make_dirs(&meta_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotADirectory => {
                return Err(StoreError::KeyConflict {
                    bucket: bucket.into(),
                    key: key.into(),
                    kind: Conflict::MetadataBlocked,
                })
            }
            Err(e) => return Err(StoreError::io("create", &meta_dir)(e)),
        }
        let guard = match self.locks.write(&meta_rel, Create::Yes) {
            Ok(g) => g,
            Err(LockError::NotFound { .. }) => return Ok(Refreshed::Described),
            Err(e) => return Err(e.into()),
        };
        let old = read_record(guard.file(), &meta_rel);
        let data = match self.root.open(&data_rel, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if is_not_found(&e) => {
                self.discard_lock_file(&guard, bucket, key);
                return Ok(Refreshed::NoData);
            }
            Err(e) => return Err(StoreError::io("open", &data_rel)(e)),
        };
        let st = platform::stat_file(&data).map_err(StoreError::io("stat", &data_rel))?;
        if st.kind != FileKind::File || (!force && old.as_ref().is_some_and(|r| r.describes(&st))) {
            return Ok(Refreshed::Described);
        }
        let digests =
            io::hash_range(&data, 0, st.size, &[]).map_err(StoreError::io("read", &data_rel))?;
        let after = platform::stat_file(&data).map_err(StoreError::io("stat", &data_rel))?;
        if after != st {
            // Still being written by a tool outside nasgate: the caller looks again.
            return Ok(Refreshed::Described);
        }
        let mut m = old.map(|r| user_and_standard(&r.meta)).unwrap_or_default();
        m.entry("content-type".into())
            .or_insert_with(|| meta::content_type_for(key).to_string());
        m.insert("etag".into(), digests.md5_hex());
        let record = FsJson::new(m, Stamp::of(&st));
        self.replace_record(&guard, &meta_rel, &record)?;
        Ok(Refreshed::Rebuilt)
    }

    /// Replaces fs.json while holding its exclusive lock.
    pub(super) fn replace_record(
        &self,
        _held: &WriteGuard,
        meta_rel: &Path,
        record: &FsJson,
    ) -> Result<()> {
        let mut t = self.staged_record(record)?;
        t.place(meta_rel)
            .map_err(StoreError::io("rename", meta_rel))?;
        if self.durable() {
            if let Some(dir) = meta_rel.parent() {
                self.root
                    .sync_dir(dir)
                    .map_err(StoreError::io("fsync", dir))?;
            }
        }
        Ok(())
    }

    /// Deletes `bucket/key` (a missing key is no error) and prunes directories it leaves
    /// empty.
    pub fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.check_names(bucket, key)?;
        let data_rel = layout::data(bucket, key);
        if layout::is_dir_key(key) {
            return match self.root.remove_dir(&data_rel) {
                Ok(()) => {
                    self.remove_directory_record(bucket, key);
                    if let Some(p) = data_rel.parent() {
                        self.prune_data(bucket, p);
                    }
                    Ok(())
                }
                // Still holding objects: the marker goes, the keys below it stay.
                Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => {
                    self.remove_directory_record(bucket, key);
                    Ok(())
                }
                // Missing or not a directory: no directory object.
                Err(_) => Ok(()),
            };
        }
        self.remove_object(bucket, key, Prune::Yes)
    }

    /// Removes the object file `bucket/key` and its metadata under the exclusive lock; with
    /// `Prune::Yes` also the data directories it leaves empty (S3 has no empty directories,
    /// but a POSIX tool that removes a file expects its directory to stay).
    pub(super) fn remove_object(&self, bucket: &str, key: &str, prune: Prune) -> Result<()> {
        let data_rel = layout::data(bucket, key);
        let meta_rel = layout::meta(bucket, key);
        let meta_dir = layout::meta_dir(bucket, key);
        let has_data = matches!(self.root.stat(&data_rel), Ok(st) if st.kind == FileKind::File);
        let has_meta = self.root.stat(&meta_rel).is_ok();
        if !has_data && !has_meta {
            return Ok(());
        }
        for _ in 0..RETRIES {
            // As in publish: the directory is made only when the lock file needs it.
            let guard = match self.locks.write(&meta_rel, Create::Yes) {
                Ok(g) => g,
                Err(LockError::NotFound { .. }) => {
                    self.make_dirs(&meta_dir)
                        .map_err(StoreError::io("create", &meta_dir))?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            // Data first: a crash after it leaves orphaned metadata (invisible), never an
            // object that comes back.
            match self.root.remove_file(&data_rel) {
                Ok(()) => {}
                Err(e) if is_not_found(&e) || e.kind() == ErrorKind::IsADirectory => {}
                Err(e) => return Err(StoreError::io("delete", &data_rel)(e)),
            }
            crash_point("delete.data-removed");
            match self.root.remove_file(&meta_rel) {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(StoreError::io("delete", &meta_rel)(e)),
            }
            drop(guard);
            if let Some(p) = data_rel.parent() {
                if self.durable() {
                    let _ = self.root.sync_dir(p);
                }
                if prune == Prune::Yes {
                    self.prune_data(bucket, p);
                }
            }
            self.prune(&meta_dir, &layout::bucket_meta(bucket));
            return Ok(());
        }
        Err(StoreError::Busy(LockError::Timeout {
            path: meta_rel,
            what: "delete",
            kind: crate::platform::LockKind::Exclusive,
        }))
    }

    /// Copies `src` to `dst` on the share (in the kernel where it can), with the source's
    /// metadata or a replacement.
    pub fn copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        options: &CopyOptions,
    ) -> Result<ObjectInfo> {
        // The source's name first: a bad one must not pass as a directory-object copy below.
        layout::check_key(src_key)?;
        self.check_names(dst_bucket, dst_key)?;
        if layout::is_dir_key(src_key) || layout::is_dir_key(dst_key) {
            return Err(StoreError::InvalidRequest(
                "directory objects cannot be copied",
            ));
        }
        if src_bucket == dst_bucket && src_key == dst_key {
            return self.copy_onto_itself(src_bucket, src_key, options);
        }
        let reader = self.get(src_bucket, src_key, &options.source)?;
        let src = reader.info().clone();
        let Some(from) = reader.file() else {
            return Err(StoreError::InvalidRequest(
                "directory objects cannot be copied",
            ));
        };
        let temp = TempFile::create(self)?;
        let (etag, checksums) = if src.etag.contains('-') {
            // A multipart ETag does not describe the bytes; a plain copy gets a plain MD5.
            let d = io::copy_hashed(from, 0, src.size, temp.file(), &[])
                .map_err(StoreError::io("copy", temp.path()))?;
            (d.md5_hex(), BTreeMap::new())
        } else {
            let n = io::copy(from, 0, src.size, temp.file())
                .map_err(StoreError::io("copy", temp.path()))?;
            if n != src.size {
                return Err(StoreError::Io {
                    op: "copy",
                    path: temp.path().to_path_buf(),
                    source: std::io::Error::new(ErrorKind::UnexpectedEof, "source shrank"),
                });
            }
            let sums = src
                .checksums
                .iter()
                .map(|c| (c.algorithm.name().to_string(), c.value.clone()))
                .collect();
            (src.etag.clone(), sums)
        };
        // Release the source before taking the destination's lock: two opposite copies
        // must not hold one lock each while waiting for the other.
        drop(reader);
        temp.sync()?;
        let mut m = match &options.metadata {
            Some(m) => m.clone(),
            None => user_and_standard(&src.meta),
        };
        apply_tags(&mut m, options.tags.as_ref(), src.tags());
        m.insert("etag".into(), etag);
        self.publish(
            dst_bucket,
            dst_key,
            temp,
            m,
            Vec::new(),
            checksums,
            &options.condition,
        )
    }

    fn copy_onto_itself(
        &self,
        bucket: &str,
        key: &str,
        options: &CopyOptions,
    ) -> Result<ObjectInfo> {
        let Some(new_meta) = &options.metadata else {
            return Err(StoreError::InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        };
        self.rewrite_record(bucket, key, &options.source, |record| {
            let etag = record.meta.get("etag").cloned().unwrap_or_default();
            let old_tags = record.meta.get(meta::TAGGING).cloned();
            record.meta = new_meta.clone();
            apply_tags(&mut record.meta, options.tags.as_ref(), old_tags.as_deref());
            record.meta.insert("etag".into(), etag);
        })
    }

    /// Changes the metadata record of an existing object under its exclusive lock, keeping
    /// the data (and so the stamp) as it is.
    fn rewrite_record(
        &self,
        bucket: &str,
        key: &str,
        cond: &ReadConditions,
        change: impl Fn(&mut FsJson),
    ) -> Result<ObjectInfo> {
        let meta_rel = layout::meta(bucket, key);
        let data_rel = layout::data(bucket, key);
        if layout::is_dir_key(key) {
            return Err(StoreError::InvalidRequest(
                "directory objects carry no metadata",
            ));
        }
        for _ in 0..RETRIES {
            // Makes sure a record describing the data exists.
            self.head(bucket, key, cond)?;
            let guard = match self.locks.write(&meta_rel, Create::No) {
                Ok(g) => g,
                Err(LockError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let st = match self.root.stat(&data_rel) {
                Ok(st) if st.kind == FileKind::File => st,
                Ok(_) => continue,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(StoreError::io("stat", &data_rel)(e)),
            };
            let Some(mut record) = read_record(guard.file(), &meta_rel) else {
                continue;
            };
            // A pending ETag stays pending: the change keeps the data's stamp.
            if !record.matches_data(&st) {
                continue;
            }
            change(&mut record);
            if record.nasgate.is_none() {
                record.nasgate = Some(Stamp::of(&st));
            }
            self.replace_record(&guard, &meta_rel, &record)?;
            self.listed.lock().remove(&data_rel);
            return Ok(ObjectInfo::from_record(bucket, key, &st, &record));
        }
        Err(StoreError::Busy(LockError::Timeout {
            path: meta_rel,
            what: "metadata update",
            kind: crate::platform::LockKind::Exclusive,
        }))
    }

    /// Sets (Some) or removes (None) the object's URL-encoded tag set.
    pub fn set_tags(&self, bucket: &str, key: &str, tags: Option<&str>) -> Result<()> {
        self.check_names(bucket, key)?;
        self.rewrite_record(
            bucket,
            key,
            &ReadConditions::default(),
            |record| match tags {
                Some(t) if !t.is_empty() => {
                    record.meta.insert(meta::TAGGING.into(), t.to_string());
                }
                _ => {
                    record.meta.remove(meta::TAGGING);
                }
            },
        )
        .map(|_| ())
    }

    /// Lists one page of `bucket` in S3 order, with each object's details.
    pub fn list(&self, bucket: &str, query: &ListQuery) -> Result<ObjectPage> {
        self.head_bucket(bucket)?;
        let tree = BucketTree {
            store: self,
            bucket,
        };
        let page =
            list::list_page(&tree, query).map_err(StoreError::io("list", Path::new(bucket)))?;
        let mut objects = Vec::with_capacity(page.keys.len());
        // Keys of a page come directory by directory: one open directory serves its run.
        let mut dir: Option<(PathBuf, platform::Dir)> = None;
        for key in &page.keys {
            if let Some(info) = self.listed(bucket, key, &mut dir)? {
                objects.push(info);
            }
        }
        Ok(ObjectPage {
            objects,
            common_prefixes: page.common_prefixes,
            is_truncated: page.is_truncated,
            next: page.next_start_after,
        })
    }

    /// Details of a listed key without taking its lock where the record can be trusted;
    /// None if it vanished meanwhile.
    fn listed(
        &self,
        bucket: &str,
        key: &str,
        dir: &mut Option<(PathBuf, platform::Dir)>,
    ) -> Result<Option<ObjectInfo>> {
        let data_rel = layout::data(bucket, key);
        let st = match self.stat_listed(&data_rel, dir) {
            Ok(st) => st,
            Err(e) if is_not_found(&e) => return Ok(None),
            // The directory handle or the entry was removed by another host after this
            // client resolved it: look again by path; still stale means it is gone.
            Err(e) if platform::is_stale(&e) => {
                *dir = None;
                match self.root.stat(&data_rel) {
                    Ok(st) => st,
                    Err(e) if is_not_found(&e) || platform::is_stale(&e) => return Ok(None),
                    Err(e) => return Err(StoreError::io("stat", &data_rel)(e)),
                }
            }
            Err(e) => return Err(StoreError::io("stat", &data_rel)(e)),
        };
        if layout::is_dir_key(key) {
            // Directory objects: size 0 and the empty ETag, nothing to cache.
            return self.listed_uncached(bucket, key, &st);
        }
        let slim = |st: &Stat, etag: String| ObjectInfo {
            bucket: bucket.into(),
            key: key.into(),
            size: st.size,
            modified: st.modified(),
            etag,
            meta: BTreeMap::new(),
            parts: Vec::new(),
            checksums: Vec::new(),
        };
        let cached = self.listed.lock().get(&data_rel, &st);
        if let Some(etag) = cached {
            return Ok(Some(slim(&st, etag)));
        }
        let Some(info) = self.listed_uncached(bucket, key, &st)? else {
            return Ok(None);
        };
        self.listed.lock().insert(&data_rel, &st, &info.etag);
        Ok(Some(slim(&st, info.etag)))
    }

    /// Stats `rel` through an open handle on its directory, reusing the one in `dir` when it
    /// is the same directory.
    fn stat_listed(
        &self,
        rel: &Path,
        dir: &mut Option<(PathBuf, platform::Dir)>,
    ) -> std::io::Result<Stat> {
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return self.root.stat(rel);
        };
        // Compared as bytes: `Path`'s own equality walks both paths component by component.
        if dir
            .as_ref()
            .is_none_or(|(p, _)| p.as_os_str() != parent.as_os_str())
        {
            *dir = Some((parent.to_path_buf(), self.root.dir(parent)?));
        }
        match dir {
            Some((_, d)) => d.stat(name),
            None => self.root.stat(rel),
        }
    }

    fn listed_uncached(&self, bucket: &str, key: &str, st: &Stat) -> Result<Option<ObjectInfo>> {
        let st = *st;
        if layout::is_dir_key(key) {
            return Ok((st.kind == FileKind::Dir).then(|| ObjectInfo::directory(bucket, key, &st)));
        }
        if st.kind != FileKind::File {
            return Ok(None);
        }
        let meta_rel = layout::meta(bucket, key);
        if let Ok(bytes) = self.locks.peek(&meta_rel) {
            if let Ok(Some(record)) = FsJson::parse(&bytes) {
                if record.describes(&st) {
                    return Ok(Some(ObjectInfo::from_record(bucket, key, &st, &record)));
                }
            }
        }
        match self.head(bucket, key, &ReadConditions::default()) {
            Ok(info) => Ok(Some(info)),
            Err(StoreError::NoSuchKey { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A bucket's data tree as the lister reads it: hidden names filtered, and any path through
/// a hidden directory reported as missing.
struct BucketTree<'a> {
    store: &'a Store,
    bucket: &'a str,
}

impl Tree for BucketTree<'_> {
    fn entries(&self, dir: &str) -> std::io::Result<Vec<list::DirEntry>> {
        if dir.split('/').any(layout::is_hidden) {
            return Err(ErrorKind::NotFound.into());
        }
        let rel = if dir.is_empty() {
            Path::new(self.bucket).to_path_buf()
        } else {
            Path::new(self.bucket).join(dir)
        };
        let mut out = Vec::new();
        let entries = match self.store.root.read_dir(&rel) {
            // Removed (pruned) by another host after this client resolved the name: look
            // again by path once; still stale means the directory is gone.
            Err(e) if platform::is_stale(&e) => self.store.root.read_dir(&rel),
            r => r,
        };
        let entries = entries.map_err(|e| {
            // A prefix that runs through a file names no directory: nothing to list there.
            if e.kind() == ErrorKind::NotADirectory || platform::is_stale(&e) {
                std::io::Error::from(ErrorKind::NotFound)
            } else {
                e
            }
        })?;
        for e in entries {
            let Some(name) = e.name.to_str() else {
                continue;
            };
            if layout::is_hidden(name) {
                continue;
            }
            let kind = match e.kind {
                Some(k) => k,
                None => match self.store.root.stat(&rel.join(name)) {
                    Ok(st) => st.kind,
                    Err(_) => continue,
                },
            };
            let kind = match kind {
                FileKind::File => list::EntryKind::File,
                FileKind::Dir => list::EntryKind::Dir,
                FileKind::Other => continue,
            };
            out.push(list::DirEntry {
                name: name.to_string(),
                kind,
            });
        }
        Ok(out)
    }
}
