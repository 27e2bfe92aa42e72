//! Shared mode: several `nasgate serve` processes on one share behave as one S3 service,
//! behind a load balancer, under contention on hot keys, and while instances are killed.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::contention::{client, read_all, torture};
use common::{Server, SECRET_KEY};
use nasgate::debug::store::body;

#[cfg(unix)]
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// nginx in front of the given instances, as an operator would put a load balancer: the
/// shipped template `scripts/lb/nginx.conf` with its placeholders filled in.
#[cfg(unix)]
struct Nginx {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

#[cfg(unix)]
impl Nginx {
    fn start(upstreams: &[&str]) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let template_path = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lb/nginx.conf");
        let template = std::fs::read_to_string(template_path).expect(template_path);
        let servers: String = upstreams
            .iter()
            .map(|u| format!("server {u} max_fails=0;\n"))
            .collect();
        let conf = template
            .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
            .replace("@UPSTREAMS@", &servers)
            .replace("@PREFIX@", &dir.path().display().to_string());
        for placeholder in ["@LISTEN@", "@UPSTREAMS@", "@PREFIX@"] {
            assert!(
                !conf.contains(placeholder),
                "{placeholder} left in nginx.conf"
            );
        }
        let is_root = std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false);
        // One process in the foreground: a master's orphaned workers would outlive a kill and
        // hold the test harness's pipes open.
        let globals = format!(
            "daemon off; master_process off;{}",
            if is_root { " user root root;" } else { "" }
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = std::process::Command::new("nginx")
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir.path())
            .arg("-g")
            .arg(&globals)
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("nginx (apt install nginx; scripts/test.sh does)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            port,
            _dir: dir,
        }
    }
}

#[cfg(unix)]
impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// nginx is not part of the Windows test run (scripts/windows.sh).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_behind_nginx_serve_as_one() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let share = tempfile::tempdir().unwrap();
        let servers: Vec<Server> = (0..3).map(|_| Server::start(share.path(), &[])).collect();
        let addrs: Vec<&str> = servers.iter().map(|s| s.address.as_str()).collect();
        let lb = Nginx::start(&addrs);
        let c = client(&format!("http://127.0.0.1:{}", lb.port));
        c.create_bucket().bucket("lbb").send().await.unwrap();
        // Read-after-write through whichever instance nginx picks, many times.
        for i in 0..30u64 {
            let data = body(i, 1000 + i as usize * 37);
            c.put_object()
                .bucket("lbb")
                .key(format!("k/{i}"))
                .body(ByteStream::from(data.clone()))
                .send()
                .await
                .unwrap();
            let (got, _) = read_all(&c, "lbb", &format!("k/{i}")).await.unwrap();
            assert_eq!(got, data, "read-after-write failed for k/{i}");
        }
        // A listing whose pages come from different instances.
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = c
                .list_objects_v2()
                .bucket("lbb")
                .max_keys(7)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap();
            keys.extend(page.contents().iter().map(|o| o.key().unwrap().to_string()));
            if page.is_truncated() != Some(true) {
                break;
            }
            token = page.next_continuation_token().map(str::to_string);
        }
        let mut expected: Vec<String> = (0..30).map(|i| format!("k/{i}")).collect();
        expected.sort();
        assert_eq!(keys, expected);
        // A multipart upload whose parts land on whatever instance.
        let id = c
            .create_multipart_upload()
            .bucket("lbb")
            .key("mp")
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_string();
        let parts: Vec<Vec<u8>> = (0..4).map(|i| body(100 + i, 5 * 1024 * 1024)).collect();
        let mut done = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let r = c
                .upload_part()
                .bucket("lbb")
                .key("mp")
                .upload_id(&id)
                .part_number(i as i32 + 1)
                .body(ByteStream::from(p.clone()))
                .send()
                .await
                .unwrap();
            done.push(
                CompletedPart::builder()
                    .part_number(i as i32 + 1)
                    .e_tag(r.e_tag().unwrap())
                    .build(),
            );
        }
        c.complete_multipart_upload()
            .bucket("lbb")
            .key("mp")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        for s in &servers {
            let direct = client(&s.endpoint());
            let (got, _) = read_all(&direct, "lbb", "mp").await.unwrap();
            assert_eq!(
                got,
                parts.concat(),
                "instance {} sees another object",
                s.address
            );
        }
        let spread: Vec<usize> = servers
            .iter()
            .map(|s| {
                s.log()
                    .iter()
                    .filter(|l| l.contains("op=\"UploadPart\"") || l.contains("op=\"PutObject\""))
                    .count()
            })
            .collect();
        eprintln!("writes per instance behind nginx: {spread:?}");
        assert!(
            spread.iter().filter(|n| **n > 0).count() >= 2,
            "nginx did not spread the load: {spread:?}"
        );
    })
    .await
    .expect("test timed out");
}

