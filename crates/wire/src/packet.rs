//! One-pass parse of a frame into what the agent's pipeline needs.
//!
//! CONTRACT (filled in by the wire work; signatures are what agent codes against).

use core::net::IpAddr;

use crate::{AffinityKey, WireError};

/// TCP flag bits as they sit in byte 13 of the TCP header.
pub mod tcp_flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgement field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field significant.
    pub const URG: u8 = 0x20;
}

/// Where the IP packet sits inside an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// Offset of the IP (or ARP) header from the start of the frame.
    pub l3_offset: usize,
    /// EtherType after any 802.1Q tag.
    pub ethertype: u16,
    /// The VLAN id of an 802.1Q tag, if one was present.
    pub vlan: Option<u16>,
}

/// Parses the Ethernet header (an 802.1Q tag tolerated).
pub fn parse_ethernet(frame: &[u8]) -> Result<FrameMeta, WireError> {
    let _ = frame;
    todo!("wire work")
}

/// IP version of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Fragment information of an IPv4 packet or an IPv6 packet with a Fragment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// Identification (16 bits widened for IPv4, 32 bits for IPv6).
    pub id: u32,
    /// Fragment offset in 8-byte units; 0 for the first fragment.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
}

/// What the transport part of a packet holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A TCP segment.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
        /// Flag byte, see [`tcp_flags`].
        flags: u8,
        /// Bytes of payload after the TCP header.
        payload_len: usize,
    },
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Bytes of payload after the UDP header.
        payload_len: usize,
    },
    /// An ICMP(v6) error (destination unreachable, packet too big, time exceeded, parameter
    /// problem) carrying the start of the packet that caused it.
    IcmpError {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// Offset of the embedded IP header from the start of the outer IP packet.
        inner_offset: usize,
        /// The affinity key of the embedded packet, as it was sent.
        inner_key: AffinityKey,
    },
    /// Any other ICMP(v6) message (echo and so on).
    Icmp {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
    /// A non-first fragment, or a protocol without a parsed transport header.
    Opaque,
}

/// The parsed facts of one IP packet, with offsets relative to the start of the IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// IP version.
    pub version: IpVersion,
    /// Transport protocol number (after IPv6 extension headers).
    pub protocol: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Offset of the transport header.
    pub l4_offset: usize,
    /// Length of the IP packet according to its header (never more than the buffer).
    pub total_len: usize,
    /// Fragment information, when the packet is a fragment.
    pub fragment: Option<Fragment>,
    /// Transport details.
    pub transport: Transport,
}

impl PacketInfo {
    /// Parses an IP packet (starting at the IP header). Validates every length field, IHL,
    /// TCP data offset and options, the IPv6 extension chain, and for ICMP errors the embedded
    /// header; any violation is a typed error, never a panic.
    pub fn parse(ip: &[u8]) -> Result<Self, WireError> {
        let _ = ip;
        todo!("wire work")
    }

    /// This packet's own 5-tuple (ports 0 when there are none).
    pub fn key(&self) -> AffinityKey {
        todo!("wire work")
    }

    /// The key an agent looks affinities up by: for an ICMP error the reversed key of the
    /// embedded packet (the flow the error travels with); otherwise [`PacketInfo::key`].
    pub fn lookup_key(&self) -> AffinityKey {
        todo!("wire work")
    }
}
