//! Distance under each [`Metric`], and the vector checks that go with it.
//!
//! Vectors are kept in two forms. The *stored form* is exactly what the user inserted (what `get`
//! returns). The *search form* is what the graph compares: the same vector, except under cosine,
//! where it is scaled to unit length so that `1 − cos` is `1 − a·b` and no norm is recomputed per
//! pair.
//!
//! # The summation order: the same bits on every CPU
//!
//! Every kernel, scalar or SIMD, on every CPU, sums in one fixed order, so that the same inserts
//! with the same seed build the same graph and give the same answers, bit for bit, on an AVX-512
//! server, an AVX2 laptop, an ARM machine or with the scalar fallback (a failure seen on one
//! reproduces on the others). For `n` pairs `(a[i], b[i])`:
//!
//! 1. [`LANES`] partial sums ("lanes"), each starting at +0.0.
//! 2. For `i` = 0, 1, … in order, lane `i mod LANES` takes one fused multiply-add (one rounding):
//!    `lane = fma(d, d, lane)` with `d = a[i] − b[i]` (rounded) for [`l2_sq`],
//!    `lane = fma(a[i], b[i], lane)` for [`dot`].
//! 3. If `n` is not a multiple of `LANES`, the pairs up to the next multiple are `(0, 0)`: each
//!    lane after the last pair takes `fma(0, 0, lane)`. That is `lane + 0.0`, which changes
//!    nothing except a lane holding −0.0 (a dot product whose terms underflowed to −0), which
//!    becomes +0.0. SIMD kernels get this from zero-filled loads of the last, partial step.
//! 4. The lanes are added pairwise: lane `j` += lane `j + LANES/2` for every `j < LANES/2`, then
//!    lane `j` += lane `j + LANES/4` for `j < LANES/4`, and so on down to lane 0 += lane 1; the
//!    result is lane 0.
//!
//! [`dot_and_norm_sq`] is two [`dot`]s, and the cosine paths use only [`dot`] and plain,
//! element-wise float operations, so every distance and search form is covered. The one thing
//! that may differ between CPU architectures is the payload of a NaN (x86 and ARM make different
//! default NaNs), which only arises when a dot product overflows to both +∞ and −∞.
//!
//! The kernels are tested against the scalar ones for equal bits (`simd.rs`); setting
//! `HNSWDB_SCALAR_KERNELS=1` makes a process use the scalar kernels only (see [`simd`]).

pub(crate) mod codes;
mod scalar;
pub(crate) mod simd;

use crate::error::{Error, Result};
use crate::options::Metric;

/// The lanes of the summation order (above). 64 = four AVX-512 registers, eight AVX2 ones or
/// sixteen NEON ones: enough independent accumulators for each to hide the FMA latency.
pub(crate) const LANES: usize = 64;

/// Squared Euclidean distance. Invariant: `a.len() == b.len()`.
#[inline]
pub(crate) fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    simd::l2_sq(a, b)
}

/// Inner product. Invariant: `a.len() == b.len()`.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    simd::dot(a, b)
}

/// `(q·v, v·v)`: two [`dot`]s, so each in the summation order above (the one caller, the
/// stored-form cosine of [`Metric::distance`], is not on any search path).
/// Invariant: `q.len() == v.len()`.
#[inline]
pub(crate) fn dot_and_norm_sq(q: &[f32], v: &[f32]) -> (f32, f32) {
    (dot(q, v), dot(v, v))
}

pub(crate) use simd::prefetch;

/// Dimensions up to which `stored_distance` scales a cosine vector on the stack.
const STACK_FLOATS: usize = 1024;

