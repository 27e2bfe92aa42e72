//! Which way each open of a file goes to the kernel (page cache, direct, passthrough), given
//! the other handles of the file open in this mount. The kernel keeps one size and one page
//! cache per file for the whole mount, and takes only passthrough opens, all with one
//! backing file, of an inode open in passthrough; a reader must see the version it opened,
//! and a writer its draft. Free of fuser types, so a model test can drive it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::backend::{Errno, Result};
use crate::interrupt;
use crate::nodes::Version;

/// Open handles of one file in this mount, as far as the kernel's shared view of it is
/// concerned.
#[derive(Debug, Default)]
struct NodeIo {
    /// Write handles, and openers about to become one.
    writers: u32,
    /// Read handles that use the page cache or passthrough.
    cached_readers: u32,
    /// Those of them that read through passthrough.
    passthrough_readers: u32,
    /// Read handles opened direct (FOPEN_DIRECT_IO). The kernel refuses (EIO) any open
    /// but a passthrough one of an inode it reads through passthrough, and checks only once
    /// it handles the reply, which may be after a later reply: while one may still be on
    /// its way, no reader starts passthrough.
    direct_readers: u32,
}

/// What an open handle is to the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A write handle, or an opener about to become one.
    Writer,
    /// A reader through the page cache.
    CachedReader,
    /// A reader through passthrough.
    PassthroughReader,
    /// A reader through this process only.
    DirectReader,
}

impl Role {
    /// The role of a reader opened `how`.
    pub(crate) fn of<B>(how: &ReadPath<B>) -> Role {
        match how {
            ReadPath::Passthrough(_) => Role::PassthroughReader,
            ReadPath::Cached => Role::CachedReader,
            ReadPath::Direct => Role::DirectReader,
        }
    }
}

/// How a reader is opened; `B` is the kernel's backing file registration.
pub(crate) enum ReadPath<B> {
    /// The kernel reads the data file itself.
    Passthrough(Arc<B>),
    /// Through the page cache and this process.
    Cached,
    /// Through this process only (FOPEN_DIRECT_IO), while the file is open for writing.
    Direct,
}

/// The rules, with the state they need: handles per node and passthrough registrations.
pub(crate) struct IoRules<B> {
    io: Mutex<HashMap<u64, NodeIo>>,
    changed: Condvar,
    /// The kernel granted FUSE passthrough (and nasgate may register backing files).
    passthrough: AtomicBool,
    /// The backing file of each node read through passthrough, and its version.
    backings: Mutex<HashMap<u64, (Weak<B>, Version)>>,
    /// The longest a writer or reader waits for readers.
    timeout: Duration,
}

