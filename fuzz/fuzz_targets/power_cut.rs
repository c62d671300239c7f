//! Power cuts anywhere: operation sequences on an index over the simulated disk of
//! `tests/common/faulty.rs`, with the power cut after the input's number of mutating calls
//! (writes, syncs, `set_len`s), the surviving bytes taken as the input says (only the synced
//! ones, a random subset of the rest, or the last writes torn at 512 or 4096 bytes), and the
//! index reopened from them.
//!
//! The index is an owned one (the `test-hooks` constructor over the backend, what a file index
//! writes) or a named one in an app database, whose transactions also write the app's row for
//! each key (`WriteTxn::redb`). Every commit is `Durability::Immediate` or every one `Eventual`.
//!
//! A crash is any panic, or a reopened image that does not hold exactly the state after one
//! commit: with `Immediate` the last one that returned `Ok` or the one in flight; with
//! `Eventual` one no older than the last checkpoint that returned `Ok`. The app's rows must be
//! the index's keys, `verify` clean, and the index must take one more commit. Before the cut,
//! every call must succeed; after it, every call must fail without a panic. A cut before the
//! index was created may leave no index at all.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use arbitrary::Arbitrary;
use hnswdb::redb::{self, ReadableTable, TableDefinition};
use hnswdb::{Durability, Error, Index, Metric, Options};
use libfuzzer_sys::fuzz_target;

mod common;
#[path = "../../tests/common/faulty.rs"]
#[allow(dead_code)]
mod faulty;
use faulty::{CutMode, Disk};

/// The app's rows beside a named index: key → the version of its vector.
const ROWS: TableDefinition<u64, u64> = TableDefinition::new("rows");
const NAME: &str = "fuzz";
const DIM: usize = 3;

#[derive(Arbitrary, Debug)]
struct Input {
    named: bool,
    eventual: bool,
    cut_after: u16,
    mode: u8,
    seed: u64,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Insert(u8),
    Remove(u8),
    Batch(Vec<u8>),
    Txn(Vec<(u8, bool)>, bool),
    Checkpoint,
}

/// Keys and the version of each one's vector: the vector is a function of both.
type State = BTreeMap<u64, u64>;

fn vector(key: u64, version: u64) -> [f32; DIM] {
    [key as f32, version as f32 * 0.5, 1.0]
}

/// The version a vector of [`vector`] was written with.
fn version_of(v: &[f32]) -> u64 {
    (v[1] * 2.0) as u64
}

fn mode(byte: u8) -> CutMode {
    match byte % 4 {
        0 => CutMode::DropAll,
        1 => CutMode::KeepRandomSubset,
        2 => CutMode::Tear { granularity: 512 },
        _ => CutMode::Tear { granularity: 4096 },
    }
}

fn options(eventual: bool) -> Options {
    let durability = if eventual {
        Durability::Eventual
    } else {
        Durability::Immediate
    };
    Options::new(DIM)
        .metric(Metric::L2)
        .m(4)
        .ef_construction(16)
        .durability(durability)
}

/// The index over `disk`, created (`options`) or opened.
fn index_over(disk: &Disk, named: bool, options: Option<Options>) -> hnswdb::Result<Index> {
    match (named, options) {
        (false, Some(options)) => Index::create_with_backend(disk.backend(), options),
        (false, None) => Index::open_with_backend(disk.backend()),
        (true, options) => {
            let db = redb::Builder::new()
                .create_with_backend(disk.backend())
                .map_err(redb::Error::from)?;
            match options {
                Some(options) => Index::create_in(Arc::new(db), NAME, options),
                None => Index::open_in(Arc::new(db), NAME),
            }
        }
    }
}

/// Runs `op` (number `number`) on `index` as one commit; the state it commits.
fn run(index: &Index, named: bool, state: &State, op: &Op, number: u64) -> hnswdb::Result<State> {
    let mut next = state.clone();
    let mut tx = index.write()?;
    let mut put = |tx: &mut hnswdb::WriteTxn<'_>, key: u64, present: bool| -> hnswdb::Result<()> {
        if present {
            tx.insert(key, &vector(key, number))?;
            if named {
                tx.redb().open_table(ROWS)?.insert(key, number)?;
            }
            next.insert(key, number);
        } else {
            tx.remove(key)?;
            if named {
                tx.redb().open_table(ROWS)?.remove(key)?;
            }
            next.remove(&key);
        }
        Ok(())
    };
    let commit = match op {
        Op::Insert(k) => {
            put(&mut tx, u64::from(k % 32), true)?;
            true
        }
        Op::Remove(k) => {
            put(&mut tx, u64::from(k % 32), false)?;
            true
        }
        Op::Batch(keys) => {
            for k in keys.iter().take(40) {
                put(&mut tx, u64::from(k % 64), true)?;
            }
            true
        }
        Op::Txn(ops, commit) => {
            for (k, present) in ops.iter().take(8) {
                put(&mut tx, u64::from(k % 32), *present)?;
            }
            *commit
        }
        Op::Checkpoint => unreachable!("a checkpoint is no transaction"),
    };
    if commit {
        tx.commit()?;
        Ok(next)
    } else {
        Ok(state.clone())
    }
}

