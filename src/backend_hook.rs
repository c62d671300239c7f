//! A test hook, not API: an index of its own over any redb [`StorageBackend`], for this crate's
//! tests of power loss, torn writes and I/O errors (`tests/power_cut.rs`, `tests/io_faults.rs`,
//! over the simulated disk of `tests/common/faulty.rs`). Compiled only with the `test-hooks`
//! feature, which the crate's dev-dependency on itself turns on for its tests and benches; the
//! constructors are `#[doc(hidden)]`.
//!
//! The index owns its database exactly as an index file does: its tables are `hnswdb.<table>`,
//! redb's builder and cache size are those of a file ([`Db::over_backend`]), commits are durable
//! as its [`Durability`](crate::Durability) says, and `checkpoint`, `close` and drop make the
//! last commits durable. So a test of it tests what a file index writes, with the faults the
//! backend injects. Only what needs a path differs, and is told apart by its
//! [`Location`]: `Location::Named(`[`BACKEND_NAME`]`)` (`Location::Memory` would make every
//! commit non-durable, as in memory, and a `Location::File` would make `compact` and `stats`
//! look for a file). So `compact` is refused with [`Error::NotInSharedDatabase`] (there is no
//! file to rename a copy over), `stats().file_bytes` sums the tables' bytes, `path()` is empty
//! and `name()` is [`BACKEND_NAME`]. No name is claimed: two handles over one backend are the
//! caller's mistake (a backend has no lock).
//!
//! [`StorageBackend`]: redb::StorageBackend

use crate::error::{Error, Location, Result};
use crate::index::{Index, Load};
use crate::options::Options;
use crate::store::{Db, REDB_MAGIC};

/// The name errors (and [`Index::name`]) give an index over a storage backend.
pub(crate) const BACKEND_NAME: &str = "storage-backend";

fn location() -> Location {
    Location::Named(BACKEND_NAME.to_owned())
}

impl Index {
    /// Creates an index with `options` over `backend`, which must be empty
    /// ([`Error::AlreadyExists`] otherwise, untouched), as [`Index::create`] makes a file.
    /// Test hook (feature `test-hooks`), not part of the API.
    #[doc(hidden)]
    pub fn create_with_backend(
        backend: impl redb::StorageBackend,
        options: Options,
    ) -> Result<Index> {
        options.validate()?;
        if backend.len()? > 0 {
            return Err(Error::AlreadyExists { index: location() });
        }
        let db = Db::over_backend(backend, &location())?;
        Index::create_over(location(), db, options)
    }

    /// Opens the index in `backend` with its stored options, as [`Index::open`] opens a file
    /// (recovering redb's last commit if it was interrupted; the cache loads in the
    /// background). An empty backend, or one without redb's magic number, is
    /// [`Error::NotAnIndex`], untouched; redb's open fails as for a file (`store::open_error`:
    /// an I/O error is [`Error::Storage`], damage [`Error::Corrupt`] at "open"); an I/O error of
    /// the backend before redb's open is [`Error::Io`].
    /// Test hook (feature `test-hooks`), not part of the API.
    #[doc(hidden)]
    pub fn open_with_backend(backend: impl redb::StorageBackend) -> Result<Index> {
        let not_ours = |detail: &str| Error::NotAnIndex {
            index: location(),
            detail: detail.into(),
        };
        let len = backend.len()?;
        if len == 0 {
            return Err(not_ours("the storage backend is empty"));
        }
        let mut magic = [0u8; REDB_MAGIC.len()];
        if len < magic.len() as u64 {
            return Err(not_ours("it is not a redb database"));
        }
        backend.read(0, &mut magic)?;
        if magic != REDB_MAGIC {
            return Err(not_ours("it is not a redb database"));
        }
        let db = Db::over_backend(backend, &location())?;
        Index::open_over(location(), db, Load::Background(None))
    }
}
