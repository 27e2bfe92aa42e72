//! MD5's 64 steps, written once for any word type: plain `u32` here, eight `u32` lanes in
//! [`super::x8`]. A word type is a module with `add`, `f`, `g`, `h`, `i`, `rotl` and `k`.

/// The additive constants, the integer part of 2^32 * |sin(i + 1)| (RFC 1321, 3.4).
pub(super) const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

/// One step: `w = x + rotl(w + fun(x, y, z) + m[g] + K[i], r)` (`rr` is `32 - r`).
macro_rules! md5_step {
    ($ops:path, $fun:ident, $w:ident, $x:ident, $y:ident, $z:ident, $m:ident, $g:literal, $i:literal, $r:literal, $rr:literal) => {{
        use $ops as o;
        let t = o::add(o::add($w, o::$fun($x, $y, $z)), o::add($m[$g], o::k($i)));
        $w = o::add($x, o::rotl::<$r, $rr>(t));
    }};
}

/// The 64 steps over one block's words `m`, updating `a`, `b`, `c`, `d` in place (the caller
/// adds the state back, as MD5 does after each block).
macro_rules! md5_steps {
    ($ops:path, $a:ident, $b:ident, $c:ident, $d:ident, $m:ident) => {{
        md5_step!($ops, f, $a, $b, $c, $d, $m, 0, 0, 7, 25);
        md5_step!($ops, f, $d, $a, $b, $c, $m, 1, 1, 12, 20);
        md5_step!($ops, f, $c, $d, $a, $b, $m, 2, 2, 17, 15);
        md5_step!($ops, f, $b, $c, $d, $a, $m, 3, 3, 22, 10);
        md5_step!($ops, f, $a, $b, $c, $d, $m, 4, 4, 7, 25);
        md5_step!($ops, f, $d, $a, $b, $c, $m, 5, 5, 12, 20);
        md5_step!($ops, f, $c, $d, $a, $b, $m, 6, 6, 17, 15);
        md5_step!($ops, f, $b, $c, $d, $a, $m, 7, 7, 22, 10);
        md5_step!($ops, f, $a, $b, $c, $d, $m, 8, 8, 7, 25);
        md5_step!($ops, f, $d, $a, $b, $c, $m, 9, 9, 12, 20);
        md5_step!($ops, f, $c, $d, $a, $b, $m, 10, 10, 17, 15);
        md5_step!($ops, f, $b, $c, $d, $a, $m, 11, 11, 22, 10);
        md5_step!($ops, f, $a, $b, $c, $d, $m, 12, 12, 7, 25);
        md5_step!($ops, f, $d, $a, $b, $c, $m, 13, 13, 12, 20);
        md5_step!($ops, f, $c, $d, $a, $b, $m, 14, 14, 17, 15);
        md5_step!($ops, f, $b, $c, $d, $a, $m, 15, 15, 22, 10);

        md5_step!($ops, g, $a, $b, $c, $d, $m, 1, 16, 5, 27);
        md5_step!($ops, g, $d, $a, $b, $c, $m, 6, 17, 9, 23);
        md5_step!($ops, g, $c, $d, $a, $b, $m, 11, 18, 14, 18);
        md5_step!($ops, g, $b, $c, $d, $a, $m, 0, 19, 20, 12);
        md5_step!($ops, g, $a, $b, $c, $d, $m, 5, 20, 5, 27);
        md5_step!($ops, g, $d, $a, $b, $c, $m, 10, 21, 9, 23);
        md5_step!($ops, g, $c, $d, $a, $b, $m, 15, 22, 14, 18);
        md5_step!($ops, g, $b, $c, $d, $a, $m, 4, 23, 20, 12);
        md5_step!($ops, g, $a, $b, $c, $d, $m, 9, 24, 5, 27);
        md5_step!($ops, g, $d, $a, $b, $c, $m, 14, 25, 9, 23);
        md5_step!($ops, g, $c, $d, $a, $b, $m, 3, 26, 14, 18);
        md5_step!($ops, g, $b, $c, $d, $a, $m, 8, 27, 20, 12);
        md5_step!($ops, g, $a, $b, $c, $d, $m, 13, 28, 5, 27);
        md5_step!($ops, g, $d, $a, $b, $c, $m, 2, 29, 9, 23);
        md5_step!($ops, g, $c, $d, $a, $b, $m, 7, 30, 14, 18);
        md5_step!($ops, g, $b, $c, $d, $a, $m, 12, 31, 20, 12);

        md5_step!($ops, h, $a, $b, $c, $d, $m, 5, 32, 4, 28);
        md5_step!($ops, h, $d, $a, $b, $c, $m, 8, 33, 11, 21);
        md5_step!($ops, h, $c, $d, $a, $b, $m, 11, 34, 16, 16);
        md5_step!($ops, h, $b, $c, $d, $a, $m, 14, 35, 23, 9);
        md5_step!($ops, h, $a, $b, $c, $d, $m, 1, 36, 4, 28);
        md5_step!($ops, h, $d, $a, $b, $c, $m, 4, 37, 11, 21);
        md5_step!($ops, h, $c, $d, $a, $b, $m, 7, 38, 16, 16);
        md5_step!($ops, h, $b, $c, $d, $a, $m, 10, 39, 23, 9);
        md5_step!($ops, h, $a, $b, $c, $d, $m, 13, 40, 4, 28);
        md5_step!($ops, h, $d, $a, $b, $c, $m, 0, 41, 11, 21);
        md5_step!($ops, h, $c, $d, $a, $b, $m, 3, 42, 16, 16);
        md5_step!($ops, h, $b, $c, $d, $a, $m, 6, 43, 23, 9);
        md5_step!($ops, h, $a, $b, $c, $d, $m, 9, 44, 4, 28);
        md5_step!($ops, h, $d, $a, $b, $c, $m, 12, 45, 11, 21);
        md5_step!($ops, h, $c, $d, $a, $b, $m, 15, 46, 16, 16);
        md5_step!($ops, h, $b, $c, $d, $a, $m, 2, 47, 23, 9);

        md5_step!($ops, i, $a, $b, $c, $d, $m, 0, 48, 6, 26);
        md5_step!($ops, i, $d, $a, $b, $c, $m, 7, 49, 10, 22);
        md5_step!($ops, i, $c, $d, $a, $b, $m, 14, 50, 15, 17);
        md5_step!($ops, i, $b, $c, $d, $a, $m, 5, 51, 21, 11);
        md5_step!($ops, i, $a, $b, $c, $d, $m, 12, 52, 6, 26);
        md5_step!($ops, i, $d, $a, $b, $c, $m, 3, 53, 10, 22);
        md5_step!($ops, i, $c, $d, $a, $b, $m, 10, 54, 15, 17);
        md5_step!($ops, i, $b, $c, $d, $a, $m, 1, 55, 21, 11);
        md5_step!($ops, i, $a, $b, $c, $d, $m, 8, 56, 6, 26);
        md5_step!($ops, i, $d, $a, $b, $c, $m, 15, 57, 10, 22);
        md5_step!($ops, i, $c, $d, $a, $b, $m, 6, 58, 15, 17);
        md5_step!($ops, i, $b, $c, $d, $a, $m, 13, 59, 21, 11);
        md5_step!($ops, i, $a, $b, $c, $d, $m, 4, 60, 6, 26);
        md5_step!($ops, i, $d, $a, $b, $c, $m, 11, 61, 10, 22);
        md5_step!($ops, i, $c, $d, $a, $b, $m, 2, 62, 15, 17);
        md5_step!($ops, i, $b, $c, $d, $a, $m, 9, 63, 21, 11);
    }};
}

/// Word operations on one `u32`.
#[cfg(any(test, not(all(target_arch = "x86_64", not(windows)))))]
pub(super) mod one {
    #[inline(always)]
    pub(crate) fn add(x: u32, y: u32) -> u32 {
        x.wrapping_add(y)
    }
    #[inline(always)]
    pub(crate) fn k(i: usize) -> u32 {
        super::K[i]
    }
    #[inline(always)]
    pub(crate) fn rotl<const R: u32, const RR: u32>(x: u32) -> u32 {
        x.rotate_left(R)
    }
    #[inline(always)]
    pub(crate) fn f(x: u32, y: u32, z: u32) -> u32 {
        z ^ (x & (y ^ z))
    }
    #[inline(always)]
    pub(crate) fn g(x: u32, y: u32, z: u32) -> u32 {
        y ^ (z & (x ^ y))
    }
    #[inline(always)]
    pub(crate) fn h(x: u32, y: u32, z: u32) -> u32 {
        x ^ y ^ z
    }
    #[inline(always)]
    pub(crate) fn i(x: u32, y: u32, z: u32) -> u32 {
        y ^ (x | !z)
    }
}
