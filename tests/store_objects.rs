//! Store operations on a real directory: round trips of data and metadata, the checks a
//! write must pass before anything is published, conditional reads and writes, and deletes
//! with what they prune. Directory objects and names: `store_names.rs`; buckets, copies and
//! tags: `store_buckets.rs`; multipart: `store_multipart.rs`; staging: `store_staging.rs`.

mod common;

use std::time::Duration;

use common::digest::{crc_reflected, reference_checksum};
use common::store::{
    all_keys, bounded, bytes, get_ok, is_no_such_key, md5_hex, md5_raw, meta, no_cond, put, put_ok,
    with_meta, TestShare, B,
};
use nasgate::store::checksum::{Checksum, ChecksumAlgorithm};
use nasgate::store::list::ListQuery;
use nasgate::store::{PutOptions, ReadConditions, StoreError, WriteCondition};

// ---- round trips ----

#[test]
fn put_then_get_and_head_return_the_bytes_etag_size_and_metadata() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        // Bigger than one copy chunk, so the body crosses buffer boundaries.
        let data = bytes(7, 2 * 1024 * 1024 + 333);
        let m = meta(&[
            ("content-type", "text/plain"),
            ("cache-control", "no-cache"),
            ("content-disposition", "attachment"),
            ("X-Amz-Meta-Owner", "alice"),
            ("X-Amz-Meta-Project", "nas gate"),
            ("X-Amz-Tagging", "k=v&a=b"),
        ]);
        let put_info = put(
            &s.store,
            B,
            "docs/report.txt",
            &data,
            PutOptions {
                meta: m.clone(),
                ..PutOptions::default()
            },
        )
        .expect("put");
        assert_eq!(put_info.etag, md5_hex(&data));
        assert_eq!(put_info.size, data.len() as u64);
        assert_eq!(put_info.meta, m);

        let (info, got) = get_ok(&s.store, B, "docs/report.txt");
        assert!(got == data, "bytes differ");
        assert_eq!(info.etag, md5_hex(&data));
        assert_eq!(info.size, data.len() as u64);
        assert_eq!(info.content_type(), "text/plain");
        assert_eq!(info.tags(), Some("k=v&a=b"));
        assert_eq!(info.meta, m);
        assert!(info.parts.is_empty());

        let head = s
            .store
            .head(B, "docs/report.txt", &no_cond())
            .expect("head");
        assert_eq!(head, info);

        let page = s
            .store
            .list(
                B,
                &ListQuery {
                    prefix: "docs/",
                    delimiter: Some("/"),
                    start_after: None,
                    max_keys: 10,
                },
            )
            .expect("list");
        // A listing carries what ListObjects shows: key, size, time and ETag.
        assert_eq!(page.objects.len(), 1);
        let listed = &page.objects[0];
        assert_eq!(
            (&listed.key, listed.size, listed.modified, &listed.etag),
            (&info.key, info.size, info.modified, &info.etag)
        );
    })
}

#[test]
fn reads_at_any_offset_return_the_matching_slice() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let data = bytes(3, 100_000);
        put_ok(&s.store, B, "k", &data);
        let r = s.store.get(B, "k", &no_cond()).expect("get");
        for (off, len) in [(0usize, 10usize), (1, 1), (99_990, 10), (50_000, 30_000)] {
            let mut buf = vec![0u8; len];
            let n = r.read_at(&mut buf, off as u64).expect("read_at");
            assert_eq!(&buf[..n], &data[off..off + n], "at {off}");
            assert!(n > 0);
        }
        let mut buf = [0u8; 8];
        assert_eq!(r.read_at(&mut buf, 100_000).expect("read at end"), 0);
    })
}

#[test]
fn an_empty_object_round_trips_with_the_empty_etag() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let info = put_ok(&s.store, B, "empty", b"");
        assert_eq!(info.etag, "d41d8cd98f00b204e9800998ecf8427e");
        let (info, got) = get_ok(&s.store, B, "empty");
        assert_eq!(info.size, 0);
        assert!(got.is_empty());
    })
}

