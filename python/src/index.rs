//! `Index`: the Python class over [`hnswdb::Index`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread;
use std::time::Duration;

use hnswdb::{Index, SearchParams};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{f32_array, full, u64_array};
use crate::errors::{raise, to_py, IntoPy};
use crate::interrupt;
use crate::named;
use crate::options::{options, options_dict, stats_dict};
use crate::streams::{PyFile, Stream};
use crate::txn::{Transaction, WriterMark};

/// An HNSW vector index stored in one file (or in memory): crash-safe, transactional, with
/// real deletes. Make one with `Index.create`, `Index.open`, `Index.open_or_create` or
/// `Index.in_memory`.
///
/// Searches, `get` and writes release the GIL: any number of Python threads may search while
/// one writes. `close()` (or leaving a `with` block) closes it; afterwards every method raises
/// `hnswdb.ClosedError`.
#[pyclass(frozen, module = "hnswdb", name = "Index")]
pub(crate) struct PyIndex {
    inner: RwLock<Option<Arc<Index>>>,
    writer: Arc<WriterMark>,
}

/// What `search` returns: keys and distances.
type Answers<'py> = (Bound<'py, PyArrayDyn<u64>>, Bound<'py, PyArrayDyn<f32>>);

/// Keys and vectors of an `add`, read in place from their arrays.
pub(crate) struct Borrowed<'py> {
    keys: PyReadonlyArrayDyn<'py, u64>,
    vectors: PyReadonlyArrayDyn<'py, f32>,
    dim: usize,
}

/// Keys and vectors of an `add`, owned (for a transaction's thread).
pub(crate) struct Rows {
    keys: Vec<u64>,
    vectors: Vec<f32>,
    dim: usize,
}

impl Rows {
    /// Inserts the rows through `insert` a chunk at a time until `cancel` is set; see
    /// [`interrupt::insert_chunked`].
    pub(crate) fn insert_chunked(
        &self,
        metric: hnswdb::Metric,
        cancel: &AtomicBool,
        insert: impl FnMut(&mut dyn Iterator<Item = (u64, &[f32])>) -> hnswdb::Result<()>,
    ) -> hnswdb::Result<bool> {
        interrupt::insert_chunked(&self.keys, &self.vectors, self.dim, metric, cancel, insert)
    }
}

impl Borrowed<'_> {
    /// The keys and the vectors, one after the other.
    fn slices(&self) -> PyResult<(&[u64], &[f32])> {
        let keys = self
            .keys
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let vectors = self
            .vectors
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok((keys, vectors))
    }

    /// A copy of the keys and vectors, made with the GIL released.
    pub(crate) fn to_owned(&self, py: Python<'_>) -> PyResult<Rows> {
        let (keys, vectors) = self.slices()?;
        let dim = self.dim;
        Ok(py.detach(|| Rows {
            keys: keys.to_vec(),
            vectors: vectors.to_vec(),
            dim,
        }))
    }
}

/// Results of up to this many entries are allocated by Rust: for one query numpy's `full`
/// cost as much as the search. Larger ones are numpy's, so that a `k` too large for memory is a
/// MemoryError, not an abort.
const SMALL_RESULT: usize = 1 << 16;

/// A new array of `shape` filled with `value` (`dtype` is its numpy name).
fn filled<'py, T>(
    py: Python<'py>,
    shape: &[usize],
    value: T,
    dtype: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>>
where
    T: numpy::Element + Copy + IntoPyObject<'py>,
{
    let cells = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    match cells {
        Some(cells) if cells <= SMALL_RESULT => {
            let array = ArrayD::from_shape_vec(IxDyn(shape), vec![value; cells])
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            Ok(PyArrayDyn::from_owned_array(py, array))
        }
        _ => full::<T>(py, shape, value, dtype),
    }
}

/// The error for a vector of `got` components in an index of `dim`.
fn dimension(dim: usize, got: usize) -> PyErr {
    to_py(hnswdb::Error::Dimension { expected: dim, got })
}

