//! The TOML configuration: what the file may say, how it is read, and the errors that name the
//! file, the field and the fix.

mod auth;
mod locate;
mod validate;

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use validate::Config;

use locate::Locator;

/// The whole file as written, before semantic checks.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// This node's identity.
    pub node: NodeSection,
    /// The admin HTTP API.
    #[serde(default)]
    pub admin: AdminSection,
    /// Authentication of service messages.
    #[serde(default)]
    pub auth: AuthSection,
    /// The forwarding agent role, if this node runs one.
    pub agent: Option<AgentSection>,
    /// The service manager role, if this node runs one.
    pub manager: Option<ManagerSection>,
    /// The virtual services the manager balances.
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceSection>,
}

/// `[node]`: who this node is.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Host name sent in identity segments and shown by `tether status`.
    pub name: String,
}

/// `[admin]`: where the admin HTTP API listens.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Listen address; loopback unless the network around it is trusted.
    #[serde(default = "default_admin_listen", deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
        }
    }
}

/// The admin API's default listen address.
pub fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

/// `[auth]`: HMAC-SHA256 keys for service messages.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// A file with one `KEY-ID HEX-SECRET` line per key, relative to the config file.
    pub key_file: Option<PathBuf>,
    /// Keys written inline (for tests and labs; prefer `key_file`).
    #[serde(default, rename = "key")]
    pub keys: Vec<InlineKey>,
    /// Id of the key that signs outgoing messages; the first key when unset.
    pub send_key: Option<u32>,
    /// Whether incoming messages must be signed with a known key.
    #[serde(default = "yes")]
    pub require: bool,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            key_file: None,
            keys: Vec::new(),
            send_key: None,
            require: true,
        }
    }
}

/// `[[auth.key]]`: one key written inline.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineKey {
    /// Key id carried in the security segment.
    pub id: u32,
    /// The secret as hex digits.
    pub secret: String,
}

/// `[agent]`: the forwarding agent role.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// Data interfaces whose traffic the agent sees and forwards.
    pub interfaces: Vec<String>,
    /// Unicast address of the agent's service-message socket.
    #[serde(deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
    /// Multicast group the managers announce wildcard affinities to.
    #[serde(default, deserialize_with = "de::opt_socket_addr")]
    pub multicast_group: Option<SocketAddr>,
    /// Packet workers.
    #[serde(default = "one")]
    pub workers: u32,
    /// Packets held at most while they wait for a manager's decision.
    #[serde(default = "default_hold_capacity")]
    pub hold_capacity: usize,
    /// How long a held packet waits for its fixed affinity.
    #[serde(default = "default_hold_time", with = "humantime_serde")]
    pub hold_time: Duration,
    /// Fixed affinities kept at most.
    #[serde(default = "default_max_fixed")]
    pub max_fixed_affinities: usize,
    /// Name of the nftables `netdev` table the agent owns.
    #[serde(default = "default_steering_table")]
    pub steering_table: String,
}

/// `[manager]`: the service manager role.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerSection {
    /// Address of the manager's service-message socket.
    #[serde(deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
    /// Where wildcard affinities go: a multicast group and/or agents' addresses.
    #[serde(default, deserialize_with = "de::socket_addrs")]
    pub announce: Vec<SocketAddr>,
    /// How long agents keep a wildcard affinity (whole seconds).
    #[serde(default = "default_wildcard_ttl", with = "humantime_serde")]
    pub wildcard_ttl: Duration,
    /// How long agents keep a fixed affinity (whole seconds).
    #[serde(default = "default_fixed_ttl", with = "humantime_serde")]
    pub fixed_ttl: Duration,
    /// How long a flow is kept after its FIN or RST.
    #[serde(default = "default_sticky", with = "humantime_serde")]
    pub sticky: Duration,
    /// 0 for a primary manager; a backup's affinities take effect only when the primary's are gone.
    #[serde(default)]
    pub backup_precedence: u16,
    /// The other managers of the same services (their `listen` addresses), for failover.
    #[serde(default, deserialize_with = "de::socket_addrs")]
    pub peers: Vec<SocketAddr>,
    /// How often heartbeats go to each peer.
    #[serde(default = "default_heartbeat_interval", with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Heartbeat intervals without news after which a peer counts as dead.
    #[serde(default = "default_heartbeat_misses")]
    pub heartbeat_misses: u32,
}

