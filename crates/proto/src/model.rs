//! The service messages of seed 004 as Rust values. [`crate::codec`] is the only place that
//! knows their bytes; `docs/protocol.md` specifies them.

use core::net::{IpAddr, Ipv4Addr};

use tether_wire::AffinityKey;

/// Version of the service protocol this crate speaks.
pub const PROTOCOL_VERSION: u8 = 1;

/// The message types of seed 004.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Manager to agents: add, refresh or delete a wildcard affinity.
    AffinityUpdateWildcard = 1,
    /// Manager to an agent: add, refresh or delete a fixed affinity (optionally with a packet).
    AffinityUpdateFixed = 2,
    /// Agent to manager: an affinity update was rejected; names the segments it could not process.
    AffinityUpdateDeny = 3,
    /// Agent to manager: a packet matched a wildcard affinity's interest criteria.
    InterestMatchWildcard = 4,
    /// Agent to manager: a packet matched a fixed affinity's interest criteria.
    InterestMatchFixed = 5,
    /// Either way: an IP packet to forward without matching it again.
    IpPacketOnly = 6,
    /// Manager to manager: fixed affinities the active manager sent or renewed.
    Replicate = 7,
    /// Manager to manager: liveness, role and replication progress.
    Heartbeat = 8,
    /// Manager to manager: one part of the active manager's whole flow store, for a peer that
    /// returns.
    Snapshot = 9,
    /// Agent to manager: flows the agent placed itself by a consistent-hash action, and flows
    /// it placed that closed.
    FlowReport = 10,
}

impl MessageType {
    /// The message type for a wire value, if this version knows it.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::AffinityUpdateWildcard,
            2 => Self::AffinityUpdateFixed,
            3 => Self::AffinityUpdateDeny,
            4 => Self::InterestMatchWildcard,
            5 => Self::InterestMatchFixed,
            6 => Self::IpPacketOnly,
            7 => Self::Replicate,
            8 => Self::Heartbeat,
            9 => Self::Snapshot,
            10 => Self::FlowReport,
            _ => return None,
        })
    }

    /// The seed's name of the message type.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AffinityUpdateWildcard => "affinity update-wildcard affinity",
            Self::AffinityUpdateFixed => "affinity update-fixed affinity",
            Self::AffinityUpdateDeny => "affinity update-deny",
            Self::InterestMatchWildcard => "interest match-wildcard affinity",
            Self::InterestMatchFixed => "interest match-fixed affinity",
            Self::IpPacketOnly => "IP packet only",
            Self::Replicate => "replicate",
            Self::Heartbeat => "heartbeat",
            Self::Snapshot => "snapshot",
            Self::FlowReport => "flow report",
        }
    }
}

impl core::fmt::Display for MessageType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} (type {})", self.name(), *self as u8)
    }
}

/// The segment types of seed 004 (and the backup precedence Tether carries separately).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SegmentType {
    /// A wildcard affinity.
    WildcardAffinity = 1,
    /// A fixed affinity.
    FixedAffinity = 2,
    /// Affinity identifier: the affinity that matched and why.
    AffinityIdentifier = 3,
    /// Service precedence with its search order.
    ServicePrecedence = 4,
    /// Backup precedence of the sending manager.
    BackupPrecedence = 5,
    /// Authentication (HMAC-SHA256, key id, sequence number).
    Security = 6,
    /// Opaque data the manager wants back with interest matches.
    ManagerInterestData = 7,
    /// Opaque data the agent wants back with fixed affinity updates.
    AgentInterestData = 8,
    /// The sender's address and host name.
    IdentityInfo = 9,
    /// NAT action.
    ActionNat = 10,
    /// Advertise action.
    ActionAdvertise = 11,
    /// Sequence number adjust action.
    ActionSequenceAdjust = 12,
    /// Interest criteria action.
    ActionInterestCriteria = 13,
    /// Action list: the actions a receiver must support.
    ActionList = 14,
    /// An IP packet.
    IpPacket = 15,
    /// Replication stream sequence number and flow records.
    Replication = 16,
    /// Heartbeat of a manager to its peers.
    Heartbeat = 17,
    /// Part of a flow store snapshot.
    Snapshot = 18,
    /// Consistent-hash action: the table an agent places new flows by.
    ActionConsistentHash = 19,
    /// Flows an agent placed or saw close.
    FlowReport = 20,
}

