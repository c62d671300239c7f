//! hnswdb removes only files it made: `create`, `open`, `compact` and `import` leave every
//! other file beside the index as it was, whatever its name, and an existing file is never
//! replaced. What a killed process left behind under hnswdb's own temporary names is cleaned up.

mod common;

use std::path::{Path, PathBuf};

use hnswdb::{Error, Index, Metric, Options};

/// Files a user may keep beside `photos.hnsw`, named like hnswdb's temporary files of today
/// and of earlier versions; a few hold a redb database, as a backup of the index would.
fn user_files(dir: &Path, redb_bytes: &[u8]) -> Vec<(PathBuf, Vec<u8>)> {
    let text = b"the user's own file\n".to_vec();
    let mut files = Vec::new();
    for name in [
        "photos.hnsw.compact",
        "photos.hnsw.compact-backup",
        "photos.hnsw.creating-123",
        "photos.hnsw.importing-1-2",
        "photos.hnsw.hnswdb-compact",
        "photos.hnsw.hnswdb-compact-backup",
        "photos.hnsw.hnswdb-import-a1B2c3D4.old",
    ] {
        files.push((dir.join(name), text.clone()));
    }
    for name in [
        "photos.hnsw.compact-copy",
        "photos.hnsw.creating-42",
        "photos.hnsw.hnswdb-create-a1B2c3D4x",
    ] {
        files.push((dir.join(name), redb_bytes.to_vec()));
    }
    for (path, bytes) in &files {
        std::fs::write(path, bytes).unwrap();
    }
    files
}

/// Every file in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

fn assert_unchanged(files: &[(PathBuf, Vec<u8>)], after: &str) {
    for (path, bytes) in files {
        let now = std::fs::read(path)
            .unwrap_or_else(|e| panic!("{} is gone after {after}: {e}", path.display()));
        assert!(now == *bytes, "{} changed after {after}", path.display());
    }
}

#[test]
fn files_beside_the_index_survive_every_operation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photos.hnsw");
    let options = Options::new(4).metric(Metric::L2);
    let redb_bytes = {
        let scratch = dir.path().join("scratch.hnsw");
        drop(Index::create(&scratch, options.clone()).unwrap());
        let bytes = std::fs::read(&scratch).unwrap();
        std::fs::remove_file(&scratch).unwrap();
        bytes
    };
    let files = user_files(dir.path(), &redb_bytes);

    let index = Index::create(&path, options.clone()).unwrap();
    assert_unchanged(&files, "create");
    let vectors = common::random_vectors(7, 50, 4);
    common::insert_numbered(&index, &vectors);
    for key in 0..25 {
        index.remove(key).unwrap();
    }
    index.compact().unwrap();
    assert_unchanged(&files, "compact");
    let mut stream = Vec::new();
    index.export(&mut stream).unwrap();
    index.close().unwrap();

    let index = Index::open(&path).unwrap();
    assert_unchanged(&files, "open");
    assert_eq!(index.len(), 25);
    drop(index);
    std::fs::remove_file(&path).unwrap();
    let imported = Index::import(&path, stream.as_slice()).unwrap();
    assert_unchanged(&files, "import");
    assert_eq!(imported.len(), 25);
    drop(imported);
    let mut expected: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    expected.push(path);
    expected.sort();
    assert_eq!(files_in(dir.path()), expected, "temporary files were left");
}

#[test]
fn what_killed_operations_left_is_removed_unless_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.hnsw");
    let options = Options::new(2).metric(Metric::L2);
    Index::create(&path, options.clone())
        .unwrap()
        .insert(1, &[1.0, 2.0])
        .unwrap();
    let temp = |name: &str| dir.path().join(format!("t.hnsw.hnswdb-{name}"));
    // A compact killed part-way (a redb file), a create killed after its link (a second
    // name of the index), an import killed before redb wrote anything (an empty file), a
    // create killed before redb wrote its header (zeros).
    std::fs::copy(&path, temp("compact-Zz09Yy18")).unwrap();
    std::fs::hard_link(&path, temp("create-Qq77Rr66")).unwrap();
    std::fs::write(temp("import-Mm55Nn44"), b"").unwrap();
    std::fs::write(temp("create-Pp66Oo55"), [0u8; 4096]).unwrap();
    // Kept: one open in another handle (a compact under way), one that is not a redb file,
    // and one of another index.
    std::fs::write(temp("create-Kk33Ll22"), b"not redb").unwrap();
    std::fs::copy(&path, temp("import-Aa11Bb22")).unwrap();
    let busy = Index::open(temp("import-Aa11Bb22")).unwrap();
    let other = dir.path().join("t.hnsw2.hnswdb-compact-Zz09Yy18");
    std::fs::copy(&path, &other).unwrap();

    let index = Index::open(&path).unwrap();
    assert_eq!(index.get(1).unwrap(), Some(vec![1.0, 2.0]));
    for gone in [
        "compact-Zz09Yy18",
        "create-Qq77Rr66",
        "import-Mm55Nn44",
        "create-Pp66Oo55",
    ] {
        assert!(!temp(gone).exists(), "{gone} is still there");
    }
    for kept in ["create-Kk33Ll22", "import-Aa11Bb22"] {
        assert!(temp(kept).exists(), "{kept} was removed");
    }
    assert!(other.exists());
    drop((index, busy));

    // `create` cleans up too.
    let fresh = dir.path().join("u.hnsw");
    let left = dir.path().join("u.hnsw.hnswdb-create-Ee99Ff00");
    std::fs::copy(&path, &left).unwrap();
    Index::create(&fresh, options).unwrap();
    assert!(!left.exists());
}

#[test]
fn create_and_import_never_replace_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taken");
    std::fs::write(&path, b"mine").unwrap();
    assert!(matches!(
        Index::create(&path, Options::new(2)),
        Err(Error::AlreadyExists { .. })
    ));
    let source = Index::create(dir.path().join("source.hnsw"), Options::new(2)).unwrap();
    source.insert(1, &[1.0, 0.0]).unwrap();
    let mut stream = Vec::new();
    source.export(&mut stream).unwrap();
    assert!(matches!(
        Index::import(&path, stream.as_slice()),
        Err(Error::AlreadyExists { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"mine");
    drop(source);
    let expected = vec![dir.path().join("source.hnsw"), path];
    assert_eq!(files_in(dir.path()), expected, "temporary files were left");
}
