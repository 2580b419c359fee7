//! Schedulers: which eligible backend a new flow goes to.
//!
//! A scheduler knows every configured backend by index, with its weight, and is told which of
//! them are eligible (enabled and healthy) whenever that set changes; only then does it do any
//! rebuilding. Picking never allocates.

use core::net::IpAddr;

use tether_wire::AffinityKey;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::config::SchedulerKind;

pub mod maglev;
mod source_hash;
mod wlc;
mod wrr;

pub use maglev::Maglev;
use source_hash::SourceHash;
use wlc::LeastConnections;
use wrr::SmoothRoundRobin;

/// Seeds of the hashes that must agree between managers (a primary and its backups), on any
/// machine and build; changing one changes every table.
mod seed {
    /// Hash of a flow's 5-tuple for Maglev lookups.
    pub(super) const FLOW: u64 = 0x7465_7468_6572_0001;
    /// Hash of a client address for source hashing.
    pub(super) const SOURCE: u64 = 0x7465_7468_6572_0002;
}

/// What a scheduler knows about a backend.
#[derive(Clone, Copy, Debug)]
pub struct BackendSpec<'a> {
    /// Name, which places the backend in consistent-hash tables.
    pub name: &'a str,
    /// Relative share of new flows (at least 1).
    pub weight: u32,
}

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

/// The seeded hash of a flow's 5-tuple, over a canonical byte layout.
pub fn flow_hash(key: &AffinityKey) -> u64 {
    let mut buf = [0u8; 37];
    buf[0] = key.protocol;
    let mut len = 1;
    for (addr, port) in [(key.src, key.src_port), (key.dst, key.dst_port)] {
        len += put_addr(&mut buf[len..], addr);
        buf[len..len + 2].copy_from_slice(&port.to_be_bytes());
        len += 2;
    }
    xxh3_64_with_seed(&buf[..len], seed::FLOW)
}

/// The seeded hash of a client address.
pub(crate) fn source_hash(addr: IpAddr) -> u64 {
    let mut buf = [0u8; 16];
    let len = put_addr(&mut buf, addr);
    xxh3_64_with_seed(&buf[..len], seed::SOURCE)
}

fn put_addr(buf: &mut [u8], addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(a) => {
            buf[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            buf[..16].copy_from_slice(&a.octets());
            16
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_hash_distinguishes_direction_and_is_stable() {
        let key = AffinityKey {
            protocol: 6,
            src: "192.0.2.1".parse().unwrap(),
            src_port: 40_000,
            dst: "198.51.100.1".parse().unwrap(),
            dst_port: 80,
        };
        assert_ne!(flow_hash(&key), flow_hash(&key.reversed()));
        assert_eq!(flow_hash(&key), flow_hash(&key.clone()));
        assert_ne!(
            source_hash("192.0.2.1".parse().unwrap()),
            source_hash("192.0.2.2".parse().unwrap())
        );
    }
}
