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

/// The ETag a record holds (None: none, or pending).
fn recorded_etag(s: &TestShare, key: &str) -> Option<String> {
    let path = s
        .path()
        .join(format!(".minio.sys/buckets/{B}/{key}/fs.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["meta"]["etag"].as_str().map(str::to_string)
}

/// A draft written through the mount's view in order, in 256 KiB writes.
fn draft_of(s: &TestShare, key: &str, data: &[u8]) -> nasgate::store::posix::Draft {
    let who = nasgate::store::posix::Creator {
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    let mut d = s.store.draft(&format!("{B}/{key}"), false, who).unwrap();
    for (i, c) in data.chunks(256 << 10).enumerate() {
        d.write_at(c, (i * (256 << 10)) as u64).unwrap();
    }
    d
}

#[test]
fn a_large_draft_goes_live_with_its_etag_pending_which_reads_compute_and_fill_etag_stores() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let data = bytes(41, (3 << 20) + 777);
        let info = draft_of(&s, "big", &data)
            .publish_at(&s.store, &format!("{B}/big"))
            .unwrap();
        assert_eq!(info.etag, "", "published with its ETag");
        assert_eq!(recorded_etag(&s, "big"), None);

        // The mount's readers need no ETag and compute none.
        let r = s.store.open_file(&format!("{B}/big")).unwrap();
        assert_eq!(r.info().etag, "");
        drop(r);
        // An S3 read computes it from the data, for its own answer.
        let (info, body) = get_ok(&s.store, B, "big");
        assert!(body == data);
        assert_eq!(info.etag, md5_hex(&data));
        assert_eq!(
            s.store.head(B, "big", &no_cond()).unwrap().etag,
            md5_hex(&data)
        );
        assert_eq!(recorded_etag(&s, "big"), None);

        assert!(s.store.fill_etag(B, "big").unwrap());
        assert_eq!(recorded_etag(&s, "big"), Some(md5_hex(&data)));
        assert!(!s.store.fill_etag(B, "big").unwrap(), "stored twice");
        assert_eq!(
            s.store.head(B, "big", &no_cond()).unwrap().etag,
            md5_hex(&data)
        );

        // A small draft is hashed at its publish.
        let small = bytes(42, 100_000);
        let info = draft_of(&s, "small", &small)
            .publish_at(&s.store, &format!("{B}/small"))
            .unwrap();
        assert_eq!(info.etag, md5_hex(&small));
        assert!(!s.store.fill_etag(B, "small").unwrap());

        // Hashed on the way (a share on a network filesystem): the ETag comes with the
        // publish, however large the draft.
        let who = nasgate::store::posix::Creator {
            mode: 0o644,
            uid: 0,
            gid: 0,
        };
        let mut d = s.store.draft(&format!("{B}/nas"), false, who).unwrap();
        d.hash_while_writing();
        for (i, c) in data.chunks(256 << 10).enumerate() {
            d.write_at(c, (i * (256 << 10)) as u64).unwrap();
        }
        let info = d.publish_at(&s.store, &format!("{B}/nas")).unwrap();
        assert_eq!(info.etag, md5_hex(&data));
        assert_eq!(recorded_etag(&s, "nas"), Some(md5_hex(&data)));

        // Replaced before the ETag is stored: the new version's record is left alone.
        draft_of(&s, "big", &data)
            .publish_at(&s.store, &format!("{B}/big"))
            .unwrap();
        let newer = bytes(43, 5000);
        put_ok(&s.store, B, "big", &newer);
        assert!(!s.store.fill_etag(B, "big").unwrap());
        assert_eq!(recorded_etag(&s, "big"), Some(md5_hex(&newer)));

        // Rewritten in place by a tool on the share: no ETag of the old bytes is stored, and
        // a read rebuilds the record from the new ones.
        draft_of(&s, "big", &data)
            .publish_at(&s.store, &format!("{B}/big"))
            .unwrap();
        let mut edited = data.clone();
        edited[10..15].copy_from_slice(b"TOOL!");
        edited.extend_from_slice(b"tail");
        std::fs::write(s.path().join(format!("{B}/big")), &edited).unwrap();
        assert!(!s.store.fill_etag(B, "big").unwrap());
        assert_eq!(
            s.store.head(B, "big", &no_cond()).unwrap().etag,
            md5_hex(&edited)
        );
        assert_eq!(recorded_etag(&s, "big"), Some(md5_hex(&edited)));
    });
}

#[test]
fn the_etag_worker_stores_queued_etags_once_each() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let store = std::sync::Arc::new(
            open_store(s.path(), Durability::Fsync, None, Duration::from_secs(10)).unwrap(),
        );
        let worker = nasgate::store::deferred::EtagWorker::start(&store);
        let mut want = Vec::new();
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            let data = bytes(50 + i as u64, (3 << 20) + i);
            draft_of(&s, key, &data)
                .publish_at(&store, &format!("{B}/{key}"))
                .unwrap();
            assert_eq!(recorded_etag(&s, key), None);
            worker.queue(B, key);
            worker.queue(B, key);
            want.push((key, md5_hex(&data)));
        }
        assert!(
            worker.settle(Duration::from_secs(60)),
            "queue not worked off"
        );
        for (key, etag) in want {
            assert_eq!(recorded_etag(&s, key), Some(etag), "{key}");
        }
    });
}
