//! Shared test plumbing: real `nasgate` child processes driven over pipes, with every wait
//! bounded so a hung child fails the test instead of hanging it; store fixtures in `store`.
#![allow(dead_code)]

pub mod sdk;
pub mod store;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::Duration;

/// The longest any single answer from a child may take before the test fails.
pub const ANSWER_BOUND: Duration = Duration::from_secs(30);

/// A `nasgate debug-locks` child process.
pub struct LockDriver {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl LockDriver {
    /// Starts a lock driver on `share` with extra flags.
    pub fn spawn(share: &Path, flags: &[&str]) -> LockDriver {
        LockDriver::spawn_with("debug-locks", share, flags, &[])
    }

    /// Starts a store driver (`nasgate debug-store`) on `share`.
    pub fn store(share: &Path, flags: &[&str], env: &[(&str, &str)]) -> LockDriver {
        LockDriver::spawn_with("debug-store", share, flags, env)
    }

    /// Starts `nasgate SUBCOMMAND SHARE FLAGS` with extra environment variables.
    pub fn spawn_with(
        subcommand: &str,
        share: &Path,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> LockDriver {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nasgate"))
            .arg(subcommand)
            .arg(share)
            .args(flags)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nasgate debug-locks");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LockDriver {
            child,
            stdin,
            lines,
        }
    }

    /// Sends a command without waiting for its answer.
    pub fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to driver");
        self.stdin.flush().expect("flush driver");
    }

    /// The next answer, failing the test after `bound`.
    pub fn answer_within(&mut self, bound: Duration) -> String {
        match self.lines.recv_timeout(bound) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!("no answer within {bound:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("driver exited"),
        }
    }

    /// Waits for the process to exit (e.g. after a crash point), failing after `bound`.
    pub fn exit_within(&mut self, bound: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < bound,
                "process did not exit within {bound:?}"
            );
            // Polling a child's exit has no blocking-with-timeout form in std.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether an answer arrives within `bound` (None if not).
    pub fn try_answer(&mut self, bound: Duration) -> Option<String> {
        self.lines.recv_timeout(bound).ok()
    }

    /// Sends a command and returns its answer.
    pub fn ask(&mut self, command: &str) -> String {
        self.send(command);
        self.answer_within(ANSWER_BOUND)
    }

    /// Takes a lock that must be granted; returns its id.
    pub fn must_lock(&mut self, command: &str) -> u64 {
        let a = self.ask(command);
        let words: Vec<&str> = a.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"ok"), "{command:?} answered {a:?}");
        words[1].parse().expect("lock id")
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LockDriver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Parses "ok ID MS" / "timeout MS" into (granted, milliseconds).
pub fn outcome(answer: &str) -> (bool, u64) {
    let words: Vec<&str> = answer.split_whitespace().collect();
    match words.as_slice() {
        ["ok", _, ms] => (true, ms.parse().expect("ms")),
        ["timeout", ms] => (false, ms.parse().expect("ms")),
        _ => panic!("unexpected answer {answer:?}"),
    }
}

/// Access key the test servers run with.
pub const ACCESS_KEY: &str = "testaccess";
/// Secret key the test servers run with.
pub const SECRET_KEY: &str = "testsecret-0123456789";

/// A `nasgate serve` process on a share, killed when dropped.
pub struct Server {
    child: Child,
    /// HOST:PORT it listens on.
    pub address: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `nasgate serve SHARE` on a free loopback port with the test credentials.
    pub fn start(share: &Path, flags: &[&str]) -> Server {
        Server::start_with(share, flags, &[])
    }

    /// Like `start`, with extra environment variables.
    pub fn start_with(share: &Path, flags: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nasgate"))
            .arg("serve")
            .arg(share)
            .args(["--address", "127.0.0.1:0"])
            .args(flags)
            .env("NASGATE_ROOT_USER", ACCESS_KEY)
            .env("NASGATE_ROOT_PASSWORD", SECRET_KEY)
            .env("NASGATE_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nasgate serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        let address = loop {
            let line = rx
                .recv_timeout(ANSWER_BOUND)
                .expect("nasgate serve did not report its address");
            if line.contains("listening") {
                if let Some(rest) = line.split("address=").nth(1) {
                    break rest.split_whitespace().next().expect("address").to_string();
                }
                // --log-format json
                if let Some(rest) = line.split("\"address\":\"").nth(1) {
                    break rest.split('"').next().expect("address").to_string();
                }
            }
        };
        Server {
            child,
            address,
            log,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://HOST:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The server's log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops the server as an operator would (SIGTERM) and waits, bounded, for it to exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < ANSWER_BOUND,
                "server did not stop after SIGTERM"
            );
            // No blocking wait-with-timeout for a child in std; poll briefly.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the server said, which is most of the diagnosis.
        if std::thread::panicking() {
            if let Ok(log) = self.log.lock() {
                for line in log.iter().rev().take(20).rev() {
                    eprintln!("server: {line}");
                }
            }
        }
    }
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The S3 error code in the body, if any.
    pub fn code(&self) -> Option<String> {
        let t = self.text();
        let start = t.find("<Code>")? + 6;
        let end = t[start..].find("</Code>")? + start;
        Some(t[start..end].to_string())
    }
}

