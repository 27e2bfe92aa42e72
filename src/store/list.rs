//! Paged S3 listing (`ListObjects` / `ListObjectsV2`) over one bucket's directory tree.
//!
//! Layout (`MinIO` "FS mode"): key `a/b/c` is the file `<bucket>/a/b/c`; an empty directory
//! `<bucket>/x/d` is the directory object `x/d/`; a non-empty directory is no object.
//!
//! S3 orders keys by the plain bytes of the whole key (`a-b` < `a/c` < `a0`, `a/` < `a/b`).
//! A depth-first walk yields exactly that order when each directory's entries are sorted by
//! their sort key: `name` for a file, `name + "/"` for a directory. Why: a file entry stands for
//! the single key `P + name`, a directory entry for keys that all start with `P + name + "/"`.
//! Since names never contain '/', one sort key can be a proper prefix of another only if the
//! shorter one is a file, whose lone key then sorts below everything the longer entry stands
//! for; any other two sort keys differ at some byte, and so do all keys they stand for. So the
//! entries' key ranges never interleave and follow the order of their sort keys.

use std::io;

/// Kind of a directory entry as the lister needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file: the object whose key is its path.
    File,
    /// A directory: holds the keys below it, or is the directory object `path/` when empty.
    Dir,
}

/// One entry of a directory of the bucket tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// A single path component (never empty, never containing '/', never `.` or `..`).
    pub name: String,
    /// Whether the entry is a file or a directory.
    pub kind: EntryKind,
}

/// Read access to a bucket's directory tree (the store implements it over the share).
pub trait Tree {
    /// Entries of directory `dir` (bucket-relative, "" = root, no outer '/'), in any order.
    ///
    /// Names that must stay hidden are already filtered out by the implementation. A directory
    /// that vanished (ENOENT/ENOTDIR) may be reported as `io::ErrorKind::NotFound`: the lister then
    /// treats it as empty-and-gone (no entries, not a directory object) because concurrent
    /// deletes happen.
    ///
    /// The lister only asks for directories it saw as entries, except for the directory named by
    /// the client's prefix (`foo/bar` for prefix `foo/bar/x`): it rejects empty, `.` and `..`
    /// components itself, but an implementation with hidden names must answer `NotFound` for a
    /// path through a hidden directory, or its contents leak.
    ///
    /// # Errors
    ///
    /// Any I/O error reading the directory; `NotFound` means the directory is gone.
    fn entries(&self, dir: &str) -> io::Result<Vec<DirEntry>>;
}

/// What to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery<'a> {
    /// Only keys starting with this string are listed (any string, not only whole directories).
    pub prefix: &'a str,
    /// Keys whose rest after the prefix contains this string roll up (`Some("")` counts as `None`).
    pub delimiter: Option<&'a str>,
    /// Exclusive lower bound for keys and common prefixes (V1 marker, V2 start-after/continuation).
    pub start_after: Option<&'a str>,
    /// Maximum number of keys plus common prefixes in the page.
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Object keys of the page, ascending by bytes.
    pub keys: Vec<String>,
    /// Common prefixes of the page, ascending by bytes (each ends with the delimiter).
    pub common_prefixes: Vec<String>,
    /// Whether at least one more item (key or common prefix) follows this page.
    pub is_truncated: bool,
    /// The page's last item (key or common prefix) when truncated: the next page's `start_after`.
    pub next_start_after: Option<String>,
}

