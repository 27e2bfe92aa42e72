//! Where things live on the share (MinIO gateway-nas / FS-mode layout) and which names are
//! valid. Nothing here touches the share; it only computes and checks paths.
//!
//! - `<bucket>/<key>`: object data; a key's `/` are directories.
//! - `.minio.sys/format.json`: marks an FS-mode share.
//! - `.minio.sys/buckets/<bucket>/<key>/fs.json`: the object's metadata and lock file.
//! - `.minio.sys/buckets/<bucket>/<dir>/.minio.sys/fs.json`: a directory object's metadata.
//! - `.minio.sys/multipart/<sha256(bucket/key)>/<upload-id>/`: an upload's fs.json and parts.
//! - `.minio.sys/tmp/<instance-id>/`: staging files of one running instance.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The internal tree at the top of the share; never a bucket, never listed.
pub const SYS: &str = ".minio.sys";
/// Longest key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest single path component most filesystems (and NFS) accept.
pub const MAX_NAME_LEN: usize = 255;

/// Why a bucket name or key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not a valid S3 bucket name.
    #[error("invalid bucket name {0:?}: {1}")]
    Bucket(String, &'static str),
    /// Longer than 1024 bytes.
    #[error("key is longer than 1024 bytes")]
    KeyTooLong,
    /// A path component is longer than 255 bytes.
    #[error("invalid key {0:?}: a path component is longer than 255 bytes")]
    NameTooLong(String),
    /// Cannot be stored as a path on the share.
    #[error("invalid key {0:?}: {1}")]
    Key(String, KeyReason),
}

/// Why a key cannot be stored as a path on the share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyReason {
    /// The key is empty.
    #[error("empty key")]
    Empty,
    /// The key contains a NUL byte.
    #[error("contains NUL")]
    Nul,
    /// The key contains a backslash (a path separator on Windows).
    #[error("contains '\\'")]
    Backslash,
    /// Two slashes in a row, or a key that is only `/`.
    #[error("empty path component")]
    EmptyComponent,
    /// A `.` or `..` component.
    #[error("'.' and '..' are not allowed as path components")]
    DotComponent,
    /// A component nasgate keeps for itself or the NAS (`.nfs*`, `.minio.sys`).
    #[error("names starting with '.nfs' and '.minio.sys' are reserved")]
    Reserved,
}

