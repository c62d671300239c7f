//! `hnswdb search`: nearest keys of each query, or, against exact neighbours, recall and speed.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use hnswdb::{Hit, Index, SearchParams};
use serde::Serialize;

use crate::report::{self, thousands, BatchPoint, SearchPoint};
use crate::rss;
use crate::vecio::{self, Vectors};
use crate::{CliError, SearchArgs};

/// What `search --truth --json` prints: the measured point and the index's resident memory.
#[derive(Serialize)]
struct TruthJson {
    #[serde(flatten)]
    point: SearchPoint,
    /// Resident memory of the process after the searches less before the open (Linux only).
    index_rss_bytes: Option<u64>,
}

/// Runs `hnswdb search`.
pub fn run(args: &SearchArgs) -> Result<(), CliError> {
    let queries = vecio::read_vectors(&args.query)?;
    let truth = match &args.truth {
        Some(path) => Some(vecio::read_ivecs(path)?),
        None => None,
    };
    let before_open = rss::current();
    let index = args.target.open()?;
    // Timed searches measure the warm index: wait for the background cache load.
    index.wait_loaded()?;
    check_dim(&index, &queries, &args.query)?;
    let k = usize::try_from(args.k).unwrap_or(usize::MAX);
    let ef = args.ef.map_or(index.options().get_ef_search(), |ef| {
        usize::try_from(ef).unwrap_or(usize::MAX)
    });
    let mut out = io::stdout().lock();
    match (&args.truth, truth) {
        (Some(truth_path), Some(truth)) => {
            check_truth(&truth, queries.len(), truth_path)?;
            let point = evaluate(&index, &queries, &truth, k, ef, args.rescore)?;
            let index_rss = rss::current()
                .zip(before_open)
                .map(|(after, before)| after.saturating_sub(before));
            if args.json {
                let json = TruthJson {
                    point,
                    index_rss_bytes: index_rss,
                };
                report::print_json(&mut out, &json)?;
            } else {
                print_point(&mut out, &point, truth_path)?;
                if let Some(index_rss) = index_rss {
                    writeln!(
                        out,
                        "memory    index resident {} (RSS after the searches − RSS before the \
                         open)",
                        report::bytes(index_rss)
                    )?;
                }
            }
        }
        _ => {
            let params = search_params(k, ef, args.rescore);
            let mut results = Vec::with_capacity(queries.len());
            for q in queries.rows() {
                results.push(index.search_with(q, &params)?);
            }
            if args.json {
                report::print_json(&mut out, &hits_json(k, ef, &results))?;
            } else {
                for (i, hits) in results.iter().enumerate() {
                    let line: Vec<String> = hits
                        .iter()
                        .map(|h| format!("{} ({})", h.key, h.distance))
                        .collect();
                    writeln!(out, "query {i}: {}", line.join("  "))?;
                }
            }
        }
    }
    Ok(())
}

/// The query file's dimension must be the index's.
pub fn check_dim(index: &Index, queries: &Vectors, path: &Path) -> Result<(), CliError> {
    if queries.dim() != index.dim() {
        return Err(CliError::new(format!(
            "{} has {}-dimensional vectors but the index holds {}-dimensional ones",
            path.display(),
            queries.dim(),
            index.dim()
        )));
    }
    Ok(())
}

/// The truth file needs a non-empty row for every query.
pub fn check_truth(truth: &[Vec<u64>], queries: usize, path: &Path) -> Result<(), CliError> {
    if truth.len() < queries {
        return Err(CliError::new(format!(
            "{} has neighbours for {} queries but there are {queries} queries",
            path.display(),
            truth.len()
        )));
    }
    Ok(())
}

/// The parameters of a search for `k` at `ef`, re-ranking `rescore` candidates when given.
pub fn search_params(k: usize, ef: usize, rescore: Option<usize>) -> SearchParams<'static> {
    let params = SearchParams::new(k).ef(ef);
    match rescore {
        Some(n) => params.rescore(n),
        None => params,
    }
}

