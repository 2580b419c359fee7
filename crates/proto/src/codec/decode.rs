//! Bytes to [`Message`]: segment dispatch, the Required flag, and per-segment field readers.

use tether_wire::AffinityKey;

use crate::model::{
    ActionListEntry, Actions, AdvertiseAction, AffinityIdentifier, ConsistentHash, DeniedAffinity,
    Deny, Envelope, FixedAffinity, FixedUpdate, FlowEvent, FlowRecord, FlowReport, HashBackend,
    Heartbeat, Identity, InterestBits, InterestCriteria, InterestMatch, MAX_HASH_TABLE_SIZE,
    MatchKind, Message, MessageType, NatAction, Replicate, Role, SearchOrder, SegmentType,
    SequenceAdjust, ServicePrecedence, Snapshot, WildcardAffinity, WildcardUpdate,
};

use crate::maglev::{Permutation, is_prime};

use super::DecodeError;
use super::wire::{FLAG_REQUIRED, Frame, RawSegment, Reader};

/// Bit of the affinity flags byte meaning dispatch.
pub(super) const AFFINITY_DISPATCH: u8 = 0x01;
/// Bit of the affinity flags byte meaning information.
pub(super) const AFFINITY_INFORMATION: u8 = 0x02;

/// Bit of a flow record's flags byte meaning closing.
pub(super) const RECORD_CLOSING: u8 = 0x01;
/// Bit of a flow record's flags byte meaning a return key follows the forward key.
pub(super) const RECORD_RETURN_KEY: u8 = 0x02;
/// Bit of a heartbeat's flags byte meaning ready.
pub(super) const HEARTBEAT_READY: u8 = 0x01;
/// Bit of a consistent-hash action's flags byte meaning dispatch (DSR).
pub(super) const HASH_DISPATCH: u8 = 0x01;
/// Bit of a consistent-hash backend's flags byte meaning eligible.
pub(super) const HASH_ELIGIBLE: u8 = 0x01;
/// Flow report event kind: placed.
pub(super) const EVENT_PLACED: u8 = 1;
/// Flow report event kind: closed.
pub(super) const EVENT_CLOSED: u8 = 2;

/// A decoded message and what the decoder skipped on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The message.
    pub message: Message,
    /// Optional segments skipped because this endpoint does not know them or they do not
    /// belong in this message type.
    pub skipped_optional: usize,
}

/// Whether a known segment belongs in a message type (the security segment is handled apart).
fn allowed(message: MessageType, segment: SegmentType) -> bool {
    use SegmentType as S;
    let envelope = matches!(
        segment,
        S::IdentityInfo | S::ManagerInterestData | S::AgentInterestData
    );
    match message {
        MessageType::AffinityUpdateWildcard => {
            envelope
                || matches!(
                    segment,
                    S::WildcardAffinity
                        | S::ActionList
                        | S::ServicePrecedence
                        | S::BackupPrecedence
                        | S::ActionNat
                        | S::ActionAdvertise
                        | S::ActionSequenceAdjust
                        | S::ActionInterestCriteria
                        | S::ActionConsistentHash
                )
        }
        MessageType::AffinityUpdateFixed => {
            envelope
                || matches!(
                    segment,
                    S::FixedAffinity
                        | S::ServicePrecedence
                        | S::BackupPrecedence
                        | S::ActionNat
                        | S::ActionSequenceAdjust
                        | S::ActionInterestCriteria
                        | S::IpPacket
                )
        }
        MessageType::AffinityUpdateDeny => {
            envelope
                || matches!(
                    segment,
                    S::ActionList | S::WildcardAffinity | S::FixedAffinity
                )
        }
        MessageType::InterestMatchWildcard | MessageType::InterestMatchFixed => {
            envelope || matches!(segment, S::AffinityIdentifier | S::IpPacket)
        }
        MessageType::IpPacketOnly => segment == S::IpPacket,
        MessageType::Replicate => segment == S::Replication,
        MessageType::Heartbeat => segment == S::Heartbeat,
        MessageType::Snapshot => segment == S::Snapshot,
        MessageType::FlowReport => segment == S::FlowReport,
    }
}

