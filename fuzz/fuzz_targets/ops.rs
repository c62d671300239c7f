//! Operation sequences on an index, checked against a model (a `BTreeMap` and brute force):
//! inserts, upserts, batches, removes, gets, exact searches (`ef >= len`, with and without a
//! filter), batch searches on 1 to 3 threads (each answer that of `search_with`, a bad query
//! failing the batch), committed and dropped transactions, reopening (with new per-open options) and
//! compaction, under all three metrics, every quantization and dimensions 1 to 4. Vectors come from a coarse grid
//! (ties and duplicates) or from raw bits (`-0.0`, subnormals, NaN, huge values).
//!
//! One input in four runs on a file, where a reopen opens it again; one in four on a named index
//! inside an app database (redb in memory), where every transaction also writes or deletes the
//! app's row for each key it changes (`WriteTxn::redb`), the rows are checked against the
//! committed transactions, a reopen opens the index by name again and `compact` must be refused;
//! the others run on `Index::in_memory`, several times faster, where a reopen compacts (a fresh
//! database, and the snapshot loaded from it) and keeps the options.
//!
//! A crash is: any difference from the model, an error on valid input, a valid result on invalid
//! input, `verify()` failing, or any panic (libFuzzer's hook aborts on every panic, caught or
//! not: on a valid file the library must not panic at all).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arbitrary::Arbitrary;
use hnswdb::redb::{self, ReadableTableMetadata, TableDefinition};
use hnswdb::{Durability, Error, Hit, Index, Metric, Options, Quantization, SearchParams};
use libfuzzer_sys::fuzz_target;

mod common;
use common::scratch_dir;

/// At most this many operations per input, so one input stays fast.
const MAX_OPS: usize = 64;

