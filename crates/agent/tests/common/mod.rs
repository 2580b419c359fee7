//! Helpers shared by the agent's integration tests, fixture generator and benchmark: the
//! affinity set-up language of the fixtures, frame building with etherparse, hex dumps.
#![allow(
    dead_code,
    clippy::too_many_arguments,
    reason = "shared by several test crates, each using a part; packet builders take every field"
)]

pub mod established;
pub mod new_flow;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::PacketBuilder;
use std::time::Duration;

use tether_agent::{Agent, AgentConfig};
use tether_proto::{
    Actions, Envelope, FixedAffinity, FixedUpdate, InterestBits, InterestCriteria, Message,
    NatAction, SearchOrder, SequenceAdjust, ServicePrecedence, Timestamp, WildcardAffinity,
    WildcardUpdate, codec,
};
use tether_wire::AffinityKey;

/// The manager every test installs affinities from.
pub const MANAGER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)), 7000);
/// Source MAC of test frames.
pub const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC of test frames.
pub const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// An agent with default settings.
pub fn agent() -> Agent {
    Agent::new(
        AgentConfig::new("agent-1", IpAddr::V4(Ipv4Addr::new(10, 9, 0, 100))),
        Timestamp::ZERO,
    )
}

/// Feeds one set-up line to `agent` as an encoded message from [`MANAGER`].
pub fn install(agent: &mut Agent, now: Timestamp, line: &str) {
    let bytes = codec::encode(&setup_message(line));
    agent.handle_datagram(now, MANAGER, &bytes);
}

/// Prefixes an IP packet with an Ethernet header.
pub fn eth(ip: &[u8]) -> Vec<u8> {
    let ethertype: [u8; 2] = if ip.first().is_some_and(|b| b >> 4 == 6) {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    let mut frame = Vec::with_capacity(14 + ip.len());
    frame.extend_from_slice(&DST_MAC);
    frame.extend_from_slice(&SRC_MAC);
    frame.extend_from_slice(&ethertype);
    frame.extend_from_slice(ip);
    frame
}

/// A TCP packet (IP, no Ethernet) built by etherparse.
pub fn tcp_packet(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    ttl: u8,
    flags: &str,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let ip = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), ttl),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), ttl),
        _ => panic!("mixed families"),
    };
    let mut tcp = ip.tcp(sport, dport, seq, 64240);
    for flag in flags.split('|').filter(|f| !f.is_empty()) {
        tcp = match flag {
            "syn" => tcp.syn(),
            "fin" => tcp.fin(),
            "rst" => tcp.rst(),
            "psh" => tcp.psh(),
            "ack" => tcp.ack(ack),
            "urg" => tcp.urg(0),
            other => panic!("unknown flag {other}"),
        };
    }
    tcp.write(&mut out, payload).expect("write to a Vec");
    out
}

/// A UDP packet (IP, no Ethernet) built by etherparse.
pub fn udp_packet(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let ip = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), ttl),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), ttl),
        _ => panic!("mixed families"),
    };
    ip.udp(sport, dport)
        .write(&mut out, payload)
        .expect("write to a Vec");
    out
}

/// Parses an address.
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("bad address {s}"))
}

/// An affinity key from its parts.
pub fn key(protocol: u8, src: &str, sport: u16, dst: &str, dport: u16) -> AffinityKey {
    AffinityKey {
        protocol,
        src: ip(src),
        src_port: sport,
        dst: ip(dst),
        dst_port: dport,
    }
}

fn bits(list: &str) -> InterestBits {
    list.split(',')
        .filter(|b| !b.is_empty())
        .map(|b| match b {
            "fin" => InterestBits::FIN,
            "syn" => InterestBits::SYN,
            "rst" => InterestBits::RST,
            "psh" => InterestBits::PSH,
            "ack" => InterestBits::ACK,
            "urg" => InterestBits::URG,
            "data" => InterestBits::DATA,
            "first_data" => InterestBits::FIRST_DATA,
            "fragment" => InterestBits::FRAGMENT,
            "all" => InterestBits::ALL,
            "none" => InterestBits::NONE,
            other => panic!("unknown interest bit {other}"),
        })
        .fold(InterestBits::NONE, |a, b| a | b)
}