impl SegmentType {
    /// The segment type for a wire value, if this version knows it.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::WildcardAffinity,
            2 => Self::FixedAffinity,
            3 => Self::AffinityIdentifier,
            4 => Self::ServicePrecedence,
            5 => Self::BackupPrecedence,
            6 => Self::Security,
            7 => Self::ManagerInterestData,
            8 => Self::AgentInterestData,
            9 => Self::IdentityInfo,
            10 => Self::ActionNat,
            11 => Self::ActionAdvertise,
            12 => Self::ActionSequenceAdjust,
            13 => Self::ActionInterestCriteria,
            14 => Self::ActionList,
            15 => Self::IpPacket,
            16 => Self::Replication,
            17 => Self::Heartbeat,
            18 => Self::Snapshot,
            19 => Self::ActionConsistentHash,
            20 => Self::FlowReport,
            _ => return None,
        })
    }

    /// The seed's name of the segment type.
    pub const fn name(self) -> &'static str {
        match self {
            Self::WildcardAffinity => "wildcard affinity",
            Self::FixedAffinity => "fixed affinity",
            Self::AffinityIdentifier => "affinity identifier",
            Self::ServicePrecedence => "service precedence",
            Self::BackupPrecedence => "backup precedence",
            Self::Security => "security",
            Self::ManagerInterestData => "service manager interest data",
            Self::AgentInterestData => "forwarding agent interest data",
            Self::IdentityInfo => "identity info",
            Self::ActionNat => "action-NAT",
            Self::ActionAdvertise => "action-advertise",
            Self::ActionSequenceAdjust => "action-sequence number adjust",
            Self::ActionInterestCriteria => "action-interest criteria",
            Self::ActionList => "action list",
            Self::IpPacket => "IP packet",
            Self::Replication => "replication",
            Self::Heartbeat => "heartbeat",
            Self::Snapshot => "snapshot",
            Self::ActionConsistentHash => "action-consistent hash",
            Self::FlowReport => "flow report",
        }
    }
}

impl core::fmt::Display for SegmentType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} segment (type {})", self.name(), *self as u8)
    }
}

/// A bit vector of packet types, with the seed's bit meanings (FIG. 10I).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InterestBits(pub u16);

impl InterestBits {
    /// Nothing.
    pub const NONE: Self = Self(0);
    /// TCP FIN.
    pub const FIN: Self = Self(1 << 0);
    /// TCP SYN.
    pub const SYN: Self = Self(1 << 1);
    /// TCP RST.
    pub const RST: Self = Self(1 << 2);
    /// TCP PSH.
    pub const PSH: Self = Self(1 << 3);
    /// TCP ACK.
    pub const ACK: Self = Self(1 << 4);
    /// TCP URG.
    pub const URG: Self = Self(1 << 5);
    /// Payload present (TCP or UDP).
    pub const DATA: Self = Self(1 << 6);
    /// First payload of the flow present (TCP or UDP).
    pub const FIRST_DATA: Self = Self(1 << 7);
    /// A fragment whose source and destination addresses match.
    pub const FRAGMENT: Self = Self(1 << 8);
    /// Every packet.
    pub const ALL: Self = Self(1 << 15);

    /// Whether any bit of `other` is set in `self`.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl core::ops::BitOr for InterestBits {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl core::ops::BitAnd for InterestBits {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

/// A fixed affinity (FIG. 6): one flow, one direction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FixedAffinity {
    /// The flow's 5-tuple.
    pub key: AffinityKey,
    /// Send matching packets to `forward` without rewriting their destination.
    pub dispatch: bool,
    /// Keep statistics per forward address.
    pub information: bool,
    /// Where dispatched packets go; the address statistics are kept for. The unspecified
    /// address means: drop matching packets (after statistics).
    pub forward: IpAddr,
    /// Seconds the agent may cache this affinity; 0 deletes it.
    pub ttl: u32,
}

