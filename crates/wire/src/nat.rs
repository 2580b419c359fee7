//! In-place rewrites with incremental checksum updates (RFC 1624).
//!
//! The fast path never sums a payload: every checksum is adjusted for the words that changed.
//! Only the checksum of an ICMP error is recomputed in full, because the rewritten quote sits
//! inside the message it covers.

use core::net::IpAddr;

use crate::bytes::{read_u16, write_u16};
use crate::checksum;
use crate::flow::{PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::icmpv4::Icmpv4Packet;
use crate::icmpv6::{self, Icmpv6Packet};
use crate::ipv4::Ipv4Packet;
use crate::ipv6::Ipv6Packet;
use crate::packet::{IpVersion, PacketInfo, Transport};
use crate::tcp::{self, TcpPacket};
use crate::udp::{self, UdpPacket};
use crate::{Layer, WireError, quote};

/// Sequence numbers at most this far ahead of a reference are "at or after" it (RFC 1982).
const HALF_SEQUENCE_SPACE: u32 = 1 << 31;

/// Which header fields of a flow's packets to replace; `None` keeps the field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rewrite {
    /// New source address.
    pub src: Option<IpAddr>,
    /// New source port.
    pub src_port: Option<u16>,
    /// New destination address.
    pub dst: Option<IpAddr>,
    /// New destination port.
    pub dst_port: Option<u16>,
}

/// Applies `rewrite` to the packet in `ip`, whose parse is `info`, fixing the IPv4 header
/// checksum and the TCP/UDP/ICMPv6 checksums incrementally.
///
/// `rewrite` is the rewrite of the flow named by `info.lookup_key()`. For an ICMP error the
/// outer header is rewritten where it carries that flow's address (a router's source address
/// stays), and the embedded packet, which travelled the other way, is rewritten mirrored
/// (its destination takes `rewrite.src`, its source takes `rewrite.dst`, ports likewise); the
/// ICMP checksum is then recomputed. For a non-first fragment only addresses are rewritten;
/// for a first fragment the transport checksum is updated for the whole datagram.
pub fn apply(ip: &mut [u8], info: &PacketInfo, rewrite: &Rewrite) -> Result<(), WireError> {
    let family_ok = |addr: Option<IpAddr>| {
        matches!(
            (addr, info.version),
            (None, _) | (Some(IpAddr::V4(_)), IpVersion::V4) | (Some(IpAddr::V6(_)), IpVersion::V6)
        )
    };
    if !family_ok(rewrite.src) || !family_ok(rewrite.dst) {
        return Err(WireError::AddressFamilyMismatch);
    }
    let ip = ip
        .get_mut(..info.total_len)
        .ok_or(WireError::BadTotalLength)?;
    match info.transport {
        Transport::IcmpError { inner_offset, .. } => {
            apply_icmp_error(ip, info, inner_offset, rewrite)
        }
        _ => apply_flow(ip, info, rewrite),
    }
}

/// Rewrites a packet that is not an ICMP error: its IP header and, unless it is a non-first
/// fragment, its transport header.
#[inline]
fn apply_flow(ip: &mut [u8], info: &PacketInfo, rewrite: &Rewrite) -> Result<(), WireError> {
    let l4_offset = info.l4_offset.min(ip.len());
    let l4 = &ip[l4_offset..];
    // Checked before anything is written, so a stale `info` cannot leave a half-rewritten packet.
    match info.transport {
        Transport::Tcp { .. } => {
            TcpPacket::new_checked(l4)?;
        }
        Transport::Udp { .. } => {
            UdpPacket::new_checked(l4)?;
        }
        _ => {}
    }
    let addr_delta = rewrite_ip_header(ip, info.version, rewrite.src, rewrite.dst)?;
    if !matches!(info.transport, Transport::Opaque) {
        let ports = Ports {
            src: rewrite.src_port,
            dst: rewrite.dst_port,
        };
        rewrite_transport(
            &mut ip[l4_offset..],
            info.protocol,
            info.version,
            addr_delta,
            ports,
        );
    }
    Ok(())
}

