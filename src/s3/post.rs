//! POST Object: browser-form uploads signed with a SigV4 POST policy.
//!
//! The form is `multipart/form-data`, read as a stream: the small fields before the file are
//! collected (at most [`FIELDS_LIMIT`] bytes in all), the signature and every policy condition
//! are checked, and only then is the file part streamed into an ordinary staged upload, so a
//! refused form leaves nothing on the share and a large file never sits in memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value;
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::store::meta;
use crate::store::object::{PutOptions, WriteCondition};

use super::body::{self, Decoder};
use super::error::S3Code;
use super::object::{content_md5, encode_tags, etag_header, set_checksum_headers};
use super::xml::{self, XmlWriter};
use super::{blocking, empty, metadata_from, sigv4, xml_response, BodyStream, Request, S3Error};
use super::{S3Result, S3};

/// Most bytes the fields before the file may take together (S3 allows 20 KB).
const FIELDS_LIMIT: u64 = 20 * 1024;
/// Largest object a single POST may upload (S3's single-PUT limit).
const MAX_OBJECT: u64 = 5 * 1024 * 1024 * 1024;

/// Whether a request is a browser-form POST Object (`POST /bucket` with a form body), which
/// carries its credentials in the form instead of the headers or the query.
pub fn is_post_object(
    method: &Method,
    key: Option<&str>,
    query: &str,
    headers: &HeaderMap,
) -> bool {
    *method == Method::POST
        && key.is_none()
        && query.is_empty()
        && headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            })
}

/// The form fields, names lower-cased (S3 matches them case-insensitively), values as sent.
type Fields = BTreeMap<String, String>;

fn malformed(message: impl Into<String>) -> S3Error {
    S3Error::bad(S3Code::MalformedPOSTRequest, message)
}

fn policy_denied(message: impl std::fmt::Display) -> S3Error {
    S3Error::access_denied(format!("Invalid according to Policy: {message}"))
}

