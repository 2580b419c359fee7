//! Next hops and neighbours: from an agent's [`Route`] to the interface, source MAC and
//! destination MAC a frame leaves with.
//!
//! The kernel's routing and neighbour tables are the truth; they are asked over [`Netlink`]
//! and the answers cached for [`CACHE_TTL`], so the hot path asks at most once a second per
//! next hop. When the kernel does not know a neighbour yet, the resolver makes it ask (a UDP
//! datagram to the discard port, sent from a socket bound to the egress interface, makes the
//! kernel send ARP or neighbour solicitation) and reports [`Resolution::Pending`]; the caller
//! holds the packet briefly or drops it.

use core::net::{IpAddr, SocketAddr, SocketAddrV6};
use core::time::Duration;
use std::collections::HashMap;
use std::io;

use socket2::{Domain, Socket, Type};
use tether_agent::Route;
use tether_proto::Timestamp;

use crate::netlink::{Link, Netlink, RouteInfo};

/// How long a route, neighbour or "no route" answer is trusted.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// How often the neighbour table is asked again about an address still resolving.
const PENDING_RECHECK: Duration = Duration::from_millis(5);
/// How often resolution is triggered again for an address still resolving.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// The discard service: a probe datagram that reaches a host is thrown away there.
const DISCARD_PORT: u16 = 9;

/// Where a frame goes at the link layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Egress interface index.
    pub ifindex: u32,
    /// MAC address of the egress interface (the frame's source).
    pub src_mac: [u8; 6],
    /// MAC address of the neighbour (the frame's destination).
    pub dst_mac: [u8; 6],
    /// MTU of the egress interface.
    pub mtu: u32,
}

/// The answer for one next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Send the frame this way.
    Ready(NextHop),
    /// The neighbour's MAC address is being resolved; ask again shortly.
    Pending,
    /// The kernel has no unicast route through an Ethernet-like interface to the next hop.
    NoRoute,
}

#[derive(Clone, Copy, Debug)]
enum Entry {
    Ready(NextHop),
    NoRoute,
    Pending { last_probe: Timestamp },
}

/// Resolves next hops through the kernel's tables, with a short-lived cache.
#[derive(Debug)]
pub struct Resolver {
    netlink: Netlink,
    /// Next hop → answer and when it was last checked.
    hops: HashMap<IpAddr, (Entry, Timestamp)>,
    links: HashMap<u32, (Link, Timestamp)>,
}

impl Resolver {
    /// A resolver for the calling thread's network namespace.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            netlink: Netlink::open()?,
            hops: HashMap::new(),
            links: HashMap::new(),
        })
    }

    /// Where a packet the agent routed to `route` leaves. Errors talking to the kernel count as
    /// [`Resolution::NoRoute`] (and are retried after the cache lifetime).
    pub fn resolve(&mut self, now: Timestamp, route: Route) -> Resolution {
        let hop = route.next_hop;
        match self.hops.get(&hop).copied() {
            Some((Entry::Ready(next), checked)) if now.saturating_since(checked) < CACHE_TTL => {
                Resolution::Ready(next)
            }
            Some((Entry::NoRoute, checked)) if now.saturating_since(checked) < CACHE_TTL => {
                Resolution::NoRoute
            }
            Some((Entry::Pending { .. }, checked))
                if now.saturating_since(checked) < PENDING_RECHECK =>
            {
                Resolution::Pending
            }
            previous => {
                let last_probe = match previous {
                    Some((Entry::Pending { last_probe, .. }, _)) => Some(last_probe),
                    _ => None,
                };
                let entry = self.lookup(now, hop, last_probe).unwrap_or(Entry::NoRoute);
                self.hops.insert(hop, (entry, now));
                match entry {
                    Entry::Ready(next) => Resolution::Ready(next),
                    Entry::NoRoute => Resolution::NoRoute,
                    Entry::Pending { .. } => Resolution::Pending,
                }
            }
        }
    }

    /// The interface named `name` in this namespace, or `None` when there is none.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        self.netlink.link_by_name(name)
    }

    /// Every address this namespace's interfaces hold.
    pub fn local_addresses(&mut self) -> io::Result<Vec<IpAddr>> {
        let mut addrs = self.netlink.addresses()?;
        addrs.sort_unstable();
        addrs.dedup();
        Ok(addrs)
    }

    /// Forgets answers older than the cache lifetime, so the map does not grow with every next
    /// hop ever seen.
    pub fn expire(&mut self, now: Timestamp) {
        self.hops
            .retain(|_, (_, checked)| now.saturating_since(*checked) < CACHE_TTL);
        self.links
            .retain(|_, (_, checked)| now.saturating_since(*checked) < CACHE_TTL);
    }

    fn lookup(
        &mut self,
        now: Timestamp,
        hop: IpAddr,
        last_probe: Option<Timestamp>,
    ) -> io::Result<Entry> {
        let Some(RouteInfo {
            oif,
            gateway,
            unicast: true,
        }) = self.netlink.route(hop)?
        else {
            return Ok(Entry::NoRoute);
        };
        let Some(link) = self.link(now, oif)? else {
            return Ok(Entry::NoRoute);
        };
        let Some(src_mac) = link.mac else {
            return Ok(Entry::NoRoute);
        };
        let target = gateway.unwrap_or(hop);
        if let Some(dst_mac) = self.netlink.neighbour(oif, target)? {
            return Ok(Entry::Ready(NextHop {
                ifindex: oif,
                src_mac,
                dst_mac,
                mtu: link.mtu,
            }));
        }
        let due = last_probe.is_none_or(|t| now.saturating_since(t) >= PROBE_INTERVAL);
        let last_probe = if due {
            probe(&link, target);
            now
        } else {
            last_probe.unwrap_or(now)
        };
        Ok(Entry::Pending { last_probe })
    }

    fn link(&mut self, now: Timestamp, index: u32) -> io::Result<Option<Link>> {
        if let Some((link, checked)) = self.links.get(&index)
            && now.saturating_since(*checked) < CACHE_TTL
        {
            return Ok(Some(link.clone()));
        }
        let link = self.netlink.link_by_index(index)?;
        if let Some(link) = &link {
            self.links.insert(index, (link.clone(), now));
        }
        Ok(link)
    }
}

/// Makes the kernel resolve `target` on `link` by sending it a datagram it will discard.
/// Failures are ignored: the packet waiting for it is dropped and counted if nothing comes.
fn probe(link: &Link, target: IpAddr) {
    let (domain, dest) = match target {
        IpAddr::V4(_) => (Domain::IPV4, SocketAddr::new(target, DISCARD_PORT)),
        IpAddr::V6(v6) => {
            let scope = if v6.is_unicast_link_local() {
                link.index
            } else {
                0
            };
            (
                Domain::IPV6,
                SocketAddr::V6(SocketAddrV6::new(v6, DISCARD_PORT, 0, scope)),
            )
        }
    };
    let sent = Socket::new(domain, Type::DGRAM, None).and_then(|s| {
        s.set_nonblocking(true)?;
        s.bind_device(Some(link.name.as_bytes()))?;
        s.send_to(&[], &dest.into())
    });
    if let Err(e) = sent {
        tracing::debug!(interface = %link.name, %target, error = %e, "neighbour probe failed");
    }
}
