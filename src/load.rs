//! The background load of an opened index's cache.
//!
//! `Index::open` reads redb's own open, the header and the free ids, and publishes a
//! [`Snapshot`] with no cached part: searches and writes work on it at once, reading what is
//! missing from the file. A loader thread then reads the parts from the snapshot it was given
//! (a read transaction at the opened commit), in the order they pay off: node slots and upper
//! layers, then the layer-0 vectors, then the layer-0 lists, each only within the budget as
//! `Snapshot::load` decides. It installs each part as soon as it is read, so searches speed up
//! step by step.
//!
//! Commits go on meanwhile. Each one records, in `WriterState::changes`, the nodes and lists it
//! changed; an install runs under the writer lock (no commit interleaves), clones the current
//! snapshot, re-reads those nodes and lists from the current snapshot's file state into the
//! part ([`Snapshot::install`]), and publishes the result. The record is kept from the load's
//! start to its end: every part was read at the same commit.
//!
//! The thread holds a read transaction of the file: `Index`'s drop (and `compact`) sets the
//! cancel flag, which the scans check every 1024 rows and each install checks under the lock,
//! and joins the thread before the file is closed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::cache::{cancelled, Changes, Shape, Snapshot, Stage};
use crate::error::{Error, Result};
use crate::index::Shared;
use crate::store;

/// Where the background load stands, shared by the index and its loader thread.
pub(crate) struct Progress {
    status: Mutex<Status>,
    /// Signalled when the status changes, the load is resumed or cancelled.
    finished: Condvar,
    /// While set, a starting loader waits (tests: writes land before the load reads anything).
    paused: AtomicBool,
    /// Set to stop the loader (drop, compact).
    pub cancel: AtomicBool,
    /// The layer-0 cache budget in bytes (`Options::cache_bytes`).
    pub budget: AtomicU64,
    /// Times a caller of `wait_resumed` went to sleep (tests: it is parked, not returned).
    #[cfg(test)]
    waits: AtomicU64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    Loading,
    Loaded,
    /// The load stopped on an error (the message); searches read the file instead.
    Failed(String),
    /// Cancelled before it finished.
    Stopped,
}

impl Progress {
    /// The progress of a snapshot that is fully `loaded`, or still loading.
    pub(crate) fn new(loaded: bool, budget: u64) -> Progress {
        Progress {
            status: Mutex::new(if loaded {
                Status::Loaded
            } else {
                Status::Loading
            }),
            finished: Condvar::new(),
            paused: AtomicBool::new(false),
            cancel: AtomicBool::new(false),
            budget: AtomicU64::new(budget),
            #[cfg(test)]
            waits: AtomicU64::new(0),
        }
    }

    fn set(&self, status: Status) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = status;
        self.finished.notify_all();
    }

    /// Makes the next loader wait before it reads anything, until [`Progress::resume`].
    pub(crate) fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Lets a paused loader go on.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn resume(&self) {
        let _status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        self.paused.store(false, Ordering::Release);
        self.finished.notify_all();
    }

    /// Sets the cancel flag and wakes a paused loader.
    fn cancel(&self) {
        let _status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        self.cancel.store(true, Ordering::Release);
        self.finished.notify_all();
    }

    /// Waits while paused; `false` when cancelled.
    fn wait_resumed(&self) -> bool {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        while self.paused.load(Ordering::Acquire) && !self.cancel.load(Ordering::Acquire) {
            #[cfg(test)]
            self.waits.fetch_add(1, Ordering::AcqRel);
            status = self
                .finished
                .wait(status)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !self.cancel.load(Ordering::Acquire)
    }

    /// Marks the cache fully loaded (a synchronous load replaced the snapshot).
    pub(crate) fn set_loaded(&self) {
        self.set(Status::Loaded);
    }

    /// Whether the load finished, and every part within the budget is in memory.
    pub(crate) fn is_loaded(&self) -> bool {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) == Status::Loaded
    }

    /// Waits for the load to end; its error, if it failed.
    pub(crate) fn wait(&self) -> Result<()> {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        while *status == Status::Loading {
            status = self
                .finished
                .wait(status)
                .unwrap_or_else(PoisonError::into_inner);
        }
        match &*status {
            Status::Loaded => Ok(()),
            Status::Failed(what) => Err(Error::corrupt(
                format!("the background load of the cache failed: {what}"),
                "open",
            )),
            Status::Loading | Status::Stopped => Err(cancelled()),
        }
    }
}

