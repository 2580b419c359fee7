//! Internet checksums: full computation and RFC 1624 incremental updates.
//!
//! Sums are accumulated in a `u64` and folded at the end, so any buffer a packet can hold is
//! summed without overflow. A full checksum skips its own field, so callers need not zero it.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::flow::{PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// Offset of the checksum field in a TCP header.
const TCP_CHECKSUM_AT: usize = 16;
/// Offset of the checksum field in a UDP header.
const UDP_CHECKSUM_AT: usize = 6;
/// Offset of the checksum field in an ICMP(v6) header.
const ICMP_CHECKSUM_AT: usize = 2;
/// Offset of the checksum field in an IPv4 header.
const IPV4_CHECKSUM_AT: usize = 10;

/// Adds `data` as big-endian 16-bit words (an odd last byte padded with zero) to `acc`.
///
/// Takes 32 bits at a time: a big-endian 32-bit word `hi * 2^16 + lo` is congruent to
/// `hi + lo` modulo 2^16 - 1, the modulus of the one's-complement sum, and [`fold`] reduces
/// modulo that. A `u64` cannot overflow on any buffer a packet can hold.
#[inline]
fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    let mut quads = data.chunks_exact(4);
    for quad in &mut quads {
        acc += u64::from(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]));
    }
    let rest = quads.remainder();
    let mut words = rest.chunks_exact(2);
    for word in &mut words {
        acc += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds carries back into the low 16 bits (end-around carry), without a loop: 64 bits to
/// 33, to 17 + 1, to at most 0x1_0001, to at most 0xFFFF. Each step keeps the value modulo
/// 2^16 - 1 and keeps a non-zero value non-zero, as the textbook loop does.
#[inline]
fn fold(acc: u64) -> u16 {
    let acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
    let acc = (acc & 0xFFFF) + (acc >> 16);
    let acc = (acc & 0xFFFF) + (acc >> 16);
    let acc = (acc & 0xFFFF) + (acc >> 16);
    acc as u16
}

/// Sums `data` leaving out the 16-bit field at the even offset `skip`.
fn accumulate_except(acc: u64, data: &[u8], skip: usize) -> u64 {
    let head = data.get(..skip).unwrap_or(data);
    let tail = data.get(skip + 2..).unwrap_or(&[]);
    accumulate(accumulate(acc, head), tail)
}

/// The one's-complement sum of `data` as 16-bit words (not complemented).
pub fn ones_complement_sum(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// The checksum to store in an IPv4 header; the header's own checksum field is ignored.
pub fn ipv4_header(header: &[u8]) -> u16 {
    !fold(accumulate_except(0, header, IPV4_CHECKSUM_AT))
}

/// The one's-complement sum of the IPv4 pseudo-header (not complemented).
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u16 {
    let acc = accumulate(accumulate(0, &src.octets()), &dst.octets());
    fold(acc + u64::from(protocol) + u64::from(len))
}

/// The one's-complement sum of the IPv6 pseudo-header (not complemented).
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u16 {
    let acc = accumulate(accumulate(0, &src.octets()), &dst.octets());
    fold(acc + u64::from(len >> 16) + u64::from(len & 0xFFFF) + u64::from(next_header))
}

/// Checksum over a pseudo-header sum and `segment`, skipping the checksum field at `skip`.
fn with_pseudo(pseudo: u16, segment: &[u8], skip: usize) -> u16 {
    !fold(accumulate_except(u64::from(pseudo), segment, skip))
}

/// Maps a computed UDP checksum of 0 to 0xFFFF, because a UDP checksum of 0 means "none".
pub fn udp_nonzero(checksum: u16) -> u16 {
    if checksum == 0 { 0xFFFF } else { checksum }
}

/// The checksum to store in a TCP segment carried by IPv4.
pub fn tcp_v4(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
    let pseudo = pseudo_header_v4(src, dst, PROTO_TCP, segment.len() as u16);
    with_pseudo(pseudo, segment, TCP_CHECKSUM_AT)
}

/// The checksum to store in a TCP segment carried by IPv6.
pub fn tcp_v6(src: Ipv6Addr, dst: Ipv6Addr, segment: &[u8]) -> u16 {
    let pseudo = pseudo_header_v6(src, dst, PROTO_TCP, segment.len() as u32);
    with_pseudo(pseudo, segment, TCP_CHECKSUM_AT)
}

/// The checksum to store in a UDP datagram carried by IPv4 (never 0).
pub fn udp_v4(src: Ipv4Addr, dst: Ipv4Addr, datagram: &[u8]) -> u16 {
    let pseudo = pseudo_header_v4(src, dst, PROTO_UDP, datagram.len() as u16);
    udp_nonzero(with_pseudo(pseudo, datagram, UDP_CHECKSUM_AT))
}

/// The checksum to store in a UDP datagram carried by IPv6 (never 0).
pub fn udp_v6(src: Ipv6Addr, dst: Ipv6Addr, datagram: &[u8]) -> u16 {
    let pseudo = pseudo_header_v6(src, dst, PROTO_UDP, datagram.len() as u32);
    udp_nonzero(with_pseudo(pseudo, datagram, UDP_CHECKSUM_AT))
}

/// The checksum to store in an ICMPv4 message (no pseudo-header).
pub fn icmpv4(message: &[u8]) -> u16 {
    !fold(accumulate_except(0, message, ICMP_CHECKSUM_AT))
}

/// The checksum to store in an ICMPv6 message, which covers the IPv6 pseudo-header.
pub fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let pseudo = pseudo_header_v6(src, dst, PROTO_ICMPV6, message.len() as u32);
    with_pseudo(pseudo, message, ICMP_CHECKSUM_AT)
}

/// Whether `data`, checksum field included, sums to 0xFFFF (the check a receiver makes).
pub fn verifies(pseudo: u16, data: &[u8]) -> bool {
    fold(accumulate(u64::from(pseudo), data)) == 0xFFFF
}

/// RFC 1624 eqn. 3, HC' = ~(~HC + Σ~m + Σm'), given `delta` = Σ~m + Σm'.
#[inline]
pub fn apply_delta(checksum: u16, delta: u64) -> u16 {
    !fold(u64::from(!checksum) + delta)
}

/// The RFC 1624 difference Σ~m + Σm' of a 16-bit word changing from `old` to `new`.
#[inline]
pub fn delta_u16(old: u16, new: u16) -> u64 {
    u64::from(!old) + u64::from(new)
}

/// The RFC 1624 difference of a 32-bit value (two 16-bit words) changing from `old` to `new`:
/// the complement of a 32-bit word is the pair of its complemented halves.
#[inline]
pub fn delta_u32(old: u32, new: u32) -> u64 {
    u64::from(!old) + u64::from(new)
}

/// The RFC 1624 difference of a 128-bit value (eight 16-bit words) changing from `old` to
/// `new`, as four 32-bit words each.
#[inline]
pub fn delta_u128(old: u128, new: u128) -> u64 {
    let (old, new) = (!old, new);
    let mut acc = 0u64;
    for shift in [0, 32, 64, 96] {
        acc += u64::from((old >> shift) as u32) + u64::from((new >> shift) as u32);
    }
    acc
}

/// Updates `checksum` for one 16-bit word changing from `old` to `new` (RFC 1624).
#[inline]
pub fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    apply_delta(checksum, delta_u16(old, new))
}

