//! The manager's decisions, driven without bytes: packets enter as already-parsed facts, so these
//! tests prove the decision logic whatever the wire and codec crates do.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use tether_proto::{
    ActionListEntry, Actions, AffinityIdentifier, AuthConfig, DeniedAffinity, Envelope,
    FixedAffinity, FixedUpdate, Identity, InterestBits, InterestCriteria, MatchKind, NatAction,
    SegmentType, WildcardAffinity, WildcardUpdate,
};

use super::*;

pub(crate) const MANAGER: &str = "192.0.2.10:4000";
pub(crate) const AGENT: &str = "192.0.2.20:4000";
const OTHER_AGENT: &str = "192.0.2.21:4000";
const GROUP: &str = "239.1.1.1:4000";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn at(secs: u64) -> Timestamp {
    Timestamp::from_duration(Duration::from_secs(secs))
}

fn backend(name: &str, addr: &str, weight: u32) -> BackendConfig {
    BackendConfig {
        name: name.into(),
        addr: ip(addr),
        port: 8080,
        weight,
        state: AdminState::Enabled,
    }
}

pub(crate) fn service(mode: ForwardingMode, scheduler: SchedulerKind) -> ServiceConfig {
    let mut backends = vec![
        backend("a", "10.0.0.1", 1),
        backend("b", "10.0.0.2", 1),
        backend("c", "10.0.0.3", 1),
    ];
    if mode == ForwardingMode::Dsr {
        // Direct server return cannot rewrite the port.
        for b in &mut backends {
            b.port = 80;
        }
    }
    ServiceConfig {
        name: "web".into(),
        vip: ip("198.51.100.1"),
        port: 80,
        protocol: Protocol::Tcp,
        client_domain: (ip("0.0.0.0"), 0),
        scheduler,
        mode,
        decisions: Decisions::Manager,
        backends,
    }
}

pub(crate) fn config(services: Vec<ServiceConfig>) -> ManagerConfig {
    ManagerConfig {
        name: "mgr-1".into(),
        addr: sock(MANAGER),
        auth: AuthConfig::default(),
        initial_sequence: 0,
        announce: vec![sock(GROUP)],
        wildcard_ttl: 30,
        fixed_ttl: 60,
        sticky: Duration::from_secs(10),
        service_precedence: None,
        backup_precedence: 0,
        services,
        peers: Vec::new(),
        heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_misses: DEFAULT_HEARTBEAT_MISSES,
    }
}

fn manager(mode: ForwardingMode, scheduler: SchedulerKind) -> Manager {
    let mut m = Manager::new(config(vec![service(mode, scheduler)]), at(0)).unwrap();
    drain(&mut m);
    m
}

fn drain(m: &mut Manager) -> Vec<(SocketAddr, Message)> {
    core::iter::from_fn(|| m.poll_message()).collect()
}

fn client(port: u16) -> AffinityKey {
    AffinityKey {
        protocol: 6,
        src: ip("203.0.113.7"),
        src_port: port,
        dst: ip("198.51.100.1"),
        dst_port: 80,
    }
}

fn syn(key: AffinityKey) -> PacketFacts {
    PacketFacts {
        key,
        starts_flow: true,
        ends_flow: false,
    }
}

fn mid_flow(key: AffinityKey) -> PacketFacts {
    PacketFacts {
        key,
        starts_flow: false,
        ends_flow: false,
    }
}

/// Hands `facts` to the manager as if agent `from` sent the packet `[port]`, and returns what
/// the manager queued.
fn packet(
    m: &mut Manager,
    now: Timestamp,
    from: &str,
    facts: PacketFacts,
) -> Vec<(SocketAddr, Message)> {
    m.on_packet(now, sock(from), facts, vec![facts.key.src_port as u8]);
    drain(m)
}

