//! Fixed affinities: exact flow keys, one direction, possibly from several managers.

use core::cmp::Reverse;
use core::net::SocketAddr;
use std::collections::BinaryHeap;

use foldhash::fast::FixedState;
use tether_proto::Timestamp;
use tether_wire::AffinityKey;

use super::{Affinity, Rank};
use crate::{FixedView, Map};

/// A stored fixed affinity and the deadline its expiry timer is queued at.
#[derive(Clone, Debug)]
struct FixedEntry {
    affinity: Affinity,
    /// Invariant: a timer item with this deadline is in the heap and `queued <= expires`.
    queued: Timestamp,
}

/// What an insert-or-refresh did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Upsert {
    /// A new affinity was stored.
    Inserted,
    /// An existing affinity of the same manager and key was refreshed.
    Refreshed,
    /// The table is full; nothing was stored.
    Full,
}

/// Fixed affinities by key. Most keys have one entry; several managers (a primary and a
/// backup, or several services) may each have one, and precedence picks among them.
#[derive(Debug)]
pub(crate) struct FixedTable {
    map: Map<AffinityKey, Vec<FixedEntry>>,
    len: usize,
    capacity: usize,
    next_installed: u64,
    /// Lazy-deletion timer heap: refreshes that move a deadline later push nothing; the item is
    /// re-queued when it fires early. Stale items (deleted entries) are skipped when popped.
    timers: BinaryHeap<Reverse<(Timestamp, AffinityKey, SocketAddr)>>,
}

impl FixedTable {
    /// An empty table holding at most `capacity` affinities.
    pub fn new(capacity: usize, hasher: FixedState) -> Self {
        Self {
            map: Map::with_hasher(hasher),
            len: 0,
            capacity,
            next_installed: 0,
            timers: BinaryHeap::new(),
        }
    }

    /// Affinities stored (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// The best live affinity for `key`.
    #[inline]
    pub fn best_mut(&mut self, key: &AffinityKey, now: Timestamp) -> Option<&mut Affinity> {
        let entries = self.map.get_mut(key)?;
        // Most keys have one manager's affinity: no ranking to do.
        if entries.len() == 1 {
            return entries
                .first_mut()
                .map(|e| &mut e.affinity)
                .filter(|a| a.live(now));
        }
        entries
            .iter_mut()
            .map(|e| &mut e.affinity)
            .filter(|a| a.live(now))
            .min_by_key(|a| a.rank.order_key())
    }

