//! Peers and roles: heartbeats between the managers of the same services, the choice of the one
//! active manager, and the numbered replication stream that keeps the standbys' flow stores
//! filled (`docs/failover.md`). Pure bookkeeping: [`crate::Manager`] acts on its verdicts.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

use tether_proto::{
    FlowRecord, Heartbeat, MAX_REPLICATION_DATAGRAM, Replicate, Role, Snapshot, Timestamp,
};

use crate::config::ManagerConfig;

/// Batches kept for resending to a peer that reports a gap; a peer further behind than this
/// misses flows until they are renewed.
const RESEND_BUFFER: usize = 4096;

/// Snapshot parts sent to one peer per half heartbeat interval: about 2,500 parts (3.5 MB,
/// some 60,000 IPv4 flows) a second with the default interval, so a large store does not
/// overrun the receiver's socket buffer.
const SNAPSHOT_BURST: usize = 128;

/// What this manager knows about one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's service-message address.
    pub addr: SocketAddr,
    /// Whether its heartbeats arrive in time.
    pub live: bool,
    /// When its last heartbeat arrived.
    pub last_heard: Option<Timestamp>,
    /// Its backup precedence, once heard.
    pub backup_precedence: Option<u16>,
    /// The role it last claimed.
    pub role: Role,
    /// Whether it said it holds the flow store.
    pub ready: bool,
    /// Replication batches it is behind: ours it has not confirmed (when we are active), or
    /// theirs we do not hold yet (when it is).
    pub lag: u64,
}

/// The failover part of [`crate::ManagerStatus`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverStatus {
    /// This manager's role.
    pub role: Role,
    /// Whether it holds the flow store: false while a returning manager pulls it from the
    /// active peer; peers yield the active role only to a ready manager.
    pub ready: bool,
    /// When this manager last found its active peer dead.
    pub detected_at: Option<Timestamp>,
    /// When it first served a flow after its last takeover.
    pub took_over_at: Option<Timestamp>,
    /// Last takeover: from the last heartbeat heard of the failed active peer to the moment it
    /// was found dead.
    pub detection: Option<Duration>,
    /// Last takeover: from the failed peer's detection to the first existing flow served.
    pub takeover: Option<Duration>,
    /// How many times it has taken over from a dead active peer.
    pub takeovers: u64,
    /// How many times it took the active role back from a live, worse peer after pulling the
    /// flow store from it.
    pub reclaims: u64,
    /// Full flow stores sent to returning peers.
    pub snapshots_sent: u64,
    /// Full flow stores received complete from the active peer.
    pub snapshots_received: u64,
    /// Flow records sent to peers (each record once, however many peers).
    pub records_sent: u64,
    /// Flow records received and stored.
    pub records_stored: u64,
    /// Flow records refused: no wildcard of this manager covers the key, or the service or
    /// backend is unknown here.
    pub records_refused: u64,
    /// Flow records naming another backend than the one this manager holds for the key.
    pub records_conflicting: u64,
    /// Replication batches that arrived after a later one (a gap, until it fills).
    pub gaps: u64,
    /// Replication batches sent again to a peer that reported a gap.
    pub batches_resent: u64,
    /// Every configured peer.
    pub peers: Vec<PeerStatus>,
}

/// The batches received from one sender.
#[derive(Debug, Default)]
struct Inbound {
    /// Every batch up to this one has arrived.
    contiguous: u64,
    /// Batches after a gap.
    above: BTreeSet<u64>,
}

impl Inbound {
    /// Records batch `seq`; whether it is new.
    fn accept(&mut self, seq: u64) -> bool {
        if seq <= self.contiguous || !self.above.insert(seq) {
            return false;
        }
        while self.above.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
        true
    }
}

/// A snapshot on its way to one peer.
#[derive(Debug)]
struct Outgoing {
    id: u32,
    base_seq: u64,
    /// Every part, each within one datagram.
    parts: Vec<Vec<FlowRecord>>,
    /// Parts sent so far.
    sent: usize,
    /// When the next burst is due.
    next_burst: Timestamp,
    /// When the last part went out.
    finished_at: Option<Timestamp>,
}

