//! Why bytes are not a service message.

use crate::model::{MessageType, PROTOCOL_VERSION, SegmentType};

use super::wire::HEADER_LEN;

/// Why bytes are not a service message. Offsets count bytes from the start of the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram is shorter than the message header.
    #[error("message is {len} bytes, shorter than the {HEADER_LEN}-byte service message header")]
    TruncatedHeader {
        /// Bytes received.
        len: usize,
    },
    /// The header names a protocol version this endpoint does not speak.
    #[error(
        "protocol version {found} is not supported (this endpoint speaks version \
         {PROTOCOL_VERSION}); run the same Tether version on both ends"
    )]
    UnsupportedVersion {
        /// Version byte received.
        found: u8,
    },
    /// The header names a message type this version does not know.
    #[error("unknown message type {found} in the header (known types are 1 to 6)")]
    UnknownMessageType {
        /// Message type byte received.
        found: u8,
    },
    /// The header's total length is not the datagram's length.
    #[error(
        "header declares a {declared}-byte message but the datagram is {actual} bytes \
         (truncated or padded in transit)"
    )]
    LengthMismatch {
        /// Total length from the header.
        declared: u32,
        /// Bytes received.
        actual: usize,
    },
    /// Fewer bytes remain than a segment header needs.
    #[error("segment header at offset {offset} is cut off: {remaining} bytes left, 6 needed")]
    TruncatedSegmentHeader {
        /// Where the segment header starts.
        offset: usize,
        /// Bytes left in the message.
        remaining: usize,
    },
    /// A segment's body length runs past the end of the message.
    #[error(
        "segment type {segment} at offset {offset} declares a {len}-byte body but only \
         {remaining} bytes follow its header"
    )]
    SegmentPastEnd {
        /// Segment type byte.
        segment: u8,
        /// Where the segment header starts.
        offset: usize,
        /// Declared body length.
        len: u32,
        /// Bytes left after the segment header.
        remaining: usize,
    },
    /// A segment body ends before one of its fields.
    #[error("{segment} at offset {offset} ends before its {field} field")]
    TruncatedField {
        /// The segment being read.
        segment: SegmentType,
        /// The field that does not fit.
        field: &'static str,
        /// Where the field would start.
        offset: usize,
    },
    /// A segment body is longer than its fields.
    #[error("{segment} has {extra} bytes after its last field, at offset {offset}")]
    TrailingBytes {
        /// The segment being read.
        segment: SegmentType,
        /// Bytes left over.
        extra: usize,
        /// Where the leftover bytes start.
        offset: usize,
    },
    /// An address field's family byte is neither 4 nor 6.
    #[error(
        "{segment} field {field} at offset {offset} has address family byte {found}; expected 4 or 6"
    )]
    BadAddressFamily {
        /// The segment being read.
        segment: SegmentType,
        /// The address field.
        field: &'static str,
        /// Family byte received.
        found: u8,
        /// Where the family byte is.
        offset: usize,
    },
    /// The service precedence search order byte is neither 0 nor 1.
    #[error(
        "service precedence search order at offset {offset} is {found}; expected 0 (higher \
         first) or 1 (lower first)"
    )]
    BadSearchOrder {
        /// Byte received.
        found: u8,
        /// Where it is.
        offset: usize,
    },
    /// An advertise action's prefix is longer than its address.
    #[error(
        "advertise prefix length {prefix_len} at offset {offset} exceeds the address's {max} bits"
    )]
    PrefixTooLong {
        /// Prefix length received.
        prefix_len: u8,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
        /// Where the prefix length is.
        offset: usize,
    },
    /// The action list body is not a whole number of 2-byte entries.
    #[error("action list at offset {offset} is {len} bytes, not a multiple of the 2-byte entry")]
    RaggedActionList {
        /// Body length.
        len: usize,
        /// Where the body starts.
        offset: usize,
    },
    /// A heartbeat's role is neither standby (0) nor active (1).
    #[error("heartbeat role {found} at offset {offset} is neither 0 (standby) nor 1 (active)")]
    BadRole {
        /// The value found.
        found: u8,
        /// Where it is.
        offset: usize,
    },
    /// A consistent-hash action whose table an agent could not build.
    #[error("consistent-hash action at offset {offset}: {problem}")]
    BadConsistentHash {
        /// What is wrong.
        problem: &'static str,
        /// Where the offending field is.
        offset: usize,
    },
    /// A flow report event of a kind this version does not know.
    #[error(
        "flow report event kind {found} at offset {offset} is neither 1 (placed) nor 2 (closed)"
    )]
    BadFlowEvent {
        /// The value found.
        found: u8,
        /// Where it is.
        offset: usize,
    },
    /// A host, service or backend name is not UTF-8.
    #[error("name at offset {offset} is not valid UTF-8")]
    InvalidName {
        /// Where the name starts.
        offset: usize,
    },
    /// The security segment is not the first segment.
    #[error(
        "security segment at offset {offset} does not immediately follow the header; a \
         message carries at most one, first"
    )]
    MisplacedSecurity {
        /// Where the segment header starts.
        offset: usize,
    },
    /// The security segment uses an algorithm this version does not know.
    #[error("security type {found} is not supported; only 1 (HMAC-SHA256) is")]
    UnsupportedSecurity {
        /// Security type byte received.
        found: u8,
    },
    /// A known segment appears twice.
    #[error("{segment} appears a second time at offset {offset}")]
    DuplicateSegment {
        /// The repeated segment.
        segment: SegmentType,
        /// Where the second copy starts.
        offset: usize,
    },
    /// An update-deny carries both a wildcard and a fixed affinity.
    #[error("affinity update-deny carries both a wildcard and a fixed affinity; it names one")]
    ConflictingAffinities,
    /// A segment the message type cannot do without is absent.
    #[error("{message} message has no {segment}, which it requires")]
    MissingSegment {
        /// The message type.
        message: MessageType,
        /// The absent segment.
        segment: SegmentType,
    },
    /// An IP packet only message carries a required segment this endpoint cannot process; it
    /// has no envelope to report it in.
    #[error(
        "IP packet only message carries required segment type {segment}, which this \
         endpoint cannot process"
    )]
    UnsupportedRequired {
        /// Segment type byte.
        segment: u8,
    },
}

impl DecodeError {
    /// A stable label for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TruncatedHeader { .. } => "truncated_header",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::UnknownMessageType { .. } => "unknown_message_type",
            Self::LengthMismatch { .. } => "length_mismatch",
            Self::TruncatedSegmentHeader { .. } => "truncated_segment_header",
            Self::SegmentPastEnd { .. } => "segment_past_end",
            Self::TruncatedField { .. } => "truncated_field",
            Self::TrailingBytes { .. } => "trailing_bytes",
            Self::BadAddressFamily { .. } => "bad_address_family",
            Self::BadSearchOrder { .. } => "bad_search_order",
            Self::PrefixTooLong { .. } => "prefix_too_long",
            Self::RaggedActionList { .. } => "ragged_action_list",
            Self::BadRole { .. } => "bad_role",
            Self::BadConsistentHash { .. } => "bad_consistent_hash",
            Self::BadFlowEvent { .. } => "bad_flow_event",
            Self::InvalidName { .. } => "invalid_name",
            Self::MisplacedSecurity { .. } => "misplaced_security",
            Self::UnsupportedSecurity { .. } => "unsupported_security",
            Self::DuplicateSegment { .. } => "duplicate_segment",
            Self::ConflictingAffinities => "conflicting_affinities",
            Self::MissingSegment { .. } => "missing_segment",
            Self::UnsupportedRequired { .. } => "unsupported_required",
        }
    }
}
