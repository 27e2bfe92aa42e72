//! The HTTP listener: binds (plain or TLS), serves S3, health and metrics until SIGTERM or
//! SIGINT, then drains within a bound.
//!
//! Draining: readiness turns false at once (so load balancers stop sending), new S3 requests
//! get `503 SlowDown` (clients retry, through the balancer, elsewhere), requests in flight
//! finish; then the listener closes. systemd hears READY=1 once listening and STOPPING=1
//! when the drain begins.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use warp::http::{HeaderValue, Response, StatusCode};
use warp::hyper::Body;
use warp::Filter;

use crate::ops::health::{Health, ShareState};
use crate::ops::maintenance::Maintenance;
use crate::s3::{S3Code, S3Config, S3Error, S3};
use crate::store::Store;

pub mod connections;

/// Errors starting or running the listener.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// A TLS file could not be read.
    #[error("TLS {what} {}: {source}", path.display())]
    Tls {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    TlsSetup(#[from] connections::TlsSetupError),
}

/// How the listener runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen.
    pub address: SocketAddr,
    /// How long in-flight requests may run on after a stop signal.
    pub drain: Duration,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The share's health, kept by its background probe.
    pub health: Health,
    /// Limits on every client connection.
    pub limits: connections::Limits,
    /// Serve the web console under `/_nasgate/` (and send browsers opening `/` there).
    pub console: bool,
}

/// Requests in flight, and whether new ones are still welcome.
#[derive(Default)]
struct Gate {
    draining: AtomicBool,
    in_flight: AtomicUsize,
}

/// One S3 request being answered.
struct InFlight(Arc<Gate>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    fn enter(self: &Arc<Gate>) -> Option<InFlight> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self.clone());
        if self.draining.load(Ordering::SeqCst) {
            return None;
        }
        Some(guard)
    }
}

#[derive(Debug)]
struct Draining;

impl warp::reject::Reject for Draining {}

#[derive(Debug)]
struct ShareStalled;

impl warp::reject::Reject for ShareStalled {}

/// Whether the instance should take traffic: not draining, and the share's health probe
/// (which also checks `--require-mount`) last succeeded and is not stuck. Answered from
/// memory: a stalled share must not stall the answer.
fn ready(health: &Health, gate: &Gate) -> bool {
    !gate.draining.load(Ordering::SeqCst) && health.state() == ShareState::Ok
}

/// The answer to an S3 request while the share is stalled: retry soon, or elsewhere.
fn stalled_response() -> Response<Body> {
    let e = S3Error {
        retry_after: Some(2),
        ..S3Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::s3::error::S3Code::SlowDown,
            "The share is not answering on this server; retry, another instance may answer.",
        )
    };
    crate::s3::error_response(&e, "/", "share-stalled", false)
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Serves S3, health and metrics until a stop signal, then drains (see the module notes).
pub async fn run(
    options: ServerOptions,
    store: Arc<Store>,
    config: S3Config,
    maintenance: Maintenance,
) -> Result<(), ServerError> {
    let gate = Arc::new(Gate::default());
    let live = warp::get()
        .and(warp::path!("health" / "live").or(warp::path!("minio" / "health" / "live")))
        .map(|_| status_only(StatusCode::OK));
    let (ready_health, ready_gate) = (options.health.clone(), gate.clone());
    let ready = warp::get()
        .and(warp::path!("health" / "ready").or(warp::path!("minio" / "health" / "ready")))
        .map(move |_| {
            status_only(if ready(&ready_health, &ready_gate) {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            })
        });
    let metrics_store = store.clone();
    let metrics_health = options.health.clone();
    let token = options.metrics_token.clone();
    let metrics = warp::get()
        .and(warp::path!("metrics"))
        .and(warp::header::optional::<String>("authorization"))
        .map(move |auth: Option<String>| {
            if let Some(t) = &token {
                let given = auth.as_deref().and_then(|a| a.strip_prefix("Bearer "));
                let ok = given.is_some_and(|g| {
                    use subtle::ConstantTimeEq;
                    g.as_bytes().ct_eq(t.as_bytes()).into()
                });
                if !ok {
                    return status_only(StatusCode::UNAUTHORIZED);
                }
            }
            let m = crate::metrics::get();
            m.share_state(
                metrics_health.stalled(),
                metrics_health.state() == ShareState::Ok,
                crate::ops::health::stuck(Duration::from_secs(10)),
            );
            let locks = metrics_store.locks();
            m.lock_state(
                locks.namespace_len(),
                locks.pooled_len(),
                locks.ranges().len(),
            );
            let mut r = Response::new(Body::from(m.render()));
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        });
    let (enter_gate, enter_health) = (gate.clone(), options.health.clone());
    let admitted = warp::any().and_then(move || {
        let (gate, health) = (enter_gate.clone(), enter_health.clone());
        async move {
            let entered = gate.enter().ok_or_else(|| warp::reject::custom(Draining))?;
            // Fail fast rather than park a blocking thread on a share that does not answer.
            if health.stalled() {
                return Err(warp::reject::custom(ShareStalled));
            }
            Ok(entered)
        }
    });
    let root_secret = config.credentials.secret_key.clone();
    let s3_front = S3::new(store.clone(), config);
    // The console counts as in flight for the drain, but its static files and session
    // checks do not need the share, so a stalled share does not turn them away.
    let console_gate = gate.clone();
    let entered = warp::any().and_then(move || {
        let gate = console_gate.clone();
        async move { gate.enter().ok_or_else(|| warp::reject::custom(Draining)) }
    });
    let console_on = options.console;
    let console =
        crate::console::Console::new(s3_front.clone(), &root_secret, options.tls.is_some());
    let console_routes = warp::any()
        .and_then(move || async move {
            if console_on {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(entered)
        .and(
            crate::console::root_redirect()
                .or(crate::console::filter(console))
                .unify(),
        )
        .map(|_in_flight: InFlight, resp: Response<Body>| resp);
    let s3 = admitted
        .and(crate::s3::filter(s3_front))
        .map(|_in_flight: InFlight, resp: Response<Body>| resp);
    let routes = live
        .or(ready)
        .unify()
        .or(metrics)
        .unify()
        .or(console_routes)
        .unify()
        .or(s3)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            if rejection.find::<Draining>().is_some() {
                let e = S3Error::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    S3Code::SlowDown,
                    "This server is shutting down; retry, another instance will answer.",
                );
                let mut r = crate::s3::error_response(&e, "/", "draining", false);
                r.headers_mut()
                    .insert("connection", HeaderValue::from_static("close"));
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from_static("1"));
                Ok::<_, std::convert::Infallible>(r)
            } else if rejection.find::<ShareStalled>().is_some() {
                Ok(stalled_response())
            } else {
                Ok(status_only(StatusCode::NOT_FOUND))
            }
        });

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let address = options.address;
    let tls = match &options.tls {
        None => None,
        Some((cert, key)) => {
            for (what, path) in [("certificate", cert), ("key", key)] {
                std::fs::File::open(path).map_err(|source| ServerError::Tls {
                    what,
                    path: path.clone(),
                    source,
                })?;
            }
            Some(connections::tls_acceptor(cert, key)?)
        }
    };
    let listener =
        connections::listen(address).map_err(|source| ServerError::Bind { address, source })?;
    let bound = connections::local_address(&listener, address);
    let server = connections::serve(
        listener,
        tls,
        StallAware {
            inner: warp::service(routes),
            health: options.health.clone(),
        },
        options.limits,
        stop_rx.clone(),
    );
    tracing::info!(address = %bound, tls = options.tls.is_some(), "listening");
    #[cfg(target_os = "linux")]
    crate::ops::notify::notify("READY=1");
    let server = tokio::spawn(server);
    let upkeep = tokio::spawn(crate::ops::maintenance::run(
        store,
        maintenance,
        stop_rx.clone(),
    ));
    stop_signal().await;
    tracing::info!("stop requested; draining in-flight requests");
    #[cfg(target_os = "linux")]
    crate::ops::notify::notify("STOPPING=1");
    gate.draining.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + options.drain;
    while gate.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let _ = stop_rx.borrow_and_update();
    let _ = upkeep.await;
    let rest = deadline.saturating_duration_since(Instant::now());
    if tokio::time::timeout(rest, server).await.is_err() {
        tracing::warn!(
            drain = ?options.drain,
            "in-flight requests still running after the drain bound; stopping anyway"
        );
    }
    Ok(())
}

