//! Every store operation on a real directory: round trips of data and metadata, the checks a
//! write must pass before anything is published, conditional reads and writes, deletes and
//! what they prune, directory objects and key collisions, copies, tags, multipart uploads,
//! buckets, and the staging area.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use common::store::{
    bounded, bytes, get_ok, md5_hex, md5_raw, open_store, put, put_ok, read_all, TestShare,
};
use nasgate::store::checksum::{Checksum, ChecksumAlgorithm};
use nasgate::store::list::ListQuery;
use nasgate::store::multipart::MIN_PART_SIZE;
use nasgate::store::object::CopyOptions;
use nasgate::store::{
    Durability, NameError, PutOptions, ReadConditions, StoreError, WriteCondition,
};

const B: &str = "bkt";

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with_meta(pairs: &[(&str, &str)]) -> PutOptions {
    PutOptions {
        meta: meta(pairs),
        ..PutOptions::default()
    }
}

fn all_keys(share: &TestShare, bucket: &str) -> Vec<String> {
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

fn no_cond() -> ReadConditions {
    ReadConditions::default()
}

fn is_no_such_key(r: Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(r, Err(StoreError::NoSuchKey { .. }))
}

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

/// Bitwise reflected CRC, independent of the store's table-driven implementations.
fn crc_reflected(data: &[u8], poly: u64, width: u32) -> u64 {
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let mut crc = mask;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
        }
    }
    crc ^ mask
}

/// The S3 wire value (base64 of the big-endian digest) of each algorithm over `data`.
fn reference_checksum(alg: ChecksumAlgorithm, data: &[u8]) -> String {
    use sha1::Digest as _;
    let b64 = |raw: &[u8]| base64::engine::general_purpose::STANDARD.encode(raw);
    match alg {
        ChecksumAlgorithm::Crc32 => {
            b64(&(crc_reflected(data, 0xEDB8_8320, 32) as u32).to_be_bytes())
        }
        ChecksumAlgorithm::Crc32c => {
            b64(&(crc_reflected(data, 0x82F6_3B78, 32) as u32).to_be_bytes())
        }
        ChecksumAlgorithm::Crc64Nvme => {
            b64(&crc_reflected(data, 0x9A6C_9329_AC4B_C9B5, 64).to_be_bytes())
        }
        ChecksumAlgorithm::Sha1 => b64(&sha1::Sha1::digest(data)),
        ChecksumAlgorithm::Sha256 => b64(&sha2::Sha256::digest(data)),
    }
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

// ---- directory objects ----

#[test]
fn a_directory_object_is_an_empty_directory_listed_with_its_slash() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let info = put_ok(&s.store, B, "photos/2024/", b"");
        assert_eq!(info.key, "photos/2024/");
        assert_eq!(info.etag, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(info.size, 0);
        assert!(info.is_dir());
        assert!(s.path().join("bkt/photos/2024").is_dir());
        // Its record sits where no object's metadata can be (`.minio.sys` is no key component).
        let record = s
            .path()
            .join(".minio.sys/buckets/bkt/photos/2024/.minio.sys/fs.json");
        assert!(record.is_file());
        assert!(!s
            .path()
            .join(".minio.sys/buckets/bkt/photos/2024/fs.json")
            .exists());

        let r = s.store.get(B, "photos/2024/", &no_cond()).expect("get dir");
        assert_eq!(read_all(&r), b"");
        assert_eq!(r.info().size, 0);
        drop(r);
        assert!(is_no_such_key(s.store.head(B, "photos/2024", &no_cond())));

        assert_eq!(all_keys(&s, B), ["photos/2024/"]);
        let page = s
            .store
            .list(
                B,
                &ListQuery {
                    prefix: "photos/",
                    delimiter: Some("/"),
                    start_after: None,
                    max_keys: 10,
                },
            )
            .expect("list");
        assert!(page.objects.is_empty());
        assert_eq!(page.common_prefixes, ["photos/2024/"]);

        // Once something lives below it, the directory is no object of its own.
        put_ok(&s.store, B, "photos/2024/a.jpg", b"jpg");
        assert_eq!(all_keys(&s, B), ["photos/2024/a.jpg"]);
        s.store.delete(B, "photos/2024/a.jpg").expect("delete");

        put_ok(&s.store, B, "again/", b"");
        s.store.delete(B, "again/").expect("delete dir object");
        assert!(!s.path().join("bkt/again").exists());
        assert!(is_no_such_key(s.store.head(B, "again/", &no_cond())));
    })
}

#[test]
fn a_directory_key_with_a_body_is_refused() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let r = put(&s.store, B, "d/", b"data", PutOptions::default());
        assert!(matches!(r, Err(StoreError::KeyConflict { .. })), "{r:?}");
        assert!(s.tree("bkt").is_empty());
        assert!(s.staging_debris().is_empty());
    })
}

#[test]
fn a_directory_object_deleted_while_it_holds_objects_stays_as_their_directory() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "d/k", b"1");
        s.store.delete(B, "d/").expect("delete");
        assert_eq!(get_ok(&s.store, B, "d/k").1, b"1");
    })
}

