//! One write transaction at a time: a thread that holds one and asks the index for another
//! write (or anything that waits for the writer) gets `Error::WriteInProgress` instead of
//! waiting for itself forever; `try_write` does not wait for another thread's transaction.

use std::sync::mpsc;

use hnswdb::{Error, Index, Metric, Options};

fn index() -> (tempfile::TempDir, Index) {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create(
        dir.path().join("w.hnsw"),
        Options::new(2).metric(Metric::L2),
    )
    .unwrap();
    (dir, index)
}

fn in_progress<T: std::fmt::Debug>(result: hnswdb::Result<T>) -> bool {
    matches!(result, Err(Error::WriteInProgress))
}

#[test]
fn the_thread_holding_a_write_transaction_is_refused_not_deadlocked() {
    let (_dir, index) = index();
    index.insert(1, &[1.0, 0.0]).unwrap();
    let mut tx = index.write().unwrap();
    tx.insert(2, &[0.0, 1.0]).unwrap();
    assert!(in_progress(index.write()));
    assert!(in_progress(index.try_write()));
    assert!(in_progress(index.insert(3, &[1.0, 1.0])));
    assert!(in_progress(index.insert_batch([(3, [1.0, 1.0])])));
    assert!(in_progress(index.remove(1)));
    assert!(in_progress(index.checkpoint()));
    assert!(in_progress(index.compact()));
    assert!(in_progress(index.wait_loaded()));
    // Reads go on, at the last commit.
    assert_eq!(index.search(&[0.0, 1.0], 1).unwrap()[0].key, 1);
    // The transaction is still whole.
    tx.commit().unwrap();
    assert_eq!(index.len(), 2);
    // And the lock is free again, for this thread too.
    index.insert(3, &[1.0, 1.0]).unwrap();
    assert_eq!(index.len(), 3);
}

#[test]
fn try_write_does_not_wait_for_another_threads_transaction() {
    let (_dir, index) = index();
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let index = &index;
        s.spawn(move || {
            let tx = index.write().unwrap();
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            drop(tx);
        });
        held_rx.recv().unwrap();
        assert!(index.try_write().unwrap().is_none());
        release_tx.send(()).unwrap();
    });
    let mut tx = index
        .try_write()
        .unwrap()
        .expect("the other transaction ended");
    tx.insert(1, &[0.5, 0.5]).unwrap();
    tx.commit().unwrap();
    assert_eq!(index.len(), 1);
}
