//! Socket plumbing shared by the traffic programs: binding, accepting, connecting, and reads
//! and writes that give up on a stop request or when the peer stalls.
#![expect(
    clippy::disallowed_types,
    reason = "traffic programs measure stalls against the wall clock"
)]

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::{LabError, StopFlag};

/// How often blocked servers look at their [`StopFlag`].
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// Stack size of connection threads: they hold small buffers, and there may be hundreds.
const THREAD_STACK: usize = 256 * 1024;

/// Binds a TCP listener that [`accept_loop`] can poll.
pub(crate) fn bind_tcp(listen: SocketAddr) -> Result<TcpListener, LabError> {
    TcpListener::bind(listen).map_err(|e| LabError::io(format!("binding TCP {listen}"), e))
}

/// Accepts connections until `stop` is set, running `handle` for each on its own thread;
/// returns once every handler has returned.
pub(crate) fn accept_loop<F>(
    listener: &TcpListener,
    stop: &StopFlag,
    handle: F,
) -> Result<(), LabError>
where
    F: Fn(TcpStream, SocketAddr) + Sync,
{
    let local = listener
        .local_addr()
        .map_err(|e| LabError::io("reading the listener's address", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| LabError::io(format!("polling the listener on {local}"), e))?;
    let handle = &handle;
    thread::scope(|scope| {
        while !stop.is_stopped() {
            match listener.accept() {
                Ok((stream, peer)) => {
                    // Dropping the stream on failure refuses the connection; nothing else to do.
                    if stream.set_nonblocking(false).is_ok() {
                        let spawned = thread::Builder::new()
                            .stack_size(THREAD_STACK)
                            .spawn_scoped(scope, move || handle(stream, peer));
                        if let Err(e) = spawned {
                            eprintln!("tether-lab: no thread for {peer} on {local}: {e}");
                        }
                    }
                }
                Err(e) if is_retryable_accept_error(&e) => thread::sleep(POLL / 10),
                Err(e) => return Err(LabError::io(format!("accepting on {local}"), e)),
            }
        }
        Ok(())
    })
}

/// Errors after which the listener still works: nothing pending, or one connection lost.
fn is_retryable_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Opens a TCP connection, from `source_ip` when given.
pub(crate) fn connect(
    target: SocketAddr,
    source_ip: Option<IpAddr>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if let Some(ip) = source_ip {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    socket.connect_timeout(&target.into(), timeout)?;
    Ok(socket.into())
}

/// How long a socket operation waits without progress, and the flag that ends it early.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patience<'a> {
    /// Longest time without a byte moving before the operation fails with `TimedOut`.
    pub(crate) idle: Duration,
    /// When set, the operation fails soon after with `Interrupted`.
    pub(crate) stop: Option<&'a StopFlag>,
}

impl Patience<'_> {
    /// Sets the socket's timeouts so blocked calls come back to look at the clock and flag.
    pub(crate) fn apply(&self, stream: &TcpStream) -> io::Result<()> {
        let slice = if self.stop.is_some() {
            self.idle.min(POLL)
        } else {
            self.idle
        };
        let slice = slice.max(Duration::from_millis(1));
        stream.set_read_timeout(Some(slice))?;
        stream.set_write_timeout(Some(slice))
    }

    /// Fails once a stop was requested, so busy streams end as promptly as idle ones.
    fn check_stop(&self) -> io::Result<()> {
        if self.stop.is_some_and(StopFlag::is_stopped) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stop requested"));
        }
        Ok(())
    }

    /// Decides what a timed-out call means: try again, stalled, or stopped.
    fn check(&self, since: Instant) -> io::Result<()> {
        self.check_stop()?;
        if since.elapsed() >= self.idle {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no progress for {:?}", self.idle),
            ));
        }
        Ok(())
    }
}

/// Whether an error is a socket timeout rather than a failure.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads at least one byte (or 0 at end of stream), within the patience given.
pub(crate) fn read_some(
    stream: &TcpStream,
    buf: &mut [u8],
    patience: Patience<'_>,
) -> io::Result<usize> {
    patience.check_stop()?;
    let since = Instant::now();
    loop {
        match (&*stream).read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if is_timeout(&e) => patience.check(since)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Fills `buf` completely; the end of the stream first is `UnexpectedEof`.
pub(crate) fn read_exact(
    stream: &TcpStream,
    mut buf: &mut [u8],
    patience: Patience<'_>,
) -> io::Result<()> {
    while !buf.is_empty() {
        match read_some(stream, buf, patience)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection early",
                ));
            }
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}

/// Writes all of `buf`, within the patience given for each bit of progress.
pub(crate) fn write_all(
    stream: &TcpStream,
    mut buf: &[u8],
    patience: Patience<'_>,
) -> io::Result<()> {
    patience.check_stop()?;
    let mut since = Instant::now();
    while !buf.is_empty() {
        match (&*stream).write(buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the socket took no bytes",
                ));
            }
            Ok(n) => {
                buf = &buf[n..];
                since = Instant::now();
            }
            Err(e) if is_timeout(&e) => patience.check(since)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