#[derive(Arbitrary, Debug)]
struct Input {
    metric: u8,
    dim: u8,
    m: u8,
    ef_construction: u8,
    seed: u8,
    /// Memory budget, modulo 4: none; redb's page cache and 64 vectors (one chunk); and 8 KiB
    /// (codes and lists of small indexes); or all of it. Divided by 4, modulo 3: the
    /// quantization (none, int8, binary).
    cache: u8,
    /// A file when 0 modulo 4, a named index in an app database when 1, else memory.
    storage: u8,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Vector {
    /// Components `i / 8`.
    Grid([i8; 4]),
    /// Components with arbitrary bit patterns.
    Bits([u32; 4]),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Insert(u8, Vector),
    Batch(Vec<(u8, Vector)>),
    Remove(u8),
    Get(u8),
    Contains(u8),
    Search {
        query: Vector,
        k: u8,
        extra_ef: u8,
    },
    Filtered {
        query: Vector,
        k: u8,
        modulus: u8,
        rest: u8,
    },
    Txn {
        ops: Vec<TxnOp>,
        commit: bool,
    },
    Reopen {
        eventual: bool,
        ef_search: u8,
    },
    Compact,
    Verify,
    SearchBatch {
        queries: Vec<Vector>,
        /// The batch is `queries` this many times over (each copy shifted), so that short
        /// inputs make batches long enough for several threads.
        copies: u8,
        k: u8,
        threads: u8,
        filtered: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum TxnOp {
    Insert(u8, Vector),
    Remove(u8),
    Contains(u8),
}

/// Few keys (so upserts and removes hit live keys), plus a few at the top of the range.
fn key(k: u8) -> u64 {
    if k >= 250 {
        u64::MAX - u64::from(255 - k)
    } else {
        u64::from(k % 40)
    }
}

fn floats(v: Vector, dim: usize) -> Vec<f32> {
    match v {
        Vector::Grid(g) => g[..dim].iter().map(|&x| f32::from(x) / 8.0).collect(),
        Vector::Bits(b) => b[..dim].iter().map(|&x| f32::from_bits(x)).collect(),
    }
}

/// Each answer's keys and distance bits.
fn hit_bits(answers: &[Vec<Hit>]) -> Vec<Vec<(u64, u32)>> {
    answers
        .iter()
        .map(|hits| hits.iter().map(|h| (h.key, h.distance.to_bits())).collect())
        .collect()
}

/// Vectors whose distances are too extreme to compare with a tolerance: exact-search checks are
/// skipped while one is live (the search must still work).
fn wild(v: &[f32]) -> bool {
    v.iter()
        .any(|x| *x != 0.0 && !(1e-6..=1e4).contains(&x.abs()))
}

/// Whether the index must accept `v` (`Some(true)`), must reject it (`Some(false)`), or may do
/// either (`None`: a cosine norm at the edge of f32's range, where summation order decides).
fn accepts(metric: Metric, v: &[f32]) -> Option<bool> {
    if v.iter().any(|x| !x.is_finite()) {
        return Some(false);
    }
    if metric == Metric::Cosine {
        let norm_sq: f64 = v.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        if norm_sq == 0.0 {
            return Some(false);
        }
        if !(1e-30..=1e37).contains(&norm_sq) {
            return None;
        }
    }
    Some(true)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Vectors by key as bit patterns: `get` must give back exactly these.
type Model = BTreeMap<u64, Vec<u32>>;

/// The app's table beside a named index: one row per key a committed transaction left present.
const ROWS: TableDefinition<u64, ()> = TableDefinition::new("rows");
/// The name of the index in the app database.
const NAME: &str = "fuzz";

/// Where the index lives.
enum Home {
    File(std::path::PathBuf),
    Memory,
    /// The app database and the keys its `ROWS` table must hold.
    App(Arc<redb::Database>, BTreeSet<u64>),
}

struct World {
    home: Home,
    options: Options,
    index: Option<Index>,
    model: Model,
}

impl World {
    fn index(&self) -> &Index {
        self.index.as_ref().unwrap()
    }

    fn metric(&self) -> Metric {
        self.options.get_metric()
    }

    /// Inserts one vector through `insert` (in `tx` or on its own) and updates `model` as the
    /// outcome says, after checking the outcome is allowed.
    fn check_insert(&self, result: hnswdb::Result<()>, key: u64, v: &[f32], model: &mut Model) {
        match (accepts(self.metric(), v), result) {
            (Some(true) | None, Ok(())) => drop(model.insert(key, bits(v))),
            (Some(false) | None, Err(Error::InvalidVector { .. })) => {}
            (expected, got) => panic!("insert {key} {v:?}: expected {expected:?}, got {got:?}"),
        }
    }

    fn search(&self, query: &[f32], k: usize, extra_ef: usize, filter: Option<(u64, u64)>) {
        let index = self.index();
        let ef = self.model.len().max(1) + extra_ef;
        let mut params = SearchParams::new(k).ef(ef);
        if let Some((modulus, rest)) = filter {
            params = params.filter(move |key| key % modulus == rest);
        }
        let result = index.search_with(query, &params);
        if accepts(self.metric(), query) == Some(false) {
            assert!(
                matches!(result, Err(Error::InvalidVector { .. })),
                "search with invalid query {query:?}: {result:?}"
            );
            return;
        }
        let hits = match result {
            Ok(hits) => hits,
            // A borderline query may be refused.
            Err(Error::InvalidVector { .. }) if accepts(self.metric(), query).is_none() => return,
            Err(e) => panic!("search failed: {e}"),
        };
        let live: Vec<(u64, Vec<f32>)> = self
            .model
            .iter()
            .filter(|(key, _)| filter.is_none_or(|(m, r)| *key % m == r))
            .map(|(key, v)| (*key, v.iter().map(|b| f32::from_bits(*b)).collect()))
            .collect();
        assert!(hits.len() <= k, "{} hits for k = {k}", hits.len());
        let mut seen = std::collections::BTreeSet::new();
        for hit in &hits {
            assert!(
                live.iter().any(|(key, _)| *key == hit.key),
                "hit {} is not a live key passing the filter",
                hit.key
            );
            assert!(seen.insert(hit.key), "key {} returned twice", hit.key);
        }
        if wild(query) || live.iter().any(|(_, v)| wild(v)) {
            return;
        }
        assert_exact(self.metric(), &live, query, k, &hits);
    }

    /// `search_batch` on `threads` threads gives exactly the answers of `search_with`, or, when
    /// one of them fails, fails too.
    fn search_batch(&self, queries: &[Vec<f32>], k: usize, threads: usize, filtered: bool) {
        let index = self.index();
        let mut params = SearchParams::new(k)
            .ef(self.model.len().max(1))
            .threads(threads);
        if filtered {
            params = params.filter(|key| key % 3 != 0);
        }
        let single: hnswdb::Result<Vec<Vec<Hit>>> = queries
            .iter()
            .map(|q| index.search_with(q, &params))
            .collect();
        let batch = index.search_batch(queries, &params);
        match (single, batch) {
            // Bit for bit: a wild vector's distance may be NaN, which `==` never matches.
            (Ok(single), Ok(batch)) => assert_eq!(
                hit_bits(&single),
                hit_bits(&batch),
                "batch on {threads} threads"
            ),
            (Err(_), Err(_)) => {}
            (single, batch) => panic!("single searches {single:?}, batch {batch:?}"),
        }
    }

    fn reopen(&mut self, eventual: Option<(bool, usize)>) {
        if let Home::Memory = self.home {
            self.index().compact().unwrap();
            return;
        }
        drop(self.index.take());
        if let Some((eventual, ef_search)) = eventual {
            let durability = if eventual {
                Durability::Eventual
            } else {
                Durability::Immediate
            };
            self.options = self
                .options
                .clone()
                .durability(durability)
                .ef_search(ef_search);
        }
        let options = self.options.clone();
        let index = match (&self.home, eventual.is_some()) {
            (Home::File(path), false) => Index::open(path),
            (Home::File(path), true) => Index::open_or_create(path, options),
            (Home::App(db, _), false) => Index::open_in(Arc::clone(db), NAME),
            (Home::App(db, _), true) => Index::open_or_create_in(Arc::clone(db), NAME, options),
            (Home::Memory, _) => unreachable!("an in-memory index is compacted, not reopened"),
        }
        .unwrap();
        assert_eq!(index.options(), &self.options, "options after reopening");
        self.index = Some(index);
    }

    fn check_contents(&self) {
        let index = self.index();
        assert_eq!(index.len(), self.model.len(), "len");
        assert_eq!(
            index.keys().unwrap(),
            self.model.keys().copied().collect::<Vec<_>>(),
            "keys"
        );
        for (key, v) in &self.model {
            let got = index.get(*key).unwrap().map(|g| bits(&g));
            assert_eq!(got.as_ref(), Some(v), "vector of {key}");
        }
        if let Home::App(_, rows) = &self.home {
            let read = index.read().unwrap();
            let table = match read.redb().open_table(ROWS) {
                Ok(table) => Some(table),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => panic!("the app's table: {e}"),
            };
            let found: BTreeSet<u64> = table
                .map(|table| {
                    let keys = table
                        .range::<u64>(..)
                        .unwrap()
                        .map(|row| row.unwrap().0.value());
                    let keys: BTreeSet<u64> = keys.collect();
                    assert_eq!(table.len().unwrap(), keys.len() as u64);
                    keys
                })
                .unwrap_or_default();
            assert_eq!(&found, rows, "the app's rows");
            assert_eq!(read.len(), self.model.len());
        }
    }
}

/// How far two distances computed in different orders may differ.
fn tolerance(query: &[f32], v: &[f32]) -> f32 {
    let norm = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt();
    1e-4 * (1.0 + (norm(query) + norm(v)).powi(2))
}

/// `hits` are the exact `k` nearest of `rows`: the right count, nearest first, each distance
/// right, and no row strictly nearer than the last hit left out.
fn assert_exact(metric: Metric, rows: &[(u64, Vec<f32>)], query: &[f32], k: usize, hits: &[Hit]) {
    let mut truth: Vec<(u64, f32)> = rows
        .iter()
        .map(|(key, v)| (*key, metric.distance(query, v)))
        .collect();
    truth.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    assert_eq!(hits.len(), k.min(rows.len()), "hit count: {hits:?}");
    for pair in hits.windows(2) {
        assert!(pair[0].distance <= pair[1].distance, "not sorted: {hits:?}");
    }
    let vector = |key: u64| &rows.iter().find(|(k, _)| *k == key).unwrap().1;
    for hit in hits {
        let v = vector(hit.key);
        let exact = metric.distance(query, v);
        assert!(
            (exact - hit.distance).abs() <= tolerance(query, v),
            "distance of {} is {}, exact {exact}: {hits:?}",
            hit.key,
            hit.distance
        );
    }
    if let Some(last) = hits.last() {
        for (key, distance) in truth {
            if distance < last.distance - 2.0 * tolerance(query, vector(key)) {
                assert!(
                    hits.iter().any(|h| h.key == key),
                    "missed {key} at {distance}: {hits:?}"
                );
            }
        }
    }
}

fn run(input: Input) {
    let metric = [Metric::L2, Metric::Cosine, Metric::Dot][usize::from(input.metric % 3)];
    let dim = 1 + usize::from(input.dim % 4);
    let options = Options::new(dim)
        .metric(metric)
        .m(2 + usize::from(input.m % 6))
        .ef_construction(1 + usize::from(input.ef_construction % 32))
        .seed(u64::from(input.seed))
        .quantization(
            [Quantization::None, Quantization::Int8, Quantization::Binary]
                [usize::from(input.cache / 4 % 3)],
        )
        .cache_bytes(match input.cache % 4 {
            // redb's page cache takes at least 1 MiB of a budget.
            0 => 0,
            1 => (1 << 20) + (64 * 4 * dim) as u64,
            2 => (1 << 20) + (8 << 10),
            _ => 4 << 20,
        });
    let dir = (input.storage % 4 == 0).then(scratch_dir);
    let (home, index) = match (&dir, input.storage % 4) {
        (Some(dir), _) => {
            let path = dir.path().join("fuzz.hnsw");
            let index = Index::create(&path, options.clone()).unwrap();
            (Home::File(path), index)
        }
        (None, 1) => {
            let db = Arc::new(
                redb::Database::builder()
                    .create_with_backend(redb::backends::InMemoryBackend::new())
                    .unwrap(),
            );
            let index = Index::create_in(Arc::clone(&db), NAME, options.clone()).unwrap();
            (Home::App(db, BTreeSet::new()), index)
        }
        (None, _) => (Home::Memory, Index::in_memory(options.clone()).unwrap()),
    };
    let mut world = World {
        home,
        options,
        index: Some(index),
        model: Model::new(),
    };
    for op in input.ops.into_iter().take(MAX_OPS) {
        match op {
            Op::Insert(k, v) => {
                let (key, v) = (key(k), floats(v, dim));
                let mut model = world.model.clone();
                world.check_insert(world.index().insert(key, &v), key, &v, &mut model);
                world.model = model;
            }
            Op::Batch(rows) => {
                let rows: Vec<(u64, Vec<f32>)> = rows
                    .into_iter()
                    .take(16)
                    .map(|(k, v)| (key(k), floats(v, dim)))
                    .collect();
                let verdicts: Vec<_> = rows.iter().map(|(_, v)| accepts(metric, v)).collect();
                let result = world
                    .index()
                    .insert_batch(rows.iter().map(|(k, v)| (*k, v)));
                match result {
                    Ok(()) => {
                        assert!(
                            !verdicts.contains(&Some(false)),
                            "batch with an invalid row"
                        );
                        for (key, v) in &rows {
                            world.model.insert(*key, bits(v));
                        }
                    }
                    Err(Error::InvalidVector { .. }) => assert!(
                        verdicts.iter().any(|v| *v != Some(true)),
                        "valid batch refused"
                    ),
                    Err(e) => panic!("batch: {e}"),
                }
            }
            Op::Remove(k) => {
                let key = key(k);
                let existed = world.index().remove(key).unwrap();
                assert_eq!(existed, world.model.remove(&key).is_some(), "remove {key}");
            }
            Op::Get(k) => {
                let key = key(k);
                let got = world.index().get(key).unwrap().map(|v| bits(&v));
                assert_eq!(got.as_ref(), world.model.get(&key), "get {key}");
            }
            Op::Contains(k) => {
                let key = key(k);
                assert_eq!(
                    world.index().contains(key).unwrap(),
                    world.model.contains_key(&key)
                );
            }
            Op::Search { query, k, extra_ef } => {
                world.search(
                    &floats(query, dim),
                    usize::from(k % 12),
                    usize::from(extra_ef % 8),
                    None,
                );
            }
            Op::Filtered {
                query,
                k,
                modulus,
                rest,
            } => {
                let modulus = 1 + u64::from(modulus % 5);
                let filter = (modulus, u64::from(rest) % modulus);
                world.search(&floats(query, dim), usize::from(k % 12), 0, Some(filter));
            }
            Op::SearchBatch {
                queries,
                copies,
                k,
                threads,
                filtered,
            } => {
                let queries: Vec<Vec<f32>> = queries.into_iter().map(|q| floats(q, dim)).collect();
                let queries: Vec<Vec<f32>> = (0..1 + copies % 16)
                    .flat_map(|copy| {
                        queries.iter().map(move |q| {
                            let mut q = q.clone();
                            q[0] += f32::from(copy) / 4.0;
                            q
                        })
                    })
                    .collect();
                world.search_batch(
                    &queries,
                    usize::from(k % 12),
                    usize::from(threads % 4),
                    filtered,
                );
            }
            Op::Txn { ops, commit } => {
                let mut staged = world.model.clone();
                let mut staged_rows = match &world.home {
                    Home::App(_, rows) => Some(rows.clone()),
                    _ => None,
                };
                let mut tx = world.index().write().unwrap();
                for op in ops.into_iter().take(16) {
                    match op {
                        TxnOp::Insert(k, v) => {
                            let (key, v) = (key(k), floats(v, dim));
                            let result = tx.insert(key, &v);
                            if let (Ok(()), Some(rows)) = (&result, &mut staged_rows) {
                                tx.redb().open_table(ROWS).unwrap().insert(key, ()).unwrap();
                                rows.insert(key);
                            }
                            world.check_insert(result, key, &v, &mut staged);
                        }
                        TxnOp::Remove(k) => {
                            let key = key(k);
                            let existed = tx.remove(key).unwrap();
                            assert_eq!(existed, staged.remove(&key).is_some(), "tx remove {key}");
                            if let Some(rows) = &mut staged_rows {
                                tx.redb().open_table(ROWS).unwrap().remove(key).unwrap();
                                rows.remove(&key);
                            }
                        }
                        TxnOp::Contains(k) => {
                            let key = key(k);
                            assert_eq!(tx.contains(key).unwrap(), staged.contains_key(&key));
                        }
                    }
                    assert_eq!(tx.len(), staged.len(), "len inside the transaction");
                    // Searches see the last committed state meanwhile.
                    assert_eq!(world.index().len(), world.model.len());
                }
                if commit {
                    tx.commit().unwrap();
                    world.model = staged;
                    if let (Home::App(_, rows), Some(staged_rows)) = (&mut world.home, staged_rows)
                    {
                        *rows = staged_rows;
                    }
                } else {
                    drop(tx);
                }
            }
            Op::Reopen {
                eventual,
                ef_search,
            } => {
                let per_open =
                    (ef_search % 2 == 1).then_some((eventual, 1 + usize::from(ef_search)));
                world.reopen(per_open);
                world.check_contents();
            }
            Op::Compact => {
                match (&world.home, world.index().compact()) {
                    (Home::App(..), Err(Error::NotInSharedDatabase { .. })) => {}
                    (Home::App(..), other) => panic!("compact in an app database: {other:?}"),
                    (_, result) => result.unwrap(),
                }
                world.check_contents();
            }
            Op::Verify => {
                world.index().verify().unwrap();
                world.index().stats().unwrap();
            }
        }
        assert_eq!(world.index().len(), world.model.len(), "len");
    }
    world.index().verify().unwrap();
    world.check_contents();
    world.reopen(None);
    world.index().verify().unwrap();
    world.check_contents();
}

fuzz_target!(|input: Input| run(input));
