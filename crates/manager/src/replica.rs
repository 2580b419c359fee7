//! The manager's side of failover: heartbeats and replication batches in and out, replicated
//! flows into the store, and the takeover itself (`docs/failover.md`).

use core::net::SocketAddr;
use core::time::Duration;

use tether_proto::{FlowRecord, Heartbeat, Message, Replicate, Role, Snapshot, Timestamp};
use tether_wire::AffinityKey;

use crate::{Direction, Manager};

/// Rounds of a takeover, a heartbeat interval apart; each announces this manager's wildcards.
const TAKEOVER_ROUNDS: u8 = 5;
/// The first rounds also cancel; the later ones only announce, so no late cancel can delete
/// the last announcement.
const CANCEL_ROUNDS: u8 = 3;
use crate::failover::Transition;

impl Manager {
    /// A heartbeat from a configured peer.
    pub(crate) fn on_heartbeat(&mut self, now: Timestamp, from: SocketAddr, h: &Heartbeat) {
        let (transition, resend) = self.failover.on_heartbeat(now, from, h);
        for (to, batch) in resend {
            self.outbox.push_back((to, Message::Replicate(batch)));
        }
        if h.role == Role::Active
            && self.failover.role() == Role::Active
            && h.backup_precedence > self.stamp.backup_precedence()
        {
            // A worse peer took over from us (it lost our heartbeats) and cancelled our
            // wildcards at the agents: announce them again now rather than at the next refresh.
            self.announcer.expedite(now);
        }
        if !h.ready && h.role == Role::Standby && self.failover.snapshot_wanted(now, from) {
            // The peer has just started and pulls the flow store.
            let records = self
                .flows
                .iter()
                .filter_map(|(key, _)| self.record_of(now, key))
                .collect();
            for (to, batch) in self.failover.start_snapshot(now, from, records) {
                self.outbox.push_back((to, Message::Replicate(batch)));
            }
        }
        self.act(now, transition);
    }

    /// A part of the active peer's flow store, while this manager pulls it.
    pub(crate) fn on_snapshot(&mut self, now: Timestamp, from: SocketAddr, s: &Snapshot) {
        let (store, complete) = self.failover.on_snapshot(now, from, s);
        if store {
            for record in &s.flows {
                self.store_record(now, record);
            }
        }
        if complete {
            let transition = self.failover.on_timeout(now);
            self.act(now, transition);
        }
    }

    /// A replication batch from a configured peer: new records go into the flow store.
    pub(crate) fn on_replicate(&mut self, now: Timestamp, from: SocketAddr, batch: Replicate) {
        if !self.failover.on_replicate(from, batch.stream_seq) {
            return;
        }
        for record in batch.flows {
            self.store_record(now, &record);
        }
    }

    /// Stores one replicated flow if a wildcard of this manager covers it.
    fn store_record(&mut self, now: Timestamp, r: &FlowRecord) {
        let found = self
            .services
            .iter()
            .position(|svc| svc.config.name == r.service);
        let placed = found.and_then(|s| {
            let svc = &self.services[s];
            let b = svc.backend_index(&r.backend)?;
            svc.is_forward(&r.key).then_some((s, b))
        });
        let status = &mut self.failover.status;
        let Some((s, b)) = placed else {
            status.records_refused += 1;
            return;
        };
        let last_fixed = Timestamp::from_duration(
            now.saturating_since(Timestamp::ZERO)
                .saturating_sub(Duration::from_secs(u64::from(r.age))),
        );
        match self.flows.get(&r.key) {
            Some(flow) if flow.service == s && flow.backend == b => {
                self.flows.replica_renewed(last_fixed, &r.key);
            }
            Some(flow) if flow.closing_since.is_none() || r.closing => {
                // Ours is open (or both closed): the one placement this manager knows stands.
                status.records_conflicting += 1;
                return;
            }
            _ => {
                // Unknown here, or a closed flow whose 5-tuple the peer placed afresh.
                if let Some(old) = self.flows.remove(&r.key)
                    && old.closing_since.is_none()
                {
                    self.services[old.service].active[old.backend] -= 1;
                }
                self.services[s].active[b] += 1;
                self.flows
                    .insert_replica(last_fixed, r.key, s, b, r.return_key);
            }
        }
        self.failover.status.records_stored += 1;
        if r.closing {
            self.close_flow(now, &r.key);
        }
    }

    /// The record of a stored flow, for the peers.
    pub(crate) fn record_of(&self, now: Timestamp, forward: &AffinityKey) -> Option<FlowRecord> {
        let flow = self.flows.get(forward)?;
        let svc = &self.services[flow.service].config;
        let age = now.saturating_since(flow.last_fixed).as_secs();
        Some(FlowRecord {
            key: *forward,
            return_key: flow.return_key,
            service: svc.name.clone(),
            backend: svc.backends[flow.backend].name.clone(),
            age: u32::try_from(age).unwrap_or(u32::MAX),
            closing: flow.closing_since.is_some(),
        })
    }

    /// Queues a record of the flow for the peers, when this manager is the one replicating.
    pub(crate) fn replicate(&mut self, now: Timestamp, forward: &AffinityKey) {
        if self.failover.replicating()
            && let Some(record) = self.record_of(now, forward)
        {
            self.failover.replicate(record);
        }
    }

