//! `Binary`: one bit per dimension after a fixed random rotation, with the asymmetric estimator
//! of RaBitQ (Gao & Long, "RaBitQ: Quantizing High-Dimensional Vectors with a Theoretical Error
//! Bound for Approximate Nearest Neighbor Search", SIGMOD 2024), without its centroid, so that
//! nothing is trained.
//!
//! The rotation is three rounds of random signs followed by a normalised Walsh–Hadamard
//! transform, over the dimension padded with zeros to `p`, the next power of two (at least 64):
//! orthonormal, `O(p log p)`, and fixed by `p` alone (the signs come from a constant seed), so
//! every index of that dimension codes alike. It spreads each coordinate's energy over all of
//! them, so that the signs of the rotated vector carry its direction even when the raw
//! coordinates are skewed.
//!
//! A vector `x` (search form) rotated to `x'` is coded as the signs `s_i` of `x'` (bit set for
//! `x'_i ≥ 0`), its norm `‖x‖` and RaBitQ's correction `f = Σ|x'_i| / (√p·‖x‖)` (the cosine
//! between `x'` and its sign vector). For a query `q` rotated to `q'`,
//! `q·x ≈ ‖x‖ · (Σ s_i q'_i) / (√p · f)`. The query is quantized to 4 bits per coordinate,
//! `q'_i ≈ lo + Δ·u_i`, so `Σ_{s_i = +1} q'_i ≈ lo·|s| + Δ·Σ_j 2^j·popcount(s ∧ plane_j)`:
//! five popcounts per word ([`plane_popcounts`](crate::distance::codes::plane_popcounts)).
//!
//! Row layout (`u64` words; little-endian bytes in the `codes` table):
//! - word 0: `‖x‖` (low half), `f` (high half), as `f32` bits;
//! - word 1: the number of set bits (low half, as an integer), 0;
//! - words 2..: the `p` sign bits, bit `i % 64` of word `2 + i / 64` for coordinate `i`.

use super::{pack, unpack, Prepared};
use crate::distance::codes::plane_popcounts;
use crate::distance::dot;
use crate::options::Metric;

/// Words before the bits of the code.
const HEAD: usize = 2;
/// Rounds of signs + Hadamard transform in the rotation.
const ROUNDS: usize = 3;
/// The seed of the rotation's signs: a constant, so that the rotation depends on `p` only.
const ROTATION_SEED: u64 = 0x6873_6e77_6462_5251;

/// The `Binary` quantizer of one index.
#[derive(Debug)]
pub(crate) struct Binary {
    metric: Metric,
    dim: usize,
    /// The padded dimension: a power of two, at least 64.
    p: usize,
    /// `ROUNDS × p` signs of the rotation, as ±1.
    signs: Vec<f32>,
}

impl Binary {
    pub(crate) fn new(metric: Metric, dim: usize) -> Binary {
        let p = dim.next_power_of_two().max(64);
        let mut state = ROTATION_SEED;
        let signs = (0..ROUNDS * p)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                if (z ^ (z >> 31)) & 1 == 0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        Binary {
            metric,
            dim,
            p,
            signs,
        }
    }

    pub(crate) fn words(&self) -> usize {
        HEAD + self.p / 64
    }

    /// `v` (`dim` long) rotated into `out` (`p` long).
    fn rotate(&self, v: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(&v[..self.dim.min(v.len())]);
        out.resize(self.p, 0.0);
        let norm = 1.0 / (self.p as f32).sqrt();
        for round in self.signs.chunks_exact(self.p) {
            for (x, s) in out.iter_mut().zip(round) {
                *x *= s;
            }
            hadamard(out);
            out.iter_mut().for_each(|x| *x *= norm);
        }
    }

    pub(crate) fn encode(&self, x: &[f32], out: &mut [u64]) {
        let mut rotated = Vec::with_capacity(self.p);
        self.rotate(x, &mut rotated);
        out.fill(0);
        let mut abs_sum = 0.0f64;
        let mut ones = 0u32;
        for (i, &v) in rotated.iter().enumerate() {
            abs_sum += f64::from(v.abs());
            if v >= 0.0 {
                out[HEAD + i / 64] |= 1 << (i % 64);
                ones += 1;
            }
        }
        let norm = dot(x, x).sqrt();
        let f = if norm > 0.0 {
            (abs_sum / ((self.p as f64).sqrt() * f64::from(norm))) as f32
        } else {
            1.0
        };
        out[0] = pack(norm, f);
        out[1] = u64::from(ones);
    }

    pub(crate) fn prepare(&self, q: &[f32], out: &mut Prepared) {
        let mut rotated = std::mem::take(&mut out.rotated);
        self.rotate(q, &mut rotated);
        let (lo, hi) = rotated
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let delta = (hi - lo) / 15.0;
        let inv = if delta > 0.0 { 1.0 / delta } else { 0.0 };
        let words = self.p / 64;
        out.planes.clear();
        out.planes.resize(4 * words, 0);
        let mut units = 0u64;
        for (i, &v) in rotated.iter().enumerate() {
            let u = ((v - lo) * inv).round().clamp(0.0, 15.0) as u64;
            units += u;
            for bit in 0..4 {
                out.planes[bit * words + i / 64] |= ((u >> bit) & 1) << (i % 64);
            }
        }
        // Σ q'_i as quantized, so that the estimate's terms share one rounding.
        let sum = lo * self.p as f32 + delta * units as f32;
        let norm_sq = if self.metric == Metric::L2 {
            dot(q, q)
        } else {
            0.0
        };
        out.consts = [lo, delta, sum, norm_sq];
        out.rotated = rotated;
    }

    #[inline]
    pub(crate) fn estimate(&self, q: &Prepared, row: &[u64]) -> f32 {
        let (norm, f) = unpack(row[0]);
        let ones = row[1] as u32 as f32;
        let [lo, delta, sum, q_sq] = q.consts;
        let counts = plane_popcounts(&row[HEAD..], &q.planes);
        let weighted = counts[0] as f32
            + 2.0 * counts[1] as f32
            + 4.0 * counts[2] as f32
            + 8.0 * counts[3] as f32;
        let positive = lo * ones + delta * weighted;
        let signed = 2.0 * positive - sum;
        let dot = norm * signed / ((self.p as f32).sqrt() * f);
        match self.metric {
            Metric::L2 => q_sq + norm * norm - 2.0 * dot,
            Metric::Cosine | Metric::Dot => 1.0 - dot,
        }
    }
}

/// The unnormalised fast Walsh–Hadamard transform of `v` in place. Invariant: `v.len()` is a
/// power of two.
fn hadamard(v: &mut [f32]) {
    let n = v.len();
    let mut h = 1;
    while h < n {
        for block in v.chunks_exact_mut(2 * h) {
            let (a, b) = block.split_at_mut(h);
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                let (s, d) = (*x + *y, *x - *y);
                *x = s;
                *y = d;
            }
        }
        h *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotation_keeps_norms_and_inner_products() {
        let codec = Binary::new(Metric::L2, 100);
        let a = crate::quant::tests::vector(1, 100, 0.3);
        let b = crate::quant::tests::vector(2, 100, -0.1);
        let (mut ra, mut rb) = (Vec::new(), Vec::new());
        codec.rotate(&a, &mut ra);
        codec.rotate(&b, &mut rb);
        assert_eq!(ra.len(), 128);
        let close = |x: f32, y: f32| (x - y).abs() <= 1e-4 * x.abs().max(1.0);
        assert!(close(dot(&ra, &ra), dot(&a, &a)));
        assert!(close(dot(&ra, &rb), dot(&a, &b)));
    }
}
