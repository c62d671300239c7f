//! Crash safety with a real crash: a child process writes to an index as fast as it can and is
//! killed with SIGKILL at a random moment; the parent reopens the file and checks that it holds
//! exactly a committed state, that `verify()` is clean and that the index keeps working.
//!
//! - `Durability::Immediate`: every transaction the child reported is there, whole, and nothing
//!   after it, except the one in flight when the kill landed, whole or not at all.
//! - `Durability::Eventual`: the file holds the state after some prefix of the transactions,
//!   losing fewer than `EVENTUAL_CHECKPOINT_COMMITS` reported commits.
//!
//! How it works. The child is this test binary itself: the parent re-executes
//! `std::env::current_exe()` running only the `crash_child` test (ignored, so that it runs only
//! as the child; run without the parent it fails), with `HNSWDB_CRASH_CHILD` set to the index
//! path. The child runs a plan of single inserts, batches, upserts, removes, multi-operation
//! transactions (some dropped) and compactions derived from a seed, and prints `done <i>`
//! (flushed) only after step `i` returned. The parent derives the same plan from the same seed and replays it on a model.
//! Each file takes several kills in a row: the first child creates it (with
//! `Index::open_or_create`), each next child opens the crashed file itself, and a quarter of the
//! kills land while it creates or opens (and recovers) it; the parent checks a copy.
//!
//! `HNSWDB_CRASH_TRIALS=<n>` sets the number of kills of each test (default 32 with Immediate,
//! 16 with Eventual), e.g. `HNSWDB_CRASH_TRIALS=2000 cargo test --test crash`. `HNSWDB_SEED`
//! reproduces the plans and the kill delays (where a kill lands still depends on timing).
#![cfg(unix)]

mod common;
use common::child::{self, say, ChildGuard};
use common::Rng;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hnswdb::{Durability, Hit, Index, Metric, Options, SearchParams, EVENTUAL_CHECKPOINT_COMMITS};

/// Set (to the index path) in the child's environment: makes `crash_child` do the writing.
const CHILD_PATH: &str = "HNSWDB_CRASH_CHILD";
/// The seed of the child's plan.
const CHILD_SEED: &str = "HNSWDB_CRASH_CHILD_SEED";
/// The options the child creates the index with if there is no file yet ([`encode`]).
const CHILD_OPTIONS: &str = "HNSWDB_CRASH_CHILD_OPTIONS";
/// Ordinary keys are below this, so upserts and removes hit live keys often.
const KEY_SPACE: u64 = 256;
/// A child stops by itself after this many steps or this long (if the parent never kills it).
const CHILD_MAX_STEPS: usize = 50_000;
const CHILD_MAX_TIME: Duration = Duration::from_secs(60);
/// Kills per file before a fresh one is made.
const KILLS_PER_FILE: u64 = 4;

/// Vectors by key, as bit patterns: the comparisons are bitwise (`-0.0` is not `0.0`).
type State = BTreeMap<u64, Vec<u32>>;

/// One step of the child's plan: what one API call (or one `WriteTxn`) does.
#[derive(Clone, Debug)]
enum Step {
    Insert(u64, Vec<f32>),
    Batch(Vec<(u64, Vec<f32>)>),
    Remove(u64),
    /// Inserts (`Some`) and removes (`None`) in one `WriteTxn`, committed (`true`) or dropped.
    Txn(Vec<(u64, Option<Vec<f32>>)>, bool),
    /// `Index::compact`: the file is rewritten and renamed over the old one.
    Compact,
    /// `Index::checkpoint`: under `Eventual`, every earlier commit is durable once it returns.
    Checkpoint,
}

impl Step {
    /// Runs the step on the index (in the child).
    fn run(&self, index: &mut Index) -> hnswdb::Result<()> {
        match self {
            Step::Compact => index.compact(),
            Step::Checkpoint => index.checkpoint(),
            Step::Insert(key, v) => index.insert(*key, v),
            Step::Batch(rows) => index.insert_batch(rows.iter().map(|(k, v)| (*k, v.as_slice()))),
            Step::Remove(key) => index.remove(*key).map(drop),
            Step::Txn(ops, commit) => {
                let mut tx = index.write()?;
                for (key, v) in ops {
                    match v {
                        Some(v) => tx.insert(*key, v)?,
                        None => drop(tx.remove(*key)?),
                    }
                }
                if *commit {
                    tx.commit()?;
                }
                Ok(())
            }
        }
    }

