//! Helpers shared by the integration tests: data sets, brute force, seeds.
#![allow(dead_code)]

#[cfg(unix)]
pub mod child;
mod rng;
pub mod trials;
pub use rng::Rng;

use std::io::Write;
use std::path::PathBuf;

use hnswdb::Metric;

/// The environment variable naming a directory of larger, opt-in data sets, one folder each.
pub const DATA_DIR_VAR: &str = "HNSWDB_DATA_DIR";

/// The files of a data set folder (`tests/data/README.md`).
const DATA_FILES: [&str; 3] = ["base.fvecs", "query.fvecs", "gt.ivecs"];

/// A data set shipped in the repository: `tests/data/<name>` of the `hnswdb` package.
pub fn data_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A larger data set, not in the repository: `$HNSWDB_DATA_DIR/<name>`. `None` when the variable
/// is unset, after telling the user (past the test harness's capture) that the test is skipped
/// and how to run it. Panics if the variable is set but a file of the set is missing.
pub fn large_data_dir(name: &str) -> Option<PathBuf> {
    let Some(root) = std::env::var_os(DATA_DIR_VAR) else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: this test needs the data set {name}, which is not in the repository; set \
             {DATA_DIR_VAR} to a directory holding {name}/{{{}}} to run it",
            DATA_FILES.join(",")
        );
        return None;
    };
    let dir = PathBuf::from(root).join(name);
    for file in DATA_FILES {
        let path = dir.join(file);
        assert!(
            path.is_file(),
            "{DATA_DIR_VAR} is set, but {} is missing",
            path.display()
        );
    }
    Some(dir)
}

/// Reads a TEXMEX `.fvecs` file: per vector a little-endian `i32` dimension, then the floats.
pub fn read_fvecs(path: &std::path::Path) -> Vec<Vec<f32>> {
    read_vecs(path, |b| f32::from_le_bytes(b.try_into().unwrap()))
}

/// Reads a TEXMEX `.ivecs` file.
pub fn read_ivecs(path: &std::path::Path) -> Vec<Vec<i32>> {
    read_vecs(path, |b| i32::from_le_bytes(b.try_into().unwrap()))
}

fn read_vecs<T>(path: &std::path::Path, parse: impl Fn(&[u8]) -> T) -> Vec<Vec<T>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let dim = i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 4;
        out.push(
            bytes[at..at + 4 * dim]
                .chunks_exact(4)
                .map(&parse)
                .collect(),
        );
        at += 4 * dim;
    }
    out
}

/// The exact `k` nearest keys of `query` among `rows` (ties by key), by `metric`.
pub fn brute_force(
    metric: Metric,
    rows: &[(u64, Vec<f32>)],
    query: &[f32],
    k: usize,
) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = rows
        .iter()
        .map(|(key, v)| (*key, metric.distance(query, v)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Fraction of `truth` found in `found`.
pub fn recall(found: &[u64], truth: &[u64]) -> f64 {
    truth.iter().filter(|t| found.contains(t)).count() as f64 / truth.len() as f64
}

/// The seed of a randomized test: `HNSWDB_SEED` if set, else `default`. Printed, so a failure
/// can be reproduced.
pub fn seed(default: u64) -> u64 {
    let seed = std::env::var("HNSWDB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed: {seed} (set HNSWDB_SEED to reproduce)");
    seed
}

/// Inserts `vectors` in one batch, the vector at position `i` under key `i`.
pub fn insert_numbered(index: &hnswdb::Index, vectors: &[Vec<f32>]) {
    index
        .insert_batch(
            vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u64, v.as_slice())),
        )
        .unwrap();
}

/// Deterministic pseudo-random vectors in `[-1, 1)`.
pub fn random_vectors(seed: u64, n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| (0..dim).map(|_| rng.unit()).collect())
        .collect()
}

/// The exact `k` nearest keys of every query among `rows` ([`brute_force`] per query), with the
/// queries shared among the available cores.
pub fn exact_knn(
    metric: Metric,
    rows: &[(u64, Vec<f32>)],
    queries: &[Vec<f32>],
    k: usize,
) -> Vec<Vec<u64>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = queries.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = queries
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|q| {
                            let near = brute_force(metric, rows, q, k);
                            near.into_iter().map(|(key, _)| key).collect()
                        })
                        .collect::<Vec<Vec<u64>>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap()).collect()
    })
}

/// Mean recall of `index` over `queries` against `truth` (one exact list per query), searching
/// for `truth`'s length at `ef`. Panics if a hit is not a key of `live`: a removed key came back.
pub fn search_recall(
    index: &hnswdb::Index,
    queries: &[Vec<f32>],
    truth: &[Vec<u64>],
    ef: usize,
    live: &std::collections::HashSet<u64>,
) -> f64 {
    let mut sum = 0.0;
    for (query, truth) in queries.iter().zip(truth) {
        let hits = index
            .search_with(query, &hnswdb::SearchParams::new(truth.len()).ef(ef))
            .unwrap();
        let found: Vec<u64> = hits.iter().map(|h| h.key).collect();
        if let Some(dead) = found.iter().find(|k| !live.contains(k)) {
            panic!("search returned key {dead}, which is not in the index");
        }
        sum += recall(&found, truth);
    }
    sum / queries.len() as f64
}
