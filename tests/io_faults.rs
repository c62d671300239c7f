//! I/O errors and a full disk under the index: seeded random workloads (those of
//! `tests/power_cut.rs`: an owned index over the simulated disk of `tests/common/faulty.rs`, or
//! an app's database with documents and two named indexes) with one fault injected at a random
//! call: EIO or ENOSPC, once or sticky, on `len`, `read`, `write`, `sync_data` or `set_len`, or
//! the disk full past a random size.
//!
//! A workload is run once to count the calls of each kind, then again with the fault planned at
//! a random one of them. The second run does not stop at the first error: every later step
//! runs too (a reopen step reopens the database on the faulty disk), as an app that goes on
//! after an error would. Every call must return `Ok` or an `Err`, never panic (each trial runs
//! in `catch_unwind`; a panic of redb caught by hnswdb, `Corrupt` at "... (panic caught)", fails
//! too), and every `Err` must say what happened: its text names the injected error or says
//! "I/O" (redb's `PreviousIo`: the handle refuses every later write, "close and re-open"). A
//! search in between returns only keys of the last state that committed `Ok`, the key it looks
//! for first. The planned fault must fire (the same calls as the first run, up to it).
//!
//! Then, with the fault still there (sticky, or the full disk), a reopen must give an `Err` or
//! an index, no panic. With the faults lifted, both what the page cache held (a restart) and
//! the durable bytes alone (a power cut after the error) reopen to exactly the state after one
//! commit: the last that returned `Ok`, or one whose commit failed after it (a failed commit
//! may have reached the disk); under `Eventual`, one no older than the last durable point. The
//! documents agree with the vectors, `verify` is clean, and the index keeps working (one more
//! commit, a search, a clean reopen).
//!
//! `HNSWDB_FAULT_TRIALS=<n>` sets the number of trials per setup (default 600: 1,200 trials,
//! 2,400 images, about 6 s in the test profile); `HNSWDB_SEED` reproduces a run and
//! `HNSWDB_FAULT_TRIAL=<t>` runs only its trial `t`.
//!
//! Measured (release, two shared cores, redb 4.6.0): `HNSWDB_FAULT_TRIALS=40000` with the
//! default seeds, 80,000 trials (about 4,000 to 6,000 per EIO kind and call, 1,700 to 1,900 per
//! ENOSPC one, 19,000 full disks) and 160,000 images reopened in about 4 minutes, found no
//! panic, no lost `Ok` commit, no partial transaction and no error that does not say what
//! happened.
//!
//! Findings: an I/O error inside redb's open of an index file came back as `Error::Corrupt`
//! ("restore from a backup or rebuild the index"), not as a storage error; fixed (an I/O error
//! at open is `Error::Storage` now, `store::open_error`), and
//! `an_io_error_while_opening_is_not_reported_as_corruption` keeps it so. Also seen, and
//! allowed (redb 4.6.0): redb swallows an I/O error in the abort of a dropped write transaction (the next
//! call gets `PreviousIo`); under `Eventual`, a failed checkpoint or close loses the commits
//! since the last durable one even without a power cut (redb reopens at its last durable
//! commit); after a failed fsync, a reopen on the same page cache may show the commit that
//! failed.
//!
//! The workload, model and checks are those of `tests/power_cut.rs`, in
//! `tests/common/fault_workload.rs`.

mod common;
#[path = "common/faulty.rs"]
#[allow(dead_code)]
mod faulty;
#[path = "common/fault_workload.rs"]
mod workload;
use common::trials::{run_trials, trial_seed};
use common::Rng;
use faulty::{Disk, Fault, FaultKind, Op};
use workload::*;

use hnswdb::{Error, Index};

/// The fault of a trial: a short name for the tally, the details for a failure.
fn plan_fault(rng: &mut Rng, disk: &Disk, dry: &Disk, start_len: u64) -> (String, String, bool) {
    let counts = dry.counts();
    let grown = dry.visible().len() as u64;
    if rng.chance(25) && grown > start_len {
        let capacity = start_len + rng.below(grown - start_len);
        disk.set_capacity(Some(capacity));
        return ("full disk".into(), format!("capacity {capacity}"), true);
    }
    let candidates: Vec<(Op, u64)> = [
        (Op::Len, counts.lens),
        (Op::Read, counts.reads),
        (Op::Write, counts.writes),
        (Op::SyncData, counts.syncs),
        (Op::SetLen, counts.set_lens),
    ]
    .into_iter()
    .filter(|&(_, n)| n > 0)
    .collect();
    let (op, n) = candidates[rng.below(candidates.len() as u64) as usize];
    let kind = if matches!(op, Op::Write | Op::SetLen | Op::SyncData) && rng.chance(30) {
        FaultKind::Enospc
    } else {
        FaultKind::Eio
    };
    let sticky = rng.chance(50);
    let nth = rng.below(n);
    disk.inject(if sticky {
        Fault::sticky(op, nth, kind)
    } else {
        Fault::once(op, nth, kind)
    });
    (
        format!("{kind:?} {op:?} {}", if sticky { "sticky" } else { "once" }),
        format!("{kind:?} on {op:?} #{nth} of {n}, sticky {sticky}"),
        sticky,
    )
}

