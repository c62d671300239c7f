//! `Index::export` / `Index::import`: a roundtrip keeps every key, every vector bit for bit and
//! the search answers; any damage to a stream (truncation anywhere, a changed byte anywhere, a
//! newer version, rows that break the rules under a valid checksum) is an error that leaves no
//! file behind.

mod common;

use std::path::Path;

use common::{random_vectors, Rng};
use hnswdb::{Error, Index, Metric, Options, SearchParams};

/// CRC-32 (IEEE) bit by bit: re-seals hand-made streams, independently of the library's own.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Replaces the last four bytes of `stream` with the checksum of the rest.
fn reseal(stream: &mut [u8]) {
    let body = stream.len() - 4;
    let crc = crc32(&stream[..body]);
    stream[body..].copy_from_slice(&crc.to_le_bytes());
}

/// Bytes per row of [`small_stream`], and where row `i` starts.
const ROW: usize = 8 + 12;
const fn row_at(i: usize) -> usize {
    48 + i * ROW
}

/// The names in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Imports `stream` into `dir/target.hnsw`, expecting an error and no file left behind.
fn import_fails(dir: &Path, stream: &[u8]) -> Error {
    let before = files_in(dir);
    let target = dir.join("target.hnsw");
    let err = Index::import(&target, stream).expect_err("a damaged stream was imported");
    assert!(!target.exists());
    assert_eq!(files_in(dir), before, "a failed import left a file");
    err
}

/// Every key's vector, as bit patterns.
fn contents(index: &Index) -> Vec<(u64, Vec<u32>)> {
    index
        .keys()
        .unwrap()
        .into_iter()
        .map(|k| {
            let v = index.get(k).unwrap().unwrap();
            (k, v.iter().map(|x| x.to_bits()).collect())
        })
        .collect()
}

/// A small exported index: 12 rows of dim 3 under L2, keys 0, 7, 14, …: 308 bytes.
fn small_stream(dir: &Path) -> Vec<u8> {
    let index = Index::create(
        dir.join("small.hnsw"),
        Options::new(3).metric(Metric::L2).m(4),
    )
    .unwrap();
    let rows = random_vectors(5, 12, 3);
    index
        .insert_batch(rows.iter().enumerate().map(|(i, v)| (i as u64 * 7, v)))
        .unwrap();
    let mut stream = Vec::new();
    let stats = index.export(&mut stream).unwrap();
    assert_eq!(stats.rows, 12);
    assert_eq!(stats.bytes, stream.len() as u64);
    assert_eq!(stream.len(), 48 + 12 * (8 + 3 * 4) + 20);
    stream
}

#[test]
fn roundtrip_keeps_keys_vectors_options_and_exact_answers() {
    let seed = common::seed(0xE4_0127);
    for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::new(24)
            .metric(metric)
            .m(6)
            .ef_construction(40)
            .ef_search(33)
            .seed(seed);
        let index = Index::create(dir.path().join("a.hnsw"), options).unwrap();
        let mut rng = Rng(seed ^ 1);
        // Sparse keys in random order, then removals and upserts: a history the import drops.
        let vectors = random_vectors(seed, 600, 24);
        let keys: Vec<u64> = (0..600).map(|_| rng.next() >> 8).collect();
        index
            .insert_batch(keys.iter().copied().zip(vectors.iter()))
            .unwrap();
        for &key in keys.iter().step_by(4) {
            index.remove(key).unwrap();
        }
        for (&key, v) in keys
            .iter()
            .skip(1)
            .step_by(9)
            .zip(random_vectors(seed ^ 2, 600, 24))
        {
            index.insert(key, &v).unwrap();
        }

        let mut stream = Vec::new();
        let written = index.export(&mut stream).unwrap();
        assert_eq!(written.rows, index.len() as u64);
        let copy = Index::import(dir.path().join("b.hnsw"), stream.as_slice()).unwrap();
        copy.verify().unwrap();
        assert_eq!(copy.len(), index.len());
        assert_eq!(contents(&copy), contents(&index), "{metric}");
        let (a, b) = (index.options(), copy.options());
        assert_eq!(
            (a.get_dim(), a.get_metric(), a.get_m(), a.get_seed()),
            (b.get_dim(), b.get_metric(), b.get_m(), b.get_seed())
        );
        assert_eq!(
            (a.get_ef_construction(), a.get_ef_search()),
            (b.get_ef_construction(), b.get_ef_search())
        );

        // At an ef covering the whole index both searches are exact: identical hits.
        let exact = SearchParams::new(10).ef(index.len());
        for query in random_vectors(seed ^ 3, 30, 24) {
            let want = index.search_with(&query, &exact).unwrap();
            let got = copy.search_with(&query, &exact).unwrap();
            assert_eq!(got, want, "{metric}");
        }

        // The copy exports to the very same bytes.
        let mut again = Vec::new();
        copy.export(&mut again).unwrap();
        assert!(again == stream, "{metric}: a re-export differs");
    }
}

