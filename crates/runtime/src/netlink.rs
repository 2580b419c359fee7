//! A small rtnetlink client: the questions the packet path asks the kernel (which interface
//! and gateway lead to an address, which MAC address a neighbour has, what an interface's
//! index, MAC address and MTU are, which addresses the host has), one request each.
//!
//! Why not the `rtnetlink` crate: it is asynchronous, and these blocking requests run on the
//! worker's own thread, a few per second at most thanks to the caches in `neigh`. The bytes
//! are the stable rtnetlink ABI (`linux/rtnetlink.h`), parsed with bounds checks only.

use core::net::IpAddr;
use std::io::{self, Read};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const HEADER_LEN: usize = 16;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const RTN_UNICAST: u8 = 1;
/// Neighbour states whose link-layer address can be used (all but INCOMPLETE, FAILED, NONE).
const NUD_USABLE: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80;

/// An interface as the kernel describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Its MAC address, if it has a 6-byte one (Ethernet-like).
    pub mac: Option<[u8; 6]>,
    /// Its MTU.
    pub mtu: u32,
}

/// The kernel's route to an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// Egress interface index.
    pub oif: u32,
    /// The gateway, when the destination is not on-link.
    pub gateway: Option<IpAddr>,
    /// Whether this is a unicast route away from the host (not local, broadcast, blackhole).
    pub unicast: bool,
}

