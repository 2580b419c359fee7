//! Local decisions (`docs/affinities.md`, "Local decisions"): a wildcard with a consistent-hash
//! action lets the agent place a new flow itself, on the backend the manager's Maglev table
//! gives for the flow's 5-tuple, instead of sending its first packet to the manager and waiting
//! for the answer. The agent installs the fixed affinities the manager would have sent, and
//! reports the placement (and later the flow's FIN or RST) to the manager in batched flow
//! reports, so the manager still stores and replicates every flow.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::VecDeque;

use tether_proto::maglev::Maglev;
use tether_proto::{
    ConsistentHash, FlowEvent, FlowReport, HashBackend, MAX_REPLICATION_DATAGRAM, Message,
    Timestamp,
};
use tether_wire::AffinityKey;
use tether_wire::nat::Rewrite;
use tether_wire::packet::{PacketInfo, Transport, tcp_flags};

use crate::tables::fixed::{FixedTable, Upsert};
use crate::tables::wildcard::WildcardTable;
use crate::tables::{Affinity, Behaviour};
use crate::{AgentStats, interest};

/// A consistent-hash action and the table built from it.
#[derive(Clone, Debug)]
pub(crate) struct LocalTable {
    action: ConsistentHash,
    table: Maglev,
}

impl LocalTable {
    /// The table of `action`; a copy of `previous` when it was built from the same action (a
    /// wildcard refresh), so the table is rebuilt only when the manager changed it.
    pub(crate) fn build(action: ConsistentHash, previous: Option<&Self>) -> Self {
        if let Some(p) = previous.filter(|p| p.action == action) {
            return p.clone();
        }
        let permutations = action.backends.iter().map(|b| b.permutation).collect();
        let weights = action.backends.iter().map(|b| b.weight).collect();
        let mut table = Maglev::from_permutations(action.table_size, permutations, weights);
        let eligible: Vec<bool> = action.backends.iter().map(|b| b.eligible).collect();
        table.set_eligible(&eligible);
        Self { action, table }
    }

    /// The backend for flow `key`, or `None` when no backend is eligible.
    fn backend(&self, key: &AffinityKey) -> Option<HashBackend> {
        self.table.pick(key).map(|i| self.action.backends[i])
    }
}

/// What a fixed affinity the agent made itself remembers: the flow it belongs to and where its
/// events are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    /// The flow's forward (client to VIP) key.
    pub forward: AffinityKey,
    /// Where the flow's events go (the wildcard's interest address).
    pub report_to: SocketAddr,
}

/// Whether a packet may start a flow the agent places: a TCP SYN without ACK, or a UDP datagram
/// (not a fragment: only a whole datagram or a first fragment has ports, and fragments follow
/// their first fragment's affinity).
#[inline]
pub(crate) fn starts_flow(info: &PacketInfo) -> bool {
    info.fragment.is_none()
        && match info.transport {
            Transport::Tcp { flags, .. } => {
                flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
            }
            Transport::Udp { .. } => true,
            _ => false,
        }
}

/// Whether a packet is a TCP SYN without ACK.
#[inline]
pub(crate) fn is_syn(info: &PacketInfo) -> bool {
    matches!(info.transport, Transport::Tcp { flags, .. }
        if flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN)
}

/// Whether a packet is a TCP FIN or RST.
#[inline]
pub(crate) fn ends_flow(info: &PacketInfo) -> bool {
    matches!(info.transport, Transport::Tcp { flags, .. }
        if flags & (tcp_flags::FIN | tcp_flags::RST) != 0)
}

