//! The stream server: answers every connection with its name and a verified two-way stream.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::pattern::CLIENT_SALT;
use super::{Broken, Header, Progress, expect_end, receive_sequence, send_sequence};
use crate::net::{Patience, accept_loop, bind_tcp, read_exact, write_all};
use crate::{LabError, StopFlag};

/// How long a connection may go without progress before the server gives up on it.
const IDLE: Duration = Duration::from_mins(1);

/// What a stream server saw, returned when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeSummary {
    /// Connections accepted.
    pub connections: u64,
    /// Streams that finished intact in both directions.
    pub complete: u64,
    /// Connections that ended any other way.
    pub failed: u64,
    /// Client bytes verified over all connections.
    pub bytes_verified: u64,
}

/// Counters the connection threads share.
#[derive(Default)]
struct Totals {
    connections: AtomicU64,
    complete: AtomicU64,
    failed: AtomicU64,
    bytes_verified: AtomicU64,
}

/// Serves checksummed streams on `listen` as `name` until `stop` is set.
pub fn serve(listen: SocketAddr, name: &str, stop: &StopFlag) -> Result<ServeSummary, LabError> {
    check_name(name)?;
    serve_on(&bind_tcp(listen)?, name, stop)
}

/// Serves checksummed streams on a bound listener (e.g. one on port 0) until `stop` is set.
pub fn serve_on(
    listener: &TcpListener,
    name: &str,
    stop: &StopFlag,
) -> Result<ServeSummary, LabError> {
    check_name(name)?;
    let totals = Totals::default();
    accept_loop(listener, stop, |stream, peer| {
        totals.connections.fetch_add(1, Ordering::Relaxed);
        let mut progress = Progress::default();
        let result = handle(&stream, name, stop, &mut progress);
        totals
            .bytes_verified
            .fetch_add(progress.verified, Ordering::Relaxed);
        match result {
            Ok(()) => totals.complete.fetch_add(1, Ordering::Relaxed),
            Err(why) => {
                eprintln!("stream-server {name}: connection from {peer}: {why}");
                totals.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    })?;
    Ok(ServeSummary {
        connections: totals.connections.into_inner(),
        complete: totals.complete.into_inner(),
        failed: totals.failed.into_inner(),
        bytes_verified: totals.bytes_verified.into_inner(),
    })
}

/// Refuses names that do not fit the one-byte length of the greeting.
fn check_name(name: &str) -> Result<(), LabError> {
    if name.is_empty() || name.len() > usize::from(u8::MAX) {
        return Err(LabError::Invalid {
            what: "server name",
            value: name.to_owned(),
            reason: "use 1 to 255 bytes",
        });
    }
    Ok(())
}

/// Runs one stream; the error says, for the server's log, how it broke.
fn handle(
    stream: &TcpStream,
    name: &str,
    stop: &StopFlag,
    progress: &mut Progress,
) -> Result<(), String> {
    let patience = Patience {
        idle: IDLE,
        stop: Some(stop),
    };
    patience.apply(stream).map_err(|e| e.to_string())?;
    let mut raw = [0u8; Header::LEN];
    read_exact(stream, &mut raw, patience).map_err(|e| format!("reading the header: {e}"))?;
    let header = Header::decode(&raw).ok_or("not a lab stream header")?;
    let mut hello = vec![name.len() as u8];
    hello.extend_from_slice(name.as_bytes());
    write_all(stream, &hello, patience).map_err(|e| format!("greeting: {e}"))?;
    let why = |e: Broken| match e {
        Broken::Io(e) => format!("stream {}: {e}", header.id),
        Broken::Short => format!("stream {}: the client closed early", header.id),
        Broken::Corrupt(at) => format!("stream {}: corrupt at offset {at}", header.id),
    };
    let (received, sent) = thread::scope(|scope| {
        let writer = scope.spawn(|| {
            send_sequence(
                header.seed,
                header.total,
                header.rate,
                Some(stop),
                |chunk| write_all(stream, chunk, patience),
            )
        });
        let received = receive_sequence(
            stream,
            header.seed ^ CLIENT_SALT,
            header.total,
            patience,
            progress,
        );
        if received.is_err() {
            // Unblocks the writer; the stream is lost anyway.
            let _ = stream.shutdown(Shutdown::Both);
        }
        let sent = writer
            .join()
            .map_or_else(|_| Err(io::Error::other("the writer panicked")), |(_, r)| r);
        (received, sent)
    });
    received.map_err(why)?;
    sent.map_err(|e| format!("stream {}: sending: {e}", header.id))?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("stream {}: closing: {e}", header.id))?;
    expect_end(stream, header.total, patience).map_err(why)
}
