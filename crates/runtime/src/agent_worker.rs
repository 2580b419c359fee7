//! The forwarding agent on Linux: one thread per worker owning an [`Agent`], its AF_PACKET
//! rings, its service-message socket and its share of the steering rules.
//!
//! ```text
//!  data interfaces ──TPACKET_V2 rings──▶ ┌──────────────┐ ──Forward: MACs rewritten in place──▶ TxSocket
//!  service messages ──UDP (+multicast)─▶ │ worker thread│ ──NotOurs ICMP error──▶ Reinjector (kernel)
//!  stop socket ────────────────────────▶ │  owns Agent  │ ──wildcards changed──▶ Steerer thread (nft)
//!                                        └──────────────┘ ──every 250 ms──▶ AgentSnapshot
//! ```
//!
//! One loop: poll(2) on every descriptor with the agent's next deadline (a ring is readable as
//! soon as one frame is in it), then drain the rings (every ready frame in ring order through
//! [`Agent::handle_frame`], forwarded frames rewritten in their ring slot and copied into a
//! batch that leaves with one sendmmsg(2) per [`TxBatch::MAX`] frames and at the end of the
//! pass), the service sockets, the agent's timers and its outgoing messages and packets.
//! Under load one wakeup finds many frames, so batches form without a timer.
//! Packets whose neighbour is still resolving wait up to [`HOLD_UNRESOLVED`] in a small queue.
//! Errors on the packet path are counted in the snapshot, never fatal.
//!
//! A node may run several workers ([`AgentWorkers`]): each an independent agent with its own
//! service socket, their rings sharing each data interface through `PACKET_FANOUT`.

use core::net::{IpAddr, SocketAddr};
use core::ops::RangeInclusive;
use core::time::Duration;
use std::collections::VecDeque;
use std::io;
use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use socket2::{Domain, InterfaceIndexOrAddress, Socket, Type};
use tether_agent::{Agent, AgentConfig, AgentStats, LabelCounts, Route};
use tether_proto::{CodecCounters, Timestamp};
use tether_wire::packet::IpVersion;

use crate::neigh::Resolver;
use crate::reinject::Reinjector;
use crate::steering::{self, Steerer, SteeringError};
use crate::sys::{PacketSocket, PollSet, RingConfig, SysError, TxBatch, TxSocket};

/// How long a packet waits for its next hop's MAC address before it is dropped.
pub const HOLD_UNRESOLVED: Duration = Duration::from_millis(100);
/// Packets waiting for neighbour resolution at most (all next hops together).
const HOLD_CAPACITY: usize = 256;
/// How often the snapshot is published.
const SNAPSHOT_PERIOD: Duration = Duration::from_millis(250);
/// How often waiting packets are retried.
const RETRY_PERIOD: Duration = Duration::from_millis(5);

/// Everything an agent worker needs.
#[derive(Clone, Debug)]
pub struct AgentWorkerConfig {
    /// The state machine's configuration.
    pub agent: AgentConfig,
    /// Data interfaces whose traffic the agent sees and forwards (by name).
    pub interfaces: Vec<String>,
    /// Where the service-message UDP socket binds (unicast).
    pub listen: SocketAddr,
    /// Multicast group for wildcard announcements, if used, joined on every data interface
    /// (or the interface routing says, when there are none).
    pub multicast_group: Option<SocketAddr>,
    /// Name of the nftables table of this node (family `netdev`).
    pub steering_table: String,
    /// Whether this worker installs and removes the steering table; of several workers of one
    /// node only the first does, since they all hold the same wildcards.
    pub owns_steering: bool,
    /// Consecutive UDP ports, from `listen`'s, of the node's workers' service sockets, which
    /// steering leaves to the kernel.
    pub service_ports: u16,
    /// First `PACKET_FANOUT` group id of the workers of one host, when more than one runs; the
    /// ring on the k-th data interface joins group `fanout_group + k`, since a group spans one
    /// interface only.
    pub fanout_group: Option<u16>,
    /// Size of each receive ring (frame slots and their size).
    pub ring: RingConfig,
}

