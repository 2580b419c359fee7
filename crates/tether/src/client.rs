//! A tiny HTTP/1.1 client for the admin API, over a plain `TcpStream`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};

/// How long a request may take before the node is considered unreachable.
const TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP response: status code and body.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body, decoded from chunked transfer encoding when needed.
    pub body: String,
}

/// Sends `method path` to the admin API at `admin` (`host:port`) and reads the whole response.
pub fn request(admin: &str, method: &str, path: &str) -> anyhow::Result<Response> {
    let hint = || {
        format!(
            "cannot reach the admin API at {admin}; is `tether run` up, and is --admin its \
             admin.listen address?"
        )
    };
    let addr = admin
        .to_socket_addrs()
        .with_context(|| format!("--admin {admin}: expected host:port, like 127.0.0.1:9090"))?
        .next()
        .with_context(hint)?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).with_context(hint)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .with_context(hint)?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the answer of {admin}"))?;
    parse(&raw).with_context(|| format!("the answer of {admin} to {method} {path}"))
}

/// Parses a complete HTTP/1.1 response.
fn parse(raw: &[u8]) -> anyhow::Result<Response> {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("the response has no end of headers; is this Tether's admin API?");
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .context("the response has no HTTP status line; is this Tether's admin API?")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[split + 4..];
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8(body).context("the response body is not UTF-8")?,
    })
}

fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size line is cut short")?;
        let size = std::str::from_utf8(&body[..line_end])?
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        let size = usize::from_str_radix(size, 16).context("a chunk size is not hex")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).context("a chunk is cut short")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse(raw).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "abcde"));
    }

    #[test]
    fn plain_bodies_are_kept() {
        let raw = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno";
        let r = parse(raw).unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "no"));
    }
}
