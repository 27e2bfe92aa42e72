//! A share written by `minio gateway nas` (FS mode) is served as it is: the test builds such a
//! share by hand, file by file in MinIO's format, and checks that every object comes back
//! exactly (bytes, ETag, size, content type, user metadata, tags, listing). Also: files that
//! tools dropped onto the share without metadata, files changed behind nasgate's back,
//! format.json handling, and that what nasgate writes is what MinIO would have written.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::store::{
    bounded, bytes, get_ok, md5_hex, md5_raw, open_store, put, put_ok, TestShare, LOCK_TIMEOUT,
};
use nasgate::store::list::ListQuery;
use nasgate::store::object::ObjectPage;
use nasgate::store::{Durability, PutOptions, ReadConditions, Store, StoreError};

const BUCKET: &str = "photos";
const FORMAT_ID: &str = "5b0f4c8e-8d7e-4a55-a0c5-2f3d6e9c1a77";

/// One object of the hand-made share and what nasgate must report for it.
struct Expected {
    key: &'static str,
    data: Vec<u8>,
    etag: String,
    content_type: &'static str,
    user: Vec<(&'static str, &'static str)>,
    tags: Option<&'static str>,
}

/// A share laid out by MinIO: the directory, the objects in it, and the metadata files that
/// MinIO wrote (path -> bytes), which reads must leave alone.
struct MinioShare {
    dir: tempfile::TempDir,
    objects: Vec<Expected>,
    minio_records: Vec<(PathBuf, Vec<u8>)>,
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

fn meta_path(root: &Path, key: &str) -> PathBuf {
    root.join(".minio.sys/buckets")
        .join(BUCKET)
        .join(key)
        .join("fs.json")
}

/// Builds the share the way MinIO FS mode left it.
fn minio_share() -> MinioShare {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(
        &root.join(".minio.sys/format.json"),
        format!(r#"{{"version":"1","format":"fs","id":"{FORMAT_ID}","fs":{{"version":"2"}}}}"#)
            .as_bytes(),
    );
    // Other files MinIO keeps in its tree, which must not disturb anything.
    write(
        &root.join(".minio.sys/config/config.json"),
        br#"{"version":"33","credential":{}}"#,
    );
    write(
        &root.join(".minio.sys/buckets/.usage.json"),
        br#"{"lastUpdate":"2021-01-01T00:00:00Z"}"#,
    );
    write(
        &root.join(".minio.sys/buckets/photos/.metadata.bin"),
        b"\x00\x01binary",
    );
    std::fs::create_dir_all(root.join(".minio.sys/tmp/9a0e2c9c-minio-tmp")).expect("mkdir");
    std::fs::create_dir_all(root.join(".minio.sys/multipart")).expect("mkdir");
    std::fs::create_dir_all(root.join(BUCKET)).expect("bucket");

    let mut objects = Vec::new();
    let mut minio_records = Vec::new();
    let mut record = |key: &str, json: String| {
        let p = meta_path(root, key);
        write(&p, json.as_bytes());
        minio_records.push((p, json.into_bytes()));
    };

    // Version 1.0.2, as the last MinIO releases with FS mode wrote it.
    let data = b"hello world\n".to_vec();
    let etag = md5_hex(&data);
    write(&root.join("photos/notes/hello.txt"), &data);
    record(
        "notes/hello.txt",
        format!(
            r#"{{"version":"1.0.2","checksum":{{"algorithm":"","blocksize":0,"hashes":null}},"meta":{{"etag":"{etag}","content-type":"text/plain","X-Amz-Meta-Owner":"alice"}}}}"#
        ),
    );
    objects.push(Expected {
        key: "notes/hello.txt",
        data,
        etag,
        content_type: "text/plain",
        user: vec![("X-Amz-Meta-Owner", "alice")],
        tags: None,
    });

    // Version 1.0.0 (2016): format and minio release fields, no checksum block.
    let data = bytes(100, 4096);
    let etag = md5_hex(&data);
    write(&root.join("photos/old/v100.bin"), &data);
    record(
        "old/v100.bin",
        format!(
            r#"{{"version":"1.0.0","format":"fs","minio":{{"release":"DEVELOPMENT.GOGET"}},"meta":{{"etag":"{etag}","content-type":"application/octet-stream","X-Amz-Meta-Legacy":"yes"}}}}"#
        ),
    );
    objects.push(Expected {
        key: "old/v100.bin",
        data,
        etag,
        content_type: "application/octet-stream",
        user: vec![("X-Amz-Meta-Legacy", "yes")],
        tags: None,
    });

    // Version 1.0.1.
    let data = b"a,b\n1,2\n".to_vec();
    let etag = md5_hex(&data);
    write(&root.join("photos/old/v101.csv"), &data);
    record(
        "old/v101.csv",
        format!(
            r#"{{"version":"1.0.1","format":"fs","minio":{{"release":"RELEASE.2018-01-01T00-00-00Z"}},"meta":{{"etag":"{etag}","content-type":"text/csv"}}}}"#
        ),
    );
    objects.push(Expected {
        key: "old/v101.csv",
        data,
        etag,
        content_type: "text/csv",
        user: vec![],
        tags: None,
    });

    // A multipart object: its ETag is no MD5 of the bytes and must be kept as it is.
    let p1 = bytes(101, 5 * 1024 * 1024);
    let p2 = bytes(102, 1234);
    let mut cat = md5_raw(&p1).to_vec();
    cat.extend_from_slice(&md5_raw(&p2));
    let etag = format!("{}-2", md5_hex(&cat));
    let data = [p1.clone(), p2.clone()].concat();
    write(&root.join("photos/big/archive.tar"), &data);
    record(
        "big/archive.tar",
        format!(
            r#"{{"version":"1.0.2","checksum":{{"algorithm":"","blocksize":0,"hashes":null}},"meta":{{"etag":"{etag}","content-type":"application/x-tar","X-Amz-Meta-Parts":"two"}},"parts":[{{"number":1,"size":{},"actualSize":{}}},{{"number":2,"size":{},"actualSize":{}}}]}}"#,
            p1.len(),
            p1.len(),
            p2.len(),
            p2.len()
        ),
    );
    objects.push(Expected {
        key: "big/archive.tar",
        data,
        etag,
        content_type: "application/x-tar",
        user: vec![("X-Amz-Meta-Parts", "two")],
        tags: None,
    });

    // Tags.
    let data = br#"{"tagged":true}"#.to_vec();
    let etag = md5_hex(&data);
    write(&root.join("photos/tagged.json"), &data);
    record(
        "tagged.json",
        format!(
            r#"{{"version":"1.0.2","checksum":{{"algorithm":"","blocksize":0,"hashes":null}},"meta":{{"etag":"{etag}","content-type":"application/json","X-Amz-Tagging":"k=v&a=b"}}}}"#
        ),
    );
    objects.push(Expected {
        key: "tagged.json",
        data,
        etag,
        content_type: "application/json",
        user: vec![],
        tags: Some("k=v&a=b"),
    });

    // A file a tool copied onto the share: no metadata at all.
    let data = b"# Read me\n".to_vec();
    write(&root.join("photos/legacy/readme.md"), &data);
    objects.push(Expected {
        key: "legacy/readme.md",
        etag: md5_hex(&data),
        data,
        content_type: "text/plain",
        user: vec![],
        tags: None,
    });

    // A file MinIO only ever knew by its placeholder ETag.
    let data = b"line 1\nline 2\n".to_vec();
    write(&root.join("photos/legacy/fake.log"), &data);
    write(
        &meta_path(root, "legacy/fake.log"),
        br#"{"version":"1.0.2","checksum":{"algorithm":"","blocksize":0,"hashes":null},"meta":{"etag":"00000000000000000000000000000000-1","content-type":"text/plain","X-Amz-Meta-From":"minio"}}"#,
    );
    objects.push(Expected {
        key: "legacy/fake.log",
        etag: md5_hex(&data),
        data,
        content_type: "text/plain",
        user: vec![("X-Amz-Meta-From", "minio")],
        tags: None,
    });

    // A directory object: MinIO made an empty directory and no fs.json.
    std::fs::create_dir_all(root.join("photos/empty-dir")).expect("mkdir");
    objects.push(Expected {
        key: "empty-dir/",
        etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
        data: Vec::new(),
        content_type: "application/octet-stream",
        user: vec![],
        tags: None,
    });

    objects.sort_by(|a, b| a.key.cmp(b.key));
    MinioShare {
        dir,
        objects,
        minio_records,
    }
}

fn open(share: &Path) -> Store {
    open_store(share, Durability::Fsync, None, LOCK_TIMEOUT).expect("open store")
}

fn list_all(store: &Store, delimiter: Option<&str>) -> ObjectPage {
    store
        .list(
            BUCKET,
            &ListQuery {
                prefix: "",
                delimiter,
                start_after: None,
                max_keys: 1000,
            },
        )
        .expect("list")
}

fn check_served(store: &Store, o: &Expected) {
    let (info, got) = get_ok(store, BUCKET, o.key);
    assert!(got == o.data, "{}: bytes differ", o.key);
    assert_eq!(info.etag, o.etag, "{}: etag", o.key);
    assert_eq!(info.size, o.data.len() as u64, "{}: size", o.key);
    assert_eq!(
        info.content_type(),
        o.content_type,
        "{}: content type",
        o.key
    );
    assert_eq!(info.tags(), o.tags, "{}: tags", o.key);
    let user: Vec<(&str, &str)> = info
        .meta
        .iter()
        .filter(|(k, _)| k.starts_with("X-Amz-Meta-"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(user, o.user, "{}: user metadata", o.key);
    let head = store
        .head(BUCKET, o.key, &ReadConditions::default())
        .expect("head");
    assert_eq!(head, info, "{}: head differs from get", o.key);
}

#[test]
fn every_object_of_a_minio_share_is_served_exactly() {
    bounded(|| {
        let share = minio_share();
        let store = open(share.dir.path());
        assert_eq!(
            store
                .list_buckets()
                .expect("buckets")
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>(),
            [BUCKET]
        );
        for o in &share.objects {
            check_served(&store, o);
        }
        // Twice: the second read goes by the metadata the first one may have written.
        for o in &share.objects {
            check_served(&store, o);
        }
    })
}

#[test]
fn a_minio_share_lists_every_object_with_its_details() {
    bounded(|| {
        let share = minio_share();
        let store = open(share.dir.path());
        // Listing first, before any read: files without metadata get theirs here.
        let page = list_all(&store, None);
        assert!(!page.is_truncated);
        let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        let want: Vec<&str> = share.objects.iter().map(|o| o.key).collect();
        assert_eq!(keys, want);
        for (listed, o) in page.objects.iter().zip(&share.objects) {
            assert_eq!(listed.etag, o.etag, "{}", o.key);
            assert_eq!(listed.size, o.data.len() as u64, "{}", o.key);
            // Content type and tags are no part of a listing; a HEAD has them.
            let head = store
                .head(BUCKET, o.key, &Default::default())
                .expect("head");
            assert_eq!(head.content_type(), o.content_type, "{}", o.key);
            assert_eq!(head.tags(), o.tags, "{}", o.key);
        }
        let page = list_all(&store, Some("/"));
        assert_eq!(
            page.common_prefixes,
            ["big/", "empty-dir/", "legacy/", "notes/", "old/"]
        );
        let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["tagged.json"]);
    })
}

#[test]
fn reading_a_minio_share_leaves_minio_metadata_byte_for_byte() {
    bounded(|| {
        let share = minio_share();
        let store = open(share.dir.path());
        for o in &share.objects {
            get_ok(&store, BUCKET, o.key);
        }
        list_all(&store, None);
        for (path, bytes) in &share.minio_records {
            let now = std::fs::read(path).expect("fs.json");
            assert!(now == *bytes, "{} was rewritten", path.display());
        }
        let format = std::fs::read_to_string(share.dir.path().join(".minio.sys/format.json"))
            .expect("format.json");
        assert!(format.contains(FORMAT_ID), "{format}");
    })
}

#[test]
fn a_file_without_metadata_gets_its_real_md5_a_content_type_and_an_fs_json_on_first_read() {
    bounded(|| {
        let share = minio_share();
        let store = open(share.dir.path());
        let p = meta_path(share.dir.path(), "legacy/readme.md");
        assert!(!p.exists());
        let (info, _) = get_ok(&store, BUCKET, "legacy/readme.md");
        assert_eq!(info.etag, md5_hex(b"# Read me\n"));
        assert_eq!(info.content_type(), "text/plain");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&p).expect("fs.json written")).expect("json");
        assert_eq!(v["version"], "1.0.2");
        assert_eq!(v["meta"]["etag"], md5_hex(b"# Read me\n"));
        assert_eq!(v["meta"]["content-type"], "text/plain");
        assert_eq!(v["checksum"]["algorithm"], "");
        assert_eq!(v["checksum"]["blocksize"], 0);
        assert!(v["checksum"]["hashes"].is_null());
    })
}

#[test]
fn minios_placeholder_etag_is_replaced_by_the_real_md5_keeping_the_rest() {
    bounded(|| {
        let share = minio_share();
        let store = open(share.dir.path());
        let (info, _) = get_ok(&store, BUCKET, "legacy/fake.log");
        assert_eq!(info.etag, md5_hex(b"line 1\nline 2\n"));
        assert_ne!(info.etag, "00000000000000000000000000000000-1");
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(meta_path(share.dir.path(), "legacy/fake.log")).expect("fs.json"),
        )
        .expect("json");
        assert_eq!(v["meta"]["etag"], md5_hex(b"line 1\nline 2\n"));
        assert_eq!(v["meta"]["X-Amz-Meta-From"], "minio");
        assert_eq!(v["meta"]["content-type"], "text/plain");
    })
}

