//! The fault-injecting redb backend of `tests/common/faulty.rs`, and raw redb over it: the
//! foundation for simulating power loss, torn writes and I/O errors under the index.
//!
//! - The backend's own behaviour: pending and durable bytes, each cut mode, each fault, the
//!   counters, the size limit.
//! - Power cuts: seeded random workloads of redb write transactions (two tables, a `u64 -> u64`
//!   one and a `u64 -> &[u8]` one with values of up to three pages, some transactions aborted,
//!   some with two-phase commit or quick repair), run once to count their mutating operations,
//!   then again with the power cut after a random number of them. The run must fail if the cut
//!   came before its last operation, and succeed otherwise. Each cut is taken three ways
//!   (`DropAll`, `KeepRandomSubset`, `Tear` at 512 or 4096 bytes) and reopened: redb must open
//!   it, `check_integrity` must pass, and the tables must hold exactly the state after one
//!   commit (no partial transaction: every transaction also writes a marker row with its
//!   number), no newer than the last commit started. With `Durability::Immediate` only, every
//!   commit that returned `Ok` is there; with a mix of `Immediate` and `None`, the state is no
//!   older than the last durable commit that returned `Ok`. The reopened database then takes one
//!   more commit, which must be there, with nothing else changed, after a clean close.
//! - Injected faults at a random call of a workload: EIO or ENOSPC, once or sticky, on `len`,
//!   `read`, `write`, `sync_data` or `set_len`, or a disk full past a random size. redb must
//!   return the injected error (or `PreviousIo`), not another one and not a panic. Then, with the
//!   faults lifted, both what the page cache holds (a restart) and the durable bytes alone (a
//!   power cut after the error) must reopen as above, to the last commit that returned `Ok` or
//!   the one whose commit failed (a failed `commit` may have reached the disk).
//! - In both: only when the cut or the fault stopped redb creating a database on an empty disk
//!   may the image fail to open, and then only as "not a redb database: magic number mismatch"
//!   (redb writes its magic number last).
//!
//! Every trial runs in `catch_unwind`: a panic of redb is reported with its seed and trial
//! instead of stopping the loop, and fails the test at the end. Each loop prints a tally of
//! outcomes (`--nocapture`).
//!
//! `HNSWDB_FAULT_TRIALS=<n>` sets the number of trials of each loop (default 500 power cuts with
//! `Immediate`, 400 with a mix of durabilities, 500 injected faults: a few seconds in the test
//! profile); `HNSWDB_SEED` reproduces a run and `HNSWDB_FAULT_TRIAL=<t>` runs only its trial `t`.
//!
//! Findings: none in redb 4.6.0. In release, `HNSWDB_FAULT_TRIALS=2000` with the default seeds
//! and `HNSWDB_FAULT_TRIALS=20000 HNSWDB_SEED=1` (66,000 trials, 132,000 power-cut images
//! reopened, 22,000 injected faults) found no panic, no error but the injected one, no lost
//! commit that returned `Ok` under `Immediate` and no partial transaction; every injected fault
//! reached the caller.

mod common;
#[path = "common/faulty.rs"]
mod faulty;
use common::trials::{run_trials, trial_seed};
use common::Rng;
use faulty::{CutMode, Disk, Fault, FaultKind, FaultyBackend, Op, OpCounts, MAX_FILE_LEN};

use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError,
    WriteTransaction,
};

const ROWS: TableDefinition<u64, u64> = TableDefinition::new("rows");
const BLOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("blobs");
/// The row of `ROWS` holding the number of the last committed transaction.
const MARKER: u64 = u64::MAX;
/// Keys of `ROWS` are below this: enough for a tree of a few levels.
const KEYS: u64 = 2_000;
/// Keys of `BLOBS` are below this.
const BLOB_KEYS: u64 = 24;
/// Blobs are up to this long: three pages of 4 KiB.
const MAX_BLOB: u64 = 12_000;
/// Rows and blobs of the base image every trial (but the ones from an empty disk) starts from.
const BASE_ROWS: u64 = 800;
const BASE_BLOBS: u64 = 8;

// ---------------------------------------------------------------------------------------------
// The backend alone
// ---------------------------------------------------------------------------------------------

fn write(backend: &FaultyBackend, offset: u64, data: &[u8]) -> io::Result<()> {
    redb::StorageBackend::write(backend, offset, data)
}

fn read(backend: &FaultyBackend, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut out = vec![0; len];
    redb::StorageBackend::read(backend, offset, &mut out)?;
    Ok(out)
}

fn sync(backend: &FaultyBackend) -> io::Result<()> {
    redb::StorageBackend::sync_data(backend)
}

fn set_len(backend: &FaultyBackend, len: u64) -> io::Result<()> {
    redb::StorageBackend::set_len(backend, len)
}

fn len(backend: &FaultyBackend) -> io::Result<u64> {
    redb::StorageBackend::len(backend)
}

