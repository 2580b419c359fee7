//! The packet quoted inside an ICMP error: its header in full, its transport header maybe
//! only in part.

use core::net::IpAddr;

use crate::bytes::read_u16;
use crate::flow::{PROTO_TCP, PROTO_UDP};
use crate::ipv4::Ipv4Packet;
use crate::ipv6::{self, Ipv6Packet};
use crate::packet::IpVersion;
use crate::{AffinityKey, Layer, WireError, ipv6ext};

/// Bytes of a transport header that hold both ports.
const PORTS_LEN: usize = 4;

/// Where the quoted packet's parts sit, and the key it was sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Quote {
    /// The affinity key of the quoted packet; ports 0 when they are not quoted.
    pub key: AffinityKey,
    /// Offset of the transport header from the start of the quote.
    pub l4_offset: usize,
    /// Whether the quote starts a transport header (it is not a non-first fragment).
    pub has_transport: bool,
}

/// A quote too short for its IP header says nothing usable about the flow.
fn inner_truncated(error: WireError) -> WireError {
    match error {
        WireError::Truncated(_) => WireError::Truncated(Layer::IcmpInner),
        other => other,
    }
}

/// Parses the quote of an ICMP error carried by an IP packet of `version`.
pub(crate) fn parse(version: IpVersion, quote: &[u8]) -> Result<Quote, WireError> {
    let (protocol, src, dst, l4_offset, has_transport) = match version {
        IpVersion::V4 => {
            let packet = Ipv4Packet::new_checked(quote).map_err(inner_truncated)?;
            if packet.version() != 4 {
                return Err(WireError::BadVersion);
            }
            (
                packet.protocol(),
                IpAddr::V4(packet.src_addr()),
                IpAddr::V4(packet.dst_addr()),
                packet.header_len(),
                packet.frag_offset() == 0,
            )
        }
        IpVersion::V6 => {
            let packet = Ipv6Packet::new_checked(quote).map_err(inner_truncated)?;
            if packet.version() != 6 {
                return Err(WireError::BadVersion);
            }
            let rest = quote.get(ipv6::HEADER_LEN..).unwrap_or(&[]);
            let end = ipv6ext::walk(packet.next_header(), rest).map_err(inner_truncated)?;
            let first = end.fragment.is_none_or(|f| f.offset == 0);
            (
                end.protocol,
                IpAddr::V6(packet.src_addr()),
                IpAddr::V6(packet.dst_addr()),
                ipv6::HEADER_LEN + end.offset,
                first,
            )
        }
    };
    let ports = quote
        .get(l4_offset..l4_offset + PORTS_LEN)
        .filter(|_| has_transport && matches!(protocol, PROTO_TCP | PROTO_UDP))
        .map_or((0, 0), |p| (read_u16(&p[..2]), read_u16(&p[2..])));
    Ok(Quote {
        key: AffinityKey {
            protocol,
            src,
            src_port: ports.0,
            dst,
            dst_port: ports.1,
        },
        l4_offset,
        has_transport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header (UDP, 10.0.0.1 → 10.0.0.2, total length 100) and 8 bytes of UDP,
    /// 5000 → 53.
    const V4_UDP: [u8; 28] = [
        0x45, 0, 0, 100, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, //
        0x13, 0x88, 0x00, 0x35, 0, 80, 0, 0,
    ];

    #[test]
    fn quote_with_eight_transport_bytes_yields_ports() {
        let quote = parse(IpVersion::V4, &V4_UDP).unwrap();
        assert_eq!(quote.key.to_string(), "udp 10.0.0.1:5000 -> 10.0.0.2:53");
        assert_eq!(quote.l4_offset, 20);
        assert!(quote.has_transport);
    }

    #[test]
    fn quote_without_ports_gives_ports_zero() {
        let quote = parse(IpVersion::V4, &V4_UDP[..22]).unwrap();
        assert_eq!((quote.key.src_port, quote.key.dst_port), (0, 0));
    }

    #[test]
    fn quote_shorter_than_its_ip_header_is_truncated_inner() {
        assert_eq!(
            parse(IpVersion::V4, &V4_UDP[..19]),
            Err(WireError::Truncated(Layer::IcmpInner))
        );
        assert_eq!(
            parse(IpVersion::V6, &V4_UDP),
            Err(WireError::Truncated(Layer::IcmpInner))
        );
    }

    #[test]
    fn quote_of_the_other_ip_version_is_rejected() {
        let mut buf = [0u8; 48];
        buf[0] = 0x45;
        assert_eq!(parse(IpVersion::V6, &buf), Err(WireError::BadVersion));
    }

    #[test]
    fn quoted_non_first_fragment_has_no_transport() {
        let mut buf = V4_UDP;
        buf[7] = 3;
        let quote = parse(IpVersion::V4, &buf).unwrap();
        assert!(!quote.has_transport);
        assert_eq!((quote.key.src_port, quote.key.dst_port), (0, 0));
    }
}
