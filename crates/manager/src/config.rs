//! What an operator configures: the manager, its virtual services and their backends, and the
//! checks that run before a [`crate::Manager`] exists.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use tether_proto::codec::AuthConfigError;
use tether_proto::maglev::is_prime;
use tether_proto::{AuthConfig, ServicePrecedence};
use tether_wire::flow::{PROTO_TCP, PROTO_UDP};

use crate::prefix::Prefix;

/// Maglev table size used when an operator has no reason to pick another (a prime).
pub const DEFAULT_TABLE_SIZE: u32 = 65_537;

/// The longest host name an identity segment carries.
const MAX_NAME_LEN: usize = 255;

/// Everything a manager needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerConfig {
    /// Host name sent in identity segments.
    pub name: String,
    /// This manager's service-message address; interest matches are sent here.
    pub addr: SocketAddr,
    /// Keys for signing and checking service messages.
    pub auth: AuthConfig,
    /// Outgoing sequence numbers start after this (derived from the wall clock by a runtime).
    pub initial_sequence: u64,
    /// Where wildcard affinities go: a multicast group and/or agents by unicast.
    pub announce: Vec<SocketAddr>,
    /// Seconds agents keep a wildcard affinity; refreshed every third of it.
    pub wildcard_ttl: u32,
    /// Seconds agents keep a fixed affinity.
    pub fixed_ttl: u32,
    /// How long a flow is kept after its FIN or RST, so the last ACK still finds its backend.
    pub sticky: Duration,
    /// Service precedence of every affinity this manager sends.
    pub service_precedence: Option<ServicePrecedence>,
    /// Backup precedence of every affinity this manager sends (0 for a primary).
    pub backup_precedence: u16,
    /// The virtual services.
    pub services: Vec<ServiceConfig>,
    /// The other managers of the same services (their service-message addresses).
    pub peers: Vec<SocketAddr>,
    /// How often a manager sends a heartbeat to each peer.
    pub heartbeat_interval: Duration,
    /// Heartbeat intervals without news after which a peer counts as dead.
    pub heartbeat_misses: u32,
}

/// Heartbeat interval used when an operator has no reason to pick another.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// Missed heartbeats that make a peer dead, by default (median detection about 200 ms).
pub const DEFAULT_HEARTBEAT_MISSES: u32 = 2;

/// A virtual service: the flows from a client domain to VIP:port over one protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Name used in status, errors and control calls.
    pub name: String,
    /// Virtual IP address clients connect to.
    pub vip: IpAddr,
    /// Service port.
    pub port: u16,
    /// Transport protocol.
    pub protocol: Protocol,
    /// Clients this service is for: network address and prefix length.
    pub client_domain: (IpAddr, u8),
    /// How new flows are spread over backends.
    pub scheduler: SchedulerKind,
    /// How packets reach the backend.
    pub mode: ForwardingMode,
    /// Who places a new flow: the agent by the manager's Maglev table, or the manager.
    pub decisions: Decisions,
    /// The real servers.
    pub backends: Vec<BackendConfig>,
}

/// Who places a new flow of a service (`docs/affinities.md`, "Local decisions").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decisions {
    /// The agent sends a new flow's first packet to the manager, which places the flow and
    /// answers with its fixed affinities (seed 004's way; any scheduler).
    Manager,
    /// The agent places a new flow itself by the Maglev table the manager sends with the
    /// service's wildcard, and reports it; the manager stores and replicates it as its own.
    /// Needs the Maglev scheduler.
    Local,
}

/// Most backends a service with local decisions may have: its wildcard carries every one of
/// them and must fit a datagram.
pub const MAX_LOCAL_BACKENDS: usize = 1000;

/// A real server behind a virtual service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    /// Name, unique within its service.
    pub name: String,
    /// Address packets are sent to.
    pub addr: IpAddr,
    /// Port packets are sent to (must equal the service port in DSR mode).
    pub port: u16,
    /// Relative share of new flows (at least 1).
    pub weight: u32,
    /// Administrative state at start.
    pub state: AdminState,
}

/// Transport protocol of a virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP: a flow starts with a SYN.
    Tcp,
    /// UDP: any packet of an unknown flow starts one.
    Udp,
}

impl Protocol {
    /// The IANA protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Self::Tcp => PROTO_TCP,
            Self::Udp => PROTO_UDP,
        }
    }
}

/// Which scheduler picks the backend of a new flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    /// Maglev consistent hashing of the flow's 5-tuple over a table of `table_size` (prime) slots.
    Maglev {
        /// Number of table slots; a prime well above the number of backends.
        table_size: u32,
    },
    /// Smooth weighted round robin (nginx).
    WeightedRoundRobin,
    /// Fewest active flows per unit of weight.
    WeightedLeastConnections,
    /// Consistent hashing of the client address only, so a client keeps its backend.
    SourceHash {
        /// Number of table slots; a prime well above the number of backends.
        table_size: u32,
    },
}

