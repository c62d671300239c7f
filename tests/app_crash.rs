//! Crash safety across the boundary between the app's rows and its vectors: a child process
//! keeps a document table and two named indexes (`bodies`, `titles`) in one app database,
//! every transaction writing or deleting documents and their vectors in both indexes together
//! (`Index::write_with` + `WriteTxn::redb`), some of them dropped. The parent kills it with
//! SIGKILL at random moments and reopens a copy of the file: every document has its vector in
//! both indexes and every vector its document, each vector is the one written with its
//! document's version, both indexes verify clean, and the state is the one after every
//! reported transaction (plus, maybe, the one in flight).
//!
//! `HNSWDB_CRASH_TRIALS=<n>` sets the number of kills (default 24); `HNSWDB_SEED` reproduces
//! the plans and the kill delays. The child machinery is `tests/common/child.rs`.
#![cfg(unix)]

mod common;
use common::child::{self, say};
use common::Rng;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hnswdb::redb::{self, ReadableTable, TableDefinition};
use hnswdb::{Index, Metric, Options};

/// Set (to the database path) in the child's environment: makes `app_crash_child` write.
const CHILD_DB: &str = "HNSWDB_APP_CRASH_DB";
/// The seed of the child's plan.
const CHILD_SEED: &str = "HNSWDB_APP_CRASH_SEED";
/// The app's documents: key → the step that wrote the document's current version.
const DOCS: TableDefinition<u64, u64> = TableDefinition::new("docs");
const KEY_SPACE: u64 = 200;
const BODY_DIM: usize = 12;
const TITLE_DIM: usize = 4;
const CHILD_MAX_STEPS: usize = 50_000;
const CHILD_MAX_TIME: Duration = Duration::from_secs(60);
const KILLS_PER_FILE: u64 = 4;

/// Documents by key, with the step that wrote each.
type State = BTreeMap<u64, u64>;

/// The vector of document `key` as step `step` wrote it, in an index of `dim` dimensions.
fn vector(key: u64, step: u64, dim: usize) -> Vec<f32> {
    let mut rng = Rng(key ^ step.rotate_left(20) ^ ((dim as u64) << 50));
    (0..dim)
        .map(|_| rng.below(2000) as f32 / 100.0 - 10.0)
        .collect()
}

/// One transaction: documents written (`true`) or deleted, committed or dropped.
struct Step {
    ops: Vec<(u64, bool)>,
    commit: bool,
}

/// The steps of a plan, derived from its seed.
fn plan(seed: u64) -> impl Iterator<Item = Step> {
    let mut rng = Rng(seed);
    std::iter::repeat_with(move || {
        let n = if rng.chance(10) { 20 } else { 1 + rng.below(3) };
        let ops = (0..n)
            .map(|_| (rng.below(KEY_SPACE), rng.chance(70)))
            .collect();
        Step {
            ops,
            commit: rng.chance(90),
        }
    })
}

impl Step {
    /// Runs step `i` in the child: the documents and both indexes in one transaction.
    fn run(&self, i: u64, bodies: &Index, titles: &Index) -> hnswdb::Result<()> {
        let mut tx = bodies.write_with(&[titles])?;
        for &(key, write) in &self.ops {
            let had = tx.redb().open_table(DOCS)?.get(key)?.is_some();
            if write {
                tx.redb().open_table(DOCS)?.insert(key, i)?;
                tx.insert(key, &vector(key, i, BODY_DIM))?;
                tx.on(titles)?.insert(key, &vector(key, i, TITLE_DIM))?;
            } else {
                tx.redb().open_table(DOCS)?.remove(key)?;
                assert_eq!(tx.remove(key)?, had, "bodies and docs disagree on {key}");
                assert_eq!(tx.on(titles)?.remove(key)?, had);
            }
        }
        if self.commit {
            tx.commit()?;
        }
        Ok(())
    }

    /// Replays step `i` on the model (in the parent).
    fn apply(&self, i: u64, state: &mut State) {
        if !self.commit {
            return;
        }
        for &(key, write) in &self.ops {
            if write {
                state.insert(key, i);
            } else {
                state.remove(&key);
            }
        }
    }
}

fn open(db: Arc<redb::Database>) -> hnswdb::Result<(Index, Index)> {
    let bodies = Index::open_or_create_in(
        Arc::clone(&db),
        "bodies",
        Options::new(BODY_DIM).metric(Metric::L2).m(6),
    )?;
    let titles = Index::open_or_create_in(db, "titles", Options::new(TITLE_DIM).m(4))?;
    Ok((bodies, titles))
}