fn protocol(name: &str) -> u8 {
    match name {
        "tcp" => 6,
        "udp" => 17,
        "any" => 0,
        other => other.parse().expect("protocol number"),
    }
}

/// A netmask of `len` bits in the family of `addr`.
fn netmask(addr: IpAddr, len: u32) -> IpAddr {
    match addr {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::MAX.checked_shl(32 - len).unwrap_or(0))),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(
            u128::MAX.checked_shl(128 - len).unwrap_or(0),
        )),
    }
}

fn prefix(s: &str) -> (IpAddr, IpAddr) {
    let (a, len) = s.split_once('/').unwrap_or((s, ""));
    let addr = ip(a);
    let width = if addr.is_ipv6() { 128 } else { 32 };
    let len = if len.is_empty() {
        width
    } else {
        len.parse().expect("prefix length")
    };
    (addr, netmask(addr, len))
}

fn unspecified_like(addr: IpAddr) -> IpAddr {
    if addr.is_ipv6() {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// Turns a set-up line into the message a manager would send.
///
/// `wildcard key=value...` or `fixed key=value...`; keys: `proto` (tcp, udp, any or a number),
/// `src`, `dst` (address, with `/len` for wildcards), `sport`, `dport`, `forward`, `ttl`
/// (default 30), `interest` (mask bits, comma-separated), `data`, `copy`, `hold`, `nat.src`,
/// `nat.sport`, `nat.dst`, `nat.dport`, `seq` (delta,initial,ack delta,initial ack),
/// `prec` (`higher:N` or `lower:N`), `backup`; bare words `dispatch`, `info`, and `packet=HEX`
/// (fixed only) for a returned packet.
pub fn setup_message(line: &str) -> Message {
    let mut words = line.split_whitespace();
    let kind = words.next().expect("affinity kind");
    let mut kv = std::collections::BTreeMap::new();
    let (mut dispatch, mut information) = (false, false);
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => {
                kv.insert(k.to_string(), v.to_string());
            }
            None if w == "dispatch" => dispatch = true,
            None if w == "info" => information = true,
            None => panic!("unknown word {w}"),
        }
    }
    let get = |k: &str| kv.get(k).map(String::as_str);
    let port = |k: &str| get(k).map_or(0, |v| v.parse::<u16>().expect("port"));
    let (src, src_mask) = prefix(get("src").expect("src"));
    let (dst, dst_mask) = prefix(get("dst").expect("dst"));
    let forward = get("forward").map_or(unspecified_like(src), ip);
    let ttl = get("ttl").map_or(30, |v| v.parse().expect("ttl"));
    let interest = get("interest").map(|mask| InterestCriteria {
        addr: unspecified_like(src),
        port: 0,
        mask: bits(mask),
        data: bits(get("data").unwrap_or("")),
        copy: bits(get("copy").unwrap_or("")),
        hold: bits(get("hold").unwrap_or("")),
    });
    let nat = ["nat.src", "nat.sport", "nat.dst", "nat.dport"]
        .iter()
        .any(|k| kv.contains_key(*k))
        .then(|| NatAction {
            src: get("nat.src").map_or(unspecified_like(src), ip),
            src_port: port("nat.sport"),
            dst: get("nat.dst").map_or(unspecified_like(src), ip),
            dst_port: port("nat.dport"),
        });
    let sequence_adjust = get("seq").map(|v| {
        let n: Vec<u32> = v.split(',').map(|x| x.parse().expect("number")).collect();
        SequenceAdjust {
            seq_delta: n[0],
            initial_seq: n[1],
            ack_delta: n[2],
            initial_ack: n[3],
        }
    });
    let actions = Actions {
        nat,
        sequence_adjust,
        interest,
        advertise: None,
        consistent_hash: None,
    };
    let service_precedence = get("prec").map(|v| {
        let (order, value) = v.split_once(':').expect("order:value");
        ServicePrecedence {
            search_order: if order == "higher" {
                SearchOrder::HigherFirst
            } else {
                SearchOrder::LowerFirst
            },
            value: value.parse().expect("precedence"),
        }
    });
    let backup_precedence = get("backup").map(|v| v.parse().expect("backup precedence"));
    let proto = protocol(get("proto").unwrap_or("any"));
    match kind {
        "wildcard" => Message::WildcardUpdate(WildcardUpdate {
            affinity: WildcardAffinity {
                protocol: proto,
                src,
                src_mask,
                src_port: port("sport"),
                dst,
                dst_mask,
                dst_port: port("dport"),
                dispatch,
                information,
                forward,
                ttl,
            },
            actions,
            action_list: Vec::new(),
            service_precedence,
            backup_precedence,
            envelope: Envelope::default(),
        }),
        "fixed" => Message::FixedUpdate(FixedUpdate {
            affinity: FixedAffinity {
                key: AffinityKey {
                    protocol: proto,
                    src,
                    src_port: port("sport"),
                    dst,
                    dst_port: port("dport"),
                },
                dispatch,
                information,
                forward,
                ttl,
            },
            actions,
            service_precedence,
            backup_precedence,
            envelope: Envelope::default(),
            packet: get("packet").map(from_hex),
        }),
        other => panic!("unknown affinity kind {other}"),
    }
}

