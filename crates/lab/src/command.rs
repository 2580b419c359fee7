//! Runs external commands (`ip`, `kill`, `sysctl`) and turns failures into [`LabError`]s.

use std::process::{Command, Output, Stdio};

use crate::LabError;

/// The command line as a person would type it, for error messages.
pub(crate) fn describe(program: &str, args: &[&str]) -> String {
    let mut line = program.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    line
}

/// Runs a command to completion and returns its output whatever its exit status.
pub(crate) fn output(program: &str, args: &[&str]) -> Result<Output, LabError> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            command: describe(program, args),
            source,
        })
}

/// Runs a command to completion; an unsuccessful exit is an error carrying its stderr.
pub(crate) fn checked(program: &str, args: &[&str]) -> Result<Output, LabError> {
    let out = output(program, args)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(LabError::Command {
            command: describe(program, args),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Sends a signal (a name such as `TERM`, `KILL`, `STOP`) to processes with the `kill` command.
pub(crate) fn signal(signal: &str, pids: &[u32]) -> Result<(), LabError> {
    if signal.is_empty() || !signal.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(LabError::Invalid {
            what: "signal",
            value: signal.to_owned(),
            reason: "use a signal name such as TERM, KILL, STOP or CONT",
        });
    }
    if pids.is_empty() {
        return Ok(());
    }
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let mut args = vec!["-s", signal];
    args.extend(pids.iter().map(String::as_str));
    checked("kill", &args).map(drop)
}