    /// Sends due heartbeats and the pending replication batches.
    pub(crate) fn flush_peers(&mut self, now: Timestamp) {
        let heartbeats = self.failover.heartbeats(now);
        // A manager that was shut down falls silent, so its peers take over.
        if self.shut_down.is_none() {
            for (to, h) in heartbeats {
                self.outbox.push_back((to, Message::Heartbeat(h)));
            }
        }
        for (to, batch) in self.failover.batches(now) {
            self.outbox.push_back((to, Message::Replicate(batch)));
        }
        for (to, part) in self.failover.snapshot_parts(now) {
            self.outbox.push_back((to, Message::Snapshot(part)));
        }
    }

    /// Acts on a role change.
    pub(crate) fn act(&mut self, now: Timestamp, transition: Transition) {
        match transition {
            Transition::TakeOver => self.take_over(now),
            Transition::Reclaim => {
                self.reclaim(now);
                self.repeat_announcements(now);
            }
            // Alone, a manager has no one else's wildcards to compete with.
            Transition::Started if self.failover.replicating() => self.repeat_announcements(now),
            Transition::Started | Transition::None | Transition::Demoted => {}
        }
    }

    /// Announces the wildcards again in the announce-only rounds of a takeover, a heartbeat
    /// interval apart: a manager that has just become active does not leave an agent that
    /// lost its first announcement with another manager's wildcards until the next refresh.
    fn repeat_announcements(&mut self, now: Timestamp) {
        self.takeover_rounds = TAKEOVER_ROUNDS - CANCEL_ROUNDS;
        self.reannounce_at = Some(now + self.failover.interval());
    }

    /// Takes the active role back from a live, worse peer: announces this manager's wildcards
    /// at once and installs the fixed affinity of every stored flow at every agent. Agents
    /// prefer them to the peer's copies (better precedence), so every flow's packets and
    /// notices come here from now on; the peer's copies expire unused. Nothing is cancelled,
    /// so no flow waits for a manager round trip.
    fn reclaim(&mut self, now: Timestamp) {
        self.announcer.expedite(now);
        // Wildcards first: an agent accepts a fixed affinity only under one of ours.
        self.counters.wildcard_updates_sent += self.announcer.poll(now, &mut self.outbox);
        let keys: Vec<AffinityKey> = self.flows.iter().map(|(key, _)| *key).collect();
        for key in keys {
            let Some(updates) = self.fixed_updates(key, Direction::Forward, None) else {
                continue;
            };
            for update in updates {
                for &target in self.announcer.targets() {
                    self.outbox
                        .push_back((target, Message::FixedUpdate(update.clone())));
                    self.counters.fixed_updates_sent += 1;
                }
            }
            self.flows.fixed_sent(now, &key);
            self.replicate(now, &key);
        }
    }

    /// Cancels the dead manager's wildcards and fixed affinities at the agents (TTL 0 with
    /// this manager's precedence reaches their copies, `docs/affinities.md`) and announces this
    /// manager's wildcards, in [`TAKEOVER_ROUNDS`] rounds a heartbeat interval apart: datagrams
    /// get lost, and a cancel that overtakes an announcement deletes it, so the last rounds only
    /// announce.
    fn take_over(&mut self, now: Timestamp) {
        self.takeover_rounds = TAKEOVER_ROUNDS;
        self.takeover_round(now);
    }

    /// One round of [`Manager::take_over`]; schedules the next.
    pub(crate) fn takeover_round(&mut self, now: Timestamp) {
        if self.takeover_rounds > TAKEOVER_ROUNDS - CANCEL_ROUNDS {
            self.queue_cancels();
        }
        self.takeover_rounds = self.takeover_rounds.saturating_sub(1);
        self.reannounce_at = (self.takeover_rounds > 0).then(|| now + self.failover.interval());
        self.announcer.expedite(now);
        self.counters.wildcard_updates_sent += self.announcer.poll(now, &mut self.outbox);
    }

    /// TTL-0 copies of every wildcard and of every stored flow's fixed affinities.
    fn queue_cancels(&mut self) {
        self.counters.wildcard_updates_sent += self.announcer.cancel(&mut self.outbox);
        let mut cancels = Vec::new();
        for (key, flow) in self.flows.iter() {
            let svc = &self.services[flow.service].config;
            let forward = self.stamp.forward_fixed(svc, flow.backend, *key, None);
            let back = flow
                .return_key
                .map(|r| self.stamp.return_fixed(svc, r, None));
            cancels.extend(back.into_iter().chain([forward]));
        }
        for mut update in cancels {
            update.affinity.ttl = 0;
            for &target in self.announcer.targets() {
                self.outbox
                    .push_back((target, Message::FixedUpdate(update.clone())));
                self.counters.fixed_updates_sent += 1;
            }
        }
    }

    /// Notes that a flow was served, which completes a takeover.
    pub(crate) fn served(&mut self, now: Timestamp) {
        let status = &mut self.failover.status;
        if let Some(detected) = status.detected_at
            && status.took_over_at.is_none()
        {
            status.took_over_at = Some(now);
            status.takeover = Some(now.saturating_since(detected));
        }
    }
}
