//! The service manager (seed 004) as a deterministic state machine.
//!
//! A manager load-balances virtual services (VIP, port, protocol, client domain) over backends
//! without ever being in the packets' path. It tells forwarding agents which flows it wants to
//! see with *wildcard affinities*, receives the first packet of each new flow in an *interest
//! match*, picks a backend with the service's scheduler, and answers with *fixed affinities*
//! that make the agent forward the flow (NAT or direct server return) on its own from then on.
//! The conventions are those of `docs/affinities.md`.
//!
//! Like quinn-proto, the crate does no I/O and reads no clock: the caller hands in datagrams,
//! health and administrative events, and the current time, and pulls out what to send
//! ([`Manager::poll_transmit`]) and when to wake it next ([`Manager::poll_timeout`]).
//!
//! ```text
//!  datagrams ──► handle_datagram ─► Codec::open ─► interest match ─► flow store / scheduler
//!  health, admin ─► set_backend_*                                        │
//!  time ─► handle_timeout (wildcard refresh, flow expiry)                ▼
//!  poll_transmit ◄── Codec::seal ◄── queue of fixed/wildcard updates, IP packets
//! ```
#![forbid(unsafe_code)]

mod affinity;
mod announce;
mod config;
mod failover;
mod flows;
mod local;
mod prefix;
mod replica;
pub mod scheduler;
mod service;
mod status;

use core::net::SocketAddr;
use std::collections::{BTreeMap, VecDeque};

use tether_proto::{
    AffinityIdentifier, Codec, Deny, FixedUpdate, InterestBits, InterestMatch, Message, Role,
    Timestamp, Transmit,
};
use tether_wire::AffinityKey;
use tether_wire::packet::{PacketInfo, Transport, tcp_flags};

use crate::affinity::Stamp;
use crate::announce::Announcer;
use crate::failover::Failover;
use crate::flows::FlowStore;
use crate::service::Service;

pub use crate::config::{
    AdminState, BackendConfig, ConfigError, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_MISSES,
    DEFAULT_TABLE_SIZE, Decisions, ForwardingMode, MAX_LOCAL_BACKENDS, ManagerConfig, Protocol,
    SchedulerKind, ServiceConfig,
};
pub use crate::failover::{FailoverStatus, PeerStatus};
pub use crate::status::{
    BackendStatus, Counters, DenyRecord, Drops, FlowStatus, ManagerStatus, ServiceStatus,
};

/// A control call named a service or backend the manager does not have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No service of that name.
    #[error("no service is named \"{0}\"; check the name against `status`")]
    UnknownService(String),
    /// No backend of that name in the service.
    #[error(
        "service \"{service}\" has no backend named \"{backend}\"; check the name against `status`"
    )]
    UnknownBackend {
        /// The service.
        service: String,
        /// The backend name asked for.
        backend: String,
    },
}

/// The facts of a packet the manager decides on.
#[derive(Clone, Copy, Debug)]
struct PacketFacts {
    /// The key its flow is found by (for an ICMP error, the flow the error travels with).
    key: AffinityKey,
    /// Whether it may start a flow: a TCP SYN without ACK, or a UDP datagram.
    starts_flow: bool,
    /// Whether it ends the flow: a TCP FIN or RST.
    ends_flow: bool,
}

impl PacketFacts {
    fn of(info: &PacketInfo) -> Self {
        let (starts_flow, ends_flow) = match info.transport {
            Transport::Tcp { flags, .. } => (
                flags & tcp_flags::SYN != 0 && flags & tcp_flags::ACK == 0,
                flags & (tcp_flags::FIN | tcp_flags::RST) != 0,
            ),
            Transport::Udp { .. } => (true, false),
            _ => (false, false),
        };
        Self {
            key: info.lookup_key(),
            starts_flow,
            ends_flow,
        }
    }
}

/// Which direction of a flow a fixed affinity is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Client to VIP.
    Forward,
    /// Backend to client (NAT mode).
    Return,
}

