//! Access control through real processes: users added with `nasgate user` on the share,
//! bucket policies through the AWS SDK, unsigned requests over raw HTTP, two instances on one
//! share picking up user changes within the re-check bound.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use common::sdk::{body_of, client, client_with, code};
use common::{http, Server, ACCESS_KEY, SECRET_KEY};

const BOUND: Duration = Duration::from_secs(120);
/// How long a change may take to reach another instance: the 2 s re-check plus slack for a
/// loaded CI machine.
const PROPAGATION: Duration = Duration::from_secs(10);

/// Runs `nasgate user ARGS` with the root pair; returns (exit code, stdout, stderr).
fn user_cmd(args: &[&str], secret: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nasgate"));
    cmd.arg("user")
        .args(args)
        .env("NASGATE_ROOT_USER", ACCESS_KEY)
        .env("NASGATE_ROOT_PASSWORD", SECRET_KEY)
        .env_remove("NASGATE_USER_SECRET")
        .stdin(Stdio::null());
    if let Some(s) = secret {
        cmd.env("NASGATE_USER_SECRET", s);
    }
    let out = cmd.output().expect("run nasgate user");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn add_user(share: &Path, key: &str, secret: &str, policy: &[&str]) {
    let mut args = vec!["add", share.to_str().unwrap(), key];
    args.extend_from_slice(policy);
    let (rc, out, err) = user_cmd(&args, Some(secret));
    assert_eq!(rc, 0, "user add: {out} {err}");
}

/// Polls `check` until it holds or `bound` passes; returns how long it took.
async fn within<F, Fut>(bound: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "{what} not seen within {bound:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put(c: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .expect("put");
}

#[tokio::test]
async fn readonly_user_lists_and_gets_but_cannot_write_or_delete() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let root = client(&server.endpoint());
        root.create_bucket().bucket("data").send().await.unwrap();
        put(&root, "data", "a.txt", b"hello").await;
        add_user(
            share.path(),
            "reader",
            "reader-secret-1",
            &["--policy", "readonly"],
        );
        let ro = client_with(&server.endpoint(), "reader", "reader-secret-1");
        within(PROPAGATION, "the new user", || async {
            ro.list_objects_v2().bucket("data").send().await.is_ok()
        })
        .await;
        let listed = ro.list_objects_v2().bucket("data").send().await.unwrap();
        assert_eq!(listed.contents().len(), 1);
        assert_eq!(body_of(&ro, "data", "a.txt").await, b"hello");
        let e = ro
            .put_object()
            .bucket("data")
            .key("b.txt")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "AccessDenied");
        let e = ro
            .delete_object()
            .bucket("data")
            .key("a.txt")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "AccessDenied");
        let e = ro.create_bucket().bucket("other").send().await.unwrap_err();
        assert_eq!(code(&e), "AccessDenied");
        // DeleteObjects answers per key, and deletes nothing it may not.
        let del = ro
            .delete_objects()
            .bucket("data")
            .delete(
                Delete::builder()
                    .objects(ObjectIdentifier::builder().key("a.txt").build().unwrap())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(del.errors().len(), 1);
        assert_eq!(del.errors()[0].code(), Some("AccessDenied"));
        assert_eq!(body_of(&root, "data", "a.txt").await, b"hello");
        assert!(!share.path().join("data/b.txt").exists());
        // Presigned URLs act as their signer.
        let cfg =
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(60)).unwrap();
        let presigned_get = ro
            .get_object()
            .bucket("data")
            .key("a.txt")
            .presigned(cfg.clone())
            .await
            .unwrap();
        let presigned_put = ro
            .put_object()
            .bucket("data")
            .key("c.txt")
            .presigned(cfg)
            .await
            .unwrap();
        let host = [("Host".to_string(), server.address.clone())];
        let target = |uri: &str| uri.split_once(&server.address).unwrap().1.to_string();
        let r = http(
            &server.address,
            "GET",
            &target(presigned_get.uri()),
            &host,
            b"",
        );
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = http(
            &server.address,
            "PUT",
            &target(presigned_put.uri()),
            &host,
            b"x",
        );
        assert_eq!((r.status, r.code().as_deref()), (403, Some("AccessDenied")));
        assert!(!share.path().join("data/c.txt").exists());
        // A bad secret is still a bad signature.
        let wrong = client_with(&server.endpoint(), "reader", "not-the-secret");
        let e = wrong.list_buckets().send().await.unwrap_err();
        assert_eq!(code(&e), "SignatureDoesNotMatch");
        // Logs name the access key, never the secret.
        let log = server.log().join("\n");
        assert!(log.contains("access_key=\"reader\""), "{log}");
        assert!(!log.contains("reader-secret-1"));
        // The secret is not kept in plain text on the share.
        let stored =
            std::fs::read_to_string(share.path().join(".minio.sys/config/nasgate/users.json"))
                .unwrap();
        assert!(stored.contains("reader") && !stored.contains("reader-secret-1"));
        // Denials are counted by reason.
        let m = http(&server.address, "GET", "/metrics", &[], b"");
        assert!(
            m.text()
                .lines()
                .any(|l| l.starts_with("nasgate_access_denials_total{reason=\"not_allowed\"}")),
            "{}",
            m.text()
        );
    })
    .await
    .expect("bounded");
}

