//! Interest criteria (seed FIG. 10I): which packet types a manager wants to hear about, and
//! whether it wants the packet sent along, copied, or held.

use core::net::{IpAddr, SocketAddr};

use tether_proto::{InterestBits, InterestCriteria};
use tether_wire::packet::{PacketInfo, Transport};

/// The interest bits a packet carries. `data_seen` is the affinity's "payload seen" flag;
/// it is set here so FIRST_DATA fires once per affinity.
pub(crate) fn packet_bits(info: &PacketInfo, data_seen: &mut bool) -> InterestBits {
    let mut bits = InterestBits::ALL;
    let payload = match info.transport {
        Transport::Tcp {
            flags, payload_len, ..
        } => {
            // Bits 0-5 of the interest vector are the TCP flag bits in header order.
            bits = bits | InterestBits(u16::from(flags & 0x3f));
            payload_len
        }
        Transport::Udp { payload_len, .. } => payload_len,
        // A later fragment is all payload.
        Transport::Opaque if info.fragment.is_some() => {
            info.total_len.saturating_sub(info.l4_offset)
        }
        _ => 0,
    };
    if info.fragment.is_some() {
        bits = bits | InterestBits::FRAGMENT;
    }
    if payload > 0 {
        bits = bits | InterestBits::DATA;
        if !*data_seen {
            bits = bits | InterestBits::FIRST_DATA;
            *data_seen = true;
        }
    }
    bits
}

/// What the interest criteria make of a packet (`docs/affinities.md`, pipeline step 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    /// No bit of the mask is set: only the affinity's handling applies.
    None,
    /// Send an interest match without the packet, then handle the packet.
    Notify(InterestBits),
    /// Send an interest match with a copy of the packet, then handle the original.
    Copy(InterestBits),
    /// The manager takes the packet; hold it if the hold flag asks and there is room,
    /// otherwise send it inside the match.
    Take {
        /// Bits reported in the match.
        matched: InterestBits,
        /// Whether the hold flag asks for the packet to be held.
        hold: bool,
    },
}

/// Applies `criteria` to a packet with `bits`.
pub(crate) fn decide(criteria: &InterestCriteria, bits: InterestBits) -> Interest {
    let matched = criteria.mask & bits;
    if matched.is_empty() {
        Interest::None
    } else if !criteria.data.intersects(bits) {
        Interest::Notify(matched)
    } else if criteria.copy.intersects(bits) {
        Interest::Copy(matched)
    } else {
        Interest::Take {
            matched,
            hold: criteria.hold.intersects(bits),
        }
    }
}

/// Where interest matches go: the criteria's address and port, each defaulting to the
/// manager that sent the affinity.
pub(crate) fn destination(criteria: &InterestCriteria, manager: SocketAddr) -> SocketAddr {
    let ip: IpAddr = if criteria.addr.is_unspecified() {
        manager.ip()
    } else {
        criteria.addr
    };
    let port = if criteria.port == 0 {
        manager.port()
    } else {
        criteria.port
    };
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_proto::UNSPECIFIED_V4;

    fn criteria(
        mask: InterestBits,
        data: InterestBits,
        copy: InterestBits,
        hold: InterestBits,
    ) -> InterestCriteria {
        InterestCriteria {
            addr: UNSPECIFIED_V4,
            port: 0,
            mask,
            data,
            copy,
            hold,
        }
    }

    #[test]
    fn flags_decide_notify_copy_take_and_hold() {
        let none = InterestBits::NONE;
        let fin = InterestBits::FIN;
        let bits = InterestBits::ALL | InterestBits::FIN | InterestBits::ACK;
        assert_eq!(
            decide(&criteria(InterestBits::SYN, none, none, none), bits),
            Interest::None
        );
        assert_eq!(
            decide(&criteria(fin, none, none, none), bits),
            Interest::Notify(fin)
        );
        assert_eq!(
            decide(&criteria(fin, fin, fin, none), bits),
            Interest::Copy(fin)
        );
        assert_eq!(
            decide(&criteria(fin, fin, none, fin), bits),
            Interest::Take {
                matched: fin,
                hold: true
            }
        );
        assert_eq!(
            decide(&criteria(fin, InterestBits::ALL, none, none), bits),
            Interest::Take {
                matched: fin,
                hold: false
            }
        );
    }

    fn info(transport: Transport, fragment: Option<tether_wire::packet::Fragment>) -> PacketInfo {
        PacketInfo {
            version: tether_wire::packet::IpVersion::V4,
            protocol: 6,
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            l4_offset: 20,
            total_len: 60,
            fragment,
            transport,
        }
    }

    fn tcp(flags: u8, payload_len: usize) -> Transport {
        Transport::Tcp {
            src_port: 1,
            dst_port: 2,
            seq: 0,
            ack: 0,
            flags,
            payload_len,
        }
    }

    #[test]
    fn tcp_flags_map_to_their_interest_bits() {
        use tether_wire::packet::tcp_flags;
        let cases = [
            (tcp_flags::FIN, InterestBits::FIN),
            (tcp_flags::SYN, InterestBits::SYN),
            (tcp_flags::RST, InterestBits::RST),
            (tcp_flags::PSH, InterestBits::PSH),
            (tcp_flags::ACK, InterestBits::ACK),
            (tcp_flags::URG, InterestBits::URG),
        ];
        for (flag, bit) in cases {
            let mut seen = false;
            assert_eq!(
                packet_bits(&info(tcp(flag, 0), None), &mut seen),
                InterestBits::ALL | bit
            );
        }
    }

    #[test]
    fn first_data_fires_once_and_fragments_are_marked() {
        let mut seen = false;
        let data = info(tcp(0x10, 5), None);
        let first = packet_bits(&data, &mut seen);
        assert!(first.intersects(InterestBits::FIRST_DATA) && first.intersects(InterestBits::DATA));
        assert!(!packet_bits(&data, &mut seen).intersects(InterestBits::FIRST_DATA));
        let later = info(
            Transport::Opaque,
            Some(tether_wire::packet::Fragment {
                id: 1,
                offset: 2,
                more: false,
            }),
        );
        assert_eq!(
            packet_bits(&later, &mut seen),
            InterestBits::ALL | InterestBits::FRAGMENT | InterestBits::DATA
        );
    }

    #[test]
    fn unspecified_destination_parts_default_to_the_manager() {
        let manager: SocketAddr = "10.9.0.1:7000".parse().unwrap();
        let mut c = criteria(
            InterestBits::ALL,
            InterestBits::NONE,
            InterestBits::NONE,
            InterestBits::NONE,
        );
        assert_eq!(destination(&c, manager), manager);
        c.port = 7100;
        assert_eq!(destination(&c, manager), "10.9.0.1:7100".parse().unwrap());
        c.addr = "10.9.0.2".parse().unwrap();
        assert_eq!(destination(&c, manager), "10.9.0.2:7100".parse().unwrap());
    }
}