fn notify(m: &mut Manager, now: Timestamp, key: AffinityKey, matched: InterestBits) {
    m.handle_message(
        now,
        sock(AGENT),
        Message::InterestMatch(InterestMatch {
            kind: MatchKind::Fixed,
            identifier: AffinityIdentifier {
                key,
                dispatch: false,
                information: false,
                matched,
            },
            envelope: Envelope::default(),
            packet: None,
        }),
    );
}

fn fixed(messages: &[(SocketAddr, Message)]) -> Vec<&FixedUpdate> {
    messages
        .iter()
        .filter_map(|(_, m)| match m {
            Message::FixedUpdate(u) => Some(u),
            _ => None,
        })
        .collect()
}

fn forward_of(messages: &[(SocketAddr, Message)]) -> IpAddr {
    fixed(messages).last().unwrap().affinity.forward
}

fn active(m: &Manager) -> Vec<u64> {
    m.status().services[0]
        .backends
        .iter()
        .map(|b| b.active_flows)
        .collect()
}

fn identity() -> Envelope {
    Envelope {
        identity: Some(Identity {
            addr: ip("192.0.2.10"),
            name: "mgr-1".into(),
        }),
        ..Envelope::default()
    }
}

fn interest(mask: InterestBits, data: InterestBits) -> InterestCriteria {
    InterestCriteria {
        addr: ip("192.0.2.10"),
        port: 4000,
        mask,
        data,
        copy: InterestBits::NONE,
        hold: InterestBits::NONE,
    }
}

#[test]
fn a_nat_flow_gets_exactly_the_documented_fixed_affinities() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    let out = packet(&mut m, at(1), AGENT, syn(client(40_000)));
    let fin_rst = Some(interest(
        InterestBits::FIN | InterestBits::RST,
        InterestBits::NONE,
    ));
    let return_key = AffinityKey {
        protocol: 6,
        src: ip("10.0.0.1"),
        src_port: 8080,
        dst: ip("203.0.113.7"),
        dst_port: 40_000,
    };
    let expected_return = FixedUpdate {
        affinity: FixedAffinity {
            key: return_key,
            dispatch: false,
            information: false,
            forward: ip("203.0.113.7"),
            ttl: 60,
        },
        actions: Actions {
            nat: Some(NatAction {
                src: ip("198.51.100.1"),
                src_port: 80,
                dst: ip("0.0.0.0"),
                dst_port: 0,
            }),
            interest: fin_rst,
            ..Actions::default()
        },
        service_precedence: None,
        backup_precedence: Some(0),
        envelope: identity(),
        packet: None,
    };
    let expected_forward = FixedUpdate {
        affinity: FixedAffinity {
            key: client(40_000),
            dispatch: false,
            information: false,
            forward: ip("10.0.0.1"),
            ttl: 60,
        },
        actions: Actions {
            nat: Some(NatAction {
                src: ip("0.0.0.0"),
                src_port: 0,
                dst: ip("10.0.0.1"),
                dst_port: 8080,
            }),
            // SYNs come back with their packet: a retransmission or a reused 5-tuple.
            interest: Some(interest(
                InterestBits::FIN | InterestBits::RST | InterestBits::SYN,
                InterestBits::SYN,
            )),
            ..Actions::default()
        },
        service_precedence: None,
        backup_precedence: Some(0),
        envelope: identity(),
        packet: Some(vec![0x40]),
    };
    // The return affinity goes ahead, to the same agent, before the packet is released.
    assert_eq!(
        out,
        vec![
            (sock(AGENT), Message::FixedUpdate(expected_return.clone())),
            (sock(AGENT), Message::FixedUpdate(expected_forward)),
        ]
    );

    // The backend's SYN-ACK reaching another agent gets the return affinity with its packet.
    let reply = packet(&mut m, at(2), OTHER_AGENT, mid_flow(return_key));
    let mut with_packet = expected_return;
    with_packet.packet = Some(vec![0x90]);
    assert_eq!(
        reply,
        vec![(sock(OTHER_AGENT), Message::FixedUpdate(with_packet))]
    );
}