    /// Replays the step on the model (in the parent).
    fn apply(&self, state: &mut State) {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        match self {
            Step::Compact | Step::Checkpoint => {}
            Step::Insert(key, v) => drop(state.insert(*key, bits(v))),
            Step::Batch(rows) => {
                for (key, v) in rows {
                    state.insert(*key, bits(v));
                }
            }
            Step::Remove(key) => drop(state.remove(key)),
            Step::Txn(ops, commit) => {
                if *commit {
                    for (key, v) in ops {
                        match v {
                            Some(v) => drop(state.insert(*key, bits(v))),
                            None => drop(state.remove(key)),
                        }
                    }
                }
            }
        }
    }

    /// Whether the step always ends in a commit (`remove` of an absent key commits nothing).
    fn always_commits(&self) -> bool {
        matches!(
            self,
            Step::Insert(..) | Step::Batch(..) | Step::Txn(_, true)
        )
    }
}

/// The child's plan: an endless, deterministic sequence of steps for a `dim`-dimensional index.
struct Plan {
    rng: Rng,
    dim: usize,
    /// Keys inserted lately, to aim removes and upserts at live keys.
    recent: Vec<u64>,
    /// Vectors made lately, to insert duplicates now and then.
    pool: Vec<Vec<f32>>,
}

impl Plan {
    fn new(seed: u64, dim: usize) -> Plan {
        Plan {
            rng: Rng(seed),
            dim,
            recent: Vec::new(),
            pool: Vec::new(),
        }
    }

    fn key(&mut self) -> u64 {
        if self.rng.chance(3) {
            return self.rng.next(); // anywhere in u64
        }
        if !self.recent.is_empty() && self.rng.chance(30) {
            return self.recent[self.rng.below(self.recent.len() as u64) as usize];
        }
        self.rng.below(KEY_SPACE)
    }

    fn key_to_remove(&mut self) -> u64 {
        if !self.recent.is_empty() && self.rng.chance(75) {
            self.recent[self.rng.below(self.recent.len() as u64) as usize]
        } else {
            self.rng.below(KEY_SPACE)
        }
    }

    fn inserted(&mut self, key: u64) {
        if self.recent.len() == 64 {
            self.recent.remove(0);
        }
        self.recent.push(key);
    }

    /// A component with every mantissa bit random, sometimes `-0.0`, subnormal or large.
    fn component(&mut self) -> f32 {
        let bits = self.rng.next() as u32;
        let sign = bits & 0x8000_0000;
        match self.rng.below(32) {
            0 => -0.0,
            1 => f32::from_bits(sign | (bits & 0x007F_FFFF)), // subnormal (or ±0)
            2 => f32::from_bits(sign | (bits & 0x007F_FFFF) | (133 << 23)), // 64..128
            // Magnitude in [2^-7, 2).
            _ => f32::from_bits(
                sign | (bits & 0x007F_FFFF) | ((120 + self.rng.below(8) as u32) << 23),
            ),
        }
    }

    /// A valid vector under every metric: its first component is at least 0.5 in magnitude.
    fn vector(&mut self) -> Vec<f32> {
        if !self.pool.is_empty() && self.rng.chance(8) {
            return self.pool[self.rng.below(self.pool.len() as u64) as usize].clone();
        }
        let mut v: Vec<f32> = (0..self.dim).map(|_| self.component()).collect();
        let first = self.rng.next() as u32;
        v[0] = f32::from_bits((first & 0x807F_FFFF) | (126 << 23)); // ±[0.5, 1)
        if self.pool.len() == 32 {
            self.pool.swap_remove(self.rng.below(32) as usize);
        }
        self.pool.push(v.clone());
        v
    }
}

impl Iterator for Plan {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        let roll = self.rng.below(100);
        Some(if roll < 2 {
            Step::Compact
        } else if roll < 4 {
            Step::Checkpoint
        } else if roll < 35 {
            let (key, v) = (self.key(), self.vector());
            self.inserted(key);
            Step::Insert(key, v)
        } else if roll < 50 {
            let n = 2 + self.rng.below(11);
            let rows: Vec<(u64, Vec<f32>)> = (0..n)
                .map(|_| {
                    let (key, v) = (self.key(), self.vector());
                    self.inserted(key);
                    (key, v)
                })
                .collect();
            Step::Batch(rows)
        } else if roll < 70 {
            Step::Remove(self.key_to_remove())
        } else {
            let n = 1 + self.rng.below(8);
            let mut ops = Vec::new();
            for _ in 0..n {
                if self.rng.chance(60) {
                    let (key, v) = (self.key(), self.vector());
                    self.inserted(key);
                    ops.push((key, Some(v)));
                } else {
                    ops.push((self.key_to_remove(), None));
                }
            }
            Step::Txn(ops, self.rng.chance(85))
        })
    }
}

