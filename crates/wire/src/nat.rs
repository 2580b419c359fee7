//! In-place rewrites with incremental checksum updates (RFC 1624).
//!
//! CONTRACT (filled in by the wire work; signatures are what agent codes against).

use core::net::IpAddr;

use crate::WireError;
use crate::packet::PacketInfo;

/// Which header fields of a flow's packets to replace; `None` keeps the field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rewrite {
    /// New source address.
    pub src: Option<IpAddr>,
    /// New source port.
    pub src_port: Option<u16>,
    /// New destination address.
    pub dst: Option<IpAddr>,
    /// New destination port.
    pub dst_port: Option<u16>,
}

/// Applies `rewrite` to the packet in `ip`, whose parse is `info`, fixing the IPv4 header
/// checksum and the TCP/UDP/ICMPv6 checksums incrementally.
///
/// `rewrite` is the rewrite of the flow named by `info.lookup_key()`. For an ICMP error the
/// outer header is rewritten where it carries that flow's address (a router's source address
/// stays), and the embedded packet, which travelled the other way, is rewritten mirrored
/// (its destination takes `rewrite.src`, its source takes `rewrite.dst`, ports likewise); the
/// ICMP checksum is then recomputed. For a non-first fragment only addresses are rewritten;
/// for a first fragment the transport checksum is updated for the whole datagram.
pub fn apply(ip: &mut [u8], info: &PacketInfo, rewrite: &Rewrite) -> Result<(), WireError> {
    let _ = (ip, info, rewrite);
    todo!("wire work")
}

/// Adjusts a TCP segment's sequence and acknowledgement numbers: `seq_delta` is added
/// (wrapping) when the sequence number is at or after `initial_seq` in sequence space, and
/// `ack_delta` likewise against `initial_ack`. The TCP checksum is updated incrementally.
/// Packets that are not TCP are left alone.
pub fn adjust_sequence(
    ip: &mut [u8],
    info: &PacketInfo,
    seq_delta: u32,
    initial_seq: u32,
    ack_delta: u32,
    initial_ack: u32,
) -> Result<(), WireError> {
    let _ = (ip, info, seq_delta, initial_seq, ack_delta, initial_ack);
    todo!("wire work")
}

/// Decrements the IPv4 TTL (fixing the header checksum) or the IPv6 hop limit, as a router
/// does. Returns `false`, leaving the packet unchanged, when the packet must not be forwarded
/// because the value is already 0 or 1.
pub fn decrement_ttl(ip: &mut [u8], info: &PacketInfo) -> Result<bool, WireError> {
    let _ = (ip, info);
    todo!("wire work")
}
