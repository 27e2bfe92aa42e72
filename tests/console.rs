//! The web console's backend through real `nasgate serve` processes and raw HTTP: static
//! files and their headers, the `/` redirect, `--console=false`, login (wrong, rate limited),
//! CSRF and cookie tampering, sessions ending on a secret change or disable, sessions shared
//! by two instances, presigned URLs used for real S3 requests (and expiring), usage, and zip
//! downloads checked byte for byte with Python's zipfile.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{http, put_object, RawResponse, Server, ACCESS_KEY, SECRET_KEY};
use serde_json::{json, Value};
use sha2::Digest;

/// How long a change on the share (a user disabled) may take to reach an instance.
const PROPAGATION: Duration = Duration::from_secs(15);

fn origin(s: &Server) -> String {
    format!("http://{}", s.address)
}

/// A request with Host, and optionally the console's CSRF header, Origin and a cookie.
fn call(
    s: &Server,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    cookie: Option<&str>,
    body: &[u8],
) -> RawResponse {
    let mut h: Vec<(String, String)> = vec![("Host".into(), s.address.clone())];
    for (k, v) in extra {
        h.push((k.to_string(), v.to_string()));
    }
    if let Some(c) = cookie {
        h.push(("Cookie".into(), c.to_string()));
    }
    http(&s.address, method, path, &h, body)
}

/// A POST from the console page: custom header, own Origin, the cookie.
fn post(s: &Server, path: &str, cookie: Option<&str>, body: &Value) -> RawResponse {
    let o = origin(s);
    call(
        s,
        "POST",
        path,
        &[
            ("X-Nasgate-Console", "1"),
            ("Origin", &o),
            ("Content-Type", "application/json"),
        ],
        cookie,
        body.to_string().as_bytes(),
    )
}

fn json_of(r: &RawResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.text()))
}

fn code_of(r: &RawResponse) -> String {
    json_of(r)["code"].as_str().unwrap_or("").to_string()
}

/// The `name=value` of the response's session cookie.
fn session_cookie(r: &RawResponse) -> String {
    let set = r.header("set-cookie").expect("set-cookie");
    set.split(';').next().unwrap().trim().to_string()
}

fn login_as(s: &Server, key: &str, secret: &str) -> RawResponse {
    post(
        s,
        "/_nasgate/api/login",
        None,
        &json!({"accessKey": key, "secretKey": secret}),
    )
}

fn login(s: &Server) -> String {
    let r = login_as(s, ACCESS_KEY, SECRET_KEY);
    assert_eq!(r.status, 200, "{}", r.text());
    session_cookie(&r)
}

fn whoami(s: &Server, cookie: &str) -> RawResponse {
    call(s, "GET", "/_nasgate/api/whoami", &[], Some(cookie), b"")
}

/// Presigns `requests` and returns the URLs as request targets (`/b/k?...`).
fn presign(s: &Server, cookie: &str, requests: Value) -> Vec<String> {
    let r = post(
        s,
        "/_nasgate/api/presign",
        Some(cookie),
        &json!({ "requests": requests }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    json_of(&r)["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let u = u.as_str().unwrap();
            u.strip_prefix("..")
                .expect("relative to the console")
                .to_string()
        })
        .collect()
}

fn until(bound: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < bound, "{what} not seen within {bound:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn user_cmd(share: &Path, args: &[&str], secret: Option<&str>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nasgate"));
    cmd.arg("user")
        .arg(args[0])
        .arg(share)
        .args(&args[1..])
        .env("NASGATE_ROOT_USER", ACCESS_KEY)
        .env("NASGATE_ROOT_PASSWORD", SECRET_KEY)
        .env_remove("NASGATE_USER_SECRET")
        .stdin(Stdio::null());
    if let Some(s) = secret {
        cmd.env("NASGATE_USER_SECRET", s);
    }
    let out = cmd.output().expect("nasgate user");
    assert!(
        out.status.success(),
        "nasgate user {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn create_bucket(s: &Server, bucket: &str) {
    let r = put_object(s, &format!("/{bucket}"), b"");
    assert_eq!(r.status, 200, "{}", r.text());
}