#[test]
fn the_rebuilt_graph_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new(16).metric(Metric::L2).m(8).seed(99);
    let index = Index::create(dir.path().join("a.hnsw"), options).unwrap();
    // Built one row at a time in ascending key order from empty: what an import does, so the
    // same graph. (A large `insert_batch` may link in parallel, which need not give it.)
    let vectors = random_vectors(21, 1500, 16);
    let mut tx = index.write().unwrap();
    for (i, v) in vectors.iter().enumerate() {
        tx.insert(i as u64 * 3, v).unwrap();
    }
    tx.commit().unwrap();
    let mut stream = Vec::new();
    index.export(&mut stream).unwrap();
    let b = Index::import(dir.path().join("b.hnsw"), stream.as_slice()).unwrap();
    let c = Index::import(dir.path().join("c.hnsw"), stream.as_slice()).unwrap();
    assert_eq!(
        b.stats().unwrap().degree_histogram,
        index.stats().unwrap().degree_histogram
    );
    assert_eq!(
        b.stats().unwrap().nodes_per_level,
        index.stats().unwrap().nodes_per_level
    );
    let narrow = SearchParams::new(10).ef(12);
    for query in random_vectors(22, 100, 16) {
        let want = index.search_with(&query, &narrow).unwrap();
        assert_eq!(b.search_with(&query, &narrow).unwrap(), want);
        assert_eq!(c.search_with(&query, &narrow).unwrap(), want);
    }
}

#[test]
fn an_empty_index_roundtrips() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::new(5).metric(Metric::Cosine).m(3).seed(4);
    let index = Index::create(dir.path().join("a.hnsw"), options).unwrap();
    let mut stream = Vec::new();
    let written = index.export(&mut stream).unwrap();
    assert_eq!((written.rows, written.bytes), (0, 68));
    let copy = Index::import(dir.path().join("b.hnsw"), stream.as_slice()).unwrap();
    assert!(copy.is_empty());
    assert_eq!(copy.options().get_m(), 3);
    assert_eq!(copy.options().get_metric(), Metric::Cosine);
    assert!(copy.search(&[1.0; 5], 3).unwrap().is_empty());
    copy.insert(1, &[1.0; 5]).unwrap();
    copy.verify().unwrap();
}

#[test]
fn import_refuses_an_existing_path_and_an_empty_stream() {
    let dir = tempfile::tempdir().unwrap();
    let stream = small_stream(dir.path());
    let taken = dir.path().join("taken");
    std::fs::write(&taken, "keep me").unwrap();
    let err = Index::import(&taken, stream.as_slice()).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "keep me");
    let err = import_fails(dir.path(), &[]);
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn every_truncation_fails_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let stream = small_stream(dir.path());
    for cut in 0..stream.len() {
        let err = import_fails(dir.path(), &stream[..cut]);
        assert!(
            matches!(&err, Error::InvalidStream { what, .. } if what.contains("truncated")),
            "cut at {cut}: {err}"
        );
    }
    let mut longer = stream.clone();
    longer.push(0);
    let err = import_fails(dir.path(), &longer);
    assert!(err.to_string().contains("after the end"), "{err}");
    // The untouched stream imports.
    Index::import(dir.path().join("fine.hnsw"), stream.as_slice()).unwrap();
}

#[test]
fn every_changed_byte_fails_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let stream = small_stream(dir.path());
    let mut kinds = std::collections::BTreeMap::new();
    for at in 0..stream.len() {
        for mask in [0x01u8, 0xFF] {
            let mut damaged = stream.clone();
            damaged[at] ^= mask;
            let err = import_fails(dir.path(), &damaged);
            assert!(
                matches!(err, Error::InvalidStream { .. } | Error::Version { .. }),
                "byte {at} ^ {mask:#x}: {err}"
            );
            let kind = match &err {
                Error::InvalidStream { what, .. } => {
                    what.split(' ').take(3).collect::<Vec<_>>().join(" ")
                }
                other => other.to_string(),
            };
            *kinds.entry(kind).or_insert(0) += 1;
        }
    }
    eprintln!("errors by kind: {kinds:#?}");
}

