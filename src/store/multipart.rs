//! Multipart uploads, kept on the share so that any instance may take any part or complete
//! the upload: `.minio.sys/multipart/<sha256(bucket/key)>/<upload-id>/` holds the upload's
//! fs.json (also its lock file) and the parts, named `<5-digit number>.<etag>.<size>`.
//!
//! Parts are staged in this instance's temp directory and renamed into the upload directory
//! under the upload's exclusive lock; completion assembles them (in the kernel where it can)
//! into a staging file under the same lock and publishes it like a put, then removes the
//! upload. A crashed instance leaves at most a locked staging file, which a sweep removes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::lock::{Create, LockError, WriteGuard};
use crate::platform::OpenMode;

use super::checksum::{self, Checksum, ChecksumAlgorithm, Digests};
use super::layout;
use super::meta::{FsJson, FsPart, Stamp, UploadRecord};
use super::object::{ObjectInfo, WriteCondition};
use super::temp::{Expect, Staged, TempFile};
use super::{io, Result, Store, StoreError};

/// Smallest size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// One in-progress upload as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// When it was created.
    pub initiated: SystemTime,
    /// Flexible checksum algorithm requested at creation.
    pub checksum: Option<ChecksumAlgorithm>,
}

/// One stored part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// Part number.
    pub number: u32,
    /// The part's ETag (MD5 of its bytes), unquoted.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was stored.
    pub modified: SystemTime,
}

/// A part being received: staged, hashed, then moved into the upload directory.
pub struct PartUpload {
    bucket: String,
    key: String,
    upload_id: String,
    number: u32,
    staged: Staged,
    expect_size: Option<u64>,
    content_md5: Option<[u8; 16]>,
    expected: Vec<Checksum>,
}

