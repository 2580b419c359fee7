//! Service messages from managers: affinity updates (with their deny), packets returned by a
//! manager, and the sealing of everything the agent sends.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::VecDeque;

use tether_proto::{
    ActionListEntry, Actions, DeniedAffinity, Deny, Envelope, FixedUpdate, Message, SegmentType,
    Timestamp, WildcardUpdate,
};
use tether_wire::nat;
use tether_wire::packet::PacketInfo;

use crate::local::{self, LocalTable};
use crate::tables::fixed::Upsert;
use crate::tables::wildcard::Pattern;
use crate::tables::{Affinity, Behaviour, Rank};
use crate::{
    Agent, AgentStats, DropReason, Map, OutPacket, Route, SupportedActions, TrafficStats, actions,
};

impl SupportedActions {
    /// Whether the agent can process segments of type `segment_type`: actions as configured,
    /// other known segments always, unknown ones never.
    pub fn performs(self, segment_type: u8) -> bool {
        match SegmentType::from_u8(segment_type) {
            Some(SegmentType::ActionNat) => self.nat,
            Some(SegmentType::ActionSequenceAdjust) => self.sequence_adjust,
            Some(SegmentType::ActionInterestCriteria) => self.interest,
            Some(SegmentType::ActionAdvertise) => self.advertise,
            Some(SegmentType::ActionConsistentHash) => self.consistent_hash,
            Some(_) => true,
            None => false,
        }
    }

    /// The segments of an update this agent cannot honour: required entries of its action
    /// list, actions it carries (half-executing an affinity would misroute its flow), and
    /// required segments the decoder could not process.
    fn refused(
        self,
        action_list: &[ActionListEntry],
        actions: &Actions,
        envelope: &Envelope,
    ) -> Vec<ActionListEntry> {
        let mut refused: Vec<ActionListEntry> = action_list
            .iter()
            .filter(|e| e.required && !self.performs(e.segment_type))
            .copied()
            .collect();
        let carried = [
            (actions.nat.is_some(), SegmentType::ActionNat),
            (
                actions.sequence_adjust.is_some(),
                SegmentType::ActionSequenceAdjust,
            ),
            (
                actions.interest.is_some(),
                SegmentType::ActionInterestCriteria,
            ),
            (actions.advertise.is_some(), SegmentType::ActionAdvertise),
        ];
        let carried = carried
            .into_iter()
            .filter(|(present, _)| *present)
            .map(|(_, t)| t as u8);
        for segment_type in carried.chain(envelope.unsupported_required.iter().copied()) {
            if !self.performs(segment_type)
                && !refused.iter().any(|e| e.segment_type == segment_type)
            {
                refused.push(ActionListEntry {
                    segment_type,
                    required: true,
                });
            }
        }
        refused
    }
}

/// Queues `message` for `dest`; it is sealed when the runtime polls for it, so sequence
/// numbers follow the order of sending.
pub(crate) fn queue(
    outbox: &mut VecDeque<(SocketAddr, Message)>,
    stats: &mut AgentStats,
    dest: SocketAddr,
    message: Message,
) {
    outbox.push_back((dest, message));
    stats.messages_out += 1;
}

/// Executes `affinity` on a packet a manager sent back (or the hold buffer released) and
/// queues it for `poll_packet`.
fn execute_returned(
    mut packet: Vec<u8>,
    affinity: &mut Affinity,
    address_stats: &mut Map<core::net::IpAddr, TrafficStats>,
    packets: &mut VecDeque<OutPacket>,
    stats: &mut AgentStats,
) {
    let info = match PacketInfo::parse(&packet) {
        Ok(info) => info,
        Err(e) => return stats.drops.add(e.reason()),
    };
    packet.truncate(info.total_len);
    match actions::execute(&mut packet, &info, affinity, address_stats) {
        Ok(route) => {
            stats.packets_out += 1;
            packets.push_back(OutPacket { packet, route });
        }
        Err(reason) => stats.drops.add(reason.reason()),
    }
}

fn lifetime(ttl: u32) -> Duration {
    Duration::from_secs(u64::from(ttl))
}

impl Agent {
    /// Takes one service message datagram from `from` (a manager's UDP address).
    pub fn handle_datagram(&mut self, now: Timestamp, from: SocketAddr, payload: &[u8]) {
        match self.codec.open(payload) {
            Ok(message) => self.handle_message(now, from, message),
            Err(rejection) => self.stats.rejected.add(rejection.reason()),
        }
    }

    /// Acts on an authenticated message from `from`.
    pub(crate) fn handle_message(&mut self, now: Timestamp, from: SocketAddr, message: Message) {
        self.stats.messages_in += 1;
        match message {
            Message::WildcardUpdate(update) => self.on_wildcard_update(now, from, update),
            Message::FixedUpdate(update) => self.on_fixed_update(now, from, update),
            Message::IpPacketOnly(packet) => self.on_ip_packet_only(packet),
            Message::Deny(_)
            | Message::InterestMatch(_)
            | Message::Replicate(_)
            | Message::Heartbeat(_)
            | Message::Snapshot(_)
            | Message::FlowReport(_) => self.stats.unexpected_messages += 1,
        }
        self.refresh_gauges();
    }

