//! The stream client: opens many streams at once and reports how each one ended.
#![expect(
    clippy::disallowed_types,
    reason = "the client reports how long streams took by the wall clock"
)]

use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::pattern::CLIENT_SALT;
use super::{Broken, Header, Progress, expect_end, receive_sequence, send_sequence};
use super::{StreamOutcome, StreamReport, StreamResult};
use crate::net::{Patience, connect, read_exact, write_all};

/// Stack size of stream threads: they hold small buffers, and there may be hundreds.
const THREAD_STACK: usize = 256 * 1024;

/// What the stream client opens, and how long it waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamClientConfig {
    /// The server (or virtual IP) to connect to.
    pub target: SocketAddr,
    /// How many streams to run at once (one thread pair each; up to a few hundred).
    pub streams: u32,
    /// Payload bytes each side sends per stream.
    pub bytes_per_stream: u64,
    /// Bytes per second each side sends per stream, so streams last a chosen time.
    pub rate_limit_per_stream: Option<u64>,
    /// How long a stream may go without a byte moving before it counts as stalled.
    pub stall_timeout: Duration,
    /// How long to wait for each connection to open.
    pub connect_timeout: Duration,
    /// The local address to connect from; the kernel chooses when `None`.
    pub source_ip: Option<IpAddr>,
}

impl StreamClientConfig {
    /// One stream of 1 MiB to `target`, unpaced, 10 s stall and 5 s connect timeouts.
    pub fn new(target: SocketAddr) -> StreamClientConfig {
        StreamClientConfig {
            target,
            streams: 1,
            bytes_per_stream: 1 << 20,
            rate_limit_per_stream: None,
            stall_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            source_ip: None,
        }
    }
}

/// Runs every stream of `config` at once and reports how each ended.
pub fn run(config: &StreamClientConfig) -> StreamReport {
    let start = Instant::now();
    let streams = thread::scope(|scope| {
        let handles: Vec<_> = (0..config.streams)
            .map(|id| {
                thread::Builder::new()
                    .stack_size(THREAD_STACK)
                    .spawn_scoped(scope, move || run_one(config, id))
            })
            .collect();
        handles
            .into_iter()
            .zip(0..)
            .map(|(handle, id)| {
                let failed = |detail: String| StreamResult {
                    outcome: StreamOutcome::Failed,
                    detail: Some(detail),
                    ..empty_result(config, id)
                };
                match handle {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|_| failed("the stream's thread panicked".to_owned())),
                    Err(e) => failed(format!("no thread for the stream: {e}")),
                }
            })
            .collect()
    });
    StreamReport {
        target: config.target,
        streams,
        elapsed_ms: millis(start.elapsed()),
    }
}

/// A result with nothing moved yet.
fn empty_result(config: &StreamClientConfig, id: u32) -> StreamResult {
    StreamResult {
        id,
        outcome: StreamOutcome::Complete,
        detail: None,
        local: None,
        remote: config.target,
        server: None,
        bytes_sent: 0,
        bytes_received: 0,
        bytes_verified: 0,
        elapsed_ms: 0,
    }
}

fn run_one(config: &StreamClientConfig, id: u32) -> StreamResult {
    let start = Instant::now();
    let mut result = empty_result(config, id);
    if let Err((outcome, detail)) = exchange(config, id, &mut result) {
        result.outcome = outcome;
        result.detail = Some(detail);
    }
    result.elapsed_ms = millis(start.elapsed());
    result
}

/// A stream's failure: its outcome and the error behind it.
type Failure = (StreamOutcome, String);

