//! The parse agrees with etherparse on valid packets and never panics on any bytes.

mod common;

use common::{build, spec};
use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
use proptest::prelude::*;
use tether_wire::nat::{self, Rewrite};
use tether_wire::packet::{IpVersion, PacketInfo, Transport, tcp_flags};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        let _ = PacketInfo::parse(&bytes);
        let _ = tether_wire::packet::parse_frame(&bytes);
    }

    #[test]
    fn parse_and_rewrite_never_panic_on_corrupted_packets(
        spec in spec(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut packet = build(&spec);
        for (index, value) in flips {
            let at = index.index(packet.len());
            packet[at] = value;
        }
        if let Ok(info) = PacketInfo::parse(&packet) {
            let rewrite = Rewrite {
                src: Some(info.dst),
                dst: Some(info.src),
                src_port: Some(1),
                dst_port: Some(2),
            };
            let mut copy = packet.clone();
            let _ = nat::apply(&mut copy, &info, &rewrite);
            let _ = nat::adjust_sequence(&mut copy, &info, 7, 0, 9, 0);
            let _ = nat::decrement_ttl(&mut copy, &info);
        }
    }

    #[test]
    fn packet_cut_short_anywhere_is_an_error(spec in spec()) {
        let packet = build(&spec);
        for len in 0..packet.len() {
            prop_assert!(PacketInfo::parse(&packet[..len]).is_err(), "cut at {}", len);
        }
    }

    #[test]
    fn trailing_ethernet_padding_is_ignored(spec in spec(), padding in proptest::collection::vec(any::<u8>(), 1..32)) {
        let packet = build(&spec);
        let exact = PacketInfo::parse(&packet).unwrap();
        let mut padded = packet.clone();
        padded.extend_from_slice(&padding);
        prop_assert_eq!(PacketInfo::parse(&padded).unwrap(), exact);
        prop_assert_eq!(exact.total_len, packet.len());
    }

    #[test]
    fn parse_agrees_with_etherparse(spec in spec()) {
        let packet = build(&spec);
        let ours = PacketInfo::parse(&packet).unwrap();
        let theirs = PacketHeaders::from_ip_slice(&packet).unwrap();
        let payload_len = theirs.payload.slice().len();

        match theirs.net.unwrap() {
            NetHeaders::Ipv4(h, _) => {
                prop_assert_eq!(ours.version, IpVersion::V4);
                prop_assert_eq!(ours.src, std::net::IpAddr::from(h.source));
                prop_assert_eq!(ours.dst, std::net::IpAddr::from(h.destination));
                prop_assert_eq!(ours.protocol, h.protocol.0);
                prop_assert_eq!(ours.l4_offset, h.header_len());
            }
            NetHeaders::Ipv6(h, exts) => {
                prop_assert_eq!(ours.version, IpVersion::V6);
                prop_assert_eq!(ours.src, std::net::IpAddr::from(h.source));
                prop_assert_eq!(ours.dst, std::net::IpAddr::from(h.destination));
                prop_assert_eq!(ours.l4_offset, 40 + exts.header_len());
            }
        }
        prop_assert_eq!(ours.fragment, None);

        match (theirs.transport.unwrap(), ours.transport) {
            (TransportHeader::Tcp(t), Transport::Tcp { src_port, dst_port, seq, ack, flags, payload_len: ours_len }) => {
                prop_assert_eq!((src_port, dst_port), (t.source_port, t.destination_port));
                prop_assert_eq!((seq, ack), (t.sequence_number, t.acknowledgment_number));
                let expected_flags = [
                    (t.fin, tcp_flags::FIN),
                    (t.syn, tcp_flags::SYN),
                    (t.rst, tcp_flags::RST),
                    (t.psh, tcp_flags::PSH),
                    (t.ack, tcp_flags::ACK),
                    (t.urg, tcp_flags::URG),
                ]
                .into_iter()
                .filter(|(set, _)| *set)
                .fold(0, |flags, (_, bit)| flags | bit);
                prop_assert_eq!(flags & 0x3f, expected_flags);
                prop_assert_eq!(ours_len, payload_len);
            }
            (TransportHeader::Udp(u), Transport::Udp { src_port, dst_port, payload_len: ours_len }) => {
                prop_assert_eq!((src_port, dst_port), (u.source_port, u.destination_port));
                prop_assert_eq!(ours_len, payload_len);
            }
            (theirs, ours) => panic!("etherparse saw {theirs:?}, we saw {ours:?}"),
        }
    }
}