/// New port values; `None` keeps a port.
#[derive(Clone, Copy, Debug)]
struct Ports {
    src: Option<u16>,
    dst: Option<u16>,
}

/// Rewrites the addresses of the IP header at the start of `ip`, fixing an IPv4 header
/// checksum (once, for both addresses), and returns the RFC 1624 difference (Σ~m + Σm') of the
/// address words it changed, which the pseudo-header checksums of TCP, UDP and ICMPv6 take as
/// they are (0 when nothing changed; a zero difference leaves a checksum as it is).
fn rewrite_ip_header(
    ip: &mut [u8],
    version: IpVersion,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
) -> Result<u64, WireError> {
    let mut delta = 0;
    match version {
        IpVersion::V4 => {
            let mut packet = Ipv4Packet::new_checked(ip)?;
            if let Some(IpAddr::V4(new)) = src {
                delta += checksum::delta_u32(packet.src_addr().to_bits(), new.to_bits());
                packet.set_src_addr(new);
            }
            if let Some(IpAddr::V4(new)) = dst {
                delta += checksum::delta_u32(packet.dst_addr().to_bits(), new.to_bits());
                packet.set_dst_addr(new);
            }
            let sum = checksum::apply_delta(packet.checksum(), delta);
            packet.set_checksum(sum);
        }
        IpVersion::V6 => {
            let mut packet = Ipv6Packet::new_checked(ip)?;
            if let Some(IpAddr::V6(new)) = src {
                delta += checksum::delta_u128(packet.src_addr().to_bits(), new.to_bits());
                packet.set_src_addr(new);
            }
            if let Some(IpAddr::V6(new)) = dst {
                delta += checksum::delta_u128(packet.dst_addr().to_bits(), new.to_bits());
                packet.set_dst_addr(new);
            }
        }
    }
    Ok(delta)
}

/// Rewrites the ports of a TCP or UDP header in `l4` and fixes its checksum, or fixes the
/// pseudo-header part of an ICMPv6 checksum. `l4` may be a quote cut short: fields past its
/// end are left alone, so a quote's checksum is updated only when the quote holds it.
fn rewrite_transport(
    l4: &mut [u8],
    protocol: u8,
    version: IpVersion,
    addr_delta: u64,
    ports: Ports,
) {
    let checksum_at = match (protocol, version) {
        (PROTO_TCP, _) => tcp::CHECKSUM_OFFSET,
        (PROTO_UDP, _) => udp::CHECKSUM_OFFSET,
        (PROTO_ICMPV6, IpVersion::V6) => icmpv6::CHECKSUM_OFFSET,
        _ => return,
    };
    let mut delta = addr_delta;
    if matches!(protocol, PROTO_TCP | PROTO_UDP)
        && let Some(field) = l4.get_mut(..4)
    {
        for (at, new) in [(0, ports.src), (2, ports.dst)] {
            if let Some(new) = new {
                let word = &mut field[at..at + 2];
                let old = read_u16(word);
                if old != new {
                    delta += checksum::delta_u16(old, new);
                    write_u16(word, new);
                }
            }
        }
    }
    let Some(field) = l4.get_mut(checksum_at..checksum_at + 2) else {
        return;
    };
    let old = read_u16(field);
    if protocol == PROTO_UDP && version == IpVersion::V4 && old == 0 {
        return;
    }
    let mut sum = checksum::apply_delta(old, delta);
    if protocol == PROTO_UDP {
        sum = checksum::udp_nonzero(sum);
    }
    write_u16(field, sum);
}

