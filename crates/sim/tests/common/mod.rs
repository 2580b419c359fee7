//! Shared set-up of the in-process proofs: one manager, two agents, one NAT'd web service, and
//! packets built by etherparse (an implementation independent of ours).
#![allow(dead_code, reason = "each test file uses a different part")]

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use etherparse::PacketBuilder;
use tether_agent::AgentConfig;
use tether_manager::{
    AdminState, BackendConfig, Decisions, ForwardingMode, ManagerConfig, Protocol, SchedulerKind,
    ServiceConfig,
};
use tether_proto::{AuthConfig, Key};
use tether_sim::{AgentId, Faults, ManagerId, World};

pub const GROUP: &str = "239.0.0.1:7000";
pub const MANAGER: &str = "10.0.0.2:7000";
pub const AGENT1: &str = "10.0.0.11:7000";
pub const AGENT2: &str = "10.0.0.12:7000";
pub const VIP4: &str = "192.0.2.10";
pub const VIP6: &str = "2001:db8::10";
pub const CLIENT4: &str = "198.51.100.7";
pub const CLIENT6: &str = "2001:db8:c::7";
pub const BACKENDS4: [&str; 3] = ["10.1.0.1", "10.1.0.2", "10.1.0.3"];
pub const BACKENDS6: [&str; 3] = ["2001:db8:b::1", "2001:db8:b::2", "2001:db8:b::3"];
pub const BACKEND_PORT: u16 = 8080;
pub const FIXED_TTL: u32 = 20;
pub const WILDCARD_TTL: u32 = 30;

pub fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address literal")
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

pub const SECRET: &[u8] = b"tether-simulation-secret-0123456789";

pub fn auth() -> AuthConfig {
    AuthConfig {
        keys: vec![Key {
            id: 1,
            secret: SECRET.to_vec(),
        }],
        send_key: Some(1),
        require: true,
    }
}

pub fn service(
    name: &str,
    vip: &str,
    backends: &[&str],
    scheduler: SchedulerKind,
) -> ServiceConfig {
    let vip = ip(vip);
    ServiceConfig {
        name: name.into(),
        vip,
        port: 80,
        protocol: Protocol::Tcp,
        client_domain: (
            if vip.is_ipv4() {
                ip("0.0.0.0")
            } else {
                ip("::")
            },
            0,
        ),
        scheduler,
        mode: ForwardingMode::Nat,
        decisions: match scheduler {
            SchedulerKind::Maglev { .. } => Decisions::Local,
            _ => Decisions::Manager,
        },
        backends: backends
            .iter()
            .enumerate()
            .map(|(i, addr)| BackendConfig {
                name: format!("b{}", i + 1),
                addr: ip(addr),
                port: BACKEND_PORT,
                weight: 1,
                state: AdminState::Enabled,
            })
            .collect(),
    }
}

pub fn manager_config(services: Vec<ServiceConfig>) -> ManagerConfig {
    ManagerConfig {
        name: "mgr-a".into(),
        addr: sa(MANAGER),
        auth: auth(),
        initial_sequence: 1000,
        announce: vec![sa(GROUP)],
        wildcard_ttl: WILDCARD_TTL,
        fixed_ttl: FIXED_TTL,
        sticky: Duration::from_secs(5),
        service_precedence: None,
        backup_precedence: 0,
        services,
        peers: Vec::new(),
        heartbeat_interval: tether_manager::DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_misses: tether_manager::DEFAULT_HEARTBEAT_MISSES,
    }
}

pub fn agent_config(name: &str, addr: &str) -> AgentConfig {
    let mut config = AgentConfig::new(name, sa(addr).ip());
    config.auth = auth();
    config.initial_sequence = 2000;
    config
}

/// One manager and two agents; the manager's wildcards have reached both agents.
pub fn world(services: Vec<ServiceConfig>) -> (World, ManagerId, AgentId, AgentId) {
    let mut world = World::new(7, Faults::default());
    let m = world
        .add_manager(manager_config(services))
        .expect("valid manager config");
    let a1 = world.add_agent(sa(AGENT1), agent_config("agent-1", AGENT1), &[sa(GROUP)]);
    let a2 = world.add_agent(sa(AGENT2), agent_config("agent-2", AGENT2), &[sa(GROUP)]);
    world.run_for(Duration::from_millis(100));
    (world, m, a1, a2)
}

/// One TCP segment, described by what a capture would show.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub hop_limit: u8,
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub payload: &'a [u8],
}

impl Segment<'_> {
    pub fn new(src: SocketAddr, dst: SocketAddr) -> Self {
        Self {
            src,
            dst,
            hop_limit: 64,
            seq: 1,
            ack: None,
            syn: false,
            fin: false,
            payload: &[],
        }
    }

    /// The Ethernet frame carrying this segment (IPv4 or IPv6 by the addresses).
    pub fn frame(&self) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let ip = match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), self.hop_limit),
            (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), self.hop_limit),
            _ => panic!("mixed address families in a test segment"),
        };
        let mut tcp = ip.tcp(self.src.port(), self.dst.port(), self.seq, 64240);
        if self.syn {
            tcp = tcp.syn();
            tcp = tcp
                .options(&[
                    etherparse::TcpOptionElement::MaximumSegmentSize(1460),
                    etherparse::TcpOptionElement::SelectiveAcknowledgementPermitted,
                    etherparse::TcpOptionElement::WindowScale(7),
                ])
                .expect("options fit");
        }
        if let Some(ack) = self.ack {
            tcp = tcp.ack(ack);
        }
        if self.fin {
            tcp = tcp.fin();
        }
        if !self.payload.is_empty() {
            tcp = tcp.psh();
        }
        let mut out = Vec::new();
        tcp.write(&mut out, self.payload).expect("segment fits");
        out
    }

    /// The IP packet of this segment (the frame without its 14-byte Ethernet header).
    pub fn ip_packet(&self) -> Vec<u8> {
        self.frame()[14..].to_vec()
    }

    /// The same segment as it looks after one router hop with the given rewrite.
    pub fn translated(&self, src: SocketAddr, dst: SocketAddr) -> Self {
        Self {
            src,
            dst,
            hop_limit: self.hop_limit - 1,
            ..*self
        }
    }
}
