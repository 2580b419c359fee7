//! The status document of `GET /status`: what `tether status` reads and renders.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tether_manager::{
    AdminState, Drops, FailoverStatus, ForwardingMode, ManagerStatus, Protocol, SchedulerKind,
};
use tether_proto::{Role, Timestamp};
use tether_runtime::agent_worker::AgentSnapshot;

/// A node's status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Node name.
    pub node: String,
    /// Tether version.
    pub version: String,
    /// Roles it runs: `manager`, `agent`.
    pub roles: Vec<String>,
    /// The manager role's status.
    pub manager: Option<ManagerReport>,
    /// The agent role's status.
    pub agent: Option<AgentReport>,
}

/// The manager role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ManagerReport {
    /// `primary` (backup precedence 0) or `backup`: the configured role; `failover.role` says
    /// whether it places flows now.
    pub role: String,
    /// Backup precedence of its affinities.
    pub backup_precedence: u16,
    /// Flows held (open and closing).
    pub flows: u64,
    /// Whether it has withdrawn its wildcards.
    pub shut_down: bool,
    /// Virtual services in configuration order.
    pub services: Vec<ServiceReport>,
    /// Event counters.
    pub counters: ManagerCounters,
    /// Affinity update-denies received, by agent address.
    pub denies: BTreeMap<String, u64>,
    /// Role among the peer managers, detection and takeover, replication.
    pub failover: FailoverReport,
}

/// The manager's failover state (`docs/failover.md`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FailoverReport {
    /// `active` (places flows) or `standby` (stores the active peer's flows).
    pub role: String,
    /// Whether it holds the flow store and may become active.
    pub ready: bool,
    /// Times it took over from a dead active peer.
    pub takeovers: u64,
    /// Times it took the active role back from a worse peer after pulling the flow store.
    pub reclaims: u64,
    /// Last takeover: milliseconds from the last heartbeat of the failed peer to its detection.
    pub detection_ms: Option<f64>,
    /// Last takeover: milliseconds from the detection to the first existing flow served.
    pub takeover_ms: Option<f64>,
    /// Milliseconds since it last found its active peer dead.
    pub detected_ms_ago: Option<f64>,
    /// Flow records sent to peers.
    pub records_sent: u64,
    /// Flow records received and stored.
    pub records_stored: u64,
    /// Flow records refused (no wildcard covers the key, or unknown service or backend).
    pub records_refused: u64,
    /// Flow records naming another backend than the one held here.
    pub records_conflicting: u64,
    /// Replication batches that arrived after a later one.
    pub gaps: u64,
    /// Replication batches sent again to a peer that reported a gap.
    pub batches_resent: u64,
    /// Full flow stores sent to returning peers.
    pub snapshots_sent: u64,
    /// Full flow stores received from the active peer.
    pub snapshots_received: u64,
    /// The configured peers, in configuration order.
    pub peers: Vec<PeerReport>,
}

/// A peer manager.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    /// Its service-message address.
    pub address: SocketAddr,
    /// Whether its heartbeats arrive in time.
    pub live: bool,
    /// Milliseconds since its last heartbeat arrived; null if never heard.
    pub last_heard_ms_ago: Option<f64>,
    /// Its backup precedence, once heard.
    pub backup_precedence: Option<u16>,
    /// The role it last claimed: `active` or `standby`.
    pub role: String,
    /// Whether it said it holds the flow store.
    pub ready: bool,
    /// Replication batches it is behind.
    pub lag: u64,
}

/// A virtual service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// Name.
    pub name: String,
    /// Virtual IP address.
    pub vip: IpAddr,
    /// Service port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// `nat` or `dsr`.
    pub mode: String,
    /// `maglev`, `wrr`, `wlc` or `source-hash`.
    pub scheduler: String,
    /// Backends in configuration order.
    pub backends: Vec<BackendReport>,
}

/// A backend of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendReport {
    /// Name.
    pub name: String,
    /// Address.
    pub address: IpAddr,
    /// Port.
    pub port: u16,
    /// Weight.
    pub weight: u32,
    /// `enabled`, `draining` or `disabled`.
    pub admin: String,
    /// Health as last checked.
    pub healthy: bool,
    /// Whether new flows may go to it.
    pub eligible: bool,
    /// Open flows placed on it.
    pub active_flows: u64,
}

