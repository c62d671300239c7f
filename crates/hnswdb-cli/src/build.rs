//! `hnswdb build`: insert a vector file into an index, one committed transaction per batch, so
//! that a killed build keeps what it committed and the same command resumes it.

use std::collections::HashSet;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use hnswdb::{Index, Metric, Options, Quantization};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{bytes, duration, thousands};
use crate::target::Mode;
use crate::vecio::{self, Vectors};
use crate::{BuildArgs, CliError, MetricArg};

/// Defaults of a new index built from the command line.
const DEFAULT_METRIC: MetricArg = MetricArg::L2;
const DEFAULT_M: usize = 16;
const DEFAULT_EF_CONSTRUCTION: usize = 200;

/// Runs `hnswdb build`.
pub fn run(args: &BuildArgs) -> Result<(), CliError> {
    let vectors = vecio::read_vectors(&args.input)?;
    let keys = match &args.keys {
        Some(path) => {
            let keys = vecio::read_keys(path)?;
            check_keys(&keys, vectors.len(), path)?;
            keys
        }
        None => (0..vectors.len() as u64).collect(),
    };
    let index = open_for_build(args, vectors.dim())?;
    let options = index.options();
    if options.get_metric() == Metric::Cosine {
        if let Some(row) = vectors.rows().position(|v| v.iter().all(|&x| x == 0.0)) {
            return Err(CliError::new(format!(
                "{}: row {row} is all zeros, which has no direction under the cosine metric",
                args.input.display()
            )));
        }
    }

    let rows: Vec<usize> = if index.is_empty() {
        (0..vectors.len()).collect()
    } else {
        let mut todo = Vec::new();
        for (row, &key) in keys.iter().enumerate() {
            if !index.contains(key)? {
                todo.push(row);
            }
        }
        todo
    };
    let skipped = vectors.len() - rows.len();
    if rows.is_empty() {
        writeln!(
            io::stdout().lock(),
            "{}: nothing to do; all {} rows of {} are already in the index ({} vectors)",
            args.target,
            thousands(vectors.len() as u64),
            args.input.display(),
            thousands(index.len() as u64)
        )?;
        return Ok(());
    }
    if skipped > 0 {
        writeln!(
            io::stderr(),
            "resuming: {} of {} rows are already in the index and are skipped",
            thousands(skipped as u64),
            thousands(vectors.len() as u64)
        )?;
    }
    let batch = usize::try_from(args.batch).unwrap_or(usize::MAX);
    let took = if args.log_commits {
        insert_logging_commits(&index, &vectors, &keys, &rows, batch)?
    } else {
        insert_rows(&index, &vectors, &keys, &rows, batch)?
    };

    let mut out = io::stdout().lock();
    let rate = rows.len() as f64 / took.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "{}: inserted {} vectors in {} ({} vectors/s){}; the index holds {} vectors \
         (dim {}, {}, m {}, ef_construction {})",
        args.target,
        thousands(rows.len() as u64),
        duration(took),
        thousands(rate.round() as u64),
        if skipped > 0 {
            format!(", skipped {} already present", thousands(skipped as u64))
        } else {
            String::new()
        },
        thousands(index.len() as u64),
        options.get_dim(),
        options.get_metric(),
        options.get_m(),
        options.get_ef_construction(),
    )?;
    if args.target.name.is_none() && !args.no_compact {
        let before = index.stats()?.file_bytes;
        index.compact()?;
        writeln!(
            out,
            "compacted: {} -> {}",
            bytes(before),
            bytes(index.stats()?.file_bytes)
        )?;
    }
    Ok(())
}

