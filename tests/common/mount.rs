//! FUSE mount helpers: start a server with `--mount`, tell whether a directory is a mount
//! point, and detach a mount left behind, each bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Server, ANSWER_BOUND};

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

/// A tmpfs of `megabytes` at `dir`, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, megabytes: u64) -> Tmpfs {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount_lazily(&self.0);
    }
}
