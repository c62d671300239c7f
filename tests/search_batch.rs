//! `search_batch` answers each query exactly as `search_with` does, in the queries' order, on
//! any number of threads, through `Index` and `ReadTxn`; a bad query or thread count fails the
//! whole batch with a clear error, and a filter's panic reaches the caller.

mod common;

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use hnswdb::{Error, Hit, Index, Metric, Options, SearchParams};

/// `bigann10k/heldout`: its base (9,000 × 128) in an in-memory index, and its 1,000 queries.
fn bigann() -> (Index, Vec<Vec<f32>>) {
    let dir = common::data_dir("bigann10k/heldout");
    let base = common::read_fvecs(&dir.join("base.fvecs"));
    let queries = common::read_fvecs(&dir.join("query.fvecs"));
    let index = Index::in_memory(Options::new(128).metric(Metric::L2)).unwrap();
    common::insert_numbered(&index, &base);
    (index, queries)
}

fn one_by_one(index: &Index, queries: &[Vec<f32>], params: &SearchParams) -> Vec<Vec<Hit>> {
    queries
        .iter()
        .map(|q| index.search_with(q, params).unwrap())
        .collect()
}

#[test]
fn a_batch_answers_as_single_searches_on_any_number_of_threads() {
    let (index, queries) = bigann();
    let params = SearchParams::new(10).ef(48);
    let expected = one_by_one(&index, &queries, &params);
    assert!(expected.iter().all(|hits| hits.len() == 10));
    // 0 = every core; 3 threads for a batch of 5 queries start only one helper.
    for threads in [1, 2, 3, 0, 7] {
        let got = index
            .search_batch(&queries, &params.clone().threads(threads))
            .unwrap();
        assert_eq!(got, expected, "threads {threads}");
    }
    let few = index
        .search_batch(&queries[..5], &params.clone().threads(3))
        .unwrap();
    assert_eq!(few, expected[..5]);
    let read = index.read().unwrap();
    let through_read = read.search_batch(&queries, &params.clone().threads(2));
    assert_eq!(through_read.unwrap(), expected);
}

#[test]
fn a_batch_takes_any_slice_of_vectors_and_an_empty_one() {
    let index = Index::in_memory(Options::new(2).metric(Metric::L2)).unwrap();
    index
        .insert_batch((0..50u64).map(|k| (k, [k as f32, 0.0])))
        .unwrap();
    let params = SearchParams::new(2);
    let arrays = [[10.2f32, 0.0], [30.9, 0.0]];
    let slices: Vec<&[f32]> = arrays.iter().map(|a| a.as_slice()).collect();
    let from_arrays = index.search_batch(&arrays, &params).unwrap();
    assert_eq!(from_arrays, index.search_batch(&slices, &params).unwrap());
    let keys: Vec<Vec<u64>> = from_arrays
        .iter()
        .map(|hits| hits.iter().map(|h| h.key).collect())
        .collect();
    assert_eq!(keys, [vec![10, 11], vec![31, 30]]);
    let none: &[Vec<f32>] = &[];
    assert!(index.search_batch(none, &params).unwrap().is_empty());
    // k = 0 asks for nothing, for every query.
    let nothing = index.search_batch(&arrays, &SearchParams::new(0)).unwrap();
    assert_eq!(nothing, [vec![], vec![]]);
}

#[test]
fn a_filter_that_borrows_runs_on_every_thread() {
    let (index, queries) = bigann();
    let allowed: HashSet<u64> = (0..9_000).filter(|k| k % 7 == 3).collect();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let params = SearchParams::new(5).filter(|key| {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        allowed.contains(&key)
    });
    let got = index
        .search_batch(&queries[..200], &params.clone().threads(2))
        .unwrap();
    assert!(calls.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert_eq!(got, one_by_one(&index, &queries[..200], &params));
    for hits in &got {
        assert_eq!(hits.len(), 5);
        assert!(hits.iter().all(|h| allowed.contains(&h.key)), "{hits:?}");
    }
}

#[test]
fn one_bad_query_fails_the_whole_batch() {
    let (index, queries) = bigann();
    let mut batch = queries[..100].to_vec();
    batch[57] = vec![1.0; 127];
    let err = index
        .search_batch(&batch, &SearchParams::new(3).threads(2))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Dimension {
                expected: 128,
                got: 127
            }
        ),
        "{err:?}"
    );
    batch[57] = queries[57].clone();
    batch[99][4] = f32::NAN;
    let err = index
        .search_batch(&batch, &SearchParams::new(3))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidVector { .. }), "{err:?}");

    let cosine = Index::in_memory(Options::new(2).metric(Metric::Cosine)).unwrap();
    cosine.insert(1, &[1.0, 0.0]).unwrap();
    let err = cosine
        .search_batch(&[[1.0, 1.0], [0.0, 0.0]], &SearchParams::new(1))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidVector { .. }), "{err:?}");
}

#[test]
fn too_many_threads_is_an_invalid_option() {
    let index = Index::in_memory(Options::new(2).metric(Metric::L2)).unwrap();
    let err = index
        .search_batch(&[[0.0, 0.0]], &SearchParams::new(1).threads(1025))
        .unwrap_err();
    match err {
        Error::InvalidOptions { reason } => assert!(reason.contains("threads"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let max = SearchParams::new(1).threads(1024);
    assert!(index.search_batch(&[[0.0, 0.0]], &max).is_ok());
}

#[test]
fn a_filter_panic_reaches_the_caller_and_the_index_keeps_working() {
    let (index, queries) = bigann();
    for threads in [1, 2] {
        let params = SearchParams::new(3)
            .threads(threads)
            .filter(|key| key != 4_321 || panic!("filter refused {key}"));
        let panic = catch_unwind(AssertUnwindSafe(|| {
            // Exact search (ef over the whole index) meets key 4,321 for every query.
            let exact = params.clone().ef(9_000);
            index.search_batch(&queries[..40], &exact)
        }))
        .expect_err("the filter's panic must propagate");
        let message = panic
            .downcast_ref::<String>()
            .expect("the filter's own panic message");
        assert_eq!(message, "filter refused 4321", "threads {threads}");
    }
    let hits = index.search_batch(&queries[..3], &SearchParams::new(1));
    assert_eq!(hits.unwrap().len(), 3);
}
