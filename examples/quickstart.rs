//! The README example: create, insert, search (plain and filtered), a transaction, reopen, verify.

use hnswdb::{Index, Metric, Options, SearchParams};

fn main() -> hnswdb::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("photos.hnsw");

    // One file is the whole index; every write is an ACID transaction.
    let index = Index::create(&path, Options::new(3).metric(Metric::Cosine))?;
    index.insert(7, &[0.9, 0.1, 0.0])?;
    index.insert_batch([(8, [0.0, 1.0, 0.0]), (9, [0.1, 0.9, 0.2])])?;

    let hits = index.search(&[1.0, 0.0, 0.0], 2)?; // nearest first
    assert_eq!(hits[0].key, 7);
    let even = index.search_with(
        &[1.0, 0.0, 0.0],
        &SearchParams::new(1).filter(|k| k % 2 == 0),
    )?;
    assert_eq!(even[0].key, 8);

    let mut tx = index.write()?; // several changes, all or nothing
    tx.insert(10, &[0.5, 0.5, 0.0])?;
    tx.remove(9)?; // repairs the graph in the same transaction
    tx.commit()?;
    drop(index);

    let index = Index::open(&path)?; // options come from the file
    assert_eq!(index.keys()?, vec![7, 8, 10]);
    assert_eq!(index.get(7)?, Some(vec![0.9, 0.1, 0.0]));
    index.verify()?;
    println!(
        "{} vectors, nearest to [1, 0, 0]: key {}",
        index.len(),
        hits[0].key
    );
    Ok(())
}
