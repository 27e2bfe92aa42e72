//! The S3 flavour of SigV4 canonicalisation: canonical URI, query and headers, and the
//! string to sign.

use percent_encoding::percent_encode;

use super::*;

/// Builds the SigV4 canonical request.
pub(super) fn canonical_request(
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
pub(super) fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    // Decoding first makes `/a$b` and `/a%24b` (and `%7e` vs `~`) canonicalise
    // identically, which is what the client signed whichever form it sent.
    let decoded: Vec<u8> = percent_decode(path.as_bytes()).collect();
    percent_encode(&decoded, PATH_UNRESERVED).to_string()
}

/// Canonical query string: encoded pairs sorted by name then value.
pub(super) fn canonical_query(query: &[(Vec<u8>, Vec<u8>)], skip_signature: bool) -> String {
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

/// Appends a header value trimmed, with inner runs of spaces and tabs collapsed to one space.
pub(super) fn push_trimmed(value: &str, out: &mut String) {
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

pub(super) fn string_to_sign(date_time: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{date_time}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}
