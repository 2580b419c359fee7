//! Maglev consistent hashing (Eisenbud et al., NSDI 2016) with weights and a stable fallback.
//!
//! Each backend walks its own permutation of the table's `M` slots (offset and skip from two
//! seeded xxh3 hashes of its name, so every manager on every machine builds the same table) and
//! takes turns claiming the next free slot of its permutation. Turns are weighted by stride
//! scheduling: a backend of weight `w` takes a turn every `1/w` units of virtual time, so equal
//! weights give exactly Maglev's round of turns, and a backend ends with
//! `M * w / sum(w)` slots, give or take one.
//!
//! The table is built in two layers. The *base* layer is populated once over every configured
//! backend. When some backends become ineligible, only their base slots (the holes) are
//! populated again, by the same turns among the eligible backends. So taking a backend out moves
//! exactly its own slots and nothing else, restoring it brings the base table back unchanged,
//! and the table depends only on the eligible set, never on the order of events.

use core::cmp::Reverse;
use core::net::IpAddr;
use std::collections::BinaryHeap;

use tether_wire::AffinityKey;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Seed of the hash of a flow's 5-tuple for lookups. Managers (a primary and its backups) and
/// agents placing flows locally must agree on it on any machine and build; changing it changes
/// every placement.
const SEED_FLOW: u64 = 0x7465_7468_6572_0001;
/// Seed of the hash that gives a backend's permutation offset.
const SEED_OFFSET: u64 = 0x6d61_676c_6576_0001;
/// Seed of the hash that gives a backend's permutation skip.
const SEED_SKIP: u64 = 0x6d61_676c_6576_0002;
/// Marks a slot no backend holds yet.
const EMPTY: u32 = u32::MAX;

/// What a table knows about a backend when it is built from names.
#[derive(Clone, Copy, Debug)]
pub struct BackendSpec<'a> {
    /// Name, which places the backend in consistent-hash tables.
    pub name: &'a str,
    /// Relative share of new flows (at least 1).
    pub weight: u32,
}

/// A weighted Maglev lookup table.
#[derive(Clone, Debug)]
pub struct Maglev {
    /// Slots over every configured backend.
    base: Vec<u32>,
    /// Slots over the eligible backends: `base` with the ineligible backends' slots refilled.
    table: Vec<u32>,
    permutations: Vec<Permutation>,
    weights: Vec<u32>,
    eligible: Vec<bool>,
}

/// Where a backend's walk over the table starts and how far each step goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permutation {
    /// First slot of the walk, below the table size.
    pub offset: u32,
    /// Step of the walk, from 1 to the table size - 1 (coprime with the prime size).
    pub skip: u32,
}

impl Permutation {
    /// The permutation of the backend named `name` in a table of `size` slots (at least 2).
    pub fn of(name: &str, size: u32) -> Self {
        let m = u64::from(size);
        let narrow = |v: u64| u32::try_from(v).expect("below the u32 table size");
        Self {
            offset: narrow(xxh3_64_with_seed(name.as_bytes(), SEED_OFFSET) % m),
            skip: narrow(xxh3_64_with_seed(name.as_bytes(), SEED_SKIP) % (m - 1) + 1),
        }
    }
}

