//! S3 details real clients depend on, through the AWS SDK for Rust and raw HTTP against a real
//! `nasgate serve`: keys as exact byte strings through every XML body, directory objects that
//! keep their metadata, 304s with validators, MissingContentLength, expired presigned URLs,
//! ListBuckets pages, repeated CreateBucket, Content-Encoding as sent.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, EncodingType, ObjectIdentifier,
};
use aws_sdk_s3::Client;
use common::sdk::{body_of, client, code};
use common::Server;
use proptest::prelude::*;

const BOUND: Duration = Duration::from_secs(120);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .expect("listing decodes to UTF-8")
        .into_owned()
}

async fn put(c: &Client, bucket: &str, key: &str, body: &[u8]) {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key:?}: {e:?}"));
}

/// Every key of the bucket, from ListObjectsV2 pages (decoded when `url`) and, checked to
/// agree, from ListObjects (V1) pages.
async fn listed(c: &Client, bucket: &str, url: bool) -> Vec<String> {
    let decode = |k: &str| {
        if url {
            percent_decode(k)
        } else {
            k.to_string()
        }
    };
    let mut v2 = Vec::new();
    let mut token = None;
    loop {
        let mut req = c
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(3)
            .set_continuation_token(token.clone());
        if url {
            req = req.encoding_type(EncodingType::Url);
        }
        let page = req.send().await.unwrap();
        v2.extend(page.contents().iter().map(|o| decode(o.key().unwrap())));
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_string);
    }
    let mut v1 = Vec::new();
    let mut marker = None;
    loop {
        let mut req = c
            .list_objects()
            .bucket(bucket)
            .max_keys(2)
            .set_marker(marker.clone());
        if url {
            req = req.encoding_type(EncodingType::Url);
        }
        let page = req.send().await.unwrap();
        v1.extend(page.contents().iter().map(|o| decode(o.key().unwrap())));
        if page.is_truncated() != Some(true) {
            break;
        }
        // NextMarker is encoded like the keys; the next request sends it decoded.
        marker = Some(decode(page.next_marker().expect("NextMarker")));
    }
    assert_eq!(v1, v2, "ListObjects and ListObjectsV2 disagree");
    v2
}

