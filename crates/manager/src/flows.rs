//! The flow store: every flow the manager has placed, kept longer than any agent keeps its copy.
//!
//! An agent drops a fixed affinity at most `ttl` (plus its timer slack) after the update that
//! last sent it. The manager keeps the flow until `last fixed update + ttl + 2 s`, so when it
//! forgets a flow no agent still forwards by the old decision, and a later packet of the same
//! key is a new flow everywhere. After a FIN or RST the flow stays at least the sticky time, so
//! the last ACK (or a browser's RST) still finds the backend.

use core::time::Duration;
use std::collections::{BTreeSet, HashMap};

use foldhash::fast::RandomState;
use tether_proto::Timestamp;
use tether_wire::AffinityKey;

/// Slack on top of the fixed TTL: the seed lets agents expire affinities up to 2 s late.
pub(crate) const AGENT_SLACK: Duration = Duration::from_secs(2);
/// Extra time a standby keeps a replicated flow: its copy of `last_fixed` is only as precise
/// as the record's whole seconds and arrives late, and the seed allows a backup to keep longer.
pub(crate) const REPLICA_SLACK: Duration = Duration::from_secs(2);

/// One placed flow, keyed by its forward (client to VIP) key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Flow {
    /// Index of the service.
    pub(crate) service: usize,
    /// Index of the backend within the service.
    pub(crate) backend: usize,
    /// Key of the backend's replies after NAT (backend to client), in NAT mode.
    pub(crate) return_key: Option<AffinityKey>,
    /// When the last fixed update for this flow was sent.
    pub(crate) last_fixed: Timestamp,
    /// When the last FIN or RST of this flow was reported.
    pub(crate) closing_since: Option<Timestamp>,
    /// When the manager forgets the flow.
    pub(crate) expires: Timestamp,
    /// Whether the flow came from a peer's replication and this manager has not sent a fixed
    /// update for it yet (it is then kept [`REPLICA_SLACK`] longer).
    pub(crate) replica: bool,
}

/// Flows by forward key, with an index by return key and a deadline queue.
#[derive(Debug)]
pub(crate) struct FlowStore {
    // Keys are chosen by clients, so the map hashes with a per-process random seed.
    flows: HashMap<AffinityKey, Flow, RandomState>,
    by_return: HashMap<AffinityKey, AffinityKey, RandomState>,
    deadlines: BTreeSet<(Timestamp, AffinityKey)>,
    /// How long after a fixed update the flow is kept: fixed TTL plus agent slack.
    hold: Duration,
    sticky: Duration,
}

impl FlowStore {
    /// A store for fixed affinities of `fixed_ttl` seconds and the given sticky time.
    pub(crate) fn new(fixed_ttl: u32, sticky: Duration) -> Self {
        Self {
            flows: HashMap::default(),
            by_return: HashMap::default(),
            deadlines: BTreeSet::new(),
            hold: Duration::from_secs(u64::from(fixed_ttl)) + AGENT_SLACK,
            sticky,
        }
    }

    /// Number of flows.
    pub(crate) fn len(&self) -> usize {
        self.flows.len()
    }

    /// The flow with forward key `key`.
    pub(crate) fn get(&self, key: &AffinityKey) -> Option<&Flow> {
        self.flows.get(key)
    }

    /// The forward key of the flow whose return key is `key`.
    pub(crate) fn forward_key_of_return(&self, key: &AffinityKey) -> Option<AffinityKey> {
        self.by_return.get(key).copied()
    }

    /// Stores a new flow whose first fixed update is sent at `now`.
    pub(crate) fn insert(
        &mut self,
        now: Timestamp,
        key: AffinityKey,
        service: usize,
        backend: usize,
        return_key: Option<AffinityKey>,
    ) {
        self.insert_as(now, key, service, backend, return_key, false);
    }

    /// Stores a flow a peer placed, whose last fixed update the peer sent at `last_fixed`.
    pub(crate) fn insert_replica(
        &mut self,
        last_fixed: Timestamp,
        key: AffinityKey,
        service: usize,
        backend: usize,
        return_key: Option<AffinityKey>,
    ) {
        self.insert_as(last_fixed, key, service, backend, return_key, true);
    }

    fn insert_as(
        &mut self,
        now: Timestamp,
        key: AffinityKey,
        service: usize,
        backend: usize,
        return_key: Option<AffinityKey>,
        replica: bool,
    ) {
        let expires = now
            + self.hold
            + if replica {
                REPLICA_SLACK
            } else {
                Duration::ZERO
            };
        if let Some(r) = return_key {
            self.by_return.insert(r, key);
        }
        self.deadlines.insert((expires, key));
        self.flows.insert(
            key,
            Flow {
                service,
                backend,
                return_key,
                last_fixed: now,
                closing_since: None,
                expires,
                replica,
            },
        );
    }

