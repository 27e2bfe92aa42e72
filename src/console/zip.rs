//! Zip downloads: a streaming ZIP writer (stored entries, CRC-32 computed on the way, data
//! descriptors, ZIP64 where sizes, offsets or counts need it) and `POST api/zip`, which
//! streams a prefix or a list of keys, each object read through the store under its shared
//! lock while it is sent; no temp files.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use warp::http::{HeaderValue, Response, StatusCode};
use warp::hyper::Body;

use super::api::{live, refresh_users, same_origin, with_renewal};
use super::{form_pairs, Call, Console, ConsoleError};
use crate::access::{Caller, Target};
use crate::store::list::ListQuery;
use crate::store::{ReadConditions, Store, StoreError};

const LOCAL_SIG: u32 = 0x0403_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const END_SIG: u32 = 0x0605_4b50;
const END64_SIG: u32 = 0x0606_4b50;
const LOCATOR64_SIG: u32 = 0x0706_4b50;
/// Bit 3: sizes and CRC follow the data; bit 11: names are UTF-8.
const FLAGS: u16 = 0x0008 | 0x0800;
const V20: u16 = 20;
const V45: u16 = 45;
const MAX32: u64 = 0xFFFF_FFFF;

/// Why the writer refused an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    /// An entry's bytes did not match the size announced for it.
    #[error("entry {name}: announced {announced} bytes, got {got}")]
    SizeMismatch {
        /// The entry.
        name: String,
        /// What `begin` was told.
        announced: u64,
        /// What came.
        got: u64,
    },
    /// `data` or `end` without `begin`, or `begin` twice.
    #[error("zip entries out of order")]
    Order,
}

struct Entry {
    name: Vec<u8>,
    crc: u32,
    size: u64,
    offset: u64,
    time: u16,
    date: u16,
    dir: bool,
}

struct Open {
    entry: Entry,
    announced: u64,
    written: u64,
    zip64: bool,
    hasher: crc32fast::Hasher,
}

/// Builds a ZIP stream piece by piece: each call returns the bytes to send next (the caller
/// sends entry data itself, after passing it to `data`). Only the central directory is kept
/// in memory, one small record per entry.
#[derive(Default)]
pub struct ZipWriter {
    offset: u64,
    entries: Vec<Entry>,
    open: Option<Open>,
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn clamp32(v: u64) -> u32 {
    v.min(MAX32) as u32
}

/// MS-DOS time and date of `t` (UTC; 1980 at the earliest, the format's start).
pub fn dos_time(t: SystemTime) -> (u16, u16) {
    if t.duration_since(UNIX_EPOCH)
        .map_or(true, |d| d.as_secs() < 315_532_800)
    {
        return (0, (1 << 5) | 1);
    }
    // `YYYY-MM-DDTHH:MM:SS...`
    let iso = crate::time::iso8601(t);
    let n = |r: std::ops::Range<usize>| iso.get(r).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
    let (y, mo, d, h, mi, s) = (n(0..4), n(5..7), n(8..10), n(11..13), n(14..16), n(17..19));
    let year = y.saturating_sub(1980).min(127);
    ((h << 11) | (mi << 5) | (s / 2), (year << 9) | (mo << 5) | d)
}

impl ZipWriter {
    /// A writer for an archive starting at offset 0.
    pub fn new() -> ZipWriter {
        ZipWriter::default()
    }

    /// Bytes produced so far (headers and data).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Starts an entry of `size` bytes (a directory when `name` ends in `/`); returns its
    /// local header.
    pub fn begin(
        &mut self,
        name: &str,
        size: u64,
        modified: SystemTime,
    ) -> Result<Vec<u8>, ZipError> {
        if self.open.is_some() {
            return Err(ZipError::Order);
        }
        let (time, date) = dos_time(modified);
        let zip64 = size >= MAX32;
        let mut h = Vec::with_capacity(30 + name.len() + 20);
        put32(&mut h, LOCAL_SIG);
        put16(&mut h, if zip64 { V45 } else { V20 });
        put16(&mut h, FLAGS);
        put16(&mut h, 0); // stored
        put16(&mut h, time);
        put16(&mut h, date);
        put32(&mut h, 0); // CRC, in the descriptor
        let unknown = if zip64 { u32::MAX } else { 0 };
        put32(&mut h, unknown);
        put32(&mut h, unknown);
        put16(&mut h, name.len() as u16);
        put16(&mut h, if zip64 { 20 } else { 0 });
        h.extend_from_slice(name.as_bytes());
        if zip64 {
            put16(&mut h, 0x0001);
            put16(&mut h, 16);
            put64(&mut h, 0);
            put64(&mut h, 0);
        }
        self.open = Some(Open {
            entry: Entry {
                name: name.as_bytes().to_vec(),
                crc: 0,
                size,
                offset: self.offset,
                time,
                date,
                dir: name.ends_with('/'),
            },
            announced: size,
            written: 0,
            zip64,
            hasher: crc32fast::Hasher::new(),
        });
        self.offset += h.len() as u64;
        Ok(h)
    }

