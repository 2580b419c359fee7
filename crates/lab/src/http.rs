//! A tiny HTTP/1.1 server that names its backend, and a minimal client, for the demo and for
//! tests that need an HTTP backend without nginx.
//!
//! Every `GET` or `HEAD` (including `/health`) is answered `200` with the body
//! `backend=NAME\n`; other methods get `405`. Connections are kept alive unless the client
//! sends `Connection: close` (or speaks HTTP/1.0 without `keep-alive`).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::net::{Patience, accept_loop, bind_tcp, connect, read_some, write_all};
use crate::{LabError, StopFlag};

/// How long an idle keep-alive connection is kept open.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Longest request head accepted, and longest response the client reads.
const MAX_MESSAGE: usize = 64 * 1024;

/// Serves HTTP on `listen` as backend `name` until `stop` is set.
pub fn serve(listen: SocketAddr, name: &str, stop: &StopFlag) -> Result<(), LabError> {
    serve_on(&bind_tcp(listen)?, name, stop)
}

/// Serves HTTP on a bound listener (e.g. one on port 0) as backend `name` until `stop` is set.
pub fn serve_on(listener: &TcpListener, name: &str, stop: &StopFlag) -> Result<(), LabError> {
    let body = format!("backend={name}\n");
    accept_loop(listener, stop, |stream, _| {
        // A broken connection only ends itself; the server carries on.
        let _ = handle(&stream, &body, stop);
    })
}

/// Answers requests on one connection until it closes or asks to.
fn handle(stream: &TcpStream, body: &str, stop: &StopFlag) -> io::Result<()> {
    let patience = Patience {
        idle: KEEP_ALIVE,
        stop: Some(stop),
    };
    patience.apply(stream)?;
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_len = loop {
            if let Some(at) = find(&pending, b"\r\n\r\n") {
                break at + 4;
            }
            if pending.len() > MAX_MESSAGE {
                return respond(
                    stream,
                    patience,
                    Status::HeadTooLarge,
                    "request head too large\n",
                    false,
                    true,
                );
            }
            match read_some(stream, &mut chunk, patience)? {
                0 => return Ok(()),
                n => pending.extend_from_slice(&chunk[..n]),
            }
        };
        let Some(request) = Request::parse(&String::from_utf8_lossy(&pending[..head_len])) else {
            return respond(
                stream,
                patience,
                Status::BadRequest,
                "bad request\n",
                false,
                true,
            );
        };
        // Bodies are read and thrown away, so the next request starts in the right place.
        while pending.len() < head_len + request.content_length {
            match read_some(stream, &mut chunk, patience)? {
                0 => return Ok(()),
                n => pending.extend_from_slice(&chunk[..n]),
            }
        }
        pending.drain(..head_len + request.content_length);
        let (status, text) = match request.method.as_str() {
            "GET" | "HEAD" => (Status::Ok, body),
            _ => (Status::MethodNotAllowed, "only GET and HEAD are served\n"),
        };
        let with_body = request.method != "HEAD";
        respond(
            stream,
            patience,
            status,
            text,
            with_body,
            !request.keep_alive,
        )?;
        if !request.keep_alive {
            return Ok(());
        }
    }
}

/// The parts of a request the server acts on.
struct Request {
    method: String,
    keep_alive: bool,
    content_length: usize,
}

impl Request {
    fn parse(head: &str) -> Option<Request> {
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_owned();
        let _path = first.next()?;
        let version = first.next()?;
        let mut keep_alive = match version {
            "HTTP/1.1" => true,
            "HTTP/1.0" => false,
            _ => return None,
        };
        let mut content_length = 0;
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':')?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("connection") {
                if value.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if value.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            } else if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().ok()?;
            }
        }
        Some(Request {
            method,
            keep_alive,
            content_length,
        })
    }
}

/// The statuses the server answers with.
#[derive(Clone, Copy)]
enum Status {
    Ok,
    BadRequest,
    MethodNotAllowed,
    HeadTooLarge,
}

fn respond(
    stream: &TcpStream,
    patience: Patience<'_>,
    status: Status,
    body: &str,
    with_body: bool,
    close: bool,
) -> io::Result<()> {
    let (status, reason) = match status {
        Status::Ok => (200, "OK"),
        Status::BadRequest => (400, "Bad Request"),
        Status::MethodNotAllowed => (405, "Method Not Allowed"),
        Status::HeadTooLarge => (431, "Request Header Fields Too Large"),
    };
    let connection = if close { "close" } else { "keep-alive" };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nServer: tether-lab\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    );
    if with_body {
        response.push_str(body);
    }
    write_all(stream, response.as_bytes(), patience)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends `GET path` to `addr` with `Connection: close`; returns the status and the body.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String), LabError> {
    let context = |what: &str| format!("HTTP GET {path} from {addr}: {what}");
    let stream =
        connect(addr, None, timeout).map_err(|e| LabError::io(context("connecting"), e))?;
    let patience = Patience {
        idle: timeout,
        stop: None,
    };
    patience
        .apply(&stream)
        .map_err(|e| LabError::io(context("setting timeouts"), e))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: tether-lab\r\nConnection: close\r\n\r\n"
    );
    write_all(&stream, request.as_bytes(), patience)
        .map_err(|e| LabError::io(context("sending"), e))?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match read_some(&stream, &mut chunk, patience) {
            Ok(0) => break,
            Ok(n) if response.len() + n <= MAX_MESSAGE => response.extend_from_slice(&chunk[..n]),
            Ok(_) => return Err(bad(addr, "the response is longer than 64 KiB")),
            Err(e) => return Err(LabError::io(context("receiving"), e)),
        }
    }
    parse_response(addr, &response)
}

/// Splits a whole response into its status and body.
fn parse_response(addr: SocketAddr, response: &[u8]) -> Result<(u16, String), LabError> {
    let head_len = find(response, b"\r\n\r\n")
        .ok_or_else(|| bad(addr, "the response ended inside its head"))?
        + 4;
    let head = String::from_utf8_lossy(&response[..head_len]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| head.starts_with("HTTP/1."))
        .ok_or_else(|| bad(addr, "the status line is not HTTP/1.x"))?;
    let mut body = &response[head_len..];
    let length = head.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    if let Some(length) = length {
        body = body
            .get(..length)
            .ok_or_else(|| bad(addr, "the body is shorter than its Content-Length"))?;
    }
    Ok((status, String::from_utf8_lossy(body).into_owned()))
}

fn bad(addr: SocketAddr, reason: &str) -> LabError {
    LabError::Protocol {
        peer: format!("HTTP server {addr}"),
        reason: reason.to_owned(),
    }
}
