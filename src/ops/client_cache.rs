//! Client-side caches of a NAS mount that can break read-after-write across hosts.
//!
//! nasgate copes itself with what it can: every publish is a new file (rename), so caches keyed
//! by file (Gluster's quick-read, io-cache, read-ahead, the kernel page cache) never serve an
//! old version, and ESTALE from a lazily opened or replaced file is retried by path. What it
//! cannot cope with is a client that answers questions about *names* from a cache: lock, then
//! verify compares the locked file with the file now at the path, and a cached lookup or
//! cached attributes (link count) can say "still the same" about a file another host has
//! already replaced; and a client that acknowledges writes before the server has them
//! (write-behind, flush-behind) lets another host read a renamed file before its bytes.
//! Those are findings that fail `nasgate check`; the others are notes.

use std::path::Path;

use super::mounts::Mount;

/// One cache or mount option the operator should change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What is on, in the operator's words.
    pub what: String,
    /// The exact command or option that turns it off.
    pub fix: String,
    /// True when nasgate cannot keep read-after-write with it on (check fails).
    pub required: bool,
}

/// Gluster translators that cache, with the volume option that removes each and whether
/// nasgate needs it gone.
const GLUSTER_TRANSLATORS: [(&str, &str, bool); 6] = [
    ("md-cache", "performance.stat-prefetch", true),
    ("write-behind", "performance.write-behind", true),
    ("quick-read", "performance.quick-read", false),
    ("open-behind", "performance.open-behind", false),
    ("io-cache", "performance.io-cache", false),
    ("read-ahead", "performance.read-ahead", false),
];

/// Kernel FUSE options of a Gluster client mount nasgate needs (name, wanted value, required).
const GLUSTER_MOUNT_OPTIONS: [(&str, &str, bool); 3] = [
    ("attribute-timeout", "0", true),
    ("entry-timeout", "0", true),
    ("direct-io-mode", "enable", false),
];

/// What on mount `m` can serve another host's change late (empty: nothing known).
pub fn findings(m: &Mount) -> Vec<Finding> {
    match m.fstype.as_str() {
        "fuse.glusterfs" => gluster(m),
        _ => Vec::new(),
    }
}

/// Reads a Gluster client's active translator graph and command line from its `.meta` tree.
fn gluster(m: &Mount) -> Vec<Finding> {
    let volume = m
        .source
        .rsplit_once(":/")
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| "VOLUME".into());
    let meta = m.mount_point.join(".meta");
    let mut out = Vec::new();
    let translators = translator_names(&meta.join("graphs/active"));
    for (suffix, option, required) in GLUSTER_TRANSLATORS {
        if translators
            .iter()
            .any(|t| t.ends_with(&format!("-{suffix}")))
        {
            out.push(Finding {
                what: format!("client cache {suffix} is on (volume {volume})"),
                fix: format!("gluster volume set {volume} {option} off"),
                required,
            });
        }
    }
    let cmdline = match std::fs::read_to_string(meta.join("cmdline")) {
        Ok(c) => c,
        Err(e) => {
            out.push(Finding {
                what: format!("cannot read {} ({e})", meta.join("cmdline").display()),
                fix: "check the mount options by hand: attribute-timeout=0,entry-timeout=0".into(),
                required: false,
            });
            return out;
        }
    };
    let wanted: Vec<String> = GLUSTER_MOUNT_OPTIONS
        .iter()
        .map(|(name, value, _)| format!("{name}={value}"))
        .collect();
    for (name, value, required) in GLUSTER_MOUNT_OPTIONS {
        if !cmdline.contains(&format!("--{name}={value}")) {
            out.push(Finding {
                what: format!("mount option {name}={value} is not set"),
                fix: format!(
                    "mount -t glusterfs -o {} {} {}",
                    wanted.join(","),
                    m.source,
                    m.mount_point.display()
                ),
                required,
            });
        }
    }
    out
}

fn translator_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_filesystems_have_no_findings() {
        let m = Mount {
            mount_point: "/".into(),
            fstype: "ext4".into(),
            source: "/dev/sda1".into(),
            options: vec![],
        };
        assert!(findings(&m).is_empty());
    }
}