#[test]
fn pending_writes_are_visible_but_not_durable_until_synced() {
    let backend = FaultyBackend::new();
    let disk = backend.disk();
    set_len(&backend, 16).unwrap();
    write(&backend, 4, b"abcd").unwrap();
    assert_eq!(len(&backend).unwrap(), 16);
    assert_eq!(read(&backend, 0, 10).unwrap(), b"\0\0\0\0abcd\0\0");
    assert_eq!(disk.durable(), b"");
    assert_eq!(disk.pending_ops(), 2);

    sync(&backend).unwrap();
    assert_eq!(disk.durable(), disk.visible());
    assert_eq!(disk.pending_ops(), 0);

    // A write past the end grows the file with zeros; a shrink is pending like a write.
    write(&backend, 20, b"z").unwrap();
    assert_eq!(len(&backend).unwrap(), 21);
    assert_eq!(read(&backend, 16, 5).unwrap(), b"\0\0\0\0z");
    set_len(&backend, 6).unwrap();
    assert_eq!(disk.visible(), b"\0\0\0\0ab");
    assert_eq!(disk.durable().len(), 16);
    sync(&backend).unwrap();
    assert_eq!(disk.durable(), b"\0\0\0\0ab");
}

#[test]
fn a_read_past_the_end_is_an_error() {
    let backend = FaultyBackend::from_image(vec![7; 10]);
    assert_eq!(read(&backend, 6, 4).unwrap(), [7; 4]);
    let error = read(&backend, 6, 5).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    assert!(read(&backend, u64::MAX, 1).is_err());
}

#[test]
fn drop_all_keeps_the_synced_bytes_only() {
    let backend = FaultyBackend::from_image(vec![1; 8]);
    let disk = backend.disk();
    write(&backend, 0, &[2; 4]).unwrap();
    sync(&backend).unwrap();
    write(&backend, 4, &[3; 4]).unwrap();
    set_len(&backend, 100).unwrap();
    assert_eq!(
        disk.power_cut(CutMode::DropAll, 1),
        [2, 2, 2, 2, 1, 1, 1, 1]
    );
}

#[test]
fn keep_random_subset_keeps_each_pending_write_whole_or_not_in_order() {
    // Per write: seen dropped, seen kept.
    let mut seen = [[false; 2]; 10];
    for seed in 0..64 {
        let backend = FaultyBackend::from_image(vec![0; 64]);
        let disk = backend.disk();
        for i in 0..8u8 {
            write(&backend, 8 * u64::from(i), &[i + 1; 8]).unwrap();
        }
        // Two writes that overlap on bytes 2..4: if both are kept, the newer one's bytes win
        // there. Bytes 4..6 belong to the newer one alone, so an older write applied after it
        // would show as 100 at 2..4 next to 200 at 4..6.
        write(&backend, 0, &[100; 4]).unwrap();
        write(&backend, 2, &[200; 4]).unwrap();
        let image = disk.power_cut(CutMode::KeepRandomSubset, seed);
        assert_eq!(image.len(), 64);
        // Bytes 6..8 of each 8-byte write are written by it alone.
        for i in 0..8usize {
            let tail = &image[8 * i + 6..8 * i + 8];
            let kept = tail == [i as u8 + 1; 2];
            assert!(
                kept || tail == [0; 2],
                "seed {seed}: write {i} split: {tail:?}"
            );
            seen[i][usize::from(kept)] = true;
        }
        let newer_kept = image[4..6] == [200; 2];
        assert!(
            newer_kept || image[4..6] == [0; 2] || image[4..6] == [1; 2],
            "seed {seed}: {:?}",
            &image[..8]
        );
        if newer_kept {
            assert_eq!(
                image[2..4],
                [200; 2],
                "seed {seed}: an older write landed last"
            );
        }
        let older_kept = image[..2] == [100; 2];
        assert!(
            older_kept || image[..2] == [0; 2] || image[..2] == [1; 2],
            "seed {seed}: {:?}",
            &image[..8]
        );
        seen[8][usize::from(older_kept)] = true;
        seen[9][usize::from(newer_kept)] = true;
        // The same seed, the same survivors.
        assert_eq!(image, disk.power_cut(CutMode::KeepRandomSubset, seed));
    }
    assert!(
        seen.iter().all(|s| s[0] && s[1]),
        "every write should be kept by some seed and dropped by another: {seen:?}"
    );
}

