//! Benchmark of exact deletes (issue 3) on a data-set folder holding base.fvecs, query.fvecs,
//! gt.ivecs, with m=16, ef_construction=200, k=10, ef=64:
//!
//! 1. a fresh build of all vectors: recall@10 against the data set's ground truth;
//! 2. build all, remove a random 50%: recall@10 against exact ground truth over the survivors,
//!    next to a fresh build of only the survivors;
//! 3. churn: rounds that each remove 10% and insert as many vectors from outside the index
//!    (under new keys) in one transaction; recall per round against a fresh build of the same
//!    survivors, file size per round, then the file size after `compact()` against a fresh
//!    build of the survivors;
//! 4. throughput of `remove` and `insert`, in transactions of 1,000 and one call each (durable
//!    `Immediate`, and `Eventual` for comparison); median of `--repeats` runs, each on a fresh
//!    copy of the same file.
//!
//! ```sh
//! cargo bench --bench deletes                                      # tests/data/bigann10k/heldout
//! cargo bench --bench deletes -- --data DIR --metric cosine        # another data-set folder
//! cargo bench --bench deletes -- --help
//! ```
//!
//! The throughput of single durable calls is mostly fsync latency: run on a quiet machine.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use common::{exact_knn, read_fvecs, read_ivecs, search_recall};
use hnswdb::{Durability, Index, Metric, Options};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

const K: usize = 10;
const EF: usize = 64;
/// Removals or inserts per transaction in the batched throughput runs, and batches per run.
const BATCH: usize = 1000;
const BATCHES: usize = 3;
/// One-call-each operations per throughput run.
const SINGLES: usize = 500;

type Rows = Vec<(u64, Vec<f32>)>;

/// Exact deletes: recall after removals and churn, and remove/insert throughput.
#[derive(Parser)]
struct Args {
    /// A data-set folder holding base.fvecs, query.fvecs, gt.ivecs.
    #[arg(long, default_value_os_t = common::data_dir("bigann10k/heldout"))]
    data: PathBuf,
    /// Distance metric: l2, cosine or dot.
    #[arg(long, default_value_t = Metric::L2)]
    metric: Metric,
    /// Churn rounds.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// A fresh build after every N-th churn round (the last round always has one).
    #[arg(long, default_value_t = 1, value_parser = at_least_one())]
    fresh_every: usize,
    /// Runs of each throughput measurement (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = at_least_one())]
    repeats: usize,
    /// Seed of the random removals.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Skips step 3 (churn).
    #[arg(long)]
    skip_churn: bool,
    /// Skips step 4 (throughput).
    #[arg(long)]
    skip_throughput: bool,
    /// Commits without redb's quick-repair data.
    #[arg(long)]
    no_quick_repair: bool,
    /// Passed by `cargo bench` to every bench target; ignored.
    #[arg(long = "bench", hide = true)]
    _bench: bool,
}

/// A count of 1 or more.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// Everything a run needs: the vectors, the queries, the options.
struct Bench {
    base: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    options: Options,
    dir: tempfile::TempDir,
}

impl Bench {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn rows(&self, keys: impl IntoIterator<Item = u64>, row_of: impl Fn(u64) -> usize) -> Rows {
        keys.into_iter()
            .map(|k| (k, self.base[row_of(k)].clone()))
            .collect()
    }

    /// A fresh index of `rows` (in the given order) in one transaction, and the time it took.
    fn build(&self, name: &str, rows: &[(u64, Vec<f32>)]) -> hnswdb::Result<(Index, Duration)> {
        let path = self.path(name);
        let _ = std::fs::remove_file(&path);
        let index = Index::create(&path, self.options.clone())?;
        let start = Instant::now();
        index.insert_batch(rows.iter().map(|(k, v)| (*k, v.as_slice())))?;
        Ok((index, start.elapsed()))
    }

    /// Recall@10 at ef=64 of `index` (holding exactly `rows`) against exact ground truth over
    /// `rows`; panics if a search returns a key outside `rows`.
    fn recall(&self, index: &Index, rows: &[(u64, Vec<f32>)]) -> f64 {
        assert_eq!(index.len(), rows.len());
        let truth = exact_knn(self.options.get_metric(), rows, &self.queries, K);
        let live: HashSet<u64> = rows.iter().map(|(k, _)| *k).collect();
        search_recall(index, &self.queries, &truth, EF, &live)
    }

