//! The accept loop: TCP (and TLS) connections under limits a slow or hostile client cannot
//! get around: a bound on reading a request's headers, on the TLS handshake, on how long a
//! kept-alive connection may sit idle between requests, on header size and count, and on
//! the number of connections open at once (at the cap, accepting pauses; the kernel's
//! backlog holds newcomers until a connection closes).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use warp::hyper::server::conn::Http;
use warp::hyper::service::Service;
use warp::hyper::{Body, Request, Response};

/// Largest request head (request line and all headers) read before answering 431; the same
/// buffer bounds how much of a body hyper reads at once.
pub const MAX_HEAD_BYTES: usize = 128 * 1024;

/// Limits every connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest a client may take to send a request's headers (and to finish a TLS handshake).
    pub header_timeout: Duration,
    /// Longest a connection may stay open with no request being answered and no bytes moving
    /// (twice that for a response the client has stopped reading).
    pub keepalive_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file held nothing usable.
    #[error("TLS {what} {}: {why}", path.display())]
    Pem {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong.
        why: String,
    },
    /// rustls refused the pair.
    #[error("TLS certificate and key do not make a server configuration: {0}")]
    Config(#[from] tokio_rustls::rustls::Error),
}

/// Builds a TLS acceptor from a PEM certificate chain and private key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsSetupError> {
    let pem = |what: &'static str, path: &Path, why: String| TlsSetupError::Pem {
        what,
        path: path.to_path_buf(),
        why,
    };
    let read = |what, path: &Path| std::fs::read(path).map_err(|e| pem(what, path, e.to_string()));
    let cert_pem = read("certificate", cert)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem("certificate", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem(
            "certificate",
            cert,
            "no certificate in the file".into(),
        ));
    }
    let key_pem = read("key", key)?;
    let private = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| pem("key", key, e.to_string()))?
        .ok_or_else(|| pem("key", key, "no private key in the file".into()))?;
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, private)?;
    // Only HTTP/1.1 is served: the header timeout and limits are HTTP/1 ones.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts and serves connections until `stop` turns true; then stops accepting, asks every
/// open connection to finish its current request and close, and returns once all have.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    service: S,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let cap = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(cap));
    let mut http = Http::new();
    http.http1_only(true)
        .http1_keep_alive(true)
        .http1_header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let http = Arc::new(http);
    let mut paused = false;
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => {
                if paused {
                    paused = false;
                    tracing::info!(cap, "below the connection cap again; accepting");
                }
                p
            }
            Err(_) => {
                if !paused {
                    paused = true;
                    tracing::warn!(
                        cap,
                        "connection cap reached (--max-connections); accepting paused until one closes"
                    );
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = stopped(&mut stop) => break,
                }
            }
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped(&mut stop) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset before accept:
                // never fatal; back off a little so a full table is not spun on.
                if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    last_accept_error = Some(Instant::now());
                }
                drop(permit);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (http, service, stop, tls) = (http.clone(), service.clone(), stop.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(&http, tcp, peer, service, stop, limits.keepalive_timeout).await,
                Some(acceptor) => {
                    // A handshake that never finishes is a slow header by other means.
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            connection(&http, stream, peer, service, stop, limits.keepalive_timeout)
                                .await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    // Every connection holds a permit until it closes: having them all back means all closed.
    let _ = permits.acquire_many(cap as u32).await;
}

async fn connection<I, S>(
    http: &Http,
    io: I,
    peer: SocketAddr,
    service: S,
    mut stop: watch::Receiver<bool>,
    idle: Duration,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = Tracked {
        inner: io,
        activity: activity.clone(),
    };
    let service = Counted {
        inner: service,
        activity: activity.clone(),
        peer: Peer(peer),
    };
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        _ = activity.idle_for(idle) => {
            conn.as_mut().graceful_shutdown();
            // Idle between requests, that closes at once. A response the client has stopped
            // reading would wait forever, holding its object's read lock: give it one more
            // period, then drop the connection.
            match tokio::time::timeout(idle, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::debug!("client stopped reading its response; connection dropped");
                    Ok(())
                }
            }
        }
    };
    if let Err(e) = result {
        // Header timeouts, oversized heads and clients that vanish are routine.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// When a connection last moved bytes, and how many of its requests are being answered.
struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once no request is being answered and no byte has moved for `idle`; a
    /// request waiting on a lock is busy, not idle.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let due = last + idle;
            if Instant::now() >= due && self.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            let next = due.max(Instant::now() + Duration::from_millis(100).min(idle));
            tokio::time::sleep_until(next.into()).await;
        }
    }
}

/// The connection's byte stream, noting every byte that moves.
struct Tracked<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The service, counting the requests being answered on this connection.
struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
    peer: Peer,
}

/// The client's address, in every request's extensions (the console's login limit counts
/// attempts per client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

/// One request being answered; the count drops when its answer is ready (or abandoned).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S> Service<Request<Body>> for Counted<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        req.extensions_mut().insert(self.peer);
        self.activity.busy.fetch_add(1, Ordering::SeqCst);
        let busy = Busy(self.activity.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let r = answer.await;
            drop(busy);
            r
        })
    }
}

/// Connections the kernel may hold waiting for accept: a burst of clients, or newcomers
/// while accepting is paused at the cap, wait there instead of being refused.
const BACKLOG: u32 = 4096;

/// Binds a listener on `address` with a deep accept backlog.
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// The local address a listener is bound to, or the requested one if the system will not say.
pub fn local_address(listener: &TcpListener, requested: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(requested)
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