fn apply_icmp_error(
    ip: &mut [u8],
    info: &PacketInfo,
    inner_offset: usize,
    rewrite: &Rewrite,
) -> Result<(), WireError> {
    // Parsed before anything is written, so a bad quote leaves the packet untouched.
    let quoted = ip
        .get(inner_offset..)
        .ok_or(WireError::Truncated(Layer::IcmpInner))?;
    let inner = quote::parse(info.version, quoted)?;
    let flow = inner.key.reversed();
    let outer_src = rewrite.src.filter(|_| info.src == flow.src);
    let outer_dst = rewrite.dst.filter(|_| info.dst == flow.dst);
    rewrite_ip_header(ip, info.version, outer_src, outer_dst)?;

    let quoted = ip.get_mut(inner_offset..).unwrap_or(&mut []);
    let addr_delta = rewrite_ip_header(quoted, info.version, rewrite.dst, rewrite.src)?;
    if inner.has_transport {
        let l4 = quoted.get_mut(inner.l4_offset..).unwrap_or(&mut []);
        let ports = Ports {
            src: rewrite.dst_port,
            dst: rewrite.src_port,
        };
        rewrite_transport(l4, inner.key.protocol, info.version, addr_delta, ports);
    }

    match info.version {
        IpVersion::V4 => {
            let message = ip.get_mut(info.l4_offset..).unwrap_or(&mut []);
            Icmpv4Packet::new_checked(message)?.fill_checksum();
        }
        IpVersion::V6 => {
            let (header, message) = ip.split_at_mut(info.l4_offset.min(ip.len()));
            let outer = Ipv6Packet::new_checked(&*header)?;
            Icmpv6Packet::new_checked(message)?.fill_checksum(outer.src_addr(), outer.dst_addr());
        }
    }
    Ok(())
}

/// Adjusts a TCP segment's sequence and acknowledgement numbers: `seq_delta` is added
/// (wrapping) when the sequence number is at or after `initial_seq` in sequence space, and
/// `ack_delta` likewise against `initial_ack`. The TCP checksum is updated incrementally.
/// Packets that are not TCP are left alone.
pub fn adjust_sequence(
    ip: &mut [u8],
    info: &PacketInfo,
    seq_delta: u32,
    initial_seq: u32,
    ack_delta: u32,
    initial_ack: u32,
) -> Result<(), WireError> {
    if !matches!(info.transport, Transport::Tcp { .. }) {
        return Ok(());
    }
    let l4 = ip
        .get_mut(info.l4_offset..info.total_len)
        .ok_or(WireError::Truncated(Layer::Tcp))?;
    let mut segment = TcpPacket::new_checked(l4)?;
    let mut sum = segment.checksum();
    let seq = segment.seq_number();
    if seq_delta != 0 && seq.wrapping_sub(initial_seq) < HALF_SEQUENCE_SPACE {
        let new = seq.wrapping_add(seq_delta);
        sum = checksum::update_u32(sum, seq, new);
        segment.set_seq_number(new);
    }
    let ack = segment.ack_number();
    if ack_delta != 0 && ack.wrapping_sub(initial_ack) < HALF_SEQUENCE_SPACE {
        let new = ack.wrapping_add(ack_delta);
        sum = checksum::update_u32(sum, ack, new);
        segment.set_ack_number(new);
    }
    segment.set_checksum(sum);
    Ok(())
}