#[test]
fn a_file_changed_behind_nasgates_back_never_shows_a_stale_etag() {
    bounded(|| {
        let s = TestShare::with_buckets(&[BUCKET]);
        let key = "changed/report.pdf";
        let data_path = s.path().join(BUCKET).join(key);
        let m: BTreeMap<String, String> = [
            ("content-type".to_string(), "application/pdf".to_string()),
            ("X-Amz-Meta-Owner".to_string(), "carol".to_string()),
        ]
        .into();
        put(
            &s.store,
            BUCKET,
            key,
            b"version one",
            PutOptions {
                meta: m.clone(),
                ..PutOptions::default()
            },
        )
        .expect("put");

        let expect = |data: &[u8], why: &str| {
            let (info, got) = get_ok(&s.store, BUCKET, key);
            assert_eq!(got, data, "{why}");
            assert_eq!(info.etag, md5_hex(data), "{why}");
            assert_eq!(info.size, data.len() as u64, "{why}");
            assert_eq!(info.meta, m, "{why}: metadata is kept");
            let listed = list_all(&s.store, None);
            assert_eq!(listed.objects[0].etag, md5_hex(data), "{why}: listing");
        };

        // Rewritten in place with another size.
        std::fs::write(&data_path, b"version two, longer").expect("write");
        expect(b"version two, longer", "size changed");

        // Rewritten in place with the same size; the tool's clock moved on.
        let before = std::fs::metadata(&data_path)
            .expect("stat")
            .modified()
            .expect("mtime");
        std::fs::write(&data_path, b"VERSION TWO, LONGER").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&data_path)
            .and_then(|f| f.set_modified(before + Duration::from_secs(1)))
            .expect("touch");
        expect(b"VERSION TWO, LONGER", "same size, new mtime");

        // Replaced by a rename with the same size and even the same mtime: a new inode.
        let before = std::fs::metadata(&data_path)
            .expect("stat")
            .modified()
            .expect("mtime");
        let staged = s.path().join(BUCKET).join("changed/.report.pdf.tmp");
        std::fs::write(&staged, b"version 2, longer!!").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&staged)
            .and_then(|f| f.set_modified(before))
            .expect("touch");
        std::fs::rename(&staged, &data_path).expect("rename");
        expect(b"version 2, longer!!", "same size and mtime, new inode");
    })
}

