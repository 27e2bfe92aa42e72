//! SigV4 signing for hand-made test requests, with the `aws-sigv4` crate (the AWS SDK's own
//! signer): independent of the server's canonicaliser, so a canonicalisation bug in
//! `src/s3/sigv4` shows as a refused request instead of being mirrored by the test.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;

use super::ACCESS_KEY;

/// The region every test signs for.
pub const REGION: &str = "us-east-1";

/// `YYYYMMDDTHHMMSSZ` for `t` (UTC), as x-amz-date carries it.
pub fn amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn settings(location: SignatureLocation, expires_in: Option<Duration>) -> SigningSettings {
    let mut s = SigningSettings::default();
    // S3's rules: the path is signed as sent (encoded once, never normalised), and every
    // header the test chose is signed.
    s.percent_encoding_mode = PercentEncodingMode::Single;
    s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    s.excluded_headers = None;
    s.signature_location = location;
    s.expires_in = expires_in;
    s
}

fn uri(address: &str, path: &str, query: &str) -> String {
    if query.is_empty() {
        format!("http://{address}{path}")
    } else {
        format!("http://{address}{path}?{query}")
    }
}

/// Headers of a request signed with SigV4 at `time` for the test access key and `secret`
/// (`payload` is the value of x-amz-content-sha256): host, x-amz-content-sha256, `extra`,
/// and the signer's x-amz-date and authorization.
#[allow(clippy::too_many_arguments)]
pub fn signed_headers_at(
    time: SystemTime,
    address: &str,
    method: &str,
    path: &str,
    query: &str,
    extra: &[(&str, &str)],
    payload: &str,
    secret: &str,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), address.into()),
        ("x-amz-content-sha256".into(), payload.into()),
    ];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let identity = Credentials::new(ACCESS_KEY, secret, None, None, "nasgate-tests").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(time)
        .settings(settings(SignatureLocation::Headers, None))
        .build()
        .expect("signing params")
        .into();
    let request = SignableRequest::new(
        method,
        uri(address, path, query),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Precomputed(payload.to_string()),
    )
    .expect("signable request");
    let (instructions, _) = sign(request, &params).expect("sign").into_parts();
    let (signing_headers, _) = instructions.into_parts();
    headers.extend(
        signing_headers
            .iter()
            .map(|h| (h.name().to_ascii_lowercase(), h.value().to_string())),
    );
    headers
}

/// Headers of a request signed now (see `signed_headers_at`).
pub fn signed_headers(
    address: &str,
    method: &str,
    path: &str,
    query: &str,
    extra: &[(&str, &str)],
    payload: &str,
    secret: &str,
) -> Vec<(String, String)> {
    signed_headers_at(
        SystemTime::now(),
        address,
        method,
        path,
        query,
        extra,
        payload,
        secret,
    )
}

/// The query string of a presigned URL (signing only `host`), made at `time` and valid for
/// `expires`: `query` extended with the `X-Amz-*` parameters and the signature.
pub fn presigned_query(
    address: &str,
    method: &str,
    path: &str,
    query: &str,
    secret: &str,
    time: SystemTime,
    expires: Duration,
) -> String {
    let identity = Credentials::new(ACCESS_KEY, secret, None, None, "nasgate-tests").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("s3")
        .time(time)
        .settings(settings(SignatureLocation::QueryParams, Some(expires)))
        .build()
        .expect("signing params")
        .into();
    let request = SignableRequest::new(
        method,
        uri(address, path, query),
        std::iter::once(("host", address)),
        SignableBody::UnsignedPayload,
    )
    .expect("signable request");
    let (instructions, _) = sign(request, &params).expect("presign").into_parts();
    let (_, params) = instructions.into_parts();
    let mut out = query.to_string();
    for (name, value) in params {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.extend(percent_encoding::utf8_percent_encode(&value, UNRESERVED));
    }
    out
}

/// Everything but RFC 3986's unreserved characters is encoded in a query value.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Signs the chunks of an `aws-chunked` body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD); the
/// first chunk's `previous` is the request's own signature.
pub struct ChunkSigner {
    time: SystemTime,
    secret: String,
}

impl ChunkSigner {
    /// A signer for the body of a request signed at `time` with `secret`.
    pub fn new(time: SystemTime, secret: &str) -> ChunkSigner {
        ChunkSigner {
            time,
            secret: secret.to_string(),
        }
    }

    /// The hex signature of `chunk` following the signature `previous`.
    pub fn chunk_signature(&self, previous: &str, chunk: &[u8]) -> String {
        let identity =
            Credentials::new(ACCESS_KEY, &self.secret, None, None, "nasgate-tests").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("s3")
            .time(self.time)
            .settings(())
            .build()
            .expect("signing params");
        let (_, signature) =
            v4::sign_chunk(&bytes::Bytes::copy_from_slice(chunk), previous, &params)
                .expect("sign chunk")
                .into_parts();
        signature
    }
}