impl Metric {
    /// The distance between two vectors as inserted (stored form): squared L2, `1 − cos` or
    /// `1 − dot`. Smaller is closer. Both slices must have the same length.
    ///
    /// ```
    /// use hnswdb::Metric;
    /// assert_eq!(Metric::L2.distance(&[0.0, 0.0], &[3.0, 4.0]), 25.0);
    /// assert!(Metric::Cosine.distance(&[1.0, 0.0], &[2.0, 0.0]).abs() < 1e-6);
    /// ```
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2_sq(a, b),
            Metric::Dot => 1.0 - dot(a, b),
            Metric::Cosine => {
                let (ab, bb) = dot_and_norm_sq(a, b);
                let aa = dot(a, a);
                1.0 - ab / (aa.sqrt() * bb.sqrt())
            }
        }
    }

    /// Distance between two vectors in search form.
    #[inline]
    pub(crate) fn search_distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2_sq(a, b),
            Metric::Cosine | Metric::Dot => 1.0 - dot(a, b),
        }
    }

    /// Distance from a query in search form to a vector in stored form (read from the file).
    #[inline]
    pub(crate) fn stored_distance(self, query: &[f32], stored: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2_sq(query, stored),
            Metric::Dot => 1.0 - dot(query, stored),
            Metric::Cosine => {
                // Scaled exactly as `search_form_into` does, so that a vector read from the file
                // gives the very bits of the cached one: answers do not depend on what is
                // cached (an index still loading, or with no layer-0 cache).
                let inv = 1.0 / dot(stored, stored).sqrt();
                let mut buf = [0f32; STACK_FLOATS];
                let mut heap;
                let scaled = if stored.len() <= STACK_FLOATS {
                    &mut buf[..stored.len()]
                } else {
                    heap = vec![0f32; stored.len()];
                    &mut heap[..]
                };
                for (s, &x) in scaled.iter_mut().zip(stored) {
                    *s = x * inv;
                }
                1.0 - dot(query, scaled)
            }
        }
    }

    /// Writes the search form of `vector` (stored form) into `out`.
    pub(crate) fn search_form_into(self, vector: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(vector);
        if self == Metric::Cosine {
            let inv = 1.0 / dot(vector, vector).sqrt();
            out.iter_mut().for_each(|x| *x *= inv);
        }
    }

    /// The search form of `vector` (stored form).
    pub(crate) fn search_form(self, vector: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(vector.len());
        self.search_form_into(vector, &mut out);
        out
    }

    /// Checks that `vector` can be inserted into or searched in a `dim`-dimensional index under
    /// this metric: the error an insert or a search would give, without touching an index (to
    /// check a whole batch before writing any of it, say).
    ///
    /// ```
    /// use hnswdb::{Error, Metric};
    /// assert!(Metric::L2.validate(2, &[1.0, 0.0]).is_ok());
    /// assert!(matches!(Metric::L2.validate(3, &[1.0, 0.0]), Err(Error::Dimension { .. })));
    /// assert!(matches!(Metric::Cosine.validate(2, &[0.0, 0.0]), Err(Error::InvalidVector { .. })));
    /// assert!(matches!(Metric::L2.validate(1, &[f32::NAN]), Err(Error::InvalidVector { .. })));
    /// ```
    pub fn validate(self, dim: usize, vector: &[f32]) -> Result<()> {
        if vector.len() != dim {
            return Err(Error::Dimension {
                expected: dim,
                got: vector.len(),
            });
        }
        // One pass without an early exit, which the compiler vectorizes: two early-exit scans
        // took 0.1 µs of every 128-d query. Which of the two it is, only when one is there.
        if !vector.iter().fold(true, |finite, x| finite & x.is_finite()) {
            let reason = match vector.iter().any(|x| x.is_nan()) {
                true => "it contains NaN",
                false => "it contains infinity",
            };
            return Err(Error::InvalidVector { reason });
        }
        if self == Metric::Cosine {
            let norm_sq = dot(vector, vector);
            if norm_sq == 0.0 {
                return Err(Error::InvalidVector {
                    reason: "it is all zeros, which has no direction under cosine",
                });
            }
            if !norm_sq.is_finite() {
                return Err(Error::InvalidVector {
                    reason: "its norm overflows f32",
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reason names what is there, wherever it is: NaN first, then infinity.
    #[test]
    fn validate_finds_nan_and_infinity_at_every_position() {
        let reason = |v: &[f32]| match Metric::L2.validate(v.len(), v) {
            Err(Error::InvalidVector { reason }) => Some(reason),
            Ok(()) => None,
            Err(e) => panic!("{e:?}"),
        };
        for len in [1, 7, 16, 128, 131] {
            let fine: Vec<f32> = (0..len).map(|i| f32::MAX / (i + 1) as f32).collect();
            assert_eq!(reason(&fine), None);
            assert_eq!(reason(&vec![f32::MIN_POSITIVE / 2.0; len]), None);
            for at in 0..len {
                for (bad, expected) in [
                    (f32::NAN, "it contains NaN"),
                    (-f32::NAN, "it contains NaN"),
                    (f32::INFINITY, "it contains infinity"),
                    (f32::NEG_INFINITY, "it contains infinity"),
                ] {
                    let mut v = fine.clone();
                    v[at] = bad;
                    assert_eq!(reason(&v), Some(expected), "len {len}, at {at}");
                }
                let mut both = fine.clone();
                both[at] = f32::INFINITY;
                both[len - 1 - at] = f32::NAN;
                if len > 1 && at != len - 1 - at {
                    assert_eq!(reason(&both), Some("it contains NaN"));
                }
            }
        }
    }
}
