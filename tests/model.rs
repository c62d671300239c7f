//! The index against a model (a `BTreeMap` and brute force) over random operation sequences:
//! inserts, upserts, removes, gets, exact searches (ef ≥ len; single and in batches on two
//! threads), committed and aborted transactions, and reopening the file — for all three metrics.
//! `verify()` after every sequence. The same runs over an in-memory index, where a reopen becomes a
//! `compact` (a fresh database, and the snapshot loaded from it), with more cases since it is
//! faster; and over two named indexes in one app database (redb in memory) that every write changes
//! alike, `Op::Txn` through one multi-index transaction, where a reopen opens both by name again.
//! Every run draws a quantization too: with codes, an exact search (ef ≥ len) re-ranks every
//! candidate, so the answers must be the model's exactly as well.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use hnswdb::{redb, Index, Metric, Options, Quantization, SearchParams};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert(u64, Vec<f32>),
    Remove(u64),
    Get(u64),
    Search(Vec<f32>, usize),
    /// One `search_batch` of these queries on two threads.
    SearchBatch(Vec<Vec<f32>>, usize),
    /// A transaction of inserts (`Some`) and removes (`None`), committed or dropped.
    Txn(Vec<(u64, Option<Vec<f32>>)>, bool),
    Reopen,
    Verify,
}

const DIM: usize = 4;

fn vector() -> impl Strategy<Value = Vec<f32>> {
    // A coarse grid makes ties and duplicates common; the first component is never zero, so
    // every vector is valid under cosine.
    (1i8..=4, prop::collection::vec(-4i8..=4, DIM - 1)).prop_map(|(first, rest)| {
        std::iter::once(first)
            .chain(rest)
            .map(|x| f32::from(x) / 4.0)
            .collect()
    })
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u64..24;
    prop_oneof![
        6 => (key.clone(), vector()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => key.clone().prop_map(Op::Remove),
        1 => key.clone().prop_map(Op::Get),
        3 => (vector(), 1usize..8).prop_map(|(q, k)| Op::Search(q, k)),
        1 => (prop::collection::vec(vector(), 0..20), 1usize..8)
            .prop_map(|(queries, k)| Op::SearchBatch(queries, k)),
        2 => (prop::collection::vec((key, prop::option::of(vector())), 1..6), any::<bool>())
            .prop_map(|(ops, commit)| Op::Txn(ops, commit)),
        1 => Just(Op::Reopen),
        1 => Just(Op::Verify),
    ]
}

fn metric() -> impl Strategy<Value = Metric> {
    prop_oneof![Just(Metric::L2), Just(Metric::Cosine), Just(Metric::Dot)]
}

fn quantization() -> impl Strategy<Value = Quantization> {
    prop_oneof![
        Just(Quantization::None),
        Just(Quantization::Int8),
        Just(Quantization::Binary)
    ]
}

/// Checks that `hits` are an exact answer: the right count, ascending, each distance equal to
/// the model's, and no key left out that is strictly nearer than the last hit.
fn assert_exact(
    metric: Metric,
    model: &BTreeMap<u64, Vec<f32>>,
    query: &[f32],
    k: usize,
    hits: &[hnswdb::Hit],
) {
    let rows: Vec<(u64, Vec<f32>)> = model.iter().map(|(k, v)| (*k, v.clone())).collect();
    let truth = common::brute_force(metric, &rows, query, k);
    assert_eq!(hits.len(), truth.len(), "hit count");
    let tolerance = 1e-4;
    for pair in hits.windows(2) {
        assert!(
            pair[0].distance <= pair[1].distance,
            "hits not sorted: {hits:?}"
        );
    }
    for hit in hits {
        let exact = metric.distance(query, &model[&hit.key]);
        assert!(
            (exact - hit.distance).abs() <= tolerance,
            "distance of {} is {}, exact {exact}",
            hit.key,
            hit.distance
        );
    }
    if let Some(last) = hits.last() {
        for (key, distance) in &truth {
            if *distance < last.distance - tolerance {
                assert!(
                    hits.iter().any(|h| h.key == *key),
                    "missed key {key} at {distance}: {hits:?}"
                );
            }
        }
    }
}

/// Where the index under test lives.
#[derive(Clone, Copy)]
enum Storage {
    File,
    Memory,
    /// A named index in an app database (redb in memory), beside a second index (`other`)
    /// that every write changes the same way, in the same transaction for `Op::Txn`.
    Named,
}

/// The index under test, and what it lives in.
struct Subject {
    index: Index,
    /// The file's folder and path (`Storage::File`).
    file: Option<(tempfile::TempDir, std::path::PathBuf)>,
    /// The app database and the second index in it (`Storage::Named`).
    app: Option<(Arc<redb::Database>, Index)>,
}

impl Subject {
    fn new(storage: Storage, options: Options) -> Subject {
        match storage {
            Storage::Memory => Subject {
                index: Index::in_memory(options).unwrap(),
                file: None,
                app: None,
            },
            Storage::File => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("model.hnsw");
                Subject {
                    index: Index::create(&path, options).unwrap(),
                    file: Some((dir, path)),
                    app: None,
                }
            }
            Storage::Named => {
                let db = Arc::new(
                    redb::Database::builder()
                        .create_with_backend(redb::backends::InMemoryBackend::new())
                        .unwrap(),
                );
                let index = Index::create_in(Arc::clone(&db), "model", options.clone()).unwrap();
                let other = Index::create_in(Arc::clone(&db), "other", options).unwrap();
                Subject {
                    index,
                    file: None,
                    app: Some((db, other)),
                }
            }
        }
    }

    /// Reads the index back from its storage: reopens the file or the named indexes, or
    /// compacts in memory.
    fn reload(self) -> Subject {
        match (self.file, self.app) {
            (Some((dir, path)), _) => {
                drop(self.index);
                Subject {
                    index: Index::open(&path).unwrap(),
                    file: Some((dir, path)),
                    app: None,
                }
            }
            (None, Some((db, other))) => {
                drop((self.index, other));
                Subject {
                    index: Index::open_in(Arc::clone(&db), "model").unwrap(),
                    file: None,
                    app: Some((Arc::clone(&db), Index::open_in(db, "other").unwrap())),
                }
            }
            (None, None) => {
                self.index.compact().unwrap();
                Subject {
                    index: self.index,
                    file: None,
                    app: None,
                }
            }
        }
    }

    /// The second index of an app database, if any.
    fn other(&self) -> Option<&Index> {
        self.app.as_ref().map(|(_, other)| other)
    }
}

