//! A redb [`StorageBackend`] that simulates a disk with a page cache, for tests of power loss,
//! torn writes and I/O errors. Test-only: not part of the crate's API.
//!
//! A test crate includes it next to `common`, at its root: `mod common;` and
//! `#[path = "common/faulty.rs"] mod faulty;`. Not from `common/mod.rs`, which the CLI crate's
//! tests include too, without a dependency on redb.
//!
//! The model. A [`Disk`] holds two images of the file:
//!
//! - the *durable* bytes, as of the last completed `sync_data`: what survives a power cut for
//!   sure;
//! - the *pending* operations since then, in order: the writes (offset, bytes) and `set_len`s
//!   that reached the OS page cache but not necessarily the platter.
//!
//! `len` and `read` see the durable bytes with the pending operations applied (what the page
//! cache shows). `sync_data` applies the pending operations to the durable bytes.
//! [`Disk::power_cut`] turns the power off and returns the bytes that survived, by a
//! [`CutMode`]: only the durable ones, a random subset of the pending operations, or all of
//! them with the last few writes torn at sector granularity. After a cut every operation fails, so nothing
//! an old [`redb::Database`] writes afterwards can leak into the image; reopen the image with
//! [`Disk::from_image`] or [`FaultyBackend::from_image`].
//!
//! Faults. A [`Fault`] fails one call (or every call from then on) of an [`Op`] kind, counted from
//! 0 since the disk was made, with EIO or ENOSPC; [`Disk::set_capacity`] makes the disk full past
//! a size (ENOSPC on the `write` or `set_len` that would grow the file past it);
//! [`Disk::cut_at_op`] cuts the power once a number of mutating operations (writes, `set_len`s,
//! syncs) have been done. A failed operation has no effect on the bytes, and a failed
//! `sync_data` leaves the pending operations pending (a later cut can still lose them). The
//! backend does not model a kernel that drops dirty pages after a failed fsync and reports the
//! next fsync as a success: redb 4.6 does not get that far (`PagedCachedFile` marks the handle
//! failed at its first failed call of any kind, and every later operation returns
//! `PreviousIo`).
//!
//! Limits. A file is at most [`MAX_FILE_LEN`] bytes: a `write` or `set_len` past it fails with
//! an error of kind `FileTooLarge` (as EFBIG would), instead of allocating the memory.
//!
//! Everything random (which pending writes a cut keeps, how a write tears) comes from the seed
//! given to [`Disk::power_cut`], through the tests' SplitMix64 [`Rng`], so a run reproduces from
//! its seed.
//!
//! Opening an image: `redb::Builder::create_with_backend` opens an existing database when the
//! backend is not empty. In redb 4.6 it calls `Database::new` with `allow_initialize = true`,
//! and `TransactionalMemory::new` (`tree_store/page_store/page_manager.rs`) writes a fresh
//! header only when the magic number is absent: an empty backend is initialised, a non-empty one
//! must start with redb's magic number ("Not a redb database: magic number mismatch" otherwise)
//! and is opened, with recovery if its last commit was not clean.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hnswdb::redb::StorageBackend;

use crate::common::Rng;

/// EIO, as `errno` numbers it on Linux (for messages only).
pub const EIO: i32 = 5;
/// ENOSPC, as `errno` numbers it on Linux (for messages only).
pub const ENOSPC: i32 = 28;
/// The largest file the disk holds (1 GiB), far above what the tests write.
pub const MAX_FILE_LEN: u64 = 1 << 30;

/// What survives a power cut of the pending (written but not synced) operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// Only the durable bytes: every pending operation is lost.
    DropAll,
    /// Each pending operation (write or `set_len`) is kept or lost at random, independently of
    /// the others: the page cache writes back in any order. The kept ones are applied in the
    /// order they were made, because a later write to the same bytes reaches the disk after an
    /// earlier one (the page cache holds only the newest contents).
    KeepRandomSubset,
    /// Every pending operation reaches the disk in order, except that the last few writes (1 to
    /// 3) are torn: only a random prefix of their sectors, `granularity` bytes each (aligned in
    /// the file, e.g. 512 or 4096), is written, possibly none; the rest of the range keeps what
    /// it held before. Bytes outside a write's range never change ("powersafe overwrite", which
    /// redb assumes), and a sector is written whole or not at all.
    Tear {
        /// The sector size: the unit a disk writes atomically.
        granularity: u64,
    },
}

