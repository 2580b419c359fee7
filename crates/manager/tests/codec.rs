//! The manager through bytes: what it sends opens with the agents' codec, and what fails
//! authentication is dropped and counted by reason.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use tether_manager::{
    AdminState, BackendConfig, Decisions, ForwardingMode, Manager, ManagerConfig, Protocol,
    SchedulerKind, ServiceConfig,
};
use tether_proto::{
    ActionListEntry, AuthConfig, Codec, Deny, Envelope, Key, Message, SegmentType, Timestamp,
};

const MANAGER: &str = "192.0.2.10:4000";
const AGENT: &str = "192.0.2.20:4000";
const GROUP: &str = "239.1.1.1:4000";

fn sock(s: &str) -> SocketAddr {
    s.parse().expect("test addresses are valid")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test addresses are valid")
}

fn auth() -> AuthConfig {
    AuthConfig {
        keys: vec![Key {
            id: 1,
            secret: b"0123456789abcdef0123456789abcdef".to_vec(),
        }],
        send_key: Some(1),
        require: true,
    }
}

fn manager() -> Manager {
    let config = ManagerConfig {
        name: "mgr".into(),
        addr: sock(MANAGER),
        auth: auth(),
        initial_sequence: 100,
        announce: vec![sock(GROUP)],
        wildcard_ttl: 30,
        fixed_ttl: 60,
        sticky: Duration::from_secs(10),
        service_precedence: None,
        backup_precedence: 0,
        services: vec![ServiceConfig {
            name: "dns".into(),
            vip: ip("2001:db8::53"),
            port: 53,
            protocol: Protocol::Udp,
            client_domain: (ip("2001:db8:100::"), 40),
            scheduler: SchedulerKind::SOURCE_HASH,
            mode: ForwardingMode::Nat,
            decisions: Decisions::Manager,
            backends: vec![BackendConfig {
                name: "ns1".into(),
                addr: ip("2001:db8:1::1"),
                port: 5353,
                weight: 1,
                state: AdminState::Enabled,
            }],
        }],
        peers: Vec::new(),
        heartbeat_interval: tether_manager::DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_misses: tether_manager::DEFAULT_HEARTBEAT_MISSES,
    };
    Manager::new(config, Timestamp::ZERO).expect("valid config")
}

#[test]
fn announcements_are_signed_and_open_at_an_agent() {
    let mut m = manager();
    let mut agent = Codec::new(auth(), 0);
    let mut seen = Vec::new();
    while let Some(t) = m.poll_transmit() {
        assert_eq!(t.dest, sock(GROUP));
        seen.push(agent.open(&t.payload).expect("signed by a known key"));
    }
    assert_eq!(seen.len(), 2, "forward and return wildcard");
    let Message::WildcardUpdate(forward) = &seen[0] else {
        panic!("not a wildcard: {:?}", seen[0]);
    };
    assert_eq!(forward.affinity.dst, ip("2001:db8::53"));
    assert_eq!(forward.affinity.src_mask, ip("ffff:ffff:ff00::"));
    assert_eq!(forward.affinity.forward, ip("::"));
}

#[test]
fn unauthenticated_datagrams_are_dropped_and_counted_by_reason() {
    let mut m = manager();
    let deny = Message::Deny(Deny {
        denied: vec![ActionListEntry {
            segment_type: SegmentType::ActionNat as u8,
            required: true,
        }],
        affinity: None,
        envelope: Envelope::default(),
    });
    let unsigned = Codec::new(AuthConfig::default(), 0).seal(&deny);
    m.handle_datagram(Timestamp::ZERO, sock(AGENT), &unsigned);
    m.handle_datagram(Timestamp::ZERO, sock(AGENT), b"not a message");
    let mut agent = Codec::new(auth(), 7);
    let signed = agent.seal(&deny);
    m.handle_datagram(Timestamp::ZERO, sock(AGENT), &signed);
    m.handle_datagram(Timestamp::ZERO, sock(AGENT), &signed);

    let status = m.status();
    assert_eq!(status.counters.datagrams, 4);
    assert_eq!(status.counters.rejected.get("unsigned"), Some(&1));
    assert_eq!(status.counters.rejected.get("malformed"), Some(&1));
    assert_eq!(status.counters.rejected.get("replayed"), Some(&1));
    assert_eq!(status.counters.denies, 1);
    assert_eq!(status.denies[0].agent, sock(AGENT));
}