/// POST Object.
pub async fn post_object(
    s3: &Arc<S3>,
    bucket: String,
    headers: HeaderMap,
    body: BodyStream,
    id: String,
    signer: &mut String,
) -> S3Result {
    let boundary = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| {
            malformed("The body of your POST request is not well-formed multipart/form-data.")
        })?;
    let idle = s3.config.idle_timeout;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(MAX_OBJECT + FIELDS_LIMIT + 64 * 1024)
            .per_field(FIELDS_LIMIT)
            .for_field("file", MAX_OBJECT),
    );
    let mut form =
        multer::Multipart::with_constraints(stalls_end(body, idle), boundary, constraints);

    let mut fields = Fields::new();
    let mut field_bytes = 0u64;
    let file = loop {
        let next = match tokio::time::timeout(idle, form.next_field()).await {
            Err(_) => return Err(timeout()),
            Ok(r) => r.map_err(form_error)?,
        };
        let Some(field) = next else {
            return Err(S3Error::bad(
                S3Code::InvalidArgument,
                "POST requires exactly one file upload per request.",
            ));
        };
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            break field;
        }
        let value = match tokio::time::timeout(idle, field.text()).await {
            Err(_) => return Err(timeout()),
            Ok(r) => r.map_err(form_error)?,
        };
        field_bytes += (name.len() + value.len()) as u64;
        if field_bytes > FIELDS_LIMIT {
            return Err(malformed(
                "Your POST request fields exceed the maximum allowed size.",
            ));
        }
        if fields.insert(name.clone(), value).is_some() {
            return Err(S3Error::bad(
                S3Code::InvalidArgument,
                format!("POST requires exactly one value per form field: {name}"),
            ));
        }
    };

    let mut caller = crate::access::Caller::Anonymous;
    let access_key = authenticate(&fields, |access| {
        let (who, secret) = s3.access.secret_for(access)?;
        caller = who;
        Some(secret)
    })?;
    signer.clone_from(&access_key);
    let filename = file.file_name().unwrap_or_default().to_string();
    let key = fields
        .get("key")
        .ok_or_else(|| {
            S3Error::bad(
                S3Code::InvalidArgument,
                "Bucket POST must contain a field named 'key'.",
            )
        })?
        .replace("${filename}", &filename);
    if key.is_empty() {
        return Err(S3Error::bad(
            S3Code::InvalidArgument,
            "User key must have a length greater than 0.",
        ));
    }
    // The form's signer must be allowed the upload, as a PUT by them would be.
    let target = crate::access::Target {
        bucket: Some(&bucket),
        key: Some(&key),
        context: Default::default(),
    };
    s3.access.authorize(&caller, "s3:PutObject", &target)?;
    let policy = Policy::decode(&fields["policy"])?;
    policy.check_time(SystemTime::now())?;
    let length_range = policy.check_fields(&bucket, &key, &fields)?;

    // The fields become the headers a PUT would have sent, so one parser reads both.
    let mut as_headers = HeaderMap::new();
    for (name, value) in &fields {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            as_headers.insert(n, v);
        }
    }
    if !fields.contains_key("content-type") {
        if let Some(ct) = file.content_type() {
            if let Ok(v) = HeaderValue::from_str(ct.as_ref()) {
                as_headers.insert("content-type", v);
            }
        }
    }
    let mut meta = metadata_from(&as_headers)?;
    if let Some(tagging) = fields.get("tagging") {
        let tags =
            xml::parse::<xml::Tagging>(tagging.as_bytes()).ok_or_else(S3Error::malformed_xml)?;
        let pairs: Vec<(String, String)> =
            tags.tags.into_iter().map(|t| (t.key, t.value)).collect();
        let checked = super::object::parse_tag_query(&encode_tags(&pairs))?;
        if !checked.is_empty() {
            meta.insert(meta::TAGGING.into(), encode_tags(&checked));
        }
    }
    let form_req = Request {
        method: Method::POST,
        bucket: Some(bucket.clone()),
        key: Some(key.clone()),
        query: Vec::new(),
        headers: as_headers,
        body: futures_util::stream::empty().boxed(),
        auth: sigv4::Verified {
            access_key,
            payload: sigv4::Payload::Unsigned,
            signing: None,
            signed_headers: Vec::new(),
            presigned: false,
        },
        caller,
        id,
    };
    let sums = body::checksums(&form_req)?;
    let options = PutOptions {
        meta,
        condition: WriteCondition::Always,
        content_md5: content_md5(&form_req)?,
        checksums: sums.requested.clone(),
        expected: sums.expected.clone(),
        size: None,
    };
    let redirect = fields.get("success_action_redirect").cloned();
    let status = fields.get("success_action_status").cloned();

    let store = s3.store.clone();
    let (b, k) = (bucket.clone(), key.clone());
    let upload = blocking(move || Ok(store.begin_put(&b, &k, options)?)).await?;
    let store = s3.store.clone();
    let (min, max) = length_range.unwrap_or((0, MAX_OBJECT));
    let file_body = file.map_err(std::io::Error::other).boxed();
    let decoder = Decoder::Plain { sha256: None };
    let info = body::receive(
        file_body,
        decoder,
        Counted { upload, len: 0 },
        idle,
        Some(max),
        move |c, _| {
            if c.len < min {
                return Err(S3Error::bad(
                    S3Code::EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed size",
                ));
            }
            Ok(c.upload.finish(&store)?)
        },
    )
    .await
    .map_err(|e| {
        if e.code == S3Code::MaxMessageLengthExceeded {
            S3Error::bad(
                S3Code::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size",
            )
        } else {
            e
        }
    })?;

    let mut resp = answer(
        &bucket,
        &key,
        &info.etag,
        redirect.as_deref(),
        status.as_deref(),
    );
    resp.headers_mut().insert("etag", etag_header(&info.etag));
    set_checksum_headers(&mut resp, &info.checksums);
    Ok(resp)
}

