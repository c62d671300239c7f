//! Distance kernels at common embedding sizes: the dispatched (SIMD where the CPU has it) kernels
//! against the scalar fallback.

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hnswdb::__bench::{dot, kernel_name, l2_sq, scalar_dot, scalar_l2_sq};

/// Embedding sizes worth tracking: 128 (SIFT-like) and 384 (MiniLM-like), and 100, whose last
/// step of the summation order is a partial one (zero-filled).
const DIMS: [usize; 3] = [100, 128, 384];

/// A deterministic pseudo-random vector in `[-1, 1)` (xorshift; no RNG dependency needed).
fn vector(dim: usize, seed: u32) -> Vec<f32> {
    let mut x = seed | 1;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// Benchmarks `fast` (labelled with the dispatched kernels' name) against `slow` (the scalar
/// fallback) under `group` at each of `DIMS`. Generic, so both are called directly and inlined as
/// in the index.
fn compare<R>(
    c: &mut Criterion,
    group: &str,
    fast: impl Fn(&[f32], &[f32]) -> R,
    slow: impl Fn(&[f32], &[f32]) -> R,
) {
    let mut g = c.benchmark_group(group);
    for dim in DIMS {
        // Offset by one float so the loads are not 32-byte aligned, as when read from a page.
        let (qa, va) = (vector(dim + 1, 1), vector(dim + 1, 2));
        let (q, v) = (&qa[1..], &va[1..]);
        g.bench_with_input(BenchmarkId::new(kernel_name(), dim), &dim, |b, _| {
            b.iter(|| fast(black_box(q), black_box(v)))
        });
        g.bench_with_input(BenchmarkId::new("scalar", dim), &dim, |b, _| {
            b.iter(|| slow(black_box(q), black_box(v)))
        });
    }
    g.finish();
}

fn kernels(c: &mut Criterion) {
    eprintln!("dispatched distance kernels: {}", kernel_name());
    compare(c, "l2_sq", l2_sq, scalar_l2_sq);
    compare(c, "dot", dot, scalar_dot);
}

criterion_group!(benches, kernels);
criterion_main!(benches);
