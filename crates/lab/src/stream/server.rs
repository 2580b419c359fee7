//! The stream server: answers every connection with its name and a verified two-way stream.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, PoisonError};
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

/// The fate of one connection a stream server accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// The client's address as the server saw it (after any address translation).
    pub peer: SocketAddr,
    /// The stream number from the client's header, once read.
    pub stream: Option<u32>,
    /// Whether the stream finished intact in both directions and the client closed cleanly.
    pub complete: bool,
    /// Client bytes received that matched the sequence.
    pub bytes_verified: u64,
    /// Bytes of the sequence the server sent (written to its socket).
    pub bytes_sent: u64,
    /// The stream's length announced in the header, once read.
    pub bytes_expected: Option<u64>,
    /// Why the connection failed, when it did.
    pub detail: Option<String>,
}

/// What a stream server saw, connection by connection, returned when it stops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeReport {
    /// The name the server announced.
    pub name: String,
    /// The totals over all connections.
    pub summary: ServeSummary,
    /// One record per accepted connection, in the order they ended.
    pub connections: Vec<ConnectionRecord>,
}

impl ServeReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a serve report has only plain fields")
    }

    /// Reads a report written by [`ServeReport::to_json`].
    pub fn from_json(json: &str) -> Result<ServeReport, LabError> {
        serde_json::from_str(json).map_err(|e| LabError::Protocol {
            peer: "stream server report".to_owned(),
            reason: e.to_string(),
        })
    }
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
    serve_reporting(listener, name, stop).map(|report| report.summary)
}

/// As [`serve_on`], returning a record of every connection as well as the totals.
pub fn serve_reporting(
    listener: &TcpListener,
    name: &str,
    stop: &StopFlag,
) -> Result<ServeReport, LabError> {
    check_name(name)?;
    let records = Mutex::new(Vec::new());
    accept_loop(listener, stop, |stream, peer| {
        let mut record = ConnectionRecord {
            peer,
            stream: None,
            complete: false,
            bytes_verified: 0,
            bytes_sent: 0,
            bytes_expected: None,
            detail: None,
        };
        let result = handle(&stream, name, stop, &mut record);
        match result {
            Ok(()) => record.complete = true,
            Err(why) => {
                eprintln!("stream-server {name}: connection from {peer}: {why}");
                record.detail = Some(why);
            }
        }
        records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    })?;
    let connections = records.into_inner().unwrap_or_else(PoisonError::into_inner);
    let complete = connections.iter().filter(|c| c.complete).count() as u64;
    let summary = ServeSummary {
        connections: connections.len() as u64,
        complete,
        failed: connections.len() as u64 - complete,
        bytes_verified: connections.iter().map(|c| c.bytes_verified).sum(),
    };
    Ok(ServeReport {
        name: name.to_owned(),
        summary,
        connections,
    })
}

/// Refuses a server name that cannot be sent in the stream protocol's greeting.
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
    record: &mut ConnectionRecord,
) -> Result<(), String> {
    let patience = Patience {
        idle: IDLE,
        stop: Some(stop),
    };
    patience.apply(stream).map_err(|e| e.to_string())?;
    let mut raw = [0u8; Header::LEN];
    read_exact(stream, &mut raw, patience).map_err(|e| format!("reading the header: {e}"))?;
    let header = Header::decode(&raw).ok_or("not a lab stream header")?;
    record.stream = Some(header.id);
    record.bytes_expected = Some(header.total);
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
        let mut progress = Progress::default();
        let received = receive_sequence(
            stream,
            header.seed ^ CLIENT_SALT,
            header.total,
            patience,
            &mut progress,
        );
        record.bytes_verified = progress.verified;
        if received.is_err() {
            // Unblocks the writer; the stream is lost anyway.
            let _ = stream.shutdown(Shutdown::Both);
        }
        let sent = writer.join().map_or_else(
            |_| Err(io::Error::other("the writer panicked")),
            |(sent, r)| {
                record.bytes_sent = sent;
                r
            },
        );
        (received, sent)
    });
    received.map_err(why)?;
    sent.map_err(|e| format!("stream {}: sending: {e}", header.id))?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("stream {}: closing: {e}", header.id))?;
    expect_end(stream, header.total, patience).map_err(why)
}