#[test]
fn a_directory_holding_objects_is_no_directory_object_to_head_or_get() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "d/k", b"1");
        put_ok(&s.store, B, "e/", b"");
        assert!(s.store.head(B, "e/", &no_cond()).is_ok());
        put_ok(&s.store, B, "e/x", b"2");
        // Listings show no `d/` or `e/`, so neither may a HEAD or GET.
        assert_eq!(all_keys(&s, B), ["d/k", "e/x"]);
        for key in ["d/", "e/"] {
            assert!(
                is_no_such_key(s.store.head(B, key, &no_cond())),
                "head {key}"
            );
            let r = s.store.get(B, key, &no_cond()).map(|r| r.into_info());
            assert!(is_no_such_key(r), "get {key}");
            let r = put(
                &s.store,
                B,
                key,
                b"",
                PutOptions {
                    condition: WriteCondition::IfMatch(md5_hex(b"")),
                    ..PutOptions::default()
                },
            );
            assert!(is_no_such_key(r), "put if-match {key}");
        }
        // The marker put before the key below it outlives that key, as in S3.
        s.store.delete(B, "e/x").expect("delete");
        assert!(s.store.head(B, "e/", &no_cond()).is_ok());
        // A directory whose only entries are NFS silly-rename files lists as empty, so it
        // reads as the directory object it lists as.
        put_ok(&s.store, B, "f/", b"");
        std::fs::write(s.path().join("bkt/f/.nfs0000000000001"), b"x").expect("write");
        assert_eq!(all_keys(&s, B), ["d/k", "e/", "f/"]);
        assert!(s.store.head(B, "f/", &no_cond()).is_ok());
    })
}

// ---- key collisions ----

#[test]
fn a_key_below_an_existing_object_conflicts_and_leaves_nothing_behind() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "a", b"file a");
        let data_before = s.tree("bkt");
        let meta_before = s.tree(".minio.sys/buckets/bkt");
        for key in ["a/b", "a/b/c", "a/"] {
            let r = put(&s.store, B, key, b"", PutOptions::default());
            assert!(
                matches!(r, Err(StoreError::KeyConflict { .. })),
                "{key}: {r:?}"
            );
            assert_eq!(s.tree("bkt"), data_before, "{key}");
            assert_eq!(s.tree(".minio.sys/buckets/bkt"), meta_before, "{key}");
        }
        let r = put(&s.store, B, "a/b", b"x", PutOptions::default());
        assert!(matches!(r, Err(StoreError::KeyConflict { .. })), "{r:?}");
        assert_eq!(get_ok(&s.store, B, "a").1, b"file a");
        assert_eq!(all_keys(&s, B), ["a"]);
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());
    })
}

#[test]
fn an_object_at_the_prefix_of_existing_keys_conflicts() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "a/b", b"below");
        put_ok(&s.store, B, "e/", b"");
        for key in ["a", "e"] {
            let meta_before = s.tree(".minio.sys/buckets/bkt");
            let r = put(&s.store, B, key, b"x", PutOptions::default());
            assert!(
                matches!(r, Err(StoreError::KeyConflict { .. })),
                "{key}: {r:?}"
            );
            assert_eq!(s.tree(".minio.sys/buckets/bkt"), meta_before, "{key}");
        }
        assert_eq!(get_ok(&s.store, B, "a/b").1, b"below");
        assert_eq!(all_keys(&s, B), ["a/b", "e/"]);
        assert!(s.staging_debris().is_empty());
    })
}

#[test]
fn a_key_below_an_object_reads_as_missing() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "a", b"file a");
        // `a/fs.json` and `a/fs.json/x` run into the object's own metadata file.
        for key in ["a/b", "a/b/c", "a/fs.json", "a/fs.json/x", "a/"] {
            let r = s.store.head(B, key, &no_cond());
            assert!(is_no_such_key(r), "head {key}");
            let r = s.store.get(B, key, &no_cond()).map(|r| r.into_info());
            assert!(is_no_such_key(r), "get {key}");
            s.store.delete(B, key).expect("delete of a missing key");
            if !key.ends_with('/') {
                let r = s.store.set_tags(B, key, Some("a=b"));
                assert!(is_no_such_key(r), "tag {key}");
            }
        }
        assert_eq!(get_ok(&s.store, B, "a").1, b"file a");
    })
}

// ---- names ----

#[test]
fn invalid_keys_are_refused_by_every_operation() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "ok", b"x");
        let long = "k".repeat(1025);
        let long_part = format!("{}/x", "p".repeat(256));
        for key in [
            "",
            "/",
            "/abs",
            "a//b",
            "a/./b",
            "../escape",
            "a/..",
            "x\0y",
            ".minio.sys/x",
            "x/.nfs0001",
            long.as_str(),
            long_part.as_str(),
        ] {
            let name_err = |r: Result<(), StoreError>, op: &str| {
                assert!(matches!(r, Err(StoreError::Name(_))), "{op} {key:?}: {r:?}");
            };
            name_err(
                put(&s.store, B, key, b"x", PutOptions::default()).map(|_| ()),
                "put",
            );
            name_err(s.store.get(B, key, &no_cond()).map(|_| ()), "get");
            name_err(s.store.head(B, key, &no_cond()).map(|_| ()), "head");
            name_err(s.store.delete(B, key), "delete");
            name_err(s.store.set_tags(B, key, Some("a=b")), "tags");
            name_err(
                s.store
                    .copy(B, "ok", B, key, &CopyOptions::default())
                    .map(|_| ()),
                "copy to",
            );
            name_err(
                s.store
                    .copy(B, key, B, "dst", &CopyOptions::default())
                    .map(|_| ()),
                "copy from",
            );
            name_err(
                s.store
                    .create_upload(B, key, BTreeMap::new(), None)
                    .map(|_| ()),
                "create upload",
            );
        }
        assert!(matches!(
            put(&s.store, B, &long, b"x", PutOptions::default()),
            Err(StoreError::Name(NameError::KeyTooLong))
        ));
        assert_eq!(all_keys(&s, B), ["ok"]);
        assert_eq!(s.tree("bkt"), ["ok"]);
        assert!(s.staging_debris().is_empty());
    })
}

