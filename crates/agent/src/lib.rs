//! The forwarding agent of seed 004 as a deterministic state machine.
//!
//! An agent sits on the packet path. Service managers tell it, with *affinities*, which flows
//! they care about and what to do with their packets; the agent matches every frame against
//! those affinities and rewrites, dispatches, drops, holds or hands packets to a manager.
//! The semantics are those of `docs/affinities.md`; this crate is their implementation.
//!
//! ```text
//!  frames ──handle_frame──▶ ┌───────────────────────────────┐ ──Verdict──▶ runtime sends/drops
//!                           │ fixed table ▸ wildcard table  │
//!  service ─handle_datagram▶│ interest ▸ hold ▸ actions     │ ──poll_transmit──▶ service messages
//!  messages                 │ fragment memory, statistics   │ ──poll_packet────▶ IP packets
//!  time ───handle_timeout──▶└───────────────────────────────┘ ──poll_timeout────▶ next deadline
//! ```
//!
//! What it does:
//! - keeps fixed affinities (one flow, exact key) and wildcard affinities (masked classes of
//!   flows) per manager, with precedence ranking and time-to-live expiry accurate to well under
//!   a second;
//! - runs the pipeline *fixed match → wildcard match → interest criteria → affinity handling*
//!   on each frame, rewriting it in place (NAT, sequence-number adjust, TTL decrement) and saying
//!   where it must go;
//! - notifies managers (interest matches), sends them packets, copies them, or holds packets
//!   until a fixed affinity arrives; executes packets managers send back;
//! - refuses updates it cannot honour with an affinity update-deny, and authenticates every
//!   service message through [`tether_proto::Codec`];
//! - counts everything, per affinity and per forward address.
//!
//! What it does not do: no I/O and no clock. It opens no socket, reads no time (every input
//! carries a [`Timestamp`]), resolves no next-hop MAC address and announces no route; the
//! runtime does those with what the agent returns. It never answers a packet with a reset.
//! The established-flow path (fixed match, NAT, forward) allocates nothing and takes no lock
//! (`crates/runtime/tests/no_alloc.rs` proves it with a counting allocator).
#![forbid(unsafe_code)]

mod actions;
mod control;
mod fragments;
mod hold;
mod interest;
mod local;
mod pipeline;
mod stats;
mod tables;

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::{HashMap, VecDeque};

use foldhash::fast::FixedState;
use tether_proto::{
    AdvertiseAction, AuthConfig, Codec, CodecCounters, Identity, Message, Timestamp, Transmit,
    WildcardAffinity,
};
use tether_wire::AffinityKey;

pub use stats::{AgentStats, DropReason, LabelCounts, TrafficStats};

use fragments::FragmentMemory;
use hold::HoldBuffer;
use local::Reports;
use tables::fixed::FixedTable;
use tables::wildcard::WildcardTable;

/// The hash maps of the agent: foldhash, seeded from the configuration so a run is repeatable.
type Map<K, V> = HashMap<K, V, FixedState>;

/// Which actions this agent performs; updates that need others are denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupportedActions {
    /// NAT action.
    pub nat: bool,
    /// Sequence number adjust action.
    pub sequence_adjust: bool,
    /// Interest criteria action.
    pub interest: bool,
    /// Advertise action; off until the runtime can announce routes.
    pub advertise: bool,
    /// Consistent-hash action: place new flows locally and report them.
    pub consistent_hash: bool,
}

impl Default for SupportedActions {
    fn default() -> Self {
        Self {
            nat: true,
            sequence_adjust: true,
            interest: true,
            advertise: false,
            consistent_hash: true,
        }
    }
}

