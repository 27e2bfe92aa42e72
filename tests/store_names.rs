//! Directory objects, key collisions and names on a real store: what S3 keys map to on the
//! share and what the store refuses.

mod common;

use std::collections::BTreeMap;

use common::store::{
    all_keys, bounded, get_ok, is_no_such_key, md5_hex, no_cond, put, put_ok, read_all, TestShare,
    B,
};
use nasgate::store::list::ListQuery;
use nasgate::store::object::CopyOptions;
use nasgate::store::{NameError, PutOptions, StoreError, WriteCondition};

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
