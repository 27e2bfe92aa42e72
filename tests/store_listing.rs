//! Listing a real store against a sorted in-memory model: random key trees (with directory
//! objects and colliding keys) are put into a store on a temp share, then random queries
//! (prefix, delimiter, start-after, max-keys) and whole page walks are compared with the
//! model. Also: names the NAS adds (`.nfs*`) never show, and a measured figure for large
//! listings and 1 MiB objects.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use common::store::{bounded, bytes, get_ok, md5_hex, put, put_ok, TestShare};
use nasgate::store::list::ListQuery;
use nasgate::store::object::ObjectPage;
use nasgate::store::{Durability, PutOptions, ReadConditions, StoreError};
use proptest::prelude::*;
use proptest::sample::Index;

const B: &str = "bkt";

/// What the store should hold: files by key, and directory objects (without their '/').
#[derive(Debug, Default)]
struct Model {
    files: BTreeSet<String>,
    dirs: BTreeSet<String>,
}

fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

impl Model {
    fn below(&self, path: &str) -> bool {
        let p = format!("{path}/");
        self.files
            .range(p.clone()..)
            .next()
            .is_some_and(|f| f.starts_with(&p))
            || self
                .dirs
                .range(p.clone()..)
                .next()
                .is_some_and(|d| d.starts_with(&p))
    }

    /// Applies a put; false if the key collides with the tree (the store must refuse it).
    fn put(&mut self, key: &str) -> bool {
        match key.strip_suffix('/') {
            Some(dir) => {
                if self.files.contains(dir) || ancestors(dir).any(|a| self.files.contains(a)) {
                    return false;
                }
                self.dirs.insert(dir.to_string());
            }
            None => {
                if ancestors(key).any(|a| self.files.contains(a))
                    || self.dirs.contains(key)
                    || self.below(key)
                {
                    return false;
                }
                self.files.insert(key.to_string());
            }
        }
        true
    }

    /// Every object key, ascending by bytes: files, and directories with nothing below.
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.files.iter().cloned().collect();
        keys.extend(
            self.dirs
                .iter()
                .filter(|d| !self.below(d))
                .map(|d| format!("{d}/")),
        );
        keys.sort();
        keys
    }
}

/// Every item of a query (key or common prefix, true for a prefix) after start-after, in order.
fn model_items(keys: &[String], q: &ListQuery) -> Vec<(String, bool)> {
    let mut items = BTreeMap::new();
    for k in keys.iter().filter(|k| k.starts_with(q.prefix)) {
        let rest = &k[q.prefix.len()..];
        match q.delimiter.filter(|d| !d.is_empty()).and_then(|d| {
            rest.find(d)
                .map(|i| k[..q.prefix.len() + i + d.len()].to_string())
        }) {
            Some(cp) => items.insert(cp, true),
            None => items.insert(k.clone(), false),
        };
    }
    items
        .into_iter()
        .filter(|(s, _)| q.start_after.is_none_or(|sa| s.as_str() > sa))
        .collect()
}

/// The page items a store page holds, merged in order.
fn page_items(page: &ObjectPage) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = page
        .objects
        .iter()
        .map(|o| (o.key.clone(), false))
        .chain(page.common_prefixes.iter().map(|p| (p.clone(), true)))
        .collect();
    v.sort();
    v
}

// ---- strategies ----

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

fn component() -> BoxedStrategy<String> {
    string_of(CHARS, 1..=3)
        .prop_filter("'.' and '..' are no key components", |c| {
            c != "." && c != ".."
        })
        .boxed()
}

/// A key over a small alphabet: up to 3 components, sometimes a directory object.
fn key() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(component(), 1..=3),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(parts, dir)| {
            let mut k = parts.join("/");
            if dir {
                k.push('/');
            }
            k
        })
}

/// A query string chosen relative to the bucket's keys, resolved once they are known.
#[derive(Debug, Clone)]
enum Pick {
    Nothing,
    Raw(String),
    /// A cut of a key at a char boundary.
    KeyPart(Index, Index),
    /// A whole key.
    Key(Index),
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        1 => Just(Pick::Nothing),
        2 => string_of(CHARS_SLASH, 0..=4).prop_map(Pick::Raw),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Pick::KeyPart(a, b)),
        2 => any::<Index>().prop_map(Pick::Key),
    ]
}

fn resolve(pick: &Pick, keys: &[String]) -> Option<String> {
    match pick {
        Pick::Nothing => None,
        Pick::Raw(s) => Some(s.clone()),
        Pick::KeyPart(..) | Pick::Key(_) if keys.is_empty() => None,
        Pick::KeyPart(k, cut) => {
            let key = k.get(keys);
            let bounds: Vec<usize> = key
                .char_indices()
                .map(|(i, _)| i)
                .chain([key.len()])
                .collect();
            Some(key[..*cut.get(&bounds)].to_string())
        }
        Pick::Key(k) => Some(k.get(keys).clone()),
    }
}