/// Sends one request over a fresh connection and reads the whole response (bounded).
pub fn http(
    address: &str,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(address).expect("connect");
    s.set_read_timeout(Some(ANSWER_BOUND)).expect("timeout");
    let mut req = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    let mut has_len = false;
    for (k, v) in headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send head");
    s.write_all(body).expect("send body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    parse_response(&raw, method == "HEAD")
}

/// Parses a raw HTTP/1.1 response (content-length or chunked body).
pub fn parse_response(raw: &[u8], head: bool) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if head {
        Vec::new()
    } else if chunked {
        let mut out = Vec::new();
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk line");
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..nl])
                    .split(';')
                    .next()
                    .unwrap_or("0")
                    .trim(),
                16,
            )
            .expect("chunk size");
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        out
    } else {
        rest.to_vec()
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

/// `YYYYMMDDTHHMMSSZ` for `t`.
pub fn amz_date(t: std::time::SystemTime) -> String {
    let iso = nasgate::s3::xml::iso8601(t);
    let (date, time) = iso.split_once('T').expect("iso");
    format!("{}T{}Z", date.replace('-', ""), time[..8].replace(':', ""))
}

/// Headers of a request signed with SigV4 for the test credentials (`payload` is the value
/// of x-amz-content-sha256), including host, x-amz-date and authorization.
pub fn signed_headers(
    address: &str,
    method: &str,
    path: &str,
    query: &str,
    extra: &[(&str, &str)],
    payload: &str,
    secret: &str,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), address.into()),
        ("x-amz-date".into(), amz_date(std::time::SystemTime::now())),
        ("x-amz-content-sha256".into(), payload.into()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let parts = nasgate::s3::sigv4::RequestParts {
        method,
        path,
        query,
        headers: &headers,
    };
    let auth = nasgate::s3::sigv4::authorization_header(&parts, ACCESS_KEY, secret, "us-east-1")
        .expect("sign");
    headers.push(("authorization".into(), auth));
    headers
}

/// Lowercase hex SHA-256 of `body`.
pub fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

/// Files under `dir`, recursively (for "nothing left behind" checks).
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// Whether `dir` is a mount point now (it is listed in /proc/self/mountinfo); a dead FUSE
/// mount left by a killed server still counts.
pub fn is_mount_point(dir: &Path) -> bool {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let want = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| {
            t.lines()
                .filter_map(|l| l.split_whitespace().nth(4))
                // mountinfo escapes blanks and backslashes as octal; test paths have none.
                .any(|m| m == want)
        })
        .unwrap_or(false)
}

/// Detaches whatever is mounted at `dir` (lazily, so a busy or dead mount goes too) and
/// waits, bounded, until it is no longer a mount point. Safe to call when nothing is mounted.
pub fn unmount_lazily(dir: &Path) {
    let start = std::time::Instant::now();
    while is_mount_point(dir) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(dir)
            .stderr(Stdio::null())
            .status();
        if is_mount_point(dir) {
            let _ = Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(dir)
                .stderr(Stdio::null())
                .status();
        }
        assert!(
            start.elapsed() < ANSWER_BOUND,
            "{} is still mounted",
            dir.display()
        );
        if is_mount_point(dir) {
            // The kernel finishes a lazy unmount on its own time; poll briefly.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts `nasgate serve SHARE --mount DIR FLAGS` and waits, bounded, until DIR is a mount
/// point. The caller must unmount DIR (e.g. with `unmount_lazily`) once the server is gone.
pub fn start_mounted(share: &Path, dir: &Path, flags: &[&str]) -> Server {
    let mut all: Vec<&str> = vec!["--mount", dir.to_str().expect("utf-8 mount dir")];
    all.extend_from_slice(flags);
    let server = Server::start(share, &all);
    let start = std::time::Instant::now();
    while !is_mount_point(dir) {
        assert!(
            start.elapsed() < ANSWER_BOUND,
            "{} did not become a mount point; log: {:?}",
            dir.display(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}
