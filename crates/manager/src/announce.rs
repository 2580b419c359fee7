//! Wildcard announcements: sent at start, refreshed every third of their TTL so that two lost
//! refreshes in a row still leave them alive at every agent, and withdrawn (TTL 0) on shutdown.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::VecDeque;

use tether_proto::{Message, Timestamp, WildcardUpdate};

/// The wildcards of every service and when they are next due.
#[derive(Debug)]
pub(crate) struct Announcer {
    wildcards: Vec<WildcardUpdate>,
    targets: Vec<SocketAddr>,
    interval: Duration,
    /// `None` once withdrawn.
    next: Option<Timestamp>,
}

impl Announcer {
    /// Announcements of `wildcards` to `targets`, due at `now` and then every `ttl / 3`.
    pub(crate) fn new(
        wildcards: Vec<WildcardUpdate>,
        targets: Vec<SocketAddr>,
        ttl: u32,
        now: Timestamp,
    ) -> Self {
        Self {
            wildcards,
            targets,
            interval: Duration::from_millis(u64::from(ttl) * 1000 / 3),
            next: Some(now),
        }
    }

    /// When the next refresh is due.
    pub(crate) fn next_refresh(&self) -> Option<Timestamp> {
        self.next
    }

    /// Queues every wildcard to every target if a refresh is due; returns how many.
    pub(crate) fn poll(
        &mut self,
        now: Timestamp,
        out: &mut VecDeque<(SocketAddr, Message)>,
    ) -> u64 {
        match self.next {
            // A late wake-up sends one refresh, not a burst to catch up.
            Some(due) if due <= now => {
                self.next = Some(now + self.interval);
                self.queue(out, Clone::clone)
            }
            _ => 0,
        }
    }

    /// Where announcements go.
    pub(crate) fn targets(&self) -> &[SocketAddr] {
        &self.targets
    }

    /// Takes new wildcards (a service's table changed) and sends them all at `now`.
    pub(crate) fn replace(&mut self, wildcards: Vec<WildcardUpdate>, now: Timestamp) {
        self.wildcards = wildcards;
        self.expedite(now);
    }

    /// Brings the next refresh forward to `at` (unless withdrawn).
    pub(crate) fn expedite(&mut self, at: Timestamp) {
        self.next = self.next.map(|n| n.min(at));
    }

    /// Queues every wildcard to every target now (unless withdrawn), each right after its
    /// TTL-0 copy with `cancel`: a backup taking over cancels the dead manager's identical
    /// wildcards this way without leaving a gap. Returns how many updates.
    pub(crate) fn reannounce(
        &mut self,
        now: Timestamp,
        cancel: bool,
        out: &mut VecDeque<(SocketAddr, Message)>,
    ) -> u64 {
        if self.next.is_none() {
            return 0;
        }
        self.next = Some(now + self.interval);
        let mut sent = 0;
        for &target in &self.targets {
            for wildcard in &self.wildcards {
                if cancel {
                    let mut void = wildcard.clone();
                    void.affinity.ttl = 0;
                    out.push_back((target, Message::WildcardUpdate(void)));
                    sent += 1;
                }
                out.push_back((target, Message::WildcardUpdate(wildcard.clone())));
                sent += 1;
            }
        }
        sent
    }

    /// Queues a TTL-0 copy of every wildcard to every target and stops refreshing.
    pub(crate) fn withdraw(&mut self, out: &mut VecDeque<(SocketAddr, Message)>) -> u64 {
        if self.next.take().is_none() {
            return 0;
        }
        self.queue(out, |w| {
            let mut w = w.clone();
            w.affinity.ttl = 0;
            w
        })
    }

    fn queue(
        &self,
        out: &mut VecDeque<(SocketAddr, Message)>,
        make: impl Fn(&WildcardUpdate) -> WildcardUpdate,
    ) -> u64 {
        let mut sent = 0;
        for &target in &self.targets {
            for wildcard in &self.wildcards {
                out.push_back((target, Message::WildcardUpdate(make(wildcard))));
                sent += 1;
            }
        }
        sent
    }
}
