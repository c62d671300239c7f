//! Plain-Rust kernels: the fallback on every CPU and the oracle the SIMD kernels are tested against.
//!
//! They follow the summation order of the module's contract ([`super`]) literally: [`LANES`]
//! partial sums, element `i` fused into lane `i mod LANES`, the last step padded with zeros, then
//! the pairwise tree of [`reduce`]. The SIMD kernels must return the very same bits.
//!
//! Each multiply-add is [`f32::mul_add`], one rounding, as the SIMD FMA instructions do: a
//! separate multiply and add would round twice and give other bits. On aarch64 it is the `fmadd`
//! instruction. On x86-64 built without the `fma` target feature (the default target) it is a call
//! to the C library's `fmaf`, exact but several times slower than the AVX2 + FMA kernels; these
//! kernels run there only on CPUs without AVX2 + FMA, or when `HNSWDB_SCALAR_KERNELS` asks for
//! them. The lengths are equal (Invariant); if they are not, the extra elements of the longer
//! slice are ignored, as `zip` would.

use super::LANES;

/// Squared Euclidean distance. Invariant: `a.len() == b.len()`.
pub(crate) fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |x, y, acc| {
        let d = x - y;
        d.mul_add(d, acc)
    })
}

/// Inner product. Invariant: `a.len() == b.len()`.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    fold(a, b, |x, y, acc| x.mul_add(y, acc))
}

/// The contract's sum of `step` over the pairs of `a` and `b`: lane `i mod LANES` becomes
/// `step(a[i], b[i], lane)` for each `i` in order, then `step(0, 0, lane)` for the padding up to
/// the next multiple of `LANES`, then [`reduce`].
#[inline(always)]
fn fold(a: &[f32], b: &[f32], step: impl Fn(f32, f32, f32) -> f32) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (ca, cb) = (a[..n].chunks_exact(LANES), b[..n].chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc = [0.0f32; LANES];
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] = step(x[k], y[k], acc[k]);
        }
    }
    if !ra.is_empty() {
        for (k, lane) in acc.iter_mut().enumerate() {
            let (x, y) = ra
                .get(k)
                .zip(rb.get(k))
                .map_or((0.0, 0.0), |(&x, &y)| (x, y));
            *lane = step(x, y, *lane);
        }
    }
    reduce(acc)
}

/// The contract's reduction: lane `j` += lane `j + w` for every `j < w`, with `w` = `LANES / 2`,
/// then half that, down to 1; the sum is lane 0.
#[inline(always)]
fn reduce(mut acc: [f32; LANES]) -> f32 {
    let mut w = LANES / 2;
    while w > 0 {
        for j in 0..w {
            acc[j] += acc[j + w];
        }
        w /= 2;
    }
    acc[0]
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
            prop_assert!(close(dot(v, v), vv, s_vv), "v·v {} vs {vv}", dot(v, v));
        }
    }

    #[test]
    fn small_exact_cases() {
        assert_eq!(l2_sq(&[], &[]), 0.0);
        assert_eq!(dot(&[], &[]), 0.0);
        assert_eq!(l2_sq(&[0.0, 0.0], &[3.0, 4.0]), 25.0);
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
        // Exactly representable integers through the chunked path and the tail.
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..37).map(|i| (i % 5) as f32).collect();
        let want_l2: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let want_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(l2_sq(&a, &b), want_l2);
        assert_eq!(dot(&a, &b), want_dot);
    }

    /// The contract's order, on sums whose result depends on it: lane 0 rounds `2^24 + 1` to
    /// `2^24` before the tree cancels it with lane `LANES / 2` (a running sum gives 1).
    #[test]
    fn sums_in_the_contract_order() {
        let mut a = vec![0.0f32; 2 * LANES];
        a[0] = 16_777_216.0;
        a[LANES / 2] = -16_777_216.0;
        a[LANES] = 1.0;
        let ones = vec![1.0f32; a.len()];
        assert_eq!(a.iter().sum::<f32>(), 1.0);
        assert_eq!(dot(&a, &ones).to_bits(), 0.0f32.to_bits());
        // One rounding per multiply-add: lane 0 holds −(1 + 2^-11), then adds x² with
        // x = 1 + 2^-12. x² = 1 + 2^-11 + 2^-24 is exact inside the FMA, so the lane becomes
        // 2^-24; rounded alone first it would be 1 + 2^-11 and the lane 0. (Powers of two by
        // division, which is exact: Miri gives `powi` a random error, as the standard allows.)
        let x = 1.0 + 1.0 / 4096.0;
        let mut b = vec![0.0f32; LANES + 1];
        let mut c = b.clone();
        (b[0], c[0]) = (1.0, -(1.0 + 1.0 / 2048.0));
        (b[LANES], c[LANES]) = (x, x);
        assert_eq!(x * x - (1.0 + 1.0 / 2048.0), 0.0);
        assert_eq!(dot(&b, &c), 1.0 / 16_777_216.0);
    }

    /// The padding of the last step is part of the contract: a lane that holds −0.0 (a product
    /// that underflows to −0) becomes +0.0 when a padding zero is added to it.
    #[test]
    fn padding_turns_negative_zero_lanes_positive() {
        let (neg, pos) = (
            vec![-f32::MIN_POSITIVE; 2 * LANES],
            vec![f32::MIN_POSITIVE; 2 * LANES],
        );
        for len in [1, LANES - 1, LANES, LANES + 1, 2 * LANES] {
            let got = dot(&neg[..len], &pos[..len]);
            let want = if len % LANES == 0 { -0.0f32 } else { 0.0 };
            assert_eq!(got.to_bits(), want.to_bits(), "len {len}");
        }
    }
}
