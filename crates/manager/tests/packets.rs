//! The manager on real packet bytes, parsed by `tether_wire::packet`: interest matches from an
//! agent, answered with fixed affinities carrying the very packet back.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use tether_manager::{
    AdminState, BackendConfig, Decisions, ForwardingMode, Manager, ManagerConfig, Protocol,
    SchedulerKind, ServiceConfig,
};
use tether_proto::{
    AffinityIdentifier, AuthConfig, Envelope, InterestBits, InterestMatch, MatchKind, Message,
    Timestamp,
};
use tether_wire::AffinityKey;

const AGENT: &str = "192.0.2.20:4000";
const CLIENT: [u8; 4] = [203, 0, 113, 7];
const VIP: [u8; 4] = [198, 51, 100, 1];

fn sock(s: &str) -> SocketAddr {
    s.parse().expect("test addresses are valid")
}

fn manager(protocol: Protocol) -> Manager {
    let config = ManagerConfig {
        name: "mgr".into(),
        addr: sock("192.0.2.10:4000"),
        auth: AuthConfig::default(),
        initial_sequence: 0,
        announce: vec![sock("239.1.1.1:4000")],
        wildcard_ttl: 30,
        fixed_ttl: 60,
        sticky: Duration::from_secs(10),
        service_precedence: None,
        backup_precedence: 0,
        services: vec![ServiceConfig {
            name: "web".into(),
            vip: IpAddr::from(VIP),
            port: 80,
            protocol,
            client_domain: (IpAddr::from([0, 0, 0, 0]), 0),
            scheduler: SchedulerKind::MAGLEV,
            mode: ForwardingMode::Nat,
            decisions: Decisions::Manager,
            backends: vec![BackendConfig {
                name: "a".into(),
                addr: IpAddr::from([10, 0, 0, 1]),
                port: 8080,
                weight: 1,
                state: AdminState::Enabled,
            }],
        }],
        peers: Vec::new(),
        heartbeat_interval: tether_manager::DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_misses: tether_manager::DEFAULT_HEARTBEAT_MISSES,
    };
    let mut m = Manager::new(config, Timestamp::ZERO).expect("valid config");
    while m.poll_message().is_some() {}
    m
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            sum += hi | pair.get(1).map_or(0, |&lo| u32::from(lo));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet from the client to the VIP with a TCP (`Some(flags)`) or UDP header and
/// `payload`, checksums filled in.
fn packet(src_port: u16, tcp_flags: Option<u8>, payload: &[u8]) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend_from_slice(&src_port.to_be_bytes());
    l4.extend_from_slice(&80u16.to_be_bytes());
    let protocol = if let Some(flags) = tcp_flags {
        l4.extend_from_slice(&1000u32.to_be_bytes());
        l4.extend_from_slice(&0u32.to_be_bytes());
        l4.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        6
    } else {
        let len = (8 + payload.len()) as u16;
        l4.extend_from_slice(&len.to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        17
    };
    l4.extend_from_slice(payload);
    let l4_len = (l4.len() as u16).to_be_bytes();
    let pseudo = [&CLIENT[..], &VIP[..], &[0, protocol], &l4_len[..]].concat();
    let sum = checksum(&[&pseudo, &l4]).to_be_bytes();
    let at = if protocol == 6 { 16 } else { 6 };
    l4[at..at + 2].copy_from_slice(&sum);

    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, protocol, 0, 0]);
    ip.extend_from_slice(&CLIENT);
    ip.extend_from_slice(&VIP);
    let sum = checksum(&[&ip]).to_be_bytes();
    ip[10..12].copy_from_slice(&sum);
    ip.extend_from_slice(&l4);
    ip
}

fn interest_match(m: &mut Manager, bytes: &[u8], key: AffinityKey) -> Vec<(SocketAddr, Message)> {
    m.handle_message(
        Timestamp::ZERO,
        sock(AGENT),
        Message::InterestMatch(InterestMatch {
            kind: MatchKind::Wildcard,
            identifier: AffinityIdentifier {
                key,
                dispatch: false,
                information: false,
                matched: InterestBits::ALL,
            },
            envelope: Envelope::default(),
            packet: Some(bytes.to_vec()),
        }),
    );
    core::iter::from_fn(|| m.poll_message()).collect()
}

fn key(protocol: u8, src_port: u16) -> AffinityKey {
    AffinityKey {
        protocol,
        src: IpAddr::V4(Ipv4Addr::from(CLIENT)),
        src_port,
        dst: IpAddr::V4(Ipv4Addr::from(VIP)),
        dst_port: 80,
    }
}

#[test]
fn a_syn_is_scheduled_and_returned_inside_the_forward_affinity() {
    let mut m = manager(Protocol::Tcp);
    let syn = packet(40_000, Some(0x02), &[]);
    let out = interest_match(&mut m, &syn, key(6, 40_000));
    assert_eq!(out.len(), 2, "{out:?}");
    let Message::FixedUpdate(forward) = &out[1].1 else {
        panic!("not a fixed update: {out:?}");
    };
    assert_eq!(forward.affinity.key, key(6, 40_000));
    assert_eq!(forward.packet.as_deref(), Some(&syn[..]));
    assert_eq!(m.flow(&key(6, 40_000)).expect("stored").backend, "a");
}

#[test]
fn an_ack_of_an_unknown_flow_is_dropped_without_answer() {
    let mut m = manager(Protocol::Tcp);
    let ack = packet(40_001, Some(0x10), b"hello");
    assert!(interest_match(&mut m, &ack, key(6, 40_001)).is_empty());
    assert_eq!(m.status().counters.dropped.unknown_mid_flow, 1);
    let syn_ack = packet(40_001, Some(0x12), &[]);
    assert!(interest_match(&mut m, &syn_ack, key(6, 40_001)).is_empty());
    assert_eq!(m.status().flows, 0);
}

#[test]
fn any_udp_datagram_starts_a_flow() {
    let mut m = manager(Protocol::Udp);
    let datagram = packet(5_000, None, b"query");
    let out = interest_match(&mut m, &datagram, key(17, 5_000));
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(m.status().counters.flows_created, 1);
}

#[test]
fn a_packet_that_does_not_parse_is_dropped_and_counted() {
    let mut m = manager(Protocol::Tcp);
    assert!(interest_match(&mut m, &[0x45, 0, 0], key(6, 1)).is_empty());
    assert_eq!(m.status().counters.dropped.malformed_packet, 1);
}