    /// Every flow, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&AffinityKey, &Flow)> {
        self.flows.iter()
    }

    /// Forgets flow `key` at once (its 5-tuple is starting a new connection).
    pub(crate) fn remove(&mut self, key: &AffinityKey) -> Option<Flow> {
        let flow = self.flows.remove(key)?;
        self.deadlines.remove(&(flow.expires, *key));
        if let Some(r) = flow.return_key {
            self.by_return.remove(&r);
        }
        Some(flow)
    }

    /// Records a fixed update sent for the flow at `now`, which pushes its expiry out.
    pub(crate) fn fixed_sent(&mut self, now: Timestamp, key: &AffinityKey) {
        self.update(key, |flow| {
            flow.last_fixed = flow.last_fixed.max(now);
            flow.replica = false;
        });
    }

    /// Records a fixed update a peer sent for the flow at `last_fixed`.
    pub(crate) fn replica_renewed(&mut self, last_fixed: Timestamp, key: &AffinityKey) {
        self.update(key, |flow| {
            flow.last_fixed = flow.last_fixed.max(last_fixed);
        });
    }

    /// Records a FIN or RST at `now`; returns whether the flow was open until then.
    pub(crate) fn close(&mut self, now: Timestamp, key: &AffinityKey) -> bool {
        let mut was_open = false;
        self.update(key, |flow| {
            was_open = flow.closing_since.is_none();
            flow.closing_since = Some(flow.closing_since.map_or(now, |t| t.max(now)));
        });
        was_open
    }

    fn update(&mut self, key: &AffinityKey, change: impl FnOnce(&mut Flow)) {
        let Some(flow) = self.flows.get_mut(key) else {
            return;
        };
        change(flow);
        let slack = if flow.replica {
            REPLICA_SLACK
        } else {
            Duration::ZERO
        };
        let expires = (flow.last_fixed + self.hold + slack).max(
            flow.closing_since
                .map_or(Timestamp::ZERO, |t| t + self.sticky),
        );
        if expires != flow.expires {
            self.deadlines.remove(&(flow.expires, *key));
            self.deadlines.insert((expires, *key));
            flow.expires = expires;
        }
    }

    /// The earliest expiry.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|&(t, _)| t)
    }

    /// Removes and returns one flow whose expiry is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Timestamp) -> Option<(AffinityKey, Flow)> {
        let &(deadline, key) = self.deadlines.first()?;
        if deadline > now {
            return None;
        }
        self.deadlines.pop_first();
        let flow = self.flows.remove(&key)?;
        if let Some(r) = flow.return_key {
            self.by_return.remove(&r);
        }
        Some((key, flow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> AffinityKey {
        AffinityKey {
            protocol: 6,
            src: "192.0.2.1".parse().unwrap(),
            src_port: port,
            dst: "198.51.100.1".parse().unwrap(),
            dst_port: 80,
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_duration(Duration::from_secs(secs))
    }

    fn expired(store: &mut FlowStore, now: Timestamp) -> Vec<u16> {
        core::iter::from_fn(|| store.pop_expired(now))
            .map(|(k, _)| k.src_port)
            .collect()
    }

    #[test]
    fn a_flow_outlives_the_agents_copy_of_its_last_fixed_update() {
        let mut store = FlowStore::new(30, Duration::from_secs(5));
        store.insert(at(0), key(1), 0, 0, Some(key(1).reversed()));
        store.fixed_sent(at(20), &key(1));
        // The agent's copy from t=20 lives until 50 (and up to 52 with its slack).
        assert!(expired(&mut store, at(51)).is_empty());
        assert_eq!(store.next_deadline(), Some(at(52)));
        assert_eq!(expired(&mut store, at(52)), [1]);
        assert_eq!(store.len(), 0);
        assert_eq!(store.forward_key_of_return(&key(1).reversed()), None);
    }

    #[test]
    fn a_closed_flow_stays_at_least_the_sticky_time() {
        let mut store = FlowStore::new(30, Duration::from_mins(1));
        store.insert(at(0), key(1), 0, 0, None);
        store.insert(at(0), key(2), 0, 0, None);
        assert!(store.close(at(10), &key(1)));
        assert!(!store.close(at(11), &key(1)));
        // A short sticky time never cuts the "outlive the agents" rule.
        let mut short = FlowStore::new(30, Duration::from_secs(1));
        short.insert(at(0), key(3), 0, 0, None);
        short.close(at(10), &key(3));
        assert!(expired(&mut short, at(31)).is_empty());
        assert_eq!(expired(&mut short, at(32)), [3]);

        assert_eq!(expired(&mut store, at(32)), [2]);
        assert!(expired(&mut store, at(70)).is_empty());
        assert_eq!(expired(&mut store, at(71)), [1]);
    }
}
