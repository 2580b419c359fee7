//! Packets built and checked with etherparse, an implementation independent of ours.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TcpOptionElement, TransportHeader};
use proptest::prelude::*;

/// What a generated packet carries.
#[derive(Clone, Debug)]
pub struct Spec {
    pub v6: bool,
    pub tcp: bool,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub psh: bool,
    pub tcp_options: bool,
    pub ttl: u8,
    /// IPv4 options or an IPv6 hop-by-hop header, inserted after building.
    pub ip_extension: bool,
    /// UDP over IPv4 sent without a checksum.
    pub udp_no_checksum: bool,
    pub payload: Vec<u8>,
}

impl Spec {
    pub fn src_addr(&self) -> IpAddr {
        addr(self.v6, self.src)
    }

    pub fn dst_addr(&self) -> IpAddr {
        addr(self.v6, self.dst)
    }
}

pub fn addr(v6: bool, bytes: [u8; 16]) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

pub fn v4(addr: IpAddr) -> [u8; 4] {
    match addr {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("expected IPv4"),
    }
}

pub fn v6(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => panic!("expected IPv6"),
    }
}

prop_compose! {
    /// A random valid IPv4 or IPv6 TCP or UDP packet description.
    pub fn spec()(
        v6 in any::<bool>(),
        tcp in any::<bool>(),
        src in any::<[u8; 16]>(),
        dst in any::<[u8; 16]>(),
        (src_port, dst_port) in any::<(u16, u16)>(),
        seq in any::<u32>(),
        ack in proptest::option::of(any::<u32>()),
        (syn, fin, psh, tcp_options) in any::<(bool, bool, bool, bool)>(),
        ttl in any::<u8>(),
        ip_extension in any::<bool>(),
        udp_no_checksum in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) -> Spec {
        Spec {
            v6, tcp, src, dst, src_port, dst_port, seq, ack, syn, fin, psh, tcp_options, ttl,
            ip_extension, udp_no_checksum: udp_no_checksum && !v6 && !tcp, payload,
        }
    }
}

/// Builds the IP packet `spec` describes.
pub fn build(spec: &Spec) -> Vec<u8> {
    let ip = if spec.v6 {
        PacketBuilder::ipv6(spec.src, spec.dst, spec.ttl)
    } else {
        PacketBuilder::ipv4(v4(spec.src_addr()), v4(spec.dst_addr()), spec.ttl)
    };
    let mut out = Vec::new();
    if spec.tcp {
        let mut step = ip.tcp(spec.src_port, spec.dst_port, spec.seq, 4096);
        if let Some(ack) = spec.ack {
            step = step.ack(ack);
        }
        if spec.syn {
            step = step.syn();
        }
        if spec.fin {
            step = step.fin();
        }
        if spec.psh {
            step = step.psh();
        }
        if spec.tcp_options {
            let options = [
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ];
            step = step.options(&options).expect("options fit");
        }
        step.write(&mut out, &spec.payload)
            .expect("writing to a Vec");
    } else {
        ip.udp(spec.src_port, spec.dst_port)
            .write(&mut out, &spec.payload)
            .expect("writing to a Vec");
    }
    if spec.udp_no_checksum {
        out[26..28].fill(0);
    }
    if spec.ip_extension {
        insert_ip_extension(&mut out, spec.v6);
    }
    out
}

/// Adds 4 bytes of IPv4 options (NOP, NOP, NOP, EOL) or an 8-byte IPv6 hop-by-hop header
/// holding a PadN option. Neither changes the transport checksum.
pub fn insert_ip_extension(packet: &mut Vec<u8>, v6: bool) {
    if v6 {
        let next = packet[6];
        packet.splice(40..40, [next, 0, 1, 4, 0, 0, 0, 0]);
        packet[6] = 0;
        let len = u16::from_be_bytes([packet[4], packet[5]]) + 8;
        packet[4..6].copy_from_slice(&len.to_be_bytes());
    } else {
        packet.splice(20..20, [1, 1, 1, 0]);
        packet[0] += 1;
        let len = u16::from_be_bytes([packet[2], packet[3]]) + 4;
        packet[2..4].copy_from_slice(&len.to_be_bytes());
        fix_ipv4_header_checksum(packet);
    }
}

/// Sets the IPv4 header checksum with etherparse's computation.
pub fn fix_ipv4_header_checksum(packet: &mut [u8]) {
    let header = etherparse::Ipv4HeaderSlice::from_slice(packet)
        .expect("an IPv4 header")
        .to_header();
    let sum = header.calc_header_checksum();
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// Asserts, with etherparse's own checksum code, that every checksum of the IP packet
/// `ip` equals a full recompute. UDP over IPv4 without a checksum must still have none.
pub fn assert_checksums_valid(ip: &[u8], udp_no_checksum: bool) {
    let headers = PacketHeaders::from_ip_slice(ip).expect("etherparse parses the packet");
    let payload = headers.payload.slice();
    let net = headers.net.expect("an IP header");
    if let NetHeaders::Ipv4(h, _) = &net {
        assert_eq!(
            h.header_checksum,
            h.calc_header_checksum(),
            "IPv4 header checksum"
        );
    }
    match (headers.transport.expect("a transport header"), &net) {
        (TransportHeader::Tcp(t), NetHeaders::Ipv4(h, _)) => {
            assert_eq!(
                t.checksum,
                t.calc_checksum_ipv4(h, payload).expect("small packet"),
                "TCP/IPv4"
            );
        }
        (TransportHeader::Tcp(t), NetHeaders::Ipv6(h, _)) => {
            assert_eq!(
                t.checksum,
                t.calc_checksum_ipv6(h, payload).expect("small packet"),
                "TCP/IPv6"
            );
        }
        (TransportHeader::Udp(u), NetHeaders::Ipv4(h, _)) => {
            if udp_no_checksum {
                assert_eq!(u.checksum, 0, "UDP/IPv4 without checksum keeps 0");
            } else {
                assert_eq!(
                    u.checksum,
                    u.calc_checksum_ipv4(h, payload).expect("small packet"),
                    "UDP/IPv4"
                );
            }
        }
        (TransportHeader::Udp(u), NetHeaders::Ipv6(h, _)) => {
            assert_eq!(
                u.checksum,
                u.calc_checksum_ipv6(h, payload).expect("small packet"),
                "UDP/IPv6"
            );
        }
        (TransportHeader::Icmpv4(i), _) => {
            assert_eq!(i.checksum, i.icmp_type.calc_checksum(payload), "ICMPv4");
        }
        (TransportHeader::Icmpv6(i), NetHeaders::Ipv6(h, _)) => {
            let expected = i.icmp_type.calc_checksum(h.source, h.destination, payload);
            assert_eq!(i.checksum, expected.expect("small packet"), "ICMPv6");
        }
        (other, _) => panic!("unexpected transport {other:?}"),
    }
}
