//! ICMP errors are matched by the flow they travel with and rewritten inside and out.

mod common;

use std::net::IpAddr;

use common::assert_checksums_valid;
use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder};
use tether_wire::nat::{self, Rewrite};
use tether_wire::packet::{PacketInfo, Transport};
use tether_wire::{AffinityKey, Layer, WireError};

const CLIENT4: [u8; 4] = [198, 51, 100, 7];
const VIP4: [u8; 4] = [203, 0, 113, 10];
const BACKEND4: [u8; 4] = [10, 0, 0, 5];
const ROUTER4: [u8; 4] = [192, 0, 2, 254];

fn v6(last: u8) -> [u8; 16] {
    let mut addr = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    addr[15] = last;
    addr
}

fn key(
    protocol: u8,
    src: impl Into<IpAddr>,
    sp: u16,
    dst: impl Into<IpAddr>,
    dp: u16,
) -> AffinityKey {
    AffinityKey {
        protocol,
        src: src.into(),
        src_port: sp,
        dst: dst.into(),
        dst_port: dp,
    }
}

/// The ICMP error's quote: everything after the outer IP header and the 8-byte ICMP header.
fn quote(packet: &[u8], info: &PacketInfo) -> Vec<u8> {
    let Transport::IcmpError { inner_offset, .. } = info.transport else {
        panic!("an ICMP error");
    };
    packet[inner_offset..info.total_len].to_vec()
}

#[test]
fn icmpv4_port_unreachable_for_a_udp_flow_is_rewritten_inside_and_out() {
    // The backend answers the client's (already NATed) datagram with port unreachable.
    let mut original = Vec::new();
    PacketBuilder::ipv4(CLIENT4, BACKEND4, 63)
        .udp(40000, 5353)
        .write(&mut original, b"dns?")
        .unwrap();
    let mut packet = Vec::new();
    PacketBuilder::ipv4(BACKEND4, CLIENT4, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::Port,
        ))
        .write(&mut packet, &original)
        .unwrap();

    let info = PacketInfo::parse(&packet).unwrap();
    assert_eq!(info.lookup_key(), key(17, BACKEND4, 5353, CLIENT4, 40000));
    // The return affinity of the flow puts the VIP back as the source.
    let rewrite = Rewrite {
        src: Some(VIP4.into()),
        src_port: Some(53),
        ..Rewrite::default()
    };
    nat::apply(&mut packet, &info, &rewrite).unwrap();

    let after = PacketInfo::parse(&packet).unwrap();
    assert_eq!(after.src, IpAddr::from(VIP4));
    assert_eq!(after.dst, IpAddr::from(CLIENT4));
    let Transport::IcmpError { inner_key, .. } = after.transport else {
        panic!("still an error")
    };
    assert_eq!(inner_key, key(17, CLIENT4, 40000, VIP4, 53));
    assert_checksums_valid(&packet, false);
    assert_checksums_valid(&quote(&packet, &after), false);
}

#[test]
fn icmpv4_fragmentation_needed_for_a_tcp_segment_keeps_the_router_source() {
    // The backend's segment left the agent as VIP:80 -> client; a router on the way back
    // reports that it needs fragmenting. The agent maps it to the backend.
    let mut original = Vec::new();
    PacketBuilder::ipv4(VIP4, CLIENT4, 60)
        .tcp(80, 40000, 1000, 512)
        .ack(77)
        .write(&mut original, &[0xab; 24])
        .unwrap();
    let mtu = DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 };
    let mut packet = Vec::new();
    PacketBuilder::ipv4(ROUTER4, VIP4, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(mtu))
        .write(&mut packet, &original)
        .unwrap();

    let info = PacketInfo::parse(&packet).unwrap();
    assert_eq!(info.lookup_key(), key(6, CLIENT4, 40000, VIP4, 80));
    let forward = Rewrite {
        dst: Some(BACKEND4.into()),
        dst_port: Some(8080),
        ..Rewrite::default()
    };
    nat::apply(&mut packet, &info, &forward).unwrap();

    let after = PacketInfo::parse(&packet).unwrap();
    assert_eq!(
        after.src,
        IpAddr::from(ROUTER4),
        "the router's address stays"
    );
    assert_eq!(after.dst, IpAddr::from(BACKEND4));
    let Transport::IcmpError { inner_key, .. } = after.transport else {
        panic!("still an error")
    };
    assert_eq!(inner_key, key(6, BACKEND4, 8080, CLIENT4, 40000));
    assert_checksums_valid(&packet, false);
    assert_checksums_valid(&quote(&packet, &after), false);
}