#[test]
fn overwriting_replaces_data_and_metadata_whole() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put(
            &s.store,
            B,
            "k",
            b"first version",
            with_meta(&[("content-type", "text/plain"), ("X-Amz-Meta-A", "1")]),
        )
        .expect("put");
        put(
            &s.store,
            B,
            "k",
            b"second",
            with_meta(&[("X-Amz-Meta-B", "2")]),
        )
        .expect("put");
        let (info, got) = get_ok(&s.store, B, "k");
        assert_eq!(got, b"second");
        assert_eq!(info.etag, md5_hex(b"second"));
        assert_eq!(info.meta, meta(&[("X-Amz-Meta-B", "2")]));
        assert_eq!(info.content_type(), "application/octet-stream");
    })
}

#[test]
fn a_streamed_upload_publishes_only_at_finish() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "k", b"old");
        let mut up = s
            .store
            .begin_put(B, "k", PutOptions::default())
            .expect("begin");
        up.write(b"new ").expect("write");
        up.write(b"body").expect("write");
        assert_eq!(up.len(), 8);
        assert_eq!(get_ok(&s.store, B, "k").1, b"old");
        let info = up.finish(&s.store).expect("finish");
        assert_eq!(info.etag, md5_hex(b"new body"));
        assert_eq!(get_ok(&s.store, B, "k").1, b"new body");
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());
    })
}

#[test]
fn an_upload_fed_shared_buffers_has_the_md5_of_its_bytes() {
    bounded(|| {
        // Past the size where hashing moves to its own thread and past several writeback
        // steps, in uneven pieces, half of them handed over as shared buffers (as an S3
        // body arrives); the ETag is checked against values from an independent MD5.
        let s = TestShare::with_buckets(&[B]);
        let data: Vec<u8> = (0..9 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
        let mut up = s
            .store
            .begin_put(B, "big", PutOptions::default())
            .expect("begin");
        for (i, piece) in data.chunks(300_007).enumerate() {
            if i % 2 == 0 {
                up.write_bytes(::bytes::Bytes::copy_from_slice(piece))
                    .expect("write");
            } else {
                up.write(piece).expect("write");
            }
        }
        let info = up.finish(&s.store).expect("finish");
        assert_eq!(info.etag, "8b133db995591d89b7e29461f7b41b93");
        let got = get_ok(&s.store, B, "big").1;
        assert!(got == data, "bytes differ");

        let mut up = s
            .store
            .begin_put(B, "fox", PutOptions::default())
            .expect("begin");
        up.write_bytes(::bytes::Bytes::from_static(b"The quick brown fox "))
            .expect("write");
        up.write(b"jumps over the lazy dog").expect("write");
        let info = up.finish(&s.store).expect("finish");
        assert_eq!(info.etag, "9e107d9d372bb6826bd81d3542a419d6");
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());
    })
}

// ---- what a write must pass ----

#[test]
fn a_matching_content_md5_is_accepted() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let info = put(
            &s.store,
            B,
            "k",
            b"hello",
            PutOptions {
                content_md5: Some(md5_raw(b"hello")),
                ..PutOptions::default()
            },
        )
        .expect("put");
        assert_eq!(info.etag, md5_hex(b"hello"));
    })
}

#[test]
fn a_wrong_content_md5_is_bad_digest_and_keeps_the_old_object() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put(
            &s.store,
            B,
            "k",
            b"old",
            with_meta(&[("X-Amz-Meta-V", "1")]),
        )
        .expect("put");
        let bad = PutOptions {
            content_md5: Some(md5_raw(b"something else")),
            meta: meta(&[("X-Amz-Meta-V", "2")]),
            ..PutOptions::default()
        };
        let r = put(&s.store, B, "k", b"new", bad.clone());
        assert!(matches!(r, Err(StoreError::BadDigest)), "{r:?}");
        let (info, got) = get_ok(&s.store, B, "k");
        assert_eq!(got, b"old");
        assert_eq!(info.etag, md5_hex(b"old"));
        assert_eq!(info.meta, meta(&[("X-Amz-Meta-V", "1")]));

        // On a new key nothing at all appears: no data, no metadata, no staging file.
        let r = put(&s.store, B, "fresh/k", b"new", bad);
        assert!(matches!(r, Err(StoreError::BadDigest)), "{r:?}");
        assert!(is_no_such_key(s.store.head(B, "fresh/k", &no_cond())));
        assert!(!s.path().join("bkt/fresh").exists());
        assert!(!s.path().join(".minio.sys/buckets/bkt/fresh").exists());
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());
    })
}