#[test]
fn a_dsr_flow_is_dispatched_to_the_backend_without_nat_or_return_affinity() {
    let mut m = manager(ForwardingMode::Dsr, SchedulerKind::WeightedRoundRobin);
    let out = packet(&mut m, at(1), AGENT, syn(client(40_000)));
    let updates = fixed(&out);
    assert_eq!(updates.len(), 1);
    assert!(updates[0].affinity.dispatch);
    assert_eq!(updates[0].affinity.forward, ip("10.0.0.1"));
    assert_eq!(updates[0].actions.nat, None);
    assert_eq!(m.flow(&client(40_000)).unwrap().return_key, None);
}

#[test]
fn duplicate_syn_gets_the_same_backend_from_any_agent() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    let first = packet(&mut m, at(1), AGENT, syn(client(40_000)));
    let again = packet(&mut m, at(2), OTHER_AGENT, syn(client(40_000)));
    assert_eq!(forward_of(&first), forward_of(&again));
    // The same two affinities as the first time, return first, to the agent that asked.
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|(to, _)| *to == sock(OTHER_AGENT)));
    assert_eq!(fixed(&again)[0].affinity, fixed(&first)[0].affinity);
    assert_eq!(fixed(&again)[1].packet, Some(vec![0x40]));
    let status = m.status();
    assert_eq!(status.counters.flows_created, 1);
    assert_eq!(active(&m), [1, 0, 0]);
}

#[test]
fn a_mid_flow_packet_of_an_unknown_flow_is_dropped_not_reset() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    assert!(packet(&mut m, at(1), AGENT, mid_flow(client(40_000))).is_empty());
    assert_eq!(m.status().counters.dropped.unknown_mid_flow, 1);
    assert_eq!(m.status().flows, 0);
}

#[test]
fn an_unknown_reply_goes_back_as_an_ip_packet_only() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    let reply = AffinityKey {
        protocol: 6,
        src: ip("10.0.0.2"),
        src_port: 8080,
        dst: ip("203.0.113.9"),
        dst_port: 5555,
    };
    let out = packet(&mut m, at(1), AGENT, mid_flow(reply));
    assert_eq!(out, vec![(sock(AGENT), Message::IpPacketOnly(vec![0x90]))]);
    assert_eq!(m.status().counters.ip_packets_returned, 1);
    // Neither a service's flow nor its reply: dropped.
    let stray = AffinityKey {
        dst_port: 81,
        ..client(1)
    };
    assert!(packet(&mut m, at(1), AGENT, syn(stray)).is_empty());
    assert_eq!(m.status().counters.dropped.no_service, 1);
}

#[test]
fn draining_keeps_old_flows_and_avoids_new_ones() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    let old = packet(&mut m, at(1), AGENT, syn(client(1)));
    assert_eq!(forward_of(&old), ip("10.0.0.1"));
    m.set_backend_state(at(2), "web", "a", AdminState::Draining)
        .unwrap();
    for port in 2..20 {
        let out = packet(&mut m, at(3), AGENT, syn(client(port)));
        assert_ne!(forward_of(&out), ip("10.0.0.1"));
    }
    // The old flow keeps its backend and is renewed.
    let again = packet(&mut m, at(4), AGENT, mid_flow(client(1)));
    assert_eq!(forward_of(&again), ip("10.0.0.1"));
    assert_eq!(m.flow(&client(1)).unwrap().last_fixed, at(4));
    let backend = &m.status().services[0].backends[0];
    assert_eq!(
        (backend.admin, backend.eligible),
        (AdminState::Draining, false)
    );
    assert_eq!(backend.changed_at, Some(at(2)));
}

