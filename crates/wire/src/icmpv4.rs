//! ICMPv4 messages; errors expose the start of the packet that caused them.

use crate::bytes::{read_u16, write_u16};
use crate::checksum;
use crate::{Layer, WireError};

/// Echo reply.
pub const ECHO_REPLY: u8 = 0;
/// Destination unreachable (an error).
pub const DEST_UNREACHABLE: u8 = 3;
/// Echo request.
pub const ECHO_REQUEST: u8 = 8;
/// Time exceeded (an error).
pub const TIME_EXCEEDED: u8 = 11;
/// Parameter problem (an error).
pub const PARAM_PROBLEM: u8 = 12;
/// Destination-unreachable code: port unreachable.
pub const CODE_PORT_UNREACHABLE: u8 = 3;
/// Destination-unreachable code: fragmentation needed and DF set.
pub const CODE_FRAG_NEEDED: u8 = 4;

mod field {
    use crate::bytes::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
    pub const NEXT_HOP_MTU: Field = 6..8;
    pub const HEADER_LEN: usize = 8;
}

/// Whether ICMPv4 `icmp_type` is an error message that quotes the offending packet.
pub fn is_error(icmp_type: u8) -> bool {
    matches!(icmp_type, DEST_UNREACHABLE | TIME_EXCEEDED | PARAM_PROBLEM)
}

/// A view of an ICMPv4 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps `buffer`, checking that it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < field::HEADER_LEN {
            return Err(WireError::Truncated(Layer::Icmpv4));
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

    /// Next-hop MTU of a fragmentation-needed message (RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(&self.data()[field::NEXT_HOP_MTU])
    }

    /// The bytes after the 8-byte header: for an error, the quoted IP header and what follows.
    pub fn payload(&self) -> &[u8] {
        self.data().get(field::HEADER_LEN..).unwrap_or(&[])
    }

    /// For an error message, the quoted start of the packet that caused it (its IP header
    /// first); `None` for other messages.
    pub fn embedded_packet(&self) -> Option<&[u8]> {
        self.is_error().then(|| self.payload())
    }

    /// Whether the checksum over the whole buffer verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(0, self.data())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Recomputes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        let value = checksum::icmpv4(self.data());
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

    /// Echo request, id 0x1234, seq 1, payload "hi".
    const ECHO: [u8; 10] = [0x08, 0x00, 0x7d, 0x61, 0x12, 0x34, 0x00, 0x01, b'h', b'i'];

    /// Fragmentation needed (MTU 1400) quoting the first 4 bytes of an IPv4 header.
    const FRAG_NEEDED: [u8; 12] = [
        0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x05, 0x78, 0x45, 0x00, 0x05, 0xdc,
    ];

    #[test]
    fn echo_request_fields_and_checksum_are_read() {
        let message = Icmpv4Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(message.msg_type(), ECHO_REQUEST);
        assert_eq!(message.code(), 0);
        assert!(!message.is_error());
        assert_eq!(message.embedded_packet(), None);
        assert_eq!(message.echo_ident(), 0x1234);
        assert_eq!(message.echo_seq(), 1);
        assert_eq!(message.payload(), b"hi");
        assert!(message.verify_checksum());
    }

    #[test]
    fn fragmentation_needed_is_an_error_exposing_mtu_and_quote() {
        let message = Icmpv4Packet::new_checked(&FRAG_NEEDED[..]).unwrap();
        assert!(message.is_error());
        assert_eq!(message.code(), CODE_FRAG_NEEDED);
        assert_eq!(message.next_hop_mtu(), 1400);
        assert_eq!(
            message.embedded_packet(),
            Some(&[0x45, 0x00, 0x05, 0xdc][..])
        );
    }

    #[test]
    fn message_shorter_than_its_header_is_truncated() {
        assert_eq!(
            Icmpv4Packet::new_checked(&ECHO[..7]),
            Err(WireError::Truncated(Layer::Icmpv4))
        );
    }

    #[test]
    fn filled_checksum_verifies() {
        let mut buf = FRAG_NEEDED;
        let mut message = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        message.payload_mut()[0] = 0x46;
        message.fill_checksum();
        assert!(message.verify_checksum());
    }
}
