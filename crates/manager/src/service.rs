//! A virtual service at run time: its backends' health, administrative state and active flows,
//! which of them may take new flows, and its scheduler.

use core::net::IpAddr;

use tether_wire::AffinityKey;

use tether_proto::{ConsistentHash, HashBackend};

use crate::config::{AdminState, Decisions, ForwardingMode, ServiceConfig};
use crate::prefix::Prefix;
use crate::scheduler::{BackendSpec, Scheduler};

/// One service and its backends.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) config: ServiceConfig,
    pub(crate) domain: Prefix,
    /// Health per backend, as last reported by the checker (up until told otherwise).
    pub(crate) healthy: Vec<bool>,
    /// Administrative state per backend.
    pub(crate) admin: Vec<AdminState>,
    /// Open flows per backend (stored, not closing).
    pub(crate) active: Vec<u64>,
    eligible: Vec<bool>,
    scheduler: Scheduler,
}

impl Service {
    /// The run-time state of a validated service.
    pub(crate) fn new(config: ServiceConfig) -> Self {
        let specs: Vec<_> = config
            .backends
            .iter()
            .map(|b| BackendSpec {
                name: &b.name,
                weight: b.weight,
            })
            .collect();
        let scheduler = Scheduler::new(config.scheduler, &specs);
        let n = config.backends.len();
        let mut service = Self {
            domain: config.domain(),
            healthy: vec![true; n],
            admin: config.backends.iter().map(|b| b.state).collect(),
            active: vec![0; n],
            eligible: vec![true; n],
            scheduler,
            config,
        };
        service.update_eligibility();
        service
    }

    /// Index of the backend named `name`.
    pub(crate) fn backend_index(&self, name: &str) -> Option<usize> {
        self.config.backends.iter().position(|b| b.name == name)
    }

    /// Whether `key` is a client-to-VIP flow of this service.
    pub(crate) fn is_forward(&self, key: &AffinityKey) -> bool {
        key.protocol == self.config.protocol.number()
            && key.dst == self.config.vip
            && key.dst_port == self.config.port
            && self.domain.contains(key.src)
    }

    /// Index of the backend at `addr:port`.
    pub(crate) fn backend_at(&self, addr: IpAddr, port: u16) -> Option<usize> {
        self.config
            .backends
            .iter()
            .position(|b| b.addr == addr && b.port == port)
    }

    /// Whether `key` is a backend-to-client reply of this service (NAT mode only).
    pub(crate) fn is_return(&self, key: &AffinityKey) -> bool {
        self.config.mode == ForwardingMode::Nat
            && key.protocol == self.config.protocol.number()
            && self.domain.contains(key.dst)
            && self.backend_at(key.src, key.src_port).is_some()
    }

    /// The key of `backend`'s replies to the client of `forward` after NAT, in NAT mode.
    pub(crate) fn return_key(&self, forward: &AffinityKey, backend: usize) -> Option<AffinityKey> {
        let b = &self.config.backends[backend];
        (self.config.mode == ForwardingMode::Nat).then_some(AffinityKey {
            protocol: forward.protocol,
            src: b.addr,
            src_port: b.port,
            dst: forward.src,
            dst_port: forward.src_port,
        })
    }

    /// Picks the backend for a new flow, or `None` when no backend may take one.
    pub(crate) fn pick(&mut self, key: &AffinityKey) -> Option<usize> {
        self.scheduler.pick(key, &self.active)
    }

    /// Recomputes which backends may take new flows (enabled and healthy), and tells the
    /// scheduler only when that set changed, so Maglev rebuilds only then; returns whether it
    /// changed.
    pub(crate) fn update_eligibility(&mut self) -> bool {
        let eligible: Vec<bool> = self
            .admin
            .iter()
            .zip(&self.healthy)
            .map(|(&admin, &up)| admin == AdminState::Enabled && up)
            .collect();
        if eligible == self.eligible {
            return false;
        }
        self.scheduler.set_eligible(&eligible);
        self.eligible = eligible;
        true
    }

    /// Where the table places flow `key`, without counting it as a new flow (Maglev only).
    pub(crate) fn placement(&self, key: &AffinityKey) -> Option<usize> {
        self.scheduler.maglev()?.pick(key)
    }

    /// Whether agents place this service's new flows.
    pub(crate) fn local(&self) -> bool {
        self.config.decisions == Decisions::Local
    }

    /// The consistent-hash action of the service's forward wildcard with local decisions: the
    /// scheduler's Maglev table as every backend's permutation, weight and eligibility.
    pub(crate) fn consistent_hash(&self, fixed_ttl: u32) -> Option<ConsistentHash> {
        let maglev = self.scheduler.maglev().filter(|_| self.local())?;
        let backends = self
            .config
            .backends
            .iter()
            .zip(maglev.permutations())
            .zip(&self.eligible)
            .map(|((b, &permutation), &eligible)| HashBackend {
                addr: b.addr,
                port: b.port,
                weight: b.weight,
                eligible,
                permutation,
            })
            .collect();
        Some(ConsistentHash {
            dispatch: self.config.mode == ForwardingMode::Dsr,
            fixed_ttl,
            table_size: maglev.size(),
            backends,
        })
    }
}
