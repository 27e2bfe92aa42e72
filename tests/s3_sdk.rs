//! The S3 API through the official AWS SDK for Rust against a real `nasgate serve` process.

mod common;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, Tag,
    Tagging,
};
use common::sdk::{body_of, client, client_with, code};
use common::{Server, ACCESS_KEY, SECRET_KEY};

const BOUND: Duration = Duration::from_secs(120);

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn buckets_are_created_listed_located_and_deleted_only_when_empty() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("alpha").send().await.unwrap();
        c.create_bucket().bucket("beta").send().await.unwrap();
        // us-east-1 answers a repeated create of one's own bucket with success.
        c.create_bucket().bucket("alpha").send().await.unwrap();
        let bad = c
            .create_bucket()
            .bucket("Bad_Name")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&bad), "InvalidBucketName");
        let names: Vec<String> = c
            .list_buckets()
            .send()
            .await
            .unwrap()
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_string))
            .collect();
        assert_eq!(names, ["alpha", "beta"]);
        c.head_bucket().bucket("alpha").send().await.unwrap();
        assert!(c.head_bucket().bucket("gamma").send().await.is_err());
        let loc = c
            .get_bucket_location()
            .bucket("alpha")
            .send()
            .await
            .unwrap();
        assert!(loc
            .location_constraint()
            .is_none_or(|l| l.as_str().is_empty()));
        let v = c
            .get_bucket_versioning()
            .bucket("alpha")
            .send()
            .await
            .unwrap();
        assert!(v.status().is_none());
        c.put_object()
            .bucket("alpha")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
        let busy = c.delete_bucket().bucket("alpha").send().await.unwrap_err();
        assert_eq!(code(&busy), "BucketNotEmpty");
        c.delete_object()
            .bucket("alpha")
            .key("k")
            .send()
            .await
            .unwrap();
        c.delete_bucket().bucket("alpha").send().await.unwrap();
        let gone = c.delete_bucket().bucket("alpha").send().await.unwrap_err();
        assert_eq!(code(&gone), "NoSuchBucket");
        let acl = c.get_bucket_acl().bucket("beta").send().await.unwrap();
        assert_eq!(
            acl.grants()[0].permission(),
            Some(&aws_sdk_s3::types::Permission::FullControl)
        );
        let policy = c
            .get_bucket_policy()
            .bucket("beta")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&policy), "NoSuchBucketPolicy");
        let put_policy = c
            .put_bucket_policy()
            .bucket("beta")
            .policy("{}")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&put_policy), "MalformedPolicy");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn objects_round_trip_with_metadata_ranges_conditions_and_overrides() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("bkt").send().await.unwrap();
        let data = pattern(100_000, 7);
        let put = c
            .put_object()
            .bucket("bkt")
            .key("dir/file.bin")
            .body(ByteStream::from(data.clone()))
            .content_type("application/x-test")
            .cache_control("max-age=60")
            .metadata("owner", "alice")
            .tagging("team=storage&tier=gold")
            .send()
            .await
            .unwrap();
        let etag = put.e_tag().unwrap().to_string();
        assert_eq!(etag, format!("\"{}\"", hex::encode(md5_of(&data))));
        assert_eq!(body_of(&c, "bkt", "dir/file.bin").await, data);

        let head = c
            .head_object()
            .bucket("bkt")
            .key("dir/file.bin")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(100_000));
        assert_eq!(head.content_type(), Some("application/x-test"));
        assert_eq!(head.cache_control(), Some("max-age=60"));
        assert_eq!(
            head.metadata().unwrap().get("owner").map(String::as_str),
            Some("alice")
        );
        assert_eq!(head.e_tag(), Some(etag.as_str()));

        for (range, from, len) in [
            ("bytes=0-9", 0usize, 10usize),
            ("bytes=99990-", 99_990, 10),
            ("bytes=-5", 99_995, 5),
            ("bytes=50000-50000", 50_000, 1),
        ] {
            let r = c
                .get_object()
                .bucket("bkt")
                .key("dir/file.bin")
                .range(range)
                .send()
                .await
                .unwrap();
            assert_eq!(r.content_length(), Some(len as i64), "{range}");
            assert!(r.content_range().unwrap().starts_with("bytes "), "{range}");
            let got = r.body.collect().await.unwrap().into_bytes();
            assert_eq!(&got[..], &data[from..from + len], "{range}");
        }
        let beyond = c
            .get_object()
            .bucket("bkt")
            .key("dir/file.bin")
            .range("bytes=100000-")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&beyond), "InvalidRange");

        let not_modified = c
            .get_object()
            .bucket("bkt")
            .key("dir/file.bin")
            .if_none_match(&etag)
            .send()
            .await
            .unwrap_err();
        assert!(
            format!("{not_modified:?}").contains("304"),
            "{not_modified:?}"
        );
        let failed = c
            .get_object()
            .bucket("bkt")
            .key("dir/file.bin")
            .if_match("\"nope\"")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&failed), "PreconditionFailed");
        c.get_object()
            .bucket("bkt")
            .key("dir/file.bin")
            .if_match(&etag)
            .send()
            .await
            .unwrap();

        let over = c
            .get_object()
            .bucket("bkt")
            .key("dir/file.bin")
            .response_content_type("text/plain")
            .response_content_disposition("attachment; filename=x")
            .send()
            .await
            .unwrap();
        assert_eq!(over.content_type(), Some("text/plain"));
        assert_eq!(over.content_disposition(), Some("attachment; filename=x"));

        let tags = c
            .get_object_tagging()
            .bucket("bkt")
            .key("dir/file.bin")
            .send()
            .await
            .unwrap();
        let mut pairs: Vec<(String, String)> = tags
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                ("team".to_string(), "storage".to_string()),
                ("tier".into(), "gold".into())
            ]
        );
        c.put_object_tagging()
            .bucket("bkt")
            .key("dir/file.bin")
            .tagging(
                Tagging::builder()
                    .tag_set(Tag::builder().key("a b").value("c&d").build().unwrap())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let tags = c
            .get_object_tagging()
            .bucket("bkt")
            .key("dir/file.bin")
            .send()
            .await
            .unwrap();
        assert_eq!(tags.tag_set()[0].key(), "a b");
        assert_eq!(tags.tag_set()[0].value(), "c&d");
        c.delete_object_tagging()
            .bucket("bkt")
            .key("dir/file.bin")
            .send()
            .await
            .unwrap();
        assert!(c
            .get_object_tagging()
            .bucket("bkt")
            .key("dir/file.bin")
            .send()
            .await
            .unwrap()
            .tag_set()
            .is_empty());

        let missing = c
            .get_object()
            .bucket("bkt")
            .key("nope")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&missing), "NoSuchKey");
        c.delete_object()
            .bucket("bkt")
            .key("dir/file.bin")
            .send()
            .await
            .unwrap();
        c.delete_object()
            .bucket("bkt")
            .key("dir/file.bin")
            .send()
            .await
            .unwrap();
        assert!(
            !share.path().join("bkt/dir").exists(),
            "empty directory not pruned"
        );
    })
    .await
    .expect("test timed out");
}

