//! End to end: a worker NATs a UDP flow from a client to a backend and the reply back.
//!
//! ```text
//!  client 10.74.1.2 ──veth── 10.74.1.1 [agent host] 10.74.2.1 ──veth── 10.74.2.2 backend
//!            VIP 10.74.9.1:5353 (on no interface)          echo server on :7777
//! ```

mod packet_support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use packet_support::{Lab, eventually, in_netns, manager, spawn_in_netns};
use tether_agent::AgentConfig;
use tether_runtime::agent_worker::{AgentWorker, AgentWorkerConfig};

const CLIENT: &str = "10.74.1.2:40000";
const VIP: &str = "10.74.9.1:5353";
const BACKEND: &str = "10.74.2.2:7777";

#[test]
fn udp_flow_is_natted_to_the_backend_and_the_reply_comes_from_the_vip() {
    let (_lab, worker, client, backend) = nat_lab("nt", 7401);
    let echo = spawn_in_netns(&backend, || {
        let s = UdpSocket::bind(BACKEND).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 1500];
        let (n, from) = s.recv_from(&mut buf).unwrap();
        s.send_to(&buf[..n], from).unwrap();
        from
    });
    // Give the echo server time to bind.
    std::thread::sleep(Duration::from_millis(100));

    let reply = in_netns(&client, || {
        let s = UdpSocket::bind(CLIENT).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.send_to(b"hello through tether", VIP).unwrap();
        let mut buf = [0u8; 1500];
        s.recv_from(&mut buf)
            .map(|(n, from)| (buf[..n].to_vec(), from))
    });
    let snapshot = worker.snapshot();
    let (payload, from) = reply.unwrap_or_else(|e| panic!("no echo ({e}); worker: {snapshot:?}"));
    assert_eq!(payload, b"hello through tether");
    assert_eq!(
        from,
        VIP.parse::<SocketAddr>().unwrap(),
        "the reply must come from the VIP"
    );
    assert_eq!(
        echo.join().unwrap(),
        CLIENT.parse::<SocketAddr>().unwrap(),
        "backend sees the client"
    );

    assert!(eventually(2, || worker.snapshot().tx_frames >= 2));
    let snapshot = worker.snapshot();
    assert!(snapshot.stats.forwarded >= 2, "{snapshot:?}");
    worker.shutdown().unwrap();
}

/// Builds the NAT lab with a running worker, returning the lab guard (keep it alive) and the
/// worker.
fn nat_lab(tag: &str, port: u16) -> (Lab, AgentWorker, String, String) {
    let mut lab = Lab::new(tag);
    let (client, host, backend, interfaces) = packet_support::nat_topology(&mut lab);
    let table = lab.name("t");
    let worker = in_netns(&host, move || {
        let addr = IpAddr::from([10, 74, 1, 1]);
        let listen = SocketAddr::from(([0, 0, 0, 0], port));
        let mut config =
            AgentWorkerConfig::new(AgentConfig::new("agent-h", addr), interfaces, listen);
        config.steering_table = table;
        let worker = AgentWorker::spawn(config).expect("start the worker");
        let m = UdpSocket::bind("127.0.0.1:0").expect("bind the manager socket");
        manager::send(
            &m,
            &format!("127.0.0.1:{port}"),
            &[
                manager::wildcard(17, ("0.0.0.0", 0, 0), ("10.74.9.1", 32, 5353)),
                manager::wildcard(17, ("10.74.2.2", 32, 7777), ("0.0.0.0", 0, 0)),
                manager::fixed_udp(CLIENT, VIP, "0.0.0.0:0", BACKEND, "10.74.2.2"),
                manager::fixed_udp(BACKEND, CLIENT, VIP, "0.0.0.0:0", "10.74.1.2"),
            ],
        );
        worker
    });
    assert!(
        eventually(5, || {
            let s = worker.snapshot();
            s.fixed_affinities == 2 && s.steering_rules > 0
        }),
        "affinities or steering missing: {:?}",
        worker.snapshot()
    );
    (lab, worker, client, backend)
}

/// Measures one-way forwarding: `cargo test -p tether-runtime --release --test packet_nat --
/// --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn udp_forwarding_rate() {
    const COUNT: u64 = 200_000;
    let (_lab, worker, client, backend) = nat_lab("nr", 7402);
    let sink = spawn_in_netns(&backend, || {
        let s = UdpSocket::bind(BACKEND).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut got = 0u64;
        let mut buf = [0u8; 2048];
        while s.recv(&mut buf).is_ok() {
            got += 1;
        }
        got
    });
    #[expect(clippy::disallowed_types, reason = "a measurement reads the clock")]
    let started = std::time::Instant::now();
    in_netns(&client, || {
        let s = UdpSocket::bind(CLIENT).unwrap();
        let payload = [7u8; 64];
        for _ in 0..COUNT {
            while s.send_to(&payload, VIP).is_err() {}
        }
    });
    let sent_for = started.elapsed();
    let got = sink.join().unwrap();
    let snapshot = worker.snapshot();
    println!(
        "sent {COUNT} datagrams of 64 bytes in {sent_for:?} ({:.0}/s offered); backend got {got} \
         ({:.1} %); worker tx {} frames, drops {:?}",
        COUNT as f64 / sent_for.as_secs_f64(),
        got as f64 * 100.0 / COUNT as f64,
        snapshot.tx_frames,
        snapshot.runtime_drops
    );
    worker.shutdown().unwrap();
}