/// A snapshot being received.
#[derive(Debug)]
struct Incoming {
    from: SocketAddr,
    id: u32,
    parts: u32,
    received: BTreeSet<u32>,
}

/// What a heartbeat or a timer changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Nothing to do.
    None,
    /// This manager became active at start (no peer had been active): nothing to cancel.
    Started,
    /// This manager became active in place of a dead active peer: cancel and re-announce.
    TakeOver,
    /// This manager, ready after pulling the flow store, took the active role back from a
    /// live, worse peer: announce and install its fixed affinities over the peer's.
    Reclaim,
    /// A better peer is live: stop placing flows.
    Demoted,
}

/// Heartbeats, roles and the replication stream.
#[derive(Debug)]
pub(crate) struct Failover {
    precedence: u16,
    addr: SocketAddr,
    peers: Vec<PeerStatus>,
    interval: Duration,
    window: Duration,
    started: Timestamp,
    next_heartbeat: Option<Timestamp>,
    saw_active_peer: bool,
    /// When a heartbeat of a peer claiming to be active last arrived.
    active_heard: Option<Timestamp>,
    pending: Vec<FlowRecord>,
    last_seq: u64,
    sent: BTreeMap<u64, (Timestamp, Replicate)>,
    inbound: BTreeMap<SocketAddr, Inbound>,
    /// Snapshots being sent, by peer.
    outgoing: BTreeMap<SocketAddr, Outgoing>,
    /// Id of the next snapshot this manager sends.
    next_snapshot: u32,
    /// The snapshot being received while not ready.
    incoming: Option<Incoming>,
    /// The peer whose store this manager pulled, until this manager becomes active: the
    /// peer was active then, and may have stepped down already when this manager takes over.
    pulled_from: Option<SocketAddr>,
    /// The status fields this module keeps (role and counters).
    pub(crate) status: FailoverStatus,
}

impl Failover {
    /// Failover state for `config`, starting at `now`: standby until every peer has been heard
    /// or has stayed silent a whole detection window, active at once without peers.
    pub(crate) fn new(config: &ManagerConfig, now: Timestamp) -> Self {
        let peers: Vec<PeerStatus> = config
            .peers
            .iter()
            .map(|&addr| PeerStatus {
                addr,
                live: true,
                last_heard: None,
                backup_precedence: None,
                role: Role::Standby,
                ready: false,
                lag: 0,
            })
            .collect();
        let interval = config.heartbeat_interval;
        Self {
            precedence: config.backup_precedence,
            addr: config.addr,
            next_heartbeat: (!peers.is_empty()).then_some(now),
            peers: peers.clone(),
            interval,
            // Half an interval of grace so a heartbeat delayed in the network is not a miss.
            window: interval * config.heartbeat_misses + interval / 2,
            started: now,
            saw_active_peer: false,
            active_heard: None,
            pending: Vec::new(),
            last_seq: 0,
            sent: BTreeMap::new(),
            inbound: BTreeMap::new(),
            outgoing: BTreeMap::new(),
            next_snapshot: 1,
            incoming: None,
            pulled_from: None,
            status: FailoverStatus {
                role: Role::Standby,
                // Alone, there is no store to pull; with peers, until one is known to hold it.
                ready: config.peers.is_empty(),
                detected_at: None,
                took_over_at: None,
                detection: None,
                takeover: None,
                takeovers: 0,
                reclaims: 0,
                snapshots_sent: 0,
                snapshots_received: 0,
                records_sent: 0,
                records_stored: 0,
                records_refused: 0,
                records_conflicting: 0,
                gaps: 0,
                batches_resent: 0,
                peers,
            },
        }
    }

    /// The heartbeat interval.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// This manager's role.
    pub(crate) fn role(&self) -> Role {
        self.status.role
    }

    /// Whether this manager holds the flow store (see [`FailoverStatus::ready`]).
    pub(crate) fn ready(&self) -> bool {
        self.status.ready
    }

    /// Sends the next heartbeats at `now` rather than an interval later: peers learn a change
    /// of role or readiness at once.
    pub(crate) fn expedite_heartbeat(&mut self, now: Timestamp) {
        if let Some(due) = &mut self.next_heartbeat {
            *due = (*due).min(now);
        }
    }