#[test]
fn tear_keeps_a_prefix_of_sectors_of_the_last_writes() {
    for granularity in [512u64, 4096] {
        let mut prefixes = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let backend = FaultyBackend::from_image(vec![0; 40_000]);
            let disk = backend.disk();
            // Early writes, then the one most likely torn: 5 sectors and a bit, misaligned.
            write(&backend, 0, &[1; 100]).unwrap();
            write(&backend, 100, &[2; 100]).unwrap();
            write(&backend, 200, &[3; 100]).unwrap();
            write(&backend, 300, &[4; 100]).unwrap();
            let offset = granularity / 2;
            let data = vec![9; 5 * granularity as usize + 7];
            write(&backend, offset, &data).unwrap();
            let image = disk.power_cut(CutMode::Tear { granularity }, seed);
            assert_eq!(image.len(), 40_000);
            // The first write is never torn (at most the last three are).
            assert_eq!(image[..100], [1; 100]);
            // The big write: new bytes up to a sector boundary (or none), old ones after.
            let range = &image[offset as usize..offset as usize + data.len()];
            let new = range.iter().take_while(|&&b| b == 9).count();
            let survived_to = offset + new as u64;
            assert!(
                new == 0 || survived_to.is_multiple_of(granularity),
                "seed {seed}, granularity {granularity}: {new} new bytes"
            );
            assert!(
                new < data.len(),
                "the last write is always torn, seed {seed}"
            );
            assert!(range[new..].iter().all(|&b| b != 9));
            // Bytes past the write are untouched.
            assert!(image[offset as usize + data.len()..]
                .iter()
                .all(|&b| b == 0));
            prefixes.insert(new);
        }
        assert!(
            prefixes.len() >= 4,
            "granularity {granularity}: prefixes {prefixes:?}"
        );
    }
}

#[test]
fn a_torn_write_past_the_end_grows_the_file_by_the_sectors_it_kept_only() {
    let mut lengths = std::collections::BTreeSet::new();
    for seed in 0..32 {
        let backend = FaultyBackend::from_image(vec![0; 512]);
        write(&backend, 512, &[1; 2048]).unwrap();
        let image = backend
            .disk()
            .power_cut(CutMode::Tear { granularity: 512 }, seed);
        // The only write is the last one: torn, 0 to 3 of its 4 sectors kept.
        assert!(
            image.len().is_multiple_of(512) && image.len() < 2560,
            "seed {seed}: {} bytes",
            image.len()
        );
        assert!(image[512..].iter().all(|&b| b == 1), "seed {seed}");
        lengths.insert(image.len());
    }
    assert_eq!(
        lengths.into_iter().collect::<Vec<_>>(),
        [512, 1024, 1536, 2048]
    );
}

#[test]
fn a_file_past_the_largest_size_is_an_error_not_an_allocation() {
    let backend = FaultyBackend::new();
    let disk = backend.disk();
    for error in [
        set_len(&backend, u64::MAX).unwrap_err(),
        set_len(&backend, MAX_FILE_LEN + 1).unwrap_err(),
        write(&backend, u64::MAX, b"a").unwrap_err(),
        write(&backend, MAX_FILE_LEN, b"a").unwrap_err(),
    ] {
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge, "{error}");
    }
    assert_eq!(disk.visible(), b"");
    assert_eq!(disk.pending_ops(), 0);
    // Not injected faults.
    assert!(disk.fired().is_empty());
}

#[test]
fn after_a_power_cut_every_operation_fails_and_the_image_stays() {
    let backend = FaultyBackend::from_image(vec![5; 16]);
    let disk = backend.disk();
    write(&backend, 0, &[6; 4]).unwrap();
    let image = disk.power_cut(CutMode::KeepRandomSubset, 3);
    assert!(disk.is_powered_off());
    let counts = disk.counts();
    for result in [
        write(&backend, 0, &[7; 16]),
        sync(&backend),
        set_len(&backend, 0),
        read(&backend, 0, 1).map(|_| ()),
        len(&backend).map(|_| ()),
    ] {
        let error = result.unwrap_err();
        assert!(error.to_string().contains("power cut"), "{error}");
    }
    assert_eq!(disk.counts(), counts, "refused calls are not counted");
    assert_eq!(disk.power_cut(CutMode::KeepRandomSubset, 3), image);
    assert_eq!(disk.power_cut(CutMode::DropAll, 3), vec![5; 16]);
    // Another backend on the same disk is refused too.
    assert!(len(&disk.backend()).is_err());
}

#[test]
fn cut_at_op_cuts_after_that_many_writes_syncs_and_set_lens() {
    let backend = FaultyBackend::new();
    let disk = backend.disk();
    disk.cut_at_op(3);
    set_len(&backend, 8).unwrap();
    write(&backend, 0, b"ab").unwrap();
    // Reads and lens do not count.
    read(&backend, 0, 2).unwrap();
    len(&backend).unwrap();
    sync(&backend).unwrap();
    assert!(!disk.is_powered_off());
    assert!(write(&backend, 2, b"cd").is_err());
    assert!(disk.is_powered_off());
    assert!(read(&backend, 0, 2).is_err());
    assert_eq!(
        disk.power_cut(CutMode::KeepRandomSubset, 1),
        b"ab\0\0\0\0\0\0"
    );

    let disk = Disk::new();
    disk.cut_at_op(0);
    assert!(set_len(&disk.backend(), 8).is_err());
    assert_eq!(disk.power_cut(CutMode::DropAll, 0), b"");
}

