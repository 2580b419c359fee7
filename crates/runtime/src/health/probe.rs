//! One health check attempt against one backend: a TCP connect, or an HTTP/1.1 GET whose status
//! line is read and judged. The result says why, in words an operator reads in the log.

use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;
use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::manager_driver::HealthCheckKind;

/// The longest status line read; a server that sends more before a line feed is not HTTP.
const MAX_STATUS_LINE: u64 = 1024;

/// What a passing check saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The TCP connection was accepted.
    Connected,
    /// The HTTP status was in the expected class.
    Status(u16),
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connected => f.write_str("connected"),
            Self::Status(code) => write!(f, "HTTP {code}"),
        }
    }
}

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The check did not finish within its timeout.
    #[error("timeout after {0:?}")]
    Timeout(Duration),
    /// The TCP connection failed.
    #[error("{}", describe(.0))]
    Connect(io::Error),
    /// Sending the HTTP request failed.
    #[error("sending the request: {}", describe(.0))]
    Send(io::Error),
    /// Reading the HTTP response failed.
    #[error("reading the response: {}", describe(.0))]
    Receive(io::Error),
    /// The server closed the connection without a status line.
    #[error("connection closed before a status line")]
    Closed,
    /// The response does not start with an HTTP status line.
    #[error("not an HTTP status line: {0:?}")]
    Malformed(String),
    /// The HTTP status is outside the expected class.
    #[error("HTTP {0}")]
    Status(u16),
}

/// Runs one check of `kind` against `addr`, all of it within `timeout`.
pub async fn probe(
    kind: &HealthCheckKind,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Pass, Failure> {
    tokio::time::timeout(timeout, attempt(kind, addr))
        .await
        .unwrap_or(Err(Failure::Timeout(timeout)))
}

async fn attempt(kind: &HealthCheckKind, addr: SocketAddr) -> Result<Pass, Failure> {
    let stream = TcpStream::connect(addr).await.map_err(Failure::Connect)?;
    match kind {
        HealthCheckKind::Tcp => Ok(Pass::Connected),
        HealthCheckKind::Http { path, expect_class } => {
            http_get(stream, addr, path, *expect_class).await
        }
    }
}

async fn http_get(
    mut stream: TcpStream,
    addr: SocketAddr,
    path: &str,
    expect_class: u16,
) -> Result<Pass, Failure> {
    // `Connection: close` lets the server end the exchange, so no keep-alive state lingers
    // between checks.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: tether-health-check\r\n\
         Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(Failure::Send)?;
    let mut line = Vec::new();
    BufReader::new(stream.take(MAX_STATUS_LINE))
        .read_until(b'\n', &mut line)
        .await
        .map_err(Failure::Receive)?;
    if line.is_empty() {
        return Err(Failure::Closed);
    }
    let code = status_code(&line).ok_or_else(|| {
        let shown = &line[..line.len().min(64)];
        Failure::Malformed(String::from_utf8_lossy(shown).trim_end().to_owned())
    })?;
    if code / 100 == expect_class {
        Ok(Pass::Status(code))
    } else {
        Err(Failure::Status(code))
    }
}

/// The status code of an HTTP/1.x status line.
fn status_code(line: &[u8]) -> Option<u16> {
    let line = core::str::from_utf8(line).ok()?;
    let mut parts = line.split_ascii_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

/// The error in the words of its kind ("connection refused") where the kind says it all.
fn describe(error: &io::Error) -> String {
    use io::ErrorKind as K;
    match error.kind() {
        kind @ (K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::AddrNotAvailable
        | K::TimedOut
        | K::BrokenPipe
        | K::UnexpectedEof) => kind.to_string(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_parsed_strictly() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"HTTP/1.1 204\r\n"), Some(204));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH_9.6\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 2000 OK\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 099 Odd\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1\r\n"), None);
        assert_eq!(status_code(b"\xff\xfe"), None);
    }

    #[test]
    fn failures_read_as_an_operator_would_say_them() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(Failure::Connect(refused).to_string(), "connection refused");
        assert_eq!(
            Failure::Timeout(Duration::from_secs(1)).to_string(),
            "timeout after 1s"
        );
        assert_eq!(Failure::Status(503).to_string(), "HTTP 503");
        assert_eq!(Pass::Status(200).to_string(), "HTTP 200");
    }
}
