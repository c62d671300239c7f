//! Keyword arguments to [`hnswdb::Options`], and options and stats back to dicts.

use hnswdb::{Durability, Metric, Options, Quantization, Stats};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::IntoPy;

/// The keyword arguments `create`, `in_memory` and `open_or_create` take besides `dim`.
const SETTINGS: &[&str] = &[
    "metric",
    "m",
    "ef_construction",
    "ef_search",
    "seed",
    "durability",
    "quick_repair",
    "cache_bytes",
    "quantization",
    "build_threads",
];

/// `Options::new(dim)` with every setting of `kwargs` applied; an unknown keyword is a
/// TypeError, as for any Python function, and a value out of range an InvalidOptionsError.
pub(crate) fn options(dim: usize, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Options> {
    let mut options = Options::new(dim);
    let Some(kwargs) = kwargs else {
        return Ok(options);
    };
    for (name, value) in kwargs.iter() {
        let name: String = name.extract()?;
        if value.is_none() {
            continue;
        }
        options = match name.as_str() {
            "metric" => options.metric(value.extract::<String>()?.parse::<Metric>().py_err()?),
            "m" => options.m(value.extract()?),
            "ef_construction" => options.ef_construction(value.extract()?),
            "ef_search" => options.ef_search(value.extract()?),
            "seed" => options.seed(value.extract()?),
            "durability" => options.durability(durability(&value.extract::<String>()?)?),
            "quick_repair" => options.quick_repair(value.extract()?),
            "cache_bytes" => options.cache_bytes(value.extract()?),
            "quantization" => options.quantization(
                value
                    .extract::<String>()?
                    .parse::<Quantization>()
                    .py_err()?,
            ),
            "build_threads" => options.build_threads(value.extract()?),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "unexpected keyword argument {name:?} (the settings are {})",
                    SETTINGS.join(", ")
                )))
            }
        };
    }
    Ok(options)
}

/// `"immediate"` or `"eventual"`.
fn durability(name: &str) -> PyResult<Durability> {
    match name {
        "immediate" => Ok(Durability::Immediate),
        "eventual" => Ok(Durability::Eventual),
        _ => Err(crate::errors::to_py(hnswdb::Error::InvalidOptions {
            reason: format!("unknown durability {name:?} (immediate or eventual)"),
        })),
    }
}

/// `options` as a dict with the keyword names `create` takes.
pub(crate) fn options_dict<'py>(
    py: Python<'py>,
    options: &Options,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("dim", options.get_dim())?;
    dict.set_item("metric", options.get_metric().to_string())?;
    dict.set_item("m", options.get_m())?;
    dict.set_item("ef_construction", options.get_ef_construction())?;
    dict.set_item("ef_search", options.get_ef_search())?;
    dict.set_item("seed", options.get_seed())?;
    let durability = match options.get_durability() {
        Durability::Immediate => "immediate",
        Durability::Eventual => "eventual",
    };
    dict.set_item("durability", durability)?;
    dict.set_item("quick_repair", options.get_quick_repair())?;
    dict.set_item("cache_bytes", options.get_cache_bytes())?;
    dict.set_item("quantization", options.get_quantization().to_string())?;
    dict.set_item("build_threads", options.get_build_threads())?;
    Ok(dict)
}

/// `stats` as a dict with the field names of [`hnswdb::Stats`].
pub(crate) fn stats_dict<'py>(py: Python<'py>, stats: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("len", stats.len)?;
    dict.set_item("nodes_per_level", &stats.nodes_per_level)?;
    dict.set_item("degree_histogram", &stats.degree_histogram)?;
    dict.set_item("free_ids", stats.free_ids)?;
    dict.set_item("file_bytes", stats.file_bytes)?;
    dict.set_item("cache_bytes", stats.cache_bytes)?;
    dict.set_item("upper_bytes", stats.upper_bytes)?;
    dict.set_item("codes_bytes", stats.codes_bytes)?;
    dict.set_item("links_bytes", stats.links_bytes)?;
    dict.set_item("vectors_bytes", stats.vectors_bytes)?;
    dict.set_item("page_cache_bytes", stats.page_cache_bytes)?;
    dict.set_item("layer0_vectors_cached", stats.layer0_vectors_cached)?;
    dict.set_item("layer0_vectors_in_cache", stats.layer0_vectors_in_cache)?;
    dict.set_item("layer0_links_cached", stats.layer0_links_cached)?;
    dict.set_item("max_level", stats.max_level)?;
    Ok(dict)
}
