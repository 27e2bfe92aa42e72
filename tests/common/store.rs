//! Store fixtures: a `Store` on a fresh temp share, whole-object reads and writes, a bound on
//! every test body, and a look at what a test left on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use md5::Digest;
use nasgate::lock::{LockConfig, Locks};
use nasgate::platform::{LockStyle, Root};
use nasgate::store::list::ListQuery;
use nasgate::store::{
    Durability, ObjectInfo, ObjectReader, PutOptions, ReadConditions, Store, StoreConfig,
    StoreError,
};

/// The longest any lock wait of a test store may take.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a whole store test may run before it fails.
pub const TEST_BOUND: Duration = Duration::from_secs(120);

/// A store on a temp share that is removed after the store is closed.
pub struct TestShare {
    // Field order is drop order: close the store before the directory goes.
    /// The store.
    pub store: Store,
    /// The share directory.
    pub dir: tempfile::TempDir,
}

impl TestShare {
    /// A fresh share with one store (fsync on) and the given buckets.
    pub fn with_buckets(buckets: &[&str]) -> TestShare {
        Self::with(buckets, Durability::Fsync)
    }

    /// A fresh share with one store of the given durability and the given buckets.
    pub fn with(buckets: &[&str], durability: Durability) -> TestShare {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(dir.path(), durability, None, LOCK_TIMEOUT).expect("open store");
        for b in buckets {
            store.create_bucket(b).expect("create bucket");
        }
        TestShare { store, dir }
    }

    /// The share's root path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Files and directories under `rel`, relative to it, sorted (empty if `rel` is missing).
    pub fn tree(&self, rel: &str) -> Vec<String> {
        tree(&self.path().join(rel))
    }

    /// What this store's staging directory holds besides its owner file.
    pub fn staging_debris(&self) -> Vec<String> {
        let rel = format!(".minio.sys/tmp/{}", self.store.instance());
        self.tree(&rel)
            .into_iter()
            .filter(|n| n != "owner")
            .collect()
    }
}

/// Opens a store on `share` with its own lock layer.
pub fn open_store(
    share: &Path,
    durability: Durability,
    style: Option<LockStyle>,
    timeout: Duration,
) -> Result<Store, StoreError> {
    let root = Arc::new(Root::at(share).expect("share root"));
    let locks = Arc::new(Locks::new(
        root,
        &LockConfig {
            timeout,
            style,
            ..LockConfig::default()
        },
    ));
    Store::open(locks, StoreConfig { durability })
}

/// Every path under `dir`, relative and sorted, directories included.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.map_while(Result::ok) {
            let p = e.path();
            let rel: PathBuf = p.strip_prefix(base).expect("below base").into();
            out.push(rel.to_string_lossy().into_owned());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Runs a test body on its own thread and fails the test if it takes longer than `bound`
/// (a lock that is never released would otherwise hang the whole test run).
pub fn bounded_for<T: Send + 'static>(
    bound: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = channel();
    let handle = std::thread::spawn(move || {
        let out = body();
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(bound) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(RecvTimeoutError::Timeout) => panic!("test body still running after {bound:?}"),
    }
}

/// `bounded_for` with the default bound.
pub fn bounded<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    bounded_for(TEST_BOUND, body)
}

pub use super::digest::md5_hex;

/// Raw MD5.
pub fn md5_raw(bytes: &[u8]) -> [u8; 16] {
    md5::Md5::digest(bytes).into()
}

/// Puts `data` as `bucket/key`.
pub fn put(
    store: &Store,
    bucket: &str,
    key: &str,
    data: &[u8],
    options: PutOptions,
) -> Result<ObjectInfo, StoreError> {
    store.put(bucket, key, &mut &data[..], options)
}

/// Puts `data` with default options, which must succeed.
pub fn put_ok(store: &Store, bucket: &str, key: &str, data: &[u8]) -> ObjectInfo {
    put(store, bucket, key, data, PutOptions::default())
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e}"))
}

/// Reads everything a reader offers, in uneven steps to exercise offsets.
pub fn read_all(r: &ObjectReader) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024 + 7];
    loop {
        let n = r.read_at(&mut buf, out.len() as u64).expect("read_at");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The object's details and bytes, which must exist.
pub fn get_ok(store: &Store, bucket: &str, key: &str) -> (ObjectInfo, Vec<u8>) {
    let r = store
        .get(bucket, key, &ReadConditions::default())
        .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e}"));
    let bytes = read_all(&r);
    (r.into_info(), bytes)
}

/// Deterministic bytes of a given length (a cheap pseudo-random stream).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    nasgate::debug::store::body(seed, len.max(16))[..len].to_vec()
}

/// The bucket most store tests use.
pub const B: &str = "bkt";

/// A metadata map from pairs.
pub fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Put options carrying only metadata `pairs`.
pub fn with_meta(pairs: &[(&str, &str)]) -> PutOptions {
    PutOptions {
        meta: meta(pairs),
        ..PutOptions::default()
    }
}

/// Every key of `bucket`, in listing order (one page).
pub fn all_keys(share: &TestShare, bucket: &str) -> Vec<String> {
    let page = share
        .store
        .list(
            bucket,
            &ListQuery {
                prefix: "",
                delimiter: None,
                start_after: None,
                max_keys: 10_000,
            },
        )
        .expect("list");
    assert!(!page.is_truncated);
    page.objects.into_iter().map(|o| o.key).collect()
}

/// No read conditions.
pub fn no_cond() -> ReadConditions {
    ReadConditions::default()
}

/// Whether a store result is `NoSuchKey`.
pub fn is_no_such_key(r: Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(r, Err(StoreError::NoSuchKey { .. }))
}

/// Uploads one part, which must be accepted; returns its ETag.
pub fn upload_part(s: &TestShare, key: &str, id: &str, number: u32, data: &[u8]) -> String {
    let mut p = s
        .store
        .begin_part(
            B,
            key,
            id,
            number,
            Some(data.len() as u64),
            None,
            &[],
            Vec::new(),
        )
        .expect("begin part");
    for chunk in data.chunks(1 << 20) {
        p.write(chunk).expect("write part");
    }
    let (info, _) = p.finish(&s.store).expect("finish part");
    assert_eq!(info.number, number);
    assert_eq!(info.etag, md5_hex(data));
    assert_eq!(info.size, data.len() as u64);
    info.etag
}