/// The segments of one message, interpreted.
#[derive(Default)]
struct Parts {
    seen: u32,
    wildcard: Option<WildcardAffinity>,
    fixed: Option<FixedAffinity>,
    identifier: Option<AffinityIdentifier>,
    service_precedence: Option<ServicePrecedence>,
    backup_precedence: Option<u16>,
    envelope: Envelope,
    actions: Actions,
    action_list: Option<Vec<ActionListEntry>>,
    packet: Option<Vec<u8>>,
    replicate: Option<Replicate>,
    heartbeat: Option<Heartbeat>,
    snapshot: Option<Snapshot>,
    report: Option<FlowReport>,
    skipped_optional: usize,
}

/// Decodes the segments of a framed message into a [`Message`].
pub(super) fn message(frame: Frame<'_>) -> Result<Decoded, DecodeError> {
    let message_type = frame.message_type;
    let mut parts = Parts::default();
    for raw in frame.segments {
        let raw = raw?;
        match SegmentType::from_u8(raw.kind) {
            Some(SegmentType::Security) => {
                return Err(DecodeError::MisplacedSecurity { offset: raw.offset });
            }
            Some(segment) if allowed(message_type, segment) => {
                let bit = 1u32 << (segment as u8);
                if parts.seen & bit != 0 {
                    return Err(DecodeError::DuplicateSegment {
                        segment,
                        offset: raw.offset,
                    });
                }
                parts.seen |= bit;
                parts.read(&raw, segment)?;
            }
            _ if raw.required => {
                if matches!(
                    message_type,
                    MessageType::IpPacketOnly
                        | MessageType::Replicate
                        | MessageType::Heartbeat
                        | MessageType::Snapshot
                        | MessageType::FlowReport
                ) {
                    return Err(DecodeError::UnsupportedRequired { segment: raw.kind });
                }
                if !parts.envelope.unsupported_required.contains(&raw.kind) {
                    parts.envelope.unsupported_required.push(raw.kind);
                }
            }
            _ => parts.skipped_optional += 1,
        }
    }
    let skipped_optional = parts.skipped_optional;
    Ok(Decoded {
        message: parts.assemble(message_type)?,
        skipped_optional,
    })
}

impl Parts {
    /// Interprets one allowed, first-seen segment.
    fn read(&mut self, raw: &RawSegment<'_>, segment: SegmentType) -> Result<(), DecodeError> {
        let mut r = Reader::new(raw, segment);
        match segment {
            SegmentType::WildcardAffinity => self.wildcard = Some(wildcard(&mut r)?),
            SegmentType::FixedAffinity => self.fixed = Some(fixed(&mut r)?),
            SegmentType::AffinityIdentifier => self.identifier = Some(identifier(&mut r)?),
            SegmentType::ServicePrecedence => {
                let at = r.offset();
                let search_order = match r.u8("search order")? {
                    0 => SearchOrder::HigherFirst,
                    1 => SearchOrder::LowerFirst,
                    found => return Err(DecodeError::BadSearchOrder { found, offset: at }),
                };
                let value = r.u16("precedence value")?;
                self.service_precedence = Some(ServicePrecedence {
                    search_order,
                    value,
                });
            }
            SegmentType::BackupPrecedence => {
                self.backup_precedence = Some(r.u16("backup precedence value")?);
            }
            SegmentType::Replication => self.replicate = Some(replication(&mut r)?),
            SegmentType::Heartbeat => self.heartbeat = Some(heartbeat(&mut r)?),
            SegmentType::Snapshot => self.snapshot = Some(snapshot(&mut r)?),
            SegmentType::FlowReport => self.report = Some(flow_report(&mut r)?),
            SegmentType::ActionConsistentHash => {
                self.actions.consistent_hash = Some(consistent_hash(&mut r)?);
            }
            SegmentType::ManagerInterestData => {
                self.envelope.manager_data = Some(r.rest().to_vec());
                return Ok(());
            }
            SegmentType::AgentInterestData => {
                self.envelope.agent_data = Some(r.rest().to_vec());
                return Ok(());
            }
            SegmentType::IpPacket => {
                self.packet = Some(r.rest().to_vec());
                return Ok(());
            }
            SegmentType::IdentityInfo => {
                let addr = r.addr("address")?;
                let at = r.offset();
                let name = core::str::from_utf8(r.rest())
                    .map_err(|_| DecodeError::InvalidName { offset: at })?;
                self.envelope.identity = Some(Identity {
                    addr,
                    name: name.to_owned(),
                });
                return Ok(());
            }
            SegmentType::ActionNat => self.actions.nat = Some(nat(&mut r)?),
            SegmentType::ActionAdvertise => self.actions.advertise = Some(advertise(&mut r)?),
            SegmentType::ActionSequenceAdjust => {
                self.actions.sequence_adjust = Some(SequenceAdjust {
                    seq_delta: r.u32("sequence delta")?,
                    initial_seq: r.u32("initial sequence")?,
                    ack_delta: r.u32("ack delta")?,
                    initial_ack: r.u32("initial ack")?,
                });
            }
            SegmentType::ActionInterestCriteria => self.actions.interest = Some(interest(&mut r)?),
            SegmentType::ActionList => {
                self.action_list = Some(action_list(raw)?);
                return Ok(());
            }
            SegmentType::Security => {
                return Err(DecodeError::MisplacedSecurity { offset: raw.offset });
            }
        }
        r.finish()
    }

