//! Moving bytes with as few copies as the path allows, hashing on the way where needed.

use std::fs::File;
use std::io::Write;

use crate::platform;

use super::checksum::{ChecksumAlgorithm, Digests, Hashers};

/// Size of the buffer used where the kernel cannot move the data itself.
pub const CHUNK: usize = 1 << 20;

/// Hashes `len` bytes of `file` from `offset` (MD5 plus `extra` checksums).
pub fn hash_range(
    file: &File,
    offset: u64,
    len: u64,
    extra: &[ChecksumAlgorithm],
) -> std::io::Result<Digests> {
    hash_through(file, offset, len, extra, None)
}

/// Appends `len` bytes of `from` (from `offset`) to `to` while hashing them.
pub fn copy_hashed(
    from: &File,
    offset: u64,
    len: u64,
    to: &File,
    extra: &[ChecksumAlgorithm],
) -> std::io::Result<Digests> {
    hash_through(from, offset, len, extra, Some(to))
}

/// Reads `len` bytes of `from` in bounded chunks, hashing each and appending it to `to` if
/// given.
fn hash_through(
    from: &File,
    offset: u64,
    len: u64,
    extra: &[ChecksumAlgorithm],
    to: Option<&File>,
) -> std::io::Result<Digests> {
    let mut h = Hashers::new(extra);
    feed(&mut h, from, offset, len, to)?;
    Ok(h.finish())
}

fn feed(
    h: &mut Hashers,
    from: &File,
    offset: u64,
    len: u64,
    mut to: Option<&File>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK.min(len.max(1) as usize)];
    let mut done = 0u64;
    while done < len {
        let want = ((len - done) as usize).min(buf.len());
        let n = platform::read_at(from, &mut buf[..want], offset + done)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let Some(out) = to.as_mut() {
            out.write_all(&buf[..n])?;
        }
        done += n as u64;
    }
    Ok(())
}

/// Appends `len` bytes of `from` (from `offset`) to `to` in the kernel where possible
/// (`copy_file_range`; a server-side copy on NFS 4.2).
pub fn copy(from: &File, offset: u64, len: u64, to: &File) -> std::io::Result<u64> {
    platform::copy_range(from, offset, to, len)
}
