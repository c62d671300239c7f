//! Quantized vectors: compact codes that a search walks layer 0 on, before it re-ranks the best
//! candidates with the exact `f32` vectors ([`SearchParams::rescore`](crate::SearchParams::rescore)).
//!
//! Both quantizers need no training and never drift: a code depends only on its own vector (and,
//! for [`Binary`](crate::Quantization::Binary), on a rotation fixed by the dimension), so an
//! index takes inserts forever with the codes as good as on the first day.
//!
//! A code is a row of `u64` words ([`Codec::words`]), the same in the cache and, as
//! little-endian bytes, in the `codes` table; [`int8`] and [`binary`] give each layout. A query
//! is prepared once per search ([`Codec::prepare`]); each estimate then costs one integer kernel
//! of [`crate::distance::codes`] and a few float operations. Estimates only steer the walk: every
//! distance a search returns is the exact one.

pub(crate) mod binary;
pub(crate) mod int8;

use crate::error::{Error, Result};
use crate::options::{Metric, Quantization};

/// The quantizer of one index: its kind, metric and dimension, and the layout of its codes.
#[derive(Debug)]
pub(crate) enum Codec {
    Int8(int8::Int8),
    Binary(binary::Binary),
}

/// A query prepared for estimates against codes: one per search, reused across searches on a
/// thread.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// Int8: the query's codes; Binary unused.
    pub bytes: Vec<i8>,
    /// Binary: the four bit planes of the 4-bit query; Int8 unused.
    pub planes: Vec<u64>,
    /// Binary: the rotated query; Int8 unused. Scratch for the rotation.
    pub rotated: Vec<f32>,
    /// Per-kind constants of the query (scales, sums, norm).
    pub consts: [f32; 4],
}

/// With `Binary`, a search re-ranks this many times `ef` candidates unless told, so that the
/// walk keeps that many (Qdrant's "oversampling"): at a given `ef`, Binary then finds what
/// `None` finds. On gen1536 (50,000 × 1,536, 10 clusters) re-ranking `ef` left recall@10 0.035
/// below `None` at `ef` 32 and 0.0065 at `ef` 64; twice `ef`, above it at every `ef` (BENCHMARKS.md,
/// "Exact top layers"). It costs what a search at twice the `ef` costs: the queries/s at a
/// given recall are those of the same walk, only the `ef` that reaches it is smaller.
pub(crate) const BINARY_OVERSAMPLING: usize = 2;

impl Codec {
    /// The codec of an index with `quantization`, `metric` and `dim`; `None` for
    /// [`Quantization::None`].
    pub(crate) fn new(quantization: Quantization, metric: Metric, dim: usize) -> Option<Codec> {
        match quantization {
            Quantization::None => None,
            Quantization::Int8 => Some(Codec::Int8(int8::Int8::new(metric, dim))),
            Quantization::Binary => Some(Codec::Binary(binary::Binary::new(metric, dim))),
        }
    }

    /// How many candidates a search for `k` at `ef` re-ranks unless told
    /// ([`SearchParams::rescore`](crate::SearchParams::rescore)). Int8 estimates are close
    /// enough that `k + ⌈k/2⌉` re-ranked gives the recall of re-ranking all `ef`: with k 10, 15
    /// matched it to 0.0001 at ef 16 to 128 on bigann10k, minilm50k and gen1536, 12 too at ef
    /// 16 to 64, and 10 fell short by up to 0.012 (BENCHMARKS.md, "AVX-512 code kernels"). Each
    /// re-ranked vector outside the cache is a read from the file (about 2 µs there), so fewer
    /// is faster: with codes and lists alone in memory (minilm50k, ef 24, one run each) rescore 14 and
    /// 16 gave 17,761 and 16,221 queries/s against 14,635 at 20, at the same recall.
    /// Binary's estimates are coarser: [`BINARY_OVERSAMPLING`] times `ef`, which widens the
    /// walk to as many.
    pub(crate) fn default_rescore(&self, k: usize, ef: usize) -> usize {
        match self {
            Codec::Int8(_) => ef.min(k.saturating_add(k.div_ceil(2))),
            Codec::Binary(_) => ef.saturating_mul(BINARY_OVERSAMPLING),
        }
    }

    /// Words of one code row.
    pub(crate) fn words(&self) -> usize {
        match self {
            Codec::Int8(c) => c.words(),
            Codec::Binary(c) => c.words(),
        }
    }

    /// Bytes of one code row in the file and in the cache.
    pub(crate) fn row_bytes(&self) -> usize {
        self.words() * 8
    }

    /// Writes the code of `vector` (search form) into `out` (`words()` long).
    pub(crate) fn encode(&self, vector: &[f32], out: &mut [u64]) {
        debug_assert_eq!(out.len(), self.words());
        match self {
            Codec::Int8(c) => c.encode(vector, out),
            Codec::Binary(c) => c.encode(vector, out),
        }
    }

    /// The code of `vector` (search form).
    pub(crate) fn code(&self, vector: &[f32]) -> Vec<u64> {
        let mut out = vec![0; self.words()];
        self.encode(vector, &mut out);
        out
    }

    /// Prepares `query` (search form) for [`estimate`](Self::estimate).
    pub(crate) fn prepare(&self, query: &[f32], out: &mut Prepared) {
        match self {
            Codec::Int8(c) => c.prepare(query, out),
            Codec::Binary(c) => c.prepare(query, out),
        }
    }

