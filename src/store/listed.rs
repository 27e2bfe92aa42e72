//! The listing cache: ETags of recently listed objects, each valid while its data file keeps
//! the identity, size and mtime it had (an ETag changes only with the bytes), so a listing
//! skips reading every fs.json. Bounded in memory: a fixed-size entry per object (no key
//! string, the ETag as its 16 bytes) and a cap on the entries, ~4 MiB at most.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

use crate::platform::{FileKind, Stat};

/// Most entries kept: 7/8 of 65 536 buckets, the largest table that stays at 65 536 buckets
/// of 64 bytes (about 4 MiB).
pub(super) const MAX_ENTRIES: usize = 57_344;

/// What a cached ETag is valid for, and the ETag itself, in 56 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    size: u64,
    mtime_ns: i64,
    dev: u64,
    ino: u64,
    md5: [u8; 16],
    nlink: u32,
    /// The part count of a multipart ETag (`<md5>-<parts>`), 0 for a plain MD5.
    parts: u32,
}

/// ETags by data file; see the module documentation.
#[derive(Debug, Default)]
pub(super) struct Listed {
    /// Keyed by a 64-bit hash of the data file's path: two paths sharing a hash would also
    /// need the same device, inode, size and mtime to be confused, which makes them one file.
    map: HashMap<u64, Entry>,
    /// Which hash bit decides the half dropped when the cache is full next.
    evictions: u32,
    /// Entries removed since the table was last built: each may leave a tombstone that takes
    /// a slot until the table is rebuilt, so they count against the cap too.
    removed: usize,
}

fn path_hash(rel: &Path) -> u64 {
    // Fixed keys: the same path hashes the same for the life of the process.
    // Hashed as bytes (`Path`'s own hash walks the components); every caller spells a
    // path the same way, as `layout` builds it.
    let mut h = std::hash::DefaultHasher::new();
    rel.as_os_str().as_encoded_bytes().hash(&mut h);
    h.finish()
}

/// The fields of `st` an entry compares; None when they do not fit (then nothing is cached).
fn stamp(st: &Stat, md5: [u8; 16], parts: u32) -> Option<Entry> {
    if st.kind != FileKind::File {
        return None;
    }
    Some(Entry {
        size: st.size,
        mtime_ns: i64::try_from(st.mtime_ns).ok()?,
        dev: st.id.dev,
        ino: st.id.ino,
        md5,
        nlink: u32::try_from(st.id.nlink).ok()?,
        parts,
    })
}

/// Splits an ETag as nasgate writes it (lowercase hex MD5, optionally `-<parts>`); None for
/// any other spelling, which is then not cached rather than cached altered.
fn parse_etag(etag: &str) -> Option<([u8; 16], u32)> {
    let (hex_part, parts) = match etag.split_once('-') {
        Some((h, n)) => {
            let n: u32 = n.parse().ok()?;
            (h, n)
        }
        None => (etag, 0),
    };
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(hex_part, &mut md5).ok()?;
    (format_etag(&md5, parts) == etag).then_some((md5, parts))
}

fn format_etag(md5: &[u8; 16], parts: u32) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // One allocation of the right size: a listing page formats a thousand of these.
    let mut out = String::with_capacity(32 + if parts == 0 { 0 } else { 11 });
    for b in md5 {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    if parts != 0 {
        use std::fmt::Write;
        let _ = write!(out, "-{parts}");
    }
    out
}

impl Listed {
    /// The cached ETag of the data file at `rel` if it still has the stat `st`.
    pub(super) fn get(&self, rel: &Path, st: &Stat) -> Option<String> {
        let e = self.map.get(&path_hash(rel))?;
        let now = stamp(st, e.md5, e.parts)?;
        (now == *e).then(|| format_etag(&e.md5, e.parts))
    }

    /// Remembers `etag` for the data file at `rel` with stat `st`. A full cache first drops
    /// about half its entries, a different half each time, so repeated listings of a bucket
    /// larger than the cache still find part of it.
    pub(super) fn insert(&mut self, rel: &Path, st: &Stat, etag: &str) {
        let Some((md5, parts)) = parse_etag(etag) else {
            return;
        };
        let Some(entry) = stamp(st, md5, parts) else {
            return;
        };
        let key = path_hash(rel);
        if self.map.len() + self.removed >= MAX_ENTRIES && !self.map.contains_key(&key) {
            // A fresh table rather than `retain`: the tombstones `retain` leaves would make
            // the next insert grow the table to twice the bound.
            let bit = self.evictions % 64;
            self.evictions = self.evictions.wrapping_add(1);
            let old = std::mem::take(&mut self.map);
            let mut kept = HashMap::with_capacity(MAX_ENTRIES);
            // Hashes are uniform, but the bound must not rely on that: keep at most half.
            kept.extend(
                old.into_iter()
                    .filter(|(k, _)| (k >> bit) & 1 == 0)
                    .take(MAX_ENTRIES / 2),
            );
            self.map = kept;
            self.removed = 0;
        }
        self.map.insert(key, entry);
    }

