//! The lock discipline across real processes: each test spawns `nasgate debug-locks` children
//! on one temp share and checks who may hold what, and when.

mod common;

use std::time::{Duration, Instant};

use common::{outcome, LockDriver, ANSWER_BOUND};

const STYLES: [&[&str]; 2] = [&[], &["--classic"]];

fn share_with(file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(file), b"{}").expect("lock file");
    dir
}

fn flags<'a>(style: &[&'a str], timeout_ms: &'a str) -> Vec<&'a str> {
    let mut f = style.to_vec();
    f.extend(["--timeout-ms", timeout_ms]);
    f
}

#[test]
fn exclusive_excludes_shared_and_exclusive_and_shared_locks_coexist() {
    for style in STYLES {
        let share = share_with("f");
        let mut a = LockDriver::spawn(share.path(), &flags(style, "300"));
        let mut b = LockDriver::spawn(share.path(), &flags(style, "300"));
        let mut c = LockDriver::spawn(share.path(), &flags(style, "300"));

        let w = a.must_lock("write f");
        assert!(
            !outcome(&b.ask("read f")).0,
            "{style:?}: shared granted beside exclusive"
        );
        assert!(
            !outcome(&b.ask("write f")).0,
            "{style:?}: two exclusive holders"
        );
        a.ask("release 0")
            .contains("error")
            .then_some(())
            .expect("bad id is an error");
        assert_eq!(a.ask(&format!("release {w}")), "ok");

        b.must_lock("read f");
        c.must_lock("read f");
        assert!(
            !outcome(&a.ask("write f")).0,
            "{style:?}: exclusive granted beside shared"
        );
    }
}

#[test]
fn killed_holder_lets_a_waiter_proceed_promptly() {
    for style in STYLES {
        let share = share_with("f");
        let mut a = LockDriver::spawn(share.path(), &flags(style, "20000"));
        let mut b = LockDriver::spawn(share.path(), &flags(style, "20000"));
        a.must_lock("write f");
        b.send("write f");
        assert!(
            b.try_answer(Duration::from_millis(200)).is_none(),
            "waiter did not wait"
        );
        let killed = Instant::now();
        a.kill();
        let (granted, _) = outcome(&b.answer_within(ANSWER_BOUND));
        assert!(granted);
        let after_kill = killed.elapsed();
        eprintln!("{style:?}: waiter granted {after_kill:?} after the holder was killed");
        assert!(
            after_kill < Duration::from_secs(2),
            "waited {after_kill:?} after the kill"
        );
    }
}

#[test]
#[cfg_attr(
    windows,
    ignore = "Windows without POSIX delete semantics (and Wine) keeps a deleted file's name until its last handle closes, so it cannot be recreated while the waiter holds it open"
)]
fn waiter_ends_up_locking_the_file_now_at_the_path_after_delete_and_recreate() {
    for style in STYLES {
        for kind in ["read", "write"] {
            let share = share_with("f");
            let path = share.path().join("f");
            let mut a = LockDriver::spawn(share.path(), &flags(style, "20000"));
            let mut b = LockDriver::spawn(share.path(), &flags(style, "20000"));
            let held = a.must_lock("write f");
            b.send(&format!("{kind} f"));
            assert!(b.try_answer(Duration::from_millis(100)).is_none());
            // Another party deletes the object and a third recreates it while B waits.
            std::fs::remove_file(&path).expect("delete");
            std::fs::write(&path, b"{\"new\":1}").expect("recreate");
            let new_ino = nasgate::platform::identity(&std::fs::File::open(&path).expect("open"))
                .expect("identity")
                .ino;
            assert_eq!(a.ask(&format!("release {held}")), "ok");
            let answer = b.answer_within(ANSWER_BOUND);
            assert!(outcome(&answer).0, "{answer}");
            let id = answer.split_whitespace().nth(1).expect("id");
            assert_eq!(
                b.ask(&format!("inode {id}")),
                format!("ok {new_ino}"),
                "{style:?} {kind}: lock held on an unlinked file"
            );
        }
    }
}

#[test]
#[cfg_attr(
    windows,
    ignore = "intermittent under Wine (1 run in 3): the waiter sometimes locks the file deleted while it waited; cause not established"
)]
fn waiter_for_a_deleted_file_reports_not_found() {
    let share = share_with("f");
    let mut a = LockDriver::spawn(share.path(), &["--timeout-ms", "20000"]);
    let mut b = LockDriver::spawn(share.path(), &["--timeout-ms", "20000"]);
    let held = a.must_lock("write f");
    b.send("read f");
    assert!(b.try_answer(Duration::from_millis(100)).is_none());
    std::fs::remove_file(share.path().join("f")).expect("delete");
    assert_eq!(a.ask(&format!("release {held}")), "ok");
    assert_eq!(b.answer_within(ANSWER_BOUND), "notfound");
}

