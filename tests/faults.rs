//! Faults through a real server process: slow and greedy clients (header timeout, idle
//! keep-alive, the connection cap, oversized heads), a share that stalls (a bindfs FUSE
//! passthrough frozen with SIGSTOP), a share that turns read-only (ext4 on a loop device
//! forced into its emergency read-only mode), and a share that fills up (a small tmpfs).
//! Many clients at once are in `tests/concurrent_clients.rs`, apart, so their load does not
//! skew the time bounds here.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{
    get_object as get, http, put_object as put, ready_status as ready, signed_headers, Server,
    ANSWER_BOUND, SECRET_KEY,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Polls `f` until it returns true; the time it took, failing after `bound`.
fn within(what: &str, bound: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < bound, "no {what} within {bound:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn metric(server: &Server, name: &str) -> f64 {
    let text = http(&server.address, "GET", "/metrics", &[], b"").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Reads until the server closes the connection; returns what came and how long it took.
fn read_until_closed(s: &mut TcpStream, bound: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(bound)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, start.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (got, start.elapsed())
            }
            Err(e) => panic!(
                "connection still open after {:?} ({e}); got {:?}",
                start.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

#[test]
fn a_client_that_never_finishes_its_headers_is_closed_within_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--header-timeout", "2", "--keepalive-timeout", "3"],
    );
    let mut slow = TcpStream::connect(&server.address).unwrap();
    slow.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\n").unwrap();
    let (_, took) = read_until_closed(&mut slow, Duration::from_secs(10));
    eprintln!("slow-header client closed after {took:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "closed too late: {took:?}");

    // A kept-alive connection that goes quiet after its request is closed too.
    let mut idle = TcpStream::connect(&server.address).unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let (got, took) = read_until_closed(&mut idle, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    eprintln!("idle keep-alive connection closed after {took:?}");
    assert!(
        took >= Duration::from_millis(2500),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "closed too late: {took:?}");

    // The server still answers.
    assert_eq!(
        http(&server.address, "GET", "/health/live", &[], b"").status,
        200
    );
}

#[test]
fn a_tls_client_that_never_finishes_its_handshake_is_closed_within_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success());
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let server = Server::start(
        &share,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--header-timeout",
            "2",
        ],
    );
    let mut silent = TcpStream::connect(&server.address).unwrap();
    let (_, took) = read_until_closed(&mut silent, Duration::from_secs(10));
    eprintln!("silent TLS client closed after {took:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "closed too late: {took:?}");
}

#[test]
fn a_client_that_stops_reading_a_download_is_dropped_and_its_lock_released() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--keepalive-timeout", "1", "--lock-timeout", "30"],
    );
    assert_eq!(put(&server, "/bkt", b"").status, 200);
    let big = vec![5u8; 32 << 20];
    assert_eq!(put_large(&server, "/bkt/big", &big).status, 200);
    // Ask for the object and never read: socket buffers fill, the response stalls with
    // the object's read lock held.
    let headers = signed_headers(
        &server.address,
        "GET",
        "/bkt/big",
        "",
        &[],
        "UNSIGNED-PAYLOAD",
        SECRET_KEY,
    );
    let mut reader = TcpStream::connect(&server.address).unwrap();
    let mut head = String::from("GET /bkt/big HTTP/1.1\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    reader.write_all(head.as_bytes()).unwrap();
    // A writer of the same key waits for that read lock, and gets it once the silent
    // reader's connection is dropped (about two keep-alive periods), not after the lock
    // timeout.
    let started = Instant::now();
    let r = put(&server, "/bkt/big", b"replaced");
    let took = started.elapsed();
    eprintln!(
        "writer behind a silent reader answered {} after {took:?}",
        r.status
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(get(&server, "/bkt/big").body, b"replaced");
    drop(reader);
}

#[test]
fn at_the_connection_cap_accepting_pauses_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 8;
    let server = Server::start(
        dir.path(),
        &[
            "--max-connections",
            &cap.to_string(),
            "--header-timeout",
            "60",
        ],
    );
    // `cap` idle connections: each is accepted (a request on it would be answered) and
    // then holds its slot while sending nothing.
    let mut held: Vec<TcpStream> = (0..cap)
        .map(|_| TcpStream::connect(&server.address).unwrap())
        .collect();
    // Three more, each with a whole request: none is accepted while the cap is full.
    let mut waiting: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(&server.address).unwrap();
            s.write_all(b"GET /health/live HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    // A bounded look for an answer that must not come (the connection is not accepted).
    waiting[0]
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 64];
    match waiting[0].read(&mut buf) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("a connection beyond the cap was served: {other:?}"),
    }
    // Closing held connections lets the waiting ones in, in order, each answered.
    for w in waiting.iter_mut() {
        drop(held.pop());
        let (got, _) = read_until_closed(w, ANSWER_BOUND);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }
    drop(held);
    assert_eq!(
        http(&server.address, "GET", "/health/live", &[], b"").status,
        200
    );
    let log = server.log();
    let warnings = log
        .iter()
        .filter(|l| l.contains("connection cap reached"))
        .count();
    assert!(warnings >= 1, "{log:?}");
    assert!(warnings <= 3, "logged once per episode at most: {log:?}");
}

