//! What a manager reports about itself: services, backends, flows, counters and denies.

use core::net::{IpAddr, SocketAddr};
use std::collections::BTreeMap;

use tether_proto::{ActionListEntry, DeniedAffinity, Timestamp};
use tether_wire::AffinityKey;

use crate::config::{AdminState, ForwardingMode, Protocol, SchedulerKind};

/// A snapshot of the manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerStatus {
    /// The manager's name.
    pub name: String,
    /// Flows in the store (open and closing).
    pub flows: usize,
    /// Every service, in configuration order.
    pub services: Vec<ServiceStatus>,
    /// Event counters.
    pub counters: Counters,
    /// The latest affinity update-deny from each agent that sent one, by agent address.
    pub denies: Vec<DenyRecord>,
    /// When [`crate::Manager::shutdown`] was called, if it was.
    pub shut_down: Option<Timestamp>,
    /// Role, peers and replication.
    pub failover: crate::FailoverStatus,
}

/// One virtual service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceStatus {
    /// Name.
    pub name: String,
    /// Virtual IP address.
    pub vip: IpAddr,
    /// Service port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Forwarding mode.
    pub mode: ForwardingMode,
    /// Scheduler.
    pub scheduler: SchedulerKind,
    /// Backends, in configuration order.
    pub backends: Vec<BackendStatus>,
}

/// One backend of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendStatus {
    /// Name.
    pub name: String,
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Weight.
    pub weight: u32,
    /// Administrative state.
    pub admin: AdminState,
    /// Health as last reported.
    pub healthy: bool,
    /// Whether new flows may go to it (enabled and healthy).
    pub eligible: bool,
    /// Open flows placed on it (closing flows excluded).
    pub active_flows: u64,
    /// When its health or administrative state last changed, if ever.
    pub changed_at: Option<Timestamp>,
}

/// A placed flow, for consoles and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStatus {
    /// Service name.
    pub service: String,
    /// Backend name.
    pub backend: String,
    /// Key of the NAT'd replies (NAT mode).
    pub return_key: Option<AffinityKey>,
    /// Whether a FIN or RST was reported.
    pub closing: bool,
    /// When the last fixed update for it was sent.
    pub last_fixed: Timestamp,
    /// When the manager forgets it.
    pub expires: Timestamp,
}

/// The latest deny from one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenyRecord {
    /// The agent's address.
    pub agent: SocketAddr,
    /// When the latest deny arrived.
    pub at: Timestamp,
    /// Denies from this agent so far.
    pub count: u64,
    /// The segments the agent could not process.
    pub denied: Vec<ActionListEntry>,
    /// The affinity it refused.
    pub affinity: Option<DeniedAffinity>,
}

/// Event counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams: u64,
    /// Interest matches acted on.
    pub interest_matches: u64,
    /// New flows placed on a backend.
    pub flows_created: u64,
    /// Flows that reported a FIN or RST.
    pub flows_closed: u64,
    /// Closed flows whose 5-tuple a new connection (a SYN) reused; it was scheduled afresh.
    pub flows_reused: u64,
    /// Flows forgotten after their expiry.
    pub flows_expired: u64,
    /// Flow report messages acted on.
    pub flow_reports: u64,
    /// Flows agents placed themselves and reported (including SYNs that placed a flow again).
    pub flows_reported: u64,
    /// Flows of services with local decisions that reached the manager mid-flow without being
    /// known (their report was lost, e.g. with a failed manager) and were placed again by the
    /// table, on the backend the agent had chosen.
    pub flows_recovered: u64,
    /// Fixed affinity updates queued.
    pub fixed_updates_sent: u64,
    /// Wildcard affinity updates queued (one per wildcard and target).
    pub wildcard_updates_sent: u64,
    /// Packets handed back in IP-packet-only messages.
    pub ip_packets_returned: u64,
    /// Affinity update-denies received.
    pub denies: u64,
    /// Datagrams the codec rejected, by [`tether_proto::Rejection::reason`].
    pub rejected: BTreeMap<&'static str, u64>,
    /// Packets and messages dropped, by reason.
    pub dropped: Drops,
}

/// Why packets and messages were dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// A new flow found no enabled, healthy backend.
    pub no_backend: u64,
    /// A packet of an unknown flow that cannot start one (TCP without SYN, an ICMP error, a
    /// later fragment): dropped so the sender retransmits, never answered with a reset.
    pub unknown_mid_flow: u64,
    /// A packet that belongs to no service.
    pub no_service: u64,
    /// An interest match that reached this manager while it was standby.
    pub standby: u64,
    /// A packet in an interest match that does not parse.
    pub malformed_packet: u64,
    /// A packet of a flow whose backend is disabled (such flows are not renewed).
    pub backend_disabled: u64,
    /// A notification for a flow the manager does not hold.
    pub unknown_flow: u64,
    /// A flow report event naming a backend the flow's service does not have.
    pub bad_report: u64,
    /// A message with required segments the codec could not process.
    pub unsupported_required: u64,
    /// A message a manager does not act on (another manager's update, an IP packet).
    pub unexpected_message: u64,
    /// A message that arrived after shutdown.
    pub after_shutdown: u64,
}
