//! SIMD kernels, and the choice among them for the process.
//!
//! - x86-64: AVX-512F when the CPU has it, else AVX2 + FMA when it has both, otherwise the scalar
//!   kernels.
//! - aarch64: NEON, which every aarch64 target with the `neon` feature (all but the soft-float
//!   ones) has.
//! - elsewhere, and under Miri: the scalar kernels.
//!
//! The choice is made once, at the first distance of the process, and kept (a table of function
//! pointers in a `OnceLock`). If the environment variable `HNSWDB_SCALAR_KERNELS` is then set to
//! anything but empty or `0`, the process uses the scalar kernels instead: by the summation order
//! contract (the parent module) the answers are the same bits, only slower, which rules a SIMD
//! kernel in or out when chasing a difference.
//!
//! Every kernel here follows that contract: the `LANES` lanes live in `LANES / W` registers of `W`
//! floats (register `r` holds lanes `W·r .. W·r + W`), each element is one FMA into its lane, the
//! last partial step is loaded zero-filled (masked loads on AVX-512, a zeroed copy elsewhere), and
//! the pairwise tree first adds whole registers (of `R`: register `r` += register `r + R/2` for
//! `r < R/2`, and so on), then the halves of the one left, exactly as the scalar kernels add their
//! lanes.
//!
//! Vectors are read straight from database pages, so the kernels use unaligned loads only. The
//! lengths are equal (Invariant, debug-asserted); memory safety never rests on it: the kernels read
//! `min(a.len(), b.len())` elements, as the scalar ones do.
//!
//! All of this module's `unsafe` is here; each block says why its target feature is present and
//! why its loads are in bounds.

use std::sync::OnceLock;

use super::scalar;

/// The environment variable that, set to anything but empty or `0` before the first distance,
/// makes the whole process use the scalar kernels.
pub(crate) const SCALAR_KERNELS_VAR: &str = "HNSWDB_SCALAR_KERNELS";

/// One implementation of the kernels.
pub(crate) struct Kernels {
    /// `avx512f`, `avx2+fma`, `neon` or `scalar`.
    #[cfg_attr(not(any(test, feature = "test-hooks")), allow(dead_code))]
    pub(crate) name: &'static str,
    /// Safety of both: the CPU has the target features of `name`.
    l2_sq: unsafe fn(&[f32], &[f32]) -> f32,
    dot: unsafe fn(&[f32], &[f32]) -> f32,
}

static SCALAR: Kernels = Kernels {
    name: "scalar",
    l2_sq: scalar::l2_sq,
    dot: scalar::dot,
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

/// Whether `HNSWDB_SCALAR_KERNELS` asks for the scalar kernels (of these and of
/// [`super::codes`]).
pub(super) fn scalar_requested() -> bool {
    std::env::var_os(SCALAR_KERNELS_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The fastest kernels the running CPU has. Under Miri the scalar ones, which Miri runs quickly
/// (the SIMD tests call the others directly).
fn fastest() -> &'static Kernels {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    let k = if x86::has_avx512f() {
        &x86::AVX512
    } else if x86::has_avx2_fma() {
        &x86::AVX2_FMA
    } else {
        &SCALAR
    };
    #[cfg(all(target_arch = "aarch64", target_feature = "neon", not(miri)))]
    let k = &neon::NEON;
    #[cfg(not(all(
        any(
            target_arch = "x86_64",
            all(target_arch = "aarch64", target_feature = "neon")
        ),
        not(miri)
    )))]
    let k = &SCALAR;
    k
}

/// Squared Euclidean distance. Invariant: `a.len() == b.len()`.
#[inline]
pub(crate) fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: `active` returns only kernels whose target features the running CPU has.
    unsafe { (active().l2_sq)(a, b) }
}

/// Inner product. Invariant: `a.len() == b.len()`.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: `active` returns only kernels whose target features the running CPU has.
    unsafe { (active().dot)(a, b) }
}

