//! The workloads: each has an untimed setup (bucket, objects) and a timed phase in which
//! `concurrency` workers, one connection each, repeat one operation until the limit.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;

use crate::body::{seed, ReqBody, Verifier};
use crate::client::{expect_ok, read_small, read_verify, Conn, Target};
use crate::sample::{Sampler, Usage};

mod files;
mod list;
mod multipart;

pub use files::{files, FileOp};
pub use list::list;
pub use multipart::multipart;

pub struct Opts {
    pub size: u64,
    pub concurrency: usize,
    pub keys: usize,
    pub prefix: String,
    pub duration: Option<Duration>,
    pub ops: Option<u64>,
    pub populate: bool,
    pub part_size: u64,
    pub page: usize,
    pub server_pid: Option<u32>,
}

#[derive(Default)]
pub struct Outcome {
    pub ops: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub lat_us: Vec<u32>,
    pub errors: u64,
    pub usage: Option<Usage>,
    pub extra: Vec<(&'static str, serde_json::Value)>,
}

impl Outcome {
    /// Counts one operation that started at `t`: its bytes, or its error.
    pub fn count(&mut self, t: Instant, done: Result<u64, String>) {
        match done {
            Ok(b) => {
                self.lat_us
                    .push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                self.ops += 1;
                self.bytes += b;
            }
            Err(e) => {
                report(&e);
                self.errors += 1;
            }
        }
    }

    /// Adds a worker's figures to the run's.
    pub fn add(&mut self, o: Outcome) {
        self.ops += o.ops;
        self.bytes += o.bytes;
        self.errors += o.errors;
        self.lat_us.extend(o.lat_us);
    }
}

/// When the timed phase ends: a duration, a number of operations started, or both.
#[derive(Clone)]
pub struct Limit {
    deadline: Option<Instant>,
    max_ops: Option<u64>,
    started: Arc<AtomicU64>,
}

impl Limit {
    /// The limit of `o`'s timed phase, starting now.
    pub fn of(o: &Opts) -> Limit {
        Limit {
            deadline: o.duration.map(|d| Instant::now() + d),
            max_ops: o.ops,
            started: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether the phase is over; otherwise one more operation is counted as started.
    pub fn reached(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
            || self
                .max_ops
                .is_some_and(|m| self.started.fetch_add(1, Ordering::Relaxed) >= m)
    }
}

/// One repeated operation of a worker; `j` counts this worker's operations from 0.
pub trait Op: Send + 'static {
    fn run(&mut self, j: u64) -> impl Future<Output = Result<u64, String>> + Send;
}

static REPORTED: AtomicU64 = AtomicU64::new(0);

/// Prints the first errors of a run to stderr; all of them are counted.
pub fn report(e: &str) {
    if REPORTED.fetch_add(1, Ordering::Relaxed) < 10 {
        eprintln!("loadgen: error: {e}");
    }
}

/// Runs the workers until the duration has passed or `ops` operations were started.
async fn timed<W: Op>(workers: Vec<W>, o: &Opts) -> Outcome {
    let sampler = o.server_pid.map(Sampler::start);
    let t0 = Instant::now();
    let limit = Limit::of(o);
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let limit = limit.clone();
            tokio::spawn(async move {
                let mut out = Outcome::default();
                for j in 0.. {
                    if limit.reached() {
                        break;
                    }
                    let t = Instant::now();
                    out.count(t, w.run(j).await);
                }
                out
            })
        })
        .collect();
    let mut all = Outcome::default();
    for t in tasks {
        all.add(t.await.expect("worker panicked"));
    }
    all.seconds = t0.elapsed().as_secs_f64();
    all.usage = sampler.map(Sampler::finish);
    all
}

async fn connect(target: &Arc<Target>, n: usize) -> Result<Vec<Conn>, String> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = Conn::new(target.clone());
        c.connect().await?;
        conns.push(c);
    }
    Ok(conns)
}

/// Creates the bucket unless it exists (signed targets only).
pub async fn ensure_bucket(target: &Arc<Target>) -> Result<(), String> {
    if target.signer.is_none() {
        return Ok(());
    }
    let mut c = Conn::new(target.clone());
    let path = format!("/{}", target.bucket);
    let resp = c.send(Method::PUT, &path, "", &[], ReqBody::Empty).await?;
    let (status, _, body) = read_small(resp, 1 << 20).await?;
    if status.is_success() || status.as_u16() == 409 {
        Ok(())
    } else {
        Err(format!(
            "create bucket: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        ))
    }
}

/// PUTs every key with its generated content, `conc` at a time, skipping keys that already
/// have the right size (their content is a function of key and size; GETs verify it).
pub async fn populate(
    target: &Arc<Target>,
    keys: &Arc<Vec<String>>,
    size: u64,
    conc: usize,
) -> Result<(), String> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks: Vec<tokio::task::JoinHandle<Result<(), String>>> = Vec::new();
    for mut c in connect(target, conc.min(keys.len()).max(1)).await? {
        let (next, keys) = (next.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(key) = keys.get(i) else {
                    return Ok(());
                };
                let path = c.target().path(key);
                let head = c.send(Method::HEAD, &path, "", &[], ReqBody::Empty).await?;
                let (status, headers, _) = read_small(head, 1 << 20).await?;
                let len = headers
                    .get("content-length")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                if status.is_success() && len == Some(size) {
                    continue;
                }
                let body = ReqBody::gen(seed(key, size), 0, size);
                expect_ok(
                    c.send(Method::PUT, &path, "", &[], body).await?,
                    "populate PUT",
                )
                .await?;
            }
        }));
    }
    for t in tasks {
        t.await.expect("populate task panicked")?;
    }
    Ok(())
}

