//! How a command fails: one line on stderr (or one JSON object with
//! `--json`) and the exit code its kind implies.
//!
//! Exit codes follow the shell's conventions: 0 done, 1 failed, 2 the
//! command line was wrong (as clap, git and grep do), 130 interrupted by
//! Ctrl-C (128 + SIGINT), 141 stdout closed (see `out`).

use std::process::ExitCode;

pub use lattice_host::api::ErrorKind;

/// An error that knows its kind: what the node answered, or a command line
/// the CLI itself refuses. Anything else reaching `main` is `failed`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub message: String,
    pub kind: ErrorKind,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Failure {
            message: message.into(),
            kind,
        })
    }
}

/// The command line is wrong: exit 2.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Failure::new(ErrorKind::Usage, message)
}

/// Bails out of a command with a usage error (exit 2).
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::fail::usage(format!($($arg)*)))
    };
}

/// Prints `e` the way the command line promised and returns the exit code.
pub fn report(e: &anyhow::Error, json: bool) -> ExitCode {
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<Failure>())
        .map(|f| f.kind)
        .unwrap_or_default();
    // One line: the error and its causes, no backtrace.
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        msg.push_str(&format!(": {cause}"));
    }
    if json {
        eprintln!("{}", serde_json::json!({ "error": msg, "kind": kind }));
    } else {
        eprintln!("error: {msg}");
    }
    exit_code(kind)
}

pub fn exit_code(kind: ErrorKind) -> ExitCode {
    match kind {
        ErrorKind::Usage => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}
