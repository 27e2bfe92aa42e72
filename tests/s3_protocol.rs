//! The S3 wire protocol with hand-made requests: every payload mode, every authentication
//! failure, bad input, and bodies that end early or stall. After each refused request the
//! share must be unchanged.

mod common;

use std::io::Write;
use std::time::{Duration, SystemTime};

use common::{
    files_under, http, presigned_query, sha256_hex, signed_headers, signed_headers_at, ChunkSigner,
    Server, SECRET_KEY,
};

fn put_signed(
    server: &Server,
    path: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> common::RawResponse {
    let h = signed_headers(
        &server.address,
        "PUT",
        path,
        "",
        extra,
        &sha256_hex(body),
        SECRET_KEY,
    );
    http(&server.address, "PUT", path, &h, body)
}

fn get_signed(server: &Server, method: &str, target: &str) -> common::RawResponse {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let h = signed_headers(
        &server.address,
        method,
        path,
        query,
        &[],
        &sha256_hex(b""),
        SECRET_KEY,
    );
    http(&server.address, method, target, &h, b"")
}

fn setup() -> (tempfile::TempDir, Server) {
    let share = tempfile::tempdir().unwrap();
    let server = Server::start(share.path(), &["--idle-timeout", "2"]);
    assert_eq!(put_signed(&server, "/bkt", b"", &[]).status, 200);
    assert_eq!(
        put_signed(&server, "/bkt/keep", b"original", &[]).status,
        200
    );
    (share, server)
}

fn assert_unchanged(share: &std::path::Path, server: &Server) {
    let r = get_signed(server, "GET", "/bkt/keep");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"original", "the old object changed");
    let leftovers: Vec<_> = files_under(share)
        .into_iter()
        .filter(|p| {
            // One separator on every platform.
            let s = p.to_string_lossy().replace('\\', "/");
            !(common::instance_bookkeeping(p)
                || s.ends_with("format.json")
                || s.ends_with("keep")
                || s.ends_with("keep/fs.json"))
        })
        .collect();
    assert!(leftovers.is_empty(), "left on the share: {leftovers:?}");
}

/// An aws-chunked body with chunk signatures chained from `seed`, in chunks of `size`.
fn chunked_body(
    signer: &ChunkSigner,
    seed: &str,
    data: &[u8],
    size: usize,
    corrupt_chunk: Option<usize>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = seed.to_string();
    let mut chunks: Vec<&[u8]> = data.chunks(size).collect();
    chunks.push(&[]);
    for (i, chunk) in chunks.iter().enumerate() {
        let mut sig = signer.chunk_signature(&prev, chunk);
        if corrupt_chunk == Some(i) {
            sig = sig.replace(&sig[..1], if &sig[..1] == "a" { "b" } else { "a" });
        }
        write!(out, "{:x};chunk-signature={sig}\r\n", chunk.len()).unwrap();
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        prev = sig;
    }
    out
}

fn streaming_put(
    server: &Server,
    path: &str,
    data: &[u8],
    corrupt: Option<usize>,
) -> common::RawResponse {
    let decoded = data.len().to_string();
    let now = SystemTime::now();
    let mut h = signed_headers_at(
        now,
        &server.address,
        "PUT",
        path,
        "",
        &[
            ("x-amz-decoded-content-length", &decoded),
            ("content-encoding", "aws-chunked"),
        ],
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        SECRET_KEY,
    );
    let auth = h
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1
        .clone();
    let seed = auth.rsplit("Signature=").next().unwrap().to_string();
    let body = chunked_body(
        &ChunkSigner::new(now, SECRET_KEY),
        &seed,
        data,
        1000,
        corrupt,
    );
    h.push(("content-length".into(), body.len().to_string()));
    http(&server.address, "PUT", path, &h, &body)
}

#[test]
fn signed_streaming_upload_is_verified_chunk_by_chunk() {
    let (share, server) = setup();
    let data: Vec<u8> = (0..5500u32).map(|i| (i % 251) as u8).collect();
    let ok = streaming_put(&server, "/bkt/streamed", &data, None);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let r = get_signed(&server, "GET", "/bkt/streamed");
    assert_eq!(r.body, data);
    assert!(
        r.header("content-encoding").is_none(),
        "aws-chunked leaked into metadata"
    );
    for bad_chunk in [0, 3, 6] {
        let bad = streaming_put(&server, "/bkt/keep", &data, Some(bad_chunk));
        assert_eq!(bad.status, 403, "chunk {bad_chunk}: {}", bad.text());
        assert_eq!(bad.code().as_deref(), Some("SignatureDoesNotMatch"));
    }
    let del = get_signed(&server, "DELETE", "/bkt/streamed");
    assert_eq!(del.status, 204);
    assert_unchanged(share.path(), &server);
}

