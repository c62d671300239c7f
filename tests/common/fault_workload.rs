//! The workload, model and checks of the fault tests (`tests/power_cut.rs`,
//! `tests/io_faults.rs`): seeded plans of index operations over the simulated disk of
//! `faulty.rs`, on an index that owns its database (the `test-hooks` constructors) or on named
//! indexes with app rows in an app database, replayed on a model, and the checks of a reopened
//! image. A test crate includes it beside `common` and `faulty`:
//! `#[path = "common/fault_workload.rs"] mod workload;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use hnswdb::redb::{self, ReadableTable, TableDefinition};
use hnswdb::{Durability, Error, Index, Metric, Options};

use crate::common::Rng;
use crate::faulty::Disk;

/// The dimension of index `a` (and of the owned index).
pub const DIM_A: usize = 8;
/// The dimension of index `b`.
pub const DIM_B: usize = 4;
/// Keys of the workloads are below this.
pub const KEYS: u64 = 48;
/// Keys of the start image: `0..BASE_KEYS`.
pub const BASE_KEYS: u64 = 24;
/// The key of the write that shows a reopened index still works.
pub const EXTRA_KEY: u64 = 1_000;
/// The app's documents: key -> the version of its vectors.
pub const DOCS: TableDefinition<u64, u64> = TableDefinition::new("docs");
/// The document row holding the number of the last commit that wrote documents.
pub const MARKER: u64 = u64::MAX;

/// The vector of `key` at version `ver`, in `dim` dimensions.
pub fn vector(key: u64, ver: u64, dim: usize) -> Vec<f32> {
    let mut rng = Rng(key.wrapping_mul(0x9E37_79B9) ^ ver.rotate_left(24) ^ ((dim as u64) << 56));
    (0..dim).map(|_| rng.unit()).collect()
}

/// Where the workload runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// One index owning its database (`Index::create_with_backend`).
    Owned,
    /// The app's database: documents and the named indexes `a` and `b`.
    Named,
}

/// The durabilities of the indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dur {
    Immediate,
    Eventual,
    /// `a` (or the owned index) `Eventual`, `b` `Immediate`.
    Mixed,
}

impl Dur {
    pub fn pick(rng: &mut Rng, setup: Setup) -> Dur {
        match rng.below(10) {
            0..=4 => Dur::Immediate,
            5..=7 => Dur::Eventual,
            _ if setup == Setup::Named => Dur::Mixed,
            _ => Dur::Eventual,
        }
    }

    pub fn of_a(self) -> Durability {
        match self {
            Dur::Immediate => Durability::Immediate,
            Dur::Eventual | Dur::Mixed => Durability::Eventual,
        }
    }

    pub fn of_b(self) -> Durability {
        match self {
            Dur::Immediate | Dur::Mixed => Durability::Immediate,
            Dur::Eventual => Durability::Eventual,
        }
    }
}

pub fn options(dim: usize, durability: Durability) -> Options {
    Options::new(dim)
        .metric(Metric::L2)
        .m(4)
        .ef_construction(32)
        .seed(7)
        .build_threads(1)
        .durability(durability)
}

/// The committed contents: per index key -> version; the documents (with the marker).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub a: BTreeMap<u64, u64>,
    pub b: BTreeMap<u64, u64>,
    pub docs: BTreeMap<u64, u64>,
}

impl State {
    pub fn summary(&self) -> String {
        format!(
            "a {} keys, b {} keys, {} docs, marker {:?}",
            self.a.len(),
            self.b.len(),
            self.docs.len(),
            self.docs.get(&MARKER)
        )
    }
}

/// What a reopened database holds: keys and vectors per index, the documents.
#[derive(Debug, Default)]
pub struct Seen {
    pub a: BTreeMap<u64, Vec<f32>>,
    pub b: Option<BTreeMap<u64, Vec<f32>>>,
    pub docs: BTreeMap<u64, u64>,
}

pub fn same_vectors(
    seen: &BTreeMap<u64, Vec<f32>>,
    model: &BTreeMap<u64, u64>,
    dim: usize,
) -> bool {
    seen.len() == model.len()
        && seen.iter().zip(model).all(|((k, v), (mk, ver))| {
            k == mk
                && v.iter()
                    .map(|x| x.to_bits())
                    .eq(vector(*k, *ver, dim).iter().map(|x| x.to_bits()))
        })
}