    /// Accounts for `chunk` of the open entry's data (which the caller sends as it is).
    pub fn data(&mut self, chunk: &[u8]) -> Result<(), ZipError> {
        let open = self.open.as_mut().ok_or(ZipError::Order)?;
        open.hasher.update(chunk);
        open.written += chunk.len() as u64;
        self.offset += chunk.len() as u64;
        Ok(())
    }

    /// Ends the open entry; returns its data descriptor.
    pub fn end(&mut self) -> Result<Vec<u8>, ZipError> {
        let open = self.open.take().ok_or(ZipError::Order)?;
        if open.written != open.announced {
            return Err(ZipError::SizeMismatch {
                name: String::from_utf8_lossy(&open.entry.name).into_owned(),
                announced: open.announced,
                got: open.written,
            });
        }
        let mut entry = open.entry;
        entry.crc = open.hasher.finalize();
        let mut d = Vec::with_capacity(24);
        put32(&mut d, DESCRIPTOR_SIG);
        put32(&mut d, entry.crc);
        if open.zip64 {
            put64(&mut d, entry.size);
            put64(&mut d, entry.size);
        } else {
            put32(&mut d, entry.size as u32);
            put32(&mut d, entry.size as u32);
        }
        self.offset += d.len() as u64;
        self.entries.push(entry);
        Ok(d)
    }

    /// Entries written so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was written.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The central directory and end records that close the archive.
    pub fn finish(self) -> Result<Vec<u8>, ZipError> {
        if self.open.is_some() {
            return Err(ZipError::Order);
        }
        let cd_offset = self.offset;
        let mut out = Vec::new();
        for e in &self.entries {
            let mut extra = Vec::new();
            if e.size >= MAX32 {
                put64(&mut extra, e.size);
                put64(&mut extra, e.size);
            }
            if e.offset >= MAX32 {
                put64(&mut extra, e.offset);
            }
            let zip64 = !extra.is_empty();
            put32(&mut out, CENTRAL_SIG);
            put16(&mut out, V45);
            put16(&mut out, if zip64 { V45 } else { V20 });
            put16(&mut out, FLAGS);
            put16(&mut out, 0);
            put16(&mut out, e.time);
            put16(&mut out, e.date);
            put32(&mut out, e.crc);
            put32(&mut out, clamp32(e.size));
            put32(&mut out, clamp32(e.size));
            put16(&mut out, e.name.len() as u16);
            put16(&mut out, if zip64 { extra.len() as u16 + 4 } else { 0 });
            put16(&mut out, 0); // comment
            put16(&mut out, 0); // disk
            put16(&mut out, 0); // internal attributes
            put32(&mut out, if e.dir { 0x10 } else { 0 }); // MS-DOS directory bit
            put32(&mut out, clamp32(e.offset));
            out.extend_from_slice(&e.name);
            if zip64 {
                put16(&mut out, 0x0001);
                put16(&mut out, extra.len() as u16);
                out.extend_from_slice(&extra);
            }
        }
        let cd_size = out.len() as u64;
        let count = self.entries.len() as u64;
        if count >= 0xFFFF || cd_offset >= MAX32 || cd_size >= MAX32 {
            let end64 = cd_offset + cd_size;
            put32(&mut out, END64_SIG);
            put64(&mut out, 44);
            put16(&mut out, V45);
            put16(&mut out, V45);
            put32(&mut out, 0);
            put32(&mut out, 0);
            put64(&mut out, count);
            put64(&mut out, count);
            put64(&mut out, cd_size);
            put64(&mut out, cd_offset);
            put32(&mut out, LOCATOR64_SIG);
            put32(&mut out, 0);
            put64(&mut out, end64);
            put32(&mut out, 1);
        }
        put32(&mut out, END_SIG);
        put16(&mut out, 0);
        put16(&mut out, 0);
        put16(&mut out, count.min(0xFFFF) as u16);
        put16(&mut out, count.min(0xFFFF) as u16);
        put32(&mut out, clamp32(cd_size));
        put32(&mut out, clamp32(cd_offset));
        put16(&mut out, 0);
        Ok(out)
    }
}

/// The entry name of `key` in a zip of `base` (the prefix's folder, up to its last `/`):
/// relative to it, with no empty, `.` or `..` component, so unzipping stays inside the
/// target folder. None when nothing is left.
pub fn entry_name(key: &str, base: &str) -> Option<String> {
    let rel = key.strip_prefix(base).unwrap_or(key);
    let dir = rel.ends_with('/');
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != "..")
        .collect();
    if parts.is_empty() {
        return None;
    }
    let mut name = parts.join("/");
    if dir {
        name.push('/');
    }
    // The format's name length is 16 bits.
    (name.len() <= 0xFFFF).then_some(name)
}