impl PartUpload {
    /// Appends body bytes.
    pub fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.staged.write(buf)
    }

    /// Appends body bytes without copying them for the hasher.
    pub fn write_bytes(&mut self, buf: bytes::Bytes) -> Result<()> {
        self.staged.write_bytes(buf)
    }

    /// Adds a checksum the part must have, known only after the body (an HTTP trailer); its
    /// algorithm must have been requested when the part began.
    pub fn expect_checksum(&mut self, c: Checksum) {
        self.expected.push(c);
    }

    /// Verifies the part and stores it, replacing an earlier part with the same number.
    pub fn finish(self, store: &Store) -> Result<(PartInfo, Digests)> {
        let (mut temp, digests) = self.staged.finish(&Expect {
            size: self.expect_size,
            content_md5: self.content_md5,
            checksums: &self.expected,
        })?;
        temp.sync()?;
        let etag = digests.md5_hex();
        let dir = layout::upload(&self.bucket, &self.key, &self.upload_id);
        let _guard = store.lock_upload(&self.bucket, &self.key, &self.upload_id)?;
        let name = layout::part_name(self.number, &etag, digests.len);
        for old in store.part_files(&dir)? {
            if old.0 == self.number && old.3 != name {
                let _ = store.root.remove_file(&dir.join(&old.3));
            }
        }
        let rel = dir.join(&name);
        temp.place(&rel).map_err(StoreError::io("rename", &rel))?;
        if store.durable() {
            store
                .root
                .sync_dir(&dir)
                .map_err(StoreError::io("fsync", &dir))?;
        }
        Ok((
            PartInfo {
                number: self.number,
                etag,
                size: digests.len,
                modified: SystemTime::now(),
            },
            digests,
        ))
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A fresh upload id: a UUID whose first half is the creation time in ns (big-endian, so
/// the ids of one key sort in the order they were created, as S3 lists them) and whose second
/// half is random.
fn upload_id(initiated_ns: i64) -> String {
    let random = uuid::Uuid::new_v4().as_u64_pair().1;
    uuid::Uuid::from_u64_pair(initiated_ns.max(0) as u64, random).to_string()
}

fn from_ns(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)
}

impl Store {
    /// Starts a multipart upload of `bucket/key` with the object's future metadata.
    pub fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: BTreeMap<String, String>,
        checksum: Option<ChecksumAlgorithm>,
    ) -> Result<String> {
        self.check_names(bucket, key)?;
        if layout::is_dir_key(key) {
            return Err(StoreError::InvalidRequest(
                "a key ending in '/' is a directory and cannot take a multipart upload",
            ));
        }
        let initiated_ns = now_ns();
        let id = upload_id(initiated_ns);
        let dir = layout::upload(bucket, key, &id);
        self.make_dirs(&dir)
            .map_err(StoreError::io("create", &dir))?;
        let mut record = FsJson::new(
            meta,
            Stamp {
                ino: 0,
                size: 0,
                mtime_ns: 0,
                checksums: BTreeMap::new(),
            },
        );
        record.nasgate = None;
        record.upload = Some(UploadRecord {
            bucket: bucket.into(),
            key: key.into(),
            initiated_ns,
            checksum: checksum.map(|c| c.name().to_string()),
        });
        let t = {
            use std::io::Write;
            let t = TempFile::create(self)?;
            let mut f = t.file();
            f.write_all(&record.to_bytes())
                .map_err(StoreError::io("write", t.path()))?;
            t.sync()?;
            t
        };
        let mut t = t;
        let rel = dir.join("fs.json");
        t.place(&rel).map_err(StoreError::io("rename", &rel))?;
        if self.durable() {
            self.root
                .sync_dir(&dir)
                .map_err(StoreError::io("fsync", &dir))?;
        }
        Ok(id)
    }

    fn no_such_upload(id: &str) -> StoreError {
        StoreError::NoSuchUpload(id.to_string())
    }

    /// Takes the upload's exclusive lock; `NoSuchUpload` if it is gone.
    fn lock_upload(&self, bucket: &str, key: &str, id: &str) -> Result<WriteGuard> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(Self::no_such_upload(id));
        }
        let rel = layout::upload(bucket, key, id).join("fs.json");
        match self.locks.write(&rel, Create::No) {
            Ok(g) => Ok(g),
            Err(LockError::NotFound { .. }) => Err(Self::no_such_upload(id)),
            Err(e) => Err(e.into()),
        }
    }

    fn upload_record(&self, guard: &WriteGuard, id: &str) -> Result<FsJson> {
        let mut buf = Vec::new();
        let mut f = guard.file();
        std::io::Seek::rewind(&mut f).map_err(StoreError::io("read", Path::new(id)))?;
        std::io::Read::read_to_end(&mut f, &mut buf)
            .map_err(StoreError::io("read", Path::new(id)))?;
        match FsJson::parse(&buf) {
            Ok(Some(r)) => Ok(r),
            _ => Err(Self::no_such_upload(id)),
        }
    }

    /// Stored parts of an upload directory: (number, etag, size, file name), by number.
    fn part_files(&self, dir: &Path) -> Result<Vec<(u32, String, u64, String)>> {
        let entries = match self.root.read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", dir)(e)),
        };
        let mut parts: Vec<_> = entries
            .into_iter()
            .filter_map(|e| {
                let name = e.name.to_str()?.to_string();
                let (n, etag, size) = layout::parse_part_name(&name)?;
                Some((n, etag, size, name))
            })
            .collect();
        parts.sort();
        Ok(parts)
    }

    /// Starts receiving part `number` of an upload.
    #[allow(clippy::too_many_arguments)]
    pub fn begin_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        size: Option<u64>,
        content_md5: Option<[u8; 16]>,
        requested: &[ChecksumAlgorithm],
        expected: Vec<Checksum>,
    ) -> Result<PartUpload> {
        self.check_names(bucket, key)?;
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(StoreError::InvalidRequest(
                "part numbers must be between 1 and 10000",
            ));
        }
        let upload_rel = layout::upload(bucket, key, upload_id).join("fs.json");
        if uuid::Uuid::parse_str(upload_id).is_err() || self.root.stat(&upload_rel).is_err() {
            return Err(Self::no_such_upload(upload_id));
        }
        let extra = super::temp::algorithms(requested, &expected);
        Ok(PartUpload {
            bucket: bucket.into(),
            key: key.into(),
            upload_id: upload_id.into(),
            number,
            staged: Staged::new(self, &extra)?,
            expect_size: size,
            content_md5,
            expected,
        })
    }

    /// The upload's details and its parts after `marker`, at most `max`; plus whether more
    /// follow.
    pub fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> Result<(UploadInfo, Vec<PartInfo>, bool)> {
        self.check_names(bucket, key)?;
        let guard = self.lock_upload(bucket, key, upload_id)?;
        let record = self.upload_record(&guard, upload_id)?;
        let info =
            upload_info(&record, upload_id).ok_or_else(|| Self::no_such_upload(upload_id))?;
        let dir = layout::upload(bucket, key, upload_id);
        let mut parts = Vec::new();
        let mut more = false;
        for (number, etag, size, name) in self.part_files(&dir)? {
            if number <= marker {
                continue;
            }
            if parts.len() == max {
                more = true;
                break;
            }
            let modified = self
                .root
                .stat(&dir.join(&name))
                .map(|s| s.modified())
                .unwrap_or(UNIX_EPOCH);
            parts.push(PartInfo {
                number,
                etag,
                size,
                modified,
            });
        }
        Ok((info, parts, more))
    }

    /// Abandons an upload and removes its parts.
    pub fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        self.check_names(bucket, key)?;
        let guard = self.lock_upload(bucket, key, upload_id)?;
        self.remove_upload(bucket, key, upload_id, guard)
    }

    fn remove_upload(&self, bucket: &str, key: &str, id: &str, guard: WriteGuard) -> Result<()> {
        let dir = layout::upload(bucket, key, id);
        // Parts first, fs.json (the lock file) last, so a concurrent part upload that already
        // holds a handle finds the upload gone when it next looks.
        for (_, _, _, name) in self.part_files(&dir)? {
            let _ = self.root.remove_file(&dir.join(name));
        }
        let removed = self.remove_tree(&dir);
        drop(guard);
        match removed {
            Ok(()) => {}
            // Windows keeps a deleted file's name until its last handle closes, and the lock
            // file was still open (ours, perhaps a waiter's): the upload is gone, its directory
            // may linger. Try again now that our handle is closed; what is still left is an
            // empty directory that a later prune or sweep removes.
            Err(StoreError::Io { ref source, .. })
                if cfg!(windows) && source.kind() == std::io::ErrorKind::DirectoryNotEmpty =>
            {
                if let Err(e) = self.remove_tree(&dir) {
                    tracing::debug!(error = %e, "upload directory left for a later sweep");
                }
            }
            Err(e) => return Err(e),
        }
        self.prune(&layout::uploads(bucket, key), &layout::multipart_root());
        Ok(())
    }

    /// Completes an upload from the listed parts (number, ETag) and publishes the object.
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        listed: &[(u32, String)],
        condition: &WriteCondition,
    ) -> Result<ObjectInfo> {
        self.check_names(bucket, key)?;
        if listed.is_empty() {
            return Err(StoreError::InvalidRequest(
                "you must specify at least one part",
            ));
        }
        if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(StoreError::InvalidPartOrder);
        }
        let guard = self.lock_upload(bucket, key, upload_id)?;
        let record = self.upload_record(&guard, upload_id)?;
        let dir = layout::upload(bucket, key, upload_id);
        let stored: BTreeMap<u32, (String, u64, String)> = self
            .part_files(&dir)?
            .into_iter()
            .map(|(n, e, s, name)| (n, (e, s, name)))
            .collect();
        let mut chosen = Vec::with_capacity(listed.len());
        for (i, (number, etag)) in listed.iter().enumerate() {
            let want = etag.trim().trim_matches('"').to_ascii_lowercase();
            let Some((have, size, name)) = stored.get(number) else {
                return Err(StoreError::InvalidPart(*number));
            };
            if *have != want {
                return Err(StoreError::InvalidPart(*number));
            }
            if i + 1 < listed.len() && *size < MIN_PART_SIZE {
                return Err(StoreError::EntityTooSmall(*number));
            }
            chosen.push((*number, have.clone(), *size, dir.join(name)));
        }
        let temp = TempFile::create(self)?;
        for (_, _, size, rel) in &chosen {
            let part = self
                .root
                .open(rel, OpenMode::Read)
                .map_err(StoreError::io("open", rel))?;
            let n = io::copy(&part, 0, *size, temp.file()).map_err(StoreError::io("copy", rel))?;
            if n != *size {
                return Err(StoreError::Corrupt {
                    path: rel.clone(),
                    why: format!("part holds {n} bytes, its name says {size}"),
                });
            }
        }
        temp.sync()?;
        let etags: Vec<&str> = chosen.iter().map(|c| c.1.as_str()).collect();
        let etag = checksum::multipart_etag(&etags).map_err(|e| StoreError::Corrupt {
            path: dir.clone(),
            why: e.to_string(),
        })?;
        let mut meta = record.meta.clone();
        meta.insert("etag".into(), etag);
        let parts = chosen
            .iter()
            .map(|(n, e, s, _)| FsPart {
                number: *n,
                etag: e.clone(),
                size: *s,
                actual_size: *s,
            })
            .collect();
        let info = self.publish(bucket, key, temp, meta, parts, BTreeMap::new(), condition)?;
        self.remove_upload(bucket, key, upload_id, guard)?;
        Ok(info)
    }

    /// Uploads in `bucket` whose key starts with `prefix`, ordered by key then initiation,
    /// after the (key, upload id) markers; at most `max`, plus whether more follow.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<UploadInfo>, bool)> {
        self.head_bucket(bucket)?;
        let mut all: Vec<UploadInfo> = self
            .all_uploads()?
            .into_iter()
            .filter(|u| u.bucket == bucket && u.key.starts_with(prefix))
            .collect();
        // Upload ids begin with their creation time, so id order is initiation order and a
        // page can resume after an id that is gone by the time the next page is asked for.
        all.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
        let after_marker = |u: &UploadInfo| match key_marker {
            None => true,
            Some(k) => match upload_id_marker {
                // With an upload-id marker, uploads of the marker key after that id follow.
                Some(id) if u.key == k => u.upload_id.as_str() > id,
                _ => u.key.as_str() > k,
            },
        };
        let rest: Vec<UploadInfo> = all.iter().filter(|u| after_marker(u)).cloned().collect();
        let more = rest.len() > max;
        Ok((rest.into_iter().take(max).collect(), more))
    }

    /// Every upload on the share.
    pub(crate) fn all_uploads(&self) -> Result<Vec<UploadInfo>> {
        let root = layout::multipart_root();
        let hashes = match self.root.read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", &root)(e)),
        };
        let mut out = Vec::new();
        for h in hashes {
            let hdir = root.join(&h.name);
            let Ok(ids) = self.root.read_dir(&hdir) else {
                continue;
            };
            for id in ids {
                let Some(id_str) = id.name.to_str() else {
                    continue;
                };
                let rel = hdir.join(id_str).join("fs.json");
                let Ok(bytes) = self.locks.peek(&rel) else {
                    continue;
                };
                if let Ok(Some(record)) = FsJson::parse(&bytes) {
                    if let Some(info) = upload_info(&record, id_str) {
                        out.push(info);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Removes uploads created more than `age` ago; returns how many.
    pub fn expire_uploads(&self, age: Duration) -> Result<usize> {
        let cutoff = SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH);
        self.remove_uploads_where(|u| u.initiated < cutoff)
    }

    /// Removes every upload into `bucket`, once the bucket is deleted: a bucket created later
    /// under the same name must not inherit them.
    pub(super) fn remove_bucket_uploads(&self, bucket: &str) -> Result<usize> {
        self.remove_uploads_where(|u| u.bucket == bucket)
    }

    /// Removes the uploads that `which` selects, each under its lock; returns how many.
    fn remove_uploads_where(&self, which: impl Fn(&UploadInfo) -> bool) -> Result<usize> {
        let mut removed = 0;
        for u in self.all_uploads()? {
            if !which(&u) {
                continue;
            }
            match self.lock_upload(&u.bucket, &u.key, &u.upload_id) {
                Ok(guard) => {
                    self.remove_upload(&u.bucket, &u.key, &u.upload_id, guard)?;
                    removed += 1;
                }
                Err(StoreError::NoSuchUpload(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

fn upload_info(record: &FsJson, id: &str) -> Option<UploadInfo> {
    let u = record.upload.as_ref()?;
    Some(UploadInfo {
        bucket: u.bucket.clone(),
        key: u.key.clone(),
        upload_id: id.to_string(),
        initiated: from_ns(u.initiated_ns),
        checksum: u.checksum.as_deref().and_then(ChecksumAlgorithm::parse),
    })
}