/// One injected-fault trial.
fn fault_trial(bases: &Bases, setup: Setup, seed: u64, trial: u64) -> Result<Vec<String>, String> {
    let mut rng = Rng(trial_seed(seed, trial));
    let Trial {
        dur,
        from_empty,
        start,
        initial,
        plan,
        dry,
    } = dry_run(&mut rng, bases, setup, 10, "fault")?;
    let disk = Disk::from_image(start.clone());
    let (label, planned, sticky) = plan_fault(&mut rng, &disk, &dry, start.len() as u64);
    let faulted = run(&disk, setup, dur, &initial, from_empty, &plan, true);
    let fired = disk.fired();
    let what = |e: String| {
        format!(
            "{setup:?} {dur:?}, {planned}, from {}, fired {:?}, errors {:?}, last Ok commit at {}, \
             allowed states {}..={}: {e}",
            if from_empty { "empty" } else { "the base" },
            fired.first(),
            faulted
                .errors
                .iter()
                .map(|(step, e)| format!("{step}: {e}"))
                .collect::<Vec<_>>(),
            faulted.last_ok,
            faulted.durable,
            faulted.history.len() - 1,
        )
    };
    if fired.is_empty() {
        return Err(what("the planned fault never fired".into()));
    }
    if let Some(violation) = faulted.violations.first() {
        return Err(what(violation.clone()));
    }
    // Every error says what happened, and none is a panic of redb.
    for (step, e) in &faulted.errors {
        let text = e.to_string();
        if class(e).contains("panic caught") {
            return Err(what(format!("{step}: redb panicked: {e}")));
        }
        if !(text.contains("injected") || text.contains("I/O")) {
            return Err(what(format!(
                "{step} returned an error that does not say what happened: {e:?}"
            )));
        }
        // A failing disk is no damage: "restore from a backup" would be the wrong advice.
        if matches!(e, Error::Corrupt { .. }) {
            return Err(what(format!(
                "{step}: an I/O error came back as Corrupt: {e}"
            )));
        }
    }
    // The first error, and what the calls after it did: worked, or refused.
    let (first, then) = match faulted.errors.first() {
        None => ("no error (redb swallowed it)".to_string(), "-"),
        Some((step, e)) => (
            format!(
                "{} at {}",
                class(e),
                step.split_whitespace().last().unwrap_or(step)
            ),
            match (faulted.ok_after_error, faulted.errors.len() - 1) {
                (0, 0) => "no later call",
                (0, _) => "only errors",
                (_, 0) => "only Ok",
                (_, _) => "Ok and errors (searches of the cache, calls after a reopen)",
            },
        ),
    };
    let durable = disk.durable();
    // With the fault still there: an Err or an index, never a panic.
    let faulty_reopen = if sticky || label == "full disk" {
        match open(setup, &disk) {
            Ok(h) => {
                let _ = close(h);
                "; faulty reopen Ok"
            }
            Err(e) => {
                if class(&e).contains("panic caught") {
                    return Err(what(format!("the reopen on the faulty disk panicked: {e}")));
                }
                "; faulty reopen Err"
            }
        }
    } else {
        ""
    };
    disk.clear_faults();
    let creation_cut = from_empty && !faulted.started;
    let allowed = faulted.allowed();
    let last_ok = faulted.last_ok - faulted.durable;
    let at = |found: Option<usize>| match found {
        None => "no index (creation failed)",
        Some(p) if p == last_ok => "the last Ok commit",
        Some(p) if p > last_ok => "a failed commit",
        Some(_) => "an older commit, not before the last durable one",
    };
    let restart = check_image(setup, disk.visible(), allowed, creation_cut)
        .map_err(|e| what(format!("the page cache, after the faults were lifted: {e}")))?;
    let cut = check_image(setup, durable, allowed, creation_cut).map_err(|e| {
        what(format!(
            "the durable bytes (a power cut after the fault): {e}"
        ))
    })?;
    Ok(vec![
        format!("1 fault: {label}{faulty_reopen}"),
        format!("2 first error: {first}"),
        format!("3 later calls: {then}"),
        format!("4 restart, {dur:?}: {}", at(restart)),
        format!("5 power cut, {dur:?}: {}", at(cut)),
    ])
}

#[test]
fn io_errors_under_an_owned_index_are_errors_and_lose_nothing() {
    let bases = Bases::new();
    run_trials(
        "injected faults, owned index",
        600,
        0xFA17_0C07,
        |seed, trial| fault_trial(&bases, Setup::Owned, seed, trial),
    );
}

#[test]
fn io_errors_under_named_indexes_and_app_rows_are_errors_and_lose_nothing() {
    let bases = Bases::new();
    run_trials(
        "injected faults, named indexes and app rows",
        600,
        0xFA17_0A99,
        |seed, trial| fault_trial(&bases, Setup::Named, seed, trial),
    );
}

/// Found by these trials, and fixed: an I/O error inside redb's open was reported as
/// `Error::Corrupt` ("restore from a backup or rebuild the index"), since `store::open_database`
/// mapped every redb open error but `DatabaseAlreadyOpen` to `Corrupt`. It is a storage error.
#[test]
fn an_io_error_while_opening_is_not_reported_as_corruption() {
    let (image, _) = base_image(Setup::Owned, Dur::Immediate);
    let disk = Disk::from_image(image);
    // Read #0 is the hook's look at the magic number; #1 is redb's first read of its header.
    disk.inject(Fault::once(Op::Read, 1, FaultKind::Eio));
    let error = Index::open_with_backend(disk.backend()).unwrap_err();
    assert!(error.to_string().contains("injected EIO"), "{error}");
    assert!(
        matches!(error, Error::Storage(_) | Error::Io(_)),
        "an I/O error at open came back as {error:?}"
    );
}
