//! Crashes at every step of a publish or delete: a process aborted there (as SIGKILL or a
//! power cut would stop it) leaves each object wholly old or wholly new, with metadata that
//! matches its data, and its staging debris is swept by the next instance.

mod common;

use std::time::Duration;

use common::{md5_hex, LockDriver, ANSWER_BOUND};
use nasgate::debug::store::body;

fn tmp_dirs(share: &std::path::Path) -> usize {
    std::fs::read_dir(share.join(".minio.sys/tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_publish_killed_at_any_step_leaves_the_object_wholly_old_or_wholly_new() {
    let old = md5_hex(&body(1, 3000));
    let new = md5_hex(&body(2, 5000));
    for (point, expect_new) in [
        ("publish.locked", false),
        ("publish.data-placed", true),
        ("publish.meta-placed", true),
    ] {
        let share = tempfile::tempdir().expect("tempdir");
        let mut a = LockDriver::store(share.path(), &[], &[]);
        assert_eq!(a.ask("mb bkt"), "ok");
        assert_eq!(a.ask("put bkt k 3000 1"), format!("ok {old} 3000"));

        let mut crashing = LockDriver::store(share.path(), &[], &[("NASGATE_CRASH_AT", point)]);
        crashing.send("put bkt k 5000 2");
        let status = crashing.exit_within(ANSWER_BOUND);
        assert!(
            !status.success(),
            "{point}: the crash point was not reached"
        );

        let answer = a.ask("get bkt k");
        let expected = if expect_new {
            format!("ok {new} 5000")
        } else {
            format!("ok {old} 3000")
        };
        assert_eq!(answer, expected, "after a crash at {point}");
        assert_eq!(a.ask("head bkt k"), expected);
        // The stale metadata was rebuilt from the data, so the record now matches.
        let fs_json =
            std::fs::read_to_string(share.path().join(".minio.sys/buckets/bkt/k/fs.json"))
                .expect("fs.json");
        assert!(
            fs_json.contains(if expect_new { &new } else { &old }),
            "{point}: {fs_json}"
        );

        assert_eq!(
            tmp_dirs(share.path()),
            2,
            "the dead instance's staging dir is there"
        );
        assert_eq!(a.ask("sweep"), "ok 1");
        assert_eq!(
            tmp_dirs(share.path()),
            1,
            "{point}: debris left after the sweep"
        );
    }
}

#[test]
fn a_delete_killed_between_data_and_metadata_leaves_the_object_deleted() {
    let share = tempfile::tempdir().expect("tempdir");
    let mut a = LockDriver::store(share.path(), &[], &[]);
    assert_eq!(a.ask("mb bkt"), "ok");
    assert!(a.ask("put bkt d/k 100 1").starts_with("ok"));
    let mut crashing = LockDriver::store(
        share.path(),
        &[],
        &[("NASGATE_CRASH_AT", "delete.data-removed")],
    );
    crashing.send("rm bkt d/k");
    assert!(!crashing.exit_within(ANSWER_BOUND).success());
    assert_eq!(a.ask("get bkt d/k"), "nosuchkey");
    let listing = a.ask("list bkt - - - 100");
    // The crash came before pruning, so the emptied directory `d` is left; by MinIO's rule
    // an empty directory lists as the directory object `d/` until fsck or a delete prunes it.
    assert!(!listing.contains("d/k"), "{listing}");
    // Writing the key again works on top of the orphaned metadata.
    assert!(a.ask("put bkt d/k 200 3").starts_with("ok"));
    assert!(a.ask("get bkt d/k").ends_with(" 200"));
}

#[test]
fn a_live_instances_staging_directory_survives_a_sweep() {
    let share = tempfile::tempdir().expect("tempdir");
    let mut a = LockDriver::store(share.path(), &[], &[]);
    let mut b = LockDriver::store(share.path(), &["--classic"], &[]);
    assert_eq!(a.ask("mb bkt"), "ok");
    // B answering proves its store (and staging directory) is open.
    assert_eq!(b.ask("mb bkt2"), "ok");
    assert_eq!(tmp_dirs(share.path()), 2);
    assert_eq!(a.ask("sweep"), "ok 0");
    assert_eq!(b.ask("sweep"), "ok 0");
    assert_eq!(tmp_dirs(share.path()), 2);
    b.kill();
    assert_eq!(a.ask("sweep"), "ok 1");
    assert_eq!(tmp_dirs(share.path()), 1);
    a.send("quit");
    a.exit_within(Duration::from_secs(10));
    assert_eq!(
        tmp_dirs(share.path()),
        0,
        "a clean stop leaves no staging dir"
    );
}
