//! Filtered search returns only matching keys, and `k` of them whenever `k` keys match — however
//! rare the matches are — each the exact nearest among the matches when ef covers the index.

mod common;

use hnswdb::{Index, Metric, Options, SearchParams};

fn build(n: usize) -> (tempfile::TempDir, Index, Vec<Vec<f32>>) {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create(
        dir.path().join("f.hnsw"),
        Options::new(8).metric(Metric::L2).m(8),
    )
    .unwrap();
    let vectors = common::random_vectors(common::seed(5), n, 8);
    common::insert_numbered(&index, &vectors);
    (dir, index, vectors)
}

#[test]
fn filters_return_only_matches() {
    let (_dir, index, vectors) = build(2000);
    for q in vectors.iter().step_by(97) {
        let hits = index
            .search_with(q, &SearchParams::new(10).filter(|k| k % 3 == 0))
            .unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|h| h.key % 3 == 0), "{hits:?}");
    }
}

#[test]
fn rare_matches_still_give_k_hits() {
    let (_dir, index, vectors) = build(2000);
    let rows: Vec<(u64, Vec<f32>)> = vectors
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    // 12 keys of 2,000 match.
    let matching = |k: u64| k % 167 == 5;
    let matched: Vec<(u64, Vec<f32>)> =
        rows.iter().filter(|(k, _)| matching(*k)).cloned().collect();
    for q in vectors.iter().step_by(211) {
        let hits = index
            .search_with(q, &SearchParams::new(10).filter(matching))
            .unwrap();
        let truth = common::brute_force(Metric::L2, &matched, q, 10);
        assert_eq!(
            hits.iter().map(|h| h.key).collect::<Vec<_>>(),
            truth.iter().map(|t| t.0).collect::<Vec<_>>()
        );
    }
    let none = index
        .search_with(&vectors[0], &SearchParams::new(5).filter(|_| false))
        .unwrap();
    assert!(none.is_empty());
    let one = index
        .search_with(&vectors[0], &SearchParams::new(5).filter(|k| k == 1234))
        .unwrap();
    assert_eq!(one.iter().map(|h| h.key).collect::<Vec<_>>(), [1234]);
}

#[test]
#[should_panic(expected = "filter bug")]
fn a_panicking_filter_panics_in_the_caller() {
    let (_dir, index, vectors) = build(50);
    let _ = index.search_with(
        &vectors[0],
        &SearchParams::new(5).filter(|_| panic!("filter bug")),
    );
}
