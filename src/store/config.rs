//! Small configuration documents in the internal tree (users, bucket policies): read under
//! the shared lock, replaced by stage + exclusive lock + rename, and stamped so callers can
//! tell cheaply (one stat) whether another instance changed them.
//!
//! The document is its own lock file, as fs.json is for an object. An empty file is how a
//! lock file looks before its first document is renamed over it, so empty reads as absent.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::lock::{Create, LockError};
use crate::platform::{self, FileKind};

use super::{layout, temp::TempFile, Result, Store, StoreError};

/// Identity of one version of a document: a replaced file is a new inode, an edited one a
/// new size or mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Version {
    fn of(st: &platform::Stat) -> Version {
        Version {
            dev: st.id.dev,
            ino: st.id.ino,
            size: st.size,
            mtime_ns: st.mtime_ns,
        }
    }
}

/// Where a bucket's policy lives (MinIO FS mode's own place, so migrated shares keep theirs).
pub fn bucket_policy(bucket: &str) -> PathBuf {
    layout::bucket_meta(bucket).join("policy.json")
}

fn is_absent(e: &std::io::Error) -> bool {
    // A directory there is the metadata of an object named like the document.
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound
            | std::io::ErrorKind::IsADirectory
            | std::io::ErrorKind::NotADirectory
    )
}

/// The whole file by positional reads: a pooled read handle is shared by threads, so its
/// file offset must not be moved.
fn read_whole(file: &std::fs::File) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match platform::read_at(file, &mut chunk, buf.len() as u64)? {
            0 => return Ok(buf),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

impl Store {
    /// The current version of document `rel` (None: absent), by one stat.
    pub fn config_version(&self, rel: &Path) -> Result<Option<Version>> {
        match self.root.stat(rel) {
            Ok(st) if st.kind == FileKind::File && st.size > 0 => Ok(Some(Version::of(&st))),
            Ok(_) => Ok(None),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(StoreError::io("stat", rel)(e)),
        }
    }

    /// Reads document `rel` under its shared lock, with the version read.
    pub fn read_config(&self, rel: &Path) -> Result<Option<(Vec<u8>, Version)>> {
        match self.root.stat(rel) {
            Ok(st) if st.kind != FileKind::File => return Ok(None),
            Err(e) if is_absent(&e) => return Ok(None),
            _ => {}
        }
        let guard = match self.locks.read(rel, Create::No) {
            Ok(g) => g,
            Err(LockError::NotFound { .. }) => return Ok(None),
            Err(LockError::Io { source, .. }) if is_absent(&source) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let st = platform::stat_file(guard.file()).map_err(StoreError::io("stat", rel))?;
        let buf = read_whole(guard.file()).map_err(StoreError::io("read", rel))?;
        if buf.is_empty() {
            return Ok(None);
        }
        Ok(Some((buf, Version::of(&st))))
    }

    /// Replaces document `rel` with what `change` makes of its current content (None:
    /// absent), all under its exclusive lock so concurrent updates from any host apply one
    /// after the other. `change` returning None removes the document; an error leaves it
    /// untouched.
    pub fn update_config<E: From<StoreError>>(
        &self,
        rel: &Path,
        change: impl FnOnce(Option<&[u8]>) -> std::result::Result<Option<Vec<u8>>, E>,
    ) -> std::result::Result<(), E> {
        if let Some(dir) = rel.parent() {
            self.make_dirs(dir)
                .map_err(|e| E::from(StoreError::io("create", dir)(e)))?;
        }
        let guard = self
            .locks
            .write(rel, Create::Yes)
            .map_err(|e| E::from(e.into()))?;
        let current =
            read_whole(guard.file()).map_err(|e| E::from(StoreError::io("read", rel)(e)))?;
        let next = match change((!current.is_empty()).then_some(current.as_slice())) {
            Ok(n) => n,
            Err(e) => {
                if current.is_empty() {
                    // The lock file this call created: leave the share as it was.
                    let _ = self.root.remove_file(rel);
                }
                return Err(e);
            }
        };
        match next {
            Some(bytes) => {
                let mut t = TempFile::create(self)?;
                t.file()
                    .write_all(&bytes)
                    .map_err(|e| E::from(StoreError::io("write", t.path())(e)))?;
                t.sync()?;
                t.place(rel)
                    .map_err(|e| E::from(StoreError::io("rename", rel)(e)))?;
            }
            None => match self.root.remove_file(rel) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(E::from(StoreError::io("remove", rel)(e))),
            },
        }
        if self.durable() {
            if let Some(dir) = rel.parent() {
                self.root
                    .sync_dir(dir)
                    .map_err(|e| E::from(StoreError::io("fsync", dir)(e)))?;
            }
        }
        drop(guard);
        Ok(())
    }
}
