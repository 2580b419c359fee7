//! Managers and agents driven together on one virtual clock.

use core::net::SocketAddr;
use core::time::Duration;

use tether_agent::{Agent, AgentConfig, Route, Verdict};
use tether_manager::{ConfigError, Manager, ManagerConfig};
use tether_proto::{Timestamp, Transmit};
use tether_wire::packet::parse_ethernet;

use crate::net::{Datagram, Faults, Network};

/// A simulated node: a state machine at an address, which may be stopped.
#[derive(Debug)]
pub struct Node<T> {
    /// The node's service-message address.
    pub addr: SocketAddr,
    /// The state machine.
    pub sm: T,
    /// A stopped node receives nothing, sends nothing and is never woken.
    pub alive: bool,
}

/// A packet an agent sent on towards its destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// When it left the agent.
    pub at: Timestamp,
    /// The IP packet (link-layer header removed).
    pub packet: Vec<u8>,
    /// Where the agent sent it.
    pub route: Route,
}

/// Identifies an agent in a [`World`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentId(pub usize);

/// Identifies a manager in a [`World`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManagerId(pub usize);

/// Steps a run may take before it is declared a livelock.
const MAX_STEPS: usize = 1_000_000;

/// Managers and agents on one network and one virtual clock.
#[derive(Debug)]
pub struct World {
    now: Timestamp,
    /// The network between the nodes.
    pub net: Network,
    managers: Vec<Node<Manager>>,
    agents: Vec<Node<Agent>>,
    emitted: Vec<Vec<Emitted>>,
    delivered: Vec<Datagram>,
    /// Sender ids handed out so far.
    senders: u64,
}

impl World {
    /// An empty world whose network faults are drawn from `seed`.
    pub fn new(seed: u64, faults: Faults) -> Self {
        Self {
            now: Timestamp::ZERO,
            net: Network::new(seed, faults),
            managers: Vec::new(),
            agents: Vec::new(),
            emitted: Vec::new(),
            delivered: Vec::new(),
            senders: 0,
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Adds a manager; it receives at `config.addr`.
    pub fn add_manager(&mut self, mut config: ManagerConfig) -> Result<ManagerId, ConfigError> {
        config.initial_sequence = self.next_sender_id();
        let addr = config.addr;
        let sm = Manager::new(config, self.now)?;
        self.managers.push(Node {
            addr,
            sm,
            alive: true,
        });
        Ok(ManagerId(self.managers.len() - 1))
    }

    /// Adds an agent receiving service messages at `addr`, member of the multicast `groups`.
    pub fn add_agent(
        &mut self,
        addr: SocketAddr,
        mut config: AgentConfig,
        groups: &[SocketAddr],
    ) -> AgentId {
        config.initial_sequence = self.next_sender_id();
        for group in groups {
            self.net.join(*group, addr);
        }
        self.agents.push(Node {
            addr,
            sm: Agent::new(config, self.now),
            alive: true,
        });
        self.emitted.push(Vec::new());
        AgentId(self.agents.len() - 1)
    }

    /// The manager `id`.
    pub fn manager(&mut self, id: ManagerId) -> &mut Node<Manager> {
        &mut self.managers[id.0]
    }

    /// The agent `id`.
    pub fn agent(&mut self, id: AgentId) -> &mut Node<Agent> {
        &mut self.agents[id.0]
    }

    /// Packets agent `id` has sent on so far, oldest first; taking them empties the list.
    pub fn take_emitted(&mut self, id: AgentId) -> Vec<Emitted> {
        std::mem::take(&mut self.emitted[id.0])
    }

    /// Every datagram the network has delivered so far, oldest first.
    pub fn delivered(&self) -> &[Datagram] {
        &self.delivered
    }

    /// A frame arrives at agent `id`: the agent's verdict, with a forwarded frame recorded as
    /// emitted. Outputs the frame causes (interest matches) enter the network.
    pub fn inject_frame(&mut self, id: AgentId, mut frame: Vec<u8>) -> Verdict {
        let now = self.now;
        let verdict = self.agents[id.0].sm.handle_frame(now, &mut frame);
        if let Verdict::Forward(route) = verdict {
            let l3 = parse_ethernet(&frame).map_or(0, |meta| meta.l3_offset);
            self.emitted[id.0].push(Emitted {
                at: now,
                packet: frame[l3..].to_vec(),
                route,
            });
        }
        self.flush();
        verdict
    }

    /// Injects a datagram as if `from` had sent it to `to` (forgeries and replays).
    pub fn inject_datagram(&mut self, from: SocketAddr, to: SocketAddr, payload: Vec<u8>) {
        self.net
            .send(self.now, from, &Transmit { dest: to, payload });
    }

    /// Runs every event up to `now + d`, then sets the clock there.
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        self.flush();
        for _ in 0..MAX_STEPS {
            match self.next_event() {
                Some(at) if at <= deadline => {
                    self.now = self.now.max(at);
                    self.step();
                }
                _ => {
                    self.now = deadline;
                    return;
                }
            }
        }
        panic!("simulation did not settle within {MAX_STEPS} steps: livelock");
    }

    /// Runs until no datagram is in flight (timers may remain), at most `limit` of virtual time.
    pub fn settle(&mut self, limit: Duration) {
        let deadline = self.now + limit;
        self.flush();
        while let Some(at) = self.net.next_delivery() {
            assert!(at <= deadline, "network still busy after {limit:?}");
            self.run_for(at.saturating_since(self.now));
        }
    }

    /// Stops a manager, as a crash would: it neither sends nor receives any more.
    pub fn kill_manager(&mut self, id: ManagerId) {
        self.managers[id.0].alive = false;
    }

    /// Starts a killed manager again from nothing, as a restarted process: a new state machine
    /// from `config` (at the same address), signing as a new sender.
    pub fn restart_manager(
        &mut self,
        id: ManagerId,
        mut config: ManagerConfig,
    ) -> Result<(), ConfigError> {
        config.initial_sequence = self.next_sender_id();
        let node = &mut self.managers[id.0];
        assert_eq!(
            config.addr, node.addr,
            "a restarted manager keeps its address"
        );
        node.sm = Manager::new(config, self.now)?;
        node.alive = true;
        Ok(())
    }

    /// A sender id (initial sequence) no other node of this world has had: each signs as its
    /// own sender, as the runtime arranges (docs/protocol.md, "Sending").
    fn next_sender_id(&mut self) -> u64 {
        self.senders += 1;
        self.senders << 32
    }

    fn next_event(&self) -> Option<Timestamp> {
        let timers = self
            .managers
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.sm.poll_timeout())
            .chain(
                self.agents
                    .iter()
                    .filter(|n| n.alive)
                    .filter_map(|n| n.sm.poll_timeout()),
            );
        timers.chain(self.net.next_delivery()).min()
    }