#[test]
fn keys_with_spaces_unicode_and_dots_round_trip() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        // The longest key: 1024 bytes in components of at most 255 (one of two-byte chars).
        let longest = format!(
            "{}/{}/{}/{}/z",
            "l".repeat(255),
            "é".repeat(127),
            "m".repeat(255),
            "n".repeat(255)
        );
        assert_eq!(longest.len(), 1024);
        let keys = [
            "a b/c d.txt",
            "é/ü/ß",
            "...",
            ".hidden",
            "x/.y",
            "a.b/..c",
            "tab\there",
            longest.as_str(),
        ];
        for (i, k) in keys.iter().enumerate() {
            put_ok(&s.store, B, k, format!("{i}").as_bytes());
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(get_ok(&s.store, B, k).1, format!("{i}").as_bytes(), "{k}");
        }
        let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        sorted.sort();
        assert_eq!(all_keys(&s, B), sorted);
    })
}

#[test]
fn invalid_bucket_names_are_refused() {
    bounded(|| {
        let s = TestShare::with_buckets(&[]);
        for name in [
            "ab",
            "AB-upper",
            "under_score",
            "-lead",
            "trail-",
            "dot..dot",
            "192.168.1.1",
            ".minio.sys",
            "a/b",
            "",
        ] {
            let r = s.store.create_bucket(name);
            assert!(matches!(r, Err(StoreError::Name(_))), "{name:?}: {r:?}");
            // Refused either way: by name, or as no bucket at all.
            let r = s.store.head_bucket(name);
            assert!(
                matches!(r, Err(StoreError::NoSuchBucket(_) | StoreError::Name(_))),
                "{name:?}: {r:?}"
            );
        }
        assert!(s.store.list_buckets().expect("list").is_empty());
        let r = put(&s.store, "missing", "k", b"x", PutOptions::default());
        assert!(matches!(r, Err(StoreError::NoSuchBucket(_))), "{r:?}");
    })
}

#[test]
fn minio_sys_is_never_a_bucket_nor_listed() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        assert!(s.path().join(".minio.sys").is_dir());
        let names: Vec<String> = s
            .store
            .list_buckets()
            .expect("buckets")
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, [B]);
        assert!(matches!(
            s.store.head_bucket(".minio.sys"),
            Err(StoreError::NoSuchBucket(_) | StoreError::Name(_))
        ));
        assert!(matches!(
            s.store.list(
                ".minio.sys",
                &ListQuery {
                    prefix: "",
                    delimiter: None,
                    start_after: None,
                    max_keys: 10
                }
            ),
            Err(StoreError::NoSuchBucket(_) | StoreError::Name(_))
        ));
        assert!(matches!(
            s.store
                .get(".minio.sys", "format.json", &no_cond())
                .map(|_| ()),
            Err(StoreError::NoSuchBucket(_) | StoreError::Name(_))
        ));
        assert!(matches!(
            s.store.delete_bucket(".minio.sys"),
            Err(StoreError::NoSuchBucket(_) | StoreError::Name(_))
        ));
        let r = put(&s.store, ".minio.sys", "x", b"x", PutOptions::default());
        assert!(r.is_err(), "{r:?}");
        assert!(!s.path().join(".minio.sys/x").exists());
        assert!(s.path().join(".minio.sys/format.json").is_file());
        // Odd directories at the share's top are no buckets either.
        std::fs::create_dir(s.path().join("Not_A_Bucket")).expect("mkdir");
        std::fs::write(s.path().join("file-at-top"), b"x").expect("write");
        let names: Vec<String> = s
            .store
            .list_buckets()
            .expect("buckets")
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, [B]);
    })
}

// ---- buckets ----

#[test]
fn buckets_are_created_once_listed_by_name_and_deleted_only_when_empty() {
    bounded(|| {
        let s = TestShare::with_buckets(&["zeta", "alpha", "mid.dle"]);
        let names: Vec<String> = s
            .store
            .list_buckets()
            .expect("buckets")
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["alpha", "mid.dle", "zeta"]);
        assert!(matches!(
            s.store.create_bucket("alpha"),
            Err(StoreError::BucketExists(_))
        ));
        assert_eq!(s.store.head_bucket("alpha").expect("head").name, "alpha");

        put_ok(&s.store, "alpha", "d/k", b"x");
        assert!(matches!(
            s.store.delete_bucket("alpha"),
            Err(StoreError::BucketNotEmpty(_))
        ));
        s.store.delete("alpha", "d/k").expect("delete");
        put_ok(&s.store, "alpha", "empty-dir/", b"");
        assert!(matches!(
            s.store.delete_bucket("alpha"),
            Err(StoreError::BucketNotEmpty(_))
        ));
        s.store.delete("alpha", "empty-dir/").expect("delete");

        s.store.delete_bucket("alpha").expect("delete empty bucket");
        assert!(matches!(
            s.store.head_bucket("alpha"),
            Err(StoreError::NoSuchBucket(_))
        ));
        assert!(!s.path().join("alpha").exists());
        assert!(!s.path().join(".minio.sys/buckets/alpha").exists());
        assert!(matches!(
            s.store.delete_bucket("alpha"),
            Err(StoreError::NoSuchBucket(_))
        ));
        // The name is free again.
        s.store.create_bucket("alpha").expect("re-create");
        assert!(all_keys(&s, "alpha").is_empty());
    })
}

