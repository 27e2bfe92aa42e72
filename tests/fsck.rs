//! `nasgate fsck` on a share with deliberate damage: every kind of damage is reported, the
//! repair fixes what it can while another instance is running, and a second run is clean.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::LockDriver;
use nasgate::lock::{LockConfig, Locks};
use nasgate::platform::Root;
use nasgate::store::{PutOptions, ReadConditions, Store, StoreConfig};

fn open(share: &std::path::Path) -> Store {
    let root = Arc::new(Root::at(share).unwrap());
    Store::open(
        Arc::new(Locks::new(root, &LockConfig::default())),
        StoreConfig::default(),
    )
    .unwrap()
}

fn fsck(share: &std::path::Path, flags: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nasgate"))
        .arg("fsck")
        .arg(share)
        .args(flags)
        .output()
        .expect("run fsck");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn fsck_reports_every_kind_of_damage_and_repair_leaves_a_clean_share() {
    let dir = tempfile::tempdir().unwrap();
    let share = dir.path();
    {
        let store = open(share);
        store.create_bucket("bkt").unwrap();
        for (k, body) in [
            ("good", &b"fine"[..]),
            ("truncated", b"meta will be cut"),
            ("orphan", b"data will vanish"),
            ("bitrot", b"0123456789"),
            ("grown", b"short"),
        ] {
            let opts = PutOptions {
                meta: [("content-type".to_string(), "text/x-k".to_string())].into(),
                ..Default::default()
            };
            store.put("bkt", k, &mut &body[..], opts).unwrap();
        }
        let up = store
            .create_upload("bkt", "old-upload", Default::default(), None)
            .unwrap();
        assert!(!up.is_empty());
    }
    let meta = |k: &str| share.join(".minio.sys/buckets/bkt").join(k).join("fs.json");
    let fs_json = std::fs::read(meta("truncated")).unwrap();
    std::fs::write(meta("truncated"), &fs_json[..fs_json.len() / 2]).unwrap();
    std::fs::remove_file(share.join("bkt/orphan")).unwrap();
    std::fs::write(share.join("bkt/dropped.txt"), b"put here by cp").unwrap();
    {
        // Same size, same mtime, different bytes: only hashing can tell.
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(share.join("bkt/bitrot"))
            .unwrap();
        let mtime = f.metadata().unwrap().modified().unwrap();
        f.seek(std::io::SeekFrom::Start(3)).unwrap();
        f.write_all(b"X").unwrap();
        f.set_modified(mtime).unwrap();
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(share.join("bkt/grown"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b" and longer"))
        .unwrap();
    // A dead instance's staging files, and a live one's.
    let mut dead = LockDriver::store(share, &[], &[]);
    assert_eq!(dead.ask("sweep"), "ok 0");
    dead.kill();
    let mut live = LockDriver::store(share, &["--classic"], &[]);
    assert_eq!(live.ask("sweep"), "ok 1");
    let tmp_dirs = || {
        std::fs::read_dir(share.join(".minio.sys/tmp"))
            .unwrap()
            .count()
    };
    // The sweep above removed the dead one; make a fresh corpse for fsck to find.
    let mut dead = LockDriver::store(share, &[], &[]);
    assert_eq!(dead.ask("sweep"), "ok 0");
    dead.kill();
    assert_eq!(tmp_dirs(), 2);

    let (code, json) = fsck(share, &["--json", "--upload-expiry", "0"]);
    assert_eq!(code, 1, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["problem"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    eprintln!("{found:#?}");
    let has = |p: &str, path: &str| found.iter().any(|(a, b)| a == p && b.contains(path));
    assert!(has("corrupt-metadata", "bkt/truncated"));
    assert!(has("missing-metadata", "bkt/dropped.txt"));
    assert!(has("orphaned-metadata", "orphan/fs.json"));
    assert!(has("etag-mismatch", "bkt/bitrot"));
    assert!(has("stale-metadata", "bkt/grown"));
    assert!(has("abandoned-upload", "multipart"));
    assert!(has("temp-debris", ".minio.sys/tmp/"));
    assert!(
        !found.iter().any(|(_, p)| p.ends_with("bkt/good")),
        "a healthy object was reported"
    );
    assert_eq!(found.len(), 7, "{found:?}");
    assert_eq!(report["objects"], 5);

    let (code, text) = fsck(share, &["--repair", "--upload-expiry", "0"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("7 problems, 7 repaired"), "{text}");
    assert_eq!(
        tmp_dirs(),
        1,
        "only the live instance's staging dir may remain"
    );
    let head = live.ask("head bkt grown");
    assert!(head.starts_with("ok ") && head.ends_with(" 16"), "{head}");

    let (code, text) = fsck(share, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 problems"), "{text}");
    let store = open(share);
    let info = store
        .head("bkt", "bitrot", &ReadConditions::default())
        .unwrap();
    let expected = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(b"012X456789"))
    };
    assert_eq!(info.etag, expected);
    assert_eq!(
        info.content_type(),
        "text/x-k",
        "repair kept the content type"
    );
    assert!(store
        .head("bkt", "orphan", &ReadConditions::default())
        .is_err());
    assert!(!share.join(".minio.sys/buckets/bkt/orphan").exists());
    live.send("quit");
    live.exit_within(Duration::from_secs(10));
}
