//! Two agent workers share one node through a PACKET_FANOUT group: many UDP flows are NATted
//! to the backend and answered from the VIP, and both workers carry frames.
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
use tether_runtime::agent_worker::{AgentWorkerConfig, AgentWorkers};

const VIP: &str = "10.74.9.1:5353";
const BACKEND: &str = "10.74.2.2:7777";
/// Client flows (source ports), enough that the fanout hash gives both workers some.
const FLOWS: u16 = 50;

/// The client address of flow `i`.
fn flow_addr(i: u16) -> String {
    format!("10.74.1.2:{}", 41000 + i)
}

#[test]
fn two_workers_nat_many_flows_and_both_carry_frames() {
    let (_lab, workers, client_ns, backend) = nat_lab("wk", 7421);
    let echo = spawn_in_netns(&backend, || {
        let s = UdpSocket::bind(BACKEND).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1500];
        let mut echoed = 0;
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            s.send_to(&buf[..n], from).unwrap();
            echoed += 1;
            if echoed == FLOWS {
                break;
            }
        }
        echoed
    });
    std::thread::sleep(Duration::from_millis(100));
    let answered = in_netns(&client_ns, || {
        let sockets: Vec<UdpSocket> = (0..FLOWS)
            .map(|i| {
                let s = UdpSocket::bind(flow_addr(i)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                s.send_to(format!("flow {i}").as_bytes(), VIP).unwrap();
                s
            })
            .collect();
        let vip: SocketAddr = VIP.parse().unwrap();
        let mut buf = [0u8; 1500];
        sockets
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                s.recv_from(&mut buf).is_ok_and(|(n, from)| {
                    from == vip && buf[..n] == *format!("flow {i}").as_bytes()
                })
            })
            .count()
    });
    let snapshots = workers.snapshots();
    assert_eq!(
        answered,
        usize::from(FLOWS),
        "replies from the VIP: {snapshots:?}"
    );
    assert_eq!(echo.join().unwrap(), FLOWS);
    assert!(
        eventually(2, || workers
            .snapshots()
            .iter()
            .all(|s| s.rx_frames > 0 && s.tx_frames > 0)),
        "both workers must carry frames: {:?}",
        workers.snapshots()
    );
    workers.shutdown().unwrap();
}

/// Builds the NAT lab with a running worker, returning the lab guard (keep it alive) and the
/// worker.
fn nat_lab(tag: &str, port: u16) -> (Lab, AgentWorkers, String, String) {
    let mut lab = Lab::new(tag);
    let (client, host, backend, interfaces) = packet_support::nat_topology(&mut lab);
    let table = lab.name("t");
    let worker = in_netns(&host, move || {
        let addr = IpAddr::from([10, 74, 1, 1]);
        let listen = SocketAddr::from(([0, 0, 0, 0], port));
        let mut config =
            AgentWorkerConfig::new(AgentConfig::new("agent-h", addr), interfaces, listen);
        config.steering_table = table;
        let workers = AgentWorkers::spawn(&config, 2).expect("start the workers");
        let m = UdpSocket::bind("127.0.0.1:0").expect("bind the manager socket");
        for to in [port, port + 1] {
            let to = format!("127.0.0.1:{to}");
            manager::send(
                &m,
                &to,
                &[
                    manager::wildcard(17, ("0.0.0.0", 0, 0), ("10.74.9.1", 32, 5353)),
                    manager::wildcard(17, ("10.74.2.2", 32, 7777), ("0.0.0.0", 0, 0)),
                ],
            );
            for flow in 0..FLOWS {
                let from = flow_addr(flow);
                manager::send(
                    &m,
                    &to,
                    &[
                        manager::fixed_udp(&from, VIP, "0.0.0.0:0", BACKEND, "10.74.2.2"),
                        manager::fixed_udp(BACKEND, &from, VIP, "0.0.0.0:0", "10.74.1.2"),
                    ],
                );
            }
        }
        workers
    });
    assert!(
        eventually(5, || {
            let s = worker.snapshots();
            s.iter().all(|s| s.fixed_affinities == 2 * FLOWS as usize) && s[0].steering_rules > 0
        }),
        "affinities or steering missing: {:?}",
        worker.snapshots()
    );
    (lab, worker, client, backend)
}