/// Decrements the IPv4 TTL (fixing the header checksum) or the IPv6 hop limit, as a router
/// does. Returns `false`, leaving the packet unchanged, when the packet must not be forwarded
/// because the value is already 0 or 1.
#[inline]
pub fn decrement_ttl(ip: &mut [u8], info: &PacketInfo) -> Result<bool, WireError> {
    match info.version {
        IpVersion::V4 => {
            let mut packet = Ipv4Packet::new_checked(ip)?;
            let ttl = packet.ttl();
            if ttl <= 1 {
                return Ok(false);
            }
            packet.set_ttl_and_update_checksum(ttl - 1);
        }
        IpVersion::V6 => {
            let mut packet = Ipv6Packet::new_checked(ip)?;
            let hop_limit = packet.hop_limit();
            if hop_limit <= 1 {
                return Ok(false);
            }
            packet.set_hop_limit(hop_limit - 1);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;
    use crate::packet::Fragment;

    /// IPv4 TCP SYN 10.0.0.1:40000 -> 10.0.0.2:80, seq 0x01020304, MSS option, valid checksums.
    const SYN_V4: [u8; 44] = [
        0x45, 0x00, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x14, 0x96, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, //
        0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xff,
        0xff, 0xe3, 0x8d, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    ];

    fn tcp_checksum_is_valid(packet: &[u8]) -> bool {
        let src = core::net::Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
        let dst = core::net::Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        let stored = u16::from_be_bytes([packet[36], packet[37]]);
        stored == checksum::tcp_v4(src, dst, &packet[20..])
    }

    #[test]
    fn destination_nat_rewrites_address_port_and_both_checksums() {
        let mut packet = SYN_V4;
        let info = PacketInfo::parse(&packet).unwrap();
        let rewrite = Rewrite {
            dst: Some(IpAddr::from([192, 168, 7, 7])),
            dst_port: Some(8080),
            ..Rewrite::default()
        };
        apply(&mut packet, &info, &rewrite).unwrap();
        let after = PacketInfo::parse(&packet).unwrap();
        assert_eq!(
            after.key().to_string(),
            "tcp 10.0.0.1:40000 -> 192.168.7.7:8080"
        );
        assert!(tcp_checksum_is_valid(&packet));
        assert_eq!(&packet[40..], &SYN_V4[40..], "options stay as they were");
    }

    #[test]
    fn non_first_fragment_gets_addresses_only() {
        let mut packet = SYN_V4;
        let mut info = PacketInfo::parse(&packet).unwrap();
        info.fragment = Some(Fragment {
            id: 0x1234,
            offset: 1,
            more: false,
        });
        info.transport = Transport::Opaque;
        let rewrite = Rewrite {
            src: Some(IpAddr::from([1, 2, 3, 4])),
            src_port: Some(1),
            ..Rewrite::default()
        };
        apply(&mut packet, &info, &rewrite).unwrap();
        assert_eq!(&packet[12..16], &[1, 2, 3, 4]);
        assert_eq!(
            &packet[20..],
            &SYN_V4[20..],
            "fragment data is not a TCP header"
        );
        assert!(
            Ipv4Packet::new_checked(&packet[..])
                .unwrap()
                .verify_checksum()
        );
    }

    #[test]
    fn sequence_before_the_initial_value_is_not_adjusted() {
        let mut packet = SYN_V4;
        let info = PacketInfo::parse(&packet).unwrap();
        adjust_sequence(&mut packet, &info, 1000, 0x0102_0305, 0, 0).unwrap();
        assert_eq!(packet, SYN_V4);
    }

    #[test]
    fn sequence_adjust_treats_wrapped_numbers_as_after_the_initial_value() {
        let mut packet = SYN_V4;
        let info = PacketInfo::parse(&packet).unwrap();
        adjust_sequence(&mut packet, &info, 0x10, 0xffff_fff0, 5, 0).unwrap();
        assert_eq!(&packet[24..28], &0x0102_0314u32.to_be_bytes());
        assert_eq!(&packet[28..32], &5u32.to_be_bytes());
        assert!(tcp_checksum_is_valid(&packet));
    }

    #[test]
    fn ttl_of_one_is_not_forwarded_and_left_alone() {
        let mut packet = SYN_V4;
        packet[8] = 1;
        let sum = checksum::ipv4_header(&packet[..20]);
        packet[10..12].copy_from_slice(&sum.to_be_bytes());
        let info = PacketInfo::parse(&packet).unwrap();
        let before = packet;
        assert_eq!(decrement_ttl(&mut packet, &info), Ok(false));
        assert_eq!(packet, before);
    }

    #[test]
    fn info_that_does_not_fit_the_buffer_is_an_error_not_a_panic() {
        let info = PacketInfo::parse(&SYN_V4).unwrap();
        let mut short = SYN_V4;
        let rewrite = Rewrite {
            dst_port: Some(1),
            ..Rewrite::default()
        };
        assert!(apply(&mut short[..30], &info, &rewrite).is_err());
        assert!(adjust_sequence(&mut short[..30], &info, 1, 0, 1, 0).is_err());
        assert!(decrement_ttl(&mut short[..10], &info).is_err());
    }
}
