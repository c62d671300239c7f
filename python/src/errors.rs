//! hnswdb's `Error` as Python exceptions: each variant raises the class of its name in
//! `hnswdb._errors`, which derives from `hnswdb.Error` and from the built-in exception a Python
//! caller expects (`ValueError`, `FileNotFoundError`, ...).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// The module that defines the exception classes, imported once.
static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception class `name` of `hnswdb._errors`.
fn class_of<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    let module = ERRORS.get_or_try_init(py, || py.import("hnswdb._errors").map(Bound::unbind))?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

/// An exception of the class `name` (one of `hnswdb._errors`) with `message`.
pub(crate) fn raise(name: &str, message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| match class_of(py, name) {
        Ok(class) => PyErr::from_type(class, message),
        // Only when the package is broken (its Python half missing): still an exception.
        Err(e) => PyRuntimeError::new_err(format!("{message} (and hnswdb._errors: {e})")),
    })
}

/// The class of `hnswdb._errors` that `error` is raised as.
fn class_name(error: &hnswdb::Error) -> &'static str {
    use hnswdb::Error as E;
    match error {
        E::Dimension { .. } => "DimensionError",
        E::InvalidVector { .. } => "InvalidVectorError",
        E::InvalidOptions { .. } => "InvalidOptionsError",
        E::AlreadyExists { .. } => "AlreadyExistsError",
        E::NotFound { .. } => "NotFoundError",
        E::NotAnIndex { .. } => "NotAnIndexError",
        E::InUse { .. } => "InUseError",
        E::InvalidName { .. } => "InvalidNameError",
        E::NotInSharedDatabase { .. } => "NotInSharedDatabaseError",
        E::Version { .. } => "VersionError",
        E::OptionsMismatch { .. } => "OptionsMismatchError",
        E::Corrupt { .. } => "CorruptError",
        E::InvalidStream { .. } => "InvalidStreamError",
        E::TransactionBroken => "TransactionBrokenError",
        E::WriteInProgress => "WriteInProgressError",
        E::NotInTransaction => "NotInTransactionError",
        E::Full { .. } => "FullError",
        E::LoadStopped => "LoadStoppedError",
        E::Thread { .. } => "ThreadError",
        E::Storage(_) => "StorageError",
        E::Io(_) => "IoError",
        // `Error` is non-exhaustive: a variant added later is at least an `hnswdb.Error`.
        _ => "Error",
    }
}

/// `error` as the Python exception of its kind, with hnswdb's message.
pub(crate) fn to_py(error: hnswdb::Error) -> PyErr {
    if let hnswdb::Error::Io(io) = &error {
        // A missing file is a missing file, however it was found missing: FileNotFoundError.
        let name = match io.kind() {
            std::io::ErrorKind::NotFound => "NotFoundError",
            _ => "IoError",
        };
        let message = error.to_string();
        return match io.raw_os_error() {
            // OSError's (errno, strerror) form: the exception's `errno` is set.
            Some(errno) => Python::attach(|py| match class_of(py, name) {
                Ok(class) => PyErr::from_type(class, (errno, message)),
                Err(e) => e,
            }),
            None => raise(name, message),
        };
    }
    raise(class_name(&error), error.to_string())
}

/// `Result<T, hnswdb::Error>` to `PyResult<T>`.
pub(crate) trait IntoPy<T> {
    /// The error, if any, as its Python exception.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for hnswdb::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
