//! Presigned S3 URLs for the console: SigV4 query signing (through `s3::sigv4`'s own
//! canonical request code) with the session user's credentials, as URLs relative to the
//! console page so they also work behind a proxy at a sub-path.

use std::collections::BTreeMap;
use std::time::SystemTime;

use percent_encoding::utf8_percent_encode;
use serde::Deserialize;

use super::ConsoleError;
use crate::s3::sigv4::{self, MAX_PRESIGNED_EXPIRES_SECS, PATH_UNRESERVED, UNRESERVED};

/// The region presigned URLs are scoped to (nasgate has one).
pub const REGION: &str = "us-east-1";
/// Lifetime of a URL when the request names none.
pub const DEFAULT_EXPIRES: u64 = 900;

/// One S3 request to presign, as the console asks for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresignRequest {
    /// GET, HEAD, PUT, POST or DELETE.
    pub method: String,
    /// The bucket; empty or absent for ListBuckets.
    #[serde(default)]
    pub bucket: String,
    /// The key, if the request names an object.
    #[serde(default)]
    pub key: Option<String>,
    /// Query parameters (decoded); `X-Amz-*` are the signature's own and refused.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers the browser will send and the signature covers (exactly these).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Seconds the URL stays valid (1..=604800).
    #[serde(default)]
    pub expires: Option<u64>,
}

/// Who signs: the session user's key pair.
pub struct Signer<'a> {
    /// The access key.
    pub access_key: &'a str,
    /// Its current secret.
    pub secret: &'a str,
    /// The Host header the browser sends (the request's own).
    pub host: &'a str,
}

fn bad(msg: impl Into<String>) -> ConsoleError {
    ConsoleError::BadRequest(msg.into())
}

