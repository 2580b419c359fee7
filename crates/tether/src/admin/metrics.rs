//! `GET /metrics`: the status report in the Prometheus text format.

use core::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::report::{AgentReport, FailoverReport, ManagerReport, StatusReport};

/// Rejection reasons always exported, so dashboards see a 0 before the first rejection.
const REJECTION_REASONS: [&str; 5] = [
    "malformed",
    "unsigned",
    "unknown_key",
    "bad_mac",
    "replayed",
];

type Labels = Vec<(&'static str, String)>;

/// A registry filled from one snapshot; built per scrape, so it never touches the packet path.
struct Metrics {
    registry: Registry,
}

impl Metrics {
    fn counter<I>(&mut self, name: &str, help: &str, values: I)
    where
        I: IntoIterator<Item = (Labels, u64)>,
    {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in values {
            family.get_or_create(&labels).inc_by(value);
        }
        self.registry.register(name, help, family);
    }

    fn gauge<I>(&mut self, name: &str, help: &str, values: I)
    where
        I: IntoIterator<Item = (Labels, u64)>,
    {
        let family = Family::<Labels, Gauge>::default();
        for (labels, value) in values {
            family
                .get_or_create(&labels)
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        self.registry.register(name, help, family);
    }

    fn total(&mut self, name: &str, help: &str, value: u64) {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        self.registry.register(name, help, counter);
    }

    fn bytes(&mut self, name: &str, help: &str, value: u64) {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        self.registry
            .register_with_unit(name, help, Unit::Bytes, counter);
    }

    fn seconds(&mut self, name: &str, help: &str, value: f64) {
        let gauge = Gauge::<f64, AtomicU64>::default();
        gauge.set(value);
        self.registry
            .register_with_unit(name, help, Unit::Seconds, gauge);
    }

    fn single(&mut self, name: &str, help: &str, value: u64) {
        let gauge = Gauge::<i64>::default();
        gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        self.registry.register(name, help, gauge);
    }
}

/// Renders `report` as Prometheus text.
pub fn render(report: &StatusReport) -> String {
    let mut m = Metrics {
        registry: Registry::default(),
    };
    m.gauge(
        "tether_node_info",
        "Always 1; labels name the node, its version and roles",
        [(
            vec![
                ("node", report.node.clone()),
                ("version", report.version.clone()),
                ("roles", report.roles.join(",")),
            ],
            1,
        )],
    );
    if let Some(agent) = &report.agent {
        agent_metrics(&mut m, agent);
    }
    if let Some(manager) = &report.manager {
        manager_metrics(&mut m, manager);
    }
    let mut out = String::new();
    encode(&mut out, &m.registry).expect("writing to a String cannot fail");
    out
}

fn by_reason<'a>(
    counts: impl IntoIterator<Item = (&'a String, &'a u64)>,
    always: &[&str],
) -> Vec<(Labels, u64)> {
    let mut out: Vec<(Labels, u64)> = counts
        .into_iter()
        .map(|(reason, n)| (vec![("reason", reason.clone())], *n))
        .collect();
    for reason in always {
        if !out.iter().any(|(l, _)| l[0].1 == *reason) {
            out.push((vec![("reason", (*reason).to_owned())], 0));
        }
    }
    out
}

fn agent_metrics(m: &mut Metrics, a: &AgentReport) {
    m.total(
        "tether_agent_received_packets",
        "Frames received on the packet rings",
        a.rx_packets,
    );
    m.bytes(
        "tether_agent_received",
        "Bytes received on the packet rings",
        a.rx_bytes,
    );
    m.total("tether_agent_sent_packets", "Frames sent", a.tx_packets);
    m.bytes("tether_agent_sent", "Bytes sent", a.tx_bytes);
    m.total(
        "tether_agent_forwarded_packets",
        "Packets forwarded by an affinity",
        a.forwarded,
    );
    m.total(
        "tether_agent_not_ours_packets",
        "Packets no affinity covers, left to the kernel",
        a.not_ours,
    );
    m.total(
        "tether_agent_punted_packets",
        "Packets sent to a manager inside interest matches",
        a.to_manager,
    );
    m.total(
        "tether_agent_held_packets",
        "Packets held for a manager's decision",
        a.held,
    );
    m.counter(
        "tether_agent_dropped_packets",
        "Packets dropped, by reason",
        by_reason(&a.drops, &[]),
    );
    m.total(
        "tether_agent_interest_matches",
        "Interest match messages sent to managers",
        a.interest_matches,
    );
    m.total(
        "tether_agent_placed_locally",
        "New flows the agent placed itself by a service's Maglev table (local decisions)",
        a.placed_locally,
    );
    m.total(
        "tether_agent_flow_reports",
        "Flow report messages sent to managers",
        a.flow_reports,
    );
    m.total(
        "tether_agent_received_messages",
        "Service messages accepted",
        a.messages_in,
    );
    m.total(
        "tether_agent_sent_messages",
        "Service messages sent",
        a.messages_out,
    );
    m.counter(
        "tether_agent_rejected_messages",
        "Service messages rejected (authentication, replay, malformed), by reason",
        by_reason(&a.rejected, &REJECTION_REASONS),
    );
    m.single(
        "tether_agent_fixed_affinities",
        "Fixed affinities held",
        a.fixed_affinities,
    );
    m.single(
        "tether_agent_wildcard_affinities",
        "Wildcard affinities held",
        a.wildcard_affinities,
    );
    m.single(
        "tether_agent_hold_buffer_packets",
        "Packets waiting in the hold buffer",
        a.held_packets,
    );
    m.single(
        "tether_agent_steering_rules",
        "nftables steering rules installed",
        a.steering_rules,
    );
}

fn manager_metrics(m: &mut Metrics, r: &ManagerReport) {
    let c = &r.counters;
    m.single(
        "tether_manager_backup_precedence",
        "0 for a primary manager, above 0 for a backup",
        u64::from(r.backup_precedence),
    );
    m.single(
        "tether_manager_active_flows",
        "Flows held (open and closing)",
        r.flows,
    );
    m.total(
        "tether_manager_new_flows",
        "New flows placed on a backend (rate() gives new flows per second)",
        c.flows_created,
    );
    m.total(
        "tether_manager_closed_flows",
        "Flows that reported a FIN or RST",
        c.flows_closed,
    );
    m.total(
        "tether_manager_expired_flows",
        "Flows forgotten after their expiry",
        c.flows_expired,
    );
    m.total(
        "tether_manager_received_datagrams",
        "Service-message datagrams received",
        c.datagrams,
    );
    m.total(
        "tether_manager_interest_matches",
        "Interest matches (punted packets) acted on",
        c.interest_matches,
    );
    m.total(
        "tether_manager_flow_reports",
        "Flow report messages from agents acted on",
        c.flow_reports,
    );
    m.total(
        "tether_manager_reported_flows",
        "Flows agents placed themselves and reported",
        c.flows_reported,
    );
    m.total(
        "tether_manager_recovered_flows",
        "Unknown flows of local-decision services placed again by the table mid-flow",
        c.flows_recovered,
    );
    m.total(
        "tether_manager_sent_fixed_updates",
        "Fixed affinity updates sent",
        c.fixed_updates_sent,
    );
    m.total(
        "tether_manager_sent_wildcard_updates",
        "Wildcard affinity updates sent",
        c.wildcard_updates_sent,
    );
    m.total(
        "tether_manager_returned_packets",
        "Packets handed back in IP-packet-only messages",
        c.ip_packets_returned,
    );
    m.counter(
        "tether_manager_dropped",
        "Packets and messages dropped, by reason",
        by_reason(&c.dropped, &[]),
    );
    m.counter(
        "tether_manager_rejected_messages",
        "Service messages rejected (authentication, replay, malformed), by reason",
        by_reason(&c.rejected, &REJECTION_REASONS),
    );
    m.counter(
        "tether_manager_received_denies",
        "Affinity update-denies received, by agent",
        r.denies
            .iter()
            .map(|(agent, n)| (vec![("agent", agent.clone())], *n)),
    );
    failover_metrics(m, &r.failover);
    let backends: Vec<_> = r
        .services
        .iter()
        .flat_map(|s| s.backends.iter().map(move |b| (s, b)))
        .collect();
    let labels = |s: &str, b: &str| vec![("service", s.to_owned()), ("backend", b.to_owned())];
    m.gauge(
        "tether_backend_healthy",
        "1 when the backend passes its health check, else 0",
        backends
            .iter()
            .map(|(s, b)| (labels(&s.name, &b.name), u64::from(b.healthy))),
    );
    m.gauge(
        "tether_backend_eligible",
        "1 when new flows may go to the backend (enabled and healthy), else 0",
        backends
            .iter()
            .map(|(s, b)| (labels(&s.name, &b.name), u64::from(b.eligible))),
    );
    m.gauge(
        "tether_backend_active_flows",
        "Open flows placed on the backend",
        backends
            .iter()
            .map(|(s, b)| (labels(&s.name, &b.name), b.active_flows)),
    );
    m.gauge(
        "tether_backend_weight",
        "Configured weight of the backend",
        backends
            .iter()
            .map(|(s, b)| (labels(&s.name, &b.name), u64::from(b.weight))),
    );
    m.gauge(
        "tether_backend_admin_state",
        "1 for the backend's administrative state (enabled, draining, disabled)",
        backends.iter().flat_map(|(s, b)| {
            ["enabled", "draining", "disabled"]
                .into_iter()
                .map(|state| {
                    let mut l = labels(&s.name, &b.name);
                    l.push(("state", state.to_owned()));
                    (l, u64::from(b.admin == state))
                })
        }),
    );
}

fn failover_metrics(m: &mut Metrics, f: &FailoverReport) {
    m.single(
        "tether_manager_active",
        "1 while this manager is the active one (places flows), 0 while standby",
        u64::from(f.role == "active"),
    );
    m.single(
        "tether_manager_ready",
        "1 when the manager holds the flow store and may become active",
        u64::from(f.ready),
    );
    m.total(
        "tether_manager_takeovers",
        "Times this manager took over from a dead active peer",
        f.takeovers,
    );
    m.total(
        "tether_manager_reclaims",
        "Times this manager took the active role back from a worse peer",
        f.reclaims,
    );
    if let Some(ms) = f.detection_ms {
        m.seconds(
            "tether_manager_last_detection",
            "Last takeover: from the failed peer's last heartbeat to its detection",
            ms / 1e3,
        );
    }
    if let Some(ms) = f.takeover_ms {
        m.seconds(
            "tether_manager_last_takeover",
            "Last takeover: from the detection to the first existing flow served",
            ms / 1e3,
        );
    }
    m.counter(
        "tether_manager_replication_records",
        "Flow records replicated, by outcome (sent; received and stored, refused or conflicting)",
        [
            ("sent", f.records_sent),
            ("stored", f.records_stored),
            ("refused", f.records_refused),
            ("conflicting", f.records_conflicting),
        ]
        .map(|(outcome, n)| (vec![("outcome", outcome.to_owned())], n)),
    );
    m.total(
        "tether_manager_replication_gaps",
        "Replication batches that arrived after a later one",
        f.gaps,
    );
    m.total(
        "tether_manager_replication_resent_batches",
        "Replication batches sent again to a peer that reported a gap",
        f.batches_resent,
    );
    m.counter(
        "tether_manager_snapshots",
        "Full flow stores sent to returning peers or received from the active one",
        [
            ("sent", f.snapshots_sent),
            ("received", f.snapshots_received),
        ]
        .map(|(direction, n)| (vec![("direction", direction.to_owned())], n)),
    );
    let peer = |address: &core::net::SocketAddr| vec![("peer", address.to_string())];
    m.gauge(
        "tether_manager_peer_live",
        "1 while the peer manager's heartbeats arrive in time",
        f.peers
            .iter()
            .map(|p| (peer(&p.address), u64::from(p.live))),
    );
    m.gauge(
        "tether_manager_peer_lag_batches",
        "Replication batches the peer is behind",
        f.peers.iter().map(|p| (peer(&p.address), p.lag)),
    );
}
