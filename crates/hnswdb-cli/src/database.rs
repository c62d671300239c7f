//! The indexes inside an app's redb database file: `list` shows their names, `delete-index`
//! removes one (its tables only).

use std::io::{self, Write};

use crate::report;
use crate::target::open_database;
use crate::{CliError, DeleteIndexArgs, ListArgs};

/// Runs `hnswdb list`: the index names in the file, ascending, one per line (or a JSON array).
pub fn list(args: &ListArgs) -> Result<(), CliError> {
    let (db, _) = open_database(&args.file, false)?;
    let names = hnswdb::index_names(&db)?;
    let mut out = io::stdout().lock();
    if args.json {
        return report::print_json(&mut out, &names);
    }
    for name in &names {
        writeln!(out, "{name}")?;
    }
    Ok(())
}

/// Runs `hnswdb delete-index`: deletes the index in one durable commit and says whether there
/// was one.
pub fn delete_index(args: &DeleteIndexArgs) -> Result<(), CliError> {
    let (db, _) = open_database(&args.file, false)?;
    let existed = hnswdb::delete_index(&db, &args.name)?;
    let file = args.file.display();
    let name = &args.name;
    let mut out = io::stdout().lock();
    if existed {
        writeln!(out, "deleted the index {name:?} from {file}")?;
    } else {
        writeln!(
            out,
            "there is no index {name:?} in {file}; nothing was deleted"
        )?;
    }
    Ok(())
}
