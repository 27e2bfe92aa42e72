//! Operations through a real server process: readiness (draining, a share that goes away,
//! --require-mount), Prometheus metrics after real traffic, JSON logs, systemd
//! notification, TLS, and the systemd unit.

// Signals, sd_notify, mount tables and the systemd unit are unix matters.
#![cfg(unix)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    get_object as get, http, put_object as put, ready_status as ready, signed_headers, Server,
    ANSWER_BOUND, SECRET_KEY,
};

/// Polls `f` until it returns true or the bound passes.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < ANSWER_BOUND,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(server: &Server) {
    let ok = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
}

#[test]
fn draining_turns_ready_off_refuses_new_requests_and_finishes_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--shutdown-timeout", "20"]);
    assert_eq!(put(&server, "/bkt", b"").status, 200);
    assert_eq!(ready(&server), 200);
    assert_eq!(
        http(&server.address, "GET", "/minio/health/ready", &[], b"").status,
        200
    );

    // An upload in flight: head and half the body sent. Larger than the 64 KiB a server
    // holds in memory before staging, so the staged half shows it has arrived.
    let body = vec![7u8; 200_000];
    let mut headers = signed_headers(
        &server.address,
        "PUT",
        "/bkt/slow",
        "",
        &[],
        "UNSIGNED-PAYLOAD",
        SECRET_KEY,
    );
    headers.push(("content-length".into(), body.len().to_string()));
    let mut conn = TcpStream::connect(&server.address).unwrap();
    conn.set_read_timeout(Some(ANSWER_BOUND)).unwrap();
    let mut head = "PUT /bkt/slow HTTP/1.1\r\nConnection: close\r\n".to_string();
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&body[..100_000]).unwrap();
    eventually("the upload to reach the store", || {
        server.log().iter().any(|l| l.contains("slow")) || {
            // The handler logs only at the end; wait for the staging file instead.
            common::files_under(&dir.path().join(".minio.sys/tmp"))
                .iter()
                .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == 100_000))
        }
    });

    sigterm(&server);
    eventually("readiness to turn off", || ready(&server) == 503);
    assert_eq!(
        http(&server.address, "GET", "/health/live", &[], b"").status,
        200
    );
    let refused = get(&server, "/bkt/slow");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.code().as_deref(), Some("SlowDown"));

    conn.write_all(&body[100_000..]).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let resp = common::parse_response(&raw, false);
    assert_eq!(resp.status, 200, "the in-flight upload must complete");
    assert!(server.stop().success());
    assert_eq!(std::fs::read(dir.path().join("bkt/slow")).unwrap(), body);
}

#[test]
fn readiness_follows_the_share_mount_and_require_mount_refuses_a_plain_folder() {
    let dir = tempfile::tempdir().unwrap();
    // A plain folder where the NAS should be mounted: refused in one line, nothing created.
    let out = Command::new(env!("CARGO_BIN_EXE_nasgate"))
        .args(["serve", "--require-mount", "--address", "127.0.0.1:0"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a mount point"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());

    // A real mount (tmpfs) as the share: ready; lazily unmounted under the server: not.
    let share = dir.path().join("nas");
    std::fs::create_dir(&share).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&share)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs needs root");
    let unmount = |p: &Path| {
        let _ = Command::new("umount").arg("-l").arg(p).status();
    };
    let server = Server::start(&share, &["--require-mount"]);
    assert_eq!(ready(&server), 200);
    unmount(&share);
    eventually("readiness to turn off once the share is gone", || {
        ready(&server) == 503
    });
    drop(server);
    unmount(&share);
}

#[test]
fn ready_turns_off_when_the_staging_area_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(ready(&server), 200);
    // What a NAS that went away looks like from here: this instance's files vanish.
    std::fs::remove_dir_all(dir.path().join(".minio.sys/tmp")).unwrap();
    // The background probe notices within its interval.
    eventually("readiness to turn off", || ready(&server) == 503);
}

/// Parses Prometheus text into (name{labels}, value) pairs.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("sample line");
            (name.to_string(), value.parse().expect("sample value"))
        })
        .collect()
}

fn sample(all: &[(String, f64)], name: &str) -> f64 {
    all.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no sample {name}"))
}

#[test]
fn metrics_count_real_traffic_and_honour_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        dir.path(),
        &[
            "--metrics-token",
            "s3cret-token",
            "--mount",
            mnt.path().to_str().unwrap(),
        ],
    );
    assert_eq!(put(&server, "/bkt", b"").status, 200);
    let body = vec![42u8; 12345];
    assert_eq!(put(&server, "/bkt/obj", &body).status, 200);
    for _ in 0..3 {
        let r = get(&server, "/bkt/obj");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, body);
    }
    assert_eq!(get(&server, "/bkt/missing").status, 404);
    std::fs::write(mnt.path().join("bkt/via-mount"), b"posix").unwrap();

    assert_eq!(
        http(&server.address, "GET", "/metrics", &[], b"").status,
        401
    );
    let wrong = vec![("authorization".to_string(), "Bearer nope".to_string())];
    assert_eq!(
        http(&server.address, "GET", "/metrics", &wrong, b"").status,
        401
    );
    let auth = vec![(
        "authorization".to_string(),
        "Bearer s3cret-token".to_string(),
    )];
    let resp = http(&server.address, "GET", "/metrics", &auth, b"");
    assert_eq!(resp.status, 200);
    let all = samples(&resp.text());
    let get_ok = r#"nasgate_s3_requests_total{operation="GetObject",status="200"}"#;
    assert_eq!(sample(&all, get_ok), 3.0);
    let missing = r#"nasgate_s3_requests_total{operation="GetObject",status="404"}"#;
    assert_eq!(sample(&all, missing), 1.0);
    assert_eq!(
        sample(
            &all,
            r#"nasgate_s3_sent_bytes_total{operation="GetObject"}"#
        ),
        3.0 * body.len() as f64
    );
    assert_eq!(
        sample(
            &all,
            r#"nasgate_s3_received_bytes_total{operation="PutObject"}"#
        ),
        body.len() as f64
    );
    assert!(
        sample(
            &all,
            r#"nasgate_s3_request_seconds_count{operation="GetObject"}"#
        ) >= 4.0
    );
    assert!(
        sample(
            &all,
            r#"nasgate_lock_wait_seconds_count{kind="share",mode="exclusive"}"#
        ) >= 2.0
    );
    assert!(
        sample(
            &all,
            r#"nasgate_lock_wait_seconds_count{kind="namespace",mode="shared"}"#
        ) >= 3.0
    );
    assert!(
        sample(
            &all,
            r#"nasgate_fuse_operations_total{operation="write",result="ok"}"#
        ) >= 1.0
    );
    assert!(
        sample(
            &all,
            r#"nasgate_fuse_operations_total{operation="create",result="ok"}"#
        ) >= 1.0
    );
    assert!(all
        .iter()
        .any(|(n, _)| n.starts_with("nasgate_lock_handles{")));
    assert!(all.iter().any(|(n, _)| n == "nasgate_tmp_sweeps_total"));
    assert!(server.stop().success());
}

