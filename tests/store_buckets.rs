//! Buckets, copies and tags on a real store.

mod common;

use std::collections::BTreeMap;

use common::store::{
    all_keys, bounded, bytes, get_ok, is_no_such_key, md5_hex, meta, no_cond, put, put_ok,
    upload_part, with_meta, TestShare, B,
};
use nasgate::store::checksum::ChecksumAlgorithm;
use nasgate::store::object::CopyOptions;
use nasgate::store::{PutOptions, ReadConditions, StoreError, WriteCondition};

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
        // Reads look the bucket up only when the object is missing, and still tell the two
        // apart.
        for key in ["d/k", "empty-dir/"] {
            let r = s.store.get("alpha", key, &ReadConditions::default());
            assert!(matches!(r, Err(StoreError::NoSuchBucket(_))), "{key}");
            let r = s.store.head("alpha", key, &ReadConditions::default());
            assert!(matches!(r, Err(StoreError::NoSuchBucket(_))), "{key}");
        }
        assert!(!s.path().join("alpha").exists(), "a read makes nothing");
        assert!(!s.path().join(".minio.sys/buckets/alpha").exists());
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