const CSP_START: &str = "default-src 'self'; script-src 'self'";

#[test]
fn static_files_carry_the_security_headers_and_browsers_are_sent_to_the_console() {
    let share = tempfile::tempdir().unwrap();
    let s = Server::start(share.path(), &[]);
    let r = call(&s, "GET", "/_nasgate/", &[], None, b"");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .starts_with(CSP_START));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    let etag = r.header("etag").expect("etag").to_string();
    let again = call(
        &s,
        "GET",
        "/_nasgate/",
        &[("If-None-Match", &etag)],
        None,
        b"",
    );
    assert_eq!(again.status, 304);

    let js = call(&s, "GET", "/_nasgate/app.js", &[], None, b"");
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    let missing = call(&s, "GET", "/_nasgate/no-such-file.js", &[], None, b"");
    assert_eq!(missing.status, 404);
    assert!(missing.header("content-security-policy").is_some());
    let climb = call(&s, "GET", "/_nasgate/..%2f..%2fCargo.toml", &[], None, b"");
    assert_eq!(climb.status, 404);
    let api = call(&s, "GET", "/_nasgate/api/whoami", &[], None, b"");
    assert_eq!(api.status, 401);
    assert_eq!(code_of(&api), "NoSession");
    assert_eq!(api.header("cache-control"), Some("no-store"));

    // A browser opening / goes to the console; clients that sign stay S3.
    let html = "text/html,application/xhtml+xml;q=0.9";
    let r = call(&s, "GET", "/", &[("Accept", html)], None, b"");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("_nasgate/"));
    let r = call(&s, "GET", "/_nasgate", &[("Accept", html)], None, b"");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("_nasgate/"));
    let r = call(&s, "GET", "/", &[], None, b"");
    assert_eq!(r.status, 403);
    assert_eq!(r.code().as_deref(), Some("AccessDenied"));
    let r = call(
        &s,
        "GET",
        "/?X-Amz-Algorithm=AWS4-HMAC-SHA256",
        &[("Accept", html)],
        None,
        b"",
    );
    assert_ne!(r.status, 303);
    let r = call(
        &s,
        "GET",
        "/",
        &[("Accept", html), ("Authorization", "AWS4-HMAC-SHA256 x")],
        None,
        b"",
    );
    assert_ne!(r.status, 303);
}

#[test]
fn console_false_leaves_no_console() {
    let share = tempfile::tempdir().unwrap();
    let s = Server::start(share.path(), &["--console=false"]);
    let r = call(&s, "GET", "/_nasgate/", &[], None, b"");
    assert!(
        r.code().is_some(),
        "an S3 error, not the page: {}",
        r.text()
    );
    assert!(r.header("content-security-policy").is_none());
    let r = call(&s, "GET", "/", &[("Accept", "text/html")], None, b"");
    assert_eq!(r.status, 403);
    let r = login_as(&s, ACCESS_KEY, SECRET_KEY);
    assert_ne!(r.status, 200);
    assert!(r.header("set-cookie").is_none());
}

