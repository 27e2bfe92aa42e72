//! The share's health as a background probe sees it, so that readiness and admission never
//! touch the share in a request: a NAS whose syscalls block (a stopped server, a hard mount
//! that lost its server) would otherwise park every request, the readiness check included.
//!
//! A dedicated thread runs a small round trip on the share (write, fsync, rename, read back,
//! lock) every `every`; a second thread watches it and declares the share *stalled* when a
//! probe has been running longer than `stall_after` (or none finished for `every +
//! stall_after`), and answering again when one completes. Share operations done for clients
//! are registered while in flight, so `/metrics` can count the stuck ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// What the last probe round found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareState {
    /// The round trip completed.
    Ok,
    /// A probe has not completed for this long: the share's syscalls are blocking.
    Stalled(Duration),
    /// The last probe failed (read-only share, lost mount, I/O error...).
    Failed(String),
}

struct State {
    origin: Instant,
    every: Duration,
    stall_after: Duration,
    /// When the running probe began (ms since `origin`), while one runs.
    probe_started: AtomicU64,
    probing: AtomicBool,
    stopping: AtomicBool,
    /// When the last probe finished, whatever its outcome (ms since `origin`).
    last_done: AtomicU64,
    failure: Mutex<Option<String>>,
    stalled_tx: tokio::sync::watch::Sender<bool>,
}

impl State {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn stalled_for(&self) -> Option<Duration> {
        let now = self.now_ms();
        let since_done =
            Duration::from_millis(now.saturating_sub(self.last_done.load(Ordering::SeqCst)));
        if self.probing.load(Ordering::SeqCst) {
            let running = Duration::from_millis(
                now.saturating_sub(self.probe_started.load(Ordering::SeqCst)),
            );
            if running > self.stall_after {
                return Some(running);
            }
        }
        (since_done > self.every + self.stall_after).then_some(since_done)
    }
}

/// The share's health, shared by readiness, admission, metrics and the FUSE front.
#[derive(Clone)]
pub struct Health {
    state: Arc<State>,
    stalled_rx: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Health").field(&self.state()).finish()
    }
}

