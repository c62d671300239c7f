//! An open index answers before its cache is loaded, and the same as once it is: searches on a
//! snapshot with nothing cached, fully loaded, and with no layer-0 cache give identical hits;
//! commits made while the background load is pending are not lost when it installs; dropping
//! an index mid-load stops its loader and releases the file.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hnswdb::{Hit, Index, Metric, Options, SearchParams};

/// Every answer of `index` to `queries` at `ef`, with and without a filter.
fn answers(index: &Index, queries: &[Vec<f32>], ef: usize) -> Vec<Vec<Hit>> {
    let mut all = Vec::new();
    for q in queries {
        all.push(index.search_with(q, &SearchParams::new(10).ef(ef)).unwrap());
        all.push(
            index
                .search_with(q, &SearchParams::new(5).ef(ef).filter(|k| k % 7 == 3))
                .unwrap(),
        );
    }
    all
}

/// Hits compared exactly: keys and the bits of the distances.
fn assert_same(a: &[Vec<Hit>], b: &[Vec<Hit>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let x: Vec<(u64, u32)> = x.iter().map(|h| (h.key, h.distance.to_bits())).collect();
        let y: Vec<(u64, u32)> = y.iter().map(|h| (h.key, h.distance.to_bits())).collect();
        assert_eq!(x, y, "{what}: answer {i} differs");
    }
}

/// What redb's page cache takes of a budget of a few megabytes: its minimum.
const PAGE_CACHE: u64 = 1 << 20;

/// Reopens `path` with layer-0 cache `budget` stored, and waits for its load.
fn reopen_with_budget(path: &Path, budget: u64) -> Index {
    let options = Index::open(path).unwrap().options().clone();
    let index = Index::open_or_create(path, options.cache_bytes(budget)).unwrap();
    index.wait_loaded().unwrap();
    index
}

#[test]
fn unloaded_loaded_and_uncached_give_identical_answers() {
    let dir = common::data_dir("bigann10k/heldout");
    let base = common::read_fvecs(&dir.join("base.fvecs"));
    let queries = common::read_fvecs(&dir.join("query.fvecs"));
    let queries = &queries[..100];
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b.hnsw");
    let options = Options::new(128)
        .metric(Metric::L2)
        .m(16)
        .ef_construction(100);
    let index = Index::create(&path, options).unwrap();
    common::insert_numbered(&index, &base);
    let built = answers(&index, queries, 64);
    drop(index);

    let unloaded = Index::open_paused(&path).unwrap();
    assert!(!unloaded.is_loaded());
    assert_same(&built, &answers(&unloaded, queries, 64), "nothing cached");
    let stats_unloaded = unloaded.stats().unwrap();
    assert!(!stats_unloaded.layer0_vectors_cached);
    unloaded.resume_load();
    unloaded.wait_loaded().unwrap();
    assert!(unloaded.is_loaded());
    let stats = unloaded.stats().unwrap();
    assert!(stats.layer0_vectors_cached && stats.layer0_links_cached);
    assert_eq!(stats.degree_histogram, stats_unloaded.degree_histogram);
    assert_eq!(stats.nodes_per_level, stats_unloaded.nodes_per_level);
    assert_same(&built, &answers(&unloaded, queries, 64), "fully loaded");
    drop(unloaded);

    let uncached = reopen_with_budget(&path, 0);
    let stats = uncached.stats().unwrap();
    assert!(!stats.layer0_vectors_cached && !stats.layer0_links_cached);
    assert_same(&built, &answers(&uncached, queries, 64), "no layer-0 cache");
    drop(uncached);

    // Vectors within the budget, lists not (redb's page cache takes 1 MiB of it).
    let vectors_only = reopen_with_budget(&path, 9_100 * 128 * 4 + PAGE_CACHE);
    let stats = vectors_only.stats().unwrap();
    assert!(stats.layer0_vectors_cached && !stats.layer0_links_cached);
    assert_eq!(stats.layer0_vectors_in_cache, 9_000);
    assert_same(&built, &answers(&vectors_only, queries, 64), "vectors only");
    drop(vectors_only);

    // The vectors of the first 4,480 ids (70 whole chunks of 64) fit, the rest are read from
    // the file.
    let part = reopen_with_budget(&path, 4_500 * 128 * 4 + PAGE_CACHE);
    let stats = part.stats().unwrap();
    assert!(!stats.layer0_vectors_cached && !stats.layer0_links_cached);
    assert_eq!(stats.layer0_vectors_in_cache, 4_480);
    assert!(
        stats.cache_bytes < 4_500 * 128 * 4 + (1 << 20),
        "{}",
        stats.cache_bytes
    );
    assert_same(&built, &answers(&part, queries, 64), "part of the vectors");
}