#[test]
fn login_logout_wrong_secret_and_the_rate_limit() {
    let share = tempfile::tempdir().unwrap();
    let s = Server::start(share.path(), &[]);
    let r = login_as(&s, ACCESS_KEY, SECRET_KEY);
    assert_eq!(r.status, 200);
    assert_eq!(json_of(&r), json!({"accessKey": ACCESS_KEY, "root": true}));
    let set = r.header("set-cookie").unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "no TLS here: {set}");
    let cookie = session_cookie(&r);
    let w = whoami(&s, &cookie);
    assert_eq!(w.status, 200);
    let v = json_of(&w);
    assert_eq!(v["accessKey"], ACCESS_KEY);
    assert_eq!(v["root"], true);
    assert_eq!(v["region"], "us-east-1");
    assert_eq!(
        Path::new(v["share"].as_str().unwrap()),
        share.path().canonicalize().unwrap()
    );
    assert!(v["expiresAt"].as_u64().unwrap() > 0);
    assert!(!v["csrf"].as_str().unwrap().is_empty());

    let out = post(&s, "/_nasgate/api/logout", Some(&cookie), &json!({}));
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));

    // Five wrong secrets, then even the right one waits.
    for _ in 0..5 {
        let r = login_as(&s, ACCESS_KEY, "wrong-secret");
        assert_eq!(r.status, 401);
        assert_eq!(code_of(&r), "InvalidCredentials");
        assert!(r.header("set-cookie").is_none());
    }
    let r = login_as(&s, "nobody", "x");
    assert_eq!(r.status, 429);
    assert_eq!(code_of(&r), "TooManyAttempts");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let r = login_as(&s, ACCESS_KEY, SECRET_KEY);
    assert_eq!(r.status, 429);
    // Console calls are counted like S3 operations.
    let m = call(&s, "GET", "/metrics", &[], None, b"").text();
    assert!(
        m.contains("operation=\"ConsoleLogin\",status=\"429\""),
        "{m}"
    );
}

