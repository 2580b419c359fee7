//! Frame parsing and the whole agent pipeline on arbitrary frames, with affinities installed
//! that route the seed corpus through NAT (v4 and v6, TCP and UDP, ICMP errors), dispatch,
//! drop and punts to the manager. No input may panic, and a forwarded frame must still parse.
#![no_main]

use core::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use tether_agent::{Agent, AgentConfig, Verdict};
use tether_proto::codec::encode;
use tether_proto::{
    Actions, Envelope, FixedAffinity, FixedUpdate, InterestBits, InterestCriteria, Message,
    NatAction, WildcardAffinity, WildcardUpdate,
};
use tether_wire::AffinityKey;
use tether_wire::packet::parse_frame;

fn ip(s: &str) -> core::net::IpAddr {
    s.parse().expect("address literal")
}

fn host_mask(addr: core::net::IpAddr) -> core::net::IpAddr {
    if addr.is_ipv4() { ip("255.255.255.255") } else { ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") }
}

fn any(addr: core::net::IpAddr) -> core::net::IpAddr {
    if addr.is_ipv4() { ip("0.0.0.0") } else { ip("::") }
}

fn wildcard(protocol: u8, src: &str, src_port: u16, dst: &str, dst_port: u16, dispatch_to: Option<&str>, nat: Option<NatAction>) -> Message {
    let (src, dst) = (ip(src), ip(dst));
    let src_mask = if src == any(src) { any(src) } else { host_mask(src) };
    Message::WildcardUpdate(WildcardUpdate {
        affinity: WildcardAffinity {
            protocol,
            src,
            src_mask,
            src_port,
            dst,
            dst_mask: host_mask(dst),
            dst_port,
            dispatch: dispatch_to.is_some(),
            information: true,
            forward: dispatch_to.map_or(any(dst), ip),
            ttl: 60,
        },
        actions: Actions {
            nat,
            interest: dispatch_to.is_none().then_some(InterestCriteria {
                addr: any(dst),
                port: 0,
                mask: InterestBits::ALL,
                data: InterestBits::ALL,
                copy: InterestBits::NONE,
                hold: InterestBits::SYN,
            }),
            ..Actions::default()
        },
        action_list: Vec::new(),
        service_precedence: None,
        backup_precedence: None,
        envelope: Envelope::default(),
    })
}

fn fixed(protocol: u8, src: (&str, u16), dst: (&str, u16), nat: NatAction) -> Message {
    Message::FixedUpdate(FixedUpdate {
        affinity: FixedAffinity {
            key: AffinityKey { protocol, src: ip(src.0), src_port: src.1, dst: ip(dst.0), dst_port: dst.1 },
            dispatch: false,
            information: true,
            forward: if nat.dst == any(nat.dst) { ip(dst.0) } else { nat.dst },
            ttl: 60,
        },
        actions: Actions {
            nat: Some(nat),
            interest: Some(InterestCriteria {
                addr: any(ip(dst.0)),
                port: 0,
                mask: InterestBits::FIN | InterestBits::RST,
                data: InterestBits::NONE,
                copy: InterestBits::NONE,
                hold: InterestBits::NONE,
            }),
            ..Actions::default()
        },
        service_precedence: None,
        backup_precedence: None,
        envelope: Envelope::default(),
        packet: None,
    })
}

fn to_backend(addr: &str, port: u16) -> NatAction {
    NatAction { src: any(ip(addr)), src_port: 0, dst: ip(addr), dst_port: port }
}

fn from_vip(vip: &str, port: u16) -> NatAction {
    NatAction { src: ip(vip), src_port: port, dst: any(ip(vip)), dst_port: 0 }
}

fn agent() -> (Agent, SocketAddr) {
    let manager: SocketAddr = "10.0.0.2:7000".parse().expect("literal");
    let mut agent = Agent::new(AgentConfig::new("fuzz", ip("10.0.0.11")), tether_proto::Timestamp::ZERO);
    let messages = [
        wildcard(6, "0.0.0.0", 0, "192.0.2.10", 80, None, None),
        wildcard(6, "10.1.0.1", 8080, "0.0.0.0", 0, None, None),
        wildcard(17, "0.0.0.0", 0, "192.0.2.10", 53, None, None),
        wildcard(17, "10.1.0.1", 5353, "0.0.0.0", 0, None, None),
        wildcard(6, "::", 0, "2001:db8::10", 80, None, None),
        wildcard(6, "2001:db8:b::1", 8080, "::", 0, None, None),
        wildcard(6, "0.0.0.0", 0, "192.0.2.20", 443, Some("10.1.0.9"), None),
        wildcard(6, "0.0.0.0", 0, "192.0.2.30", 22, Some("0.0.0.0"), None),
        fixed(6, ("198.51.100.7", 40000), ("192.0.2.10", 80), to_backend("10.1.0.1", 8080)),
        fixed(6, ("10.1.0.1", 8080), ("198.51.100.7", 40000), from_vip("192.0.2.10", 80)),
        fixed(17, ("198.51.100.7", 40001), ("192.0.2.10", 53), to_backend("10.1.0.1", 5353)),
        fixed(17, ("10.1.0.1", 5353), ("198.51.100.7", 40001), from_vip("192.0.2.10", 53)),
        fixed(6, ("2001:db8:c::7", 40000), ("2001:db8::10", 80), to_backend("2001:db8:b::1", 8080)),
        fixed(6, ("2001:db8:b::1", 8080), ("2001:db8:c::7", 40000), from_vip("2001:db8::10", 80)),
    ];
    for message in &messages {
        agent.handle_datagram(tether_proto::Timestamp::ZERO, manager, &encode(message));
    }
    while agent.poll_transmit().is_some() {}
    (agent, manager)
}

fuzz_target!(|data: &[u8]| {
    let (mut agent, manager) = agent();
    let now = tether_proto::Timestamp::from_nanos(1_000_000_000);
    let mut frame = data.to_vec();
    if let Verdict::Forward(_) = agent.handle_frame(now, &mut frame) {
        assert!(parse_frame(&frame).is_ok(), "a forwarded frame no longer parses");
    }
    // The same bytes as a service message from the manager, then time passing.
    agent.handle_datagram(now, manager, data);
    agent.handle_timeout(now);
    while agent.poll_transmit().is_some() {}
    while let Some(out) = agent.poll_packet() {
        assert!(tether_wire::packet::PacketInfo::parse(&out.packet).is_ok(), "emitted packet no longer parses");
    }
});
