//! The affinity tables and what their entries share: precedence rank and compiled actions.

pub(crate) mod fixed;
#[cfg(test)]
mod matching_model;
pub(crate) mod wildcard;

use core::cmp::Reverse;
use core::net::{IpAddr, SocketAddr};

use tether_proto::{
    Actions, AdvertiseAction, InterestCriteria, SearchOrder, SequenceAdjust, ServicePrecedence,
    Timestamp,
};
use tether_wire::nat::Rewrite;

use crate::TrafficStats;
use crate::local::{LocalTable, Placed};

/// Where an affinity stands among others that match the same packet (`docs/affinities.md`,
/// "Precedence"): smaller [`Rank::order_key`] wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rank {
    /// Effective priority: higher wins.
    pub priority: u16,
    /// Backup precedence: among equal priority, lower wins.
    pub backup: u16,
    /// Installation order: remaining ties go to the affinity installed first.
    pub installed: u64,
}

impl Rank {
    /// The rank of an affinity with these precedence segments, installed `installed`-th.
    pub fn new(service: Option<ServicePrecedence>, backup: Option<u16>, installed: u64) -> Self {
        let priority = match service {
            None => 0,
            Some(ServicePrecedence {
                search_order: SearchOrder::HigherFirst,
                value,
            }) => value,
            Some(ServicePrecedence {
                search_order: SearchOrder::LowerFirst,
                value,
            }) => u16::MAX - value,
        };
        Self {
            priority,
            backup: backup.unwrap_or(0),
            installed,
        }
    }

    /// Sort key: the best affinity has the smallest.
    pub fn order_key(&self) -> (Reverse<u16>, u16, u64) {
        (Reverse(self.priority), self.backup, self.installed)
    }

    /// Whether an affinity of this rank gives way to a TTL-0 update of rank `cancel`: it
    /// ranks the same or better, so a backup taking over can cancel a dead primary's copy while
    /// a primary's own withdrawal leaves the backups' copies in place.
    pub fn cancelled_by(&self, cancel: &Self) -> bool {
        (Reverse(self.priority), self.backup) <= (Reverse(cancel.priority), cancel.backup)
    }
}

/// An affinity's handling, compiled from its update.
#[derive(Clone, Debug)]
pub(crate) struct Behaviour {
    /// Dispatch to `forward` without rewriting the destination.
    pub dispatch: bool,
    /// Keep statistics per forward address.
    pub information: bool,
    /// Forward address; unspecified drops.
    pub forward: IpAddr,
    /// NAT rewrite, `None` when the update carried no NAT action.
    pub rewrite: Option<Rewrite>,
    /// Sequence-number adjust.
    pub sequence: Option<SequenceAdjust>,
    /// Interest criteria.
    pub interest: Option<InterestCriteria>,
    /// Opaque data the manager wants back in interest matches.
    pub manager_data: Option<Vec<u8>>,
    /// Advertise action (wildcards only).
    pub advertise: Option<AdvertiseAction>,
    /// Consistent-hash action and its table (wildcards only): new flows are placed locally.
    pub local: Option<Box<LocalTable>>,
    /// The flow, for a fixed affinity the agent made itself by a consistent-hash action.
    pub placed: Option<Placed>,
}

impl Behaviour {
    /// Compiles the flags and actions of an update.
    pub fn new(
        dispatch: bool,
        information: bool,
        forward: IpAddr,
        actions: &Actions,
        manager_data: Option<Vec<u8>>,
    ) -> Self {
        // The seed's NAT segment uses unspecified/0 for "keep this field".
        let rewrite = actions.nat.map(|nat| Rewrite {
            src: (!nat.src.is_unspecified()).then_some(nat.src),
            src_port: (nat.src_port != 0).then_some(nat.src_port),
            dst: (!nat.dst.is_unspecified()).then_some(nat.dst),
            dst_port: (nat.dst_port != 0).then_some(nat.dst_port),
        });
        Self {
            dispatch,
            information,
            forward,
            rewrite,
            sequence: actions.sequence_adjust,
            interest: actions.interest,
            manager_data,
            advertise: actions.advertise,
            local: None,
            placed: None,
        }
    }

    /// The handling of a fixed affinity the agent made for a flow it placed: no interest
    /// criteria (its FIN or RST is reported in a flow report instead).
    pub fn placed(
        dispatch: bool,
        forward: IpAddr,
        rewrite: Option<Rewrite>,
        placed: Placed,
    ) -> Self {
        Self {
            dispatch,
            information: false,
            forward,
            rewrite,
            sequence: None,
            interest: None,
            manager_data: None,
            advertise: None,
            local: None,
            placed: Some(placed),
        }
    }
}

/// The state every stored affinity has, fixed or wildcard.
#[derive(Clone, Debug)]
pub(crate) struct Affinity {
    /// The manager that installed it (messages' UDP source).
    pub manager: SocketAddr,
    /// Precedence among matching affinities.
    pub rank: Rank,
    /// What to do with matching packets.
    pub behaviour: Behaviour,
    /// When it expires unless refreshed.
    pub expires: Timestamp,
    /// Packets and bytes handled under it.
    pub traffic: TrafficStats,
    /// Whether a packet with payload was seen (for the FIRST_DATA interest bit).
    pub data_seen: bool,
    /// Whether a FIN or RST of the flow was reported (affinities the agent made).
    pub close_reported: bool,
}

impl Affinity {
    /// A fresh affinity with no traffic yet.
    pub fn new(manager: SocketAddr, rank: Rank, behaviour: Behaviour, expires: Timestamp) -> Self {
        Self {
            manager,
            rank,
            behaviour,
            expires,
            traffic: TrafficStats::default(),
            data_seen: false,
            close_reported: false,
        }
    }

    /// Whether it is still alive at `now` (expired entries are ignored before they are swept).
    pub fn live(&self, now: Timestamp) -> bool {
        self.expires > now
    }

    /// Takes a refresh: new handling, precedence and deadline; traffic and installation order
    /// are kept because it is the same affinity.
    pub fn refresh(&mut self, rank: Rank, behaviour: Behaviour, expires: Timestamp) {
        self.rank = Rank {
            installed: self.rank.installed,
            ..rank
        };
        self.behaviour = behaviour;
        self.expires = expires;
        // A refresh of an affinity the agent made is a new placement of its flow.
        self.close_reported = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prec(search_order: SearchOrder, value: u16) -> ServicePrecedence {
        ServicePrecedence {
            search_order,
            value,
        }
    }

    #[test]
    fn lower_first_search_order_inverts_the_value() {
        let low = Rank::new(Some(prec(SearchOrder::LowerFirst, 1)), None, 0);
        let high = Rank::new(Some(prec(SearchOrder::HigherFirst, 1)), None, 1);
        assert_eq!(low.priority, 65534);
        assert!(low.order_key() < high.order_key());
        assert_eq!(Rank::new(None, None, 0).priority, 0);
    }

    #[test]
    fn lowest_backup_precedence_wins_then_the_first_installed() {
        let primary = Rank::new(None, Some(1), 5);
        let backup = Rank::new(None, Some(2), 1);
        let absent = Rank::new(None, None, 9);
        assert!(absent.order_key() < primary.order_key());
        assert!(primary.order_key() < backup.order_key());
        assert!(Rank::new(None, None, 1).order_key() < Rank::new(None, None, 2).order_key());
    }
}