    /// Forgets the data file at `rel`.
    pub(super) fn remove(&mut self, rel: &Path) {
        if self.map.remove(&path_hash(rel)).is_some() {
            self.removed += 1;
        }
    }

    /// Entries held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    /// Bytes the table holds allocated (buckets times entry size plus a control byte;
    /// exact while nothing was removed).
    #[cfg(test)]
    fn allocated(&self) -> usize {
        let buckets = (self.map.capacity() * 8).div_ceil(7).next_power_of_two();
        buckets * (std::mem::size_of::<(u64, Entry)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::FileId;

    fn st(ino: u64, size: u64) -> Stat {
        Stat {
            size,
            mtime_ns: 1_700_000_000_123_456_789,
            id: FileId {
                dev: 42,
                ino,
                nlink: 1,
            },
            kind: FileKind::File,
        }
    }

    const MD5: &str = "9e107d9d372bb6826bd81d3542a419d6";

    #[test]
    fn hits_while_the_stat_holds_and_misses_after_a_change() {
        let mut c = Listed::default();
        let rel = Path::new("b/k");
        c.insert(rel, &st(1, 10), MD5);
        assert_eq!(c.get(rel, &st(1, 10)).as_deref(), Some(MD5));
        assert_eq!(c.get(rel, &st(1, 11)), None, "size changed");
        assert_eq!(c.get(rel, &st(2, 10)), None, "replaced by another file");
        let mut later = st(1, 10);
        later.mtime_ns += 1;
        assert_eq!(c.get(rel, &later), None, "mtime changed");
        assert_eq!(c.get(Path::new("b/other"), &st(1, 10)), None);
    }

    #[test]
    fn etags_come_back_exactly_or_are_not_cached() {
        let mut c = Listed::default();
        let multipart = format!("{MD5}-17");
        c.insert(Path::new("m"), &st(1, 1), &multipart);
        assert_eq!(c.get(Path::new("m"), &st(1, 1)), Some(multipart));
        for odd in [
            "9E107D9D372BB6826BD81D3542A419D6",
            "00000000000000000000000000000000-1-2",
            "xyz",
            "",
            "9e107d9d372bb6826bd81d3542a419d6-",
            "9e107d9d372bb6826bd81d3542a419d6-07",
        ] {
            c.insert(Path::new("odd"), &st(2, 1), odd);
            assert_eq!(c.get(Path::new("odd"), &st(2, 1)), None, "{odd:?}");
        }
    }

    #[test]
    fn stays_within_its_bound_over_a_large_listing() {
        assert!(std::mem::size_of::<(u64, Entry)>() <= 64);
        let mut c = Listed::default();
        for i in 0..200_000u64 {
            c.insert(
                Path::new(&format!("b/d{}/o{}", i / 1000, i)),
                &st(i, i),
                MD5,
            );
            assert!(c.len() <= MAX_ENTRIES);
        }
        assert!(
            c.len() > MAX_ENTRIES / 3,
            "a full cache drops half, not all"
        );
        assert!(c.allocated() <= 65_536 * 65, "{} bytes", c.allocated());
        // Removals leave tombstones; the table still never grows past the bound.
        for i in 200_000..400_000u64 {
            let rel = format!("b/d{}/o{}", i / 1000, i);
            c.insert(Path::new(&rel), &st(i, i), MD5);
            if i % 3 == 0 {
                c.remove(Path::new(&rel));
            }
            assert!(c.len() <= MAX_ENTRIES);
        }
        assert!(c.map.capacity() <= MAX_ENTRIES, "{}", c.map.capacity());
        // The most recent entries are there.
        let last = 399_998u64;
        let rel = format!("b/d{}/o{}", last / 1000, last);
        assert_eq!(
            c.get(Path::new(&rel), &st(last, last)).as_deref(),
            Some(MD5)
        );
    }
}
