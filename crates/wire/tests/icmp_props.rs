//! ICMP errors quoting random packets, cut at random lengths, rewrite with valid checksums.

mod common;

use std::net::IpAddr;

use common::{addr, assert_checksums_valid, build, spec, v4};
use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::icmpv6::DestUnreachableCode;
use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder};
use proptest::prelude::*;
use tether_wire::nat::{self, Rewrite};
use tether_wire::packet::{PacketInfo, Transport};

/// Wraps `quote` of `original` in a destination-unreachable error from `sender` to the
/// quoted packet's source.
fn icmp_error(sender: IpAddr, original: &PacketInfo, quote: &[u8]) -> Vec<u8> {
    let mut packet = Vec::new();
    if original.src.is_ipv6() {
        PacketBuilder::ipv6(common::v6(sender), common::v6(original.src), 64)
            .icmpv6(Icmpv6Type::DestinationUnreachable(
                DestUnreachableCode::Port,
            ))
            .write(&mut packet, quote)
            .expect("writing to a Vec");
    } else {
        PacketBuilder::ipv4(v4(sender), v4(original.src), 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::Port,
            ))
            .write(&mut packet, quote)
            .expect("writing to a Vec");
    }
    packet
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn rewritten_icmp_error_checksums_equal_a_full_recompute(
        spec in spec(),
        router in any::<[u8; 16]>(),
        from_router in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        new_src in any::<[u8; 16]>(),
        new_dst in any::<[u8; 16]>(),
        (new_src_port, new_dst_port) in any::<(u16, u16)>(),
    ) {
        let original = build(&spec);
        let info = PacketInfo::parse(&original).unwrap();
        let header_len = info.l4_offset;
        // At least the IP header and 8 bytes of transport, as RFC 792 requires.
        let quote_len = header_len + 8 + cut.index(original.len() - header_len - 7);
        let quote = &original[..quote_len];
        let sender = if from_router { addr(spec.v6, router) } else { info.dst };
        let mut packet = icmp_error(sender, &info, quote);

        let error = PacketInfo::parse(&packet).unwrap();
        let Transport::IcmpError { inner_key, inner_offset, .. } = error.transport else {
            panic!("an ICMP error");
        };
        prop_assert_eq!(inner_key, info.key());
        let rewrite = Rewrite {
            src: Some(addr(spec.v6, new_src)),
            dst: Some(addr(spec.v6, new_dst)),
            src_port: Some(new_src_port),
            dst_port: Some(new_dst_port),
        };
        nat::apply(&mut packet, &error, &rewrite).unwrap();
        assert_checksums_valid(&packet, false);

        let after = PacketInfo::parse(&packet).unwrap();
        let Transport::IcmpError { inner_key: new_inner, .. } = after.transport else {
            panic!("still an ICMP error");
        };
        prop_assert_eq!(new_inner.dst, rewrite.src.unwrap());
        prop_assert_eq!(new_inner.src, rewrite.dst.unwrap());
        prop_assert_eq!((new_inner.src_port, new_inner.dst_port), (new_dst_port, new_src_port));
        let expected_src = if from_router { sender } else { rewrite.src.unwrap() };
        prop_assert_eq!(after.src, expected_src);
        prop_assert_eq!(after.dst, rewrite.dst.unwrap());
        if quote_len == original.len() {
            assert_checksums_valid(&packet[inner_offset..], spec.udp_no_checksum);
        }
    }

    #[test]
    fn corrupted_icmp_errors_never_panic(
        spec in spec(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let original = build(&spec);
        let info = PacketInfo::parse(&original).unwrap();
        let quote = &original[..cut.index(original.len() + 1)];
        let mut packet = icmp_error(info.dst, &info, quote);
        for (index, value) in flips {
            let at = index.index(packet.len());
            packet[at] = value;
        }
        if let Ok(error) = PacketInfo::parse(&packet) {
            let _ = error.lookup_key();
            let rewrite = Rewrite { src: Some(error.dst), dst: Some(error.src), src_port: Some(9), dst_port: Some(9) };
            let _ = nat::apply(&mut packet, &error, &rewrite);
        }
    }
}