#[test]
fn setting_tags_on_a_minio_object_keeps_what_minio_needs_in_fs_json() {
    bounded(|| {
        let share = minio_share();
        let store = open(share.dir.path());
        for key in ["notes/hello.txt", "big/archive.tar", "old/v100.bin"] {
            let before: serde_json::Value = serde_json::from_slice(
                &std::fs::read(meta_path(share.dir.path(), key)).expect("fs.json"),
            )
            .expect("json");
            store.set_tags(BUCKET, key, Some("x=1")).expect("tag");
            let after: serde_json::Value = serde_json::from_slice(
                &std::fs::read(meta_path(share.dir.path(), key)).expect("fs.json"),
            )
            .expect("json");
            assert_eq!(after["version"], before["version"], "{key}");
            assert_eq!(after["meta"]["etag"], before["meta"]["etag"], "{key}");
            assert_eq!(
                after["meta"]["content-type"], before["meta"]["content-type"],
                "{key}"
            );
            assert_eq!(after["meta"]["X-Amz-Tagging"], "x=1", "{key}");
            for (k, v) in before["meta"].as_object().expect("meta") {
                assert_eq!(&after["meta"][k], v, "{key}: {k}");
            }
            if let Some(parts) = before.get("parts") {
                let after_parts = after["parts"].as_array().expect("parts kept");
                for (b, a) in parts.as_array().expect("parts").iter().zip(after_parts) {
                    assert_eq!(a["number"], b["number"], "{key}");
                    assert_eq!(a["size"], b["size"], "{key}");
                    assert_eq!(a["actualSize"], b["actualSize"], "{key}");
                }
            }
            let info = store
                .head(BUCKET, key, &ReadConditions::default())
                .expect("head");
            assert_eq!(info.tags(), Some("x=1"));
            assert_eq!(Some(info.etag.as_str()), before["meta"]["etag"].as_str());
        }
    })
}

