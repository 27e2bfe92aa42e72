//! The digests tests compare bodies and ETags with.

/// Lowercase hex MD5 (an ETag of a single-part object).
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}

/// Lowercase hex SHA-256 of `body`.
pub fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}
