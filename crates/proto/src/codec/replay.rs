//! The sliding replay window of one (sender, key id).

/// Sequence numbers a window remembers below the highest one seen.
pub const REPLAY_WINDOW: u64 = 128;

/// Which of the last [`REPLAY_WINDOW`] sequence numbers have been accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ReplayWindow {
    /// Highest sequence number accepted.
    highest: u64,
    /// Bit `i` set: `highest - i` was accepted.
    seen: u128,
}

impl ReplayWindow {
    /// A window that has accepted `sequence` only.
    pub fn starting_at(sequence: u64) -> Self {
        Self {
            highest: sequence,
            seen: 1,
        }
    }

    /// Whether `sequence` is new and inside the window.
    pub fn check(&self, sequence: u64) -> bool {
        match self.highest.checked_sub(sequence) {
            None => true,
            Some(age) if age < REPLAY_WINDOW => self.seen & (1 << age) == 0,
            Some(_) => false,
        }
    }

    /// Records `sequence`, which [`ReplayWindow::check`] accepted.
    pub fn record(&mut self, sequence: u64) {
        match sequence.checked_sub(self.highest) {
            Some(0) => {}
            Some(ahead) => {
                self.seen = if ahead < REPLAY_WINDOW {
                    self.seen << ahead
                } else {
                    0
                } | 1;
                self.highest = sequence;
            }
            None => {
                let age = self.highest - sequence;
                if age < REPLAY_WINDOW {
                    self.seen |= 1 << age;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(w: &mut ReplayWindow, seq: u64) -> bool {
        let ok = w.check(seq);
        if ok {
            w.record(seq);
        }
        ok
    }

    #[test]
    fn duplicates_are_refused_and_new_numbers_accepted() {
        let mut w = ReplayWindow::starting_at(10);
        assert!(!accept(&mut w, 10));
        assert!(accept(&mut w, 11));
        assert!(!accept(&mut w, 11));
        assert!(accept(&mut w, 1000));
        assert!(!accept(&mut w, 1000));
    }

    #[test]
    fn reordered_numbers_inside_the_window_are_accepted_once() {
        let mut w = ReplayWindow::starting_at(200);
        assert!(accept(&mut w, 199));
        assert!(accept(&mut w, 200 - (REPLAY_WINDOW - 1)));
        assert!(!accept(&mut w, 199));
        assert!(!accept(&mut w, 200 - (REPLAY_WINDOW - 1)));
    }

    #[test]
    fn numbers_older_than_the_window_are_refused() {
        let mut w = ReplayWindow::starting_at(500);
        assert!(!accept(&mut w, 500 - REPLAY_WINDOW));
        assert!(!accept(&mut w, 0));
    }

    #[test]
    fn a_jump_past_the_window_forgets_the_old_bits() {
        let mut w = ReplayWindow::starting_at(5);
        assert!(accept(&mut w, 5 + REPLAY_WINDOW + 3));
        assert!(accept(&mut w, 4 + REPLAY_WINDOW + 3 - 1));
        assert!(!accept(&mut w, 5));
    }

    #[test]
    fn the_window_slides_with_the_highest_number() {
        let mut w = ReplayWindow::starting_at(1);
        for seq in 2..=300 {
            assert!(accept(&mut w, seq));
        }
        assert!(!accept(&mut w, 300 - REPLAY_WINDOW));
        assert!(!accept(&mut w, 250));
        assert!(accept(&mut w, 301));
    }
}