#[test]
fn a_deleted_bucket_takes_its_unfinished_uploads_along() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B, "other"]);
        let gone = s
            .store
            .create_upload(B, "k", BTreeMap::new(), None)
            .expect("create");
        upload_part(&s, "k", &gone, 1, b"part");
        let kept = s
            .store
            .create_upload("other", "k", BTreeMap::new(), None)
            .expect("create");
        s.store.delete_bucket(B).expect("delete bucket");
        s.store.create_bucket(B).expect("create again");
        let (uploads, _) = s.store.list_uploads(B, "", None, None, 10).expect("list");
        assert!(uploads.is_empty(), "a new bucket inherited {uploads:?}");
        let r = s.store.list_parts(B, "k", &gone, 0, 10);
        assert!(matches!(r, Err(StoreError::NoSuchUpload(_))), "{r:?}");
        let (others, _) = s
            .store
            .list_uploads("other", "", None, None, 10)
            .expect("list");
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].upload_id, kept);
    })
}

#[test]
fn a_bucket_holding_only_nfs_silly_rename_files_is_not_deleted_but_not_listed_either() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        std::fs::write(s.path().join("bkt/.nfs000000001234"), b"open elsewhere").expect("write");
        assert!(all_keys(&s, B).is_empty());
        assert!(matches!(
            s.store.delete_bucket(B),
            Err(StoreError::BucketNotEmpty(_))
        ));
        std::fs::remove_file(s.path().join("bkt/.nfs000000001234")).expect("rm");
        s.store.delete_bucket(B).expect("delete");
    })
}

// ---- copy ----

#[test]
fn copy_duplicates_bytes_etag_checksums_and_metadata() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B, "other"]);
        let data = bytes(5, 1_500_000);
        let m = meta(&[
            ("content-type", "image/png"),
            ("X-Amz-Meta-Owner", "bob"),
            ("X-Amz-Tagging", "t=1"),
        ]);
        let src = put(
            &s.store,
            B,
            "src/pic.png",
            &data,
            PutOptions {
                meta: m.clone(),
                checksums: vec![ChecksumAlgorithm::Crc32c],
                ..PutOptions::default()
            },
        )
        .expect("put");
        let dst = s
            .store
            .copy(
                B,
                "src/pic.png",
                "other",
                "dst/copy.png",
                &CopyOptions::default(),
            )
            .expect("copy");
        assert_eq!(dst.etag, src.etag);
        assert_eq!(dst.meta, m);
        let (info, got) = get_ok(&s.store, "other", "dst/copy.png");
        assert!(got == data);
        assert_eq!(info.etag, md5_hex(&data));
        assert_eq!(info.meta, m);
        assert_eq!(info.checksums, src.checksums);
        // The source is untouched.
        assert_eq!(get_ok(&s.store, B, "src/pic.png").1.len(), data.len());
        assert!(s.staging_debris().is_empty());
    })
}

#[test]
fn copy_with_replaced_metadata_takes_only_the_new_metadata() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put(
            &s.store,
            B,
            "src",
            b"data",
            with_meta(&[("content-type", "text/plain"), ("X-Amz-Meta-Old", "1")]),
        )
        .expect("put");
        let new = meta(&[
            ("content-type", "application/json"),
            ("X-Amz-Meta-New", "2"),
        ]);
        let dst = s
            .store
            .copy(
                B,
                "src",
                B,
                "dst",
                &CopyOptions {
                    metadata: Some(new.clone()),
                    ..CopyOptions::default()
                },
            )
            .expect("copy");
        assert_eq!(dst.meta, new);
        assert_eq!(s.store.head(B, "dst", &no_cond()).expect("head").meta, new);
        assert_eq!(
            s.store.head(B, "src", &no_cond()).expect("head").meta,
            meta(&[("content-type", "text/plain"), ("X-Amz-Meta-Old", "1")])
        );
    })
}

#[test]
fn copy_checks_source_conditions_and_the_destination_condition() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "src", b"data");
        put_ok(&s.store, B, "dst", b"keep");
        let r = s.store.copy(
            B,
            "src",
            B,
            "new",
            &CopyOptions {
                source: ReadConditions {
                    if_match: Some(md5_hex(b"other")),
                    ..ReadConditions::default()
                },
                ..CopyOptions::default()
            },
        );
        assert!(matches!(r, Err(StoreError::PreconditionFailed)), "{r:?}");
        let r = s.store.copy(
            B,
            "src",
            B,
            "dst",
            &CopyOptions {
                condition: WriteCondition::IfAbsent,
                ..CopyOptions::default()
            },
        );
        assert!(matches!(r, Err(StoreError::PreconditionFailed)), "{r:?}");
        assert_eq!(get_ok(&s.store, B, "dst").1, b"keep");
        let r = s
            .store
            .copy(B, "missing", B, "new", &CopyOptions::default());
        assert!(is_no_such_key(r));
        assert_eq!(all_keys(&s, B), ["dst", "src"]);
        assert!(s.staging_debris().is_empty());
    })
}

#[test]
fn copy_onto_itself_needs_new_metadata_and_then_keeps_bytes_and_etag() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let before = put(
            &s.store,
            B,
            "k",
            b"same bytes",
            PutOptions {
                meta: meta(&[("content-type", "text/plain"), ("X-Amz-Meta-V", "1")]),
                checksums: vec![ChecksumAlgorithm::Sha256],
                ..PutOptions::default()
            },
        )
        .expect("put");
        let r = s.store.copy(B, "k", B, "k", &CopyOptions::default());
        assert!(matches!(r, Err(StoreError::InvalidRequest(_))), "{r:?}");
        assert_eq!(s.store.head(B, "k", &no_cond()).expect("head"), before);

        let new = meta(&[("content-type", "text/markdown"), ("X-Amz-Meta-V", "2")]);
        let after = s
            .store
            .copy(
                B,
                "k",
                B,
                "k",
                &CopyOptions {
                    metadata: Some(new.clone()),
                    ..CopyOptions::default()
                },
            )
            .expect("copy onto itself");
        assert_eq!(after.etag, before.etag);
        assert_eq!(after.meta, new);
        let (info, got) = get_ok(&s.store, B, "k");
        assert_eq!(got, b"same bytes");
        assert_eq!(info.etag, before.etag);
        assert_eq!(info.meta, new);
        assert_eq!(info.checksums, before.checksums);
    })
}

