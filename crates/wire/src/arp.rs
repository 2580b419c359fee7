//! ARP packets for IPv4 over Ethernet.

use core::net::Ipv4Addr;

use crate::bytes::{read_array, read_u16, write_u16};
use crate::ethernet::{ETHERTYPE_IPV4, MacAddr};
use crate::{Layer, WireError};

/// Operation: request.
pub const OP_REQUEST: u16 = 1;
/// Operation: reply.
pub const OP_REPLY: u16 = 2;
/// Hardware type of Ethernet.
pub const HARDWARE_ETHERNET: u16 = 1;

mod field {
    use crate::bytes::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
    pub const PACKET_LEN: usize = 28;
}

/// A view of an ARP packet; the address fields assume Ethernet and IPv4
/// (see [`ArpPacket::is_ethernet_ipv4`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer`, checking that it holds an Ethernet/IPv4-sized ARP packet.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < field::PACKET_LEN {
            return Err(WireError::Truncated(Layer::Arp));
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

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        read_u16(&self.data()[field::HTYPE])
    }

    /// Protocol type (an EtherType; 0x0800 for IPv4).
    pub fn protocol_type(&self) -> u16 {
        read_u16(&self.data()[field::PTYPE])
    }

    /// Whether the address fields are Ethernet (6 bytes) and IPv4 (4 bytes), the only kind
    /// whose addresses this view reads.
    pub fn is_ethernet_ipv4(&self) -> bool {
        let data = self.data();
        self.hardware_type() == HARDWARE_ETHERNET
            && self.protocol_type() == ETHERTYPE_IPV4
            && data[field::HLEN] == 6
            && data[field::PLEN] == 4
    }

    /// Operation: [`OP_REQUEST`] or [`OP_REPLY`].
    pub fn operation(&self) -> u16 {
        read_u16(&self.data()[field::OPER])
    }

    /// Sender hardware address.
    pub fn sender_hardware_addr(&self) -> MacAddr {
        read_array(&self.data()[field::SHA])
    }

    /// Sender protocol address.
    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(&self.data()[field::SPA]))
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> MacAddr {
        read_array(&self.data()[field::THA])
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(&self.data()[field::TPA]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Writes the fixed fields of an Ethernet/IPv4 ARP packet with the given operation.
    pub fn set_ethernet_ipv4(&mut self, operation: u16) {
        let data = self.data_mut();
        write_u16(&mut data[field::HTYPE], HARDWARE_ETHERNET);
        write_u16(&mut data[field::PTYPE], ETHERTYPE_IPV4);
        data[field::HLEN] = 6;
        data[field::PLEN] = 4;
        write_u16(&mut data[field::OPER], operation);
    }

    /// Sets the sender hardware and protocol addresses.
    pub fn set_sender(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        self.data_mut()[field::SHA].copy_from_slice(&mac);
        self.data_mut()[field::SPA].copy_from_slice(&ip.octets());
    }

    /// Sets the target hardware and protocol addresses.
    pub fn set_target(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        self.data_mut()[field::THA].copy_from_slice(&mac);
        self.data_mut()[field::TPA].copy_from_slice(&ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who has 10.0.0.2? Tell 10.0.0.1 (at 02:00:00:00:00:01).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x02,
    ];

    #[test]
    fn request_fields_are_read() {
        let packet = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert!(packet.is_ethernet_ipv4());
        assert_eq!(packet.operation(), OP_REQUEST);
        assert_eq!(packet.sender_hardware_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(packet.sender_protocol_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(packet.target_hardware_addr(), [0; 6]);
        assert_eq!(packet.target_protocol_addr(), Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn reply_built_in_place_reads_back() {
        let mut buf = [0u8; 28];
        let mut packet = ArpPacket::new_checked(&mut buf[..]).unwrap();
        packet.set_ethernet_ipv4(OP_REPLY);
        packet.set_sender([2, 0, 0, 0, 0, 2], Ipv4Addr::new(10, 0, 0, 2));
        packet.set_target([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1));
        assert!(packet.is_ethernet_ipv4());
        assert_eq!(packet.operation(), OP_REPLY);
        assert_eq!(&buf[8..18], &[2, 0, 0, 0, 0, 2, 10, 0, 0, 2]);
        assert_eq!(&buf[18..28], &[2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
    }

    #[test]
    fn packet_shorter_than_28_bytes_is_truncated() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]),
            Err(WireError::Truncated(Layer::Arp))
        );
    }

    #[test]
    fn other_hardware_is_not_ethernet_ipv4() {
        let mut buf = REQUEST;
        buf[1] = 6;
        assert!(!ArpPacket::new_checked(&buf[..]).unwrap().is_ethernet_ipv4());
    }
}