#[test]
fn a_backend_that_is_down_takes_no_new_flows_but_keeps_its_own() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::MAGLEV);
    let ports: Vec<u16> = (1..40).collect();
    let before: Vec<IpAddr> = ports
        .iter()
        .map(|&p| forward_of(&packet(&mut m, at(1), AGENT, syn(client(p)))))
        .collect();
    assert!(before.contains(&ip("10.0.0.2")));
    m.set_backend_health(at(2), "web", "b", false).unwrap();
    for (&p, &was) in ports.iter().zip(&before) {
        let out = packet(&mut m, at(3), AGENT, mid_flow(client(p)));
        assert_eq!(forward_of(&out), was);
    }
    for p in 100..140 {
        let out = packet(&mut m, at(3), AGENT, syn(client(p)));
        assert_ne!(forward_of(&out), ip("10.0.0.2"));
    }
    assert!(!m.status().services[0].backends[1].healthy);
}

#[test]
fn a_disabled_backends_flows_are_not_renewed() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    packet(&mut m, at(1), AGENT, syn(client(1)));
    m.set_backend_state(at(2), "web", "a", AdminState::Disabled)
        .unwrap();
    assert!(packet(&mut m, at(3), AGENT, mid_flow(client(1))).is_empty());
    assert_eq!(m.status().counters.dropped.backend_disabled, 1);
    assert_eq!(m.flow(&client(1)).unwrap().last_fixed, at(1));
    m.handle_timeout(at(63));
    assert_eq!(m.flow(&client(1)), None);
    assert_eq!(active(&m), [0, 0, 0]);
}

#[test]
fn no_eligible_backend_refuses_the_flow() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedLeastConnections);
    for name in ["a", "b", "c"] {
        m.set_backend_health(at(1), "web", name, false).unwrap();
    }
    assert!(packet(&mut m, at(2), AGENT, syn(client(1))).is_empty());
    assert_eq!(m.status().counters.dropped.no_backend, 1);
    assert_eq!(
        m.set_backend_health(at(2), "web", "zz", true),
        Err(ControlError::UnknownBackend {
            service: "web".into(),
            backend: "zz".into()
        })
    );
    assert_eq!(
        m.set_backend_state(at(2), "api", "a", AdminState::Enabled),
        Err(ControlError::UnknownService("api".into()))
    );
}

#[test]
fn least_connections_follows_the_active_flows() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedLeastConnections);
    for p in 1..=6 {
        packet(&mut m, at(1), AGENT, syn(client(p)));
    }
    assert_eq!(active(&m), [2, 2, 2]);
    // Closing two of a's flows makes it the least loaded.
    let a_flows: Vec<u16> = (1..=6)
        .filter(|&p| m.flow(&client(p)).unwrap().backend == "a")
        .collect();
    for &p in &a_flows {
        notify(&mut m, at(2), client(p), InterestBits::FIN);
    }
    assert_eq!(active(&m), [0, 2, 2]);
    for p in 7..=8 {
        let out = packet(&mut m, at(3), AGENT, syn(client(p)));
        assert_eq!(forward_of(&out), ip("10.0.0.1"));
    }
}

#[test]
fn flows_outlive_the_agents_copies_and_the_sticky_time() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    packet(&mut m, at(0), AGENT, syn(client(1)));
    packet(&mut m, at(0), AGENT, syn(client(2)));
    // Renewed at t=20 by a packet an agent asked about again: kept until 20 + 60 + 2.
    packet(&mut m, at(20), AGENT, mid_flow(client(1)));
    m.handle_timeout(at(62));
    assert!(m.flow(&client(1)).is_some());
    assert!(m.flow(&client(2)).is_none());
    assert_eq!(
        m.poll_timeout(),
        Some(at(72)),
        "wildcards are due before the flow"
    );
    m.handle_timeout(at(81));
    assert!(m.flow(&client(1)).is_some());
    m.handle_timeout(at(82));
    assert!(m.flow(&client(1)).is_none());
    assert_eq!(m.status().counters.flows_expired, 2);

    // After a FIN the flow stays for the sticky time, never less than the agents' copies.
    packet(&mut m, at(100), AGENT, syn(client(3)));
    notify(&mut m, at(161), client(3), InterestBits::FIN);
    assert!(m.flow(&client(3)).unwrap().closing);
    assert_eq!(m.flow(&client(3)).unwrap().expires, at(171));
    let reply = m.flow(&client(3)).unwrap().return_key.unwrap();
    notify(&mut m, at(105), reply, InterestBits::RST);
    assert_eq!(m.flow(&client(3)).unwrap().expires, at(171));
    m.handle_timeout(at(170));
    assert!(m.flow(&client(3)).is_some());
    m.handle_timeout(at(171));
    assert!(m.flow(&client(3)).is_none());
    assert_eq!(m.status().counters.flows_closed, 1);
    assert_eq!(active(&m), [0, 0, 0]);
}

