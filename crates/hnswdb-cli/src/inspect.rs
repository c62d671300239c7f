//! Looking into an index and small repairs: `stats`, `verify`, `get`, `remove`.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use hnswdb::{Durability, Index, Stats};
use serde::Serialize;

use crate::error::Context;
use crate::report::{self, bytes, duration, thousands, Table};
use crate::{CliError, CompactArgs, GetArgs, RemoveArgs, StatsArgs, VerifyArgs};

/// Opens an existing index, with the path in the error.
fn open(path: &Path) -> Result<Index, CliError> {
    Index::open(path).context("cannot open the index")
}

/// The JSON form of `hnswdb stats`.
#[derive(Serialize)]
struct StatsJson {
    path: String,
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
    nodes_per_level: Vec<u64>,
    max_level: Option<u8>,
    free_ids: u64,
    file_bytes: u64,
    cache_bytes: u64,
    layer0_vectors_cached: bool,
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
    let index = open(&args.index)?;
    let stats: Stats = index.stats()?;
    let o = index.options();
    let mut out = io::stdout().lock();
    if args.json {
        let json = StatsJson {
            path: args.index.display().to_string(),
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
            nodes_per_level: stats.nodes_per_level.clone(),
            max_level: stats.max_level,
            free_ids: stats.free_ids,
            file_bytes: stats.file_bytes,
            cache_bytes: stats.cache_bytes,
            layer0_vectors_cached: stats.layer0_vectors_cached,
            layer0_links_cached: stats.layer0_links_cached,
        };
        return report::print_json(&mut out, &json);
    }
    let cached = |yes: bool| if yes { "cached" } else { "read from the file" };
    writeln!(out, "index            {}", args.index.display())?;
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
    writeln!(
        out,
        "durability       {}, quick repair {}",
        durability_name(o.get_durability()),
        if o.get_quick_repair() { "on" } else { "off" }
    )?;
    writeln!(out, "file             {}", bytes(stats.file_bytes))?;
    writeln!(
        out,
        "cache            {} of a {} layer-0 budget; layer-0 vectors {}, links {}",
        bytes(stats.cache_bytes),
        bytes(o.get_cache_bytes()),
        cached(stats.layer0_vectors_cached),
        cached(stats.layer0_links_cached)
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
        }
    }
    Ok(())
}

/// The JSON form of `hnswdb verify`.
#[derive(Serialize)]
struct VerifyJson {
    path: String,
    ok: bool,
    len: Option<u64>,
    file_bytes: Option<u64>,
    seconds: f64,
    problem: Option<ProblemJson>,
}

/// What `verify` found wrong.
#[derive(Serialize)]
struct ProblemJson {
    /// `corrupt`, `not_an_index`, `version`, `not_found` or `other`.
    kind: &'static str,
    message: String,
    what: Option<String>,
    location: Option<String>,
}

impl ProblemJson {
    fn from(e: &hnswdb::Error) -> ProblemJson {
        let (kind, what, location) = match e {
            hnswdb::Error::Corrupt { what, location } => {
                ("corrupt", Some(what.clone()), Some(location.clone()))
            }
            hnswdb::Error::NotAnIndex { .. } => ("not_an_index", None, None),
            hnswdb::Error::Version { .. } => ("version", None, None),
            hnswdb::Error::NotFound { .. } => ("not_found", None, None),
            _ => ("other", None, None),
        };
        ProblemJson {
            kind,
            message: e.to_string(),
            what,
            location,
        }
    }
}

/// Runs `hnswdb verify`: opens the index (a file that cannot be opened fails too) and runs the
/// full integrity check. Prints a report; any problem is an error (non-zero exit).
pub fn verify(args: &VerifyArgs) -> Result<(), CliError> {
    let start = Instant::now();
    let mut len = None;
    let mut file_bytes = None;
    let result = Index::open(&args.index).and_then(|index| {
        len = Some(index.len() as u64);
        file_bytes = index.stats().ok().map(|s| s.file_bytes);
        index.verify()
    });
    let took = start.elapsed();
    let path = args.index.display().to_string();
    let mut out = io::stdout().lock();
    if args.json {
        let json = VerifyJson {
            path: path.clone(),
            ok: result.is_ok(),
            len,
            file_bytes,
            seconds: took.as_secs_f64(),
            problem: result.as_ref().err().map(ProblemJson::from),
        };
        report::print_json(&mut out, &json)?;
    } else {
        match &result {
            Ok(()) => writeln!(
                out,
                "ok: {path} passed the full integrity check ({} vectors, file {}) in {}",
                thousands(len.unwrap_or(0)),
                bytes(file_bytes.unwrap_or(0)),
                duration(took)
            )?,
            Err(e) => {
                writeln!(out, "FAILED: {path} did not pass the integrity check")?;
                match e {
                    hnswdb::Error::Corrupt { what, location } => {
                        writeln!(out, "  problem:  {what}")?;
                        writeln!(out, "  where:    {location}")?;
                    }
                    other => writeln!(out, "  problem:  {other}")?,
                }
                writeln!(
                    out,
                    "  what now: restore the file from a backup, or rebuild it with `hnswdb build`"
                )?;
            }
        }
    }
    out.flush()?;
    result.map_err(|e| CliError::from(e).context(format!("{path} failed verification")))
}

/// Runs `hnswdb get`: prints the vector, comma-separated, on one line.
pub fn get(args: &GetArgs) -> Result<(), CliError> {
    let index = open(&args.index)?;
    let Some(vector) = index.get(args.key)? else {
        return Err(CliError::new(format!(
            "key {} is not in {}",
            args.key,
            args.index.display()
        )));
    };
    let text: Vec<String> = vector.iter().map(f32::to_string).collect();
    writeln!(io::stdout().lock(), "{}", text.join(","))?;
    Ok(())
}

/// Runs `hnswdb remove`: removes the keys that are present, all in one transaction. Keys that
/// were not present are reported as an error after the others are removed.
pub fn remove(args: &RemoveArgs) -> Result<(), CliError> {
    let index = open(&args.index)?;
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

/// `hnswdb compact`: rewrite the file without the space removals left behind.
pub fn compact(args: &CompactArgs) -> Result<(), CliError> {
    let mut index = open(&args.index)?;
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