#[test]
fn counters_count_every_call_even_failed_ones() {
    let backend = FaultyBackend::new();
    let disk = backend.disk();
    disk.inject(Fault::once(Op::Write, 1, FaultKind::Eio));
    set_len(&backend, 4).unwrap();
    write(&backend, 0, b"a").unwrap();
    write(&backend, 1, b"b").unwrap_err();
    write(&backend, 2, b"c").unwrap();
    read(&backend, 0, 1).unwrap();
    read(&backend, 0, 1).unwrap();
    len(&backend).unwrap();
    sync(&backend).unwrap();
    let counts = disk.counts();
    assert_eq!(
        counts,
        OpCounts {
            lens: 1,
            reads: 2,
            writes: 3,
            syncs: 1,
            set_lens: 1
        }
    );
    assert_eq!(counts.mutations(), 5);
}

#[test]
fn injected_eio_fails_the_nth_call_once_or_from_then_on() {
    for op in [Op::Len, Op::Read, Op::Write, Op::SyncData, Op::SetLen] {
        for sticky in [false, true] {
            let backend = FaultyBackend::from_image(vec![0; 8]);
            let disk = backend.disk();
            let fault = if sticky {
                Fault::sticky(op, 2, FaultKind::Eio)
            } else {
                Fault::once(op, 2, FaultKind::Eio)
            };
            disk.inject(fault);
            let call = |i: u8| match op {
                Op::Len => len(&backend).map(|_| ()),
                Op::Read => read(&backend, 0, 1).map(|_| ()),
                Op::Write => write(&backend, 0, &[i]),
                Op::SyncData => sync(&backend),
                Op::SetLen => set_len(&backend, 8 + u64::from(i)),
            };
            let results: Vec<bool> = (0..5).map(|i| call(i).is_ok()).collect();
            let expected = if sticky {
                [true, true, false, false, false]
            } else {
                [true, true, false, true, true]
            };
            assert_eq!(results, expected, "{op:?}, sticky {sticky}");
            let fired = disk.fired();
            assert_eq!(fired.len(), if sticky { 3 } else { 1 });
            assert!(fired[0].starts_with("injected EIO"), "{}", fired[0]);
        }
    }
    // A failed write changes nothing; a failed sync leaves the writes pending.
    let backend = FaultyBackend::from_image(vec![0; 4]);
    let disk = backend.disk();
    disk.inject(Fault::once(Op::Write, 0, FaultKind::Eio));
    disk.inject(Fault::once(Op::SyncData, 0, FaultKind::Eio));
    let error = write(&backend, 0, b"x").unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::Other);
    assert!(error.to_string().contains("injected EIO"), "{error}");
    assert!(error.to_string().contains("write at offset 0"), "{error}");
    assert_eq!(disk.visible(), [0; 4]);
    write(&backend, 0, b"y").unwrap();
    sync(&backend).unwrap_err();
    assert_eq!(disk.durable(), [0; 4]);
    assert_eq!(disk.pending_ops(), 1);
    sync(&backend).unwrap();
    assert_eq!(disk.durable(), b"y\0\0\0");
}

#[test]
fn enospc_when_the_disk_is_full_or_as_planned() {
    let backend = FaultyBackend::from_image(vec![0; 100]);
    let disk = backend.disk();
    disk.set_capacity(Some(120));
    set_len(&backend, 120).unwrap();
    let error = set_len(&backend, 121).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    assert!(error.to_string().contains("injected ENOSPC"), "{error}");
    let error = write(&backend, 110, &[1; 11]).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    assert_eq!(disk.visible().len(), 120);
    // Overwrites and shrinks still work, and so does growing once space is freed.
    write(&backend, 110, &[1; 10]).unwrap();
    set_len(&backend, 50).unwrap();
    set_len(&backend, 120).unwrap();
    disk.clear_faults();
    set_len(&backend, 1000).unwrap();
    assert_eq!(disk.fired().len(), 2);

    // Calls are counted since the disk was made: the next write is #2.
    assert_eq!(disk.counts().writes, 2);
    disk.inject(Fault::once(Op::Write, 2, FaultKind::Enospc));
    let error = write(&backend, 0, b"a").unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    write(&backend, 0, b"a").unwrap();
}

// ---------------------------------------------------------------------------------------------
// redb over the backend
// ---------------------------------------------------------------------------------------------

/// The contents of both tables; blobs shared, so that the snapshots of a plan are cheap.
#[derive(Clone, Default, PartialEq, Eq)]
struct State {
    rows: BTreeMap<u64, u64>,
    blobs: BTreeMap<u64, Rc<[u8]>>,
}

impl State {
    fn marker(&self) -> Option<u64> {
        self.rows.get(&MARKER).copied()
    }

    fn summary(&self) -> String {
        format!(
            "marker {:?}, {} rows, {} blobs",
            self.marker(),
            self.rows.len(),
            self.blobs.len()
        )
    }
}

#[derive(Clone)]
enum Change {
    Put(u64, u64),
    Del(u64),
    PutBlob(u64, Rc<[u8]>),
    DelBlob(u64),
}

