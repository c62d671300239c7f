//! The `header` row: the index's options and counters, to and from the stored [`Header`].

use crate::error::{Error, Result};
use crate::graph::{self, EntryPoint};
use crate::options::{Durability, Metric, Options, Quantization};
use crate::snapshot::Counters;
use crate::store::Header;

/// The counters of an empty index.
pub(crate) const EMPTY: Counters = Counters {
    entry: None,
    len: 0,
    next_id: 0,
    inserts: 0,
};

/// The header recording `options` and `counters`.
pub(crate) fn header_of(options: &Options, counters: &Counters) -> Header {
    Header {
        dim: options.dim as u32,
        metric: options.metric.to_byte(),
        m: options.m as u32,
        ef_construction: options.ef_construction as u32,
        ef_search: options.ef_search as u32,
        seed: options.seed,
        durability: match options.durability {
            Durability::Immediate => 0,
            Durability::Eventual => 1,
        },
        quick_repair: options.quick_repair,
        cache_bytes: options.cache_bytes,
        quantization: options.quantization.to_byte(),
        has_entry: counters.entry.is_some(),
        entry_id: counters.entry.map_or(0, |e| e.id),
        entry_level: counters.entry.map_or(0, |e| e.level),
        len: counters.len,
        next_id: counters.next_id,
        inserts: counters.inserts,
    }
}

/// The options and counters in `header`, validated.
pub(crate) fn unpack_header(header: &Header) -> Result<(Options, Counters)> {
    let bad = |what: &str| Error::corrupt(what.to_string(), "meta.header");
    let metric = Metric::from_byte(header.metric).ok_or_else(|| bad("unknown metric"))?;
    let durability = match header.durability {
        0 => Durability::Immediate,
        1 => Durability::Eventual,
        _ => return Err(bad("unknown durability")),
    };
    let quantization =
        Quantization::from_byte(header.quantization).ok_or_else(|| bad("unknown quantization"))?;
    let options = Options {
        dim: header.dim as usize,
        metric,
        m: header.m as usize,
        ef_construction: header.ef_construction as usize,
        ef_search: header.ef_search as usize,
        seed: header.seed,
        durability,
        quick_repair: header.quick_repair,
        cache_bytes: header.cache_bytes,
        quantization,
        build_threads: 0,
    };
    options
        .validate()
        .map_err(|e| Error::corrupt(format!("stored options are invalid: {e}"), "meta.header"))?;
    let entry = header.has_entry.then_some(EntryPoint {
        id: header.entry_id,
        level: header.entry_level,
    });
    if entry.is_some_and(|e| e.id >= header.next_id || e.level > graph::MAX_LEVEL) {
        return Err(bad("entry point out of range"));
    }
    if header.len > u64::from(header.next_id) || entry.is_some() != (header.len > 0) {
        return Err(bad("node count inconsistent"));
    }
    let counters = Counters {
        entry,
        len: header.len,
        next_id: header.next_id,
        inserts: header.inserts,
    };
    Ok((options, counters))
}