    /// Recall and file sizes (length, on disk) of a fresh build of `rows`, in key order.
    fn fresh(&self, rows: &[(u64, Vec<f32>)]) -> Result<(f64, (u64, u64)), Box<dyn Error>> {
        let mut sorted = rows.to_vec();
        sorted.sort_by_key(|(k, _)| *k);
        let (index, _) = self.build("fresh.hnsw", &sorted)?;
        let recall = self.recall(&index, &sorted);
        let bytes = (index.stats()?.file_bytes, disk_bytes(index.path())?);
        drop(index);
        std::fs::remove_file(self.path("fresh.hnsw"))?;
        Ok((recall, bytes))
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Bytes the file occupies on disk: redb grows the file length in large steps, and the part
/// not yet written takes no space.
fn disk_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.blocks() * 512)
}

/// `Stats::file_bytes` (the file length) and the bytes on disk.
fn sizes((length, disk): (u64, u64)) -> String {
    format!("{} long, {} on disk", mb(length), mb(disk))
}

/// How many of `rows` a search for their own vector (k=1, ef=64) does not return first (at
/// distance 0: an exact duplicate under another key counts as found).
fn lost(index: &Index, rows: &[(u64, Vec<f32>)]) -> hnswdb::Result<usize> {
    let mut lost = 0;
    for (key, v) in rows {
        let hits = index.search_with(v, &hnswdb::SearchParams::new(1).ef(EF))?;
        if !hits
            .first()
            .is_some_and(|h| h.key == *key || h.distance <= 0.0)
        {
            lost += 1;
        }
    }
    Ok(lost)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let base = read_fvecs(&args.data.join("base.fvecs"));
    let queries = read_fvecs(&args.data.join("query.fvecs"));
    let gt = read_ivecs(&args.data.join("gt.ivecs"));
    let options = Options::new(base[0].len())
        .metric(args.metric)
        .m(16)
        .ef_construction(200)
        .quick_repair(!args.no_quick_repair);
    let bench = Bench {
        base,
        queries,
        options,
        dir: tempfile::tempdir_in(std::env::temp_dir())?,
    };
    let n = bench.base.len();
    println!(
        "data {}: {n} vectors of dim {}, {} queries, {:?}; m=16 ef_construction=200 k={K} ef={EF}; \
         quick repair {}; seed {}",
        args.data.display(),
        bench.base[0].len(),
        bench.queries.len(),
        args.metric,
        if args.no_quick_repair { "off" } else { "on" },
        args.seed
    );
    let mut rng = StdRng::seed_from_u64(args.seed);

    // 1. Fresh build of everything.
    let all = bench.rows(0..n as u64, |k| k as usize);
    let (index, took) = bench.build("full.hnsw", &all)?;
    let mut found = 0;
    for (q, truth) in bench.queries.iter().zip(&gt) {
        let hits = index.search_with(q, &hnswdb::SearchParams::new(K).ef(EF))?;
        found += hits
            .iter()
            .filter(|h| truth[..K].contains(&(h.key as i32)))
            .count();
    }
    let full_recall = found as f64 / (K * bench.queries.len()) as f64;
    println!(
        "\n1. fresh build of all {n}: {took:.2?} ({:.0} inserts/s), recall@10 {full_recall:.4} \
         (data set ground truth), file {}",
        n as f64 / took.as_secs_f64(),
        sizes((index.stats()?.file_bytes, disk_bytes(index.path())?))
    );
    drop(index);

    // 2. Remove a random half.
    std::fs::copy(bench.path("full.hnsw"), bench.path("half.hnsw"))?;
    let index = Index::open(bench.path("half.hnsw"))?;
    let mut keys: Vec<u64> = (0..n as u64).collect();
    keys.shuffle(&mut rng);
    let (gone, kept) = keys.split_at(n / 2);
    let start = Instant::now();
    for chunk in gone.chunks(BATCH) {
        let mut tx = index.write()?;
        for &key in chunk {
            tx.remove(key)?;
        }
        tx.commit()?;
    }
    let took = start.elapsed();
    let start = Instant::now();
    index.verify()?;
    let verify_took = start.elapsed();
    let mut kept = kept.to_vec();
    kept.sort_unstable();
    let survivors = bench.rows(kept.iter().copied(), |k| k as usize);
    let removed_bytes = (index.stats()?.file_bytes, disk_bytes(index.path())?);
    let (fresh, _) = bench.build("fresh_half.hnsw", &survivors)?;
    let fresh_bytes = (fresh.stats()?.file_bytes, disk_bytes(fresh.path())?);
    let truth = exact_knn(bench.options.get_metric(), &survivors, &bench.queries, K);
    let live: HashSet<u64> = kept.iter().copied().collect();
    let mut line = Vec::new();
    for ef in [EF, 128, 256] {
        let removed = search_recall(&index, &bench.queries, &truth, ef, &live);
        let fresh = search_recall(&fresh, &bench.queries, &truth, ef, &live);
        line.push(format!(
            "ef={ef}: {removed:.4} vs {fresh:.4} ({:+.4})",
            removed - fresh
        ));
    }
    println!(
        "\n2. remove a random {} of {n} (transactions of {BATCH}): {took:.2?}; verify {verify_took:.2?}\n   \
         recall@10 vs exact over the {} survivors, after removal vs a fresh build of the survivors \
         (target at ef=64: >= -0.01):\n   {}\n   \
         survivors not found first by a search for their own vector (k=1, ef=64): {} after removal, \
         {} in the fresh build\n   \
         file {} (fresh build of the survivors: {})",
        gone.len(),
        survivors.len(),
        line.join("; "),
        lost(&index, &survivors)?,
        lost(&fresh, &survivors)?,
        sizes(removed_bytes),
        sizes(fresh_bytes)
    );
    drop((index, fresh));

    if !args.skip_churn {
        churn(&bench, &args, &mut rng)?;
    }

    if !args.skip_throughput {
        throughput(&bench, &args, gone)?;
    }
    Ok(())
}

