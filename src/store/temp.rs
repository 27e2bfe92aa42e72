//! Staging files in this instance's `tmp/<instance>/` directory: created, locked by their
//! writer for their whole life (so no sweep elsewhere takes them), and either renamed into
//! place or removed when dropped.

use std::fs::File;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use super::checksum::Hashers;
use crate::lock::ShareLock;
use crate::platform::{OpenMode, Root};

use super::{layout, Result, Store, StoreError};

/// A locked staging file that is removed unless it was renamed into place.
pub(crate) struct TempFile {
    root: Arc<Root>,
    /// The staging directory it is `name` in.
    staging: Arc<Root>,
    name: PathBuf,
    durable: bool,
    /// Its path from the share's root (for messages).
    rel: PathBuf,
    lock: Option<ShareLock>,
    placed: bool,
}

impl TempFile {
    /// Creates and locks a fresh staging file.
    pub(crate) fn create(store: &Store) -> Result<TempFile> {
        let name = PathBuf::from(uuid::Uuid::new_v4().to_string());
        let rel = layout::tmp(&store.instance).join(&name);
        let f = store
            .staging
            .open(&name, OpenMode::CreateNew)
            .map_err(StoreError::io("create", &rel))?;
        let lock = store
            .locks
            .hold_temp(f)
            .map_err(StoreError::io("lock", &rel))?;
        Ok(TempFile {
            root: store.root.clone(),
            staging: store.staging.clone(),
            name,
            durable: store.durable(),
            rel,
            lock: Some(lock),
            placed: false,
        })
    }

    /// The open staging file.
    pub(crate) fn file(&self) -> &File {
        match &self.lock {
            Some(l) => l.file(),
            None => unreachable!("the lock is only taken in drop"),
        }
    }

    /// Where it is now.
    pub(crate) fn path(&self) -> &Path {
        &self.rel
    }

    /// Renames it to `to` (atomically replacing what is there); the file is then no longer
    /// removed on drop.
    pub(crate) fn place(&mut self, to: &Path) -> std::io::Result<()> {
        let root = self.root.clone();
        self.place_in(&root, to)
    }

    /// Renames it to `to` beneath `dir`, a directory of the share already open.
    pub(crate) fn place_in(&mut self, dir: &Root, to: &Path) -> std::io::Result<()> {
        dir.rename_from(&self.staging, &self.name, to)?;
        self.placed = true;
        Ok(())
    }

    /// Flushes its contents to stable storage when the store is durable.
    pub(crate) fn sync(&self) -> Result<()> {
        if self.durable {
            self.file()
                .sync_all()
                .map_err(StoreError::io("fsync", &self.rel))?;
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.placed {
            let _ = self.staging.remove_file(&self.name);
        }
        drop(self.lock.take());
    }
}

/// A body streaming into a staging file, hashed on the way.
pub(crate) struct Staged {
    pub(crate) temp: TempFile,
    hashing: Hashing,
    /// Bytes written to the file.
    written: u64,
    /// Where the part of the file whose writeback has not been started begins.
    unflushed: u64,
}

/// A durable upload starts the writeback of every this many bytes as soon as they are
/// written, so the disk works while the body still arrives and the final fsync only waits
/// for the tail instead of the whole object.
pub(crate) const WRITEBACK_STEP: u64 = 4 << 20;

/// Bodies longer than this are hashed on a thread of their own while the next bytes are
/// written: MD5 alone runs at about the speed of a disk, so doing both in turn halves a
/// large upload's speed. Small bodies are not worth a thread.
const PIPE_AFTER: u64 = 1 << 20;

/// Bodies longer than this hand their MD5 to the shared lanes service (where it runs), which
/// costs no thread start: a hand-off per chunk, and concurrent 1 MiB uploads share the SIMD
/// lanes instead of each hashing on its own.
const LANES_AFTER: u64 = 64 << 10;

/// Hashing of a stream: inline while short, then in the shared lanes or on a thread of its own.
pub(super) enum Hashing {
    /// Hashed by the writer itself.
    Inline(Hashers),
    /// MD5 hashed by the shared lanes service beside other uploads; the CRCs, if any, by
    /// the writer.
    #[cfg(target_arch = "x86_64")]
    Lanes {
        md5: super::md5::lanes::Stream,
        rest: Hashers,
    },
    /// Hashed by a helper thread fed chunk by chunk.
    Piped {
        feed: std::sync::mpsc::SyncSender<bytes::Bytes>,
        hasher: std::thread::JoinHandle<Option<Hashers>>,
        len: u64,
    },
}

impl Hashing {
    /// MD5 plus `extra`, starting inline.
    pub(super) fn new(extra: &[super::checksum::ChecksumAlgorithm]) -> Hashing {
        Hashing::Inline(Hashers::new(extra))
    }

