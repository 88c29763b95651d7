//! How a command ends, and the exit status each ending has.

use std::process::ExitCode;

/// Exit status for bad input: an invalid experiment, a wrong argument,
/// missing or corrupt data, an unusable model, weights or checkpoint.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status for a failure to do the work (a file could not be written).
pub const EXIT_FAILED: u8 = 1;
/// Exit status for a run stopped before its end (Ctrl-C, SIGTERM, SIGHUP).
pub const EXIT_STOPPED: u8 = 130;

/// A command that did its work: done, or a run stopped on request with a
/// checkpoint to resume from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Finished,
    Stopped,
}

/// Why a command did not do its work. The message says what and where; it
/// is printed once, as `error: …`, by `main`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user's input cannot be used (exit status 2).
    #[error("{0}")]
    BadInput(String),
    /// The work could not be done (exit status 1).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn bad(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    pub fn status(&self) -> u8 {
        match self {
            CliError::BadInput(_) => EXIT_BAD_INPUT,
            CliError::Failed(_) => EXIT_FAILED,
        }
    }
}

pub type CliResult = Result<Done, CliError>;

/// The process's exit code for how a command ended, with its error printed.
pub fn exit_code(result: CliResult) -> ExitCode {
    match result {
        Ok(Done::Finished) => ExitCode::SUCCESS,
        Ok(Done::Stopped) => ExitCode::from(EXIT_STOPPED),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.status())
        }
    }
}