/// A service manager.
#[derive(Debug)]
pub struct Manager {
    name: String,
    codec: Codec,
    stamp: Stamp,
    announcer: Announcer,
    services: Vec<Service>,
    flows: FlowStore,
    /// When each backend's health or state last changed, by (service, backend) index.
    changed_at: BTreeMap<(usize, usize), Timestamp>,
    denies: BTreeMap<SocketAddr, DenyRecord>,
    outbox: VecDeque<(SocketAddr, Message)>,
    counters: Counters,
    /// When `shutdown` was called.
    shut_down: Option<Timestamp>,
    /// Peers, role and replication.
    failover: Failover,
    /// When the next round of a takeover is due.
    reannounce_at: Option<Timestamp>,
    /// Rounds of the takeover still to come.
    takeover_rounds: u8,
    /// Whether the rounds cancel a dead manager's copies (a takeover) or only override a
    /// worse manager's (a reclaim).
    takeover_cancels: bool,
    /// Flows whose fixed affinities a takeover or reclaim round has still to install, sent a
    /// chunk at a time so the agents' socket buffers are not overrun.
    installs: VecDeque<AffinityKey>,
    /// When the next chunk of `installs` is due.
    install_at: Option<Timestamp>,
}

impl Manager {
    /// A manager for a validated `config`; its first wildcard announcements are queued.
    pub fn new(config: ManagerConfig, now: Timestamp) -> Result<Self, ConfigError> {
        config.validate()?;
        let stamp = Stamp::new(&config);
        let failover = Failover::new(&config, now);
        let services: Vec<Service> = config.services.into_iter().map(Service::new).collect();
        let wildcards = services.iter().flat_map(|s| stamp.wildcards(s)).collect();
        let mut manager = Self {
            failover,
            reannounce_at: None,
            takeover_rounds: 0,
            takeover_cancels: false,
            installs: VecDeque::new(),
            install_at: None,
            codec: Codec::new(config.auth, config.initial_sequence),
            announcer: Announcer::new(wildcards, config.announce, config.wildcard_ttl, now),
            flows: FlowStore::new(config.fixed_ttl, config.sticky),
            services,
            name: config.name,
            stamp,
            changed_at: BTreeMap::new(),
            denies: BTreeMap::new(),
            outbox: VecDeque::new(),
            counters: Counters::default(),
            shut_down: None,
        };
        manager.handle_timeout(now);
        Ok(manager)
    }

    /// Handles a datagram from `from`: authenticates it, then acts on the message.
    pub fn handle_datagram(&mut self, now: Timestamp, from: SocketAddr, payload: &[u8]) {
        self.counters.datagrams += 1;
        match self.codec.open(payload) {
            Ok(message) => self.handle_message(now, from, message),
            Err(rejection) => {
                *self
                    .counters
                    .rejected
                    .entry(rejection.reason())
                    .or_default() += 1;
            }
        }
    }

    /// Acts on a message that is already decoded and authenticated (in-process simulations
    /// use this to leave the codec out).
    pub fn handle_message(&mut self, now: Timestamp, from: SocketAddr, message: Message) {
        if self.shut_down.is_some() {
            self.counters.dropped.after_shutdown += 1;
            return;
        }
        match message {
            Message::Heartbeat(h) if self.failover.is_peer(from) => {
                self.on_heartbeat(now, from, &h);
            }
            Message::Replicate(r) if self.failover.is_peer(from) => {
                self.on_replicate(now, from, r);
            }
            Message::Snapshot(s) if self.failover.is_peer(from) => {
                self.on_snapshot(now, from, &s);
            }
            Message::InterestMatch(_) if self.failover.role() == Role::Standby => {
                // A standby places nothing: the agent's SYN is retransmitted and reaches the
                // active manager, or this one once it has taken over.
                self.counters.dropped.standby += 1;
            }
            Message::InterestMatch(m) => self.on_interest_match(now, from, m),
            Message::FlowReport(_) if self.failover.role() == Role::Standby => {
                // The flows stay where the agent put them; a packet that later reaches this
                // manager finds the same backend in the same table.
                self.counters.dropped.standby += 1;
            }
            Message::FlowReport(r) => self.on_flow_report(now, r),
            Message::Deny(deny) => self.on_deny(now, from, deny),
            Message::WildcardUpdate(_)
            | Message::FixedUpdate(_)
            | Message::IpPacketOnly(_)
            | Message::Replicate(_)
            | Message::Heartbeat(_)
            | Message::Snapshot(_) => {
                self.counters.dropped.unexpected_message += 1;
            }
        }
        self.flush_peers(now);
    }