/// A wildcard affinity (FIG. 7): a class of flows, by masked addresses, ports and protocol.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WildcardAffinity {
    /// Protocol number; 0 matches every protocol.
    pub protocol: u8,
    /// Source address, compared under `src_mask`.
    pub src: IpAddr,
    /// Source netmask (same family as `src`).
    pub src_mask: IpAddr,
    /// Source port; 0 matches every port.
    pub src_port: u16,
    /// Destination address, compared under `dst_mask`.
    pub dst: IpAddr,
    /// Destination netmask (same family as `dst`).
    pub dst_mask: IpAddr,
    /// Destination port; 0 matches every port.
    pub dst_port: u16,
    /// Send matching packets to `forward` without rewriting their destination.
    pub dispatch: bool,
    /// Keep statistics per forward address.
    pub information: bool,
    /// As in [`FixedAffinity::forward`]: the unspecified address drops packets that the
    /// affinity's interest criteria do not send to the manager.
    pub forward: IpAddr,
    /// Seconds the agent keeps this wildcard; 0 deletes it (and its fixed affinities).
    pub ttl: u32,
}

/// NAT action (FIG. 10F): replaces the fields that are not unspecified/0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NatAction {
    /// New source address, or unspecified to keep it.
    pub src: IpAddr,
    /// New source port, or 0 to keep it.
    pub src_port: u16,
    /// New destination address, or unspecified to keep it.
    pub dst: IpAddr,
    /// New destination port, or 0 to keep it.
    pub dst_port: u16,
}

/// Sequence number adjust action (FIG. 10G).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SequenceAdjust {
    /// Added (wrapping) to sequence numbers at or after `initial_seq`.
    pub seq_delta: u32,
    /// Lowest sequence number the delta applies to.
    pub initial_seq: u32,
    /// Added (wrapping) to acknowledgement numbers at or after `initial_ack`.
    pub ack_delta: u32,
    /// Lowest acknowledgement number the delta applies to.
    pub initial_ack: u32,
}

/// Interest criteria action (FIG. 10I).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InterestCriteria {
    /// Where interest matches go; unspecified means the sender of the affinity.
    pub addr: IpAddr,
    /// UDP port of `addr`; 0 means the sender's port.
    pub port: u16,
    /// Packet types that trigger an interest match message.
    pub mask: InterestBits,
    /// Packet types whose packet goes with the interest match.
    pub data: InterestBits,
    /// Packet types whose packet is copied to the manager while the original is forwarded.
    pub copy: InterestBits,
    /// Packet types the agent holds (if it can) until the manager answers.
    pub hold: InterestBits,
}

/// Advertise action (FIG. 10H): announce this prefix into routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AdvertiseAction {
    /// Address to advertise.
    pub addr: IpAddr,
    /// Prefix length of the advertised subnet (32 or 128 for a host).
    pub prefix_len: u8,
}

/// Whether a higher or a lower precedence value wins (FIG. 10B search order flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SearchOrder {
    /// A higher value is a higher priority.
    HigherFirst,
    /// A lower value is a higher priority.
    LowerFirst,
}

/// Service precedence with its search order (FIG. 10B).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServicePrecedence {
    /// How to compare values.
    pub search_order: SearchOrder,
    /// The precedence value.
    pub value: u16,
}

/// The actions that go with an affinity in one update.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Actions {
    /// Rewrite addresses and ports.
    pub nat: Option<NatAction>,
    /// Shift TCP sequence and acknowledgement numbers.
    pub sequence_adjust: Option<SequenceAdjust>,
    /// Notify the manager about packet types.
    pub interest: Option<InterestCriteria>,
    /// Advertise an address (wildcard affinities only).
    pub advertise: Option<AdvertiseAction>,
    /// Place new flows at the agent by a consistent-hash table (wildcard affinities only).
    pub consistent_hash: Option<ConsistentHash>,
}

