//! Verification of both SigV4 forms: the Authorization header and presigned URLs.

use std::time::SystemTime;

use subtle::ConstantTimeEq;

use super::canonical::*;
use super::date::*;
use super::parse::*;
use super::*;

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

/// The pieces common to both forms once parsed.
pub(super) struct Claimed<'a> {
    pub(super) credential: Credential<'a>,
    pub(super) signed_headers_line: &'a str,
    pub(super) signed_headers: Vec<String>,
    pub(super) signature: [u8; 32],
    pub(super) date_time: &'a str,
}

pub(super) fn verify_header(
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

pub(super) fn verify_presigned(
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
    // A zero lifetime is expired from the start, even within the second it was signed in.
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
pub(super) fn finish(
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
