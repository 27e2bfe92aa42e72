//! AWS Signature Version 4 verification for S3 requests.
//!
//! This module is independent of any HTTP library: the caller hands over the
//! method, the raw (still percent-encoded) path, the raw query string and the
//! received headers, and gets back who signed the request and what the body
//! layer still has to check (the payload hash, or the chunk signatures of an
//! `aws-chunked` body, see `chunked.rs`).
//!
//! Both forms of SigV4 are handled:
//!
//! * the `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
//!   header, with `x-amz-date` (or `Date`) and `x-amz-content-sha256`;
//! * presigned URLs (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//!   `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature` in the query).
//!
//! Canonicalisation follows the S3 flavour of SigV4: the path is URI-encoded
//! exactly once (S3 does not double-encode and does not normalise `.`/`..` or
//! repeated slashes), query parameters are decoded and re-encoded with the
//! RFC 3986 unreserved set, sorted by encoded name then value, and header
//! values are trimmed with inner whitespace runs collapsed to one space.
//! Any region is accepted (it is whatever the client signed with); the
//! service must be `s3`.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::S3Code;

type HmacSha256 = Hmac<Sha256>;

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Hex SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// `x-amz-content-sha256` value for a body that is not covered by the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `x-amz-content-sha256` value for an `aws-chunked` body with chunk signatures.
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// `x-amz-content-sha256` value for a signed `aws-chunked` body with signed trailers.
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// `x-amz-content-sha256` value for an unsigned `aws-chunked` body with trailers.
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// Largest accepted distance between the request time and the server clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
/// Largest `X-Amz-Expires` S3 accepts (seven days).
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

/// RFC 3986 unreserved characters: everything else is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The path keeps its `/` separators; every other byte is encoded like a query value.
const PATH_UNRESERVED: &AsciiSet = &UNRESERVED.remove(b'/');

/// A request as the verifier sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method, upper case as sent (`GET`, `PUT`, …).
    pub method: &'a str,
    /// Raw request path as sent, still percent-encoded, without the query.
    pub path: &'a str,
    /// Raw query string without the leading `?` (empty if none).
    pub query: &'a str,
    /// Received headers with lowercase names, one entry per received line.
    pub headers: &'a [(String, String)],
}

/// What the verifier checked and what the body layer must still verify.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Access key id that signed the request.
    pub access_key: String,
    /// How the body is protected.
    pub payload: Payload,
    /// Key material for chunk/trailer signatures (streaming signed payloads only).
    pub signing: Option<SigningContext>,
    /// Lowercase names of the headers covered by the signature.
    pub signed_headers: Vec<String>,
    /// Whether the request was authenticated by a presigned URL.
    pub presigned: bool,
}

/// How the request body is bound to the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `UNSIGNED-PAYLOAD`: nothing to verify.
    Unsigned,
    /// The body must hash to this lowercase hex SHA-256.
    Sha256(String),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked with chunk signatures.
    StreamingSigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks and signed trailers.
    StreamingSignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked without signatures, with trailers.
    StreamingUnsignedTrailer,
}

impl Payload {
    /// Whether the body uses the `aws-chunked` encoding.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Payload::StreamingSigned
                | Payload::StreamingSignedTrailer
                | Payload::StreamingUnsignedTrailer
        )
    }
}

/// Everything needed to verify chunk and trailer signatures of a streaming body.
#[derive(Clone)]
pub struct SigningContext {
    /// Derived signing key (`kSigning`).
    pub key: [u8; 32],
    /// Request timestamp as signed (`YYYYMMDDTHHMMSSZ`).
    pub date_time: String,
    /// Credential scope (`<date>/<region>/s3/aws4_request`).
    pub scope: String,
    /// Lowercase hex signature of the request headers, which seeds the chunk chain.
    pub seed_signature: String,
}

impl fmt::Debug for SigningContext {
    // The derived key is as good as the secret for a day: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningContext")
            .field("key", &"<redacted>")
            .field("date_time", &self.date_time)
            .field("scope", &self.scope)
            .field("seed_signature", &self.seed_signature)
            .finish()
    }
}

impl SigningContext {
    /// Signature of one `aws-chunked` chunk, given the previous signature (hex) and the chunk's SHA-256.
    pub fn chunk_signature(&self, previous: &str, chunk_sha256: &[u8; 32]) -> [u8; 32] {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{}\n{}",
            self.date_time,
            self.scope,
            previous,
            EMPTY_SHA256,
            hex::encode(chunk_sha256)
        );
        hmac_sha256(&self.key, to_sign.as_bytes())
    }

    /// Signature of the trailer block, given the final chunk's signature (hex) and the canonical trailers' SHA-256.
    pub fn trailer_signature(&self, previous: &str, trailer_sha256: &[u8; 32]) -> [u8; 32] {
        let to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.date_time,
            self.scope,
            previous,
            hex::encode(trailer_sha256)
        );
        hmac_sha256(&self.key, to_sign.as_bytes())
    }
}

/// Why a request failed authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Access Denied")]
    Missing,
    /// Signature Version 2, SigV4a or another mechanism this server does not implement.
    #[error("The authorization mechanism you have provided is not supported: {0}. Please use AWS4-HMAC-SHA256.")]
    UnsupportedMechanism(String),
    /// Both the `Authorization` header and presigned query parameters were sent.
    #[error("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified")]
    MultipleMechanisms,
    /// The `Authorization` header could not be parsed.
    #[error("The authorization header is malformed: {0}")]
    MalformedHeader(String),
    /// The presigned query parameters could not be parsed.
    #[error("Error parsing the X-Amz-Credential parameter or other query parameters: {0}")]
    MalformedQuery(String),
    /// No usable `x-amz-date` / `Date` header.
    #[error("AWS authentication requires a valid Date or x-amz-date header")]
    MissingDate,
    /// `x-amz-content-sha256` is neither a hex SHA-256 nor a known token.
    #[error("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value, or a valid sha256 value")]
    InvalidContentSha256,
    /// The access key id is not known.
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    UnknownAccessKey,
    /// The signature does not match the request.
    #[error("The request signature we calculated does not match the signature you provided. Check your key and signing method.")]
    SignatureMismatch,
    /// The request time is more than 15 minutes away from the server clock.
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed,
    /// The presigned URL has expired.
    #[error("Request has expired")]
    Expired,
    /// The presigned URL's `X-Amz-Date` is in the future.
    #[error("Request is not valid yet")]
    NotYetValid,
    /// A browser-form POST whose signing fields are missing or malformed.
    #[error("{0}")]
    MalformedPostForm(String),
}

impl AuthError {
    /// The S3 error code for the XML `<Code>` element.
    pub fn s3_code(&self) -> S3Code {
        match self {
            AuthError::Missing
            | AuthError::MissingDate
            | AuthError::Expired
            | AuthError::NotYetValid => S3Code::AccessDenied,
            AuthError::UnsupportedMechanism(_) => S3Code::InvalidRequest,
            AuthError::MultipleMechanisms
            | AuthError::InvalidContentSha256
            | AuthError::MalformedPostForm(_) => S3Code::InvalidArgument,
            AuthError::MalformedHeader(_) => S3Code::AuthorizationHeaderMalformed,
            AuthError::MalformedQuery(_) => S3Code::AuthorizationQueryParametersError,
            AuthError::UnknownAccessKey => S3Code::InvalidAccessKeyId,
            AuthError::SignatureMismatch => S3Code::SignatureDoesNotMatch,
            AuthError::RequestTimeTooSkewed => S3Code::RequestTimeTooSkewed,
        }
    }

