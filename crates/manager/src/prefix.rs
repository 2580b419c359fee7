//! Address prefixes (client domains) as wildcard affinities express them: address and netmask.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address prefix; the address is kept as given, [`Prefix::network`] masks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// A prefix of `len` bits (clamped to the family's width).
    pub(crate) fn new(addr: IpAddr, len: u8) -> Self {
        let width = if addr.is_ipv4() { 32 } else { 128 };
        Self {
            addr,
            len: len.min(width),
        }
    }

    /// The single address `addr` (/32 or /128).
    pub(crate) fn host(addr: IpAddr) -> Self {
        Self::new(addr, 128)
    }

    /// The netmask, in the prefix's family.
    pub(crate) fn mask(self) -> IpAddr {
        match self.addr {
            IpAddr::V4(_) => {
                let bits = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(bits))
            }
            IpAddr::V6(_) => {
                let bits = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        }
    }

    /// The address with its host bits cleared.
    pub(crate) fn network(self) -> IpAddr {
        masked(self.addr, self.mask())
    }

    /// Whether `ip` (of either family) lies in the prefix.
    pub(crate) fn contains(self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && masked(ip, self.mask()) == self.network()
    }

    /// Whether the two prefixes share an address.
    pub(crate) fn overlaps(self, other: &Self) -> bool {
        let shorter = if self.len <= other.len { self } else { *other };
        let longer = if self.len <= other.len { *other } else { self };
        shorter.contains(longer.addr)
    }
}

fn masked(ip: IpAddr, mask: IpAddr) -> IpAddr {
    match (ip, mask) {
        (IpAddr::V4(a), IpAddr::V4(m)) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & u32::from(m))),
        (IpAddr::V6(a), IpAddr::V6(m)) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & u128::from(m))),
        // Families differ: nothing of one family lies in a prefix of the other.
        (IpAddr::V4(_), _) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        (IpAddr::V6(_), _) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn masks_and_membership_follow_the_prefix_length() {
        let p = Prefix::new(ip("10.1.2.3"), 8);
        assert_eq!(p.mask(), ip("255.0.0.0"));
        assert_eq!(p.network(), ip("10.0.0.0"));
        assert!(p.contains(ip("10.200.0.1")));
        assert!(!p.contains(ip("11.0.0.1")));
        assert!(!p.contains(ip("::1")));
        assert_eq!(Prefix::new(ip("1.2.3.4"), 0).mask(), ip("0.0.0.0"));
        assert_eq!(Prefix::host(ip("1.2.3.4")).mask(), ip("255.255.255.255"));
        assert_eq!(Prefix::new(ip("2001:db8::1"), 32).mask(), ip("ffff:ffff::"));
        assert_eq!(
            Prefix::host(ip("2001:db8::1")).mask(),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
    }

    #[test]
    fn prefixes_overlap_when_one_contains_the_other() {
        let a = Prefix::new(ip("10.0.0.0"), 8);
        let b = Prefix::new(ip("10.1.0.0"), 16);
        let c = Prefix::new(ip("11.0.0.0"), 8);
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
    }
}