/// The answer `success_action_redirect` / `success_action_status` ask for.
fn answer(
    bucket: &str,
    key: &str,
    etag: &str,
    redirect: Option<&str>,
    status: Option<&str>,
) -> warp::http::Response<warp::hyper::Body> {
    let location = format!("/{bucket}/{}", super::bucket::encode_key(key));
    if let Some(url) = redirect.filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
        let sep = if url.contains('?') { '&' } else { '?' };
        let enc = |s: &str| super::bucket::encode_key(s).replace('/', "%2F");
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            enc(bucket),
            enc(key),
            enc(&format!("\"{etag}\""))
        );
        let mut r = empty(StatusCode::SEE_OTHER);
        if let Ok(v) = HeaderValue::from_str(&target) {
            r.headers_mut().insert("location", v);
        }
        return r;
    }
    let mut r = match status {
        Some("200") => empty(StatusCode::OK),
        Some("201") => {
            let mut w = XmlWriter::plain("PostResponse");
            w.text("Location", &location)
                .text("Bucket", bucket)
                .text("Key", key)
                .text("ETag", &format!("\"{etag}\""));
            xml_response(StatusCode::CREATED, w.finish("PostResponse"))
        }
        _ => empty(StatusCode::NO_CONTENT),
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert("location", v);
    }
    r
}

/// Counts the file's bytes on their way into the staged upload.
struct Counted {
    upload: crate::store::object::Upload,
    len: u64,
}

impl body::Sink for Counted {
    fn write(&mut self, buf: &[u8]) -> Result<(), crate::store::StoreError> {
        self.len += buf.len() as u64;
        self.upload.write(buf)
    }
}

fn timeout() -> S3Error {
    S3Error::bad(S3Code::RequestTimeout,
        "Your socket connection to the server was not read from or written to within the timeout period.",
    )
}

fn form_error(e: multer::Error) -> S3Error {
    match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            S3Error::bad(
                S3Code::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size",
            )
        }
        multer::Error::StreamReadFailed(_) => {
            S3Error::bad(S3Code::IncompleteBody, "The request body ended early.")
        }
        other => malformed(format!(
            "The body of your POST request is not well-formed multipart/form-data: {other}"
        )),
    }
}

/// The body, ended with an error when the client stays silent longer than `idle`.
fn stalls_end(body: BodyStream, idle: Duration) -> BodyStream {
    futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(item)) => Some((item, Some(body))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "client stalled",
                )),
                None,
            )),
        }
    })
    .boxed()
}

/// Checks the form's signature; returns the access key that signed it.
fn authenticate(
    fields: &Fields,
    lookup_secret: impl FnOnce(&str) -> Option<String>,
) -> Result<String, S3Error> {
    let get = |name: &str| fields.get(name).map(String::as_str);
    if get("policy").is_none() {
        // Anonymous uploads need a bucket policy that allows them; there is none to allow it.
        return Err(S3Error::access_denied("Access Denied"));
    }
    if get("awsaccesskeyid").is_some() || get("signature").is_some() {
        return Err(S3Error::bad(S3Code::InvalidRequest,
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        ));
    }
    let need = |name: &str| {
        get(name).ok_or_else(|| {
            S3Error::bad(
                S3Code::InvalidArgument,
                format!("Bucket POST must contain a field named '{name}'."),
            )
        })
    };
    let form = sigv4::PostSignature {
        algorithm: need("x-amz-algorithm")?,
        credential: need("x-amz-credential")?,
        date: need("x-amz-date")?,
        signature: need("x-amz-signature")?,
        policy: need("policy")?,
    };
    sigv4::verify_post(&form, lookup_secret).map_err(|e| {
        S3Error::new(
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN),
            e.s3_code(),
            e.to_string(),
        )
    })
}

/// One condition of a POST policy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// The field equals the value exactly.
    Eq(String, String),
    /// The field starts with the value.
    StartsWith(String, String),
    /// The file's length lies in this inclusive range.
    LengthRange(u64, u64),
}

/// A decoded POST policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Policy {
    /// Unix seconds after which the policy is void.
    expires: i64,
    conditions: Vec<Condition>,
}

/// Form fields no condition needs to name.
fn exempt(field: &str) -> bool {
    matches!(field, "policy" | "x-amz-signature" | "file") || field.starts_with("x-ignore-")
}

