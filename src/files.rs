//! The files an index makes beside its own: temporary files for `create`, `compact` and
//! `import`, moving a finished one into place, syncing the directory, and removing what a
//! killed process left behind.
//!
//! A temporary file is named `<index file name>.hnswdb-<purpose>-<8 random letters or digits>`
//! (made by `tempfile`, which removes it again when the work fails). Only a file named exactly
//! so, holding a redb database (or one redb had not yet written its header to), and held open by
//! no one, is ever removed as a leftover: a user's `photos.hnsw.compact-backup` is never touched.
//!
//! "Held" is redb's file lock, which a new temporary file gets microseconds after it is made: a
//! cleanup in another process that lands in between removes it, and that `create`, `compact` or
//! `import` fails with an I/O error (nothing is lost; it can be run again).

use std::ffi::OsString;
use std::io::{ErrorKind, Read};
use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// What a temporary file beside the index is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    Create,
    Compact,
    Import,
}

const PURPOSES: [&str; 3] = ["create", "compact", "import"];
/// Random characters at the end of a temporary name.
const RANDOM_CHARS: usize = 8;

impl Purpose {
    fn name(self) -> &'static str {
        PURPOSES[self as usize]
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The file name of `path`, or `InvalidOptions` for a path that names no file (`/`, `..`).
fn file_name_of(path: &Path) -> Result<&std::ffi::OsStr> {
    path.file_name().ok_or_else(|| Error::InvalidOptions {
        reason: format!("{} does not name a file", path.display()),
    })
}

/// A new, empty temporary file beside `path` for `purpose`.
pub(crate) fn temporary(path: &Path, purpose: Purpose) -> Result<NamedTempFile> {
    let mut prefix: OsString = file_name_of(path)?.to_owned();
    prefix.push(format!(".hnswdb-{}-", purpose.name()));
    Ok(tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(RANDOM_CHARS)
        .tempfile_in(dir_of(path))?)
}

/// Moves the finished temporary file to `path` without ever replacing what is there
/// ([`Error::AlreadyExists`] then, and the temporary file is removed): an exclusive rename
/// where the platform and file system have one, else a hard link and an unlink (what
/// `tempfile`'s `persist_noclobber` does). Then makes the new name durable.
pub(crate) fn place_new(temp: NamedTempFile, path: &Path) -> Result<()> {
    temp.persist_noclobber(path)
        .map_err(|e| match e.error.kind() {
            ErrorKind::AlreadyExists => Error::AlreadyExists {
                index: crate::Location::File(path.to_owned()),
            },
            _ => Error::Io(e.error),
        })?;
    sync_dir(path).inspect_err(|_| {
        // Not durable, so not done: the name is ours (nothing was there), and a retry must not
        // find it.
        let _ = std::fs::remove_file(path);
    })
}

/// Moves the finished temporary file over `path`, replacing the file there atomically, and
/// makes the new name durable.
pub(crate) fn replace(temp: NamedTempFile, path: &Path) -> Result<()> {
    temp.persist(path).map_err(|e| Error::Io(e.error))?;
    sync_dir(path)
}

/// Makes the directory entry of `path` durable. On Unix the directory is fsynced (a file system
/// that cannot fsync a directory says so with `EINVAL` or `ENOTSUP`, and is left as it is); other
/// platforms have no such call (NTFS journals its directory changes).
fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let synced = std::fs::File::open(dir_of(path)).and_then(|dir| dir.sync_all());
        match synced {
            Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) => {}
            other => other?,
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Whether `file` is named as [`temporary`] names one for the index file `index`.
fn is_temporary_name(index: &str, file: &str) -> bool {
    let Some(rest) = file
        .strip_prefix(index)
        .and_then(|rest| rest.strip_prefix(".hnswdb-"))
    else {
        return false;
    };
    let Some((purpose, random)) = rest.split_once('-') else {
        return false;
    };
    PURPOSES.contains(&purpose)
        && random.len() == RANDOM_CHARS
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Removes the temporary files beside `path` that a killed `create`, `compact` or `import` left
/// behind: named exactly as [`temporary`] names them, holding a redb database or not yet one
/// (empty, or zeros where redb's header goes), and held open by no handle or process (redb's file
/// lock says so).
/// Anything else is left alone. Best effort: errors are ignored.
pub(crate) fn remove_leftovers(path: &Path) {
    let Ok(index) = file_name_of(path) else {
        return;
    };
    let index = index.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(dir_of(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| is_temporary_name(&index, name));
        if ours && entry.file_type().is_ok_and(|t| t.is_file()) && abandoned(&entry.path()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether the temporary file at `path` was left behind: a redb database, or a file redb had not
/// yet written its header to (killed early: empty, or grown with zeros), held by no one.
fn abandoned(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut start = Vec::with_capacity(crate::store::REDB_MAGIC.len());
    let read = file
        .take(crate::store::REDB_MAGIC.len() as u64)
        .read_to_end(&mut start);
    let redb_or_not_yet = start == crate::store::REDB_MAGIC || start.iter().all(|&byte| byte == 0);
    read.is_ok() && redb_or_not_yet && !crate::store::held(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`temporary`] could name a file for `index`.
    fn example_name(index: &str, purpose: Purpose) -> String {
        format!("{index}.hnswdb-{}-a1B2c3D4", purpose.name())
    }

    #[test]
    fn only_exact_temporary_names_are_ours() {
        for purpose in [Purpose::Create, Purpose::Compact, Purpose::Import] {
            assert!(is_temporary_name(
                "i.hnsw",
                &example_name("i.hnsw", purpose)
            ));
        }
        for name in [
            "i.hnsw",
            "i.hnsw.compact",
            "i.hnsw.compact-backup",
            "i.hnsw.creating-123",
            "i.hnsw.importing-1-2",
            "i.hnsw.hnswdb-compact",
            "i.hnsw.hnswdb-compact-",
            "i.hnsw.hnswdb-compact-a1B2c3D",
            "i.hnsw.hnswdb-compact-a1B2c3D4e",
            "i.hnsw.hnswdb-compact-a1B2c3D!",
            "i.hnsw.hnswdb-backup-a1B2c3D4",
            "j.hnsw.hnswdb-compact-a1B2c3D4",
            "i.hnsw.hnswdb-compact-a1B2c3D4.bak",
        ] {
            assert!(!is_temporary_name("i.hnsw", name), "{name}");
        }
    }

    #[test]
    fn temporary_files_carry_exact_names() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("i.hnsw");
        let temp = temporary(&index, Purpose::Compact).unwrap();
        let name = temp.path().file_name().unwrap().to_str().unwrap();
        assert!(is_temporary_name("i.hnsw", name), "{name}");
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        assert!(matches!(
            temporary(Path::new("/"), Purpose::Create),
            Err(Error::InvalidOptions { .. })
        ));
    }
}