#[test]
fn unsigned_payload_with_a_checksum_trailer_is_checked() {
    let (share, server) = setup();
    let data = b"hello trailer world";
    let crc = {
        let mut h =
            nasgate::store::checksum::Hashers::new(&[nasgate::store::ChecksumAlgorithm::Crc32]);
        h.update(data);
        h.finish().checksums[0].value.clone()
    };
    let send = |value: &str, key: &str| {
        let body = format!(
            "{:x}\r\n{}\r\n0\r\nx-amz-checksum-crc32:{value}\r\n\r\n",
            data.len(),
            String::from_utf8_lossy(data)
        );
        let mut h = signed_headers(
            &server.address,
            "PUT",
            key,
            "",
            &[
                ("x-amz-decoded-content-length", &data.len().to_string()),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
                ("content-encoding", "aws-chunked"),
            ],
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            SECRET_KEY,
        );
        h.push(("content-length".into(), body.len().to_string()));
        http(&server.address, "PUT", key, &h, body.as_bytes())
    };
    let ok = send(&crc, "/bkt/trailer");
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.header("x-amz-checksum-crc32"), Some(crc.as_str()));
    assert_eq!(get_signed(&server, "GET", "/bkt/trailer").body, data);
    let bad = send("AAAAAA==", "/bkt/keep");
    assert_eq!(bad.code().as_deref(), Some("BadDigest"));
    assert_eq!(get_signed(&server, "DELETE", "/bkt/trailer").status, 204);
    assert_unchanged(share.path(), &server);
}

#[test]
fn bodies_that_do_not_match_their_hash_or_md5_are_refused_and_nothing_changes() {
    let (share, server) = setup();
    let body = b"new content";
    let h = signed_headers(
        &server.address,
        "PUT",
        "/bkt/keep",
        "",
        &[],
        &sha256_hex(b"something else"),
        SECRET_KEY,
    );
    let r = http(&server.address, "PUT", "/bkt/keep", &h, body);
    assert_eq!(
        r.code().as_deref(),
        Some("XAmzContentSHA256Mismatch"),
        "{}",
        r.text()
    );
    let r = put_signed(
        &server,
        "/bkt/keep",
        body,
        &[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
    );
    assert_eq!(r.code().as_deref(), Some("BadDigest"));
    let r = put_signed(&server, "/bkt/keep", body, &[("content-md5", "not-base64")]);
    assert_eq!(r.code().as_deref(), Some("InvalidDigest"));
    assert_unchanged(share.path(), &server);
}

#[test]
fn unauthenticated_skewed_and_expired_requests_are_refused() {
    let (share, server) = setup();
    let r = http(
        &server.address,
        "GET",
        "/bkt/keep",
        &[("Host".into(), server.address.clone())],
        b"",
    );
    assert_eq!((r.status, r.code().as_deref()), (403, Some("AccessDenied")));
    let r = http(
        &server.address,
        "PUT",
        "/bkt/keep",
        &[("Host".into(), server.address.clone())],
        b"x",
    );
    assert_eq!(r.code().as_deref(), Some("AccessDenied"));

    // Signed with an old date, so only the skew is wrong.
    let old = SystemTime::now() - Duration::from_secs(3600);
    let h = signed_headers_at(
        old,
        &server.address,
        "GET",
        "/bkt/keep",
        "",
        &[],
        &sha256_hex(b""),
        SECRET_KEY,
    );
    let r = http(&server.address, "GET", "/bkt/keep", &h, b"");
    assert_eq!(r.code().as_deref(), Some("RequestTimeTooSkewed"));

    let q = presigned_query(
        &server.address,
        "GET",
        "/bkt/keep",
        "",
        SECRET_KEY,
        SystemTime::now() - Duration::from_secs(120),
        Duration::from_secs(60),
    );
    let r = http(
        &server.address,
        "GET",
        &format!("/bkt/keep?{q}"),
        &[("Host".into(), server.address.clone())],
        b"",
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("AccessDenied")),
        "{}",
        r.text()
    );
    let head = http(
        &server.address,
        "HEAD",
        "/bkt/keep",
        &[("Host".into(), server.address.clone())],
        b"",
    );
    assert_eq!(head.status, 403);
    assert!(head.body.is_empty(), "HEAD errors carry no body");
    assert!(head.header("x-amz-request-id").is_some());
    assert_unchanged(share.path(), &server);
}

