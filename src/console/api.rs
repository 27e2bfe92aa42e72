//! The console's JSON API under `/_nasgate/api/`: login, logout, whoami, presign, usage, zip.
//! Every POST needs the custom header (or, for the zip form, the session's CSRF token) and a
//! same-origin `Origin`; everything but login needs a live session.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use subtle::ConstantTimeEq;
use warp::http::{HeaderValue, Method, Response, StatusCode};
use warp::hyper::Body;

use super::presign::{self, PresignRequest, Signer};
use super::session::{Session, COOKIE};
use super::{json_response, Call, Console, ConsoleError};
use crate::access::{Caller, Target};

/// Most requests one presign call may carry.
pub const MAX_PRESIGN: usize = 1000;

/// Answers one API call.
pub async fn route(console: &Arc<Console>, call: &Call) -> Result<Response<Body>, ConsoleError> {
    match (call.path.as_str(), &call.method) {
        ("login", &Method::POST) => login(console, call).await,
        ("logout", &Method::POST) => logout(console, call),
        ("whoami", &Method::GET) => whoami(console, call).await,
        ("presign", &Method::POST) => presign_urls(console, call).await,
        ("usage", &Method::GET) => usage(console, call).await,
        ("zip", &Method::POST) => super::zip::download(console, call).await,
        ("login" | "logout" | "whoami" | "presign" | "usage" | "zip", _) => {
            Err(ConsoleError::MethodNotAllowed)
        }
        _ => Err(ConsoleError::NotFound),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Whether the browser reached us over HTTPS (ours, or a proxy's that says so).
fn secure(console: &Console, call: &Call) -> bool {
    console.tls
        || call
            .header("x-forwarded-proto")
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// Refuses a state-changing call from another origin: the Origin header must be the
/// request's own `scheme://Host`. Behind a proxy that rewrites Host, its `X-Forwarded-Host`
/// (and `-Proto`) name the origin the browser used; a cross-site page cannot set them (a
/// custom header needs CORS, which nasgate never grants, and a form has no headers).
pub(super) fn same_origin(console: &Console, call: &Call) -> Result<(), ConsoleError> {
    let host = call
        .header("x-forwarded-host")
        .and_then(|h| h.split(',').next())
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .or_else(|| call.header("host"))
        .ok_or_else(|| ConsoleError::Forbidden("no Host header".into()))?;
    let origin = call
        .header("origin")
        .ok_or_else(|| ConsoleError::Forbidden("no Origin header".into()))?;
    let scheme = if secure(console, call) {
        "https"
    } else {
        "http"
    };
    let expected = format!("{scheme}://{host}");
    if !origin.eq_ignore_ascii_case(&expected) {
        return Err(ConsoleError::Forbidden(format!(
            "cross-origin request refused (Origin {origin})"
        )));
    }
    Ok(())
}

/// The custom header and a same-origin Origin: what a POST from the console page carries and
/// a cross-site form or fetch cannot.
fn csrf_header(console: &Console, call: &Call) -> Result<(), ConsoleError> {
    if call.header("x-nasgate-console") != Some("1") {
        return Err(ConsoleError::Forbidden(
            "missing the X-Nasgate-Console header".into(),
        ));
    }
    same_origin(console, call)
}

/// A live session: the cookie's seal and expiry hold, and the user still exists, is enabled
/// and has the secret it logged in with.
pub(super) struct Live {
    pub(super) session: Session,
    pub(super) caller: Caller,
    pub(super) secret: String,
    /// A renewed cookie to send along, when due.
    pub(super) renewed: Option<Session>,
}

pub(super) async fn refresh_users(console: &Console, bucket: Option<&str>) {
    let access = console.s3.access().clone();
    if access.is_due(bucket) {
        let bucket = bucket.map(str::to_string);
        let _ = tokio::task::spawn_blocking(move || {
            let _op = crate::ops::health::track();
            access.refresh(bucket.as_deref());
        })
        .await;
    }
}

pub(super) async fn live(console: &Console, call: &Call) -> Result<Live, ConsoleError> {
    let cookie = call.cookie(COOKIE).ok_or(ConsoleError::NoSession)?;
    let now = unix_now();
    let session = console
        .sessions
        .open(cookie, now)
        .map_err(|_| ConsoleError::NoSession)?;
    refresh_users(console, None).await;
    let (caller, secret, seal) = console
        .s3
        .access()
        .secret_and_seal(&session.access_key)
        .ok_or(ConsoleError::NoSession)?;
    let fp = console
        .sessions
        .fingerprint(&session.access_key, &secret, &seal);
    if !bool::from(fp.as_bytes().ct_eq(session.fingerprint.as_bytes())) {
        return Err(ConsoleError::NoSession);
    }
    let renewed = console.sessions.renewal(&session, now);
    Ok(Live {
        session,
        caller,
        secret,
        renewed,
    })
}

/// The Set-Cookie value for `s` (or one clearing the cookie).
fn set_cookie(console: &Console, call: &Call, s: Option<&Session>) -> HeaderValue {
    let secure = if secure(console, call) {
        "; Secure"
    } else {
        ""
    };
    let text = match s {
        Some(s) => format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            console.sessions.seal(s),
            s.expires.saturating_sub(unix_now())
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Adds the renewed cookie of `live`, if any.
pub(super) fn with_renewal(
    console: &Console,
    call: &Call,
    live: &Live,
    mut r: Response<Body>,
) -> Response<Body> {
    if let Some(s) = &live.renewed {
        r.headers_mut()
            .append("set-cookie", set_cookie(console, call, Some(s)));
    }
    r
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    access_key: String,
    secret_key: String,
}

async fn login(console: &Arc<Console>, call: &Call) -> Result<Response<Body>, ConsoleError> {
    csrf_header(console, call)?;
    let ip = call.peer.map(|p| p.0.ip());
    if let Some(wait) = console.login_blocked(ip, Instant::now()) {
        return Err(ConsoleError::TooManyAttempts(wait));
    }
    let body: LoginBody = serde_json::from_slice(&call.body)
        .map_err(|_| ConsoleError::BadRequest("expected {\"accessKey\",\"secretKey\"}".into()))?;
    refresh_users(console, None).await;
    let found = console.s3.access().secret_and_seal(&body.access_key);
    let ok = found
        .as_ref()
        .is_some_and(|(_, s, _)| bool::from(s.as_bytes().ct_eq(body.secret_key.as_bytes())));
    let Some((caller, secret, seal)) = found.filter(|_| ok) else {
        console.login_failed(ip, Instant::now());
        tracing::info!(
            access_key = body.access_key.as_str(),
            "console login refused"
        );
        return Err(ConsoleError::InvalidCredentials);
    };
    let session = console
        .sessions
        .issue(&body.access_key, &secret, &seal, unix_now());
    tracing::info!(access_key = body.access_key.as_str(), "console login");
    let mut r = json_response(
        StatusCode::OK,
        &serde_json::json!({ "accessKey": body.access_key, "root": caller == Caller::Root }),
    );
    r.headers_mut()
        .append("set-cookie", set_cookie(console, call, Some(&session)));
    Ok(r)
}

fn logout(console: &Arc<Console>, call: &Call) -> Result<Response<Body>, ConsoleError> {
    csrf_header(console, call)?;
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r.headers_mut()
        .append("set-cookie", set_cookie(console, call, None));
    Ok(r)
}

async fn whoami(console: &Arc<Console>, call: &Call) -> Result<Response<Body>, ConsoleError> {
    let live = live(console, call).await?;
    let current = live.renewed.as_ref().unwrap_or(&live.session);
    let r = json_response(
        StatusCode::OK,
        &serde_json::json!({
            "accessKey": live.session.access_key,
            "root": live.caller == Caller::Root,
            "share": console.share.display().to_string(),
            "region": presign::REGION,
            "expiresAt": current.expires,
            "csrf": console.sessions.csrf(&live.session),
        }),
    );
    Ok(with_renewal(console, call, &live, r))
}

#[derive(Deserialize)]
struct PresignBody {
    requests: Vec<PresignRequest>,
}

async fn presign_urls(console: &Arc<Console>, call: &Call) -> Result<Response<Body>, ConsoleError> {
    csrf_header(console, call)?;
    let live = live(console, call).await?;
    let body: PresignBody = serde_json::from_slice(&call.body)
        .map_err(|e| ConsoleError::BadRequest(format!("malformed presign request: {e}")))?;
    if body.requests.len() > MAX_PRESIGN {
        return Err(ConsoleError::BadRequest(format!(
            "at most {MAX_PRESIGN} requests per call"
        )));
    }
    let host = call
        .header("host")
        .ok_or_else(|| ConsoleError::BadRequest("no Host header".into()))?;
    let signer = Signer {
        access_key: &live.session.access_key,
        secret: &live.secret,
        host,
    };
    let now = SystemTime::now();
    let urls = body
        .requests
        .iter()
        .map(|r| presign::presign(r, &signer, now))
        .collect::<Result<Vec<_>, _>>()?;
    let r = json_response(StatusCode::OK, &serde_json::json!({ "urls": urls }));
    Ok(with_renewal(console, call, &live, r))
}

/// How long a usage walk may take before it answers with what it counted.
pub const USAGE_BOUND: Duration = Duration::from_secs(2);
/// How many entries a usage walk counts at most.
pub const USAGE_MAX_ENTRIES: u64 = 1_000_000;

async fn usage(console: &Arc<Console>, call: &Call) -> Result<Response<Body>, ConsoleError> {
    let live = live(console, call).await?;
    let bucket = call
        .param("bucket")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ConsoleError::BadRequest("usage needs ?bucket=".into()))?;
    refresh_users(console, Some(&bucket)).await;
    let mut target = Target {
        bucket: Some(&bucket),
        key: None,
        context: Default::default(),
    };
    target.context.insert("s3:prefix".into(), String::new());
    console
        .s3
        .access()
        .authorize(&live.caller, "s3:ListBucket", &target)?;
    let store = console.s3.store().clone();
    let b = bucket.clone();
    let counted = tokio::task::spawn_blocking(move || {
        let _op = crate::ops::health::track();
        super::usage_walk(&store, &b, Instant::now() + USAGE_BOUND, USAGE_MAX_ENTRIES)
    })
    .await
    .map_err(|_| ConsoleError::Internal)??;
    let r = json_response(
        StatusCode::OK,
        &serde_json::json!({
            "bucket": bucket,
            "bytes": counted.bytes,
            "objects": counted.objects,
            "complete": counted.complete,
            "shareTotalBytes": counted.share_total,
            "shareFreeBytes": counted.share_free,
        }),
    );
    Ok(with_renewal(console, call, &live, r))
}
