//! Fragments: the first carries the ports, later ones only addresses, and a NAT of all of
//! them reassembles into a datagram whose checksums etherparse accepts.

mod common;

use std::net::IpAddr;

use common::{assert_checksums_valid, fix_ipv4_header_checksum};
use etherparse::PacketBuilder;
use tether_wire::nat::{self, Rewrite};
use tether_wire::packet::{Fragment, PacketInfo, Transport};

/// Bytes of the datagram's IP payload that go into the first fragment (a multiple of 8).
const FIRST_PART: usize = 24;

fn udp_v4_datagram() -> Vec<u8> {
    let mut packet = Vec::new();
    PacketBuilder::ipv4([10, 1, 1, 1], [10, 2, 2, 2], 64)
        .udp(6000, 7000)
        .write(&mut packet, &(0..40).collect::<Vec<u8>>())
        .expect("writing to a Vec");
    packet
}

fn tcp_v6_datagram() -> Vec<u8> {
    let mut packet = Vec::new();
    PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
        .tcp(6000, 7000, 99, 1000)
        .write(&mut packet, &(0..40).collect::<Vec<u8>>())
        .expect("writing to a Vec");
    packet
}

/// Splits an IPv4 datagram (20-byte header) into two fragments with identification 0x4242.
fn split_v4(datagram: &[u8]) -> [Vec<u8>; 2] {
    let (header, payload) = datagram.split_at(20);
    let (first, second) = payload.split_at(FIRST_PART);
    [(first, 0u16, true), (second, FIRST_PART as u16 / 8, false)].map(|(part, offset, more)| {
        let mut fragment = header.to_vec();
        fragment.extend_from_slice(part);
        let total = fragment.len() as u16;
        fragment[2..4].copy_from_slice(&total.to_be_bytes());
        fragment[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
        let flags = offset | if more { 0x2000 } else { 0 };
        fragment[6..8].copy_from_slice(&flags.to_be_bytes());
        fix_ipv4_header_checksum(&mut fragment);
        fragment
    })
}

/// Splits an IPv6 datagram (no extension headers) into two fragments with a Fragment header.
fn split_v6(datagram: &[u8]) -> [Vec<u8>; 2] {
    let (header, payload) = datagram.split_at(40);
    let (first, second) = payload.split_at(FIRST_PART);
    let next = header[6];
    [(first, 0u16, true), (second, FIRST_PART as u16 / 8, false)].map(|(part, offset, more)| {
        let mut fragment = header.to_vec();
        fragment[6] = 44;
        let word = (offset << 3) | u16::from(more);
        fragment.extend_from_slice(&[next, 0]);
        fragment.extend_from_slice(&word.to_be_bytes());
        fragment.extend_from_slice(&0x0bad_cafe_u32.to_be_bytes());
        fragment.extend_from_slice(part);
        let payload_len = (fragment.len() - 40) as u16;
        fragment[4..6].copy_from_slice(&payload_len.to_be_bytes());
        fragment
    })
}

/// Puts fragments back together into the unfragmented datagram.
fn reassemble(fragments: &[Vec<u8>; 2], header_len: usize, v6: bool) -> Vec<u8> {
    let mut datagram = fragments[0][..header_len].to_vec();
    let skip = header_len + if v6 { 8 } else { 0 };
    for fragment in fragments {
        datagram.extend_from_slice(&fragment[skip..]);
    }
    if v6 {
        datagram[6] = fragments[0][40];
        let len = (datagram.len() - 40) as u16;
        datagram[4..6].copy_from_slice(&len.to_be_bytes());
    } else {
        let len = datagram.len() as u16;
        datagram[2..4].copy_from_slice(&len.to_be_bytes());
        datagram[6..8].fill(0);
        fix_ipv4_header_checksum(&mut datagram);
    }
    datagram
}

fn nat_all(fragments: &mut [Vec<u8>; 2], rewrite: &Rewrite) {
    for fragment in fragments {
        let info = PacketInfo::parse(fragment).expect("a valid fragment");
        nat::apply(fragment, &info, rewrite).expect("a rewrite of the same family");
    }
}

#[test]
fn ipv4_first_fragment_carries_ports_and_later_fragment_is_opaque() {
    let [first, second] = split_v4(&udp_v4_datagram());
    let first = PacketInfo::parse(&first).unwrap();
    assert_eq!(
        first.fragment,
        Some(Fragment {
            id: 0x4242,
            offset: 0,
            more: true
        })
    );
    assert!(matches!(
        first.transport,
        Transport::Udp {
            src_port: 6000,
            dst_port: 7000,
            ..
        }
    ));

    let second = PacketInfo::parse(&second).unwrap();
    assert_eq!(
        second.fragment,
        Some(Fragment {
            id: 0x4242,
            offset: 3,
            more: false
        })
    );
    assert_eq!(second.transport, Transport::Opaque);
    assert_eq!(second.protocol, 17);
    assert_eq!((second.key().src_port, second.key().dst_port), (0, 0));
    assert!(second.is_non_first_fragment());
}

#[test]
fn ipv4_fragments_rewritten_one_by_one_reassemble_with_valid_checksums() {
    let mut fragments = split_v4(&udp_v4_datagram());
    let rewrite = Rewrite {
        src: Some(IpAddr::from([172, 16, 0, 1])),
        dst: Some(IpAddr::from([192, 168, 9, 9])),
        dst_port: Some(7777),
        ..Rewrite::default()
    };
    nat_all(&mut fragments, &rewrite);
    for fragment in &fragments {
        assert_eq!(
            PacketInfo::parse(fragment).unwrap().dst,
            IpAddr::from([192, 168, 9, 9])
        );
    }
    let datagram = reassemble(&fragments, 20, false);
    assert_checksums_valid(&datagram, false);
    let info = PacketInfo::parse(&datagram).unwrap();
    assert!(matches!(
        info.transport,
        Transport::Udp {
            src_port: 6000,
            dst_port: 7777,
            ..
        }
    ));
}

#[test]
fn ipv6_fragment_header_is_recognised_and_later_fragment_is_opaque() {
    let [first, second] = split_v6(&tcp_v6_datagram());
    let first = PacketInfo::parse(&first).unwrap();
    assert_eq!(
        first.fragment,
        Some(Fragment {
            id: 0x0bad_cafe,
            offset: 0,
            more: true
        })
    );
    assert_eq!(first.l4_offset, 48);
    assert!(matches!(
        first.transport,
        Transport::Tcp {
            src_port: 6000,
            dst_port: 7000,
            ..
        }
    ));

    let second = PacketInfo::parse(&second).unwrap();
    assert_eq!(
        second.fragment,
        Some(Fragment {
            id: 0x0bad_cafe,
            offset: 3,
            more: false
        })
    );
    assert_eq!(second.transport, Transport::Opaque);
    assert_eq!(second.protocol, 6);
    assert_eq!((second.key().src_port, second.key().dst_port), (0, 0));
}

#[test]
fn ipv6_fragments_rewritten_one_by_one_reassemble_with_valid_checksums() {
    let mut fragments = split_v6(&tcp_v6_datagram());
    let rewrite = Rewrite {
        src: Some(IpAddr::from([0x11; 16])),
        src_port: Some(1),
        dst_port: Some(2),
        ..Rewrite::default()
    };
    nat_all(&mut fragments, &rewrite);
    let datagram = reassemble(&fragments, 40, true);
    assert_checksums_valid(&datagram, false);
    let info = PacketInfo::parse(&datagram).unwrap();
    assert_eq!(info.src, IpAddr::from([0x11; 16]));
    assert!(matches!(
        info.transport,
        Transport::Tcp {
            src_port: 1,
            dst_port: 2,
            ..
        }
    ));
}
