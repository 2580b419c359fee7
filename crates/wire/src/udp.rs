//! UDP datagrams.

use crate::bytes::{read_u16, write_u16};
use crate::{Layer, WireError};

mod field {
    use crate::bytes::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field, for code that handles a quoted header without a view.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// A view of a UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer`, checking that it holds the header.
    ///
    /// The length field is not checked here, because the first fragment of a datagram holds
    /// only part of it; [`UdpPacket::check_len`] checks it for a whole datagram.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated(Layer::Udp));
        }
        Ok(Self { buffer })
    }

    /// Checks that the length field is at least the header and at most the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = usize::from(self.len());
        if len < HEADER_LEN || len > self.buffer.as_ref().len() {
            return Err(WireError::BadUdpLength);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(&self.data()[field::SRC_PORT])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.data()[field::DST_PORT])
    }

    /// Length field: header and payload in bytes.
    #[expect(
        clippy::len_without_is_empty,
        reason = "a header field, not a collection"
    )]
    pub fn len(&self) -> u16 {
        read_u16(&self.data()[field::LENGTH])
    }

    /// Checksum field; 0 over IPv4 means the sender computed none.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.data()[field::CHECKSUM])
    }

    /// The payload, up to the length field (or the end of the buffer, if that comes first).
    pub fn payload(&self) -> &[u8] {
        let data = self.data();
        let end = usize::from(self.len()).min(data.len());
        data.get(HEADER_LEN..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(&mut self.buffer.as_mut()[field::SRC_PORT], port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(&mut self.buffer.as_mut()[field::DST_PORT], port);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DNS query header from port 53000 to 53, length 12, no checksum, plus a padding byte.
    const DATAGRAM: [u8; 13] = [
        0xcf, 0x08, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0xab, 0xcd, 0x01, 0x00, 0xee,
    ];

    #[test]
    fn fields_and_payload_are_read_up_to_the_length_field() {
        let datagram = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(datagram.src_port(), 53000);
        assert_eq!(datagram.dst_port(), 53);
        assert_eq!(datagram.len(), 12);
        assert_eq!(datagram.checksum(), 0);
        assert_eq!(datagram.check_len(), Ok(()));
        assert_eq!(datagram.payload(), &[0xab, 0xcd, 0x01, 0x00]);
    }

    #[test]
    fn length_field_outside_header_and_buffer_is_rejected() {
        let mut buf = DATAGRAM;
        buf[5] = 7;
        let datagram = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(datagram.check_len(), Err(WireError::BadUdpLength));
        buf[5] = 14;
        let datagram = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(datagram.check_len(), Err(WireError::BadUdpLength));
    }

    #[test]
    fn datagram_shorter_than_its_header_is_truncated() {
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..7]),
            Err(WireError::Truncated(Layer::Udp))
        );
    }

    #[test]
    fn ports_and_checksum_can_be_rewritten() {
        let mut buf = DATAGRAM;
        let mut datagram = UdpPacket::new_checked(&mut buf[..]).unwrap();
        datagram.set_src_port(1);
        datagram.set_dst_port(2);
        datagram.set_checksum(0xffff);
        assert_eq!(&buf[..8], &[0, 1, 0, 2, 0, 12, 0xff, 0xff]);
    }
}
