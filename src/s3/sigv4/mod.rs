//! AWS Signature Version 4 verification for S3 requests.
//!
//! Split along its seams: `parse` (the Authorization header, presigned query parameters,
//! credentials), `canonical` (canonical request and string to sign), `date` (amz dates and
//! Unix seconds), `verify` (both forms end to end); this module keeps the types, constants
//! and key derivation the rest of the S3 front uses.
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

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use super::error::S3Code;

mod canonical;
mod date;
mod parse;
mod post;
mod presign;
#[cfg(test)]
mod tests;
mod verify;

pub(crate) use date::parse_amz_date;
pub use post::{verify_post, PostSignature};
pub use presign::presign_signature;
pub use verify::verify;

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
pub(crate) const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The path keeps its `/` separators; every other byte is encoded like a query value.
pub(crate) const PATH_UNRESERVED: &AsciiSet = &UNRESERVED.remove(b'/');

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

pub(super) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC is defined for keys of every length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}
