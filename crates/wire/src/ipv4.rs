//! IPv4 headers, with option validation and fragment fields.

use core::net::Ipv4Addr;

use crate::bytes::{read_array, read_u16, write_u16};
use crate::checksum;
use crate::{Layer, WireError};

mod field {
    use crate::bytes::Field;

    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLAGS_FRAG: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    /// TTL and protocol share the 16-bit word the header checksum sees.
    pub const TTL_PROTOCOL: Field = 8..10;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
    pub const MIN_HEADER_LEN: usize = 20;
}

/// More-fragments flag in the flags/fragment-offset word.
const FLAG_MF: u16 = 0x2000;
/// Don't-fragment flag in the flags/fragment-offset word.
const FLAG_DF: u16 = 0x4000;
/// Option kind: end of option list.
const OPT_EOL: u8 = 0;
/// Option kind: no operation (one byte of padding).
const OPT_NOP: u8 = 1;

/// A view of an IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer`, checking that it holds the header with its options.
    ///
    /// The total length field is not checked here, because the packet quoted in an ICMP error
    /// is cut short on purpose; [`Ipv4Packet::check_total_len`] checks it.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let data = buffer.as_ref();
        let Some(&ver_ihl) = data.first() else {
            return Err(WireError::Truncated(Layer::Ipv4));
        };
        if data.len() < field::MIN_HEADER_LEN {
            return Err(WireError::Truncated(Layer::Ipv4));
        }
        let header_len = usize::from(ver_ihl & 0x0F) * 4;
        if header_len < field::MIN_HEADER_LEN {
            return Err(WireError::BadIhl);
        }
        if data.len() < header_len {
            return Err(WireError::Truncated(Layer::Ipv4));
        }
        Ok(Self { buffer })
    }

    /// Checks the total length field against the header length and the buffer.
    pub fn check_total_len(&self) -> Result<(), WireError> {
        let total = usize::from(self.total_len());
        if total > self.buffer.as_ref().len() {
            return Err(WireError::BadTotalLength);
        }
        if total < self.header_len() {
            return Err(WireError::BadIhl);
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

    /// IP version nibble (4 for a well-formed packet).
    pub fn version(&self) -> u8 {
        self.data()[field::VER_IHL] >> 4
    }

    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::VER_IHL] & 0x0F) * 4
    }

    /// Total length field: header and payload in bytes.
    pub fn total_len(&self) -> u16 {
        read_u16(&self.data()[field::TOTAL_LEN])
    }

    /// Identification field, shared by the fragments of one datagram.
    pub fn ident(&self) -> u16 {
        read_u16(&self.data()[field::IDENT])
    }

    fn flags_frag(&self) -> u16 {
        read_u16(&self.data()[field::FLAGS_FRAG])
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        self.flags_frag() & 0x1FFF
    }

    /// Whether this packet is a fragment (more fragments follow, or it is not the first).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.data()[field::TTL]
    }

    /// Protocol number of the payload.
    pub fn protocol(&self) -> u8 {
        self.data()[field::PROTOCOL]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.data()[field::CHECKSUM])
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(&self.data()[field::SRC_ADDR]))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(&self.data()[field::DST_ADDR]))
    }

    /// The header bytes, options included.
    pub fn header(&self) -> &[u8] {
        let data = self.data();
        data.get(..self.header_len()).unwrap_or(data)
    }

    /// The option bytes between the fixed header and the payload.
    pub fn options(&self) -> &[u8] {
        self.header().get(field::MIN_HEADER_LEN..).unwrap_or(&[])
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verifies(0, self.header())
    }

    /// Checks that the options are well formed: EOL ends the list, NOP is one byte, and every
    /// other option has a length of at least 2 that stays inside the header.
    pub fn check_options(&self) -> Result<(), WireError> {
        check_options(self.options())
    }

    /// The payload, up to the total length (or the end of the buffer, if that comes first).
    pub fn payload(&self) -> &[u8] {
        let data = self.data();
        let end = usize::from(self.total_len()).min(data.len());
        data.get(self.header_len()..end).unwrap_or(&[])
    }
}

