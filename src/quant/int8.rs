//! `Int8`: one byte per dimension, with a per-vector offset and step (in the spirit of LVQ,
//! Aguerrebere et al., "Similarity search in the blink of an eye with compressed indices",
//! VLDB 2023, without its global mean, so nothing is trained).
//!
//! A vector `x` (search form) is coded as `lo = min x`, `step = (max x − lo) / 255` and
//! `c_i = round((x_i − lo) / step)`, so `x_i ≈ lo + step·c_i`. A query `q` is coded
//! symmetrically, `q_i ≈ s·b_i` with `b_i` in −127..=127, so that
//! `q·x ≈ lo·Σq + step·s·Σ b_i c_i`: one exact integer dot product
//! ([`dot_u8_i8`](crate::distance::codes::dot_u8_i8)). Under L2 the stored `‖x‖²` is exact, so
//! only the cross term is estimated: `‖q − x‖² ≈ ‖q‖² + ‖x‖² − 2 q·x`.
//!
//! Row layout (`u64` words; little-endian bytes in the `codes` table):
//! - word 0: `lo` (low half), `step` (high half), as `f32` bits;
//! - word 1: `‖x‖²` (low half; L2 only, else 0), 0;
//! - words 2..: the `dim` bytes `c_i`, in order, zero-padded to a whole word.

use super::{pack, unpack, Prepared};
use crate::distance::codes::dot_u8_i8;
use crate::distance::dot;
use crate::options::Metric;

/// Words before the bytes of the code.
const HEAD: usize = 2;

/// The `Int8` quantizer of one index.
#[derive(Debug)]
pub(crate) struct Int8 {
    metric: Metric,
    dim: usize,
}

impl Int8 {
    pub(crate) fn new(metric: Metric, dim: usize) -> Int8 {
        Int8 { metric, dim }
    }

    pub(crate) fn words(&self) -> usize {
        HEAD + self.dim.div_ceil(8)
    }

    pub(crate) fn encode(&self, x: &[f32], out: &mut [u64]) {
        let (lo, hi) = x
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let (lo, step) = if x.is_empty() {
            (0.0, 0.0)
        } else {
            (lo, (hi - lo) / 255.0)
        };
        let inv = if step > 0.0 { 1.0 / step } else { 0.0 };
        out.fill(0);
        out[0] = pack(lo, step);
        if self.metric == Metric::L2 {
            out[1] = pack(dot(x, x), 0.0);
        }
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out[HEAD..]);
        for (c, &v) in bytes.iter_mut().zip(x) {
            *c = ((v - lo) * inv).round().clamp(0.0, 255.0) as u8;
        }
    }

    pub(crate) fn prepare(&self, q: &[f32], out: &mut Prepared) {
        let max = q.iter().fold(0f32, |m, &v| m.max(v.abs()));
        let scale = max / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        out.bytes.clear();
        out.bytes.extend(
            q.iter()
                .map(|&v| (v * inv).round().clamp(-127.0, 127.0) as i8),
        );
        let sum: f32 = q.iter().sum();
        let norm_sq = if self.metric == Metric::L2 {
            dot(q, q)
        } else {
            0.0
        };
        out.consts = [scale, sum, norm_sq, 0.0];
    }

    #[inline]
    pub(crate) fn estimate(&self, q: &Prepared, row: &[u64]) -> f32 {
        let (lo, step) = unpack(row[0]);
        let codes: &[u8] = bytemuck::cast_slice(&row[HEAD..]);
        let [scale, sum, q_sq, _] = q.consts;
        let ints = dot_u8_i8(&codes[..self.dim], &q.bytes) as f32;
        let dot = lo * sum + step * scale * ints;
        match self.metric {
            Metric::L2 => q_sq + unpack(row[1]).0 - 2.0 * dot,
            Metric::Cosine | Metric::Dot => 1.0 - dot,
        }
    }
}
