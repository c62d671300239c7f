//! Kernels over quantized codes: the int8 dot product and the popcounts of binary codes, with the
//! choice among their implementations for the process.
//!
//! - [`dot_u8_i8`]: `Σ a[i]·b[i]` of a `u8` code and an `i8` code (a scalar-quantized vector
//!   against a symmetric int8 one).
//! - [`plane_popcounts`]: the popcounts of a binary code against each of four bit planes, the inner
//!   loop of a RaBitQ-style asymmetric estimator (the query quantized to 4 bits, one plane per bit).
//!
//! # Exact results: every kernel gives the same integer
//!
//! The results are integers, computed exactly, so every implementation on every CPU returns the
//! very same value, whatever order it adds in: no summation-order contract is needed (unlike the
//! float kernels of [`super`]). The tests check equality with the scalar kernels, never a
//! tolerance. Past the documented bounds the sums wrap (two's complement, modulo 2³²) in every
//! kernel alike, so even then all agree; nothing panics.
//!
//! # The choice
//!
//! - x86-64: AVX-512 with VNNI and VPOPCNTDQ when the CPU has them (`avx512vnni+vpopcntdq`:
//!   `VPDPBUSD` multiplies and adds 64 byte pairs in one instruction, `VPOPCNTQ` counts eight words),
//!   else AVX2 + POPCNT when it has both (`avx2+popcnt`), else POPCNT alone (`popcnt`: the
//!   popcounts only; the dot product is the scalar one), otherwise the scalar kernels.
//! - aarch64: NEON, which every aarch64 target with the `neon` feature (all but the soft-float
//!   ones) has.
//! - elsewhere, and under Miri: the scalar kernels.
//!
//! As in [`super::simd`], the choice is made once, at the first call of the process, and kept (a
//! table of function pointers in a `OnceLock`), and `HNSWDB_SCALAR_KERNELS` set to anything but
//! empty or `0` makes the process use the scalar kernels instead (here the answers are equal
//! integers, only slower).
//!
//! The NEON kernels were built and linted for aarch64 but not run on aarch64 hardware.
//!
//! `plane_popcounts` has no AVX2 kernel: a nibble-lookup one (`vpshufb` + `vpsadbw`, after Muła)
//! measured slower than the `popcnt` loop at every size the estimator uses (2–32 words), on
//! an AMD EPYC with four POPCNTs a cycle.
//!
//! Codes are read straight from database pages, so the kernels use unaligned loads only. The
//! lengths are equal (Invariant, debug-asserted by the entry points [`dot_u8_i8`] and
//! [`plane_popcounts`]); memory safety never rests on it: every kernel reads only the elements
//! both slices hold (the `min` of the lengths), and the tests run the kernels directly on unequal
//! lengths to check it. All of this module's `unsafe` is here; each block says why its target
//! feature is present and why its loads are in bounds.

use std::sync::OnceLock;

use super::simd::scalar_requested;

/// One implementation of the kernels.
struct Kernels {
    /// `avx512vnni+vpopcntdq`, `avx2+popcnt`, `popcnt`, `neon` or `scalar`.
    #[cfg_attr(not(any(test, feature = "test-hooks")), allow(dead_code))]
    name: &'static str,
    /// Safety of both: the CPU has the target features of `name`.
    dot_u8_i8: unsafe fn(&[u8], &[i8]) -> i32,
    plane_popcounts: unsafe fn(&[u64], &[u64]) -> [u32; 4],
}

static SCALAR: Kernels = Kernels {
    name: "scalar",
    dot_u8_i8: scalar::dot_u8_i8,
    plane_popcounts: scalar::plane_popcounts,
};

/// The kernels of this process, chosen at the first call. Invariant: the CPU has the target
/// features of the kernels returned.
#[inline]
fn active() -> &'static Kernels {
    static ACTIVE: OnceLock<&'static Kernels> = OnceLock::new();
    ACTIVE.get_or_init(|| {
        if scalar_requested() {
            &SCALAR
        } else {
            fastest()
        }
    })
}

/// The fastest kernels the running CPU has. Under Miri the scalar ones, which Miri runs quickly
/// (the tests call the others directly).
fn fastest() -> &'static Kernels {
    if cfg!(miri) {
        &SCALAR
    } else {
        runnable()[0]
    }
}