    /// Builds the message of `message_type`, checking that its required segments are there.
    fn assemble(self, message_type: MessageType) -> Result<Message, DecodeError> {
        let missing = |segment| DecodeError::MissingSegment {
            message: message_type,
            segment,
        };
        Ok(match message_type {
            MessageType::AffinityUpdateWildcard => Message::WildcardUpdate(WildcardUpdate {
                affinity: self
                    .wildcard
                    .ok_or_else(|| missing(SegmentType::WildcardAffinity))?,
                actions: self.actions,
                action_list: self.action_list.unwrap_or_default(),
                service_precedence: self.service_precedence,
                backup_precedence: self.backup_precedence,
                envelope: self.envelope,
            }),
            MessageType::AffinityUpdateFixed => Message::FixedUpdate(FixedUpdate {
                affinity: self
                    .fixed
                    .ok_or_else(|| missing(SegmentType::FixedAffinity))?,
                actions: self.actions,
                service_precedence: self.service_precedence,
                backup_precedence: self.backup_precedence,
                envelope: self.envelope,
                packet: self.packet,
            }),
            MessageType::AffinityUpdateDeny => {
                let affinity = match (self.wildcard, self.fixed) {
                    (Some(_), Some(_)) => return Err(DecodeError::ConflictingAffinities),
                    (Some(w), None) => Some(DeniedAffinity::Wildcard(w)),
                    (None, Some(f)) => Some(DeniedAffinity::Fixed(f)),
                    (None, None) => None,
                };
                Message::Deny(Deny {
                    denied: self
                        .action_list
                        .ok_or_else(|| missing(SegmentType::ActionList))?,
                    affinity,
                    envelope: self.envelope,
                })
            }
            MessageType::InterestMatchWildcard | MessageType::InterestMatchFixed => {
                Message::InterestMatch(InterestMatch {
                    kind: if message_type == MessageType::InterestMatchWildcard {
                        MatchKind::Wildcard
                    } else {
                        MatchKind::Fixed
                    },
                    identifier: self
                        .identifier
                        .ok_or_else(|| missing(SegmentType::AffinityIdentifier))?,
                    envelope: self.envelope,
                    packet: self.packet,
                })
            }
            MessageType::IpPacketOnly => {
                Message::IpPacketOnly(self.packet.ok_or_else(|| missing(SegmentType::IpPacket))?)
            }
            MessageType::Replicate => Message::Replicate(
                self.replicate
                    .ok_or_else(|| missing(SegmentType::Replication))?,
            ),
            MessageType::Heartbeat => Message::Heartbeat(
                self.heartbeat
                    .ok_or_else(|| missing(SegmentType::Heartbeat))?,
            ),
            MessageType::Snapshot => Message::Snapshot(
                self.snapshot
                    .ok_or_else(|| missing(SegmentType::Snapshot))?,
            ),
            MessageType::FlowReport => Message::FlowReport(
                self.report
                    .ok_or_else(|| missing(SegmentType::FlowReport))?,
            ),
        })
    }
}

/// Replication segment body: stream sequence, record count, records.
fn replication(r: &mut Reader<'_>) -> Result<Replicate, DecodeError> {
    let stream_seq = r.u64("stream sequence")?;
    let flows = records(r)?;
    Ok(Replicate { stream_seq, flows })
}

/// Snapshot segment body: id, base sequence, part, parts, record count, records.
fn snapshot(r: &mut Reader<'_>) -> Result<Snapshot, DecodeError> {
    let id = r.u32("snapshot id")?;
    let base_seq = r.u64("base sequence")?;
    let part = r.u32("part")?;
    let parts = r.u32("parts")?;
    Ok(Snapshot {
        id,
        base_seq,
        part,
        parts,
        flows: records(r)?,
    })
}

