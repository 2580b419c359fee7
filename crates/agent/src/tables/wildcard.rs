//! Wildcard affinities: classes of flows by masked addresses, ports and protocol.

use core::net::{IpAddr, SocketAddr};

use tether_proto::{AdvertiseAction, Timestamp, WildcardAffinity};
use tether_wire::AffinityKey;

use super::{Affinity, Rank};
use crate::WildcardView;

/// An address as (is IPv6, bits), IPv4 in the low 32 bits, so one comparison serves both.
fn addr_bits(addr: IpAddr) -> (bool, u128) {
    match addr {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

/// The match part of a wildcard, normalised (addresses pre-masked). Two updates with equal
/// patterns from one manager name the same wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    v6: bool,
    protocol: u8,
    src: u128,
    src_mask: u128,
    src_port: u16,
    dst: u128,
    dst_mask: u128,
    dst_port: u16,
}

impl Pattern {
    /// The pattern of `w`, or `None` when its addresses and masks mix address families.
    pub fn new(w: &WildcardAffinity) -> Option<Self> {
        let (v6, src) = addr_bits(w.src);
        let parts = [w.src_mask, w.dst, w.dst_mask].map(addr_bits);
        if parts.iter().any(|(f, _)| *f != v6) {
            return None;
        }
        let [(_, src_mask), (_, dst), (_, dst_mask)] = parts;
        Some(Self {
            v6,
            protocol: w.protocol,
            src: src & src_mask,
            src_mask,
            src_port: w.src_port,
            dst: dst & dst_mask,
            dst_mask,
            dst_port: w.dst_port,
        })
    }

    /// Whether `key` falls in this class: masked addresses equal, port 0 and protocol 0 match
    /// anything.
    pub fn matches(&self, key: &AffinityKey) -> bool {
        let (sv6, src) = addr_bits(key.src);
        let (dv6, dst) = addr_bits(key.dst);
        sv6 == self.v6
            && dv6 == self.v6
            && (self.protocol == 0 || self.protocol == key.protocol)
            && src & self.src_mask == self.src
            && dst & self.dst_mask == self.dst
            && (self.src_port == 0 || self.src_port == key.src_port)
            && (self.dst_port == 0 || self.dst_port == key.dst_port)
    }
}

/// A stored wildcard affinity.
#[derive(Clone, Debug)]
struct WildcardEntry {
    /// Stable id, so fragment memory can refer to the entry.
    id: u64,
    pattern: Pattern,
    wildcard: WildcardAffinity,
    affinity: Affinity,
}

/// What an insert-or-refresh did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Upsert {
    /// A new wildcard was stored.
    Inserted,
    /// The manager's wildcard with the same pattern was refreshed.
    Refreshed,
}

/// Wildcard affinities, kept sorted best precedence first so the first match is the winner.
/// Managers install a few per service, so a scan beats any index here.
#[derive(Debug, Default)]
pub(crate) struct WildcardTable {
    entries: Vec<WildcardEntry>,
    next_id: u64,
    next_deadline: Option<Timestamp>,
}

impl WildcardTable {
    /// Wildcards stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The best live wildcard matching `key`, with its id.
    pub fn best_mut(&mut self, key: &AffinityKey, now: Timestamp) -> Option<(u64, &mut Affinity)> {
        self.entries
            .iter_mut()
            .find(|e| e.affinity.live(now) && e.pattern.matches(key))
            .map(|e| (e.id, &mut e.affinity))
    }

    /// Whether the wildcard with id `id` is stored and live.
    pub fn contains(&self, id: u64, now: Timestamp) -> bool {
        self.entries
            .iter()
            .any(|e| e.id == id && e.affinity.live(now))
    }

    /// The live wildcard with id `id`.
    pub fn get_mut(&mut self, id: u64, now: Timestamp) -> Option<&mut Affinity> {
        self.entries
            .iter_mut()
            .find(|e| e.id == id && e.affinity.live(now))
            .map(|e| &mut e.affinity)
    }

