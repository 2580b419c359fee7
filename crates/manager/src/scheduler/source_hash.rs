//! Source hashing: a client address keeps its backend for as long as the eligible set allows,
//! and loses it only to the minimal reshuffle of a consistent-hash table when that set changes.

use core::net::IpAddr;

use super::{BackendSpec, Maglev, source_hash};

/// A Maglev table looked up by the client address alone.
#[derive(Clone, Debug)]
pub(crate) struct SourceHash {
    table: Maglev,
}

impl SourceHash {
    pub(crate) fn new(table_size: u32, backends: &[BackendSpec<'_>]) -> Self {
        Self {
            table: Maglev::new(table_size, backends),
        }
    }

    pub(crate) fn set_eligible(&mut self, eligible: &[bool]) {
        self.table.set_eligible(eligible);
    }

    pub(crate) fn pick(&self, client: IpAddr) -> Option<usize> {
        self.table.lookup(source_hash(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_keeps_its_backend_and_clients_spread() {
        let names: Vec<String> = (0..4).map(|i| format!("b{i}")).collect();
        let specs: Vec<_> = names
            .iter()
            .map(|name| BackendSpec { name, weight: 1 })
            .collect();
        let s = SourceHash::new(1_009, &specs);
        let again = SourceHash::new(1_009, &specs);
        let mut seen = [0; 4];
        for i in 0..=255u8 {
            let client = IpAddr::from([192, 0, 2, i]);
            let pick = s.pick(client).unwrap();
            assert_eq!(s.pick(client), Some(pick));
            assert_eq!(again.pick(client), Some(pick));
            seen[pick] += 1;
        }
        assert!(seen.iter().all(|&n| n > 32), "{seen:?}");
    }
}
