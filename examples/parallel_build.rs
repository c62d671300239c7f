//! Build time of one `insert_batch` (including its durable commit) on 1 and more threads, with
//! recall@10 at ef=64, on a data-set folder holding base.fvecs, query.fvecs, gt.ivecs (TEXMEX
//! format).
//!
//! ```text
//! cargo run --release --example parallel_build -- [DIR] [METRIC] [THREADS] [RUNS]
//! cargo run --release --example parallel_build -- tests/data/bigann10k/heldout l2 1,2 5
//! ```
//! Arguments (`--help` lists them): the data-set folder (default: the repository's
//! `tests/data/bigann10k/heldout`), metric (`l2` | `cosine` | `dot`), thread counts, runs per
//! count. Prints one line per run (real and user+system CPU seconds of the build, load average)
//! and the median per thread count.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use hnswdb::{Index, Metric, Options, SearchParams};

/// Build time and recall of one `insert_batch` per thread count.
#[derive(Parser)]
struct Args {
    /// A data-set folder holding base.fvecs, query.fvecs, gt.ivecs.
    #[arg(default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bigann10k/heldout"))]
    dir: PathBuf,
    /// Distance metric: l2, cosine or dot.
    #[arg(default_value_t = Metric::L2)]
    metric: Metric,
    /// Thread counts to build with, comma-separated.
    // Spelled out as `std::vec::Vec`: one argument holding a list, not a list of arguments.
    #[arg(default_value = "1,2", value_parser = thread_counts)]
    threads: std::vec::Vec<usize>,
    /// Runs per thread count.
    #[arg(default_value_t = 3)]
    runs: usize,
}

/// The comma-separated thread counts in `list`.
fn thread_counts(list: &str) -> Result<Vec<usize>, std::num::ParseIntError> {
    list.split(',').map(str::parse).collect()
}

fn read_vecs<T>(path: &Path, parse: impl Fn([u8; 4]) -> T) -> Vec<Vec<T>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let word = |at: usize| -> [u8; 4] { bytes[at..at + 4].try_into().unwrap() };
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let dim = i32::from_le_bytes(word(at)) as usize;
        at += 4;
        out.push((0..dim).map(|i| parse(word(at + 4 * i))).collect());
        at += 4 * dim;
    }
    out
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 ticks/s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args {
        dir,
        metric,
        threads,
        runs,
    } = Args::parse();
    let base = read_vecs(&dir.join("base.fvecs"), f32::from_le_bytes);
    let queries = read_vecs(&dir.join("query.fvecs"), f32::from_le_bytes);
    let truth = read_vecs(&dir.join("gt.ivecs"), i32::from_le_bytes);
    println!(
        "{}: {} × {}, {metric}, m=16, ef_construction=200",
        dir.display(),
        base.len(),
        base[0].len()
    );
    let tmp = std::env::temp_dir().join(format!("hnswdb-parallel-build-{}", std::process::id()));
    for &t in &threads {
        let (mut reals, mut cpus, mut recalls) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..runs {
            let _ = std::fs::remove_file(&tmp);
            let options = Options::new(base[0].len())
                .metric(metric)
                .m(16)
                .ef_construction(200)
                .build_threads(t);
            let index = Index::create(&tmp, options)?;
            let (cpu0, start) = (cpu_seconds(), Instant::now());
            index.insert_batch(base.iter().enumerate().map(|(i, v)| (i as u64, v)))?;
            let real = start.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu0;
            let mut found = 0;
            for (q, truth) in queries.iter().zip(&truth) {
                let hits = index.search_with(q, &SearchParams::new(10).ef(64))?;
                found += hits
                    .iter()
                    .filter(|h| truth[..10].contains(&(h.key as i32)))
                    .count();
            }
            let recall = found as f64 / (10 * queries.len()) as f64;
            println!(
                "threads={t} run={run} real={real:.3}s cpu={cpu:.2}s recall@10(ef=64)={recall:.4} load={}",
                load_average()
            );
            reals.push(real);
            cpus.push(cpu);
            recalls.push(recall);
            drop(index);
        }
        println!(
            "threads={t} median real={:.3}s cpu={:.2}s recall={:.4}",
            median(&mut reals),
            median(&mut cpus),
            median(&mut recalls)
        );
    }
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}
