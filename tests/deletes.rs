//! Exact deletes leave a graph as good as a fresh build: on real SIFT vectors
//! (`bigann10k/heldout`, L2, m=16, ef_construction=200, k=10, ef=64), removing half the index,
//! or churning it (remove 10%, insert as many, ten times), keeps recall@10 within 0.01 of a
//! fresh build of the same survivors, against exact ground truth computed over the survivors.
//! Removing every node down to empty, entry points included, keeps `verify()` clean and search
//! exact on small remainders; an upsert never lets the old vector be found.

mod common;

use std::collections::{HashMap, HashSet};

use common::{data_dir, exact_knn, read_fvecs, search_recall};
use hnswdb::{Durability, Index, Metric, Options, SearchParams};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

const K: usize = 10;
const EF: usize = 64;
/// How far below a fresh build of the survivors an index with removals may fall.
const TOLERANCE: f64 = 0.01;

type Rows = Vec<(u64, Vec<f32>)>;

/// The base vectors and the 1,000 held-out queries of `bigann10k/heldout`.
fn bigann() -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let dir = data_dir("bigann10k/heldout");
    (
        read_fvecs(&dir.join("base.fvecs")),
        read_fvecs(&dir.join("query.fvecs")),
    )
}

/// m=16, ef_construction=200. Eventual durability: these tests measure the graph, not fsync.
fn options() -> Options {
    Options::new(128)
        .metric(Metric::L2)
        .m(16)
        .ef_construction(200)
        .durability(Durability::Eventual)
}

fn build(path: &std::path::Path, rows: &[(u64, Vec<f32>)]) -> Index {
    let index = Index::create(path, options()).unwrap();
    index
        .insert_batch(rows.iter().map(|(k, v)| (*k, v.as_slice())))
        .unwrap();
    index
}

/// Recall@10 at ef=64 of `index`, whose contents are `rows`, against exact ground truth over
/// `rows`.
fn recall_over(index: &Index, rows: &[(u64, Vec<f32>)], queries: &[Vec<f32>]) -> f64 {
    assert_eq!(index.len(), rows.len());
    let truth = exact_knn(Metric::L2, rows, queries, K);
    let live: HashSet<u64> = rows.iter().map(|(k, _)| *k).collect();
    search_recall(index, queries, &truth, EF, &live)
}

/// Recall of a fresh build of exactly `rows`, in key order.
fn fresh_recall(dir: &std::path::Path, rows: &[(u64, Vec<f32>)], queries: &[Vec<f32>]) -> f64 {
    let mut sorted = rows.to_vec();
    sorted.sort_by_key(|(k, _)| *k);
    let path = dir.join("fresh.hnsw");
    let _ = std::fs::remove_file(&path);
    let fresh = build(&path, &sorted);
    let recall = recall_over(&fresh, &sorted, queries);
    drop(fresh);
    std::fs::remove_file(&path).unwrap();
    recall
}

#[test]
fn removing_half_matches_a_fresh_build_of_the_survivors() {
    let seed = common::seed(1);
    let mut rng = StdRng::seed_from_u64(seed);
    let (base, queries) = bigann();
    let rows: Rows = base
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let index = build(&tmp.path().join("all.hnsw"), &rows);
    let before = recall_over(&index, &rows, &queries);

    let mut order: Vec<u64> = rows.iter().map(|(k, _)| *k).collect();
    order.shuffle(&mut rng);
    let (gone, _) = order.split_at(rows.len() / 2);
    // Most in transactions of 1,000, the last 200 one call each.
    let (batched, single) = gone.split_at(gone.len() - 200);
    for chunk in batched.chunks(1000) {
        let mut tx = index.write().unwrap();
        for &key in chunk {
            assert!(tx.remove(key).unwrap());
        }
        tx.commit().unwrap();
    }
    for &key in single {
        assert!(index.remove(key).unwrap());
    }
    index.verify().unwrap();
    let gone: HashSet<u64> = gone.iter().copied().collect();
    let survivors: Rows = rows
        .iter()
        .filter(|(k, _)| !gone.contains(k))
        .cloned()
        .collect();
    for &key in gone.iter().take(100) {
        assert_eq!(index.get(key).unwrap(), None);
        assert!(!index.remove(key).unwrap());
    }
    let stats = index.stats().unwrap();
    assert_eq!(stats.len, survivors.len() as u64);
    assert_eq!(stats.free_ids, gone.len() as u64);

    let removed = recall_over(&index, &survivors, &queries);
    let fresh = fresh_recall(tmp.path(), &survivors, &queries);
    eprintln!(
        "all {} vectors: recall {before:.4}; after removing {}: {removed:.4}, fresh build of the \
         {} survivors: {fresh:.4}",
        rows.len(),
        gone.len(),
        survivors.len()
    );
    assert!(
        removed >= fresh - TOLERANCE,
        "recall after removing half {removed:.4} < fresh build {fresh:.4} - {TOLERANCE}"
    );

    // The same after reopening.
    let path = index.path().to_path_buf();
    drop(index);
    let index = Index::open(&path).unwrap();
    index.verify().unwrap();
    assert_eq!(recall_over(&index, &survivors, &queries), removed);
}