impl Seen {
    pub fn matches(&self, state: &State) -> bool {
        same_vectors(&self.a, &state.a, DIM_A)
            && self
                .b
                .as_ref()
                .is_none_or(|b| same_vectors(b, &state.b, DIM_B))
            && self.docs == state.docs
    }

    pub fn summary(&self) -> String {
        format!(
            "a {} keys, b {} keys, {} docs, marker {:?}",
            self.a.len(),
            self.b.as_ref().map_or(0, BTreeMap::len),
            self.docs.len(),
            self.docs.get(&MARKER)
        )
    }

    /// Named: every document has its vector in `a` (of its version), and every vector of `a`
    /// its document.
    pub fn docs_agree(&self) -> Result<(), String> {
        let docs: Vec<u64> = self.docs.keys().copied().filter(|&k| k != MARKER).collect();
        let keys: Vec<u64> = self.a.keys().copied().collect();
        if docs != keys {
            return Err(format!(
                "documents {docs:?} and the vectors of a {keys:?} disagree"
            ));
        }
        for (key, v) in &self.a {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            if bits(v) != bits(&vector(*key, self.docs[key], DIM_A)) {
                return Err(format!(
                    "the vector of key {key} in a is not that of its document's version {}",
                    self.docs[key]
                ));
            }
        }
        Ok(())
    }
}

/// One write of a transaction: a document (and its vectors) put or deleted.
#[derive(Clone, Debug)]
pub enum TxnOp {
    Put { key: u64, ver: u64 },
    Del { key: u64 },
}

/// One step of a workload.
#[derive(Clone, Debug)]
pub enum Step {
    /// `Index::insert` (an upsert when the key is there) on the plain index: the owned one, or
    /// `b`.
    Insert { key: u64, ver: u64 },
    /// `Index::remove` on the plain index (commits only when the key is there).
    Remove { key: u64 },
    /// `Index::insert_batch` on the plain index.
    Batch { rows: Vec<(u64, u64)> },
    /// A `WriteTxn`: owned, on the index; named, the documents and `a`, and `b` too with
    /// `multi`. Dropped instead of committed without `commit`.
    Txn {
        ops: Vec<TxnOp>,
        multi: bool,
        commit: bool,
    },
    /// A search of `a` (the owned index) for the vector `key` has in the model, if any.
    Search { key: u64 },
    /// `checkpoint` on `a`, or with `b` on `b`.
    Checkpoint { b: bool },
    /// Close every handle (and the app's database), then open them again.
    Reopen,
}

/// A workload of `n` steps; versions are numbered from `first_ver`.
pub fn plan(rng: &mut Rng, n: u64, first_ver: u64) -> Vec<Step> {
    let mut ver = first_ver;
    let mut next_ver = || {
        ver += 1;
        ver
    };
    (0..n)
        .map(|_| match rng.below(100) {
            0..=19 => Step::Insert {
                key: rng.below(KEYS),
                ver: next_ver(),
            },
            20..=32 => Step::Remove {
                key: rng.below(KEYS),
            },
            33..=42 => Step::Batch {
                rows: (0..2 + rng.below(10))
                    .map(|_| (rng.below(KEYS), next_ver()))
                    .collect(),
            },
            43..=79 => Step::Txn {
                ops: (0..1 + rng.below(6))
                    .map(|_| {
                        if rng.chance(70) {
                            TxnOp::Put {
                                key: rng.below(KEYS),
                                ver: next_ver(),
                            }
                        } else {
                            TxnOp::Del {
                                key: rng.below(KEYS),
                            }
                        }
                    })
                    .collect(),
                multi: rng.chance(50),
                commit: rng.chance(85),
            },
            80..=88 => Step::Search {
                key: rng.below(KEYS),
            },
            89..=94 => Step::Checkpoint { b: rng.chance(50) },
            _ => Step::Reopen,
        })
        .collect()
}

/// Which indexes a step commits to: (`a`, `b`).
pub fn participants(step: &Step, setup: Setup) -> (bool, bool) {
    match (step, setup) {
        (Step::Txn { .. }, Setup::Owned) => (true, false),
        (Step::Txn { multi, .. }, Setup::Named) => (true, *multi),
        (_, Setup::Owned) => (true, false),
        (_, Setup::Named) => (false, true),
    }
}