impl Maglev {
    /// A table of `size` slots (a prime larger than `backends.len()`), all backends eligible.
    pub fn new(size: u32, backends: &[BackendSpec<'_>]) -> Self {
        let permutations = backends
            .iter()
            .map(|b| Permutation::of(b.name, size))
            .collect();
        Self::from_permutations(
            size,
            permutations,
            backends.iter().map(|b| b.weight).collect(),
        )
    }

    /// A table of `size` slots from each backend's permutation and weight, all backends
    /// eligible: what an agent builds from a consistent-hash action. `size` must be a prime,
    /// every permutation within it and every weight at least 1 (the decoder checks this).
    pub fn from_permutations(size: u32, permutations: Vec<Permutation>, weights: Vec<u32>) -> Self {
        let eligible = vec![true; permutations.len()];
        let mut base = vec![EMPTY; size as usize];
        populate(&mut base, &permutations, &weights, &eligible);
        Self {
            table: base.clone(),
            base,
            permutations,
            weights,
            eligible,
        }
    }

    /// The number of slots.
    pub fn size(&self) -> u32 {
        u32::try_from(self.table.len()).expect("built from a u32 size")
    }

    /// Each backend's permutation, by index.
    pub fn permutations(&self) -> &[Permutation] {
        &self.permutations
    }

    /// Each backend's weight, by index.
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// Which backends the table is spread over, by index.
    pub fn eligible(&self) -> &[bool] {
        &self.eligible
    }

    /// Takes a new eligible set; rebuilds the table only when it differs from the current one.
    pub fn set_eligible(&mut self, eligible: &[bool]) {
        if self.eligible == eligible {
            return;
        }
        self.eligible.copy_from_slice(eligible);
        self.table.copy_from_slice(&self.base);
        for slot in &mut self.table {
            if !self.eligible[*slot as usize] {
                *slot = EMPTY;
            }
        }
        populate(
            &mut self.table,
            &self.permutations,
            &self.weights,
            &self.eligible,
        );
    }

    /// The backend index for a flow hash, or `None` when no backend is eligible.
    pub fn lookup(&self, hash: u64) -> Option<usize> {
        let slot = self.table[(hash % self.table.len() as u64) as usize];
        (slot != EMPTY).then_some(slot as usize)
    }

    /// The backend index for flow `key` (its [`flow_hash`]), or `None` when no backend is
    /// eligible.
    pub fn pick(&self, key: &AffinityKey) -> Option<usize> {
        self.lookup(flow_hash(key))
    }

    /// The backend index of every slot (`None` for an empty table).
    pub fn slots(&self) -> impl Iterator<Item = Option<usize>> + '_ {
        self.table
            .iter()
            .map(|&s| (s != EMPTY).then_some(s as usize))
    }
}

/// The seeded hash of a flow's 5-tuple, over a canonical byte layout.
pub fn flow_hash(key: &AffinityKey) -> u64 {
    let mut buf = [0u8; 37];
    buf[0] = key.protocol;
    let mut len = 1;
    for (addr, port) in [(key.src, key.src_port), (key.dst, key.dst_port)] {
        let n = match addr {
            IpAddr::V4(a) => {
                buf[len..len + 4].copy_from_slice(&a.octets());
                4
            }
            IpAddr::V6(a) => {
                buf[len..len + 16].copy_from_slice(&a.octets());
                16
            }
        };
        len += n;
        buf[len..len + 2].copy_from_slice(&port.to_be_bytes());
        len += 2;
    }
    xxh3_64_with_seed(&buf[..len], SEED_FLOW)
}

/// Whether `n` is a prime (table sizes must be, so every skip walks the whole table).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let n = u64::from(n);
    (2..=n.isqrt()).all(|d| n % d != 0)
}