/// The child: the parent runs it (with `--ignored --exact`) and sets `HNSWDB_CRASH_CHILD`.
#[test]
#[ignore = "the child process of the crash tests, which run it"]
fn crash_child() {
    let path = std::env::var(CHILD_PATH).unwrap_or_else(|_| {
        panic!(
            "crash_child is run by the crash tests as their child process, with {CHILD_PATH} set"
        )
    });
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let options = decode(&std::env::var(CHILD_OPTIONS).unwrap());
    say("opening");
    let mut index = Index::open_or_create(&path, options).unwrap();
    say("ready");
    let start = Instant::now();
    for (i, step) in Plan::new(seed, index.dim())
        .take(CHILD_MAX_STEPS)
        .enumerate()
    {
        step.run(&mut index)
            .unwrap_or_else(|e| panic!("step {i} ({step:?}) failed: {e}"));
        say(&format!("done {i}"));
        if start.elapsed() > CHILD_MAX_TIME {
            break;
        }
    }
    say("end");
}

/// `options` as one line of text, for the child's environment.
fn encode(o: &Options) -> String {
    let metric = [Metric::L2, Metric::Cosine, Metric::Dot]
        .iter()
        .position(|m| *m == o.get_metric())
        .unwrap();
    let eventual = o.get_durability() == Durability::Eventual;
    format!(
        "{} {metric} {} {} {} {eventual} {} {}",
        o.get_dim(),
        o.get_m(),
        o.get_ef_construction(),
        o.get_seed(),
        o.get_quick_repair(),
        o.get_cache_bytes()
    )
}

fn decode(text: &str) -> Options {
    let f: Vec<&str> = text.split(' ').collect();
    let number = |i: usize| f[i].parse::<u64>().unwrap();
    let durability = if f[5] == "true" {
        Durability::Eventual
    } else {
        Durability::Immediate
    };
    Options::new(number(0) as usize)
        .metric([Metric::L2, Metric::Cosine, Metric::Dot][number(1) as usize])
        .m(number(2) as usize)
        .ef_construction(number(3) as usize)
        .seed(number(4))
        .durability(durability)
        .quick_repair(f[6] == "true")
        .cache_bytes(number(7))
}

fn spawn_child(path: &Path, options: &Options, seed: u64) -> ChildGuard {
    child::spawn(
        "crash_child",
        &[
            (CHILD_PATH, path.display().to_string()),
            (CHILD_SEED, seed.to_string()),
            (CHILD_OPTIONS, encode(options)),
        ],
    )
}

/// The index's whole content, read through the public API.
fn read_state(index: &Index) -> State {
    let keys = index.keys().unwrap();
    assert_eq!(keys.len(), index.len(), "keys() and len() disagree");
    keys.into_iter()
        .map(|key| {
            let v = index.get(key).unwrap().expect("a listed key has a vector");
            (key, v.iter().map(|x| x.to_bits()).collect())
        })
        .collect()
}

fn floats(bits: &[u32]) -> Vec<f32> {
    bits.iter().map(|b| f32::from_bits(*b)).collect()
}

/// How far two distances computed in different orders may differ.
fn tolerance(query: &[f32], v: &[f32]) -> f32 {
    let norm = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt();
    1e-4 * (1.0 + (norm(query) + norm(v)).powi(2))
}

/// Checks that `hits` are an exact answer for `query` over `state`.
fn assert_exact(metric: Metric, state: &State, query: &[f32], k: usize, hits: &[Hit]) {
    let rows: Vec<(u64, Vec<f32>)> = state.iter().map(|(k, v)| (*k, floats(v))).collect();
    let truth = common::brute_force(metric, &rows, query, k);
    assert_eq!(hits.len(), truth.len(), "hit count: {hits:?} vs {truth:?}");
    for hit in hits {
        let v = floats(&state[&hit.key]);
        let exact = metric.distance(query, &v);
        assert!(
            (exact - hit.distance).abs() <= tolerance(query, &v),
            "distance of {} is {}, exact {exact}",
            hit.key,
            hit.distance
        );
    }
    let last = hits.last().map_or(f32::INFINITY, |h| h.distance);
    for (key, distance) in &truth {
        let v = floats(&state[key]);
        if *distance < last - 2.0 * tolerance(query, &v) {
            assert!(
                hits.iter().any(|h| h.key == *key),
                "missed key {key} at {distance}: {hits:?}"
            );
        }
    }
}

/// Describes how `got` differs from `want`, for a failure message.
fn diff(got: &State, want: &State) -> String {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(k)).collect();
    let changed: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(k).is_some_and(|g| g != *v))
        .map(|(k, _)| k)
        .collect();
    format!("missing {missing:?}, unexpected {extra:?}, different vectors {changed:?}")
}

