//! The command line's one error type, and how an error (or a stray panic) becomes one line on
//! stderr and an exit code.

use std::fmt;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

/// A failed command: the message printed after `error: `.
#[derive(Debug)]
pub struct CliError {
    message: String,
    /// Writing to stdout failed because the reader went away (`hnswdb … | head`): exit quietly.
    broken_pipe: bool,
}

impl CliError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            broken_pipe: false,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, e: io::Error) -> CliError {
        CliError::new(format!("{}: {e}", path.display()))
    }

    /// The same error, its message preceded by `context: `.
    pub fn context(mut self, context: impl fmt::Display) -> CliError {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<hnswdb::Error> for CliError {
    fn from(e: hnswdb::Error) -> CliError {
        CliError::new(e.to_string())
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> CliError {
        CliError {
            broken_pipe: e.kind() == io::ErrorKind::BrokenPipe,
            message: e.to_string(),
        }
    }
}

/// Adds context to the error of a `Result`.
pub trait Context<T> {
    /// Precedes the error's message with `context: `.
    fn context(self, context: impl fmt::Display) -> Result<T, CliError>;
}

impl<T, E: Into<CliError>> Context<T> for Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T, CliError> {
        self.map_err(|e| e.into().context(context))
    }
}

/// The message of the last panic, recorded by the panic hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs `f`, turning a panic that escapes it into an error.
///
/// The default panic hook is replaced by one that only records the message: the library catches
/// panics of its storage engine and returns them as errors, and those must not print a backtrace
/// notice. A panic that does reach here is a bug, reported as one line.
pub fn catch_panics(f: impl FnOnce() -> Result<(), CliError>) -> Result<(), CliError> {
    panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(info.to_string());
        }
    }));
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(_) => {
            let message = LAST_PANIC
                .lock()
                .ok()
                .and_then(|mut last| last.take())
                .unwrap_or_else(|| "unknown panic".into());
            Err(CliError::new(format!(
                "internal error (a bug in hnswdb, please report it): {}",
                message.replace('\n', " ")
            )))
        }
    }
}

/// Prints the error, if any, as one line on stderr, and gives the exit code: 0 on success, 1 on
/// any error (clap exits with 2 on bad arguments).
pub fn exit_code(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.broken_pipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "error: {}", e.message.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
