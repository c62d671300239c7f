//! Indexes inside the app's own redb database: named indexes beside the app's tables, the
//! app's rows committed with the vectors, several indexes in one commit, and every error of
//! that API.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hnswdb::redb::{
    self, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle,
};
use hnswdb::{
    delete_index, index_names, Durability, Error, Index, Location, Metric, Options, SearchParams,
};

/// The app's own table: note id → text.
const NOTES: TableDefinition<u64, &str> = TableDefinition::new("notes");
/// Another app table, which hnswdb must never touch.
const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");

fn app_db(dir: &Path) -> Arc<redb::Database> {
    let db = redb::Database::create(dir.join("app.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(SETTINGS)
        .unwrap()
        .insert("theme", "dark")
        .unwrap();
    txn.commit().unwrap();
    Arc::new(db)
}

fn options(dim: usize) -> Options {
    Options::new(dim).metric(Metric::L2)
}

/// A vector of its own for each key (no two keys share one).
fn vector(key: u64, dim: usize) -> Vec<f32> {
    let mut rng = common::Rng(key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ dim as u64);
    (0..dim)
        .map(|_| rng.below(10_000) as f32 / 100.0 + 0.01)
        .collect()
}

fn table_names(db: &redb::Database) -> Vec<String> {
    let txn = db.begin_read().unwrap();
    let mut names: Vec<String> = txn
        .list_tables()
        .unwrap()
        .map(|t| t.name().to_string())
        .collect();
    names.sort();
    names
}

fn settings_untouched(db: &redb::Database) {
    let txn = db.begin_read().unwrap();
    let settings = txn.open_table(SETTINGS).unwrap();
    assert_eq!(settings.len().unwrap(), 1);
    assert_eq!(settings.get("theme").unwrap().unwrap().value(), "dark");
}

#[test]
fn a_named_index_lives_beside_the_apps_tables_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let index = Index::create_in(Arc::clone(&db), "notes", options(4)).unwrap();
    assert_eq!(index.name(), Some("notes"));
    assert_eq!(index.path(), Path::new(""));
    assert_eq!(index.location(), &Location::Named("notes".into()));
    index
        .insert_batch((0..300u64).map(|k| (k, vector(k, 4))))
        .unwrap();
    assert!(index.remove(5).unwrap());
    index.verify().unwrap();
    assert_eq!(index.stats().unwrap().len, 299);
    let hits = index.search(&vector(9, 4), 1).unwrap();
    assert_eq!(hits[0].key, 9);

    // Every table is the app's or carries the documented prefix.
    let tables = table_names(&db);
    assert!(tables.contains(&"settings".to_string()));
    for name in &tables {
        assert!(
            name == "settings" || name.starts_with("hnswdb/notes/"),
            "unexpected table {name}"
        );
    }
    settings_untouched(&db);

    // Reopen the whole database from its file.
    drop(index);
    drop(db);
    let db = Arc::new(redb::Database::open(dir.path().join("app.redb")).unwrap());
    assert_eq!(index_names(&db).unwrap(), ["notes"]);
    let index = Index::open_in(Arc::clone(&db), "notes").unwrap();
    index.wait_loaded().unwrap();
    assert_eq!(index.len(), 299);
    assert!(!index.contains(5).unwrap());
    assert_eq!(index.get(9).unwrap().unwrap(), vector(9, 4));
    index.verify().unwrap();
    settings_untouched(&db);
}

#[test]
fn every_error_of_the_named_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let bad_names = [
        String::new(),
        "a".repeat(65),
        "a/b".into(),
        "with space".into(),
        "é".into(),
        "x~import".into(),
    ];
    for name in &bad_names {
        let e = Index::create_in(Arc::clone(&db), name, options(2)).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidName { name: n, .. } if n == name),
            "{e}"
        );
        assert!(matches!(
            Index::open_in(Arc::clone(&db), name),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            delete_index(&db, name),
            Err(Error::InvalidName { .. })
        ));
    }
    // 64 bytes of every allowed kind is fine.
    let longest = format!("{}-_.9Z", "a".repeat(59));
    assert_eq!(longest.len(), 64);
    drop(Index::create_in(Arc::clone(&db), &longest, options(2)).unwrap());

    assert!(matches!(
        Index::open_in(Arc::clone(&db), "missing"),
        Err(Error::NotFound { index: Location::Named(n) }) if n == "missing"
    ));
    let index = Index::create_in(Arc::clone(&db), "a", options(2)).unwrap();
    let e = Index::open_in(Arc::clone(&db), "a").unwrap_err();
    assert!(
        matches!(e, Error::InUse { index: Location::Named(ref n) } if n == "a"),
        "{e}"
    );
    assert!(matches!(
        Index::create_in(Arc::clone(&db), "a", options(2)),
        Err(Error::InUse { .. })
    ));
    assert!(matches!(delete_index(&db, "a"), Err(Error::InUse { .. })));
    assert!(matches!(
        index.compact(),
        Err(Error::NotInSharedDatabase {
            operation: "compact",
            ..
        })
    ));
    drop(index);
    assert!(matches!(
        Index::create_in(Arc::clone(&db), "a", options(2)),
        Err(Error::AlreadyExists { index: Location::Named(n) }) if n == "a"
    ));
    let e = Index::open_or_create_in(Arc::clone(&db), "a", options(3)).unwrap_err();
    assert!(
        matches!(e, Error::OptionsMismatch { setting: "dim", .. }),
        "{e}"
    );
    assert!(matches!(
        Index::open_or_create_in(Arc::clone(&db), "a", Options::new(2).metric(Metric::Dot)),
        Err(Error::OptionsMismatch {
            setting: "metric",
            ..
        })
    ));
    // The non-structural settings are adopted and stored.
    let index = Index::open_or_create_in(
        Arc::clone(&db),
        "a",
        options(2).ef_search(99).durability(Durability::Eventual),
    )
    .unwrap();
    drop(index);
    let index = Index::open_in(Arc::clone(&db), "a").unwrap();
    assert_eq!(index.options().get_ef_search(), 99);
    assert_eq!(index.options().get_durability(), Durability::Eventual);
    drop(index);
    // A new one is created.
    let b = Index::open_or_create_in(Arc::clone(&db), "b", options(5)).unwrap();
    assert_eq!(b.dim(), 5);

    // Bad vectors and queries, as for files.
    assert!(matches!(
        b.insert(1, &[1.0; 4]),
        Err(Error::Dimension {
            expected: 5,
            got: 4
        })
    ));
    assert!(matches!(
        b.insert(1, &[f32::NAN; 5]),
        Err(Error::InvalidVector { .. })
    ));
    drop(b);
    assert_eq!(index_names(&db).unwrap(), vec!["a", longest.as_str(), "b"]);
    settings_untouched(&db);
}

