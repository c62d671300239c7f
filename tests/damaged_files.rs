//! A valid index file with random bits flipped: opening and using it (search, get, keys,
//! verify, insert, remove, close) gives `Err`s or keeps working, but never a panic out of the
//! API, a hang or undefined behaviour. Every damaged file goes through plain `Index::open` and
//! is used, whatever `Index::open_checked` says of it (redb 4.4 could abort the process when a
//! handle wrote into or closed such a file; redb 4.6 did not in 10,000 trials, see README.md).
//! `HNSWDB_DAMAGE_TRIALS` raises the number of damaged files (default 200); `HNSWDB_SEED`
//! reproduces a run.

mod common;
use common::Rng;

use std::time::{Duration, Instant};

use hnswdb::{Error, Index, Metric, Options};

fn trials() -> u64 {
    std::env::var("HNSWDB_DAMAGE_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// Opens `path` and exercises it; returns how far it got.
fn exercise(path: &std::path::Path, vectors: &[Vec<f32>]) -> &'static str {
    let checked = match Index::open_checked(path) {
        Ok(index) => index.close().is_ok(),
        Err(_) => false,
    };
    let index = match Index::open(path) {
        Ok(index) => index,
        Err(_) if checked => panic!("open_checked accepted a file that open refuses"),
        Err(_) => return "open refused",
    };
    for q in vectors.iter().take(5) {
        let _ = index.search(q, 5);
        let _ = index.get(3);
    }
    let _ = index.keys();
    let _ = index.wait_loaded();
    let verified = index.verify();
    let wrote = index.insert(10_000, &vectors[0]);
    // redb panicked inside the write: the handle must refuse every later write.
    let poisoned = matches!(&wrote, Err(Error::Corrupt { location, .. })
        if location.contains("(panic caught)"));
    let removed = index.remove(7);
    let _ = index.search(&vectors[1], 10);
    let _ = index.stats();
    let closed = index.close();
    if poisoned {
        assert!(
            matches!(removed, Err(Error::Corrupt { .. })),
            "a write after a storage panic was not refused: {removed:?}"
        );
        return "opened, a write panicked in redb, handle refused writes after";
    }
    match (verified.is_ok(), closed.is_ok()) {
        (true, true) => "opened, verified clean, closed",
        (true, false) => "opened, verified clean, close failed",
        (false, true) => "opened, verify reported damage, closed",
        (false, false) => "opened, verify reported damage, close failed",
    }
}

#[test]
fn flipped_bits_never_panic() {
    let seed = common::seed(0xDA3A6E);
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.hnsw");
    let vectors = common::random_vectors(seed, 300, 8);
    {
        let index = Index::create(&original, Options::new(8).metric(Metric::L2).m(4)).unwrap();
        common::insert_numbered(&index, &vectors);
        for key in (0..300).step_by(5) {
            index.remove(key).unwrap();
        }
    }
    let bytes = std::fs::read(&original).unwrap();
    let mut rng = Rng(seed);
    let mut outcomes = std::collections::BTreeMap::<&str, u64>::new();
    let damaged = dir.path().join("damaged.hnsw");
    for _ in 0..trials() {
        let mut copy = bytes.clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(copy.len() as u64) as usize;
            copy[at] ^= 1 << rng.below(8);
        }
        std::fs::write(&damaged, &copy).unwrap();
        let start = Instant::now();
        let outcome = exercise(&damaged, &vectors);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "a damaged file took {:?}",
            start.elapsed()
        );
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("outcomes over {} damaged files: {outcomes:?}", trials());
}

#[test]
fn arbitrary_bytes_are_refused() {
    let seed = common::seed(0xB17E5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk");
    let mut rng = Rng(seed);
    for len in [1usize, 9, 100, 4096, 70_000] {
        let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        std::fs::write(&path, &junk).unwrap();
        assert!(Index::open(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), junk);
    }
}

/// Found by the `open_file` fuzz target: in a new, empty cosine index (3-d, redb 4.6.0's
/// layout, 73,728 bytes), the last byte of a page reference at offset 12,415 holds the page's
/// order (its top 5 bits). The fuzzer set the order to 20: redb then allocated and zeroed
/// 4 KiB × 2^20 = 4 GiB for the page before reading it (4 s, 4.2 GB resident, at `open`), and
/// the read past the end of the file came back as `Error::Storage` ("I/O error: failed to fill
/// whole buffer"). The allocation is redb's (see README.md, "What we test and how"); a reference
/// past the end of the file is damage, so hnswdb reports it as `Error::Corrupt`. Order 8 here
/// (a 1 MiB page) reaches the same read without the 4 GiB.
#[test]
fn a_page_reference_past_the_end_of_the_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.hnsw");
    drop(Index::create(&path, Options::new(3).metric(Metric::Cosine)).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        (bytes.len(), &bytes[12_415..12_423]),
        (73_728, [5, 0, 0, 0, 0, 0, 0, 0].as_slice()),
        "redb's layout of a new index changed: find the page reference again"
    );
    bytes[12_422] = 8 << 3;
    std::fs::write(&path, &bytes).unwrap();
    for open in [Index::open, Index::open_checked] {
        match open(&path) {
            Err(Error::Corrupt { what, .. }) => {
                assert!(what.contains("past the end of the file"), "{what}")
            }
            other => panic!("{other:?}"),
        }
    }
}