/// Walks a type-length-value option list as IPv4 and TCP share it.
pub(crate) fn check_options(mut options: &[u8]) -> Result<(), WireError> {
    while let Some(&kind) = options.first() {
        match kind {
            OPT_EOL => return Ok(()),
            OPT_NOP => options = &options[1..],
            _ => {
                let len = usize::from(*options.get(1).ok_or(WireError::BadOptions)?);
                if len < 2 || len > options.len() {
                    return Err(WireError::BadOptions);
                }
                options = &options[len..];
            }
        }
    }
    Ok(())
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets the TTL, updating the header checksum incrementally.
    pub fn set_ttl_and_update_checksum(&mut self, ttl: u8) {
        let old = read_u16(&self.data()[field::TTL_PROTOCOL]);
        self.data_mut()[field::TTL] = ttl;
        let new = read_u16(&self.data()[field::TTL_PROTOCOL]);
        self.set_checksum(checksum::update_u16(self.checksum(), old, new));
    }

    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.data_mut()[field::CHECKSUM], value);
    }

    /// Recomputes the header checksum in full.
    pub fn fill_checksum(&mut self) {
        let value = checksum::ipv4_header(self.header());
        self.set_checksum(value);
    }

    /// Sets the source address; the caller fixes the header checksum.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.data_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address; the caller fixes the header checksum.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.data_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// UDP from 192.168.0.1 to 192.168.0.199, DF set, TTL 64, no options.
    const PLAIN: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0xbc, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7, 0xde, 0xad, 0xbe, 0xef,
    ];

    /// IHL 6 with options NOP, EOL and padding; a middle fragment (MF, offset 5), id 0x1234.
    const WITH_OPTIONS: [u8; 24] = [
        0x46, 0x00, 0x00, 0x18, 0x12, 0x34, 0x20, 0x05, 0x01, 0x06, 0x00, 0x00, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn fields_of_a_plain_header_are_read() {
        let packet = Ipv4Packet::new_checked(&PLAIN[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 24);
        assert!(packet.dont_frag());
        assert!(!packet.is_fragment());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), 17);
        assert_eq!(packet.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(packet.check_total_len(), Ok(()));
    }

    #[test]
    fn fragment_fields_are_read() {
        let packet = Ipv4Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
        assert_eq!(packet.ident(), 0x1234);
        assert!(packet.more_frags());
        assert_eq!(packet.frag_offset(), 5);
        assert!(packet.is_fragment());
        assert_eq!(packet.options(), &[0x01, 0x00, 0x00, 0x00]);
        assert_eq!(packet.check_options(), Ok(()));
    }

    #[test]
    fn ihl_below_five_words_is_rejected() {
        let mut buf = PLAIN;
        buf[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&buf[..]), Err(WireError::BadIhl));
    }

    #[test]
    fn header_cut_inside_its_options_is_truncated() {
        assert_eq!(
            Ipv4Packet::new_checked(&WITH_OPTIONS[..22]),
            Err(WireError::Truncated(Layer::Ipv4))
        );
    }

    #[test]
    fn total_length_beyond_the_buffer_is_rejected() {
        let mut buf = PLAIN;
        buf[3] = 0x19;
        let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.check_total_len(), Err(WireError::BadTotalLength));
    }

    #[test]
    fn option_lengths_of_zero_or_one_or_past_the_header_are_rejected() {
        assert_eq!(
            check_options(&[0x94, 0x00, 0, 0]),
            Err(WireError::BadOptions)
        );
        assert_eq!(
            check_options(&[0x94, 0x01, 0, 0]),
            Err(WireError::BadOptions)
        );
        assert_eq!(
            check_options(&[0x01, 0x94, 0x04, 0]),
            Err(WireError::BadOptions)
        );
        assert_eq!(
            check_options(&[0x01, 0x01, 0x01, 0x94]),
            Err(WireError::BadOptions)
        );
        assert_eq!(check_options(&[0x94, 0x04, 0, 0]), Ok(()));
        assert_eq!(check_options(&[0x00, 0xff, 0xff, 0xff]), Ok(()));
    }

    #[test]
    fn the_ttl_setter_keeps_the_checksum_valid() {
        let mut buf = PLAIN;
        let mut packet = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        packet.set_ttl_and_update_checksum(63);
        assert!(packet.verify_checksum());
        assert_eq!(packet.ttl(), 63);
        let incremental = packet.checksum();
        packet.fill_checksum();
        assert_eq!(packet.checksum(), incremental);
    }
}