#[test]
fn tables_of_another_kind_under_our_prefix_are_not_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    // An app table that happens to be called like our meta table, without our format record.
    let txn = db.begin_write().unwrap();
    let fake: TableDefinition<&str, &[u8]> = TableDefinition::new("hnswdb/fake/meta");
    txn.open_table(fake)
        .unwrap()
        .insert("other", b"xyz".as_slice())
        .unwrap();
    txn.commit().unwrap();
    assert!(matches!(
        Index::open_in(Arc::clone(&db), "fake"),
        Err(Error::NotAnIndex { index: Location::Named(n), .. }) if n == "fake"
    ));
    assert!(matches!(
        Index::create_in(Arc::clone(&db), "fake", options(2)),
        Err(Error::AlreadyExists { .. })
    ));
    settings_untouched(&db);
}

#[test]
fn two_indexes_in_one_file_stay_independent_and_delete_index_removes_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let titles = Index::create_in(Arc::clone(&db), "titles", options(3)).unwrap();
    let bodies = Index::create_in(Arc::clone(&db), "bodies", Options::new(8)).unwrap();
    titles
        .insert_batch((0..200u64).map(|k| (k, vector(k, 3))))
        .unwrap();
    bodies
        .insert_batch((100..400u64).map(|k| (k, vector(k, 8))))
        .unwrap();
    for k in 0..50 {
        titles.remove(k).unwrap();
    }
    bodies.insert(7, &vector(7, 8)).unwrap();
    assert_eq!(titles.len(), 150);
    assert_eq!(bodies.len(), 301);
    assert!(!titles.contains(7).unwrap());
    assert!(bodies.contains(7).unwrap());
    assert_eq!(titles.get(150).unwrap().unwrap(), vector(150, 3));
    assert_eq!(bodies.get(150).unwrap().unwrap(), vector(150, 8));
    titles.verify().unwrap();
    bodies.verify().unwrap();

    let before: Vec<String> = table_names(&db);
    drop(titles);
    assert!(delete_index(&db, "titles").unwrap());
    assert!(!delete_index(&db, "titles").unwrap());
    let after = table_names(&db);
    let removed: Vec<&String> = before.iter().filter(|t| !after.contains(t)).collect();
    assert_eq!(removed.len(), 8, "{removed:?}");
    assert!(removed.iter().all(|t| t.starts_with("hnswdb/titles/")));
    assert!(after.iter().all(|t| before.contains(t)));
    assert_eq!(index_names(&db).unwrap(), ["bodies"]);

    // The other index and the app's table are as they were.
    assert_eq!(bodies.len(), 301);
    bodies.verify().unwrap();
    assert_eq!(bodies.search(&vector(300, 8), 1).unwrap()[0].key, 300);
    settings_untouched(&db);
    // The name is free again.
    let titles = Index::create_in(Arc::clone(&db), "titles", options(3)).unwrap();
    assert!(titles.is_empty());
}

