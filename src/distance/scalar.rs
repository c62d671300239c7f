//! Plain-Rust kernels: the fallback on every CPU and the oracle the SIMD kernels are tested against.
//!
//! Each kernel keeps `LANES` independent partial sums, so LLVM can vectorise the loop (it may not
//! reorder one float sum, but it may map separate sums onto SIMD lanes) and the additions do not
//! wait on each other. The lengths are equal (Invariant); if they are not, the extra elements of
//! the longer slice are ignored, as `zip` would.

/// Partial sums kept per kernel: four independent SSE registers, enough to hide the add latency.
const LANES: usize = 16;

/// Squared Euclidean distance. Invariant: `a.len() == b.len()`.
pub(crate) fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let mut acc = [0.0f32; LANES];
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            let d = x[k] - y[k];
            acc[k] += d * d;
        }
    }
    reduce(acc) + tail
}

/// Inner product. Invariant: `a.len() == b.len()`.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0f32; LANES];
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    reduce(acc) + tail
}

/// `(q·v, v·v)`. Invariant: `q.len() == v.len()`.
///
/// Two vectorised passes rather than one fused loop: LLVM does not vectorise the fused loop well
/// (it pairs the two sums in one register and shuffles every element), which measured over twice
/// as slow. `v` is read twice, from L1.
pub(crate) fn dot_and_norm_sq(q: &[f32], v: &[f32]) -> (f32, f32) {
    (dot(q, v), dot(v, v))
}

/// Adds up the partial sums. In lane order: LLVM then keeps the loop above in full-width
/// registers, where a pairwise tree made it fall back to 2-lane loads (measured).
#[inline]
fn reduce(acc: [f32; LANES]) -> f32 {
    acc.iter().sum()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Exact-enough reference: the naive sums in f64.
    pub(crate) fn reference(q: &[f32], v: &[f32]) -> (f64, f64, f64) {
        let (mut l2, mut qv, mut vv) = (0.0f64, 0.0f64, 0.0f64);
        for (&x, &y) in q.iter().zip(v) {
            let (x, y) = (f64::from(x), f64::from(y));
            l2 += (x - y) * (x - y);
            qv += x * y;
            vv += y * y;
        }
        (l2, qv, vv)
    }

    /// Whether `got` is within the rounding error of an f32 sum whose terms' magnitudes add up to
    /// `scale`: 1e-4 of `scale` (a 300-term f32 sum errs by at most about 2e-5 of it), plus a
    /// small absolute slack for sums near zero.
    pub(crate) fn close(got: f32, want: f64, scale: f64) -> bool {
        (f64::from(got) - want).abs() <= 1e-4 * scale + 1e-6
    }

    /// The sums of the terms' magnitudes, for `close`: `Σ(x−y)²`, `Σ|x·y|`, `Σy²`.
    pub(crate) fn scales(q: &[f32], v: &[f32]) -> (f64, f64, f64) {
        let (mut l2, mut qv, mut vv) = (0.0f64, 0.0f64, 0.0f64);
        for (&x, &y) in q.iter().zip(v) {
            let (x, y) = (f64::from(x), f64::from(y));
            l2 += (x - y) * (x - y);
            qv += (x * y).abs();
            vv += y * y;
        }
        (l2, qv, vv)
    }

    /// Two equal-length vectors of every length in `0..=300`, each a sub-slice of a longer
    /// allocation starting at offset 0..4, so odd tails and misaligned starts both occur.
    pub(crate) fn pair() -> impl Strategy<Value = (Vec<f32>, usize, Vec<f32>, usize, usize)> {
        (0usize..=300, 0usize..4, 0usize..4).prop_flat_map(|(len, oq, ov)| {
            (
                prop::collection::vec(-100.0f32..100.0, len + oq),
                Just(oq),
                prop::collection::vec(-100.0f32..100.0, len + ov),
                Just(ov),
                Just(len),
            )
        })
    }

    /// 512 cases; 8 under Miri, which runs each thousands of times slower.
    pub(crate) fn config() -> ProptestConfig {
        if cfg!(miri) {
            // No failure files: Miri's isolation forbids them.
            ProptestConfig {
                cases: 8,
                failure_persistence: None,
                ..ProptestConfig::default()
            }
        } else {
            ProptestConfig::with_cases(512)
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn scalar_matches_f64_reference((qa, oq, va, ov, len) in pair()) {
            let (q, v) = (&qa[oq..oq + len], &va[ov..ov + len]);
            let (l2, qv, vv) = reference(q, v);
            let (s_l2, s_qv, s_vv) = scales(q, v);
            prop_assert!(close(l2_sq(q, v), l2, s_l2), "l2_sq {} vs {l2}", l2_sq(q, v));
            prop_assert!(close(dot(q, v), qv, s_qv), "dot {} vs {qv}", dot(q, v));
            let (got_qv, got_vv) = dot_and_norm_sq(q, v);
            prop_assert!(close(got_qv, qv, s_qv), "fused q·v {got_qv} vs {qv}");
            prop_assert!(close(got_vv, vv, s_vv), "fused v·v {got_vv} vs {vv}");
        }
    }

    #[test]
    fn small_exact_cases() {
        assert_eq!(l2_sq(&[], &[]), 0.0);
        assert_eq!(dot(&[], &[]), 0.0);
        assert_eq!(dot_and_norm_sq(&[], &[]), (0.0, 0.0));
        assert_eq!(l2_sq(&[0.0, 0.0], &[3.0, 4.0]), 25.0);
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
        assert_eq!(
            dot_and_norm_sq(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]),
            (32.0, 77.0)
        );
        // Exactly representable integers through the chunked path and the tail.
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..37).map(|i| (i % 5) as f32).collect();
        let want_l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let want_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(l2_sq(&a, &b), want_l2);
        assert_eq!(dot(&a, &b), want_dot);
        assert_eq!(dot_and_norm_sq(&b, &a), (want_dot, dot(&a, &a)));
    }
}
