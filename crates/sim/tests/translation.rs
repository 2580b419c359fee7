//! A NAT'd TCP connection whose packets cross two different agents is translated byte for
//! byte in both directions, with real encoded messages between the agents and the manager.

mod common;

use core::net::SocketAddr;
use core::time::Duration;

use common::*;
use tether_agent::Verdict;
use tether_manager::{Decisions, SchedulerKind};
use tether_sim::{AgentId, ManagerId, World};
use tether_wire::AffinityKey;

/// The backend the manager chose for `key`, as its flow store says.
fn backend_of(world: &mut World, m: ManagerId, key: &AffinityKey, backends: &[&str]) -> SocketAddr {
    let flow = world
        .manager(m)
        .sm
        .flow(key)
        .unwrap_or_else(|| panic!("manager has no flow for {key}"));
    let index: usize = flow.backend[1..]
        .parse::<usize>()
        .expect("backend named bN")
        - 1;
    SocketAddr::new(ip(backends[index]), BACKEND_PORT)
}

/// Sends `segment` into `agent` and returns the one IP packet the agent forwards for it,
/// whether at once or after a round trip to the manager.
fn cross(world: &mut World, agent: AgentId, segment: &Segment<'_>, expect_punt: bool) -> Vec<u8> {
    let verdict = world.inject_frame(agent, segment.frame());
    if expect_punt {
        assert_eq!(
            verdict,
            Verdict::ToManager,
            "{segment:?} should go to the manager"
        );
        world.settle(Duration::from_secs(1));
    } else {
        assert!(
            matches!(verdict, Verdict::Forward(_)),
            "{segment:?} should be forwarded at once, got {verdict:?}"
        );
    }
    let mut out = world.take_emitted(agent);
    assert_eq!(out.len(), 1, "exactly one packet out for {segment:?}");
    out.remove(0).packet
}

fn connection_across_two_agents(vip: &str, client: &str, backends: &[&str], decisions: Decisions) {
    let mut web = service("web", vip, backends, SchedulerKind::MAGLEV);
    web.decisions = decisions;
    let (mut world, m, a1, a2) = world(vec![web]);
    let vip = SocketAddr::new(ip(vip), 80);
    let client = SocketAddr::new(ip(client), 40_000);

    // SYN through agent 1. Manager decisions: punted, scheduled, returned with the fixed
    // affinity, translated. Local decisions: placed and translated at once, then reported.
    let syn = Segment {
        syn: true,
        seq: 1000,
        ..Segment::new(client, vip)
    };
    let out = cross(&mut world, a1, &syn, decisions == Decisions::Manager);
    world.settle(Duration::from_secs(1));
    let key = AffinityKey {
        protocol: 6,
        src: client.ip(),
        src_port: 40_000,
        dst: vip.ip(),
        dst_port: 80,
    };
    let backend = backend_of(&mut world, m, &key, backends);
    assert_eq!(
        out,
        syn.translated(client, backend).ip_packet(),
        "SYN to the backend"
    );

    // SYN-ACK from the backend through agent 2, which has no affinity for it yet.
    let syn_ack = Segment {
        syn: true,
        seq: 5000,
        ack: Some(1001),
        ..Segment::new(backend, client)
    };
    let out = cross(&mut world, a2, &syn_ack, true);
    assert_eq!(
        out,
        syn_ack.translated(vip, client).ip_packet(),
        "SYN-ACK to the client"
    );

    // The client's request through agent 2: the manager gives it the same forward affinity.
    let request = Segment {
        seq: 1001,
        ack: Some(5001),
        payload: b"GET / HTTP/1.1\r\nHost: tether\r\n\r\n",
        ..Segment::new(client, vip)
    };
    let out = cross(&mut world, a2, &request, true);
    assert_eq!(
        out,
        request.translated(client, backend).ip_packet(),
        "request to the backend"
    );

    // The response through agent 1, which got the return affinity ahead of time: no punt.
    let response = Segment {
        seq: 5001,
        ack: Some(1033),
        payload: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ..Segment::new(backend, client)
    };
    let out = cross(&mut world, a1, &response, false);
    assert_eq!(
        out,
        response.translated(vip, client).ip_packet(),
        "response to the client"
    );

    // Both agents now hold both directions; later packets never reach the manager.
    let fin = Segment {
        seq: 1033,
        ack: Some(5040),
        fin: true,
        ..Segment::new(client, vip)
    };
    let out = cross(&mut world, a2, &fin, false);
    assert_eq!(
        out,
        fin.translated(client, backend).ip_packet(),
        "FIN to the backend"
    );
    let out = cross(&mut world, a1, &fin, false);
    assert_eq!(
        out,
        fin.translated(client, backend).ip_packet(),
        "FIN via agent 1 too"
    );
    world.settle(Duration::from_secs(1));
    let counters = world.manager(m).sm.status().counters;
    assert_eq!(
        counters.flows_created, 1,
        "one connection, one scheduling decision"
    );
    assert_eq!(counters.flows_closed, 1, "the FIN closed the stored flow");
    let reported = u64::from(decisions == Decisions::Local);
    assert_eq!(counters.flows_reported, reported, "placed by the agent");
    assert_eq!(counters.flows_recovered, 0);
}

