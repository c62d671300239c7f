//! The index against a model (a `BTreeMap` and brute force) over random operation sequences:
//! inserts, upserts, removes, gets, exact searches (ef ≥ len), committed and aborted
//! transactions, and reopening the file — for all three metrics. `verify()` after every
//! sequence. The same runs over an in-memory index, where a reopen becomes a `compact` (a fresh
//! database, and the snapshot loaded from it), with more cases since it is faster.

mod common;

use std::collections::BTreeMap;

use hnswdb::{Index, Metric, Options, SearchParams};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert(u64, Vec<f32>),
    Remove(u64),
    Get(u64),
    Search(Vec<f32>, usize),
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
        2 => (prop::collection::vec((key, prop::option::of(vector())), 1..6), any::<bool>())
            .prop_map(|(ops, commit)| Op::Txn(ops, commit)),
        1 => Just(Op::Reopen),
        1 => Just(Op::Verify),
    ]
}

fn metric() -> impl Strategy<Value = Metric> {
    prop_oneof![Just(Metric::L2), Just(Metric::Cosine), Just(Metric::Dot)]
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

/// The index under test: in a file, or in memory.
struct Subject {
    index: Index,
    /// The file's folder and path; `None` in memory.
    file: Option<(tempfile::TempDir, std::path::PathBuf)>,
}

impl Subject {
    fn new(in_memory: bool, options: Options) -> Subject {
        if in_memory {
            return Subject {
                index: Index::in_memory(options).unwrap(),
                file: None,
            };
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.hnsw");
        Subject {
            index: Index::create(&path, options).unwrap(),
            file: Some((dir, path)),
        }
    }

    /// Reads the index back from its storage: reopens the file, or compacts in memory.
    fn reload(self) -> Subject {
        match self.file {
            Some((dir, path)) => {
                drop(self.index);
                Subject {
                    index: Index::open(&path).unwrap(),
                    file: Some((dir, path)),
                }
            }
            None => {
                self.index.compact().unwrap();
                self
            }
        }
    }
}

fn run(in_memory: bool, metric: Metric, m: usize, ops: Vec<Op>) {
    let options = Options::new(DIM)
        .metric(metric)
        .m(m)
        .ef_construction(16)
        .seed(7);
    let mut subject = Subject::new(in_memory, options);
    let mut model: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    for op in ops {
        if let Op::Reopen = op {
            subject = subject.reload();
        }
        let index = &subject.index;
        match op {
            Op::Insert(key, v) => {
                index.insert(key, &v).unwrap();
                model.insert(key, v);
            }
            Op::Remove(key) => {
                assert_eq!(index.remove(key).unwrap(), model.remove(&key).is_some());
            }
            Op::Get(key) => assert_eq!(index.get(key).unwrap(), model.get(&key).cloned()),
            Op::Search(q, k) => {
                let hits = index
                    .search_with(&q, &SearchParams::new(k).ef(model.len().max(1)))
                    .unwrap();
                assert_exact(metric, &model, &q, k, &hits);
            }
            Op::Txn(ops, commit) => {
                let mut tx = index.write().unwrap();
                let mut staged = model.clone();
                for (key, v) in ops {
                    match v {
                        Some(v) => {
                            tx.insert(key, &v).unwrap();
                            staged.insert(key, v);
                        }
                        None => assert_eq!(tx.remove(key).unwrap(), staged.remove(&key).is_some()),
                    }
                }
                assert_eq!(tx.len(), staged.len());
                if commit {
                    tx.commit().unwrap();
                    model = staged;
                }
            }
            Op::Reopen => {}
            Op::Verify => index.verify().unwrap(),
        }
        assert_eq!(index.len(), model.len());
    }
    let index = &subject.index;
    index.verify().unwrap();
    assert_eq!(
        index.keys().unwrap(),
        model.keys().copied().collect::<Vec<_>>()
    );
    for (key, v) in &model {
        assert_eq!(index.get(*key).unwrap().as_ref(), Some(v));
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
    fn index_matches_model(metric in metric(), m in 2usize..6, ops in prop::collection::vec(op(), 1..80)) {
        run(false, metric, m, ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn in_memory_index_matches_model(metric in metric(), m in 2usize..6, ops in prop::collection::vec(op(), 1..80)) {
        run(true, metric, m, ops);
    }
}