/// A kind of backend operation, which a [`Fault`] can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `StorageBackend::len`.
    Len,
    /// `StorageBackend::read`.
    Read,
    /// `StorageBackend::write`.
    Write,
    /// `StorageBackend::sync_data`.
    SyncData,
    /// `StorageBackend::set_len`.
    SetLen,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Len => "len",
            Op::Read => "read",
            Op::Write => "write",
            Op::SyncData => "sync_data",
            Op::SetLen => "set_len",
        }
    }

    /// Whether the operation may change the disk (and counts towards [`Disk::cut_at_op`]).
    pub fn mutates(self) -> bool {
        matches!(self, Op::Write | Op::SyncData | Op::SetLen)
    }
}

/// The error a [`Fault`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// An I/O error (EIO): an `io::Error` of kind `Other` whose message starts "injected EIO".
    Eio,
    /// No space left on the device (ENOSPC): an `io::Error` of kind `StorageFull` whose message
    /// starts "injected ENOSPC".
    Enospc,
}

/// A planned failure: the call of kind `op` whose index (counting from 0, every call of that
/// kind since the disk was made, failed ones included) is `nth` fails with `kind`; with
/// `sticky`, every later call of that kind fails too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The kind of call that fails.
    pub op: Op,
    /// The index of the first failing call among the calls of kind `op`.
    pub nth: u64,
    /// The error returned.
    pub kind: FaultKind,
    /// Whether every later call of kind `op` fails as well.
    pub sticky: bool,
}

impl Fault {
    /// Fails the `nth` call of kind `op` only.
    pub fn once(op: Op, nth: u64, kind: FaultKind) -> Fault {
        Fault {
            op,
            nth,
            kind,
            sticky: false,
        }
    }

    /// Fails the `nth` call of kind `op` and every later one.
    pub fn sticky(op: Op, nth: u64, kind: FaultKind) -> Fault {
        Fault {
            op,
            nth,
            kind,
            sticky: true,
        }
    }
}

/// How many calls of each kind the disk received while powered (failed ones included; calls
/// refused because the power is off are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Calls of `len`.
    pub lens: u64,
    /// Calls of `read`.
    pub reads: u64,
    /// Calls of `write`.
    pub writes: u64,
    /// Calls of `sync_data`.
    pub syncs: u64,
    /// Calls of `set_len`.
    pub set_lens: u64,
}

impl OpCounts {
    /// The operations that may change the disk: writes, syncs and `set_len`s. The unit of
    /// [`Disk::cut_at_op`].
    pub fn mutations(&self) -> u64 {
        self.writes + self.syncs + self.set_lens
    }

    fn of(&mut self, op: Op) -> &mut u64 {
        match op {
            Op::Len => &mut self.lens,
            Op::Read => &mut self.reads,
            Op::Write => &mut self.writes,
            Op::SyncData => &mut self.syncs,
            Op::SetLen => &mut self.set_lens,
        }
    }
}

/// An operation in the page cache, not yet durable.
#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Pending {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            Pending::Write { offset, data } => write_at(bytes, *offset, data),
            Pending::SetLen(len) => bytes.resize(usize::try_from(*len).unwrap(), 0),
        }
    }
}

/// Writes `data` at `offset`, growing `bytes` with zeros if it ends past them (as a write past
/// the end of a file does).
fn write_at(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = usize::try_from(offset).unwrap();
    let end = start + data.len();
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[start..end].copy_from_slice(data);
}

struct State {
    /// The bytes as of the last completed `sync_data`.
    durable: Vec<u8>,
    /// `durable` with `pending` applied: what `len` and `read` see.
    visible: Vec<u8>,
    /// The operations since the last completed `sync_data`, in order.
    pending: Vec<Pending>,
    counts: OpCounts,
    faults: Vec<Fault>,
    /// The size past which writes and `set_len`s fail with ENOSPC.
    capacity: Option<u64>,
    /// Cut the power once this many mutating operations have been done.
    cut_at: Option<u64>,
    powered_off: bool,
    /// The messages of the faults that fired, in order.
    fired: Vec<String>,
}

impl State {
    fn new(image: Vec<u8>) -> State {
        State {
            visible: image.clone(),
            durable: image,
            pending: Vec::new(),
            counts: OpCounts::default(),
            faults: Vec::new(),
            capacity: None,
            cut_at: None,
            powered_off: false,
            fired: Vec::new(),
        }
    }

    /// The gate every operation passes: refuses it if the power is off (cutting it first if
    /// this is the mutating operation after the planned cut), counts it, and fires a planned
    /// fault.
    fn enter(&mut self, op: Op, offset: Option<u64>) -> io::Result<()> {
        if op.mutates() && self.cut_at.is_some_and(|n| self.counts.mutations() >= n) {
            self.powered_off = true;
        }
        if self.powered_off {
            return Err(io::Error::other(format!(
                "simulated power cut: the disk is off, {}{} refused",
                op.name(),
                at(offset)
            )));
        }
        let index = *self.counts.of(op);
        *self.counts.of(op) += 1;
        let fault = self
            .faults
            .iter()
            .find(|f| f.op == op && (index == f.nth || (f.sticky && index > f.nth)));
        if let Some(fault) = fault {
            let error = injected(
                fault.kind,
                format!("{}{} (#{index})", op.name(), at(offset)),
            );
            self.fired.push(error.to_string());
            return Err(error);
        }
        Ok(())
    }

