//! Per-object metadata in MinIO FS-mode's `fs.json`.
//!
//! The file MinIO wrote looks like
//! `{"version":"1.0.2","checksum":{"algorithm":"","blocksize":0,"hashes":null},"meta":{"etag":"…","content-type":"…","X-Amz-Meta-Owner":"alice"}}`,
//! plus `"parts":[…]` for multipart objects. nasgate reads versions 1.0.0–1.0.2 and writes
//! 1.0.2. It adds one field of its own, `"nasgate"`, a stamp of the data file the metadata was
//! written for (inode, size, mtime) and the flexible checksums. Old MinIO servers ignore
//! unknown fields. A stamp that no longer matches the data file means the data changed behind
//! nasgate's back (a legacy tool, or a crash between the two renames of a publish): the
//! metadata is then stale and is rebuilt from the data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::platform::Stat;

/// The fs.json version nasgate writes.
pub const VERSION: &str = "1.0.2";
/// ETag of the empty body (directory objects, empty files).
pub const EMPTY_ETAG: &str = "d41d8cd98f00b204e9800998ecf8427e";
/// The fake ETag MinIO gave files without fs.json; never trusted as an ETag.
pub const MINIO_FAKE_ETAG: &str = "00000000000000000000000000000000-1";
/// Standard headers stored (lowercase) in `meta`.
pub const STANDARD_HEADERS: [&str; 6] = [
    "content-type",
    "cache-control",
    "content-encoding",
    "content-disposition",
    "content-language",
    "expires",
];
/// Key of the URL-encoded object tags in `meta`.
pub const TAGGING: &str = "X-Amz-Tagging";
/// Prefix of user metadata keys in `meta` (canonical form).
pub const USER_PREFIX: &str = "X-Amz-Meta-";

/// The contents of one fs.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsJson {
    /// Format version, "1.0.0" to "1.0.2".
    pub version: String,
    /// Bitrot checksum block (unused in FS mode, kept for compatibility).
    #[serde(default)]
    pub checksum: FsChecksum,
    /// ETag, standard headers, user metadata and tags.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Part sizes of a multipart object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<FsPart>,
    /// nasgate's stamp of the data file this metadata describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nasgate: Option<Stamp>,
    /// nasgate's record of a multipart upload, in an upload's own fs.json.
    #[serde(
        rename = "nasgateUpload",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub upload: Option<UploadRecord>,
}

/// What an upload's fs.json records so that uploads can be listed by bucket and prefix (the
/// directory name is a hash of bucket/key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// When the upload was created, ns since the epoch.
    pub initiated_ns: i64,
    /// Flexible checksum algorithm requested at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// The (unused) bitrot checksum block of fs.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsChecksum {
    /// Always "" in FS mode.
    #[serde(default)]
    pub algorithm: String,
    /// Always 0 in FS mode.
    #[serde(default)]
    pub blocksize: i64,
    /// Always null in FS mode.
    #[serde(default)]
    pub hashes: Option<Vec<String>>,
}

/// One part of a multipart object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsPart {
    /// Part number.
    pub number: u32,
    /// The part's ETag, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etag: String,
    /// Bytes stored.
    pub size: u64,
    /// Bytes before any transformation (same as size here).
    #[serde(rename = "actualSize", default)]
    pub actual_size: u64,
}

/// Which data file a metadata record was written for, and its flexible checksums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Inode of the data file.
    pub ino: u64,
    /// Size of the data file.
    pub size: u64,
    /// Modification time of the data file, ns since the epoch.
    pub mtime_ns: i64,
    /// Flexible checksums ("CRC32" -> base64 value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
}

impl Stamp {
    /// The stamp of a data file as it is now.
    pub fn of(stat: &Stat) -> Stamp {
        Stamp {
            ino: stat.id.ino,
            size: stat.size,
            mtime_ns: stat.mtime_ns as i64,
            checksums: BTreeMap::new(),
        }
    }

    /// Whether the data file still is the one this stamp was taken of.
    pub fn matches(&self, stat: &Stat) -> bool {
        self.ino == stat.id.ino && self.size == stat.size && self.mtime_ns == stat.mtime_ns as i64
    }
}

/// Why an fs.json could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// Not JSON of the expected shape.
    #[error("fs.json is not valid: {0}")]
    Syntax(#[from] serde_json::Error),
    /// A version nasgate does not know.
    #[error("fs.json version {0:?} is not supported")]
    Version(String),
}

impl FsJson {
    /// A fresh record with `meta` (etag included, or left out: pending) for data stamped
    /// `stamp`.
    pub fn new(meta: BTreeMap<String, String>, stamp: Stamp) -> FsJson {
        FsJson {
            version: VERSION.into(),
            checksum: FsChecksum::default(),
            meta,
            parts: Vec::new(),
            nasgate: Some(stamp),
            upload: None,
        }
    }

