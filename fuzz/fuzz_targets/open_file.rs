//! Damaged and arbitrary files: opening and using them (search, get, keys, insert, remove, a
//! transaction, verify, stats, reopen, compact) must give `Err` or work — never a panic out of
//! the API, a hang (libFuzzer's `-timeout`) or a sanitizer report. Each file goes through
//! `Index::open_checked`, then, whatever that said, through plain `Index::open` and every use.
//!
//! The first input byte picks the file:
//! - `0..=31`: the rest of the input, as is;
//! - `32..=63`: redb's magic number followed by the rest (so redb parses a garbage header);
//! - otherwise one of a few valid index files (built once per process), changed by the rest of
//!   the input read as edits of 5 bytes each: a little-endian `u32` offset (modulo the length)
//!   and a byte XORed in there; an edit with a zero byte truncates the file at its offset.
//!
//! An odd first byte also compacts the file at the end.
//!
//! Panics inside the library are allowed when the library catches them (it converts a panic of
//! the storage engine on a damaged file into `Error::Corrupt`). libFuzzer's panic hook aborts
//! before unwinding, which would make every caught panic a crash, so this target replaces the
//! hook with one that only records the message; a panic that escapes the API aborts here, after
//! printing that message.
#![no_main]

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::OnceLock;

use hnswdb::{Index, Metric, Options, SearchParams};
use libfuzzer_sys::fuzz_target;

mod common;
use common::scratch_dir;

/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

thread_local! {
    /// The last panic on this thread: message and location.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces libFuzzer's aborting panic hook (set before `init` runs) with a quiet recorder.
fn record_panics_quietly() {
    std::panic::set_hook(Box::new(|info| {
        let text = format!("{info}");
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
    }));
}

/// Valid index files: a populated one with removals and an empty one.
fn originals() -> &'static [Vec<u8>] {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = scratch_dir();
        let populated = dir.path().join("populated.hnsw");
        {
            let index = Index::create(&populated, Options::new(3).metric(Metric::L2).m(3)).unwrap();
            let rows: Vec<(u64, [f32; 3])> = (0..60u64)
                .map(|i| (i * 7, [i as f32, (i % 7) as f32, -((i % 3) as f32)]))
                .collect();
            index
                .insert_batch(rows.iter().map(|(k, v)| (*k, v)))
                .unwrap();
            for i in (0..60u64).step_by(4) {
                index.remove(i * 7).unwrap();
            }
            index.insert(1000, &[0.5, 0.5, 0.5]).unwrap();
        }
        let empty = dir.path().join("empty.hnsw");
        drop(Index::create(&empty, Options::new(3).metric(Metric::Cosine)).unwrap());
        vec![
            std::fs::read(&populated).unwrap(),
            std::fs::read(&empty).unwrap(),
        ]
    })
}

/// The file the input describes.
fn file_of(data: &[u8]) -> Vec<u8> {
    let Some((&choice, rest)) = data.split_first() else {
        return Vec::new();
    };
    if choice < 32 {
        return rest.to_vec();
    }
    if choice < 64 {
        return [REDB_MAGIC.as_slice(), rest].concat();
    }
    let originals = originals();
    let mut file = originals[usize::from(choice) % originals.len()].clone();
    for edit in rest.chunks_exact(5) {
        if file.is_empty() {
            break;
        }
        let offset = u32::from_le_bytes(edit[..4].try_into().unwrap()) as usize % file.len();
        match edit[4] {
            0 => file.truncate(offset),
            x => file[offset] ^= x,
        }
    }
    file
}

/// Uses the index at `path` every way the API allows; errors are fine.
fn exercise(path: &Path, compact: bool) {
    if let Ok(index) = Index::open_checked(path) {
        let _ = index.close();
    }
    let Ok(index) = Index::open(path) else {
        return;
    };
    let dim = index.dim();
    let query: Vec<f32> = (0..dim).map(|i| 0.25 + i as f32).collect();
    let keys = index.keys().unwrap_or_default();
    let _ = index.len();
    for key in keys.iter().take(8).copied().chain([0, 7, 1000, u64::MAX]) {
        let _ = index.get(key);
        let _ = index.contains(key);
    }
    let _ = index.search(&query, 5);
    let _ = index.search_with(&query, &SearchParams::new(10).ef(1000));
    let _ = index.search_with(&query, &SearchParams::new(3).filter(|k| k % 3 == 0));
    let _ = index.stats();
    let _ = index.verify();
    let _ = index.insert(5000, &query);
    if let Some(&key) = keys.first() {
        let _ = index.remove(key);
    }
    if let Ok(mut tx) = index.write() {
        let _ = tx.insert(5001, &query);
        let _ = tx.remove(5000);
        let _ = tx.contains(5001);
        let _ = tx.commit();
    }
    let _ = index.search(&query, 5);
    let _ = index.verify();
    drop(index);
    // Whatever the writes did, the file opens again (or is refused) without a panic.
    if let Ok(index) = Index::open(path) {
        let _ = index.search(&query, 3);
        if compact {
            let _ = index.compact();
        }
        let _ = index.verify();
    }
}

fuzz_target!(init: record_panics_quietly(), |data: &[u8]| {
    let dir = scratch_dir();
    let path = dir.path().join("fuzz.hnsw");
    std::fs::write(&path, file_of(data)).unwrap();
    let compact = data.first().is_some_and(|b| b % 2 == 1);
    if catch_unwind(AssertUnwindSafe(|| exercise(&path, compact))).is_err() {
        let message = LAST_PANIC.with(|p| p.borrow_mut().take());
        eprintln!("panic escaped the hnswdb API: {}", message.unwrap_or_default());
        std::process::abort();
    }
});