/// The child: the parent runs it and sets `HNSWDB_APP_CRASH_DB`.
#[test]
#[ignore = "the child process of the app-database crash test, which runs it"]
fn app_crash_child() {
    let path = std::env::var(CHILD_DB).unwrap_or_else(|_| {
        panic!("app_crash_child is run by the app-database crash test, with {CHILD_DB} set")
    });
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    say("opening");
    let db = Arc::new(redb::Database::open(&path).unwrap());
    let (bodies, titles) = open(db).unwrap();
    say("ready");
    let start = Instant::now();
    for (i, step) in plan(seed).take(CHILD_MAX_STEPS).enumerate() {
        step.run(i as u64, &bodies, &titles)
            .unwrap_or_else(|e| panic!("step {i} failed: {e}"));
        say(&format!("done {i}"));
        if start.elapsed() > CHILD_MAX_TIME {
            break;
        }
    }
    say("end");
}

/// The documents, after checking that both indexes hold exactly their vectors.
fn read_checked(path: &Path, context: &str) -> State {
    let db = Arc::new(redb::Database::open(path).unwrap());
    let (bodies, titles) = open(Arc::clone(&db)).unwrap();
    for index in [&bodies, &titles] {
        index
            .verify()
            .unwrap_or_else(|e| panic!("{context}: verify {:?}: {e}", index.name()));
    }
    let read = bodies.read().unwrap();
    let docs: State = match read.redb().open_table(DOCS) {
        Ok(table) => table
            .iter()
            .unwrap()
            .map(|row| {
                let (key, step) = row.unwrap();
                (key.value(), step.value())
            })
            .collect(),
        Err(redb::TableError::TableDoesNotExist(_)) => State::new(),
        Err(e) => panic!("{e}"),
    };
    let keys: Vec<u64> = docs.keys().copied().collect();
    assert_eq!(bodies.keys().unwrap(), keys, "{context}: bodies vs docs");
    assert_eq!(titles.keys().unwrap(), keys, "{context}: titles vs docs");
    for (&key, &step) in &docs {
        assert_eq!(
            bodies.get(key).unwrap().unwrap(),
            vector(key, step, BODY_DIM),
            "{context}: body of {key}"
        );
        assert_eq!(
            titles.get(key).unwrap().unwrap(),
            vector(key, step, TITLE_DIM),
            "{context}: title of {key}"
        );
    }
    // A search finds only documents.
    if let Some((&key, &step)) = docs.iter().next() {
        let hits = read.search(&vector(key, step, BODY_DIM), 5).unwrap();
        assert_eq!(hits[0].key, key);
        assert!(hits.iter().all(|h| docs.contains_key(&h.key)));
    }
    docs
}

#[test]
fn app_rows_and_vectors_survive_sigkill_together() {
    let seed = common::seed(0xA99C_4A5E);
    let trials = std::env::var("HNSWDB_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24u64);
    let start = Instant::now();
    let mut rng = Rng(seed);
    let mut open_time = Duration::from_millis(1);
    let (mut dir, mut state) = (tempfile::tempdir().unwrap(), State::new());
    let (mut steps_reported, mut in_flight_visible, mut before_open) = (0, 0, 0);
    for trial in 0..trials {
        if trial > 0 && trial % KILLS_PER_FILE == 0 {
            (dir, state) = (tempfile::tempdir().unwrap(), State::new());
        }
        let path = dir.path().join("app.redb");
        if !path.exists() {
            // The app's database exists before its first kill (redb's `Database::create` is
            // not atomic: a kill inside it can leave a file that is no database at all).
            let db = Arc::new(redb::Database::create(&path).unwrap());
            drop(open(db).unwrap());
        }
        let plan_seed = rng.next();
        let killed = child::run_and_kill(
            child::spawn(
                "app_crash_child",
                &[
                    (CHILD_DB, path.display().to_string()),
                    (CHILD_SEED, plan_seed.to_string()),
                ],
            ),
            &mut rng,
            200,
            &mut open_time,
        );
        let context = format!(
            "trial {trial} (HNSWDB_SEED={seed}), plan seed {plan_seed}, {} steps reported",
            killed.done
        );
        if !killed.ready {
            before_open += 1;
        }
        // Check a copy: the next child recovers the crashed file itself.
        let copy = dir.path().join("check.redb");
        std::fs::copy(&path, &copy).unwrap();
        let found = read_checked(&copy, &context);
        std::fs::remove_file(&copy).unwrap();

        let mut reported = state.clone();
        let steps: Vec<Step> = plan(plan_seed).take(killed.done + 1).collect();
        for (i, step) in steps[..killed.done].iter().enumerate() {
            step.apply(i as u64, &mut reported);
        }
        if found != reported {
            let mut with_in_flight = reported.clone();
            if let Some(step) = steps.get(killed.done).filter(|_| !killed.ended) {
                step.apply(killed.done as u64, &mut with_in_flight);
            }
            assert!(
                found == with_in_flight,
                "{context}: the file holds neither the reported state nor the one after the \
                 step in flight"
            );
            in_flight_visible += 1;
        }
        steps_reported += killed.done;
        state = found;
    }
    eprintln!(
        "{trials} kills, {steps_reported} transactions reported, {in_flight_visible} with the \
         one in flight found committed, {before_open} during open, in {:?}",
        start.elapsed()
    );
}
