//! Symlinks already checked to stay inside the tree, so that looking one up again does not
//! read it again: reading a link is an access, and the share's relatime would then move the
//! access time a tool has just set on the link (`touch -h`, utimensat AT_SYMLINK_NOFOLLOW).
//!
//! A verdict is keyed by the link's path and its identity on the share (device, inode,
//! status-change time, size). A link's target never changes while its inode lives, so the
//! same key means the same target; a new link at that path has a new identity, a renamed
//! one a new path. The memo only decides whether a lookup shows the link: `read_link`
//! checks the target it returns every time, so a stale verdict can never hand a way out of
//! the tree to the kernel.

use std::collections::HashSet;

use crate::platform::Attr;

/// Most verdicts kept; past it the memo starts over (a lookup then reads the link again).
const CAPACITY: usize = 4096;

/// One link as it stands on the share.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct LinkKey {
    path: String,
    dev: u64,
    ino: u64,
    ctime_ns: i128,
    size: u64,
}

impl LinkKey {
    /// The key of the link at `path` with attributes `a`.
    pub(super) fn of(path: &str, a: &Attr) -> LinkKey {
        LinkKey {
            path: path.to_string(),
            dev: a.stat.id.dev,
            ino: a.stat.id.ino,
            ctime_ns: a.ctime_ns,
            size: a.stat.size,
        }
    }
}

/// Links known to stay inside the tree.
#[derive(Debug, Default)]
pub(super) struct Links {
    inside: HashSet<LinkKey>,
}

impl Links {
    /// Whether the link was seen, as it is now, to stay inside.
    pub(super) fn known_inside(&self, key: &LinkKey) -> bool {
        self.inside.contains(key)
    }

    /// Records that the link stays inside.
    pub(super) fn remember(&mut self, key: LinkKey) {
        if self.inside.len() >= CAPACITY {
            self.inside.clear();
        }
        self.inside.insert(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{FileId, FileKind, Stat};

    fn attr(ino: u64, ctime_ns: i128) -> Attr {
        Attr {
            stat: Stat {
                size: 5,
                mtime_ns: 0,
                id: FileId {
                    dev: 1,
                    ino,
                    nlink: 1,
                },
                kind: FileKind::Other,
            },
            symlink: true,
            mode: 0o777,
            uid: 0,
            gid: 0,
            blocks: 0,
            atime_ns: 0,
            ctime_ns,
        }
    }

    #[test]
    fn a_verdict_holds_only_for_the_same_link_at_the_same_path() {
        let mut links = Links::default();
        links.remember(LinkKey::of("b/l", &attr(7, 100)));
        assert!(links.known_inside(&LinkKey::of("b/l", &attr(7, 100))));
        assert!(!links.known_inside(&LinkKey::of("b/l", &attr(8, 100))));
        assert!(!links.known_inside(&LinkKey::of("b/l", &attr(7, 101))));
        assert!(!links.known_inside(&LinkKey::of("b/m", &attr(7, 100))));
    }

    #[test]
    fn the_memo_is_bounded() {
        let mut links = Links::default();
        for i in 0..(CAPACITY as u64 * 3) {
            links.remember(LinkKey::of("b/l", &attr(i, 0)));
            assert!(links.inside.len() <= CAPACITY);
        }
    }
}
