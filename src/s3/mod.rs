//! The S3 front: turns HTTP requests into store calls and store results into S3 responses.
//! It never touches the share itself.
//!
//! Every request is authenticated (SigV4 header or presigned query) before anything else;
//! bodies stream through in bounded chunks to and from blocking store calls.

pub mod body;
mod bucket;
mod bucket_policy;
pub mod chunked;
pub mod error;
mod multipart;
mod object;
pub mod operation;
mod post;
pub mod sigv4;
pub mod xml;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use percent_encoding::percent_decode_str;
use warp::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use warp::hyper::Body;
use warp::Filter;

use crate::access::{Access, AccessError, Caller, Target};
use crate::config::Credentials;
use crate::store::Store;

pub use error::{S3Code, S3Error};
pub use operation::Operation;

/// Result of a handler.
pub type S3Result = Result<Response<Body>, S3Error>;

/// A request body as a stream of byte chunks.
pub type BodyStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Settings of the S3 front.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The root key pair.
    pub credentials: Credentials,
    /// Base domain for virtual-host-style requests (`bucket.DOMAIN`).
    pub domain: Option<String>,
    /// Longest a client may stall while sending a body.
    pub idle_timeout: Duration,
}

/// The S3 front's shared state.
pub struct S3 {
    store: Arc<Store>,
    access: Arc<Access>,
    config: S3Config,
    next_id: AtomicU64,
    id_prefix: String,
}

/// One parsed request.
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// Bucket, if the request names one.
    pub bucket: Option<String>,
    /// Key, if the request names one (decoded).
    pub key: Option<String>,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: HeaderMap,
    /// The body, not yet read.
    pub body: BodyStream,
    /// What authentication established about the body.
    pub auth: sigv4::Verified,
    /// Who signed it (root, a user, or nobody).
    pub caller: Caller,
    /// Request id for responses and logs.
    pub id: String,
}

impl Request {
    /// A query parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a query parameter is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn bucket(&self) -> Result<&str, S3Error> {
        self.bucket
            .as_deref()
            .ok_or_else(|| S3Error::bad(S3Code::InvalidRequest, "no bucket in the request"))
    }

    fn key(&self) -> Result<&str, S3Error> {
        self.key
            .as_deref()
            .ok_or_else(|| S3Error::bad(S3Code::InvalidRequest, "no key in the request"))
    }
}

impl S3 {
    /// The S3 front over `store`.
    pub fn new(store: Arc<Store>, config: S3Config) -> Arc<S3> {
        let id_prefix = format!("{:08X}", rand_u32());
        let access = Arc::new(Access::new(store.clone(), config.credentials.clone()));
        Arc::new(S3 {
            store,
            access,
            config,
            next_id: AtomicU64::new(1),
            id_prefix,
        })
    }

    fn request_id(&self) -> String {
        format!(
            "{}{:08X}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The store behind this front.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Users and bucket policies.
    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }
}

fn rand_u32() -> u32 {
    (uuid::Uuid::new_v4().as_u128() & 0xFFFF_FFFF) as u32
}

/// The warp filter answering every S3 request.
pub fn filter(
    s3: Arc<S3>,
) -> impl Filter<Extract = (Response<Body>,), Error = warp::Rejection> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::any()
        .and(warp::any().map(move || s3.clone()))
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream().map(boxed_body))
        .then(
            |s3: Arc<S3>,
             method: Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap,
             body: BodyStream| async move {
                handle(s3, method, path.as_str().to_string(), query, headers, body).await
            },
        )
}

fn boxed_body<S, B>(s: S) -> BodyStream
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: bytes::Buf + Send + 'static,
{
    s.map_ok(|mut b| b.copy_to_bytes(b.remaining()))
        .map_err(std::io::Error::other)
        .boxed()
}