impl Health {
    /// Starts probing with `probe` (which returns why the share is unusable, if it is)
    /// every `every`; the share counts as stalled once a probe runs longer than
    /// `stall_after`. The threads end when the last `Health` handle is dropped.
    pub fn start(
        mut probe: impl FnMut() -> Result<(), String> + Send + 'static,
        every: Duration,
        stall_after: Duration,
    ) -> Health {
        let (stalled_tx, stalled_rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(State {
            origin: Instant::now(),
            every,
            stall_after,
            probe_started: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            last_done: AtomicU64::new(0),
            failure: Mutex::new(None),
            stalled_tx,
        });
        // The first round runs before anyone asks, so readiness starts from a real answer.
        run_probe(&state, &mut probe);
        let weak = Arc::downgrade(&state);
        let _ = std::thread::Builder::new()
            .name("share-probe".into())
            .spawn(move || probe_loop(weak, probe));
        let weak = Arc::downgrade(&state);
        let _ = std::thread::Builder::new()
            .name("share-watch".into())
            .spawn(move || watch_loop(weak));
        Health { state, stalled_rx }
    }

    /// What the share looks like now (never touches the share).
    pub fn state(&self) -> ShareState {
        if let Some(d) = self.state.stalled_for() {
            return ShareState::Stalled(d);
        }
        match &*self.state.failure.lock() {
            Some(why) => ShareState::Failed(why.clone()),
            None => ShareState::Ok,
        }
    }

    /// Whether the share's operations have stopped completing.
    pub fn stalled(&self) -> bool {
        self.state.stalled_for().is_some()
    }

    /// Stops probing and waits (at most `bound`) for a running probe to finish, so nothing
    /// touches the share after the caller lets go of the store.
    pub fn stop(&self, bound: Duration) {
        self.state.stopping.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + bound;
        while self.state.probing.load(Ordering::SeqCst) && Instant::now() < deadline {
            // The probe runs on a plain thread with nothing to wait on; poll briefly.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Resolves once the share is (or becomes) stalled.
    pub async fn until_stalled(&self) {
        let mut rx = self.stalled_rx.clone();
        loop {
            if rx.wait_for(|s| *s).await.is_err() {
                return std::future::pending().await;
            }
            if self.stalled() {
                return;
            }
            // The watcher has not yet seen the share come back: wait until it has.
            if rx.wait_for(|s| !*s).await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

fn run_probe(state: &State, probe: &mut impl FnMut() -> Result<(), String>) {
    state.probe_started.store(state.now_ms(), Ordering::SeqCst);
    state.probing.store(true, Ordering::SeqCst);
    if state.stopping.load(Ordering::SeqCst) {
        state.probing.store(false, Ordering::SeqCst);
        return;
    }
    let outcome = probe();
    {
        let mut failure = state.failure.lock();
        match (&*failure, &outcome) {
            (None, Err(why)) => tracing::warn!(reason = %why, "share probe failed: not ready"),
            (Some(_), Ok(())) => tracing::info!("share probe succeeds again: ready"),
            _ => {}
        }
        *failure = outcome.err();
    }
    state.last_done.store(state.now_ms(), Ordering::SeqCst);
    state.probing.store(false, Ordering::SeqCst);
}

fn probe_loop(state: Weak<State>, mut probe: impl FnMut() -> Result<(), String>) {
    loop {
        let Some(s) = state.upgrade() else { return };
        let every = s.every;
        drop(s);
        std::thread::sleep(every);
        let Some(s) = state.upgrade() else { return };
        if s.stopping.load(Ordering::SeqCst) {
            return;
        }
        run_probe(&s, &mut probe);
    }
}

fn watch_loop(state: Weak<State>) {
    let mut was = false;
    loop {
        let Some(s) = state.upgrade() else { return };
        let stalled = s.stalled_for();
        if stalled.is_some() != was {
            was = stalled.is_some();
            match stalled {
                Some(d) => tracing::warn!(
                    waited = ?d,
                    "share stalled: its operations stopped completing; not ready, new S3 requests get 503 SlowDown"
                ),
                None => tracing::info!("share answers again"),
            }
            s.stalled_tx.send_replace(was);
        }
        let tick =
            (s.stall_after / 10).clamp(Duration::from_millis(10), Duration::from_millis(100));
        drop(s);
        std::thread::sleep(tick);
    }
}

/// How the probe describes an error, naming the common NAS failures.
pub fn describe(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem {
        format!("the share is read-only ({e})")
    } else if e.raw_os_error() == Some(crate::platform::ENOTCONN) {
        format!("the share's mount is gone ({e})")
    } else {
        e.to_string()
    }
}

/// Share operations in flight for clients, by start time.
struct Ops {
    next: AtomicU64,
    started: Mutex<HashMap<u64, Instant>>,
}

fn ops() -> &'static Ops {
    static OPS: OnceLock<Ops> = OnceLock::new();
    OPS.get_or_init(|| Ops {
        next: AtomicU64::new(0),
        started: Mutex::new(HashMap::new()),
    })
}

/// One share operation in flight; unregistered when dropped.
pub struct ShareOp(u64);

impl Drop for ShareOp {
    fn drop(&mut self) {
        ops().started.lock().remove(&self.0);
    }
}

/// Registers a share operation (a blocking store call) as in flight until the guard drops.
pub fn track() -> ShareOp {
    let o = ops();
    let id = o.next.fetch_add(1, Ordering::Relaxed);
    o.started.lock().insert(id, Instant::now());
    ShareOp(id)
}

/// Share operations in flight for longer than `longer_than`.
pub fn stuck(longer_than: Duration) -> usize {
    let now = Instant::now();
    ops()
        .started
        .lock()
        .values()
        .filter(|t| now.duration_since(**t) > longer_than)
        .count()
}

/// The health the serving process installed (the FUSE front consults it).
pub fn installed() -> Option<&'static Health> {
    INSTALLED.get()
}

/// Makes `health` the process's health (once; later calls are ignored).
pub fn install(health: Health) {
    let _ = INSTALLED.set(health);
}

static INSTALLED: OnceLock<Health> = OnceLock::new();