#[test]
fn the_reference_checksums_match_published_check_values() {
    // Check values of "123456789" from the CRC catalogue, so the reference above is trusted.
    let d = b"123456789";
    assert_eq!(crc_reflected(d, 0xEDB8_8320, 32), 0xCBF4_3926);
    assert_eq!(crc_reflected(d, 0x82F6_3B78, 32), 0xE306_9283);
    assert_eq!(
        crc_reflected(d, 0x9A6C_9329_AC4B_C9B5, 64),
        0xAE8B_1486_0A79_9888
    );
}

#[test]
fn every_flexible_checksum_is_computed_stored_and_reported() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let data = bytes(11, 300_001);
        for alg in ChecksumAlgorithm::ALL {
            let key = format!("requested/{}", alg.name());
            let want = Checksum {
                algorithm: alg,
                value: reference_checksum(alg, &data),
            };
            let info = put(
                &s.store,
                B,
                &key,
                &data,
                PutOptions {
                    checksums: vec![alg],
                    ..PutOptions::default()
                },
            )
            .expect("put");
            assert_eq!(info.checksums, vec![want.clone()], "{alg:?} at put");
            let head = s.store.head(B, &key, &no_cond()).expect("head");
            assert_eq!(head.checksums, vec![want.clone()], "{alg:?} at head");

            // Sent by the client: verified, and stored too.
            let key = format!("expected/{}", alg.name());
            let info = put(
                &s.store,
                B,
                &key,
                &data,
                PutOptions {
                    expected: vec![want.clone()],
                    ..PutOptions::default()
                },
            )
            .expect("put with the right checksum");
            assert_eq!(info.checksums, vec![want.clone()], "{alg:?} expected");
        }
        // All at once.
        let info = put(
            &s.store,
            B,
            "all",
            &data,
            PutOptions {
                checksums: ChecksumAlgorithm::ALL.to_vec(),
                ..PutOptions::default()
            },
        )
        .expect("put");
        let mut got: Vec<_> = info.checksums.iter().map(|c| c.algorithm.name()).collect();
        got.sort_unstable();
        assert_eq!(got, ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]);
    })
}

#[test]
fn a_checksum_mismatch_publishes_nothing() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "k", b"old");
        for alg in ChecksumAlgorithm::ALL {
            let wrong = Checksum {
                algorithm: alg,
                value: reference_checksum(alg, b"not the body"),
            };
            let r = put(
                &s.store,
                B,
                "k",
                b"new",
                PutOptions {
                    expected: vec![wrong.clone()],
                    ..PutOptions::default()
                },
            );
            match r {
                Err(StoreError::ChecksumMismatch(name)) => assert_eq!(name, alg.name()),
                other => panic!("{alg:?}: {other:?}"),
            }
            let r = put(
                &s.store,
                B,
                "new-key",
                b"new",
                PutOptions {
                    expected: vec![wrong],
                    ..PutOptions::default()
                },
            );
            assert!(matches!(r, Err(StoreError::ChecksumMismatch(_))), "{r:?}");
        }
        let (info, got) = get_ok(&s.store, B, "k");
        assert_eq!(got, b"old");
        assert_eq!(info.etag, md5_hex(b"old"));
        assert!(is_no_such_key(s.store.head(B, "new-key", &no_cond())));
        assert_eq!(all_keys(&s, B), ["k"]);
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());
    })
}