/// `Σ a[i] as i32 * b[i] as i32` over the first `min(a.len(), b.len())` elements, exactly: the
/// caller keeps every `b[i]` in `-127..=127` (symmetric int8 codes) and `n ≤ 65,536`, so the sum
/// is at most `65,536 · 255 · 127 < 2³¹` in magnitude and fits `i32`. (Past these bounds it wraps,
/// alike in every kernel.) Invariant: `a.len() == b.len()`.
#[inline]
pub(crate) fn dot_u8_i8(a: &[u8], b: &[i8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    // SAFETY: `active` returns only kernels whose target features the running CPU has.
    unsafe { (active().dot_u8_i8)(a, b) }
}

/// For a binary code `code` (`w = code.len()` words) and four bit planes `planes` (`4·w` words:
/// plane `j` is `planes[j*w..(j+1)*w]`), returns `[popcount(code & plane_j) for j in 0..4]`. This
/// is the inner loop of a RaBitQ-style asymmetric estimator (query quantized to 4 bits, one bit
/// plane per bit). Words beyond what both hold are ignored: the kernels take
/// `w = min(code.len(), planes.len() / 4)`, the first `w` words of `code` and four planes of `w`
/// words. Invariant: `planes.len() == 4 * code.len()`.
#[inline]
pub(crate) fn plane_popcounts(code: &[u64], planes: &[u64]) -> [u32; 4] {
    debug_assert_eq!(planes.len(), 4 * code.len());
    // SAFETY: `active` returns only kernels whose target features the running CPU has.
    unsafe { (active().plane_popcounts)(code, planes) }
}

/// The name of the kernels the functions above run in this process.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn codes_kernel_name() -> &'static str {
    active().name
}

/// Every implementation of the kernels this CPU can run, fastest first, the scalar one last: the
/// one order the choice ([`fastest`]), the tests and the benchmark go by.
fn runnable() -> Vec<&'static Kernels> {
    #[allow(unused_mut)]
    let mut all = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if x86::has_avx512() {
            all.push(&x86::AVX512);
        }
        if x86::has_avx2_popcnt() {
            all.push(&x86::AVX2_POPCNT);
        }
        if x86::has_popcnt() {
            all.push(&x86::POPCNT);
        }
    }
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    all.push(&neon::NEON);
    all.push(&SCALAR);
    all
}

/// Entry points for `benches/codes.rs` and the tests, re-exported by `lib.rs` as
/// `hnswdb::__codes_bench`. Not part of the API: no stability promise.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod bench {
    /// The dispatched `u8 · i8` dot product (what the index uses).
    #[inline]
    pub fn dot_u8_i8(a: &[u8], b: &[i8]) -> i32 {
        super::dot_u8_i8(a, b)
    }

    /// The dispatched popcounts of a code against four bit planes (what the index uses).
    #[inline]
    pub fn plane_popcounts(code: &[u64], planes: &[u64]) -> [u32; 4] {
        super::plane_popcounts(code, planes)
    }

    /// One implementation of the kernels, callable because this CPU can run it.
    #[derive(Clone, Copy)]
    pub struct Kernel(&'static super::Kernels);

    impl Kernel {
        /// `avx512vnni+vpopcntdq`, `avx2+popcnt`, `popcnt`, `neon` or `scalar`.
        pub fn name(self) -> &'static str {
            self.0.name
        }

        /// This implementation's `u8 · i8` dot product.
        #[inline]
        pub fn dot_u8_i8(self, a: &[u8], b: &[i8]) -> i32 {
            // SAFETY: `kernels` returns only kernels whose target features the CPU has.
            unsafe { (self.0.dot_u8_i8)(a, b) }
        }

        /// This implementation's popcounts of a code against four bit planes.
        #[inline]
        pub fn plane_popcounts(self, code: &[u64], planes: &[u64]) -> [u32; 4] {
            // SAFETY: `kernels` returns only kernels whose target features the CPU has.
            unsafe { (self.0.plane_popcounts)(code, planes) }
        }
    }

    /// Every implementation this CPU can run, fastest first, the scalar one last.
    pub fn kernels() -> Vec<Kernel> {
        super::runnable().into_iter().map(Kernel).collect()
    }

    /// The name of the kernels the dispatched functions run: `avx512vnni+vpopcntdq`,
    /// `avx2+popcnt`, `popcnt`, `neon` or `scalar`.
    pub fn kernel_name() -> &'static str {
        super::codes_kernel_name()
    }
}

/// Plain-Rust kernels: the fallback on every CPU, the tails of the SIMD kernels, and the oracle
/// the others are tested against. Sums wrap (modulo 2³²) as the SIMD registers do. `#[inline
/// (always)]` so that the `popcnt` kernels, which are these compiled with the target feature, get
/// the `popcnt` instruction for `count_ones`.
mod scalar {
    /// `Σ a[i]·b[i]` over `min(a.len(), b.len())` elements, wrapping.
    #[inline(always)]
    pub(super) fn dot_u8_i8(a: &[u8], b: &[i8]) -> i32 {
        a.iter().zip(b).fold(0i32, |s, (&x, &y)| {
            s.wrapping_add(i32::from(x) * i32::from(y))
        })
    }

