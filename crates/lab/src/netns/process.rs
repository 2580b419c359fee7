//! A child process started inside a namespace, stopped when its guard drops.
#![expect(
    clippy::disallowed_types,
    reason = "the lab waits on real programs, so it needs the wall clock"
)]

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::LabError;
use crate::command::signal;

/// How long a process gets between SIGTERM and SIGKILL when its guard drops.
const GRACE: Duration = Duration::from_secs(1);

/// How long to wait, after a process exits, for the last of its output to arrive.
const DRAIN: Duration = Duration::from_secs(1);

/// A running program inside a [`Host`](crate::netns::Host); SIGTERM, then SIGKILL, on drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
    command: String,
    stdout: Capture,
    stderr: Capture,
}

/// Collects one output pipe on a thread, so the child never blocks on a full pipe.
#[derive(Debug)]
struct Capture {
    data: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Process {
    pub(crate) fn new(mut child: Child, command: String) -> Process {
        let stdout = Capture::start(child.stdout.take());
        let stderr = Capture::start(child.stderr.take());
        Process {
            child,
            command,
            stdout,
            stderr,
        }
    }

    /// The process id (the program itself: `ip netns exec` replaces itself with it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line that started it.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Its exit status if it has exited, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, LabError> {
        let status = self
            .child
            .try_wait()
            .map_err(|e| LabError::io(format!("checking on `{}`", self.command), e))?;
        if status.is_some() {
            self.stdout.finish();
            self.stderr.finish();
        }
        Ok(status)
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, LabError> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if start.elapsed() >= timeout {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`, …) with the `kill` command.
    pub fn kill(&mut self, signal_name: &str) -> Result<(), LabError> {
        if self.try_wait()?.is_some() {
            return Err(LabError::Invalid {
                what: "process",
                value: self.command.clone(),
                reason: "it has already exited, so it cannot be signalled",
            });
        }
        signal(signal_name, &[self.pid()])
    }

    /// Stops the process: SIGTERM, then SIGKILL if it is still running after a short grace.
    pub fn stop(&mut self) -> Result<ExitStatus, LabError> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        // CONT first, so a process a test froze with STOP can act on the TERM.
        signal("TERM", &[self.pid()])?;
        signal("CONT", &[self.pid()])?;
        if let Some(status) = self.wait_timeout(GRACE)? {
            return Ok(status);
        }
        self.child
            .kill()
            .map_err(|e| LabError::io(format!("killing `{}`", self.command), e))?;
        let status = self
            .child
            .wait()
            .map_err(|e| LabError::io(format!("waiting for `{}`", self.command), e))?;
        self.stdout.finish();
        self.stderr.finish();
        Ok(status)
    }

    /// What the process has written to standard output so far.
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// What the process has written to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("tether-lab: stopping `{}`: {e}", self.command);
        }
    }
}

impl Capture {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Capture {
        let data = Arc::new(Mutex::new(Vec::new()));
        let reader = pipe.map(|mut pipe| {
            let data = Arc::clone(&data);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    data.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&buf[..n]);
                }
            })
        });
        Capture { data, reader }
    }

    /// Lets the reader catch up after the process exited; gives up if a grandchild keeps the
    /// pipe open.
    fn finish(&mut self) {
        let Some(reader) = self.reader.take() else {
            return;
        };
        let start = Instant::now();
        while !reader.is_finished() && start.elapsed() < DRAIN {
            thread::sleep(Duration::from_millis(5));
        }
        if reader.is_finished() {
            let _ = reader.join();
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }
}