fn raw_status(server: &Server, head: &str) -> u16 {
    let mut s = TcpStream::connect(&server.address).unwrap();
    // The server may answer and close before the whole head is sent.
    let _ = s.write_all(head.as_bytes());
    let (got, _) = read_until_closed(&mut s, ANSWER_BOUND);
    let text = String::from_utf8_lossy(&got);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[test]
fn oversized_or_overcrowded_headers_answer_431_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let before = common::files_under(dir.path());
    let huge = format!(
        "PUT /b/k HTTP/1.1\r\nHost: a\r\nX-Amz-Meta-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "x".repeat(256 * 1024)
    );
    assert_eq!(raw_status(&server, &huge), 431);
    let mut many = String::from("PUT /b/k HTTP/1.1\r\nHost: a\r\n");
    for i in 0..150 {
        many.push_str(&format!("X-Amz-Meta-N{i}: v\r\n"));
    }
    many.push_str("Content-Length: 0\r\n\r\n");
    assert_eq!(raw_status(&server, &many), 431);
    assert_eq!(common::files_under(dir.path()), before);
    assert_eq!(
        http(&server.address, "GET", "/health/live", &[], b"").status,
        200
    );
}

/// A bindfs passthrough of `back` at `mnt` that the test can freeze (SIGSTOP) and thaw; on
/// drop it is thawed, unmounted and ended, whatever the test did.
struct Freezable {
    child: Child,
    mnt: PathBuf,
}

