//! Multipart uploads on a real store: parts, completion, listing, abort, and what a
//! completed object looks like.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::digest::reference_checksum;
use common::store::{
    all_keys, bounded, bytes, get_ok, is_no_such_key, md5_hex, md5_raw, meta, no_cond, put_ok,
    upload_part, TestShare, B,
};
use nasgate::store::checksum::{Checksum, ChecksumAlgorithm};
use nasgate::store::multipart::MIN_PART_SIZE;
use nasgate::store::object::CopyOptions;
use nasgate::store::{Durability, StoreError, WriteCondition};

// ---- multipart ----

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
