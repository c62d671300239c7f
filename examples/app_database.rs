//! The README's app-database example: a document table and two named indexes in one redb
//! database, written in one commit and read at one commit.

use std::sync::Arc;

use hnswdb::redb::{self, TableDefinition};
use hnswdb::{Index, Options, SearchParams};

/// The app's own table: document id → title.
const DOCS: TableDefinition<u64, &str> = TableDefinition::new("docs");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Arc::new(redb::Database::create(dir.path().join("app.redb"))?);
    let titles = Index::open_or_create_in(Arc::clone(&db), "titles", Options::new(3))?;
    let bodies = Index::open_or_create_in(Arc::clone(&db), "bodies", Options::new(4))?;

    let documents = [
        (1, "Shopping list", [0.9, 0.1, 0.0], [1.0, 0.0, 0.0, 0.1]),
        (2, "Holiday plans", [0.0, 1.0, 0.1], [0.0, 1.0, 0.2, 0.0]),
        (3, "Grocery budget", [0.8, 0.2, 0.1], [0.9, 0.1, 0.0, 0.3]),
    ];
    // One commit: the document rows, their title vectors and their body vectors, or none.
    let mut tx = titles.write_with(&[&bodies])?;
    for (key, title, title_vector, body_vector) in &documents {
        tx.redb().open_table(DOCS)?.insert(key, *title)?;
        tx.insert(*key, title_vector)?;
        tx.on(&bodies)?.insert(*key, body_vector)?;
    }
    tx.commit()?;

    // Dropping a transaction aborts the app's rows and the vectors together.
    let mut tx = titles.write_with(&[&bodies])?;
    tx.redb().open_table(DOCS)?.insert(4, "Never written")?;
    tx.insert(4, &[1.0, 0.0, 0.0])?;
    drop(tx);

    // Search and read the rows at one commit: every hit has its row.
    let read = bodies.read()?;
    let docs = read.redb().open_table(DOCS)?;
    let groceries = |key: u64| {
        docs.get(key)
            .ok()
            .flatten()
            .is_some_and(|title| !title.value().starts_with("Holiday"))
    };
    let hits = read.search_with(
        &[1.0, 0.0, 0.0, 0.0],
        &SearchParams::new(2).filter(groceries),
    )?;
    for hit in &hits {
        let title = docs.get(hit.key)?.expect("every hit has its row");
        println!("{} {:.3} {}", hit.key, hit.distance, title.value());
    }
    assert_eq!(hits.len(), 2);
    assert!(docs.get(4)?.is_none() && !read.contains(4)?);
    assert_eq!(hnswdb::index_names(&db)?, ["bodies", "titles"]);
    Ok(())
}