#[test]
fn directory_objects_cannot_be_copied() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "d/", b"");
        put_ok(&s.store, B, "f", b"x");
        let r = s.store.copy(B, "d/", B, "e", &CopyOptions::default());
        assert!(matches!(r, Err(StoreError::InvalidRequest(_))), "{r:?}");
        let r = s.store.copy(B, "f", B, "e/", &CopyOptions::default());
        assert!(matches!(r, Err(StoreError::InvalidRequest(_))), "{r:?}");
    })
}

// ---- tags ----

#[test]
fn tags_can_be_set_replaced_and_removed_without_touching_the_rest() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let before = put(
            &s.store,
            B,
            "k",
            b"data",
            with_meta(&[("content-type", "text/plain"), ("X-Amz-Meta-A", "1")]),
        )
        .expect("put");
        s.store.set_tags(B, "k", Some("a=1&b=2")).expect("tag");
        let info = s.store.head(B, "k", &no_cond()).expect("head");
        assert_eq!(info.tags(), Some("a=1&b=2"));
        assert_eq!(info.etag, before.etag);
        assert_eq!(info.meta.get("X-Amz-Meta-A").map(String::as_str), Some("1"));
        assert_eq!(info.content_type(), "text/plain");

        s.store.set_tags(B, "k", Some("c=3")).expect("retag");
        assert_eq!(
            s.store.head(B, "k", &no_cond()).expect("head").tags(),
            Some("c=3")
        );
        s.store.set_tags(B, "k", None).expect("untag");
        let info = s.store.head(B, "k", &no_cond()).expect("head");
        assert_eq!(info.tags(), None);
        assert_eq!(info, before);
        assert_eq!(get_ok(&s.store, B, "k").1, b"data");

        assert!(is_no_such_key(s.store.set_tags(B, "missing", Some("a=b"))));
        assert!(!s.path().join(".minio.sys/buckets/bkt/missing").exists());
    })
}

// ---- multipart ----

/// Uploads one part, which must be accepted; returns its ETag.
fn upload_part(s: &TestShare, key: &str, id: &str, number: u32, data: &[u8]) -> String {
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

/// S3's multipart ETag computed here from the parts' bytes.
fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut cat = Vec::new();
    for p in parts {
        cat.extend_from_slice(&md5_raw(p));
    }
    format!("{}-{}", md5_hex(&cat), parts.len())
}

#[test]
fn a_multipart_upload_with_parts_in_any_order_completes_with_the_s3_etag() {
    bounded(|| {
        let s = TestShare::with(&[B], Durability::None);
        let m = meta(&[("content-type", "video/mp4"), ("X-Amz-Meta-Camera", "x100")]);
        let id = s
            .store
            .create_upload(B, "videos/clip.mp4", m.clone(), None)
            .expect("create");
        let p1 = bytes(1, MIN_PART_SIZE as usize);
        let p2 = bytes(2, MIN_PART_SIZE as usize + 17);
        let p3 = bytes(3, 1000);
        let e3 = upload_part(&s, "videos/clip.mp4", &id, 3, &p3);
        let e1 = upload_part(&s, "videos/clip.mp4", &id, 1, &p1);
        let e2 = upload_part(&s, "videos/clip.mp4", &id, 2, &p2);
        // Nothing is visible before completion.
        assert!(is_no_such_key(s.store.head(
            B,
            "videos/clip.mp4",
            &no_cond()
        )));
        assert!(all_keys(&s, B).is_empty());

        let (upload, parts, more) = s
            .store
            .list_parts(B, "videos/clip.mp4", &id, 0, 100)
            .expect("list parts");
        assert!(!more);
        assert_eq!(upload.key, "videos/clip.mp4");
        assert_eq!(upload.upload_id, id);
        let numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
        assert_eq!(numbers, [1, 2, 3]);

        let info = s
            .store
            .complete_upload(
                B,
                "videos/clip.mp4",
                &id,
                &[(1, e1), (2, format!("\"{e2}\"")), (3, e3.to_uppercase())],
                &WriteCondition::Always,
            )
            .expect("complete");
        let want = multipart_etag(&[&p1, &p2, &p3]);
        assert_eq!(info.etag, want);
        let (got_info, got) = get_ok(&s.store, B, "videos/clip.mp4");
        let whole = [p1.clone(), p2.clone(), p3.clone()].concat();
        assert!(got == whole, "bytes differ");
        assert_eq!(got_info.etag, want);
        assert_eq!(got_info.size, whole.len() as u64);
        assert_eq!(got_info.meta, m);
        let sizes: Vec<(u32, u64)> = got_info.parts.iter().map(|p| (p.number, p.size)).collect();
        assert_eq!(
            sizes,
            [(1, p1.len() as u64), (2, p2.len() as u64), (3, 1000)]
        );

        // The upload is gone, on disk too.
        let r = s.store.list_parts(B, "videos/clip.mp4", &id, 0, 100);
        assert!(matches!(r, Err(StoreError::NoSuchUpload(_))), "{r:?}");
        assert!(s
            .store
            .list_uploads(B, "", None, None, 100)
            .expect("uploads")
            .0
            .is_empty());
        assert!(
            s.tree(".minio.sys/multipart").is_empty(),
            "{:?}",
            s.tree(".minio.sys/multipart")
        );
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());
    })
}