#[test]
fn the_apps_rows_commit_with_the_vectors_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let index = Index::create_in(Arc::clone(&db), "notes", options(4)).unwrap();

    let mut tx = index.write().unwrap();
    tx.redb()
        .open_table(NOTES)
        .unwrap()
        .insert(1, "first")
        .unwrap();
    tx.insert(1, &vector(1, 4)).unwrap();
    tx.commit().unwrap();

    // Dropped: neither the row nor the vector.
    let mut tx = index.write().unwrap();
    tx.redb()
        .open_table(NOTES)
        .unwrap()
        .insert(2, "second")
        .unwrap();
    tx.insert(2, &vector(2, 4)).unwrap();
    drop(tx);

    let read = index.read().unwrap();
    let notes = read.redb().open_table(NOTES).unwrap();
    assert_eq!(notes.get(1).unwrap().unwrap().value(), "first");
    assert!(notes.get(2).unwrap().is_none());
    assert!(read.contains(1).unwrap());
    assert!(!read.contains(2).unwrap());
    assert_eq!(read.len(), 1);
    drop(notes);
    drop(read);

    // The app's own write transactions interleave with the index's.
    for k in 10..20u64 {
        let txn = db.begin_write().unwrap();
        txn.open_table(NOTES)
            .unwrap()
            .insert(k, "app only")
            .unwrap();
        txn.commit().unwrap();
        index.insert(k, &vector(k, 4)).unwrap();
    }
    let read = index.read().unwrap();
    assert_eq!(read.len(), 11);
    assert_eq!(read.redb().open_table(NOTES).unwrap().len().unwrap(), 11);
    assert_eq!(read.search(&vector(15, 4), 1).unwrap()[0].key, 15);
    index.verify().unwrap();
    settings_untouched(&db);
}

#[test]
fn one_commit_over_two_indexes_and_the_apps_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let titles = Index::create_in(Arc::clone(&db), "titles", options(3)).unwrap();
    let bodies = Index::create_in(Arc::clone(&db), "bodies", options(6)).unwrap();

    let write_doc = |tx: &mut hnswdb::WriteTxn<'_>, key: u64| {
        tx.redb()
            .open_table(NOTES)
            .unwrap()
            .insert(key, "doc")
            .unwrap();
        tx.insert(key, &vector(key, 3)).unwrap();
        tx.on(&bodies)
            .unwrap()
            .insert(key, &vector(key, 6))
            .unwrap();
    };
    let mut tx = titles.write_with(&[&bodies]).unwrap();
    for key in 0..40 {
        write_doc(&mut tx, key);
    }
    assert_eq!(tx.on(&bodies).unwrap().len(), 40);
    tx.commit().unwrap();
    assert_eq!((titles.len(), bodies.len()), (40, 40));

    // Aborted: nothing of the three.
    let mut tx = titles.write_with(&[&bodies]).unwrap();
    write_doc(&mut tx, 100);
    assert!(tx.on(&bodies).unwrap().remove(3).unwrap());
    drop(tx);
    assert_eq!((titles.len(), bodies.len()), (40, 40));
    assert!(bodies.contains(3).unwrap());
    let read = db.begin_read().unwrap();
    assert_eq!(read.open_table(NOTES).unwrap().len().unwrap(), 40);
    drop(read);

    // A removal across all three.
    let mut tx = bodies.write_with(&[&titles]).unwrap();
    tx.redb().open_table(NOTES).unwrap().remove(3).unwrap();
    assert!(tx.remove(3).unwrap());
    assert!(tx.on(&titles).unwrap().remove(3).unwrap());
    tx.commit().unwrap();
    assert_eq!((titles.len(), bodies.len()), (39, 39));
    titles.verify().unwrap();
    bodies.verify().unwrap();

    // Errors: an index not in the transaction, one listed twice, another database.
    let other = Index::create_in(Arc::clone(&db), "other", options(3)).unwrap();
    let mut tx = titles.write().unwrap();
    assert!(matches!(tx.on(&other), Err(Error::NotInTransaction)));
    drop(tx);
    assert!(matches!(
        titles.write_with(&[&titles]),
        Err(Error::InvalidOptions { .. })
    ));
    let elsewhere = Index::in_memory(options(3)).unwrap();
    assert!(matches!(
        titles.write_with(&[&elsewhere]),
        Err(Error::InvalidOptions { .. })
    ));
    settings_untouched(&db);
}

