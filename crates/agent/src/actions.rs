//! Affinity handling (`docs/affinities.md`, pipeline step 6): statistics, the drop of an
//! unspecified forward address, sequence adjust, NAT, TTL decrement, and the route.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tether_wire::nat;
use tether_wire::packet::{IpVersion, PacketInfo};

use crate::tables::Affinity;
use crate::{DropReason, Map, Route, TrafficStats};

/// Executes `affinity` on the IP packet `ip` (exactly the packet, no trailing padding),
/// rewriting it in place, and says where it goes.
#[inline]
pub(crate) fn execute(
    ip: &mut [u8],
    info: &PacketInfo,
    affinity: &mut Affinity,
    address_stats: &mut Map<IpAddr, TrafficStats>,
) -> Result<Route, DropReason> {
    affinity.traffic.count(ip.len());
    let b = &affinity.behaviour;
    if b.information {
        address_stats.entry(b.forward).or_default().count(ip.len());
    }
    if b.forward.is_unspecified() {
        return Err(DropReason::ForwardUnspecified);
    }
    if let Some(s) = b.sequence {
        nat::adjust_sequence(
            ip,
            info,
            s.seq_delta,
            s.initial_seq,
            s.ack_delta,
            s.initial_ack,
        )?;
    }
    if let Some(rewrite) = &b.rewrite {
        nat::apply(ip, info, rewrite)?;
    }
    if !nat::decrement_ttl(ip, info)? {
        return Err(DropReason::TtlExpired);
    }
    let next_hop = if b.dispatch {
        b.forward
    } else {
        destination(ip, info)
    };
    Ok(Route {
        next_hop,
        dispatched: b.dispatch,
    })
}

/// The destination address in the header of `ip`, read back because NAT may have changed it
/// (and for an ICMP error only where the header carried the flow's address).
pub(crate) fn destination(ip: &[u8], info: &PacketInfo) -> IpAddr {
    let read = match info.version {
        IpVersion::V4 => ip
            .get(16..20)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        IpVersion::V6 => ip
            .get(24..40)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    };
    // The parse validated the header, so the read cannot fail; the parsed value is a safe
    // fallback all the same.
    read.unwrap_or(info.dst)
}