#[test]
fn a_newer_or_unknown_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stream = small_stream(dir.path());
    for version in [0u32, 3, 7, u32::MAX] {
        let mut other = stream.clone();
        other[8..12].copy_from_slice(&version.to_le_bytes());
        reseal(&mut other);
        let err = import_fails(dir.path(), &other);
        assert!(
            matches!(err, Error::Version { found, supported: 2 } if found == version),
            "{err}"
        );
    }
}

#[test]
fn rows_that_break_the_rules_are_refused_despite_a_valid_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let stream = small_stream(dir.path());
    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit, &str); 12] = [
        (
            "wrong magic",
            |s| s[0] = b'H',
            "not an hnswdb export stream",
        ),
        ("dim 0", |s| s[12..16].fill(0), "dim must be"),
        (
            "dim too large",
            |s| s[12..16].copy_from_slice(&1_000_000u32.to_le_bytes()),
            "dim must be",
        ),
        ("unknown metric", |s| s[16] = 9, "unknown metric"),
        ("reserved byte set", |s| s[18] = 1, "reserved"),
        (
            "m of 1",
            |s| s[20..24].copy_from_slice(&1u32.to_le_bytes()),
            "m must be",
        ),
        (
            "a repeated key",
            |s| {
                let key: [u8; 8] = s[row_at(3)..row_at(3) + 8].try_into().unwrap();
                s[row_at(4)..row_at(4) + 8].copy_from_slice(&key);
            },
            "strictly ascending",
        ),
        (
            "keys out of order",
            |s| s[row_at(5)..row_at(5) + 8].fill(0),
            "strictly ascending",
        ),
        (
            "a NaN",
            |s| s[row_at(6) + 12..row_at(6) + 16].copy_from_slice(&f32::NAN.to_le_bytes()),
            "NaN",
        ),
        (
            "an infinity",
            |s| s[row_at(2) + 8..row_at(2) + 12].copy_from_slice(&f32::INFINITY.to_le_bytes()),
            "infinity",
        ),
        (
            "a row count that is not the trailer's",
            |s| s[40] = 11,
            "no trailer",
        ),
        (
            "a trailer count that is not the header's",
            |s| {
                let at = s.len() - 12;
                s[at] = 13;
            },
            "the trailer counts 13 rows",
        ),
    ];
    for (name, edit, expected) in cases {
        let mut damaged = stream.clone();
        edit(&mut damaged);
        reseal(&mut damaged);
        let err = import_fails(dir.path(), &damaged);
        assert!(
            matches!(err, Error::InvalidStream { .. }) && err.to_string().contains(expected),
            "{name}: {err}"
        );
    }
    // Without resealing, a changed vector is caught by the checksum alone.
    let mut damaged = stream.clone();
    damaged[row_at(7) + 9] ^= 0x10;
    let err = import_fails(dir.path(), &damaged);
    assert!(err.to_string().contains("checksum mismatch"), "{err}");

    // A zero vector is refused under cosine (an L2 stream relabelled, then zeroed).
    let mut cosine = stream.clone();
    cosine[16] = 1;
    cosine[row_at(1) + 8..row_at(1) + ROW].fill(0);
    reseal(&mut cosine);
    let err = import_fails(dir.path(), &cosine);
    assert!(err.to_string().contains("all zeros"), "{err}");
}

#[test]
fn export_reads_one_snapshot_while_writers_commit() {
    /// A writer that commits an insert into the index being exported at its first write.
    struct Meddler<'a> {
        index: &'a Index,
        out: Vec<u8>,
    }
    impl std::io::Write for Meddler<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.out.is_empty() {
                self.index.insert(1_000_000, &[0.5; 8]).unwrap();
                self.index.remove(3).unwrap();
            }
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create(
        dir.path().join("a.hnsw"),
        Options::new(8).metric(Metric::L2),
    )
    .unwrap();
    let rows = random_vectors(8, 5000, 8);
    index
        .insert_batch(rows.iter().enumerate().map(|(i, v)| (i as u64, v)))
        .unwrap();
    let mut meddler = Meddler {
        index: &index,
        out: Vec::new(),
    };
    let written = index.export(&mut meddler).unwrap();
    assert_eq!(written.rows, 5000);
    assert!(index.contains(1_000_000).unwrap() && !index.contains(3).unwrap());
    let copy = Index::import(dir.path().join("b.hnsw"), meddler.out.as_slice()).unwrap();
    assert_eq!(copy.keys().unwrap(), (0..5000).collect::<Vec<u64>>());
    assert_eq!(copy.get(3).unwrap().unwrap(), rows[3]);
}