    /// The HTTP status S3 answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::UnsupportedMechanism(_)
            | AuthError::MultipleMechanisms
            | AuthError::InvalidContentSha256
            | AuthError::MalformedHeader(_)
            | AuthError::MalformedQuery(_)
            | AuthError::MalformedPostForm(_) => 400,
            _ => 403,
        }
    }
}

/// Derives the SigV4 signing key `kSigning` from a secret and a credential scope.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The signing fields of a browser-form POST (POST Object), as the form sent them.
pub struct PostSignature<'a> {
    /// `x-amz-algorithm`.
    pub algorithm: &'a str,
    /// `x-amz-credential`: `<key>/<date>/<region>/s3/aws4_request`.
    pub credential: &'a str,
    /// `x-amz-date`: `YYYYMMDDTHHMMSSZ`.
    pub date: &'a str,
    /// `x-amz-signature`: hex HMAC of the policy.
    pub signature: &'a str,
    /// `policy`: the policy document in base64, exactly as sent (that text is what is signed).
    pub policy: &'a str,
}

/// Verifies a POST Object form's signature: the base64 policy signed with the SigV4 key of
/// the credential's scope. Returns the access key that signed it.
pub fn verify_post(
    form: &PostSignature<'_>,
    lookup_secret: impl FnOnce(&str) -> Option<String>,
) -> Result<String, AuthError> {
    let malformed = |m: &str| AuthError::MalformedPostForm(m.to_string());
    if form.algorithm != ALGORITHM {
        return Err(AuthError::UnsupportedMechanism(
            form.algorithm.chars().take(32).collect(),
        ));
    }
    let credential = parse_credential(form.credential).map_err(AuthError::MalformedPostForm)?;
    parse_amz_date(form.date)
        .ok_or_else(|| malformed("x-amz-date must be in the ISO8601 Long Format"))?;
    if credential.date != &form.date[..8] {
        return Err(malformed("the credential date does not match x-amz-date"));
    }
    let claimed = parse_signature(form.signature).map_err(AuthError::MalformedPostForm)?;
    let secret = lookup_secret(credential.access_key).ok_or(AuthError::UnknownAccessKey)?;
    let key = signing_key(&secret, credential.date, credential.region, "s3");
    let expected = hmac_sha256(&key, form.policy.as_bytes());
    if !bool::from(expected.ct_eq(&claimed)) {
        return Err(AuthError::SignatureMismatch);
    }
    Ok(credential.access_key.to_string())
}

/// Verifies a SigV4-signed request (header or presigned form) against the secret `lookup_secret` returns.
pub fn verify(
    req: &RequestParts<'_>,
    now: SystemTime,
    lookup_secret: impl FnOnce(&str) -> Option<String>,
) -> Result<Verified, AuthError> {
    let authorization = single_header(req.headers, "authorization")
        .map_err(|()| AuthError::MalformedHeader("more than one Authorization header".into()))?;
    let query = parse_query(req.query);
    let presigned = query.iter().any(|(name, _)| name == b"X-Amz-Algorithm");
    match (authorization, presigned) {
        (Some(_), true) => Err(AuthError::MultipleMechanisms),
        (Some(value), false) => verify_header(req, &query, value, now, lookup_secret),
        (None, true) => verify_presigned(req, &query, now, lookup_secret),
        (None, false) => {
            // A SigV2 presigned URL carries these instead of X-Amz-Algorithm.
            if query
                .iter()
                .any(|(name, _)| name == b"AWSAccessKeyId" || name == b"Signature")
            {
                Err(AuthError::UnsupportedMechanism(
                    "Signature Version 2".into(),
                ))
            } else {
                Err(AuthError::Missing)
            }
        }
    }
}

/// Builds an `Authorization` header value signing every header in `req` (a client-side helper for tests and tools).
///
/// `req.headers` must contain `host` and `x-amz-date`; the payload hash is
/// taken from `x-amz-content-sha256` (the empty-body hash if absent).
pub fn authorization_header(
    req: &RequestParts<'_>,
    access_key: &str,
    secret: &str,
    region: &str,
) -> Result<String, AuthError> {
    let date_time = single_header(req.headers, "x-amz-date")
        .ok()
        .flatten()
        .filter(|d| parse_amz_date(d).is_some())
        .ok_or(AuthError::MissingDate)?;
    let payload_hash = single_header(req.headers, "x-amz-content-sha256")
        .map_err(|()| AuthError::InvalidContentSha256)?
        .map_or(EMPTY_SHA256, str::trim);
    let mut names: Vec<String> = req
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    if !names.iter().any(|n| n == "host") {
        return Err(AuthError::MalformedHeader(
            "the host header must be signed".into(),
        ));
    }
    let signed_line = names.join(";");
    let scope = format!("{}/{}/s3/aws4_request", &date_time[..8], region);
    let canonical = canonical_request(
        req,
        &parse_query(req.query),
        false,
        &names,
        &signed_line,
        payload_hash,
    )?;
    let key = signing_key(secret, &date_time[..8], region, "s3");
    let signature = hmac_sha256(
        &key,
        string_to_sign(date_time, &scope, &canonical).as_bytes(),
    );
    Ok(format!(
        "{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_line}, Signature={}",
        hex::encode(signature)
    ))
}

/// Builds the query string of a presigned URL signing only `host` (a client-side helper for tests and tools).
///
/// Returns `req.query` extended with the `X-Amz-*` parameters and the signature.
pub fn presigned_query(
    req: &RequestParts<'_>,
    access_key: &str,
    secret: &str,
    region: &str,
    date_time: &str,
    expires_secs: u64,
) -> Result<String, AuthError> {
    if parse_amz_date(date_time).is_none() {
        return Err(AuthError::MissingDate);
    }
    let scope = format!("{}/{}/s3/aws4_request", &date_time[..8], region);
    let credential = format!("{access_key}/{scope}");
    let mut query = req.query.to_string();
    for (name, value) in [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", date_time),
        ("X-Amz-Expires", &expires_secs.to_string()),
        ("X-Amz-SignedHeaders", "host"),
    ] {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.extend(percent_encode(value.as_bytes(), UNRESERVED));
    }
    let names = ["host".to_string()];
    let canonical = canonical_request(
        req,
        &parse_query(&query),
        false,
        &names,
        "host",
        UNSIGNED_PAYLOAD,
    )?;
    let key = signing_key(secret, &date_time[..8], region, "s3");
    let signature = hmac_sha256(
        &key,
        string_to_sign(date_time, &scope, &canonical).as_bytes(),
    );
    query.push_str("&X-Amz-Signature=");
    query.push_str(&hex::encode(signature));
    Ok(query)
}

/// The parsed `Credential` / `X-Amz-Credential` value.
struct Credential<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
}

impl Credential<'_> {
    fn scope(&self) -> String {
        format!("{}/{}/s3/aws4_request", self.date, self.region)
    }
}

/// The pieces common to both forms once parsed.
struct Claimed<'a> {
    credential: Credential<'a>,
    signed_headers_line: &'a str,
    signed_headers: Vec<String>,
    signature: [u8; 32],
    date_time: &'a str,
}