    /// Delivers every datagram due now and fires every timer due now.
    fn step(&mut self) {
        let now = self.now;
        while let Some(datagram) = self.net.deliver(now) {
            self.deliver(&datagram);
            self.delivered.push(datagram);
        }
        for node in self.managers.iter_mut().filter(|n| n.alive) {
            if node.sm.poll_timeout().is_some_and(|t| t <= now) {
                node.sm.handle_timeout(now);
            }
        }
        for node in self.agents.iter_mut().filter(|n| n.alive) {
            if node.sm.poll_timeout().is_some_and(|t| t <= now) {
                node.sm.handle_timeout(now);
            }
        }
        self.flush();
    }

    fn deliver(&mut self, datagram: &Datagram) {
        let now = self.now;
        if let Some(node) = self.managers.iter_mut().find(|n| n.addr == datagram.to) {
            if node.alive {
                node.sm
                    .handle_datagram(now, datagram.from, &datagram.payload);
            }
            return;
        }
        if let Some(node) = self.agents.iter_mut().find(|n| n.addr == datagram.to) {
            if node.alive {
                node.sm
                    .handle_datagram(now, datagram.from, &datagram.payload);
            }
            return;
        }
        self.net.count_unroutable();
    }

    /// Moves every pending output of every live node into the network or the emitted lists.
    fn flush(&mut self) {
        let now = self.now;
        for node in self.managers.iter_mut().filter(|n| n.alive) {
            while let Some(transmit) = node.sm.poll_transmit() {
                self.net.send(now, node.addr, &transmit);
            }
        }
        for (i, node) in self.agents.iter_mut().enumerate() {
            if !node.alive {
                continue;
            }
            while let Some(transmit) = node.sm.poll_transmit() {
                self.net.send(now, node.addr, &transmit);
            }
            while let Some(out) = node.sm.poll_packet() {
                self.emitted[i].push(Emitted {
                    at: now,
                    packet: out.packet,
                    route: out.route,
                });
            }
        }
    }
}
