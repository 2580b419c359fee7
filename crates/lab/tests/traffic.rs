//! The traffic programs over loopback: checksummed streams, the HTTP server and client, and
//! UDP echo. No root needed.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot set up its servers should fail loudly"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tether_lab::stream::{
    self, ServeReport, ServeSummary, StreamClientConfig, StreamOutcome, StreamReport,
};
use tether_lab::udp::{self, UdpReport};
use tether_lab::{StopFlag, http};

/// A stream server on a free loopback port, with the flag that stops it.
fn stream_server(name: &'static str) -> (SocketAddr, StopFlag, JoinHandle<ServeSummary>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = StopFlag::new();
    let flag = stop.clone();
    let server = thread::spawn(move || stream::serve_on(&listener, name, &flag).unwrap());
    (addr, stop, server)
}

#[test]
fn several_streams_complete_and_name_their_server() {
    let (addr, stop, server) = stream_server("alpha");
    let mut config = StreamClientConfig::new(addr);
    config.streams = 8;
    config.bytes_per_stream = 256 * 1024;
    let report = stream::run(&config);
    assert!(report.all_complete(), "{report}\n{:?}", report.failures());
    assert_eq!(report.servers().get("alpha"), Some(&8));
    for s in &report.streams {
        assert_eq!(s.bytes_sent, 256 * 1024);
        assert_eq!(s.bytes_verified, 256 * 1024);
        assert_eq!(s.remote, addr);
        assert!(s.local.is_some());
    }
    let line = report.to_string();
    assert!(line.starts_with("8/8 streams to"), "{line}");
    assert!(line.ends_with("servers alpha=8"), "{line}");
    stop.stop();
    let summary = server.join().unwrap();
    assert_eq!(
        summary,
        ServeSummary {
            connections: 8,
            complete: 8,
            failed: 0,
            bytes_verified: 8 * 256 * 1024,
        }
    );
}

#[test]
fn the_server_reports_every_connection_by_the_client_address() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = StopFlag::new();
    let flag = stop.clone();
    let server = thread::spawn(move || stream::serve_reporting(&listener, "zeta", &flag).unwrap());
    let mut config = StreamClientConfig::new(addr);
    config.streams = 4;
    config.bytes_per_stream = 64 * 1024;
    let report = stream::run(&config);
    assert!(report.all_complete(), "{report}");
    // A connection that sends no lab header is recorded as incomplete; once the server has
    // closed it, it was accepted, so it is in the report whenever the server stops.
    let mut stranger = TcpStream::connect(addr).unwrap();
    stranger.write_all(&[b'x'; 33]).unwrap();
    let mut rest = Vec::new();
    let _ = stranger.read_to_end(&mut rest);
    stop.stop();
    let served = ServeReport::from_json(&server.join().unwrap().to_json()).unwrap();
    assert_eq!(served.name, "zeta");
    assert_eq!(served.connections.len(), 5, "{served:?}");
    assert_eq!(served.summary.complete, 4);
    assert_eq!(served.summary.failed, 1);
    for s in &report.streams {
        let record = served
            .connections
            .iter()
            .find(|c| Some(c.peer) == s.local)
            .unwrap_or_else(|| panic!("no record for {:?} in {served:?}", s.local));
        assert!(record.complete, "{record:?}");
        assert_eq!(record.stream, Some(s.id));
        assert_eq!(record.bytes_expected, Some(64 * 1024));
        assert_eq!(
            (record.bytes_verified, record.bytes_sent),
            (64 * 1024, 64 * 1024)
        );
    }
    let failed = served.connections.iter().find(|c| !c.complete).unwrap();
    assert_eq!((failed.stream, failed.bytes_verified), (None, 0));
    assert!(
        failed.detail.as_deref().unwrap().contains("header"),
        "{failed:?}"
    );
}

#[test]
fn a_stream_report_round_trips_through_json() {
    let (addr, stop, server) = stream_server("beta");
    let mut config = StreamClientConfig::new(addr);
    config.streams = 3;
    config.bytes_per_stream = 10_000;
    let report = stream::run(&config);
    let json = report.to_json();
    assert!(!json.contains('\n'));
    assert_eq!(StreamReport::from_json(&json).unwrap(), report);
    stop.stop();
    server.join().unwrap();
}

#[test]
fn a_rate_limit_keeps_streams_alive_for_the_chosen_time() {
    let (addr, stop, server) = stream_server("gamma");
    let mut config = StreamClientConfig::new(addr);
    config.streams = 2;
    config.bytes_per_stream = 20_000;
    config.rate_limit_per_stream = Some(40_000);
    let report = stream::run(&config);
    assert!(report.all_complete(), "{report}");
    for s in &report.streams {
        assert!(
            s.elapsed_ms >= 450,
            "a 0.5 s stream took {} ms",
            s.elapsed_ms
        );
    }
    stop.stop();
    server.join().unwrap();
}