/// Opens one stream, sends and verifies both directions, and fills in `result` as it goes.
fn exchange(
    config: &StreamClientConfig,
    id: u32,
    result: &mut StreamResult,
) -> Result<(), Failure> {
    let stream = connect(config.target, config.source_ip, config.connect_timeout)
        .map_err(|e| (StreamOutcome::ConnectFailed, format!("connecting: {e}")))?;
    result.local = stream.local_addr().ok();
    let patience = Patience {
        idle: config.stall_timeout,
        stop: None,
    };
    patience
        .apply(&stream)
        .map_err(|e| classify_io("setting timeouts", &e))?;
    let header = Header {
        id,
        total: config.bytes_per_stream,
        seed: seed_for(id),
        rate: config.rate_limit_per_stream.unwrap_or(0),
    };
    let (received, (sent, written)) = thread::scope(|scope| {
        let writer = scope.spawn(|| {
            write_all(&stream, &header.encode(), patience)
                .map_err(|e| (0, classify_io("sending the header", &e)))?;
            let (sent, written) = send_sequence(
                header.seed ^ CLIENT_SALT,
                header.total,
                header.rate,
                None,
                |chunk| write_all(&stream, chunk, patience),
            );
            written
                .and_then(|()| stream.shutdown(Shutdown::Write))
                .map_err(|e| (sent, classify_io("sending", &e)))?;
            Ok(sent)
        });
        let received = receive(&stream, header, patience, result);
        // After an early end of stream the writer is left to finish or fail by itself: a
        // reset it meets is the truer outcome. Otherwise it is unblocked, the stream being lost.
        if received
            .as_ref()
            .is_err_and(|(outcome, _)| *outcome != StreamOutcome::ShortRead)
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let written = match writer.join() {
            Ok(Ok(sent)) => (sent, Ok(())),
            Ok(Err((sent, failure))) => (sent, Err(failure)),
            Err(_) => (
                0,
                Err((StreamOutcome::Failed, "the writer panicked".to_owned())),
            ),
        };
        (received, written)
    });
    result.bytes_sent = sent;
    match (received, written) {
        // The kernel reports a reset once: if the writer took it, the reader saw only the end.
        (Err((StreamOutcome::ShortRead, _)), Err(reset @ (StreamOutcome::Reset, _))) => Err(reset),
        (Err(failure), _) => Err(failure),
        (Ok(()), written) => written,
    }
}

/// Reads the server's greeting, the whole sequence and the clean end of stream.
fn receive(
    stream: &TcpStream,
    header: Header,
    patience: Patience<'_>,
    result: &mut StreamResult,
) -> Result<(), Failure> {
    let mut len = [0u8; 1];
    read_exact(stream, &mut len, patience).map_err(|e| classify_io("reading the greeting", &e))?;
    let mut name = vec![0u8; usize::from(len[0])];
    read_exact(stream, &mut name, patience).map_err(|e| classify_io("reading the greeting", &e))?;
    result.server = Some(String::from_utf8_lossy(&name).into_owned());
    let mut progress = Progress::default();
    let received = receive_sequence(stream, header.seed, header.total, patience, &mut progress);
    result.bytes_received = progress.received;
    result.bytes_verified = progress.verified;
    let classify = |broken| match broken {
        Broken::Io(e) => classify_io("receiving", &e),
        Broken::Short => (
            StreamOutcome::ShortRead,
            format!(
                "the server closed after {} of {} bytes",
                progress.received, header.total
            ),
        ),
        Broken::Corrupt(at) => (
            StreamOutcome::Corrupt { offset: at },
            format!("the byte at offset {at} differs from the sequence"),
        ),
    };
    received.map_err(classify)?;
    expect_end(stream, header.total, patience).map_err(classify)
}

/// Names the outcome a socket error means for a stream.
fn classify_io(context: &str, e: &io::Error) -> Failure {
    let outcome = match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => StreamOutcome::Reset,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => StreamOutcome::Stalled,
        io::ErrorKind::UnexpectedEof => StreamOutcome::ShortRead,
        _ => StreamOutcome::Failed,
    };
    (outcome, format!("{context}: {e}"))
}

/// The seed of stream `id`: fixed, so a failing run can be replayed byte for byte.
fn seed_for(id: u32) -> u64 {
    u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x7465_7468_6572_2d6c
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