/// The manager's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerCounters {
    /// Datagrams received.
    pub datagrams: u64,
    /// Interest matches acted on.
    pub interest_matches: u64,
    /// New flows placed on a backend.
    pub flows_created: u64,
    /// Flows that reported a FIN or RST.
    pub flows_closed: u64,
    /// Flows forgotten after their expiry.
    pub flows_expired: u64,
    /// Flow report messages from agents acted on.
    pub flow_reports: u64,
    /// Flows agents placed themselves and reported.
    pub flows_reported: u64,
    /// Unknown flows of local-decision services placed again by the table mid-flow.
    pub flows_recovered: u64,
    /// Fixed affinity updates sent.
    pub fixed_updates_sent: u64,
    /// Wildcard affinity updates sent.
    pub wildcard_updates_sent: u64,
    /// Packets handed back in IP-packet-only messages.
    pub ip_packets_returned: u64,
    /// Messages rejected by the codec, by reason (`bad_mac`, `replayed`, `unsigned`, ...).
    pub rejected: BTreeMap<String, u64>,
    /// Packets and messages dropped, by reason.
    pub dropped: BTreeMap<String, u64>,
}

/// The agent role.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    /// Fixed affinities held.
    pub fixed_affinities: u64,
    /// Wildcard affinities held.
    pub wildcard_affinities: u64,
    /// Packets waiting in the hold buffer.
    pub held_packets: u64,
    /// nftables steering rules installed.
    pub steering_rules: u64,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames forwarded by an affinity.
    pub forwarded: u64,
    /// Frames no affinity covers (left to the kernel).
    pub not_ours: u64,
    /// Packets sent to a manager inside interest matches.
    pub to_manager: u64,
    /// Packets held for a manager's decision.
    pub held: u64,
    /// Interest match messages sent.
    pub interest_matches: u64,
    /// New flows placed by the agent itself (local decisions).
    pub placed_locally: u64,
    /// Flow report messages sent.
    pub flow_reports: u64,
    /// Service messages accepted.
    pub messages_in: u64,
    /// Service messages sent.
    pub messages_out: u64,
    /// Packets dropped, by reason (pipeline and runtime).
    pub drops: BTreeMap<String, u64>,
    /// Service messages rejected, by reason (`bad_mac`, `replayed`, `unsigned`, ...).
    pub rejected: BTreeMap<String, u64>,
}

impl ManagerReport {
    /// The report of a manager with `backup_precedence`, whose timestamps are set against `now`
    /// (the driver's clock).
    pub fn new(status: &ManagerStatus, backup_precedence: u16, now: Timestamp) -> Self {
        let c = &status.counters;
        Self {
            role: if backup_precedence == 0 {
                "primary"
            } else {
                "backup"
            }
            .into(),
            backup_precedence,
            flows: status.flows as u64,
            shut_down: status.shut_down.is_some(),
            services: status
                .services
                .iter()
                .map(|s| ServiceReport {
                    name: s.name.clone(),
                    vip: s.vip,
                    port: s.port,
                    protocol: protocol_name(s.protocol).into(),
                    mode: mode_name(s.mode).into(),
                    scheduler: scheduler_name(s.scheduler).into(),
                    backends: s
                        .backends
                        .iter()
                        .map(|b| BackendReport {
                            name: b.name.clone(),
                            address: b.addr,
                            port: b.port,
                            weight: b.weight,
                            admin: admin_name(b.admin).into(),
                            healthy: b.healthy,
                            eligible: b.eligible,
                            active_flows: b.active_flows,
                        })
                        .collect(),
                })
                .collect(),
            counters: ManagerCounters {
                datagrams: c.datagrams,
                interest_matches: c.interest_matches,
                flows_created: c.flows_created,
                flows_closed: c.flows_closed,
                flows_expired: c.flows_expired,
                flow_reports: c.flow_reports,
                flows_reported: c.flows_reported,
                flows_recovered: c.flows_recovered,
                fixed_updates_sent: c.fixed_updates_sent,
                wildcard_updates_sent: c.wildcard_updates_sent,
                ip_packets_returned: c.ip_packets_returned,
                rejected: c.rejected.iter().map(|(k, v)| ((*k).into(), *v)).collect(),
                dropped: drop_counts(&c.dropped),
            },
            denies: status
                .denies
                .iter()
                .map(|d| (d.agent.to_string(), d.count))
                .collect(),
            failover: FailoverReport::new(&status.failover, now),
        }
    }
}

impl FailoverReport {
    /// The report of `f`, whose timestamps are set against `now`.
    fn new(f: &FailoverStatus, now: Timestamp) -> Self {
        let ago = |at: Option<Timestamp>| at.map(|at| millis(now.saturating_since(at)));
        Self {
            role: role_name(f.role).into(),
            ready: f.ready,
            takeovers: f.takeovers,
            reclaims: f.reclaims,
            detection_ms: f.detection.map(millis),
            takeover_ms: f.takeover.map(millis),
            detected_ms_ago: ago(f.detected_at),
            records_sent: f.records_sent,
            records_stored: f.records_stored,
            records_refused: f.records_refused,
            records_conflicting: f.records_conflicting,
            gaps: f.gaps,
            batches_resent: f.batches_resent,
            snapshots_sent: f.snapshots_sent,
            snapshots_received: f.snapshots_received,
            peers: f
                .peers
                .iter()
                .map(|p| PeerReport {
                    address: p.addr,
                    live: p.live,
                    last_heard_ms_ago: ago(p.last_heard),
                    backup_precedence: p.backup_precedence,
                    role: role_name(p.role).into(),
                    ready: p.ready,
                    lag: p.lag,
                })
                .collect(),
        }
    }
}