impl<B> IoRules<B> {
    /// No handles open; waits for readers last up to `timeout`.
    pub(crate) fn new(timeout: Duration) -> IoRules<B> {
        IoRules {
            io: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
            passthrough: AtomicBool::new(false),
            backings: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    /// The kernel offers passthrough.
    pub(crate) fn enable_passthrough(&self) {
        self.passthrough.store(true, Ordering::Relaxed);
    }

    // Page-cache readers and writers of a file never overlap in this mount: a reader opened
    // while the file is open for writing reads directly (FOPEN_DIRECT_IO), and a writer
    // opened while page-cache readers are open changes nothing (O_TRUNC, write, truncate)
    // until they are gone; its publish would wait for their shared locks anyway.

    /// Registers a reader of `node` that does not join a passthrough read: direct while
    /// the file is open for writing, else through the page cache (`false`) or free to
    /// start passthrough (`true`), which it may only where no other reader is open in
    /// another way.
    fn start_reader(&self, node: u64) -> (Role, bool) {
        let mut io = self.io.lock();
        let e = io.entry(node).or_default();
        if e.writers > 0 {
            e.direct_readers += 1;
            return (Role::DirectReader, false);
        }
        let alone = e.cached_readers == 0 && e.direct_readers == 0;
        e.cached_readers += 1;
        (Role::CachedReader, alone)
    }

    /// Registers a writer of `node`; whether it must wait for page-cache readers before its
    /// first change (the core answers every writer direct; the model also checks writers
    /// answered through the page cache here). Where the readers read through passthrough, the
    /// kernel takes no other open of the inode: the writer waits for them here, at its
    /// open (EAGAIN after the timeout, EINTR when `pid` is interrupted), and registers none.
    pub(crate) fn start_writing(&self, node: u64, pid: u32) -> Result<bool> {
        let readers = {
            let mut io = self.io.lock();
            let e = io.entry(node).or_default();
            e.writers += 1;
            e.cached_readers > 0
        };
        if readers && self.in_passthrough(node) {
            if let Err(e) = self.wait_for_cached_readers(node, pid) {
                self.end_io(node, Role::Writer);
                return Err(e);
            }
            return Ok(false);
        }
        Ok(readers)
    }

    /// A handle of `node` in `role` is gone.
    pub(crate) fn end_io(&self, node: u64, role: Role) {
        let mut io = self.io.lock();
        if let Some(e) = io.get_mut(&node) {
            let count = match role {
                Role::Writer => &mut e.writers,
                Role::CachedReader => &mut e.cached_readers,
                Role::PassthroughReader => {
                    e.cached_readers = e.cached_readers.saturating_sub(1);
                    &mut e.passthrough_readers
                }
                Role::DirectReader => &mut e.direct_readers,
            };
            *count = count.saturating_sub(1);
            if e.writers == 0 && e.cached_readers == 0 && e.direct_readers == 0 {
                io.remove(&node);
            }
        }
        self.changed.notify_all();
    }

    /// Waits, up to the timeout, until no page-cache reader of `node` is open; EINTR as
    /// soon as the requester `pid` is interrupted by a signal.
    pub(crate) fn wait_for_cached_readers(&self, node: u64, pid: u32) -> Result<()> {
        self.wait_while(node, pid, |e| e.cached_readers > 0)
    }

    /// Waits, up to the timeout, while the handles of `node` are `busy`; EINTR as soon as
    /// the requester `pid` is interrupted by a signal.
    fn wait_while(&self, node: u64, pid: u32, busy: impl Fn(&NodeIo) -> bool) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut io = self.io.lock();
        while io.get(&node).is_some_and(&busy) {
            let now = Instant::now();
            if now >= deadline {
                return Err(Errno::EAGAIN);
            }
            let slice = (now + interrupt::SLICE).min(deadline);
            self.changed.wait_until(&mut io, slice);
            if io.get(&node).is_some_and(&busy)
                && MutexGuard::unlocked(&mut io, || interrupt::interrupted(pid))
            {
                return Err(Errno::EINTR);
            }
        }
        Ok(())
    }

    /// How to open a reader of `node` at `version`, registered in the role that way gives
    /// (`Role::of`). `backing` registers the reader's data file for passthrough (None: it has
    /// none). Passthrough when the kernel offers it: the kernel then reads the share's data
    /// file itself while the reader's shared lock keeps the version. A reader of the version
    /// already read that way joins it; one that comes while a writer waits for those
    /// readers waits with it (joining would starve the writer), then reads directly, or
    /// joins them after all if the writer gives up first.
    pub(crate) fn read_path(
        &self,
        node: u64,
        version: Version,
        backing: impl FnOnce() -> Option<std::io::Result<B>>,
        pid: u32,
    ) -> Result<ReadPath<B>> {
        // Held while deciding, so that two opens cannot pick different ways for one inode.
        let mut backings = self.backings.lock();
        while let Some((id, v)) = self.live_backing(&backings, node) {
            // Checked and counted under one guard: a release or a writer's start may run
            // in between otherwise (neither takes `backings`), and the kernel would then be
            // answered a caching writer and a passthrough reader of one file.
            let mut io = self.io.lock();
            let Some(e) = io.get_mut(&node).filter(|e| e.passthrough_readers > 0) else {
                // The last passthrough reader went meanwhile: start afresh below.
                break;
            };
            if e.writers > 0 {
                drop((io, id, backings));
                // Until the readers are gone, or the writers: one that gave up (its own
                // timeout, a signal) leaves the passthrough read to join again.
                self.wait_while(node, pid, |e| e.cached_readers > 0 && e.writers > 0)?;
                backings = self.backings.lock();
                continue;
            }
            if v != version {
                // Only after a failed unlink or rename let the old version's readers go
                // and another version arrived: the kernel cannot mix the two.
                return Err(Errno::EAGAIN);
            }
            e.cached_readers += 1;
            e.passthrough_readers += 1;
            return Ok(ReadPath::Passthrough(id));
        }
        match self.start_reader(node) {
            (Role::DirectReader, _) => return Ok(ReadPath::Direct),
            (_, false) => return Ok(ReadPath::Cached),
            _ => {}
        }
        if !self.passthrough.load(Ordering::Relaxed) {
            return Ok(ReadPath::Cached);
        }
        match backing() {
            None => Ok(ReadPath::Cached),
            Some(Ok(id)) => {
                let id = Arc::new(id);
                backings.insert(node, (Arc::downgrade(&id), version));
                if let Some(e) = self.io.lock().get_mut(&node) {
                    e.passthrough_readers += 1;
                }
                Ok(ReadPath::Passthrough(id))
            }
            Some(Err(e)) => {
                // EPERM when not root (CAP_SYS_ADMIN): the page cache it is, from now on.
                tracing::info!("FUSE passthrough unavailable, reading through nasgate: {e}");
                self.passthrough.store(false, Ordering::Relaxed);
                Ok(ReadPath::Cached)
            }
        }
    }

    /// The backing file the kernel reads `node` through now, if any. A handle being
    /// released may still hold one that the kernel let go already; the count of passthrough
    /// readers, which their release ends, says whether any is still open.
    fn live_backing(
        &self,
        backings: &HashMap<u64, (Weak<B>, Version)>,
        node: u64,
    ) -> Option<(Arc<B>, Version)> {
        let (open, v) = backings.get(&node)?;
        let id = open.upgrade()?;
        let readers = self
            .io
            .lock()
            .get(&node)
            .is_some_and(|e| e.passthrough_readers > 0);
        readers.then_some((id, *v))
    }

    /// Whether the kernel reads `node` through passthrough now.
    fn in_passthrough(&self, node: u64) -> bool {
        self.live_backing(&self.backings.lock(), node).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::{IoRules, ReadPath, Role};
    use crate::backend::Errno;
    use proptest::prelude::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    /// What the kernel holds of one inode (fs/fuse/iomode.c): passthrough opens and their
    /// backing file, caching opens; direct opens count for nothing once in.
    #[derive(Default)]
    struct Inode {
        passthrough: u32,
        backing: Option<u64>,
        caching: u32,
    }

    #[derive(Debug, Clone)]
    enum Op {
        Read {
            node: u64,
            version: u8,
            /// What registering the data file for passthrough gives: 0 an id, 1 no file to
            /// register (None), 2 a refusal (EPERM: passthrough off from then on).
            backing: u8,
        },
        Write {
            node: u64,
        },
        /// The kernel handles one answered open (in any order, as the openers' threads
        /// run after the replies).
        Apply(usize),
        Close(usize),
        /// Released handles are dropped (the request thread finished the release).
        Settle,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                1..3u64,
                0..2u8,
                prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)]
            )
                .prop_map(|(node, version, backing)| Op::Read {
                    node,
                    version,
                    backing
                }),
            (1..3u64).prop_map(|node| Op::Write { node }),
            (0..8usize).prop_map(Op::Apply),
            (0..8usize).prop_map(Op::Close),
            Just(Op::Settle),
        ]
    }

    /// An open handle: its node, the way it went, its backing registration, and whether
    /// the kernel has handled its reply yet.
    struct Open {
        node: u64,
        role: Role,
        how: char,
        backing: Option<Arc<u64>>,
        applied: bool,
    }

    impl Open {
        /// A reader of `node` answered `how`, not yet taken by the kernel.
        fn reader(node: u64, how: ReadPath<u64>) -> Open {
            let role = Role::of(&how);
            let (how, backing) = match how {
                ReadPath::Passthrough(id) => ('p', Some(id)),
                ReadPath::Cached => ('c', None),
                ReadPath::Direct => ('d', None),
            };
            Open {
                node,
                role,
                how,
                backing,
                applied: false,
            }
        }

        /// A writer of `node`, answered direct or through the page cache.
        fn writer(node: u64, direct: bool) -> Open {
            let how = if direct { 'd' } else { 'c' };
            Open {
                node,
                role: Role::Writer,
                how,
                backing: None,
                applied: false,
            }
        }
    }

    /// The kernel lets go of the open `o` of `ino` (before it sends the release).
    fn kernel_release(ino: &mut Inode, o: &Open) {
        match o.how {
            'p' => {
                ino.passthrough -= 1;
                if ino.passthrough == 0 {
                    ino.backing = None;
                }
            }
            'c' => ino.caching -= 1,
            _ => {}
        }
    }

    /// The kernel takes the open `o` of `ino` as fuse_file_io_open does, or says why not.
    fn kernel_open(ino: &mut Inode, o: &Open) -> std::result::Result<(), &'static str> {
        if ino.backing.is_some() && o.how != 'p' {
            return Err("a non-passthrough open of an inode in passthrough");
        }
        match o.how {
            'p' => {
                let id = **o.backing.as_ref().expect("passthrough has a backing");
                if ino.caching > 0 {
                    return Err("passthrough next to a caching open");
                }
                if ino.backing.is_some_and(|b| b != id) {
                    return Err("two backing files");
                }
                ino.passthrough += 1;
                ino.backing = Some(id);
            }
            'c' => ino.caching += 1,
            _ => {}
        }
        Ok(())
    }

    proptest! {
        /// Random opens and closes of readers and writers, passthrough on, with the kernel
        /// handling the answered opens in any order: every open the rules answer is one the
        /// kernel accepts (no EIO), and a writer never goes cached while a page-cache or
        /// passthrough reader is open.
        #[test]
        fn every_open_is_one_the_kernel_accepts(ops in proptest::collection::vec(op(), 1..80)) {
            // Waits end at once: a single thread cannot close anything meanwhile.
            let rules: IoRules<u64> = IoRules::new(Duration::ZERO);
            rules.enable_passthrough();
            let mut inodes: std::collections::HashMap<u64, Inode> = Default::default();
            let mut open: Vec<Open> = Vec::new();
            let mut next_backing = 0u64;
            // Handles already released to the rules but not yet dropped: their backing
            // registration outlives the kernel's hold on it for a moment.
            let mut releasing: Vec<Arc<u64>> = Vec::new();
            for op in ops {
                match op {
                    Op::Read { node, version, backing } => {
                        let v = (node, UNIX_EPOCH, u64::from(version));
                        let register = || match backing {
                            0 => { next_backing += 1; Some(Ok(next_backing)) }
                            1 => None,
                            _ => Some(Err(std::io::Error::from_raw_os_error(libc::EPERM))),
                        };
                        let r = rules.read_path(node, v, register, 0);
                        match r {
                            Ok(how) => {
                                if matches!(how, ReadPath::Direct) {
                                    prop_assert!(open.iter().any(|o| o.node == node && o.role == Role::Writer));
                                }
                                open.push(Open::reader(node, how));
                            }
                            Err(e) => {
                                // Only waits that could not end here, or another version.
                                prop_assert_eq!(e, Errno::EAGAIN);
                            }
                        }
                    }
                    Op::Write { node } => {
                        match rules.start_writing(node, 0) {
                            Ok(direct) => {
                                let readers = open.iter().any(|o| o.node == node && matches!(o.role, Role::CachedReader | Role::PassthroughReader));
                                prop_assert_eq!(direct, readers);
                                open.push(Open::writer(node, direct));
                            }
                            Err(e) => {
                                prop_assert_eq!(e, Errno::EAGAIN);
                                prop_assert!(
                                    open.iter().any(|o| o.node == node && o.how == 'p'),
                                    "a writer waited without passthrough readers"
                                );
                            }
                        }
                    }
                    Op::Apply(i) => {
                        let pending: Vec<usize> = (0..open.len()).filter(|&j| !open[j].applied).collect();
                        if pending.is_empty() {
                            continue;
                        }
                        let o = &mut open[pending[i % pending.len()]];
                        let r = kernel_open(inodes.entry(o.node).or_default(), o);
                        prop_assert!(r.is_ok(), "EIO: {}", r.unwrap_err());
                        o.applied = true;
                    }
                    Op::Close(i) => {
                        // Only an open the kernel took has a descriptor to close.
                        let applied: Vec<usize> = (0..open.len()).filter(|&j| open[j].applied).collect();
                        if applied.is_empty() {
                            continue;
                        }
                        let o = open.remove(applied[i % applied.len()]);
                        kernel_release(inodes.entry(o.node).or_default(), &o);
                        rules.end_io(o.node, o.role);
                        releasing.extend(o.backing);
                    }
                    Op::Settle => releasing.clear(),
                }
            }
        }
    }

    /// Whether thread `tid` of this process is asleep (blocked, here: in a wait).
    fn asleep(tid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('S'))
            })
            .unwrap_or(false)
    }

    /// A reader that came while a writer waited for the passthrough readers joins them as
    /// soon as that writer gives up, instead of waiting for the readers itself.
    #[test]
    fn a_reader_waiting_with_a_writer_joins_the_passthrough_read_when_the_writer_gives_up() {
        let rules: Arc<IoRules<u64>> = Arc::new(IoRules::new(Duration::from_secs(5)));
        rules.enable_passthrough();
        let v = (1, UNIX_EPOCH, 0);
        let first = rules
            .read_path(1, v, || Some(Ok(7)), 0)
            .expect("first reader");
        assert!(matches!(first, ReadPath::Passthrough(_)));
        // A writer counted as `start_writing` counts one that waits for the open reader.
        rules
            .io
            .lock()
            .get_mut(&1)
            .expect("the reader's entry")
            .writers += 1;
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = {
            let rules = rules.clone();
            std::thread::spawn(move || {
                // SAFETY: plain syscall.
                let _ = tx.send(unsafe { libc::gettid() });
                rules.read_path(1, v, || Some(Ok(8)), 0)
            })
        };
        let tid = rx.recv().expect("the reader's thread id");
        let deadline = std::time::Instant::now() + Duration::from_secs(4);
        while !asleep(tid) {
            assert!(
                std::time::Instant::now() < deadline,
                "the reader never waited"
            );
            std::thread::yield_now();
        }
        // The writer gives up (its timeout, a signal) while the reader waits.
        rules.end_io(1, Role::Writer);
        match reader.join().expect("no panic") {
            Ok(ReadPath::Passthrough(id)) => assert_eq!(*id, 7, "joined the open backing"),
            Ok(_) => panic!("the second reader did not join the passthrough read"),
            Err(e) => panic!("the second reader failed: {e:?}"),
        }
        drop(first);
    }

    /// Threads opening and closing readers and writers of one file at once, each open
    /// handed to a shared kernel model as soon as it is answered and each close released
    /// there before the rules hear of it: no open is one the kernel refuses. Catches gaps
    /// between the rules' checks and their counts, which the sequential model cannot see.
    #[test]
    fn concurrent_opens_are_ones_the_kernel_accepts() {
        let rules: Arc<IoRules<u64>> = Arc::new(IoRules::new(Duration::ZERO));
        rules.enable_passthrough();
        let kernel = Arc::new(std::sync::Mutex::new(Inode::default()));
        let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (rules, kernel, next) = (rules.clone(), kernel.clone(), next.clone());
                std::thread::spawn(move || -> std::result::Result<(), String> {
                    let mut seed = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    for _ in 0..20_000 {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let o = if seed % 4 == 0 {
                            match rules.start_writing(1, 0) {
                                Ok(direct) => Open::writer(1, direct),
                                Err(_) => continue,
                            }
                        } else {
                            let v = (1, UNIX_EPOCH, 0);
                            let fresh = || Some(Ok(next.fetch_add(1, Ordering::Relaxed)));
                            match rules.read_path(1, v, fresh, 0) {
                                Ok(how) => Open::reader(1, how),
                                Err(_) => continue,
                            }
                        };
                        // The opener's thread may run late after the reply, and the file
                        // stay open a while.
                        for _ in 0..seed % 3 {
                            std::thread::yield_now();
                        }
                        kernel_open(&mut kernel.lock().unwrap(), &o)
                            .map_err(|e| format!("EIO: {e}"))?;
                        for _ in 0..(seed >> 8) % 3 {
                            std::thread::yield_now();
                        }
                        kernel_release(&mut kernel.lock().unwrap(), &o);
                        rules.end_io(o.node, o.role);
                    }
                    Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no panic").expect("every open accepted");
        }
    }
}
