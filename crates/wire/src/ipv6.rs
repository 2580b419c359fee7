//! IPv6 fixed headers. Extension headers are in [`crate::ipv6ext`].

use core::net::Ipv6Addr;

use crate::bytes::{read_array, read_u16, read_u32};
use crate::{Layer, WireError};

mod field {
    use crate::bytes::Field;

    pub const VER_TC_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the IPv6 fixed header.
pub const HEADER_LEN: usize = 40;

/// A view of an IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer`, checking that it holds the fixed header.
    ///
    /// The payload length is not checked here, because the packet quoted in an ICMP error is
    /// cut short on purpose; [`Ipv6Packet::check_payload_len`] checks it.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated(Layer::Ipv6));
        }
        Ok(Self { buffer })
    }

    /// Checks that the payload length stays inside the buffer.
    pub fn check_payload_len(&self) -> Result<(), WireError> {
        if HEADER_LEN + usize::from(self.payload_len()) > self.buffer.as_ref().len() {
            return Err(WireError::BadTotalLength);
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

    /// IP version nibble (6 for a well-formed packet).
    pub fn version(&self) -> u8 {
        self.data()[0] >> 4
    }

    /// Traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        (read_u32(&self.data()[field::VER_TC_FLOW]) >> 20) as u8
    }

    /// 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        read_u32(&self.data()[field::VER_TC_FLOW]) & 0x000F_FFFF
    }

    /// Payload length field: bytes after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        read_u16(&self.data()[field::PAYLOAD_LEN])
    }

    /// Protocol number of the first extension header or of the transport header.
    pub fn next_header(&self) -> u8 {
        self.data()[field::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.data()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(&self.data()[field::SRC_ADDR]))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_array::<16>(&self.data()[field::DST_ADDR]))
    }

    /// The payload, up to the payload length (or the end of the buffer, if that comes first).
    pub fn payload(&self) -> &[u8] {
        let data = self.data();
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(data.len());
        data.get(HEADER_LEN..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the hop limit (IPv6 has no header checksum to fix).
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TCP from 2001:db8::1 to 2001:db8::2, traffic class 0xb8, flow label 0x12345, 4 bytes of
    /// payload, hop limit 64.
    const PACKET: [u8; 44] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x04, 0x06, 0x40, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, //
        0xca, 0xfe, 0xf0, 0x0d,
    ];

    #[test]
    fn fields_of_the_fixed_header_are_read() {
        let packet = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0xb8);
        assert_eq!(packet.flow_label(), 0x12345);
        assert_eq!(packet.payload_len(), 4);
        assert_eq!(packet.next_header(), 6);
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(
            packet.src_addr(),
            "2001:db8::1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            packet.dst_addr(),
            "2001:db8::2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(packet.payload(), &[0xca, 0xfe, 0xf0, 0x0d]);
        assert_eq!(packet.check_payload_len(), Ok(()));
    }

    #[test]
    fn header_shorter_than_forty_bytes_is_truncated() {
        assert_eq!(
            Ipv6Packet::new_checked(&PACKET[..39]),
            Err(WireError::Truncated(Layer::Ipv6))
        );
    }

    #[test]
    fn payload_length_beyond_the_buffer_is_rejected() {
        let packet = Ipv6Packet::new_checked(&PACKET[..43]).unwrap();
        assert_eq!(packet.check_payload_len(), Err(WireError::BadTotalLength));
        assert_eq!(packet.payload(), &[0xca, 0xfe, 0xf0]);
    }

    #[test]
    fn setters_rewrite_hop_limit_and_addresses() {
        let mut buf = PACKET;
        let mut packet = Ipv6Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_hop_limit(1);
        packet.set_src_addr(Ipv6Addr::LOCALHOST);
        packet.set_dst_addr(Ipv6Addr::UNSPECIFIED);
        assert_eq!(packet.hop_limit(), 1);
        assert_eq!(packet.src_addr(), Ipv6Addr::LOCALHOST);
        assert_eq!(packet.dst_addr(), Ipv6Addr::UNSPECIFIED);
    }
}
