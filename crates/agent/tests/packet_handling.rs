//! The agent's packet side through its public API: interest criteria (notify, copy, hold),
//! packets returned by a manager, statistics, TTL, fragments, packets that are not ours.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::net::{IpAddr, SocketAddr};

use common::{
    B, C, FIXED, MANAGER, V, WILDCARD, advance, agent, at, client_packet, eth, flow_key, frame,
    has_fixed, install, ip, messages, setup_message, tcp_packet, udp_packet,
};
use tether_agent::{Agent, AgentConfig, DropReason, Route, Verdict};
use tether_proto::{InterestBits, MatchKind, Message, codec};

#[test]
fn held_packet_is_released_nat_ed_when_its_fixed_affinity_arrives() {
    let mut a = agent();
    install(
        &mut a,
        at(0.0),
        "wildcard proto=tcp src=0.0.0.0/0 dst=192.0.2.10 dport=80 interest=syn data=syn hold=syn",
    );
    assert_eq!(
        a.handle_frame(at(0.1), &mut frame("syn", b"")),
        Verdict::Held
    );
    assert_eq!(a.stats().held_packets, 1);
    let sent = messages(&mut a);
    let [(dest, Message::InterestMatch(m))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(*dest, MANAGER);
    assert_eq!((m.kind, m.packet.as_ref()), (MatchKind::Wildcard, None));
    assert_eq!(m.identifier.key, flow_key());
    assert!(m.identifier.matched.intersects(InterestBits::SYN));

    install(&mut a, at(0.2), FIXED);
    let out = a.poll_packet().expect("released packet");
    assert_eq!(
        out.route,
        Route {
            next_hop: ip(B),
            dispatched: false
        }
    );
    assert_eq!(
        out.packet,
        tcp_packet(ip(C), 40000, ip(B), 80, 63, "syn", 1000, 1, b"")
    );
    assert_eq!(a.stats().hold_released, 1);
    assert_eq!(a.stats().held_packets, 0);
}

#[test]
fn held_packet_is_dropped_when_no_fixed_affinity_arrives_in_time() {
    let mut a = agent();
    install(
        &mut a,
        at(0.0),
        "wildcard proto=tcp src=0.0.0.0/0 dst=192.0.2.10 dport=80 interest=syn data=syn hold=syn",
    );
    assert_eq!(
        a.handle_frame(at(0.0), &mut frame("syn", b"")),
        Verdict::Held
    );
    assert_eq!(a.poll_timeout(), Some(at(2.0)));
    advance(&mut a, at(2.0));
    assert_eq!(a.stats().drops.get(DropReason::HoldTimeout.reason()), 1);
    install(&mut a, at(2.1), FIXED);
    assert!(a.poll_packet().is_none());
}

#[test]
fn a_full_hold_buffer_sends_the_packet_to_the_manager_instead() {
    let mut config = AgentConfig::new("agent-1", ip("10.9.0.100"));
    config.hold_capacity = 1;
    let mut a = Agent::new(config, at(0.0));
    install(
        &mut a,
        at(0.0),
        "wildcard proto=tcp src=0.0.0.0/0 dst=192.0.2.10 dport=80 interest=syn data=syn hold=syn",
    );
    assert_eq!(
        a.handle_frame(at(0.0), &mut frame("syn", b"")),
        Verdict::Held
    );
    assert_eq!(
        a.handle_frame(at(0.0), &mut frame("syn", b"")),
        Verdict::ToManager
    );
    assert_eq!(a.stats().hold_full, 1);
    let sent = messages(&mut a);
    let Message::InterestMatch(m) = &sent[1].1 else {
        panic!("{sent:?}")
    };
    assert_eq!(
        m.packet.as_deref(),
        Some(client_packet("syn", b"").as_slice())
    );
}

#[test]
fn copy_flag_sends_the_unrewritten_packet_and_forwards_the_original() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    install(
        &mut a,
        at(0.0),
        &format!("{FIXED} interest=fin data=fin copy=fin"),
    );
    let mut f = frame("fin|ack", b"");
    assert_eq!(
        a.handle_frame(at(0.0), &mut f),
        Verdict::Forward(Route {
            next_hop: ip(B),
            dispatched: false
        })
    );
    let sent = messages(&mut a);
    let [(_, Message::InterestMatch(m))] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(m.kind, MatchKind::Fixed);
    assert_eq!(
        m.packet.as_deref(),
        Some(client_packet("fin|ack", b"").as_slice())
    );
    assert_eq!(a.stats().copies, 1);
}

