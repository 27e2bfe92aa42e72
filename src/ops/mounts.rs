//! Which filesystem a share is on and whether its locks reach other hosts.
//!
//! NFS mounted with `nolock` or `local_lock=posix|all`, and SMB mounted with `nobrl`, keep
//! fcntl locks inside one host: every instance would believe it holds a lock that the other
//! hosts never see, and shared mode would silently stop being safe.

use std::path::{Path, PathBuf};

/// One mount, as /proc/self/mountinfo describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Filesystem type ("nfs4", "cifs", "ext4"...).
    pub fstype: String,
    /// What is mounted ("server:/export", "/dev/sda1").
    pub source: String,
    /// Per-mount and superblock options together.
    pub options: Vec<String>,
}

/// How safe a share's filesystem is for several hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Locks reach every host that mounts it.
    Shared(String),
    /// Fine for instances on this host; no other host can reach it.
    LocalOnly(String),
    /// Locks may not cross hosts; shared mode is not safe without checking.
    Doubtful(String),
    /// Locks stay on this host: running instances on several hosts would corrupt data.
    Unsafe(String),
}

impl Verdict {
    /// The explanation for the operator.
    pub fn message(&self) -> &str {
        match self {
            Verdict::Shared(m)
            | Verdict::LocalOnly(m)
            | Verdict::Doubtful(m)
            | Verdict::Unsafe(m) => m,
        }
    }
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the text of /proc/self/mountinfo.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let mut options: Vec<String> = l.get(5)?.split(',').map(str::to_string).collect();
            options.extend(r.get(2).unwrap_or(&"").split(',').map(str::to_string));
            Some(Mount {
                mount_point: PathBuf::from(unescape(l.get(4)?)),
                fstype: r.first()?.to_string(),
                source: unescape(r.get(1).unwrap_or(&"")),
                options,
            })
        })
        .collect()
}

/// The mount holding `path` (canonicalised): the longest mount point that is a prefix.
pub fn mount_of_in(mounts: &[Mount], path: &Path) -> Option<Mount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
        .cloned()
}

/// The mount holding `path` on this host.
pub fn mount_of(path: &Path) -> std::io::Result<Option<Mount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let path = std::fs::canonicalize(path)?;
    Ok(mount_of_in(&parse_mountinfo(&text), &path))
}

/// Whether `path` is itself a mount point (the NAS is mounted there, not just an empty
/// directory on the local disk).
pub fn is_mount_point(path: &Path) -> std::io::Result<bool> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let path = std::fs::canonicalize(path)?;
    Ok(parse_mountinfo(&text).iter().any(|m| m.mount_point == path))
}

/// Judges whether fcntl locks on `m` reach other hosts.
pub fn assess(m: &Mount) -> Verdict {
    let has = |o: &str| m.options.iter().any(|x| x == o);
    let local_lock = m
        .options
        .iter()
        .find_map(|o| o.strip_prefix("local_lock="))
        .unwrap_or("none");
    match m.fstype.as_str() {
        "nfs" | "nfs4" => {
            if has("nolock") {
                Verdict::Unsafe(format!("NFS mount {} uses 'nolock': locks stay on this host. Remount without nolock.", m.source))
            } else if matches!(local_lock, "all" | "posix") {
                Verdict::Unsafe(format!("NFS mount {} uses 'local_lock={local_lock}': fcntl locks stay on this host. Remount with local_lock=none.", m.source))
            } else {
                Verdict::Shared(format!("NFS ({}) with network locks", m.fstype))
            }
        }
        "cifs" | "smb3" => {
            if has("nobrl") {
                Verdict::Unsafe(format!("SMB mount {} uses 'nobrl': byte-range locks stay on this host. Remount without nobrl.", m.source))
            } else {
                Verdict::Shared("SMB/CIFS with byte-range locks sent to the server".into())
            }
        }
        "ceph" | "fuse.ceph-fuse" | "fuse.glusterfs" | "glusterfs" | "gfs2" | "ocfs2" | "lustre" | "gpfs" => {
            Verdict::Shared(format!("{} (cluster filesystem with shared POSIX locks)", m.fstype))
        }
        t if t.starts_with("fuse") => Verdict::Doubtful(format!(
            "{t}: a FUSE filesystem may keep locks local; run `nasgate check` on two hosts at once to verify"
        )),
        t => Verdict::LocalOnly(format!(
            "{t} is a local filesystem: safe for instances on this host; other hosts cannot share it"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /mnt/nas rw,relatime shared:20 - nfs4 filer:/export rw,vers=4.2,local_lock=none,addr=10.0.0.2
41 22 0:36 / /mnt/old rw,relatime - nfs filer:/old rw,vers=3,nolock,local_lock=all
42 22 0:37 / /mnt/smb rw - cifs //srv/share rw,nobrl
43 22 0:38 / /mnt/my\\040nas rw - nfs4 filer:/x rw,local_lock=posix
44 22 0:39 / /mnt/gl rw - fuse.glusterfs gl:/vol rw
";

    #[test]
    fn mountinfo_parses_and_the_longest_prefix_wins() {
        let mounts = parse_mountinfo(SAMPLE);
        assert_eq!(mounts.len(), 6);
        let m = mount_of_in(&mounts, Path::new("/mnt/nas/data")).unwrap();
        assert_eq!(m.fstype, "nfs4");
        assert_eq!(m.source, "filer:/export");
        assert_eq!(
            mount_of_in(&mounts, Path::new("/home/x")).unwrap().fstype,
            "ext4"
        );
        assert_eq!(
            mount_of_in(&mounts, Path::new("/mnt/my nas/b"))
                .unwrap()
                .source,
            "filer:/x"
        );
    }

    #[test]
    fn host_local_locks_are_unsafe() {
        let mounts = parse_mountinfo(SAMPLE);
        let verdict = |p: &str| assess(&mount_of_in(&mounts, Path::new(p)).unwrap());
        assert!(matches!(verdict("/mnt/nas"), Verdict::Shared(_)));
        assert!(matches!(verdict("/mnt/old"), Verdict::Unsafe(m) if m.contains("nolock")));
        assert!(matches!(verdict("/mnt/smb"), Verdict::Unsafe(m) if m.contains("nobrl")));
        assert!(
            matches!(verdict("/mnt/my nas"), Verdict::Unsafe(m) if m.contains("local_lock=posix"))
        );
        assert!(matches!(verdict("/mnt/gl"), Verdict::Shared(_)));
        assert!(matches!(verdict("/"), Verdict::LocalOnly(_)));
    }
}
