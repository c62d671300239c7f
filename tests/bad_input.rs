//! Every bad input gets a clear `Err` (or an empty result where that is the right answer),
//! never a panic: wrong dimension, NaN/inf, zero vector under cosine, k = 0, k > len, an empty
//! index, a missing path, an existing path, a non-index file, an empty file, a truncated index,
//! a newer format, mismatched options, invalid options.

mod common;

use hnswdb::{Error, Index, Metric, Options, SearchParams};
use redb::ReadableTable;

fn index(metric: Metric) -> (tempfile::TempDir, Index) {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::create(dir.path().join("i.hnsw"), Options::new(3).metric(metric)).unwrap();
    (dir, index)
}

#[test]
fn wrong_dimension() {
    let (_dir, index) = index(Metric::L2);
    let err = index.insert(1, &[1.0, 2.0]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Dimension {
                expected: 3,
                got: 2
            }
        ),
        "{err}"
    );
    assert!(matches!(
        index.search(&[1.0; 4], 1),
        Err(Error::Dimension {
            expected: 3,
            got: 4
        })
    ));
    assert!(matches!(index.insert(1, &[]), Err(Error::Dimension { .. })));
    assert!(index.is_empty());
}

#[test]
fn nan_and_infinity() {
    let (_dir, index) = index(Metric::L2);
    for bad in [
        [f32::NAN, 0.0, 0.0],
        [0.0, f32::INFINITY, 0.0],
        [0.0, 0.0, f32::NEG_INFINITY],
    ] {
        assert!(matches!(
            index.insert(1, &bad),
            Err(Error::InvalidVector { .. })
        ));
        assert!(matches!(
            index.search(&bad, 1),
            Err(Error::InvalidVector { .. })
        ));
    }
    assert!(index.is_empty());
}

#[test]
fn zero_vector_under_cosine_only() {
    let (_dir, cosine) = index(Metric::Cosine);
    let err = cosine.insert(1, &[0.0; 3]).unwrap_err();
    assert!(matches!(err, Error::InvalidVector { .. }));
    assert!(err.to_string().contains("zero"), "{err}");
    assert!(matches!(
        cosine.search(&[0.0; 3], 1),
        Err(Error::InvalidVector { .. })
    ));
    let (_dir, l2) = index(Metric::L2);
    l2.insert(1, &[0.0; 3]).unwrap();
    assert_eq!(l2.search(&[0.0; 3], 1).unwrap()[0].key, 1);
}

#[test]
fn k_zero_k_past_len_and_empty_index() {
    let (_dir, index) = index(Metric::L2);
    assert!(index.search(&[1.0, 0.0, 0.0], 5).unwrap().is_empty());
    index.insert(1, &[1.0, 0.0, 0.0]).unwrap();
    index.insert(2, &[0.0, 1.0, 0.0]).unwrap();
    assert!(index.search(&[1.0, 0.0, 0.0], 0).unwrap().is_empty());
    let hits = index.search(&[1.0, 0.0, 0.0], 100).unwrap();
    assert_eq!(hits.iter().map(|h| h.key).collect::<Vec<_>>(), [1, 2]);
    let hits = index
        .search_with(&[1.0, 0.0, 0.0], &SearchParams::new(1).ef(0))
        .unwrap();
    assert_eq!(hits.len(), 1);
}

#[test]
fn unknown_keys() {
    let (_dir, index) = index(Metric::L2);
    assert_eq!(index.get(9).unwrap(), None);
    assert!(!index.contains(9).unwrap());
    assert!(!index.remove(9).unwrap());
}

#[test]
fn invalid_options() {
    let dir = tempfile::tempdir().unwrap();
    for options in [
        Options::new(0),
        Options::new(3).m(1),
        Options::new(3).m(100_000),
        Options::new(3).ef_construction(0),
        Options::new(3).ef_search(0),
        Options::new(3).build_threads(usize::MAX),
        Options::new(3).build_threads(1025),
    ] {
        let err = Index::create(dir.path().join("x.hnsw"), options).unwrap_err();
        assert!(matches!(err, Error::InvalidOptions { .. }), "{err}");
    }
    assert!(!dir.path().join("x.hnsw").exists());
}

#[test]
fn missing_and_existing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.hnsw");
    assert!(matches!(Index::open(&path), Err(Error::NotFound { .. })));
    assert!(!path.exists());
    std::fs::write(&path, b"precious").unwrap();
    assert!(matches!(
        Index::create(&path, Options::new(3)),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn a_file_open_elsewhere_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.hnsw");
    let first = Index::create(&path, Options::new(3)).unwrap();
    let err = Index::open(&path).unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    let err = Index::open_or_create(&path, Options::new(3)).unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    drop(first);
    Index::open(&path).unwrap();
}

#[test]
fn files_that_are_not_indexes_are_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8]); 3] = [
        ("text", b"just some text, not an index\n"),
        ("empty", b""),
        ("short", b"redb"),
    ];
    for (name, contents) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let err = Index::open(&path).unwrap_err();
        assert!(matches!(err, Error::NotAnIndex { .. }), "{name}: {err}");
        assert!(matches!(
            Index::open_or_create(&path, Options::new(3)),
            Err(Error::NotAnIndex { .. })
        ));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            contents,
            "{name} was changed"
        );
    }
    assert!(matches!(
        Index::open(dir.path()),
        Err(Error::NotAnIndex { .. })
    ));
    // A redb database that is not ours.
    let other = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&other).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<u64, u64>::new("t"))
            .unwrap();
        txn.commit().unwrap();
    }
    assert!(matches!(Index::open(&other), Err(Error::NotAnIndex { .. })));
}

