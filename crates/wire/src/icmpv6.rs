//! ICMPv6 messages; errors expose the start of the packet that caused them.

use core::net::Ipv6Addr;

use crate::bytes::{read_u16, read_u32, write_u16};
use crate::checksum;
use crate::flow::PROTO_ICMPV6;
use crate::{Layer, WireError};

/// Destination unreachable (an error).
pub const DEST_UNREACHABLE: u8 = 1;
/// Packet too big (an error).
pub const PACKET_TOO_BIG: u8 = 2;
/// Time exceeded (an error).
pub const TIME_EXCEEDED: u8 = 3;
/// Parameter problem (an error).
pub const PARAM_PROBLEM: u8 = 4;
/// Echo request.
pub const ECHO_REQUEST: u8 = 128;
/// Echo reply.
pub const ECHO_REPLY: u8 = 129;
/// Neighbour solicitation.
pub const NEIGHBOR_SOLICIT: u8 = 135;
/// Neighbour advertisement.
pub const NEIGHBOR_ADVERT: u8 = 136;

mod field {
    use crate::bytes::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
    pub const MTU: Field = 4..8;
    pub const HEADER_LEN: usize = 8;
}

/// Offset of the checksum field, for code that handles a quoted header without a view.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// Whether ICMPv6 `icmp_type` is an error message that quotes the offending packet.
pub fn is_error(icmp_type: u8) -> bool {
    matches!(
        icmp_type,
        DEST_UNREACHABLE | PACKET_TOO_BIG | TIME_EXCEEDED | PARAM_PROBLEM
    )
}

/// A view of an ICMPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps `buffer`, checking that it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < field::HEADER_LEN {
            return Err(WireError::Truncated(Layer::Icmpv6));
        }
        Ok(Self { buffer })
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.data()[field::TYPE]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.data()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.data()[field::CHECKSUM])
    }

    /// Whether this message is an error that quotes the offending packet.
    pub fn is_error(&self) -> bool {
        is_error(self.msg_type())
    }

    /// Identifier of an echo request or reply.
    pub fn echo_ident(&self) -> u16 {
        read_u16(&self.data()[field::ECHO_IDENT])
    }

    /// Sequence number of an echo request or reply.
    pub fn echo_seq(&self) -> u16 {
        read_u16(&self.data()[field::ECHO_SEQ])
    }

    /// MTU of a packet-too-big message.
    pub fn mtu(&self) -> u32 {
        read_u32(&self.data()[field::MTU])
    }

    /// The bytes after the 8-byte header: for an error, the quoted IPv6 header and what
    /// follows.
    pub fn payload(&self) -> &[u8] {
        self.data().get(field::HEADER_LEN..).unwrap_or(&[])
    }

    /// For an error message, the quoted start of the packet that caused it (its IP header
    /// first); `None` for other messages.
    pub fn embedded_packet(&self) -> Option<&[u8]> {
        self.is_error().then(|| self.payload())
    }

    /// Whether the checksum over the pseudo-header and the whole buffer verifies.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let data = self.data();
        let pseudo = checksum::pseudo_header_v6(src, dst, PROTO_ICMPV6, data.len() as u32);
        checksum::verifies(pseudo, data)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Recomputes the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let value = checksum::icmpv6(src, dst, self.data());
        self.set_checksum(value);
    }

    /// The bytes after the 8-byte header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::HEADER_LEN..)
            .unwrap_or(&mut [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packet too big, MTU 1280, quoting the first 4 bytes of an IPv6 header.
    const TOO_BIG: [u8; 12] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x60, 0x00, 0x00, 0x00,
    ];

    /// Echo request, id 7, seq 9.
    const ECHO: [u8; 8] = [0x80, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x09];

    fn addrs() -> (Ipv6Addr, Ipv6Addr) {
        ("fe80::1".parse().unwrap(), "ff02::1".parse().unwrap())
    }

    #[test]
    fn packet_too_big_is_an_error_exposing_mtu_and_quote() {
        let message = Icmpv6Packet::new_checked(&TOO_BIG[..]).unwrap();
        assert_eq!(message.msg_type(), PACKET_TOO_BIG);
        assert!(message.is_error());
        assert_eq!(message.mtu(), 1280);
        assert_eq!(message.embedded_packet(), Some(&[0x60, 0, 0, 0][..]));
    }

    #[test]
    fn echo_request_is_not_an_error() {
        let message = Icmpv6Packet::new_checked(&ECHO[..]).unwrap();
        assert!(!message.is_error());
        assert_eq!((message.echo_ident(), message.echo_seq()), (7, 9));
        assert!(message.payload().is_empty());
    }

    #[test]
    fn checksum_covers_the_pseudo_header() {
        let (src, dst) = addrs();
        let mut buf = ECHO;
        let mut message = Icmpv6Packet::new_checked(&mut buf[..]).unwrap();
        message.fill_checksum(src, dst);
        assert!(message.verify_checksum(src, dst));
        assert!(!message.verify_checksum(dst, Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn message_shorter_than_its_header_is_truncated() {
        assert_eq!(
            Icmpv6Packet::new_checked(&TOO_BIG[..4]),
            Err(WireError::Truncated(Layer::Icmpv6))
        );
    }
}
