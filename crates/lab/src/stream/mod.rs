//! Long-lived checksummed TCP streams: every byte in both directions is verified.
//!
//! A client connects and sends a 33-byte header: `TLAB`, version 1, then big-endian stream
//! id (u32), byte count, seed and pace in bytes per second (u64 each; 0 for unpaced). The
//! server answers with its name (one length byte, then the name). Then both sides send
//! `total` bytes of a sequence whose byte `i` depends only on the seed and `i` — the server
//! from the seed, the client from the seed with a fixed salt — while reading and verifying the
//! other's. Each side then closes its sending half; a stream is complete when both sides
//! have verified every byte and seen a clean end of stream.
//!
//! The server's name tells a test which backend a stream reached, and that it stayed there.
#![expect(
    clippy::disallowed_types,
    reason = "streams are paced against the wall clock"
)]

mod client;
mod pattern;
mod report;
mod server;

pub use client::{StreamClientConfig, run};
pub use report::{StreamOutcome, StreamReport, StreamResult};
pub use server::{ConnectionRecord, ServeReport, ServeSummary, serve, serve_on, serve_reporting};

use std::io;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::StopFlag;
use crate::net::{POLL, Patience, read_some};

/// Marks a lab stream, so a server can refuse a stray connection at once.
const MAGIC: [u8; 4] = *b"TLAB";

/// The protocol version this build speaks.
const VERSION: u8 = 1;

/// Bytes moved per write when a stream is not paced.
const CHUNK: usize = 16 * 1024;

/// What a client asks for when it opens a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    id: u32,
    total: u64,
    seed: u64,
    /// Bytes per second each side may send; 0 for as fast as possible.
    rate: u64,
}

impl Header {
    const LEN: usize = 33;

    fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5..9].copy_from_slice(&self.id.to_be_bytes());
        out[9..17].copy_from_slice(&self.total.to_be_bytes());
        out[17..25].copy_from_slice(&self.seed.to_be_bytes());
        out[25..33].copy_from_slice(&self.rate.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8; Self::LEN]) -> Option<Header> {
        if bytes[..4] != MAGIC || bytes[4] != VERSION {
            return None;
        }
        let u64_at = |at: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(word)
        };
        let mut id = [0u8; 4];
        id.copy_from_slice(&bytes[5..9]);
        Some(Header {
            id: u32::from_be_bytes(id),
            total: u64_at(9),
            seed: u64_at(17),
            rate: u64_at(25),
        })
    }
}

/// Sends `total` bytes of the sequence for `seed`, at most `rate` bytes per second (0: no
/// limit), through `send`; returns how many bytes `send` accepted before it failed.
fn send_sequence<E>(
    seed: u64,
    total: u64,
    rate: u64,
    stop: Option<&StopFlag>,
    mut send: impl FnMut(&[u8]) -> Result<(), E>,
) -> (u64, Result<(), E>) {
    let chunk = if rate == 0 {
        CHUNK
    } else {
        // About twenty writes a second keeps a paced stream smooth without busy work.
        usize::try_from(rate / 20).unwrap_or(CHUNK).clamp(1, CHUNK)
    };
    let mut buf = vec![0u8; chunk];
    let mut sent = 0u64;
    let start = Instant::now();
    while sent < total {
        if rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            while let Some(early) = due.checked_sub(start.elapsed()) {
                if early.is_zero() || stop.is_some_and(StopFlag::is_stopped) {
                    break;
                }
                thread::sleep(early.min(POLL));
            }
        }
        let n = chunk.min(usize::try_from(total - sent).unwrap_or(chunk));
        pattern::fill(seed, sent, &mut buf[..n]);
        if let Err(e) = send(&buf[..n]) {
            return (sent, Err(e));
        }
        sent += n as u64;
    }
    (sent, Ok(()))
}

/// Bytes received and verified so far in one direction.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    received: u64,
    verified: u64,
}

/// Why receiving a sequence stopped short.
#[derive(Debug)]
enum Broken {
    /// The socket failed (reset, stall, stop …).
    Io(io::Error),
    /// The peer closed the connection before sending everything.
    Short,
    /// A byte differed from the sequence at this offset.
    Corrupt(u64),
}

/// Reads `total` bytes of the sequence for `seed`, verifying each, counting into `progress`.
fn receive_sequence(
    stream: &TcpStream,
    seed: u64,
    total: u64,
    patience: Patience<'_>,
    progress: &mut Progress,
) -> Result<(), Broken> {
    let mut verifier = pattern::Verifier::new(seed);
    let mut buf = vec![0u8; CHUNK];
    while progress.received < total {
        let want = usize::try_from(total - progress.received)
            .unwrap_or(CHUNK)
            .min(CHUNK);
        let n = read_some(stream, &mut buf[..want], patience).map_err(Broken::Io)?;
        if n == 0 {
            return Err(Broken::Short);
        }
        progress.received += n as u64;
        let checked = verifier.check(&buf[..n]);
        progress.verified = verifier.offset();
        checked.map_err(Broken::Corrupt)?;
    }
    Ok(())
}

/// Waits for the peer's clean end of stream after the last expected byte at offset `total`.
fn expect_end(stream: &TcpStream, total: u64, patience: Patience<'_>) -> Result<(), Broken> {
    let mut extra = [0u8; 1];
    match read_some(stream, &mut extra, patience) {
        Ok(0) => Ok(()),
        Ok(_) => Err(Broken::Corrupt(total)),
        Err(e) => Err(Broken::Io(e)),
    }
}

#[cfg(test)]
mod tests;