/// Ten rounds, each one transaction that removes a random 10% of the index and inserts as many
/// vectors from outside it under new keys. The index starts with 6,000 of the 9,000 base
/// vectors; the outside pool is the other 3,000 plus every vector removed so far. After every
/// round: `verify()`, and recall against a fresh build of exactly the current survivors (a
/// fresh build per round, not a fixed floor).
#[test]
fn churn_keeps_recall_of_a_fresh_build() {
    const START: usize = 6000;
    const ROUNDS: usize = 10;
    let seed = common::seed(2);
    let mut rng = StdRng::seed_from_u64(seed);
    let (base, queries) = bigann();
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path().join("churn.hnsw"), options()).unwrap();
    // key -> row of `base`
    let mut live: HashMap<u64, usize> = (0..START).map(|i| (i as u64, i)).collect();
    let mut outside: Vec<usize> = (START..base.len()).collect();
    index
        .insert_batch((0..START).map(|i| (i as u64, base[i].as_slice())))
        .unwrap();
    let mut next_key = base.len() as u64;
    let mut worst = f64::INFINITY;
    for round in 1..=ROUNDS {
        let mut keys: Vec<u64> = live.keys().copied().collect();
        keys.sort_unstable();
        keys.shuffle(&mut rng);
        let count = START / 10;
        outside.shuffle(&mut rng);
        let incoming: Vec<usize> = outside.drain(..count).collect();
        let mut tx = index.write().unwrap();
        for &key in &keys[..count] {
            assert!(tx.remove(key).unwrap());
            outside.push(live.remove(&key).unwrap());
        }
        for row in incoming {
            tx.insert(next_key, &base[row]).unwrap();
            live.insert(next_key, row);
            next_key += 1;
        }
        tx.commit().unwrap();
        index.verify().unwrap();

        let rows: Rows = live.iter().map(|(&k, &r)| (k, base[r].clone())).collect();
        let churned = recall_over(&index, &rows, &queries);
        let fresh = fresh_recall(tmp.path(), &rows, &queries);
        eprintln!(
            "round {round}: {} vectors, recall {churned:.4}, fresh build {fresh:.4}, file {} bytes",
            rows.len(),
            index.stats().unwrap().file_bytes
        );
        worst = worst.min(churned - fresh);
        assert!(
            churned >= fresh - TOLERANCE,
            "round {round}: recall {churned:.4} < fresh build {fresh:.4} - {TOLERANCE}"
        );
    }
    eprintln!("churn: worst recall minus fresh {worst:+.4}");
}

