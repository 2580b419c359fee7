//! Ethernet II frames, with an optional 802.1Q VLAN tag.

use crate::bytes::{Field, read_array, read_u16};
use crate::{Layer, WireError};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// Tag protocol identifier of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// A 48-bit MAC address.
pub type MacAddr = [u8; 6];

mod field {
    use crate::bytes::Field;

    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const HEADER_LEN: usize = 14;
    /// Tag control information of an 802.1Q tag: PCP, DEI, 12-bit VLAN id.
    pub const VLAN_TCI: Field = 14..16;
    pub const VLAN_ETHERTYPE: Field = 16..18;
    pub const TAGGED_HEADER_LEN: usize = 18;
}

/// A view of an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer`, checking that it holds the whole header including any VLAN tag.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let data = buffer.as_ref();
        let needed = match data.get(field::ETHERTYPE) {
            None => return Err(WireError::Truncated(Layer::Ethernet)),
            Some(t) if read_u16(t) == ETHERTYPE_VLAN => field::TAGGED_HEADER_LEN,
            Some(_) => field::HEADER_LEN,
        };
        if data.len() < needed {
            return Err(WireError::Truncated(Layer::Ethernet));
        }
        Ok(Self { buffer })
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    pub fn dst_addr(&self) -> MacAddr {
        read_array(&self.buffer.as_ref()[field::DST])
    }

    /// Source MAC address.
    pub fn src_addr(&self) -> MacAddr {
        read_array(&self.buffer.as_ref()[field::SRC])
    }

    fn is_tagged(&self) -> bool {
        read_u16(&self.buffer.as_ref()[field::ETHERTYPE]) == ETHERTYPE_VLAN
    }

    fn field_u16(&self, field: Field) -> u16 {
        read_u16(&self.buffer.as_ref()[field])
    }

    /// The EtherType of the payload, after any VLAN tag.
    pub fn ethertype(&self) -> u16 {
        if self.is_tagged() {
            self.field_u16(field::VLAN_ETHERTYPE)
        } else {
            self.field_u16(field::ETHERTYPE)
        }
    }

    /// The 12-bit VLAN id of the 802.1Q tag, if the frame has one.
    pub fn vlan(&self) -> Option<u16> {
        self.is_tagged()
            .then(|| self.field_u16(field::VLAN_TCI) & 0x0FFF)
    }

    /// Length of the header, 14 or 18 bytes with a VLAN tag.
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            field::TAGGED_HEADER_LEN
        } else {
            field::HEADER_LEN
        }
    }

    /// The bytes after the header.
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        data.get(self.header_len()..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr);
    }

    /// Sets the source MAC address.
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr);
    }

    /// The bytes after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        self.buffer.as_mut().get_mut(start..).unwrap_or(&mut [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 16] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, 0x45, 0x00,
    ];

    const TAGGED: [u8; 20] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x81, 0x00, 0x20, 0x2a, 0x86, 0xdd, 0x60,
        0x00,
    ];

    #[test]
    fn untagged_frame_exposes_addresses_and_ethertype() {
        let frame = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(frame.dst_addr(), [0x02, 0, 0, 0, 0, 0x01]);
        assert_eq!(frame.src_addr(), [0x02, 0, 0, 0, 0, 0x02]);
        assert_eq!(frame.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(frame.vlan(), None);
        assert_eq!(frame.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn vlan_tag_is_skipped_and_its_id_reported() {
        let frame = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(frame.ethertype(), ETHERTYPE_IPV6);
        assert_eq!(frame.vlan(), Some(42));
        assert_eq!(frame.header_len(), 18);
        assert_eq!(frame.payload(), &[0x60, 0x00]);
    }

    #[test]
    fn frame_cut_inside_the_vlan_tag_is_truncated() {
        for len in 0..18 {
            assert_eq!(
                EthernetFrame::new_checked(&TAGGED[..len]),
                Err(WireError::Truncated(Layer::Ethernet)),
                "length {len}"
            );
        }
    }

    #[test]
    fn mac_addresses_can_be_rewritten() {
        let mut buf = UNTAGGED;
        let mut frame = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        frame.set_dst_addr([0xaa; 6]);
        frame.set_src_addr([0xbb; 6]);
        assert_eq!(&buf[..12], &[[0xaa; 6], [0xbb; 6]].concat()[..]);
    }
}
