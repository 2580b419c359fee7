//! The established-flow workload shared by the counting-allocator test, the criterion
//! benchmark and the callgrind driver: one agent holding the fixed affinities of NATed flows in
//! both directions, IPv4 and IPv6, TCP and UDP, among a thousand other flows, and one frame of
//! each flow.
//!
//! Running a frame through the agent rewrites its headers in place (addresses, ports,
//! checksums, TTL) and never its payload, so [`Case::restore`] copies only the headers back
//! from the template: every iteration then sees the same input without a whole-frame copy.

use std::net::IpAddr;

use tether_agent::{Agent, Verdict};
use tether_proto::Timestamp;

use super::{agent, eth, install, ip, tcp_packet, udp_packet};

/// Payload bytes of every case frame.
pub const PAYLOAD: usize = 64;

/// One established flow's frame, ready to be run through the agent.
pub struct Case {
    /// `tcp_v4_forward`, `udp_v6_return`, ...
    pub name: String,
    /// The frame as it arrives.
    pub template: Vec<u8>,
    /// The frame handed to the agent, rewritten in place.
    pub frame: Vec<u8>,
    /// Ethernet, IP and transport header bytes: what a rewrite can change.
    pub headers: usize,
    /// Where the agent sends the rewritten frame.
    pub next_hop: IpAddr,
}

impl Case {
    /// Copies the headers of the template back over the rewritten frame.
    #[inline]
    pub fn restore(&mut self) {
        self.frame[..self.headers].copy_from_slice(&self.template[..self.headers]);
    }

    /// Restores the frame and runs it through `agent`.
    #[inline]
    pub fn run(&mut self, agent: &mut Agent, now: Timestamp) -> Verdict {
        self.restore();
        agent.handle_frame(now, &mut self.frame)
    }
}

/// Client, VIP and backend addresses of a family.
fn addresses(v6: bool) -> (&'static str, &'static str, &'static str, &'static str) {
    if v6 {
        ("2001:db8:c::7", "2001:db8:10::10", "2001:db8:1::5", "::/0")
    } else {
        ("198.51.100.7", "192.0.2.10", "10.1.0.5", "0.0.0.0/0")
    }
}

fn packet(proto: &str, src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let payload = [0x5a; PAYLOAD];
    match proto {
        "tcp" => tcp_packet(
            ip(src),
            sport,
            ip(dst),
            dport,
            64,
            "psh|ack",
            1001,
            7000,
            &payload,
        ),
        _ => udp_packet(ip(src), sport, ip(dst), dport, 64, &payload),
    }
}

/// An agent with the affinities of every case installed, a thousand unrelated fixed
/// affinities beside them, and the eight cases (TCP and UDP, IPv4 and IPv6, client to backend
/// and back), each checked once to be forwarded.
pub fn setup() -> (Agent, Vec<Case>) {
    let mut agent = agent();
    let now = Timestamp::ZERO;
    let mut cases = Vec::new();
    for v6 in [false, true] {
        let (c, v, b, any) = addresses(v6);
        for proto in ["tcp", "udp"] {
            let (cport, vport, bport) = (40000, 80, 8080);
            for line in [
                format!(
                    "wildcard proto={proto} src={any} dst={v} dport={vport} interest=all data=all"
                ),
                format!(
                    "wildcard proto={proto} src={b} sport={bport} dst={any} interest=all data=all"
                ),
                format!(
                    "fixed proto={proto} src={c} sport={cport} dst={v} dport={vport} forward={b} nat.dst={b} nat.dport={bport} interest=fin,rst ttl=3600"
                ),
                format!(
                    "fixed proto={proto} src={b} sport={bport} dst={c} dport={cport} forward={c} nat.src={v} nat.sport={vport} ttl=3600"
                ),
            ] {
                install(&mut agent, now, &line);
            }
            let family = if v6 { "v6" } else { "v4" };
            for (direction, template, next_hop) in [
                ("forward", packet(proto, c, cport, v, vport), b),
                ("return", packet(proto, b, bport, c, cport), c),
            ] {
                let frame = eth(&template);
                cases.push(Case {
                    name: format!("{proto}_{family}_{direction}"),
                    headers: frame.len() - PAYLOAD,
                    template: frame.clone(),
                    frame,
                    next_hop: ip(next_hop),
                });
            }
        }
        // A thousand other flows, so lookups are not into a near-empty map.
        for port in 1..=500 {
            install(
                &mut agent,
                now,
                &format!(
                    "fixed proto=tcp src={c} sport={port} dst={v} dport=80 forward={b} nat.dst={b} ttl=3600"
                ),
            );
        }
    }
    for case in &mut cases {
        let verdict = case.run(&mut agent, now);
        assert!(
            matches!(verdict, Verdict::Forward(route) if route.next_hop == case.next_hop),
            "{}: expected forward to {}, got {verdict:?}",
            case.name,
            case.next_hop
        );
    }
    (agent, cases)
}
