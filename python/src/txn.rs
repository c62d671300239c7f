//! `Transaction`: a Rust `WriteTxn` for Python's `with index.write() as tx:`.
//!
//! A `WriteTxn` borrows its index and must end on the thread that began it, while a Python
//! object is owned by nobody in particular and may be used, and dropped, from any thread. So
//! each transaction runs on a thread of its own that owns the `WriteTxn` and takes its
//! operations over a channel: Python calls send one and wait for the answer with the GIL
//! released. Dropping the object (or the end of the interpreter) closes the channel, and the
//! thread aborts the transaction. The price is one copy of the vectors passed to
//! `Transaction.add`, handed to that thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle, ThreadId};

use hnswdb::Index;
use pyo3::prelude::*;

use crate::errors::{raise, IntoPy};
use crate::index::{key_vector_rows, Rows};
use crate::interrupt;

/// Which thread (if any) holds an open `Transaction` of an index: a write from that thread
/// through the index would wait for its own transaction forever, so it is refused instead.
#[derive(Default)]
pub(crate) struct WriterMark(Mutex<Option<ThreadId>>);

impl WriterMark {
    fn set(&self, thread: Option<ThreadId>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = thread;
    }

    /// The thread that holds a transaction, if one is open.
    pub(crate) fn holder(&self) -> Option<ThreadId> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An operation of a transaction, sent to its thread.
enum Op {
    Add(Rows),
    Remove(u64),
    Contains(u64),
    Len,
    Commit,
    Abort,
}

/// What an operation returns.
enum Answer {
    Done,
    /// An `add` stopped by a signal (Ctrl-C): the transaction is aborted.
    Stopped,
    Bool(bool),
    Len(usize),
}

/// An operation and where its answer goes.
struct Request {
    op: Op,
    answer: mpsc::Sender<hnswdb::Result<Answer>>,
}

/// A write transaction, from `Index.write()`. Use it as a context manager: on a normal exit
/// it commits, on an exception it aborts (and the exception goes on). `commit()` and
/// `abort()` end it explicitly. Dropped without either, it aborts. After it has ended every
/// method raises `hnswdb.ClosedError`.
///
/// Changes are seen by `tx` (`len(tx)`, `key in tx`) at once and by searches only after the
/// commit. Only one write transaction of an index is open at a time: another thread's
/// `Index.write()` (or `add`, `remove`) waits for this one to end, and the same thread's is
/// refused with `hnswdb.WriteInProgressError`.
#[pyclass(frozen, module = "hnswdb", name = "Transaction")]
pub(crate) struct Transaction {
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    /// Set when a signal handler raised during an `add`: the thread stops inserting.
    cancel: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
    dim: usize,
}

impl Transaction {
    /// Starts a transaction of `index` on a new thread, waiting (with the GIL released) for the
    /// index's writer lock; `mark` names the calling thread while it is open.
    pub(crate) fn begin(
        py: Python<'_>,
        index: Arc<Index>,
        mark: Arc<WriterMark>,
    ) -> PyResult<Self> {
        let dim = index.dim();
        let caller = thread::current().id();
        let (requests, inbox) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let cancelled = Arc::clone(&cancel);
        let worker = thread::Builder::new()
            .name("hnswdb-transaction".into())
            .spawn(move || serve(&index, &mark, caller, &inbox, &started_tx, &cancelled))
            .map_err(|source| hnswdb::Error::Thread {
                purpose: "write transaction",
                source,
            })
            .py_err()?;
        let began = py.detach(move || started.recv());
        match began {
            Ok(Ok(())) => Ok(Transaction {
                requests: Mutex::new(Some(requests)),
                cancel,
                worker: Mutex::new(Some(worker)),
                dim,
            }),
            Ok(Err(e)) => Err(crate::errors::to_py(e)),
            Err(_) => Err(raise(
                "Error",
                "the write transaction's thread ended unexpectedly",
            )),
        }
    }

    /// Sends `op` to the transaction's thread and waits for its answer, the GIL released.
    fn call(&self, py: Python<'_>, op: Op) -> PyResult<Answer> {
        let ends = matches!(op, Op::Commit | Op::Abort);
        let answers = self.send(op)?;
        let result = py.detach(move || answers.recv());
        if ends {
            self.finish(py);
        }
        result.map_err(|_| ended())?.py_err()
    }

    /// Sends `op` to the transaction's thread; the answer comes on the returned channel.
    fn send(&self, op: Op) -> PyResult<mpsc::Receiver<hnswdb::Result<Answer>>> {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(ended)?;
        let (answer, answers) = mpsc::channel();
        requests.send(Request { op, answer }).map_err(|_| ended())?;
        Ok(answers)
    }

    /// Forgets the channel and waits for the thread, which has ended the transaction.
    fn finish(&self, py: Python<'_>) {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker {
            // The thread catches nothing and panics on nothing; a join error has nothing to add.
            let _ = py.detach(|| worker.join());
        }
    }
}

