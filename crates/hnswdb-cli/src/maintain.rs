//! Moving an index through a file: `export` writes the library's versioned, checksummed stream
//! of keys and vectors; `import` builds a new index from one.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Context;
use crate::report::{bytes, duration, thousands};
use crate::target::{Mode, OpenError};
use crate::{CliError, ExportArgs, ImportArgs};

/// Runs `hnswdb export`: writes the stream to a new file (never over an existing one); a failed
/// export removes what it wrote.
pub fn export(args: &ExportArgs) -> Result<(), CliError> {
    let index = args.target.open()?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.file)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => CliError::new(format!(
                "{} already exists; remove it or choose another name",
                args.file.display()
            )),
            _ => CliError::io(&args.file, e),
        })?;
    let bar = progress(None, "exporting");
    let start = Instant::now();
    let written = index
        .export(bar.wrap_write(&file))
        .map_err(CliError::from)
        .and_then(|written| {
            file.sync_all().map_err(|e| CliError::io(&args.file, e))?;
            Ok(written)
        });
    bar.finish_and_clear();
    let written = match written {
        Ok(written) => written,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&args.file);
            return Err(e.context(format!("cannot export {}", args.target)));
        }
    };
    let o = index.options();
    writeln!(
        io::stdout().lock(),
        "{}: exported {} vectors (dim {}, {}, m {}) to {}: {} in {}",
        args.target,
        thousands(written.rows),
        o.get_dim(),
        o.get_metric(),
        o.get_m(),
        args.file.display(),
        bytes(written.bytes),
        duration(start.elapsed())
    )?;
    Ok(())
}

/// Runs `hnswdb import`: creates the index from the stream, rebuilding its graph. A damaged or
/// truncated stream fails and leaves no index behind (nor a database file `--name` created).
pub fn import(args: &ImportArgs) -> Result<(), CliError> {
    let file = File::open(&args.file).map_err(|e| CliError::io(&args.file, e))?;
    let len = file
        .metadata()
        .map_err(|e| CliError::io(&args.file, e))?
        .len();
    let bar = progress(Some(len), "importing");
    let start = Instant::now();
    let imported = args.target.reach(Mode::Import(&mut bar.wrap_read(file)));
    bar.finish_and_clear();
    let context = format!("cannot import {} into {}", args.file.display(), args.target);
    let index = match imported {
        Ok(index) => index,
        Err(OpenError::Index {
            error: hnswdb::Error::InvalidStream { what, location },
            ..
        }) => {
            return Err(CliError::new(format!(
                "{context}: the export file is damaged or not an export: {what} (at {location})"
            )))
        }
        Err(OpenError::Index {
            error: hnswdb::Error::AlreadyExists { .. },
            ..
        }) => {
            return Err(CliError::new(format!(
                "{context}: {} already exists; import creates a new index, so remove it or \
                 choose another name",
                args.target
            )))
        }
        Err(e) => return Err(e).context(context),
    };
    let took = start.elapsed();
    let o = index.options();
    let file_bytes = std::fs::metadata(&args.target.index).map_or(0, |m| m.len());
    writeln!(
        io::stdout().lock(),
        "{}: imported {} vectors (dim {}, {}, m {}, ef_construction {}) from {} in {} \
         ({} vectors/s); {} {}",
        args.target,
        thousands(index.len() as u64),
        o.get_dim(),
        o.get_metric(),
        o.get_m(),
        o.get_ef_construction(),
        args.file.display(),
        duration(took),
        thousands((index.len() as f64 / took.as_secs_f64().max(1e-9)).round() as u64),
        match args.target.name {
            None => "index file",
            Some(_) => "database file",
        },
        bytes(file_bytes)
    )?;
    Ok(())
}

/// A byte-counting bar (a spinner when `len` is unknown) on stderr, hidden when stderr is not a
/// terminal.
fn progress(len: Option<u64>, verb: &str) -> ProgressBar {
    let target = if io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let template = match len {
        Some(_) => format!(
            "{verb} {{bar:40.cyan/blue}} {{bytes}}/{{total_bytes}}  {{bytes_per_sec}}  ETA {{eta}}"
        ),
        None => format!("{verb} {{spinner}} {{bytes}}  {{bytes_per_sec}}"),
    };
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▉▊▋▌▍▎▏ ");
    ProgressBar::with_draw_target(len, target).with_style(style)
}