#[test]
fn json_logs_carry_one_parseable_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--log-format", "json"]);
    assert_eq!(put(&server, "/bkt", b"").status, 200);
    assert_eq!(put(&server, "/bkt/k", b"hello").status, 200);
    assert_eq!(get(&server, "/bkt/k").status, 200);
    assert!(server.stop().success());
    let lines: Vec<serde_json::Value> = server
        .log()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v["message"] == "request").collect();
    assert_eq!(requests.len(), 3, "{lines:?}");
    let g = requests
        .iter()
        .find(|v| v["op"] == "GetObject")
        .expect("GetObject line");
    assert_eq!(g["bucket"], "bkt");
    assert_eq!(g["key"], "k");
    assert_eq!(g["status"], 200);
    assert_eq!(g["bytes_out"], 5);
    assert!(g["ms"].is_u64());
    assert!(g["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(g["level"], "INFO");
}

#[test]
fn systemd_hears_ready_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(ANSWER_BOUND)).unwrap();
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let mut server = Server::start_with(
        &share,
        &[],
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())],
    );
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    assert_eq!(ready(&server), 200);
    sigterm(&server);
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(server.stop().success());
}

#[test]
fn tls_with_a_self_signed_certificate_serves_an_s3_client() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
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
    let mut server = Server::start(
        &share,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let endpoint = format!("https://{}", server.address);
    let aws = |args: &[&str]| {
        Command::new("aws")
            .args([
                "--endpoint-url",
                &endpoint,
                "--ca-bundle",
                cert.to_str().unwrap(),
            ])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", common::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("awscli (installed by scripts/test.sh)")
    };
    let src = dir.path().join("payload");
    std::fs::write(&src, b"over tls").unwrap();
    let mb = aws(&["s3", "mb", "s3://tls-bkt"]);
    assert!(
        mb.status.success(),
        "{}",
        String::from_utf8_lossy(&mb.stderr)
    );
    let cp = aws(&["s3", "cp", src.to_str().unwrap(), "s3://tls-bkt/p"]);
    assert!(
        cp.status.success(),
        "{}",
        String::from_utf8_lossy(&cp.stderr)
    );
    let back = aws(&["s3", "cp", "s3://tls-bkt/p", "-"]);
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(back.stdout, b"over tls");
    // Without trusting the certificate the client refuses: it really is TLS with that cert.
    let untrusted = Command::new("aws")
        .args(["--endpoint-url", &endpoint, "s3", "ls"])
        .env("AWS_ACCESS_KEY_ID", common::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
    assert!(server.stop().success());
}

#[test]
fn tls_with_a_missing_key_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nasgate"))
        .args(["serve", "--address", "127.0.0.1:0"])
        .arg(dir.path())
        .args([
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .env("NASGATE_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TLS certificate /nonexistent/cert.pem"),
        "{err}"
    );
}

#[test]
fn the_systemd_unit_verifies_cleanly() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/systemd/verify.sh");
    let out = Command::new("bash").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_serve_flag_is_documented_with_its_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_nasgate"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for var in [
        "NASGATE_SHARE",
        "NASGATE_ADDRESS",
        "NASGATE_MOUNT",
        "NASGATE_MOUNT_ATTR_TTL",
        "NASGATE_MOUNT_ALLOW_OTHER",
        "NASGATE_LOCK_TIMEOUT",
        "NASGATE_SWEEP_INTERVAL",
        "NASGATE_UPLOAD_EXPIRY",
        "NASGATE_DURABILITY",
        "NASGATE_LOG_FORMAT",
        "NASGATE_METRICS_TOKEN",
        "NASGATE_TLS_CERT",
        "NASGATE_TLS_KEY",
        "NASGATE_REQUIRE_MOUNT",
        "NASGATE_SHUTDOWN_TIMEOUT",
        "NASGATE_IDLE_TIMEOUT",
        "NASGATE_HEADER_TIMEOUT",
        "NASGATE_KEEPALIVE_TIMEOUT",
        "NASGATE_MAX_CONNECTIONS",
        "NASGATE_PROBE_INTERVAL",
        "NASGATE_STALL_TIMEOUT",
    ] {
        assert!(help.contains(var), "serve --help lacks {var}");
        assert!(readme.contains(var), "README lacks {var}");
    }
}