#[test]
fn each_tcp_flag_notifies_only_the_interest_that_asked_for_it() {
    for (name, bit) in [
        ("fin", InterestBits::FIN),
        ("syn", InterestBits::SYN),
        ("rst", InterestBits::RST),
        ("psh", InterestBits::PSH),
        ("ack", InterestBits::ACK),
        ("urg", InterestBits::URG),
    ] {
        let mut a = agent();
        install(&mut a, at(0.0), WILDCARD);
        install(&mut a, at(0.0), &format!("{FIXED} interest={name}"));
        for other in ["fin", "syn", "rst", "psh", "ack", "urg"] {
            let verdict = a.handle_frame(at(0.0), &mut frame(other, b""));
            assert!(
                matches!(verdict, Verdict::Forward(_)),
                "notification only: {verdict:?}"
            );
            let sent = messages(&mut a);
            if other == name {
                let [(_, Message::InterestMatch(m))] = sent.as_slice() else {
                    panic!("{name}: {sent:?}")
                };
                assert_eq!(m.identifier.matched, bit);
                assert_eq!(m.packet, None);
            } else {
                assert!(sent.is_empty(), "{other} packet notified interest {name}");
            }
        }
    }
}

#[test]
fn data_and_first_data_bits_fire_as_documented() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    install(
        &mut a,
        at(0.0),
        &format!("{FIXED} interest=data,first_data"),
    );
    a.handle_frame(at(0.0), &mut frame("ack", b""));
    assert!(messages(&mut a).is_empty());
    a.handle_frame(at(0.0), &mut frame("psh|ack", b"one"));
    a.handle_frame(at(0.0), &mut frame("psh|ack", b"two"));
    let matched: Vec<InterestBits> = messages(&mut a)
        .into_iter()
        .map(|(_, m)| match m {
            Message::InterestMatch(m) => m.identifier.matched,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        matched,
        vec![
            InterestBits::DATA | InterestBits::FIRST_DATA,
            InterestBits::DATA
        ]
    );
}

#[test]
fn packet_returned_in_a_fixed_update_is_executed_after_installing_the_affinity() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    assert_eq!(
        a.handle_frame(at(0.0), &mut frame("syn", b"")),
        Verdict::ToManager
    );
    let sent = messages(&mut a);
    let Message::InterestMatch(m) = &sent[0].1 else {
        panic!("{sent:?}")
    };
    let packet = common::hex_word(m.packet.as_ref().expect("data flag"));
    install(&mut a, at(0.1), &format!("{FIXED} packet={packet}"));
    let out = a.poll_packet().expect("executed packet");
    assert_eq!(
        out.packet,
        tcp_packet(ip(C), 40000, ip(B), 80, 63, "syn", 1000, 1, b"")
    );
    assert!(has_fixed(&a));
    assert_eq!(
        a.fixed_affinities().next().map(|f| f.traffic.packets),
        Some(1)
    );
}

#[test]
fn ip_packet_only_is_forwarded_by_its_destination_without_matching() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    let packet = client_packet("syn", b"");
    a.handle_datagram(
        at(0.0),
        MANAGER,
        &codec::encode(&Message::IpPacketOnly(packet)),
    );
    let out = a.poll_packet().expect("forwarded");
    assert_eq!(
        out.route,
        Route {
            next_hop: ip(V),
            dispatched: false
        }
    );
    assert_eq!(
        out.packet,
        tcp_packet(ip(C), 40000, ip(V), 80, 63, "syn", 1000, 1, b"")
    );
    assert!(
        messages(&mut a).is_empty(),
        "not matched against the wildcard again"
    );
}

