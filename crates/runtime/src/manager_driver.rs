//! The service manager on Linux: a tokio task owning a [`Manager`], its UDP socket, its timers
//! and the health checkers of every backend.
//!
//! ```text
//!  UDP socket ─────────► handle_datagram ────┐
//!  poll_timeout deadline ─► handle_timeout ───┤
//!  health checkers ─► set_backend_health ─────┼─► Manager ─► poll_transmit ─► send_to
//!  commands ─► set_backend_state, shutdown ───┘       └─► status() ─► watch ─► handle
//! ```
//!
//! The manager state machine reads no clock; the task reads it once per event (`Clock`).

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::io;

use socket2::{Domain, Protocol, Socket, Type};
use tether_manager::{
    AdminState, ConfigError, ControlError, Manager, ManagerConfig, ManagerStatus,
};
use tether_proto::Timestamp;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::health::{self, HealthEvent, Target};

/// What a health check does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthCheckKind {
    /// A TCP connection to the backend's address and port is accepted.
    Tcp,
    /// An HTTP/1.1 GET of `path` answers with a status in `expect_class` (2 means 2xx).
    Http {
        /// Request path.
        path: String,
        /// Expected status class, 1 to 5.
        expect_class: u16,
    },
}

/// A health check with its timing and flap damping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// What to check.
    pub kind: HealthCheckKind,
    /// Time between checks.
    pub interval: Duration,
    /// Time a check may take.
    pub timeout: Duration,
    /// Consecutive successes that bring a down backend up.
    pub rise: u32,
    /// Consecutive failures that take an up backend down.
    pub fall: u32,
}

/// Everything a manager driver needs.
#[derive(Clone, Debug)]
pub struct ManagerDriverConfig {
    /// The state machine's configuration; its `addr` is where the UDP socket binds.
    pub manager: ManagerConfig,
    /// Health check per service name; services without one are always healthy.
    pub health: Vec<(String, HealthCheck)>,
}

/// Why the manager driver could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The manager configuration is invalid; the message names the field and the fix.
    #[error("manager configuration: {0}")]
    Config(#[from] ConfigError),
    /// A health check is unusable or names no configured service.
    #[error("health check of service \"{service}\": {problem}")]
    HealthCheck {
        /// The service the check is configured for.
        service: String,
        /// What is wrong and the fix.
        problem: String,
    },
    /// An announce address is of the other address family than the manager's socket.
    #[error(
        "announce address {announce} and the manager address {addr} are of different address \
         families; announce to agents of the family the manager binds"
    )]
    AnnounceFamily {
        /// The announce address.
        announce: SocketAddr,
        /// The manager's address.
        addr: SocketAddr,
    },
    /// The UDP socket could not be created, configured or bound.
    #[error(
        "cannot {action} the manager's UDP socket at {addr}: {source}; check that the address is \
         assigned to this host and that no other process holds the port"
    )]
    Socket {
        /// What failed ("bind", "set SO_REUSEADDR on", ...).
        action: &'static str,
        /// The manager's address.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
    /// Sending a wildcard withdrawal failed at shutdown.
    #[error(
        "could not send the wildcard withdrawal to {dest}: {source}; agents there keep this \
         manager's wildcards until their TTL runs out"
    )]
    Withdraw {
        /// Where the withdrawal was going.
        dest: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
    /// The manager task ended without a shutdown (a panic, or its runtime stopped).
    #[error("the manager task ended unexpectedly ({0}); see the log for its last words")]
    TaskEnded(String),
}

/// A running manager.
#[derive(Debug)]
pub struct ManagerDriver {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<ManagerStatus>,
    local_addr: SocketAddr,
    clock: Clock,
    task: JoinHandle<()>,
}

/// Why a handle call found no task: the task only ends on shutdown, which takes the handle, so
/// it panicked, and that panic is what to read.
const TASK_GONE: &str = "the manager task ended unexpectedly; see its panic in the log";

impl ManagerDriver {
    /// Binds the socket, starts the manager task and its health checkers (inside the current
    /// tokio runtime).
    pub async fn spawn(config: ManagerDriverConfig) -> Result<Self, DriverError> {
        let ManagerDriverConfig {
            manager: config,
            health,
        } = config;
        let clock = Clock::start();
        let mut manager = Manager::new(config.clone(), clock.now())?;
        let addr = config.addr;
        if let Some(&announce) = config
            .announce
            .iter()
            .find(|a| a.is_ipv4() != addr.is_ipv4())
        {
            return Err(DriverError::AnnounceFamily { announce, addr });
        }
        let checks = health_targets(&config, &health)?;
        let socket = bind(addr, &config.announce)?;
        let local_addr = socket.local_addr().map_err(|source| DriverError::Socket {
            action: "read the address of",
            addr,
            source,
        })?;
        // The first announcements go out before spawn returns, so agents started next find the
        // wildcards on their way; a failure is logged and the next refresh tries again.
        send_all(&socket, &mut manager).await;
        let (status_tx, status) = watch::channel(manager.status());
        let (health_tx, health_rx) = mpsc::channel(64);
        let mut checkers = JoinSet::new();
        for (target, check) in checks {
            checkers.spawn(health::run_checker(target, check, health_tx.clone()));
        }
        let (commands, commands_rx) = mpsc::channel(16);
        let task = Task {
            manager,
            socket,
            clock,
            status: status_tx,
            commands: commands_rx,
            health: health_rx,
            checkers,
        };
        tracing::info!(%local_addr, announce = ?config.announce, "manager started");
        Ok(Self {
            commands,
            status,
            local_addr,
            clock,
            task: tokio::spawn(task.run()),
        })
    }