/// Asks a running server to drain and stop, as SIGTERM does (the Windows service's stop
/// request comes this way).
pub fn request_stop() {
    stop_requested().notify_one();
}

fn stop_requested() -> &'static tokio::sync::Notify {
    static STOP: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    STOP.get_or_init(tokio::sync::Notify::new)
}

async fn stop_signal() {
    tokio::select! {
        _ = os_stop_signal() => {}
        _ = stop_requested().notified() => {}
    }
}

#[cfg(unix)]
async fn os_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Reads abandon their wait when the share stalls under them, answering 503 SlowDown at
/// once instead of when (if ever) the share returns; the blocking call finishes, or not, on
/// its own. Writes are left to finish: a write answered 503 but published later would be
/// published twice when the client retries.
#[derive(Clone)]
struct StallAware<S> {
    inner: S,
    health: Health,
}

impl<S> warp::hyper::service::Service<warp::hyper::Request<Body>> for StallAware<S>
where
    S: warp::hyper::service::Service<
        warp::hyper::Request<Body>,
        Response = Response<Body>,
        Error = std::convert::Infallible,
    >,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: warp::hyper::Request<Body>) -> Self::Future {
        let read = matches!(
            *req.method(),
            warp::http::Method::GET | warp::http::Method::HEAD
        );
        let answer = self.inner.call(req);
        if !read {
            return Box::pin(answer);
        }
        let health = self.health.clone();
        Box::pin(async move {
            tokio::select! {
                biased;
                r = answer => r,
                _ = health.until_stalled() => Ok(stalled_response()),
            }
        })
    }
}

/// Ctrl-C, Ctrl-Break, the console window closing, logoff and shutdown: the console events
/// that mean "stop", all drained like SIGTERM.
#[cfg(windows)]
async fn os_stop_signal() {
    use tokio::signal::windows;
    let (c, brk, close, shutdown) = (
        windows::ctrl_c(),
        windows::ctrl_break(),
        windows::ctrl_close(),
        windows::ctrl_shutdown(),
    );
    match (c, brk, close, shutdown) {
        (Ok(mut c), Ok(mut brk), Ok(mut close), Ok(mut shutdown)) => {
            tokio::select! {
                _ = c.recv() => {}
                _ = brk.recv() => {}
                _ = close.recv() => {}
                _ = shutdown.recv() => {}
            }
        }
        // No console (a service): only a stop request ends the server.
        _ => std::future::pending().await,
    }
}