/// Every key, removed one call at a time in random order until the index is empty, learning
/// each key's level from `stats()`; `verify()` at checkpoints and whenever the top level empties
/// (that removal was the entry point); search stays exact once the remainder is smaller than
/// ef. Then the same build again, emptied top level first, so that the entry point is removed
/// over and over; and the empty index takes inserts again.
#[test]
fn removing_every_node_down_to_empty() {
    const N: usize = 3000;
    let seed = common::seed(3);
    let mut rng = StdRng::seed_from_u64(seed);
    let (base, queries) = bigann();
    let rows: Rows = base[..N]
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u64, v.clone()))
        .collect();
    let queries = &queries[..100];
    let tmp = tempfile::tempdir().unwrap();
    let index = build(&tmp.path().join("a.hnsw"), &rows);
    let mut levels_built = index.stats().unwrap().nodes_per_level;

    let mut order: Vec<u64> = (0..N as u64).collect();
    order.shuffle(&mut rng);
    let mut live: HashMap<u64, Vec<f32>> = rows.iter().cloned().collect();
    let mut level_of: HashMap<u64, usize> = HashMap::new();
    let mut before = index.stats().unwrap();
    let mut entry_removed = 0;
    let checkpoints = [N * 3 / 4, N / 2, N / 4, N / 10, 100, 64, 10, 3, 2, 1, 0];
    for (i, &key) in order.iter().enumerate() {
        assert!(index.remove(key).unwrap(), "key {key}");
        live.remove(&key);
        let after = index.stats().unwrap();
        assert_eq!(after.len, live.len() as u64);
        let level = (0..before.nodes_per_level.len())
            .find(|&l| {
                after.nodes_per_level.get(l).copied().unwrap_or(0) < before.nodes_per_level[l]
            })
            .expect("one level lost a node");
        level_of.insert(key, level);
        let top_emptied = after.max_level != before.max_level;
        entry_removed += usize::from(top_emptied);
        if top_emptied || checkpoints.contains(&live.len()) {
            index
                .verify()
                .unwrap_or_else(|e| panic!("after removing {} keys: {e}", i + 1));
            check_usable(&index, &live, queries);
        }
        before = after;
    }
    assert!(index.is_empty());
    assert_eq!(index.stats().unwrap().max_level, None);
    eprintln!(
        "emptied {N} nodes of levels {levels_built:?}; the top level emptied {entry_removed} times"
    );
    assert!(index.search(&rows[0].1, K).unwrap().is_empty());

    // The empty index is usable.
    index
        .insert_batch(rows[..50].iter().map(|(k, v)| (*k, v.as_slice())))
        .unwrap();
    index.verify().unwrap();
    let live: HashMap<u64, Vec<f32>> = rows[..50].iter().cloned().collect();
    check_usable(&index, &live, queries);
    drop(index);

    // Same options, same inserts: the same graph, so the levels learned above hold. Remove the
    // nodes of the highest level first: each removal takes a node of the top level, and the
    // last of each level is certainly the entry point.
    let index = build(&tmp.path().join("b.hnsw"), &rows);
    assert_eq!(index.stats().unwrap().nodes_per_level, levels_built);
    let mut order: Vec<u64> = (0..N as u64).collect();
    order.shuffle(&mut rng);
    order.sort_by_key(|k| std::cmp::Reverse(level_of[k]));
    let mut live: HashMap<u64, Vec<f32>> = rows.iter().cloned().collect();
    let mut since_check = 0;
    for &key in order.iter().take_while(|k| level_of[k] > 0) {
        let level = level_of[&key];
        assert_eq!(
            index.stats().unwrap().max_level,
            Some(level as u8),
            "key {key} is not on the top level"
        );
        assert!(index.remove(key).unwrap());
        live.remove(&key);
        levels_built[level] -= 1;
        since_check += 1;
        // Every removal up there, every 20th on layer 1, and the last of each level.
        if level >= 2 || since_check == 20 || levels_built[level] == 0 {
            since_check = 0;
            index
                .verify()
                .unwrap_or_else(|e| panic!("after removing key {key} of level {level}: {e}"));
            check_usable(&index, &live, queries);
        }
    }
    let stats = index.stats().unwrap();
    assert_eq!(stats.max_level, Some(0));
    assert_eq!(stats.len, live.len() as u64);
    index.verify().unwrap();
    check_usable(&index, &live, queries);
}