/// `[[service]]`: a virtual service.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// Name used in status, metrics and `tether backend`.
    pub name: String,
    /// Virtual IP address clients connect to.
    #[serde(deserialize_with = "de::ip_addr")]
    pub vip: IpAddr,
    /// Service port.
    pub port: u16,
    /// Transport protocol.
    #[serde(default)]
    pub protocol: ProtocolName,
    /// Clients this service is for; every client of the VIP's family when unset.
    #[serde(default, deserialize_with = "de::opt_ip_net")]
    pub client_domain: Option<ipnet::IpNet>,
    /// How new flows are spread over backends.
    #[serde(default)]
    pub scheduler: SchedulerName,
    /// Slots of the maglev or source-hash table (a prime).
    pub table_size: Option<u32>,
    /// How packets reach the backends.
    #[serde(default)]
    pub mode: ModeName,
    /// Who places new flows; `local` with the maglev scheduler, `manager` otherwise, when unset.
    pub decisions: Option<DecisionsName>,
    /// Health check of every backend; none means always healthy.
    pub health: Option<HealthSection>,
    /// The real servers.
    #[serde(default, rename = "backend")]
    pub backends: Vec<BackendSection>,
}

/// `protocol = "tcp" | "udp"`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolName {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// `scheduler = "maglev" | "wrr" | "wlc" | "source-hash"`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerName {
    /// Maglev consistent hashing of the 5-tuple.
    #[default]
    Maglev,
    /// Smooth weighted round robin.
    Wrr,
    /// Weighted least connections.
    Wlc,
    /// Consistent hashing of the client address.
    SourceHash,
}

/// `mode = "nat" | "dsr"`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    /// Rewrite the destination to the backend.
    #[default]
    Nat,
    /// Direct server return.
    Dsr,
}

/// `decisions = "local" | "manager"`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DecisionsName {
    /// Agents place new flows by the manager's Maglev table and report them.
    Local,
    /// Agents send a new flow's first packet to the manager, which places it.
    Manager,
}

/// `[service.health]`: how backends are checked.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    /// `tcp` (connect) or `http` (GET).
    #[serde(default)]
    pub kind: HealthKindName,
    /// HTTP request path.
    pub path: Option<String>,
    /// Expected HTTP status class, like `2xx`.
    pub expect: Option<String>,
    /// Time between checks.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Time a check may take.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Consecutive successes that bring a backend up.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures that take a backend down.
    #[serde(default = "default_fall")]
    pub fall: u32,
}

/// `kind = "tcp" | "http"`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HealthKindName {
    /// TCP connect.
    #[default]
    Tcp,
    /// HTTP GET.
    Http,
}

/// `[[service.backend]]`: a real server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    /// Name, unique within its service.
    pub name: String,
    /// Address packets are sent to.
    #[serde(deserialize_with = "de::ip_addr")]
    pub address: IpAddr,
    /// Port packets are sent to; the service port when unset.
    pub port: Option<u16>,
    /// Relative share of new flows.
    #[serde(default = "one")]
    pub weight: u32,
    /// Administrative state at start.
    #[serde(default)]
    pub state: StateName,
}

/// `state = "enabled" | "draining" | "disabled"`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StateName {
    /// Takes new flows.
    #[default]
    Enabled,
    /// Keeps its flows, takes no new ones.
    Draining,
    /// Takes no flows.
    Disabled,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_hold_capacity() -> usize {
    1024
}
fn default_hold_time() -> Duration {
    Duration::from_secs(2)
}
fn default_max_fixed() -> usize {
    1 << 20
}
fn default_steering_table() -> String {
    "tether".into()
}
fn default_wildcard_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_fixed_ttl() -> Duration {
    Duration::from_mins(1)
}
fn default_sticky() -> Duration {
    Duration::from_secs(10)
}
fn default_heartbeat_interval() -> Duration {
    tether_manager::DEFAULT_HEARTBEAT_INTERVAL
}
fn default_heartbeat_misses() -> u32 {
    tether_manager::DEFAULT_HEARTBEAT_MISSES
}
fn default_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}