    /// Feeds the next bytes of the stream.
    pub(super) fn update(&mut self, buf: &[u8]) {
        match self {
            Hashing::Inline(h) => {
                h.update(buf);
                if h.len() > LANES_AFTER {
                    self.pipe();
                }
            }
            #[cfg(target_arch = "x86_64")]
            Hashing::Lanes { .. } => self.update_bytes(bytes::Bytes::copy_from_slice(buf)),
            Hashing::Piped { feed, len, .. } => {
                *len += buf.len() as u64;
                // A failed send means the thread is gone; finish() reports that.
                let _ = feed.send(bytes::Bytes::copy_from_slice(buf));
            }
        }
    }

    /// Feeds the next bytes of the stream, handing them to the hashing thread without a copy.
    pub(super) fn update_bytes(&mut self, buf: bytes::Bytes) {
        match self {
            Hashing::Inline(_) => self.update(&buf),
            #[cfg(target_arch = "x86_64")]
            Hashing::Lanes { md5, rest } => {
                rest.update(&buf);
                md5.push(buf);
            }
            Hashing::Piped { feed, len, .. } => {
                *len += buf.len() as u64;
                let _ = feed.send(buf);
            }
        }
    }

    fn pipe(&mut self) {
        let Hashing::Inline(h) = self else {
            return;
        };
        #[cfg(target_arch = "x86_64")]
        if h.extras_are_cheap() && super::md5::lanes::running() {
            let mut rest = std::mem::replace(h, Hashers::new(&[]));
            let md5 = rest.take_md5().expect("an inline hasher has its MD5");
            match super::md5::lanes::Stream::start(md5) {
                Ok(md5) => {
                    *self = Hashing::Lanes { md5, rest };
                    return;
                }
                Err(md5) => {
                    // No lanes here: put everything back for a thread of its own.
                    *h = rest;
                    h.restore_md5(md5);
                }
            }
        }
        if h.len() <= PIPE_AFTER {
            return;
        }
        let (feed, chunks) = std::sync::mpsc::sync_channel::<bytes::Bytes>(8);
        let (start, started) = std::sync::mpsc::channel::<Hashers>();
        let spawned = std::thread::Builder::new()
            .name("upload-hash".into())
            .spawn(move || {
                let mut h = started.recv().ok()?;
                for c in chunks {
                    h.update(&c);
                }
                Some(h)
            });
        // Without a thread to be had, hashing simply stays inline.
        if let Ok(hasher) = spawned {
            let len = h.len();
            let state = std::mem::replace(h, Hashers::new(&[]));
            let _ = start.send(state);
            *self = Hashing::Piped { feed, hasher, len };
        }
    }

    /// Bytes fed so far.
    pub(super) fn len(&self) -> u64 {
        match self {
            Hashing::Inline(h) => h.len(),
            #[cfg(target_arch = "x86_64")]
            Hashing::Lanes { rest, .. } => rest.len(),
            Hashing::Piped { len, .. } => *len,
        }
    }