fn verify_header(
    req: &RequestParts<'_>,
    query: &[(Vec<u8>, Vec<u8>)],
    authorization: &str,
    now: SystemTime,
    lookup_secret: impl FnOnce(&str) -> Option<String>,
) -> Result<Verified, AuthError> {
    let fields = parse_authorization(authorization)?;
    let credential = parse_credential(fields.credential).map_err(AuthError::MalformedHeader)?;
    let signed_headers =
        parse_signed_headers(fields.signed_headers).map_err(AuthError::MalformedHeader)?;
    let signature = parse_signature(fields.signature).map_err(AuthError::MalformedHeader)?;

    // x-amz-date wins over Date; SigV4 needs the ISO 8601 basic form either way
    // because the timestamp is copied verbatim into the string to sign.
    let date_time = match single_header(req.headers, "x-amz-date") {
        Ok(Some(d)) => d.trim(),
        Ok(None) => single_header(req.headers, "date")
            .ok()
            .flatten()
            .map(str::trim)
            .ok_or(AuthError::MissingDate)?,
        Err(()) => return Err(AuthError::MissingDate),
    };
    let request_time = parse_amz_date(date_time).ok_or(AuthError::MissingDate)?;
    if credential.date != &date_time[..8] {
        return Err(AuthError::MalformedHeader(
            "the credential date does not match the request date".into(),
        ));
    }
    if unix_secs(now).abs_diff(request_time) > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return Err(AuthError::RequestTimeTooSkewed);
    }

    let content_sha = single_header(req.headers, "x-amz-content-sha256")
        .map_err(|()| AuthError::InvalidContentSha256)?
        .map(str::trim);
    // Without the header the body is treated as signed-empty: generic SigV4
    // signers that omit it on body-less requests still verify, and a body
    // smuggled into such a request fails the payload hash check.
    let payload_hash = content_sha.unwrap_or(EMPTY_SHA256);
    let payload = classify_payload(payload_hash)?;

    let claimed = Claimed {
        credential,
        signed_headers_line: fields.signed_headers,
        signed_headers,
        signature,
        date_time,
    };
    finish(
        req,
        query,
        false,
        claimed,
        payload_hash,
        payload,
        lookup_secret,
    )
}

fn verify_presigned(
    req: &RequestParts<'_>,
    query: &[(Vec<u8>, Vec<u8>)],
    now: SystemTime,
    lookup_secret: impl FnOnce(&str) -> Option<String>,
) -> Result<Verified, AuthError> {
    let required = |name: &str| {
        query_param(query, name)?
            .ok_or_else(|| AuthError::MalformedQuery(format!("missing {name}")))
    };
    let algorithm = required("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(AuthError::MalformedQuery(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".into(),
        ));
    }
    let credential =
        parse_credential(required("X-Amz-Credential")?).map_err(AuthError::MalformedQuery)?;
    let date_time = required("X-Amz-Date")?;
    let expires = required("X-Amz-Expires")?;
    let signed_headers_line = required("X-Amz-SignedHeaders")?;
    let signed_headers =
        parse_signed_headers(signed_headers_line).map_err(AuthError::MalformedQuery)?;
    let signature =
        parse_signature(required("X-Amz-Signature")?).map_err(AuthError::MalformedQuery)?;

    let request_time = parse_amz_date(date_time).ok_or_else(|| {
        AuthError::MalformedQuery("X-Amz-Date must be in the ISO8601 Long Format".into())
    })?;
    if credential.date != &date_time[..8] {
        return Err(AuthError::MalformedQuery(
            "the credential date does not match X-Amz-Date".into(),
        ));
    }
    let expires = parse_expires(expires)?;
    let now = unix_secs(now);
    if request_time.saturating_sub(now) > MAX_CLOCK_SKEW_SECS {
        return Err(AuthError::NotYetValid);
    }
    if expires == 0 || now > request_time.saturating_add(expires) {
        return Err(AuthError::Expired);
    }

    // Presigned URLs sign UNSIGNED-PAYLOAD unless the client hoisted a
    // payload hash into the query.
    let payload_hash = query_param(query, "X-Amz-Content-Sha256")?.unwrap_or(UNSIGNED_PAYLOAD);
    let payload = classify_payload(payload_hash)?;
    if payload.is_streaming() {
        return Err(AuthError::MalformedQuery(
            "streaming payloads cannot be presigned".into(),
        ));
    }

    let claimed = Claimed {
        credential,
        signed_headers_line,
        signed_headers,
        signature,
        date_time,
    };
    finish(
        req,
        query,
        true,
        claimed,
        payload_hash,
        payload,
        lookup_secret,
    )
}

/// Shared tail of both forms: look the key up, recompute and compare the signature.
fn finish(
    req: &RequestParts<'_>,
    query: &[(Vec<u8>, Vec<u8>)],
    presigned: bool,
    claimed: Claimed<'_>,
    payload_hash: &str,
    payload: Payload,
    lookup_secret: impl FnOnce(&str) -> Option<String>,
) -> Result<Verified, AuthError> {
    let secret = lookup_secret(claimed.credential.access_key).ok_or(AuthError::UnknownAccessKey)?;
    let canonical = canonical_request(
        req,
        query,
        presigned,
        &claimed.signed_headers,
        claimed.signed_headers_line,
        payload_hash,
    )?;
    let scope = claimed.credential.scope();
    let key = signing_key(
        &secret,
        claimed.credential.date,
        claimed.credential.region,
        "s3",
    );
    let expected = hmac_sha256(
        &key,
        string_to_sign(claimed.date_time, &scope, &canonical).as_bytes(),
    );
    if !bool::from(expected.ct_eq(&claimed.signature)) {
        return Err(AuthError::SignatureMismatch);
    }
    let signing = matches!(
        payload,
        Payload::StreamingSigned | Payload::StreamingSignedTrailer
    )
    .then(|| SigningContext {
        key,
        date_time: claimed.date_time.to_string(),
        scope,
        seed_signature: hex::encode(expected),
    });
    Ok(Verified {
        access_key: claimed.credential.access_key.to_string(),
        payload,
        signing,
        signed_headers: claimed.signed_headers,
        presigned,
    })
}

/// Raw `Credential=`, `SignedHeaders=` and `Signature=` values of the header.
struct AuthorizationFields<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<AuthorizationFields<'_>, AuthError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if scheme != ALGORITHM {
        let name = if scheme == "AWS" {
            "Signature Version 2"
        } else {
            scheme
        };
        return Err(AuthError::UnsupportedMechanism(
            name.chars().take(64).collect(),
        ));
    }
    let malformed = |msg: &str| AuthError::MalformedHeader(msg.to_string());
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| malformed("expected key=value components"))?;
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(malformed("unknown component")),
        };
        if slot.replace(val.trim()).is_some() {
            return Err(malformed("repeated component"));
        }
    }
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature)) => Ok(AuthorizationFields {
            credential,
            signed_headers,
            signature,
        }),
        _ => Err(malformed(
            "Credential, SignedHeaders and Signature are all required",
        )),
    }
}

