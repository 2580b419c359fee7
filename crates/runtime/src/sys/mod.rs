//! The only module of the project with `unsafe` code: thin, safe wrappers over the Linux
//! system calls the packet path needs that no safe crate offers.
//!
//! - [`PacketSocket`]: an AF_PACKET socket bound to one interface with a TPACKET_V2 receive
//!   ring mapped into our memory; [`RxFrame`] lends its frames out in place, one slot each.
//! - [`TxSocket`]: sends a complete Ethernet frame out of any interface, or a [`TxBatch`] of
//!   them with one sendmmsg(2).
//! - [`PollSet`]: poll(2) over a fixed set of descriptors.
//! - [`enter_netns`]: moves the calling thread into another network namespace.
//! - [`CountingAllocator`]: a global allocator for tests that prove a path allocates nothing.
//!
//! Everything else (netlink, UDP, raw IP sockets) goes through `socket2` and safe code.
//! Each `unsafe` block states why it is sound in a `// SAFETY:` line.

mod alloc;
mod batch;
mod ring;

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

pub use alloc::{CountingAllocator, allocations_in};
pub use batch::TxBatch;
pub use ring::{PacketSocket, RingConfig, RxFrame, TxSocket};

/// A system call that failed, with the call and its subject named for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{call} on {subject} failed: {source}")]
pub struct SysError {
    /// The system call (and option) that failed, e.g. `setsockopt(PACKET_RX_RING)`.
    pub call: &'static str,
    /// What it was applied to (an interface, a path).
    pub subject: String,
    /// The operating system's error.
    #[source]
    pub source: io::Error,
}

impl SysError {
    /// Wraps the calling thread's last OS error.
    fn last(call: &'static str, subject: impl Into<String>) -> Self {
        Self {
            call,
            subject: subject.into(),
            source: io::Error::last_os_error(),
        }
    }
}

/// Turns a `-1` return value into the thread's last OS error.
fn check(ret: libc::c_int, call: &'static str, subject: &str) -> Result<libc::c_int, SysError> {
    if ret < 0 {
        Err(SysError::last(call, subject))
    } else {
        Ok(ret)
    }
}

/// Opens a socket and takes ownership of its descriptor.
fn socket(
    domain: libc::c_int,
    kind: libc::c_int,
    protocol: libc::c_int,
    subject: &str,
) -> Result<OwnedFd, SysError> {
    // SAFETY: socket(2) takes no pointers; a non-negative result is a new descriptor we own.
    let fd = check(
        unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) },
        "socket",
        subject,
    )?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets a socket option whose value is a plain C struct or integer.
fn setsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    call: &'static str,
    subject: &str,
) -> Result<(), SysError> {
    // SAFETY: `value` points to a live `T` of exactly the length passed; the kernel only reads.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            core::ptr::from_ref(value).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    check(ret, call, subject).map(drop)
}

/// Moves the calling thread (only it) into the network namespace at `path`, such as
/// `/run/netns/NAME` or `/proc/PID/ns/net`. Sockets opened afterwards, and processes and
/// threads started afterwards, live in that namespace.
pub fn enter_netns(path: &Path) -> Result<(), SysError> {
    let subject = path.display().to_string();
    let file = File::open(path).map_err(|source| SysError {
        call: "open",
        subject: subject.clone(),
        source,
    })?;
    // SAFETY: setns(2) takes a descriptor we hold open for the call and no pointers.
    let ret = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    check(ret, "setns(CLONE_NEWNET)", &subject).map(drop)
}

/// poll(2) over a fixed list of descriptors, reporting which are readable.
#[derive(Debug)]
pub struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// A set watching `fds` for input. The caller keeps them open while it polls; a closed one
    /// only shows up as "ready" (POLLNVAL), never as memory unsafety.
    pub fn new<'a>(fds: impl IntoIterator<Item = BorrowedFd<'a>>) -> Self {
        let fds = fds
            .into_iter()
            .map(|fd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        Self { fds }
    }

    /// Waits until a descriptor is readable or `timeout` passes (`None`: forever). EINTR counts
    /// as a timeout.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<(), SysError> {
        let millis = timeout.map_or(-1, |t| {
            // Round up so a sub-millisecond deadline does not spin.
            libc::c_int::try_from(t.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX)
        });
        for fd in &mut self.fds {
            fd.revents = 0;
        }
        // SAFETY: the pointer and length describe our own initialised `pollfd` vector, which
        // the kernel writes `revents` into and does not keep.
        let ret = unsafe {
            libc::poll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                millis,
            )
        };
        if ret < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(SysError::last("poll", "the worker's descriptors"));
        }
        Ok(())
    }

    /// Whether descriptor number `i` (in the order given to [`PollSet::new`]) is readable or
    /// in error after the last [`PollSet::wait`].
    pub fn is_ready(&self, i: usize) -> bool {
        self.fds.get(i).is_some_and(|fd| fd.revents != 0)
    }
}