/// `YYYYMMDDTHHMMSSZ` for `t`.
pub fn amz_date(t: SystemTime) -> String {
    // From `2026-11-22T10:01:02.123Z`: digits and the T, without the milliseconds.
    let iso = crate::time::iso8601(t);
    let mut out: String = iso[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    out.push('Z');
    out
}

/// The relative URL (from `/_nasgate/`) of `r`, presigned by `signer` at `now`.
pub fn presign(
    r: &PresignRequest,
    signer: &Signer,
    now: SystemTime,
) -> Result<String, ConsoleError> {
    let method = r.method.to_ascii_uppercase();
    if !["GET", "HEAD", "PUT", "POST", "DELETE"].contains(&method.as_str()) {
        return Err(bad(format!("method {} cannot be presigned", r.method)));
    }
    let expires = r.expires.unwrap_or(DEFAULT_EXPIRES);
    if !(1..=MAX_PRESIGNED_EXPIRES_SECS).contains(&expires) {
        return Err(bad(format!(
            "expires must be 1..={MAX_PRESIGNED_EXPIRES_SECS} seconds"
        )));
    }
    if r.bucket.contains('/') {
        return Err(bad("a bucket name has no '/'"));
    }
    let mut path = String::from("/");
    if !r.bucket.is_empty() {
        path.push_str(&utf8_percent_encode(&r.bucket, UNRESERVED).to_string());
        if let Some(key) = &r.key {
            if key.is_empty() {
                return Err(bad("an empty key names no object"));
            }
            path.push('/');
            path.push_str(&utf8_percent_encode(key, PATH_UNRESERVED).to_string());
        }
    } else if r.key.is_some() {
        return Err(bad("a key needs a bucket"));
    }
    let mut headers: Vec<(String, String)> = vec![("host".to_string(), signer.host.to_string())];
    for (name, value) in &r.headers {
        let name = name.to_ascii_lowercase();
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name || name == "host" || name == "authorization" {
            return Err(bad(format!("header {name:?} cannot be signed")));
        }
        if value.bytes().any(|b| b.is_ascii_control()) {
            return Err(bad(format!("header {name:?} has a control character")));
        }
        if headers.iter().any(|(n, _)| *n == name) {
            return Err(bad(format!("header {name:?} is given twice")));
        }
        headers.push((name, value.clone()));
    }
    headers.sort();
    let signed: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
    let date_time = amz_date(now);
    let enc = |s: &str| utf8_percent_encode(s, UNRESERVED).to_string();
    let mut query: Vec<(String, String)> = Vec::new();
    for (name, value) in &r.query {
        if name.is_empty() || name.to_ascii_lowercase().starts_with("x-amz-") {
            return Err(bad(format!("query parameter {name:?} cannot be given")));
        }
        query.push((enc(name), enc(value)));
    }
    let credential = format!(
        "{}/{}/{REGION}/s3/aws4_request",
        signer.access_key,
        &date_time[..8]
    );
    query.push(("X-Amz-Algorithm".into(), sigv4::ALGORITHM.into()));
    query.push(("X-Amz-Credential".into(), enc(&credential)));
    query.push(("X-Amz-Date".into(), date_time.clone()));
    query.push(("X-Amz-Expires".into(), expires.to_string()));
    query.push(("X-Amz-SignedHeaders".into(), enc(&signed.join(";"))));
    let query_text = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let parts = sigv4::RequestParts {
        method: &method,
        path: &path,
        query: &query_text,
        headers: &headers,
    };
    let signature = sigv4::presign_signature(&parts, &signed, signer.secret, &date_time, REGION)
        .map_err(|e| bad(e.to_string()))?;
    Ok(format!("..{path}?{query_text}&X-Amz-Signature={signature}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, bucket: &str, key: Option<&str>) -> PresignRequest {
        PresignRequest {
            method: method.into(),
            bucket: bucket.into(),
            key: key.map(str::to_string),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            expires: None,
        }
    }

    fn verify(
        url: &str,
        method: &str,
        headers: &[(String, String)],
        at: SystemTime,
    ) -> Result<sigv4::Verified, sigv4::AuthError> {
        let rest = url.strip_prefix("..").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        let parts = sigv4::RequestParts {
            method,
            path,
            query,
            headers,
        };
        sigv4::verify(&parts, at, |k| (k == "AK").then(|| "SECRET".to_string()))
    }

    #[test]
    fn presigned_urls_verify_with_the_servers_own_check() {
        let now = SystemTime::now();
        let signer = Signer {
            access_key: "AK",
            secret: "SECRET",
            host: "h:9000",
        };
        let host = vec![("host".to_string(), "h:9000".to_string())];
        let mut r = req("put", "b", Some("dir/a b+ü?.txt"));
        r.query.insert("partNumber".into(), "3".into());
        r.query.insert("uploadId".into(), "x/y=z".into());
        let url = presign(&r, &signer, now).unwrap();
        assert!(url.starts_with("../b/dir/a%20b%2B%C3%BC%3F.txt?"), "{url}");
        let v = verify(&url, "PUT", &host, now).unwrap();
        assert!(v.presigned);
        // Another method, host or a later time past the expiry fails.
        assert!(verify(&url, "GET", &host, now).is_err());
        let other = vec![("host".to_string(), "evil".to_string())];
        assert!(verify(&url, "PUT", &other, now).is_err());
        let late = now + std::time::Duration::from_secs(DEFAULT_EXPIRES + 2);
        assert_eq!(
            verify(&url, "PUT", &host, late).unwrap_err(),
            sigv4::AuthError::Expired
        );

        // Signed headers must be sent exactly.
        let mut c = req("PUT", "b", Some("k"));
        c.headers
            .insert("X-Amz-Copy-Source".into(), "/b/src".into());
        let url = presign(&c, &signer, now).unwrap();
        let mut with = host.clone();
        with.push(("x-amz-copy-source".into(), "/b/src".into()));
        assert!(verify(&url, "PUT", &with, now).is_ok());
        assert!(verify(&url, "PUT", &host, now).is_err());

        // ListBuckets: the root.
        let url = presign(&req("GET", "", None), &signer, now).unwrap();
        assert!(url.starts_with("../?"), "{url}");
        assert!(verify(&url, "GET", &host, now).is_ok());
    }

    #[test]
    fn bad_requests_are_refused() {
        let signer = Signer {
            access_key: "AK",
            secret: "S",
            host: "h",
        };
        let now = SystemTime::now();
        assert!(presign(&req("PATCH", "b", None), &signer, now).is_err());
        assert!(presign(&req("GET", "", Some("k")), &signer, now).is_err());
        assert!(presign(&req("GET", "a/b", None), &signer, now).is_err());
        let mut r = req("GET", "b", None);
        r.expires = Some(604_801);
        assert!(presign(&r, &signer, now).is_err());
        r.expires = Some(0);
        assert!(presign(&r, &signer, now).is_err());
        let mut r = req("GET", "b", None);
        r.query.insert("X-Amz-Expires".into(), "1".into());
        assert!(presign(&r, &signer, now).is_err());
        let mut r = req("GET", "b", None);
        r.headers.insert("host".into(), "x".into());
        assert!(presign(&r, &signer, now).is_err());
    }

    #[test]
    fn amz_dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(amz_date(t), "20231114T221320Z");
    }
}