fn delimiter() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        4 => Just(Some("/".to_string())),
        2 => prop::sample::select(vec!["-", "a", "é", "a/", "/a", ".", "b/"])
            .prop_map(|s| Some(s.to_string())),
    ]
}

#[derive(Debug, Clone)]
struct Query {
    prefix: Pick,
    delimiter: Option<String>,
    start_after: Pick,
    max_keys: usize,
}

fn query() -> impl Strategy<Value = Query> {
    (pick(), delimiter(), pick(), 1usize..=6).prop_map(
        |(prefix, delimiter, start_after, max_keys)| Query {
            prefix,
            delimiter,
            start_after,
            max_keys,
        },
    )
}

fn body_of(key: &str) -> Vec<u8> {
    format!("body of {key}").into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn listing_a_real_store_matches_the_sorted_model(
        keys in prop::collection::vec(key(), 0..24),
        queries in prop::collection::vec(query(), 1..=4),
        nfs_dir in any::<Index>(),
    ) {
        let s = TestShare::with(&[B], Durability::None);
        let mut model = Model::default();
        for k in &keys {
            let data = if k.ends_with('/') { Vec::new() } else { body_of(k) };
            let r = put(&s.store, B, k, &data, PutOptions::default());
            let allowed = model.put(k);
            match r {
                Ok(_) => prop_assert!(allowed, "store took {:?}, model refuses it", k),
                Err(StoreError::KeyConflict { .. }) => {
                    prop_assert!(!allowed, "store refused {:?}, model takes it", k)
                }
                Err(e) => return Err(TestCaseError::fail(format!("put {k:?}: {e}"))),
            }
        }
        let all = model.keys();

        // NFS silly-rename files in the bucket and in one of its directories never show.
        std::fs::write(s.path().join("bkt/.nfs00000000000a0001"), b"x").expect("write");
        let dirs: Vec<&String> = model.dirs.iter().chain(model.files.iter()).collect();
        if !dirs.is_empty() {
            let some = dirs[nfs_dir.index(dirs.len())];
            let parent = std::path::Path::new(some).parent().map(|p| p.to_path_buf());
            if let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                std::fs::write(s.path().join("bkt").join(p).join(".nfs00000000000b0002"), b"x")
                    .expect("write");
            }
        }

        for q in &queries {
            let prefix = resolve(&q.prefix, &all).unwrap_or_default();
            let start_after = resolve(&q.start_after, &all);
            let query = ListQuery {
                prefix: &prefix,
                delimiter: q.delimiter.as_deref(),
                start_after: start_after.as_deref(),
                max_keys: q.max_keys,
            };
            let expected = model_items(&all, &query);

            // One page.
            let page = s.store.list(B, &query).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let want: Vec<(String, bool)> = expected.iter().take(q.max_keys).cloned().collect();
            prop_assert_eq!(page_items(&page), want.clone(), "query {:?}", query);
            prop_assert_eq!(page.is_truncated, expected.len() > q.max_keys, "query {:?}", query);
            if page.is_truncated {
                prop_assert_eq!(page.next.as_deref(), want.last().map(|w| w.0.as_str()));
            }
            for o in &page.objects {
                let data = if o.key.ends_with('/') { Vec::new() } else { body_of(&o.key) };
                prop_assert_eq!(&o.etag, &md5_hex(&data), "{}", o.key);
                prop_assert_eq!(o.size, data.len() as u64, "{}", o.key);
            }

            // Every page, feeding `next` back.
            let mut got = Vec::new();
            let mut cursor = start_after.clone();
            for _ in 0..=expected.len() {
                let page_query = ListQuery { start_after: cursor.as_deref(), ..query };
                let page = s
                    .store
                    .list(B, &page_query)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let items = page_items(&page);
                prop_assert!(items.len() <= q.max_keys);
                got.extend(items);
                if !page.is_truncated {
                    break;
                }
                prop_assert!(page.next.is_some());
                cursor = page.next;
            }
            prop_assert_eq!(got, expected, "walk of {:?}", query);
        }
    }
}

fn list_keys(s: &TestShare, prefix: &str, delimiter: Option<&str>) -> (Vec<String>, Vec<String>) {
    let page = s
        .store
        .list(
            B,
            &ListQuery {
                prefix,
                delimiter,
                start_after: None,
                max_keys: 1000,
            },
        )
        .expect("list");
    (
        page.objects.into_iter().map(|o| o.key).collect(),
        page.common_prefixes,
    )
}