/// A record count and that many flow records.
fn records(r: &mut Reader<'_>) -> Result<Vec<FlowRecord>, DecodeError> {
    let count = r.u16("record count")?;
    // No allocation ahead of the bytes: each record takes at least 20 of them.
    let mut flows = Vec::new();
    for _ in 0..count {
        let flags = r.u8("record flags")?;
        let age = r.u32("age")?;
        let key = key(r)?;
        let return_key = if flags & RECORD_RETURN_KEY == 0 {
            None
        } else {
            Some(self::key(r)?)
        };
        flows.push(FlowRecord {
            key,
            return_key,
            service: name(r)?,
            backend: name(r)?,
            age,
            closing: flags & RECORD_CLOSING != 0,
        });
    }
    Ok(flows)
}

/// A flow key inside a flow record.
fn key(r: &mut Reader<'_>) -> Result<AffinityKey, DecodeError> {
    let protocol = r.u8("protocol")?;
    let src_port = r.u16("source port")?;
    let dst_port = r.u16("destination port")?;
    Ok(AffinityKey {
        protocol,
        src: r.addr("source address")?,
        src_port,
        dst: r.addr("destination address")?,
        dst_port,
    })
}

/// A length-prefixed UTF-8 name inside a flow record.
fn name(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let len = usize::from(r.u16("name length")?);
    let at = r.offset();
    let bytes = r.bytes(len, "name")?;
    core::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::InvalidName { offset: at })
}

/// Flow report segment body: event count, events.
fn flow_report(r: &mut Reader<'_>) -> Result<FlowReport, DecodeError> {
    let count = r.u16("event count")?;
    // No allocation ahead of the bytes: each event takes at least 16 of them.
    let mut events = Vec::new();
    for _ in 0..count {
        let at = r.offset();
        let event = match r.u8("event kind")? {
            EVENT_PLACED => {
                let key = key(r)?;
                let port = r.u16("backend port")?;
                FlowEvent::Placed {
                    key,
                    backend: r.addr("backend address")?,
                    port,
                }
            }
            EVENT_CLOSED => FlowEvent::Closed { key: key(r)? },
            found => return Err(DecodeError::BadFlowEvent { found, offset: at }),
        };
        events.push(event);
    }
    Ok(FlowReport { events })
}

/// Consistent-hash action body, checked so that an agent can always build its table.
fn consistent_hash(r: &mut Reader<'_>) -> Result<ConsistentHash, DecodeError> {
    let bad = |problem, offset| DecodeError::BadConsistentHash { problem, offset };
    let flags = r.u8("flags")?;
    r.u8("reserved")?;
    let at = r.offset();
    let count = r.u16("backend count")?;
    if count == 0 {
        return Err(bad("it lists no backend", at));
    }
    let at = r.offset();
    let table_size = r.u32("table size")?;
    if !is_prime(table_size) || table_size > MAX_HASH_TABLE_SIZE || table_size <= u32::from(count) {
        return Err(bad(
            "the table size is not a prime above the backend count and at most 1048573",
            at,
        ));
    }
    let fixed_ttl = r.u32("fixed time to live")?;
    let mut backends = Vec::new();
    for _ in 0..count {
        let at = r.offset();
        let flags = r.u8("backend flags")?;
        r.u8("reserved")?;
        let port = r.u16("backend port")?;
        let weight = r.u32("weight")?;
        let offset = r.u32("permutation offset")?;
        let skip = r.u32("permutation skip")?;
        if weight == 0 || offset >= table_size || skip == 0 || skip >= table_size {
            return Err(bad(
                "a backend's weight is 0 or its permutation is outside the table",
                at,
            ));
        }
        backends.push(HashBackend {
            addr: r.addr("backend address")?,
            port,
            weight,
            eligible: flags & HASH_ELIGIBLE != 0,
            permutation: Permutation { offset, skip },
        });
    }
    Ok(ConsistentHash {
        dispatch: flags & HASH_DISPATCH != 0,
        fixed_ttl,
        table_size,
        backends,
    })
}

/// Heartbeat segment body.
fn heartbeat(r: &mut Reader<'_>) -> Result<Heartbeat, DecodeError> {
    let backup_precedence = r.u16("backup precedence")?;
    let at = r.offset();
    let role = match r.u8("role")? {
        0 => Role::Standby,
        1 => Role::Active,
        found => return Err(DecodeError::BadRole { found, offset: at }),
    };
    let flags = r.u8("flags")?;
    Ok(Heartbeat {
        backup_precedence,
        role,
        replicated: r.u64("replicated sequence")?,
        ready: flags & HEARTBEAT_READY != 0,
    })
}