    /// Whether the disk can hold the file after a `write` or `set_len` that ends at `end`
    /// (`None`: past `u64::MAX`): an error of kind `FileTooLarge` past [`MAX_FILE_LEN`], ENOSPC
    /// if the file grows past the capacity.
    fn check_space(&mut self, op: Op, end: Option<u64>, offset: Option<u64>) -> io::Result<()> {
        let new_len = match end {
            Some(end) if end <= MAX_FILE_LEN => end,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!(
                        "{}{} would make the file larger than {MAX_FILE_LEN} bytes",
                        op.name(),
                        at(offset)
                    ),
                ))
            }
        };
        match self.capacity {
            Some(capacity) if new_len > capacity && new_len > self.visible.len() as u64 => {
                let index = *self.counts.of(op) - 1;
                let error = injected(
                    FaultKind::Enospc,
                    format!(
                        "{}{} (#{index}): the disk is full, {new_len} bytes > capacity \
                         {capacity}",
                        op.name(),
                        at(offset)
                    ),
                );
                self.fired.push(error.to_string());
                Err(error)
            }
            _ => Ok(()),
        }
    }

    fn push(&mut self, op: Pending) {
        op.apply(&mut self.visible);
        self.pending.push(op);
    }

    /// The bytes that survive a power cut now, by `mode`.
    fn survivors(&self, mode: CutMode, seed: u64) -> Vec<u8> {
        let mut rng = Rng(seed);
        let mut image = self.durable.clone();
        match mode {
            CutMode::DropAll => {}
            CutMode::KeepRandomSubset => {
                for op in &self.pending {
                    if rng.chance(50) {
                        op.apply(&mut image);
                    }
                }
            }
            CutMode::Tear { granularity } => {
                assert!(granularity > 0, "a sector has at least one byte");
                let writes: Vec<usize> = (0..self.pending.len())
                    .filter(|&i| matches!(self.pending[i], Pending::Write { .. }))
                    .collect();
                let torn_count = (1 + rng.below(3) as usize).min(writes.len());
                // The positions in `pending` of the torn writes.
                let torn = &writes[writes.len() - torn_count..];
                for (i, op) in self.pending.iter().enumerate() {
                    match op {
                        Pending::Write { offset, data }
                            if torn.contains(&i) && !data.is_empty() =>
                        {
                            let end = offset + data.len() as u64;
                            let first_sector = offset - offset % granularity;
                            let sectors = (end - first_sector).div_ceil(granularity);
                            let kept = rng.below(sectors);
                            let kept_end = end.min(first_sector + kept * granularity);
                            let kept_len = kept_end.saturating_sub(*offset) as usize;
                            // A write that lost every sector leaves no trace, not even a longer file.
                            if kept_len > 0 {
                                write_at(&mut image, *offset, &data[..kept_len]);
                            }
                        }
                        op => op.apply(&mut image),
                    }
                }
            }
        }
        image
    }
}

/// " at offset X", or nothing.
fn at(offset: Option<u64>) -> String {
    offset.map_or_else(String::new, |o| format!(" at offset {o}"))
}

/// The error of an injected fault: "injected EIO on <what>".
fn injected(kind: FaultKind, what: String) -> io::Error {
    match kind {
        FaultKind::Eio => io::Error::other(format!("injected EIO (errno {EIO}) on {what}")),
        FaultKind::Enospc => io::Error::new(
            io::ErrorKind::StorageFull,
            format!("injected ENOSPC (errno {ENOSPC}) on {what}"),
        ),
    }
}

/// A simulated disk holding one file, shared by the test and any number of [`FaultyBackend`]s
/// (cloning it shares it). It outlives the [`redb::Database`]s over it, so the test can take
/// the surviving bytes after a cut.
#[derive(Clone)]
pub struct Disk(Arc<Mutex<State>>);

impl Default for Disk {
    fn default() -> Self {
        Disk::new()
    }
}

impl fmt::Debug for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Disk")
            .field("len", &state.visible.len())
            .field("durable_len", &state.durable.len())
            .field("pending_ops", &state.pending.len())
            .field("counts", &state.counts)
            .field("powered_off", &state.powered_off)
            .finish()
    }
}

impl Disk {
    /// An empty disk (redb creates a database on it).
    pub fn new() -> Disk {
        Disk::from_image(Vec::new())
    }

