//! Export streams, valid, damaged and arbitrary, fed to `Index::import` (a file) and
//! `Index::import_in` (a named index in an app database, redb in memory). Either the import
//! works, and then the index verifies clean and exports exactly the bytes it was given (a
//! stream is canonical: keys ascending, every field checked; a version 1 stream comes back as
//! version 2, its only difference), or it returns an error and leaves
//! nothing behind: no file and no stray file in the folder, no table in the app database. Never
//! a panic (libFuzzer aborts on any), never an allocation sized by the stream alone.
//!
//! The input:
//! - `raw`: the bytes are the stream as they are;
//! - otherwise a valid stream of the rows given (an in-memory index exported), then edited: each
//!   edit XORs a byte at an offset (modulo the length) or truncates there, and the CRC-32 at the
//!   end is recomputed when `fix_crc` says so, so that damage behind a good checksum (keys out
//!   of order, invalid vectors, counts that disagree, options out of range) reaches the checks
//!   after it.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use hnswdb::redb::{self, ReadableDatabase};
use hnswdb::{Error, Index, Metric, Options, Quantization};
use libfuzzer_sys::fuzz_target;

mod common;
use common::scratch_dir;

#[derive(Arbitrary, Debug)]
struct Input {
    raw: bool,
    metric: u8,
    dim: u8,
    rows: Vec<(u16, [i8; 4])>,
    edits: Vec<(u16, u8)>,
    fix_crc: bool,
    bytes: Vec<u8>,
}

/// A valid stream of `rows` (the last vector of a repeated key wins; rows invalid under the
/// metric are left out).
fn valid_stream(
    metric: Metric,
    quantization: Quantization,
    dim: usize,
    rows: &[(u16, [i8; 4])],
) -> Vec<u8> {
    let options = Options::new(dim).metric(metric).m(4);
    let index = Index::in_memory(options.quantization(quantization)).unwrap();
    for (key, v) in rows.iter().take(64) {
        let v: Vec<f32> = v[..dim].iter().map(|&x| f32::from(x) / 4.0).collect();
        match index.insert(u64::from(*key), &v) {
            Ok(()) | Err(Error::InvalidVector { .. }) => {}
            Err(e) => panic!("building the stream: {e}"),
        }
    }
    let mut stream = Vec::new();
    index.export(&mut stream).unwrap();
    stream
}

fn edited(mut stream: Vec<u8>, edits: &[(u16, u8)], fix_crc: bool) -> Vec<u8> {
    for &(at, byte) in edits.iter().take(8) {
        if stream.is_empty() {
            break;
        }
        let at = usize::from(at) % stream.len();
        if byte == 0 {
            stream.truncate(at);
        } else {
            stream[at] ^= byte;
        }
    }
    if fix_crc && stream.len() >= 4 {
        let body = stream.len() - 4;
        let crc = crc32fast::hash(&stream[..body]);
        stream[body..].copy_from_slice(&crc.to_le_bytes());
    }
    stream
}

/// An imported index: clean, and its export is the stream it came from (in version 2).
fn check_imported(index: &Index, stream: &[u8]) {
    index.verify().unwrap();
    let mut again = Vec::new();
    index.export(&mut again).unwrap();
    assert!(
        again == as_version_2(stream),
        "the export differs from the stream imported"
    );
}

/// `stream` as version 2 writes it: a version 1 stream (no quantization byte) differs only in
/// its version and so its checksum.
fn as_version_2(stream: &[u8]) -> Vec<u8> {
    let mut stream = stream.to_vec();
    if stream.len() >= 16 && stream[8..12] == 1u32.to_le_bytes() {
        stream[8..12].copy_from_slice(&2u32.to_le_bytes());
        let body = stream.len() - 4;
        let crc = crc32fast::hash(&stream[..body]);
        stream[body..].copy_from_slice(&crc.to_le_bytes());
    }
    stream
}

fn expected_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidStream { .. } | Error::Version { .. } | Error::InvalidVector { .. }
    )
}

fn run(input: Input) {
    let stream = if input.raw {
        input.bytes
    } else {
        let metric = [Metric::L2, Metric::Cosine, Metric::Dot][usize::from(input.metric % 3)];
        let quantization = [Quantization::None, Quantization::Int8, Quantization::Binary]
            [usize::from(input.metric / 3 % 3)];
        let dim = 1 + usize::from(input.dim % 4);
        edited(
            valid_stream(metric, quantization, dim, &input.rows),
            &input.edits,
            input.fix_crc,
        )
    };

    // Into a file of its own.
    let dir = scratch_dir();
    let path = dir.path().join("imported.hnsw");
    match Index::import(&path, stream.as_slice()) {
        Ok(index) => check_imported(&index, &stream),
        Err(e) => {
            assert!(expected_error(&e), "import: unexpected error {e:?}");
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(left.is_empty(), "a failed import left {left:?}");
        }
    }

    // Into an app database.
    let db = Arc::new(
        redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .unwrap(),
    );
    match Index::import_in(Arc::clone(&db), "imported", stream.as_slice()) {
        Ok(index) => check_imported(&index, &stream),
        Err(e) => {
            assert!(expected_error(&e), "import_in: unexpected error {e:?}");
            let read = db.begin_read().unwrap();
            let tables: Vec<String> = read
                .list_tables()
                .unwrap()
                .map(|t| redb::TableHandle::name(&t).to_string())
                .collect();
            assert!(tables.is_empty(), "a failed import_in left {tables:?}");
        }
    }
}

fuzz_target!(|input: Input| run(input));
