//! Several processes (OFD and classic locks mixed) PUT, GET, HEAD and DELETE the same few
//! keys at once; every read is checked to be one whole body whose MD5 is its ETag.

mod common;

use std::time::Duration;

use common::LockDriver;

#[test]
fn concurrent_writers_readers_and_deleters_in_three_processes_never_see_torn_objects() {
    let share = tempfile::tempdir().expect("tempdir");
    let mut drivers = [
        LockDriver::store(share.path(), &[], &[]),
        LockDriver::store(share.path(), &[], &[]),
        LockDriver::store(share.path(), &["--classic"], &[]),
    ];
    assert_eq!(drivers[0].ask("mb bkt"), "ok");
    for (i, d) in drivers.iter_mut().enumerate() {
        d.send(&format!("torture bkt 3 4000 {}", i + 1));
    }
    let mut total = 0;
    for d in drivers.iter_mut() {
        let done = d.answer_within(Duration::from_secs(60));
        let n: Vec<u64> = done
            .split_whitespace()
            .skip(1)
            .map(|w| w.parse().expect("number"))
            .collect();
        assert_eq!(n.len(), 4, "{done}");
        let (ops, torn, busy, errors) = (n[0], n[1], n[2], n[3]);
        eprintln!("{done}");
        assert_eq!(torn, 0, "torn reads: {done}");
        assert_eq!(errors, 0, "errors: {done}");
        assert_eq!(busy, 0, "lock waits timed out: {done}");
        assert!(ops > 50, "too little work to mean anything: {done}");
        total += ops;
    }
    eprintln!("{total} operations in 4 s across 3 processes");
    for k in 0..3 {
        let a = drivers[0].ask(&format!("get bkt hot/{k}"));
        assert!(a.starts_with("ok") || a == "nosuchkey", "{a}");
    }
}
