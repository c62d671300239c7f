//! Index files whose header was rewritten with counters that disagree with the tables (a
//! crafted file, or damage under a valid checksum): the open refuses them with
//! `Error::Corrupt`. Nothing may size an allocation from such a counter (`next_id` near
//! `u32::MAX` once asked the loader for 64 GiB, `len` asked `keys()` for 32 GiB: an allocation
//! failure aborts the process), and no counter may wrap.

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
    quantization: u8,
    has_entry: bool,
    entry_id: u32,
    entry_level: u8,
    len: u64,
    next_id: u32,
    inserts: u64,
}

/// A change to the counters of a header.
type Change = fn(&mut Header);

const DIM: usize = 4;
const ROWS: u64 = 60;

/// A valid index of `ROWS` keys, every third of them removed again (so some ids are free).
fn valid_index(path: &Path) {
    let index = Index::create(path, Options::new(DIM).metric(Metric::L2).m(4)).unwrap();
    index
        .insert_batch((0..ROWS).map(|key| (key, vector(key))))
        .unwrap();
    for key in (0..ROWS).step_by(3) {
        index.remove(key).unwrap();
    }
    index.verify().unwrap();
}

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

/// `Index::open` and `open_checked` refuse the file with `Error::Corrupt`. Should the open let
/// it through, every call on it must still end in `Ok` or `Error::Corrupt`, never an abort.
fn assert_refused(path: &Path, what: &str) {
    match Index::open(path) {
        Ok(index) => {
            let loaded = index.wait_loaded();
            let keys = index.keys().map(|k| k.len());
            let len = index.len();
            let hits = index.search(&vector(1), 5);
            let verified = index.verify();
            panic!(
                "{what}: the open accepted the file; then wait_loaded {loaded:?}, keys {keys:?}, \
                 len {len}, search {hits:?}, verify {verified:?}"
            );
        }
        refused => assert!(is_corrupt(&refused), "{what}: open gave {refused:?}"),
    }
    let checked = Index::open_checked(path);
    assert!(
        is_corrupt(&checked),
        "{what}: open_checked gave {checked:?}"
    );
}

#[test]
fn counters_near_the_maximum_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.hnsw");
    valid_index(&path);
    craft(&path, |h| {
        h.next_id = u32::MAX - 1;
        h.len = u64::from(u32::MAX - 2);
    });
    assert_refused(&path, "next_id and len near u32::MAX");
}

#[test]
fn counters_that_disagree_with_the_tables_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.hnsw");
    valid_index(&path);
    let valid = std::fs::read(&path).unwrap();
    // The control: the header rewritten unchanged opens and verifies.
    craft(&path, |_| {});
    Index::open_checked(&path).unwrap();
    let cases: [(&str, Change); 4] = [
        ("next_id beyond the ids the tables hold", |h| {
            h.next_id += 1000
        }),
        ("len above the rows", |h| h.len += 1),
        ("len below the rows", |h| h.len -= 1),
        ("next_id and len one lower", |h| {
            h.next_id -= 1;
            h.len -= 1;
        }),
    ];
    for (what, change) in cases {
        std::fs::write(&path, &valid).unwrap();
        craft(&path, change);
        assert_refused(&path, what);
    }
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