#[test]
fn a_stopped_server_ends_its_streams_and_returns() {
    let (addr, stop, server) = stream_server("delta");
    let mut config = StreamClientConfig::new(addr);
    config.bytes_per_stream = 1_000_000;
    config.rate_limit_per_stream = Some(100_000);
    let client = thread::spawn(move || stream::run(&config));
    thread::sleep(Duration::from_millis(300));
    stop.stop();
    let summary = server.join().unwrap();
    assert_eq!((summary.connections, summary.failed), (1, 1));
    let report = client.join().unwrap();
    assert_ne!(report.streams[0].outcome, StreamOutcome::Complete);
}

/// An HTTP server on a free loopback port, with the flag that stops it.
fn http_server(name: &'static str) -> (SocketAddr, StopFlag, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = StopFlag::new();
    let flag = stop.clone();
    let server = thread::spawn(move || http::serve_on(&listener, name, &flag).unwrap());
    (addr, stop, server)
}

/// Reads one response with a `Content-Length` body from a kept-alive connection.
fn read_response(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        response.push(byte[0]);
    }
    let head = String::from_utf8(response).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    head + &String::from_utf8(body).unwrap()
}

#[test]
fn the_http_server_names_its_backend_and_answers_health_checks() {
    let (addr, stop, server) = http_server("web1");
    let timeout = Duration::from_secs(5);
    assert_eq!(
        http::get(addr, "/", timeout).unwrap(),
        (200, "backend=web1\n".to_owned())
    );
    assert_eq!(http::get(addr, "/health", timeout).unwrap().0, 200);
    stop.stop();
    server.join().unwrap();
}

#[test]
fn the_http_server_keeps_connections_alive_until_asked_to_close() {
    let (addr, stop, server) = http_server("web2");
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    for _ in 0..2 {
        let response = read_response(&mut conn);
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("Connection: keep-alive"), "{response}");
        assert!(response.ends_with("backend=web2\n"), "{response}");
    }
    conn.write_all(b"POST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    assert!(read_response(&mut conn).starts_with("HTTP/1.1 405 "));
    conn.write_all(b"GET /d HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let last = read_response(&mut conn);
    assert!(last.contains("Connection: close"), "{last}");
    assert_eq!(conn.read(&mut [0u8; 1]).unwrap(), 0, "the server closed");
    stop.stop();
    server.join().unwrap();
}

#[test]
fn udp_echo_answers_every_datagram_and_each_port_stays_on_its_backend() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let stop = StopFlag::new();
    let flag = stop.clone();
    let server = thread::spawn(move || udp::echo_serve_on(&socket, "echo1", &flag).unwrap());
    let report = udp::run_clients(addr, 10, 1_000, Duration::from_secs(2));
    assert_eq!(
        (report.sent(), report.answered()),
        (10_000, 10_000),
        "{report}"
    );
    assert!(report.each_port_on_one_backend());
    assert_eq!(report.backends().get("echo1"), Some(&10_000));
    assert!(
        report
            .ports
            .iter()
            .all(|p| p.errors == 0 && p.local.is_some())
    );
    assert_eq!(UdpReport::from_json(&report.to_json()).unwrap(), report);
    assert!(
        report.to_string().starts_with("10000/10000 datagrams"),
        "{report}"
    );
    stop.stop();
    assert_eq!(server.join().unwrap(), 10_000);
}

#[test]
fn udp_datagrams_nobody_answers_are_counted_lost() {
    let addr = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let report = udp::run_clients(addr, 2, 50, Duration::from_millis(200));
    assert_eq!(report.answered(), 0, "{report}");
    assert!(report.ports.iter().all(|p| p.lost == p.sent && p.sent > 0));
    assert!(
        report
            .ports
            .iter()
            .all(|p| p.detail.as_deref().is_some_and(|d| d.contains("gave up")))
    );
}

#[test]
fn udp_datagrams_lost_on_the_way_are_written_off_and_the_rest_still_flow() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    // Drops every 100th datagram (by arrival), answers the rest like the lab's echo.
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let server = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for i in 0..2_000 {
            let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                return;
            };
            if i % 100 != 99 {
                let reply = [b"lossy:", &buf[..n]].concat();
                socket.send_to(&reply, peer).unwrap();
            }
        }
    });
    let report = udp::run_clients(addr, 2, 1_000, Duration::from_millis(300));
    server.join().unwrap();
    assert_eq!(report.sent(), 2_000, "{report}");
    assert_eq!(report.answered(), 1_980, "{report}");
    assert_eq!(report.ports.iter().map(|p| p.lost).sum::<usize>(), 20);
}