/// Most bytes of one slice [`prefetch`] asks for: every line of a vector of up to 512 `f32`s.
/// Measured at ef 64 against the first line only: 100k x 128 (512 B) +55% queries/s, minilm50k
/// (1.5 KiB) +10%, bigann10k (in cache) within noise; whole 30k x 1536 vectors (6 KiB, 32 of them
/// per expansion overflow L1) lost 20%, their first 1–2 KiB were neutral.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const PREFETCH_BYTES: usize = 2048;

/// Asks the CPU to start loading the cache lines of `data` (up to [`PREFETCH_BYTES`]), which is
/// about to be read: a search reads vectors and lists at random places, so the loads overlap each
/// other and the distances. A hint only; nothing happens on other architectures.
#[inline(always)]
pub(crate) fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = data.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(data).min(PREFETCH_BYTES);
        for offset in (0..bytes).step_by(64) {
            // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 CPU has (it is in the
            // baseline target). A prefetch never faults and changes no memory, whatever the
            // address; this one is inside a live slice anyway (`offset < bytes`), and
            // `wrapping_add` computes it without any requirement.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// The name of the kernels `l2_sq` and `dot` run in this process.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn kernel_name() -> &'static str {
    active().name
}

/// Entry points for `benches/distance.rs` and the tests, re-exported by `lib.rs` as
/// `hnswdb::__bench`. Not part of the API: no stability promise.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod bench {
    /// The environment variable that makes a process use the scalar kernels.
    pub const SCALAR_KERNELS_VAR: &str = super::SCALAR_KERNELS_VAR;

    /// The dispatched squared L2 (what the index uses).
    #[inline]
    pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
        super::l2_sq(a, b)
    }

    /// The dispatched inner product (what the index uses).
    #[inline]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot(a, b)
    }

    /// The scalar fallback of `l2_sq`.
    #[inline]
    pub fn scalar_l2_sq(a: &[f32], b: &[f32]) -> f32 {
        super::super::scalar::l2_sq(a, b)
    }

    /// The scalar fallback of `dot`.
    #[inline]
    pub fn scalar_dot(a: &[f32], b: &[f32]) -> f32 {
        super::super::scalar::dot(a, b)
    }

    /// The name of the kernels the dispatched functions run: `avx512f`, `avx2+fma`, `neon` or
    /// `scalar`.
    pub fn kernel_name() -> &'static str {
        super::kernel_name()
    }
}

// Under Miri only the tests call the SIMD kernels (`fastest` picks the scalar ones).
#[cfg(target_arch = "x86_64")]
#[cfg_attr(miri, allow(dead_code))]
mod x86 {
    use std::arch::x86_64::*;

    use super::Kernels;
    use crate::distance::LANES;

    pub(super) static AVX512: Kernels = Kernels {
        name: "avx512f",
        l2_sq: fold_avx512::<true>,
        dot: fold_avx512::<false>,
    };

    pub(super) static AVX2_FMA: Kernels = Kernels {
        name: "avx2+fma",
        l2_sq: fold_avx2::<true>,
        dot: fold_avx2::<false>,
    };

    /// Whether the running CPU has AVX2 and FMA (std caches the CPUID result).
    pub(super) fn has_avx2_fma() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// Whether the running CPU has AVX-512F.
    pub(super) fn has_avx512f() -> bool {
        is_x86_feature_detected!("avx512f")
    }

    /// Registers of 16 floats that hold the lanes under AVX-512.
    const R16: usize = LANES / 16;

    /// The lanes of a 16-float register that hold the `left` (at most 16) remaining floats.
    #[inline]
    fn tail_mask(left: usize) -> __mmask16 {
        debug_assert!(left <= 16);
        ((1u32 << left) - 1) as __mmask16
    }

