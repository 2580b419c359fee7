//! Semantic checks of a parsed file and its translation into the runtime's configurations.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;
use std::path::Path;

use tether_agent::AgentConfig;
use tether_manager::{
    AdminState, BackendConfig, ConfigError, Decisions, ForwardingMode, ManagerConfig, Protocol,
    SchedulerKind, ServiceConfig,
};
use tether_runtime::agent_worker::{AgentWorkerConfig, AgentWorkers};
use tether_runtime::manager_driver::{HealthCheck, HealthCheckKind, ManagerDriverConfig};

use super::{
    AgentSection, DecisionsName, FileConfig, HealthKindName, HealthSection, ManagerSection,
    ModeName, ProtocolName, SchedulerName, ServiceSection, StateName,
};

/// A validated configuration, ready for the runtime.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's name.
    pub node: String,
    /// Where the admin API listens.
    pub admin: SocketAddr,
    /// The manager role, if configured.
    pub manager: Option<ManagerDriverConfig>,
    /// The agent role, if configured: the first worker's configuration and the worker count.
    pub agent: Option<(AgentWorkerConfig, u16)>,
}

impl Config {
    /// The roles this node runs, for logs and `tether check`.
    pub fn roles(&self) -> Vec<&'static str> {
        let mut roles = Vec::new();
        if self.manager.is_some() {
            roles.push("manager");
        }
        if self.agent.is_some() {
            roles.push("agent");
        }
        roles
    }

    /// Number of virtual services.
    pub fn service_count(&self) -> usize {
        self.manager
            .as_ref()
            .map_or(0, |m| m.manager.services.len())
    }
}

/// Field path and message of each problem found.
type Problems = Vec<(String, String)>;

/// Packet workers one agent runs at most.
const MAX_WORKERS: u16 = AgentWorkers::MAX;

/// Longest interface name Linux accepts.
const MAX_IFNAME: usize = 15;

