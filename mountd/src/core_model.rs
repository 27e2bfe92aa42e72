//! The core checked against a reference model: random sequences of create, open, write,
//! close, read, rename, unlink, mkdir and rmdir run through `Core` over the in-memory backend
//! and through a few lines of plain rules (what SEMANTICS.md promises), and every answer,
//! every byte read and every listing must agree.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use crate::backend::{Creator, Errno, Kind};
use crate::core::{Caller, Core, KernelCache};
use crate::memory::MemoryBackend;
use crate::nodes::ROOT;

const BUCKET: &str = "bkt";
const NAMES: [&str; 3] = ["a", "b", "c"];
/// pid 0: a requester that is never interrupted.
const CALLER: Caller = Caller {
    uid: 0,
    gid: 0,
    pid: 0,
};
const WHO: Creator = Creator {
    mode: 0o644,
    uid: 0,
    gid: 0,
};

struct NoKernel;

impl KernelCache for NoKernel {
    fn forget_attr(&self, _ino: u64) {}
}

/// A path below the bucket: one or two names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct P(Vec<&'static str>);

impl P {
    fn text(&self) -> String {
        self.0.join("/")
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// open(O_CREAT|O_WRONLY|O_TRUNC), write, close.
    Put(P, Vec<u8>),
    /// open(O_CREAT|O_WRONLY|O_TRUNC), kept open.
    CreateOpen(P),
    /// open(O_WRONLY), with O_TRUNC or not, kept open.
    OpenWrite(P, bool),
    OpenRead(P),
    /// Write through the i-th open handle (modulo), at an offset.
    Write(usize, u64, Vec<u8>),
    /// Read the whole file through the i-th open handle.
    Read(usize),
    /// close (flush, then release) of the i-th open handle.
    Close(usize),
    Unlink(P),
    Mkdir(P),
    Rmdir(P),
    Rename(P, P, bool),
    Stat(P),
    List(Option<P>),
}

fn path() -> impl Strategy<Value = P> {
    let name = || proptest::sample::select(NAMES.to_vec());
    prop_oneof![
        name().prop_map(|a| P(vec![a])),
        (name(), name()).prop_map(|(a, b)| P(vec![a, b])),
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..12)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (path(), bytes()).prop_map(|(p, b)| Op::Put(p, b)),
        1 => path().prop_map(Op::CreateOpen),
        2 => (path(), any::<bool>()).prop_map(|(p, t)| Op::OpenWrite(p, t)),
        2 => path().prop_map(Op::OpenRead),
        3 => (0..8usize, 0..6u64, bytes()).prop_map(|(h, o, b)| Op::Write(h, o, b)),
        2 => (0..8usize).prop_map(Op::Read),
        3 => (0..8usize).prop_map(Op::Close),
        2 => path().prop_map(Op::Unlink),
        2 => path().prop_map(Op::Mkdir),
        1 => path().prop_map(Op::Rmdir),
        2 => (path(), path(), any::<bool>()).prop_map(|(a, b, n)| Op::Rename(a, b, n)),
        2 => path().prop_map(Op::Stat),
        1 => proptest::option::of(path()).prop_map(Op::List),
    ]
}

/// What a file or directory is in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    Dir,
}

#[derive(Debug, Clone)]
enum MHandle {
    /// Reads the version it opened; `cached` counts as a page-cache reader of its file.
    Read {
        path: Option<String>,
        bytes: Vec<u8>,
        cached: bool,
    },
    /// `draft`: the new version once something changed the file; `wait`: opened while
    /// page-cache readers of the file were open, so the first change waits for them.
    Write {
        path: Option<String>,
        draft: Option<Vec<u8>>,
        truncated: bool,
        wait: bool,
    },
}

impl MHandle {
    fn path(&self) -> Option<&String> {
        match self {
            MHandle::Read { path, .. } | MHandle::Write { path, .. } => path.as_ref(),
        }
    }

    fn path_mut(&mut self) -> &mut Option<String> {
        match self {
            MHandle::Read { path, .. } | MHandle::Write { path, .. } => path,
        }
    }
}

