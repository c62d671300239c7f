//! Where a command's index lives, and the one place that opens or creates it: an index file of
//! its own (`INDEX`), or with `--name NAME` the index `NAME` inside an app's redb database file
//! (`INDEX`), reached through the library's `*_in` constructors.
//!
//! The app's database is opened with `redb::Database::open`; only `build` and `import` create
//! one, and only where no file exists. A file that is there but is not a redb database is
//! refused and left unchanged, never initialised.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use hnswdb::redb::{self, Database};
use hnswdb::{Index, Options};

use crate::CliError;

/// `INDEX [--name NAME]`, as every command that opens or creates an index takes it.
#[derive(Args, Debug, Clone)]
pub(crate) struct Target {
    /// The index file; with --name, the app's redb database file that holds the index (`build`
    /// and `import` create either when nothing is there).
    #[arg(value_name = "INDEX")]
    pub index: PathBuf,
    /// Work on the index NAME inside INDEX, an app's redb database file, instead of on an index
    /// file of its own (`hnswdb list INDEX` shows the names).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// What a command does with its index.
pub(crate) enum Mode<'r> {
    /// Open the existing index.
    Open,
    /// Open the index, or create it with these options when there is none (`build`).
    OpenOrCreate(Options),
    /// Create the index from an export stream (`import`).
    Import(&'r mut dyn Read),
}

/// Why the index could not be reached.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// With `--name`: the app's database file could not be opened or created. The message names
    /// the file.
    Database {
        /// For `verify --json`: `not_found`, `not_a_database` or `other`.
        kind: &'static str,
        message: String,
    },
    /// The library's error; `creating` when it came from making a new index.
    Index {
        error: hnswdb::Error,
        creating: bool,
    },
}

impl From<hnswdb::Error> for OpenError {
    fn from(error: hnswdb::Error) -> OpenError {
        OpenError::Index {
            error,
            creating: false,
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Database { message, .. } => f.write_str(message),
            OpenError::Index { error, .. } => error.fmt(f),
        }
    }
}

impl From<OpenError> for CliError {
    fn from(e: OpenError) -> CliError {
        CliError::new(e.to_string())
    }
}

/// The index file's path, or `"NAME" in PATH`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => write!(f, "{}", self.index.display()),
            Some(name) => write!(f, "{name:?} in {}", self.index.display()),
        }
    }
}

impl Target {
    /// Opens the existing index; the error says what failed.
    pub fn open(&self) -> Result<Index, CliError> {
        self.reach(Mode::Open)
            .map_err(|e| self.explain(e, "cannot open the index"))
    }

    /// Opens or creates the index as `mode` says: [`Index::open`], [`Index::create`] and
    /// [`Index::import`] on the file, or with `--name` their `*_in` forms on the app's database.
    /// A database file this call created is removed again if the index could not be made in it.
    pub fn reach(&self, mode: Mode<'_>) -> Result<Index, OpenError> {
        let opening = |error| OpenError::Index {
            error,
            creating: false,
        };
        let creating = |error| OpenError::Index {
            error,
            creating: true,
        };
        let path = &self.index;
        let Some(name) = &self.name else {
            return match mode {
                Mode::Open => Index::open(path).map_err(opening),
                Mode::OpenOrCreate(options) if !path.exists() => {
                    Index::create(path, options).map_err(creating)
                }
                Mode::OpenOrCreate(_) => Index::open(path).map_err(opening),
                Mode::Import(reader) => Index::import(path, reader).map_err(creating),
            };
        };
        let (result, created) = {
            let (db, created) = open_database(path, !matches!(mode, Mode::Open))?;
            let result = match mode {
                Mode::Open => Index::open_in(db, name).map_err(opening),
                Mode::OpenOrCreate(options) => match Index::open_in(Arc::clone(&db), name) {
                    Err(hnswdb::Error::NotFound { .. }) => {
                        Index::create_in(db, name, options).map_err(creating)
                    }
                    opened => opened.map_err(opening),
                },
                Mode::Import(reader) => Index::import_in(db, name, reader).map_err(creating),
            };
            (result, created)
        };
        if result.is_err() && created {
            let _ = fs::remove_file(path);
        }
        result
    }

    /// The error as a command prints it: `context: error` (`cannot create the index` for an
    /// error while creating), preceded by the database file for an index inside one. A bad
    /// `--name` is said on its own.
    pub fn explain(&self, e: OpenError, context: &str) -> CliError {
        match e {
            OpenError::Database { message, .. } => CliError::new(message),
            OpenError::Index {
                error: error @ hnswdb::Error::InvalidName { .. },
                ..
            } => CliError::from(error),
            OpenError::Index { error, creating } => {
                let context = if creating {
                    "cannot create the index"
                } else {
                    context
                };
                let e = CliError::from(error).context(context);
                match self.name {
                    None => e,
                    Some(_) => e.context(self.index.display()),
                }
            }
        }
    }
}

/// Opens the app's redb database at `path`. With `create`, a new database is made where no file
/// exists (and `true` returned with it); a file that exists is only ever opened, so one that is
/// not a redb database is refused unchanged.
pub(crate) fn open_database(path: &Path, create: bool) -> Result<(Arc<Database>, bool), OpenError> {
    if create {
        // `create_new`: the database is initialised only in a file made here, never over one
        // that appeared meanwhile.
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(file) => {
                drop(file);
                return match Database::create(path) {
                    Ok(db) => Ok((Arc::new(db), true)),
                    Err(e) => {
                        let _ = fs::remove_file(path);
                        Err(database_error(path, e))
                    }
                };
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(OpenError::Database {
                    kind: "other",
                    message: format!("cannot create the database {}: {e}", path.display()),
                })
            }
        }
    }
    Database::open(path)
        .map(|db| (Arc::new(db), false))
        .map_err(|e| database_error(path, e))
}

/// A failed open of the app's database at `path`, said plainly.
fn database_error(path: &Path, e: redb::DatabaseError) -> OpenError {
    let path = path.display();
    let (kind, message) = match e {
        redb::DatabaseError::Storage(redb::StorageError::Io(e))
            if e.kind() == io::ErrorKind::NotFound =>
        {
            (
                "not_found",
                format!(
                    "{path} does not exist; an app's redb database file was expected \
                     (`build --name` and `import --name` create one)"
                ),
            )
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(e))
            if e.kind() == io::ErrorKind::InvalidData =>
        {
            (
                "not_a_database",
                format!(
                    "{path} is not a redb database ({e}); it was left unchanged (an app's redb \
                     database file was expected)"
                ),
            )
        }
        redb::DatabaseError::DatabaseAlreadyOpen => (
            "other",
            format!(
                "{path} is open in another process (redb lets one process open a database \
                 file at a time); close it there first"
            ),
        ),
        e => ("other", format!("cannot open the database {path}: {e}")),
    };
    OpenError::Database { kind, message }
}
