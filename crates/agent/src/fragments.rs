//! Fragment memory: later fragments of a datagram carry no ports, so the agent remembers
//! which affinity the first fragment matched and gives the rest the same handling.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::VecDeque;

use foldhash::fast::FixedState;
use tether_proto::Timestamp;
use tether_wire::AffinityKey;

use crate::Map;

/// One datagram: what its fragments have in common.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DatagramId {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol.
    pub protocol: u8,
    /// Fragment identification.
    pub id: u32,
}

/// Which affinity a first fragment matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AffinityRef {
    /// A manager's fixed affinity for a key.
    Fixed {
        /// The flow.
        key: AffinityKey,
        /// Its manager.
        manager: SocketAddr,
    },
    /// A wildcard, by id.
    Wildcard(u64),
}

/// Datagram → affinity, for a fixed time, bounded in size because its keys come from the
/// network.
#[derive(Debug)]
pub(crate) struct FragmentMemory {
    map: Map<DatagramId, (AffinityRef, Timestamp)>,
    /// Insertion order; with one lifetime for all, also deadline order.
    order: VecDeque<(Timestamp, DatagramId)>,
    lifetime: Duration,
    capacity: usize,
}

impl FragmentMemory {
    /// An empty memory keeping up to `capacity` datagrams for `lifetime` each.
    pub fn new(lifetime: Duration, capacity: usize, hasher: FixedState) -> Self {
        Self {
            map: Map::with_hasher(hasher),
            order: VecDeque::new(),
            lifetime,
            capacity,
        }
    }

    /// Remembers that datagram `id` matched `affinity`; the oldest memory makes room.
    pub fn remember(&mut self, id: DatagramId, affinity: AffinityRef, now: Timestamp) {
        if self.capacity == 0 {
            return;
        }
        while self.map.len() >= self.capacity && !self.map.contains_key(&id) {
            let Some((deadline, old)) = self.order.pop_front() else {
                break;
            };
            self.forget(old, deadline);
        }
        let deadline = now + self.lifetime;
        self.map.insert(id, (affinity, deadline));
        self.order.push_back((deadline, id));
    }

    /// The affinity datagram `id`'s first fragment matched, if still remembered.
    pub fn recall(&self, id: &DatagramId, now: Timestamp) -> Option<AffinityRef> {
        self.map
            .get(id)
            .filter(|(_, deadline)| *deadline > now)
            .map(|(a, _)| *a)
    }

    /// Forgets datagrams whose time has passed.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some(&(deadline, id)) = self.order.front() {
            if deadline > now {
                break;
            }
            self.order.pop_front();
            self.forget(id, deadline);
        }
    }

    /// Removes `id` unless it was remembered again later (then a newer order item owns it).
    fn forget(&mut self, id: DatagramId, deadline: Timestamp) {
        if self.map.get(&id).is_some_and(|(_, d)| *d == deadline) {
            self.map.remove(&id);
        }
    }

    /// When the oldest memory lapses.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.order.front().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> DatagramId {
        DatagramId {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            protocol: 17,
            id: n,
        }
    }

    #[test]
    fn memory_lapses_and_is_bounded() {
        let mut m = FragmentMemory::new(Duration::from_secs(5), 2, FixedState::with_seed(0));
        let t0 = Timestamp::ZERO;
        m.remember(id(1), AffinityRef::Wildcard(1), t0);
        m.remember(id(2), AffinityRef::Wildcard(2), t0);
        m.remember(id(3), AffinityRef::Wildcard(3), t0);
        assert_eq!(m.recall(&id(1), t0), None);
        assert_eq!(m.recall(&id(3), t0), Some(AffinityRef::Wildcard(3)));
        let later = t0 + Duration::from_secs(5);
        assert_eq!(m.recall(&id(2), later), None);
        m.expire(later);
        assert_eq!(m.next_deadline(), None);
    }
}