impl SchedulerKind {
    /// Maglev with the default table size.
    pub const MAGLEV: Self = Self::Maglev {
        table_size: DEFAULT_TABLE_SIZE,
    };
    /// Source hash with the default table size.
    pub const SOURCE_HASH: Self = Self::SourceHash {
        table_size: DEFAULT_TABLE_SIZE,
    };
}

/// How a forwarding agent delivers a flow's packets to its backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ForwardingMode {
    /// Rewrite the destination to the backend (and the source of replies back to the VIP).
    Nat,
    /// Direct server return: dispatch to the backend unchanged; replies bypass the agents.
    Dsr,
}

/// Administrative state of a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdminState {
    /// Takes new flows.
    Enabled,
    /// Keeps its flows until they end; takes no new ones.
    Draining,
    /// Takes no new flows, and its flows are not renewed.
    Disabled,
}

/// A configuration the manager refuses, naming the field and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The manager name does not fit an identity segment.
    #[error("manager name is {0} bytes long; use at most 255 bytes")]
    NameTooLong(usize),
    /// No announce address.
    #[error("announce is empty; list the agents' multicast group or each agent's address")]
    NoAnnounceAddress,
    /// Peers are configured but heartbeats could never declare one dead.
    #[error("heartbeat_interval and heartbeat_misses must be above zero when peers are configured")]
    NoHeartbeat,
    /// A TTL of 0 would delete what it announces.
    #[error("{field} is 0, which deletes affinities; set it to at least 1 second")]
    ZeroTtl {
        /// `wildcard_ttl` or `fixed_ttl`.
        field: &'static str,
    },
    /// The authentication keys are unusable.
    #[error("auth: {0}")]
    Auth(#[from] AuthConfigError),
    /// Two services share a name.
    #[error("service name \"{0}\" is used twice; give each service its own name")]
    DuplicateService(String),
    /// Two services would claim the same flows.
    #[error(
        "services \"{first}\" and \"{second}\" both serve {vip} port {port} to overlapping client \
         domains; make the client domains disjoint or merge the services"
    )]
    OverlappingServices {
        /// The service configured first.
        first: String,
        /// The service configured second.
        second: String,
        /// Their VIP.
        vip: IpAddr,
        /// Their port.
        port: u16,
    },
    /// A service field is wrong; `problem` says which and how to fix it.
    #[error("service \"{service}\": {problem}")]
    Service {
        /// The service.
        service: String,
        /// What is wrong and the fix.
        problem: String,
    },
    /// A backend field is wrong; `problem` says which and how to fix it.
    #[error("service \"{service}\", backend \"{backend}\": {problem}")]
    Backend {
        /// The service.
        service: String,
        /// The backend.
        backend: String,
        /// What is wrong and the fix.
        problem: String,
    },
    /// Two NAT services share a backend for overlapping clients, so a reply could not tell
    /// which service's flow it belongs to.
    #[error(
        "services \"{first}\" and \"{second}\" both NAT to backend {addr} port {port} for \
         overlapping client domains; replies would be ambiguous, so give one of them another \
         backend port"
    )]
    SharedNatBackend {
        /// The service configured first.
        first: String,
        /// The service configured second.
        second: String,
        /// Backend address.
        addr: IpAddr,
        /// Backend port.
        port: u16,
    },
}

impl ManagerConfig {
    /// Checks everything a manager relies on, so that no later call fails on configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.len() > MAX_NAME_LEN {
            return Err(ConfigError::NameTooLong(self.name.len()));
        }
        if self.announce.is_empty() {
            return Err(ConfigError::NoAnnounceAddress);
        }
        for (field, ttl) in [
            ("wildcard_ttl", self.wildcard_ttl),
            ("fixed_ttl", self.fixed_ttl),
        ] {
            if ttl == 0 {
                return Err(ConfigError::ZeroTtl { field });
            }
        }
        if !self.peers.is_empty()
            && (self.heartbeat_interval.is_zero() || self.heartbeat_misses == 0)
        {
            return Err(ConfigError::NoHeartbeat);
        }
        self.auth.validate()?;
        for service in &self.services {
            service.validate()?;
        }
        validate_across_services(&self.services)
    }
}

fn validate_across_services(services: &[ServiceConfig]) -> Result<(), ConfigError> {
    for (i, a) in services.iter().enumerate() {
        for b in &services[i + 1..] {
            if a.name == b.name {
                return Err(ConfigError::DuplicateService(b.name.clone()));
            }
            if a.protocol != b.protocol || !a.domain().overlaps(&b.domain()) {
                continue;
            }
            if a.vip == b.vip && a.port == b.port {
                return Err(ConfigError::OverlappingServices {
                    first: a.name.clone(),
                    second: b.name.clone(),
                    vip: a.vip,
                    port: a.port,
                });
            }
            if a.mode != ForwardingMode::Nat || b.mode != ForwardingMode::Nat {
                continue;
            }
            for x in &a.backends {
                if b.backends
                    .iter()
                    .any(|y| (y.addr, y.port) == (x.addr, x.port))
                {
                    return Err(ConfigError::SharedNatBackend {
                        first: a.name.clone(),
                        second: b.name.clone(),
                        addr: x.addr,
                        port: x.port,
                    });
                }
            }
        }
    }
    Ok(())
}