/// Bytes that name their own offset (each 8-byte word is its index), so a piece of a body
/// sent from the wrong place or twice cannot match.
fn offset_pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / 8) as u64).to_le_bytes()[i % 8])
        .collect()
}

#[tokio::test]
async fn bodies_longer_than_one_send_step_come_back_whole_and_in_ranges() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("bkt").send().await.unwrap();
        // Many 128 KiB steps and a short last one; several streams at once reuse their
        // buffers while hyper still writes others.
        let data = offset_pattern(3 * 1024 * 1024 + 12_345);
        c.put_object()
            .bucket("bkt")
            .key("big")
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        let whole = (0..4).map(|_| body_of(&c, "bkt", "big"));
        for got in futures_util::future::join_all(whole).await {
            assert!(got == data, "a whole body differs");
        }
        for (range, from, len) in [
            ("bytes=131000-400000", 131_000usize, 269_001usize),
            ("bytes=262144-524287", 262_144, 262_144),
            ("bytes=-70000", data.len() - 70_000, 70_000),
            ("bytes=1-", 1, data.len() - 1),
            // Ends mid-step, far from the end of the object.
            ("bytes=100-2000000", 100, 1_999_901),
        ] {
            let r = c
                .get_object()
                .bucket("bkt")
                .key("big")
                .range(range)
                .send()
                .await
                .unwrap();
            let got = r.body.collect().await.unwrap().into_bytes();
            assert!(got[..] == data[from..from + len], "{range} differs");
        }
    })
    .await
    .expect("test timed out");
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(data).into()
}