    /// Whether a live wildcard of `manager` matches `key` (a fixed affinity needs one).
    pub fn supports(&self, manager: SocketAddr, key: &AffinityKey, now: Timestamp) -> bool {
        self.entries.iter().any(|e| {
            e.affinity.manager == manager && e.affinity.live(now) && e.pattern.matches(key)
        })
    }

    /// The wildcard of `manager` with `pattern`, live or not.
    pub fn find(&self, manager: SocketAddr, pattern: &Pattern) -> Option<&Affinity> {
        self.entries
            .iter()
            .find(|e| e.affinity.manager == manager && e.pattern == *pattern)
            .map(|e| &e.affinity)
    }

    /// Stores a wildcard or refreshes the manager's wildcard with the same pattern.
    pub fn upsert(
        &mut self,
        pattern: Pattern,
        wildcard: WildcardAffinity,
        mut affinity: Affinity,
    ) -> Upsert {
        let manager = affinity.manager;
        let outcome = if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.affinity.manager == manager && e.pattern == pattern)
        {
            e.affinity
                .refresh(affinity.rank, affinity.behaviour, affinity.expires);
            e.wildcard = wildcard;
            Upsert::Refreshed
        } else {
            affinity.rank.installed = self.next_id;
            self.entries.push(WildcardEntry {
                id: self.next_id,
                pattern,
                wildcard,
                affinity,
            });
            self.next_id += 1;
            Upsert::Inserted
        };
        self.entries.sort_by_key(|e| e.affinity.rank.order_key());
        self.recompute_deadline();
        outcome
    }

    /// Deletes the wildcards with `pattern` of `manager` and of every manager whose rank
    /// gives way to `cancel`; returns the managers that lost one (each once).
    pub fn cancel(
        &mut self,
        manager: SocketAddr,
        pattern: &Pattern,
        cancel: &Rank,
    ) -> Vec<SocketAddr> {
        let mut managers = Vec::new();
        self.entries.retain(|e| {
            let gone = e.pattern == *pattern
                && (e.affinity.manager == manager || e.affinity.rank.cancelled_by(cancel));
            if gone && !managers.contains(&e.affinity.manager) {
                managers.push(e.affinity.manager);
            }
            !gone
        });
        self.recompute_deadline();
        managers
    }

    /// Deletes expired wildcards; returns the managers that lost one (each once).
    pub fn expire(&mut self, now: Timestamp) -> Vec<SocketAddr> {
        let mut managers = Vec::new();
        if self.next_deadline.is_none_or(|t| t > now) {
            return managers;
        }
        self.entries.retain(|e| {
            let live = e.affinity.live(now);
            if !live && !managers.contains(&e.affinity.manager) {
                managers.push(e.affinity.manager);
            }
            live
        });
        self.recompute_deadline();
        managers
    }

    /// When the next wildcard expires.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.next_deadline
    }

    fn recompute_deadline(&mut self) {
        self.next_deadline = self.entries.iter().map(|e| e.affinity.expires).min();
    }

    /// Every stored wildcard, best first.
    pub fn views(&self) -> impl Iterator<Item = WildcardView<'_>> {
        self.entries.iter().map(|e| WildcardView {
            affinity: &e.wildcard,
            manager: e.affinity.manager,
            expires: e.affinity.expires,
            traffic: e.affinity.traffic,
        })
    }

    /// Advertise actions of the stored wildcards.
    pub fn advertised(&self) -> impl Iterator<Item = AdvertiseAction> + '_ {
        self.entries
            .iter()
            .filter_map(|e| e.affinity.behaviour.advertise)
    }

    /// Whether `addr` lies in a prefix a live wildcard advertises.
    pub fn is_advertised(&self, addr: IpAddr, now: Timestamp) -> bool {
        let (v6, bits) = addr_bits(addr);
        self.entries.iter().any(|e| {
            let Some(adv) = e.affinity.behaviour.advertise else {
                return false;
            };
            let (adv_v6, adv_bits) = addr_bits(adv.addr);
            let width: u32 = if v6 { 128 } else { 32 };
            let len = u32::from(adv.prefix_len).min(width);
            // The prefix mask over the family's width, shifted so it covers the low bits too.
            let mask = if len == 0 {
                0
            } else {
                (u128::MAX << (128 - len)) >> (128 - width)
            };
            e.affinity.live(now) && adv_v6 == v6 && bits & mask == adv_bits & mask
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{Behaviour, Rank};
    use core::time::Duration;
    use tether_proto::{Actions, UNSPECIFIED_V4};

    fn wildcard(dst: &str, dst_mask: &str, dst_port: u16) -> WildcardAffinity {
        WildcardAffinity {
            protocol: 6,
            src: "0.0.0.0".parse().unwrap(),
            src_mask: "0.0.0.0".parse().unwrap(),
            src_port: 0,
            dst: dst.parse().unwrap(),
            dst_mask: dst_mask.parse().unwrap(),
            dst_port,
            dispatch: false,
            information: false,
            forward: UNSPECIFIED_V4,
            ttl: 30,
        }
    }

    fn affinity(manager: &str, actions: &Actions, expires_s: u64) -> Affinity {
        Affinity::new(
            manager.parse().unwrap(),
            Rank::new(None, None, 0),
            Behaviour::new(false, false, UNSPECIFIED_V4, actions, None),
            Timestamp::from_duration(Duration::from_secs(expires_s)),
        )
    }

    fn key(dst: &str, dst_port: u16) -> AffinityKey {
        AffinityKey {
            protocol: 6,
            src: "198.51.100.7".parse().unwrap(),
            src_port: 40000,
            dst: dst.parse().unwrap(),
            dst_port,
        }
    }

    #[test]
    fn patterns_mixing_families_are_refused() {
        let mut w = wildcard("192.0.2.0", "255.255.255.0", 80);
        w.dst_mask = "ffff::".parse().unwrap();
        assert!(Pattern::new(&w).is_none());
    }

    #[test]
    fn host_bits_outside_the_mask_do_not_matter() {
        let a = Pattern::new(&wildcard("192.0.2.77", "255.255.255.0", 80)).unwrap();
        let b = Pattern::new(&wildcard("192.0.2.0", "255.255.255.0", 80)).unwrap();
        assert_eq!(a, b);
        assert!(a.matches(&key("192.0.2.200", 80)));
        assert!(!a.matches(&key("192.0.3.1", 80)));
        assert!(!a.matches(&key("192.0.2.1", 81)));
    }

    #[test]
    fn expiry_reports_each_manager_once() {
        let mut t = WildcardTable::default();
        let m = "10.9.0.1:7000";
        for port in [80, 81] {
            let w = wildcard("192.0.2.1", "255.255.255.255", port);
            t.upsert(
                Pattern::new(&w).unwrap(),
                w,
                affinity(m, &Actions::default(), 5),
            );
        }
        let at = |s| Timestamp::from_duration(Duration::from_secs(s));
        assert_eq!(t.next_deadline(), Some(at(5)));
        assert!(t.expire(at(4)).is_empty());
        assert_eq!(t.expire(at(5)), vec![m.parse().unwrap()]);
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn advertised_prefixes_cover_their_addresses() {
        let mut t = WildcardTable::default();
        let actions = Actions {
            advertise: Some(AdvertiseAction {
                addr: "192.0.2.0".parse().unwrap(),
                prefix_len: 24,
            }),
            ..Actions::default()
        };
        let w = wildcard("192.0.2.1", "255.255.255.255", 80);
        t.upsert(
            Pattern::new(&w).unwrap(),
            w,
            affinity("10.9.0.1:1", &actions, 5),
        );
        assert!(t.is_advertised("192.0.2.9".parse().unwrap(), Timestamp::ZERO));
        assert!(!t.is_advertised("192.0.3.9".parse().unwrap(), Timestamp::ZERO));
        assert!(!t.is_advertised("::1".parse().unwrap(), Timestamp::ZERO));
        assert_eq!(t.advertised().count(), 1);
    }
}