fn parse_credential(value: &str) -> Result<Credential<'_>, String> {
    // Split from the right: the four scope fields never contain '/', so
    // whatever is left over is the access key.
    let mut parts = value.rsplitn(5, '/');
    let terminal = parts.next().unwrap_or_default();
    let service = parts.next().unwrap_or_default();
    let region = parts.next().unwrap_or_default();
    let date = parts.next().unwrap_or_default();
    let access_key = parts.next().unwrap_or_default();
    if access_key.is_empty() {
        return Err("the credential must be <key>/<date>/<region>/s3/aws4_request".into());
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the credential date must be YYYYMMDD".into());
    }
    if region.is_empty() {
        return Err("the credential region is empty".into());
    }
    if service != "s3" {
        return Err(format!(
            "the credential service must be s3, not {:?}",
            service.chars().take(32).collect::<String>()
        ));
    }
    if terminal != "aws4_request" {
        return Err("the credential must end with aws4_request".into());
    }
    Ok(Credential {
        access_key,
        date,
        region,
    })
}

fn parse_signed_headers(value: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = value.split(';').map(str::to_ascii_lowercase).collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err("SignedHeaders contains an empty name".into());
    }
    // Without a signed host a signature could be replayed against another endpoint.
    if !names.iter().any(|n| n == "host") {
        return Err("the host header must be signed".into());
    }
    Ok(names)
}

fn parse_signature(value: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    if value.len() != 64 || hex::decode_to_slice(value, &mut out).is_err() {
        return Err("the signature must be 64 hexadecimal characters".into());
    }
    Ok(out)
}

fn parse_expires(value: &str) -> Result<i64, AuthError> {
    let bad = || {
        AuthError::MalformedQuery(format!(
            "X-Amz-Expires must be an integer from 0 to {MAX_PRESIGNED_EXPIRES_SECS}"
        ))
    };
    if value.is_empty() || value.len() > 7 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: u64 = value.parse().map_err(|_| bad())?;
    // 0 is a URL that is expired from the start: S3 answers it 403 "Request has expired".
    if secs > MAX_PRESIGNED_EXPIRES_SECS {
        return Err(bad());
    }
    i64::try_from(secs).map_err(|_| bad())
}

fn classify_payload(value: &str) -> Result<Payload, AuthError> {
    Ok(match value {
        UNSIGNED_PAYLOAD => Payload::Unsigned,
        STREAMING_SIGNED => Payload::StreamingSigned,
        STREAMING_SIGNED_TRAILER => Payload::StreamingSignedTrailer,
        STREAMING_UNSIGNED_TRAILER => Payload::StreamingUnsignedTrailer,
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
        | "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" => {
            return Err(AuthError::UnsupportedMechanism(
                "AWS4-ECDSA-P256-SHA256 (SigV4a)".into(),
            ))
        }
        hash if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Payload::Sha256(hash.to_ascii_lowercase())
        }
        _ => return Err(AuthError::InvalidContentSha256),
    })
}

/// Builds the SigV4 canonical request.
fn canonical_request(
    req: &RequestParts<'_>,
    query: &[(Vec<u8>, Vec<u8>)],
    skip_signature: bool,
    signed_headers: &[String],
    signed_headers_line: &str,
    payload_hash: &str,
) -> Result<String, AuthError> {
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(query, skip_signature));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for (_, value) in req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            if !first {
                out.push(',');
            }
            first = false;
            push_trimmed(value, &mut out);
        }
        if first {
            // Some proxies and servers consume `Expect: 100-continue` before the
            // application sees it; the value it had is known.
            if name == "expect" {
                out.push_str("100-continue");
            } else {
                return Err(AuthError::SignatureMismatch);
            }
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers_line);
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// Canonical URI: the decoded path, URI-encoded once with `/` kept.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    // Decoding first makes `/a$b` and `/a%24b` (and `%7e` vs `~`) canonicalise
    // identically, which is what the client signed whichever form it sent.
    let decoded: Vec<u8> = percent_decode(path.as_bytes()).collect();
    percent_encode(&decoded, PATH_UNRESERVED).to_string()
}

/// Canonical query string: encoded pairs sorted by name then value.
fn canonical_query(query: &[(Vec<u8>, Vec<u8>)], skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(name, _)| !(skip_signature && name == b"X-Amz-Signature"))
        .map(|(name, value)| {
            (
                percent_encode(name, UNRESERVED).to_string(),
                percent_encode(value, UNRESERVED).to_string(),
            )
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Splits and decodes a raw query string; `+` means space as in form encoding.
fn parse_query(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let decode = |s: &str| -> Vec<u8> {
        let plus_as_space: Vec<u8> = s
            .bytes()
            .map(|b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_decode(&plus_as_space).collect()
    };
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// One decoded query parameter by exact name; repeats are an error.
fn query_param<'q>(
    query: &'q [(Vec<u8>, Vec<u8>)],
    name: &str,
) -> Result<Option<&'q str>, AuthError> {
    let mut found = None;
    for (n, v) in query {
        if n == name.as_bytes() {
            if found.is_some() {
                return Err(AuthError::MalformedQuery(format!("{name} is repeated")));
            }
            found = Some(
                std::str::from_utf8(v)
                    .map_err(|_| AuthError::MalformedQuery(format!("{name} is not UTF-8")))?,
            );
        }
    }
    Ok(found)
}

/// The value of a header that must appear at most once.
fn single_header<'h>(headers: &'h [(String, String)], name: &str) -> Result<Option<&'h str>, ()> {
    let mut found = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(());
            }
            found = Some(v.as_str());
        }
    }
    Ok(found)
}