#[tokio::test]
async fn flexible_checksums_are_verified_stored_and_returned() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("bkt").send().await.unwrap();
        for alg in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32C,
            ChecksumAlgorithm::Crc64Nvme,
            ChecksumAlgorithm::Sha1,
            ChecksumAlgorithm::Sha256,
        ] {
            let key = format!("sum-{}", alg.as_str());
            let data = pattern(70_000, 3);
            let put = c
                .put_object()
                .bucket("bkt")
                .key(&key)
                .checksum_algorithm(alg.clone())
                .body(ByteStream::from(data.clone()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
            let sent = [
                put.checksum_crc32(),
                put.checksum_crc32_c(),
                put.checksum_crc64_nvme(),
                put.checksum_sha1(),
                put.checksum_sha256(),
            ]
            .into_iter()
            .flatten()
            .next()
            .map(str::to_string);
            assert!(sent.is_some(), "{alg:?}: no checksum in the PUT response");
            let head = c
                .head_object()
                .bucket("bkt")
                .key(&key)
                .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            let stored = [
                head.checksum_crc32(),
                head.checksum_crc32_c(),
                head.checksum_crc64_nvme(),
                head.checksum_sha1(),
                head.checksum_sha256(),
            ]
            .into_iter()
            .flatten()
            .next()
            .map(str::to_string);
            assert_eq!(stored, sent, "{alg:?}");
            assert_eq!(body_of(&c, "bkt", &key).await, data);
        }
        let wrong = c
            .put_object()
            .bucket("bkt")
            .key("wrong")
            .checksum_crc32("AAAAAA==")
            .body(ByteStream::from_static(b"some bytes"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&wrong), "BadDigest");
        let missing = c.head_object().bucket("bkt").key("wrong").send().await;
        assert!(missing.is_err(), "a body with a wrong checksum was stored");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn listing_v1_and_v2_pages_prefixes_delimiters_and_url_encoding() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("bkt").send().await.unwrap();
        let keys = ["a-b", "a/x", "a/y/z", "b", "c d", "é/1", "dir/"];
        for k in keys {
            c.put_object()
                .bucket("bkt")
                .key(k)
                .body(ByteStream::from_static(b""))
                .send()
                .await
                .unwrap();
        }
        let mut all = Vec::new();
        let mut token = None;
        loop {
            let page = c
                .list_objects_v2()
                .bucket("bkt")
                .max_keys(2)
                .set_continuation_token(token.clone())
                .send()
                .await
                .unwrap();
            all.extend(page.contents().iter().map(|o| o.key().unwrap().to_string()));
            assert!(page.key_count().unwrap() <= 2);
            if page.is_truncated() != Some(true) {
                break;
            }
            token = page.next_continuation_token().map(str::to_string);
        }
        let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        expected.sort();
        assert_eq!(all, expected);

        let delim = c
            .list_objects_v2()
            .bucket("bkt")
            .delimiter("/")
            .send()
            .await
            .unwrap();
        let files: Vec<_> = delim.contents().iter().map(|o| o.key().unwrap()).collect();
        let prefixes: Vec<_> = delim
            .common_prefixes()
            .iter()
            .map(|p| p.prefix().unwrap())
            .collect();
        assert_eq!(files, ["a-b", "b", "c d"]);
        assert_eq!(prefixes, ["a/", "dir/", "é/"]);

        let under = c
            .list_objects_v2()
            .bucket("bkt")
            .prefix("a/")
            .delimiter("/")
            .send()
            .await
            .unwrap();
        assert_eq!(
            under
                .contents()
                .iter()
                .map(|o| o.key().unwrap())
                .collect::<Vec<_>>(),
            ["a/x"]
        );
        assert_eq!(under.common_prefixes()[0].prefix(), Some("a/y/"));

        let after = c
            .list_objects_v2()
            .bucket("bkt")
            .start_after("b")
            .send()
            .await
            .unwrap();
        assert_eq!(after.contents()[0].key(), Some("c d"));

        let v1 = c
            .list_objects()
            .bucket("bkt")
            .marker("a/x")
            .max_keys(2)
            .send()
            .await
            .unwrap();
        assert_eq!(
            v1.contents()
                .iter()
                .map(|o| o.key().unwrap())
                .collect::<Vec<_>>(),
            ["a/y/z", "b"]
        );
        assert_eq!(v1.is_truncated(), Some(true));

        let owner = c
            .list_objects_v2()
            .bucket("bkt")
            .fetch_owner(true)
            .max_keys(1)
            .send()
            .await
            .unwrap();
        assert!(owner.contents()[0].owner().is_some());
        let encoded = c
            .list_objects_v2()
            .bucket("bkt")
            .encoding_type(aws_sdk_s3::types::EncodingType::Url)
            .prefix("c")
            .send()
            .await
            .unwrap();
        assert_eq!(encoded.contents()[0].key(), Some("c%20d"));
        assert_eq!(encoded.prefix(), Some("c"));
        assert!(!share.path().join(".minio.sys").join("bkt").exists());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn copy_object_keeps_or_replaces_metadata_and_honours_source_conditions() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("bkt").send().await.unwrap();
        c.create_bucket().bucket("cbk").send().await.unwrap();
        let put = c
            .put_object()
            .bucket("bkt")
            .key("src key")
            .body(ByteStream::from(pattern(5000, 1)))
            .content_type("text/x-src")
            .metadata("m", "1")
            .send()
            .await
            .unwrap();
        let etag = put.e_tag().unwrap().to_string();
        let copied = c
            .copy_object()
            .bucket("cbk")
            .key("copy")
            .copy_source("bkt/src%20key")
            .send()
            .await
            .unwrap();
        assert_eq!(
            copied.copy_object_result().unwrap().e_tag(),
            Some(etag.as_str())
        );
        let head = c
            .head_object()
            .bucket("cbk")
            .key("copy")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("text/x-src"));
        assert_eq!(
            head.metadata().unwrap().get("m").map(String::as_str),
            Some("1")
        );
        assert_eq!(body_of(&c, "cbk", "copy").await, pattern(5000, 1));

        c.copy_object()
            .bucket("cbk")
            .key("replaced")
            .copy_source("bkt/src%20key")
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .content_type("text/x-new")
            .metadata("n", "2")
            .send()
            .await
            .unwrap();
        let head = c
            .head_object()
            .bucket("cbk")
            .key("replaced")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("text/x-new"));
        assert!(head.metadata().unwrap().get("m").is_none());

        let cond = c
            .copy_object()
            .bucket("cbk")
            .key("never")
            .copy_source("bkt/src%20key")
            .copy_source_if_match("\"other\"")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&cond), "PreconditionFailed");
        let itself = c
            .copy_object()
            .bucket("bkt")
            .key("src key")
            .copy_source("bkt/src%20key")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&itself), "InvalidRequest");
        c.copy_object()
            .bucket("bkt")
            .key("src key")
            .copy_source("bkt/src%20key")
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .metadata("m", "3")
            .send()
            .await
            .unwrap();
        let head = c
            .head_object()
            .bucket("bkt")
            .key("src key")
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.metadata().unwrap().get("m").map(String::as_str),
            Some("3")
        );
        assert_eq!(head.e_tag(), Some(etag.as_str()));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn delete_objects_reports_each_key_and_honours_quiet_mode() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("bkt").send().await.unwrap();
        for k in ["x/1", "x/2", "y"] {
            c.put_object()
                .bucket("bkt")
                .key(k)
                .body(ByteStream::from_static(b"1"))
                .send()
                .await
                .unwrap();
        }
        let ids = |keys: &[&str]| {
            Delete::builder()
                .set_objects(Some(
                    keys.iter()
                        .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
                        .collect(),
                ))
                .build()
                .unwrap()
        };
        let out = c
            .delete_objects()
            .bucket("bkt")
            .delete(ids(&["x/1", "missing", "../escape"]))
            .send()
            .await
            .unwrap();
        let deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
        assert_eq!(deleted, ["x/1", "missing"]);
        assert_eq!(out.errors().len(), 1);
        assert_eq!(out.errors()[0].key(), Some("../escape"));
        let quiet = c
            .delete_objects()
            .bucket("bkt")
            .delete(
                Delete::builder()
                    .quiet(true)
                    .set_objects(ids(&["x/2", "y"]).objects().to_vec().into())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert!(quiet.deleted().is_empty());
        let left = c.list_objects_v2().bucket("bkt").send().await.unwrap();
        assert_eq!(left.key_count(), Some(0));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn multipart_upload_spread_over_two_instances_completes_on_either() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let a = Server::start(share.path(), &[]);
        let b = Server::start(share.path(), &[]);
        let ca = client(&a.endpoint());
        let cb = client(&b.endpoint());
        ca.create_bucket().bucket("mpb").send().await.unwrap();
        let up = ca
            .create_multipart_upload()
            .bucket("mpb")
            .key("big/object")
            .content_type("application/x-big")
            .metadata("k", "v")
            .send()
            .await
            .unwrap();
        let id = up.upload_id().unwrap().to_string();
        let parts_data = [
            pattern(5 * 1024 * 1024, 1),
            pattern(5 * 1024 * 1024, 2),
            pattern(1234, 3),
        ];
        let mut etags = Vec::new();
        // Parts arrive out of order and at different instances; part 2 is sent twice.
        for (n, c) in [(3, &cb), (1, &ca), (2, &cb), (2, &ca)] {
            let r = c
                .upload_part()
                .bucket("mpb")
                .key("big/object")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(parts_data[n as usize - 1].clone()))
                .send()
                .await
                .unwrap();
            etags.push((n, r.e_tag().unwrap().to_string()));
        }
        let listed = cb
            .list_parts()
            .bucket("mpb")
            .key("big/object")
            .upload_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            listed
                .parts()
                .iter()
                .map(|p| p.part_number().unwrap())
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let uploads = ca
            .list_multipart_uploads()
            .bucket("mpb")
            .prefix("big/")
            .send()
            .await
            .unwrap();
        assert_eq!(uploads.uploads().len(), 1);
        assert_eq!(uploads.uploads()[0].upload_id(), Some(id.as_str()));

        let etag_of = |n: i32| etags.iter().rev().find(|(m, _)| *m == n).unwrap().1.clone();
        let wrong_order = cb
            .complete_multipart_upload()
            .bucket("mpb")
            .key("big/object")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(
                        CompletedPart::builder()
                            .part_number(2)
                            .e_tag(etag_of(2))
                            .build(),
                    )
                    .parts(
                        CompletedPart::builder()
                            .part_number(1)
                            .e_tag(etag_of(1))
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&wrong_order), "InvalidPartOrder");
        let done = cb
            .complete_multipart_upload()
            .bucket("mpb")
            .key("big/object")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(
                        (1..=3)
                            .map(|n| {
                                CompletedPart::builder()
                                    .part_number(n)
                                    .e_tag(etag_of(n))
                                    .build()
                            })
                            .collect(),
                    ))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut md5s = Vec::new();
        for p in &parts_data {
            md5s.extend_from_slice(&md5_of(p));
        }
        let expected = format!("\"{}-3\"", hex::encode(md5_of(&md5s)));
        assert_eq!(done.e_tag(), Some(expected.as_str()));
        let whole: Vec<u8> = parts_data.concat();
        assert_eq!(body_of(&ca, "mpb", "big/object").await, whole);
        let head = ca
            .head_object()
            .bucket("mpb")
            .key("big/object")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("application/x-big"));
        let part2 = ca
            .get_object()
            .bucket("mpb")
            .key("big/object")
            .part_number(2)
            .send()
            .await
            .unwrap();
        assert_eq!(part2.parts_count(), Some(3));
        assert_eq!(
            part2.body.collect().await.unwrap().into_bytes().to_vec(),
            parts_data[1]
        );
        assert!(ca
            .list_multipart_uploads()
            .bucket("mpb")
            .send()
            .await
            .unwrap()
            .uploads()
            .is_empty());
        let gone = ca
            .list_parts()
            .bucket("mpb")
            .key("big/object")
            .upload_id(&id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&gone), "NoSuchUpload");

        // UploadPartCopy with a range, and abort.
        let up = cb
            .create_multipart_upload()
            .bucket("mpb")
            .key("copy")
            .send()
            .await
            .unwrap();
        let id2 = up.upload_id().unwrap();
        let pc = cb
            .upload_part_copy()
            .bucket("mpb")
            .key("copy")
            .upload_id(id2)
            .part_number(1)
            .copy_source("mpb/big/object")
            .copy_source_range("bytes=10-1033")
            .send()
            .await
            .unwrap();
        let petag = pc.copy_part_result().unwrap().e_tag().unwrap().to_string();
        cb.complete_multipart_upload()
            .bucket("mpb")
            .key("copy")
            .upload_id(id2)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(CompletedPart::builder().part_number(1).e_tag(petag).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(body_of(&ca, "mpb", "copy").await, whole[10..1034].to_vec());
        let up = ca
            .create_multipart_upload()
            .bucket("mpb")
            .key("aborted")
            .send()
            .await
            .unwrap();
        ca.upload_part()
            .bucket("mpb")
            .key("aborted")
            .upload_id(up.upload_id().unwrap())
            .part_number(1)
            .body(ByteStream::from_static(b"zz"))
            .send()
            .await
            .unwrap();
        cb.abort_multipart_upload()
            .bucket("mpb")
            .key("aborted")
            .upload_id(up.upload_id().unwrap())
            .send()
            .await
            .unwrap();
        assert!(common::files_under(&share.path().join(".minio.sys/multipart")).is_empty());
        let unknown = ca
            .abort_multipart_upload()
            .bucket("mpb")
            .key("aborted")
            .upload_id("nope")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&unknown), "NoSuchUpload");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn presigned_get_and_put_work_over_plain_http() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let c = client(&server.endpoint());
        c.create_bucket().bucket("bkt").send().await.unwrap();
        let cfg =
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(600)).unwrap();
        let put = c
            .put_object()
            .bucket("bkt")
            .key("p q")
            .presigned(cfg.clone())
            .await
            .unwrap();
        let target = put.uri().split_once(&server.address).unwrap().1.to_string();
        let addr = server.address.clone();
        let r = tokio::task::spawn_blocking(move || {
            common::http(
                &addr,
                "PUT",
                &target,
                &[("Host".into(), addr.clone())],
                b"presigned body",
            )
        })
        .await
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let get = c
            .get_object()
            .bucket("bkt")
            .key("p q")
            .presigned(cfg)
            .await
            .unwrap();
        let target = get.uri().split_once(&server.address).unwrap().1.to_string();
        let addr = server.address.clone();
        let tampered = target.replace("p%20q", "p%20r");
        let (r, bad) = tokio::task::spawn_blocking(move || {
            let h = [("Host".to_string(), addr.clone())];
            (
                common::http(&addr, "GET", &target, &h, b""),
                common::http(&addr, "GET", &tampered, &h, b""),
            )
        })
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"presigned body");
        assert_eq!(bad.code().as_deref(), Some("SignatureDoesNotMatch"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn wrong_or_unknown_credentials_are_refused() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let bad = client_with(&server.endpoint(), ACCESS_KEY, "wrong-secret");
        let e = bad.list_buckets().send().await.unwrap_err();
        assert_eq!(code(&e), "SignatureDoesNotMatch");
        let unknown = client_with(&server.endpoint(), "nobody", SECRET_KEY);
        let e = unknown
            .create_bucket()
            .bucket("x")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidAccessKeyId");
        assert!(!share.path().join("x").exists());
    })
    .await
    .expect("test timed out");
}
