//! End to end: a worker NATs a UDP flow from a client to a backend and the reply back.
//!
//! ```text
//!  client 10.74.1.2 ──veth── 10.74.1.1 [agent host] 10.74.2.1 ──veth── 10.74.2.2 backend
//!            VIP 10.74.9.1:5353 (on no interface)          echo server on :7777
//! ```

mod packet_support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use packet_support::{Lab, eventually, in_netns, manager, run, spawn_in_netns};
use tether_agent::AgentConfig;
use tether_runtime::agent_worker::{AgentWorker, AgentWorkerConfig};

const CLIENT: &str = "10.74.1.2:40000";
const VIP: &str = "10.74.9.1:5353";
const BACKEND: &str = "10.74.2.2:7777";

#[test]
fn udp_flow_is_natted_to_the_backend_and_the_reply_comes_from_the_vip() {
    let mut lab = Lab::new("nt");
    let client = lab.netns("c");
    let host = lab.netns("h");
    let backend = lab.netns("b");
    let (c_if, hc_if, hb_if, b_if) = (lab.name("c"), lab.name("hc"), lab.name("hb"), lab.name("b"));
    packet_support::veth(
        &client,
        &c_if,
        "10.74.1.2/24",
        &host,
        &hc_if,
        "10.74.1.1/24",
    );
    packet_support::veth(
        &host,
        &hb_if,
        "10.74.2.1/24",
        &backend,
        &b_if,
        "10.74.2.2/24",
    );
    run(
        "ip",
        &["-n", &client, "route", "add", "default", "via", "10.74.1.1"],
    );
    run(
        "ip",
        &[
            "-n",
            &backend,
            "route",
            "add",
            "default",
            "via",
            "10.74.2.1",
        ],
    );

    let echo = spawn_in_netns(&backend, || {
        let s = UdpSocket::bind(BACKEND).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 1500];
        let (n, from) = s.recv_from(&mut buf).unwrap();
        s.send_to(&buf[..n], from).unwrap();
        from
    });

    let table = lab.name("t");
    let interfaces = vec![hc_if, hb_if];
    let worker = in_netns(&host, move || {
        let addr: IpAddr = "10.74.1.1".parse().unwrap();
        let mut config = AgentWorkerConfig::new(
            AgentConfig::new("agent-h", addr),
            interfaces,
            "0.0.0.0:7401".parse().unwrap(),
        );
        config.steering_table = table;
        let worker = AgentWorker::spawn(config).unwrap();
        let m = UdpSocket::bind("127.0.0.1:0").unwrap();
        manager::send(
            &m,
            "127.0.0.1:7401",
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
