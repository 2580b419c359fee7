//! An in-memory datagram network on virtual time, with seeded faults.

use core::net::SocketAddr;
use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use tether_proto::{MessageType, Timestamp, Transmit};

/// A small deterministic random number generator (SplitMix64), so a seed names a schedule.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p` (0.0 to 1.0).
    pub fn chance(&mut self, p: f64) -> bool {
        // 53 bits are all an f64 mantissa holds.
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A uniformly chosen duration in `[lo, hi]`.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_nanos() as u64;
        if span == 0 {
            return lo;
        }
        lo + Duration::from_nanos(self.next_u64() % (span + 1))
    }
}

/// How the network misbehaves. The default is a perfect network with a fixed latency.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Shortest one-way latency.
    pub min_latency: Duration,
    /// Longest one-way latency; a spread between the two reorders datagrams.
    pub max_latency: Duration,
    /// Probability that a datagram is lost.
    pub drop: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            min_latency: Duration::from_micros(200),
            max_latency: Duration::from_micros(200),
            drop: 0.0,
            duplicate: 0.0,
        }
    }
}

/// A datagram in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Sender.
    pub from: SocketAddr,
    /// Receiver (a unicast address; multicast is expanded at send time).
    pub to: SocketAddr,
    /// Bytes.
    pub payload: Vec<u8>,
}

/// Counters of what the network did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams handed to the network (after multicast expansion).
    pub sent: u64,
    /// Datagrams lost by fault injection.
    pub dropped: u64,
    /// Extra copies delivered by fault injection.
    pub duplicated: u64,
    /// Datagrams addressed to nobody.
    pub unroutable: u64,
}

/// The network: datagrams scheduled for delivery in virtual time.
#[derive(Debug)]
pub struct Network {
    rng: Rng,
    faults: Faults,
    groups: BTreeMap<SocketAddr, Vec<SocketAddr>>,
    partitioned: Vec<SocketAddr>,
    /// Message types dropped on purpose.
    dropped_kinds: Vec<MessageType>,
    // (deliver at, insertion order) keeps delivery order deterministic for equal times.
    queue: BinaryHeap<Reverse<(Timestamp, u64, DatagramSlot)>>,
    next_order: u64,
    stats: NetStats,
}

/// Heap entries compare by time and order only; the datagram rides along.
#[derive(Debug)]
struct DatagramSlot(Datagram);

impl PartialEq for DatagramSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for DatagramSlot {}
impl PartialOrd for DatagramSlot {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for DatagramSlot {
    fn cmp(&self, _: &Self) -> core::cmp::Ordering {
        core::cmp::Ordering::Equal
    }
}

impl Network {
    /// A network whose faults are drawn from `seed`.
    pub fn new(seed: u64, faults: Faults) -> Self {
        Self {
            rng: Rng::new(seed),
            faults,
            groups: BTreeMap::new(),
            partitioned: Vec::new(),
            dropped_kinds: Vec::new(),
            queue: BinaryHeap::new(),
            next_order: 0,
            stats: NetStats::default(),
        }
    }

    /// Makes `member` receive what is sent to the multicast `group`.
    pub fn join(&mut self, group: SocketAddr, member: SocketAddr) {
        let members = self.groups.entry(group).or_default();
        if !members.contains(&member) {
            members.push(member);
        }
    }

    /// Cuts `addr` off: nothing it sends or is sent arrives until [`Network::heal`].
    pub fn partition(&mut self, addr: SocketAddr) {
        if !self.partitioned.contains(&addr) {
            self.partitioned.push(addr);
        }
    }

    /// Drops every datagram of message type `kind` from now on (a selective fault: e.g. the
    /// snapshots of a store lost while heartbeats still arrive).
    pub fn drop_kind(&mut self, kind: MessageType) {
        if !self.dropped_kinds.contains(&kind) {
            self.dropped_kinds.push(kind);
        }
    }

    /// Undoes every partition.
    pub fn heal(&mut self) {
        self.partitioned.clear();
    }