impl ServiceConfig {
    /// The client domain as a prefix (valid after [`ServiceConfig::validate`]).
    pub(crate) fn domain(&self) -> Prefix {
        Prefix::new(self.client_domain.0, self.client_domain.1)
    }

    fn error(&self, problem: String) -> ConfigError {
        ConfigError::Service {
            service: self.name.clone(),
            problem,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(self.error("name is empty; give the service a name".into()));
        }
        if self.vip.is_unspecified() {
            return Err(self.error(format!(
                "vip is {}; set the virtual IP address clients connect to",
                self.vip
            )));
        }
        if self.port == 0 {
            return Err(self.error("port is 0; set the service port".into()));
        }
        let (net, len) = self.client_domain;
        if net.is_ipv4() != self.vip.is_ipv4() {
            return Err(self.error(format!(
                "client_domain {net}/{len} and vip {} are of different address families; use a \
                 client domain of the VIP's family",
                self.vip
            )));
        }
        let max_len = if net.is_ipv4() { 32 } else { 128 };
        if len > max_len {
            return Err(self.error(format!(
                "client_domain prefix length {len} is longer than {max_len}; use 0..={max_len}"
            )));
        }
        let domain = self.domain();
        if domain.network() != net {
            return Err(self.error(format!(
                "client_domain {net}/{len} has host bits set; write it as {}/{len}",
                domain.network()
            )));
        }
        if let SchedulerKind::Maglev { table_size } | SchedulerKind::SourceHash { table_size } =
            self.scheduler
            && (!is_prime(table_size) || (table_size as usize) <= self.backends.len())
        {
            return Err(self.error(format!(
                "scheduler table_size {table_size} must be a prime larger than the number of \
                 backends, ideally 100 times larger; {DEFAULT_TABLE_SIZE} is the default"
            )));
        }
        if self.backends.is_empty() {
            return Err(
                self.error("has no backends; add at least one (it may start disabled)".into())
            );
        }
        if self.decisions == Decisions::Local {
            if !matches!(self.scheduler, SchedulerKind::Maglev { .. }) {
                return Err(self.error(
                    "decisions = \"local\" needs scheduler = \"maglev\" (agents place flows by \
                     the Maglev table); set decisions = \"manager\" for other schedulers"
                        .into(),
                ));
            }
            if self.backends.len() > MAX_LOCAL_BACKENDS {
                return Err(self.error(format!(
                    "has {} backends, but a service with decisions = \"local\" may have at most \
                     {MAX_LOCAL_BACKENDS}; set decisions = \"manager\"",
                    self.backends.len()
                )));
            }
        }
        for (i, backend) in self.backends.iter().enumerate() {
            self.validate_backend(backend, &self.backends[..i])?;
        }
        Ok(())
    }

    fn validate_backend(
        &self,
        backend: &BackendConfig,
        earlier: &[BackendConfig],
    ) -> Result<(), ConfigError> {
        let error = |problem: String| ConfigError::Backend {
            service: self.name.clone(),
            backend: backend.name.clone(),
            problem,
        };
        if backend.name.is_empty() {
            return Err(error("name is empty; give the backend a name".into()));
        }
        if earlier.iter().any(|b| b.name == backend.name) {
            return Err(error(
                "name is used twice in this service; give each backend its own name".into(),
            ));
        }
        if let Some(b) = earlier
            .iter()
            .find(|b| (b.addr, b.port) == (backend.addr, backend.port))
        {
            return Err(error(format!(
                "address {} port {} is also backend \"{}\"; list each server once",
                backend.addr, backend.port, b.name
            )));
        }
        if backend.addr.is_ipv4() != self.vip.is_ipv4() || backend.addr.is_unspecified() {
            return Err(error(format!(
                "addr {} is not a usable address of the VIP's family ({}); agents translate \
                 within one family",
                backend.addr, self.vip
            )));
        }
        if backend.weight == 0 {
            return Err(error(
                "weight is 0; set at least 1 (to take a backend out, set its state to draining \
                 or disabled)"
                    .into(),
            ));
        }
        match self.mode {
            ForwardingMode::Nat if backend.port == 0 => Err(error(
                "port is 0; set the port the server listens on".into(),
            )),
            ForwardingMode::Dsr if backend.port != self.port => Err(error(format!(
                "port {} differs from the service port {}, but DSR cannot rewrite ports; set \
                 port = {} or use mode = nat",
                backend.port, self.port, self.port
            ))),
            _ => Ok(()),
        }
    }
}