#[test]
fn a_thread_in_a_write_of_one_index_gets_an_error_not_a_deadlock_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let a = Index::create_in(Arc::clone(&db), "a", options(2)).unwrap();
    let b = Index::create_in(Arc::clone(&db), "b", options(2)).unwrap();
    let mut tx = a.write().unwrap();
    tx.insert(1, &[1.0, 0.0]).unwrap();
    assert!(matches!(b.write(), Err(Error::WriteInProgress)));
    assert!(matches!(
        b.insert(1, &[1.0, 0.0]),
        Err(Error::WriteInProgress)
    ));
    assert!(matches!(b.checkpoint(), Ok(()))); // nothing to checkpoint: no write needed
    assert!(matches!(
        Index::create_in(Arc::clone(&db), "c", options(2)),
        Err(Error::WriteInProgress)
    ));
    assert!(matches!(
        delete_index(&db, "zzz"),
        Err(Error::WriteInProgress)
    ));
    // Reads go on.
    assert_eq!(b.search(&[1.0, 0.0], 1).unwrap().len(), 0);
    assert!(b.read().is_ok());
    tx.commit().unwrap();
    b.insert(1, &[1.0, 0.0]).unwrap();
    // Another thread waits for the writer instead.
    let mut tx = a.write().unwrap();
    tx.insert(2, &[0.0, 1.0]).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| b.insert(2, &[0.0, 1.0]));
        std::thread::sleep(std::time::Duration::from_millis(50));
        tx.commit().unwrap();
        waiter.join().unwrap().unwrap();
    });
    assert_eq!((a.len(), b.len()), (2, 2));
}

#[test]
fn a_filter_reads_the_apps_table_at_the_searchs_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let index = Index::create_in(Arc::clone(&db), "notes", options(4)).unwrap();
    let mut tx = index.write().unwrap();
    {
        let mut notes = tx.redb().open_table(NOTES).unwrap();
        for k in 0..500u64 {
            notes
                .insert(k, if k % 10 == 0 { "pinned" } else { "plain" })
                .unwrap();
        }
    }
    tx.insert_batch((0..500u64).map(|k| (k, vector(k, 4))))
        .unwrap();
    tx.commit().unwrap();

    let read = index.read().unwrap();
    let notes = read.redb().open_table(NOTES).unwrap();
    let pinned = |key: u64| notes.get(key).unwrap().unwrap().value() == "pinned";
    let hits = read
        .search_with(&vector(3, 4), &SearchParams::new(5).filter(pinned))
        .unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h.key % 10 == 0), "{hits:?}");
    // A borrowed local set works as well, through the index as through a ReadTxn.
    let allowed: HashSet<u64> = [7, 8, 9].into();
    let params = SearchParams::new(10).filter(|k| allowed.contains(&k));
    let mut keys: Vec<u64> = index
        .search_with(&vector(3, 4), &params)
        .unwrap()
        .iter()
        .map(|h| h.key)
        .collect();
    keys.sort();
    assert_eq!(keys, [7, 8, 9]);
    assert_eq!(read.search_with(&vector(3, 4), &params).unwrap().len(), 3);
    assert_eq!(read.get(7).unwrap().unwrap(), vector(7, 4));
}

