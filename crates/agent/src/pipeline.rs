//! The per-frame pipeline (`docs/affinities.md`, "The agent's pipeline, per packet"):
//! parse, fixed match, wildcard match, interest criteria, affinity handling.

use core::net::SocketAddr;
use std::collections::VecDeque;

use tether_proto::{
    AffinityIdentifier, Envelope, Identity, InterestBits, InterestMatch, MatchKind, Message,
    Timestamp,
};
use tether_wire::packet::{self, PacketInfo};
use tether_wire::{AffinityKey, Layer, WireError};

use crate::fragments::{AffinityRef, DatagramId, FragmentMemory};
use crate::interest::{self, Interest};
use crate::tables::Affinity;
use crate::tables::fixed::FixedTable;
use crate::tables::wildcard::WildcardTable;
use crate::{Agent, AgentStats, DropReason, Verdict, actions, control, local};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

impl Agent {
    /// Runs one Ethernet frame through the pipeline, rewriting it in place.
    pub fn handle_frame(&mut self, now: Timestamp, frame: &mut [u8]) -> Verdict {
        self.stats.frames_in += 1;
        let verdict = self.frame_verdict(now, frame);
        match verdict {
            Verdict::Forward(_) => self.stats.forwarded += 1,
            Verdict::Drop(reason) => self.stats.drops.add(reason.reason()),
            Verdict::ToManager => self.stats.to_manager += 1,
            Verdict::Held => {
                self.stats.held += 1;
                self.stats.held_packets = self.hold.len();
            }
            Verdict::NotOurs => self.stats.not_ours += 1,
        }
        verdict
    }

    #[inline]
    fn frame_verdict(&mut self, now: Timestamp, frame: &mut [u8]) -> Verdict {
        let meta = match packet::parse_ethernet(frame) {
            Ok(meta) => meta,
            // ARP, LLDP and the like belong to the host.
            Err(WireError::UnsupportedEtherType(_)) => return Verdict::NotOurs,
            Err(e) => return Verdict::Drop(e.into()),
        };
        let (version, layer) = match meta.ethertype {
            ETHERTYPE_IPV4 => (4, Layer::Ipv4),
            ETHERTYPE_IPV6 => (6, Layer::Ipv6),
            _ => return Verdict::NotOurs,
        };
        let Some(ip) = frame.get_mut(meta.l3_offset..) else {
            return Verdict::Drop(WireError::Truncated(Layer::Ethernet).into());
        };
        match ip.first() {
            None => return Verdict::Drop(WireError::Truncated(layer).into()),
            Some(first) if first >> 4 != version => {
                return Verdict::Drop(WireError::BadVersion.into());
            }
            Some(_) => {}
        }
        let info = match PacketInfo::parse(ip) {
            Ok(info) => info,
            Err(e) => return Verdict::Drop(e.into()),
        };
        // Ethernet pads short frames; the packet ends where its header says.
        let Some(ip) = ip.get_mut(..info.total_len) else {
            return Verdict::Drop(WireError::BadTotalLength.into());
        };
        self.packet_verdict(now, ip, &info)
    }

    #[inline]
    fn packet_verdict(&mut self, now: Timestamp, ip: &mut [u8], info: &PacketInfo) -> Verdict {
        self.decide(now, ip, info, true)
    }

    /// The pipeline from the affinity match on; `local_decisions` off when the agent has just
    /// failed to place the packet's flow itself.
    #[inline]
    fn decide(
        &mut self,
        now: Timestamp,
        ip: &mut [u8],
        info: &PacketInfo,
        local_decisions: bool,
    ) -> Verdict {
        let key = info.lookup_key();
        let Self {
            fixed,
            wildcards,
            fragments,
            hold,
            outbox,
            reports,
            stats,
            address_stats,
            identity,
            ..
        } = self;
        let Some((found, affinity)) = locate(fixed, wildcards, fragments, &key, info, now) else {
            if wildcards.is_advertised(info.dst, now) {
                return Verdict::Drop(DropReason::AdvertisedUnmatched);
            }
            return Verdict::NotOurs;
        };
        // Local decisions: a new flow under a wildcard with a consistent-hash action, or a SYN
        // on a flow the agent placed (a new connection reusing the 5-tuple, or a retransmission:
        // the table gives the same backend unless it changed). The packet's flags are tested
        // first, so an established flow's packet pays one test.
        let place = local_decisions
            && match found {
                Found::Wildcard(_) => {
                    local::starts_flow(info) && affinity.behaviour.local.is_some()
                }
                Found::Fixed => local::is_syn(info) && affinity.behaviour.placed.is_some(),
            };
        if place {
            return self.place_locally(now, ip, info, &key);
        }
        if local::ends_flow(info)
            && let Some(placed) = &affinity.behaviour.placed
        {
            reports.closed(placed, &mut affinity.close_reported, stats);
        }
        if let Some(frag) = info.fragment.filter(|f| f.offset == 0 && f.more) {
            // A first fragment was looked up by its own key, never recalled.
            let found = match found {
                Found::Fixed => AffinityRef::Fixed {
                    key,
                    manager: affinity.manager,
                },
                Found::Wildcard(id) => AffinityRef::Wildcard(id),
            };
            fragments.remember(datagram(info, frag.id), found, now);
        }

        let bits = interest::packet_bits(info, &mut affinity.data_seen);
        let decision = affinity
            .behaviour
            .interest
            .as_ref()
            .map_or(Interest::None, |c| interest::decide(c, bits));
        let kind = match found {
            Found::Fixed => MatchKind::Fixed,
            Found::Wildcard(_) => MatchKind::Wildcard,
        };
        let mut out = Outbox { outbox, stats };
        match decision {
            Interest::None => {}
            Interest::Notify(matched) => {
                out.interest_match(identity, affinity, kind, key, matched, None);
            }
            Interest::Copy(matched) => {
                out.stats.copies += 1;
                out.interest_match(identity, affinity, kind, key, matched, Some(ip.to_vec()));
            }
            Interest::Take {
                matched,
                hold: true,
            } if hold.has_room() => {
                hold.hold(key, ip.to_vec(), now);
                out.interest_match(identity, affinity, kind, key, matched, None);
                return Verdict::Held;
            }
            Interest::Take { matched, hold: h } => {
                if h {
                    out.stats.hold_full += 1;
                }
                out.interest_match(identity, affinity, kind, key, matched, Some(ip.to_vec()));
                return Verdict::ToManager;
            }
        }
        match actions::execute(ip, info, affinity, address_stats) {
            Ok(route) => Verdict::Forward(route),
            Err(reason) => Verdict::Drop(reason),
        }
    }

