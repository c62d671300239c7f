//! Python bindings of hnswdb (`import hnswdb`), built with maturin: `pip install ./python`.
//!
//! The classes here are `hnswdb.Index` and `hnswdb.Transaction`; the exceptions are defined in
//! Python (`hnswdb/_errors.py`), so that each can derive from two bases, and raised by name
//! (`errors.rs`). Every call that does work releases the GIL. Nothing here panics: every
//! failure is a Python exception.

mod arrays;
mod errors;
mod index;
mod options;
mod txn;

use pyo3::prelude::*;

/// The native half of the `hnswdb` package; import `hnswdb`, not this.
#[pymodule]
fn _hnswdb(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<index::PyIndex>()?;
    module.add_class::<txn::Transaction>()?;
    module.add("NO_KEY", u64::MAX)?;
    module.add("DEFAULT_CACHE_BYTES", hnswdb::DEFAULT_CACHE_BYTES)?;
    Ok(())
}