async fn handle(
    s3: Arc<S3>,
    method: Method,
    raw_path: String,
    raw_query: String,
    headers: HeaderMap,
    body: BodyStream,
) -> Response<Body> {
    let started = Instant::now();
    let id = s3.request_id();
    let is_head = method == Method::HEAD;
    // botocore (before 1.43.77) misreads the next response on a connection where an
    // `Expect: 100-continue` request with an empty body got its answer without a 100
    // Continue; closing that connection keeps such clients in step.
    let close_after = headers
        .get("expect")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
        && headers
            .get("content-length")
            .is_some_and(|v| v.as_bytes() == b"0");
    let (bucket, key) = split_path(&raw_path, &headers, s3.config.domain.as_deref());
    let length = |h: &HeaderMap, name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let bytes_in = length(&headers, "x-amz-decoded-content-length")
        .or_else(|| length(&headers, "content-length"))
        .unwrap_or(0);
    let op;
    let mut access_key = String::new();
    let result = if post::is_post_object(&method, key.as_deref(), &raw_query, &headers)
        && bucket.is_some()
    {
        // A browser form carries its signature in the form itself.
        op = Operation::PostObject;
        refresh_access(&s3, bucket.as_deref()).await;
        let b = bucket.clone().unwrap_or_default();
        post::post_object(&s3, b, headers, body, id.clone(), &mut access_key).await
    } else {
        refresh_access(&s3, bucket.as_deref()).await;
        match authenticate(&s3, &method, &raw_path, &raw_query, &headers) {
            Err(e) => {
                op = Operation::Unauthenticated;
                Err(e)
            }
            Ok((auth, caller)) => {
                access_key = caller.access_key(s3.access.root_key()).to_string();
                let req = Request {
                    method,
                    bucket: bucket.clone(),
                    key: key.clone(),
                    query: parse_query(&raw_query),
                    headers,
                    body,
                    auth,
                    caller,
                    id: id.clone(),
                };
                op = operation(&req);
                match authorize(&s3, &req, op) {
                    Ok(()) => dispatch(&s3, req, op).await,
                    Err(e) => Err(e),
                }
            }
        }
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => error_response(&e, &raw_path, &id, is_head),
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-amz-request-id", v.clone());
        h.insert("x-amz-id-2", v);
    }
    h.insert("server", HeaderValue::from_static("nasgate"));
    if matches!(op, Operation::GetObject | Operation::HeadObject) {
        // Stored XSS: an HTML or SVG object opened at its URL on the console's origin must
        // not run script there (the console's own files come from /_nasgate/, not here).
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(crate::console::OBJECT_CSP),
        );
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
    }
    if close_after {
        h.insert("connection", HeaderValue::from_static("close"));
    }
    let took = started.elapsed();
    let status = resp.status().as_u16();
    // What the response announces; a body cut short by a failing client is logged as sent.
    let bytes_out = if is_head {
        0
    } else {
        length(resp.headers(), "content-length").unwrap_or(0)
    };
    crate::metrics::get().request(op.name(), status, took, bytes_in, bytes_out);
    tracing::info!(
        request_id = %id,
        op = op.name(),
        access_key = access_key.as_str(),
        bucket = bucket.as_deref().unwrap_or(""),
        key = key.as_deref().unwrap_or(""),
        status,
        bytes_in,
        bytes_out,
        ms = took.as_millis() as u64,
        "request"
    );
    resp
}

/// Brings cached users and the bucket's policy up to date when a re-check is due, on the
/// blocking pool: the checks after it then decide from memory.
async fn refresh_access(s3: &Arc<S3>, bucket: Option<&str>) {
    if s3.access.is_due(bucket) {
        let access = s3.access.clone();
        let bucket = bucket.map(str::to_string);
        let _ = blocking(move || {
            access.refresh(bucket.as_deref());
            Ok(())
        })
        .await;
    }
}

