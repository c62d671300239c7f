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

use redb::{Database, ReadTransaction, ReadableDatabase, TableError, WriteTransaction};

use super::codec::{self, Header};
use super::schema::{
    FORMAT_KEY, FORMAT_VERSION, FREE_IDS, HEADER_KEY, KEYS, LINKS, MAGIC, META, NODES, REVERSE,
    VECTORS,
};
use crate::error::{Error, Result};

/// The first bytes of every redb file (redb's `MAGICNUMBER`).
pub(crate) const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Size of redb's own page cache: it serves writes and what the layer-0 cache does not hold.
const REDB_CACHE_BYTES: usize = 256 << 20;

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

/// An open redb database that is closed under the panic guard: redb's own close can panic when
/// an earlier (caught) panic on a damaged file poisoned its state.
pub(crate) struct Db(Option<Database>);

impl std::ops::Deref for Db {
    type Target = Database;
    fn deref(&self) -> &Database {
        self.0
            .as_ref()
            .expect("a Db holds its database until dropped")
    }
}

impl std::ops::DerefMut for Db {
    fn deref_mut(&mut self) -> &mut Database {
        self.0
            .as_mut()
            .expect("a Db holds its database until dropped")
    }
}

impl From<Database> for Db {
    fn from(db: Database) -> Db {
        Db(Some(db))
    }
}

impl Db {
    /// A stand-in for a database that was closed: it must not be used.
    pub(crate) fn closed() -> Db {
        Db(None)
    }

    /// Closes the database, returning the error a drop would swallow.
    pub(crate) fn close(mut self) -> Result<()> {
        let db = self
            .0
            .take()
            .expect("a Db holds its database until dropped");
        guarded("close", || Ok(db.close()?))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let db = self.0.take();
        let _ = guarded("close", || {
            drop(db);
            Ok(())
        });
    }
}

/// A new, empty database in `file` (an empty file, open for reading and writing).
pub(crate) fn create_database(file: File) -> Result<Db> {
    guarded("create", || {
        Ok(Db(Some(
            Database::builder()
                .set_cache_size(REDB_CACHE_BYTES)
                .create_with_backend(redb::backends::FileBackend::new(file)?)?,
        )))
    })
}

/// A new, empty database in memory (redb's in-memory backend).
pub(crate) fn create_in_memory() -> Result<Db> {
    guarded("create", || {
        Ok(Db(Some(
            Database::builder()
                .set_cache_size(IN_MEMORY_CACHE_BYTES)
                .create_with_backend(redb::backends::InMemoryBackend::new())?,
        )))
    })
}

/// Opens the database at `path`, refusing files that are missing, empty or not redb files
/// without changing them.
pub(crate) fn open_database(path: &Path) -> Result<Db> {
    let not_ours = |detail: &str| Error::NotAnIndex {
        path: path.to_owned(),
        detail: detail.into(),
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                path: path.to_owned(),
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
            .set_cache_size(REDB_CACHE_BYTES)
            .open(path)
            .map(|db| Db(Some(db)))
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => Error::InUse {
                    path: path.to_owned(),
                },
                other => Error::corrupt(format!("redb could not open the file: {other}"), "open"),
            })
    })
}

/// redb's full check of the file: every page checksum and the allocator state (O(file)).
/// redb repairs what it can; damage it cannot repair is `Error::Corrupt`.
pub(crate) fn check_storage(db: &mut Db) -> Result<()> {
    guarded("check", || match db.check_integrity() {
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

/// Creates every table and writes the format row and `header`.
pub(crate) fn init_tables(txn: &WriteTransaction, header: &Header) -> Result<()> {
    {
        let mut meta = txn.open_table(META)?;
        let mut format = MAGIC.to_vec();
        format.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        meta.insert(FORMAT_KEY, format.as_slice())?;
    }
    txn.open_table(KEYS)?;
    txn.open_table(NODES)?;
    txn.open_table(VECTORS)?;
    txn.open_table(LINKS)?;
    txn.open_table(REVERSE)?;
    txn.open_table(FREE_IDS)?;
    write_header(txn, header)
}

/// Writes `header`.
pub(crate) fn write_header(txn: &WriteTransaction, header: &Header) -> Result<()> {
    let mut meta = txn.open_table(META)?;
    meta.insert(HEADER_KEY, codec::encode_header(header).as_slice())?;
    Ok(())
}

/// Reads and checks the format row, then the header. A file without our tables or magic is
/// `NotAnIndex`; another format version is `Version`.
pub(crate) fn read_header(txn: &ReadTransaction, path: &Path) -> Result<Header> {
    let not_ours = |detail: &str| Error::NotAnIndex {
        path: path.to_owned(),
        detail: detail.into(),
    };
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => {
            return Err(not_ours("a redb database without hnswdb tables"))
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
pub(crate) fn read_free_ids(txn: &ReadTransaction) -> Result<Vec<u64>> {
    let table = txn.open_table(FREE_IDS)?;
    let mut ids = Vec::new();
    for row in table.range::<u64>(..)? {
        ids.push(row?.0.value());
    }
    Ok(ids)
}

/// Records that `ids` became free and `taken` are free no more.
pub(crate) fn update_free_ids(
    txn: &WriteTransaction,
    freed: impl IntoIterator<Item = u32>,
    taken: impl IntoIterator<Item = u32>,
) -> Result<()> {
    let mut table = txn.open_table(FREE_IDS)?;
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

/// Copies every row of every hnswdb table from `src` into `dst` (a new, empty database) in one
/// durable transaction. Rows go in key order into fresh tables, so `dst` holds no free space.
pub(crate) fn copy_all(src: &Database, dst: &Database) -> Result<()> {
    let read = src.begin_read()?;
    let mut txn = dst.begin_write()?;
    txn.set_quick_repair(true);
    copy_table(&read, &txn, META)?;
    copy_table(&read, &txn, KEYS)?;
    copy_table(&read, &txn, NODES)?;
    copy_table(&read, &txn, VECTORS)?;
    copy_table(&read, &txn, LINKS)?;
    copy_table(&read, &txn, REVERSE)?;
    copy_table(&read, &txn, FREE_IDS)?;
    txn.commit()?;
    Ok(())
}

fn copy_table<K, V>(
    read: &ReadTransaction,
    txn: &WriteTransaction,
    table: redb::TableDefinition<K, V>,
) -> Result<()>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    for<'a> K::SelfType<'a>: std::borrow::Borrow<K::SelfType<'a>>,
    for<'a> V::SelfType<'a>: std::borrow::Borrow<V::SelfType<'a>>,
{
    use redb::ReadableTable;
    let from = read.open_table(table)?;
    let mut to = txn.open_table(table)?;
    for row in from.iter()? {
        let (key, value) = row?;
        to.insert(key.value(), value.value())?;
    }
    Ok(())
}