#[test]
fn information_flag_keeps_statistics_per_forward_address() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    install(&mut a, at(0.0), &format!("{FIXED} info"));
    let f = frame("psh|ack", b"12345");
    for _ in 0..3 {
        a.handle_frame(at(0.0), &mut f.clone());
    }
    let stats = a
        .address_stats(ip(B))
        .expect("kept for the forward address");
    assert_eq!((stats.packets, stats.bytes), (3, 3 * (f.len() as u64 - 14)));
    assert_eq!(a.fixed_affinities().next().map(|v| v.traffic), Some(stats));
}

#[test]
fn a_ttl_that_would_expire_drops_the_packet() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    install(&mut a, at(0.0), FIXED);
    let mut f = eth(&tcp_packet(ip(C), 40000, ip(V), 80, 1, "ack", 1, 1, b""));
    assert_eq!(
        a.handle_frame(at(0.0), &mut f),
        Verdict::Drop(DropReason::TtlExpired)
    );
    assert_eq!(a.stats().drops.get("ttl_expired"), 1);
}

#[test]
fn unmatched_and_non_ip_frames_are_not_ours() {
    let mut a = agent();
    install(&mut a, at(0.0), WILDCARD);
    let mut other = eth(&udp_packet(ip(C), 1, ip("192.0.2.99"), 2, 64, b"x"));
    assert_eq!(a.handle_frame(at(0.0), &mut other), Verdict::NotOurs);
    let mut arp = vec![0xff; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    assert_eq!(a.handle_frame(at(0.0), &mut arp), Verdict::NotOurs);
    assert_eq!(a.stats().not_ours, 2);
}

#[test]
fn a_later_fragment_seen_first_matches_only_wildcards_for_any_port() {
    let mut a = agent();
    install(
        &mut a,
        at(0.0),
        "wildcard proto=udp src=0.0.0.0/0 dst=192.0.2.10 dport=53 interest=all data=all",
    );
    // A non-first IPv4 fragment: offset 8 bytes, protocol UDP, no ports.
    let mut later = udp_packet(ip(C), 5353, ip(V), 53, 64, &[0; 16]);
    later[6..8].copy_from_slice(&1u16.to_be_bytes());
    later[10..12].copy_from_slice(&[0, 0]);
    let sum = !later[..20].chunks(2).fold(0u32, |s, w| {
        let s = s + u32::from(u16::from_be_bytes([w[0], w[1]]));
        (s & 0xffff) + (s >> 16)
    }) as u16;
    later[10..12].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(a.handle_frame(at(0.0), &mut eth(&later)), Verdict::NotOurs);
    install(
        &mut a,
        at(0.0),
        "wildcard proto=udp src=0.0.0.0/0 dst=192.0.2.10 interest=fragment data=fragment",
    );
    assert_eq!(
        a.handle_frame(at(0.0), &mut eth(&later)),
        Verdict::ToManager
    );
}

#[test]
fn interest_matches_go_to_the_criteria_address_when_one_is_given() {
    let mut a = agent();
    let Message::WildcardUpdate(mut update) = setup_message(WILDCARD) else {
        unreachable!()
    };
    if let Some(c) = update.actions.interest.as_mut() {
        c.addr = ip("10.9.0.50");
        c.port = 7100;
    }
    a.handle_datagram(
        at(0.0),
        MANAGER,
        &codec::encode(&Message::WildcardUpdate(update)),
    );
    a.handle_frame(at(0.0), &mut frame("syn", b""));
    let sent = messages(&mut a);
    assert_eq!(
        sent[0].0,
        SocketAddr::new(IpAddr::V4("10.9.0.50".parse().unwrap()), 7100)
    );
}