/// Starts loading the parts `base` lacks, in the background. Call with `shared`'s writer state
/// holding a fresh `changes` record and `base` the current snapshot, both taken under the
/// writer lock (or with no writer possible).
pub(crate) fn spawn(
    shared: Arc<Shared>,
    base: Arc<Snapshot>,
    shape: Shape,
) -> Result<JoinHandle<()>> {
    shared.load.cancel.store(false, Ordering::Release);
    shared.load.set(Status::Loading);
    let handle = std::thread::Builder::new()
        .name("hnswdb-load".into())
        .spawn(move || {
            let result = store::guarded("load", || run(&shared, &base, &shape));
            drop(base);
            // The record ends with the load: under the lock, so no commit is half-recorded.
            shared
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .changes = None;
            shared.load.set(match result {
                Ok(()) => Status::Loaded,
                Err(_) if shared.load.cancel.load(Ordering::Acquire) => Status::Stopped,
                Err(e) => Status::Failed(e.to_string()),
            });
        })
        .map_err(|source| Error::Thread {
            purpose: "cache load",
            source,
        })?;
    Ok(handle)
}

/// Loads and installs every part `base` lacks, within the budget.
fn run(shared: &Shared, base: &Snapshot, shape: &Shape) -> Result<()> {
    if !shared.load.wait_resumed() {
        return Err(cancelled());
    }
    for stage in [Stage::Upper, Stage::Vectors, Stage::Links0] {
        let present = match stage {
            Stage::Upper => base.upper_loaded(),
            Stage::Vectors => base.vectors.is_some(),
            Stage::Links0 => base.links0.is_some(),
        };
        if present {
            continue;
        }
        let budget = shared.load.budget.load(Ordering::Acquire);
        let Some(part) = base.load_part(stage, shape, budget, &shared.load.cancel)? else {
            break;
        };
        let state = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.load.cancel.load(Ordering::Acquire) {
            return Err(cancelled());
        }
        let none = Changes::default();
        let mut snap = (*shared.snapshot()).clone();
        snap.install(part, state.changes.as_ref().unwrap_or(&none), shape)?;
        snap.fit_budget(shared.load.budget.load(Ordering::Acquire));
        shared.publish(snap);
        drop(state);
    }
    Ok(())
}

/// A loader thread, stopped and joined when dropped.
pub(crate) struct Loader(Option<JoinHandle<()>>);

impl Loader {
    pub(crate) fn new(handle: Option<JoinHandle<()>>) -> Loader {
        Loader(handle)
    }

    /// Cancels the load (if still running) and waits for the thread to end.
    pub(crate) fn stop(&mut self, progress: &Progress) {
        if let Some(handle) = self.0.take() {
            progress.cancel();
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until `waiter` went to sleep in `wait_resumed` `n` times in all; panics if it
    /// returned instead.
    fn until_parked(progress: &Progress, n: u64, waiter: &std::thread::JoinHandle<bool>) {
        while progress.waits.load(Ordering::Acquire) < n {
            assert!(!waiter.is_finished(), "wait_resumed returned while paused");
            std::thread::yield_now();
        }
        // It counts under the lock and releases it only by sleeping: once we hold it, it sleeps.
        drop(progress.status.lock().unwrap());
    }

    #[test]
    fn a_paused_loader_waits_until_resumed_or_cancelled() {
        for cancel in [false, true] {
            let progress = Arc::new(Progress::new(false, 0));
            progress.pause();
            let waiter = {
                let progress = Arc::clone(&progress);
                std::thread::spawn(move || progress.wait_resumed())
            };
            until_parked(&progress, 1, &waiter);
            // A wake-up that changes nothing puts it back to sleep.
            progress.finished.notify_all();
            until_parked(&progress, 2, &waiter);
            assert!(!waiter.is_finished());
            if cancel {
                progress.cancel();
            } else {
                progress.resume();
            }
            assert_eq!(waiter.join().unwrap(), !cancel);
        }
    }

    #[test]
    fn wait_reports_how_the_load_ended() {
        let progress = Progress::new(false, 0);
        assert!(!progress.is_loaded());
        progress.set(Status::Failed("damaged".into()));
        assert!(matches!(progress.wait(), Err(Error::Corrupt { .. })));
        progress.set(Status::Stopped);
        assert!(matches!(progress.wait(), Err(Error::LoadStopped)));
        progress.set_loaded();
        assert!(progress.is_loaded());
        progress.wait().unwrap();
    }
}
