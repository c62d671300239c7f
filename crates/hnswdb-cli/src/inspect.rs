//! Looking into an index and small repairs: `stats`, `verify`, `get`, `remove`, `compact`.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::time::Instant;

use hnswdb::{Durability, Stats, VerifyReport};
use serde::Serialize;

use crate::report::{self, bytes, duration, thousands, Table};
use crate::target::{Mode, OpenError};
use crate::{CliError, CompactArgs, GetArgs, RemoveArgs, StatsArgs, VerifyArgs};

/// The JSON form of `hnswdb stats`.
#[derive(Serialize)]
struct StatsJson {
    /// The index file, or with `--name` the app's database file holding the index.
    path: String,
    /// The index's name inside the app's database (`--name`); null for an index file.
    name: Option<String>,
    len: u64,
    dim: usize,
    metric: String,
    m: usize,
    m0: usize,
    ef_construction: usize,
    ef_search: usize,
    seed: u64,
    durability: &'static str,
    quick_repair: bool,
    cache_budget_bytes: u64,
    quantization: String,
    nodes_per_level: Vec<u64>,
    /// `nodes_per_layer[l]`: nodes present on layer `l` (those of level ≥ `l`).
    nodes_per_layer: Vec<u64>,
    /// `degree_histogram[l][d]`: nodes with exactly `d` out-links on layer `l`.
    degree_histogram: Vec<Vec<u64>>,
    max_level: Option<u8>,
    free_ids: u64,
    file_bytes: u64,
    cache_bytes: u64,
    /// Of `cache_bytes`: node table and upper layers, codes, layer-0 lists, layer-0 vectors.
    upper_bytes: u64,
    codes_bytes: u64,
    links_bytes: u64,
    vectors_bytes: u64,
    /// The most redb's page cache may take, beside `cache_bytes`.
    page_cache_bytes: u64,
    layer0_vectors_cached: bool,
    layer0_vectors_in_cache: u64,
    layer0_links_cached: bool,
}

/// The durability mode as a word.
fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::Immediate => "immediate",
        Durability::Eventual => "eventual",
    }
}