/// The map of the plain index (the owned one, or `b`) in `state`.
pub fn plain_map(state: &mut State, setup: Setup) -> &mut BTreeMap<u64, u64> {
    match setup {
        Setup::Owned => &mut state.a,
        Setup::Named => &mut state.b,
    }
}

/// The state after `step` commits on `state` as commit `number`; `None` if it commits nothing.
pub fn apply(state: &State, step: &Step, setup: Setup, number: u64) -> Option<State> {
    let mut next = state.clone();
    match step {
        Step::Insert { key, ver } => {
            plain_map(&mut next, setup).insert(*key, *ver);
        }
        Step::Remove { key } => {
            plain_map(&mut next, setup).remove(key)?;
        }
        Step::Batch { rows } => {
            let map = plain_map(&mut next, setup);
            for (key, ver) in rows {
                map.insert(*key, *ver);
            }
        }
        Step::Txn { ops, multi, commit } => {
            if !commit {
                return None;
            }
            let named = setup == Setup::Named;
            for op in ops {
                match *op {
                    TxnOp::Put { key, ver } => {
                        next.a.insert(key, ver);
                        if named {
                            next.docs.insert(key, ver);
                            if *multi {
                                next.b.insert(key, ver);
                            }
                        }
                    }
                    TxnOp::Del { key } => {
                        next.a.remove(&key);
                        if named {
                            next.docs.remove(&key);
                            if *multi {
                                next.b.remove(&key);
                            }
                        }
                    }
                }
            }
            if named {
                next.docs.insert(MARKER, number);
            }
        }
        Step::Search { .. } | Step::Checkpoint { .. } | Step::Reopen => return None,
    }
    Some(next)
}

/// The open handles of a workload.
pub struct Handles {
    /// Named: the app's database.
    pub db: Option<Arc<redb::Database>>,
    /// The owned index, or `a`.
    pub a: Index,
    /// Named: `b`.
    pub b: Option<Index>,
}

impl Handles {
    /// The index plain steps write: the owned one, or `b`.
    pub fn plain(&self) -> &Index {
        self.b.as_ref().unwrap_or(&self.a)
    }
}

/// Creates the workload's indexes on an empty disk.
pub fn create(setup: Setup, disk: &Disk, dur: Dur) -> hnswdb::Result<Handles> {
    match setup {
        Setup::Owned => Ok(Handles {
            db: None,
            a: Index::create_with_backend(disk.backend(), options(DIM_A, dur.of_a()))?,
            b: None,
        }),
        Setup::Named => {
            let db = Arc::new(redb::Database::builder().create_with_backend(disk.backend())?);
            let a = Index::create_in(Arc::clone(&db), "a", options(DIM_A, dur.of_a()))?;
            let b = Index::create_in(Arc::clone(&db), "b", options(DIM_B, dur.of_b()))?;
            Ok(Handles {
                db: Some(db),
                a,
                b: Some(b),
            })
        }
    }
}

/// Opens the workload's indexes on `disk` and waits for their caches (so that every run of a
/// workload makes the same calls).
pub fn open(setup: Setup, disk: &Disk) -> hnswdb::Result<Handles> {
    let handles = match setup {
        Setup::Owned => Handles {
            db: None,
            a: Index::open_with_backend(disk.backend())?,
            b: None,
        },
        Setup::Named => {
            let db = Arc::new(redb::Database::builder().create_with_backend(disk.backend())?);
            let a = Index::open_in(Arc::clone(&db), "a")?;
            let b = Index::open_in(Arc::clone(&db), "b")?;
            Handles {
                db: Some(db),
                a,
                b: Some(b),
            }
        }
    };
    handles.a.wait_loaded()?;
    if let Some(b) = &handles.b {
        b.wait_loaded()?;
    }
    Ok(handles)
}

/// Closes every handle, then the app's database; the first error.
pub fn close(handles: Handles) -> hnswdb::Result<()> {
    let Handles { db, a, b } = handles;
    let mut result = a.close();
    if let Some(b) = b {
        result = result.and(b.close());
    }
    if let Some(db) = db {
        if let Ok(db) = Arc::try_unwrap(db) {
            result = result.and(db.close().map_err(Error::from));
        }
    }
    result
}

