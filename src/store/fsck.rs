//! Checking a share's objects against their metadata, and repairing what can safely be
//! repaired while instances keep serving (every repair takes the same locks a write does).

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::platform::FileKind;

use super::checksum;
use super::layout;
use super::meta::FsJson;
use super::{io, Result, Store, StoreError};

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// Data without fs.json (a file dropped onto the share, or a crash before metadata).
    MissingMetadata,
    /// fs.json that cannot be parsed.
    CorruptMetadata,
    /// fs.json written for another version of the data (size, mtime or inode differ).
    StaleMetadata,
    /// fs.json whose ETag does not match the data's MD5, or whose parts do not add up.
    EtagMismatch,
    /// fs.json without data.
    OrphanedMetadata,
    /// A multipart upload older than the expiry, or one whose record is unreadable.
    AbandonedUpload,
    /// Staging files of an instance that is gone.
    TempDebris,
}

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What is wrong.
    pub problem: Problem,
    /// Where, relative to the share.
    pub path: String,
    /// Details for the operator.
    pub detail: String,
    /// Whether `--repair` fixed it.
    pub repaired: bool,
}

/// The outcome of a check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Buckets walked.
    pub buckets: u64,
    /// Objects checked.
    pub objects: u64,
    /// Bytes hashed to verify ETags.
    pub bytes_verified: u64,
    /// Problems found.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether nothing is left to fix.
    pub fn clean(&self) -> bool {
        self.findings.iter().all(|f| f.repaired)
    }
}

/// How to check.
#[derive(Debug, Clone, Copy)]
pub struct FsckOptions {
    /// Fix what can be fixed.
    pub repair: bool,
    /// Uploads older than this count as abandoned.
    pub upload_expiry: Duration,
}

impl Store {
    /// Walks the whole share; `progress` is called with the number of objects checked so far.
    pub fn fsck(&self, options: FsckOptions, mut progress: impl FnMut(u64)) -> Result<Report> {
        let mut report = Report::default();
        for bucket in self.list_buckets()? {
            report.buckets += 1;
            self.fsck_tree(
                &bucket.name,
                Path::new(""),
                options,
                &mut report,
                &mut progress,
            )?;
            self.fsck_orphans(&bucket.name, Path::new(""), options, &mut report)?;
        }
        self.fsck_uploads(options, &mut report)?;
        self.fsck_tmp(options, &mut report)?;
        Ok(report)
    }

