//! The same small-object work done directly on a directory of the share, without a server:
//! the anchor that shows what the lock discipline and HTTP cost in round trips to a NAS.
//!
//! A read is open + read + close (the bytes verified); a write is what a careful program does
//! to replace a file: write a temp file, fsync it, rename it over the target (and, for the
//! durable variant, fsync the directory so the rename itself survives a crash). One OS thread
//! per "connection", each blocking in its own system calls as a process per client would.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::{Limit, Opts, Outcome};
use crate::body::{fill, matches, seed};

/// Which operation the threads repeat.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FileOp {
    /// open + read + close, verifying every byte.
    Read,
    /// write a temp file + fsync + rename over the target.
    Replace,
    /// Replace, then fsync the directory: what a durable publish of one file needs at least.
    DurableReplace,
}

/// Runs `op` on files of `o.size` under `dir/<prefix>` with `o.concurrency` threads.
pub fn files(dir: &Path, op: FileOp, o: &Opts) -> Result<Outcome, String> {
    let base = dir.join(o.prefix.trim_end_matches('/'));
    std::fs::create_dir_all(&base).map_err(|e| format!("mkdir {}: {e}", base.display()))?;
    let keys: Arc<Vec<(PathBuf, u64)>> = Arc::new(
        (0..o.keys)
            .map(|i| {
                let name = format!("{}{i}", o.prefix);
                (base.join(i.to_string()), seed(&name, o.size))
            })
            .collect(),
    );
    if op == FileOp::Read {
        // Untimed: the files a read run finds.
        for (path, s) in keys.iter() {
            let mut data = vec![0u8; o.size as usize];
            fill(*s, 0, &mut data);
            std::fs::write(path, &data).map_err(|e| format!("write {}: {e}", path.display()))?;
        }
    }
    let t0 = Instant::now();
    let limit = Limit::of(o);
    let threads: Vec<_> = (0..o.concurrency)
        .map(|worker| {
            let (keys, limit, base) = (keys.clone(), limit.clone(), base.clone());
            let (size, conc) = (o.size, o.concurrency);
            std::thread::spawn(move || {
                let mut out = Outcome::default();
                let temp = base.join(format!(".tmp-{worker}"));
                // Opened once per thread, as a careful program keeps its directory handle.
                let parent = std::fs::File::open(&base)
                    .map_err(|e| format!("open {}: {e}", base.display()))?;
                let mut buf = vec![0u8; size as usize];
                for j in 0.. {
                    if limit.reached() {
                        break;
                    }
                    let (path, s) = &keys[(worker + j * conc) % keys.len()];
                    let t = Instant::now();
                    let done = match op {
                        FileOp::Read => read_one(path, *s, &mut buf),
                        FileOp::Replace => replace_one(path, &temp, *s, &mut buf),
                        FileOp::DurableReplace => {
                            replace_one(path, &temp, *s, &mut buf).and_then(|()| {
                                parent
                                    .sync_all()
                                    .map_err(|e| format!("fsync {}: {e}", base.display()))
                            })
                        }
                    };
                    out.count(t, done.map(|()| size));
                }
                Ok::<Outcome, String>(out)
            })
        })
        .collect();
    let mut all = Outcome::default();
    for t in threads {
        all.add(
            t.join()
                .map_err(|_| "a worker thread panicked".to_string())??,
        );
    }
    all.seconds = t0.elapsed().as_secs_f64();
    Ok(all)
}

fn read_one(path: &Path, s: u64, buf: &mut [u8]) -> Result<(), String> {
    let err = |e: std::io::Error| format!("read {}: {e}", path.display());
    let mut f = std::fs::File::open(path).map_err(err)?;
    f.read_exact(buf).map_err(err)?;
    // One more read proves the end, as an HTTP client sees the body end.
    if f.read(&mut [0u8; 1]).map_err(err)? != 0 || !matches(s, 0, buf) {
        return Err(format!("read {}: wrong bytes", path.display()));
    }
    Ok(())
}

fn replace_one(path: &Path, temp: &Path, s: u64, buf: &mut [u8]) -> Result<(), String> {
    let err = |e: std::io::Error| format!("replace {}: {e}", path.display());
    fill(s, 0, buf);
    let mut f = std::fs::File::create(temp).map_err(err)?;
    f.write_all(buf).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(temp, path).map_err(err)
}