#[test]
fn readers_never_see_a_hit_without_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let index = Index::create_in(Arc::clone(&db), "notes", options(4)).unwrap();
    let seed = common::seed(12);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (index, stop) = (&index, &stop);
                s.spawn(move || {
                    let mut rng = common::Rng(seed ^ r);
                    let mut checked = 0u64;
                    while !stop.load(Ordering::Relaxed) || checked == 0 {
                        let read = index.read().unwrap();
                        let query = vector(rng.below(300), 4);
                        let hits = read.search(&query, 10).unwrap();
                        let notes = match read.redb().open_table(NOTES) {
                            Ok(notes) => notes,
                            Err(redb::TableError::TableDoesNotExist(_)) => {
                                assert!(hits.is_empty(), "hits before any row: {hits:?}");
                                continue;
                            }
                            Err(e) => panic!("{e}"),
                        };
                        assert_eq!(notes.len().unwrap(), read.len() as u64);
                        for hit in &hits {
                            let row = notes.get(hit.key).unwrap();
                            let row = row.unwrap_or_else(|| panic!("hit {} has no row", hit.key));
                            assert_eq!(row.value(), format!("note {}", hit.key));
                        }
                        checked += 1;
                    }
                    checked
                })
            })
            .collect();
        let mut rng = common::Rng(seed);
        let mut live = BTreeMap::new();
        for _ in 0..300 {
            let mut tx = index.write().unwrap();
            for _ in 0..1 + rng.below(4) {
                let key = rng.below(300);
                if live.contains_key(&key) && rng.chance(40) {
                    tx.redb().open_table(NOTES).unwrap().remove(key).unwrap();
                    assert!(tx.remove(key).unwrap());
                    live.remove(&key);
                } else {
                    tx.redb()
                        .open_table(NOTES)
                        .unwrap()
                        .insert(key, format!("note {key}").as_str())
                        .unwrap();
                    tx.insert(key, &vector(key, 4)).unwrap();
                    live.insert(key, ());
                }
            }
            if rng.chance(10) {
                drop(tx);
            } else {
                tx.commit().unwrap();
            }
            live.retain(|k, _| index.contains(*k).unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        let checked: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        eprintln!("readers checked {checked} reads");
    });
    index.verify().unwrap();
}

#[test]
fn a_damaged_index_table_is_corrupt_while_the_apps_tables_read_fine() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let index = Index::create_in(Arc::clone(&db), "notes", options(4)).unwrap();
    index
        .insert_batch((0..50u64).map(|k| (k, vector(k, 4))))
        .unwrap();
    drop(index);
    // Damage: a node's vector replaced by bytes of the wrong length, through the app's database.
    let txn = db.begin_write().unwrap();
    let vectors: TableDefinition<u64, &[u8]> = TableDefinition::new("hnswdb/notes/vectors");
    txn.open_table(vectors)
        .unwrap()
        .insert(3, [1u8, 2, 3].as_slice())
        .unwrap();
    txn.commit().unwrap();

    let index = Index::open_in(Arc::clone(&db), "notes").unwrap();
    let report = index.verify_report().unwrap();
    assert!(!report.problems.is_empty(), "{report:?}");
    assert!(matches!(index.verify(), Err(Error::Corrupt { .. })));
    let key = (0..50u64)
        .find(|&k| matches!(index.get(k), Err(Error::Corrupt { .. })))
        .expect("the damaged vector is Corrupt when read");
    assert!(index.get(key).is_err());
    settings_untouched(&db);

    // A damaged format record: not an index any more, or a newer version.
    drop(index);
    let meta: TableDefinition<&str, &[u8]> = TableDefinition::new("hnswdb/notes/meta");
    let txn = db.begin_write().unwrap();
    let mut format = txn
        .open_table(meta)
        .unwrap()
        .get("format")
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    format[8..12].copy_from_slice(&3u32.to_le_bytes());
    txn.open_table(meta)
        .unwrap()
        .insert("format", format.as_slice())
        .unwrap();
    txn.commit().unwrap();
    assert!(matches!(
        Index::open_in(Arc::clone(&db), "notes"),
        Err(Error::Version { found: 3, .. })
    ));
    settings_untouched(&db);
}

#[test]
fn export_and_import_in_an_app_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let index = Index::create_in(Arc::clone(&db), "src", options(4)).unwrap();
    index
        .insert_batch((0..100u64).map(|k| (k, vector(k, 4))))
        .unwrap();
    let mut stream = Vec::new();
    index.export(&mut stream).unwrap();
    let copy = Index::import_in(Arc::clone(&db), "copy", stream.as_slice()).unwrap();
    assert_eq!(copy.keys().unwrap(), index.keys().unwrap());
    copy.verify().unwrap();
    assert!(matches!(
        Index::import_in(Arc::clone(&db), "src", stream.as_slice()),
        Err(Error::InUse { .. })
    ));
    drop(copy);
    assert!(matches!(
        Index::import_in(Arc::clone(&db), "copy", stream.as_slice()),
        Err(Error::AlreadyExists { .. })
    ));
    // A truncated stream leaves no index and no staging tables.
    let before = table_names(&db);
    let cut = &stream[..stream.len() - 10];
    assert!(Index::import_in(Arc::clone(&db), "broken", cut).is_err());
    assert_eq!(table_names(&db), before);
    assert_eq!(index_names(&db).unwrap(), ["copy", "src"]);
    // Into a file of its own, too.
    let file = Index::import(dir.path().join("copy.hnsw"), stream.as_slice()).unwrap();
    assert_eq!(file.len(), 100);
    settings_untouched(&db);
}

