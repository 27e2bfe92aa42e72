//! MD5 for ETags, one stream at a time or many at once.
//!
//! The ETag of an S3 object must stay the MD5 of its bytes, and MD5 cannot be split within a
//! stream: one core hashes one stream at about the speed of a disk. What can be shared is the
//! core between streams: [`x8`] runs eight independent streams through the SIMD unit at once
//! (the multi-buffer technique), and [`lanes`] gathers the blocks of concurrent uploads into
//! those eight lanes. [`Md5`] is the plain incremental hasher both start from and end in.

#[macro_use]
mod steps;
#[cfg(target_arch = "x86_64")]
pub(crate) mod lanes;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x8;

/// MD5's initial state (RFC 1321, 3.3).
const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// Incremental MD5 of one stream, with its state open so it can move between hashers.
#[derive(Clone)]
pub(crate) struct Md5 {
    state: [u32; 4],
    /// The start of a block not yet complete.
    tail: [u8; 64],
    tail_len: usize,
    /// Bytes fed so far.
    len: u64,
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    /// A hasher that has seen nothing.
    pub fn new() -> Self {
        Md5 {
            state: INIT,
            tail: [0; 64],
            tail_len: 0,
            len: 0,
        }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.tail_len > 0 {
            let take = (64 - self.tail_len).min(bytes.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&bytes[..take]);
            self.tail_len += take;
            bytes = &bytes[take..];
            if self.tail_len < 64 {
                return;
            }
            compress(&mut self.state, std::slice::from_ref(&self.tail));
            self.tail_len = 0;
        }
        let (blocks, rest) = as_blocks(bytes);
        compress(&mut self.state, blocks);
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// Bytes fed so far.
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The digest of everything fed.
    pub fn finish(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = [0u8; 128];
        pad[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        pad[self.tail_len] = 0x80;
        // The length goes in the last 8 bytes of the block holding the 0x80, or of the next.
        let end = if self.tail_len < 56 { 64 } else { 128 };
        pad[end - 8..end].copy_from_slice(&bits.to_le_bytes());
        let (blocks, _) = as_blocks(&pad[..end]);
        compress(&mut self.state, blocks);
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

/// Splits bytes into whole 64-byte blocks and what is left.
fn as_blocks(bytes: &[u8]) -> (&[[u8; 64]], &[u8]) {
    let (blocks, rest) = bytes.as_chunks::<64>();
    (blocks, rest)
}

/// MD5's compression function over whole blocks, on one stream.
pub(crate) fn compress(state: &mut [u32; 4], blocks: &[[u8; 64]]) {
    if blocks.is_empty() {
        return;
    }
    #[cfg(all(target_arch = "x86_64", not(windows)))]
    md5_asm::compress(state, blocks);
    #[cfg(not(all(target_arch = "x86_64", not(windows))))]
    compress_portable(state, blocks);
}

/// The compression function in plain Rust: the reference the others are checked against.
#[cfg(any(test, not(all(target_arch = "x86_64", not(windows)))))]
pub(crate) fn compress_portable(state: &mut [u32; 4], blocks: &[[u8; 64]]) {
    for block in blocks {
        let mut m = [0u32; 16];
        for (w, b) in m.iter_mut().zip(block.chunks_exact(4)) {
            *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        let [mut a, mut b, mut c, mut d] = *state;
        md5_steps!(steps::one, a, b, c, d, m);
        state[0] = state[0].wrapping_add(a);
        state[1] = state[1].wrapping_add(b);
        state[2] = state[2].wrapping_add(c);
        state[3] = state[3].wrapping_add(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn md5_of(bytes: &[u8]) -> String {
        let mut h = Md5::new();
        h.update(bytes);
        hex(h.finish())
    }

    #[test]
    fn rfc1321_vectors() {
        // The test suite of RFC 1321, appendix A.5.
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(md5_of(input.as_bytes()), want, "md5({input:?})");
        }
    }

    #[test]
    fn the_sine_table_is_md5s() {
        // K[i] is the integer part of 2^32 * |sin(i + 1)|: recompute it rather than trust a copy.
        for (i, k) in steps::K.iter().enumerate() {
            let want = ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0).floor() as u32;
            assert_eq!(*k, want, "K[{i}]");
        }
    }

    #[test]
    fn any_split_of_the_input_gives_the_same_digest() {
        use md5::Digest as _;
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000] {
            let want: [u8; 16] = md5::Md5::digest(&data[..len]).into();
            for cut in [0, 1, 3, 63, 64, 65, len / 2, len] {
                let cut = cut.min(len);
                let mut h = Md5::new();
                h.update(&data[..cut]);
                h.update(&data[cut..len]);
                assert_eq!(h.len(), len as u64);
                assert_eq!(h.finish(), want, "len {len} cut {cut}");
            }
        }
    }

    #[test]
    fn portable_and_platform_compression_agree() {
        let blocks: Vec<[u8; 64]> = (0..37u8)
            .map(|n| {
                std::array::from_fn(|i| n.wrapping_mul(31).wrapping_add((i as u8).wrapping_mul(17)))
            })
            .collect();
        let mut a = INIT;
        let mut b = INIT;
        compress(&mut a, &blocks);
        compress_portable(&mut b, &blocks);
        assert_eq!(a, b);
    }
}