    /// The latest status (services, backends with health and flows, counters).
    pub fn status(&self) -> ManagerStatus {
        self.status.borrow().clone()
    }

    /// The address the manager's socket is bound to (the configured one, with its port if 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The manager's current time, to set against the timestamps in [`ManagerDriver::status`].
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Changes a backend's administrative state (drain, enable, disable).
    ///
    /// # Panics
    ///
    /// If the manager task has panicked.
    pub async fn set_backend_state(
        &self,
        service: &str,
        backend: &str,
        state: AdminState,
    ) -> Result<(), ControlError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::SetBackendState {
            service: service.to_owned(),
            backend: backend.to_owned(),
            state,
            reply,
        };
        self.commands.send(command).await.expect(TASK_GONE);
        answer.await.expect(TASK_GONE)
    }

    /// Withdraws the wildcards (TTL 0), sends them, and stops the task and health checkers.
    pub async fn shutdown(self) -> Result<(), DriverError> {
        let (reply, answer) = oneshot::channel();
        let answered = match self.commands.send(Command::Shutdown { reply }).await {
            Ok(()) => answer.await.ok(),
            Err(_) => None,
        };
        match (answered, self.task.await) {
            (Some(result), Ok(())) => result,
            (_, Err(error)) => Err(DriverError::TaskEnded(error.to_string())),
            (None, Ok(())) => Err(DriverError::TaskEnded(
                "it stopped without answering the shutdown".into(),
            )),
        }
    }
}

/// The backends to check, each with its service's check, after checking the checks.
fn health_targets(
    config: &ManagerConfig,
    health: &[(String, HealthCheck)],
) -> Result<Vec<(Target, HealthCheck)>, DriverError> {
    let mut targets = Vec::new();
    for (i, (service, check)) in health.iter().enumerate() {
        let error = |problem: String| DriverError::HealthCheck {
            service: service.clone(),
            problem,
        };
        if health[..i].iter().any(|(s, _)| s == service) {
            return Err(error(
                "is configured twice; keep one check per service".into(),
            ));
        }
        let Some(svc) = config.services.iter().find(|s| &s.name == service) else {
            return Err(error(
                "no service of that name is configured; fix the name or add the service".into(),
            ));
        };
        if let Some(problem) = health::problem(check) {
            return Err(error(problem));
        }
        targets.extend(svc.backends.iter().map(|b| {
            let target = Target {
                service: service.clone(),
                backend: b.name.clone(),
                addr: SocketAddr::new(b.addr, b.port),
            };
            (target, check.clone())
        }));
    }
    Ok(targets)
}

/// The manager's UDP socket, bound at `addr`, ready to announce to `announce`.
fn bind(addr: SocketAddr, announce: &[SocketAddr]) -> Result<UdpSocket, DriverError> {
    let fail = |action| {
        move |source| DriverError::Socket {
            action,
            addr,
            source,
        }
    };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(fail("create"))?;
    // A restarted manager binds again at once, without waiting for the old socket to go.
    socket
        .set_reuse_address(true)
        .map_err(fail("set SO_REUSEADDR on"))?;
    if announce.iter().any(|a| a.ip().is_multicast()) {
        // TTL 1 keeps announcements on the agents' link; loopback lets an agent on this host
        // hear its own node's manager.
        match addr.ip() {
            IpAddr::V4(ip) => {
                socket
                    .set_multicast_ttl_v4(1)
                    .map_err(fail("set IP_MULTICAST_TTL on"))?;
                socket
                    .set_multicast_loop_v4(true)
                    .map_err(fail("set IP_MULTICAST_LOOP on"))?;
                // Without this the group is reached by the default route's interface, which
                // need not be the one the manager's address (and its agents) are on.
                if !ip.is_unspecified() {
                    socket
                        .set_multicast_if_v4(&ip)
                        .map_err(fail("set IP_MULTICAST_IF on"))?;
                }
            }
            IpAddr::V6(_) => {
                socket
                    .set_multicast_hops_v6(1)
                    .map_err(fail("set IPV6_MULTICAST_HOPS on"))?;
                socket
                    .set_multicast_loop_v6(true)
                    .map_err(fail("set IPV6_MULTICAST_LOOP on"))?;
            }
        }
    }
    socket
        .set_nonblocking(true)
        .map_err(fail("make non-blocking"))?;
    socket.bind(&addr.into()).map_err(fail("bind"))?;
    UdpSocket::from_std(socket.into()).map_err(fail("register with tokio"))
}