/// Appends a header value trimmed, with inner runs of spaces and tabs collapsed to one space.
fn push_trimmed(value: &str, out: &mut String) {
    let mut pending_space = false;
    for c in value.trim_matches([' ', '\t']).chars() {
        if c == ' ' || c == '\t' {
            pending_space = true;
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
}

fn string_to_sign(date_time: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{date_time}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC is defined for keys of every length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn unix_secs(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds.
pub(crate) fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const HOST: &str = "examplebucket.s3.amazonaws.com";
    const AMZ_DATE: &str = "20130524T000000Z";

    /// 2013-05-24T00:00:00Z, the timestamp of every AWS example.
    fn example_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn lookup(key: &str) -> Option<String> {
        (key == ACCESS).then(|| SECRET.to_string())
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn auth(signed: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed},Signature={signature}"
        )
    }

    fn parts<'a>(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: &'a [(String, String)],
    ) -> RequestParts<'a> {
        RequestParts {
            method,
            path,
            query,
            headers,
        }
    }

    #[test]
    fn date_parsing() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date(AMZ_DATE), Some(1_369_353_600));
        assert_eq!(parse_amz_date("20000229T235959Z"), Some(951_868_799));
        assert_eq!(parse_amz_date("20010229T000000Z"), None);
        assert_eq!(parse_amz_date("20130524T240000Z"), None);
        assert_eq!(parse_amz_date("20130524 000000Z"), None);
        assert_eq!(parse_amz_date("2013-05-24T00:00"), None);
        assert_eq!(parse_amz_date("20130524T000000"), None);
        assert_eq!(parse_amz_date("2013052４T00000Z"), None);
    }

    /// The signing key example from the AWS SigV4 documentation (service iam, 2015-08-30).
    #[test]
    fn aws_signing_key_example() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    /// AWS "GET Object" example: Range header, empty payload.
    #[test]
    fn aws_example_get_object_with_range() {
        let sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
        let h = headers(&[
            ("host", HOST),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", AMZ_DATE),
            (
                "authorization",
                &auth("host;range;x-amz-content-sha256;x-amz-date", sig),
            ),
        ]);
        let v = verify(&parts("GET", "/test.txt", "", &h), example_time(), lookup).unwrap();
        assert_eq!(v.access_key, ACCESS);
        assert_eq!(v.payload, Payload::Sha256(EMPTY_SHA256.into()));
        assert!(v.signing.is_none());
        assert!(!v.presigned);
        assert_eq!(
            v.signed_headers,
            ["host", "range", "x-amz-content-sha256", "x-amz-date"]
        );
    }

    fn put_object_headers(path_sig: &str) -> Vec<(String, String)> {
        headers(&[
            ("host", HOST),
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-date", AMZ_DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            (
                "x-amz-content-sha256",
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
            ),
            (
                "authorization",
                &auth(
                    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                    path_sig,
                ),
            ),
        ])
    }

    /// AWS "PUT Object" example: `$` in the key, signed payload hash.
    #[test]
    fn aws_example_put_object() {
        let sig = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
        let h = put_object_headers(sig);
        // The key may arrive with `$` raw or encoded; both canonicalise to %24.
        for path in ["/test$file.text", "/test%24file.text"] {
            let v = verify(&parts("PUT", path, "", &h), example_time(), lookup).unwrap();
            assert_eq!(
                v.payload,
                Payload::Sha256(
                    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072".into()
                )
            );
        }
        // A double-encoded path is a different key and must not verify.
        assert_eq!(
            verify(
                &parts("PUT", "/test%2524file.text", "", &h),
                example_time(),
                lookup
            )
            .unwrap_err(),
            AuthError::SignatureMismatch
        );
    }

    /// AWS "GET Bucket Lifecycle" example: valueless query parameter.
    #[test]
    fn aws_example_get_bucket_lifecycle() {
        let sig = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543";
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("x-amz-content-sha256", EMPTY_SHA256),
            (
                "authorization",
                &auth("host;x-amz-content-sha256;x-amz-date", sig),
            ),
        ]);
        for query in ["lifecycle", "lifecycle="] {
            verify(&parts("GET", "/", query, &h), example_time(), lookup).unwrap();
        }
    }

    /// AWS "GET Bucket (List Objects)" example: query sorting.
    #[test]
    fn aws_example_list_objects() {
        let sig = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7";
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("x-amz-content-sha256", EMPTY_SHA256),
            (
                "authorization",
                &auth("host;x-amz-content-sha256;x-amz-date", sig),
            ),
        ]);
        for query in [
            "max-keys=2&prefix=J",
            "prefix=J&max-keys=2",
            "prefix=%4A&max-keys=2",
        ] {
            verify(&parts("GET", "/", query, &h), example_time(), lookup).unwrap();
        }
        assert_eq!(
            verify(
                &parts("GET", "/", "max-keys=2&prefix=K", &h),
                example_time(),
                lookup
            )
            .unwrap_err(),
            AuthError::SignatureMismatch
        );
    }

    const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    /// AWS presigned URL example (GET /test.txt, 86400 s).
    #[test]
    fn aws_example_presigned_url() {
        let h = headers(&[("host", HOST)]);
        let req = parts("GET", "/test.txt", PRESIGNED_QUERY, &h);
        let v = verify(&req, example_time() + Duration::from_secs(86_400), lookup).unwrap();
        assert_eq!(v.payload, Payload::Unsigned);
        assert!(v.presigned);
        assert_eq!(
            verify(&req, example_time() + Duration::from_secs(86_401), lookup).unwrap_err(),
            AuthError::Expired
        );
        assert_eq!(
            verify(&req, example_time() - Duration::from_secs(3_600), lookup).unwrap_err(),
            AuthError::NotYetValid
        );
        // Within the tolerated skew, a URL dated slightly ahead still works.
        verify(&req, example_time() - Duration::from_secs(600), lookup).unwrap();
        let other = parts("GET", "/test2.txt", PRESIGNED_QUERY, &h);
        assert_eq!(
            verify(&other, example_time(), lookup).unwrap_err(),
            AuthError::SignatureMismatch
        );
    }

    #[test]
    fn presigned_helper_reproduces_the_aws_example() {
        let h = headers(&[("host", HOST)]);
        let q = presigned_query(
            &parts("GET", "/test.txt", "", &h),
            ACCESS,
            SECRET,
            "us-east-1",
            AMZ_DATE,
            86_400,
        )
        .unwrap();
        assert_eq!(q, PRESIGNED_QUERY);
    }

    fn streaming_headers(
        content_sha: &str,
        extra: &[(&str, &str)],
        sig: &str,
    ) -> Vec<(String, String)> {
        let mut h = headers(&[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", AMZ_DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", content_sha),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
        ]);
        h.extend(headers(extra));
        let mut names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let signed = names.join(";");
        h.push(("authorization".into(), auth(&signed, sig)));
        h
    }

    /// AWS chunked upload example: seed signature of the headers.
    #[test]
    fn aws_example_streaming_seed_signature() {
        let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
        let h = streaming_headers(STREAMING_SIGNED, &[("content-length", "66824")], seed);
        let v = verify(
            &parts("PUT", "/examplebucket/chunkObject.txt", "", &h),
            example_time(),
            lookup,
        )
        .unwrap();
        assert_eq!(v.payload, Payload::StreamingSigned);
        let ctx = v.signing.unwrap();
        assert_eq!(ctx.seed_signature, seed);
        assert_eq!(ctx.date_time, AMZ_DATE);
        assert_eq!(ctx.scope, "20130524/us-east-1/s3/aws4_request");
        assert!(!format!("{ctx:?}").contains(&hex::encode(ctx.key)));
        // The published chunk signatures chain from the seed.
        let mut prev = seed.to_string();
        for (len, expected) in [
            (
                65_536,
                "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            ),
            (
                1_024,
                "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            ),
            (
                0,
                "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
            ),
        ] {
            let hash: [u8; 32] = Sha256::digest(vec![b'a'; len]).into();
            prev = hex::encode(ctx.chunk_signature(&prev, &hash));
            assert_eq!(prev, expected);
        }
    }

    /// AWS chunked upload with trailers example: seed, chunk and trailer signatures.
    #[test]
    fn aws_example_streaming_trailer_signatures() {
        let seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
        let h = streaming_headers(
            STREAMING_SIGNED_TRAILER,
            &[("x-amz-trailer", "x-amz-checksum-crc32c")],
            seed,
        );
        let v = verify(
            &parts("PUT", "/examplebucket/chunkObject.txt", "", &h),
            example_time(),
            lookup,
        )
        .unwrap();
        assert_eq!(v.payload, Payload::StreamingSignedTrailer);
        let ctx = v.signing.unwrap();
        let mut prev = ctx.seed_signature.clone();
        for (len, expected) in [
            (
                65_536,
                "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
            ),
            (
                1_024,
                "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
            ),
            (
                0,
                "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
            ),
        ] {
            let hash: [u8; 32] = Sha256::digest(vec![b'a'; len]).into();
            prev = hex::encode(ctx.chunk_signature(&prev, &hash));
            assert_eq!(prev, expected);
        }
        let trailer: [u8; 32] = Sha256::digest(b"x-amz-checksum-crc32c:sOO8/Q==\n").into();
        assert_eq!(
            hex::encode(ctx.trailer_signature(&prev, &trailer)),
            "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
        );
    }

    #[test]
    fn unsigned_trailer_mode_has_no_signing_context() {
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("x-amz-content-sha256", STREAMING_UNSIGNED_TRAILER),
        ]);
        let mut signed = h.clone();
        let value =
            authorization_header(&parts("PUT", "/k", "", &h), ACCESS, SECRET, "us-east-1").unwrap();
        signed.push(("authorization".into(), value));
        let v = verify(&parts("PUT", "/k", "", &signed), example_time(), lookup).unwrap();
        assert_eq!(v.payload, Payload::StreamingUnsignedTrailer);
        assert!(v.signing.is_none());
    }

    /// Signs `base` with the helper, then verifies; returns the verifier's answer.
    fn roundtrip(
        method: &str,
        path: &str,
        query: &str,
        base: &[(&str, &str)],
        region: &str,
        now: SystemTime,
    ) -> Result<Verified, AuthError> {
        let h = headers(base);
        let value = authorization_header(&parts(method, path, query, &h), ACCESS, SECRET, region)?;
        let mut signed = h.clone();
        signed.push(("authorization".into(), value));
        verify(&parts(method, path, query, &signed), now, lookup)
    }

    #[test]
    fn any_region_is_accepted() {
        for region in ["us-east-1", "eu-central-1", "nas", "garage"] {
            roundtrip(
                "GET",
                "/b/k",
                "",
                &[("host", "nas.local:9000"), ("x-amz-date", AMZ_DATE)],
                region,
                example_time(),
            )
            .unwrap();
        }
    }

    #[test]
    fn service_must_be_s3() {
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            (
                "authorization",
                &format!("AWS4-HMAC-SHA256 Credential={ACCESS}/20130524/us-east-1/iam/aws4_request,SignedHeaders=host;x-amz-date,Signature={}", "0".repeat(64)),
            ),
        ]);
        let err = verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err();
        assert!(matches!(err, AuthError::MalformedHeader(_)), "{err:?}");
        assert_eq!(err.s3_code(), "AuthorizationHeaderMalformed");
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn clock_skew_is_enforced() {
        let base = [("host", HOST), ("x-amz-date", AMZ_DATE)];
        for offset in [0i64, 899, -899, 900, -900] {
            let now = if offset >= 0 {
                example_time() + Duration::from_secs(offset.unsigned_abs())
            } else {
                example_time() - Duration::from_secs(offset.unsigned_abs())
            };
            roundtrip("GET", "/", "", &base, "us-east-1", now).unwrap();
        }
        for offset in [901u64, 3_600] {
            for now in [
                example_time() + Duration::from_secs(offset),
                example_time() - Duration::from_secs(offset),
            ] {
                let err = roundtrip("GET", "/", "", &base, "us-east-1", now).unwrap_err();
                assert_eq!(err, AuthError::RequestTimeTooSkewed);
                assert_eq!(err.s3_code(), "RequestTimeTooSkewed");
            }
        }
    }

    #[test]
    fn date_header_is_used_without_x_amz_date() {
        // Sign with x-amz-date, then move the timestamp to the Date header: the
        // string to sign is identical, but the signed header list differs, so
        // build the request by hand.
        let h = headers(&[("host", HOST), ("date", AMZ_DATE)]);
        let names = vec!["date".to_string(), "host".to_string()];
        let canonical = canonical_request(
            &parts("GET", "/", "", &h),
            &[],
            false,
            &names,
            "date;host",
            EMPTY_SHA256,
        )
        .unwrap();
        let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
        let sig = hmac_sha256(
            &key,
            string_to_sign(AMZ_DATE, "20130524/us-east-1/s3/aws4_request", &canonical).as_bytes(),
        );
        let mut signed = h.clone();
        signed.push(("authorization".into(), auth("date;host", &hex::encode(sig))));
        verify(&parts("GET", "/", "", &signed), example_time(), lookup).unwrap();
        // An RFC 1123 Date alone cannot be used in a SigV4 string to sign.
        let h = headers(&[
            ("host", HOST),
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("authorization", &auth("date;host", &hex::encode(sig))),
        ]);
        assert_eq!(
            verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err(),
            AuthError::MissingDate
        );
    }

    #[test]
    fn missing_date_is_access_denied() {
        let h = headers(&[
            ("host", HOST),
            ("authorization", &auth("host", &"0".repeat(64))),
        ]);
        let err = verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err();
        assert_eq!(err, AuthError::MissingDate);
        assert_eq!(err.s3_code(), "AccessDenied");
    }

    #[test]
    fn credential_date_must_match_request_date() {
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", "20130525T000000Z"),
            ("authorization", &auth("host;x-amz-date", &"0".repeat(64))),
        ]);
        let now = example_time() + Duration::from_secs(86_400);
        assert!(matches!(
            verify(&parts("GET", "/", "", &h), now, lookup).unwrap_err(),
            AuthError::MalformedHeader(_)
        ));
    }

    #[test]
    fn content_sha256_values() {
        let hash = "A".repeat(64);
        for (value, expected) in [
            (UNSIGNED_PAYLOAD, Ok(Payload::Unsigned)),
            (STREAMING_SIGNED, Ok(Payload::StreamingSigned)),
            (
                STREAMING_SIGNED_TRAILER,
                Ok(Payload::StreamingSignedTrailer),
            ),
            (
                STREAMING_UNSIGNED_TRAILER,
                Ok(Payload::StreamingUnsignedTrailer),
            ),
            (hash.as_str(), Ok(Payload::Sha256("a".repeat(64)))),
            ("abc", Err(AuthError::InvalidContentSha256)),
            ("unsigned-payload", Err(AuthError::InvalidContentSha256)),
            (&"g".repeat(64), Err(AuthError::InvalidContentSha256)),
        ] {
            let got = roundtrip(
                "PUT",
                "/b/k",
                "",
                &[
                    ("host", HOST),
                    ("x-amz-date", AMZ_DATE),
                    ("x-amz-content-sha256", value),
                ],
                "us-east-1",
                example_time(),
            )
            .map(|v| v.payload);
            assert_eq!(got, expected, "{value}");
        }
        let err = roundtrip(
            "PUT",
            "/b/k",
            "",
            &[
                ("host", HOST),
                ("x-amz-date", AMZ_DATE),
                (
                    "x-amz-content-sha256",
                    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
                ),
            ],
            "us-east-1",
            example_time(),
        )
        .unwrap_err();
        assert!(matches!(err, AuthError::UnsupportedMechanism(_)));
        // Without the header the body must be empty.
        let v = roundtrip(
            "GET",
            "/",
            "",
            &[("host", HOST), ("x-amz-date", AMZ_DATE)],
            "us-east-1",
            example_time(),
        )
        .unwrap();
        assert_eq!(v.payload, Payload::Sha256(EMPTY_SHA256.into()));
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("x-amz-meta-a", "  one   two\t\tthree  "),
            ("x-amz-meta-b", "x"),
            ("x-amz-meta-b", "  y  z "),
        ]);
        let names: Vec<String> = ["host", "x-amz-date", "x-amz-meta-a", "x-amz-meta-b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let canonical = canonical_request(
            &parts("GET", "/", "", &h),
            &[],
            false,
            &names,
            "host;x-amz-date;x-amz-meta-a;x-amz-meta-b",
            EMPTY_SHA256,
        )
        .unwrap();
        assert!(canonical.contains("\nx-amz-meta-a:one two three\nx-amz-meta-b:x,y z\n\n"));
        // A differently spaced copy of the same value verifies against the same signature.
        let value =
            authorization_header(&parts("GET", "/", "", &h), ACCESS, SECRET, "us-east-1").unwrap();
        let mut respaced = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("x-amz-meta-a", "one two three"),
            ("x-amz-meta-b", "x"),
            ("x-amz-meta-b", "y    z"),
        ]);
        respaced.push(("authorization".into(), value.clone()));
        verify(&parts("GET", "/", "", &respaced), example_time(), lookup).unwrap();
        // Changing a signed value (or the order of repeated values) breaks it.
        let mut tampered = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("x-amz-meta-a", "one two three"),
            ("x-amz-meta-b", "y z"),
            ("x-amz-meta-b", "x"),
        ]);
        tampered.push(("authorization".into(), value));
        assert_eq!(
            verify(&parts("GET", "/", "", &tampered), example_time(), lookup).unwrap_err(),
            AuthError::SignatureMismatch
        );
    }

    #[test]
    fn canonical_query_encoding() {
        let q = parse_query("b=2&a=z&a=y&empty&sp=a+b&pct=%2B%2f&u=%C3%A9&t=~-._&&");
        assert_eq!(
            canonical_query(&q, false),
            "a=y&a=z&b=2&empty=&pct=%2B%2F&sp=a%20b&t=~-._&u=%C3%A9"
        );
        let q = parse_query("X-Amz-Signature=abc&x=1");
        assert_eq!(canonical_query(&q, true), "x=1");
        assert_eq!(canonical_query(&q, false), "X-Amz-Signature=abc&x=1");
    }

    #[test]
    fn canonical_uri_encoding() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/b/a b+c"), "/b/a%20b%2Bc");
        assert_eq!(canonical_uri("/b/a%20b%2Bc"), "/b/a%20b%2Bc");
        assert_eq!(canonical_uri("/b//./../k~"), "/b//./../k~");
        assert_eq!(canonical_uri("/b/%7Ek%7e"), "/b/~k~");
        assert_eq!(canonical_uri("/b/é"), "/b/%C3%A9");
        assert_eq!(canonical_uri("/b/100%"), "/b/100%25");
        assert_eq!(canonical_uri("/b/%zz"), "/b/%25zz");
    }

    #[test]
    fn tampering_is_detected() {
        let base = [
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-meta-k", "v"),
        ];
        let h = headers(&base);
        let value = authorization_header(
            &parts("PUT", "/b/k", "a=1", &h),
            ACCESS,
            SECRET,
            "us-east-1",
        )
        .unwrap();
        let check = |method: &str, path: &str, query: &str, hs: &[(&str, &str)], authz: &str| {
            let mut hs = headers(hs);
            hs.push(("authorization".into(), authz.to_string()));
            verify(&parts(method, path, query, &hs), example_time(), lookup)
        };
        check("PUT", "/b/k", "a=1", &base, &value).unwrap();
        let mismatch = Err(AuthError::SignatureMismatch);
        assert_eq!(
            check("GET", "/b/k", "a=1", &base, &value).map(|_| ()),
            mismatch
        );
        assert_eq!(
            check("PUT", "/b/K", "a=1", &base, &value).map(|_| ()),
            mismatch
        );
        assert_eq!(
            check("PUT", "/b/k", "a=2", &base, &value).map(|_| ()),
            mismatch
        );
        assert_eq!(
            check("PUT", "/b/k", "a=1&b", &base, &value).map(|_| ()),
            mismatch
        );
        let mut other_meta = base;
        other_meta[3] = ("x-amz-meta-k", "w");
        assert_eq!(
            check("PUT", "/b/k", "a=1", &other_meta, &value).map(|_| ()),
            mismatch
        );
        let mut other_host = base;
        other_host[0] = ("host", "evil.example");
        assert_eq!(
            check("PUT", "/b/k", "a=1", &other_host, &value).map(|_| ()),
            mismatch
        );
        let mut other_payload = base;
        other_payload[2] = ("x-amz-content-sha256", UNSIGNED_PAYLOAD);
        assert_eq!(
            check("PUT", "/b/k", "a=1", &other_payload, &value).map(|_| ()),
            mismatch
        );
        // A signed header that disappeared.
        assert_eq!(
            check("PUT", "/b/k", "a=1", &base[..3], &value).map(|_| ()),
            mismatch
        );
        // Every single-character change of the signature.
        let pos = value.find("Signature=").unwrap() + "Signature=".len();
        for i in pos..value.len() {
            let mut bytes = value.clone().into_bytes();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let bad = String::from_utf8(bytes).unwrap();
            assert_eq!(
                check("PUT", "/b/k", "a=1", &base, &bad).map(|_| ()),
                mismatch
            );
        }
        // The wrong secret.
        let wrong = authorization_header(
            &parts("PUT", "/b/k", "a=1", &h),
            ACCESS,
            "nope",
            "us-east-1",
        )
        .unwrap();
        assert_eq!(
            check("PUT", "/b/k", "a=1", &base, &wrong).map(|_| ()),
            mismatch
        );
    }

    #[test]
    fn unknown_access_key() {
        let h = headers(&[("host", HOST), ("x-amz-date", AMZ_DATE)]);
        let value =
            authorization_header(&parts("GET", "/", "", &h), "NOSUCHKEY", SECRET, "us-east-1")
                .unwrap();
        let mut signed = h.clone();
        signed.push(("authorization".into(), value));
        let err = verify(&parts("GET", "/", "", &signed), example_time(), lookup).unwrap_err();
        assert_eq!(err, AuthError::UnknownAccessKey);
        assert_eq!(err.s3_code(), "InvalidAccessKeyId");
        assert_eq!(err.http_status(), 403);
    }

    #[test]
    fn host_must_be_signed() {
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("authorization", &auth("x-amz-date", &"0".repeat(64))),
        ]);
        let err = verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err();
        assert!(matches!(err, AuthError::MalformedHeader(ref m) if m.contains("host")));
        let q = PRESIGNED_QUERY.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range");
        let h = headers(&[("host", HOST), ("range", "bytes=0-1")]);
        let err = verify(&parts("GET", "/test.txt", &q, &h), example_time(), lookup).unwrap_err();
        assert!(matches!(err, AuthError::MalformedQuery(_)));
        assert_eq!(err.s3_code(), "AuthorizationQueryParametersError");
    }

    #[test]
    fn expect_header_may_have_been_consumed() {
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("expect", "100-continue"),
        ]);
        let value =
            authorization_header(&parts("PUT", "/b/k", "", &h), ACCESS, SECRET, "us-east-1")
                .unwrap();
        let signed = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("authorization", &value),
        ]);
        verify(&parts("PUT", "/b/k", "", &signed), example_time(), lookup).unwrap();
    }

    #[test]
    fn malformed_authorization_headers() {
        let cases = [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 ",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
            "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=zz",
            "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=abc",
            "AWS4-HMAC-SHA256 Credential=20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=abc",
            "AWS4-HMAC-SHA256 Credential=a/2013052/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=abc",
            "AWS4-HMAC-SHA256 Credential=a/20130524//s3/aws4_request,SignedHeaders=host,Signature=abc",
            "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws5_request,SignedHeaders=host,Signature=abc",
            "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;;x,Signature=abc",
            "AWS4-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=abc",
            "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=abc,Foo=bar",
            "AWS4-HMAC-SHA256 garbage",
        ];
        for value in cases {
            let h = headers(&[
                ("host", HOST),
                ("x-amz-date", AMZ_DATE),
                ("authorization", value),
            ]);
            let err = verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err();
            assert!(
                matches!(err, AuthError::MalformedHeader(_)),
                "{value}: {err:?}"
            );
        }
        for value in [
            "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
            "AWS4-ECDSA-P256-SHA256 Credential=x",
            "Bearer x",
        ] {
            let h = headers(&[("host", HOST), ("authorization", value)]);
            let err = verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err();
            assert!(
                matches!(err, AuthError::UnsupportedMechanism(_)),
                "{value}: {err:?}"
            );
        }
        // Spaces after commas are optional; both forms parse.
        let spaced = auth("host;x-amz-date", &"0".repeat(64)).replace(',', ", ");
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("authorization", &spaced),
        ]);
        assert_eq!(
            verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err(),
            AuthError::SignatureMismatch
        );
    }

    #[test]
    fn mechanism_selection() {
        let h = headers(&[("host", HOST)]);
        assert_eq!(
            verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err(),
            AuthError::Missing
        );
        assert!(matches!(
            verify(
                &parts("GET", "/k", "AWSAccessKeyId=x&Expires=1&Signature=y", &h),
                example_time(),
                lookup
            )
            .unwrap_err(),
            AuthError::UnsupportedMechanism(_)
        ));
        let both = headers(&[
            ("host", HOST),
            ("authorization", &auth("host", &"0".repeat(64))),
        ]);
        assert_eq!(
            verify(
                &parts("GET", "/test.txt", PRESIGNED_QUERY, &both),
                example_time(),
                lookup
            )
            .unwrap_err(),
            AuthError::MultipleMechanisms
        );
        let twice = headers(&[
            ("host", HOST),
            ("authorization", "x"),
            ("authorization", "y"),
        ]);
        assert!(matches!(
            verify(&parts("GET", "/", "", &twice), example_time(), lookup).unwrap_err(),
            AuthError::MalformedHeader(_)
        ));
    }

    #[test]
    fn presigned_parameter_errors() {
        let h = headers(&[("host", HOST)]);
        let run = |q: String| verify(&parts("GET", "/test.txt", &q, &h), example_time(), lookup);
        for (from, to) in [
            ("X-Amz-Expires=86400", "X-Amz-Expires=604801"),
            ("X-Amz-Expires=86400", "X-Amz-Expires=-5"),
            ("X-Amz-Expires=86400", "X-Amz-Expires=1e3"),
            ("X-Amz-Expires=86400&", ""),
            (
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                "X-Amz-Algorithm=AWS4-HMAC-SHA1",
            ),
            ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=2013-05-24"),
            ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130525T000000Z"),
            ("%2Fs3%2F", "%2Fsts%2F"),
            ("X-Amz-Signature=aeeed9", "X-Amz-Signature=zzzzz9"),
            (
                "X-Amz-SignedHeaders=host",
                "X-Amz-SignedHeaders=host&X-Amz-SignedHeaders=host",
            ),
        ] {
            let q = PRESIGNED_QUERY.replace(from, to);
            assert_ne!(q, PRESIGNED_QUERY);
            let err = run(q).unwrap_err();
            assert!(matches!(err, AuthError::MalformedQuery(_)), "{to}: {err:?}");
        }
        // A zero lifetime is an URL expired from the start, as S3 treats it.
        let q = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=0");
        assert_eq!(run(q).unwrap_err(), AuthError::Expired);
        // Maximum expiry is accepted (the signature then fails, which is fine).
        let q = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=604800");
        assert_eq!(run(q).unwrap_err(), AuthError::SignatureMismatch);
        // Extra parameters are part of the signature.
        assert_eq!(
            run(format!("{PRESIGNED_QUERY}&x-id=GetObject")).unwrap_err(),
            AuthError::SignatureMismatch
        );
        // Streaming payloads cannot be presigned.
        assert!(matches!(
            run(format!(
                "{PRESIGNED_QUERY}&X-Amz-Content-Sha256={STREAMING_SIGNED}"
            ))
            .unwrap_err(),
            AuthError::MalformedQuery(_)
        ));
    }

    #[test]
    fn presigned_roundtrip_with_extra_query_and_payload_hash() {
        let h = headers(&[("host", "nas.local:9000")]);
        let req = parts("PUT", "/bucket/a%20key", "x-id=PutObject&partNumber=2", &h);
        let q = presigned_query(&req, ACCESS, SECRET, "home", AMZ_DATE, 60).unwrap();
        let v = verify(
            &parts("PUT", "/bucket/a%20key", &q, &h),
            example_time(),
            lookup,
        )
        .unwrap();
        assert_eq!(v.payload, Payload::Unsigned);
        assert_eq!(
            verify(
                &parts("PUT", "/bucket/a%20key", &q, &h),
                example_time() + Duration::from_secs(61),
                lookup
            )
            .unwrap_err(),
            AuthError::Expired
        );
        let other_host = headers(&[("host", "other:9000")]);
        assert_eq!(
            verify(
                &parts("PUT", "/bucket/a%20key", &q, &other_host),
                example_time(),
                lookup
            )
            .unwrap_err(),
            AuthError::SignatureMismatch
        );
    }

    #[test]
    fn error_codes() {
        assert_eq!(AuthError::Missing.s3_code(), "AccessDenied");
        assert_eq!(AuthError::Expired.s3_code(), "AccessDenied");
        assert_eq!(AuthError::Expired.to_string(), "Request has expired");
        assert_eq!(
            AuthError::SignatureMismatch.s3_code(),
            "SignatureDoesNotMatch"
        );
        assert_eq!(AuthError::SignatureMismatch.http_status(), 403);
        assert_eq!(AuthError::MultipleMechanisms.http_status(), 400);
        assert_eq!(AuthError::InvalidContentSha256.s3_code(), "InvalidArgument");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the path, query and metadata, a request signed by the helper verifies.
            #[test]
            fn signed_requests_verify(
                path in "/[a-zA-Z0-9 ~!$&'()*+,;=:@%/._-]{0,40}",
                query in proptest::collection::vec(("[a-zA-Z0-9._~-]{1,8}", "[ -~]{0,12}"), 0..4),
                meta in "[ -~]{0,30}",
                region in "[a-z0-9-]{1,12}",
            ) {
                let query: Vec<String> = query
                    .iter()
                    .map(|(k, v)| format!("{k}={}", percent_encode(v.as_bytes(), UNRESERVED)))
                    .collect();
                let query = query.join("&");
                let v = roundtrip(
                    "PUT",
                    &path,
                    &query,
                    &[("host", HOST), ("x-amz-date", AMZ_DATE), ("x-amz-meta-m", &meta)],
                    &region,
                    example_time(),
                );
                prop_assert!(v.is_ok(), "{:?}", v);
            }

            /// The verifier never panics on arbitrary Authorization headers and query strings.
            #[test]
            fn arbitrary_input_does_not_panic(authz in "\\PC{0,200}", query in "\\PC{0,200}", path in "\\PC{0,50}") {
                let h = headers(&[("host", HOST), ("x-amz-date", AMZ_DATE), ("authorization", &authz)]);
                let _ = verify(&parts("GET", &path, &query, &h), example_time(), lookup);
                let h = headers(&[("host", HOST)]);
                let _ = verify(&parts("GET", &path, &format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&{query}"), &h), example_time(), lookup);
            }
        }
    }
}
