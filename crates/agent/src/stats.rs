//! Counters: why packets were dropped, what messages came and went, how big the tables are.

use tether_wire::WireError;

/// Why the agent dropped a packet. [`DropReason::reason`] gives the stable counter label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The frame is not a packet the agent can process.
    Malformed(WireError),
    /// The TTL or hop limit would reach 0 on forwarding.
    TtlExpired,
    /// The matching affinity's forward address is unspecified: drop by design.
    ForwardUnspecified,
    /// The packet is addressed to an advertised prefix but no affinity covers it.
    AdvertisedUnmatched,
    /// A held packet's fixed affinity did not arrive within the hold time.
    HoldTimeout,
    /// A packet returned with a fixed affinity that was discarded for lack of a wildcard.
    NoSupportingWildcard,
    /// A packet returned with a fixed affinity update that was denied.
    UpdateDenied,
}

impl DropReason {
    /// A short, stable label for counters (`drops{reason="..."}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(e) => e.reason(),
            Self::TtlExpired => "ttl_expired",
            Self::ForwardUnspecified => "forward_unspecified",
            Self::AdvertisedUnmatched => "advertised_unmatched",
            Self::HoldTimeout => "hold_timeout",
            Self::NoSupportingWildcard => "no_supporting_wildcard",
            Self::UpdateDenied => "update_denied",
        }
    }
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        Self::Malformed(e)
    }
}

/// Counts by stable label. Labels come from a small closed set, so a linear scan is as fast as
/// a map and only the first occurrence of a label allocates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelCounts {
    entries: Vec<(&'static str, u64)>,
}

impl LabelCounts {
    /// Adds one to `label`.
    pub fn add(&mut self, label: &'static str) {
        match self.entries.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => self.entries.push((label, 1)),
        }
    }

    /// The count of `label` (0 when never counted).
    pub fn get(&self, label: &str) -> u64 {
        self.entries
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0, |(_, n)| *n)
    }

    /// Every label counted so far, in the order first seen.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// The sum over all labels.
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|(_, n)| n).sum()
    }
}

/// Packets and bytes (IP length, without link-layer header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficStats {
    /// Packets.
    pub packets: u64,
    /// Bytes of IP packets.
    pub bytes: u64,
}

impl TrafficStats {
    /// Counts one packet of `len` bytes.
    pub(crate) fn count(&mut self, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
    }
}

/// The agent's counters (monotonic) and gauges (current sizes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// Frames handed to `handle_frame`.
    pub frames_in: u64,
    /// Frames answered with `Verdict::Forward`.
    pub forwarded: u64,
    /// Frames no affinity covers.
    pub not_ours: u64,
    /// Frames whose packet went to a manager.
    pub to_manager: u64,
    /// Frames held for a manager's decision.
    pub held: u64,
    /// Packets dropped, by reason (frames, returned and held packets alike).
    pub drops: LabelCounts,
    /// Held packets released by a fixed affinity.
    pub hold_released: u64,
    /// Packets that asked to be held while the hold buffer was full (sent to the manager).
    pub hold_full: u64,
    /// IP packets queued for `poll_packet`.
    pub packets_out: u64,
    /// Interest match messages sent.
    pub interest_matches: u64,
    /// Packet copies sent inside interest matches.
    pub copies: u64,
    /// Service messages accepted.
    pub messages_in: u64,
    /// Service messages rejected by the codec, by `Rejection::reason()`.
    pub rejected: LabelCounts,
    /// Accepted messages an agent has no use for (denies, interest matches).
    pub unexpected_messages: u64,
    /// Updates whose affinity makes no sense (mixed address families); ignored.
    pub invalid_updates: u64,
    /// Service messages queued for `poll_transmit`.
    pub messages_out: u64,
    /// Affinity update-denies sent.
    pub denies_sent: u64,
    /// Fixed affinities discarded because no wildcard of their manager matches them.
    pub fixed_discarded_no_wildcard: u64,
    /// Fixed affinities discarded because the table is full.
    pub fixed_discarded_table_full: u64,
    /// Fixed affinities deleted because the wildcard supporting them went away.
    pub fixed_deleted_with_wildcard: u64,
    /// New flows the agent placed itself by a consistent-hash action (and SYNs that placed a
    /// flow again).
    pub placed_locally: u64,
    /// New flows a consistent-hash action could not place because no backend was eligible (the
    /// packet went the ordinary way, to the manager).
    pub local_no_backend: u64,
    /// New NAT flows not placed locally because the backend's return wildcard was missing.
    pub local_no_return_wildcard: u64,
    /// Flow events (placed, closed) queued for flow reports.
    pub flow_events: u64,
    /// Flow report messages sent.
    pub flow_reports: u64,
    /// Fixed affinities held now.
    pub fixed_affinities: usize,
    /// Wildcard affinities held now.
    pub wildcard_affinities: usize,
    /// Packets in the hold buffer now.
    pub held_packets: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_wire::Layer;

    #[test]
    fn labels_count_separately_and_sum() {
        let mut c = LabelCounts::default();
        c.add(DropReason::TtlExpired.reason());
        c.add(DropReason::Malformed(WireError::Truncated(Layer::Tcp)).reason());
        c.add("ttl_expired");
        assert_eq!(c.get("ttl_expired"), 2);
        assert_eq!(c.get("truncated_tcp"), 1);
        assert_eq!(c.get("hold_timeout"), 0);
        assert_eq!(c.total(), 3);
    }
}
