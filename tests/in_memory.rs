//! `Index::in_memory`: the whole API over redb's in-memory storage, with the same answers as a
//! file index given the same options, seed and operations; `export` saves it to a file index.

mod common;

use hnswdb::{Hit, Index, Metric, Options, SearchParams};

/// The same operations on `index`: batches, single inserts, upserts, removes, a committed and
/// a dropped transaction.
fn apply(index: &Index, vectors: &[Vec<f32>]) {
    common::insert_numbered(index, &vectors[..300]);
    for (key, v) in vectors.iter().enumerate().skip(300) {
        index.insert(key as u64, v).unwrap();
    }
    for key in (0..400).step_by(3) {
        index.remove(key).unwrap();
    }
    index.insert(1, &vectors[5]).unwrap();
    let mut tx = index.write().unwrap();
    tx.insert(10_000, &vectors[7]).unwrap();
    tx.remove(2).unwrap();
    tx.commit().unwrap();
    let mut tx = index.write().unwrap();
    tx.insert(20_000, &vectors[8]).unwrap();
    drop(tx);
}

fn answers(index: &Index, queries: &[Vec<f32>]) -> Vec<Vec<Hit>> {
    queries
        .iter()
        .map(|q| index.search_with(q, &SearchParams::new(10).ef(32)).unwrap())
        .collect()
}

#[test]
fn answers_exactly_as_a_file_index_does() {
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let options = Options::new(8).metric(metric).m(6).seed(9).build_threads(1);
        let vectors = common::random_vectors(17, 400, 8);
        let queries = common::random_vectors(18, 50, 8);
        let dir = tempfile::tempdir().unwrap();
        let file = Index::create(dir.path().join("f.hnsw"), options.clone()).unwrap();
        let memory = Index::in_memory(options).unwrap();
        apply(&file, &vectors);
        apply(&memory, &vectors);
        memory.verify().unwrap();
        let stats = memory.stats().unwrap();
        assert_eq!((stats.len, stats.file_bytes), (memory.len() as u64, 0));
        assert!(memory.path().as_os_str().is_empty());
        assert_eq!(memory.len(), file.len());
        assert_eq!(memory.keys().unwrap(), file.keys().unwrap());
        assert!(
            !memory.contains(20_000).unwrap(),
            "a dropped transaction left a key"
        );
        assert_eq!(memory.get(1).unwrap(), Some(vectors[5].clone()));
        assert_eq!(
            answers(&memory, &queries),
            answers(&file, &queries),
            "{metric}"
        );
    }
}

#[test]
fn compacts_and_exports_to_a_file_index() {
    let options = Options::new(8).metric(Metric::L2).build_threads(1);
    let vectors = common::random_vectors(5, 400, 8);
    let queries = common::random_vectors(6, 30, 8);
    let memory = Index::in_memory(options).unwrap();
    apply(&memory, &vectors);
    let before = answers(&memory, &queries);
    memory.compact().unwrap();
    memory.verify().unwrap();
    assert_eq!(answers(&memory, &queries), before);

    let mut stream = Vec::new();
    memory.export(&mut stream).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let saved = Index::import(dir.path().join("saved.hnsw"), stream.as_slice()).unwrap();
    assert_eq!(saved.keys().unwrap(), memory.keys().unwrap());
    for key in saved.keys().unwrap() {
        assert_eq!(saved.get(key).unwrap(), memory.get(key).unwrap());
    }
    memory.close().unwrap();
}

#[test]
fn bad_options_are_refused() {
    assert!(matches!(
        Index::in_memory(Options::new(0)),
        Err(hnswdb::Error::InvalidOptions { .. })
    ));
}
