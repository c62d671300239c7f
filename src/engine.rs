//! [`Engine`]: one open index below its public handle: its options and database, the snapshot
//! searches start from, the writer lock, and what a failed write leaves behind. [`Index`] wraps
//! it with the constructors and the background load; [`WriteTxn`] and [`ReadTxn`] borrow it.
//!
//! [`Index`]: crate::Index
//! [`WriteTxn`]: crate::WriteTxn
//! [`ReadTxn`]: crate::ReadTxn

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, TryLockError};
use std::time::Instant;

use crate::claims::{self, thread_tag, NameClaim, WriterClaim};
use crate::error::{Error, Location, Result};
use crate::graph::Params;
use crate::load_progress::Progress;
use crate::options::Options;
use crate::snapshot::{Changes, Snapshot};
use crate::store::{self, Db};

/// One open index: everything a handle and its transactions share.
pub(crate) struct Engine {
    /// For an index in an app's database: its name, held for this handle alone. First, so
    /// that it is let go before the database.
    pub name_claim: Option<NameClaim>,
    /// Where the index lives.
    pub location: Location,
    /// The open database; `compact` moves the index to a new one. Every snapshot holds the
    /// database it reads, so a search that started before finishes on the old file.
    pub db: RwLock<Arc<Db>>,
    pub options: Options,
    pub shared: Arc<Shared>,
    /// Set when the storage engine panicked during a write: further writes are refused.
    pub poisoned: AtomicBool,
}

impl Engine {
    pub(crate) fn params(&self) -> Params {
        Params {
            m: self.options.m,
            m0: self.options.get_m0(),
            ef_construction: self.options.ef_construction,
        }
    }

    /// The current committed snapshot.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot()
    }

    /// Makes `snap` the state every new search sees.
    pub(crate) fn publish(&self, snap: Snapshot) {
        self.shared.publish(snap);
    }

    /// The open file.
    pub(crate) fn database(&self) -> Arc<Db> {
        Arc::clone(&self.db.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Refuses writes after the storage engine panicked in one.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::corrupt(
                "an earlier write hit a storage-engine failure; reopen the index (and run verify)",
                "index handle",
            ));
        }
        Ok(())
    }

    /// Poisons the handle for writes if `error` came from a caught storage-engine panic.
    pub(crate) fn poison_on_panic(&self, error: &Error) {
        if let Error::Corrupt { location, .. } = error {
            if location.ends_with(store::PANIC_MARK) {
                self.poisoned.store(true, Ordering::Release);
            }
        }
    }

    /// Whether the index lives in memory only.
    pub(crate) fn is_in_memory(&self) -> bool {
        self.location == Location::Memory
    }

    /// Begins the redb write transaction of a write (the caller holds the writer lock), with
    /// the claim that makes a second one on this thread [`Error::WriteInProgress`] instead of
    /// a wait for itself.
    pub(crate) fn begin_write(&self) -> Result<(redb::WriteTransaction, WriterClaim)> {
        claims::begin_write(&self.database())
    }

    /// [`Index::checkpoint`](crate::Index::checkpoint) with the writer lock held.
    pub(crate) fn checkpoint_locked(&self, state: &mut WriterState) -> Result<()> {
        if state.since_checkpoint == 0 {
            return Ok(());
        }
        let (txn, _claim) = self.begin_write()?;
        durable_commit(txn, self.options.quick_repair).inspect_err(|e| self.poison_on_panic(e))?;
        state.committed(true);
        Ok(())
    }
}

/// What the index shares with its background loader.
pub(crate) struct Shared {
    /// The snapshot searches start from. A search holds the read lock only to clone the `Arc`.
    /// DESIGN.md asks for no lock at all here; the safe lock-free alternatives were measured or
    /// weighed and rejected: a per-thread cached `Arc` checked against an atomic version gained
    /// 2–4% with two threads at ef 16 on bigann10k (the best case: 8 µs queries), but a thread
    /// that never searches again would keep the last snapshot, and with it redb's read
    /// transaction and the file's lock, after the `Index` is dropped (a reopen fails); an epoch
    /// scheme (crossbeam-epoch) needs `unsafe` and delays the drop the same way.
    current: RwLock<Arc<Snapshot>>,
    /// Held by a writer from its redb commit until its snapshot is published, and by
    /// [`Index::read`](crate::Index::read) while it takes a redb read transaction and the
    /// snapshot: so the two show the same commit.
    pub publishing: Mutex<()>,
    pub writer: Mutex<WriterState>,
    /// The [`thread_tag`] of the thread holding `writer` through [`Shared::lock_writer`], else 0.
    writer_thread: AtomicU64,
    pub load: Progress,
}