/// `keys` and `vectors` of an `add` checked against each other and `dim`: keys of shape (n,)
/// with vectors (n, dim), or one key with one vector (dim,).
pub(crate) fn key_vector_rows<'py>(
    keys: &Bound<'py, PyAny>,
    vectors: &Bound<'py, PyAny>,
    dim: usize,
) -> PyResult<Borrowed<'py>> {
    let keys = u64_array(keys)?;
    let vectors = f32_array(vectors, "vectors")?;
    let (key_shape, vector_shape) = (keys.shape().to_vec(), vectors.shape().to_vec());
    match (key_shape.as_slice(), vector_shape.as_slice()) {
        ([n], [rows, d]) => {
            if *d != dim {
                return Err(dimension(dim, *d));
            }
            if n != rows {
                return Err(PyValueError::new_err(format!(
                    "{n} keys but {rows} vectors: pass one key per row of vectors"
                )));
            }
        }
        ([], [d]) => {
            if *d != dim {
                return Err(dimension(dim, *d));
            }
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "keys of shape (n,) and vectors of shape (n, {dim}) expected (or one key and \
                 a vector of shape ({dim},)), got shapes {key_shape:?} and {vector_shape:?}"
            )))
        }
    }
    Ok(Borrowed {
        keys: keys.try_readonly()?,
        vectors: vectors.try_readonly()?,
        dim,
    })
}

/// A Python callable as a search filter: called with each candidate key (an `int`), a truthy
/// result lets the key through. The first exception it raises is kept and raised by the
/// search; later candidates are refused without calling it.
struct Filter {
    callable: Py<PyAny>,
    failed: AtomicBool,
    error: Mutex<Option<PyErr>>,
}

impl Filter {
    fn call(&self, key: u64) -> bool {
        if self.failed.load(Ordering::Relaxed) {
            return false;
        }
        let outcome = Python::try_attach(|py| {
            self.callable
                .bind(py)
                .call1((key,))
                .and_then(|result| result.is_truthy())
        });
        match outcome {
            Some(Ok(pass)) => pass,
            Some(Err(e)) => {
                self.failed.store(true, Ordering::Relaxed);
                self.error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(e);
                false
            }
            // The interpreter is shutting down: nothing passes.
            None => false,
        }
    }

    fn take_error(&self) -> Option<PyErr> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl PyIndex {
    fn new(index: Index) -> PyIndex {
        PyIndex {
            inner: RwLock::new(Some(Arc::new(index))),
            writer: Arc::default(),
        }
    }

    /// The open index, or ClosedError.
    fn index(&self) -> PyResult<Arc<Index>> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| raise("ClosedError", "the index is closed"))
    }

    /// The open index for a write: refused when this thread holds an open transaction of it,
    /// which the write would wait for forever.
    fn index_to_write(&self) -> PyResult<Arc<Index>> {
        let index = self.index()?;
        if self.writer.holder() == Some(thread::current().id()) {
            return Err(to_py(hnswdb::Error::WriteInProgress));
        }
        Ok(index)
    }
}

#[pymethods]
impl PyIndex {
    /// Creates a new index file at `path` for `dim`-dimensional vectors. Keyword settings:
    /// metric ("l2", "cosine" (default), "dot"), m (16), ef_construction (200), ef_search (64),
    /// seed (0), durability ("immediate" (default) or "eventual"), quick_repair (True),
    /// cache_bytes (1 GiB), quantization ("none" (default), "int8", "binary"), build_threads
    /// (0: every core). Raises FileExistsError (AlreadyExistsError) if anything is at `path`.
    #[staticmethod]
    #[pyo3(signature = (path, dim, **settings))]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        dim: usize,
        settings: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyIndex> {
        let options = options(dim, settings)?;
        let index = py.detach(|| Index::create(path, options)).py_err()?;
        Ok(PyIndex::new(index))
    }

    /// Opens the index file at `path` with the settings stored in it. With `checked=True` the
    /// whole file is checked first (every page checksum, then `verify`). Raises
    /// FileNotFoundError (NotFoundError) if there is no file.
    #[staticmethod]
    #[pyo3(signature = (path, *, checked = false))]
    fn open(py: Python<'_>, path: PathBuf, checked: bool) -> PyResult<PyIndex> {
        let index = py
            .detach(|| match checked {
                true => Index::open_checked(path),
                false => Index::open(path),
            })
            .py_err()?;
        Ok(PyIndex::new(index))
    }

