//! `hnswdb bench`: the main job. Build an index over a data set (generated, or given), sweep
//! `ef`, and report recall against exact search, speed and latency, as a table and a plot.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hnswdb::{Durability, Index, Metric, Options};
use serde::Serialize;

use crate::build::insert_rows;
use crate::data::{self, Clustered};
use crate::error::Context;
use crate::report::{self, bytes, duration, thousands, BatchPoint, SearchPoint};
use crate::search::{check_truth, evaluate, evaluate_batch, micros, percentile};
use crate::vecio::{self, Vectors};
use crate::{rss, BenchArgs, BenchQuantizationArg, CacheArg, CliError};

/// Default size of the generated data set: sized so the whole run takes about 15 seconds on two
/// cores in release mode.
pub const DEFAULT_N: u64 = 50_000;

/// Each ef setting is measured this many times; the fastest run is reported.
const RUNS: usize = 3;

/// Single inserts timed per durability setting.
const SINGLE_INSERTS: usize = 300;

/// The data of one benchmark run.
struct Dataset {
    base: Vectors,
    queries: Vectors,
    /// Exact neighbour row numbers of each query.
    truth: Vec<Vec<u64>>,
    metric: Metric,
    /// One line saying where the data came from.
    description: String,
}

/// What `bench` writes to `bench.json` next to the plot.
#[derive(Serialize)]
struct BenchJson {
    data: String,
    vectors: usize,
    dim: usize,
    queries: usize,
    metric: String,
    m: usize,
    ef_construction: usize,
    /// `--rescore`, when given (else each search re-ranks `ef` candidates).
    rescore: Option<usize>,
    /// One index built per quantization setting.
    builds: Vec<Build>,
    /// One sweep per quantization and memory setting.
    sweeps: Vec<CacheSweep>,
    /// Peak resident memory of the whole bench process (data set and ground truth included),
    /// where the OS reports it.
    peak_rss_bytes: Option<u64>,
}

/// The index built with one quantization setting.
#[derive(Serialize)]
struct Build {
    /// `none`, `int8` or `binary`.
    quantization: String,
    build_seconds: f64,
    build_threads: usize,
    file_bytes: u64,
    /// Latency of single inserts into the built index, per durability setting.
    single_inserts: Vec<InsertLatency>,
}

/// What the index held in memory after a sweep ([`hnswdb::Stats`]), in bytes.
#[derive(Serialize)]
struct Memory {
    /// Node table and upper layers.
    upper: u64,
    codes: u64,
    /// Layer-0 lists.
    links: u64,
    /// Layer-0 `f32` vectors.
    vectors: u64,
    /// The most redb's page cache may take.
    page_cache_limit: u64,
    /// The index file.
    file: u64,
}

/// Latency of one `insert` call (its own transaction) under one durability setting.
#[derive(Serialize)]
struct InsertLatency {
    /// `"immediate"` (fsync per commit) or `"eventual"` (no fsync: the graph work and the
    /// commit's bookkeeping).
    durability: &'static str,
    inserts: usize,
    /// The whole `insert` call.
    p50_us: f64,
    p99_us: f64,
    /// Of which the graph work: `Index::write` and `WriteTxn::insert` (search and linking, in
    /// memory).
    graph_p50_us: f64,
    graph_p99_us: f64,
    /// Of which the commit: writing the changed rows, redb's commit (with its fsync under
    /// `"immediate"`) and publishing the new snapshot.
    commit_p50_us: f64,
    commit_p99_us: f64,
}

/// A reopen and an `ef` sweep under one quantization and memory setting.
#[derive(Serialize)]
struct CacheSweep {
    /// `none`, `int8` or `binary`.
    quantization: String,
    /// `"on"` (all of layer 0 in memory), `"off"` (layer 0 read from the file) or `"budget
    /// <size>"` (`--cache-bytes`).
    cache: String,
    /// `Options::cache_bytes` of the sweep.
    cache_bytes: u64,
    /// What the index held in memory after the sweep.
    memory: Memory,
    open_ms: f64,
    first_query_ms: f64,
    /// From the start of the open until the background cache load finished.
    loaded_ms: f64,
    sweep: Vec<SearchPoint>,
    /// All the queries in one `search_batch` call at [`BATCH_EF`], on one thread and on the
    /// bench's threads.
    batch: Vec<BatchPoint>,
}