#[test]
fn a_fin_handed_over_with_its_packet_closes_the_flow_too() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    packet(&mut m, at(0), AGENT, syn(client(1)));
    let fin = PacketFacts {
        key: client(1),
        starts_flow: false,
        ends_flow: true,
    };
    let out = packet(&mut m, at(100), AGENT, fin);
    assert_eq!(forward_of(&out), ip("10.0.0.1"));
    let flow = m.flow(&client(1)).unwrap();
    assert!(flow.closing);
    assert_eq!(flow.expires, at(162));
    assert_eq!(active(&m), [0, 0, 0]);
}

#[test]
fn a_reply_closing_the_flow_is_found_by_its_return_key() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    packet(&mut m, at(0), AGENT, syn(client(1)));
    let return_key = m.flow(&client(1)).unwrap().return_key.unwrap();
    notify(&mut m, at(5), return_key, InterestBits::FIN);
    assert!(m.flow(&client(1)).unwrap().closing);
    assert_eq!(active(&m), [0, 0, 0]);
    notify(&mut m, at(5), client(9), InterestBits::FIN);
    assert_eq!(m.status().counters.dropped.unknown_flow, 1);
}

fn forward_wildcard() -> WildcardUpdate {
    WildcardUpdate {
        affinity: WildcardAffinity {
            protocol: 6,
            src: ip("0.0.0.0"),
            src_mask: ip("0.0.0.0"),
            src_port: 0,
            dst: ip("198.51.100.1"),
            dst_mask: ip("255.255.255.255"),
            dst_port: 80,
            dispatch: false,
            information: false,
            forward: ip("0.0.0.0"),
            ttl: 30,
        },
        actions: Actions {
            interest: Some(interest(InterestBits::ALL, InterestBits::ALL)),
            ..Actions::default()
        },
        action_list: vec![
            ActionListEntry {
                segment_type: SegmentType::ActionInterestCriteria as u8,
                required: true,
            },
            ActionListEntry {
                segment_type: SegmentType::ActionNat as u8,
                required: true,
            },
        ],
        service_precedence: None,
        backup_precedence: Some(0),
        envelope: identity(),
    }
}

#[test]
fn wildcards_cover_both_directions_and_are_refreshed_before_their_ttl() {
    let mut cfg = config(vec![service(
        ForwardingMode::Nat,
        SchedulerKind::WeightedRoundRobin,
    )]);
    cfg.announce.push(sock(AGENT));
    let mut m = Manager::new(cfg, at(0)).unwrap();
    let first = drain(&mut m);
    assert_eq!(first.len(), 8, "forward + 3 return wildcards, to 2 targets");
    assert_eq!(
        first[0],
        (sock(GROUP), Message::WildcardUpdate(forward_wildcard()))
    );
    let Message::WildcardUpdate(ret) = &first[1].1 else {
        panic!("not a wildcard: {:?}", first[1]);
    };
    let mut expected = forward_wildcard().affinity;
    (expected.src, expected.src_mask, expected.src_port) =
        (ip("10.0.0.1"), ip("255.255.255.255"), 8080);
    (expected.dst, expected.dst_mask, expected.dst_port) = (ip("0.0.0.0"), ip("0.0.0.0"), 0);
    assert_eq!(ret.affinity, expected);
    assert!(first[4..].iter().all(|(to, _)| *to == sock(AGENT)));

    // Every ttl / 3 = 10 s, so a wildcard is refreshed twice before it could expire.
    assert_eq!(m.poll_timeout(), Some(at(10)));
    m.handle_timeout(at(9));
    assert!(drain(&mut m).is_empty());
    m.handle_timeout(at(10));
    assert_eq!(drain(&mut m), first);
    assert_eq!(m.poll_timeout(), Some(at(20)));

    m.shutdown(at(12));
    let withdrawn = drain(&mut m);
    assert_eq!(withdrawn.len(), 8);
    assert!(withdrawn.iter().all(|(_, msg)| matches!(
        msg,
        Message::WildcardUpdate(w) if w.affinity.ttl == 0
    )));
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.status().counters.wildcard_updates_sent, 24);
    packet(&mut m, at(13), AGENT, syn(client(1)));
    m.handle_message(at(13), sock(AGENT), Message::IpPacketOnly(vec![]));
    assert_eq!(m.status().counters.dropped.after_shutdown, 1);
}

