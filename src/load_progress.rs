//! [`Progress`]: where the background cache load stands, shared by the index and its loader
//! thread (status, pause, cancel, budget).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use crate::error::{Error, Result};

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
pub(crate) enum Status {
    Loading,
    Loaded,
    /// The load stopped on an error: damage (`Corrupt`) or another one, such as an I/O error
    /// (the message); searches read the file instead.
    Failed {
        damaged: bool,
        what: String,
    },
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

    pub(crate) fn set(&self, status: Status) {
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
    pub(crate) fn cancel(&self) {
        let _status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        self.cancel.store(true, Ordering::Release);
        self.finished.notify_all();
    }

    /// Waits while paused; `false` when cancelled.
    pub(crate) fn wait_resumed(&self) -> bool {
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
            Status::Failed {
                damaged: true,
                what,
            } => Err(Error::corrupt(
                format!("the background load of the cache failed: {what}"),
                "open",
            )),
            // An I/O error is no damage: said as what it was, not "restore from a backup".
            Status::Failed {
                damaged: false,
                what,
            } => Err(Error::Io(std::io::Error::other(format!(
                "the background load of the cache failed: {what}"
            )))),
            Status::Loading | Status::Stopped => Err(Error::LoadStopped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
        progress.set(Status::Failed {
            damaged: true,
            what: "damaged".into(),
        });
        assert!(matches!(progress.wait(), Err(Error::Corrupt { .. })));
        progress.set(Status::Failed {
            damaged: false,
            what: "storage error: I/O error: EIO".into(),
        });
        let e = progress.wait().unwrap_err();
        assert!(
            matches!(&e, Error::Io(_)) && e.to_string().contains("EIO"),
            "{e}"
        );
        progress.set(Status::Stopped);
        assert!(matches!(progress.wait(), Err(Error::LoadStopped)));
        progress.set_loaded();
        assert!(progress.is_loaded());
        progress.wait().unwrap();
    }
}
