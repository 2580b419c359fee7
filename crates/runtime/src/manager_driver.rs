//! The service manager on Linux: a tokio task owning a [`Manager`], its UDP socket, its timers
//! and the health checkers of every backend.
//!
//! CONTRACT (filled in by the runtime control-path work; the binary codes against it).

use core::time::Duration;

use tether_manager::{AdminState, ControlError, ManagerConfig, ManagerStatus};

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
    /// Placeholder until the runtime work lands.
    #[error("manager driver error: {0}")]
    Io(#[from] std::io::Error),
}

/// A running manager.
#[derive(Debug)]
pub struct ManagerDriver {
    config: ManagerDriverConfig,
}

impl ManagerDriver {
    /// Binds the socket, starts the manager task and its health checkers (inside the current
    /// tokio runtime).
    pub async fn spawn(config: ManagerDriverConfig) -> Result<Self, DriverError> {
        let _ = &config;
        todo!("runtime control-path work")
    }

    /// The latest status (services, backends with health and flows, counters).
    pub fn status(&self) -> ManagerStatus {
        let _ = &self.config;
        todo!("runtime control-path work")
    }

    /// Changes a backend's administrative state (drain, enable, disable).
    pub async fn set_backend_state(
        &self,
        service: &str,
        backend: &str,
        state: AdminState,
    ) -> Result<(), ControlError> {
        let _ = (service, backend, state);
        todo!("runtime control-path work")
    }

    /// Withdraws the wildcards (TTL 0), sends them, and stops the task and health checkers.
    pub async fn shutdown(self) -> Result<(), DriverError> {
        todo!("runtime control-path work")
    }
}