/// Checks `raw` (whose relative paths are relative to `base`) and builds the runtime's
/// configurations from it.
pub(super) fn validate(raw: &FileConfig, base: &Path) -> Result<Config, Problems> {
    let mut problems = Problems::new();
    let mut report = |path: &str, message: String| problems.push((path.to_owned(), message));
    if raw.node.name.trim().is_empty() {
        report("node.name", "is empty; name this node, like \"lb1\"".into());
    }
    if raw.agent.is_none() && raw.manager.is_none() {
        report(
            "",
            "no role is configured; add an [agent] section, a [manager] section, or both".into(),
        );
    }
    if raw.manager.is_none() && !raw.services.is_empty() {
        report(
            "service",
            "services are configured but there is no [manager] section to serve them; add one"
                .into(),
        );
    }
    let auth = super::auth::auth_config(&raw.auth, base, &mut report);
    if let Some(agent) = &raw.agent {
        check_agent(agent, &mut report);
    }
    if let (Some(manager), Some(agent)) = (&raw.manager, &raw.agent)
        && manager.listen.ip() == agent.listen.ip()
        && (u32::from(agent.listen.port())..u32::from(agent.listen.port()) + agent.workers)
            .contains(&u32::from(manager.listen.port()))
    {
        report(
            "manager.listen",
            format!(
                "is the address of an agent worker (agent.listen {} + i for {} workers); give \
                 the manager its own port",
                agent.listen, agent.workers
            ),
        );
    }
    if let Some(manager) = &raw.manager {
        check_failover(manager, &mut report);
        for (i, to) in manager.announce.iter().enumerate() {
            if to.is_ipv4() != manager.listen.is_ipv4() {
                report(
                    &format!("manager.announce[{i}]"),
                    format!(
                        "{to} is not of the address family of manager.listen ({}); announce to \
                         agents of the family the manager listens on",
                        manager.listen
                    ),
                );
            }
        }
    }
    let mut health = Vec::new();
    for (i, service) in raw.services.iter().enumerate() {
        if let Some(check) = &service.health {
            match health_check(service, check) {
                Ok(check) => health.push((service.name.clone(), check)),
                Err((field, message)) => report(&format!("service[{i}].health{field}"), message),
            }
        }
    }
    let manager = raw.manager.as_ref().and_then(|section| {
        let mut ttl = |field: &str, d: Duration| match u32::try_from(d.as_secs()) {
            Ok(secs) if secs > 0 && d.subsec_nanos() == 0 => Some(secs),
            _ => {
                report(
                    &format!("manager.{field}"),
                    format!(
                        "is {}; use a whole number of seconds of at least 1s, like \"30s\"",
                        humantime_serde::re::humantime::format_duration(d)
                    ),
                );
                None
            }
        };
        let wildcard_ttl = ttl("wildcard_ttl", section.wildcard_ttl);
        let fixed_ttl = ttl("fixed_ttl", section.fixed_ttl);
        Some(ManagerConfig {
            name: raw.node.name.clone(),
            addr: section.listen,
            auth: auth.clone()?,
            initial_sequence: 0,
            announce: announce_list(section, raw.agent.as_ref()),
            wildcard_ttl: wildcard_ttl?,
            fixed_ttl: fixed_ttl?,
            sticky: section.sticky,
            service_precedence: None,
            backup_precedence: section.backup_precedence,
            services: raw.services.iter().map(service_config).collect(),
            peers: section.peers.clone(),
            heartbeat_interval: section.heartbeat_interval,
            heartbeat_misses: section.heartbeat_misses,
        })
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    if let Some(manager) = &manager
        && let Err(e) = manager.validate()
    {
        return Err(vec![translate(&e, raw)]);
    }
    let agent = raw.agent.as_ref().and_then(|section| {
        let mut agent = AgentConfig::new(raw.node.name.clone(), section.listen.ip());
        agent.auth = auth.clone()?;
        agent.hold_capacity = section.hold_capacity;
        agent.hold_time = section.hold_time;
        agent.max_fixed_affinities = section.max_fixed_affinities;
        let mut worker = AgentWorkerConfig::new(agent, section.interfaces.clone(), section.listen);
        worker.multicast_group = section.multicast_group;
        worker.steering_table.clone_from(&section.steering_table);
        Some((worker, u16::try_from(section.workers).ok()?))
    });
    Ok(Config {
        node: raw.node.name.clone(),
        admin: raw.admin.listen,
        manager: manager.map(|manager| ManagerDriverConfig { manager, health }),
        agent,
    })
}

/// The announce list, defaulting to the local agent's multicast group or else every worker's
/// address (port `listen` + i).
fn announce_list(section: &ManagerSection, agent: Option<&AgentSection>) -> Vec<SocketAddr> {
    match agent {
        Some(agent) if section.announce.is_empty() => agent.multicast_group.map_or_else(
            || {
                (0..agent.workers.clamp(1, MAX_WORKERS.into()))
                    .map(|i| {
                        let mut addr = agent.listen;
                        addr.set_port(addr.port().saturating_add(i as u16));
                        addr
                    })
                    .collect()
            },
            |group| vec![group],
        ),
        _ => section.announce.clone(),
    }
}

/// Shortest heartbeat interval accepted: below it heartbeats cost more than they tell.
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(10);
/// Longest heartbeat interval accepted: above it a failed manager is found too late to matter.
const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// Most missed heartbeats accepted before a peer counts as dead.
const MAX_HEARTBEAT_MISSES: u32 = 100;

fn check_failover(manager: &ManagerSection, report: &mut impl FnMut(&str, String)) {
    for (i, peer) in manager.peers.iter().enumerate() {
        let path = format!("manager.peers[{i}]");
        if peer.is_ipv4() != manager.listen.is_ipv4() {
            report(
                &path,
                format!(
                    "{peer} is not of the address family of manager.listen ({}); name the peer \
                     managers' listen addresses of that family",
                    manager.listen
                ),
            );
        } else if peer.ip().is_unspecified() || peer.ip().is_multicast() || peer.port() == 0 {
            report(
                &path,
                format!(
                    "{peer} is not a unicast address and port; name another manager's \
                     manager.listen, like 10.0.0.2:7500"
                ),
            );
        } else if *peer == manager.listen {
            report(
                &path,
                format!(
                    "{peer} is this manager's own manager.listen; list only the other managers"
                ),
            );
        } else if manager.peers[..i].contains(peer) {
            report(&path, format!("{peer} is listed twice; remove one"));
        }
    }
    let interval = manager.heartbeat_interval;
    if !(MIN_HEARTBEAT_INTERVAL..=MAX_HEARTBEAT_INTERVAL).contains(&interval) {
        report(
            "manager.heartbeat_interval",
            format!(
                "is {}; use a duration from 10ms to 10s (the default is \"100ms\")",
                humantime_serde::re::humantime::format_duration(interval)
            ),
        );
    }
    if !(1..=MAX_HEARTBEAT_MISSES).contains(&manager.heartbeat_misses) {
        report(
            "manager.heartbeat_misses",
            format!(
                "is {}; use 1 to {MAX_HEARTBEAT_MISSES} missed heartbeats (the default is 2)",
                manager.heartbeat_misses
            ),
        );
    }
}

fn check_agent(agent: &AgentSection, report: &mut impl FnMut(&str, String)) {
    if agent.interfaces.is_empty() {
        report(
            "agent.interfaces",
            "is empty; list the data interfaces the agent forwards on, like [\"eth0\"]".into(),
        );
    }
    for (i, name) in agent.interfaces.iter().enumerate() {
        if name.is_empty() || name.len() > MAX_IFNAME || name.contains(['/', ' ']) {
            report(
                &format!("agent.interfaces[{i}]"),
                format!(
                    "\"{name}\" is not an interface name; use a name `ip link` shows, like \"eth0\""
                ),
            );
        }
    }
    if let Some(group) = agent.multicast_group
        && !group.ip().is_multicast()
    {
        report(
            "agent.multicast_group",
            format!(
                "{} is not a multicast address; use one like 239.1.1.1:7400 or [ff15::7]:7400",
                group.ip()
            ),
        );
    }
    if agent.workers == 0 || agent.workers > MAX_WORKERS.into() {
        report(
            "agent.workers",
            format!(
                "is {}; run 1 to {MAX_WORKERS} packet workers (about one per core that \
                 receives traffic)",
                agent.workers
            ),
        );
    } else if u32::from(agent.listen.port()) + agent.workers - 1 > u32::from(u16::MAX) {
        report(
            "agent.workers",
            format!(
                "worker i listens on port {} + i, beyond 65535; lower agent.listen's port",
                agent.listen.port()
            ),
        );
    }
    if agent.hold_capacity == 0 || agent.hold_time.is_zero() {
        report(
            "agent.hold_capacity",
            "hold_capacity and hold_time must be above 0 so first packets can wait for the \
             manager; the defaults are 1024 and \"2s\""
                .into(),
        );
    }
    if agent.max_fixed_affinities == 0 {
        report(
            "agent.max_fixed_affinities",
            "is 0, so no flow could be forwarded; the default is 1048576".into(),
        );
    }
    let table = &agent.steering_table;
    if table.is_empty()
        || table.len() > 64
        || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        report(
            "agent.steering_table",
            format!("\"{table}\" is not a usable nftables table name; use letters, digits and _"),
        );
    }
}

fn health_check(
    service: &ServiceSection,
    check: &HealthSection,
) -> Result<HealthCheck, (&'static str, String)> {
    if service.protocol == ProtocolName::Udp {
        return Err((
            ".kind",
            "checks connect over TCP, but the service is UDP; remove [service.health] (UDP \
             backends are then always healthy) or check a TCP service on the same servers"
                .into(),
        ));
    }
    if check.rise == 0 || check.fall == 0 {
        let field = if check.rise == 0 { ".rise" } else { ".fall" };
        return Err((
            field,
            "is 0; use at least 1 (defaults: rise 2, fall 3)".into(),
        ));
    }
    if check.interval.is_zero() {
        return Err((".interval", "is 0; use a duration like \"2s\"".into()));
    }
    if check.timeout.is_zero() || check.timeout > check.interval {
        return Err((
            ".timeout",
            "must be above 0 and at most the interval, so checks do not overlap".into(),
        ));
    }
    let kind = match check.kind {
        HealthKindName::Tcp => {
            if check.path.is_some() || check.expect.is_some() {
                let field = if check.path.is_some() {
                    ".path"
                } else {
                    ".expect"
                };
                return Err((field, "applies only to kind = \"http\"; remove it".into()));
            }
            HealthCheckKind::Tcp
        }
        HealthKindName::Http => {
            let path = check.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') || path.contains(char::is_whitespace) {
                return Err((
                    ".path",
                    format!("\"{path}\" is not a request path; use one like \"/healthz\""),
                ));
            }
            let expect = check.expect.as_deref().unwrap_or("2xx");
            let expect_class = match expect.as_bytes() {
                [c @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => u16::from(c - b'0'),
                _ => {
                    return Err((
                        ".expect",
                        format!("\"{expect}\" is not a status class; use \"2xx\" or \"3xx\""),
                    ));
                }
            };
            HealthCheckKind::Http { path, expect_class }
        }
    };
    Ok(HealthCheck {
        kind,
        interval: check.interval,
        timeout: check.timeout,
        rise: check.rise,
        fall: check.fall,
    })
}

fn service_config(s: &ServiceSection) -> ServiceConfig {
    let any = if s.vip.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    let table_size = s.table_size.unwrap_or(tether_manager::DEFAULT_TABLE_SIZE);
    ServiceConfig {
        name: s.name.clone(),
        vip: s.vip,
        port: s.port,
        protocol: match s.protocol {
            ProtocolName::Tcp => Protocol::Tcp,
            ProtocolName::Udp => Protocol::Udp,
        },
        client_domain: s
            .client_domain
            .map_or((any, 0), |net| (net.addr(), net.prefix_len())),
        scheduler: match s.scheduler {
            SchedulerName::Maglev => SchedulerKind::Maglev { table_size },
            SchedulerName::Wrr => SchedulerKind::WeightedRoundRobin,
            SchedulerName::Wlc => SchedulerKind::WeightedLeastConnections,
            SchedulerName::SourceHash => SchedulerKind::SourceHash { table_size },
        },
        mode: match s.mode {
            ModeName::Nat => ForwardingMode::Nat,
            ModeName::Dsr => ForwardingMode::Dsr,
        },
        decisions: match (s.decisions, s.scheduler) {
            (Some(DecisionsName::Local), _) | (None, SchedulerName::Maglev) => Decisions::Local,
            (Some(DecisionsName::Manager) | None, _) => Decisions::Manager,
        },
        backends: s
            .backends
            .iter()
            .map(|b| BackendConfig {
                name: b.name.clone(),
                addr: b.address,
                port: b.port.unwrap_or(s.port),
                weight: b.weight,
                state: match b.state {
                    StateName::Enabled => AdminState::Enabled,
                    StateName::Draining => AdminState::Draining,
                    StateName::Disabled => AdminState::Disabled,
                },
            })
            .collect(),
    }
}

/// Turns the manager's verdict into a field path and message.
fn translate(e: &ConfigError, raw: &FileConfig) -> (String, String) {
    let service_index = |name: &str, nth: usize| {
        raw.services
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name == name)
            .nth(nth)
            .or_else(|| {
                raw.services
                    .iter()
                    .enumerate()
                    .find(|(_, s)| s.name == name)
            })
            .map_or(0, |(i, _)| i)
    };
    let message = e.to_string();
    let path = match e {
        ConfigError::NameTooLong(_) => "node.name".into(),
        ConfigError::NoAnnounceAddress => "manager.announce".into(),
        ConfigError::NoHeartbeat => "manager.heartbeat_interval".into(),
        ConfigError::ZeroTtl { field } => format!("manager.{field}"),
        ConfigError::Auth(_) => "auth".into(),
        ConfigError::DuplicateService(name) => format!("service[{}].name", service_index(name, 1)),
        ConfigError::OverlappingServices { second, .. } => {
            format!("service[{}].client_domain", service_index(second, 0))
        }
        ConfigError::SharedNatBackend {
            second, addr, port, ..
        } => {
            let i = service_index(second, 0);
            let j = raw.services[i]
                .backends
                .iter()
                .position(|b| b.address == *addr && b.port.unwrap_or(raw.services[i].port) == *port)
                .unwrap_or(0);
            format!("service[{i}].backend[{j}].port")
        }
        ConfigError::Service { service, problem } => {
            let i = service_index(service, 0);
            format!(
                "service[{i}]{}",
                field_of(
                    problem,
                    &["name", "vip", "port", "client_domain", "scheduler"],
                    "backend"
                )
            )
        }
        ConfigError::Backend {
            service,
            backend,
            problem,
        } => {
            let i = service_index(service, 0);
            let nth = usize::from(problem.contains("used twice"));
            let backends = &raw.services[i].backends;
            let j = backends
                .iter()
                .enumerate()
                .filter(|(_, b)| &b.name == backend)
                .nth(nth)
                .map_or(0, |(j, _)| j);
            format!(
                "service[{i}].backend[{j}]{}",
                field_of(problem, &["name", "addr", "address", "port", "weight"], "")
            )
        }
        _ => String::new(),
    };
    (path, message)
}

/// `.field` when `problem` starts with one of `fields` (the manager's messages do), with
/// `addr` spelled as the file spells it; `fallback` otherwise.
fn field_of(problem: &str, fields: &[&str], fallback: &str) -> String {
    let first = problem.split_whitespace().next().unwrap_or_default();
    match fields.iter().find(|f| **f == first) {
        Some(&"addr") => ".address".into(),
        Some(&"scheduler") => ".table_size".into(),
        Some(field) => format!(".{field}"),
        None if fallback.is_empty() => String::new(),
        None => format!(".{fallback}"),
    }
}
