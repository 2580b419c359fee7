//! The lab's one error type: every variant names what failed and, for commands, their stderr.

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

/// What went wrong while building a topology, running a command or moving test traffic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// A command ran and exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, as a person would type it.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A command could not be started at all (is the program installed?).
    #[error("could not start `{command}`: {source}")]
    Spawn {
        /// The command line, as a person would type it.
        command: String,
        /// Why the operating system refused.
        #[source]
        source: io::Error,
    },
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the lab was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An argument was rejected before anything ran.
    #[error("invalid {what} `{value}`: {reason}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
    /// Something did not happen before its deadline.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the lab waited.
        waited: Duration,
    },
    /// A peer answered with something the protocol does not allow.
    #[error("bad answer from {peer}: {reason}")]
    Protocol {
        /// Who answered.
        peer: String,
        /// What was wrong with the answer.
        reason: String,
    },
}

impl LabError {
    /// Wraps an I/O error with what the lab was doing when it happened.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