#[test]
fn a_deny_is_counted_and_recorded_per_agent() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    let denied = vec![ActionListEntry {
        segment_type: SegmentType::ActionNat as u8,
        required: true,
    }];
    let deny = Message::Deny(Deny {
        denied: denied.clone(),
        affinity: Some(DeniedAffinity::Wildcard(forward_wildcard().affinity)),
        envelope: Envelope::default(),
    });
    m.handle_message(at(1), sock(AGENT), deny.clone());
    m.handle_message(at(2), sock(AGENT), deny);
    let status = m.status();
    assert_eq!(status.counters.denies, 2);
    assert_eq!(status.denies.len(), 1);
    let record = &status.denies[0];
    assert_eq!(
        (record.agent, record.at, record.count),
        (sock(AGENT), at(2), 2)
    );
    assert_eq!(record.denied, denied);
}

#[test]
fn a_syn_on_a_closed_flow_is_a_new_connection_and_is_scheduled_afresh() {
    let mut m = manager(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    let key = client(40_100);
    packet(&mut m, at(1), AGENT, syn(key));
    // Another connection in between, so round robin would not come back to the same backend.
    packet(&mut m, at(1), AGENT, syn(client(40_101)));
    let first = m.flow(&key).expect("flow").backend;
    // A retransmitted SYN of the open flow keeps its backend.
    packet(&mut m, at(2), AGENT, syn(key));
    assert_eq!(m.flow(&key).expect("flow").backend, first);
    notify(&mut m, at(3), key, InterestBits::FIN);
    assert!(m.flow(&key).expect("closing flow kept").closing);
    // The client reuses its port for a new connection: round robin moves on.
    packet(&mut m, at(4), AGENT, syn(key));
    let second = m.flow(&key).expect("new flow");
    assert!(!second.closing);
    assert_ne!(
        second.backend, first,
        "scheduled afresh, not bound to the closed flow"
    );
    assert_eq!(m.status().counters.flows_reused, 1);
    assert_eq!(m.status().counters.flows_created, 3);
}

/// A NAT Maglev service whose flows agents place themselves.
fn local_manager() -> Manager {
    let mut svc = service(ForwardingMode::Nat, SchedulerKind::MAGLEV);
    svc.decisions = Decisions::Local;
    let mut m = Manager::new(config(vec![svc]), at(0)).unwrap();
    drain(&mut m);
    m
}

/// The consistent-hash action of the forward wildcard in `messages`.
fn hash_action(messages: &[(SocketAddr, Message)]) -> tether_proto::ConsistentHash {
    messages
        .iter()
        .find_map(|(_, m)| match m {
            Message::WildcardUpdate(u) => u.actions.consistent_hash.clone(),
            _ => None,
        })
        .expect("a forward wildcard with a consistent-hash action")
}

fn report(m: &mut Manager, now: Timestamp, events: Vec<tether_proto::FlowEvent>) {
    m.handle_message(
        now,
        sock(AGENT),
        Message::FlowReport(tether_proto::FlowReport { events }),
    );
}

/// The backend index the agents' table gives `key`, built from the wildcard alone.
fn table_pick(action: &tether_proto::ConsistentHash, key: &AffinityKey) -> usize {
    let mut table = tether_proto::maglev::Maglev::from_permutations(
        action.table_size,
        action.backends.iter().map(|b| b.permutation).collect(),
        action.backends.iter().map(|b| b.weight).collect(),
    );
    let eligible: Vec<bool> = action.backends.iter().map(|b| b.eligible).collect();
    table.set_eligible(&eligible);
    table.pick(key).unwrap()
}

#[test]
fn a_local_service_sends_its_maglev_table_with_the_forward_wildcard() {
    let svc = {
        let mut s = service(ForwardingMode::Nat, SchedulerKind::MAGLEV);
        s.decisions = Decisions::Local;
        s
    };
    let mut m = Manager::new(config(vec![svc]), at(0)).unwrap();
    let out = drain(&mut m);
    let action = hash_action(&out);
    assert!(!action.dispatch);
    assert_eq!(action.fixed_ttl, 60);
    assert_eq!(action.table_size, DEFAULT_TABLE_SIZE);
    assert_eq!(action.backends.len(), 3);
    assert!(action.backends.iter().all(|b| b.eligible && b.port == 8080));
    // The agents' table places flows exactly where the manager's scheduler would.
    for port in 1..200 {
        let key = client(port);
        let expected = m.services[0].placement(&key).unwrap();
        assert_eq!(table_pick(&action, &key), expected);
    }
    // Only the forward wildcard carries it, marked optional in the action list.
    let carrying = out
        .iter()
        .filter(
            |(_, m)| matches!(m, Message::WildcardUpdate(u) if u.actions.consistent_hash.is_some()),
        )
        .count();
    assert_eq!(carrying, 1);
}

#[test]
fn a_backend_going_down_sends_the_new_table_at_once() {
    let mut m = local_manager();
    m.set_backend_health(at(1), "web", "b", false).unwrap();
    assert_eq!(
        m.poll_timeout(),
        Some(at(1)),
        "announced with the next wake-up"
    );
    m.handle_timeout(at(1));
    let action = hash_action(&drain(&mut m));
    let eligible: Vec<bool> = action.backends.iter().map(|b| b.eligible).collect();
    assert_eq!(eligible, vec![true, false, true]);
    // A change that leaves the eligible set alone sends nothing early.
    m.set_backend_state(at(2), "web", "b", AdminState::Draining)
        .unwrap();
    assert_ne!(m.poll_timeout(), Some(at(2)));
}

#[test]
fn reported_flows_are_stored_renewed_closed_and_replicated_like_placed_ones() {
    let mut m = local_manager();
    let key = client(40_000);
    report(
        &mut m,
        at(1),
        vec![tether_proto::FlowEvent::Placed {
            key,
            backend: ip("10.0.0.2"),
            port: 8080,
        }],
    );
    let flow = m.flow(&key).unwrap();
    assert_eq!(flow.backend, "b");
    assert_eq!(flow.last_fixed, at(1));
    assert!(flow.return_key.is_some(), "NAT flows know their reply key");
    assert_eq!(active(&m), vec![0, 1, 0]);
    // A retransmitted SYN's report changes nothing but the renewal.
    report(
        &mut m,
        at(2),
        vec![tether_proto::FlowEvent::Placed {
            key,
            backend: ip("10.0.0.2"),
            port: 8080,
        }],
    );
    assert_eq!(m.status().counters.flows_created, 1);
    assert_eq!(m.flow(&key).unwrap().last_fixed, at(2));
    report(&mut m, at(3), vec![tether_proto::FlowEvent::Closed { key }]);
    assert!(m.flow(&key).unwrap().closing);
    assert_eq!(active(&m), vec![0, 0, 0]);
    // A new connection on the closed flow's 5-tuple, placed elsewhere after a table change.
    report(
        &mut m,
        at(4),
        vec![tether_proto::FlowEvent::Placed {
            key,
            backend: ip("10.0.0.3"),
            port: 8080,
        }],
    );
    assert_eq!(m.flow(&key).unwrap().backend, "c");
    assert!(!m.flow(&key).unwrap().closing);
    assert_eq!(active(&m), vec![0, 0, 1]);
    let c = m.status().counters;
    assert_eq!(
        (
            c.flow_reports,
            c.flows_reported,
            c.flows_reused,
            c.flows_closed
        ),
        (4, 3, 1, 1)
    );
    // Events naming what the service does not have are counted, not stored.
    report(
        &mut m,
        at(5),
        vec![
            tether_proto::FlowEvent::Placed {
                key: client(1),
                backend: ip("10.0.0.9"),
                port: 8080,
            },
            tether_proto::FlowEvent::Closed { key: client(2) },
        ],
    );
    let c = m.status().counters;
    assert_eq!((c.dropped.bad_report, c.dropped.unknown_flow), (1, 1));
    assert_eq!(m.status().flows, 1);
}

#[test]
fn an_unknown_mid_flow_packet_of_a_local_service_is_placed_by_the_table() {
    let mut m = local_manager();
    let action = {
        let mut fresh = Manager::new(
            config(vec![{
                let mut s = service(ForwardingMode::Nat, SchedulerKind::MAGLEV);
                s.decisions = Decisions::Local;
                s
            }]),
            at(0),
        )
        .unwrap();
        hash_action(&drain(&mut fresh))
    };
    // The forward direction: the backend the agent's table chose.
    let key = client(40_000);
    let out = packet(&mut m, at(1), AGENT, mid_flow(key));
    let chosen = action.backends[table_pick(&action, &key)].addr;
    assert_eq!(forward_of(&out), chosen);
    // The reply direction of another flow: recovered only on the backend the table gives.
    let other = client(40_001);
    let b = table_pick(&action, &other);
    let reply = |addr| AffinityKey {
        protocol: 6,
        src: addr,
        src_port: 8080,
        dst: other.src,
        dst_port: other.src_port,
    };
    let wrong = action.backends[(b + 1) % 3].addr;
    let out = packet(&mut m, at(1), AGENT, mid_flow(reply(wrong)));
    assert!(matches!(out.as_slice(), [(_, Message::IpPacketOnly(_))]));
    let out = packet(
        &mut m,
        at(1),
        AGENT,
        mid_flow(reply(action.backends[b].addr)),
    );
    assert_eq!(fixed(&out).len(), 1, "the return affinity with the packet");
    assert_eq!(m.flow(&other).unwrap().backend, ["a", "b", "c"][b]);
    assert_eq!(m.status().counters.flows_recovered, 2);
}

#[test]
fn a_standby_leaves_reports_to_the_active_manager() {
    let mut svc = service(ForwardingMode::Nat, SchedulerKind::MAGLEV);
    svc.decisions = Decisions::Local;
    let mut cfg = config(vec![svc]);
    cfg.backup_precedence = 1;
    cfg.peers = vec![sock("192.0.2.11:4000")];
    let mut m = Manager::new(cfg, at(0)).unwrap();
    report(
        &mut m,
        at(0),
        vec![tether_proto::FlowEvent::Closed { key: client(1) }],
    );
    assert_eq!(m.status().counters.dropped.standby, 1);
}

#[test]
fn local_decisions_need_the_maglev_scheduler() {
    let mut svc = service(ForwardingMode::Nat, SchedulerKind::WeightedRoundRobin);
    svc.decisions = Decisions::Local;
    let err = Manager::new(config(vec![svc]), at(0)).unwrap_err();
    assert!(
        err.to_string().contains("needs scheduler = \"maglev\""),
        "{err}"
    );
}
