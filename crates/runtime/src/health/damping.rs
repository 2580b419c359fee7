//! Flap damping: the pure state machine that turns a stream of check results into up and down
//! transitions, with separate thresholds each way (pingora's and HAProxy's `rise` and `fall`).

/// A backend's health as its checks have established it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damping {
    rise: u32,
    fall: u32,
    up: bool,
    /// Consecutive results that disagree with `up`.
    streak: u32,
}

impl Damping {
    /// A backend that is up (as HAProxy assumes at start, so a restart does not empty a service)
    /// and changes state after `rise` consecutive successes or `fall` consecutive failures.
    ///
    /// A threshold of 0 acts as 1: a single result is the least that can change a state.
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            up: true,
            streak: 0,
        }
    }

    /// Whether the backend is up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Records one check result; returns the new state if this result changed it.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        if success == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let threshold = if self.up { self.fall } else { self.rise };
        if self.streak < threshold {
            return None;
        }
        self.up = success;
        self.streak = 0;
        Some(success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `results` and returns the transitions, as (index of the result, new state).
    fn transitions(damping: &mut Damping, results: &[bool]) -> Vec<(usize, bool)> {
        results
            .iter()
            .enumerate()
            .filter_map(|(i, &ok)| damping.record(ok).map(|up| (i, up)))
            .collect()
    }

    #[test]
    fn a_backend_starts_up_and_successes_change_nothing() {
        let mut d = Damping::new(2, 3);
        assert!(d.is_up());
        assert_eq!(transitions(&mut d, &[true; 10]), []);
        assert!(d.is_up());
    }

    #[test]
    fn goes_down_after_fall_consecutive_failures() {
        let mut d = Damping::new(2, 3);
        assert_eq!(transitions(&mut d, &[false, false, false]), [(2, false)]);
        assert!(!d.is_up());
    }

    #[test]
    fn comes_back_after_rise_consecutive_successes() {
        let mut d = Damping::new(2, 3);
        transitions(&mut d, &[false; 3]);
        assert_eq!(transitions(&mut d, &[true, true, true]), [(1, true)]);
        assert!(d.is_up());
    }

    #[test]
    fn a_success_between_failures_restarts_the_fall_count() {
        let mut d = Damping::new(2, 3);
        let results = [false, false, true, false, false, true, false, false, false];
        assert_eq!(transitions(&mut d, &results), [(8, false)]);
    }

    #[test]
    fn a_failure_between_successes_restarts_the_rise_count() {
        let mut d = Damping::new(3, 1);
        assert_eq!(transitions(&mut d, &[false]), [(0, false)]);
        let results = [true, true, false, true, true, false, true, true, true];
        assert_eq!(transitions(&mut d, &results), [(8, true)]);
    }

    #[test]
    fn a_flapping_backend_stays_in_its_state() {
        let mut d = Damping::new(2, 2);
        let flapping: Vec<bool> = (0..100).map(|i| i % 2 == 0).collect();
        assert_eq!(transitions(&mut d, &flapping), []);
        assert!(d.is_up());
    }

    #[test]
    fn thresholds_of_one_follow_every_change() {
        let mut d = Damping::new(1, 1);
        assert_eq!(
            transitions(&mut d, &[false, true, true, false]),
            [(0, false), (1, true), (3, false)]
        );
    }

    #[test]
    fn a_zero_threshold_acts_as_one() {
        let mut d = Damping::new(0, 0);
        assert_eq!(transitions(&mut d, &[false, true]), [(0, false), (1, true)]);
    }
}