impl Policy {
    /// Decodes the base64 policy field; anything this server does not understand is refused.
    fn decode(b64: &str) -> Result<Policy, S3Error> {
        let bad = |m: &str| malformed(format!("Invalid Policy: {m}"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| bad("the policy is not valid base64"))?;
        let doc: Value =
            serde_json::from_slice(&raw).map_err(|_| bad("the policy is not valid JSON"))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| bad("the policy must be a JSON object"))?;
        if let Some(other) = obj
            .keys()
            .find(|k| *k != "expiration" && *k != "conditions")
        {
            return Err(bad(&format!("unknown policy element {other:?}")));
        }
        let expiration = obj
            .get("expiration")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("the policy needs an expiration"))?;
        let expires = parse_expiration(expiration)
            .ok_or_else(|| bad("the expiration is not an ISO 8601 UTC time"))?;
        let list = obj
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("the policy needs a list of conditions"))?;
        let mut conditions = Vec::new();
        for c in list {
            conditions.push(Condition::decode(c).map_err(|m| bad(&m))?);
        }
        Ok(Policy {
            expires,
            conditions,
        })
    }

    fn check_time(&self, now: SystemTime) -> Result<(), S3Error> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if now > self.expires {
            return Err(policy_denied("Policy expired."));
        }
        Ok(())
    }

    /// Checks every condition against the form and that every field is named by one.
    /// Returns the allowed length range of the file, if the policy sets one.
    fn check_fields(
        &self,
        bucket: &str,
        key: &str,
        fields: &Fields,
    ) -> Result<Option<(u64, u64)>, S3Error> {
        let value = |name: &str| -> String {
            match name {
                "bucket" => bucket.to_string(),
                "key" => key.to_string(),
                _ => fields.get(name).cloned().unwrap_or_default(),
            }
        };
        let mut range: Option<(u64, u64)> = None;
        for c in &self.conditions {
            match c {
                Condition::Eq(name, want) => {
                    if value(name) != *want {
                        return Err(policy_denied(format!(
                            "Policy Condition failed: [\"eq\", \"${name}\", {want:?}]"
                        )));
                    }
                }
                Condition::StartsWith(name, prefix) => {
                    let got = value(name);
                    // Content-Type may list several types; each must match (as S3 reads it).
                    let ok = if name == "content-type" {
                        got.split(',')
                            .all(|t| t.trim().starts_with(prefix.as_str()))
                    } else {
                        got.starts_with(prefix.as_str())
                    };
                    if !ok {
                        return Err(policy_denied(format!(
                            "Policy Condition failed: [\"starts-with\", \"${name}\", {prefix:?}]"
                        )));
                    }
                }
                Condition::LengthRange(lo, hi) => {
                    range = Some(match range {
                        Some((a, b)) => (a.max(*lo), b.min(*hi)),
                        None => (*lo, *hi),
                    });
                }
            }
        }
        for name in fields.keys() {
            if exempt(name) {
                continue;
            }
            let named = self.conditions.iter().any(|c| match c {
                Condition::Eq(n, _) | Condition::StartsWith(n, _) => n == name,
                Condition::LengthRange(..) => false,
            });
            if !named {
                return Err(policy_denied(format!("Extra input fields: {name}")));
            }
        }
        Ok(range)
    }
}