    /// Refreshes wildcards and forgets expired flows, as due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let transition = self.failover.on_timeout(now);
        self.act(now, transition);
        if self.reannounce_at.is_some_and(|t| t <= now) {
            self.takeover_round(now);
        }
        if self.install_at.is_some_and(|t| t <= now) {
            self.install_chunk(now);
        }
        // A manager pulling the flow store announces nothing: its wildcards would draw flows it
        // cannot serve yet.
        if self.failover.ready() {
            self.counters.wildcard_updates_sent += self.announcer.poll(now, &mut self.outbox);
        }
        while let Some((_, flow)) = self.flows.pop_expired(now) {
            if flow.closing_since.is_none() {
                self.services[flow.service].active[flow.backend] -= 1;
            }
            self.counters.flows_expired += 1;
        }
        self.flush_peers(now);
    }

    /// When [`Manager::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [
            self.announcer
                .next_refresh()
                .filter(|_| self.failover.ready()),
            self.flows.next_deadline(),
            self.failover.next_deadline(),
            self.reannounce_at,
            self.install_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next datagram to send, sealed by the manager's codec.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let (dest, message) = self.outbox.pop_front()?;
        Some(Transmit {
            dest,
            payload: self.codec.seal(&message),
        })
    }

    /// The next message to send, unsealed (in-process simulations use this to leave the codec
    /// out; it takes from the same queue as [`Manager::poll_transmit`]).
    pub fn poll_message(&mut self) -> Option<(SocketAddr, Message)> {
        self.outbox.pop_front()
    }

    /// Records a health check result: a backend that is down takes no new flows, and keeps the
    /// flows it has.
    pub fn set_backend_health(
        &mut self,
        now: Timestamp,
        service: &str,
        backend: &str,
        up: bool,
    ) -> Result<(), ControlError> {
        let (s, b) = self.find_backend(service, backend)?;
        let svc = &mut self.services[s];
        if svc.healthy[b] != up {
            svc.healthy[b] = up;
            let changed = svc.update_eligibility();
            self.changed_at.insert((s, b), now);
            self.eligibility_changed(now, s, changed);
        }
        Ok(())
    }

    /// Sets a backend's administrative state: draining keeps its flows and takes no new ones;
    /// disabled also stops renewing its flows.
    pub fn set_backend_state(
        &mut self,
        now: Timestamp,
        service: &str,
        backend: &str,
        state: AdminState,
    ) -> Result<(), ControlError> {
        let (s, b) = self.find_backend(service, backend)?;
        let svc = &mut self.services[s];
        if svc.admin[b] != state {
            svc.admin[b] = state;
            let changed = svc.update_eligibility();
            self.changed_at.insert((s, b), now);
            self.eligibility_changed(now, s, changed);
        }
        Ok(())
    }

    /// Sends agents the new table of a service with local decisions whose eligible backends
    /// changed, with the next wake-up.
    fn eligibility_changed(&mut self, now: Timestamp, s: usize, changed: bool) {
        if changed && self.services[s].local() {
            let wildcards = self
                .services
                .iter()
                .flat_map(|svc| self.stamp.wildcards(svc))
                .collect();
            self.announcer.replace(wildcards, now);
        }
    }

    /// Withdraws every wildcard (TTL 0), which makes agents drop this manager's affinities;
    /// later messages are ignored.
    pub fn shutdown(&mut self, now: Timestamp) {
        self.counters.wildcard_updates_sent += self.announcer.withdraw(&mut self.outbox);
        self.shut_down.get_or_insert(now);
    }

    /// A snapshot of services, backends, flows and counters.
    pub fn status(&self) -> ManagerStatus {
        let services = self
            .services
            .iter()
            .enumerate()
            .map(|(s, svc)| ServiceStatus {
                name: svc.config.name.clone(),
                vip: svc.config.vip,
                port: svc.config.port,
                protocol: svc.config.protocol,
                mode: svc.config.mode,
                scheduler: svc.config.scheduler,
                backends: svc
                    .config
                    .backends
                    .iter()
                    .enumerate()
                    .map(|(b, cfg)| BackendStatus {
                        name: cfg.name.clone(),
                        addr: cfg.addr,
                        port: cfg.port,
                        weight: cfg.weight,
                        admin: svc.admin[b],
                        healthy: svc.healthy[b],
                        eligible: svc.admin[b] == AdminState::Enabled && svc.healthy[b],
                        active_flows: svc.active[b],
                        changed_at: self.changed_at.get(&(s, b)).copied(),
                    })
                    .collect(),
            })
            .collect();
        ManagerStatus {
            name: self.name.clone(),
            flows: self.flows.len(),
            services,
            counters: self.counters.clone(),
            denies: self.denies.values().cloned().collect(),
            shut_down: self.shut_down,
            failover: self.failover.status.clone(),
        }
    }

    /// The flow with forward (client to VIP) key `key`, or whose NAT'd reply key is `key`.
    pub fn flow(&self, key: &AffinityKey) -> Option<FlowStatus> {
        let forward = self.forward_key(key)?;
        let flow = self.flows.get(&forward)?;
        let svc = &self.services[flow.service];
        Some(FlowStatus {
            service: svc.config.name.clone(),
            backend: svc.config.backends[flow.backend].name.clone(),
            return_key: flow.return_key,
            closing: flow.closing_since.is_some(),
            last_fixed: flow.last_fixed,
            expires: flow.expires,
        })
    }

    fn find_backend(&self, service: &str, backend: &str) -> Result<(usize, usize), ControlError> {
        let s = self
            .services
            .iter()
            .position(|svc| svc.config.name == service)
            .ok_or_else(|| ControlError::UnknownService(service.to_owned()))?;
        let b = self.services[s].backend_index(backend).ok_or_else(|| {
            ControlError::UnknownBackend {
                service: service.to_owned(),
                backend: backend.to_owned(),
            }
        })?;
        Ok((s, b))
    }

    fn forward_key(&self, key: &AffinityKey) -> Option<AffinityKey> {
        if self.flows.get(key).is_some() {
            Some(*key)
        } else {
            self.flows.forward_key_of_return(key)
        }
    }

    fn on_interest_match(&mut self, now: Timestamp, from: SocketAddr, m: InterestMatch) {
        if !m.envelope.unsupported_required.is_empty() {
            self.counters.dropped.unsupported_required += 1;
            return;
        }
        self.counters.interest_matches += 1;
        match m.packet {
            Some(packet) => match PacketInfo::parse(&packet) {
                Ok(info) => self.on_packet(now, from, PacketFacts::of(&info), packet),
                Err(_) => self.counters.dropped.malformed_packet += 1,
            },
            None => self.on_notification(now, from, &m.identifier),
        }
    }

    /// Decides on a packet an agent handed over.
    fn on_packet(&mut self, now: Timestamp, from: SocketAddr, facts: PacketFacts, packet: Vec<u8>) {
        let key = facts.key;
        let known = if self.flows.get(&key).is_some() {
            Some((key, Direction::Forward))
        } else {
            self.flows
                .forward_key_of_return(&key)
                .map(|forward| (forward, Direction::Return))
        };
        let reused = known.is_some_and(|(forward, direction)| {
            direction == Direction::Forward
                && facts.starts_flow
                && self
                    .flows
                    .get(&forward)
                    .is_some_and(|f| f.closing_since.is_some())
        });
        if reused {
            // A new connection on the 5-tuple of a closed one: the old choice does not bind it.
            if self.flows.remove(&key).is_some() {
                self.counters.flows_reused += 1;
            }
            if let Some(s) = self.services.iter().position(|svc| svc.is_forward(&key)) {
                self.new_flow(now, from, s, key, packet);
            }
        } else if let Some((forward, direction)) = known {
            self.send_fixed(now, from, forward, direction, Some(packet));
            // The agent asked with the packet, so no separate FIN or RST notice will follow.
            if facts.ends_flow {
                self.close_flow(now, &forward);
            }
        } else if let Some(s) = self.services.iter().position(|svc| svc.is_forward(&key)) {
            if facts.starts_flow {
                self.new_flow(now, from, s, key, packet);
            } else if self.services[s].local() {
                // An agent placed the flow and its report was lost (a failover): the table
                // gives the same backend.
                self.counters.flows_recovered += 1;
                self.new_flow(now, from, s, key, packet);
            } else {
                self.counters.dropped.unknown_mid_flow += 1;
            }
        } else if let Some((s, b, forward)) = self.recoverable_return(&key) {
            self.counters.flows_recovered += 1;
            self.store_flow(now, s, b, forward);
            self.send_fixed(now, from, forward, Direction::Return, Some(packet));
        } else if self.services.iter().any(|svc| svc.is_return(&key)) {
            // A reply of no known flow: the agent forwards it by destination, untranslated.
            self.outbox.push_back((from, Message::IpPacketOnly(packet)));
            self.counters.ip_packets_returned += 1;
        } else {
            self.counters.dropped.no_service += 1;
        }
    }

    fn new_flow(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        s: usize,
        key: AffinityKey,
        packet: Vec<u8>,
    ) {
        let Some(b) = self.services[s].pick(&key) else {
            self.counters.dropped.no_backend += 1;
            return;
        };
        self.store_flow(now, s, b, key);
        self.send_fixed(now, from, key, Direction::Forward, Some(packet));
    }

    /// Stores a new open flow `forward` of service `s` on backend `b`, as placed at `now`.
    pub(crate) fn store_flow(&mut self, now: Timestamp, s: usize, b: usize, forward: AffinityKey) {
        let svc = &mut self.services[s];
        svc.active[b] += 1;
        let return_key = svc.return_key(&forward, b);
        self.flows.insert(now, forward, s, b, return_key);
        self.counters.flows_created += 1;
    }

    /// Sends the stored decision for a flow, which also renews it. A forward affinity of a NAT
    /// flow goes with the return affinity ahead of it, so the return affinity is installed
    /// before the forwarded packet can draw a reply from the backend.
    fn send_fixed(
        &mut self,
        now: Timestamp,
        to: SocketAddr,
        forward: AffinityKey,
        direction: Direction,
        packet: Option<Vec<u8>>,
    ) {
        let Some((updates, disabled)) = self.fixed_updates(forward, direction, packet) else {
            return;
        };
        if disabled {
            self.counters.dropped.backend_disabled += 1;
            return;
        }
        for update in updates {
            self.queue_fixed(to, update);
        }
        self.flows.fixed_sent(now, &forward);
        self.replicate(now, &forward);
        self.served(now);
    }

    /// The fixed updates that carry the stored decision for a flow (the return one first),
    /// and whether its backend is disabled (such a flow is not renewed); `None` for an
    /// unknown flow.
    pub(crate) fn fixed_updates(
        &self,
        forward: AffinityKey,
        direction: Direction,
        packet: Option<Vec<u8>>,
    ) -> Option<(Vec<FixedUpdate>, bool)> {
        let flow = self.flows.get(&forward)?;
        let svc = &self.services[flow.service];
        let disabled = svc.admin[flow.backend] == AdminState::Disabled;
        let updates = match (direction, flow.return_key) {
            (Direction::Return, Some(r)) => {
                vec![self.stamp.return_fixed(&svc.config, r, packet)]
            }
            (_, return_key) => return_key
                .map(|r| self.stamp.return_fixed(&svc.config, r, None))
                .into_iter()
                .chain([self
                    .stamp
                    .forward_fixed(&svc.config, flow.backend, forward, packet)])
                .collect(),
        };
        Some((updates, disabled))
    }

    /// A notification without packet: FIN or RST closes the flow; anything else renews it.
    fn on_notification(&mut self, now: Timestamp, from: SocketAddr, id: &AffinityIdentifier) {
        let Some(forward) = self.forward_key(&id.key) else {
            self.counters.dropped.unknown_flow += 1;
            return;
        };
        if id.matched.intersects(InterestBits::FIN | InterestBits::RST) {
            self.close_flow(now, &forward);
        } else {
            let direction = if forward == id.key {
                Direction::Forward
            } else {
                Direction::Return
            };
            self.send_fixed(now, from, forward, direction, None);
        }
    }

    /// Starts the sticky time of a flow; the first FIN or RST takes it off the active count.
    fn close_flow(&mut self, now: Timestamp, forward: &AffinityKey) {
        if self.flows.close(now, forward) {
            if let Some(flow) = self.flows.get(forward) {
                self.services[flow.service].active[flow.backend] -= 1;
            }
            self.counters.flows_closed += 1;
            self.replicate(now, forward);
        }
    }

    fn on_deny(&mut self, now: Timestamp, from: SocketAddr, deny: Deny) {
        self.counters.denies += 1;
        let record = self.denies.entry(from).or_insert_with(|| DenyRecord {
            agent: from,
            at: now,
            count: 0,
            denied: Vec::new(),
            affinity: None,
        });
        record.at = now;
        record.count += 1;
        record.denied = deny.denied;
        record.affinity = deny.affinity;
    }

    fn queue_fixed(&mut self, to: SocketAddr, update: FixedUpdate) {
        self.outbox.push_back((to, Message::FixedUpdate(update)));
        self.counters.fixed_updates_sent += 1;
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