#[test]
fn a_body_shorter_or_longer_than_announced_is_an_incomplete_body() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "k", b"old");
        for announced in [4u64, 6] {
            let r = put(
                &s.store,
                B,
                "k",
                b"fiver",
                PutOptions {
                    size: Some(announced),
                    ..PutOptions::default()
                },
            );
            match r {
                Err(StoreError::IncompleteBody { expected, got }) => {
                    assert_eq!((expected, got), (announced, 5));
                }
                other => panic!("announced {announced}: {other:?}"),
            }
        }
        assert_eq!(get_ok(&s.store, B, "k").1, b"old");
        let ok = put(
            &s.store,
            B,
            "k",
            b"fiver",
            PutOptions {
                size: Some(5),
                ..PutOptions::default()
            },
        );
        assert!(ok.is_ok(), "{ok:?}");
        assert!(s.staging_debris().is_empty());
    })
}

// ---- conditional writes ----

#[test]
fn put_if_absent_writes_a_new_key_and_refuses_an_existing_one() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let if_absent = || PutOptions {
            condition: WriteCondition::IfAbsent,
            ..PutOptions::default()
        };
        put(&s.store, B, "k", b"first", if_absent()).expect("absent key");
        let r = put(&s.store, B, "k", b"second", if_absent());
        assert!(matches!(r, Err(StoreError::PreconditionFailed)), "{r:?}");
        assert_eq!(get_ok(&s.store, B, "k").1, b"first");
        assert!(s.staging_debris().is_empty());
    })
}

#[test]
fn put_if_match_needs_the_current_etag() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let etag = put_ok(&s.store, B, "k", b"v1").etag;
        let if_match = |e: &str| PutOptions {
            condition: WriteCondition::IfMatch(e.to_string()),
            ..PutOptions::default()
        };
        let r = put(&s.store, B, "k", b"v2", if_match(&md5_hex(b"other")));
        assert!(matches!(r, Err(StoreError::PreconditionFailed)), "{r:?}");
        assert_eq!(get_ok(&s.store, B, "k").1, b"v1");

        put(&s.store, B, "k", b"v2", if_match(&format!("\"{etag}\""))).expect("quoted etag");
        assert_eq!(get_ok(&s.store, B, "k").1, b"v2");
        put(&s.store, B, "k", b"v3", if_match("*")).expect("any etag");
        // The old etag no longer matches.
        let r = put(&s.store, B, "k", b"v4", if_match(&etag));
        assert!(matches!(r, Err(StoreError::PreconditionFailed)), "{r:?}");
        assert_eq!(get_ok(&s.store, B, "k").1, b"v3");
    })
}

#[test]
fn put_if_match_on_a_missing_key_is_no_such_key_and_leaves_nothing() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let r = put(
            &s.store,
            B,
            "dir/k",
            b"v",
            PutOptions {
                condition: WriteCondition::IfMatch(md5_hex(b"v")),
                ..PutOptions::default()
            },
        );
        assert!(is_no_such_key(r));
        assert!(s.tree("bkt").is_empty(), "{:?}", s.tree("bkt"));
        assert!(
            s.tree(".minio.sys/buckets/bkt").is_empty(),
            "{:?}",
            s.tree(".minio.sys/buckets/bkt")
        );
        assert!(s.staging_debris().is_empty());
    })
}

// ---- conditional reads ----

