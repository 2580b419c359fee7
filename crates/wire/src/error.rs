//! Typed reasons why a buffer is not a packet we can process.

use core::fmt;

/// The protocol layer a check failed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// Ethernet header, with an optional 802.1Q tag.
    Ethernet,
    /// ARP packet.
    Arp,
    /// IPv4 header and options.
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// IPv6 extension headers.
    Ipv6Extension,
    /// TCP header and options.
    Tcp,
    /// UDP header.
    Udp,
    /// ICMPv4 message.
    Icmpv4,
    /// ICMPv6 message.
    Icmpv6,
    /// The packet embedded in an ICMP error.
    IcmpInner,
}

/// Why a buffer was rejected. Every variant names what is wrong; [`WireError::reason`] gives a
/// stable metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer ends before the header of this layer does.
    Truncated(Layer),
    /// Not IPv4 or IPv6 (EtherType or version nibble).
    UnsupportedEtherType(u16),
    /// The IP version nibble disagrees with the EtherType.
    BadVersion,
    /// IPv4 header length below 5 words or beyond the packet.
    BadIhl,
    /// IP total/payload length smaller than the header or larger than the buffer.
    BadTotalLength,
    /// IPv4 header checksum does not verify.
    BadHeaderChecksum,
    /// TCP data offset below 5 words or beyond the segment.
    BadDataOffset,
    /// Malformed IPv4 or TCP options (an option length of 0 or 1, or running past the header).
    BadOptions,
    /// IPv6 extension header chain malformed or too long.
    BadExtensionHeader,
    /// UDP length field smaller than 8 or larger than the IP payload.
    BadUdpLength,
    /// A rewrite asked for an address of the other family than the packet's.
    AddressFamilyMismatch,
}

impl WireError {
    /// A short, stable label for counters (`drops{reason="..."}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Truncated(Layer::Ethernet) => "truncated_ethernet",
            Self::Truncated(Layer::Arp) => "truncated_arp",
            Self::Truncated(Layer::Ipv4) => "truncated_ipv4",
            Self::Truncated(Layer::Ipv6) => "truncated_ipv6",
            Self::Truncated(Layer::Ipv6Extension) => "truncated_ipv6_extension",
            Self::Truncated(Layer::Tcp) => "truncated_tcp",
            Self::Truncated(Layer::Udp) => "truncated_udp",
            Self::Truncated(Layer::Icmpv4) => "truncated_icmpv4",
            Self::Truncated(Layer::Icmpv6) => "truncated_icmpv6",
            Self::Truncated(Layer::IcmpInner) => "truncated_icmp_inner",
            Self::UnsupportedEtherType(_) => "unsupported_ethertype",
            Self::BadVersion => "bad_ip_version",
            Self::BadIhl => "bad_ihl",
            Self::BadTotalLength => "bad_total_length",
            Self::BadHeaderChecksum => "bad_header_checksum",
            Self::BadDataOffset => "bad_data_offset",
            Self::BadOptions => "bad_options",
            Self::BadExtensionHeader => "bad_extension_header",
            Self::BadUdpLength => "bad_udp_length",
            Self::AddressFamilyMismatch => "address_family_mismatch",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated(layer) => write!(f, "packet truncated inside the {layer:?} header"),
            Self::UnsupportedEtherType(t) => write!(f, "EtherType {t:#06x} is not IPv4 or IPv6"),
            Self::BadVersion => f.write_str("IP version field does not match the EtherType"),
            Self::BadIhl => f.write_str("IPv4 header length field is invalid"),
            Self::BadTotalLength => f.write_str("IP length field disagrees with the packet size"),
            Self::BadHeaderChecksum => f.write_str("IPv4 header checksum is wrong"),
            Self::BadDataOffset => f.write_str("TCP data offset is invalid"),
            Self::BadOptions => f.write_str("IP or TCP options are malformed"),
            Self::BadExtensionHeader => f.write_str("IPv6 extension header chain is malformed"),
            Self::BadUdpLength => f.write_str("UDP length field is invalid"),
            Self::AddressFamilyMismatch => {
                f.write_str("rewrite address is not of the packet's address family")
            }
        }
    }
}

impl core::error::Error for WireError {}
