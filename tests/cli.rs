//! The command-line contract: subcommands, share validation, credentials, clean shutdown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

fn nasgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nasgate"));
    for v in [
        "NASGATE_ROOT_USER",
        "NASGATE_ROOT_PASSWORD",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
        "NASGATE_ADDRESS",
    ] {
        c.env_remove(v);
    }
    c
}

fn run_bounded(mut cmd: Command) -> (i32, String, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("command did not finish within 30 s")
        .expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_serve_check_and_fsck() {
    let mut c = nasgate();
    c.arg("--help");
    let (code, out, _) = run_bounded(c);
    assert_eq!(code, 0);
    for sub in ["serve", "check", "fsck"] {
        assert!(out.contains(sub), "--help lacks {sub}: {out}");
    }
    assert!(!out.contains("debug-locks"));
}

#[test]
fn unusable_shares_are_refused_with_one_line_and_nothing_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nas");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("file");
    for (share, words) in [(&missing, "does not exist"), (&file, "not a directory")] {
        let mut c = nasgate();
        c.current_dir(dir.path())
            .args(["serve"])
            .arg(share)
            .args(["--address", "127.0.0.1:0"]);
        let (code, _, err) = run_bounded(c);
        assert_ne!(code, 0);
        assert!(err.contains(words), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    }
    assert!(!missing.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(names.len(), 1, "serve created something: {names:?}");
}

#[test]
fn non_loopback_address_without_credentials_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = nasgate();
    c.arg("serve")
        .arg(dir.path())
        .args(["--address", "0.0.0.0:0"]);
    let (code, _, err) = run_bounded(c);
    assert_ne!(code, 0);
    assert!(err.contains("no credentials"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[cfg(unix)]
#[test]
fn a_bad_mount_point_fails_in_one_line_and_leaves_the_share_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let share = dir.path().join("share");
    std::fs::create_dir(&share).expect("share");
    let inside = share.join("inside");
    std::fs::create_dir(&inside).expect("mount dir");
    for (mnt, says) in [
        (dir.path().join("missing"), "mount point"),
        (inside, "must not contain one another"),
    ] {
        let mut c = nasgate();
        c.arg("serve")
            .arg(&share)
            .args(["--address", "127.0.0.1:0", "--mount"])
            .arg(&mnt);
        let (code, _, err) = run_bounded(c);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(says), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            !share.join(".minio.sys").exists(),
            "a refused start must not touch the share"
        );
    }
}

#[test]
fn check_passes_on_a_local_directory_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = nasgate();
    c.arg("check").arg(dir.path());
    let (code, out, err) = run_bounded(c);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verdict:          ok"), "{out}");
    let style = if cfg!(windows) {
        "LockFileEx"
    } else {
        "open-file-description"
    };
    assert!(out.contains(style), "{out}");
    assert!(out.contains("across processes: exclude"), "{out}");
    eprintln!("{out}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

#[cfg(windows)]
#[test]
fn linux_only_flags_are_refused_on_windows_in_one_line_and_leave_the_share_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let share = dir.path().join("share");
    std::fs::create_dir(&share).expect("share");
    for (flags, says) in [
        (
            &["--mount", "M:\\mnt"][..],
            "--mount is not available on Windows",
        ),
        (
            &["--require-mount"][..],
            "--require-mount is not available on Windows",
        ),
    ] {
        let mut c = nasgate();
        c.arg("serve")
            .arg(&share)
            .args(["--address", "127.0.0.1:0"])
            .args(flags);
        let (code, _, err) = run_bounded(c);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(says), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            !share.join(".minio.sys").exists(),
            "a refused start must not touch the share"
        );
    }
}

#[cfg(unix)]
#[test]
fn serve_answers_health_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = nasgate()
        .arg("serve")
        .arg(dir.path())
        .args(["--address", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut warned = false;
    let address = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("serve did not report its address");
        warned |= line.contains("development pair");
        if let Some(rest) = line.split("address=").nth(1) {
            if line.contains("listening") {
                break rest.split_whitespace().next().expect("addr").to_string();
            }
        }
    };
    assert!(warned, "no warning about the development credentials");
    let mut s = TcpStream::connect(&address).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("reply");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (tx, done) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let exit = done
        .recv_timeout(Duration::from_secs(20))
        .expect("serve did not stop within 20 s of SIGTERM")
        .expect("wait");
    assert_eq!(exit.code(), Some(0));
}
