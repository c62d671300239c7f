//! hnswdb: an embedded, crash-safe, persistent HNSW vector index.
//!
//! One file (a [redb](https://docs.rs/redb) database) is the whole index: nodes, vectors and
//! per-layer neighbour lists live in transactional tables, encoded with rkyv and read in place.
//! Every change is an ACID transaction; removals repair the graph in the same transaction (no
//! tombstones); searches run from an in-memory cache of the upper layers (and of layer 0 within a
//! budget) that follows every commit, while the file stays the single source of truth.
//!
//! ```
#![doc = include_str!("../examples/quickstart.rs")]
//! ```
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "test-hooks")]
mod backend_hook;
mod batch;
mod chunked;
mod claims;
mod distance;
mod engine;
mod error;
mod export;
mod files;
mod graph;
mod graph_views;
mod header;
mod index;
mod load;
mod load_progress;
mod options;
mod quant;
mod read_txn;
mod snapshot;
mod store;
mod verify;
mod write_txn;

pub use error::{Error, Location, Result};
pub use export::ExportStats;
pub use index::{delete_index, index_names, Index};
pub use options::{
    Durability, Hit, Metric, Options, Quantization, SearchParams, DEFAULT_CACHE_BYTES,
    EVENTUAL_CHECKPOINT_COMMITS, EVENTUAL_CHECKPOINT_MS,
};
pub use read_txn::ReadTxn;
/// The redb this crate is built on: name it as `hnswdb::redb` so that the app's database and
/// hnswdb's are of one version.
pub use redb;
pub use verify::{Problem, Stats, VerifyReport};
pub use write_txn::{IndexWrite, WriteTxn};

/// Distance kernels for `benches/` and the tests; not part of the API, no stability promise.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use distance::simd::bench as __bench;

/// Code kernels for `benches/` and the tests; not part of the API, no stability promise.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use distance::codes::bench as __codes_bench;