#[test]
fn copying_a_minio_multipart_object_gives_a_plain_md5_etag() {
    bounded(|| {
        let share = minio_share();
        let store = open(share.dir.path());
        let src = share
            .objects
            .iter()
            .find(|o| o.key == "big/archive.tar")
            .expect("fixture");
        let info = store
            .copy(BUCKET, src.key, BUCKET, "big/copy.tar", &Default::default())
            .expect("copy");
        assert_eq!(info.etag, md5_hex(&src.data));
        let (got_info, got) = get_ok(&store, BUCKET, "big/copy.tar");
        assert!(got == src.data);
        assert_eq!(got_info.content_type(), "application/x-tar");
        assert!(got_info.parts.is_empty());
    })
}

#[test]
fn objects_nasgate_writes_are_laid_out_as_minio_lays_them_out() {
    bounded(|| {
        let s = TestShare::with(&[BUCKET], Durability::Fsync);
        let m: BTreeMap<String, String> = [
            ("content-type".to_string(), "text/plain".to_string()),
            ("X-Amz-Meta-Owner".to_string(), "alice".to_string()),
            ("X-Amz-Tagging".to_string(), "k=v".to_string()),
        ]
        .into();
        put(
            &s.store,
            BUCKET,
            "notes/hello.txt",
            b"hello world\n",
            PutOptions {
                meta: m,
                ..PutOptions::default()
            },
        )
        .expect("put");
        put_ok(&s.store, BUCKET, "dir/", b"");
        assert_eq!(
            std::fs::read(s.path().join("photos/notes/hello.txt")).expect("plain data file"),
            b"hello world\n"
        );
        assert!(s.path().join("photos/dir").is_dir());
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(meta_path(s.path(), "notes/hello.txt")).expect("fs.json"),
        )
        .expect("json");
        assert_eq!(v["version"], "1.0.2");
        assert_eq!(v["checksum"]["algorithm"], "");
        assert_eq!(v["checksum"]["blocksize"], 0);
        assert!(v["checksum"]["hashes"].is_null());
        assert_eq!(v["meta"]["etag"], md5_hex(b"hello world\n"));
        assert_eq!(v["meta"]["content-type"], "text/plain");
        assert_eq!(v["meta"]["X-Amz-Meta-Owner"], "alice");
        assert_eq!(v["meta"]["X-Amz-Tagging"], "k=v");
        // Every meta value is a string, as MinIO's map[string]string needs.
        assert!(v["meta"]
            .as_object()
            .expect("meta")
            .values()
            .all(|x| x.is_string()));

        let format: serde_json::Value = serde_json::from_slice(
            &std::fs::read(s.path().join(".minio.sys/format.json")).expect("format.json"),
        )
        .expect("json");
        assert_eq!(format["version"], "1");
        assert_eq!(format["format"], "fs");
        assert_eq!(format["fs"]["version"], "2");
        let id = format["id"].as_str().expect("id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    })
}

#[test]
fn files_without_metadata_can_be_overwritten_copied_and_deleted() {
    bounded(|| {
        let share = minio_share();
        let store = open(share.dir.path());
        let root = share.dir.path();
        write(&root.join("photos/drop/a.txt"), b"dropped a");
        write(&root.join("photos/drop/b.txt"), b"dropped b");
        write(&root.join("photos/drop/c.txt"), b"dropped c");
        // Conditional writes see the real ETag of a file nobody described yet.
        let r = put(
            &store,
            BUCKET,
            "drop/a.txt",
            b"new a",
            PutOptions {
                condition: nasgate::store::WriteCondition::IfMatch(md5_hex(b"dropped a")),
                ..PutOptions::default()
            },
        );
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(get_ok(&store, BUCKET, "drop/a.txt").1, b"new a");
        let info = store
            .copy(
                BUCKET,
                "drop/b.txt",
                BUCKET,
                "drop/b-copy.txt",
                &Default::default(),
            )
            .expect("copy");
        assert_eq!(info.etag, md5_hex(b"dropped b"));
        assert_eq!(info.content_type(), "text/plain");
        store.delete(BUCKET, "drop/c.txt").expect("delete");
        assert!(!root.join("photos/drop/c.txt").exists());
        assert!(!root.join(".minio.sys/buckets/photos/drop/c.txt").exists());
        let keys: Vec<String> = list_all(&store, None)
            .objects
            .into_iter()
            .map(|o| o.key)
            .filter(|k| k.starts_with("drop/"))
            .collect();
        assert_eq!(keys, ["drop/a.txt", "drop/b-copy.txt", "drop/b.txt"]);
    })
}

#[test]
#[cfg(unix)]
fn symlinks_out_of_the_share_are_neither_listed_nor_followed() {
    bounded(|| {
        let share = minio_share();
        let outside = tempfile::tempdir().expect("tempdir");
        write(&outside.path().join("secret"), b"not yours");
        let root = share.dir.path();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("photos/link"))
            .expect("symlink");
        std::os::unix::fs::symlink(outside.path(), root.join("photos/out")).expect("symlink");
        // Links that stay inside the share are refused too: they would lead into the internal
        // tree or across buckets.
        std::os::unix::fs::symlink("../.minio.sys", root.join("photos/internal")).expect("symlink");
        std::os::unix::fs::symlink("../.minio.sys/format.json", root.join("photos/fmt"))
            .expect("symlink");
        let store = open(root);
        for key in ["link", "out/secret", "internal/format.json", "fmt"] {
            let r = store
                .get(BUCKET, key, &ReadConditions::default())
                .map(|r| r.into_info());
            assert!(r.is_err(), "{key} was served: {r:?}");
        }
        let page = list_all(&store, None);
        assert!(
            !page.objects.iter().any(|o| o.key == "link"
                || o.key == "fmt"
                || o.key.starts_with("out")
                || o.key.starts_with("internal")),
            "{:?}",
            page.objects.iter().map(|o| &o.key).collect::<Vec<_>>()
        );
        assert_eq!(
            std::fs::read(outside.path().join("secret")).expect("read"),
            b"not yours"
        );
        assert!(common::store::tree(outside.path()) == ["secret"]);
    })
}

// ---- format.json ----

#[test]
fn a_share_formatted_for_another_backend_is_refused() {
    bounded(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = br#"{"version":"1","format":"xl","id":"5b0f4c8e-8d7e-4a55-a0c5-2f3d6e9c1a77","xl":{"version":"3","this":"x","sets":[["x"]],"distributionAlgo":"SIPMOD+PARITY"}}"#;
        write(&dir.path().join(".minio.sys/format.json"), text);
        let r = open_store(dir.path(), Durability::Fsync, None, LOCK_TIMEOUT).map(|_| ());
        match r {
            Err(e @ StoreError::Corrupt { .. }) => {
                assert!(e.to_string().contains("xl"), "{e}");
            }
            other => panic!("opened an xl share: {other:?}"),
        }
        assert_eq!(
            std::fs::read(dir.path().join(".minio.sys/format.json")).expect("format.json"),
            text
        );
        assert!(!dir.path().join(".minio.sys/tmp").exists());
        assert_eq!(
            common::store::tree(&dir.path().join(".minio.sys")),
            ["format.json"]
        );
    })
}

