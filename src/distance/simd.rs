//! SIMD kernels, and the choice among them for the running CPU.
//!
//! - x86-64: AVX-512F when the CPU has it, else AVX2 + FMA when it has both (detected once, at
//!   the first call; the choice is kept in a `OnceLock` as a table of function pointers),
//!   otherwise the scalar kernels.
//! - aarch64: NEON, which every aarch64 target with the `neon` feature (all but the soft-float
//!   ones) has at compile time, so it is called directly.
//! - elsewhere: the scalar kernels.
//!
//! Vectors are read straight from database pages, so the kernels use unaligned loads only. Each
//! keeps four independent vector accumulators so consecutive FMAs do not wait on each other. The
//! lengths are equal (Invariant, debug-asserted); memory safety never rests on it: the kernels read
//! `min(a.len(), b.len())` elements, as the scalar ones do.
//!
//! All of this module's `unsafe` is here; each block says why its target feature is present and
//! why its loads are in bounds.

#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
)))]
pub(crate) use super::scalar::{dot, dot_and_norm_sq, l2_sq};
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub(crate) use neon::{dot, dot_and_norm_sq, l2_sq};

/// Squared Euclidean distance. Invariant: `a.len() == b.len()`.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    let k = x86::active();
    // SAFETY: `active` returns only kernels whose target features the running CPU has.
    unsafe { (k.l2_sq)(a, b) }
}

/// Inner product. Invariant: `a.len() == b.len()`.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let k = x86::active();
    // SAFETY: `active` returns only kernels whose target features the running CPU has.
    unsafe { (k.dot)(a, b) }
}

/// `(q·v, v·v)`, in one pass under AVX2. Invariant: `q.len() == v.len()`.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn dot_and_norm_sq(q: &[f32], v: &[f32]) -> (f32, f32) {
    let k = x86::active();
    // SAFETY: `active` returns only kernels whose target features the running CPU has.
    unsafe { (k.dot_and_norm_sq)(q, v) }
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

/// The name of the kernels `l2_sq`, `dot` and `dot_and_norm_sq` run on this CPU.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    let name = x86::active().name;
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    let name = "neon";
    #[cfg(not(any(
        target_arch = "x86_64",
        all(target_arch = "aarch64", target_feature = "neon")
    )))]
    let name = "scalar";
    name
}