/// Runs one step. `Err((error, landed))`: `landed` when a commit was under way, which may have
/// reached the disk.
pub fn execute(
    step: &Step,
    h: &Handles,
    setup: Setup,
    number: u64,
    model: &State,
) -> Result<(), (Error, bool)> {
    let landed = |e| (e, true);
    let before = |e| (e, false);
    match step {
        Step::Insert { key, ver } => {
            let index = h.plain();
            index
                .insert(*key, &vector(*key, *ver, index.dim()))
                .map_err(landed)
        }
        Step::Remove { key } => h.plain().remove(*key).map(drop).map_err(landed),
        Step::Batch { rows } => {
            let index = h.plain();
            let rows: Vec<(u64, Vec<f32>)> = rows
                .iter()
                .map(|&(k, ver)| (k, vector(k, ver, index.dim())))
                .collect();
            index.insert_batch(rows).map_err(landed)
        }
        Step::Txn { ops, multi, commit } => {
            let others: Vec<&Index> = match (&h.b, multi) {
                (Some(b), true) => vec![b],
                _ => Vec::new(),
            };
            let mut tx = h.a.write_with(&others).map_err(before)?;
            let stage = |tx: &mut hnswdb::WriteTxn<'_>| -> hnswdb::Result<()> {
                for op in ops {
                    match *op {
                        TxnOp::Put { key, ver } => {
                            if setup == Setup::Named {
                                tx.redb().open_table(DOCS)?.insert(key, ver)?;
                            }
                            tx.insert(key, &vector(key, ver, DIM_A))?;
                            if let Some(b) = others.first() {
                                tx.on(b)?.insert(key, &vector(key, ver, DIM_B))?;
                            }
                        }
                        TxnOp::Del { key } => {
                            if setup == Setup::Named {
                                tx.redb().open_table(DOCS)?.remove(key)?;
                            }
                            tx.remove(key)?;
                            if let Some(b) = others.first() {
                                tx.on(b)?.remove(key)?;
                            }
                        }
                    }
                }
                if setup == Setup::Named {
                    tx.redb().open_table(DOCS)?.insert(MARKER, number)?;
                }
                Ok(())
            };
            stage(&mut tx).map_err(before)?;
            if *commit {
                tx.commit().map_err(landed)
            } else {
                drop(tx);
                Ok(())
            }
        }
        Step::Search { key } => {
            let query = match model.a.get(key) {
                Some(&ver) => vector(*key, ver, DIM_A),
                None => vector(*key, u64::MAX, DIM_A),
            };
            let hits = h.a.search(&query, 3).map_err(before)?;
            if let Some(hit) = hits.iter().find(|hit| !model.a.contains_key(&hit.key)) {
                panic!(
                    "a search returned key {}, which the index does not hold (model: {})",
                    hit.key,
                    model.summary()
                );
            }
            if model.a.contains_key(key) {
                assert_eq!(
                    hits.first().map(|hit| hit.key),
                    Some(*key),
                    "a search for the vector of key {key} did not find it first: {hits:?}"
                );
            }
            assert_eq!(hits.len(), model.a.len().min(3), "{hits:?}");
            Ok(())
        }
        Step::Checkpoint { b } => {
            let index = if *b { h.plain() } else { &h.a };
            index.checkpoint().map_err(landed)
        }
        Step::Reopen => unreachable!("the runner reopens"),
    }
}

/// What a run of a workload did.
#[derive(Default)]
pub struct Run {
    /// The start (create or open) returned `Ok`.
    pub started: bool,
    /// The states the disk may hold, in order: the start, then each commit that returned `Ok`
    /// or failed (a failed one may have reached the disk).
    pub history: Vec<State>,
    /// The position in `history` of the state of the last commit that returned `Ok`, or of
    /// the state the last reopen found (a failed commit may have reached the page cache).
    pub last_ok: usize,
    /// The position in `history` of the newest state known durable.
    pub durable: usize,
    /// Every error returned, with the step it came from.
    pub errors: Vec<(String, Error)>,
    /// The steps skipped for want of open handles.
    pub skipped: u64,
    /// What a reopen in the middle of the workload found wrong.
    pub violations: Vec<String>,
    /// The steps that returned `Ok` after the first error (`go_on`).
    pub ok_after_error: u64,
}

impl Run {
    /// The states a reopen may find.
    pub fn allowed(&self) -> &[State] {
        &self.history[self.durable..]
    }
}

