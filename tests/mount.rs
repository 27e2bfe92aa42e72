//! The FUSE mount (`nasgate serve SHARE --mount DIR`) with a real kernel mount: everyday
//! tools, hidden names and errnos, the same objects seen over S3 from this and another
//! instance, no torn reads across fronts, forwarded tool locks, and the mount's lifecycle.
//! mountd/SEMANTICS.md names the test behind each promise.
//!
//! Every test runs in a thread under a time bound; on timeout every process it started is
//! killed and every mount it made is detached, which also frees a thread stuck in the mount.
//! Each test has its own share and mount directories and unmounts them even when it fails.

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    http, is_mount_point, md5_hex, sha256_hex, signed_headers, start_mounted, unmount_lazily,
    RawResponse, Server, SECRET_KEY,
};
use nasgate::debug::store::{body, is_whole};

/// The longest a single test may run.
const TEST_BOUND: Duration = Duration::from_secs(45);
/// The longest a single command or answer may take.
const STEP_BOUND: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Plumbing: bounded tests, servers with mounts, commands, S3 requests.

/// What to kill and detach when a test overruns its bound.
#[derive(Clone, Default)]
struct Reaper(Arc<Mutex<(Vec<u32>, Vec<PathBuf>)>>);

impl Reaper {
    fn pid(&self, pid: u32) {
        self.0.lock().unwrap().0.push(pid);
    }

    fn mount(&self, dir: &Path) {
        self.0.lock().unwrap().1.push(dir.to_path_buf());
    }

    fn reap(&self) {
        let (pids, mounts) = self.0.lock().unwrap().clone();
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        for m in mounts {
            unmount_lazily(&m);
        }
    }
}

/// One test's world: a share, mount directories, the servers on them.
struct Fx {
    dir: tempfile::TempDir,
    servers: Vec<Server>,
    mounts: Vec<PathBuf>,
    reaper: Reaper,
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("share")).unwrap();
        assert_eq!(
            std::fs::canonicalize(dir.path()).unwrap(),
            dir.path(),
            "the temp dir must be a canonical path (mountinfo lists canonical paths)"
        );
        Fx {
            dir,
            servers: Vec::new(),
            mounts: Vec::new(),
            reaper: Reaper::default(),
        }
    }

    fn share(&self) -> PathBuf {
        self.dir.path().join("share")
    }

    /// A scratch directory outside share and mounts.
    fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Starts an S3-only instance; returns its index.
    fn serve(&mut self, flags: &[&str]) -> usize {
        let s = Server::start(&self.share(), flags);
        self.reaper.pid(s.pid());
        self.servers.push(s);
        self.servers.len() - 1
    }

    /// Starts an instance that also mounts the share at `<tmp>/<name>`; returns its index.
    fn serve_mounted(&mut self, name: &str, flags: &[&str]) -> usize {
        let mnt = self.dir.path().join(name);
        match std::fs::create_dir(&mnt) {
            // Also a dead mount left by a killed server.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            r => r.unwrap(),
        }
        self.reaper.mount(&mnt);
        if !self.mounts.contains(&mnt) {
            self.mounts.push(mnt.clone());
        }
        let s = start_mounted(&self.share(), &mnt, flags);
        self.reaper.pid(s.pid());
        self.servers.push(s);
        self.servers.len() - 1
    }

    fn mnt(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, i: usize) -> &Server {
        &self.servers[i]
    }

    /// Runs `bash -euo pipefail -c script` in `cwd` (bounded); panics unless it exits 0.
    fn sh(&self, cwd: &Path, script: &str, env: &[(&str, &str)]) -> String {
        let (code, out, err) = self.sh_status(cwd, script, env);
        assert_eq!(code, Some(0), "script failed: {err}\n--- stdout:\n{out}");
        out
    }

    /// Runs a script and returns (exit code, stdout, stderr).
    fn sh_status(
        &self,
        cwd: &Path,
        script: &str,
        env: &[(&str, &str)],
    ) -> (Option<i32>, String, String) {
        let mut cmd = Command::new("bash");
        cmd.args(["-euo", "pipefail", "-c", script])
            .current_dir(cwd)
            .envs(env.iter().copied())
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        self.run(cmd)
    }

    /// Runs a command to its end (bounded), returning (exit code, stdout, stderr).
    fn run(&self, mut cmd: Command) -> (Option<i32>, String, String) {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        self.reaper.pid(child.id());
        let mut so = child.stdout.take().unwrap();
        let mut se = child.stderr.take().unwrap();
        let t1 = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = so.read_to_string(&mut s);
            s
        });
        let t2 = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = se.read_to_string(&mut s);
            s
        });
        let started = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if started.elapsed() > STEP_BOUND {
                let _ = child.kill();
                let _ = child.wait();
                panic!("command {cmd:?} did not finish within {STEP_BOUND:?}");
            }
            // No blocking wait-with-timeout for a child in std; poll briefly.
            std::thread::sleep(Duration::from_millis(5));
        };
        (status.code(), t1.join().unwrap(), t2.join().unwrap())
    }

    /// A python3 child taking commands on stdin (see `PY_DRIVER`).
    fn py(&self) -> Py {
        let mut child = Command::new("python3")
            .args(["-u", "-c", PY_DRIVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        self.reaper.pid(child.id());
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Py {
            child,
            stdin,
            lines,
        }
    }
}

impl Drop for Fx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, s) in self.servers.iter().enumerate() {
                let log = s.log();
                eprintln!("--- log of server {i} (last lines):");
                for l in &log[log.len().saturating_sub(30)..] {
                    eprintln!("{l}");
                }
            }
        }
        for s in &mut self.servers {
            s.kill();
        }
        for m in &self.mounts {
            unmount_lazily(m);
        }
    }
}

