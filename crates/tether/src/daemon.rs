//! `tether run`: starts the configured roles, serves the admin API, and shuts down cleanly on
//! SIGTERM or SIGINT.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;

use anyhow::Context;
use tether_manager::AdminState;
use tether_runtime::agent_worker::AgentWorkers;
use tether_runtime::manager_driver::ManagerDriver;
use tokio::signal::unix::{SignalKind, signal};

use crate::admin::{self, ControlFailure, Node};
use crate::config::Config;
use crate::report::{AgentReport, ManagerReport, StatusReport};

/// The running roles of one node.
#[derive(Debug)]
struct Daemon {
    node: String,
    roles: Vec<String>,
    manager: Option<(ManagerDriver, u16)>,
    agent: Option<AgentWorkers>,
}

impl Node for Daemon {
    fn status(&self) -> StatusReport {
        StatusReport {
            node: self.node.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            roles: self.roles.clone(),
            manager: self.manager.as_ref().map(|(driver, backup)| {
                ManagerReport::new(&driver.status(), *backup, driver.now())
            }),
            agent: self.agent.as_ref().map(|a| {
                a.snapshots()
                    .iter()
                    .map(AgentReport::from)
                    .fold(AgentReport::default(), AgentReport::merge)
            }),
        }
    }

    async fn set_backend_state(
        &self,
        service: &str,
        backend: &str,
        state: AdminState,
    ) -> Result<(), ControlFailure> {
        let (driver, _) = self.manager.as_ref().ok_or(ControlFailure::NoManager)?;
        driver
            .set_backend_state(service, backend, state)
            .await
            .map_err(ControlFailure::Unknown)
    }
}

impl Daemon {
    /// Stops the roles: the manager first, so its wildcards are withdrawn while the agent still
    /// forwards, then the agent, which removes its steering rules.
    async fn shutdown(self) -> anyhow::Result<()> {
        let mut result = Ok(());
        if let Some((driver, _)) = self.manager {
            result = driver
                .shutdown()
                .await
                .context("stopping the manager (its wildcards may stay until their TTL)");
        }
        if let Some(agent) = self.agent {
            let stopped = agent.shutdown().context(
                "stopping the agent; run `tether run` again with the same config to reconcile \
                 stale steering rules",
            );
            result = result.and(stopped);
        }
        result
    }
}

/// Sequence numbers start at the wall clock in nanoseconds, so they continue across restarts
/// and peers do not take a new run for a replay.
#[expect(
    clippy::disallowed_types,
    reason = "the binary owns the clock; only the wall clock survives a restart"
)]
fn wall_clock_sequence() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs the roles of `config` until SIGTERM or SIGINT.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.admin)
        .await
        .with_context(|| {
            format!(
                "admin.listen {}: cannot listen there; pick a free port or stop the other \
                 process using it",
                config.admin
            )
        })?;
    let mut terminate = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let initial_sequence = wall_clock_sequence();
    let roles = config.roles().iter().map(|r| (*r).to_owned()).collect();
    let agent = match config.agent.take() {
        Some((mut worker, count)) => {
            worker.agent.initial_sequence = initial_sequence;
            worker.agent.hash_seed = RandomState::new().hash_one(initial_sequence);
            let interfaces = worker.interfaces.join(", ");
            let agent = AgentWorkers::spawn(&worker, count).with_context(|| {
                format!(
                    "starting the agent on {interfaces}; it needs root (CAP_NET_ADMIN and \
                     CAP_NET_RAW) and existing interfaces"
                )
            })?;
            tracing::info!(%interfaces, workers = count, "agent started");
            Some(agent)
        }
        None => None,
    };
    let manager = match config.manager.take() {
        Some(mut driver) => {
            // Apart from every agent worker's (which take the next numbers up): each signs as a
            // sender of its own (docs/protocol.md, "Sending").
            driver.manager.initial_sequence =
                initial_sequence.wrapping_sub(u64::from(AgentWorkers::MAX) + 1);
            let backup = driver.manager.backup_precedence;
            let listen = driver.manager.addr;
            let services = driver.manager.services.len();
            match ManagerDriver::spawn(driver).await {
                Ok(d) => {
                    tracing::info!(%listen, services, "manager started");
                    Some((d, backup))
                }
                Err(e) => {
                    if let Some(agent) = agent
                        && let Err(stop) = agent.shutdown()
                    {
                        tracing::error!(error = %stop, "stopping the agent after the manager failed");
                    }
                    return Err(e).with_context(|| {
                        format!("starting the manager on {listen}; is the address local and free?")
                    });
                }
            }
        }
        None => None,
    };
    let daemon = Arc::new(Daemon {
        node: config.node,
        roles,
        manager,
        agent,
    });
    if !config.admin.ip().is_loopback() {
        tracing::warn!(
            admin = %config.admin,
            "the admin API has no authentication and listens beyond loopback; anyone who \
             reaches it can drain backends"
        );
    }
    tracing::info!(admin = %config.admin, "admin API listening");
    let served = axum::serve(listener, admin::router(Arc::clone(&daemon)))
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
            }
        })
        .await
        .context("serving the admin API");
    let daemon = Arc::try_unwrap(daemon)
        .map_err(|_| anyhow::anyhow!("the admin API still holds the daemon after it stopped"))?;
    let stopped = daemon.shutdown().await;
    served.and(stopped)?;
    tracing::info!("stopped cleanly");
    Ok(())
}
