//! A line protocol that drives the store from another process: tests spawn
//! `nasgate debug-store SHARE` to race real processes on one share (and to crash them at
//! chosen points), and an operator can use it to poke at a share by hand.
//!
//! Commands (one per line; one answer line each):
//! `mb BUCKET`; `put BUCKET KEY SIZE SEED` (a self-verifying body); `get BUCKET KEY`
//! -> `ok ETAG SIZE` | `nosuchkey` | `torn ...`; `head BUCKET KEY` -> `ok ETAG SIZE`;
//! `rm BUCKET KEY`; `list BUCKET PREFIX|- DELIM|- AFTER|- MAX` -> `ok KEY,... | PREFIX,...`;
//! `torture BUCKET KEYS MILLIS SEED` -> `done OPS TORN BUSY ERRORS`; `sweep` -> `ok N`; `quit`.

use std::io::{self, BufRead, Write};
use std::time::{Duration, Instant};

use crate::store::list::ListQuery;
use crate::store::object::{ObjectReader, PutOptions, ReadConditions};
use crate::store::{Result, Store, StoreError};

/// A small deterministic generator (SplitMix64): bodies are reproducible from their seed.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A body that carries its own seed and length in its first 16 bytes, so any reader can
/// tell a whole body from a torn or mixed one.
pub fn body(seed: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(16));
    out.extend_from_slice(&seed.to_le_bytes());
    out.extend_from_slice(&(size as u64).to_le_bytes());
    let mut rng = Rng::new(seed);
    while out.len() < size {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(size.max(16));
    out
}

/// Whether `bytes` is exactly one self-verifying body.
pub fn is_whole(bytes: &[u8]) -> bool {
    if bytes.len() < 16 {
        return false;
    }
    let seed = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    let size = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default()) as usize;
    size.max(16) == bytes.len() && body(seed, size) == bytes
}

fn read_all(r: &ObjectReader) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; r.info().size as usize];
    let mut off = 0;
    while off < out.len() {
        let n = r.read_at(&mut out[off..], off as u64)?;
        if n == 0 {
            break;
        }
        off += n;
    }
    out.truncate(off);
    Ok(out)
}

/// Reads an object and checks it: body whole, ETag equal to the body's MD5.
fn verified_get(
    store: &Store,
    bucket: &str,
    key: &str,
) -> Result<std::result::Result<(String, u64), String>> {
    let r = store.get(bucket, key, &ReadConditions::default())?;
    let bytes = read_all(&r).map_err(|e| StoreError::Io {
        op: "read",
        path: key.into(),
        source: e,
    })?;
    let info = r.info().clone();
    drop(r);
    if !is_whole(&bytes) {
        return Ok(Err(format!("torn body of {} bytes", bytes.len())));
    }
    let md5 = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(&bytes))
    };
    if !info.etag.contains('-') && md5 != info.etag {
        return Ok(Err(format!("etag {} but body md5 {md5}", info.etag)));
    }
    if bytes.len() as u64 != info.size {
        return Ok(Err("size differs from metadata".into()));
    }
    Ok(Ok((info.etag, info.size)))
}

/// Runs the protocol on stdin/stdout until `quit` or end of input.
pub fn run(store: &Store) -> io::Result<()> {
    let mut out = io::stdout();
    for line in io::stdin().lock().lines() {
        let line = line?;
        let w: Vec<&str> = line.split_whitespace().collect();
        let answer = match w.as_slice() {
            ["mb", b] => show(store.create_bucket(b).map(|_| "ok".to_string())),
            ["put", b, k, size, seed] => {
                let size: usize = size.parse().unwrap_or(0);
                let seed: u64 = seed.parse().unwrap_or(0);
                let data = body(seed, size);
                show(
                    store
                        .put(b, k, &mut &data[..], PutOptions::default())
                        .map(|i| format!("ok {} {}", i.etag, i.size)),
                )
            }
            ["get", b, k] => match verified_get(store, b, k) {
                Ok(Ok((etag, size))) => format!("ok {etag} {size}"),
                Ok(Err(why)) => format!("torn {why}"),
                Err(e) => show::<String>(Err(e)),
            },
            ["head", b, k] => show(
                store
                    .head(b, k, &ReadConditions::default())
                    .map(|i| format!("ok {} {}", i.etag, i.size)),
            ),
            ["rm", b, k] => show(store.delete(b, k).map(|_| "ok".to_string())),
            ["list", b, prefix, delim, after, max] => {
                let opt = |s: &&str| if *s == "-" { None } else { Some(s.to_string()) };
                let (prefix, delim, after) = (opt(prefix), opt(delim), opt(after));
                let q = ListQuery {
                    prefix: prefix.as_deref().unwrap_or(""),
                    delimiter: delim.as_deref(),
                    start_after: after.as_deref(),
                    max_keys: max.parse().unwrap_or(1000),
                };
                show(store.list(b, &q).map(|p| {
                    let keys: Vec<_> = p.objects.iter().map(|o| o.key.as_str()).collect();
                    format!("ok {} | {}", keys.join(","), p.common_prefixes.join(","))
                }))
            }
            ["torture", b, keys, millis, seed] => torture(
                store,
                b,
                keys.parse().unwrap_or(1),
                Duration::from_millis(millis.parse().unwrap_or(0)),
                seed.parse().unwrap_or(0),
            ),
            ["sweep"] => show(store.sweep_tmp().map(|n| format!("ok {n}"))),
            ["quit"] => break,
            _ => format!("error unknown command {line:?}"),
        };
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}

fn show<T: std::fmt::Display>(r: Result<T>) -> String {
    match r {
        Ok(v) => v.to_string(),
        Err(StoreError::NoSuchKey { .. }) => "nosuchkey".into(),
        Err(StoreError::Busy(_)) => "busy".into(),
        Err(e) => format!("error {e}"),
    }
}

/// Random puts, gets, heads and deletes of `keys` hot keys for `span`; every read is
/// verified. Answers `done OPS TORN BUSY ERRORS` (the first torn read's reason goes to stderr).
fn torture(store: &Store, bucket: &str, keys: u64, span: Duration, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let end = Instant::now() + span;
    let (mut ops, mut torn, mut busy, mut errors) = (0u64, 0u64, 0u64, 0u64);
    while Instant::now() < end {
        let key = format!("hot/{}", rng.next_u64() % keys.max(1));
        let result = match rng.next_u64() % 10 {
            0..=3 => {
                let size = (rng.next_u64() % (256 * 1024)) as usize;
                let data = body(rng.next_u64(), size);
                store
                    .put(bucket, &key, &mut &data[..], PutOptions::default())
                    .map(|_| ())
            }
            4..=7 => match verified_get(store, bucket, &key) {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(why)) => {
                    if torn == 0 {
                        eprintln!("torn read of {key}: {why}");
                    }
                    torn += 1;
                    Ok(())
                }
                Err(e) => Err(e),
            },
            8 => store
                .head(bucket, &key, &ReadConditions::default())
                .map(|_| ()),
            _ => store.delete(bucket, &key),
        };
        ops += 1;
        match result {
            Ok(()) | Err(StoreError::NoSuchKey { .. }) => {}
            Err(StoreError::Busy(_)) => busy += 1,
            Err(e) => {
                if errors == 0 {
                    eprintln!("error on {key}: {e}");
                }
                errors += 1;
            }
        }
    }
    format!("done {ops} {torn} {busy} {errors}")
}