/// Sends everything the manager has queued; returns the first failure (each one is logged).
async fn send_all(socket: &UdpSocket, manager: &mut Manager) -> Option<(SocketAddr, io::Error)> {
    let mut first = None;
    while let Some(transmit) = manager.poll_transmit() {
        if let Err(error) = socket.send_to(&transmit.payload, transmit.dest).await {
            tracing::warn!(dest = %transmit.dest, %error, "sending a service message");
            first.get_or_insert((transmit.dest, error));
        }
    }
    first
}

/// A request from the handle to the task.
#[derive(Debug)]
enum Command {
    SetBackendState {
        service: String,
        backend: String,
        state: AdminState,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    Shutdown {
        reply: oneshot::Sender<Result<(), DriverError>>,
    },
}

/// What woke the task.
enum Event {
    Datagram(io::Result<(usize, SocketAddr)>),
    Timeout,
    Health(HealthEvent),
    Command(Option<Command>),
}

/// The manager task's state.
struct Task {
    manager: Manager,
    socket: UdpSocket,
    clock: Clock,
    status: watch::Sender<ManagerStatus>,
    commands: mpsc::Receiver<Command>,
    health: mpsc::Receiver<HealthEvent>,
    checkers: JoinSet<()>,
}

impl Task {
    async fn run(mut self) {
        // The largest UDP payload, so no datagram is cut short.
        let mut buf = vec![0; 65_535];
        loop {
            let deadline = self.manager.poll_timeout().map(|t| self.clock.instant(t));
            let event = tokio::select! {
                received = self.socket.recv_from(&mut buf) => Event::Datagram(received),
                () = sleep_until(deadline) => Event::Timeout,
                Some(event) = self.health.recv() => Event::Health(event),
                command = self.commands.recv() => Event::Command(command),
            };
            let now = self.clock.now();
            match event {
                Event::Datagram(Ok((len, from))) => {
                    self.manager.handle_datagram(now, from, &buf[..len]);
                }
                Event::Datagram(Err(error)) => {
                    tracing::warn!(%error, "receiving on the manager socket");
                }
                Event::Timeout => self.manager.handle_timeout(now),
                Event::Health(event) => self.on_health(now, &event),
                Event::Command(Some(Command::SetBackendState {
                    service,
                    backend,
                    state,
                    reply,
                })) => {
                    let result = self
                        .manager
                        .set_backend_state(now, &service, &backend, state);
                    if result.is_ok() {
                        tracing::info!(%service, %backend, ?state, "backend state set");
                    }
                    self.publish().await;
                    // The caller may have stopped waiting; the state is set all the same.
                    let _ = reply.send(result);
                    continue;
                }
                Event::Command(Some(Command::Shutdown { reply })) => {
                    let _ = reply.send(self.shutdown(now).await);
                    return;
                }
                Event::Command(None) => {
                    // The handle is gone, so no one could stop the manager later: withdraw now
                    // rather than leave agents with wildcards of a manager nobody controls.
                    tracing::warn!("manager handle dropped without shutdown; shutting down");
                    let _ = self.shutdown(now).await;
                    return;
                }
            }
            self.publish().await;
        }
    }

    fn on_health(&mut self, now: Timestamp, event: &HealthEvent) {
        let result = self
            .manager
            .set_backend_health(now, &event.service, &event.backend, event.up);
        if let Err(error) = result {
            // Checkers are made from the same configuration as the manager.
            tracing::error!(%error, "health event for a backend the manager does not have");
        }
    }

    /// Sends what the last event queued, then shows its effect in the status.
    async fn publish(&mut self) {
        // Failures are logged; wildcards are refreshed and agents ask again for a flow.
        send_all(&self.socket, &mut self.manager).await;
        self.status.send_replace(self.manager.status());
    }

    async fn shutdown(&mut self, now: Timestamp) -> Result<(), DriverError> {
        // Checkers stop first, so no late health event is acted on after the withdrawal.
        self.checkers.shutdown().await;
        self.manager.shutdown(now);
        let failed = send_all(&self.socket, &mut self.manager).await;
        self.status.send_replace(self.manager.status());
        tracing::info!("manager shut down; wildcards withdrawn");
        match failed {
            Some((dest, source)) => Err(DriverError::Withdraw { dest, source }),
            None => Ok(()),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => core::future::pending().await,
    }
}

/// The runtime's clock: the one place that reads the time, as [`Timestamp`]s from the driver's
/// start. Tokio's clock, so that timestamps and timer deadlines are on one time line.
#[derive(Clone, Copy, Debug)]
struct Clock {
    epoch: Instant,
}

impl Clock {
    fn start() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    fn now(self) -> Timestamp {
        Timestamp::from_duration(self.epoch.elapsed())
    }

    fn instant(self, at: Timestamp) -> Instant {
        self.epoch + at.saturating_since(Timestamp::ZERO)
    }
}