/// How long the contention runs: under Wine each request is several times slower, so the
/// same load takes longer.
const RUN_FOR: Duration = Duration::from_secs(if cfg!(windows) { 20 } else { 12 });

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_keys_on_three_instances_never_tear_or_fail() {
    let share = tempfile::tempdir().unwrap();
    tokio::time::timeout(
        Duration::from_secs(240),
        torture(&[share.path().to_path_buf()], false, RUN_FOR),
    )
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_keys_survive_instances_being_killed_and_restarted() {
    let share = tempfile::tempdir().unwrap();
    tokio::time::timeout(
        Duration::from_secs(240),
        torture(&[share.path().to_path_buf()], true, RUN_FOR),
    )
    .await
    .expect("test timed out");
}

#[test]
fn instances_starting_at_once_on_an_empty_share_agree_on_one_format() {
    let share = tempfile::tempdir().unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(5));
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let p = share.path().to_path_buf();
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                Server::start(&p, &[])
            })
        })
        .collect();
    let servers: Vec<Server> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let format = std::fs::read_to_string(share.path().join(".minio.sys/format.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&format).unwrap();
    assert_eq!(v["format"], "fs");
    let tmp = std::fs::read_dir(share.path().join(".minio.sys/tmp"))
        .unwrap()
        .count();
    assert_eq!(tmp, 5, "an instance wiped another's staging dir");
    let leftovers: Vec<_> = std::fs::read_dir(share.path().join(".minio.sys"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("format.json."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(servers);
}

#[cfg(unix)]
#[test]
fn sigterm_lets_an_in_flight_download_finish_and_removes_the_staging_dir() {
    let share = tempfile::tempdir().unwrap();
    let server = Server::start(share.path(), &[]);
    let data = body(9, 8 * 1024 * 1024);
    let put = common::signed_headers(
        &server.address,
        "PUT",
        "/slow",
        "",
        &[],
        &common::sha256_hex(b""),
        SECRET_KEY,
    );
    assert_eq!(
        common::http(&server.address, "PUT", "/slow", &put, b"").status,
        200
    );
    let h = common::signed_headers(
        &server.address,
        "PUT",
        "/slow/big",
        "",
        &[],
        "UNSIGNED-PAYLOAD",
        SECRET_KEY,
    );
    assert_eq!(
        common::http(&server.address, "PUT", "/slow/big", &h, &data).status,
        200
    );
    // Start a download and read only its first bytes, so it is in flight at SIGTERM.
    let get = common::signed_headers(
        &server.address,
        "GET",
        "/slow/big",
        "",
        &[],
        &common::sha256_hex(b""),
        SECRET_KEY,
    );
    let mut s = std::net::TcpStream::connect(&server.address).unwrap();
    let mut req = String::from("GET /slow/big HTTP/1.1\r\n");
    for (k, v) in &get {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    std::io::Write::write_all(&mut s, req.as_bytes()).unwrap();
    let mut first = [0u8; 4096];
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let n = std::io::Read::read(&mut s, &mut first).unwrap();
    assert!(n > 0);
    let pid = server_pid(&server);
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut rest).unwrap();
    let mut all = first[..n].to_vec();
    all.extend(rest);
    let resp = common::parse_response(&all, false);
    assert_eq!(resp.body, data, "the in-flight download was cut");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(share.path().join(".minio.sys/tmp"))
        .unwrap()
        .count()
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "staging dir not removed after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(server);
}

#[cfg(unix)]
fn server_pid(s: &Server) -> u32 {
    s.pid()
}
