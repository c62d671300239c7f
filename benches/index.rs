//! The index's operations on real data (the repository's `tests/data/bigann10k/heldout`, a
//! data-set folder holding base.fvecs, query.fvecs, gt.ivecs: 9,000 × 128, L2, m=16,
//! ef_construction=200): search at several `ef` with the layer-0 cache on and off, all the
//! queries in one `search_batch` on one and on two threads, a single insert and remove (graph work with `Durability::Eventual`, and with the fsync of
//! `Immediate`), and open + first query.
//!
//! ```sh
//! cargo bench --bench index
//! ```
//!
//! End-to-end figures (recall, build time, p50/p99, file size, RSS) come from the CLI's `bench`
//! command; this is for tracking one operation at a time.

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use hnswdb::{Durability, Index, Metric, Options, SearchParams};

/// The data set: base vectors and queries.
struct Data {
    base: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
}

fn data() -> Data {
    let dir = common::data_dir("bigann10k/heldout");
    Data {
        base: common::read_fvecs(&dir.join("base.fvecs")),
        queries: common::read_fvecs(&dir.join("query.fvecs")),
    }
}

fn options(durability: Durability, cache_bytes: u64) -> Options {
    Options::new(128)
        .metric(Metric::L2)
        .m(16)
        .ef_construction(200)
        .durability(durability)
        .cache_bytes(cache_bytes)
}

/// Builds the index of all base vectors at `path` (once per run; the file is reused).
fn build(path: &Path, data: &Data) {
    let index = Index::create(path, options(Durability::Immediate, 1 << 30)).unwrap();
    index
        .insert_batch(
            data.base
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u64, v.as_slice())),
        )
        .unwrap();
}

/// A copy of the built index, for benchmarks that change it.
fn copy_of(built: &Path, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    std::fs::copy(built, &path).unwrap();
    path
}

fn benches(c: &mut Criterion) {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let built = dir.path().join("built.hnsw");
    build(&built, &data);

    let mut g = c.benchmark_group("search");
    for (cache, bytes) in [("cached", 1u64 << 30), ("uncached", 0)] {
        let index = Index::open_or_create(&built, options(Durability::Immediate, bytes)).unwrap();
        for ef in [16, 64, 256] {
            let params = SearchParams::new(10).ef(ef);
            let mut next = data.queries.iter().cycle();
            g.bench_with_input(BenchmarkId::new(cache, ef), &ef, |b, _| {
                b.iter(|| index.search_with(black_box(next.next().unwrap()), &params))
            });
        }
    }
    g.finish();

    // All 1,000 queries in one call, on one thread and on two (the cached index).
    let mut g = c.benchmark_group("search_batch");
    g.throughput(criterion::Throughput::Elements(data.queries.len() as u64));
    let index = Index::open_or_create(&built, options(Durability::Immediate, 1 << 30)).unwrap();
    for threads in [1, 2] {
        let params = SearchParams::new(10).ef(64).threads(threads);
        g.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
            b.iter(|| index.search_batch(black_box(&data.queries), &params))
        });
    }
    drop(index);
    g.finish();

    let mut g = c.benchmark_group("write");
    for (name, durability) in [
        ("eventual", Durability::Eventual),
        ("immediate", Durability::Immediate),
    ] {
        let path = copy_of(&built, dir.path(), &format!("{name}.hnsw"));
        let index = Index::open_or_create(&path, options(durability, 1 << 30)).unwrap();
        let mut key = data.base.len() as u64;
        let mut next = data.queries.iter().cycle();
        g.bench_function(BenchmarkId::new("insert", name), |b| {
            b.iter(|| {
                key += 1;
                index.insert(key, next.next().unwrap()).unwrap()
            })
        });
        // Each removal takes out a key the setup just put back, so the index keeps its size.
        let mut victims = (0..data.base.len() as u64).cycle();
        g.bench_function(BenchmarkId::new("remove", name), |b| {
            b.iter_batched(
                || {
                    let victim = victims.next().unwrap();
                    index.insert(victim, &data.base[victim as usize]).unwrap();
                    victim
                },
                |victim| assert!(index.remove(victim).unwrap()),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("open");
    let query = &data.queries[0];
    for (cache, bytes) in [("cached", 1u64 << 30), ("uncached", 0)] {
        drop(Index::open_or_create(&built, options(Durability::Immediate, bytes)).unwrap());
        g.bench_function(BenchmarkId::new("open_and_first_query", cache), |b| {
            b.iter(|| {
                let index = Index::open(&built).unwrap();
                index.search(black_box(query), 10).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = index;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(index);
