//! numpy arrays in and out. An argument that already is a C-contiguous array of the right dtype
//! is read in place; anything else goes through numpy's own conversion (one copy), and only
//! for numbers of a fitting kind: float32 vectors from any real dtype, uint64 keys from any
//! integer dtype without negative values.

use numpy::{PyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// numpy's dtype `kind` letter of `array` (`f`, `i`, `u`, `b`, `O`, ...).
fn kind(array: &Bound<'_, PyAny>) -> PyResult<String> {
    array.getattr("dtype")?.getattr("kind")?.extract()
}

/// `array` (a numpy array) as a C-contiguous array of `dtype`: itself when it is one already.
fn contiguous<'py>(array: &Bound<'py, PyAny>, dtype: &str) -> PyResult<Bound<'py, PyAny>> {
    let py = array.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", dtype)?;
    kwargs.set_item("order", "C")?;
    // Not `ascontiguousarray`, which makes a single key (0-d) a 1-d array.
    py.import("numpy")?
        .call_method("asarray", (array,), Some(&kwargs))
}

/// `obj` as a C-contiguous float32 array (of any shape): `obj` itself when it is one, else a
/// converted copy. Real numbers only (float, int, uint dtypes); anything else is a TypeError.
pub(crate) fn f32_array<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    if let Ok(array) = obj.cast::<PyArrayDyn<f32>>() {
        if array.is_c_contiguous() {
            return Ok(array.clone());
        }
    }
    let array = obj.py().import("numpy")?.call_method1("asarray", (obj,))?;
    let kind = kind(&array)?;
    if !matches!(kind.as_str(), "f" | "i" | "u") {
        let dtype = array.getattr("dtype")?.str()?;
        return Err(PyTypeError::new_err(format!(
            "{what} must be real numbers (float32), got dtype {dtype}"
        )));
    }
    Ok(contiguous(&array, "float32")?.cast_into::<PyArrayDyn<f32>>()?)
}

/// `obj` as a C-contiguous uint64 array (of any shape): `obj` itself when it is one, else a
/// converted copy. Integers only (a TypeError otherwise); a negative key is an OverflowError,
/// as it is for a single key.
pub(crate) fn u64_array<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArrayDyn<u64>>> {
    if let Ok(array) = obj.cast::<PyArrayDyn<u64>>() {
        if array.is_c_contiguous() {
            return Ok(array.clone());
        }
    }
    let array = obj.py().import("numpy")?.call_method1("asarray", (obj,))?;
    match kind(&array)?.as_str() {
        "u" => {}
        "i" => {
            let size: usize = array.getattr("size")?.extract()?;
            if size > 0 && array.call_method0("min")?.extract::<i64>()? < 0 {
                return Err(PyOverflowError::new_err(
                    "keys must be 0 to 2**64-1: a negative key was given",
                ));
            }
        }
        _ => {
            let dtype = array.getattr("dtype")?.str()?;
            return Err(PyTypeError::new_err(format!(
                "keys must be integers (uint64), got dtype {dtype}"
            )));
        }
    }
    Ok(contiguous(&array, "uint64")?.cast_into::<PyArrayDyn<u64>>()?)
}

/// A new array of `shape` and `dtype` filled with `value`, made by numpy, so that a shape too
/// large for memory is a MemoryError (or numpy's ValueError), never an abort.
pub(crate) fn full<'py, T: numpy::Element>(
    py: Python<'py>,
    shape: &[usize],
    value: impl IntoPyObject<'py>,
    dtype: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", dtype)?;
    let shape = pyo3::types::PyTuple::new(py, shape)?;
    Ok(py
        .import("numpy")?
        .call_method("full", (shape, value), Some(&kwargs))?
        .cast_into::<PyArrayDyn<T>>()?)
}