#[test]
fn a_share_with_damaged_format_json_is_refused() {
    bounded(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&dir.path().join(".minio.sys/format.json"), b"{\"version\":");
        let r = open_store(dir.path(), Durability::Fsync, None, LOCK_TIMEOUT).map(|_| ());
        assert!(matches!(r, Err(StoreError::Corrupt { .. })), "{r:?}");
    })
}

fn format_id(share: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(share.join(".minio.sys/format.json")).expect("read"))
            .expect("format.json is JSON");
    assert_eq!(v["format"], "fs");
    v["id"].as_str().expect("id").to_string()
}

#[test]
fn a_share_without_format_json_gets_one_and_keeps_it() {
    bounded(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = open(dir.path());
        let id = format_id(dir.path());
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        let bytes = std::fs::read(dir.path().join(".minio.sys/format.json")).expect("read");
        drop(first);
        let again = open(dir.path());
        assert_eq!(
            std::fs::read(dir.path().join(".minio.sys/format.json")).expect("read"),
            bytes
        );
        drop(again);
        // A MinIO share keeps its own id.
        let share = minio_share();
        drop(open(share.dir.path()));
        assert_eq!(format_id(share.dir.path()), FORMAT_ID);
    })
}

#[test]
fn stores_opening_an_empty_share_at_once_agree_on_one_format_json() {
    bounded(|| {
        for round in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            let threads = 6;
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads));
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let path = dir.path().to_path_buf();
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        open_store(&path, Durability::Fsync, None, LOCK_TIMEOUT)
                    })
                })
                .collect();
            let stores: Vec<Store> = handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("open"))
                .collect();
            let id = format_id(dir.path());
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "round {round}: {id}");
            let sys = common::store::tree(&dir.path().join(".minio.sys"));
            assert!(
                !sys.iter().any(|p| p.starts_with("format.json.")),
                "round {round}: staging left: {sys:?}"
            );
            // Every instance sees the same id from now on.
            drop(stores);
            drop(open(dir.path()));
            assert_eq!(format_id(dir.path()), id);
        }
    })
}

#[test]
fn an_empty_format_json_left_by_a_crash_is_completed_by_the_next_open() {
    bounded(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        // The winner of the creation race created the file and died before renaming its
        // content over it.
        let p = dir.path().join(".minio.sys/format.json");
        write(&p, b"");
        let long_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_modified(long_ago))
            .expect("age it");
        drop(open(dir.path()));
        let id = format_id(dir.path());
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        drop(open(dir.path()));
        assert_eq!(format_id(dir.path()), id);
    })
}