/// Everything an agent is configured with.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Host name sent in identity segments.
    pub name: String,
    /// Address sent in identity segments.
    pub addr: IpAddr,
    /// How service messages are signed and checked.
    pub auth: AuthConfig,
    /// Outgoing security sequence numbers start after this (the runtime derives it from the
    /// wall clock so a restarted agent is not taken for a replay).
    pub initial_sequence: u64,
    /// Packets the hold buffer keeps at most.
    pub hold_capacity: usize,
    /// How long a held packet waits for its fixed affinity before it is dropped.
    pub hold_time: Duration,
    /// Fixed affinities kept at most; further ones are discarded and counted.
    pub max_fixed_affinities: usize,
    /// How long the affinity of a first fragment is remembered for the later fragments.
    pub fragment_memory: Duration,
    /// Datagrams whose first fragment is remembered at most.
    pub fragment_capacity: usize,
    /// Actions this agent performs.
    pub supported: SupportedActions,
    /// Seed of the agent's hash maps.
    pub hash_seed: u64,
}

impl AgentConfig {
    /// A configuration with Tether's defaults for everything but the identity.
    pub fn new(name: impl Into<String>, addr: IpAddr) -> Self {
        Self {
            name: name.into(),
            addr,
            auth: AuthConfig::default(),
            initial_sequence: 0,
            hold_capacity: 1024,
            hold_time: Duration::from_secs(2),
            max_fixed_affinities: 1 << 20,
            fragment_memory: Duration::from_secs(5),
            fragment_capacity: 4096,
            supported: SupportedActions::default(),
            hash_seed: 0,
        }
    }
}

/// What the runtime must do with a frame it handed to [`Agent::handle_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame towards `Route::next_hop`.
    Forward(Route),
    /// Discard the frame; the reason is counted.
    Drop(DropReason),
    /// The packet went to a manager inside an interest match; discard the frame.
    ToManager,
    /// The agent kept a copy of the packet until a manager decides; discard the frame.
    Held,
    /// No affinity covers the packet: leave it to the host's normal routing.
    NotOurs,
}

/// Where a forwarded packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// The forward address when dispatched, else the packet's (rewritten) destination.
    pub next_hop: IpAddr,
    /// Whether the packet is dispatched to a forward address other than its destination.
    pub dispatched: bool,
}

/// An IP packet (no link-layer header) the agent wants sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutPacket {
    /// The IP packet, already rewritten.
    pub packet: Vec<u8>,
    /// Where it goes.
    pub route: Route,
}

/// A fixed affinity as the agent holds it, for status pages and tests.
#[derive(Clone, Copy, Debug)]
pub struct FixedView<'a> {
    /// The flow.
    pub key: &'a AffinityKey,
    /// The manager that installed it.
    pub manager: SocketAddr,
    /// When it expires unless refreshed.
    pub expires: Timestamp,
    /// Packets and bytes handled under it.
    pub traffic: TrafficStats,
}

/// A wildcard affinity as the agent holds it, for status pages and tests.
#[derive(Clone, Copy, Debug)]
pub struct WildcardView<'a> {
    /// The wildcard as last sent.
    pub affinity: &'a WildcardAffinity,
    /// The manager that installed it.
    pub manager: SocketAddr,
    /// When it expires unless refreshed.
    pub expires: Timestamp,
    /// Packets and bytes handled under it.
    pub traffic: TrafficStats,
}

/// The forwarding agent: affinity tables, packet pipeline, and the service-message endpoint.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    identity: Identity,
    codec: Codec,
    fixed: FixedTable,
    wildcards: WildcardTable,
    hold: HoldBuffer,
    fragments: FragmentMemory,
    address_stats: Map<IpAddr, TrafficStats>,
    /// Messages to send, sealed when polled.
    outbox: VecDeque<(SocketAddr, Message)>,
    /// Flow reports being batched; sent after the outbox.
    reports: Reports,
    packets: VecDeque<OutPacket>,
    stats: AgentStats,
}