impl Drop for Transaction {
    /// Aborts an open transaction and waits for its thread, so that the index's writer lock
    /// is free (and the writer mark cleared) once the object is gone. The thread needs no GIL.
    fn drop(&mut self) {
        self.requests
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = self
            .worker
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = worker.join();
        }
    }
}

/// The error for a transaction used after its end.
fn ended() -> PyErr {
    raise(
        "ClosedError",
        "the write transaction has ended (committed or aborted); start a new one with Index.write()",
    )
}

/// The transaction's thread: begins the write, answers requests until a commit, an abort or
/// the end of the channel (the Python object dropped), then ends the transaction.
fn serve(
    index: &Index,
    mark: &WriterMark,
    caller: ThreadId,
    inbox: &mpsc::Receiver<Request>,
    started: &mpsc::Sender<hnswdb::Result<()>>,
    cancel: &AtomicBool,
) {
    let mut tx = match index.write() {
        Ok(tx) => tx,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let metric = index.options().get_metric();
    mark.set(Some(caller));
    if started.send(Ok(())).is_err() {
        mark.set(None);
        return;
    }
    let mut last = None;
    for Request { op, answer } in inbox {
        let result = match op {
            Op::Add(rows) => match rows.insert_chunked(metric, cancel, |r| tx.insert_batch(r)) {
                Ok(true) => Ok(Answer::Done),
                Ok(false) => {
                    last = Some((false, answer));
                    break;
                }
                Err(e) => Err(e),
            },
            Op::Remove(key) => tx.remove(key).map(Answer::Bool),
            Op::Contains(key) => tx.contains(key).map(Answer::Bool),
            Op::Len => Ok(Answer::Len(tx.len())),
            Op::Commit => {
                last = Some((true, answer));
                break;
            }
            Op::Abort => {
                last = Some((false, answer));
                break;
            }
        };
        let _ = answer.send(result);
    }
    // Cleared while the writer lock is still held: no other transaction can have set it.
    mark.set(None);
    match last {
        Some((true, answer)) => {
            let _ = answer.send(tx.commit().map(|()| Answer::Done));
        }
        Some((false, answer)) => {
            drop(tx);
            let stopped = cancel.load(Ordering::Acquire);
            let _ = answer.send(Ok(if stopped {
                Answer::Stopped
            } else {
                Answer::Done
            }));
        }
        None => drop(tx),
    }
}

#[pymethods]
impl Transaction {
    /// Inserts (upserts) `vectors` (float32, shape (n, dim)) under `keys` (uint64, shape (n,))
    /// in this transaction; a single key with a vector of shape (dim,) works too. Every vector
    /// is checked first: a rejected one leaves the transaction as it was, and usable. Ctrl-C
    /// (KeyboardInterrupt) during a long add aborts the whole transaction.
    fn add(
        &self,
        py: Python<'_>,
        keys: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let rows = key_vector_rows(keys, vectors, self.dim)?.to_owned(py)?;
        self.cancel.store(false, Ordering::Release);
        let answers = self.send(Op::Add(rows))?;
        let (answer, raised) = interrupt::wait_interruptible(py, answers, &self.cancel);
        let answer = answer.ok_or_else(ended)?.py_err()?;
        match (answer, raised) {
            (_, None) => Ok(()),
            (Answer::Stopped, Some(raised)) => {
                // The thread aborted the transaction and ended.
                self.finish(py);
                Err(raised)
            }
            (_, Some(raised)) => interrupt::raise_after(py, raised),
        }
    }

    /// Removes `key` in this transaction, repairing the graph; returns whether it was present.
    fn remove(&self, py: Python<'_>, key: u64) -> PyResult<bool> {
        match self.call(py, Op::Remove(key))? {
            Answer::Bool(existed) => Ok(existed),
            _ => Ok(false),
        }
    }

    /// Whether `key` is present, as this transaction sees it.
    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(key) = key.extract::<u64>() else {
            return Ok(false);
        };
        match self.call(py, Op::Contains(key))? {
            Answer::Bool(present) => Ok(present),
            _ => Ok(false),
        }
    }

    /// The number of vectors, as this transaction sees it.
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        match self.call(py, Op::Len)? {
            Answer::Len(len) => Ok(len),
            _ => Ok(0),
        }
    }

    /// Commits: every change of the transaction becomes durable (per the index's durability)
    /// and visible to searches at once. The transaction has ended afterwards, even on an error.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.call(py, Op::Commit).map(|_| ())
    }

    /// Aborts: nothing of the transaction reaches the file or any search. Aborting an ended
    /// transaction does nothing.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed() {
            return Ok(());
        }
        self.call(py, Op::Abort).map(|_| ())
    }

    /// Whether the transaction has ended (committed or aborted).
    #[getter]
    fn closed(&self) -> bool {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Commits on a normal exit, aborts on an exception (which goes on).
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if self.closed() {
            return Ok(false);
        }
        match exc_type {
            None => self.commit(py)?,
            Some(_) => self.abort(py)?,
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        match self.closed() {
            true => "<hnswdb.Transaction (ended)>".into(),
            false => "<hnswdb.Transaction (open)>".into(),
        }
    }
}