/// Every row needs one key, and no key may repeat (a repeat would overwrite the earlier row).
fn check_keys(keys: &[u64], rows: usize, path: &Path) -> Result<(), CliError> {
    if keys.len() != rows {
        return Err(CliError::new(format!(
            "{}: {} keys for {} vectors; give exactly one key per row",
            path.display(),
            keys.len(),
            rows
        )));
    }
    let mut seen = HashSet::with_capacity(keys.len());
    for &key in keys {
        if !seen.insert(key) {
            return Err(CliError::new(format!(
                "{}: key {key} appears more than once",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Opens the index to resume a build, or creates it. Settings given on the command line must
/// match those of an existing index; settings left out take the index's own.
fn open_for_build(args: &BuildArgs, dim: usize) -> Result<Index, CliError> {
    let target = &args.target;
    let options = Options::new(dim)
        .metric(args.metric.unwrap_or(DEFAULT_METRIC).into())
        .m(args.m.unwrap_or(DEFAULT_M))
        .ef_construction(args.ef_construction.unwrap_or(DEFAULT_EF_CONSTRUCTION))
        .quantization(
            args.quantization
                .map_or(Quantization::None, Quantization::from),
        )
        .cache_bytes(args.cache_bytes.unwrap_or(hnswdb::DEFAULT_CACHE_BYTES));
    let index = target
        .reach(Mode::OpenOrCreate(options))
        .map_err(|e| target.explain(e, "cannot resume the build"))?;
    let stored = index.options();
    let instead = match target.name {
        None => "build into a new file",
        Some(_) => "build under another --name",
    };
    let mismatch = |flag: &str, stored: String, given: String| {
        Err(CliError::new(format!(
            "{target} was built with {flag} {stored}, not {given}; omit {flag} to resume it, \
             or {instead}"
        )))
    };
    if stored.get_dim() != dim {
        return Err(CliError::new(format!(
            "{target} holds {}-dimensional vectors but {} has {dim} dimensions",
            stored.get_dim(),
            args.input.display()
        )));
    }
    if let Some(metric) = args.metric.map(Metric::from) {
        if metric != stored.get_metric() {
            return mismatch(
                "--metric",
                stored.get_metric().to_string(),
                metric.to_string(),
            );
        }
    }
    if let Some(m) = args.m.filter(|&m| m != stored.get_m()) {
        return mismatch("--m", stored.get_m().to_string(), m.to_string());
    }
    if let Some(ef) = args
        .ef_construction
        .filter(|&ef| ef != stored.get_ef_construction())
    {
        return mismatch(
            "--ef-construction",
            stored.get_ef_construction().to_string(),
            ef.to_string(),
        );
    }
    if let Some(q) = args
        .quantization
        .map(Quantization::from)
        .filter(|&q| q != stored.get_quantization())
    {
        return mismatch(
            "--quantization",
            stored.get_quantization().to_string(),
            q.to_string(),
        );
    }
    Ok(index)
}

/// Inserts `rows` of `vectors` under their `keys`, `batch` rows per committed transaction,
/// showing a progress bar on a terminal. Returns the time taken.
pub fn insert_rows(
    index: &Index,
    vectors: &Vectors,
    keys: &[u64],
    rows: &[usize],
    batch: usize,
) -> Result<Duration, CliError> {
    let bar = progress_bar(rows.len() as u64);
    let start = Instant::now();
    for chunk in rows.chunks(batch.max(1)) {
        index
            .insert_batch(chunk.iter().map(|&row| (keys[row], vectors.row(row))))
            .map_err(|e| {
                bar.abandon();
                CliError::from(e).context(format!(
                    "inserting rows {} to {}",
                    chunk[0],
                    chunk[chunk.len() - 1]
                ))
            })?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(start.elapsed())
}

/// [`insert_rows`], one batch at a time, printing `committed N of M rows` on stderr after each
/// commit. Returns the time taken.
fn insert_logging_commits(
    index: &Index,
    vectors: &Vectors,
    keys: &[u64],
    rows: &[usize],
    batch: usize,
) -> Result<Duration, CliError> {
    let (mut took, mut done) = (Duration::ZERO, 0);
    for chunk in rows.chunks(batch.max(1)) {
        took += insert_rows(index, vectors, keys, chunk, batch)?;
        done += chunk.len();
        writeln!(
            io::stderr(),
            "committed {} of {} rows",
            thousands(done as u64),
            thousands(rows.len() as u64)
        )?;
    }
    Ok(took)
}

/// A progress bar with rate and ETA on stderr, hidden when stderr is not a terminal.
fn progress_bar(len: u64) -> ProgressBar {
    let target = if io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let style = ProgressStyle::with_template(
        "building {bar:40.cyan/blue} {human_pos}/{human_len} vectors  {rate}  ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{} vectors/s", thousands(state.per_sec().round() as u64));
        },
    )
    .progress_chars("█▉▊▋▌▍▎▏ ");
    ProgressBar::with_draw_target(Some(len), target).with_style(style)
}