impl AgentWorkerConfig {
    /// A configuration with one worker's defaults: no multicast, no fanout, table `tether`
    /// owned by this worker.
    pub fn new(agent: AgentConfig, interfaces: Vec<String>, listen: SocketAddr) -> Self {
        Self {
            agent,
            interfaces,
            listen,
            multicast_group: None,
            steering_table: "tether".to_owned(),
            owns_steering: true,
            service_ports: 1,
            fanout_group: None,
            ring: RingConfig::default(),
        }
    }
}

/// A snapshot of a running worker, published a few times a second (never per packet).
#[derive(Clone, Debug, Default)]
pub struct AgentSnapshot {
    /// The state machine's counters.
    pub stats: AgentStats,
    /// Service-message codec counters (accepted, rejected by reason).
    pub codec: CodecCounters,
    /// Fixed affinities held.
    pub fixed_affinities: usize,
    /// Wildcard affinities held.
    pub wildcard_affinities: usize,
    /// Frames received on the rings.
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped by the runtime (no route, unresolved neighbour, send failure), by reason.
    pub runtime_drops: Vec<(&'static str, u64)>,
    /// nftables rules installed now.
    pub steering_rules: usize,
    /// Steering updates `nft` refused (each logged with nft's message).
    pub steering_failures: u64,
    /// ICMP errors given back to the kernel because they were not the agent's.
    pub reinjected: u64,
}

/// Why the runtime could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// A configured data interface does not exist in this network namespace.
    #[error("data interface {0:?} does not exist; check the agent's `interfaces` and `ip link`")]
    NoSuchInterface(String),
    /// A data interface has no Ethernet address, so frames cannot be sent from it.
    #[error("data interface {0:?} has no Ethernet address; use an Ethernet-like interface")]
    NotEthernet(String),
    /// The packet ring of a data interface could not be set up.
    #[error("packet ring on {interface:?}: {source}; run as root (CAP_NET_RAW) on Linux 4.20+")]
    Ring {
        /// The interface.
        interface: String,
        /// The failed system call.
        #[source]
        source: SysError,
    },
    /// A socket the worker needs could not be opened.
    #[error("{what}: {source}; run as root (CAP_NET_RAW, CAP_NET_ADMIN)")]
    Socket {
        /// Which socket.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The service-message socket could not bind.
    #[error(
        "cannot bind the service-message socket to {addr}: {source}; pick a free local address"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The multicast group could not be joined.
    #[error(
        "cannot join multicast group {group} on {interface:?}: {source}; check the group address and the interface"
    )]
    Multicast {
        /// The group.
        group: SocketAddr,
        /// The interface.
        interface: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Steering rules could not be reconciled or removed.
    #[error(transparent)]
    Steering(#[from] SteeringError),
    /// The worker thread could not start, or died.
    #[error("agent worker thread {0}")]
    Thread(&'static str),
}

/// A running agent worker.
#[derive(Debug)]
pub struct AgentWorker {
    config: AgentWorkerConfig,
    snapshot: Arc<Mutex<AgentSnapshot>>,
    stop: UnixDatagram,
    thread: JoinHandle<Result<(), SteeringError>>,
}

impl AgentWorker {
    /// Reconciles stale steering of a crashed run, opens the rings and sockets, and starts the
    /// worker thread.
    pub fn spawn(config: AgentWorkerConfig) -> Result<Self, WorkerError> {
        let socket_err = |what| move |source| WorkerError::Socket { what, source };
        let mut resolver = Resolver::new().map_err(socket_err("netlink socket"))?;
        let mut rings = Vec::new();
        let mut indexes = Vec::new();
        for (k, name) in config.interfaces.iter().enumerate() {
            let link = resolver
                .link_by_name(name)
                .map_err(socket_err("netlink interface lookup"))?
                .ok_or_else(|| WorkerError::NoSuchInterface(name.clone()))?;
            if link.mac.is_none() {
                return Err(WorkerError::NotEthernet(name.clone()));
            }
            let fanout = config.fanout_group.map(|g| g.wrapping_add(k as u16));
            let ring =
                PacketSocket::open(link.index, name, config.ring, fanout).map_err(|source| {
                    WorkerError::Ring {
                        interface: name.clone(),
                        source,
                    }
                })?;
            rings.push(ring);
            indexes.push((name.clone(), link.index));
        }
        let sockets = ServiceSockets::open(&config, &indexes)?;
        let tx = TxSocket::open().map_err(|source| WorkerError::Ring {
            interface: "(transmit)".to_owned(),
            source,
        })?;
        let reinject = Reinjector::open().map_err(socket_err("raw IP socket for re-injection"))?;
        let steerer = if config.owns_steering {
            Some(Steerer::start(&config.steering_table)?)
        } else {
            None
        };
        let (stop, stop_rx) = UnixDatagram::pair().map_err(socket_err("stop socket pair"))?;
        let snapshot = Arc::new(Mutex::new(AgentSnapshot::default()));
        let clock = Clock::start();
        let path = PacketPath {
            agent: Agent::new(config.agent.clone(), clock.now()),
            resolver,
            tx,
            reinject,
            icmp_steered: (false, false),
            host_addresses: Vec::new(),
            local: Vec::new(),
            waiting: VecDeque::new(),
            scratch: Vec::new(),
            batch: TxBatch::new(),
            counters: Counters::default(),
        };
        let worker = Worker {
            rings,
            sockets,
            path,
            steerer,
            stop: stop_rx,
            clock,
            interfaces: config.interfaces.clone(),
            control_ports: config.listen.port()
                ..=config
                    .listen
                    .port()
                    .saturating_add(config.service_ports.saturating_sub(1)),
            published: Arc::clone(&snapshot),
        };
        let thread = std::thread::Builder::new()
            .name(format!("agent-{}", config.listen.port()))
            .spawn(move || worker.run())
            .map_err(|_| WorkerError::Thread("could not be started"))?;
        Ok(Self {
            config,
            snapshot,
            stop,
            thread,
        })
    }

    /// The latest published snapshot.
    pub fn snapshot(&self) -> AgentSnapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The configuration the worker runs with.
    pub fn config(&self) -> &AgentWorkerConfig {
        &self.config
    }

    /// Withdraws nothing (wildcards belong to managers) but removes the steering rules, if this
    /// worker owns them, and stops the thread.
    pub fn shutdown(self) -> Result<(), WorkerError> {
        // Dropping our end wakes the thread even if the send fails.
        let _ = self.stop.send(&[1]);
        drop(self.stop);
        let Ok(result) = self.thread.join() else {
            if self.config.owns_steering {
                steering::remove(&self.config.steering_table)?;
            }
            return Err(WorkerError::Thread(
                "panicked; its steering table was removed",
            ));
        };
        result.map_err(WorkerError::from)
    }
}

/// The runtime's clock: nanoseconds since the worker started.
#[derive(Debug)]
#[expect(clippy::disallowed_types, reason = "the runtime owns the clock")]
struct Clock(std::time::Instant);

impl Clock {
    #[expect(clippy::disallowed_types, reason = "the runtime owns the clock")]
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_duration(self.0.elapsed())
    }
}

/// The unicast service socket and, when configured, the multicast one.
#[derive(Debug)]
struct ServiceSockets {
    unicast: UdpSocket,
    multicast: Option<UdpSocket>,
}

impl ServiceSockets {
    fn open(config: &AgentWorkerConfig, interfaces: &[(String, u32)]) -> Result<Self, WorkerError> {
        let unicast = udp(config.listen).map_err(|source| WorkerError::Bind {
            addr: config.listen,
            source,
        })?;
        let Some(group) = config.multicast_group else {
            return Ok(Self {
                unicast: unicast.into(),
                multicast: None,
            });
        };
        // The unicast socket must not get a second copy of every announcement.
        let _ = match group {
            SocketAddr::V4(_) => unicast.set_multicast_all_v4(false),
            SocketAddr::V6(_) => unicast.set_multicast_all_v6(false),
        };
        let multicast = udp(group).map_err(|source| WorkerError::Bind {
            addr: group,
            source,
        })?;
        let default = [("(routing's choice)".to_owned(), 0)];
        let joined = if interfaces.is_empty() {
            &default[..]
        } else {
            interfaces
        };
        for (name, index) in joined {
            let result = match group.ip() {
                IpAddr::V4(g) => multicast
                    .join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(*index))
                    .and_then(|()| multicast.set_multicast_loop_v4(true)),
                IpAddr::V6(g) => multicast
                    .join_multicast_v6(&g, *index)
                    .and_then(|()| multicast.set_multicast_loop_v6(true)),
            };
            result.map_err(|source| WorkerError::Multicast {
                group,
                interface: name.clone(),
                source,
            })?;
        }
        Ok(Self {
            unicast: unicast.into(),
            multicast: Some(multicast.into()),
        })
    }
}

