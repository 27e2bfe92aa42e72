//! S3 errors: the code, status and message a client sees, and the one place where store errors
//! become S3 errors.

use warp::http::StatusCode;

use crate::store::{NameError, StoreError};

/// An error as S3 reports it.
#[derive(Debug, Clone)]
pub struct S3Error {
    /// HTTP status.
    pub status: StatusCode,
    /// S3 error code ("NoSuchKey").
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Seconds a client should wait before retrying (503 SlowDown).
    pub retry_after: Option<u64>,
    /// Headers the answer carries besides the error (a 304's ETag and Last-Modified).
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    /// An error with an explicit status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error {
            status,
            code,
            message: message.into(),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    /// 400 with `code`.
    pub fn bad(code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 501 NotImplemented.
    pub fn not_implemented(what: &str) -> S3Error {
        S3Error::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("{what} is not implemented by nasgate"),
        )
    }

    /// 400 MalformedXML.
    pub fn malformed_xml() -> S3Error {
        S3Error::bad(
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }

    /// 500 InternalError (the details go to the log, not to the client).
    pub fn internal() -> S3Error {
        S3Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }

    /// 403 AccessDenied.
    pub fn access_denied(message: impl Into<String>) -> S3Error {
        S3Error::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }
}

impl From<StoreError> for S3Error {
    fn from(e: StoreError) -> S3Error {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            StoreError::NoSuchBucket(_) => S3Error::new(
                S::NOT_FOUND,
                "NoSuchBucket",
                "The specified bucket does not exist",
            ),
            StoreError::BucketExists(_) => S3Error::new(
                S::CONFLICT,
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
            ),
            StoreError::BucketNotEmpty(_) => S3Error::new(
                S::CONFLICT,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty",
            ),
            StoreError::Name(NameError::Bucket(..)) => {
                S3Error::bad("InvalidBucketName", msg)
            }
            StoreError::Name(NameError::KeyTooLong) => {
                S3Error::bad("KeyTooLongError", "Your key is too long")
            }
            StoreError::Name(NameError::Key(..) | NameError::NameTooLong(_)) => {
                S3Error::bad("InvalidArgument", msg)
            }
            StoreError::NoSuchKey { .. } => S3Error::new(
                S::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
            ),
            StoreError::KeyConflict { why, .. } if why.contains("prefix") => {
                S3Error::bad("XMinioParentIsObject", msg)
            }
            StoreError::KeyConflict { .. } => {
                S3Error::new(S::CONFLICT, "XMinioObjectExistsAsDirectory", msg)
            }
            StoreError::PreconditionFailed => S3Error::new(
                S::PRECONDITION_FAILED,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            ),
            StoreError::NotModified { etag, modified } => {
                // A 304 carries the validators, as S3 sends them; clients update their caches
                // from them.
                let mut e = S3Error::new(S::NOT_MODIFIED, "NotModified", "Not Modified");
                e.headers = vec![
                    ("etag", format!("\"{etag}\"")),
                    ("last-modified", super::xml::http_date(modified)),
                ];
                e
            }
            StoreError::BadDigest => S3Error::bad(
                "BadDigest",
                "The Content-MD5 you specified did not match what we received.",
            ),
            StoreError::ChecksumMismatch(alg) => S3Error::bad(
                "BadDigest",
                format!("The {alg} you specified did not match the calculated checksum."),
            ),
            StoreError::IncompleteBody { .. } => S3Error::bad(
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            ),
            StoreError::InvalidRange => S3Error::new(
                S::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            ),
            StoreError::NoSuchUpload(_) => S3Error::new(
                S::NOT_FOUND,
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            ),
            StoreError::InvalidPart(_) => S3Error::bad("InvalidPart", msg),
            StoreError::InvalidPartOrder => S3Error::bad("InvalidPartOrder", msg),
            StoreError::EntityTooSmall(_) => S3Error::bad(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            ),
            StoreError::InvalidRequest(m) => S3Error::bad("InvalidRequest", m),
            // Only the FUSE front asks for what the POSIX view refuses.
            #[cfg(unix)]
            StoreError::Refused { why, .. } => S3Error::bad("InvalidRequest", why),
            StoreError::Busy(_) => {
                tracing::warn!(error = %msg, "lock wait timed out");
                S3Error {
                    retry_after: Some(1),
                    ..S3Error::new(
                        S::SERVICE_UNAVAILABLE,
                        "SlowDown",
                        "Please reduce your request rate.",
                    )
                }
            }
            StoreError::Io { ref source, .. } if is_full(source) => S3Error::new(
                S::INSUFFICIENT_STORAGE,
                "XMinioStorageFull",
                "Storage backend has reached its minimum free drive threshold.",
            ),
            // A file another program keeps open (Windows) cannot be replaced for now.
            StoreError::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::ResourceBusy =>
            {
                tracing::warn!(error = %msg, "share busy");
                S3Error {
                    retry_after: Some(1),
                    ..S3Error::new(
                        S::SERVICE_UNAVAILABLE,
                        "SlowDown",
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
