//! Flow keys: the 5-tuple that names one direction of a connection.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::net::IpAddr;

/// IANA protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IANA protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IANA protocol number of ICMP for IPv4.
pub const PROTO_ICMP: u8 = 1;
/// IANA protocol number of ICMP for IPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// The affinity key of a flow: protocol, source address and port, destination address and port.
///
/// Ports are 0 for protocols without ports. Both addresses are of the same family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AffinityKey {
    /// IANA protocol number (6 = TCP, 17 = UDP).
    pub protocol: u8,
    /// Source address.
    pub src: IpAddr,
    /// Source port, 0 when the protocol has none.
    pub src_port: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port, 0 when the protocol has none.
    pub dst_port: u16,
}

impl AffinityKey {
    /// The key of the other direction of the same connection.
    pub fn reversed(&self) -> Self {
        Self {
            protocol: self.protocol,
            src: self.dst,
            src_port: self.dst_port,
            dst: self.src,
            dst_port: self.src_port,
        }
    }

    /// Whether both addresses are IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.src.is_ipv6()
    }
}

/// Hashes in two or three wide words instead of field by field (a key is hashed for every
/// packet the agent sees): protocol, ports and family in one, then the addresses. Equal keys
/// write equal words, as `Hash` requires of a type whose `Eq` compares every field.
impl Hash for AffinityKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        let head = u64::from(self.protocol) << 32
            | u64::from(self.src_port) << 16
            | u64::from(self.dst_port);
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                state.write_u64(head);
                state.write_u64(u64::from(src.to_bits()) << 32 | u64::from(dst.to_bits()));
            }
            (src, dst) => {
                let bits = |addr: IpAddr| match addr {
                    IpAddr::V4(a) => (1 << 64) | u128::from(a.to_bits()),
                    IpAddr::V6(a) => a.to_bits(),
                };
                state.write_u64(head | 1 << 40);
                state.write_u128(bits(src));
                state.write_u128(bits(dst));
            }
        }
    }
}

impl fmt::Display for AffinityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.protocol {
            PROTO_TCP => "tcp",
            PROTO_UDP => "udp",
            PROTO_ICMP => "icmp",
            PROTO_ICMPV6 => "icmpv6",
            _ => "ip",
        };
        match (self.src, self.dst) {
            (IpAddr::V6(s), IpAddr::V6(d)) => write!(
                f,
                "{proto} [{s}]:{} -> [{d}]:{}",
                self.src_port, self.dst_port
            ),
            (s, d) => write!(f, "{proto} {s}:{} -> {d}:{}", self.src_port, self.dst_port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversing_twice_gives_the_same_key() {
        let key = AffinityKey {
            protocol: PROTO_TCP,
            src: "10.0.0.1".parse().unwrap(),
            src_port: 40000,
            dst: "10.0.0.2".parse().unwrap(),
            dst_port: 80,
        };
        let rev = key.reversed();
        assert_eq!(rev.src, key.dst);
        assert_eq!(rev.dst_port, key.src_port);
        assert_eq!(rev.reversed(), key);
        assert_eq!(key.to_string(), "tcp 10.0.0.1:40000 -> 10.0.0.2:80");
    }
}