/// Step 3, churn rounds: start from two thirds of the base, the rest aside.
fn churn(bench: &Bench, args: &Args, rng: &mut StdRng) -> Result<(), Box<dyn Error>> {
    let n = bench.base.len();
    let start_len = n * 2 / 3;
    let per_round = start_len / 10;
    println!(
        "\n3. churn: start with {start_len}, {} aside; {} rounds, each one transaction removing \
         {per_round} random keys and inserting {per_round} vectors from outside the index under new keys",
        n - start_len,
        args.rounds
    );
    let mut live: HashMap<u64, usize> = (0..start_len).map(|i| (i as u64, i)).collect();
    let mut outside: Vec<usize> = (start_len..n).collect();
    let initial = bench.rows(0..start_len as u64, |k| k as usize);
    let (index, _) = bench.build("churn.hnsw", &initial)?;
    drop(initial);
    let r0 = bench.recall(&index, &bench.rows(0..start_len as u64, |k| k as usize));
    let b0 = (index.stats()?.file_bytes, disk_bytes(index.path())?);
    println!("   round  0: recall {r0:.4}, file {}", sizes(b0));
    let mut next_key = n as u64;
    let mut worst: Option<f64> = None;
    let mut last_fresh_bytes = (0, 0);
    for round in 1..=args.rounds {
        let mut keys: Vec<u64> = live.keys().copied().collect();
        keys.sort_unstable();
        keys.shuffle(rng);
        outside.shuffle(rng);
        let incoming: Vec<usize> = outside.drain(..per_round).collect();
        let start = Instant::now();
        let mut tx = index.write()?;
        for &key in &keys[..per_round] {
            tx.remove(key)?;
            outside.push(live.remove(&key).expect("live key"));
        }
        for row in incoming {
            tx.insert(next_key, &bench.base[row])?;
            live.insert(next_key, row);
            next_key += 1;
        }
        tx.commit()?;
        let took = start.elapsed();
        index.verify()?;
        let mut live_keys: Vec<u64> = live.keys().copied().collect();
        live_keys.sort_unstable();
        let rows = bench.rows(live_keys, |k| live[&k]);
        let recall = bench.recall(&index, &rows);
        let bytes = (index.stats()?.file_bytes, disk_bytes(index.path())?);
        let fresh = if round % args.fresh_every == 0 || round == args.rounds {
            let (f, fb) = bench.fresh(&rows)?;
            last_fresh_bytes = fb;
            let d = recall - f;
            worst = Some(worst.map_or(d, |w: f64| w.min(d)));
            format!("fresh build {f:.4} ({d:+.4})")
        } else {
            "fresh build not run".to_string()
        };
        println!(
            "   round {round:2}: {took:.2?}, verify ok, recall {recall:.4}, {fresh}, file {}",
            sizes(bytes)
        );
    }
    if let Some(w) = worst {
        println!(
            "   worst recall minus fresh build over the compared rounds: {w:+.4} (target >= -0.01)"
        );
    }
    let before = (index.stats()?.file_bytes, disk_bytes(index.path())?);
    let start = Instant::now();
    index.compact()?;
    let took = start.elapsed();
    index.verify()?;
    let after = index.stats()?;
    let after = (after.file_bytes, disk_bytes(index.path())?);
    let mut live_keys: Vec<u64> = live.keys().copied().collect();
    live_keys.sort_unstable();
    let rows = bench.rows(live_keys, |k| live[&k]);
    let recall = bench.recall(&index, &rows);
    println!(
        "   compact(): {took:.2?}, verify ok, recall {recall:.4}\n   \
         file before: {}\n   after:  {}\n   a fresh build of the {} survivors: {}\n   \
         ratio compacted / fresh: {:.3} by length, {:.3} on disk (target <= 1.3)",
        sizes(before),
        sizes(after),
        rows.len(),
        sizes(last_fresh_bytes),
        after.0 as f64 / last_fresh_bytes.0 as f64,
        after.1 as f64 / last_fresh_bytes.1 as f64,
    );
    Ok(())
}

