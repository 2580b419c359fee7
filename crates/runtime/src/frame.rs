//! Small frame chores of the worker: finishing checksums left to offload, reading a frame's
//! destination, recognising ICMP errors to re-inject, and writing Ethernet headers.

use core::net::IpAddr;

use tether_wire::checksum;
use tether_wire::packet::{self, IpVersion, Transport};

use crate::neigh::NextHop;

const ETHERNET_LEN: usize = 14;
const TCP_CHECKSUM_AT: usize = 16;
const UDP_CHECKSUM_AT: usize = 6;

/// Writes the transport checksum of a frame whose sender left it to offload
/// (`TP_STATUS_CSUMNOTREADY`: a local sender or a veth peer). Such a frame carries only the
/// pseudo-header sum in its checksum field; the agent's incremental updates need a complete
/// checksum, and so does whoever receives the forwarded frame.
pub fn complete_checksum(frame: &mut [u8]) {
    let Ok((meta, info)) = packet::parse_frame(frame) else {
        return;
    };
    let at = match info.transport {
        Transport::Tcp { .. } => TCP_CHECKSUM_AT,
        Transport::Udp { .. } => UDP_CHECKSUM_AT,
        _ => return,
    };
    let start = meta.l3_offset + info.l4_offset;
    let end = meta.l3_offset + info.total_len;
    let Some(segment) = frame.get(start..end) else {
        return;
    };
    let mut sum = !checksum::ones_complement_sum(segment);
    if at == UDP_CHECKSUM_AT {
        sum = checksum::udp_nonzero(sum);
    }
    if let Some(field) = frame.get_mut(start + at..start + at + 2) {
        field.copy_from_slice(&sum.to_be_bytes());
    }
}

/// The IP destination address of a frame, read without parsing further (a per-frame check).
pub fn destination(frame: &[u8]) -> Option<IpAddr> {
    let meta = packet::parse_ethernet(frame).ok()?;
    let ip = frame.get(meta.l3_offset..)?;
    match ip.first()? >> 4 {
        4 => {
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            Some(IpAddr::from(dst))
        }
        6 => {
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            Some(IpAddr::from(dst))
        }
        _ => None,
    }
}

/// The IP packet of a frame that is an ICMP or ICMPv6 error, with its IP version.
pub fn icmp_error(frame: &[u8]) -> Option<(IpVersion, &[u8])> {
    let (meta, info) = packet::parse_frame(frame).ok()?;
    match info.transport {
        Transport::IcmpError { .. } => {
            let ip = frame.get(meta.l3_offset..meta.l3_offset + info.total_len)?;
            Some((info.version, ip))
        }
        _ => None,
    }
}

/// Rewrites the Ethernet addresses of `frame` for `hop`.
pub fn readdress(frame: &mut [u8], hop: &NextHop) {
    if let Some(header) = frame.get_mut(..12) {
        header[..6].copy_from_slice(&hop.dst_mac);
        header[6..].copy_from_slice(&hop.src_mac);
    }
}

/// Fills `out` with an Ethernet frame carrying the IP packet `ip` to `hop`.
pub fn encapsulate(out: &mut Vec<u8>, hop: &NextHop, ip: &[u8]) {
    let ethertype: u16 = if ip.first().is_some_and(|b| b >> 4 == 6) {
        0x86DD
    } else {
        0x0800
    };
    out.clear();
    out.reserve(ETHERNET_LEN + ip.len());
    out.extend_from_slice(&hop.dst_mac);
    out.extend_from_slice(&hop.src_mac);
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(ip);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + UDP 10.0.0.1:1000 → 10.0.0.2:53 with payload "hi".
    fn udp_frame(checksum: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 30, 0, 0, 0x40, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        let ip_sum = checksum::ipv4_header(&f[14..34]);
        f[24..26].copy_from_slice(&ip_sum.to_be_bytes());
        f.extend_from_slice(&[0x03, 0xE8, 0, 53, 0, 10]);
        f.extend_from_slice(&checksum.to_be_bytes());
        f.extend_from_slice(b"hi");
        f
    }

    #[test]
    fn a_partial_checksum_is_completed_to_the_full_one() {
        let src = "10.0.0.1".parse().unwrap();
        let dst = "10.0.0.2".parse().unwrap();
        let full = checksum::udp_v4(src, dst, &udp_frame(0)[34..]);
        let partial = checksum::pseudo_header_v4(src, dst, 17, 10);
        let mut frame = udp_frame(partial);
        complete_checksum(&mut frame);
        assert_eq!(frame, udp_frame(full));
    }

    #[test]
    fn an_ethernet_header_goes_in_front_of_the_packet() {
        let hop = NextHop {
            ifindex: 1,
            src_mac: [2; 6],
            dst_mac: [4; 6],
            mtu: 1500,
        };
        let mut out = Vec::new();
        encapsulate(&mut out, &hop, &[0x60, 1, 2]);
        assert_eq!(
            out,
            [4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 0x86, 0xDD, 0x60, 1, 2]
        );
        let mut frame = udp_frame(0);
        readdress(&mut frame, &hop);
        assert_eq!(&frame[..12], &[4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2]);
        assert!(icmp_error(&frame).is_none());
    }
}