/// The `ef` of the batch-search measurement.
const BATCH_EF: usize = 64;

/// Runs `hnswdb bench`.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    let k = usize::try_from(args.k).unwrap_or(usize::MAX);
    let data = load_or_generate(args, k, &mut out)?;
    let (n, dim) = (data.base.len(), data.base.dim());

    let out_dir = args.out.clone().unwrap_or_else(default_out);
    fs::create_dir_all(&out_dir).map_err(|e| CliError::io(&out_dir, e))?;
    if args.save_data {
        save_data(&data, &out_dir)?;
        writeln!(
            out,
            "saved     base.fvecs, query.fvecs, gt.ivecs in {}",
            out_dir.display()
        )?;
    }
    let work = tempfile::Builder::new()
        .prefix("hnswdb-bench-")
        .tempdir()
        .context("cannot make a temporary directory for the index")?;

    let options = Options::new(dim)
        .metric(data.metric)
        .m(args.m)
        .ef_construction(args.ef_construction)
        .build_threads(args.threads);
    match args.rescore {
        Some(n) => writeln!(
            out,
            "rescore   {n} candidates re-ranked with exact distances"
        )?,
        None => writeln!(out, "rescore   the library's default (no --rescore)")?,
    }
    let caches: Vec<(String, u64)> = match (args.cache_bytes, args.cache) {
        (Some(budget), _) => vec![(format!("budget {}", bytes(budget)), budget)],
        (None, CacheArg::On) => vec![("on".into(), CACHE_ALL)],
        (None, CacheArg::Off) => vec![("off".into(), 0)],
        (None, CacheArg::Both) => vec![("on".into(), CACHE_ALL), ("off".into(), 0)],
    };
    let mut builds = Vec::new();
    let mut sweeps = Vec::new();
    for quantization in args.quantization.settings() {
        writeln!(out, "\n=== quantization {quantization}")?;
        let options = options.clone().quantization(quantization);
        let path = work.path().join(format!("bench-{quantization}.hnsw"));
        let (build_seconds, file_bytes) = build(&path, &options, &data, args, &mut out)?;
        for (cache, budget) in &caches {
            sweeps.push(sweep_with_cache(
                &path, &options, cache, *budget, &data, k, args, &mut out,
            )?);
        }
        builds.push(Build {
            quantization: quantization.to_string(),
            build_seconds,
            build_threads: options.get_build_threads(),
            file_bytes,
            single_inserts: single_inserts(&path, &options, &data, &mut out)?,
        });
    }

    let peak_rss = rss::peak();
    if let Some(peak) = peak_rss {
        writeln!(
            out,
            "\nmemory    peak RSS {} (the whole bench process: data set and ground truth included)",
            bytes(peak)
        )?;
    }
    let plot = out_dir.join("recall-vs-qps.svg");
    let title = format!(
        "hnswdb: {} × {} ({}), m {}, ef_construction {}",
        thousands(n as u64),
        dim,
        data.metric,
        args.m,
        args.ef_construction
    );
    let series: Vec<(String, &[SearchPoint])> = sweeps
        .iter()
        .map(|s| (sweep_label(s, args), s.sweep.as_slice()))
        .collect();
    report::plot_recall_qps(&plot, &title, &series)?;
    let results = out_dir.join("bench.json");
    let json = BenchJson {
        data: data.description.clone(),
        vectors: n,
        dim,
        queries: data.queries.len(),
        metric: data.metric.to_string(),
        m: args.m,
        ef_construction: args.ef_construction,
        rescore: args.rescore,
        builds,
        sweeps,
        peak_rss_bytes: peak_rss,
    };
    let text = serde_json::to_string_pretty(&json).map_err(io::Error::from)?;
    fs::write(&results, text + "\n").map_err(|e| CliError::io(&results, e))?;
    writeln!(out, "\nplot      {}", plot.display())?;
    writeln!(out, "results   {}", results.display())?;
    Ok(())
}