#[test]
fn options_mismatch_and_newer_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.hnsw");
    drop(Index::create(&path, Options::new(3).metric(Metric::L2)).unwrap());
    let err = Index::open_or_create(&path, Options::new(4).metric(Metric::L2)).unwrap_err();
    assert!(
        matches!(err, Error::OptionsMismatch { setting: "dim", .. }),
        "{err}"
    );
    let err = Index::open_or_create(&path, Options::new(3).metric(Metric::Cosine)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OptionsMismatch {
                setting: "metric",
                ..
            }
        ),
        "{err}"
    );
    let index =
        Index::open_or_create(&path, Options::new(3).metric(Metric::L2).ef_search(99)).unwrap();
    assert_eq!(index.options().get_ef_search(), 99);
    drop(index);
    assert_eq!(Index::open(&path).unwrap().options().get_ef_search(), 99);

    // Rewrite the format row as a future version, then as the one before this build's: both
    // are refused before anything else is read (an older file goes through export and import).
    let set_format = |version: Option<u32>| -> u32 {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let current;
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("hnswdb.meta"))
                .unwrap();
            let mut format = meta.get("format").unwrap().unwrap().value().to_vec();
            current = u32::from_le_bytes(format[8..12].try_into().unwrap());
            if let Some(version) = version {
                format[8..12].copy_from_slice(&version.to_le_bytes());
                meta.insert("format", format.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
        current
    };
    let supported = set_format(None);
    for found in [supported + 1, supported - 1] {
        set_format(Some(found));
        let err = Index::open(&path).unwrap_err();
        assert!(
            matches!(err, Error::Version { found: f, supported: s } if f == found && s == supported),
            "{err}"
        );
    }
}

#[test]
fn truncated_index_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("i.hnsw");
    let vectors = common::random_vectors(1, 500, 8);
    {
        let index = Index::create(&path, Options::new(8).metric(Metric::L2)).unwrap();
        common::insert_numbered(&index, &vectors);
    }
    let full = std::fs::read(&path).unwrap();
    // The check of a truncated file that opens clean holds for the whole file.
    assert_committed_state(&Index::open(&path).unwrap(), &vectors, full.len());
    for cut in [full.len() / 2, full.len() / 4, 4096, 600, 9] {
        std::fs::write(&path, &full[..cut]).unwrap();
        match Index::open(&path) {
            Err(e) => {
                eprintln!("cut at {cut}: {e}");
                // Damage, not a failing disk: never `Storage`'s "I/O error".
                assert!(matches!(e, Error::Corrupt { .. }), "cut at {cut}: {e:?}");
            }
            // redb may repair a truncated tail; whatever opened must then report the damage
            // or hold a committed state.
            Ok(index) => match index.verify() {
                Err(e) => {
                    eprintln!("cut at {cut}: opened; verify: {e}");
                    assert!(
                        matches!(e, Error::Corrupt { .. }),
                        "cut at {cut}: verify: {e:?}"
                    );
                }
                Ok(()) => {
                    eprintln!("cut at {cut}: opened and verified, {} vectors", index.len());
                    assert_committed_state(&index, &vectors, cut);
                }
            },
        }
    }
}

/// `index`, which verified clean, holds a state some transaction committed: created empty, or
/// with all of `vectors` (inserted in one batch), each under its position, and finds them
/// (`ef` = all of them: exact).
fn assert_committed_state(index: &Index, vectors: &[Vec<f32>], cut: usize) {
    let len = index.len();
    assert!(
        len == 0 || len == vectors.len(),
        "cut at {cut}: {len} vectors, neither the empty index nor the whole batch"
    );
    let keys = index.keys().unwrap();
    assert_eq!(keys, (0..len as u64).collect::<Vec<_>>(), "cut at {cut}");
    for (key, v) in vectors.iter().enumerate().take(len) {
        assert_eq!(
            index.get(key as u64).unwrap().as_ref(),
            Some(v),
            "cut at {cut}"
        );
        let hits = index.search_with(v, &SearchParams::new(1).ef(len)).unwrap();
        assert_eq!(
            (hits[0].key, hits[0].distance),
            (key as u64, 0.0),
            "cut at {cut}"
        );
    }
}