#[test]
fn ipv4_connection_whose_packets_cross_two_agents_is_translated_byte_for_byte() {
    connection_across_two_agents(VIP4, CLIENT4, &BACKENDS4, Decisions::Manager);
}

#[test]
fn ipv6_connection_whose_packets_cross_two_agents_is_translated_byte_for_byte() {
    connection_across_two_agents(VIP6, CLIENT6, &BACKENDS6, Decisions::Manager);
}

#[test]
fn ipv4_connection_placed_by_the_agent_is_translated_byte_for_byte() {
    connection_across_two_agents(VIP4, CLIENT4, &BACKENDS4, Decisions::Local);
}

#[test]
fn ipv6_connection_placed_by_the_agent_is_translated_byte_for_byte() {
    connection_across_two_agents(VIP6, CLIENT6, &BACKENDS6, Decisions::Local);
}

#[test]
fn duplicate_syn_lands_on_the_same_backend_from_any_agent() {
    // Round robin would pick another backend for a second scheduling decision, so only a
    // manager that recognises the duplicate passes.
    let (mut world, m, a1, a2) = world(vec![service(
        "web",
        VIP4,
        &BACKENDS4,
        SchedulerKind::WeightedRoundRobin,
    )]);
    let vip = SocketAddr::new(ip(VIP4), 80);
    let client = SocketAddr::new(ip(CLIENT4), 40_001);
    let syn = Segment {
        syn: true,
        seq: 77,
        ..Segment::new(client, vip)
    };

    let first = cross(&mut world, a1, &syn, true);
    // The retransmitted SYN crosses agent 2, which asks the manager again.
    let second = cross(&mut world, a2, &syn, true);
    // And once more through agent 1: it holds the fixed affinity, but a SYN goes to the
    // manager all the same (a retransmission or a reused port, which only it can tell apart).
    let third = cross(&mut world, a1, &syn, true);
    assert_eq!(first, second);
    assert_eq!(first, third);

    // A different client connection is a new flow and moves round robin on.
    let other = Segment {
        syn: true,
        seq: 78,
        ..Segment::new(SocketAddr::new(ip(CLIENT4), 40_002), vip)
    };
    let out = cross(&mut world, a2, &other, true);
    assert_ne!(
        out[16..20],
        first[16..20],
        "round robin picks the next backend for a new flow"
    );
    assert_eq!(world.manager(m).sm.status().counters.flows_created, 2);
}

#[test]
fn a_new_connection_reusing_a_closed_flows_port_is_scheduled_afresh() {
    let (mut world, m, a1, _) = world(vec![service(
        "web",
        VIP4,
        &BACKENDS4,
        SchedulerKind::WeightedRoundRobin,
    )]);
    let vip = SocketAddr::new(ip(VIP4), 80);
    let client = SocketAddr::new(ip(CLIENT4), 40_003);
    let syn = Segment {
        syn: true,
        seq: 10,
        ..Segment::new(client, vip)
    };
    let first = cross(&mut world, a1, &syn, true);
    let fin = Segment {
        seq: 11,
        ack: Some(1),
        fin: true,
        ..Segment::new(client, vip)
    };
    assert_eq!(cross(&mut world, a1, &fin, false)[16..20], first[16..20]);
    world.settle(Duration::from_secs(1));

    // The same 5-tuple opens a new connection while the agent still caches the old affinity.
    let again = Segment {
        syn: true,
        seq: 90_000,
        ..Segment::new(client, vip)
    };
    let out = cross(&mut world, a1, &again, true);
    assert_ne!(
        out[16..20],
        first[16..20],
        "the closed flow's backend does not bind the new one"
    );
    let counters = world.manager(m).sm.status().counters;
    assert_eq!((counters.flows_created, counters.flows_reused), (2, 1));
}