/// Updates `checksum` for a 32-bit value changing from `old` to `new` (RFC 1624).
#[inline]
pub fn update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    apply_delta(checksum, delta_u32(old, new))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textbook IPv4 header (UDP, 192.168.0.1 -> 192.168.0.199) with its known checksum.
    const IPV4_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn known_ipv4_header_checksum_is_reproduced() {
        assert_eq!(ipv4_header(&IPV4_HEADER), 0xb861);
        assert!(verifies(0, &IPV4_HEADER));
    }

    #[test]
    fn odd_length_data_is_padded_with_zero() {
        assert_eq!(ones_complement_sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn carries_fold_back_into_the_sum() {
        assert_eq!(ones_complement_sum(&[0xff, 0xff, 0x00, 0x02]), 0x0002);
    }

    #[test]
    fn incremental_ttl_update_matches_full_recompute() {
        let mut header = IPV4_HEADER;
        let old = u16::from_be_bytes([header[8], header[9]]);
        header[8] -= 1;
        let new = u16::from_be_bytes([header[8], header[9]]);
        assert_eq!(update_u16(0xb861, old, new), ipv4_header(&header));
    }

    #[test]
    fn incremental_address_update_matches_full_recompute() {
        let mut header = IPV4_HEADER;
        let old = Ipv4Addr::new(192, 168, 0, 1);
        let new = Ipv4Addr::new(10, 1, 2, 3);
        header[12..16].copy_from_slice(&new.octets());
        assert_eq!(
            update_u32(0xb861, old.to_bits(), new.to_bits()),
            ipv4_header(&header)
        );
    }

    #[test]
    fn a_zero_delta_leaves_every_checksum_as_it_is() {
        // So a rewrite that changed nothing needs no special case.
        for sum in 0..=u16::MAX {
            assert_eq!(apply_delta(sum, 0), sum);
        }
    }

    #[test]
    fn udp_checksum_computing_to_zero_is_sent_as_all_ones() {
        assert_eq!(udp_nonzero(0), 0xFFFF);
        assert_eq!(udp_nonzero(0x1234), 0x1234);
    }

    #[test]
    fn updating_by_32_bits_equals_two_16_bit_updates() {
        let once = update_u32(0x1d2c, 0x0102_0304, 0xa0b0_c0d0);
        let twice = update_u16(update_u16(0x1d2c, 0x0102, 0xa0b0), 0x0304, 0xc0d0);
        assert_eq!(once, twice);
    }
}
