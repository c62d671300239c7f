//! Index files whose header was rewritten with counters that disagree with the tables (a
//! crafted file, or damage under a valid checksum): no counter may wrap.

use std::path::Path;

use hnswdb::{Error, Index, Metric, Options};
use redb::{ReadableDatabase, TableDefinition};

/// The table and row holding the header (src/store/schema.rs).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("hnswdb.meta");
const HEADER_KEY: &str = "header";

/// The header record as src/store/codec.rs stores it: rkyv of these fields, in this order.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Clone, Debug)]
struct Header {
    dim: u32,
    metric: u8,
    m: u32,
    ef_construction: u32,
    ef_search: u32,
    seed: u64,
    durability: u8,
    quick_repair: bool,
    cache_bytes: u64,
    has_entry: bool,
    entry_id: u32,
    entry_level: u8,
    len: u64,
    next_id: u32,
    inserts: u64,
}

const DIM: usize = 4;
fn vector(key: u64) -> [f32; DIM] {
    std::array::from_fn(|j| ((key * 7 + j as u64 * 3) % 11) as f32 + 0.5)
}

fn read_header(path: &Path) -> Header {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let bytes = meta.get(HEADER_KEY).unwrap().unwrap().value().to_vec();
    let mut aligned = rkyv::util::AlignedVec::<16>::new();
    aligned.extend_from_slice(&bytes);
    rkyv::from_bytes::<Header, rkyv::rancor::Error>(&aligned).unwrap()
}

/// Rewrites the header of the index at `path` through redb: a well-formed record, with the
/// counters `change` sets.
fn craft(path: &Path, change: impl FnOnce(&mut Header)) {
    let mut header = read_header(path);
    change(&mut header);
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn.open_table(META).unwrap();
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&header).unwrap();
        meta.insert(HEADER_KEY, bytes.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

fn is_corrupt<T: std::fmt::Debug>(result: &hnswdb::Result<T>) -> bool {
    matches!(result, Err(Error::Corrupt { location, .. }) if !location.contains("(panic caught)"))
}

/// A header counting no live node over a file that holds one: removing that node must not
/// wrap the count below zero.
#[test]
fn a_count_of_zero_over_a_live_node_does_not_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.hnsw");
    {
        let index = Index::create(&path, Options::new(DIM).metric(Metric::L2)).unwrap();
        index.insert(5, &vector(5)).unwrap();
    }
    craft(&path, |h| {
        h.len = 0;
        h.has_entry = false;
    });
    let index = match Index::open(&path) {
        Ok(index) => index,
        refused => {
            assert!(is_corrupt(&refused), "open gave {refused:?}");
            return;
        }
    };
    let removed = index.remove(5);
    assert!(
        removed.is_ok() || is_corrupt(&removed),
        "remove gave {removed:?}"
    );
    assert!(index.len() <= 1, "len wrapped to {}", index.len());
}
