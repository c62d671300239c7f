//! Python bindings of hnswdb (`import hnswdb`), built with maturin: `pip install ./python`.
//!
//! The classes here are `hnswdb.Index` and `hnswdb.Transaction`; the exceptions are defined in
//! Python (`hnswdb/_errors.py`), so that each can derive from two bases, and raised by name
//! (`errors.rs`). Every call that does work releases the GIL. Nothing here panics: every
//! failure is a Python exception.

mod arrays;
mod errors;
mod index;
mod interrupt;
mod named;
mod options;
mod streams;
mod txn;

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::errors::IntoPy;

/// The names of the indexes inside the database file at `path`, ascending.
#[pyfunction]
fn index_names(py: Python<'_>, path: PathBuf) -> PyResult<Vec<String>> {
    py.detach(|| {
        let db = named::database(&path, false)?;
        hnswdb::index_names(&db)
    })
    .py_err()
}

/// Deletes the index `name` (its tables, nothing else) from the database file at `path`, in
/// one durable commit; returns whether there was one. InUseError while it is open.
#[pyfunction]
fn delete_index(py: Python<'_>, path: PathBuf, name: &str) -> PyResult<bool> {
    py.detach(|| {
        let db = named::database(&path, false)?;
        hnswdb::delete_index(&db, name)
    })
    .py_err()
}

/// The native half of the `hnswdb` package; import `hnswdb`, not this.
#[pymodule]
fn _hnswdb(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<index::PyIndex>()?;
    module.add_class::<txn::Transaction>()?;
    module.add_function(wrap_pyfunction!(index_names, module)?)?;
    module.add_function(wrap_pyfunction!(delete_index, module)?)?;
    module.add("NO_KEY", u64::MAX)?;
    module.add("DEFAULT_CACHE_BYTES", hnswdb::DEFAULT_CACHE_BYTES)?;
    Ok(())
}
