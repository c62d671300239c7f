//! `Index` is `Send + Sync`: threads search and read while one thread writes, with no errors,
//! and a key is found by every search that starts after its `insert` returned.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use hnswdb::{Index, Metric, Options, SearchParams};

#[test]
fn index_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Index>();
}

#[test]
fn searches_run_while_a_writer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(
        Index::create(
            dir.path().join("c.hnsw"),
            Options::new(8).metric(Metric::L2),
        )
        .unwrap(),
    );
    let vectors = common::random_vectors(common::seed(11), 600, 8);
    index
        .insert_batch(
            vectors[..100]
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u64, v.as_slice())),
        )
        .unwrap();
    // Keys below `inserted` have returned from `insert`.
    let inserted = Arc::new(AtomicU64::new(100));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (index, inserted, done, vectors) = (
                index.clone(),
                inserted.clone(),
                done.clone(),
                vectors.clone(),
            );
            std::thread::spawn(move || {
                let mut searches = 0u64;
                while !done.load(Ordering::Acquire) {
                    let newest = inserted.load(Ordering::Acquire) - 1;
                    let q = &vectors[newest as usize];
                    let hits = index.search_with(q, &SearchParams::new(1).ef(64)).unwrap();
                    assert_eq!(
                        hits[0].key, newest,
                        "key {newest} not found after its insert returned"
                    );
                    assert_eq!(index.get(newest).unwrap().as_ref(), Some(q));
                    searches += 1;
                }
                searches
            })
        })
        .collect();
    for (i, v) in vectors.iter().enumerate().skip(100) {
        index.insert(i as u64, v).unwrap();
        inserted.store(i as u64 + 1, Ordering::Release);
    }
    done.store(true, Ordering::Release);
    let searches: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    eprintln!("{searches} searches ran during 500 inserts");
    assert_eq!(index.len(), 600);
    index.verify().unwrap();
}