    /// `Σ popcount(a[i] & b[i])` over `min(a.len(), b.len())` words, wrapping: the tails of the
    /// NEON popcounts.
    #[cfg_attr(
        not(all(target_arch = "aarch64", target_feature = "neon")),
        allow(dead_code)
    )]
    #[inline(always)]
    pub(super) fn and_popcount(a: &[u64], b: &[u64]) -> u32 {
        a.iter()
            .zip(b)
            .fold(0u32, |s, (&x, &y)| s.wrapping_add((x & y).count_ones()))
    }

    /// The popcounts of `code & plane_j` with `w = min(code.len(), planes.len() / 4)`, in one
    /// pass over the code (four independent sums), wrapping.
    #[inline(always)]
    pub(super) fn plane_popcounts(code: &[u64], planes: &[u64]) -> [u32; 4] {
        let w = code.len().min(planes.len() / 4);
        let (p0, rest) = planes.split_at(w);
        let (p1, rest) = rest.split_at(w);
        let (p2, p3) = rest.split_at(w);
        let mut s = [0u32; 4];
        for ((((&c, &x0), &x1), &x2), &x3) in code.iter().zip(p0).zip(p1).zip(p2).zip(p3) {
            s[0] = s[0].wrapping_add((c & x0).count_ones());
            s[1] = s[1].wrapping_add((c & x1).count_ones());
            s[2] = s[2].wrapping_add((c & x2).count_ones());
            s[3] = s[3].wrapping_add((c & x3).count_ones());
        }
        s
    }
}

// Under Miri only the tests call the SIMD kernels (`fastest` picks the scalar ones).
#[cfg(target_arch = "x86_64")]
#[cfg_attr(miri, allow(dead_code))]
mod x86 {
    use std::arch::x86_64::*;

    use super::{scalar, Kernels};

    pub(super) static AVX2_POPCNT: Kernels = Kernels {
        name: "avx2+popcnt",
        dot_u8_i8: dot_u8_i8_avx2,
        plane_popcounts: plane_popcounts_popcnt,
    };

    pub(super) static POPCNT: Kernels = Kernels {
        name: "popcnt",
        dot_u8_i8: scalar::dot_u8_i8,
        plane_popcounts: plane_popcounts_popcnt,
    };

    pub(super) static AVX512: Kernels = Kernels {
        name: "avx512vnni+vpopcntdq",
        dot_u8_i8: dot_u8_i8_vnni,
        plane_popcounts: plane_popcounts_vpopcntdq,
    };

