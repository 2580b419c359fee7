//! The new-flow workload shared by the criterion benchmark and the callgrind driver: a real
//! manager and a real agent wired back to back in one process, without sockets, exchanging
//! their sealed (HMAC-authenticated) service messages as bytes.
//!
//! One new flow is: the client's SYN reaches the agent, which matches the service's wildcard
//! and sends the packet to the manager in an interest match; the manager schedules the flow
//! (Maglev) and answers with a fixed affinity carrying the packet; the agent installs the
//! affinity and releases the NATed packet towards the backend.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tether_agent::{Agent, AgentConfig, OutPacket, Verdict};
use tether_manager::{
    AdminState, BackendConfig, Decisions, ForwardingMode, Manager, ManagerConfig, Protocol,
    SchedulerKind, ServiceConfig,
};
use tether_proto::{AuthConfig, Key, Timestamp};
use tether_wire::nat::{self, Rewrite};
use tether_wire::packet::PacketInfo;

use super::{eth, ip, tcp_packet};

/// The manager's service-message address.
pub const MANAGER_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)), 7000);
/// The agent's service-message address.
pub const AGENT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, 100)), 7000);
/// The service's VIP.
pub const VIP: &str = "192.0.2.10";
/// Backends of the service.
pub const BACKENDS: [&str; 3] = ["10.1.0.1", "10.1.0.2", "10.1.0.3"];

fn auth() -> AuthConfig {
    AuthConfig {
        keys: vec![Key {
            id: 1,
            secret: b"tether-benchmark-secret-0123456789".to_vec(),
        }],
        send_key: Some(1),
        require: true,
    }
}

/// A manager and an agent that have exchanged the service's wildcards, and a SYN template
/// whose client address and port [`NewFlows::next`] varies.
pub struct NewFlows {
    /// The agent.
    pub agent: Agent,
    /// The manager.
    pub manager: Manager,
    now: Timestamp,
    template: Vec<u8>,
    frame: Vec<u8>,
    flows: u32,
}

/// Ethernet header bytes before the IP packet.
const ETH: usize = 14;

impl NewFlows {
    /// The pair, set up.
    pub fn new() -> Self {
        let now = Timestamp::ZERO;
        let service = ServiceConfig {
            name: "web".into(),
            vip: ip(VIP),
            port: 80,
            protocol: Protocol::Tcp,
            client_domain: (ip("0.0.0.0"), 0),
            scheduler: SchedulerKind::MAGLEV,
            mode: ForwardingMode::Nat,
            decisions: Decisions::Manager,
            backends: BACKENDS
                .iter()
                .enumerate()
                .map(|(i, addr)| BackendConfig {
                    name: format!("b{i}"),
                    addr: ip(addr),
                    port: 8080,
                    weight: 1,
                    state: AdminState::Enabled,
                })
                .collect(),
        };
        let config = ManagerConfig {
            name: "mgr-a".into(),
            addr: MANAGER_ADDR,
            auth: auth(),
            initial_sequence: 1000,
            announce: vec![AGENT_ADDR],
            wildcard_ttl: 30,
            fixed_ttl: 20,
            sticky: Duration::from_secs(5),
            service_precedence: None,
            backup_precedence: 0,
            services: vec![service],
            peers: Vec::new(),
            heartbeat_interval: tether_manager::DEFAULT_HEARTBEAT_INTERVAL,
            heartbeat_misses: tether_manager::DEFAULT_HEARTBEAT_MISSES,
        };
        let manager = Manager::new(config, now).expect("valid manager configuration");
        let mut agent_config = AgentConfig::new("agent-1", AGENT_ADDR.ip());
        agent_config.auth = auth();
        agent_config.initial_sequence = 2000;
        let agent = Agent::new(agent_config, now);
        let template = eth(&tcp_packet(
            ip("100.64.0.1"),
            1024,
            ip(VIP),
            80,
            64,
            "syn",
            1000,
            0,
            b"",
        ));
        let mut pair = Self {
            agent,
            manager,
            now,
            frame: template.clone(),
            template,
            flows: 0,
        };
        pair.deliver_to_agent();
        assert!(
            pair.agent.wildcard_affinities().count() > 0,
            "the manager's wildcards did not reach the agent"
        );
        pair
    }

    /// Hands every message the manager sends to the agent.
    fn deliver_to_agent(&mut self) {
        while let Some(t) = self.manager.poll_transmit() {
            debug_assert_eq!(t.dest, AGENT_ADDR);
            self.agent
                .handle_datagram(self.now, MANAGER_ADDR, &t.payload);
        }
    }

    /// Writes the SYN of the next flow (client 100.64.x.y, a new address every 50 000 ports)
    /// into the frame buffer.
    pub fn next_syn(&mut self) {
        let n = self.flows;
        self.flows += 1;
        self.frame.copy_from_slice(&self.template);
        let client = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 1)) + n / 50_000);
        let rewrite = Rewrite {
            src: Some(IpAddr::V4(client)),
            src_port: Some(1024 + (n % 50_000) as u16),
            ..Rewrite::default()
        };
        let ip_packet = &mut self.frame[ETH..];
        let info = PacketInfo::parse(ip_packet).expect("the template parses");
        nat::apply(ip_packet, &info, &rewrite).expect("the template rewrites");
    }

    /// The agent's part of a new flow: the SYN matched and punted to the manager.
    pub fn punt(&mut self) -> Verdict {
        self.agent.handle_frame(self.now, &mut self.frame)
    }

    /// One whole new flow: punt, manager decision, install, release. Returns the packet the
    /// agent releases towards the backend.
    pub fn round_trip(&mut self) -> Option<OutPacket> {
        self.next_syn();
        let verdict = self.punt();
        debug_assert_eq!(verdict, Verdict::ToManager);
        while let Some(t) = self.agent.poll_transmit() {
            debug_assert_eq!(t.dest, MANAGER_ADDR);
            self.manager
                .handle_datagram(self.now, AGENT_ADDR, &t.payload);
        }
        self.deliver_to_agent();
        self.agent.poll_packet()
    }

    /// The SYN every new flow starts from (client 100.64.0.1:1024), in an Ethernet frame.
    pub fn syn(&self) -> &[u8] {
        &self.template
    }
}
