//! Smooth weighted round robin (nginx): weights are honoured exactly over every cycle of
//! `sum(weights)` picks, with each backend's picks spread through the cycle, not bunched.

use super::BackendSpec;

/// Smooth weighted round robin state.
#[derive(Clone, Debug)]
pub(crate) struct SmoothRoundRobin {
    weights: Vec<i64>,
    current: Vec<i64>,
    eligible: Vec<bool>,
}

impl SmoothRoundRobin {
    pub(crate) fn new(backends: &[BackendSpec<'_>]) -> Self {
        Self {
            weights: backends.iter().map(|b| i64::from(b.weight)).collect(),
            current: vec![0; backends.len()],
            eligible: vec![true; backends.len()],
        }
    }

    pub(crate) fn set_eligible(&mut self, eligible: &[bool]) {
        self.eligible.copy_from_slice(eligible);
        // A backend coming back starts level instead of with credit from before.
        for (current, &ok) in self.current.iter_mut().zip(eligible) {
            if !ok {
                *current = 0;
            }
        }
    }

    pub(crate) fn pick(&mut self) -> Option<usize> {
        let mut total = 0;
        let mut best: Option<usize> = None;
        for i in (0..self.weights.len()).filter(|&i| self.eligible[i]) {
            self.current[i] += self.weights[i];
            total += self.weights[i];
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        self.current[best] -= total;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduler(weights: &[u32]) -> SmoothRoundRobin {
        let specs: Vec<_> = weights
            .iter()
            .map(|&weight| BackendSpec { name: "b", weight })
            .collect();
        SmoothRoundRobin::new(&specs)
    }

    #[test]
    fn weights_one_two_three_get_exact_shares_of_600_picks() {
        let mut s = scheduler(&[1, 2, 3]);
        let mut counts = [0; 3];
        for _ in 0..600 {
            counts[s.pick().unwrap()] += 1;
        }
        assert_eq!(counts, [100, 200, 300]);
    }

    #[test]
    fn picks_are_interleaved_not_bunched() {
        let mut s = scheduler(&[5, 1, 1]);
        let picks: Vec<_> = (0..7).map(|_| s.pick().unwrap()).collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn ineligible_backends_are_skipped() {
        let mut s = scheduler(&[1, 2, 3]);
        s.set_eligible(&[true, false, true]);
        let mut counts = [0; 3];
        for _ in 0..400 {
            counts[s.pick().unwrap()] += 1;
        }
        assert_eq!(counts, [100, 0, 300]);
        s.set_eligible(&[false, false, false]);
        assert_eq!(s.pick(), None);
    }
}
