//! Recall@10 at ef=64 on real data sets, against their exact ground truth, with m=16 and
//! ef_construction=200 — and identical after closing and reopening. `bigann10k/heldout` ships in
//! `tests/data` and always runs; `minilm50k` is opt-in (`HNSWDB_DATA_DIR`, see
//! `tests/data/README.md`).
//!
//! Reference, measured with hnswlib (`benches/peers.sh`) on the same machines: recall@10 0.998
//! at ef=64 on bigann10k/heldout and 0.990 on minilm50k.

mod common;

use std::path::Path;

use common::{data_dir, large_data_dir, read_fvecs, read_ivecs};
use hnswdb::{Index, Metric, Options, SearchParams};

fn recall_at_10(index: &Index, queries: &[Vec<f32>], truth: &[Vec<i32>], ef: usize) -> f64 {
    let mut found = 0;
    for (query, truth) in queries.iter().zip(truth) {
        let hits = index
            .search_with(query, &SearchParams::new(10).ef(ef))
            .unwrap();
        let truth: Vec<u64> = truth[..10].iter().map(|&t| t as u64).collect();
        found += hits.iter().filter(|h| truth.contains(&h.key)).count();
    }
    found as f64 / (10 * queries.len()) as f64
}

/// Builds an index over the data set in `dir` (called `name`) and checks its recall.
fn check_data_set(dir: &Path, name: &str, metric: Metric, floor: f64) {
    let base = read_fvecs(&dir.join("base.fvecs"));
    let queries = read_fvecs(&dir.join("query.fvecs"));
    let truth = read_ivecs(&dir.join("gt.ivecs"));
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("index.hnsw");
    let options = Options::new(base[0].len())
        .metric(metric)
        .m(16)
        .ef_construction(200);

    let index = Index::create(&path, options).unwrap();
    let start = std::time::Instant::now();
    common::insert_numbered(&index, &base);
    let built = start.elapsed();
    let recall = recall_at_10(&index, &queries, &truth, 64);
    eprintln!(
        "{name}: {} vectors built in {built:.2?}, recall@10 at ef=64: {recall:.4}",
        base.len()
    );
    assert!(
        recall >= floor,
        "{name}: recall@10 {recall:.4} below {floor}"
    );
    index.verify().unwrap();
    drop(index);

    let reopened = Index::open(&path).unwrap();
    assert_eq!(reopened.len(), base.len());
    let again = recall_at_10(&reopened, &queries, &truth, 64);
    assert_eq!(recall, again, "{name}: recall changed after reopening");
}

#[test]
fn bigann10k_heldout_recall() {
    let name = "bigann10k/heldout";
    check_data_set(&data_dir(name), name, Metric::L2, 0.99);
}

#[test]
fn minilm50k_recall() {
    let name = "minilm50k";
    if let Some(dir) = large_data_dir(name) {
        check_data_set(&dir, name, Metric::Cosine, 0.985);
    }
}
