//! The share self-test: can this host create, write, fsync, rename and lock on the share, and
//! do two handles exclude each other the way shared mode needs.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lock::{Create, LockConfig, Locks};
use crate::platform::{LockStyle, OpenMode, Root};

/// What the self-test found.
#[derive(Debug, Clone)]
pub struct SelfTest {
    /// Lock flavour in use.
    pub style: LockStyle,
    /// Whether a second handle saw the first one's exclusive lock (only provable in-process
    /// with OFD locks; classic locks are per process).
    pub handles_exclude: Option<bool>,
    /// Median time of an uncontended exclusive acquire + release.
    pub lock_round_trip: Duration,
    /// Whether a lock held by another process excluded this one, per lock style tried
    /// (empty when the cross-process test was not asked for).
    pub across_processes: Vec<(LockStyle, bool)>,
}

/// Why the self-test failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A step failed.
    #[error("{step}: {source}")]
    Step {
        /// Which step.
        step: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
    /// Locking failed.
    #[error("locking: {0}")]
    Lock(#[from] crate::lock::LockError),
    /// The helper process for the cross-process test failed.
    #[error("cross-process test: {0}")]
    Helper(String),
    /// Two handles did not exclude each other.
    #[error("a second handle could take a lock the first one holds exclusively: locks do not work on this share")]
    NoExclusion,
}

fn step(step: &'static str) -> impl Fn(std::io::Error) -> CheckError {
    move |source| CheckError::Step { step, source }
}

/// Runs the self-test on the share at `root`; leaves nothing behind. With `helper` (the
/// nasgate executable) it also proves that a lock held by another process excludes this one,
/// with OFD and with classic locks.
pub fn self_test(
    root: &Arc<Root>,
    config: &LockConfig,
    helper: Option<&Path>,
) -> Result<SelfTest, CheckError> {
    let name = PathBuf::from(format!(
        ".nasgate-check-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let renamed = name.with_extension("renamed");
    let result = run(root, config, &name, &renamed, helper);
    // Clean up whatever the test got to create.
    for p in [&name, &renamed] {
        let _ = root.remove_file(p);
    }
    result
}

fn run(
    root: &Arc<Root>,
    config: &LockConfig,
    name: &Path,
    renamed: &Path,
    helper: Option<&Path>,
) -> Result<SelfTest, CheckError> {
    let mut f = root
        .open(name, OpenMode::CreateNew)
        .map_err(step("create a file"))?;
    f.write_all(b"nasgate check\n").map_err(step("write"))?;
    f.sync_all().map_err(step("fsync"))?;
    drop(f);
    root.rename(name, renamed).map_err(step("rename"))?;
    let config = LockConfig {
        timeout: config.timeout.min(Duration::from_secs(5)),
        ..config.clone()
    };
    let locks = Locks::new(root.clone(), &config);
    let mut trips = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        drop(locks.write(renamed, Create::No)?);
        trips.push(t.elapsed());
    }
    trips.sort();
    let guard = locks.write(renamed, Create::No)?;
    let handles_exclude = match locks.style() {
        LockStyle::Ofd => {
            let seen = locks
                .held_elsewhere(renamed)
                .map_err(step("probe the lock from a second handle"))?;
            if !seen {
                return Err(CheckError::NoExclusion);
            }
            Some(true)
        }
        LockStyle::Classic => None,
    };
    drop(guard);
    let mut across_processes = Vec::new();
    if let Some(exe) = helper {
        // Windows has one kind of lock (LockFileEx); both styles would test the same thing.
        let styles: &[LockStyle] = if cfg!(windows) {
            &[LockStyle::Ofd]
        } else {
            &[LockStyle::Ofd, LockStyle::Classic]
        };
        for &style in styles {
            across_processes.push((style, excluded_by_other_process(root, exe, renamed, style)?));
        }
    }
    Ok(SelfTest {
        style: locks.style(),
        handles_exclude,
        lock_round_trip: trips[trips.len() / 2],
        across_processes,
    })
}

/// Has a child process (`nasgate debug-locks`) hold the exclusive lock on `probe` and checks
/// that this process cannot read-lock it meanwhile, and can once the child lets go.
fn excluded_by_other_process(
    root: &Arc<Root>,
    exe: &Path,
    probe: &Path,
    style: LockStyle,
) -> Result<bool, CheckError> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let helper_err = |e: std::io::Error| CheckError::Helper(e.to_string());
    let mut cmd = Command::new(exe);
    cmd.arg("debug-locks")
        .arg(root.path())
        .args(["--timeout-ms", "5000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if style == LockStyle::Classic {
        cmd.arg("--classic");
    }
    let mut child = cmd.spawn().map_err(helper_err)?;
    let result = (|| {
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| CheckError::Helper("no stdin".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| CheckError::Helper("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut ask = |cmd: &str| -> Result<String, CheckError> {
            writeln!(stdin, "{cmd}").map_err(helper_err)?;
            stdin.flush().map_err(helper_err)?;
            match lines.next() {
                Some(Ok(l)) => Ok(l),
                _ => Err(CheckError::Helper(
                    "the helper process stopped answering".into(),
                )),
            }
        };
        let held = ask(&format!("write {}", probe.display()))?;
        if !held.starts_with("ok") {
            return Err(CheckError::Helper(format!(
                "the helper could not lock: {held}"
            )));
        }
        let locks = Locks::new(
            root.clone(),
            &LockConfig {
                timeout: Duration::from_millis(300),
                style: Some(style),
                ..LockConfig::default()
            },
        );
        let blocked = matches!(
            locks.read(probe, Create::No),
            Err(crate::lock::LockError::Timeout { .. })
        );
        ask("release 1")?;
        let after = locks.read(probe, Create::No).is_ok();
        let _ = ask("quit");
        Ok(blocked && after)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}