    /// Places the packet's flow by the best wildcard's consistent-hash action and forwards
    /// the packet; if the agent cannot decide, the packet takes the ordinary way.
    #[cold]
    #[inline(never)]
    fn place_locally(
        &mut self,
        now: Timestamp,
        ip: &mut [u8],
        info: &PacketInfo,
        key: &AffinityKey,
    ) -> Verdict {
        let Self {
            fixed,
            wildcards,
            reports,
            stats,
            address_stats,
            ..
        } = self;
        if let Some(manager) = local::place(fixed, wildcards, reports, stats, key, now)
            && let Some(placed) = fixed.get_mut(key, manager, now)
        {
            return match actions::execute(ip, info, placed, address_stats) {
                Ok(route) => Verdict::Forward(route),
                Err(reason) => Verdict::Drop(reason),
            };
        }
        self.decide(now, ip, info, false)
    }
}

/// The datagram a fragment belongs to.
fn datagram(info: &PacketInfo, id: u32) -> DatagramId {
    DatagramId {
        src: info.src,
        dst: info.dst,
        protocol: info.protocol,
        id,
    }
}

/// The kind of affinity [`locate`] found: a fixed one (of the packet's key, or for a later
/// fragment the one its first fragment matched), or a wildcard by id. The packet path builds
/// the full [`AffinityRef`] only for a first fragment, which is rare.
#[derive(Clone, Copy, Debug)]
enum Found {
    Fixed,
    Wildcard(u64),
}

/// Finds the affinity that handles a packet: the remembered one for a later fragment, else the
/// best fixed affinity, else the best wildcard.
#[inline]
fn locate<'a>(
    fixed: &'a mut FixedTable,
    wildcards: &'a mut WildcardTable,
    fragments: &FragmentMemory,
    key: &AffinityKey,
    info: &PacketInfo,
    now: Timestamp,
) -> Option<(Found, &'a mut Affinity)> {
    if let Some(frag) = info.fragment.filter(|f| f.offset != 0) {
        let recalled = fragments.recall(&datagram(info, frag.id), now);
        // Checked before borrowing mutably: the borrow checker cannot yet see that a failed
        // lookup releases its borrow.
        if let Some(r) = recalled.filter(|r| match *r {
            AffinityRef::Fixed { key, manager } => fixed.contains(&key, manager, now),
            AffinityRef::Wildcard(id) => wildcards.contains(id, now),
        }) {
            return match r {
                AffinityRef::Fixed { key, manager } => {
                    fixed.get_mut(&key, manager, now).map(|a| (Found::Fixed, a))
                }
                AffinityRef::Wildcard(id) => {
                    wildcards.get_mut(id, now).map(|a| (Found::Wildcard(id), a))
                }
            };
        }
        // Seen before its first fragment (or after the memory lapsed): the ports are unknown,
        // so only wildcards that accept any port can match.
        let portless = AffinityKey {
            src_port: 0,
            dst_port: 0,
            ..*key
        };
        return wildcards
            .best_mut(&portless, now)
            .map(|(id, a)| (Found::Wildcard(id), a));
    }
    if let Some(a) = fixed.best_mut(key, now) {
        return Some((Found::Fixed, a));
    }
    wildcards
        .best_mut(key, now)
        .map(|(id, a)| (Found::Wildcard(id), a))
}

/// The parts of the agent that send service messages, borrowed apart from the tables.
struct Outbox<'a> {
    outbox: &'a mut VecDeque<(SocketAddr, Message)>,
    stats: &'a mut AgentStats,
}

impl Outbox<'_> {
    /// Sends an interest match about the packet of flow `key` to the affinity's manager.
    fn interest_match(
        &mut self,
        identity: &Identity,
        affinity: &Affinity,
        kind: MatchKind,
        key: AffinityKey,
        matched: InterestBits,
        packet: Option<Vec<u8>>,
    ) {
        let Some(criteria) = &affinity.behaviour.interest else {
            return;
        };
        let message = Message::InterestMatch(InterestMatch {
            kind,
            identifier: AffinityIdentifier {
                key,
                dispatch: affinity.behaviour.dispatch,
                information: affinity.behaviour.information,
                matched,
            },
            envelope: Envelope {
                identity: Some(identity.clone()),
                manager_data: affinity.behaviour.manager_data.clone(),
                agent_data: None,
                unsupported_required: Vec::new(),
            },
            packet,
        });
        self.stats.interest_matches += 1;
        let dest = interest::destination(criteria, affinity.manager);
        control::queue(self.outbox, self.stats, dest, message);
    }
}