    fn fsck_tree(
        &self,
        bucket: &str,
        dir: &Path,
        options: FsckOptions,
        report: &mut Report,
        progress: &mut impl FnMut(u64),
    ) -> Result<()> {
        let rel = Path::new(bucket).join(dir);
        let mut entries = match self.root.read_dir(&rel) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io("list", &rel)(e)),
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for e in entries {
            let Some(name) = e.name.to_str() else {
                continue;
            };
            if layout::is_hidden(name) {
                continue;
            }
            let child = dir.join(name);
            let kind = match e.kind {
                Some(k) => k,
                None => match self.root.stat(&rel.join(name)) {
                    Ok(st) => st.kind,
                    Err(_) => continue,
                },
            };
            match kind {
                FileKind::Dir => self.fsck_tree(bucket, &child, options, report, progress)?,
                FileKind::File => {
                    let Some(key) = child.to_str() else { continue };
                    if layout::check_key(key).is_err() {
                        continue;
                    }
                    self.fsck_object(bucket, key, options, report)?;
                    report.objects += 1;
                    progress(report.objects);
                }
                FileKind::Other => {}
            }
        }
        Ok(())
    }

    fn fsck_object(
        &self,
        bucket: &str,
        key: &str,
        options: FsckOptions,
        report: &mut Report,
    ) -> Result<()> {
        let data_rel = layout::data(bucket, key);
        let meta_rel = layout::meta(bucket, key);
        let st = match self.root.stat(&data_rel) {
            Ok(st) => st,
            Err(_) => return Ok(()),
        };
        let problem = match self.locks.peek(&meta_rel) {
            Err(crate::lock::LockError::NotFound { .. }) => {
                Some((Problem::MissingMetadata, "no fs.json".to_string()))
            }
            Err(e) => Some((Problem::CorruptMetadata, e.to_string())),
            Ok(bytes) => match FsJson::parse(&bytes) {
                Err(e) => Some((Problem::CorruptMetadata, e.to_string())),
                Ok(None) => Some((Problem::MissingMetadata, "empty fs.json".to_string())),
                // Published with its ETag to be computed from the data: not a fault.
                Ok(Some(record)) if record.pending_for(&st) => None,
                Ok(Some(record)) if !record.describes(&st) => Some((
                    Problem::StaleMetadata,
                    "written for other data (size, mtime or inode differ)".to_string(),
                )),
                Ok(Some(record)) => self.verify_etag(&data_rel, &st, &record, report)?,
            },
        };
        if let Some((problem, detail)) = problem {
            // Only a record written now is a repair: data gone meanwhile, or a record someone
            // else fixed first, is not.
            let repaired = options.repair
                && matches!(
                    self.rebuild_metadata(bucket, key, problem == Problem::EtagMismatch),
                    Ok(super::object::Refreshed::Rebuilt)
                );
            report.findings.push(Finding {
                problem,
                path: format!("{bucket}/{key}"),
                detail,
                repaired,
            });
        }
        Ok(())
    }

    /// Hashes the data and compares with the recorded ETag (or, for multipart ETags, checks
    /// that the recorded part sizes add up to the data's size).
    fn verify_etag(
        &self,
        data_rel: &Path,
        st: &crate::platform::Stat,
        record: &FsJson,
        report: &mut Report,
    ) -> Result<Option<(Problem, String)>> {
        let Some(etag) = record.etag() else {
            return Ok(Some((
                Problem::MissingMetadata,
                "fs.json has no ETag".into(),
            )));
        };
        if let Some((_, n)) = etag.split_once('-') {
            let parts_total: u64 = record.parts.iter().map(|p| p.size).sum();
            let count_ok = n
                .parse::<usize>()
                .is_ok_and(|n| record.parts.is_empty() || n == record.parts.len());
            if !count_ok || (!record.parts.is_empty() && parts_total != st.size) {
                return Ok(Some((
                    Problem::EtagMismatch,
                    format!("multipart ETag {etag} with parts totalling {parts_total} bytes for {} bytes of data", st.size),
                )));
            }
            return Ok(None);
        }
        let f = self
            .root
            .open(data_rel, crate::platform::OpenMode::Read)
            .map_err(StoreError::io("open", data_rel))?;
        let d = io::hash_range(&f, 0, st.size, &[] as &[checksum::ChecksumAlgorithm])
            .map_err(StoreError::io("read", data_rel))?;
        report.bytes_verified += st.size;
        if d.md5_hex() != etag {
            return Ok(Some((
                Problem::EtagMismatch,
                format!("recorded ETag {etag}, data MD5 {}", d.md5_hex()),
            )));
        }
        Ok(None)
    }

    /// Metadata files in `.minio.sys/buckets/<bucket>/` whose object is gone.
    fn fsck_orphans(
        &self,
        bucket: &str,
        dir: &Path,
        options: FsckOptions,
        report: &mut Report,
    ) -> Result<()> {
        let base = layout::bucket_meta(bucket);
        let rel = if dir.as_os_str().is_empty() {
            base.clone()
        } else {
            base.join(dir)
        };
        let entries = match self.root.read_dir(&rel) {
            Ok(e) => e,
            Err(_) => return Ok(()),
        };
        for e in entries {
            let Some(name) = e.name.to_str() else {
                continue;
            };
            let child = dir.join(name);
            let kind = e
                .kind
                .or_else(|| self.root.stat(&rel.join(name)).ok().map(|s| s.kind));
            if name == "fs.json" && kind == Some(FileKind::File) {
                let Some(key) = dir.to_str().filter(|k| !k.is_empty()) else {
                    continue;
                };
                let has_data = matches!(self.root.stat(&layout::data(bucket, key)), Ok(st) if st.kind == FileKind::File);
                if !has_data {
                    let repaired = options.repair && self.remove_orphan(bucket, key).is_ok();
                    report.findings.push(Finding {
                        problem: Problem::OrphanedMetadata,
                        path: format!("{}", layout::meta(bucket, key).display()),
                        detail: format!("no object {bucket}/{key}"),
                        repaired,
                    });
                }
            } else if name == layout::SYS && kind == Some(FileKind::Dir) {
                // A directory object's record: orphaned once its directory is gone.
                let Some(dir_key) = dir.to_str().filter(|k| !k.is_empty()) else {
                    continue;
                };
                let key = format!("{dir_key}/");
                let has_dir = matches!(self.root.stat(&layout::data(bucket, &key)), Ok(st) if st.kind == FileKind::Dir);
                if !has_dir {
                    let repaired = options.repair && {
                        self.remove_directory_record(bucket, &key);
                        true
                    };
                    report.findings.push(Finding {
                        problem: Problem::OrphanedMetadata,
                        path: format!("{}", layout::dir_meta(bucket, &key).display()),
                        detail: format!("no directory object {bucket}/{key}"),
                        repaired,
                    });
                }
            } else if kind == Some(FileKind::Dir) {
                self.fsck_orphans(bucket, &child, options, report)?;
            }
        }
        Ok(())
    }

    fn fsck_uploads(&self, options: FsckOptions, report: &mut Report) -> Result<()> {
        let cutoff = SystemTime::now()
            .checked_sub(options.upload_expiry)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let old: Vec<_> = self
            .all_uploads()?
            .into_iter()
            .filter(|u| u.initiated < cutoff)
            .collect();
        let repaired =
            options.repair && !old.is_empty() && self.expire_uploads(options.upload_expiry).is_ok();
        for u in old {
            report.findings.push(Finding {
                problem: Problem::AbandonedUpload,
                path: format!(
                    "{}",
                    layout::upload(&u.bucket, &u.key, &u.upload_id).display()
                ),
                detail: format!(
                    "upload of {}/{} started {}",
                    u.bucket,
                    u.key,
                    crate::time::iso8601(u.initiated)
                ),
                repaired,
            });
        }
        Ok(())
    }

    fn fsck_tmp(&self, options: FsckOptions, report: &mut Report) -> Result<()> {
        let dead = self.dead_tmp_dirs()?;
        let repaired = options.repair && !dead.is_empty() && self.sweep_tmp().is_ok();
        for d in dead {
            report.findings.push(Finding {
                problem: Problem::TempDebris,
                path: d.display().to_string(),
                detail: "staging files of an instance that is not running".into(),
                repaired,
            });
        }
        Ok(())
    }

    /// Removes fs.json of `bucket/key` under its exclusive lock if there still is no data.
    fn remove_orphan(&self, bucket: &str, key: &str) -> Result<()> {
        let meta_rel = layout::meta(bucket, key);
        let guard = self.locks.write(&meta_rel, crate::lock::Create::No)?;
        let has_data = matches!(self.root.stat(&layout::data(bucket, key)), Ok(st) if st.kind == FileKind::File);
        if !has_data {
            self.root
                .remove_file(&meta_rel)
                .map_err(StoreError::io("remove", &meta_rel))?;
        }
        drop(guard);
        self.prune(&layout::meta_dir(bucket, key), &layout::bucket_meta(bucket));
        Ok(())
    }
}