/// The plot's name for sweep `s`: its memory setting, and its quantization when the bench has
/// several or one other than none.
fn sweep_label(s: &CacheSweep, args: &BenchArgs) -> String {
    let memory = match args.cache_bytes {
        Some(_) => s.cache.clone(),
        None => format!("layer-0 cache {}", s.cache),
    };
    match args.quantization {
        BenchQuantizationArg::None => memory,
        _ => format!("{}, {memory}", s.quantization),
    }
}

/// Builds the index at `path` with `options` over the data set in one durable transaction per
/// `--batch` rows, and reports the time and the file size.
fn build(
    path: &Path,
    options: &Options,
    data: &Dataset,
    args: &BenchArgs,
    out: &mut impl Write,
) -> Result<(f64, u64), CliError> {
    let n = data.base.len();
    let index = Index::create(path, options.clone()).context("cannot create the index")?;
    let keys: Vec<u64> = (0..n as u64).collect();
    let rows: Vec<usize> = (0..n).collect();
    let batch = if args.batch == 0 { n } else { args.batch };
    let build_time = insert_rows(&index, &data.base, &keys, &rows, batch)?;
    writeln!(
        out,
        "build     {}  ({} vectors/s; m {}, ef_construction {}, {} per transaction, {} \
         threads, durable commits)",
        duration(build_time),
        thousands((n as f64 / build_time.as_secs_f64().max(1e-9)).round() as u64),
        args.m,
        args.ef_construction,
        thousands(batch as u64),
        options.get_build_threads()
    )?;
    drop(index);
    let file_bytes = fs::metadata(path).map_err(|e| CliError::io(path, e))?.len();
    writeln!(
        out,
        "file      {}  ({:.0} bytes per vector; the raw vectors take {} bytes)",
        bytes(file_bytes),
        file_bytes as f64 / n as f64,
        data.base.dim() * 4
    )?;
    Ok((build_time.as_secs_f64(), file_bytes))
}

/// Times single inserts into the index at `path` under each durability, and reports them.
fn single_inserts(
    path: &Path,
    options: &Options,
    data: &Dataset,
    out: &mut impl Write,
) -> Result<Vec<InsertLatency>, CliError> {
    let mut points = Vec::new();
    writeln!(
        out,
        "\nsingle inserts: {SINGLE_INSERTS} calls of `insert` (one transaction each) into the \
         built index, per durability"
    )?;
    for (name, durability) in [
        ("eventual", Durability::Eventual),
        ("immediate", Durability::Immediate),
    ] {
        let point = time_single_inserts(path, options, durability, name, data, data.base.len())?;
        writeln!(
            out,
            "  {name:<10} p50 {:>6.0} µs   p99 {:>6.0} µs   of which graph work p50 {:>5.0} µs \
             (p99 {:.0}), commit p50 {:>5.0} µs (p99 {:.0})",
            point.p50_us,
            point.p99_us,
            point.graph_p50_us,
            point.graph_p99_us,
            point.commit_p50_us,
            point.commit_p99_us
        )?;
        points.push(point);
    }
    if let [eventual, immediate] = &points[..] {
        let fsync = immediate.commit_p50_us - eventual.commit_p50_us;
        writeln!(
            out,
            "  the fsync (immediate commit p50 − eventual commit p50) takes {fsync:.0} µs; the graph \
             work p50 is {:.2}× that",
            immediate.graph_p50_us / fsync
        )?;
    }
    Ok(points)
}

/// A cache budget that holds all of layer 0.
const CACHE_ALL: u64 = u64::MAX / 2;