#[test]
fn csrf_checks_and_tampered_cookies_are_refused() {
    let share = tempfile::tempdir().unwrap();
    let s = Server::start(share.path(), &[]);
    let cookie = login(&s);
    let body = json!({"requests": [{"method": "GET", "bucket": "data"}]}).to_string();
    let o = origin(&s);
    // No custom header; a foreign Origin; no Origin at all.
    for headers in [
        vec![("Origin", o.as_str())],
        vec![
            ("X-Nasgate-Console", "1"),
            ("Origin", "http://evil.example"),
        ],
        vec![("X-Nasgate-Console", "1")],
    ] {
        let r = call(
            &s,
            "POST",
            "/_nasgate/api/presign",
            &headers,
            Some(&cookie),
            body.as_bytes(),
        );
        assert_eq!(r.status, 403, "{headers:?}");
        assert_eq!(code_of(&r), "Forbidden");
    }
    let r = call(
        &s,
        "POST",
        "/_nasgate/api/login",
        &[
            ("Origin", "http://evil.example"),
            ("X-Nasgate-Console", "1"),
        ],
        None,
        json!({"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 403);
    // A proxy that rewrites Host says which host the browser used.
    let r = call(
        &s,
        "POST",
        "/_nasgate/api/presign",
        &[
            ("X-Nasgate-Console", "1"),
            ("Origin", "https://console.example"),
            ("X-Forwarded-Host", "console.example"),
            ("X-Forwarded-Proto", "https"),
        ],
        Some(&cookie),
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // At most 1000 requests per call; other methods than the API's own are refused.
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"method": "GET", "bucket": "data"}))
        .collect();
    let r = post(
        &s,
        "/_nasgate/api/presign",
        Some(&cookie),
        &json!({ "requests": many }),
    );
    assert_eq!(r.status, 400);
    assert_eq!(code_of(&r), "BadRequest");
    let r = call(&s, "GET", "/_nasgate/api/login", &[], Some(&cookie), b"");
    assert_eq!(r.status, 405);
    let r = call(
        &s,
        "GET",
        "/_nasgate/api/nothing-here",
        &[],
        Some(&cookie),
        b"",
    );
    assert_eq!(r.status, 404);
    // The right headers pass.
    let r = post(
        &s,
        "/_nasgate/api/presign",
        Some(&cookie),
        &serde_json::from_str(&body).unwrap(),
    );
    assert_eq!(r.status, 200);

    // Any change to the cookie ends the session.
    let value = cookie.strip_prefix("nasgate_session=").unwrap();
    let (payload, mac) = value.split_once('.').unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
    claims["e"] = json!(claims["e"].as_u64().unwrap() + 86_400);
    let forged = format!(
        "nasgate_session={}.{mac}",
        b64.encode(serde_json::to_vec(&claims).unwrap())
    );
    for bad in [
        forged,
        format!("{cookie}x"),
        "nasgate_session=".to_string(),
        format!("nasgate_session={payload}"),
    ] {
        let r = whoami(&s, &bad);
        assert_eq!(r.status, 401, "{bad}");
        assert_eq!(code_of(&r), "NoSession");
    }
    // Another root secret's instance does not take this one's cookie.
    let other_share = tempfile::tempdir().unwrap();
    let other = Server::start_with(
        other_share.path(),
        &[],
        &[("NASGATE_ROOT_PASSWORD", "another-root-secret-99")],
    );
    assert_eq!(whoami(&other, &cookie).status, 401);
}

#[test]
fn sessions_end_when_the_secret_changes_or_the_user_is_disabled() {
    let share = tempfile::tempdir().unwrap();
    let s = Server::start(share.path(), &[]);
    user_cmd(
        share.path(),
        &["add", "alice", "--policy", "readwrite"],
        Some("alice-secret-1"),
    );
    user_cmd(
        share.path(),
        &["add", "bob", "--policy", "readwrite"],
        Some("bob-secret-111"),
    );
    let mut alice = String::new();
    until(PROPAGATION, "alice's login", || {
        let r = login_as(&s, "alice", "alice-secret-1");
        if r.status == 200 {
            alice = session_cookie(&r);
        }
        r.status == 200
    });
    assert_eq!(json_of(&whoami(&s, &alice))["root"], false);
    let bob = session_cookie(&login_as(&s, "bob", "bob-secret-111"));
    assert_eq!(whoami(&s, &bob).status, 200);

    user_cmd(share.path(), &["disable", "alice"], None);
    until(PROPAGATION, "alice's session ending", || {
        whoami(&s, &alice).status == 401
    });
    assert_eq!(code_of(&whoami(&s, &alice)), "NoSession");
    // Enabling her again lets her log in anew, but the old session stays ended: an instance
    // started after the enable knows her, and still refuses the old cookie.
    user_cmd(share.path(), &["enable", "alice"], None);
    let after = Server::start(share.path(), &[]);
    assert_eq!(login_as(&after, "alice", "alice-secret-1").status, 200);
    assert_eq!(whoami(&after, &alice).status, 401);

    // A new secret (remove and add again) ends bob's session though the user exists: an
    // instance started after the change knows only the new secret.
    user_cmd(share.path(), &["remove", "bob"], None);
    user_cmd(
        share.path(),
        &["add", "bob", "--policy", "readwrite"],
        Some("bob-secret-222"),
    );
    let fresh = Server::start(share.path(), &[]);
    assert_eq!(login_as(&fresh, "bob", "bob-secret-222").status, 200);
    assert_eq!(whoami(&fresh, &bob).status, 401);
    until(PROPAGATION, "bob's old session ending", || {
        whoami(&s, &bob).status == 401
    });
}

#[test]
fn two_instances_on_one_share_accept_each_others_cookie() {
    let share = tempfile::tempdir().unwrap();
    let a = Server::start(share.path(), &[]);
    let b = Server::start(share.path(), &[]);
    let cookie = login(&a);
    let r = whoami(&b, &cookie);
    assert_eq!(r.status, 200, "{}", r.text());
    let urls = presign(
        &b,
        &cookie,
        json!([{"method": "PUT", "bucket": "shared-bucket"}]),
    );
    // A URL presigned by one instance works on the other (same host name, same share).
    let r = call(
        &a,
        "PUT",
        &urls[0].replace(&b.address, &a.address),
        &[],
        None,
        b"",
    );
    assert_eq!(r.status, 403, "signed for b's Host: {}", r.text());
    let r = call(&b, "PUT", &urls[0], &[], None, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(share.path().join("shared-bucket").is_dir());
}

fn sha256_b64(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body))
}