/// One index file, killed again and again; the first child creates it.
struct Chain {
    dir: tempfile::TempDir,
    path: PathBuf,
    options: Options,
    /// The state the file holds now (as a fresh open recovers it).
    state: State,
}

impl Chain {
    fn new(rng: &mut Rng, durability: Durability) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.hnsw");
        let metric = [Metric::L2, Metric::Cosine, Metric::Dot][rng.below(3) as usize];
        let dim = [2, 5, 16, 33][rng.below(4) as usize];
        let options = Options::new(dim)
            .metric(metric)
            .m(2 + rng.below(11) as usize)
            .ef_construction(8 + rng.below(57) as usize)
            .seed(rng.next())
            .durability(durability)
            .quick_repair(rng.chance(75))
            .cache_bytes(if rng.chance(25) { 0 } else { 1 << 20 });
        eprintln!("new file: {options:?}");
        Chain {
            dir,
            path,
            options,
            state: State::new(),
        }
    }
}

/// Tallies of a run, printed at the end.
#[derive(Default, Debug)]
struct Tally {
    trials: u64,
    /// Kills that landed before the child had opened (and recovered) the file.
    before_open: u64,
    /// Kills that landed while the child created the file, leaving no file at the path.
    create_interrupted: u64,
    /// Most files left in an index's directory besides the index and the checked copy.
    most_stray_files: usize,
    /// Trials where the step in flight at the kill changed the state and was found committed.
    in_flight_visible: u64,
    /// Reported steps over all trials.
    steps_reported: u64,
    /// Eventual: reported commits lost over all trials, and the most lost in one.
    commits_lost: u64,
    most_lost: u64,
}

