//! Recall@10 at ef=64 on the real data sets in `../shared/data`, against their exact ground
//! truth, with m=16 and ef_construction=200 — and identical after closing and reopening.
//!
//! Reference, measured with `../shared/bench/peers.py` on the same machines: hnswlib reaches
//! recall@10 0.998 at ef=64 on bigann10k/heldout and 0.990 on minilm50k.

mod common;

use common::{data_dir, read_fvecs, read_ivecs};
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

fn check_data_set(name: &str, metric: Metric, floor: f64) {
    let dir = data_dir(name);
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
    check_data_set("bigann10k/heldout", Metric::L2, 0.99);
}

#[test]
fn minilm50k_recall() {
    check_data_set("minilm50k", Metric::Cosine, 0.985);
}