/// A browser-form POST of `body` to `bucket/key`, signed by `access`/`secret`.
fn post_form(
    address: &str,
    bucket: &str,
    key: &str,
    access: &str,
    secret: &str,
) -> common::RawResponse {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let now = std::time::SystemTime::now();
    let iso = nasgate::time::iso8601(now);
    let amz_date = format!("{}Z", &iso.replace(['-', ':'], "")[..15]);
    let day = &amz_date[..8];
    let credential = format!("{access}/{day}/us-east-1/s3/aws4_request");
    let expiration = nasgate::time::iso8601(now + Duration::from_secs(600));
    let policy = format!(
        r#"{{"expiration":"{expiration}","conditions":[{{"bucket":"{bucket}"}},["starts-with","$key",""],{{"x-amz-algorithm":"AWS4-HMAC-SHA256"}},{{"x-amz-credential":"{credential}"}},{{"x-amz-date":"{amz_date}"}}]}}"#
    );
    let policy = base64::engine::general_purpose::STANDARD.encode(policy);
    let signing = nasgate::s3::sigv4::signing_key(secret, day, "us-east-1", "s3");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&signing).unwrap();
    mac.update(policy.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let boundary = "----accessboundary";
    let mut body = String::new();
    for (name, value) in [
        ("key", key),
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ("x-amz-credential", &credential),
        ("x-amz-date", &amz_date),
        ("policy", &policy),
        ("x-amz-signature", &signature),
    ] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\nposted\r\n--{boundary}--\r\n"
    ));
    let headers = [
        ("Host".to_string(), address.to_string()),
        (
            "Content-Type".to_string(),
            format!("multipart/form-data; boundary={boundary}"),
        ),
    ];
    http(
        address,
        "POST",
        &format!("/{bucket}"),
        &headers,
        body.as_bytes(),
    )
}