/// Lists one page in S3 order.
///
/// Keys and common prefixes form one byte-ordered sequence of which at most `max_keys` items
/// are returned; one more item is looked up to decide `is_truncated`. A common prefix that is
/// `<= start_after` is skipped with all its keys, as S3 does.
///
/// `max_keys == 0` yields an empty page whose `is_truncated` tells whether any item exists,
/// with `next_start_after == None` (resume with the same `start_after`). AWS itself answers
/// `IsTruncated=false` for `max-keys=0`, so the HTTP layer forces false if it wants that.
///
/// # Errors
///
/// The first error of [`Tree::entries`] other than `NotFound` (a vanished directory is skipped).
pub fn list_page(tree: &impl Tree, q: &ListQuery) -> io::Result<ListPage> {
    let mut page = ListPage::default();
    let Some(mut walk) = Walk::start(tree, q)? else {
        return Ok(page);
    };
    while page.keys.len() + page.common_prefixes.len() < q.max_keys {
        match walk.next_item()? {
            Some(Item::Key(k)) => page.keys.push(k),
            Some(Item::Prefix(p)) => page.common_prefixes.push(p),
            None => return Ok(page),
        }
    }
    page.is_truncated = walk.next_item()?.is_some();
    if page.is_truncated {
        // Both lists ascend and merge into one ascending sequence: the larger tail is last.
        page.next_start_after = page.keys.last().max(page.common_prefixes.last()).cloned();
    }
    Ok(page)
}

/// An item of the merged listing sequence.
enum Item {
    Key(String),
    Prefix(String),
}

/// One directory being walked: its sorted entry sort keys and where `Walk::path` ends for it.
struct Frame {
    /// Entry names, directories with '/' appended, ascending by bytes (the S3 order rule).
    names: Vec<String>,
    /// Index of the next entry to visit.
    next: usize,
    /// Length of the directory's key prefix (`"dir/"`, or 0 for the root) in `Walk::path`.
    base: usize,
}

/// A lazy depth-first walk producing the items of one query in S3 order.
struct Walk<'t, T: Tree> {
    tree: &'t T,
    prefix_len: usize,
    delimiter: Option<&'t str>,
    start_after: Option<&'t str>,
    /// Key (file) or sort key (directory, with trailing '/') of the current entry; shared by all
    /// frames so that visiting an entry allocates nothing.
    path: String,
    stack: Vec<Frame>,
    /// The start directory's own object (`prefix` ends with '/' and names an empty directory).
    pending: Option<String>,
}