/// Reopens the index at `path` with the layer-0 cache `budget`, times the open and the first
/// query, then sweeps `ef`, best of [`RUNS`] per setting.
#[allow(clippy::too_many_arguments)]
fn sweep_with_cache(
    path: &Path,
    options: &Options,
    cache: &str,
    budget: u64,
    data: &Dataset,
    k: usize,
    args: &BenchArgs,
    out: &mut impl Write,
) -> Result<CacheSweep, CliError> {
    // Stores the budget in the file, so that a plain open uses it.
    drop(Index::open_or_create(
        path,
        options.clone().cache_bytes(budget),
    )?);
    let start = Instant::now();
    let index = Index::open(path).context("cannot reopen the index")?;
    let open_time = start.elapsed();
    index.search(data.queries.row(0), k)?;
    let first_query = start.elapsed() - open_time;
    // The cache loads in the background: the sweep measures the warm index.
    index.wait_loaded()?;
    let loaded = start.elapsed();
    writeln!(
        out,
        "\n{} {cache}: {} to open the file, then {} for the first query; \
         cache loaded in the background {} after the open began",
        if args.cache_bytes.is_some() {
            "memory"
        } else {
            "layer-0 cache"
        },
        duration(open_time),
        duration(first_query),
        duration(loaded)
    )?;
    writeln!(
        out,
        "search: {} queries, one thread, one query per call, best of {RUNS} runs; \
         recall against exact search",
        thousands(data.queries.len() as u64)
    )?;
    writeln!(out, "{}", report::sweep_header(k))?;
    let mut sweep = Vec::new();
    for &ef in &args.ef {
        let ef = usize::try_from(ef).unwrap_or(usize::MAX);
        // Best of RUNS by queries/s: other load on the machine only ever slows a run down.
        let mut point = evaluate(&index, &data.queries, &data.truth, k, ef, args.rescore)?;
        for _ in 1..RUNS {
            let again = evaluate(&index, &data.queries, &data.truth, k, ef, args.rescore)?;
            if again.qps > point.qps {
                point = again;
            }
        }
        writeln!(out, "{}", report::sweep_line(&point))?;
        out.flush()?;
        sweep.push(point);
    }
    let mut batch = Vec::new();
    for threads in [1, args.threads] {
        let batch_point = || {
            evaluate_batch(
                &index,
                &data.queries,
                &data.truth,
                k,
                BATCH_EF,
                args.rescore,
                threads,
            )
        };
        let mut point = batch_point()?;
        for _ in 1..RUNS {
            let again = batch_point()?;
            if again.qps > point.qps {
                point = again;
            }
        }
        batch.push(point);
    }
    if let [one, all] = &batch[..] {
        writeln!(
            out,
            "batch search: all queries in one `search_batch` call at ef {BATCH_EF}, best of {RUNS}: \
             {} queries/s on 1 thread, {} on {} threads ({:.2}×); recall@{k} {:.4}",
            thousands(one.qps.round() as u64),
            thousands(all.qps.round() as u64),
            all.threads,
            all.qps / one.qps,
            all.recall
        )?;
    }
    let stats = index.stats()?;
    let memory = Memory {
        upper: stats.upper_bytes,
        codes: stats.codes_bytes,
        links: stats.links_bytes,
        vectors: stats.vectors_bytes,
        page_cache_limit: stats.page_cache_bytes,
        file: stats.file_bytes,
    };
    writeln!(
        out,
        "memory: upper layers {}, codes {}, layer-0 lists {}, f32 vectors {} ({} of {}); \
         redb page cache up to {}; file {}",
        bytes(memory.upper),
        bytes(memory.codes),
        bytes(memory.links),
        bytes(memory.vectors),
        thousands(stats.layer0_vectors_in_cache),
        thousands(stats.len),
        bytes(memory.page_cache_limit),
        bytes(memory.file)
    )?;
    Ok(CacheSweep {
        quantization: options.get_quantization().to_string(),
        cache: cache.to_string(),
        cache_bytes: budget,
        memory,
        open_ms: ms(open_time),
        first_query_ms: ms(first_query),
        loaded_ms: ms(loaded),
        sweep,
        batch,
    })
}

