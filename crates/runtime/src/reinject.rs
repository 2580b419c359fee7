//! Re-injection: giving the kernel back an IP packet that steering took from it but the
//! agent does not own (an ICMP error about one of the host's own connections).
//!
//! A raw socket with `IPPROTO_RAW` sends a complete IP header (`IP_HDRINCL` is implied for
//! IPv4; IPv6 does the same for `IPPROTO_RAW`). A packet addressed to this host loops back
//! through `lo` and is delivered as if it had just arrived (so a path-MTU error reaches its
//! socket); any other packet is routed by the kernel as usual.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::io;

use socket2::{Domain, Protocol, Socket, Type};

/// Raw IPv4 and IPv6 sockets that hand packets to the kernel's IP output.
#[derive(Debug)]
pub struct Reinjector {
    v4: Socket,
    v6: Socket,
}

impl Reinjector {
    /// Opens both sockets (needs `CAP_NET_RAW`).
    pub fn open() -> io::Result<Self> {
        let raw = Some(Protocol::from(libc::IPPROTO_RAW));
        let v4 = Socket::new(Domain::IPV4, Type::RAW, raw)?;
        let v6 = Socket::new(Domain::IPV6, Type::RAW, raw)?;
        v4.set_nonblocking(true)?;
        v6.set_nonblocking(true)?;
        Ok(Self { v4, v6 })
    }

    /// Hands `ip` (a complete IPv4 or IPv6 packet) to the kernel, addressed by its header.
    pub fn send(&self, ip: &[u8]) -> io::Result<()> {
        let (socket, dst) = match ip.first().map(|b| b >> 4) {
            Some(4) => {
                let dst: [u8; 4] = ip
                    .get(16..20)
                    .and_then(|d| d.try_into().ok())
                    .ok_or(io::ErrorKind::InvalidInput)?;
                (&self.v4, IpAddr::V4(Ipv4Addr::from(dst)))
            }
            Some(6) => {
                let dst: [u8; 16] = ip
                    .get(24..40)
                    .and_then(|d| d.try_into().ok())
                    .ok_or(io::ErrorKind::InvalidInput)?;
                (&self.v6, IpAddr::V6(Ipv6Addr::from(dst)))
            }
            _ => return Err(io::ErrorKind::InvalidInput.into()),
        };
        socket
            .send_to(ip, &SocketAddr::new(dst, 0).into())
            .map(drop)
    }
}