#[test]
fn bad_names_keys_and_xml_get_s3_errors_and_change_nothing() {
    let (share, server) = setup();
    for (target, code) in [
        ("/bkt/a/../../etc/passwd", "InvalidArgument"),
        ("/bkt/a//b", "InvalidArgument"),
        ("/bkt/.minio.sys/x", "InvalidArgument"),
        ("/bkt/x/.nfs0001", "InvalidArgument"),
        ("/.minio.sys/format.json", "InvalidBucketName"),
        ("/Bad_Bucket/x", "InvalidBucketName"),
    ] {
        let r = put_signed(&server, target, b"evil", &[]);
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        assert_eq!(r.code().as_deref(), Some(code), "{target}");
    }
    let long = format!("/bkt/{}", "k".repeat(1025));
    assert_eq!(
        put_signed(&server, &long, b"x", &[]).code().as_deref(),
        Some("KeyTooLongError")
    );
    let r = get_signed(&server, "GET", "/.minio.sys/");
    assert_ne!(r.status, 200);
    for (method, target, body) in [
        ("POST", "/bkt?delete", &b"<Delete><Object><Key>keep"[..]),
        ("PUT", "/bkt/keep?tagging", &b"<Tagging><TagSet><Tag>"[..]),
    ] {
        let (path, query) = target.split_once('?').unwrap();
        let h = signed_headers(
            &server.address,
            method,
            path,
            query,
            &[],
            &sha256_hex(body),
            SECRET_KEY,
        );
        let r = http(&server.address, method, target, &h, body);
        assert_eq!(
            r.code().as_deref(),
            Some("MalformedXML"),
            "{target}: {}",
            r.text()
        );
    }
    let body = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>";
    let h = signed_headers(
        &server.address,
        "POST",
        "/bkt/keep",
        "uploadId=2b1e4d9c-0000-4000-8000-000000000000",
        &[],
        &sha256_hex(body),
        SECRET_KEY,
    );
    let r = http(
        &server.address,
        "POST",
        "/bkt/keep?uploadId=2b1e4d9c-0000-4000-8000-000000000000",
        &h,
        body,
    );
    assert_eq!(r.code().as_deref(), Some("NoSuchUpload"), "{}", r.text());
    let r = get_signed(&server, "GET", "/bkt?policy");
    assert_eq!(
        (r.status, r.code().as_deref()),
        (404, Some("NoSuchBucketPolicy"))
    );
    let h = signed_headers(
        &server.address,
        "PUT",
        "/bkt",
        "policy",
        &[],
        &sha256_hex(b"{}"),
        SECRET_KEY,
    );
    let r = http(&server.address, "PUT", "/bkt?policy", &h, b"{}");
    // An empty document is no policy: refused, and nothing is stored.
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("MalformedPolicy"))
    );
    let acl = get_signed(&server, "GET", "/bkt/keep?acl");
    assert_eq!(acl.status, 200);
    assert!(acl.text().contains("FULL_CONTROL"), "{}", acl.text());
    assert_unchanged(share.path(), &server);
    assert!(!share.path().join("Bad_Bucket").exists());
}

#[test]
fn a_body_shorter_than_its_content_length_publishes_nothing() {
    let (share, server) = setup();
    let body = vec![7u8; 1000];
    let mut s = open_put_of_1000_bytes(&server);
    s.write_all(&body[..400]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = std::io::Read::read_to_end(&mut s, &mut rest);
    drop(s);
    wait_for_no_staging(share.path());
    assert_unchanged(share.path(), &server);
}

#[test]
fn a_client_that_stalls_mid_body_times_out_and_publishes_nothing() {
    let (share, server) = setup();
    let mut s = open_put_of_1000_bytes(&server);
    s.write_all(&[1u8; 100]).unwrap();
    // Keep the connection open and silent: the server's 2 s idle timeout must end it.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reply = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut reply);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("RequestTimeout"), "{text}");
    assert_unchanged(share.path(), &server);
}

/// Opens a connection and sends the head of a 1000-byte PUT of `bkt/keep`, no body yet.
fn open_put_of_1000_bytes(server: &Server) -> std::net::TcpStream {
    open_put(server, "/bkt/keep", &[("content-length", "1000")])
}

/// Opens a connection and sends the signed head of an unsigned-payload PUT of `path` with
/// `extra` headers, no body yet.
fn open_put(server: &Server, path: &str, extra: &[(&str, &str)]) -> std::net::TcpStream {
    let mut h = signed_headers(
        &server.address,
        "PUT",
        path,
        "",
        &[],
        "UNSIGNED-PAYLOAD",
        SECRET_KEY,
    );
    h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut s = std::net::TcpStream::connect(&server.address).unwrap();
    let mut head = format!("PUT {path} HTTP/1.1\r\n");
    for (k, v) in &h {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s
}

/// Staging files go away as soon as the server notices the broken body; poll (bounded) for it.
fn wait_for_no_staging(share: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let staged = files_under(&share.join(".minio.sys/tmp"))
            .into_iter()
            .filter(|p| !common::instance_bookkeeping(p))
            .count();
        if staged == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "staging file never removed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A large PUT that is refused up front (here: no such bucket) is answered before its body:
/// a client waiting on `Expect: 100-continue` never has to send the bytes it announced.
#[test]
fn a_large_put_to_a_missing_bucket_is_refused_before_its_body() {
    let (share, server) = setup();
    let length = (64u64 << 20).to_string();
    let mut s = open_put(
        &server,
        "/nobucket/big",
        &[("content-length", &length), ("expect", "100-continue")],
    );
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the error document has arrived; the body is never sent.
    while !String::from_utf8_lossy(&reply).contains("</Error>") {
        let n = std::io::Read::read(&mut s, &mut buf).unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&reply)
        );
        reply.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("<Code>NoSuchBucket</Code>"), "{text}");
    assert!(!share.path().join("nobucket").exists());
    assert_unchanged(share.path(), &server);
}