impl Change {
    fn apply(&self, state: &mut State) {
        match self {
            Change::Put(k, v) => {
                state.rows.insert(*k, *v);
            }
            Change::Del(k) => {
                state.rows.remove(k);
            }
            Change::PutBlob(k, v) => {
                state.blobs.insert(*k, v.clone());
            }
            Change::DelBlob(k) => {
                state.blobs.remove(k);
            }
        }
    }
}

/// One write transaction of a plan.
#[derive(Clone)]
struct Txn {
    changes: Vec<Change>,
    durable: bool,
    two_phase: bool,
    quick_repair: bool,
    /// Aborted (`WriteTransaction::abort`) instead of committed.
    abort: bool,
}

fn blob(rng: &mut Rng) -> Rc<[u8]> {
    let len = if rng.chance(25) {
        rng.below(64)
    } else {
        rng.below(MAX_BLOB + 1)
    };
    let fill = rng.next();
    (0..len)
        .map(|i| (fill.rotate_left((i % 64) as u32) ^ i) as u8)
        .collect()
}

/// `txns` transactions; with `mixed`, 60% of them non-durable.
fn plan(rng: &mut Rng, txns: u64, mixed: bool) -> Vec<Txn> {
    (0..txns)
        .map(|_| {
            let changes = (0..1 + rng.below(24))
                .map(|_| match rng.below(10) {
                    0..=4 => Change::Put(rng.below(KEYS), rng.next()),
                    5 | 6 => Change::Del(rng.below(KEYS)),
                    7 | 8 => Change::PutBlob(rng.below(BLOB_KEYS), blob(rng)),
                    _ => Change::DelBlob(rng.below(BLOB_KEYS)),
                })
                .collect();
            Txn {
                changes,
                durable: !mixed || rng.chance(40),
                two_phase: rng.chance(25),
                quick_repair: rng.chance(25),
                abort: rng.chance(10),
            }
        })
        .collect()
}

/// The state after each commit of `plan` from `initial`: `[initial, after commit 1, ...]`.
/// Commit `c` sets the marker to `first_marker + c`.
fn snapshots(initial: &State, plan: &[Txn], first_marker: u64) -> Vec<State> {
    let mut states = vec![initial.clone()];
    for txn in plan.iter().filter(|t| !t.abort) {
        let mut state = states.last().unwrap().clone();
        for change in &txn.changes {
            change.apply(&mut state);
        }
        state
            .rows
            .insert(MARKER, first_marker + states.len() as u64);
        states.push(state);
    }
    states
}

fn apply(
    txn: &WriteTransaction,
    changes: &[Change],
    marker: Option<u64>,
) -> Result<(), redb::Error> {
    let mut rows = txn.open_table(ROWS)?;
    let mut blobs = txn.open_table(BLOBS)?;
    for change in changes {
        match change {
            Change::Put(k, v) => {
                rows.insert(k, v)?;
            }
            Change::Del(k) => {
                rows.remove(k)?;
            }
            Change::PutBlob(k, v) => {
                blobs.insert(k, &**v)?;
            }
            Change::DelBlob(k) => {
                blobs.remove(k)?;
            }
        }
    }
    if let Some(marker) = marker {
        rows.insert(MARKER, marker)?;
    }
    Ok(())
}