#[test]
fn cosine_answers_do_not_depend_on_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.hnsw");
    let vectors = common::random_vectors(common::seed(5), 1500, 12);
    let index = Index::create(&path, Options::new(12).metric(Metric::Cosine).m(6)).unwrap();
    common::insert_numbered(&index, &vectors);
    let queries = common::random_vectors(common::seed(6), 50, 12);
    let built = answers(&index, &queries, 32);
    drop(index);
    let unloaded = Index::open_paused(&path).unwrap();
    // From the file, cosine vectors are scaled as the cache scales them: the same bits.
    assert_same(&built, &answers(&unloaded, &queries, 32), "nothing cached");
    unloaded.resume_load();
    unloaded.wait_loaded().unwrap();
    assert_same(&built, &answers(&unloaded, &queries, 32), "loaded");
}

/// Inserts, upserts and removes (single and batched, parallel-built) on `index`, and the same
/// on `vectors` (by key).
fn churn(index: &Index, vectors: &mut Vec<Option<Vec<f32>>>, seed: u64) {
    let mut rng = common::Rng(seed);
    let dim = index.dim();
    let fresh = |rng: &mut common::Rng| (0..dim).map(|_| rng.unit() - 0.5).collect::<Vec<f32>>();
    for round in 0..6 {
        for _ in 0..40 {
            let key = rng.below(vectors.len() as u64 + 50) as usize;
            if key >= vectors.len() {
                vectors.resize(key + 1, None);
            }
            if rng.chance(35) {
                assert_eq!(index.remove(key as u64).unwrap(), vectors[key].is_some());
                vectors[key] = None;
            } else {
                let v = fresh(&mut rng);
                index.insert(key as u64, &v).unwrap();
                vectors[key] = Some(v);
            }
        }
        // A batch big enough for the parallel build, half upserts.
        let start = if round % 2 == 0 { 0 } else { vectors.len() };
        let rows: Vec<(u64, Vec<f32>)> = (start..start + 300)
            .map(|k| (k as u64, fresh(&mut rng)))
            .collect();
        let mut tx = index.write().unwrap();
        tx.insert_batch(rows.iter().map(|(k, v)| (*k, v.as_slice())))
            .unwrap();
        for k in (start..start + 300).step_by(9) {
            tx.remove(k as u64).unwrap();
        }
        tx.commit().unwrap();
        for (k, v) in rows {
            let k = k as usize;
            if k >= vectors.len() {
                vectors.resize(k + 1, None);
            }
            vectors[k] = Some(v);
        }
        for k in (start..start + 300).step_by(9) {
            vectors[k] = None;
        }
    }
}

/// `index` holds exactly `vectors`, passes `verify`, and answers as a fresh open of its file
/// does.
fn check_against_file(index: &Index, vectors: &[Option<Vec<f32>>], queries: &[Vec<f32>]) {
    index.verify().unwrap();
    let live: Vec<u64> = (0..vectors.len() as u64)
        .filter(|&k| vectors[k as usize].is_some())
        .collect();
    assert_eq!(index.keys().unwrap(), live);
    assert_eq!(index.len(), live.len());
    for &k in live.iter().step_by(37) {
        assert_eq!(index.get(k).unwrap().as_ref(), vectors[k as usize].as_ref());
    }
    let mine = answers(index, queries, 48);
    let stats = index.stats().unwrap();
    let path = index.path().to_owned();
    let fresh_answers = {
        // A second handle cannot open the file: compare with a loaded copy instead.
        let copy = path.with_extension("copy");
        std::fs::copy(&path, &copy).unwrap();
        let fresh = Index::open(&copy).unwrap();
        fresh.wait_loaded().unwrap();
        assert_eq!(
            fresh.stats().unwrap().degree_histogram,
            stats.degree_histogram
        );
        let a = answers(&fresh, queries, 48);
        drop(fresh);
        std::fs::remove_file(&copy).unwrap();
        a
    };
    assert_same(&fresh_answers, &mine, "after the install");
}