/// Wildcard affinity body.
fn wildcard(r: &mut Reader<'_>) -> Result<WildcardAffinity, DecodeError> {
    let protocol = r.u8("protocol")?;
    let flags = r.u8("flags")?;
    let src_port = r.u16("source port")?;
    let dst_port = r.u16("destination port")?;
    let ttl = r.u32("time to live")?;
    Ok(WildcardAffinity {
        protocol,
        src: r.addr("source address")?,
        src_mask: r.addr("source mask")?,
        src_port,
        dst: r.addr("destination address")?,
        dst_mask: r.addr("destination mask")?,
        dst_port,
        dispatch: flags & AFFINITY_DISPATCH != 0,
        information: flags & AFFINITY_INFORMATION != 0,
        forward: r.addr("forward address")?,
        ttl,
    })
}

/// Fixed affinity body.
fn fixed(r: &mut Reader<'_>) -> Result<FixedAffinity, DecodeError> {
    let protocol = r.u8("protocol")?;
    let flags = r.u8("flags")?;
    let src_port = r.u16("source port")?;
    let dst_port = r.u16("destination port")?;
    let ttl = r.u32("time to live")?;
    let src = r.addr("source address")?;
    let dst = r.addr("destination address")?;
    Ok(FixedAffinity {
        key: AffinityKey {
            protocol,
            src,
            src_port,
            dst,
            dst_port,
        },
        dispatch: flags & AFFINITY_DISPATCH != 0,
        information: flags & AFFINITY_INFORMATION != 0,
        forward: r.addr("forward address")?,
        ttl,
    })
}

/// Affinity identifier body.
fn identifier(r: &mut Reader<'_>) -> Result<AffinityIdentifier, DecodeError> {
    let protocol = r.u8("protocol")?;
    let flags = r.u8("flags")?;
    let src_port = r.u16("source port")?;
    let dst_port = r.u16("destination port")?;
    let matched = InterestBits(r.u16("interest match")?);
    let src = r.addr("source address")?;
    let dst = r.addr("destination address")?;
    Ok(AffinityIdentifier {
        key: AffinityKey {
            protocol,
            src,
            src_port,
            dst,
            dst_port,
        },
        dispatch: flags & AFFINITY_DISPATCH != 0,
        information: flags & AFFINITY_INFORMATION != 0,
        matched,
    })
}

/// NAT action body.
fn nat(r: &mut Reader<'_>) -> Result<NatAction, DecodeError> {
    let src_port = r.u16("source port")?;
    let dst_port = r.u16("destination port")?;
    Ok(NatAction {
        src: r.addr("source address")?,
        src_port,
        dst: r.addr("destination address")?,
        dst_port,
    })
}

/// Advertise action body.
fn advertise(r: &mut Reader<'_>) -> Result<AdvertiseAction, DecodeError> {
    let at = r.offset();
    let prefix_len = r.u8("prefix length")?;
    let addr = r.addr("address")?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(DecodeError::PrefixTooLong {
            prefix_len,
            max,
            offset: at,
        });
    }
    Ok(AdvertiseAction { addr, prefix_len })
}

/// Interest criteria action body.
fn interest(r: &mut Reader<'_>) -> Result<InterestCriteria, DecodeError> {
    let port = r.u16("port")?;
    let mask = InterestBits(r.u16("interest mask")?);
    let data = InterestBits(r.u16("data flags")?);
    let copy = InterestBits(r.u16("copy flags")?);
    let hold = InterestBits(r.u16("hold flags")?);
    Ok(InterestCriteria {
        addr: r.addr("address")?,
        port,
        mask,
        data,
        copy,
        hold,
    })
}

/// Action list body: 2-byte entries of segment type and flags.
fn action_list(raw: &RawSegment<'_>) -> Result<Vec<ActionListEntry>, DecodeError> {
    let (entries, rest) = raw.body.as_chunks::<2>();
    if !rest.is_empty() {
        return Err(DecodeError::RaggedActionList {
            len: raw.body.len(),
            offset: raw.offset + super::wire::SEGMENT_HEADER_LEN,
        });
    }
    Ok(entries
        .iter()
        .map(|&[segment_type, flags]| ActionListEntry {
            segment_type,
            required: flags & FLAG_REQUIRED != 0,
        })
        .collect())
}
