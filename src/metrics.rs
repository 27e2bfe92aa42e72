//! Prometheus metrics: one process-wide registry that every layer records into, rendered as
//! text at `/metrics`. Recording is a few atomic operations; nothing here blocks.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn seconds_histogram() -> Histogram {
    // 100 µs to ~100 s: lock round trips on a local disk up to waits near the lock timeout.
    Histogram::new(exponential_buckets(0.0001, 2.5, 16))
}

/// Every metric nasgate keeps.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    bytes_in: Family<Labels, Counter>,
    bytes_out: Family<Labels, Counter>,
    request_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    lock_wait: Family<Labels, Histogram, fn() -> Histogram>,
    lock_timeouts: Family<Labels, Counter>,
    lock_handles: Family<Labels, Gauge>,
    sweeps: Counter,
    swept_dirs: Counter,
    expired_uploads: Counter,
    fuse_ops: Family<Labels, Counter>,
    fuse_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    share_stalled: Gauge,
    share_ready: Gauge,
    share_ops_stuck: Gauge,
    denials: Family<Labels, Counter>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("nasgate");
        let m = Metrics {
            requests: Family::default(),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
            request_seconds: Family::new_with_constructor(seconds_histogram),
            lock_wait: Family::new_with_constructor(seconds_histogram),
            lock_timeouts: Family::default(),
            lock_handles: Family::default(),
            sweeps: Counter::default(),
            swept_dirs: Counter::default(),
            expired_uploads: Counter::default(),
            fuse_ops: Family::default(),
            fuse_seconds: Family::new_with_constructor(seconds_histogram),
            share_stalled: Gauge::default(),
            share_ready: Gauge::default(),
            share_ops_stuck: Gauge::default(),
            denials: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "s3_requests",
            "S3 requests by operation and HTTP status",
            m.requests.clone(),
        );
        registry.register(
            "s3_received_bytes",
            "Request body bytes received, by operation",
            m.bytes_in.clone(),
        );
        registry.register(
            "s3_sent_bytes",
            "Response body bytes sent, by operation",
            m.bytes_out.clone(),
        );
        registry.register(
            "s3_request_seconds",
            "Time to answer an S3 request (to the response head), by operation",
            m.request_seconds.clone(),
        );
        registry.register(
            "lock_wait_seconds",
            "Time spent acquiring locks, by kind (namespace, share) and mode",
            m.lock_wait.clone(),
        );
        registry.register(
            "lock_timeouts",
            "Lock waits that reached the lock timeout, by kind and mode",
            m.lock_timeouts.clone(),
        );
        registry.register(
            "lock_handles",
            "Lock state held now: namespace entries, pooled shared read handles, forwarded tool locks",
            m.lock_handles.clone(),
        );
        registry.register(
            "tmp_sweeps",
            "Sweeps of staging files left by dead instances",
            m.sweeps.clone(),
        );
        registry.register(
            "tmp_swept_dirs",
            "Staging directories of dead instances removed",
            m.swept_dirs.clone(),
        );
        registry.register(
            "expired_uploads",
            "Unfinished multipart uploads removed after the expiry",
            m.expired_uploads.clone(),
        );
        registry.register(
            "fuse_operations",
            "FUSE operations by operation and result (ok or the errno name)",
            m.fuse_ops.clone(),
        );
        registry.register(
            "fuse_operation_seconds",
            "Time to answer a FUSE operation, by operation",
            m.fuse_seconds.clone(),
        );
        registry.register(
            "share_stalled",
            "1 while the share's operations have stopped completing (the health probe is stuck)",
            m.share_stalled.clone(),
        );
        registry.register(
            "share_ready",
            "1 while the last health probe of the share succeeded and it is not stalled",
            m.share_ready.clone(),
        );
        registry.register(
            "share_ops_stuck",
            "Share operations for clients in flight for longer than 10 s (lock waits included)",
            m.share_ops_stuck.clone(),
        );
        registry.register(
            "access_denials",
            "S3 requests refused by access control, by reason",
            m.denials.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts an S3 request.
    pub fn request(&self, op: &str, status: u16, took: Duration, bytes_in: u64, bytes_out: u64) {
        let op_l: Labels = vec![("operation", op.to_string())];
        self.requests
            .get_or_create(&vec![
                ("operation", op.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
        self.request_seconds
            .get_or_create(&op_l)
            .observe(took.as_secs_f64());
        if bytes_in > 0 {
            self.bytes_in.get_or_create(&op_l).inc_by(bytes_in);
        }
        if bytes_out > 0 {
            self.bytes_out.get_or_create(&op_l).inc_by(bytes_out);
        }
    }

    /// Records a lock acquisition (`kind`: namespace or share; `mode`: shared or
    /// exclusive) that took `took`, or timed out.
    pub fn lock_wait(
        &self,
        kind: &'static str,
        mode: &'static str,
        took: Duration,
        timed_out: bool,
    ) {
        let l: Labels = vec![("kind", kind.to_string()), ("mode", mode.to_string())];
        self.lock_wait.get_or_create(&l).observe(took.as_secs_f64());
        if timed_out {
            self.lock_timeouts.get_or_create(&l).inc();
        }
    }

    /// Records a sweep of dead instances' staging directories.
    pub fn swept(&self, dirs: usize) {
        self.sweeps.inc();
        self.swept_dirs.inc_by(dirs as u64);
    }

    /// Records expired multipart uploads removed.
    pub fn expired(&self, uploads: usize) {
        self.expired_uploads.inc_by(uploads as u64);
    }

    /// Counts a FUSE operation (`result`: "ok" or the errno's name).
    pub fn fuse(&self, op: &'static str, result: String, took: Duration) {
        self.fuse_ops
            .get_or_create(&vec![("operation", op.to_string()), ("result", result)])
            .inc();
        self.fuse_seconds
            .get_or_create(&vec![("operation", op.to_string())])
            .observe(took.as_secs_f64());
    }

    /// Counts a request refused by access control (`reason`: explicit_deny, not_allowed,
    /// anonymous, unreadable_policy, disabled_user).
    pub fn denied(&self, reason: &'static str) {
        self.denials
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// Sets the lock-state gauges (read at scrape time).
    pub fn lock_state(&self, namespace: usize, pooled: usize, tool: usize) {
        for (what, n) in [
            ("namespace", namespace),
            ("pooled_read", pooled),
            ("tool", tool),
        ] {
            self.lock_handles
                .get_or_create(&vec![("kind", what.to_string())])
                .set(n as i64);
        }
    }

    /// Sets the share-health gauges (read at scrape time).
    pub fn share_state(&self, stalled: bool, ready: bool, stuck: usize) {
        self.share_stalled.set(i64::from(stalled));
        self.share_ready.set(i64::from(ready));
        self.share_ops_stuck.set(stuck as i64);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
