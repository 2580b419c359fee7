//! Several agent workers on one node, sharing its data interfaces through `PACKET_FANOUT`.

use super::{AgentSnapshot, AgentWorker, AgentWorkerConfig, WorkerError};

/// The agent workers of one node: worker `i` listens on `listen`'s port + `i`, all rings of a
/// data interface share one fanout group (hashed by flow, so a flow stays with one worker), and
/// worker 0 alone owns the steering table.
#[derive(Debug)]
pub struct AgentWorkers {
    workers: Vec<AgentWorker>,
}

impl AgentWorkers {
    /// Workers one node may run at most.
    pub const MAX: u16 = 16;

    /// The configurations of `count` workers derived from `config` (the first worker's).
    pub fn configs(config: &AgentWorkerConfig, count: u16) -> Vec<AgentWorkerConfig> {
        let count = count.clamp(1, Self::MAX);
        // Fanout group ids are per network namespace; the process id keeps two daemons of one
        // namespace apart.
        let fanout = config
            .fanout_group
            .or_else(|| (count > 1).then(|| std::process::id() as u16));
        (0..count)
            .map(|i| {
                let mut worker = config.clone();
                worker
                    .listen
                    .set_port(config.listen.port().saturating_add(i));
                worker.owns_steering = i == 0;
                // Each worker signs as its own sender: receivers keep a replay window per
                // sender id, which is the initial sequence (docs/protocol.md).
                worker.agent.initial_sequence =
                    config.agent.initial_sequence.wrapping_add(u64::from(i));
                worker.service_ports = count;
                worker.fanout_group = fanout;
                worker
            })
            .collect()
    }

    /// Starts `count` workers (1 to [`AgentWorkers::MAX`]); if one fails, those started are
    /// stopped again.
    pub fn spawn(config: &AgentWorkerConfig, count: u16) -> Result<Self, WorkerError> {
        let mut workers = Vec::new();
        for worker in Self::configs(config, count) {
            match AgentWorker::spawn(worker) {
                Ok(w) => workers.push(w),
                Err(e) => {
                    let _ = Self { workers }.shutdown();
                    return Err(e);
                }
            }
        }
        Ok(Self { workers })
    }

    /// The running workers, the steering owner first.
    pub fn workers(&self) -> &[AgentWorker] {
        &self.workers
    }

    /// Each worker's latest snapshot, in worker order.
    pub fn snapshots(&self) -> Vec<AgentSnapshot> {
        self.workers.iter().map(AgentWorker::snapshot).collect()
    }

    /// Stops every worker, the steering owner last so the kernel gets the traffic back only
    /// when no worker forwards any more; reports the first failure.
    pub fn shutdown(self) -> Result<(), WorkerError> {
        let mut result = Ok(());
        for worker in self.workers.into_iter().rev() {
            let stopped = worker.shutdown();
            if result.is_ok() {
                result = stopped;
            }
        }
        result
    }
}
