//! The staging area on a real store: dropped uploads leave nothing, sweeps take only dead
//! instances' files, and threads racing on one key never see a torn object.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use common::store::{
    bounded, bytes, get_ok, md5_hex, no_cond, open_store, put, put_ok, read_all, TestShare, B,
};
use nasgate::store::{Durability, PutOptions, StoreError};

// ---- staging area ----

#[test]
fn a_dropped_upload_leaves_the_object_unchanged_and_no_temp_file() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "k", b"old");
        let mut up = s
            .store
            .begin_put(B, "k", PutOptions::default())
            .expect("begin");
        up.write(&bytes(1, 100_000)).expect("write");
        assert_eq!(s.staging_debris().len(), 1, "the body is staged");
        drop(up);
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());
        let (info, got) = get_ok(&s.store, B, "k");
        assert_eq!(got, b"old");
        assert_eq!(info.etag, md5_hex(b"old"));

        let id = s
            .store
            .create_upload(B, "m", BTreeMap::new(), None)
            .expect("create");
        let mut part = s
            .store
            .begin_part(B, "m", &id, 1, None, None, &[], Vec::new())
            .expect("begin part");
        part.write(b"half a part").expect("write");
        drop(part);
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());
        let (_, parts, _) = s.store.list_parts(B, "m", &id, 0, 10).expect("parts");
        assert!(parts.is_empty());
    })
}

#[test]
fn sweep_removes_a_dead_instances_staging_but_never_a_live_ones() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        if s.store.locks().style() != nasgate::platform::LockStyle::Ofd {
            // With classic locks a second store in this process would share the first one's
            // locks; tests/store_crash.rs covers that style with real processes.
            eprintln!("no OFD locks here: skipped");
            return;
        }
        // A second instance in the same process: with OFD locks it is as separate as another
        // process would be.
        let live = open_store(
            s.path(),
            Durability::Fsync,
            None,
            common::store::LOCK_TIMEOUT,
        )
        .expect("second store");
        let mut staging = live
            .begin_put(B, "k", PutOptions::default())
            .expect("begin");
        staging.write(b"in flight").expect("write");

        // A dead instance: its owner file is there but nobody holds its lock.
        let dead = s
            .path()
            .join(".minio.sys/tmp/0b9c6a4e-dead-4c1e-9a5e-3f1d2b7c8a90");
        std::fs::create_dir_all(&dead).expect("mkdir");
        std::fs::write(dead.join("owner"), b"").expect("owner");
        std::fs::write(dead.join("6f1c-staged-body"), b"debris").expect("debris");
        // A fresh directory without an owner file (an instance still starting) is kept; an
        // old one (a MinIO leftover) goes.
        let starting = s.path().join(".minio.sys/tmp/starting-now");
        std::fs::create_dir_all(&starting).expect("mkdir");
        let minio_old = s.path().join(".minio.sys/tmp/minio-leftover");
        std::fs::create_dir_all(&minio_old).expect("mkdir");
        std::fs::write(minio_old.join("part.1"), b"old").expect("write");
        let two_days_ago = SystemTime::now() - Duration::from_secs(48 * 3600);
        std::fs::File::open(&minio_old)
            .and_then(|d| d.set_modified(two_days_ago))
            .expect("age the directory");

        assert_eq!(s.store.sweep_tmp().expect("sweep"), 2);
        assert!(!dead.exists());
        assert!(!minio_old.exists());
        assert!(starting.exists());
        let live_dir = s.path().join(".minio.sys/tmp").join(live.instance());
        assert!(live_dir.join("owner").exists());
        assert_eq!(
            common::store::tree(&live_dir).len(),
            2,
            "owner and the staged body"
        );
        assert!(s
            .path()
            .join(".minio.sys/tmp")
            .join(s.store.instance())
            .exists());

        // The live instance's upload is unharmed.
        staging.write(b" and done").expect("write");
        staging.finish(&live).expect("finish");
        assert_eq!(get_ok(&s.store, B, "k").1, b"in flight and done");

        // The live instance sweeps too, and spares the first one.
        assert_eq!(live.sweep_tmp().expect("sweep"), 0);
        drop(live);
        assert!(
            !live_dir.exists(),
            "a clean close removes its staging directory"
        );
        assert_eq!(s.store.sweep_tmp().expect("sweep"), 0);
        assert!(s
            .path()
            .join(".minio.sys/tmp")
            .join(s.store.instance())
            .exists());
    })
}

#[test]
fn threads_putting_reading_and_deleting_the_same_keys_never_see_a_torn_object() {
    bounded(|| {
        use nasgate::debug::store::{body, is_whole, Rng};
        let s = std::sync::Arc::new(TestShare::with(&[B], Durability::None));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut rng = Rng::new(t + 1);
                    let mut reads = 0;
                    for _ in 0..250 {
                        // Keys share parents in the data and the metadata tree, so deletes prune
                        // directories that puts of the other keys are making.
                        let n = rng.next_u64();
                        let key = format!("hot/{}/{}", n % 2, (n >> 8) % 2);
                        match rng.next_u64() % 10 {
                            0..=3 => {
                                let size = (rng.next_u64() % 200_000) as usize;
                                let data = body(rng.next_u64(), size);
                                let info = put(&s.store, B, &key, &data, PutOptions::default())
                                    .expect("put");
                                assert_eq!(info.etag, md5_hex(&data));
                            }
                            4..=8 => match s.store.get(B, &key, &no_cond()) {
                                Ok(r) => {
                                    let got = read_all(&r);
                                    assert!(is_whole(&got), "torn read of {key}");
                                    assert_eq!(r.info().etag, md5_hex(&got), "{key}");
                                    assert_eq!(r.info().size, got.len() as u64, "{key}");
                                    reads += 1;
                                }
                                Err(StoreError::NoSuchKey { .. }) => {}
                                Err(e) => panic!("get {key}: {e}"),
                            },
                            _ => s.store.delete(B, &key).expect("delete"),
                        }
                    }
                    reads
                })
            })
            .collect();
        let reads: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
        assert!(reads > 50, "too few reads to mean anything: {reads}");
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());
    })
}

#[test]
fn a_put_cannot_publish_while_a_reader_holds_the_object_and_gives_up_busy() {
    bounded(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(
            dir.path(),
            Durability::Fsync,
            None,
            Duration::from_millis(300),
        )
        .expect("open");
        store.create_bucket(B).expect("bucket");
        put_ok(&store, B, "k", b"old");
        let reader = store.get(B, "k", &no_cond()).expect("get");
        let r = put(&store, B, "k", b"new", PutOptions::default());
        assert!(matches!(r, Err(StoreError::Busy(_))), "{r:?}");
        let r = store.delete(B, "k");
        assert!(matches!(r, Err(StoreError::Busy(_))), "{r:?}");
        assert_eq!(read_all(&reader), b"old");
        drop(reader);
        put_ok(&store, B, "k", b"new");
        assert_eq!(get_ok(&store, B, "k").1, b"new");
        let debris: Vec<String> =
            common::store::tree(&dir.path().join(".minio.sys/tmp").join(store.instance()))
                .into_iter()
                .filter(|n| n != "owner")
                .collect();
        assert!(debris.is_empty(), "{debris:?}");
    })
}