/// Consistent-hash action (Tether's, segment type 19; wildcard affinities only): the agent
/// places a new flow of the wildcard itself, on the backend a Maglev table of these backends
/// gives for the flow's 5-tuple, and reports it to the manager (`docs/affinities.md`, "Local
/// decisions").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConsistentHash {
    /// Direct server return: dispatch to the backend unchanged. Otherwise NAT: rewrite the
    /// destination to the backend and install a return affinity that rewrites replies' source
    /// to the wildcard's destination address and port.
    pub dispatch: bool,
    /// Seconds the fixed affinities the agent makes live.
    pub fixed_ttl: u32,
    /// Slots of the table: a prime above the number of backends.
    pub table_size: u32,
    /// Every configured backend of the service, in the manager's order, eligible or not.
    pub backends: Vec<HashBackend>,
}

/// A backend of a [`ConsistentHash`] action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashBackend {
    /// The backend's address.
    pub addr: IpAddr,
    /// The backend's port (the service port in DSR mode).
    pub port: u16,
    /// Relative share of the table.
    pub weight: u32,
    /// Whether it takes new flows (enabled and healthy).
    pub eligible: bool,
    /// Its walk over the table ([`crate::maglev::Permutation`]).
    pub permutation: crate::maglev::Permutation,
}

/// Largest table a consistent-hash action may ask for (about 4 MiB of slots at an agent).
pub const MAX_HASH_TABLE_SIZE: u32 = 1_048_573;

/// One entry of an action list segment (FIG. 10J).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActionListEntry {
    /// The segment type of the action (a [`SegmentType`] value, or an unknown one).
    pub segment_type: u8,
    /// Whether the receiver must support it.
    pub required: bool,
}

/// The sender's identity (FIG. 10E), for logs and consoles.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The sender's address.
    pub addr: IpAddr,
    /// The sender's host name (at most 255 bytes of UTF-8).
    pub name: String,
}

/// Affinity identifier segment (FIG. 10A): which affinity matched and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AffinityIdentifier {
    /// The key of the packet's flow.
    pub key: AffinityKey,
    /// Dispatch flag of the matched affinity.
    pub dispatch: bool,
    /// Information flag of the matched affinity.
    pub information: bool,
    /// The interest bits that caused the match.
    pub matched: InterestBits,
}

/// Fields common to updates that identify the sender and carry opaque interest data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// Identity info segment.
    pub identity: Option<Identity>,
    /// Service manager interest data segment.
    pub manager_data: Option<Vec<u8>>,
    /// Forwarding agent interest data segment.
    pub agent_data: Option<Vec<u8>>,
    /// Types of segments marked required that the decoder could not process. A receiver
    /// must not act on a message whose list is non-empty; it answers with a deny instead.
    pub unsupported_required: Vec<u8>,
}

/// Affinity update-wildcard affinity (FIG. 9A).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WildcardUpdate {
    /// The wildcard.
    pub affinity: WildcardAffinity,
    /// Its actions.
    pub actions: Actions,
    /// Actions the receiver must support to accept the wildcard.
    pub action_list: Vec<ActionListEntry>,
    /// Service precedence.
    pub service_precedence: Option<ServicePrecedence>,
    /// Backup precedence; among equal service precedence the lowest value wins.
    pub backup_precedence: Option<u16>,
    /// Identity and interest data.
    pub envelope: Envelope,
}

/// Affinity update-fixed affinity (FIG. 9B).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FixedUpdate {
    /// The fixed affinity.
    pub affinity: FixedAffinity,
    /// Its actions.
    pub actions: Actions,
    /// Service precedence.
    pub service_precedence: Option<ServicePrecedence>,
    /// Backup precedence.
    pub backup_precedence: Option<u16>,
    /// Identity and interest data.
    pub envelope: Envelope,
    /// The packet to execute the affinity on (returned from an interest match).
    pub packet: Option<Vec<u8>>,
}

/// The affinity a deny refers to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DeniedAffinity {
    /// A wildcard affinity.
    Wildcard(WildcardAffinity),
    /// A fixed affinity.
    Fixed(FixedAffinity),
}

