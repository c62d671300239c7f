//! Creating and opening the redb file, and its index-wide rows.
//!
//! redb (measured with 4.6) still panics on some damaged files: in `open` (allocator state,
//! table roots), in plain reads (a damaged B-tree page: reads check no checksum), in writes and
//! commits, and in the close after an earlier panic poisoned its locks. So every call into redb
//! runs under `catch_unwind`, a panic becomes `Error::Corrupt`, and the handle refuses writes
//! after one. An app built with `panic = "abort"` gets no such help: there a damaged file can
//! abort the process, and `Index::open_checked` is the guard.

use std::fs::File;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use redb::{
    Database, ReadTransaction, ReadableDatabase, TableError, TableHandle, WriteTransaction,
};

use super::codec::{self, Header};
use super::schema::{TableNames, FORMAT_KEY, FORMAT_VERSION, HEADER_KEY, MAGIC};
use crate::error::{Error, Location, Result};

/// The first bytes of every redb file (redb's `MAGICNUMBER`).
pub(crate) const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Size of redb's page cache over a backend of the fault tests (`over_backend`): the size an
/// index file with the default budget gets (`options::page_cache_bytes`).
#[cfg(feature = "test-hooks")]
const BACKEND_CACHE_BYTES: usize = 64 << 20;

/// redb's page cache over its in-memory backend, whose reads are copies from memory already.
const IN_MEMORY_CACHE_BYTES: usize = 16 << 20;

/// Ends the location of every `Corrupt` error made from a caught panic.
pub(crate) const PANIC_MARK: &str = "(panic caught)";

/// Runs `f`, turning a panic inside redb into `Error::Corrupt`.
pub(crate) fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::corrupt(
            format!("the storage engine panicked: {message}"),
            format!("{what} {PANIC_MARK}"),
        ))
    })
}

/// An open redb database and the names of one index's tables in it. A database hnswdb
/// created or opened itself (a file or memory of its own) is closed under the panic guard
/// (redb's own close can panic when an earlier, caught panic on a damaged file poisoned its
/// state); an app's database is the app's to close: dropping a `Db` over it only lets go of it.
pub(crate) struct Db {
    database: Option<Arc<Database>>,
    names: TableNames,
    owned: bool,
}

impl std::ops::Deref for Db {
    type Target = Database;
    fn deref(&self) -> &Database {
        self.database
            .as_ref()
            .expect("a Db holds its database until dropped")
    }
}

impl Db {
    /// A database of hnswdb's own, holding one index under [`TableNames::whole_file`].
    fn owned(database: Database) -> Db {
        Db {
            database: Some(Arc::new(database)),
            names: TableNames::whole_file(),
            owned: true,
        }
    }

    /// The app's `database`, holding the index whose tables are `names` (among others).
    pub(crate) fn shared(database: Arc<Database>, names: TableNames) -> Db {
        Db {
            database: Some(database),
            names,
            owned: false,
        }
    }

    /// A stand-in for a database that was closed: it must not be used.
    pub(crate) fn closed() -> Db {
        Db {
            database: None,
            names: TableNames::whole_file(),
            owned: true,
        }
    }

    /// The names of the index's tables.
    pub(crate) fn names(&self) -> &TableNames {
        &self.names
    }

    /// The database, shared.
    pub(crate) fn arc(&self) -> &Arc<Database> {
        self.database
            .as_ref()
            .expect("a Db holds its database until dropped")
    }

    /// Gives the free space at the end of a database of hnswdb's own back to the file system:
    /// redb grows a file by doubling it (up to 4 GiB), and a fresh copy keeps the slack of its
    /// last doubling until redb compacts it. Needs the database to itself (no transaction, no
    /// other handle); an app's database is left alone.
    pub(crate) fn shrink(&mut self) -> Result<()> {
        if !self.owned {
            return Ok(());
        }
        let database = self
            .database
            .as_mut()
            .and_then(Arc::get_mut)
            .expect("a fresh database is held by its Db alone");
        guarded("compact", || {
            while database.compact()? {}
            Ok(())
        })
    }

    /// Whether the database belongs to the app (hnswdb holds one index among its tables).
    pub(crate) fn is_shared(&self) -> bool {
        !self.owned
    }

