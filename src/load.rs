//! The background load of an opened index's cache.
//!
//! `Index::open` reads redb's own open, the header and the free ids, and publishes a
//! [`Snapshot`] with no cached part: searches and writes work on it at once, reading what is
//! missing from the file. A loader thread then reads the parts from the snapshot it was given
//! (a read transaction at the opened commit), in the order they pay off: node slots and upper
//! layers, then layer 0 in the order of `snapshot::stages` (vectors, then lists; with
//! quantization codes, lists, then vectors), each only within the budget as `Snapshot::load`
//! decides. It installs each part as soon as it is read, so searches speed up
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

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;

use crate::engine::Shared;
use crate::error::{Error, Result};
use crate::load_progress::{Progress, Status};
use crate::snapshot::{cancelled, Changes, Shape, Snapshot};
use crate::store;

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
                Err(e) => Status::Failed {
                    damaged: matches!(e, Error::Corrupt { .. }),
                    what: e.to_string(),
                },
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
    for &stage in base.stages() {
        if base.has(stage) {
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
