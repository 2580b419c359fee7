//! Weighted least connections: the eligible backend with the fewest active flows per unit of
//! weight; ties go to the heavier backend, then to the one configured first.

use super::BackendSpec;

/// Weighted least connections state.
#[derive(Clone, Debug)]
pub(crate) struct LeastConnections {
    weights: Vec<u32>,
    eligible: Vec<bool>,
}

impl LeastConnections {
    pub(crate) fn new(backends: &[BackendSpec<'_>]) -> Self {
        Self {
            weights: backends.iter().map(|b| b.weight).collect(),
            eligible: vec![true; backends.len()],
        }
    }

    pub(crate) fn set_eligible(&mut self, eligible: &[bool]) {
        self.eligible.copy_from_slice(eligible);
    }

    /// `active[i]` is backend `i`'s number of active flows.
    pub(crate) fn pick(&self, active: &[u64]) -> Option<usize> {
        let mut best: Option<usize> = None;
        for i in (0..self.weights.len()).filter(|&i| self.eligible[i]) {
            let better = best.is_none_or(|b| {
                // a_i / w_i < a_b / w_b, compared without division.
                let lhs = u128::from(active[i]) * u128::from(self.weights[b]);
                let rhs = u128::from(active[b]) * u128::from(self.weights[i]);
                lhs < rhs || (lhs == rhs && self.weights[i] > self.weights[b])
            });
            if better {
                best = Some(i);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduler(weights: &[u32]) -> LeastConnections {
        let specs: Vec<_> = weights
            .iter()
            .map(|&weight| BackendSpec { name: "b", weight })
            .collect();
        LeastConnections::new(&specs)
    }

    #[test]
    fn picks_the_least_loaded_per_unit_of_weight() {
        let s = scheduler(&[1, 2, 4]);
        // 3/1, 4/2, 7/4: backend 2 has the lowest ratio.
        assert_eq!(s.pick(&[3, 4, 7]), Some(2));
        // 1/1, 4/2, 8/4: backend 0.
        assert_eq!(s.pick(&[1, 4, 8]), Some(0));
        // 2/1, 4/2, 8/4 tie: the heaviest.
        assert_eq!(s.pick(&[2, 4, 8]), Some(2));
    }

    #[test]
    fn filling_up_follows_the_weights() {
        let s = scheduler(&[1, 3]);
        let mut active = [0, 0];
        for _ in 0..400 {
            active[s.pick(&active).unwrap()] += 1;
        }
        assert_eq!(active, [100, 300]);
    }

    #[test]
    fn ineligible_backends_are_never_picked() {
        let mut s = scheduler(&[1, 1]);
        s.set_eligible(&[false, true]);
        assert_eq!(s.pick(&[0, 50]), Some(1));
        s.set_eligible(&[false, false]);
        assert_eq!(s.pick(&[0, 0]), None);
    }
}