/// A non-blocking UDP socket bound to `addr`, sharing the port with other workers.
fn udp(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Runtime counters of the packet path.
#[derive(Debug, Default)]
struct Counters {
    rx_frames: u64,
    rx_bytes: u64,
    tx_frames: u64,
    tx_bytes: u64,
    drops: LabelCounts,
    /// Frames the kernel dropped because a ring was full.
    ring_full: u64,
    reinjected: u64,
    /// Frames addressed to the host itself, left to its kernel.
    local: u64,
}

/// A packet waiting for its next hop's MAC address.
#[derive(Debug)]
struct Waiting {
    deadline: Timestamp,
    route: Route,
    /// The complete frame; its Ethernet addresses are written when it leaves.
    frame: Vec<u8>,
}

/// What the frame handler needs, apart from the rings it reads.
#[derive(Debug)]
struct PacketPath {
    agent: Agent,
    resolver: Resolver,
    tx: TxSocket,
    reinject: Reinjector,
    /// Whether IPv4 and IPv6 ICMP errors are steered now (and must be re-injected if not ours).
    icmp_steered: (bool, bool),
    /// The host's own addresses, as the kernel lists them.
    host_addresses: Vec<IpAddr>,
    /// The host addresses whose traffic is the kernel's whatever wildcards say (a return
    /// wildcard covers the host's own health checks of the backends, for one): all but the
    /// VIPs that wildcards name exactly (`steering::kernel_owned`).
    local: Vec<IpAddr>,
    waiting: VecDeque<Waiting>,
    scratch: Vec<u8>,
    /// Frames forwarded since the last send, sent together.
    batch: TxBatch,
    counters: Counters,
}

mod pool;
mod run;

pub use pool::AgentWorkers;

/// The state of the worker thread.
#[derive(Debug)]
struct Worker {
    rings: Vec<PacketSocket>,
    sockets: ServiceSockets,
    path: PacketPath,
    /// The steering table's owner, in one worker per node.
    steerer: Option<Steerer>,
    stop: UnixDatagram,
    clock: Clock,
    interfaces: Vec<String>,
    control_ports: RangeInclusive<u16>,
    published: Arc<Mutex<AgentSnapshot>>,
}

impl Worker {
    /// The descriptors polled, in a fixed order: stop, unicast, multicast, rings.
    fn poll_set(&self) -> PollSet {
        PollSet::new(
            [self.stop.as_fd(), self.sockets.unicast.as_fd()]
                .into_iter()
                .chain(self.sockets.multicast.as_ref().map(AsFd::as_fd))
                .chain(self.rings.iter().map(AsFd::as_fd)),
        )
    }
}

/// Whether an ICMP error of `version` is steered under `icmp_steered`.
fn steered(icmp_steered: (bool, bool), version: IpVersion) -> bool {
    match version {
        IpVersion::V4 => icmp_steered.0,
        IpVersion::V6 => icmp_steered.1,
    }
}

/// The counter label of a failed transmit.
fn send_error_label(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EMSGSIZE) => "mtu_exceeded",
        Some(libc::ENOBUFS | libc::EAGAIN) => "tx_queue_full",
        _ => "send_failed",
    }
}