/// The index's keys and versions (recovered from the vectors), after checking the app's rows.
fn read_state(index: &Index, named: bool) -> State {
    let read = index.read().unwrap();
    let mut state = State::new();
    for key in index.keys().unwrap() {
        let v = read.get(key).unwrap().expect("a listed key has a vector");
        assert_eq!(
            v,
            vector(key, version_of(&v)),
            "the vector of {key} was never written"
        );
        state.insert(key, version_of(&v));
    }
    if named {
        let rows: State = match read.redb().open_table(ROWS) {
            Ok(table) => table
                .iter()
                .unwrap()
                .map(|row| {
                    let (k, v) = row.unwrap();
                    (k.value(), v.value())
                })
                .collect(),
            Err(redb::TableError::TableDoesNotExist(_)) => State::new(),
            Err(e) => panic!("the app's rows: {e}"),
        };
        assert_eq!(
            rows.keys().collect::<Vec<_>>(),
            state.keys().collect::<Vec<_>>(),
            "the app's rows and the index's keys differ"
        );
        for (key, version) in &rows {
            assert_eq!(
                read.get(*key).unwrap().unwrap(),
                vector(*key, *version),
                "the vector of {key} is not the one written with its row"
            );
        }
        return rows;
    }
    state
}

fn fuzz(input: Input) {
    let disk = Disk::new();
    disk.cut_at_op(u64::from(input.cut_after));
    // States after each commit that returned `Ok`, the first one the empty index.
    let mut committed: Vec<State> = Vec::new();
    // Positions in `committed` a reopen may show, from `lowest` on.
    let mut lowest = 0;
    let mut in_flight: Option<State> = None;
    let mut created = false;
    if let Ok(index) = index_over(&disk, input.named, Some(options(input.eventual))) {
        created = true;
        committed.push(State::new());
        for (number, op) in input.ops.iter().take(24).enumerate() {
            let state = committed.last().unwrap().clone();
            if let Op::Checkpoint = op {
                match index.checkpoint() {
                    Ok(()) => lowest = committed.len() - 1,
                    Err(_) => break,
                }
                continue;
            }
            // What this op would commit, to allow it as the one in flight.
            let mut model = state.clone();
            let mut would = |key: u64, present: bool| {
                if present {
                    model.insert(key, number as u64);
                } else {
                    model.remove(&key);
                }
            };
            match op {
                Op::Insert(k) => would(u64::from(k % 32), true),
                Op::Remove(k) => would(u64::from(k % 32), false),
                Op::Batch(keys) => keys
                    .iter()
                    .take(40)
                    .for_each(|k| would(u64::from(k % 64), true)),
                Op::Txn(ops, true) => ops
                    .iter()
                    .take(8)
                    .for_each(|(k, p)| would(u64::from(k % 32), *p)),
                Op::Txn(_, false) | Op::Checkpoint => {}
            }
            match run(&index, input.named, &state, op, number as u64) {
                Ok(next) => {
                    assert!(next == model, "the model of op {number} is wrong");
                    committed.push(next);
                    if !input.eventual {
                        lowest = committed.len() - 1;
                    }
                }
                Err(e) => {
                    assert!(
                        disk.is_powered_off(),
                        "op {number} failed with the power on: {e}"
                    );
                    in_flight = Some(model);
                    break;
                }
            }
        }
        if disk.is_powered_off() {
            // Every call fails now, and none panics.
            assert!(index.insert(1000, &[1.0, 2.0, 3.0]).is_err());
            let _ = index.search(&[1.0, 2.0, 3.0], 3);
        }
        drop(index);
    } else {
        assert!(
            disk.is_powered_off(),
            "the creation failed with the power on"
        );
    }

    let image = disk.power_cut(mode(input.mode), input.seed);
    let reopened = Disk::from_image(image);
    let index = match index_over(&reopened, input.named, None) {
        Ok(index) => index,
        Err(Error::NotAnIndex { .. } | Error::NotFound { .. }) if !created => return,
        Err(e) if !created && e.to_string().contains("magic number") => return,
        Err(e) => panic!("reopening after the cut: {e}"),
    };
    index.verify().unwrap();
    let found = read_state(&index, input.named);
    let allowed = &committed[lowest.min(committed.len().saturating_sub(1))..];
    assert!(
        allowed.iter().any(|s| *s == found) || in_flight.as_ref() == Some(&found),
        "the image holds no allowed state: {found:?}; allowed {allowed:?} or {in_flight:?}"
    );
    // It keeps working.
    let mut tx = index.write().unwrap();
    tx.insert(5000, &vector(5000, 1)).unwrap();
    if input.named {
        tx.redb().open_table(ROWS).unwrap().insert(5000, 1).unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(index.search(&vector(5000, 1), 1).unwrap()[0].key, 5000);
    index.verify().unwrap();
}

fuzz_target!(|input: Input| fuzz(input));
