//! Every rewrite leaves checksums equal to a full recompute by etherparse.

mod common;

use std::net::IpAddr;

use common::{Spec, addr, assert_checksums_valid, build, spec};
use proptest::prelude::*;
use tether_wire::WireError;
use tether_wire::nat::{self, Rewrite};
use tether_wire::packet::{PacketInfo, Transport};

prop_compose! {
    /// Random optional new addresses (as 16 raw bytes) and ports.
    fn raw_rewrite()(
        src in proptest::option::of(any::<[u8; 16]>()),
        dst in proptest::option::of(any::<[u8; 16]>()),
        src_port in proptest::option::of(any::<u16>()),
        dst_port in proptest::option::of(any::<u16>()),
    ) -> ([Option<[u8; 16]>; 2], Option<u16>, Option<u16>) {
        ([src, dst], src_port, dst_port)
    }
}

fn rewrite_for(spec: &Spec, raw: ([Option<[u8; 16]>; 2], Option<u16>, Option<u16>)) -> Rewrite {
    let ([src, dst], src_port, dst_port) = raw;
    Rewrite {
        src: src.map(|b| addr(spec.v6, b)),
        dst: dst.map(|b| addr(spec.v6, b)),
        src_port,
        dst_port,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn rewritten_packet_checksums_equal_a_full_recompute(spec in spec(), raw in raw_rewrite()) {
        let mut packet = build(&spec);
        let info = PacketInfo::parse(&packet).unwrap();
        let rewrite = rewrite_for(&spec, raw);
        nat::apply(&mut packet, &info, &rewrite).unwrap();
        assert_checksums_valid(&packet, spec.udp_no_checksum);

        let key = PacketInfo::parse(&packet).unwrap().key();
        let before = info.key();
        prop_assert_eq!(key.src, rewrite.src.unwrap_or(before.src));
        prop_assert_eq!(key.dst, rewrite.dst.unwrap_or(before.dst));
        prop_assert_eq!(key.src_port, rewrite.src_port.unwrap_or(before.src_port));
        prop_assert_eq!(key.dst_port, rewrite.dst_port.unwrap_or(before.dst_port));
    }

    #[test]
    fn sequence_adjust_keeps_the_tcp_checksum_valid(
        mut spec in spec(),
        seq_delta in any::<u32>(),
        ack_delta in any::<u32>(),
        initial_seq in any::<u32>(),
        initial_ack in any::<u32>(),
    ) {
        spec.tcp = true;
        spec.udp_no_checksum = false;
        let ack = spec.ack.get_or_insert(0);
        let ack = *ack;
        let mut packet = build(&spec);
        let info = PacketInfo::parse(&packet).unwrap();
        nat::adjust_sequence(&mut packet, &info, seq_delta, initial_seq, ack_delta, initial_ack)
            .unwrap();
        assert_checksums_valid(&packet, false);

        let after = PacketInfo::parse(&packet).unwrap();
        let Transport::Tcp { seq: new_seq, ack: new_ack, .. } = after.transport else {
            panic!("still TCP");
        };
        let expect = |value: u32, initial: u32, delta: u32| {
            if value.wrapping_sub(initial) < 1 << 31 { value.wrapping_add(delta) } else { value }
        };
        prop_assert_eq!(new_seq, expect(spec.seq, initial_seq, seq_delta));
        prop_assert_eq!(new_ack, expect(ack, initial_ack, ack_delta));
    }

    #[test]
    fn ttl_decrement_keeps_the_header_checksum_valid(spec in spec()) {
        let mut packet = build(&spec);
        let info = PacketInfo::parse(&packet).unwrap();
        let forwarded = nat::decrement_ttl(&mut packet, &info).unwrap();
        prop_assert_eq!(forwarded, spec.ttl > 1);
        assert_checksums_valid(&packet, spec.udp_no_checksum);
        let ttl_at = if spec.v6 { 7 } else { 8 };
        let expected = if forwarded { spec.ttl - 1 } else { spec.ttl };
        prop_assert_eq!(packet[ttl_at], expected);
    }

    #[test]
    fn rewrite_to_the_other_address_family_changes_nothing(spec in spec(), raw in any::<[u8; 16]>()) {
        let mut packet = build(&spec);
        let original = packet.clone();
        let info = PacketInfo::parse(&packet).unwrap();
        let rewrite = Rewrite { dst: Some(addr(!spec.v6, raw)), src_port: Some(1), ..Rewrite::default() };
        prop_assert_eq!(nat::apply(&mut packet, &info, &rewrite), Err(WireError::AddressFamilyMismatch));
        prop_assert_eq!(packet, original);
    }
}

#[test]
fn udp_over_ipv4_without_checksum_stays_without_checksum() {
    let spec = Spec {
        v6: false,
        tcp: false,
        src: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        dst: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        src_port: 5000,
        dst_port: 53,
        seq: 0,
        ack: None,
        syn: false,
        fin: false,
        psh: false,
        tcp_options: false,
        ttl: 64,
        ip_extension: false,
        udp_no_checksum: true,
        payload: b"query".to_vec(),
    };
    let mut packet = build(&spec);
    let info = PacketInfo::parse(&packet).unwrap();
    let rewrite = Rewrite {
        dst: Some(IpAddr::from([192, 168, 1, 9])),
        dst_port: Some(5353),
        ..Rewrite::default()
    };
    nat::apply(&mut packet, &info, &rewrite).unwrap();
    assert_eq!(&packet[26..28], &[0, 0]);
    assert_eq!(&packet[22..24], &5353u16.to_be_bytes());
    assert_checksums_valid(&packet, true);
}

#[test]
fn udp_checksum_that_becomes_zero_is_sent_as_all_ones() {
    // Search for a destination port that makes the rewritten checksum compute to 0; the
    // one's-complement arithmetic guarantees one exists among all 65536 ports.
    let spec = Spec {
        v6: true,
        tcp: false,
        src: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        dst: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        src_port: 4000,
        dst_port: 4001,
        seq: 0,
        ack: None,
        syn: false,
        fin: false,
        psh: false,
        tcp_options: false,
        ttl: 64,
        ip_extension: false,
        udp_no_checksum: false,
        payload: b"x".to_vec(),
    };
    let original = build(&spec);
    let info = PacketInfo::parse(&original).unwrap();
    let checksum = u16::from_be_bytes([original[46], original[47]]);
    // The port p with (sum without port) + p == 0xFFFF makes the computed checksum 0.
    let port = checksum.wrapping_add(spec.dst_port);
    let mut found = false;
    for candidate in [port, port.wrapping_sub(1), port.wrapping_add(1)] {
        let mut packet = original.clone();
        let rewrite = Rewrite {
            dst_port: Some(candidate),
            ..Rewrite::default()
        };
        nat::apply(&mut packet, &info, &rewrite).unwrap();
        assert_checksums_valid(&packet, false);
        found |= packet[46..48] == [0xff, 0xff];
    }
    assert!(found, "one candidate port yields a checksum of 0xFFFF");
}