/// A blocking rtnetlink socket.
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a `NETLINK_ROUTE` socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let socket = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(libc::NETLINK_ROUTE)),
        )?;
        socket.set_read_timeout(Some(Duration::from_secs(1)))?;
        Ok(Self {
            socket,
            seq: 0,
            buf: vec![0; 32 * 1024],
        })
    }

    /// The interface with index `index`, or `None` when there is none.
    pub fn link_by_index(&mut self, index: u32) -> io::Result<Option<Link>> {
        self.link(index, None)
    }

    /// The interface named `name`, or `None` when there is none.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        self.link(0, Some(name))
    }

    fn link(&mut self, index: u32, name: Option<&str>) -> io::Result<Option<Link>> {
        let mut body = vec![0u8; 16];
        body[4..8].copy_from_slice(&index.to_ne_bytes());
        if let Some(name) = name {
            let mut z = name.as_bytes().to_vec();
            z.push(0);
            push_attr(&mut body, IFLA_IFNAME, &z);
        }
        let Some(reply) = self.request(RTM_GETLINK, &body, RTM_NEWLINK)? else {
            return Ok(None);
        };
        let (Some(index), Some(attrs)) = (u32_at(&reply, 4), reply.get(16..)) else {
            return Ok(None);
        };
        let mut link = Link {
            index,
            name: String::new(),
            mac: None,
            mtu: 0,
        };
        for (kind, value) in Attrs(attrs) {
            match kind {
                IFLA_ADDRESS => link.mac = value.try_into().ok(),
                IFLA_IFNAME => {
                    let name = value.split(|b| *b == 0).next().unwrap_or_default();
                    link.name = String::from_utf8_lossy(name).into_owned();
                }
                IFLA_MTU => link.mtu = u32_at(value, 0).unwrap_or(0),
                _ => {}
            }
        }
        Ok(Some(link))
    }

    /// The route the kernel would use towards `dst`, or `None` when it has none.
    pub fn route(&mut self, dst: IpAddr) -> io::Result<Option<RouteInfo>> {
        let (family, bits) = family(dst);
        let mut body = vec![0u8; 12];
        body[0] = family;
        body[1] = bits;
        push_attr(&mut body, RTA_DST, &octets(dst));
        let Some(reply) = self.request(RTM_GETROUTE, &body, RTM_NEWROUTE)? else {
            return Ok(None);
        };
        let (Some(&kind), Some(attrs)) = (reply.get(7), reply.get(12..)) else {
            return Ok(None);
        };
        let mut route = RouteInfo {
            oif: 0,
            gateway: None,
            unicast: kind == RTN_UNICAST,
        };
        for (attr, value) in Attrs(attrs) {
            match attr {
                RTA_OIF => route.oif = u32_at(value, 0).unwrap_or(0),
                RTA_GATEWAY => route.gateway = ip_from(value),
                _ => {}
            }
        }
        Ok(Some(route))
    }

    /// The usable MAC address of neighbour `addr` on interface `ifindex`, or `None` when the
    /// kernel has none (unknown, still resolving, or failed).
    pub fn neighbour(&mut self, ifindex: u32, addr: IpAddr) -> io::Result<Option<[u8; 6]>> {
        let mut body = vec![0u8; 12];
        body[0] = family(addr).0;
        body[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        push_attr(&mut body, NDA_DST, &octets(addr));
        let Some(reply) = self.request(RTM_GETNEIGH, &body, RTM_NEWNEIGH)? else {
            return Ok(None);
        };
        let state = reply
            .get(8..10)
            .map_or(0, |s| u16::from_ne_bytes([s[0], s[1]]));
        if state & NUD_USABLE == 0 {
            return Ok(None);
        }
        let attrs = reply.get(12..).unwrap_or_default();
        Ok(Attrs(attrs)
            .find(|(kind, _)| *kind == NDA_LLADDR)
            .and_then(|(_, mac)| mac.try_into().ok()))
    }

    /// Every address assigned to an interface of this namespace (IPv4 and IPv6).
    pub fn addresses(&mut self) -> io::Result<Vec<IpAddr>> {
        // struct ifaddrmsg, family AF_UNSPEC: both families.
        let body = [0u8; 8];
        let mut found = Vec::new();
        self.exchange(
            RTM_GETADDR,
            NLM_F_REQUEST | NLM_F_DUMP,
            &body,
            |ty, payload| {
                match ty {
                    RTM_NEWADDR => {
                        let attrs = payload.get(8..).unwrap_or_default();
                        // IFA_LOCAL is the host's own address on point-to-point links, where
                        // IFA_ADDRESS is the peer's; elsewhere they are equal.
                        let local = Attrs(attrs).find(|(k, _)| *k == IFA_LOCAL);
                        let address =
                            local.or_else(|| Attrs(attrs).find(|(k, _)| *k == IFA_ADDRESS));
                        if let Some(addr) = address.and_then(|(_, v)| ip_from(v)) {
                            found.push(addr);
                        }
                        None
                    }
                    NLMSG_DONE => Some(Ok(())),
                    NLMSG_ERROR => Some(Err(io::Error::from_raw_os_error(errno(payload)))),
                    _ => None,
                }
            },
        )?;
        Ok(found)
    }

    /// Sends one request and returns the body of the answer of type `want`; `None` when the
    /// kernel answers "no such thing" (ENOENT, ENODEV, ENETUNREACH, EHOSTUNREACH...).
    fn request(&mut self, kind: u16, body: &[u8], want: u16) -> io::Result<Option<Vec<u8>>> {
        self.exchange(kind, NLM_F_REQUEST, body, |ty, payload| match ty {
            t if t == want => Some(Ok(Some(payload.to_vec()))),
            NLMSG_ERROR => Some(match errno(payload) {
                0
                | libc::ENOENT
                | libc::ENODEV
                | libc::ENETUNREACH
                | libc::EHOSTUNREACH
                | libc::ESRCH => Ok(None),
                e => Err(io::Error::from_raw_os_error(e)),
            }),
            NLMSG_DONE => Some(Ok(None)),
            _ => None,
        })
    }

    /// Sends one message with a fresh sequence number, then hands every answer to it (type and
    /// payload) to `answer` until `answer` returns a result.
    fn exchange<R>(
        &mut self,
        kind: u16,
        flags: u16,
        body: &[u8],
        mut answer: impl FnMut(u16, &[u8]) -> Option<io::Result<R>>,
    ) -> io::Result<R> {
        self.seq = self.seq.wrapping_add(1);
        let mut msg = Vec::with_capacity(HEADER_LEN + body.len());
        msg.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        self.socket.send(&msg)?;
        loop {
            let n = (&self.socket).read(&mut self.buf)?;
            let mut rest = self.buf.get(..n).unwrap_or_default();
            while rest.len() >= HEADER_LEN {
                let len = u32_at(rest, 0).unwrap_or(0) as usize;
                let (Some(msg), Some(ty), Some(seq)) = (
                    rest.get(..len.max(HEADER_LEN)),
                    u16_at(rest, 4),
                    u32_at(rest, 8),
                ) else {
                    break;
                };
                rest = rest.get(align(len.max(HEADER_LEN))..).unwrap_or_default();
                if seq != self.seq {
                    continue; // the late answer to an earlier request that timed out
                }
                if let Some(result) = answer(ty, msg.get(HEADER_LEN..).unwrap_or_default()) {
                    return result;
                }
            }
        }
    }
}