    /// One element of each of 16 lanes: `fma(x − y, x − y, acc)` if `L2`, else `fma(x, y, acc)`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn step512<const L2: bool>(x: __m512, y: __m512, acc: __m512) -> __m512 {
        if L2 {
            let d = _mm512_sub_ps(x, y);
            _mm512_fmadd_ps(d, d, acc)
        } else {
            _mm512_fmadd_ps(x, y, acc)
        }
    }

    /// Squared L2 (`L2`) or the inner product over `min(a.len(), b.len())` elements, in the
    /// summation order of the contract.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn fold_avx512<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s = [_mm512_setzero_ps(); R16];
        let mut i = 0;
        while i + LANES <= n {
            for (r, acc) in s.iter_mut().enumerate() {
                let at = i + 16 * r;
                // SAFETY: the caller guarantees AVX-512F. 16 floats from `at`, ending at or
                // before `i + LANES <= n`, which is at most the length of both slices; `loadu`
                // accepts any alignment.
                let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(at)), _mm512_loadu_ps(pb.add(at))) };
                *acc = step512::<L2>(x, y, *acc);
            }
            i += LANES;
        }
        if i < n {
            for (r, acc) in s.iter_mut().enumerate() {
                let at = (i + 16 * r).min(n);
                let m = tail_mask((n - at).min(16));
                // SAFETY: the caller guarantees AVX-512F. `at <= n`, so the pointers are in
                // bounds or one past the end; the masked loads read only the lanes below `n`
                // (masked-off lanes are neither read nor faulted on, and load as zero, the
                // contract's padding), all within both slices.
                let (x, y) = unsafe {
                    (
                        _mm512_maskz_loadu_ps(m, pa.add(at)),
                        _mm512_maskz_loadu_ps(m, pb.add(at)),
                    )
                };
                *acc = step512::<L2>(x, y, *acc);
            }
        }
        let mut w = R16;
        while w > 1 {
            w /= 2;
            for r in 0..w {
                s[r] = _mm512_add_ps(s[r], s[r + w]);
            }
        }
        // Lane j += lane j + 8, then the 8-lane tree.
        let lo = _mm512_castps512_ps256(s[0]);
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(s[0])));
        hsum8(_mm256_add_ps(lo, hi))
    }

    /// Registers of 8 floats that hold the lanes under AVX2.
    const R8: usize = LANES / 8;

    /// One element of each of 8 lanes: `fma(x − y, x − y, acc)` if `L2`, else `fma(x, y, acc)`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn step256<const L2: bool>(x: __m256, y: __m256, acc: __m256) -> __m256 {
        if L2 {
            let d = _mm256_sub_ps(x, y);
            _mm256_fmadd_ps(d, d, acc)
        } else {
            _mm256_fmadd_ps(x, y, acc)
        }
    }

    /// Squared L2 (`L2`) or the inner product over `min(a.len(), b.len())` elements, in the
    /// summation order of the contract.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fold_avx2<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s = [_mm256_setzero_ps(); R8];
        let mut i = 0;
        while i + LANES <= n {
            for (r, acc) in s.iter_mut().enumerate() {
                let at = i + 8 * r;
                // SAFETY: the caller guarantees AVX2 and FMA. 8 floats from `at`, ending at or
                // before `i + LANES <= n`, the length of both slices; `loadu` accepts any
                // alignment.
                let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(at)), _mm256_loadu_ps(pb.add(at))) };
                *acc = step256::<L2>(x, y, *acc);
            }
            i += LANES;
        }
        if i < n {
            for (r, acc) in s.iter_mut().enumerate() {
                let at = i + 8 * r;
                let (x, y) = if at + 8 <= n {
                    // SAFETY: as in the loop above: 8 floats from `at`, ending at or before `n`.
                    unsafe { (_mm256_loadu_ps(pa.add(at)), _mm256_loadu_ps(pb.add(at))) }
                } else {
                    let (mut x, mut y) = ([0f32; 8], [0f32; 8]);
                    let from = at.min(n);
                    x[..n - from].copy_from_slice(&a[from..]);
                    y[..n - from].copy_from_slice(&b[from..]);
                    // SAFETY: the caller guarantees AVX2 and FMA; each load reads a whole local
                    // `[f32; 8]`, the rest of the slice followed by the contract's zeros.
                    unsafe { (_mm256_loadu_ps(x.as_ptr()), _mm256_loadu_ps(y.as_ptr())) }
                };
                *acc = step256::<L2>(x, y, *acc);
            }
        }
        let mut w = R8;
        while w > 1 {
            w /= 2;
            for r in 0..w {
                s[r] = _mm256_add_ps(s[r], s[r + w]);
            }
        }
        hsum8(s[0])
    }

    /// The contract's tree over the 8 lanes of `v`: lane j += lane j + 4, then j += j + 2, then
    /// lane 0 += lane 1. Register operations only; AVX is part of both AVX2 and AVX-512F.
    #[target_feature(enable = "avx")]
    #[inline]
    fn hsum8(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[cfg_attr(miri, allow(dead_code))]
mod neon {
    use std::arch::aarch64::*;

    use super::Kernels;
    use crate::distance::LANES;

    pub(super) static NEON: Kernels = Kernels {
        name: "neon",
        l2_sq: fold::<true>,
        dot: fold::<false>,
    };

    /// Registers of 4 floats that hold the lanes.
    const R4: usize = LANES / 4;

    /// One element of each of 4 lanes: `fma(x − y, x − y, acc)` if `L2`, else `fma(x, y, acc)`.
    #[target_feature(enable = "neon")]
    #[inline]
    fn step<const L2: bool>(x: float32x4_t, y: float32x4_t, acc: float32x4_t) -> float32x4_t {
        if L2 {
            let d = vsubq_f32(x, y);
            vfmaq_f32(acc, d, d)
        } else {
            vfmaq_f32(acc, x, y)
        }
    }

    /// Squared L2 (`L2`) or the inner product over `min(a.len(), b.len())` elements, in the
    /// summation order of the contract.
    ///
    /// # Safety
    /// The CPU has NEON, as every target of this module's cfg does.
    #[target_feature(enable = "neon")]
    unsafe fn fold<const L2: bool>(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut s = [vdupq_n_f32(0.0); R4];
        let mut i = 0;
        while i + LANES <= n {
            for (r, acc) in s.iter_mut().enumerate() {
                let at = i + 4 * r;
                // SAFETY: the caller guarantees NEON. 4 floats from
                // `at`, ending at or before `i + LANES <= n`, the length of both slices;
                // `vld1q_f32` needs only f32 alignment, which a `&[f32]` has.
                let (x, y) = unsafe { (vld1q_f32(pa.add(at)), vld1q_f32(pb.add(at))) };
                *acc = step::<L2>(x, y, *acc);
            }
            i += LANES;
        }
        if i < n {
            for (r, acc) in s.iter_mut().enumerate() {
                let at = i + 4 * r;
                let (x, y) = if at + 4 <= n {
                    // SAFETY: as in the loop above: 4 floats from `at`, ending at or before `n`.
                    unsafe { (vld1q_f32(pa.add(at)), vld1q_f32(pb.add(at))) }
                } else {
                    let (mut x, mut y) = ([0f32; 4], [0f32; 4]);
                    let from = at.min(n);
                    x[..n - from].copy_from_slice(&a[from..]);
                    y[..n - from].copy_from_slice(&b[from..]);
                    // SAFETY: the caller guarantees NEON; each load reads a whole local
                    // `[f32; 4]`, the rest of the slice followed by the contract's zeros.
                    unsafe { (vld1q_f32(x.as_ptr()), vld1q_f32(y.as_ptr())) }
                };
                *acc = step::<L2>(x, y, *acc);
            }
        }
        let mut w = R4;
        while w > 1 {
            w /= 2;
            for r in 0..w {
                s[r] = vaddq_f32(s[r], s[r + w]);
            }
        }
        hsum4(s[0])
    }

    /// The contract's tree over the 4 lanes of `v`: lane j += lane j + 2, then lane 0 += lane 1.
    /// By lane, not `vaddvq_f32` (whose order is not this one, and which Miri cannot run).
    #[target_feature(enable = "neon")]
    #[inline]
    fn hsum4(v: float32x4_t) -> f32 {
        let (l0, l1) = (vgetq_lane_f32::<0>(v), vgetq_lane_f32::<1>(v));
        let (l2, l3) = (vgetq_lane_f32::<2>(v), vgetq_lane_f32::<3>(v));
        (l0 + l2) + (l1 + l3)
    }
}

/// The SIMD tests are ignored under Miri by default (slow), but Miri can run them, checking that
/// every load is in bounds: on x86-64 with `RUSTFLAGS="-C target-feature=+avx2,+fma"
/// cargo +nightly miri test --lib distance -- --include-ignored`, and the NEON kernels (without
/// aarch64 hardware) with `--target aarch64-unknown-linux-gnu` added.
#[cfg(test)]
mod tests {
    use super::super::scalar::tests::{close, config, pair, reference, scales};
    use super::Kernels;
    use proptest::prelude::*;

    /// Every implementation of the kernels this CPU can run, the scalar one first.
    fn runnable() -> Vec<&'static Kernels> {
        #[allow(unused_mut)]
        let mut all = vec![&super::SCALAR];
        #[cfg(target_arch = "x86_64")]
        {
            if super::x86::has_avx512f() {
                all.push(&super::x86::AVX512);
            }
            if super::x86::has_avx2_fma() {
                all.push(&super::x86::AVX2_FMA);
            }
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        all.push(&super::neon::NEON);
        all
    }

    /// `(q−v)²`, `q·v` and `v·v` by the kernels `k`, one of [`runnable`].
    fn run(k: &Kernels, q: &[f32], v: &[f32]) -> [f32; 3] {
        // SAFETY: `k` comes from `runnable`, which lists only kernels whose target features the
        // running CPU has.
        unsafe { [(k.l2_sq)(q, v), (k.dot)(q, v), (k.dot)(v, v)] }
    }

    /// The bits of `x`, any NaN as one: Rust leaves a NaN result's sign and payload unspecified
    /// (Miri picks them at random), and they differ between CPU architectures.
    fn bits(x: f32) -> u32 {
        if x.is_nan() {
            f32::NAN.to_bits()
        } else {
            x.to_bits()
        }
    }

    /// Every runnable implementation, and the dispatched one, give the scalar kernels' bits.
    fn check_bits(q: &[f32], v: &[f32]) -> Result<(), TestCaseError> {
        let want = run(&super::SCALAR, q, v).map(bits);
        let dispatched = [super::l2_sq(q, v), super::dot(q, v), super::dot(v, v)];
        prop_assert_eq!(
            dispatched.map(bits),
            want,
            "dispatched ({}) vs scalar, len {}",
            super::kernel_name(),
            q.len()
        );
        for k in runnable() {
            prop_assert_eq!(
                run(k, q, v).map(bits),
                want,
                "{} vs scalar, len {}",
                k.name,
                q.len()
            );
        }
        Ok(())
    }

    /// A float of any kind a vector may hold: ordinary, tiny or huge (overflowing products and
    /// sums to ±∞ included), ±0.0 and subnormals.
    fn wild() -> impl Strategy<Value = f32> {
        let sign = |neg: bool| u32::from(neg) << 31;
        prop_oneof![
            4 => -100.0f32..100.0,
            1 => Just(0.0f32),
            1 => Just(-0.0f32),
            1 => (any::<bool>(), 1u32..0x0080_0000)
                .prop_map(move |(neg, m)| f32::from_bits(sign(neg) | m)),
            3 => (any::<bool>(), 1u32..=254, 0u32..0x0080_0000)
                .prop_map(move |(neg, e, m)| f32::from_bits(sign(neg) | e << 23 | m)),
        ]
    }

    /// Two vectors of a length in `0..=300` or, one time in five, up to 5000, starting at offsets
    /// 0..4 of their allocations (misaligned loads), of [`wild`] floats or, half the time, of
    /// floats in ±100 (where one huge term does not hide every rounding of the others).
    #[allow(clippy::type_complexity)]
    fn wild_pair() -> impl Strategy<Value = (Vec<f32>, usize, Vec<f32>, usize, usize)> {
        let len = prop_oneof![4 => 0usize..=300, 1 => 301usize..=5000];
        (len, 0usize..4, 0usize..4, any::<bool>()).prop_flat_map(|(len, oq, ov, narrow)| {
            let value = if narrow {
                (-100.0f32..100.0).boxed()
            } else {
                wild().boxed()
            };
            (
                prop::collection::vec(value.clone(), len + oq),
                Just(oq),
                prop::collection::vec(value, len + ov),
                Just(ov),
                Just(len),
            )
        })
    }

    proptest! {
        #![proptest_config(config())]

        /// Every kernel (and the dispatched one) against the f64 reference, within rounding.
        #[test]
        #[cfg_attr(miri, ignore)]
        fn kernels_match_f64_reference((qa, oq, va, ov, len) in pair()) {
            let (q, v) = (&qa[oq..oq + len], &va[ov..ov + len]);
            let (l2, qv, vv) = reference(q, v);
            let (s_l2, s_qv, s_vv) = scales(q, v);
            let dispatched = [super::l2_sq(q, v), super::dot(q, v), super::dot(v, v)];
            for (name, [got_l2, got_qv, got_vv]) in runnable()
                .into_iter()
                .map(|k| (k.name, run(k, q, v)))
                .chain([("dispatched", dispatched)])
            {
                prop_assert!(close(got_l2, l2, s_l2), "{name} l2_sq {got_l2} vs {l2}");
                prop_assert!(close(got_qv, qv, s_qv), "{name} dot {got_qv} vs {qv}");
                prop_assert!(close(got_vv, vv, s_vv), "{name} v·v {got_vv} vs {vv}");
            }
        }

        /// The summation order contract: every kernel gives the scalar kernels' bits, on floats
        /// of every kind.
        #[test]
        #[cfg_attr(miri, ignore)]
        fn kernels_give_the_scalar_bits((qa, oq, va, ov, len) in wild_pair()) {
            check_bits(&qa[oq..oq + len], &va[ov..ov + len])?;
        }
    }

    /// The contract at every length up to 300 and some long ones, through the full steps, every
    /// kind of partial last step and the tree, on floats within a factor of 4 of each other
    /// (where every rounding shows) and on floats spanning 80 binary orders of magnitude.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn equal_bits_at_every_length() {
        for (low, span) in [(125, 4), (87, 80)] {
            let mut x = 0x9E37_79B9u32;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Sign and mantissa random, exponent in 2^(low − 127) .. 2^(low + span − 127).
                f32::from_bits((x & 0x807F_FFFF) | (low + (x >> 8) % span) << 23)
            };
            let a: Vec<f32> = (0..5000).map(|_| next()).collect();
            let b: Vec<f32> = (0..5000).map(|_| next()).collect();
            for len in (0..=300).chain([511, 512, 513, 1000, 1536, 4999]) {
                check_bits(&a[..len], &b[1..=len]).unwrap();
            }
        }
    }

    /// Lanes that hold −0.0 (products underflowing to −0) before the padding and the tree.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn equal_bits_on_negative_zero_sums() {
        let (neg, pos) = (vec![-f32::MIN_POSITIVE; 200], vec![f32::MIN_POSITIVE; 200]);
        for len in 0..200 {
            check_bits(&neg[..len], &pos[..len]).unwrap();
            check_bits(&pos[..len], &neg[..len]).unwrap();
        }
    }

    /// A prefetch reads and writes nothing, at any length and offset (Miri runs this one by
    /// default: it checks the `unsafe` block in `prefetch`).
    #[test]
    fn prefetch_changes_nothing_at_any_length() {
        let data: Vec<u32> = (0..2000).collect();
        for (start, len) in [
            (0, 0),
            (0, 1),
            (3, 16),
            (5, 17),
            (1, 511),
            (0, 512),
            (7, 1993),
        ] {
            super::prefetch(&data[start..start + len]);
        }
        super::prefetch::<f32>(&[]);
        assert!(data.iter().copied().eq(0..2000));
    }

    /// Prints the kernels in use (`cargo test --lib kernel_name -- --nocapture`) and checks the
    /// choice.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn kernel_name() {
        let name = super::kernel_name();
        println!("distance kernels in use: {name}");
        #[cfg(target_arch = "x86_64")]
        let fastest = if super::x86::has_avx512f() {
            "avx512f"
        } else if super::x86::has_avx2_fma() {
            "avx2+fma"
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