/// Who signed the request and what the signature covers; an unsigned request is the
/// anonymous caller, whom only bucket policies can allow anything.
fn authenticate(
    s3: &S3,
    method: &Method,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
) -> Result<(sigv4::Verified, Caller), S3Error> {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), header_text(v).into_owned()))
        .collect();
    let parts = sigv4::RequestParts {
        method: method.as_str(),
        path: raw_path,
        query: raw_query,
        headers: &pairs,
    };
    let mut caller = Caller::Anonymous;
    let verified = sigv4::verify(&parts, SystemTime::now(), |access| {
        let (who, secret) = s3.access.secret_for(access)?;
        caller = who;
        Some(secret)
    });
    match verified {
        Ok(v) => return Ok((v, caller)),
        Err(sigv4::AuthError::Missing) => {
            return Ok((
                sigv4::Verified {
                    access_key: String::new(),
                    payload: sigv4::Payload::Unsigned,
                    signing: None,
                    signed_headers: Vec::new(),
                    presigned: false,
                },
                Caller::Anonymous,
            ))
        }
        Err(_) => {}
    }
    verified.map(|v| (v, caller)).map_err(|e| {
        S3Error::new(
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN),
            e.s3_code(),
            e.to_string(),
        )
    })
}

/// Bucket and key from the path (path style) or the Host header (virtual-host style).
fn split_path(
    raw_path: &str,
    headers: &HeaderMap,
    domain: Option<&str>,
) -> (Option<String>, Option<String>) {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let (Some(domain), Some(host)) = (domain, headers.get("host").and_then(|h| h.to_str().ok()))
    {
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        if let Some(bucket) = host.strip_suffix(domain).and_then(|b| b.strip_suffix('.')) {
            if !bucket.is_empty() {
                let key = (!path.is_empty()).then(|| decode(path));
                return (Some(bucket.to_string()), key);
            }
        }
    }
    if path.is_empty() {
        return (None, None);
    }
    match path.split_once('/') {
        None => (Some(decode(path)), None),
        Some((b, "")) => (Some(decode(b)), None),
        Some((b, k)) => (Some(decode(b)), Some(decode(k))),
    }
}

fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// The S3 operation a request asks for (for routing and logs).
fn operation(req: &Request) -> Operation {
    let m = &req.method;
    match (&req.bucket, &req.key) {
        (None, _) => match *m {
            Method::GET => Operation::ListBuckets,
            _ => Operation::Unsupported,
        },
        (Some(_), None) => {
            const UNSUPPORTED_BUCKET: [&str; 21] = [
                "acl",
                "policy",
                "cors",
                "lifecycle",
                "tagging",
                "encryption",
                "object-lock",
                "replication",
                "website",
                "logging",
                "notification",
                "accelerate",
                "requestPayment",
                "ownershipControls",
                "publicAccessBlock",
                "analytics",
                "metrics",
                "inventory",
                "intelligent-tiering",
                "versions",
                "policyStatus",
            ];
            match *m {
                Method::GET if req.has("policyStatus") => return Operation::GetBucketPolicyStatus,
                Method::GET if req.has("policy") => return Operation::GetBucketPolicy,
                Method::PUT if req.has("policy") => return Operation::PutBucketPolicy,
                Method::DELETE if req.has("policy") => return Operation::DeleteBucketPolicy,
                Method::GET if req.has("acl") => return Operation::GetBucketAcl,
                Method::PUT if req.has("acl") => return Operation::PutBucketAcl,
                Method::GET if bucket::CONFIGS.iter().any(|c| req.has(c.0)) => {
                    return Operation::GetBucketConfig
                }
                _ => {}
            }
            if UNSUPPORTED_BUCKET.iter().any(|s| req.has(s)) {
                return Operation::Unsupported;
            }
            match *m {
                Method::PUT if req.has("versioning") => Operation::Unsupported,
                Method::PUT => Operation::CreateBucket,
                Method::HEAD => Operation::HeadBucket,
                Method::DELETE => Operation::DeleteBucket,
                Method::GET if req.has("location") => Operation::GetBucketLocation,
                Method::GET if req.has("versioning") => Operation::GetBucketVersioning,
                Method::GET if req.has("uploads") => Operation::ListMultipartUploads,
                Method::GET if req.param("list-type") == Some("2") => Operation::ListObjectsV2,
                Method::GET => Operation::ListObjects,
                Method::POST if req.has("delete") => Operation::DeleteObjects,
                _ => Operation::Unsupported,
            }
        }
        (Some(_), Some(_)) => {
            const UNSUPPORTED_OBJECT: [&str; 8] = [
                "acl",
                "retention",
                "legal-hold",
                "torrent",
                "restore",
                "select",
                "attributes",
                "versionId",
            ];
            match *m {
                Method::GET if req.has("acl") => return Operation::GetObjectAcl,
                Method::PUT if req.has("acl") => return Operation::PutObjectAcl,
                _ => {}
            }
            if UNSUPPORTED_OBJECT
                .iter()
                .any(|s| req.has(s) && !(*s == "versionId" && req.param(s) == Some("null")))
            {
                return Operation::Unsupported;
            }
            let copy = req.headers.contains_key("x-amz-copy-source");
            match *m {
                Method::PUT if req.has("tagging") => Operation::PutObjectTagging,
                Method::PUT if req.has("uploadId") && copy => Operation::UploadPartCopy,
                Method::PUT if req.has("uploadId") => Operation::UploadPart,
                Method::PUT if copy => Operation::CopyObject,
                Method::PUT => Operation::PutObject,
                Method::GET if req.has("tagging") => Operation::GetObjectTagging,
                Method::GET if req.has("uploadId") => Operation::ListParts,
                Method::GET => Operation::GetObject,
                Method::HEAD => Operation::HeadObject,
                Method::DELETE if req.has("tagging") => Operation::DeleteObjectTagging,
                Method::DELETE if req.has("uploadId") => Operation::AbortMultipartUpload,
                Method::DELETE => Operation::DeleteObject,
                Method::POST if req.has("uploads") => Operation::CreateMultipartUpload,
                Method::POST if req.has("uploadId") => Operation::CompleteMultipartUpload,
                _ => Operation::Unsupported,
            }
        }
    }
}