    /// Whether `addr` is a configured peer.
    pub(crate) fn is_peer(&self, addr: SocketAddr) -> bool {
        self.peers.iter().any(|p| p.addr == addr)
    }

    /// Whether flows should be replicated (active with peers).
    pub(crate) fn replicating(&self) -> bool {
        self.status.role == Role::Active && !self.peers.is_empty()
    }

    /// Queues a flow record for the next batch.
    pub(crate) fn replicate(&mut self, record: FlowRecord) {
        self.pending.push(record);
    }

    /// The earliest time a heartbeat is due or a live peer's silence becomes its death.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        let deaths = self
            .peers
            .iter()
            .filter(|p| p.live)
            .map(|p| p.last_heard.unwrap_or(self.started) + self.window);
        let bursts = self
            .outgoing
            .values()
            .filter(|o| o.sent < o.parts.len())
            .map(|o| o.next_burst);
        deaths.chain(self.next_heartbeat).chain(bursts).min()
    }

    /// Whether to send `peer`, which said it is not ready, a snapshot now: none is on its way,
    /// or the last one went out completely two intervals ago and the peer is still not ready
    /// (a part was lost).
    pub(crate) fn snapshot_wanted(&self, now: Timestamp, peer: SocketAddr) -> bool {
        self.status.role == Role::Active
            && self.outgoing.get(&peer).is_none_or(|o| {
                o.finished_at
                    .is_some_and(|at| at + self.interval * 2 <= now)
            })
    }

    /// Starts sending `records` (the whole store) to `peer` as a new snapshot. Pending records
    /// go into batches first, so the snapshot's base covers them.
    pub(crate) fn start_snapshot(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        records: Vec<FlowRecord>,
    ) -> Vec<(SocketAddr, Replicate)> {
        let batches = self.batches(now);
        let mut parts = Vec::new();
        let mut records = records.into_iter().peekable();
        loop {
            let mut size = Snapshot::OVERHEAD;
            let mut part = Vec::new();
            while let Some(r) = records
                .next_if(|r| part.is_empty() || size + r.encoded_len() <= MAX_REPLICATION_DATAGRAM)
            {
                size += r.encoded_len();
                part.push(r);
            }
            parts.push(part);
            if records.peek().is_none() {
                break;
            }
        }
        let id = self.next_snapshot;
        self.next_snapshot = self.next_snapshot.wrapping_add(1);
        self.status.snapshots_sent += 1;
        self.outgoing.insert(
            peer,
            Outgoing {
                id,
                base_seq: self.last_seq,
                parts,
                sent: 0,
                next_burst: now,
                finished_at: None,
            },
        );
        batches
    }

    /// Snapshot parts due at `now`, a burst per peer.
    pub(crate) fn snapshot_parts(&mut self, now: Timestamp) -> Vec<(SocketAddr, Snapshot)> {
        let mut out = Vec::new();
        for (&peer, o) in &mut self.outgoing {
            if o.sent == o.parts.len() || o.next_burst > now {
                continue;
            }
            let end = (o.sent + SNAPSHOT_BURST).min(o.parts.len());
            let parts = u32::try_from(o.parts.len()).unwrap_or(u32::MAX);
            for i in o.sent..end {
                out.push((
                    peer,
                    Snapshot {
                        id: o.id,
                        base_seq: o.base_seq,
                        part: u32::try_from(i + 1).unwrap_or(u32::MAX),
                        parts,
                        flows: std::mem::take(&mut o.parts[i]),
                    },
                ));
            }
            o.sent = end;
            o.next_burst = now + self.interval / 2;
            if o.sent == o.parts.len() {
                o.finished_at = Some(now);
            }
        }
        out
    }

    /// Records a snapshot part from `from`; whether its records are to be stored, and whether
    /// it completed the snapshot (the manager is then ready, and follows `from`'s stream after
    /// the snapshot's base).
    pub(crate) fn on_snapshot(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        s: &Snapshot,
    ) -> (bool, bool) {
        if self.status.ready || s.part == 0 || s.part > s.parts {
            return (false, false);
        }
        let incoming = match &mut self.incoming {
            Some(i) if i.from == from && i.id == s.id && i.parts == s.parts => i,
            slot => slot.insert(Incoming {
                from,
                id: s.id,
                parts: s.parts,
                received: BTreeSet::new(),
            }),
        };
        if !incoming.received.insert(s.part) {
            return (false, false);
        }
        if incoming.received.len() < s.parts as usize {
            return (true, false);
        }
        self.incoming = None;
        let inbound = self.inbound.entry(from).or_default();
        if inbound.contiguous < s.base_seq {
            inbound.contiguous = s.base_seq;
            inbound.above = inbound.above.split_off(&(s.base_seq + 1));
            while inbound.above.remove(&(inbound.contiguous + 1)) {
                inbound.contiguous += 1;
            }
        }
        self.status.ready = true;
        self.pulled_from = Some(from);
        self.status.snapshots_received += 1;
        self.expedite_heartbeat(now);
        (true, true)
    }

    /// Heartbeats due at `now`, one per peer.
    pub(crate) fn heartbeats(&mut self, now: Timestamp) -> Vec<(SocketAddr, Heartbeat)> {
        match self.next_heartbeat {
            Some(due) if due <= now => self.next_heartbeat = Some(now + self.interval),
            _ => return Vec::new(),
        }
        let heartbeat = Heartbeat {
            backup_precedence: self.precedence,
            role: self.status.role,
            replicated: match self.status.role {
                Role::Active => self.last_seq,
                Role::Standby => self
                    .active_peer()
                    .map_or(0, |p| self.inbound.get(&p.addr).map_or(0, |i| i.contiguous)),
            },
            ready: self.status.ready,
        };
        self.peers.iter().map(|p| (p.addr, heartbeat)).collect()
    }

    /// Turns the pending records into numbered batches of at most one datagram each, one copy
    /// per peer, and keeps them for resending.
    pub(crate) fn batches(&mut self, now: Timestamp) -> Vec<(SocketAddr, Replicate)> {
        let mut out = Vec::new();
        let mut records = std::mem::take(&mut self.pending).into_iter().peekable();
        while records.peek().is_some() {
            let mut size = Replicate::OVERHEAD;
            let mut flows = Vec::new();
            while let Some(r) = records
                .next_if(|r| flows.is_empty() || size + r.encoded_len() <= MAX_REPLICATION_DATAGRAM)
            {
                size += r.encoded_len();
                flows.push(r);
            }
            self.last_seq += 1;
            self.status.records_sent += flows.len() as u64;
            let batch = Replicate {
                stream_seq: self.last_seq,
                flows,
            };
            out.extend(self.peers.iter().map(|p| (p.addr, batch.clone())));
            self.sent.insert(self.last_seq, (now, batch));
        }
        while self.sent.len() > RESEND_BUFFER {
            self.sent.pop_first();
        }
        out
    }

    /// Records a batch from `from`; whether its records are new.
    pub(crate) fn on_replicate(&mut self, from: SocketAddr, seq: u64) -> bool {
        let inbound = self.inbound.entry(from).or_default();
        let new = inbound.accept(seq);
        if new && !inbound.above.is_empty() && inbound.above.first() == Some(&seq) {
            self.status.gaps += 1;
        }
        new
    }

    /// Records a heartbeat from `from` and re-decides roles; also returns the batches to send
    /// again to a standby peer that confirms less than was sent an interval ago.
    pub(crate) fn on_heartbeat(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        h: &Heartbeat,
    ) -> (Transition, Vec<(SocketAddr, Replicate)>) {
        let Some(peer) = self.peers.iter_mut().find(|p| p.addr == from) else {
            return (Transition::None, Vec::new());
        };
        peer.last_heard = Some(peer.last_heard.map_or(now, |t| t.max(now)));
        peer.live = true;
        peer.backup_precedence = Some(h.backup_precedence);
        peer.role = h.role;
        peer.ready = h.ready;
        if h.ready {
            self.outgoing.remove(&from);
        }
        if h.role == Role::Active {
            self.saw_active_peer = true;
            self.active_heard = Some(self.active_heard.map_or(now, |t| t.max(now)));
        }
        self.note_confirmed(from, h);
        let mut resend = Vec::new();
        if self.status.role == Role::Active && h.role == Role::Standby && h.ready {
            // Batches sent less than an interval ago may still be on their way. (A peer that
            // is not ready gets the whole store in a snapshot instead.)
            resend = self
                .sent
                .range(h.replicated + 1..)
                .filter(|(_, (at, _))| *at + self.interval <= now)
                .map(|(_, (_, batch))| (from, batch.clone()))
                .collect();
            self.status.batches_resent += resend.len() as u64;
        }
        // Batches every live standby holds are not needed any more.
        let confirmed = self
            .peers
            .iter()
            .filter(|p| p.live && p.role == Role::Standby)
            .map(|p| self.acked(p))
            .min();
        if let Some(confirmed) = confirmed {
            self.sent = self.sent.split_off(&(confirmed + 1));
        }
        (self.evaluate(now), resend)
    }

    /// What standby `peer` confirmed of our stream (from its last heartbeat).
    fn acked(&self, peer: &PeerStatus) -> u64 {
        self.last_seq.saturating_sub(peer.lag)
    }

    /// Marks silent peers dead and re-decides roles.
    pub(crate) fn on_timeout(&mut self, now: Timestamp) -> Transition {
        self.evaluate(now)
    }

    /// The live peer that claims to be active, if any.
    fn active_peer(&self) -> Option<&PeerStatus> {
        self.peers
            .iter()
            .filter(|p| p.live && p.role == Role::Active)
            .min_by_key(|p| (p.backup_precedence, p.addr))
    }

    fn evaluate(&mut self, now: Timestamp) -> Transition {
        for p in &mut self.peers {
            if p.live && now >= p.last_heard.unwrap_or(self.started) + self.window {
                p.live = false;
            }
        }
        let dead: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|p| !p.live)
            .map(|p| p.addr)
            .collect();
        for addr in dead {
            self.outgoing.remove(&addr);
        }
        self.refresh_lag();
        let heard_all = self
            .peers
            .iter()
            .all(|p| !p.live || p.backup_precedence.is_some());
        let active_peer = self.active_peer().is_some();
        if !self.status.ready && heard_all && !active_peer {
            // No live peer is active, so no one holds flows to pull.
            self.status.ready = true;
            self.expedite_heartbeat(now);
        }
        let me = (self.precedence, self.addr);
        let (role, ready) = (self.status.role, self.status.ready);
        let blocks = |p: &PeerStatus| {
            if !p.live {
                return false;
            }
            let Some(precedence) = p.backup_precedence else {
                // Unheard: it may be better, so a standby waits.
                return role == Role::Standby;
            };
            let better = (precedence, p.addr) < me;
            match (role, better) {
                // An active manager yields only to a better manager that holds the store.
                (Role::Active, _) => better && p.ready,
                // A better peer that is not ready is either pulling the store from the active
                // one (then it does not count yet) or starting like us (then it soon will).
                (Role::Standby, true) => p.ready || !active_peer,
                // While this manager pulls the store, the worse active peer stays.
                (Role::Standby, false) => p.ready && !ready,
            }
        };
        let best = !self.peers.iter().any(blocks);
        match (self.status.role, best) {
            (Role::Standby, true) => {
                self.status.role = Role::Active;
                // An active manager holds the store, whatever it could pull.
                self.status.ready = true;
                self.incoming = None;
                self.expedite_heartbeat(now);
                let source_live = self
                    .pulled_from
                    .take()
                    .is_some_and(|addr| self.peers.iter().any(|p| p.addr == addr && p.live));
                if active_peer || source_live {
                    self.status.reclaims += 1;
                    Transition::Reclaim
                } else if self.saw_active_peer {
                    self.status.detected_at = Some(now);
                    self.status.detection = self.active_heard.map(|t| now.saturating_since(t));
                    self.status.took_over_at = None;
                    self.status.takeover = None;
                    self.status.takeovers += 1;
                    Transition::TakeOver
                } else {
                    Transition::Started
                }
            }
            (Role::Active, false) => {
                self.status.role = Role::Standby;
                self.outgoing.clear();
                self.expedite_heartbeat(now);
                Transition::Demoted
            }
            _ => Transition::None,
        }
    }

    /// Brings the peers' lag and the status copy of the peer list up to date.
    fn refresh_lag(&mut self) {
        self.status.peers.clone_from(&self.peers);
    }

    /// Records the stream position a heartbeat confirmed, as lag.
    fn note_confirmed(&mut self, from: SocketAddr, h: &Heartbeat) {
        let last_seq = self.last_seq;
        let inbound = self.inbound.get(&from).map_or(0, |i| i.contiguous);
        if let Some(p) = self.peers.iter_mut().find(|p| p.addr == from) {
            p.lag = match h.role {
                Role::Standby => last_seq.saturating_sub(h.replicated),
                Role::Active => h.replicated.saturating_sub(inbound),
            };
        }
        self.refresh_lag();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::config;
    use tether_wire::AffinityKey;

    fn record(port: u16) -> FlowRecord {
        FlowRecord {
            key: AffinityKey {
                protocol: 6,
                src: "198.51.100.7".parse().unwrap(),
                src_port: port,
                dst: "192.0.2.10".parse().unwrap(),
                dst_port: 80,
            },
            return_key: None,
            service: "web".into(),
            backend: "b1".into(),
            age: 0,
            closing: false,
        }
    }

    #[test]
    fn inbound_batches_fill_gaps_in_any_order() {
        let mut i = Inbound::default();
        assert!(i.accept(1));
        assert!(i.accept(3));
        assert_eq!(i.contiguous, 1);
        assert!(!i.accept(3), "a duplicate is not new");
        assert!(i.accept(2));
        assert_eq!(i.contiguous, 3);
        assert!(i.above.is_empty());
    }

    #[test]
    fn batches_fit_a_datagram_and_are_numbered_per_peer() {
        let mut cfg = config(Vec::new());
        cfg.peers = vec![
            "10.0.0.3:7000".parse().unwrap(),
            "10.0.0.4:7000".parse().unwrap(),
        ];
        let mut f = Failover::new(&cfg, Timestamp::ZERO);
        for port in 0..100 {
            f.replicate(record(port));
        }
        let out = f.batches(Timestamp::ZERO);
        let per_peer: Vec<_> = out.iter().filter(|(to, _)| *to == cfg.peers[0]).collect();
        assert!(per_peer.len() > 1);
        for (i, (_, batch)) in per_peer.iter().enumerate() {
            assert_eq!(batch.stream_seq, i as u64 + 1);
            let size = Replicate::OVERHEAD
                + batch
                    .flows
                    .iter()
                    .map(FlowRecord::encoded_len)
                    .sum::<usize>();
            assert!(size <= MAX_REPLICATION_DATAGRAM, "{size}");
        }
        let total: usize = per_peer.iter().map(|(_, b)| b.flows.len()).sum();
        assert_eq!(total, 100);
        assert_eq!(f.status.records_sent, 100);
    }

    #[test]
    fn the_best_live_manager_is_active_and_a_silent_one_is_replaced() {
        let mut cfg = config(Vec::new());
        let primary: SocketAddr = "10.0.0.1:7000".parse().unwrap();
        cfg.backup_precedence = 2;
        cfg.peers = vec![primary];
        let mut f = Failover::new(&cfg, Timestamp::ZERO);
        assert_eq!(
            f.on_timeout(Timestamp::ZERO),
            Transition::None,
            "peer unheard"
        );
        let beat = Heartbeat {
            backup_precedence: 1,
            role: Role::Active,
            replicated: 0,
            ready: true,
        };
        let ms = |m| Timestamp::from_duration(Duration::from_millis(m));
        assert_eq!(f.on_heartbeat(ms(10), primary, &beat).0, Transition::None);
        assert_eq!(f.role(), Role::Standby);
        // 2 misses plus half an interval of grace after the last heartbeat.
        assert_eq!(
            f.next_deadline(),
            Some(ms(0)),
            "the first heartbeat is due at once"
        );
        f.heartbeats(ms(0));
        assert_eq!(f.on_timeout(ms(259)), Transition::None);
        assert_eq!(f.on_timeout(ms(260)), Transition::TakeOver);
        assert_eq!(f.role(), Role::Active);
        assert_eq!(f.status.detected_at, Some(ms(260)));
        assert_eq!(
            f.on_heartbeat(ms(300), primary, &beat).0,
            Transition::Demoted
        );
    }
}