    /// Whether the running CPU has the AVX-512 subsets of [`AVX512`]: F, BW (byte masks), VNNI
    /// and VPOPCNTDQ (std caches the CPUID result).
    pub(super) fn has_avx512() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("avx512vpopcntdq")
    }

    /// Whether the running CPU has AVX2 and POPCNT (std caches the CPUID result).
    pub(super) fn has_avx2_popcnt() -> bool {
        is_x86_feature_detected!("avx2") && has_popcnt()
    }

    /// Whether the running CPU has POPCNT.
    pub(super) fn has_popcnt() -> bool {
        is_x86_feature_detected!("popcnt")
    }

    /// Elements of one step of [`dot_u8_i8_avx2`]: four registers of 16 products.
    const STEP: usize = 64;

    /// `acc + madd(x, y)`: the 16 bytes of `x` (unsigned) and of `y` (signed) widened to `i16`,
    /// multiplied, and adjacent products added into 8 `i32` lanes. Exact: a pair of products is
    /// at most `2 · 255 · 128` in magnitude, far inside `i16 · i16 → i32` (`vpmaddubsw` would
    /// instead saturate the pair at `i16`).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn madd(x: __m128i, y: __m128i, acc: __m256i) -> __m256i {
        let p = _mm256_madd_epi16(_mm256_cvtepu8_epi16(x), _mm256_cvtepi8_epi16(y));
        _mm256_add_epi32(acc, p)
    }

    /// `Σ a[i]·b[i]` over `min(a.len(), b.len())` elements, wrapping as the scalar kernel does.
    ///
    /// # Safety
    /// The CPU has AVX2 and POPCNT.
    #[target_feature(enable = "avx2,popcnt")]
    unsafe fn dot_u8_i8_avx2(a: &[u8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s = [_mm256_setzero_si256(); STEP / 16];
        let mut i = 0;
        while i + STEP <= n {
            for (r, acc) in s.iter_mut().enumerate() {
                let at = i + 16 * r;
                // SAFETY: the caller guarantees AVX2. 16 bytes from `at`, ending at or before
                // `i + STEP <= n`, the length of both slices; `loadu` accepts any alignment.
                let (x, y) = unsafe {
                    (
                        _mm_loadu_si128(pa.add(at).cast()),
                        _mm_loadu_si128(pb.add(at).cast()),
                    )
                };
                *acc = madd(x, y, *acc);
            }
            i += STEP;
        }
        while i + 16 <= n {
            // SAFETY: the caller guarantees AVX2. 16 bytes from `i`, ending at or before `n`;
            // `loadu` accepts any alignment.
            let (x, y) = unsafe {
                (
                    _mm_loadu_si128(pa.add(i).cast()),
                    _mm_loadu_si128(pb.add(i).cast()),
                )
            };
            s[0] = madd(x, y, s[0]);
            i += 16;
        }
        let v = _mm256_add_epi32(_mm256_add_epi32(s[0], s[1]), _mm256_add_epi32(s[2], s[3]));
        let v = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b01_00_11_10>(v));
        let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b10_11_00_01>(v));
        _mm_cvtsi128_si32(v).wrapping_add(scalar::dot_u8_i8(&a[i..], &b[i..]))
    }

    /// `Σ a[i]·b[i]` over `min(a.len(), b.len())` elements, wrapping as the scalar kernel does:
    /// `VPDPBUSD` multiplies 64 unsigned bytes of `a` by the signed bytes of `b` and adds each
    /// group of four products into one of 16 `i32` lanes, without saturation (a group is at most
    /// `4 · 255 · 128` in magnitude). The last partial block goes through byte-masked loads.
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW and VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn dot_u8_i8_vnni(a: &[u8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        let mut i = 0;
        while i + 128 <= n {
            // SAFETY: the caller guarantees AVX-512 F. 64 bytes from `i` and from `i + 64`, ending
            // at or before `i + 128 <= n`, the length of both slices; `loadu` takes any alignment.
            let (x0, y0, x1, y1) = unsafe {
                (
                    _mm512_loadu_si512(pa.add(i).cast()),
                    _mm512_loadu_si512(pb.add(i).cast()),
                    _mm512_loadu_si512(pa.add(i + 64).cast()),
                    _mm512_loadu_si512(pb.add(i + 64).cast()),
                )
            };
            s0 = _mm512_dpbusd_epi32(s0, x0, y0);
            s1 = _mm512_dpbusd_epi32(s1, x1, y1);
            i += 128;
        }
        while i < n {
            let left = n - i;
            let mask: __mmask64 = if left >= 64 { !0 } else { (1 << left) - 1 };
            // SAFETY: the caller guarantees AVX-512 F and BW. The mask selects the bytes `i..i +
            // min(64, n - i)`, all inside both slices; a masked load reads no byte the mask
            // leaves out (and takes any alignment).
            let (x, y) = unsafe {
                (
                    _mm512_maskz_loadu_epi8(mask, pa.add(i).cast()),
                    _mm512_maskz_loadu_epi8(mask, pb.add(i).cast()),
                )
            };
            s0 = _mm512_dpbusd_epi32(s0, x, y);
            i += 64;
        }
        _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1))
    }

    /// The popcounts of `code & plane_j` eight words at a time (`VPOPCNTQ`), four sums of
    /// 64-bit lanes truncated to `u32` at the end: the scalar kernel's wrapping sums. The last
    /// partial block goes through word-masked loads.
    ///
    /// # Safety
    /// The CPU has AVX-512 F and VPOPCNTDQ.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    unsafe fn plane_popcounts_vpopcntdq(code: &[u64], planes: &[u64]) -> [u32; 4] {
        let w = code.len().min(planes.len() / 4);
        let (pc, pp) = (code.as_ptr(), planes.as_ptr());
        let mut acc = [_mm512_setzero_si512(); 4];
        let mut i = 0;
        while i < w {
            let left = w - i;
            let mask: __mmask8 = if left >= 8 { !0 } else { (1 << left) - 1 };
            // SAFETY: the caller guarantees AVX-512 F. The mask selects the words `i..i +
            // min(8, w - i)`: inside `code` (`w <= code.len()`) and, from `j·w`, inside plane `j`
            // of `planes` (`4·w <= planes.len()`); a masked load reads no word the mask leaves
            // out (and takes any alignment).
            let c = unsafe { _mm512_maskz_loadu_epi64(mask, pc.add(i).cast()) };
            for (j, sum) in acc.iter_mut().enumerate() {
                // SAFETY: as above, for plane `j`.
                let p = unsafe { _mm512_maskz_loadu_epi64(mask, pp.add(j * w + i).cast()) };
                let ones = _mm512_popcnt_epi64(_mm512_and_si512(c, p));
                *sum = _mm512_add_epi64(*sum, ones);
            }
            i += 8;
        }
        acc.map(|sum| _mm512_reduce_add_epi64(sum) as u32)
    }

    /// The scalar `plane_popcounts` compiled with POPCNT, so `count_ones` is one instruction.
    ///
    /// # Safety
    /// The CPU has POPCNT.
    #[target_feature(enable = "popcnt")]
    unsafe fn plane_popcounts_popcnt(code: &[u64], planes: &[u64]) -> [u32; 4] {
        scalar::plane_popcounts(code, planes)
    }
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[cfg_attr(miri, allow(dead_code))]
mod neon {
    use std::arch::aarch64::*;