    /// Closes a database of hnswdb's own, returning the error a drop would swallow; lets go of
    /// an app's database.
    pub(crate) fn close(mut self) -> Result<()> {
        let Some(db) = self.database.take() else {
            return Ok(());
        };
        match Arc::try_unwrap(db) {
            Ok(db) if self.owned => guarded("close", || Ok(db.close()?)),
            _ => Ok(()),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let db = self.database.take();
        let _ = guarded("close", || {
            drop(db);
            Ok(())
        });
    }
}

/// A new, empty database in `file` (an empty file, open for reading and writing), with a page
/// cache of `cache` bytes (it serves writes and what hnswdb's cache does not hold).
pub(crate) fn create_database(file: File, cache: usize) -> Result<Db> {
    guarded("create", || {
        Ok(Db::owned(
            Database::builder()
                .set_cache_size(cache)
                .create_with_backend(redb::backends::FileBackend::new(file)?)?,
        ))
    })
}

/// A new, empty database in memory (redb's in-memory backend).
pub(crate) fn create_in_memory() -> Result<Db> {
    guarded("create", || {
        Ok(Db::owned(
            Database::builder()
                .set_cache_size(IN_MEMORY_CACHE_BYTES)
                .create_with_backend(redb::backends::InMemoryBackend::new())?,
        ))
    })
}

#[cfg(feature = "test-hooks")]
impl Db {
    /// A database of hnswdb's own over any redb storage backend, for the tests of power loss,
    /// torn writes and I/O errors (`crate::backend_hook`): redb creates a database in an empty
    /// backend and opens (recovering if need be) the one in a non-empty backend. The same
    /// builder and cache size as an index file, so the index over it makes the calls a file
    /// index makes. Only with the `test-hooks` feature.
    pub(crate) fn over_backend(
        backend: impl redb::StorageBackend,
        location: &Location,
    ) -> Result<Db> {
        guarded("open", || {
            Database::builder()
                .set_cache_size(BACKEND_CACHE_BYTES)
                .create_with_backend(backend)
                .map(Db::owned)
                .map_err(|e| open_error(e, location))
        })
    }
}

/// Opens the database at `path` with a page cache of `cache` bytes, refusing files that are
/// missing, empty or not redb files without changing them.
pub(crate) fn open_database(path: &Path, cache: usize) -> Result<Db> {
    let not_ours = |detail: &str| Error::NotAnIndex {
        index: Location::File(path.to_owned()),
        detail: detail.into(),
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                index: Location::File(path.to_owned()),
            })
        }
        Err(e) => return Err(Error::Io(e)),
    };
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(not_ours("it is a directory"));
    }
    if meta.len() == 0 {
        return Err(not_ours("the file is empty"));
    }
    let mut magic = [0u8; REDB_MAGIC.len()];
    if file.read_exact(&mut magic).is_err() || magic != REDB_MAGIC {
        return Err(not_ours("it is not a redb database"));
    }
    drop(file);
    guarded("open", || {
        Database::builder()
            .set_cache_size(cache)
            .open(path)
            .map(Db::owned)
            .map_err(|e| open_error(e, &Location::File(path.to_owned())))
    })
}

/// What a failed redb open of the index at `location` means: another handle holds it (`InUse`),
/// the disk failed (`Storage`: an I/O error is no damage, and a retry may work), or the file is
/// damaged (`Corrupt`; redb reports some damage as an I/O error of kind `InvalidData`).
pub(crate) fn open_error(error: redb::DatabaseError, location: &Location) -> Error {
    use redb::{DatabaseError, StorageError};
    match error {
        DatabaseError::DatabaseAlreadyOpen => Error::InUse {
            index: location.clone(),
        },
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() != std::io::ErrorKind::InvalidData =>
        {
            DatabaseError::Storage(StorageError::Io(io)).into()
        }
        DatabaseError::Storage(StorageError::PreviousIo) => {
            DatabaseError::Storage(StorageError::PreviousIo).into()
        }
        other => Error::corrupt(format!("redb could not open the file: {other}"), "open"),
    }
}

/// redb's full check of the file: every page checksum and the allocator state (O(file)).
/// redb repairs what it can; damage it cannot repair is `Error::Corrupt`.
pub(crate) fn check_storage(db: &mut Db) -> Result<()> {
    let database = db
        .database
        .as_mut()
        .and_then(Arc::get_mut)
        .expect("the storage check runs on a database of hnswdb's own, before it is shared");
    guarded("check", || match database.check_integrity() {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::corrupt(
            format!("redb's integrity check failed: {e}"),
            "file pages",
        )),
    })
}