/// Asks access control whether the request's caller may do `op` (DeleteObjects is checked
/// key by key in its handler, ListBuckets filtered bucket by bucket).
fn authorize(s3: &S3, req: &Request, op: Operation) -> Result<(), S3Error> {
    if req.caller == Caller::Root {
        return Ok(());
    }
    let anonymous = req.caller == Caller::Anonymous;
    let Some(action) = crate::access::action(op, |p| req.has(p)) else {
        // Operations nasgate does not serve answer NotImplemented to those who sign.
        return if anonymous {
            crate::metrics::get().denied(crate::access::Denial::Anonymous.name());
            Err(S3Error::access_denied("Access Denied."))
        } else {
            Ok(())
        };
    };
    match op {
        Operation::ListBuckets if !anonymous => return Ok(()),
        Operation::DeleteObjects => return Ok(()),
        _ => {}
    }
    let mut target = Target {
        bucket: req.bucket.as_deref(),
        key: req.key.as_deref(),
        context: Default::default(),
    };
    if matches!(op, Operation::ListObjects | Operation::ListObjectsV2) {
        target.context.insert(
            "s3:prefix".into(),
            req.param("prefix").unwrap_or("").to_string(),
        );
        if let Some(d) = req.param("delimiter") {
            target.context.insert("s3:delimiter".into(), d.to_string());
        }
    }
    let check = |action: &str, target: &Target| -> Result<(), S3Error> {
        s3.access
            .authorize(&req.caller, action, target)
            .map_err(S3Error::from)
    };
    check(action, &target)?;
    if matches!(op, Operation::CopyObject | Operation::UploadPartCopy) {
        // A malformed source is refused by the handler with its own error.
        if let Ok((b, k)) = object::copy_source(req) {
            let source = Target {
                bucket: Some(&b),
                key: Some(&k),
                context: Default::default(),
            };
            check("s3:GetObject", &source)?;
        }
    }
    Ok(())
}

/// Whether `caller` may delete `bucket/key` (DeleteObjects asks key by key).
pub(crate) fn may_delete(
    s3: &S3,
    caller: &Caller,
    bucket: &str,
    key: &str,
) -> Result<(), AccessError> {
    let target = Target {
        bucket: Some(bucket),
        key: Some(key),
        context: Default::default(),
    };
    s3.access.authorize(caller, "s3:DeleteObject", &target)
}