    /// The digests of everything fed (waiting for the helper thread, if any).
    pub(super) fn finish(self) -> Result<super::checksum::Digests> {
        match self {
            Hashing::Inline(h) => Ok(h.finish()),
            #[cfg(target_arch = "x86_64")]
            Hashing::Lanes { md5, rest } => match md5.finish() {
                Some(md5) => Ok(rest.finish_with(md5)),
                None => Err(hash_failed()),
            },
            Hashing::Piped { feed, hasher, .. } => {
                drop(feed);
                match hasher.join() {
                    Ok(Some(h)) => Ok(h.finish()),
                    _ => Err(hash_failed()),
                }
            }
        }
    }
}

/// The error of an upload whose hashing helper failed: the object is not published.
fn hash_failed() -> StoreError {
    StoreError::Io {
        op: "hash",
        path: PathBuf::from("upload"),
        source: std::io::Error::other("the hashing thread failed"),
    }
}

/// What a staged body must match before it may be published.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expect<'a> {
    pub(crate) size: Option<u64>,
    pub(crate) content_md5: Option<[u8; 16]>,
    pub(crate) checksums: &'a [super::checksum::Checksum],
}

impl Staged {
    /// Starts staging, computing MD5 plus `extra` checksums.
    pub(crate) fn new(
        store: &Store,
        extra: &[super::checksum::ChecksumAlgorithm],
    ) -> Result<Staged> {
        Ok(Staged {
            temp: TempFile::create(store)?,
            hashing: Hashing::new(extra),
            written: 0,
            unflushed: 0,
        })
    }

    /// Appends body bytes.
    pub(crate) fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.hashing.update(buf);
        self.append(buf)
    }

    /// Appends body bytes the caller owns, which the hashing thread then reads in place.
    pub(crate) fn write_bytes(&mut self, buf: bytes::Bytes) -> Result<()> {
        // The hasher holds its own reference: the write below reads the same memory.
        self.hashing.update_bytes(buf.clone());
        self.append(&buf)
    }

    fn append(&mut self, buf: &[u8]) -> Result<()> {
        use std::io::Write;
        let mut f = self.temp.file();
        f.write_all(buf)
            .map_err(StoreError::io("write", &self.temp.rel))?;
        self.written += buf.len() as u64;
        if self.temp.durable && self.written - self.unflushed >= WRITEBACK_STEP {
            // A hint only: a write error still surfaces at the fsync before publishing.
            let _ = crate::platform::start_writeback(
                self.temp.file(),
                self.unflushed,
                self.written - self.unflushed,
            );
            self.unflushed = self.written;
        }
        Ok(())
    }

    /// Bytes received so far.
    pub(crate) fn len(&self) -> u64 {
        self.hashing.len()
    }

    /// Checks the body against `expect` and hands back the file (not yet synced: the caller
    /// syncs it, alongside whatever else it must make durable) and its digests.
    pub(crate) fn finish(self, expect: &Expect) -> Result<(TempFile, super::checksum::Digests)> {
        let digests = self.hashing.finish()?;
        if let Some(expected) = expect.size {
            if digests.len != expected {
                return Err(StoreError::IncompleteBody {
                    expected,
                    got: digests.len,
                });
            }
        }
        if expect.content_md5.is_some_and(|m| m != digests.md5) {
            return Err(StoreError::BadDigest);
        }
        for want in expect.checksums {
            if digests.get(want.algorithm).map(|c| &c.value) != Some(&want.value) {
                return Err(StoreError::ChecksumMismatch(want.algorithm.name()));
            }
        }
        Ok((self.temp, digests))
    }
}

/// The algorithms to compute: the requested ones plus those of expected values.
pub(crate) fn algorithms(
    requested: &[super::checksum::ChecksumAlgorithm],
    expected: &[super::checksum::Checksum],
) -> Vec<super::checksum::ChecksumAlgorithm> {
    let mut all = requested.to_vec();
    for c in expected {
        if !all.contains(&c.algorithm) {
            all.push(c.algorithm);
        }
    }
    all
}