/// Fills the `EMPTY` slots of `table` by weighted turns among the eligible backends, leaving
/// the other slots alone.
fn populate(table: &mut [u32], permutations: &[Permutation], weights: &[u32], eligible: &[bool]) {
    let m = table.len() as u64;
    let mut holes = table.iter().filter(|&&s| s == EMPTY).count();
    // Virtual time advances by 2^64 / weight per turn; u128 leaves room for M turns.
    let stride = |w: u32| u128::from(u64::MAX) / u128::from(w);
    let mut turns: BinaryHeap<Reverse<(u128, usize)>> = (0..permutations.len())
        .filter(|&i| eligible[i])
        .map(|i| Reverse((0, i)))
        .collect();
    let mut position: Vec<u64> = permutations.iter().map(|p| u64::from(p.offset)).collect();
    while holes > 0 {
        let Some(Reverse((time, i))) = turns.pop() else {
            return;
        };
        let skip = u64::from(permutations[i].skip);
        // The skip is coprime with the prime M, so the walk meets every slot and ends on a hole.
        while table[position[i] as usize] != EMPTY {
            position[i] = (position[i] + skip) % m;
        }
        table[position[i] as usize] = i as u32;
        position[i] = (position[i] + skip) % m;
        holes -= 1;
        turns.push(Reverse((time + stride(weights[i]), i)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u32 = 65_537;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("backend-{i}")).collect()
    }

    fn specs(names: &[String], weight: impl Fn(usize) -> u32) -> Vec<BackendSpec<'_>> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| BackendSpec {
                name,
                weight: weight(i),
            })
            .collect()
    }

    fn counts(table: &Maglev, n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for slot in table.slots() {
            counts[slot.unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn removing_a_backend_moves_only_its_own_slots() {
        let names = names(100);
        let mut table = Maglev::new(M, &specs(&names, |_| 1));
        let before: Vec<_> = table.slots().collect();
        let mut eligible = vec![true; 100];
        eligible[37] = false;
        table.set_eligible(&eligible);
        let after: Vec<_> = table.slots().collect();
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if *b == Some(37) {
                assert_ne!(*a, Some(37));
                moved += 1;
            } else {
                assert_eq!(a, b, "a slot of another backend moved");
            }
        }
        assert!((655..=656).contains(&moved));
        // The freed slots are spread evenly over the other 99.
        let c = counts(&table, 100);
        assert!(
            c.iter()
                .enumerate()
                .all(|(i, &n)| i == 37 || (661..=663).contains(&n))
        );

        eligible[37] = true;
        table.set_eligible(&eligible);
        assert_eq!(table.slots().collect::<Vec<_>>(), before);
    }

    #[test]
    fn equal_weights_balance_within_one_percent() {
        let names = names(100);
        let table = Maglev::new(M, &specs(&names, |_| 1));
        let c = counts(&table, 100);
        let mean = f64::from(M) / 100.0;
        let max = *c.iter().max().unwrap() as f64;
        assert!(max / mean <= 1.01, "max/mean = {}", max / mean);
        assert!(c.iter().all(|&n| n == 655 || n == 656));
    }

    /// Bound: every backend holds `M * w / sum(w)` slots within ±2 (stride scheduling is off by
    /// less than one turn, plus one for the turn in progress when the table fills).
    #[test]
    fn weights_are_honoured_within_two_slots() {
        let names = names(10);
        let weight = |i: usize| [1, 2, 3, 5, 8, 13, 21, 34, 55, 100][i];
        let table = Maglev::new(M, &specs(&names, weight));
        let total: u32 = (0..10).map(weight).sum();
        for (i, &n) in counts(&table, 10).iter().enumerate() {
            let ideal = f64::from(M) * f64::from(weight(i)) / f64::from(total);
            assert!(
                (n as f64 - ideal).abs() <= 2.0,
                "backend {i}: {n} vs {ideal}"
            );
        }
    }

    #[test]
    fn tables_are_deterministic_and_match_the_golden_slots() {
        let names = names(100);
        let a = Maglev::new(M, &specs(&names, |_| 1));
        let b = Maglev::new(M, &specs(&names, |_| 1));
        assert!(a.slots().eq(b.slots()));
        // Changing the hash, its seeds or the population order changes these.
        let golden: Vec<_> = [0, 1, 2, 1000, 65_536]
            .iter()
            .map(|&s| a.table[s])
            .collect();
        assert_eq!(golden, vec![84, 97, 17, 68, 22]);
    }

    /// The slot of the key in `flow_hash_distinguishes_direction_and_is_stable`.
    const GOLDEN_FLOW_SLOT: u64 = 46_949;

    #[test]
    fn primality_matches_known_values() {
        assert!(is_prime(65_537));
        assert!(is_prime(2));
        assert!(!is_prime(65_536));
        assert!(!is_prime(1));
        assert!(!is_prime(65_535));
        assert!(is_prime(4_294_967_291));
    }

    #[test]
    fn flow_hash_distinguishes_direction_and_is_stable() {
        let key = AffinityKey {
            protocol: 6,
            src: "192.0.2.1".parse().unwrap(),
            src_port: 40_000,
            dst: "198.51.100.1".parse().unwrap(),
            dst_port: 80,
        };
        assert_ne!(flow_hash(&key), flow_hash(&key.reversed()));
        assert_eq!(flow_hash(&key), flow_hash(&key.clone()));
        // Changing the hash or its seed changes this, and with it every placement.
        assert_eq!(flow_hash(&key) % 65_537, GOLDEN_FLOW_SLOT);
    }

    #[test]
    fn a_table_built_from_permutations_equals_one_built_from_names() {
        let names = names(10);
        let specs = specs(&names, |i| 1 + i as u32 % 3);
        let mut by_name = Maglev::new(M, &specs);
        let mut by_parts = Maglev::from_permutations(
            M,
            by_name.permutations().to_vec(),
            by_name.weights().to_vec(),
        );
        assert!(by_name.slots().eq(by_parts.slots()));
        let mut eligible = vec![true; 10];
        eligible[3] = false;
        by_name.set_eligible(&eligible);
        by_parts.set_eligible(&eligible);
        assert!(by_name.slots().eq(by_parts.slots()));
    }

    #[test]
    fn no_eligible_backend_means_no_pick() {
        let names = names(3);
        let mut table = Maglev::new(7, &specs(&names, |_| 1));
        table.set_eligible(&[false, false, false]);
        assert_eq!(table.lookup(12_345), None);
        table.set_eligible(&[false, true, false]);
        assert!(table.slots().all(|s| s == Some(1)));
    }
}