    /// Parses fs.json bytes; `Ok(None)` for an empty file (a lock file that never got
    /// metadata).
    pub fn parse(bytes: &[u8]) -> Result<Option<FsJson>, MetaError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let m: FsJson = serde_json::from_slice(bytes)?;
        if !matches!(m.version.as_str(), "1.0.0" | "1.0.1" | "1.0.2") {
            return Err(MetaError::Version(m.version));
        }
        Ok(Some(m))
    }

    /// Serialises for writing.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain maps and strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The stored ETag, unless missing or MinIO's placeholder.
    pub fn etag(&self) -> Option<&str> {
        self.meta
            .get("etag")
            .map(String::as_str)
            .filter(|e| !e.is_empty() && *e != MINIO_FAKE_ETAG)
    }

    /// Whether this record may be trusted for a data file with `stat`, ETag included:
    /// stamped records must match the file; unstamped ones (written by MinIO) are trusted if
    /// they carry an ETag. A stamped record without one is pending (see `pending_for`).
    pub fn describes(&self, stat: &Stat) -> bool {
        self.etag().is_some() && self.matches_data(stat)
    }

    /// Whether this record belongs to a data file with `stat`, its ETag possibly still to be
    /// computed: everything but the ETag may be trusted.
    pub fn matches_data(&self, stat: &Stat) -> bool {
        match &self.nasgate {
            Some(stamp) => stamp.matches(stat),
            None => self.etag().is_some(),
        }
    }

    /// Whether this is a record of the data file with `stat` published with its ETag left to
    /// be computed from the data (a large file written through the mount).
    pub fn pending_for(&self, stat: &Stat) -> bool {
        self.etag().is_none() && self.matches_data(stat)
    }
}

/// The entries of a `meta` map that belong to the object itself (standard headers, user
/// metadata, tags), without the ETag: what a copy, a rewrite or a draft carries over.
pub fn user_and_standard(meta: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    meta.iter()
        .filter(|(k, _)| {
            STANDARD_HEADERS.contains(&k.as_str())
                || k.starts_with(USER_PREFIX)
                || k.as_str() == TAGGING
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Go's canonical MIME header form, which MinIO used for user metadata keys:
/// `x-amz-meta-my-key` -> `X-Amz-Meta-My-Key`.
pub fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper = c == '-';
    }
    out
}

/// Content type guessed from a key's extension, for files that arrived without metadata.
pub fn content_type_for(key: &str) -> &'static str {
    let ext = key
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("txt") | Some("log") | Some("md") => "text/plain",
        Some("html") | Some("htm") => "text/html",
        Some("css") => "text/css",
        Some("csv") => "text/csv",
        Some("xml") => "application/xml",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("gz") | Some("tgz") => "application/gzip",
        Some("tar") => "application/x-tar",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("webp") => "image/webp",
        Some("mp4") => "video/mp4",
        Some("mp3") => "audio/mpeg",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{FileId, FileKind};

    #[test]
    fn minio_fs_json_reads_back() {
        let text = r#"{"version":"1.0.2","checksum":{"algorithm":"","blocksize":0,"hashes":null},"meta":{"etag":"5d41402abc4b2a76b9719d911017c592","content-type":"text/plain","X-Amz-Meta-Owner":"alice"}}"#;
        let m = FsJson::parse(text.as_bytes()).unwrap().unwrap();
        assert_eq!(m.etag(), Some("5d41402abc4b2a76b9719d911017c592"));
        assert_eq!(m.meta["X-Amz-Meta-Owner"], "alice");
        assert!(m.nasgate.is_none());
        let multipart = r#"{"version":"1.0.1","meta":{"etag":"abc-2"},"parts":[{"number":1,"size":5242880,"actualSize":5242880},{"number":2,"size":3,"actualSize":3}]}"#;
        let m = FsJson::parse(multipart.as_bytes()).unwrap().unwrap();
        assert_eq!(m.parts.len(), 2);
        assert!(FsJson::parse(br#"{"version":"2.0.0"}"#).is_err());
        assert!(FsJson::parse(b"").unwrap().is_none());
        assert!(FsJson::parse(b"{trunc").is_err());
    }

    #[test]
    fn written_fs_json_keeps_minio_fields() {
        let stat = Stat {
            size: 5,
            mtime_ns: 1_700_000_000_123_456_789,
            id: FileId {
                dev: 1,
                ino: 42,
                nlink: 1,
            },
            kind: FileKind::File,
        };
        let mut meta = BTreeMap::new();
        meta.insert("etag".into(), "x".into());
        let m = FsJson::new(meta, Stamp::of(&stat));
        let v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!(v["version"], "1.0.2");
        assert_eq!(v["checksum"]["hashes"], serde_json::Value::Null);
        assert_eq!(v["meta"]["etag"], "x");
        assert!(m.describes(&stat));
        let changed = Stat { size: 6, ..stat };
        assert!(!m.describes(&changed));
        assert!(!m.pending_for(&stat));

        let pending = FsJson::new(BTreeMap::new(), Stamp::of(&stat));
        assert!(!pending.describes(&stat));
        assert!(pending.matches_data(&stat));
        assert!(pending.pending_for(&stat));
        assert!(!pending.pending_for(&changed));
    }

    #[test]
    fn user_metadata_keys_take_go_canonical_form() {
        assert_eq!(canonical_header("x-amz-meta-owner"), "X-Amz-Meta-Owner");
        assert_eq!(canonical_header("X-AMZ-META-MY-KEY"), "X-Amz-Meta-My-Key");
        assert_eq!(content_type_for("a/b.TXT"), "text/plain");
        assert_eq!(content_type_for("noext"), "application/octet-stream");
    }
}