/// Checks a bucket name against S3's rules for new buckets.
pub fn check_bucket(name: &str) -> Result<(), NameError> {
    let bad = |why| Err(NameError::Bucket(name.to_string(), why));
    if name.len() < 3 || name.len() > 63 {
        return bad("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !(first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric()) {
        return bad("must begin and end with a letter or digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("must not contain '..', '.-' or '-.'");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be formatted as an IP address");
    }
    Ok(())
}

/// Whether a name inside a bucket's tree is one nasgate never shows: NFS silly-rename files
/// (`.nfsXXXX`) and the internal tree.
pub fn is_hidden(name: &str) -> bool {
    name.starts_with(".nfs") || name == SYS
}

/// Checks an object key: at most 1024 bytes, no NUL, and mappable to a path beneath the bucket
/// (no empty, `.` or `..` components, except one trailing `/` for a directory object).
pub fn check_key(key: &str) -> Result<(), NameError> {
    let bad = |why| Err(NameError::Key(key.to_string(), why));
    if key.len() > MAX_KEY_LEN {
        return Err(NameError::KeyTooLong);
    }
    if key.is_empty() {
        return bad(KeyReason::Empty);
    }
    if key.contains('\0') {
        return bad(KeyReason::Nul);
    }
    if key.contains('\\') && cfg!(windows) {
        return bad(KeyReason::Backslash);
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    if body.is_empty() {
        return bad(KeyReason::EmptyComponent);
    }
    for part in body.split('/') {
        match part {
            "" => return bad(KeyReason::EmptyComponent),
            "." | ".." => return bad(KeyReason::DotComponent),
            p if p.len() > MAX_NAME_LEN => return Err(NameError::NameTooLong(key.to_string())),
            p if is_hidden(p) => return bad(KeyReason::Reserved),
            _ => {}
        }
    }
    Ok(())
}

/// Whether the key names a directory object (`dir/`).
pub fn is_dir_key(key: &str) -> bool {
    key.ends_with('/')
}

/// Relative path of the object's data (a file, or for `dir/` keys a directory).
pub fn data(bucket: &str, key: &str) -> PathBuf {
    Path::new(bucket).join(key.trim_end_matches('/'))
}

/// Relative path of a bucket's metadata directory.
pub fn bucket_meta(bucket: &str) -> PathBuf {
    Path::new(SYS).join("buckets").join(bucket)
}

/// Relative path of the object's metadata directory.
pub fn meta_dir(bucket: &str, key: &str) -> PathBuf {
    bucket_meta(bucket).join(key.trim_end_matches('/'))
}

/// Relative path of the object's fs.json: its metadata and its lock file.
pub fn meta(bucket: &str, key: &str) -> PathBuf {
    meta_dir(bucket, key).join("fs.json")
}

/// Relative path of a directory object's metadata (`dir/`): beside the metadata of the keys
/// below it, under a name no key component can have (`.minio.sys` is refused in keys), so it
/// never collides with the record of a key such as `dir/fs.json`. MinIO's FS mode kept no
/// metadata for directory objects and ignores this file. The record names the directory's
/// inode: a directory replaced by a POSIX tool does not inherit it, unless the filesystem hands
/// the freed inode number straight back to a directory made again at the same path.
pub fn dir_meta(bucket: &str, key: &str) -> PathBuf {
    meta_dir(bucket, key).join(SYS).join("fs.json")
}

/// Relative path of format.json.
pub fn format() -> PathBuf {
    Path::new(SYS).join("format.json")
}

/// Relative path of the staging directory of all instances.
pub fn tmp_root() -> PathBuf {
    Path::new(SYS).join("tmp")
}

/// Relative path of one instance's staging directory.
pub fn tmp(instance: &str) -> PathBuf {
    tmp_root().join(instance)
}

/// Relative path of the multipart tree.
pub fn multipart_root() -> PathBuf {
    Path::new(SYS).join("multipart")
}

/// Relative path of the directory holding all uploads of one object.
pub fn uploads(bucket: &str, key: &str) -> PathBuf {
    let digest = Sha256::digest(format!("{bucket}/{key}").as_bytes());
    multipart_root().join(hex::encode(digest))
}

/// Relative path of one upload's directory.
pub fn upload(bucket: &str, key: &str, upload_id: &str) -> PathBuf {
    uploads(bucket, key).join(upload_id)
}

/// File name of a stored part: `<5-digit number>.<etag>.<size>`.
pub fn part_name(number: u32, etag: &str, size: u64) -> String {
    format!("{number:05}.{etag}.{size}")
}

/// Parses a stored part's file name.
pub fn parse_part_name(name: &str) -> Option<(u32, String, u64)> {
    let mut it = name.splitn(3, '.');
    let number = it.next()?;
    let etag = it.next()?;
    let size = it.next()?;
    if number.len() != 5 || etag.is_empty() || !etag.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((number.parse().ok()?, etag.to_string(), size.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket", "a.b.c", "123", &"a".repeat(63)] {
            assert!(check_bucket(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "a_b",
            ".minio.sys",
            "192.168.1.1",
            &"a".repeat(64),
        ] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_must_map_beneath_the_bucket() {
        for ok in ["a", "a/b/c", "dir/", "a-b", "é/ü", "a b"] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/",
            "/a",
            "a//b",
            "a/./b",
            "../x",
            "a/..",
            "a\0b",
            "x/.nfs123",
            ".minio.sys/x",
            "a//",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_key(&"a".repeat(1025)), Err(NameError::KeyTooLong));
        assert!(check_key(&"a".repeat(256)).is_err());
    }

    #[test]
    fn paths_follow_the_minio_layout() {
        assert_eq!(data("b", "x/y"), Path::new("b/x/y"));
        assert_eq!(data("b", "dir/"), Path::new("b/dir"));
        assert_eq!(
            meta("b", "x/y"),
            Path::new(".minio.sys/buckets/b/x/y/fs.json")
        );
        assert_eq!(
            dir_meta("b", "x/d/"),
            Path::new(".minio.sys/buckets/b/x/d/.minio.sys/fs.json")
        );
        assert_eq!(
            uploads("b", "k"),
            Path::new(".minio.sys/multipart").join(hex::encode(Sha256::digest(b"b/k")))
        );
        assert_eq!(part_name(3, "abc", 10), "00003.abc.10");
        assert_eq!(parse_part_name("00003.abc.10"), Some((3, "abc".into(), 10)));
        assert_eq!(parse_part_name("fs.json"), None);
    }
}