/// The reference: the published tree and the open handles, in opening order.
#[derive(Debug, Default)]
struct Model {
    tree: BTreeMap<String, Entry>,
    handles: Vec<MHandle>,
}

fn parent_of(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}

impl Model {
    fn is_dir(&self, p: &str) -> bool {
        p.is_empty() || self.tree.get(p) == Some(&Entry::Dir)
    }

    /// Whether the kernel can walk to `p`: ENOENT for a missing directory above it, ENOTDIR
    /// for a file there.
    fn reach(&self, p: &str) -> Result<(), Errno> {
        let mut above = Vec::new();
        let mut at = parent_of(p);
        while !at.is_empty() {
            above.push(at);
            at = parent_of(at);
        }
        for a in above.into_iter().rev() {
            match self.shown(a) {
                None => return Err(Errno::ENOENT),
                Some(Entry::File(_)) => return Err(Errno::ENOTDIR),
                Some(Entry::Dir) => {}
            }
        }
        Ok(())
    }

    /// The draft that this mount shows for `p` (the latest opened writer of it with one).
    fn draft(&self, p: &str) -> Option<&Vec<u8>> {
        self.handles.iter().rev().find_map(|h| match h {
            MHandle::Write {
                path: Some(q),
                draft: Some(d),
                ..
            } if q == p => Some(d),
            _ => None,
        })
    }

    /// What `p` is in this mount: a draft wins over the published file.
    fn shown(&self, p: &str) -> Option<Entry> {
        if let Some(d) = self.draft(p) {
            return Some(Entry::File(d.clone()));
        }
        self.tree.get(p).cloned()
    }

    fn cached_readers(&self, p: &str) -> bool {
        self.handles
            .iter()
            .any(|h| matches!(h, MHandle::Read { path: Some(q), cached: true, .. } if q == p))
    }

    fn writers(&self, p: &str) -> bool {
        self.handles
            .iter()
            .any(|h| matches!(h, MHandle::Write { path: Some(q), .. } if q == p))
    }

    /// Names in directory `dir` as this mount lists them.
    fn list(&self, dir: &str) -> BTreeSet<String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let published = self.tree.keys().cloned();
        let drafted = self.handles.iter().filter_map(|h| match h {
            MHandle::Write {
                path: Some(p),
                draft: Some(_),
                ..
            } => Some(p.clone()),
            _ => None,
        });
        published
            .chain(drafted)
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .collect()
    }

    /// Publishes the draft of write handle `i` at its path, as flush does.
    fn publish(&mut self, i: usize) -> Result<(), Errno> {
        let MHandle::Write {
            path,
            draft,
            truncated,
            ..
        } = &mut self.handles[i]
        else {
            return Ok(());
        };
        let Some(d) = draft.take() else {
            return Ok(());
        };
        *truncated = false;
        let Some(p) = path.clone() else {
            return Ok(());
        };
        if !self.is_dir(parent_of(&p)) {
            return Err(Errno::ENOENT);
        }
        if self.is_dir(&p) {
            return Err(Errno::EISDIR);
        }
        self.tree.insert(p, Entry::File(d));
        Ok(())
    }

    /// Handles of `p` lose their name (unlinked or replaced).
    fn detach(&mut self, p: &str) {
        for h in &mut self.handles {
            if h.path().is_some_and(|q| q == p) {
                *h.path_mut() = None;
            }
        }
    }
}

/// The system under test: the core over the memory backend, with the harness's handles.
struct Sut {
    core: Core<()>,
    bucket: u64,
    /// Handle numbers, in the model's order.
    fhs: Vec<(u64, u64)>,
}

impl Sut {
    fn new() -> Sut {
        let backend = Arc::new(MemoryBackend::new(Duration::from_millis(2)));
        let core = Core::new(backend, Arc::new(NoKernel));
        let (bucket, _) = core.mkdir(ROOT, BUCKET, WHO).expect("bucket");
        Sut {
            core,
            bucket,
            fhs: Vec::new(),
        }
    }

