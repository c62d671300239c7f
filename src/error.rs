//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in hnswdb.
///
/// Every variant says what was wrong; its message also says what to do about it.
/// No input and no file content makes hnswdb panic: it returns one of these instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A vector had a different number of components than the index.
    #[error("vector has {got} dimensions but the index holds {expected}-dimensional vectors")]
    Dimension {
        /// The dimension of the index.
        expected: usize,
        /// The length of the vector that was passed.
        got: usize,
    },
    /// A vector holds NaN or infinity, or is all zeros under the cosine metric.
    #[error("invalid vector: {reason}; pass finite values (and a non-zero vector for cosine)")]
    InvalidVector {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Options or search parameters that cannot work.
    #[error("invalid options: {reason}")]
    InvalidOptions {
        /// Which setting is wrong and what it must be.
        reason: String,
    },
    /// `Index::create` (or `create_in`) was given a path (or name) that already exists.
    #[error("{index} already exists; open it (Index::open, Index::open_in or open_or_create), or remove it first")]
    AlreadyExists {
        /// The index that exists.
        index: Location,
    },
    /// `Index::open` (or `open_in`) was given a path (or name) where there is no index.
    #[error(
        "{index} does not exist; create it (Index::create, Index::create_in or open_or_create)"
    )]
    NotFound {
        /// The missing index.
        index: Location,
    },
    /// The file (or the named tables) exist but are not an hnswdb index (another file, an empty
    /// file, or another redb database). Nothing has been changed.
    #[error("{index} is not an hnswdb index ({detail}); it was left unchanged")]
    NotAnIndex {
        /// Where the index was looked for.
        index: Location,
        /// What showed it is not ours.
        detail: String,
    },
    /// The index is open already: a file in another [`Index`](crate::Index) of this process or
    /// in another process, a named index in another handle of this process (one writer per
    /// index); or [`delete_index`](crate::delete_index) was asked to delete an open index.
    #[error(
        "{index} is open in another Index or process; close that first (one handle per index)"
    )]
    InUse {
        /// The index.
        index: Location,
    },
    /// An index name for an app's database that cannot be used.
    #[error("invalid index name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The operation cannot work on an index inside an app's database; the message says what to
    /// do instead.
    #[error("{operation} is not available for an index inside an app's database: {instead}")]
    NotInSharedDatabase {
        /// What was asked.
        operation: &'static str,
        /// What to do instead.
        instead: &'static str,
    },
    /// The index was written in a format version this build cannot read.
    #[error("index format version {found} is not supported (this build reads version {supported}); use a matching hnswdb release")]
    Version {
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// `Index::open_or_create` found an index with other settings than the ones asked for.
    #[error("the stored index has {setting} = {stored}, but {requested} was requested; open it with Index::open (or open_in) to use its own settings")]
    OptionsMismatch {
        /// Which setting differs.
        setting: &'static str,
        /// The value in the file.
        stored: String,
        /// The value passed in.
        requested: String,
    },
    /// The file's contents are damaged: a record failed validation or an invariant does not hold.
    #[error("corrupt index: {what} (at {location}); restore from a backup or rebuild the index")]
    Corrupt {
        /// What is wrong.
        what: String,
        /// Where: a table and key, or the invariant that failed.
        location: String,
    },
    /// An export stream given to [`Index::import`](crate::Index::import) is damaged, truncated
    /// or not an hnswdb export. No index was created.
    #[error("invalid export stream: {what} (at {location}); export the index again")]
    InvalidStream {
        /// What is wrong.
        what: String,
        /// Where in the stream.
        location: String,
    },
    /// An earlier operation of this [`WriteTxn`](crate::WriteTxn) failed part-way, so its
    /// working state may be inconsistent: it can no longer be used or committed.
    #[error("an earlier operation of this write transaction failed part-way; drop the transaction (nothing of it was written) and start a new one")]
    TransactionBroken,
    /// This thread already holds the index's write transaction: another write, a checkpoint,
    /// a compaction or `close` from the same thread would wait for itself forever.
    #[error("this thread already holds a write transaction of this index; commit or drop it first (use that WriteTxn for further changes)")]
    WriteInProgress,
    /// [`WriteTxn::on`](crate::WriteTxn::on) was given an index the transaction was not
    /// started on.
    #[error("this index is not part of the write transaction; start it with Index::write_with listing every index it changes")]
    NotInTransaction,
    /// The index holds as many vectors as node ids can number.
    #[error("the index is full: it holds at most {capacity} vectors; remove some, or split the data over several indexes")]
    Full {
        /// The largest number of vectors an index holds.
        capacity: u64,
    },
    /// The background load of the cache was stopped (by [`Index::compact`](crate::Index::compact)
    /// or by closing the index) before it finished; searches read the rest from the file.
    #[error("the background cache load was stopped before it finished; searches read from the file meanwhile")]
    LoadStopped,
    /// A thread could not be started (the operating system refused: too many threads, or no
    /// memory for a stack).
    #[error("could not start a {purpose} thread: {source}; lower Options::build_threads or free resources")]
    Thread {
        /// What the thread was for.
        purpose: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The storage engine (redb) failed.
    #[error("storage error: {0}")]
    Storage(redb::Error),
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Where an index lives, as errors name it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// An index file of its own.
    File(PathBuf),
    /// An index in memory ([`Index::in_memory`](crate::Index::in_memory)).
    Memory,
    /// The index of this name inside an app's redb database
    /// ([`Index::open_in`](crate::Index::open_in)).
    Named(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Memory => write!(f, "the in-memory index"),
            Location::Named(name) => write!(f, "the index {name:?} in the app's database"),
        }
    }
}

/// `Result` with [`Error`] as its error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A `Corrupt` error with a location.
    pub(crate) fn corrupt(what: impl Into<String>, location: impl Into<String>) -> Error {
        Error::Corrupt {
            what: what.into(),
            location: location.into(),
        }
    }
}

impl From<redb::Error> for Error {
    /// A redb error is `Storage`, except a read that ran past the end of the file: a page
    /// reference leading out of the file is damage (or a truncated file), not a failing disk.
    fn from(e: redb::Error) -> Self {
        match &e {
            redb::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                let what =
                    format!("a page lies past the end of the file, truncated or damaged ({io})");
                Error::corrupt(what, "storage")
            }
            _ => Error::Storage(e),
        }
    }
}

macro_rules! from_redb {
    ($($ty:ident),*) => {$(
        impl From<redb::$ty> for Error {
            fn from(e: redb::$ty) -> Self {
                Error::from(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    DatabaseError,
    TransactionError,
    TableError,
    StorageError,
    CommitError,
    CompactionError,
    SetDurabilityError
);
