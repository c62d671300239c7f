//! Ctrl-C during a long `add`. While a call waits with the GIL released, Python's signal
//! handlers cannot run, so a `KeyboardInterrupt` would wait for the whole add. Instead the rows
//! go in a chunk at a time on another thread, and the calling thread wakes every
//! [`SIGNAL_POLL`] to let the handlers run (Python runs them on its main thread only). When one
//! raises, the insert stops at the next chunk and its transaction is aborted: nothing of the
//! add is committed, and the exception is raised from the call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use hnswdb::Metric;
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;

/// How often a waiting call lets Python run its signal handlers.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Rows inserted between two looks at the cancel flag. On minilm50k (384-d, two cores) an add of
/// 50,000 rows took 19.2 / 22.2 s in chunks of 4,096 against 24.6 / 20.9 s in one (1,024: 25.9 /
/// 27.2 s), and a `KeyboardInterrupt` came out of it 0.39 to 0.78 s after the interrupt.
const ADD_CHUNK: usize = 4096;

/// Inserts the rows of `keys` and `vectors` (`dim` floats each) through `insert`, a chunk at a
/// time, until `cancel` is set: `Ok(true)` when all went in, `Ok(false)` when it stopped. Every
/// vector is checked against `metric` first, so that a bad one fails the add before any chunk
/// went in (a transaction stays as it was).
pub(crate) fn insert_chunked(
    keys: &[u64],
    vectors: &[f32],
    dim: usize,
    metric: Metric,
    cancel: &AtomicBool,
    mut insert: impl FnMut(&mut dyn Iterator<Item = (u64, &[f32])>) -> hnswdb::Result<()>,
) -> hnswdb::Result<bool> {
    for vector in vectors.chunks(dim.max(1)) {
        metric.validate(dim, vector)?;
    }
    for (keys, vectors) in keys
        .chunks(ADD_CHUNK)
        .zip(vectors.chunks(ADD_CHUNK * dim.max(1)))
    {
        if cancel.load(Ordering::Acquire) {
            return Ok(false);
        }
        insert(&mut keys.iter().copied().zip(vectors.chunks_exact(dim.max(1))))?;
    }
    Ok(true)
}

/// Waits for `answer` with the GIL released, letting Python's signal handlers run every
/// [`SIGNAL_POLL`]. When one raises, sets `cancel` and waits for the work to stop (at its next
/// chunk). Returns the answer (`None` when the sender went away unanswered) and what a handler
/// raised.
pub(crate) fn wait_interruptible<T: Send>(
    py: Python<'_>,
    mut answer: Receiver<T>,
    cancel: &AtomicBool,
) -> (Option<T>, Option<PyErr>) {
    loop {
        // A `Receiver` is not `Sync`: it goes into the GIL-free closure and back.
        let (back, received) = py.detach(move || {
            let received = answer.recv_timeout(SIGNAL_POLL);
            (answer, received)
        });
        answer = back;
        match received {
            Ok(value) => return (Some(value), None),
            Err(RecvTimeoutError::Disconnected) => return (None, None),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(raised) = py.check_signals() {
                    cancel.store(true, Ordering::Release);
                    // The answer (or the sender's end) comes within a chunk's time.
                    return (py.detach(move || answer.recv()).ok(), Some(raised));
                }
            }
        }
    }
}

/// For a handler's exception that came while work finished anyway (its last chunk, or the
/// commit): a `KeyboardInterrupt` is raised again right after the call returns, as if Ctrl-C
/// had come a moment later (Python's own SIGINT handling, re-armed); another exception is
/// returned, and the call reports it although the work is done.
pub(crate) fn raise_after(py: Python<'_>, raised: PyErr) -> PyResult<()> {
    if raised.is_instance_of::<PyKeyboardInterrupt>(py) {
        // Sets Python's SIGINT flag, as a Ctrl-C does.
        py.import("_thread")?.call_method0("interrupt_main")?;
        Ok(())
    } else {
        Err(raised)
    }
}
