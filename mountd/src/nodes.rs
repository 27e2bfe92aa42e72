//! The mount's node table: which node id names which path, kept by (parent, name) so a
//! rename moves one entry and everything below follows.

use std::collections::HashMap;
use std::time::SystemTime;

/// The root's node id (FUSE's fixed root inode).
pub const ROOT: u64 = 1;

/// What identifies the bytes the kernel may have cached for a file.
pub type Version = (u64, SystemTime, u64);

#[derive(Debug)]
struct Node {
    parent: u64,
    name: String,
    /// Kernel references (lookups not yet forgotten).
    lookups: u64,
    /// Open handles.
    open: u32,
    /// Removed or replaced by a rename while still referenced: it names no path any more.
    detached: bool,
    /// The version whose pages the kernel may hold from an earlier open.
    cached: Option<Version>,
}

/// Node ids and their names.
#[derive(Debug)]
pub struct Nodes {
    by_id: HashMap<u64, Node>,
    by_name: HashMap<(u64, String), u64>,
    next: u64,
}

impl Nodes {
    /// A table holding only the root.
    pub fn new() -> Nodes {
        let mut by_id = HashMap::new();
        by_id.insert(
            ROOT,
            Node {
                parent: ROOT,
                name: String::new(),
                lookups: 1,
                open: 0,
                detached: false,
                cached: None,
            },
        );
        Nodes {
            by_id,
            by_name: HashMap::new(),
            next: ROOT + 1,
        }
    }

    /// The path of node `id` ("" for the root), or None if it names nothing any more.
    pub fn path(&self, id: u64) -> Option<String> {
        let mut parts = Vec::new();
        let mut at = id;
        while at != ROOT {
            let n = self.by_id.get(&at)?;
            if n.detached {
                return None;
            }
            parts.push(n.name.as_str());
            at = n.parent;
        }
        parts.reverse();
        Some(parts.join("/"))
    }

    /// The path of `name` in directory `parent`.
    pub fn child_path(&self, parent: u64, name: &str) -> Option<String> {
        let p = self.path(parent)?;
        Some(if p.is_empty() {
            name.to_string()
        } else {
            format!("{p}/{name}")
        })
    }

    /// The node of `name` in `parent`, if the kernel knows one.
    pub fn find(&self, parent: u64, name: &str) -> Option<u64> {
        self.by_name.get(&(parent, name.to_string())).copied()
    }

    /// The node for `name` in `parent`, created if needed, with one more kernel reference.
    pub fn lookup(&mut self, parent: u64, name: &str) -> u64 {
        if let Some(id) = self.find(parent, name) {
            if let Some(n) = self.by_id.get_mut(&id) {
                n.lookups += 1;
            }
            return id;
        }
        let id = self.next;
        self.next += 1;
        self.by_id.insert(
            id,
            Node {
                parent,
                name: name.to_string(),
                lookups: 1,
                open: 0,
                detached: false,
                cached: None,
            },
        );
        self.by_name.insert((parent, name.to_string()), id);
        id
    }

    /// The kernel dropped `n` references to `id`.
    pub fn forget(&mut self, id: u64, n: u64) {
        if id == ROOT {
            return;
        }
        if let Some(node) = self.by_id.get_mut(&id) {
            node.lookups = node.lookups.saturating_sub(n);
            self.collect(id);
        }
    }

    /// One more (or fewer) open handle on `id`.
    pub fn opened(&mut self, id: u64, delta: i32) {
        if let Some(node) = self.by_id.get_mut(&id) {
            node.open = node.open.saturating_add_signed(delta);
            self.collect(id);
        }
    }

    fn collect(&mut self, id: u64) {
        let Some(node) = self.by_id.get(&id) else {
            return;
        };
        if node.lookups == 0 && node.open == 0 {
            let key = (node.parent, node.name.clone());
            if self.by_name.get(&key) == Some(&id) {
                self.by_name.remove(&key);
            }
            self.by_id.remove(&id);
        }
    }

    /// `name` in `parent` is gone (unlinked, or replaced by a rename).
    pub fn detach(&mut self, parent: u64, name: &str) {
        if let Some(id) = self.by_name.remove(&(parent, name.to_string())) {
            if let Some(n) = self.by_id.get_mut(&id) {
                n.detached = true;
            }
        }
    }

    /// `name` in `parent` moved to `new_name` in `new_parent` (whatever was there is gone).
    pub fn rename(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) {
        if (parent, name) == (new_parent, new_name) {
            return;
        }
        self.detach(new_parent, new_name);
        if let Some(id) = self.by_name.remove(&(parent, name.to_string())) {
            if let Some(n) = self.by_id.get_mut(&id) {
                n.parent = new_parent;
                n.name = new_name.to_string();
            }
            self.by_name.insert((new_parent, new_name.to_string()), id);
        }
    }

    /// Records the version the kernel now caches for `id`; true if it had that one already.
    pub fn cache(&mut self, id: u64, version: Version) -> bool {
        match self.by_id.get_mut(&id) {
            Some(n) => n.cached.replace(version) == Some(version),
            None => false,
        }
    }

    /// Forgets which version the kernel caches for `id`: its pages may be changed by writes.
    pub fn uncache(&mut self, id: u64) {
        if let Some(n) = self.by_id.get_mut(&id) {
            n.cached = None;
        }
    }

    /// The name of `id` in its parent.
    pub fn name(&self, id: u64) -> Option<&str> {
        self.by_id.get(&id).map(|n| n.name.as_str())
    }

    /// The parent of `id`.
    pub fn parent(&self, id: u64) -> u64 {
        self.by_id.get(&id).map_or(ROOT, |n| n.parent)
    }

    /// Whether only the root is left.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_id.len() <= 1
    }
}

impl Default for Nodes {
    fn default() -> Self {
        Nodes::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_renames_and_nodes_are_collected() {
        let mut t = Nodes::new();
        let b = t.lookup(ROOT, "bkt");
        let d = t.lookup(b, "dir");
        let f = t.lookup(d, "f");
        assert_eq!(t.path(f).as_deref(), Some("bkt/dir/f"));
        t.rename(b, "dir", b, "moved");
        assert_eq!(t.path(f).as_deref(), Some("bkt/moved/f"));
        t.detach(d, "f");
        assert_eq!(t.path(f), None);
        t.forget(f, 1);
        t.forget(d, 1);
        t.forget(b, 1);
        assert!(t.is_empty());
    }
}