/// Step 4, throughput, each run on a fresh copy of a freshly built file: removals from the build of
/// everything, inserts (of the vectors removed in step 2, under their keys) into the fresh
/// build of the survivors.
fn throughput(bench: &Bench, args: &Args, gone: &[u64]) -> Result<(), Box<dyn Error>> {
    println!(
        "\n4. throughput, median of {} runs (each on a fresh copy of the file); batches: {BATCHES} \
         transactions of {BATCH}; singles: {SINGLES} calls",
        args.repeats
    );
    let removals = &gone[..BATCH * BATCHES];
    let run = |source: &str, durability: Durability, op: &dyn Fn(&Index) -> hnswdb::Result<()>| {
        let mut rates = Vec::new();
        for _ in 0..args.repeats {
            let path = bench.path("t.hnsw");
            std::fs::copy(bench.path(source), &path)?;
            let index = Index::open_or_create(&path, bench.options.clone().durability(durability))?;
            let start = Instant::now();
            op(&index)?;
            rates.push(start.elapsed());
            drop(index);
            std::fs::remove_file(&path)?;
        }
        rates.sort();
        Ok::<_, Box<dyn Error>>(rates)
    };
    let report = |what: &str, count: usize, times: &[Duration]| {
        let per_s = |d: &Duration| count as f64 / d.as_secs_f64();
        let all: Vec<String> = times.iter().map(|d| format!("{:.0}", per_s(d))).collect();
        println!(
            "   {what:<44} {:>9.0} /s   (runs: {})",
            per_s(&times[times.len() / 2]),
            all.join(", ")
        );
    };

    let times = run("full.hnsw", Durability::Immediate, &|index| {
        for chunk in removals.chunks(BATCH) {
            let mut tx = index.write()?;
            for &key in chunk {
                tx.remove(key)?;
            }
            tx.commit()?;
        }
        Ok(())
    })?;
    report("remove, transactions of 1000", removals.len(), &times);
    for durability in [Durability::Immediate, Durability::Eventual] {
        let times = run("full.hnsw", durability, &|index| {
            for &key in &removals[..SINGLES] {
                index.remove(key)?;
            }
            Ok(())
        })?;
        report(
            &format!("remove, one call each, {durability:?}"),
            SINGLES,
            &times,
        );
    }

    let vector = |key: u64| bench.base[key as usize].as_slice();
    let times = run("fresh_half.hnsw", Durability::Immediate, &|index| {
        for chunk in removals.chunks(BATCH) {
            index.insert_batch(chunk.iter().map(|&k| (k, vector(k))))?;
        }
        Ok(())
    })?;
    report("insert, transactions of 1000", removals.len(), &times);
    for durability in [Durability::Immediate, Durability::Eventual] {
        let times = run("fresh_half.hnsw", durability, &|index| {
            for &key in &removals[..SINGLES] {
                index.insert(key, vector(key))?;
            }
            Ok(())
        })?;
        report(
            &format!("insert, one call each, {durability:?}"),
            SINGLES,
            &times,
        );
    }
    Ok(())
}