impl Agent {
    /// A new agent with empty tables. `now` is accepted for symmetry with the other inputs;
    /// nothing is scheduled until affinities arrive.
    pub fn new(config: AgentConfig, now: Timestamp) -> Self {
        let _ = now;
        let hasher = FixedState::with_seed(config.hash_seed);
        Self {
            identity: Identity {
                addr: config.addr,
                name: config.name.clone(),
            },
            codec: Codec::new(config.auth.clone(), config.initial_sequence),
            fixed: FixedTable::new(config.max_fixed_affinities, hasher),
            wildcards: WildcardTable::default(),
            hold: HoldBuffer::new(config.hold_capacity, config.hold_time),
            fragments: FragmentMemory::new(
                config.fragment_memory,
                config.fragment_capacity,
                hasher,
            ),
            address_stats: Map::with_hasher(hasher),
            outbox: VecDeque::new(),
            reports: Reports::default(),
            packets: VecDeque::new(),
            stats: AgentStats::default(),
            config,
        }
    }

    /// The configuration the agent runs with.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// Expires affinities, held packets and fragment memory whose time has come.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.fixed.expire(now);
        for manager in self.wildcards.expire(now) {
            self.drop_unsupported_fixed(manager, now);
        }
        let timed_out = self.hold.expire(now);
        for _ in 0..timed_out {
            self.stats.drops.add(DropReason::HoldTimeout.reason());
        }
        self.fragments.expire(now);
        self.refresh_gauges();
    }

    /// The next time [`Agent::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [
            self.fixed.next_deadline(),
            self.wildcards.next_deadline(),
            self.hold.next_deadline(),
            self.fragments.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next service message to send. Flow reports come after every other queued message:
    /// the events of the frames handled since the last call travel together.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let (dest, message) = self.next_message()?;
        let payload = self.codec.seal(&message);
        Some(Transmit { dest, payload })
    }

    fn next_message(&mut self) -> Option<(SocketAddr, Message)> {
        if let Some(next) = self.outbox.pop_front() {
            return Some(next);
        }
        let next = self.reports.pop()?;
        self.stats.flow_reports += 1;
        self.stats.messages_out += 1;
        Some(next)
    }

    /// The next IP packet to send: returned by a manager or released from the hold buffer.
    pub fn poll_packet(&mut self) -> Option<OutPacket> {
        self.packets.pop_front()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> &AgentStats {
        &self.stats
    }

    /// Counters of the authenticating codec.
    pub fn codec_counters(&self) -> CodecCounters {
        self.codec.counters()
    }

    /// Traffic kept for a forward address (affinities with the information flag).
    pub fn address_stats(&self, forward: IpAddr) -> Option<TrafficStats> {
        self.address_stats.get(&forward).copied()
    }

    /// The fixed affinities the agent holds, in no particular order.
    pub fn fixed_affinities(&self) -> impl Iterator<Item = FixedView<'_>> {
        self.fixed.views()
    }

    /// The wildcard affinities the agent holds, best precedence first.
    pub fn wildcard_affinities(&self) -> impl Iterator<Item = WildcardView<'_>> {
        self.wildcards.views()
    }

    /// The prefixes the runtime should announce (advertise actions of live wildcards).
    pub fn advertised(&self) -> impl Iterator<Item = AdvertiseAction> + '_ {
        self.wildcards.advertised()
    }

    /// Deletes `manager`'s fixed affinities that no remaining wildcard of it supports.
    fn drop_unsupported_fixed(&mut self, manager: SocketAddr, now: Timestamp) {
        let wildcards = &self.wildcards;
        let removed = self
            .fixed
            .retain_manager(manager, |key| wildcards.supports(manager, key, now));
        self.stats.fixed_deleted_with_wildcard += removed as u64;
    }

    /// Brings the table-size gauges of [`AgentStats`] up to date.
    fn refresh_gauges(&mut self) {
        self.stats.fixed_affinities = self.fixed.len();
        self.stats.wildcard_affinities = self.wildcards.len();
        self.stats.held_packets = self.hold.len();
    }
}