fn writes_during_pending_load(budget: u64, metric: Metric) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("w.hnsw");
    let dim = 10;
    let seed = common::seed(21);
    let mut vectors: Vec<Option<Vec<f32>>> = common::random_vectors(seed, 1200, dim)
        .into_iter()
        .map(Some)
        .collect();
    let options = Options::new(dim).metric(metric).m(5).cache_bytes(budget);
    let index = Index::create(&path, options).unwrap();
    index
        .insert_batch(
            vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u64, v.clone().unwrap())),
        )
        .unwrap();
    drop(index);
    let queries = common::random_vectors(seed ^ 7, 40, dim);

    // Writes land before the load reads anything: the install must re-read all of them.
    let index = Index::open_paused(&path).unwrap();
    churn(&index, &mut vectors, seed ^ 1);
    index.verify().unwrap();
    index.resume_load();
    index.wait_loaded().unwrap();
    check_against_file(&index, &vectors, &queries);
    // And the loaded snapshot keeps following commits.
    churn(&index, &mut vectors, seed ^ 2);
    check_against_file(&index, &vectors, &queries);
    drop(index);

    // Writes racing the load.
    let index = Index::open(&path).unwrap();
    churn(&index, &mut vectors, seed ^ 3);
    index.wait_loaded().unwrap();
    check_against_file(&index, &vectors, &queries);
}

#[test]
fn writes_during_a_pending_load_survive_the_install() {
    writes_during_pending_load(1 << 30, Metric::L2);
}

#[test]
fn writes_during_a_pending_load_without_layer0_cache() {
    writes_during_pending_load(0, Metric::Cosine);
}

#[test]
fn writes_during_a_pending_load_with_vectors_only() {
    // 1,200 + 1,000 ids × 10 floats fit; the lists (11 words each) do not.
    writes_during_pending_load(100_000, Metric::Dot);
}

#[test]
fn writes_during_a_pending_load_with_part_of_the_vectors() {
    // The vectors of ids below 704 (11 chunks of 64 × 10 floats) fit; new ids go to the file.
    writes_during_pending_load(30_000, Metric::L2);
}

#[test]
fn dropping_an_index_mid_load_releases_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("d.hnsw");
    let vectors = common::random_vectors(common::seed(9), 3000, 32);
    let index = Index::create(&path, Options::new(32).metric(Metric::L2)).unwrap();
    common::insert_numbered(&index, &vectors);
    drop(index);
    // Held back: the loader waits, and must still stop.
    let index = Index::open_paused(&path).unwrap();
    drop(index);
    for _ in 0..20 {
        let index = Index::open(&path).unwrap();
        drop(index);
    }
    let index = Index::open(&path).unwrap();
    assert_eq!(index.search(&vectors[5], 1).unwrap()[0].key, 5);
    index.wait_loaded().unwrap();
    index.verify().unwrap();
}

#[test]
fn compact_during_a_pending_load() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("k.hnsw");
    let vectors = common::random_vectors(common::seed(12), 800, 8);
    let index = Index::create(&path, Options::new(8).metric(Metric::L2).m(4)).unwrap();
    common::insert_numbered(&index, &vectors);
    drop(index);
    let index = Index::open_paused(&path).unwrap();
    for k in 0..400 {
        index.remove(k).unwrap();
    }
    index.compact().unwrap();
    index.wait_loaded().unwrap();
    assert!(index.is_loaded());
    index.verify().unwrap();
    assert_eq!(index.search(&vectors[500], 1).unwrap()[0].key, 500);
    index.insert(1, &vectors[1]).unwrap();
    index.verify().unwrap();
}

#[test]
fn searches_run_while_the_cache_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.hnsw");
    let vectors = common::random_vectors(common::seed(13), 2000, 16);
    let index = Index::create(&path, Options::new(16).metric(Metric::L2).m(6)).unwrap();
    common::insert_numbered(&index, &vectors);
    let expected = answers(&index, &vectors[..30], 40);
    drop(index);
    let index = Arc::new(Index::open_paused(&path).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let searcher = {
        let (index, stop, vectors) = (Arc::clone(&index), Arc::clone(&stop), vectors.clone());
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !stop.load(Ordering::Acquire) || rounds == 0 {
                assert_same(&expected, &answers(&index, &vectors[..30], 40), "mid-load");
                rounds += 1;
            }
        })
    };
    index.resume_load();
    index.wait_loaded().unwrap();
    stop.store(true, Ordering::Release);
    searcher.join().unwrap();
}

#[test]
fn a_created_index_is_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let index = Index::create(tmp.path().join("n.hnsw"), Options::new(3)).unwrap();
    assert!(index.is_loaded());
    index.wait_loaded().unwrap();
}