/// Parses hex digits, ignoring whitespace and `#` comments to the end of each line.
pub fn from_hex(text: &str) -> Vec<u8> {
    let digits: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Bytes as one word of hex digits (for `packet=` in set-up lines).
pub fn hex_word(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A hex dump, 16 bytes a line, each line commented with its offset.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let line: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(out, "  {:<47}  # {:04x}", line.join(" "), i * 16);
    }
    out
}

// The standard test flow: client C:40000 to VIP V:80, NAT'd to backend B.

/// Client address of the standard test flow.
pub const C: &str = "198.51.100.7";
/// VIP of the standard test service.
pub const V: &str = "192.0.2.10";
/// Backend address of the standard test service.
pub const B: &str = "10.1.0.5";
/// The service's wildcard: every packet of an unknown flow to V:80 goes to the manager.
pub const WILDCARD: &str =
    "wildcard proto=tcp src=0.0.0.0/0 dst=192.0.2.10 dport=80 interest=all data=all";
/// The flow's fixed affinity: NAT to the backend, 10 s to live.
pub const FIXED: &str = "fixed proto=tcp src=198.51.100.7 sport=40000 dst=192.0.2.10 dport=80 forward=10.1.0.5 nat.dst=10.1.0.5 ttl=10";

/// `seconds` after the epoch.
pub fn at(seconds: f64) -> Timestamp {
    Timestamp::from_duration(Duration::from_secs_f64(seconds))
}

/// A packet of the standard flow from the client.
pub fn client_packet(flags: &str, payload: &[u8]) -> Vec<u8> {
    tcp_packet(ip(C), 40000, ip(V), 80, 64, flags, 1000, 1, payload)
}

/// [`client_packet`] in an Ethernet frame.
pub fn frame(flags: &str, payload: &[u8]) -> Vec<u8> {
    eth(&client_packet(flags, payload))
}

/// Every message the agent wants sent, decoded.
pub fn messages(agent: &mut Agent) -> Vec<(SocketAddr, Message)> {
    std::iter::from_fn(|| agent.poll_transmit())
        .map(|t| {
            (
                t.dest,
                codec::decode(&t.payload).expect("agent sends valid messages"),
            )
        })
        .collect()
}

/// The key of the standard flow.
pub fn flow_key() -> AffinityKey {
    key(6, C, 40000, V, 80)
}

/// Whether the agent holds a fixed affinity for the standard flow.
pub fn has_fixed(agent: &Agent) -> bool {
    agent.fixed_affinities().any(|f| *f.key == flow_key())
}

/// Runs timers the way a runtime would, up to `now`.
pub fn advance(agent: &mut Agent, now: Timestamp) {
    while let Some(t) = agent.poll_timeout().filter(|t| *t <= now) {
        agent.handle_timeout(t);
    }
    agent.handle_timeout(now);
}