    /// Replaces the fault model.
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// Hands a transmit from `from` to the network at `now`.
    pub fn send(&mut self, now: Timestamp, from: SocketAddr, transmit: &Transmit) {
        let receivers = match self.groups.get(&transmit.dest) {
            Some(members) => members.iter().copied().filter(|m| *m != from).collect(),
            None => vec![transmit.dest],
        };
        for to in receivers {
            self.stats.sent += 1;
            if self.partitioned.contains(&from) || self.partitioned.contains(&to) {
                self.stats.dropped += 1;
                continue;
            }
            let kind = transmit
                .payload
                .get(1)
                .copied()
                .and_then(MessageType::from_u8);
            if kind.is_some_and(|k| self.dropped_kinds.contains(&k)) {
                self.stats.dropped += 1;
                continue;
            }
            if self.rng.chance(self.faults.drop) {
                self.stats.dropped += 1;
                continue;
            }
            let copies = if self.rng.chance(self.faults.duplicate) {
                self.stats.duplicated += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                let at = now
                    + self
                        .rng
                        .between(self.faults.min_latency, self.faults.max_latency);
                let order = self.next_order;
                self.next_order += 1;
                self.queue.push(Reverse((
                    at,
                    order,
                    DatagramSlot(Datagram {
                        from,
                        to,
                        payload: transmit.payload.clone(),
                    }),
                )));
            }
        }
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_delivery(&self) -> Option<Timestamp> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the next datagram due at or before `now`.
    pub fn deliver(&mut self, now: Timestamp) -> Option<Datagram> {
        let Reverse((at, _, _)) = self.queue.peek()?;
        if *at > now {
            return None;
        }
        self.queue.pop().map(|Reverse((_, _, slot))| slot.0)
    }

    /// Counts a datagram that reached no endpoint.
    pub fn count_unroutable(&mut self) {
        self.stats.unroutable += 1;
    }

    /// What the network has done so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn same_seed_gives_same_schedule() {
        let faults = Faults {
            min_latency: Duration::from_micros(10),
            max_latency: Duration::from_millis(5),
            drop: 0.2,
            duplicate: 0.2,
        };
        let run = |seed| {
            let mut net = Network::new(seed, faults.clone());
            for i in 0..100u8 {
                net.send(
                    Timestamp::ZERO,
                    addr("10.0.0.1:1"),
                    &Transmit {
                        dest: addr("10.0.0.2:2"),
                        payload: vec![i],
                    },
                );
            }
            let mut out = Vec::new();
            while let Some(d) = net.deliver(Timestamp::from_nanos(u64::MAX)) {
                out.push(d.payload[0]);
            }
            out
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn multicast_reaches_every_member_but_the_sender() {
        let mut net = Network::new(1, Faults::default());
        let group = addr("239.1.1.1:7000");
        for m in ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"] {
            net.join(group, addr(m));
        }
        net.send(
            Timestamp::ZERO,
            addr("10.0.0.1:1"),
            &Transmit {
                dest: group,
                payload: vec![1],
            },
        );
        let mut to = Vec::new();
        while let Some(d) = net.deliver(Timestamp::from_nanos(u64::MAX)) {
            to.push(d.to);
        }
        assert_eq!(to, vec![addr("10.0.0.2:1"), addr("10.0.0.3:1")]);
    }

    #[test]
    fn a_partitioned_node_neither_sends_nor_receives() {
        let mut net = Network::new(1, Faults::default());
        net.partition(addr("10.0.0.2:1"));
        for (from, to) in [("10.0.0.1:1", "10.0.0.2:1"), ("10.0.0.2:1", "10.0.0.1:1")] {
            net.send(
                Timestamp::ZERO,
                addr(from),
                &Transmit {
                    dest: addr(to),
                    payload: vec![0],
                },
            );
        }
        assert_eq!(net.deliver(Timestamp::from_nanos(u64::MAX)), None);
        assert_eq!(net.stats().dropped, 2);
        net.heal();
    }
}