impl Freezable {
    fn mount(back: &Path, mnt: &Path) -> Freezable {
        let child = Command::new("bindfs")
            .args(["-f", "--multithreaded", "--enable-lock-forwarding"])
            .arg(back)
            .arg(mnt)
            .stdout(Stdio::null())
            .spawn()
            .expect("bindfs (scripts/apt-packages.txt installs it)");
        let f = Freezable {
            child,
            mnt: mnt.to_path_buf(),
        };
        within("bindfs mount", ANSWER_BOUND, || common::is_mount_point(mnt));
        f
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}

/// Thaws a frozen process when dropped.
struct Thaw(u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Freezable {
    fn drop(&mut self) {
        self.signal("-CONT");
        common::unmount_lazily(&self.mnt);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_stalled_share_turns_ready_off_sheds_requests_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (back, mnt) = (dir.path().join("back"), dir.path().join("mnt"));
    std::fs::create_dir(&back).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let share = Freezable::mount(&back, &mnt);
    let fuse = dir.path().join("fuse");
    std::fs::create_dir(&fuse).unwrap();
    let mut server = common::start_mounted(&mnt, &fuse, &[]);
    // Dropped before the server: a server killed while the share is frozen cannot finish
    // exiting (its threads wait in the frozen FUSE file system), so thaw first.
    let _thaw = Thaw(share.child.id());
    assert_eq!(put(&server, "/bkt", b"").status, 200);
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(put(&server, "/bkt/obj", &body).status, 200);
    assert_eq!(get(&server, "/bkt/obj").body, body);
    assert_eq!(ready(&server), 200);

    // An upload under way when the share stops: half its body now, the rest during the
    // stall. It must end published once, whole, after the thaw (no 503 for a write that
    // might still be published).
    let upload: Vec<u8> = (0..400_000u32).map(|i| (i % 239) as u8).collect();
    let headers = signed_headers(
        &server.address,
        "PUT",
        "/bkt/inflight",
        "",
        &[],
        "UNSIGNED-PAYLOAD",
        SECRET_KEY,
    );
    let mut uploading = TcpStream::connect(&server.address).unwrap();
    let mut head = String::from("PUT /bkt/inflight HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", upload.len()));
    uploading.write_all(head.as_bytes()).unwrap();
    uploading.write_all(&upload[..200_000]).unwrap();
    within("the upload to be staged", ANSWER_BOUND, || {
        !staged_files(&mnt).is_empty()
    });

    share.signal("-STOP");
    let frozen = Instant::now();
    // A read already on its way when the share stops answering.
    let address = server.address.clone();
    let early = std::thread::spawn(move || {
        let headers = signed_headers(
            &address,
            "GET",
            "/bkt/obj",
            "",
            &[],
            "UNSIGNED-PAYLOAD",
            SECRET_KEY,
        );
        let r = http(&address, "GET", "/bkt/obj", &headers, b"");
        (r, frozen.elapsed())
    });
    let to_unready = within(
        "readiness 503 during the stall",
        Duration::from_secs(5),
        || ready(&server) == 503,
    );
    let asked = Instant::now();
    let r = get(&server, "/bkt/obj");
    let first_refusal = asked.elapsed();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("SlowDown"));
    assert!(r.header("retry-after").is_some());
    assert!(first_refusal < Duration::from_secs(3), "{first_refusal:?}");
    let put_refused = put(&server, "/bkt/other", b"new");
    assert_eq!(put_refused.status, 503);
    let (early, early_took) = early.join().unwrap();
    assert!(
        early.status == 503 || (early.status == 200 && early.body == body),
        "{} {}",
        early.status,
        early.text()
    );
    assert!(early_took < Duration::from_secs(8), "{early_took:?}");
    assert_eq!(metric(&server, "nasgate_share_stalled "), 1.0);
    // The FUSE mount: a new request fails at once with EIO rather than hanging.
    let (tx, rx) = std::sync::mpsc::channel();
    let unseen = fuse.join("bkt/never-looked-up");
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::metadata(&unseen).map(|_| ()));
    });
    let answer = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("a FUSE request on a stalled share hung");
    assert_eq!(
        answer.expect_err("stat on a stalled share").raw_os_error(),
        Some(libc::EIO)
    );
    // The read abandoned at the stall still waits on the share: counted once past 10 s.
    let stuck = within("a stuck share operation in /metrics", ANSWER_BOUND, || {
        metric(&server, "nasgate_share_ops_stuck ") >= 1.0
    });
    eprintln!("stall: stuck operation counted {stuck:?} later");
    eprintln!(
        "stall: ready 503 after {to_unready:?}; a new GET refused in {first_refusal:?}; \
         the GET in flight at the freeze answered {} after {early_took:?}",
        early.status
    );

    let rest = upload[200_000..].to_vec();
    let upload_done = std::thread::spawn(move || {
        uploading.write_all(&rest).unwrap();
        let (raw, _) = read_until_closed(&mut uploading, Duration::from_secs(60));
        common::parse_response(&raw, false)
    });

    share.signal("-CONT");
    let thawed = Instant::now();

    let recovered = within(
        "readiness 200 after the thaw",
        Duration::from_secs(10),
        || ready(&server) == 200,
    );
    let r = upload_done.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&server, "/bkt/inflight").body, upload);
    let r = get(&server, "/bkt/obj");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(put(&server, "/bkt/after", b"after").status, 200);
    assert_eq!(get(&server, "/bkt/after").body, b"after");
    assert_eq!(metric(&server, "nasgate_share_stalled "), 0.0);
    assert_eq!(std::fs::read(fuse.join("bkt/obj")).unwrap(), body);
    eprintln!(
        "stall: ready 200 again {recovered:?} after the thaw (total {:?})",
        thawed.elapsed()
    );
    // Nothing refused during the stall reached the share; nothing is torn.
    assert_eq!(get(&server, "/bkt/other").status, 404);
    assert!(server.stop().success());
    common::unmount_lazily(&fuse);
    let fsck = Command::new(env!("CARGO_BIN_EXE_nasgate"))
        .args(["fsck"])
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    drop(share);
}

/// An ext4 file system on a loop device at `dir`, removed on drop.
struct LoopFs {
    dir: PathBuf,
    device: String,
}

impl LoopFs {
    fn mount(image: &Path, dir: &Path, megabytes: u64) -> LoopFs {
        let f = std::fs::File::create(image).unwrap();
        f.set_len(megabytes << 20).unwrap();
        drop(f);
        let ok = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(image)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfs.ext4");
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(image)
            .output()
            .unwrap();
        assert!(out.status.success(), "losetup needs root");
        let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let ok = Command::new("mount")
            .args(["-o", "errors=remount-ro", &device])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount {device}");
        LoopFs {
            dir: dir.to_path_buf(),
            device,
        }
    }