    /// The node of `p`'s parent directory and `p`'s last name, as the kernel walks it.
    fn parent(&self, p: &P) -> Result<(u64, &'static str), Errno> {
        let mut at = self.bucket;
        for name in &p.0[..p.0.len() - 1] {
            let (id, a) = self.core.lookup(at, name)?;
            if a.kind != Kind::Dir {
                return Err(Errno::ENOTDIR);
            }
            at = id;
        }
        Ok((at, p.0[p.0.len() - 1]))
    }

    fn node(&self, p: &P) -> Result<(u64, crate::backend::Attr), Errno> {
        let (dir, name) = self.parent(p)?;
        self.core.lookup(dir, name)
    }

    fn read_all(&self, node: u64, fh: u64) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut buf = [0u8; 5];
        loop {
            let n = self.core.read(node, fh, out.len() as u64, &mut buf)?;
            out.extend_from_slice(&buf[..n]);
            if n < buf.len() {
                return Ok(out);
            }
        }
    }

    fn close(&mut self, i: usize) -> Result<(), Errno> {
        let (node, fh) = self.fhs.remove(i);
        let flushed = self.core.flush(node, fh, 7);
        let released = self.core.release(node, fh, None);
        flushed.and(released)
    }
}

const WRONLY_TRUNC: i32 = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;

