//! Named indexes inside one database file: `Index.create_in(path, name, ...)` and friends.
//!
//! The Rust API takes the app's `Arc<redb::Database>`; from Python there is no such handle,
//! so the file is named by its path. redb lets a process open a file once, so every named
//! index of one file in this process shares one `redb::Database`, kept here while any index
//! of it is open.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use hnswdb::{Error, Index, Location};

/// The database files open in this process, by canonical path.
static DATABASES: Mutex<Option<HashMap<PathBuf, Weak<redb::Database>>>> = Mutex::new(None);

/// `path` made absolute and free of links, as far as it exists, so that two spellings of one
/// file find one database.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(path) = std::fs::canonicalize(path) {
        return path;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = match parent.as_os_str().is_empty() {
                true => Path::new("."),
                false => parent,
            };
            std::fs::canonicalize(parent)
                .map(|p| p.join(name))
                .unwrap_or_else(|_| path.to_owned())
        }
        _ => path.to_owned(),
    }
}

/// The database file at `path`, shared with every named index of it open in this process;
/// opened (or, with `create`, made if missing) when there is none.
pub(crate) fn database(path: &Path, create: bool) -> hnswdb::Result<Arc<redb::Database>> {
    let key = canonical(path);
    let mut open = DATABASES.lock().unwrap_or_else(PoisonError::into_inner);
    let open = open.get_or_insert_with(HashMap::new);
    open.retain(|_, db| db.strong_count() > 0);
    if let Some(db) = open.get(&key).and_then(Weak::upgrade) {
        return Ok(db);
    }
    let db = match (create, path.exists()) {
        (_, true) => redb::Database::open(path)?,
        (true, false) => redb::Database::create(path)?,
        (false, false) => {
            return Err(Error::NotFound {
                index: Location::File(path.to_owned()),
            })
        }
    };
    let db = Arc::new(db);
    open.insert(key, Arc::downgrade(&db));
    Ok(db)
}

/// `Index::create_in` on the database file at `path` (made if missing).
pub(crate) fn create_in(
    path: &Path,
    name: &str,
    options: hnswdb::Options,
) -> hnswdb::Result<Index> {
    Index::create_in(database(path, true)?, name, options)
}

/// `Index::open_in` on the database file at `path`.
pub(crate) fn open_in(path: &Path, name: &str) -> hnswdb::Result<Index> {
    Index::open_in(database(path, false)?, name)
}

/// `Index::open_or_create_in` on the database file at `path` (made if missing).
pub(crate) fn open_or_create_in(
    path: &Path,
    name: &str,
    options: hnswdb::Options,
) -> hnswdb::Result<Index> {
    Index::open_or_create_in(database(path, true)?, name, options)
}