/// Whether an open database holds the redb file at `path` (its exclusive lock is taken).
pub(crate) fn held(path: &Path) -> bool {
    let opened = guarded("open", || {
        Ok(Database::builder().set_cache_size(0).open(path).map(drop))
    });
    matches!(opened, Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)))
}

/// Creates every table of `names` and writes the format row and `header`.
pub(crate) fn init_tables(
    txn: &WriteTransaction,
    names: &TableNames,
    header: &Header,
) -> Result<()> {
    {
        let mut meta = txn.open_table(names.meta())?;
        let mut format = MAGIC.to_vec();
        format.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        meta.insert(FORMAT_KEY, format.as_slice())?;
    }
    txn.open_table(names.keys())?;
    txn.open_table(names.nodes())?;
    txn.open_table(names.vectors())?;
    txn.open_table(names.links())?;
    txn.open_table(names.reverse())?;
    txn.open_table(names.free_ids())?;
    txn.open_table(names.codes())?;
    write_header(txn, names, header)
}

/// Writes `header`.
pub(crate) fn write_header(
    txn: &WriteTransaction,
    names: &TableNames,
    header: &Header,
) -> Result<()> {
    let mut meta = txn.open_table(names.meta())?;
    meta.insert(HEADER_KEY, codec::encode_header(header).as_slice())?;
    Ok(())
}

