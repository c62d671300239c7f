//! `Index` is `Send + Sync`: threads search and read while one thread writes, with no errors,
//! and a key is found by every search that starts after its `insert` returned.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use hnswdb::{Hit, Index, Metric, Options, SearchParams};

#[test]
fn index_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Index>();
}

/// Every `CHECKPOINT`th insert, the writer waits for `SEARCHES_PER_CHECKPOINT` searches of it.
const CHECKPOINT: usize = 50;
const SEARCHES_PER_CHECKPOINT: u64 = 4;

/// Waits until `searches` reaches `target`; panics if a reader ended (its panic shows above).
fn wait_for_searches(searches: &AtomicU64, target: u64, readers: &[std::thread::JoinHandle<u64>]) {
    while searches.load(Ordering::Acquire) < target {
        assert!(
            !readers.iter().any(|r| r.is_finished()),
            "a reader stopped while the writer was writing"
        );
        std::thread::yield_now();
    }
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
    common::insert_numbered(&index, &vectors[..100]);
    // Keys below `inserted` have returned from `insert`.
    let inserted = Arc::new(AtomicU64::new(100));
    let done = Arc::new(AtomicBool::new(false));
    // Searches completed (and checked) by all readers.
    let searched = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (index, inserted, done, searched, vectors) = (
                index.clone(),
                inserted.clone(),
                done.clone(),
                searched.clone(),
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
                    searched.fetch_add(1, Ordering::AcqRel);
                }
                searches
            })
        })
        .collect();
    // The writer goes on from each checkpoint only once searches for the key it just inserted
    // ran: past those in flight (one per reader), which may have read the older newest key.
    let in_flight = readers.len() as u64;
    let mut checkpoints = 0;
    for (i, v) in vectors.iter().enumerate().skip(100) {
        index.insert(i as u64, v).unwrap();
        inserted.store(i as u64 + 1, Ordering::Release);
        if i % CHECKPOINT == 0 {
            let target = searched.load(Ordering::Acquire) + in_flight + SEARCHES_PER_CHECKPOINT;
            wait_for_searches(&searched, target, &readers);
            checkpoints += 1;
        }
    }
    done.store(true, Ordering::Release);
    let searches: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    eprintln!("{searches} searches ran during 500 inserts ({checkpoints} checkpoints)");
    assert_eq!(checkpoints, 10);
    assert!(
        searches >= checkpoints * SEARCHES_PER_CHECKPOINT,
        "only {searches} searches ran during the inserts"
    );
    assert_eq!(index.len(), 600);
    index.verify().unwrap();
}

/// One stretch of versions during which a key held one vector: committed versions
/// `from..to` (`to` is `u64::MAX` while it is live).
struct Live {
    from: u64,
    to: u64,
    vector: Arc<Vec<f32>>,
}

/// What the writer has committed, for the readers to check against. Versions count commits;
/// an entry for version `v` is written before commit `v` starts, so a reader that sees a
/// snapshot finds it in the log.
#[derive(Default)]
struct Log {
    keys: std::sync::Mutex<std::collections::HashMap<u64, Vec<Live>>>,
    committed: AtomicU64,
}

impl Log {
    fn set(&self, key: u64, version: u64, vector: Option<Arc<Vec<f32>>>) {
        let mut keys = self.keys.lock().unwrap();
        let lives = keys.entry(key).or_default();
        if lives.last().is_some_and(|l| l.from == version) {
            lives.pop(); // set twice in one transaction: the first never committed
        }
        if let Some(last) = lives.last_mut().filter(|l| l.to == u64::MAX) {
            last.to = version;
        }
        if let Some(vector) = vector {
            lives.push(Live {
                from: version,
                to: u64::MAX,
                vector,
            });
        }
    }

    /// The vectors `key` held at some version in `first..=last`.
    fn vectors_between(&self, key: u64, first: u64, last: u64) -> Vec<Arc<Vec<f32>>> {
        let keys = self.keys.lock().unwrap();
        keys.get(&key).map_or(Vec::new(), |lives| {
            lives
                .iter()
                .filter(|l| l.from <= last && l.to > first)
                .map(|l| l.vector.clone())
                .collect()
        })
    }

    /// A key live with one vector over all of `first..`, committed by version `first`.
    fn settled_key(&self, pick: u64) -> Option<(u64, Arc<Vec<f32>>)> {
        let first = self.committed.load(Ordering::Acquire);
        let keys = self.keys.lock().unwrap();
        let settled: Vec<_> = keys
            .iter()
            .filter_map(|(k, lives)| {
                let last = lives.last()?;
                (last.to == u64::MAX && last.from <= first).then(|| (*k, last.vector.clone()))
            })
            .collect();
        (!settled.is_empty()).then(|| settled[pick as usize % settled.len()].clone())
    }

    /// Whether `key` still holds `vector`, and has since `version` or earlier. (The vector is
    /// compared too: the writer may have replaced the one a reader picked, in a commit made
    /// after the pick and before the reader read `version`.)
    fn unchanged_since(&self, key: u64, vector: &Arc<Vec<f32>>, version: u64) -> bool {
        let keys = self.keys.lock().unwrap();
        keys.get(&key).and_then(|l| l.last()).is_some_and(|l| {
            l.to == u64::MAX && l.from <= version && Arc::ptr_eq(&l.vector, vector)
        })
    }
}

