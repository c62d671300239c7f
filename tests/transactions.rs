//! Transactions are all or nothing: one dropped without commit leaves nothing, in the open index
//! or in the file; one committed is all there after reopening; a failed operation spoils only
//! its own transaction.

mod common;

use hnswdb::{Error, Index, Metric, Options};

#[test]
fn dropped_transaction_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.hnsw");
    let index = Index::create(&path, Options::new(2).metric(Metric::L2)).unwrap();
    index.insert(1, &[1.0, 1.0]).unwrap();
    {
        let mut tx = index.write().unwrap();
        tx.insert(2, &[2.0, 2.0]).unwrap();
        tx.insert(1, &[9.0, 9.0]).unwrap();
        tx.remove(1).unwrap();
        assert_eq!(tx.len(), 1);
        assert!(tx.contains(2).unwrap());
    }
    assert_eq!(index.keys().unwrap(), [1]);
    assert_eq!(index.get(1).unwrap(), Some(vec![1.0, 1.0]));
    index.verify().unwrap();
    drop(index);
    let index = Index::open(&path).unwrap();
    assert_eq!(index.keys().unwrap(), [1]);
    assert_eq!(index.search(&[2.0, 2.0], 5).unwrap().len(), 1);
}

#[test]
fn committed_transaction_is_all_there_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.hnsw");
    let rows = common::random_vectors(3, 300, 6);
    {
        let index = Index::create(&path, Options::new(6).metric(Metric::Cosine)).unwrap();
        let mut tx = index.write().unwrap();
        for (i, v) in rows.iter().enumerate() {
            tx.insert(i as u64, v).unwrap();
        }
        for key in (0..300).step_by(3) {
            assert!(tx.remove(key).unwrap());
        }
        tx.commit().unwrap();
    }
    let index = Index::open(&path).unwrap();
    assert_eq!(index.len(), 200);
    for (i, v) in rows.iter().enumerate() {
        let expected = (i % 3 != 0).then(|| v.clone());
        assert_eq!(index.get(i as u64).unwrap(), expected);
    }
    index.verify().unwrap();
}

#[test]
fn a_bad_vector_spoils_only_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create(
        dir.path().join("t.hnsw"),
        Options::new(2).metric(Metric::L2),
    )
    .unwrap();
    index.insert(1, &[1.0, 1.0]).unwrap();
    let batch = vec![
        (2u64, vec![2.0, 2.0]),
        (3, vec![f32::NAN, 0.0]),
        (4, vec![4.0, 4.0]),
    ];
    assert!(matches!(
        index.insert_batch(batch),
        Err(Error::InvalidVector { .. })
    ));
    assert_eq!(index.keys().unwrap(), [1]);
    // Within a transaction, a rejected input leaves the transaction usable.
    let mut tx = index.write().unwrap();
    tx.insert(5, &[5.0, 5.0]).unwrap();
    assert!(tx.insert(6, &[1.0]).is_err());
    tx.commit().unwrap();
    assert_eq!(index.keys().unwrap(), [1, 5]);
    index.verify().unwrap();
}

#[test]
fn upsert_replaces_the_vector() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create(
        dir.path().join("t.hnsw"),
        Options::new(2).metric(Metric::L2),
    )
    .unwrap();
    for i in 0..50u64 {
        index.insert(i, &[i as f32, 0.0]).unwrap();
    }
    index.insert(7, &[1000.0, 1000.0]).unwrap();
    assert_eq!(index.len(), 50);
    assert_eq!(index.get(7).unwrap(), Some(vec![1000.0, 1000.0]));
    let near_old = index.search(&[7.0, 0.0], 3).unwrap();
    assert!(near_old.iter().all(|h| h.key != 7), "{near_old:?}");
    assert_eq!(index.search(&[1000.0, 1000.0], 1).unwrap()[0].key, 7);
    index.verify().unwrap();
}

#[test]
fn compact_gives_space_back_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.hnsw");
    let rows = common::random_vectors(9, 4000, 16);
    let index = Index::create(&path, Options::new(16).metric(Metric::L2)).unwrap();
    common::insert_numbered(&index, &rows);
    let mut tx = index.write().unwrap();
    for key in (0..4000u64).filter(|k| k % 4 != 0) {
        tx.remove(key).unwrap();
    }
    tx.commit().unwrap();
    let before = index.stats().unwrap().file_bytes;
    let answers: Vec<_> = rows
        .iter()
        .step_by(50)
        .map(|q| index.search(q, 5).unwrap())
        .collect();
    index.compact().unwrap();
    let after = index.stats().unwrap().file_bytes;
    eprintln!("file bytes: {before} before compact, {after} after");
    assert!(
        after < before,
        "compact did not shrink the file: {before} -> {after}"
    );
    assert!(!dir.path().join("t.hnsw.compact").exists());
    let again: Vec<_> = rows
        .iter()
        .step_by(50)
        .map(|q| index.search(q, 5).unwrap())
        .collect();
    assert_eq!(answers, again);
    index.verify().unwrap();
    index.insert(99_999, &rows[1]).unwrap();
    drop(index);
    let index = Index::open(&path).unwrap();
    assert_eq!(index.len(), 1001);
    assert_eq!(index.get(99_999).unwrap().as_ref(), Some(&rows[1]));
    index.verify().unwrap();
}
