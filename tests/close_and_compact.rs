//! `Index::close` reports what a drop would swallow and leaves every commit durable;
//! `compact` works on an index shared between threads, while they search.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use hnswdb::{Durability, Index, Metric, Options};

#[test]
fn close_makes_eventual_commits_durable_and_frees_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.hnsw");
    let options = Options::new(8)
        .metric(Metric::L2)
        .durability(Durability::Eventual);
    let vectors = common::random_vectors(3, 40, 8);
    let index = Index::create(&path, options).unwrap();
    for (key, v) in vectors.iter().enumerate() {
        index.insert(key as u64, v).unwrap();
    }
    index.close().unwrap();
    // Closed: the file is free for another handle at once.
    let index = Index::open(&path).unwrap();
    assert_eq!(index.len(), 40);
    index.verify().unwrap();
    assert_eq!(index.get(7).unwrap().unwrap(), vectors[7]);
    index.close().unwrap();
}

#[test]
fn compact_runs_on_a_shared_index_while_other_threads_search() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.hnsw");
    let vectors = common::random_vectors(11, 600, 8);
    let index = Arc::new(Index::create(&path, Options::new(8).metric(Metric::L2)).unwrap());
    common::insert_numbered(&index, &vectors);
    for key in (0..600).step_by(2) {
        index.remove(key).unwrap();
    }
    let before = std::fs::metadata(&path).unwrap().len();
    let stop = AtomicBool::new(false);
    let searches = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..2 {
            let (index, stop, searches, vectors) = (&index, &stop, &searches, &vectors);
            s.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Acquire) || searches.load(Ordering::Relaxed) < 50 {
                    let hits = index.search(&vectors[i % 600], 5).unwrap();
                    assert!(
                        hits.iter().all(|h| h.key % 2 == 1),
                        "a removed key came back"
                    );
                    searches.fetch_add(1, Ordering::Relaxed);
                    i += 7;
                }
            });
        }
        for _ in 0..3 {
            index.compact().unwrap();
        }
        stop.store(true, Ordering::Release);
    });
    assert!(searches.load(Ordering::Relaxed) >= 50);
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(
        after < before,
        "compact did not shrink the file: {before} -> {after}"
    );
    assert_eq!(index.len(), 300);
    index.verify().unwrap();
    index.insert(10_000, &vectors[0]).unwrap();
    drop(index);
    let index = Index::open(&path).unwrap();
    assert_eq!(index.len(), 301);
    index.verify().unwrap();
}

/// redb grows a file by doubling it; a compaction leaves only the rows (and redb's own pages),
/// so a build with nothing removed shrinks too.
#[test]
fn compact_gives_back_the_slack_of_the_last_doubling() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.hnsw");
    let vectors = common::random_vectors(5, 3000, 64);
    let index = Index::create(&path, Options::new(64).metric(Metric::L2)).unwrap();
    common::insert_numbered(&index, &vectors);
    let before = std::fs::metadata(&path).unwrap().len();
    index.compact().unwrap();
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(
        after < before,
        "compact kept the slack: {before} -> {after} bytes"
    );
    assert_eq!(index.get(2999).unwrap().unwrap(), vectors[2999]);
    index.verify().unwrap();
}
