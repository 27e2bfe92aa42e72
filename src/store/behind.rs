//! Write-behind for drafts written through the mount: once a draft has grown past
//! [`BEHIND_AFTER`], its writes are queued to a thread of its own, which writes them to the
//! staging file, so the mount answers a write as soon as it is queued and the next one
//! arrives while the share (a network filesystem's round trips, or the page cache) takes the
//! last. On a local share such a draft is no longer hashed on the way: its ETag is computed
//! after the publish (`store::deferred`), which keeps MD5 off the writer's cores; on a
//! network share (`Staging::hash_behind`) the thread hashes what it writes. Every read,
//! stat, truncation and publish of the draft waits for the queue first, and a write that
//! failed fails the next write or the publish: a draft never goes live without every byte
//! written to it.

use super::temp::{Hashing, TempFile};
use super::{Result, StoreError};
use crate::platform;
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Drafts shorter than this are written by the caller: a thread is not worth it.
const BEHIND_AFTER: u64 = 1 << 20;

/// Writes queued before the writer waits: with the mount's 1 MiB requests, at most this many
/// MiB of one draft are in memory and not yet in the file.
const QUEUE: usize = 4;

/// A draft's staging file and the running hash of its bytes.
pub(super) struct Staging {
    pub(super) temp: TempFile,
    /// MD5 of the bytes [0, hashing.len()), still valid because nothing before that was
    /// written again since.
    pub(super) hashing: Hashing,
    /// No longer hashed on the way: a draft that went behind is large, and its ETag is
    /// computed after the publish, off the writer's path (see `store::deferred`).
    pub(super) unhashed: bool,
    /// Hashed on the way even when behind (a share on a network filesystem).
    pub(super) hash_behind: bool,
}

impl Staging {
    /// Writes `buf` at `offset`, hashing it when it continues the hashed prefix.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        self.put(buf, offset)?;
        if !self.unhashed && self.continues(offset) {
            self.hashing.update(buf);
        }
        Ok(())
    }

    /// As [`Staging::write_at`], handing the bytes to the hasher without a copy.
    fn write_bytes(&mut self, buf: Bytes, offset: u64) -> Result<()> {
        self.put(&buf, offset)?;
        if !self.unhashed && self.continues(offset) {
            self.hashing.update_bytes(buf);
        }
        Ok(())
    }

    fn put(&self, buf: &[u8], offset: u64) -> Result<()> {
        platform::write_at(self.temp.file(), buf, offset)
            .map_err(StoreError::io("write", self.temp.path()))
    }

    /// Whether a write at `offset` extends the hashed prefix; one that rewrote part of it
    /// starts the hash over (the publish hashes the file from where the hash stops).
    fn continues(&mut self, offset: u64) -> bool {
        let hashed = self.hashing.len();
        if offset < hashed {
            self.hashing = Hashing::new(&[]);
        }
        offset == hashed
    }
}

/// How a failed write is told again to every later call on the draft.
struct Failure {
    op: &'static str,
    path: PathBuf,
    os: Option<i32>,
    kind: std::io::ErrorKind,
    message: String,
}

impl Failure {
    fn of(e: &StoreError, path: PathBuf) -> Failure {
        match e {
            StoreError::Io { op, path, source } => Failure {
                op,
                path: path.clone(),
                os: source.raw_os_error(),
                kind: source.kind(),
                message: source.to_string(),
            },
            other => Failure {
                op: "write",
                path,
                os: None,
                kind: std::io::ErrorKind::Other,
                message: other.to_string(),
            },
        }
    }

    fn error(&self) -> StoreError {
        let source = match self.os {
            Some(n) => std::io::Error::from_raw_os_error(n),
            None => std::io::Error::new(self.kind, self.message.clone()),
        };
        StoreError::Io {
            op: self.op,
            path: self.path.clone(),
            source,
        }
    }
}

/// A thread writing a draft's queued writes; it ends at the first failed one, and the queue
/// then refuses more.
struct Writer {
    feed: SyncSender<(Bytes, u64)>,
    thread: JoinHandle<(Option<Staging>, Result<()>)>,
}

enum State {
    /// Written by the caller.
    Here(Staging),
    /// Written by a thread of its own.
    Behind(Writer),
    /// A write failed: the draft can only be dropped.
    Broken(Failure),
}

/// A draft's staging file, written directly or behind the caller.
pub(super) struct WriteBehind {
    inner: Mutex<Inner>,
    /// Where the staging file is (for messages).
    path: PathBuf,
}

struct Inner {
    state: Option<State>,
    /// Bytes written by the caller since the queue was last waited for: a draft read
    /// between small writes does not start a thread for every write.
    direct_since: u64,
}