/// Places flow `key` by the consistent-hash action of the best wildcard matching it: installs
/// its fixed affinities (in NAT mode the return one too) and reports the placement. Returns the
/// manager the affinities belong to, or `None` when the agent cannot decide (no such wildcard,
/// no eligible backend, no return wildcard yet, or a full table) and the packet must take the
/// ordinary way to the manager.
pub(crate) fn place(
    fixed: &mut FixedTable,
    wildcards: &mut WildcardTable,
    reports: &mut Reports,
    stats: &mut AgentStats,
    key: &AffinityKey,
    now: Timestamp,
) -> Option<SocketAddr> {
    let (_, wildcard) = wildcards.best_mut(key, now)?;
    let local = wildcard.behaviour.local.as_ref()?;
    let Some(backend) = local.backend(key) else {
        stats.local_no_backend += 1;
        return None;
    };
    let manager = wildcard.manager;
    let rank = wildcard.rank;
    let dispatch = local.action.dispatch;
    let expires = now + Duration::from_secs(u64::from(local.action.fixed_ttl));
    let report_to = wildcard
        .behaviour
        .interest
        .as_ref()
        .map_or(manager, |c| interest::destination(c, manager));
    let placed = Placed {
        forward: *key,
        report_to,
    };
    let return_key = (!dispatch).then_some(AffinityKey {
        protocol: key.protocol,
        src: backend.addr,
        src_port: backend.port,
        dst: key.src,
        dst_port: key.src_port,
    });
    if let Some(r) = &return_key
        && !wildcards.supports(manager, r, now)
    {
        stats.local_no_return_wildcard += 1;
        return None;
    }
    let forward = Behaviour::placed(
        dispatch,
        backend.addr,
        (!dispatch).then_some(Rewrite {
            src: None,
            src_port: None,
            dst: Some(backend.addr),
            dst_port: Some(backend.port),
        }),
        placed,
    );
    if fixed.upsert(*key, Affinity::new(manager, rank, forward, expires)) == Upsert::Full {
        stats.fixed_discarded_table_full += 1;
        return None;
    }
    if let Some(r) = return_key {
        let reply = Behaviour::placed(
            false,
            key.src,
            Some(Rewrite {
                src: Some(key.dst),
                src_port: Some(key.dst_port),
                dst: None,
                dst_port: None,
            }),
            placed,
        );
        if fixed.upsert(r, Affinity::new(manager, rank, reply, expires)) == Upsert::Full {
            stats.fixed_discarded_table_full += 1;
        }
    }
    stats.placed_locally += 1;
    reports.push(
        report_to,
        FlowEvent::Placed {
            key: *key,
            backend: backend.addr,
            port: backend.port,
        },
        stats,
    );
    Some(manager)
}

/// Flow events waiting to be sent, one batch per manager. A batch goes out when it is full or
/// when the runtime next drains the agent's messages (after every batch of frames), so at
/// high rates one datagram carries many events and at low rates none waits.
#[derive(Debug, Default)]
pub(crate) struct Reports {
    /// Batches being filled: destination, events, their encoded bytes.
    open: Vec<(SocketAddr, Vec<FlowEvent>, usize)>,
    /// Full batches.
    full: VecDeque<(SocketAddr, Vec<FlowEvent>)>,
}

/// Largest sealed flow report (fits a 1500-byte MTU with headroom).
const MAX_REPORT_DATAGRAM: usize = MAX_REPLICATION_DATAGRAM;

impl Reports {
    /// Adds `event` to the batch for `to`.
    pub(crate) fn push(&mut self, to: SocketAddr, event: FlowEvent, stats: &mut AgentStats) {
        let len = FlowReport::event_len(&event);
        stats.flow_events += 1;
        let i = self
            .open
            .iter()
            .position(|(dest, _, _)| *dest == to)
            .unwrap_or_else(|| {
                self.open.push((to, Vec::new(), FlowReport::OVERHEAD));
                self.open.len() - 1
            });
        let batch = &mut self.open[i];
        if batch.2 + len > MAX_REPORT_DATAGRAM {
            let events = core::mem::take(&mut batch.1);
            batch.2 = FlowReport::OVERHEAD;
            self.full.push_back((to, events));
        }
        batch.1.push(event);
        batch.2 += len;
    }

    /// The next batch to send: full ones first, then whatever is open.
    pub(crate) fn pop(&mut self) -> Option<(SocketAddr, Message)> {
        let (to, events) = self.full.pop_front().or_else(|| {
            let (to, events, _) = self.open.pop()?;
            Some((to, events))
        })?;
        Some((to, Message::FlowReport(FlowReport { events })))
    }

    /// Records that a FIN or RST passed an affinity the agent made for a flow; once per
    /// affinity (`reported` is its flag).
    pub(crate) fn closed(&mut self, placed: &Placed, reported: &mut bool, stats: &mut AgentStats) {
        if !*reported {
            *reported = true;
            self.push(
                placed.report_to,
                FlowEvent::Closed {
                    key: placed.forward,
                },
                stats,
            );
        }
    }
}

/// The address family check of a consistent-hash action: every backend of the wildcard's
/// family, so the agent never translates across families.
pub(crate) fn same_family(action: &ConsistentHash, family_of: IpAddr) -> bool {
    action
        .backends
        .iter()
        .all(|b| b.addr.is_ipv4() == family_of.is_ipv4())
}
