//! The mount's write-behind: past 1 MiB a file's writes are queued to a thread of its own.
//! Reads, stats, rewrites and truncation through the writer's descriptor see every write
//! queued before them; the object published at close is every byte with their MD5; a write
//! that fails (a full share) fails the writer and publishes nothing.
//!
//! One test, in a binary of its own: the files are written through descriptors of this
//! process, and a child forked meanwhile by a test running beside it would close its copies
//! of them, which publishes the file (each close does) in the middle of the writes.

#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::channel;
use std::time::Duration;

use common::{get_object as get, md5_hex, put_object as put, Server, ANSWER_BOUND};
use nasgate::debug::store::body;

/// Runs `f` on a thread and returns its result, failing after `bound`.
fn bounded<T: Send + 'static>(
    what: &str,
    bound: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(bound)
        .unwrap_or_else(|_| panic!("{what} did not finish within {bound:?}"))
}

fn etag(r: &common::RawResponse) -> String {
    r.header("etag").unwrap_or("").trim_matches('"').to_string()
}

/// A server with `share` mounted at `mnt`; the mount is detached when it is dropped.
struct Mounted {
    server: Option<Server>,
    mnt: std::path::PathBuf,
}

impl Mounted {
    fn start(share: &Path, mnt: &Path) -> Mounted {
        std::fs::create_dir_all(mnt).unwrap();
        Mounted {
            server: Some(common::start_mounted(
                share,
                mnt,
                &["--mount-attr-ttl", "0"],
            )),
            mnt: mnt.to_path_buf(),
        }
    }

    fn s3(&self) -> &Server {
        self.server.as_ref().unwrap()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        drop(self.server.take());
        common::unmount_lazily(&self.mnt);
    }
}

#[test]
fn writes_behind_the_writer_are_all_read_back_and_published_and_a_failed_one_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();

    // Every byte, in order and out of order.
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let m = Mounted::start(&share, &dir.path().join("mnt"));
    assert_eq!(put(m.s3(), "/bkt", b"").status, 200);
    let path = m.mnt.join("bkt/big");
    let mut want = body(77, 8 << 20);
    want[4096..4105].copy_from_slice(b"REWRITTEN");
    let len = (7 << 20) + 12345;
    let written = {
        let (path, want) = (path.clone(), want.clone());
        bounded("the writes", ANSWER_BOUND, move || {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            for (i, c) in want[..3 << 20].chunks(256 << 10).enumerate() {
                f.write_all_at(c, (i * (256 << 10)) as u64)?;
            }
            // Read back right behind the writes, then stat.
            let mut back = vec![0u8; 1 << 20];
            f.read_exact_at(&mut back, 2 << 20)?;
            assert!(back == want[2 << 20..3 << 20], "read-back differs");
            assert_eq!(f.metadata()?.len(), 3 << 20);
            for (i, c) in want[3 << 20..6 << 20].chunks(1 << 20).enumerate() {
                f.write_all_at(c, (3 << 20) + (i << 20) as u64)?;
            }
            // A rewrite inside what was already hashed, more appends, and a cut.
            f.write_all_at(b"REWRITTEN", 4096)?;
            f.write_all_at(&want[6 << 20..], 6 << 20)?;
            f.set_len(len)?;
            let mut all = vec![0u8; len as usize];
            f.read_exact_at(&mut all, 0)?;
            assert!(
                all == want[..len as usize],
                "read-back after the cut differs"
            );
            std::io::Result::Ok(f)
        })
    }
    .expect("writes through the mount");
    assert_eq!(
        get(m.s3(), "/bkt/big").status,
        404,
        "published before close"
    );
    drop(written);
    let r = get(m.s3(), "/bkt/big");
    assert_eq!(r.status, 200);
    assert!(r.body == want[..len as usize], "published bytes differ");
    assert_eq!(etag(&r), md5_hex(&want[..len as usize]));

    // In order only: the ETag is the hash taken on the way.
    let again = body(79, 5 << 20);
    {
        let (path, again) = (path.clone(), again.clone());
        bounded("the second version", ANSWER_BOUND, move || {
            std::fs::write(&path, &again)
        })
        .expect("second version through the mount");
    }
    let r = get(m.s3(), "/bkt/big");
    assert!(r.body == again, "second version differs");
    assert_eq!(etag(&r), md5_hex(&again));
    drop(m);

    // A share that fills up while the writes are queued: the writer is told, at a later
    // write or when it syncs, and the old object stays, even though room is made again
    // before the sync (a publish would then succeed, with bytes missing).
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let _fs = common::Tmpfs::mount(&small, 8);
    let m = Mounted::start(&small, &dir.path().join("mnt-small"));
    assert_eq!(put(m.s3(), "/bkt", b"").status, 200);
    let old = body(80, 1_000_000);
    assert_eq!(put(m.s3(), "/bkt/obj", &old).status, 200);
    assert_eq!(put(m.s3(), "/bkt/filler", &body(81, 3_000_000)).status, 200);
    let target = m.mnt.join("bkt/obj");
    let filler = small.join("bkt/filler");
    let failed = bounded("the writer on a full share", ANSWER_BOUND, move || {
        use std::io::Write;
        let mut f = std::fs::File::create(&target)?;
        let chunk = vec![5u8; 1 << 20];
        for _ in 0..16 {
            f.write_all(&chunk)?;
        }
        std::fs::remove_file(&filler)?;
        f.sync_all()
    })
    .expect_err("16 MiB cannot fit on an 8 MiB share");
    assert_eq!(failed.raw_os_error(), Some(libc::ENOSPC), "{failed}");
    let r = get(m.s3(), "/bkt/obj");
    assert_eq!(r.status, 200);
    assert!(r.body == old, "the old object must stay intact");
    assert_eq!(put(m.s3(), "/bkt/small", b"fits").status, 200);
    drop(m);
}