/// Entry points for `benches/distance.rs`, re-exported by `lib.rs` as `hnswdb::__bench`. Not part
/// of the API: no stability promise.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod bench {
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

    /// The dispatched fused `(q·v, v·v)` (what the index uses).
    #[inline]
    pub fn dot_and_norm_sq(q: &[f32], v: &[f32]) -> (f32, f32) {
        super::dot_and_norm_sq(q, v)
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

    /// The scalar fallback of `dot_and_norm_sq`.
    #[inline]
    pub fn scalar_dot_and_norm_sq(q: &[f32], v: &[f32]) -> (f32, f32) {
        super::super::scalar::dot_and_norm_sq(q, v)
    }

    /// The name of the kernels the dispatched functions run: `avx2+fma`, `neon` or `scalar`.
    pub fn kernel_name() -> &'static str {
        super::kernel_name()
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    use crate::distance::scalar;

    /// One implementation of the three kernels.
    pub(super) struct Kernels {
        #[cfg_attr(not(any(test, feature = "test-hooks")), allow(dead_code))]
        pub(super) name: &'static str,
        /// Safety of all three: the CPU has the target features of `name`.
        pub(super) l2_sq: unsafe fn(&[f32], &[f32]) -> f32,
        pub(super) dot: unsafe fn(&[f32], &[f32]) -> f32,
        pub(super) dot_and_norm_sq: unsafe fn(&[f32], &[f32]) -> (f32, f32),
    }

    pub(super) const AVX2_FMA: Kernels = Kernels {
        name: "avx2+fma",
        l2_sq: l2_sq_avx2,
        dot: dot_avx2,
        dot_and_norm_sq: dot_and_norm_sq_avx2,
    };

    pub(super) const AVX512: Kernels = Kernels {
        name: "avx512f",
        l2_sq: l2_sq_avx512,
        dot: dot_avx512,
        dot_and_norm_sq: dot_and_norm_sq_avx512,
    };

    const SCALAR: Kernels = Kernels {
        name: "scalar",
        l2_sq: scalar::l2_sq,
        dot: scalar::dot,
        dot_and_norm_sq: scalar::dot_and_norm_sq,
    };

    /// Whether the running CPU has AVX2 and FMA (std caches the CPUID result).
    pub(super) fn has_avx2_fma() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// Whether the running CPU has AVX-512F.
    pub(super) fn has_avx512f() -> bool {
        is_x86_feature_detected!("avx512f")
    }

    /// The kernels for the running CPU, chosen at the first call: AVX-512F, else AVX2 + FMA,
    /// else scalar. Invariant: the CPU has the target features of the kernels returned.
    #[inline]
    pub(super) fn active() -> &'static Kernels {
        static ACTIVE: OnceLock<Kernels> = OnceLock::new();
        ACTIVE.get_or_init(|| {
            if has_avx512f() {
                AVX512
            } else if has_avx2_fma() {
                AVX2_FMA
            } else {
                SCALAR
            }
        })
    }

    /// 16 floats per AVX-512 register, 4 registers per step.
    const LANES16: usize = 16;
    const STEP16: usize = 4 * LANES16;

    /// The lanes of a 16-float register that hold the `left` (< 16) remaining floats.
    #[inline]
    fn tail_mask(left: usize) -> __mmask16 {
        ((1u32 << left) - 1) as __mmask16
    }

    /// Squared Euclidean distance over `min(a.len(), b.len())` elements.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn l2_sq_avx512(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: the caller guarantees AVX-512F. Every full load reads 16 floats from offset
        // `i + 16·k` with `i + 16·(k+1) <= n` (the loop conditions); the masked tail load reads
        // only the `n - i < 16` lanes its mask sets (masked-off lanes are neither read nor
        // faulted on), all below `n`, which is at most the length of both slices. `loadu`
        // accepts any alignment.
        unsafe {
            let zero = _mm512_setzero_ps();
            let (mut s0, mut s1, mut s2, mut s3) = (zero, zero, zero, zero);
            while i + STEP16 <= n {
                let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                let d1 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + LANES16)),
                    _mm512_loadu_ps(pb.add(i + LANES16)),
                );
                let d2 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + 2 * LANES16)),
                    _mm512_loadu_ps(pb.add(i + 2 * LANES16)),
                );
                let d3 = _mm512_sub_ps(
                    _mm512_loadu_ps(pa.add(i + 3 * LANES16)),
                    _mm512_loadu_ps(pb.add(i + 3 * LANES16)),
                );
                s0 = _mm512_fmadd_ps(d0, d0, s0);
                s1 = _mm512_fmadd_ps(d1, d1, s1);
                s2 = _mm512_fmadd_ps(d2, d2, s2);
                s3 = _mm512_fmadd_ps(d3, d3, s3);
                i += STEP16;
            }
            while i + LANES16 <= n {
                let d = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
                s0 = _mm512_fmadd_ps(d, d, s0);
                i += LANES16;
            }
            if i < n {
                let m = tail_mask(n - i);
                let d = _mm512_sub_ps(
                    _mm512_maskz_loadu_ps(m, pa.add(i)),
                    _mm512_maskz_loadu_ps(m, pb.add(i)),
                );
                s1 = _mm512_fmadd_ps(d, d, s1);
            }
            _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
        }
    }

    /// Inner product over `min(a.len(), b.len())` elements.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: as in `l2_sq_avx512`: full loads end at or before `n`, the masked tail load
        // reads only the lanes below `n`.
        unsafe {
            let zero = _mm512_setzero_ps();
            let (mut s0, mut s1, mut s2, mut s3) = (zero, zero, zero, zero);
            while i + STEP16 <= n {
                s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
                s1 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i + LANES16)),
                    _mm512_loadu_ps(pb.add(i + LANES16)),
                    s1,
                );
                s2 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i + 2 * LANES16)),
                    _mm512_loadu_ps(pb.add(i + 2 * LANES16)),
                    s2,
                );
                s3 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(pa.add(i + 3 * LANES16)),
                    _mm512_loadu_ps(pb.add(i + 3 * LANES16)),
                    s3,
                );
                i += STEP16;
            }
            while i + LANES16 <= n {
                s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
                i += LANES16;
            }
            if i < n {
                let m = tail_mask(n - i);
                s1 = _mm512_fmadd_ps(
                    _mm512_maskz_loadu_ps(m, pa.add(i)),
                    _mm512_maskz_loadu_ps(m, pb.add(i)),
                    s1,
                );
            }
            _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
        }
    }

    /// `(q·v, v·v)` over `min(q.len(), v.len())` elements, in one pass.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_and_norm_sq_avx512(q: &[f32], v: &[f32]) -> (f32, f32) {
        debug_assert_eq!(q.len(), v.len());
        let n = q.len().min(v.len());
        let (pq, pv) = (q.as_ptr(), v.as_ptr());
        let mut i = 0;
        // SAFETY: as in `l2_sq_avx512`: full loads end at or before `n`, the masked tail loads
        // read only the lanes below `n`.
        unsafe {
            let zero = _mm512_setzero_ps();
            let (mut d0, mut d1, mut n0, mut n1) = (zero, zero, zero, zero);
            while i + 2 * LANES16 <= n {
                let v0 = _mm512_loadu_ps(pv.add(i));
                let v1 = _mm512_loadu_ps(pv.add(i + LANES16));
                d0 = _mm512_fmadd_ps(_mm512_loadu_ps(pq.add(i)), v0, d0);
                d1 = _mm512_fmadd_ps(_mm512_loadu_ps(pq.add(i + LANES16)), v1, d1);
                n0 = _mm512_fmadd_ps(v0, v0, n0);
                n1 = _mm512_fmadd_ps(v1, v1, n1);
                i += 2 * LANES16;
            }
            while i + LANES16 <= n {
                let v0 = _mm512_loadu_ps(pv.add(i));
                d0 = _mm512_fmadd_ps(_mm512_loadu_ps(pq.add(i)), v0, d0);
                n0 = _mm512_fmadd_ps(v0, v0, n0);
                i += LANES16;
            }
            if i < n {
                let m = tail_mask(n - i);
                let v0 = _mm512_maskz_loadu_ps(m, pv.add(i));
                d1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, pq.add(i)), v0, d1);
                n1 = _mm512_fmadd_ps(v0, v0, n1);
            }
            (
                _mm512_reduce_add_ps(_mm512_add_ps(d0, d1)),
                _mm512_reduce_add_ps(_mm512_add_ps(n0, n1)),
            )
        }
    }

    /// 8 floats per register, 4 registers per step.
    const LANES: usize = 8;
    const STEP: usize = 4 * LANES;

    /// Squared Euclidean distance over `min(a.len(), b.len())` elements.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2_sq_avx2(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: the caller guarantees AVX2 and FMA. Every load reads 8 floats from offset
        // `i + 8·k` with `i + 8·(k+1) <= n` (the loop conditions), and `n` is at most the length of
        // both slices; `loadu` accepts any alignment.
        let sum = unsafe {
            let (mut s0, mut s1, mut s2, mut s3) = (
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
            );
            while i + STEP <= n {
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                let d1 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + LANES)),
                    _mm256_loadu_ps(pb.add(i + LANES)),
                );
                let d2 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 2 * LANES)),
                    _mm256_loadu_ps(pb.add(i + 2 * LANES)),
                );
                let d3 = _mm256_sub_ps(
                    _mm256_loadu_ps(pa.add(i + 3 * LANES)),
                    _mm256_loadu_ps(pb.add(i + 3 * LANES)),
                );
                s0 = _mm256_fmadd_ps(d0, d0, s0);
                s1 = _mm256_fmadd_ps(d1, d1, s1);
                s2 = _mm256_fmadd_ps(d2, d2, s2);
                s3 = _mm256_fmadd_ps(d3, d3, s3);
                i += STEP;
            }
            while i + LANES <= n {
                let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                s0 = _mm256_fmadd_ps(d, d, s0);
                i += LANES;
            }
            hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)))
        };
        let tail: f32 = a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(x, y)| (x - y) * (x - y))
            .sum();
        sum + tail
    }

    /// Inner product over `min(a.len(), b.len())` elements.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: the caller guarantees AVX2 and FMA. Every load reads 8 floats from offset
        // `i + 8·k` with `i + 8·(k+1) <= n` (the loop conditions), and `n` is at most the length of
        // both slices; `loadu` accepts any alignment.
        let sum = unsafe {
            let (mut s0, mut s1, mut s2, mut s3) = (
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
            );
            while i + STEP <= n {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
                s1 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + LANES)),
                    _mm256_loadu_ps(pb.add(i + LANES)),
                    s1,
                );
                s2 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 2 * LANES)),
                    _mm256_loadu_ps(pb.add(i + 2 * LANES)),
                    s2,
                );
                s3 = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i + 3 * LANES)),
                    _mm256_loadu_ps(pb.add(i + 3 * LANES)),
                    s3,
                );
                i += STEP;
            }
            while i + LANES <= n {
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
                i += LANES;
            }
            hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)))
        };
        let tail: f32 = a[i..n].iter().zip(&b[i..n]).map(|(x, y)| x * y).sum();
        sum + tail
    }

    /// `(q·v, v·v)` over `min(q.len(), v.len())` elements, in one pass.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_and_norm_sq_avx2(q: &[f32], v: &[f32]) -> (f32, f32) {
        debug_assert_eq!(q.len(), v.len());
        let n = q.len().min(v.len());
        let (pq, pv) = (q.as_ptr(), v.as_ptr());
        let mut i = 0;
        // SAFETY: the caller guarantees AVX2 and FMA. Every load reads 8 floats from offset
        // `i + 8·k` with `i + 8·(k+1) <= n` (the loop conditions), and `n` is at most the length of
        // both slices; `loadu` accepts any alignment.
        let (qv, vv) = unsafe {
            let zero = _mm256_setzero_ps();
            let (mut d0, mut d1, mut d2, mut d3) = (zero, zero, zero, zero);
            let (mut n0, mut n1, mut n2, mut n3) = (zero, zero, zero, zero);
            while i + STEP <= n {
                let v0 = _mm256_loadu_ps(pv.add(i));
                let v1 = _mm256_loadu_ps(pv.add(i + LANES));
                let v2 = _mm256_loadu_ps(pv.add(i + 2 * LANES));
                let v3 = _mm256_loadu_ps(pv.add(i + 3 * LANES));
                d0 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i)), v0, d0);
                d1 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i + LANES)), v1, d1);
                d2 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i + 2 * LANES)), v2, d2);
                d3 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i + 3 * LANES)), v3, d3);
                n0 = _mm256_fmadd_ps(v0, v0, n0);
                n1 = _mm256_fmadd_ps(v1, v1, n1);
                n2 = _mm256_fmadd_ps(v2, v2, n2);
                n3 = _mm256_fmadd_ps(v3, v3, n3);
                i += STEP;
            }
            while i + LANES <= n {
                let v0 = _mm256_loadu_ps(pv.add(i));
                d0 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i)), v0, d0);
                n0 = _mm256_fmadd_ps(v0, v0, n0);
                i += LANES;
            }
            (
                hsum(_mm256_add_ps(_mm256_add_ps(d0, d1), _mm256_add_ps(d2, d3))),
                hsum(_mm256_add_ps(_mm256_add_ps(n0, n1), _mm256_add_ps(n2, n3))),
            )
        };
        let (tail_qv, tail_vv) = q[i..n]
            .iter()
            .zip(&v[i..n])
            .fold((0.0f32, 0.0f32), |(qv, vv), (x, y)| {
                (qv + x * y, vv + y * y)
            });
        (qv + tail_qv, vv + tail_vv)
    }

    /// The sum of the 8 lanes of `v`. Register operations only; safe to call where AVX2 and FMA
    /// are enabled, as in the kernels above.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod neon {
    use std::arch::aarch64::*;

    /// 4 floats per register, 4 registers per step.
    const LANES: usize = 4;
    const STEP: usize = 4 * LANES;

    /// The sum of the 4 lanes of `v`. By lane, not `vaddvq_f32`: Miri cannot run that, and this is
    /// the only way to execute these kernels in CI without aarch64 hardware (the cost is once per
    /// call).
    #[inline]
    fn hsum(v: float32x4_t) -> f32 {
        // SAFETY: NEON is enabled at compile time (this module's cfg); register operations only.
        unsafe {
            (vgetq_lane_f32::<0>(v) + vgetq_lane_f32::<1>(v))
                + (vgetq_lane_f32::<2>(v) + vgetq_lane_f32::<3>(v))
        }
    }

    /// Squared Euclidean distance. Invariant: `a.len() == b.len()`.
    #[inline]
    pub(crate) fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: NEON is enabled at compile time (this module's cfg). Every load reads 4 floats
        // from offset `i + 4·k` with `i + 4·(k+1) <= n` (the loop conditions), and `n` is at most
        // the length of both slices; `vld1q_f32` needs only f32 alignment, which a `&[f32]` has.
        let sum = unsafe {
            let zero = vdupq_n_f32(0.0);
            let (mut s0, mut s1, mut s2, mut s3) = (zero, zero, zero, zero);
            while i + STEP <= n {
                let d0 = vsubq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                let d1 = vsubq_f32(vld1q_f32(pa.add(i + LANES)), vld1q_f32(pb.add(i + LANES)));
                let d2 = vsubq_f32(
                    vld1q_f32(pa.add(i + 2 * LANES)),
                    vld1q_f32(pb.add(i + 2 * LANES)),
                );
                let d3 = vsubq_f32(
                    vld1q_f32(pa.add(i + 3 * LANES)),
                    vld1q_f32(pb.add(i + 3 * LANES)),
                );
                s0 = vfmaq_f32(s0, d0, d0);
                s1 = vfmaq_f32(s1, d1, d1);
                s2 = vfmaq_f32(s2, d2, d2);
                s3 = vfmaq_f32(s3, d3, d3);
                i += STEP;
            }
            while i + LANES <= n {
                let d = vsubq_f32(vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                s0 = vfmaq_f32(s0, d, d);
                i += LANES;
            }
            hsum(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)))
        };
        let tail: f32 = a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(x, y)| (x - y) * (x - y))
            .sum();
        sum + tail
    }

    /// Inner product. Invariant: `a.len() == b.len()`.
    #[inline]
    pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        // SAFETY: NEON is enabled at compile time (this module's cfg). Every load reads 4 floats
        // from offset `i + 4·k` with `i + 4·(k+1) <= n` (the loop conditions), and `n` is at most
        // the length of both slices; `vld1q_f32` needs only f32 alignment, which a `&[f32]` has.
        let sum = unsafe {
            let zero = vdupq_n_f32(0.0);
            let (mut s0, mut s1, mut s2, mut s3) = (zero, zero, zero, zero);
            while i + STEP <= n {
                s0 = vfmaq_f32(s0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                s1 = vfmaq_f32(
                    s1,
                    vld1q_f32(pa.add(i + LANES)),
                    vld1q_f32(pb.add(i + LANES)),
                );
                s2 = vfmaq_f32(
                    s2,
                    vld1q_f32(pa.add(i + 2 * LANES)),
                    vld1q_f32(pb.add(i + 2 * LANES)),
                );
                s3 = vfmaq_f32(
                    s3,
                    vld1q_f32(pa.add(i + 3 * LANES)),
                    vld1q_f32(pb.add(i + 3 * LANES)),
                );
                i += STEP;
            }
            while i + LANES <= n {
                s0 = vfmaq_f32(s0, vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)));
                i += LANES;
            }
            hsum(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)))
        };
        let tail: f32 = a[i..n].iter().zip(&b[i..n]).map(|(x, y)| x * y).sum();
        sum + tail
    }

    /// `(q·v, v·v)` in one pass. Invariant: `q.len() == v.len()`.
    #[inline]
    pub(crate) fn dot_and_norm_sq(q: &[f32], v: &[f32]) -> (f32, f32) {
        debug_assert_eq!(q.len(), v.len());
        let n = q.len().min(v.len());
        let (pq, pv) = (q.as_ptr(), v.as_ptr());
        let mut i = 0;
        // SAFETY: NEON is enabled at compile time (this module's cfg). Every load reads 4 floats
        // from offset `i + 4·k` with `i + 4·(k+1) <= n` (the loop conditions), and `n` is at most
        // the length of both slices; `vld1q_f32` needs only f32 alignment, which a `&[f32]` has.
        let (qv, vv) = unsafe {
            let zero = vdupq_n_f32(0.0);
            let (mut d0, mut d1, mut d2, mut d3) = (zero, zero, zero, zero);
            let (mut n0, mut n1, mut n2, mut n3) = (zero, zero, zero, zero);
            while i + STEP <= n {
                let v0 = vld1q_f32(pv.add(i));
                let v1 = vld1q_f32(pv.add(i + LANES));
                let v2 = vld1q_f32(pv.add(i + 2 * LANES));
                let v3 = vld1q_f32(pv.add(i + 3 * LANES));
                d0 = vfmaq_f32(d0, vld1q_f32(pq.add(i)), v0);
                d1 = vfmaq_f32(d1, vld1q_f32(pq.add(i + LANES)), v1);
                d2 = vfmaq_f32(d2, vld1q_f32(pq.add(i + 2 * LANES)), v2);
                d3 = vfmaq_f32(d3, vld1q_f32(pq.add(i + 3 * LANES)), v3);
                n0 = vfmaq_f32(n0, v0, v0);
                n1 = vfmaq_f32(n1, v1, v1);
                n2 = vfmaq_f32(n2, v2, v2);
                n3 = vfmaq_f32(n3, v3, v3);
                i += STEP;
            }
            while i + LANES <= n {
                let v0 = vld1q_f32(pv.add(i));
                d0 = vfmaq_f32(d0, vld1q_f32(pq.add(i)), v0);
                n0 = vfmaq_f32(n0, v0, v0);
                i += LANES;
            }
            (
                hsum(vaddq_f32(vaddq_f32(d0, d1), vaddq_f32(d2, d3))),
                hsum(vaddq_f32(vaddq_f32(n0, n1), vaddq_f32(n2, n3))),
            )
        };
        let (tail_qv, tail_vv) = q[i..n]
            .iter()
            .zip(&v[i..n])
            .fold((0.0f32, 0.0f32), |(qv, vv), (x, y)| {
                (qv + x * y, vv + y * y)
            });
        (qv + tail_qv, vv + tail_vv)
    }
}