async fn dispatch(s3: &Arc<S3>, req: Request, op: Operation) -> S3Result {
    match op {
        Operation::ListBuckets => bucket::list_buckets(s3, req).await,
        Operation::CreateBucket => bucket::create(s3, req).await,
        Operation::HeadBucket => bucket::head(s3, req).await,
        Operation::DeleteBucket => bucket::delete(s3, req).await,
        Operation::GetBucketLocation => bucket::location(s3, req).await,
        Operation::GetBucketVersioning => bucket::versioning(s3, req).await,
        Operation::GetBucketConfig => bucket::config(s3, req).await,
        Operation::GetBucketAcl | Operation::GetObjectAcl => bucket::get_acl(s3, req).await,
        Operation::PutBucketAcl | Operation::PutObjectAcl => bucket::put_acl(s3, req).await,
        Operation::ListObjects => bucket::list_objects(s3, req, false).await,
        Operation::ListObjectsV2 => bucket::list_objects(s3, req, true).await,
        Operation::DeleteObjects => bucket::delete_objects(s3, req).await,
        Operation::ListMultipartUploads => multipart::list_uploads(s3, req).await,
        Operation::PutObject => object::put(s3, req).await,
        Operation::CopyObject => object::copy(s3, req).await,
        Operation::GetObject => object::get(s3, req, false).await,
        Operation::HeadObject => object::get(s3, req, true).await,
        Operation::DeleteObject => object::delete(s3, req).await,
        Operation::GetObjectTagging => object::get_tags(s3, req).await,
        Operation::PutObjectTagging => object::put_tags(s3, req).await,
        Operation::DeleteObjectTagging => object::delete_tags(s3, req).await,
        Operation::CreateMultipartUpload => multipart::create(s3, req).await,
        Operation::UploadPart => multipart::upload_part(s3, req).await,
        Operation::UploadPartCopy => multipart::upload_part_copy(s3, req).await,
        Operation::CompleteMultipartUpload => multipart::complete(s3, req).await,
        Operation::AbortMultipartUpload => multipart::abort(s3, req).await,
        Operation::ListParts => multipart::list_parts(s3, req).await,
        Operation::GetBucketPolicy => bucket_policy::get(s3, req).await,
        Operation::PutBucketPolicy => bucket_policy::put(s3, req).await,
        Operation::DeleteBucketPolicy => bucket_policy::delete(s3, req).await,
        Operation::GetBucketPolicyStatus => bucket_policy::status(s3, req).await,
        Operation::Unsupported | Operation::Unauthenticated | Operation::PostObject => {
            Err(S3Error::not_implemented("This operation"))
        }
    }
}

/// Runs a blocking store call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, S3Error> + Send + 'static,
) -> Result<T, S3Error> {
    let f = move || {
        let _op = crate::ops::health::track();
        f()
    };
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "blocking task failed");
            Err(S3Error::internal())
        }
    }
}

/// A response with an XML body.
pub(crate) fn xml_response(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/xml"));
    r
}

/// An empty response.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// The XML error response for `e` (no body for HEAD).
pub fn error_response(e: &S3Error, resource: &str, id: &str, is_head: bool) -> Response<Body> {
    let mut r = if is_head || e.status == StatusCode::NOT_MODIFIED {
        empty(e.status)
    } else {
        let mut w = xml::XmlWriter::plain("Error");
        w.text("Code", e.code.as_str())
            .text("Message", &e.message)
            .text("Resource", resource)
            .text("RequestId", id);
        xml_response(e.status, w.finish("Error"))
    };
    if let Some(secs) = e.retry_after {
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    for (name, value) in &e.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            r.headers_mut().insert(*name, v);
        }
    }
    r
}

/// A header value as text. Bytes that are not UTF-8 are read as ISO-8859-1, HTTP's historical
/// header charset: Python clients (boto3) send `é` as the single byte 0xE9 and sign the text.
pub(crate) fn header_text(value: &HeaderValue) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(s) => s.into(),
        Err(_) => value
            .as_bytes()
            .iter()
            .map(|&b| char::from(b))
            .collect::<String>()
            .into(),
    }
}

