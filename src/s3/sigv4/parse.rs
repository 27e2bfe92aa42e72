//! Parsing what a client sent: the Authorization header's fields, credentials, signed
//! header lists, signatures, expiry, payload modes, and the raw query string.

use percent_encoding::percent_decode;

use super::*;

/// The parsed `Credential` / `X-Amz-Credential` value.
pub(super) struct Credential<'a> {
    pub(super) access_key: &'a str,
    pub(super) date: &'a str,
    pub(super) region: &'a str,
}

impl Credential<'_> {
    pub(super) fn scope(&self) -> String {
        format!("{}/{}/s3/aws4_request", self.date, self.region)
    }
}

/// Raw `Credential=`, `SignedHeaders=` and `Signature=` values of the header.
pub(super) struct AuthorizationFields<'a> {
    pub(super) credential: &'a str,
    pub(super) signed_headers: &'a str,
    pub(super) signature: &'a str,
}

pub(super) fn parse_authorization(value: &str) -> Result<AuthorizationFields<'_>, AuthError> {
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

pub(super) fn parse_credential(value: &str) -> Result<Credential<'_>, String> {
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

pub(super) fn parse_signed_headers(value: &str) -> Result<Vec<String>, String> {
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

pub(super) fn parse_signature(value: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    if value.len() != 64 || hex::decode_to_slice(value, &mut out).is_err() {
        return Err("the signature must be 64 hexadecimal characters".into());
    }
    Ok(out)
}

pub(super) fn parse_expires(value: &str) -> Result<i64, AuthError> {
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

pub(super) fn classify_payload(value: &str) -> Result<Payload, AuthError> {
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

/// Splits and decodes a raw query string; `+` means space as in form encoding.
pub(super) fn parse_query(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
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
pub(super) fn query_param<'q>(
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
pub(super) fn single_header<'h>(
    headers: &'h [(String, String)],
    name: &str,
) -> Result<Option<&'h str>, ()> {
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
