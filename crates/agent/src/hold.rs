//! The hold buffer: packets kept while a manager decides their flow (interest criteria hold
//! flag), released when the flow's fixed affinity arrives and dropped after the hold time.

use core::time::Duration;
use std::collections::VecDeque;

use tether_proto::Timestamp;
use tether_wire::AffinityKey;

/// One held IP packet.
#[derive(Clone, Debug)]
struct Held {
    key: AffinityKey,
    packet: Vec<u8>,
    deadline: Timestamp,
}

/// Held packets in arrival order; with one hold time for all, that is also deadline order.
#[derive(Debug)]
pub(crate) struct HoldBuffer {
    queue: VecDeque<Held>,
    capacity: usize,
    hold_time: Duration,
}

impl HoldBuffer {
    /// An empty buffer for `capacity` packets, each kept at most `hold_time`.
    pub fn new(capacity: usize, hold_time: Duration) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity,
            hold_time,
        }
    }

    /// Packets held now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether one more packet fits.
    pub fn has_room(&self) -> bool {
        self.queue.len() < self.capacity
    }

    /// Keeps `packet` of flow `key` until its fixed affinity arrives or the hold time passes.
    pub fn hold(&mut self, key: AffinityKey, packet: Vec<u8>, now: Timestamp) {
        self.queue.push_back(Held {
            key,
            packet,
            deadline: now + self.hold_time,
        });
    }

    /// Removes and returns the packets held for `key`, oldest first.
    pub fn release(&mut self, key: &AffinityKey) -> Vec<Vec<u8>> {
        let mut released = Vec::new();
        self.queue.retain_mut(|h| {
            if h.key == *key {
                released.push(core::mem::take(&mut h.packet));
                false
            } else {
                true
            }
        });
        released
    }

    /// Drops packets whose hold time has passed; how many.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let before = self.queue.len();
        while self.queue.front().is_some_and(|h| h.deadline <= now) {
            self.queue.pop_front();
        }
        before - self.queue.len()
    }

    /// When the oldest held packet times out.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.queue.front().map(|h| h.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> AffinityKey {
        AffinityKey {
            protocol: 17,
            src: "10.0.0.1".parse().unwrap(),
            src_port: port,
            dst: "10.0.0.2".parse().unwrap(),
            dst_port: 53,
        }
    }

    #[test]
    fn release_takes_only_the_flow_and_keeps_order() {
        let mut h = HoldBuffer::new(3, Duration::from_secs(1));
        h.hold(key(1), vec![1], Timestamp::ZERO);
        h.hold(key(2), vec![2], Timestamp::ZERO);
        h.hold(key(1), vec![3], Timestamp::ZERO);
        assert!(!h.has_room());
        assert_eq!(h.release(&key(1)), vec![vec![1], vec![3]]);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn packets_time_out_after_the_hold_time() {
        let mut h = HoldBuffer::new(3, Duration::from_secs(1));
        h.hold(key(1), vec![1], Timestamp::ZERO);
        h.hold(key(2), vec![2], Timestamp::from_nanos(500_000_000));
        assert_eq!(
            h.next_deadline(),
            Some(Timestamp::from_nanos(1_000_000_000))
        );
        assert_eq!(h.expire(Timestamp::from_nanos(999_999_999)), 0);
        assert_eq!(h.expire(Timestamp::from_nanos(1_000_000_000)), 1);
        assert_eq!(h.expire(Timestamp::from_nanos(2_000_000_000)), 1);
        assert_eq!(h.next_deadline(), None);
    }
}