    use super::{scalar, Kernels};

    pub(super) static NEON: Kernels = Kernels {
        name: "neon",
        dot_u8_i8,
        plane_popcounts,
    };

    /// `acc + x·y` in four `i32` registers: the 16 bytes of `x` (unsigned) and `y` (signed)
    /// widened to `i16` (a `u8` fits), multiplied and accumulated lane by lane (`vmlal`).
    #[target_feature(enable = "neon")]
    #[inline]
    fn mla(x: uint8x16_t, y: int8x16_t, acc: &mut [int32x4_t; 4]) {
        let (xl, xh) = (
            vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(x))),
            vreinterpretq_s16_u16(vmovl_high_u8(x)),
        );
        let (yl, yh) = (vmovl_s8(vget_low_s8(y)), vmovl_high_s8(y));
        acc[0] = vmlal_s16(acc[0], vget_low_s16(xl), vget_low_s16(yl));
        acc[1] = vmlal_high_s16(acc[1], xl, yl);
        acc[2] = vmlal_s16(acc[2], vget_low_s16(xh), vget_low_s16(yh));
        acc[3] = vmlal_high_s16(acc[3], xh, yh);
    }

    /// `Σ a[i]·b[i]` over `min(a.len(), b.len())` elements, wrapping as the scalar kernel does.
    ///
    /// # Safety
    /// The CPU has NEON, as every target of this module's cfg does.
    #[target_feature(enable = "neon")]
    unsafe fn dot_u8_i8(a: &[u8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [vdupq_n_s32(0); 4];
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: the caller guarantees NEON. 16 bytes from `i`, ending at or before `n`, the
            // length of both slices; `vld1q` needs only byte alignment.
            let (x, y) = unsafe { (vld1q_u8(pa.add(i)), vld1q_s8(pb.add(i))) };
            mla(x, y, &mut acc);
            i += 16;
        }
        let v = vaddq_s32(vaddq_s32(acc[0], acc[1]), vaddq_s32(acc[2], acc[3]));
        vaddvq_s32(v).wrapping_add(scalar::dot_u8_i8(&a[i..], &b[i..]))
    }

    /// Steps of 2 words counted in `u16` lanes before adding them up: each adds at most 16 to a
    /// lane, and 4,095 · 16 < 2¹⁶.
    const U16_STEPS: usize = 4095;

    /// `acc` + the popcounts of the bytes of `x & y`, pairwise into `u16` lanes.
    #[target_feature(enable = "neon")]
    #[inline]
    fn count(x: uint64x2_t, y: uint64x2_t, acc: uint16x8_t) -> uint16x8_t {
        vpadalq_u8(acc, vcntq_u8(vreinterpretq_u8_u64(vandq_u64(x, y))))
    }

    /// `plane_popcounts`, 2 words a step.
    ///
    /// # Safety
    /// The CPU has NEON, as every target of this module's cfg does.
    #[target_feature(enable = "neon")]
    unsafe fn plane_popcounts(code: &[u64], planes: &[u64]) -> [u32; 4] {
        let w = code.len().min(planes.len() / 4);
        let code = &code[..w];
        let planes: [&[u64]; 4] = std::array::from_fn(|j| &planes[j * w..(j + 1) * w]);
        let full = w - w % 2;
        let mut total = [vdupq_n_u32(0); 4];
        let mut i = 0;
        while i < full {
            let end = full.min(i + 2 * U16_STEPS);
            let mut acc = [vdupq_n_u16(0); 4];
            while i < end {
                // SAFETY: the caller guarantees NEON. 2 words from `i`, ending at or before
                // `end <= w`, the length of `code`; `vld1q_u64` needs only `u64` alignment.
                let c = unsafe { vld1q_u64(code.as_ptr().add(i)) };
                for (a, plane) in acc.iter_mut().zip(planes) {
                    // SAFETY: as above: every plane holds `w` words.
                    let p = unsafe { vld1q_u64(plane.as_ptr().add(i)) };
                    *a = count(c, p, *a);
                }
                i += 2;
            }
            for (t, a) in total.iter_mut().zip(acc) {
                *t = vpadalq_u16(*t, a);
            }
        }
        std::array::from_fn(|j| {
            vaddvq_u32(total[j])
                .wrapping_add(scalar::and_popcount(&code[full..], &planes[j][full..]))
        })
    }
}