/// Runs `plan` from `start` (the state the disk holds; `None`: an empty disk, created here),
/// stopping at the first error unless `go_on`, in which case later steps run on (a reopen
/// retries an open that failed). Closes everything at the end.
pub fn run(
    disk: &Disk,
    setup: Setup,
    dur: Dur,
    start: &State,
    from_empty: bool,
    plan: &[Step],
    go_on: bool,
) -> Run {
    let mut run = Run {
        history: vec![start.clone()],
        ..Run::default()
    };
    // Per index, commits since its last durable one, as hnswdb counts them (a checkpoint on
    // an index writes only when its own count is not 0).
    let mut pending = [0u32; 2];
    let mut model = start.clone();
    let mut handles = match if from_empty {
        create(setup, disk, dur)
    } else {
        open(setup, disk)
    } {
        Ok(h) => Some(h),
        Err(e) => {
            run.errors.push(("start".into(), e));
            return run;
        }
    };
    run.started = true;
    let mut number = 0;
    for (i, step) in plan.iter().enumerate() {
        let what = |e: Error| (format!("step {i} {}", step_name(step)), e);
        if let Step::Reopen = step {
            if let Some(h) = handles.take() {
                match close(h) {
                    Ok(()) => {
                        if pending != [0, 0] {
                            run.durable = run.last_ok;
                        }
                        pending = [0, 0];
                    }
                    Err(e) => {
                        run.errors.push(what(e));
                        if !go_on {
                            return run;
                        }
                    }
                }
            }
            match open(setup, disk).and_then(|h| Ok((read_seen(&h)?, h))) {
                Ok((seen, h)) => {
                    // The reopened handles show a state the disk may hold; the workload goes
                    // on from it (under `Eventual`, a failed checkpoint or close may have lost
                    // the commits since the last durable one).
                    match run.allowed().iter().rposition(|s| seen.matches(s)) {
                        Some(p) => {
                            // What came after it did not reach the disk, and never will.
                            let p = run.durable + p;
                            run.history.truncate(p + 1);
                            run.last_ok = p;
                            model = run.history[p].clone();
                        }
                        None => run.violations.push(format!(
                            "step {i} reopen: the reopened index holds {}, which is no allowed \
                             state",
                            seen.summary()
                        )),
                    }
                    if setup == Setup::Named {
                        if let Err(e) = seen.docs_agree() {
                            run.violations.push(format!("step {i} reopen: {e}"));
                        }
                    }
                    // New handles: nothing of theirs is waiting for a checkpoint.
                    pending = [0, 0];
                    if !run.errors.is_empty() {
                        run.ok_after_error += 1;
                    }
                    handles = Some(h);
                }
                Err(e) => {
                    run.errors.push(what(e));
                    if !go_on {
                        return run;
                    }
                }
            }
            continue;
        }
        let Some(h) = &handles else {
            run.skipped += 1;
            continue;
        };
        let next = apply(&model, step, setup, number + 1);
        if next.is_some() {
            number += 1;
        }
        match execute(step, h, setup, number, &model) {
            Ok(()) => {
                if !run.errors.is_empty() {
                    run.ok_after_error += 1;
                }
                if let Step::Checkpoint { b } = step {
                    let which = usize::from(*b && setup == Setup::Named);
                    if pending[which] > 0 {
                        run.durable = run.last_ok;
                        pending[which] = 0;
                    }
                }
                if let Some(next) = next {
                    let (in_a, in_b) = participants(step, setup);
                    let durable = (in_a && dur.of_a() == Durability::Immediate)
                        || (in_b && dur.of_b() == Durability::Immediate);
                    for (count, part) in pending.iter_mut().zip([in_a, in_b]) {
                        if part {
                            *count = if durable { 0 } else { *count + 1 };
                        }
                    }
                    model = next;
                    run.history.push(model.clone());
                    run.last_ok = run.history.len() - 1;
                    if durable {
                        run.durable = run.last_ok;
                    }
                }
            }
            Err((e, landed)) => {
                if let (true, Some(next)) = (landed, next) {
                    run.history.push(next);
                }
                run.errors.push(what(e));
                if !go_on {
                    return run;
                }
            }
        }
    }
    if let Some(h) = handles {
        match close(h) {
            Ok(()) => {
                if pending != [0, 0] {
                    run.durable = run.last_ok;
                }
            }
            Err(e) => run.errors.push(("close".into(), e)),
        }
    }
    run
}