/// Keys from an alphabet that XML, URLs and trimming all get wrong: spaces, tabs, CR, LF,
/// markup characters, '%', '+', non-ASCII. No '/' or '.', so every draw is a valid plain key.
fn nasty_key() -> impl Strategy<Value = String> {
    let alphabet = prop::sample::select(vec![
        ' ', '\t', '\n', '\r', '&', '<', '>', '"', '\'', '%', '+', '=', '?', '#', 'a', 'b', 'é',
        '€', '日',
    ]);
    // The SDK refuses keys of whitespace only; the boto3 leg of the client matrix covers them.
    prop::collection::vec(alphabet, 1..8)
        .prop_map(|cs| cs.into_iter().collect::<String>())
        .prop_filter("not whitespace only", |k| !k.trim().is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Keys round-trip byte for byte through PUT, listings (plain and `encoding-type=url`) and
    /// DeleteObjects, which deletes exactly the keys asked and touches nothing else.
    #[test]
    fn nasty_keys_round_trip_and_multi_delete_touches_nothing_else(
        keys in prop::collection::btree_set(nasty_key(), 1..10),
        doomed in prop::collection::vec(any::<bool>(), 10),
    ) {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        runtime().block_on(async {
            tokio::time::timeout(BOUND, async {
                let c = client(&server.endpoint());
                c.create_bucket().bucket("nasty").send().await.unwrap();
                for k in &keys {
                    put(&c, "nasty", k, k.as_bytes()).await;
                }
                let all: Vec<String> = keys.iter().cloned().collect();
                assert_eq!(listed(&c, "nasty", false).await, all);
                assert_eq!(listed(&c, "nasty", true).await, all);

                let (mut gone, mut kept) = (Vec::new(), Vec::new());
                for (i, k) in keys.iter().enumerate() {
                    if doomed[i] { gone.push(k) } else { kept.push(k) }
                }
                let objects = gone
                    .iter()
                    .map(|k| ObjectIdentifier::builder().key(k.as_str()).build().unwrap())
                    .collect::<Vec<_>>();
                if !objects.is_empty() {
                    let out = c
                        .delete_objects()
                        .bucket("nasty")
                        .delete(Delete::builder().set_objects(Some(objects)).build().unwrap())
                        .send()
                        .await
                        .unwrap();
                    assert!(out.errors().is_empty(), "{:?}", out.errors());
                    let deleted: BTreeSet<String> =
                        out.deleted().iter().map(|d| d.key().unwrap().to_string()).collect();
                    let asked: BTreeSet<String> = gone.iter().map(|k| k.to_string()).collect();
                    assert_eq!(deleted, asked);
                }
                let left: Vec<String> = kept.iter().map(|k| k.to_string()).collect();
                assert_eq!(listed(&c, "nasty", false).await, left);
                for k in &kept {
                    assert_eq!(body_of(&c, "nasty", k).await, k.as_bytes());
                }
            })
            .await
            .expect("test timed out");
        });
    }
}

#[tokio::test]
async fn whitespace_keys_are_deleted_exactly_and_the_bucket_empties() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("wspace").send().await.unwrap();
        // The SDK refuses keys of whitespace only (" "); the boto3 leg of the client matrix
        // covers those.
        for k in ["  a  ", "\ttab", " b\n", "a", "tab", "b"] {
            put(&c, "wspace", k, k.as_bytes()).await;
        }
        let asked = ["  a  ", "\ttab", " b\n"];
        let out = c
            .delete_objects()
            .bucket("wspace")
            .delete(
                Delete::builder()
                    .set_objects(Some(
                        asked
                            .iter()
                            .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
                            .collect(),
                    ))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let mut deleted: Vec<&str> = out.deleted().iter().map(|d| d.key().unwrap()).collect();
        deleted.sort();
        assert_eq!(deleted, vec!["\ttab", "  a  ", " b\n"]);
        assert_eq!(listed(&c, "wspace", false).await, vec!["a", "b", "tab"]);
        assert_eq!(body_of(&c, "wspace", "a").await, b"a");
        assert!(
            share.path().join("wspace/a").is_file() && share.path().join("wspace/tab").is_file()
        );
        assert!(!share.path().join("wspace/  a  ").exists());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn directory_objects_keep_content_type_and_user_metadata() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("dirs").send().await.unwrap();
        // What s3fs-fuse sends for mkdir.
        c.put_object()
            .bucket("dirs")
            .key("d/")
            .content_type("application/x-directory")
            .metadata("mode", "16877")
            .metadata("uid", "0")
            .body(ByteStream::from_static(b""))
            .send()
            .await
            .unwrap();
        let head = c
            .head_object()
            .bucket("dirs")
            .key("d/")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("application/x-directory"));
        assert_eq!(head.content_length(), Some(0));
        assert_eq!(head.e_tag(), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));
        let meta = head.metadata().unwrap();
        assert_eq!(meta.get("mode").map(String::as_str), Some("16877"));
        assert_eq!(meta.get("uid").map(String::as_str), Some("0"));
        // A key below the directory whose metadata path would collide with a naive layout.
        put(&c, "dirs", "d/fs.json", b"inside").await;
        assert_eq!(body_of(&c, "dirs", "d/fs.json").await, b"inside");
        c.delete_object()
            .bucket("dirs")
            .key("d/fs.json")
            .send()
            .await
            .unwrap();
        let head = c
            .head_object()
            .bucket("dirs")
            .key("d/")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("application/x-directory"));
        // Deleted, then made again without metadata: nothing of the old record shows.
        c.delete_object()
            .bucket("dirs")
            .key("d/")
            .send()
            .await
            .unwrap();
        assert!(!share
            .path()
            .join(".minio.sys/buckets/dirs/d/.minio.sys/fs.json")
            .exists());
        put(&c, "dirs", "d/", b"").await;
        let head = c
            .head_object()
            .bucket("dirs")
            .key("d/")
            .send()
            .await
            .unwrap();
        // The SDK sends its own default content type with every body.
        assert_eq!(head.content_type(), Some("application/octet-stream"));
        assert!(head.metadata().is_none_or(|m| m.is_empty()));
        // A directory replaced behind nasgate's back (another inode) loses its record. (One
        // removed and made again may get the same inode back and keep it: see `layout::dir_meta`.)
        c.put_object()
            .bucket("dirs")
            .key("e/")
            .content_type("application/x-directory")
            .body(ByteStream::from_static(b""))
            .send()
            .await
            .unwrap();
        std::fs::create_dir(share.path().join("dirs/e.new")).unwrap();
        std::fs::remove_dir(share.path().join("dirs/e")).unwrap();
        std::fs::rename(share.path().join("dirs/e.new"), share.path().join("dirs/e")).unwrap();
        let head = c
            .head_object()
            .bucket("dirs")
            .key("e/")
            .send()
            .await
            .unwrap();
        assert_ne!(head.content_type(), Some("application/x-directory"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn content_encoding_is_kept_as_sent_without_aws_chunked() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("enc").send().await.unwrap();
        c.put_object()
            .bucket("enc")
            .key("k")
            .content_encoding("deflate, gzip")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
        let head = c.head_object().bucket("enc").key("k").send().await.unwrap();
        assert_eq!(head.content_encoding(), Some("deflate, gzip"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn not_modified_carries_etag_and_last_modified() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("nmod").send().await.unwrap();
        put(&c, "nmod", "k", b"body").await;
        let head = c
            .head_object()
            .bucket("nmod")
            .key("k")
            .send()
            .await
            .unwrap();
        let etag = head.e_tag().unwrap().to_string();
        let get = c
            .get_object()
            .bucket("nmod")
            .key("k")
            .presigned(
                aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(60))
                    .unwrap(),
            )
            .await
            .unwrap();
        let target = get.uri().split_once(&server.address).unwrap().1.to_string();
        let addr = server.address.clone();
        let tag = etag.clone();
        let r = tokio::task::spawn_blocking(move || {
            let h = [
                ("Host".to_string(), addr.clone()),
                ("If-None-Match".to_string(), tag),
            ];
            common::http(&addr, "GET", &target, &h, b"")
        })
        .await
        .unwrap();
        assert_eq!(r.status, 304);
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert!(r
            .header("last-modified")
            .is_some_and(|v| v.ends_with("GMT")));
        assert!(r.body.is_empty());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn put_without_length_is_refused_and_stores_nothing() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("len").send().await.unwrap();
        let put = c
            .put_object()
            .bucket("len")
            .key("nolen")
            .presigned(
                aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(60))
                    .unwrap(),
            )
            .await
            .unwrap();
        let target = put.uri().split_once(&server.address).unwrap().1.to_string();
        let addr = server.address.clone();
        let r = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(common::ANSWER_BOUND)).unwrap();
            write!(
                s,
                "PUT {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).unwrap();
            common::parse_response(&raw, false)
        })
        .await
        .unwrap();
        assert_eq!(r.status, 411, "{}", r.text());
        assert_eq!(r.code().as_deref(), Some("MissingContentLength"));
        assert!(!share.path().join("len/nolen").exists());
        let missing = c.head_object().bucket("len").key("nolen").send().await;
        assert!(missing.is_err());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn expired_presigned_url_is_access_denied() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("exp").send().await.unwrap();
        put(&c, "exp", "k", b"body").await;
        // Signed two hours ago for one hour: expired now, with no waiting.
        let cfg = aws_sdk_s3::presigning::PresigningConfig::builder()
            .start_time(SystemTime::now() - Duration::from_secs(7200))
            .expires_in(Duration::from_secs(3600))
            .build()
            .unwrap();
        for uri in [
            c.get_object()
                .bucket("exp")
                .key("k")
                .presigned(cfg.clone())
                .await
                .unwrap()
                .uri()
                .to_string(),
            c.put_object()
                .bucket("exp")
                .key("k")
                .presigned(cfg.clone())
                .await
                .unwrap()
                .uri()
                .to_string(),
        ] {
            let target = uri.split_once(&server.address).unwrap().1.to_string();
            let addr = server.address.clone();
            let method = if uri.contains("x-id=PutObject") {
                "PUT"
            } else {
                "GET"
            };
            let r = tokio::task::spawn_blocking(move || {
                common::http(
                    &addr,
                    method,
                    &target,
                    &[("Host".into(), addr.clone())],
                    b"new",
                )
            })
            .await
            .unwrap();
            assert_eq!(r.status, 403, "{method}: {}", r.text());
            assert_eq!(r.code().as_deref(), Some("AccessDenied"));
            assert!(r.text().contains("Request has expired"));
        }
        assert_eq!(body_of(&c, "exp", "k").await, b"body");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn list_buckets_pages_with_prefix_and_continuation_token() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        for b in ["pa-1", "pa-2", "pa-3", "pb-1", "zz-9"] {
            c.create_bucket().bucket(b).send().await.unwrap();
        }
        let mut seen = Vec::new();
        let mut token = None;
        let mut pages = 0;
        loop {
            let page = c
                .list_buckets()
                .max_buckets(2)
                .set_continuation_token(token.clone())
                .send()
                .await
                .unwrap();
            pages += 1;
            assert!(page.buckets().len() <= 2);
            seen.extend(page.buckets().iter().map(|b| b.name().unwrap().to_string()));
            token = page.continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen, ["pa-1", "pa-2", "pa-3", "pb-1", "zz-9"]);
        assert_eq!(pages, 3);
        let pa = c.list_buckets().prefix("pa-").send().await.unwrap();
        let names: Vec<&str> = pa.buckets().iter().map(|b| b.name().unwrap()).collect();
        assert_eq!(names, ["pa-1", "pa-2", "pa-3"]);
        assert_eq!(pa.prefix(), Some("pa-"));
        assert!(pa.continuation_token().is_none());
        let all = c.list_buckets().send().await.unwrap();
        assert_eq!(all.buckets().len(), 5);
        let bad = c.list_buckets().max_buckets(0).send().await.unwrap_err();
        assert_eq!(code(&bad), "InvalidArgument");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn url_encoded_listing_encodes_exactly_the_fields_s3_encodes() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("urls").send().await.unwrap();
        for k in ["\nx", "\ny/z", "\nz é"] {
            put(&c, "urls", k, b"").await;
        }
        let v1 = c
            .list_objects()
            .bucket("urls")
            .prefix("\n")
            .delimiter("/")
            .marker("\nx")
            .encoding_type(EncodingType::Url)
            .max_keys(1)
            .send()
            .await
            .unwrap();
        assert_eq!(v1.prefix(), Some("%0A"));
        assert_eq!(percent_decode(v1.prefix().unwrap()), "\n");
        assert_eq!(v1.marker(), Some("%0Ax"));
        assert_eq!(percent_decode(v1.delimiter().unwrap()), "/");
        assert_eq!(v1.common_prefixes()[0].prefix(), Some("%0Ay/"));
        assert_eq!(v1.next_marker(), Some("%0Ay/"));
        let v2 = c
            .list_objects_v2()
            .bucket("urls")
            .prefix("\n")
            .start_after("\ny")
            .encoding_type(EncodingType::Url)
            .send()
            .await
            .unwrap();
        assert_eq!(v2.prefix(), Some("%0A"));
        assert_eq!(v2.start_after(), Some("%0Ay"));
        let keys: Vec<&str> = v2.contents().iter().map(|o| o.key().unwrap()).collect();
        assert_eq!(keys, ["%0Ay/z", "%0Az%20%C3%A9"]);
        // The bucket name and the continuation token are never encoded.
        assert_eq!(v2.name(), Some("urls"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn creating_an_owned_bucket_again_succeeds_only_in_us_east_1() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("own").send().await.unwrap();
        put(&c, "own", "k", b"kept").await;
        c.create_bucket().bucket("own").send().await.unwrap();
        let elsewhere = c
            .create_bucket()
            .bucket("own")
            .create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&elsewhere), "BucketAlreadyOwnedByYou");
        assert_eq!(body_of(&c, "own", "k").await, b"kept");
    })
    .await
    .expect("test timed out");
}