/// Readers search and `get` while a writer inserts, upserts and removes, singly and in
/// transactions: every hit is a key that was live, with that distance, at some committed state
/// during the search; every key committed before a search started and unchanged until it ended
/// is visible to it (a search filtered to the key finds it), and all but at most 1% of them are
/// found by the plain graph walk.
#[test]
fn readers_see_only_committed_states() {
    /// The writer's keys are `0..KEYS`.
    const KEYS: u64 = 400;
    let seed = common::seed(12);
    let dim = 8;
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(
        Index::create(
            dir.path().join("c.hnsw"),
            Options::new(dim).metric(Metric::L2).m(8),
        )
        .unwrap(),
    );
    let log = Arc::new(Log::default());
    let pool = Arc::new(common::random_vectors(seed, 4000, dim));
    index
        .insert_batch((0..200u64).map(|k| (k, pool[k as usize].as_slice())))
        .unwrap();
    for k in 0..200u64 {
        log.set(k, 0, Some(Arc::new(pool[k as usize].clone())));
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3u64)
        .map(|r| {
            let (index, log, done, pool) = (index.clone(), log.clone(), done.clone(), pool.clone());
            std::thread::spawn(move || {
                let mut rng = common::Rng(seed ^ (r + 1) << 32);
                let (mut searches, mut found_checks, mut walk_misses) = (0u64, 0u64, 0u64);
                while !done.load(Ordering::Acquire) {
                    let settled = log.settled_key(rng.next());
                    let query = match &settled {
                        Some((_, v)) if rng.chance(50) => v.as_ref().clone(),
                        _ => pool[rng.below(pool.len() as u64) as usize].clone(),
                    };
                    let first = log.committed.load(Ordering::Acquire);
                    let hits = index
                        .search_with(&query, &SearchParams::new(10).ef(100))
                        .unwrap();
                    let probe = rng.below(KEYS);
                    let got = index.get(probe).unwrap();
                    // The commit in flight may already be published.
                    let last = log.committed.load(Ordering::Acquire) + 1;
                    for hit in &hits {
                        let held = log.vectors_between(hit.key, first, last);
                        assert!(
                            held.iter().any(|v| {
                                (Metric::L2.distance(&query, v) - hit.distance).abs() <= 1e-4
                            }),
                            "hit {hit:?} matches no vector its key held in versions \
                             {first}..={last}"
                        );
                    }
                    if let Some(v) = got {
                        let held = log.vectors_between(probe, first, last);
                        assert!(
                            held.iter().any(|h| **h == v),
                            "get({probe}) returned a vector it never held in {first}..={last}"
                        );
                    }
                    if let Some((key, vector)) = settled {
                        let in_hits = hits.iter().any(|h| h.key == key && h.distance == 0.0);
                        // A graph walk may miss a node that deletes and upserts have left
                        // unreachable; a search filtered to the key falls back to an exact
                        // scan, so it finds every visible key.
                        let only_key = SearchParams::new(1).filter(move |k| k == key);
                        let filtered = index.search_with(&vector, &only_key).unwrap();
                        let found =
                            in_hits || filtered.first() == Some(&Hit { key, distance: 0.0 });
                        if *vector == query && log.unchanged_since(key, &vector, first) {
                            assert!(
                                found,
                                "key {key}, committed before the search (version {first}), not \
                                 found: filtered search {filtered:?}, get {:?}, now {}",
                                index.get(key).unwrap().map(|v| v == *vector),
                                log.committed.load(Ordering::Acquire)
                            );
                            found_checks += 1;
                            walk_misses += u64::from(!in_hits);
                        }
                    }
                    searches += 1;
                }
                (searches, found_checks, walk_misses)
            })
        })
        .collect();

    let mut rng = common::Rng(seed);
    let mut fresh = (200..pool.len()).cycle().map(|i| Arc::new(pool[i].clone()));
    let start = std::time::Instant::now();
    let mut steps = 0;
    while start.elapsed() < std::time::Duration::from_secs(3) && steps < 3000 {
        let version = log.committed.load(Ordering::Acquire) + 1;
        let key = rng.below(KEYS);
        let mut tx = index.write().unwrap();
        for op in 0..1 + u64::from(rng.chance(30)) * rng.below(5) {
            let key = if op == 0 { key } else { rng.below(KEYS) };
            if rng.chance(35) {
                if tx.remove(key).unwrap() {
                    log.set(key, version, None);
                }
            } else {
                let v = fresh.next().unwrap();
                tx.insert(key, &v).unwrap();
                log.set(key, version, Some(v));
            }
        }
        tx.commit().unwrap();
        log.committed.store(version, Ordering::Release);
        steps += 1;
    }
    done.store(true, Ordering::Release);
    let (searches, found, misses): (u64, u64, u64) = readers
        .into_iter()
        .map(|r| r.join().unwrap())
        .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    eprintln!(
        "{steps} commits; {searches} searches, {found} of them for a settled key, {misses} of \
         those missed by the graph walk"
    );
    assert!(found > 0, "no search checked a settled key");
    assert!(
        misses * 100 <= found,
        "the graph walk missed {misses} of {found} settled keys"
    );
    index.verify().unwrap();
}