#[test]
fn writer_is_not_starved_by_continuous_overlapping_readers_of_two_processes() {
    for style in STYLES {
        let share = share_with("f");
        let mut a = LockDriver::spawn(share.path(), &flags(style, "10000"));
        let mut c = LockDriver::spawn(share.path(), &flags(style, "10000"));
        let mut b = LockDriver::spawn(share.path(), &flags(style, "8000"));
        // Four threads each in A and C hold 100 ms reads back to back, staggered, for 6 s:
        // at every instant several shared locks are held.
        a.send("readers f 4 100 6000");
        c.send("readers f 4 100 6000");
        assert_eq!(a.answer_within(ANSWER_BOUND), "started");
        assert_eq!(c.answer_within(ANSWER_BOUND), "started");
        // Let the readers build up their overlap before the writer arrives.
        assert!(b.ask("namespace") == "ok 0");
        std::thread::sleep(Duration::from_millis(500));
        let (granted, ms) = outcome(&b.ask("write f"));
        assert!(granted, "{style:?}: writer starved for {ms} ms");
        eprintln!("{style:?}: writer got the lock after {ms} ms under continuous readers");
        // Bound: lease (200 ms) + longest read in flight (100 ms) + scheduling slack.
        assert!(ms < 2000, "{style:?}: writer waited {ms} ms");
        assert_eq!(b.ask("release 1"), "ok");
        for d in [&mut a, &mut c] {
            let done = d.answer_within(ANSWER_BOUND);
            let reads: u64 = done
                .split_whitespace()
                .nth(1)
                .expect("count")
                .parse()
                .expect("n");
            assert!(reads > 20, "readers did not really read: {done}");
        }
    }
}

#[test]
fn timed_out_wait_returns_within_its_deadline_with_a_timeout() {
    for style in STYLES {
        let share = share_with("f");
        let mut a = LockDriver::spawn(share.path(), style);
        let mut b = LockDriver::spawn(share.path(), &flags(style, "500"));
        a.must_lock("write f");
        for kind in ["read", "write"] {
            let t = Instant::now();
            let (granted, ms) = outcome(&b.ask(&format!("{kind} f")));
            let took = t.elapsed();
            assert!(!granted);
            assert!(
                (500..800).contains(&ms),
                "{style:?} {kind}: timed out after {ms} ms"
            );
            assert!(took < Duration::from_millis(1500), "answer took {took:?}");
        }
    }
}

#[test]
fn closing_one_reader_keeps_the_other_readers_shared_lock() {
    for style in STYLES {
        let share = share_with("f");
        let mut a = LockDriver::spawn(share.path(), style);
        let mut b = LockDriver::spawn(share.path(), &flags(style, "300"));
        let first = a.must_lock("read f");
        let second = a.must_lock("read f");
        assert_eq!(
            a.ask("pooled"),
            "ok 1",
            "two readers should share one handle"
        );
        assert_eq!(a.ask(&format!("release {first}")), "ok");
        assert!(
            !outcome(&b.ask("write f")).0,
            "{style:?}: closing one reader dropped the other's lock"
        );
        assert_eq!(a.ask(&format!("release {second}")), "ok");
        assert_eq!(a.ask("pooled"), "ok 0");
        assert_eq!(a.ask("namespace"), "ok 0");
        b.must_lock("write f");
    }
}

#[test]
fn whole_file_locks_of_an_old_minio_exclude_ours_both_ways() {
    for style in STYLES {
        let share = share_with("f");
        let mut minio = LockDriver::spawn(share.path(), &["--timeout-ms", "300"]);
        let mut ours = LockDriver::spawn(share.path(), &flags(style, "300"));
        let held = minio.must_lock("raw f exclusive");
        assert!(!outcome(&ours.ask("read f")).0);
        assert!(!outcome(&ours.ask("write f")).0);
        assert_eq!(minio.ask(&format!("release {held}")), "ok");

        let held = minio.must_lock("raw f shared");
        let r = ours.must_lock("read f");
        assert_eq!(ours.ask(&format!("release {r}")), "ok");
        assert!(
            !outcome(&ours.ask("write f")).0,
            "{style:?}: writer beside an old reader"
        );
        assert_eq!(minio.ask(&format!("release {held}")), "ok");

        let w = ours.must_lock("write f");
        assert!(!outcome(&minio.ask("raw f shared")).0);
        assert_eq!(ours.ask(&format!("release {w}")), "ok");
    }
}

#[test]
#[cfg(unix)]
fn lock_files_outside_the_share_cannot_be_reached() {
    let outside = share_with("secret");
    let share = share_with("f");
    std::os::unix::fs::symlink(outside.path().join("secret"), share.path().join("link"))
        .expect("symlink");
    let mut a = LockDriver::spawn(share.path(), &["--timeout-ms", "300"]);
    for path in ["link", "../secret", "/etc/passwd"] {
        let answer = a.ask(&format!("write {path}"));
        assert!(
            answer.starts_with("error") || answer == "notfound",
            "{path}: {answer}"
        );
    }
}
