//! The traffic programs over loopback: checksummed streams, the HTTP server and client, and
//! UDP echo. No root needed.
#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot set up its servers should fail loudly"
)]

use std::net::{SocketAddr, TcpListener};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tether_lab::StopFlag;
use tether_lab::stream::{self, ServeSummary, StreamClientConfig, StreamOutcome, StreamReport};

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