    /// Opens the index at `path`, or creates it with these settings (as `create`) if there is
    /// no file. An existing index must have the same dim, metric, m, ef_construction, seed and
    /// quantization (OptionsMismatchError otherwise); its ef_search, durability, quick_repair
    /// and cache_bytes become the ones given.
    #[staticmethod]
    #[pyo3(signature = (path, dim, **settings))]
    fn open_or_create(
        py: Python<'_>,
        path: PathBuf,
        dim: usize,
        settings: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyIndex> {
        let options = options(dim, settings)?;
        let index = py
            .detach(|| Index::open_or_create(path, options))
            .py_err()?;
        Ok(PyIndex::new(index))
    }

    /// A new index in memory only, with the settings of `create`: the whole API, nothing
    /// written to disk, gone when closed. `export` saves it.
    #[staticmethod]
    #[pyo3(signature = (dim, **settings))]
    fn in_memory(
        py: Python<'_>,
        dim: usize,
        settings: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyIndex> {
        let options = options(dim, settings)?;
        let index = py.detach(|| Index::in_memory(options)).py_err()?;
        Ok(PyIndex::new(index))
    }

    /// Builds a new index file at `path` from an export `source` (written by `export`): a path,
    /// or a binary file object to `read` from (an open file, `io.BytesIO`, ...); the graph is
    /// rebuilt. A damaged or truncated export raises InvalidStreamError and leaves nothing at
    /// `path`; an exception the file object raises comes out as itself.
    #[staticmethod]
    fn from_export(py: Python<'_>, path: PathBuf, source: &Bound<'_, PyAny>) -> PyResult<PyIndex> {
        let index = match Stream::from_py(source, "read")? {
            Stream::Path(source) => py
                .detach(|| {
                    let file = std::fs::File::open(source)?;
                    Index::import(path, file)
                })
                .py_err()?,
            Stream::File(file) => {
                let mut reader = PyFile::new(file);
                let imported = py.detach(|| Index::import(path, &mut reader));
                match (imported, reader.error) {
                    (Err(_), Some(raised)) => return Err(raised),
                    (imported, _) => imported.py_err()?,
                }
            }
        };
        Ok(PyIndex::new(index))
    }

    /// Creates the index `name` inside the database file at `path` (a redb file, made if
    /// missing), beside other named indexes and the app's own tables; settings as `create`.
    /// A name is 1 to 64 ASCII letters, digits, `_`, `-` or `.` (InvalidNameError otherwise).
    #[staticmethod]
    #[pyo3(signature = (path, name, dim, **settings))]
    fn create_in(
        py: Python<'_>,
        path: PathBuf,
        name: &str,
        dim: usize,
        settings: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyIndex> {
        let options = options(dim, settings)?;
        let index = py
            .detach(|| named::create_in(&path, name, options))
            .py_err()?;
        Ok(PyIndex::new(index))
    }

    /// Opens the index `name` inside the database file at `path`.
    #[staticmethod]
    fn open_in(py: Python<'_>, path: PathBuf, name: &str) -> PyResult<PyIndex> {
        let index = py.detach(|| named::open_in(&path, name)).py_err()?;
        Ok(PyIndex::new(index))
    }

    /// Opens the index `name` inside the database file at `path`, or creates it (and the
    /// file) with these settings, as `open_or_create` does for an index file.
    #[staticmethod]
    #[pyo3(signature = (path, name, dim, **settings))]
    fn open_or_create_in(
        py: Python<'_>,
        path: PathBuf,
        name: &str,
        dim: usize,
        settings: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyIndex> {
        let options = options(dim, settings)?;
        let index = py
            .detach(|| named::open_or_create_in(&path, name, options))
            .py_err()?;
        Ok(PyIndex::new(index))
    }

    /// The index's name inside a database file (`create_in`); None for an index file or an
    /// index in memory.
    #[getter]
    fn name(&self) -> PyResult<Option<String>> {
        Ok(self.index()?.name().map(str::to_owned))
    }

    /// Inserts (upserts) `vectors` (float32, shape (n, dim)) under `keys` (uint64, shape (n,))
    /// in one transaction, linked on every core (`build_threads`); a single key with a vector
    /// of shape (dim,) works too. All of them or, on any error, none. Arrays of another dtype
    /// or layout are converted first (a copy); float32 C-contiguous ones are read in place.
    /// Ctrl-C (KeyboardInterrupt) stops a long add within a second or so, committing none of it.
    fn add(
        &self,
        py: Python<'_>,
        keys: &Bound<'_, PyAny>,
        vectors: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let index = self.index_to_write()?;
        let rows = key_vector_rows(keys, vectors, index.dim())?;
        let (keys, vectors) = rows.slices()?;
        let dim = index.dim();
        let metric = index.options().get_metric();
        let cancel = AtomicBool::new(false);
        let (answer, answered) = mpsc::channel();
        let insert = || {
            let added = index.write().and_then(|mut tx| {
                let all = interrupt::insert_chunked(keys, vectors, dim, metric, &cancel, |rows| {
                    tx.insert_batch(rows)
                })?;
                // Stopped part-way: `tx` is dropped, and nothing is committed.
                match all {
                    true => tx.commit().map(|()| true),
                    false => Ok(false),
                }
            });
            let _ = answer.send(added);
        };
        thread::scope(|scope| {
            thread::Builder::new()
                .name("hnswdb-add".into())
                .spawn_scoped(scope, insert)
                .map_err(|source| hnswdb::Error::Thread {
                    purpose: "add",
                    source,
                })
                .py_err()?;
            let (added, raised) = interrupt::wait_interruptible(py, answered, &cancel);
            let committed = added
                .ok_or_else(|| raise("Error", "the add's thread ended without an answer"))?
                .py_err()?;
            match (committed, raised) {
                (_, None) => Ok(()),
                (false, Some(raised)) => Err(raised),
                (true, Some(raised)) => interrupt::raise_after(py, raised),
            }
        })
    }

    /// The `k` nearest keys to each query, nearest first, and their distances.
    ///
    /// `queries` of shape (nq, dim) gives uint64 keys and float32 distances of shape (nq, k),
    /// searched on `threads` threads (0, the default: every core); one query of shape (dim,)
    /// gives arrays of shape (k,). Where fewer than `k` keys are found (an index smaller than
    /// `k`, or a filter matching fewer), the rest of the row is key 2**64-1 (`hnswdb.NO_KEY`)
    /// with distance +inf.
    ///
    /// `ef` (default: the index's ef_search, raised to k) trades speed for recall; `filter` is
    /// a callable key -> bool that a hit must pass (its exception, if it raises one, is raised
    /// here); `rescore` is how many candidates a quantized index re-ranks exactly.
    #[pyo3(signature = (queries, k = 10, *, ef = None, filter = None, rescore = None, threads = 0))]
    #[allow(clippy::too_many_arguments)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: usize,
        ef: Option<usize>,
        filter: Option<Bound<'py, PyAny>>,
        rescore: Option<usize>,
        threads: usize,
    ) -> PyResult<Answers<'py>> {
        let index = self.index()?;
        let dim = index.dim();
        let queries = f32_array(queries, "queries")?;
        let shape = queries.shape().to_vec();
        let (count, single) = match shape.as_slice() {
            [d] => (1, Some(*d)),
            [n, d] => {
                if *d != dim {
                    return Err(dimension(dim, *d));
                }
                (*n, None)
            }
            _ => {
                return Err(PyValueError::new_err(format!(
                    "queries must be one vector of shape ({dim},) or a matrix of shape \
                     (n, {dim}), got shape {shape:?}"
                )))
            }
        };
        if let Some(d) = single {
            if d != dim {
                return Err(dimension(dim, d));
            }
        }
        let out_shape = match single {
            Some(_) => vec![k],
            None => vec![count, k],
        };
        let keys = filled(py, &out_shape, u64::MAX, "uint64")?;
        let distances = filled(py, &out_shape, f32::INFINITY, "float32")?;
        let filter = match filter {
            None => None,
            Some(f) if f.is_callable() => Some(Filter {
                callable: f.unbind(),
                failed: AtomicBool::new(false),
                error: Mutex::new(None),
            }),
            Some(f) => {
                return Err(PyTypeError::new_err(format!(
                    "filter must be a callable (key -> bool), got {}",
                    f.get_type().name()?
                )))
            }
        };
        let mut params = SearchParams::new(k).threads(threads);
        if let Some(ef) = ef {
            params = params.ef(ef);
        }
        if let Some(rescore) = rescore {
            params = params.rescore(rescore);
        }
        if let Some(f) = &filter {
            params = params.filter(move |key| f.call(key));
        }
        let queries = queries.try_readonly()?;
        let data = queries
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut keys_out = keys.try_readwrite()?;
        let mut distances_out = distances.try_readwrite()?;
        let key_slots = keys_out
            .as_slice_mut()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let distance_slots = distances_out
            .as_slice_mut()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let result = py.detach(|| -> hnswdb::Result<()> {
            let answers = match single {
                Some(_) => vec![index.search_with(data, &params)?],
                None => {
                    let rows: Vec<&[f32]> = data.chunks_exact(dim).collect();
                    index.search_batch(&rows, &params)?
                }
            };
            for (row, hits) in answers.iter().enumerate() {
                for (column, hit) in hits.iter().take(k).enumerate() {
                    key_slots[row * k + column] = hit.key;
                    distance_slots[row * k + column] = hit.distance;
                }
            }
            Ok(())
        });
        drop((keys_out, distances_out));
        if let Some(error) = filter.as_ref().and_then(Filter::take_error) {
            return Err(error);
        }
        result.py_err()?;
        Ok((keys, distances))
    }

    /// The vector stored under `key` (float32, shape (dim,)), exactly as inserted, or None.
    fn get<'py>(&self, py: Python<'py>, key: u64) -> PyResult<Option<Bound<'py, PyArray1<f32>>>> {
        let index = self.index()?;
        let vector = py.detach(|| index.get(key)).py_err()?;
        Ok(vector.map(|v| PyArray1::from_vec(py, v)))
    }

