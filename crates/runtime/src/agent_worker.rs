//! The forwarding agent on Linux: one thread per worker owning an [`Agent`], its AF_PACKET
//! rings, its service-message socket and its share of the steering rules.
//!
//! CONTRACT (filled in by the runtime packet-path work; the binary codes against it).

use core::net::SocketAddr;

use tether_agent::{AgentConfig, AgentStats};
use tether_proto::CodecCounters;

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
    /// Name of the nftables table this worker owns (family `netdev`).
    pub steering_table: String,
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
}

/// Why the runtime could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Placeholder until the runtime work lands.
    #[error("runtime error: {0}")]
    Io(#[from] std::io::Error),
}

/// A running agent worker.
#[derive(Debug)]
pub struct AgentWorker {
    config: AgentWorkerConfig,
}

impl AgentWorker {
    /// Reconciles stale steering of a crashed run, opens the rings and sockets, and starts the
    /// worker thread.
    pub fn spawn(config: AgentWorkerConfig) -> Result<Self, WorkerError> {
        let _ = &config;
        todo!("runtime packet-path work")
    }

    /// The latest published snapshot.
    pub fn snapshot(&self) -> AgentSnapshot {
        let _ = &self.config;
        todo!("runtime packet-path work")
    }

    /// Withdraws nothing (wildcards belong to managers) but removes this worker's steering rules
    /// and stops the thread.
    pub fn shutdown(self) -> Result<(), WorkerError> {
        todo!("runtime packet-path work")
    }
}
