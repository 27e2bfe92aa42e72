//! The digests tests compare bodies, ETags and checksums with, computed independently of
//! the store's own implementations.

use base64::Engine as _;
use nasgate::store::checksum::ChecksumAlgorithm;

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

/// Bitwise reflected CRC, independent of the store's table-driven implementations.
pub fn crc_reflected(data: &[u8], poly: u64, width: u32) -> u64 {
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let mut crc = mask;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
        }
    }
    crc ^ mask
}

/// The S3 wire value (base64 of the big-endian digest) of each algorithm over `data`.
pub fn reference_checksum(alg: ChecksumAlgorithm, data: &[u8]) -> String {
    use sha1::Digest as _;
    let b64 = |raw: &[u8]| base64::engine::general_purpose::STANDARD.encode(raw);
    match alg {
        ChecksumAlgorithm::Crc32 => {
            b64(&(crc_reflected(data, 0xEDB8_8320, 32) as u32).to_be_bytes())
        }
        ChecksumAlgorithm::Crc32c => {
            b64(&(crc_reflected(data, 0x82F6_3B78, 32) as u32).to_be_bytes())
        }
        ChecksumAlgorithm::Crc64Nvme => {
            b64(&crc_reflected(data, 0x9A6C_9329_AC4B_C9B5, 64).to_be_bytes())
        }
        ChecksumAlgorithm::Sha1 => b64(&sha1::Sha1::digest(data)),
        ChecksumAlgorithm::Sha256 => b64(&sha2::Sha256::digest(data)),
    }
}