impl WriteBehind {
    /// Starts with `staging` written by the caller.
    pub(super) fn new(staging: Staging) -> WriteBehind {
        WriteBehind {
            path: staging.temp.path().to_path_buf(),
            inner: Mutex::new(Inner {
                state: Some(State::Here(staging)),
                direct_since: 0,
            }),
        }
    }

    /// Writes `buf` at `offset` of a draft now `len` bytes long (before this write).
    pub(super) fn write_at(&mut self, buf: &[u8], offset: u64, len: u64) -> Result<()> {
        let path = self.path.clone();
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        match inner.state.take() {
            Some(State::Here(mut s)) => {
                let r = s.write_at(buf, offset);
                inner.direct_since += buf.len() as u64;
                inner.state = Some(
                    if r.is_ok() && len >= BEHIND_AFTER && inner.direct_since >= BEHIND_AFTER {
                        s.unhashed = !s.hash_behind;
                        start(s)
                    } else {
                        State::Here(s)
                    },
                );
                r
            }
            Some(State::Behind(w)) => {
                if w.feed.send((Bytes::copy_from_slice(buf), offset)).is_ok() {
                    inner.state = Some(State::Behind(w));
                    return Ok(());
                }
                // The thread stopped (and dropped its end of the queue) on a failed write:
                // that failure is this write's. Joined, it can only be `Broken`.
                let settled = join(w, path.clone());
                inner.direct_since = 0;
                let r = match &settled {
                    State::Broken(f) => Err(f.error()),
                    _ => Err(gone(&path)),
                };
                inner.state = Some(settled);
                r
            }
            Some(State::Broken(f)) => {
                let e = f.error();
                inner.state = Some(State::Broken(f));
                Err(e)
            }
            None => Err(gone(&path)),
        }
    }

    /// Waits for every queued write and gives the staging file to `f`.
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Staging) -> Result<T>) -> Result<T> {
        let mut inner = self.settle()?;
        match inner.state.as_mut() {
            Some(State::Here(s)) => f(s),
            _ => Err(gone(&self.path)),
        }
    }

    /// Waits for every queued write and gives up the staging file.
    pub(super) fn into_staging(self) -> Result<Staging> {
        drop(self.settle()?);
        let inner = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        match inner.state {
            Some(State::Here(s)) => Ok(s),
            _ => Err(gone(&self.path)),
        }
    }

    /// Joins the thread, if any, leaving the state `Here` or returning the failure.
    fn settle(&self) -> Result<MutexGuard<'_, Inner>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(State::Behind(_)) = inner.state {
            let Some(State::Behind(w)) = inner.state.take() else {
                unreachable!("checked just above")
            };
            inner.state = Some(join(w, self.path.clone()));
            inner.direct_since = 0;
        }
        match &inner.state {
            Some(State::Broken(f)) => Err(f.error()),
            Some(_) => Ok(inner),
            None => Err(gone(&self.path)),
        }
    }
}

/// Moves `s` to a thread of its own; it stays with the caller if no thread can be had.
fn start(s: Staging) -> State {
    let (feed, queue) = sync_channel::<(Bytes, u64)>(QUEUE);
    let (hand, handed) = std::sync::mpsc::channel::<Staging>();
    let spawned = std::thread::Builder::new()
        .name("draft-write".into())
        .spawn(move || {
            let Ok(mut s) = handed.recv() else {
                return (None, Ok(()));
            };
            for (buf, offset) in queue {
                if let Err(e) = s.write_bytes(buf, offset) {
                    return (Some(s), Err(e));
                }
            }
            (Some(s), Ok(()))
        });
    match spawned {
        Ok(thread) => {
            if let Err(back) = hand.send(s) {
                // Cannot happen: the thread waits for it. Keep writing directly.
                return State::Here(back.0);
            }
            State::Behind(Writer { feed, thread })
        }
        Err(_) => State::Here(s),
    }
}

/// Ends the queue and waits for the thread's last write.
fn join(w: Writer, path: PathBuf) -> State {
    let Writer { feed, thread } = w;
    drop(feed);
    match thread.join() {
        Ok((Some(s), Ok(()))) => State::Here(s),
        Ok((_, Err(e))) => State::Broken(Failure::of(&e, path)),
        Ok((None, Ok(()))) | Err(_) => State::Broken(Failure {
            op: "write",
            path,
            os: None,
            kind: std::io::ErrorKind::Other,
            message: "the write-behind thread failed".into(),
        }),
    }
}

fn gone(path: &std::path::Path) -> StoreError {
    StoreError::Io {
        op: "write",
        path: path.to_path_buf(),
        source: std::io::Error::other("the draft's staging file is gone"),
    }
}