    fn on_wildcard_update(&mut self, now: Timestamp, from: SocketAddr, mut u: WildcardUpdate) {
        if !self.config.supported.consistent_hash {
            // An optional action: without it, new flows go to the manager as before.
            u.actions.consistent_hash = None;
        }
        let refused = self
            .config
            .supported
            .refused(&u.action_list, &u.actions, &u.envelope);
        if !refused.is_empty() {
            return self.deny(
                from,
                refused,
                DeniedAffinity::Wildcard(u.affinity),
                u.envelope,
            );
        }
        let Some(pattern) = Pattern::new(&u.affinity) else {
            self.stats.invalid_updates += 1;
            return;
        };
        if u.affinity.ttl == 0 {
            let cancel = Rank::new(u.service_precedence, u.backup_precedence, 0);
            for manager in self.wildcards.cancel(from, &pattern, &cancel) {
                self.drop_unsupported_fixed(manager, now);
            }
            return;
        }
        let w = &u.affinity;
        let mut behaviour = Behaviour::new(
            w.dispatch,
            w.information,
            w.forward,
            &u.actions,
            u.envelope.manager_data,
        );
        if let Some(action) = u.actions.consistent_hash {
            if !local::same_family(&action, w.dst) {
                self.stats.invalid_updates += 1;
                return;
            }
            let previous = self
                .wildcards
                .find(from, &pattern)
                .and_then(|a| a.behaviour.local.as_deref());
            behaviour.local = Some(Box::new(LocalTable::build(action, previous)));
        }
        let rank = Rank::new(u.service_precedence, u.backup_precedence, 0);
        let expires = now + lifetime(w.ttl);
        let affinity = Affinity::new(from, rank, behaviour, expires);
        self.wildcards.upsert(pattern, u.affinity, affinity);
    }

    fn on_fixed_update(&mut self, now: Timestamp, from: SocketAddr, u: FixedUpdate) {
        let refused = self.config.supported.refused(&[], &u.actions, &u.envelope);
        if !refused.is_empty() {
            if u.packet.is_some() {
                self.stats.drops.add(DropReason::UpdateDenied.reason());
            }
            return self.deny(from, refused, DeniedAffinity::Fixed(u.affinity), u.envelope);
        }
        let f = &u.affinity;
        let key = f.key;
        let behaviour = Behaviour::new(
            f.dispatch,
            f.information,
            f.forward,
            &u.actions,
            u.envelope.manager_data,
        );
        let rank = Rank::new(u.service_precedence, u.backup_precedence, 0);
        let mut affinity = Affinity::new(from, rank, behaviour, now + lifetime(f.ttl));
        let Self {
            fixed,
            hold,
            address_stats,
            packets,
            stats,
            ..
        } = self;
        if f.ttl == 0 {
            fixed.cancel(&key, from, &affinity.rank);
            // The manager's last word on the flow still applies to the packet it returns.
            if let Some(packet) = u.packet {
                execute_returned(packet, &mut affinity, address_stats, packets, stats);
            }
            return;
        }
        if !self.wildcards.supports(from, &key, now) {
            stats.fixed_discarded_no_wildcard += 1;
            if u.packet.is_some() {
                stats.drops.add(DropReason::NoSupportingWildcard.reason());
            }
            return;
        }
        if fixed.upsert(key, affinity.clone()) == Upsert::Full {
            // The decision is still valid for the packets at hand; only caching it failed.
            stats.fixed_discarded_table_full += 1;
        }
        let released = hold.release(&key);
        stats.hold_released += released.len() as u64;
        for packet in u.packet.into_iter().chain(released) {
            let target = match fixed.get_mut(&key, from, now) {
                Some(stored) => stored,
                None => &mut affinity,
            };
            execute_returned(packet, target, address_stats, packets, stats);
        }
    }

    /// A packet the manager has dealt with: forwarded by its destination, not matched again.
    fn on_ip_packet_only(&mut self, mut packet: Vec<u8>) {
        let info = match PacketInfo::parse(&packet) {
            Ok(info) => info,
            Err(e) => return self.stats.drops.add(e.reason()),
        };
        packet.truncate(info.total_len);
        match nat::decrement_ttl(&mut packet, &info) {
            Ok(true) => {}
            Ok(false) => return self.stats.drops.add(DropReason::TtlExpired.reason()),
            Err(e) => return self.stats.drops.add(e.reason()),
        }
        let route = Route {
            next_hop: actions::destination(&packet, &info),
            dispatched: false,
        };
        self.stats.packets_out += 1;
        self.packets.push_back(OutPacket { packet, route });
    }

    /// Answers an update with an affinity update-deny naming what could not be processed.
    fn deny(
        &mut self,
        to: SocketAddr,
        denied: Vec<ActionListEntry>,
        affinity: DeniedAffinity,
        envelope: Envelope,
    ) {
        let message = Message::Deny(Deny {
            denied,
            affinity: Some(affinity),
            envelope: Envelope {
                // Copied from the update; our own when it had none, so the manager can say
                // which agent refused.
                identity: envelope.identity.or_else(|| Some(self.identity.clone())),
                unsupported_required: Vec::new(),
                ..envelope
            },
        });
        self.stats.denies_sent += 1;
        queue(&mut self.outbox, &mut self.stats, to, message);
    }
}
