//! A line protocol that drives the lock layer from another process: tests spawn
//! `nasgate debug-locks SHARE` to hold, wait for and release locks across real processes,
//! and an operator can use it to see who blocks whom on a share.
//!
//! One command per line on stdin, one answer per line on stdout:
//! `read PATH [create]`, `write PATH [create]` -> `ok ID MS` | `timeout MS` | `notfound` | `error ...`;
//! `release ID` -> `ok`; `raw PATH shared|exclusive` (a whole-file classic lock, as MinIO's
//! `flock` becomes on NFS) -> `ok ID MS` | `timeout MS`; `inode ID` -> `ok INO`;
//! `readers PATH THREADS HOLD_MS TOTAL_MS` -> `started`, later `done COUNT`;
//! `namespace`, `pooled` -> `ok N`; `style` -> `ok ofd|classic`; `quit`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::platform::{self, LockKind, LockStyle, OpenMode, Range};

use crate::lock::{Create, LockError, Locks, ReadGuard, WriteGuard};

enum Held {
    Read(ReadGuard),
    Write(WriteGuard),
    Raw(File),
}

impl Held {
    fn file(&self) -> &File {
        match self {
            Held::Read(g) => g.file(),
            Held::Write(g) => g.file(),
            Held::Raw(f) => f,
        }
    }
}

/// Runs the protocol on stdin/stdout until `quit` or end of input.
pub fn run(locks: Arc<Locks>) -> io::Result<()> {
    let out = Arc::new(Mutex::new(io::stdout()));
    let say = |line: String| -> io::Result<()> {
        let mut o = out.lock();
        writeln!(o, "{line}")?;
        o.flush()
    };
    let mut held: HashMap<u64, Held> = HashMap::new();
    let mut next = 0u64;
    for line in io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let started = Instant::now();
        let ms = || started.elapsed().as_millis();
        let answer = match words.as_slice() {
            ["read", path, rest @ ..] | ["write", path, rest @ ..] => {
                let create = if rest.first() == Some(&"create") {
                    Create::Yes
                } else {
                    Create::No
                };
                let got = if words[0] == "read" {
                    locks.read(Path::new(path), create).map(Held::Read)
                } else {
                    locks.write(Path::new(path), create).map(Held::Write)
                };
                match got {
                    Ok(h) => {
                        next += 1;
                        held.insert(next, h);
                        format!("ok {next} {}", ms())
                    }
                    Err(LockError::Timeout { .. }) => format!("timeout {}", ms()),
                    Err(LockError::NotFound { .. }) => "notfound".into(),
                    Err(e) => format!("error {e}"),
                }
            }
            ["raw", path, kind] => {
                let kind = if *kind == "exclusive" {
                    LockKind::Exclusive
                } else {
                    LockKind::Shared
                };
                match raw_lock(&locks, path, kind) {
                    Ok(Some(f)) => {
                        next += 1;
                        held.insert(next, Held::Raw(f));
                        format!("ok {next} {}", ms())
                    }
                    Ok(None) => format!("timeout {}", ms()),
                    Err(e) => format!("error {e}"),
                }
            }
            ["release", id] => match id.parse().ok().and_then(|id: u64| held.remove(&id)) {
                Some(_) => "ok".into(),
                None => "error no such lock".into(),
            },
            ["inode", id] => match id.parse().ok().and_then(|id: u64| held.get(&id)) {
                Some(h) => match platform::identity(h.file()) {
                    Ok(fid) => format!("ok {}", fid.ino),
                    Err(e) => format!("error {e}"),
                },
                None => "error no such lock".into(),
            },
            ["readers", path, threads, hold, total] => {
                match (threads.parse(), hold.parse(), total.parse()) {
                    (Ok(t), Ok(h), Ok(total)) => {
                        say("started".into())?;
                        readers(&locks, path, t, h, total)
                    }
                    _ => "error bad numbers".into(),
                }
            }
            ["namespace"] => format!("ok {}", locks.namespace_len()),
            ["pooled"] => format!("ok {}", locks.pooled_len()),
            ["style"] => match locks.style() {
                LockStyle::Ofd => "ok ofd".into(),
                LockStyle::Classic => "ok classic".into(),
            },
            ["quit"] => break,
            _ => format!("error unknown command {line:?}"),
        };
        say(answer)?;
    }
    Ok(())
}

/// A whole-file classic lock on its own handle, as an old MinIO's `flock` looks over NFS.
fn raw_lock(locks: &Locks, path: &str, kind: LockKind) -> io::Result<Option<File>> {
    let mode = match kind {
        LockKind::Shared => OpenMode::Read,
        LockKind::Exclusive => OpenMode::ReadWrite,
    };
    let f = locks.root().open(Path::new(path), mode)?;
    let deadline = Instant::now() + locks.timeout();
    let got = platform::lock_until(&f, LockStyle::Classic, kind, Range::WHOLE, deadline)?;
    Ok(got.then_some(f))
}

/// Keeps `threads` overlapping readers of `path` busy for `total_ms`, each holding its read
/// lock for `hold_ms`; answers how many reads completed.
fn readers(locks: &Arc<Locks>, path: &str, threads: u64, hold_ms: u64, total_ms: u64) -> String {
    let end = Instant::now() + Duration::from_millis(total_ms);
    let hold = Duration::from_millis(hold_ms);
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let locks = locks.clone();
            let path = path.to_string();
            std::thread::spawn(move || {
                // Stagger the threads so their holds overlap and the lock is never idle.
                std::thread::sleep(hold * i as u32 / threads.max(1) as u32);
                let mut count = 0u64;
                let mut errors = 0u64;
                while Instant::now() < end {
                    match locks.read(Path::new(&path), Create::No) {
                        Ok(g) => {
                            std::thread::sleep(hold);
                            drop(g);
                            count += 1;
                        }
                        Err(LockError::Timeout { .. }) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
                (count, errors)
            })
        })
        .collect();
    let (mut count, mut errors) = (0, 0);
    for h in handles {
        if let Ok((c, e)) = h.join() {
            count += c;
            errors += e;
        }
    }
    format!("done {count} {errors}")
}