/// The archive's file name: the prefix's last folder, else the bucket.
fn archive_name(bucket: &str, prefix: &str) -> String {
    let last = prefix
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(bucket);
    format!("{last}.zip")
}

fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ()[]+,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded =
        percent_encoding::utf8_percent_encode(name, crate::s3::sigv4::UNRESERVED).to_string();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment; filename=\"download.zip\""))
}

/// What to zip.
enum Selection {
    Prefix(String),
    Keys(Vec<String>),
}

/// Bytes read from the share per step.
const CHUNK: usize = 256 * 1024;

/// `POST api/zip`: a browser form (bucket, prefix or repeated key, csrf) answered with a
/// streamed `application/zip`.
pub async fn download(console: &Arc<Console>, call: &Call) -> Result<Response<Body>, ConsoleError> {
    same_origin(console, call)?;
    let live = live(console, call).await?;
    let form = form_pairs(&call.body);
    let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let token = field("csrf").unwrap_or_default();
    if !console.sessions.csrf_matches(&live.session, &token) {
        return Err(ConsoleError::Forbidden(
            "missing or wrong csrf token".into(),
        ));
    }
    let bucket = field("bucket")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ConsoleError::BadRequest("zip needs a bucket".into()))?;
    let prefix = field("prefix").unwrap_or_default();
    let keys: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "key")
        .map(|(_, v)| v.clone())
        .filter(|k| !k.is_empty())
        .collect();
    refresh_users(console, Some(&bucket)).await;
    let access = console.s3.access().clone();
    let selection = if keys.is_empty() {
        let mut target = Target {
            bucket: Some(&bucket),
            key: None,
            context: Default::default(),
        };
        target.context.insert("s3:prefix".into(), prefix.clone());
        access.authorize(&live.caller, "s3:ListBucket", &target)?;
        Selection::Prefix(prefix.clone())
    } else {
        for k in &keys {
            let target = Target {
                bucket: Some(&bucket),
                key: Some(k),
                context: Default::default(),
            };
            access.authorize(&live.caller, "s3:GetObject", &target)?;
        }
        Selection::Keys(keys)
    };
    // Refusals come now, as a JSON error, while they still can: once the zip streams, all
    // that is left is cutting it short. A chosen key that is missing or malformed is one.
    let store = console.s3.store().clone();
    let b = bucket.clone();
    let chosen = match &selection {
        Selection::Keys(k) => k.clone(),
        Selection::Prefix(_) => Vec::new(),
    };
    tokio::task::spawn_blocking(move || {
        let _op = crate::ops::health::track();
        store.head_bucket(&b)?;
        for k in &chosen {
            store.head(&b, k, &ReadConditions::default())?;
        }
        Ok::<(), StoreError>(())
    })
    .await
    .map_err(|_| ConsoleError::Internal)??;
    let base = match prefix.rfind('/') {
        Some(i) => prefix[..=i].to_string(),
        None => String::new(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = console.s3.store().clone();
    let caller = live.caller.clone();
    let zip_bucket = bucket.clone();
    tokio::task::spawn_blocking(move || {
        let _op = crate::ops::health::track();
        let job = Job {
            store: &store,
            access: &access,
            caller: &caller,
            bucket: &zip_bucket,
            base: &base,
            tx: &tx,
        };
        if let Err(e) = job.run(selection) {
            // The answer has started: all that can be done is to cut it short, which the
            // browser reports as a failed download.
            tracing::warn!(bucket = zip_bucket.as_str(), error = %e, "zip download cut short");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let mut r = Response::new(Body::wrap_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/zip"));
    h.insert(
        "content-disposition",
        disposition(&archive_name(&bucket, &prefix)),
    );
    Ok(with_renewal(console, call, &live, r))
}

/// Why a zip stream stopped early.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Zip(#[from] ZipError),
    #[error("reading {key}: {source}")]
    Read { key: String, source: std::io::Error },
    /// The client went away: nothing to report.
    #[error("the client went away")]
    Gone,
}

struct Job<'a> {
    store: &'a Store,
    access: &'a crate::access::Access,
    caller: &'a Caller,
    bucket: &'a str,
    base: &'a str,
    tx: &'a tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Job<'_> {
    fn send(&self, b: Vec<u8>) -> Result<(), JobError> {
        self.tx
            .blocking_send(Ok(Bytes::from(b)))
            .map_err(|_| JobError::Gone)
    }

    fn run(&self, selection: Selection) -> Result<(), JobError> {
        let mut zip = ZipWriter::new();
        let r = match selection {
            Selection::Keys(keys) => keys.iter().try_for_each(|k| self.entry(&mut zip, k, false)),
            Selection::Prefix(prefix) => self.walk(&mut zip, &prefix),
        };
        match r {
            Err(JobError::Gone) => return Ok(()),
            r => r?,
        }
        match self.send(zip.finish()?) {
            Err(JobError::Gone) => Ok(()),
            r => r,
        }
    }

    fn walk(&self, zip: &mut ZipWriter, prefix: &str) -> Result<(), JobError> {
        let mut start: Option<String> = None;
        loop {
            let q = ListQuery {
                prefix,
                delimiter: None,
                start_after: start.as_deref(),
                max_keys: 1000,
            };
            let page = self.store.list(self.bucket, &q)?;
            for o in &page.objects {
                self.entry(zip, &o.key, true)?;
            }
            if !page.is_truncated || page.next.is_none() {
                return Ok(());
            }
            start = page.next;
        }
    }

    /// Adds `key`; with `check`, skips it when the caller may not read it (explicit keys
    /// were all checked before the answer started).
    fn entry(&self, zip: &mut ZipWriter, key: &str, check: bool) -> Result<(), JobError> {
        let Some(name) = entry_name(key, self.base) else {
            return Ok(());
        };
        if check {
            let target = Target {
                bucket: Some(self.bucket),
                key: Some(key),
                context: Default::default(),
            };
            if self
                .access
                .authorize(self.caller, "s3:GetObject", &target)
                .is_err()
            {
                return Ok(());
            }
        }
        let reader = match self.store.get(self.bucket, key, &ReadConditions::default()) {
            Ok(r) => r,
            // Deleted since it was listed or chosen: the zip holds what exists.
            Err(StoreError::NoSuchKey { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let info = reader.info();
        let size = if name.ends_with('/') { 0 } else { info.size };
        self.send(zip.begin(&name, size, info.modified)?)?;
        let mut done = 0u64;
        while done < size {
            let want = (size - done).min(CHUNK as u64) as usize;
            let mut buf = vec![0u8; want];
            let n = reader
                .read_at(&mut buf, done)
                .map_err(|source| JobError::Read {
                    key: key.to_string(),
                    source,
                })?;
            if n == 0 {
                return Err(JobError::Read {
                    key: key.to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "object shorter than its size",
                    ),
                });
            }
            buf.truncate(n);
            zip.data(&buf)?;
            done += n as u64;
            self.send(buf)?;
        }
        // The shared lock goes as soon as the object's bytes are out.
        drop(reader);
        self.send(zip.end()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::Command;

    fn python_check(path: &std::path::Path, script: &str) -> String {
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(path)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "python: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn small_archive_unzips_byte_for_byte() {
        let mut zip = ZipWriter::new();
        let mut out = Vec::new();
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        for (name, body) in [
            ("a.txt", &b"hello"[..]),
            ("dir/", b""),
            ("dir/ü.bin", &[0u8, 1, 2, 255][..]),
        ] {
            out.extend(zip.begin(name, body.len() as u64, t).unwrap());
            zip.data(body).unwrap();
            out.extend_from_slice(body);
            out.extend(zip.end().unwrap());
        }
        out.extend(zip.finish().unwrap());
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&out).unwrap();
        let listing = python_check(
            f.path(),
            "import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\n\
             for i in z.infolist(): print(i.filename, i.file_size, i.date_time, z.read(i).hex())",
        );
        assert_eq!(
            listing,
            "a.txt 5 (2023, 11, 14, 22, 13, 20) 68656c6c6f\ndir/ 0 (2023, 11, 14, 22, 13, 20) \n\
             dir/ü.bin 4 (2023, 11, 14, 22, 13, 20) 000102ff\n"
        );
    }

    #[test]
    fn announced_sizes_are_enforced() {
        let mut zip = ZipWriter::new();
        zip.begin("x", 3, SystemTime::now()).unwrap();
        zip.data(b"ab").unwrap();
        assert!(matches!(zip.end(), Err(ZipError::SizeMismatch { .. })));
        assert_eq!(ZipWriter::new().end(), Err(ZipError::Order));
    }

    /// ZIP64: a first entry past 4 GiB pushes the second entry's offset, the central
    /// directory and its size fields past 32 bits. The data is zeros, written into a
    /// sparse file, so the test costs a CRC pass, not 4 GiB of disk.
    #[test]
    #[cfg(unix)]
    fn zip64_sizes_and_offsets_read_back() {
        let big: u64 = (1 << 32) + 12_345;
        let mut zip = ZipWriter::new();
        let f = tempfile::NamedTempFile::new().unwrap();
        let file = f.as_file();
        use std::os::unix::fs::FileExt;
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let h = zip.begin("big.bin", big, t).unwrap();
        file.write_all_at(&h, 0).unwrap();
        let zeros = vec![0u8; 8 << 20];
        let mut left = big;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            zip.data(&zeros[..n]).unwrap();
            left -= n as u64;
        }
        let d = zip.end().unwrap();
        let mut at = h.len() as u64 + big;
        file.write_all_at(&d, at).unwrap();
        at += d.len() as u64;
        let h = zip.begin("small.txt", 3, t).unwrap();
        zip.data(b"abc").unwrap();
        let mut tail = h;
        tail.extend_from_slice(b"abc");
        tail.extend(zip.end().unwrap());
        tail.extend(zip.finish().unwrap());
        file.write_all_at(&tail, at).unwrap();
        // Python reads sizes and offsets from the ZIP64 fields and checks the small entry's
        // CRC; the big one's CRC is compared with zlib's over the same zeros.
        let out = python_check(
            f.path(),
            "import sys,zipfile,zlib\nz=zipfile.ZipFile(sys.argv[1])\n\
             b,s=z.infolist()\nprint(b.file_size,b.header_offset,s.header_offset>2**32,z.read(s))\n\
             c=0\nchunk=bytes(8<<20)\nleft=b.file_size\n\
             while left:\n n=min(left,len(chunk)); c=zlib.crc32(chunk[:n],c); left-=n\n\
             print(c==b.CRC)",
        );
        assert_eq!(out, format!("{big} 0 True b'abc'\nTrue\n"));
    }

    #[test]
    fn many_entries_use_zip64_counts() {
        let mut zip = ZipWriter::new();
        let mut out = Vec::new();
        for i in 0..70_000u32 {
            out.extend(zip.begin(&format!("{i}"), 0, UNIX_EPOCH).unwrap());
            out.extend(zip.end().unwrap());
        }
        out.extend(zip.finish().unwrap());
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&out).unwrap();
        let n = python_check(
            f.path(),
            "import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nprint(len(z.infolist()), z.infolist()[-1].filename)",
        );
        assert_eq!(n, "70000 69999\n");
    }

    #[test]
    fn entry_names_stay_inside_the_folder() {
        assert_eq!(
            entry_name("photos/a/b.jpg", "photos/").as_deref(),
            Some("a/b.jpg")
        );
        assert_eq!(entry_name("photos/", "photos/"), None);
        assert_eq!(
            entry_name("x/../../etc/passwd", "").as_deref(),
            Some("x/etc/passwd")
        );
        assert_eq!(entry_name("other/k", "photos/").as_deref(), Some("other/k"));
        assert_eq!(entry_name("d/sub/", "d/").as_deref(), Some("sub/"));
        assert_eq!(archive_name("bkt", "photos/2024/"), "2024.zip");
        assert_eq!(archive_name("bkt", ""), "bkt.zip");
    }
}