#[test]
fn nfs_silly_rename_files_never_appear_in_listings() {
    bounded(|| {
        let s = TestShare::with_buckets(&[B]);
        put_ok(&s.store, B, "a/b", b"1");
        put_ok(&s.store, B, "a/c/d", b"2");
        put_ok(&s.store, B, "z", b"3");
        for p in [
            "bkt/.nfs000000000001",
            "bkt/a/.nfs000000000002",
            "bkt/a/c/.nfs0000000000000003abcd",
        ] {
            std::fs::write(s.path().join(p), b"deleted while open").expect("write");
        }
        // A whole directory of them (as some servers leave for deleted directories).
        std::fs::create_dir_all(s.path().join("bkt/.nfs000000000004/x")).expect("mkdir");
        std::fs::write(s.path().join("bkt/.nfs000000000004/x/y"), b"x").expect("write");

        let (keys, prefixes) = list_keys(&s, "", None);
        assert_eq!(keys, ["a/b", "a/c/d", "z"]);
        assert!(prefixes.is_empty());
        let (keys, prefixes) = list_keys(&s, "", Some("/"));
        assert_eq!(keys, ["z"]);
        assert_eq!(prefixes, ["a/"]);
        let (keys, _) = list_keys(&s, "a/", Some("/"));
        assert_eq!(keys, ["a/b"]);
        for prefix in [
            ".nfs",
            ".nfs000000000004/",
            ".nfs000000000004/x/",
            "a/.nfs",
            "a/c/.n",
        ] {
            let (keys, prefixes) = list_keys(&s, prefix, None);
            assert!(
                keys.is_empty() && prefixes.is_empty(),
                "{prefix}: {keys:?} {prefixes:?}"
            );
        }
        let r = s
            .store
            .get(B, ".nfs000000000001", &ReadConditions::default())
            .map(|_| ());
        assert!(matches!(r, Err(StoreError::Name(_))), "{r:?}");
        let r = s
            .store
            .get(B, ".nfs000000000004/x/y", &ReadConditions::default())
            .map(|_| ());
        assert!(matches!(r, Err(StoreError::Name(_))), "{r:?}");
    })
}

#[test]
fn measured_listing_of_ten_thousand_keys_and_a_one_mib_put_and_get() {
    bounded(|| {
        let s = TestShare::with(&[B], Durability::None);
        let n = 10_000;
        let started = Instant::now();
        for i in 0..n {
            put_ok(&s.store, B, &format!("d{:03}/obj{i:05}", i / 100), b"x");
        }
        let put_time = started.elapsed();

        let mut pages = 0;
        let mut seen = 0;
        let mut cursor: Option<String> = None;
        let started = Instant::now();
        loop {
            let page = s
                .store
                .list(
                    B,
                    &ListQuery {
                        prefix: "",
                        delimiter: None,
                        start_after: cursor.as_deref(),
                        max_keys: 1000,
                    },
                )
                .expect("list");
            pages += 1;
            seen += page.objects.len();
            if !page.is_truncated {
                break;
            }
            cursor = page.next;
        }
        let list_time = started.elapsed();
        assert_eq!(seen, n);
        assert_eq!(pages, 10);

        let started = Instant::now();
        let page = s
            .store
            .list(
                B,
                &ListQuery {
                    prefix: "",
                    delimiter: Some("/"),
                    start_after: None,
                    max_keys: 1000,
                },
            )
            .expect("list");
        let rollup_time = started.elapsed();
        assert_eq!(page.common_prefixes.len(), 100);

        let data = bytes(42, 1 << 20);
        let fsync = TestShare::with(&[B], Durability::Fsync);
        let mut put_1m = Vec::new();
        let mut get_1m = Vec::new();
        for (store, label) in [(&s.store, "no fsync"), (&fsync.store, "fsync")] {
            let t = Instant::now();
            put(store, B, "one-mib", &data, PutOptions::default()).expect("put");
            put_1m.push((label, t.elapsed()));
            let t = Instant::now();
            let (info, got) = get_ok(store, B, "one-mib");
            get_1m.push((label, t.elapsed()));
            assert_eq!(info.etag, md5_hex(&data));
            assert!(got == data);
        }

        eprintln!(
            "PUT of {n} one-byte objects (no fsync): {put_time:?} ({:.0} per s)",
            n as f64 / put_time.as_secs_f64()
        );
        eprintln!(
            "LIST of {n} keys in {pages} pages of 1000: {list_time:?} ({:?} per page)",
            list_time / pages
        );
        eprintln!("LIST with delimiter '/' (100 common prefixes): {rollup_time:?}");
        for ((label, p), (_, g)) in put_1m.iter().zip(&get_1m) {
            eprintln!("1 MiB ({label}): PUT {p:?}, GET {g:?}");
        }
    })
}

#[test]
fn a_prefix_running_through_an_object_lists_nothing() {
    let s = TestShare::with(&[B], Durability::None);
    put(&s.store, B, "-", b"x", PutOptions::default()).expect("put");
    let query = ListQuery {
        prefix: "-/",
        delimiter: None,
        start_after: None,
        max_keys: 1,
    };
    let page = s.store.list(B, &query).expect("list");
    assert!(page.objects.is_empty() && page.common_prefixes.is_empty());
}
