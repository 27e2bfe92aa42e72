//! Shared mode: several `nasgate serve` processes on one share behave as one S3 service,
//! behind a load balancer, under contention on hot keys, and while instances are killed.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use common::{Server, ACCESS_KEY, SECRET_KEY};
use nasgate::store::driver::{body, is_whole, Rng};

fn client(endpoint: &str) -> Client {
    let creds = aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(60))
                .connect_timeout(Duration::from_secs(5))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

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

async fn read_all(c: &Client, bucket: &str, key: &str) -> Result<(Vec<u8>, String), String> {
    let r = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let etag = r.e_tag().unwrap_or("").trim_matches('"').to_string();
    let b = r
        .body
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .into_bytes()
        .to_vec();
    Ok((b, etag))
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
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

#[derive(Default)]
struct Tally {
    ops: AtomicU64,
    torn: AtomicU64,
    etag_mismatch: AtomicU64,
    server_errors: AtomicU64,
    slow_down: AtomicU64,
    connection_errors: AtomicU64,
    other_errors: AtomicU64,
}

fn classify<E: std::fmt::Debug>(
    t: &Tally,
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) {
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            if status == 503 {
                t.slow_down.fetch_add(1, Ordering::Relaxed);
            } else if status >= 500 {
                eprintln!("server error: {e:?}");
                t.server_errors.fetch_add(1, Ordering::Relaxed);
            } else if status != 404 {
                eprintln!("unexpected error: {e:?}");
                t.other_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        // The instance this client talked to was killed: its clients see the connection fail.
        aws_sdk_s3::error::SdkError::DispatchFailure(_)
        | aws_sdk_s3::error::SdkError::ResponseError(_)
        | aws_sdk_s3::error::SdkError::TimeoutError(_) => {
            t.connection_errors.fetch_add(1, Ordering::Relaxed);
        }
        other => {
            eprintln!("unexpected error: {other:?}");
            t.other_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn worker(
    endpoints: Arc<std::sync::Mutex<Vec<String>>>,
    seed: u64,
    until: Instant,
    t: Arc<Tally>,
) {
    let mut rng = Rng::new(seed);
    let mut clients: std::collections::HashMap<String, Client> = Default::default();
    while Instant::now() < until {
        let ep = {
            let eps = endpoints.lock().unwrap();
            eps[(rng.next_u64() % eps.len() as u64) as usize].clone()
        };
        let c = clients
            .entry(ep.clone())
            .or_insert_with(|| client(&ep))
            .clone();
        let key = format!("hot/{}", rng.next_u64() % 4);
        t.ops.fetch_add(1, Ordering::Relaxed);
        match rng.next_u64() % 20 {
            0..=6 => {
                let data = body(rng.next_u64(), (rng.next_u64() % 300_000) as usize);
                if let Err(e) = c
                    .put_object()
                    .bucket("hot")
                    .key(&key)
                    .body(ByteStream::from(data))
                    .send()
                    .await
                {
                    classify(&t, &e);
                }
            }
            7..=13 => match c.get_object().bucket("hot").key(&key).send().await {
                Ok(r) => {
                    let etag = r.e_tag().unwrap_or("").trim_matches('"').to_string();
                    match r.body.collect().await {
                        Ok(b) => {
                            let b = b.into_bytes();
                            if !is_whole(&b) {
                                eprintln!("torn read of {key}: {} bytes", b.len());
                                t.torn.fetch_add(1, Ordering::Relaxed);
                            } else if !etag.contains('-') && md5_hex(&b) != etag {
                                eprintln!("etag mismatch on {key}");
                                t.etag_mismatch.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            t.connection_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Err(e) => classify(&t, &e),
            },
            14..=15 => {
                if let Err(e) = c.head_object().bucket("hot").key(&key).send().await {
                    classify(&t, &e);
                }
            }
            16..=17 => {
                if let Err(e) = c.delete_object().bucket("hot").key(&key).send().await {
                    classify(&t, &e);
                }
            }
            _ => {
                // A small multipart upload of the same hot key, parts via this instance.
                let parts: Vec<Vec<u8>> = {
                    let whole = body(rng.next_u64(), 5 * 1024 * 1024 + 1000);
                    vec![
                        whole[..5 * 1024 * 1024].to_vec(),
                        whole[5 * 1024 * 1024..].to_vec(),
                    ]
                };
                let r: Result<(), ()> = async {
                    let id = c
                        .create_multipart_upload()
                        .bucket("hot")
                        .key(&key)
                        .send()
                        .await
                        .map_err(|e| classify(&t, &e))?;
                    let id = id.upload_id().unwrap_or_default().to_string();
                    let mut done = Vec::new();
                    for (i, p) in parts.iter().enumerate() {
                        let r = c
                            .upload_part()
                            .bucket("hot")
                            .key(&key)
                            .upload_id(&id)
                            .part_number(i as i32 + 1)
                            .body(ByteStream::from(p.clone()))
                            .send()
                            .await
                            .map_err(|e| classify(&t, &e))?;
                        done.push(
                            CompletedPart::builder()
                                .part_number(i as i32 + 1)
                                .e_tag(r.e_tag().unwrap_or_default())
                                .build(),
                        );
                    }
                    c.complete_multipart_upload()
                        .bucket("hot")
                        .key(&key)
                        .upload_id(&id)
                        .multipart_upload(
                            CompletedMultipartUpload::builder()
                                .set_parts(Some(done))
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(|e| classify(&t, &e))?;
                    Ok(())
                }
                .await;
                let _ = r;
            }
        }
    }
}

async fn torture(kill: bool) {
    let share = tempfile::tempdir().unwrap();
    let mut servers: Vec<Server> = (0..3)
        .map(|_| Server::start(share.path(), &["--lock-timeout", "10"]))
        .collect();
    let endpoints = Arc::new(std::sync::Mutex::new(
        servers.iter().map(|s| s.endpoint()).collect::<Vec<_>>(),
    ));
    client(&servers[0].endpoint())
        .create_bucket()
        .bucket("hot")
        .send()
        .await
        .unwrap();
    let tally = Arc::new(Tally::default());
    // Under Wine each request is several times slower: run longer for the same load.
    let run_for = Duration::from_secs(if cfg!(windows) { 20 } else { 12 });
    let until = Instant::now() + run_for;
    let workers: Vec<_> = (0..12)
        .map(|i| tokio::spawn(worker(endpoints.clone(), 1000 + i, until, tally.clone())))
        .collect();
    let mut kills = 0;
    if kill {
        let mut rng = Rng::new(42);
        // Kill a random instance every ~2 s and start a fresh one in its place; stop a few
        // seconds before the end so the last replacement's startup sweep has run.
        while Instant::now() + Duration::from_secs(3) < until {
            tokio::time::sleep(Duration::from_millis(1500 + rng.next_u64() % 1000)).await;
            let victim = (rng.next_u64() % 3) as usize;
            servers[victim].kill();
            kills += 1;
            let fresh = Server::start(share.path(), &["--lock-timeout", "10"]);
            endpoints.lock().unwrap()[victim] = fresh.endpoint();
            servers[victim] = fresh;
        }
    }
    for w in workers {
        w.await.unwrap();
    }
    let t = &tally;
    let ops = t.ops.load(Ordering::Relaxed);
    let slow = t.slow_down.load(Ordering::Relaxed);
    eprintln!(
        "torture (kill={kill}): {ops} operations, {kills} instances killed, torn {}, etag mismatches {}, 5xx {}, other errors {}, connection errors {}, 503 SlowDown {} ({:.2}%)",
        t.torn.load(Ordering::Relaxed),
        t.etag_mismatch.load(Ordering::Relaxed),
        t.server_errors.load(Ordering::Relaxed),
        t.other_errors.load(Ordering::Relaxed),
        t.connection_errors.load(Ordering::Relaxed),
        slow,
        100.0 * slow as f64 / ops.max(1) as f64
    );
    assert_eq!(t.torn.load(Ordering::Relaxed), 0, "torn reads");
    assert_eq!(
        t.etag_mismatch.load(Ordering::Relaxed),
        0,
        "ETag/body mismatches"
    );
    assert_eq!(
        t.server_errors.load(Ordering::Relaxed),
        0,
        "5xx other than SlowDown"
    );
    assert_eq!(
        t.other_errors.load(Ordering::Relaxed),
        0,
        "unexpected errors"
    );
    assert!(ops > 100, "too little load to mean anything");
    if !kill {
        assert_eq!(t.connection_errors.load(Ordering::Relaxed), 0);
    }
    // Every object reads back whole, and the same, through every instance.
    for k in 0..4 {
        let key = format!("hot/{k}");
        let mut seen = None;
        for s in &servers {
            let got = read_all(&client(&s.endpoint()), "hot", &key)
                .await
                .ok()
                .map(|(b, e)| {
                    assert!(is_whole(&b), "{key} torn after the run");
                    e
                });
            if let Some(prev) = &seen {
                assert_eq!(prev, &got, "instances disagree on {key}");
            }
            seen = Some(got);
        }
    }
    // The graceful stop is SIGTERM's; a Windows run (under Wine) has no way to send a
    // console stop to a child, so there the instances are killed and fsck checks the rest.
    #[cfg(unix)]
    for s in &mut servers {
        assert!(s.stop().success(), "an instance did not stop cleanly");
    }
    #[cfg(windows)]
    {
        for s in &mut servers {
            s.kill();
        }
        // The killed instances' staging directories are what a later instance's startup
        // sweep removes; fsck --repair removes them the same way, and then nothing else
        // may be wrong.
        let repaired = std::process::Command::new(env!("CARGO_BIN_EXE_nasgate"))
            .args(["fsck", "--repair"])
            .arg(share.path())
            .output()
            .unwrap();
        assert!(
            repaired.status.success(),
            "{}",
            String::from_utf8_lossy(&repaired.stdout)
        );
    }
    assert_fsck_clean(share.path());
}

fn assert_fsck_clean(share: &Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nasgate"))
        .arg("fsck")
        .arg(share)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Uploads cut short by a kill are young, not abandoned; staging dirs of killed instances
    // are swept by the instances started after them.
    assert!(out.status.success(), "fsck found problems:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_keys_on_three_instances_never_tear_or_fail() {
    tokio::time::timeout(Duration::from_secs(240), torture(false))
        .await
        .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_keys_survive_instances_being_killed_and_restarted() {
    tokio::time::timeout(Duration::from_secs(240), torture(true))
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
