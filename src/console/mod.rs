//! The web console: static files under `/_nasgate/`, a browser opening `/` sent there, and a
//! small JSON API (`api.rs`: login, logout, whoami, presign, usage, zip). Stateless beyond
//! the share: sessions are sealed cookies any instance can check (`session.rs`); the data
//! itself moves as ordinary S3 requests on URLs presigned with the user's own key
//! (`presign.rs`), so it obeys the same locks, policies and checks as any client. What the
//! API reads itself (usage, zip) goes through the store, under its locks, after
//! `access::Access::authorize`.

pub mod api;
pub mod assets;
pub mod presign;
pub mod session;
pub mod usage;
pub mod zip;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use warp::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use warp::hyper::Body;
use warp::Filter;

use crate::s3::{S3Error, S3};
use crate::server::connections::Peer;
use crate::store::StoreError;
use session::Sessions;
pub use usage::usage_walk;

/// The path prefix of everything the console serves (no bucket name has an `_`).
pub const PREFIX: &str = "_nasgate";

/// The Content-Security-Policy of every console answer.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; frame-src 'self' blob:; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The Content-Security-Policy of every GetObject/HeadObject answer: an HTML or SVG object
/// opened at its S3 URL, on the console's origin, runs no script and cannot call the API.
pub const OBJECT_CSP: &str = "sandbox; default-src 'none'; img-src 'self' data:; \
media-src 'self'; style-src 'unsafe-inline'";

/// Largest request body the API reads (a presign call of 1000 requests fits).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// Failed logins per client within `LOGIN_WINDOW` before further attempts are refused.
pub const LOGIN_FAILURES: usize = 5;
/// The window failed logins are counted in.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Why a console request failed; each maps to one status and JSON error code.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Missing CSRF header or token, or a foreign Origin.
    #[error("{0}")]
    Forbidden(String),
    /// Wrong access key or secret, or a disabled user.
    #[error("The access key or secret is wrong, or the user is disabled.")]
    InvalidCredentials,
    /// Too many failed logins from this client.
    #[error("Too many failed logins; try again in {0} seconds.")]
    TooManyAttempts(u64),
    /// No valid session cookie.
    #[error("Not logged in, or the session has ended.")]
    NoSession,
    /// The user may not do this.
    #[error("Access Denied.")]
    AccessDenied,
    /// No such console file or API call.
    #[error("Not found.")]
    NotFound,
    /// The method is not served at this path.
    #[error("Method not allowed.")]
    MethodNotAllowed,
    /// The store or access control refused or failed, as S3 would say it.
    #[error("{}", .0.message)]
    S3(S3Error),
    /// Something broke inside nasgate.
    #[error("Internal error.")]
    Internal,
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> ConsoleError {
        ConsoleError::S3(S3Error::from(e))
    }
}

impl From<crate::access::AccessError> for ConsoleError {
    fn from(e: crate::access::AccessError) -> ConsoleError {
        match e {
            crate::access::AccessError::Denied(_) => ConsoleError::AccessDenied,
            other => ConsoleError::S3(S3Error::from(other)),
        }
    }
}

impl From<S3Error> for ConsoleError {
    fn from(e: S3Error) -> ConsoleError {
        ConsoleError::S3(e)
    }
}

impl ConsoleError {
    /// The HTTP status and the JSON `code`.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ConsoleError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ConsoleError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            ConsoleError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "InvalidCredentials"),
            ConsoleError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyAttempts"),
            ConsoleError::NoSession => (StatusCode::UNAUTHORIZED, "NoSession"),
            ConsoleError::AccessDenied => (StatusCode::FORBIDDEN, "AccessDenied"),
            ConsoleError::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
            ConsoleError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ConsoleError::S3(e) => (e.status, e.code.as_str()),
            ConsoleError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }

    /// The JSON answer: `{"error": "<one line>", "code": "<Word>"}`.
    pub fn response(&self) -> Response<Body> {
        let (status, code) = self.status_and_code();
        let body = serde_json::json!({ "error": self.to_string(), "code": code });
        let mut r = json_response(status, &body);
        match self {
            ConsoleError::TooManyAttempts(secs) => {
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(*secs));
            }
            ConsoleError::S3(e) => {
                if let Some(secs) = e.retry_after {
                    r.headers_mut()
                        .insert("retry-after", HeaderValue::from(secs));
                }
            }
            _ => {}
        }
        r
    }
}

