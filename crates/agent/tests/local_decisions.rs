//! Local decisions through the agent's public API: a wildcard with a consistent-hash action
//! makes the agent place new flows itself on the backend the manager's Maglev table gives,
//! install the fixed affinities the manager would have sent, and report placements and closes
//! in batched flow reports.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::net::IpAddr;

use common::{C, MANAGER, V, agent, at, eth, ip, key, messages, tcp_packet, udp_packet};
use tether_agent::{Agent, AgentConfig, Verdict};
use tether_proto::maglev::{Maglev, Permutation};
use tether_proto::{
    Actions, ConsistentHash, Envelope, FlowEvent, HashBackend, InterestBits, InterestCriteria,
    Message, WildcardAffinity, WildcardUpdate, codec,
};
use tether_wire::AffinityKey;
use tether_wire::packet::PacketInfo;

const BACKENDS: [&str; 3] = ["10.1.0.5", "10.1.0.6", "10.1.0.7"];
const BACKEND_PORT: u16 = 8080;
const TABLE: u32 = 251;

fn interest() -> InterestCriteria {
    InterestCriteria {
        addr: ip("0.0.0.0"),
        port: 0,
        mask: InterestBits::ALL,
        data: InterestBits::ALL,
        copy: InterestBits::NONE,
        hold: InterestBits::NONE,
    }
}

fn action(protocol_port: u16, eligible: [bool; 3]) -> ConsistentHash {
    ConsistentHash {
        dispatch: false,
        fixed_ttl: 10,
        table_size: TABLE,
        backends: BACKENDS
            .iter()
            .zip(eligible)
            .enumerate()
            .map(|(i, (addr, eligible))| HashBackend {
                addr: ip(addr),
                port: protocol_port,
                weight: 1,
                eligible,
                permutation: Permutation::of(&format!("b{i}"), TABLE),
            })
            .collect(),
    }
}

fn wildcard(affinity: WildcardAffinity, consistent_hash: Option<ConsistentHash>) -> Vec<u8> {
    codec::encode(&Message::WildcardUpdate(WildcardUpdate {
        affinity,
        actions: Actions {
            interest: Some(interest()),
            consistent_hash,
            ..Actions::default()
        },
        action_list: Vec::new(),
        service_precedence: None,
        backup_precedence: Some(1),
        envelope: Envelope::default(),
    }))
}

/// The service's forward wildcard with `eligible` backends, and a return wildcard per backend.
fn install_service(agent: &mut Agent, protocol: u8, eligible: [bool; 3]) {
    let any = ip("0.0.0.0");
    let forward = WildcardAffinity {
        protocol,
        src: any,
        src_mask: any,
        src_port: 0,
        dst: ip(V),
        dst_mask: ip("255.255.255.255"),
        dst_port: 80,
        dispatch: false,
        information: false,
        forward: any,
        ttl: 30,
    };
    let bytes = wildcard(forward, Some(action(BACKEND_PORT, eligible)));
    agent.handle_datagram(at(0.0), MANAGER, &bytes);
    for b in BACKENDS {
        let reply = WildcardAffinity {
            protocol,
            src: ip(b),
            src_mask: ip("255.255.255.255"),
            src_port: BACKEND_PORT,
            dst: any,
            dst_mask: any,
            dst_port: 0,
            dispatch: false,
            information: false,
            forward: any,
            ttl: 30,
        };
        agent.handle_datagram(at(0.0), MANAGER, &wildcard(reply, None));
    }
}

/// The backend the manager's table gives `key` with `eligible` backends, built independently
/// of the agent.
fn expected_backend(key: &AffinityKey, eligible: [bool; 3]) -> IpAddr {
    let names: Vec<String> = (0..3).map(|i| format!("b{i}")).collect();
    let mut table = Maglev::from_permutations(
        TABLE,
        names.iter().map(|n| Permutation::of(n, TABLE)).collect(),
        vec![1; 3],
    );
    table.set_eligible(&eligible);
    ip(BACKENDS[table.pick(key).unwrap()])
}

fn client_syn(port: u16) -> Vec<u8> {
    eth(&tcp_packet(ip(C), port, ip(V), 80, 64, "syn", 1000, 0, b""))
}

/// The rewritten IP packet of a forwarded frame.
fn rewritten(frame: &[u8]) -> (IpAddr, u16, IpAddr, u16) {
    let info = PacketInfo::parse(&frame[14..]).unwrap();
    let k = info.lookup_key();
    (k.src, k.src_port, k.dst, k.dst_port)
}

/// The flow events of every flow report the agent wants sent.
fn reported(agent: &mut Agent) -> Vec<FlowEvent> {
    messages(agent)
        .into_iter()
        .flat_map(|(to, m)| {
            assert_eq!(to, MANAGER, "reports go to the wildcard's interest address");
            match m {
                Message::FlowReport(r) => r.events,
                other => panic!("not a flow report: {other:?}"),
            }
        })
        .collect()
}