/// Affinity update-deny (FIG. 9C).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Deny {
    /// The segments (action list entries) the receiver could not process.
    pub denied: Vec<ActionListEntry>,
    /// The affinity of the rejected update.
    pub affinity: Option<DeniedAffinity>,
    /// Identity and interest data copied from the rejected update.
    pub envelope: Envelope,
}

/// Which kind of affinity an interest match reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// A wildcard affinity matched (message type 4).
    Wildcard,
    /// A fixed affinity matched (message type 5).
    Fixed,
}

/// Interest match-wildcard/fixed affinity (FIG. 9D).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InterestMatch {
    /// Whether a wildcard or a fixed affinity matched.
    pub kind: MatchKind,
    /// The affinity that matched and the reasons.
    pub identifier: AffinityIdentifier,
    /// Identity and interest data.
    pub envelope: Envelope,
    /// The packet, when the data flag asked for it.
    pub packet: Option<Vec<u8>>,
}

/// A service message, decoded. Authentication is the codec's business, not a field here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// Affinity update-wildcard affinity.
    WildcardUpdate(WildcardUpdate),
    /// Affinity update-fixed affinity.
    FixedUpdate(FixedUpdate),
    /// Affinity update-deny.
    Deny(Deny),
    /// Interest match-wildcard or -fixed affinity.
    InterestMatch(InterestMatch),
    /// IP packet only: forward without matching again.
    IpPacketOnly(Vec<u8>),
    /// Replicated flows, manager to manager.
    Replicate(Replicate),
    /// Heartbeat, manager to manager.
    Heartbeat(Heartbeat),
    /// Part of the active manager's flow store, to a returning peer.
    Snapshot(Snapshot),
    /// Flows an agent placed itself or saw close, agent to manager.
    FlowReport(FlowReport),
}

impl Message {
    /// The message type this value is sent as.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::WildcardUpdate(_) => MessageType::AffinityUpdateWildcard,
            Self::FixedUpdate(_) => MessageType::AffinityUpdateFixed,
            Self::Deny(_) => MessageType::AffinityUpdateDeny,
            Self::InterestMatch(m) => match m.kind {
                MatchKind::Wildcard => MessageType::InterestMatchWildcard,
                MatchKind::Fixed => MessageType::InterestMatchFixed,
            },
            Self::IpPacketOnly(_) => MessageType::IpPacketOnly,
            Self::Replicate(_) => MessageType::Replicate,
            Self::Heartbeat(_) => MessageType::Heartbeat,
            Self::Snapshot(_) => MessageType::Snapshot,
            Self::FlowReport(_) => MessageType::FlowReport,
        }
    }
}

impl Message {
    /// The envelope (identity, interest data, unsupported required segments), for the
    /// messages between managers and agents except IP packet only.
    pub fn envelope(&self) -> Option<&Envelope> {
        match self {
            Self::WildcardUpdate(m) => Some(&m.envelope),
            Self::FixedUpdate(m) => Some(&m.envelope),
            Self::Deny(m) => Some(&m.envelope),
            Self::InterestMatch(m) => Some(&m.envelope),
            Self::IpPacketOnly(_)
            | Self::Replicate(_)
            | Self::Heartbeat(_)
            | Self::Snapshot(_)
            | Self::FlowReport(_) => None,
        }
    }
}

/// Bytes of an address in a segment: family byte and the address.
fn addr_len(addr: &IpAddr) -> usize {
    if addr.is_ipv4() { 5 } else { 17 }
}

/// Bytes of a flow key in a replication, snapshot or flow report segment.
fn key_len(key: &AffinityKey) -> usize {
    5 + addr_len(&key.src) + addr_len(&key.dst)
}

/// What an agent tells a manager about a flow it placed by a consistent-hash action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowEvent {
    /// The agent placed the flow (a new flow, or a SYN on a flow it had placed) on this
    /// backend and installed its fixed affinities.
    Placed {
        /// The flow's forward (client to VIP) key.
        key: AffinityKey,
        /// The backend's address.
        backend: IpAddr,
        /// The backend's port.
        port: u16,
    },
    /// A FIN or RST of the flow passed through an affinity the agent made for it.
    Closed {
        /// The flow's forward (client to VIP) key.
        key: AffinityKey,
    },
}