#[test]
fn a_single_small_part_completes() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let id = s
            .store
            .create_upload(B, "k", BTreeMap::new(), None)
            .expect("create");
        let e = upload_part(&s, "k", &id, 1, b"tiny");
        let info = s
            .store
            .complete_upload(B, "k", &id, &[(1, e)], &WriteCondition::Always)
            .expect("complete");
        assert_eq!(info.etag, multipart_etag(&[b"tiny"]));
        assert_eq!(get_ok(&s.store, B, "k").1, b"tiny");
    })
}

#[test]
fn a_re_uploaded_part_replaces_the_earlier_one() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let id = s
            .store
            .create_upload(B, "k", BTreeMap::new(), None)
            .expect("create");
        let old = upload_part(&s, "k", &id, 1, b"first try");
        let new = upload_part(&s, "k", &id, 1, b"second try!");
        let (_, parts, _) = s.store.list_parts(B, "k", &id, 0, 10).expect("parts");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].etag, new);
        assert_eq!(parts[0].size, 11);
        let r = s
            .store
            .complete_upload(B, "k", &id, &[(1, old)], &WriteCondition::Always);
        assert!(matches!(r, Err(StoreError::InvalidPart(1))), "{r:?}");
        s.store
            .complete_upload(B, "k", &id, &[(1, new)], &WriteCondition::Always)
            .expect("complete");
        assert_eq!(get_ok(&s.store, B, "k").1, b"second try!");
    })
}

#[test]
fn list_parts_pages_with_a_marker_and_a_maximum() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let id = s
            .store
            .create_upload(B, "k", BTreeMap::new(), None)
            .expect("create");
        for n in [5u32, 1, 4, 2, 3] {
            upload_part(&s, "k", &id, n, format!("part {n}").as_bytes());
        }
        let page = |marker, max| {
            let (_, parts, more) = s.store.list_parts(B, "k", &id, marker, max).expect("parts");
            (parts.iter().map(|p| p.number).collect::<Vec<_>>(), more)
        };
        assert_eq!(page(0, 2), (vec![1, 2], true));
        assert_eq!(page(2, 2), (vec![3, 4], true));
        assert_eq!(page(4, 2), (vec![5], false));
        assert_eq!(page(3, 2), (vec![4, 5], false));
        assert_eq!(page(5, 2), (vec![], false));
        assert_eq!(page(0, 0), (vec![], true));
        assert_eq!(page(0, 1000), (vec![1, 2, 3, 4, 5], false));
        let (_, parts, _) = s.store.list_parts(B, "k", &id, 0, 10).expect("parts");
        for p in parts {
            assert_eq!(p.etag, md5_hex(format!("part {}", p.number).as_bytes()));
            assert_eq!(p.size, 6);
        }
    })
}

#[test]
fn list_uploads_filters_by_bucket_and_prefix_and_pages_with_markers() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B, "other"]);
        let mut ids = Vec::new();
        for key in ["photos/b", "docs/c", "photos/a", "photos/b", "photos/b"] {
            let id = s
                .store
                .create_upload(B, key, BTreeMap::new(), None)
                .expect("create");
            ids.push((key.to_string(), id));
        }
        s.store
            .create_upload("other", "photos/z", BTreeMap::new(), None)
            .expect("create");

        let (all, more) = s
            .store
            .list_uploads(B, "photos/", None, None, 100)
            .expect("list");
        assert!(!more);
        let keys: Vec<&str> = all.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["photos/a", "photos/b", "photos/b", "photos/b"]);
        // Uploads of one key come in the order they were created.
        let b_ids: Vec<&str> = ids
            .iter()
            .filter(|(k, _)| k == "photos/b")
            .map(|(_, id)| id.as_str())
            .collect();
        let listed_b: Vec<&str> = all[1..].iter().map(|u| u.upload_id.as_str()).collect();
        assert_eq!(listed_b, b_ids);
        assert!(all.iter().all(|u| u.bucket == B));

        let (everything, _) = s.store.list_uploads(B, "", None, None, 100).expect("list");
        assert_eq!(everything.len(), 5);
        assert_eq!(everything[0].key, "docs/c");

        // Key marker alone: uploads of later keys only.
        let (after_a, _) = s
            .store
            .list_uploads(B, "", Some("photos/a"), None, 100)
            .expect("list");
        assert_eq!(after_a.len(), 3);
        assert!(after_a.iter().all(|u| u.key == "photos/b"));

        // Walking one at a time with both markers visits every upload exactly once.
        let mut walked = Vec::new();
        let mut marker: Option<(String, String)> = None;
        for _ in 0..10 {
            let (page, more) = s
                .store
                .list_uploads(
                    B,
                    "",
                    marker.as_ref().map(|m| m.0.as_str()),
                    marker.as_ref().map(|m| m.1.as_str()),
                    1,
                )
                .expect("page");
            assert!(page.len() <= 1);
            if let Some(u) = page.last() {
                marker = Some((u.key.clone(), u.upload_id.clone()));
            }
            walked.extend(page);
            if !more {
                break;
            }
        }
        assert_eq!(walked, everything);
    })
}

#[test]
fn paging_through_uploads_misses_none_when_the_marker_upload_finishes_between_pages() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let mut created = Vec::new();
        for key in ["j", "k", "k", "k", "l"] {
            let id = s
                .store
                .create_upload(B, key, BTreeMap::new(), None)
                .expect("create");
            created.push((key.to_string(), id));
        }
        let (first, more) = s
            .store
            .list_uploads(B, "", Some("j"), None, 1)
            .expect("first page");
        assert!(more);
        assert_eq!(
            (first[0].key.as_str(), &first[0].upload_id),
            ("k", &created[1].1)
        );
        // The upload the next page starts after is completed or aborted meanwhile.
        s.store
            .abort_upload(B, "k", &first[0].upload_id)
            .expect("abort");
        let (rest, more) = s
            .store
            .list_uploads(B, "", Some("k"), Some(&first[0].upload_id), 10)
            .expect("next page");
        assert!(!more);
        let rest: Vec<(String, String)> = rest.into_iter().map(|u| (u.key, u.upload_id)).collect();
        assert_eq!(rest, created[2..].to_vec());
    })
}

