//! Schedulers: which eligible backend a new flow goes to.
//!
//! A scheduler knows every configured backend by index, with its weight, and is told which of
//! them are eligible (enabled and healthy) whenever that set changes; only then does it do any
//! rebuilding. Picking never allocates.

use core::net::IpAddr;

use tether_wire::AffinityKey;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::config::SchedulerKind;

mod source_hash;
mod wlc;
mod wrr;

use source_hash::SourceHash;
pub use tether_proto::maglev::{BackendSpec, Maglev, flow_hash};
use wlc::LeastConnections;
use wrr::SmoothRoundRobin;

/// Seed of the hash of a client address for source hashing; it must agree between managers
/// (a primary and its backups) on any machine and build.
const SEED_SOURCE: u64 = 0x7465_7468_6572_0002;

/// One service's scheduler.
#[derive(Clone, Debug)]
pub(crate) enum Scheduler {
    Maglev(Maglev),
    RoundRobin(SmoothRoundRobin),
    LeastConnections(LeastConnections),
    SourceHash(SourceHash),
}

impl Scheduler {
    /// A scheduler of `kind` over `backends`, all of them eligible.
    pub(crate) fn new(kind: SchedulerKind, backends: &[BackendSpec<'_>]) -> Self {
        match kind {
            SchedulerKind::Maglev { table_size } => Self::Maglev(Maglev::new(table_size, backends)),
            SchedulerKind::WeightedRoundRobin => Self::RoundRobin(SmoothRoundRobin::new(backends)),
            SchedulerKind::WeightedLeastConnections => {
                Self::LeastConnections(LeastConnections::new(backends))
            }
            SchedulerKind::SourceHash { table_size } => {
                Self::SourceHash(SourceHash::new(table_size, backends))
            }
        }
    }

    /// Takes a new eligible set (one flag per configured backend).
    pub(crate) fn set_eligible(&mut self, eligible: &[bool]) {
        match self {
            Self::Maglev(s) => s.set_eligible(eligible),
            Self::RoundRobin(s) => s.set_eligible(eligible),
            Self::LeastConnections(s) => s.set_eligible(eligible),
            Self::SourceHash(s) => s.set_eligible(eligible),
        }
    }

    /// The Maglev table, for a Maglev scheduler.
    pub(crate) fn maglev(&self) -> Option<&Maglev> {
        match self {
            Self::Maglev(m) => Some(m),
            _ => None,
        }
    }

    /// The backend for a new flow `key`, given each backend's active flows; `None` when no
    /// backend is eligible.
    pub(crate) fn pick(&mut self, key: &AffinityKey, active: &[u64]) -> Option<usize> {
        match self {
            Self::Maglev(s) => s.lookup(flow_hash(key)),
            Self::RoundRobin(s) => s.pick(),
            Self::LeastConnections(s) => s.pick(active),
            Self::SourceHash(s) => s.pick(key.src),
        }
    }
}

/// The seeded hash of a client address.
pub(crate) fn source_hash(addr: IpAddr) -> u64 {
    let mut buf = [0u8; 16];
    let len = put_addr(&mut buf, addr);
    xxh3_64_with_seed(&buf[..len], SEED_SOURCE)
}

fn put_addr(buf: &mut [u8; 16], addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(a) => {
            buf[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            *buf = a.octets();
            16
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_hash_distinguishes_addresses() {
        assert_ne!(
            source_hash("192.0.2.1".parse().unwrap()),
            source_hash("192.0.2.2".parse().unwrap())
        );
    }
}