    /// Whether `manager` has a live affinity for `key`.
    pub fn contains(&self, key: &AffinityKey, manager: SocketAddr, now: Timestamp) -> bool {
        self.map.get(key).is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e.affinity.manager == manager && e.affinity.live(now))
        })
    }

    /// The live affinity of `manager` for `key`.
    pub fn get_mut(
        &mut self,
        key: &AffinityKey,
        manager: SocketAddr,
        now: Timestamp,
    ) -> Option<&mut Affinity> {
        self.map
            .get_mut(key)?
            .iter_mut()
            .map(|e| &mut e.affinity)
            .find(|a| a.manager == manager && a.live(now))
    }

    /// Stores `affinity` for `key`, or refreshes the one its manager already has.
    pub fn upsert(&mut self, key: AffinityKey, mut affinity: Affinity) -> Upsert {
        let manager = affinity.manager;
        let expires = affinity.expires;
        let full = self.len >= self.capacity;
        let entries = self.map.entry(key).or_default();
        if let Some(entry) = entries.iter_mut().find(|e| e.affinity.manager == manager) {
            entry
                .affinity
                .refresh(affinity.rank, affinity.behaviour, expires);
            if expires < entry.queued {
                entry.queued = expires;
                self.timers.push(Reverse((expires, key, manager)));
            }
            return Upsert::Refreshed;
        }
        if full {
            if entries.is_empty() {
                self.map.remove(&key);
            }
            return Upsert::Full;
        }
        affinity.rank.installed = self.next_installed;
        self.next_installed += 1;
        entries.push(FixedEntry {
            affinity,
            queued: expires,
        });
        self.len += 1;
        self.timers.push(Reverse((expires, key, manager)));
        Upsert::Inserted
    }

    /// Deletes the affinities for `key` of `manager` and of every manager whose rank gives way
    /// to `cancel`; whether there was one.
    pub fn cancel(&mut self, key: &AffinityKey, manager: SocketAddr, cancel: &Rank) -> bool {
        let Some(entries) = self.map.get_mut(key) else {
            return false;
        };
        let before = entries.len();
        entries.retain(|e| e.affinity.manager != manager && !e.affinity.rank.cancelled_by(cancel));
        let removed = before - entries.len();
        if entries.is_empty() {
            self.map.remove(key);
        }
        self.len -= removed;
        removed > 0
    }

    /// Deletes every affinity of `manager` whose key `keep` rejects; how many went.
    pub fn retain_manager(
        &mut self,
        manager: SocketAddr,
        mut keep: impl FnMut(&AffinityKey) -> bool,
    ) -> usize {
        let mut removed = 0;
        self.map.retain(|key, entries| {
            if entries.iter().any(|e| e.affinity.manager == manager) && !keep(key) {
                let before = entries.len();
                entries.retain(|e| e.affinity.manager != manager);
                removed += before - entries.len();
            }
            !entries.is_empty()
        });
        self.len -= removed;
        removed
    }

    /// Deletes affinities whose deadline has passed; how many went.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let mut expired = 0;
        while let Some(&Reverse((deadline, key, manager))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let Some(entries) = self.map.get_mut(&key) else {
                continue;
            };
            let Some(pos) = entries
                .iter()
                .position(|e| e.affinity.manager == manager && e.queued == deadline)
            else {
                continue;
            };
            let entry = &mut entries[pos];
            if entry.affinity.live(now) {
                entry.queued = entry.affinity.expires;
                self.timers
                    .push(Reverse((entry.affinity.expires, key, manager)));
            } else {
                entries.swap_remove(pos);
                if entries.is_empty() {
                    self.map.remove(&key);
                }
                self.len -= 1;
                expired += 1;
            }
        }
        expired
    }

    /// When the next timer item fires (possibly a stale one, which only wakes early).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Every stored affinity.
    pub fn views(&self) -> impl Iterator<Item = FixedView<'_>> {
        self.map.iter().flat_map(|(key, entries)| {
            entries.iter().map(move |e| FixedView {
                key,
                manager: e.affinity.manager,
                expires: e.affinity.expires,
                traffic: e.affinity.traffic,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{Behaviour, Rank};
    use core::time::Duration;
    use tether_proto::{Actions, UNSPECIFIED_V4};

    fn key(port: u16) -> AffinityKey {
        AffinityKey {
            protocol: 6,
            src: "10.0.0.1".parse().unwrap(),
            src_port: port,
            dst: "192.0.2.1".parse().unwrap(),
            dst_port: 80,
        }
    }

    fn affinity(manager: &str, backup: u16, expires_s: u64) -> Affinity {
        let b = Behaviour::new(false, false, UNSPECIFIED_V4, &Actions::default(), None);
        Affinity::new(
            manager.parse().unwrap(),
            Rank::new(None, Some(backup), 0),
            b,
            Timestamp::from_duration(Duration::from_secs(expires_s)),
        )
    }

    fn at(s: u64) -> Timestamp {
        Timestamp::from_duration(Duration::from_secs(s))
    }

    #[test]
    fn best_precedence_wins_among_managers() {
        let mut t = FixedTable::new(10, FixedState::with_seed(1));
        assert_eq!(
            t.upsert(key(1), affinity("10.9.0.2:1", 2, 10)),
            Upsert::Inserted
        );
        assert_eq!(
            t.upsert(key(1), affinity("10.9.0.1:1", 1, 10)),
            Upsert::Inserted
        );
        let best = t.best_mut(&key(1), at(0)).unwrap();
        assert_eq!(best.manager, "10.9.0.1:1".parse().unwrap());
        // The primary's own withdrawal (precedence 1) leaves the backup's copy.
        let primary = Rank::new(None, Some(1), 0);
        assert!(t.cancel(&key(1), "10.9.0.1:1".parse().unwrap(), &primary));
        let best = t.best_mut(&key(1), at(0)).unwrap();
        assert_eq!(best.manager, "10.9.0.2:1".parse().unwrap());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_cancel_deletes_the_copies_of_managers_ranked_the_same_or_better() {
        let mut t = FixedTable::new(10, FixedState::with_seed(1));
        t.upsert(key(1), affinity("10.9.0.1:1", 1, 10));
        t.upsert(key(1), affinity("10.9.0.2:1", 2, 10));
        t.upsert(key(1), affinity("10.9.0.3:1", 3, 10));
        // The backup of precedence 2 takes over from the dead primary of precedence 1.
        let backup = Rank::new(None, Some(2), 0);
        assert!(t.cancel(&key(1), "10.9.0.2:1".parse().unwrap(), &backup));
        let best = t.best_mut(&key(1), at(0)).unwrap();
        assert_eq!(best.manager, "10.9.0.3:1".parse().unwrap());
        assert_eq!(t.len(), 1);
        assert!(!t.cancel(&key(2), "10.9.0.2:1".parse().unwrap(), &backup));
    }

    #[test]
    fn refresh_later_requeues_and_refresh_earlier_pushes() {
        let mut t = FixedTable::new(10, FixedState::with_seed(1));
        t.upsert(key(1), affinity("10.9.0.1:1", 0, 10));
        assert_eq!(
            t.upsert(key(1), affinity("10.9.0.1:1", 0, 20)),
            Upsert::Refreshed
        );
        assert_eq!(t.next_deadline(), Some(at(10)));
        assert_eq!(t.expire(at(10)), 0);
        assert_eq!(t.next_deadline(), Some(at(20)));
        t.upsert(key(1), affinity("10.9.0.1:1", 0, 15));
        assert_eq!(t.next_deadline(), Some(at(15)));
        assert_eq!(t.expire(at(15)), 1);
        assert_eq!(t.len(), 0);
        assert_eq!(t.expire(at(20)), 0);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn full_table_discards_new_keys_but_refreshes_old_ones() {
        let mut t = FixedTable::new(1, FixedState::with_seed(1));
        t.upsert(key(1), affinity("10.9.0.1:1", 0, 10));
        assert_eq!(
            t.upsert(key(2), affinity("10.9.0.1:1", 0, 10)),
            Upsert::Full
        );
        assert_eq!(
            t.upsert(key(1), affinity("10.9.0.1:1", 0, 11)),
            Upsert::Refreshed
        );
        assert_eq!(t.views().count(), 1);
    }

    #[test]
    fn retain_manager_only_touches_that_manager() {
        let mut t = FixedTable::new(10, FixedState::with_seed(1));
        t.upsert(key(1), affinity("10.9.0.1:1", 0, 10));
        t.upsert(key(2), affinity("10.9.0.1:1", 0, 10));
        t.upsert(key(2), affinity("10.9.0.2:1", 0, 10));
        let removed = t.retain_manager("10.9.0.1:1".parse().unwrap(), |k| k.src_port == 1);
        assert_eq!(removed, 1);
        assert_eq!(t.len(), 2);
        assert!(
            t.get_mut(&key(2), "10.9.0.2:1".parse().unwrap(), at(0))
                .is_some()
        );
        assert!(
            t.get_mut(&key(2), "10.9.0.1:1".parse().unwrap(), at(0))
                .is_none()
        );
    }
}