/// A JSON answer.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// The console's shared state.
pub struct Console {
    s3: Arc<S3>,
    sessions: Sessions,
    tls: bool,
    share: PathBuf,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Console {
    /// The console over the S3 front's store and access control; `root_secret` seals
    /// sessions; `tls` marks cookies `Secure`.
    pub fn new(s3: Arc<S3>, root_secret: &str, tls: bool) -> Arc<Console> {
        let share = s3.store().locks().root().path().to_path_buf();
        Arc::new(Console {
            s3,
            sessions: Sessions::new(root_secret),
            tls,
            share,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Seconds to wait before `ip` may try to log in again, if it failed too often.
    fn login_blocked(&self, ip: Option<IpAddr>, now: Instant) -> Option<u64> {
        let ip = ip?;
        let mut f = self.failures.lock();
        let q = f.get_mut(&ip)?;
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= LOGIN_WINDOW)
        {
            q.pop_front();
        }
        if q.len() < LOGIN_FAILURES {
            return None;
        }
        let oldest = *q.front()?;
        let wait = LOGIN_WINDOW.saturating_sub(now.duration_since(oldest));
        Some(wait.as_secs().max(1))
    }

    fn login_failed(&self, ip: Option<IpAddr>, now: Instant) {
        let Some(ip) = ip else { return };
        let mut f = self.failures.lock();
        // Bounded memory under a spray from many addresses: forget the quiet ones.
        if f.len() > 10_000 {
            f.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < LOGIN_WINDOW)
            });
        }
        let q = f.entry(ip).or_default();
        q.push_back(now);
        while q.len() > LOGIN_FAILURES {
            q.pop_front();
        }
    }
}

/// One console request.
pub struct Call {
    /// The method.
    pub method: Method,
    /// The path below `/_nasgate/`.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The client's address.
    pub peer: Option<Peer>,
    /// The body (read for POST only, bounded).
    pub body: Bytes,
}

impl Call {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// A decoded query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        form_pairs(self.query.as_bytes())
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Decoded `application/x-www-form-urlencoded` pairs.
pub fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    let dec = |s: &[u8]| {
        let plus: Vec<u8> = s
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&plus)
            .decode_utf8_lossy()
            .into_owned()
    };
    raw.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (dec(&p[..i]), dec(&p[i + 1..])),
            None => (dec(p), String::new()),
        })
        .collect()
}

/// The console's routes: `/_nasgate` and below. Other paths are rejected, for the S3 filter.
pub fn filter(
    console: Arc<Console>,
) -> impl Filter<Extract = (Response<Body>,), Error = warp::Rejection> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path(PREFIX)
        .and(warp::any().map(move || console.clone()))
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .and(warp::body::stream())
        .then(
            |console: Arc<Console>,
             method: Method,
             full: warp::path::FullPath,
             query: String,
             headers: HeaderMap,
             peer: Option<Peer>,
             body| async move {
                let mut r =
                    answer(console, method, full.as_str(), query, headers, peer, body).await;
                security_headers(r.headers_mut());
                r
            },
        )
}

/// The redirect of a browser opening `/` to the console; anything else on `/` is rejected
/// and stays S3 (ListBuckets).
pub fn root_redirect() -> impl Filter<Extract = (Response<Body>,), Error = warp::Rejection> + Clone
{
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path::end()
        .and(warp::get())
        .and(query)
        .and(warp::header::headers_cloned())
        .and_then(|query: String, headers: HeaderMap| async move {
            let html = headers
                .get_all("accept")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.to_ascii_lowercase().contains("text/html"));
            let signed = headers.contains_key("authorization")
                || form_pairs(query.as_bytes())
                    .iter()
                    .any(|(k, _)| k.to_ascii_lowercase().starts_with("x-amz-"));
            if html && !signed {
                Ok(redirect(&format!("{PREFIX}/")))
            } else {
                Err(warp::reject::not_found())
            }
        })
}