impl Condition {
    fn decode(c: &Value) -> Result<Condition, String> {
        let field = |s: &str| -> Result<String, String> {
            s.strip_prefix('$')
                .map(str::to_ascii_lowercase)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("a condition must name a field with '$', not {s:?}"))
        };
        let number = |v: &Value| -> Result<u64, String> {
            match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| "content-length-range needs two non-negative integers".to_string())
        };
        match c {
            Value::Object(map) if map.len() == 1 => {
                let (name, v) = map.iter().next().expect("one entry");
                let v = v.as_str().ok_or("a condition's value must be a string")?;
                Ok(Condition::Eq(name.to_ascii_lowercase(), v.to_string()))
            }
            Value::Array(items) if items.len() == 3 => {
                let op = items[0]
                    .as_str()
                    .ok_or("a condition's operator must be a string")?;
                match op.to_ascii_lowercase().as_str() {
                    "eq" | "starts-with" => {
                        let name = field(
                            items[1]
                                .as_str()
                                .ok_or("a condition's field must be a string")?,
                        )?;
                        let v = items[2]
                            .as_str()
                            .ok_or("a condition's value must be a string")?
                            .to_string();
                        Ok(if op.eq_ignore_ascii_case("eq") {
                            Condition::Eq(name, v)
                        } else {
                            Condition::StartsWith(name, v)
                        })
                    }
                    "content-length-range" => {
                        let (lo, hi) = (number(&items[1])?, number(&items[2])?);
                        if lo > hi {
                            return Err("content-length-range's minimum exceeds its maximum".into());
                        }
                        Ok(Condition::LengthRange(lo, hi))
                    }
                    other => Err(format!("unknown condition operator {other:?}")),
                }
            }
            _ => Err("a condition is an object with one field or a list of three".into()),
        }
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` into Unix seconds.
fn parse_expiration(s: &str) -> Option<i64> {
    let s = s.trim().strip_suffix('Z')?;
    let whole = s.split_once('.').map_or(s, |(w, frac)| {
        if frac.bytes().all(|b| b.is_ascii_digit()) {
            w
        } else {
            ""
        }
    });
    let b = whole.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let compact: String = whole.chars().filter(|c| *c != '-' && *c != ':').collect();
    sigv4::parse_amz_date(&format!("{compact}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<Policy, S3Error> {
        Policy::decode(&base64::engine::general_purpose::STANDARD.encode(json))
    }

    #[test]
    fn expirations_parse() {
        assert_eq!(parse_expiration("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(parse_expiration("1970-01-01T00:00:01.500Z"), Some(1));
        assert_eq!(parse_expiration("1970-01-01 00:00:01Z"), None);
        assert_eq!(parse_expiration("1970-01-01T00:00:01"), None);
        assert_eq!(parse_expiration("1970-13-01T00:00:01Z"), None);
    }

    #[test]
    fn conditions_decide() {
        let p = policy(
            r#"{"expiration":"2099-01-01T00:00:00.000Z","conditions":[{"bucket":"b"},
            ["starts-with","$key","up/"],["eq","$Content-Type","text/plain"],
            ["content-length-range",1,"10"]]}"#,
        )
        .unwrap();
        let mut f = Fields::new();
        f.insert("key".into(), "up/x".into());
        f.insert("content-type".into(), "text/plain".into());
        f.insert("policy".into(), "p".into());
        assert_eq!(p.check_fields("b", "up/x", &f).unwrap(), Some((1, 10)));
        assert!(p.check_fields("c", "up/x", &f).is_err());
        assert!(p.check_fields("b", "down/x", &f).is_err());
        f.insert("x-amz-meta-extra".into(), "1".into());
        assert_eq!(
            p.check_fields("b", "up/x", &f).unwrap_err().code,
            "AccessDenied"
        );
        f.remove("x-amz-meta-extra");
        f.insert("x-ignore-me".into(), "1".into());
        assert!(p.check_fields("b", "up/x", &f).is_ok());
    }

    #[test]
    fn bad_policies_are_refused() {
        for bad in [
            r#"{"conditions":[]}"#,
            r#"{"expiration":"soon","conditions":[]}"#,
            r#"{"expiration":"2099-01-01T00:00:00Z","conditions":[["matches","$key","a"]]}"#,
            r#"{"expiration":"2099-01-01T00:00:00Z","conditions":[["eq","key","a"]]}"#,
            r#"{"expiration":"2099-01-01T00:00:00Z","conditions":[["content-length-range",5,1]]}"#,
            r#"{"expiration":"2099-01-01T00:00:00Z","conditions":[],"extra":1}"#,
            "not json",
        ] {
            assert_eq!(
                policy(bad).unwrap_err().code,
                "MalformedPOSTRequest",
                "{bad}"
            );
        }
        let old = policy(r#"{"expiration":"2000-01-01T00:00:00Z","conditions":[]}"#).unwrap();
        assert_eq!(
            old.check_time(SystemTime::now()).unwrap_err().code,
            "AccessDenied"
        );
    }
}