/// The error number of an `NLMSG_ERROR` payload (0 is an acknowledgement).
fn errno(payload: &[u8]) -> i32 {
    u32_at(payload, 0).map_or(0, |e| -(e.cast_signed()))
}

/// Iterates over the `(type, value)` attributes of a netlink message body.
struct Attrs<'a>(&'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let len = usize::from(u16_at(self.0, 0)?);
        let kind = u16_at(self.0, 2)? & 0x3FFF;
        let value = self.0.get(4..len)?;
        self.0 = self.0.get(align(len)..).unwrap_or_default();
        Some((kind, value))
    }
}

fn push_attr(body: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    body.extend_from_slice(&(len as u16).to_ne_bytes());
    body.extend_from_slice(&kind.to_ne_bytes());
    body.extend_from_slice(value);
    body.resize(align(body.len()), 0);
}

const fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn family(addr: IpAddr) -> (u8, u8) {
    match addr {
        IpAddr::V4(_) => (libc::AF_INET as u8, 32),
        IpAddr::V6(_) => (libc::AF_INET6 as u8, 128),
    }
}

fn octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn ip_from(value: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(value) {
        Some(IpAddr::from(v4))
    } else {
        <[u8; 16]>::try_from(value).ok().map(IpAddr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_parsed_back() {
        let mut body = Vec::new();
        push_attr(&mut body, IFLA_IFNAME, b"eth0\0");
        push_attr(&mut body, IFLA_MTU, &1500u32.to_ne_bytes());
        assert_eq!(body.len(), 12 + 8);
        let attrs: Vec<_> = Attrs(&body).collect();
        assert_eq!(attrs[0], (IFLA_IFNAME, &b"eth0\0"[..]));
        assert_eq!(attrs[1].0, IFLA_MTU);
        assert_eq!(u32_at(attrs[1].1, 0), Some(1500));
    }

    #[test]
    fn truncated_attributes_end_the_iteration() {
        assert_eq!(Attrs(&[8, 0, 1, 0, 1]).count(), 0);
        assert_eq!(Attrs(&[2, 0]).count(), 0);
    }

    #[test]
    fn the_hosts_addresses_include_loopback() {
        let mut nl = Netlink::open().unwrap();
        let addrs = nl.addresses().unwrap();
        assert!(addrs.contains(&IpAddr::from([127, 0, 0, 1])), "{addrs:?}");
    }

    #[test]
    fn loopback_is_found_by_name_and_index() {
        let mut nl = Netlink::open().unwrap();
        let lo = nl.link_by_name("lo").unwrap().unwrap();
        assert_eq!(lo.name, "lo");
        assert_eq!(nl.link_by_index(lo.index).unwrap().unwrap().name, "lo");
        assert!(nl.link_by_name("no-such-if0").unwrap().is_none());
    }
}