/// Whether the index of `names` has tables in the database (its `meta` table exists).
pub(crate) fn index_exists(txn: &ReadTransaction, names: &TableNames) -> Result<bool> {
    match txn.open_table(names.meta()) {
        Ok(_) => Ok(true),
        Err(TableError::TableDoesNotExist(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Reads and checks the format row, then the header. A database without the tables of `names`
/// or without our magic is `NotAnIndex` at `location`; another format version is `Version`.
pub(crate) fn read_header(
    txn: &ReadTransaction,
    names: &TableNames,
    location: &Location,
) -> Result<Header> {
    let not_ours = |detail: &str| Error::NotAnIndex {
        index: location.clone(),
        detail: detail.into(),
    };
    let meta = match txn.open_table(names.meta()) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => {
            let named = named_indexes(txn)?;
            return Err(if named.is_empty() {
                not_ours("a redb database without hnswdb tables")
            } else {
                not_ours(&format!(
                    "an app's redb database holding the named indexes {}; open one by its name \
                     (Index::open_in; in the CLI, --name)",
                    named.join(", ")
                ))
            });
        }
        Err(e) => return Err(e.into()),
    };
    let format = meta
        .get(FORMAT_KEY)?
        .ok_or_else(|| not_ours("a redb database without an hnswdb format record"))?;
    let format = format.value();
    if format.len() != 12 || format[..8] != MAGIC {
        return Err(not_ours("its format record is not hnswdb's"));
    }
    let found = u32::from_le_bytes(format[8..12].try_into().expect("4 bytes"));
    if found != FORMAT_VERSION {
        return Err(Error::Version {
            found,
            supported: FORMAT_VERSION,
        });
    }
    let header = meta
        .get(HEADER_KEY)?
        .ok_or_else(|| Error::corrupt("the header record is missing", "meta.header"))?;
    codec::decode_header(header.value())
}

/// Free node ids, ascending.
pub(crate) fn read_free_ids(txn: &ReadTransaction, names: &TableNames) -> Result<Vec<u64>> {
    let table = txn.open_table(names.free_ids())?;
    let mut ids = Vec::new();
    for row in table.range::<u64>(..)? {
        ids.push(row?.0.value());
    }
    Ok(ids)
}

/// Records that `ids` became free and `taken` are free no more.
pub(crate) fn update_free_ids(
    txn: &WriteTransaction,
    names: &TableNames,
    freed: impl IntoIterator<Item = u32>,
    taken: impl IntoIterator<Item = u32>,
) -> Result<()> {
    let mut table = txn.open_table(names.free_ids())?;
    for id in taken {
        table.remove(u64::from(id))?;
    }
    for id in freed {
        table.insert(u64::from(id), ())?;
    }
    Ok(())
}

/// A read transaction on `db`.
pub(crate) fn begin_read(db: &Database) -> Result<ReadTransaction> {
    Ok(db.begin_read()?)
}

/// The names of the indexes in an app's database, ascending.
pub(crate) fn index_names(db: &Database) -> Result<Vec<String>> {
    named_indexes(&db.begin_read()?)
}

/// The names of the indexes in an app's database at `txn`, ascending.
fn named_indexes(txn: &ReadTransaction) -> Result<Vec<String>> {
    let mut names: Vec<String> = txn
        .list_tables()?
        .filter_map(|table| TableNames::index_of_meta_table(table.name()).map(str::to_owned))
        .collect();
    names.sort_unstable();
    Ok(names)
}

/// Whether the database holds any table (plain or multimap) outside `names`.
pub(crate) fn has_other_tables(txn: &ReadTransaction, names: &TableNames) -> Result<bool> {
    let ours = |table: &str| names.all().iter().any(|name| name == table);
    let plain = txn.list_tables()?.any(|table| !ours(table.name()));
    Ok(plain || txn.list_multimap_tables()?.next().is_some())
}

/// Deletes every table of `names` in `txn`; returns whether the index had any.
pub(crate) fn delete_tables(txn: &WriteTransaction, names: &TableNames) -> Result<bool> {
    let mut any = false;
    for name in names.all() {
        let definition: redb::TableDefinition<'_, u64, ()> = redb::TableDefinition::new(name);
        any |= txn.delete_table(definition)?;
    }
    Ok(any)
}

/// The bytes the tables of `names` take in the file: rows, B-tree metadata and fragmentation.
pub(crate) fn table_bytes(txn: &ReadTransaction, names: &TableNames) -> Result<u64> {
    use redb::ReadableTableMetadata;
    let mut bytes = 0;
    for name in names.all() {
        let definition: redb::TableDefinition<'_, u64, ()> = redb::TableDefinition::new(name);
        let stats = match txn.open_untyped_table(definition) {
            Ok(table) => table.stats()?,
            Err(TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        bytes += stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes();
    }
    Ok(bytes)
}

/// Renames every table of `from` to its name in `to`.
pub(crate) fn rename_tables(
    txn: &WriteTransaction,
    from: &TableNames,
    to: &TableNames,
) -> Result<()> {
    for (from, to) in from.all().iter().zip(to.all()) {
        let from: redb::TableDefinition<'_, u64, ()> = redb::TableDefinition::new(from);
        let to: redb::TableDefinition<'_, u64, ()> = redb::TableDefinition::new(to);
        txn.rename_table(from, to)?;
    }
    Ok(())
}

/// Copies every row of every table of the index from `src` into `dst` (a new, empty database
/// of its own) in one durable transaction. Rows go in key order into fresh tables, so `dst`
/// holds no free space.
pub(crate) fn copy_all(src: &Db, dst: &Db) -> Result<()> {
    let (from, to) = (src.names(), dst.names());
    let read = src.begin_read()?;
    let mut txn = dst.begin_write()?;
    txn.set_quick_repair(true);
    copy_table(&read, &txn, from.meta(), to.meta())?;
    copy_table(&read, &txn, from.keys(), to.keys())?;
    copy_table(&read, &txn, from.nodes(), to.nodes())?;
    copy_table(&read, &txn, from.vectors(), to.vectors())?;
    copy_table(&read, &txn, from.links(), to.links())?;
    copy_table(&read, &txn, from.reverse(), to.reverse())?;
    copy_table(&read, &txn, from.free_ids(), to.free_ids())?;
    copy_table(&read, &txn, from.codes(), to.codes())?;
    txn.commit()?;
    Ok(())
}

fn copy_table<K, V>(
    read: &ReadTransaction,
    txn: &WriteTransaction,
    from: redb::TableDefinition<K, V>,
    to: redb::TableDefinition<K, V>,
) -> Result<()>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
    for<'a> V::SelfType<'a>: std::borrow::Borrow<V::SelfType<'a>>,
{
    use redb::ReadableTable;
    let from = read.open_table(from)?;
    let mut to = txn.open_table(to)?;
    for row in from.iter()? {
        let (key, value) = row?;
        to.insert(key.value(), value.value())?;
    }
    Ok(())
}
