//! Kernels over quantized codes at common sizes: every implementation the CPU can run, side by
//! side (the dispatched one is named first on stderr).

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hnswdb::__codes_bench::{kernel_name, kernels, Kernel};

/// Embedding sizes for the int8 dot product: 128 (SIFT-like), 384 (MiniLM-like), 768 (BERT-like)
/// and 1536 (OpenAI-like).
const DIMS: [usize; 4] = [128, 384, 768, 1536];

/// Binary codes of 128, 384, 1536 and 2048 bits (the same embedding sizes, padded to whole words).
const WORDS: [usize; 4] = [2, 6, 24, 32];

/// A deterministic pseudo-random stream (xorshift; no RNG dependency needed).
fn stream(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Benchmarks `run` with every runnable kernel under `group` on each pair of `inputs`, labelled
/// by the kernel's name and the input's size.
fn compare<A: ?Sized, B: ?Sized, R>(
    c: &mut Criterion,
    group: &str,
    inputs: &[(usize, &A, &B)],
    run: impl Fn(Kernel, &A, &B) -> R,
) {
    let mut g = c.benchmark_group(group);
    for &(size, x, y) in inputs {
        for kernel in kernels() {
            g.bench_with_input(BenchmarkId::new(kernel.name(), size), &size, |b, _| {
                b.iter(|| run(kernel, black_box(x), black_box(y)))
            });
        }
    }
    g.finish();
}

fn code_kernels(c: &mut Criterion) {
    eprintln!("dispatched code kernels: {}", kernel_name());
    // Offset by one element so the loads are not 32-byte aligned, as when read from a page.
    let mut next = stream(1);
    let bytes: Vec<(Vec<u8>, Vec<i8>)> = DIMS
        .iter()
        .map(|&n| {
            let a = (0..=n).map(|_| next() as u8).collect();
            let b = (0..=n)
                .map(|_| ((next() % 255) as i32 - 127) as i8)
                .collect();
            (a, b)
        })
        .collect();
    let dots: Vec<(usize, &[u8], &[i8])> = DIMS
        .iter()
        .zip(&bytes)
        .map(|(&n, (a, b))| (n, &a[1..], &b[1..]))
        .collect();
    compare(c, "dot_u8_i8", &dots, |k, a, b| k.dot_u8_i8(a, b));

    let words: Vec<(Vec<u64>, Vec<u64>)> = WORDS
        .iter()
        .map(|&w| {
            let code = (0..=w).map(|_| next()).collect();
            let planes = (0..=4 * w).map(|_| next()).collect();
            (code, planes)
        })
        .collect();
    let planes: Vec<(usize, &[u64], &[u64])> = WORDS
        .iter()
        .zip(&words)
        .map(|(&w, (code, planes))| (w, &code[1..], &planes[1..]))
        .collect();
    compare(c, "plane_popcounts", &planes, |k, code, planes| {
        k.plane_popcounts(code, planes)
    });
}

criterion_group!(benches, code_kernels);
criterion_main!(benches);