#[test]
fn icmpv4_error_quoting_only_eight_transport_bytes_is_rewritten() {
    let mut original = Vec::new();
    PacketBuilder::ipv4(VIP4, CLIENT4, 60)
        .tcp(80, 40000, 1000, 512)
        .write(&mut original, &[1; 100])
        .unwrap();
    let mtu = DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 576 };
    let mut packet = Vec::new();
    PacketBuilder::ipv4(ROUTER4, VIP4, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(mtu))
        .write(&mut packet, &original[..28])
        .unwrap();
    let info = PacketInfo::parse(&packet).unwrap();
    let forward = Rewrite {
        dst: Some(BACKEND4.into()),
        dst_port: Some(8080),
        ..Rewrite::default()
    };
    nat::apply(&mut packet, &info, &forward).unwrap();

    let after = PacketInfo::parse(&packet).unwrap();
    let Transport::IcmpError { inner_key, .. } = after.transport else {
        panic!("still an error")
    };
    assert_eq!(inner_key, key(6, BACKEND4, 8080, CLIENT4, 40000));
    assert_checksums_valid(&packet, false);
}

#[test]
fn icmpv6_packet_too_big_for_a_tcp_segment_is_rewritten_inside_and_out() {
    let (client, vip, backend, router) = (v6(7), v6(10), v6(5), v6(254));
    let mut original = Vec::new();
    PacketBuilder::ipv6(vip, client, 60)
        .tcp(443, 50000, 0xffff_fff0, 1024)
        .ack(3)
        .write(&mut original, &[0x5a; 40])
        .unwrap();
    let mut packet = Vec::new();
    PacketBuilder::ipv6(router, vip, 64)
        .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
        .write(&mut packet, &original)
        .unwrap();

    let info = PacketInfo::parse(&packet).unwrap();
    assert_eq!(info.lookup_key(), key(6, client, 50000, vip, 443));
    let forward = Rewrite {
        dst: Some(backend.into()),
        dst_port: Some(8443),
        ..Rewrite::default()
    };
    nat::apply(&mut packet, &info, &forward).unwrap();

    let after = PacketInfo::parse(&packet).unwrap();
    assert_eq!(
        after.src,
        IpAddr::from(router),
        "the router's address stays"
    );
    assert_eq!(after.dst, IpAddr::from(backend));
    let Transport::IcmpError {
        icmp_type,
        inner_key,
        ..
    } = after.transport
    else {
        panic!("still an error")
    };
    assert_eq!(icmp_type, 2);
    assert_eq!(inner_key, key(6, backend, 8443, client, 50000));
    assert_checksums_valid(&packet, false);
    assert_checksums_valid(&quote(&packet, &after), false);
}

#[test]
fn icmp_error_quoting_less_than_an_ip_header_is_truncated_inner() {
    let mut packet = Vec::new();
    PacketBuilder::ipv4(ROUTER4, VIP4, 64)
        .icmpv4(Icmpv4Type::TimeExceeded(
            etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
        ))
        .write(&mut packet, &[0x45, 0, 0, 40, 0, 0, 0, 0, 1, 6])
        .unwrap();
    assert_eq!(
        PacketInfo::parse(&packet),
        Err(WireError::Truncated(Layer::IcmpInner))
    );
}

#[test]
fn icmp_echo_is_not_an_error_and_has_no_ports() {
    let mut packet = Vec::new();
    PacketBuilder::ipv6(v6(1), v6(2), 64)
        .icmpv6_echo_request(9, 1)
        .write(&mut packet, b"ping")
        .unwrap();
    let info = PacketInfo::parse(&packet).unwrap();
    assert_eq!(
        info.transport,
        Transport::Icmp {
            icmp_type: 128,
            code: 0
        }
    );
    assert_eq!(info.lookup_key(), key(58, v6(1), 0, v6(2), 0));
    // ICMPv6 covers the pseudo-header, so a NATed echo needs its checksum fixed too.
    let rewrite = Rewrite {
        dst: Some(v6(3).into()),
        ..Rewrite::default()
    };
    nat::apply(&mut packet, &info, &rewrite).unwrap();
    assert_checksums_valid(&packet, false);
}