/// Runs `hnswdb stats`.
pub fn stats(args: &StatsArgs) -> Result<(), CliError> {
    let index = args.target.open()?;
    // The cache figures describe the loaded cache, not the moment after the open.
    index.wait_loaded()?;
    let stats: Stats = index.stats()?;
    let o = index.options();
    let mut out = io::stdout().lock();
    if args.json {
        let json = StatsJson {
            path: args.target.index.display().to_string(),
            name: args.target.name.clone(),
            len: stats.len,
            dim: o.get_dim(),
            metric: o.get_metric().to_string(),
            m: o.get_m(),
            m0: o.get_m0(),
            ef_construction: o.get_ef_construction(),
            ef_search: o.get_ef_search(),
            seed: o.get_seed(),
            durability: durability_name(o.get_durability()),
            quick_repair: o.get_quick_repair(),
            cache_budget_bytes: o.get_cache_bytes(),
            quantization: o.get_quantization().to_string(),
            nodes_per_level: stats.nodes_per_level.clone(),
            nodes_per_layer: nodes_per_layer(&stats),
            degree_histogram: stats.degree_histogram.clone(),
            max_level: stats.max_level,
            free_ids: stats.free_ids,
            file_bytes: stats.file_bytes,
            cache_bytes: stats.cache_bytes,
            upper_bytes: stats.upper_bytes,
            codes_bytes: stats.codes_bytes,
            links_bytes: stats.links_bytes,
            vectors_bytes: stats.vectors_bytes,
            page_cache_bytes: stats.page_cache_bytes,
            layer0_vectors_cached: stats.layer0_vectors_cached,
            layer0_vectors_in_cache: stats.layer0_vectors_in_cache,
            layer0_links_cached: stats.layer0_links_cached,
        };
        return report::print_json(&mut out, &json);
    }
    let cached = |yes: bool| if yes { "cached" } else { "read from the file" };
    writeln!(out, "index            {}", args.target)?;
    writeln!(
        out,
        "vectors          {}  (dim {}, metric {})",
        thousands(stats.len),
        o.get_dim(),
        o.get_metric()
    )?;
    writeln!(
        out,
        "graph            m {} (layer 0: {}), ef_construction {}, ef_search {}, seed {}",
        o.get_m(),
        o.get_m0(),
        o.get_ef_construction(),
        o.get_ef_search(),
        o.get_seed()
    )?;
    writeln!(out, "quantization     {}", o.get_quantization())?;
    writeln!(
        out,
        "durability       {}, quick repair {}",
        durability_name(o.get_durability()),
        if o.get_quick_repair() { "on" } else { "off" }
    )?;
    match args.target.name {
        None => writeln!(out, "file             {}", bytes(stats.file_bytes))?,
        Some(_) => writeln!(
            out,
            "file             {} taken by its tables in the database file",
            bytes(stats.file_bytes)
        )?,
    }
    let vectors = if stats.layer0_vectors_cached || stats.layer0_vectors_in_cache == 0 {
        cached(stats.layer0_vectors_cached).to_string()
    } else {
        format!(
            "{} of {} cached, the rest read from the file",
            thousands(stats.layer0_vectors_in_cache),
            thousands(stats.len)
        )
    };
    writeln!(
        out,
        "cache            {} in all (budget {}); layer-0 vectors {}, links {}",
        bytes(stats.cache_bytes),
        bytes(o.get_cache_bytes()),
        vectors,
        cached(stats.layer0_links_cached)
    )?;
    writeln!(
        out,
        "memory           upper layers {}, codes {}, layer-0 lists {}, f32 vectors {}; redb \
         page cache up to {}",
        bytes(stats.upper_bytes),
        bytes(stats.codes_bytes),
        bytes(stats.links_bytes),
        bytes(stats.vectors_bytes),
        bytes(stats.page_cache_bytes)
    )?;
    writeln!(out, "free ids         {}", thousands(stats.free_ids))?;
    match stats.max_level {
        None => writeln!(out, "levels           none (the index is empty)")?,
        Some(top) => {
            writeln!(
                out,
                "levels           0 to {top} (nodes by their top level):"
            )?;
            let mut table = Table::new(&["level", "nodes", "share"]);
            for (level, &n) in stats.nodes_per_level.iter().enumerate() {
                let share = 100.0 * n as f64 / stats.len.max(1) as f64;
                table.push(vec![
                    level.to_string(),
                    thousands(n),
                    format!("{share:.2}%"),
                ]);
            }
            table.print(&mut out)?;
            print_degrees(&mut out, &stats)?;
        }
    }
    Ok(())
}

/// Nodes present on each layer: those whose top level is that layer or above.
fn nodes_per_layer(stats: &Stats) -> Vec<u64> {
    let mut on_layer: Vec<u64> = stats
        .nodes_per_level
        .iter()
        .rev()
        .scan(0, |above, &n| {
            *above += n;
            Some(*above)
        })
        .collect();
    on_layer.reverse();
    on_layer
}