pub fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Insert { .. } => "insert",
        Step::Remove { .. } => "remove",
        Step::Batch { .. } => "insert_batch",
        Step::Txn { multi: true, .. } => "write_with",
        Step::Txn { .. } => "write",
        Step::Search { .. } => "search",
        Step::Checkpoint { .. } => "checkpoint",
        Step::Reopen => "reopen",
    }
}

/// A short name of an error, for the tallies: its variant, and what its text says happened
/// (the injected error, the power cut, redb's refusal after an earlier I/O error).
pub fn class(e: &Error) -> String {
    let text = e.to_string();
    let cause = if text.contains("injected EIO") {
        "injected EIO"
    } else if text.contains("injected ENOSPC") {
        "injected ENOSPC"
    } else if text.contains("power cut") {
        "power off"
    } else if text.contains("Previous I/O error") {
        "PreviousIo"
    } else {
        text.as_str()
    };
    match e {
        Error::Storage(_) => format!("Storage({cause})"),
        Error::Io(_) => format!("Io({cause})"),
        Error::Corrupt { what, location } => format!(
            "Corrupt({cause}: {}) at {location:?}",
            what.split(':').next().unwrap_or(what)
        ),
        other => format!("{other:?}"),
    }
}

/// The state of the app's documents and of both indexes (or the owned one), read at one commit
/// of `a`.
pub fn read_seen(h: &Handles) -> hnswdb::Result<Seen> {
    let read = h.a.read()?;
    let mut seen = Seen::default();
    for hit in h.a.keys()? {
        seen.a
            .insert(hit, read.get(hit)?.expect("a key without its vector"));
    }
    if h.db.is_some() {
        match read.redb().open_table(DOCS) {
            Ok(table) => {
                for row in table.iter()? {
                    let (k, v) = row?;
                    seen.docs.insert(k.value(), v.value());
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(b) = &h.b {
        let mut map = BTreeMap::new();
        for key in b.keys()? {
            map.insert(key, b.get(key)?.expect("a key without its vector"));
        }
        seen.b = Some(map);
    }
    Ok(seen)
}

/// Whether `e` says there is no index (or no database) where a creation was cut short.
pub fn is_not_there(e: &Error) -> bool {
    match e {
        Error::NotAnIndex { .. } | Error::NotFound { .. } => true,
        e => e.to_string().contains("magic number"),
    }
}

/// Reopens `image` and checks it holds one of `allowed` (its position), verifies, and keeps
/// working. `Ok(None)`: no index, which only `creation_cut` allows.
pub fn check_image(
    setup: Setup,
    image: Vec<u8>,
    allowed: &[State],
    creation_cut: bool,
) -> Result<Option<usize>, String> {
    let disk = Disk::from_image(image);
    let h = match open(setup, &disk) {
        Ok(h) => h,
        Err(e) if creation_cut && is_not_there(&e) => return Ok(None),
        Err(e) => return Err(format!("reopening failed: {e} ({})", class(&e))),
    };
    let seen = read_seen(&h).map_err(|e| format!("reading the reopened index: {e}"))?;
    let Some(position) = allowed.iter().rposition(|s| seen.matches(s)) else {
        return Err(format!(
            "the reopened index holds {}, which is no allowed state ({}): {}",
            seen.summary(),
            allowed
                .iter()
                .map(State::summary)
                .collect::<Vec<_>>()
                .join(" | "),
            if setup == Setup::Named {
                seen.docs_agree()
                    .err()
                    .unwrap_or_else(|| "documents and vectors agree".into())
            } else {
                String::new()
            }
        ));
    };
    if setup == Setup::Named {
        seen.docs_agree()?;
    }
    for index in [Some(&h.a), h.b.as_ref()].into_iter().flatten() {
        index
            .verify()
            .map_err(|e| format!("verify of the reopened index {:?}: {e}", index.name()))?;
    }
    // It keeps working: one more commit, found by a search, there after a clean reopen.
    let mut expected = allowed[position].clone();
    let extra = Step::Txn {
        ops: vec![TxnOp::Put {
            key: EXTRA_KEY,
            ver: 1,
        }],
        multi: true,
        commit: true,
    };
    let number = 1_000_000;
    execute(&extra, &h, setup, number, &expected)
        .map_err(|(e, _)| format!("a commit after the reopen: {e}"))?;
    expected = apply(&expected, &extra, setup, number).expect("it commits");
    let query = vector(EXTRA_KEY, 1, DIM_A);
    let hits =
        h.a.search(&query, 1)
            .map_err(|e| format!("a search after the reopen: {e}"))?;
    if hits.first().map(|hit| hit.key) != Some(EXTRA_KEY) {
        return Err(format!(
            "a search after the reopen did not find the key just written: {hits:?}"
        ));
    }
    close(h).map_err(|e| format!("closing after the reopen: {e}"))?;
    let again = Disk::from_image(disk.durable());
    let h = open(setup, &again).map_err(|e| format!("the reopen after the extra commit: {e}"))?;
    let seen = read_seen(&h).map_err(|e| format!("reading after the extra commit: {e}"))?;
    if !seen.matches(&expected) {
        return Err(format!(
            "after one more commit, a close and a reopen: {}, expected {}",
            seen.summary(),
            expected.summary()
        ));
    }
    for index in [Some(&h.a), h.b.as_ref()].into_iter().flatten() {
        index
            .verify()
            .map_err(|e| format!("verify after the extra commit: {e}"))?;
    }
    close(h).map_err(|e| format!("the last close: {e}"))?;
    Ok(Some(position))
}

/// A start image: the workload's indexes created with `dur`, `BASE_KEYS` keys written (and
/// their documents), closed cleanly. Its durable bytes and its state.
pub fn base_image(setup: Setup, dur: Dur) -> (Vec<u8>, State) {
    let disk = Disk::new();
    let h = create(setup, &disk, dur).expect("creating the base image");
    let mut state = State::default();
    let rows: Vec<TxnOp> = (0..BASE_KEYS)
        .map(|key| TxnOp::Put { key, ver: 0 })
        .collect();
    let step = Step::Txn {
        ops: rows,
        multi: true,
        commit: true,
    };
    execute(&step, &h, setup, 0, &state).expect("writing the base image");
    state = apply(&state, &step, setup, 0).expect("it commits");
    close(h).expect("closing the base image");
    assert_eq!(disk.pending_ops(), 0, "a clean close syncs everything");
    (disk.durable(), state)
}

/// The start images of a test, per setup and durability, made once.
pub struct Bases(BTreeMap<(u8, u8), (Vec<u8>, State)>);

impl Bases {
    pub fn new() -> Bases {
        let mut map = BTreeMap::new();
        for setup in [Setup::Owned, Setup::Named] {
            for dur in [Dur::Immediate, Dur::Eventual, Dur::Mixed] {
                if setup == Setup::Owned && dur == Dur::Mixed {
                    continue;
                }
                map.insert((setup as u8, dur as u8), base_image(setup, dur));
            }
        }
        Bases(map)
    }

    pub fn get(&self, setup: Setup, dur: Dur) -> &(Vec<u8>, State) {
        &self.0[&(setup as u8, dur as u8)]
    }
}

/// A trial's workload, before anything is injected: its durability, start image and state,
/// plan, and the disk it ran on once without a fault (its counts say how many calls it makes).
pub struct Trial {
    pub dur: Dur,
    pub from_empty: bool,
    pub start: Vec<u8>,
    pub initial: State,
    pub plan: Vec<Step>,
    pub dry: Disk,
}

/// Draws trial `trial`'s workload from `rng` (from an empty disk with `empty_percent` chance,
/// else from the base image) and runs it once without a fault, which must go through
/// (`what` names the fault in the error).
pub fn dry_run(
    rng: &mut Rng,
    bases: &Bases,
    setup: Setup,
    empty_percent: u64,
    what: &str,
) -> Result<Trial, String> {
    let dur = Dur::pick(rng, setup);
    let from_empty = rng.chance(empty_percent);
    let (start, initial) = if from_empty {
        (Vec::new(), State::default())
    } else {
        bases.get(setup, dur).clone()
    };
    let steps = 1 + rng.below(16);
    let plan = plan(rng, steps, 1);
    let dry = Disk::from_image(start.clone());
    let full = run(&dry, setup, dur, &initial, from_empty, &plan, false);
    if let Some((step, e)) = full.errors.first() {
        return Err(format!("the run without a {what} failed at {step}: {e}"));
    }
    if let Some(violation) = full.violations.first() {
        return Err(format!("the run without a {what}: {violation}"));
    }
    Ok(Trial {
        dur,
        from_empty,
        start,
        initial,
        plan,
        dry,
    })
}