fn names(prefix: &str, n: usize) -> Arc<Vec<String>> {
    Arc::new((0..n).map(|i| format!("{prefix}{i}")).collect())
}

struct Put {
    conn: Conn,
    keys: Arc<Vec<String>>,
    worker: usize,
    conc: usize,
    size: u64,
}

impl Op for Put {
    async fn run(&mut self, j: u64) -> Result<u64, String> {
        let key = &self.keys[(self.worker + j as usize * self.conc) % self.keys.len()];
        let path = self.conn.target().path(key);
        let body = ReqBody::gen(seed(key, self.size), 0, self.size);
        expect_ok(
            self.conn.send(Method::PUT, &path, "", &[], body).await?,
            "PUT",
        )
        .await?;
        Ok(self.size)
    }
}

struct Get {
    conn: Conn,
    keys: Arc<Vec<String>>,
    worker: usize,
    conc: usize,
    size: u64,
}

impl Op for Get {
    async fn run(&mut self, j: u64) -> Result<u64, String> {
        let key = &self.keys[(self.worker + j as usize * self.conc) % self.keys.len()];
        let path = self.conn.target().path(key);
        let resp = self
            .conn
            .send(Method::GET, &path, "", &[], ReqBody::Empty)
            .await?;
        read_verify(
            resp,
            Verifier::new(seed(key, self.size), 0, self.size),
            &format!("GET {path}"),
        )
        .await
    }
}

/// PUT, GET, HEAD, DELETE of a fresh key, one request per operation.
struct Mixed {
    conn: Conn,
    prefix: String,
    worker: usize,
    size: u64,
}

impl Op for Mixed {
    async fn run(&mut self, j: u64) -> Result<u64, String> {
        let key = format!("{}w{}-{}", self.prefix, self.worker, j / 4);
        let path = self.conn.target().path(&key);
        let s = seed(&key, self.size);
        let c = &mut self.conn;
        match j % 4 {
            0 => {
                expect_ok(
                    c.send(Method::PUT, &path, "", &[], ReqBody::gen(s, 0, self.size))
                        .await?,
                    "PUT",
                )
                .await?;
                Ok(self.size)
            }
            1 => {
                let resp = c.send(Method::GET, &path, "", &[], ReqBody::Empty).await?;
                read_verify(resp, Verifier::new(s, 0, self.size), &format!("GET {path}")).await
            }
            2 => {
                let (h, _) = expect_ok(
                    c.send(Method::HEAD, &path, "", &[], ReqBody::Empty).await?,
                    "HEAD",
                )
                .await?;
                let len = h.get("content-length").and_then(|v| v.to_str().ok());
                if len != Some(&self.size.to_string()) {
                    return Err(format!(
                        "HEAD {path}: content-length {len:?}, expected {}",
                        self.size
                    ));
                }
                Ok(0)
            }
            _ => {
                expect_ok(
                    c.send(Method::DELETE, &path, "", &[], ReqBody::Empty)
                        .await?,
                    "DELETE",
                )
                .await?;
                Ok(0)
            }
        }
    }
}

pub async fn put(target: Arc<Target>, o: &Opts) -> Result<Outcome, String> {
    ensure_bucket(&target).await?;
    let keys = names(&o.prefix, o.keys);
    let workers = connect(&target, o.concurrency)
        .await?
        .into_iter()
        .enumerate();
    let workers = workers
        .map(|(worker, conn)| Put {
            conn,
            keys: keys.clone(),
            worker,
            conc: o.concurrency,
            size: o.size,
        })
        .collect();
    Ok(timed(workers, o).await)
}

pub async fn get(target: Arc<Target>, o: &Opts) -> Result<Outcome, String> {
    let keys = names(&o.prefix, o.keys);
    if o.populate && target.signer.is_some() {
        ensure_bucket(&target).await?;
        populate(&target, &keys, o.size, o.concurrency.max(4)).await?;
    }
    let workers = connect(&target, o.concurrency)
        .await?
        .into_iter()
        .enumerate();
    let workers = workers
        .map(|(worker, conn)| Get {
            conn,
            keys: keys.clone(),
            worker,
            conc: o.concurrency,
            size: o.size,
        })
        .collect();
    Ok(timed(workers, o).await)
}

pub async fn mixed(target: Arc<Target>, o: &Opts) -> Result<Outcome, String> {
    ensure_bucket(&target).await?;
    let workers = connect(&target, o.concurrency)
        .await?
        .into_iter()
        .enumerate();
    let workers = workers
        .map(|(worker, conn)| Mixed {
            conn,
            prefix: o.prefix.clone(),
            worker,
            size: o.size,
        })
        .collect();
    Ok(timed(workers, o).await)
}
