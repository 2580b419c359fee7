//! The standard topology is wired as its diagram says (root: builds network namespaces).

use tether_lab::netns::Lab;
use tether_lab::topology::{Topology, TopologySpec, backend4, backend6, manager4, node_mgmt4};

fn ping(topology: &Topology, to: &str) {
    let out = topology
        .client
        .output(&["ping", "-c", "1", "-W", "2", to])
        .expect("ping runs");
    let addrs = topology.backends[0].output(&["ip", "addr"]).expect("ip");
    assert!(
        out.status.success(),
        "client reaches {to}: {}\nb1: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&addrs.stdout)
    );
}

#[test]
fn clients_reach_every_backend_through_the_node_over_ipv4_and_ipv6() {
    let lab = Lab::new("topo").expect("lab");
    let topology = Topology::build(
        &lab,
        TopologySpec {
            backends: 3,
            backend_mtu: None,
            managers: 0,
        },
    )
    .expect("topology");
    assert_eq!(topology.node_interfaces.len(), 4);
    for k in 1..=3 {
        ping(&topology, &backend4(k).to_string());
        ping(&topology, &backend6(k).to_string());
    }
}

#[test]
fn with_a_small_backend_mtu_the_router_reports_it_to_senders() {
    let lab = Lab::new("topomtu").expect("lab");
    let topology = Topology::build(
        &lab,
        TopologySpec {
            backends: 1,
            backend_mtu: Some(1280),
            managers: 0,
        },
    )
    .expect("topology");
    let out = topology
        .client
        .output(&[
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            "1400",
            &backend4(1).to_string(),
        ])
        .expect("ping runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("mtu = 1280") || text.contains("mtu=1280"),
        "frag-needed from the router: {text}"
    );
    let route = topology
        .client
        .output(&["ip", "route", "get", &backend4(1).to_string()])
        .expect("ip");
    assert!(String::from_utf8_lossy(&route.stdout).contains("mtu 1280"));
}

#[test]
fn manager_hosts_reach_each_other_and_the_node_through_their_own_links() {
    let lab = Lab::new("topomgr").expect("lab");
    let topology = Topology::build(
        &lab,
        TopologySpec {
            backends: 1,
            backend_mtu: None,
            managers: 3,
        },
    )
    .expect("topology");
    assert_eq!(topology.managers.len(), 3);
    assert_eq!(topology.manager_interfaces.len(), 3);
    // The manager links are not data interfaces of the agent.
    assert_eq!(topology.node_interfaces.len(), 2);
    for (from, host) in topology.managers.iter().enumerate() {
        let mut targets = vec![node_mgmt4(1).to_string()];
        targets.extend(
            (1..=3)
                .filter(|k| *k != from + 1)
                .map(|k| manager4(k).to_string()),
        );
        for to in targets {
            let out = host
                .output(&["ping", "-c", "1", "-W", "2", &to])
                .expect("ping runs");
            assert!(
                out.status.success(),
                "m{} reaches {to}: {}",
                from + 1,
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

#[test]
fn more_than_three_managers_are_refused() {
    let lab = Lab::new("topomgr4").expect("lab");
    let err = Topology::build(
        &lab,
        TopologySpec {
            backends: 1,
            backend_mtu: None,
            managers: 4,
        },
    )
    .expect_err("four managers");
    assert!(err.to_string().contains("0 to 3"), "{err}");
}
