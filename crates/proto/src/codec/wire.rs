//! Layout constants and the bounds-checked readers every decoder path goes through.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{MessageType, PROTOCOL_VERSION, SegmentType};

use super::DecodeError;

/// Bytes of the service message header: version, message type, total length (u32).
pub const HEADER_LEN: usize = 6;
/// Bytes of a segment header: segment type, flags, body length (u32).
pub const SEGMENT_HEADER_LEN: usize = 6;
/// Bit of the segment flags byte (and of an action list entry's flags) meaning Required.
pub const FLAG_REQUIRED: u8 = 0x80;
/// Security type of HMAC-SHA256.
pub const SECURITY_HMAC_SHA256: u8 = 1;
/// Bytes of an HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;
/// Where the MAC starts inside the security segment body.
pub(super) const MAC_OFFSET_IN_BODY: usize = 1 + 4 + 8 + 8;
/// Address family byte of IPv4.
pub(super) const FAMILY_V4: u8 = 4;
/// Address family byte of IPv6.
pub(super) const FAMILY_V6: u8 = 6;

/// A segment as framed on the wire, before its body is interpreted.
pub(super) struct RawSegment<'a> {
    /// Segment type byte.
    pub kind: u8,
    /// Whether the Required flag is set.
    pub required: bool,
    /// The body.
    pub body: &'a [u8],
    /// Offset of the segment header in the message.
    pub offset: usize,
}

/// The authentication fields of a security segment.
pub(super) struct Security<'a> {
    /// Key id.
    pub key_id: u32,
    /// Sequence number.
    pub sequence: u64,
    /// The sender's id: its replay window is kept by this, not by the UDP source address.
    pub sender: u64,
    /// The MAC as received.
    pub mac: &'a [u8; MAC_LEN],
    /// Offset of the MAC in the message.
    pub mac_offset: usize,
}

/// A message split into header, optional security segment and the remaining segments.
pub(super) struct Frame<'a> {
    /// The message type.
    pub message_type: MessageType,
    /// The security segment, when the first segment is one.
    pub security: Option<Security<'a>>,
    /// Segments after the security segment.
    pub segments: Segments<'a>,
}

/// Checks the header and splits off the security segment.
pub(super) fn frame(bytes: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::TruncatedHeader { len: bytes.len() });
    };
    let [version, kind, l0, l1, l2, l3] = *header;
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion { found: version });
    }
    let message_type =
        MessageType::from_u8(kind).ok_or(DecodeError::UnknownMessageType { found: kind })?;
    let declared = u32::from_be_bytes([l0, l1, l2, l3]);
    if usize::try_from(declared).ok() != Some(bytes.len()) {
        return Err(DecodeError::LengthMismatch {
            declared,
            actual: bytes.len(),
        });
    }
    let mut segments = Segments {
        rest,
        offset: HEADER_LEN,
    };
    let security = if rest.first() == Some(&(SegmentType::Security as u8)) {
        match segments.next() {
            Some(raw) => Some(security(&raw?)?),
            None => None,
        }
    } else {
        None
    };
    Ok(Frame {
        message_type,
        security,
        segments,
    })
}

/// Reads the body of a security segment.
fn security<'a>(raw: &RawSegment<'a>) -> Result<Security<'a>, DecodeError> {
    let mut r = Reader::new(raw, SegmentType::Security);
    let kind = r.u8("security type")?;
    if kind != SECURITY_HMAC_SHA256 {
        return Err(DecodeError::UnsupportedSecurity { found: kind });
    }
    let key_id = r.u32("key id")?;
    let sequence = r.u64("sequence")?;
    let sender = r.u64("sender id")?;
    let mac_offset = r.offset;
    let mac = r.take::<MAC_LEN>("MAC")?;
    r.finish()?;
    Ok(Security {
        key_id,
        sequence,
        sender,
        mac,
        mac_offset,
    })
}

/// Iterates over the segments of a message; stops after the first framing error.
pub(super) struct Segments<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Result<RawSegment<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let offset = self.offset;
        let Some((header, after)) = self.rest.split_first_chunk::<SEGMENT_HEADER_LEN>() else {
            let remaining = self.rest.len();
            self.rest = &[];
            return Some(Err(DecodeError::TruncatedSegmentHeader {
                offset,
                remaining,
            }));
        };
        let [kind, flags, l0, l1, l2, l3] = *header;
        let len = u32::from_be_bytes([l0, l1, l2, l3]);
        let split = usize::try_from(len)
            .ok()
            .and_then(|n| (n <= after.len()).then(|| after.split_at(n)));
        let Some((body, rest)) = split else {
            self.rest = &[];
            return Some(Err(DecodeError::SegmentPastEnd {
                segment: kind,
                offset,
                len,
                remaining: after.len(),
            }));
        };
        self.rest = rest;
        self.offset = offset + SEGMENT_HEADER_LEN + body.len();
        Some(Ok(RawSegment {
            kind,
            required: flags & FLAG_REQUIRED != 0,
            body,
            offset,
        }))
    }
}

/// Reads the fields of one segment body; every read is bounds-checked.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
    offset: usize,
    segment: SegmentType,
}

impl<'a> Reader<'a> {
    /// A reader over the body of `raw`, which is a `segment`.
    pub fn new(raw: &RawSegment<'a>, segment: SegmentType) -> Self {
        Self {
            rest: raw.body,
            offset: raw.offset + SEGMENT_HEADER_LEN,
            segment,
        }
    }

    /// Offset of the next unread byte in the message.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The next `N` bytes.
    pub fn take<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<&'a [u8; N], DecodeError> {
        let Some((head, tail)) = self.rest.split_first_chunk::<N>() else {
            return Err(DecodeError::TruncatedField {
                segment: self.segment,
                field,
                offset: self.offset,
            });
        };
        self.rest = tail;
        self.offset += N;
        Ok(head)
    }

    /// The next `len` bytes.
    pub fn bytes(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let Some((head, tail)) = self.rest.split_at_checked(len) else {
            return Err(DecodeError::TruncatedField {
                segment: self.segment,
                field,
                offset: self.offset,
            });
        };
        self.rest = tail;
        self.offset += len;
        Ok(head)
    }

    /// A byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.take::<1>(field).map(|b| b[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.take(field).map(|b| u16::from_be_bytes(*b))
    }

    /// A big-endian u32.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.take(field).map(|b| u32::from_be_bytes(*b))
    }

    /// A big-endian u64.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.take(field).map(|b| u64::from_be_bytes(*b))
    }

    /// An address: family byte 4 or 6, then 4 or 16 bytes.
    pub fn addr(&mut self, field: &'static str) -> Result<IpAddr, DecodeError> {
        let at = self.offset;
        match self.u8(field)? {
            FAMILY_V4 => Ok(IpAddr::V4(Ipv4Addr::from(*self.take::<4>(field)?))),
            FAMILY_V6 => Ok(IpAddr::V6(Ipv6Addr::from(*self.take::<16>(field)?))),
            found => Err(DecodeError::BadAddressFamily {
                segment: self.segment,
                field,
                found,
                offset: at,
            }),
        }
    }

    /// Everything left in the body.
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }

    /// Checks that the body has been read to its end.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                segment: self.segment,
                extra: self.rest.len(),
                offset: self.offset,
            })
        }
    }
}