/// Searches every query once with `k` and `ef` on this thread, one query per call, and measures
/// recall@k against `truth` (ids are keys), queries per second and latency percentiles.
///
/// Recall is the fraction of each query's first `min(k, truth row length)` true neighbours found
/// among its `k` hits, averaged over all of them.
pub fn evaluate(
    index: &Index,
    queries: &Vectors,
    truth: &[Vec<u64>],
    k: usize,
    ef: usize,
    rescore: Option<usize>,
) -> Result<SearchPoint, CliError> {
    let params = search_params(k, ef, rescore);
    let mut latencies = Vec::with_capacity(queries.len());
    let (mut found, mut wanted) = (0, 0);
    let start = Instant::now();
    for (q, expected) in queries.rows().zip(truth) {
        let t = Instant::now();
        let hits = index.search_with(q, &params)?;
        latencies.push(t.elapsed());
        count_found(&hits, expected, k, &mut found, &mut wanted);
    }
    let total = start.elapsed();
    latencies.sort_unstable();
    Ok(SearchPoint {
        ef,
        k,
        queries: queries.len(),
        recall: recall(found, wanted),
        qps: queries.len() as f64 / total.as_secs_f64().max(1e-9),
        p50_us: micros(percentile(&latencies, 0.50)),
        p99_us: micros(percentile(&latencies, 0.99)),
    })
}

/// Searches every query in one [`Index::search_batch`] call on `threads` threads (0: every
/// core) with `k` and `ef`, and measures recall@k against `truth` (as [`evaluate`]) and
/// queries per second.
pub fn evaluate_batch(
    index: &Index,
    queries: &Vectors,
    truth: &[Vec<u64>],
    k: usize,
    ef: usize,
    rescore: Option<usize>,
    threads: usize,
) -> Result<BatchPoint, CliError> {
    let params = search_params(k, ef, rescore).threads(threads);
    let rows: Vec<&[f32]> = queries.rows().collect();
    let start = Instant::now();
    let answers = index.search_batch(&rows, &params)?;
    let total = start.elapsed();
    let (mut found, mut wanted) = (0, 0);
    for (hits, expected) in answers.iter().zip(truth) {
        count_found(hits, expected, k, &mut found, &mut wanted);
    }
    Ok(BatchPoint {
        ef,
        threads: params.get_threads(),
        recall: recall(found, wanted),
        qps: queries.len() as f64 / total.as_secs_f64().max(1e-9),
    })
}

/// Adds to `found` how many of the first `k` of `expected` are among `hits`, and their number
/// to `wanted`.
fn count_found(hits: &[Hit], expected: &[u64], k: usize, found: &mut usize, wanted: &mut usize) {
    let expected: HashSet<u64> = expected.iter().take(k).copied().collect();
    *wanted += expected.len();
    *found += hits.iter().filter(|h| expected.contains(&h.key)).count();
}

/// `found / wanted`, 1 when nothing was wanted.
fn recall(found: usize, wanted: usize) -> f64 {
    if wanted == 0 {
        1.0
    } else {
        found as f64 / wanted as f64
    }
}

/// The nearest-rank percentile `p` (0 to 1) of sorted `values`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in microseconds.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Prints a measured point as text.
fn print_point(out: &mut impl Write, p: &SearchPoint, truth: &Path) -> io::Result<()> {
    writeln!(
        out,
        "{} queries, k = {}, ef = {}, against {}",
        thousands(p.queries as u64),
        p.k,
        p.ef,
        truth.display()
    )?;
    writeln!(out, "recall@{:<5} {:.4}", p.k, p.recall)?;
    writeln!(
        out,
        "queries/s    {}  (one thread, one query per call)",
        thousands(p.qps.round() as u64)
    )?;
    writeln!(out, "latency p50  {:.0} µs", p.p50_us)?;
    writeln!(out, "latency p99  {:.0} µs", p.p99_us)
}

/// The JSON form of plain search results.
#[derive(Serialize)]
struct HitsJson {
    k: usize,
    ef: usize,
    results: Vec<QueryJson>,
}

/// The hits of one query.
#[derive(Serialize)]
struct QueryJson {
    query: usize,
    hits: Vec<HitJson>,
}

/// One hit.
#[derive(Serialize)]
struct HitJson {
    key: u64,
    distance: f32,
}

/// Builds the JSON form of `results`.
fn hits_json(k: usize, ef: usize, results: &[Vec<Hit>]) -> HitsJson {
    HitsJson {
        k,
        ef,
        results: results
            .iter()
            .enumerate()
            .map(|(query, hits)| QueryJson {
                query,
                hits: hits
                    .iter()
                    .map(|h| HitJson {
                        key: h.key,
                        distance: h.distance,
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_micros(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(percentile(&v[..1], 0.99), Duration::from_micros(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