/// Runs `op` on both; panics (with the step) where they disagree.
fn step(model: &mut Model, sut: &mut Sut, op: &Op) {
    match op {
        Op::Put(p, data) => {
            let got = (|| {
                let (dir, name) = sut.parent(p)?;
                let (node, _, o) = sut.core.create(dir, name, WRONLY_TRUNC, WHO, 0)?;
                sut.core.write(o.fh, 0, data, 0)?;
                let f = sut.core.flush(node, o.fh, 7);
                sut.core.release(node, o.fh, None)?;
                f
            })();
            let want = (|| {
                let t = p.text();
                model.reach(&t)?;
                if model.is_dir(&t) {
                    return Err(Errno::EISDIR);
                }
                if model.cached_readers(&t) {
                    return Err(Errno::EAGAIN);
                }
                model.handles.push(MHandle::Write {
                    path: Some(t),
                    draft: Some(data.clone()),
                    truncated: true,
                    wait: false,
                });
                let last = model.handles.len() - 1;
                let r = model.publish(last);
                model.handles.pop();
                r
            })();
            assert_eq!(got, want, "{op:?}");
        }
        Op::CreateOpen(p) | Op::OpenWrite(p, _) => {
            let create = matches!(op, Op::CreateOpen(_));
            let trunc = matches!(op, Op::CreateOpen(_) | Op::OpenWrite(_, true));
            let got = (|| {
                if create {
                    let (dir, name) = sut.parent(p)?;
                    let (node, _, o) = sut.core.create(dir, name, WRONLY_TRUNC, WHO, 0)?;
                    return Ok((node, o.fh));
                }
                let (node, _) = sut.node(p)?;
                let flags = libc::O_WRONLY | if trunc { libc::O_TRUNC } else { 0 };
                let o = sut.core.open(node, flags, CALLER, |_| Ok(()))?;
                Ok((node, o.fh))
            })();
            let want = (|| {
                let t = p.text();
                model.reach(&t)?;
                match model.shown(&t) {
                    Some(Entry::Dir) => return Err(Errno::EISDIR),
                    None if !create => return Err(Errno::ENOENT),
                    _ => {}
                }
                let new = model.shown(&t).is_none();
                let wait = model.cached_readers(&t);
                if (trunc || new) && wait {
                    return Err(Errno::EAGAIN);
                }
                model.handles.push(MHandle::Write {
                    path: Some(t),
                    draft: (trunc || new).then(Vec::new),
                    truncated: trunc || new,
                    wait,
                });
                Ok(())
            })();
            match (got, want) {
                (Ok(h), Ok(())) => sut.fhs.push(h),
                (got, want) => assert_eq!(got.map(|_| ()), want, "{op:?}"),
            }
        }
        Op::OpenRead(p) => {
            let got = (|| {
                let (node, _) = sut.node(p)?;
                let o = sut.core.open(node, libc::O_RDONLY, CALLER, |_| Ok(()))?;
                Ok((node, o.fh))
            })();
            let want = (|| {
                let t = p.text();
                model.reach(&t)?;
                // A new file not yet published exists for its writer's handle only.
                match (model.shown(&t), model.tree.get(&t)) {
                    (None, _) => Err(Errno::ENOENT),
                    (Some(Entry::Dir), _) => Err(Errno::EISDIR),
                    (Some(_), None) => Err(Errno::ENOENT),
                    (Some(_), Some(Entry::File(bytes))) => {
                        let cached = !model.writers(&t);
                        let bytes = bytes.clone();
                        model.handles.push(MHandle::Read {
                            path: Some(t),
                            bytes,
                            cached,
                        });
                        Ok(())
                    }
                    (Some(_), Some(Entry::Dir)) => Err(Errno::EISDIR),
                }
            })();
            match (got, want) {
                (Ok(h), Ok(())) => sut.fhs.push(h),
                (got, want) => assert_eq!(got.map(|_| ()), want, "{op:?}"),
            }
        }
        Op::Write(i, offset, data) => {
            if model.handles.is_empty() {
                return;
            }
            let i = i % model.handles.len();
            let (_, fh) = sut.fhs[i];
            let got = sut.core.write(fh, *offset, data, 0).map(|_| ());
            let want = (|| {
                let readers_of = match &model.handles[i] {
                    MHandle::Write {
                        path, wait: true, ..
                    } => path.clone(),
                    MHandle::Write { .. } => None,
                    MHandle::Read { .. } => return Err(Errno::EBADF),
                };
                if let Some(p) = readers_of {
                    if model.cached_readers(&p) {
                        return Err(Errno::EAGAIN);
                    }
                }
                let base = match &model.handles[i] {
                    MHandle::Write { draft: Some(_), .. } => None,
                    MHandle::Write { path: None, .. } => return Err(Errno::ENOENT),
                    MHandle::Write {
                        path: Some(p),
                        truncated,
                        ..
                    } => Some(match model.tree.get(p) {
                        Some(Entry::File(b)) if !*truncated => b.clone(),
                        Some(Entry::Dir) => return Err(Errno::EISDIR),
                        _ => Vec::new(),
                    }),
                    MHandle::Read { .. } => unreachable!(),
                };
                let MHandle::Write { draft, wait, .. } = &mut model.handles[i] else {
                    unreachable!()
                };
                *wait = false;
                let d = draft.get_or_insert_with(|| base.unwrap_or_default());
                let end = *offset as usize + data.len();
                if d.len() < end {
                    d.resize(end, 0);
                }
                d[*offset as usize..end].copy_from_slice(data);
                Ok(())
            })();
            assert_eq!(got, want, "{op:?}");
        }
        Op::Read(i) => {
            if model.handles.is_empty() {
                return;
            }
            let i = i % model.handles.len();
            let (node, fh) = sut.fhs[i];
            let got = sut.read_all(node, fh);
            let want = match &model.handles[i] {
                MHandle::Read { bytes, .. } => Ok(bytes.clone()),
                MHandle::Write { draft: Some(d), .. } => Ok(d.clone()),
                MHandle::Write { path: None, .. } => Err(Errno::ENOENT),
                MHandle::Write { path: Some(p), .. } => match model.tree.get(p) {
                    Some(Entry::File(b)) => Ok(b.clone()),
                    Some(Entry::Dir) => Err(Errno::EISDIR),
                    None => Err(Errno::ENOENT),
                },
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::Close(i) => {
            if model.handles.is_empty() {
                return;
            }
            let i = i % model.handles.len();
            let got = sut.close(i);
            let want = model.publish(i);
            model.handles.remove(i);
            assert_eq!(got, want, "{op:?}");
        }
        Op::Unlink(p) => {
            let got = sut.parent(p).and_then(|(d, n)| sut.core.unlink(d, n));
            let t = p.text();
            let want = if let Err(e) = model.reach(&t) {
                Err(e)
            } else {
                match model.tree.get(&t) {
                    Some(Entry::Dir) => Err(Errno::EISDIR),
                    Some(Entry::File(_)) => {
                        model.tree.remove(&t);
                        model.detach(&t);
                        Ok(())
                    }
                    None if model.draft(&t).is_some() => {
                        model.detach(&t);
                        Ok(())
                    }
                    None => Err(Errno::ENOENT),
                }
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::Mkdir(p) => {
            let got = sut
                .parent(p)
                .and_then(|(d, n)| sut.core.mkdir(d, n, WHO))
                .map(|_| ());
            let t = p.text();
            let want = if let Err(e) = model.reach(&t) {
                Err(e)
            } else if model.shown(&t).is_some() {
                Err(Errno::EEXIST)
            } else {
                model.tree.insert(t, Entry::Dir);
                Ok(())
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::Rmdir(p) => {
            let got = sut.parent(p).and_then(|(d, n)| sut.core.rmdir(d, n));
            let t = p.text();
            let want = if let Err(e) = model.reach(&t) {
                Err(e)
            } else {
                match model.shown(&t) {
                    None => Err(Errno::ENOENT),
                    Some(Entry::File(_)) => Err(Errno::ENOTDIR),
                    Some(Entry::Dir) if !model.list(&t).is_empty() => Err(Errno::ENOTEMPTY),
                    Some(Entry::Dir) => {
                        model.tree.remove(&t);
                        model.detach(&t);
                        Ok(())
                    }
                }
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::Rename(a, b, noreplace) => {
            let got = (|| {
                let (da, na) = sut.parent(a)?;
                let (db, nb) = sut.parent(b)?;
                sut.core.rename(da, na, db, nb, !noreplace)
            })();
            let want = model_rename(model, &a.text(), &b.text(), !noreplace);
            assert_eq!(got, want, "{op:?}");
        }
        Op::Stat(p) => {
            // As stat(2) does once the kernel's cached attributes expire: lookup, getattr.
            let got = sut
                .node(p)
                .and_then(|(node, _)| sut.core.getattr(node, None))
                .map(|a| (a.kind, a.size));
            let t = p.text();
            let want = match model.reach(&t).map(|()| model.shown(&t)) {
                Err(e) => Err(e),
                Ok(s) => match s {
                    Some(Entry::Dir) => Ok((Kind::Dir, 0)),
                    Some(Entry::File(b)) => Ok((Kind::File, b.len() as u64)),
                    None => Err(Errno::ENOENT),
                },
            };
            assert_eq!(got, want, "{op:?}");
        }
        Op::List(p) => {
            let got = (|| {
                let node = match p {
                    None => sut.bucket,
                    Some(p) => {
                        let (node, a) = sut.node(p)?;
                        if a.kind != Kind::Dir {
                            return Err(Errno::ENOTDIR);
                        }
                        node
                    }
                };
                let fh = sut.core.opendir(node)?;
                let mut names = BTreeSet::new();
                let r = sut.core.readdir(node, fh, 0, |_, _, name, _| {
                    names.insert(name.to_string());
                    false
                });
                sut.core.releasedir(node, fh);
                r?;
                names.remove(".");
                names.remove("..");
                Ok(names)
            })();
            let t = p.as_ref().map(P::text).unwrap_or_default();
            let want = if let Err(e) = model.reach(&t) {
                Err(e)
            } else {
                match model.shown(&t) {
                    _ if t.is_empty() => Ok(model.list("")),
                    Some(Entry::Dir) => Ok(model.list(&t)),
                    Some(Entry::File(_)) => Err(Errno::ENOTDIR),
                    None => Err(Errno::ENOENT),
                }
            };
            assert_eq!(got, want, "{op:?}");
        }
    }
}

/// rename in the model: the store's rules, drafts of a new file published first.
fn model_rename(model: &mut Model, from: &str, to: &str, replace: bool) -> Result<(), Errno> {
    model.reach(from)?;
    model.reach(to)?;
    // What only this mount knows of the target: an unpublished file, or a directory holding
    // one, counts as it would on any filesystem.
    if from != to && model.shown(from).is_some() {
        let from_dir = model.tree.get(from) == Some(&Entry::Dir);
        if !model.tree.contains_key(to) && model.draft(to).is_some() {
            if !replace {
                return Err(Errno::EEXIST);
            }
            if from_dir {
                return Err(Errno::ENOTDIR);
            }
        }
        if replace && from_dir && model.tree.get(to) == Some(&Entry::Dir) {
            let inside = format!("{to}/");
            let drafted = model.handles.iter().any(|h| match h {
                MHandle::Write {
                    path: Some(p),
                    draft: Some(_),
                    ..
                } => p.strip_prefix(&inside).is_some_and(|r| !r.contains('/')),
                _ => false,
            });
            if drafted {
                return Err(Errno::ENOTEMPTY);
            }
        }
    }
    if !model.tree.contains_key(from) {
        // A file created here and still open for writing goes live first.
        let writers: Vec<usize> = (0..model.handles.len())
            .filter(
                |&i| matches!(&model.handles[i], MHandle::Write { path: Some(p), .. } if p == from),
            )
            .collect();
        let mut any = false;
        for i in writers {
            any |= matches!(&model.handles[i], MHandle::Write { draft: Some(_), .. });
            model.publish(i)?;
        }
        if !any {
            return Err(Errno::ENOENT);
        }
    }
    let dir = model.tree.get(from) == Some(&Entry::Dir);
    if to.starts_with(&format!("{from}/")) {
        return Err(Errno::EINVAL);
    }
    if from == to {
        return Ok(());
    }
    match model.shown(to) {
        None => {}
        Some(_) if !replace => return Err(Errno::EEXIST),
        Some(Entry::Dir) if !dir => return Err(Errno::EISDIR),
        Some(Entry::Dir) if !model.list(to).is_empty() => return Err(Errno::ENOTEMPTY),
        Some(Entry::Dir) => {}
        Some(_) if dir => return Err(Errno::ENOTDIR),
        Some(_) => {}
    }
    model.tree.remove(to);
    model.detach(to);
    let below = format!("{from}/");
    let moving: Vec<String> = model
        .tree
        .keys()
        .filter(|k| *k == from || k.starts_with(&below))
        .cloned()
        .collect();
    for k in moving {
        if let Some(e) = model.tree.remove(&k) {
            model.tree.insert(format!("{to}{}", &k[from.len()..]), e);
        }
    }
    for h in &mut model.handles {
        if let Some(p) = h.path_mut() {
            if p == from || p.starts_with(&below) {
                *p = format!("{to}{}", &p[from.len()..]);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_core_behaves_as_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut model = Model::default();
        let mut sut = Sut::new();
        for op in &ops {
            step(&mut model, &mut sut, op);
        }
        // Closing everything publishes what is left; the trees then agree entry by entry.
        while !model.handles.is_empty() {
            step(&mut model, &mut sut, &Op::Close(0));
        }
        let mut dirs = vec![String::new()];
        while let Some(d) = dirs.pop() {
            let p = (!d.is_empty()).then(|| P(d.split('/').map(|n| {
                *NAMES.iter().find(|x| **x == n).expect("a known name")
            }).collect()));
            step(&mut model, &mut sut, &Op::List(p));
            for name in model.list(&d) {
                let child = if d.is_empty() { name } else { format!("{d}/{name}") };
                match model.tree.get(&child) {
                    Some(Entry::Dir) => dirs.push(child),
                    _ => {
                        let p = P(child.split('/').map(|n| {
                            *NAMES.iter().find(|x| **x == n).expect("a known name")
                        }).collect());
                        step(&mut model, &mut sut, &Op::OpenRead(p));
                        let last = model.handles.len() - 1;
                        step(&mut model, &mut sut, &Op::Read(last));
                        step(&mut model, &mut sut, &Op::Close(last));
                    }
                }
            }
        }
    }
}