#[test]
fn a_syn_is_placed_by_the_table_translated_at_once_and_reported() {
    let mut agent = agent();
    install_service(&mut agent, 6, [true; 3]);
    let flow = key(6, C, 40_000, V, 80);
    let backend = expected_backend(&flow, [true; 3]);

    let mut syn = client_syn(40_000);
    assert!(matches!(
        agent.handle_frame(at(1.0), &mut syn),
        Verdict::Forward(_)
    ));
    assert_eq!(
        rewritten(&syn),
        (ip(C), 40_000, backend, BACKEND_PORT),
        "NAT to the chosen backend"
    );
    assert_eq!(
        reported(&mut agent),
        vec![FlowEvent::Placed {
            key: flow,
            backend,
            port: BACKEND_PORT
        }]
    );
    assert_eq!(agent.fixed_affinities().count(), 2, "forward and return");

    // The backend's answer is translated back by the return affinity the agent made.
    let mut syn_ack = eth(&tcp_packet(
        backend,
        BACKEND_PORT,
        ip(C),
        40_000,
        64,
        "syn|ack",
        5000,
        1001,
        b"",
    ));
    assert!(matches!(
        agent.handle_frame(at(1.0), &mut syn_ack),
        Verdict::Forward(_)
    ));
    assert_eq!(rewritten(&syn_ack), (ip(V), 80, ip(C), 40_000));

    // Established packets and the close stay local; the first FIN is reported once.
    let mut data = eth(&tcp_packet(
        ip(C),
        40_000,
        ip(V),
        80,
        64,
        "ack|psh",
        1001,
        5001,
        b"GET /",
    ));
    assert!(matches!(
        agent.handle_frame(at(1.1), &mut data),
        Verdict::Forward(_)
    ));
    for _ in 0..2 {
        let mut fin = eth(&tcp_packet(
            ip(C),
            40_000,
            ip(V),
            80,
            64,
            "fin|ack",
            1006,
            5001,
            b"",
        ));
        assert!(matches!(
            agent.handle_frame(at(1.2), &mut fin),
            Verdict::Forward(_)
        ));
    }
    assert_eq!(reported(&mut agent), vec![FlowEvent::Closed { key: flow }]);
    let stats = agent.stats();
    assert_eq!(stats.placed_locally, 1);
    assert_eq!(stats.to_manager, 0);
    assert_eq!(stats.interest_matches, 0);
    assert_eq!(stats.flow_reports, 2);
}

#[test]
fn flows_spread_over_the_backends_as_the_table_says_and_reports_are_batched() {
    let mut agent = agent();
    install_service(&mut agent, 6, [true; 3]);
    let mut seen = [0usize; 3];
    for port in 30_000..30_120u16 {
        let mut syn = client_syn(port);
        assert!(matches!(
            agent.handle_frame(at(1.0), &mut syn),
            Verdict::Forward(_)
        ));
        let (_, _, dst, _) = rewritten(&syn);
        assert_eq!(dst, expected_backend(&key(6, C, port, V, 80), [true; 3]));
        seen[BACKENDS.iter().position(|b| ip(b) == dst).unwrap()] += 1;
    }
    assert!(seen.iter().all(|&n| n > 20), "{seen:?}");
    // 120 events of 23 bytes: three datagrams of at most 1400 bytes, in order.
    let sizes: Vec<usize> = std::iter::from_fn(|| agent.poll_transmit())
        .map(|t| t.payload.len())
        .collect();
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n <= 1400), "{sizes:?}");
}

#[test]
fn without_an_eligible_backend_the_syn_goes_to_the_manager() {
    let mut agent = agent();
    install_service(&mut agent, 6, [false; 3]);
    let mut syn = client_syn(40_000);
    assert_eq!(agent.handle_frame(at(1.0), &mut syn), Verdict::ToManager);
    assert_eq!(agent.stats().local_no_backend, 1);
    assert!(matches!(
        messages(&mut agent).as_slice(),
        [(_, Message::InterestMatch(_))]
    ));
}

#[test]
fn a_syn_on_a_placed_flow_follows_a_changed_table() {
    let mut agent = agent();
    install_service(&mut agent, 6, [true; 3]);
    let flow = key(6, C, 40_000, V, 80);
    let first = expected_backend(&flow, [true; 3]);
    let mut syn = client_syn(40_000);
    agent.handle_frame(at(1.0), &mut syn);
    reported(&mut agent);

    // The retransmitted SYN lands on the same backend.
    let mut again = client_syn(40_000);
    agent.handle_frame(at(1.1), &mut again);
    assert_eq!(rewritten(&again).2, first);

    // The manager takes the backend out of the table; a new connection on the same 5-tuple
    // goes where the new table says.
    let mut eligible = [true; 3];
    eligible[BACKENDS.iter().position(|b| ip(b) == first).unwrap()] = false;
    install_service(&mut agent, 6, eligible);
    let second = expected_backend(&flow, eligible);
    assert_ne!(first, second);
    let mut reuse = client_syn(40_000);
    assert!(matches!(
        agent.handle_frame(at(2.0), &mut reuse),
        Verdict::Forward(_)
    ));
    assert_eq!(rewritten(&reuse).2, second);
    assert_eq!(
        reported(&mut agent).last(),
        Some(&FlowEvent::Placed {
            key: flow,
            backend: second,
            port: BACKEND_PORT
        })
    );
}

#[test]
fn a_udp_flow_is_placed_once_and_later_datagrams_follow_it() {
    let mut agent = agent();
    install_service(&mut agent, 17, [true; 3]);
    let flow = key(17, C, 5353, V, 80);
    let backend = expected_backend(&flow, [true; 3]);
    for i in 0..5u8 {
        let mut d = eth(&udp_packet(ip(C), 5353, ip(V), 80, 64, &[i; 8]));
        assert!(matches!(
            agent.handle_frame(at(1.0), &mut d),
            Verdict::Forward(_)
        ));
        assert_eq!(rewritten(&d).2, backend);
    }
    assert_eq!(reported(&mut agent).len(), 1, "one placement");
}

#[test]
fn an_agent_without_local_decisions_asks_the_manager() {
    let mut config = AgentConfig::new("agent-1", ip("10.9.0.100"));
    config.supported.consistent_hash = false;
    let mut agent = Agent::new(config, at(0.0));
    install_service(&mut agent, 6, [true; 3]);
    let mut syn = client_syn(40_000);
    assert_eq!(agent.handle_frame(at(1.0), &mut syn), Verdict::ToManager);
    assert_eq!(agent.stats().placed_locally, 0);
}
