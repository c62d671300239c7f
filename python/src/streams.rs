//! Where `export` writes and `from_export` reads: a path, or a Python binary file object (an
//! open file, `io.BytesIO`, a socket's file, ...). The Rust side runs with the GIL released and
//! takes it back only around each call to the object's `write` or `read`, a buffer (1 MiB for
//! an export) at a time. An exception the object raises is kept and raised as itself.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A path, or a binary file object.
pub(crate) enum Stream {
    Path(PathBuf),
    File(Py<PyAny>),
}

impl Stream {
    /// `target` as a stream: an object with a `method` (`"write"` or `"read"`) is a file
    /// object, anything else must be a path (`str` or `os.PathLike`).
    pub(crate) fn from_py(target: &Bound<'_, PyAny>, method: &str) -> PyResult<Stream> {
        if target.hasattr(method)? {
            return Ok(Stream::File(target.clone().unbind()));
        }
        Ok(Stream::Path(target.extract()?))
    }
}

/// A Python binary file object as a [`Write`] (its `write` and `flush`) or a [`Read`] (its
/// `read`); the first exception the object raises is kept in `error`.
pub(crate) struct PyFile {
    file: Py<PyAny>,
    pub(crate) error: Option<PyErr>,
}

impl PyFile {
    pub(crate) fn new(file: Py<PyAny>) -> PyFile {
        PyFile { file, error: None }
    }

    /// Calls `method` of the file with `args`, keeping an exception for the caller.
    fn call<'py, A>(
        &mut self,
        py: Python<'py>,
        method: &str,
        args: A,
    ) -> io::Result<Bound<'py, PyAny>>
    where
        A: pyo3::call::PyCallArgs<'py>,
    {
        self.file
            .bind(py)
            .call_method1(method, args)
            .map_err(|e| keep(&mut self.error, e))
    }
}

impl Write for PyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let written = self.call(py, "write", (PyBytes::new(py, buf),))?;
            // Raw files may write less and say so; buffered ones return None or the length.
            match written.extract::<Option<usize>>() {
                Ok(Some(n)) if n <= buf.len() => Ok(n),
                Ok(None) => Ok(buf.len()),
                _ => Err(io::Error::other(
                    "the file object's write returned no byte count",
                )),
            }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Python::attach(|py| {
            if self.file.bind(py).hasattr("flush").unwrap_or(false) {
                self.call(py, "flush", ())?;
            }
            Ok(())
        })
    }
}

impl Read for PyFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let read = self
                .call(py, "read", (buf.len(),))?
                .extract::<Option<Vec<u8>>>();
            match read.map_err(|e| keep(&mut self.error, e))? {
                Some(bytes) if bytes.len() <= buf.len() => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    Ok(bytes.len())
                }
                None => Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the file object has no data ready (non-blocking)",
                )),
                Some(_) => Err(io::Error::other(
                    "the file object's read returned more bytes than asked for",
                )),
            }
        })
    }
}

/// Keeps the first exception of a file object in `kept` (raised as itself once the Rust side
/// is done), and gives the Rust side an I/O error with its message.
fn keep(kept: &mut Option<PyErr>, raised: PyErr) -> io::Error {
    let message = raised.to_string();
    kept.get_or_insert(raised);
    io::Error::other(message)
}