fn trials(default: u64) -> u64 {
    std::env::var("HNSWDB_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Kills a child `trials` times over a few files and checks each outcome.
fn crash_trials(durability: Durability, trials: u64, seed: u64, max_delay_ms: u64) -> Tally {
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let mut chain = Chain::new(&mut rng, durability);
    let mut open_time = Duration::from_millis(1);
    for trial in 0..trials {
        if trial > 0 && trial % KILLS_PER_FILE == 0 {
            chain = Chain::new(&mut rng, durability);
        }
        let plan_seed = rng.next();
        let killed = child::run_and_kill(
            spawn_child(&chain.path, &chain.options, plan_seed),
            &mut rng,
            max_delay_ms,
            &mut open_time,
        );
        let context = format!(
            "trial {trial} (HNSWDB_SEED={seed}), plan seed {plan_seed}, {} steps reported",
            killed.done
        );
        let steps: Vec<Step> = Plan::new(plan_seed, chain.options.get_dim())
            .take(killed.done + 1)
            .collect();
        let copy = chain.dir.path().join("check.hnsw");
        let _ = std::fs::remove_file(&copy);
        let stray =
            std::fs::read_dir(chain.dir.path()).unwrap().count() - usize::from(chain.path.exists());
        tally.most_stray_files = tally.most_stray_files.max(stray);
        // Each open or create removes what earlier kills left: only the last kill's remains.
        let names = || -> Vec<_> {
            let entries = std::fs::read_dir(chain.dir.path()).unwrap();
            entries.map(|e| e.unwrap().file_name()).collect()
        };
        assert!(
            stray <= 1,
            "{context}: {stray} files left beside the index: {:?}",
            names()
        );
        tally.trials += 1;

        // A kill during `create` leaves no file, or a whole empty index.
        if !chain.path.exists() {
            assert!(
                !killed.ready && chain.state.is_empty(),
                "{context}: the index file is gone"
            );
            tally.create_interrupted += 1;
            continue;
        }

        // Check a copy: the next child recovers the crashed file itself.
        std::fs::copy(&chain.path, &copy).unwrap();
        let index = Index::open(&copy).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
        assert_eq!(index.options(), &chain.options, "{context}: options");
        index
            .verify()
            .unwrap_or_else(|e| panic!("{context}: verify after the crash: {e}"));
        let found = read_state(&index);

        // The states the file may hold: after steps 0..j, for the allowed j. Under Eventual,
        // every step before a reported checkpoint (or compact, which writes a durable file).
        let lowest = match durability {
            Durability::Immediate => killed.done,
            Durability::Eventual => steps[..killed.done]
                .iter()
                .rposition(|s| matches!(s, Step::Checkpoint | Step::Compact))
                .map_or(0, |c| c + 1),
        };
        let mut model = chain.state.clone();
        let mut matched = None;
        for (j, step) in steps.iter().enumerate() {
            if j >= lowest && model == found {
                matched = Some(j);
            }
            step.apply(&mut model);
        }
        // `steps[done]` was in flight (unless the child ended by itself).
        let mut in_flight_visible = false;
        if !killed.ended && model == found {
            in_flight_visible = matched != Some(killed.done);
            matched = Some(steps.len());
        }
        let Some(j) = matched else {
            let mut reported = chain.state.clone();
            for step in &steps[..killed.done] {
                step.apply(&mut reported);
            }
            panic!(
                "{context}: the file holds no committed state; against the reported one: {}\n\
                 in-flight step: {:?}",
                diff(&found, &reported),
                steps.last()
            );
        };
        if !killed.ready {
            tally.before_open += 1;
        }
        if in_flight_visible {
            tally.in_flight_visible += 1;
        }
        tally.steps_reported += killed.done as u64;
        if durability == Durability::Eventual {
            let lost = steps[j.min(killed.done)..killed.done]
                .iter()
                .filter(|s| s.always_commits())
                .count() as u64;
            assert!(
                lost < u64::from(EVENTUAL_CHECKPOINT_COMMITS),
                "{context}: {lost} reported commits lost; a checkpoint is due every \
                 {EVENTUAL_CHECKPOINT_COMMITS}"
            );
            tally.commits_lost += lost;
            tally.most_lost = tally.most_lost.max(lost);
        }
        chain.state = found.clone();
        keeps_working(
            index,
            &copy,
            chain.options.get_metric(),
            chain.options.get_dim(),
            found,
            &mut rng,
            &context,
        );
    }
    tally
}

/// After a crash the index answers exactly and takes writes; they survive a reopen.
fn keeps_working(
    mut index: Index,
    path: &Path,
    metric: Metric,
    dim: usize,
    mut state: State,
    rng: &mut Rng,
    context: &str,
) {
    let mut plan = Plan::new(rng.next(), dim);
    let exact_searches = |index: &Index, state: &State, plan: &mut Plan| {
        let mut queries = vec![plan.vector()];
        queries.extend(state.values().take(2).map(|v| floats(v)));
        for q in &queries {
            let k = 1 + state.len().min(6);
            let hits = index
                .search_with(q, &SearchParams::new(k).ef(state.len().max(1)))
                .unwrap_or_else(|e| panic!("{context}: search: {e}"));
            assert_exact(metric, state, q, k, &hits);
        }
    };
    exact_searches(&index, &state, &mut plan);

    let fresh = KEY_SPACE + 1 + rng.below(1 << 40);
    let step = Step::Insert(fresh, plan.vector());
    step.run(&mut index).unwrap();
    step.apply(&mut state);
    if let Some(&key) = state.keys().next() {
        let upsert = Step::Insert(key, plan.vector());
        upsert.run(&mut index).unwrap();
        upsert.apply(&mut state);
    }
    if let Some(&key) = state.keys().nth(state.len() / 2) {
        assert!(
            index.remove(key).unwrap(),
            "{context}: remove of a live key"
        );
        state.remove(&key);
    }
    let txn = Step::Txn(
        vec![
            (fresh + 1, Some(plan.vector())),
            (fresh, None),
            (fresh + 2, Some(plan.vector())),
        ],
        true,
    );
    txn.run(&mut index).unwrap();
    txn.apply(&mut state);
    index
        .verify()
        .unwrap_or_else(|e| panic!("{context}: verify after new writes: {e}"));
    assert!(read_state(&index) == state, "{context}: new writes");
    exact_searches(&index, &state, &mut plan);

    drop(index);
    let index = Index::open(path).unwrap();
    index.verify().unwrap();
    let found = read_state(&index);
    assert!(
        found == state,
        "{context}: after a clean reopen: {}",
        diff(&found, &state)
    );
}

#[test]
fn immediate_commits_survive_sigkill() {
    let seed = common::seed(0xC7A5_4001);
    let trials = trials(32);
    let start = Instant::now();
    let tally = crash_trials(Durability::Immediate, trials, seed, 250);
    eprintln!("Immediate: {tally:?} in {:?}", start.elapsed());
    assert_eq!(tally.trials, trials);
}

#[test]
fn eventual_reopens_at_a_committed_prefix() {
    let seed = common::seed(0xE7E4_7001);
    let trials = trials(16);
    let start = Instant::now();
    let tally = crash_trials(Durability::Eventual, trials, seed, 250);
    eprintln!("Eventual: {tally:?} in {:?}", start.elapsed());
    assert_eq!(tally.trials, trials);
}