#[test]
fn completion_refuses_wrong_etags_bad_order_and_small_parts_and_the_upload_survives() {
    bounded(|| {
        let s = TestShare::with(&[B], Durability::None);
        let id = s
            .store
            .create_upload(B, "k", BTreeMap::new(), None)
            .expect("create");
        let big = bytes(9, MIN_PART_SIZE as usize);
        let small = b"small".to_vec();
        let e1 = upload_part(&s, "k", &id, 1, &big);
        let e2 = upload_part(&s, "k", &id, 2, &small);
        let e3 = upload_part(&s, "k", &id, 3, &small);
        let complete = |parts: &[(u32, String)]| {
            s.store
                .complete_upload(B, "k", &id, parts, &WriteCondition::Always)
                .map(|i| i.etag)
        };
        let r = complete(&[(1, e1.clone()), (2, md5_hex(b"wrong"))]);
        assert!(matches!(r, Err(StoreError::InvalidPart(2))), "{r:?}");
        let r = complete(&[(1, e1.clone()), (4, e2.clone())]);
        assert!(matches!(r, Err(StoreError::InvalidPart(4))), "{r:?}");
        let r = complete(&[(2, e2.clone()), (1, e1.clone())]);
        assert!(matches!(r, Err(StoreError::InvalidPartOrder)), "{r:?}");
        let r = complete(&[(1, e1.clone()), (1, e1.clone())]);
        assert!(matches!(r, Err(StoreError::InvalidPartOrder)), "{r:?}");
        let r = complete(&[(1, e1.clone()), (2, e2.clone()), (3, e3.clone())]);
        assert!(matches!(r, Err(StoreError::EntityTooSmall(2))), "{r:?}");
        let r = complete(&[]);
        assert!(matches!(r, Err(StoreError::InvalidRequest(_))), "{r:?}");
        assert!(is_no_such_key(s.store.head(B, "k", &no_cond())));
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());

        // Parts may be left out.
        let etag = complete(&[(1, e1), (3, e3)]).expect("complete");
        assert_eq!(etag, multipart_etag(&[&big, &small]));
        assert_eq!(get_ok(&s.store, B, "k").1, [big, small].concat());
    })
}

#[test]
fn completion_honours_the_write_condition() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "k", b"existing");
        let id = s
            .store
            .create_upload(B, "k", BTreeMap::new(), None)
            .expect("create");
        let e = upload_part(&s, "k", &id, 1, b"new");
        let r = s
            .store
            .complete_upload(B, "k", &id, &[(1, e.clone())], &WriteCondition::IfAbsent);
        assert!(matches!(r, Err(StoreError::PreconditionFailed)), "{r:?}");
        assert_eq!(get_ok(&s.store, B, "k").1, b"existing");
        s.store
            .complete_upload(
                B,
                "k",
                &id,
                &[(1, e)],
                &WriteCondition::IfMatch(md5_hex(b"existing")),
            )
            .expect("complete");
        assert_eq!(get_ok(&s.store, B, "k").1, b"new");
    })
}

#[test]
fn a_part_must_match_its_announced_size_digest_and_checksum() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let id = s
            .store
            .create_upload(B, "k", BTreeMap::new(), None)
            .expect("create");
        let try_part = |size: Option<u64>, md5: Option<[u8; 16]>, sums: Vec<Checksum>| {
            let mut p = s
                .store
                .begin_part(B, "k", &id, 1, size, md5, &[], sums)
                .expect("begin");
            p.write(b"part body").expect("write");
            p.finish(&s.store).map(|(i, d)| (i, d.checksums))
        };
        let r = try_part(Some(3), None, Vec::new());
        assert!(matches!(r, Err(StoreError::IncompleteBody { .. })), "{r:?}");
        let r = try_part(None, Some(md5_raw(b"other")), Vec::new());
        assert!(matches!(r, Err(StoreError::BadDigest)), "{r:?}");
        let wrong = Checksum {
            algorithm: ChecksumAlgorithm::Crc32,
            value: reference_checksum(ChecksumAlgorithm::Crc32, b"other"),
        };
        let r = try_part(None, None, vec![wrong]);
        assert!(
            matches!(r, Err(StoreError::ChecksumMismatch("CRC32"))),
            "{r:?}"
        );
        let (_, parts, _) = s.store.list_parts(B, "k", &id, 0, 10).expect("parts");
        assert!(parts.is_empty(), "{parts:?}");

        let right = Checksum {
            algorithm: ChecksumAlgorithm::Sha1,
            value: reference_checksum(ChecksumAlgorithm::Sha1, b"part body"),
        };
        let (info, sums) =
            try_part(Some(9), Some(md5_raw(b"part body")), vec![right.clone()]).expect("good part");
        assert_eq!(info.etag, md5_hex(b"part body"));
        assert_eq!(sums, vec![right]);

        for n in [0u32, 10_001] {
            let r = s
                .store
                .begin_part(B, "k", &id, n, None, None, &[], Vec::new())
                .map(|_| ());
            assert!(
                matches!(r, Err(StoreError::InvalidRequest(_))),
                "part {n}: {r:?}"
            );
        }
        assert!(s.staging_debris().is_empty(), "{:?}", s.staging_debris());
    })
}