/// Checks that `index` holds exactly `model`, and verifies it.
fn assert_holds(index: &Index, model: &BTreeMap<u64, Vec<f32>>) {
    index.verify().unwrap();
    assert_eq!(
        index.keys().unwrap(),
        model.keys().copied().collect::<Vec<_>>()
    );
    for (key, v) in model {
        assert_eq!(index.get(*key).unwrap().as_ref(), Some(v));
    }
}

fn run(storage: Storage, metric: Metric, quantization: Quantization, m: usize, ops: Vec<Op>) {
    let options = Options::new(DIM)
        .metric(metric)
        .m(m)
        .ef_construction(16)
        .seed(7)
        .quantization(quantization);
    let mut subject = Subject::new(storage, options);
    let mut model: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    for op in ops {
        if let Op::Reopen = op {
            subject = subject.reload();
        }
        let index = &subject.index;
        let other = subject.other();
        match op {
            Op::Insert(key, v) => {
                index.insert(key, &v).unwrap();
                if let Some(other) = other {
                    other.insert(key, &v).unwrap();
                }
                model.insert(key, v);
            }
            Op::Remove(key) => {
                let present = model.remove(&key).is_some();
                assert_eq!(index.remove(key).unwrap(), present);
                if let Some(other) = other {
                    assert_eq!(other.remove(key).unwrap(), present);
                }
            }
            Op::Get(key) => assert_eq!(index.get(key).unwrap(), model.get(&key).cloned()),
            Op::Search(q, k) => {
                let hits = index
                    .search_with(&q, &SearchParams::new(k).ef(model.len().max(1)))
                    .unwrap();
                assert_exact(metric, &model, &q, k, &hits);
            }
            Op::SearchBatch(queries, k) => {
                let params = SearchParams::new(k).ef(model.len().max(1)).threads(2);
                let answers = index.search_batch(&queries, &params).unwrap();
                assert_eq!(answers.len(), queries.len());
                for (q, hits) in queries.iter().zip(&answers) {
                    assert_exact(metric, &model, q, k, hits);
                }
            }
            Op::Txn(ops, commit) => {
                let mut tx = index.write_with(other.as_slice()).unwrap();
                let mut staged = model.clone();
                for (key, v) in ops {
                    match v {
                        Some(v) => {
                            tx.insert(key, &v).unwrap();
                            if let Some(other) = other {
                                tx.on(other).unwrap().insert(key, &v).unwrap();
                            }
                            staged.insert(key, v);
                        }
                        None => {
                            let present = staged.remove(&key).is_some();
                            assert_eq!(tx.remove(key).unwrap(), present);
                            if let Some(other) = other {
                                assert_eq!(tx.on(other).unwrap().remove(key).unwrap(), present);
                            }
                        }
                    }
                }
                assert_eq!(tx.len(), staged.len());
                if let Some(other) = other {
                    assert_eq!(tx.on(other).unwrap().len(), staged.len());
                }
                if commit {
                    tx.commit().unwrap();
                    model = staged;
                }
            }
            Op::Reopen => {}
            Op::Verify => index.verify().unwrap(),
        }
        assert_eq!(index.len(), model.len());
        if let Some(other) = other {
            assert_eq!(other.len(), model.len());
        }
    }
    let index = &subject.index;
    assert_holds(index, &model);
    if let Some(other) = subject.other() {
        assert_holds(other, &model);
    }
    // Reading it back gives the same answers.
    let queries: Vec<Vec<f32>> = model.values().take(5).cloned().collect();
    let before: Vec<_> = queries
        .iter()
        .map(|q| index.search(q, 3).unwrap())
        .collect();
    let subject = subject.reload();
    let index = &subject.index;
    let after: Vec<_> = queries
        .iter()
        .map(|q| index.search(q, 3).unwrap())
        .collect();
    assert_eq!(before, after);
    index.verify().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn index_matches_model(metric in metric(), quantization in quantization(), m in 2usize..6, ops in prop::collection::vec(op(), 1..80)) {
        run(Storage::File, metric, quantization, m, ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn in_memory_index_matches_model(metric in metric(), quantization in quantization(), m in 2usize..6, ops in prop::collection::vec(op(), 1..80)) {
        run(Storage::Memory, metric, quantization, m, ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn named_indexes_in_an_app_database_match_model(metric in metric(), quantization in quantization(), m in 2usize..6, ops in prop::collection::vec(op(), 1..80)) {
        run(Storage::Named, metric, quantization, m, ops);
    }
}