    /// The estimated distance from the prepared query to the vector whose code is `row`.
    #[inline]
    pub(crate) fn estimate(&self, query: &Prepared, row: &[u64]) -> f32 {
        match self {
            Codec::Int8(c) => c.estimate(query, row),
            Codec::Binary(c) => c.estimate(query, row),
        }
    }

    /// Reads a code row from its stored little-endian bytes into `out`; a row of another length
    /// is damage.
    pub(crate) fn read_row(&self, bytes: &[u8], id: u32, out: &mut Vec<u64>) -> Result<()> {
        if bytes.len() != self.row_bytes() {
            return Err(Error::corrupt(
                format!(
                    "a code of {} bytes, the index's codes have {}",
                    bytes.len(),
                    self.row_bytes()
                ),
                format!("codes[{id}]"),
            ));
        }
        out.clear();
        out.extend(
            bytes
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().expect("8-byte chunk"))),
        );
        Ok(())
    }
}

/// The little-endian bytes of a code row, as the `codes` table stores it.
pub(crate) fn row_to_bytes(row: &[u64]) -> Vec<u8> {
    row.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Two `f32` packed in one word, `a` in the low half.
#[inline]
pub(crate) fn pack(a: f32, b: f32) -> u64 {
    u64::from(a.to_bits()) | (u64::from(b.to_bits()) << 32)
}

/// The two `f32` of a [`pack`]ed word.
#[inline]
pub(crate) fn unpack(word: u64) -> (f32, f32) {
    (
        f32::from_bits(word as u32),
        f32::from_bits((word >> 32) as u32),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random vector (splitmix64).
    pub(super) fn vector(seed: u64, dim: usize, offset: f32) -> Vec<f32> {
        let mut s = seed;
        (0..dim)
            .map(|_| {
                s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0 + offset
            })
            .collect()
    }

    /// Mean absolute error of the estimates, relative to the spread of the true distances.
    fn relative_error(q: Quantization, metric: Metric, dim: usize, offset: f32) -> f32 {
        let codec = Codec::new(q, metric, dim).unwrap();
        let mut prepared = Prepared::default();
        let (mut err, mut spread) = (0.0, 0.0);
        for i in 0..50 {
            let query = metric.search_form(&vector(1000 + i, dim, offset));
            codec.prepare(&query, &mut prepared);
            let mean: f32 = (0..40)
                .map(|j| {
                    let v = metric.search_form(&vector(j, dim, offset));
                    metric.search_distance(&query, &v)
                })
                .sum::<f32>()
                / 40.0;
            for j in 0..40 {
                let v = metric.search_form(&vector(j, dim, offset));
                let exact = metric.search_distance(&query, &v);
                let est = codec.estimate(&prepared, &codec.code(&v));
                assert!(est.is_finite(), "{q:?} {metric:?}: {est}");
                err += (est - exact).abs();
                spread += (exact - mean).abs();
            }
        }
        err / spread
    }

    #[test]
    fn int8_estimates_are_close() {
        for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
            for dim in [1, 7, 128, 384] {
                for offset in [0.0, 3.0] {
                    let e = relative_error(Quantization::Int8, metric, dim, offset);
                    assert!(e < 0.05, "{metric:?} dim {dim} offset {offset}: {e}");
                }
            }
        }
    }

    /// RaBitQ's bound: the error of an estimated inner product of unit vectors is
    /// `O(1/√p)`. Measured mean errors over random unit vectors: about `0.6/√p`.
    #[test]
    fn binary_estimates_are_within_the_rabitq_bound() {
        for dim in [64, 384, 1536] {
            let codec = Codec::new(Quantization::Binary, Metric::Cosine, dim).unwrap();
            let p = dim.next_power_of_two() as f32;
            let mut prepared = Prepared::default();
            let mut err = 0.0;
            let mut worst = 0f32;
            for i in 0..50 {
                let query = Metric::Cosine.search_form(&vector(1000 + i, dim, 0.0));
                codec.prepare(&query, &mut prepared);
                for j in 0..40 {
                    let v = Metric::Cosine.search_form(&vector(j, dim, 0.0));
                    let exact = Metric::Cosine.search_distance(&query, &v);
                    let e = (codec.estimate(&prepared, &codec.code(&v)) - exact).abs();
                    err += e;
                    worst = worst.max(e);
                }
            }
            let mean = err / 2000.0 * p.sqrt();
            eprintln!(
                "dim {dim}: mean error {mean:.3}/√p, worst {:.3}/√p",
                worst * p.sqrt()
            );
            assert!(mean < 1.0 && worst * p.sqrt() < 5.0, "dim {dim}");
        }
    }

    #[test]
    fn rows_round_trip_through_bytes() {
        let codec = Codec::new(Quantization::Int8, Metric::L2, 13).unwrap();
        let row = codec.code(&vector(3, 13, 0.5));
        let mut back = Vec::new();
        codec.read_row(&row_to_bytes(&row), 0, &mut back).unwrap();
        assert_eq!(back, row);
        let short = &row_to_bytes(&row)[1..];
        assert!(codec.read_row(short, 0, &mut back).is_err());
        assert_eq!(unpack(pack(1.5, -2.0)), (1.5, -2.0));
    }
}
