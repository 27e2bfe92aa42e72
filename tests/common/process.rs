//! Real `nasgate` child processes: the `debug-locks` / `debug-store` line-protocol drivers
//! and `nasgate serve`, each killed when dropped, every wait for an answer bounded so a hung
//! child fails the test instead of hanging it.

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