impl<'t, T: Tree> Walk<'t, T> {
    /// Reads the directory the prefix determines; `None` when no item can exist.
    fn start(tree: &'t T, q: &ListQuery<'t>) -> io::Result<Option<Self>> {
        let prefix = q.prefix;
        if let Some(sa) = q.start_after {
            // Every item starts with the prefix, so all of them sort below such a start_after.
            if sa > prefix && !sa.starts_with(prefix) {
                return Ok(None);
            }
        }
        let (dir, filter) = match prefix.rfind('/') {
            Some(i) => (&prefix[..i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        // No key has an empty, `.` or `..` component (nor starts with '/'), and asking the tree
        // for such a path could leave the bucket.
        if prefix.contains('/') && !dir.split('/').all(valid_name) {
            return Ok(None);
        }
        let Some(names) = read_sorted(tree, dir, filter)? else {
            return Ok(None);
        };
        let base = prefix.len() - filter.len();
        let mut walk = Walk {
            tree,
            prefix_len: prefix.len(),
            delimiter: q.delimiter.filter(|d| !d.is_empty()),
            start_after: q.start_after,
            path: String::with_capacity(base + 64),
            stack: Vec::new(),
            pending: None,
        };
        walk.path.push_str(&prefix[..base]);
        if names.is_empty() {
            // Emptiness before the name filter is what counts, but only an empty filter can
            // match the directory's own key, and then nothing was filtered.
            if !dir.is_empty() && filter.is_empty() && is_after(walk.start_after, prefix) {
                walk.pending = Some(prefix.to_owned());
            }
        } else {
            walk.push_frame(names);
        }
        Ok(Some(walk))
    }

    /// Enters the directory whose key prefix is `self.path`, past entries wholly `<= start_after`.
    fn push_frame(&mut self, names: Vec<String>) {
        // Only a start_after below this directory can cut into it: one that does not start with
        // the directory's prefix sorts before all of it (else the directory would not be entered).
        let next = match self
            .start_after
            .and_then(|sa| sa.strip_prefix(self.path.as_str()))
        {
            Some(rest) => names.partition_point(|n| entirely_not_after(n, rest)),
            None => 0,
        };
        self.stack.push(Frame {
            names,
            next,
            base: self.path.len(),
        });
    }

    /// The next item after `start_after` in S3 order, reading directories only as needed.
    fn next_item(&mut self) -> io::Result<Option<Item>> {
        if let Some(key) = self.pending.take() {
            return Ok(Some(Item::Key(key)));
        }
        loop {
            let Some(frame) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(name) = frame.names.get(frame.next) else {
                self.stack.pop();
                continue;
            };
            frame.next += 1;
            self.path.truncate(frame.base);
            self.path.push_str(name);
            let is_dir = name.ends_with('/');

            if let Some(end) = rollup_end(&self.path, self.prefix_len, self.delimiter) {
                // The common prefix always reaches into this entry's name, and the following
                // entries sharing that stretch roll into the same prefix: skip them unread.
                let shared = &self.path[frame.base..end];
                frame.next += frame.names[frame.next..].partition_point(|n| n.starts_with(shared));
                let cp = &self.path[..end];
                if is_after(self.start_after, cp) {
                    return Ok(Some(Item::Prefix(cp.to_owned())));
                }
                continue;
            }
            if is_dir {
                // No delimiter in sight: the directory's keys need a look inside, and only an
                // empty directory is an object itself (its key is `self.path`).
                let dir = &self.path[..self.path.len() - 1];
                let Some(names) = read_sorted(self.tree, dir, "")? else {
                    continue;
                };
                if !names.is_empty() {
                    self.push_frame(names);
                    continue;
                }
            }
            if is_after(self.start_after, &self.path) {
                return Ok(Some(Item::Key(self.path.clone())));
            }
        }
    }
}

/// Reads `dir` into sort keys (directories get a '/' appended), keeping names that start with
/// `filter`, ascending by bytes; `None` if the directory is gone.
fn read_sorted<T: Tree>(tree: &T, dir: &str, filter: &str) -> io::Result<Option<Vec<String>>> {
    let entries = match tree.entries(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut names: Vec<String> = entries
        .into_iter()
        // A bad name would break the ordering argument or point outside the directory.
        .filter(|e| valid_name(&e.name) && e.name.starts_with(filter))
        .map(|e| match e.kind {
            EntryKind::File => e.name,
            EntryKind::Dir => {
                let mut n = e.name;
                n.push('/');
                n
            }
        })
        .collect();
    names.sort_unstable();
    Ok(Some(names))
}

/// Whether `name` can be one path component of a key.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

/// Whether the item `s` lies after the exclusive bound.
fn is_after(start_after: Option<&str>, s: &str) -> bool {
    start_after.is_none_or(|sa| s > sa)
}

/// Whether every key of the entry with sort key `name` is `<= rest` (both relative to the same
/// directory); monotone over sorted entries, which makes the skip a binary search.
fn entirely_not_after(name: &str, rest: &str) -> bool {
    // A directory whose prefix starts `rest` may still hold keys beyond it.
    name <= rest && !(name.ends_with('/') && rest.starts_with(name))
}

/// End of the common prefix `key` rolls up into, if the part after the prefix holds the delimiter.
/// For a directory sort key (trailing '/') a hit means all keys below roll into that same prefix.
fn rollup_end(key: &str, prefix_len: usize, delimiter: Option<&str>) -> Option<usize> {
    let d = delimiter?;
    key[prefix_len..].find(d).map(|i| prefix_len + i + d.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// In-memory bucket tree that logs every directory read.
    #[derive(Debug, Default)]
    struct MemTree {
        nodes: BTreeMap<String, EntryKind>,
        reads: RefCell<Vec<String>>,
        /// Directories that report NotFound as if deleted concurrently.
        gone: BTreeSet<String>,
        /// Directories that fail with PermissionDenied.
        denied: BTreeSet<String>,
    }

    impl MemTree {
        fn new(files: &[&str], dirs: &[&str]) -> Self {
            let mut t = MemTree::default();
            for f in files {
                assert!(t.insert(f, EntryKind::File), "bad file {f}");
            }
            for d in dirs {
                assert!(t.insert(d, EntryKind::Dir), "bad dir {d}");
            }
            t
        }

        /// Adds a node and its parent directories; false (no change) if the tree would be invalid.
        fn insert(&mut self, path: &str, kind: EntryKind) -> bool {
            if !path.split('/').all(valid_name) {
                return false;
            }
            let ancestors: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
            if ancestors
                .iter()
                .any(|a| self.nodes.get(*a) == Some(&EntryKind::File))
            {
                return false;
            }
            if let Some(k) = self.nodes.get(path) {
                return *k == kind;
            }
            for a in ancestors {
                self.nodes.insert(a.to_owned(), EntryKind::Dir);
            }
            self.nodes.insert(path.to_owned(), kind);
            true
        }

        fn children(&self, dir: &str) -> Vec<DirEntry> {
            let base = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            self.nodes
                .range(base.clone()..)
                .take_while(|(p, _)| p.starts_with(&base))
                .filter(|(p, _)| !p[base.len()..].contains('/'))
                .map(|(p, k)| DirEntry {
                    name: p[base.len()..].to_owned(),
                    kind: *k,
                })
                .collect()
        }

        /// All object keys, ascending by bytes (brute force, from the node set).
        fn all_keys(&self) -> Vec<String> {
            let mut keys: Vec<String> = self
                .nodes
                .iter()
                .filter_map(|(p, k)| match k {
                    EntryKind::File => Some(p.clone()),
                    EntryKind::Dir if self.children(p).is_empty() => Some(format!("{p}/")),
                    EntryKind::Dir => None,
                })
                .collect();
            keys.sort();
            keys
        }

        fn take_reads(&self) -> Vec<String> {
            std::mem::take(&mut *self.reads.borrow_mut())
        }
    }

    impl Tree for MemTree {
        fn entries(&self, dir: &str) -> io::Result<Vec<DirEntry>> {
            self.reads.borrow_mut().push(dir.to_owned());
            if self.gone.contains(dir) {
                return Err(io::ErrorKind::NotFound.into());
            }
            if self.denied.contains(dir) {
                return Err(io::ErrorKind::PermissionDenied.into());
            }
            if !dir.is_empty() && self.nodes.get(dir) != Some(&EntryKind::Dir) {
                return Err(io::ErrorKind::NotFound.into());
            }
            let mut v = self.children(dir);
            // "Any order": hand them out reversed so the lister must sort.
            v.reverse();
            Ok(v)
        }
    }

    /// Brute force: every item (key or common prefix) after start_after, ascending, no page limit.
    fn model_items(keys: &[String], q: &ListQuery) -> Vec<(String, bool)> {
        let mut items = BTreeMap::new();
        for k in keys.iter().filter(|k| k.starts_with(q.prefix)) {
            let rest = &k[q.prefix.len()..];
            match q.delimiter.filter(|d| !d.is_empty()) {
                Some(d) if rest.contains(d) => {
                    let i = rest.find(d).unwrap();
                    items.insert(k[..q.prefix.len() + i + d.len()].to_owned(), true);
                }
                _ => {
                    items.insert(k.clone(), false);
                }
            }
        }
        items
            .into_iter()
            .filter(|(s, _)| q.start_after.is_none_or(|sa| s.as_str() > sa))
            .collect()
    }

    fn model_page(keys: &[String], q: &ListQuery) -> ListPage {
        let items = model_items(keys, q);
        let mut page = ListPage {
            is_truncated: items.len() > q.max_keys,
            ..ListPage::default()
        };
        for (s, is_prefix) in items.iter().take(q.max_keys) {
            if *is_prefix {
                page.common_prefixes.push(s.clone());
            } else {
                page.keys.push(s.clone());
            }
        }
        if page.is_truncated && q.max_keys > 0 {
            page.next_start_after = Some(items[q.max_keys - 1].0.clone());
        }
        page
    }

    fn merged(page: &ListPage) -> Vec<(String, bool)> {
        let mut v: Vec<(String, bool)> = page
            .keys
            .iter()
            .map(|k| (k.clone(), false))
            .chain(page.common_prefixes.iter().map(|p| (p.clone(), true)))
            .collect();
        v.sort();
        v
    }

    fn q<'a>(
        prefix: &'a str,
        delimiter: Option<&'a str>,
        start_after: Option<&'a str>,
        max_keys: usize,
    ) -> ListQuery<'a> {
        ListQuery {
            prefix,
            delimiter,
            start_after,
            max_keys,
        }
    }

    fn keys_of(tree: &impl Tree, query: ListQuery) -> Vec<String> {
        let page = list_page(tree, &query).unwrap();
        assert!(page.common_prefixes.is_empty());
        page.keys
    }

    #[test]
    fn order_is_byte_order_of_whole_key() {
        let t = MemTree::new(&["a-b", "a/c", "a0", "a/b/x", "é", "z"], &["ab", "a/b/y"]);
        let all = keys_of(&t, q("", None, None, 100));
        assert_eq!(
            all,
            ["a-b", "a/b/x", "a/b/y/", "a/c", "a0", "ab/", "z", "é"]
        );
        assert_eq!(all, t.all_keys());
    }

    #[test]
    fn delimiter_slash_rolls_up_dirs_without_reading_them() {
        let t = MemTree::new(&["a-b", "a/c", "b"], &["e", "x/d"]);
        let page = list_page(&t, &q("", Some("/"), None, 100)).unwrap();
        assert_eq!(page.keys, ["a-b", "b"]);
        assert_eq!(page.common_prefixes, ["a/", "e/", "x/"]);
        assert!(!page.is_truncated);
        assert_eq!(t.take_reads(), [""]);
    }

    #[test]
    fn common_prefix_at_or_below_start_after_is_skipped_whole() {
        let t = MemTree::new(&["a/1", "a/2", "b"], &[]);
        for sa in ["a/", "a/1", "a/0"] {
            let page = list_page(&t, &q("", Some("/"), Some(sa), 10)).unwrap();
            assert_eq!(page.keys, ["b"], "start_after {sa}");
            assert!(page.common_prefixes.is_empty());
        }
        let page = list_page(&t, &q("", Some("/"), Some("a"), 10)).unwrap();
        assert_eq!(page.common_prefixes, ["a/"]);
    }

    #[test]
    fn directory_objects_and_prefixes() {
        let t = MemTree::new(&["x/f"], &["x/d"]);
        assert_eq!(keys_of(&t, q("x/d/", None, None, 10)), ["x/d/"]);
        assert_eq!(keys_of(&t, q("x/d", None, None, 10)), ["x/d/"]);
        assert_eq!(keys_of(&t, q("x/d/", Some("/"), None, 10)), ["x/d/"]);
        assert!(keys_of(&t, q("x/d/", None, Some("x/d/"), 10)).is_empty());
        assert!(keys_of(&t, q("x/d/a", None, None, 10)).is_empty());
        assert!(keys_of(&t, q("x/f/", None, None, 10)).is_empty());
        let page = list_page(&t, &q("x/", Some("/"), None, 10)).unwrap();
        assert_eq!(page.common_prefixes, ["x/d/"]);
        assert_eq!(page.keys, ["x/f"]);
        // The bucket root is never an object.
        assert!(keys_of(&MemTree::default(), q("", None, None, 10)).is_empty());
    }

    #[test]
    fn impossible_prefixes_read_nothing() {
        let t = MemTree::new(&["a/b"], &[]);
        for prefix in ["/", "/a", "a//", "../a", "a/../", "./a", "a/./b"] {
            assert!(
                keys_of(&t, q(prefix, None, None, 10)).is_empty(),
                "{prefix}"
            );
        }
        assert!(t.take_reads().is_empty());
        // A start_after beyond everything the prefix allows needs no read either.
        assert!(keys_of(&t, q("a/", None, Some("b"), 10)).is_empty());
        assert!(t.take_reads().is_empty());
    }

    #[test]
    fn max_keys_zero_and_huge() {
        let t = MemTree::new(&["a", "b"], &[]);
        let page = list_page(&t, &q("", None, None, 0)).unwrap();
        assert_eq!(
            page,
            ListPage {
                is_truncated: true,
                ..ListPage::default()
            }
        );
        let page = list_page(&t, &q("", None, Some("b"), 0)).unwrap();
        assert_eq!(page, ListPage::default());
        let page = list_page(&t, &q("", None, None, usize::MAX)).unwrap();
        assert_eq!(page.keys, ["a", "b"]);
        assert!(!page.is_truncated);
    }

    #[test]
    fn empty_delimiter_means_none() {
        let t = MemTree::new(&["a/b", "c"], &[]);
        assert_eq!(keys_of(&t, q("", Some(""), None, 10)), ["a/b", "c"]);
    }

    #[test]
    fn vanished_directories_are_empty_and_gone() {
        let mut t = MemTree::new(&["a/b/c", "a/z", "c"], &["e"]);
        t.gone.insert("a/b".into());
        t.gone.insert("e".into());
        assert_eq!(keys_of(&t, q("", None, None, 10)), ["a/z", "c"]);
        assert!(keys_of(&t, q("a/b/", None, None, 10)).is_empty());
    }

    #[test]
    fn other_errors_propagate() {
        let mut t = MemTree::new(&["a/b", "c"], &[]);
        t.denied.insert("a".into());
        let err = list_page(&t, &q("", None, None, 10)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        // A start_after past the whole directory never reads it.
        assert_eq!(keys_of(&t, q("", None, Some("a0"), 10)), ["c"]);
    }

    #[test]
    fn multichar_delimiter_skips_rolled_up_subtrees_unread() {
        let t = MemTree::new(&["d/x-1", "d/x-2/deep/f", "d/x-3", "d/y"], &[]);
        let page = list_page(&t, &q("", Some("-"), None, 10)).unwrap();
        assert_eq!(page.common_prefixes, ["d/x-"]);
        assert_eq!(page.keys, ["d/y"]);
        assert_eq!(t.take_reads(), ["", "d"]);
        let page = list_page(&t, &q("d/", Some("x-2"), None, 10)).unwrap();
        assert_eq!(page.common_prefixes, ["d/x-2"]);
        assert_eq!(page.keys, ["d/x-1", "d/x-3", "d/y"]);
        assert_eq!(t.take_reads(), ["d"]);
    }

    fn big_tree() -> MemTree {
        let mut t = MemTree::default();
        for d in 0..50 {
            for f in 0..100 {
                assert!(t.insert(&format!("d{d:02}/f{f:03}"), EntryKind::File));
            }
        }
        t
    }

    #[test]
    fn lazy_pages_read_few_directories() {
        let t = big_tree();
        let page = list_page(&t, &q("", None, None, 10)).unwrap();
        assert_eq!(page.keys.first().map(String::as_str), Some("d00/f000"));
        assert_eq!(page.next_start_after.as_deref(), Some("d00/f009"));
        assert_eq!(t.take_reads(), ["", "d00"]);

        let page = list_page(&t, &q("", None, Some("d00/f095"), 10)).unwrap();
        assert_eq!(page.keys[4..6], ["d01/f000", "d01/f001"]);
        assert_eq!(t.take_reads(), ["", "d00", "d01"]);

        let page = list_page(&t, &q("", None, Some("d25/f050"), 10)).unwrap();
        assert_eq!(page.keys[0], "d25/f051");
        assert_eq!(t.take_reads(), ["", "d25"]);

        let page = list_page(&t, &q("", Some("/"), None, 10)).unwrap();
        assert_eq!(page.common_prefixes.len(), 10);
        assert_eq!(page.next_start_after.as_deref(), Some("d09/"));
        assert_eq!(t.take_reads(), [""]);

        let page = list_page(&t, &q("", Some("/"), Some("d09/"), 10)).unwrap();
        assert_eq!(page.common_prefixes[0], "d10/");
        assert_eq!(t.take_reads(), [""]);

        let page = list_page(&t, &q("d07/f05", None, None, 100)).unwrap();
        assert_eq!(page.keys.len(), 10);
        assert!(!page.is_truncated);
        assert_eq!(t.take_reads(), ["d07"]);
    }

    /// std::fs view of a bucket directory, as the store would implement it.
    struct FsTree(PathBuf);

    impl Tree for FsTree {
        fn entries(&self, dir: &str) -> io::Result<Vec<DirEntry>> {
            let path = if dir.is_empty() {
                self.0.clone()
            } else {
                self.0.join(dir)
            };
            let rd = std::fs::read_dir(path).map_err(|e| match e.kind() {
                io::ErrorKind::NotADirectory => io::ErrorKind::NotFound.into(),
                _ => e,
            })?;
            let mut out = Vec::new();
            for entry in rd {
                let entry = entry?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let kind = if entry.file_type()?.is_dir() {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                };
                out.push(DirEntry { name, kind });
            }
            Ok(out)
        }
    }

    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn real_directory_tree() {
        let tmp =
            TempDir(std::env::temp_dir().join(format!("nasgate-list-{}", std::process::id())));
        let root: &Path = &tmp.0;
        let files = ["a-b", "a/c", "a/b/x", "a0", "é/ü", "z/y/x"];
        let dirs = ["a/e", "ab", "z/q"];
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"data").unwrap();
        }
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let fs = FsTree(root.to_owned());
        let mem = MemTree::new(&files, &dirs);
        assert_eq!(
            keys_of(&fs, q("", None, None, 100)),
            ["a-b", "a/b/x", "a/c", "a/e/", "a0", "ab/", "z/q/", "z/y/x", "é/ü"]
        );
        let page = list_page(&fs, &q("", Some("/"), None, 100)).unwrap();
        assert_eq!(page.keys, ["a-b", "a0"]);
        assert_eq!(page.common_prefixes, ["a/", "ab/", "z/", "é/"]);
        assert_eq!(keys_of(&fs, q("a/e/", None, None, 10)), ["a/e/"]);
        assert!(keys_of(&fs, q("a-b/", None, None, 10)).is_empty());
        assert!(keys_of(&fs, q("nope/", None, None, 10)).is_empty());
        for max_keys in 1..=4 {
            for delimiter in [None, Some("/"), Some("b")] {
                let query = q("", delimiter, Some("a/"), max_keys);
                assert_eq!(
                    list_page(&fs, &query).unwrap(),
                    model_page(&mem.all_keys(), &query)
                );
            }
        }
    }

    // ---- property tests against the brute-force model ----

    const CHARS: &[char] = &['-', '.', 'a', 'b', 'é'];
    const CHARS_SLASH: &[char] = &['-', '.', 'a', 'b', 'é', '/'];

    fn string_of(
        chars: &'static [char],
        len: std::ops::RangeInclusive<usize>,
    ) -> BoxedStrategy<String> {
        prop::collection::vec(prop::sample::select(chars), len)
            .prop_map(|v| v.into_iter().collect())
            .boxed()
    }

    fn path_strategy(max_depth: usize) -> BoxedStrategy<String> {
        prop::collection::vec(string_of(CHARS, 1..=3), 1..=max_depth)
            .prop_map(|v| v.join("/"))
            .boxed()
    }

    /// A string chosen relative to the bucket contents, resolved once the tree is known.
    #[derive(Debug, Clone)]
    enum Pick {
        Nothing,
        Raw(String),
        /// A cut of a key at a char boundary.
        KeyPart(Index, Index),
        /// A whole key.
        Key(Index),
        /// An item of the full listing (key or common prefix) as the query sees it.
        Item(Index),
        /// An item with something appended.
        ItemPlus(Index, String),
    }

    fn pick_strategy() -> impl Strategy<Value = Pick> {
        prop_oneof![
            1 => Just(Pick::Nothing),
            2 => string_of(CHARS_SLASH, 0..=4).prop_map(Pick::Raw),
            3 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Pick::KeyPart(a, b)),
            2 => any::<Index>().prop_map(Pick::Key),
            2 => any::<Index>().prop_map(Pick::Item),
            1 => (any::<Index>(), string_of(CHARS_SLASH, 1..=2))
                .prop_map(|(a, s)| Pick::ItemPlus(a, s)),
        ]
    }

    fn resolve(pick: &Pick, keys: &[String], items: &[(String, bool)]) -> Option<String> {
        match pick {
            Pick::Nothing => None,
            Pick::Raw(s) => Some(s.clone()),
            Pick::KeyPart(_, _) | Pick::Key(_) if keys.is_empty() => None,
            Pick::KeyPart(k, cut) => {
                let key = k.get(keys);
                let bounds: Vec<usize> = key
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain([key.len()])
                    .collect();
                Some(key[..*cut.get(&bounds)].to_owned())
            }
            Pick::Key(k) => Some(k.get(keys).clone()),
            Pick::Item(_) | Pick::ItemPlus(_, _) if items.is_empty() => None,
            Pick::Item(i) => Some(i.get(items).0.clone()),
            Pick::ItemPlus(i, s) => Some(format!("{}{s}", i.get(items).0)),
        }
    }

    fn delimiter_strategy() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            2 => Just(None),
            4 => Just(Some("/".to_owned())),
            2 => prop::sample::select(vec!["-", "ab", "/a", "a/", "é", "é/", "--", ".", "b/a"])
                .prop_map(|s| Some(s.to_owned())),
            2 => string_of(CHARS_SLASH, 1..=3).prop_map(Some),
        ]
    }

    fn tree_strategy() -> impl Strategy<Value = MemTree> {
        (
            prop::collection::vec(path_strategy(4), 0..25),
            prop::collection::vec(path_strategy(3), 0..4),
        )
            .prop_map(|(files, dirs)| {
                let mut t = MemTree::default();
                for f in &files {
                    t.insert(f, EntryKind::File);
                }
                for d in &dirs {
                    t.insert(d, EntryKind::Dir);
                }
                t
            })
    }

    fn check_query(tree: &MemTree, keys: &[String], query: ListQuery) -> Result<(), TestCaseError> {
        tree.take_reads();
        let page = list_page(tree, &query).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let reads = tree.take_reads();
        prop_assert_eq!(&page, &model_page(keys, &query), "query {:?}", query);
        let distinct: BTreeSet<&String> = reads.iter().collect();
        prop_assert_eq!(
            distinct.len(),
            reads.len(),
            "re-read within a page: {:?}",
            reads
        );
        if query.delimiter == Some("/") {
            prop_assert!(reads.len() <= 1, "delimiter '/' read {:?}", reads);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn pages_match_model(
            tree in tree_strategy(),
            prefix_pick in pick_strategy(),
            delimiter in delimiter_strategy(),
            sa_pick in pick_strategy(),
            max_keys in 1usize..=7,
        ) {
            let keys = tree.all_keys();
            let prefix = resolve(&prefix_pick, &keys, &[]).unwrap_or_default();
            let base = q(&prefix, delimiter.as_deref(), None, usize::MAX);
            let items = model_items(&keys, &base);
            let start_after = resolve(&sa_pick, &keys, &items);
            let query = ListQuery { start_after: start_after.as_deref(), max_keys, ..base };

            check_query(&tree, &keys, query)?;
            check_query(&tree, &keys, ListQuery { max_keys: 0, ..query })?;

            // Walk every page and compare the concatenation with the full model listing.
            let expected = model_items(&keys, &ListQuery { max_keys: usize::MAX, ..query });
            let mut got = Vec::new();
            let mut cursor = start_after.clone();
            for _ in 0..=expected.len() {
                let page_query = ListQuery { start_after: cursor.as_deref(), ..query };
                check_query(&tree, &keys, page_query)?;
                let page = list_page(&tree, &page_query)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let items = merged(&page);
                prop_assert!(items.len() <= max_keys);
                got.extend(items);
                if !page.is_truncated {
                    break;
                }
                prop_assert_eq!(page.keys.len() + page.common_prefixes.len(), max_keys);
                cursor = page.next_start_after;
            }
            prop_assert_eq!(got, expected);
        }
    }
}