/// Runs `body` on a fresh `Fx` in a thread, failing the test after `TEST_BOUND`; on timeout
/// every process the test started is killed and its mounts detached.
fn run(body: impl FnOnce(&mut Fx) + Send + 'static) {
    let fx = Fx::new();
    let reaper = fx.reaper.clone();
    let (tx, rx) = channel();
    let t = std::thread::spawn(move || {
        let mut fx = fx;
        body(&mut fx);
        drop(fx);
        let _ = tx.send(());
    });
    match rx.recv_timeout(TEST_BOUND) {
        Ok(()) => t.join().unwrap(),
        Err(RecvTimeoutError::Disconnected) => {
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(RecvTimeoutError::Timeout) => {
            reaper.reap();
            let _ = rx.recv_timeout(STEP_BOUND);
            panic!("test did not finish within {TEST_BOUND:?}");
        }
    }
}

/// A python3 process holding files and locks, driven line by line.
struct Py {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

/// Commands: `open NAME PATH FLAGS` (FLAGS: r, rw, w: read-write with O_CREAT|O_TRUNC),
/// `lockf NAME` (exclusive, non-blocking), `lockw NAME` (exclusive, waiting), `shlock NAME`
/// (shared, non-blocking), `flock NAME` (non-blocking), `flockw NAME` (waiting), `unlock
/// NAME`, `write NAME TEXT`, `pwrite NAME OFF TEXT`, `read NAME` (whole file through the
/// descriptor), `rename FROM TO`, `close NAME`. Answers `ok [value]` or the errno's name.
const PY_DRIVER: &str = r#"
import sys, os, fcntl, errno
fds = {}
modes = {'r': os.O_RDONLY, 'rw': os.O_RDWR, 'w': os.O_RDWR | os.O_CREAT | os.O_TRUNC}
for line in sys.stdin:
    words = line.split(' ', 2)
    cmd = words[0].strip()
    name = words[1].strip() if len(words) > 1 else ''
    arg = words[2].rstrip('\n') if len(words) > 2 else ''
    try:
        out = ''
        if cmd == 'open':
            path, flags = arg.rsplit(' ', 1)
            fds[name] = os.open(path, modes[flags], 0o644)
        elif cmd == 'lockf':
            fcntl.lockf(fds[name], fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif cmd == 'lockw':
            fcntl.lockf(fds[name], fcntl.LOCK_EX)
        elif cmd == 'shlock':
            fcntl.lockf(fds[name], fcntl.LOCK_SH | fcntl.LOCK_NB)
        elif cmd == 'flock':
            fcntl.flock(fds[name], fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif cmd == 'flockw':
            fcntl.flock(fds[name], fcntl.LOCK_EX)
        elif cmd == 'unlock':
            fcntl.lockf(fds[name], fcntl.LOCK_UN)
        elif cmd == 'write':
            os.write(fds[name], arg.encode())
        elif cmd == 'pwrite':
            off, text = arg.split(' ', 1)
            os.pwrite(fds[name], text.encode(), int(off))
        elif cmd == 'read':
            os.lseek(fds[name], 0, 0)
            chunks = []
            while True:
                b = os.read(fds[name], 1 << 16)
                if not b:
                    break
                chunks.append(b)
            out = ' ' + b''.join(chunks).decode()
        elif cmd == 'rename':
            os.rename(name, arg)
        elif cmd == 'close':
            os.close(fds.pop(name))
        print('ok' + out, flush=True)
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
"#;

impl Py {
    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn answer(&mut self, bound: Duration) -> Option<String> {
        match self.lines.recv_timeout(bound) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("python driver exited"),
        }
    }

    fn ask(&mut self, cmd: &str) -> String {
        self.send(cmd);
        self.answer(STEP_BOUND)
            .unwrap_or_else(|| panic!("no answer to {cmd:?} within {STEP_BOUND:?}"))
    }

    /// Sends `signal` (a `kill -s` name) to the driver process.
    fn signal(&self, signal: &str) {
        let st = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -s {signal} failed");
    }

    /// Whether the driver process has exited within `bound`.
    fn exits_within(&mut self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child.try_wait().unwrap().is_some()
    }

    fn ok(&mut self, cmd: &str) {
        let a = self.ask(cmd);
        assert!(a == "ok" || a.starts_with("ok "), "{cmd:?} answered {a:?}");
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed S3 request to `server`.
fn s3(
    server: &Server,
    method: &str,
    target: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> RawResponse {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let h = signed_headers(
        &server.address,
        method,
        path,
        query,
        extra,
        &sha256_hex(body),
        SECRET_KEY,
    );
    http(&server.address, method, target, &h, body)
}

fn put(server: &Server, target: &str, body: &[u8]) -> RawResponse {
    s3(server, "PUT", target, body, &[])
}

fn get(server: &Server, target: &str) -> RawResponse {
    s3(server, "GET", target, b"", &[])
}

fn etag(r: &RawResponse) -> String {
    r.header("etag").unwrap_or("").trim_matches('"').to_string()
}

fn errno_of(r: std::io::Result<impl Sized>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

// ---------------------------------------------------------------------------------------
// Everyday tools.

/// A source tree outside the mount: files of several sizes, an empty file, modes.
fn source_tree(fx: &Fx) -> PathBuf {
    let src = fx.scratch("src");
    std::fs::create_dir_all(src.join("sub/deep")).unwrap();
    std::fs::write(src.join("a.txt"), "hello\n").unwrap();
    std::fs::write(src.join("e"), "").unwrap();
    std::fs::write(src.join("sub/b.bin"), body(7, 100_000)).unwrap();
    std::fs::write(src.join("sub/deep/c.txt"), "deep\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        src.join("sub/b.bin"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    src
}

#[test]
fn posix_tools_suite() {
    run(|fx| {
        fx.serve_mounted("mnt", &[]);
        let src = source_tree(fx);
        let tmp = fx.scratch("tmp");
        let mnt = fx.mnt("mnt");
        let env = [
            ("SRC", src.to_str().unwrap()),
            ("TMP", tmp.to_str().unwrap()),
            ("MNT", mnt.to_str().unwrap()),
        ];
        let out = fx.sh(
            &mnt,
            r#"
            mkdir bkt && cd bkt
            mkdir -p a/b/c
            cp "$SRC/a.txt" a/b/c/one.txt
            cp -r "$SRC" tree && diff -r "$SRC" tree && echo cp-r ok
            mv a/b/c/one.txt a/two.txt
            echo new > three.txt
            mv three.txt a/two.txt
            cat a/two.txt
            mv tree moved && diff -r "$SRC" moved && echo mv-dir ok
            test ! -e tree && test ! -e three.txt && test ! -e a/b/c/one.txt
            tar -C "$SRC" -cf "$TMP/in.tar" . && mkdir untar && tar -C untar -xf "$TMP/in.tar"
            diff -r "$SRC" untar && echo tar-x ok
            tar -C moved -cf "$TMP/out.tar" . && mkdir "$TMP/out" && tar -C "$TMP/out" -xf "$TMP/out.tar"
            diff -r "$SRC" "$TMP/out" && echo tar-c ok
            rsync -a "$SRC/" rs/ && diff -r "$SRC" rs && echo rsync-in ok
            rsync -a rs/ "$TMP/rsout/" && diff -r "$SRC" "$TMP/rsout" && echo rsync-out ok
            rsync -a "$SRC/" rs/ && echo rsync-again ok
            cp -p "$SRC/sub/b.bin" cpp.bin
            for f in rs/sub/b.bin untar/sub/b.bin cpp.bin; do
                test "$(stat -c '%Y %a' "$SRC/sub/b.bin")" = "$(stat -c '%Y %a' "$f")"
            done
            rm cpp.bin && echo mtimes ok
            printf 'alpha\nbeta\n' > s.txt && sed -i 's/beta/gamma/' s.txt && cat s.txt
            echo one > app.txt && echo two >> app.txt && cat app.txt
            truncate -s 10 app.txt && stat -c '%s %a' app.txt && od -An -c app.txt
            truncate -s 3 app.txt && stat -c '%s' app.txt && cat app.txt && echo
            ls -l untar/a.txt untar/e untar/sub/b.bin | awk '{print $5, $NF}'
            stat -c '%s %a %F' untar/sub/b.bin untar/e untar/sub
            du -b untar/sub/b.bin
            du -s untar > /dev/null
            df "$MNT" | tail -n 1 | awk '{print $1, $NF}'
            df "$MNT/bkt" > /dev/null
            ln -s a/two.txt link && readlink link && cat link
            ln -s ../a/two.txt untar/uplink && cat untar/uplink
            rm -r moved rs && echo rm-r ok
            find . | sort
            rm -r untar && rm link && find . | sort
            echo hi > perm.txt && chmod 640 perm.txt && chown 1234:5678 perm.txt
            touch -d '2001-02-03 04:05:06 UTC' perm.txt
            stat -c '%a %u %g %Y' perm.txt
            mkdir -p d/e/f && rmdir d/e/f && rmdir d/e && rmdir d && echo rmdir ok
            "#,
            &env,
        );
        let expected = format!(
            "cp-r ok\nnew\nmv-dir ok\ntar-x ok\ntar-c ok\nrsync-in ok\nrsync-out ok\n\
             rsync-again ok\nmtimes ok\nalpha\ngamma\none\ntwo\n10 644\n   o   n   e  \\n   t   w   o  \\n  \\0  \\0\n\
             3\none\n6 untar/a.txt\n0 untar/e\n100000 untar/sub/b.bin\n\
             100000 640 regular file\n0 644 regular empty file\n{dirsize} 755 directory\n\
             100000\tuntar/sub/b.bin\nnasgate {mnt}\na/two.txt\nnew\nnew\nrm-r ok\n\
             .\n./a\n./a/b\n./a/b/c\n./a/two.txt\n./app.txt\n./link\n./s.txt\n./untar\n\
             ./untar/a.txt\n./untar/e\n./untar/sub\n./untar/sub/b.bin\n./untar/sub/deep\n\
             ./untar/sub/deep/c.txt\n./untar/uplink\n\
             .\n./a\n./a/b\n./a/b/c\n./a/two.txt\n./app.txt\n./s.txt\n\
             640 1234 5678 981173106\nrmdir ok\n",
            dirsize = std::fs::metadata(fx.share().join("bkt/a")).unwrap().size(),
            mnt = mnt.display(),
        );
        assert_eq!(out, expected);
        // What chmod, chown and touch did landed on the share's own file.
        let m = std::fs::metadata(fx.share().join("bkt/perm.txt")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!((m.uid(), m.gid()), (1234, 5678));
        assert_eq!(m.mtime(), 981_173_106);
        // And the data of files written by tools is on the share as written.
        assert_eq!(
            std::fs::read(fx.share().join("bkt/app.txt")).unwrap(),
            b"one"
        );
        assert_eq!(
            std::fs::read(fx.share().join("bkt/s.txt")).unwrap(),
            b"alpha\ngamma\n"
        );
    });
}

#[test]
fn symlinks_stay_inside_the_mount() {
    run(|fx| {
        fx.serve_mounted("mnt", &[]);
        let mnt = fx.mnt("mnt");
        let share = fx.share();
        let out = fx.sh(
            &mnt,
            r#"
            mkdir bkt bkt2 && mkdir bkt/dir && echo target > bkt/dir/t
            ln -s t bkt/dir/rel && readlink bkt/dir/rel && cat bkt/dir/rel
            ln -s ../../bkt2 bkt/dir/other && readlink bkt/dir/other
            stat -c '%F' bkt/dir/rel
            "#,
            &[],
        );
        assert_eq!(out, "t\ntarget\n../../bkt2\nsymbolic link\n");
        // On the share, the links are plain symlinks with the same targets.
        assert_eq!(
            std::fs::read_link(share.join("bkt/dir/rel")).unwrap(),
            Path::new("t")
        );
        // Links leading out of the tree are refused with EPERM.
        let d = mnt.join("bkt/dir");
        for target in [
            "/etc/passwd",
            "../../../x",
            "../../.minio.sys/format.json",
            "../.nfs1",
        ] {
            let r = std::os::unix::fs::symlink(target, d.join("bad"));
            assert_eq!(errno_of(r), libc::EPERM, "ln -s {target}");
        }
        assert!(!share.join("bkt/dir/bad").exists());
        // A link placed on the share by other means that leads out is not shown at all.
        std::os::unix::fs::symlink("/etc/passwd", share.join("bkt/dir/evil")).unwrap();
        std::os::unix::fs::symlink("../../../outside", share.join("bkt/dir/evil2")).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["other", "rel", "t"]);
        assert_eq!(
            errno_of(std::fs::symlink_metadata(d.join("evil"))),
            libc::ENOENT
        );
        assert_eq!(errno_of(std::fs::read(d.join("evil2"))), libc::ENOENT);
    });
}

// ---------------------------------------------------------------------------------------
// Hidden names and errnos.

#[test]
fn hidden_names_and_errnos() {
    run(|fx| {
        fx.serve_mounted("mnt", &["--mount-attr-ttl", "0"]);
        let mnt = fx.mnt("mnt");
        let share = fx.share();
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        std::fs::create_dir(mnt.join("bkt/dir")).unwrap();
        std::fs::write(mnt.join("bkt/dir/f"), "x").unwrap();
        // Debris of NFS silly renames, dropped on the share.
        std::fs::write(share.join("bkt/.nfs000001"), "gone").unwrap();
        std::fs::write(share.join("bkt/dir/.nfs000002"), "gone").unwrap();
        assert!(share.join(".minio.sys").is_dir());

        let script = r#"
import os, errno, sys
def e(f, *a):
    try:
        r = f(*a)
        if isinstance(r, int) and f is os.open:
            os.close(r)
        return 'ok'
    except OSError as x:
        return errno.errorcode[x.errno]
W = os.O_WRONLY | os.O_CREAT
print(sorted(os.listdir('.')))
print(sorted(os.listdir('bkt')), sorted(os.listdir('bkt/dir')))
print('stat .minio.sys', e(os.stat, '.minio.sys'))
print('listdir .minio.sys', e(os.listdir, '.minio.sys'))
print('open .minio.sys/format.json', e(os.open, '.minio.sys/format.json', os.O_RDONLY))
print('mkdir .minio.sys', e(os.mkdir, '.minio.sys') != 'ok')
print('create .minio.sys', e(os.open, '.minio.sys', W))
print('create bkt/.minio.sys', e(os.open, 'bkt/.minio.sys', W))
print('mkdir bkt/.minio.sys', e(os.mkdir, 'bkt/.minio.sys'))
print('stat .nfs', e(os.stat, 'bkt/.nfs000001'))
print('open .nfs', e(os.open, 'bkt/dir/.nfs000002', os.O_RDONLY))
print('create .nfs', e(os.open, 'bkt/.nfs123', W))
print('rename into .nfs', e(os.rename, 'bkt/dir/f', 'bkt/.nfs9'))
print('rename into .minio.sys', e(os.rename, 'bkt/dir/f', 'bkt/.minio.sys'))
n256, n255 = 'n' * 256, 'n' * 255
print('create 256', e(os.open, 'bkt/' + n256, W))
print('mkdir 256', e(os.mkdir, 'bkt/' + n256))
print('stat 256', e(os.stat, 'bkt/' + n256))
print('bucket 256', e(os.mkdir, n256))
print('create 255', e(os.open, 'bkt/' + n255, W))
print('rmdir non-empty', e(os.rmdir, 'bkt/dir'))
print('rmdir non-empty bucket', e(os.rmdir, 'bkt'))
print('mkdir existing', e(os.mkdir, 'bkt/dir'))
print('mkdir existing bucket', e(os.mkdir, 'bkt'))
print('mkdir over file', e(os.mkdir, 'bkt/dir/f'))
print('open missing', e(os.open, 'bkt/missing', os.O_RDONLY))
print('open in missing dir', e(os.open, 'bkt/nodir/x', W))
print('open missing bucket', e(os.open, 'nobkt/x', W))
print('excl existing', e(os.open, 'bkt/dir/f', W | os.O_EXCL))
print('write dir', e(os.open, 'bkt/dir', os.O_WRONLY))
print('unlink dir', e(os.unlink, 'bkt/dir'))
print('rmdir file', e(os.rmdir, 'bkt/dir/f'))
print('file below file', e(os.open, 'bkt/dir/f/x', W))
print('top-level file', e(os.open, 'toplevel', W))
print('top-level symlink', e(os.symlink, 'bkt', 'toplink'))
print('bucket UPPER', e(os.mkdir, 'UPPER'))
print('bucket abc', e(os.mkdir, 'abc'))
print('mknod regular', e(os.mknod, 'bkt/node', 0o600), os.stat('bkt/node').st_size)
print('mkfifo', e(os.mkfifo, 'bkt/fifo'))
print('hard link', e(os.link, 'bkt/dir/f', 'bkt/hard'))
print('setxattr', e(os.setxattr, 'bkt/dir/f', 'user.x', b'1'))
print('listxattr', e(os.listxattr, 'bkt/dir/f'))
print('rename bucket', e(os.rename, 'bkt', 'bkt2'))
print('rename dir into itself', e(os.rename, 'bkt/dir', 'bkt/dir/sub'))
print('rmdir root-level missing', e(os.rmdir, 'nobkt'))
"#;
        let mut cmd = Command::new("python3");
        cmd.args(["-c", script]).current_dir(&mnt);
        let (code, out, err) = fx.run(cmd);
        assert_eq!(code, Some(0), "{err}");
        let expected = "\
['bkt']
['dir'] ['f']
stat .minio.sys ENOENT
listdir .minio.sys ENOENT
open .minio.sys/format.json ENOENT
mkdir .minio.sys True
create .minio.sys EPERM
create bkt/.minio.sys EPERM
mkdir bkt/.minio.sys EPERM
stat .nfs ENOENT
open .nfs ENOENT
create .nfs EPERM
rename into .nfs EPERM
rename into .minio.sys EPERM
create 256 ENAMETOOLONG
mkdir 256 ENAMETOOLONG
stat 256 ENAMETOOLONG
bucket 256 ENAMETOOLONG
create 255 ok
rmdir non-empty ENOTEMPTY
rmdir non-empty bucket ENOTEMPTY
mkdir existing EEXIST
mkdir existing bucket EEXIST
mkdir over file EEXIST
open missing ENOENT
open in missing dir ENOENT
open missing bucket ENOENT
excl existing EEXIST
write dir EISDIR
unlink dir EISDIR
rmdir file ENOTDIR
file below file ENOTDIR
top-level file EPERM
top-level symlink EPERM
bucket UPPER EINVAL
bucket abc ok
mknod regular ok 0
mkfifo EPERM
hard link EPERM
setxattr ENOTSUP
listxattr ENOTSUP
rename bucket EXDEV
rename dir into itself EINVAL
rmdir root-level missing ENOENT
";
        assert_eq!(out, expected, "stderr: {err}");
        // Nothing the refused calls asked for reached the share.
        assert!(!share.join("toplevel").exists());
        assert!(!share.join("UPPER").exists());
        assert!(!share.join("bkt/.nfs123").exists());
        assert_eq!(std::fs::read(share.join("bkt/dir/f")).unwrap(), b"x");
        assert_eq!(
            std::fs::read(share.join("bkt/.nfs000001")).unwrap(),
            b"gone"
        );
    });
}

// ---------------------------------------------------------------------------------------
// The same objects over S3 (this instance and another one on the share).

#[test]
fn cross_view_with_s3() {
    run(|fx| {
        let a = fx.serve_mounted("mnt", &["--mount-attr-ttl", "0"]);
        let b = fx.serve(&[]);
        let mnt = fx.mnt("mnt");
        let (sa, sb) = (fx.s(a), fx.s(b));
        // A bucket made in the mount is a bucket for S3, and one made over S3 shows up.
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        assert_eq!(s3(sb, "HEAD", "/bkt", b"", &[]).status, 200);
        assert_eq!(put(sb, "/from-s3", b"").status, 200);
        let mut names: Vec<String> = std::fs::read_dir(&mnt)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["bkt", "from-s3"]);

        // cp through the mount: whole over S3 as soon as cp returns, ETag = MD5.
        let data = body(11, 300_000);
        let src = fx.scratch("src").join("f");
        std::fs::write(&src, &data).unwrap();
        let env = [("SRC", src.to_str().unwrap())];
        fx.sh(&mnt, r#"cp "$SRC" bkt/copied"#, &env);
        for s in [sb, sa] {
            let r = get(s, "/bkt/copied");
            assert_eq!(r.status, 200);
            assert!(r.body == data, "body differs");
            assert_eq!(etag(&r), md5_hex(&data));
        }
        // Written again in place (copy-up, then a write in the middle): a new whole version.
        let mut edited = data.clone();
        edited[1000..1005].copy_from_slice(b"HELLO");
        fx.sh(
            &mnt,
            "printf HELLO | dd of=bkt/copied bs=1 seek=1000 conv=notrunc status=none",
            &[],
        );
        let r = get(sb, "/bkt/copied");
        assert!(r.body == edited, "edited body differs");
        assert_eq!(etag(&r), md5_hex(&edited));

        // PUT over S3 on B: whole in the mount at once (attribute TTL 0), listed too.
        let data2 = body(12, 123_457);
        assert_eq!(put(sb, "/bkt/dir/put", &data2).status, 200);
        assert!(std::fs::read(mnt.join("bkt/dir/put")).unwrap() == data2);
        assert_eq!(
            std::fs::metadata(mnt.join("bkt/dir/put")).unwrap().len(),
            123_457
        );
        // Replaced over S3: the mount reads the new version, not cached pages of the old.
        let data3 = body(13, 200_000);
        assert_eq!(put(sb, "/bkt/dir/put", &data3).status, 200);
        assert!(std::fs::read(mnt.join("bkt/dir/put")).unwrap() == data3);

        // DELETE over S3: gone from the mount.
        assert_eq!(s3(sb, "DELETE", "/bkt/dir/put", b"", &[]).status, 204);
        assert_eq!(
            errno_of(std::fs::metadata(mnt.join("bkt/dir/put"))),
            libc::ENOENT
        );

        // rename in the mount moves the object: same ETag at the new key, old key gone.
        std::fs::create_dir(mnt.join("bkt/moved")).unwrap();
        std::fs::rename(mnt.join("bkt/copied"), mnt.join("bkt/moved/renamed")).unwrap();
        let r = s3(sb, "HEAD", "/bkt/moved/renamed", b"", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(etag(&r), md5_hex(&edited));
        assert_eq!(s3(sb, "HEAD", "/bkt/copied", b"", &[]).status, 404);
        // A directory rename moves every object below it.
        std::fs::rename(mnt.join("bkt/moved"), mnt.join("bkt/moved2")).unwrap();
        let r = get(sb, "/bkt/moved2/renamed");
        assert_eq!(r.status, 200);
        assert_eq!(etag(&r), md5_hex(&edited));
        assert_eq!(s3(sb, "HEAD", "/bkt/moved/renamed", b"", &[]).status, 404);

        // User metadata and content type from S3 survive an edit through the mount.
        let r = s3(
            sb,
            "PUT",
            "/bkt/meta",
            b"first\n",
            &[
                ("x-amz-meta-color", "blue"),
                ("content-type", "text/x-test"),
            ],
        );
        assert_eq!(r.status, 200);
        fx.sh(&mnt, "echo second >> bkt/meta", &[]);
        let r = s3(sb, "HEAD", "/bkt/meta", b"", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-amz-meta-color"), Some("blue"));
        assert_eq!(r.header("content-type"), Some("text/x-test"));
        assert_eq!(etag(&r), md5_hex(b"first\nsecond\n"));
        // So do they across chmod and touch (the bytes did not change, nor the ETag).
        fx.sh(
            &mnt,
            "chmod 600 bkt/meta && touch -d @1000000000 bkt/meta",
            &[],
        );
        let r = s3(sb, "HEAD", "/bkt/meta", b"", &[]);
        assert_eq!(r.header("x-amz-meta-color"), Some("blue"));
        assert_eq!(etag(&r), md5_hex(b"first\nsecond\n"));
        // rm in the mount deletes the object.
        std::fs::remove_file(mnt.join("bkt/meta")).unwrap();
        assert_eq!(s3(sb, "HEAD", "/bkt/meta", b"", &[]).status, 404);
    });
}

#[test]
fn writes_publish_at_close_and_not_before() {
    run(|fx| {
        let _a = fx.serve_mounted("mnt", &["--mount-attr-ttl", "0"]);
        let b = fx.serve(&[]);
        let mnt = fx.mnt("mnt");
        let sb = fx.s(b);
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        let old = body(21, 50_000);
        assert_eq!(put(sb, "/bkt/f", &old).status, 200);
        let path = mnt.join("bkt/f");
        let p = path.to_str().unwrap().to_string();

        // Overwritten with O_TRUNC: S3 serves the old version, whole, until close.
        let mut py = fx.py();
        py.ok(&format!("open w {p} w"));
        py.ok("write w partial-new-content");
        for _ in 0..3 {
            let r = get(sb, "/bkt/f");
            assert_eq!(r.status, 200);
            assert!(r.body == old, "S3 saw an unpublished write");
            assert_eq!(etag(&r), md5_hex(&old));
        }
        // The writer itself reads what it wrote.
        assert_eq!(py.ask("read w"), "ok partial-new-content");
        py.ok("write w +rest");
        py.ok("close w");
        let r = get(sb, "/bkt/f");
        assert_eq!(r.body, b"partial-new-content+rest");
        assert_eq!(etag(&r), md5_hex(b"partial-new-content+rest"));

        // Opened for update without O_TRUNC: copied up, so a write in the middle keeps the rest.
        py.ok(&format!("open u {p} rw"));
        py.ok("pwrite u 8 NEW");
        assert_eq!(get(sb, "/bkt/f").body, b"partial-new-content+rest");
        py.ok("close u");
        assert_eq!(get(sb, "/bkt/f").body, b"partial-NEW-content+rest");

        // A new file: visible in this mount while open, absent from S3 until closed.
        let n = mnt.join("bkt/new");
        py.ok(&format!("open n {} w", n.to_str().unwrap()));
        py.ok("write n brand new");
        assert_eq!(get(sb, "/bkt/new").status, 404);
        assert_eq!(std::fs::metadata(&n).unwrap().len(), 9);
        assert!(!fx.share().join("bkt/new").exists());
        // Listed in this mount like any file, and its directory is not empty.
        let names: Vec<String> = std::fs::read_dir(mnt.join("bkt"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.contains(&"new".to_string()), "{names:?}");
        let d = mnt.join("bkt/sub");
        std::fs::create_dir(&d).unwrap();
        py.ok(&format!("open s {} w", d.join("inner").display()));
        py.ok("write s kept");
        let e = std::fs::remove_dir(&d).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTEMPTY));
        py.ok("close s");
        assert_eq!(get(sb, "/bkt/sub/inner").body, b"kept");
        py.ok("close n");
        let r = get(sb, "/bkt/new");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"brand new");
        assert_eq!(etag(&r), md5_hex(b"brand new"));

        // A new file renamed before it is closed: it goes live under the new name, and
        // writes after the rename land there too.
        py.ok(&format!("open t {} w", mnt.join("bkt/tmp.part").display()));
        py.ok("write t part one");
        py.ok(&format!(
            "rename {} {}",
            mnt.join("bkt/tmp.part").display(),
            mnt.join("bkt/done").display()
        ));
        py.ok("write t , part two");
        assert_eq!(get(sb, "/bkt/done").body, b"part one");
        py.ok("close t");
        assert_eq!(get(sb, "/bkt/done").body, b"part one, part two");
        assert_eq!(get(sb, "/bkt/tmp.part").status, 404);

        // fsync publishes too, before close.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&n)
            .unwrap();
        f.write_all(b"synced").unwrap();
        f.sync_all().unwrap();
        assert_eq!(get(sb, "/bkt/new").body, b"synced");
        f.write_all(b" and closed").unwrap();
        drop(f);
        assert_eq!(get(sb, "/bkt/new").body, b"synced and closed");
    });
}

// ---------------------------------------------------------------------------------------
// No torn reads across fronts.

/// Sizes of the versions writers publish: all different, from tiny to a few hundred KiB.
fn version_size(seed: u64) -> usize {
    16 + ((seed * 7919) % 97) as usize * 3_001
}

#[test]
fn no_torn_reads_s3_writers_mount_readers() {
    run(|fx| {
        // The default attribute TTL: cached sizes must not tear a read either.
        let _a = fx.serve_mounted("mnt", &[]);
        let b = fx.serve(&[]);
        let mnt = fx.mnt("mnt");
        let addr = fx.s(b).address.clone();
        assert_eq!(put(fx.s(b), "/bkt", b"").status, 200);
        assert_eq!(put(fx.s(b), "/bkt/hot", &body(1, 1000)).status, 200);
        let done = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for _ in 0..2 {
            let (done, reads, path) = (done.clone(), reads.clone(), mnt.join("bkt/hot"));
            readers.push(std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let got = std::fs::read(&path).expect("read through the mount");
                    assert!(
                        is_whole(&got),
                        "torn read through the mount: {} bytes",
                        got.len()
                    );
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mut writers = Vec::new();
        for w in 0..2u64 {
            let addr = addr.clone();
            writers.push(std::thread::spawn(move || {
                for i in 0..40u64 {
                    let seed = 1000 * (w + 1) + i;
                    let data = body(seed, version_size(seed));
                    let h = signed_headers(
                        &addr,
                        "PUT",
                        "/bkt/hot",
                        "",
                        &[],
                        &sha256_hex(&data),
                        SECRET_KEY,
                    );
                    let r = http(&addr, "PUT", "/bkt/hot", &h, &data);
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            }));
        }
        let writers_ok = writers.into_iter().all(|t| t.join().is_ok());
        done.store(true, Ordering::Relaxed);
        let readers_ok = readers.into_iter().all(|t| t.join().is_ok());
        assert!(writers_ok && readers_ok, "a writer or reader failed");
        assert!(reads.load(Ordering::Relaxed) > 20, "too few reads");
    });
}

#[test]
fn no_torn_reads_mount_writers_s3_readers() {
    run(|fx| {
        let a = fx.serve_mounted("mnt", &[]);
        let b = fx.serve(&[]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        std::fs::write(mnt.join("bkt/hot"), body(1, 1000)).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for addr in [fx.s(b).address.clone(), fx.s(a).address.clone()] {
            let (done, reads) = (done.clone(), reads.clone());
            readers.push(std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let h = signed_headers(
                        &addr,
                        "GET",
                        "/bkt/hot",
                        "",
                        &[],
                        &sha256_hex(b""),
                        SECRET_KEY,
                    );
                    let r = http(&addr, "GET", "/bkt/hot", &h, b"");
                    assert_eq!(r.status, 200, "{}", r.text());
                    assert!(
                        is_whole(&r.body),
                        "torn read over S3: {} bytes",
                        r.body.len()
                    );
                    assert_eq!(etag(&r), md5_hex(&r.body), "ETag of another version");
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mut writers = Vec::new();
        for w in 0..2u64 {
            let path = mnt.join("bkt/hot");
            writers.push(std::thread::spawn(move || {
                for i in 0..40u64 {
                    let seed = 1000 * (w + 1) + i;
                    std::fs::write(&path, body(seed, version_size(seed)))
                        .expect("write through the mount");
                }
            }));
        }
        let writers_ok = writers.into_iter().all(|t| t.join().is_ok());
        done.store(true, Ordering::Relaxed);
        let readers_ok = readers.into_iter().all(|t| t.join().is_ok());
        assert!(writers_ok && readers_ok, "a writer or reader failed");
        assert!(reads.load(Ordering::Relaxed) > 20, "too few reads");
        let last = std::fs::read(mnt.join("bkt/hot")).unwrap();
        assert!(is_whole(&last));
    });
}

#[test]
fn open_reader_holds_the_shared_lock_until_closed() {
    run(|fx| {
        let a = fx.serve_mounted("mnt", &["--mount-attr-ttl", "0"]);
        let b = fx.serve(&["--lock-timeout", "30"]);
        let mnt = fx.mnt("mnt");
        assert_eq!(put(fx.s(a), "/bkt", b"").status, 200);
        assert_eq!(put(fx.s(a), "/bkt/f", b"old version").status, 200);
        let mut file = std::fs::File::open(mnt.join("bkt/f")).unwrap();
        let mut first = [0u8; 3];
        file.read_exact(&mut first).unwrap();
        let addr = fx.s(b).address.clone();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let data = b"new version".to_vec();
            let h = signed_headers(
                &addr,
                "PUT",
                "/bkt/f",
                "",
                &[],
                &sha256_hex(&data),
                SECRET_KEY,
            );
            let _ = tx.send(http(&addr, "PUT", "/bkt/f", &h, &data).status);
        });
        // The PUT waits for the reader's shared lock...
        assert!(
            matches!(
                rx.recv_timeout(Duration::from_millis(1500)),
                Err(RecvTimeoutError::Timeout)
            ),
            "the PUT completed while the file was open for reading"
        );
        // ...which still reads the version it opened, whole.
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).unwrap();
        assert_eq!([&first[..], &rest[..]].concat(), b"old version");
        drop(file);
        // Closing releases the lock (FUSE release comes soon after close returns).
        assert_eq!(rx.recv_timeout(STEP_BOUND), Ok(200));
        assert_eq!(std::fs::read(mnt.join("bkt/f")).unwrap(), b"new version");
    });
}

// ---------------------------------------------------------------------------------------
// Tool locks forwarded to the share.

#[test]
fn fcntl_locks_exclude_across_two_mounts() {
    run(|fx| {
        fx.serve_mounted("m1", &[]);
        fx.serve_mounted("m2", &[]);
        let (m1, m2) = (fx.mnt("m1"), fx.mnt("m2"));
        std::fs::create_dir(m1.join("bkt")).unwrap();
        std::fs::write(m1.join("bkt/lk"), "lock me").unwrap();
        let (p1, p2) = (
            m1.join("bkt/lk").display().to_string(),
            m2.join("bkt/lk").display().to_string(),
        );
        let (mut x, mut y) = (fx.py(), fx.py());
        x.ok(&format!("open f {p1} rw"));
        y.ok(&format!("open f {p2} rw"));
        x.ok("lockf f");
        let a = y.ask("lockf f");
        assert!(a == "EAGAIN" || a == "EACCES", "second locker got {a:?}");
        assert!(matches!(y.ask("shlock f").as_str(), "EAGAIN" | "EACCES"));
        // Unlocking hands it over; and the other way round.
        x.ok("unlock f");
        y.ok("lockf f");
        assert!(matches!(x.ask("lockf f").as_str(), "EAGAIN" | "EACCES"));
        // Closing the descriptor ends the holder's locks (POSIX close semantics).
        y.ok("close f");
        x.ok("lockf f");
        // Two processes through one mount exclude each other as well.
        let mut z = fx.py();
        z.ok(&format!("open f {p1} rw"));
        assert!(matches!(z.ask("lockf f").as_str(), "EAGAIN" | "EACCES"));
        x.ok("close f");
        z.ok("lockf f");
        // Shared locks from two mounts coexist.
        z.ok("unlock f");
        y.ok(&format!("open f {p2} rw"));
        z.ok("shlock f");
        y.ok("shlock f");
    });
}

#[test]
fn locks_on_the_share_and_through_the_mount_exclude_each_other() {
    run(|fx| {
        fx.serve_mounted("mnt", &[]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        std::fs::write(mnt.join("bkt/lk"), "lock me").unwrap();
        let direct = fx.share().join("bkt/lk").display().to_string();
        let through = mnt.join("bkt/lk").display().to_string();
        let (mut d, mut m) = (fx.py(), fx.py());
        d.ok(&format!("open f {direct} rw"));
        m.ok(&format!("open f {through} rw"));
        // Classic fcntl lock on the share's file first...
        d.ok("lockf f");
        assert!(matches!(m.ask("lockf f").as_str(), "EAGAIN" | "EACCES"));
        d.ok("close f");
        // ...then through the mount first.
        m.ok("lockf f");
        d.ok(&format!("open f {direct} rw"));
        assert!(matches!(d.ask("lockf f").as_str(), "EAGAIN" | "EACCES"));
        m.ok("close f");
        d.ok("lockf f");
    });
}

#[test]
fn flock_excludes_across_two_mounts() {
    run(|fx| {
        fx.serve_mounted("m1", &[]);
        fx.serve_mounted("m2", &[]);
        let (m1, m2) = (fx.mnt("m1"), fx.mnt("m2"));
        std::fs::create_dir(m1.join("bkt")).unwrap();
        std::fs::write(m1.join("bkt/lk"), "lock me").unwrap();
        let (mut x, mut y) = (fx.py(), fx.py());
        x.ok(&format!("open f {} r", m1.join("bkt/lk").display()));
        y.ok(&format!("open f {} r", m2.join("bkt/lk").display()));
        x.ok("flock f");
        assert_eq!(y.ask("flock f"), "EAGAIN");
        // flock locks end with the last close of the open file, which FUSE reports after
        // close returns (RELEASE): a waiting flock gets the lock then.
        x.ok("close f");
        y.ok("flockw f");
        x.ok(&format!("open f {} r", m1.join("bkt/lk").display()));
        assert_eq!(x.ask("flock f"), "EAGAIN");
    });
}

#[test]
fn blocking_lock_is_granted_when_released() {
    run(|fx| {
        fx.serve_mounted("m1", &["--lock-timeout", "30"]);
        fx.serve_mounted("m2", &["--lock-timeout", "30"]);
        let (m1, m2) = (fx.mnt("m1"), fx.mnt("m2"));
        std::fs::create_dir(m1.join("bkt")).unwrap();
        std::fs::write(m1.join("bkt/lk"), "lock me").unwrap();
        let (mut x, mut y) = (fx.py(), fx.py());
        x.ok(&format!("open f {} rw", m1.join("bkt/lk").display()));
        y.ok(&format!("open f {} rw", m2.join("bkt/lk").display()));
        x.ok("lockf f");
        y.send("lockw f");
        assert_eq!(
            y.answer(Duration::from_millis(1000)),
            None,
            "the waiting lock was granted while held"
        );
        let released = Instant::now();
        x.ok("close f");
        assert_eq!(y.answer(STEP_BOUND).as_deref(), Some("ok"));
        assert!(released.elapsed() < Duration::from_secs(5), "granted late");
        // And now the first one waits for the second.
        x.ok(&format!("open f {} rw", m1.join("bkt/lk").display()));
        assert!(matches!(x.ask("lockf f").as_str(), "EAGAIN" | "EACCES"));
    });
}

#[test]
fn an_interrupted_lock_wait_ends_at_once_and_is_never_granted() {
    run(|fx| {
        // A lock timeout beyond the test's patience: only the interrupt can end the wait.
        fx.serve_mounted("m1", &["--lock-timeout", "30"]);
        let m1 = fx.mnt("m1");
        std::fs::create_dir(m1.join("bkt")).unwrap();
        std::fs::write(m1.join("bkt/lk"), "lock me").unwrap();
        let p = m1.join("bkt/lk").display().to_string();
        let (mut x, mut y, mut z) = (fx.py(), fx.py(), fx.py());
        x.ok(&format!("open f {p} rw"));
        y.ok(&format!("open f {p} rw"));
        z.ok(&format!("open f {p} rw"));
        x.ok("lockf f");
        y.send("lockw f");
        assert_eq!(
            y.answer(Duration::from_millis(1000)),
            None,
            "the waiting lock was granted while held"
        );
        // SIGTERM to the waiter: the kernel keeps it in the request until the mount
        // answers, which it does at once instead of after the lock timeout.
        y.signal("TERM");
        assert!(
            y.exits_within(Duration::from_secs(5)),
            "the interrupted waiter stayed in its lock wait"
        );
        // Nothing was granted to the abandoned wait: once the holder lets go, the lock is
        // free for anyone.
        x.ok("unlock f");
        z.ok("lockf f");
        assert!(matches!(x.ask("lockf f").as_str(), "EAGAIN" | "EACCES"));
    });
}

// ---------------------------------------------------------------------------------------
// Lifecycle.

#[test]
fn sigterm_unmounts() {
    run(|fx| {
        let a = fx.serve_mounted("mnt", &[]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        std::fs::write(mnt.join("bkt/f"), "kept").unwrap();
        let status = fx.servers[a].stop();
        assert!(status.success(), "exit status {status:?}");
        assert!(!is_mount_point(&mnt), "still mounted after SIGTERM");
        assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0);
        assert_eq!(std::fs::read(fx.share().join("bkt/f")).unwrap(), b"kept");
    });
}

#[test]
fn sigkill_leaves_a_dead_mount_that_the_next_start_recovers() {
    run(|fx| {
        let a = fx.serve_mounted("mnt", &[]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        std::fs::write(mnt.join("bkt/f"), "before").unwrap();
        fx.servers[a].kill();
        assert!(is_mount_point(&mnt));
        assert_eq!(errno_of(std::fs::metadata(&mnt)), libc::ENOTCONN);
        let b = fx.serve_mounted("mnt", &[]);
        assert!(fx.s(b).log().iter().any(|l| l.contains("dead FUSE mount")));
        assert_eq!(std::fs::read(mnt.join("bkt/f")).unwrap(), b"before");
        std::fs::write(mnt.join("bkt/g"), "after").unwrap();
        assert_eq!(get(fx.s(b), "/bkt/g").body, b"after");
        let status = fx.servers[b].stop();
        assert!(status.success());
        assert!(!is_mount_point(&mnt));
    });
}

// ---------------------------------------------------------------------------------------
// Caches, bounds and known limits.

#[test]
fn kernel_cache_serves_only_the_current_version() {
    run(|fx| {
        // The default attribute TTL (1 s): names, sizes and pages may be cached.
        let _a = fx.serve_mounted("mnt", &[]);
        let b = fx.serve(&[]);
        let mnt = fx.mnt("mnt");
        let sb = fx.s(b);
        assert_eq!(put(sb, "/bkt", b"").status, 200);
        let f = mnt.join("bkt/f");
        let v1 = body(31, 70_000);
        assert_eq!(put(sb, "/bkt/f", &v1).status, 200);
        assert!(std::fs::read(&f).unwrap() == v1);
        // Unchanged: read again (from the kernel's cache or not, the same bytes).
        assert!(std::fs::read(&f).unwrap() == v1);
        // Same size, new bytes: the cached pages of v1 must not be served.
        let v2 = body(32, 70_000);
        assert_eq!(put(sb, "/bkt/f", &v2).status, 200);
        assert!(std::fs::read(&f).unwrap() == v2, "stale pages served");
        // Larger, then smaller: whole each time, though the cached size is another.
        let v3 = body(33, 190_000);
        assert_eq!(put(sb, "/bkt/f", &v3).status, 200);
        assert!(std::fs::read(&f).unwrap() == v3, "cut at a stale size");
        let v4 = body(34, 5_000);
        assert_eq!(put(sb, "/bkt/f", &v4).status, 200);
        assert!(std::fs::read(&f).unwrap() == v4);
        // A write through the mount changes the pages; the next read sees the published file.
        std::fs::write(&f, b"written here").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"written here");
        assert_eq!(get(sb, "/bkt/f").body, b"written here");
    });
}

#[test]
fn large_directory_rename_is_refused_with_exdev() {
    run(|fx| {
        fx.serve_mounted("mnt", &[]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        // 10 001 entries, put on the share directly (legacy files are objects too).
        let big = fx.share().join("bkt/big");
        std::fs::create_dir(&big).unwrap();
        for i in 0..10_001 {
            std::fs::write(big.join(format!("f{i}")), b"").unwrap();
        }
        assert_eq!(
            errno_of(std::fs::rename(mnt.join("bkt/big"), mnt.join("bkt/big2"))),
            libc::EXDEV
        );
        assert!(big.join("f0").exists() && !fx.share().join("bkt/big2").exists());
        // A bucket is never renamed either (mv copies instead).
        assert_eq!(
            errno_of(std::fs::rename(mnt.join("bkt"), mnt.join("bkt2"))),
            libc::EXDEV
        );
        // Within the bound, a directory moves with its objects.
        std::fs::create_dir(mnt.join("bkt/small")).unwrap();
        std::fs::write(mnt.join("bkt/small/x"), b"x").unwrap();
        std::fs::rename(mnt.join("bkt/small"), mnt.join("bkt/small2")).unwrap();
        assert_eq!(std::fs::read(mnt.join("bkt/small2/x")).unwrap(), b"x");
    });
}

#[test]
fn writing_a_file_the_process_holds_open_for_reading_fails_after_the_lock_timeout() {
    run(|fx| {
        fx.serve_mounted("mnt", &["--lock-timeout", "1", "--mount-attr-ttl", "0"]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        std::fs::write(mnt.join("bkt/f"), b"original").unwrap();
        let p = mnt.join("bkt/f").display().to_string();
        let mut py = fx.py();
        // Reader first: the writer's O_TRUNC open, or its first write, waits for the
        // process's own reader, then gives up with EAGAIN.
        py.ok(&format!("open r {p} r"));
        let started = Instant::now();
        assert_eq!(py.ask(&format!("open w {p} w")), "EAGAIN");
        assert!(started.elapsed() >= Duration::from_millis(900));
        // Without O_TRUNC: EAGAIN at the first write, or already at the open where the
        // kernel reads the file through passthrough (it takes no other open next to those).
        match py.ask(&format!("open u {p} rw")).as_str() {
            "ok" => {
                assert_eq!(py.ask("pwrite u 0 changed"), "EAGAIN");
                py.ok("close u");
            }
            a => assert_eq!(a, "EAGAIN"),
        }
        // chmod does not wait (unlink and rename over it do not either: see
        // `a_file_open_in_this_mount_can_be_unlinked_or_replaced_and_keeps_its_bytes`).
        let f = mnt.join("bkt/f");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        py.ok("close r");
        assert_eq!(std::fs::read(mnt.join("bkt/f")).unwrap(), b"original");
        // Writer first: the write goes to the draft, and the publish at close waits for the
        // reader's shared lock, then fails with EAGAIN; nothing changes on the share.
        py.ok(&format!("open u {p} rw"));
        py.ok(&format!("open r {p} r"));
        py.ok("pwrite u 0 CHANGED!");
        assert_eq!(py.ask("close u"), "EAGAIN");
        py.ok("close r");
        assert_eq!(std::fs::read(mnt.join("bkt/f")).unwrap(), b"original");
        // With the reader closed first, the same write goes through.
        py.ok(&format!("open w {p} w"));
        py.ok("write w replaced");
        py.ok("close w");
        assert_eq!(std::fs::read(mnt.join("bkt/f")).unwrap(), b"replaced");
    });
}

#[test]
fn a_file_open_in_this_mount_can_be_unlinked_or_replaced_and_keeps_its_bytes() {
    run(|fx| {
        // A long lock timeout: a wait for the mount's own reader would show as a slow call.
        fx.serve_mounted("mnt", &["--lock-timeout", "10", "--mount-attr-ttl", "0"]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        let f = mnt.join("bkt/f");
        std::fs::write(&f, b"opened bytes").unwrap();
        // open; unlink; read: the reader keeps its bytes, and fstat says no links are left.
        let mut file = std::fs::File::open(&f).unwrap();
        let started = Instant::now();
        std::fs::remove_file(&f).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "unlink waited for the mount's own reader"
        );
        assert_eq!(errno_of(std::fs::metadata(&f)), libc::ENOENT);
        assert_eq!(file.metadata().unwrap().nlink(), 0);
        let mut got = Vec::new();
        file.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"opened bytes");
        drop(file);
        assert!(!fx.share().join("bkt/f").exists());
        assert!(!fx.share().join(".minio.sys/buckets/bkt/f/fs.json").exists());
        // Rename over a file another process reads through the mount: the rename goes
        // through at once; the reader reads the version it opened, whole; new opens see the
        // new one.
        std::fs::write(&f, b"old version").unwrap();
        std::fs::write(mnt.join("bkt/g"), b"new version").unwrap();
        let p = f.display().to_string();
        let mut py = fx.py();
        py.ok(&format!("open r {p} r"));
        let started = Instant::now();
        std::fs::rename(mnt.join("bkt/g"), &f).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "rename waited for the mount's own reader"
        );
        assert_eq!(py.ask("read r"), "ok old version");
        assert_eq!(std::fs::read(&f).unwrap(), b"new version");
        assert_eq!(py.ask("read r"), "ok old version");
        py.ok("close r");
        assert_eq!(
            std::fs::read(fx.share().join("bkt/f")).unwrap(),
            b"new version"
        );
        assert!(!fx.share().join("bkt/g").exists());
    });
}

/// Starts an S3 PUT of `body` to `target` on `server` in a thread; its status arrives on the
/// receiver.
fn put_in_background(server: &Server, target: &str, body: &[u8]) -> Receiver<u16> {
    let addr = server.address.clone();
    let (target, data) = (target.to_string(), body.to_vec());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let h = signed_headers(
            &addr,
            "PUT",
            &target,
            "",
            &[],
            &sha256_hex(&data),
            SECRET_KEY,
        );
        let _ = tx.send(http(&addr, "PUT", &target, &h, &data).status);
    });
    rx
}

/// Asserts that a PUT started by `put_in_background` is held off for a while (by a reader's
/// shared lock), then completes once `release` has let the reader go.
fn put_waits_for_the_reader(rx: &Receiver<u16>, release: impl FnOnce()) {
    assert!(
        matches!(
            rx.recv_timeout(Duration::from_millis(1500)),
            Err(RecvTimeoutError::Timeout)
        ),
        "the PUT completed while a mount reader had the file open"
    );
    release();
    assert_eq!(rx.recv_timeout(STEP_BOUND), Ok(200));
}

#[test]
fn a_failed_rename_leaves_the_mount_reader_holding_off_writers() {
    run(|fx| {
        fx.serve_mounted("mnt", &["--lock-timeout", "10", "--mount-attr-ttl", "0"]);
        let b = fx.serve(&["--lock-timeout", "30"]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        std::fs::write(mnt.join("bkt/f"), b"opened bytes").unwrap();
        let p = mnt.join("bkt/f").display().to_string();
        let mut py = fx.py();
        py.ok(&format!("open r {p} r"));
        // The rename lets the reader go, then the store refuses the name: the reader takes
        // its lock again.
        let hidden = mnt.join("bkt/.nfs0001").display().to_string();
        assert_eq!(py.ask(&format!("rename {p} {hidden}")), "EPERM");
        let rx = put_in_background(fx.s(b), "/bkt/f", b"new version");
        put_waits_for_the_reader(&rx, || {
            assert_eq!(py.ask("read r"), "ok opened bytes");
            py.ok("close r");
        });
        assert_eq!(std::fs::read(mnt.join("bkt/f")).unwrap(), b"new version");
    });
}

#[test]
fn a_directory_with_files_read_in_this_mount_can_be_renamed() {
    run(|fx| {
        // A long lock timeout: a wait for the mount's own reader would show as a slow call.
        fx.serve_mounted("mnt", &["--lock-timeout", "10", "--mount-attr-ttl", "0"]);
        let b = fx.serve(&["--lock-timeout", "30"]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir_all(mnt.join("bkt/d/sub")).unwrap();
        std::fs::write(mnt.join("bkt/d/sub/f"), b"below").unwrap();
        let p = mnt.join("bkt/d/sub/f").display().to_string();
        let mut py = fx.py();
        py.ok(&format!("open r {p} r"));
        let started = Instant::now();
        std::fs::rename(mnt.join("bkt/d"), mnt.join("bkt/e")).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the directory rename waited for the mount's own reader"
        );
        assert_eq!(py.ask("read r"), "ok below");
        assert_eq!(std::fs::read(mnt.join("bkt/e/sub/f")).unwrap(), b"below");
        assert_eq!(errno_of(std::fs::metadata(&p)), libc::ENOENT);
        // Moved, not replaced: the reader holds off writers of its file at the new path.
        let rx = put_in_background(fx.s(b), "/bkt/e/sub/f", b"new version");
        put_waits_for_the_reader(&rx, || py.ok("close r"));
        assert_eq!(
            std::fs::read(fx.share().join("bkt/e/sub/f")).unwrap(),
            b"new version"
        );
    });
}

#[test]
fn an_s3_reader_in_another_process_still_holds_off_an_unlink_through_the_mount() {
    run(|fx| {
        fx.serve_mounted("mnt", &["--lock-timeout", "1", "--mount-attr-ttl", "0"]);
        let b = fx.serve(&[]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        let f = mnt.join("bkt/big");
        // Large enough that the GET cannot finish into the socket buffers while its client
        // reads nothing: the other instance keeps streaming, under the shared lock.
        let data = body(3, 64 << 20);
        std::fs::write(&f, &data).unwrap();
        let addr = fx.s(b).address.clone();
        let h = signed_headers(
            &addr,
            "GET",
            "/bkt/big",
            "",
            &[],
            &sha256_hex(b""),
            SECRET_KEY,
        );
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        conn.set_read_timeout(Some(STEP_BOUND)).unwrap();
        let mut req = "GET /bkt/big HTTP/1.1\r\nConnection: close\r\n".to_string();
        for (k, v) in &h {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        conn.write_all(req.as_bytes()).unwrap();
        let mut first = [0u8; 4096];
        let n = conn.read(&mut first).unwrap();
        assert!(
            String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
            "GET did not start: {:?}",
            String::from_utf8_lossy(&first[..n])
        );
        // A reader in this mount too: the unlink lets it go before it waits.
        let mut py = fx.py();
        py.ok(&format!("open r {} r", f.display()));
        // The reader on another instance (another host, for all the mount knows) holds the
        // delete off until the lock timeout; nothing changes on the share.
        let started = Instant::now();
        assert_eq!(errno_of(std::fs::remove_file(&f)), libc::EAGAIN);
        assert!(started.elapsed() >= Duration::from_millis(900));
        assert_eq!(
            std::fs::metadata(fx.share().join("bkt/big")).unwrap().len(),
            data.len() as u64
        );
        // The unlink failed, so the mount's reader holds off writers again, once the GET is
        // gone too.
        drop(conn);
        let rx = put_in_background(fx.s(b), "/bkt/big", b"new version");
        put_waits_for_the_reader(&rx, || py.ok("close r"));
        // Nothing holds the unlink off now.
        let deadline = Instant::now() + STEP_BOUND;
        loop {
            match std::fs::remove_file(&f) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && Instant::now() < deadline => {}
                Err(e) => panic!("unlink after the GET ended: {e}"),
            }
        }
        assert!(!fx.share().join("bkt/big").exists());
    });
}

#[test]
fn modes_without_owner_read_and_sticky_modes_keep_the_file_reachable() {
    run(|fx| {
        fx.serve_mounted("mnt", &[]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for mode in [0o222, 0o111, 0o000, 0o1700, 0o1644, 0o4755, 0o2755] {
            let f = mnt.join(format!("bkt/m{mode:o}"));
            std::fs::write(&f, b"x").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            // stat, chmod again and unlink, as root: no read bit is needed for any of them.
            assert_eq!(
                std::fs::metadata(&f).unwrap().mode() & 0o7777,
                mode,
                "{mode:o}"
            );
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(std::fs::symlink_metadata(&f).unwrap().mode() & 0o7777, mode);
            std::fs::remove_file(&f).unwrap();
            assert_eq!(errno_of(std::fs::metadata(&f)), libc::ENOENT);
        }
        let d = mnt.join("bkt/d");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o7777, 0o1777);
        std::fs::remove_dir(&d).unwrap();
    });
}

#[test]
fn far_and_pre_1970_times_and_symlink_times_are_kept() {
    run(|fx| {
        fx.serve_mounted("mnt", &["--mount-attr-ttl", "0"]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        let bkt = mnt.join("bkt");
        std::fs::write(bkt.join("f"), b"x").unwrap();
        std::os::unix::fs::symlink("f", bkt.join("l")).unwrap();
        // touch -h sets the link's own times (utimensat with AT_SYMLINK_NOFOLLOW).
        fx.sh(
            &bkt,
            "touch -d @1900000000 f && touch -h -m -d @1970000000 l",
            &[],
        );
        let f = std::fs::metadata(bkt.join("f")).unwrap();
        assert_eq!((f.atime(), f.mtime()), (1_900_000_000, 1_900_000_000));
        let l = std::fs::symlink_metadata(bkt.join("l")).unwrap();
        assert_eq!(l.mtime(), 1_970_000_000);
        // The link's access time too, through later lookups (the mount checks where a link
        // leads without reading it again, which would move its access time).
        fx.sh(&bkt, "touch -h -a -d @1960000000 l", &[]);
        for _ in 0..2 {
            let l = std::fs::symlink_metadata(bkt.join("l")).unwrap();
            assert_eq!((l.atime(), l.mtime()), (1_960_000_000, 1_970_000_000));
        }
        assert_eq!(std::fs::read_link(bkt.join("l")).unwrap(), Path::new("f"));
        // The target is untouched by the link's change.
        assert_eq!(
            std::fs::metadata(bkt.join("f")).unwrap().mtime(),
            1_900_000_000
        );
        // Before 1970, as tar and rsync restore them.
        fx.sh(&bkt, "touch -d @-86400 f", &[]);
        let f = std::fs::metadata(bkt.join("f")).unwrap();
        assert_eq!((f.atime(), f.mtime()), (-86400, -86400));
        assert_eq!(
            std::fs::metadata(fx.share().join("bkt/f")).unwrap().mtime(),
            -86400
        );
        // Through an open writer's draft too.
        fx.sh(
            &bkt,
            "python3 -c \"import os; fd = os.open('g', os.O_WRONLY | os.O_CREAT, 0o644); os.write(fd, b'y'); os.utime(fd, (-5000, -4000)); os.close(fd)\"",
            &[],
        );
        let g = std::fs::metadata(bkt.join("g")).unwrap();
        assert_eq!((g.atime(), g.mtime()), (-5000, -4000));
    });
}

#[test]
fn a_renamed_directory_can_be_removed() {
    run(|fx| {
        fx.serve_mounted("mnt", &[]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        let bkt = mnt.join("bkt");
        // Empty, then with a file: rename, then rmdir the new name (pjdfstest rename/13, 20).
        std::fs::create_dir(bkt.join("a")).unwrap();
        std::fs::rename(bkt.join("a"), bkt.join("b")).unwrap();
        std::fs::remove_dir(bkt.join("b")).unwrap();
        std::fs::create_dir_all(bkt.join("c/sub")).unwrap();
        std::fs::write(bkt.join("c/sub/f"), b"f").unwrap();
        std::fs::create_dir(bkt.join("d")).unwrap();
        // Over an existing empty directory.
        std::fs::rename(bkt.join("c"), bkt.join("d")).unwrap();
        assert_eq!(std::fs::read(bkt.join("d/sub/f")).unwrap(), b"f");
        assert_eq!(
            errno_of(std::fs::remove_dir(bkt.join("d"))),
            libc::ENOTEMPTY
        );
        std::fs::remove_file(bkt.join("d/sub/f")).unwrap();
        std::fs::remove_dir(bkt.join("d/sub")).unwrap();
        std::fs::remove_dir(bkt.join("d")).unwrap();
        assert_eq!(errno_of(std::fs::metadata(bkt.join("c"))), libc::ENOENT);
        assert_eq!(errno_of(std::fs::metadata(bkt.join("d"))), libc::ENOENT);
        let left: Vec<_> = std::fs::read_dir(fx.share().join("bkt")).unwrap().collect();
        assert!(left.is_empty(), "left on the share: {left:?}");
    });
}

/// Runs python3 `script` as uid/gid 65534 (nobody) in `cwd`; returns its stdout.
fn as_nobody(fx: &Fx, cwd: &Path, script: &str) -> String {
    let full =
        format!("import os, errno\nos.setgroups([])\nos.setgid(65534)\nos.setuid(65534)\n{script}");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", &full]).current_dir(cwd);
    let (code, out, err) = fx.run(cmd);
    assert_eq!(code, Some(0), "{err}");
    out
}

const PROBE: &str = r#"
def e(f, *a):
    try:
        r = f(*a)
        if f is os.open:
            os.close(r)
        return 'ok'
    except OSError as x:
        return errno.errorcode[x.errno]
"#;

#[test]
fn allow_other_enforces_the_share_permission_bits() {
    run(|fx| {
        // /tmp/.tmpXXXX is 0700: let nobody through to the mount points.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(fx.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        fx.serve_mounted("open", &["--mount-allow-other", "--mount-attr-ttl", "0"]);
        fx.serve_mounted("own", &[]);
        let (open, own) = (fx.mnt("open"), fx.mnt("own"));
        std::fs::create_dir(open.join("bkt")).unwrap();
        std::fs::write(open.join("bkt/public"), b"for all").unwrap();
        std::fs::write(open.join("bkt/private"), b"root only").unwrap();
        fx.sh(&open, "chmod 600 bkt/private && mkdir -m 777 bkt/drop", &[]);
        let script = format!(
            "{PROBE}
print('read public', e(os.open, 'bkt/public', os.O_RDONLY))
print('read private', e(os.open, 'bkt/private', os.O_RDONLY))
print('write public', e(os.open, 'bkt/public', os.O_WRONLY))
print('create in bucket', e(os.open, 'bkt/mine', os.O_WRONLY | os.O_CREAT))
print('create in drop', e(os.open, 'bkt/drop/mine', os.O_WRONLY | os.O_CREAT, 0o640))
print('chmod private', e(os.chmod, 'bkt/private', 0o666))
"
        );
        let out = as_nobody(fx, &open, &script);
        assert_eq!(
            out,
            "read public ok\nread private EACCES\nwrite public EACCES\n\
             create in bucket EACCES\ncreate in drop ok\nchmod private EPERM\n"
        );
        // What nobody created is nobody's on the share, with the mode asked for.
        let m = std::fs::metadata(fx.share().join("bkt/drop/mine")).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (65534, 65534, 0o640));
        // Without --mount-allow-other, other users cannot use the mount at all.
        let out = as_nobody(fx, &own, &format!("{PROBE}\nprint(e(os.listdir, '.'))"));
        assert_eq!(out, "EACCES\n");
    });
}

#[test]
fn no_torn_reads_within_one_mount() {
    run(|fx| {
        // Readers and writers of one file through the same mount share the kernel's inode
        // (one size, one page cache): still, every read is one whole version.
        fx.serve_mounted("mnt", &[]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        std::fs::write(mnt.join("bkt/hot"), body(1, 1000)).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for _ in 0..2 {
            let (done, reads, path) = (done.clone(), reads.clone(), mnt.join("bkt/hot"));
            readers.push(std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let got = std::fs::read(&path).expect("read through the mount");
                    assert!(
                        is_whole(&got),
                        "torn read in the writers' mount: {} bytes",
                        got.len()
                    );
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mut writers = Vec::new();
        for w in 0..2u64 {
            let path = mnt.join("bkt/hot");
            writers.push(std::thread::spawn(move || {
                for i in 0..30u64 {
                    let seed = 1000 * (w + 1) + i;
                    std::fs::write(&path, body(seed, version_size(seed)))
                        .expect("write through the mount");
                }
            }));
        }
        let writers_ok = writers.into_iter().all(|t| t.join().is_ok());
        done.store(true, Ordering::Relaxed);
        let readers_ok = readers.into_iter().all(|t| t.join().is_ok());
        assert!(writers_ok && readers_ok, "a writer or reader failed");
        assert!(reads.load(Ordering::Relaxed) > 20, "too few reads");
    });
}

#[test]
fn writers_wait_for_readers_in_their_mount_and_the_mount_stays_usable() {
    run(|fx| {
        fx.serve_mounted("mnt", &["--mount-attr-ttl", "0"]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        let old = body(41, 300_000);
        std::fs::write(mnt.join("bkt/f"), &old).unwrap();
        std::fs::write(mnt.join("bkt/other"), b"other").unwrap();
        // A reader holds the file open (through the page cache) and has read part of it.
        let mut reader = std::fs::File::open(mnt.join("bkt/f")).unwrap();
        let mut head = vec![0u8; 100_000];
        reader.read_exact(&mut head).unwrap();
        // Writers in the same mount replace it meanwhile: more of them than the mount has
        // request threads, so a wait that held a request thread would stall the mount.
        let (tx, rx) = channel();
        let versions: Vec<Vec<u8>> = (0..6).map(|i| format!("new version {i}").into()).collect();
        for v in &versions {
            let (tx, path, v) = (tx.clone(), mnt.join("bkt/f"), v.clone());
            std::thread::spawn(move || {
                let _ = tx.send(std::fs::write(&path, v).map_err(|e| e.to_string()));
            });
        }
        assert!(
            matches!(
                rx.recv_timeout(Duration::from_millis(1000)),
                Err(RecvTimeoutError::Timeout)
            ),
            "a write completed while the file was open for reading"
        );
        // The mount keeps working for everything else while the writer waits.
        let started = Instant::now();
        let mut names: Vec<String> = std::fs::read_dir(mnt.join("bkt"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["f", "other"]);
        assert_eq!(std::fs::read(mnt.join("bkt/other")).unwrap(), b"other");
        std::fs::write(mnt.join("bkt/third"), b"third").unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the mount stalled"
        );
        // The reader still gets the version it opened, whole: not cut at a size of the
        // writer's, nor mixed with its bytes.
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(
            [head, rest].concat() == old,
            "the open version changed under its reader"
        );
        drop(reader);
        for _ in &versions {
            assert_eq!(rx.recv_timeout(STEP_BOUND), Ok(Ok(())));
        }
        let now = std::fs::read(mnt.join("bkt/f")).unwrap();
        assert!(versions.contains(&now), "not one whole version: {now:?}");
    });
}

#[test]
fn a_published_file_is_a_new_file_for_tool_locks() {
    run(|fx| {
        let a = fx.serve_mounted("mnt", &["--mount-attr-ttl", "0"]);
        let mnt = fx.mnt("mnt");
        std::fs::create_dir(mnt.join("bkt")).unwrap();
        std::fs::write(mnt.join("bkt/lk"), "v1").unwrap();
        let p = mnt.join("bkt/lk").display().to_string();
        let (mut x, mut y) = (fx.py(), fx.py());
        x.ok(&format!("open f {p} rw"));
        x.ok("lockf f");
        y.ok(&format!("open f {p} rw"));
        assert!(matches!(y.ask("lockf f").as_str(), "EAGAIN" | "EACCES"));
        y.ok("close f");
        // A new version replaces the data file (a new inode on the share, as a rename over
        // it would on NFS): the lock stays with the old one, so a new opener is not excluded.
        assert_eq!(put(fx.s(a), "/bkt/lk", b"v2").status, 200);
        y.ok(&format!("open f {p} rw"));
        y.ok("lockf f");
        // The mount's inode number of the path does not change with the version.
        let ino = std::fs::metadata(mnt.join("bkt/lk")).unwrap().ino();
        assert_eq!(put(fx.s(a), "/bkt/lk", b"v3").status, 200);
        assert_eq!(std::fs::metadata(mnt.join("bkt/lk")).unwrap().ino(), ino);
    });
}
