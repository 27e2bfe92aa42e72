//! S3 errors: the code, status and message a client sees, and the one place where store errors
//! become S3 errors.

use warp::http::StatusCode;

use crate::store::checksum::ChecksumError;
use crate::store::{Conflict, NameError, StoreError};

macro_rules! codes {
    ($($(#[$doc:meta])* $code:ident,)*) => {
        /// The error codes nasgate answers with, as S3 spells them in `<Code>`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum S3Code {
            $($(#[$doc])* $code,)*
        }

        impl S3Code {
            /// The code as it appears in the XML error body.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(S3Code::$code => stringify!($code),)*
                }
            }
        }
    };
}

codes! {
    /// 403: authentication failed or the request is not allowed.
    AccessDenied,
    /// 400: the Authorization header cannot be parsed.
    AuthorizationHeaderMalformed,
    /// 400: the presigned query parameters cannot be parsed.
    AuthorizationQueryParametersError,
    /// 400: Content-MD5 or a checksum differs from the body received.
    BadDigest,
    /// 400: a request S3 rejects without a more specific code.
    BadRequest,
    /// 409: the bucket exists (and the only identity owns it).
    BucketAlreadyOwnedByYou,
    /// 409: the bucket still holds objects.
    BucketNotEmpty,
    /// 400: a part other than the last is below 5 MiB, or a POST Object file below its policy's range.
    EntityTooSmall,
    /// 400: a POST Object file above its policy's content-length-range.
    EntityTooLarge,
    /// 400: the body is shorter than announced.
    IncompleteBody,
    /// 500: an unexpected failure (details only in the log).
    InternalError,
    /// 403: the access key is not known.
    InvalidAccessKeyId,
    /// 400: a parameter or header has an unacceptable value.
    InvalidArgument,
    /// 400: the bucket name breaks S3's rules.
    InvalidBucketName,
    /// 400: Content-MD5 is not a valid digest.
    InvalidDigest,
    /// 400: a part listed for completion is missing or differs.
    InvalidPart,
    /// 416: the part number is outside the object.
    InvalidPartNumber,
    /// 400: the parts listed for completion are not ascending.
    InvalidPartOrder,
    /// 416: the range is outside the object.
    InvalidRange,
    /// 400: the request is not valid as made.
    InvalidRequest,
    /// 400: a tag key or value breaks S3's rules.
    InvalidTag,
    /// 400: the key is longer than 1024 bytes.
    KeyTooLongError,
    /// 400: a trailer of an aws-chunked body cannot be parsed.
    MalformedTrailerError,
    /// 400: a POST Object form that is not well-formed or whose policy cannot be read.
    MalformedPOSTRequest,
    /// 400: the request body is not the XML expected.
    MalformedXML,
    /// 400: the request body is longer than allowed.
    MaxMessageLengthExceeded,
    /// 400: user metadata exceeds 2 KiB.
    MetadataTooLarge,
    /// 411: a body without Content-Length or chunked framing.
    MissingContentLength,
    /// 404: the bucket does not exist.
    NoSuchBucket,
    /// 404: the key does not exist.
    NoSuchKey,
    /// 404: the multipart upload does not exist.
    NoSuchUpload,
    /// 404: the bucket has no policy.
    NoSuchBucketPolicy,
    /// 400: the policy document is not valid or uses features nasgate does not support.
    MalformedPolicy,
    /// 404: the bucket has no CORS configuration.
    NoSuchCORSConfiguration,
    /// 404: the bucket has no lifecycle configuration.
    NoSuchLifecycleConfiguration,
    /// 404: the bucket has no tags.
    NoSuchTagSet,
    /// 404: the bucket has no encryption configuration.
    ServerSideEncryptionConfigurationNotFoundError,
    /// 404: the bucket has no website configuration.
    NoSuchWebsiteConfiguration,
    /// 404: the bucket has no replication configuration.
    ReplicationConfigurationNotFoundError,
    /// 404: the bucket has no object lock configuration.
    ObjectLockConfigurationNotFoundError,
    /// 404: the bucket has no ownership controls.
    OwnershipControlsNotFoundError,
    /// 404: the bucket has no public access block.
    NoSuchPublicAccessBlockConfiguration,
    /// 404: a version other than `null` was asked for.
    NoSuchVersion,
    /// 501: nasgate does not implement the operation.
    NotImplemented,
    /// 304: the conditional read found the object unchanged.
    NotModified,
    /// 412: a condition of the request did not hold.
    PreconditionFailed,
    /// 403: the request time is too far from the server's.
    RequestTimeTooSkewed,
    /// 400: the client stalled while sending the body.
    RequestTimeout,
    /// 403: the signature (of the request or a chunk) is wrong.
    SignatureDoesNotMatch,
    /// 503: a lock wait timed out, or the server is draining.
    SlowDown,
    /// 503: the share refuses writes (read-only) or cannot be reached; retry elsewhere.
    ServiceUnavailable,
    /// 400: the body's SHA-256 differs from x-amz-content-sha256.
    XAmzContentSHA256Mismatch,
    /// 409: the key's place is a directory (MinIO's code).
    XMinioObjectExistsAsDirectory,
    /// 400: a prefix of the key is an object (MinIO's code).
    XMinioParentIsObject,
    /// 507: the share is full (MinIO's code).
    XMinioStorageFull,
}

impl PartialEq<&str> for S3Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for S3Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The code for a digest or checksum the store or a header parser refused.
impl From<&ChecksumError> for S3Code {
    fn from(e: &ChecksumError) -> S3Code {
        match e {
            ChecksumError::InvalidContentMd5 => S3Code::InvalidDigest,
            ChecksumError::Md5Mismatch | ChecksumError::Mismatch(_) => S3Code::BadDigest,
            ChecksumError::InvalidPartEtag(_) => S3Code::InvalidPart,
            ChecksumError::NoParts => S3Code::MalformedXML,
            ChecksumError::InvalidChecksum(_)
            | ChecksumError::UnsupportedType(..)
            | ChecksumError::NotComputed(_) => S3Code::InvalidRequest,
        }
    }
}

/// An error as S3 reports it.
#[derive(Debug, Clone)]
pub struct S3Error {
    /// HTTP status.
    pub status: StatusCode,
    /// S3 error code.
    pub code: S3Code,
    /// Human-readable message.
    pub message: String,
    /// Seconds a client should wait before retrying (503 SlowDown).
    pub retry_after: Option<u64>,
    /// Headers the answer carries besides the error (a 304's ETag and Last-Modified).
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    /// An error with an explicit status, code and message.
    pub fn new(status: StatusCode, code: S3Code, message: impl Into<String>) -> S3Error {
        S3Error {
            status,
            code,
            message: message.into(),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    /// 400 with `code`.
    pub fn bad(code: S3Code, message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 501 NotImplemented.
    pub fn not_implemented(what: &str) -> S3Error {
        S3Error::new(
            StatusCode::NOT_IMPLEMENTED,
            S3Code::NotImplemented,
            format!("{what} is not implemented by nasgate"),
        )
    }

    /// 400 MalformedXML.
    pub fn malformed_xml() -> S3Error {
        S3Error::bad(
            S3Code::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }

    /// 500 InternalError (the details go to the log, not to the client).
    pub fn internal() -> S3Error {
        S3Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            S3Code::InternalError,
            "We encountered an internal error. Please try again.",
        )
    }

    /// 403 AccessDenied.
    pub fn access_denied(message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::FORBIDDEN, S3Code::AccessDenied, message)
    }
}

impl From<crate::access::AccessError> for S3Error {
    fn from(e: crate::access::AccessError) -> S3Error {
        use crate::access::AccessError as A;
        match e {
            A::Denied(_) => S3Error::access_denied("Access Denied."),
            A::Malformed(why) => S3Error::bad(S3Code::MalformedPolicy, why.0),
            A::NoPolicy => S3Error::new(
                StatusCode::NOT_FOUND,
                S3Code::NoSuchBucketPolicy,
                "The bucket policy does not exist",
            ),
            A::Store(e) => e.into(),
            A::User(e) => {
                tracing::error!("users: {e}");
                S3Error::internal()
            }
        }
    }
}

impl From<StoreError> for S3Error {
    fn from(e: StoreError) -> S3Error {
        use StatusCode as S;
        let e = e.busy_if_unavailable();
        let msg = e.to_string();
        match e {
            StoreError::NoSuchBucket(_) => S3Error::new(
                S::NOT_FOUND,
                S3Code::NoSuchBucket,
                "The specified bucket does not exist",
            ),
            StoreError::BucketExists(_) => S3Error::new(
                S::CONFLICT,
                S3Code::BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it.",
            ),
            StoreError::BucketNotEmpty(_) => S3Error::new(
                S::CONFLICT,
                S3Code::BucketNotEmpty,
                "The bucket you tried to delete is not empty",
            ),
            StoreError::Name(NameError::Bucket(..)) => {
                S3Error::bad(S3Code::InvalidBucketName, msg)
            }
            StoreError::Name(NameError::KeyTooLong) => {
                S3Error::bad(S3Code::KeyTooLongError, "Your key is too long")
            }
            StoreError::Name(NameError::Key(..) | NameError::NameTooLong(_)) => {
                S3Error::bad(S3Code::InvalidArgument, msg)
            }
            StoreError::NoSuchKey { .. } => S3Error::new(
                S::NOT_FOUND,
                S3Code::NoSuchKey,
                "The specified key does not exist.",
            ),
            StoreError::KeyConflict { kind, .. } => match kind {
                Conflict::ParentIsObject => S3Error::bad(S3Code::XMinioParentIsObject, msg),
                Conflict::KeysBelow
                | Conflict::ObjectAtDirectory
                | Conflict::DirectoryWithData
                | Conflict::MetadataBlocked => {
                    S3Error::new(S::CONFLICT, S3Code::XMinioObjectExistsAsDirectory, msg)
                }
            },
            StoreError::PreconditionFailed => S3Error::new(
                S::PRECONDITION_FAILED,
                S3Code::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            ),
            StoreError::NotModified { etag, modified } => {
                // A 304 carries the validators, as S3 sends them; clients update their caches
                // from them.
                let mut e = S3Error::new(S::NOT_MODIFIED, S3Code::NotModified, "Not Modified");
                e.headers = vec![
                    ("etag", format!("\"{etag}\"")),
                    ("last-modified", super::xml::http_date(modified)),
                ];
                e
            }
            StoreError::BadDigest => S3Error::bad(
                S3Code::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ),
            StoreError::ChecksumMismatch(alg) => S3Error::bad(
                S3Code::BadDigest,
                format!("The {alg} you specified did not match the calculated checksum."),
            ),
            StoreError::IncompleteBody { .. } => S3Error::bad(
                S3Code::IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            ),
            StoreError::InvalidRange => S3Error::new(
                S::RANGE_NOT_SATISFIABLE,
                S3Code::InvalidRange,
                "The requested range is not satisfiable",
            ),
            StoreError::NoSuchUpload(_) => S3Error::new(
                S::NOT_FOUND,
                S3Code::NoSuchUpload,
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            ),
            StoreError::InvalidPart(_) => S3Error::bad(S3Code::InvalidPart, msg),
            StoreError::InvalidPartOrder => S3Error::bad(S3Code::InvalidPartOrder, msg),
            StoreError::EntityTooSmall(_) => S3Error::bad(
                S3Code::EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size.",
            ),
            StoreError::InvalidRequest(m) => S3Error::bad(S3Code::InvalidRequest, m),
            // Only the FUSE front asks for what the POSIX view refuses.
            #[cfg(unix)]
            StoreError::Refused { why, .. } => S3Error::bad(S3Code::InvalidRequest, why),
            StoreError::Busy(_) => {
                tracing::warn!(error = %msg, "lock wait timed out");
                S3Error {
                    retry_after: Some(1),
                    ..S3Error::new(
                        S::SERVICE_UNAVAILABLE,
                        S3Code::SlowDown,
                        "Please reduce your request rate.",
                    )
                }
            }
            StoreError::Io { ref source, .. } if is_full(source) => S3Error::new(
                S::INSUFFICIENT_STORAGE,
                S3Code::XMinioStorageFull,
                "Storage backend has reached its minimum free drive threshold.",
            ),
            // Reads still work; writes may work through another instance, or here once the
            // share is writable again.
            StoreError::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
            {
                tracing::warn!(error = %msg, "write refused: the share is read-only");
                S3Error {
                    retry_after: Some(5),
                    ..S3Error::new(
                        S::SERVICE_UNAVAILABLE,
                        S3Code::ServiceUnavailable,
                        "The share is read-only on this server; nothing was written.",
                    )
                }
            }
            // A file another program keeps open (Windows) cannot be replaced for now.
            StoreError::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::ResourceBusy =>
            {
                tracing::warn!(error = %msg, "share busy");
                S3Error {
                    retry_after: Some(1),
                    ..S3Error::new(
                        S::SERVICE_UNAVAILABLE,
                        S3Code::SlowDown,
                        "Please reduce your request rate.",
                    )
                }
            }
            StoreError::Corrupt { .. } | StoreError::Io { .. } => {
                tracing::error!(error = %msg, "store failure");
                S3Error::internal()
            }
        }
    }
}

fn is_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_errors_map_to_s3_codes() {
        assert_eq!(S3Code::from(&ChecksumError::Md5Mismatch), "BadDigest");
        assert_eq!(
            S3Code::from(&ChecksumError::InvalidContentMd5),
            "InvalidDigest"
        );
    }
}
