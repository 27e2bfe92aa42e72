//! Signing presigned URLs (the console hands them to the browser), with the same canonical
//! request code the verifier uses, so what is signed here is what `verify` recomputes.

use super::canonical::{canonical_request, string_to_sign};
use super::parse::parse_query;
use super::*;

/// The hex `X-Amz-Signature` of a presigned request. `req.query` holds every parameter of the
/// URL but the signature (already percent-encoded, `X-Amz-SignedHeaders` among them) and
/// `req.headers` the values of `signed_headers` (lowercase, sorted, `host` first among equals).
pub fn presign_signature(
    req: &RequestParts<'_>,
    signed_headers: &[String],
    secret: &str,
    date_time: &str,
    region: &str,
) -> Result<String, AuthError> {
    let query = parse_query(req.query);
    let line = signed_headers.join(";");
    let canonical = canonical_request(req, &query, true, signed_headers, &line, UNSIGNED_PAYLOAD)?;
    let date = date_time.get(..8).ok_or(AuthError::MissingDate)?;
    let scope = format!("{date}/{region}/s3/aws4_request");
    let key = signing_key(secret, date, region, "s3");
    Ok(hex::encode(hmac_sha256(
        &key,
        string_to_sign(date_time, &scope, &canonical).as_bytes(),
    )))
}