/// Times [`SINGLE_INSERTS`] single inserts (keys after the `n` built ones, vectors taken from
/// the queries) into the index at `path` under `durability`.
fn time_single_inserts(
    path: &Path,
    options: &Options,
    durability: Durability,
    name: &'static str,
    data: &Dataset,
    n: usize,
) -> Result<InsertLatency, CliError> {
    let index = Index::open_or_create(path, options.clone().durability(durability))?;
    index.wait_loaded()?;
    let mut latencies = Vec::with_capacity(SINGLE_INSERTS);
    let mut graph = Vec::with_capacity(SINGLE_INSERTS);
    let mut commit = Vec::with_capacity(SINGLE_INSERTS);
    for i in 0..SINGLE_INSERTS {
        let key = (n + i) as u64
            + if durability == Durability::Immediate {
                1 << 32
            } else {
                0
            };
        let vector = data.queries.row(i % data.queries.len());
        // What `Index::insert` does, timed in its two parts.
        let start = Instant::now();
        let mut tx = index.write()?;
        tx.insert(key, vector)?;
        let linked = Instant::now();
        tx.commit()?;
        let end = Instant::now();
        latencies.push(end - start);
        graph.push(linked - start);
        commit.push(end - linked);
    }
    for times in [&mut latencies, &mut graph, &mut commit] {
        times.sort_unstable();
    }
    let p = |sorted: &[Duration], q: f64| micros(percentile(sorted, q));
    Ok(InsertLatency {
        durability: name,
        inserts: SINGLE_INSERTS,
        p50_us: p(&latencies, 0.50),
        p99_us: p(&latencies, 0.99),
        graph_p50_us: p(&graph, 0.50),
        graph_p99_us: p(&graph, 0.99),
        commit_p50_us: p(&commit, 0.50),
        commit_p99_us: p(&commit, 0.99),
    })
}

/// Writes the data set as `base.fvecs`, `query.fvecs` and `gt.ivecs` into `dir`.
fn save_data(data: &Dataset, dir: &Path) -> Result<(), CliError> {
    let base = dir.join("base.fvecs");
    vecio::write_fvecs(&base, &data.base).map_err(|e| CliError::io(&base, e))?;
    let query = dir.join("query.fvecs");
    vecio::write_fvecs(&query, &data.queries).map_err(|e| CliError::io(&query, e))?;
    let gt = dir.join("gt.ivecs");
    vecio::write_ivecs(&gt, &data.truth).map_err(|e| CliError::io(&gt, e))
}

/// Milliseconds in a duration.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Reads the data set named by the arguments, or generates the default one; computes the exact
/// neighbours when no truth file is given. Reports each step on `out`.
fn load_or_generate(args: &BenchArgs, k: usize, out: &mut impl Write) -> Result<Dataset, CliError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let metric = Metric::from(args.metric);
    let start = Instant::now();
    let (base, queries, description) = match (&args.input, &args.query) {
        (Some(input), Some(query)) => {
            let base = vecio::read_vectors(input)?;
            let queries = vecio::read_vectors(query)?;
            if queries.dim() != base.dim() {
                return Err(CliError::new(format!(
                    "{} has {} dimensions but {} has {}",
                    query.display(),
                    queries.dim(),
                    input.display(),
                    base.dim()
                )));
            }
            let description = format!("{} with queries {}", input.display(), query.display());
            (base, queries, description)
        }
        _ => {
            let spec = Clustered {
                n: to_usize(args.n),
                queries: to_usize(args.queries),
                dim: to_usize(args.dim),
                seed: args.seed,
            };
            let (base, queries) = spec.generate();
            let description = format!(
                "generated: {} clusters, each on a {}-dimensional subspace plus noise, seed {}",
                spec.clusters(),
                data::LATENT,
                spec.seed
            );
            (base, queries, description)
        }
    };
    writeln!(
        out,
        "hnswdb bench: {} vectors × {} dimensions ({metric}), {} queries, k = {k}",
        thousands(base.len() as u64),
        base.dim(),
        thousands(queries.len() as u64),
    )?;
    writeln!(
        out,
        "data      {description}; ready in {}",
        duration(start.elapsed())
    )?;
    let truth = match &args.truth {
        Some(path) => {
            let truth = vecio::read_ivecs(path)?;
            check_truth(&truth, queries.len(), path)?;
            writeln!(out, "truth     {}", path.display())?;
            truth
        }
        None => {
            let start = Instant::now();
            let truth = data::ground_truth(&base, &queries, metric, k, threads);
            writeln!(
                out,
                "truth     exact top-{k} by brute force in {} ({threads} threads)",
                duration(start.elapsed())
            )?;
            truth
        }
    };
    out.flush()?;
    Ok(Dataset {
        base,
        queries,
        truth,
        metric,
        description,
    })
}

/// A command-line count as `usize`.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The default output directory: `bench-out` in the system temp directory.
fn default_out() -> PathBuf {
    std::env::temp_dir().join("bench-out")
}
