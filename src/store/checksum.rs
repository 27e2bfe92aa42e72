//! Object digests: the MD5 behind S3's ETag and the optional S3 "flexible
//! checksums" (CRC32, CRC32C, CRC64NVME, SHA1, SHA256), all computed in one
//! pass over streamed bytes.
//!
//! Also here: the multipart ETag, the two ways S3 folds part checksums into an
//! object checksum (`COMPOSITE` and `FULL_OBJECT`), and strict parsing of the
//! base64 values clients send in `Content-MD5` and `x-amz-checksum-*`.
//!
//! Every value S3 transmits is the base64 of the big-endian digest bytes; a CRC
//! is therefore encoded as its 4 (or 8) bytes, most significant first.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha1::Sha1;
use sha2::Sha256;

/// The longest raw digest any supported algorithm produces (SHA256).
const MAX_DIGEST_LEN: usize = 32;

/// An S3 flexible-checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (IEEE 802.3 / ISO-HDLC), as in zlib.
    Crc32,
    /// CRC-32C (Castagnoli / iSCSI).
    Crc32c,
    /// CRC-64/NVME (also called CRC-64/Rocksoft), S3's default checksum.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl ChecksumAlgorithm {
    /// All algorithms, for scanning request headers.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// Parses an S3 algorithm name ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"; case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
    }

    /// The S3 name of the algorithm, e.g. "CRC32".
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// The (lowercase) header carrying this checksum, e.g. "x-amz-checksum-crc32".
    pub fn header(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Length in bytes of the raw digest, to validate a client's base64 value before any work.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// Whether S3 allows this algorithm with the given multipart checksum type.
    pub fn supports(self, checksum_type: ChecksumType) -> bool {
        match checksum_type {
            // CRC64NVME has no composite form in S3.
            ChecksumType::Composite => self != Self::Crc64Nvme,
            // Only CRCs can be combined from part values without rereading data.
            ChecksumType::FullObject => self.is_crc(),
        }
    }

    /// S3's checksum type for a multipart upload that names this algorithm but no type.
    pub fn default_type(self) -> ChecksumType {
        if self == Self::Crc64Nvme {
            ChecksumType::FullObject
        } else {
            ChecksumType::Composite
        }
    }

    /// Whether this is one of the CRCs (as opposed to a cryptographic hash).
    fn is_crc(self) -> bool {
        matches!(self, Self::Crc32 | Self::Crc32c | Self::Crc64Nvme)
    }

    /// The crc-fast parameters for a CRC algorithm, `None` for the SHAs.
    fn crc_fast_algorithm(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            Self::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            Self::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            Self::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            Self::Sha1 | Self::Sha256 => None,
        }
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a multipart upload's part checksums become the object's checksum (`x-amz-checksum-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumType {
    /// A checksum of the parts' checksums, suffixed with "-N" (see [`composite_checksum`]).
    Composite,
    /// The checksum of the whole object's bytes (see [`full_object_checksum`]).
    FullObject,
}

impl ChecksumType {
    /// Parses "COMPOSITE" or "FULL_OBJECT" (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Composite, Self::FullObject]
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s.trim()))
    }

    /// The S3 name, "COMPOSITE" or "FULL_OBJECT".
    pub fn name(self) -> &'static str {
        match self {
            Self::Composite => "COMPOSITE",
            Self::FullObject => "FULL_OBJECT",
        }
    }
}

impl fmt::Display for ChecksumType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a digest value or digest computation was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    /// A Content-MD5 header that is not base64 of exactly 16 bytes.
    #[error("Content-MD5 is not the base64 of a 16-byte MD5 digest")]
    InvalidContentMd5,
    /// A checksum value that is not base64 of the algorithm's digest length.
    #[error("value for {header} is not the base64 of a {len}-byte digest", header = .0.header(), len = .0.digest_len())]
    InvalidChecksum(ChecksumAlgorithm),
    /// A part ETag that is not 32 hex digits (optionally quoted); carries its 1-based position.
    #[error("ETag of part #{0} in the list is not a hex MD5")]
    InvalidPartEtag(usize),
    /// A multipart computation given no parts.
    #[error("a multipart upload needs at least one part")]
    NoParts,
    /// An algorithm/type pair S3 does not allow, e.g. COMPOSITE CRC64NVME.
    #[error("checksum type {1} is not supported with {0}")]
    UnsupportedType(ChecksumAlgorithm, ChecksumType),
    /// A verification asked for an algorithm the [`Hashers`] was not told to compute.
    #[error("{0} was not computed for this stream")]
    NotComputed(ChecksumAlgorithm),
    /// The client's Content-MD5 differs from the MD5 of the bytes received.
    #[error("the Content-MD5 you specified did not match what we received")]
    Md5Mismatch,
    /// The client's checksum differs from the checksum of the bytes received.
    #[error("the {0} you specified did not match the calculated checksum")]
    Mismatch(ChecksumAlgorithm),
}

/// A checksum value as S3 transmits it: algorithm + base64 of the big-endian digest bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checksum {
    /// The algorithm that produced the value.
    pub algorithm: ChecksumAlgorithm,
    /// Canonical (padded, standard-alphabet) base64 of the raw digest.
    pub value: String,
}

impl Checksum {
    /// Builds a checksum from raw digest bytes.
    fn from_raw(algorithm: ChecksumAlgorithm, raw: &[u8]) -> Self {
        Self {
            algorithm,
            value: BASE64.encode(raw),
        }
    }
}

/// One running flexible-checksum computation.
#[derive(Clone)]
enum FlexHasher {
    /// crc32fast is the de-facto IEEE CRC32 crate and SIMD-accelerated.
    Crc32(crc32fast::Hasher),
    /// crc-fast covers CRC32C and CRC64NVME with SIMD and runtime CPU detection.
    Crc(ChecksumAlgorithm, crc_fast::Digest),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl FlexHasher {
    /// A fresh hasher for `algorithm`.
    fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm {
            ChecksumAlgorithm::Crc32 => Self::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => Self::Crc(
                algorithm,
                crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi),
            ),
            ChecksumAlgorithm::Crc64Nvme => Self::Crc(
                algorithm,
                crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme),
            ),
            ChecksumAlgorithm::Sha1 => Self::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => Self::Sha256(Sha256::new()),
        }
    }

    /// The algorithm this hasher computes.
    fn algorithm(&self) -> ChecksumAlgorithm {
        match self {
            Self::Crc32(_) => ChecksumAlgorithm::Crc32,
            Self::Crc(a, _) => *a,
            Self::Sha1(_) => ChecksumAlgorithm::Sha1,
            Self::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    /// Feeds bytes in.
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Crc32(h) => h.update(bytes),
            Self::Crc(_, h) => h.update(bytes),
            Self::Sha1(h) => h.update(bytes),
            Self::Sha256(h) => h.update(bytes),
        }
    }

    /// Writes the raw big-endian digest into `out` and returns its length.
    fn finish_into(self, out: &mut [u8; MAX_DIGEST_LEN]) -> usize {
        match self {
            Self::Crc32(h) => put(out, &h.finalize().to_be_bytes()),
            Self::Crc(a, h) => put_crc(out, a, h.finalize()),
            Self::Sha1(h) => put(out, &h.finalize()),
            Self::Sha256(h) => put(out, &h.finalize()),
        }
    }

    /// Finishes into a transmittable checksum.
    fn finish(self) -> Checksum {
        let algorithm = self.algorithm();
        let mut raw = [0u8; MAX_DIGEST_LEN];
        let n = self.finish_into(&mut raw);
        Checksum::from_raw(algorithm, &raw[..n])
    }
}

/// Copies `src` to the front of `out`, returning its length.
fn put(out: &mut [u8; MAX_DIGEST_LEN], src: &[u8]) -> usize {
    out[..src.len()].copy_from_slice(src);
    src.len()
}

/// Writes a CRC value big-endian in its algorithm's width (crc-fast returns every width as u64).
fn put_crc(out: &mut [u8; MAX_DIGEST_LEN], algorithm: ChecksumAlgorithm, crc: u64) -> usize {
    let be = crc.to_be_bytes();
    let len = algorithm.digest_len();
    put(out, &be[be.len().saturating_sub(len)..])
}

/// Incremental MD5 plus optional flexible checksums over one stream.
#[derive(Clone)]
pub struct Hashers {
    /// Absent while another hasher (see `Hashing` in temp.rs) computes the MD5.
    md5: Option<super::md5::Md5>,
    extra: Vec<FlexHasher>,
    len: u64,
}

impl Hashers {
    /// Starts MD5 plus each distinct algorithm in `extra` (duplicates are ignored).
    pub fn new(extra: &[ChecksumAlgorithm]) -> Self {
        let mut hashers: Vec<FlexHasher> = Vec::with_capacity(extra.len());
        for &a in extra {
            // A client may name one algorithm in several headers; hashing it twice is waste.
            if !hashers.iter().any(|h| h.algorithm() == a) {
                hashers.push(FlexHasher::new(a));
            }
        }
        Self {
            md5: Some(super::md5::Md5::new()),
            extra: hashers,
            len: 0,
        }
    }

    /// Feeds the same slice to every hasher; nothing is copied or buffered here.
    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(md5) = &mut self.md5 {
            md5.update(bytes);
        }
        for h in &mut self.extra {
            h.update(bytes);
        }
        self.len += bytes.len() as u64;
    }

    /// Number of bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes have been seen yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Finishes every hasher.
    pub fn finish(mut self) -> Digests {
        let md5 = self
            .md5
            .take()
            .expect("an MD5 taken out is finished through finish_with");
        self.finish_with(md5)
    }

    /// Whether every extra checksum is one of the CRCs, which run at many times MD5's speed.
    pub(crate) fn extras_are_cheap(&self) -> bool {
        self.extra
            .iter()
            .all(|h| matches!(h, FlexHasher::Crc32(_) | FlexHasher::Crc(..)))
    }

    /// Takes the MD5 out, for another hasher to continue; the rest keep running here.
    pub(crate) fn take_md5(&mut self) -> Option<super::md5::Md5> {
        self.md5.take()
    }

    /// Puts back an MD5 taken out with [`Hashers::take_md5`].
    pub(crate) fn restore_md5(&mut self, md5: super::md5::Md5) {
        self.md5 = Some(md5);
    }

    /// Finishes every hasher, with the MD5 continued elsewhere from [`Hashers::take_md5`].
    pub(crate) fn finish_with(self, md5: super::md5::Md5) -> Digests {
        Digests {
            md5: md5.finish(),
            checksums: self.extra.into_iter().map(FlexHasher::finish).collect(),
            len: self.len,
        }
    }
}

impl fmt::Debug for Hashers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hasher states are opaque; what is being computed is what matters when debugging.
        let algorithms: Vec<_> = self.extra.iter().map(FlexHasher::algorithm).collect();
        f.debug_struct("Hashers")
            .field("extra", &algorithms)
            .field("len", &self.len)
            .finish()
    }
}

/// What [`Hashers`] computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Raw MD5 of the stream.
    pub md5: [u8; 16],
    /// The flexible checksums asked for, in the order first asked.
    pub checksums: Vec<Checksum>,
    /// Bytes hashed.
    pub len: u64,
}

impl Digests {
    /// Lowercase hex MD5: a single-part object's ETag without the quotes.
    pub fn md5_hex(&self) -> String {
        hex_lower(&self.md5)
    }

    /// Base64 MD5, the form Content-MD5 and the `ChecksumMD5` fields use.
    pub fn md5_base64(&self) -> String {
        BASE64.encode(self.md5)
    }

    /// The computed checksum for `algorithm`, if it was asked for.
    pub fn get(&self, algorithm: ChecksumAlgorithm) -> Option<&Checksum> {
        self.checksums.iter().find(|c| c.algorithm == algorithm)
    }

    /// Checks a client's Content-MD5 (as returned by [`parse_content_md5`]) against the data.
    pub fn verify_md5(&self, expected: &[u8; 16]) -> Result<(), ChecksumError> {
        if &self.md5 == expected {
            Ok(())
        } else {
            Err(ChecksumError::Md5Mismatch)
        }
    }

    /// Checks a client's checksum (as returned by [`parse_checksum`]) against the data.
    pub fn verify(&self, expected: &Checksum) -> Result<(), ChecksumError> {
        let computed = self
            .get(expected.algorithm)
            .ok_or(ChecksumError::NotComputed(expected.algorithm))?;
        // Both sides are canonical base64 of the same length, so string equality is byte equality.
        if computed.value == expected.value {
            Ok(())
        } else {
            Err(ChecksumError::Mismatch(expected.algorithm))
        }
    }
}

/// Lowercase hex of `bytes`.
fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Value of one hex digit, either case.
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes an ETag that should be a hex MD5, tolerating surrounding whitespace and quotes.
fn decode_md5_etag(etag: &str) -> Option<[u8; 16]> {
    let t = etag.trim();
    // Clients echo ETags back as they received them: quoted, or with quotes stripped.
    let t = t
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(t);
    let hex = t.as_bytes();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(out)
}

/// Decodes standard padded base64 of exactly `want` bytes into the front of `out`.
fn decode_exact(value: &str, want: usize, out: &mut [u8; MAX_DIGEST_LEN]) -> Option<()> {
    let v = value.trim();
    // Checking the encoded length first rejects oversized input without decoding it.
    if v.len() != want.div_ceil(3) * 4 {
        return None;
    }
    // decode_slice needs room for its length estimate, which can exceed the real length.
    let mut buf = [0u8; MAX_DIGEST_LEN + 3];
    let n = BASE64.decode_slice(v, &mut buf).ok()?;
    if n != want {
        return None;
    }
    out[..n].copy_from_slice(&buf[..n]);
    Some(())
}

/// Decodes a Content-MD5 header (base64 of 16 bytes); errors unless it is exactly that.
pub fn parse_content_md5(value: &str) -> Result<[u8; 16], ChecksumError> {
    let mut raw = [0u8; MAX_DIGEST_LEN];
    decode_exact(value, 16, &mut raw).ok_or(ChecksumError::InvalidContentMd5)?;
    let mut md5 = [0u8; 16];
    md5.copy_from_slice(&raw[..16]);
    Ok(md5)
}

/// Validates a client-sent checksum value (base64 of the algorithm's digest length).
pub fn parse_checksum(
    algorithm: ChecksumAlgorithm,
    value: &str,
) -> Result<Checksum, ChecksumError> {
    let mut raw = [0u8; MAX_DIGEST_LEN];
    let len = algorithm.digest_len();
    decode_exact(value, len, &mut raw).ok_or(ChecksumError::InvalidChecksum(algorithm))?;
    // Re-encoding yields the canonical form, so later comparisons can be plain string equality.
    Ok(Checksum::from_raw(algorithm, &raw[..len]))
}

/// S3's multipart ETag, hex(md5(concat of each part's binary MD5)) + "-N", from the parts' hex ETags (quotes tolerated).
pub fn multipart_etag(part_etags: &[&str]) -> Result<String, ChecksumError> {
    if part_etags.is_empty() {
        return Err(ChecksumError::NoParts);
    }
    let mut md5 = Md5::new();
    for (i, etag) in part_etags.iter().enumerate() {
        let raw = decode_md5_etag(etag).ok_or(ChecksumError::InvalidPartEtag(i + 1))?;
        md5.update(raw);
    }
    Ok(format!(
        "{}-{}",
        hex_lower(&md5.finalize()),
        part_etags.len()
    ))
}

/// S3's COMPOSITE multipart checksum: base64(hash(concat of the raw part checksums)) + "-N".
///
/// `part_values` are the parts' base64 checksums in ascending part-number order.
/// CRC64NVME has no composite form in S3 and yields [`ChecksumError::UnsupportedType`].
pub fn composite_checksum(
    algorithm: ChecksumAlgorithm,
    part_values: &[&str],
) -> Result<String, ChecksumError> {
    if !algorithm.supports(ChecksumType::Composite) {
        return Err(ChecksumError::UnsupportedType(
            algorithm,
            ChecksumType::Composite,
        ));
    }
    if part_values.is_empty() {
        return Err(ChecksumError::NoParts);
    }
    let len = algorithm.digest_len();
    let mut hasher = FlexHasher::new(algorithm);
    let mut raw = [0u8; MAX_DIGEST_LEN];
    for value in part_values {
        decode_exact(value, len, &mut raw).ok_or(ChecksumError::InvalidChecksum(algorithm))?;
        // Hashing each part's raw digest as it is decoded equals hashing their concatenation.
        hasher.update(&raw[..len]);
    }
    let n = hasher.finish_into(&mut raw);
    Ok(format!(
        "{}-{}",
        BASE64.encode(&raw[..n]),
        part_values.len()
    ))
}

/// S3's FULL_OBJECT multipart checksum (CRCs only): the CRC of the whole object, combined from `(part value, part length)` pairs.
///
/// Parts must be in ascending part-number order. The result has no "-N" suffix,
/// since it equals the checksum of the object's bytes.
pub fn full_object_checksum(
    algorithm: ChecksumAlgorithm,
    parts: &[(&str, u64)],
) -> Result<String, ChecksumError> {
    let Some(crc_algorithm) = algorithm.crc_fast_algorithm() else {
        return Err(ChecksumError::UnsupportedType(
            algorithm,
            ChecksumType::FullObject,
        ));
    };
    let Some(((first, _), rest)) = parts.split_first() else {
        return Err(ChecksumError::NoParts);
    };
    let mut combined = decode_crc(algorithm, first)?;
    for (value, part_len) in rest {
        let crc = decode_crc(algorithm, value)?;
        // CRC linearity lets us append a part knowing only its CRC and length.
        combined = crc_fast::checksum_combine(crc_algorithm, combined, crc, *part_len);
    }
    let mut raw = [0u8; MAX_DIGEST_LEN];
    let n = put_crc(&mut raw, algorithm, combined);
    Ok(BASE64.encode(&raw[..n]))
}

/// Decodes a base64 CRC value into an integer.
fn decode_crc(algorithm: ChecksumAlgorithm, value: &str) -> Result<u64, ChecksumError> {
    let len = algorithm.digest_len();
    let mut raw = [0u8; MAX_DIGEST_LEN];
    decode_exact(value, len, &mut raw).ok_or(ChecksumError::InvalidChecksum(algorithm))?;
    Ok(raw[..len]
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Digests of `data` with every algorithm.
    fn all(data: &[u8]) -> Digests {
        let mut h = Hashers::new(&ChecksumAlgorithm::ALL);
        h.update(data);
        h.finish()
    }

    /// Hex of a computed checksum's raw bytes, for comparing with published vectors.
    fn hex_of(d: &Digests, a: ChecksumAlgorithm) -> String {
        let c = d.get(a).expect("computed");
        hex_lower(&BASE64.decode(&c.value).expect("base64"))
    }

    /// Bit-at-a-time reflected CRC, independent of the SIMD crates, as a reference.
    fn reference_crc(poly_reflected: u64, width: u32, data: &[u8]) -> u64 {
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
                    (crc >> 1) ^ poly_reflected
                } else {
                    crc >> 1
                };
            }
        }
        crc ^ mask
    }

    const CRC32_POLY: u64 = 0xEDB8_8320;
    const CRC32C_POLY: u64 = 0x82F6_3B78;
    const CRC64NVME_POLY: u64 = 0x9A6C_9329_AC4B_C9B5;

    /// Deterministic pseudo-random bytes (xorshift), so tests need no rand crate.
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn md5_and_sha_vectors() {
        let empty = all(b"");
        assert_eq!(empty.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex_of(&empty, ChecksumAlgorithm::Sha1),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            hex_of(&empty, ChecksumAlgorithm::Sha256),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(empty.len, 0);

        let hw = all(b"hello world");
        assert_eq!(hw.md5_hex(), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(hw.md5_base64(), "XrY7u+Ae7tCTyyK7j1rNww==");
        assert_eq!(
            hex_of(&hw, ChecksumAlgorithm::Sha1),
            "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"
        );
        assert_eq!(
            hex_of(&hw, ChecksumAlgorithm::Sha256),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(hw.len, 11);
    }

    #[test]
    fn crc_check_values() {
        let d = all(b"123456789");
        assert_eq!(hex_of(&d, ChecksumAlgorithm::Crc32), "cbf43926");
        assert_eq!(hex_of(&d, ChecksumAlgorithm::Crc32c), "e3069283");
        assert_eq!(hex_of(&d, ChecksumAlgorithm::Crc64Nvme), "ae8b14860a799888");
        // Base64 forms as S3 sends them (big-endian bytes).
        assert_eq!(d.get(ChecksumAlgorithm::Crc32).unwrap().value, "y/Q5Jg==");
        assert_eq!(d.get(ChecksumAlgorithm::Crc32c).unwrap().value, "4waSgw==");
        assert_eq!(
            d.get(ChecksumAlgorithm::Crc64Nvme).unwrap().value,
            "rosUhgp5mIg="
        );
        let hw = all(b"hello world");
        assert_eq!(hw.get(ChecksumAlgorithm::Crc32).unwrap().value, "DUoRhQ==");
        assert_eq!(hw.get(ChecksumAlgorithm::Crc32c).unwrap().value, "yZRlqg==");
    }

    #[test]
    fn crcs_match_bitwise_reference_across_lengths() {
        // Lengths straddle SIMD block sizes so every code path of the fast crates is compared.
        for len in [
            0, 1, 7, 15, 16, 17, 31, 63, 64, 65, 127, 255, 256, 1000, 4097, 70_001,
        ] {
            let data = noise(len, len as u64 + 1);
            let d = all(&data);
            for (a, poly, width) in [
                (ChecksumAlgorithm::Crc32, CRC32_POLY, 32),
                (ChecksumAlgorithm::Crc32c, CRC32C_POLY, 32),
                (ChecksumAlgorithm::Crc64Nvme, CRC64NVME_POLY, 64),
            ] {
                let want = reference_crc(poly, width, &data);
                let want_hex = if width == 32 {
                    format!("{want:08x}")
                } else {
                    format!("{want:016x}")
                };
                assert_eq!(hex_of(&d, a), want_hex, "{a} len {len}");
            }
        }
    }

    #[test]
    fn chunked_updates_equal_one_shot() {
        let data = noise(10_000, 42);
        let whole = all(&data);
        for chunk in [1, 3, 64, 999, 4096] {
            let mut h = Hashers::new(&ChecksumAlgorithm::ALL);
            for piece in data.chunks(chunk) {
                h.update(piece);
            }
            assert_eq!(h.len(), data.len() as u64);
            assert_eq!(h.finish(), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn only_requested_checksums_in_request_order_without_duplicates() {
        let mut h = Hashers::new(&[
            ChecksumAlgorithm::Sha256,
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Sha256,
        ]);
        assert!(h.is_empty());
        h.update(b"abc");
        assert!(!h.is_empty());
        let d = h.finish();
        let algs: Vec<_> = d.checksums.iter().map(|c| c.algorithm).collect();
        assert_eq!(algs, [ChecksumAlgorithm::Sha256, ChecksumAlgorithm::Crc32]);
        assert!(d.get(ChecksumAlgorithm::Crc64Nvme).is_none());

        let md5_only = Hashers::new(&[]).finish();
        assert!(md5_only.checksums.is_empty());
        assert_eq!(md5_only.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn hashes_64_mib_of_zeros() {
        let zeros = vec![0u8; 1 << 20];
        let mut h = Hashers::new(&ChecksumAlgorithm::ALL);
        for _ in 0..64 {
            h.update(&zeros);
        }
        assert_eq!(h.len(), 64 << 20);
        let d = h.finish();
        assert_eq!(d.len, 64 << 20);
        assert_eq!(d.checksums.len(), ChecksumAlgorithm::ALL.len());
        // The CRC of the whole must equal the combination of its 64 identical 1 MiB pieces.
        let piece = all(&zeros);
        for a in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let v = piece.get(a).unwrap().value.clone();
            let parts: Vec<(&str, u64)> = (0..64).map(|_| (v.as_str(), 1 << 20)).collect();
            assert_eq!(
                full_object_checksum(a, &parts).unwrap(),
                d.get(a).unwrap().value,
                "{a}"
            );
        }
    }

    #[test]
    fn algorithm_names_headers_and_parse() {
        for a in ChecksumAlgorithm::ALL {
            assert_eq!(ChecksumAlgorithm::parse(a.name()), Some(a));
            assert_eq!(
                ChecksumAlgorithm::parse(&a.name().to_ascii_lowercase()),
                Some(a)
            );
            assert_eq!(
                a.header(),
                format!("x-amz-checksum-{}", a.name().to_ascii_lowercase())
            );
            assert_eq!(a.to_string(), a.name());
        }
        assert_eq!(
            ChecksumAlgorithm::parse("Crc64Nvme"),
            Some(ChecksumAlgorithm::Crc64Nvme)
        );
        assert_eq!(ChecksumAlgorithm::parse("MD5"), None);
        assert_eq!(ChecksumAlgorithm::parse("CRC64"), None);
        assert_eq!(ChecksumAlgorithm::parse(""), None);
        let lens: Vec<_> = ChecksumAlgorithm::ALL
            .iter()
            .map(|a| a.digest_len())
            .collect();
        assert_eq!(lens, [4, 4, 8, 20, 32]);
    }

    #[test]
    fn checksum_types() {
        assert_eq!(
            ChecksumType::parse("composite"),
            Some(ChecksumType::Composite)
        );
        assert_eq!(
            ChecksumType::parse("FULL_OBJECT"),
            Some(ChecksumType::FullObject)
        );
        assert_eq!(ChecksumType::parse("FULL-OBJECT"), None);
        use ChecksumAlgorithm::*;
        use ChecksumType::*;
        assert!(!Crc64Nvme.supports(Composite));
        assert!(Crc64Nvme.supports(FullObject));
        assert!(Crc32.supports(Composite) && Crc32.supports(FullObject));
        assert!(Crc32c.supports(Composite) && Crc32c.supports(FullObject));
        assert!(Sha1.supports(Composite) && !Sha1.supports(FullObject));
        assert!(Sha256.supports(Composite) && !Sha256.supports(FullObject));
        assert_eq!(Crc64Nvme.default_type(), FullObject);
        assert_eq!(Sha256.default_type(), Composite);
    }

    #[test]
    fn content_md5_parsing() {
        assert_eq!(
            hex_lower(&parse_content_md5("XrY7u+Ae7tCTyyK7j1rNww==").unwrap()),
            "5eb63bbbe01eeed093cb22bb8f5acdc3"
        );
        // Surrounding whitespace is not part of the value.
        assert!(parse_content_md5(" XrY7u+Ae7tCTyyK7j1rNww== ").is_ok());
        for bad in [
            "",
            "XrY7u+Ae7tCTyyK7j1rNww",           // padding missing
            "XrY7u+Ae7tCTyyK7j1rN",             // 15 bytes
            "XrY7u+Ae7tCTyyK7j1rNwwAA",         // 17-18 bytes
            "XrY7u+Ae7tCTyyK7j1rNw*==",         // not base64
            "XrY7u+Ae7tCTyyK7j1rNwx==",         // non-canonical trailing bits
            "5eb63bbbe01eeed093cb22bb8f5acdc3", // hex, not base64
        ] {
            assert_eq!(
                parse_content_md5(bad),
                Err(ChecksumError::InvalidContentMd5),
                "{bad:?}"
            );
        }
        let huge = "A".repeat(1 << 20);
        assert!(parse_content_md5(&huge).is_err());
    }

    #[test]
    fn checksum_parsing_checks_length_per_algorithm() {
        let crc = parse_checksum(ChecksumAlgorithm::Crc32, "y/Q5Jg==").unwrap();
        assert_eq!(crc.value, "y/Q5Jg==");
        assert_eq!(crc.algorithm, ChecksumAlgorithm::Crc32);
        assert_eq!(
            parse_checksum(ChecksumAlgorithm::Sha256, "y/Q5Jg=="),
            Err(ChecksumError::InvalidChecksum(ChecksumAlgorithm::Sha256))
        );
        assert!(parse_checksum(ChecksumAlgorithm::Crc64Nvme, "rosUhgp5mIg=").is_ok());
        assert!(parse_checksum(ChecksumAlgorithm::Crc64Nvme, "y/Q5Jg==").is_err());
        let sha = "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=";
        assert!(parse_checksum(ChecksumAlgorithm::Sha256, sha).is_ok());
        assert!(parse_checksum(ChecksumAlgorithm::Sha1, sha).is_err());
        assert!(parse_checksum(ChecksumAlgorithm::Sha1, "").is_err());
        assert!(parse_checksum(ChecksumAlgorithm::Crc32c, "!!!!!!==").is_err());
    }

    #[test]
    fn verify_against_client_values() {
        let d = all(b"hello world");
        let good = parse_checksum(ChecksumAlgorithm::Crc32, "DUoRhQ==").unwrap();
        assert_eq!(d.verify(&good), Ok(()));
        let bad = parse_checksum(ChecksumAlgorithm::Crc32, "y/Q5Jg==").unwrap();
        assert_eq!(
            d.verify(&bad),
            Err(ChecksumError::Mismatch(ChecksumAlgorithm::Crc32))
        );
        assert_eq!(bad.value.len(), good.value.len());
        let md5 = parse_content_md5("XrY7u+Ae7tCTyyK7j1rNww==").unwrap();
        assert_eq!(d.verify_md5(&md5), Ok(()));
        assert_eq!(d.verify_md5(&[0; 16]), Err(ChecksumError::Md5Mismatch));

        let only_md5 = Hashers::new(&[]).finish();
        assert_eq!(
            only_md5.verify(&good),
            Err(ChecksumError::NotComputed(ChecksumAlgorithm::Crc32))
        );
    }

    #[test]
    fn multipart_etag_vectors() {
        // Expected values computed independently with Python's hashlib.
        assert_eq!(
            multipart_etag(&["d41d8cd98f00b204e9800998ecf8427e"]).unwrap(),
            "59adb24ef3cdbe0297f05b395827453f-1"
        );
        let two = [
            "\"5d41402abc4b2a76b9719d911017c592\"", // md5("hello"), quoted
            " 7D793037A0760186574B0282F2F435E7 ",   // md5("world"), uppercase, padded
        ];
        assert_eq!(
            multipart_etag(&two).unwrap(),
            "065947336a2f2a95ba8899f3675c3be6-2"
        );
    }

    #[test]
    fn multipart_etag_rejects_malformed() {
        assert_eq!(multipart_etag(&[]), Err(ChecksumError::NoParts));
        let ok = "d41d8cd98f00b204e9800998ecf8427e";
        for bad in [
            "",
            "\"\"",
            "d41d8cd98f00b204e9800998ecf8427",    // 31 digits
            "d41d8cd98f00b204e9800998ecf8427e0",  // 33 digits
            "g41d8cd98f00b204e9800998ecf8427e",   // not hex
            "d41d8cd98f00b204e9800998ecf8427e-2", // itself multipart
            "\"d41d8cd98f00b204e9800998ecf8427e", // unbalanced quote
            "d41d8cd98f00b204e9800998ecf842é",    // multibyte, 32 bytes
        ] {
            assert_eq!(
                multipart_etag(&[ok, bad]),
                Err(ChecksumError::InvalidPartEtag(2)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn composite_checksum_vectors() {
        // Expected values computed independently with Python (hashlib, zlib.crc32).
        let hello = all(b"hello");
        let world = all(b" world");
        let parts = |a| {
            [
                hello.get(a).unwrap().value.clone(),
                world.get(a).unwrap().value.clone(),
            ]
        };
        let cases = [
            (ChecksumAlgorithm::Crc32, "otMqCw==-2"),
            (ChecksumAlgorithm::Sha1, "jsvOn+i3nJqAKKUv8T48WB0YvMs=-2"),
            (
                ChecksumAlgorithm::Sha256,
                "wpQQjqgKlhF49FQdoVTheIiiSjfvtKR+G5kBEF28Vf0=-2",
            ),
        ];
        for (a, want) in cases {
            let p = parts(a);
            let got = composite_checksum(a, &[&p[0], &p[1]]).unwrap();
            assert_eq!(got, want, "{a}");
        }
        // CRC32C against the bitwise reference: CRC32C over the two big-endian part CRCs.
        let p = parts(ChecksumAlgorithm::Crc32c);
        let mut concat = Vec::new();
        for v in &p {
            concat.extend(BASE64.decode(v).unwrap());
        }
        let want = reference_crc(CRC32C_POLY, 32, &concat) as u32;
        assert_eq!(
            composite_checksum(ChecksumAlgorithm::Crc32c, &[&p[0], &p[1]]).unwrap(),
            format!("{}-2", BASE64.encode(want.to_be_bytes()))
        );
        // A single part still gets the "-1" suffix and is not the part's own value.
        let one = composite_checksum(
            ChecksumAlgorithm::Sha256,
            &[&parts(ChecksumAlgorithm::Sha256)[0]],
        )
        .unwrap();
        assert!(one.ends_with("-1"));
        assert_ne!(
            one.trim_end_matches("-1"),
            hello.get(ChecksumAlgorithm::Sha256).unwrap().value
        );
    }

    #[test]
    fn composite_checksum_rejects() {
        assert_eq!(
            composite_checksum(ChecksumAlgorithm::Crc64Nvme, &["rosUhgp5mIg="]),
            Err(ChecksumError::UnsupportedType(
                ChecksumAlgorithm::Crc64Nvme,
                ChecksumType::Composite
            ))
        );
        assert_eq!(
            composite_checksum(ChecksumAlgorithm::Crc32, &[]),
            Err(ChecksumError::NoParts)
        );
        assert_eq!(
            composite_checksum(ChecksumAlgorithm::Crc32, &["y/Q5Jg==", "rosUhgp5mIg="]),
            Err(ChecksumError::InvalidChecksum(ChecksumAlgorithm::Crc32))
        );
    }

    #[test]
    fn full_object_checksum_equals_checksum_of_whole() {
        let data = noise(300_000, 7);
        let whole = all(&data);
        // Uneven parts, including an empty one, exercise the length-dependent combine.
        let cuts = [0usize, 100_000, 100_000, 250_001, 300_000];
        let pieces: Vec<(Digests, u64)> = cuts
            .windows(2)
            .map(|w| (all(&data[w[0]..w[1]]), (w[1] - w[0]) as u64))
            .collect();
        for a in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let parts: Vec<(&str, u64)> = pieces
                .iter()
                .map(|(d, n)| (d.get(a).unwrap().value.as_str(), *n))
                .collect();
            assert_eq!(
                full_object_checksum(a, &parts).unwrap(),
                whole.get(a).unwrap().value,
                "{a}"
            );
            // One part: the object checksum is the part's checksum.
            assert_eq!(full_object_checksum(a, &parts[..1]).unwrap(), parts[0].0);
        }
        assert_eq!(
            full_object_checksum(ChecksumAlgorithm::Sha256, &[("x", 1)]),
            Err(ChecksumError::UnsupportedType(
                ChecksumAlgorithm::Sha256,
                ChecksumType::FullObject
            ))
        );
        assert_eq!(
            full_object_checksum(ChecksumAlgorithm::Crc32, &[]),
            Err(ChecksumError::NoParts)
        );
        assert_eq!(
            full_object_checksum(ChecksumAlgorithm::Crc32, &[("y/Q5Jg==", 9), ("bad", 1)]),
            Err(ChecksumError::InvalidChecksum(ChecksumAlgorithm::Crc32))
        );
    }
}