    /// What the kernel does to ext4 when it meets an error: read-only at once, open
    /// writers or not.
    fn force_read_only(&self) {
        let name = self.device.trim_start_matches("/dev/");
        std::fs::write(format!("/sys/fs/ext4/{name}/trigger_fs_error"), "test\n").unwrap();
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        common::unmount_lazily(&self.dir);
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

#[test]
fn a_share_turning_read_only_refuses_writes_clearly_and_keeps_serving_reads() {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("nas");
    std::fs::create_dir(&share).unwrap();
    let fs = LoopFs::mount(&dir.path().join("image"), &share, 32);
    let server = Server::start(&share, &[]);
    assert_eq!(put(&server, "/bkt", b"").status, 200);
    assert_eq!(put(&server, "/bkt/obj", b"before").status, 200);
    assert_eq!(ready(&server), 200);

    fs.force_read_only();
    let took = within(
        "readiness 503 on a read-only share",
        Duration::from_secs(5),
        || ready(&server) == 503,
    );
    eprintln!("read-only: ready 503 after {took:?}");
    let r = put(&server, "/bkt/obj", b"after");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.code().as_deref(),
        Some("ServiceUnavailable"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("read-only"), "{}", r.text());
    let r = get(&server, "/bkt/obj");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"before");
    assert_eq!(metric(&server, "nasgate_share_ready "), 0.0);
    drop(server);
    drop(fs);
}

/// A signed PUT whose body may be cut short by the server's answer (which is then read).
fn put_large(server: &Server, path: &str, body: &[u8]) -> common::RawResponse {
    let headers = signed_headers(
        &server.address,
        "PUT",
        path,
        "",
        &[],
        "UNSIGNED-PAYLOAD",
        SECRET_KEY,
    );
    let mut s = TcpStream::connect(&server.address).unwrap();
    s.set_read_timeout(Some(ANSWER_BOUND)).unwrap();
    s.set_write_timeout(Some(ANSWER_BOUND)).unwrap();
    let mut head = format!("PUT {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer and stop reading once the share is full.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    common::parse_response(&raw, false)
}

/// Files in the staging area other than the instances' own bookkeeping (owner lock, probe).
fn staged_files(share: &Path) -> Vec<PathBuf> {
    common::files_under(&share.join(".minio.sys/tmp"))
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !matches!(name, "owner" | "probe" | "probe.moved" | "ready")
        })
        .collect()
}

#[test]
fn a_put_larger_than_the_free_space_answers_storage_full_and_keeps_the_old_object() {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path().join("nas");
    std::fs::create_dir(&share).unwrap();
    let _fs = common::Tmpfs::mount(&share, 8);
    let server = Server::start(&share, &[]);
    assert_eq!(put(&server, "/bkt", b"").status, 200);
    let old: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
    assert_eq!(put(&server, "/bkt/obj", &old).status, 200);

    let big = vec![7u8; 16 << 20];
    let r = put_large(&server, "/bkt/obj", &big);
    assert_eq!(r.status, 507, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("XMinioStorageFull"));
    let r = get(&server, "/bkt/obj");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, old, "the old object must stay intact");
    within("the staged upload to be removed", ANSWER_BOUND, || {
        staged_files(&share).is_empty()
    });
    assert_eq!(put(&server, "/bkt/small", b"fits").status, 200);
    assert_eq!(get(&server, "/bkt/small").body, b"fits");
    within("readiness once there is room again", ANSWER_BOUND, || {
        ready(&server) == 200
    });
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit_and_the_cap_fits_under_it() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("prlimit")
        .arg("--nofile=512:4096")
        .arg(env!("CARGO_BIN_EXE_nasgate"))
        .arg("serve")
        .arg(dir.path())
        .args(["--address", "127.0.0.1:0", "--max-connections", "4096"])
        .env("NASGATE_ROOT_USER", common::ACCESS_KEY)
        .env("NASGATE_ROOT_PASSWORD", SECRET_KEY)
        .env("NASGATE_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux)");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("listening")) {
        match rx.recv_timeout(ANSWER_BOUND) {
            Ok(l) => log.push(l),
            Err(_) => {
                let _ = child.kill();
                panic!("no listening line: {log:?}");
            }
        }
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{open_files}");
    assert!(
        log.iter()
            .any(|l| l.contains("--max-connections lowered") && l.contains("cap=1920")),
        "{log:?}"
    );
}