/// The SIMD tests run under Miri too (fewer cases), checking that every load is in bounds: on
/// x86-64 with `RUSTFLAGS="-C target-feature=+avx2,+popcnt" cargo +nightly miri test --lib
/// distance::codes`, and the NEON kernels (without aarch64 hardware) with `--target
/// aarch64-unknown-linux-gnu` added.
#[cfg(test)]
mod tests {
    use super::super::scalar::tests::config;
    use super::{runnable, scalar};
    use proptest::prelude::*;

    /// The exact sum in `i64`.
    fn dot_reference(a: &[u8], b: &[i8]) -> i64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| i64::from(x) * i64::from(y))
            .sum()
    }

    /// The exact sums in `u64`: `Σ popcount(code & plane_j)` with the kernels' `w`.
    fn planes_reference(code: &[u64], planes: &[u64]) -> [u64; 4] {
        let w = code.len().min(planes.len() / 4);
        std::array::from_fn(|j| {
            (0..w)
                .map(|i| u64::from((code[i] & planes[j * w + i]).count_ones()))
                .sum()
        })
    }

    /// Every runnable kernel gives the scalar dot product, which is the `i64` one when it fits.
    /// Unequal lengths are fine: the kernels are called directly, not through the debug-asserting
    /// entry point.
    fn check_dot(a: &[u8], b: &[i8]) -> Result<(), TestCaseError> {
        let want = scalar::dot_u8_i8(a, b);
        let exact = dot_reference(a, b);
        if let Ok(exact) = i32::try_from(exact) {
            prop_assert_eq!(want, exact, "scalar vs i64, lens {} {}", a.len(), b.len());
        } else {
            prop_assert_eq!(want, exact as i32, "scalar vs i64 wrapped");
        }
        if a.len() == b.len() {
            prop_assert_eq!(super::dot_u8_i8(a, b), want, "dispatched, len {}", a.len());
        }
        for k in runnable() {
            // SAFETY: `k` comes from `runnable`, which lists only kernels whose target features
            // the running CPU has.
            let got = unsafe { (k.dot_u8_i8)(a, b) };
            prop_assert_eq!(got, want, "{}, lens {} {}", k.name, a.len(), b.len());
        }
        Ok(())
    }

    /// The scalar popcounts are the exact ones (`and_popcount(a, b)`, the NEON tails, and
    /// `plane_popcounts(a, planes)`), and every runnable kernel gives them.
    fn check_popcounts(a: &[u64], b: &[u64], planes: &[u64]) -> Result<(), TestCaseError> {
        let n = a.len().min(b.len());
        let want_and = scalar::and_popcount(a, b);
        let exact: u64 = (0..n).map(|i| u64::from((a[i] & b[i]).count_ones())).sum();
        prop_assert_eq!(u64::from(want_and), exact, "scalar and_popcount vs u64");
        let want_planes = scalar::plane_popcounts(a, planes);
        prop_assert_eq!(
            want_planes.map(u64::from),
            planes_reference(a, planes),
            "scalar plane_popcounts vs u64"
        );
        if planes.len() == 4 * a.len() {
            prop_assert_eq!(super::plane_popcounts(a, planes), want_planes, "dispatched");
        }
        for k in runnable() {
            // SAFETY: `k` comes from `runnable`, which lists only kernels whose target features
            // the running CPU has.
            let got_planes = unsafe { (k.plane_popcounts)(a, planes) };
            prop_assert_eq!(
                got_planes,
                want_planes,
                "{} plane_popcounts, lens {} {}",
                k.name,
                a.len(),
                planes.len()
            );
        }
        Ok(())
    }

    /// A deterministic xorshift stream (no seed to print: it is fixed).
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// Inputs that end exactly where their allocations end, so that a load past the end (a masked
    /// load whose mask is wrong, say) reads outside the allocation, which the address sanitizer
    /// reports (`RUSTFLAGS=-Zsanitizer=address cargo +nightly test --lib distance::codes
    /// --target x86_64-unknown-linux-gnu`).
    #[test]
    fn inputs_ending_at_their_allocation() {
        let mut next = xorshift(7);
        for len in 0..=200 {
            let a: Box<[u8]> = (0..len).map(|_| next() as u8).collect();
            let b: Box<[i8]> = (0..len).map(|_| (next() % 255) as i8).collect();
            check_dot(&a, &b).unwrap();
            let code: Box<[u64]> = (0..len / 4).map(|_| next()).collect();
            let planes: Box<[u64]> = (0..len / 4 * 4).map(|_| next()).collect();
            check_popcounts(&code, &code, &planes).unwrap();
        }
    }

    /// Every length 0..=300, through the full steps, every partial one and the scalar tail, from
    /// misaligned starts, with codes in the documented range and across the whole of `i8`.
    #[test]
    fn equal_at_every_length() {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        let a: Vec<u8> = (0..302).map(|_| next() as u8).collect();
        let b: Vec<i8> = (0..302)
            .map(|_| ((next() % 255) as i32 - 127) as i8)
            .collect();
        let wide: Vec<i8> = (0..302).map(|_| next() as i8).collect();
        let words: Vec<u64> = (0..1210).map(|_| next()).collect();
        for len in 0..=300 {
            check_dot(&a[1..=len], &b[2..len + 2]).unwrap();
            check_dot(&a[..len], &wide[1..=len]).unwrap();
            let planes = &words[1..4 * len + 1];
            check_popcounts(&words[1205 - len..1205], &words[909 - len..909], planes).unwrap();
        }
    }

    /// A `u8` code and an `i8` code of one length in `0..=4096`, each a sub-slice of a longer
    /// allocation starting at offset 0..32 (every misalignment of a 32-byte load), `b` in
    /// `-127..=127` or, half the time, anywhere in `i8`.
    fn dot_pair() -> impl Strategy<Value = (Vec<u8>, usize, Vec<i8>, usize, usize)> {
        (0usize..=4096, 0usize..32, 0usize..32, any::<bool>()).prop_flat_map(
            |(len, oa, ob, wide)| {
                let b = if wide {
                    any::<i8>().boxed()
                } else {
                    (-127i8..=127).boxed()
                };
                (
                    prop::collection::vec(any::<u8>(), len + oa),
                    Just(oa),
                    prop::collection::vec(b, len + ob),
                    Just(ob),
                    Just(len),
                )
            },
        )
    }

    /// Words of a binary code, a second code and four planes, for a code of `0..=4096` words,
    /// starting at offsets 0..4 of their allocations (a 32-byte load is misaligned for 3 of
    /// them). Half the time the words are sparse (an AND of three), so the counts vary widely.
    #[allow(clippy::type_complexity)]
    fn code_words() -> impl Strategy<Value = (Vec<u64>, Vec<u64>, Vec<u64>, usize, usize)> {
        (0usize..=4096, 0usize..4, any::<bool>()).prop_flat_map(|(w, off, sparse)| {
            let word = if sparse {
                (any::<u64>(), any::<u64>(), any::<u64>())
                    .prop_map(|(x, y, z)| x & y & z)
                    .boxed()
            } else {
                any::<u64>().boxed()
            };
            (
                prop::collection::vec(word.clone(), w + off),
                prop::collection::vec(word.clone(), w + off),
                prop::collection::vec(word, 4 * w + off),
                Just(off),
                Just(w),
            )
        })
    }

    proptest! {
        #![proptest_config(config())]

        /// Random lengths up to 4,096 at every misalignment.
        #[test]
        fn dot_equals_scalar((a, oa, b, ob, len) in dot_pair()) {
            check_dot(&a[oa..oa + len], &b[ob..ob + len])?;
        }

        /// Random lengths up to 4,096 words, misaligned.
        #[test]
        fn popcounts_equal_scalar((a, b, planes, off, w) in code_words()) {
            check_popcounts(&a[off..off + w], &b[off..off + w], &planes[off..off + 4 * w])?;
        }

        /// The `min` rule: on unequal lengths every kernel reads only what both slices hold and
        /// gives the scalar result on that prefix.
        #[test]
        fn unequal_lengths_take_the_shorter(
            (a, _, b, _, _) in dot_pair(),
            (x, y, planes, _, _) in code_words(),
            (cut_a, cut_b) in (0usize..100, 0usize..100),
        ) {
            let cut = |v: usize, by: usize| v.saturating_sub(by);
            check_dot(&a[..cut(a.len(), cut_a)], &b[..cut(b.len(), cut_b)])?;
            let (x, y) = (&x[..cut(x.len(), cut_a % 9)], &y[..cut(y.len(), cut_b % 9)]);
            check_popcounts(x, y, &planes[..cut(planes.len(), cut_b)])?;
            check_popcounts(y, x, &planes[..planes.len().min(cut_a)])?;
        }
    }

    /// The extremes of the documented range at its longest, n = 65,536: `255 · ±127` everywhere
    /// (`vpmaddubsw` would saturate here), alternating signs, and `-128` too (still exact); from a
    /// misaligned start. Then past the bound, where every kernel wraps alike.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn dot_extremes_are_exact() {
        const N: usize = 65_536;
        let a = vec![255u8; N + 1];
        let alternating: Vec<i8> = (0..=N)
            .map(|i| if i % 2 == 0 { 127 } else { -127 })
            .collect();
        for b in [
            vec![127i8; N + 1],
            vec![-127; N + 1],
            vec![-128; N + 1],
            alternating,
        ] {
            let (a, b) = (&a[1..], &b[1..]);
            let exact = dot_reference(a, b);
            assert!(i32::try_from(exact).is_ok(), "{exact} fits i32");
            check_dot(a, b).unwrap();
            assert_eq!(i64::from(super::dot_u8_i8(a, b)), exact);
        }
        assert_eq!(
            i64::from(scalar::dot_u8_i8(&a[1..], &vec![127; N])),
            255 * 127 * N as i64
        );
        // Past the bound: 70,000 · 255 · 127 > 2³¹.
        let (a, b) = (vec![255u8; 70_000], vec![127i8; 70_000]);
        assert_eq!(scalar::dot_u8_i8(&a, &b), (255 * 127 * 70_000i64) as i32);
        check_dot(&a, &b).unwrap();
    }

    /// All-ones words, where every count is 64 a word, at lengths around the kernels' steps and
    /// their byte and `u16` accumulator limits.
    #[test]
    fn popcounts_of_all_ones() {
        let ones = vec![u64::MAX; 4 * 8200];
        for w in [0, 1, 3, 4, 5, 123, 124, 125, 127, 8189, 8190, 8191, 8192] {
            let (code, planes) = (&ones[..w], &ones[..4 * w]);
            check_popcounts(code, code, planes).unwrap();
            assert_eq!(super::plane_popcounts(code, planes), [64 * w as u32; 4]);
        }
    }

    /// The scalar dot product against hand-computed sums.
    #[test]
    fn scalar_dot_small_cases() {
        assert_eq!(scalar::dot_u8_i8(&[], &[]), 0);
        assert_eq!(scalar::dot_u8_i8(&[1, 2, 3], &[4, -5, 6]), 4 - 10 + 18);
        assert_eq!(scalar::dot_u8_i8(&[255], &[-128]), -32_640);
        assert_eq!(scalar::dot_u8_i8(&[255, 255], &[127]), 32_385);
        assert_eq!(
            scalar::plane_popcounts(&[0b1011, 1], &[1, 1, 2, 0, 8, 0, 0xF, 3]),
            [2, 1, 1, 4]
        );
    }

    /// The entry points assert equal lengths in debug builds.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic]
    fn dot_of_unequal_lengths_is_a_bug() {
        super::dot_u8_i8(&[1, 2], &[1]);
    }

    /// The entry points assert equal lengths in debug builds.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic]
    fn planes_of_the_wrong_length_are_a_bug() {
        super::plane_popcounts(&[1, 2], &[1; 7]);
    }

    /// Prints the kernels in use (`cargo test --lib codes_kernel_name -- --nocapture`) and checks
    /// the choice.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn codes_kernel_name() {
        let name = super::codes_kernel_name();
        println!("code kernels in use: {name}");
        #[cfg(target_arch = "x86_64")]
        let fastest = if super::x86::has_avx512() {
            "avx512vnni+vpopcntdq"
        } else if super::x86::has_avx2_popcnt() {
            "avx2+popcnt"
        } else if super::x86::has_popcnt() {
            "popcnt"
        } else {
            "scalar"
        };
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        let fastest = "neon";
        #[cfg(not(any(
            target_arch = "x86_64",
            all(target_arch = "aarch64", target_feature = "neon")
        )))]
        let fastest = "scalar";
        // Miri uses the scalar kernels whatever the CPU (`fastest`).
        let want = if super::scalar_requested() || cfg!(miri) {
            "scalar"
        } else {
            fastest
        };
        assert_eq!(name, want);
    }
}
