//! The stream protocol against servers that misbehave on purpose: short, corrupt, silent,
//! chatty and resetting peers must each be reported as such.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::*;
use crate::stream::{StreamClientConfig, StreamOutcome, run};

/// Payload bytes per stream in these tests.
const TOTAL: u64 = 64 * 1024;

/// A one-connection server that greets as `fake`, drains the client in the background, and
/// then lets `behave` misbehave with the stream and its header.
fn fake_server(
    behave: impl FnOnce(&TcpStream, Header) + Send + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut raw = [0u8; Header::LEN];
        (&stream).read_exact(&mut raw).unwrap();
        let header = Header::decode(&raw).unwrap();
        (&stream).write_all(b"\x04fake").unwrap();
        let drain = stream.try_clone().unwrap();
        let drainer = thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = (&drain).read_to_end(&mut sink);
        });
        behave(&stream, header);
        drainer.join().unwrap();
    });
    (addr, server)
}

/// `len` bytes of the sequence the server owes for `header`.
fn owed(header: Header, len: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; usize::try_from(len).unwrap()];
    pattern::fill(header.seed, 0, &mut bytes);
    bytes
}

fn one_stream(target: SocketAddr) -> StreamResult {
    let mut config = StreamClientConfig::new(target);
    config.bytes_per_stream = TOTAL;
    config.stall_timeout = Duration::from_millis(300);
    let mut report = run(&config);
    assert_eq!(report.streams.len(), 1);
    report.streams.remove(0)
}

#[test]
fn a_server_that_closes_early_is_a_short_read() {
    let (addr, server) = fake_server(|stream, header| {
        (&*stream).write_all(&owed(header, 1000)).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let result = one_stream(addr);
    server.join().unwrap();
    assert_eq!(result.outcome, StreamOutcome::ShortRead, "{result:?}");
    assert_eq!((result.bytes_received, result.bytes_verified), (1000, 1000));
    assert_eq!(result.server.as_deref(), Some("fake"));
}

#[test]
fn a_flipped_byte_is_reported_at_its_offset() {
    let (addr, server) = fake_server(|stream, header| {
        let mut bytes = owed(header, TOTAL);
        bytes[3210] ^= 1;
        let _ = (&*stream).write_all(&bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
    });
    let result = one_stream(addr);
    server.join().unwrap();
    assert_eq!(
        result.outcome,
        StreamOutcome::Corrupt { offset: 3210 },
        "{result:?}"
    );
    assert_eq!(result.bytes_verified, 3210);
}

#[test]
fn bytes_beyond_the_announced_total_are_corruption() {
    let (addr, server) = fake_server(|stream, header| {
        let _ = (&*stream).write_all(&owed(header, TOTAL + 1));
        let _ = stream.shutdown(std::net::Shutdown::Write);
    });
    let result = one_stream(addr);
    server.join().unwrap();
    assert_eq!(
        result.outcome,
        StreamOutcome::Corrupt { offset: TOTAL },
        "{result:?}"
    );
    assert_eq!(result.bytes_verified, TOTAL);
}

#[test]
fn a_silent_server_is_a_stall() {
    let (addr, server) = fake_server(|_, _| thread::sleep(Duration::from_secs(1)));
    let result = one_stream(addr);
    server.join().unwrap();
    assert_eq!(result.outcome, StreamOutcome::Stalled, "{result:?}");
}

#[test]
fn a_reset_is_reported_as_such() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut raw = [0u8; Header::LEN];
        stream.read_exact(&mut raw).unwrap();
        let header = Header::decode(&raw).unwrap();
        stream.write_all(b"\x04fake").unwrap();
        stream.write_all(&owed(header, 100)).unwrap();
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
    let result = one_stream(addr);
    server.join().unwrap();
    assert_eq!(result.outcome, StreamOutcome::Reset, "{result:?}");
}

#[test]
fn nobody_listening_is_a_failed_connect() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let result = one_stream(addr);
    assert_eq!(result.outcome, StreamOutcome::ConnectFailed, "{result:?}");
    assert!(result.detail.unwrap().contains("connecting"));
}

#[test]
fn headers_round_trip_and_strangers_are_refused() {
    let header = Header {
        id: 7,
        total: 1 << 40,
        seed: 0xdead_beef,
        rate: 1000,
    };
    assert_eq!(Header::decode(&header.encode()), Some(header));
    let mut stranger = header.encode();
    stranger[0] = b'G';
    assert_eq!(Header::decode(&stranger), None);
}

#[test]
fn a_sequence_is_sent_whole_and_in_order() {
    let mut got = Vec::new();
    let (sent, result) = send_sequence(5, 40_000, 0, None, |b: &[u8]| {
        got.extend_from_slice(b);
        Ok::<(), ()>(())
    });
    assert_eq!((sent, result), (40_000, Ok(())));
    let mut verifier = pattern::Verifier::new(5);
    assert_eq!(verifier.check(&got), Ok(()));
}