/// Stored text as a header value: ASCII as it is; text within ISO-8859-1 as those bytes (so
/// what `header_text` read comes back byte for byte); anything else as UTF-8.
pub(crate) fn text_header(text: &str) -> Option<HeaderValue> {
    if text.is_ascii() {
        return HeaderValue::from_str(text).ok();
    }
    let bytes = match text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
    {
        Some(latin1) => latin1,
        None => text.as_bytes().to_vec(),
    };
    HeaderValue::from_bytes(&bytes).ok()
}

/// User metadata, standard headers and tags from request headers, as the store keeps them.
pub(crate) fn metadata_from(headers: &HeaderMap) -> Result<BTreeMap<String, String>, S3Error> {
    use crate::store::meta;
    let mut m = BTreeMap::new();
    let mut user_bytes = 0usize;
    for (name, value) in headers {
        let name = name.as_str();
        let value = header_text(value);
        if let Some(user) = name.strip_prefix("x-amz-meta-") {
            user_bytes += user.len() + value.len();
            m.insert(meta::canonical_header(name), value.into_owned());
        } else if meta::STANDARD_HEADERS.contains(&name) {
            let v = if name == "content-encoding" {
                // aws-chunked describes the transfer, not the object; the other codings stay
                // exactly as the client wrote them.
                value
                    .split(',')
                    .filter(|t| {
                        !t.trim().eq_ignore_ascii_case("aws-chunked") && !t.trim().is_empty()
                    })
                    .collect::<Vec<_>>()
                    .join(",")
                    .trim()
                    .to_string()
            } else {
                value.into_owned()
            };
            if !v.is_empty() {
                m.insert(name.to_string(), v);
            }
        }
    }
    if user_bytes > 2048 {
        return Err(S3Error::bad(
            S3Code::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    m.entry("content-type".into())
        .or_insert_with(|| "binary/octet-stream".into());
    if let Some(t) = headers.get("x-amz-tagging").and_then(|v| v.to_str().ok()) {
        let tags = object::parse_tag_query(t)?;
        if !tags.is_empty() {
            m.insert(meta::TAGGING.into(), object::encode_tags(&tags));
        }
    }
    Ok(m)
}

/// Bytes read from the share per step of a GET body.
const SEND_CHUNK: u64 = 128 * 1024;

/// Chunk buffers a GET stream has sent and hyper has written: read into again rather than
/// allocated and zeroed anew for every 128 KiB.
type Spare = Arc<parking_lot::Mutex<Vec<Vec<u8>>>>;

/// A chunk on its way to the socket; its buffer goes back to the stream's spares once sent.
struct Sent {
    buf: Vec<u8>,
    spare: Spare,
}

impl AsRef<[u8]> for Sent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Sent {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut spare = self.spare.lock();
        if spare.len() < 4 {
            spare.push(buf);
        }
    }
}

/// Streams `len` bytes of an open object from `offset`, holding its lock until the last
/// byte is sent or the client goes away.
pub(crate) fn stream_object(reader: crate::store::ObjectReader, offset: u64, len: u64) -> Body {
    // Memory per stream stays near (depth + 2) * SEND_CHUNK whatever the object's size:
    // one chunk being read, `depth` queued, one being written to the socket.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        let _op = crate::ops::health::track();
        let spare = Spare::default();
        let mut done = 0u64;
        while done < len {
            let want = (len - done).min(SEND_CHUNK) as usize;
            let mut buf = spare.lock().pop().unwrap_or_default();
            // Zeroes only past what this buffer last held (all of it the first time).
            buf.resize(want, 0);
            let r = reader.read_at(&mut buf, offset + done);
            let msg = match r {
                Ok(0) => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "object shorter than its size",
                )),
                Ok(n) => {
                    buf.truncate(n);
                    done += n as u64;
                    let spare = spare.clone();
                    Ok(Bytes::from_owner(Sent { buf, spare }))
                }
                Err(e) => Err(e),
            };
            let stop = msg.is_err();
            if tx.blocking_send(msg).is_err() || stop {
                break;
            }
        }
        drop(reader);
    });
    Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
}