/// The out-degree histogram: one column per layer, one row per degree that occurs; then the
/// mean degree of each layer.
fn print_degrees(out: &mut impl Write, stats: &Stats) -> Result<(), CliError> {
    let layers = &stats.degree_histogram;
    let widest = layers.iter().map(Vec::len).max().unwrap_or(0);
    writeln!(
        out,
        "out-links        nodes by number of neighbours, per layer:"
    )?;
    let mut header = vec!["links".to_string()];
    header.extend((0..layers.len()).map(|l| format!("layer {l}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(&header);
    for degree in 0..widest {
        let counts: Vec<u64> = layers
            .iter()
            .map(|row| row.get(degree).copied().unwrap_or(0))
            .collect();
        if counts.iter().any(|&n| n > 0) {
            let mut row = vec![degree.to_string()];
            row.extend(
                counts
                    .iter()
                    .map(|&n| if n == 0 { String::new() } else { thousands(n) }),
            );
            table.push(row);
        }
    }
    let mut mean = vec!["mean".to_string()];
    mean.extend(layers.iter().map(|row| {
        let nodes: u64 = row.iter().sum();
        let links: u64 = row.iter().enumerate().map(|(d, &n)| d as u64 * n).sum();
        format!("{:.1}", links as f64 / nodes.max(1) as f64)
    }));
    table.push(mean);
    table.print(out)?;
    Ok(())
}

/// The JSON form of `hnswdb verify`.
#[derive(Serialize)]
struct VerifyJson {
    /// The index file, or with `--name` the app's database file holding the index.
    path: String,
    /// The index's name inside the app's database (`--name`); null for an index file.
    name: Option<String>,
    /// No problem found, and every check ran.
    ok: bool,
    /// Every check ran (false when the index could not be opened, or a record could not be
    /// read at all and the check stopped there).
    complete: bool,
    len: Option<u64>,
    file_bytes: Option<u64>,
    seconds: f64,
    /// Problems found in all, including those not listed.
    total_problems: u64,
    /// The problems listed (the library lists up to `VerifyReport::MAX_PROBLEMS`).
    problems: Vec<ProblemJson>,
    /// Why the index could not be checked at all (it did not open, or could not be read).
    error: Option<ErrorJson>,
}

/// One problem found by `verify`.
#[derive(Serialize)]
struct ProblemJson {
    what: String,
    location: String,
}

/// An error that kept `verify` from checking.
#[derive(Serialize)]
struct ErrorJson {
    /// `corrupt`, `not_an_index`, `version`, `not_found`, `not_a_database` (with `--name`: the
    /// file is not a redb database) or `other`.
    kind: &'static str,
    message: String,
}

impl ErrorJson {
    fn from(e: &OpenError) -> ErrorJson {
        let kind = match e {
            OpenError::Database { kind, .. } => kind,
            OpenError::Index { error, .. } => match error {
                hnswdb::Error::Corrupt { .. } => "corrupt",
                hnswdb::Error::NotAnIndex { .. } => "not_an_index",
                hnswdb::Error::Version { .. } => "version",
                hnswdb::Error::NotFound { .. } => "not_found",
                _ => "other",
            },
        };
        ErrorJson {
            kind,
            message: e.to_string(),
        }
    }
}

/// Runs `hnswdb verify`: opens the index (a file that cannot be opened fails too) and runs the
/// full integrity check. Prints every problem found; any problem is an error (non-zero exit).
pub fn verify(args: &VerifyArgs) -> Result<(), CliError> {
    let start = Instant::now();
    let mut len = None;
    let mut file_bytes = None;
    let result = args.target.reach(Mode::Open).and_then(|index| {
        len = Some(index.len() as u64);
        file_bytes = std::fs::metadata(&args.target.index).ok().map(|m| m.len());
        Ok(index.verify_report()?)
    });
    let took = start.elapsed();
    let path = args.target.to_string();
    let mut out = io::stdout().lock();
    let (report, error) = match result {
        Ok(report) => (report, None),
        Err(e) => (VerifyReport::default(), Some(e)),
    };
    let ok = error.is_none() && report.is_ok() && report.complete;
    if args.json {
        let json = VerifyJson {
            path: args.target.index.display().to_string(),
            name: args.target.name.clone(),
            ok,
            complete: error.is_none() && report.complete,
            len,
            file_bytes,
            seconds: took.as_secs_f64(),
            total_problems: report.total(),
            problems: report
                .problems
                .iter()
                .map(|p| ProblemJson {
                    what: p.what.clone(),
                    location: p.location.clone(),
                })
                .collect(),
            error: error.as_ref().map(ErrorJson::from),
        };
        report::print_json(&mut out, &json)?;
    } else if ok {
        writeln!(
            out,
            "ok: {path} passed the full integrity check ({} vectors, file {}) in {}",
            thousands(len.unwrap_or(0)),
            bytes(file_bytes.unwrap_or(0)),
            duration(took)
        )?;
    } else {
        writeln!(out, "FAILED: {path} did not pass the integrity check")?;
        if let Some(e) = &error {
            writeln!(out, "  could not check it: {e}")?;
        } else {
            let total = report.total();
            writeln!(
                out,
                "  {} problem{} found in {} ({} vectors):",
                thousands(total),
                if total == 1 { "" } else { "s" },
                duration(took),
                thousands(len.unwrap_or(0))
            )?;
            for (i, problem) in report.problems.iter().enumerate() {
                writeln!(out, "  {:>4}. {}", i + 1, problem.what)?;
                writeln!(out, "        at {}", problem.location)?;
            }
            if report.omitted > 0 {
                writeln!(out, "  and {} more, not listed", thousands(report.omitted))?;
            }
            if !report.complete {
                writeln!(
                    out,
                    "  the check stopped at the last problem (a record that cannot be read): \
                     there may be more"
                )?;
            }
        }
        writeln!(
            out,
            "  what now: restore the file from a backup, or rebuild it (`hnswdb build`, or \
             `hnswdb import` from an export)"
        )?;
    }
    out.flush()?;
    if let Some(e) = error {
        return Err(CliError::from(e).context(format!("{path} failed verification")));
    }
    if ok {
        return Ok(());
    }
    let first = report
        .problems
        .first()
        .map_or_else(String::new, |p| format!("; the first: {p}"));
    Err(CliError::new(format!(
        "{path} failed verification: {} problem{} found{first}",
        report.total(),
        if report.total() == 1 { "" } else { "s" }
    )))
}

/// Runs `hnswdb get`: prints the vector, comma-separated, on one line.
pub fn get(args: &GetArgs) -> Result<(), CliError> {
    let index = args.target.open()?;
    let Some(vector) = index.get(args.key)? else {
        return Err(CliError::new(format!(
            "key {} is not in {}",
            args.key, args.target
        )));
    };
    let text: Vec<String> = vector.iter().map(f32::to_string).collect();
    writeln!(io::stdout().lock(), "{}", text.join(","))?;
    Ok(())
}

/// Runs `hnswdb remove`: removes the keys that are present, all in one transaction. Keys that
/// were not present are reported as an error after the others are removed.
pub fn remove(args: &RemoveArgs) -> Result<(), CliError> {
    let index = args.target.open()?;
    let keys: BTreeSet<u64> = args.keys.iter().copied().collect();
    let mut missing = Vec::new();
    let mut tx = index.write()?;
    for &key in &keys {
        if !tx.remove(key)? {
            missing.push(key.to_string());
        }
    }
    tx.commit()?;
    let removed = keys.len() - missing.len();
    writeln!(
        io::stdout().lock(),
        "removed {} key{}; the index holds {} vectors",
        thousands(removed as u64),
        if removed == 1 { "" } else { "s" },
        thousands(index.len() as u64)
    )?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "not in the index, so not removed: {}",
            missing.join(", ")
        )))
    }
}

/// `hnswdb compact`: rewrite the file without the space removals left behind. An index inside an
/// app's database (`--name`) is refused by the library, with what to do instead.
pub fn compact(args: &CompactArgs) -> Result<(), CliError> {
    let index = args.target.open()?;
    let before = index.stats()?.file_bytes;
    index.compact()?;
    let after = index.stats()?.file_bytes;
    writeln!(
        io::stdout().lock(),
        "compacted: {} -> {}",
        bytes(before),
        bytes(after)
    )?;
    Ok(())
}