    /// A disk whose file holds `image`, durably (e.g. what survived a [`Disk::power_cut`]).
    pub fn from_image(image: Vec<u8>) -> Disk {
        Disk(Arc::new(Mutex::new(State::new(image))))
    }

    /// A backend over this disk, for `redb::Builder::create_with_backend`.
    pub fn backend(&self) -> FaultyBackend {
        FaultyBackend { disk: self.clone() }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in redb while it held the lock must not hide the disk from the test.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bytes as of the last completed `sync_data`.
    pub fn durable(&self) -> Vec<u8> {
        self.state().durable.clone()
    }

    /// The bytes `read` sees: the durable ones with the pending operations applied.
    pub fn visible(&self) -> Vec<u8> {
        self.state().visible.clone()
    }

    /// How many operations (writes and `set_len`s) are pending, not yet durable.
    pub fn pending_ops(&self) -> usize {
        self.state().pending.len()
    }

    /// The calls received so far.
    pub fn counts(&self) -> OpCounts {
        self.state().counts
    }

    /// Plans a fault (several can be planned; the first that matches a call fires).
    pub fn inject(&self, fault: Fault) {
        self.state().faults.push(fault);
    }

    /// Forgets the planned faults and the capacity: the disk works again (unless its power is
    /// off).
    pub fn clear_faults(&self) {
        let mut state = self.state();
        state.faults.clear();
        state.capacity = None;
    }

    /// Makes the disk full past `capacity` bytes: a `write` or `set_len` that would grow the file
    /// past it fails with ENOSPC (and does nothing); shrinking and overwriting still work.
    /// `None` removes the limit.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.state().capacity = capacity;
    }

    /// The messages of the injected faults that fired so far, in order.
    pub fn fired(&self) -> Vec<String> {
        self.state().fired.clone()
    }

    /// Plans a power cut once `n` mutating operations (writes, syncs, `set_len`s; see
    /// [`OpCounts::mutations`]) have been done: the next one finds the power off and fails, as
    /// does everything after it. `n = 0` cuts before the first write. Take the surviving bytes
    /// with [`Disk::power_cut`] (which also cuts, if the planned cut did not come).
    pub fn cut_at_op(&self, n: u64) {
        self.state().cut_at = Some(n);
    }

    /// Whether the power is off.
    pub fn is_powered_off(&self) -> bool {
        self.state().powered_off
    }

    /// Cuts the power (if it is still on) and returns the bytes that survived, by `mode`, with
    /// the randomness drawn from `seed`. Every later operation fails, so the disk stays as it
    /// was at the cut: calling this again with another mode or seed gives another possible
    /// outcome of the same cut.
    pub fn power_cut(&self, mode: CutMode, seed: u64) -> Vec<u8> {
        let mut state = self.state();
        state.powered_off = true;
        state.survivors(mode, seed)
    }
}

/// A redb [`StorageBackend`] over a [`Disk`].
#[derive(Clone)]
pub struct FaultyBackend {
    disk: Disk,
}

impl fmt::Debug for FaultyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyBackend")
            .field("disk", &self.disk)
            .finish()
    }
}

impl Default for FaultyBackend {
    fn default() -> Self {
        FaultyBackend::new()
    }
}

impl FaultyBackend {
    /// A backend over a new, empty disk.
    pub fn new() -> FaultyBackend {
        Disk::new().backend()
    }

    /// A backend over a new disk holding `image` durably, e.g. the bytes that survived a
    /// [`Disk::power_cut`]: `create_with_backend` opens (and recovers) the database in it.
    pub fn from_image(image: Vec<u8>) -> FaultyBackend {
        Disk::from_image(image).backend()
    }

    /// The disk under this backend.
    pub fn disk(&self) -> Disk {
        self.disk.clone()
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, io::Error> {
        let mut state = self.disk.state();
        state.enter(Op::Len, None)?;
        Ok(state.visible.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let mut state = self.disk.state();
        state.enter(Op::Read, Some(offset))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start
            .checked_add(out.len())
            .and_then(|end| state.visible.get(start..end))
        {
            Some(bytes) => {
                out.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at offset {offset} past the end ({} bytes)",
                    out.len(),
                    state.visible.len()
                ),
            )),
        }
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut state = self.disk.state();
        state.enter(Op::SetLen, None)?;
        state.check_space(Op::SetLen, Some(len), None)?;
        state.push(Pending::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut state = self.disk.state();
        state.enter(Op::SyncData, None)?;
        let State {
            durable, pending, ..
        } = &mut *state;
        for op in pending.drain(..) {
            op.apply(durable);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut state = self.disk.state();
        state.enter(Op::Write, Some(offset))?;
        state.check_space(
            Op::Write,
            offset.checked_add(data.len() as u64),
            Some(offset),
        )?;
        state.push(Pending::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }
}