#[tokio::test]
async fn post_object_forms_act_as_their_signer() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let root = client(&server.endpoint());
        root.create_bucket().bucket("forms").send().await.unwrap();
        add_user(share.path(), "formuser", "formuser-secret", &["--policy", "readonly"]);
        let ro = client_with(&server.endpoint(), "formuser", "formuser-secret");
        within(PROPAGATION, "the new user", || async {
            ro.list_objects_v2().bucket("forms").send().await.is_ok()
        })
        .await;
        let r = post_form(&server.address, "forms", "by-root.txt", ACCESS_KEY, SECRET_KEY);
        assert!(r.status < 300, "{} {}", r.status, r.text());
        assert_eq!(body_of(&root, "forms", "by-root.txt").await, b"posted");
        let r = post_form(&server.address, "forms", "by-reader.txt", "formuser", "formuser-secret");
        assert_eq!((r.status, r.code().as_deref()), (403, Some("AccessDenied")), "{}", r.text());
        assert!(!share.path().join("forms/by-reader.txt").exists());
        root.put_bucket_policy()
            .bucket("forms")
            .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:user/formuser"]},"Action":"s3:PutObject","Resource":"arn:aws:s3:::forms/inbox/*"}]}"#)
            .send()
            .await
            .unwrap();
        // A bucket policy naming the user grants what their own policy does not.
        let r = post_form(&server.address, "forms", "inbox/by-reader.txt", "formuser", "formuser-secret");
        assert!(r.status < 300, "{} {}", r.status, r.text());
        assert_eq!(body_of(&root, "forms", "inbox/by-reader.txt").await, b"posted");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_user_limited_to_one_bucket_sees_only_that_bucket() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let root = client(&server.endpoint());
        for b in ["one", "two", "three"] {
            root.create_bucket().bucket(b).send().await.unwrap();
        }
        put(&root, "two", "k", b"secret").await;
        let elsewhere = tempfile::tempdir().unwrap();
        let policy = elsewhere.path().join("one-only.json");
        std::fs::write(
            &policy,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::one","arn:aws:s3:::one/*"]},{"Effect":"Allow","Action":["s3:ListAllMyBuckets"],"Resource":["arn:aws:s3:::*"]}]}"#,
        )
        .unwrap();
        add_user(
            share.path(),
            "app1",
            "app1-secret-xyz",
            &["--policy-file", policy.to_str().unwrap()],
        );
        let app = client_with(&server.endpoint(), "app1", "app1-secret-xyz");
        within(PROPAGATION, "the new user", || async {
            app.list_buckets().send().await.is_ok()
        })
        .await;
        let names: Vec<String> = app
            .list_buckets()
            .send()
            .await
            .unwrap()
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_string))
            .collect();
        assert_eq!(names, vec!["one".to_string()]);
        put(&app, "one", "mine", b"ok").await;
        let e = app.get_object().bucket("two").key("k").send().await.unwrap_err();
        assert_eq!(code(&e), "AccessDenied");
        // CopyObject needs GetObject on the source too.
        let e = app
            .copy_object()
            .bucket("one")
            .key("stolen")
            .copy_source("two/k")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "AccessDenied");
        assert!(!share.path().join("one/stolen").exists());
        // Root still sees everything.
        let all = root.list_buckets().send().await.unwrap();
        assert_eq!(all.buckets().len(), 3);
    })
    .await
    .expect("bounded");
}

/// What `mc anonymous set download` writes for `pub/public`.
const DOWNLOAD_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetBucketLocation"],"Resource":["arn:aws:s3:::pub"]},{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::pub"],"Condition":{"StringLike":{"s3:prefix":["public/*"]}}},{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::pub/public/*"]}]}"#;

#[tokio::test]
async fn anonymous_download_policy_opens_one_prefix_only() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let root = client(&server.endpoint());
        root.create_bucket().bucket("pub").send().await.unwrap();
        put(&root, "pub", "public/a.txt", b"for everyone").await;
        put(&root, "pub", "private/b.txt", b"not for you").await;
        let a = &server.address;
        let get = |path: &str| http(a, "GET", path, &[], b"");
        // Before any policy, unsigned requests are refused.
        let r = get("/pub/public/a.txt");
        assert_eq!((r.status, r.code().as_deref()), (403, Some("AccessDenied")));
        let e = root
            .get_bucket_policy()
            .bucket("pub")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "NoSuchBucketPolicy");

        root.put_bucket_policy()
            .bucket("pub")
            .policy(DOWNLOAD_POLICY)
            .send()
            .await
            .unwrap();
        let got = root.get_bucket_policy().bucket("pub").send().await.unwrap();
        assert_eq!(got.policy(), Some(DOWNLOAD_POLICY));
        let status = root
            .get_bucket_policy_status()
            .bucket("pub")
            .send()
            .await
            .unwrap();
        assert_eq!(
            status.policy_status().and_then(|s| s.is_public()),
            Some(true)
        );
        // MinIO FS mode's own place, so migrated shares keep their policies.
        assert!(share
            .path()
            .join(".minio.sys/buckets/pub/policy.json")
            .is_file());

        let r = get("/pub/public/a.txt");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, b"for everyone");
        let r = get("/pub/private/b.txt");
        assert_eq!((r.status, r.code().as_deref()), (403, Some("AccessDenied")));
        let r = get("/pub?list-type=2&prefix=public/");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("public/a.txt"));
        let r = get("/pub?list-type=2&prefix=private/");
        assert_eq!(r.status, 403);
        let r = get("/pub?list-type=2");
        assert_eq!(r.status, 403);
        let r = get("/pub?location");
        assert_eq!(r.status, 200);
        let r = http(a, "PUT", "/pub/public/new.txt", &[], b"graffiti");
        assert_eq!((r.status, r.code().as_deref()), (403, Some("AccessDenied")));
        assert!(!share.path().join("pub/public/new.txt").exists());
        let r = http(a, "DELETE", "/pub/public/a.txt", &[], b"");
        assert_eq!(r.status, 403);
        let r = get("/");
        assert_eq!(r.status, 403);

        root.delete_bucket_policy()
            .bucket("pub")
            .send()
            .await
            .unwrap();
        let r = get("/pub/public/a.txt");
        assert_eq!(r.status, 403);
        let e = root
            .get_bucket_policy()
            .bucket("pub")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "NoSuchBucketPolicy");
        let m = http(a, "GET", "/metrics", &[], b"");
        assert!(m
            .text()
            .contains("nasgate_access_denials_total{reason=\"anonymous\"}"));
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn malformed_bucket_policies_are_refused_and_nothing_is_stored() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let server = Server::start(share.path(), &[]);
        let root = client(&server.endpoint());
        root.create_bucket().bucket("bkt1").send().await.unwrap();
        let bad = [
            // NotResource is not supported: refusing beats silently granting more.
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::bkt1/x"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt1/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::elsewhere/*"}]}"#,
            "not json at all",
        ];
        for doc in bad {
            let e = root
                .put_bucket_policy()
                .bucket("bkt1")
                .policy(doc)
                .send()
                .await
                .unwrap_err();
            assert_eq!(code(&e), "MalformedPolicy", "{doc}");
        }
        assert!(!share.path().join(".minio.sys/buckets/bkt1/policy.json").exists());
        let e = root.get_bucket_policy().bucket("bkt1").send().await.unwrap_err();
        assert_eq!(code(&e), "NoSuchBucketPolicy");
        let e = root
            .put_bucket_policy()
            .bucket("nosuch")
            .policy(DOWNLOAD_POLICY.replace("pub", "nosuch"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "NoSuchBucket");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn users_added_and_disabled_on_the_share_reach_another_instance_within_the_bound() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        let a = Server::start(share.path(), &[]);
        let b = Server::start(share.path(), &[]);
        let root_a = client(&a.endpoint());
        root_a
            .create_bucket()
            .bucket("shared")
            .send()
            .await
            .unwrap();
        let on_b = client_with(&b.endpoint(), "mover", "mover-secret-1");
        // B has looked at the (absent) users before the add, so it must notice the change.
        let e = on_b.list_buckets().send().await.unwrap_err();
        assert_eq!(code(&e), "InvalidAccessKeyId");
        add_user(
            share.path(),
            "mover",
            "mover-secret-1",
            &["--policy", "readwrite"],
        );
        let took = within(PROPAGATION, "the added user on instance B", || async {
            on_b.list_buckets().send().await.is_ok()
        })
        .await;
        println!("user add reached the other instance after {took:?}");
        put(&on_b, "shared", "k", b"v").await;

        let (rc, out, _) = user_cmd(&["list", share.path().to_str().unwrap()], None);
        assert_eq!(rc, 0);
        assert!(out.contains("mover\tenabled\treadwrite"), "{out}");
        let (rc, _, err) = user_cmd(&["disable", share.path().to_str().unwrap(), "mover"], None);
        assert_eq!(rc, 0, "{err}");
        let took = within(PROPAGATION, "the disabled user on instance B", || async {
            on_b.list_buckets().send().await.is_err()
        })
        .await;
        println!("user disable reached the other instance after {took:?}");
        let e = on_b.list_buckets().send().await.unwrap_err();
        assert_eq!(code(&e), "InvalidAccessKeyId");
        // The root pair always works.
        client(&b.endpoint()).list_buckets().send().await.unwrap();

        let (rc, _, _) = user_cmd(&["enable", share.path().to_str().unwrap(), "mover"], None);
        assert_eq!(rc, 0);
        let (rc, _, _) = user_cmd(
            &[
                "set-policy",
                share.path().to_str().unwrap(),
                "mover",
                "--policy",
                "readonly",
            ],
            None,
        );
        assert_eq!(rc, 0);
        within(PROPAGATION, "the new policy on instance B", || async {
            let read = on_b.list_objects_v2().bucket("shared").send().await.is_ok();
            let write = on_b
                .put_object()
                .bucket("shared")
                .key("k2")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await;
            read && write.is_err_and(|e| code(&e) == "AccessDenied")
        })
        .await;
        // Bucket policies put through one instance reach the other the same way.
        put(&root_a, "shared", "open/x", b"public").await;
        let r = http(&b.address, "GET", "/shared/open/x", &[], b"");
        assert_eq!(r.status, 403);
        root_a
            .put_bucket_policy()
            .bucket("shared")
            .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::shared/open/*"}]}"#)
            .send()
            .await
            .unwrap();
        let took = within(PROPAGATION, "the bucket policy on instance B", || async {
            http(&b.address, "GET", "/shared/open/x", &[], b"").status == 200
        })
        .await;
        println!("bucket policy reached the other instance after {took:?}");
        root_a.delete_bucket_policy().bucket("shared").send().await.unwrap();
        within(PROPAGATION, "the deleted bucket policy on instance B", || async {
            http(&b.address, "GET", "/shared/open/x", &[], b"").status == 403
        })
        .await;
        let (rc, _, _) = user_cmd(&["remove", share.path().to_str().unwrap(), "mover"], None);
        assert_eq!(rc, 0);
        within(PROPAGATION, "the removed user on instance A", || async {
            client_with(&a.endpoint(), "mover", "mover-secret-1")
                .list_buckets()
                .send()
                .await
                .is_err()
        })
        .await;
    })
    .await
    .expect("bounded");
}

#[test]
fn user_command_errors_are_one_line_and_change_nothing() {
    let share = tempfile::tempdir().unwrap();
    let s = share.path().to_str().unwrap();
    let (rc, _, err) = user_cmd(
        &["add", s, "app", "--policy", "godmode"],
        Some("secret-123"),
    );
    assert_eq!(rc, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("unknown policy"), "{err}");
    let (rc, _, err) = user_cmd(&["add", s, "app", "--policy", "readonly"], Some("short"));
    assert_eq!(rc, 2);
    assert!(err.contains("secret key"), "{err}");
    let (rc, _, err) = user_cmd(
        &["add", s, ACCESS_KEY, "--policy", "readonly"],
        Some("secret-123"),
    );
    assert_eq!(rc, 2);
    assert!(err.contains("root"), "{err}");
    assert!(!share
        .path()
        .join(".minio.sys/config/nasgate/users.json")
        .exists());
    let (rc, _, _) = user_cmd(
        &["add", s, "app", "--policy", "readonly"],
        Some("secret-123"),
    );
    assert_eq!(rc, 0);
    let before = std::fs::read(share.path().join(".minio.sys/config/nasgate/users.json")).unwrap();
    let (rc, _, err) = user_cmd(
        &["add", s, "app", "--policy", "readwrite"],
        Some("secret-456"),
    );
    assert_eq!(rc, 2);
    assert!(err.contains("exists"), "{err}");
    let (rc, _, err) = user_cmd(&["disable", s, "nobody"], None);
    assert_eq!(rc, 2);
    assert!(err.contains("no user nobody"), "{err}");
    let after = std::fs::read(share.path().join(".minio.sys/config/nasgate/users.json")).unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_policy_left_by_minio_fs_mode_is_honoured() {
    tokio::time::timeout(BOUND, async {
        let share = tempfile::tempdir().unwrap();
        // A migrated share: MinIO kept the bucket's policy beside its metadata, as mc wrote it
        // for `mc anonymous set download minio/site` (keys in mc's order).
        std::fs::create_dir_all(share.path().join("site/docs")).unwrap();
        std::fs::write(share.path().join("site/docs/index.html"), b"<h1>hi</h1>").unwrap();
        let meta = share.path().join(".minio.sys/buckets/site");
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("policy.json"),
            r#"{"Version":"2012-10-17","Statement":[{"Action":["s3:GetBucketLocation","s3:ListBucket"],"Effect":"Allow","Principal":{"AWS":["*"]},"Resource":["arn:aws:s3:::site"],"Sid":""},{"Action":["s3:GetObject"],"Effect":"Allow","Principal":{"AWS":["*"]},"Resource":["arn:aws:s3:::site/*"],"Sid":""}]}"#,
        )
        .unwrap();
        let server = Server::start(share.path(), &[]);
        let r = http(&server.address, "GET", "/site/docs/index.html", &[], b"");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"<h1>hi</h1>"[..]));
        let r = http(&server.address, "GET", "/site?list-type=2", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let r = http(&server.address, "PUT", "/site/docs/x", &[], b"no");
        assert_eq!(r.status, 403);
        let status = client(&server.endpoint())
            .get_bucket_policy_status()
            .bucket("site")
            .send()
            .await
            .unwrap();
        assert_eq!(status.policy_status().and_then(|s| s.is_public()), Some(true));
    })
    .await
    .expect("bounded");
}