fn redirect(location: &str) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert("location", v);
    }
    r
}

/// The headers every console answer carries.
fn security_headers(h: &mut HeaderMap) {
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("server", HeaderValue::from_static("nasgate"));
}

async fn answer<S, B>(
    console: Arc<Console>,
    method: Method,
    full: &str,
    query: String,
    headers: HeaderMap,
    peer: Option<Peer>,
    body: S,
) -> Response<Body>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + Unpin + 'static,
    B: bytes::Buf + Send + 'static,
{
    let Some(rest) = full.strip_prefix('/').and_then(|p| p.strip_prefix(PREFIX)) else {
        return ConsoleError::NotFound.response();
    };
    if rest.is_empty() {
        // Relative URLs in the page resolve against `/_nasgate/`, not `/`.
        return redirect(&format!("{PREFIX}/"));
    }
    let Some(path) = rest.strip_prefix('/') else {
        return ConsoleError::NotFound.response();
    };
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned();
    if let Some(api_path) = path.strip_prefix("api/") {
        let body = if method == Method::POST {
            match read_body(body).await {
                Ok(b) => b,
                Err(e) => {
                    let mut r = e.response();
                    no_store(r.headers_mut());
                    return r;
                }
            }
        } else {
            Bytes::new()
        };
        let call = Call {
            method,
            path: api_path.to_string(),
            query,
            headers,
            peer,
            body,
        };
        let started = Instant::now();
        let mut r = match api::route(&console, &call).await {
            Ok(r) => r,
            Err(e) => e.response(),
        };
        no_store(r.headers_mut());
        // Known calls only, so a scan of odd paths cannot grow the metric's label set.
        let op = match call.path.as_str() {
            "login" => "ConsoleLogin",
            "logout" => "ConsoleLogout",
            "whoami" => "ConsoleWhoami",
            "presign" => "ConsolePresign",
            "usage" => "ConsoleUsage",
            "zip" => "ConsoleZip",
            _ => "ConsoleOther",
        };
        crate::metrics::get().request(
            op,
            r.status().as_u16(),
            started.elapsed(),
            call.body.len() as u64,
            0,
        );
        tracing::info!(
            op,
            call = call.path.as_str(),
            status = r.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "console"
        );
        return r;
    }
    if method != Method::GET && method != Method::HEAD {
        return ConsoleError::MethodNotAllowed.response();
    }
    static_file(&path, &headers, method == Method::HEAD)
}

fn no_store(h: &mut HeaderMap) {
    h.insert("cache-control", HeaderValue::from_static("no-store"));
}

async fn read_body<S, B>(mut body: S) -> Result<Bytes, ConsoleError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + Unpin + 'static,
    B: bytes::Buf + Send + 'static,
{
    use futures_util::StreamExt;
    let mut out = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), body.next())
            .await
            .map_err(|_| ConsoleError::BadRequest("the request body stalled".into()))?;
        match next {
            None => break,
            Some(Err(_)) => {
                return Err(ConsoleError::BadRequest(
                    "the request body broke off".into(),
                ))
            }
            Some(Ok(mut chunk)) => {
                if out.len() + chunk.remaining() > MAX_BODY {
                    return Err(ConsoleError::BadRequest(
                        "the request body is too large".into(),
                    ));
                }
                while chunk.has_remaining() {
                    let c = chunk.chunk();
                    out.extend_from_slice(c);
                    let n = c.len();
                    chunk.advance(n);
                }
            }
        }
    }
    Ok(Bytes::from(out))
}

fn static_file(path: &str, headers: &HeaderMap, head: bool) -> Response<Body> {
    let Some(asset) = assets::get(path) else {
        return ConsoleError::NotFound.response();
    };
    let matches = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    let mut r = if matches {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let len = asset.body.len();
        let mut r = Response::new(if head {
            Body::empty()
        } else {
            Body::from(asset.body.into_owned())
        });
        r.headers_mut()
            .insert("content-length", HeaderValue::from(len));
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static(asset.content_type));
        r
    };
    if let Ok(v) = HeaderValue::from_str(&asset.etag) {
        r.headers_mut().insert("etag", v);
    }
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}