/// The writer lock, held by one thread at a time (a [`WriteTxn`], a checkpoint, `compact`).
pub(crate) struct WriterGuard<'a> {
    state: MutexGuard<'a, WriterState>,
    thread: &'a AtomicU64,
}

impl std::ops::Deref for WriterGuard<'_> {
    type Target = WriterState;
    fn deref(&self) -> &WriterState {
        &self.state
    }
}

impl std::ops::DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut WriterState {
        &mut self.state
    }
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        // Before the mutex is released (fields drop after this).
        self.thread.store(0, Ordering::Release);
    }
}

impl Shared {
    /// The state of an index whose current snapshot is `snap`; `changes` is `Some` while a
    /// background load runs.
    pub(crate) fn new(snap: Arc<Snapshot>, changes: Option<Changes>, load: Progress) -> Shared {
        Shared {
            current: RwLock::new(snap),
            publishing: Mutex::new(()),
            writer: Mutex::new(WriterState {
                since_checkpoint: 0,
                last_checkpoint: Instant::now(),
                changes,
            }),
            writer_thread: AtomicU64::new(0),
            load,
        }
    }

    /// The current committed snapshot.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes `snap` the state every new search sees.
    pub(crate) fn publish(&self, snap: Snapshot) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snap);
    }

    /// [`Error::WriteInProgress`] when the calling thread holds the writer lock: whatever it
    /// was about to wait for would wait for itself.
    pub(crate) fn check_not_writing(&self) -> Result<()> {
        if self.writer_thread.load(Ordering::Acquire) == thread_tag() {
            return Err(Error::WriteInProgress);
        }
        Ok(())
    }

    /// Takes the writer lock, waiting for the holder (another thread) to let go.
    pub(crate) fn lock_writer(&self) -> Result<WriterGuard<'_>> {
        self.check_not_writing()?;
        let state = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(self.writer_guard(state))
    }

    /// Takes the writer lock if no one holds it.
    pub(crate) fn try_lock_writer(&self) -> Result<Option<WriterGuard<'_>>> {
        self.check_not_writing()?;
        let state = match self.writer.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(None),
        };
        Ok(Some(self.writer_guard(state)))
    }

    fn writer_guard<'a>(&'a self, state: MutexGuard<'a, WriterState>) -> WriterGuard<'a> {
        self.writer_thread.store(thread_tag(), Ordering::Release);
        WriterGuard {
            state,
            thread: &self.writer_thread,
        }
    }
}

/// What the single writer keeps between transactions.
pub(crate) struct WriterState {
    /// Commits since the last durable one (`Durability::Eventual`).
    pub since_checkpoint: u32,
    pub last_checkpoint: Instant,
    /// What commits changed since the background load began; `Some` while it runs.
    pub changes: Option<Changes>,
}

impl WriterState {
    /// Whether the next commit must be durable (a checkpoint) under `Durability::Eventual`.
    pub(crate) fn checkpoint_due(&self) -> bool {
        self.since_checkpoint + 1 >= crate::options::EVENTUAL_CHECKPOINT_COMMITS
            || self.last_checkpoint.elapsed().as_millis() as u64
                >= crate::options::EVENTUAL_CHECKPOINT_MS
    }

    /// Records a commit, durable or not.
    pub(crate) fn committed(&mut self, durable: bool) {
        if durable {
            self.since_checkpoint = 0;
            self.last_checkpoint = Instant::now();
        } else {
            self.since_checkpoint += 1;
        }
    }
}

/// An empty durable commit: makes every earlier non-durable commit durable too.
fn durable_commit(mut txn: redb::WriteTransaction, quick_repair: bool) -> Result<()> {
    store::guarded("checkpoint", || {
        txn.set_quick_repair(quick_repair);
        txn.commit()?;
        Ok(())
    })
}