#[test]
fn eventual_durability_per_handle_and_checkpoint_in_an_app_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let eventual = Index::create_in(
        Arc::clone(&db),
        "fast",
        options(2).durability(Durability::Eventual),
    )
    .unwrap();
    let immediate = Index::create_in(Arc::clone(&db), "safe", options(2)).unwrap();
    for k in 0..20u64 {
        eventual.insert(k, &[k as f32, 1.0]).unwrap();
        immediate.insert(k, &[k as f32, 1.0]).unwrap();
    }
    eventual.checkpoint().unwrap();
    eventual.close().unwrap();
    immediate.close().unwrap();
    drop(db);
    let db = Arc::new(redb::Database::open(dir.path().join("app.redb")).unwrap());
    for name in ["fast", "safe"] {
        let index = Index::open_in(Arc::clone(&db), name).unwrap();
        assert_eq!(index.len(), 20);
        index.verify().unwrap();
    }
}

#[test]
fn opening_an_app_database_as_an_index_file_names_its_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let path = dir.path().join("app.redb");
    drop(db);
    let e = Index::open(&path).unwrap_err();
    assert!(
        matches!(&e, Error::NotAnIndex { detail, .. } if detail == "a redb database without hnswdb tables"),
        "{e}"
    );
    let db = Arc::new(redb::Database::open(&path).unwrap());
    drop(Index::create_in(Arc::clone(&db), "photos", options(2)).unwrap());
    drop(db);
    let e = Index::open(&path).unwrap_err();
    assert!(
        matches!(&e, Error::NotAnIndex { detail, .. } if detail.contains("photos") && detail.contains("open_in")),
        "{e}"
    );
    // Refused without a change to the file.
    let db = Arc::new(redb::Database::open(&path).unwrap());
    settings_untouched(&db);
    assert_eq!(index_names(&db).unwrap(), ["photos"]);
}

#[test]
fn a_read_txn_is_owned_send_and_sync() {
    fn owned_send_sync<T: Send + Sync + 'static>() {}
    owned_send_sync::<hnswdb::ReadTxn>();
    let dir = tempfile::tempdir().unwrap();
    let db = app_db(dir.path());
    let index = Index::create_in(Arc::clone(&db), "notes", options(2)).unwrap();
    index.insert(1, &[1.0, 0.0]).unwrap();
    let read = index.read().unwrap();
    index.insert(2, &[0.0, 1.0]).unwrap();
    // It outlives the handle and keeps showing its commit.
    drop(index);
    let hits = std::thread::spawn(move || read.search(&[0.0, 1.0], 2).unwrap())
        .join()
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].key, 1);
    let index = Index::open_in(db, "notes").unwrap();
    assert_eq!(index.len(), 2);
}

#[test]
fn index_files_and_app_databases_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.hnsw");
    let index = Index::create(&path, options(2)).unwrap();
    index.insert(1, &[1.0, 0.0]).unwrap();
    drop(index);
    // A named index in an index file is refused: a compaction of the file would drop it.
    let db = Arc::new(redb::Database::open(&path).unwrap());
    let e = Index::create_in(Arc::clone(&db), "extra", options(2)).unwrap_err();
    assert!(matches!(e, Error::InvalidOptions { .. }), "{e}");
    assert!(index_names(&db).unwrap().is_empty());
    // The app's own table written into an index file is never dropped by a compaction.
    let txn = db.begin_write().unwrap();
    txn.open_table(SETTINGS)
        .unwrap()
        .insert("theme", "dark")
        .unwrap();
    txn.commit().unwrap();
    drop(db);
    let index = Index::open(&path).unwrap();
    assert!(matches!(
        index.compact(),
        Err(Error::NotInSharedDatabase {
            operation: "compact",
            ..
        })
    ));
    assert_eq!(index.len(), 1);
    drop(index);
    settings_untouched(&redb::Database::open(&path).unwrap());
}