#[test]
fn conditional_reads_follow_rfc_7232() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let info = put_ok(&s.store, B, "k", b"body");
        let etag = info.etag.clone();
        let t = info.modified;
        let later = t + Duration::from_secs(2);
        let earlier = t - Duration::from_secs(2);
        let check = |c: ReadConditions| s.store.get(B, "k", &c).map(|r| r.into_info());

        let ok = |c: ReadConditions| {
            let r = check(c.clone());
            assert!(r.is_ok(), "{c:?}: {r:?}");
        };
        let fails = |c: ReadConditions| {
            let r = check(c.clone());
            assert!(
                matches!(r, Err(StoreError::PreconditionFailed)),
                "{c:?}: {r:?}"
            );
        };
        let unmodified = |c: ReadConditions| {
            let r = check(c.clone());
            assert!(
                matches!(r, Err(StoreError::NotModified { .. })),
                "{c:?}: {r:?}"
            );
        };
        let c = ReadConditions::default;

        ok(ReadConditions {
            if_match: Some(etag.clone()),
            ..c()
        });
        ok(ReadConditions {
            if_match: Some(format!("\"nope\", \"{etag}\"")),
            ..c()
        });
        ok(ReadConditions {
            if_match: Some("*".into()),
            ..c()
        });
        fails(ReadConditions {
            if_match: Some(md5_hex(b"other")),
            ..c()
        });
        unmodified(ReadConditions {
            if_none_match: Some(format!("\"{etag}\"")),
            ..c()
        });
        unmodified(ReadConditions {
            if_none_match: Some("*".into()),
            ..c()
        });
        ok(ReadConditions {
            if_none_match: Some(md5_hex(b"other")),
            ..c()
        });
        unmodified(ReadConditions {
            if_modified_since: Some(later),
            ..c()
        });
        unmodified(ReadConditions {
            if_modified_since: Some(t),
            ..c()
        });
        ok(ReadConditions {
            if_modified_since: Some(earlier),
            ..c()
        });
        ok(ReadConditions {
            if_unmodified_since: Some(later),
            ..c()
        });
        ok(ReadConditions {
            if_unmodified_since: Some(t),
            ..c()
        });
        fails(ReadConditions {
            if_unmodified_since: Some(earlier),
            ..c()
        });
        // A matching If-Match overrides a failing If-Unmodified-Since, and a non-matching
        // If-None-Match overrides a failing If-Modified-Since.
        ok(ReadConditions {
            if_match: Some(etag.clone()),
            if_unmodified_since: Some(earlier),
            ..c()
        });
        ok(ReadConditions {
            if_none_match: Some(md5_hex(b"other")),
            if_modified_since: Some(later),
            ..c()
        });
        // If-Match is decided before If-None-Match.
        fails(ReadConditions {
            if_match: Some(md5_hex(b"other")),
            if_none_match: Some(etag.clone()),
            ..c()
        });
        // head applies the same conditions.
        let r = s.store.head(
            B,
            "k",
            &ReadConditions {
                if_none_match: Some(etag.clone()),
                ..c()
            },
        );
        assert!(matches!(r, Err(StoreError::NotModified { .. })), "{r:?}");
    })
}

// ---- delete ----

#[test]
fn deleting_a_missing_key_succeeds() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        s.store.delete(B, "never/was").expect("delete missing");
        s.store.delete(B, "nope").expect("delete missing");
        s.store.delete(B, "dir/").expect("delete missing dir");
        assert!(s.tree("bkt").is_empty());
        assert!(s.tree(".minio.sys/buckets/bkt").is_empty());
        let r = s.store.delete("nobucket", "k");
        assert!(matches!(r, Err(StoreError::NoSuchBucket(_))), "{r:?}");
    })
}

#[test]
fn delete_prunes_emptied_parents_in_data_and_metadata_trees_but_keeps_others() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "x/y/z/deep", b"1");
        put_ok(&s.store, B, "x/sibling", b"2");
        s.store.delete(B, "x/y/z/deep").expect("delete");
        assert!(is_no_such_key(s.store.head(B, "x/y/z/deep", &no_cond())));
        assert_eq!(s.tree("bkt"), ["x", "x/sibling"]);
        assert_eq!(
            s.tree(".minio.sys/buckets/bkt"),
            ["x", "x/sibling", "x/sibling/fs.json"]
        );
        s.store.delete(B, "x/sibling").expect("delete");
        assert!(s.tree("bkt").is_empty());
        assert!(s.path().join("bkt").is_dir(), "the bucket itself stays");
        assert!(s.tree(".minio.sys/buckets/bkt").is_empty());
        assert!(s.path().join(".minio.sys/buckets/bkt").is_dir());
        assert!(all_keys(&s, B).is_empty());
    })
}

#[test]
fn deleting_an_object_keeps_the_objects_below_its_metadata_neighbours() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "a/b", b"1");
        put_ok(&s.store, B, "a/c/d", b"2");
        s.store.delete(B, "a/b").expect("delete");
        assert_eq!(all_keys(&s, B), ["a/c/d"]);
        assert_eq!(get_ok(&s.store, B, "a/c/d").1, b"2");
    })
}