/// A duration in milliseconds, with the fraction.
fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A failover role as the status spells it.
fn role_name(r: Role) -> &'static str {
    match r {
        Role::Active => "active",
        Role::Standby => "standby",
    }
}

impl AgentReport {
    /// The sum of two workers' reports (counters, affinities, drops by reason).
    #[must_use]
    pub fn merge(mut self, other: Self) -> Self {
        let Self {
            fixed_affinities,
            wildcard_affinities,
            held_packets,
            steering_rules,
            rx_packets,
            rx_bytes,
            tx_packets,
            tx_bytes,
            forwarded,
            not_ours,
            to_manager,
            held,
            interest_matches,
            placed_locally,
            flow_reports,
            messages_in,
            messages_out,
            drops,
            rejected,
        } = other;
        self.fixed_affinities += fixed_affinities;
        self.wildcard_affinities += wildcard_affinities;
        self.held_packets += held_packets;
        self.steering_rules += steering_rules;
        self.rx_packets += rx_packets;
        self.rx_bytes += rx_bytes;
        self.tx_packets += tx_packets;
        self.tx_bytes += tx_bytes;
        self.forwarded += forwarded;
        self.not_ours += not_ours;
        self.to_manager += to_manager;
        self.held += held;
        self.interest_matches += interest_matches;
        self.placed_locally += placed_locally;
        self.flow_reports += flow_reports;
        self.messages_in += messages_in;
        self.messages_out += messages_out;
        for (mine, theirs) in [(&mut self.drops, drops), (&mut self.rejected, rejected)] {
            for (reason, n) in theirs {
                *mine.entry(reason).or_default() += n;
            }
        }
        self
    }
}

impl From<&AgentSnapshot> for AgentReport {
    fn from(s: &AgentSnapshot) -> Self {
        let st = &s.stats;
        let mut drops: BTreeMap<String, u64> = BTreeMap::new();
        for (reason, n) in st.drops.iter().chain(s.runtime_drops.iter().copied()) {
            *drops.entry(reason.into()).or_default() += n;
        }
        Self {
            fixed_affinities: s.fixed_affinities as u64,
            wildcard_affinities: s.wildcard_affinities as u64,
            held_packets: st.held_packets as u64,
            steering_rules: s.steering_rules as u64,
            rx_packets: s.rx_frames,
            rx_bytes: s.rx_bytes,
            tx_packets: s.tx_frames,
            tx_bytes: s.tx_bytes,
            forwarded: st.forwarded,
            not_ours: st.not_ours,
            to_manager: st.to_manager,
            held: st.held,
            interest_matches: st.interest_matches,
            placed_locally: st.placed_locally,
            flow_reports: st.flow_reports,
            messages_in: st.messages_in,
            messages_out: st.messages_out,
            drops,
            rejected: st.rejected.iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }
}

/// A protocol as the configuration spells it.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// A forwarding mode as the configuration spells it.
pub fn mode_name(m: ForwardingMode) -> &'static str {
    match m {
        ForwardingMode::Nat => "nat",
        ForwardingMode::Dsr => "dsr",
    }
}

/// A scheduler as the configuration spells it.
pub fn scheduler_name(s: SchedulerKind) -> &'static str {
    match s {
        SchedulerKind::Maglev { .. } => "maglev",
        SchedulerKind::WeightedRoundRobin => "wrr",
        SchedulerKind::WeightedLeastConnections => "wlc",
        SchedulerKind::SourceHash { .. } => "source-hash",
    }
}

/// An administrative state as the configuration spells it.
pub fn admin_name(a: AdminState) -> &'static str {
    match a {
        AdminState::Enabled => "enabled",
        AdminState::Draining => "draining",
        AdminState::Disabled => "disabled",
    }
}

fn drop_counts(d: &Drops) -> BTreeMap<String, u64> {
    [
        ("no_backend", d.no_backend),
        ("unknown_mid_flow", d.unknown_mid_flow),
        ("no_service", d.no_service),
        ("malformed_packet", d.malformed_packet),
        ("backend_disabled", d.backend_disabled),
        ("unknown_flow", d.unknown_flow),
        ("bad_report", d.bad_report),
        ("unsupported_required", d.unsupported_required),
        ("unexpected_message", d.unexpected_message),
        ("after_shutdown", d.after_shutdown),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v))
    .collect()
}
