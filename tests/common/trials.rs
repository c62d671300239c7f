//! Seeded trials of the fault tests (`tests/fault_backend.rs`, `tests/power_cut.rs`,
//! `tests/io_faults.rs`): `HNSWDB_FAULT_TRIALS` sets how many, `HNSWDB_SEED` the seed, and
//! `HNSWDB_FAULT_TRIAL` runs one alone; each runs in `catch_unwind`, and a tally of outcomes is
//! printed.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use super::Rng;

/// The number of trials: `HNSWDB_FAULT_TRIALS`, else `default`.
pub fn trials(default: u64) -> u64 {
    std::env::var("HNSWDB_FAULT_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The trials to run: all of `0..n`, or only `HNSWDB_FAULT_TRIAL`.
pub fn trial_range(n: u64) -> std::ops::Range<u64> {
    match std::env::var("HNSWDB_FAULT_TRIAL")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(t) => t..t + 1,
        None => 0..n,
    }
}

pub fn trial_seed(seed: u64, trial: u64) -> u64 {
    Rng(seed ^ trial.wrapping_mul(0xA24B_AED4_963E_E407)).next()
}

pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(not a string)".into())
}

/// Runs `trial` over the trials, each in `catch_unwind`; prints a tally (each trial gives one
/// or more outcome lines) and fails with every failure and panic, with its seed and trial.
pub fn run_trials(
    name: &str,
    default_trials: u64,
    default_seed: u64,
    mut trial: impl FnMut(u64, u64) -> Result<Vec<String>, String>,
) {
    let seed = super::seed(default_seed);
    let n = trials(default_trials);
    let started = Instant::now();
    let mut tally: BTreeMap<String, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    let range = trial_range(n);
    let count = range.end - range.start;
    for t in range {
        match catch_unwind(AssertUnwindSafe(|| trial(seed, t))) {
            Ok(Ok(outcomes)) => {
                for outcome in outcomes {
                    *tally.entry(outcome).or_default() += 1;
                }
            }
            Ok(Err(failure)) => failures.push(format!(
                "trial {t} (HNSWDB_SEED={seed} HNSWDB_FAULT_TRIAL={t}): {failure}"
            )),
            Err(panic) => failures.push(format!(
                "trial {t} (HNSWDB_SEED={seed} HNSWDB_FAULT_TRIAL={t}): PANIC: {}",
                panic_message(&*panic)
            )),
        }
    }
    eprintln!(
        "{name}: {count} trials in {:.1?}, {} failed (seed {seed})",
        started.elapsed(),
        failures.len()
    );
    for (outcome, times) in &tally {
        eprintln!("  {times:>6} x {outcome}");
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {count} trials failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
