//! The signature of a browser-form POST (POST Object): the policy document itself is what
//! the client signed, with the key of the credential's scope.

use subtle::ConstantTimeEq;

use super::date::parse_amz_date;
use super::parse::{parse_credential, parse_signature};
use super::{hmac_sha256, signing_key, AuthError, ALGORITHM};

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
