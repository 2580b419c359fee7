//! Steering with a running agent worker: owned traffic reaches the ring but not the host's
//! sockets, other traffic still does, ICMP errors that are not the agent's go back to the
//! kernel, and nothing is left behind after shutdown.

mod packet_support;

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use packet_support::{Lab, eventually, in_netns, manager, ns_exec, run, spawn_in_netns};
use tether_agent::AgentConfig;
use tether_runtime::agent_worker::{AgentWorker, AgentWorkerConfig};

#[test]
fn steered_port_reaches_the_agent_not_the_host_and_the_table_goes_at_shutdown() {
    let mut lab = Lab::new("st");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let (a_if, b_if) = (lab.name("x"), lab.name("y"));
    packet_support::veth(&a, &a_if, "10.73.0.1/24", &b, &b_if, "10.73.0.2/24");
    let table = lab.name("t");

    // A stale table of a crashed run, which start-up must remove.
    ns_exec(&a, &["nft", &format!("add table netdev {table}")]);

    let (a_if2, table2) = (a_if.clone(), table.clone());
    let (worker, steered, open) = in_netns(&a, move || {
        let addr: IpAddr = "10.73.0.1".parse().unwrap();
        let mut config = AgentWorkerConfig::new(
            AgentConfig::new("agent-a", addr),
            vec![a_if2],
            "0.0.0.0:7301".parse().unwrap(),
        );
        config.steering_table = table2;
        config.multicast_group = Some("239.1.73.1:7302".parse().unwrap());
        let worker = AgentWorker::spawn(config).unwrap();
        let steered = UdpSocket::bind("10.73.0.1:5001").unwrap();
        let open = UdpSocket::bind("10.73.0.1:5002").unwrap();
        for s in [&steered, &open] {
            s.set_read_timeout(Some(Duration::from_millis(1500)))
                .unwrap();
        }
        (worker, steered, open)
    });
    // The wildcard comes from a manager on the peer, by multicast.
    run(
        "ip",
        &["-n", &b, "route", "add", "239.0.0.0/8", "dev", &b_if],
    );
    in_netns(&b, || {
        let manager_socket = UdpSocket::bind("10.73.0.2:0").unwrap();
        let wildcard = manager::wildcard(17, ("0.0.0.0", 0, 0), ("10.73.0.1", 32, 5001));
        manager::send(&manager_socket, "239.1.73.1:7302", &[wildcard]);
    });
    assert!(
        eventually(5, || worker.snapshot().steering_rules > 0),
        "steering was not installed: {:?}",
        worker.snapshot()
    );
    let rules = ns_exec(&a, &["nft", "list", "table", "netdev", &table]);
    assert!(rules.contains("udp dport 7301 accept"), "{rules}");
    assert!(rules.contains("udp dport 5001 counter"), "{rules}");

    spawn_in_netns(&b, || {
        let s = UdpSocket::bind("10.73.0.2:0").unwrap();
        for _ in 0..3 {
            s.send_to(b"to-the-agent", "10.73.0.1:5001").unwrap();
            s.send_to(b"to-the-host", "10.73.0.1:5002").unwrap();
        }
    })
    .join()
    .unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = open
        .recv_from(&mut buf)
        .expect("unsteered traffic reaches the host");
    assert_eq!(&buf[..n], b"to-the-host");
    assert!(
        steered.recv_from(&mut buf).is_err(),
        "steered traffic reached the host"
    );
    assert!(eventually(2, || {
        let s = worker.snapshot();
        s.stats.drops.get("forward_unspecified") >= 3
    }));

    worker.shutdown().unwrap();
    let tables = ns_exec(&a, &["nft", "list", "tables"]);
    assert!(!tables.contains(&table), "table left behind: {tables}");
}

#[test]
fn icmp_errors_about_the_hosts_own_traffic_are_given_back_to_the_kernel() {
    let mut lab = Lab::new("ic");
    let a = lab.netns("a");
    let b = lab.netns("b");
    let (a_if, b_if) = (lab.name("x"), lab.name("y"));
    packet_support::veth(&a, &a_if, "10.75.0.1/24", &b, &b_if, "10.75.0.2/24");
    let table = lab.name("t");

    let (worker, refused) = in_netns(&a, move || {
        let addr: IpAddr = "10.75.0.1".parse().unwrap();
        let mut config = AgentWorkerConfig::new(
            AgentConfig::new("agent-a", addr),
            vec![a_if],
            "0.0.0.0:7501".parse().unwrap(),
        );
        config.steering_table = table;
        let worker = AgentWorker::spawn(config).unwrap();
        let manager_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let wildcard = manager::wildcard(17, ("0.0.0.0", 0, 0), ("10.75.0.1", 32, 5001));
        manager::send(&manager_socket, "127.0.0.1:7501", &[wildcard]);
        assert!(eventually(5, || worker.snapshot().steering_rules > 0));
        // Nothing listens on the peer: its port unreachable comes back through the steered
        // interface, and only re-injection gets it to this connected socket.
        let s = UdpSocket::bind("10.75.0.1:0").unwrap();
        s.connect("10.75.0.2:6000").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send(b"anyone there?").unwrap();
        let refused = s.recv(&mut [0u8; 16]).map_err(|e| e.kind());
        (worker, refused)
    });
    assert_eq!(refused, Err(std::io::ErrorKind::ConnectionRefused));
    assert!(
        eventually(2, || worker.snapshot().reinjected >= 1),
        "{:?}",
        worker.snapshot()
    );
    worker.shutdown().unwrap();
}
