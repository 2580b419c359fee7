//! TCP segments. Options are validated but never rewritten.

use crate::bytes::{read_u16, read_u32, write_u16, write_u32};
use crate::{Layer, WireError};

mod field {
    use crate::bytes::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
    pub const MIN_HEADER_LEN: usize = 20;
}

/// Offset of the checksum field, for code that handles a quoted header too short for a view.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// A view of a TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer`, checking that it holds the header with its options.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let data = buffer.as_ref();
        let Some(&offset) = data.get(field::DATA_OFFSET) else {
            return Err(WireError::Truncated(Layer::Tcp));
        };
        if data.len() < field::MIN_HEADER_LEN {
            return Err(WireError::Truncated(Layer::Tcp));
        }
        let header_len = usize::from(offset >> 4) * 4;
        if header_len < field::MIN_HEADER_LEN || header_len > data.len() {
            return Err(WireError::BadDataOffset);
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

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(&self.data()[field::SRC_PORT])
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.data()[field::DST_PORT])
    }

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        read_u32(&self.data()[field::SEQ])
    }

    /// Acknowledgement number.
    pub fn ack_number(&self) -> u32 {
        read_u32(&self.data()[field::ACK])
    }

    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::DATA_OFFSET] >> 4) * 4
    }

    /// Flag byte; see [`crate::packet::tcp_flags`].
    pub fn flags(&self) -> u8 {
        self.data()[field::FLAGS]
    }

    /// Receive window.
    pub fn window(&self) -> u16 {
        read_u16(&self.data()[field::WINDOW])
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.data()[field::CHECKSUM])
    }

    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        read_u16(&self.data()[field::URGENT])
    }

    /// The option bytes.
    pub fn options(&self) -> &[u8] {
        let data = self.data();
        let end = self.header_len().min(data.len());
        data.get(field::MIN_HEADER_LEN..end).unwrap_or(&[])
    }

    /// Checks that the options are well formed (same rules as IPv4 options).
    pub fn check_options(&self) -> Result<(), WireError> {
        crate::ipv4::check_options(self.options())
    }

    /// The bytes after the header.
    pub fn payload(&self) -> &[u8] {
        self.data().get(self.header_len()..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(&mut self.data_mut()[field::SRC_PORT], port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(&mut self.data_mut()[field::DST_PORT], port);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(&mut self.data_mut()[field::SEQ], value);
    }

    /// Sets the acknowledgement number.
    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(&mut self.data_mut()[field::ACK], value);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.data_mut()[field::CHECKSUM], value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tcp_flags;

    /// SYN from port 40000 to 80, seq 1, header of 28 bytes: MSS 1460, NOP, NOP, SACK-permitted.
    const SYN: [u8; 28] = [
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0xff,
        0xff, 0x12, 0x34, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02,
    ];

    #[test]
    fn fields_and_options_of_a_syn_are_read() {
        let segment = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!(segment.src_port(), 40000);
        assert_eq!(segment.dst_port(), 80);
        assert_eq!(segment.seq_number(), 1);
        assert_eq!(segment.ack_number(), 0);
        assert_eq!(segment.header_len(), 28);
        assert_eq!(segment.flags(), tcp_flags::SYN);
        assert_eq!(segment.window(), 0xffff);
        assert_eq!(segment.checksum(), 0x1234);
        assert_eq!(segment.urgent(), 0);
        assert_eq!(segment.options().len(), 8);
        assert_eq!(segment.check_options(), Ok(()));
        assert!(segment.payload().is_empty());
    }

    #[test]
    fn data_offset_below_five_words_is_rejected() {
        let mut buf = SYN;
        buf[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&buf[..]),
            Err(WireError::BadDataOffset)
        );
    }

    #[test]
    fn data_offset_past_the_segment_is_rejected() {
        assert_eq!(
            TcpPacket::new_checked(&SYN[..24]),
            Err(WireError::BadDataOffset)
        );
    }

    #[test]
    fn segment_shorter_than_the_fixed_header_is_truncated() {
        assert_eq!(
            TcpPacket::new_checked(&SYN[..19]),
            Err(WireError::Truncated(Layer::Tcp))
        );
    }

    #[test]
    fn option_running_past_the_header_is_rejected() {
        let mut buf = SYN;
        buf[27] = 0x03;
        let segment = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(segment.check_options(), Err(WireError::BadOptions));
    }

    #[test]
    fn ports_and_sequence_numbers_can_be_rewritten() {
        let mut buf = SYN;
        let mut segment = TcpPacket::new_checked(&mut buf[..]).unwrap();
        segment.set_src_port(1);
        segment.set_dst_port(2);
        segment.set_seq_number(0xdead_beef);
        segment.set_ack_number(7);
        segment.set_checksum(0);
        assert_eq!(
            (segment.src_port(), segment.dst_port(), segment.seq_number()),
            (1, 2, 0xdead_beef)
        );
        assert_eq!((segment.ack_number(), segment.checksum()), (7, 0));
        assert_eq!(&buf[20..], &SYN[20..]);
    }
}