/// Flow report (message type 10): events of flows an agent placed itself, in the order they
/// happened, batched.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlowReport {
    /// The events.
    pub events: Vec<FlowEvent>,
}

impl FlowReport {
    /// Bytes of a sealed flow report carrying no events: header, security segment, flow report
    /// segment header and count.
    pub const OVERHEAD: usize = 6 + 6 + 53 + 6 + 2;

    /// Bytes an event takes in a flow report segment.
    pub fn event_len(event: &FlowEvent) -> usize {
        match event {
            FlowEvent::Placed { key, backend, .. } => 1 + key_len(key) + 2 + addr_len(backend),
            FlowEvent::Closed { key } => 1 + key_len(key),
        }
    }
}

/// Largest datagram a replication batch is sized for (fits a 1500-byte MTU with headroom).
pub const MAX_REPLICATION_DATAGRAM: usize = 1400;

/// One flow as the active manager placed it, for its peers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlowRecord {
    /// The flow's forward (client to VIP) key.
    pub key: AffinityKey,
    /// The key of the backend's replies after NAT, in NAT mode.
    pub return_key: Option<AffinityKey>,
    /// Name of the service (peers share the configuration, not indexes).
    pub service: String,
    /// Name of the backend within the service.
    pub backend: String,
    /// Seconds since the last fixed update was sent for the flow.
    pub age: u32,
    /// Whether a FIN or RST of the flow has been seen.
    pub closing: bool,
}

impl FlowRecord {
    /// Bytes of this record in a replication segment.
    pub fn encoded_len(&self) -> usize {
        1 + 4
            + key_len(&self.key)
            + self.return_key.as_ref().map_or(0, key_len)
            + 2
            + self.service.len()
            + 2
            + self.backend.len()
    }
}

/// Replicate (message type 7): a batch of flows, numbered in the sender's stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Replicate {
    /// Position in the sender's replication stream (1, 2, ...); a jump shows a lost batch.
    pub stream_seq: u64,
    /// The flows.
    pub flows: Vec<FlowRecord>,
}

impl Replicate {
    /// Bytes of a sealed replicate message carrying no flows: header, security segment,
    /// replication segment header, sequence and count.
    pub const OVERHEAD: usize = 6 + 6 + 53 + 6 + 8 + 2;
}

/// Snapshot (message type 9): one part of the active manager's whole flow store, sent to a
/// peer whose heartbeats say it is not ready (it has just started, and pulls the store).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// Which snapshot of the sender's this part belongs to (a new one per request).
    pub id: u32,
    /// The sender's replication stream sequence when the snapshot was taken: it holds every
    /// batch up to this one, and the receiver follows the stream from the next.
    pub base_seq: u64,
    /// This part's number, 1 to `parts`.
    pub part: u32,
    /// How many parts the snapshot has (at least 1; an empty store is one empty part).
    pub parts: u32,
    /// The flows of this part.
    pub flows: Vec<FlowRecord>,
}

impl Snapshot {
    /// Bytes of a sealed snapshot message carrying no flows: header, security segment,
    /// snapshot segment header, id, base sequence, part, parts and count.
    pub const OVERHEAD: usize = 6 + 6 + 53 + 6 + 4 + 8 + 4 + 4 + 2;
}

/// A manager's role among its peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Announces its wildcards with a worse precedence and stores replicated flows.
    Standby,
    /// Places flows and replicates them.
    Active,
}

/// Heartbeat (message type 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// The sender's backup precedence (lower is better).
    pub backup_precedence: u16,
    /// The sender's role.
    pub role: Role,
    /// Active: the last stream sequence sent. Standby: the highest stream sequence up to
    /// which it holds every batch of the active manager.
    pub replicated: u64,
    /// Whether the sender holds the flow store and may become active.
    pub ready: bool,
}

/// The unspecified IPv4 address, for "no address" fields.
pub const UNSPECIFIED_V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
