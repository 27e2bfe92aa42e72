//! Object contents: a deterministic byte stream per (key, size), random-access.
//!
//! Byte `p` of an object is byte `p % 8` (little endian) of `splitmix64(seed + (p / 8) * φ)`,
//! with the seed a hash of the key and the size. Being counter-based, the stream can be
//! produced or checked from any offset (multipart parts, arbitrary frame boundaries) without
//! keeping state beyond the offset, at several GB/s.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Chunk size of generated request bodies.
pub const CHUNK: usize = 1 << 20;

/// Seed of the object `key` of `size` bytes (FNV-1a of the key, mixed with the size).
pub fn seed(key: &str, size: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h ^ size.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 8-byte word at word index `i`.
#[inline(always)]
fn word(seed: u64, i: u64) -> u64 {
    mix(seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

#[inline(always)]
fn byte_at(seed: u64, p: u64) -> u8 {
    word(seed, p / 8).to_le_bytes()[(p % 8) as usize]
}

/// Writes the stream's bytes `offset..offset + buf.len()` into `buf`.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut p = offset;
    let mut rest = &mut buf[..];
    while !p.is_multiple_of(8) && !rest.is_empty() {
        rest[0] = byte_at(seed, p);
        rest = &mut rest[1..];
        p += 1;
    }
    let mut idx = p / 8;
    let mut words = rest.chunks_exact_mut(8);
    for w in &mut words {
        w.copy_from_slice(&word(seed, idx).to_le_bytes());
        idx += 1;
    }
    for (j, b) in words.into_remainder().iter_mut().enumerate() {
        *b = byte_at(seed, idx * 8 + j as u64);
    }
}

/// Whether `data` equals the stream's bytes from `offset`.
pub fn matches(seed: u64, offset: u64, data: &[u8]) -> bool {
    let mut p = offset;
    let mut rest = data;
    while !p.is_multiple_of(8) && !rest.is_empty() {
        if rest[0] != byte_at(seed, p) {
            return false;
        }
        rest = &rest[1..];
        p += 1;
    }
    let mut idx = p / 8;
    let mut words = rest.chunks_exact(8);
    // Compare in blocks, branching once per block.
    let mut diff = 0u64;
    for (n, w) in (&mut words).enumerate() {
        diff |= u64::from_le_bytes(w.try_into().unwrap()) ^ word(seed, idx);
        idx += 1;
        if n % 512 == 511 && diff != 0 {
            return false;
        }
    }
    if diff != 0 {
        return false;
    }
    words
        .remainder()
        .iter()
        .enumerate()
        .all(|(j, &b)| b == byte_at(seed, idx * 8 + j as u64))
}

/// Streaming check of a response body against the expected object.
pub struct Verifier {
    seed: u64,
    offset: u64,
    expected: u64,
    bad: bool,
}

impl Verifier {
    pub fn new(seed: u64, start: u64, len: u64) -> Self {
        Verifier {
            seed,
            offset: start,
            expected: start + len,
            bad: false,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        if self.bad {
            return;
        }
        if self.offset + data.len() as u64 > self.expected || !matches(self.seed, self.offset, data)
        {
            self.bad = true;
        }
        self.offset += data.len() as u64;
    }

    /// `Err` with what went wrong unless exactly the expected bytes arrived.
    pub fn finish(&self) -> Result<(), String> {
        if self.bad {
            Err(format!(
                "body mismatch (content differs or too long, {} bytes seen)",
                self.offset
            ))
        } else if self.offset != self.expected {
            Err(format!(
                "short body: {} of {} bytes",
                self.offset, self.expected
            ))
        } else {
            Ok(())
        }
    }
}

/// A request body: nothing, some bytes, or a slice of an object's stream made 1 MiB at a time.
pub enum ReqBody {
    Empty,
    Bytes(Option<Bytes>),
    Gen { seed: u64, pos: u64, end: u64 },
}

impl ReqBody {
    /// The object's bytes `start..end`, generated while sending.
    pub fn gen(seed: u64, start: u64, end: u64) -> Self {
        ReqBody::Gen {
            seed,
            pos: start,
            end,
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            ReqBody::Empty => 0,
            ReqBody::Bytes(b) => b.as_ref().map_or(0, |b| b.len() as u64),
            ReqBody::Gen { pos, end, .. } => end - pos,
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Bytes(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Gen { seed, pos, end } => {
                if *pos >= *end {
                    return Poll::Ready(None);
                }
                let n = (*end - *pos).min(CHUNK as u64) as usize;
                let mut buf = vec![0u8; n];
                fill(*seed, *pos, &mut buf);
                *pos += n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_match_at_any_offset() {
        let s = seed("bucket/key", 1000);
        let mut whole = vec![0u8; 1000];
        fill(s, 0, &mut whole);
        for (start, len) in [(0, 1000), (3, 17), (8, 64), (13, 987), (999, 1), (500, 0)] {
            let mut part = vec![0u8; len];
            fill(s, start as u64, &mut part);
            assert_eq!(part, whole[start..start + len]);
            assert!(matches(s, start as u64, &whole[start..start + len]));
        }
        let mut bad = whole.clone();
        bad[700] ^= 1;
        assert!(!matches(s, 0, &bad));
        assert!(!matches(s, 1, &whole[..999]));
        assert_ne!(seed("bucket/key", 1000), seed("bucket/key", 1001));
    }

    #[test]
    fn verifier_catches_short_long_and_wrong() {
        let s = seed("k", 100);
        let mut data = vec![0u8; 100];
        fill(s, 0, &mut data);
        let mut v = Verifier::new(s, 0, 100);
        v.update(&data[..33]);
        v.update(&data[33..]);
        assert!(v.finish().is_ok());
        let mut v = Verifier::new(s, 0, 100);
        v.update(&data[..99]);
        assert!(v.finish().unwrap_err().contains("short"));
        let mut v = Verifier::new(s, 0, 99);
        v.update(&data);
        assert!(v.finish().is_err());
        let mut v = Verifier::new(seed("other", 100), 0, 100);
        v.update(&data);
        assert!(v.finish().is_err());
    }
}