/// The SIMD tests are ignored under Miri by default (slow), but Miri can run them, checking that
/// every load is in bounds: on x86-64 with `RUSTFLAGS="-C target-feature=+avx2,+fma"
/// cargo +nightly miri test --lib distance -- --include-ignored`, and the NEON kernels (without
/// aarch64 hardware) with `--target aarch64-unknown-linux-gnu` added.
#[cfg(test)]
mod tests {
    use super::super::scalar;
    use super::super::scalar::tests::{close, config, pair, reference, scales};
    use proptest::prelude::*;

    /// Checks one implementation of the three kernels against the f64 reference and the scalar
    /// oracle, on `q` and `v`.
    fn check(
        l2_sq: impl Fn(&[f32], &[f32]) -> f32,
        dot: impl Fn(&[f32], &[f32]) -> f32,
        fused: impl Fn(&[f32], &[f32]) -> (f32, f32),
        q: &[f32],
        v: &[f32],
    ) -> Result<(), TestCaseError> {
        let (l2, qv, vv) = reference(q, v);
        let (s_l2, s_qv, s_vv) = scales(q, v);
        // Between two f32 sums of the same terms the error bound doubles.
        let got = l2_sq(q, v);
        prop_assert!(close(got, l2, s_l2), "l2_sq {got} vs reference {l2}");
        prop_assert!(
            close(got, f64::from(scalar::l2_sq(q, v)), 2.0 * s_l2),
            "l2_sq {got} vs scalar"
        );
        let got = dot(q, v);
        prop_assert!(close(got, qv, s_qv), "dot {got} vs reference {qv}");
        prop_assert!(
            close(got, f64::from(scalar::dot(q, v)), 2.0 * s_qv),
            "dot {got} vs scalar"
        );
        let (got_qv, got_vv) = fused(q, v);
        let (want_qv, want_vv) = scalar::dot_and_norm_sq(q, v);
        prop_assert!(
            close(got_qv, qv, s_qv),
            "fused q·v {got_qv} vs reference {qv}"
        );
        prop_assert!(
            close(got_vv, vv, s_vv),
            "fused v·v {got_vv} vs reference {vv}"
        );
        prop_assert!(
            close(got_qv, f64::from(want_qv), 2.0 * s_qv),
            "fused q·v {got_qv} vs scalar"
        );
        prop_assert!(
            close(got_vv, f64::from(want_vv), 2.0 * s_vv),
            "fused v·v {got_vv} vs scalar"
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(config())]

        /// The dispatched kernels (whatever this CPU runs) against the oracles.
        #[test]
        #[cfg_attr(miri, ignore)]
        fn dispatched_matches_scalar((qa, oq, va, ov, len) in pair()) {
            let (q, v) = (&qa[oq..oq + len], &va[ov..ov + len]);
            check(super::l2_sq, super::dot, super::dot_and_norm_sq, q, v)?;
        }

        /// The AVX2 kernels called directly, so they are tested even if dispatch picked another.
        #[cfg(target_arch = "x86_64")]
        #[test]
        #[cfg_attr(miri, ignore)]
        fn avx2_matches_scalar((qa, oq, va, ov, len) in pair()) {
            if !super::x86::has_avx2_fma() {
                return Ok(());
            }
            let k = &super::x86::AVX2_FMA;
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            let l2_sq = |a: &[f32], b: &[f32]| unsafe { (k.l2_sq)(a, b) };
            // SAFETY: as above.
            let dot = |a: &[f32], b: &[f32]| unsafe { (k.dot)(a, b) };
            // SAFETY: as above.
            let fused = |a: &[f32], b: &[f32]| unsafe { (k.dot_and_norm_sq)(a, b) };
            let (q, v) = (&qa[oq..oq + len], &va[ov..ov + len]);
            check(l2_sq, dot, fused, q, v)?;
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// The AVX-512 kernels called directly (on CPUs that have AVX-512F).
        #[cfg(target_arch = "x86_64")]
        #[test]
        #[cfg_attr(miri, ignore)]
        fn avx512_matches_scalar((qa, oq, va, ov, len) in pair()) {
            if !super::x86::has_avx512f() {
                return Ok(());
            }
            let k = &super::x86::AVX512;
            // SAFETY: the CPU has AVX-512F (checked just above).
            let l2_sq = |a: &[f32], b: &[f32]| unsafe { (k.l2_sq)(a, b) };
            // SAFETY: as above.
            let dot = |a: &[f32], b: &[f32]| unsafe { (k.dot)(a, b) };
            // SAFETY: as above.
            let fused = |a: &[f32], b: &[f32]| unsafe { (k.dot_and_norm_sq)(a, b) };
            let (q, v) = (&qa[oq..oq + len], &va[ov..ov + len]);
            check(l2_sq, dot, fused, q, v)?;
        }
    }

    /// Exact integer inputs: every order of summation gives the same result, so the SIMD kernels
    /// must agree with the scalar ones bit for bit, through the unrolled, one-register and tail paths.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn exact_on_integers() {
        for len in 0..=100 {
            let a: Vec<f32> = (0..len).map(|i| (i % 7) as f32 - 3.0).collect();
            let b: Vec<f32> = (0..len).map(|i| (i % 5) as f32).collect();
            assert_eq!(super::l2_sq(&a, &b), scalar::l2_sq(&a, &b), "len {len}");
            assert_eq!(super::dot(&a, &b), scalar::dot(&a, &b), "len {len}");
            assert_eq!(
                super::dot_and_norm_sq(&a, &b),
                scalar::dot_and_norm_sq(&a, &b),
                "len {len}"
            );
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

    #[test]
    #[cfg_attr(miri, ignore)]
    fn dispatch_picks_simd_when_available() {
        let name = super::kernel_name();
        println!("distance kernels in use: {name}");
        #[cfg(target_arch = "x86_64")]
        {
            let want = if super::x86::has_avx512f() {
                "avx512f"
            } else if super::x86::has_avx2_fma() {
                "avx2+fma"
            } else {
                "scalar"
            };
            assert_eq!(name, want);
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        assert_eq!(name, "neon");
    }
}