/// Search returns `min(K, len)` distinct live keys, each with the distance of its stored vector;
/// exactly the true nearest when fewer than ef nodes remain (ef then covers them all); and
/// recall of at least 0.9 otherwise.
fn check_usable(index: &Index, live: &HashMap<u64, Vec<f32>>, queries: &[Vec<f32>]) {
    if live.is_empty() {
        assert!(index.search(&queries[0], K).unwrap().is_empty());
        return;
    }
    let rows: Rows = live.iter().map(|(k, v)| (*k, v.clone())).collect();
    let truth = exact_knn(Metric::L2, &rows, queries, K);
    let mut found = 0.0;
    for (query, truth) in queries.iter().zip(&truth) {
        let hits = index
            .search_with(query, &SearchParams::new(K).ef(EF))
            .unwrap();
        assert_eq!(hits.len(), K.min(live.len()));
        let keys: HashSet<u64> = hits.iter().map(|h| h.key).collect();
        assert_eq!(keys.len(), hits.len(), "duplicate hits");
        for hit in &hits {
            let v = live
                .get(&hit.key)
                .unwrap_or_else(|| panic!("removed key {} returned", hit.key));
            assert_eq!(hit.distance, Metric::L2.distance(query, v));
        }
        let got: Vec<u64> = hits.iter().map(|h| h.key).collect();
        if live.len() <= EF {
            assert_eq!(&got, truth, "{} nodes left: search not exact", live.len());
        }
        found += common::recall(&got, truth);
    }
    let recall = found / queries.len() as f64;
    assert!(
        recall >= 0.9,
        "{} nodes left: recall {recall:.3}",
        live.len()
    );
}

/// An upsert replaces the vector: `get` returns the new one, and no search finds the key at the
/// old vector's place — by itself, in a transaction with other writes, and twice in one
/// transaction.
#[test]
fn upsert_replaces_the_vector() {
    const N: usize = 2000;
    let seed = common::seed(4);
    let mut rng = StdRng::seed_from_u64(seed);
    let (base, _) = bigann();
    let tmp = tempfile::tempdir().unwrap();
    let rows: Rows = base[..N]
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u64, v.clone()))
        .collect();
    let index = build(&tmp.path().join("u.hnsw"), &rows);
    let mut current: HashMap<u64, Vec<f32>> = rows.iter().cloned().collect();

    // 300 keys get the vector of a row outside the index: 100 singly, 100 in a transaction
    // that also removes and inserts other keys, 100 written twice in one transaction.
    let mut keys: Vec<u64> = (0..N as u64).collect();
    keys.shuffle(&mut rng);
    let mut spare = N..base.len();
    let mut old: Vec<(u64, Vec<f32>)> = Vec::new();
    for &key in &keys[..100] {
        let new = base[spare.next().unwrap()].clone();
        index.insert(key, &new).unwrap();
        old.push((key, current.insert(key, new).unwrap()));
    }
    let mut tx = index.write().unwrap();
    for (i, &key) in keys[100..200].iter().enumerate() {
        let new = base[spare.next().unwrap()].clone();
        tx.insert(key, &new).unwrap();
        old.push((key, current.insert(key, new).unwrap()));
        if i % 10 == 0 {
            // An unrelated remove and a brand-new key in the same transaction.
            let other = keys[1000 + i];
            assert!(tx.remove(other).unwrap());
            current.remove(&other);
            let fresh = 10_000 + i as u64;
            let v = base[spare.next().unwrap()].clone();
            tx.insert(fresh, &v).unwrap();
            current.insert(fresh, v);
        }
    }
    tx.commit().unwrap();
    let mut tx = index.write().unwrap();
    for &key in &keys[200..300] {
        let first = base[spare.next().unwrap()].clone();
        let second = base[spare.next().unwrap()].clone();
        tx.insert(key, &first).unwrap();
        tx.insert(key, &second).unwrap();
        old.push((key, first));
        old.push((key, current.insert(key, second).unwrap()));
    }
    tx.commit().unwrap();
    index.verify().unwrap();
    assert_eq!(index.len(), current.len());

    for (key, v) in &current {
        assert_eq!(index.get(*key).unwrap().as_ref(), Some(v), "key {key}");
    }
    // Searching at an old vector: the key may come back only at its new vector's distance.
    // Searching at a new vector finds its key first.
    for (key, was) in &old {
        let now = &current[key];
        for hit in index
            .search_with(was, &SearchParams::new(K).ef(EF))
            .unwrap()
        {
            assert_eq!(
                hit.distance,
                Metric::L2.distance(was, &current[&hit.key]),
                "key {} found at a vector it no longer has",
                hit.key
            );
        }
        let hits = index
            .search_with(now, &SearchParams::new(1).ef(EF))
            .unwrap();
        assert_eq!(hits[0].distance, 0.0, "key {key}");
    }
    drop(index);
    let index = Index::open(tmp.path().join("u.hnsw")).unwrap();
    index.verify().unwrap();
    for (key, v) in &current {
        assert_eq!(index.get(*key).unwrap().as_ref(), Some(v));
    }
}