    /// Removes `key` in its own transaction, repairing every link that pointed at it; returns
    /// whether it was present.
    fn remove(&self, py: Python<'_>, key: u64) -> PyResult<bool> {
        let index = self.index_to_write()?;
        py.detach(|| index.remove(key)).py_err()
    }

    /// Every key, ascending (uint64 array).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let index = self.index()?;
        let keys = py.detach(|| index.keys()).py_err()?;
        Ok(PyArray1::from_vec(py, keys))
    }

    /// Starts a write transaction (see `Transaction`), waiting for another thread's to end.
    fn write(&self, py: Python<'_>) -> PyResult<Transaction> {
        let index = self.index_to_write()?;
        Transaction::begin(py, index, Arc::clone(&self.writer))
    }

    /// The full integrity check: raises CorruptError naming the first problem, if any.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        let index = self.index()?;
        py.detach(|| index.verify()).py_err()
    }

    /// The full integrity check as a dict: problems (a list of (what, where) pairs, at most
    /// 100), omitted (problems beyond those), complete (whether every check ran), nodes.
    fn verify_report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let index = self.index()?;
        let report = py.detach(|| index.verify_report()).py_err()?;
        let dict = PyDict::new(py);
        let problems: Vec<(String, String)> = report
            .problems
            .iter()
            .map(|p| (p.what.clone(), p.location.clone()))
            .collect();
        dict.set_item("problems", problems)?;
        dict.set_item("omitted", report.omitted)?;
        dict.set_item("complete", report.complete)?;
        dict.set_item("nodes", report.nodes)?;
        Ok(dict)
    }

    /// Sizes and counts as a dict: len, nodes_per_level, degree_histogram, free_ids,
    /// file_bytes, cache_bytes (and its parts upper_bytes, codes_bytes, links_bytes,
    /// vectors_bytes), page_cache_bytes, layer0_vectors_cached, layer0_vectors_in_cache,
    /// layer0_links_cached, max_level.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let index = self.index()?;
        let stats = py.detach(|| index.stats()).py_err()?;
        stats_dict(py, &stats)
    }

    /// Makes every commit so far durable now (a no-op under durability "immediate").
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        let index = self.index_to_write()?;
        py.detach(|| index.checkpoint()).py_err()
    }

    /// Rewrites the file without its free space (blocks writers meanwhile; searches go on).
    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        let index = self.index_to_write()?;
        py.detach(|| index.compact()).py_err()
    }

    /// Writes every key and vector (a versioned, checksummed stream) to `target`, a path (the
    /// file is created and synced to disk) or a binary file object to `write` to (an open file,
    /// `io.BytesIO`, ...; flushed, not closed), and returns {"rows": ..., "bytes": ...}.
    /// `Index.from_export` builds an index from it. An exception the file object raises comes
    /// out as itself.
    fn export<'py>(
        &self,
        py: Python<'py>,
        target: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let index = self.index()?;
        let written = match Stream::from_py(target, "write")? {
            Stream::Path(path) => py
                .detach(|| {
                    let file = std::fs::File::create(path)?;
                    let written = index.export(&file)?;
                    file.sync_all()?;
                    Ok::<_, hnswdb::Error>(written)
                })
                .py_err()?,
            Stream::File(file) => {
                let mut writer = PyFile::new(file);
                let written = py.detach(|| index.export(&mut writer));
                match (written, writer.error) {
                    (Err(_), Some(raised)) => return Err(raised),
                    (written, _) => written.py_err()?,
                }
            }
        };
        let dict = PyDict::new(py);
        dict.set_item("rows", written.rows)?;
        dict.set_item("bytes", written.bytes)?;
        Ok(dict)
    }

    /// Waits until the background cache load that `open` started has finished.
    fn wait_loaded(&self, py: Python<'_>) -> PyResult<()> {
        let index = self.index_to_write()?;
        py.detach(|| index.wait_loaded()).py_err()
    }

    /// Whether the background cache load has finished.
    #[getter]
    fn is_loaded(&self) -> PyResult<bool> {
        Ok(self.index()?.is_loaded())
    }

    /// Closes the index: makes the last commits durable (durability "eventual") and closes
    /// the file, raising any error of that. Waits for searches in other threads to finish;
    /// refused (WriteInProgressError) while a write transaction is open. Closing a closed
    /// index does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.writer.holder().is_some() {
            return Err(raise(
                "WriteInProgressError",
                "a write transaction of this index is open; commit or abort it before close",
            ));
        }
        let taken = self
            .inner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(mut index) = taken else {
            return Ok(());
        };
        py.detach(|| loop {
            // Other threads' calls hold the index until they return.
            match Arc::try_unwrap(index) {
                Ok(index) => return index.close(),
                Err(shared) => {
                    index = shared;
                    thread::sleep(Duration::from_millis(1));
                }
            }
        })
        .py_err()
    }

    /// Whether the index is closed.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// The vector dimension.
    #[getter]
    fn dim(&self) -> PyResult<usize> {
        Ok(self.index()?.dim())
    }

    /// The metric: "l2", "cosine" or "dot".
    #[getter]
    fn metric(&self) -> PyResult<String> {
        Ok(self.index()?.options().get_metric().to_string())
    }

    /// The path of the index file; None for an in-memory index.
    #[getter]
    fn path(&self) -> PyResult<Option<PathBuf>> {
        let index = self.index()?;
        let path = index.path();
        Ok((!path.as_os_str().is_empty()).then(|| path.to_owned()))
    }

    /// The index's settings as a dict (the keywords of `create`, and dim).
    #[getter]
    fn options<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        options_dict(py, self.index()?.options())
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.index()?.len())
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let index = self.index()?;
        let Ok(key) = key.extract::<u64>() else {
            return Ok(false);
        };
        py.detach(|| index.contains(key)).py_err()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the index.
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        match self.index() {
            Err(_) => "<hnswdb.Index (closed)>".into(),
            Ok(index) => {
                let path = index.path().display().to_string();
                let place = match path.is_empty() {
                    true => "in memory".to_owned(),
                    false => format!("{path:?}"),
                };
                format!(
                    "<hnswdb.Index {place} dim={} metric={} len={}>",
                    index.dim(),
                    index.options().get_metric(),
                    index.len()
                )
            }
        }
    }
}