fn read_state(db: &Database) -> Result<State, redb::Error> {
    let txn = db.begin_read()?;
    let mut state = State::default();
    match txn.open_table(ROWS) {
        Ok(table) => {
            for entry in table.iter()? {
                let (k, v) = entry?;
                state.rows.insert(k.value(), v.value());
            }
        }
        Err(TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    match txn.open_table(BLOBS) {
        Ok(table) => {
            for entry in table.iter()? {
                let (k, v) = entry?;
                state.blobs.insert(k.value(), v.value().into());
            }
        }
        Err(TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(state)
}

fn open(disk: &Disk) -> Result<Database, redb::Error> {
    Ok(Database::builder().create_with_backend(disk.backend())?)
}

/// What a run of a plan did before it stopped (at its end or at its first error).
#[derive(Default)]
struct Run {
    /// `create_with_backend` returned `Ok`.
    opened: bool,
    /// The number of the last commit that returned `Ok` (0: none).
    last_ok: u64,
    /// The number of the last durable commit that returned `Ok` (0: none).
    last_durable_ok: u64,
    /// The number of the last commit started (`commit` called).
    last_started: u64,
    /// The first error, and where it came.
    error: Option<(String, redb::Error)>,
}

/// Runs `plan` on `disk` until its end or its first error; closes the database with
/// `Database::close` (errors reported) if the plan ran to its end, drops it otherwise.
fn run(disk: &Disk, plan: &[Txn]) -> Run {
    let mut run = Run::default();
    let db = match open(disk) {
        Ok(db) => db,
        Err(e) => {
            run.error = Some(("open".into(), e));
            return run;
        }
    };
    run.opened = true;
    let mut number = 0;
    for (i, txn) in plan.iter().enumerate() {
        if !txn.abort {
            number += 1;
        }
        let step = |what: &str| format!("{what} of transaction {i} (commit {number})");
        let mut write = match db.begin_write() {
            Ok(w) => w,
            Err(e) => {
                run.error = Some((step("begin_write"), e.into()));
                return run;
            }
        };
        let durability = if txn.durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        if let Err(e) = write.set_durability(durability) {
            run.error = Some((step("set_durability"), e.into()));
            return run;
        }
        write.set_two_phase_commit(txn.two_phase);
        write.set_quick_repair(txn.quick_repair);
        let marker = (!txn.abort).then_some(number);
        if let Err(e) = apply(&write, &txn.changes, marker) {
            run.error = Some((step("a change"), e));
            return run;
        }
        if txn.abort {
            if let Err(e) = write.abort() {
                run.error = Some((step("abort"), e.into()));
                return run;
            }
            continue;
        }
        run.last_started = number;
        match write.commit() {
            Ok(()) => {
                run.last_ok = number;
                if txn.durable {
                    run.last_durable_ok = number;
                }
            }
            Err(e) => {
                run.error = Some((step("commit"), e.into()));
                return run;
            }
        }
    }
    if let Err(e) = db.close() {
        run.error = Some(("close".into(), e.into()));
    }
    run
}

/// A short name of what redb returned, for the tallies of the report.
fn class(e: &redb::Error) -> String {
    match e {
        redb::Error::Io(io) if io.to_string().contains("injected") => {
            format!("Io(injected, {:?})", io.kind())
        }
        redb::Error::Io(io) if io.to_string().contains("power cut") => "Io(power off)".into(),
        redb::Error::Io(io) => format!("Io({:?}: {io})", io.kind()),
        redb::Error::PreviousIo => "PreviousIo".into(),
        redb::Error::TransactionPoisoned => "TransactionPoisoned".into(),
        other => format!("{other:?}"),
    }
}

/// A created database holding `BASE_ROWS` rows and `BASE_BLOBS` blobs (marker 0), closed
/// cleanly: its durable bytes and its state.
fn base_image(seed: u64) -> (Vec<u8>, State) {
    let mut rng = Rng(seed);
    let mut changes: Vec<Change> = (0..BASE_ROWS)
        .map(|_| Change::Put(rng.below(KEYS), rng.next()))
        .collect();
    for k in 0..BASE_BLOBS {
        changes.push(Change::PutBlob(k, blob(&mut rng)));
    }
    let disk = Disk::new();
    let db = open(&disk).unwrap();
    let txn = db.begin_write().unwrap();
    apply(&txn, &changes, Some(0)).unwrap();
    txn.commit().unwrap();
    db.close().unwrap();
    assert_eq!(disk.pending_ops(), 0, "a clean close syncs everything");
    let mut state = State::default();
    for change in &changes {
        change.apply(&mut state);
    }
    state.rows.insert(MARKER, 0);
    (disk.durable(), state)
}

/// Whether `e` is redb refusing a file that does not start with its magic number.
fn is_not_a_database(e: &redb::Error) -> bool {
    matches!(e, redb::Error::Io(io) if io.kind() == io::ErrorKind::InvalidData
        && io.to_string().contains("magic number mismatch"))
}

/// Opens `disk` (with `create_with_backend`), checks its integrity, and returns the commit of
/// `states` (in `lo..=hi`) it holds; then commits once more and checks that the commit, and
/// nothing else, is there after a clean close and reopen.
///
/// `Ok(None)` if redb refuses the image for want of its magic number and `creation_cut` (the
/// run started from an empty disk and `create_with_backend` did not return): redb writes the
/// magic number last, once the rest of the new file is durable, so a cut creation may leave
/// zeros. Any other failure to open is an error.
fn check_disk(
    disk: &Disk,
    states: &[State],
    lo: u64,
    hi: u64,
    creation_cut: bool,
) -> Result<Option<u64>, String> {
    let mut db = match open(disk) {
        Ok(db) => db,
        Err(e) if creation_cut && is_not_a_database(&e) => return Ok(None),
        Err(e) => return Err(format!("reopening failed: {e} ({})", class(&e))),
    };
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => return Err("check_integrity had to repair the reopened database".into()),
        Err(e) => return Err(format!("check_integrity failed: {e}")),
    }
    let state = read_state(&db).map_err(|e| format!("reading the reopened database: {e}"))?;
    let found = (lo..=hi).find(|&c| states[c as usize] == state);
    let Some(commit) = found else {
        let other = (0..states.len()).find(|&c| states[c] == state);
        return Err(format!(
            "the reopened database holds {} which is {} (allowed: commits {lo}..={hi})",
            state.summary(),
            match other {
                Some(c) => format!("the state after commit {c}"),
                None => "no committed state: a partial transaction".into(),
            }
        ));
    };
    // It keeps working: one more (durable) commit, a clean close, and the commit is there.
    let extra = [Change::Put(KEYS, 7)];
    let extra_marker = 1_000_000;
    let txn = db
        .begin_write()
        .map_err(|e| format!("begin_write after reopen: {e}"))?;
    apply(&txn, &extra, Some(extra_marker)).map_err(|e| format!("writing after reopen: {e}"))?;
    txn.commit()
        .map_err(|e| format!("commit after reopen: {e}"))?;
    db.close().map_err(|e| format!("close after reopen: {e}"))?;
    let mut expected = state;
    for change in &extra {
        change.apply(&mut expected);
    }
    expected.rows.insert(MARKER, extra_marker);
    let db = open(&Disk::from_image(disk.durable()))
        .map_err(|e| format!("reopening after the extra commit: {e}"))?;
    let after = read_state(&db).map_err(|e| format!("reading after the extra commit: {e}"))?;
    if after != expected {
        return Err(format!(
            "after the commit that followed the reopen, a clean close and a reopen: {}, \
             expected {}",
            after.summary(),
            expected.summary()
        ));
    }
    Ok(Some(commit))
}

#[test]
fn redb_reopens_the_image_it_wrote() {
    let (image, state) = base_image(1);
    let disk = Disk::from_image(image.clone());
    let mut db = open(&disk).unwrap();
    assert!(db.check_integrity().unwrap());
    assert!(read_state(&db).unwrap() == state);
    drop(db);
    // What the reopen and the close (by drop) left durable holds the same tables.
    let db = open(&Disk::from_image(disk.durable())).unwrap();
    assert!(read_state(&db).unwrap() == state);
    // Not a database: refused, not initialised over.
    let error = open(&Disk::from_image(vec![0; 8192])).unwrap_err();
    assert!(error.to_string().contains("magic number"), "{error}");
}

#[test]
fn redb_over_the_backend_is_deterministic() {
    let (image, _) = base_image(2);
    let mut rng = Rng(3);
    let plan = plan(&mut rng, 8, true);
    let disks = [Disk::from_image(image.clone()), Disk::from_image(image)];
    for disk in &disks {
        let run = run(disk, &plan);
        assert!(run.error.is_none());
    }
    assert_eq!(disks[0].counts(), disks[1].counts());
    assert!(disks[0].durable() == disks[1].durable());
}

/// One power-cut trial: a plan run to its end on a copy of the start image counts the mutating
/// operations; a second run is cut at a random one; each way the cut can land is reopened.
fn cut_trial(
    base: &(Vec<u8>, State),
    seed: u64,
    trial: u64,
    mixed: bool,
) -> Result<String, String> {
    let mut rng = Rng(trial_seed(seed, trial));
    let from_empty = rng.chance(15);
    let (start, initial) = if from_empty {
        (Vec::new(), State::default())
    } else {
        base.clone()
    };
    let txns = 1 + rng.below(10);
    let plan = plan(&mut rng, txns, mixed);
    let states = snapshots(&initial, &plan, 0);

    let dry = Disk::from_image(start.clone());
    let full = run(&dry, &plan);
    if let Some((step, e)) = full.error {
        return Err(format!("the run without a cut failed at {step}: {e}"));
    }
    let total = dry.counts().mutations();
    let cut = rng.below(total + 1);

    let disk = Disk::from_image(start);
    disk.cut_at_op(cut);
    let cut_run = run(&disk, &plan);
    match (&cut_run.error, cut < total) {
        (None, true) => {
            return Err(format!(
                "cut after {cut} of {total} mutations, yet the run reported no error"
            ))
        }
        // The same plan on the same bytes makes the same calls: a cut after the last one
        // changes nothing.
        (Some((step, e)), false) => {
            return Err(format!(
                "cut after all {total} mutations, yet the run failed at {step}: {e}"
            ))
        }
        _ => {}
    }
    let creation_cut = from_empty && !cut_run.opened;
    let lo = if mixed {
        cut_run.last_durable_ok
    } else {
        cut_run.last_ok
    };
    let hi = cut_run.last_started;
    let granularity = if rng.chance(50) { 512 } else { 4096 };
    let mut found = Vec::new();
    for mode in [
        CutMode::DropAll,
        CutMode::KeepRandomSubset,
        CutMode::Tear { granularity },
    ] {
        let image = disk.power_cut(mode, rng.next());
        let commit =
            check_disk(&Disk::from_image(image), &states, lo, hi, creation_cut).map_err(|e| {
                format!(
                    "{mode:?}, cut after {cut} of {total} mutations, from {}, commits Ok \
                     {}, durable Ok {}, started {}: {e}",
                    if from_empty { "empty" } else { "the base" },
                    cut_run.last_ok,
                    cut_run.last_durable_ok,
                    cut_run.last_started,
                )
            })?;
        found.push(match commit {
            None => "not a database".to_string(),
            Some(c) if c == lo => "=lo".into(),
            Some(c) => format!("lo+{}", c - lo),
        });
    }
    Ok(format!(
        "{}{}, DropAll {}, subset {}, tear {}",
        if from_empty { "from empty, " } else { "" },
        if cut_run.opened {
            "cut after open"
        } else {
            "open cut"
        },
        found[0],
        found[1],
        found[2]
    ))
}

#[test]
fn power_cuts_keep_every_durable_commit() {
    let base = base_image(11);
    run_trials("power cuts, Immediate", 500, 0xC0FFEE, |seed, trial| {
        cut_trial(&base, seed, trial, false).map(|outcome| vec![outcome])
    });
}

#[test]
fn power_cuts_with_non_durable_commits_keep_a_state_no_older_than_the_last_durable_one() {
    let base = base_image(12);
    run_trials(
        "power cuts, Immediate and None",
        400,
        0xBEEF,
        |seed, trial| cut_trial(&base, seed, trial, true).map(|outcome| vec![outcome]),
    );
}

/// One injected-fault trial: a dry run counts the calls of each kind; a second run gets an EIO
/// (once or sticky) on a random call of a random kind, or ENOSPC past a random size.
fn fault_trial(base: &(Vec<u8>, State), seed: u64, trial: u64) -> Result<String, String> {
    let mut rng = Rng(trial_seed(seed, trial));
    let from_empty = rng.chance(10);
    let (start, initial) = if from_empty {
        (Vec::new(), State::default())
    } else {
        base.clone()
    };
    let txns = 1 + rng.below(10);
    let plan = plan(&mut rng, txns, false);
    let states = snapshots(&initial, &plan, 0);

    let dry = Disk::from_image(start.clone());
    let full = run(&dry, &plan);
    if let Some((step, e)) = full.error {
        return Err(format!("the run without a fault failed at {step}: {e}"));
    }
    let counts = dry.counts();
    let grown = dry.visible().len() as u64;

    let disk = Disk::from_image(start.clone());
    let sticky = rng.chance(50);
    let full_disk = rng.chance(25) && grown > start.len() as u64;
    // A short name of the fault for the tally, and the details for a failure.
    let (label, planned) = if full_disk {
        let capacity = start.len() as u64 + rng.below(grown - start.len() as u64);
        disk.set_capacity(Some(capacity));
        ("full disk".to_string(), format!("capacity {capacity}"))
    } else {
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
        let kind = if matches!(op, Op::Write | Op::SetLen) && rng.chance(30) {
            FaultKind::Enospc
        } else {
            FaultKind::Eio
        };
        let nth = rng.below(n);
        disk.inject(if sticky {
            Fault::sticky(op, nth, kind)
        } else {
            Fault::once(op, nth, kind)
        });
        (
            format!("{kind:?} {op:?} {}", if sticky { "sticky" } else { "once" }),
            format!("{kind:?} on {op:?} #{nth} of {n}, sticky {sticky}"),
        )
    };
    let faulted = run(&disk, &plan);
    let fired = disk.fired();
    let what = |e: String| {
        format!(
            "{planned}, from {}, fired {:?}, redb returned {:?}, commits Ok {}, started {}: {e}",
            if from_empty { "empty" } else { "the base" },
            fired.first(),
            faulted
                .error
                .as_ref()
                .map(|(step, e)| format!("{} at {step}", class(e))),
            faulted.last_ok,
            faulted.last_started,
        )
    };
    let returned = match (&faulted.error, fired.is_empty()) {
        (None, true) => return Err(what("the planned fault never fired".into())),
        // Not a failure (redb ignores the failure of a write only an optimisation needs), but
        // the tally shows it.
        (None, false) => "redb swallowed the error".to_string(),
        (Some((step, e)), _) => {
            let class = class(e);
            if !(class.starts_with("Io(injected") || class == "PreviousIo") {
                return Err(what(format!("redb reported the I/O error as {e:?}")));
            }
            format!("{class} at {}", step.split(" of ").next().unwrap_or(step))
        }
    };
    // A commit that failed may have reached the disk: the state is that before it or after it.
    let lo = faulted.last_ok;
    let hi = faulted.last_started;
    let creation_cut = from_empty && !faulted.opened;
    let durable = Disk::from_image(disk.durable());
    // Reopening with the fault still there (a sticky one, or the full disk): an Err or a
    // database, never a panic.
    let reopened = if sticky || full_disk {
        match open(&disk) {
            Ok(db) => {
                drop(db);
                "; faulty reopen Ok"
            }
            Err(_) => "; faulty reopen Err",
        }
    } else {
        ""
    };
    disk.clear_faults();
    check_disk(&disk, &states, lo, hi, creation_cut)
        .map_err(|e| what(format!("after the faults were lifted: {e}")))?;
    check_disk(&durable, &states, lo, hi, creation_cut).map_err(|e| {
        what(format!(
            "the durable bytes (a power cut after the fault): {e}"
        ))
    })?;
    let from = if from_empty { "from empty, " } else { "" };
    Ok(format!("{from}{label} -> {returned}{reopened}"))
}

#[test]
fn injected_eio_and_enospc_return_errors_and_keep_the_last_commit() {
    let base = base_image(13);
    run_trials("injected faults", 500, 0xFA17, |seed, trial| {
        fault_trial(&base, seed, trial).map(|outcome| vec![outcome])
    });
}
