//! Eight MD5 streams at once in AVX2: lane `j` of every vector belongs to stream `j`, so one
//! pass of the 64 steps advances eight blocks of eight different streams.

use std::arch::x86_64::*;

/// The states of eight streams, word-major: `state[w][j]` is word `w` of stream `j`.
pub(crate) type States = [[u32; 8]; 4];

/// Whether this CPU can run [`compress8`].
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Advances each of eight streams by one block: `blocks[j]` is the next block of stream `j`.
///
/// Panics unless [`available`]: running AVX2 instructions on a CPU without them is undefined.
pub(crate) fn compress8(state: &mut States, blocks: [&[u8; 64]; 8]) {
    assert!(available(), "compress8 needs AVX2");
    // SAFETY: the CPU has AVX2, checked above.
    unsafe { compress8_avx2(state, blocks) }
}

#[target_feature(enable = "avx2")]
fn compress8_avx2(state: &mut States, blocks: [&[u8; 64]; 8]) {
    // SAFETY: every pointer read below is one of the eight 64-byte blocks (two 32-byte loads
    // each) or one of the four 32-byte rows of `state`; unaligned loads and stores are used.
    unsafe {
        let mut m = [_mm256_setzero_si256(); 16];
        for half in 0..2 {
            let rows: [__m256i; 8] = std::array::from_fn(|j| {
                _mm256_loadu_si256(blocks[j].as_ptr().add(32 * half) as *const __m256i)
            });
            let cols = transpose(rows);
            m[8 * half..8 * half + 8].copy_from_slice(&cols);
        }
        let load = |w: usize| _mm256_loadu_si256(state[w].as_ptr() as *const __m256i);
        let (a0, b0, c0, d0) = (load(0), load(1), load(2), load(3));
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        md5_steps!(self::ops, a, b, c, d, m);
        for (w, (v, v0)) in [(a, a0), (b, b0), (c, c0), (d, d0)].into_iter().enumerate() {
            _mm256_storeu_si256(
                state[w].as_mut_ptr() as *mut __m256i,
                _mm256_add_epi32(v, v0),
            );
        }
    }
}

/// Turns eight rows of eight words (one row per stream) into eight columns (one per word).
#[target_feature(enable = "avx2")]
fn transpose(r: [__m256i; 8]) -> [__m256i; 8] {
    let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
    let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
    let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
    let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
    let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    let u0 = _mm256_unpacklo_epi64(t0, t2);
    let u1 = _mm256_unpackhi_epi64(t0, t2);
    let u2 = _mm256_unpacklo_epi64(t1, t3);
    let u3 = _mm256_unpackhi_epi64(t1, t3);
    let u4 = _mm256_unpacklo_epi64(t4, t6);
    let u5 = _mm256_unpackhi_epi64(t4, t6);
    let u6 = _mm256_unpacklo_epi64(t5, t7);
    let u7 = _mm256_unpackhi_epi64(t5, t7);
    [
        _mm256_permute2x128_si256::<0x20>(u0, u4),
        _mm256_permute2x128_si256::<0x20>(u1, u5),
        _mm256_permute2x128_si256::<0x20>(u2, u6),
        _mm256_permute2x128_si256::<0x20>(u3, u7),
        _mm256_permute2x128_si256::<0x31>(u0, u4),
        _mm256_permute2x128_si256::<0x31>(u1, u5),
        _mm256_permute2x128_si256::<0x31>(u2, u6),
        _mm256_permute2x128_si256::<0x31>(u3, u7),
    ]
}

/// Word operations on eight `u32` lanes.
mod ops {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn add(x: __m256i, y: __m256i) -> __m256i {
        _mm256_add_epi32(x, y)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn k(i: usize) -> __m256i {
        _mm256_set1_epi32(super::super::steps::K[i] as i32)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn rotl<const R: i32, const RR: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_slli_epi32::<R>(x), _mm256_srli_epi32::<RR>(x))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn f(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_xor_si256(z, _mm256_and_si256(x, _mm256_xor_si256(y, z)))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn g(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_xor_si256(y, _mm256_and_si256(z, _mm256_xor_si256(x, y)))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn h(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_xor_si256(_mm256_xor_si256(x, y), z)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn i(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        // c ^ (b | !d): !d is d ^ all-ones.
        _mm256_xor_si256(
            y,
            _mm256_or_si256(x, _mm256_xor_si256(z, _mm256_set1_epi32(-1))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_lanes_match_eight_single_streams() {
        if !available() {
            eprintln!("no AVX2 on this CPU: the lanes are never used here");
            return;
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        let blocks: Vec<Vec<[u8; 64]>> = (0..8)
            .map(|_| (0..5).map(|_| std::array::from_fn(|_| next())).collect())
            .collect();
        let mut lanes: States = std::array::from_fn(|w| [super::super::INIT[w]; 8]);
        // Different starting states per lane too, so a lane mix-up cannot cancel out.
        for j in 0..8 {
            lanes[j % 4][j] ^= j as u32;
        }
        let mut want = [super::super::INIT; 8];
        for (j, s) in want.iter_mut().enumerate() {
            s[j % 4] ^= j as u32;
            super::super::compress_portable(s, &blocks[j]);
        }
        let rounds = (0..5).map(|n| std::array::from_fn(|j| &blocks[j][n]));
        for blocks in rounds {
            compress8(&mut lanes, blocks);
        }
        for (j, w) in want.iter().enumerate() {
            let got: [u32; 4] = std::array::from_fn(|word| lanes[word][j]);
            assert_eq!(&got, w, "lane {j}");
        }
    }
}