/// One thing wrong with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Field path such as `service[1].backend[0].address` (empty for the whole file).
    pub path: String,
    /// Line and column (1-based) the field is on, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Everything wrong with a configuration file.
#[derive(Clone, Debug)]
pub struct ConfigErrors {
    /// The file.
    pub file: PathBuf,
    /// The problems, in file order as far as known.
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some((line, column)) = e.position {
                write!(f, ":{line}:{column}")?;
            }
            if e.path.is_empty() {
                write!(f, ": {}", e.message)?;
            } else {
                write!(f, ": {}: {}", e.path, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads, parses and validates the configuration at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: path.to_owned(),
        errors: vec![FieldError {
            path: String::new(),
            position: None,
            message: format!("cannot read the file ({e}); check the path given with -c"),
        }],
    })?;
    parse(&text, path)
}

/// Parses and validates configuration `text` that was read from `file` (relative key files are
/// looked up next to it).
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        file: file.to_owned(),
        errors,
    };
    let locator = Locator::new(text).map_err(|e| fail(vec![syntax_error(text, &e)]))?;
    let raw: FileConfig = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let path = locator.path_at(span.start);
        let mut message = e.message().trim_end().to_owned();
        if message.starts_with("missing field") && !path.is_empty() {
            message.push_str("; add it to this table");
        }
        fail(vec![FieldError {
            position: Some(locate::line_column(text, span.start)),
            path,
            message,
        }])
    })?;
    let base = file.parent().unwrap_or_else(|| Path::new("."));
    validate::validate(&raw, base).map_err(|errors| {
        fail(
            errors
                .into_iter()
                .map(|(path, message)| FieldError {
                    position: locator
                        .span_of(&path)
                        .map(|at| locate::line_column(text, at)),
                    path,
                    message,
                })
                .collect(),
        )
    })
}

fn syntax_error(text: &str, e: &toml::de::Error) -> FieldError {
    FieldError {
        path: String::new(),
        position: e.span().map(|s| locate::line_column(text, s.start)),
        message: format!("{}; this is not valid TOML", e.message().trim_end()),
    }
}

/// Deserializers whose errors show an example of what is expected.
mod de {
    use core::net::{IpAddr, SocketAddr};
    use core::str::FromStr;

    use serde::{Deserialize, Deserializer, de::Error};

    const IP: &str = "an IPv4 or IPv6 address like 10.0.0.1 or 2001:db8::1";
    const SOCKET: &str = "an address and port like 10.0.0.1:7400 or [2001:db8::1]:7400";
    const NET: &str = "a network like 10.0.0.0/8 or 2001:db8::/32";

    fn parsed<'de, D: Deserializer<'de>, T: FromStr>(d: D, what: &str) -> Result<T, D::Error> {
        let s = String::deserialize(d)
            .map_err(|_| D::Error::custom(format!("expected {what} in quotes")))?;
        s.parse()
            .map_err(|_| D::Error::custom(format!("\"{s}\" is not valid; expected {what}")))
    }

    pub fn ip_addr<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
        parsed(d, IP)
    }

    pub fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        parsed(d, SOCKET)
    }

    pub fn opt_socket_addr<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        parsed(d, SOCKET).map(Some)
    }

    pub fn opt_ip_net<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ipnet::IpNet>, D::Error> {
        parsed(d, NET).map(Some)
    }

    pub fn socket_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
        let list = Vec::<String>::deserialize(d).map_err(|_| {
            D::Error::custom(format!("expected a list of addresses, each {SOCKET}"))
        })?;
        list.iter()
            .map(|s| {
                s.parse().map_err(|_| {
                    D::Error::custom(format!("\"{s}\" is not valid; expected {SOCKET}"))
                })
            })
            .collect()
    }
}