#[test]
fn presigned_urls_serve_real_s3_requests_and_expire() {
    let share = tempfile::tempdir().unwrap();
    let s = Server::start(share.path(), &[]);
    let cookie = login(&s);
    let body = b"<html><script>alert(1)</script></html>".to_vec();
    let urls = presign(
        &s,
        &cookie,
        json!([
            {"method": "PUT", "bucket": "web"},
            {"method": "PUT", "bucket": "web", "key": "dir/page one.html"},
            {"method": "GET", "bucket": "web", "key": "dir/page one.html"},
            {"method": "GET", "bucket": "web", "query": {"list-type": "2", "prefix": "dir/", "delimiter": "/"}},
            {"method": "POST", "bucket": "web", "key": "big.bin", "query": {"uploads": ""}},
            {"method": "PUT", "bucket": "web", "key": "copy.html",
             "headers": {"x-amz-copy-source": "/web/dir/page%20one.html"}},
            {"method": "HEAD", "bucket": "web", "key": "copy.html"},
            {"method": "GET", "bucket": "web", "key": "dir/page one.html", "expires": 1},
            {"method": "GET", "bucket": ""},
        ]),
    );
    assert_eq!(urls.len(), 9);
    assert_eq!(call(&s, "PUT", &urls[0], &[], None, b"").status, 200);
    // Unsigned Content-Type, metadata and checksum headers are taken, and checked.
    let sum = sha256_b64(&body);
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
    let put = call(
        &s,
        "PUT",
        &urls[1],
        &[
            ("Content-Type", "text/html"),
            ("x-amz-meta-origin", "console"),
            ("x-amz-checksum-sha256", &sum),
            ("Content-MD5", &md5),
        ],
        None,
        &body,
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let bad_md5 = call(
        &s,
        "PUT",
        &urls[1],
        &[("Content-MD5", "AAAAAAAAAAAAAAAAAAAAAA==")],
        None,
        &body,
    );
    assert_eq!(bad_md5.status, 400, "{}", bad_md5.text());
    let bad = call(
        &s,
        "PUT",
        &urls[1],
        &[("x-amz-checksum-sha256", &sha256_b64(b"other"))],
        None,
        &body,
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    let get = call(&s, "GET", &urls[2], &[], None, b"");
    assert_eq!(get.status, 200);
    assert_eq!(get.body, body);
    assert_eq!(get.header("content-type"), Some("text/html"));
    assert_eq!(get.header("x-amz-meta-origin"), Some("console"));
    // Stored HTML is served sandboxed: no script on the console's origin.
    let csp = get.header("content-security-policy").expect("sandbox CSP");
    assert!(csp.starts_with("sandbox;"), "{csp}");
    assert_eq!(get.header("x-content-type-options"), Some("nosniff"));
    let ranged = call(&s, "GET", &urls[2], &[("Range", "bytes=0-5")], None, b"");
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.body, b"<html>");
    let list = call(&s, "GET", &urls[3], &[], None, b"");
    assert_eq!(list.status, 200);
    assert!(
        list.text().contains("<Key>dir/page one.html</Key>"),
        "{}",
        list.text()
    );

    // Multipart: create, two parts, list parts, complete.
    let created = call(&s, "POST", &urls[4], &[], None, b"");
    assert_eq!(created.status, 200, "{}", created.text());
    let t = created.text();
    let upload = t
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split("</UploadId>")
        .next()
        .unwrap()
        .to_string();
    let part1 = vec![b'a'; 5 * 1024 * 1024];
    let part2 = b"tail".to_vec();
    let parts = presign(
        &s,
        &cookie,
        json!([
            {"method": "PUT", "bucket": "web", "key": "big.bin", "query": {"partNumber": "1", "uploadId": upload}},
            {"method": "PUT", "bucket": "web", "key": "big.bin", "query": {"partNumber": "2", "uploadId": upload}},
            {"method": "GET", "bucket": "web", "key": "big.bin", "query": {"uploadId": upload}},
            {"method": "POST", "bucket": "web", "key": "big.bin", "query": {"uploadId": upload}},
            {"method": "GET", "bucket": "web", "key": "big.bin"},
        ]),
    );
    let mut etags = Vec::new();
    for (url, data) in [(&parts[0], &part1), (&parts[1], &part2)] {
        let r = call(&s, "PUT", url, &[], None, data);
        assert_eq!(r.status, 200, "{}", r.text());
        etags.push(r.header("etag").unwrap().to_string());
    }
    let listed = call(&s, "GET", &parts[2], &[], None, b"");
    assert_eq!(listed.status, 200);
    assert_eq!(listed.text().matches("<Part>").count(), 2);
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        etags[0], etags[1]
    );
    let done = call(&s, "POST", &parts[3], &[], None, complete.as_bytes());
    assert_eq!(done.status, 200, "{}", done.text());
    let whole = call(&s, "GET", &parts[4], &[], None, b"");
    assert_eq!(whole.body.len(), part1.len() + part2.len());
    assert!(whole.body.ends_with(b"tail"));

    // CopyObject: the copy source is a signed header, sent exactly.
    let copied = call(
        &s,
        "PUT",
        &urls[5],
        &[("x-amz-copy-source", "/web/dir/page%20one.html")],
        None,
        b"",
    );
    assert_eq!(copied.status, 200, "{}", copied.text());
    let head = call(&s, "HEAD", &urls[6], &[], None, b"");
    assert_eq!(head.status, 200);
    assert!(head
        .header("content-security-policy")
        .unwrap()
        .starts_with("sandbox;"));
    assert_eq!(call(&s, "GET", &urls[8], &[], None, b"").status, 200);

    // DeleteObjects with the SHA-256 browsers can compute instead of Content-MD5.
    let del = presign(
        &s,
        &cookie,
        json!([{"method": "POST", "bucket": "web", "query": {"delete": ""}}]),
    );
    let xml =
        "<Delete><Object><Key>copy.html</Key></Object><Object><Key>big.bin</Key></Object></Delete>";
    let wrong = call(
        &s,
        "POST",
        &del[0],
        &[("x-amz-checksum-sha256", &sha256_b64(b"not the body"))],
        None,
        xml.as_bytes(),
    );
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    assert_eq!(wrong.code().as_deref(), Some("BadDigest"));
    assert!(share.path().join("web/copy.html").exists());
    let deleted = call(
        &s,
        "POST",
        &del[0],
        &[("x-amz-checksum-sha256", &sha256_b64(xml.as_bytes()))],
        None,
        xml.as_bytes(),
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(deleted.text().matches("<Deleted>").count(), 2);
    assert!(!share.path().join("web/copy.html").exists());

    // A one-second URL stops working.
    until(Duration::from_secs(10), "the short URL expiring", || {
        call(&s, "GET", &urls[7], &[], None, b"").status == 403
    });
    let r = post(
        &s,
        "/_nasgate/api/presign",
        Some(&cookie),
        &json!({"requests": [{"method": "GET", "bucket": "web", "expires": 604801}]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(code_of(&r), "BadRequest");
}

#[test]
fn usage_counts_the_objects_written() {
    let share = tempfile::tempdir().unwrap();
    let s = Server::start(share.path(), &[]);
    create_bucket(&s, "sizes");
    let mut total = 0;
    for (i, n) in [10usize, 2000, 70_000, 0].iter().enumerate() {
        let r = put_object(&s, &format!("/sizes/d{i}/obj{i}"), &vec![b'x'; *n]);
        assert_eq!(r.status, 200);
        total += n;
    }
    let cookie = login(&s);
    let r = call(
        &s,
        "GET",
        "/_nasgate/api/usage?bucket=sizes",
        &[],
        Some(&cookie),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json_of(&r);
    assert_eq!(v["bucket"], "sizes");
    assert_eq!(v["bytes"], total as u64);
    assert_eq!(v["objects"], 4);
    assert_eq!(v["complete"], true);
    assert!(v["shareTotalBytes"].as_u64().unwrap() > 0);
    assert!(v["shareFreeBytes"].as_u64().unwrap() <= v["shareTotalBytes"].as_u64().unwrap());
    let r = call(
        &s,
        "GET",
        "/_nasgate/api/usage?bucket=nosuchbucket",
        &[],
        Some(&cookie),
        b"",
    );
    assert_eq!(r.status, 404);
    assert_eq!(code_of(&r), "NoSuchBucket");
}

/// The zip answer's entries as `name size sha256-hex` lines, via Python's zipfile (which
/// checks every CRC).
fn unzip_listing(zip: &[u8]) -> String {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, zip).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys,zipfile,hashlib\nz=zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\n\
             for i in z.infolist(): print(i.filename, i.file_size, hashlib.sha256(z.read(i)).hexdigest())",
        )
        .arg(f.path())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn zip_form(s: &Server, cookie: &str, fields: &[(&str, &str)], origin_header: &str) -> RawResponse {
    let body = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                k,
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    call(
        s,
        "POST",
        "/_nasgate/api/zip",
        &[
            ("Origin", origin_header),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(cookie),
        body.as_bytes(),
    )
}

#[test]
fn zip_of_a_prefix_and_of_chosen_keys_unzips_byte_for_byte() {
    let share = tempfile::tempdir().unwrap();
    let policy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        policy.path(),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
               "Resource": ["arn:aws:s3:::photos/2025/*"]}]})
        .to_string(),
    )
    .unwrap();
    user_cmd(
        share.path(),
        &[
            "add",
            "carol",
            "--policy-file",
            policy.path().to_str().unwrap(),
        ],
        Some("carol-secret-1"),
    );
    let s = Server::start(share.path(), &[]);
    create_bucket(&s, "photos");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("2024/a.txt", b"alpha".to_vec()),
        (
            "2024/sub/b.bin",
            (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect(),
        ),
        ("2024/ü é.txt", b"".to_vec()),
        ("2025/c.txt", b"not in 2024".to_vec()),
    ];
    let cookie = login(&s);
    let puts: Vec<Value> = files
        .iter()
        .map(|(k, _)| json!({"method": "PUT", "bucket": "photos", "key": k}))
        .collect();
    for ((_, b), url) in files.iter().zip(presign(&s, &cookie, Value::Array(puts))) {
        assert_eq!(call(&s, "PUT", &url, &[], None, b).status, 200);
    }
    let line = |name: &str, body: &[u8]| {
        format!(
            "{name} {} {}\n",
            body.len(),
            hex::encode(sha2::Sha256::digest(body))
        )
    };
    let csrf = json_of(&whoami(&s, &cookie))["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let o = origin(&s);

    let r = zip_form(
        &s,
        &cookie,
        &[("bucket", "photos"), ("prefix", "2024/"), ("csrf", &csrf)],
        &o,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .contains("filename=\"2024.zip\""));
    let want = line("a.txt", &files[0].1) + &line("sub/b.bin", &files[1].1) + &line("ü é.txt", b"");
    assert_eq!(unzip_listing(&r.body), want);

    let r = zip_form(
        &s,
        &cookie,
        &[
            ("bucket", "photos"),
            ("key", "2025/c.txt"),
            ("key", "2024/a.txt"),
            ("csrf", &csrf),
        ],
        &o,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let want = line("2025/c.txt", &files[3].1) + &line("2024/a.txt", &files[0].1);
    assert_eq!(unzip_listing(&r.body), want);

    // A chosen key that does not exist is refused before anything streams.
    let r = zip_form(
        &s,
        &cookie,
        &[
            ("bucket", "photos"),
            ("key", "2024/a.txt"),
            ("key", "2024/gone.txt"),
            ("csrf", &csrf),
        ],
        &o,
    );
    assert_eq!(r.status, 404);
    assert_eq!(code_of(&r), "NoSuchKey");
    let r = zip_form(
        &s,
        &cookie,
        &[("bucket", "no-such-bucket"), ("csrf", &csrf)],
        &o,
    );
    assert_eq!(r.status, 404);
    assert_eq!(code_of(&r), "NoSuchBucket");

    // Without the token, with a wrong one, or from another origin: refused.
    for (fields, org) in [
        (vec![("bucket", "photos")], o.as_str()),
        (vec![("bucket", "photos"), ("csrf", "nope")], o.as_str()),
        (
            vec![("bucket", "photos"), ("csrf", csrf.as_str())],
            "http://evil.example",
        ),
    ] {
        let r = zip_form(&s, &cookie, &fields, org);
        assert_eq!(r.status, 403);
        assert_eq!(code_of(&r), "Forbidden");
    }

    // A user who may read only 2025/ is refused the whole zip if one chosen key is denied.
    let r = login_as(&s, "carol", "carol-secret-1");
    assert_eq!(r.status, 200, "{}", r.text());
    let carol = session_cookie(&r);
    let carol_csrf = json_of(&whoami(&s, &carol))["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let r = zip_form(
        &s,
        &carol,
        &[
            ("bucket", "photos"),
            ("key", "2025/c.txt"),
            ("key", "2024/a.txt"),
            ("csrf", &carol_csrf),
        ],
        &o,
    );
    assert_eq!(r.status, 403);
    assert_eq!(code_of(&r), "AccessDenied");
    let r = zip_form(
        &s,
        &carol,
        &[
            ("bucket", "photos"),
            ("key", "2025/c.txt"),
            ("csrf", &carol_csrf),
        ],
        &o,
    );
    assert_eq!(r.status, 200);
    assert_eq!(unzip_listing(&r.body), line("2025/c.txt", &files[3].1));
    // Listing the bucket is not hers either: no usage, no zip of a prefix.
    let r = call(
        &s,
        "GET",
        "/_nasgate/api/usage?bucket=photos",
        &[],
        Some(&carol),
        b"",
    );
    assert_eq!(r.status, 403);
    assert_eq!(code_of(&r), "AccessDenied");
    let r = zip_form(
        &s,
        &carol,
        &[("bucket", "photos"), ("prefix", ""), ("csrf", &carol_csrf)],
        &o,
    );
    assert_eq!(r.status, 403);
}

#[test]
fn under_tls_the_cookie_is_secure_and_the_origin_is_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let s = Server::start(
        &share,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let login = |origin: &str| {
        let out = Command::new("curl")
            .args(["-s", "-i", "--max-time", "20", "--cacert"])
            .arg(&cert)
            .args(["-H", "X-Nasgate-Console: 1", "-H"])
            .arg(format!("Origin: {origin}"))
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(json!({"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}).to_string())
            .arg(format!("https://{}/_nasgate/api/login", s.address))
            .output()
            .expect("curl (installed by scripts/test.sh)");
        String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
    };
    let ok = login(&format!("https://{}", s.address));
    assert!(ok.starts_with("http/1.1 200"), "{ok}");
    let cookie_line = ok
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .expect("set-cookie");
    assert!(cookie_line.contains("; secure"), "{cookie_line}");
    assert!(cookie_line.contains("httponly"), "{cookie_line}");
    // The plain-http origin of the same host is another origin.
    let refused = login(&format!("http://{}", s.address));
    assert!(refused.starts_with("http/1.1 403"), "{refused}");
}