#[test]
fn abort_removes_the_upload_and_all_its_parts() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let id = s
            .store
            .create_upload(B, "k", BTreeMap::new(), None)
            .expect("create");
        let keep = s
            .store
            .create_upload(B, "k", BTreeMap::new(), None)
            .expect("create");
        upload_part(&s, "k", &id, 1, b"one");
        upload_part(&s, "k", &id, 2, b"two");
        upload_part(&s, "k", &keep, 1, b"kept");
        s.store.abort_upload(B, "k", &id).expect("abort");
        let r = s.store.abort_upload(B, "k", &id);
        assert!(matches!(r, Err(StoreError::NoSuchUpload(_))), "{r:?}");
        let r = s.store.list_parts(B, "k", &id, 0, 10);
        assert!(matches!(r, Err(StoreError::NoSuchUpload(_))), "{r:?}");
        let (uploads, _) = s.store.list_uploads(B, "", None, None, 10).expect("list");
        assert_eq!(uploads.len(), 1);
        assert_eq!(uploads[0].upload_id, keep);
        assert!(!s
            .tree(".minio.sys/multipart")
            .iter()
            .any(|p| p.contains(&id)));

        s.store.abort_upload(B, "k", &keep).expect("abort");
        assert!(
            s.tree(".minio.sys/multipart").is_empty(),
            "{:?}",
            s.tree(".minio.sys/multipart")
        );
        assert!(is_no_such_key(s.store.head(B, "k", &no_cond())));
    })
}

#[test]
fn unknown_upload_ids_are_no_such_upload() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let real = s
            .store
            .create_upload(B, "k", BTreeMap::new(), None)
            .expect("create");
        let unknown = "2c5f3c3e-8f0e-4a39-9c39-7b8a4ee30b1e".to_string();
        for id in [unknown.as_str(), "not-a-uuid", "../../tmp", ""] {
            let no_upload = |r: Result<(), StoreError>, op: &str| {
                assert!(
                    matches!(r, Err(StoreError::NoSuchUpload(_))),
                    "{op} {id:?}: {r:?}"
                );
            };
            no_upload(
                s.store.list_parts(B, "k", id, 0, 10).map(|_| ()),
                "list parts",
            );
            no_upload(
                s.store
                    .begin_part(B, "k", id, 1, None, None, &[], Vec::new())
                    .map(|_| ()),
                "begin part",
            );
            no_upload(s.store.abort_upload(B, "k", id), "abort");
            no_upload(
                s.store
                    .complete_upload(B, "k", id, &[(1, md5_hex(b""))], &WriteCondition::Always)
                    .map(|_| ()),
                "complete",
            );
        }
        // An upload belongs to its key: another key does not find it.
        let r = s.store.list_parts(B, "other", &real, 0, 10).map(|_| ());
        assert!(matches!(r, Err(StoreError::NoSuchUpload(_))), "{r:?}");
        let r = s.store.create_upload(B, "d/", BTreeMap::new(), None);
        assert!(matches!(r, Err(StoreError::InvalidRequest(_))), "{r:?}");
        let r = s
            .store
            .create_upload("nobucket", "k", BTreeMap::new(), None);
        assert!(matches!(r, Err(StoreError::NoSuchBucket(_))), "{r:?}");
    })
}

#[test]
fn expire_uploads_removes_only_uploads_older_than_the_age() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        let a = s
            .store
            .create_upload(B, "a", BTreeMap::new(), None)
            .expect("create");
        let b = s
            .store
            .create_upload(B, "b", BTreeMap::new(), None)
            .expect("create");
        upload_part(&s, "a", &a, 1, b"part");
        assert_eq!(
            s.store
                .expire_uploads(Duration::from_secs(3600))
                .expect("expire"),
            0
        );
        assert_eq!(
            s.store
                .list_uploads(B, "", None, None, 10)
                .expect("list")
                .0
                .len(),
            2
        );
        s.store.list_parts(B, "b", &b, 0, 10).expect("still there");

        assert_eq!(s.store.expire_uploads(Duration::ZERO).expect("expire"), 2);
        assert!(s
            .store
            .list_uploads(B, "", None, None, 10)
            .expect("list")
            .0
            .is_empty());
        assert!(matches!(
            s.store.list_parts(B, "a", &a, 0, 10),
            Err(StoreError::NoSuchUpload(_))
        ));
        assert!(
            s.tree(".minio.sys/multipart").is_empty(),
            "{:?}",
            s.tree(".minio.sys/multipart")
        );
    })
}

#[test]
fn copy_of_a_multipart_object_gets_a_plain_md5_etag() {
    bounded(|| {
        let s = TestShare::with(&[B], Durability::None);
        let id = s
            .store
            .create_upload(B, "mp", BTreeMap::new(), None)
            .expect("create");
        let p1 = bytes(4, MIN_PART_SIZE as usize);
        let e1 = upload_part(&s, "mp", &id, 1, &p1);
        let e2 = upload_part(&s, "mp", &id, 2, b"tail");
        let src = s
            .store
            .complete_upload(B, "mp", &id, &[(1, e1), (2, e2)], &WriteCondition::Always)
            .expect("complete");
        assert!(src.etag.ends_with("-2"));
        let dst = s
            .store
            .copy(B, "mp", B, "plain", &CopyOptions::default())
            .expect("copy");
        let whole = [p1, b"tail".to_vec()].concat();
        assert_eq!(dst.etag, md5_hex(&whole));
        let (info, got) = get_ok(&s.store, B, "plain");
        assert!(got == whole);
        assert_eq!(info.etag, md5_hex(&whole));
        assert!(info.parts.is_empty());
    })
}

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
